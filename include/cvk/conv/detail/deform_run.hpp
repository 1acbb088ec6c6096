// cvk — computer-vision kernels, header-only C++20.
// deform_conv2d forward and backward drivers: chunks of output rows, for each a column buffer
// gathered with the samples of deform_sampling.hpp, then conv2d's own kernels on it as a 1×1
// grouped conv — conv2d_plan (packed once per call) for the output and for the column gradient
// (the transposed 1×1 conv), conv2d_backward_weight for the weight gradient.
//
// Determinism: chunk sizes depend on the shape only; each column, offset / mask gradient and
// output element is written by one task; the input gradient is scattered by tasks that own
// disjoint channel runs, each visiting (chunk, pixel, tap) in order; the weight gradient is the
// sum of the chunks' gradients in chunk order. Every result is bit-identical for any thread count.
// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <array>
#include <memory>
#include <type_traits>
#include <vector>

#include "../../core/config.hpp"
#include "../../core/layout.hpp"
#include "../../core/parallel.hpp"
#include "../../core/strided_view.hpp"
#include "../../detail/checks.hpp"
#include "../../detail/simd.hpp"
#include "../conv2d.hpp"
#include "../conv2d_backward.hpp"
#include "conv2d_grad_nhwc.hpp"
#include "conv2d_run.hpp"
#include "deform_sampling.hpp"
#include "geometry.hpp"

