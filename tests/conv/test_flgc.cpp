// cvk — computer-vision kernels, header-only C++20.
// Tests of cvk/conv/flgc.hpp: the assignments (argmax, lowest index on a tie, non-finite logits)
// and the mask; the training forward and every gradient against plain reference loops (the logit
// gradients against an explicit computation of the chain dM → dT̂, dŜ → STE → softmax Jacobian)
// on random shapes in both layouts, both weight layouts and strided storage; grad_input,
// grad_weight and grad_bias against central finite differences in double; PyTorch 1.13 fixtures
// (tests/gen_flgc_fixtures.py); bit-identical results for 1/2/3 threads; flgc_compile's ragged
// conv against the masked dense conv (empty groups, size-1 groups); the folding helpers on layer
// chains; every error.
// SPDX-License-Identifier: MIT
#include <cvk/conv.hpp>
#include <cvk/core/rng.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "support/conv_reference.hpp"
#include "support/fixtures.hpp"

namespace {

using cvk::index_t;
using cvk_test::conv_problem;
using cvk_test::draw;
using cvk_test::random_reals;

template <class T>
using view4 = cvk::strided_view<const T, 4>;
template <class T>
using view2 = cvk::strided_view<const T, 2>;
template <class T>
using view1 = cvk::strided_view<const T, 1>;

/// One FLGC layer's data: NCHW input, OIHW weight, O bias values, I×G and O×G logits, NCHW dy.
template <class T>
struct flgc_data {
  conv_problem p;
  index_t groups = 1;
  std::vector<T> x, w, b, in_logits, out_logits, dy;

  [[nodiscard]] view4<T> xv() const { return {x.data(), p.input_nchw()}; }
  [[nodiscard]] view4<T> wv() const { return {w.data(), p.weight_oihw()}; }
  [[nodiscard]] view1<T> bv() const { return {b.data(), {p.o}}; }
  [[nodiscard]] view2<T> inv() const { return {in_logits.data(), {p.c, groups}}; }
  [[nodiscard]] view2<T> outv() const { return {out_logits.data(), {p.o, groups}}; }
  [[nodiscard]] view4<T> dyv() const { return {dy.data(), p.output_nchw()}; }
};

/// rows×G logits whose row maximum (a group from `used`) leads the rest by 0.5 to 1.5.
template <class T>
std::vector<T> clear_logits(cvk::rng& gen, index_t rows, index_t groups,
                            const std::vector<index_t>& used) {
  std::vector<T> v = random_reals<T>(gen, static_cast<std::size_t>(rows * groups));
  for (index_t r = 0; r < rows; ++r) {
    const index_t chosen = used[gen.below(used.size())];
    T top = v[static_cast<std::size_t>(r * groups)];
    for (index_t j = 1; j < groups; ++j)
      top = std::max(top, v[static_cast<std::size_t>(r * groups + j)]);
    v[static_cast<std::size_t>(r * groups + chosen)] = top + gen.uniform<T>(T(0.5), T(1.5));
  }
  return v;
}

/// The groups a random layer assigns: all of them, or a random subset (some groups empty).
std::vector<index_t> used_groups(cvk::rng& gen, index_t groups) {
  std::vector<index_t> used;
  for (index_t g = 0; g < groups; ++g) {
    if (gen.below(3) != 0) used.push_back(g);
  }
  if (used.empty()) used.push_back(draw(gen, 0, groups - 1));
  if (gen.below(2) == 0) {
    used.clear();
    for (index_t g = 0; g < groups; ++g) used.push_back(g);
  }
  return used;
}

/// A random dense conv problem with a non-empty output.
conv_problem random_problem(cvk::rng& gen, index_t max_channels = 7) {
  for (;;) {
    conv_problem p;
    p.n = draw(gen, 1, 2);
    p.c = draw(gen, 1, max_channels);
    p.o = draw(gen, 1, max_channels);
    p.h = draw(gen, 1, 7);
    p.w = draw(gen, 1, 7);
    p.kh = draw(gen, 1, 3);
    p.kw = draw(gen, 1, 3);
    p.stride = {draw(gen, 1, 2), draw(gen, 1, 2)};
    p.dilation = {draw(gen, 1, 2), draw(gen, 1, 2)};
    p.pad = {draw(gen, 0, 2), draw(gen, 0, 2), draw(gen, 0, 2), draw(gen, 0, 2)};
    if (p.h + p.pad[0] + p.pad[2] >= p.dilation[0] * (p.kh - 1) + 1 &&
        p.w + p.pad[1] + p.pad[3] >= p.dilation[1] * (p.kw - 1) + 1) {
      return p;
    }
  }
}

template <class T>
flgc_data<T> random_layer(cvk::rng& gen, const conv_problem& p, index_t groups) {
  flgc_data<T> d;
  d.p = p;
  d.groups = groups;
  d.x = random_reals<T>(gen, cvk_test::product(p.input_nchw()));
  d.w = random_reals<T>(gen, cvk_test::product(p.weight_oihw()));
  d.b = random_reals<T>(gen, static_cast<std::size_t>(p.o));
  d.in_logits = clear_logits<T>(gen, p.c, groups, used_groups(gen, groups));
  d.out_logits = clear_logits<T>(gen, p.o, groups, used_groups(gen, groups));
  d.dy = random_reals<T>(gen, cvk_test::product(p.output_nchw()));
  return d;
}

/// Row argmax, lowest index on a tie (the reference binariser).
template <class T>
std::vector<index_t> argmax_rows(const std::vector<T>& l, index_t rows, index_t cols) {
  std::vector<index_t> a(static_cast<std::size_t>(rows));
  for (index_t r = 0; r < rows; ++r) {
    const auto row = l.begin() + static_cast<std::ptrdiff_t>(r * cols);
    a[static_cast<std::size_t>(r)] =
        static_cast<index_t>(std::max_element(row, row + static_cast<std::ptrdiff_t>(cols)) - row);
  }
  return a;
}

/// Everything the reference computes for one layer.
template <class T>
struct flgc_expected {
  std::vector<T> masked_w, y, gx, gw, gb, g_in, g_out;
};

/// The plain reference: masked weight, forward, the conv gradients by the conv reference loops,
/// and the logit gradients by the chain written out with dense matrices in long double —
/// dM = Σ_taps dW'·W, dT̂ = dM·Ŝ, dŜ = dMᵀ·T̂, the STE, then the full softmax Jacobian
/// J = diag(p) − p·pᵀ applied to the estimator's gradient.
template <class T>
flgc_expected<T> reference_flgc(const flgc_data<T>& d, cvk::ste estimator, bool bias = true) {
  const conv_problem& p = d.p;
  const index_t outs = p.o, ins = p.c, taps = p.kh * p.kw, G = d.groups;
  const auto in_group = argmax_rows(d.in_logits, ins, G);
  const auto out_group = argmax_rows(d.out_logits, outs, G);
  const auto at = [](index_t i) { return static_cast<std::size_t>(i); };
  flgc_expected<T> e;
  e.masked_w = d.w;
  for (index_t o = 0; o < outs; ++o)
    for (index_t i = 0; i < ins; ++i)
      if (out_group[at(o)] != in_group[at(i)])
        for (index_t t = 0; t < taps; ++t) e.masked_w[at((o * ins + i) * taps + t)] = T(0);
  e.y = cvk_test::reference_conv2d(p, d.x, e.masked_w, bias ? d.b : std::vector<T>{});
  e.gx = cvk_test::reference_conv2d_backward_input(p, d.dy, e.masked_w);
  const std::vector<T> dw = cvk_test::reference_conv2d_backward_weight(p, d.dy, d.x);
  e.gw = dw;
  for (index_t o = 0; o < outs; ++o)
    for (index_t i = 0; i < ins; ++i)
      if (out_group[at(o)] != in_group[at(i)])
        for (index_t t = 0; t < taps; ++t) e.gw[at((o * ins + i) * taps + t)] = T(0);
  e.gb = cvk_test::reference_conv2d_backward_bias(d.dy, p.output_nchw());
  // dM (O×I), the one-hot matrices, their gradients by matrix products.
  std::vector<long double> dm(at(outs * ins), 0.0L), s(at(ins * G), 0.0L), tm(at(outs * G), 0.0L);
  for (index_t o = 0; o < outs; ++o)
    for (index_t i = 0; i < ins; ++i)
      for (index_t t = 0; t < taps; ++t) {
        const std::size_t k = at((o * ins + i) * taps + t);
        dm[at(o * ins + i)] += static_cast<long double>(dw[k]) * static_cast<long double>(d.w[k]);
      }
  for (index_t i = 0; i < ins; ++i) s[at(i * G + in_group[at(i)])] = 1.0L;
  for (index_t o = 0; o < outs; ++o) tm[at(o * G + out_group[at(o)])] = 1.0L;
  std::vector<long double> dt(at(outs * G), 0.0L), ds(at(ins * G), 0.0L);
  for (index_t o = 0; o < outs; ++o)
    for (index_t g = 0; g < G; ++g)
      for (index_t i = 0; i < ins; ++i) dt[at(o * G + g)] += dm[at(o * ins + i)] * s[at(i * G + g)];
  for (index_t i = 0; i < ins; ++i)
    for (index_t g = 0; g < G; ++g)
      for (index_t o = 0; o < outs; ++o)
        ds[at(i * G + g)] += dm[at(o * ins + i)] * tm[at(o * G + g)];
  const auto logit_grad = [&](const std::vector<T>& logits, const std::vector<long double>& d_hot,
                              const std::vector<index_t>& group, index_t rows) {
    std::vector<T> out(at(rows * G));
    for (index_t r = 0; r < rows; ++r) {
      long double top = logits[at(r * G)];
      for (index_t j = 1; j < G; ++j) top = std::max<long double>(top, logits[at(r * G + j)]);
      std::vector<long double> pr(at(G)), g(at(G));
      long double sum = 0.0L;
      for (index_t j = 0; j < G; ++j) {
        pr[at(j)] = std::exp(static_cast<long double>(logits[at(r * G + j)]) - top);
        sum += pr[at(j)];
      }
      for (auto& v : pr) v /= sum;
      for (index_t j = 0; j < G; ++j) {
        const bool pass = estimator == cvk::ste::identity || j == group[at(r)];
        g[at(j)] = pass ? d_hot[at(r * G + j)] : 0.0L;
      }
      for (index_t j = 0; j < G; ++j) {
        long double v = 0.0L;
        for (index_t k = 0; k < G; ++k) {
          const long double jac = (j == k ? pr[at(j)] : 0.0L) - pr[at(j)] * pr[at(k)];
          v += jac * g[at(k)];
        }
        out[at(r * G + j)] = static_cast<T>(v);
      }
    }
    return out;
  };
  e.g_out = logit_grad(d.out_logits, dt, out_group, outs);
  e.g_in = logit_grad(d.in_logits, ds, in_group, ins);
  return e;
}

/// Counts the elements of `got` farther than tol·max(1, max|want|) from `want`; reports the first.
template <class T>
void check_close(const std::vector<T>& got, const std::vector<T>& want, double tol,
                 const std::string& what) {
  INFO(what);
  REQUIRE(got.size() == want.size());
  double scale = 1;
  for (const T v : want) scale = std::max(scale, static_cast<double>(std::abs(v)));
  std::size_t bad = 0, first = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    if (!(std::abs(static_cast<double>(got[i]) - static_cast<double>(want[i])) <= tol * scale)) {
      if (bad++ == 0) first = i;
    }
  }
  if (bad > 0) {
    INFO("first mismatch at " << first << ": got " << got[first] << ", want " << want[first] << " ("
                              << bad << " of " << got.size() << " differ, scale " << scale << ")");
    CHECK(bad == 0);
  }
}

