// cvk — computer-vision kernels, header-only C++20.
// ragged_conv2d: a grouped convolution whose groups have unequal input and output channel counts
// (FLGC's compiled layers), with an optional input-channel gather and output-channel scatter;
// forward (fused epilogue, reusable plan), input and weight gradients, and the conversions
// between its compact weight and the equivalent dense (block-diagonal) weight.
// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "../core/as_view.hpp"
#include "../core/config.hpp"
#include "../core/tensor.hpp"
#include "../detail/checks.hpp"
#include "conv2d.hpp"
#include "conv2d_backward.hpp"
#include "detail/conv2d_run.hpp"
#include "detail/geometry.hpp"
#include "detail/ragged_conv2d.hpp"
#include "detail/ragged_run.hpp"
#include "ragged_groups.hpp"

CVK_BEGIN_NAMESPACE

// The contract of every ragged_conv2d entry point.
//
// G groups; group g reads the conv's input channels [a_g, a_{g+1}) and writes its output
// channels [b_g, b_{g+1}), a = groups.in_offsets, b = groups.out_offsets (0 = a_0 ≤ … ≤ a_G = I,
// 0 = b_0 ≤ … ≤ b_G = O; a group may have no input channels — its outputs are bias only — or no
// output channels — its inputs are unused). With P = groups.in_permutation and
// Q = groups.out_permutation (empty = identity; otherwise permutations of 0 … I−1, 0 … O−1):
//
//   y[n, Q[b_g + o], oy, ox] = act( bias[Q[b_g + o]] + residual[n, Q[b_g + o], oy, ox]
//       + Σ_{i < a_{g+1} − a_g, ky, kx} w_g[o, i, ky, kx] · x[n, P[a_g + i], oy·sh − pt + ky·dh,
//                                                                      ox·sw − pl + kx·dw] )
//
// i.e. conv2d (stride, padding, auto_pad, dilation, layouts, epilogue: conv2d_params) where each
// group has its own channel counts. It equals the dense conv2d (groups = 1) with the weight
// ragged_weight_to_dense(weight, groups, kernel) — block-diagonal up to P and Q — and, when all
// groups have one shape and P, Q are empty, conv2d with params.groups = G.
//
// Shapes:
//   input   N×I×H×W (layout::nchw) or N×H×W×I (layout::nhwc), any strides
//   weight  rank 1: the groups' blocks one after the other, in group order; block g holds
//           (b_{g+1} − b_g)·(a_{g+1} − a_g)·KH·KW values in the order O_g×I_g×KH×KW
//           (weight_layout::oihw) or KH×KW×I_g×O_g (weight_layout::hwio);
//           ragged_weight_size(groups, kernel) values in all
//   kernel  {KH, KW}, each >= 1
//   bias    O values indexed by the output tensor's channel (after Q), or cvk::no_bias
//   output  N×O×Ho×Wo or N×Ho×Wo×O, Ho and Wo as conv2d's
//   params.groups must be 1 (the groups are `groups`); every other conv2d_params field as conv2d.
//
// Forms:
//   ragged_conv2d(input, groups, weight, kernel[, params])               → cvk::tensor<T, 4>
//   ragged_conv2d(input, groups, weight, kernel, bias, params)           → cvk::tensor<T, 4>
//   ragged_conv2d(input, groups, weight, kernel, bias, params, out)      → writes out
//   ragged_conv2d_plan<T> plan(groups, weight, kernel[, bias], params); plan(input) → tensor;
//   plan(input, out); plan(input, residual, out); plan.with_residual(input, residual) → tensor
//   ragged_conv2d_backward_input(grad_output, groups, weight, kernel, input_shape[, params])
//                                                                       → cvk::tensor<T, 4>
//   ragged_conv2d_backward_input(grad_output, groups, weight, kernel, params, grad_input)
//   ragged_conv2d_backward_weight(grad_output, input, groups, kernel[, params])
//                                                         → cvk::tensor<T, 1> (weight's order)
//   ragged_conv2d_backward_weight(grad_output, input, groups, kernel, params, grad_weight)
//   the bias gradient is conv2d_backward_bias(grad_output, params) (bias is in y's order)
//   ragged_weight_size(groups, kernel)                      → the weight's length (checks groups)
//   ragged_weight_from_dense(dense, groups[, params])       → the blocks of a dense O×I×KH×KW
//                                                             weight (params.weights order)
//   ragged_weight_to_dense(weight, groups, kernel[, params]) → the dense weight, zero off-block
//
// Errors (naming the function, the argument and the shapes): conv2d's for the params and the
// spatial extents; cvk::invalid_argument for offsets that do not start at 0 or decrease, offset
// lists of different lengths or fewer than 2 values, permutations of the wrong length, with a
// value out of range or twice, a kernel below 1×1, params.groups != 1; cvk::shape_error for an
// input whose channel count is not I, a weight of the wrong length, a bias not of length O, a
// residual, output or gradient of the wrong shape; cvk::out_of_range for sizes that overflow.
//
// Complexity: N·Ho·Wo·KH·KW·Σ_g (a_{g+1} − a_g)(b_{g+1} − b_g) multiply-adds (forward and each
// gradient). The groups run as segments — maximal runs of consecutive groups of one shape —
// each a uniform grouped conv2d on a channel slice through conv2d's own paths (depthwise, small
// groups, large groups, pointwise), one segment after the other, each threaded, writing raw sums
// into its slice of the output (the blocked paths write an NHWC slice's rows in place); then one
// pass adds bias and residual and applies the activation, in conv2d's order. Memory per call:
// at most one NHWC copy of the largest segment's input slice (none when the blocked paths read an
// NHWC slice in place; conv2d's layout pass otherwise, or the gather when P is given — never
// both), and with Q, or a residual that is the output itself, a buffer of the whole output (the
// scatter runs the epilogue). The plan keeps
// each segment's packed weight and the bias; nothing else between calls. Results are bit-identical
// for any thread count.

