// cvk — computer-vision kernels, header-only C++20.
// conv2d's vocabulary (layouts, padding modes, activations, params) and its geometry: the
// parameters checked once, ONNX auto_pad resolved into explicit padding, the output extents.
// Every path of every conv operator (forward now; backward, transposed conv, pooling next) reads
// one conv2d_geometry, so the shape rules live here and nowhere else.
// SPDX-License-Identifier: MIT
#pragma once

#include <array>
#include <cmath>
#include <limits>
#include <string>

#include "../../core/config.hpp"
#include "../../core/errors.hpp"
#include "../../core/layout.hpp"
#include "../../core/strided_view.hpp"
#include "../../detail/checks.hpp"

CVK_BEGIN_NAMESPACE

/// Axis order of the weight: O×I/g×KH×KW (PyTorch, ONNX) or KH×KW×I/g×O (TensorFlow, XNNPACK).
enum class weight_layout { oihw, hwio };

/// ONNX `Conv` auto_pad. notset: `padding` is used as given; same_upper / same_lower: the
/// output has ceil(in / stride) rows and columns and the padding that needs is split evenly, the
/// odd element going to the end (upper) or the beginning (lower); valid: no padding.
enum class auto_pad { notset, same_upper, same_lower, valid };

/// Fused epilogue applied after bias and residual: y = act(conv + bias + residual).
enum class activation { none, relu, relu6, clamp };

/// Parameters of conv2d. Designated initializers: `{.stride = {2, 2}, .groups = 32}`.
struct conv2d_params {
  /// Vertical, horizontal step of the window, >= 1.
  std::array<index_t, 2> stride{1, 1};
  /// Zeros added around the input: top, left, bottom, right, each >= 0. PyTorch's symmetric
  /// `padding=(ph, pw)` is {ph, pw, ph, pw}; ONNX `pads` (top, left, bottom, right) as is.
  std::array<index_t, 4> padding{0, 0, 0, 0};
  /// Spacing between kernel taps, >= 1.
  std::array<index_t, 2> dilation{1, 1};
  /// Channel groups, >= 1; must divide the input and output channel counts.
  index_t groups = 1;
  /// ONNX auto_pad; anything but notset requires `padding` to be all zero.
  auto_pad pad_mode = auto_pad::notset;
  /// Axis order of input, residual and output.
  layout data_layout = layout::nchw;
  /// Axis order of the weight.
  weight_layout weights = weight_layout::oihw;
  /// Fused activation; clamp uses [clamp_min, clamp_max], relu6 is clamp to [0, 6].
  activation act = activation::none;
  double clamp_min = -std::numeric_limits<double>::infinity();
  double clamp_max = std::numeric_limits<double>::infinity();
  /// Threads: 0 = max_threads(). Results are bit-identical for every value.
  int threads = 0;
};

