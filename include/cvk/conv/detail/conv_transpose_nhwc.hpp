// cvk — computer-vision kernels, header-only C++20.
// The one transposed-convolution kernel: conv2d_backward_input and conv_transpose2d both run it.
// The result (a conv2d's input gradient) splits into sh·sw phases of positions (py + sh·q,
// px + sw·r); each phase is a stride-1 forward conv2d of grad_output with a subset of the taps,
// flipped, and the channel roles of each group swapped, run by conv2d's own paths and row driver
// — so each element is summed by one thread in a fixed order (no scatter, no races), at the
// forward paths' speed. Also the expanded grad_output and the tap ranges of the weight gradient.
// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <cmath>
#include <memory>
#include <numeric>
#include <span>
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

/// grad_output (g's output, an (n, c, h, w)-ordered view of any strides) copied pixel by pixel
/// into source.size() values per pixel: value k of a pixel is its channel source[k], or zero
/// where source[k] < 0. The expanded and the padded layouts of the gradient loops.
template <class T>
layout_images<T> gather_grad_output(const conv2d_geometry& g, const std::vector<index_t>& source,
                                    const strided_view<const T, 4>& dy, const char* fn,
                                    const char* what, int threads) {
  const auto span = static_cast<index_t>(source.size());
  const index_t image = checked_mul(g.out_height * g.out_width, span, fn, what, dy);
  const index_t count = checked_mul(g.batch, image, fn, what, dy);
  layout_images<T> result;
  result.copy = checked_allocation<T>(count, fn, what, dy, [count] {
    return std::unique_ptr<T[]>(new T[static_cast<std::size_t>(count)]);
  });
  T* dst = result.copy.get();
  parallel_for(
      0, g.batch * g.out_height, 16,
      [&](index_t lo, index_t hi) {
        for (index_t r = lo; r < hi; ++r) {
          const index_t n = r / g.out_height, oy = r % g.out_height;
          for (index_t ox = 0; ox < g.out_width; ++ox) {
            T* d = dst + (r * g.out_width + ox) * span;
            const T* s = dy.data() + n * dy.stride(0) + oy * dy.stride(2) + ox * dy.stride(3);
            for (index_t k = 0; k < span; ++k) {
              const index_t c = source[static_cast<std::size_t>(k)];
              d[k] = c < 0 ? T(0) : s[c * dy.stride(1)];
            }
          }
        }
      },
      threads);
  result.data = dst;
  result.image_stride = image;
  return result;
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
  std::vector<index_t> source(static_cast<std::size_t>(
      checked_mul(og, channels, fn, "the expanded copy of grad_output", dy)));
  for (index_t ol = 0; ol < og; ++ol) {
    for (index_t c = 0; c < channels; ++c) {
      source[static_cast<std::size_t>(ol * channels + c)] = c / ig * og + ol;
    }
  }
  return gather_grad_output(g, source, dy, fn, "the expanded copy of grad_output", threads);
}

/// One axis of one phase of a transposed conv. The result positions y ≡ p (mod s) are reached by
/// the taps k with (p + pad − k·d) divisible by s: k = k0 + s'·j (s' = s / gcd(d, s)), j < J,
/// from grad_output positions q + c − d'·j (y = p + s·q, d' = d / gcd(d, s)) — a stride-1 conv
/// over grad_output with J taps of dilation d', flipped: padding d'·(J − 1) − c before it.
struct transpose_phase_axis {
  index_t first_tap = 0, tap_step = 1, taps = 0, dilation = 1, pad_begin = 0, count = 0;
};