template <class T>
double tolerance() {
  return std::is_same_v<T, float> ? 5e-5 : 1e-11;
}

template <class T, std::size_t R>
std::vector<T> values(const cvk::tensor<T, R>& t) {
  return std::vector<T>(t.data(), t.data() + t.size());
}

cvk::conv2d_params layer_params(const conv_problem& p, cvk::layout l = cvk::layout::nchw,
                                cvk::weight_layout wl = cvk::weight_layout::oihw, int threads = 0) {
  cvk::conv2d_params params = cvk_test::conv_params(p, l, wl);
  params.threads = threads;
  return params;
}

/// The tensors of a layer in layout l / weight layout wl (input in storage s).
template <class T>
struct stored_layer {
  cvk_test::stored_tensor<T> x, dy;
  std::vector<T> w;
  view4<T> wv;
};

template <class T>
stored_layer<T> store_layer(const flgc_data<T>& d, cvk::layout l, cvk::weight_layout wl,
                            cvk_test::storage s) {
  stored_layer<T> st;
  st.x = cvk_test::store(d.x, d.p.input_nchw(), l, s);
  st.dy = cvk_test::store(d.dy, d.p.output_nchw(), l, cvk_test::storage::contiguous);
  const auto e = d.p.weight_oihw();
  if (wl == cvk::weight_layout::oihw) {
    st.w = d.w;
    st.wv = view4<T>(st.w.data(), e);
  } else {
    st.w = cvk_test::oihw_to_hwio(d.w, e);
    st.wv = view4<T>(st.w.data(), {e[2], e[3], e[1], e[0]});
  }
  return st;
}

/// OIHW-ordered values of a weight tensor in layout wl.
template <class T>
std::vector<T> weight_oihw_values(const cvk::tensor<T, 4>& w, cvk::weight_layout wl) {
  if (wl == cvk::weight_layout::oihw) return values(w);
  const auto v = w.view();
  return cvk_test::flatten(
      cvk::strided_view<const T, 4>(v.data(), {v.extent(3), v.extent(2), v.extent(0), v.extent(1)},
                                    {v.stride(3), v.stride(2), v.stride(0), v.stride(1)}));
}

