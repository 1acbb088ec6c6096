// cvk — computer-vision kernels, header-only C++20.
// FLGC, Fully Learnable Group Convolution (Wang, Kan, Shan, Chen, CVPR 2019): a conv whose
// input-channel → group and filter → group assignments are learned. Training runs the dense conv
// with the weight masked by M = T·Sᵀ and carries the mask's gradient to the assignment logits
// through a straight-through estimator; flgc_compile then sorts channels and filters by group
// into a ragged-group conv, and the folding helpers move its permutations into the neighbouring
// layers so that inference gathers nothing.
// SPDX-License-Identifier: MIT
#pragma once

#include <array>
#include <concepts>
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
#include "detail/flgc.hpp"
#include "detail/geometry.hpp"
#include "flgc_types.hpp"
#include "ragged_conv2d.hpp"

CVK_BEGIN_NAMESPACE

// The contract of every FLGC entry point.
//
// Assignments (I input channels, O filters, G groups): in_logits S̃ is I×G, out_logits T̃ is O×G.
// Each row goes through a softmax, p = softmax(row), and is binarised to the one-hot vector of
// the row's argmax: Ŝ (I×G), T̂ (O×G). Ties go to the lowest group index (FLGC's reference,
// `p == rowmax(p)`, would set several ones; cvk sets exactly one). The argmax is taken on the
// logits, which is the argmax of the exact softmax (exp is increasing): two different logits
// whose rounded exp() agree are not a tie. The mask is
//   M = T̂·Ŝᵀ (O×I):  M[k, c] = 1 iff filter k and input channel c have the same group.
// Logits must be finite (a NaN or ±inf is an error naming the argument, the row, the column and
// the value); G >= 1; both matrices have the same G. Groups may end up empty.
//
// Training forward (weight O×I×KH×KW, a dense conv: params.groups must be 1):
//   flgc_conv2d(x, W, b, S̃, T̃, params) = conv2d(x, W ⊙ M, b, params)   (M broadcast over KH×KW)
// with conv2d's semantics for everything else (stride, padding, auto_pad, dilation, layouts,
// epilogue). W ⊙ M is a select: masked-out entries are exactly 0 whatever W holds there.
//
// Backward (params.act must be activation::none, as conv2d_backward), with dy = ∂L/∂y and
// dW' = conv2d_backward_weight(dy, x) (the gradient of the masked weight):
//   grad_input      = conv2d_backward_input(dy, W ⊙ M)
//   grad_weight     = dW' ⊙ M
//   grad_bias       = conv2d_backward_bias(dy)
//   dM[k, c]        = Σ_{kh, kw} dW'[k, c, kh, kw] · W[k, c, kh, kw]
//   dT̂ = dM·Ŝ (O×G),  dŜ = dMᵀ·T̂ (I×G)
//   through the binariser, per row with a = the row's group (straight-through estimator):
//     ste::masked (default, FLGC's reference): g_j = dT̂_j if j = a, else 0
//     ste::identity:                           g_j = dT̂_j
//   through the softmax: grad_logit_j = p_j · (g_j − Σ_k g_k·p_k)
//   (likewise for S̃ from dŜ). The binariser is piecewise constant, so these are the estimator's
//   gradients, not derivatives of the forward (whose logit derivative is 0 away from ties).
//
// Compile: flgc_compile(W, b, S̃, T̃, params) → flgc_compiled<T>{groups, weight, bias, kernel,
// params}: input channels stably sorted by group give groups.in_permutation, filters stably
// sorted by group groups.out_permutation (a permutation that is the identity is left empty);
// groups.in_offsets / out_offsets are the running counts (G + 1 values each; an empty group is
// a zero-width group, so G stays). weight is ragged_weight_from_dense(W ⊙ M, groups) (the
// blocks, params.weights order), bias the O values indexed by y's channel (zeros without a bias:
// conv2d adds +0 then, so outputs are the same). Then
//   ragged_conv2d(x, c.groups, c.weight, c.kernel, c.bias, c.params) = flgc_conv2d(x, W, b, S̃, T̃,
//   params)   (up to the order of the sums), and c.plan() is the ragged_conv2d_plan<T> of it.
//
// Folding (channel permutations are gathers: "new channel j = old channel perm[j]"; an empty
// permutation is the identity):
//   permute_channels(v, perm)[j] = v[perm[j]]  — a per-channel vector (bias, batch-norm scale
//     and shift) that follows a re-ordered channel axis.
//   permute_conv_outputs(W, b, params, perm): the conv whose output channel j is the given
//     conv's output channel perm[j] (weight rows and bias re-ordered). A grouped or depthwise
//     conv (params.groups > 1) only when perm keeps every output channel in its group (else
//     cvk::invalid_argument naming the first channel that leaves its group).
//   permute_conv_inputs(W, b, params, perm): the conv that reads x'[:, j] = x[:, perm[j]] and
//     gives the given conv's output up to `output_permutation` (its output channel j is the old
//     output channel output_permutation[j]; empty when none). groups = 1: the weight's input
//     axis is re-ordered, no output permutation. Grouped / depthwise: perm must move whole input
//     groups (each block of I/g consecutive new channels comes from one old block, in any order
//     inside); the groups' filters (and bias) then move with their blocks, which is the returned
//     output permutation (fold it into the next layer the same way, or gather). Otherwise
//     cvk::invalid_argument naming the first channel that breaks a block.
//   flgc_fold_input_permutation(c, prevW, prevb, prev_params): permute_conv_outputs of the
//     previous conv by c.groups.in_permutation, which becomes empty (the previous conv now
//     produces the channels in the order the ragged conv reads them).
//   flgc_fold_output_permutation(c, nextW, nextb, next_params): permute_conv_inputs of the next
//     conv by c.groups.out_permutation, c.bias re-ordered to the conv's order, and
//     c.groups.out_permutation becomes empty (the ragged conv writes in its own order).
//   Both return the folded permutation in `channels`: re-order every per-channel vector between
//   the two layers (batch-norm, a bias applied separately) with permute_channels(v, channels).
//   A layer whose output feeds several consumers (a residual branch) must fold into all of them.
//
// Forms (T float or double, the same in every tensor; any strides; Bias a rank-1 tensor of O
// values or cvk::no_bias):
//   flgc_assignment(in_logits, out_logits)                          → flgc_assignments
//   flgc_mask(in_logits, out_logits)                                → cvk::tensor<T, 2> (O×I)
//   flgc_mask(in_logits, out_logits, out)                           → writes out
//   flgc_conv2d(input, weight, bias, in_logits, out_logits[, params])      → cvk::tensor<T, 4>
//   flgc_conv2d(input, weight, bias, in_logits, out_logits, params, out)   → writes out
//   flgc_conv2d_backward(grad_output, input, weight, in_logits, out_logits, params[, options])
//                                 → flgc_gradients<T> (those not asked for in options are empty)
//   flgc_conv2d_backward(grad_output, input, weight, in_logits, out_logits, params, targets
//                        [, estimator])   → writes the non-null views of flgc_gradient_views<T>
//   flgc_compile(weight, bias, in_logits, out_logits[, params])      → flgc_compiled<T>
//   permute_channels(values, permutation)                            → cvk::tensor<V, 1>
//   permute_conv_outputs(weight, bias, params, permutation)          → permuted_conv<T>
//   permute_conv_inputs(weight, bias, params, permutation)           → permuted_conv<T>
//   flgc_fold_input_permutation(compiled, weight, bias, params)      → permuted_conv<T>
//   flgc_fold_output_permutation(compiled, weight, bias, params)     → permuted_conv<T>
//
// Shapes: input N×I×H×W (layout::nchw) or N×H×W×I (layout::nhwc); weight O×I×KH×KW (oihw) or
// KH×KW×I×O (hwio); in_logits I×G; out_logits O×G; grad_output the output's shape; the
// gradients the shapes of what they differentiate. A folded neighbour's weight and bias keep
// their layout and shape.
//
// Errors (each message names the function, the argument and the shapes):
//   cvk::invalid_argument  conv2d's parameter errors; params.groups != 1 for an FLGC layer;
//                          params.act != none in the backward; a non-finite logit; a permutation
//                          of the wrong length or that is not a permutation; a permutation a
//                          grouped neighbour cannot absorb
//   cvk::shape_error       wrong rank; logits not I×G / O×G, G < 1, different G; conv2d's shape
//                          errors (kernel larger than the padded input, input channels not the
//                          weight's, bias not of length O, grad_output or a target of the wrong
//                          shape); a folded neighbour whose channel count is not the compiled
//                          layer's
//   cvk::out_of_range      size products that overflow; buffers too large to allocate
//
// Complexity: the forward is one conv2d (N·Ho·Wo·O·I·KH·KW multiply-adds, the dense cost — FLGC
// trains at dense cost) plus O·I·KH·KW for the mask; the backward is conv2d's backward (the
// weight gradient is needed for the logits as well) plus O·I·KH·KW for dM, O·I for dT̂ and dŜ,
// (I + O)·G for the softmaxes. Memory: the masked weight (and a weight gradient when only the
// logits' are asked for), dM (O·I values), dT̂ and dŜ. flgc_compile: O·I·KH·KW reads; the folding
// helpers one copy of the neighbour's weight. The compiled ragged conv costs
// N·Ho·Wo·KH·KW·Σ_g I_g·O_g multiply-adds (about 1/G of the dense conv for balanced groups).
// Threads: params.threads as conv2d; the mask, dM and every other reduction are summed in a
// fixed order, so results are bit-identical for any thread count.
//
// The types (ste, flgc_assignments, flgc_backward_options, flgc_gradients,
// flgc_gradient_views, flgc_compiled, permuted_conv) are in flgc_types.hpp; the algorithm in
// detail/flgc.hpp.

