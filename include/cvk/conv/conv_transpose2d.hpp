// cvk — computer-vision kernels, header-only C++20.
// conv_transpose2d: 2-D transposed (fractionally strided) convolution with
// torch.nn.functional.conv_transpose2d semantics — stride, symmetric or asymmetric padding,
// output_padding, dilation, groups — NCHW or NHWC activations, the weight in PyTorch's
// I×(O/g)×KH×KW or as KH×KW×(O/g)×I (TensorFlow's conv2d_transpose filter), optional bias and
// activation. It is the input gradient of conv2d, and runs the same kernel as
// conv2d_backward_input (detail/conv_transpose_nhwc.hpp).
// SPDX-License-Identifier: MIT
#pragma once

#include <array>
#include <cmath>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "../core/as_view.hpp"
#include "../core/config.hpp"
#include "../core/tensor.hpp"
#include "../detail/checks.hpp"
#include "conv2d.hpp"
#include "detail/conv_transpose_nhwc.hpp"
#include "detail/geometry.hpp"

CVK_BEGIN_NAMESPACE

// The contract of every conv_transpose2d entry point.
//
//   y[n, grp·(O/g) + o, oy, ox] = act( bias[grp·(O/g) + o]
//       + Σ_{c < I/g, ky < KH, kx < KW} w[grp·(I/g) + c, o, ky, kx] · x[n, grp·(I/g) + c, iy, ix] )
//   over the (iy, ix) with oy = iy·sh − pt + ky·dh and ox = ix·sw − pl + kx·dw — the scatter of
//   every input pixel through the kernel, the adjoint of conv2d: conv_transpose2d(x, w) is
//   conv2d_backward_input(x, w, shape of y) for the conv2d of the same stride, padding,
//   dilation, groups and weight.
//
// Shapes (N batch, I input channels, O output channels, g groups):
//   input   N×I×H×W (layout::nchw) or N×H×W×I (layout::nhwc), any strides
//   weight  I×(O/g)×KH×KW (weight_layout::oihw: PyTorch's ConvTranspose2d weight, i.e. the
//           O×I/g×KH×KW weight of the conv2d it transposes) or KH×KW×(O/g)×I (weight_layout::hwio)
//   bias    O, or cvk::no_bias
//   output  N×O×Ho×Wo or N×Ho×Wo×O, with, per axis (pt + pb = padding of H, likewise W),
//             Ho = (H − 1)·sh − pt − pb + dh·(KH − 1) + output_padding_h + 1
//           PyTorch's padding=(ph, pw) is {ph, pw, ph, pw}: it removes ph rows from each side of
//           the full output; asymmetric padding removes pt from the top and pb from the bottom.
//           output_padding adds rows at the bottom (columns at the right); each must be smaller
//           than the stride or the dilation of its axis, as PyTorch checks.
//   Every tensor holds the same type, float or double; the output must not overlap the others.
//
// Forms:
//   conv_transpose2d(input, weight[, params])                          → cvk::tensor<T, 4>
//   conv_transpose2d(input, weight, bias, params)                      → cvk::tensor<T, 4>
//   conv_transpose2d(input, weight, bias, params, out)                 → writes out
//   conv_transpose2d_output_shape(input_shape, weight_shape, params)   → extents in the layout
//
// Errors (every message names the function, the argument and the shapes):
//   cvk::invalid_argument  stride or dilation < 1, padding < 0, groups < 1, output_padding < 0
//                          or not below the stride or the dilation, clamp_min > clamp_max,
//                          threads < 0
//   cvk::shape_error       wrong rank; groups not dividing I; weight's first axis (I) not the
//                          input's channels; a kernel smaller than 1×1; padding that leaves an
//                          empty output; bias not of length O; output of the wrong shape
//   cvk::out_of_range      size products that overflow; buffers too large to allocate
//
// Complexity: N·H·W·I·(O/g)·KH·KW multiply-adds (the conv2d's count). The output splits into
// stride_h·stride_w phases, each a stride-1 conv2d of the input with its taps of the flipped
// weight, run by conv2d's paths: every output element is summed by one thread in that path's
// order, so results are bit-identical for any thread count. Memory: per phase the weight packed
// for its path (at most the vector width times the weight) and, when the input is not
// NHWC-contiguous or the path interleaves groups, one copy of the input in the path's layout;
// one output row per chunk of rows.

