// cvk — computer-vision kernels, header-only C++20.
// ragged_conv2d's algorithm behind the plan and the gradients: segment weights and params, the
// whole conv's geometry, and the backward passes run per segment through conv2d_backward
// (<cvk/conv/ragged_conv2d.hpp> states the contract).
// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <array>
#include <memory>
#include <string>
#include <vector>

#include "../../core/config.hpp"
#include "../../core/layout.hpp"
#include "../../core/strided_view.hpp"
#include "../../core/tensor.hpp"
#include "../../detail/checks.hpp"
#include "../conv2d.hpp"
#include "../conv2d_backward.hpp"
#include "../ragged_groups.hpp"
#include "conv2d_run.hpp"
#include "geometry.hpp"
#include "ragged_run.hpp"

CVK_BEGIN_NAMESPACE

namespace detail {

/// Visits a segment's weights: f(flat index in the ragged weight (wl order), row gl·O_g + o of
/// the segment's O_s×I_g×KH×KW weight, i, ky, kx).
template <class F>
void for_each_segment_weight(const ragged_structure& s, const ragged_segment& seg, weight_layout wl,
                             F&& f) {
  const index_t out_g = seg.out_per_group, in_g = seg.in_per_group;
  const index_t kw = s.kernel_w, taps = s.kernel_h * kw;
  const index_t block = out_g * in_g * taps;
  for (index_t gl = 0; gl < seg.groups; ++gl) {
    const index_t base = seg.weight_begin + gl * block;
    for (index_t o = 0; o < out_g; ++o) {
      for (index_t i = 0; i < in_g; ++i) {
        for (index_t t = 0; t < taps; ++t) {
          const index_t at = wl == weight_layout::oihw ? base + (o * in_g + i) * taps + t
                                                       : base + (t * in_g + i) * out_g + o;
          f(at, gl * out_g + o, i, t / kw, t % kw);
        }
      }
    }
  }
}

/// A segment's weight as O_s×I_g×KH×KW (O_s = groups·O_g), read from the flat ragged weight.
template <class T, class Flat>
tensor<T, 4> segment_weight(const ragged_structure& s, const ragged_segment& seg, const Flat& w,
                            weight_layout wl) {
  tensor<T, 4> result(std::array<index_t, 4>{seg.groups * seg.out_per_group, seg.in_per_group,
                                             s.kernel_h, s.kernel_w});
  for_each_segment_weight(s, seg, wl,
                          [&](index_t at, index_t row, index_t i, index_t ky, index_t kx) {
                            result(row, i, ky, kx) = w(at);
                          });
  return result;
}

/// conv2d_params of one segment: a uniform grouped conv on (n, c, h, w)-ordered views.
inline conv2d_params segment_params(const conv2d_params& p, const ragged_segment& seg,
                                    bool epilogue) {
  conv2d_params q = p;
  q.groups = seg.groups;
  q.data_layout = layout::nchw;
  q.weights = weight_layout::oihw;
  if (!epilogue) q.act = activation::none;
  return q;
}

/// "input 1×8×5×5 (N×C×H×W), weight of 40 values (groups.in_offsets [0, 3, 8], …)".
inline std::string ragged_shapes(const std::string& input_what, const std::string& input,
                                 const conv2d_params& p, const std::string& weight,
                                 const ragged_structure& s) {
  return input_what + " " + input + " (" + layout_pattern(p.data_layout) + "), " + weight +
         " (I = " + std::to_string(s.in_channels) + ", O = " + std::to_string(s.out_channels) +
         ", kernel " + shape_string(std::array<index_t, 2>{s.kernel_h, s.kernel_w}, 2) + ")";
}

/// Checks params (groups = 1) and the input's (N, C, H, W) against the structure; the geometry
/// of the whole conv.
inline conv2d_geometry resolve_ragged_geometry(const ragged_structure& s,
                                               const std::array<index_t, 4>& input_nchw,
                                               const conv2d_params& p, const char* fn,
                                               const std::string& shapes) {
  check_conv2d_params(p, fn);
  if (p.groups != 1) {
    CVK_THROW(invalid_argument, std::string(fn) +
                                    ": params.groups must be 1 (the groups are given by "
                                    "`groups`), got " +
                                    std::to_string(p.groups));
  }
  if (input_nchw[1] != s.in_channels) {
    CVK_THROW(shape_error, std::string(fn) + ": input must have " + std::to_string(s.in_channels) +
                               " channels (groups.in_offsets' last value), got " + shapes);
  }
  return resolve_conv2d(input_nchw, {s.out_channels, s.in_channels, s.kernel_h, s.kernel_w}, p, fn,
                        shapes);
}

template <class T>
std::unique_ptr<T[]> ragged_buffer(index_t count, const char* fn, const char* what,
                                   const std::string& shapes) {
  return checked_allocation<T>(count, fn, what, shapes, [count] {
    return std::unique_ptr<T[]>(new T[static_cast<std::size_t>(std::max<index_t>(count, 1))]);
  });
}

/// The largest segment's channel count on one side (in: true).
inline index_t largest_segment(const ragged_structure& s, bool in) {
  index_t m = 0;
  for (const auto& seg : s.segments) {
    m = std::max(m, seg.groups * (in ? seg.in_per_group : seg.out_per_group));
  }
  return m;
}

/// When `needed` (a permutation on that side), an NHWC buffer for the largest segment's slice of
/// the input side (`in`) or the output side of geometry g; else null.
template <class T>
std::unique_ptr<T[]> segment_buffer(const ragged_structure& s, const conv2d_geometry& g, bool in,
                                    bool needed, const char* fn, const char* what,
                                    const std::string& shapes) {
  if (!needed) return nullptr;
  const index_t pixels =
      in ? g.batch * g.in_height * g.in_width : g.batch * g.out_height * g.out_width;
  return ragged_buffer<T>(checked_mul(pixels, largest_segment(s, in), fn, what, shapes), fn, what,
                          shapes);
}

}  // namespace detail

