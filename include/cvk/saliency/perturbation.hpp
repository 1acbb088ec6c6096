// cvk — computer-vision kernels, header-only C++20.
// Perturbation saliency through a forward callable: occlusion (Zeiler & Fergus 2014, with
// Captum's sliding-window and averaging conventions) and RISE (Petsiuk, Das & Saenko, BMVC 2018:
// randomly masked inputs, saliency = score-weighted sum of the masks), with RISE's masks and
// accumulation also exposed for users who run the model themselves.
// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "../core/as_view.hpp"
#include "../core/config.hpp"
#include "../core/errors.hpp"
#include "../core/layout.hpp"
#include "../core/parallel.hpp"
#include "../core/tensor.hpp"
#include "../detail/checks.hpp"
#include "detail/perturb_occlusion.hpp"
#include "detail/perturb_rise.hpp"
#include "model.hpp"

CVK_BEGIN_NAMESPACE

// The contract of the perturbation methods.
//
// Shapes (T float or double, the same in every tensor; any strides):
//   inputs     N×C×H×W (model.data_layout = layout::nchw) or N×H×W×C (layout::nhwc)
//   baselines  occlusion's reference images: the inputs' shape, or 1×C×H×W / 1×H×W×C (one for
//              every image)
//   occlusion's attributions: the inputs' shape and layout
//   RISE maps  N×H×W (one per image);  RISE masks  M×H×W;  RISE scores  N×M (image n, mask m)
//   f          a forward_function<F, T> (saliency/model.hpp): a batch of B <= model.batch_size
//              images C×H×W, contiguous in model.data_layout, → B scores (the quantity explained,
//              e.g. a logit or a probability). Called through detail::model_batches, in input
//              order, never concurrently; memory: model.batch_size images at a time.
//
// occlusion (Captum's Occlusion.attribute, defaults: window 8×8 over every channel (zennit's
// 8), strides 1 (Captum's strides=None), baseline 0 (Captum's baselines=None)):
//   Windows over (C, H, W): per axis of extent D, window k and stride s, windows start at
//   j·s for j = 0 .. ⌈(D − k)/s⌉ (the first at 0) and cover [j·s, min(j·s + k, D)), so the
//   last window may be cropped at the border. Requires 1 <= k <= D and s >= 1, and s <= k unless
//   k == D (Captum asserts the same: otherwise elements between windows are never occluded).
//   window.channels = 0 (default) occludes all C channels at once.
//   x_w = x with the elements of window w replaced by the baseline (a value, or baselines'
//   elements). attribution(e) = Σ_{w ∋ e} (f(x) − f(x_w)) / #{w ∋ e} (average = true,
//   Captum); average = false gives the plain sum (PAIR-code saliency's Occlusion). Every
//   element is covered by at least one window under the stride rule; one covered by none would
//   get 0. Other conventions, not offered: zennit's Occlusion rolls the window with wrap-around
//   and by default keeps only the window (occluding the rest); xaitk normalises by max |·|.
//   Model inputs: per image the clean x, then the windows with the channel index fastest, then
//   height, then width (Captum's feature order); N·(windows + 1) forward evaluations.
//   The callable must leave its (const) batch unchanged: a batch slot that moves to the next
//   window of the same image is updated by restoring the previous window and occluding the new.
//
// rise (Petsiuk et al.; defaults: 8000 masks, 7 cells, p = 0.5, seed 0 — TorchRay's rise):
//   Mask m (m = 0 .. masks − 1, the same for every image) is drawn from cvk::rng(seed, m): a
//   cells×cells grid, row by row, cell = 1 when uniform() < p (so P(1) = p), then a shift
//   (sy, sx), sy uniform in [0, ⌈H/cells⌉), sx in [0, ⌈W/cells⌉). The grid is upsampled
//   bilinearly with half-pixel centres, samples beyond the grid mirrored (index −1 reads 1),
//   and M(y, x) = up(sy + y, sx + x):
//     upsample::paper     up is (cells + 1)·⌈H/cells⌉ × (cells + 1)·⌈W/cells⌉: grid
//                         coordinate of up index o is (o + ½)·cells/up − ½ (the authors' code:
//                         skimage resize(order=1, mode='reflect'), then crop).
//     upsample::torchray  up is (H + ⌈H/cells⌉) × (W + ⌈W/cells⌉), grid coordinate
//                         (o + ½)/c′ − ½ with c′ = ⌈up/cells⌉ (TorchRay: reflect-pad by 1,
//                         F.interpolate(align_corners=False) to c′·(cells + 2), crop c′).
//   Every mask value lies in [0, 1]. map(n) = Σ_m f(x_n ⊙ M_m)·M_m / Z with
//   Z = masks·p (normalization::paper, Petsiuk et al. eq. 6: E[M] = p) or masks
//   (normalization::torchray). TorchRay applies a sigmoid to the logits: to reproduce it the
//   callable returns sigmoid(logit). x ⊙ M multiplies every channel by M. Model inputs are
//   image-major (image n's masks 0 .. masks − 1, then image n + 1's); the masks of one batch
//   are generated when it is filled (model.batch_size masks at a time, never all of them).
//   Sums are formed in double with the mask index ascending for every pixel, so maps are
//   bit-identical for any thread count and batch size, and equal rise_accumulate of
//   rise_masks and the same scores.
//
// Forms:
//   occlusion(inputs, f, occlusion_params)                     → tensor<T, 4> (inputs' shape)
//   occlusion(inputs, f, occlusion_params, out)
//   occlusion(inputs, baselines, f, occlusion_params)          → tensor<T, 4>
//   occlusion(inputs, baselines, f, occlusion_params, out)     (params.baseline not read)
//   rise(inputs, f, rise_params)                               → tensor<T, 3> N×H×W
//   rise(inputs, f, rise_params, out)
//   rise_masks<T = float>(count, {H, W}, rise_params, first = 0) → tensor<T, 3> count×H×W
//   rise_masks(out, rise_params, first = 0)      out count×H×W: mask first + k into plane k
//   rise_accumulate(masks, scores, rise_params)                → tensor<T, 3> N×H×W
//   rise_accumulate(masks, scores, rise_params, out)
//   (rise_masks / rise_accumulate read cells, keep_probability, seed, upsample, normalization
//   and threads; rise_accumulate normalises by its own M, not params.masks.)
//   Outputs must not overlap the inputs.
//
// Errors (each names the function, the argument and the shapes):
//   cvk::invalid_argument  a window extent < 1 (channels: < 0) or larger than the input's; a
//                          stride < 1 or > its window (where the window is not the whole axis);
//                          masks < 1; cells < 1; p outside (0, 1] or NaN; an enum value out of
//                          range; threads < 0; model.batch_size < 1
//   cvk::shape_error       wrong rank; C, H or W = 0; baselines, out, masks or scores of the
//                          wrong shape; a callable returning the wrong number of scores
//   cvk::out_of_range      size products that overflow, allocations too large
//   N = 0 gives an empty result without calling f. NaN scores flow into the results.
//
// Complexity: occlusion N·(windows + 1) calls of f on B = model.batch_size images at a time;
// outside f, O(window volume) per model input (the slot update and the accumulation) plus
// O(C·H·W) per image and per batch slot's first use. Scratch: model.batch_size·C·H·W values of
// T plus C·H·W doubles. rise: N·masks calls of f's inputs; outside f, O(C·H·W + cells·W) per
// model input; scratch model.batch_size·(C + 1)·H·W values of T plus N·H·W doubles.
// rise_masks O(count·H·W); rise_accumulate O(N·M·H·W). Threads: batch slots are filled in
// parallel, accumulations split rows; every value is computed by one thread in a fixed order.

