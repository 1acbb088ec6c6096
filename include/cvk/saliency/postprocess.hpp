// cvk — computer-vision kernels, header-only C++20.
// Post-processing of saliency maps: bilinear upsampling (PyTorch's F.interpolate, both
// align_corners conventions), normalisation (min-max, max-abs, Captum's cumulative-sum outlier
// clip, PAIR's percentile) with Captum's sign selection, TorchRay's Gaussian smoothing, channel
// reduction of elementwise attributions, colour maps (OpenCV's jet, Google's Turbo, a
// blue-white-red diverging map) and pytorch-grad-cam's overlay onto an RGB image.
// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "../core/as_view.hpp"
#include "../core/config.hpp"
#include "../core/errors.hpp"
#include "../core/layout.hpp"
#include "../core/parallel.hpp"
#include "../core/strided_view.hpp"
#include "../core/tensor.hpp"
#include "../detail/checks.hpp"
#include "detail/postprocess_run.hpp"
#include "detail/resample.hpp"

CVK_BEGIN_NAMESPACE

// The contract of the post-processing operators.
//
// Shapes (every tensor any tensor type and any strides; T = float or double):
//   maps          N×H×W, one saliency map per image
//   attributions  N×C×H×W (layout::nchw) or N×H×W×C (layout::nhwc), elementwise attributions
//   rgb           H×W×3 or N×H×W×3 (channels last, R G B), uint8 or T in [0, 1]
//
// Forms (each value-returning form has a write-into twin taking `out` before the params):
//   upsample_bilinear(maps, {Ho, Wo}, upsample_params)     → tensor<T, 3> N×Ho×Wo
//   upsample_bilinear(maps, out, upsample_params)            out N×Ho×Wo (its extents give Ho, Wo)
//   normalize(maps, normalize_params)                        → tensor<T, 3> N×H×W
//   normalize(maps, out, normalize_params)                   out may be maps itself
//   gaussian_smooth(maps, sigma, smooth_params)              → tensor<T, 3> N×H×W
//   gaussian_smooth(maps, sigma, out, smooth_params)         out may be maps itself
//   reduce_channels(attributions, reduce_params)             → tensor<T, 3> N×H×W
//   reduce_channels(attributions, out, reduce_params)
//   colormap(map H×W, colormap_params)                       → tensor<uint8_t, 3> H×W×3
//   colormap(maps N×H×W, colormap_params)                    → tensor<uint8_t, 4> N×H×W×3
//   colormap(map or maps, out, colormap_params)
//   colormap_table(cmap)                                     → the 256 RGB entries
//   overlay(rgb, heat, overlay_params)                       → tensor<uint8_t, R> (rgb's shape)
//   overlay(rgb, heat, out, overlay_params)
//   A runtime-rank tensor (xt::xarray, DLPack) takes the batched form and is checked there.
//
// Formulas and whose convention each default follows:
//   upsample_bilinear  F.interpolate(mode="bilinear", align_corners) per map (PyTorch 1.13).
//                      align_corners=false (torch's and pytorch-grad-cam's default): source
//                      coordinate (o + 0.5)·H/Ho − 0.5, clamped below at 0; true: o·(H−1)/(Ho−1).
//   normalize          s = the sign selection of x (Captum's sign: all, positive, negative →
//                      max(−x, 0), absolute), then per normalize_mode (see its enumerators):
//                      min_max (s − min)/(max − min); max_abs s / max|s|; percentile_clip
//                      clip(s/t, −1, 1) with t Captum's cumulative-sum threshold at
//                      (100 − outlier_percent)% of |s| (outlier_percent = 2, Captum's
//                      default); percentile clip((s − min)/(P − min), 0, 1), P the numpy linear
//                      percentile (99, PAIR's default). Statistics per map (per_map = true,
//                      pytorch-grad-cam's scale_cam_image) or over the whole batch. Computed in
//                      double, rounded once to T.
//                      A zero range (max = min, max|s| = 0, t = 0, P = min) gives zeros, never
//                      NaN. NaN or ±inf in a map is rejected (cvk::invalid_argument naming the
//                      map and the pixel) before anything is written.
//   gaussian_smooth    TorchRay's imsmooth per map: separable taps exp(−k²/(2σ²)), |k| <=
//                      ceil(4σ), normalised to sum 1; border zero (TorchRay), replicate or
//                      reflect. σ = 0 copies.
//   reduce_channels    sum (default, Captum's visualize_image_attr), abs_sum (PAIR), max_abs
//                      (TorchRay), l2, mean over C; sums in double. NaN propagates (max_abs
//                      included: a NaN channel makes the pixel NaN).
//   colormap           entry floor(255·t) of a 256-entry table, t = the value clamped to [0, 1]
//                      (diverging: t = (v + 1)/2 of v clamped to [−1, 1]), the product taken
//                      in T as pytorch-grad-cam's np.uint8(255 · mask). jet = OpenCV's
//                      COLORMAP_JET (as RGB, not OpenCV's BGR): clamp(1.5 − |4t − k|, 0, 1),
//                      k = 3, 2, 1 for r, g, b, tabulated with OpenCV's float arithmetic and
//                      ×255 rounded half to even (OpenCV's table, entry for entry); turbo =
//                      Google's polynomial fit ×255 rounded; diverging = matplotlib's bwr, exact in
//                      integers (v = 0 gives entry 127 = (254, 254, 255)). NaN is rejected.
//   overlay            rescale (default, pytorch-grad-cam's show_cam_on_image): with w the
//                      image_weight (0.5) and both images in [0, 1] (uint8 / 255),
//                      c = (1 − w)·heat + w·rgb, then c / max(c) over the image (all pixels and
//                      channels; a black result stays black), out = floor(255·c).
//                      blend: out = round(255·((1 − w)·heat + w·rgb)), no rescaling.
//                      Computed in float, as pytorch-grad-cam's float32 arrays (bit-identical
//                      to it), or in double for a double image. T images must lie in [0, 1]
//                      (pytorch-grad-cam raises too).
//
// Errors (each message names the function, the argument and the shapes):
//   cvk::shape_error       wrong rank; C or the colour axis != 3 where 3 is needed; H or W = 0
//                          in upsample_bilinear with maps to resize; heat or out of another
//                          shape; reduce_channels with C = 0
//   cvk::invalid_argument  size {Ho, Wo} with an entry < 1; sigma < 0, NaN, inf or > 2^22;
//                          percentages outside [0, 100]; image_weight outside [0, 1]; an
//                          enumerator out of range; threads < 0; NaN/inf in normalize's maps,
//                          NaN in colormap's maps, a T rgb value outside [0, 1] or NaN
//   cvk::out_of_range      size products that overflow or cannot be allocated
// Empty batches (N = 0) and empty maps (H·W = 0) give empty results without error, except in
// upsample_bilinear (a non-empty output needs H, W >= 1).
//
// Complexity (P = N·H·W): upsample O(N·Ho·Wo); normalize O(P) (percentile_clip sorts each map:
// O(P log(H·W)); the percentile modes hold one copy of a map, or of the batch when per_map is
// false); gaussian_smooth 2·(2·ceil(4σ) + 1)·P multiply-adds and H·W scratch per thread;
// reduce_channels O(P·C) with H·W doubles per thread; colormap O(P); overlay O(P). Threads
// split maps (colormap and overlay: rows); every value is computed by one thread in a fixed
// order, so results are bit-identical for any thread count.