template <class T>
void check_layer(cvk::rng& gen, int trial) {
  const conv_problem p = random_problem(gen);
  const index_t groups = draw(gen, 1, 5);
  const flgc_data<T> d = random_layer<T>(gen, p, groups);
  const auto l = cvk_test::both_layouts[gen.below(2)];
  const auto wl = cvk_test::both_weight_layouts[gen.below(2)];
  const auto s = cvk_test::all_storages[gen.below(cvk_test::all_storages.size())];
  const auto estimator = gen.below(2) == 0 ? cvk::ste::masked : cvk::ste::identity;
  INFO("trial " << trial << ": " << p.describe() << " G=" << groups << " layout "
                << (l == cvk::layout::nchw ? "nchw" : "nhwc") << ", weight "
                << (wl == cvk::weight_layout::oihw ? "oihw" : "hwio") << ", input "
                << cvk_test::to_string(s) << ", ste "
                << (estimator == cvk::ste::masked ? "masked" : "identity"));
  const flgc_expected<T> want = reference_flgc(d, estimator);
  const stored_layer<T> st = store_layer(d, l, wl, s);
  const auto params = layer_params(p, l, wl);
  const view4<T> x = st.x.view, dy = st.dy.view;
  const double tol = tolerance<T>();

  const auto y = cvk::flgc_conv2d(x, st.wv, d.bv(), d.inv(), d.outv(), params);
  check_close(cvk_test::to_nchw(y.view(), l), want.y, tol, "output");

  cvk::flgc_backward_options options;
  options.estimator = estimator;
  const auto g = cvk::flgc_conv2d_backward(dy, x, st.wv, d.inv(), d.outv(), params, options);
  check_close(cvk_test::to_nchw(g.input.view(), l), want.gx, tol, "grad_input");
  check_close(weight_oihw_values(g.weight, wl), want.gw, tol, "grad_weight");
  check_close(values(g.bias), want.gb, tol, "grad_bias");
  check_close(values(g.in_logits), want.g_in, tol, "grad_in_logits");
  check_close(values(g.out_logits), want.g_out, tol, "grad_out_logits");

  // The write-into forms, into strided targets, and one gradient at a time.
  auto out = cvk_test::store(std::vector<T>(cvk_test::product(p.output_nchw()), T(7)),
                             p.output_nchw(), l, cvk_test::storage::padded_inner);
  cvk::flgc_conv2d(x, st.wv, d.bv(), d.inv(), d.outv(), params, out.view);
  CHECK(cvk_test::to_nchw(out.view, l) == cvk_test::to_nchw(y.view(), l));
  cvk::tensor<T, 2> gin(p.c, groups + 1);
  cvk::strided_view<T, 2> gin_view(gin.data(), {p.c, groups}, {groups + 1, 1});
  cvk::flgc_gradient_views<T> only;
  only.in_logits = gin_view;
  cvk::flgc_conv2d_backward(dy, x, st.wv, d.inv(), d.outv(), params, only, estimator);
  std::vector<T> gin_values;
  for (index_t r = 0; r < p.c; ++r)
    for (index_t j = 0; j < groups; ++j) gin_values.push_back(gin_view(r, j));
  CHECK(gin_values == values(g.in_logits));
  const auto gw_only = cvk::flgc_conv2d_backward(
      dy, x, st.wv, d.inv(), d.outv(), params,
      {.input = false, .bias = false, .in_logits = false, .out_logits = false});
  CHECK(gw_only.input.empty());
  CHECK(gw_only.bias.empty());
  CHECK(gw_only.in_logits.empty());
  CHECK(gw_only.out_logits.empty());
  CHECK(values(gw_only.weight) == values(g.weight));
}

}  // namespace

TEST_CASE("flgc_assignment and flgc_mask: argmax rows, lowest index on ties, M = T·Sᵀ",
          "[conv][flgc]") {
  // Channel 1 ties groups 0 and 2; filter 0 ties all three; every other row has one maximum.
  const std::vector<double> in{0.5,  0.1, -1.0,  //
                               2.0,  1.0, 2.0,   //
                               -3.0, 4.0, 1.0,   //
                               0.0,  0.0, 0.1};
  const std::vector<double> out{1.0, 1.0, 1.0,  //
                                0.0, 3.0, 1.0};
  const view2<double> iv(in.data(), {4, 3}), ov(out.data(), {2, 3});
  const auto a = cvk::flgc_assignment(iv, ov);
  CHECK(a.groups == 3);
  CHECK(a.input_group == std::vector<index_t>{0, 0, 1, 2});
  CHECK(a.output_group == std::vector<index_t>{0, 1});
  const auto m = cvk::flgc_mask(iv, ov);
  REQUIRE(m.extents() == std::array<index_t, 2>{2, 4});
  // M = T̂·Ŝᵀ by the matrix product of the one-hot matrices.
  for (index_t k = 0; k < 2; ++k)
    for (index_t c = 0; c < 4; ++c) {
      double sum = 0;
      for (index_t g = 0; g < 3; ++g) {
        sum += (a.output_group[static_cast<std::size_t>(k)] == g ? 1.0 : 0.0) *
               (a.input_group[static_cast<std::size_t>(c)] == g ? 1.0 : 0.0);
      }
      CHECK(m(k, c) == sum);
    }
  // The write-into form into a transposed view.
  cvk::tensor<double, 2> mt(4, 2);
  cvk::flgc_mask(iv, ov, cvk::strided_view<double, 2>(mt.data(), {2, 4}, {1, 2}));
  for (index_t k = 0; k < 2; ++k)
    for (index_t c = 0; c < 4; ++c) CHECK(mt(c, k) == m(k, c));

  SECTION("the argmax is the logits', not the rounded softmax's") {
    // exp(0 − 1e-9) rounds to 1 in float: the softmax row is a tie, the logits are not.
    const std::vector<float> l{0.0f, 1e-9f};
    const view2<float> lv(l.data(), {1, 2});
    CHECK(std::exp(l[0] - l[1]) == 1.0f);
    CHECK(cvk::flgc_assignment(lv, lv).input_group == std::vector<index_t>{1});
  }
  SECTION("groups may be empty; no channels or filters at all") {
    const std::vector<double> one{0.0, 0.0, 5.0, 0.0};
    const view2<double> lv(one.data(), {1, 4});
    const view2<double> none(one.data(), {0, 4});
    const auto e = cvk::flgc_assignment(lv, none);
    CHECK(e.groups == 4);
    CHECK(e.input_group == std::vector<index_t>{2});
    CHECK(e.output_group.empty());
    CHECK(cvk::flgc_mask(lv, none).extents() == std::array<index_t, 2>{0, 1});
  }
}

TEMPLATE_TEST_CASE("flgc_conv2d and its backward equal the reference loops on random layers",
                   "[conv][flgc]", float, double) {
  cvk::rng gen(std::is_same_v<TestType, float> ? 1301 : 1302);
  const int count = cvk_test::trials(40);
  for (int trial = 0; trial < count; ++trial) check_layer<TestType>(gen, trial);
}