/// Occlusion window extents over (C, H, W); channels = 0 occludes every channel.
struct occlusion_window {
  index_t channels = 0;
  index_t height = 8;
  index_t width = 8;
};

/// Occlusion strides over (C, H, W); Captum's default (strides=None) is 1 everywhere.
struct occlusion_strides {
  index_t channels = 1;
  index_t height = 1;
  index_t width = 1;
};

struct occlusion_params {
  occlusion_window window{};
  occlusion_strides strides{};
  /// The value occluded elements take (Captum's scalar baseline; default 0).
  double baseline = 0;
  /// true: divide each element's sum of differences by the number of windows covering it
  /// (Captum); false: the plain sum (PAIR-code saliency).
  bool average = true;
  model_options model{};
  /// Threads for filling batch slots and writing attributions (0: all).
  int threads = 0;
};

struct rise_params {
  /// Number of masks M (TorchRay's num_masks = 8000; the paper uses 4000 to 8000).
  index_t masks = 8000;
  /// Grid cells per side (TorchRay's num_cells and the paper's s = 7).
  index_t cells = 7;
  /// Probability p that a grid cell is 1 (kept); TorchRay and the paper: 0.5.
  double keep_probability = 0.5;
  std::uint64_t seed = 0;
  rise_upsample upsample = rise_upsample::paper;
  rise_normalization normalization = rise_normalization::paper;
  model_options model{};
  /// Threads for mask generation and accumulation (0: all).
  int threads = 0;
};

