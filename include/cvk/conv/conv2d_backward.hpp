// cvk — computer-vision kernels, header-only C++20.
// conv2d's backward pass with PyTorch semantics (torch.nn.grad.conv2d_input / conv2d_weight,
// and the bias gradient): the gradients of a conv2d's input, weight and bias from the gradient
// of its output, for every conv2d_params conv2d accepts (groups, stride, dilation, asymmetric
// padding, ONNX auto_pad, NCHW / NHWC, OIHW / HWIO), race-free and bit-identical for any thread
// count.
// SPDX-License-Identifier: MIT
#pragma once

#include <array>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "../core/as_view.hpp"
#include "../core/config.hpp"
#include "../core/tensor.hpp"
#include "../detail/checks.hpp"
#include "conv2d.hpp"
#include "detail/conv2d_grad_nhwc.hpp"
#include "detail/conv_transpose_nhwc.hpp"
#include "detail/geometry.hpp"

CVK_BEGIN_NAMESPACE

// The contract of every conv2d backward entry point, for the forward conv2d
//   y[n, o, oy, ox] = bias[o] + Σ_{i, ky, kx} w[o, i, ky, kx] · x[n, grp(o)·(I/g) + i, iy, ix],
//   iy = oy·sh − pt + ky·dh, ix = ox·sw − pl + kx·dw (x = 0 outside), grp(o) = ⌊o / (O/g)⌋
// and dy = ∂L/∂y (grad_output):
//
//   grad_input[n, grp·(I/g) + i, iy, ix] = Σ_{o in grp, ky, kx : iy, ix as above} w[o, i, ky, kx]
//                                                                          · dy[n, o, oy, ox]
//   grad_weight[o, i, ky, kx]           = Σ_{n, oy, ox} dy[n, o, oy, ox] · x[n, grp(o)·(I/g) + i,
//                                                                              iy, ix]
//   grad_bias[o]                        = Σ_{n, oy, ox} dy[n, o, oy, ox]
//
// grad_input is conv_transpose2d(dy, w) with the same stride, padding, dilation and groups
// (plus the output_padding that input_shape implies), and runs the same kernel.
//
// Shapes (in params.data_layout and params.weights, as for conv2d):
//   grad_output  N×O×Ho×Wo (nchw) or N×Ho×Wo×O (nhwc): exactly conv2d_output_shape(input_shape,
//                weight_shape, params) — an input_shape whose conv2d output is not grad_output's
//                shape is an error
//   input_shape  N×I×H×W or N×H×W×I; weight O×(I/g)×KH×KW or KH×KW×(I/g)×O
//   grad_input   input_shape;  grad_weight  weight's shape;  grad_bias  O
// params.act must be activation::none: the backward pass of a fused activation is the caller's
// (multiply grad_output by the activation's derivative first). Any strides; float or double,
// the same in every tensor.
//
// Forms:
//   conv2d_backward_input(grad_output, weight, input_shape[, params])   → cvk::tensor<T, 4>
//   conv2d_backward_input(grad_output, weight, params, grad_input)      → writes grad_input
//   conv2d_backward_weight(grad_output, input, weight_shape[, params])  → cvk::tensor<T, 4>
//   conv2d_backward_weight(grad_output, input, params, grad_weight)     → writes grad_weight
//   conv2d_backward_bias(grad_output[, params])                         → cvk::tensor<T, 1>
//   conv2d_backward_bias(grad_output, params, grad_bias)                → writes grad_bias
//
// Errors (naming the function, the argument and the shapes): conv2d's (invalid_argument for the
// params, shape_error for ranks, groups, channel counts, kernel larger than the padded input,
// out_of_range for overflowing sizes), plus invalid_argument for params.act, shape_error for a
// grad_output whose shape is not the conv2d output of input_shape (or of input), and for
// grad_input, grad_weight, grad_bias of the wrong shape.
//
// Complexity: grad_input and grad_weight N·Ho·Wo·O·(I/g)·KH·KW multiply-adds each (the forward
// count), grad_bias N·Ho·Wo·O adds. Memory: grad_input as conv_transpose2d (per stride phase
// the weight packed for a forward path and, unless grad_output is NHWC-contiguous and the path
// reads NHWC, a copy of it in the path's layout); grad_weight one NHWC copy of input unless it
// is NHWC-contiguous, and grad_output with each group's channels padded to whole vectors (no
// copy when it is NHWC-contiguous and O/g fills whole vectors) or, with fewer than 8 input
// channels per group, expanded (N·Ho·Wo·(O/g)·I values); per grad_weight task a block of at
// most the weight's size padded to whole vectors. Every gradient element is summed by one
// thread in a fixed order: grad_input in the forward path's order over its taps and channels,
// grad_weight and grad_bias over (n, oy, ox).