TEST_CASE("flgc_conv2d_backward: grad_input, grad_weight, grad_bias against finite differences",
          "[conv][flgc]") {
  // L = Σ dy·y is linear in x, W and b: central differences are exact up to rounding. The
  // forward is piecewise constant in the logits: away from ties their derivative is 0 (the
  // straight-through estimator's gradient is not a derivative of the forward).
  cvk::rng gen(1303);
  for (int trial = 0; trial < cvk_test::trials(6); ++trial) {
    conv_problem p = random_problem(gen, 4);
    p.n = 1;
    const flgc_data<double> d = random_layer<double>(gen, p, draw(gen, 1, 3));
    INFO("trial " << trial << ": " << p.describe() << " G=" << d.groups);
    const auto params = layer_params(p);
    const auto loss = [&](const flgc_data<double>& e) {
      const auto y = cvk::flgc_conv2d(e.xv(), e.wv(), e.bv(), e.inv(), e.outv(), params);
      double sum = 0;
      for (std::size_t k = 0; k < d.dy.size(); ++k) sum += d.dy[k] * y.data()[k];
      return sum;
    };
    const auto g = cvk::flgc_conv2d_backward(d.dyv(), d.xv(), d.wv(), d.inv(), d.outv(), params);
    const double h = 1e-3;
    const auto numeric = [&](std::vector<double> flgc_data<double>::*field, std::size_t k) {
      flgc_data<double> e = d;
      (e.*field)[k] += h;
      const double up = loss(e);
      (e.*field)[k] -= 2 * h;
      return (up - loss(e)) / (2 * h);
    };
    for (std::size_t k = 0; k < d.x.size(); ++k) {
      CHECK(g.input.data()[k] == Approx(numeric(&flgc_data<double>::x, k)).margin(1e-9));
    }
    for (std::size_t k = 0; k < d.w.size(); ++k) {
      CHECK(g.weight.data()[k] == Approx(numeric(&flgc_data<double>::w, k)).margin(1e-9));
    }
    for (std::size_t k = 0; k < d.b.size(); ++k) {
      CHECK(g.bias.data()[k] == Approx(numeric(&flgc_data<double>::b, k)).margin(1e-9));
    }
    for (std::size_t k = 0; k < d.in_logits.size(); k += 3) {
      CHECK(numeric(&flgc_data<double>::in_logits, k) == 0.0);
    }
  }
}

TEMPLATE_TEST_CASE("flgc_conv2d: PyTorch 1.13 fixtures, forward and every gradient",
                   "[conv][flgc][fixtures]", float, double) {
  using T = TestType;
  const cvk_test::fixture_file file(cvk_test::test_data_path("flgc_torch.txt"));
  const int cases = std::stoi(file.meta("cases"));
  REQUIRE(cases >= 7);
  const std::string dtype = std::is_same_v<T, float> ? "float32" : "float64";
  for (int k = 0; k < cases; ++k) {
    const std::string prefix = "case" + std::to_string(k) + "/";
    const auto v = file.table(prefix + "params").values<index_t>();
    flgc_data<T> d;
    conv_problem& p = d.p;
    p.n = v.at(0);
    p.c = v.at(1);
    p.h = v.at(2);
    p.w = v.at(3);
    p.o = v.at(4);
    p.kh = v.at(5);
    p.kw = v.at(6);
    d.groups = v.at(7);
    p.stride = {v.at(8), v.at(9)};
    p.dilation = {v.at(10), v.at(11)};
    p.pad = {v.at(12), v.at(13), v.at(14), v.at(15)};
    const bool has_bias = v.at(16) != 0;
    const auto estimator = v.at(17) == 0 ? cvk::ste::masked : cvk::ste::identity;
    INFO("fixture case " << k << ": " << p.describe() << " G=" << d.groups);
    const auto table = [&](const char* name) {
      return file.table(prefix + dtype + "/" + name).values<T>();
    };
    d.x = table("input");
    d.w = table("weight");
    d.b = has_bias ? table("bias") : std::vector<T>(static_cast<std::size_t>(p.o), T(0));
    d.in_logits = table("in_logits");
    d.out_logits = table("out_logits");
    d.dy = table("grad_output");
    const auto params = layer_params(p);
    const double tol = std::is_same_v<T, float> ? 2e-5 : 1e-12;
    const auto y = has_bias
                       ? cvk::flgc_conv2d(d.xv(), d.wv(), d.bv(), d.inv(), d.outv(), params)
                       : cvk::flgc_conv2d(d.xv(), d.wv(), cvk::no_bias, d.inv(), d.outv(), params);
    check_close(values(y), table("output"), tol, "output");
    cvk::flgc_backward_options options;
    options.estimator = estimator;
    options.bias = has_bias;
    const auto g =
        cvk::flgc_conv2d_backward(d.dyv(), d.xv(), d.wv(), d.inv(), d.outv(), params, options);
    check_close(values(g.input), table("grad_input"), tol, "grad_input");
    check_close(values(g.weight), table("grad_weight"), tol, "grad_weight");
    if (has_bias) check_close(values(g.bias), table("grad_bias"), tol, "grad_bias");
    check_close(values(g.in_logits), table("grad_in_logits"), tol, "grad_in_logits");
    check_close(values(g.out_logits), table("grad_out_logits"), tol, "grad_out_logits");
  }
}

TEST_CASE("flgc: results are bit-identical for 1, 2 and 3 threads", "[conv][flgc][threads]") {
  cvk::rng gen(1304);
  conv_problem p;
  p.n = 2;
  p.c = 24;
  p.o = 40;
  p.h = 9;
  p.w = 11;
  p.kh = 3;
  p.kw = 3;
  p.pad = {1, 1, 1, 1};
  const flgc_data<float> d = random_layer<float>(gen, p, 4);
  std::vector<std::vector<float>> first;
  for (const int threads : {1, 2, 3}) {
    INFO("threads " << threads);
    for (const auto l : cvk_test::both_layouts) {
      const auto params = layer_params(p, l, cvk::weight_layout::oihw, threads);
      const auto st = store_layer(d, l, cvk::weight_layout::oihw, cvk_test::storage::contiguous);
      const auto y =
          cvk::flgc_conv2d(view4<float>(st.x.view), st.wv, d.bv(), d.inv(), d.outv(), params);
      const auto g = cvk::flgc_conv2d_backward(view4<float>(st.dy.view), view4<float>(st.x.view),
                                               st.wv, d.inv(), d.outv(), params);
      const auto c = cvk::flgc_compile(st.wv, d.bv(), d.inv(), d.outv(), params);
      const auto r = c.plan()(view4<float>(st.x.view));
      const std::vector<std::vector<float>> now{
          values(y),           values(g.input),      values(g.weight), values(g.bias),
          values(g.in_logits), values(g.out_logits), values(r)};
      if (threads == 1) {
        first.insert(first.end(), now.begin(), now.end());
      } else {
        const std::size_t base = l == cvk::layout::nchw ? 0 : now.size();
        for (std::size_t k = 0; k < now.size(); ++k) CHECK(now[k] == first[base + k]);
      }
    }
  }
}