/// The border of gaussian_smooth (zero = TorchRay's constant padding).
using blur_border = detail::blur_border;

/// Parameters of upsample_bilinear.
struct upsample_params {
  /// PyTorch's align_corners; false is torch's and pytorch-grad-cam's default.
  bool align_corners = false;
  int threads = 0;
};

/// Parameters of normalize.
struct normalize_params {
  normalize_mode mode = normalize_mode::min_max;
  sign_mode sign = sign_mode::all;
  /// percentile_clip: the share of |s| mass cut off at the top, in [0, 100] (Captum's
  /// outlier_perc, default 2).
  double outlier_percent = 2.0;
  /// percentile: which percentile maps to 1, in [0, 100] (PAIR's default 99).
  double percentile = 99.0;
  /// true: statistics per map; false: one set over the whole batch.
  bool per_map = true;
  int threads = 0;
};

/// Parameters of gaussian_smooth (σ is an argument).
struct smooth_params {
  blur_border border = blur_border::zero;
  int threads = 0;
};

/// Parameters of reduce_channels.
struct reduce_params {
  channel_reduction mode = channel_reduction::sum;
  layout data_layout = layout::nchw;
  int threads = 0;
};

/// Parameters of colormap.
struct colormap_params {
  cmap map = cmap::jet;
  int threads = 0;
};

/// How overlay mixes a heat map into an image.
enum class overlay_mode {
  rescale,  ///< pytorch-grad-cam's show_cam_on_image: mix, divide by the maximum, truncate
  blend,    ///< plain alpha blend, rounded, no rescaling
};

/// Parameters of overlay.
struct overlay_params {
  overlay_mode mode = overlay_mode::rescale;
  /// Weight w of the image: (1 − w)·heat + w·image (pytorch-grad-cam's image_weight, 0.5).
  double image_weight = 0.5;
  int threads = 0;
};