/// Checks `groups` and `kernel`; the ragged weight's length Σ_g O_g·I_g·KH·KW.
[[nodiscard]] inline index_t ragged_weight_size(const ragged_groups& groups,
                                                const std::array<index_t, 2>& kernel) {
  return detail::resolve_ragged(groups, kernel, "ragged_weight_size").weight_size;
}

/// A ragged conv's segments packed once (each through conv2d_plan), with the bias and the
/// permutations; runs the conv on any number of inputs. Immutable after construction: one plan
/// may run on several threads at once. Holds each segment's packed weight (memory_bytes()).
template <class T>
class ragged_conv2d_plan {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "cvk: ragged_conv2d_plan<T> needs T = float or double");

 public:
  template <tensor_of_rank<1> Weight>
  ragged_conv2d_plan(const ragged_groups& groups, const Weight& weight,
                     const std::array<index_t, 2>& kernel, const conv2d_params& params = {})
      : ragged_conv2d_plan(detail::caller{"ragged_conv2d_plan"}, groups, weight, kernel, no_bias,
                           params) {}

  template <tensor_of_rank<1> Weight, conv_bias Bias>
  ragged_conv2d_plan(const ragged_groups& groups, const Weight& weight,
                     const std::array<index_t, 2>& kernel, const Bias& bias,
                     const conv2d_params& params)
      : ragged_conv2d_plan(detail::caller{"ragged_conv2d_plan"}, groups, weight, kernel, bias,
                           params) {}

  [[nodiscard]] const ragged_groups& groups() const noexcept { return groups_; }
  [[nodiscard]] const conv2d_params& params() const noexcept { return params_; }
  [[nodiscard]] std::array<index_t, 2> kernel() const noexcept {
    return {structure_.kernel_h, structure_.kernel_w};
  }
  /// Segments: maximal runs of consecutive groups of one shape (groups without outputs left
  /// out); each runs as one uniform grouped conv2d.
  [[nodiscard]] std::size_t segment_count() const noexcept { return segments_.size(); }
  /// Bytes of packed weights and bias the plan holds.
  [[nodiscard]] std::size_t memory_bytes() const noexcept {
    std::size_t bytes = bias_.size() * sizeof(T);
    for (const auto& s : segments_) {
      if (s.plan) bytes += s.plan->memory_bytes();
    }
    return bytes;
  }

  /// Output extents for an input of `input_shape` (both in params().data_layout).
  [[nodiscard]] std::array<index_t, 4> output_shape(
      const std::array<index_t, 4>& input_shape) const {
    const auto g = geometry(input_shape, detail::shape_string(input_shape, 4));
    return detail::from_nchw({g.batch, g.out_channels, g.out_height, g.out_width},
                             params_.data_layout);
  }

  template <tensor_of_rank<4> Input>
  [[nodiscard]] tensor<T, 4> operator()(const Input& input) const {
    return run_new(input, static_cast<const std::nullptr_t*>(nullptr));
  }
  template <tensor_of_rank<4> Input, tensor_of_rank<4> Residual>
  [[nodiscard]] tensor<T, 4> with_residual(const Input& input, const Residual& residual) const {
    return run_new(input, &residual);
  }
  template <tensor_of_rank<4> Input, tensor_of_rank<4> Out>
  void operator()(const Input& input, Out&& out) const {
    run(input, static_cast<const std::nullptr_t*>(nullptr), std::forward<Out>(out));
  }
  template <tensor_of_rank<4> Input, tensor_of_rank<4> Residual, tensor_of_rank<4> Out>
  void operator()(const Input& input, const Residual& residual, Out&& out) const {
    run(input, &residual, std::forward<Out>(out));
  }

  /// Internal (the one-shot ragged_conv2d): errors name `who.function`.
  template <tensor_of_rank<1> Weight, conv_bias Bias>
  ragged_conv2d_plan(detail::caller who, const ragged_groups& groups, const Weight& weight,
                     const std::array<index_t, 2>& kernel, const Bias& bias,
                     const conv2d_params& params)
      : groups_(groups), params_(params), function_(who.function) {
    detail::assert_conv_types<T, Weight, Bias>();
    structure_ = detail::resolve_ragged(groups_, kernel, function_);
    detail::check_conv2d_params(params_, function_);
    if (params_.groups != 1) {
      CVK_THROW(invalid_argument, std::string(function_) +
                                      ": params.groups must be 1 (the groups are given by "
                                      "`groups`), got " +
                                      std::to_string(params_.groups));
    }
    const auto w = detail::checked_view<1>(weight, function_, "weight");
    detail::expect_shape(
        w, {structure_.weight_size}, function_, "weight",
        (std::to_string(structure_.weight_size) + " values (Σ over the groups of O_g·I_g·KH·KW)")
            .c_str());
    bias_.assign(static_cast<std::size_t>(structure_.out_channels), T(0));
    if constexpr (!std::is_same_v<Bias, no_bias_t>) {
      const auto b = detail::checked_view<1>(bias, function_, "bias");
      if (b.extent(0) != structure_.out_channels) {
        CVK_THROW(shape_error, std::string(function_) + ": bias must have " +
                                   std::to_string(structure_.out_channels) +
                                   " values (the output channels), got " + b.shape_string());
      }
      for (index_t o = 0; o < structure_.out_channels; ++o) {
        bias_[static_cast<std::size_t>(o)] = b(o);
      }
    }
    // The segments write raw sums (no bias, no activation); one epilogue pass over the output
    // (or the scatter of an output permutation) adds bias and residual and applies the
    // activation, in conv2d's order: act(sum + bias + residual).
    for (const auto& seg : structure_.segments) {
      segment s{seg, std::nullopt};
      if (seg.in_per_group > 0) {
        const auto sw = detail::segment_weight<T>(structure_, seg, w, params_.weights);
        s.plan.emplace(detail::caller{function_}, sw, no_bias,
                       detail::segment_params(params_, seg, false));
      }
      segments_.push_back(std::move(s));
    }
  }

 private:
  struct segment {
    detail::ragged_segment seg;
    std::optional<conv2d_plan<T>> plan;  // none for groups without input channels
  };

  [[nodiscard]] detail::conv2d_geometry geometry(const std::array<index_t, 4>& input_extents,
                                                 const std::string& input_text) const {
    return detail::resolve_ragged_geometry(
        structure_, detail::nchw_extents(input_extents, params_.data_layout), params_, function_,
        detail::ragged_shapes("input", input_text, params_,
                              "weight of " + std::to_string(structure_.weight_size) + " values",
                              structure_));
  }

  [[nodiscard]] auto geometry_of() const {
    return [this](const std::array<index_t, 4>& e, const std::string& text) {
      return geometry(e, text);
    };
  }

  template <class Input, class Residual>
  tensor<T, 4> run_new(const Input& input, const Residual* residual) const {
    const auto x = detail::checked_view<4>(input, function_, "input");
    tensor<T, 4> result = detail::plan_new_output<T>(x, params_, function_, geometry_of());
    run(x, residual, result);
    return result;
  }

  template <class Input, class Residual, class Out>
  void run(const Input& input, const Residual* residual, Out&& out) const {
    const auto v = detail::plan_call<T>(input, residual, std::forward<Out>(out), params_, function_,
                                        geometry_of());
    const detail::conv2d_geometry& g = v.g;
    const auto& x = v.x;
    const auto& r = v.r;
    const auto& y = v.y;
    if (g.batch * g.out_height * g.out_width == 0) return;
    const std::string shapes =
        detail::shape_string(detail::from_nchw(x.extents(), params_.data_layout), 4);
    const auto& in_perm = groups_.in_permutation;
    const bool gather = !in_perm.empty();
    const auto gathered = detail::segment_buffer<T>(structure_, g, true, gather, function_,
                                                    "the gathered input", shapes);
    const auto segment_input = [&](const detail::ragged_segment& seg) {
      const index_t c = seg.groups * seg.in_per_group;
      if (!gather) return detail::channel_slice(x, seg.in_begin, c);
      detail::gather_channels<T>(x, in_perm, seg.in_begin, c, gathered.get(), params_.threads);
      return strided_view<const T, 4>(
          detail::nhwc_buffer_view<T>(gathered.get(), {g.batch, c, g.in_height, g.in_width}));
    };
    const detail::epilogue<T> act = detail::make_epilogue<T>(params_);
    // In place: each segment writes its raw sums into its channel slice of y (the blocked paths
    // write the slice's rows directly), then one epilogue pass. A residual that is y itself
    // would be overwritten first: that case takes the buffer below, as an output permutation.
    if (groups_.out_permutation.empty() && (r.data() == nullptr || r.data() != y.data())) {
      for (const auto& s : segments_) {
        const auto ys =
            detail::channel_slice(y, s.seg.out_begin, s.seg.groups * s.seg.out_per_group);
        if (!s.plan) {  // no input channels: the sums are 0
          for_each_pixel(
              ys, [&](index_t n, index_t o, index_t oy, index_t ox) { ys(n, o, oy, ox) = T(0); });
        } else {
          (*s.plan)(segment_input(s.seg), ys);
        }
      }
      detail::ragged_epilogue<T>(y, r, bias_.data(), act, params_.threads);
      return;
    }
    // Output permutation (or a residual that is y): the conv-order result in an NHWC buffer, then
    // the epilogue scatters (an empty permutation is the identity).
    const index_t o_total = g.out_channels;
    auto buffer = detail::ragged_buffer<T>(g.batch * g.out_height * g.out_width * o_total,
                                           function_, "the output buffer", shapes);
    const auto b =
        detail::nhwc_buffer_view<T>(buffer.get(), {g.batch, o_total, g.out_height, g.out_width});
    for (const auto& s : segments_) {
      const index_t c = s.seg.groups * s.seg.out_per_group;
      const auto bs = detail::channel_slice(b, s.seg.out_begin, c);
      if (!s.plan) {
        for_each_pixel(
            bs, [&](index_t n, index_t o, index_t oy, index_t ox) { bs(n, o, oy, ox) = T(0); });
      } else {
        (*s.plan)(segment_input(s.seg), bs);
      }
    }
    const auto& q = groups_.out_permutation;
    parallel_for(
        0, g.batch * g.out_height, 8,
        [&](index_t lo, index_t hi) {
          for (index_t row = lo; row < hi; ++row) {
            const index_t n = row / g.out_height, oy = row % g.out_height;
            T* y_row = y.data() + n * y.stride(0) + oy * y.stride(2);
            const T* r_row =
                r.data() == nullptr ? nullptr : r.data() + n * r.stride(0) + oy * r.stride(2);
            for (index_t ox = 0; ox < g.out_width; ++ox) {
              const T* src = buffer.get() + ((n * g.out_height + oy) * g.out_width + ox) * o_total;
              T* yx = y_row + ox * y.stride(3);
              if (r_row == nullptr) {
                for (index_t j = 0; j < o_total; ++j) {
                  const index_t c = detail::permuted(q, j);
                  yx[c * y.stride(1)] = act(src[j] + bias_[static_cast<std::size_t>(c)]);
                }
              } else {
                const T* rx = r_row + ox * r.stride(3);
                for (index_t j = 0; j < o_total; ++j) {
                  const index_t c = detail::permuted(q, j);
                  yx[c * y.stride(1)] =
                      act(src[j] + bias_[static_cast<std::size_t>(c)] + rx[c * r.stride(1)]);
                }
              }
            }
          }
        },
        params_.threads);
  }

  template <class View, class F>
  static void for_each_pixel(const View& v, F&& f) {
    for (index_t n = 0; n < v.extent(0); ++n) {
      for (index_t o = 0; o < v.extent(1); ++o) {
        for (index_t oy = 0; oy < v.extent(2); ++oy) {
          for (index_t ox = 0; ox < v.extent(3); ++ox) f(n, o, oy, ox);
        }
      }
    }
  }

  ragged_groups groups_;
  conv2d_params params_;
  const char* function_ = "ragged_conv2d_plan";
  detail::ragged_structure structure_;
  std::vector<segment> segments_;
  std::vector<T> bias_;
};