namespace detail {

inline void check_backward_params(const conv2d_params& p, const char* fn) {
  check_conv2d_params(p, fn);
  if (p.act != activation::none) {
    CVK_THROW(invalid_argument,
              std::string(fn) +
                  ": params.act must be activation::none (apply the activation's derivative to "
                  "grad_output first), got activation " +
                  std::to_string(static_cast<int>(p.act)));
  }
}

/// The conv2d geometry of a backward call, checked against grad_output's extents.
/// `input_what` / `weight_what` name the arguments that carry those shapes.
template <class GradOut>
conv2d_geometry resolve_backward(const GradOut& grad_output, const std::array<index_t, 4>& input,
                                 const char* input_what, const std::array<index_t, 4>& weight,
                                 const char* weight_what, const conv2d_params& p, const char* fn) {
  check_backward_params(p, fn);
  const std::string shapes = std::string(input_what) + " " + shape_string(input, 4) + " (" +
                             layout_pattern(p.data_layout) + "), " + weight_what + " " +
                             shape_string(weight, 4) + " (" + weight_pattern(p.weights) + ")";
  const conv2d_geometry g = resolve_conv2d(nchw_extents(input, p.data_layout),
                                           oihw_extents(weight, p.weights), p, fn, shapes);
  const auto expected =
      from_nchw({g.batch, g.out_channels, g.out_height, g.out_width}, p.data_layout);
  const std::string pattern = std::string(layout_pattern(p.data_layout)) + " = " +
                              shape_string(expected, 4) + " (the conv2d output of " + shapes + ")";
  expect_shape(grad_output, expected, fn, "grad_output", pattern.c_str());
  return g;
}

/// Writes grad_input given its view `out` (extents = input_shape, checked by the caller).
template <class T, class GradOut, class Weight>
void backward_input_run(const conv2d_geometry& g, const GradOut& dy, const Weight& w,
                        const strided_view<T, 4>& out, const conv2d_params& p, const char* fn) {
  const std::vector<T> zeros = checked_vector<T>(g.in_channels, fn, "grad_input", out);
  const auto axes = nchw_axes(p.data_layout);
  conv_transpose_execute<T>(g, permute_axes(strided_view<const T, 4>(w), oihw_axes(p.weights)),
                            permute_axes(strided_view<const T, 4>(dy), axes), zeros.data(),
                            permute_axes(out, axes), p, fn);
}

template <class T, class GradOut, class Input>
void backward_weight_run(const conv2d_geometry& g, const GradOut& dy, const Input& x,
                         const strided_view<T, 4>& out, const conv2d_params& p, const char* fn) {
  const auto axes = nchw_axes(p.data_layout);
  conv2d_weight_grad<T>(g, permute_axes(strided_view<const T, 4>(x), axes),
                        permute_axes(strided_view<const T, 4>(dy), axes),
                        permute_axes(out, oihw_axes(p.weights)), p.threads, fn);
}

/// A new tensor of `extents` (checked before the allocation).
template <class T, std::size_t Rank>
tensor<T, Rank> new_gradient(const std::array<index_t, Rank>& extents, const char* fn,
                             const char* what) {
  index_t count = 1;
  for (const index_t e : extents) {
    count = checked_mul(count, e, fn, what, [&] { return shape_string(extents, Rank); });
  }
  return checked_allocation<T>(
      count, fn, what, [&] { return shape_string(extents, Rank); },
      [&] { return tensor<T, Rank>(extents); });
}

}  // namespace detail

/// grad_input (extents input_shape, in params.data_layout) of the conv2d of `weight` whose
/// output gradient is `grad_output`.
template <tensor_of_rank<4> GradOut, tensor_of_rank<4> Weight>
[[nodiscard]] auto conv2d_backward_input(const GradOut& grad_output, const Weight& weight,
                                         const std::array<index_t, 4>& input_shape,
                                         const conv2d_params& params = {}) {
  using T = detail::conv_scalar_t<GradOut>;
  detail::assert_conv_types<T, Weight>();
  const char* fn = "conv2d_backward_input";
  const auto dy = detail::checked_view<4>(grad_output, fn, "grad_output");
  const auto w = detail::checked_view<4>(weight, fn, "weight");
  const auto g =
      detail::resolve_backward(dy, input_shape, "input_shape", w.extents(), "weight", params, fn);
  auto result = detail::new_gradient<T>(input_shape, fn, "grad_input");
  detail::backward_input_run<T>(g, dy, w, result.view(), params, fn);
  return result;
}

