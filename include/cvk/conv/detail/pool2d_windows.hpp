// cvk — computer-vision kernels, header-only C++20.
// The geometry of 2-D pooling: pool2d_params and adaptive_pool2d_params checked once, PyTorch's
// pooling_output_shape (ceil_mode included), and, per output row and column, the window of input
// rows and columns it reads. max_pool2d, avg_pool2d and adaptive_avg_pool2d (forward and
// backward) all run on these per-axis window tables, so the shape rules live here only.
// SPDX-License-Identifier: MIT
#pragma once

#include <array>
#include <string>
#include <utility>
#include <vector>

#include "../../core/config.hpp"
#include "../../core/errors.hpp"
#include "../../core/strided_view.hpp"
#include "../../detail/checks.hpp"
#include "geometry.hpp"

CVK_BEGIN_NAMESPACE

/// Parameters of max_pool2d and avg_pool2d (and their backward passes). Designated initializers:
/// `{.kernel = {3, 3}, .stride = {2, 2}, .padding = {1, 1}}`.
struct pool2d_params {
  /// Window extent (KH, KW), >= 1. No default: {0, 0} is rejected, as torch requires it.
  std::array<index_t, 2> kernel{0, 0};
  /// Step of the window (sh, sw), >= 1; 0 means "the kernel extent" (torch's stride=None).
  std::array<index_t, 2> stride{0, 0};
  /// Symmetric padding (ph, pw) — torch's `padding=(ph, pw)` — with 0 <= ph <= KH/2 and
  /// 0 <= pw <= KW/2 (torch's rule). max_pool2d pads with -inf, avg_pool2d with zeros.
  std::array<index_t, 2> padding{0, 0};
  /// Spacing of the window taps, >= 1: max_pool2d only (avg_pool2d requires {1, 1}, as torch).
  std::array<index_t, 2> dilation{1, 1};
  /// Output extent rounded up instead of down; the last window must still start inside the
  /// input or the left/top padding (torch's pooling_output_shape).
  bool ceil_mode = false;
  /// avg_pool2d only: the divisor counts the padding (torch's default) or only the input taps.
  bool count_include_pad = true;
  /// avg_pool2d only: a fixed divisor instead of the window size; 0 = none.
  index_t divisor_override = 0;
  /// Axis order of input, output, indices and gradients.
  layout data_layout = layout::nchw;
  /// Threads: 0 = max_threads(). Results are bit-identical for every value.
  int threads = 0;
};

/// Parameters of adaptive_avg_pool2d (and its backward pass).
struct adaptive_pool2d_params {
  /// Output extent (Ho, Wo), >= 1. {1, 1} is global average pooling.
  std::array<index_t, 2> output_size{1, 1};
  layout data_layout = layout::nchw;
  int threads = 0;
};