/// The group of every input channel (in_logits I×G) and every filter (out_logits O×G): the
/// argmax of its row, the lowest column on a tie.
template <tensor_of_rank<2> InLogits, tensor_of_rank<2> OutLogits>
[[nodiscard]] flgc_assignments flgc_assignment(const InLogits& in_logits,
                                               const OutLogits& out_logits) {
  using T = detail::conv_scalar_t<InLogits>;
  detail::assert_flgc_types<T, OutLogits>();
  const auto l = detail::flgc_read_logits<T>(in_logits, out_logits, -1, -1, "flgc_assignment");
  return {l.groups, l.in_group, l.out_group};
}

/// Writes M = T̂·Ŝᵀ (O×I: 1 where filter k and channel c share a group, else 0) into `out`.
template <tensor_of_rank<2> InLogits, tensor_of_rank<2> OutLogits, tensor_of_rank<2> Out>
void flgc_mask(const InLogits& in_logits, const OutLogits& out_logits, Out&& out) {
  using T = detail::conv_scalar_t<InLogits>;
  detail::assert_flgc_types<T, OutLogits, Out>();
  const char* fn = "flgc_mask";
  const auto l = detail::flgc_read_logits<T>(in_logits, out_logits, -1, -1, fn);
  const auto ins = l.in.extent(0), outs = l.out.extent(0);
  auto m = detail::output_view<2>(std::forward<Out>(out), {outs, ins}, fn, "out");
  for (index_t k = 0; k < outs; ++k) {
    for (index_t c = 0; c < ins; ++c) {
      m(k, c) = l.out_group[static_cast<std::size_t>(k)] == l.in_group[static_cast<std::size_t>(c)]
                    ? T(1)
                    : T(0);
    }
  }
}

