// cvk — computer-vision kernels, header-only C++20.
// The kernels behind cvk/saliency/postprocess.hpp: argument checks shared by the map operators,
// the normalisation statistics (min/max, max |x|, numpy's linear percentile, Captum's
// cumulative-sum threshold), channel reductions and the colour tables.
// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "../../core/as_view.hpp"
#include "../../core/config.hpp"
#include "../../core/errors.hpp"
#include "../../core/strided_view.hpp"
#include "../../core/tensor.hpp"
#include "../../detail/checks.hpp"

CVK_BEGIN_NAMESPACE

/// How normalize maps a saliency map's values (after the sign selection) to a display range.
enum class normalize_mode {
  /// (s − min)/(max − min) per map: [0, 1] (pytorch-grad-cam's scale_cam_image, without its
  /// 1e-7 in the denominator).
  min_max,
  /// s / max|s|: [−1, 1], or [0, 1] for a non-negative selection (Quantus' normalise_by_max,
  /// Adebayo et al.'s diverging maps).
  max_abs,
  /// clip(s / t, −1, 1), t = the cumulative-sum threshold of |s| at (100 − outlier_percent)%
  /// (Captum's visualization._normalize_attr).
  percentile_clip,
  /// clip((s − min)/(P − min), 0, 1), P = the `percentile`-th percentile of s with numpy's
  /// linear interpolation (PAIR saliency's VisualizeImageGrayscale: 99th percentile of the
  /// channel-summed |attribution|).
  percentile,
};

/// Which part of the values a normalisation keeps (Captum's VisualizeSign).
enum class sign_mode {
  all,       ///< s = x
  positive,  ///< s = max(x, 0)
  negative,  ///< s = max(−x, 0): the magnitude of the negative part (Captum divides the negative
             ///< part by a negative threshold, the same non-negative result)
  absolute,  ///< s = |x|
};

/// How reduce_channels turns C channels of an elementwise attribution into one map value.
enum class channel_reduction {
  sum,      ///< Σ_c x_c (Captum's visualize_image_attr)
  abs_sum,  ///< Σ_c |x_c| (PAIR saliency's VisualizeImageGrayscale)
  max_abs,  ///< max_c |x_c| (TorchRay's gradient saliency, Simonyan et al.)
  l2,       ///< sqrt(Σ_c x_c²)
  mean,     ///< Σ_c x_c / C
};

/// The colour maps of cvk::colormap.
enum class cmap {
  /// OpenCV's COLORMAP_JET (GNU Octave's jet): r, g, b = clamp(1.5 − |4t − k|, 0, 1) for
  /// k = 3, 2, 1, on t in [0, 1], tabulated with OpenCV's float arithmetic (its 256 entries).
  jet,
  /// Google's Turbo (Mikhailov 2019) through its published degree-5 polynomial fit, t in [0, 1]
  /// (6 levels from Google's 256-entry table on average, 33 at t = 0).
  turbo,
  /// Blue–white–red for maps in [−1, 1] (matplotlib's "bwr"): −1 → (0, 0, 255), 0 → white,
  /// 1 → (255, 0, 0), linear in each channel in between.
  diverging,
};

namespace detail {

template <class X>
using map_scalar_t = std::remove_const_t<tensor_value_t<const X&>>;

template <class T>
constexpr void assert_map_type() {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "cvk: saliency maps and attributions hold float or double");
}

/// The (const) rank-3 view of maps argument `x`.
template <class T, class X>
strided_view<const T, 3> maps_input(const X& x, const char* fn, const char* argument = "maps") {
  return strided_view<const T, 3>(checked_view<3>(x, fn, argument));
}

/// Throws cvk::invalid_argument unless threads >= 0.
inline void check_thread_count(int threads, const char* fn) {
  if (threads < 0) {
    CVK_THROW(invalid_argument,
              std::string(fn) + ": threads must be >= 0 (0 = all), got " + std::to_string(threads));
  }
}

