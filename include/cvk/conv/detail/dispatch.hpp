// cvk — computer-vision kernels, header-only C++20.
// Which conv2d path runs for which shape, how each packs its weights, and the one switch that
// calls a path's row kernel. A new path (small groups, large groups, pointwise 1×1) is a new
// conv2d_path value, a case in choose_conv2d_path, its packing and its row kernel: nothing else
// in the operator changes.
// SPDX-License-Identifier: MIT
#pragma once

#include "../../core/config.hpp"
#include "../../core/strided_view.hpp"
#include "dwconv_nhwc.hpp"
#include "generic_nhwc.hpp"
#include "geometry.hpp"

CVK_BEGIN_NAMESPACE

/// The kernel a conv2d_plan runs (chosen from the weight shape and groups; see docs/conv.md).
enum class conv2d_path {
  /// Every shape: direct loops over NHWC, inner loop over the output channels of a group.
  generic_nhwc,
  /// One input channel per group (depthwise, any channel multiplier): vectorized over channels.
  depthwise_nhwc,
  // To come (issue 10): small_group_nhwc (2–8 channels per group, vectorized across groups),
  // large_group_nhwc (>= 16 per group, channel-blocked), pointwise_nhwc (1×1, GEMM per group).
};

[[nodiscard]] constexpr const char* to_string(conv2d_path path) noexcept {
  switch (path) {
    case conv2d_path::generic_nhwc:
      return "generic_nhwc";
    case conv2d_path::depthwise_nhwc:
      return "depthwise_nhwc";
  }
  return "?";
}

namespace detail {

/// The path for a weight of O×I/g×KH×KW in `groups` groups. Depends on the weight and the
/// groups only (not on the image size), so a plan packs once for every input it will see.
constexpr conv2d_path choose_conv2d_path(index_t in_per_group, index_t /*out_per_group*/,
                                         index_t /*kernel_h*/, index_t /*kernel_w*/) noexcept {
  if (in_per_group == 1) return conv2d_path::depthwise_nhwc;
  // Room for: in_per_group in [2, 8] → small_group_nhwc; >= 16 → large_group_nhwc;
  // a 1×1 kernel → pointwise_nhwc.
  return conv2d_path::generic_nhwc;
}

/// Packs the weight, read as `w(o, i, ky, kx)`, in `path`'s order into O·I/g·KH·KW elements.
template <class T, class WeightAt>
void pack_conv2d_weights(conv2d_path path, const conv2d_geometry& g, WeightAt w, T* packed) {
  switch (path) {
    case conv2d_path::depthwise_nhwc:
      pack_depthwise_weights(g, w, packed);
      return;
    case conv2d_path::generic_nhwc:
      pack_generic_weights(g, w, packed);
      return;
  }
}

/// row[ox·O + o] (no bias, no epilogue) for output row oy of one contiguous H×W×C image.
template <class T>
void conv2d_row(conv2d_path path, const conv2d_geometry& g, const T* image, const T* packed,
                index_t oy, T* row) {
  switch (path) {
    case conv2d_path::depthwise_nhwc:
      dwconv_nhwc_row(g, image, packed, oy, row);
      return;
    case conv2d_path::generic_nhwc:
      conv2d_generic_nhwc_row_any(g, image, packed, oy, row);
      return;
  }
}

}  // namespace detail
CVK_END_NAMESPACE
