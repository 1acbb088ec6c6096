// cvk — computer-vision kernels, header-only C++20.
// deform_conv2d: deformable convolution v1 (offsets) and v2 (offsets and a modulation mask) with
// torchvision.ops.deform_conv2d's semantics, forward and backward (input, offset, mask, weight,
// bias), NCHW or NHWC, weight and offset groups, stride, symmetric or asymmetric padding,
// dilation; float or double; bit-identical for any thread count.
// SPDX-License-Identifier: MIT
#pragma once

#include <array>
#include <concepts>
#include <string>
#include <type_traits>
#include <utility>

#include "../core/as_view.hpp"
#include "../core/config.hpp"
#include "../core/layout.hpp"
#include "../core/tensor.hpp"
#include "../detail/checks.hpp"
#include "conv2d.hpp"
#include "conv2d_backward.hpp"
#include "detail/deform_run.hpp"
#include "detail/deform_sampling.hpp"
#include "detail/geometry.hpp"

CVK_BEGIN_NAMESPACE

// The contract of every deform_conv2d entry point.
//
//   y[n, o, oy, ox] = bias[o] + Σ_{i < C/g, ky < KH, kx < KW} w[o, i, ky, kx]
//                       · m[n, q·K + t, oy, ox] · bilinear(x[n, c], py, px)
//   with c = grp(o)·(C/g) + i (grp(o) = ⌊o / (O/g)⌋), t = ky·KW + kx, K = KH·KW,
//        q = ⌊c / (C/og)⌋ the offset group of channel c,
//        py = oy·sh − pt + ky·dh + offset[n, 2(q·K + t),     oy, ox]   (dy first,
//        px = ox·sw − pl + kx·dw + offset[n, 2(q·K + t) + 1, oy, ox]    then dx)
//   and m = 1 without a mask (v1).
//
//   bilinear(x_c, py, px) = 0 unless −1 < py < H and −1 < px < W; otherwise, with y0 = ⌊py⌋,
//   x0 = ⌊px⌋, ly = py − y0, lx = px − x0, the sum over the 4 corners (y0 | y0+1, x0 | x0+1) of
//   (1−ly | ly)·(1−lx | lx)·x_c[corner], a corner outside the image contributing 0 — torchvision's
//   rule (zero padding with partial weights at the border).
//
// Offset layout (channels of `offset` at one output pixel; og offset groups, K taps):
//   [ dy(q=0,t=0) dx(q=0,t=0) dy(q=0,t=1) dx(q=0,t=1) … dy(q=0,t=K−1) dx(q=0,t=K−1) dy(q=1,t=0) … ]
//   i.e. channel 2(q·K + t) is dy and 2(q·K + t) + 1 is dx; the mask's channel is q·K + t.
//   og is offset's channel count / (2·K); input channel c uses offset group ⌊c / (C/og)⌋.
//
// Shapes (N batch, C input, O output channels, g = params.groups, og offset groups):
//   input   N×C×H×W (layout::nchw) or N×H×W×C (layout::nhwc), any strides
//   offset  N×(2·og·KH·KW)×Ho×Wo or N×Ho×Wo×(2·og·KH·KW)
//   mask    N×(og·KH·KW)×Ho×Wo  or N×Ho×Wo×(og·KH·KW), or cvk::no_mask (v1)
//   weight  O×(C/g)×KH×KW (OIHW, torchvision's)
//   bias    O, or cvk::no_bias
//   output  N×O×Ho×Wo or N×Ho×Wo×O, Ho = ⌊(H + pt + pb − dh·(KH − 1) − 1) / sh⌋ + 1, likewise Wo
//           (conv2d's geometry; padding {top, left, bottom, right}, torchvision's padding=(ph, pw)
//           is {ph, pw, ph, pw}).
//   Every tensor holds the same type, float or double (checked at compile time). Outputs must
//   not overlap the inputs.
//
// Non-finite offsets and masks (never undefined behaviour, never a read outside the input):
//   - a coordinate ±inf or of any huge magnitude (1e30) is outside the image: the sample is 0,
//     its offset and mask gradients 0 (the range test comes before any conversion to integer);
//   - a NaN coordinate (NaN offset) makes the sample NaN: the outputs that use it are NaN, its
//     offset and mask gradients NaN, and nothing is scattered into grad_input from it
//     (torchvision's range test is false for NaN and its kernel then converts NaN to an integer,
//     which is undefined behaviour in C++);
//   - a NaN or inf mask multiplies as a number (0·inf = NaN as IEEE says).
//
// Forms (Mask a rank-4 tensor or cvk::no_mask; Bias a rank-1 tensor or cvk::no_bias):
//   deform_conv2d(input, offset, weight[, params])                      → cvk::tensor<T, 4> (v1)
//   deform_conv2d(input, offset, mask, weight, bias, params)            → cvk::tensor<T, 4>
//   deform_conv2d(input, offset, mask, weight, bias, params, out)       → writes out
//   deform_conv2d_output_shape(input_shape, weight_shape[, params])     → output extents
//   deform_conv2d_backward(grad_output, input, offset, mask, weight, params[, options])
//                                                 → deform_conv2d_gradients<T> (input, offset,
//                                                   mask, weight, bias; those not asked for in
//                                                   options, and mask without a mask, are empty)
//   deform_conv2d_backward(grad_output, input, offset, mask, weight, params, targets)
//                                                 → writes the views of `targets` whose data()
//                                                   is not null (deform_conv2d_gradient_views<T>)
//   Gradients have the shape of what they differentiate (grad_offset offset's, in
//   params.data_layout; grad_weight OIHW); grad_output is the output's shape. They are
//   torchvision's: ∂y/∂offset is the derivative of the bilinear formula on its cell (the right
//   derivative at integer coordinates; at exactly py = −1 or px = −1 ours is 0, torchvision's the
//   right derivative), grad_input is the exact adjoint of the sampling.
//
// Errors (every message names the function, the argument and the shapes with their formulas):
//   cvk::invalid_argument  stride or dilation < 1, padding < 0, groups < 1, threads < 0;
//                          a grad_mask target without a mask
//   cvk::shape_error       wrong rank; groups not dividing C and O; weight's C/g not matching the
//                          input; kernel larger than the padded input (empty output); offset
//                          channels not a positive multiple of 2·KH·KW; og not dividing C;
//                          offset or mask not of the shape above; bias not of length O; output or
//                          gradient targets of the wrong shape
//   cvk::out_of_range      size products that overflow; buffers too large to allocate
//
// Complexity: N·Ho·Wo·K·og samples (4 corners, 4 weights each, computed once), N·Ho·Wo·K·C
// gathered values (4 multiply-adds each), then conv2d's 1×1 kernel: N·Ho·Wo·O·(C/g)·K
// multiply-adds. Backward: the same samples, N·Ho·Wo·O·(C/g)·K multiply-adds each for the column
// gradient and the weight gradient, 4 multiply-adds per (sample, channel) for the offset / mask
// gradients and 4 for the input gradient.
// Memory (per call): an NHWC copy of the input plus one pixel of zeros ((N·H·W + 1)·C values),
// the 1×1 weight packed by conv2d_plan (O·(C/g)·K values, padded to whole vectors), and a column
// buffer of R·Wo·C·K values for a chunk of R = max(1, ⌊2^17 / (Wo·C·K)⌋) output rows (at most
// max(2^17, Wo·C·K) values: 512 KiB in float once a row fits). Per task: K·og samples.
// Backward adds a sample table of R·Wo·K·og entries (4 indices, 7 values), the transposed 1×1
// weight, grad_input's NHWC buffer ((N·H·W + 1)·C), the weight gradient twice (O·(C/g)·K).

