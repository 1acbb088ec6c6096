// cvk — computer-vision kernels, header-only C++20.
// Test support: the plain conv2d reference loop (NCHW input, OIHW weight, explicit padding,
// long double accumulation), the problem description the conv tests draw at random, and copies
// of NCHW / OIHW data in the other layouts.
// SPDX-License-Identifier: MIT
#pragma once

#include <array>
#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

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

}  // namespace cvk_test