namespace detail {

inline void check_normalize_params(const normalize_params& p, const char* fn) {
  if (p.mode != normalize_mode::min_max && p.mode != normalize_mode::max_abs &&
      p.mode != normalize_mode::percentile_clip && p.mode != normalize_mode::percentile) {
    CVK_THROW(invalid_argument, std::string(fn) + ": mode is not a cvk::normalize_mode");
  }
  if (p.sign != sign_mode::all && p.sign != sign_mode::positive && p.sign != sign_mode::negative &&
      p.sign != sign_mode::absolute) {
    CVK_THROW(invalid_argument, std::string(fn) + ": sign is not a cvk::sign_mode");
  }
  if (!(p.outlier_percent >= 0.0 && p.outlier_percent <= 100.0)) {
    CVK_THROW(invalid_argument, std::string(fn) + ": outlier_percent must be in [0, 100], got " +
                                    number_string(p.outlier_percent));
  }
  if (!(p.percentile >= 0.0 && p.percentile <= 100.0)) {
    CVK_THROW(invalid_argument, std::string(fn) + ": percentile must be in [0, 100], got " +
                                    number_string(p.percentile));
  }
  check_thread_count(p.threads, fn);
}

/// The range of the selected values of a plane, and the values themselves appended to
/// `values` when it is not null.
template <class T>
map_range plane_range(const strided_view<const T, 2>& m, sign_mode sign,
                      std::vector<double>* values) {
  map_range r;
  for (index_t y = 0; y < m.extent(0); ++y) {
    for (index_t x = 0; x < m.extent(1); ++x) {
      const double s = static_cast<double>(select_sign(m(y, x), sign));
      r.add(s);
      if (values != nullptr) values->push_back(s);
    }
  }
  return r;
}

template <class T>
void normalize_plane(const strided_view<const T, 2>& m, const strided_view<T, 2>& o, sign_mode sign,
                     const normalization& plan) {
  for (index_t y = 0; y < m.extent(0); ++y) {
    for (index_t x = 0; x < m.extent(1); ++x) {
      o(y, x) = apply_normalization(select_sign(m(y, x), sign), plan);
    }
  }
}

template <class T>
void run_normalize(const strided_view<const T, 3>& maps, const strided_view<T, 3>& out,
                   const normalize_params& p, const char* fn) {
  const index_t n = maps.extent(0), h = maps.extent(1), w = maps.extent(2);
  if (n == 0 || h == 0 || w == 0) return;
  const bool needs_values =
      p.mode == normalize_mode::percentile_clip || p.mode == normalize_mode::percentile;
  const index_t plane_size = h * w;  // <= N·H·W, which the caller checked
  // Every map is checked before any value is written (out may be maps).
  for (index_t i = 0; i < n; ++i) expect_finite_plane(plane(maps, i), i, fn, "maps");
  if (p.per_map) {
    // Each map's statistics and values by the thread that writes it.
    parallel_for(
        0, n, 1,
        [&](index_t lo, index_t hi) {
          std::vector<double> values;
          if (needs_values) values = checked_vector<double>(plane_size, fn, "a map's values", maps);
          for (index_t i = lo; i < hi; ++i) {
            values.clear();
            const auto m = plane(maps, i);
            const map_range r = plane_range(m, p.sign, needs_values ? &values : nullptr);
            const auto plan =
                plan_normalization(p.mode, r, &values, p.outlier_percent, p.percentile);
            normalize_plane(m, plane(out, i), p.sign, plan);
          }
        },
        p.threads);
    return;
  }
  // Whole batch: every map measured before any value is written.
  std::vector<double> values;
  if (needs_values) {
    values = checked_vector<double>(checked_mul(n, plane_size, fn, "maps", maps), fn,
                                    "the batch's values", maps);
    values.clear();
  }
  map_range total;
  for (index_t i = 0; i < n; ++i) {
    total.merge(plane_range(plane(maps, i), p.sign, needs_values ? &values : nullptr));
  }
  const auto plan = plan_normalization(p.mode, total, &values, p.outlier_percent, p.percentile);
  parallel_for(
      0, n, 1,
      [&](index_t lo, index_t hi) {
        for (index_t i = lo; i < hi; ++i)
          normalize_plane(plane(maps, i), plane(out, i), p.sign, plan);
      },
      p.threads);
}

/// The {N, H, W} of `attributions` in layout l and its (n, c, h, w)-ordered view.
template <class T, class X>
strided_view<const T, 4> attributions_input(const X& x, layout l, const char* fn) {
  if (l != layout::nchw && l != layout::nhwc) {
    CVK_THROW(invalid_argument, std::string(fn) + ": data_layout is not a cvk::layout");
  }
  const auto v = checked_view<4>(x, fn, "attributions");
  const auto a = permute_axes(strided_view<const T, 4>(v), nchw_axes(l));
  if (a.extent(1) == 0) {
    CVK_THROW(shape_error, std::string(fn) + ": attributions must have C >= 1 channels (" +
                               layout_pattern(l) + "), got " + v.shape_string());
  }
  return a;
}

template <class T>
void run_reduce_channels(const strided_view<const T, 4>& a, const strided_view<T, 3>& out,
                         const reduce_params& p, const char* fn) {
  const index_t n = a.extent(0), c = a.extent(1), h = a.extent(2), w = a.extent(3);
  if (n == 0 || h == 0 || w == 0) return;
  using A = resample_accumulator_t<T>;
  const channel_reduction mode = p.mode;
  parallel_for(
      0, n, 1,
      [&](index_t lo, index_t hi) {
        // One accumulator per pixel, channels outermost: each channel plane is read in its own
        // memory order (contiguous in NCHW).
        auto acc = checked_vector<A>(h * w, fn, "a map's accumulators", out);
        for (index_t i = lo; i < hi; ++i) {
          std::fill(acc.begin(), acc.end(), A(0));
          for (index_t ch = 0; ch < c; ++ch) {
            for (index_t y = 0; y < h; ++y) {
              A* row = acc.data() + y * w;
              for (index_t x = 0; x < w; ++x) {
                const A v = static_cast<A>(a(i, ch, y, x));
                switch (mode) {
                  case channel_reduction::sum:
                  case channel_reduction::mean:
                    row[x] += v;
                    break;
                  case channel_reduction::abs_sum:
                    row[x] += std::fabs(v);
                    break;
                  case channel_reduction::l2:
                    row[x] += v * v;
                    break;
                  case channel_reduction::max_abs:
                    // NaN wins (and stays): a NaN channel makes the pixel NaN.
                    if (std::isnan(v) || std::isnan(row[x])) {
                      row[x] = std::numeric_limits<A>::quiet_NaN();
                    } else {
                      row[x] = std::max(row[x], std::fabs(v));
                    }
                    break;
                }
              }
            }
          }
          for (index_t y = 0; y < h; ++y) {
            for (index_t x = 0; x < w; ++x) {
              A v = acc[static_cast<std::size_t>(y * w + x)];
              if (mode == channel_reduction::mean) v /= static_cast<A>(c);
              if (mode == channel_reduction::l2) v = std::sqrt(v);
              out(i, y, x) = static_cast<T>(v);
            }
          }
        }
      },
      p.threads);
}

inline void check_reduce_params(const reduce_params& p, const char* fn) {
  if (p.mode != channel_reduction::sum && p.mode != channel_reduction::abs_sum &&
      p.mode != channel_reduction::max_abs && p.mode != channel_reduction::l2 &&
      p.mode != channel_reduction::mean) {
    CVK_THROW(invalid_argument, std::string(fn) + ": mode is not a cvk::channel_reduction");
  }
  check_thread_count(p.threads, fn);
}

/// Colours of N×H×W maps into an N×H×W×3 view, rows split among threads.
template <class T>
void run_colormap(const strided_view<const T, 3>& maps, const strided_view<std::uint8_t, 4>& out,
                  const colormap_params& p, const char* fn) {
  const index_t n = maps.extent(0), h = maps.extent(1), w = maps.extent(2);
  if (n == 0 || h == 0 || w == 0) return;
  // NaN has no colour: checked before anything is written.
  for (index_t i = 0; i < n; ++i) {
    const auto m = plane(maps, i);
    for (index_t y = 0; y < h; ++y) {
      for (index_t x = 0; x < w; ++x) {
        if (std::isnan(m(y, x))) {
          CVK_THROW(invalid_argument, std::string(fn) + ": maps[" + std::to_string(i) +
                                          "] holds NaN at (" + std::to_string(y) + ", " +
                                          std::to_string(x) + "); a NaN has no colour");
        }
      }
    }
  }
  const colour_table table = make_colour_table(p.map);
  const cmap which = p.map;
  parallel_for(
      0, n * h, 16,
      [&](index_t lo, index_t hi) {
        for (index_t row = lo; row < hi; ++row) {
          const index_t i = row / h, y = row % h;
          for (index_t x = 0; x < w; ++x) {
            const auto& rgb = table[static_cast<std::size_t>(colour_index(maps(i, y, x), which))];
            out(i, y, x, 0) = rgb[0];
            out(i, y, x, 1) = rgb[1];
            out(i, y, x, 2) = rgb[2];
          }
        }
      },
      p.threads);
}

/// A rank-3 view as a batch of one (rank 4 with a leading axis of 1).
template <class T>
strided_view<T, 4> as_batch(const strided_view<T, 3>& v) noexcept {
  return {v.data(),
          {1, v.extent(0), v.extent(1), v.extent(2)},
          {0, v.stride(0), v.stride(1), v.stride(2)}};
}
template <class T>
strided_view<T, 3> as_batch(const strided_view<T, 2>& v) noexcept {
  return {v.data(), {1, v.extent(0), v.extent(1)}, {0, v.stride(0), v.stride(1)}};
}

template <class U>
constexpr void assert_image_type() {
  static_assert(
      std::is_same_v<U, std::uint8_t> || std::is_same_v<U, float> || std::is_same_v<U, double>,
      "cvk: overlay images hold uint8 (0-255) or float/double in [0, 1]");
}

/// The type overlay computes in: float, as pytorch-grad-cam's float32 arrays, or double for a
/// double image.
template <class U>
using overlay_compute_t = std::conditional_t<std::is_same_v<U, double>, double, float>;

CVK_KERNEL_BEGIN
/// An image channel in [0, 1] (uint8 / 255) in the compute type.
template <class C, class U>
C unit_value(U v) noexcept {
  if constexpr (std::is_same_v<U, std::uint8_t>) {
    return static_cast<C>(v) / C(255);
  } else {
    return static_cast<C>(v);
  }
}

/// (1 − w)·heat/255 + w·image in C, each product rounded on its own (numpy's order).
template <class C, class U>
C overlay_mix(std::uint8_t heat, U image, C weight_heat, C weight_image) noexcept {
  const C h = weight_heat * (static_cast<C>(heat) / C(255));
  const C i = weight_image * unit_value<C>(image);
  return h + i;
}

template <class U>
void run_overlay(const strided_view<const U, 4>& rgb,
                 const strided_view<const std::uint8_t, 4>& heat,
                 const strided_view<std::uint8_t, 4>& out, const overlay_params& p,
                 const char* fn) {
  using C = overlay_compute_t<U>;
  const index_t n = rgb.extent(0), h = rgb.extent(1), w = rgb.extent(2);
  if (n == 0 || h == 0 || w == 0) return;
  if constexpr (!std::is_same_v<U, std::uint8_t>) {
    for (index_t i = 0; i < n; ++i)
      for (index_t y = 0; y < h; ++y)
        for (index_t x = 0; x < w; ++x)
          for (index_t c = 0; c < 3; ++c) {
            const U v = rgb(i, y, x, c);
            if (!(v >= U(0) && v <= U(1))) {
              CVK_THROW(invalid_argument, std::string(fn) + ": rgb holds " +
                                              number_string(static_cast<double>(v)) + " at (" +
                                              std::to_string(i) + ", " + std::to_string(y) + ", " +
                                              std::to_string(x) + ", " + std::to_string(c) +
                                              "); a floating-point image must lie in [0, 1]");
            }
          }
  }
  const auto wi = static_cast<C>(p.image_weight), wh = static_cast<C>(1.0 - p.image_weight);
  const auto mix = [&](index_t i, index_t y, index_t x, index_t c) {
    return overlay_mix<C, U>(heat(i, y, x, c), rgb(i, y, x, c), wh, wi);
  };
  if (p.mode == overlay_mode::blend) {
    parallel_for(
        0, n * h, 16,
        [&](index_t lo, index_t hi) {
          for (index_t row = lo; row < hi; ++row) {
            const index_t i = row / h, y = row % h;
            for (index_t x = 0; x < w; ++x)
              for (index_t c = 0; c < 3; ++c) {
                const C v = std::clamp(std::round(C(255) * mix(i, y, x, c)), C(0), C(255));
                out(i, y, x, c) = static_cast<std::uint8_t>(v);
              }
          }
        },
        p.threads);
    return;
  }
  parallel_for(
      0, n, 1,
      [&](index_t lo, index_t hi) {
        for (index_t i = lo; i < hi; ++i) {
          C peak = 0;
          for (index_t y = 0; y < h; ++y)
            for (index_t x = 0; x < w; ++x)
              for (index_t c = 0; c < 3; ++c) peak = std::max(peak, mix(i, y, x, c));
          for (index_t y = 0; y < h; ++y)
            for (index_t x = 0; x < w; ++x)
              for (index_t c = 0; c < 3; ++c) {
                // pytorch-grad-cam: cam / max(cam), then np.uint8(255 * cam) truncates.
                const C v = peak > C(0) ? std::floor(C(255) * (mix(i, y, x, c) / peak)) : C(0);
                out(i, y, x, c) = static_cast<std::uint8_t>(std::clamp(v, C(0), C(255)));
              }
        }
      },
      p.threads);
}
CVK_KERNEL_END

inline void check_overlay_params(const overlay_params& p, const char* fn) {
  if (p.mode != overlay_mode::rescale && p.mode != overlay_mode::blend) {
    CVK_THROW(invalid_argument, std::string(fn) + ": mode is not a cvk::overlay_mode");
  }
  if (!(p.image_weight >= 0.0 && p.image_weight <= 1.0)) {
    CVK_THROW(invalid_argument, std::string(fn) + ": image_weight must be in [0, 1], got " +
                                    number_string(p.image_weight));
  }
  check_thread_count(p.threads, fn);
}

template <class U, std::size_t R>
void check_overlay_shapes(const strided_view<const U, R>& rgb,
                          const strided_view<const std::uint8_t, R>& heat, const char* fn) {
  const char* pattern = R == 3 ? "H×W×3" : "N×H×W×3";
  if (rgb.extent(R - 1) != 3) {
    CVK_THROW(shape_error, std::string(fn) + ": rgb must be " + pattern +
                               " (RGB, channels last), got " + rgb.shape_string());
  }
  if (heat.extents() != rgb.extents()) {
    CVK_THROW(shape_error, std::string(fn) + ": heat must have rgb's shape " + rgb.shape_string() +
                               ", got " + heat.shape_string());
  }
}

}  // namespace detail