namespace detail {

template <class X>
using perturb_scalar_t = std::remove_const_t<tensor_value_t<const X&>>;

template <class T, class... Tensors>
constexpr void assert_perturb_types() {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "cvk: occlusion and RISE run on float or double tensors");
  static_assert((std::is_same_v<perturb_scalar_t<Tensors>, T> && ...),
                "cvk: occlusion and RISE need the same element type (float or double) in every "
                "tensor argument; convert one of them");
}

template <class F, class T>
constexpr void assert_forward_function() {
  static_assert(forward_function<std::remove_reference_t<F>, T>,
                "cvk: the model must be a forward function of a batch: "
                "void f(cvk::strided_view<const T, 4> batch, cvk::strided_view<T, 1> scores) or "
                "scores f(cvk::strided_view<const T, 4> batch) returning a rank-1 tensor "
                "(see cvk/saliency/model.hpp)");
}

inline void check_perturb_threads(int threads, const char* fn) {
  if (threads < 0) {
    CVK_THROW(invalid_argument,
              std::string(fn) + ": threads must be >= 0, got " + std::to_string(threads));
  }
}

/// The (n, c, h, w) view of image-like argument `x`, with C, H, W >= 1.
template <class T, class X>
strided_view<const T, 4> perturb_images(const X& x, layout l, const char* fn,
                                        const char* argument) {
  const auto v =
      permute_axes(strided_view<const T, 4>(checked_view<4>(x, fn, argument)), nchw_axes(l));
  if (v.extent(1) < 1 || v.extent(2) < 1 || v.extent(3) < 1) {
    CVK_THROW(shape_error, std::string(fn) + ": " + argument + " must be " + layout_pattern(l) +
                               " with C, H, W >= 1, got " +
                               checked_view<4>(x, fn, argument).shape_string());
  }
  return v;
}

/// The mutable (n, c, h, w) view of output `out`, checked to hold `nchw` in layout l.
template <class Out>
auto perturb_output4(Out&& out, const std::array<index_t, 4>& nchw, layout l, const char* fn) {
  auto v = checked_view<4>(std::forward<Out>(out), fn, "out");
  using V = decltype(v);
  static_assert(!std::is_const_v<typename V::element_type>,
                "cvk: an output argument must be a mutable tensor");
  const auto extents = from_nchw(nchw, l);
  const std::string pattern = std::string(layout_pattern(l)) + " = " + shape_string(extents, 4);
  expect_shape(v, extents, fn, "out", pattern.c_str());
  return permute_axes(strided_view<typename V::element_type, 4>(v), nchw_axes(l));
}

