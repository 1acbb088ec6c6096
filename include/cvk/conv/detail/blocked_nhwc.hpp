// cvk — computer-vision kernels, header-only C++20.
// blocked_nhwc_row: the channel-blocked direct convolution behind the large_group_nhwc and
// pointwise_nhwc paths (and every group with enough output channels to fill a vector). NHWC
// input; weights packed [group][ky][kx][i][o of the group, padded to whole vectors]. The
// microkernel keeps a tile of P output pixels × V vectors of output channels in registers for all
// taps and input channels of the group: per (tap, i) it loads V weight vectors once and
// broadcasts P input values, so each weight load feeds P FMAs and each broadcast V (the
// register blocking of a GEMM microkernel, with the group as the batch and the taps unrolled
// instead of an im2col copy). Pixels whose taps all lie inside the image run in tiles of P (the
// last tile shifted back over already computed pixels, recomputing them bit for bit); border
// pixels run one at a time over their valid taps. Every output is summed over the valid taps in
// (ky, kx, i) order with one FMA each, whatever the tile, so the split changes no bit.
// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <cstring>
#include <type_traits>

#include "../../core/config.hpp"
#include "../../core/strided_view.hpp"
#include "../../detail/simd.hpp"
#include "geometry.hpp"
#include "row_tiles.hpp"