// ---------------------------------------------------------------------------------------------
// upsample_bilinear

/// Resizes every map to `out`'s Ho×Wo with PyTorch's bilinear interpolation.
template <tensor_of_rank<3> Maps, tensor_of_rank<3> Out>
void upsample_bilinear(const Maps& maps, Out&& out, const upsample_params& p = {}) {
  constexpr const char* fn = "upsample_bilinear";
  using T = detail::map_scalar_t<Maps>;
  detail::assert_map_type<T>();
  detail::check_thread_count(p.threads, fn);
  const auto m = detail::maps_input<T>(maps, fn);
  auto o = detail::checked_view<3>(std::forward<Out>(out), fn, "out");
  using O = typename decltype(o)::element_type;
  static_assert(std::is_same_v<O, T>, "cvk: upsample_bilinear writes maps of the input's type");
  const index_t n = m.extent(0), ho = o.extent(1), wo = o.extent(2);
  if (o.extent(0) != n) {
    CVK_THROW(shape_error, std::string(fn) + ": out must be N×Ho×Wo with N = " + std::to_string(n) +
                               " (maps " + m.shape_string() + "), got " + o.shape_string());
  }
  if (n > 0 && ho * wo > 0 && (m.extent(1) == 0 || m.extent(2) == 0)) {
    CVK_THROW(shape_error, std::string(fn) + ": maps must be N×H×W with H, W >= 1 to resize to " +
                               std::to_string(ho) + "×" + std::to_string(wo) + ", got " +
                               m.shape_string());
  }
  parallel_for(
      0, n, 1,
      [&](index_t lo, index_t hi) {
        for (index_t i = lo; i < hi; ++i) {
          detail::resize_bilinear_plane<T, T>(detail::plane(m, i), detail::plane(o, i),
                                              p.align_corners);
        }
      },
      p.threads);
}

