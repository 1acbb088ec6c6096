// cvk — computer-vision kernels, header-only C++20.
// Test support: the plain reference of deform_conv2d and its gradients — one bilinear sample per
// (n, output channel, input channel, tap, output pixel), straight from the formulas of
// torchvision's kernel (the opposite loop order to the library's gather), summed in long double
// and rounded once. Every tensor is NCHW (weight OIHW), as flat vectors.
// SPDX-License-Identifier: MIT
#pragma once

#include <array>
#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include "conv_reference.hpp"

namespace cvk_test {

/// A deform_conv2d problem: a conv problem plus the offset groups and whether a mask is used.
struct deform_problem {
  conv_problem conv;
  index_t offset_groups = 1;
  bool masked = false;

  [[nodiscard]] index_t taps() const { return conv.kh * conv.kw; }
  [[nodiscard]] std::array<index_t, 4> offset_nchw() const {
    return {conv.n, 2 * offset_groups * taps(), conv.out_h(), conv.out_w()};
  }
  [[nodiscard]] std::array<index_t, 4> mask_nchw() const {
    return {conv.n, offset_groups * taps(), conv.out_h(), conv.out_w()};
  }
  [[nodiscard]] std::string describe() const {
    return conv.describe() + " offset_groups=" + std::to_string(offset_groups) +
           (masked ? " v2" : " v1");
  }
};

/// The 4 corners of a bilinear sample: pixel (y, x) or −1, and the weight of each.
struct reference_sample {
  std::array<index_t, 4> y{}, x{};
  std::array<long double, 4> weight{};
  long double ly = 0, lx = 0;
  bool inside = false;
};

inline reference_sample reference_corners(index_t h, index_t w, long double py, long double px) {
  reference_sample s;
  if (!(py > -1 && py < static_cast<long double>(h) && px > -1 &&
        px < static_cast<long double>(w))) {
    return s;
  }
  s.inside = true;
  const auto y0 = static_cast<index_t>(std::floor(py)), x0 = static_cast<index_t>(std::floor(px));
  s.ly = py - static_cast<long double>(y0);
  s.lx = px - static_cast<long double>(x0);
  for (int k = 0; k < 4; ++k) {
    s.y[static_cast<std::size_t>(k)] = y0 + k / 2;
    s.x[static_cast<std::size_t>(k)] = x0 + k % 2;
    s.weight[static_cast<std::size_t>(k)] =
        (k / 2 == 0 ? 1 - s.ly : s.ly) * (k % 2 == 0 ? 1 - s.lx : s.lx);
  }
  return s;
}

/// Value at (y, x) of channel plane `plane` (H×W), 0 outside.
template <class T>
long double reference_pixel(const std::vector<T>& x, std::size_t plane, index_t h, index_t w,
                            index_t yy, index_t xx) {
  if (yy < 0 || yy >= h || xx < 0 || xx >= w) return 0;
  return static_cast<long double>(x[plane + static_cast<std::size_t>(yy * w + xx)]);
}

/// Visits every (n, o, i, ky, kx, oy, ox) term: f(n, o, c, t, oy, ox, py, px, mask_value,
/// offset_index_dy, mask_index).
template <class T, class F>
void reference_deform_terms(const deform_problem& dp, const std::vector<T>& offset,
                            const std::vector<T>& mask, F&& f) {
  const conv_problem& p = dp.conv;
  const index_t ho = p.out_h(), wo = p.out_w(), k = dp.taps();
  const index_t per_og = p.c / dp.offset_groups, ig = p.c / p.groups, og_out = p.o / p.groups;
  for (index_t n = 0; n < p.n; ++n)
    for (index_t o = 0; o < p.o; ++o)
      for (index_t i = 0; i < ig; ++i) {
        const index_t c = (o / og_out) * ig + i, q = c / per_og;
        for (index_t ky = 0; ky < p.kh; ++ky)
          for (index_t kx = 0; kx < p.kw; ++kx) {
            const index_t t = ky * p.kw + kx;
            for (index_t oy = 0; oy < ho; ++oy)
              for (index_t ox = 0; ox < wo; ++ox) {
                const auto at = [&](index_t channel, index_t channels) {
                  return static_cast<std::size_t>(((n * channels + channel) * ho + oy) * wo + ox);
                };
                const std::size_t oi = at(2 * (q * k + t), 2 * dp.offset_groups * k);
                const std::size_t mi = at(q * k + t, dp.offset_groups * k);
                const long double py = static_cast<long double>(static_cast<T>(
                    static_cast<T>(oy * p.stride[0] - p.pad[0] + ky * p.dilation[0]) + offset[oi]));
                const long double px = static_cast<long double>(static_cast<T>(
                    static_cast<T>(ox * p.stride[1] - p.pad[1] + kx * p.dilation[1]) +
                    offset[oi + static_cast<std::size_t>(ho * wo)]));
                const long double m = dp.masked ? static_cast<long double>(mask[mi]) : 1;
                f(n, o, i, c, t, oy, ox, py, px, m, oi, mi);
              }
          }
      }
}

/// The forward output (N×O×Ho×Wo) of problem dp; `mask` ignored unless dp.masked; `bias` may be
/// empty.
template <class T>
std::vector<T> reference_deform_conv2d(const deform_problem& dp, const std::vector<T>& x,
                                       const std::vector<T>& offset, const std::vector<T>& mask,
                                       const std::vector<T>& w, const std::vector<T>& bias) {
  const conv_problem& p = dp.conv;
  const index_t ho = p.out_h(), wo = p.out_w(), ig = p.c / p.groups;
  std::vector<long double> acc(static_cast<std::size_t>(p.n * p.o * ho * wo), 0.0L);
  reference_deform_terms<T>(
      dp, offset, mask,
      [&](index_t n, index_t o, index_t i, index_t c, index_t t, index_t oy, index_t ox,
          long double py, long double px, long double m, std::size_t, std::size_t) {
        const reference_sample s = reference_corners(p.h, p.w, py, px);
        if (!s.inside) return;
        const std::size_t plane = static_cast<std::size_t>((n * p.c + c) * p.h * p.w);
        long double v = 0;
        for (std::size_t k = 0; k < 4; ++k)
          v += s.weight[k] * reference_pixel(x, plane, p.h, p.w, s.y[k], s.x[k]);
        const long double wv =
            static_cast<long double>(w[static_cast<std::size_t>((o * ig + i) * dp.taps() + t)]);
        acc[static_cast<std::size_t>(((n * p.o + o) * ho + oy) * wo + ox)] += wv * m * v;
      });
  std::vector<T> out(acc.size());
  for (std::size_t j = 0; j < acc.size(); ++j) {
    const index_t o = static_cast<index_t>(j / static_cast<std::size_t>(ho * wo)) % p.o;
    out[j] = static_cast<T>(
        acc[j] +
        (bias.empty() ? 0.0L : static_cast<long double>(bias[static_cast<std::size_t>(o)])));
  }
  return out;
}

/// Every gradient of deform_conv2d (NCHW, weight OIHW; mask empty unless dp.masked).
template <class T>
struct reference_deform_grads {
  std::vector<T> input, offset, mask, weight, bias;
};

template <class T>
reference_deform_grads<T> reference_deform_backward(
    const deform_problem& dp, const std::vector<T>& x, const std::vector<T>& offset,
    const std::vector<T>& mask, const std::vector<T>& w, const std::vector<T>& dy) {
  const conv_problem& p = dp.conv;
  const index_t ho = p.out_h(), wo = p.out_w(), ig = p.c / p.groups;
  std::vector<long double> gi(x.size(), 0.0L), go(offset.size(), 0.0L),
      gm(dp.masked ? mask.size() : 0, 0.0L), gw(w.size(), 0.0L),
      gb(static_cast<std::size_t>(p.o), 0.0L);
  reference_deform_terms<T>(
      dp, offset, mask,
      [&](index_t n, index_t o, index_t i, index_t c, index_t t, index_t oy, index_t ox,
          long double py, long double px, long double m, std::size_t oi, std::size_t mi) {
        const long double g = static_cast<long double>(
            dy[static_cast<std::size_t>(((n * p.o + o) * ho + oy) * wo + ox)]);
        const std::size_t wi = static_cast<std::size_t>((o * ig + i) * dp.taps() + t);
        const long double wv = static_cast<long double>(w[wi]);
        const reference_sample s = reference_corners(p.h, p.w, py, px);
        if (!s.inside) return;
        const std::size_t plane = static_cast<std::size_t>((n * p.c + c) * p.h * p.w);
        std::array<long double, 4> v{};
        long double value = 0;
        for (std::size_t k = 0; k < 4; ++k) {
          v[k] = reference_pixel(x, plane, p.h, p.w, s.y[k], s.x[k]);
          value += s.weight[k] * v[k];
          if (s.y[k] >= 0 && s.y[k] < p.h && s.x[k] >= 0 && s.x[k] < p.w) {
            gi[plane + static_cast<std::size_t>(s.y[k] * p.w + s.x[k])] += g * wv * m * s.weight[k];
          }
        }
        gw[wi] += g * m * value;
        if (dp.masked) gm[mi] += g * wv * value;
        // ∂value/∂py, ∂value/∂px on the cell
        const long double dvy = (1 - s.lx) * (v[2] - v[0]) + s.lx * (v[3] - v[1]);
        const long double dvx = (1 - s.ly) * (v[1] - v[0]) + s.ly * (v[3] - v[2]);
        go[oi] += g * wv * m * dvy;
        go[oi + static_cast<std::size_t>(ho * wo)] += g * wv * m * dvx;
      });
  for (std::size_t j = 0; j < dy.size(); ++j) {
    gb[(j / static_cast<std::size_t>(ho * wo)) % static_cast<std::size_t>(p.o)] +=
        static_cast<long double>(dy[j]);
  }
  const auto round = [](const std::vector<long double>& v) {
    std::vector<T> out(v.size());
    for (std::size_t j = 0; j < v.size(); ++j) out[j] = static_cast<T>(v[j]);
    return out;
  };
  return {round(gi), round(go), round(gm), round(gw), round(gb)};
}

}  // namespace cvk_test
