// cvk — computer-vision kernels, header-only C++20.
// The loops of 2-D pooling over (n, c, h, w)-ordered views of any strides, read straight from
// the input in either layout (no layout pass): when channels are the finer axis (NHWC) the
// innermost loop runs over a block of contiguous channels and vectorizes; otherwise (NCHW) over
// one channel's window taps. Forward: one reduction (max with its argmax, or a sum) per output,
// taps in row-major order as PyTorch visits them. Backward: a scatter into the input gradient in
// PyTorch's order (outputs row-major within each plane); the work is split by (image, channel
// block), which owns its part of the gradient, so there are no races and every thread count
// gives the same bits.
// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <string>
#include <type_traits>

#include "../../core/config.hpp"
#include "../../core/errors.hpp"
#include "../../core/parallel.hpp"
#include "../../core/strided_view.hpp"
#include "pool2d_windows.hpp"

CVK_BEGIN_NAMESPACE
namespace detail {

/// Channels per work unit when channels are innermost: the per-unit accumulators live on the
/// stack (block·(sizeof(T) + sizeof(index_t)) bytes).
inline constexpr index_t pool_channel_block = 256;

/// True when the view's channel axis is the finer one (NHWC-like): the channel loop goes inside.
template <class T>
bool pool_channels_inner(const strided_view<T, 4>& v) noexcept {
  return v.extent(1) > 1 && std::abs(v.stride(1)) <= std::abs(v.stride(3));
}

/// The work split shared by the forward and backward loops: units of `block` channels of one
/// image (block 1 when channels are not innermost: one plane per unit).
struct pool_units {
  index_t block = 1, blocks = 0;

