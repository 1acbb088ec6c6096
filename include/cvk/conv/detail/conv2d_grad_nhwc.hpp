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

/// Small groups (transpose_expands): grad_weight[(c / (I/g))·(O/g) + ol, c % (I/g), ky, kx] for
/// the channels c of [c0, c0 + count), accumulated as acc[tap][ol][c − c0] from the expanded
/// output gradient (expand_grad_output) times the NHWC input: the innermost loop runs over
/// contiguous channels, across groups. Sums over (n, oy, ox) in increasing order.
template <class T>
void weight_grad_channel_block(const conv2d_geometry& g, const layout_images<T>& x,
                               const layout_images<T>& expanded, index_t c0, index_t count,
                               T* acc) {
  const index_t og = g.out_per_group, channels = g.in_channels, span = og * channels;
  for (index_t ky = 0; ky < g.kernel_h; ++ky) {
    const index_t y_offset = ky * g.dilation_h - g.pad_top;
    const auto [oy0, oy1] = tap_outputs(g.out_height, g.in_height, g.stride_h, y_offset);
    for (index_t kx = 0; kx < g.kernel_w; ++kx) {
      const index_t x_offset = kx * g.dilation_w - g.pad_left;
      const auto [ox0, ox1] = tap_outputs(g.out_width, g.in_width, g.stride_w, x_offset);
      T* acc_tap = acc + (ky * g.kernel_w + kx) * og * count;
      for (index_t n = 0; n < g.batch; ++n) {
        for (index_t oy = oy0; oy < oy1; ++oy) {
          const T* e_row = expanded.data + n * expanded.image_stride + oy * g.out_width * span;
          const T* x_row =
              x.data + n * x.image_stride + (oy * g.stride_h + y_offset) * g.in_width * channels;
          for (index_t ox = ox0; ox < ox1; ++ox) {
            const T* __restrict xs = x_row + (ox * g.stride_w + x_offset) * channels + c0;
            const T* e = e_row + ox * span + c0;
            for (index_t ol = 0; ol < og; ++ol) {
              T* __restrict a = acc_tap + ol * count;
              const T* __restrict d = e + ol * channels;
              for (index_t c = 0; c < count; ++c) a[c] += d[c] * xs[c];
            }
          }
        }
      }
    }
  }
}

/// grad_weight[o, i, ky, kx] = Σ_{n, oy, ox} dY[n, o, oy, ox] · x[n, grp·I/g + i, iy, ix] over the
/// taps inside the image (iy = oy·sh − pt + ky·dh, ix likewise), for the conv2d of geometry g.
/// Views (n, c, h, w)- and (o, i, ky, kx)-ordered, any strides.
template <class T>
void conv2d_weight_grad(const conv2d_geometry& g, const strided_view<const T, 4>& input,
                        const strided_view<const T, 4>& grad_out,
                        const strided_view<T, 4>& grad_weight, int threads, const char* fn) {
  const index_t ig = g.in_per_group, og = g.out_per_group;
  const index_t taps = g.kernel_h * g.kernel_w;
  if (g.out_channels == 0 || ig == 0) return;
  const layout_images<T> x = to_image_layout(g, image_layout{g.in_channels, false}, input, fn,
                                             "the NHWC copy of input", threads);
  const auto task_buffer = [&](index_t size) {
    return checked_allocation<T>(size, fn, "a block of the weight gradient", grad_weight, [size] {
      return std::unique_ptr<T[]>(new T[static_cast<std::size_t>(size)]);
    });
  };
  if (transpose_expands(g)) {
    const layout_images<T> expanded = expand_grad_output(g, grad_out, fn, threads);
    // About 8 blocks of whole vectors of channels (the blocking changes no value).
    const index_t block =
        std::min(g.in_channels, std::max<index_t>(16, (g.in_channels / 8 + 15) / 16 * 16));
    const index_t blocks = (g.in_channels + block - 1) / block;
    parallel_for(
        0, blocks, 1,
        [&](index_t lo, index_t hi) {
          auto acc = task_buffer(taps * og * block);  // at most the weight's size: checked
          for (index_t b = lo; b < hi; ++b) {
            const index_t c0 = b * block, count = std::min(block, g.in_channels - c0);
            std::fill(acc.get(), acc.get() + taps * og * count, T(0));
            weight_grad_channel_block(g, x, expanded, c0, count, acc.get());
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
  const index_t acc_size = taps * tap_block;  // at most the weight's size: checked
  parallel_for(
      0, b.group_blocks * b.out_blocks, 1,
      [&](index_t lo, index_t hi) {
        auto acc = task_buffer(acc_size);
        for (index_t task = lo; task < hi; ++task) {
          const index_t g0 = (task / b.out_blocks) * b.group_block;
          const index_t groups = std::min(b.group_block, g.groups - g0);
          const index_t o0 = (task % b.out_blocks) * b.out_block;
          const index_t outs = std::min(b.out_block, og - o0);
          std::fill(acc.get(), acc.get() + acc_size, T(0));
          for (index_t ky = 0; ky < g.kernel_h; ++ky) {
            const index_t y_offset = ky * g.dilation_h - g.pad_top;
            const auto [oy0, oy1] = tap_outputs(g.out_height, g.in_height, g.stride_h, y_offset);
            for (index_t kx = 0; kx < g.kernel_w; ++kx) {
              const index_t x_offset = kx * g.dilation_w - g.pad_left;
              const auto [ox0, ox1] = tap_outputs(g.out_width, g.in_width, g.stride_w, x_offset);
              T* acc_tap = acc.get() + (ky * g.kernel_w + kx) * tap_block;
              for (index_t n = 0; n < g.batch; ++n) {
                for (index_t oy = oy0; oy < oy1; ++oy) {
                  const T* dy_row =
                      dy.data + n * dy.image_stride + oy * g.out_width * g.out_channels;
                  const T* x_row = x.data + n * x.image_stride +
                                   (oy * g.stride_h + y_offset) * g.in_width * g.in_channels;
                  for (index_t ox = ox0; ox < ox1; ++ox) {
                    const T* d = dy_row + ox * g.out_channels + g0 * og + o0;
                    const T* xp = x_row + (ox * g.stride_w + x_offset) * g.in_channels + g0 * ig;
                    for (index_t gl = 0; gl < groups; ++gl) {
                      const T* __restrict xs = xp + gl * ig;
                      for (index_t ol = 0; ol < outs; ++ol) {
                        const T dv = d[gl * og + ol];
                        T* __restrict a = acc_tap + (gl * b.out_block + ol) * ig;
                        for (index_t i = 0; i < ig; ++i) a[i] += dv * xs[i];
                      }
                    }
                  }
                }
              }
            }
          }
          for (index_t gl = 0; gl < groups; ++gl) {
            for (index_t ol = 0; ol < outs; ++ol) {
              const index_t o = (g0 + gl) * og + o0 + ol;
              for (index_t i = 0; i < ig; ++i) {
                for (index_t ky = 0; ky < g.kernel_h; ++ky) {
                  for (index_t kx = 0; kx < g.kernel_w; ++kx) {
                    grad_weight(o, i, ky, kx) = acc[static_cast<std::size_t>(
                        (ky * g.kernel_w + kx) * tap_block + (gl * b.out_block + ol) * ig + i)];
                  }
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
