// cvk — computer-vision kernels, header-only C++20.
// FickleNet-style stochastic aggregation (Lee, Kim, Lee, Lee & Yoon, CVPR 2019): the feature
// map expanded so that every s×s window sits apart, a center-fixed random dropout mask on the
// expanded map, and the aggregation of the localisation maps (Grad-CAMs) that the user's network
// produces under many such masks. cvk samples the masks and reduces the maps; the network and its
// backward pass stay with the caller.
// SPDX-License-Identifier: MIT
#pragma once

#include <array>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "../core/as_view.hpp"
#include "../core/config.hpp"
#include "../core/errors.hpp"
#include "../core/layout.hpp"
#include "../core/tensor.hpp"
#include "../detail/checks.hpp"
#include "detail/fickle_kernels.hpp"

CVK_BEGIN_NAMESPACE

// The contract of the FickleNet entry points.
//
// Shapes (T float or double; every rank-4 tensor in params.data_layout, any strides):
//   features        N×K×h×w (layout::nchw) or N×h×w×K (layout::nhwc)
//   expanded        N×K×(s·h)×(s·w) or N×(s·h)×(s·w)×K        (s = params.window, odd)
//   dropout mask    the expanded shape, with 1 channel instead of K for per_position sharing
//   feature_shape   the features' extents in params.data_layout, every extent >= 1
//   sampled maps    N×H×W (one localisation map per image, any H×W), result N×H×W
//
// fickle_expand: expanded(n, k, i·s + a, j·s + b) = features(n, k, i + a − r, j + b − r) with
//   r = (s − 1)/2, 0 where that falls outside the map: output position (i, j)'s s×s window,
//   centred on it and zero-padded at the borders, materialised in its own s×s block (FickleNet
//   §3.1 "map expansion"; an s×s convolution of stride s over it equals a same-padded s×s
//   convolution of the features). fickle_expand_backward is its adjoint (the sum of each
//   feature's s² copies): ⟨expand(x), y⟩ = ⟨x, expand_backward(y)⟩.
// fickle_dropout_mask: for sample index `sample`, drawn from cvk::rng(seed, sample) in the order
//   n, channel, row, column of the expanded map: a window centre (row % s == r and
//   column % s == r) is always kept (value 1, no draw); every other element is dropped (0)
//   with probability p = drop_probability (uniform() < p), else kept with value 1, or
//   1/(1 − p) with rescale (torch's F.dropout in training mode, which FickleNet keeps active at
//   inference). sharing::per_element draws each element of each channel (FickleNet's
//   element-wise dropout); per_position draws one value per position, as a 1-channel mask the
//   caller broadcasts over channels. The same mask for either layout (permuted).
// fickle_aggregate: for i = 0 .. samples − 1, in order, on the calling thread: mask_i =
//   fickle_dropout_mask(feature_shape, params, i), map_i = sample(i, mask_i) — the caller runs
//   its network with the expanded features multiplied by the mask and returns the Grad-CAM
//   (or any localisation map) of every image. The maps are reduced per pixel:
//     mean             Σ_i map_i / samples                                   (default)
//     max              max_i map_i
//     threshold_union  1 where map_i >= threshold·max(map_i of that image) in at least one
//                      sample, else 0 (FickleNet's union of the regions each sample finds)
//     vote             the fraction of samples in which the pixel is selected as above
//   A sample whose image maximum is <= 0 selects no pixel of that image. Sums in double; the
//   result is bit-identical for any thread count.
//   FickleNet's exact aggregation rule and hyper-parameters are not verified from the paper's
//   text (research/saliency.md §3): the defaults here — window 3, drop_probability 0.9
//   ("high dropout rate"), 200 samples, threshold 0.5 — are documented choices, not the
//   reference's; every one is a parameter.
//
// Forms:
//   fickle_expand(features, fickle_params)                       → tensor<T, 4> expanded
//   fickle_expand(features, fickle_params, out)
//   fickle_expand_backward(grad_expanded, fickle_params)         → tensor<T, 4> N×K×h×w
//   fickle_expand_backward(grad_expanded, fickle_params, grad_features)
//   fickle_dropout_mask<T = float>(feature_shape, fickle_params, sample) → tensor<T, 4>
//   fickle_dropout_mask(feature_shape, fickle_params, sample, out)
//   fickle_aggregate<T = float>(feature_shape, sample, fickle_params)  → tensor<T, 3> N×H×W
//   fickle_aggregate(feature_shape, sample, fickle_params, out)         (T = out's type)
//   sample: any callable `M sample(cvk::index_t i, cvk::strided_view<const T, 4> mask)`
//   returning a rank-3 float or double tensor-like N×H×W (the view is valid during the call).
//
// Errors (each names the function, the argument and the shapes):
//   cvk::invalid_argument  window not odd or < 1; drop_probability outside [0, 1] or NaN;
//                          samples < 1; threshold outside [0, 1] or NaN; an enum value out of
//                          range; threads < 0; a sampled map holding NaN (names the sample)
//   cvk::shape_error       wrong rank; feature_shape with an extent < 1; grad_expanded whose
//                          height or width is not a multiple of s; out of the wrong shape; a
//                          sampled map that is not N×H×W or differs from the first sample's
//   cvk::out_of_range      size products that overflow, allocations too large
//   fickle_expand of empty features gives an empty result.
//
// Complexity: expand and its adjoint O(N·K·s²·h·w); a mask O(N·K′·s²·h·w) on one thread (one
// generator stream per sample); aggregate samples·(mask + sample call + O(N·H·W)), memory one
// mask and N·H·W doubles.

