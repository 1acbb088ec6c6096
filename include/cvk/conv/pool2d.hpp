// cvk — computer-vision kernels, header-only C++20.
// 2-D pooling with PyTorch 1.13 semantics: max_pool2d (with indices, padding, dilation,
// ceil_mode), avg_pool2d (count_include_pad, divisor_override, ceil_mode), adaptive_avg_pool2d
// (global average pooling at 1×1), each with its backward pass; NCHW or NHWC, float or double.
// SPDX-License-Identifier: MIT
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>

#include "../core/as_view.hpp"
#include "../core/config.hpp"
#include "../core/tensor.hpp"
#include "../detail/checks.hpp"
#include "detail/conv2d_run.hpp"
#include "detail/geometry.hpp"
#include "detail/pool2d_run.hpp"
#include "detail/pool2d_windows.hpp"

CVK_BEGIN_NAMESPACE

// The contract of every pooling entry point.
//
// Shapes (N batch, C channels; every tensor in params.data_layout, any strides):
//   input, grad_input    N×C×H×W (layout::nchw) or N×H×W×C (layout::nhwc), H, W >= 1
//   output, grad_output, indices
//                        N×C×Ho×Wo or N×Ho×Wo×C
//   max_pool2d, avg_pool2d (k = kernel, s = stride (0 → k), p = padding, d = dilation, per axis;
//   torch's pooling_output_shape):
//     Ho = floor((H + 2·p − d·(k − 1) − 1 + (ceil_mode ? s − 1 : 0)) / s) + 1,
//     then, with ceil_mode, Ho − 1 when (Ho − 1)·s >= H + p (the last window must start inside
//     the input or the top padding); likewise Wo.
//   adaptive_avg_pool2d: Ho×Wo = params.output_size; output row oy averages input rows
//     [floor(oy·H/Ho), ceil((oy + 1)·H/Ho)), likewise columns.
//
//   max_pool2d:   y[n, c, oy, ox] = max over iy = oy·s − p + ky·d, ix = ox·s − p + kx·d inside the
//                 image (padding is -inf); a NaN in the window wins (torch propagates NaN); the
//                 first maximum in row-major tap order wins ties. indices[n, c, oy, ox] = iy·W + ix
//                 of the chosen tap, within its (n, c) plane (torch's return_indices).
//   avg_pool2d:   y = Σ window taps inside the image / divisor, where the window
//                 [oy·s − p, oy·s − p + k) is clipped to the padded input [−p, H + p) and
//                 divisor = divisor_override if set, else the clipped window's area when
//                 count_include_pad, else the number of taps inside the image (torch, including
//                 its ceil_mode windows that pass the padded end).
//   backward:     grad_input = the adjoint: max scatters grad_output through indices, averages
//                 spread grad_output / divisor over each window.
//   Every tensor holds the same type, float or double (indices: cvk::index_t); outputs must not
//   overlap inputs.
//
// Forms (T float or double):
// clang-format off
//   max_pool2d(input, params)                                → tensor<T, 4>
//   max_pool2d(input, params, out)
//   max_pool2d_with_indices(input, params)                   → max_pool2d_result<T>{output, indices}
//   max_pool2d_with_indices(input, params, out, indices)
//   max_pool2d_backward(grad_output, indices, input_shape, params)       → grad_input
//   max_pool2d_backward(grad_output, indices, params, grad_input)
//   avg_pool2d(input, params)                                → tensor<T, 4>
//   avg_pool2d(input, params, out)
//   avg_pool2d_backward(grad_output, input_shape, params)    → grad_input
//   avg_pool2d_backward(grad_output, params, grad_input)
//   adaptive_avg_pool2d(input, adaptive_params)              → tensor<T, 4>
//   adaptive_avg_pool2d(input, adaptive_params, out)
//   adaptive_avg_pool2d_backward(grad_output, input_shape, adaptive_params) → grad_input
//   adaptive_avg_pool2d_backward(grad_output, adaptive_params, grad_input)
//   pool2d_output_shape(input_shape, params)                 → output extents (params' layout)
// clang-format on
//   input_shape is in params.data_layout.
//
// Errors (each message names the function, the argument and the shapes):
//   cvk::invalid_argument  kernel < 1; stride < 0; dilation < 1 (avg_pool2d: not 1); padding < 0
//                          or > kernel/2; divisor_override < 0; output_size < 1; threads < 0
//   cvk::shape_error       wrong rank; H or W < 1; an empty output; out, indices, grad_output or
//                          grad_input of the wrong shape
//   cvk::out_of_range      size products that overflow; an index outside [0, H·W) in backward
//
// Complexity: forward N·C·Ho·Wo·KH·KW operations (adaptive: N·C·H·W plus the bin overlaps),
// backward the same plus N·C·H·W to zero grad_input; no scratch beyond the result. Threads split
// (image, output row, channel block) forward and (image, channel block) backward; every value is
// produced by one thread in torch's order, so results are bit-identical for any thread count.

