// cvk — computer-vision kernels, header-only C++20.
// Tests of cvk/conv/ragged_conv2d.hpp: the forward, input and weight gradients against a plain
// reference loop written from the contract (groups of random unequal sizes, size-1 groups,
// groups without inputs or outputs, permutations, stride / dilation / padding, both layouts and
// weight layouts, strided storages, float and double, bias, residual, activations); equality
// with per-group dense convolutions concatenated and with the dense conv of
// ragged_weight_to_dense; uniform groups bit-identical to conv2d with groups; gradients against
// central finite differences in double; 1/2/3 threads bit-identical; every error.
// SPDX-License-Identifier: MIT
#include <cvk/conv.hpp>
#include <cvk/core/rng.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <numeric>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "support/conv_reference.hpp"

namespace {

using cvk::index_t;
using cvk_test::random_reals;
using cvk_test::storage;
using cvk_test::store;
using cvk_test::to_nchw;

std::size_t at(index_t i) { return static_cast<std::size_t>(i); }

template <class T>
cvk::strided_view<T, 4> v4(T* data, const std::array<index_t, 4>& extents) {
  return {data, extents};
}

// The error's type and a fragment of its message.
#define CHECK_CVK_ERROR(expr, type, text) \
  CHECK_THROWS_AS(expr, type);            \
  CHECK_THROWS_WITH(expr, Contains(text))

/// One ragged problem: extents, geometry and the groups.
struct ragged_problem {
  index_t n = 1, h = 1, w = 1, kh = 1, kw = 1;
  std::array<index_t, 2> stride{1, 1}, dilation{1, 1};
  std::array<index_t, 4> pad{0, 0, 0, 0};
  cvk::ragged_groups groups;