struct fickle_params {
  /// s: the window side, odd (FickleNet's kernel of the expanded convolution; 3 here).
  index_t window = 3;
  /// p: probability of dropping a non-centre element of the expanded map.
  double drop_probability = 0.9;
  fickle_mask_sharing sharing = fickle_mask_sharing::per_element;
  /// Kept elements hold 1/(1 − p) instead of 1 (inverted dropout); the centres hold 1.
  bool rescale = false;
  /// Number of masks / localisation maps fickle_aggregate samples.
  index_t samples = 200;
  fickle_aggregation aggregation = fickle_aggregation::mean;
  /// Relative level of threshold_union and vote (of each sample's per-image maximum).
  double threshold = 0.5;
  std::uint64_t seed = 0;
  layout data_layout = layout::nchw;
  /// Threads for expand, its adjoint and the reductions (0: all).
  int threads = 0;
};

namespace detail {

template <class X>
using fickle_scalar_t = std::remove_const_t<tensor_value_t<const X&>>;

template <class T, class... Tensors>
constexpr void assert_fickle_types() {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "cvk: the FickleNet operators run on float or double tensors");
  static_assert((std::is_same_v<fickle_scalar_t<Tensors>, T> && ...),
                "cvk: the FickleNet operators need the same element type (float or double) in "
                "every tensor argument; convert one of them");
}

inline void check_fickle_window(const fickle_params& p, const char* fn) {
  if (p.window < 1 || p.window % 2 == 0) {
    CVK_THROW(invalid_argument,
              std::string(fn) + ": window must be odd and >= 1, got " + std::to_string(p.window));
  }
  if (p.data_layout != layout::nchw && p.data_layout != layout::nhwc) {
    CVK_THROW(invalid_argument, std::string(fn) + ": data_layout is not a cvk::layout");
  }
  if (p.threads < 0) {
    CVK_THROW(invalid_argument,
              std::string(fn) + ": threads must be >= 0, got " + std::to_string(p.threads));
  }
}

inline void check_fickle_mask(const fickle_params& p, const char* fn) {
  check_fickle_window(p, fn);
  if (!(p.drop_probability >= 0.0 && p.drop_probability <= 1.0)) {
    CVK_THROW(invalid_argument, std::string(fn) + ": drop_probability must be in [0, 1], got " +
                                    number_string(p.drop_probability));
  }
  if (p.sharing != fickle_mask_sharing::per_element &&
      p.sharing != fickle_mask_sharing::per_position) {
    CVK_THROW(invalid_argument, std::string(fn) + ": sharing is not a cvk::fickle_mask_sharing");
  }
}

