// cvk — computer-vision kernels, header-only C++20.
// ragged_groups: the group structure of a ragged-group convolution (<cvk/conv/ragged_conv2d.hpp>).
// SPDX-License-Identifier: MIT
#pragma once

#include <vector>

#include "../core/config.hpp"
#include "../core/tensor.hpp"

CVK_BEGIN_NAMESPACE

/// The group structure of a ragged-group convolution (the contract is in
/// <cvk/conv/ragged_conv2d.hpp>): group g reads the conv's input channels [in_offsets[g],
/// in_offsets[g+1]) and writes its output channels [out_offsets[g], out_offsets[g+1]); the conv's
/// j-th input channel is the tensor's channel in_permutation[j] (a gather) and its j-th output
/// channel goes to the tensor's channel out_permutation[j] (a scatter); an empty permutation is the
/// identity.
struct ragged_groups {
  std::vector<index_t> in_offsets;       // G + 1 values: 0, …, I (non-decreasing)
  std::vector<index_t> out_offsets;      // G + 1 values: 0, …, O (non-decreasing)
  std::vector<index_t> in_permutation;   // empty, or a permutation of 0 … I−1
  std::vector<index_t> out_permutation;  // empty, or a permutation of 0 … O−1
};

CVK_END_NAMESPACE