  [[nodiscard]] index_t in_channels() const { return groups.in_offsets.back(); }
  [[nodiscard]] index_t out_channels() const { return groups.out_offsets.back(); }
  [[nodiscard]] index_t out_h() const {
    return (h + pad[0] + pad[2] - dilation[0] * (kh - 1) - 1) / stride[0] + 1;
  }
  [[nodiscard]] index_t out_w() const {
    return (w + pad[1] + pad[3] - dilation[1] * (kw - 1) - 1) / stride[1] + 1;
  }
  [[nodiscard]] std::array<index_t, 4> input_nchw() const { return {n, in_channels(), h, w}; }
  [[nodiscard]] std::array<index_t, 4> output_nchw() const {
    return {n, out_channels(), out_h(), out_w()};
  }
  [[nodiscard]] index_t weight_size() const {
    index_t s = 0;
    for (std::size_t g = 0; g + 1 < groups.in_offsets.size(); ++g) {
      s += (groups.in_offsets[g + 1] - groups.in_offsets[g]) *
           (groups.out_offsets[g + 1] - groups.out_offsets[g]) * kh * kw;
    }
    return s;
  }
  [[nodiscard]] cvk::conv2d_params params(cvk::layout l = cvk::layout::nchw,
                                          cvk::weight_layout wl = cvk::weight_layout::oihw,
                                          int threads = 0) const {
    return {.stride = stride,
            .padding = pad,
            .dilation = dilation,
            .data_layout = l,
            .weights = wl,
            .threads = threads};
  }
  [[nodiscard]] std::string describe() const {
    const auto list = [](const std::vector<index_t>& v) {
      std::string s;
      for (const index_t x : v) s += std::to_string(x) + " ";
      return s;
    };
    return "N=" + std::to_string(n) + " H=" + std::to_string(h) + " W=" + std::to_string(w) +
           " K=" + std::to_string(kh) + "x" + std::to_string(kw) + " stride " +
           std::to_string(stride[0]) + "," + std::to_string(stride[1]) + " dilation " +
           std::to_string(dilation[0]) + "," + std::to_string(dilation[1]) + " pad " +
           std::to_string(pad[0]) + "," + std::to_string(pad[1]) + "," + std::to_string(pad[2]) +
           "," + std::to_string(pad[3]) + " in_offsets " + list(groups.in_offsets) +
           "out_offsets " + list(groups.out_offsets) + "P " + list(groups.in_permutation) + "Q " +
           list(groups.out_permutation);
  }
};

index_t perm(const std::vector<index_t>& p, index_t j) { return p.empty() ? j : p[at(j)]; }

/// Visits (flat index, group, o within group, i within group, ky, kx) of the OIHW blocks.
template <class F>
void each_weight(const ragged_problem& p, F&& f) {
  index_t k = 0;
  for (std::size_t g = 0; g + 1 < p.groups.in_offsets.size(); ++g) {
    const index_t ig = p.groups.in_offsets[g + 1] - p.groups.in_offsets[g];
    const index_t og = p.groups.out_offsets[g + 1] - p.groups.out_offsets[g];
    for (index_t o = 0; o < og; ++o)
      for (index_t i = 0; i < ig; ++i)
        for (index_t ky = 0; ky < p.kh; ++ky)
          for (index_t kx = 0; kx < p.kw; ++kx) f(k++, g, o, i, ky, kx);
  }
}

/// The contract as a plain loop (long double sums, NCHW, OIHW blocks), scattered per term:
/// y[n, Q[b_g+o], oy, ox] = bias + Σ w_g[o, i, ky, kx] · x[n, P[a_g+i], iy, ix].
template <class T>
std::vector<T> reference_forward(const ragged_problem& p, const std::vector<T>& x,
                                 const std::vector<T>& w, const std::vector<T>& bias) {
  const index_t O = p.out_channels(), I = p.in_channels(), oh = p.out_h(), ow = p.out_w();
  std::vector<long double> y(at(p.n * O * oh * ow), 0.0L);
  for (index_t n = 0; n < p.n; ++n)
    for (index_t c = 0; c < O; ++c)
      for (index_t k = 0; k < oh * ow; ++k)
        y[at((n * O + c) * oh * ow + k)] = bias.empty() ? 0.0L : bias[at(c)];
  each_weight(p, [&](index_t k, std::size_t g, index_t o, index_t i, index_t ky, index_t kx) {
    const index_t oc = perm(p.groups.out_permutation, p.groups.out_offsets[g] + o);
    const index_t ic = perm(p.groups.in_permutation, p.groups.in_offsets[g] + i);
    for (index_t n = 0; n < p.n; ++n)
      for (index_t oy = 0; oy < oh; ++oy)
        for (index_t ox = 0; ox < ow; ++ox) {
          const index_t iy = oy * p.stride[0] - p.pad[0] + ky * p.dilation[0];
          const index_t ix = ox * p.stride[1] - p.pad[1] + kx * p.dilation[1];
          if (iy < 0 || iy >= p.h || ix < 0 || ix >= p.w) continue;
          y[at(((n * O + oc) * oh + oy) * ow + ox)] +=
              static_cast<long double>(w[at(k)]) * x[at(((n * I + ic) * p.h + iy) * p.w + ix)];
        }
  });
  return std::vector<T>(y.begin(), y.end());
}

template <class T>
std::vector<T> reference_backward_input(const ragged_problem& p, const std::vector<T>& dy,
                                        const std::vector<T>& w) {
  const index_t O = p.out_channels(), I = p.in_channels(), oh = p.out_h(), ow = p.out_w();
  std::vector<long double> gx(at(p.n * I * p.h * p.w), 0.0L);
  each_weight(p, [&](index_t k, std::size_t g, index_t o, index_t i, index_t ky, index_t kx) {
    const index_t oc = perm(p.groups.out_permutation, p.groups.out_offsets[g] + o);
    const index_t ic = perm(p.groups.in_permutation, p.groups.in_offsets[g] + i);
    for (index_t n = 0; n < p.n; ++n)
      for (index_t oy = 0; oy < oh; ++oy)
        for (index_t ox = 0; ox < ow; ++ox) {
          const index_t iy = oy * p.stride[0] - p.pad[0] + ky * p.dilation[0];
          const index_t ix = ox * p.stride[1] - p.pad[1] + kx * p.dilation[1];
          if (iy < 0 || iy >= p.h || ix < 0 || ix >= p.w) continue;
          gx[at(((n * I + ic) * p.h + iy) * p.w + ix)] +=
              static_cast<long double>(w[at(k)]) * dy[at(((n * O + oc) * oh + oy) * ow + ox)];
        }
  });
  return std::vector<T>(gx.begin(), gx.end());
}

template <class T>
std::vector<T> reference_backward_weight(const ragged_problem& p, const std::vector<T>& dy,
                                         const std::vector<T>& x) {
  const index_t O = p.out_channels(), I = p.in_channels(), oh = p.out_h(), ow = p.out_w();
  std::vector<T> gw(at(p.weight_size()));
  each_weight(p, [&](index_t k, std::size_t g, index_t o, index_t i, index_t ky, index_t kx) {
    const index_t oc = perm(p.groups.out_permutation, p.groups.out_offsets[g] + o);
    const index_t ic = perm(p.groups.in_permutation, p.groups.in_offsets[g] + i);
    long double sum = 0.0L;
    for (index_t n = 0; n < p.n; ++n)
      for (index_t oy = 0; oy < oh; ++oy)
        for (index_t ox = 0; ox < ow; ++ox) {
          const index_t iy = oy * p.stride[0] - p.pad[0] + ky * p.dilation[0];
          const index_t ix = ox * p.stride[1] - p.pad[1] + kx * p.dilation[1];
          if (iy < 0 || iy >= p.h || ix < 0 || ix >= p.w) continue;
          sum += static_cast<long double>(dy[at(((n * O + oc) * oh + oy) * ow + ox)]) *
                 x[at(((n * I + ic) * p.h + iy) * p.w + ix)];
        }
    gw[at(k)] = static_cast<T>(sum);
  });
  return gw;
}

/// The OIHW-blocks weight in HWIO-blocks order.
template <class T>
std::vector<T> blocks_to_hwio(const ragged_problem& p, const std::vector<T>& w) {
  std::vector<T> out(w.size());
  index_t base = 0;
  for (std::size_t g = 0; g + 1 < p.groups.in_offsets.size(); ++g) {
    const index_t ig = p.groups.in_offsets[g + 1] - p.groups.in_offsets[g];
    const index_t og = p.groups.out_offsets[g + 1] - p.groups.out_offsets[g];
    for (index_t o = 0; o < og; ++o)
      for (index_t i = 0; i < ig; ++i)
        for (index_t t = 0; t < p.kh * p.kw; ++t)
          out[at(base + (t * ig + i) * og + o)] = w[at(base + (o * ig + i) * p.kh * p.kw + t)];
    base += ig * og * p.kh * p.kw;
  }
  return out;
}

std::vector<index_t> random_permutation(cvk::rng& gen, index_t count) {
  std::vector<index_t> p(at(count));
  std::iota(p.begin(), p.end(), index_t{0});
  for (std::size_t i = p.size(); i > 1; --i) {
    std::swap(p[i - 1], p[static_cast<std::size_t>(gen.below(i))]);
  }
  return p;
}

/// Random groups: sizes 0–5 (some groups without inputs or outputs), optional permutations.
ragged_problem random_problem(cvk::rng& gen, bool permute) {
  ragged_problem p;
  const auto pick = [&](index_t lo, index_t hi) {
    return lo + static_cast<index_t>(gen.below(static_cast<std::uint64_t>(hi - lo + 1)));
  };
  const index_t G = pick(1, 5);
  p.groups.in_offsets = {0};
  p.groups.out_offsets = {0};
  for (index_t g = 0; g < G; ++g) {
    const index_t ig = gen.below(6) == 0 ? 0 : pick(1, 5);
    const index_t og = gen.below(6) == 0 ? 0 : pick(1, 5);
    p.groups.in_offsets.push_back(p.groups.in_offsets.back() + ig);
    p.groups.out_offsets.push_back(p.groups.out_offsets.back() + og);
  }
  if (permute) {
    if (gen.below(3) != 0) {
      p.groups.in_permutation = random_permutation(gen, p.in_channels());
    }
    if (gen.below(3) != 0) {
      p.groups.out_permutation = random_permutation(gen, p.out_channels());
    }
  }
  p.n = pick(1, 2);
  p.kh = pick(1, 3);
  p.kw = pick(1, 3);
  p.stride = {pick(1, 2), pick(1, 2)};
  p.dilation = {pick(1, 2), pick(1, 2)};
  p.pad = {pick(0, 2), pick(0, 2), pick(0, 2), pick(0, 2)};
  p.h = std::max<index_t>(pick(1, 7), p.dilation[0] * (p.kh - 1) + 1 - p.pad[0] - p.pad[2]);
  p.w = std::max<index_t>(pick(1, 7), p.dilation[1] * (p.kw - 1) + 1 - p.pad[1] - p.pad[3]);
  return p;
}

template <class T>
void require_close(const std::vector<T>& got, const std::vector<T>& want, const std::string& what) {
  REQUIRE(got.size() == want.size());
  const double tol = std::is_same_v<T, float> ? 2e-5 : 1e-12;
  for (std::size_t i = 0; i < got.size(); ++i) {
    INFO(what << " element " << i << ": got " << got[i] << ", want " << want[i]);
    REQUIRE(std::fabs(static_cast<double>(got[i]) - static_cast<double>(want[i])) <=
            tol * (1 + std::fabs(static_cast<double>(want[i]))));
  }
}

template <class T>
cvk::tensor<T, 1> as_tensor(const std::vector<T>& v) {
  cvk::tensor<T, 1> t(static_cast<index_t>(v.size()));
  std::copy(v.begin(), v.end(), t.data());
  return t;
}

template <class T>
void random_sweep(std::uint64_t seed) {
  cvk::rng gen(seed);
  const int count = cvk_test::trials(64);
  for (int trial = 0; trial < count; ++trial) {
    const ragged_problem p = random_problem(gen, trial % 4 != 0);
    const cvk::layout l = cvk_test::both_layouts[at(trial % 2)];
    const cvk::weight_layout wl = cvk_test::both_weight_layouts[at((trial / 2) % 2)];
    const storage s = cvk_test::all_storages[at((trial / 4) % 4)];
    INFO("trial " << trial << ": " << p.describe() << ", " << cvk_test::to_string(s)
                  << (l == cvk::layout::nhwc ? ", NHWC" : ", NCHW")
                  << (wl == cvk::weight_layout::hwio ? ", HWIO" : ", OIHW"));
    const auto x = random_reals<T>(gen, cvk_test::product(p.input_nchw()));
    const auto w = random_reals<T>(gen, at(p.weight_size()));
    const auto bias =
        trial % 3 == 0 ? std::vector<T>{} : random_reals<T>(gen, at(p.out_channels()));
    const auto dy = random_reals<T>(gen, cvk_test::product(p.output_nchw()));
    const auto xs = store(x, p.input_nchw(), l, s);
    const auto dys = store(dy, p.output_nchw(), l, s);
    const auto wt = as_tensor(wl == cvk::weight_layout::oihw ? w : blocks_to_hwio(p, w));
    const auto params = p.params(l, wl);
    const std::array<index_t, 2> kernel{p.kh, p.kw};

    // Forward into a strided output of the same storage.
    auto ys = store(std::vector<T>(cvk_test::product(p.output_nchw())), p.output_nchw(), l, s);
    if (bias.empty()) {
      cvk::ragged_conv2d(xs.view, p.groups, wt, kernel, cvk::no_bias, params, ys.view);
    } else {
      cvk::ragged_conv2d(xs.view, p.groups, wt, kernel, as_tensor(bias), params, ys.view);
    }
    const auto want = reference_forward(p, x, w, bias);
    require_close(to_nchw(ys.view, l), want, "forward");

    // The dense conv of ragged_weight_to_dense; the blocks read back by ragged_weight_from_dense.
    const auto dense = cvk::ragged_weight_to_dense(wt, p.groups, kernel, params);
    const auto back = cvk::ragged_weight_from_dense(dense, p.groups, params);
    REQUIRE(std::equal(back.data(), back.data() + back.size(), wt.data()));
    if (p.in_channels() > 0 && p.out_channels() > 0) {
      const auto yd = cvk::conv2d(xs.view, dense, params);
      require_close(to_nchw(yd.view(), l), reference_forward(p, x, w, std::vector<T>{}),
                    "dense conv2d of ragged_weight_to_dense");
    }

    // Gradients.
    const auto gx = cvk::ragged_conv2d_backward_input(
        dys.view, p.groups, wt, kernel, cvk::detail::from_nchw(p.input_nchw(), l), params);
    require_close(to_nchw(gx.view(), l), reference_backward_input(p, dy, w), "grad_input");
    const auto gw = cvk::ragged_conv2d_backward_weight(dys.view, xs.view, p.groups, kernel, params);
    const auto gw_want = reference_backward_weight(p, dy, x);
    require_close(std::vector<T>(gw.data(), gw.data() + gw.size()),
                  wl == cvk::weight_layout::oihw ? gw_want : blocks_to_hwio(p, gw_want),
                  "grad_weight");
  }
}

}  // namespace