/// Parameters of conv_transpose2d: conv2d_params' fields (same meaning, same checks) without
/// auto_pad, plus output_padding. Designated initializers:
/// `{.stride = {2, 2}, .padding = {1, 1, 1, 1}, .output_padding = {1, 1}}`.
struct conv_transpose2d_params {
  /// Vertical, horizontal step between the input pixels' copies of the kernel, >= 1.
  std::array<index_t, 2> stride{1, 1};
  /// Rows and columns removed from the full output: top, left, bottom, right, each >= 0.
  std::array<index_t, 4> padding{0, 0, 0, 0};
  /// Rows added at the bottom and columns at the right, each >= 0 and smaller than the stride
  /// or the dilation of its axis (it picks one of the input sizes a strided conv2d maps to H).
  std::array<index_t, 2> output_padding{0, 0};
  std::array<index_t, 2> dilation{1, 1};  // >= 1, between kernel taps
  index_t groups = 1;                     // >= 1, divides the input channels
  layout data_layout = layout::nchw;      // input and output
  /// oihw: I×(O/g)×KH×KW (PyTorch); hwio: KH×KW×(O/g)×I.
  weight_layout weights = weight_layout::oihw;
  activation act = activation::none;  // after the bias; clamp bounds as in conv2d_params
  double clamp_min = -std::numeric_limits<double>::infinity();
  double clamp_max = std::numeric_limits<double>::infinity();
  /// 0 = max_threads(); the result is the same for every value.
  int threads = 0;
};