/// The output and argmax indices of max_pool2d_with_indices.
template <class T>
struct max_pool2d_result {
  tensor<T, 4> output;
  tensor<index_t, 4> indices;
};

namespace detail {

template <class X>
using pool_scalar_t = std::remove_const_t<tensor_value_t<const X&>>;

template <class T, class... Tensors>
constexpr void assert_pool_types() {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "cvk: pooling runs on float or double tensors");
  static_assert((std::is_same_v<pool_scalar_t<Tensors>, T> && ...),
                "cvk: pooling needs the same element type (float or double) in every tensor "
                "argument but the indices; convert one of them");
}

template <class Indices>
constexpr void assert_index_type() {
  static_assert(std::is_same_v<pool_scalar_t<Indices>, index_t>,
                "cvk: max_pool2d indices are cvk::index_t (int64, as torch's)");
}

/// The mutable (n, c, h, w)-ordered view of an output argument, checked to have `nchw` extents.
template <class Out>
auto pool_output(Out&& out, const std::array<index_t, 4>& nchw, layout l, const char* fn,
                 const char* argument) {
  auto v = checked_view<4>(std::forward<Out>(out), fn, argument);
  using V = decltype(v);
  static_assert(!std::is_const_v<typename V::element_type>,
                "cvk: a pooling output must be a mutable tensor");
  const auto extents = from_nchw(nchw, l);
  const std::string pattern = std::string(layout_pattern(l)) + " = " + shape_string(extents, 4);
  expect_shape(v, extents, fn, argument, pattern.c_str());
  return permute_axes(strided_view<typename V::element_type, 4>(v), nchw_axes(l));
}

/// The const (n, c, h, w)-ordered view of an input argument.
template <class T, class X>
strided_view<const T, 4> pool_input(const X& x, layout l, const char* fn, const char* argument) {
  return permute_axes(strided_view<const T, 4>(checked_view<4>(x, fn, argument)), nchw_axes(l));
}

/// A new tensor of `extents` (whose size products the geometry has checked); a failed or too
/// large allocation is out_of_range naming `fn` and `argument`.
template <class T>
tensor<T, 4> pool_tensor(const std::array<index_t, 4>& extents, const char* fn,
                         const char* argument) {
  return checked_allocation<T>(
      extents[0] * extents[1] * extents[2] * extents[3], fn, argument,
      [&] { return shape_string(extents, 4); }, [&] { return tensor<T, 4>(extents); });
}

/// The output extents of geometry `g` in layout `l`.
inline std::array<index_t, 4> pool_output_extents(const pool2d_geometry& g, layout l) {
  return from_nchw({g.batch, g.channels, g.out_height, g.out_width}, l);
}

/// The geometry of a pooling whose input is `input` (its own extents, in l).
template <class X>
pool2d_geometry pool_geometry(const X& input, const pool2d_params& p, bool average,
                              const char* fn) {
  const auto v = checked_view<4>(input, fn, "input");
  return resolve_pool2d(nchw_extents(v.extents(), p.data_layout), p, average, fn,
                        pool_input_text(v.shape_string(), p.data_layout));
}

/// Throws shape_error unless `x` (argument `argument`) has the output extents of `g` in `l`.
template <class X>
void expect_pool_output_shape(const X& x, const pool2d_geometry& g, layout l, const char* fn,
                              const char* argument) {
  const auto extents = pool_output_extents(g, l);
  const std::string pattern = std::string(layout_pattern(l)) + " = " + shape_string(extents, 4);
  expect_shape(checked_view<4>(x, fn, argument), extents, fn, argument, pattern.c_str());
}

/// The geometry of a backward pass from the input extents (in p.data_layout), with grad_output
/// checked against the output extents.
template <class Grad>
pool2d_geometry pool_backward_geometry(const Grad& grad_output,
                                       const std::array<index_t, 4>& input_shape,
                                       const pool2d_params& p, bool average, const char* fn) {
  auto g = resolve_pool2d(nchw_extents(input_shape, p.data_layout), p, average, fn,
                          pool_input_text(shape_string(input_shape, 4), p.data_layout));
  expect_pool_output_shape(grad_output, g, p.data_layout, fn, "grad_output");
  return g;
}