TEST_CASE("ragged_conv2d: forward and gradients equal the plain reference (random groups)",
          "[conv][ragged]") {
  random_sweep<float>(11);
  random_sweep<double>(12);
}

TEST_CASE("ragged_conv2d: uniform groups are conv2d with groups, bit for bit", "[conv][ragged]") {
  cvk::rng gen(21);
  for (const index_t per_in : {1, 2, 4, 8, 16}) {
    for (const index_t per_out : {1, 2, 16}) {
      const index_t G = 4, I = G * per_in, O = G * per_out;
      ragged_problem p;
      p.n = 2;
      p.h = 6;
      p.w = 7;
      p.kh = 3;
      p.kw = 3;
      p.pad = {1, 1, 1, 1};
      for (index_t g = 0; g <= G; ++g) {
        p.groups.in_offsets.push_back(g * per_in);
        p.groups.out_offsets.push_back(g * per_out);
      }
      const auto x = random_reals<float>(gen, cvk_test::product(p.input_nchw()));
      const auto w = random_reals<float>(gen, at(p.weight_size()));
      const auto b = random_reals<float>(gen, at(O));
      for (const cvk::layout l : cvk_test::both_layouts) {
        INFO("I/g " << per_in << " O/g " << per_out
                    << (l == cvk::layout::nhwc ? " NHWC" : " NCHW"));
        const auto xs = store(x, p.input_nchw(), l, storage::contiguous);
        auto params = p.params(l);
        params.act = cvk::activation::relu;
        const auto y =
            cvk::ragged_conv2d(xs.view, p.groups, as_tensor(w), {3, 3}, as_tensor(b), params);
        auto grouped = params;
        grouped.groups = G;
        const auto want = cvk::conv2d(
            xs.view, v4(w.data(), std::array<index_t, 4>{O, per_in, 3, 3}), as_tensor(b), grouped);
        REQUIRE(std::equal(y.data(), y.data() + y.size(), want.data()));
        const cvk::ragged_conv2d_plan<float> plan(p.groups, as_tensor(w), {3, 3}, as_tensor(b),
                                                  params);
        CHECK(plan.segment_count() == 1);
        (void)I;
      }
    }
  }
}

