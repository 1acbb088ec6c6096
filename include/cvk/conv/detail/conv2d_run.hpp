// cvk — computer-vision kernels, header-only C++20.
// Runs a packed conv2d over views of any strides: at most one layout pass of the input into a
// contiguous NHWC copy (none when it already is NHWC), the path's row kernel into a row buffer,
// and the epilogue y = act(row + bias + residual) written through the output's strides.
// Threads split the N·H_out output rows; each output is computed by one thread in a fixed
// order, so the result is bit-identical for any thread count.
// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "../../core/config.hpp"
#include "../../core/parallel.hpp"
#include "../../core/strided_view.hpp"
#include "../../detail/checks.hpp"
#include "dispatch.hpp"
#include "geometry.hpp"

CVK_BEGIN_NAMESPACE
namespace detail {

/// True when every image of an (n, c, h, w)-ordered view is a contiguous H×W×C block.
template <class T>
bool images_are_nhwc(const strided_view<T, 4>& v) noexcept {
  const index_t c = v.extent(1), h = v.extent(2), w = v.extent(3);
  return (c <= 1 || v.stride(1) == 1) && (w <= 1 || v.stride(3) == c) &&
         (h <= 1 || v.stride(2) == w * c);
}

/// Applies the fused epilogue to one value. NaN propagates through every activation (as
/// torch.relu and torch.clamp do): the comparisons are false for NaN.
template <class T>
struct epilogue {
  activation act = activation::none;
  T lo = T(0), hi = T(0);

