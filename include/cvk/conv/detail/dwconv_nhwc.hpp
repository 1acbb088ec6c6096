// cvk — computer-vision kernels, header-only C++20.
// dwconv_nhwc_row: depthwise conv (one input channel per group, channel multiplier M), NHWC,
// vectorized across channels. Weights packed [ky][kx][o], o = c·M + m (the output channel order
// of PyTorch's grouped conv). With M = 1, whole vectors of channels run in register tiles
// (dwconv_tile: P output pixels × V channel vectors accumulated over all taps before one store,
// so each weight vector is loaded once per P outputs — the ur_w blocking of oneDNN's jit_uni_dw),
// split and bordered by row_tiles.hpp; the channel tail and M > 1 take the per-pixel loop. Each
// output is summed over its valid taps in (ky, kx) order, so the split changes no bit.
// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <type_traits>
#include <utility>

#include "../../core/config.hpp"
#include "../../core/strided_view.hpp"
#include "../../detail/simd.hpp"
#include "geometry.hpp"
#include "row_tiles.hpp"

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

/// P pixels from `ox` × V vectors of channels from c0 (multiplier 1), over kernel rows `ky` and
/// columns `kx`: every tap inside the image unless Border (then zeros outside it, row_tiles.hpp).
/// Per tap: V weight loads, P·V input loads, P·V FMAs.
template <class T, std::size_t V, std::size_t P, bool Border>
void dwconv_tile(const conv2d_geometry& g, const T* image, const T* packed, tap_range ky,
                 tap_range kx, index_t iy0, index_t ox, index_t c0, T* row) {
  using vec = simd<T>;
  using native = typename vec::native;
  constexpr index_t lanes = vec::lanes;
  const index_t channels = g.in_channels;
  const index_t pixel_step = g.stride_w * channels;
  native acc[P][V];
  CVK_UNROLL
  for (std::size_t p = 0; p < P; ++p) {
    CVK_UNROLL
    for (std::size_t v = 0; v < V; ++v) acc[p][v] = vec::zero();
  }
  const index_t ix0 = ox * g.stride_w - g.pad_left;
  for (index_t k = ky.begin; k < ky.end; ++k) {
    const T* x_row = image + (iy0 + k * g.dilation_h) * g.in_width * channels + c0;
    const T* w_row = packed + k * g.kernel_w * channels + c0;
    for (index_t j = kx.begin; j < kx.end; ++j) {
      const index_t ix = ix0 + j * g.dilation_w;
      native wv[V];
      CVK_UNROLL
      for (std::size_t v = 0; v < V; ++v) {
        wv[v] = vec::load(w_row + j * channels + static_cast<index_t>(v) * lanes);
      }
      CVK_UNROLL
      for (std::size_t p = 0; p < P; ++p) {
        const T* x = tile_pixel<Border>(g, x_row + ix * channels, pixel_step, ix,
                                        static_cast<index_t>(p), conv_zeros<T>);
        CVK_UNROLL
        for (std::size_t v = 0; v < V; ++v) {
          acc[p][v] = vec::fma(vec::load(x + static_cast<index_t>(v) * lanes), wv[v], acc[p][v]);
        }
      }
    }
  }
  CVK_UNROLL
  for (std::size_t p = 0; p < P; ++p) {
    T* out = row + (ox + static_cast<index_t>(p)) * channels + c0;
    CVK_UNROLL
    for (std::size_t v = 0; v < V; ++v)
      vec::store(out + static_cast<index_t>(v) * lanes, acc[p][v]);
  }
}

