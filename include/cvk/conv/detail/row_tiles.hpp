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
#include <iterator>
#include <type_traits>
#include <utility>

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

/// Tile sizes the kernels are compiled for besides their own P (those < P): enough to split
/// common widths evenly (7, 14, 28, 56, 112) without compiling every size.
inline constexpr std::size_t tile_sizes[] = {12, 10, 9, 8, 7, 6, 4, 1};

/// Of P and the tile_sizes below it: the smallest size ≥ want that is ≤ limit, or else the
/// largest ≤ limit (1 at least).
template <std::size_t P>
constexpr index_t pick_tile_size(index_t want, index_t limit) noexcept {
  index_t above = 0, below = 1;
  const auto consider = [&](index_t q) {
    if (q > limit) return;
    if (q >= want && (above == 0 || q < above)) above = q;
    if (q > below) below = q;
  };
  consider(static_cast<index_t>(P));
  for (const std::size_t s : tile_sizes) {
    if (s < P) consider(static_cast<index_t>(s));
  }
  return above != 0 ? above : below;
}

/// Calls f(std::integral_constant<std::size_t, Q>{}) for Q = q, one of P and tile_sizes < P.
template <std::size_t P, class F>
void with_tile_size(index_t q, F&& f) {
  if (q == static_cast<index_t>(P)) {
    f(std::integral_constant<std::size_t, P>{});
    return;
  }
  const auto one = [&](auto size) {
    if constexpr (decltype(size)::value < P) {
      if (q == static_cast<index_t>(decltype(size)::value)) {
        f(size);
        return true;
      }
    }
    return false;
  };
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    (one(std::integral_constant<std::size_t, tile_sizes[I]>{}) || ...);
  }
  (std::make_index_sequence<std::size(tile_sizes)>{});
}

/// Splits output row `oy`'s pixels into tiles and calls, for each,
///   tile(start, std::integral_constant<std::size_t, Q>{}, border)   Q = P or a tile_sizes < P
/// with every tap inside the image unless `border`, or single(ox) for one pixel over its valid
/// taps only. A run of n pixels is covered by ⌈n/P⌉ tiles of about equal size (rounded up to a
/// compiled size; the last tile shifted back over pixels already computed, which it recomputes
/// bit for bit): 14 pixels are two tiles of 7, not 12 + a tail. With `zero_taps` (border tiles
/// may read zeros: finite weights) the whole row is tiled; without, only the interior, and
/// border pixels run through single().
template <std::size_t P, class Tile, class Single>
void for_each_row_tile(const conv2d_geometry& g, tap_range interior, bool zero_taps, Tile&& tile,
                       Single&& single) {
  constexpr index_t most = static_cast<index_t>(P);
  const auto border = [&](index_t start, index_t size) {
    return zero_taps && (start < interior.begin || start + size > interior.end);
  };
  const auto cover = [&](index_t begin, index_t end) {
    const index_t n = end - begin;
    if (n <= 0) return;
    const index_t tiles = (n + most - 1) / most;
    const index_t q = pick_tile_size<P>((n + tiles - 1) / tiles, n);
    with_tile_size<P>(q, [&](auto size) {
      for (index_t ox = begin;; ox += q) {
        const index_t start = std::min(ox, end - q);
        tile(start, size, border(start, q));
        if (start + q >= end) break;
      }
    });
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
