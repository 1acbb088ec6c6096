// cvk — computer-vision kernels, header-only C++20.
// Test support: the plain conv2d reference loop (NCHW input, OIHW weight, explicit padding,
// long double accumulation), the problem description the conv tests draw at random, and copies
// of NCHW / OIHW data in the other layouts. Also the backward references (input gradient in
// scatter form, weight and bias gradients) and the transposed-conv problem built on them.
// SPDX-License-Identifier: MIT
#pragma once

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include <cvk/conv/detail/geometry.hpp>  // cvk::layout
#include <cvk/core/rng.hpp>
#include <cvk/core/strided_view.hpp>

namespace cvk_test {

using cvk::index_t;

/// One conv2d problem: extents, groups, stride, dilation, explicit padding (top, left, bottom,
/// right).
struct conv_problem {
  index_t n = 1, c = 1, h = 1, w = 1, o = 1, kh = 1, kw = 1, groups = 1;
  std::array<index_t, 2> stride{1, 1};
  std::array<index_t, 2> dilation{1, 1};
  std::array<index_t, 4> pad{0, 0, 0, 0};

  [[nodiscard]] index_t out_h() const {
    return (h + pad[0] + pad[2] - dilation[0] * (kh - 1) - 1) / stride[0] + 1;
  }
  [[nodiscard]] index_t out_w() const {
    return (w + pad[1] + pad[3] - dilation[1] * (kw - 1) - 1) / stride[1] + 1;
  }
  [[nodiscard]] std::array<index_t, 4> input_nchw() const { return {n, c, h, w}; }
  [[nodiscard]] std::array<index_t, 4> weight_oihw() const { return {o, c / groups, kh, kw}; }
  [[nodiscard]] std::array<index_t, 4> output_nchw() const { return {n, o, out_h(), out_w()}; }