template <class T, bool Indices, class Input, class Out, class Ind>
void run_max_pool2d(const Input& input, const pool2d_params& p, Out&& out, Ind* indices,
                    const char* fn) {
  const auto g = pool_geometry(input, p, false, fn);
  const std::array<index_t, 4> out_nchw{g.batch, g.channels, g.out_height, g.out_width};
  const auto y = pool_output(std::forward<Out>(out), out_nchw, p.data_layout, fn, "out");
  strided_view<index_t, 4> where;
  if constexpr (Indices) where = pool_output(*indices, out_nchw, p.data_layout, fn, "indices");
  const auto x = pool_input<T>(input, p.data_layout, fn, "input");
  if constexpr (Indices) {
    if (pool_indices_fit_int32(g)) {
      pool_forward<T, max_reduction<T, true, std::int32_t>>(g, x, y, where, p.threads);
      return;
    }
  }
  pool_forward<T, max_reduction<T, Indices>>(g, x, y, where, p.threads);
}

/// The geometry of an average pooling (avg_pool2d or adaptive_avg_pool2d) of an input of
/// `extents` (in the params' layout) described by `text`.
inline pool2d_geometry average_geometry(const std::array<index_t, 4>& extents,
                                        const std::string& text, const pool2d_params& p,
                                        const char* fn) {
  return resolve_pool2d(nchw_extents(extents, p.data_layout), p, true, fn,
                        pool_input_text(text, p.data_layout));
}
inline pool2d_geometry average_geometry(const std::array<index_t, 4>& extents,
                                        const std::string& text, const adaptive_pool2d_params& p,
                                        const char* fn) {
  return resolve_adaptive_pool2d(nchw_extents(extents, p.data_layout), p, fn,
                                 pool_input_text(text, p.data_layout));
}

/// avg_pool2d / adaptive_avg_pool2d forward into `out` (adaptive: blocked NCHW sums).
template <class Params, class Input, class Out>
void average_into(const Input& input, const Params& p, Out&& out, const char* fn) {
  using T = pool_scalar_t<Input>;
  assert_pool_types<T, Out>();
  constexpr bool blocked = std::is_same_v<Params, adaptive_pool2d_params>;
  const auto x = checked_view<4>(input, fn, "input");
  const auto g = average_geometry(x.extents(), x.shape_string(), p, fn);
  const auto y =
      pool_output(std::forward<Out>(out), {g.batch, g.channels, g.out_height, g.out_width},
                  p.data_layout, fn, "out");
  pool_forward<T, sum_reduction<T, blocked>>(g, pool_input<T>(input, p.data_layout, fn, "input"), y,
                                             {}, p.threads);
}

template <class Params, class Input>
auto new_average(const Input& input, const Params& p, const char* fn) {
  using T = pool_scalar_t<Input>;
  assert_pool_types<T>();
  const auto x = checked_view<4>(input, fn, "input");
  const auto g = average_geometry(x.extents(), x.shape_string(), p, fn);
  auto y = pool_tensor<T>(pool_output_extents(g, p.data_layout), fn, "the output");
  average_into(input, p, y, fn);
  return y;
}

/// The gradient of an average pooling into `grad_input` (its extents give the input shape).
template <class Params, class GradOutput, class GradInput>
void average_backward_into(const GradOutput& grad_output, const Params& p, GradInput&& grad_input,
                           const char* fn) {
  using T = pool_scalar_t<GradOutput>;
  assert_pool_types<T, GradInput>();
  const auto gi = checked_view<4>(grad_input, fn, "grad_input");
  const auto g = average_geometry(gi.extents(), gi.shape_string(), p, fn);
  expect_pool_output_shape(grad_output, g, p.data_layout, fn, "grad_output");
  average_pool_backward<T>(
      g, pool_input<T>(grad_output, p.data_layout, fn, "grad_output"),
      pool_output(std::forward<GradInput>(grad_input), nchw_extents(gi.extents(), p.data_layout),
                  p.data_layout, fn, "grad_input"),
      p.threads);
}

