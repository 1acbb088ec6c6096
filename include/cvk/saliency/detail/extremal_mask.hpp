// cvk — computer-vision kernels, header-only C++20.
// Internals of <cvk/saliency/extremal.hpp>: the smooth-mask generator of Extremal Perturbations
// (TorchRay's MaskGenerator) — geometry, the tap-weight table, forward and backward kernels.
// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
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
  [[nodiscard]] index_t cell_rows() const noexcept {
    return grid_height + 2 * padding - 2 * radius;
  }
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
    CVK_THROW(invalid_argument,
              std::string(fn) + ": sigma must be finite and > 0, got " + number_string(p.sigma));
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
    CVK_THROW(shape_error,
              std::string(fn) + ": the mask size H×W must have H, W >= 1, got " + size_text());
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
    CVK_THROW(out_of_range, std::string(fn) + ": sigma " + number_string(p.sigma) + " with step " +
                                std::to_string(p.step) +
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
                  number_string(p.sigma) + " give a full mask of " + std::to_string(g.full_height) +
                  "×" + std::to_string(g.full_width) + ", too small to crop an " + size_text() +
                  " mask at margin " + std::to_string(g.margin) +
                  " (TorchRay's crop would come out short; use " + "sigma > step/2)");
  }
  return g;
}

/// TorchRay's kernel k(z) = exp(−2·max(z − 1/2, 0)²): 1 on a disc of radius σ/2, a Gaussian
/// tail beyond.
inline double smooth_mask_kernel(double z) noexcept {
  const double t = std::max(z - 0.5, 0.0);
  return std::exp(-2.0 * t * t);
}