/// y = ragged_conv2d(input) with `groups`, the flat `weight` and `kernel` = {KH, KW}.
template <tensor_of_rank<4> Input, tensor_of_rank<1> Weight>
[[nodiscard]] auto ragged_conv2d(const Input& input, const ragged_groups& groups,
                                 const Weight& weight, const std::array<index_t, 2>& kernel,
                                 const conv2d_params& params = {}) {
  using T = detail::conv_scalar_t<Input>;
  detail::assert_conv_types<T, Weight>();
  return ragged_conv2d_plan<T>(detail::caller{"ragged_conv2d"}, groups, weight, kernel, no_bias,
                               params)(input);
}

/// y = act(ragged_conv2d(input) + bias).
template <tensor_of_rank<4> Input, tensor_of_rank<1> Weight, conv_bias Bias>
[[nodiscard]] auto ragged_conv2d(const Input& input, const ragged_groups& groups,
                                 const Weight& weight, const std::array<index_t, 2>& kernel,
                                 const Bias& bias, const conv2d_params& params) {
  using T = detail::conv_scalar_t<Input>;
  detail::assert_conv_types<T, Weight, Bias>();
  return ragged_conv2d_plan<T>(detail::caller{"ragged_conv2d"}, groups, weight, kernel, bias,
                               params)(input);
}