/// Tag for the v1 forms through the mask slot: `deform_conv2d(x, off, cvk::no_mask, w, b, p)`.
struct no_mask_t {
  explicit constexpr no_mask_t() = default;
};
inline constexpr no_mask_t no_mask{};

/// A mask argument: a rank-4 tensor, or cvk::no_mask.
template <class M>
concept deform_mask = std::same_as<std::remove_cvref_t<M>, no_mask_t> || tensor_of_rank<M, 4>;

/// Parameters of deform_conv2d. Designated initializers: `{.padding = {1, 1, 1, 1}}`.
struct deform_conv2d_params {
  /// Vertical, horizontal step of the window, >= 1.
  std::array<index_t, 2> stride{1, 1};
  /// Zeros around the input: top, left, bottom, right, each >= 0 (torchvision's (ph, pw) is
  /// {ph, pw, ph, pw}).
  std::array<index_t, 4> padding{0, 0, 0, 0};
  /// Spacing between kernel taps, >= 1.
  std::array<index_t, 2> dilation{1, 1};
  /// Weight groups, >= 1; must divide C and O. (Offset groups come from offset's shape.)
  index_t groups = 1;
  /// Axis order of input, offset, mask, output and their gradients.
  layout data_layout = layout::nchw;
  /// Threads: 0 = max_threads(). Results are bit-identical for every value.
  int threads = 0;
};