/// The mutable view of a rank-3 output `out` checked to be `extents` (pattern names it).
template <class Out>
auto perturb_output3(Out&& out, const std::array<index_t, 3>& extents, const char* pattern,
                     const char* fn) {
  auto v = checked_view<3>(std::forward<Out>(out), fn, "out");
  using V = decltype(v);
  static_assert(!std::is_const_v<typename V::element_type>,
                "cvk: an output argument must be a mutable tensor");
  const std::string text = std::string(pattern) + " = " + shape_string(extents, 3);
  expect_shape(v, extents, fn, "out", text.c_str());
  return strided_view<typename V::element_type, 3>(v);
}

template <class T, std::size_t R>
tensor<T, R> perturb_tensor(const std::array<index_t, R>& extents, const char* fn,
                            const char* argument) {
  index_t count = 1;
  for (std::size_t a = 0; a < R; ++a) {
    count = checked_mul(count, extents[a], fn, argument, [&] { return shape_string(extents, R); });
  }
  return checked_allocation<T>(
      count, fn, argument, [&] { return shape_string(extents, R); },
      [&] { return tensor<T, R>(extents); });
}

template <class T, class X, class B, class F, class Out>
void occlusion_into(const X& inputs, const B* baselines, F& f, const occlusion_params& p,
                    Out&& out) {
  constexpr const char* fn = "occlusion";
  check_model_options(p.model, fn);
  check_perturb_threads(p.threads, fn);
  const layout l = p.model.data_layout;
  const auto x = perturb_images<T>(inputs, l, fn, "inputs");
  const std::string input_text = checked_view<4>(inputs, fn, "inputs").shape_string();
  const std::array<index_t, 3> chw{x.extent(1), x.extent(2), x.extent(3)};
  const auto g = make_occlusion_geometry(chw, p.window, p.strides, input_text, fn);
  const auto y =
      perturb_output4(std::forward<Out>(out), {x.extent(0), chw[0], chw[1], chw[2]}, l, fn);
  occlusion_baseline<T> base;
  base.value = static_cast<T>(p.baseline);
  if (baselines != nullptr) {
    const auto b = permute_axes(
        strided_view<const T, 4>(checked_view<4>(*baselines, fn, "baselines")), nchw_axes(l));
    if ((b.extent(0) != 1 && b.extent(0) != x.extent(0)) || b.extent(1) != chw[0] ||
        b.extent(2) != chw[1] || b.extent(3) != chw[2]) {
      CVK_THROW(shape_error, std::string(fn) + ": baselines must be " + layout_pattern(l) +
                                 " with N = 1 or " + std::to_string(x.extent(0)) +
                                 " and the inputs' C, H, W (inputs " + input_text + "), got " +
                                 checked_view<4>(*baselines, fn, "baselines").shape_string());
    }
    base.tensor = b;
    base.has_tensor = true;
  }
  occlusion_run<T>(x, base, f, g, p.average, p.model, p.threads, y, fn);
}

template <class T, class X, class B, class F>
tensor<T, 4> new_occlusion(const X& inputs, const B* baselines, F& f, const occlusion_params& p) {
  const auto v = checked_view<4>(inputs, "occlusion", "inputs");
  auto result = perturb_tensor<T>(v.extents(), "occlusion", "the attributions");
  occlusion_into<T>(inputs, baselines, f, p, result);
  return result;
}