TEMPLATE_TEST_CASE("flgc_compile: the ragged conv equals the masked dense conv",
                   "[conv][flgc][compile]", float, double) {
  using T = TestType;
  cvk::rng gen(std::is_same_v<T, float> ? 1305 : 1306);
  const int count = cvk_test::trials(30);
  for (int trial = 0; trial < count; ++trial) {
    const conv_problem p = random_problem(gen, 9);
    // Up to 8 groups for at most 9 channels: size-1 groups, groups without channels or filters.
    const index_t groups = draw(gen, 1, 8);
    const flgc_data<T> d = random_layer<T>(gen, p, groups);
    const auto l = cvk_test::both_layouts[gen.below(2)];
    const auto wl = cvk_test::both_weight_layouts[gen.below(2)];
    INFO("trial " << trial << ": " << p.describe() << " G=" << groups);
    const auto params = layer_params(p, l, wl);
    const stored_layer<T> st = store_layer(d, l, wl, cvk_test::storage::contiguous);
    const auto c = cvk::flgc_compile(st.wv, d.bv(), d.inv(), d.outv(), params);
    const auto a = cvk::flgc_assignment(d.inv(), d.outv());
    // The structure: offsets are the running group counts; the permutations are stable sorts.
    const auto check_side = [&](const std::vector<index_t>& offsets,
                                const std::vector<index_t>& perm,
                                const std::vector<index_t>& group) {
      REQUIRE(offsets.size() == static_cast<std::size_t>(groups) + 1);
      CHECK(offsets.front() == 0);
      CHECK(offsets.back() == static_cast<index_t>(group.size()));
      std::vector<index_t> order(group.size());
      std::iota(order.begin(), order.end(), index_t(0));
      std::stable_sort(order.begin(), order.end(), [&](index_t u, index_t v) {
        return group[static_cast<std::size_t>(u)] < group[static_cast<std::size_t>(v)];
      });
      std::vector<index_t> identity(group.size());
      std::iota(identity.begin(), identity.end(), index_t(0));
      CHECK((perm.empty() ? identity : perm) == order);
      if (order == identity) CHECK(perm.empty());
      for (index_t g = 0; g < groups; ++g) {
        for (index_t j = offsets[static_cast<std::size_t>(g)];
             j < offsets[static_cast<std::size_t>(g) + 1]; ++j) {
          CHECK(group[static_cast<std::size_t>(order[static_cast<std::size_t>(j)])] == g);
        }
      }
    };
    check_side(c.groups.in_offsets, c.groups.in_permutation, a.input_group);
    check_side(c.groups.out_offsets, c.groups.out_permutation, a.output_group);
    CHECK(c.kernel == std::array<index_t, 2>{p.kh, p.kw});
    CHECK(values(c.bias) == d.b);
    // Its dense weight is W ⊙ M in the original channel order, exactly.
    const auto dense = cvk::ragged_weight_to_dense(c.weight, c.groups, c.kernel, params);
    CHECK(weight_oihw_values(dense, wl) == reference_flgc(d, cvk::ste::masked).masked_w);
    // The ragged conv equals the masked dense conv.
    const view4<T> x = st.x.view;
    const auto want = cvk::flgc_conv2d(x, st.wv, d.bv(), d.inv(), d.outv(), params);
    const auto got = cvk::ragged_conv2d(x, c.groups, c.weight, c.kernel, c.bias, c.params);
    check_close(values(got), values(want), tolerance<T>(), "ragged vs masked dense");
    CHECK(values(c.plan()(x)) == values(got));
  }
}

TEST_CASE("flgc_compile: small integers, groups without filters, channels or both: exact",
          "[conv][flgc][compile]") {
  using T = double;
  cvk::rng gen(1309);
  {
    // 6 channels, 5 filters, G = 5: channel groups {0, 0, 3, 1, 3, 0}, filter groups
    // {2, 0, 0, 3, 2}: group 1 has a channel and no filter, group 2 filters and no channel
    // (bias only), group 4 nothing, group 3 one of each.
    conv_problem p;
    p.n = 2;
    p.c = 6;
    p.o = 5;
    p.h = 5;
    p.w = 4;
    p.kh = 3;
    p.kw = 2;
    p.pad = {1, 0, 1, 1};
    flgc_data<T> d;
    d.p = p;
    d.groups = 5;
    d.x = cvk_test::small_integers<T>(gen, cvk_test::product(p.input_nchw()), 3);
    d.w = cvk_test::small_integers<T>(gen, cvk_test::product(p.weight_oihw()), 3);
    d.b = cvk_test::small_integers<T>(gen, 5, 3);
    d.dy = cvk_test::small_integers<T>(gen, cvk_test::product(p.output_nchw()), 3);
    const std::vector<index_t> cg{0, 0, 3, 1, 3, 0}, fg{2, 0, 0, 3, 2};
    d.in_logits.assign(30, T(0));
    d.out_logits.assign(25, T(0));
    for (std::size_t i = 0; i < cg.size(); ++i)
      d.in_logits[i * 5 + static_cast<std::size_t>(cg[i])] = 1;
    for (std::size_t o = 0; o < fg.size(); ++o)
      d.out_logits[o * 5 + static_cast<std::size_t>(fg[o])] = 1;
    const auto params = layer_params(p);
    const auto c = cvk::flgc_compile(d.wv(), d.bv(), d.inv(), d.outv(), params);
    CHECK(c.groups.in_offsets == std::vector<index_t>{0, 3, 4, 4, 6, 6});
    CHECK(c.groups.out_offsets == std::vector<index_t>{0, 2, 2, 4, 5, 5});
    CHECK(c.groups.in_permutation == std::vector<index_t>{0, 1, 5, 3, 2, 4});
    CHECK(c.groups.out_permutation == std::vector<index_t>{1, 2, 0, 4, 3});
    const auto want = cvk::flgc_conv2d(d.xv(), d.wv(), d.bv(), d.inv(), d.outv(), params);
    const auto got = cvk::ragged_conv2d(d.xv(), c.groups, c.weight, c.kernel, c.bias, c.params);
    CHECK(values(got) == values(want));
    CHECK(values(got) ==
          cvk_test::reference_conv2d(p, d.x, reference_flgc(d, cvk::ste::masked).masked_w, d.b));
  }
}