template <class Params, class GradOutput>
auto new_average_backward(const GradOutput& grad_output, const std::array<index_t, 4>& input_shape,
                          const Params& p, const char* fn) {
  using T = pool_scalar_t<GradOutput>;
  assert_pool_types<T>();
  const auto g = average_geometry(input_shape, shape_string(input_shape, 4), p, fn);
  expect_pool_output_shape(grad_output, g, p.data_layout, fn, "grad_output");
  auto grad_input = pool_tensor<T>(input_shape, fn, "grad_input");
  average_backward_into(grad_output, p, grad_input, fn);
  return grad_input;
}

}  // namespace detail

/// Output extents (in params.data_layout) of max_pool2d / avg_pool2d of an input of
/// `input_shape` (in params.data_layout). Same errors as max_pool2d.
[[nodiscard]] inline std::array<index_t, 4> pool2d_output_shape(
    const std::array<index_t, 4>& input_shape, const pool2d_params& params) {
  const auto g = detail::resolve_pool2d(
      detail::nchw_extents(input_shape, params.data_layout), params, false, "pool2d_output_shape",
      detail::pool_input_text(detail::shape_string(input_shape, 4), params.data_layout));
  return detail::from_nchw({g.batch, g.channels, g.out_height, g.out_width}, params.data_layout);
}

/// Writes max_pool2d(input) into `out`.
template <tensor_of_rank<4> Input, tensor_of_rank<4> Out>
void max_pool2d(const Input& input, const pool2d_params& params, Out&& out) {
  using T = detail::pool_scalar_t<Input>;
  detail::assert_pool_types<T, Out>();
  detail::run_max_pool2d<T, false>(input, params, std::forward<Out>(out),
                                   static_cast<strided_view<index_t, 4>*>(nullptr), "max_pool2d");
}

/// y = max_pool2d(input): the largest value of each window (NaN wins).
template <tensor_of_rank<4> Input>
[[nodiscard]] auto max_pool2d(const Input& input, const pool2d_params& params) {
  using T = detail::pool_scalar_t<Input>;
  detail::assert_pool_types<T>();
  const auto g = detail::pool_geometry(input, params, false, "max_pool2d");
  auto y = detail::pool_tensor<T>(detail::pool_output_extents(g, params.data_layout), "max_pool2d",
                                  "the output");
  max_pool2d(input, params, y);
  return y;
}

/// Writes max_pool2d(input) into `out` and the argmax (iy·W + ix within each plane) into
/// `indices`.
template <tensor_of_rank<4> Input, tensor_of_rank<4> Out, tensor_of_rank<4> Indices>
void max_pool2d_with_indices(const Input& input, const pool2d_params& params, Out&& out,
                             Indices&& indices) {
  using T = detail::pool_scalar_t<Input>;
  detail::assert_pool_types<T, Out>();
  detail::assert_index_type<Indices>();
  detail::run_max_pool2d<T, true>(input, params, std::forward<Out>(out), &indices,
                                  "max_pool2d_with_indices");
}

/// {max_pool2d(input), argmax indices} (torch's return_indices=True).
template <tensor_of_rank<4> Input>
[[nodiscard]] auto max_pool2d_with_indices(const Input& input, const pool2d_params& params) {
  using T = detail::pool_scalar_t<Input>;
  detail::assert_pool_types<T>();
  const char* fn = "max_pool2d_with_indices";
  const auto g = detail::pool_geometry(input, params, false, fn);
  max_pool2d_result<T> r;
  r.output =
      detail::pool_tensor<T>(detail::pool_output_extents(g, params.data_layout), fn, "the output");
  r.indices = detail::pool_tensor<index_t>(r.output.extents(), fn, "the indices");
  detail::run_max_pool2d<T, true>(input, params, r.output, &r.indices, fn);
  return r;
}

/// Writes the gradient of max_pool2d into `grad_input` (its extents give the input shape):
/// grad_output scattered through `indices`, summed where windows share their argmax.
template <tensor_of_rank<4> GradOutput, tensor_of_rank<4> Indices, tensor_of_rank<4> GradInput>
void max_pool2d_backward(const GradOutput& grad_output, const Indices& indices,
                         const pool2d_params& params, GradInput&& grad_input) {
  using T = detail::pool_scalar_t<GradOutput>;
  detail::assert_pool_types<T, GradInput>();
  detail::assert_index_type<Indices>();
  const char* fn = "max_pool2d_backward";
  const auto gi = detail::checked_view<4>(grad_input, fn, "grad_input");
  const auto g = detail::pool_backward_geometry(grad_output, gi.extents(), params, false, fn);
  detail::expect_pool_output_shape(indices, g, params.data_layout, fn, "indices");
  const auto ind = detail::pool_input<index_t>(indices, params.data_layout, fn, "indices");
  detail::max_pool_backward<T>(
      g, detail::pool_input<T>(grad_output, params.data_layout, fn, "grad_output"), ind,
      detail::pool_output(std::forward<GradInput>(grad_input),
                          detail::nchw_extents(gi.extents(), params.data_layout),
                          params.data_layout, fn, "grad_input"),
      fn, params.threads);
}