TEST_CASE("ragged_conv2d: equals per-group dense convolutions concatenated", "[conv][ragged]") {
  cvk::rng gen(31);
  ragged_problem p;
  p.n = 1;
  p.h = 9;
  p.w = 8;
  p.kh = 3;
  p.kw = 3;
  p.stride = {2, 1};
  p.pad = {1, 1, 1, 1};
  p.groups.in_offsets = {0, 1, 6, 6, 19, 20};   // sizes 1, 5, 0, 13, 1
  p.groups.out_offsets = {0, 3, 3, 7, 24, 25};  // sizes 3, 0, 4, 17, 1
  const auto x = random_reals<double>(gen, cvk_test::product(p.input_nchw()));
  const auto w = random_reals<double>(gen, at(p.weight_size()));
  const auto params = p.params();
  const auto y =
      cvk::ragged_conv2d(store(x, p.input_nchw(), cvk::layout::nchw, storage::contiguous).view,
                         p.groups, as_tensor(w), {3, 3}, params);
  index_t wbase = 0;
  for (std::size_t g = 0; g + 1 < p.groups.in_offsets.size(); ++g) {
    const index_t i0 = p.groups.in_offsets[g], ig = p.groups.in_offsets[g + 1] - i0;
    const index_t o0 = p.groups.out_offsets[g], og = p.groups.out_offsets[g + 1] - o0;
    INFO("group " << g);
    if (og == 0) continue;
    if (ig == 0) {  // bias only (no bias here): zeros
      for (index_t o = 0; o < og; ++o)
        for (index_t k = 0; k < p.out_h() * p.out_w(); ++k)
          REQUIRE(y.data()[at((o0 + o) * p.out_h() * p.out_w() + k)] == 0.0);
      continue;
    }
    std::vector<double> xg(x.begin() + i0 * p.h * p.w, x.begin() + (i0 + ig) * p.h * p.w);
    const auto yg = cvk::conv2d(v4(xg.data(), std::array<index_t, 4>{1, ig, p.h, p.w}),
                                v4(w.data() + wbase, std::array<index_t, 4>{og, ig, 3, 3}), params);
    wbase += og * ig * 9;
    // Each group ran alone as its own segment: the same conv2d, the same bits.
    REQUIRE(std::equal(yg.data(), yg.data() + yg.size(), y.data() + o0 * p.out_h() * p.out_w()));
  }
}

