// cvk — computer-vision kernels, header-only C++20.
// How the vector conv paths (depthwise, small groups, large groups, pointwise) walk one output
// row: the kernel taps that fall inside the image, the columns whose taps all do, and the split
// of a row's pixels into register tiles — one mechanism for every path, so that border handling
// and tile tails are written once.
//   Border tiles read zeros in place of input outside the image. That is exact when every weight
//   is finite: each sum starts at +0 and an FMA with 0·w adds ±0, which changes no bit (a sum of
//   +0 and -0 is +0). Plans check their weights once; with a non-finite weight, border pixels
//   run one at a time over their valid taps instead (0·inf would be NaN).
// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <cstddef>
#include <type_traits>

#include "../../core/config.hpp"
#include "../../core/strided_view.hpp"
#include "../../detail/simd.hpp"
#include "geometry.hpp"

CVK_BEGIN_NAMESPACE
namespace detail {

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

/// Pixels per tile for V vectors of outputs per pixel: P·V accumulators, V weights and one
/// operand in the register file, at most 12 pixels.
template <std::size_t V>
inline constexpr std::size_t tile_pixels =
    std::min<std::size_t>(12, (static_cast<std::size_t>(simd_registers) - V - 1) / V);

/// Zeros that border tiles read in place of input outside the image (a constant, not state).
inline constexpr index_t conv_zeros_size = 4096;
template <class T>
alignas(64) inline constexpr T conv_zeros[conv_zeros_size] = {};

/// The input of tile pixel p at one tap: `x` (the tap's input for pixel 0) + p·step, or the
/// zeros when Border and that column lies outside the image.
template <bool Border, class T>
const T* tile_pixel(const conv2d_geometry& g, const T* x, index_t step, index_t ix, index_t p,
                    const T* zeros) noexcept {
  if constexpr (Border) {
    const index_t column = ix + p * g.stride_w;
    if (column < 0 || column >= g.in_width) return zeros;
  }
  return x + p * step;
}

/// Splits output row `oy`'s pixels into tiles and calls, for each,
///   tile(start, std::integral_constant<std::size_t, Q>{}, border)   Q ∈ {P, 4, 1}
/// with every tap inside the image unless `border`, or single(ox) for one pixel over its valid
/// taps only. Pixels go in tiles of P while P remain, the rest in tiles of 4 (the last one
/// shifted back over pixels already computed, which it recomputes bit for bit) or of 1. With
/// `zero_taps` (border tiles may read zeros: finite weights) the whole row is tiled; without,
/// only the interior, and border pixels run through single().
template <std::size_t P, class Tile, class Single>
void for_each_row_tile(const conv2d_geometry& g, tap_range interior, bool zero_taps, Tile&& tile,
                       Single&& single) {
  using full = std::integral_constant<std::size_t, P>;
  using four = std::integral_constant<std::size_t, (P > 4 ? 4 : 1)>;
  using one = std::integral_constant<std::size_t, 1>;
  constexpr index_t tile_size = static_cast<index_t>(P);
  const auto border = [&](index_t start, index_t size) {
    return zero_taps && (start < interior.begin || start + size > interior.end);
  };
  const auto cover = [&](index_t begin, index_t end) {
    index_t ox = begin;
    for (; end - ox >= tile_size; ox += tile_size) tile(ox, full{}, border(ox, tile_size));
    if (ox == end) return;
    if (tile_size > 4 && end - begin >= 4) {
      for (;; ox += 4) {
        const index_t start = std::min(ox, end - 4);
        tile(start, four{}, border(start, 4));
        if (start + 4 >= end) break;
      }
    } else {
      for (; ox < end; ++ox) tile(ox, one{}, border(ox, 1));
    }
  };
  if (zero_taps) {
    cover(0, g.out_width);
    return;
  }
  for (index_t ox = 0; ox < interior.begin; ++ox) single(ox);
  cover(interior.begin, interior.end);
  for (index_t ox = std::max(interior.end, interior.begin); ox < g.out_width; ++ox) single(ox);
}

}  // namespace detail
CVK_END_NAMESPACE