/// The maps resized to size = {Ho, Wo} (each >= 1) with PyTorch's bilinear interpolation.
template <tensor_of_rank<3> Maps>
auto upsample_bilinear(const Maps& maps, std::array<index_t, 2> size,
                       const upsample_params& p = {}) {
  constexpr const char* fn = "upsample_bilinear";
  using T = detail::map_scalar_t<Maps>;
  detail::assert_map_type<T>();
  if (size[0] < 1 || size[1] < 1) {
    CVK_THROW(invalid_argument, std::string(fn) +
                                    ": size must be {Ho, Wo} with Ho, Wo >= 1, got {" +
                                    std::to_string(size[0]) + ", " + std::to_string(size[1]) + "}");
  }
  const auto m = detail::maps_input<T>(maps, fn);
  auto result = detail::new_result<T, 3>({m.extent(0), size[0], size[1]}, fn);
  upsample_bilinear(maps, result, p);
  return result;
}

// ---------------------------------------------------------------------------------------------
// normalize

/// Normalises every map (or the whole batch) into `out` (N×H×W, may be maps itself).
template <tensor_of_rank<3> Maps, tensor_of_rank<3> Out>
void normalize(const Maps& maps, Out&& out, const normalize_params& p = {}) {
  constexpr const char* fn = "normalize";
  using T = detail::map_scalar_t<Maps>;
  detail::assert_map_type<T>();
  detail::check_normalize_params(p, fn);
  const auto m = detail::maps_input<T>(maps, fn);
  detail::checked_count(m.extents(), fn, "maps");
  auto o = detail::result_view<3>(std::forward<Out>(out), m.extents(), fn, "N×H×W");
  static_assert(std::is_same_v<typename decltype(o)::element_type, T>,
                "cvk: normalize writes maps of the input's type");
  detail::run_normalize<T>(m, o, p, fn);
}

