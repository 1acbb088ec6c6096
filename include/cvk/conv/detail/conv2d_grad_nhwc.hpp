// cvk — computer-vision kernels, header-only C++20.
// The weight and bias gradients of conv2d, race-free without atomics or per-thread partial
// buffers: the work is split over blocks of (group, output channel), so every element of the
// gradient is summed by one thread, always over (n, oy, ox) in increasing order — the result is
// bit-identical for any thread count and any blocking. Input and output gradient are read as
// contiguous NHWC images (one layout pass each when they are not), so the innermost loop is an
// outer product of a grad_output pixel's channels with an input pixel's channels.
// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <tuple>
#include <type_traits>

#include "../../core/config.hpp"
#include "../../core/parallel.hpp"
#include "../../core/strided_view.hpp"
#include "../../detail/checks.hpp"
#include "../../detail/simd.hpp"
#include "conv2d_run.hpp"
#include "conv_transpose_nhwc.hpp"
#include "geometry.hpp"

CVK_BEGIN_NAMESPACE
namespace detail {

/// The pixels one kernel tap (ky, kx) sees: output pixels (n, oy, ox) with oy in [oy0, oy1),
/// ox in [ox0, ox1) (tap_outputs), grad_output's pixel at d + n·d_image + (oy·Wo + ox)·d_pixel,
/// the input pixel under the tap at x + n·x_image + (oy·sh + y_offset)·x_row
/// + (ox·sw + x_offset)·x_pixel. Both images are contiguous pixels of unit-stride channels.
template <class T>
struct tap_walk {
  index_t oy0 = 0, oy1 = 0, ox0 = 0, ox1 = 0, out_height = 0, out_width = 0;
  const T* d = nullptr;
  index_t d_image = 0, d_pixel = 0;
  const T* x = nullptr;
  index_t x_image = 0, x_row = 0, x_pixel = 0;
  index_t stride_h = 1, stride_w = 1, y_offset = 0, x_offset = 0;

  /// Calls f(d_row, x_row, count) for the tap's pixels of the output rows [row0, row1) of the
  /// flattened (n, oy) order: grad_output's first pixel, the input's, and how many in the row.
  template <class F>
  void for_rows(index_t row0, index_t row1, F&& f) const {
    for (index_t row = row0; row < row1; ++row) {
      const index_t n = row / out_height, oy = row % out_height;
      if (oy < oy0 || oy >= oy1) continue;
      f(d + n * d_image + (oy * out_width + ox0) * d_pixel,
        x + n * x_image + (oy * stride_h + y_offset) * this->x_row +
            (ox0 * stride_w + x_offset) * x_pixel,
        ox1 - ox0);
    }
  }
};

template <class T>
tap_walk<T> make_tap_walk(const conv2d_geometry& g, index_t ky, index_t kx, const T* d,
                          index_t d_image, index_t d_pixel, const layout_images<T>& x) {
  tap_walk<T> t;
  t.out_height = g.out_height;
  t.out_width = g.out_width;
  t.y_offset = ky * g.dilation_h - g.pad_top;
  t.x_offset = kx * g.dilation_w - g.pad_left;
  std::tie(t.oy0, t.oy1) = tap_outputs(g.out_height, g.in_height, g.stride_h, t.y_offset);
  std::tie(t.ox0, t.ox1) = tap_outputs(g.out_width, g.in_width, g.stride_w, t.x_offset);
  t.d = d;
  t.d_image = d_image;
  t.d_pixel = d_pixel;
  t.x = x.data;
  t.x_image = x.image_stride;
  t.x_row = g.in_width * g.in_channels;
  t.x_pixel = g.in_channels;
  t.stride_h = g.stride_h;
  t.stride_w = g.stride_w;
  return t;
}

/// Accumulators of a register tile: at most the register file less a few operands.
template <class T>
inline constexpr index_t grad_tile_registers = simd_registers - 6;

/// R × V vector sums of a register tile, continued from and returned to memory: row r, vector v
/// at acc + r·step + v·L (stored and reloaded exactly, so a tile may stop and resume).
template <class T, std::size_t R, std::size_t V>
struct grad_tile {
  using vec = simd<T>;
  typename vec::native s[R][V];