TEST_CASE("flgc_compile: sorted assignments give empty permutations, no bias gives zeros",
          "[conv][flgc][compile]") {
  using T = double;
  cvk::rng gen(1310);
  {
    conv_problem p;
    p.c = 4;
    p.o = 4;
    p.h = 3;
    p.w = 3;
    flgc_data<T> d = random_layer<T>(gen, p, 2);
    d.in_logits = {2, 0, 2, 0, 0, 2, 0, 2};
    d.out_logits = {2, 0, 0, 2, 0, 2, 0, 2};
    const auto c = cvk::flgc_compile(d.wv(), cvk::no_bias, d.inv(), d.outv(), layer_params(p));
    CHECK(c.groups.in_permutation.empty());
    CHECK(c.groups.out_permutation.empty());
    CHECK(c.groups.in_offsets == std::vector<index_t>{0, 2, 4});
    CHECK(c.groups.out_offsets == std::vector<index_t>{0, 1, 4});
    CHECK(values(c.bias) == std::vector<T>(4, T(0)));
  }
}

namespace {

/// y[n, c] = scale[c]·x[n, c] + shift[c] on NCHW data (a folded batch-norm).
std::vector<double> affine(const std::vector<double>& x, const std::array<index_t, 4>& e,
                           const cvk::tensor<double, 1>& scale,
                           const cvk::tensor<double, 1>& shift) {
  std::vector<double> y(x.size());
  const std::size_t plane = static_cast<std::size_t>(e[2] * e[3]);
  for (std::size_t k = 0; k < x.size(); ++k) {
    const auto c = static_cast<index_t>((k / plane) % static_cast<std::size_t>(e[1]));
    y[k] = scale(c) * x[k] + shift(c);
  }
  return y;
}

cvk::tensor<double, 1> tensor1(const std::vector<double>& v) {
  cvk::tensor<double, 1> t(std::array<index_t, 1>{static_cast<index_t>(v.size())});
  std::copy(v.begin(), v.end(), t.begin());
  return t;
}

cvk::tensor<double, 4> tensor4(const std::vector<double>& v, const std::array<index_t, 4>& e) {
  cvk::tensor<double, 4> t(e);
  std::copy(v.begin(), v.end(), t.begin());
  return t;
}

/// The NCHW channels of `y` re-ordered: result channel j = y's channel perm[j] (a gather).
cvk::tensor<double, 4> gather_channels(const cvk::tensor<double, 4>& y,
                                       const std::vector<index_t>& perm) {
  cvk::tensor<double, 4> r(y.extents());
  for (index_t n = 0; n < y.extent(0); ++n)
    for (index_t c = 0; c < y.extent(1); ++c)
      for (index_t h = 0; h < y.extent(2); ++h)
        for (index_t w = 0; w < y.extent(3); ++w)
          r(n, c, h, w) = y(n, perm.empty() ? c : perm[static_cast<std::size_t>(c)], h, w);
  return r;
}

}  // namespace

TEST_CASE("flgc folding: conv → scale → FLGC → conv chains give the same output after folding",
          "[conv][flgc][fold]") {
  cvk::rng gen(1307);
  for (int trial = 0; trial < cvk_test::trials(8); ++trial) {
    // x (C0) → conv1 3×3 (C1) → scale, shift → FLGC 3×3 (C2, G groups) → next → output.
    const index_t c0 = draw(gen, 1, 4), c1 = draw(gen, 4, 10), c2 = draw(gen, 4, 10);
    const index_t groups = draw(gen, 2, 4);
    const std::array<index_t, 4> xe{1, c0, 6, 5};
    const std::vector<double> x = random_reals<double>(gen, cvk_test::product(xe));
    const auto w1 =
        tensor4(random_reals<double>(gen, static_cast<std::size_t>(c1 * c0 * 9)), {c1, c0, 3, 3});
    const auto b1 = tensor1(random_reals<double>(gen, static_cast<std::size_t>(c1)));
    const auto scale = tensor1(random_reals<double>(gen, static_cast<std::size_t>(c1)));
    const auto shift = tensor1(random_reals<double>(gen, static_cast<std::size_t>(c1)));
    const auto w2 =
        tensor4(random_reals<double>(gen, static_cast<std::size_t>(c2 * c1 * 9)), {c2, c1, 3, 3});
    const auto b2 = tensor1(random_reals<double>(gen, static_cast<std::size_t>(c2)));
    std::vector<index_t> all(static_cast<std::size_t>(groups));
    std::iota(all.begin(), all.end(), index_t(0));
    // Assignments that are not already sorted by group, so that folding has work to do.
    const auto unsorted_logits = [&](index_t rows) {
      for (;;) {
        auto l = clear_logits<double>(gen, rows, groups, all);
        const auto a = argmax_rows(l, rows, groups);
        if (!std::is_sorted(a.begin(), a.end())) return l;
      }
    };
    const auto in_logits = unsorted_logits(c1);
    const auto out_logits = unsorted_logits(c2);
    const view2<double> inl(in_logits.data(), {c1, groups}), outl(out_logits.data(), {c2, groups});
    const cvk::conv2d_params same{.padding = {1, 1, 1, 1}};
    // The next layer: dense 1×1, or depthwise 3×3 with channel multiplier 2 followed by a dense
    // 1×1 that absorbs the depthwise conv's carried output permutation.
    const bool depthwise = trial % 2 == 1;
    const index_t c3 = depthwise ? 2 * c2 : draw(gen, 1, 5);
    const cvk::conv2d_params next_params =
        depthwise ? cvk::conv2d_params{.padding = {1, 1, 1, 1}, .groups = c2}
                  : cvk::conv2d_params{};
    const auto w3 = tensor4(
        random_reals<double>(gen, static_cast<std::size_t>(c3 * (depthwise ? 9 : c2))),
        depthwise ? std::array<index_t, 4>{c3, 1, 3, 3} : std::array<index_t, 4>{c3, c2, 1, 1});
    const auto b3 = tensor1(random_reals<double>(gen, static_cast<std::size_t>(c3)));
    const index_t c4 = draw(gen, 1, 4);
    const auto w4 =
        tensor4(random_reals<double>(gen, static_cast<std::size_t>(c4 * c3)), {c4, c3, 1, 1});
    const auto b4 = tensor1(random_reals<double>(gen, static_cast<std::size_t>(c4)));
    INFO("trial " << trial << ": C " << c0 << " → " << c1 << " → " << c2 << " → " << c3
                  << (depthwise ? " (depthwise) → " + std::to_string(c4) : std::string()));

    const auto x4 = tensor4(x, xe);
    const auto h1 = cvk::conv2d(x4, w1, b1, same);
    const auto a1 = tensor4(affine(values(h1), h1.extents(), scale, shift), h1.extents());
    const auto h2 = cvk::flgc_conv2d(a1, w2, b2, inl, outl, same);
    const auto h3 = cvk::conv2d(h2, w3, b3, next_params);
    const auto before = depthwise ? cvk::conv2d(h3, w4, b4, cvk::conv2d_params{}) : h3;

    auto c = cvk::flgc_compile(w2, b2, inl, outl, same);
    REQUIRE_FALSE(c.groups.in_permutation.empty());  // the test must move channels
    const auto prev = cvk::flgc_fold_input_permutation(c, w1, b1, same);
    const auto next = cvk::flgc_fold_output_permutation(c, w3, b3, next_params);
    CHECK(c.groups.in_permutation.empty());
    CHECK(c.groups.out_permutation.empty());
    const auto g1 = cvk::conv2d(x4, prev.weight, prev.bias, same);
    const auto f1 =
        tensor4(affine(values(g1), g1.extents(), cvk::permute_channels(scale, prev.channels),
                       cvk::permute_channels(shift, prev.channels)),
                g1.extents());
    const auto g2 = c.plan()(f1);
    const auto g3 = cvk::conv2d(g2, next.weight, next.bias, next_params);
    if (!depthwise) {
      CHECK(next.output_permutation.empty());
      check_close(values(g3), values(before), 1e-12, "chain output after folding");
    } else {
      // The depthwise conv now carries a permutation on its output (a gather of the old one),
      // which the dense 1×1 after it absorbs.
      REQUIRE_FALSE(next.output_permutation.empty());
      check_close(values(g3), values(gather_channels(h3, next.output_permutation)), 1e-12,
                  "carried output permutation");
      const auto last =
          cvk::permute_conv_inputs(w4, b4, cvk::conv2d_params{}, next.output_permutation);
      CHECK(last.output_permutation.empty());
      check_close(values(cvk::conv2d(g3, last.weight, last.bias, cvk::conv2d_params{})),
                  values(before), 1e-12, "chain output after folding");
    }
  }
}