/// Throws cvk::invalid_argument unless the mask parameters of `p` are usable.
inline void check_rise_masks(const rise_params& p, const char* fn) {
  if (p.cells < 1) {
    CVK_THROW(invalid_argument,
              std::string(fn) + ": cells must be >= 1, got " + std::to_string(p.cells));
  }
  if (!(p.keep_probability > 0.0 && p.keep_probability <= 1.0)) {
    CVK_THROW(invalid_argument, std::string(fn) + ": keep_probability must be in (0, 1], got " +
                                    number_string(p.keep_probability));
  }
  if (p.upsample != rise_upsample::paper && p.upsample != rise_upsample::torchray) {
    CVK_THROW(invalid_argument, std::string(fn) + ": upsample is not a cvk::rise_upsample");
  }
  if (p.normalization != rise_normalization::paper &&
      p.normalization != rise_normalization::torchray) {
    CVK_THROW(invalid_argument,
              std::string(fn) + ": normalization is not a cvk::rise_normalization");
  }
  check_perturb_threads(p.threads, fn);
}

/// a + b for sizes a, b >= 0, or cvk::out_of_range naming `fn` and `argument`.
template <class Shape>
index_t checked_add(index_t a, index_t b, const char* fn, const char* argument,
                    const Shape& shape) {
  if (a > std::numeric_limits<index_t>::max() - b) {
    CVK_THROW(out_of_range, std::string(fn) + ": " + argument + " (" + describe_shape(shape) +
                                "): the size " + std::to_string(a) + " + " + std::to_string(b) +
                                " overflows");
  }
  return a + b;
}

/// The mask generator for H×W images, its tap tables and scratch checked for size first.
template <class T>
rise_generator<T> checked_rise_generator(index_t height, index_t width, const rise_params& p,
                                         const char* fn) {
  const auto describe = [&] {
    return std::to_string(height) + "×" + std::to_string(width) + " with " +
           std::to_string(p.cells) + " cells";
  };
  for (const index_t d : {height, width}) {
    const index_t cell = d / p.cells + (d % p.cells != 0 ? 1 : 0);
    const index_t up =
        p.upsample == rise_upsample::paper
            ? checked_mul(checked_add(p.cells, 1, fn, "the upsampled RISE grid", describe), cell,
                          fn, "the upsampled RISE grid", describe)
            : checked_add(d, cell, fn, "the upsampled RISE grid", describe);
    check_allocation_size(up, 2 * sizeof(index_t) + sizeof(T), fn, "the RISE tap tables", describe);
  }
  const index_t scratch =
      checked_mul(p.cells, checked_add(p.cells, width, fn, "the RISE mask scratch", describe), fn,
                  "the RISE mask scratch", describe);
  check_allocation_size(scratch, sizeof(T), fn, "the RISE mask scratch", describe);
  return make_rise_generator<T>(height, width, p.cells, p.keep_probability, p.seed, p.upsample);
}

template <class T, class X, class F, class Out>
void rise_into(const X& inputs, F& f, const rise_params& p, Out&& out) {
  constexpr const char* fn = "rise";
  check_model_options(p.model, fn);
  check_rise_masks(p, fn);
  if (p.masks < 1) {
    CVK_THROW(invalid_argument,
              std::string(fn) + ": masks must be >= 1, got " + std::to_string(p.masks));
  }
  const layout l = p.model.data_layout;
  const auto x = perturb_images<T>(inputs, l, fn, "inputs");
  const index_t images = x.extent(0), height = x.extent(2), width = x.extent(3);
  const auto y = perturb_output3(std::forward<Out>(out), {images, height, width}, "N×H×W", fn);
  if (images == 0) return;
  const auto describe = [&] { return checked_view<4>(inputs, fn, "inputs").shape_string(); };
  checked_mul(checked_mul(images, height, fn, "the RISE sums", describe), width, fn,
              "the RISE sums", describe);
  checked_mul(images, p.masks, fn, "the model inputs", describe);
  const auto gen = checked_rise_generator<T>(height, width, p, fn);
  rise_run<T>(x, f, gen, p.masks, rise_divisor(p.normalization, p.masks, p.keep_probability),
              p.model, p.threads, y, fn);
}