/// Writes act(ragged_conv2d(input) + bias) into `out`.
template <tensor_of_rank<4> Input, tensor_of_rank<1> Weight, conv_bias Bias, tensor_of_rank<4> Out>
void ragged_conv2d(const Input& input, const ragged_groups& groups, const Weight& weight,
                   const std::array<index_t, 2>& kernel, const Bias& bias,
                   const conv2d_params& params, Out&& out) {
  using T = detail::conv_scalar_t<Input>;
  detail::assert_conv_types<T, Weight, Bias, Out>();
  ragged_conv2d_plan<T>(detail::caller{"ragged_conv2d"}, groups, weight, kernel, bias, params)(
      input, std::forward<Out>(out));
}

/// Writes grad_input (extents: the conv's input shape, in params.data_layout) of the ragged conv
/// whose output gradient is `grad_output`.
template <tensor_of_rank<4> GradOut, tensor_of_rank<1> Weight, tensor_of_rank<4> GradInput>
void ragged_conv2d_backward_input(const GradOut& grad_output, const ragged_groups& groups,
                                  const Weight& weight, const std::array<index_t, 2>& kernel,
                                  const conv2d_params& params, GradInput&& grad_input) {
  using T = detail::conv_scalar_t<GradOut>;
  detail::assert_conv_types<T, Weight, GradInput>();
  const char* fn = "ragged_conv2d_backward_input";
  const auto s = detail::resolve_ragged(groups, kernel, fn);
  const auto w = detail::checked_view<1>(weight, fn, "weight");
  detail::expect_shape(w, {s.weight_size}, fn, "weight");
  auto gv = detail::checked_view<4>(std::forward<GradInput>(grad_input), fn, "grad_input");
  static_assert(!std::is_const_v<typename decltype(gv)::element_type>,
                "cvk: grad_input must be a mutable tensor");
  const auto axes = detail::nchw_axes(params.data_layout);
  const auto dy = detail::permute_axes(
      strided_view<const T, 4>(detail::checked_view<4>(grad_output, fn, "grad_output")), axes);
  const auto gx = detail::permute_axes(strided_view<T, 4>(gv), axes);
  const auto g = detail::resolve_ragged_backward<T>(s, dy, gx.extents(), gv.shape_string(),
                                                    "grad_input", params, fn);
  detail::ragged_backward_input_run<T>(s, groups, w, dy, gx, params, g, fn);
}

