// cvk — computer-vision kernels, header-only C++20.
// The result types the NMS operators share: selected indices with their scores
// (scored_indices: soft_nms, matrix_nms, batched_matrix_nms) and with their boxes as well
// (scored_boxes: cluster_nms, var_voting, em_merge).
// SPDX-License-Identifier: MIT
#pragma once

#include "../core/config.hpp"
#include "../core/tensor.hpp"

CVK_BEGIN_NAMESPACE

/// Selected boxes as indices into the input, in the operator's output order, and the score of
/// each (the operator's own: decayed, penalised or blended). S: float or double (double for
/// integer input).
template <class S>
struct scored_indices {
  tensor<index_t, 1> indices;
  tensor<S, 1> scores;
};

/// scored_indices with the K×4 boxes that go with them (in the operator's options.format): the
/// input rows, or boxes the operator merged or voted. R: the box type, S: the score type.
template <class R, class S = R>
struct scored_boxes {
  tensor<index_t, 1> indices;
  tensor<R, 2> boxes;
  tensor<S, 1> scores;
};

CVK_END_NAMESPACE