/// The product of `extents` (each >= 0), checked: cvk::out_of_range naming fn and `what`.
template <std::size_t R>
index_t checked_count(const std::array<index_t, R>& extents, const char* fn, const char* what) {
  index_t count = 1;
  for (std::size_t i = 0; i < R; ++i) {
    count = checked_mul(count, extents[i], fn, what, [&] { return shape_string(extents, R); });
  }
  return count;
}

/// A new tensor of `extents`, its size checked; failures are cvk::out_of_range naming fn.
template <class T, std::size_t R>
tensor<T, R> new_result(const std::array<index_t, R>& extents, const char* fn,
                        const char* what = "the result") {
  const index_t count = checked_count(extents, fn, what);
  return checked_allocation<T>(
      count, fn, what, [&] { return shape_string(extents, R); },
      [&] { return tensor<T, R>(extents); });
}

/// The mutable rank-R view of an output argument with exactly `extents`.
template <std::size_t R, class Out>
auto result_view(Out&& out, const std::array<index_t, R>& extents, const char* fn,
                 const char* pattern) {
  auto v = checked_view<R>(std::forward<Out>(out), fn, "out");
  static_assert(!std::is_const_v<typename decltype(v)::element_type>,
                "cvk: an output argument must be a mutable tensor");
  const std::string want = std::string(pattern) + " = " + shape_string(extents, R);
  expect_shape(v, extents, fn, "out", want.c_str());
  return v;
}

/// Plane n of a rank-3 view.
template <class T>
strided_view<T, 2> plane(const strided_view<T, 3>& v, index_t n) noexcept {
  return {v.data() + n * v.stride(0), {v.extent(1), v.extent(2)}, {v.stride(1), v.stride(2)}};
}

/// Throws cvk::invalid_argument "fn: maps[n] holds NaN at (y, x)" (or inf) at the first
/// non-finite value of plane n in row-major order.
template <class T>
void expect_finite_plane(const strided_view<const T, 2>& p, index_t n, const char* fn,
                         const char* argument) {
  for (index_t y = 0; y < p.extent(0); ++y) {
    for (index_t x = 0; x < p.extent(1); ++x) {
      const T v = p(y, x);
      if (!std::isfinite(v)) {
        CVK_THROW(invalid_argument, std::string(fn) + ": " + argument + "[" + std::to_string(n) +
                                        "] holds " + number_string(static_cast<double>(v)) +
                                        " at (" + std::to_string(y) + ", " + std::to_string(x) +
                                        "); maps must be finite");
      }
    }
  }
}

/// The value a sign selection keeps of x.
template <class T>
T select_sign(T x, sign_mode s) noexcept {
  switch (s) {
    case sign_mode::positive:
      return x > T(0) ? x : T(0);
    case sign_mode::negative:
      return x < T(0) ? -x : T(0);
    case sign_mode::absolute:
      return std::fabs(x);
    case sign_mode::all:
      break;
  }
  return x;
}

/// numpy.percentile(values, q) (method "linear"): with a = sorted values and
/// pos = q/100·(n − 1), a[floor(pos)] + (pos − floor(pos))·(a[floor(pos) + 1] − a[floor(pos)]).
/// Reorders `values` (nth_element, O(n)). Precondition: values non-empty, q in [0, 100].
inline double linear_percentile(std::vector<double>& values, double q) {
  const auto n = static_cast<index_t>(values.size());
  const double pos = q / 100.0 * static_cast<double>(n - 1);
  auto lo = static_cast<index_t>(std::floor(pos));
  lo = std::clamp<index_t>(lo, 0, n - 1);
  const double frac = pos - static_cast<double>(lo);
  const auto at = values.begin() + lo;
  std::nth_element(values.begin(), at, values.end());
  const double a = *at;
  if (lo + 1 >= n || frac == 0.0) return a;
  const double b = *std::min_element(at + 1, values.end());
  // numpy's _lerp: from the nearer end, so that t = 1 gives b exactly.
  return frac >= 0.5 ? b - (b - a) * (1.0 - frac) : a + (b - a) * frac;
}