  [[nodiscard]] std::string describe() const {
    const auto s = [](index_t v) { return std::to_string(v); };
    return "N=" + s(n) + " C=" + s(c) + " H=" + s(h) + " W=" + s(w) + " O=" + s(o) + " K=" + s(kh) +
           "x" + s(kw) + " groups=" + s(groups) + " stride=" + s(stride[0]) + "," + s(stride[1]) +
           " dilation=" + s(dilation[0]) + "," + s(dilation[1]) + " pad=" + s(pad[0]) + "," +
           s(pad[1]) + "," + s(pad[2]) + "," + s(pad[3]);
  }
};

inline std::size_t product(const std::array<index_t, 4>& e) {
  return static_cast<std::size_t>(e[0] * e[1] * e[2] * e[3]);
}

/// The reference: y[n][o][oy][ox] = bias[o] + Σ w[o][i][ky][kx] · x[n][g·I/g + i][iy][ix] over the
/// taps inside the image, summed in long double and rounded once to T. `bias` may be empty.
/// Also returns, in `magnitude`, Σ |w·x| + |bias| per output (for tolerances).
template <class T>
std::vector<T> reference_conv2d(const conv_problem& p, const std::vector<T>& x,
                                const std::vector<T>& w, const std::vector<T>& bias,
                                std::vector<long double>* magnitude = nullptr) {
  const index_t oh = p.out_h(), ow = p.out_w();
  const index_t ig = p.c / p.groups, og = p.o / p.groups;
  std::vector<T> y(static_cast<std::size_t>(p.n * p.o * oh * ow));
  if (magnitude != nullptr) magnitude->assign(y.size(), 0.0L);
  const auto at = [](index_t i) { return static_cast<std::size_t>(i); };
  for (index_t n = 0; n < p.n; ++n) {
    for (index_t o = 0; o < p.o; ++o) {
      const index_t grp = o / og;
      for (index_t oy = 0; oy < oh; ++oy) {
        for (index_t ox = 0; ox < ow; ++ox) {
          long double sum = bias.empty() ? 0.0L : static_cast<long double>(bias[at(o)]);
          long double mag = std::fabs(sum);
          for (index_t i = 0; i < ig; ++i) {
            for (index_t ky = 0; ky < p.kh; ++ky) {
              for (index_t kx = 0; kx < p.kw; ++kx) {
                const index_t iy = oy * p.stride[0] - p.pad[0] + ky * p.dilation[0];
                const index_t ix = ox * p.stride[1] - p.pad[1] + kx * p.dilation[1];
                if (iy < 0 || iy >= p.h || ix < 0 || ix >= p.w) continue;
                const long double term =
                    static_cast<long double>(w[at(((o * ig + i) * p.kh + ky) * p.kw + kx)]) *
                    static_cast<long double>(
                        x[at(((n * p.c + grp * ig + i) * p.h + iy) * p.w + ix)]);
                sum += term;
                mag += std::fabs(term);
              }
            }
          }
          const std::size_t k = at(((n * p.o + o) * oh + oy) * ow + ox);
          y[k] = static_cast<T>(sum);
          if (magnitude != nullptr) (*magnitude)[k] = mag;
        }
      }
    }
  }
  return y;
}

/// The input gradient of conv2d p from dy (N×O×dy_h×dy_w, NCHW; dy_h, dy_w default to the conv's
/// output extents) and the OIHW weight, in scatter form — every dy element sent through the
/// kernel, the opposite loop order to the library's gather — summed in long double, rounded once.
/// dy_h may be smaller than p.out_h() (a transposed conv whose output_padding >= stride).
template <class T>
std::vector<T> reference_conv2d_backward_input(const conv_problem& p, const std::vector<T>& dy,
                                               const std::vector<T>& w, index_t dy_h = -1,
                                               index_t dy_w = -1) {
  if (dy_h < 0) dy_h = p.out_h();
  if (dy_w < 0) dy_w = p.out_w();
  const index_t ig = p.c / p.groups, og = p.o / p.groups;
  const auto at = [](index_t i) { return static_cast<std::size_t>(i); };
  std::vector<long double> sum(at(p.n * p.c * p.h * p.w), 0.0L);
  for (index_t n = 0; n < p.n; ++n)
    for (index_t o = 0; o < p.o; ++o)
      for (index_t oy = 0; oy < dy_h; ++oy)
        for (index_t ox = 0; ox < dy_w; ++ox) {
          const long double d = dy[at(((n * p.o + o) * dy_h + oy) * dy_w + ox)];
          for (index_t i = 0; i < ig; ++i)
            for (index_t ky = 0; ky < p.kh; ++ky)
              for (index_t kx = 0; kx < p.kw; ++kx) {
                const index_t iy = oy * p.stride[0] - p.pad[0] + ky * p.dilation[0];
                const index_t ix = ox * p.stride[1] - p.pad[1] + kx * p.dilation[1];
                if (iy < 0 || iy >= p.h || ix < 0 || ix >= p.w) continue;
                sum[at(((n * p.c + (o / og) * ig + i) * p.h + iy) * p.w + ix)] +=
                    d * static_cast<long double>(w[at(((o * ig + i) * p.kh + ky) * p.kw + kx)]);
              }
        }
  return std::vector<T>(sum.begin(), sum.end());
}

/// The weight gradient (OIHW) of conv2d p from dy (NCHW output extents) and the NCHW input.
template <class T>
std::vector<T> reference_conv2d_backward_weight(const conv_problem& p, const std::vector<T>& dy,
                                                const std::vector<T>& x) {
  const index_t oh = p.out_h(), ow = p.out_w(), ig = p.c / p.groups, og = p.o / p.groups;
  const auto at = [](index_t i) { return static_cast<std::size_t>(i); };
  std::vector<T> dw(at(p.o * ig * p.kh * p.kw));
  for (index_t o = 0; o < p.o; ++o)
    for (index_t i = 0; i < ig; ++i)
      for (index_t ky = 0; ky < p.kh; ++ky)
        for (index_t kx = 0; kx < p.kw; ++kx) {
          long double sum = 0.0L;
          for (index_t n = 0; n < p.n; ++n)
            for (index_t oy = 0; oy < oh; ++oy)
              for (index_t ox = 0; ox < ow; ++ox) {
                const index_t iy = oy * p.stride[0] - p.pad[0] + ky * p.dilation[0];
                const index_t ix = ox * p.stride[1] - p.pad[1] + kx * p.dilation[1];
                if (iy < 0 || iy >= p.h || ix < 0 || ix >= p.w) continue;
                sum += static_cast<long double>(dy[at(((n * p.o + o) * oh + oy) * ow + ox)]) *
                       static_cast<long double>(
                           x[at(((n * p.c + (o / og) * ig + i) * p.h + iy) * p.w + ix)]);
              }
          dw[at(((o * ig + i) * p.kh + ky) * p.kw + kx)] = static_cast<T>(sum);
        }
  return dw;
}

/// The bias gradient (O values) from dy (NCHW, N×O×H×W).
template <class T>
std::vector<T> reference_conv2d_backward_bias(const std::vector<T>& dy,
                                              const std::array<index_t, 4>& e) {
  std::vector<T> db(static_cast<std::size_t>(e[1]));
  for (index_t o = 0; o < e[1]; ++o) {
    long double sum = 0.0L;
    for (index_t n = 0; n < e[0]; ++n)
      for (index_t k = 0; k < e[2] * e[3]; ++k)
        sum += dy[static_cast<std::size_t>((n * e[1] + o) * e[2] * e[3] + k)];
    db[static_cast<std::size_t>(o)] = static_cast<T>(sum);
  }
  return db;
}

/// One conv_transpose2d problem (input N×C×H×W, weight C×(O/groups)×KH×KW) and the conv2d it
/// transposes: that conv's input is the transposed output, its output the transposed input.
struct transpose_problem {
  index_t n = 1, c = 1, h = 1, w = 1, o = 1, kh = 1, kw = 1, groups = 1;
  std::array<index_t, 2> stride{1, 1};
  std::array<index_t, 2> dilation{1, 1};
  std::array<index_t, 4> pad{0, 0, 0, 0};
  std::array<index_t, 2> output_padding{0, 0};