/// grad_input of extents `input_shape` (params.data_layout).
template <tensor_of_rank<4> GradOut, tensor_of_rank<1> Weight>
[[nodiscard]] auto ragged_conv2d_backward_input(const GradOut& grad_output,
                                                const ragged_groups& groups, const Weight& weight,
                                                const std::array<index_t, 2>& kernel,
                                                const std::array<index_t, 4>& input_shape,
                                                const conv2d_params& params = {}) {
  using T = detail::conv_scalar_t<GradOut>;
  detail::assert_conv_types<T, Weight>();
  const char* fn = "ragged_conv2d_backward_input";
  for (const index_t e : input_shape) {
    if (e < 0) {
      CVK_THROW(shape_error, std::string(fn) + ": input_shape must have extents >= 0, got " +
                                 detail::shape_string(input_shape, 4));
    }
  }
  auto result = detail::new_gradient<T>(input_shape, fn, "grad_input");
  ragged_conv2d_backward_input(grad_output, groups, weight, kernel, params, result);
  return result;
}

/// Writes grad_weight (the flat weight's length and order) of the ragged conv of `input` whose
/// output gradient is `grad_output`.
template <tensor_of_rank<4> GradOut, tensor_of_rank<4> Input, tensor_of_rank<1> GradWeight>
void ragged_conv2d_backward_weight(const GradOut& grad_output, const Input& input,
                                   const ragged_groups& groups,
                                   const std::array<index_t, 2>& kernel,
                                   const conv2d_params& params, GradWeight&& grad_weight) {
  using T = detail::conv_scalar_t<GradOut>;
  detail::assert_conv_types<T, Input, GradWeight>();
  const char* fn = "ragged_conv2d_backward_weight";
  const auto s = detail::resolve_ragged(groups, kernel, fn);
  const auto gw = detail::output_view<1>(std::forward<GradWeight>(grad_weight), {s.weight_size}, fn,
                                         "grad_weight");
  const auto axes = detail::nchw_axes(params.data_layout);
  const auto xv = detail::checked_view<4>(input, fn, "input");
  const auto x = detail::permute_axes(strided_view<const T, 4>(xv), axes);
  const auto dy = detail::permute_axes(
      strided_view<const T, 4>(detail::checked_view<4>(grad_output, fn, "grad_output")), axes);
  const auto g = detail::resolve_ragged_backward<T>(s, dy, x.extents(), xv.shape_string(), "input",
                                                    params, fn);
  detail::ragged_backward_weight_run<T>(s, groups, dy, x, gw, params, g, fn);
}

