// cvk — computer-vision kernels, header-only C++20.
// The one transposed-convolution kernel: conv2d_backward_input and conv_transpose2d both run it.
// Gather form: each element of the result (a conv2d's input gradient) is summed by one thread,
//   dX[n, y, x, grp·I/g + i] = Σ_{ky, kx} Σ_{o < O/g} w[grp·O/g + o, i, ky, kx]
//                                         · dY[n, (y + pt − ky·dh) / sh, (x + pl − kx·dw) / sw, ·]
// over the taps whose quotients are exact and inside dY, so there are no races and no scatter.
// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <utility>
#include <vector>

#include "../../core/config.hpp"
#include "../../core/strided_view.hpp"
#include "../../detail/checks.hpp"
#include "conv2d_run.hpp"
#include "geometry.hpp"

CVK_BEGIN_NAMESPACE
namespace detail {

/// The output positions [first, last) of a conv axis whose tap at offset `tap_offset`
/// (k·d − pad_begin) lands inside an input of `in` elements: 0 <= o·stride + tap_offset < in,
/// 0 <= o < out. Lets the gradient loops run over exactly the taps that reach the image.
inline std::pair<index_t, index_t> tap_outputs(index_t out, index_t in, index_t stride,
                                               index_t tap_offset) noexcept {
  const index_t first = tap_offset >= 0 ? 0 : (stride - 1 - tap_offset) / stride;
  const index_t top = in - 1 - tap_offset;  // the largest o·stride that stays inside
  if (top < 0) return {0, 0};
  const index_t last = std::min(out, top / stride + 1);
  return {first, std::max(first, last)};
}

/// Packs a conv2d weight (read as w(o, i, ky, kx), O×I/g×KH×KW) in [ky][kx][o][i]: for one tap
/// the weights of every output channel follow each other, and the I/g values an output channel
/// feeds back are contiguous — the innermost loop of the gather.
template <class T, class WeightAt>
void pack_transpose_weights(const conv2d_geometry& g, WeightAt w, T* packed) {
  for (index_t ky = 0; ky < g.kernel_h; ++ky) {
    for (index_t kx = 0; kx < g.kernel_w; ++kx) {
      for (index_t o = 0; o < g.out_channels; ++o) {
        for (index_t i = 0; i < g.in_per_group; ++i) *packed++ = w(o, i, ky, kx);
      }
    }
  }
}

/// row[x·I + c] = dX[y, x, c] (no bias) for row y of the input gradient of the conv2d of
/// geometry g, from one contiguous Ho×Wo×O image `grad_out`. Each element is summed over
/// (ky, kx, o) in that order whatever the thread count.
template <class T>
void conv_transpose_nhwc_row(const conv2d_geometry& g, const T* grad_out, const T* packed,
                             index_t y, T* row) {
  const index_t channels = g.in_channels, outs = g.out_channels;
  const index_t ig = g.in_per_group, og = g.out_per_group;
  const index_t tap_size = outs * ig;
  std::fill(row, row + g.in_width * channels, T(0));
  for (index_t ky = 0; ky < g.kernel_h; ++ky) {
    const index_t ty = y + g.pad_top - ky * g.dilation_h;
    if (ty < 0) break;  // ty falls as ky grows
    if (ty % g.stride_h != 0 || ty / g.stride_h >= g.out_height) continue;
    const T* dy_row = grad_out + (ty / g.stride_h) * g.out_width * outs;
    for (index_t kx = 0; kx < g.kernel_w; ++kx) {
      // Each x takes exactly one ox per tap: x = ox·sw + kx·dw − pl.
      const index_t offset = kx * g.dilation_w - g.pad_left;
      const auto [first, last] = tap_outputs(g.out_width, g.in_width, g.stride_w, offset);
      const T* w_tap = packed + (ky * g.kernel_w + kx) * tap_size;
      for (index_t ox = first; ox < last; ++ox) {
        T* __restrict acc = row + (ox * g.stride_w + offset) * channels;
        const T* __restrict dy = dy_row + ox * outs;
        if (ig == 1 && og == 1) {  // depthwise: one product per channel, unit stride
          for (index_t c = 0; c < channels; ++c) acc[c] += dy[c] * w_tap[c];
          continue;
        }
        for (index_t grp = 0; grp < g.groups; ++grp) {
          T* __restrict a = acc + grp * ig;
          for (index_t o = grp * og; o < (grp + 1) * og; ++o) {
            const T d = dy[o];
            const T* __restrict w = w_tap + o * ig;
            for (index_t i = 0; i < ig; ++i) a[i] += d * w[i];
          }
        }
      }
    }
  }
}

/// The extents of a transposed conv read as conv_rows_execute's: dY (g's output) is the image
/// the rows are made from, dX (g's input) the result; O/g taps per result element and tap.
inline conv2d_geometry transposed_rows(const conv2d_geometry& g) noexcept {
  conv2d_geometry t;
  t.batch = g.batch;
  t.in_channels = g.out_channels;
  t.in_height = g.out_height;
  t.in_width = g.out_width;
  t.out_channels = g.in_channels;
  t.out_height = g.in_height;
  t.out_width = g.in_width;
  t.groups = g.groups;
  t.in_per_group = g.out_per_group;
  t.out_per_group = g.in_per_group;
  t.kernel_h = g.kernel_h;
  t.kernel_w = g.kernel_w;
  return t;
}

/// out = act(dX + bias) where dX is the input gradient of the conv2d of geometry g for the
/// output gradient `grad_out`, with the conv2d weight `weight`; all views (n, c, h, w)- and
/// (o, i, ky, kx)-ordered, any strides. `bias` holds g.in_channels values. g.out_height and
/// g.out_width are grad_out's extents.
template <class T>
void conv_transpose_execute(const conv2d_geometry& g, const strided_view<const T, 4>& weight,
                            const strided_view<const T, 4>& grad_out, const T* bias,
                            const strided_view<T, 4>& out, const conv2d_params& params,
                            const char* fn) {
  const index_t count = g.out_channels * g.in_per_group * g.kernel_h * g.kernel_w;  // checked
  std::vector<T> packed = checked_vector<T>(count, fn, "the packed weight", weight);
  pack_transpose_weights(
      g, [&](index_t o, index_t i, index_t ky, index_t kx) { return weight(o, i, ky, kx); },
      packed.data());
  const conv2d_geometry rows = transposed_rows(g);
  conv_rows_execute<T>(rows, image_layout{rows.in_channels, false}, bias, fn, grad_out,
                       strided_view<const T, 4>{}, out, params,
                       [&](const T* image, index_t y, T* row) {
                         conv_transpose_nhwc_row(g, image, packed.data(), y, row);
                       });
}

}  // namespace detail
CVK_END_NAMESPACE
