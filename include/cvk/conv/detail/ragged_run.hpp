// cvk — computer-vision kernels, header-only C++20.
// The ragged-group convolution's machinery: the groups split into segments (runs of consecutive
// groups of one shape), each run through conv2d's own paths as a uniform grouped conv on a
// channel slice; channel gathers and scatters for the permutations.
// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "../../core/config.hpp"
#include "../../core/layout.hpp"
#include "../../core/parallel.hpp"
#include "../../core/strided_view.hpp"
#include "../../detail/checks.hpp"
#include "conv2d_run.hpp"
#include "geometry.hpp"

CVK_BEGIN_NAMESPACE

namespace detail {

/// A run of `groups` consecutive groups of one shape: conv input channels [in_begin, in_begin +
/// groups·in_per_group), output channels [out_begin, …), weight blocks from weight_begin.
struct ragged_segment {
  index_t groups = 0;
  index_t in_begin = 0, in_per_group = 0;
  index_t out_begin = 0, out_per_group = 0;
  index_t weight_begin = 0;
};

/// A checked ragged_groups: totals, the flat weight's length and the segments.
struct ragged_structure {
  index_t in_channels = 0, out_channels = 0, kernel_h = 0, kernel_w = 0;
  index_t weight_size = 0;
  std::vector<ragged_segment> segments;  // groups without outputs are left out
};

/// "[0, 4, 2]" — at most 12 values, then "… (G values)".
inline std::string index_list_text(const std::vector<index_t>& v) {
  std::string s = "[";
  const std::size_t shown = std::min<std::size_t>(v.size(), 12);
  for (std::size_t i = 0; i < shown; ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  if (shown < v.size()) s += ", … (" + std::to_string(v.size()) + " values)";
  return s + "]";
}

inline void check_ragged_offsets(const std::vector<index_t>& v, const char* fn, const char* what) {
  bool ok = !v.empty() && v.front() == 0;
  for (std::size_t i = 1; ok && i < v.size(); ++i) ok = v[i] >= v[i - 1];
  if (!ok) {
    CVK_THROW(invalid_argument, std::string(fn) + ": groups." + what +
                                    " must start at 0 and never decrease, got " +
                                    index_list_text(v));
  }
}

inline void check_ragged_permutation(const std::vector<index_t>& p, index_t count, const char* fn,
                                     const char* what) {
  if (p.empty()) return;
  const auto fail = [&](const std::string& why) {
    CVK_THROW(invalid_argument, std::string(fn) + ": groups." + what +
                                    " must be empty or a permutation of 0 … " +
                                    std::to_string(count - 1) + " (" + std::to_string(count) +
                                    " channels), got " + index_list_text(p) + ": " + why);
  };
  if (static_cast<index_t>(p.size()) != count) {
    fail(std::to_string(p.size()) + " values for " + std::to_string(count) + " channels");
  }
  std::vector<char> seen(p.size(), 0);
  for (std::size_t j = 0; j < p.size(); ++j) {
    if (p[j] < 0 || p[j] >= count) {
      fail("value " + std::to_string(p[j]) + " at position " + std::to_string(j) +
           " is out of range");
    }
    if (seen[static_cast<std::size_t>(p[j])]++) {
      fail("value " + std::to_string(p[j]) + " appears twice");
    }
  }
}

/// Checks `r` (a ragged_groups) and the kernel extents; splits the groups into segments.
template <class Groups>
ragged_structure resolve_ragged(const Groups& r, const std::array<index_t, 2>& kernel,
                                const char* fn) {
  if (r.in_offsets.size() < 2 || r.in_offsets.size() != r.out_offsets.size()) {
    CVK_THROW(invalid_argument,
              std::string(fn) +
                  ": groups.in_offsets and groups.out_offsets must both hold G + 1 >= 2 values "
                  "(G groups), got " +
                  std::to_string(r.in_offsets.size()) + " and " +
                  std::to_string(r.out_offsets.size()));
  }
  check_ragged_offsets(r.in_offsets, fn, "in_offsets");
  check_ragged_offsets(r.out_offsets, fn, "out_offsets");
  if (kernel[0] < 1 || kernel[1] < 1) {
    CVK_THROW(invalid_argument,
              std::string(fn) + ": kernel must be at least 1×1, got " + shape_string(kernel, 2));
  }
  ragged_structure s;
  s.in_channels = r.in_offsets.back();
  s.out_channels = r.out_offsets.back();
  s.kernel_h = kernel[0];
  s.kernel_w = kernel[1];
  check_ragged_permutation(r.in_permutation, s.in_channels, fn, "in_permutation");
  check_ragged_permutation(r.out_permutation, s.out_channels, fn, "out_permutation");
  const auto text = [&] {
    return "groups.in_offsets " + index_list_text(r.in_offsets) + ", groups.out_offsets " +
           index_list_text(r.out_offsets) + ", kernel " + shape_string(kernel, 2);
  };
  const index_t taps = checked_mul(kernel[0], kernel[1], fn, "weight", text);
  for (std::size_t g = 0; g + 1 < r.in_offsets.size(); ++g) {
    const index_t in_g = r.in_offsets[g + 1] - r.in_offsets[g];
    const index_t out_g = r.out_offsets[g + 1] - r.out_offsets[g];
    const index_t block =
        checked_mul(checked_mul(out_g, in_g, fn, "weight", text), taps, fn, "weight", text);
    if (out_g == 0) continue;
    if (!s.segments.empty()) {
      ragged_segment& last = s.segments.back();
      if (last.in_per_group == in_g && last.out_per_group == out_g &&
          last.in_begin + last.groups * in_g == r.in_offsets[g] &&
          last.out_begin + last.groups * out_g == r.out_offsets[g]) {
        ++last.groups;
        s.weight_size = checked_extent_sum(s.weight_size, block, fn, "weight", text());
        continue;
      }
    }
    s.segments.push_back({1, r.in_offsets[g], in_g, r.out_offsets[g], out_g, s.weight_size});
    s.weight_size = checked_extent_sum(s.weight_size, block, fn, "weight", text());
  }
  return s;
}

/// The channel slice [begin, begin + count) of an (n, c, h, w)-ordered view.
template <class T>
strided_view<T, 4> channel_slice(const strided_view<T, 4>& v, index_t begin, index_t count) {
  return {v.data() + (count > 0 ? begin * v.stride(1) : 0),
          {v.extent(0), count, v.extent(2), v.extent(3)},
          {v.stride(0), v.stride(1), v.stride(2), v.stride(3)}};
}

/// The (n, c, h, w)-ordered view of an NHWC-contiguous buffer of `extents` (N, C, H, W).
template <class T>
strided_view<T, 4> nhwc_buffer_view(T* data, const std::array<index_t, 4>& e) {
  return {data, e, {e[1] * e[2] * e[3], 1, e[3] * e[1], e[1]}};
}

/// dst (NHWC-contiguous, N×H×W×count) = src's channels channels[begin + j] (or begin + j without
/// a permutation), j < count. One pass; rows split over threads.
template <class T>
void gather_channels(const strided_view<const T, 4>& src, const std::vector<index_t>& channels,
                     index_t begin, index_t count, T* dst, int threads) {
  const index_t n = src.extent(0), h = src.extent(2), w = src.extent(3), cs = src.stride(1);
  if (count == 0 || n * h * w == 0) return;
  const index_t* index = channels.empty() ? nullptr : channels.data() + begin;
  parallel_for(
      0, n * h, 8,
      [&](index_t lo, index_t hi) {
        for (index_t r = lo; r < hi; ++r) {
          const T* s = src.data() + (r / h) * src.stride(0) + (r % h) * src.stride(2);
          T* d = dst + r * w * count;
          for (index_t x = 0; x < w; ++x) {
            const T* sx = s + x * src.stride(3);
            T* __restrict dx = d + x * count;
            if (channels.empty()) {
              for (index_t j = 0; j < count; ++j) dx[j] = sx[(begin + j) * cs];
            } else {
              for (index_t j = 0; j < count; ++j) dx[j] = sx[index[j] * cs];
            }
          }
        }
      },
      threads);
}

/// dst's channels channels[begin + j] (or begin + j) = src (NHWC-contiguous, N×H×W×count), j <
/// count: the inverse of gather_channels.
template <class T>
void scatter_channels(const T* src, const std::vector<index_t>& channels, index_t begin,
                      index_t count, const strided_view<T, 4>& dst, int threads) {
  const index_t n = dst.extent(0), h = dst.extent(2), w = dst.extent(3), cs = dst.stride(1);
  if (count == 0 || n * h * w == 0) return;
  const index_t* index = channels.empty() ? nullptr : channels.data() + begin;
  parallel_for(
      0, n * h, 8,
      [&](index_t lo, index_t hi) {
        for (index_t r = lo; r < hi; ++r) {
          T* d = dst.data() + (r / h) * dst.stride(0) + (r % h) * dst.stride(2);
          const T* s = src + r * w * count;
          for (index_t x = 0; x < w; ++x) {
            T* dx = d + x * dst.stride(3);
            const T* __restrict sx = s + x * count;
            if (channels.empty()) {
              for (index_t j = 0; j < count; ++j) dx[(begin + j) * cs] = sx[j];
            } else {
              for (index_t j = 0; j < count; ++j) dx[index[j] * cs] = sx[j];
            }
          }
        }
      },
      threads);
}

/// y[o] = act(y[o] + bias[o] (+ r[o])) over c contiguous channels of one pixel.
template <class T, activation Act>
void ragged_finish_pixel(T* __restrict y, const T* r, const T* bias, index_t c,
                         const epilogue<T>& e) {
  const T lo = e.lo, hi = e.hi;
  const auto apply = [lo, hi](T v) { return activate<Act>(v, lo, hi); };
  if (r == nullptr) {
    for (index_t o = 0; o < c; ++o) y[o] = apply(y[o] + bias[o]);
  } else {
    for (index_t o = 0; o < c; ++o) y[o] = apply(y[o] + bias[o] + r[o]);
  }
}

/// y = act(y + bias + residual) in place over an (n, c, h, w)-ordered view (residual: null data,
/// or y's shape and not y itself), in conv2d's order; skipped when there is nothing to add or
/// apply. Rows split over threads; channels inner when they are y's closest axis.
template <class T>
void ragged_epilogue(const strided_view<T, 4>& y, const strided_view<const T, 4>& residual,
                     const T* bias, const epilogue<T>& act, int threads) {
  const index_t n = y.extent(0), c = y.extent(1), h = y.extent(2), w = y.extent(3);
  const bool has_residual = residual.data() != nullptr;
  if (!has_residual && act.act == activation::none &&
      std::all_of(bias, bias + c, [](T b) { return b == T(0); })) {
    return;
  }
  const bool channels_inner = std::abs(y.stride(1)) <= std::abs(y.stride(3));
  parallel_for(
      0, n * h, 8,
      [&](index_t lo, index_t hi) {
        for (index_t row = lo; row < hi; ++row) {
          const index_t b = row / h, oy = row % h;
          T* yr = y.data() + b * y.stride(0) + oy * y.stride(2);
          const T* rr = has_residual
                            ? residual.data() + b * residual.stride(0) + oy * residual.stride(2)
                            : nullptr;
          const auto one = [&](index_t ox, index_t o) {
            T& v = yr[o * y.stride(1) + ox * y.stride(3)];
            T sum = v + bias[o];
            if (rr != nullptr) sum += rr[o * residual.stride(1) + ox * residual.stride(3)];
            v = act(sum);
          };
          if (y.stride(1) == 1 && (rr == nullptr || residual.stride(1) == 1)) {
            for (index_t ox = 0; ox < w; ++ox) {  // unit-stride channels: vectorizes
              T* __restrict yp = yr + ox * y.stride(3);
              const T* rp = rr == nullptr ? nullptr : rr + ox * residual.stride(3);
              switch (act.act) {
                case activation::none:
                  ragged_finish_pixel<T, activation::none>(yp, rp, bias, c, act);
                  break;
                case activation::relu:
                  ragged_finish_pixel<T, activation::relu>(yp, rp, bias, c, act);
                  break;
                case activation::relu6:
                case activation::clamp:
                  ragged_finish_pixel<T, activation::clamp>(yp, rp, bias, c, act);
                  break;
              }
            }
          } else if (channels_inner) {
            for (index_t ox = 0; ox < w; ++ox) {
              for (index_t o = 0; o < c; ++o) one(ox, o);
            }
          } else {
            for (index_t o = 0; o < c; ++o) {
              for (index_t ox = 0; ox < w; ++ox) one(ox, o);
            }
          }
        }
      },
      threads);
}

/// Sets the channels channels[begin + j] (or begin + j), j < count, of dst to zero.
template <class T>
void zero_channels(const std::vector<index_t>& channels, index_t begin, index_t count,
                   const strided_view<T, 4>& dst) {
  for (index_t n = 0; n < dst.extent(0); ++n) {
    for (index_t j = 0; j < count; ++j) {
      const index_t c =
          channels.empty() ? begin + j : channels[static_cast<std::size_t>(begin + j)];
      for (index_t y = 0; y < dst.extent(2); ++y) {
        for (index_t x = 0; x < dst.extent(3); ++x) dst(n, c, y, x) = T(0);
      }
    }
  }
}

/// Visits every weight element of the flat ragged weight: f(flat index, group's conv output
/// channel o, conv input channel i, ky, kx), blocks in params.weights order.
template <class Groups, class F>
void for_each_ragged_weight(const Groups& r, const std::array<index_t, 2>& kernel, weight_layout wl,
                            F&& f) {
  index_t at = 0;
  for (std::size_t g = 0; g + 1 < r.in_offsets.size(); ++g) {
    const index_t i0 = r.in_offsets[g], in_g = r.in_offsets[g + 1] - i0;
    const index_t o0 = r.out_offsets[g], out_g = r.out_offsets[g + 1] - o0;
    if (wl == weight_layout::oihw) {
      for (index_t o = 0; o < out_g; ++o) {
        for (index_t i = 0; i < in_g; ++i) {
          for (index_t ky = 0; ky < kernel[0]; ++ky) {
            for (index_t kx = 0; kx < kernel[1]; ++kx) f(at++, o0 + o, i0 + i, ky, kx);
          }
        }
      }
    } else {
      for (index_t ky = 0; ky < kernel[0]; ++ky) {
        for (index_t kx = 0; kx < kernel[1]; ++kx) {
          for (index_t i = 0; i < in_g; ++i) {
            for (index_t o = 0; o < out_g; ++o) f(at++, o0 + o, i0 + i, ky, kx);
          }
        }
      }
    }
  }
}

/// The tensor channel of conv channel j under a permutation (empty = identity).
inline index_t permuted(const std::vector<index_t>& p, index_t j) noexcept {
  return p.empty() ? j : p[static_cast<std::size_t>(j)];
}

}  // namespace detail
CVK_END_NAMESPACE