/// The gradient of max_pool2d for an input of `input_shape` (in params.data_layout).
template <tensor_of_rank<4> GradOutput, tensor_of_rank<4> Indices>
[[nodiscard]] auto max_pool2d_backward(const GradOutput& grad_output, const Indices& indices,
                                       const std::array<index_t, 4>& input_shape,
                                       const pool2d_params& params) {
  using T = detail::pool_scalar_t<GradOutput>;
  detail::assert_pool_types<T>();
  const char* fn = "max_pool2d_backward";
  (void)detail::pool_backward_geometry(grad_output, input_shape, params, false, fn);
  auto grad_input = detail::pool_tensor<T>(input_shape, fn, "grad_input");
  max_pool2d_backward(grad_output, indices, params, grad_input);
  return grad_input;
}

/// Writes avg_pool2d(input) into `out`.
template <tensor_of_rank<4> Input, tensor_of_rank<4> Out>
void avg_pool2d(const Input& input, const pool2d_params& params, Out&& out) {
  detail::average_into(input, params, std::forward<Out>(out), "avg_pool2d");
}

/// y = avg_pool2d(input): each window's sum over its divisor (see the contract above).
template <tensor_of_rank<4> Input>
[[nodiscard]] auto avg_pool2d(const Input& input, const pool2d_params& params) {
  return detail::new_average(input, params, "avg_pool2d");
}

/// Writes the gradient of avg_pool2d into `grad_input` (its extents give the input shape).
template <tensor_of_rank<4> GradOutput, tensor_of_rank<4> GradInput>
void avg_pool2d_backward(const GradOutput& grad_output, const pool2d_params& params,
                         GradInput&& grad_input) {
  detail::average_backward_into(grad_output, params, std::forward<GradInput>(grad_input),
                                "avg_pool2d_backward");
}

/// The gradient of avg_pool2d for an input of `input_shape` (in params.data_layout).
template <tensor_of_rank<4> GradOutput>
[[nodiscard]] auto avg_pool2d_backward(const GradOutput& grad_output,
                                       const std::array<index_t, 4>& input_shape,
                                       const pool2d_params& params) {
  return detail::new_average_backward(grad_output, input_shape, params, "avg_pool2d_backward");
}

/// Writes adaptive_avg_pool2d(input) into `out` (params.output_size = its Ho×Wo).
template <tensor_of_rank<4> Input, tensor_of_rank<4> Out>
void adaptive_avg_pool2d(const Input& input, const adaptive_pool2d_params& params, Out&& out) {
  detail::average_into(input, params, std::forward<Out>(out), "adaptive_avg_pool2d");
}

/// y = adaptive_avg_pool2d(input): params.output_size bins, torch's bin edges.
template <tensor_of_rank<4> Input>
[[nodiscard]] auto adaptive_avg_pool2d(const Input& input, const adaptive_pool2d_params& params) {
  return detail::new_average(input, params, "adaptive_avg_pool2d");
}

/// Writes the gradient of adaptive_avg_pool2d into `grad_input` (its extents give the input
/// shape).
template <tensor_of_rank<4> GradOutput, tensor_of_rank<4> GradInput>
void adaptive_avg_pool2d_backward(const GradOutput& grad_output,
                                  const adaptive_pool2d_params& params, GradInput&& grad_input) {
  detail::average_backward_into(grad_output, params, std::forward<GradInput>(grad_input),
                                "adaptive_avg_pool2d_backward");
}

/// The gradient of adaptive_avg_pool2d for an input of `input_shape` (in params.data_layout).
template <tensor_of_rank<4> GradOutput>
[[nodiscard]] auto adaptive_avg_pool2d_backward(const GradOutput& grad_output,
                                                const std::array<index_t, 4>& input_shape,
                                                const adaptive_pool2d_params& params) {
  return detail::new_average_backward(grad_output, input_shape, params,
                                      "adaptive_avg_pool2d_backward");
}

CVK_END_NAMESPACE
