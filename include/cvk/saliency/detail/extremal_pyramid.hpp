// cvk — computer-vision kernels, header-only C++20.
// Internals of <cvk/saliency/extremal.hpp>: the perturbation pyramid of Extremal Perturbations
// (TorchRay's Perturbation) — building the levels, applying a mask and its backward.
// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include "../../core/config.hpp"
#include "../../core/errors.hpp"
#include "../../core/layout.hpp"
#include "../../core/parallel.hpp"
#include "../../core/strided_view.hpp"
#include "../../detail/checks.hpp"
#include "resample.hpp"

CVK_BEGIN_NAMESPACE

/// The perturbation a pyramid holds (TorchRay's BLUR_PERTURBATION and FADE_PERTURBATION).
enum class perturbation_kind {
  /// Level l = the image blurred with σ_l = max_blur·(1 − l/(L − 1)) (imsmooth, zero border).
  blur,
  /// Level l = the image times l/(L − 1) (fade to black).
  fade,
};

/// The parameters of a perturbation pyramid (TorchRay's Perturbation and its defaults).
struct perturbation_params {
  /// Blur or fade (TorchRay: blur).
  perturbation_kind kind = perturbation_kind::blur;
  /// Number of levels L, >= 2 (TorchRay: num_levels = 8).
  index_t levels = 8;
  /// σ of the most blurred level, finite and > 0; unused by fade (TorchRay: max_blur = 20).
  double max_blur = 20;
  /// Axis order of the image and of the perturbed images (N×C×H×W or N×H×W×C).
  layout data_layout = layout::nchw;
  /// Threads (0 = all).
  int threads = 0;
};