/// {N, K, s·h, s·w} for features {N, K, h, w} (NCHW order), size products checked.
inline std::array<index_t, 4> fickle_expanded_nchw(const std::array<index_t, 4>& nchw, index_t s,
                                                   const std::string& text, const char* fn) {
  const auto describe = [&] { return text; };
  std::array<index_t, 4> e{nchw[0], nchw[1],
                           checked_mul(nchw[2], s, fn, "the expanded map", describe),
                           checked_mul(nchw[3], s, fn, "the expanded map", describe)};
  checked_mul(checked_mul(checked_mul(e[0], e[1], fn, "the expanded map", describe), e[2], fn,
                          "the expanded map", describe),
              e[3], fn, "the expanded map", describe);
  return e;
}

/// The mutable (n, c, h, w) view of output `out` in layout l, checked to hold `nchw`.
template <class Out>
auto fickle_output(Out&& out, const std::array<index_t, 4>& nchw, layout l, const char* fn,
                   const char* argument) {
  auto v = checked_view<4>(std::forward<Out>(out), fn, argument);
  using V = decltype(v);
  static_assert(!std::is_const_v<typename V::element_type>,
                "cvk: an output argument must be a mutable tensor");
  const auto extents = from_nchw(nchw, l);
  const std::string pattern = std::string(layout_pattern(l)) + " = " + shape_string(extents, 4);
  expect_shape(v, extents, fn, argument, pattern.c_str());
  return permute_axes(strided_view<typename V::element_type, 4>(v), nchw_axes(l));
}

template <class T>
tensor<T, 4> fickle_tensor(const std::array<index_t, 4>& extents, const char* fn,
                           const char* argument) {
  return checked_allocation<T>(
      extents[0] * extents[1] * extents[2] * extents[3], fn, argument,
      [&] { return shape_string(extents, 4); }, [&] { return tensor<T, 4>(extents); });
}

/// The features' {N, K, h, w} from feature_shape (in p's layout), every extent >= 1.
inline std::array<index_t, 4> fickle_feature_nchw(const std::array<index_t, 4>& feature_shape,
                                                  const fickle_params& p, const char* fn) {
  for (const index_t e : feature_shape) {
    if (e < 1) {
      CVK_THROW(shape_error, std::string(fn) + ": feature_shape must be " +
                                 layout_pattern(p.data_layout) + " with every extent >= 1, got " +
                                 shape_string(feature_shape, 4));
    }
  }
  return nchw_extents(feature_shape, p.data_layout);
}

/// The mask's {N, K′, s·h, s·w}.
inline std::array<index_t, 4> fickle_mask_nchw(const std::array<index_t, 4>& feature_shape,
                                               const fickle_params& p, const char* fn) {
  auto e = fickle_expanded_nchw(fickle_feature_nchw(feature_shape, p, fn), p.window,
                                shape_string(feature_shape, 4), fn);
  if (p.sharing == fickle_mask_sharing::per_position) e[1] = 1;
  return e;
}

template <class T>
void fickle_mask_into(strided_view<T, 4> mask_nchw, const fickle_params& p, std::uint64_t sample) {
  const double keep = 1.0 - p.drop_probability;
  const T kept = p.rescale && keep > 0 ? static_cast<T>(1.0 / keep) : T(1);
  fickle_mask_kernel<T>(mask_nchw, p.window, p.drop_probability, kept, T(1), p.seed, sample);
}

/// The reduction of the sampled maps and their N×H×W. `expected`: the maps' shape when known
/// (an output given), else {N, -1, -1}.
struct fickle_aggregated {
  fickle_reduction reduction;
  std::array<index_t, 3> shape;
};