/// M = T̂·Ŝᵀ as a new O×I tensor.
template <tensor_of_rank<2> InLogits, tensor_of_rank<2> OutLogits>
[[nodiscard]] auto flgc_mask(const InLogits& in_logits, const OutLogits& out_logits) {
  using T = detail::conv_scalar_t<InLogits>;
  detail::assert_flgc_types<T, OutLogits>();
  const char* fn = "flgc_mask";
  const auto in = detail::checked_view<2>(in_logits, fn, "in_logits");
  const auto out = detail::checked_view<2>(out_logits, fn, "out_logits");
  auto result =
      detail::new_gradient<T>(std::array<index_t, 2>{out.extent(0), in.extent(0)}, fn, "the mask");
  flgc_mask(in, out, result);
  return result;
}

/// Writes conv2d(input, weight ⊙ M, bias, params) into `out` (params.groups must be 1).
template <tensor_of_rank<4> Input, tensor_of_rank<4> Weight, conv_bias Bias,
          tensor_of_rank<2> InLogits, tensor_of_rank<2> OutLogits, tensor_of_rank<4> Out>
void flgc_conv2d(const Input& input, const Weight& weight, const Bias& bias,
                 const InLogits& in_logits, const OutLogits& out_logits,
                 const conv2d_params& params, Out&& out) {
  using T = detail::conv_scalar_t<Input>;
  detail::assert_flgc_types<T, Weight, Bias, InLogits, OutLogits, Out>();
  const char* fn = "flgc_conv2d";
  const auto layer = detail::flgc_prepare<T>(weight, in_logits, out_logits, params, fn);
  const tensor<T, 4> masked = detail::flgc_masked_weight(layer, params, fn);
  conv2d_plan<T>(detail::caller{fn}, masked, bias, params)(input, std::forward<Out>(out));
}