/// The maps normalised (see normalize_mode and sign_mode); zero ranges give zeros.
template <tensor_of_rank<3> Maps>
auto normalize(const Maps& maps, const normalize_params& p = {}) {
  constexpr const char* fn = "normalize";
  using T = detail::map_scalar_t<Maps>;
  detail::assert_map_type<T>();
  detail::check_normalize_params(p, fn);
  auto result = detail::new_result<T, 3>(detail::maps_input<T>(maps, fn).extents(), fn);
  normalize(maps, result, p);
  return result;
}

// ---------------------------------------------------------------------------------------------
// gaussian_smooth

/// Blurs every map with TorchRay's Gaussian of `sigma` into `out` (may be maps itself).
template <tensor_of_rank<3> Maps, tensor_of_rank<3> Out>
void gaussian_smooth(const Maps& maps, double sigma, Out&& out, const smooth_params& p = {}) {
  constexpr const char* fn = "gaussian_smooth";
  using T = detail::map_scalar_t<Maps>;
  detail::assert_map_type<T>();
  detail::check_blur_sigma(sigma, fn);
  detail::check_blur_border(p.border, fn);
  detail::check_thread_count(p.threads, fn);
  const auto m = detail::maps_input<T>(maps, fn);
  detail::checked_count(m.extents(), fn, "maps");
  auto o = detail::result_view<3>(std::forward<Out>(out), m.extents(), fn, "N×H×W");
  static_assert(std::is_same_v<typename decltype(o)::element_type, T>,
                "cvk: gaussian_smooth writes maps of the input's type");
  const index_t n = m.extent(0), h = m.extent(1), w = m.extent(2);
  if (n == 0 || h == 0 || w == 0) return;
  parallel_for(
      0, n, 1,
      [&](index_t lo, index_t hi) {
        auto scratch = detail::checked_vector<T>(h * w, fn, "a map's scratch", m);
        for (index_t i = lo; i < hi; ++i) {
          detail::gaussian_blur_plane<T>(detail::plane(m, i), detail::plane(o, i), sigma, p.border,
                                         scratch.data());
        }
      },
      p.threads);
}