TEST_CASE("flgc folding: permute_conv_outputs / _inputs on grouped convs, permute_channels",
          "[conv][flgc][fold]") {
  cvk::rng gen(1308);
  // A grouped conv: 6 input channels, 8 outputs, 2 groups (3 in, 4 out per group), HWIO.
  const cvk::conv2d_params p{
      .padding = {1, 1, 1, 1}, .groups = 2, .weights = cvk::weight_layout::hwio};
  const auto w = tensor4(random_reals<double>(gen, 8 * 3 * 9), {3, 3, 3, 8});
  const auto b = tensor1(random_reals<double>(gen, 8));
  const auto x = tensor4(random_reals<double>(gen, 2 * 6 * 5 * 4), {2, 6, 5, 4});
  const auto y = cvk::conv2d(x, w, b, p);
  SECTION("outputs re-ordered within their groups") {
    const std::vector<index_t> perm{3, 0, 2, 1, 4, 7, 6, 5};
    const auto r = cvk::permute_conv_outputs(w, b, p, perm);
    CHECK(r.channels == perm);
    CHECK(r.output_permutation.empty());
    CHECK(values(cvk::conv2d(x, r.weight, r.bias, p)) == values(gather_channels(y, perm)));
    using Catch::Matchers::Contains;
    CHECK_THROWS_AS(cvk::permute_conv_outputs(w, b, p, {4, 0, 2, 1, 3, 7, 6, 5}),
                    cvk::invalid_argument);
    CHECK_THROWS_WITH(cvk::permute_conv_outputs(w, b, p, {4, 0, 2, 1, 3, 7, 6, 5}),
                      Contains("permute_conv_outputs") && Contains("params.groups = 2") &&
                          Contains("puts channel 4 (group 1) at position 0 (group 0)"));
  }
  SECTION("inputs re-ordered by whole groups: the filters move along") {
    const std::vector<index_t> perm{5, 3, 4, 1, 0, 2};  // new block 0 = old block 1, shuffled
    const auto r = cvk::permute_conv_inputs(w, b, p, perm);
    CHECK(r.output_permutation == std::vector<index_t>{4, 5, 6, 7, 0, 1, 2, 3});
    const auto xp = gather_channels(x, perm);
    check_close(values(cvk::conv2d(xp, r.weight, r.bias, p)),
                values(gather_channels(y, r.output_permutation)), 1e-13, "grouped inputs");
    const auto within = cvk::permute_conv_inputs(w, b, p, {2, 0, 1, 3, 5, 4});
    CHECK(within.output_permutation.empty());
    CHECK_THROWS_AS(cvk::permute_conv_inputs(w, b, p, {0, 1, 3, 2, 4, 5}), cvk::invalid_argument);
    using Catch::Matchers::Contains;
    CHECK_THROWS_WITH(cvk::permute_conv_inputs(w, b, p, {0, 1, 3, 2, 4, 5}),
                      Contains("permute_conv_inputs") && Contains("must move whole blocks") &&
                          Contains("puts channel 3 (block 1) at position 2 in block 0"));
  }
  SECTION("permute_channels") {
    const std::vector<int> v{10, 11, 12};
    CHECK(values(cvk::permute_channels(v, {2, 0, 1})) == std::vector<int>{12, 10, 11});
    CHECK(values(cvk::permute_channels(v, {})) == v);
  }
}