/// y = conv2d(input, weight ⊙ M, bias, params), M = flgc_mask(in_logits, out_logits).
template <tensor_of_rank<4> Input, tensor_of_rank<4> Weight, conv_bias Bias,
          tensor_of_rank<2> InLogits, tensor_of_rank<2> OutLogits>
[[nodiscard]] auto flgc_conv2d(const Input& input, const Weight& weight, const Bias& bias,
                               const InLogits& in_logits, const OutLogits& out_logits,
                               const conv2d_params& params = {}) {
  using T = detail::conv_scalar_t<Input>;
  detail::assert_flgc_types<T, Weight, Bias, InLogits, OutLogits>();
  const char* fn = "flgc_conv2d";
  const auto layer = detail::flgc_prepare<T>(weight, in_logits, out_logits, params, fn);
  const tensor<T, 4> masked = detail::flgc_masked_weight(layer, params, fn);
  return conv2d_plan<T>(detail::caller{fn}, masked, bias, params)(input);
}

/// Writes the gradients whose targets are given (non-null views) of flgc_conv2d for
/// `grad_output`, through the straight-through estimator `estimator`.
template <tensor_of_rank<4> GradOut, tensor_of_rank<4> Input, tensor_of_rank<4> Weight,
          tensor_of_rank<2> InLogits, tensor_of_rank<2> OutLogits, class T>
void flgc_conv2d_backward(const GradOut& grad_output, const Input& input, const Weight& weight,
                          const InLogits& in_logits, const OutLogits& out_logits,
                          const conv2d_params& params, const flgc_gradient_views<T>& targets,
                          ste estimator = ste::masked) {
  detail::assert_flgc_types<T, GradOut, Input, Weight, InLogits, OutLogits>();
  const char* fn = "flgc_conv2d_backward";
  const auto layer = detail::flgc_prepare<T>(weight, in_logits, out_logits, params, fn);
  detail::flgc_backward_call<T>(grad_output, input, layer, params, targets, estimator, fn);
}

/// The gradients of flgc_conv2d for `grad_output` (those not asked for in `options` are empty).
template <tensor_of_rank<4> GradOut, tensor_of_rank<4> Input, tensor_of_rank<4> Weight,
          tensor_of_rank<2> InLogits, tensor_of_rank<2> OutLogits>