/// The generator of one geometry: the tap weights of every full-mask pixel. Pixel u = (uy, ux)
/// lies in cell (uy / step, ux / step) and pools the padded grid nodes (uy / step + ky,
/// ux / step + kx), ky, kx in [0, taps), with weights
/// k(‖(uy mod step, ux mod step) − σ·1 − step·(ky − P, kx − P)‖ / σ) that depend only on
/// (uy mod step, ux mod step, ky, kx). They are stored per row phase ry = uy mod step, tap
/// t = ky·taps + kx and column ux: row_weights[(ry·taps² + t)·Wf + ux], so that a whole row of
/// pixels is evaluated tap by tap with contiguous (vectorised) inner loops.
template <class T>
struct smooth_mask_plan {
  smooth_mask_geometry g;
  mask_pooling pooling = mask_pooling::smooth_max;
  T coldness = T(20);
  bool hard = false;  // coldness = +inf
  bool clamp = true;
  int threads = 0;
  index_t taps = 0;      // 2R + 1
  index_t taps2 = 0;     // taps²
  index_t phases = 0;    // min(step, full_height): the row phases uy mod step that occur
  index_t node_row = 0;  // step·padded_cols: a padded node row upsampled by step
  std::vector<T> row_weights;

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
             std::to_string(g.step) + " over " + std::to_string(g.full_width) + " columns";
    };
    taps2 = checked_mul(taps, taps, fn, "the mask weights", describe);
    phases = std::min(g.step, g.full_height);
    node_row = checked_mul(g.step, g.padded_cols(), fn, "the mask weights", describe);
    const index_t count = checked_mul(checked_mul(phases, taps2, fn, "the mask weights", describe),
                                      g.full_width, fn, "the mask weights", describe);
    row_weights = checked_vector<T>(count, fn, "the mask weights", describe);
    const double s = static_cast<double>(g.step);
    const double origin = g.sigma;  // node v sits at σ + step·v (TorchRay's margin = σ, unrounded)
    const index_t wf = g.full_width;
    const index_t cols = std::min(g.step, wf);
    std::vector<T> phase(static_cast<std::size_t>(cols));
    for (index_t ry = 0; ry < phases; ++ry) {
      for (index_t ky = 0; ky < taps; ++ky) {
        const double dy =
            static_cast<double>(ry) - origin - s * static_cast<double>(ky - g.padding);
        for (index_t kx = 0; kx < taps; ++kx) {
          for (index_t rx = 0; rx < cols; ++rx) {
            const double dx =
                static_cast<double>(rx) - origin - s * static_cast<double>(kx - g.padding);
            phase[static_cast<std::size_t>(rx)] =
                static_cast<T>(smooth_mask_kernel(std::sqrt(dy * dy + dx * dx) / g.sigma));
          }
          T* w = row_weights.data() + (ry * taps2 + ky * taps + kx) * wf;
          for (index_t ux = 0; ux < wf; ++ux) w[ux] = phase[static_cast<std::size_t>(ux % g.step)];
        }
      }
    }
  }

  /// The weights of tap t along full-mask row uy (Wf values).
  [[nodiscard]] const T* weights(index_t uy, index_t t) const noexcept {
    return row_weights.data() + ((uy % g.step) * taps2 + t) * g.full_width;
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

/// exp(x) for the smooth max's softmax numerators, written so that loops over it vectorise
/// (no call, no branch): x·log2(e) rounded to n by the 1.5·2^(mantissa bits) trick, r = x − n·ln2
/// (Cody–Waite, two constants), exp(r) by its Taylor polynomial (degree 7 for float, 13 for
/// double), times 2^n built in the exponent bits; within 1.2 ulp of exp over the whole range
/// (measured). x is clamped to the normal range first (float [−87, 88], double [−708, 709]):
/// results below are ~1e−38 / ~1e−308 instead of subnormals or 0, far below the rounding of the
/// sums they enter (the largest numerator is exp(0) = 1). NaN gives NaN.
inline float softmax_exp(float x) noexcept {
  x = x < -87.0F ? -87.0F : x;
  x = x > 88.0F ? 88.0F : x;
  constexpr float magic = 12582912.0F;  // 1.5·2^23
  const float t = x * 1.44269504088896341F + magic;
  const float n = t - magic;
  const float r = (x - n * 0.693145751953125F) - n * 1.42860682030941723212e-6F;
  float q = 1.0F / 5040.0F;
  q = q * r + 1.0F / 720.0F;
  q = q * r + 1.0F / 120.0F;
  q = q * r + 1.0F / 24.0F;
  q = q * r + 1.0F / 6.0F;
  q = q * r + 0.5F;
  q = q * r + 1.0F;
  q = q * r + 1.0F;
  const auto k = std::bit_cast<std::int32_t>(t) - std::bit_cast<std::int32_t>(magic);
  return q *
         std::bit_cast<float>(static_cast<std::int32_t>(static_cast<std::uint32_t>(k + 127) << 23));
}

inline double softmax_exp(double x) noexcept {
  x = x < -708.0 ? -708.0 : x;
  x = x > 709.0 ? 709.0 : x;
  constexpr double magic = 6755399441055744.0;  // 1.5·2^52
  const double t = x * 1.4426950408889634074 + magic;
  const double n = t - magic;
  const double r = (x - n * 0.693147180369123816490) - n * 1.90821492927058770002e-10;
  double q = 1.0 / 6227020800.0;
  q = q * r + 1.0 / 479001600.0;
  q = q * r + 1.0 / 39916800.0;
  q = q * r + 1.0 / 3628800.0;
  q = q * r + 1.0 / 362880.0;
  q = q * r + 1.0 / 40320.0;
  q = q * r + 1.0 / 5040.0;
  q = q * r + 1.0 / 720.0;
  q = q * r + 1.0 / 120.0;
  q = q * r + 1.0 / 24.0;
  q = q * r + 1.0 / 6.0;
  q = q * r + 0.5;
  q = q * r + 1.0;
  q = q * r + 1.0;
  const auto k = std::bit_cast<std::int64_t>(t) - std::bit_cast<std::int64_t>(magic);
  return q * std::bit_cast<double>(
                 static_cast<std::int64_t>(static_cast<std::uint64_t>(k + 1023) << 52));
}

/// One tap of a row of smooth maxima: e = exp(c·(w·v − top)), den += e, num += w·v·e.
template <class T>
void softmax_tap_row(const T* __restrict w, const T* __restrict v, const T* __restrict top,
                     T* __restrict den, T* __restrict num, T* __restrict e, T c,
                     index_t n) noexcept {
  for (index_t i = 0; i < n; ++i) {
    const T p = w[i] * v[i];
    const T x = softmax_exp(c * (p - top[i]));
    den[i] += x;
    num[i] += p * x;
    e[i] = x;
  }
}

/// Per-thread buffers of the row kernels.
template <class T>
struct mask_row_scratch {
  std::vector<T> nodes;      // taps × node_row: the padded node rows of a cell row, upsampled
  std::vector<T> top;        // Wf: max_t p_t (smooth_max) or Σ_t p_t (sum, sigmoid)
  std::vector<T> den, num;   // Wf: Σ_t e_t and Σ_t p_t·e_t (smooth_max)
  std::vector<T> m;          // Wf: the pooled value, before the clamp
  std::vector<index_t> arg;  // Wf: the first maximal tap (hard max)
  std::vector<T> e;          // taps² × Wf: softmax numerators (backward only)
  std::vector<T> acc;        // taps² × Wf: per-column tap gradients of a cell row (backward)

  mask_row_scratch(const smooth_mask_plan<T>& plan, bool backward) {
    const auto wf = static_cast<std::size_t>(plan.g.full_width);
    nodes.resize(static_cast<std::size_t>(plan.taps * plan.node_row));
    top.resize(wf);
    den.resize(wf);
    num.resize(wf);
    m.resize(wf);
    if (plan.hard) arg.resize(wf);
    if (backward) {
      if (plan.pooling == mask_pooling::smooth_max && !plan.hard) {
        e.resize(static_cast<std::size_t>(plan.taps2) * wf);
      }
      acc.resize(static_cast<std::size_t>(plan.taps2) * wf);
    }
  }
};

/// Loads the padded node rows a .. a + taps − 1 of one grid, each value repeated `step` times.
template <class T>
void load_node_rows(const smooth_mask_plan<T>& plan, const T* padded, index_t a,
                    mask_row_scratch<T>& sc) {
  const index_t pw = plan.g.padded_cols(), s = plan.g.step;
  for (index_t ky = 0; ky < plan.taps; ++ky) {
    const T* src = padded + (a + ky) * pw;
    T* dst = sc.nodes.data() + ky * plan.node_row;
    for (index_t c = 0; c < pw; ++c) {
      for (index_t r = 0; r < s; ++r) dst[c * s + r] = src[c];
    }
  }
}

/// The pooled values (before the clamp) of full-mask row uy into sc.m, from the node rows of
/// its cell row (load_node_rows). Tap t = (ky, kx) of pixel ux is p_t = w_t(ux)·node_ky(ux +
/// kx·step); every reduction runs over t in order, per pixel. `keep_e`: store the softmax
/// numerators for the backward.
template <class T>
void pool_row(const smooth_mask_plan<T>& plan, index_t uy, mask_row_scratch<T>& sc, bool keep_e) {
  const index_t wf = plan.g.full_width, s = plan.g.step, taps = plan.taps;
  T* top = sc.top.data();
  T* m = sc.m.data();
  const auto tap = [&](index_t t, const T*& w, const T*& v) {
    w = plan.weights(uy, t);
    v = sc.nodes.data() + (t / taps) * plan.node_row + (t % taps) * s;
  };
  const T* w = nullptr;
  const T* v = nullptr;
  if (plan.pooling == mask_pooling::smooth_max) {
    tap(0, w, v);
    for (index_t ux = 0; ux < wf; ++ux) top[ux] = w[ux] * v[ux];
    if (plan.hard) {
      index_t* arg = sc.arg.data();
      for (index_t ux = 0; ux < wf; ++ux) arg[ux] = 0;
      for (index_t t = 1; t < plan.taps2; ++t) {
        tap(t, w, v);
        for (index_t ux = 0; ux < wf; ++ux) {
          const T p = w[ux] * v[ux];
          arg[ux] = p > top[ux] ? t : arg[ux];
          top[ux] = p > top[ux] ? p : top[ux];
        }
      }
      for (index_t ux = 0; ux < wf; ++ux) m[ux] = top[ux];
      return;
    }
    for (index_t t = 1; t < plan.taps2; ++t) {
      tap(t, w, v);
      for (index_t ux = 0; ux < wf; ++ux) {
        const T p = w[ux] * v[ux];
        top[ux] = p > top[ux] ? p : top[ux];
      }
    }
    T* den = sc.den.data();
    T* num = sc.num.data();
    for (index_t ux = 0; ux < wf; ++ux) den[ux] = num[ux] = T(0);
    const T c = plan.coldness;
    for (index_t t = 0; t < plan.taps2; ++t) {
      tap(t, w, v);
      if (keep_e) {
        softmax_tap_row(w, v, top, den, num, sc.e.data() + t * wf, c, wf);
      } else {
        for (index_t ux = 0; ux < wf; ++ux) {
          const T p = w[ux] * v[ux];
          const T x = softmax_exp(c * (p - top[ux]));
          den[ux] += x;
          num[ux] += p * x;
        }
      }
    }
    for (index_t ux = 0; ux < wf; ++ux) m[ux] = num[ux] / den[ux];
    return;
  }
  for (index_t ux = 0; ux < wf; ++ux) top[ux] = T(0);
  for (index_t t = 0; t < plan.taps2; ++t) {
    tap(t, w, v);
    for (index_t ux = 0; ux < wf; ++ux) top[ux] += w[ux] * v[ux];
  }
  if (plan.pooling == mask_pooling::sum) {
    for (index_t ux = 0; ux < wf; ++ux) m[ux] = top[ux];
  } else if (plan.hard) {
    for (index_t ux = 0; ux < wf; ++ux) m[ux] = top[ux] - T(5) > T(0) ? T(1) : T(0);
  } else {
    const T c = plan.coldness;
    for (index_t ux = 0; ux < wf; ++ux) m[ux] = T(1) / (T(1) + std::exp(-(c * top[ux] - T(3))));
  }
}

template <class T>
T clamp_unit(T v) noexcept {
  return v < T(0) ? T(0) : (v > T(1) ? T(1) : v);  // NaN stays NaN (torch's clamp)
}

/// Chunk size of a loop over `count` rows: about four chunks per thread (results do not depend
/// on it: every row is computed alone).
inline index_t row_grain(index_t count, int threads) noexcept {
  const index_t team = threads > 0 ? threads : max_threads();
  return std::max<index_t>(1, count / std::max<index_t>(1, 4 * team));
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
      0, rows, row_grain(rows, plan.threads),
      [&](index_t lo, index_t hi) {
        mask_row_scratch<T> sc(plan, false);
        index_t loaded = -1;
        for (index_t r = lo; r < hi; ++r) {
          const index_t k = r / g.full_height;
          const index_t uy = r % g.full_height;
          const index_t cell = k * g.cell_rows() + uy / g.step;
          if (cell != loaded) {
            load_node_rows(plan, padded + k * grid_size, uy / g.step, sc);
            loaded = cell;
          }
          pool_row(plan, uy, sc, false);
          for (index_t ux = 0; ux < g.full_width; ++ux) {
            const T m = sc.m[static_cast<std::size_t>(ux)];
            full(k, uy, ux) = plan.clamp ? clamp_unit(m) : m;
          }
        }
      },
      plan.threads);
}

