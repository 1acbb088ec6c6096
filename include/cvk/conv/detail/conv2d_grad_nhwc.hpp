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

#include "../../core/config.hpp"
#include "../../core/parallel.hpp"
#include "../../core/strided_view.hpp"
#include "../../detail/checks.hpp"
#include "conv2d_run.hpp"
#include "conv_transpose_nhwc.hpp"
#include "geometry.hpp"

CVK_BEGIN_NAMESPACE
namespace detail {

/// How conv2d_weight_grad cuts the weight into tasks: `group_block` whole groups (small groups
/// are batched so the inner loops have some length) × `out_block` output channels of each.
struct weight_grad_blocks {
  index_t group_block = 1, out_block = 1, group_blocks = 1, out_blocks = 1;
};

inline weight_grad_blocks plan_weight_grad(const conv2d_geometry& g) noexcept {
  // About 8 tasks when the weight allows (enough for the threads of these machines; the result
  // does not depend on the blocking, only the speed does).
  constexpr index_t target_tasks = 8;
  const index_t per_group = std::max<index_t>(1, g.out_per_group * g.in_per_group);
  weight_grad_blocks b;
  b.group_block =
      std::clamp<index_t>(256 / per_group, 1, std::max<index_t>(1, g.groups / target_tasks));
  b.group_blocks = (g.groups + b.group_block - 1) / b.group_block;
  b.out_block = std::max<index_t>(1, g.out_per_group);
  if (b.group_blocks < target_tasks) {
    const index_t split = (target_tasks + b.group_blocks - 1) / b.group_blocks;
    b.out_block = std::max<index_t>(1, (g.out_per_group + split - 1) / split);
  }
  b.out_blocks = (g.out_per_group + b.out_block - 1) / b.out_block;
  return b;
}

/// The pixels one kernel tap (ky, kx) sees: output pixels (n, oy, ox) with oy in [oy0, oy1),
/// ox in [ox0, ox1) (tap_outputs), grad_output's pixel at d + n·d_image + (oy·Wo + ox)·d_pixel,
/// the input pixel under the tap at x + n·x_image + (oy·sh + y_offset)·x_row
/// + (ox·sw + x_offset)·x_pixel. Both images are contiguous pixels of unit-stride channels.
template <class T>
struct tap_walk {
  index_t batch = 0, oy0 = 0, oy1 = 0, ox0 = 0, ox1 = 0, out_width = 0;
  const T* d = nullptr;
  index_t d_image = 0, d_pixel = 0;
  const T* x = nullptr;
  index_t x_image = 0, x_row = 0, x_pixel = 0;
  index_t stride_h = 1, stride_w = 1, y_offset = 0, x_offset = 0;
};

template <class T>
tap_walk<T> make_tap_walk(const conv2d_geometry& g, index_t ky, index_t kx, const T* d,
                          index_t d_image, index_t d_pixel, const layout_images<T>& x) {
  tap_walk<T> t;
  t.batch = g.batch;
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

/// One tile of weight-gradient sums: out[r·out_step + l] = Σ over the tap's pixels, (n, oy, ox)
/// increasing, of d[d_channel + r·d_step (+ l)] · x[x_channel + l], for r < Rows gradient rows
/// (output channels) and l < width (<= grad_lanes) input channels. The grad_output factor is one
/// channel for all l (ScalarD, the plain order) or the l-th of `width` (the expanded order). Each
/// input pixel is loaded once for all rows, and with Width (= width) known at compile time the
/// Rows × Width sums stay in registers over the pixels.
template <class T, bool ScalarD, index_t Rows, index_t Width>
void tap_sum(const tap_walk<T>& t, index_t d_channel, index_t d_step, index_t x_channel,
             index_t width, T* out, index_t out_step) {
  T sum[static_cast<std::size_t>(Rows)]
       [static_cast<std::size_t>(Width > 0 ? Width : grad_lanes<T>)] = {};
  const index_t lanes = Width > 0 ? Width : width;
  const index_t x_step = t.stride_w * t.x_pixel;
  for (index_t n = 0; n < t.batch; ++n) {
    for (index_t oy = t.oy0; oy < t.oy1; ++oy) {
      const T* d = t.d + n * t.d_image + (oy * t.out_width + t.ox0) * t.d_pixel + d_channel;
      const T* x = t.x + n * t.x_image + (oy * t.stride_h + t.y_offset) * t.x_row +
                   (t.ox0 * t.stride_w + t.x_offset) * t.x_pixel + x_channel;
      for (index_t k = 0; k < t.ox1 - t.ox0; ++k) {
        const T* __restrict xk = x + k * x_step;
        for (index_t r = 0; r < Rows; ++r) {
          const T* __restrict dk = d + k * t.d_pixel + r * d_step;
          T* __restrict s = sum[static_cast<std::size_t>(r)];
          for (index_t l = 0; l < lanes; ++l) s[l] += (ScalarD ? dk[0] : dk[l]) * xk[l];
        }
      }
    }
  }
  for (index_t r = 0; r < Rows; ++r) {
    std::copy(sum[static_cast<std::size_t>(r)], sum[static_cast<std::size_t>(r)] + lanes,
              out + r * out_step);
  }
}

/// tap_sum over `rows` gradient rows × `count` input channels: tiles of 4, 2, 1 rows and
/// grad_lanes channels (the last chunk of channels with a run-time width).
template <class T, bool ScalarD, index_t Rows = 4>
void tap_sums(const tap_walk<T>& t, index_t d_channel, index_t d_step, index_t rows,
              index_t x_channel, index_t count, T* out, index_t out_step) {
  constexpr index_t lanes = grad_lanes<T>;
  index_t r = 0;
  for (; r + Rows <= rows; r += Rows) {
    for (index_t c = 0; c < count; c += lanes) {
      const index_t d_at = d_channel + r * d_step + (ScalarD ? 0 : c);
      T* o = out + r * out_step + c;
      if (count - c >= lanes) {
        tap_sum<T, ScalarD, Rows, lanes>(t, d_at, d_step, x_channel + c, lanes, o, out_step);
      } else {
        tap_sum<T, ScalarD, Rows, 0>(t, d_at, d_step, x_channel + c, count - c, o, out_step);
      }
    }
  }
  if constexpr (Rows > 1) {
    if (r < rows) {
      tap_sums<T, ScalarD, Rows / 2>(t, d_channel + r * d_step, d_step, rows - r, x_channel, count,
                                     out + r * out_step, out_step);
    }
  }
}

/// grad_weight[o, i, ky, kx] = Σ_{n, oy, ox} dY[n, o, oy, ox] · x[n, grp·I/g + i, iy, ix] over the
/// taps inside the image (iy = oy·sh − pt + ky·dh, ix likewise), for the conv2d of geometry g.
/// Views (n, c, h, w)- and (o, i, ky, kx)-ordered, any strides. Small groups (transpose_expands)
/// read the expanded grad_output (expand_grad_output) and run over blocks of channels across
/// groups; others over blocks of (group, output channel), I/g channels at a time.
template <class T>
void conv2d_weight_grad(const conv2d_geometry& g, const strided_view<const T, 4>& input,
                        const strided_view<const T, 4>& grad_out,
                        const strided_view<T, 4>& grad_weight, int threads, const char* fn) {
  const index_t ig = g.in_per_group, og = g.out_per_group, channels = g.in_channels;
  const index_t taps = g.kernel_h * g.kernel_w;
  if (g.out_channels == 0 || ig == 0) return;
  const layout_images<T> x = to_image_layout(g, image_layout{channels, false}, input, fn,
                                             "the NHWC copy of input", threads);
  const auto task_buffer = [&](index_t size) {
    return checked_allocation<T>(size, fn, "a block of the weight gradient", grad_weight, [size] {
      return std::unique_ptr<T[]>(new T[static_cast<std::size_t>(size)]);
    });
  };
  if (transpose_expands(g)) {
    // acc[tap][ol][c − c0] is grad_weight[(c / (I/g))·(O/g) + ol, c % (I/g), ky, kx].
    const layout_images<T> expanded = expand_grad_output(g, grad_out, fn, threads);
    const index_t span = og * channels;
    // About 8 blocks of whole register tiles of channels (the blocking changes no value).
    constexpr index_t lanes = grad_lanes<T>;
    const index_t block =
        std::min(channels, std::max<index_t>(lanes, (channels / 8 + lanes - 1) / lanes * lanes));
    const index_t blocks = (channels + block - 1) / block;
    parallel_for(
        0, blocks, 1,
        [&](index_t lo, index_t hi) {
          auto acc = task_buffer(taps * og * block);  // at most the weight's size: checked
          for (index_t b = lo; b < hi; ++b) {
            const index_t c0 = b * block, count = std::min(block, channels - c0);
            for (index_t tap = 0; tap < taps; ++tap) {
              const auto walk = make_tap_walk(g, tap / g.kernel_w, tap % g.kernel_w, expanded.data,
                                              expanded.image_stride, span, x);
              tap_sums<T, false>(walk, c0, channels, og, c0, count, acc.get() + tap * og * count,
                                 count);
            }
            for (index_t tap = 0; tap < taps; ++tap) {
              for (index_t ol = 0; ol < og; ++ol) {
                for (index_t c = c0; c < c0 + count; ++c) {
                  grad_weight(c / ig * og + ol, c % ig, tap / g.kernel_w, tap % g.kernel_w) =
                      acc[static_cast<std::size_t>((tap * og + ol) * count + c - c0)];
                }
              }
            }
          }
        },
        threads);
    return;
  }
  const conv2d_geometry rows = transposed_rows(g);  // in_* extents: grad_output's
  const layout_images<T> dy = to_image_layout(rows, image_layout{rows.in_channels, false}, grad_out,
                                              fn, "the NHWC copy of grad_output", threads);
  const weight_grad_blocks b = plan_weight_grad(g);
  const index_t tap_block = b.group_block * b.out_block * ig;
  parallel_for(
      0, b.group_blocks * b.out_blocks, 1,
      [&](index_t lo, index_t hi) {
        auto acc = task_buffer(taps * tap_block);  // at most the weight's size: checked
        for (index_t task = lo; task < hi; ++task) {
          const index_t g0 = (task / b.out_blocks) * b.group_block;
          const index_t groups = std::min(b.group_block, g.groups - g0);
          const index_t o0 = (task % b.out_blocks) * b.out_block;
          const index_t outs = std::min(b.out_block, og - o0);
          // acc[tap][gl][ol][i] is grad_weight[(g0 + gl)·(O/g) + o0 + ol, i, ky, kx].
          for (index_t tap = 0; tap < taps; ++tap) {
            const auto walk = make_tap_walk(g, tap / g.kernel_w, tap % g.kernel_w, dy.data,
                                            dy.image_stride, g.out_channels, x);
            for (index_t gl = 0; gl < groups; ++gl) {
              tap_sums<T, true>(walk, (g0 + gl) * og + o0, 1, outs, (g0 + gl) * ig, ig,
                                acc.get() + tap * tap_block + gl * b.out_block * ig, ig);
            }
          }
          for (index_t gl = 0; gl < groups; ++gl) {
            for (index_t ol = 0; ol < outs; ++ol) {
              const index_t o = (g0 + gl) * og + o0 + ol;
              for (index_t i = 0; i < ig; ++i) {
                for (index_t tap = 0; tap < taps; ++tap) {
                  grad_weight(o, i, tap / g.kernel_w, tap % g.kernel_w) =
                      acc[static_cast<std::size_t>(tap * tap_block + (gl * b.out_block + ol) * ig +
                                                   i)];
                }
              }
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