/// The maps blurred with TorchRay's Gaussian of `sigma` (σ = 0 copies).
template <tensor_of_rank<3> Maps>
auto gaussian_smooth(const Maps& maps, double sigma, const smooth_params& p = {}) {
  constexpr const char* fn = "gaussian_smooth";
  using T = detail::map_scalar_t<Maps>;
  detail::assert_map_type<T>();
  detail::check_blur_sigma(sigma, fn);
  auto result = detail::new_result<T, 3>(detail::maps_input<T>(maps, fn).extents(), fn);
  gaussian_smooth(maps, sigma, result, p);
  return result;
}

// ---------------------------------------------------------------------------------------------
// reduce_channels

/// Reduces the channels of elementwise attributions into N×H×W maps in `out`.
template <tensor_of_rank<4> Attributions, tensor_of_rank<3> Out>
void reduce_channels(const Attributions& attributions, Out&& out, const reduce_params& p = {}) {
  constexpr const char* fn = "reduce_channels";
  using T = detail::map_scalar_t<Attributions>;
  detail::assert_map_type<T>();
  detail::check_reduce_params(p, fn);
  const auto a = detail::attributions_input<T>(attributions, p.data_layout, fn);
  detail::checked_count(a.extents(), fn, "attributions");
  auto o = detail::result_view<3>(std::forward<Out>(out), {a.extent(0), a.extent(2), a.extent(3)},
                                  fn, "N×H×W");
  static_assert(std::is_same_v<typename decltype(o)::element_type, T>,
                "cvk: reduce_channels writes maps of the attributions' type");
  detail::run_reduce_channels<T>(a, o, p, fn);
}

/// The N×H×W maps of elementwise attributions (sum over channels by default, Captum's).
template <tensor_of_rank<4> Attributions>
auto reduce_channels(const Attributions& attributions, const reduce_params& p = {}) {
  constexpr const char* fn = "reduce_channels";
  using T = detail::map_scalar_t<Attributions>;
  detail::assert_map_type<T>();
  detail::check_reduce_params(p, fn);
  const auto a = detail::attributions_input<T>(attributions, p.data_layout, fn);
  auto result = detail::new_result<T, 3>({a.extent(0), a.extent(2), a.extent(3)}, fn);
  reduce_channels(attributions, result, p);
  return result;
}

// ---------------------------------------------------------------------------------------------
// colormap

/// The 256 RGB entries of colour map `which` (entry i is the colour of t = i/255).
inline std::array<std::array<std::uint8_t, 3>, 256> colormap_table(cmap which) {
  detail::check_cmap(which, "colormap_table");
  return detail::make_colour_table(which);
}

/// Colours N×H×W maps into `out` (N×H×W×3 uint8, RGB).
template <tensor_of_rank<3> Maps, tensor_of_rank<4> Out>
requires(!tensor_of_static_rank<Maps, 2>) void colormap(const Maps& maps, Out&& out,
                                                        const colormap_params& p = {}) {
  constexpr const char* fn = "colormap";
  using T = detail::map_scalar_t<Maps>;
  detail::assert_map_type<T>();
  detail::check_cmap(p.map, fn);
  detail::check_thread_count(p.threads, fn);
  const auto m = detail::maps_input<T>(maps, fn);
  auto o = detail::result_view<4>(std::forward<Out>(out),
                                  {m.extent(0), m.extent(1), m.extent(2), 3}, fn, "N×H×W×3");
  static_assert(std::is_same_v<typename decltype(o)::element_type, std::uint8_t>,
                "cvk: colormap writes std::uint8_t RGB");
  detail::checked_count(o.extents(), fn, "out");
  detail::run_colormap<T>(m, o, p, fn);
}

/// Colours one H×W map into `out` (H×W×3 uint8, RGB).
template <tensor_of_static_rank<2> Map, tensor_of_rank<3> Out>
void colormap(const Map& map, Out&& out, const colormap_params& p = {}) {
  constexpr const char* fn = "colormap";
  using T = detail::map_scalar_t<Map>;
  detail::assert_map_type<T>();
  const auto m = detail::checked_view<2>(map, fn, "map");
  auto o =
      detail::result_view<3>(std::forward<Out>(out), {m.extent(0), m.extent(1), 3}, fn, "H×W×3");
  static_assert(std::is_same_v<typename decltype(o)::element_type, std::uint8_t>,
                "cvk: colormap writes std::uint8_t RGB");
  colormap(detail::as_batch(strided_view<const T, 2>(m)),
           detail::as_batch(strided_view<std::uint8_t, 3>(o)), p);
}