/// Captum's _cumulative_sum_threshold(values, percentile): sort ascending, running sums
/// c_i = Σ_{j<=i} a_j (in double), the first a_i with c_i >= c_last·0.01·percentile. Values are
/// non-negative here (|s|). Reorders `values` (sort, O(n log n)). Precondition: non-empty.
inline double cumulative_sum_threshold(std::vector<double>& values, double percentile) {
  std::sort(values.begin(), values.end());
  double total = 0;
  for (const double v : values) total += v;
  const double target = total * 0.01 * percentile;
  double running = 0;
  for (const double v : values) {
    running += v;
    if (running >= target) return v;
  }
  return values.back();
}

/// out = clamp((factor·s − offset) / scale, lo, hi), or 0 everywhere when scale is 0 (a zero
/// range). factor is 1, or 1/2 when the range of a double map overflows (max − min = inf).
struct normalization {
  double factor = 1, offset = 0, scale = 1, lo = -std::numeric_limits<double>::infinity(),
         hi = std::numeric_limits<double>::infinity();
};

/// (s − low)/(high − low) as factor, offset and scale, halving everything when high − low
/// overflows.
inline void set_range(normalization& n, double low, double high) noexcept {
  n.offset = low;
  n.scale = high - low;
  if (std::isinf(n.scale)) {
    n.factor = 0.5;
    n.offset = 0.5 * low;
    n.scale = 0.5 * high - 0.5 * low;
  }
}

/// Statistics of a set of selected values s, gathered map by map and combined.
struct map_range {
  double min = std::numeric_limits<double>::infinity();
  double max = -std::numeric_limits<double>::infinity();
  double max_abs = 0;
  void add(double s) noexcept {
    min = std::min(min, s);
    max = std::max(max, s);
    max_abs = std::max(max_abs, std::fabs(s));
  }
  void merge(const map_range& o) noexcept {
    min = std::min(min, o.min);
    max = std::max(max, o.max);
    max_abs = std::max(max_abs, o.max_abs);
  }
};

/// The normalization of values whose range is `r` (and, for the percentile modes, whose
/// selected values are `values`, reordered here). Empty sets (min > max) give the identity.
inline normalization plan_normalization(normalize_mode mode, const map_range& r,
                                        std::vector<double>* values, double outlier_percent,
                                        double percentile) {
  normalization n;
  if (r.min > r.max) return n;
  switch (mode) {
    case normalize_mode::min_max:
      set_range(n, r.min, r.max);
      n.lo = 0;
      n.hi = 1;
      break;
    case normalize_mode::max_abs:
      n.scale = r.max_abs;
      n.lo = -1;
      n.hi = 1;
      break;
    case normalize_mode::percentile_clip: {
      for (double& v : *values) v = std::fabs(v);
      n.scale = cumulative_sum_threshold(*values, 100.0 - outlier_percent);
      n.lo = -1;
      n.hi = 1;
      break;
    }
    case normalize_mode::percentile: {
      set_range(n, r.min, linear_percentile(*values, percentile));
      n.lo = 0;
      n.hi = 1;
      break;
    }
  }
  return n;
}

/// One normalised value.
template <class T>
T apply_normalization(T s, const normalization& n) noexcept {
  if (n.scale == 0.0) return T(0);
  const double v = (n.factor * static_cast<double>(s) - n.offset) / n.scale;
  return static_cast<T>(std::clamp(v, n.lo, n.hi));
}

/// An RGB colour table of 256 entries.
using colour_table = std::array<std::array<std::uint8_t, 3>, 256>;

/// Turbo's published polynomial (Mikhailov 2019, GLSL fit by R. Du): channel value at t in
/// [0, 1], clamped to [0, 1].
inline double turbo_channel(double t, int channel) noexcept {
  static constexpr double c[3][6] = {
      {0.13572138, 4.61539260, -42.66032258, 132.13108234, -152.94239396, 59.28637943},
      {0.09140261, 2.19418839, 4.84296658, -14.18503333, 4.27729857, 2.82956604},
      {0.10667330, 12.64194608, -60.58204836, 110.36276771, -89.90310912, 27.34824973}};
  const double* k = c[channel];
  const double t2 = t * t, t3 = t2 * t, t4 = t2 * t2, t5 = t4 * t;
  const double v = k[0] + k[1] * t + k[2] * t2 + k[3] * t3 + k[4] * t4 + k[5] * t5;
  return std::clamp(v, 0.0, 1.0);
}