  [[nodiscard]] index_t out_h() const {
    return (h - 1) * stride[0] - pad[0] - pad[2] + dilation[0] * (kh - 1) + output_padding[0] + 1;
  }
  [[nodiscard]] index_t out_w() const {
    return (w - 1) * stride[1] - pad[1] - pad[3] + dilation[1] * (kw - 1) + output_padding[1] + 1;
  }
  [[nodiscard]] std::array<index_t, 4> input_nchw() const { return {n, c, h, w}; }
  [[nodiscard]] std::array<index_t, 4> weight_iohw() const { return {c, o / groups, kh, kw}; }
  [[nodiscard]] std::array<index_t, 4> output_nchw() const { return {n, o, out_h(), out_w()}; }
  [[nodiscard]] conv_problem as_conv() const {
    conv_problem p;
    p.n = n;
    p.c = o;
    p.h = out_h();
    p.w = out_w();
    p.o = c;
    p.kh = kh;
    p.kw = kw;
    p.groups = groups;
    p.stride = stride;
    p.dilation = dilation;
    p.pad = pad;
    return p;
  }
  [[nodiscard]] std::string describe() const {
    const auto s = [](index_t v) { return std::to_string(v); };
    return "transposed: " + as_conv().describe() + " input " + s(h) + "x" + s(w) +
           " output_padding=" + s(output_padding[0]) + "," + s(output_padding[1]);
  }
};

/// conv_transpose2d by the scatter reference: x (NCHW), w (C×(O/g)×KH×KW), bias (O or empty).
template <class T>
std::vector<T> reference_conv_transpose2d(const transpose_problem& t, const std::vector<T>& x,
                                          const std::vector<T>& w, const std::vector<T>& bias) {
  std::vector<T> y = reference_conv2d_backward_input(t.as_conv(), x, w, t.h, t.w);
  if (!bias.empty()) {
    const std::size_t plane = static_cast<std::size_t>(t.out_h() * t.out_w());
    for (std::size_t k = 0; k < y.size(); ++k) {
      // Exact for the small integers the tests use; otherwise within one rounding.
      y[k] += bias[(k / plane) % static_cast<std::size_t>(t.o)];
    }
  }
  return y;
}

/// NCHW data copied to NHWC order.
template <class T>
std::vector<T> nchw_to_nhwc(const std::vector<T>& x, const std::array<index_t, 4>& e) {
  std::vector<T> out(x.size());
  for (index_t n = 0; n < e[0]; ++n)
    for (index_t c = 0; c < e[1]; ++c)
      for (index_t y = 0; y < e[2]; ++y)
        for (index_t xx = 0; xx < e[3]; ++xx)
          out[static_cast<std::size_t>(((n * e[2] + y) * e[3] + xx) * e[1] + c)] =
              x[static_cast<std::size_t>(((n * e[1] + c) * e[2] + y) * e[3] + xx)];
  return out;
}

/// OIHW weights copied to HWIO order ([kh][kw][i][o]).
template <class T>
std::vector<T> oihw_to_hwio(const std::vector<T>& wt, const std::array<index_t, 4>& e) {
  std::vector<T> out(wt.size());
  for (index_t o = 0; o < e[0]; ++o)
    for (index_t i = 0; i < e[1]; ++i)
      for (index_t y = 0; y < e[2]; ++y)
        for (index_t x = 0; x < e[3]; ++x)
          out[static_cast<std::size_t>(((y * e[3] + x) * e[1] + i) * e[0] + o)] =
              wt[static_cast<std::size_t>(((o * e[1] + i) * e[2] + y) * e[3] + x)];
  return out;
}

/// The elements of a rank-4 view in row-major order of its axes.
template <class T>
std::vector<std::remove_const_t<T>> flatten(cvk::strided_view<T, 4> v) {
  std::vector<std::remove_const_t<T>> out;
  for (index_t a = 0; a < v.extent(0); ++a)
    for (index_t b = 0; b < v.extent(1); ++b)
      for (index_t c = 0; c < v.extent(2); ++c)
        for (index_t d = 0; d < v.extent(3); ++d) out.push_back(v(a, b, c, d));
  return out;
}

/// How an activation tensor is stored (the views a conv entry point must read and write).
enum class storage { contiguous, padded_inner, reversed_inner, transposed };
inline constexpr std::array<storage, 4> all_storages{storage::contiguous, storage::padded_inner,
                                                     storage::reversed_inner, storage::transposed};

inline const char* to_string(storage s) {
  switch (s) {
    case storage::contiguous:
      return "contiguous";
    case storage::padded_inner:
      return "padded innermost axis";
    case storage::reversed_inner:
      return "reversed innermost axis (negative stride)";
    case storage::transposed:
      return "stored in the other layout's order";
  }
  return "?";
}

/// A buffer and a rank-4 view of it in layout `l`, holding the NCHW data `x` of
/// extents `e`. Padding elements hold -99.
template <class T>
struct stored_tensor {
  std::vector<T> buffer;
  cvk::strided_view<T, 4> view;
};

template <class T>
stored_tensor<T> store(const std::vector<T>& x, const std::array<index_t, 4>& e, cvk::layout l,
                       storage s) {
  const bool nhwc = l == cvk::layout::nhwc;
  const std::array<index_t, 4> logical = nhwc ? std::array<index_t, 4>{e[0], e[2], e[3], e[1]} : e;
  // Memory order of the logical axes, outer to inner.
  std::array<std::size_t, 4> order{0, 1, 2, 3};
  if (s == storage::transposed) {
    order = nhwc ? std::array<std::size_t, 4>{0, 3, 1, 2} : std::array<std::size_t, 4>{0, 2, 3, 1};
  }
  std::array<index_t, 4> strides{};
  index_t step = 1;
  const std::size_t inner = order[3];
  for (std::size_t k = 4; k-- > 0;) {
    const std::size_t axis = order[k];
    strides[axis] = (s == storage::reversed_inner && axis == inner) ? -step : step;
    step *= logical[axis] + (s == storage::padded_inner && axis == inner ? 2 : 0);
  }
  stored_tensor<T> t;
  t.buffer.assign(static_cast<std::size_t>(step) + 2, T(-99));
  T* base = t.buffer.data() + 1;
  if (s == storage::reversed_inner) base += logical[inner] - 1;
  t.view = {base, logical, strides};
  for (index_t n = 0; n < e[0]; ++n)
    for (index_t c = 0; c < e[1]; ++c)
      for (index_t y = 0; y < e[2]; ++y)
        for (index_t xx = 0; xx < e[3]; ++xx) {
          const T v = x[static_cast<std::size_t>(((n * e[1] + c) * e[2] + y) * e[3] + xx)];
          if (nhwc) {
            t.view(n, y, xx, c) = v;
          } else {
            t.view(n, c, y, xx) = v;
          }
        }
  return t;
}

/// The NCHW-ordered values of a view in layout `l`.
template <class T>
std::vector<std::remove_const_t<T>> to_nchw(cvk::strided_view<T, 4> v, cvk::layout l) {
  if (l == cvk::layout::nchw) return flatten(v);
  return flatten(cvk::strided_view<T, 4>(v.data(),
                                         {v.extent(0), v.extent(3), v.extent(1), v.extent(2)},
                                         {v.stride(0), v.stride(3), v.stride(1), v.stride(2)}));
}

/// Reads a fixture's params row "N C H W O KH KW groups sh sw dh dw pt pl pb pr ..." into a
/// conv_problem or a transpose_problem (the same field names).
template <class Problem>
void read_conv_fields(Problem& p, const std::vector<index_t>& v) {
  p.n = v.at(0);
  p.c = v.at(1);
  p.h = v.at(2);
  p.w = v.at(3);
  p.o = v.at(4);
  p.kh = v.at(5);
  p.kw = v.at(6);
  p.groups = v.at(7);
  p.stride = {v.at(8), v.at(9)};
  p.dilation = {v.at(10), v.at(11)};
  p.pad = {v.at(12), v.at(13), v.at(14), v.at(15)};
}

inline constexpr std::array<cvk::layout, 2> both_layouts{cvk::layout::nchw, cvk::layout::nhwc};
inline constexpr std::array<cvk::weight_layout, 2> both_weight_layouts{cvk::weight_layout::oihw,
                                                                       cvk::weight_layout::hwio};

/// The conv2d_params of problem p in the given layouts.
inline cvk::conv2d_params conv_params(const conv_problem& p, cvk::layout l = cvk::layout::nchw,
                                      cvk::weight_layout wl = cvk::weight_layout::oihw) {
  return {.stride = p.stride,
          .padding = p.pad,
          .dilation = p.dilation,
          .groups = p.groups,
          .data_layout = l,
          .weights = wl};
}

/// The edge shapes every conv entry point is tested on: a 1×1 image with a 1×1 kernel in
/// several groups, a kernel that exactly covers the padded input, a stride far larger than the
/// image (most input rows never read), a padded 1×1 image (most taps see only zeros).
inline std::vector<conv_problem> edge_problems() {
  std::vector<conv_problem> problems;
  conv_problem one;
  one.c = 6;
  one.o = 9;
  one.groups = 3;
  problems.push_back(one);
  conv_problem full;
  full.c = 2;
  full.o = 4;
  full.h = 3;
  full.w = 2;
  full.kh = 5;
  full.kw = 4;
  full.pad = {1, 0, 1, 2};
  problems.push_back(full);
  conv_problem huge = full;
  huge.kh = 2;
  huge.kw = 1;
  huge.stride = {1000, 1'000'000};
  problems.push_back(huge);
  conv_problem padded_only;
  padded_only.c = 3;
  padded_only.o = 3;
  padded_only.groups = 3;
  padded_only.kh = 3;
  padded_only.kw = 3;
  padded_only.pad = {2, 2, 2, 2};
  problems.push_back(padded_only);
  return problems;
}

/// `count` integers in [-range, range] as T: products and sums of a few of them are exact.
template <class T>
std::vector<T> small_integers(cvk::rng& gen, std::size_t count, int range) {
  std::vector<T> v(count);
  for (auto& x : v) {
    x = static_cast<T>(static_cast<int>(gen.below(static_cast<std::uint64_t>(2 * range + 1))) -
                       range);
  }
  return v;
}

/// `count` reals uniform in [-1, 1): sums round, so any change of summation order shows.
template <class T>
std::vector<T> random_reals(cvk::rng& gen, std::size_t count) {
  std::vector<T> v(count);
  for (auto& x : v) x = gen.uniform<T>(T(-1), T(1));
  return v;
}

#if defined(__SANITIZE_ADDRESS__)
#  define CVK_TEST_SANITIZED 1
#elif defined(__has_feature)
#  if __has_feature(address_sanitizer)
#    define CVK_TEST_SANITIZED 1
#  endif
#endif

/// Random trials of a sweep: all `count` in optimised builds without sanitizers (the release
/// preset), a quarter (at least 4) in unoptimised or sanitized ones — the sanitizer presets,
/// where every trial costs 5–50× and the same code paths are reached by the first trials of
/// each seeded sweep.
inline int trials(int count) {
#if defined(__OPTIMIZE__) && !defined(CVK_TEST_SANITIZED)
  return count;
#else
  return count / 4 > 4 ? count / 4 : (count < 4 ? count : 4);
#endif
}

/// Uniform in [lo, hi].
inline index_t draw(cvk::rng& gen, index_t lo, index_t hi) {
  return lo + static_cast<index_t>(gen.below(static_cast<std::uint64_t>(hi - lo + 1)));
}

}  // namespace cvk_test