template <class T, class Sample>
fickle_aggregated fickle_run(const std::array<index_t, 4>& feature_shape, Sample& sample,
                             const fickle_params& p, std::array<index_t, 3> expected,
                             const char* fn) {
  if (p.samples < 1) {
    CVK_THROW(invalid_argument,
              std::string(fn) + ": samples must be >= 1, got " + std::to_string(p.samples));
  }
  if (!(p.threshold >= 0.0 && p.threshold <= 1.0)) {
    CVK_THROW(invalid_argument,
              std::string(fn) + ": threshold must be in [0, 1], got " + number_string(p.threshold));
  }
  if (p.aggregation != fickle_aggregation::mean && p.aggregation != fickle_aggregation::max &&
      p.aggregation != fickle_aggregation::threshold_union &&
      p.aggregation != fickle_aggregation::vote) {
    CVK_THROW(invalid_argument, std::string(fn) + ": aggregation is not a cvk::fickle_aggregation");
  }
  const auto mask_nchw = fickle_mask_nchw(feature_shape, p, fn);
  const index_t images = mask_nchw[0];
  auto mask = fickle_tensor<T>(from_nchw(mask_nchw, p.data_layout), fn, "the dropout mask");
  const auto mask_view = permute_axes(mask.view(), nchw_axes(p.data_layout));
  std::optional<fickle_reduction> reduction;
  std::array<index_t, 3> shape = expected;
  for (index_t i = 0; i < p.samples; ++i) {
    fickle_mask_into<T>(mask_view, p, static_cast<std::uint64_t>(i));
    const auto returned = std::invoke(sample, i, strided_view<const T, 4>(mask.view()));
    const auto map = checked_view<3>(returned, fn, "a sampled map");
    using M = typename decltype(map)::value_type;
    static_assert(std::is_same_v<M, float> || std::is_same_v<M, double>,
                  "cvk: fickle_aggregate's sample callable must return float or double maps");
    const bool fits =
        shape[1] < 0
            ? map.extent(0) == images && map.extent(1) >= 1 && map.extent(2) >= 1
            : map.extent(0) == shape[0] && map.extent(1) == shape[1] && map.extent(2) == shape[2];
    if (!fits) {
      const std::string want =
          shape[1] < 0 ? "N×H×W with N = " + std::to_string(images) + " and H, W >= 1"
                       : shape_string(shape, 3) + (i == 0 ? " (out's shape)" : " (sample 0's)");
      CVK_THROW(shape_error, std::string(fn) + ": sample " + std::to_string(i) +
                                 " returned a map of " + map.shape_string() + ", expected " + want +
                                 " for feature_shape " + shape_string(feature_shape, 4));
    }
    shape = {images, map.extent(1), map.extent(2)};
    const index_t height = shape[1], width = shape[2];
    if (!reduction) reduction.emplace(p.aggregation, p.threshold, images, height, width, fn);
    for (index_t n = 0; n < images; ++n) {
      for (index_t y = 0; y < height; ++y) {
        for (index_t x = 0; x < width; ++x) {
          if (std::isnan(map(n, y, x))) {
            CVK_THROW(invalid_argument, std::string(fn) + ": sample " + std::to_string(i) +
                                            " returned a map with NaN at (" + std::to_string(n) +
                                            ", " + std::to_string(y) + ", " + std::to_string(x) +
                                            ")");
          }
        }
      }
    }
    reduction->add(
        [&](index_t n, index_t q) { return static_cast<double>(map(n, q / width, q % width)); },
        p.threads);
  }
  return {std::move(*reduction), shape};
}

/// out(n, y, x) = the reduction's result.
template <class T>
void fickle_write(const fickle_aggregated& a, strided_view<T, 3> out) {
  const index_t width = a.shape[2];
  for (index_t n = 0; n < a.shape[0]; ++n) {
    for (index_t y = 0; y < a.shape[1]; ++y) {
      for (index_t x = 0; x < width; ++x) {
        out(n, y, x) = static_cast<T>(a.reduction.result(n, y * width + x));
      }
    }
  }
}

template <class T, class Sample>
constexpr void assert_fickle_sample() {
  static_assert(std::invocable<Sample&, index_t, strided_view<const T, 4>>,
                "cvk: fickle_aggregate's sample must be callable as "
                "sample(cvk::index_t i, cvk::strided_view<const T, 4> mask) and return the N×H×W "
                "maps of sample i");
}

}  // namespace detail

