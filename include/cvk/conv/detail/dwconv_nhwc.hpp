// cvk — computer-vision kernels, header-only C++20.
// dwconv_nhwc_row: depthwise conv (one input channel per group, channel multiplier M), NHWC,
// vectorized across channels. Weights packed [ky][kx][o], o = c·M + m (the output channel order
// of PyTorch's grouped conv). Interior pixels (every tap inside the image) run a register-blocked
// microkernel, dwconv_nhwc_block: `Pixels` output pixels × `Lanes` channels accumulated over all
// taps before one store, so each weight vector is loaded once per `Pixels` outputs (the ur_w
// blocking of oneDNN's jit_uni_dw); border pixels and the channel tail take the per-pixel loop.
// Both sum each output over the valid taps in (ky, kx) order, so the split changes no bit.
// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>

#include "../../core/config.hpp"
#include "../../core/strided_view.hpp"
#include "geometry.hpp"

CVK_BEGIN_NAMESPACE
namespace detail {

/// Packs an O×1×KH×KW depthwise weight (read through `w(o, 0, ky, kx)`) as [ky][kx][o].
template <class T, class WeightAt>
void pack_depthwise_weights(const conv2d_geometry& g, WeightAt w, T* packed) {
  for (index_t ky = 0; ky < g.kernel_h; ++ky) {
    for (index_t kx = 0; kx < g.kernel_w; ++kx) {
      for (index_t o = 0; o < g.out_channels; ++o) *packed++ = w(o, 0, ky, kx);
    }
  }
}

/// Channels per microkernel block: 64 bytes, one AVX-512 register (two AVX2 ones).
template <class T>
inline constexpr index_t dwconv_lanes = static_cast<index_t>(64 / sizeof(T));
/// Output pixels per microkernel call.
inline constexpr index_t dwconv_pixels = 4;

/// Valid kernel rows of output row oy: [ky_begin, ky_end).
struct tap_range {
  index_t begin = 0, end = 0;
};

inline tap_range valid_taps(index_t origin, index_t kernel, index_t dilation, index_t extent) {
  tap_range r{0, kernel};
  while (r.begin < kernel && origin + r.begin * dilation < 0) ++r.begin;
  while (r.end > r.begin && origin + (r.end - 1) * dilation >= extent) --r.end;
  return r;
}

/// First and one-past-last output column whose taps all lie inside the image.
inline tap_range interior_columns(const conv2d_geometry& g) noexcept {
  const auto inside = [&](index_t ox) {
    const index_t ix0 = ox * g.stride_w - g.pad_left;
    return ix0 >= 0 && ix0 + (g.kernel_w - 1) * g.dilation_w < g.in_width;
  };
  tap_range r{0, 0};
  while (r.begin < g.out_width && !inside(r.begin)) ++r.begin;
  r.end = r.begin;
  while (r.end < g.out_width && inside(r.end)) ++r.end;
  return r;
}

/// `Pixels` interior output pixels starting at ox, channels [c0, c0 + Lanes); multiplier 1.
template <class T, index_t Pixels, index_t Lanes>
void dwconv_nhwc_block(const conv2d_geometry& g, const T* image, const T* packed, tap_range ky,
                       index_t iy0, index_t ox, index_t c0, T* row) {
  const index_t channels = g.in_channels;
  T acc[static_cast<std::size_t>(Pixels)][static_cast<std::size_t>(Lanes)] = {};
  for (index_t k = ky.begin; k < ky.end; ++k) {
    const T* x_row = image + (iy0 + k * g.dilation_h) * g.in_width * channels + c0;
    const T* w_row = packed + k * g.kernel_w * channels + c0;
    for (index_t kx = 0; kx < g.kernel_w; ++kx) {
      const T* w = w_row + kx * channels;
      CVK_UNROLL
      for (index_t p = 0; p < Pixels; ++p) {
        const T* x = x_row + ((ox + p) * g.stride_w - g.pad_left + kx * g.dilation_w) * channels;
        CVK_UNROLL
        for (index_t c = 0; c < Lanes; ++c) acc[p][c] += x[c] * w[c];
      }
    }
  }
  CVK_UNROLL
  for (index_t p = 0; p < Pixels; ++p) {
    T* out = row + (ox + p) * channels + c0;
    CVK_UNROLL
    for (index_t c = 0; c < Lanes; ++c) out[c] = acc[p][c];
  }
}

/// One output pixel, output channels [o_begin, o_end), any multiplier; accumulates into row.
template <class T>
void dwconv_nhwc_pixel(const conv2d_geometry& g, const T* image, const T* packed, tap_range ky,
                       index_t iy0, index_t ox, index_t o_begin, index_t o_end, T* row) {
  const index_t channels = g.in_channels;
  const index_t outs = g.out_channels;
  const index_t multiplier = g.out_per_group;
  const index_t ix0 = ox * g.stride_w - g.pad_left;
  const tap_range kx = valid_taps(ix0, g.kernel_w, g.dilation_w, g.in_width);
  T* __restrict acc = row + ox * outs;
  std::fill(acc + o_begin, acc + o_end, T(0));
  for (index_t k = ky.begin; k < ky.end; ++k) {
    const T* x_row = image + (iy0 + k * g.dilation_h) * g.in_width * channels;
    for (index_t j = kx.begin; j < kx.end; ++j) {
      const T* x = x_row + (ix0 + j * g.dilation_w) * channels;
      const T* __restrict w = packed + (k * g.kernel_w + j) * outs;
      if (multiplier == 1) {
        for (index_t o = o_begin; o < o_end; ++o) acc[o] += x[o] * w[o];
      } else {
        for (index_t o = o_begin; o < o_end; ++o) acc[o] += x[o / multiplier] * w[o];
      }
    }
  }
}

/// row[ox·O + o] for output row oy of one contiguous H×W×C image.
template <class T>
void dwconv_nhwc_row(const conv2d_geometry& g, const T* image, const T* packed, index_t oy,
                     T* row) {
  const index_t iy0 = oy * g.stride_h - g.pad_top;
  const tap_range ky = valid_taps(iy0, g.kernel_h, g.dilation_h, g.in_height);
  const index_t outs = g.out_channels;
  const tap_range interior = interior_columns(g);  // every horizontal tap inside the image
  const index_t ox_begin = interior.begin, ox_end = interior.end;
  constexpr index_t lanes = dwconv_lanes<T>;
  const index_t blocked_channels = g.out_per_group == 1 ? outs / lanes * lanes : 0;
  const index_t blocked_end = ox_begin + (ox_end - ox_begin) / dwconv_pixels * dwconv_pixels;
  for (index_t ox = 0; ox < g.out_width; ++ox) {
    const bool blocked = ox >= ox_begin && ox < blocked_end;
    if (blocked && (ox - ox_begin) % dwconv_pixels == 0) {
      for (index_t c0 = 0; c0 < blocked_channels; c0 += lanes) {
        dwconv_nhwc_block<T, dwconv_pixels, lanes>(g, image, packed, ky, iy0, ox, c0, row);
      }
    }
    if (blocked) {
      dwconv_nhwc_pixel(g, image, packed, ky, iy0, ox, blocked_channels, outs, row);
    } else {
      dwconv_nhwc_pixel(g, image, packed, ky, iy0, ox, index_t{0}, outs, row);
    }
  }
}

}  // namespace detail
CVK_END_NAMESPACE