CVK_KERNEL_BEGIN
/// Entry i of OpenCV's COLORMAP_JET table for channel k (3 red, 2 green, 1 blue), built as
/// OpenCV's colormap.cpp builds it: the basemap clamp(1.5 − |4x − k|, 0, 1) stored as float at
/// x = i/255, interpolated (interp1) at the float points linspace(0, 1, 256) — which are the
/// basemap's own points, so only float rounding moves a value — then convertTo(CV_8U, 255):
/// the float product rounded half to even. Exact halves (k + 0.5)/255 mostly stay halves; the
/// interpolation rounds entry 159's blue to 1.4999999, which OpenCV (and cvk) make 1.
inline int opencv_jet_entry(int i, int k) noexcept {
  const auto basemap = [k](int j) {
    const double x = static_cast<double>(j) / 255.0;
    return static_cast<float>(
        std::clamp(1.5 - std::abs(4.0 * x - static_cast<double>(k)), 0.0, 1.0));
  };
  const float step = (1.0f - 0.0f) / 255.0f;
  const auto point = [step](int j) {
    const float offset = static_cast<float>(j) * step;
    return 0.0f + offset;
  };
  float value = basemap(i);
  if (i > 0) {
    // interp1 between the bracketing points lo = i − 1 < x_i <= hi = i.
    const float x = point(i), x_lo = point(i - 1), x_hi = point(i);
    const float y_lo = basemap(i - 1), y_hi = basemap(i);
    const float dx = x - x_lo;
    const float dy = y_hi - y_lo;
    const float product = dx * dy;
    const float slope_part = product / (x_hi - x_lo);
    value = y_lo + slope_part;
  }
  const float scaled = value * 255.0f;
  return std::clamp(static_cast<int>(std::nearbyint(scaled)), 0, 255);
}
CVK_KERNEL_END

/// The 256-entry table of `which`; entry i is the colour of t = i/255 (diverging: of
/// v = 2i/255 − 1).
inline colour_table make_colour_table(cmap which) {
  colour_table table{};
  for (int i = 0; i < 256; ++i) {
    auto& rgb = table[static_cast<std::size_t>(i)];
    for (int ch = 0; ch < 3; ++ch) {
      int value = 0;
      switch (which) {
        case cmap::jet:
          value = opencv_jet_entry(i, 3 - ch);
          break;
        case cmap::turbo:
          value = static_cast<int>(std::lround(255.0 * turbo_channel(i / 255.0, ch)));
          break;
        case cmap::diverging:
          // Blue (i = 0) → white (between 127 and 128) → red (i = 255); exact in integers.
          if (ch == 2) {
            value = i <= 127 ? 255 : 510 - 2 * i;
          } else if (ch == 0) {
            value = i <= 127 ? 2 * i : 255;
          } else {
            value = i <= 127 ? 2 * i : 510 - 2 * i;
          }
          break;
      }
      rgb[static_cast<std::size_t>(ch)] = static_cast<std::uint8_t>(value);
    }
  }
  return table;
}

/// Throws cvk::invalid_argument unless `which` is a cmap.
inline void check_cmap(cmap which, const char* fn) {
  if (which != cmap::jet && which != cmap::turbo && which != cmap::diverging) {
    CVK_THROW(invalid_argument, std::string(fn) + ": the colour map is not a cvk::cmap");
  }
}

/// The table entry of a map value: floor(255·t) of t clamped to [0, 1], computed in T as
/// pytorch-grad-cam's np.uint8(255 * mask) (diverging: t = (v + 1)/2). NaN → −1.
template <class T>
int colour_index(T v, cmap which) noexcept {
  if (std::isnan(v)) return -1;
  T t = which == cmap::diverging ? (v + T(1)) / T(2) : v;
  t = std::clamp(t, T(0), T(1));
  return static_cast<int>(std::floor(T(255) * t));
}

}  // namespace detail
CVK_END_NAMESPACE