/// Adds the tap gradients of full-mask row uy, weighted by the row's mask gradient gm (already
/// zero where the clamp stops it), to sc.acc[t][ux]: gm·∂m/∂p_t·w_t.
template <class T>
void accumulate_row_backward(const smooth_mask_plan<T>& plan, index_t uy, const T* gm,
                             mask_row_scratch<T>& sc) {
  const index_t wf = plan.g.full_width, s = plan.g.step, taps = plan.taps;
  T* f = sc.top.data();  // reused: the per-pixel factor
  const T* m = sc.m.data();
  switch (plan.pooling) {
    case mask_pooling::smooth_max: {
      if (plan.hard) {
        // Gradient to the first maximal tap (torch's max(dim) backward through its index).
        for (index_t ux = 0; ux < wf; ++ux) {
          const index_t t = sc.arg[static_cast<std::size_t>(ux)];
          sc.acc[static_cast<std::size_t>(t * wf + ux)] += gm[ux] * plan.weights(uy, t)[ux];
        }
        return;
      }
      // m = Σ p_t s_t, s = softmax(T·p): dm/dp_t = s_t·(1 + T·(p_t − m)).
      const T c = plan.coldness;
      for (index_t ux = 0; ux < wf; ++ux) f[ux] = gm[ux] / sc.den[static_cast<std::size_t>(ux)];
      for (index_t t = 0; t < plan.taps2; ++t) {
        const T* __restrict w = plan.weights(uy, t);
        const T* __restrict v = sc.nodes.data() + (t / taps) * plan.node_row + (t % taps) * s;
        const T* __restrict e = sc.e.data() + t * wf;
        const T* __restrict fr = f;
        const T* __restrict mr = m;
        T* __restrict acc = sc.acc.data() + t * wf;
        for (index_t ux = 0; ux < wf; ++ux) {
          const T p = w[ux] * v[ux];
          acc[ux] += fr[ux] * e[ux] * (T(1) + c * (p - mr[ux])) * w[ux];
        }
      }
      return;
    }
    case mask_pooling::sum:
      for (index_t ux = 0; ux < wf; ++ux) f[ux] = gm[ux];
      break;
    case mask_pooling::sigmoid: {
      const T c = plan.coldness;
      for (index_t ux = 0; ux < wf; ++ux) {
        f[ux] = plan.hard ? T(0) : gm[ux] * c * m[ux] * (T(1) - m[ux]);
      }
      break;
    }
  }
  for (index_t t = 0; t < plan.taps2; ++t) {
    const T* __restrict w = plan.weights(uy, t);
    const T* __restrict fr = f;
    T* __restrict acc = sc.acc.data() + t * wf;
    for (index_t ux = 0; ux < wf; ++ux) acc[ux] += fr[ux] * w[ux];
  }
}