/// Which gradients deform_conv2d_backward computes (the others come back empty).
struct deform_conv2d_backward_options {
  bool input = true, offset = true, mask = true, weight = true, bias = true;
};

/// The gradients of a deform_conv2d call (empty tensors for those not computed).
template <class T>
struct deform_conv2d_gradients {
  tensor<T, 4> input, offset, mask, weight;
  tensor<T, 1> bias;
};

/// Targets of the write-into backward form: views (`cvk::as_view(t)`) in params.data_layout
/// (weight OIHW); a default (null) view is a gradient not computed.
template <class T>
struct deform_conv2d_gradient_views {
  strided_view<T, 4> input{}, offset{}, mask{}, weight{};
  strided_view<T, 1> bias{};
};

namespace detail {

inline conv2d_params deform_conv_params(const deform_conv2d_params& p) {
  conv2d_params c;
  c.stride = p.stride;
  c.padding = p.padding;
  c.dilation = p.dilation;
  c.groups = p.groups;
  c.data_layout = p.data_layout;
  c.threads = p.threads;
  return c;
}

/// The conv2d geometry of input and weight (extents in params.data_layout and OIHW).
inline conv2d_geometry deform_conv_geometry(const std::array<index_t, 4>& input,
                                            const std::array<index_t, 4>& weight,
                                            const deform_conv2d_params& p, const char* fn) {
  const conv2d_params c = deform_conv_params(p);
  return resolve_conv2d(nchw_extents(input, p.data_layout), weight, c, fn,
                        "input " + shape_string(input, 4) + " (" + layout_pattern(p.data_layout) +
                            "), weight " + shape_string(weight, 4) + " (O×C/groups×KH×KW)");
}

/// Checks offset (and mask, when not null) against the geometry; fills the deformable fields.
template <class Offset, class Mask>
deform_geometry deform_resolve(const conv2d_geometry& g, const Offset& offset, const Mask* mask,
                               const deform_conv2d_params& p, const char* fn) {
  deform_geometry d;
  d.conv = g;
  d.taps = g.kernel_h * g.kernel_w;  // checked with the weight's size
  const std::string k_text = std::to_string(g.kernel_h) + "·" + std::to_string(g.kernel_w);
  const auto oe = nchw_extents(offset.extents(), p.data_layout);
  const index_t per_group = 2 * d.taps;
  if (oe[1] <= 0 || oe[1] % per_group != 0) {
    CVK_THROW(shape_error,
              std::string(fn) + ": offset must have a positive multiple of 2·KH·KW = 2·" + k_text +
                  " = " + std::to_string(per_group) +
                  " channels (2·offset_groups·KH·KW, dy and dx per tap and offset group), got " +
                  std::to_string(oe[1]) + " (offset " + offset.shape_string() + ", " +
                  layout_pattern(p.data_layout) + ")");
  }
  d.offset_groups = oe[1] / per_group;
  if (g.in_channels % d.offset_groups != 0) {
    CVK_THROW(shape_error,
              std::string(fn) + ": the offset groups (" + std::to_string(d.offset_groups) +
                  " = offset's " + std::to_string(oe[1]) + " channels / (2·" + k_text +
                  ")) must divide the input channels (" + std::to_string(g.in_channels) + ")");
  }
  const std::string geo =
      "Ho×Wo = " + std::to_string(g.out_height) + "×" + std::to_string(g.out_width) +
      " the output of input " +
      shape_string(from_nchw({g.batch, g.in_channels, g.in_height, g.in_width}, p.data_layout), 4) +
      ", kernel " + std::to_string(g.kernel_h) + "×" + std::to_string(g.kernel_w);
  const auto pattern = [&](const char* channels, index_t count) {
    return std::string(p.data_layout == layout::nchw ? "N×" : "N×Ho×Wo×") + channels +
           (p.data_layout == layout::nchw ? "×Ho×Wo" : "") + " = " +
           shape_string(from_nchw({g.batch, count, g.out_height, g.out_width}, p.data_layout), 4) +
           " (" + geo + ", offset_groups " + std::to_string(d.offset_groups) + ")";
  };
  expect_shape(offset, from_nchw({g.batch, oe[1], g.out_height, g.out_width}, p.data_layout), fn,
               "offset", pattern("(2·offset_groups·KH·KW)", oe[1]).c_str());
  if (mask != nullptr) {
    const index_t channels = d.offset_groups * d.taps;
    expect_shape(*mask, from_nchw({g.batch, channels, g.out_height, g.out_width}, p.data_layout),
                 fn, "mask", pattern("(offset_groups·KH·KW)", channels).c_str());
    d.masked = true;
  }
  d.channels_per_og = g.in_channels / d.offset_groups;
  const auto shapes = [&] { return "input channels × KH·KW"; };
  d.columns = checked_mul(g.in_channels, d.taps, fn, "the column buffer", shapes);
  d.columns_per_group = g.in_per_group * d.taps;
  // A chunk of rows: at least one row of columns; the sample table of one row.
  (void)checked_mul(checked_mul(g.out_width, d.columns, fn, "the column buffer", shapes), 1, fn,
                    "the column buffer", shapes);
  (void)checked_mul(checked_mul(g.out_width, d.taps, fn, "the sample table", shapes),
                    d.offset_groups, fn, "the sample table", shapes);
  return d;
}

/// Views of one call, (n, c, h, w)-ordered (weight OIHW), and its geometry.
template <class T>
struct deform_call {
  deform_geometry d;
  strided_view<const T, 4> input, offset, mask, weight;
};

template <class T, class Input, class Offset, class Mask, class Weight>
deform_call<T> deform_prepare(const Input& input, const Offset& offset, const Mask& mask,
                              const Weight& weight, const deform_conv2d_params& p, const char* fn) {
  const auto x = checked_view<4>(input, fn, "input");
  const auto w = checked_view<4>(weight, fn, "weight");
  const auto off = checked_view<4>(offset, fn, "offset");
  const conv2d_geometry g = deform_conv_geometry(x.extents(), w.extents(), p, fn);
  deform_call<T> call;
  const auto axes = nchw_axes(p.data_layout);
  if constexpr (std::is_same_v<std::remove_cvref_t<Mask>, no_mask_t>) {
    call.d = deform_resolve(g, off, static_cast<const strided_view<const T, 4>*>(nullptr), p, fn);
  } else {
    const auto m = checked_view<4>(mask, fn, "mask");
    call.d = deform_resolve(g, off, &m, p, fn);
    call.mask = permute_axes(strided_view<const T, 4>(m), axes);
  }
  call.input = permute_axes(strided_view<const T, 4>(x), axes);
  call.offset = permute_axes(strided_view<const T, 4>(off), axes);
  call.weight = strided_view<const T, 4>(w);
  return call;
}

/// The element type of a tensor argument; void for the no_mask / no_bias tags.
template <class X>
struct deform_value {
  using type = std::remove_const_t<tensor_value_t<const X&>>;
};
template <>
struct deform_value<no_mask_t> {
  using type = void;
};
template <>
struct deform_value<no_bias_t> {
  using type = void;
};

template <class T, class... Tensors>
constexpr void assert_deform_types() {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "cvk: deform_conv2d runs on float or double tensors");
  static_assert(
      ((std::is_void_v<typename deform_value<std::remove_cvref_t<Tensors>>::type> ||
        std::is_same_v<typename deform_value<std::remove_cvref_t<Tensors>>::type, T>)&&...),
      "cvk: deform_conv2d needs the same element type in input, offset, mask, weight, "
      "bias and the outputs (all float or all double); convert one of them");
}

