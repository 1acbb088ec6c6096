// cvk — computer-vision kernels, header-only C++20.
// small_group_nhwc_row: grouped convolution with few channels per group (2–8 in and out, the
// ResNeXt and ShuffleNet shapes where oneDNN falls back to a GEMM per group and XNNPACK to a
// small one), vectorised ACROSS groups: vector lane l of block b holds group b·L + l.
//   - The input is laid out once per call as [H][W][group block][i][lane] (the layout pass every
//     path is allowed; it replaces the NHWC copy, so NCHW and NHWC inputs cost one pass each):
//     input channel i of L consecutive groups is one vector.
//   - Weights are packed [group block][ky][kx][i][o][lane]: weight (o, i) of L groups is one
//   vector.
//   - The microkernel keeps P pixels × OG output channels (each a vector over L groups) in
//     registers; per (tap, i) it loads P input vectors and OG weight vectors and does P·OG FMAs,
//     every lane useful when the group count is a multiple of L. No shuffles, no padding of the
//     per-group matrices to vector width.
// Groups past the last whole block read zero input lanes and zero weights; their lanes are not
// stored. Pixels whose taps all lie inside the image run in tiles of P (the last one shifted
// back over computed pixels, recomputing them bit for bit), border pixels one at a time over
// their valid taps; each output is summed over the valid taps in (ky, kx, i) order with one FMA
// each, so the result does not depend on the tiling or the thread count.
// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>

#include "../../core/config.hpp"
#include "../../core/strided_view.hpp"
#include "../../detail/simd.hpp"
#include "blocked_nhwc.hpp"
#include "dwconv_nhwc.hpp"
#include "geometry.hpp"

