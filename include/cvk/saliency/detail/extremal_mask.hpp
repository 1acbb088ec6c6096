// cvk — computer-vision kernels, header-only C++20.
// Internals of <cvk/saliency/extremal.hpp>: the smooth-mask generator of Extremal Perturbations
// (TorchRay's MaskGenerator) — geometry, the tap-weight table, forward and backward kernels.
// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <limits>
#include <string>
#include <vector>

#include "../../core/config.hpp"
#include "../../core/errors.hpp"
#include "../../core/parallel.hpp"
#include "../../core/strided_view.hpp"
#include "../../detail/checks.hpp"

CVK_BEGIN_NAMESPACE

/// How the weighted grid values around a pixel are pooled into the mask value (TorchRay's
/// MaskGenerator `pooling_method`).
enum class mask_pooling {
  /// Σ_k p_k·softmax_k(T·p_k) ("softmax", TorchRay's default); T = +inf gives max_k p_k.
  smooth_max,
  /// Σ_k p_k ("sum").
  sum,
  /// sigmoid(T·Σ_k p_k − 3) ("sigmoid"); T = +inf gives [Σ_k p_k − 5 > 0] (TorchRay's two
  /// thresholds, kept as they are).
  sigmoid,
};

/// The parameters of the smooth-mask generator (TorchRay's MaskGenerator and its defaults in
/// extremal_perturbation).
struct smooth_mask_params {
  /// Grid step in pixels, >= 1 (TorchRay: step = 7).
  index_t step = 7;
  /// Kernel size σ in pixels, finite and > 0; also the margin of the full mask (TorchRay:
  /// sigma = 21).
  double sigma = 21;
  /// Pooling of the weighted grid values (TorchRay: softmax).
  mask_pooling pooling = mask_pooling::smooth_max;
  /// Coldness T of smooth_max and sigmoid, >= 0 or +inf (TorchRay: 20, fixed).
  double coldness = 20;
  /// Clamp the mask to [0, 1] (TorchRay: True).
  bool clamp = true;
  /// Threads (0 = all).
  int threads = 0;
};

/// The shapes of a smooth mask of an H×W image (TorchRay's MaskGenerator attributes).
struct smooth_mask_geometry {
  index_t height = 0;       ///< H: the cropped mask (the image's size)
  index_t width = 0;        ///< W
  index_t grid_height = 0;  ///< ⌈H/step⌉: parameter rows (shape_in)
  index_t grid_width = 0;   ///< ⌈W/step⌉
  index_t full_height = 0;  ///< step·(grid_height + 2·padding − 2·radius) − step + 1 (shape_out)
  index_t full_width = 0;
  index_t margin = 0;   ///< round(σ) (half to even, Python's round): the crop offset
  index_t padding = 0;  ///< 1 + ⌈2σ/step⌉: zero grid nodes around the parameters
  index_t radius = 0;   ///< 1 + ⌈σ/step⌉: a pixel pools (2·radius + 1)² grid nodes
  index_t step = 0;
  double sigma = 0;
  /// 2·radius + 1.
  [[nodiscard]] index_t taps() const noexcept { return 2 * radius + 1; }
  /// Cells of `step`×`step` pixels that share their grid nodes: grid + 2·padding − 2·radius.
  [[nodiscard]] index_t cell_rows() const noexcept { return grid_height + 2 * padding - 2 * radius; }
  [[nodiscard]] index_t cell_cols() const noexcept { return grid_width + 2 * padding - 2 * radius; }
  /// Padded grid: grid + 2·padding.
  [[nodiscard]] index_t padded_rows() const noexcept { return grid_height + 2 * padding; }
  [[nodiscard]] index_t padded_cols() const noexcept { return grid_width + 2 * padding; }
};