TEST_CASE("ragged_conv2d: gradients equal central finite differences in double", "[conv][ragged]") {
  cvk::rng gen(41);
  ragged_problem p;
  p.n = 1;
  p.h = 4;
  p.w = 5;
  p.kh = 2;
  p.kw = 3;
  p.pad = {1, 0, 0, 1};
  p.groups.in_offsets = {0, 2, 3, 3};
  p.groups.out_offsets = {0, 1, 4, 5};
  p.groups.in_permutation = {2, 0, 1};
  p.groups.out_permutation = {3, 1, 4, 0, 2};
  auto x = random_reals<double>(gen, cvk_test::product(p.input_nchw()));
  auto w = random_reals<double>(gen, at(p.weight_size()));
  const auto dy = random_reals<double>(gen, cvk_test::product(p.output_nchw()));
  const std::array<index_t, 2> kernel{p.kh, p.kw};
  const auto loss = [&] {
    const auto y = cvk::ragged_conv2d(v4(x.data(), p.input_nchw()), p.groups, as_tensor(w), kernel,
                                      p.params());
    double s = 0;
    for (std::size_t i = 0; i < dy.size(); ++i) s += dy[i] * y.data()[i];
    return s;
  };
  const auto gx = cvk::ragged_conv2d_backward_input(
      v4(dy.data(), p.output_nchw()), p.groups, as_tensor(w), kernel, p.input_nchw(), p.params());
  const auto gw = cvk::ragged_conv2d_backward_weight(
      v4(dy.data(), p.output_nchw()), v4(x.data(), p.input_nchw()), p.groups, kernel, p.params());
  const double h = 1e-6;
  const auto check = [&](std::vector<double>& v, const double* grad, const char* what) {
    for (std::size_t i = 0; i < v.size(); ++i) {
      const double keep = v[i];
      v[i] = keep + h;
      const double up = loss();
      v[i] = keep - h;
      const double down = loss();
      v[i] = keep;
      INFO(what << " " << i);
      REQUIRE(grad[i] == Approx((up - down) / (2 * h)).margin(1e-8));
    }
  };
  check(x, gx.data(), "input");
  check(w, gw.data(), "weight");
}

