// cvk — computer-vision kernels, header-only C++20.
// FLGC's types (cvk/conv/flgc.hpp has the contract): the straight-through estimator, the
// assignments, the backward's options, gradients and targets, a compiled layer and a
// neighbouring conv re-ordered by a channel permutation.
// SPDX-License-Identifier: MIT
#pragma once

#include <array>
#include <vector>

#include "../core/config.hpp"
#include "../core/strided_view.hpp"
#include "../core/tensor.hpp"
#include "detail/geometry.hpp"
#include "ragged_conv2d.hpp"

CVK_BEGIN_NAMESPACE

/// The straight-through estimator that carries the gradient of the one-hot rows back to the
/// softmax probabilities: `masked` passes it at each row's argmax entry only (FLGC's reference
/// implementation), `identity` passes every entry unchanged.
enum class ste { masked, identity };

/// The group of every input channel and every filter (argmax of its logits row, lowest index on
/// a tie).
struct flgc_assignments {
  index_t groups = 0;                 ///< G, the logits' column count
  std::vector<index_t> input_group;   ///< I values in [0, G)
  std::vector<index_t> output_group;  ///< O values in [0, G)
};

/// Which gradients flgc_conv2d_backward computes (the others come back empty), and the
/// straight-through estimator of the binariser.
struct flgc_backward_options {
  bool input = true, weight = true, bias = true, in_logits = true, out_logits = true;
  ste estimator = ste::masked;
};

/// The gradients of an flgc_conv2d call (empty tensors for those not computed).
template <class T>
struct flgc_gradients {
  tensor<T, 4> input, weight;
  tensor<T, 1> bias;
  tensor<T, 2> in_logits, out_logits;
};

/// Targets of the write-into backward form (`cvk::as_view(t)`): input in params.data_layout,
/// weight in params.weights; a default (null) view is a gradient not computed.
template <class T>
struct flgc_gradient_views {
  strided_view<T, 4> input{}, weight{};
  strided_view<T, 1> bias{};
  strided_view<T, 2> in_logits{}, out_logits{};
};

/// A compiled FLGC layer: the ragged conv equal to the masked dense conv.
template <class T>
struct flgc_compiled {
  ragged_groups groups;             ///< offsets and (possibly empty) permutations
  tensor<T, 1> weight;              ///< the blocks, params.weights order within each
  tensor<T, 1> bias;                ///< O values indexed by y's channel (zeros without a bias)
  std::array<index_t, 2> kernel{};  ///< {KH, KW}
  conv2d_params params;             ///< the layer's params (groups = 1)

  /// The ragged_conv2d_plan that runs this layer.
  [[nodiscard]] ragged_conv2d_plan<T> plan() const {
    return ragged_conv2d_plan<T>(groups, weight, kernel, bias, params);
  }
};

/// A neighbouring conv re-ordered by a channel permutation (permute_conv_outputs /
/// permute_conv_inputs / the folding helpers).
template <class T>
struct permuted_conv {
  tensor<T, 4> weight;                      ///< the given weight's layout and shape
  tensor<T, 1> bias;                        ///< O values (zeros when given cvk::no_bias)
  std::vector<index_t> channels;            ///< the permutation applied (empty: none)
  std::vector<index_t> output_permutation;  ///< new output j = old output [j]; empty: none
};

CVK_END_NAMESPACE
