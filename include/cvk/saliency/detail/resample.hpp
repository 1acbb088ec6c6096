// cvk — computer-vision kernels, header-only C++20.
// The resampling kernels every saliency method shares: PyTorch's bilinear interpolation of one
// plane (F.interpolate, both align_corners conventions) and TorchRay's separable Gaussian blur
// (torchray.utils.imsmooth) with a choice of border. Plane in, plane out, any strides.
// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <string>
#include <type_traits>

#include "../../core/config.hpp"
#include "../../core/errors.hpp"
#include "../../core/strided_view.hpp"
#include "../../detail/checks.hpp"

CVK_BEGIN_NAMESPACE
namespace detail {

/// The type bilinear weights and sums are computed in: double for float and double (torch
/// computes float planes in float; double keeps cvk within one rounding of the exact value).
template <class T>
using resample_accumulator_t = std::conditional_t<(sizeof(T) > sizeof(double)), T, double>;

/// One output coordinate's two source taps along an axis and their weights (torch's
/// compute_source_index_and_lambda).
struct bilinear_tap {
  index_t i0 = 0, i1 = 0;
  double w0 = 1, w1 = 0;
};

/// The taps of output index `o` of `out` along an axis of `in` source samples; `scale` is
/// bilinear_scale(in, out, align_corners).
inline bilinear_tap bilinear_source(index_t o, index_t in, index_t out, double scale,
                                    bool align_corners) noexcept {
  if (in == out) return {o, o, 1.0, 0.0};  // torch copies when the sizes agree
  const double od = static_cast<double>(o);
  double real = align_corners ? scale * od : scale * (od + 0.5) - 0.5;
  if (real < 0) real = 0;  // area_pixel_compute_source_index clamps below (linear modes)
  auto i0 = static_cast<index_t>(real);
  if (i0 > in - 1) i0 = in - 1;  // never reached for finite scales; guards rounding
  const index_t i1 = i0 < in - 1 ? i0 + 1 : i0;
  const double w1 = std::min(std::max(real - static_cast<double>(i0), 0.0), 1.0);
  return {i0, i1, 1.0 - w1, w1};
}

/// torch's area_pixel_compute_scale without a scale factor: (in − 1)/(out − 1) with
/// align_corners (0 when out == 1), in/out without.
inline double bilinear_scale(index_t in, index_t out, bool align_corners) noexcept {
  if (align_corners) {
    return out > 1 ? static_cast<double>(in - 1) / static_cast<double>(out - 1) : 0.0;
  }
  return static_cast<double>(in) / static_cast<double>(out);
}

/// PyTorch F.interpolate(mode="bilinear", align_corners) of one plane: src H×W -> dst Ho×Wo
/// (both any strides; dst must not overlap src). align_corners=false: source coordinate
/// (o + 0.5)·H/Ho − 0.5 clamped below at 0 (torch's area_pixel_compute_source_index);
/// true: o·(H − 1)/(Ho − 1) (0 when Ho == 1). Computed in the accumulation type of T
/// (resample_accumulator_t). Precondition: H, W >= 1 when Ho·Wo > 0. O(Ho·Wo), no allocation.
template <class T, class U>
void resize_bilinear_plane(strided_view<const T, 2> src, strided_view<U, 2> dst,
                           bool align_corners) {
  using A = resample_accumulator_t<T>;
  const index_t h = src.extent(0), w = src.extent(1);
  const index_t ho = dst.extent(0), wo = dst.extent(1);
  if (ho == 0 || wo == 0) return;
  const double sy = bilinear_scale(h, ho, align_corners);
  const double sx = bilinear_scale(w, wo, align_corners);
  for (index_t oy = 0; oy < ho; ++oy) {
    const bilinear_tap ty = bilinear_source(oy, h, ho, sy, align_corners);
    const A wy0 = static_cast<A>(ty.w0), wy1 = static_cast<A>(ty.w1);
    for (index_t ox = 0; ox < wo; ++ox) {
      const bilinear_tap tx = bilinear_source(ox, w, wo, sx, align_corners);
      const A wx0 = static_cast<A>(tx.w0), wx1 = static_cast<A>(tx.w1);
      const A top =
          wx0 * static_cast<A>(src(ty.i0, tx.i0)) + wx1 * static_cast<A>(src(ty.i0, tx.i1));
      const A bottom =
          wx0 * static_cast<A>(src(ty.i1, tx.i0)) + wx1 * static_cast<A>(src(ty.i1, tx.i1));
      dst(oy, ox) = static_cast<U>(wy0 * top + wy1 * bottom);
    }
  }
}

/// What a blur sees outside the plane: zero (TorchRay's constant padding with 0), replicate
/// (the nearest edge value, torch's "replicate") or reflect (mirrored without repeating the edge,
/// torch's "reflect": index −1 reads 1; reflected as often as needed for wide kernels).
enum class blur_border { zero, replicate, reflect };

/// Half-width of the Gaussian kernel of `sigma`: ceil(4σ) (TorchRay's imsmooth).
/// Precondition: sigma finite, >= 0 and at most max_blur_sigma.
inline index_t gaussian_half_width(double sigma) noexcept {
  return static_cast<index_t>(std::ceil(4.0 * sigma));
}

/// Largest σ a blur accepts: the kernel then has 2·ceil(4σ) + 1 <= 2^25 + 1 taps.
inline constexpr double max_blur_sigma = 1 << 22;

/// Throws cvk::invalid_argument "fn: sigma must be finite and in [0, 4194304], got ..." unless
/// `sigma` is usable by gaussian_blur_plane.
inline void check_blur_sigma(double sigma, const char* fn, const char* argument = "sigma") {
  if (!(sigma >= 0.0 && sigma <= max_blur_sigma)) {
    CVK_THROW(invalid_argument, std::string(fn) + ": " + argument + " must be finite and in [0, " +
                                    number_string(max_blur_sigma) + "], got " +
                                    number_string(sigma));
  }
}

/// Throws cvk::invalid_argument unless `border` is a blur_border.
inline void check_blur_border(blur_border border, const char* fn) {
  if (border != blur_border::zero && border != blur_border::replicate &&
      border != blur_border::reflect) {
    CVK_THROW(invalid_argument, std::string(fn) + ": border is not a cvk::blur_border");
  }
}

/// The sum of exp(−k²/(2σ²)) over k in [−w, w] (w = gaussian_half_width(σ)), in double.
inline double gaussian_tap_sum(double sigma, index_t half_width) noexcept {
  if (half_width == 0) return 1.0;
  const double inv = 1.0 / (2.0 * sigma * sigma);
  double sum = 1.0;
  for (index_t k = 1; k <= half_width; ++k) {
    const double kd = static_cast<double>(k);
    sum += 2.0 * std::exp(-kd * kd * inv);
  }
  return sum;
}

/// Normalised tap k of the kernel: exp(−k²/(2σ²)) / sum, rounded into T.
template <class T>
T gaussian_tap(index_t k, double sigma, double sum) noexcept {
  if (k == 0) return static_cast<T>(1.0 / sum);
  const double kd = static_cast<double>(k);
  return static_cast<T>(std::exp(-kd * kd / (2.0 * sigma * sigma)) / sum);
}

/// Index i of an axis of n samples (n >= 1) mapped into [0, n) by `border`; −1 for zero.
inline index_t blur_source_index(index_t i, index_t n, blur_border border) noexcept {
  if (i >= 0 && i < n) return i;
  switch (border) {
    case blur_border::replicate:
      return i < 0 ? 0 : n - 1;
    case blur_border::reflect: {
      if (n == 1) return 0;
      const index_t period = 2 * (n - 1);
      index_t r = i % period;
      if (r < 0) r += period;
      return r < n ? r : period - r;
    }
    case blur_border::zero:
      break;
  }
  return -1;
}

/// out[x·os] += g·in[x·is] for x in [0, count): the inner loop of both blur passes, with the
/// contiguous case spelled out so that it vectorises.
template <class T>
inline void blur_axpy(T* out, index_t os, const T* in, index_t is, T g, index_t count) noexcept {
  if (os == 1 && is == 1) {
    for (index_t x = 0; x < count; ++x) out[x] += g * in[x];
  } else {
    for (index_t x = 0; x < count; ++x) out[x * os] += g * in[x * is];
  }
}

/// Separable Gaussian blur of one plane, TorchRay's imsmooth convention by default: taps
/// exp(−x²/(2σ²)) for x in [−w, w], w = ceil(4σ), normalised to sum 1; `border` decides the
/// values outside the plane (zero = TorchRay's constant padding). σ = 0 copies. `scratch` holds
/// at least H·W values of T.
///
/// Vertical pass first (src → scratch, row-major H×W), then horizontal (scratch → dst), as
/// TorchRay; each output value is a sum over taps in ascending k, accumulated in T (torch's
/// conv2d accumulates in the tensor's type too). TorchRay divides x by √2·σ + 1.19e−7 instead of
/// √2·σ: a relative difference of about 1e−7/σ in the exponent, below float rounding for σ >= 1.
/// src is read completely before dst is written, so dst may alias src (in-place blur).
/// Preconditions: dst has src's extents; check_blur_sigma(sigma) passed. Cost: 2·(2w + 1)·H·W
/// multiply-adds (zero border: taps outside the plane are skipped), no allocation.
template <class T>
void gaussian_blur_plane(strided_view<const T, 2> src, strided_view<T, 2> dst, double sigma,
                         blur_border border, T* scratch) {
  const index_t h = src.extent(0), w = src.extent(1);
  if (h == 0 || w == 0) return;
  const index_t half = gaussian_half_width(sigma);
  const double sum = gaussian_tap_sum(sigma, half);
  const index_t sy = src.stride(0), sx = src.stride(1);

  // Vertical: scratch row y = Σ_k g_k · src row (y + k).
  for (index_t y = 0; y < h; ++y) {
    T* row = scratch + y * w;
    std::fill(row, row + w, T(0));
    // Zero border: taps beyond the plane add nothing, and |k| >= h reaches outside for every y.
    const index_t reach = border == blur_border::zero ? std::min(half, h - 1) : half;
    for (index_t k = -reach; k <= reach; ++k) {
      const index_t r = blur_source_index(y + k, h, border);
      if (r < 0) continue;
      blur_axpy(row, 1, src.data() + r * sy, sx, gaussian_tap<T>(k, sigma, sum), w);
    }
  }

  // Horizontal: dst(y, x) = Σ_k g_k · scratch(y, x + k).
  const index_t dy = dst.stride(0), dx = dst.stride(1);
  const index_t reach = border == blur_border::zero ? std::min(half, w - 1) : half;
  for (index_t y = 0; y < h; ++y) {
    const T* row = scratch + y * w;
    T* out = dst.data() + y * dy;
    for (index_t x = 0; x < w; ++x) out[x * dx] = T(0);
    for (index_t k = -reach; k <= reach; ++k) {
      const T g = gaussian_tap<T>(k, sigma, sum);
      // Outputs x with x + k inside the plane: one contiguous run of the scratch row.
      const index_t lo = std::max<index_t>(0, -k), hi = std::min(w, w - k);
      if (lo < hi) blur_axpy(out + lo * dx, dx, row + lo + k, 1, g, hi - lo);
      if (border == blur_border::zero) continue;
      for (index_t x = 0; x < std::min(lo, w); ++x) {
        out[x * dx] += g * row[blur_source_index(x + k, w, border)];
      }
      for (index_t x = std::max<index_t>(hi, 0); x < w; ++x) {
        out[x * dx] += g * row[blur_source_index(x + k, w, border)];
      }
    }
  }
}

}  // namespace detail
CVK_END_NAMESPACE