[[nodiscard]] auto flgc_conv2d_backward(const GradOut& grad_output, const Input& input,
                                        const Weight& weight, const InLogits& in_logits,
                                        const OutLogits& out_logits, const conv2d_params& params,
                                        const flgc_backward_options& options = {}) {
  using T = detail::conv_scalar_t<Input>;
  detail::assert_flgc_types<T, GradOut, Weight, InLogits, OutLogits>();
  const char* fn = "flgc_conv2d_backward";
  const auto layer = detail::flgc_prepare<T>(weight, in_logits, out_logits, params, fn);
  const auto x = detail::checked_view<4>(input, fn, "input");
  flgc_gradients<T> r;
  flgc_gradient_views<T> views;
  if (options.input) {
    r.input = detail::new_gradient<T>(x.extents(), fn, "grad_input");
    views.input = r.input.view();
  }
  if (options.weight) {
    r.weight = detail::new_gradient<T>(layer.extents, fn, "grad_weight");
    views.weight = r.weight.view();
  }
  if (options.bias) {
    r.bias =
        detail::new_gradient<T>(std::array<index_t, 1>{layer.weight.extent(0)}, fn, "grad_bias");
    views.bias = r.bias.view();
  }
  if (options.in_logits) {
    r.in_logits = detail::new_gradient<T>(layer.logits.in.extents(), fn, "grad_in_logits");
    views.in_logits = r.in_logits.view();
  }
  if (options.out_logits) {
    r.out_logits = detail::new_gradient<T>(layer.logits.out.extents(), fn, "grad_out_logits");
    views.out_logits = r.out_logits.view();
  }
  detail::flgc_backward_call<T>(grad_output, x, layer, params, views, options.estimator, fn);
  return r;
}

/// The ragged conv equal to flgc_conv2d(·, weight, bias, in_logits, out_logits, params):
/// channels and filters stably sorted by group (see the contract above).
template <tensor_of_rank<4> Weight, conv_bias Bias, tensor_of_rank<2> InLogits,
          tensor_of_rank<2> OutLogits>
[[nodiscard]] auto flgc_compile(const Weight& weight, const Bias& bias, const InLogits& in_logits,
                                const OutLogits& out_logits, const conv2d_params& params = {}) {
  using T = detail::conv_scalar_t<Weight>;
  detail::assert_flgc_types<T, Bias, InLogits, OutLogits>();
  const char* fn = "flgc_compile";
  const auto layer = detail::flgc_prepare<T>(weight, in_logits, out_logits, params, fn);
  const auto operand = detail::read_conv_operand<T>(weight, bias, params, fn);
  flgc_compiled<T> c;
  auto in_side = detail::flgc_sort_by_group(layer.logits.in_group, layer.logits.groups);
  auto out_side = detail::flgc_sort_by_group(layer.logits.out_group, layer.logits.groups);
  c.groups.in_offsets = std::move(in_side.offsets);
  c.groups.in_permutation = std::move(in_side.permutation);
  c.groups.out_offsets = std::move(out_side.offsets);
  c.groups.out_permutation = std::move(out_side.permutation);
  c.kernel = {layer.weight.extent(2), layer.weight.extent(3)};
  c.params = params;
  // Inside the blocks M = 1: the blocks of W ⊙ M are W's.
  c.weight = ragged_weight_from_dense(weight, c.groups, params);
  c.bias = tensor<T, 1>(std::array<index_t, 1>{layer.weight.extent(0)});
  for (index_t o = 0; o < layer.weight.extent(0); ++o) {
    c.bias(o) = operand.bias[static_cast<std::size_t>(o)];
  }
  return c;
}

/// v'[j] = values[permutation[j]] (an empty permutation copies).
template <tensor_of_rank<1> Values>
[[nodiscard]] auto permute_channels(const Values& values, const std::vector<index_t>& permutation) {
  using V = std::remove_const_t<tensor_value_t<const Values&>>;
  const char* fn = "permute_channels";
  const auto v = detail::checked_view<1>(values, fn, "values");
  detail::check_channel_permutation(permutation, v.extent(0), fn, "permutation");
  tensor<V, 1> result(std::array<index_t, 1>{v.extent(0)});
  for (index_t j = 0; j < v.extent(0); ++j) {
    result(j) = v(permutation.empty() ? j : permutation[static_cast<std::size_t>(j)]);
  }
  return result;
}