  [[nodiscard]] T operator()(T v) const noexcept {
    switch (act) {
      case activation::none:
        return v;
      case activation::relu:
        return v < T(0) ? T(0) : v;
      case activation::relu6:
      case activation::clamp:
        return v < lo ? lo : (v > hi ? hi : v);
    }
    return v;
  }
};

/// The activation Act of one value, as a template argument so that loops over it vectorize (the
/// epilogue's switch per value does not); [lo, hi] is the clamp's range.
template <activation Act, class T>
constexpr T activate(T v, T lo, T hi) noexcept {
  if constexpr (Act == activation::relu) {
    return v < T(0) ? T(0) : v;
  } else if constexpr (Act == activation::clamp || Act == activation::relu6) {
    return v < lo ? lo : (v > hi ? hi : v);
  } else {
    return v;
  }
}

template <class T>
epilogue<T> make_epilogue(const conv2d_params& p) noexcept {
  epilogue<T> e;
  e.act = p.act;
  if (p.act == activation::relu6) {
    e.lo = T(0);
    e.hi = T(6);
  } else if (p.act == activation::clamp) {
    e.lo = static_cast<T>(p.clamp_min);
    e.hi = static_cast<T>(p.clamp_max);
  }
  return e;
}

/// Where one output row goes: the output (and the residual, or null) at (n, 0, oy, 0), with
/// their channel and column strides.
template <class T>
struct row_target {
  T* out;
  index_t out_channel_stride, out_column_stride;
  const T* residual;
  index_t residual_channel_stride, residual_column_stride;
};

/// out = act(row + bias + residual) for one output row. With NHWC-contiguous output and residual
/// the inner loop is unit-stride over channels and vectorizes.
template <class T, activation Act>
void finish_row(const conv2d_geometry& g, const T* row, const T* bias, const row_target<T>& t,
                const epilogue<T>& e, bool channels_inner) {
  const T lo = e.lo, hi = e.hi;
  const auto apply = [lo, hi](T v) { return activate<Act>(v, lo, hi); };
  const index_t outs = g.out_channels;
  if (channels_inner && t.out_channel_stride == 1 &&
      (t.residual == nullptr || t.residual_channel_stride == 1)) {
    for (index_t ox = 0; ox < g.out_width; ++ox) {
      const T* __restrict src = row + ox * outs;
      T* __restrict dst = t.out + ox * t.out_column_stride;
      if (t.residual == nullptr) {
        for (index_t o = 0; o < outs; ++o) dst[o] = apply(src[o] + bias[o]);
      } else {
        // dst may be the residual itself (in place): each element is read before it is written.
        const T* res = t.residual + ox * t.residual_column_stride;
        for (index_t o = 0; o < outs; ++o) dst[o] = apply(src[o] + bias[o] + res[o]);
      }
    }
    return;
  }
  const auto one = [&](index_t ox, index_t o) {
    T v = row[ox * outs + o] + bias[o];
    if (t.residual != nullptr) {
      v += t.residual[o * t.residual_channel_stride + ox * t.residual_column_stride];
    }
    t.out[o * t.out_channel_stride + ox * t.out_column_stride] = apply(v);
  };
  if (channels_inner) {
    for (index_t ox = 0; ox < g.out_width; ++ox) {
      for (index_t o = 0; o < outs; ++o) one(ox, o);
    }
  } else {
    for (index_t o = 0; o < outs; ++o) {
      for (index_t ox = 0; ox < g.out_width; ++ox) one(ox, o);
    }
  }
}

/// row = act(row + bias) for one [ox][O] output row (pixels g.out_pixel apart, or O when 0), in
/// place; the activation is a template argument so the loop vectorizes.
template <class T, activation Act>
void finish_row_in_place_as(const conv2d_geometry& g, T* row, const T* bias, const epilogue<T>& e) {
  const T lo = e.lo, hi = e.hi;
  const index_t step = g.out_pixel > 0 ? g.out_pixel : g.out_channels;
  for (index_t ox = 0; ox < g.out_width; ++ox) {
    T* __restrict pixel = row + ox * step;
    for (index_t o = 0; o < g.out_channels; ++o) {
      pixel[o] = activate<Act>(pixel[o] + bias[o], lo, hi);
    }
  }
}

template <class T>
void finish_row_in_place(const conv2d_geometry& g, T* row, const T* bias, const epilogue<T>& e) {
  switch (e.act) {
    case activation::none:
      return finish_row_in_place_as<T, activation::none>(g, row, bias, e);
    case activation::relu:
      return finish_row_in_place_as<T, activation::relu>(g, row, bias, e);
    case activation::relu6:
    case activation::clamp:
      return finish_row_in_place_as<T, activation::clamp>(g, row, bias, e);
  }
}

/// Everything conv2d_execute needs besides the views.
template <class T>
struct conv2d_call {
  conv2d_path path = conv2d_path::generic_nhwc;
  const T* packed = nullptr;    // packed_weight_size values, in path's order
  const T* bias = nullptr;      // O values (zeros when the call has no bias)
  bool finite_weights = false;  // every packed weight finite (border tiles may read zeros)
  const char* function = "conv2d";
};

/// The images of an (n, c, h, w)-ordered view in a path's image_layout: the view's own memory
/// when the layout is NHWC and every image already is a contiguous H×W×C block, else one copy
/// (the one layout pass), owned here.
template <class T>
struct layout_images {
  std::unique_ptr<T[]> copy;  // empty when the view is used as is
  const T* data = nullptr;
  index_t image_stride = 0;
  index_t pixel = 0;  // elements from one pixel to the next (layout.pixel, or the view's stride)
};

/// True when every image of an (n, c, h, w)-ordered view is NHWC with contiguous channels but
/// pixels further apart than the channel count (a channel slice of an NHWC tensor): rows of
/// W·stride(3) elements, at least two columns.
template <class T>
bool images_are_strided_nhwc(const strided_view<T, 4>& v) noexcept {
  const index_t c = v.extent(1), h = v.extent(2), w = v.extent(3);
  return w >= 2 && (c <= 1 || v.stride(1) == 1) && v.stride(3) > c &&
         (h <= 1 || v.stride(2) == w * v.stride(3));
}

/// g's in_* extents describe `input`; `what` names the copy in errors ("the layout copy of
/// input"). The weight gradient uses it for input and grad_output, conv_rows_execute for input.
/// `strided_pixels`: the caller's kernel reads pixels `result.pixel` apart, so an NHWC input
/// whose pixels are further apart than its channels (images_are_strided_nhwc) is used in place.
template <class T>
layout_images<T> to_image_layout(const conv2d_geometry& g, const image_layout& layout,
                                 const strided_view<const T, 4>& input, const char* fn,
                                 const char* what, int threads, bool strided_pixels = false) {
  layout_images<T> result;
  result.data = input.data();
  result.image_stride = input.stride(0);
  result.pixel = layout.pixel;
  if (layout.is_nhwc() && strided_pixels && images_are_strided_nhwc(input)) {
    result.pixel = input.stride(3);
    return result;
  }
  if (!layout.is_nhwc() || !images_are_nhwc(input)) {
    // H·W ≤ H·W·C is checked; the interleaved pixel may exceed C (empty group lanes).
    const index_t image_size = checked_mul(g.in_height * g.in_width, layout.pixel, fn, what, input);
    const index_t count = checked_mul(g.batch, image_size, fn, what, input);
    result.copy = checked_allocation<T>(count, fn, what, input, [count] {
      return std::unique_ptr<T[]>(new T[static_cast<std::size_t>(count)]);
    });
    T* dst = result.copy.get();
    std::vector<index_t> slot(static_cast<std::size_t>(g.in_channels));
    for (index_t c = 0; c < g.in_channels; ++c) {
      slot[static_cast<std::size_t>(c)] =
          layout.interleaved ? small_group_channel_slot<T>(g, c) : c;
    }
    const bool gaps = layout.pixel != g.in_channels;  // lanes of groups that do not exist
    const bool channels_contiguous = g.in_channels <= 1 || input.stride(1) == 1;
    parallel_for(
        0, g.batch * g.in_height, 16,
        [&](index_t lo, index_t hi) {
          for (index_t r = lo; r < hi; ++r) {
            const index_t n = r / g.in_height, y = r % g.in_height;
            T* d = dst + r * g.in_width * layout.pixel;
            const T* s = input.data() + n * input.stride(0) + y * input.stride(2);
            if (layout.interleaved && channels_contiguous) {
              // Per pixel, a small transpose: read the pixel's channels in order.
              small_group_interleave_row(g, s, input.stride(3), d);
              continue;
            }
            if (!layout.interleaved && !gaps && channels_contiguous) {
              // Pixels whose channels are contiguous (an NHWC channel slice, a padded row):
              // one block copy per pixel.
              for (index_t x = 0; x < g.in_width; ++x) {
                std::copy_n(s + x * input.stride(3), g.in_channels, d + x * layout.pixel);
              }
              continue;
            }
            if (gaps) std::fill(d, d + g.in_width * layout.pixel, T(0));
            for (index_t c = 0; c < g.in_channels; ++c) {
              T* dc = d + slot[static_cast<std::size_t>(c)];
              const T* sc = s + c * input.stride(1);
              for (index_t x = 0; x < g.in_width; ++x) {
                dc[x * layout.pixel] = sc[x * input.stride(3)];
              }
            }
          }
        },
        threads);
    result.data = dst;
    result.image_stride = image_size;
  }
  return result;
}

/// out = act(rows + bias + residual) over (n, c, h, w)-ordered views of any strides, where
/// `row_kernel(gk, image, oy, row)` writes row[ox·O + o] of output row oy of one image of
/// `input` in `layout` (no bias, no epilogue); gk is g, with in_channels the pixel stride of the
/// images the kernel reads. g's in_* extents describe `input`, its out_* extents `out`;
/// in_per_group and the kernel extents only size the chunks. `residual.data()` null means no
/// residual. `strided_pixels`: the row kernel reads gk.in_channels as the pixel stride only (the
/// blocked paths), so a channel slice of an NHWC tensor is read in place. conv2d's paths and the
/// transposed conv (conv_transpose_nhwc.hpp) run through it.
template <class T, class RowKernel>
void conv_rows_execute(const conv2d_geometry& g, const image_layout& layout, const T* bias,
                       const char* fn, const strided_view<const T, 4>& input,
                       const strided_view<const T, 4>& residual, const strided_view<T, 4>& out,
                       const conv2d_params& params, bool strided_pixels, RowKernel&& row_kernel) {
  const index_t rows = g.batch * g.out_height;
  if (rows == 0 || g.out_width == 0 || g.out_channels == 0) return;

  // One layout pass at most: the path's layout (NHWC, or groups interleaved for the small-group
  // path), skipped when the input already is contiguous NHWC and the path reads NHWC.
  const layout_images<T> source = to_image_layout(g, layout, input, fn, "the layout copy of input",
                                                  params.threads, strided_pixels);
  const T* images = source.data;
  const index_t image_stride = source.image_stride;
  conv2d_geometry gk = g;
  if (source.pixel != layout.pixel) gk.in_channels = source.pixel;

  const epilogue<T> act = make_epilogue<T>(params);
  const index_t row_size = g.out_width * g.out_channels;
  const index_t row_macs =
      std::max<index_t>(1, row_size * g.in_per_group * g.kernel_h * g.kernel_w);
  const index_t grain = std::max<index_t>(1, (index_t{1} << 18) / row_macs);
  const bool channels_inner = std::abs(out.stride(1)) <= std::abs(out.stride(3));
  // Rows written in place: an output row that is itself a contiguous [ox][O] block (NHWC
  // output) takes the kernel's row directly, and the epilogue runs on it in place — or not at
  // all without a bias, a residual or an activation (a zero bias changes no sum: sums start at
  // +0, so none is -0). A residual may be the output itself, so it keeps the row buffer.
  // The blocked paths (strided_pixels) also write a row whose pixels are further apart than O —
  // a channel slice of an NHWC output (a ragged conv's segment) — in place (gk.out_pixel).
  const bool direct = residual.data() == nullptr && (g.out_channels <= 1 || out.stride(1) == 1) &&
                      (g.out_width <= 1 || out.stride(3) == g.out_channels ||
                       (strided_pixels && out.stride(3) > g.out_channels && out.stride(1) == 1));
  if (direct && g.out_width > 1 && out.stride(3) != g.out_channels) gk.out_pixel = out.stride(3);
  const bool epilogue_needed =
      act.act != activation::none ||
      !std::all_of(bias, bias + g.out_channels, [](T b) { return b == T(0); });
  parallel_for(
      0, rows, grain,
      [&](index_t lo, index_t hi) {
        if (direct) {
          for (index_t r = lo; r < hi; ++r) {
            const index_t n = r / g.out_height, oy = r % g.out_height;
            T* out_row = out.data() + n * out.stride(0) + oy * out.stride(2);
            row_kernel(gk, images + n * image_stride, oy, out_row);
            if (epilogue_needed) finish_row_in_place(gk, out_row, bias, act);
          }
          return;
        }
        auto row = checked_allocation<T>(row_size, fn, "an output row", out, [row_size] {
          return std::unique_ptr<T[]>(new T[static_cast<std::size_t>(row_size)]);
        });
        for (index_t r = lo; r < hi; ++r) {
          const index_t n = r / g.out_height, oy = r % g.out_height;
          row_kernel(gk, images + n * image_stride, oy, row.get());
          const row_target<T> target{
              out.data() + n * out.stride(0) + oy * out.stride(2),
              out.stride(1),
              out.stride(3),
              residual.data() == nullptr
                  ? nullptr
                  : residual.data() + n * residual.stride(0) + oy * residual.stride(2),
              residual.stride(1),
              residual.stride(3)};
          switch (act.act) {  // the activation is a template argument: no branch per element
            case activation::none:
              finish_row<T, activation::none>(g, row.get(), bias, target, act, channels_inner);
              break;
            case activation::relu:
              finish_row<T, activation::relu>(g, row.get(), bias, target, act, channels_inner);
              break;
            case activation::relu6:
            case activation::clamp:
              finish_row<T, activation::clamp>(g, row.get(), bias, target, act, channels_inner);
              break;
          }
        }
      },
      params.threads);
}

/// out = act(conv(input) + bias + residual) over (n, c, h, w)-ordered views of any strides.
/// `residual.data()` null means no residual.
template <class T>
void conv2d_execute(const conv2d_geometry& g, const conv2d_call<T>& call,
                    const strided_view<const T, 4>& input, const strided_view<const T, 4>& residual,
                    const strided_view<T, 4>& out, const conv2d_params& params) {
  conv_rows_execute<T>(g, path_image_layout<T>(call.path, g), call.bias, call.function, input,
                       residual, out, params, reads_strided_pixels(call.path),
                       [&](const conv2d_geometry& gk, const T* image, index_t oy, T* row) {
                         conv2d_row(call.path, gk, image, call.packed, oy, row,
                                    call.finite_weights);
                       });
}

}  // namespace detail
CVK_END_NAMESPACE