namespace detail {

/// The conv2d whose input gradient conv_transpose2d computes (output_padding aside).
inline conv2d_params transposed_conv2d_params(const conv_transpose2d_params& p) noexcept {
  conv2d_params c;
  c.stride = p.stride;
  c.padding = p.padding;
  c.dilation = p.dilation;
  c.groups = p.groups;
  c.data_layout = p.data_layout;
  c.weights = p.weights;
  c.act = p.act;
  c.clamp_min = p.clamp_min;
  c.clamp_max = p.clamp_max;
  c.threads = p.threads;
  return c;
}

inline const char* transpose_weight_pattern(weight_layout l) noexcept {
  return l == weight_layout::oihw ? "I×O/groups×KH×KW" : "KH×KW×O/groups×I";
}

/// The geometry of the conv2d that conv_transpose2d transposes: its input is the transposed
/// conv's output (N×O×Ho×Wo), its output the transposed conv's input (out_height = H,
/// out_width = W). `in` is the input's {N, I, H, W}, `w` the weight's {I, O/g, KH, KW}.
inline conv2d_geometry resolve_conv_transpose2d(const std::array<index_t, 4>& in,
                                                const std::array<index_t, 4>& w,
                                                const conv_transpose2d_params& p, const char* fn,
                                                const std::string& shapes) {
  const conv2d_params c = transposed_conv2d_params(p);
  check_conv2d_params(c, fn);
  for (std::size_t axis = 0; axis < 2; ++axis) {
    const index_t op = p.output_padding[axis];
    if (op < 0 || (op >= p.stride[axis] && op >= p.dilation[axis])) {
      const std::string k = std::to_string(axis);
      CVK_THROW(invalid_argument,
                std::string(fn) + ": params.output_padding[" + k + "] must be >= 0 and smaller " +
                    "than params.stride[" + k + "] or params.dilation[" + k + "] (PyTorch), got " +
                    std::to_string(op) + " with stride " + std::to_string(p.stride[axis]) +
                    " and dilation " + std::to_string(p.dilation[axis]));
    }
  }
  for (std::size_t i = 0; i < 4; ++i) {
    if (in[i] < 0 || w[i] < 0) {
      CVK_THROW(shape_error, std::string(fn) + ": extents must be >= 0, got " + shapes);
    }
  }
  if (in[1] % p.groups != 0) {
    CVK_THROW(shape_error, std::string(fn) + ": params.groups (" + std::to_string(p.groups) +
                               ") must divide the input channels (" + std::to_string(in[1]) +
                               "); shapes " + shapes);
  }
  if (w[0] != in[1]) {
    CVK_THROW(shape_error, std::string(fn) + ": weight must have the input's " +
                               std::to_string(in[1]) + " channels along its I axis, got " +
                               std::to_string(w[0]) + "; shapes " + shapes);
  }
  if (w[2] < 1 || w[3] < 1) {
    CVK_THROW(shape_error,
              std::string(fn) + ": weight must have a kernel of at least 1×1, got " + shapes);
  }
  // Ho = (H − 1)·sh + dh·(KH − 1) + output_padding + 1 − pt − pb, each step checked.
  const auto extent = [&](index_t size, index_t stride, index_t dilation, index_t kernel,
                          index_t op, index_t pad_begin, index_t pad_end, const char* axis) {
    if (size == 0) {
      CVK_THROW(shape_error, std::string(fn) + ": input must have at least one pixel along " +
                                 axis + " (PyTorch rejects an empty image), got " + shapes);
    }
    const index_t full = checked_extent_sum(
        checked_extent_sum(checked_mul(size - 1, stride, fn, "the output", shapes),
                           checked_mul(kernel - 1, dilation, fn, "the output", shapes), fn,
                           "the output", shapes),
        op + 1, fn, "the output", shapes);
    const index_t removed = checked_extent_sum(pad_begin, pad_end, fn, "the output", shapes);
    if (full <= removed) {
      CVK_THROW(shape_error, std::string(fn) + ": params.padding removes " +
                                 std::to_string(removed) + " of the " + std::to_string(full) +
                                 " output rows or columns along " + axis +
                                 ", the output would be empty; shapes " + shapes);
    }
    return full - removed;
  };
  const index_t out_h = extent(in[2], p.stride[0], p.dilation[0], w[2], p.output_padding[0],
                               p.padding[0], p.padding[2], "H");
  const index_t out_w = extent(in[3], p.stride[1], p.dilation[1], w[3], p.output_padding[1],
                               p.padding[1], p.padding[3], "W");
  const index_t out_channels = checked_mul(w[1], p.groups, fn, "the output", shapes);
  (void)checked_mul(checked_mul(checked_mul(in[0], out_channels, fn, "the output", shapes), out_h,
                                fn, "the output", shapes),
                    out_w, fn, "the output", shapes);
  // The conv2d geometry checks the rest (its input is our output, its weight is ours read as
  // O×I/g×KH×KW); its output extents are at least H, W (exactly, unless output_padding >=
  // stride): the input's extents are the ones the kernel reads.
  conv2d_geometry g = resolve_conv2d({in[0], out_channels, out_h, out_w}, w, c, fn, shapes);
  g.out_height = in[2];
  g.out_width = in[3];
  return g;
}

inline std::string conv_transpose_shapes(const std::string& input, const std::string& weight,
                                         const conv_transpose2d_params& p) {
  return "input " + input + " (" + layout_pattern(p.data_layout) + "), weight " + weight + " (" +
         transpose_weight_pattern(p.weights) + ")";
}

/// conv_transpose2d's checks and its output extents in the params' layout, for one call.
struct conv_transpose2d_call {
  conv2d_geometry geometry;
  std::array<index_t, 4> output_extents{};
};

template <class X, class W>
conv_transpose2d_call resolve_conv_transpose2d_views(const X& x, const W& weight,
                                                     const conv_transpose2d_params& p,
                                                     const char* fn) {
  conv_transpose2d_call call;
  call.geometry = resolve_conv_transpose2d(
      nchw_extents(x.extents(), p.data_layout), oihw_extents(weight.extents(), p.weights), p, fn,
      conv_transpose_shapes(x.shape_string(), weight.shape_string(), p));
  const conv2d_geometry& g = call.geometry;
  call.output_extents = from_nchw({g.batch, g.in_channels, g.in_height, g.in_width}, p.data_layout);
  return call;
}

/// Writes conv_transpose2d(input, weight) + bias into `out` after checking every argument.
template <class T, class Input, class Weight, class Bias, class Out>
void conv_transpose2d_into(const Input& input, const Weight& weight, const Bias& bias,
                           const conv_transpose2d_params& params, Out&& out, const char* fn) {
  assert_conv_types<T, Input, Weight, Bias, Out>();
  const auto x = checked_view<4>(input, fn, "input");
  const auto w = checked_view<4>(weight, fn, "weight");
  const conv_transpose2d_call call = resolve_conv_transpose2d_views(x, w, params, fn);
  const conv2d_geometry& g = call.geometry;
  auto y = checked_view<4>(std::forward<Out>(out), fn, "out");
  static_assert(!std::is_const_v<typename decltype(y)::element_type>,
                "cvk: the output of conv_transpose2d must be a mutable tensor");
  const std::string pattern = std::string(layout_pattern(params.data_layout)) + " = " +
                              shape_string(call.output_extents, 4);
  expect_shape(y, call.output_extents, fn, "out", pattern.c_str());
  std::vector<T> bias_values =
      checked_vector<T>(g.in_channels, fn, "the bias", [&] { return w.shape_string(); });
  if constexpr (!std::is_same_v<Bias, no_bias_t>) {
    const auto b = checked_view<1>(bias, fn, "bias");
    if (b.extent(0) != g.in_channels) {
      CVK_THROW(shape_error, std::string(fn) + ": bias must have " + std::to_string(g.in_channels) +
                                 " values (the output channels), got " + b.shape_string() +
                                 "; weight " + w.shape_string() + " (" +
                                 transpose_weight_pattern(params.weights) + "), params.groups " +
                                 std::to_string(params.groups));
    }
    for (index_t c = 0; c < g.in_channels; ++c) bias_values[static_cast<std::size_t>(c)] = b(c);
  }
  const auto axes = nchw_axes(params.data_layout);
  conv_transpose_execute<T>(g, permute_axes(strided_view<const T, 4>(w), oihw_axes(params.weights)),
                            permute_axes(strided_view<const T, 4>(x), axes), bias_values.data(),
                            permute_axes(strided_view<T, 4>(y), axes),
                            transposed_conv2d_params(params), fn);
}

template <class T, class Input, class Weight, class Bias>
tensor<T, 4> conv_transpose2d_new(const Input& input, const Weight& weight, const Bias& bias,
                                  const conv_transpose2d_params& params) {
  const char* fn = "conv_transpose2d";
  assert_conv_types<T, Input, Weight, Bias>();
  const auto x = checked_view<4>(input, fn, "input");
  const auto w = checked_view<4>(weight, fn, "weight");
  const auto extents = resolve_conv_transpose2d_views(x, w, params, fn).output_extents;
  tensor<T, 4> result = checked_allocation<T>(
      extents[0] * extents[1] * extents[2] * extents[3], fn, "the output",  // checked
      [&] { return shape_string(extents, 4); }, [&] { return tensor<T, 4>(extents); });
  conv_transpose2d_into<T>(x, w, bias, params, result, fn);
  return result;
}

}  // namespace detail

