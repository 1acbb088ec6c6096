// cvk — computer-vision kernels, header-only C++20.
// Layer-wise relevance propagation over a network described as a list of cvk layers (conv2d —
// grouped and depthwise included —, linear, batch norm, ReLU, max / average / adaptive average
// pooling, flatten): the rules LRP-0, ε, γ, αβ, z^B, flat and w², the composites of zennit and
// Kohlbrenner et al., batch norm merged into the layer before it, and the relevance each layer
// passes on, for checking conservation.
// SPDX-License-Identifier: MIT
#pragma once

#include <vector>

#include "../core/config.hpp"
#include "../core/tensor.hpp"
#include "detail/lrp_run.hpp"
#include "lrp_types.hpp"

CVK_BEGIN_NAMESPACE

// The contract of LRP.
//
// The network: a std::vector<lrp_layer<T>> applied in order to a batch x of N images (N×C×H×W in
// lrp_options::data_layout = nchw, or N×H×W×C), T float or double. Each layer maps a rank-4
// activation to the next:
//   lrp_conv<T>        y = conv2d(a, weight, bias, params) (grouped, depthwise, strided, dilated,
//                      padded: every conv2d_params; params.data_layout must be the network's,
//                      params.act must be none — write a separate lrp_relu)
//   lrp_linear<T>      y = weight·a + bias on a flattened activation (N×D×1×1 in nchw, N×1×1×D in
//                      nhwc): weight O×D (torch's nn.Linear), bias O or empty
//   lrp_batch_norm<T>  y = (a − mean)/√(var + eps)·gamma + beta per channel (inference form); it
//                      must directly follow an lrp_conv or lrp_linear, into which it is merged
//                      (zennit's MergeBatchNorm: W' = W·s, b' = (b − mean)·s + beta, s = gamma /
//                      √(var + eps), per output channel)
//   lrp_relu           y = max(a, 0)
//   lrp_max_pool       max_pool2d(a, params); lrp_avg_pool: avg_pool2d(a, params);
//   lrp_adaptive_avg_pool  adaptive_avg_pool2d(a, params) (params.data_layout: the network's)
//   lrp_flatten        N×C×H×W → N×(C·H·W)×1×1 (nchw: torch.flatten order c, h, w) or
//                      N×H×W×C → N×1×1×(H·W·C) (nhwc: order h, w, c)
// The last layer's output must be N×K×1×1 (nchw) or N×1×1×K: one score per class.
//
// Relevance: the backward pass starts at the output with R = f_c(x)·onehot(c) for the target
// class c of each image (lrp_start::score, Captum's and Kohlbrenner et al.'s convention: the
// relevances sum to the explained score) or R = onehot(c) (lrp_start::one, zennit's when its
// attributor is given a one-hot output gradient). Each layer maps the relevance R_k of its output
// to its input's R_j:
//   conv / linear, by rule (z_k = Σ_j a_j w_jk + b_k, the layer's own pre-activation; every
//   rule's denominator z is stabilised as z + ε·sign(z) with sign(0) = +1 — zennit's
//   stabilize —, ε = the rule's epsilon; with ε = 0 a term whose z is 0 gets 0, never inf or NaN):
//     zero         R_j = a_j Σ_k w_jk R_k / z_k, and 0 where z_k = 0 (no stabiliser)
//     epsilon      the same with z_k stabilised (ε: rule.epsilon)
//     gamma        the epsilon rule with w → w + γ·w⁺ and b → b + γ·b⁺ (Montavon et al. 2019,
//                  Captum's GammaRule applied to the bias too; meant for non-negative inputs,
//                  as after a ReLU — zennit's newer Gamma also splits the inputs by sign)
//     alpha_beta   R_j = α·P_j − β·Q_j, P from the positive contributions (a⁺·w⁺, a⁻·w⁻, b⁺),
//                  Q from the negative ones (a⁺·w⁻, a⁻·w⁺, b⁻), each normalised by its own sum
//                  (zennit's AlphaBeta; α − β = 1 is checked; α = 1, β = 0 is z⁺)
//     z_box        R_j = (a_j w_jk − l_j w⁺_jk − h_j w⁻_jk)-weighted share of R_k, for inputs
//                  bounded by l ≤ a ≤ h (rule.low, rule.high: one value, or one per input
//                  channel); the bias does not enter (zennit's ZBox: b − b⁺ − b⁻ = 0)
//     flat         every input and weight read as 1, no bias: R_k spread evenly over the inputs
//                  its window reads (zero padding excluded)
//     w_square     the same with w² as the weights: R_j = Σ_k w²_jk / Σ_j w²_jk · R_k
//   ReLU, flatten: R passes unchanged (reshaped). Batch norm: merged, see above.
//   avg and adaptive avg pool: R_j = a_j Σ_k R_k / (d_k·stab(z_k)) over the windows reading j,
//   z_k the pool's output (the window's mean, divisor d_k) stabilised with lrp_options::epsilon
//   — a_j R_k / (sum + d_k·ε): zennit's Norm rule on the pooled output.
//   max pool: winner_take_all (all of R_k to the window's maximum, torch's argmax: the gradient
//   of max_pool2d; zennit's default) or proportional (as avg pool over the same windows; needs
//   dilation 1).
// Rules conserve relevance (Σ_j R_j = Σ_k R_k) up to the stabiliser and the bias share, except
// αβ with β > 0 and z_box whose bounds make the denominator differ (both still conserve when
// the sums are exact). lrp_result::layer_totals reports Σ R per image at every layer boundary.
//
// Composites (which rule each conv / linear layer gets; lrp_composite):
//   epsilon_gamma_box(low, high)   first conv or linear layer z_box, other convs γ = 0.25, linear
//                                  layers ε = 1e-6 (zennit's EpsilonGammaBox)
//   epsilon_plus_flat()            first layer flat, convs z⁺ (α1β0), linear ε (EpsilonPlusFlat)
//   epsilon_alpha2_beta1_flat()    first layer flat, convs α2β1, linear ε
//   kohlbrenner(low, high)         z_box at the input, γ in the convs, ε in the linear layers,
//                                  LRP-0 at the top linear layer (Kohlbrenner et al. 2020, LRP_CMP)
//   or per layer: lrp(layers, input, targets, rules) with one lrp_rule per layer (rules of
//   layers that are neither conv nor linear are not read).
//
// Forms:
//   lrp(layers, input, targets, composite[, options])   → lrp_result<T>
//   lrp(layers, input, targets, rules[, options])       → lrp_result<T>
//   lrp_rules(layers, composite)                        → std::vector<lrp_rule>, one per layer
//   lrp_merge_batch_norm(layers)                        → the layers with every batch norm merged
//   lrp_forward(layers, input[, options])               → the network's N×K scores (tensor<T, 2>)
// targets: N class ids, any integer rank-1 tensor; input: any rank-4 tensor of T.
//
// Errors (cvk::shape_error / cvk::invalid_argument, each naming the layer by index and kind and
// the shapes): an empty layer list; a layer whose input does not chain (channels, a linear's D,
// a window larger than the padded input); a batch norm not after a conv or linear, or whose
// vectors do not match its channels; a conv with a fused activation or another layout; a last
// output that is not N×K×1×1; targets of the wrong length; rules of the wrong count; α − β ≠ 1,
// α < 0 or β < 0, a negative or NaN ε or γ, z_box bounds of the wrong length or with low > high;
// proportional max pool with dilation. cvk::out_of_range (as cam's class ids): a target outside
// [0, K).
//
// Complexity: one forward pass (every layer's input kept: the activations' memory), then per conv
// or linear layer one conv forward and one conv2d_backward_input per term of its rule (ε, γ, 0,
// flat, w²: 1 + 1; z_box: 3 + 3; αβ: 4 + 4, 2 + 2 when β = 0 and the inputs are non-negative),
// pooling one pooled forward and backward. Modified weights are made per call (no cache);
// options.threads go to every kernel; results are identical for any thread count.