  pool_units(index_t channels, bool channels_inner) {
    block = channels_inner ? std::min(channels, pool_channel_block) : 1;
    block = std::max<index_t>(block, 1);
    blocks = (channels + block - 1) / block;
  }
};

/// The channels of the unit starting at c0: a compile-time 1 when channels are not innermost,
/// so that the per-channel loops of the plane-by-plane order vanish.
template <bool ChannelsInner>
auto channel_count(const pool_units& units, index_t channels, index_t c0) noexcept {
  if constexpr (ChannelsInner) {
    return std::min(units.block, channels - c0);
  } else {
    return std::integral_constant<index_t, 1>{};
  }
}

/// Chunk length of a parallel_for over units of `cost` operations each (about 2^17 per chunk).
inline index_t pool_grain(index_t cost) noexcept {
  return std::max<index_t>(1, (index_t{1} << 17) / std::max<index_t>(1, cost));
}

/// Max reduction: a NaN in the window wins (the last one, as torch's `val > max || isnan(val)`),
/// otherwise the first maximum; -inf with the first tap's index when nothing is larger.
/// `Index`: the type the argmax is kept in while reducing — int32 when every index of the plane
/// fits, so that the index blend has the width of the float comparison and vectorizes with it.
template <class T, bool Indices, class Index = index_t>
struct max_reduction {
  using index_type = Index;
  static constexpr bool with_indices = Indices;
  static constexpr T start() noexcept { return -std::numeric_limits<T>::infinity(); }
  static void tap(T v, index_t k, T& best, Index& arg) noexcept {
    const bool take = v > best || v != v;
    best = take ? v : best;
    if constexpr (Indices) arg = take ? static_cast<Index>(k) : arg;
  }
  static T finish(T best, index_t) noexcept { return best; }
};

/// Sum reduction, divided once at the end (torch's avg_pool2d: sum / divisor). `Blocked`: long
/// contiguous runs of an NCHW plane are summed with 8 partial sums (vectorizable; a fixed order
/// that depends only on the shape): adaptive_avg_pool2d, whose NCHW global pooling torch also
/// computes as a blocked mean. Without it every tap is added in row-major order, as torch's
/// avg_pool2d does, which keeps avg_pool2d bit-identical to torch.
template <class T, bool Blocked = false>
struct sum_reduction {
  using index_type = index_t;
  static constexpr bool with_indices = false;
  static constexpr bool blocked = Blocked;
  static constexpr T start() noexcept { return T(0); }
  static void tap(T v, index_t, T& sum, index_t&) noexcept { sum += v; }
  static T finish(T sum, index_t divisor) noexcept { return sum / static_cast<T>(divisor); }
  /// sum + p[0] + ... + p[length - 1].
  static T run(const T* __restrict p, index_t length, T sum) noexcept {
    constexpr index_t lanes = 8;
    if (length < 2 * lanes) {
      for (index_t i = 0; i < length; ++i) sum += p[i];
      return sum;
    }
    T part[lanes] = {};
    index_t i = 0;
    for (; i + lanes <= length; i += lanes) {
      for (index_t l = 0; l < lanes; ++l) part[l] += p[i + l];
    }
    for (; i < length; ++i) part[0] += p[i];
    return sum + (((part[0] + part[4]) + (part[2] + part[6])) +
                  ((part[1] + part[5]) + (part[3] + part[7])));
  }
};

/// True when every argmax a max pooling of `g` can produce (first taps of degenerate windows,
/// up to a dilation past the input, included) fits in int32.
inline bool pool_indices_fit_int32(const pool2d_geometry& g) noexcept {
  const index_t step_h = g.rows.empty() ? 1 : g.rows[0].step;
  return static_cast<double>(g.in_height + step_h) *
             static_cast<double>(g.in_width + g.dilation_w) <
         static_cast<double>(std::numeric_limits<std::int32_t>::max());
}

/// y[n, c, oy, ox] = Reduction over the window of (oy, ox) of x[n, c, ·, ·]; with indices, also
/// the flat index iy·W + ix of the chosen tap within its plane. `indices.data()` may be null
/// when Reduction has none.
template <class T, class Reduction, bool ChannelsInner>
void pool_forward_units(const pool2d_geometry& g, const strided_view<const T, 4>& x,
                        const strided_view<T, 4>& y, const strided_view<index_t, 4>& indices,
                        int threads) {
  const pool_units units(g.channels, ChannelsInner);
  const index_t taps = std::max<index_t>(1, g.rows.empty() ? 1 : (g.rows[0].end - g.rows[0].first));
  const index_t cost = g.out_width * units.block * taps * taps;
  parallel_for(
      0, g.batch * g.out_height * units.blocks, pool_grain(cost),
      [&](index_t lo, index_t hi) {
        T acc[pool_channel_block];
        typename Reduction::index_type arg[pool_channel_block];
        for (index_t u = lo; u < hi; ++u) {
          const index_t b = u % units.blocks, row = u / units.blocks;
          const index_t n = row / g.out_height, oy = row % g.out_height;
          const index_t c0 = b * units.block;
          const auto count = channel_count<ChannelsInner>(units, g.channels, c0);
          const pool_window& wr = g.rows[static_cast<std::size_t>(oy)];
          const T* plane = x.data() + n * x.stride(0) + c0 * x.stride(1);
          const index_t sc = x.stride(1);
          for (index_t ox = 0; ox < g.out_width; ++ox) {
            const pool_window& wc = g.cols[static_cast<std::size_t>(ox)];
            const index_t first_tap = wr.first * g.in_width + wc.first;
            for (index_t c = 0; c < count; ++c) {
              acc[c] = Reduction::start();
              arg[c] = static_cast<typename Reduction::index_type>(first_tap);
            }
            bool summed = false;
            if constexpr (!ChannelsInner && requires { Reduction::blocked; }) {
              if (Reduction::blocked && x.stride(3) == 1) {
                const index_t length = wc.end - wc.first;
                if (length == g.in_width && x.stride(2) == g.in_width) {
                  // Whole rows of a dense plane: one contiguous run (global pooling).
                  acc[0] = Reduction::run(plane + wr.first * g.in_width,
                                          (wr.end - wr.first) * g.in_width, acc[0]);
                } else {
                  for (index_t iy = wr.first; iy < wr.end; ++iy) {
                    acc[0] = Reduction::run(plane + iy * x.stride(2) + wc.first, length, acc[0]);
                  }
                }
                summed = true;
              }
            }
            for (index_t iy = wr.first; iy < wr.end && !summed; iy += wr.step) {
              for (index_t ix = wc.first; ix < wc.end; ix += wc.step) {
                const T* p = plane + iy * x.stride(2) + ix * x.stride(3);
                const index_t k = iy * g.in_width + ix;
                if (ChannelsInner && sc == 1) {
                  for (index_t c = 0; c < count; ++c) Reduction::tap(p[c], k, acc[c], arg[c]);
                } else {
                  for (index_t c = 0; c < count; ++c) Reduction::tap(p[c * sc], k, acc[c], arg[c]);
                }
              }
            }
            // An empty window (possible only in degenerate dilated / ceil_mode cases) divides by
            // 1: torch leaves such an average 0.
            const index_t divisor = std::max<index_t>(1, pool_divisor(g, wr, wc));
            T* out =
                y.data() + n * y.stride(0) + c0 * y.stride(1) + oy * y.stride(2) + ox * y.stride(3);
            for (index_t c = 0; c < count; ++c) {
              out[c * y.stride(1)] = Reduction::finish(acc[c], divisor);
            }
            if constexpr (Reduction::with_indices) {
              index_t* where = indices.data() + n * indices.stride(0) + c0 * indices.stride(1) +
                               oy * indices.stride(2) + ox * indices.stride(3);
              for (index_t c = 0; c < count; ++c) where[c * indices.stride(1)] = arg[c];
            }
          }
        }
      },
      threads);
}

/// The NCHW row kernel for regular column windows and unit column stride: per output row
/// (n, c, oy), a tile of outputs is reduced tap by tap — for each input row iy of the window and
/// each kx, over every ox of the tile whose column ox·s − p + kx·d is inside the input — so the
/// innermost loop runs over consecutive outputs (vectorized; `StrideW` 1 or 2 at compile time,
/// 0 for any). Each output still sees its taps in row-major order: the results are those of
/// pool_forward_units.
template <class T, class Reduction, index_t StrideW>
void pool_forward_rows(const pool2d_geometry& g, const strided_view<const T, 4>& x,
                       const strided_view<T, 4>& y, const strided_view<index_t, 4>& indices,
                       int threads) {
  constexpr index_t tile = pool_channel_block;
  const index_t sw = StrideW > 0 ? StrideW : g.stride_w;
  const index_t width = g.in_width;
  const index_t kernel_h = g.rows.empty() ? 1 : (g.rows[0].end - g.rows[0].first);
  parallel_for(
      0, g.batch * g.channels * g.out_height,
      pool_grain(g.out_width * g.kernel_w * std::max<index_t>(1, kernel_h)),
      [&](index_t lo, index_t hi) {
        T acc[tile];
        typename Reduction::index_type arg[tile];
        for (index_t r = lo; r < hi; ++r) {
          const index_t oy = r % g.out_height, plane_index = r / g.out_height;
          const index_t n = plane_index / g.channels, c = plane_index % g.channels;
          const T* plane = x.data() + n * x.stride(0) + c * x.stride(1);
          const pool_window& wr = g.rows[static_cast<std::size_t>(oy)];
          T* out = y.data() + n * y.stride(0) + c * y.stride(1) + oy * y.stride(2);
          for (index_t o0 = 0; o0 < g.out_width; o0 += tile) {
            const index_t o1 = std::min(g.out_width, o0 + tile);
            for (index_t ox = o0; ox < o1; ++ox) {
              acc[ox - o0] = Reduction::start();
              arg[ox - o0] = static_cast<typename Reduction::index_type>(
                  wr.first * width + g.cols[static_cast<std::size_t>(ox)].first);
            }
            for (index_t iy = wr.first; iy < wr.end; iy += wr.step) {
              const T* row = plane + iy * x.stride(2);
              for (index_t kx = 0; kx < g.kernel_w; ++kx) {
                // Column ox·sw + offset must lie in [0, width).
                const index_t offset = kx * g.dilation_w - g.pad_w;
                const index_t first = std::max(o0, offset >= 0 ? 0 : (sw - 1 - offset) / sw);
                const index_t last = offset > width - 1 ? 0 : (width - 1 - offset) / sw + 1;
                const index_t end = std::min(o1, last);
                const T* __restrict src = row + offset;
                const index_t tap_base = iy * width + offset;
                T* __restrict a = acc;
                typename Reduction::index_type* __restrict ar = arg;
                for (index_t ox = first; ox < end; ++ox) {
                  Reduction::tap(src[ox * sw], tap_base + ox * sw, a[ox - o0], ar[ox - o0]);
                }
              }
            }
            for (index_t ox = o0; ox < o1; ++ox) {
              const index_t divisor =
                  std::max<index_t>(1, pool_divisor(g, wr, g.cols[static_cast<std::size_t>(ox)]));
              out[ox * y.stride(3)] = Reduction::finish(acc[ox - o0], divisor);
            }
            if constexpr (Reduction::with_indices) {
              index_t* where = indices.data() + n * indices.stride(0) + c * indices.stride(1) +
                               oy * indices.stride(2);
              for (index_t ox = o0; ox < o1; ++ox) where[ox * indices.stride(3)] = arg[ox - o0];
            }
          }
        }
      },
      threads);
}

/// pool_forward_units with the loop order the input's strides favour.
template <class T, class Reduction>
void pool_forward(const pool2d_geometry& g, const strided_view<const T, 4>& x,
                  const strided_view<T, 4>& y, const strided_view<index_t, 4>& indices,
                  int threads) {
  if (g.batch == 0 || g.channels == 0) return;
  if (pool_channels_inner(x)) {
    pool_forward_units<T, Reduction, true>(g, x, y, indices, threads);
  } else if (g.regular_columns && x.stride(3) == 1) {
    if (g.stride_w == 1) {
      pool_forward_rows<T, Reduction, 1>(g, x, y, indices, threads);
    } else if (g.stride_w == 2) {
      pool_forward_rows<T, Reduction, 2>(g, x, y, indices, threads);
    } else {
      pool_forward_rows<T, Reduction, 0>(g, x, y, indices, threads);
    }
  } else {
    pool_forward_units<T, Reduction, false>(g, x, y, indices, threads);
  }
}

/// The skeleton of every backward pass: grad_input is zeroed and then `scatter(n, c0, count, oy)`
/// is called for every output row in order, per unit of (image, channel block); each unit owns
/// grad_input[n, c0 : c0 + count, ·, ·]. A scatter adds the row's outputs in increasing ox.
template <bool ChannelsInner, class T, class Scatter>
void pool_backward_units(const pool2d_geometry& g, const strided_view<T, 4>& grad_input,
                         index_t taps, int threads, const Scatter& scatter) {
  const pool_units units(g.channels, ChannelsInner);
  const index_t cost = units.block * (g.in_height * g.in_width +
                                      g.out_height * g.out_width * std::max<index_t>(1, taps));
  parallel_for(
      0, g.batch * units.blocks, pool_grain(cost),
      [&](index_t lo, index_t hi) {
        for (index_t u = lo; u < hi; ++u) {
          const index_t n = u / units.blocks, c0 = (u % units.blocks) * units.block;
          const auto count = channel_count<ChannelsInner>(units, g.channels, c0);
          T* base = grad_input.data() + n * grad_input.stride(0) + c0 * grad_input.stride(1);
          // The unit's slice of grad_input is zeroed run by run where it is contiguous.
          const index_t sc = grad_input.stride(1), sx = grad_input.stride(3);
          const index_t run = ChannelsInner ? count : 1;
          const bool pixel_runs = run == 1 || sc == 1;
          const bool row_runs = pixel_runs && sx == run;
          for (index_t iy = 0; iy < g.in_height; ++iy) {
            T* row = base + iy * grad_input.stride(2);
            if (row_runs) {
              std::fill(row, row + g.in_width * run, T(0));
              continue;
            }
            for (index_t ix = 0; ix < g.in_width; ++ix) {
              T* p = row + ix * sx;
              if (pixel_runs) {
                std::fill(p, p + run, T(0));
              } else {
                for (index_t c = 0; c < count; ++c) p[c * sc] = T(0);
              }
            }
          }
          for (index_t oy = 0; oy < g.out_height; ++oy) {
            scatter(n, c0, count, oy);
          }
        }
      },
      threads);
}

/// pool_backward_units in the loop order grad_input's strides favour; `scatter` takes the
/// channel count as a generic argument (a compile-time 1 plane by plane).
template <class T, class Scatter>
void pool_backward(const pool2d_geometry& g, const strided_view<T, 4>& grad_input, index_t taps,
                   int threads, const Scatter& scatter) {
  if (g.batch == 0 || g.channels == 0) return;
  if (pool_channels_inner(grad_input)) {
    pool_backward_units<true>(g, grad_input, taps, threads, scatter);
  } else {
    pool_backward_units<false>(g, grad_input, taps, threads, scatter);
  }
}

/// grad_input[n, c, k / W, k % W] += grad_output[n, c, oy, ox] with k = indices[n, c, oy, ox].
/// Throws out_of_range (from the first bad index in chunk order) when k is outside [0, H·W).
template <class T>
void max_pool_backward(const pool2d_geometry& g, const strided_view<const T, 4>& grad_output,
                       const strided_view<const index_t, 4>& indices,
                       const strided_view<T, 4>& grad_input, const char* fn, int threads) {
  const index_t plane = g.in_height * g.in_width;
  const index_t gs = grad_input.stride(1);
  // Dense rows (NCHW and NHWC alike) place k at k·stride(3): no division per element.
  const bool dense_rows = grad_input.stride(2) == g.in_width * grad_input.stride(3);
  pool_backward<T>(g, grad_input, 1, threads, [&](index_t n, index_t c0, auto count, index_t oy) {
    for (index_t ox = 0; ox < g.out_width; ++ox) {
      const T* go = grad_output.data() + n * grad_output.stride(0) + c0 * grad_output.stride(1) +
                    oy * grad_output.stride(2) + ox * grad_output.stride(3);
      const index_t* ind = indices.data() + n * indices.stride(0) + c0 * indices.stride(1) +
                           oy * indices.stride(2) + ox * indices.stride(3);
      T* gi = grad_input.data() + n * grad_input.stride(0) + c0 * gs;
      for (index_t c = 0; c < count; ++c) {
        const index_t k = ind[c * indices.stride(1)];
        if (k < 0 || k >= plane) {
          CVK_THROW(out_of_range, std::string(fn) + ": indices holds " + std::to_string(k) +
                                      " at (n, c, oy, ox) = (" + std::to_string(n) + ", " +
                                      std::to_string(c0 + c) + ", " + std::to_string(oy) + ", " +
                                      std::to_string(ox) + "), outside the input plane of H×W = " +
                                      std::to_string(g.in_height) + "×" +
                                      std::to_string(g.in_width));
        }
        const index_t offset = dense_rows ? k * grad_input.stride(3)
                                          : (k / g.in_width) * grad_input.stride(2) +
                                                (k % g.in_width) * grad_input.stride(3);
        gi[c * gs + offset] += go[c * grad_output.stride(1)];
      }
    }
  });
}

/// row[ox·StrideW + offset] += delta[ox − o0] for ox in [first, end): one kx of the NCHW row
/// scatter of average_pool_backward (StrideW 0: `stride` at run time).
template <class T, index_t StrideW>
void scatter_columns(T* __restrict row, const T* __restrict delta, index_t first, index_t end,
                     index_t o0, index_t offset, index_t stride) noexcept {
  const index_t sw = StrideW > 0 ? StrideW : stride;
  for (index_t ox = first; ox < end; ++ox) row[ox * sw + offset] += delta[ox - o0];
}

/// grad_input[n, c, iy, ix] += grad_output[n, c, oy, ox] / divisor(oy, ox) over every tap of the
/// window of (oy, ox): the gradient of avg_pool2d and adaptive_avg_pool2d. Every grad_input
/// element receives its terms in increasing (oy, ox), torch's order, in every loop order below.
template <class T>
void average_pool_backward(const pool2d_geometry& g, const strided_view<const T, 4>& grad_output,
                           const strided_view<T, 4>& grad_input, int threads) {
  const index_t gs = grad_input.stride(1);
  const index_t taps = g.rows.empty() ? 1 : (g.rows[0].end - g.rows[0].first);
  const bool rows_path = g.regular_columns && grad_input.stride(3) == 1;
  pool_backward<T>(
      g, grad_input, taps * taps, threads, [&](index_t n, index_t c0, auto count, index_t oy) {
        const pool_window& wr = g.rows[static_cast<std::size_t>(oy)];
        const T* go_row = grad_output.data() + n * grad_output.stride(0) +
                          c0 * grad_output.stride(1) + oy * grad_output.stride(2);
        T* base = grad_input.data() + n * grad_input.stride(0) + c0 * gs;
        T delta[pool_channel_block];
        if constexpr (std::is_same_v<decltype(count), std::integral_constant<index_t, 1>>) {
          if (rows_path) {
            // One plane, regular columns: a tile of outputs at a time, kx from the last tap down so
            // that each element still receives its terms in increasing ox.
            for (index_t o0 = 0; o0 < g.out_width; o0 += pool_channel_block) {
              const index_t o1 = std::min(g.out_width, o0 + pool_channel_block);
              for (index_t ox = o0; ox < o1; ++ox) {
                const index_t divisor =
                    std::max<index_t>(1, pool_divisor(g, wr, g.cols[static_cast<std::size_t>(ox)]));
                delta[ox - o0] = go_row[ox * grad_output.stride(3)] / static_cast<T>(divisor);
              }
              for (index_t iy = wr.first; iy < wr.end; iy += wr.step) {
                T* row = base + iy * grad_input.stride(2);
                for (index_t kx = g.kernel_w; kx-- > 0;) {
                  const index_t offset = kx * g.dilation_w - g.pad_w, sw = g.stride_w;
                  const index_t first = std::max(o0, offset >= 0 ? 0 : (sw - 1 - offset) / sw);
                  const index_t last =
                      offset > g.in_width - 1 ? 0 : (g.in_width - 1 - offset) / sw + 1;
                  const index_t end = std::min(o1, last);
                  if (sw == 1) {
                    scatter_columns<T, 1>(row, delta, first, end, o0, offset, sw);
                  } else if (sw == 2) {
                    scatter_columns<T, 2>(row, delta, first, end, o0, offset, sw);
                  } else {
                    scatter_columns<T, 0>(row, delta, first, end, o0, offset, sw);
                  }
                }
              }
            }
            return;
          }
        }
        for (index_t ox = 0; ox < g.out_width; ++ox) {
          const pool_window& wc = g.cols[static_cast<std::size_t>(ox)];
          const T divisor = static_cast<T>(std::max<index_t>(1, pool_divisor(g, wr, wc)));
          const T* go = go_row + ox * grad_output.stride(3);
          for (index_t c = 0; c < count; ++c) delta[c] = go[c * grad_output.stride(1)] / divisor;
          for (index_t iy = wr.first; iy < wr.end; iy += wr.step) {
            for (index_t ix = wc.first; ix < wc.end; ix += wc.step) {
              T* gi = base + iy * grad_input.stride(2) + ix * grad_input.stride(3);
              if (gs == 1) {
                for (index_t c = 0; c < count; ++c) gi[c] += delta[c];
              } else {
                for (index_t c = 0; c < count; ++c) gi[c * gs] += delta[c];
              }
            }
          }
        }
      });
}

}  // namespace detail
CVK_END_NAMESPACE
