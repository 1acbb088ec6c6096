// cvk — computer-vision kernels, header-only C++20.
// Tests of cvk/conv/deform_conv2d.hpp: torchvision 0.14 fixtures (forward and every gradient),
// the plain reference loop on random shapes (both layouts, strided / negative-stride / transposed
// tensors, offset and weight groups, large offsets, 1×1 images), zero offsets and a unit mask =
// conv2d, gradients against central finite differences in double, bit-identical results for
// 1/2/3 threads, NaN / inf / huge offsets, Eigen and xtensor tensors, and every error.
// SPDX-License-Identifier: MIT
#include <cvk/conv.hpp>
#include <cvk/core/rng.hpp>

#if defined(CVK_TEST_HAS_EIGEN)
#  include <cvk/adapt/eigen.hpp>
#endif
#if defined(CVK_TEST_HAS_XTENSOR)
#  include <cvk/adapt/xtensor.hpp>
#endif

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
#include "support/deform_reference.hpp"
#include "support/fixtures.hpp"

namespace {

using cvk::index_t;
using cvk_test::both_layouts;
using cvk_test::conv_problem;
using cvk_test::deform_problem;
using cvk_test::draw;
using cvk_test::random_reals;
using cvk_test::storage;
using cvk_test::store;
using cvk_test::to_nchw;

cvk::deform_conv2d_params deform_params(const deform_problem& dp, cvk::layout l = cvk::layout::nchw,
                                        int threads = 0) {
  return {.stride = dp.conv.stride,
          .padding = dp.conv.pad,
          .dilation = dp.conv.dilation,
          .groups = dp.conv.groups,
          .data_layout = l,
          .threads = threads};
}

/// Data of one problem (NCHW, OIHW).
template <class T>
struct deform_data {
  deform_problem p;
  std::vector<T> x, offset, mask, w, b, dy;
};

/// Offsets of whole pixels (up to ±`reach`) plus a fractional part in [0.1, 0.9]: no sample on
/// an integer coordinate (the bilinear kinks), some far outside the image when reach is large.
template <class T>
std::vector<T> fractional_offsets(cvk::rng& gen, std::size_t count, index_t reach) {
  std::vector<T> v(count);
  for (auto& o : v) {
    o = static_cast<T>(draw(gen, -reach, reach)) + gen.uniform<T>(T(0.1), T(0.9));
  }
  return v;
}

template <class T>
deform_data<T> deform_random_data(cvk::rng& gen, const deform_problem& p, index_t reach = 2) {
  deform_data<T> d;
  d.p = p;
  d.x = random_reals<T>(gen, cvk_test::product(p.conv.input_nchw()));
  d.offset = fractional_offsets<T>(gen, cvk_test::product(p.offset_nchw()), reach);
  d.mask = random_reals<T>(gen, cvk_test::product(p.mask_nchw()));
  d.w = random_reals<T>(gen, cvk_test::product(p.conv.weight_oihw()));
  d.b = random_reals<T>(gen, static_cast<std::size_t>(p.conv.o));
  d.dy = random_reals<T>(gen, cvk_test::product(p.conv.output_nchw()));
  return d;
}

/// A random problem with a non-empty output: odd sizes, 1×1 images, weight groups and offset
/// groups in every relation, stride, dilation, asymmetric padding.
deform_problem random_problem(cvk::rng& gen) {
  for (;;) {
    deform_problem dp;
    conv_problem& p = dp.conv;
    p.n = draw(gen, 1, 2);
    p.groups = draw(gen, 1, 3);
    dp.offset_groups = draw(gen, 1, 3);
    // C a multiple of both group counts.
    const index_t lcm = std::lcm(p.groups, dp.offset_groups);
    p.c = lcm * draw(gen, 1, 3);
    p.o = p.groups * draw(gen, 1, 3);
    p.h = gen.below(6) == 0 ? 1 : draw(gen, 1, 8);
    p.w = gen.below(6) == 0 ? 1 : draw(gen, 1, 8);
    p.kh = draw(gen, 1, 3);
    p.kw = draw(gen, 1, 3);
    p.stride = {draw(gen, 1, 2), draw(gen, 1, 3)};
    p.dilation = {draw(gen, 1, 2), draw(gen, 1, 2)};
    p.pad = {draw(gen, 0, 2), draw(gen, 0, 2), draw(gen, 0, 2), draw(gen, 0, 2)};
    dp.masked = gen.below(3) != 0;
    if (p.h + p.pad[0] + p.pad[2] >= p.dilation[0] * (p.kh - 1) + 1 &&
        p.w + p.pad[1] + p.pad[3] >= p.dilation[1] * (p.kw - 1) + 1) {
      return dp;
    }
  }
}

/// Counts the elements of `got` farther than tol·max(1, max|want|) from `want` (NaN equals NaN);
/// reports the first.
template <class T>
void check_close(const std::vector<T>& got, const std::vector<T>& want, double tol,
                 const std::string& what) {
  INFO(what);
  REQUIRE(got.size() == want.size());
  double scale = 1;
  for (const T v : want) {
    if (std::isfinite(v)) scale = std::max(scale, static_cast<double>(std::abs(v)));
  }
  std::size_t bad = 0, first = got.size();
  for (std::size_t i = 0; i < got.size(); ++i) {
    const bool both_nan = std::isnan(got[i]) && std::isnan(want[i]);
    if (both_nan) continue;
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
  return std::is_same_v<T, float> ? 2e-5 : 1e-12;
}

/// View of NCHW data in a flat vector.
template <class T>
cvk::strided_view<const T, 4> nchw_view(const std::vector<T>& v, const std::array<index_t, 4>& e) {
  return cvk::strided_view<const T, 4>(v.data(), e);
}

template <class T>
cvk::tensor<T, 4> forward_of(const deform_data<T>& d, const cvk::deform_conv2d_params& params) {
  const auto x = nchw_view(d.x, d.p.conv.input_nchw());
  const auto off = nchw_view(d.offset, d.p.offset_nchw());
  const auto w = nchw_view(d.w, d.p.conv.weight_oihw());
  if (d.p.masked) {
    return cvk::deform_conv2d(x, off, nchw_view(d.mask, d.p.mask_nchw()), w, d.b, params);
  }
  return cvk::deform_conv2d(x, off, cvk::no_mask, w, d.b, params);
}

template <class T>
cvk::deform_conv2d_gradients<T> backward_of(const deform_data<T>& d,
                                            const cvk::deform_conv2d_params& params) {
  const auto x = nchw_view(d.x, d.p.conv.input_nchw());
  const auto off = nchw_view(d.offset, d.p.offset_nchw());
  const auto w = nchw_view(d.w, d.p.conv.weight_oihw());
  const auto dy = nchw_view(d.dy, d.p.conv.output_nchw());
  if (d.p.masked) {
    return cvk::deform_conv2d_backward(dy, x, off, nchw_view(d.mask, d.p.mask_nchw()), w, params);
  }
  return cvk::deform_conv2d_backward(dy, x, off, cvk::no_mask, w, params);
}

template <class T, std::size_t R>
std::vector<T> values(const cvk::tensor<T, R>& t) {
  return std::vector<T>(t.data(), t.data() + t.size());
}

}  // namespace

TEMPLATE_TEST_CASE("deform_conv2d: torchvision 0.14 fixtures, forward and every gradient",
                   "[conv][deform][fixtures]", float, double) {
  using T = TestType;
  const cvk_test::fixture_file file(cvk_test::test_data_path("deform_conv2d_torchvision.txt"));
  const int cases = std::stoi(file.meta("cases"));
  REQUIRE(cases >= 10);
  const std::string dtype = std::is_same_v<T, float> ? "float32" : "float64";
  for (int k = 0; k < cases; ++k) {
    const std::string prefix = "case" + std::to_string(k) + "/";
    const auto v = file.table(prefix + "params").values<index_t>();
    deform_problem dp;
    conv_problem& p = dp.conv;
    p.n = v.at(0);
    p.c = v.at(1);
    p.h = v.at(2);
    p.w = v.at(3);
    p.o = v.at(4);
    p.kh = v.at(5);
    p.kw = v.at(6);
    p.groups = v.at(7);
    dp.offset_groups = v.at(8);
    p.stride = {v.at(9), v.at(10)};
    p.dilation = {v.at(11), v.at(12)};
    p.pad = {v.at(13), v.at(14), v.at(15), v.at(16)};
    dp.masked = v.at(17) != 0;
    const bool has_bias = v.at(18) != 0;
    const auto table = [&](const std::string& name) {
      return file.table(prefix + dtype + "/" + name).values<T>();
    };
    deform_data<T> d;
    d.p = dp;
    d.x = table("input");
    d.offset = table("offset");
    if (dp.masked) d.mask = table("mask");
    d.w = table("weight");
    if (has_bias) d.b = table("bias");
    d.dy = table("grad_output");
    INFO("case " << k << ": " << dp.describe());
    const double tol = std::is_same_v<T, float> ? 1e-5 : 1e-13;
    for (const auto l : both_layouts) {
      INFO((l == cvk::layout::nhwc ? "nhwc" : "nchw"));
      const auto params = deform_params(dp, l, 0);
      const auto x = store(d.x, p.input_nchw(), l, storage::contiguous);
      const auto off = store(d.offset, dp.offset_nchw(), l, storage::contiguous);
      const auto mask = dp.masked ? store(d.mask, dp.mask_nchw(), l, storage::contiguous)
                                  : cvk_test::stored_tensor<T>{};
      const auto dy = store(d.dy, p.output_nchw(), l, storage::contiguous);
      const auto w = nchw_view(d.w, p.weight_oihw());
      const cvk::strided_view<const T, 4> xv = x.view, ov = off.view, mv = mask.view, dyv = dy.view;
      cvk::tensor<T, 4> y;
      cvk::deform_conv2d_gradients<T> g;
      if (dp.masked && has_bias) {
        y = cvk::deform_conv2d(xv, ov, mv, w, d.b, params);
        g = cvk::deform_conv2d_backward(dyv, xv, ov, mv, w, params);
      } else if (dp.masked) {
        y = cvk::deform_conv2d(xv, ov, mv, w, cvk::no_bias, params);
        g = cvk::deform_conv2d_backward(dyv, xv, ov, mv, w, params);
      } else if (has_bias) {
        y = cvk::deform_conv2d(xv, ov, cvk::no_mask, w, d.b, params);
        g = cvk::deform_conv2d_backward(dyv, xv, ov, cvk::no_mask, w, params);
      } else {
        y = cvk::deform_conv2d(xv, ov, w, params);
        g = cvk::deform_conv2d_backward(dyv, xv, ov, cvk::no_mask, w, params);
      }
      check_close(to_nchw(y.view(), l), table("output"), tol, "output");
      check_close(to_nchw(g.input.view(), l), table("grad_input"), tol, "grad_input");
      check_close(to_nchw(g.offset.view(), l), table("grad_offset"), tol, "grad_offset");
      if (dp.masked) {
        check_close(to_nchw(g.mask.view(), l), table("grad_mask"), tol, "grad_mask");
      } else {
        CHECK(g.mask.size() == 0);
      }
      check_close(values(g.weight), table("grad_weight"), tol, "grad_weight");
      if (has_bias) check_close(values(g.bias), table("grad_bias"), tol, "grad_bias");
    }
  }
}

TEMPLATE_TEST_CASE(
    "deform_conv2d: random shapes equal the reference loop (layouts, strided tensors, offset and "
    "weight groups, large offsets)",
    "[conv][deform]", float, double) {
  using T = TestType;
  cvk::rng gen(1703, 6);
  const storage storages[] = {storage::contiguous, storage::padded_inner, storage::reversed_inner,
                              storage::transposed};
  for (int trial = 0; trial < cvk_test::trials(48); ++trial) {
    const deform_problem dp = random_problem(gen);
    const conv_problem& p = dp.conv;
    // Every fourth trial pushes samples far outside the image.
    const auto d = deform_random_data<T>(gen, dp, trial % 4 == 3 ? 12 : 2);
    const auto want_y = cvk_test::reference_deform_conv2d(dp, d.x, d.offset, d.mask, d.w, d.b);
    const auto want = cvk_test::reference_deform_backward(dp, d.x, d.offset, d.mask, d.w, d.dy);
    const auto l = both_layouts[static_cast<std::size_t>(trial % 2)];
    const storage s = storages[static_cast<std::size_t>((trial / 2) % 4)];
    INFO("trial " << trial << ": " << dp.describe() << (l == cvk::layout::nhwc ? " nhwc" : " nchw")
                  << ", " << cvk_test::to_string(s));
    const auto params = deform_params(dp, l, 2);
    const auto x = store(d.x, p.input_nchw(), l, s);
    const auto off = store(d.offset, dp.offset_nchw(), l, s);
    const auto mask = store(d.mask, dp.mask_nchw(), l, s);
    const auto dy = store(d.dy, p.output_nchw(), l, s);
    const auto w = nchw_view(d.w, p.weight_oihw());
    const cvk::strided_view<const T, 4> xv = x.view, ov = off.view, mv = mask.view, dyv = dy.view;
    // Write-into forms through tensors stored with the same strides.
    auto y = store(std::vector<T>(want_y.size(), T(7)), p.output_nchw(), l, s);
    auto gi = store(std::vector<T>(d.x.size(), T(7)), p.input_nchw(), l, s);
    auto go = store(std::vector<T>(d.offset.size(), T(7)), dp.offset_nchw(), l, s);
    auto gm = store(std::vector<T>(d.mask.size(), T(7)), dp.mask_nchw(), l, s);
    cvk::tensor<T, 4> gw(p.weight_oihw(), T(7));
    cvk::tensor<T, 1> gb(std::array<index_t, 1>{p.o}, T(7));
    cvk::deform_conv2d_gradient_views<T> targets{
        .input = gi.view, .offset = go.view, .weight = gw.view(), .bias = gb.view()};
    if (dp.masked) {
      targets.mask = gm.view;
      cvk::deform_conv2d(xv, ov, mv, w, d.b, params, y.view);
      cvk::deform_conv2d_backward(dyv, xv, ov, mv, w, params, targets);
    } else {
      cvk::deform_conv2d(xv, ov, cvk::no_mask, w, d.b, params, y.view);
      cvk::deform_conv2d_backward(dyv, xv, ov, cvk::no_mask, w, params, targets);
    }
    const double tol = tolerance<T>();
    check_close(to_nchw(cvk::strided_view<const T, 4>(y.view), l), want_y, tol, "output");
    check_close(to_nchw(cvk::strided_view<const T, 4>(gi.view), l), want.input, tol, "grad_input");
    check_close(to_nchw(cvk::strided_view<const T, 4>(go.view), l), want.offset, tol,
                "grad_offset");
    if (dp.masked) {
      check_close(to_nchw(cvk::strided_view<const T, 4>(gm.view), l), want.mask, tol, "grad_mask");
    }
    check_close(values(gw), want.weight, tol, "grad_weight");
    check_close(values(gb), want.bias, tol, "grad_bias");
  }
}

TEMPLATE_TEST_CASE("deform_conv2d: zero offsets and a unit mask equal conv2d", "[conv][deform]",
                   float, double) {
  using T = TestType;
  cvk::rng gen(11);
  for (int trial = 0; trial < cvk_test::trials(16); ++trial) {
    deform_problem dp = random_problem(gen);
    const conv_problem& p = dp.conv;
    // Small integers: every sum is exact, in any order.
    const auto x = cvk_test::small_integers<T>(gen, cvk_test::product(p.input_nchw()), 3);
    const auto w = cvk_test::small_integers<T>(gen, cvk_test::product(p.weight_oihw()), 3);
    const auto b = cvk_test::small_integers<T>(gen, static_cast<std::size_t>(p.o), 3);
    const std::vector<T> zero(cvk_test::product(dp.offset_nchw()), T(0));
    const std::vector<T> one(cvk_test::product(dp.mask_nchw()), T(1));
    for (const auto l : both_layouts) {
      INFO(dp.describe() << (l == cvk::layout::nhwc ? " nhwc" : " nchw"));
      const auto xs = store(x, p.input_nchw(), l, storage::contiguous);
      const auto os = store(zero, dp.offset_nchw(), l, storage::contiguous);
      const auto ms = store(one, dp.mask_nchw(), l, storage::contiguous);
      const cvk::strided_view<const T, 4> xv = xs.view;
      const auto wv = nchw_view(w, p.weight_oihw());
      const auto expected = cvk::conv2d(xv, wv, b, cvk_test::conv_params(p, l));
      const auto v1 = cvk::deform_conv2d(xv, cvk::strided_view<const T, 4>(os.view), cvk::no_mask,
                                         wv, b, deform_params(dp, l));
      const auto v2 =
          cvk::deform_conv2d(xv, cvk::strided_view<const T, 4>(os.view),
                             cvk::strided_view<const T, 4>(ms.view), wv, b, deform_params(dp, l));
      REQUIRE(values(v1) == values(expected));
      REQUIRE(values(v2) == values(expected));
      REQUIRE(cvk::deform_conv2d_output_shape(xv.extents(), wv.extents(), deform_params(dp, l)) ==
              expected.extents());
    }
  }
}

TEST_CASE("deform_conv2d: gradients equal central finite differences (double)",
          "[conv][deform][gradient]") {
  cvk::rng gen(4242);
  for (int trial = 0; trial < cvk_test::trials(8); ++trial) {
    deform_problem dp = random_problem(gen);
    dp.masked = trial % 2 == 0;
    auto d = deform_random_data<double>(gen, dp, 2);
    const auto params = deform_params(dp);
    const auto g = backward_of(d, params);
    INFO("trial " << trial << ": " << dp.describe());
    // L = Σ dy · y
    const auto loss = [&](const deform_data<double>& e) {
      const auto y = forward_of(e, params);
      double s = 0;
      for (std::size_t i = 0; i < e.dy.size(); ++i) s += e.dy[i] * y.data()[i];
      return s;
    };
    const double eps = 1e-6;
    const auto check = [&](std::vector<double> deform_data<double>::*field,
                           const cvk::tensor<double, 4>* grad4, const cvk::tensor<double, 1>* grad1,
                           const char* what) {
      const std::size_t count = (d.*field).size();
      for (std::size_t i = 0; i < count; i += 1 + count / 12) {
        deform_data<double> up = d, down = d;
        (up.*field)[i] += eps;
        (down.*field)[i] -= eps;
        const double fd = (loss(up) - loss(down)) / (2 * eps);
        const double got = grad4 != nullptr ? grad4->data()[i] : grad1->data()[i];
        INFO(what << "[" << i << "]: analytic " << got << ", finite difference " << fd);
        CHECK(std::abs(got - fd) <= 1e-6 * (1 + std::abs(fd)));
      }
    };
    check(&deform_data<double>::x, &g.input, nullptr, "grad_input");
    check(&deform_data<double>::offset, &g.offset, nullptr, "grad_offset");
    if (dp.masked) check(&deform_data<double>::mask, &g.mask, nullptr, "grad_mask");
    check(&deform_data<double>::w, &g.weight, nullptr, "grad_weight");
    check(&deform_data<double>::b, nullptr, &g.bias, "grad_bias");
  }
}

TEMPLATE_TEST_CASE("deform_conv2d: results are bit-identical for 1, 2 and 3 threads",
                   "[conv][deform][threads]", float, double) {
  using T = TestType;
  cvk::rng gen(99);
  // Large enough for several row chunks (2^17 / (37·36·9) = 10 rows each), several pixel tasks
  // and several grad_input tasks.
  for (const index_t og : {1, 2, 6}) {
    deform_problem dp;
    dp.conv.n = og == 2 ? 2 : 1;
    dp.conv.c = 36;
    dp.conv.o = 8;
    dp.conv.groups = 2;
    dp.conv.h = 21;
    dp.conv.w = 37;
    dp.conv.kh = 3;
    dp.conv.kw = 3;
    dp.conv.pad = {1, 1, 1, 1};
    dp.offset_groups = og;
    dp.masked = og != 2;
    const auto d = deform_random_data<T>(gen, dp, 3);
    INFO(dp.describe());
    const auto y1 = forward_of(d, deform_params(dp, cvk::layout::nchw, 1));
    const auto g1 = backward_of(d, deform_params(dp, cvk::layout::nchw, 1));
    for (const int threads : {2, 3}) {
      INFO("threads " << threads);
      const auto y = forward_of(d, deform_params(dp, cvk::layout::nchw, threads));
      const auto g = backward_of(d, deform_params(dp, cvk::layout::nchw, threads));
      REQUIRE(values(y) == values(y1));
      REQUIRE(values(g.input) == values(g1.input));
      REQUIRE(values(g.offset) == values(g1.offset));
      REQUIRE(values(g.mask) == values(g1.mask));
      REQUIRE(values(g.weight) == values(g1.weight));
      REQUIRE(values(g.bias) == values(g1.bias));
    }
  }
}

TEMPLATE_TEST_CASE("deform_conv2d: NaN, inf and huge offsets give the documented results",
                   "[conv][deform][nonfinite]", float, double) {
  using T = TestType;
  cvk::rng gen(5);
  deform_problem dp;
  dp.conv.n = 1;
  dp.conv.c = 4;
  dp.conv.o = 3;
  dp.conv.h = 5;
  dp.conv.w = 6;
  dp.conv.kh = 3;
  dp.conv.kw = 3;
  dp.conv.pad = {1, 1, 1, 1};
  dp.offset_groups = 2;
  dp.masked = true;
  const conv_problem& p = dp.conv;
  const index_t plane = p.out_h() * p.out_w();
  SECTION("±inf and huge offsets: the sample is outside the image (0, zero gradients)") {
    auto d = deform_random_data<T>(gen, dp, 2);
    const T huge[] = {
        std::numeric_limits<T>::infinity(), -std::numeric_limits<T>::infinity(), T(1e30), T(-1e30),
        std::numeric_limits<T>::max(),      std::numeric_limits<T>::lowest()};
    for (std::size_t i = 0; i < d.offset.size(); i += 3) d.offset[i] = huge[i % 6];
    const auto want_y = cvk_test::reference_deform_conv2d(dp, d.x, d.offset, d.mask, d.w, d.b);
    const auto want = cvk_test::reference_deform_backward(dp, d.x, d.offset, d.mask, d.w, d.dy);
    const auto y = forward_of(d, deform_params(dp));
    const auto g = backward_of(d, deform_params(dp));
    check_close(values(y), want_y, tolerance<T>(), "output");
    check_close(values(g.input), want.input, tolerance<T>(), "grad_input");
    check_close(values(g.offset), want.offset, tolerance<T>(), "grad_offset");
    check_close(values(g.mask), want.mask, tolerance<T>(), "grad_mask");
    check_close(values(g.weight), want.weight, tolerance<T>(), "grad_weight");
    for (std::size_t i = 0; i < d.offset.size(); i += 3) {
      CHECK(g.offset.data()[i] == T(0));  // a sample outside the image
    }
  }
  SECTION("a NaN offset makes its sample NaN: the outputs using it, its gradients") {
    auto d = deform_random_data<T>(gen, dp, 1);
    // Offset group 1 (channels 2, 3), tap 4, output pixel (2, 3): its dx is NaN.
    const index_t k = 1 * 9 + 4, oy = 2, ox = 3;
    d.offset[static_cast<std::size_t>((2 * k + 1) * plane + oy * p.out_w() + ox)] =
        std::numeric_limits<T>::quiet_NaN();
    const auto y = forward_of(d, deform_params(dp));
    const auto g = backward_of(d, deform_params(dp));
    for (index_t o = 0; o < p.o; ++o) {
      for (index_t yy = 0; yy < p.out_h(); ++yy) {
        for (index_t xx = 0; xx < p.out_w(); ++xx) {
          CHECK(std::isnan(y(0, o, yy, xx)) == (yy == oy && xx == ox));
        }
      }
    }
    CHECK(std::isnan(g.offset(0, 2 * k, oy, ox)));
    CHECK(std::isnan(g.offset(0, 2 * k + 1, oy, ox)));
    CHECK(std::isnan(g.mask(0, k, oy, ox)));
    index_t nan_offsets = 0;
    for (index_t i = 0; i < g.offset.size(); ++i) nan_offsets += std::isnan(g.offset.data()[i]);
    CHECK(nan_offsets == 2);
    // Nothing is scattered from a NaN sample: grad_input stays finite.
    for (index_t i = 0; i < g.input.size(); ++i) REQUIRE(std::isfinite(g.input.data()[i]));
    // The weight gradient sums the NaN column (input channels 2, 3 at tap 4).
    CHECK(std::isnan(g.weight(0, 2, 1, 1)));
    CHECK(std::isfinite(g.weight(0, 0, 1, 1)));
    CHECK(std::isfinite(g.bias(0)));
  }
  SECTION("a NaN mask value multiplies as a number") {
    auto d = deform_random_data<T>(gen, dp, 1);
    d.mask[static_cast<std::size_t>(4 * plane + 1 * p.out_w() + 1)] =
        std::numeric_limits<T>::quiet_NaN();  // offset group 0, tap 4, pixel (1, 1)
    const auto y = forward_of(d, deform_params(dp));
    CHECK(std::isnan(y(0, 0, 1, 1)));
    CHECK(std::isfinite(y(0, 0, 1, 2)));
  }
}

TEMPLATE_TEST_CASE("deform_conv2d: edge shapes (1×1 images, empty batch, gradients on request)",
                   "[conv][deform]", float, double) {
  using T = TestType;
  cvk::rng gen(8);
  deform_problem dp;
  dp.conv.n = 2;
  dp.conv.c = 3;
  dp.conv.o = 2;
  dp.conv.kh = 3;
  dp.conv.kw = 3;
  dp.conv.pad = {1, 1, 1, 1};
  dp.offset_groups = 3;
  dp.masked = true;
  SECTION("1×1 image") {
    const auto d = deform_random_data<T>(gen, dp, 1);
    const auto want_y = cvk_test::reference_deform_conv2d(dp, d.x, d.offset, d.mask, d.w, d.b);
    const auto want = cvk_test::reference_deform_backward(dp, d.x, d.offset, d.mask, d.w, d.dy);
    check_close(values(forward_of(d, deform_params(dp))), want_y, tolerance<T>(), "output");
    const auto g = backward_of(d, deform_params(dp));
    check_close(values(g.input), want.input, tolerance<T>(), "grad_input");
    check_close(values(g.offset), want.offset, tolerance<T>(), "grad_offset");
  }
  SECTION("empty batch: empty output, zero weight gradient") {
    dp.conv.n = 0;
    const auto d = deform_random_data<T>(gen, dp, 1);
    CHECK(forward_of(d, deform_params(dp)).size() == 0);
    const auto g = backward_of(d, deform_params(dp));
    CHECK(static_cast<std::size_t>(g.weight.size()) == cvk_test::product(dp.conv.weight_oihw()));
    CHECK(std::all_of(g.weight.data(), g.weight.data() + g.weight.size(),
                      [](T v) { return v == T(0); }));
  }
  SECTION("no input channels: the bias alone, zero gradients") {
    dp.conv.c = 0;
    dp.conv.h = 3;
    dp.conv.w = 2;
    dp.offset_groups = 1;
    const auto d = deform_random_data<T>(gen, dp, 1);
    const auto y = forward_of(d, deform_params(dp));
    for (index_t i = 0; i < y.size(); ++i) {
      REQUIRE(y.data()[i] == d.b[static_cast<std::size_t>((i / 6) % 2)]);
    }
    const auto g = backward_of(d, deform_params(dp));
    CHECK(std::all_of(g.offset.data(), g.offset.data() + g.offset.size(),
                      [](T v) { return v == T(0); }));
    CHECK(std::all_of(g.mask.data(), g.mask.data() + g.mask.size(), [](T v) { return v == T(0); }));
    check_close(values(g.bias),
                cvk_test::reference_deform_backward(dp, d.x, d.offset, d.mask, d.w, d.dy).bias,
                tolerance<T>(), "grad_bias");
  }
  SECTION("only the gradients asked for") {
    dp.conv.h = 4;
    dp.conv.w = 5;
    const auto d = deform_random_data<T>(gen, dp, 1);
    const auto all = backward_of(d, deform_params(dp));
    const auto x = nchw_view(d.x, dp.conv.input_nchw());
    const auto off = nchw_view(d.offset, dp.offset_nchw());
    const auto m = nchw_view(d.mask, dp.mask_nchw());
    const auto w = nchw_view(d.w, dp.conv.weight_oihw());
    const auto dy = nchw_view(d.dy, dp.conv.output_nchw());
    const auto some = cvk::deform_conv2d_backward(
        dy, x, off, m, w, deform_params(dp),
        {.input = false, .offset = true, .mask = false, .weight = true, .bias = false});
    CHECK(some.input.size() == 0);
    CHECK(some.mask.size() == 0);
    CHECK(some.bias.size() == 0);
    CHECK(values(some.offset) == values(all.offset));
    CHECK(values(some.weight) == values(all.weight));
    const auto only_input = cvk::deform_conv2d_backward(
        dy, x, off, m, w, deform_params(dp),
        {.input = true, .offset = false, .mask = false, .weight = false, .bias = false});
    CHECK(values(only_input.input) == values(all.input));
  }
}

#if defined(CVK_TEST_HAS_EIGEN) || defined(CVK_TEST_HAS_XTENSOR)
TEST_CASE("deform_conv2d: Eigen and xtensor tensors", "[conv][deform][adapt]") {
  cvk::rng gen(3);
  deform_problem dp;
  dp.conv.c = 4;
  dp.conv.o = 2;
  dp.conv.h = 5;
  dp.conv.w = 4;
  dp.conv.kh = 3;
  dp.conv.kw = 3;
  dp.conv.pad = {1, 1, 1, 1};
  dp.offset_groups = 2;
  dp.masked = true;
  const auto d = deform_random_data<float>(gen, dp, 1);
  const auto want = cvk_test::reference_deform_conv2d(dp, d.x, d.offset, d.mask, d.w, d.b);
  const auto params = deform_params(dp);
  const auto& p = dp.conv;
  const auto om = dp.offset_nchw(), mm = dp.mask_nchw();
#  if defined(CVK_TEST_HAS_EIGEN)
  SECTION("Eigen TensorMap and Tensor (row-major)") {
    using tensor4 = Eigen::Tensor<float, 4, Eigen::RowMajor>;
    const Eigen::TensorMap<const tensor4> x(d.x.data(), p.n, p.c, p.h, p.w);
    const Eigen::TensorMap<const tensor4> off(d.offset.data(), om[0], om[1], om[2], om[3]);
    const Eigen::TensorMap<const tensor4> m(d.mask.data(), mm[0], mm[1], mm[2], mm[3]);
    const Eigen::TensorMap<const tensor4> w(d.w.data(), p.o, p.c, p.kh, p.kw);
    Eigen::Tensor<float, 1, Eigen::RowMajor> b(p.o);
    std::copy(d.b.begin(), d.b.end(), b.data());
    tensor4 y(p.n, p.o, p.out_h(), p.out_w());
    cvk::deform_conv2d(x, off, m, w, b, params, y);
    check_close(std::vector<float>(y.data(), y.data() + y.size()), want, 2e-5, "Eigen output");
  }
#  endif
#  if defined(CVK_TEST_HAS_XTENSOR)
  SECTION("xtensor") {
    xt::xtensor<float, 4> x = xt::zeros<float>({p.n, p.c, p.h, p.w});
    std::copy(d.x.begin(), d.x.end(), x.begin());
    xt::xtensor<float, 4> off = xt::zeros<float>({om[0], om[1], om[2], om[3]});
    std::copy(d.offset.begin(), d.offset.end(), off.begin());
    xt::xtensor<float, 4> m = xt::zeros<float>({mm[0], mm[1], mm[2], mm[3]});
    std::copy(d.mask.begin(), d.mask.end(), m.begin());
    xt::xtensor<float, 4> w = xt::zeros<float>({p.o, p.c, p.kh, p.kw});
    std::copy(d.w.begin(), d.w.end(), w.begin());
    const auto y = cvk::deform_conv2d(x, off, m, w, d.b, params);
    check_close(values(y), want, 2e-5, "xtensor output");
  }
#  endif
}
#endif

TEST_CASE(
    "deform_conv2d: bad input raises cvk errors naming the function, the argument and "
    "the shapes",
    "[conv][deform][errors]") {
  using Catch::Matchers::Contains;
  // input 1×4×5×5, weight 6×2×3×3 (groups 2), offset groups 2: offset 1×36×5×5, mask 1×18×5×5.
  const std::vector<float> xs(4 * 25, 1.0f), ws(6 * 2 * 9, 1.0f), os(36 * 25, 0.5f),
      ms(18 * 25, 1.0f), bs(6, 0.0f), big(64 * 25, 0.0f);
  const cvk::strided_view<const float, 4> x(xs.data(), {1, 4, 5, 5});
  const cvk::strided_view<const float, 4> w(ws.data(), {6, 2, 3, 3});
  const cvk::strided_view<const float, 4> off(os.data(), {1, 36, 5, 5});
  const cvk::strided_view<const float, 4> m(ms.data(), {1, 18, 5, 5});
  const cvk::deform_conv2d_params ok{.padding = {1, 1, 1, 1}, .groups = 2};
  REQUIRE(cvk::deform_conv2d(x, off, m, w, bs, ok).extents() == std::array<index_t, 4>{1, 6, 5, 5});
  const auto fails = [&](const auto& call, const char* text) {
    INFO(text);
    CHECK_THROWS_WITH(call(), Contains("deform_conv2d") && Contains(text));
  };
  SECTION("offset channels not a multiple of 2·KH·KW") {
    const cvk::strided_view<const float, 4> bad(big.data(), {1, 20, 5, 5});
    CHECK_THROWS_AS(cvk::deform_conv2d(x, bad, w, ok), cvk::shape_error);
    fails([&] { return cvk::deform_conv2d(x, bad, w, ok); },
          "offset must have a positive multiple of 2·KH·KW = 2·3·3 = 18 channels");
    const cvk::strided_view<const float, 4> none(big.data(), {1, 0, 5, 5});
    fails([&] { return cvk::deform_conv2d(x, none, w, ok); }, "got 0");
  }
  SECTION("offset groups not dividing the input channels") {
    const cvk::strided_view<const float, 4> three(big.data(), {1, 54, 5, 5});
    CHECK_THROWS_AS(cvk::deform_conv2d(x, three, w, ok), cvk::shape_error);
    fails([&] { return cvk::deform_conv2d(x, three, w, ok); },
          "the offset groups (3 = offset's 54 channels / (2·3·3)) must divide the input "
          "channels (4)");
  }
  SECTION("weight groups not dividing the channels; weight / input mismatch") {
    fails(
        [&] {
          return cvk::deform_conv2d(x, off, w, {.padding = {1, 1, 1, 1}, .groups = 3});
        },
        "params.groups (3) must divide the input channels (4)");
    fails(
        [&] {
          return cvk::deform_conv2d(x, off, w, {.padding = {1, 1, 1, 1}});
        },
        "weight has 2 input channels per group, but input has 4 channels in 1 groups");
  }
  SECTION("offset and mask of the wrong shape, with the formulas") {
    const cvk::strided_view<const float, 4> small(big.data(), {1, 36, 4, 5});
    CHECK_THROWS_AS(cvk::deform_conv2d(x, small, w, ok), cvk::shape_error);
    fails([&] { return cvk::deform_conv2d(x, small, w, ok); },
          "offset must be N×(2·offset_groups·KH·KW)×Ho×Wo = 1×36×5×5");
    const cvk::strided_view<const float, 4> two(big.data(), {2, 36, 5, 5});
    fails([&] { return cvk::deform_conv2d(x, two, w, ok); }, "got 2×36×5×5");
    const cvk::strided_view<const float, 4> mask9(big.data(), {1, 9, 5, 5});
    CHECK_THROWS_AS(cvk::deform_conv2d(x, off, mask9, w, cvk::no_bias, ok), cvk::shape_error);
    fails([&] { return cvk::deform_conv2d(x, off, mask9, w, cvk::no_bias, ok); },
          "mask must be N×(offset_groups·KH·KW)×Ho×Wo = 1×18×5×5");
    // NHWC: the pattern in its own order.
    const cvk::strided_view<const float, 4> xn(xs.data(), {1, 5, 5, 4});
    const cvk::strided_view<const float, 4> off_n(big.data(), {1, 5, 4, 36});
    cvk::deform_conv2d_params nhwc = ok;
    nhwc.data_layout = cvk::layout::nhwc;
    fails([&] { return cvk::deform_conv2d(xn, off_n, w, nhwc); },
          "offset must be N×Ho×Wo×(2·offset_groups·KH·KW) = 1×5×5×36");
  }
  SECTION("stride, dilation, padding, groups, threads out of their domains") {
    CHECK_THROWS_AS(cvk::deform_conv2d(x, off, w, {.stride = {0, 1}, .groups = 2}),
                    cvk::invalid_argument);
    fails(
        [&] {
          return cvk::deform_conv2d(x, off, w, {.stride = {1, -2}, .groups = 2});
        },
        "params.stride must be >= 1, got {1, -2}");
    fails(
        [&] {
          return cvk::deform_conv2d(x, off, w, {.dilation = {0, 1}, .groups = 2});
        },
        "params.dilation must be >= 1");
    fails(
        [&] {
          return cvk::deform_conv2d(x, off, w, {.padding = {0, -1, 0, 0}, .groups = 2});
        },
        "params.padding (top, left, bottom, right) must be >= 0");
    fails([&] { return cvk::deform_conv2d(x, off, w, {.groups = 0}); },
          "params.groups must be >= 1");
    fails([&] { return cvk::deform_conv2d(x, off, w, {.groups = 2, .threads = -1}); },
          "params.threads must be >= 0");
    fails(
        [&] {
          return cvk::deform_conv2d(x, off, w, {.dilation = {3, 1}, .groups = 2});
        },
        "the dilated kernel (7) is larger than the padded input (5) along H");
  }
  SECTION("bias, output and gradient targets of the wrong shape") {
    const std::vector<float> short_bias(5);
    CHECK_THROWS_AS(cvk::deform_conv2d(x, off, m, w, short_bias, ok), cvk::shape_error);
    fails([&] { return cvk::deform_conv2d(x, off, m, w, short_bias, ok); },
          "bias must have O = 6 values");
    cvk::tensor<float, 4> out(std::array<index_t, 4>{1, 6, 5, 4});
    fails([&] { cvk::deform_conv2d(x, off, m, w, bs, ok, out); },
          "out must be N×C×H×W = 1×6×5×5, got 1×6×5×4");
    const std::vector<float> dys(6 * 25, 1.0f);
    const cvk::strided_view<const float, 4> dy(dys.data(), {1, 6, 5, 5});
    const cvk::strided_view<const float, 4> dy_bad(dys.data(), {1, 6, 5, 4});
    fails([&] { return cvk::deform_conv2d_backward(dy_bad, x, off, m, w, ok); },
          "grad_output must be N×C×H×W = 1×6×5×5 (the output's shape), got 1×6×5×4");
    cvk::tensor<float, 4> gi(std::array<index_t, 4>{1, 4, 5, 4});
    fails(
        [&] {
          cvk::deform_conv2d_backward(dy, x, off, m, w, ok,
                                      cvk::deform_conv2d_gradient_views<float>{.input = gi.view()});
        },
        "grad_input must be N×C×H×W = 1×4×5×5, got 1×4×5×4");
    cvk::tensor<float, 4> gm(std::array<index_t, 4>{1, 18, 5, 5});
    CHECK_THROWS_AS(
        cvk::deform_conv2d_backward(dy, x, off, cvk::no_mask, w, ok,
                                    cvk::deform_conv2d_gradient_views<float>{.mask = gm.view()}),
        cvk::invalid_argument);
    fails(
        [&] {
          cvk::deform_conv2d_backward(dy, x, off, cvk::no_mask, w, ok,
                                      cvk::deform_conv2d_gradient_views<float>{.mask = gm.view()});
        },
        "a grad_mask target was given without a mask");
    cvk::tensor<float, 4> gw(std::array<index_t, 4>{6, 4, 3, 3});
    fails(
        [&] {
          cvk::deform_conv2d_backward(
              dy, x, off, m, w, ok, cvk::deform_conv2d_gradient_views<float>{.weight = gw.view()});
        },
        "grad_weight must be O×C/groups×KH×KW = 6×2×3×3");
  }
  SECTION("sizes whose products overflow, buffers too large to allocate") {
    const index_t huge = index_t{1} << 40;
    const cvk::strided_view<const float, 4> broadcast(xs.data(), {1, 4, huge, huge}, {0, 1, 0, 0});
    const cvk::strided_view<const float, 4> off_b(os.data(), {1, 36, huge, huge}, {0, 1, 0, 0});
    CHECK_THROWS_AS(cvk::deform_conv2d(broadcast, off_b, w, ok), cvk::out_of_range);
    fails([&] { return cvk::deform_conv2d(broadcast, off_b, w, ok); }, "overflows");
    // 2^36 pixels fit in index_t, but the output's 6·2^36 floats exceed what cvk allocates.
    const index_t side = index_t{1} << 18;
    const cvk::strided_view<const float, 4> large(xs.data(), {1, 4, side, side}, {0, 1, 0, 0});
    const cvk::strided_view<const float, 4> off_l(os.data(), {1, 36, side, side}, {0, 1, 0, 0});
    CHECK_THROWS_AS(cvk::deform_conv2d(large, off_l, w, ok), cvk::out_of_range);
    fails([&] { return cvk::deform_conv2d(large, off_l, w, ok); }, "more than can be allocated");
    // A kernel whose column count C·KH·KW overflows.
    const cvk::strided_view<const float, 4> wide_w(ws.data(), {1, index_t{1} << 40, 1, 1},
                                                   {0, 0, 0, 0});
    const cvk::strided_view<const float, 4> wide_x(xs.data(), {1, index_t{1} << 40, 1, 1},
                                                   {0, 0, 0, 0});
    const cvk::strided_view<const float, 4> off1(os.data(), {1, 2, 1, 1}, {0, 0, 0, 0});
    CHECK_THROWS_AS(cvk::deform_conv2d(wide_x, off1, wide_w, cvk::deform_conv2d_params{}),
                    cvk::out_of_range);
  }
}