template <class Out>
void rise_masks_into(Out&& out, const rise_params& p, std::uint64_t first) {
  constexpr const char* fn = "rise_masks";
  using T = perturb_scalar_t<Out>;
  assert_perturb_types<T>();
  check_rise_masks(p, fn);
  auto v = checked_view<3>(std::forward<Out>(out), fn, "out");
  static_assert(!std::is_const_v<typename decltype(v)::element_type>,
                "cvk: an output argument must be a mutable tensor");
  const index_t count = v.extent(0), height = v.extent(1), width = v.extent(2);
  if (count == 0) return;
  if (height < 1 || width < 1) {
    CVK_THROW(shape_error,
              std::string(fn) + ": out must be count×H×W with H, W >= 1, got " + v.shape_string());
  }
  const auto gen = checked_rise_generator<T>(height, width, p, fn);
  rise_masks_run<T>(gen, strided_view<T, 3>(v), first, p.threads);
}

template <class Masks, class Scores, class Out>
void rise_accumulate_into(const Masks& masks, const Scores& scores, const rise_params& p,
                          Out&& out) {
  constexpr const char* fn = "rise_accumulate";
  using T = perturb_scalar_t<Masks>;
  assert_perturb_types<T, Scores, Out>();
  check_rise_masks(p, fn);
  const auto m = checked_view<3>(masks, fn, "masks");
  const auto s = checked_view<2>(scores, fn, "scores");
  const index_t count = m.extent(0), height = m.extent(1), width = m.extent(2);
  if (count < 1) {
    CVK_THROW(invalid_argument,
              std::string(fn) + ": masks must hold at least one mask, got " + m.shape_string());
  }
  if (s.extent(1) != count) {
    CVK_THROW(shape_error, std::string(fn) +
                               ": scores must be N×M with M = " + std::to_string(count) +
                               " (masks " + m.shape_string() + "), got " + s.shape_string());
  }
  const index_t images = s.extent(0);
  const auto y = perturb_output3(std::forward<Out>(out), {images, height, width}, "N×H×W", fn);
  rise_accumulate_run<T>(m, s, rise_divisor(p.normalization, count, p.keep_probability),
                         strided_view<T, 3>(y), p.threads);
}

}  // namespace detail

/// Occlusion attributions of `inputs` (N×C×H×W or N×H×W×C per p.model.data_layout) under the
/// forward function `f`, occluded elements set to p.baseline; the inputs' shape and layout.
template <class X, class F>
auto occlusion(const X& inputs, F&& f, const occlusion_params& p = {}) {
  using T = detail::perturb_scalar_t<X>;
  detail::assert_perturb_types<T>();
  detail::assert_forward_function<F, T>();
  return detail::new_occlusion<T, X, X>(inputs, nullptr, f, p);
}

/// Occlusion attributions written into `out` (the inputs' shape and layout).
template <class X, class F, class Out>
void occlusion(const X& inputs, F&& f, const occlusion_params& p, Out&& out) {
  using T = detail::perturb_scalar_t<X>;
  detail::assert_perturb_types<T, Out>();
  detail::assert_forward_function<F, T>();
  detail::occlusion_into<T, X, X>(inputs, nullptr, f, p, std::forward<Out>(out));
}

/// Occlusion attributions with occluded elements taken from `baselines` (the inputs' shape, or
/// a batch of 1 used for every image).
template <class X, class B, class F>
requires tensor_like<const B&>
auto occlusion(const X& inputs, const B& baselines, F&& f, const occlusion_params& p) {
  using T = detail::perturb_scalar_t<X>;
  detail::assert_perturb_types<T, B>();
  detail::assert_forward_function<F, T>();
  return detail::new_occlusion<T>(inputs, &baselines, f, p);
}