/// grad_weight as a new rank-1 tensor (ragged_weight_size(groups, kernel) values).
template <tensor_of_rank<4> GradOut, tensor_of_rank<4> Input>
[[nodiscard]] auto ragged_conv2d_backward_weight(const GradOut& grad_output, const Input& input,
                                                 const ragged_groups& groups,
                                                 const std::array<index_t, 2>& kernel,
                                                 const conv2d_params& params = {}) {
  using T = detail::conv_scalar_t<GradOut>;
  detail::assert_conv_types<T, Input>();
  const char* fn = "ragged_conv2d_backward_weight";
  const auto s = detail::resolve_ragged(groups, kernel, fn);
  auto result = detail::new_gradient<T>(std::array<index_t, 1>{s.weight_size}, fn, "grad_weight");
  ragged_conv2d_backward_weight(grad_output, input, groups, kernel, params, result);
  return result;
}

/// The ragged weight holding the blocks of `dense` (O×I×KH×KW in params.weights order, indexed
/// by the tensors' channels): block g's (o, i, ky, kx) is dense[Q[b_g + o], P[a_g + i], ky, kx].
/// Off-block entries are not read. float or double.
template <tensor_of_rank<4> Dense>
[[nodiscard]] auto ragged_weight_from_dense(const Dense& dense, const ragged_groups& groups,
                                            const conv2d_params& params = {}) {
  using T = detail::conv_scalar_t<Dense>;
  detail::assert_conv_types<T>();
  const char* fn = "ragged_weight_from_dense";
  const auto dv = detail::checked_view<4>(dense, fn, "dense");
  const auto d =
      detail::permute_axes(strided_view<const T, 4>(dv), detail::oihw_axes(params.weights));
  const auto s = detail::resolve_ragged(groups, {d.extent(2), d.extent(3)}, fn);
  const std::array<index_t, 4> expected =
      detail::from_oihw({s.out_channels, s.in_channels, s.kernel_h, s.kernel_w}, params.weights);
  detail::expect_shape(dv, expected, fn, "dense");
  auto result = detail::new_gradient<T>(std::array<index_t, 1>{s.weight_size}, fn, "the weight");
  detail::for_each_ragged_weight(groups, {s.kernel_h, s.kernel_w}, params.weights,
                                 [&](index_t at, index_t o, index_t i, index_t ky, index_t kx) {
                                   result(at) =
                                       d(detail::permuted(groups.out_permutation, o),
                                         detail::permuted(groups.in_permutation, i), ky, kx);
                                 });
  return result;
}