CVK_BEGIN_NAMESPACE
namespace detail {

/// Output channels of a group rounded up to whole vectors of T — or to half a vector
/// (simd_half) when the group has no more outputs than that: 8 outputs per group take one ymm
/// FMA per tap in an AVX-512 float build, not a zmm of which half is zeros. (A half vector
/// after whole ones would cost a second pass over the tile's inputs, so larger groups keep
/// whole vectors.)
template <class T>
constexpr index_t blocked_padded_outputs(index_t out_per_group) noexcept {
  constexpr index_t lanes = simd<T>::lanes;
  if constexpr (simd_has_half) {
    if (out_per_group <= simd_half<T>::lanes) return simd_half<T>::lanes;
  }
  return (out_per_group + lanes - 1) / lanes * lanes;
}

/// Elements of the packed weight of the blocked path.
template <class T>
index_t blocked_packed_size(const conv2d_geometry& g) noexcept {
  return g.groups * g.kernel_h * g.kernel_w * g.in_per_group *
         blocked_padded_outputs<T>(g.out_per_group);
}

/// Packs an O×I/g×KH×KW weight (read through `w(o, i, ky, kx)`) as
/// [group][ky][kx][i][o of the group], each group's outputs zero-padded to whole vectors.
template <class T, class WeightAt>
void pack_blocked_weights(const conv2d_geometry& g, WeightAt w, T* packed) {
  const index_t og = g.out_per_group;
  const index_t padded = blocked_padded_outputs<T>(og);
  for (index_t grp = 0; grp < g.groups; ++grp) {
    for (index_t ky = 0; ky < g.kernel_h; ++ky) {
      for (index_t kx = 0; kx < g.kernel_w; ++kx) {
        for (index_t i = 0; i < g.in_per_group; ++i) {
          for (index_t o = 0; o < padded; ++o)
            *packed++ = o < og ? w(grp * og + o, i, ky, kx) : T(0);
        }
      }
    }
  }
}

/// What one tile reads and writes: the group's weights at its first vector, the image at the
/// group's first input channel, the row at the group's first output of the tile.
template <class T>
struct blocked_tile_args {
  const T* weights;  // [ky][kx][i][padded] of the group, offset to the tile's first vector
  const T* image;    // H×W×C image, offset to the group's first input channel
  T* row;            // output row [ox][O], offset to the tile's first output channel
  index_t padded;    // padded outputs per group (the weight row length)
  index_t valid;     // output channels of the tile that exist (≤ V·lanes)
};

/// P pixels from `ox` (stride sw apart in the input) × V output vectors, over kernel rows `ky`
/// and kernel columns `kx`. Without Border every tap of every pixel lies inside the image; with
/// Border a pixel reads `zeros` for the columns outside it (exact when every weight is finite:
/// an FMA with 0·w adds ±0 to a sum that started at +0, which changes no bit).
template <class T, std::size_t V, std::size_t P, bool Border, class vec = simd<T>>
void blocked_tile(const conv2d_geometry& g, const blocked_tile_args<T>& a, tap_range ky,
                  tap_range kx, index_t iy0, index_t ox) {
  using native = typename vec::native;
  constexpr index_t lanes = vec::lanes;
  const index_t channels = g.in_channels;
  const index_t ig = g.in_per_group;
  const index_t pixel_step = g.stride_w * channels;
  native acc[P][V];
  CVK_UNROLL
  for (std::size_t p = 0; p < P; ++p) {
    CVK_UNROLL
    for (std::size_t v = 0; v < V; ++v) acc[p][v] = vec::zero();
  }
  const index_t ix0 = ox * g.stride_w - g.pad_left;
  for (index_t k = ky.begin; k < ky.end; ++k) {
    const T* x_row = a.image + (iy0 + k * g.dilation_h) * g.in_width * channels;
    for (index_t j = kx.begin; j < kx.end; ++j) {
      const index_t ix = ix0 + j * g.dilation_w;
      const T* x[P];
      CVK_UNROLL
      for (std::size_t p = 0; p < P; ++p) {
        x[p] = tile_pixel<Border>(g, x_row + ix * channels, pixel_step, ix, static_cast<index_t>(p),
                                  conv_zeros<T>);
      }
      const T* w = a.weights + (k * g.kernel_w + j) * ig * a.padded;
      for (index_t i = 0; i < ig; ++i) {
        native wv[V];
        CVK_UNROLL
        for (std::size_t v = 0; v < V; ++v) {
          wv[v] = vec::load(w + i * a.padded + static_cast<index_t>(v) * lanes);
        }
        CVK_UNROLL
        for (std::size_t p = 0; p < P; ++p) {
          const native xb = vec::splat(x[p][i]);
          CVK_UNROLL
          for (std::size_t v = 0; v < V; ++v) acc[p][v] = vec::fma(xb, wv[v], acc[p][v]);
        }
      }
    }
  }
  const index_t outs = g.out_pixel > 0 ? g.out_pixel : g.out_channels;
  CVK_UNROLL
  for (std::size_t p = 0; p < P; ++p) {
    T* out = a.row + (ox + static_cast<index_t>(p)) * outs;
    CVK_UNROLL
    for (std::size_t v = 0; v < V; ++v) {
      const index_t first = static_cast<index_t>(v) * lanes;
      if (first + lanes <= a.valid) {
        vec::store(out + first, acc[p][v]);
      } else if (first < a.valid) {
        vec::store_first(out + first, acc[p][v], a.valid - first);
      }
    }
  }
}

/// The outputs [v0·L, v0·L + V·L) of every group for one output row: groups outer, tiles inner,
/// so a group's weights (KH·KW·I/g·O/g values) are loaded once per row and stay in L1 across its
/// tiles. (Tiles outer would stream every group's weights once per tile: at 32 channels per group
/// and 1024 channels that is 1.2 MB per tile, past L2.)
/// `v0` counts whole native vectors; `vec` is simd<T>, or simd_half<T> for a group's half-vector
/// tail (V = 1).
template <class T, std::size_t V, class vec = simd<T>>
void blocked_row_vectors(const conv2d_geometry& g, const T* image, const T* packed, T* row,
                         index_t v0, tap_range ky, index_t iy0, tap_range interior,
                         bool zero_taps) {
  constexpr index_t lanes = simd<T>::lanes;
  const index_t og = g.out_per_group;
  const index_t padded = blocked_padded_outputs<T>(og);
  const index_t group_weights = g.kernel_h * g.kernel_w * g.in_per_group * padded;
  const index_t valid = std::min(static_cast<index_t>(V) * vec::lanes, og - v0 * lanes);
  const tap_range all{0, g.kernel_w};
  for (index_t grp = 0; grp < g.groups; ++grp) {
    const blocked_tile_args<T> a{packed + grp * group_weights + v0 * lanes,
                                 image + grp * g.in_per_group, row + grp * og + v0 * lanes, padded,
                                 valid};
    for_each_row_tile<tile_pixels<V>>(
        g, interior, zero_taps,
        [&](index_t start, auto size, bool border) {
          constexpr std::size_t q = decltype(size)::value;
          if (border) {
            blocked_tile<T, V, q, true, vec>(g, a, ky, all, iy0, start);
          } else {
            blocked_tile<T, V, q, false, vec>(g, a, ky, all, iy0, start);
          }
        },
        [&](index_t ox) {
          const tap_range kx =
              valid_taps(ox * g.stride_w - g.pad_left, g.kernel_w, g.dilation_w, g.in_width);
          blocked_tile<T, V, 1, false, vec>(g, a, ky, kx, iy0, ox);
        });
  }
}

/// row[ox·O + o] for output row oy of one contiguous H×W×C image (blocked weights).
/// `finite_weights`: every packed weight is finite, so border pixels may run in tiles that read
/// zeros outside the image (exact, see blocked_tile); otherwise they run one by one.
template <class T>
void blocked_nhwc_row(const conv2d_geometry& g, const T* image, const T* packed, index_t oy, T* row,
                      bool finite_weights) {
  constexpr index_t lanes = simd<T>::lanes;
  const index_t iy0 = oy * g.stride_h - g.pad_top;
  const tap_range ky = valid_taps(iy0, g.kernel_h, g.dilation_h, g.in_height);
  const tap_range interior = interior_columns(g);
  const bool zero_taps = finite_weights && g.in_per_group <= conv_zeros_size;
  const index_t padded = blocked_padded_outputs<T>(g.out_per_group);
  const index_t vectors_per_group = padded / lanes;  // whole vectors; a half vector may follow
  // Each group's output vectors in chunks of at most 4 (the widest tile).
  for (index_t v0 = 0; v0 < vectors_per_group;) {
    const index_t left = vectors_per_group - v0;
    switch (left >= 4 ? 4 : left) {
      case 4:
        blocked_row_vectors<T, 4>(g, image, packed, row, v0, ky, iy0, interior, zero_taps);
        v0 += 4;
        break;
      case 3:
        blocked_row_vectors<T, 3>(g, image, packed, row, v0, ky, iy0, interior, zero_taps);
        v0 += 3;
        break;
      case 2:
        blocked_row_vectors<T, 2>(g, image, packed, row, v0, ky, iy0, interior, zero_taps);
        v0 += 2;
        break;
      default:
        blocked_row_vectors<T, 1>(g, image, packed, row, v0, ky, iy0, interior, zero_taps);
        v0 += 1;
        break;
    }
  }
  if (padded % lanes != 0) {
    blocked_row_vectors<T, 1, simd_half<T>>(g, image, packed, row, vectors_per_group, ky, iy0,
                                            interior, zero_taps);
  }
}

}  // namespace detail
CVK_END_NAMESPACE