/// dwconv_tile for a kernel KW columns wide with horizontal stride S and no horizontal dilation
/// (3×3 at stride 1 or 2: MobileNet's depthwise layers). Walks the tile's input columns once —
/// S·(P−1) + KW of them instead of P·KW — loading each column's vectors once and feeding every
/// (pixel, tap) that reads it from registers. For each output the taps still arrive in
/// (ky, kx) order (column S·p + kx grows with kx), so the result equals dwconv_tile's bit for bit.
template <class T, std::size_t V, std::size_t P, bool Border, std::size_t S, std::size_t KW>
void dwconv_tile_sliding(const conv2d_geometry& g, const T* image, const T* packed, tap_range ky,
                         index_t iy0, index_t ox, index_t c0, T* row) {
  using vec = simd<T>;
  using native = typename vec::native;
  constexpr index_t lanes = vec::lanes;
  constexpr std::size_t columns = S * (P - 1) + KW;
  const index_t channels = g.in_channels;
  native acc[P][V];
  CVK_UNROLL
  for (std::size_t p = 0; p < P; ++p) {
    CVK_UNROLL
    for (std::size_t v = 0; v < V; ++v) acc[p][v] = vec::zero();
  }
  const index_t ix0 = ox * static_cast<index_t>(S) - g.pad_left;
  for (index_t k = ky.begin; k < ky.end; ++k) {
    const T* x_row = image + (iy0 + k * g.dilation_h) * g.in_width * channels + c0;
    const T* w_row = packed + k * static_cast<index_t>(KW) * channels + c0;
    native wv[KW][V];
    CVK_UNROLL
    for (std::size_t j = 0; j < KW; ++j) {
      CVK_UNROLL
      for (std::size_t v = 0; v < V; ++v) {
        wv[j][v] =
            vec::load(w_row + static_cast<index_t>(j) * channels + static_cast<index_t>(v) * lanes);
      }
    }
    // Every column and tap index a compile-time constant (an index_sequence, not a loop: the
    // S·(P−1)+KW columns exceed what an unroll pragma promises, and a rolled loop would put
    // the accumulators in memory).
    const auto column = [&](auto col_constant) {
      constexpr std::size_t col = decltype(col_constant)::value;
      const index_t ix = ix0 + static_cast<index_t>(col);
      const T* x =
          tile_pixel<Border>(g, x_row + ix * channels, index_t{0}, ix, index_t{0}, conv_zeros<T>);
      native xv[V];
      CVK_UNROLL
      for (std::size_t v = 0; v < V; ++v) xv[v] = vec::load(x + static_cast<index_t>(v) * lanes);
      // Taps j ascending: output p = (col − j) / S when that divides and p < P.
      [&]<std::size_t... J>(std::index_sequence<J...>) {
        const auto tap = [&](auto j_constant) {
          constexpr std::size_t j = decltype(j_constant)::value;
          if constexpr (col >= j && (col - j) % S == 0 && (col - j) / S < P) {
            constexpr std::size_t p = (col - j) / S;
            CVK_UNROLL
            for (std::size_t v = 0; v < V; ++v) acc[p][v] = vec::fma(xv[v], wv[j][v], acc[p][v]);
          }
        };
        (tap(std::integral_constant<std::size_t, J>{}), ...);
      }
      (std::make_index_sequence<KW>{});
    };
    [&]<std::size_t... C>(std::index_sequence<C...>) {
      (column(std::integral_constant<std::size_t, C>{}), ...);
    }
    (std::make_index_sequence<columns>{});
  }
  CVK_UNROLL
  for (std::size_t p = 0; p < P; ++p) {
    T* out = row + (ox + static_cast<index_t>(p)) * channels + c0;
    CVK_UNROLL
    for (std::size_t v = 0; v < V; ++v)
      vec::store(out + static_cast<index_t>(v) * lanes, acc[p][v]);
  }
}

/// One tile of `Q` pixels from `start` × V vectors of channels from c0: the sliding 3-column
/// kernel for 3-wide kernels at stride 1 or 2 without horizontal dilation (V ≤ 2: 3 weight
/// vectors per channel vector stay in registers), else dwconv_tile.
template <class T, std::size_t V, std::size_t Q>
void dwconv_tile_any(const conv2d_geometry& g, const T* image, const T* packed, tap_range ky,
                     index_t iy0, index_t start, bool border, index_t c0, T* row) {
  if constexpr (V <= 2) {
    if (g.kernel_w == 3 && g.dilation_w == 1 && (g.stride_w == 1 || g.stride_w == 2)) {
      const auto sliding = [&](auto stride) {
        constexpr std::size_t s = decltype(stride)::value;
        if (border) {
          dwconv_tile_sliding<T, V, Q, true, s, 3>(g, image, packed, ky, iy0, start, c0, row);
        } else {
          dwconv_tile_sliding<T, V, Q, false, s, 3>(g, image, packed, ky, iy0, start, c0, row);
        }
      };
      if (g.stride_w == 1) return sliding(std::integral_constant<std::size_t, 1>{});
      return sliding(std::integral_constant<std::size_t, 2>{});
    }
  }
  const tap_range all{0, g.kernel_w};
  if (border) {
    dwconv_tile<T, V, Q, true>(g, image, packed, ky, all, iy0, start, c0, row);
  } else {
    dwconv_tile<T, V, Q, false>(g, image, packed, ky, all, iy0, start, c0, row);
  }
}