/// Backward: d grid (K×gh×gw, overwritten) from d full (K×Hf×Wf) and the padded grids. For each
/// cell row, the tap gradients of its pixels are summed per column over its rows, then per cell
/// into c[a][b][t] = Σ_{u in cell (a, b)} g_u·∂m_u/∂p_t·w_t(u) (threads over cell rows, blocks of
/// cell rows bounding the memory); then each grid node gathers Σ_t c[node − t] (threads over node
/// rows). Every sum has one owner and a fixed order, whatever the thread count.
template <class T, class GradFull, class GradGrid>
void smooth_mask_backward(const smooth_mask_plan<T>& plan, const T* padded, index_t masks,
                          const GradFull& grad_full, const GradGrid& grad_grid, const char* fn) {
  const auto& g = plan.g;
  const index_t grid_size = g.padded_rows() * g.padded_cols();
  const index_t cell_rows = g.cell_rows();
  const index_t cell_cols = g.cell_cols();
  const index_t wf = g.full_width;
  const auto describe = [&] {
    return std::to_string(cell_cols) + "×" + std::to_string(plan.taps2) +
           " cell contributions per row";
  };
  const index_t row_values = checked_mul(cell_cols, plan.taps2, fn, "scratch", describe);
  constexpr index_t budget = index_t{1} << 22;
  const index_t block = std::max<index_t>(1, std::min(cell_rows, budget / row_values));
  std::vector<T> c = checked_vector<T>(checked_mul(block, row_values, fn, "scratch", describe), fn,
                                       "scratch", describe);
  check_allocation_size(checked_mul(2 * plan.taps2, wf, fn, "scratch", describe), sizeof(T), fn,
                        "scratch", describe);
  const bool keep_e = plan.pooling == mask_pooling::smooth_max && !plan.hard;
  for (index_t k = 0; k < masks; ++k) {
    const T* grid = padded + k * grid_size;
    for (index_t y = 0; y < g.grid_height; ++y) {
      for (index_t x = 0; x < g.grid_width; ++x) grad_grid(k, y, x) = T(0);
    }
    for (index_t a0 = 0; a0 < cell_rows; a0 += block) {
      const index_t a1 = std::min(cell_rows, a0 + block);
      parallel_for(
          a0, a1, row_grain(a1 - a0, plan.threads),
          [&](index_t lo, index_t hi) {
            mask_row_scratch<T> sc(plan, true);
            std::vector<T> gm(static_cast<std::size_t>(wf));
            for (index_t a = lo; a < hi; ++a) {
              std::fill(sc.acc.begin(), sc.acc.end(), T(0));
              load_node_rows(plan, grid, a, sc);
              bool any = false;
              const index_t uy1 = std::min(g.full_height, (a + 1) * g.step);
              for (index_t uy = a * g.step; uy < uy1; ++uy) {
                bool row_any = false;
                for (index_t ux = 0; ux < wf; ++ux) {
                  gm[static_cast<std::size_t>(ux)] = grad_full(k, uy, ux);
                  row_any = row_any || gm[static_cast<std::size_t>(ux)] != T(0);
                }
                if (!row_any) continue;
                any = true;
                pool_row(plan, uy, sc, keep_e);
                if (plan.clamp) {
                  // torch's clamp passes the gradient where 0 <= m <= 1 (bounds included).
                  for (index_t ux = 0; ux < wf; ++ux) {
                    const T m = sc.m[static_cast<std::size_t>(ux)];
                    if (!(m >= T(0) && m <= T(1))) gm[static_cast<std::size_t>(ux)] = T(0);
                  }
                }
                accumulate_row_backward(plan, uy, gm.data(), sc);
              }
              T* crow = c.data() + (a - a0) * row_values;
              for (index_t b = 0; b < cell_cols; ++b) {
                const index_t x0 = b * g.step, x1 = std::min(wf, x0 + g.step);
                for (index_t t = 0; t < plan.taps2; ++t) {
                  T sum = 0;
                  if (any) {
                    const T* acc = sc.acc.data() + t * wf;
                    for (index_t ux = x0; ux < x1; ++ux) sum += acc[ux];
                  }
                  crow[b * plan.taps2 + t] = sum;
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