CVK_BEGIN_NAMESPACE
namespace detail {

/// Column-buffer budget in elements: a chunk holds max(1, ⌊budget / (Wo·C·K)⌋) output rows.
inline constexpr index_t deform_column_budget = index_t{1} << 17;

inline index_t deform_chunk_rows(const deform_geometry& d) {
  const index_t row = std::max<index_t>(1, d.conv.out_width * d.columns);
  return std::clamp<index_t>(deform_column_budget / row, 1,
                             std::max<index_t>(1, d.conv.out_height));
}

/// `count` uninitialised values (buffers every element of which is written before it is read).
template <class E, class Shape>
std::unique_ptr<E[]> deform_buffer(index_t count, const char* fn, const char* what,
                                   const Shape& shape) {
  return checked_allocation<E>(count, fn, what, shape, [count] {
    return std::unique_ptr<E[]>(new E[static_cast<std::size_t>(std::max<index_t>(count, 1))]);
  });
}

/// The 1×1 weight w'[o, t·(C/g) + i] = w[o, i, t / KW, t % KW] (`w` OIHW-ordered), O×(C/g·K).
template <class T>
std::vector<T> deform_pointwise_weight(const deform_geometry& d, const strided_view<const T, 4>& w,
                                       const char* fn) {
  const conv2d_geometry& g = d.conv;
  const index_t count = checked_mul(g.out_channels, d.columns_per_group, fn, "weight", w);
  std::vector<T> out = checked_vector<T>(count, fn, "the 1×1 weight", w);
  for (index_t o = 0; o < g.out_channels; ++o) {
    for (index_t i = 0; i < g.in_per_group; ++i) {
      for (index_t t = 0; t < d.taps; ++t) {
        out[static_cast<std::size_t>(o * d.columns_per_group + t * g.in_per_group + i)] =
            w(o, i, t / g.kernel_w, t % g.kernel_w);
      }
    }
  }
  return out;
}

/// The transposed 1×1 weight (for the column gradient): wT[grp·(C/g·K) + j, o'] = w'[grp·(O/g)
/// + o', j], (C·K)×(O/g).
template <class T>
std::vector<T> deform_transposed_weight(const deform_geometry& d, const std::vector<T>& wp,
                                        const char* fn) {
  const conv2d_geometry& g = d.conv;
  std::vector<T> out =
      checked_vector<T>(g.out_channels * d.columns_per_group, fn, "the 1×1 weight", "C·K×O/g");
  for (index_t grp = 0; grp < g.groups; ++grp) {
    for (index_t j = 0; j < d.columns_per_group; ++j) {
      for (index_t o = 0; o < g.out_per_group; ++o) {
        out[static_cast<std::size_t>((grp * d.columns_per_group + j) * g.out_per_group + o)] =
            wp[static_cast<std::size_t>((grp * g.out_per_group + o) * d.columns_per_group + j)];
      }
    }
  }
  return out;
}

inline conv2d_params deform_pointwise_params(const deform_geometry& d, int threads) {
  conv2d_params p;
  p.groups = d.conv.groups;
  p.data_layout = layout::nhwc;
  p.threads = threads;
  return p;
}

/// The (n, h, w, c)-ordered view of rows [r0, r0 + rows) of image n of an (n, c, h, w)-ordered
/// view, as a 1-image NHWC tensor.
template <class T>
strided_view<T, 4> deform_rows_nhwc(const strided_view<T, 4>& v, index_t n, index_t r0,
                                    index_t rows) {
  return {v.data() + n * v.stride(0) + r0 * v.stride(2),
          {1, rows, v.extent(3), v.extent(1)},
          {v.stride(0), v.stride(2), v.stride(3), v.stride(1)}};
}

/// Tasks of the per-pixel loops: about 2^15 multiply-adds each.
inline index_t deform_pixel_grain(const deform_geometry& d) {
  return std::max<index_t>(1, (index_t{1} << 13) / std::max<index_t>(1, d.columns));
}

/// out = deform_conv2d forward. Views are (n, c, h, w)-ordered (weight OIHW); mask.data() null
/// for v1; `bias` a rank-1 tensor or no_bias.
template <class T, class Bias>
void deform_forward(const deform_geometry& d, const strided_view<const T, 4>& x,
                    const strided_view<const T, 4>& offset, const strided_view<const T, 4>& mask,
                    const strided_view<const T, 4>& weight, const Bias& bias,
                    const strided_view<T, 4>& out, int threads, const char* fn) {
  const conv2d_geometry& g = d.conv;
  if (g.batch == 0 || g.out_channels == 0 || g.out_height == 0 || g.out_width == 0) return;
  if (d.columns == 0) {  // no input channels: an empty sum, the bias alone
    for (index_t n = 0; n < g.batch; ++n)
      for (index_t o = 0; o < g.out_channels; ++o)
        for (index_t y = 0; y < g.out_height; ++y)
          for (index_t xx = 0; xx < g.out_width; ++xx) {
            if constexpr (std::is_same_v<Bias, no_bias_t>) {
              out(n, o, y, xx) = T(0);
            } else {
              out(n, o, y, xx) = bias(o);
            }
          }
    return;
  }
  const std::vector<T> wp = deform_pointwise_weight(d, weight, fn);
  const conv2d_plan<T> plan(
      caller{fn}, strided_view<const T, 4>(wp.data(), {g.out_channels, d.columns_per_group, 1, 1}),
      bias, deform_pointwise_params(d, threads));
  // The input as NHWC images: its own memory when it already is, else one copy.
  const layout_images<T> images = to_image_layout(g, image_layout{g.in_channels, false}, x, fn,
                                                  "the NHWC copy of input", threads);
  const std::vector<T> zeros(static_cast<std::size_t>(g.in_channels), T(0));
  const std::vector<deform_segment> segments = deform_segments(d);
  const index_t chunk = deform_chunk_rows(d);
  const index_t pixel_columns = d.columns;
  const auto columns =
      deform_buffer<T>(checked_mul(chunk * g.out_width, pixel_columns, fn, "the column buffer", x),
                       fn, "the column buffer", x);
  const index_t samples_per_pixel = checked_mul(d.taps, d.offset_groups, fn, "offset", offset);
  const index_t grain = deform_pixel_grain(d);
  for (index_t n = 0; n < g.batch; ++n) {
    for (index_t r0 = 0; r0 < g.out_height; r0 += chunk) {
      const index_t rows = std::min(chunk, g.out_height - r0);
      parallel_for(
          0, rows * g.out_width, grain,
          [&](index_t lo, index_t hi) {
            std::vector<deform_sample<T>> samples(static_cast<std::size_t>(samples_per_pixel));
            const deform_image<const T> image{images.data + n * images.image_stride, zeros.data(),
                                              g.in_channels};
            for (index_t p = lo; p < hi; ++p) {
              const index_t oy = r0 + p / g.out_width, ox = p % g.out_width;
              deform_pixel_samples<T>(d, offset, mask, n, oy, ox, samples.data());
              deform_gather_pixel<T>(d, segments, samples.data(), image,
                                     columns.get() + p * pixel_columns);
            }
          },
          threads);
      plan(strided_view<const T, 4>(columns.get(), {1, rows, g.out_width, pixel_columns}),
           deform_rows_nhwc(out, n, r0, rows));
    }
  }
}

/// Where the backward pass writes: (n, c, h, w)-ordered views (weight OIHW); data() null for a
/// gradient not asked for.
template <class T>
struct deform_grad_targets {
  strided_view<T, 4> input, offset, mask, weight;
  strided_view<T, 1> bias;
};

/// The gradients of deform_conv2d from grad_output `dy` ((n, c, h, w)-ordered).
template <class T>
void deform_backward(const deform_geometry& d, const strided_view<const T, 4>& x,
                     const strided_view<const T, 4>& offset, const strided_view<const T, 4>& mask,
                     const strided_view<const T, 4>& weight, const strided_view<const T, 4>& dy,
                     const deform_grad_targets<T>& out, int threads, const char* fn) {
  const conv2d_geometry& g = d.conv;
  if (out.bias.data() != nullptr) conv2d_bias_grad<T>(dy, out.bias, threads);
  const bool want_input = out.input.data() != nullptr;
  const bool want_offset = out.offset.data() != nullptr;
  const bool want_mask = out.mask.data() != nullptr && mask.data() != nullptr;
  const bool want_weight = out.weight.data() != nullptr;
  const bool want_columns_grad = want_input || want_offset || want_mask;
  const auto fill = [threads](const auto& v) {  // zeroes a (n, c, h, w) view
    parallel_for(
        0, v.extent(0) * v.extent(1), 16,
        [&](index_t lo, index_t hi) {
          for (index_t r = lo; r < hi; ++r) {
            for (index_t y = 0; y < v.extent(2); ++y) {
              for (index_t xx = 0; xx < v.extent(3); ++xx) {
                v(r / v.extent(1), r % v.extent(1), y, xx) = 0;
              }
            }
          }
        },
        threads);
  };
  const bool empty = g.batch == 0 || g.out_height == 0 || g.out_width == 0;
  if (empty || g.out_channels == 0 || g.in_channels == 0) {
    // No output pixel or no term: every gradient is zero (an empty sum).
    if (want_input) fill(out.input);
    if (want_offset) fill(out.offset);
    if (want_mask) fill(out.mask);
    if (want_weight) fill(out.weight);
    return;
  }

  const std::vector<T> wp = deform_pointwise_weight(d, weight, fn);
  const conv2d_params p1 = deform_pointwise_params(d, threads);
  layout_images<T> images;
  if (want_offset || want_mask || want_weight) {
    images = to_image_layout(g, image_layout{g.in_channels, false}, x, fn, "the NHWC copy of input",
                             threads);
  }
  const std::vector<T> zeros(static_cast<std::size_t>(g.in_channels), T(0));
  std::vector<T> discard(static_cast<std::size_t>(g.in_channels), T(0));
  std::vector<T> wt;
  std::vector<T> grad_image;
  conv2d_params pt = p1;
  if (want_columns_grad) wt = deform_transposed_weight(d, wp, fn);
  // The transposed 1×1 conv: O → C·K channels, g groups, weight (C·K)×(O/g)×1×1.
  const conv2d_plan<T> transposed(
      caller{fn},
      strided_view<const T, 4>(wt.data(),
                               {want_columns_grad ? d.columns : 0, g.out_per_group, 1, 1}),
      no_bias, pt);
  // grad_input is summed in place when its images are NHWC-contiguous, else in an NHWC buffer
  // copied out at the end.
  const bool input_in_place = want_input && images_are_nhwc(out.input);
  T* grad_input_data = nullptr;
  index_t grad_input_image = g.in_height * g.in_width * g.in_channels;
  if (input_in_place) {
    fill(out.input);
    grad_input_data = out.input.data();
    grad_input_image = out.input.stride(0);
  } else if (want_input) {
    grad_image = checked_vector<T>(
        checked_mul(g.batch * g.in_height * g.in_width, g.in_channels, fn, "grad_input", x), fn,
        "grad_input's NHWC buffer", x);
    grad_input_data = grad_image.data();
  }
  std::vector<T> grad_weight;  // O×(C/g·K), the sum over chunks
  if (want_weight) {
    grad_weight =
        checked_vector<T>(g.out_channels * d.columns_per_group, fn, "grad_weight", out.weight);
  }
  std::vector<T> chunk_weight = grad_weight;

  const std::vector<deform_segment> segments = deform_segments(d);
  // Segments of each offset group: [first[og], first[og + 1]).
  std::vector<std::size_t> og_first(static_cast<std::size_t>(d.offset_groups) + 1, 0);
  for (std::size_t s = 0; s < segments.size(); ++s) {
    og_first[static_cast<std::size_t>(segments[s].offset_group) + 1] = s + 1;
  }
  for (std::size_t og = 1; og < og_first.size(); ++og) {
    og_first[og] = std::max(og_first[og], og_first[og - 1]);
  }
  // grad_input tasks: channel runs inside segments; any split gives the same sums (each channel's
  // order is fixed), so the split follows the thread count.
  struct piece {
    index_t c0, c1;
    deform_segment seg;
  };
  std::vector<piece> pieces;
  {
    const int team = threads > 0 ? threads : max_threads();
    const index_t lanes = simd<T>::lanes;
    const index_t target =
        team <= 1
            ? g.in_channels
            : std::max<index_t>(lanes, (g.in_channels / (4 * team) + lanes - 1) / lanes * lanes);
    for (const deform_segment& seg : segments) {
      for (index_t c = seg.c0; c < seg.c1; c += target) {
        pieces.push_back({c, std::min(seg.c1, c + target), seg});
      }
    }
  }

  const index_t chunk = deform_chunk_rows(d);
  const index_t pc = d.columns;
  const index_t samples_per_pixel = d.taps * d.offset_groups;
  const auto columns = deform_buffer<T>(
      checked_mul(chunk * g.out_width, pc, fn, "the column buffer", x), fn, "the column buffer", x);
  const auto table = deform_buffer<deform_sample<T>>(
      checked_mul(chunk * g.out_width, samples_per_pixel, fn, "the sample table", offset), fn,
      "the sample table", offset);
  const index_t grain = deform_pixel_grain(d);
  const std::array<index_t, 4> pw_shape{g.out_channels, d.columns_per_group, 1, 1};

  for (index_t n = 0; n < g.batch; ++n) {
    for (index_t r0 = 0; r0 < g.out_height; r0 += chunk) {
      const index_t rows = std::min(chunk, g.out_height - r0);
      const index_t pixels = rows * g.out_width;
      const strided_view<const T, 4> cols_view(columns.get(), {1, rows, g.out_width, pc});
      const strided_view<const T, 4> dy_rows = deform_rows_nhwc(dy, n, r0, rows);
      const deform_image<const T> image{
          images.data == nullptr ? nullptr : images.data + n * images.image_stride, zeros.data(),
          g.in_channels};
      const deform_image<T> grad_in{want_input ? grad_input_data + n * grad_input_image : nullptr,
                                    discard.data(), g.in_channels};
      // 1. samples (and the columns, for the weight gradient)
      parallel_for(
          0, pixels, grain,
          [&](index_t lo, index_t hi) {
            for (index_t p = lo; p < hi; ++p) {
              const index_t oy = r0 + p / g.out_width, ox = p % g.out_width;
              deform_sample<T>* s = table.get() + p * samples_per_pixel;
              deform_pixel_samples<T>(d, offset, mask, n, oy, ox, s);
              if (want_weight) {
                deform_gather_pixel<T>(d, segments, s, image, columns.get() + p * pc);
              }
            }
          },
          threads);
      // 2. grad_weight += the 1×1 conv's weight gradient on this chunk
      if (want_weight) {
        conv2d_backward_weight(dy_rows, cols_view, p1,
                               strided_view<T, 4>(chunk_weight.data(), pw_shape));
        for (std::size_t i = 0; i < grad_weight.size(); ++i) grad_weight[i] += chunk_weight[i];
      }
      if (!want_columns_grad) continue;
      // 3. the column gradient (in the column buffer)
      transposed(dy_rows, strided_view<T, 4>(columns.get(), {1, rows, g.out_width, pc}));
      // 4. offset and mask gradients: per sample, dot products over its channels
      if (want_offset || want_mask) {
        parallel_for(
            0, pixels, grain,
            [&](index_t lo, index_t hi) {
              for (index_t p = lo; p < hi; ++p) {
                const index_t oy = r0 + p / g.out_width, ox = p % g.out_width;
                const deform_sample<T>* s = table.get() + p * samples_per_pixel;
                const T* gcol = columns.get() + p * pc;
                for (index_t t = 0; t < d.taps; ++t) {
                  for (index_t og = 0; og < d.offset_groups; ++og) {
                    const deform_sample<T>& sample = s[t * d.offset_groups + og];
                    T acc[4] = {T(0), T(0), T(0), T(0)};
                    for (std::size_t k = og_first[static_cast<std::size_t>(og)];
                         k < og_first[static_cast<std::size_t>(og) + 1]; ++k) {
                      const deform_segment& seg = segments[k];
                      deform_corner_dots<T>(sample, image, seg.c0, seg.c1 - seg.c0,
                                            gcol + deform_column(d, seg.group, t, seg.c0), acc);
                    }
                    const deform_sample_grad<T> r = deform_sample_gradient(sample, acc);
                    const index_t k = og * d.taps + t;
                    if (want_offset) {
                      out.offset(n, 2 * k, oy, ox) = r.dy;
                      out.offset(n, 2 * k + 1, oy, ox) = r.dx;
                    }
                    if (want_mask) out.mask(n, k, oy, ox) = r.dmask;
                  }
                }
              }
            },
            threads);
      }
      // 5. grad_input: scatter, tasks owning channel runs
      if (want_input) {
        parallel_for(
            0, static_cast<index_t>(pieces.size()), 1,
            [&](index_t lo, index_t hi) {
              for (index_t q = lo; q < hi; ++q) {
                const piece& pc_ = pieces[static_cast<std::size_t>(q)];
                for (index_t p = 0; p < pixels; ++p) {
                  const deform_sample<T>* s = table.get() + p * samples_per_pixel;
                  const T* gcol = columns.get() + p * pc;
                  for (index_t t = 0; t < d.taps; ++t) {
                    deform_scatter<T>(s[t * d.offset_groups + pc_.seg.offset_group], grad_in,
                                      pc_.c0, pc_.c1 - pc_.c0,
                                      gcol + deform_column(d, pc_.seg.group, t, pc_.c0));
                  }
                }
              }
            },
            threads);
      }
    }
  }

  if (want_input && !input_in_place) {
    const auto& gi = out.input;
    parallel_for(
        0, g.batch * g.in_height, 16,
        [&](index_t lo, index_t hi) {
          for (index_t r = lo; r < hi; ++r) {
            const index_t nn = r / g.in_height, y = r % g.in_height;
            const T* src = grad_image.data() + r * g.in_width * g.in_channels;
            for (index_t ix = 0; ix < g.in_width; ++ix) {
              for (index_t c = 0; c < g.in_channels; ++c) {
                gi(nn, c, y, ix) = src[ix * g.in_channels + c];
              }
            }
          }
        },
        threads);
  }
  if (want_weight) {
    for (index_t o = 0; o < g.out_channels; ++o) {
      for (index_t i = 0; i < g.in_per_group; ++i) {
        for (index_t t = 0; t < d.taps; ++t) {
          out.weight(o, i, t / g.kernel_w, t % g.kernel_w) = grad_weight[static_cast<std::size_t>(
              o * d.columns_per_group + t * g.in_per_group + i)];
        }
      }
    }
  }
}

}  // namespace detail
CVK_END_NAMESPACE