/// The first `vectors` channel vectors of output row oy (for_each_row_tile's split). Pixels
/// outer, channels inner: a tile's input columns (all channels) are read from memory once and
/// stay in L1 while every channel chunk of V vectors — then one of V/2, then one vector — uses
/// them; channel chunks outer would stream each input row from L2 once per chunk.
template <class T, std::size_t V>
void dwconv_row_vectors(const conv2d_geometry& g, const T* image, const T* packed, tap_range ky,
                        index_t iy0, tap_range interior, bool zero_taps, index_t vectors, T* row) {
  constexpr index_t lanes = simd<T>::lanes;
  constexpr index_t wide = static_cast<index_t>(V);
  for_each_row_tile<tile_pixels<V>>(
      g, interior, zero_taps,
      [&](index_t start, auto size, bool border) {
        constexpr std::size_t q = decltype(size)::value;
        index_t v0 = 0;
        for (; vectors - v0 >= wide; v0 += wide) {
          dwconv_tile_any<T, V, q>(g, image, packed, ky, iy0, start, border, v0 * lanes, row);
        }
        if constexpr (V > 2) {
          if (vectors - v0 >= 2) {
            dwconv_tile_any<T, 2, q>(g, image, packed, ky, iy0, start, border, v0 * lanes, row);
            v0 += 2;
          }
        }
        if constexpr (V > 1) {
          if (vectors - v0 >= 1) {
            dwconv_tile_any<T, 1, q>(g, image, packed, ky, iy0, start, border, v0 * lanes, row);
          }
        }
      },
      [&](index_t ox) {
        const tap_range kx =
            valid_taps(ox * g.stride_w - g.pad_left, g.kernel_w, g.dilation_w, g.in_width);
        index_t v0 = 0;
        for (; vectors - v0 >= wide; v0 += wide) {
          dwconv_tile<T, V, 1, false>(g, image, packed, ky, kx, iy0, ox, v0 * lanes, row);
        }
        for (; v0 < vectors; ++v0) {
          dwconv_tile<T, 1, 1, false>(g, image, packed, ky, kx, iy0, ox, v0 * lanes, row);
        }
      });
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

/// row[ox·O + o] for output row oy of one contiguous H×W×C image. Multiplier 1: whole vectors of
/// channels in register tiles (chunks of up to 2 vectors), the channel tail and multipliers > 1
/// per pixel. `finite_weights`: border pixels may run in tiles reading zeros (row_tiles.hpp).
template <class T>
void dwconv_nhwc_row(const conv2d_geometry& g, const T* image, const T* packed, index_t oy, T* row,
                     bool finite_weights) {
  constexpr index_t lanes = simd<T>::lanes;
  const index_t iy0 = oy * g.stride_h - g.pad_top;
  const tap_range ky = valid_taps(iy0, g.kernel_h, g.dilation_h, g.in_height);
  const index_t outs = g.out_channels;
  const tap_range interior = interior_columns(g);
  const bool zero_taps = finite_weights;  // tiles read at most 4·L zeros
  const index_t vectors = g.out_per_group == 1 ? outs / lanes : 0;
  // The sliding 3-column tiles keep 3 weight vectors per channel vector: at most 2 of those.
  const bool sliding = g.kernel_w == 3 && g.dilation_w == 1 && (g.stride_w == 1 || g.stride_w == 2);
  if (!sliding && vectors >= 4) {
    dwconv_row_vectors<T, 4>(g, image, packed, ky, iy0, interior, zero_taps, vectors, row);
  } else if (vectors >= 2) {
    dwconv_row_vectors<T, 2>(g, image, packed, ky, iy0, interior, zero_taps, vectors, row);
  } else if (vectors == 1) {
    dwconv_row_vectors<T, 1>(g, image, packed, ky, iy0, interior, zero_taps, vectors, row);
  }
  const index_t tail = vectors * lanes;
  if (tail < outs) {
    for (index_t ox = 0; ox < g.out_width; ++ox) {
      dwconv_nhwc_pixel(g, image, packed, ky, iy0, ox, tail, outs, row);
    }
  }
}

}  // namespace detail
CVK_END_NAMESPACE