template <class T, class Bias>
void deform_check_bias(const Bias& bias, const conv2d_geometry& g, const char* fn) {
  if constexpr (!std::is_same_v<std::remove_cvref_t<Bias>, no_bias_t>) {
    const auto b = checked_view<1>(bias, fn, "bias");
    if (b.extent(0) != g.out_channels) {
      CVK_THROW(shape_error, std::string(fn) +
                                 ": bias must have O = " + std::to_string(g.out_channels) +
                                 " values (weight's output channels), got " + b.shape_string());
    }
  }
}

template <class T, class Input, class Offset, class Mask, class Weight, class Bias, class Out>
void deform_forward_call(const Input& input, const Offset& offset, const Mask& mask,
                         const Weight& weight, const Bias& bias, const deform_conv2d_params& p,
                         Out&& out, const char* fn) {
  const deform_call<T> call = deform_prepare<T>(input, offset, mask, weight, p, fn);
  deform_check_bias<T>(bias, call.d.conv, fn);
  const conv2d_geometry& g = call.d.conv;
  auto y = checked_view<4>(std::forward<Out>(out), fn, "out");
  static_assert(!std::is_const_v<typename decltype(y)::element_type>,
                "cvk: the output of deform_conv2d must be a mutable tensor");
  const auto extents =
      from_nchw({g.batch, g.out_channels, g.out_height, g.out_width}, p.data_layout);
  const std::string pattern =
      std::string(layout_pattern(p.data_layout)) + " = " + shape_string(extents, 4);
  expect_shape(y, extents, fn, "out", pattern.c_str());
  const auto yv = permute_axes(strided_view<T, 4>(y), nchw_axes(p.data_layout));
  if constexpr (std::is_same_v<std::remove_cvref_t<Bias>, no_bias_t>) {
    deform_forward<T>(call.d, call.input, call.offset, call.mask, call.weight, no_bias, yv,
                      p.threads, fn);
  } else {
    deform_forward<T>(call.d, call.input, call.offset, call.mask, call.weight,
                      strided_view<const T, 1>(checked_view<1>(bias, fn, "bias")), yv, p.threads,
                      fn);
  }
}

}  // namespace detail