/// The expanded map of `features` (N×K×h×w or N×h×w×K): N×K×(s·h)×(s·w) in the same layout.
template <class X>
auto fickle_expand(const X& features, const fickle_params& p = {}) {
  using T = detail::fickle_scalar_t<X>;
  detail::assert_fickle_types<T>();
  constexpr const char* fn = "fickle_expand";
  detail::check_fickle_window(p, fn);
  const auto v = detail::checked_view<4>(features, fn, "features");
  const auto e = detail::fickle_expanded_nchw(detail::nchw_extents(v.extents(), p.data_layout),
                                              p.window, v.shape_string(), fn);
  auto out = detail::fickle_tensor<T>(detail::from_nchw(e, p.data_layout), fn, "the expanded map");
  detail::fickle_expand_kernel<T>(
      detail::permute_axes(strided_view<const T, 4>(v), detail::nchw_axes(p.data_layout)),
      detail::permute_axes(out.view(), detail::nchw_axes(p.data_layout)), p.window, p.threads);
  return out;
}

/// The expanded map of `features` written into `out`.
template <class X, class Out>
void fickle_expand(const X& features, const fickle_params& p, Out&& out) {
  using T = detail::fickle_scalar_t<X>;
  detail::assert_fickle_types<T, Out>();
  constexpr const char* fn = "fickle_expand";
  detail::check_fickle_window(p, fn);
  const auto v = detail::checked_view<4>(features, fn, "features");
  const auto e = detail::fickle_expanded_nchw(detail::nchw_extents(v.extents(), p.data_layout),
                                              p.window, v.shape_string(), fn);
  const auto y = detail::fickle_output(std::forward<Out>(out), e, p.data_layout, fn, "out");
  detail::fickle_expand_kernel<T>(
      detail::permute_axes(strided_view<const T, 4>(v), detail::nchw_axes(p.data_layout)), y,
      p.window, p.threads);
}

namespace detail {
/// {N, K, h, w} of the features whose expanded map is `g` (height and width multiples of s).
template <class View>
std::array<index_t, 4> fickle_unexpanded_nchw(const View& g, const fickle_params& p,
                                              const char* fn) {
  const auto e = nchw_extents(g.extents(), p.data_layout);
  if (e[2] % p.window != 0 || e[3] % p.window != 0) {
    CVK_THROW(shape_error, std::string(fn) + ": grad_expanded must be " +
                               layout_pattern(p.data_layout) +
                               " with H and W multiples of window " + std::to_string(p.window) +
                               ", got " + g.shape_string());
  }
  return {e[0], e[1], e[2] / p.window, e[3] / p.window};
}
}  // namespace detail

/// The adjoint of fickle_expand: N×K×h×w (or N×h×w×K) from the expanded map's gradient.
template <class G>
auto fickle_expand_backward(const G& grad_expanded, const fickle_params& p = {}) {
  using T = detail::fickle_scalar_t<G>;
  detail::assert_fickle_types<T>();
  constexpr const char* fn = "fickle_expand_backward";
  detail::check_fickle_window(p, fn);
  const auto g = detail::checked_view<4>(grad_expanded, fn, "grad_expanded");
  const auto e = detail::fickle_unexpanded_nchw(g, p, fn);
  auto out = detail::fickle_tensor<T>(detail::from_nchw(e, p.data_layout), fn, "grad_features");
  detail::fickle_expand_backward_kernel<T>(
      detail::permute_axes(strided_view<const T, 4>(g), detail::nchw_axes(p.data_layout)),
      detail::permute_axes(out.view(), detail::nchw_axes(p.data_layout)), p.window, p.threads);
  return out;
}

/// The adjoint of fickle_expand written into `grad_features`.
template <class G, class Out>
void fickle_expand_backward(const G& grad_expanded, const fickle_params& p, Out&& grad_features) {
  using T = detail::fickle_scalar_t<G>;
  detail::assert_fickle_types<T, Out>();
  constexpr const char* fn = "fickle_expand_backward";
  detail::check_fickle_window(p, fn);
  const auto g = detail::checked_view<4>(grad_expanded, fn, "grad_expanded");
  const auto e = detail::fickle_unexpanded_nchw(g, p, fn);
  const auto y = detail::fickle_output(std::forward<Out>(grad_features), e, p.data_layout, fn,
                                       "grad_features");
  detail::fickle_expand_backward_kernel<T>(
      detail::permute_axes(strided_view<const T, 4>(g), detail::nchw_axes(p.data_layout)), y,
      p.window, p.threads);
}