/// The layers with each batch norm merged into the conv or linear layer before it.
template <class T>
[[nodiscard]] std::vector<lrp_layer<T>> lrp_merge_batch_norm(
    const std::vector<lrp_layer<T>>& layers) {
  return detail::merge_batch_norm(layers, "lrp_merge_batch_norm");
}

/// The rule `composite` gives each layer of `layers` (batch norms counted as layers; the rule of a
/// layer that is neither conv nor linear is LRP-0 and is not read).
template <class T>
[[nodiscard]] std::vector<lrp_rule> lrp_rules(const std::vector<lrp_layer<T>>& layers,
                                              const lrp_composite& composite) {
  return detail::composite_rules(layers, composite);
}

/// The network's scores, N×K.
template <class T, tensor_of_rank<4> Input>
[[nodiscard]] tensor<T, 2> lrp_forward(const std::vector<lrp_layer<T>>& layers, const Input& input,
                                       const lrp_options& options = {}) {
  return detail::lrp_scores<T>(layers, input, options);
}

/// LRP with one rule per layer.
template <class T, tensor_of_rank<4> Input, tensor_of_rank<1> Targets>
[[nodiscard]] lrp_result<T> lrp(const std::vector<lrp_layer<T>>& layers, const Input& input,
                                const Targets& targets, const std::vector<lrp_rule>& rules,
                                const lrp_options& options = {}) {
  return detail::lrp_run<T>(layers, input, targets, rules, lrp_max_pool_rule::winner_take_all,
                            options);
}

/// LRP with a composite.
template <class T, tensor_of_rank<4> Input, tensor_of_rank<1> Targets>
[[nodiscard]] lrp_result<T> lrp(const std::vector<lrp_layer<T>>& layers, const Input& input,
                                const Targets& targets, const lrp_composite& composite,
                                const lrp_options& options = {}) {
  return detail::lrp_run<T>(layers, input, targets, detail::composite_rules(layers, composite),
                            composite.max_pool, options);
}

CVK_END_NAMESPACE