TEST_CASE("ragged_conv2d: residual (in place too), activations, the plan, threads",
          "[conv][ragged]") {
  cvk::rng gen(51);
  for (const bool permute_out : {false, true}) {
    ragged_problem p;
    p.n = 2;
    p.h = 11;
    p.w = 13;
    p.kh = 3;
    p.kw = 3;
    p.pad = {1, 1, 1, 1};
    p.groups.in_offsets = {0, 5, 5, 21, 24};
    p.groups.out_offsets = {0, 8, 10, 26, 26};
    if (permute_out) p.groups.out_permutation = random_permutation(gen, p.out_channels());
    p.groups.in_permutation = random_permutation(gen, p.in_channels());
    const auto x = random_reals<float>(gen, cvk_test::product(p.input_nchw()));
    const auto w = random_reals<float>(gen, at(p.weight_size()));
    const auto b = random_reals<float>(gen, at(p.out_channels()));
    const auto res = random_reals<float>(gen, cvk_test::product(p.output_nchw()));
    for (const cvk::layout l : cvk_test::both_layouts) {
      INFO((permute_out ? "Q given" : "no Q") << (l == cvk::layout::nhwc ? ", NHWC" : ", NCHW"));
      const auto xs = store(x, p.input_nchw(), l, storage::contiguous);
      const auto rs = store(res, p.output_nchw(), l, storage::contiguous);
      auto params = p.params(l, cvk::weight_layout::oihw, 1);
      params.act = cvk::activation::clamp;
      params.clamp_min = -0.5;
      params.clamp_max = 0.75;
      const cvk::ragged_conv2d_plan<float> plan(p.groups, as_tensor(w), {3, 3}, as_tensor(b),
                                                params);
      CHECK(plan.segment_count() == 3);
      CHECK(plan.memory_bytes() >= (w.size() + b.size()) * sizeof(float));
      const auto y = plan.with_residual(xs.view, rs.view);
      auto want = reference_forward(p, x, w, b);
      for (std::size_t i = 0; i < want.size(); ++i) {
        want[i] =
            std::clamp(static_cast<float>(static_cast<double>(want[i]) + res[i]), -0.5f, 0.75f);
      }
      const auto got = to_nchw(y.view(), l);
      for (std::size_t i = 0; i < want.size(); ++i) {
        REQUIRE(got[i] == Approx(want[i]).margin(1e-5));
      }
      // In place: out is the residual.
      auto in_place = store(res, p.output_nchw(), l, storage::contiguous);
      plan(xs.view, in_place.view, in_place.view);
      REQUIRE(to_nchw(in_place.view, l) == got);
      // Threads: bit-identical, and the one-shot form equals the plan.
      for (const int threads : {2, 3}) {
        auto tp = params;
        tp.threads = threads;
        const auto yt =
            cvk::ragged_conv2d_plan<float>(p.groups, as_tensor(w), {3, 3}, as_tensor(b), tp)
                .with_residual(xs.view, rs.view);
        REQUIRE(std::equal(yt.data(), yt.data() + yt.size(), y.data()));
        const auto dys = store(res, p.output_nchw(), l, storage::contiguous);
        auto bp = p.params(l, cvk::weight_layout::oihw, 1);
        const auto g1 = cvk::ragged_conv2d_backward_weight(dys.view, xs.view, p.groups, {3, 3}, bp);
        const auto i1 =
            cvk::ragged_conv2d_backward_input(dys.view, p.groups, as_tensor(w), {3, 3},
                                              cvk::detail::from_nchw(p.input_nchw(), l), bp);
        bp.threads = threads;
        const auto gt = cvk::ragged_conv2d_backward_weight(dys.view, xs.view, p.groups, {3, 3}, bp);
        const auto it =
            cvk::ragged_conv2d_backward_input(dys.view, p.groups, as_tensor(w), {3, 3},
                                              cvk::detail::from_nchw(p.input_nchw(), l), bp);
        REQUIRE(std::equal(gt.data(), gt.data() + gt.size(), g1.data()));
        REQUIRE(std::equal(it.data(), it.data() + it.size(), i1.data()));
      }
    }
  }
}