namespace detail {

/// Python's round() of a non-negative finite double: half to even.
inline double round_half_even(double x) noexcept {
  const double f = std::floor(x);
  const double d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return std::fmod(f, 2.0) == 0.0 ? f : f + 1;
}

inline void check_smooth_mask_params(const smooth_mask_params& p, const char* fn) {
  if (p.step < 1) {
    CVK_THROW(invalid_argument,
              std::string(fn) + ": step must be >= 1, got " + std::to_string(p.step));
  }
  if (!(p.sigma > 0) || !std::isfinite(p.sigma)) {
    CVK_THROW(invalid_argument, std::string(fn) + ": sigma must be finite and > 0, got " +
                                    number_string(p.sigma));
  }
  if (!(p.coldness >= 0)) {
    CVK_THROW(invalid_argument, std::string(fn) + ": coldness must be >= 0 or +inf, got " +
                                    number_string(p.coldness));
  }
  if (p.pooling != mask_pooling::smooth_max && p.pooling != mask_pooling::sum &&
      p.pooling != mask_pooling::sigmoid) {
    CVK_THROW(invalid_argument, std::string(fn) + ": pooling is not a cvk::mask_pooling");
  }
  if (p.threads < 0) {
    CVK_THROW(invalid_argument,
              std::string(fn) + ": threads must be >= 0, got " + std::to_string(p.threads));
  }
}

/// The geometry of the smooth mask of an H×W image, with every size checked.
inline smooth_mask_geometry resolve_smooth_mask(std::array<index_t, 2> size,
                                                const smooth_mask_params& p, const char* fn) {
  check_smooth_mask_params(p, fn);
  const auto size_text = [&] { return std::to_string(size[0]) + "×" + std::to_string(size[1]); };
  if (size[0] < 1 || size[1] < 1) {
    CVK_THROW(shape_error, std::string(fn) + ": the mask size H×W must have H, W >= 1, got " +
                               size_text());
  }
  smooth_mask_geometry g;
  g.height = size[0];
  g.width = size[1];
  g.step = p.step;
  g.sigma = p.sigma;
  const double s = static_cast<double>(p.step);
  // Sizes derived from sigma are bounded before they become integers (2^40 pixels per side is
  // far past any allocation).
  constexpr double limit = 1099511627776.0;
  const double pad = 1 + std::ceil((p.sigma + p.sigma) / s);
  const double rad = 1 + std::ceil(p.sigma / s);
  const double margin = round_half_even(p.sigma);
  if (pad > limit || margin > limit) {
    CVK_THROW(out_of_range, std::string(fn) + ": sigma " + number_string(p.sigma) +
                                " with step " + std::to_string(p.step) +
                                " gives a mask margin too large to allocate");
  }
  g.padding = static_cast<index_t>(pad);
  g.radius = static_cast<index_t>(rad);
  g.margin = static_cast<index_t>(margin);
  g.grid_height = (size[0] - 1) / p.step + 1;
  g.grid_width = (size[1] - 1) / p.step + 1;
  const auto full = [&](index_t grid) {
    const index_t cells = grid + 2 * g.padding - 2 * g.radius;
    return checked_mul(p.step, cells, fn, "the full mask", size_text) - p.step + 1;
  };
  g.full_height = full(g.grid_height);
  g.full_width = full(g.grid_width);
  if (g.full_height < g.margin + g.height || g.full_width < g.margin + g.width) {
    CVK_THROW(invalid_argument,
              std::string(fn) + ": step " + std::to_string(p.step) + " and sigma " +
                  number_string(p.sigma) + " give a full mask of " +
                  std::to_string(g.full_height) + "×" + std::to_string(g.full_width) +
                  ", too small to crop an " + size_text() + " mask at margin " +
                  std::to_string(g.margin) + " (TorchRay's crop would come out short; use " +
                  "sigma > step/2)");
  }
  return g;
}

/// TorchRay's kernel k(z) = exp(−2·max(z − 1/2, 0)²): 1 on a disc of radius σ/2, a Gaussian
/// tail beyond.
inline double smooth_mask_kernel(double z) noexcept {
  const double t = std::max(z - 0.5, 0.0);
  return std::exp(-2.0 * t * t);
}

/// The generator of one geometry: the tap weights of every pixel position within a cell.
/// A full-mask pixel u = (uy, ux) lies in cell (uy / step, ux / step) and pools the padded grid
/// nodes (uy / step + ky, ux / step + kx), ky, kx in [0, taps), with weights
/// k(‖(uy mod step, ux mod step) − margin·1 − step·(ky, kx) + step·padding·1‖ / σ) that depend
/// only on (uy mod step, ux mod step, ky, kx).
template <class T>
struct smooth_mask_plan {
  smooth_mask_geometry g;
  mask_pooling pooling = mask_pooling::smooth_max;
  T coldness = T(20);
  bool hard = false;  // coldness = +inf
  bool clamp = true;
  int threads = 0;
  index_t taps = 0;        // 2R + 1
  index_t taps2 = 0;       // taps²
  index_t table_rows = 0;  // min(step, full_height)
  index_t table_cols = 0;  // min(step, full_width)
  std::vector<T> weights;  // [table_rows][table_cols][taps2]

