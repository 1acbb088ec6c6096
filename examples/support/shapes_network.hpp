// cvk — computer-vision kernels, header-only C++20.
// The network examples/explain_cnn.cpp trains and explains, and benchmarks/bench_explain_cnn.cpp
// times (one definition for both; benchmarks/torchvision_bench.py builds the same layers in
// torch): 40×40×3 → 20×20×16 → 10×10×32 → 10×10×64 → 64 → 4 logits, NHWC.
// SPDX-License-Identifier: MIT
#pragma once

#include <cstdint>

#include "shapes_dataset.hpp"
#include "tiny_cnn.hpp"

namespace cvk_example {

/// Layer index whose output Grad-CAM and the other CAMs read: the last ReLU (10×10×64).
inline constexpr cvk::index_t shapes_cam_layer = 11;

/// conv 3→16 3×3, BN, ReLU, max pool 2; conv 16→32 3×3 in 2 groups, BN, ReLU, max pool 2;
/// depthwise 3×3 (32 groups), pointwise 1×1 32→64, BN, ReLU; global average pool; linear 64→4.
template <class T>
sequential_net<T> shapes_network(std::uint64_t seed, int threads = 0) {
  const cvk::conv2d_params same{.padding = {1, 1, 1, 1}};
  cvk::conv2d_params grouped = same, depthwise = same;
  grouped.groups = 2;
  depthwise.groups = 32;
  sequential_net<T> net(seed, threads);
  net.conv(3, 16, 3, same)
      .batch_norm()
      .relu()
      .max_pool(2)
      .conv(16, 32, 3, grouped)
      .batch_norm()
      .relu()
      .max_pool(2)
      .conv(32, 32, 3, depthwise)
      .conv(32, 64, 1)
      .batch_norm()
      .relu()
      .global_avg_pool()
      .flatten()
      .linear(64, shape_classes);
  return net;
}

}  // namespace cvk_example