/// Output extents (in params.data_layout) of a deform_conv2d of an input of `input_shape` (in
/// params.data_layout) with an OIHW weight of `weight_shape`: conv2d's. Same errors.
[[nodiscard]] inline std::array<index_t, 4> deform_conv2d_output_shape(
    const std::array<index_t, 4>& input_shape, const std::array<index_t, 4>& weight_shape,
    const deform_conv2d_params& params = {}) {
  const auto g =
      detail::deform_conv_geometry(input_shape, weight_shape, params, "deform_conv2d_output_shape");
  return detail::from_nchw({g.batch, g.out_channels, g.out_height, g.out_width},
                           params.data_layout);
}

/// Writes deform_conv2d(input, offset, mask, weight) + bias into `out` (no allocation of it).
template <tensor_of_rank<4> Input, tensor_of_rank<4> Offset, deform_mask Mask,
          tensor_of_rank<4> Weight, conv_bias Bias, tensor_of_rank<4> Out>
void deform_conv2d(const Input& input, const Offset& offset, const Mask& mask, const Weight& weight,
                   const Bias& bias, const deform_conv2d_params& params, Out&& out) {
  using T = detail::conv_scalar_t<Input>;
  detail::assert_deform_types<T, Offset, Mask, Weight, Bias, Out>();
  detail::deform_forward_call<T>(input, offset, mask, weight, bias, params, std::forward<Out>(out),
                                 "deform_conv2d");
}