  void load(const T* acc, index_t step) noexcept {
    CVK_UNROLL
    for (std::size_t r = 0; r < R; ++r) {
      CVK_UNROLL
      for (std::size_t v = 0; v < V; ++v) s[r][v] = vec::load(at(acc, step, r, v));
    }
  }
  void store(T* acc, index_t step) const noexcept {
    CVK_UNROLL
    for (std::size_t r = 0; r < R; ++r) {
      CVK_UNROLL
      for (std::size_t v = 0; v < V; ++v) vec::store(at(acc, step, r, v), s[r][v]);
    }
  }
  template <class P>
  static P* at(P* acc, index_t step, std::size_t r, std::size_t v) noexcept {
    return acc + static_cast<index_t>(r) * step + static_cast<index_t>(v) * vec::lanes;
  }
};

/// The plain tile (8 or more input channels per group): acc[r·acc_step + v·L + l] +=
/// d[d_channel + v·L + l] · x[x_channel + r] over the tap's pixels of rows [row0, row1), for
/// R input channels r (broadcast) × V vectors of output channels (grad_output padded to whole
/// vectors per group). The R × V sums stay in registers over the pixels; each is one FMA per
/// pixel, in (n, oy, ox) order, continuing the sums already in acc.
template <class T, index_t V, index_t R>
void weight_tile_plain(const tap_walk<T>& t, index_t row0, index_t row1, index_t d_channel,
                       index_t x_channel, T* acc, index_t acc_step) {
  using vec = simd<T>;
  using native = typename vec::native;
  constexpr index_t L = vec::lanes;
  constexpr auto rs = static_cast<std::size_t>(R), vs = static_cast<std::size_t>(V);
  grad_tile<T, rs, vs> tile;
  tile.load(acc, acc_step);
  auto& s = tile.s;
  const index_t x_step = t.stride_w * t.x_pixel;
  t.for_rows(row0, row1, [&](const T* d, const T* x, index_t count) {
    d += d_channel;
    x += x_channel;
    for (index_t k = 0; k < count; ++k) {
      native dv[vs];
      CVK_UNROLL
      for (std::size_t v = 0; v < vs; ++v) {
        dv[v] = vec::load(d + k * t.d_pixel + static_cast<index_t>(v) * L);
      }
      const T* xk = x + k * x_step;
      CVK_UNROLL
      for (std::size_t r = 0; r < rs; ++r) {
        const native xb = vec::splat(xk[r]);
        CVK_UNROLL
        for (std::size_t v = 0; v < vs; ++v) s[r][v] = vec::fma(dv[v], xb, s[r][v]);
      }
    }
  });
  tile.store(acc, acc_step);
}

/// weight_tile_plain over `count` input channels in tiles of as many channels as fit (at most
/// R): 24, 16, 12, 8, 6, 4, 3, 2 or 1, largest first, so 16 or 8 channels per group run as one
/// tile (each tile walks the pixels once).
template <class T, index_t V, index_t R>
void weight_tiles_plain(const tap_walk<T>& t, index_t row0, index_t row1, index_t d_channel,
                        index_t x_channel, index_t count, T* acc, index_t acc_step) {
  index_t i = 0;
  const auto run = [&]<index_t Size>(std::integral_constant<index_t, Size>) {
    if constexpr (Size <= R) {
      for (; count - i >= Size; i += Size) {
        weight_tile_plain<T, V, Size>(t, row0, row1, d_channel, x_channel + i, acc + i * acc_step,
                                      acc_step);
      }
    }
  };
  run(std::integral_constant<index_t, 24>{});
  run(std::integral_constant<index_t, 16>{});
  run(std::integral_constant<index_t, 12>{});
  run(std::integral_constant<index_t, 8>{});
  run(std::integral_constant<index_t, 6>{});
  run(std::integral_constant<index_t, 4>{});
  run(std::integral_constant<index_t, 3>{});
  run(std::integral_constant<index_t, 2>{});
  run(std::integral_constant<index_t, 1>{});
}

/// Input channels per plain tile with V output vectors: as many as the accumulators allow (at
/// most 24), so each grad_output vector load feeds that many FMAs.
template <class T, index_t V>
inline constexpr index_t plain_tile_rows = std::clamp<index_t>(grad_tile_registers<T> / V, 1, 24);

/// The expanded tile (fewer than 8 input channels per group, expand_grad_output):
/// acc[r·acc_step + c] += d[r·channels + c0 + c] · x[c0 + c] for Rows in-group output indices r
/// × V vectors of channels c, over the tap's pixels of rows [row0, row1); V = 0: a run-time
/// `width` (< L) of channels, summed one at a time (the tail of the channels).
template <class T, index_t Rows, index_t V>
void weight_tile_expanded(const tap_walk<T>& t, index_t row0, index_t row1, index_t channels,
                          index_t c0, index_t width, T* acc, index_t acc_step) {
  using vec = simd<T>;
  using native = typename vec::native;
  constexpr index_t L = vec::lanes;
  const index_t x_step = t.stride_w * t.x_pixel;
  if constexpr (V == 0) {
    for (index_t r = 0; r < Rows; ++r) {
      for (index_t c = 0; c < width; ++c) {
        T s = acc[r * acc_step + c];
        t.for_rows(row0, row1, [&](const T* d, const T* x, index_t count) {
          const T* dr = d + r * channels + c0 + c;
          const T* xc = x + c0 + c;
          for (index_t k = 0; k < count; ++k) s += dr[k * t.d_pixel] * xc[k * x_step];
        });
        acc[r * acc_step + c] = s;
      }
    }
  } else {
    constexpr auto rs = static_cast<std::size_t>(Rows), vs = static_cast<std::size_t>(V);
    grad_tile<T, rs, vs> tile;
    tile.load(acc, acc_step);
    auto& s = tile.s;
    t.for_rows(row0, row1, [&](const T* d, const T* x, index_t count) {
      d += c0;
      x += c0;
      for (index_t k = 0; k < count; ++k) {
        native xv[vs];
        CVK_UNROLL
        for (std::size_t v = 0; v < vs; ++v) {
          xv[v] = vec::load(x + k * x_step + static_cast<index_t>(v) * L);
        }
        const T* dk = d + k * t.d_pixel;
        CVK_UNROLL
        for (std::size_t r = 0; r < rs; ++r) {
          CVK_UNROLL
          for (std::size_t v = 0; v < vs; ++v) {
            s[r][v] = vec::fma(
                vec::load(dk + static_cast<index_t>(r) * channels + static_cast<index_t>(v) * L),
                xv[v], s[r][v]);
          }
        }
      }
    });
    tile.store(acc, acc_step);
  }
}

/// weight_tile_expanded over `rows` output indices × `count` channels from c0: tiles of Rows
/// (4, 2, 1) × V vectors (halving), the last < L channels one at a time.
template <class T, index_t Rows = 4>
void weight_tiles_expanded(const tap_walk<T>& t, index_t row0, index_t row1, index_t channels,
                           index_t rows, index_t c0, index_t count, T* acc, index_t acc_step) {
  constexpr index_t L = simd<T>::lanes;
  constexpr index_t vmax =
      std::max<index_t>(1, std::min<index_t>(8, grad_tile_registers<T> / Rows - 1));
  index_t r = 0;
  for (; r + Rows <= rows; r += Rows) {
    T* a = acc + r * acc_step;
    tap_walk<T> tr = t;  // grad_output's rows r, r + 1, ...
    tr.d += r * channels;
    index_t c = 0;
    for (; count - c >= vmax * L; c += vmax * L) {
      weight_tile_expanded<T, Rows, vmax>(tr, row0, row1, channels, c0 + c, vmax * L, a + c,
                                          acc_step);
    }
    for (; count - c >= L; c += L) {
      weight_tile_expanded<T, Rows, 1>(tr, row0, row1, channels, c0 + c, L, a + c, acc_step);
    }
    if (c < count) {
      weight_tile_expanded<T, Rows, 0>(tr, row0, row1, channels, c0 + c, count - c, a + c,
                                       acc_step);
    }
  }
  if constexpr (Rows > 1) {
    if (r < rows) {
      tap_walk<T> shifted = t;
      shifted.d += r * channels;
      weight_tiles_expanded<T, Rows / 2>(shifted, row0, row1, channels, rows - r, c0, count,
                                         acc + r * acc_step, acc_step);
    }
  }
}

/// The expanded tile over a kernel row's KX taps at once (one in-group output index, V vectors
/// of channels from c0): walks[kx] are the taps (ky, kx) of one ky, acc[kx·tap_step + v·L + l]
/// their sums. A grad_output vector is loaded once for the KX taps, and each input vector it
/// meets is used by one FMA, so the loads per FMA fall from 2 to (KX + 1) / KX. Pixels where
/// every tap lies inside the image run without checks, the border ones skip the taps outside:
/// each sum still runs over its tap's pixels in (n, oy, ox) order.
template <class T, index_t KX, index_t V>
void weight_tile_row_taps(const tap_walk<T>* walks, index_t row0, index_t row1, index_t c0, T* acc,
                          index_t tap_step) {
  using vec = simd<T>;
  using native = typename vec::native;
  constexpr index_t L = vec::lanes;
  constexpr auto ks = static_cast<std::size_t>(KX), vs = static_cast<std::size_t>(V);
  grad_tile<T, ks, vs> tile;
  tile.load(acc, tap_step);
  auto& s = tile.s;
  const tap_walk<T>& t = walks[0];
  index_t lo = 0, hi = t.out_width;  // the columns every tap reaches
  index_t x_offset[ks];
  for (std::size_t k = 0; k < ks; ++k) {
    lo = std::max(lo, walks[k].ox0);
    hi = std::min(hi, walks[k].ox1);
    x_offset[k] = walks[k].x_offset * t.x_pixel + c0;
  }
  if (hi < lo) hi = lo;
  const index_t x_step = t.stride_w * t.x_pixel;
  for (index_t row = row0; row < row1; ++row) {
    const index_t n = row / t.out_height, oy = row % t.out_height;
    if (oy < t.oy0 || oy >= t.oy1) continue;
    const T* d = t.d + n * t.d_image + oy * t.out_width * t.d_pixel + c0;
    const T* x = t.x + n * t.x_image + (oy * t.stride_h + t.y_offset) * t.x_row;
    const auto pixel = [&]<bool Check>(index_t ox, std::bool_constant<Check>) {
      native dv[vs];
      CVK_UNROLL
      for (std::size_t v = 0; v < vs; ++v) {
        dv[v] = vec::load(d + ox * t.d_pixel + static_cast<index_t>(v) * L);
      }
      CVK_UNROLL
      for (std::size_t k = 0; k < ks; ++k) {
        if constexpr (Check) {
          if (ox < walks[k].ox0 || ox >= walks[k].ox1) continue;
        }
        const T* xk = x + ox * x_step + x_offset[k];
        CVK_UNROLL
        for (std::size_t v = 0; v < vs; ++v) {
          s[k][v] = vec::fma(dv[v], vec::load(xk + static_cast<index_t>(v) * L), s[k][v]);
        }
      }
    };
    for (index_t ox = 0; ox < lo; ++ox) pixel(ox, std::true_type{});
    for (index_t ox = lo; ox < hi; ++ox) pixel(ox, std::false_type{});
    for (index_t ox = hi; ox < t.out_width; ++ox) pixel(ox, std::true_type{});
  }
  tile.store(acc, tap_step);
}

/// The expanded sums of one kernel row ky of KX (= KW) taps, over `rows` in-group output
/// indices × `count` channels from c0: weight_tile_row_taps over whole tiles of V vectors, the
/// rest tap by tap (weight_tiles_expanded). acc[kx][ol][c − c0] with `count` per row.
template <class T, index_t KX>
void weight_row_taps_expanded(const tap_walk<T>* walks, index_t row0, index_t row1,
                              index_t channels, index_t rows, index_t c0, index_t count, T* acc) {
  constexpr index_t L = simd<T>::lanes;
  constexpr index_t V = std::max<index_t>(1, std::min<index_t>(8, grad_tile_registers<T> / KX));
  const index_t tap_step = rows * count;
  const index_t whole = count / (V * L) * (V * L);
  for (index_t r = 0; r < rows; ++r) {
    tap_walk<T> shifted[static_cast<std::size_t>(KX)];
    for (std::size_t k = 0; k < static_cast<std::size_t>(KX); ++k) {
      shifted[k] = walks[k];
      shifted[k].d += r * channels;
    }
    for (index_t c = 0; c < whole; c += V * L) {
      weight_tile_row_taps<T, KX, V>(shifted, row0, row1, c0 + c, acc + r * count + c, tap_step);
    }
  }
  if (whole < count) {
    for (std::size_t k = 0; k < static_cast<std::size_t>(KX); ++k) {
      weight_tiles_expanded<T>(walks[k], row0, row1, channels, rows, c0 + whole, count - whole,
                               acc + static_cast<index_t>(k) * tap_step + whole, count);
    }
  }
}

/// Output rows (of the flattened n·Ho) per pixel chunk: about 128 pixels, so a chunk's
/// grad_output and input rows stay in cache while every tap and tile of a task runs over them;
/// the sums continue from chunk to chunk (stored and reloaded exactly), so the order per
/// element is (n, oy, ox) whatever the chunking.
/// w[ky·s2 + kx·s3] = a[(ky·KW + kx)·a_step] for every tap: one (o, i) of the weight gradient
/// (s2, s3 the view's tap strides), from a task's accumulators. Pointer arithmetic per tap, not
/// a 4-D index per element: this copy was a third of the small-image weight gradients.
template <class T>
void store_weight_taps(const conv2d_geometry& g, const T* a, index_t a_step, T* w,
                       const strided_view<T, 4>& grad_weight) noexcept {
  const index_t s2 = grad_weight.stride(2), s3 = grad_weight.stride(3);
  for (index_t ky = 0; ky < g.kernel_h; ++ky) {
    T* w_row = w + ky * s2;
    const T* a_row = a + ky * g.kernel_w * a_step;
    for (index_t kx = 0; kx < g.kernel_w; ++kx) w_row[kx * s3] = a_row[kx * a_step];
  }
}

inline index_t weight_grad_chunk_rows(const conv2d_geometry& g) noexcept {
  return std::max<index_t>(1, 128 / std::max<index_t>(1, g.out_width));
}

/// grad_output in the plain tiles' layout: [n][oy][ox][group][O/g padded to whole vectors]
/// (zeros in the padding); none when grad_output already is NHWC-contiguous with O/g a whole
/// number of vectors.
template <class T>
layout_images<T> padded_grad_output(const conv2d_geometry& g, index_t padded,
                                    const strided_view<const T, 4>& dy, const char* fn,
                                    int threads) {
  const conv2d_geometry rows = transposed_rows(g);  // in_* extents: grad_output's
  if (padded == g.out_per_group) {
    return to_image_layout(rows, image_layout{rows.in_channels, false}, dy, fn,
                           "the NHWC copy of grad_output", threads);
  }
  const index_t og = g.out_per_group;
  std::vector<index_t> source(static_cast<std::size_t>(
      checked_mul(g.groups, padded, fn, "the padded copy of grad_output", dy)));
  for (index_t grp = 0; grp < g.groups; ++grp) {
    for (index_t o = 0; o < padded; ++o) {
      source[static_cast<std::size_t>(grp * padded + o)] = o < og ? grp * og + o : -1;
    }
  }
  return gather_grad_output(g, source, dy, fn, "the padded copy of grad_output", threads);
}

/// grad_weight[o, i, ky, kx] = Σ_{n, oy, ox} dY[n, o, oy, ox] · x[n, grp·I/g + i, iy, ix] over the
/// taps inside the image (iy = oy·sh − pt + ky·dh, ix likewise), for the conv2d of geometry g.
/// Views (n, c, h, w)- and (o, i, ky, kx)-ordered, any strides. A GEMM per (group, tap) with the
/// pixels as the reduction: register tiles sum over chunks of pixel rows, every tap and tile of a
/// task over one chunk before the next. Tasks are blocks of (group, output vectors, input
/// channels) in the plain order (8 or more input channels per group: vectors of output channels
/// × broadcast input channels) or blocks of channels in the expanded order (fewer:
/// expand_grad_output, vectors of channels × the in-group output indices); each element is one
/// task's, summed with one FMA per pixel in (n, oy, ox) order, so the result does not depend on
/// the thread count or the blocking.
template <class T>
void conv2d_weight_grad(const conv2d_geometry& g, const strided_view<const T, 4>& input,
                        const strided_view<const T, 4>& grad_out,
                        const strided_view<T, 4>& grad_weight, int threads, const char* fn) {
  const index_t ig = g.in_per_group, og = g.out_per_group, channels = g.in_channels;
  const index_t taps = g.kernel_h * g.kernel_w;
  if (g.out_channels == 0 || ig == 0) return;
  constexpr index_t L = simd<T>::lanes;
  const layout_images<T> x = to_image_layout(g, image_layout{channels, false}, input, fn,
                                             "the NHWC copy of input", threads);
  const auto task_buffer = [&](index_t size) {
    return checked_allocation<T>(size, fn, "a block of the weight gradient", grad_weight, [size] {
      auto buffer = std::unique_ptr<T[]>(new T[static_cast<std::size_t>(size)]);
      std::fill(buffer.get(), buffer.get() + size, T(0));
      return buffer;
    });
  };
  const index_t all_rows = g.batch * g.out_height;
  const index_t chunk = weight_grad_chunk_rows(g);
  if (transpose_expands(g)) {
    // acc[tap][ol][c − c0] is grad_weight[(c / (I/g))·(O/g) + ol, c % (I/g), ky, kx].
    const layout_images<T> expanded = expand_grad_output(g, grad_out, fn, threads);
    const index_t span = og * channels;
    // About 8 blocks of whole vectors of channels (the blocking changes no value).
    const index_t block =
        std::min(channels, std::max<index_t>(8 * L, (channels / 8 + L - 1) / L * L));
    const index_t blocks = (channels + block - 1) / block;
    parallel_for(
        0, blocks, 1,
        [&](index_t lo, index_t hi) {
          for (index_t b = lo; b < hi; ++b) {
            const index_t c0 = b * block, count = std::min(block, channels - c0);
            auto acc = task_buffer(taps * og * count);  // at most the weight's size: checked
            for (index_t row0 = 0; row0 < all_rows; row0 += chunk) {
              const index_t row1 = std::min(all_rows, row0 + chunk);
              if (g.kernel_w == 3 || g.kernel_w == 5) {  // the common kernel rows, taps at once
                for (index_t ky = 0; ky < g.kernel_h; ++ky) {
                  tap_walk<T> walks[5];
                  for (index_t kx = 0; kx < g.kernel_w; ++kx) {
                    walks[kx] =
                        make_tap_walk(g, ky, kx, expanded.data, expanded.image_stride, span, x);
                  }
                  T* a = acc.get() + ky * g.kernel_w * og * count;
                  if (g.kernel_w == 3) {
                    weight_row_taps_expanded<T, 3>(walks, row0, row1, channels, og, c0, count, a);
                  } else {
                    weight_row_taps_expanded<T, 5>(walks, row0, row1, channels, og, c0, count, a);
                  }
                }
                continue;
              }
              for (index_t tap = 0; tap < taps; ++tap) {
                const auto walk = make_tap_walk(g, tap / g.kernel_w, tap % g.kernel_w,
                                                expanded.data, expanded.image_stride, span, x);
                weight_tiles_expanded<T>(walk, row0, row1, channels, og, c0, count,
                                         acc.get() + tap * og * count, count);
              }
            }
            for (index_t c = c0; c < c0 + count; ++c) {
              const index_t grp = c / ig, i = c % ig;
              for (index_t ol = 0; ol < og; ++ol) {
                store_weight_taps(g, acc.get() + ol * count + c - c0, og * count,
                                  &grad_weight(grp * og + ol, i, 0, 0), grad_weight);
              }
            }
          }
        },
        threads);
    return;
  }
  const index_t padded = (og + L - 1) / L * L;
  const layout_images<T> dy = padded_grad_output(g, padded, grad_out, fn, threads);
  // Tasks: (group, up to 4 output vectors, a block of input channels), at least 8 when the
  // weight allows.
  // Two output vectors per tile at most: more input channels per tile read grad_output less.
  constexpr index_t vmax = 2;
  const index_t vectors = padded / L;
  const index_t o_tiles = (vectors + vmax - 1) / vmax;
  const index_t split = std::clamp<index_t>((8 + g.groups * o_tiles - 1) / (g.groups * o_tiles), 1,
                                            std::max<index_t>(1, ig / 8));
  const index_t i_block = std::min(ig, ((ig + split - 1) / split + 7) / 8 * 8);
  const index_t i_blocks = (ig + i_block - 1) / i_block;
  const index_t d_pixel = g.groups * padded;
  parallel_for(
      0, g.groups * o_tiles * i_blocks, 1,
      [&](index_t lo, index_t hi) {
        for (index_t task = lo; task < hi; ++task) {
          const index_t grp = task / (o_tiles * i_blocks);
          const index_t ot = task / i_blocks % o_tiles, ib = task % i_blocks;
          const index_t v0 = ot * vmax, nv = std::min(vmax, vectors - v0);
          const index_t i0 = ib * i_block, ni = std::min(i_block, ig - i0);
          const index_t width = nv * L;
          // acc[tap][i][o − v0·L], taps `tap_step` apart: the weight's size padded to whole
          // vectors, plus one vector per tap so that the taps of one (o, i), read together
          // below, are not a multiple of 1 KiB apart (4K-aliasing the stores to grad_weight).
          const index_t tap_step = ni * width + L;
          auto acc = task_buffer(taps * tap_step);
          for (index_t row0 = 0; row0 < all_rows; row0 += chunk) {
            const index_t row1 = std::min(all_rows, row0 + chunk);
            for (index_t tap = 0; tap < taps; ++tap) {
              const auto walk = make_tap_walk(g, tap / g.kernel_w, tap % g.kernel_w, dy.data,
                                              dy.image_stride, d_pixel, x);
              const index_t d_channel = grp * padded + v0 * L, x_channel = grp * ig + i0;
              T* a = acc.get() + tap * tap_step;
              if (nv == 1) {
                weight_tiles_plain<T, 1, plain_tile_rows<T, 1>>(walk, row0, row1, d_channel,
                                                                x_channel, ni, a, width);
              } else {
                weight_tiles_plain<T, 2, plain_tile_rows<T, 2>>(walk, row0, row1, d_channel,
                                                                x_channel, ni, a, width);
              }
            }
          }
          const index_t o_end = std::min(og, v0 * L + width);
          for (index_t o = v0 * L; o < o_end; ++o) {
            for (index_t i = 0; i < ni; ++i) {
              store_weight_taps(g, acc.get() + i * width + o - v0 * L, tap_step,
                                &grad_weight(grp * og + o, i0 + i, 0, 0), grad_weight);
            }
          }
        }
      },
      threads);
}

/// grad_bias[o] = Σ_{n, oy, ox} dY[n, o, oy, ox], summed in that order whatever the layout and
/// the thread count; dY (n, c, h, w)-ordered, any strides. Channel blocks run in parallel.
template <class T>
void conv2d_bias_grad(const strided_view<const T, 4>& grad_out, const strided_view<T, 1>& out,
                      int threads) {
  constexpr index_t block = 64;
  const index_t channels = grad_out.extent(1);
  const index_t s0 = grad_out.stride(0), s1 = grad_out.stride(1), s2 = grad_out.stride(2),
                s3 = grad_out.stride(3);
  const bool channels_inner = std::abs(s1) <= std::abs(s3);
  parallel_for(
      0, (channels + block - 1) / block, 1,
      [&](index_t lo, index_t hi) {
        for (index_t blk = lo; blk < hi; ++blk) {
          const index_t c0 = blk * block, count = std::min(block, channels - c0);
          T acc[block] = {};
          const T* base = grad_out.data() + c0 * s1;
          if (channels_inner) {  // a pixel's channels are near each other (NHWC)
            for (index_t n = 0; n < grad_out.extent(0); ++n) {
              for (index_t y = 0; y < grad_out.extent(2); ++y) {
                for (index_t x = 0; x < grad_out.extent(3); ++x) {
                  const T* p = base + n * s0 + y * s2 + x * s3;
                  for (index_t c = 0; c < count; ++c) acc[c] += p[c * s1];
                }
              }
            }
          } else {  // a channel's pixels are near each other (NCHW): same order per channel
            for (index_t c = 0; c < count; ++c) {
              T sum = T(0);
              for (index_t n = 0; n < grad_out.extent(0); ++n) {
                for (index_t y = 0; y < grad_out.extent(2); ++y) {
                  const T* p = base + c * s1 + n * s0 + y * s2;
                  for (index_t x = 0; x < grad_out.extent(3); ++x) sum += p[x * s3];
                }
              }
              acc[c] = sum;
            }
          }
          for (index_t c = 0; c < count; ++c) out(c0 + c) = acc[c];
        }
      },
      threads);
}

}  // namespace detail
CVK_END_NAMESPACE