/// N×H×W maps as N×H×W×3 uint8 RGB.
template <tensor_of_rank<3> Maps>
requires(!tensor_of_static_rank<Maps, 2>) tensor<std::uint8_t, 4> colormap(
    const Maps& maps, const colormap_params& p = {}) {
  constexpr const char* fn = "colormap";
  using T = detail::map_scalar_t<Maps>;
  detail::assert_map_type<T>();
  const auto m = detail::maps_input<T>(maps, fn);
  auto result = detail::new_result<std::uint8_t, 4>({m.extent(0), m.extent(1), m.extent(2), 3}, fn);
  colormap(maps, result, p);
  return result;
}

/// One H×W map as H×W×3 uint8 RGB.
template <tensor_of_static_rank<2> Map>
tensor<std::uint8_t, 3> colormap(const Map& map, const colormap_params& p = {}) {
  constexpr const char* fn = "colormap";
  using T = detail::map_scalar_t<Map>;
  detail::assert_map_type<T>();
  const auto m = detail::checked_view<2>(map, fn, "map");
  auto result = detail::new_result<std::uint8_t, 3>({m.extent(0), m.extent(1), 3}, fn);
  colormap(map, result, p);
  return result;
}

// ---------------------------------------------------------------------------------------------
// overlay

/// Mixes N×H×W×3 heat colours (uint8, from colormap) into N×H×W×3 RGB images, into `out`.
template <tensor_of_rank<4> Rgb, tensor_of_rank<4> Heat, tensor_of_rank<4> Out>
void overlay(const Rgb& rgb, const Heat& heat, Out&& out, const overlay_params& p = {}) {
  constexpr const char* fn = "overlay";
  using U = detail::map_scalar_t<Rgb>;
  detail::assert_image_type<U>();
  static_assert(std::is_same_v<detail::map_scalar_t<Heat>, std::uint8_t>,
                "cvk: overlay's heat is std::uint8_t RGB (colormap's result)");
  detail::check_overlay_params(p, fn);
  const auto r = strided_view<const U, 4>(detail::checked_view<4>(rgb, fn, "rgb"));
  const auto h = strided_view<const std::uint8_t, 4>(detail::checked_view<4>(heat, fn, "heat"));
  detail::check_overlay_shapes<U, 4>(r, h, fn);
  auto o = detail::result_view<4>(std::forward<Out>(out), r.extents(), fn, "N×H×W×3");
  static_assert(std::is_same_v<typename decltype(o)::element_type, std::uint8_t>,
                "cvk: overlay writes std::uint8_t RGB");
  detail::run_overlay<U>(r, h, o, p, fn);
}

/// Mixes H×W×3 heat colours into one H×W×3 RGB image, into `out`.
template <tensor_of_static_rank<3> Rgb, tensor_of_rank<3> Heat, tensor_of_rank<3> Out>
void overlay(const Rgb& rgb, const Heat& heat, Out&& out, const overlay_params& p = {}) {
  constexpr const char* fn = "overlay";
  using U = detail::map_scalar_t<Rgb>;
  detail::assert_image_type<U>();
  static_assert(std::is_same_v<detail::map_scalar_t<Heat>, std::uint8_t>,
                "cvk: overlay's heat is std::uint8_t RGB (colormap's result)");
  detail::check_overlay_params(p, fn);
  const auto r = strided_view<const U, 3>(detail::checked_view<3>(rgb, fn, "rgb"));
  const auto h = strided_view<const std::uint8_t, 3>(detail::checked_view<3>(heat, fn, "heat"));
  detail::check_overlay_shapes<U, 3>(r, h, fn);
  auto o = detail::result_view<3>(std::forward<Out>(out), r.extents(), fn, "H×W×3");
  static_assert(std::is_same_v<typename decltype(o)::element_type, std::uint8_t>,
                "cvk: overlay writes std::uint8_t RGB");
  detail::run_overlay<U>(detail::as_batch(r), detail::as_batch(h),
                         detail::as_batch(strided_view<std::uint8_t, 3>(o)), p, fn);
}

/// The overlay of heat colours on RGB images, uint8 RGB of rgb's shape (H×W×3 or N×H×W×3).
template <class Rgb, class Heat>
requires((tensor_of_rank<Rgb, 4> || tensor_of_static_rank<Rgb, 3>)&&tensor_like<Heat>) auto overlay(
    const Rgb& rgb, const Heat& heat, const overlay_params& p = {}) {
  constexpr const char* fn = "overlay";
  using U = detail::map_scalar_t<Rgb>;
  detail::assert_image_type<U>();
  if constexpr (tensor_of_static_rank<Rgb, 3>) {
    const auto r = detail::checked_view<3>(rgb, fn, "rgb");
    auto result = detail::new_result<std::uint8_t, 3>(r.extents(), fn);
    overlay(rgb, heat, result, p);
    return result;
  } else {
    const auto r = detail::checked_view<4>(rgb, fn, "rgb");
    auto result = detail::new_result<std::uint8_t, 4>(r.extents(), fn);
    overlay(rgb, heat, result, p);
    return result;
  }
}

CVK_END_NAMESPACE