namespace detail {

/// The (n, c, h, w)-ordered views of a backward call, checked: grad_output against the conv
/// output of `input_nchw`.
template <class T>
conv2d_geometry resolve_ragged_backward(const ragged_structure& s,
                                        const strided_view<const T, 4>& dy_nchw,
                                        const std::array<index_t, 4>& input_nchw,
                                        const std::string& input_text, const char* input_what,
                                        const conv2d_params& p, const char* fn) {
  check_backward_params(p, fn);
  const std::string shapes = ragged_shapes(
      input_what, input_text, p, "weight of " + std::to_string(s.weight_size) + " values", s);
  const auto g = resolve_ragged_geometry(s, input_nchw, p, fn, shapes);
  const std::array<index_t, 4> expected{g.batch, g.out_channels, g.out_height, g.out_width};
  if (dy_nchw.extents() != expected) {
    CVK_THROW(shape_error, std::string(fn) + ": grad_output must be " +
                               layout_pattern(p.data_layout) + " = " +
                               shape_string(from_nchw(expected, p.data_layout), 4) +
                               " (the ragged_conv2d output of " + shapes + "), got " +
                               shape_string(from_nchw(dy_nchw.extents(), p.data_layout), 4));
  }
  return g;
}

/// A segment's slice of an (n, c, h, w)-ordered view in conv order: the slice itself without a
/// permutation, else gathered into `buffer`.
template <class T>
strided_view<const T, 4> conv_order_slice(const strided_view<const T, 4>& v,
                                          const std::vector<index_t>& perm, index_t begin,
                                          index_t count, T* buffer, int threads) {
  if (perm.empty()) return channel_slice(v, begin, count);
  gather_channels<T>(v, perm, begin, count, buffer, threads);
  return nhwc_buffer_view<T>(buffer, {v.extent(0), count, v.extent(2), v.extent(3)});
}

template <class T, class Flat>
void ragged_backward_input_run(const ragged_structure& s, const ragged_groups& r, const Flat& w,
                               const strided_view<const T, 4>& dy, const strided_view<T, 4>& gx,
                               const conv2d_params& p, const conv2d_geometry& g, const char* fn) {
  const std::string shapes = shape_string(from_nchw(gx.extents(), p.data_layout), 4);
  const auto dy_buffer = segment_buffer<T>(s, g, false, !r.out_permutation.empty(), fn,
                                           "the gathered grad_output", shapes);
  const auto gx_buffer =
      segment_buffer<T>(s, g, true, !r.in_permutation.empty(), fn, "the grad_input buffer", shapes);
  // Input channels of groups without outputs get no gradient: zero.
  for (std::size_t k = 0; k + 1 < r.in_offsets.size(); ++k) {
    if (r.out_offsets[k + 1] == r.out_offsets[k]) {
      zero_channels(r.in_permutation, r.in_offsets[k], r.in_offsets[k + 1] - r.in_offsets[k], gx);
    }
  }
  for (const auto& seg : s.segments) {
    const index_t ci = seg.groups * seg.in_per_group, co = seg.groups * seg.out_per_group;
    if (ci == 0) continue;
    const auto sw = segment_weight<T>(s, seg, w, p.weights);
    const auto dys =
        conv_order_slice<T>(dy, r.out_permutation, seg.out_begin, co, dy_buffer.get(), p.threads);
    const auto sp = segment_params(p, seg, false);
    if (r.in_permutation.empty()) {
      conv2d_backward_input(dys, sw, sp, channel_slice(gx, seg.in_begin, ci));
    } else {
      conv2d_backward_input(
          dys, sw, sp,
          nhwc_buffer_view<T>(gx_buffer.get(), {g.batch, ci, g.in_height, g.in_width}));
      scatter_channels<T>(gx_buffer.get(), r.in_permutation, seg.in_begin, ci, gx, p.threads);
    }
  }
}

template <class T, class FlatOut>
void ragged_backward_weight_run(const ragged_structure& s, const ragged_groups& r,
                                const strided_view<const T, 4>& dy,
                                const strided_view<const T, 4>& x, const FlatOut& gw,
                                const conv2d_params& p, const conv2d_geometry& g, const char* fn) {
  const std::string shapes = shape_string(from_nchw(x.extents(), p.data_layout), 4);
  const auto dy_buffer = segment_buffer<T>(s, g, false, !r.out_permutation.empty(), fn,
                                           "the gathered grad_output", shapes);
  const auto x_buffer =
      segment_buffer<T>(s, g, true, !r.in_permutation.empty(), fn, "the gathered input", shapes);
  for (const auto& seg : s.segments) {
    const index_t ci = seg.groups * seg.in_per_group, co = seg.groups * seg.out_per_group;
    if (ci == 0) continue;
    const auto dys =
        conv_order_slice<T>(dy, r.out_permutation, seg.out_begin, co, dy_buffer.get(), p.threads);
    const auto xs =
        conv_order_slice<T>(x, r.in_permutation, seg.in_begin, ci, x_buffer.get(), p.threads);
    const auto sg = conv2d_backward_weight(dys, xs, {co, seg.in_per_group, s.kernel_h, s.kernel_w},
                                           segment_params(p, seg, false));
    for_each_segment_weight(s, seg, p.weights,
                            [&](index_t at, index_t row, index_t i, index_t ky, index_t kx) {
                              gw(at) = sg(row, i, ky, kx);
                            });
  }
}

}  // namespace detail

CVK_END_NAMESPACE