inline transpose_phase_axis transpose_phase(index_t p, index_t result, index_t kernel,
                                            index_t stride, index_t dilation, index_t pad) {
  transpose_phase_axis a;
  a.count = p < result ? (result - p + stride - 1) / stride : 0;
  const index_t common = std::gcd(dilation, stride);
  a.tap_step = stride / common;
  a.dilation = dilation / common;
  a.first_tap = 0;
  const auto reaches = [&](index_t k) {
    return ((p + pad - k * dilation) % stride + stride) % stride == 0;
  };
  while (a.first_tap < std::min(kernel, a.tap_step) && !reaches(a.first_tap)) ++a.first_tap;
  if (a.first_tap >= std::min(kernel, a.tap_step)) return a;  // no tap reaches this phase
  a.taps = (kernel - 1 - a.first_tap) / a.tap_step + 1;
  const index_t reach = (p + pad - a.first_tap * dilation) / stride;  // exact
  a.pad_begin = a.dilation * (a.taps - 1) - reach;
  return a;
}

/// One phase (py, px) of the transposed conv of geometry g as a forward conv2d (stride 1) of
/// grad_out with the phase's taps of the weight, channel roles swapped within each group and
/// flipped,
///   w'[grp·I/g + i, o, jy, jx] = w[grp·O/g + o, i, ky0 + sy'·(Jy − 1 − jy), kx0 + ...],
/// written to the result positions (py + sh·q, px + sw·r). The forward path choose_conv2d_path
/// picks for w' packs it and its row kernel runs through conv_rows_execute, as conv2d's would.
/// A negative padding (the transposed conv's padding beyond the dilated kernel) only skips
/// grad_out's border: the row kernels read rows and columns inside the image only (valid_taps,
/// interior_columns). A phase no tap reaches is act(bias).
template <class T>
void conv_transpose_phase(const conv2d_geometry& g, const transpose_phase_axis& ay,
                          const transpose_phase_axis& ax, index_t py, index_t px,
                          const strided_view<const T, 4>& weight,
                          const strided_view<const T, 4>& grad_out, const T* bias,
                          const strided_view<T, 4>& out, const conv2d_params& params,
                          const char* fn) {
  if (ay.count == 0 || ax.count == 0) return;
  const strided_view<T, 4> part(
      out.data() + py * out.stride(2) + px * out.stride(3),
      {out.extent(0), out.extent(1), ay.count, ax.count},
      {out.stride(0), out.stride(1), out.stride(2) * g.stride_h, out.stride(3) * g.stride_w});
  if (ay.taps == 0 || ax.taps == 0) {
    const epilogue<T> act = make_epilogue<T>(params);
    for (index_t n = 0; n < part.extent(0); ++n) {
      for (index_t c = 0; c < part.extent(1); ++c) {
        for (index_t y = 0; y < part.extent(2); ++y) {
          for (index_t x = 0; x < part.extent(3); ++x) part(n, c, y, x) = act(T(0) + bias[c]);
        }
      }
    }
    return;
  }
  conv2d_geometry f = transposed_rows(g);
  f.out_height = ay.count;
  f.out_width = ax.count;
  f.kernel_h = ay.taps;
  f.kernel_w = ax.taps;
  f.dilation_h = ay.dilation;
  f.dilation_w = ax.dilation;
  f.pad_top = ay.pad_begin;
  f.pad_left = ax.pad_begin;
  f.pad_bottom = f.out_height - f.in_height + f.dilation_h * (f.kernel_h - 1) - f.pad_top;
  f.pad_right = f.out_width - f.in_width + f.dilation_w * (f.kernel_w - 1) - f.pad_left;
  const conv2d_path path =
      choose_conv2d_path<T>(f.groups, f.in_per_group, f.out_per_group, f.kernel_h, f.kernel_w);
  const index_t count = g.out_channels * g.in_per_group * g.kernel_h * g.kernel_w;  // checked
  // The vector paths pad groups or outputs to whole vectors: at most lanes × the weight.
  (void)checked_mul(count, simd<T>::lanes, fn, "the packed weight", weight);
  // Every packed value is written (the padding with zeros): no initialisation.
  const index_t packed_size = packed_weight_size<T>(path, f);
  const auto packed_buffer = checked_allocation<T>(
      packed_size, fn, "the packed weight", weight,
      [&] { return std::unique_ptr<T[]>(new T[static_cast<std::size_t>(packed_size)]); });
  const std::span<T> packed(packed_buffer.get(), static_cast<std::size_t>(packed_size));
  // The packers read w'(c, o, jy, jx) with c innermost: through tables of each result channel's
  // offset in the weight and each tap's, one load and two adds per value (no division).
  const index_t ig = g.in_per_group, og = g.out_per_group;
  std::vector<index_t> channel_at(static_cast<std::size_t>(g.in_channels));
  for (index_t c = 0; c < g.in_channels; ++c) {
    channel_at[static_cast<std::size_t>(c)] =
        c / ig * og * weight.stride(0) + c % ig * weight.stride(1);
  }
  std::vector<index_t> tap_at(static_cast<std::size_t>(f.kernel_h * f.kernel_w));
  for (index_t jy = 0; jy < f.kernel_h; ++jy) {
    for (index_t jx = 0; jx < f.kernel_w; ++jx) {
      tap_at[static_cast<std::size_t>(jy * f.kernel_w + jx)] =
          (ay.first_tap + ay.tap_step * (ay.taps - 1 - jy)) * weight.stride(2) +
          (ax.first_tap + ax.tap_step * (ax.taps - 1 - jx)) * weight.stride(3);
    }
  }
  const T* w = weight.data();
  pack_conv2d_weights(
      path, f,
      [&](index_t c, index_t o, index_t jy, index_t jx) {
        return w[channel_at[static_cast<std::size_t>(c)] + o * weight.stride(0) +
                 tap_at[static_cast<std::size_t>(jy * f.kernel_w + jx)]];
      },
      packed.data());
  const bool finite =
      std::all_of(packed.begin(), packed.end(), [](T v) { return std::isfinite(v); });
  conv_rows_execute<T>(f, path_image_layout<T>(path, f), bias, fn, grad_out,
                       strided_view<const T, 4>{}, part, params, reads_strided_pixels(path),
                       [&](const conv2d_geometry& gk, const T* image, index_t y, T* row) {
                         conv2d_row(path, gk, image, packed.data(), y, row, finite);
                       });
}