TEST_CASE("flgc: bad input raises cvk errors naming the function, the argument and the shapes",
          "[conv][flgc][errors]") {
  using Catch::Matchers::Contains;
  // input 1×4×5×5, weight 6×4×3×3, G = 3.
  const std::vector<double> xs(100, 1.0), ws(6 * 4 * 9, 1.0), bs(6, 0.0), dys(6 * 9, 1.0);
  std::vector<double> il(12, 0.0), ol(18, 0.0);
  const view4<double> x(xs.data(), {1, 4, 5, 5}), w(ws.data(), {6, 4, 3, 3});
  const view4<double> dy(dys.data(), {1, 6, 3, 3});
  const view1<double> b(bs.data(), {6});
  const view2<double> in(il.data(), {4, 3}), out(ol.data(), {6, 3});
  const cvk::conv2d_params ok{};
  REQUIRE(cvk::flgc_conv2d(x, w, b, in, out, ok).extents() == std::array<index_t, 4>{1, 6, 3, 3});
  const auto fails = [&](const auto& call, const char* fn, const char* text) {
    INFO(text);
    CHECK_THROWS_WITH(call(), Contains(fn) && Contains(text));
  };
  SECTION("non-finite logits") {
    for (const double bad :
         {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity(),
          -std::numeric_limits<double>::infinity()}) {
      std::vector<double> l = il;
      l[7] = bad;  // row 2, column 1
      const view2<double> lv(l.data(), {4, 3});
      CHECK_THROWS_AS(cvk::flgc_assignment(lv, out), cvk::invalid_argument);
      CHECK_THROWS_AS(cvk::flgc_conv2d(x, w, b, lv, out, ok), cvk::invalid_argument);
      CHECK_THROWS_AS(cvk::flgc_compile(w, b, lv, out, ok), cvk::invalid_argument);
      fails([&] { return cvk::flgc_assignment(lv, out); }, "flgc_assignment",
            "in_logits must be finite, got ");
      fails([&] { return cvk::flgc_conv2d_backward(dy, x, w, lv, out, ok); },
            "flgc_conv2d_backward", "row 2, column 1");
    }
    std::vector<double> l = ol;
    l[4] = std::numeric_limits<double>::quiet_NaN();
    fails(
        [&] {
          return cvk::flgc_mask(in, view2<double>(l.data(), {6, 3}));
        },
        "flgc_mask", "out_logits must be finite, got nan at row 1, column 1 (out_logits 6×3)");
  }
  SECTION("logits of the wrong shape") {
    const view2<double> short_in(il.data(), {3, 3}), wide_out(ol.data(), {3, 6}),
        no_groups(il.data(), {4, 0});
    CHECK_THROWS_AS(cvk::flgc_conv2d(x, w, b, short_in, out, ok), cvk::shape_error);
    fails([&] { return cvk::flgc_conv2d(x, w, b, short_in, out, ok); }, "flgc_conv2d",
          "in_logits must be I×G = 4×G (I = weight's input channels) with G >= 1 groups, got 3×3");
    fails(
        [&] {
          return cvk::flgc_compile(w, b, in, view2<double>(ol.data(), {5, 3}), ok);
        },
        "flgc_compile", "out_logits must be O×G = 6×G");
    fails([&] { return cvk::flgc_assignment(no_groups, out); }, "flgc_assignment",
          "with G >= 1 groups, got 4×0");
    fails([&] { return cvk::flgc_assignment(in, wide_out); }, "flgc_assignment",
          "in_logits and out_logits must have the same number of columns (groups G), got "
          "in_logits 4×3 and out_logits 3×6");
    cvk::tensor<double, 2> m(4, 6);
    fails([&] { cvk::flgc_mask(in, out, m); }, "flgc_mask", "out must be 6×4, got 4×6");
  }
  SECTION("params, input, bias, output") {
    CHECK_THROWS_AS(cvk::flgc_conv2d(x, w, b, in, out, {.groups = 2}), cvk::invalid_argument);
    fails([&] { return cvk::flgc_conv2d(x, w, b, in, out, {.groups = 2}); }, "flgc_conv2d",
          "params.groups must be 1");
    fails(
        [&] {
          return cvk::flgc_compile(w, b, in, out, {.stride = {0, 1}});
        },
        "flgc_compile", "params.stride must be >= 1");
    const view4<double> x3(xs.data(), {1, 3, 5, 5});
    CHECK_THROWS_AS(cvk::flgc_conv2d(x3, w, b, in, out, ok), cvk::shape_error);
    fails([&] { return cvk::flgc_conv2d(x3, w, b, in, out, ok); }, "flgc_conv2d", "input channels");
    const view1<double> b5(bs.data(), {5});
    fails([&] { return cvk::flgc_conv2d(x, w, b5, in, out, ok); }, "flgc_conv2d",
          "bias must have 6 values");
    fails([&] { return cvk::flgc_compile(w, b5, in, out, ok); }, "flgc_compile",
          "bias must have O = 6 values");
    cvk::tensor<double, 4> y(1, 6, 3, 4);
    fails([&] { cvk::flgc_conv2d(x, w, b, in, out, ok, y); }, "flgc_conv2d",
          "out must be N×C×H×W = 1×6×3×3, got 1×6×3×4");
  }
  SECTION("backward") {
    CHECK_THROWS_AS(cvk::flgc_conv2d_backward(dy, x, w, in, out, {.act = cvk::activation::relu}),
                    cvk::invalid_argument);
    fails(
        [&] {
          return cvk::flgc_conv2d_backward(dy, x, w, in, out, {.act = cvk::activation::relu});
        },
        "flgc_conv2d_backward", "params.act must be activation::none");
    const view4<double> dy4(dys.data(), {1, 6, 3, 2});
    CHECK_THROWS_AS(cvk::flgc_conv2d_backward(dy4, x, w, in, out, ok), cvk::shape_error);
    fails([&] { return cvk::flgc_conv2d_backward(dy4, x, w, in, out, ok); }, "flgc_conv2d_backward",
          "grad_output must be N×C×H×W = 1×6×3×3");
    cvk::tensor<double, 2> g_in(4, 2);
    cvk::flgc_gradient_views<double> t;
    t.in_logits = g_in.view();
    fails([&] { cvk::flgc_conv2d_backward(dy, x, w, in, out, ok, t); }, "flgc_conv2d_backward",
          "grad_in_logits must be I×G = 4×3 (in_logits' shape), got 4×2");
    cvk::tensor<double, 4> g_w(6, 4, 3, 2);
    t = {};
    t.weight = g_w.view();
    fails([&] { cvk::flgc_conv2d_backward(dy, x, w, in, out, ok, t); }, "flgc_conv2d_backward",
          "grad_weight must be O×I/groups×KH×KW = 6×4×3×3 (weight's shape), got 6×4×3×2");
    cvk::tensor<double, 2> g_ok(4, 3);
    t = {};
    t.in_logits = g_ok.view();
    fails([&] { cvk::flgc_conv2d_backward(dy, x, w, in, out, ok, t, static_cast<cvk::ste>(7)); },
          "flgc_conv2d_backward", "the estimator is not an ste value");
  }
  SECTION("permutations and folding") {
    const std::vector<double> v{1, 2, 3};
    CHECK_THROWS_AS(cvk::permute_channels(v, {0, 1}), cvk::invalid_argument);
    fails(
        [&] {
          return cvk::permute_channels(v, {0, 1});
        },
        "permute_channels",
        "permutation must be empty (the identity) or a permutation of the 3 channels 0 … 2, "
        "got 2 values");
    fails(
        [&] {
          return cvk::permute_channels(v, {0, 3, 1});
        },
        "permute_channels", "got the value 3 at position 1");
    fails(
        [&] {
          return cvk::permute_channels(v, {0, 1, 0});
        },
        "permute_channels", "got the value 0 twice (at position 2)");
    fails(
        [&] {
          return cvk::permute_conv_outputs(w, b, ok, {0, 1, 2});
        },
        "permute_conv_outputs",
        "the permutation must be empty (the identity) or a permutation of the 6 channels");
    fails(
        [&] {
          return cvk::permute_conv_inputs(w, b, ok, {0, 1, 2, 2});
        },
        "permute_conv_inputs", "twice");
    std::vector<double> cl(12, 0.0);
    cl[2] = 1;  // channel 0 in group 2: not sorted
    auto c = cvk::flgc_compile(w, b, view2<double>(cl.data(), {4, 3}), out, ok);
    REQUIRE_FALSE(c.groups.in_permutation.empty());
    fails([&] { return cvk::flgc_fold_input_permutation(c, w, b, ok); },
          "flgc_fold_input_permutation",
          "the previous conv must have 4 output channels (the compiled layer's input channels), "
          "got weight 6×4×3×3");
    fails([&] { return cvk::flgc_fold_output_permutation(c, w, b, ok); },
          "flgc_fold_output_permutation",
          "the next conv must have 6 input channels (the compiled layer's output channels), got "
          "weight 6×4×3×3");
    CHECK_FALSE(c.groups.in_permutation.empty());  // unchanged after a failed fold
  }
}