/// Occlusion attributions against `baselines`, written into `out`.
template <class X, class B, class F, class Out>
requires tensor_like<const B&>
void occlusion(const X& inputs, const B& baselines, F&& f, const occlusion_params& p, Out&& out) {
  using T = detail::perturb_scalar_t<X>;
  detail::assert_perturb_types<T, B, Out>();
  detail::assert_forward_function<F, T>();
  detail::occlusion_into<T>(inputs, &baselines, f, p, std::forward<Out>(out));
}

/// RISE saliency maps (N×H×W) of `inputs` under the forward function `f`.
template <class X, class F>
tensor<detail::perturb_scalar_t<X>, 3> rise(const X& inputs, F&& f, const rise_params& p = {}) {
  using T = detail::perturb_scalar_t<X>;
  detail::assert_perturb_types<T>();
  detail::assert_forward_function<F, T>();
  const auto v = detail::checked_view<4>(inputs, "rise", "inputs");
  const auto e = detail::nchw_extents(v.extents(), p.model.data_layout);
  auto result = detail::perturb_tensor<T>(std::array<index_t, 3>{e[0], e[2], e[3]}, "rise",
                                          "the saliency maps");
  detail::rise_into<T>(inputs, f, p, result);
  return result;
}

/// RISE saliency maps written into `out` (N×H×W).
template <class X, class F, class Out>
void rise(const X& inputs, F&& f, const rise_params& p, Out&& out) {
  using T = detail::perturb_scalar_t<X>;
  detail::assert_perturb_types<T, Out>();
  detail::assert_forward_function<F, T>();
  detail::rise_into<T>(inputs, f, p, std::forward<Out>(out));
}

/// RISE masks first .. first + count − 1 for H×W images (`size` = {H, W}): the masks rise uses.
template <class T = float>
tensor<T, 3> rise_masks(index_t count, const std::array<index_t, 2>& size,
                        const rise_params& p = {}, std::uint64_t first = 0) {
  detail::assert_perturb_types<T>();
  constexpr const char* fn = "rise_masks";
  if (count < 0 || size[0] < 1 || size[1] < 1) {
    CVK_THROW(shape_error, std::string(fn) + ": count must be >= 0 and H, W >= 1, got count " +
                               std::to_string(count) + " and size " +
                               detail::shape_string(size, 2));
  }
  auto result =
      detail::perturb_tensor<T>(std::array<index_t, 3>{count, size[0], size[1]}, fn, "the masks");
  detail::rise_masks_into(result, p, first);
  return result;
}

/// RISE masks first .. first + count − 1 written into `out` (count×H×W).
template <class Out>
requires mutable_tensor<Out&&>
void rise_masks(Out&& out, const rise_params& p = {}, std::uint64_t first = 0) {
  detail::rise_masks_into(std::forward<Out>(out), p, first);
}

/// RISE maps from given masks (M×H×W) and scores (N×M: image n under mask m):
/// map(n) = Σ_m scores(n, m)·masks(m) / (M·p or M, per p.normalization).
template <class Masks, class Scores>
auto rise_accumulate(const Masks& masks, const Scores& scores, const rise_params& p = {}) {
  using T = detail::perturb_scalar_t<Masks>;
  detail::assert_perturb_types<T, Scores>();
  const auto m = detail::checked_view<3>(masks, "rise_accumulate", "masks");
  const auto s = detail::checked_view<2>(scores, "rise_accumulate", "scores");
  auto result =
      detail::perturb_tensor<T>(std::array<index_t, 3>{s.extent(0), m.extent(1), m.extent(2)},
                                "rise_accumulate", "the saliency maps");
  detail::rise_accumulate_into(masks, scores, p, result);
  return result;
}

/// RISE maps from given masks and scores, written into `out` (N×H×W).
template <class Masks, class Scores, class Out>
void rise_accumulate(const Masks& masks, const Scores& scores, const rise_params& p, Out&& out) {
  detail::rise_accumulate_into(masks, scores, p, std::forward<Out>(out));
}

CVK_END_NAMESPACE