/// The center-fixed dropout mask of sample `sample` for features of `feature_shape`.
template <class T = float>
tensor<T, 4> fickle_dropout_mask(const std::array<index_t, 4>& feature_shape,
                                 const fickle_params& p, std::uint64_t sample) {
  detail::assert_fickle_types<T>();
  constexpr const char* fn = "fickle_dropout_mask";
  detail::check_fickle_mask(p, fn);
  const auto e = detail::fickle_mask_nchw(feature_shape, p, fn);
  auto out = detail::fickle_tensor<T>(detail::from_nchw(e, p.data_layout), fn, "the mask");
  detail::fickle_mask_into<T>(detail::permute_axes(out.view(), detail::nchw_axes(p.data_layout)), p,
                              sample);
  return out;
}

/// The center-fixed dropout mask of sample `sample` written into `out`.
template <class Out>
void fickle_dropout_mask(const std::array<index_t, 4>& feature_shape, const fickle_params& p,
                         std::uint64_t sample, Out&& out) {
  using T = detail::fickle_scalar_t<Out>;
  detail::assert_fickle_types<T>();
  constexpr const char* fn = "fickle_dropout_mask";
  detail::check_fickle_mask(p, fn);
  const auto e = detail::fickle_mask_nchw(feature_shape, p, fn);
  detail::fickle_mask_into<T>(
      detail::fickle_output(std::forward<Out>(out), e, p.data_layout, fn, "out"), p, sample);
}

/// The aggregated localisation maps (N×H×W) of p.samples calls of `sample(i, mask_i)`.
template <class T = float, class Sample>
tensor<T, 3> fickle_aggregate(const std::array<index_t, 4>& feature_shape, Sample&& sample,
                              const fickle_params& p = {}) {
  detail::assert_fickle_types<T>();
  detail::assert_fickle_sample<T, std::remove_reference_t<Sample>>();
  constexpr const char* fn = "fickle_aggregate";
  detail::check_fickle_mask(p, fn);
  const auto images = detail::fickle_feature_nchw(feature_shape, p, fn)[0];
  const auto a = detail::fickle_run<T>(feature_shape, sample, p, {images, -1, -1}, fn);
  const auto describe = [&] { return detail::shape_string(a.shape, 3); };
  auto out = detail::checked_allocation<T>(
      detail::checked_mul(detail::checked_mul(a.shape[0], a.shape[1], fn, "the result", describe),
                          a.shape[2], fn, "the result", describe),
      fn, "the result", [&] { return detail::shape_string(a.shape, 3); },
      [&] { return tensor<T, 3>(a.shape); });
  detail::fickle_write<T>(a, out.view());
  return out;
}

/// The aggregated localisation maps written into `out` (N×H×W; the maps must have its shape).
template <class Sample, class Out>
void fickle_aggregate(const std::array<index_t, 4>& feature_shape, Sample&& sample,
                      const fickle_params& p, Out&& out) {
  using T = detail::fickle_scalar_t<Out>;
  detail::assert_fickle_types<T>();
  detail::assert_fickle_sample<T, std::remove_reference_t<Sample>>();
  constexpr const char* fn = "fickle_aggregate";
  detail::check_fickle_mask(p, fn);
  const auto images = detail::fickle_feature_nchw(feature_shape, p, fn)[0];
  auto y = detail::checked_view<3>(std::forward<Out>(out), fn, "out");
  static_assert(!std::is_const_v<typename decltype(y)::element_type>,
                "cvk: an output argument must be a mutable tensor");
  if (y.extent(0) != images || y.extent(1) < 1 || y.extent(2) < 1) {
    CVK_THROW(shape_error, std::string(fn) +
                               ": out must be N×H×W with N = " + std::to_string(images) +
                               " (feature_shape " + detail::shape_string(feature_shape, 4) +
                               ") and H, W >= 1, got " + y.shape_string());
  }
  const auto a =
      detail::fickle_run<T>(feature_shape, sample, p, {images, y.extent(1), y.extent(2)}, fn);
  detail::fickle_write<T>(a, strided_view<T, 3>(y));
}

CVK_END_NAMESPACE