CVK_BEGIN_NAMESPACE
namespace detail {

/// The widest group this path takes, in input and in output channels.
inline constexpr index_t small_group_max_channels = 8;

/// Group blocks of L groups (the last one partly empty).
template <class T>
constexpr index_t small_group_blocks(index_t groups) noexcept {
  return (groups + simd<T>::lanes - 1) / simd<T>::lanes;
}

/// Elements of one pixel of the group-interleaved input: blocks · I/g · L.
template <class T>
index_t small_group_pixel_size(const conv2d_geometry& g) noexcept {
  return small_group_blocks<T>(g.groups) * g.in_per_group * simd<T>::lanes;
}

/// Where input channel c goes within a pixel of the group-interleaved input.
template <class T>
index_t small_group_channel_slot(const conv2d_geometry& g, index_t c) noexcept {
  constexpr index_t lanes = simd<T>::lanes;
  const index_t grp = c / g.in_per_group, i = c % g.in_per_group;
  return ((grp / lanes) * g.in_per_group + i) * lanes + grp % lanes;
}

/// One image row of channel-contiguous pixels (`pixel_stride` apart) into the group-interleaved
/// layout: per pixel and group block, the [group][i] channels become [i][lane]. The block size
/// and I/g are compile-time here, so the transpose vectorises; lanes of absent groups get zeros.
template <class T, std::size_t IG>
void small_group_interleave_fixed(const conv2d_geometry& g, const T* src, index_t pixel_stride,
                                  T* dst) {
  constexpr std::size_t lanes = static_cast<std::size_t>(simd<T>::lanes);
  const index_t blocks = small_group_blocks<T>(g.groups);
  const index_t full = g.groups / static_cast<index_t>(lanes);
  const std::size_t tail = static_cast<std::size_t>(g.groups) % lanes;
  const index_t pixel = small_group_pixel_size<T>(g);
  constexpr std::size_t block = IG * lanes;
  for (index_t x = 0; x < g.in_width; ++x) {
    const T* __restrict in = src + x * pixel_stride;
    T* __restrict out = dst + x * pixel;
    for (index_t b = 0; b < full; ++b) {
      const T* __restrict from = in + b * static_cast<index_t>(block);
      T* __restrict to = out + b * static_cast<index_t>(block);
      for (std::size_t i = 0; i < IG; ++i) {
        for (std::size_t l = 0; l < lanes; ++l) to[i * lanes + l] = from[l * IG + i];
      }
    }
    if (full < blocks) {
      const T* from = in + full * static_cast<index_t>(block);
      T* to = out + full * static_cast<index_t>(block);
      for (std::size_t i = 0; i < IG; ++i) {
        for (std::size_t l = 0; l < lanes; ++l)
          to[i * lanes + l] = l < tail ? from[l * IG + i] : T(0);
      }
    }
  }
}

template <class T>
void small_group_interleave_row(const conv2d_geometry& g, const T* src, index_t pixel_stride,
                                T* dst) {
  switch (g.in_per_group) {
    case 2:
      return small_group_interleave_fixed<T, 2>(g, src, pixel_stride, dst);
    case 3:
      return small_group_interleave_fixed<T, 3>(g, src, pixel_stride, dst);
    case 4:
      return small_group_interleave_fixed<T, 4>(g, src, pixel_stride, dst);
    case 5:
      return small_group_interleave_fixed<T, 5>(g, src, pixel_stride, dst);
    case 6:
      return small_group_interleave_fixed<T, 6>(g, src, pixel_stride, dst);
    case 7:
      return small_group_interleave_fixed<T, 7>(g, src, pixel_stride, dst);
    default:
      return small_group_interleave_fixed<T, 8>(g, src, pixel_stride, dst);
  }
}

/// Elements of the packed weight of the small-group path.
template <class T>
index_t small_group_packed_size(const conv2d_geometry& g) noexcept {
  return small_group_blocks<T>(g.groups) * g.kernel_h * g.kernel_w * g.in_per_group *
         g.out_per_group * simd<T>::lanes;
}

/// Packs an O×I/g×KH×KW weight (read through `w(o, i, ky, kx)`) as
/// [group block][ky][kx][i][o][lane], zeros for the groups past the last one.
template <class T, class WeightAt>
void pack_small_group_weights(const conv2d_geometry& g, WeightAt w, T* packed) {
  constexpr index_t lanes = simd<T>::lanes;
  const index_t og = g.out_per_group;
  for (index_t b = 0; b < small_group_blocks<T>(g.groups); ++b) {
    for (index_t ky = 0; ky < g.kernel_h; ++ky) {
      for (index_t kx = 0; kx < g.kernel_w; ++kx) {
        for (index_t i = 0; i < g.in_per_group; ++i) {
          for (index_t o = 0; o < og; ++o) {
            for (index_t l = 0; l < lanes; ++l) {
              const index_t grp = b * lanes + l;
              *packed++ = grp < g.groups ? w(grp * og + o, i, ky, kx) : T(0);
            }
          }
        }
      }
    }
  }
}

/// Pixels per tile for OG outputs: P·OG accumulators, P inputs and one weight in registers.
template <std::size_t OG>
inline constexpr std::size_t small_group_pixels = std::max<std::size_t>(
    1, std::min<std::size_t>(12, (static_cast<std::size_t>(simd_registers) - 1) / (OG + 1)));

/// P pixels from `ox` × OG outputs of the L groups of block `b`, over kernel rows `ky` and
/// columns `kx` (inside the image for every pixel of the tile unless Border, which reads zeros
/// outside it: exact for finite weights, see blocked_tile); stores the lanes of groups that
/// exist into row[ox][O].
template <class T, std::size_t OG, std::size_t OT, std::size_t P, bool Border>
void small_group_tile(const conv2d_geometry& g, const T* image, const T* block_weights,
                      index_t block, index_t o0, tap_range ky, tap_range kx, index_t iy0,
                      index_t ox, T* row) {
  using vec = simd<T>;
  using native = typename vec::native;
  constexpr index_t lanes = vec::lanes;
  const index_t ig = g.in_per_group;
  const index_t pixel = small_group_pixel_size<T>(g);
  const index_t pixel_step = g.stride_w * pixel;
  native acc[P][OT];
  CVK_UNROLL
  for (std::size_t p = 0; p < P; ++p) {
    CVK_UNROLL
    for (std::size_t o = 0; o < OT; ++o) acc[p][o] = vec::zero();
  }
  const index_t ix0 = ox * g.stride_w - g.pad_left;
  const T* block_image = image + block * ig * lanes;
  for (index_t k = ky.begin; k < ky.end; ++k) {
    const T* x_row = block_image + (iy0 + k * g.dilation_h) * g.in_width * pixel;
    for (index_t j = kx.begin; j < kx.end; ++j) {
      const index_t ix = ix0 + j * g.dilation_w;
      const T* x[P];
      CVK_UNROLL
      for (std::size_t p = 0; p < P; ++p) {
        x[p] = tile_pixel<Border>(g, x_row + ix * pixel, pixel_step, ix, static_cast<index_t>(p),
                                  conv_zeros<T>);
      }
      const T* w = block_weights + (k * g.kernel_w + j) * ig * static_cast<index_t>(OG) * lanes;
      for (index_t i = 0; i < ig; ++i) {
        native xv[P];
        CVK_UNROLL
        for (std::size_t p = 0; p < P; ++p) xv[p] = vec::load(x[p] + i * lanes);
        CVK_UNROLL
        for (std::size_t o = 0; o < OT; ++o) {
          const native wv =
              vec::load(w + (i * static_cast<index_t>(OG) + o0 + static_cast<index_t>(o)) * lanes);
          CVK_UNROLL
          for (std::size_t p = 0; p < P; ++p) acc[p][o] = vec::fma(xv[p], wv, acc[p][o]);
        }
      }
    }
  }
  // Lanes are groups: output channel (b·L + l)·OG + o0 + o of pixel ox + p is lane l of
  // acc[p][o].
  const index_t outs = g.out_channels;
  const index_t groups_here = std::min(lanes, g.groups - block * lanes);
  CVK_UNROLL
  for (std::size_t p = 0; p < P; ++p) {
    T lane_values[OT][static_cast<std::size_t>(lanes)];
    CVK_UNROLL
    for (std::size_t o = 0; o < OT; ++o) vec::store(lane_values[o], acc[p][o]);
    T* out =
        row + (ox + static_cast<index_t>(p)) * outs + block * lanes * static_cast<index_t>(OG) + o0;
    if (groups_here == lanes) {  // a compile-time transpose OT×L → L×OT: it vectorises
      constexpr std::size_t n = static_cast<std::size_t>(lanes);
      for (std::size_t l = 0; l < n; ++l) {
        for (std::size_t o = 0; o < OT; ++o) out[l * OG + o] = lane_values[o][l];
      }
      continue;
    }
    for (index_t l = 0; l < groups_here; ++l) {
      CVK_UNROLL
      for (std::size_t o = 0; o < OT; ++o) {
        out[l * static_cast<index_t>(OG) + static_cast<index_t>(o)] =
            lane_values[o][static_cast<std::size_t>(l)];
      }
    }
  }
}

/// One pass over output row oy for outputs [o0, o0 + OT) of every group (of OG).
template <class T, std::size_t OG, std::size_t OT>
void small_group_row_pass(const conv2d_geometry& g, const T* image, const T* packed, index_t oy,
                          T* row, bool finite_weights, index_t o0, bool blocks_outer) {
  constexpr index_t lanes = simd<T>::lanes;
  const index_t iy0 = oy * g.stride_h - g.pad_top;
  const tap_range ky = valid_taps(iy0, g.kernel_h, g.dilation_h, g.in_height);
  const tap_range all{0, g.kernel_w};
  const index_t blocks = small_group_blocks<T>(g.groups);
  const index_t block_weights =
      g.kernel_h * g.kernel_w * g.in_per_group * static_cast<index_t>(OG) * lanes;
  const auto tiles = [&](index_t b_begin, index_t b_end) {
    for_each_row_tile<small_group_pixels<OT>>(
        g, interior_columns(g), finite_weights,
        [&](index_t start, auto size, bool border) {
          constexpr std::size_t q = decltype(size)::value;
          for (index_t b = b_begin; b < b_end; ++b) {
            const T* w = packed + b * block_weights;
            if (border) {
              small_group_tile<T, OG, OT, q, true>(g, image, w, b, o0, ky, all, iy0, start, row);
            } else {
              small_group_tile<T, OG, OT, q, false>(g, image, w, b, o0, ky, all, iy0, start, row);
            }
          }
        },
        [&](index_t ox) {
          const tap_range kx =
              valid_taps(ox * g.stride_w - g.pad_left, g.kernel_w, g.dilation_w, g.in_width);
          for (index_t b = b_begin; b < b_end; ++b) {
            small_group_tile<T, OG, OT, 1, false>(g, image, packed + b * block_weights, b, o0, ky,
                                                  kx, iy0, ox, row);
          }
        });
  };
  if (!blocks_outer) return tiles(0, blocks);
  for (index_t b = 0; b < blocks; ++b) tiles(b, b + 1);
}

/// Output row oy: O/g ≤ 4 in one pass (tiles outer, group blocks inner: a tile's input pixels
/// stay in L1 across the blocks); O/g = 5…8 in two passes of about half the outputs, each with
/// tiles twice as wide and half the weights (a block's 8·8 weights per tap would not stay in L1
/// across a row's tiles: the second pass costs one more read of the input, from cache).
template <class T, std::size_t OG>
void small_group_row_fixed(const conv2d_geometry& g, const T* image, const T* packed, index_t oy,
                           T* row, bool finite_weights) {
  if constexpr (OG <= 4) {
    small_group_row_pass<T, OG, OG>(g, image, packed, oy, row, finite_weights, 0, false);
  } else {
    constexpr std::size_t first = (OG + 1) / 2;
    small_group_row_pass<T, OG, first>(g, image, packed, oy, row, finite_weights, 0, true);
    small_group_row_pass<T, OG, OG - first>(g, image, packed, oy, row, finite_weights,
                                            static_cast<index_t>(first), true);
  }
}

/// row[ox·O + o] for output row oy of one group-interleaved image (small_group_pixel_size
/// elements per pixel).
template <class T>
void small_group_nhwc_row(const conv2d_geometry& g, const T* image, const T* packed, index_t oy,
                          T* row, bool finite_weights) {
  switch (g.out_per_group) {
    case 1:
      return small_group_row_fixed<T, 1>(g, image, packed, oy, row, finite_weights);
    case 2:
      return small_group_row_fixed<T, 2>(g, image, packed, oy, row, finite_weights);
    case 3:
      return small_group_row_fixed<T, 3>(g, image, packed, oy, row, finite_weights);
    case 4:
      return small_group_row_fixed<T, 4>(g, image, packed, oy, row, finite_weights);
    case 5:
      return small_group_row_fixed<T, 5>(g, image, packed, oy, row, finite_weights);
    case 6:
      return small_group_row_fixed<T, 6>(g, image, packed, oy, row, finite_weights);
    case 7:
      return small_group_row_fixed<T, 7>(g, image, packed, oy, row, finite_weights);
    default:
      return small_group_row_fixed<T, 8>(g, image, packed, oy, row, finite_weights);
  }
}

}  // namespace detail
CVK_END_NAMESPACE