/// y = deform_conv2d(input, offset, mask, weight) + bias (mask or cvk::no_mask, bias or
/// cvk::no_bias).
template <tensor_of_rank<4> Input, tensor_of_rank<4> Offset, deform_mask Mask,
          tensor_of_rank<4> Weight, conv_bias Bias>
[[nodiscard]] auto deform_conv2d(const Input& input, const Offset& offset, const Mask& mask,
                                 const Weight& weight, const Bias& bias,
                                 const deform_conv2d_params& params) {
  using T = detail::conv_scalar_t<Input>;
  detail::assert_deform_types<T, Offset, Mask, Weight, Bias>();
  const char* fn = "deform_conv2d";
  const auto x = detail::checked_view<4>(input, fn, "input");
  const auto w = detail::checked_view<4>(weight, fn, "weight");
  const auto g = detail::deform_conv_geometry(x.extents(), w.extents(), params, fn);
  const auto extents =
      detail::from_nchw({g.batch, g.out_channels, g.out_height, g.out_width}, params.data_layout);
  tensor<T, 4> result = detail::new_gradient<T>(extents, fn, "the output");
  detail::deform_forward_call<T>(input, offset, mask, weight, bias, params, result, fn);
  return result;
}

/// y = deform_conv2d(input, offset, weight), v1 without bias.
template <tensor_of_rank<4> Input, tensor_of_rank<4> Offset, tensor_of_rank<4> Weight>
[[nodiscard]] auto deform_conv2d(const Input& input, const Offset& offset, const Weight& weight,
                                 const deform_conv2d_params& params = {}) {
  return deform_conv2d(input, offset, no_mask, weight, no_bias, params);
}

namespace detail {

template <class T, class GradOut, class Input, class Offset, class Mask, class Weight>
void deform_backward_call(const GradOut& grad_output, const Input& input, const Offset& offset,
                          const Mask& mask, const Weight& weight, const deform_conv2d_params& p,
                          const deform_conv2d_gradient_views<T>& targets, const char* fn) {
  const deform_call<T> call = deform_prepare<T>(input, offset, mask, weight, p, fn);
  const conv2d_geometry& g = call.d.conv;
  const auto dy = checked_view<4>(grad_output, fn, "grad_output");
  const auto out_extents =
      from_nchw({g.batch, g.out_channels, g.out_height, g.out_width}, p.data_layout);
  const std::string pattern = std::string(layout_pattern(p.data_layout)) + " = " +
                              shape_string(out_extents, 4) + " (the output's shape)";
  expect_shape(dy, out_extents, fn, "grad_output", pattern.c_str());
  const auto axes = nchw_axes(p.data_layout);
  deform_grad_targets<T> t;
  const auto target = [&](const strided_view<T, 4>& v, const strided_view<const T, 4>& like,
                          const char* name, bool permute) {
    if (v.data() == nullptr) return strided_view<T, 4>();
    const auto e = permute ? from_nchw(like.extents(), p.data_layout) : like.extents();
    const std::string want =
        std::string(name == std::string("grad_weight") ? "O×C/groups×KH×KW"
                                                       : layout_pattern(p.data_layout)) +
        " = " + shape_string(e, 4);
    expect_shape(v, e, fn, name, want.c_str());
    return permute ? permute_axes(v, axes) : v;
  };
  t.input = target(targets.input, call.input, "grad_input", true);
  t.offset = target(targets.offset, call.offset, "grad_offset", true);
  if (targets.mask.data() != nullptr && call.mask.data() == nullptr) {
    CVK_THROW(invalid_argument, std::string(fn) +
                                    ": a grad_mask target was given without a mask (v1 has no "
                                    "mask gradient)");
  }
  t.mask = target(targets.mask, call.mask, "grad_mask", true);
  t.weight = target(targets.weight, call.weight, "grad_weight", false);
  if (targets.bias.data() != nullptr) {
    expect_shape(targets.bias, {g.out_channels}, fn, "grad_bias");
    t.bias = targets.bias;
  }
  deform_backward<T>(call.d, call.input, call.offset, call.mask, call.weight,
                     permute_axes(strided_view<const T, 4>(dy), axes), t, p.threads, fn);
}

}  // namespace detail