  smooth_mask_plan(const smooth_mask_geometry& geometry, const smooth_mask_params& p,
                   const char* fn)
      : g(geometry),
        pooling(p.pooling),
        coldness(static_cast<T>(p.coldness)),
        hard(std::isinf(p.coldness)),
        clamp(p.clamp),
        threads(p.threads) {
    taps = g.taps();
    const auto describe = [&] {
      return std::to_string(taps) + "×" + std::to_string(taps) + " taps of step " +
             std::to_string(g.step);
    };
    taps2 = checked_mul(taps, taps, fn, "the mask taps", describe);
    table_rows = std::min(g.step, g.full_height);
    table_cols = std::min(g.step, g.full_width);
    const index_t count =
        checked_mul(checked_mul(table_rows, table_cols, fn, "the mask weights", describe), taps2,
                    fn, "the mask weights", describe);
    weights = checked_vector<T>(count, fn, "the mask weights", describe);
    const double s = static_cast<double>(g.step);
    const double origin = g.sigma;  // node v sits at σ + step·v (TorchRay's margin = σ, unrounded)
    for (index_t ry = 0; ry < table_rows; ++ry) {
      for (index_t rx = 0; rx < table_cols; ++rx) {
        T* w = weights.data() + (ry * table_cols + rx) * taps2;
        for (index_t ky = 0; ky < taps; ++ky) {
          const double dy = static_cast<double>(ry) - origin -
                            s * static_cast<double>(ky - g.padding);
          for (index_t kx = 0; kx < taps; ++kx) {
            const double dx = static_cast<double>(rx) - origin -
                              s * static_cast<double>(kx - g.padding);
            w[ky * taps + kx] =
                static_cast<T>(smooth_mask_kernel(std::sqrt(dy * dy + dx * dx) / g.sigma));
          }
        }
      }
    }
  }