/// out = act(dX + bias) where dX is the input gradient of the conv2d of geometry g for the
/// output gradient `grad_out`, with the conv2d weight `weight`; all views (n, c, h, w)- and
/// (o, i, ky, kx)-ordered, any strides. `bias` holds g.in_channels values. g.out_height and
/// g.out_width are grad_out's extents. The sh·sw phases of the result (one for stride 1) each
/// run as a forward conv2d (conv_transpose_phase), so every element is summed by one thread over
/// the forward path's order of its taps and channels, whatever the thread count.
template <class T>
void conv_transpose_execute(const conv2d_geometry& g, const strided_view<const T, 4>& weight,
                            const strided_view<const T, 4>& grad_out, const T* bias,
                            const strided_view<T, 4>& out, const conv2d_params& params,
                            const char* fn) {
  // Phases p ≥ the result's extent hold no position: at most min(s, extent) per axis, so a
  // stride far larger than the image costs nothing (1000 × 10⁶ would be 10⁹ empty phases).
  const index_t phases_h = std::min(g.stride_h, g.in_height);
  const index_t phases_w = std::min(g.stride_w, g.in_width);
  for (index_t py = 0; py < phases_h; ++py) {
    const transpose_phase_axis ay =
        transpose_phase(py, g.in_height, g.kernel_h, g.stride_h, g.dilation_h, g.pad_top);
    for (index_t px = 0; px < phases_w; ++px) {
      const transpose_phase_axis ax =
          transpose_phase(px, g.in_width, g.kernel_w, g.stride_w, g.dilation_w, g.pad_left);
      conv_transpose_phase<T>(g, ay, ax, py, px, weight, grad_out, bias, out, params, fn);
    }
  }
}

}  // namespace detail
CVK_END_NAMESPACE
