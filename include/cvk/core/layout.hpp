// cvk — computer-vision kernels, header-only C++20.
// cvk::layout: the axis order of image-like rank-4 tensors (activations, gradients, images),
// shared by the convolution and saliency areas, and the helpers that map it to N, C, H, W.
// SPDX-License-Identifier: MIT
#pragma once

#include <array>
#include <cstddef>

#include "config.hpp"
#include "strided_view.hpp"

CVK_BEGIN_NAMESPACE

/// Axis order of rank-4 image-like tensors: N×C×H×W (PyTorch, ONNX) or N×H×W×C (TensorFlow,
/// XNNPACK, most inference engines' NHWC buffers).
enum class layout { nchw, nhwc };

namespace detail {

/// {N, C, H, W} of a tensor's extents in `l`.
inline std::array<index_t, 4> nchw_extents(const std::array<index_t, 4>& e, layout l) noexcept {
  return l == layout::nchw ? e : std::array<index_t, 4>{e[0], e[3], e[1], e[2]};
}

/// The extents in layout `l` of {N, C, H, W}.
inline std::array<index_t, 4> from_nchw(const std::array<index_t, 4>& e, layout l) noexcept {
  return l == layout::nchw ? e : std::array<index_t, 4>{e[0], e[2], e[3], e[1]};
}

/// Axis permutation: the view axis holding N, C, H, W (for permute_axes).
inline std::array<std::size_t, 4> nchw_axes(layout l) noexcept {
  return l == layout::nchw ? std::array<std::size_t, 4>{0, 1, 2, 3}
                           : std::array<std::size_t, 4>{0, 3, 1, 2};
}

/// The same elements with the axes reordered: result axis k is v's axis axes[k]
/// (`permute_axes(v, nchw_axes(l))` is the (n, c, h, w)-ordered view of a tensor in layout l).
template <class T>
strided_view<T, 4> permute_axes(const strided_view<T, 4>& v,
                                const std::array<std::size_t, 4>& axes) {
  return {v.data(),
          {v.extent(axes[0]), v.extent(axes[1]), v.extent(axes[2]), v.extent(axes[3])},
          {v.stride(axes[0]), v.stride(axes[1]), v.stride(axes[2]), v.stride(axes[3])}};
}

/// "N×C×H×W" or "N×H×W×C", for error messages.
inline const char* layout_pattern(layout l) noexcept {
  return l == layout::nchw ? "N×C×H×W" : "N×H×W×C";
}

}  // namespace detail

CVK_END_NAMESPACE