/// Output extents (in params.data_layout) of a conv_transpose2d of an input of `input_shape`
/// (in params.data_layout) with a weight of `weight_shape` (in params.weights). Same errors.
[[nodiscard]] inline std::array<index_t, 4> conv_transpose2d_output_shape(
    const std::array<index_t, 4>& input_shape, const std::array<index_t, 4>& weight_shape,
    const conv_transpose2d_params& params = {}) {
  const auto g = detail::resolve_conv_transpose2d(
      detail::nchw_extents(input_shape, params.data_layout),
      detail::oihw_extents(weight_shape, params.weights), params, "conv_transpose2d_output_shape",
      detail::conv_transpose_shapes(detail::shape_string(input_shape, 4),
                                    detail::shape_string(weight_shape, 4), params));
  return detail::from_nchw({g.batch, g.in_channels, g.in_height, g.in_width}, params.data_layout);
}

/// y = conv_transpose2d(input, weight) (no bias).
template <tensor_of_rank<4> Input, tensor_of_rank<4> Weight>
[[nodiscard]] auto conv_transpose2d(const Input& input, const Weight& weight,
                                    const conv_transpose2d_params& params = {}) {
  using T = detail::conv_scalar_t<Input>;
  return detail::conv_transpose2d_new<T>(input, weight, no_bias, params);
}

/// y = act(conv_transpose2d(input, weight) + bias); bias is O values or cvk::no_bias.
template <tensor_of_rank<4> Input, tensor_of_rank<4> Weight, conv_bias Bias>
[[nodiscard]] auto conv_transpose2d(const Input& input, const Weight& weight, const Bias& bias,
                                    const conv_transpose2d_params& params) {
  using T = detail::conv_scalar_t<Input>;
  return detail::conv_transpose2d_new<T>(input, weight, bias, params);
}

/// Writes act(conv_transpose2d(input, weight) + bias) into `out` (no allocation of it).
template <tensor_of_rank<4> Input, tensor_of_rank<4> Weight, conv_bias Bias, tensor_of_rank<4> Out>
void conv_transpose2d(const Input& input, const Weight& weight, const Bias& bias,
                      const conv_transpose2d_params& params, Out&& out) {
  using T = detail::conv_scalar_t<Input>;
  detail::conv_transpose2d_into<T>(input, weight, bias, params, std::forward<Out>(out),
                                   "conv_transpose2d");
}

CVK_END_NAMESPACE