/// Writes grad_input into `grad_input`, whose extents are the conv2d input's shape.
template <tensor_of_rank<4> GradOut, tensor_of_rank<4> Weight, tensor_of_rank<4> GradInput>
void conv2d_backward_input(const GradOut& grad_output, const Weight& weight,
                           const conv2d_params& params, GradInput&& grad_input) {
  using T = detail::conv_scalar_t<GradOut>;
  detail::assert_conv_types<T, Weight, GradInput>();
  const char* fn = "conv2d_backward_input";
  const auto dy = detail::checked_view<4>(grad_output, fn, "grad_output");
  const auto w = detail::checked_view<4>(weight, fn, "weight");
  auto out = detail::checked_view<4>(std::forward<GradInput>(grad_input), fn, "grad_input");
  static_assert(!std::is_const_v<typename decltype(out)::element_type>,
                "cvk: grad_input must be a mutable tensor");
  const auto g =
      detail::resolve_backward(dy, out.extents(), "grad_input", w.extents(), "weight", params, fn);
  detail::backward_input_run<T>(g, dy, w, strided_view<T, 4>(out), params, fn);
}

/// grad_weight (extents weight_shape, in params.weights) of the conv2d of `input` whose output
/// gradient is `grad_output`.
template <tensor_of_rank<4> GradOut, tensor_of_rank<4> Input>
[[nodiscard]] auto conv2d_backward_weight(const GradOut& grad_output, const Input& input,
                                          const std::array<index_t, 4>& weight_shape,
                                          const conv2d_params& params = {}) {
  using T = detail::conv_scalar_t<GradOut>;
  detail::assert_conv_types<T, Input>();
  const char* fn = "conv2d_backward_weight";
  const auto dy = detail::checked_view<4>(grad_output, fn, "grad_output");
  const auto x = detail::checked_view<4>(input, fn, "input");
  const auto g =
      detail::resolve_backward(dy, x.extents(), "input", weight_shape, "weight_shape", params, fn);
  auto result = detail::new_gradient<T>(weight_shape, fn, "grad_weight");
  detail::backward_weight_run<T>(g, dy, x, result.view(), params, fn);
  return result;
}

/// Writes grad_weight into `grad_weight`, whose extents are the weight's shape.
template <tensor_of_rank<4> GradOut, tensor_of_rank<4> Input, tensor_of_rank<4> GradWeight>
void conv2d_backward_weight(const GradOut& grad_output, const Input& input,
                            const conv2d_params& params, GradWeight&& grad_weight) {
  using T = detail::conv_scalar_t<GradOut>;
  detail::assert_conv_types<T, Input, GradWeight>();
  const char* fn = "conv2d_backward_weight";
  const auto dy = detail::checked_view<4>(grad_output, fn, "grad_output");
  const auto x = detail::checked_view<4>(input, fn, "input");
  auto out = detail::checked_view<4>(std::forward<GradWeight>(grad_weight), fn, "grad_weight");
  static_assert(!std::is_const_v<typename decltype(out)::element_type>,
                "cvk: grad_weight must be a mutable tensor");
  const auto g =
      detail::resolve_backward(dy, x.extents(), "input", out.extents(), "grad_weight", params, fn);
  detail::backward_weight_run<T>(g, dy, x, strided_view<T, 4>(out), params, fn);
}

/// Writes grad_bias[o] = Σ_{n, oy, ox} grad_output[n, o, oy, ox] into `grad_bias` (O values).
template <tensor_of_rank<4> GradOut, tensor_of_rank<1> GradBias>
void conv2d_backward_bias(const GradOut& grad_output, const conv2d_params& params,
                          GradBias&& grad_bias) {
  using T = detail::conv_scalar_t<GradOut>;
  detail::assert_conv_types<T, GradBias>();
  const char* fn = "conv2d_backward_bias";
  detail::check_backward_params(params, fn);
  const auto dy = detail::permute_axes(
      strided_view<const T, 4>(detail::checked_view<4>(grad_output, fn, "grad_output")),
      detail::nchw_axes(params.data_layout));
  const auto out =
      detail::output_view<1>(std::forward<GradBias>(grad_bias), {dy.extent(1)}, fn, "grad_bias");
  detail::conv2d_bias_grad<T>(dy, strided_view<T, 1>(out), params.threads);
}

/// grad_bias (O values, O = grad_output's channels in params.data_layout).
template <tensor_of_rank<4> GradOut>
[[nodiscard]] auto conv2d_backward_bias(const GradOut& grad_output,
                                        const conv2d_params& params = {}) {
  using T = detail::conv_scalar_t<GradOut>;
  const char* fn = "conv2d_backward_bias";
  detail::check_backward_params(params, fn);
  const auto dy = detail::checked_view<4>(grad_output, fn, "grad_output");
  tensor<T, 1> result = detail::new_gradient<T>(
      std::array<index_t, 1>{dy.extent(params.data_layout == layout::nchw ? 1 : 3)}, fn,
      "grad_bias");
  conv2d_backward_bias(dy, params, result);
  return result;
}

CVK_END_NAMESPACE