  [[nodiscard]] const T* weights_at(index_t uy, index_t ux) const noexcept {
    return weights.data() + ((uy % g.step) * table_cols + (ux % g.step)) * taps2;
  }
};

/// Copies parameter grid `k` (gh×gw, any strides) into a zero-padded (gh + 2P)×(gw + 2P) buffer.
template <class T, class Grid>
void pad_mask_grid(const Grid& grid, index_t k, const smooth_mask_geometry& g, T* padded) {
  const index_t pw = g.padded_cols();
  std::fill(padded, padded + g.padded_rows() * pw, T(0));
  for (index_t y = 0; y < g.grid_height; ++y) {
    for (index_t x = 0; x < g.grid_width; ++x) {
      padded[(y + g.padding) * pw + x + g.padding] = static_cast<T>(grid(k, y, x));
    }
  }
}

/// The pooled (unclamped) value of full-mask pixel (uy, ux) from its tap values p[0, taps2)
/// (weights times grid values); `e` receives the softmax numerators exp(T·(p − max p)) for
/// smooth_max, and the returned `denominator` their sum.
template <class T>
T pool_taps(const smooth_mask_plan<T>& plan, const T* p, T* e, T& denominator) noexcept {
  const index_t n = plan.taps2;
  switch (plan.pooling) {
    case mask_pooling::smooth_max: {
      T mx = p[0];
      for (index_t t = 1; t < n; ++t) mx = p[t] > mx ? p[t] : mx;
      if (plan.hard) return mx;
      T den = 0;
      T num = 0;
      for (index_t t = 0; t < n; ++t) {
        e[t] = std::exp(plan.coldness * (p[t] - mx));
        den += e[t];
        num += p[t] * e[t];
      }
      denominator = den;
      return num / den;
    }
    case mask_pooling::sum: {
      T sum = 0;
      for (index_t t = 0; t < n; ++t) sum += p[t];
      return sum;
    }
    case mask_pooling::sigmoid: {
      T sum = 0;
      for (index_t t = 0; t < n; ++t) sum += p[t];
      if (plan.hard) return sum - T(5) > T(0) ? T(1) : T(0);
      return T(1) / (T(1) + std::exp(-(plan.coldness * sum - T(3))));
    }
  }
  return T(0);
}

/// Gathers the taps p_t = w_t·m̄ of full-mask pixel (uy, ux) from a padded grid.
template <class T>
void gather_taps(const smooth_mask_plan<T>& plan, const T* padded, index_t uy, index_t ux,
                 T* p) noexcept {
  const T* w = plan.weights_at(uy, ux);
  const index_t pw = plan.g.padded_cols();
  const T* node = padded + (uy / plan.g.step) * pw + ux / plan.g.step;
  const index_t taps = plan.taps;
  for (index_t ky = 0; ky < taps; ++ky) {
    const T* row = node + ky * pw;
    const T* wr = w + ky * taps;
    T* pr = p + ky * taps;
    for (index_t kx = 0; kx < taps; ++kx) pr[kx] = wr[kx] * row[kx];
  }
}

template <class T>
T clamp_unit(T v) noexcept {
  return v < T(0) ? T(0) : (v > T(1) ? T(1) : v);  // NaN stays NaN (torch's clamp)
}

/// Forward: full masks K×Hf×Wf from padded grids (K consecutive (gh + 2P)×(gw + 2P) buffers).
/// `full(k, uy, ux)` is a mutable view.
template <class T, class Full>
void smooth_mask_forward(const smooth_mask_plan<T>& plan, const T* padded, index_t masks,
                         const Full& full) {
  const auto& g = plan.g;
  const index_t grid_size = g.padded_rows() * g.padded_cols();
  const index_t rows = masks * g.full_height;
  parallel_for(
      0, rows, 4,
      [&](index_t lo, index_t hi) {
        std::vector<T> p(static_cast<std::size_t>(plan.taps2));
        std::vector<T> e(static_cast<std::size_t>(plan.taps2));
        for (index_t r = lo; r < hi; ++r) {
          const index_t k = r / g.full_height;
          const index_t uy = r % g.full_height;
          const T* grid = padded + k * grid_size;
          for (index_t ux = 0; ux < g.full_width; ++ux) {
            gather_taps(plan, grid, uy, ux, p.data());
            T den = 0;
            const T m = pool_taps(plan, p.data(), e.data(), den);
            full(k, uy, ux) = plan.clamp ? clamp_unit(m) : m;
          }
        }
      },
      plan.threads);
}

/// d mask / d p_t of one pixel (written to `d`), given its taps p, the softmax numerators e and
/// their sum `den` (smooth_max), and the pooled value m.
template <class T>
void pool_taps_backward(const smooth_mask_plan<T>& plan, const T* p, const T* e, T den, T m,
                        T* d) noexcept {
  const index_t n = plan.taps2;
  switch (plan.pooling) {
    case mask_pooling::smooth_max: {
      if (plan.hard) {
        // Gradient to the first maximal tap (torch's max(dim) backward through its index).
        index_t arg = 0;
        for (index_t t = 1; t < n; ++t) arg = p[t] > p[arg] ? t : arg;
        for (index_t t = 0; t < n; ++t) d[t] = T(0);
        d[arg] = T(1);
        return;
      }
      // m = Σ p_t s_t, s = softmax(T·p): dm/dp_t = s_t·(1 + T·(p_t − m)).
      for (index_t t = 0; t < n; ++t) d[t] = e[t] / den * (T(1) + plan.coldness * (p[t] - m));
      return;
    }
    case mask_pooling::sum:
      for (index_t t = 0; t < n; ++t) d[t] = T(1);
      return;
    case mask_pooling::sigmoid: {
      const T slope = plan.hard ? T(0) : plan.coldness * m * (T(1) - m);
      for (index_t t = 0; t < n; ++t) d[t] = slope;
      return;
    }
  }
}

/// Backward: d grid (K×gh×gw, overwritten) from d full (K×Hf×Wf) and the padded grids. Cell
/// contributions c[a][b][t] = Σ_{u in cell (a, b)} g_u·∂m_u/∂p_t·w_t(u) are formed for blocks of
/// cell rows (threads over cell rows), then each grid node gathers Σ_t c[node − t] (threads over
/// node rows): every sum has one owner and a fixed order, whatever the thread count.
template <class T, class GradFull, class GradGrid>
void smooth_mask_backward(const smooth_mask_plan<T>& plan, const T* padded, index_t masks,
                          const GradFull& grad_full, const GradGrid& grad_grid, const char* fn) {
  const auto& g = plan.g;
  const index_t grid_size = g.padded_rows() * g.padded_cols();
  const index_t cell_rows = g.cell_rows();
  const index_t cell_cols = g.cell_cols();
  const auto describe = [&] {
    return std::to_string(cell_cols) + "×" + std::to_string(plan.taps2) +
           " cell contributions per row";
  };
  const index_t row_values = checked_mul(cell_cols, plan.taps2, fn, "scratch", describe);
  constexpr index_t budget = index_t{1} << 22;
  const index_t block = std::max<index_t>(1, std::min(cell_rows, budget / row_values));
  std::vector<T> c = checked_vector<T>(checked_mul(block, row_values, fn, "scratch", describe),
                                       fn, "scratch", describe);
  for (index_t k = 0; k < masks; ++k) {
    const T* grid = padded + k * grid_size;
    for (index_t y = 0; y < g.grid_height; ++y) {
      for (index_t x = 0; x < g.grid_width; ++x) grad_grid(k, y, x) = T(0);
    }
    for (index_t a0 = 0; a0 < cell_rows; a0 += block) {
      const index_t a1 = std::min(cell_rows, a0 + block);
      parallel_for(
          a0, a1, 1,
          [&](index_t lo, index_t hi) {
            std::vector<T> p(static_cast<std::size_t>(plan.taps2));
            std::vector<T> e(static_cast<std::size_t>(plan.taps2));
            std::vector<T> d(static_cast<std::size_t>(plan.taps2));
            for (index_t a = lo; a < hi; ++a) {
              T* crow = c.data() + (a - a0) * row_values;
              std::fill(crow, crow + row_values, T(0));
              const index_t uy1 = std::min(g.full_height, (a + 1) * g.step);
              for (index_t uy = a * g.step; uy < uy1; ++uy) {
                for (index_t ux = 0; ux < g.full_width; ++ux) {
                  const T gu = grad_full(k, uy, ux);
                  if (gu == T(0)) continue;
                  gather_taps(plan, grid, uy, ux, p.data());
                  T den = 0;
                  const T m = pool_taps(plan, p.data(), e.data(), den);
                  // torch's clamp passes the gradient where 0 <= m <= 1 (bounds included).
                  if (plan.clamp && !(m >= T(0) && m <= T(1))) continue;
                  pool_taps_backward(plan, p.data(), e.data(), den, m, d.data());
                  const T* w = plan.weights_at(uy, ux);
                  const T* dd = d.data();
                  T* cc = crow + (ux / g.step) * plan.taps2;
                  for (index_t t = 0; t < plan.taps2; ++t) cc[t] += gu * dd[t] * w[t];
                }
              }
            }
          },
          plan.threads);
      // Node (y, x) (padded (y + P, x + P)) receives tap (ky, kx) of cell (y + P − ky, x + P − kx).
      parallel_for(
          0, g.grid_height, 1,
          [&](index_t lo, index_t hi) {
            for (index_t y = lo; y < hi; ++y) {
              for (index_t x = 0; x < g.grid_width; ++x) {
                T sum = grad_grid(k, y, x);
                for (index_t ky = 0; ky < plan.taps; ++ky) {
                  const index_t a = y + g.padding - ky;
                  if (a < a0 || a >= a1) continue;
                  const T* crow = c.data() + (a - a0) * row_values;
                  for (index_t kx = 0; kx < plan.taps; ++kx) {
                    const index_t b = x + g.padding - kx;
                    if (b < 0 || b >= cell_cols) continue;
                    sum += crow[b * plan.taps2 + ky * plan.taps + kx];
                  }
                }
                grad_grid(k, y, x) = sum;
              }
            }
          },
          plan.threads);
    }
  }
}

}  // namespace detail

CVK_END_NAMESPACE
