// cvk — computer-vision kernels, header-only C++20.
// The one transposed-convolution kernel: conv2d_backward_input and conv_transpose2d both run it.
// Gather form: each element of the result (a conv2d's input gradient) is summed by one thread,
//   dX[n, y, x, grp·I/g + i] = Σ_{ky, kx} Σ_{o < O/g} w[grp·O/g + o, i, ky, kx]
//                                         · dY[n, (y + pt − ky·dh) / sh, (x + pl − kx·dw) / sw, ·]
// over the taps whose quotients are exact and inside dY, so there are no races and no scatter.
// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <memory>
#include <utility>
#include <vector>

#include "../../core/parallel.hpp"

#include "../../core/config.hpp"
#include "../../core/strided_view.hpp"
#include "../../detail/checks.hpp"
#include "conv2d_run.hpp"
#include "geometry.hpp"

CVK_BEGIN_NAMESPACE
namespace detail {

/// Channels the gradient loops sum in registers at a time: 128 bytes (two AVX-512 vectors).
template <class T>
inline constexpr index_t grad_lanes = static_cast<index_t>(128 / sizeof(T));

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

/// Small groups (fewer than 8 input channels per group): the innermost loop of the plain order
/// would be I/g long, so these run over all channels instead, reading grad_output expanded
/// (expand_grad_output) — I/g times its size, a layout pass that replaces the NHWC copy.
inline bool transpose_expands(const conv2d_geometry& g) noexcept { return g.in_per_group < 8; }

/// Packs a conv2d weight (read as w(o, i, ky, kx), O×I/g×KH×KW) per tap: plain,
/// [ky][kx][o][i] — the I/g values an output channel feeds back are contiguous; expanded,
/// [ky][kx][o % (O/g)][c] with c = group·I/g + i — for one in-group output index, every channel.
template <class T, class WeightAt>
void pack_transpose_weights(const conv2d_geometry& g, bool expanded, WeightAt w, T* packed) {
  const index_t ig = g.in_per_group, og = g.out_per_group;
  for (index_t ky = 0; ky < g.kernel_h; ++ky) {
    for (index_t kx = 0; kx < g.kernel_w; ++kx) {
      if (expanded) {
        for (index_t ol = 0; ol < og; ++ol) {
          for (index_t c = 0; c < g.in_channels; ++c)
            *packed++ = w(c / ig * og + ol, c % ig, ky, kx);
        }
        continue;
      }
      for (index_t o = 0; o < g.out_channels; ++o) {
        for (index_t i = 0; i < ig; ++i) *packed++ = w(o, i, ky, kx);
      }
    }
  }
}

/// The output gradient expanded for the small-group loops: element [n][oy][ox][ol][c] is
/// dY[n, (c / (I/g))·(O/g) + ol, oy, ox], the value channel c's group feeds through its ol-th
/// output channel; from an (n, c, h, w)-ordered view of any strides. Depthwise (I/g = O/g = 1):
/// plain NHWC, no copy when dY already is.
template <class T>
layout_images<T> expand_grad_output(const conv2d_geometry& g, const strided_view<const T, 4>& dy,
                                    const char* fn, int threads) {
  const index_t ig = g.in_per_group, og = g.out_per_group, channels = g.in_channels;
  if (ig == 1 && og == 1) {
    return to_image_layout(transposed_rows(g), image_layout{g.out_channels, false}, dy, fn,
                           "the NHWC copy of grad_output", threads);
  }
  const char* what = "the expanded copy of grad_output";
  const index_t span = checked_mul(og, channels, fn, what, dy);
  const index_t pixels = g.out_height * g.out_width;  // checked in resolve_conv2d
  const index_t image = checked_mul(pixels, span, fn, what, dy);
  const index_t count = checked_mul(g.batch, image, fn, what, dy);
  layout_images<T> result;
  result.copy = checked_allocation<T>(count, fn, what, dy, [count] {
    return std::unique_ptr<T[]>(new T[static_cast<std::size_t>(count)]);
  });
  std::vector<index_t> source(static_cast<std::size_t>(span));
  for (index_t ol = 0; ol < og; ++ol) {
    for (index_t c = 0; c < channels; ++c) {
      source[static_cast<std::size_t>(ol * channels + c)] = (c / ig * og + ol) * dy.stride(1);
    }
  }
  T* dst = result.copy.get();
  parallel_for(
      0, g.batch * g.out_height, 16,
      [&](index_t lo, index_t hi) {
        for (index_t r = lo; r < hi; ++r) {
          const index_t n = r / g.out_height, oy = r % g.out_height;
          for (index_t ox = 0; ox < g.out_width; ++ox) {
            T* d = dst + (r * g.out_width + ox) * span;
            const T* s = dy.data() + n * dy.stride(0) + oy * dy.stride(2) + ox * dy.stride(3);
            for (index_t k = 0; k < span; ++k) d[k] = s[source[static_cast<std::size_t>(k)]];
          }
        }
      },
      threads);
  result.data = dst;
  result.image_stride = image;
  return result;
}

/// One tap of one result pixel: the grad_output pixel it reads and the tap's packed weights.
template <class T>
struct gather_tap {
  const T* dy;
  const T* w;
};

/// out[l] = Σ over `taps` (in order) and, within a tap, over `rows` grad_output channels r, of
/// dy[d_channel + r·d_step (+ l)] · w[w_channel + r·w_step + l], for l < width (<= grad_lanes):
/// the grad_output factor is one channel for all l (ScalarD, the plain order) or the l-th of
/// `width` (the expanded order). With Width (= width) known at compile time the sums stay in
/// registers.
template <class T, bool ScalarD, index_t Width>
void gather_sum(const gather_tap<T>* taps, index_t tap_count, index_t rows, index_t d_channel,
                index_t d_step, index_t w_channel, index_t w_step, index_t width, T* out) {
  T sum[static_cast<std::size_t>(Width > 0 ? Width : grad_lanes<T>)] = {};
  const index_t lanes = Width > 0 ? Width : width;
  for (index_t k = 0; k < tap_count; ++k) {
    for (index_t r = 0; r < rows; ++r) {
      const T* __restrict d = taps[k].dy + d_channel + r * d_step;
      const T* __restrict w = taps[k].w + w_channel + r * w_step;
      for (index_t l = 0; l < lanes; ++l) {
        sum[static_cast<std::size_t>(l)] += (ScalarD ? d[0] : d[l]) * w[l];
      }
    }
  }
  std::copy(sum, sum + lanes, out);
}

/// gather_sum over `count` result channels, in chunks of grad_lanes.
template <class T, bool ScalarD>
void gather_sums(const gather_tap<T>* taps, index_t tap_count, index_t rows, index_t d_channel,
                 index_t d_step, index_t w_channel, index_t w_step, index_t count, T* out) {
  constexpr index_t lanes = grad_lanes<T>;
  for (index_t c = 0; c < count; c += lanes) {
    const index_t d_at = d_channel + (ScalarD ? 0 : c);
    if (count - c >= lanes) {
      gather_sum<T, ScalarD, lanes>(taps, tap_count, rows, d_at, d_step, w_channel + c, w_step,
                                    lanes, out + c);
    } else {
      gather_sum<T, ScalarD, 0>(taps, tap_count, rows, d_at, d_step, w_channel + c, w_step,
                                count - c, out + c);
    }
  }
}

/// row[x·I + c] = dX[y, x, c] (no bias) for row y of the input gradient of the conv2d of
/// geometry g, from one contiguous image of grad_out: Ho×Wo×O (plain) or Ho×Wo×(O/g)×I
/// (expanded, expand_grad_output), with the weight packed to match. Each element is summed over
/// (ky, kx, o) in that order, in registers, in both forms, whatever the thread count.
template <class T>
void conv_transpose_nhwc_row(const conv2d_geometry& g, bool expanded, const T* grad_out,
                             const T* packed, index_t y, T* row) {
  const index_t channels = g.in_channels, outs = g.out_channels;
  const index_t ig = g.in_per_group, og = g.out_per_group;
  const index_t tap_size = outs * ig;  // = O/g · I: one tap of either packing
  const index_t pixel = expanded ? og * channels : outs;
  // At most KH·KW taps per pixel; 64 on the stack covers every common kernel.
  constexpr index_t stack_taps = 64;
  gather_tap<T> on_stack[stack_taps];
  std::vector<gather_tap<T>> on_heap;
  gather_tap<T>* taps = on_stack;
  if (g.kernel_h * g.kernel_w > stack_taps) {
    on_heap.resize(static_cast<std::size_t>(g.kernel_h * g.kernel_w));
    taps = on_heap.data();
  }
  for (index_t x = 0; x < g.in_width; ++x) {
    index_t count = 0;
    for (index_t ky = 0; ky < g.kernel_h; ++ky) {
      const index_t ty = y + g.pad_top - ky * g.dilation_h;
      if (ty < 0) break;  // ty falls as ky grows
      if (ty % g.stride_h != 0 || ty / g.stride_h >= g.out_height) continue;
      const T* dy_row = grad_out + (ty / g.stride_h) * g.out_width * pixel;
      for (index_t kx = 0; kx < g.kernel_w; ++kx) {
        const index_t tx = x + g.pad_left - kx * g.dilation_w;
        if (tx < 0) break;
        if (tx % g.stride_w != 0 || tx / g.stride_w >= g.out_width) continue;
        taps[count++] = {dy_row + (tx / g.stride_w) * pixel,
                         packed + (ky * g.kernel_w + kx) * tap_size};
      }
    }
    T* out = row + x * channels;
    if (expanded) {  // every channel at once, one in-group output index after the other
      gather_sums<T, false>(taps, count, og, 0, channels, 0, channels, channels, out);
      continue;
    }
    for (index_t grp = 0; grp < g.groups; ++grp) {
      gather_sums<T, true>(taps, count, og, grp * og, 1, grp * og * ig, ig, ig, out + grp * ig);
    }
  }
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
  const bool expanded = transpose_expands(g);
  std::vector<T> packed = checked_vector<T>(count, fn, "the packed weight", weight);
  pack_transpose_weights(
      g, expanded,
      [&](index_t o, index_t i, index_t ky, index_t kx) { return weight(o, i, ky, kx); },
      packed.data());
  conv2d_geometry rows = transposed_rows(g);
  const auto row_kernel = [&](const T* image, index_t y, T* row) {
    conv_transpose_nhwc_row(g, expanded, image, packed.data(), y, row);
  };
  if (!expanded) {
    conv_rows_execute<T>(rows, image_layout{rows.in_channels, false}, bias, fn, grad_out,
                         strided_view<const T, 4>{}, out, params, row_kernel);
    return;
  }
  if (g.batch * g.in_height == 0 || g.in_width == 0 || g.in_channels == 0) return;
  // The expanded images, shown to the row driver as NHWC images of (O/g)·I channels.
  const layout_images<T> source = expand_grad_output(g, grad_out, fn, params.threads);
  rows.in_channels = g.out_per_group * g.in_channels;
  const strided_view<const T, 4> images(
      source.data, {g.batch, rows.in_channels, g.out_height, g.out_width},
      {source.image_stride, 1, g.out_width * rows.in_channels, rows.in_channels});
  conv_rows_execute<T>(rows, image_layout{rows.in_channels, false}, bias, fn, images,
                       strided_view<const T, 4>{}, out, params, row_kernel);
}

}  // namespace detail
CVK_END_NAMESPACE