namespace detail {

inline void check_perturbation_params(const perturbation_params& p, const char* fn) {
  if (p.kind != perturbation_kind::blur && p.kind != perturbation_kind::fade) {
    CVK_THROW(invalid_argument, std::string(fn) + ": kind is not a cvk::perturbation_kind");
  }
  if (p.levels < 2) {
    CVK_THROW(invalid_argument,
              std::string(fn) + ": levels must be >= 2, got " + std::to_string(p.levels));
  }
  if (p.kind == perturbation_kind::blur) {
    if (!(p.max_blur > 0)) {
      CVK_THROW(invalid_argument, std::string(fn) + ": max_blur must be finite and > 0, got " +
                                      number_string(p.max_blur));
    }
    check_blur_sigma(p.max_blur, fn, "max_blur");
  }
  if (p.data_layout != layout::nchw && p.data_layout != layout::nhwc) {
    CVK_THROW(invalid_argument, std::string(fn) + ": data_layout is not a cvk::layout");
  }
  if (p.threads < 0) {
    CVK_THROW(invalid_argument,
              std::string(fn) + ": threads must be >= 0, got " + std::to_string(p.threads));
  }
}

/// σ of level l (blur) or its factor (fade): l/(L − 1) → (1 − l/(L − 1))·max_blur, in double
/// (TorchRay: torch.linspace(0, 1, L) in float32).
inline double pyramid_level_value(const perturbation_params& p, index_t l) noexcept {
  const double t = static_cast<double>(l) / static_cast<double>(p.levels - 1);
  return p.kind == perturbation_kind::blur ? (1.0 - t) * p.max_blur : t;
}

/// Fills `levels` (L×C×H×W contiguous, row-major) from an image given as a (c, h, w) view.
template <class T>
void build_pyramid(const perturbation_params& p, strided_view<const T, 3> image, T* levels) {
  const index_t c = image.extent(0), h = image.extent(1), w = image.extent(2);
  const index_t plane = h * w;
  const index_t planes = p.levels * c;
  parallel_for(
      0, planes, 1,
      [&](index_t lo, index_t hi) {
        std::vector<T> scratch;
        for (index_t q = lo; q < hi; ++q) {
          const index_t l = q / c, ch = q % c;
          const double value = pyramid_level_value(p, l);
          const strided_view<const T, 2> src(image.data() + ch * image.stride(0), {h, w},
                                             {image.stride(1), image.stride(2)});
          T* out = levels + q * plane;
          if (p.kind == perturbation_kind::blur) {
            if (scratch.empty()) scratch.resize(static_cast<std::size_t>(plane));
            gaussian_blur_plane<T>(src, strided_view<T, 2>(out, {h, w}), value, blur_border::zero,
                                   scratch.data());
          } else {
            const T f = static_cast<T>(value);
            for (index_t y = 0; y < h; ++y) {
              for (index_t x = 0; x < w; ++x) out[y * w + x] = src(y, x) * f;
            }
          }
        }
      },
      p.threads);
}

/// The level index k = floor(w) and fraction w − k of a mask value m in [0, 1], w = m·(L − 1).
template <class T>
struct level_position {
  index_t k;
  T f;
};

template <class T>
level_position<T> locate_level(T m, index_t levels) noexcept {
  const T w = m * static_cast<T>(levels - 1);
  const T k = std::floor(w);
  return {static_cast<index_t>(k), w - k};
}

/// Throws cvk::invalid_argument naming the mask value unless m is in [0, 1] (NaN included).
template <class T>
void check_mask_value(T m, index_t n, index_t y, index_t x, const char* fn, const char* argument) {
  if (!(m >= T(0) && m <= T(1))) {
    CVK_THROW(invalid_argument,
              std::string(fn) + ": " + argument + " values must be in [0, 1], got " +
                  number_string(static_cast<double>(m)) + " at (" + std::to_string(n) + ", " +
                  std::to_string(y) + ", " + std::to_string(x) + ")");
  }
}

/// Perturbed image of one mask into `out` ((c, h, w) view): TorchRay's Perturbation.apply,
/// out = (1 − f)·y[k] + f·y[min(k + 1, L − 1)] with w = m'·(L − 1), k = ⌊w⌋, f = w − k, where
/// m' = m (or 1 − m when `complement`). `flip` writes column x to W − 1 − x (horizontal jitter).
/// Mask values must have been checked to lie in [0, 1].
template <class T, class Mask>
void pyramid_apply_rows(const T* levels, index_t levels_count, index_t c, index_t h, index_t w,
                        const Mask& mask, bool complement, bool flip, const strided_view<T, 3>& out,
                        index_t y0, index_t y1) {
  const index_t plane = h * w;
  const index_t level = c * plane;
  for (index_t y = y0; y < y1; ++y) {
    for (index_t x = 0; x < w; ++x) {
      const T mv = static_cast<T>(mask(y, x));
      const auto pos = locate_level(complement ? T(1) - mv : mv, levels_count);
      const index_t k1 = std::min(pos.k + 1, levels_count - 1);
      const T* y0p = levels + pos.k * level + y * w + x;
      const T* y1p = levels + k1 * level + y * w + x;
      const index_t ox = flip ? w - 1 - x : x;
      for (index_t ch = 0; ch < c; ++ch) {
        out(ch, y, ox) = (T(1) - pos.f) * y0p[ch * plane] + pos.f * y1p[ch * plane];
      }
    }
  }
}

/// d mask of one mask from the gradient `grad` ((c, h, w) view) of its perturbed image:
/// dm(y, x) = sign·(L − 1)·Σ_c grad(c, y, x')·(y[k1] − y[k]) (x' = W − 1 − x when `flip`; sign
/// −1 for a complement mask), the derivative of the fraction (⌊w⌋ has none; at m' = 1 both levels
/// are L − 1 and the derivative is 0, as in TorchRay). Writes (accumulate = false) or adds to
/// dmask(y, x) for rows [y0, y1).
template <class T, class Mask, class Grad, class DMask>
void pyramid_apply_backward_rows(const T* levels, index_t levels_count, index_t c, index_t h,
                                 index_t w, const Mask& mask, bool complement, bool flip,
                                 const Grad& grad, const DMask& dmask, bool accumulate, index_t y0,
                                 index_t y1) {
  const index_t plane = h * w;
  const index_t level = c * plane;
  const T scale = static_cast<T>(levels_count - 1);
  for (index_t y = y0; y < y1; ++y) {
    for (index_t x = 0; x < w; ++x) {
      const T mv = static_cast<T>(mask(y, x));
      const auto pos = locate_level(complement ? T(1) - mv : mv, levels_count);
      const index_t k1 = std::min(pos.k + 1, levels_count - 1);
      const T* y0p = levels + pos.k * level + y * w + x;
      const T* y1p = levels + k1 * level + y * w + x;
      const index_t gx = flip ? w - 1 - x : x;
      T sum = 0;
      for (index_t ch = 0; ch < c; ++ch) {
        sum += static_cast<T>(grad(ch, y, gx)) * (y1p[ch * plane] - y0p[ch * plane]);
      }
      T d = scale * sum;
      if (complement) d = -d;
      if (accumulate) {
        dmask(y, x) += d;
      } else {
        dmask(y, x) = d;
      }
    }
  }
}

}  // namespace detail

CVK_END_NAMESPACE