/// Writes the gradients of deform_conv2d whose targets are given (non-null views in
/// params.data_layout, grad_weight OIHW, grad_bias O values).
template <tensor_of_rank<4> GradOut, tensor_of_rank<4> Input, tensor_of_rank<4> Offset,
          deform_mask Mask, tensor_of_rank<4> Weight, class T>
void deform_conv2d_backward(const GradOut& grad_output, const Input& input, const Offset& offset,
                            const Mask& mask, const Weight& weight,
                            const deform_conv2d_params& params,
                            const deform_conv2d_gradient_views<T>& targets) {
  detail::assert_deform_types<T, GradOut, Input, Offset, Mask, Weight>();
  detail::deform_backward_call<T>(grad_output, input, offset, mask, weight, params, targets,
                                  "deform_conv2d_backward");
}

/// The gradients of deform_conv2d(input, offset, mask, weight, bias) for `grad_output`
/// (those not asked for in `options`, and grad_mask without a mask, come back empty).
template <tensor_of_rank<4> GradOut, tensor_of_rank<4> Input, tensor_of_rank<4> Offset,
          deform_mask Mask, tensor_of_rank<4> Weight>
[[nodiscard]] auto deform_conv2d_backward(const GradOut& grad_output, const Input& input,
                                          const Offset& offset, const Mask& mask,
                                          const Weight& weight, const deform_conv2d_params& params,
                                          const deform_conv2d_backward_options& options = {}) {
  using T = detail::conv_scalar_t<Input>;
  detail::assert_deform_types<T, GradOut, Offset, Mask, Weight>();
  const char* fn = "deform_conv2d_backward";
  const detail::deform_call<T> call =
      detail::deform_prepare<T>(input, offset, mask, weight, params, fn);
  const auto in_layout = [&](const strided_view<const T, 4>& v) {
    return detail::from_nchw(v.extents(), params.data_layout);
  };
  deform_conv2d_gradients<T> r;
  deform_conv2d_gradient_views<T> views;
  if (options.input) {
    r.input = detail::new_gradient<T>(in_layout(call.input), fn, "grad_input");
    views.input = r.input.view();
  }
  if (options.offset) {
    r.offset = detail::new_gradient<T>(in_layout(call.offset), fn, "grad_offset");
    views.offset = r.offset.view();
  }
  if (options.mask && call.mask.data() != nullptr) {
    r.mask = detail::new_gradient<T>(in_layout(call.mask), fn, "grad_mask");
    views.mask = r.mask.view();
  }
  if (options.weight) {
    r.weight = detail::new_gradient<T>(call.weight.extents(), fn, "grad_weight");
    views.weight = r.weight.view();
  }
  if (options.bias) {
    r.bias =
        detail::new_gradient<T>(std::array<index_t, 1>{call.d.conv.out_channels}, fn, "grad_bias");
    views.bias = r.bias.view();
  }
  detail::deform_backward_call<T>(grad_output, input, offset, mask, weight, params, views, fn);
  return r;
}

CVK_END_NAMESPACE