TEST_CASE("ragged_conv2d: errors name the argument and the shapes", "[conv][ragged]") {
  using Catch::Matchers::Contains;
  cvk::ragged_groups g{{0, 2, 5}, {0, 3, 4}, {}, {}};
  const std::vector<float> w(2 * 3 * 9 + 3 * 1 * 9, 1.0f);
  const cvk::tensor<float, 4> x(std::array<index_t, 4>{1, 5, 6, 6});
  const std::array<index_t, 2> k{3, 3};
  CHECK(cvk::ragged_weight_size(g, k) == static_cast<index_t>(w.size()));
  const auto bad = [&](cvk::ragged_groups b) { return cvk::ragged_conv2d(x, b, w, k); };
  CHECK_CVK_ERROR(bad({{0, 2, 5}, {0, 3}, {}, {}}), cvk::invalid_argument,
                  "groups.in_offsets and groups.out_offsets must both hold G + 1");
  CHECK_CVK_ERROR(bad({{0}, {0}, {}, {}}), cvk::invalid_argument, "got 1 and 1");
  CHECK_CVK_ERROR(bad({{1, 2, 5}, {0, 3, 4}, {}, {}}), cvk::invalid_argument,
                  "groups.in_offsets must start at 0 and never decrease, got [1, 2, 5]");
  CHECK_CVK_ERROR(bad({{0, 2, 5}, {0, 3, 2}, {}, {}}), cvk::invalid_argument,
                  "groups.out_offsets must start at 0");
  CHECK_CVK_ERROR(bad({{0, 2, 5}, {0, 3, 4}, {0, 1, 2}, {}}), cvk::invalid_argument,
                  "groups.in_permutation must be empty or a permutation of 0 … 4");
  CHECK_CVK_ERROR(bad({{0, 2, 5}, {0, 3, 4}, {0, 1, 2, 3, 5}, {}}), cvk::invalid_argument,
                  "value 5 at position 4 is out of range");
  CHECK_CVK_ERROR(bad({{0, 2, 5}, {0, 3, 4}, {}, {0, 1, 1, 2}}), cvk::invalid_argument,
                  "value 1 appears twice");
  CHECK_CVK_ERROR(cvk::ragged_conv2d(x, g, w, {0, 3}), cvk::invalid_argument,
                  "kernel must be at least 1×1, got 0×3");
  CHECK_CVK_ERROR(cvk::ragged_conv2d(x, g, std::vector<float>(5), k), cvk::shape_error,
                  "weight must be 81 values");
  CHECK_CVK_ERROR(
      cvk::ragged_conv2d(cvk::tensor<float, 4>(std::array<index_t, 4>{1, 4, 6, 6}), g, w, k),
      cvk::shape_error, "input must have 5 channels");
  CHECK_CVK_ERROR(cvk::ragged_conv2d(x, g, w, k, std::vector<float>(3), cvk::conv2d_params{}),
                  cvk::shape_error, "bias must have 4 values");
  CHECK_CVK_ERROR(cvk::ragged_conv2d(x, g, w, k, cvk::conv2d_params{.groups = 2}),
                  cvk::invalid_argument, "params.groups must be 1");
  CHECK_CVK_ERROR(cvk::ragged_conv2d(x, g, std::vector<float>(2 * 3 * 21 + 3 * 21), {7, 3}),
                  cvk::shape_error, "larger than the padded input");
  cvk::tensor<float, 4> wrong_out(std::array<index_t, 4>{1, 4, 4, 3});
  CHECK_CVK_ERROR(cvk::ragged_conv2d(x, g, w, k, cvk::no_bias, {}, wrong_out), cvk::shape_error,
                  "out must be N×C×H×W = 1×4×4×4");
  const cvk::tensor<float, 4> dy(std::array<index_t, 4>{1, 4, 5, 4});
  CHECK_CVK_ERROR(cvk::ragged_conv2d_backward_input(dy, g, w, k, {1, 5, 6, 6}), cvk::shape_error,
                  "grad_output must be N×C×H×W = 1×4×4×4");
  CHECK_CVK_ERROR(cvk::ragged_conv2d_backward_weight(dy, x, g, k), cvk::shape_error,
                  "grad_output must be N×C×H×W = 1×4×4×4");
  cvk::conv2d_params relu;
  relu.act = cvk::activation::relu;
  CHECK_CVK_ERROR(cvk::ragged_conv2d_backward_weight(
                      cvk::tensor<float, 4>(std::array<index_t, 4>{1, 4, 4, 4}), x, g, k, relu),
                  cvk::invalid_argument, "params.act must be activation::none");
  CHECK_CVK_ERROR(
      cvk::ragged_weight_from_dense(cvk::tensor<float, 4>(std::array<index_t, 4>{4, 4, 3, 3}), g),
      cvk::shape_error, "dense must be 4×5×3×3");
  cvk::ragged_groups huge{{0, index_t{1} << 40}, {0, index_t{1} << 40}, {}, {}};
  CHECK_THROWS_AS(cvk::ragged_weight_size(huge, k), cvk::out_of_range);
}
