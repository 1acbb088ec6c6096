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

#include "../../core/config.hpp"
#include "../../core/parallel.hpp"
#include "../../core/strided_view.hpp"
#include "../../detail/checks.hpp"
#include "dispatch.hpp"
#include "geometry.hpp"

CVK_BEGIN_NAMESPACE
namespace detail {

/// The same elements with the axes reordered: result axis k is v's axis axes[k].
template <class T>
strided_view<T, 4> permute_axes(const strided_view<T, 4>& v,
                                const std::array<std::size_t, 4>& axes) {
  return {v.data(),
          {v.extent(axes[0]), v.extent(axes[1]), v.extent(axes[2]), v.extent(axes[3])},
          {v.stride(axes[0]), v.stride(axes[1]), v.stride(axes[2]), v.stride(axes[3])}};
}

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
  const auto apply = [&](T v) {  // [&]: e is used by the clamp only
    if constexpr (Act == activation::relu) {
      return v < T(0) ? T(0) : v;
    } else if constexpr (Act == activation::clamp) {
      return v < e.lo ? e.lo : (v > e.hi ? e.hi : v);
    } else {
      return v;
    }
  };
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

/// Everything conv2d_execute needs besides the views.
template <class T>
struct conv2d_call {
  conv2d_path path = conv2d_path::generic_nhwc;
  const T* packed = nullptr;  // O·I/g·KH·KW, in path's order
  const T* bias = nullptr;    // O values (zeros when the call has no bias)
  const char* function = "conv2d";
};

/// out = act(conv(input) + bias + residual) over (n, c, h, w)-ordered views of any strides.
/// `residual.data()` null means no residual.
template <class T>
void conv2d_execute(const conv2d_geometry& g, const conv2d_call<T>& call,
                    const strided_view<const T, 4>& input, const strided_view<const T, 4>& residual,
                    const strided_view<T, 4>& out, const conv2d_params& params) {
  const index_t rows = g.batch * g.out_height;
  if (rows == 0 || g.out_width == 0 || g.out_channels == 0) return;
  const char* fn = call.function;

  // One layout pass at most: a contiguous NHWC copy unless every image already is one.
  std::unique_ptr<T[]> copy;
  const T* images = input.data();
  index_t image_stride = input.stride(0);
  if (!images_are_nhwc(input)) {
    const index_t image_size = g.in_height * g.in_width * g.in_channels;
    const index_t count = g.batch * image_size;  // checked in resolve_conv2d
    copy = checked_allocation<T>(count, fn, "the NHWC copy of input", input, [count] {
      return std::unique_ptr<T[]>(new T[static_cast<std::size_t>(count)]);
    });
    T* dst = copy.get();
    parallel_for(
        0, g.batch * g.in_height, 16,
        [&](index_t lo, index_t hi) {
          for (index_t r = lo; r < hi; ++r) {
            const index_t n = r / g.in_height, y = r % g.in_height;
            T* d = dst + r * g.in_width * g.in_channels;
            const T* s = input.data() + n * input.stride(0) + y * input.stride(2);
            for (index_t c = 0; c < g.in_channels; ++c) {
              for (index_t x = 0; x < g.in_width; ++x) {
                d[x * g.in_channels + c] = s[c * input.stride(1) + x * input.stride(3)];
              }
            }
          }
        },
        params.threads);
    images = dst;
    image_stride = image_size;
  }

  const epilogue<T> act = make_epilogue<T>(params);
  const index_t row_size = g.out_width * g.out_channels;
  const index_t row_macs =
      std::max<index_t>(1, row_size * g.in_per_group * g.kernel_h * g.kernel_w);
  const index_t grain = std::max<index_t>(1, (index_t{1} << 18) / row_macs);
  const bool channels_inner = std::abs(out.stride(1)) <= std::abs(out.stride(3));
  parallel_for(
      0, rows, grain,
      [&](index_t lo, index_t hi) {
        auto row = checked_allocation<T>(row_size, fn, "an output row", out, [row_size] {
          return std::unique_ptr<T[]>(new T[static_cast<std::size_t>(row_size)]);
        });
        for (index_t r = lo; r < hi; ++r) {
          const index_t n = r / g.out_height, oy = r % g.out_height;
          conv2d_row(call.path, g, images + n * image_stride, call.packed, oy, row.get());
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
              finish_row<T, activation::none>(g, row.get(), call.bias, target, act, channels_inner);
              break;
            case activation::relu:
              finish_row<T, activation::relu>(g, row.get(), call.bias, target, act, channels_inner);
              break;
            case activation::relu6:
            case activation::clamp:
              finish_row<T, activation::clamp>(g, row.get(), call.bias, target, act,
                                               channels_inner);
              break;
          }
        }
      },
      params.threads);
}

}  // namespace detail
CVK_END_NAMESPACE