/// The dense O×I×KH×KW weight (params.weights order) equal to a ragged weight: zero off-block.
template <tensor_of_rank<1> Weight>
[[nodiscard]] auto ragged_weight_to_dense(const Weight& weight, const ragged_groups& groups,
                                          const std::array<index_t, 2>& kernel,
                                          const conv2d_params& params = {}) {
  using T = detail::conv_scalar_t<Weight>;
  detail::assert_conv_types<T>();
  const char* fn = "ragged_weight_to_dense";
  const auto s = detail::resolve_ragged(groups, kernel, fn);
  const auto w = detail::checked_view<1>(weight, fn, "weight");
  detail::expect_shape(w, {s.weight_size}, fn, "weight");
  const auto extents =
      detail::from_oihw({s.out_channels, s.in_channels, s.kernel_h, s.kernel_w}, params.weights);
  (void)detail::checked_mul(
      detail::checked_mul(s.out_channels, s.in_channels, fn, "the dense weight",
                          [&] { return detail::shape_string(extents, 4); }),
      s.kernel_h * s.kernel_w, fn, "the dense weight",
      [&] { return detail::shape_string(extents, 4); });
  auto result = detail::new_gradient<T>(extents, fn, "the dense weight");
  const auto d = detail::permute_axes(result.view(), detail::oihw_axes(params.weights));
  detail::for_each_ragged_weight(groups, kernel, params.weights,
                                 [&](index_t at, index_t o, index_t i, index_t ky, index_t kx) {
                                   d(detail::permuted(groups.out_permutation, o),
                                     detail::permuted(groups.in_permutation, i), ky, kx) = w(at);
                                 });
  return result;
}

CVK_END_NAMESPACE
