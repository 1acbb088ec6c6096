// cvk — computer-vision kernels, header-only C++20.
// conv2d_generic_nhwc_row: the path that is correct for every shape. One output row of one image,
// NHWC input, weights packed [group][ky][kx][ci][co of the group]; the innermost loop runs over
// the output channels of a group, contiguous in both the weights and the row, so it vectorizes.
// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>

#include "../../core/config.hpp"
#include "../../core/strided_view.hpp"
#include "geometry.hpp"

CVK_BEGIN_NAMESPACE
namespace detail {

/// Packs an O×I/g×KH×KW weight (read through `w(o, i, ky, kx)`) into the generic path's order
/// [g][ky][kx][i][o % (O/g)].
template <class T, class WeightAt>
void pack_generic_weights(const conv2d_geometry& g, WeightAt w, T* packed) {
  const index_t og = g.out_per_group;
  for (index_t grp = 0; grp < g.groups; ++grp) {
    for (index_t ky = 0; ky < g.kernel_h; ++ky) {
      for (index_t kx = 0; kx < g.kernel_w; ++kx) {
        for (index_t i = 0; i < g.in_per_group; ++i) {
          for (index_t o = 0; o < og; ++o) *packed++ = w(grp * og + o, i, ky, kx);
        }
      }
    }
  }
}

/// row[ox·O + o] = Σ_{ky, kx, i} x[iy][ix][grp·I/g + i] · w[o][i][ky][kx] over the taps inside
/// the image, for output row `oy`; `image` is one H×W×C image, contiguous. The sum of each
/// output runs in (ky, kx, i) order whatever the thread count. `OutPerGroup` > 0 fixes O/g at
/// compile time (the inner loop then unrolls into whole vectors); 0 reads it from g.
template <class T, index_t OutPerGroup = 0>
void conv2d_generic_nhwc_row(const conv2d_geometry& g, const T* image, const T* packed, index_t oy,
                             T* row) {
  const index_t channels = g.in_channels;
  const index_t ig = g.in_per_group;
  const index_t og = OutPerGroup > 0 ? OutPerGroup : g.out_per_group;
  const index_t iy0 = oy * g.stride_h - g.pad_top;
  for (index_t grp = 0; grp < g.groups; ++grp) {
    const T* w_group = packed + grp * g.kernel_h * g.kernel_w * ig * og;
    for (index_t ox = 0; ox < g.out_width; ++ox) {
      const index_t ix0 = ox * g.stride_w - g.pad_left;
      // With O/g known at compile time the accumulators live in registers for all taps.
      T local[static_cast<std::size_t>(OutPerGroup > 0 ? OutPerGroup : 1)] = {};
      T* __restrict acc = OutPerGroup > 0 ? local : row + ox * g.out_channels + grp * og;
      if constexpr (OutPerGroup == 0) std::fill(acc, acc + og, T(0));
      for (index_t ky = 0; ky < g.kernel_h; ++ky) {
        const index_t iy = iy0 + ky * g.dilation_h;
        if (iy < 0 || iy >= g.in_height) continue;
        const T* x_row = image + iy * g.in_width * channels + grp * ig;
        for (index_t kx = 0; kx < g.kernel_w; ++kx) {
          const index_t ix = ix0 + kx * g.dilation_w;
          if (ix < 0 || ix >= g.in_width) continue;
          const T* x = x_row + ix * channels;
          const T* w_tap = w_group + (ky * g.kernel_w + kx) * ig * og;
          for (index_t i = 0; i < ig; ++i) {
            const T xv = x[i];
            const T* __restrict w = w_tap + i * og;
            for (index_t o = 0; o < og; ++o) acc[o] += xv * w[o];
          }
        }
      }
      if constexpr (OutPerGroup > 0) {
        std::copy(local, local + og, row + ox * g.out_channels + grp * og);
      }
    }
  }
}

/// conv2d_generic_nhwc_row with O/g fixed at compile time where it is a common small size.
template <class T>
void conv2d_generic_nhwc_row_any(const conv2d_geometry& g, const T* image, const T* packed,
                                 index_t oy, T* row) {
  switch (g.out_per_group) {
    case 2:
      return conv2d_generic_nhwc_row<T, 2>(g, image, packed, oy, row);
    case 4:
      return conv2d_generic_nhwc_row<T, 4>(g, image, packed, oy, row);
    case 8:
      return conv2d_generic_nhwc_row<T, 8>(g, image, packed, oy, row);
    case 16:
      return conv2d_generic_nhwc_row<T, 16>(g, image, packed, oy, row);
    default:
      return conv2d_generic_nhwc_row<T>(g, image, packed, oy, row);
  }
}

}  // namespace detail
CVK_END_NAMESPACE