namespace detail {

/// The input taps of one output position along one axis: first, first + step, ... < end, all
/// inside the input. `pool` is the window's extent clipped to the padded input (the avg_pool2d
/// divisor with count_include_pad). An empty window (first >= end) reads nothing.
struct pool_window {
  index_t first = 0, end = 0, step = 1, pool = 0;
};

/// Everything a pooling kernel needs, in N, C, H, W terms whatever the layout.
struct pool2d_geometry {
  index_t batch = 0, channels = 0, in_height = 0, in_width = 0, out_height = 0, out_width = 0;
  std::vector<pool_window> rows, cols;  // out_height and out_width windows
  index_t divisor_override = 0;         // avg: fixed divisor, 0 = none
  bool count_include_pad = true;        // avg: divisor = pool_h·pool_w, else the taps
  // Column taps are ox·stride_w − pad_w + kx·dilation_w for kx < kernel_w, those inside the
  // input (max_pool2d, avg_pool2d; not adaptive): the NCHW row kernel walks them by kx.
  bool regular_columns = false;
  index_t kernel_w = 1, stride_w = 1, pad_w = 0, dilation_w = 1;
};

/// "(3, 2)" for {3, 2}: parameter pairs in messages.
inline std::string pair_string(const std::array<index_t, 2>& a) {
  std::string text(1, '(');  // built piece by piece: g++ 12 -O3 -Wrestrict false positive
  text += std::to_string(a[0]);
  text += ", ";
  text += std::to_string(a[1]);
  text += ')';
  return text;
}

/// "max_pool2d: <what>" as invalid_argument.
[[noreturn]] inline void pool_argument_error(const char* fn, const std::string& what) {
  CVK_THROW(invalid_argument, std::string(fn) + ": " + what);
}

/// The stride with 0 ("None") replaced by the kernel extent.
inline std::array<index_t, 2> effective_stride(const pool2d_params& p) noexcept {
  return {p.stride[0] == 0 ? p.kernel[0] : p.stride[0],
          p.stride[1] == 0 ? p.kernel[1] : p.stride[1]};
}

/// Checks the parameters that do not depend on any shape. `average`: avg_pool2d's rules
/// (no dilation) instead of max_pool2d's (no divisor_override meaning).
inline void check_pool2d_params(const pool2d_params& p, bool average, const char* fn) {
  if (p.kernel[0] < 1 || p.kernel[1] < 1) {
    pool_argument_error(fn, "params.kernel must be >= 1, got " + pair_string(p.kernel));
  }
  if (p.stride[0] < 0 || p.stride[1] < 0) {
    pool_argument_error(fn, "params.stride must be >= 1 (or 0 for the kernel extent), got " +
                                pair_string(p.stride));
  }
  if (p.dilation[0] < 1 || p.dilation[1] < 1) {
    pool_argument_error(fn, "params.dilation must be >= 1, got " + pair_string(p.dilation));
  }
  if (average && (p.dilation[0] != 1 || p.dilation[1] != 1)) {
    pool_argument_error(
        fn, "params.dilation must be (1, 1) for average pooling, got " + pair_string(p.dilation));
  }
  for (std::size_t a = 0; a < 2; ++a) {
    if (p.padding[a] < 0 || p.padding[a] > p.kernel[a] / 2) {
      pool_argument_error(fn,
                          "params.padding must be >= 0 and at most half the kernel "
                          "(torch's rule), got padding " +
                              pair_string(p.padding) + " for kernel " + pair_string(p.kernel));
    }
  }
  if (p.divisor_override < 0) {
    pool_argument_error(fn, "params.divisor_override must be >= 0 (0 = none), got " +
                                std::to_string(p.divisor_override));
  }
  if (p.data_layout != layout::nchw && p.data_layout != layout::nhwc) {
    pool_argument_error(fn, "params.data_layout is not a layout value");
  }
  if (p.threads < 0) {
    pool_argument_error(fn, "params.threads must be >= 0, got " + std::to_string(p.threads));
  }
}

inline void check_adaptive_params(const adaptive_pool2d_params& p, const char* fn) {
  if (p.output_size[0] < 1 || p.output_size[1] < 1) {
    pool_argument_error(fn, "params.output_size must be >= 1, got " + pair_string(p.output_size));
  }
  if (p.data_layout != layout::nchw && p.data_layout != layout::nhwc) {
    pool_argument_error(fn, "params.data_layout is not a layout value");
  }
  if (p.threads < 0) {
    pool_argument_error(fn, "params.threads must be >= 0, got " + std::to_string(p.threads));
  }
}

/// floor(a / b) for b > 0 (torch's div_rtn).
inline index_t floor_div(index_t a, index_t b) noexcept {
  const index_t q = a / b;
  return (a % b != 0 && a < 0) ? q - 1 : q;
}

/// torch's pooling_output_shape_pad_lr with pad_l = pad_r = pad: the window count, rounded up
/// with ceil_mode except that the last window must start inside the input or the left padding.
/// Sizes were checked by the caller not to overflow (in, pad, kernel·dilation < 2^62).
inline index_t pool_output_extent(index_t in, index_t kernel, index_t pad, index_t stride,
                                  index_t dilation, bool ceil_mode) noexcept {
  const index_t span = dilation * (kernel - 1) + 1;
  index_t out = floor_div(in + 2 * pad - span + (ceil_mode ? stride - 1 : 0), stride) + 1;
  if (ceil_mode && (out - 1) * stride >= in + pad) --out;
  return out;
}

/// "input 1×3×8×8 (N×C×H×W)".
inline std::string pool_input_text(const std::string& input, layout l) {
  return "input " + input + " (" + layout_pattern(l) + ")";
}

/// Checks that every size an operator may form from these extents fits in index_t.
inline void check_pool_sizes(const pool2d_geometry& g, const char* fn, const std::string& shapes) {
  const auto in_pixels = checked_mul(checked_mul(g.batch, g.in_height, fn, "input", shapes),
                                     g.in_width, fn, "input", shapes);
  (void)checked_mul(in_pixels, g.channels, fn, "input", shapes);
  const auto out_pixels = checked_mul(checked_mul(g.batch, g.out_height, fn, "the output", shapes),
                                      g.out_width, fn, "the output", shapes);
  (void)checked_mul(out_pixels, g.channels, fn, "the output", shapes);
}

/// The {N, C, H, W} extents checked: every extent >= 0, H and W >= 1 (torch rejects empty images).
inline pool2d_geometry pool_extents(const std::array<index_t, 4>& nchw, const char* fn,
                                    const std::string& shapes) {
  for (const index_t e : nchw) {
    if (e < 0) CVK_THROW(shape_error, std::string(fn) + ": extents must be >= 0, got " + shapes);
  }
  if (nchw[2] < 1 || nchw[3] < 1) {
    CVK_THROW(shape_error,
              std::string(fn) + ": input must have H >= 1 and W >= 1 (torch), got " + shapes);
  }
  pool2d_geometry g;
  g.batch = nchw[0];
  g.channels = nchw[1];
  g.in_height = nchw[2];
  g.in_width = nchw[3];
  return g;
}

/// The geometry of max_pool2d (average = false) or avg_pool2d (average = true) of an input of
/// {N, C, H, W} extents: output extents (torch's rules) and the window tables.
inline pool2d_geometry resolve_pool2d(const std::array<index_t, 4>& nchw, const pool2d_params& p,
                                      bool average, const char* fn, const std::string& shapes) {
  check_pool2d_params(p, average, fn);
  pool2d_geometry g = pool_extents(nchw, fn, shapes);
  const auto stride = effective_stride(p);
  const std::array<index_t, 2> in{g.in_height, g.in_width};
  std::array<index_t, 2> out{};
  for (std::size_t a = 0; a < 2; ++a) {
    // in + 2·pad + stride and the dilated kernel must fit before the formula forms them.
    const index_t span = checked_extent_sum(
        checked_mul(p.kernel[a] - 1, p.dilation[a], fn, "the dilated kernel", shapes), 1, fn,
        "the dilated kernel", shapes);
    (void)checked_extent_sum(checked_extent_sum(checked_extent_sum(in[a], 2 * p.padding[a], fn,
                                                                   "the padded input", shapes),
                                                stride[a], fn, "the padded input", shapes),
                             span, fn, "the padded input", shapes);
    out[a] =
        pool_output_extent(in[a], p.kernel[a], p.padding[a], stride[a], p.dilation[a], p.ceil_mode);
  }
  if (out[0] < 1 || out[1] < 1) {
    CVK_THROW(shape_error,
              std::string(fn) + ": the output would be empty (Ho×Wo = " + std::to_string(out[0]) +
                  "×" + std::to_string(out[1]) + ") for kernel " + pair_string(p.kernel) +
                  ", stride " + pair_string(stride) + ", padding " + pair_string(p.padding) +
                  ", dilation " + pair_string(p.dilation) + (p.ceil_mode ? ", ceil_mode" : "") +
                  "; shapes " + shapes);
  }
  g.out_height = out[0];
  g.out_width = out[1];
  check_pool_sizes(g, fn, shapes);
  g.divisor_override = p.divisor_override;
  g.count_include_pad = p.count_include_pad;
  g.regular_columns = true;
  g.kernel_w = p.kernel[1];
  g.stride_w = stride[1];
  g.pad_w = p.padding[1];
  g.dilation_w = p.dilation[1];
  for (std::size_t a = 0; a < 2; ++a) {
    auto& windows = a == 0 ? g.rows : g.cols;
    windows.resize(static_cast<std::size_t>(out[a]));
    for (index_t o = 0; o < out[a]; ++o) {
      pool_window w;
      const index_t start = o * stride[a] - p.padding[a];
      if (average) {
        // torch's avg_pool2d: the window clipped to the padded input gives the divisor with
        // count_include_pad; the taps are that window clipped to the input.
        const index_t stop = std::min(start + p.kernel[a], in[a] + p.padding[a]);
        w.pool = stop - start;
        w.first = std::max<index_t>(start, 0);
        w.end = std::min(stop, in[a]);
      } else {
        // torch's max_pool2d: the first tap at or after 0 on the dilation grid; taps up to the
        // window's last one or the input's end.
        w.step = p.dilation[a];
        w.end = std::min(start + (p.kernel[a] - 1) * p.dilation[a] + 1, in[a]);
        w.first = start;
        if (w.first < 0) w.first += (-w.first + w.step - 1) / w.step * w.step;
        w.pool = p.kernel[a];
      }
      windows[static_cast<std::size_t>(o)] = w;
    }
  }
  return g;
}

/// The geometry of adaptive_avg_pool2d: output o of an axis of extent `in` averages input
/// [floor(o·in/out), ceil((o+1)·in/out)) — torch's start_index / end_index, in integers.
inline pool2d_geometry resolve_adaptive_pool2d(const std::array<index_t, 4>& nchw,
                                               const adaptive_pool2d_params& p, const char* fn,
                                               const std::string& shapes) {
  check_adaptive_params(p, fn);
  pool2d_geometry g = pool_extents(nchw, fn, shapes);
  g.out_height = p.output_size[0];
  g.out_width = p.output_size[1];
  check_pool_sizes(g, fn, shapes);
  // (o + 1)·in must fit: out·in is at most the output's pixel count times the input's.
  for (const auto& [out, in] :
       {std::pair{g.out_height, g.in_height}, std::pair{g.out_width, g.in_width}}) {
    (void)checked_mul(checked_extent_sum(out, 1, fn, "params.output_size", shapes), in, fn,
                      "params.output_size", shapes);
  }
  const std::array<index_t, 2> in{g.in_height, g.in_width};
  for (std::size_t a = 0; a < 2; ++a) {
    auto& windows = a == 0 ? g.rows : g.cols;
    const index_t out = p.output_size[a];
    windows.resize(static_cast<std::size_t>(out));
    for (index_t o = 0; o < out; ++o) {
      pool_window w;
      w.first = o * in[a] / out;
      w.end = ((o + 1) * in[a] + out - 1) / out;
      w.pool = w.end - w.first;
      windows[static_cast<std::size_t>(o)] = w;
    }
  }
  return g;
}

/// The divisor of output (oy, ox) of an average pooling: divisor_override, or the window
/// clipped to the padded input (count_include_pad), or the number of input taps.
inline index_t pool_divisor(const pool2d_geometry& g, const pool_window& r,
                            const pool_window& c) noexcept {
  if (g.divisor_override != 0) return g.divisor_override;
  if (g.count_include_pad) return r.pool * c.pool;
  return (r.end - r.first) * (c.end - c.first);
}

}  // namespace detail
CVK_END_NAMESPACE
