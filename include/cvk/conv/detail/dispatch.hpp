// cvk — computer-vision kernels, header-only C++20.
// Which conv2d path runs for which shape, how each packs its weights and lays out its input, and
// the one switch that calls a path's row kernel. A new path is a new conv2d_path value, a case in
// choose_conv2d_path, its packing, its input layout and its row kernel: nothing else in the
// operator changes.
// SPDX-License-Identifier: MIT
#pragma once

#include "../../core/config.hpp"
#include "../../core/strided_view.hpp"
#include "../../detail/simd.hpp"
#include "blocked_nhwc.hpp"
#include "dwconv_nhwc.hpp"
#include "generic_nhwc.hpp"
#include "geometry.hpp"
#include "small_group_nhwc.hpp"

CVK_BEGIN_NAMESPACE

/// The kernel a conv2d_plan runs (chosen from the weight shape and groups; see docs/conv.md).
enum class conv2d_path {
  /// Direct loops over NHWC, inner loop over the output channels of a group: the plain path,
  /// for shapes no other path fits (few output channels per group, several input channels).
  generic_nhwc,
  /// One input channel per group (depthwise, any channel multiplier): vectorised over channels.
  depthwise_nhwc,
  /// 2–8 input and 1–8 output channels per group: vectorised across groups.
  small_group_nhwc,
  /// Output channels per group filling vectors (ResNeXt's 16–64, dense convs): register tiles of
  /// pixels × output-channel vectors.
  large_group_nhwc,
  /// 1×1 kernels (ShuffleNet, MobileNet pointwise): the large-group tiles as a GEMM per group.
  pointwise_nhwc,
};

[[nodiscard]] constexpr const char* to_string(conv2d_path path) noexcept {
  switch (path) {
    case conv2d_path::generic_nhwc:
      return "generic_nhwc";
    case conv2d_path::depthwise_nhwc:
      return "depthwise_nhwc";
    case conv2d_path::small_group_nhwc:
      return "small_group_nhwc";
    case conv2d_path::large_group_nhwc:
      return "large_group_nhwc";
    case conv2d_path::pointwise_nhwc:
      return "pointwise_nhwc";
  }
  return "?";
}

namespace detail {

/// The path for T and a weight of O×I/g×KH×KW in `groups` groups. Depends on the weight, the
/// groups and the build's vector width only (not on the image size), so a plan packs once for
/// every input it will see.
///   - I/g = 1: depthwise.
///   - I/g and O/g in [1, 8] (I/g ≥ 2), when the groups fill the lanes at least as well as the
///     group's outputs would (groups / (L·⌈groups/L⌉) ≥ (O/g) / (L·⌈(O/g)/L⌉)): small groups.
///   - otherwise 1×1 kernels: pointwise; O/g ≥ L/2, or one group (a padded vector — half a
///     register for at most L/2 outputs — beats scalar loops when there are no groups to
///     vectorise across: a 3-channel stem's input gradient): large groups; the rest: generic.
template <class T>
constexpr conv2d_path choose_conv2d_path(index_t groups, index_t in_per_group,
                                         index_t out_per_group, index_t kernel_h,
                                         index_t kernel_w) noexcept {
  constexpr index_t lanes = simd<T>::lanes;
  if (in_per_group == 1) return conv2d_path::depthwise_nhwc;
  const auto fill = [](index_t n) {  // used fraction of the lanes, as n / (L·⌈n/L⌉), scaled
    return static_cast<double>(n) / static_cast<double>((n + lanes - 1) / lanes * lanes);
  };
  if (in_per_group <= small_group_max_channels && out_per_group <= small_group_max_channels &&
      groups >= 2 && fill(groups) >= fill(out_per_group)) {
    return conv2d_path::small_group_nhwc;
  }
  if (kernel_h == 1 && kernel_w == 1) return conv2d_path::pointwise_nhwc;
  if (2 * out_per_group >= lanes || groups == 1) return conv2d_path::large_group_nhwc;
  return conv2d_path::generic_nhwc;
}

/// Elements of `path`'s packed weight (at least O·I/g·KH·KW; the vector paths pad with zeros).
template <class T>
index_t packed_weight_size(conv2d_path path, const conv2d_geometry& g) noexcept {
  switch (path) {
    case conv2d_path::small_group_nhwc:
      return small_group_packed_size<T>(g);
    case conv2d_path::large_group_nhwc:
    case conv2d_path::pointwise_nhwc:
      return blocked_packed_size<T>(g);
    case conv2d_path::depthwise_nhwc:
    case conv2d_path::generic_nhwc:
      break;
  }
  return g.out_channels * g.in_per_group * g.kernel_h * g.kernel_w;
}

/// Packs the weight, read as `w(o, i, ky, kx)`, in `path`'s order into packed_weight_size
/// elements.
template <class T, class WeightAt>
void pack_conv2d_weights(conv2d_path path, const conv2d_geometry& g, WeightAt w, T* packed) {
  switch (path) {
    case conv2d_path::depthwise_nhwc:
      pack_depthwise_weights(g, w, packed);
      return;
    case conv2d_path::generic_nhwc:
      pack_generic_weights(g, w, packed);
      return;
    case conv2d_path::small_group_nhwc:
      pack_small_group_weights(g, w, packed);
      return;
    case conv2d_path::large_group_nhwc:
    case conv2d_path::pointwise_nhwc:
      pack_blocked_weights(g, w, packed);
      return;
  }
}

/// How a path reads its input image: `pixel` elements per pixel, pixels row-major, channel c of
/// a pixel at slot(c). NHWC: pixel = C, slot(c) = c. The small-group path interleaves groups.
struct image_layout {
  index_t pixel = 0;
  bool interleaved = false;  // slot(c) = small_group_channel_slot, else c

  [[nodiscard]] bool is_nhwc() const noexcept { return !interleaved; }
};

/// The blocked paths read g.in_channels only as the distance between pixels, so they can read a
/// channel slice of an NHWC tensor in place (conv_rows_execute's `strided_pixels`).
constexpr bool reads_strided_pixels(conv2d_path path) noexcept {
  return path == conv2d_path::large_group_nhwc || path == conv2d_path::pointwise_nhwc;
}

template <class T>
image_layout path_image_layout(conv2d_path path, const conv2d_geometry& g) noexcept {
  if (path == conv2d_path::small_group_nhwc) return {small_group_pixel_size<T>(g), true};
  return {g.in_channels, false};
}

/// row[ox·O + o] (no bias, no epilogue) for output row oy of one image in the path's layout.
/// `finite_weights`: every packed weight is finite (lets the vector paths run border pixels in
/// tiles, see blocked_tile).
template <class T>
void conv2d_row(conv2d_path path, const conv2d_geometry& g, const T* image, const T* packed,
                index_t oy, T* row, bool finite_weights) {
  switch (path) {
    case conv2d_path::depthwise_nhwc:
      dwconv_nhwc_row(g, image, packed, oy, row, finite_weights);
      return;
    case conv2d_path::generic_nhwc:
      conv2d_generic_nhwc_row_any(g, image, packed, oy, row);
      return;
    case conv2d_path::small_group_nhwc:
      small_group_nhwc_row(g, image, packed, oy, row, finite_weights);
      return;
    case conv2d_path::large_group_nhwc:
    case conv2d_path::pointwise_nhwc:
      blocked_nhwc_row(g, image, packed, oy, row, finite_weights);
      return;
  }
}

}  // namespace detail
CVK_END_NAMESPACE