namespace detail {

/// Everything a conv kernel needs to know about one call, in N, C, H, W terms whatever the
/// layouts. Padding is explicit (auto_pad resolved).
struct conv2d_geometry {
  index_t batch = 0, in_channels = 0, in_height = 0, in_width = 0;
  index_t out_channels = 0, kernel_h = 0, kernel_w = 0;
  index_t groups = 1, in_per_group = 0, out_per_group = 0;
  index_t stride_h = 1, stride_w = 1, dilation_h = 1, dilation_w = 1;
  index_t pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
  index_t out_height = 0, out_width = 0;
  /// Distance between the output pixels of a row the blocked row kernel writes; 0: out_channels
  /// (a contiguous [ox][O] row). Larger when the row is written in place into a channel slice of
  /// an NHWC output (conv_rows_execute, blocked paths only).
  index_t out_pixel = 0;
};

/// Checks the parameters that do not depend on any shape.
inline void check_conv2d_params(const conv2d_params& p, const char* fn) {
  const auto fail = [fn](const std::string& what) {
    CVK_THROW(invalid_argument, std::string(fn) + ": " + what);
  };
  const auto pair_text = [](const std::array<index_t, 2>& a) {
    // Appended piece by piece: g++ 12 at -O3 warns (-Wrestrict, a false positive) on
    // "literal" + std::string temporaries.
    std::string text(1, '{');
    text += std::to_string(a[0]);
    text += ", ";
    text += std::to_string(a[1]);
    text += '}';
    return text;
  };
  if (p.stride[0] < 1 || p.stride[1] < 1) {
    fail("params.stride must be >= 1, got " + pair_text(p.stride));
  }
  if (p.dilation[0] < 1 || p.dilation[1] < 1) {
    fail("params.dilation must be >= 1, got " + pair_text(p.dilation));
  }
  for (const index_t pad : p.padding) {
    if (pad < 0) {
      fail("params.padding (top, left, bottom, right) must be >= 0, got " +
           shape_string(p.padding, 4));
    }
  }
  if (p.groups < 1) fail("params.groups must be >= 1, got " + std::to_string(p.groups));
  if (p.pad_mode != auto_pad::notset && p.pad_mode != auto_pad::same_upper &&
      p.pad_mode != auto_pad::same_lower && p.pad_mode != auto_pad::valid) {
    fail("params.pad_mode is not an auto_pad value");
  }
  if (p.pad_mode != auto_pad::notset && p.padding != std::array<index_t, 4>{0, 0, 0, 0}) {
    fail(
        "params.padding must be all zero when params.pad_mode is not auto_pad::notset (ONNX), "
        "got " +
        shape_string(p.padding, 4));
  }
  if (p.data_layout != layout::nchw && p.data_layout != layout::nhwc) {
    fail("params.data_layout is not a layout value");
  }
  if (p.weights != weight_layout::oihw && p.weights != weight_layout::hwio) {
    fail("params.weights is not a weight_layout value");
  }
  if (p.act != activation::none && p.act != activation::relu && p.act != activation::relu6 &&
      p.act != activation::clamp) {
    fail("params.act is not an activation value");
  }
  if (p.act == activation::clamp && !(p.clamp_min <= p.clamp_max)) {
    fail("params.clamp_min must be <= params.clamp_max (and neither NaN), got " +
         number_string(p.clamp_min) + " and " + number_string(p.clamp_max));
  }
  if (p.threads < 0) fail("params.threads must be >= 0, got " + std::to_string(p.threads));
}

/// {O, I/g, KH, KW} of a weight's extents in `l`.
inline std::array<index_t, 4> oihw_extents(const std::array<index_t, 4>& e,
                                           weight_layout l) noexcept {
  return l == weight_layout::oihw ? e : std::array<index_t, 4>{e[3], e[2], e[0], e[1]};
}

/// The extents in layout `l` of {O, I/g, KH, KW}.
inline std::array<index_t, 4> from_oihw(const std::array<index_t, 4>& e, weight_layout l) noexcept {
  return l == weight_layout::oihw ? e : std::array<index_t, 4>{e[2], e[3], e[1], e[0]};
}

/// The view axis holding O, I/g, KH, KW.
inline std::array<std::size_t, 4> oihw_axes(weight_layout l) noexcept {
  return l == weight_layout::oihw ? std::array<std::size_t, 4>{0, 1, 2, 3}
                                  : std::array<std::size_t, 4>{3, 2, 0, 1};
}

inline const char* weight_pattern(weight_layout l) noexcept {
  return l == weight_layout::oihw ? "O×I/groups×KH×KW" : "KH×KW×I/groups×O";
}

/// a + b for sizes >= 0; throws out_of_range naming what is summed when it does not fit.
inline index_t checked_extent_sum(index_t a, index_t b, const char* fn, const char* what,
                                  const std::string& shapes) {
  if (b > std::numeric_limits<index_t>::max() - a) {
    CVK_THROW(out_of_range, std::string(fn) + ": " + what + " (" + shapes + "): the size " +
                                std::to_string(a) + "+" + std::to_string(b) + " overflows");
  }
  return a + b;
}

/// The geometry of one spatial axis: padding before and after (auto_pad resolved) and the output
/// extent. ONNX Conv: SAME_* give out = ceil(in / s), total padding max(0, (out-1)·s + k_eff - in);
/// VALID gives out = floor((in - k_eff) / s) + 1 (= ceil((in - k_eff + 1) / s)) with no padding.
struct axis_geometry {
  index_t pad_begin = 0, pad_end = 0, out = 0;
};

inline axis_geometry resolve_axis(index_t in, index_t kernel, index_t stride, index_t dilation,
                                  index_t pad_begin, index_t pad_end, auto_pad mode, const char* fn,
                                  const char* axis, const std::string& shapes) {
  const index_t span =
      checked_extent_sum(checked_mul(kernel - 1, dilation, fn, "the dilated kernel", shapes), 1, fn,
                         "the dilated kernel", shapes);
  axis_geometry g{pad_begin, pad_end, 0};
  if (mode == auto_pad::same_upper || mode == auto_pad::same_lower) {
    g.out = in / stride + (in % stride != 0 ? 1 : 0);
    index_t total = 0;
    if (g.out > 0) {
      const index_t reach =
          checked_extent_sum(checked_mul(g.out - 1, stride, fn, "the padded input", shapes), span,
                             fn, "the padded input", shapes);
      total = reach > in ? reach - in : 0;
    }
    g.pad_begin = mode == auto_pad::same_upper ? total / 2 : total - total / 2;
    g.pad_end = total - g.pad_begin;
    return g;
  }
  if (mode == auto_pad::valid) g.pad_begin = g.pad_end = 0;
  const index_t padded =
      checked_extent_sum(checked_extent_sum(in, g.pad_begin, fn, "the padded input", shapes),
                         g.pad_end, fn, "the padded input", shapes);
  if (padded < span) {
    CVK_THROW(shape_error, std::string(fn) + ": the dilated kernel (" + std::to_string(span) +
                               ") is larger than the padded input (" + std::to_string(padded) +
                               ") along " + axis + ", the output would be empty; shapes " + shapes);
  }
  g.out = (padded - span) / stride + 1;
  return g;
}

/// Checks the input and weight extents (in N, C, H, W and O, I/g, KH, KW terms) against each
/// other and the parameters, and resolves the geometry. `shapes` describes both arguments as the
/// user passed them, for the messages.
inline conv2d_geometry resolve_conv2d(const std::array<index_t, 4>& in,
                                      const std::array<index_t, 4>& w, const conv2d_params& p,
                                      const char* fn, const std::string& shapes) {
  check_conv2d_params(p, fn);
  for (std::size_t i = 0; i < 4; ++i) {
    if (in[i] < 0 || w[i] < 0) {
      CVK_THROW(shape_error, std::string(fn) + ": extents must be >= 0, got " + shapes);
    }
  }
  if (w[2] < 1 || w[3] < 1) {
    CVK_THROW(shape_error,
              std::string(fn) + ": weight must have a kernel of at least 1×1, got " + shapes);
  }
  conv2d_geometry g;
  g.batch = in[0];
  g.in_channels = in[1];
  g.in_height = in[2];
  g.in_width = in[3];
  g.out_channels = w[0];
  g.kernel_h = w[2];
  g.kernel_w = w[3];
  g.groups = p.groups;
  if (g.in_channels % g.groups != 0 || g.out_channels % g.groups != 0) {
    CVK_THROW(shape_error, std::string(fn) + ": params.groups (" + std::to_string(g.groups) +
                               ") must divide the input channels (" +
                               std::to_string(g.in_channels) + ") and the output channels (" +
                               std::to_string(g.out_channels) + "); shapes " + shapes);
  }
  g.in_per_group = g.in_channels / g.groups;
  g.out_per_group = g.out_channels / g.groups;
  if (w[1] != g.in_per_group) {
    CVK_THROW(shape_error, std::string(fn) + ": weight has " + std::to_string(w[1]) +
                               " input channels per group, but input has " +
                               std::to_string(g.in_channels) + " channels in " +
                               std::to_string(g.groups) + " groups (" +
                               std::to_string(g.in_per_group) + " per group); shapes " + shapes);
  }
  g.stride_h = p.stride[0];
  g.stride_w = p.stride[1];
  g.dilation_h = p.dilation[0];
  g.dilation_w = p.dilation[1];
  const axis_geometry rows = resolve_axis(g.in_height, g.kernel_h, g.stride_h, g.dilation_h,
                                          p.padding[0], p.padding[2], p.pad_mode, fn, "H", shapes);
  const axis_geometry cols = resolve_axis(g.in_width, g.kernel_w, g.stride_w, g.dilation_w,
                                          p.padding[1], p.padding[3], p.pad_mode, fn, "W", shapes);
  g.pad_top = rows.pad_begin;
  g.pad_bottom = rows.pad_end;
  g.out_height = rows.out;
  g.pad_left = cols.pad_begin;
  g.pad_right = cols.pad_end;
  g.out_width = cols.out;
  // Every buffer a path may allocate is at most one of these sizes: check the products once.
  const auto out_pixels = checked_mul(checked_mul(g.batch, g.out_height, fn, "the output", shapes),
                                      g.out_width, fn, "the output", shapes);
  (void)checked_mul(out_pixels, g.out_channels, fn, "the output", shapes);
  const auto in_pixels = checked_mul(checked_mul(g.batch, g.in_height, fn, "input", shapes),
                                     g.in_width, fn, "input", shapes);
  (void)checked_mul(in_pixels, g.in_channels, fn, "input", shapes);
  (void)checked_mul(
      checked_mul(checked_mul(w[0], w[1], fn, "weight", shapes), w[2], fn, "weight", shapes), w[3],
      fn, "weight", shapes);
  return g;
}

}  // namespace detail
CVK_END_NAMESPACE