/// The conv whose output channel j is this conv's output channel permutation[j].
template <tensor_of_rank<4> Weight, conv_bias Bias>
[[nodiscard]] auto permute_conv_outputs(const Weight& weight, const Bias& bias,
                                        const conv2d_params& params,
                                        const std::vector<index_t>& permutation) {
  using T = detail::conv_scalar_t<Weight>;
  detail::assert_flgc_types<T, Bias>();
  const char* fn = "permute_conv_outputs";
  return detail::permute_outputs_of(detail::read_conv_operand<T>(weight, bias, params, fn), params,
                                    permutation, fn);
}

/// The conv that reads input channel j from the old channel permutation[j] and gives this conv's
/// output up to the returned output_permutation.
template <tensor_of_rank<4> Weight, conv_bias Bias>
[[nodiscard]] auto permute_conv_inputs(const Weight& weight, const Bias& bias,
                                       const conv2d_params& params,
                                       const std::vector<index_t>& permutation) {
  using T = detail::conv_scalar_t<Weight>;
  detail::assert_flgc_types<T, Bias>();
  const char* fn = "permute_conv_inputs";
  return detail::permute_inputs_of(detail::read_conv_operand<T>(weight, bias, params, fn), params,
                                   permutation, fn);
}

/// Folds compiled.groups.in_permutation into the previous conv's output channels; the
/// permutation becomes empty. Returns the previous conv re-ordered.
template <class T, tensor_of_rank<4> Weight, conv_bias Bias>
[[nodiscard]] permuted_conv<T> flgc_fold_input_permutation(flgc_compiled<T>& compiled,
                                                           const Weight& weight, const Bias& bias,
                                                           const conv2d_params& params) {
  detail::assert_flgc_types<T, Weight, Bias>();
  const char* fn = "flgc_fold_input_permutation";
  const auto c = detail::read_conv_operand<T>(weight, bias, params, fn);
  const index_t channels =
      compiled.groups.in_offsets.empty() ? 0 : compiled.groups.in_offsets.back();
  if (c.weight.extent(0) != channels) {
    CVK_THROW(shape_error,
              std::string(fn) + ": the previous conv must have " + std::to_string(channels) +
                  " output channels (the compiled layer's input channels), got weight " +
                  detail::shape_string(c.extents, 4) + " (" +
                  detail::weight_pattern(params.weights) + ")");
  }
  permuted_conv<T> r = detail::permute_outputs_of(c, params, compiled.groups.in_permutation, fn);
  compiled.groups.in_permutation.clear();
  return r;
}

/// Folds compiled.groups.out_permutation into the next conv's input channels (and compiled.bias
/// into the conv's order); the permutation becomes empty. Returns the next conv re-ordered, with
/// the output permutation it now carries (grouped next convs only).
template <class T, tensor_of_rank<4> Weight, conv_bias Bias>
[[nodiscard]] permuted_conv<T> flgc_fold_output_permutation(flgc_compiled<T>& compiled,
                                                            const Weight& weight, const Bias& bias,
                                                            const conv2d_params& params) {
  detail::assert_flgc_types<T, Weight, Bias>();
  const char* fn = "flgc_fold_output_permutation";
  const auto c = detail::read_conv_operand<T>(weight, bias, params, fn);
  const index_t channels =
      compiled.groups.out_offsets.empty() ? 0 : compiled.groups.out_offsets.back();
  const index_t ins = c.weight.extent(1) * c.groups;
  if (ins != channels) {
    CVK_THROW(shape_error, std::string(fn) + ": the next conv must have " +
                               std::to_string(channels) +
                               " input channels (the compiled layer's output channels), got "
                               "weight " +
                               detail::shape_string(c.extents, 4) + " (" +
                               detail::weight_pattern(params.weights) +
                               ") with params.groups = " + std::to_string(c.groups));
  }
  permuted_conv<T> r = detail::permute_inputs_of(c, params, compiled.groups.out_permutation, fn);
  if (compiled.bias.extent(0) != channels) {
    CVK_THROW(shape_error, std::string(fn) + ": compiled.bias must have " +
                               std::to_string(channels) + " values, got " +
                               compiled.bias.shape_string());
  }
  compiled.bias = permute_channels(compiled.bias, compiled.groups.out_permutation);
  compiled.groups.out_permutation.clear();
  return r;
}

CVK_END_NAMESPACE
