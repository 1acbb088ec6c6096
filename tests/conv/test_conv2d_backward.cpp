// cvk — computer-vision kernels, header-only C++20.
// Tests of cvk/conv/conv2d_backward.hpp and cvk/conv/conv_transpose2d.hpp: the input, weight and
// bias gradients and the transposed conv against plain reference loops (the input gradient in
// scatter form, against the library's gather) on seeded random shapes in both layouts, both
// weight layouts and strided / negative-stride / transposed storage; against central finite
// differences of the forward conv2d in double; the adjoint identities; PyTorch 1.13 autograd and
// F.conv_transpose2d fixtures; bit-identical results for 1/2/3 threads; errors.
// Small-integer inputs make float sums exact, so most comparisons are exact.
// SPDX-License-Identifier: MIT
#include <cvk/conv.hpp>
#include <cvk/core/rng.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "support/conv_reference.hpp"
#include "support/fixtures.hpp"

namespace {

using cvk::index_t;
using cvk_test::both_layouts;
using cvk_test::both_weight_layouts;
using cvk_test::conv_problem;
using cvk_test::draw;
using cvk_test::storage;
using cvk_test::transpose_problem;

const char* name(cvk::layout l) { return l == cvk::layout::nhwc ? "nhwc" : "nchw"; }
const char* name(cvk::weight_layout l) { return l == cvk::weight_layout::hwio ? "hwio" : "oihw"; }

/// A problem with a non-empty output whose input rows and columns the stride may leave unread:
/// depthwise (with and without multiplier), groups, 1×1 images, dilation, asymmetric padding,
/// occasionally a huge stride.
conv_problem random_backward_problem(cvk::rng& gen) {
  for (;;) {
    conv_problem p;
    p.n = draw(gen, 1, 2);
    p.groups = draw(gen, 1, 4);
    const bool depthwise = gen.below(4) == 0;
    // 8 or more input channels per group take the kernels' plain order, fewer the expanded one.
    p.c = p.groups * (depthwise ? 1 : (gen.below(4) == 0 ? draw(gen, 8, 10) : draw(gen, 1, 5)));
    p.o = p.groups * (depthwise && gen.below(2) == 0 ? 1 : draw(gen, 1, 3));
    p.h = gen.below(6) == 0 ? 1 : draw(gen, 1, 10);
    p.w = gen.below(6) == 0 ? 1 : draw(gen, 1, 10);
    p.kh = draw(gen, 1, 4);
    p.kw = draw(gen, 1, 3);
    p.stride = {gen.below(8) == 0 ? 8 : draw(gen, 1, 3), draw(gen, 1, 3)};
    p.dilation = {draw(gen, 1, 2), draw(gen, 1, 3)};
    p.pad = {draw(gen, 0, 2), draw(gen, 0, 2), draw(gen, 0, 2), draw(gen, 0, 2)};
    if (p.h + p.pad[0] + p.pad[2] >= p.dilation[0] * (p.kh - 1) + 1 &&
        p.w + p.pad[1] + p.pad[3] >= p.dilation[1] * (p.kw - 1) + 1) {
      return p;
    }
  }
}

/// A random transposed conv with output_padding below the stride or (when the stride is 1)
/// below the dilation, and padding that leaves a non-empty output.
transpose_problem random_transpose_problem(cvk::rng& gen) {
  for (;;) {
    transpose_problem t;
    t.n = draw(gen, 1, 2);
    t.groups = draw(gen, 1, 3);
    t.c = t.groups * (gen.below(3) == 0 ? 1 : draw(gen, 1, 4));
    t.o = t.groups * (gen.below(4) == 0 ? draw(gen, 8, 9) : draw(gen, 1, 3));
    t.h = draw(gen, 1, 6);
    t.w = draw(gen, 1, 6);
    t.kh = draw(gen, 1, 4);
    t.kw = draw(gen, 1, 3);
    t.stride = {draw(gen, 1, 3), draw(gen, 1, 3)};
    t.dilation = {draw(gen, 1, 3), draw(gen, 1, 2)};
    t.pad = {draw(gen, 0, 2), draw(gen, 0, 2), draw(gen, 0, 2), draw(gen, 0, 2)};
    for (std::size_t a = 0; a < 2; ++a) {
      t.output_padding[a] = draw(gen, 0, std::max(t.stride[a], t.dilation[a]) - 1);
    }
    if (t.out_h() >= 1 && t.out_w() >= 1) return t;
  }
}

cvk::conv2d_params params_of(const conv_problem& p, cvk::layout l = cvk::layout::nchw,
                             cvk::weight_layout wl = cvk::weight_layout::oihw) {
  return cvk_test::conv_params(p, l, wl);
}

cvk::conv_transpose2d_params params_of(const transpose_problem& t,
                                       cvk::layout l = cvk::layout::nchw,
                                       cvk::weight_layout wl = cvk::weight_layout::oihw) {
  return {.stride = t.stride,
          .padding = t.pad,
          .output_padding = t.output_padding,
          .dilation = t.dilation,
          .groups = t.groups,
          .data_layout = l,
          .weights = wl};
}

/// Extents {N, C, H, W} in layout l.
std::array<index_t, 4> in_layout(const std::array<index_t, 4>& e, cvk::layout l) {
  return cvk::detail::from_nchw(e, l);
}

/// A weight of extents e (first axis, second axis, KH, KW) from OIHW-ordered values, in layout wl.
template <class T>
cvk::tensor<T, 4> weight_tensor(const std::vector<T>& w, const std::array<index_t, 4>& e,
                                cvk::weight_layout wl) {
  cvk::tensor<T, 4> t(cvk::detail::from_oihw(e, wl));
  const auto values = wl == cvk::weight_layout::oihw ? w : cvk_test::oihw_to_hwio(w, e);
  std::copy(values.begin(), values.end(), t.begin());
  return t;
}

/// The OIHW-ordered values of a weight view in layout wl.
template <class T>
std::vector<std::remove_const_t<T>> to_oihw(cvk::strided_view<T, 4> v, cvk::weight_layout wl) {
  return cvk_test::flatten(cvk::detail::permute_axes(v, cvk::detail::oihw_axes(wl)));
}

template <class T>
cvk::strided_view<const T, 4> nchw_view(const std::vector<T>& v, const std::array<index_t, 4>& e) {
  return cvk::strided_view<const T, 4>(v.data(), e);
}

/// Σ a·b in long double.
template <class T>
long double dot(const std::vector<T>& a, const std::vector<T>& b) {
  long double sum = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    sum += static_cast<long double>(a[i]) * static_cast<long double>(b[i]);
  }
  return sum;
}

}  // namespace

TEMPLATE_TEST_CASE(
    "conv2d backward: random shapes equal the reference loops (layouts, weight layouts, "
    "strides)",
    "[conv][conv2d_backward]", float, double) {
  using T = TestType;
  cvk::rng gen(2019, 11);
  int depthwise_runs = 0, plain_runs = 0;
  for (int trial = 0; trial < cvk_test::trials(40); ++trial) {
    const conv_problem p = random_backward_problem(gen);
    const auto x = cvk_test::small_integers<T>(gen, cvk_test::product(p.input_nchw()), 2);
    const auto w = cvk_test::small_integers<T>(gen, cvk_test::product(p.weight_oihw()), 2);
    const auto dy = cvk_test::small_integers<T>(gen, cvk_test::product(p.output_nchw()), 3);
    const auto dx_ref = cvk_test::reference_conv2d_backward_input(p, dy, w);
    const auto dw_ref = cvk_test::reference_conv2d_backward_weight(p, dy, x);
    const auto db_ref = cvk_test::reference_conv2d_backward_bias(dy, p.output_nchw());
    depthwise_runs += p.c == p.groups && p.o == p.groups ? 1 : 0;
    plain_runs += p.c / p.groups >= 8 ? 1 : 0;
    for (const auto l : both_layouts) {
      for (const auto wl : both_weight_layouts) {
        const auto weight = weight_tensor(w, p.weight_oihw(), wl);
        const auto params = params_of(p, l, wl);
        for (const auto s : cvk_test::all_storages) {
          INFO("trial " << trial << ": " << p.describe() << ", " << name(l) << ", " << name(wl)
                        << ", " << cvk_test::to_string(s));
          const auto gy = cvk_test::store(dy, p.output_nchw(), l, s);
          const auto in = cvk_test::store(x, p.input_nchw(), l, s);
          const cvk::strided_view<const T, 4> gy_view = gy.view, in_view = in.view;
          // Input gradient: value form and write-into form through the same storage.
          const auto dx =
              cvk::conv2d_backward_input(gy_view, weight, in_layout(p.input_nchw(), l), params);
          REQUIRE(cvk_test::to_nchw(dx.view(), l) == dx_ref);
          auto dx_out = cvk_test::store(std::vector<T>(dx_ref.size(), T(7)), p.input_nchw(), l, s);
          cvk::conv2d_backward_input(gy_view, weight, params, dx_out.view);
          REQUIRE(cvk_test::to_nchw(cvk::strided_view<const T, 4>(dx_out.view), l) == dx_ref);
          // Weight gradient.
          const auto dw = cvk::conv2d_backward_weight(gy_view, in_view, weight.extents(), params);
          REQUIRE(dw.extents() == weight.extents());
          REQUIRE(to_oihw(dw.view(), wl) == dw_ref);
          cvk::tensor<T, 4> dw_out(weight.extents());
          cvk::conv2d_backward_weight(gy_view, in_view, params, dw_out);
          REQUIRE(dw_out == dw);
          // Bias gradient.
          const auto db = cvk::conv2d_backward_bias(gy_view, params);
          REQUIRE(std::vector<T>(db.begin(), db.end()) == db_ref);
          std::vector<T> db_out(db_ref.size(), T(7));
          cvk::conv2d_backward_bias(gy_view, params, db_out);
          REQUIRE(db_out == db_ref);
        }
      }
    }
  }
  CHECK(depthwise_runs > 0);  // depthwise (no expansion copy) ran
  CHECK(plain_runs > 0);      // the plain order (8 or more channels per group) ran
}

/// Input and weight gradients of problem p on small integers (exact sums) equal the reference
/// loops, in both layouts, contiguous.
template <class T>
void check_exact_gradients(const conv_problem& p, cvk::rng& gen) {
  const auto x = cvk_test::small_integers<T>(gen, cvk_test::product(p.input_nchw()), 2);
  const auto w = cvk_test::small_integers<T>(gen, cvk_test::product(p.weight_oihw()), 2);
  const auto dy = cvk_test::small_integers<T>(gen, cvk_test::product(p.output_nchw()), 3);
  for (const auto l : both_layouts) {
    INFO(p.describe() << " " << name(l));
    const auto gy = cvk_test::store(dy, p.output_nchw(), l, storage::contiguous);
    const auto in = cvk_test::store(x, p.input_nchw(), l, storage::contiguous);
    const cvk::strided_view<const T, 4> gy_view = gy.view, in_view = in.view;
    const auto weight = nchw_view(w, p.weight_oihw());
    const auto params = params_of(p, l);
    REQUIRE(cvk_test::to_nchw(
                cvk::conv2d_backward_input(gy_view, weight, in_view.extents(), params).view(), l) ==
            cvk_test::reference_conv2d_backward_input(p, dy, w));
    REQUIRE(cvk_test::flatten(
                cvk::conv2d_backward_weight(gy_view, in_view, p.weight_oihw(), params).view()) ==
            cvk_test::reference_conv2d_backward_weight(p, dy, x));
  }
}

TEMPLATE_TEST_CASE("conv2d backward: edge shapes (1×1 image, kernel = padded input, huge stride)",
                   "[conv][conv2d_backward]", float, double) {
  using T = TestType;
  cvk::rng gen(8);
  std::vector<conv_problem> problems = cvk_test::edge_problems();
  problems[1].n = 2;  // batch 2: the weight gradient sums over images
  for (const auto& p : problems) {
    check_exact_gradients<T>(p, gen);
  }
}

TEMPLATE_TEST_CASE(
    "conv2d backward: the register tiles' shapes (output vectors, input channel tails, "
    "expanded rows, stride 1 as a forward conv)",
    "[conv][conv2d_backward]", float, double) {
  using T = TestType;
  cvk::rng gen(77);
  // {groups, I/g, O/g, K, stride, dilation, pad}: the plain weight-gradient tiles with 1–6
  // output vectors and input-channel tails, the expanded tiles with 4 + 2 + 1 rows and channel
  // tails, the stride-1 input gradient on every forward path (depthwise, small groups, large
  // groups, pointwise, generic) with padding inside, at and beyond the dilated kernel.
  struct shape {
    index_t groups, ig, og, k, stride, dilation, pad;
  };
  const shape shapes[] = {{1, 9, 21, 3, 1, 1, 1}, {2, 20, 40, 1, 1, 1, 0}, {1, 8, 3, 3, 2, 1, 1},
                          {3, 3, 7, 3, 1, 2, 2},  {37, 1, 1, 3, 1, 1, 1},  {5, 1, 5, 3, 2, 1, 3},
                          {4, 2, 3, 3, 1, 1, 1},  {1, 33, 17, 2, 1, 1, 2}, {2, 16, 16, 3, 1, 1, 0},
                          {1, 12, 1, 3, 1, 2, 5}, {150, 1, 1, 3, 1, 1, 1}, {130, 1, 1, 5, 2, 2, 3},
                          {6, 2, 2, 5, 1, 1, 2}};
  for (const auto& sh : shapes) {
    conv_problem p;
    p.n = 2;
    p.groups = sh.groups;
    p.c = sh.groups * sh.ig;
    p.o = sh.groups * sh.og;
    p.h = 7;
    p.w = 9;
    p.kh = sh.k;
    p.kw = sh.k;
    p.stride = {sh.stride, sh.stride};
    p.dilation = {sh.dilation, sh.dilation};
    p.pad = {sh.pad, sh.pad, sh.pad - 1 < 0 ? 0 : sh.pad - 1, sh.pad};
    check_exact_gradients<T>(p, gen);
  }
}

TEMPLATE_TEST_CASE(
    "conv_transpose2d: random shapes equal the scatter reference (output_padding, groups, "
    "layouts, strides)",
    "[conv][conv_transpose2d]", float, double) {
  using T = TestType;
  cvk::rng gen(2019, 12);
  for (int trial = 0; trial < cvk_test::trials(40); ++trial) {
    const transpose_problem t = random_transpose_problem(gen);
    const auto x = cvk_test::small_integers<T>(gen, cvk_test::product(t.input_nchw()), 2);
    const auto w = cvk_test::small_integers<T>(gen, cvk_test::product(t.weight_iohw()), 2);
    const auto b = cvk_test::small_integers<T>(gen, static_cast<std::size_t>(t.o), 3);
    const auto expected = cvk_test::reference_conv_transpose2d(t, x, w, b);
    const auto expected_no_bias = cvk_test::reference_conv_transpose2d(t, x, w, {});
    for (const auto l : both_layouts) {
      for (const auto wl : both_weight_layouts) {
        const auto weight = weight_tensor(w, t.weight_iohw(), wl);
        const auto params = params_of(t, l, wl);
        for (const auto s : cvk_test::all_storages) {
          INFO("trial " << trial << ": " << t.describe() << ", " << name(l) << ", " << name(wl)
                        << ", " << cvk_test::to_string(s));
          const auto input = cvk_test::store(x, t.input_nchw(), l, s);
          const cvk::strided_view<const T, 4> in = input.view;
          const auto y = cvk::conv_transpose2d(in, weight, b, params);
          REQUIRE(y.extents() ==
                  cvk::conv_transpose2d_output_shape(in.extents(), weight.extents(), params));
          REQUIRE(y.extents() == in_layout(t.output_nchw(), l));
          REQUIRE(cvk_test::to_nchw(y.view(), l) == expected);
          auto out = cvk_test::store(std::vector<T>(expected.size(), T(7)), t.output_nchw(), l, s);
          cvk::conv_transpose2d(in, weight, cvk::no_bias, params, out.view);
          REQUIRE(cvk_test::to_nchw(cvk::strided_view<const T, 4>(out.view), l) ==
                  expected_no_bias);
        }
      }
    }
  }
}

TEST_CASE("conv_transpose2d: fused activation after the bias", "[conv][conv_transpose2d]") {
  cvk::rng gen(5);
  const transpose_problem t = random_transpose_problem(gen);
  const auto x = cvk_test::small_integers<double>(gen, cvk_test::product(t.input_nchw()), 2);
  const auto w = cvk_test::small_integers<double>(gen, cvk_test::product(t.weight_iohw()), 2);
  const auto b = cvk_test::small_integers<double>(gen, static_cast<std::size_t>(t.o), 3);
  auto params = params_of(t);
  params.act = cvk::activation::clamp;
  params.clamp_min = -2;
  params.clamp_max = 3;
  auto expected = cvk_test::reference_conv_transpose2d(t, x, w, b);
  for (auto& v : expected) v = std::clamp(v, -2.0, 3.0);
  INFO(t.describe());
  REQUIRE(cvk_test::flatten(cvk::conv_transpose2d(nchw_view(x, t.input_nchw()),
                                                  nchw_view(w, t.weight_iohw()), b, params)
                                .view()) == expected);
}

TEMPLATE_TEST_CASE(
    "conv2d_backward_input equals conv_transpose2d with the output_padding the input shape "
    "implies",
    "[conv][conv2d_backward][conv_transpose2d]", float, double) {
  using T = TestType;
  cvk::rng gen(77);
  for (int trial = 0; trial < cvk_test::trials(30); ++trial) {
    const conv_problem p = random_backward_problem(gen);
    const auto w = cvk_test::random_reals<T>(gen, cvk_test::product(p.weight_oihw()));
    const auto dy = cvk_test::random_reals<T>(gen, cvk_test::product(p.output_nchw()));
    // The transposed conv's natural extent and the rows the stride left over.
    const index_t natural_h =
        (p.out_h() - 1) * p.stride[0] - p.pad[0] - p.pad[2] + p.dilation[0] * (p.kh - 1) + 1;
    const index_t natural_w =
        (p.out_w() - 1) * p.stride[1] - p.pad[1] - p.pad[3] + p.dilation[1] * (p.kw - 1) + 1;
    const cvk::conv_transpose2d_params tp{.stride = p.stride,
                                          .padding = p.pad,
                                          .output_padding = {p.h - natural_h, p.w - natural_w},
                                          .dilation = p.dilation,
                                          .groups = p.groups};
    INFO(p.describe());
    REQUIRE(tp.output_padding[0] < p.stride[0]);
    REQUIRE(tp.output_padding[1] < p.stride[1]);
    const auto dx =
        cvk::conv2d_backward_input(nchw_view(dy, p.output_nchw()), nchw_view(w, p.weight_oihw()),
                                   p.input_nchw(), params_of(p));
    const auto y =
        cvk::conv_transpose2d(nchw_view(dy, p.output_nchw()), nchw_view(w, p.weight_oihw()), tp);
    REQUIRE(dx == y);  // bit for bit: one kernel
  }
}

TEST_CASE("conv2d backward: central finite differences of conv2d (double)",
          "[conv][conv2d_backward][gradcheck]") {
  // L(x, w, b) = <conv2d(x, w) + b, gy> is linear in each argument, so the central difference
  // (L(v + e) − L(v − e)) / 2e equals the derivative up to the rounding of L.
  cvk::rng gen(4242);
  for (int trial = 0; trial < cvk_test::trials(6); ++trial) {
    conv_problem p = random_backward_problem(gen);
    p.n = 1;
    auto x = cvk_test::random_reals<double>(gen, cvk_test::product(p.input_nchw()));
    auto w = cvk_test::random_reals<double>(gen, cvk_test::product(p.weight_oihw()));
    auto b = cvk_test::random_reals<double>(gen, static_cast<std::size_t>(p.o));
    const auto gy = cvk_test::random_reals<double>(gen, cvk_test::product(p.output_nchw()));
    const auto params = params_of(p);
    const auto loss = [&] {
      const auto y =
          cvk::conv2d(nchw_view(x, p.input_nchw()), nchw_view(w, p.weight_oihw()), b, params);
      return dot(std::vector<double>(y.begin(), y.end()), gy);
    };
    const auto gy_view = nchw_view(gy, p.output_nchw());
    const auto dx =
        cvk::conv2d_backward_input(gy_view, nchw_view(w, p.weight_oihw()), p.input_nchw(), params);
    const auto dw =
        cvk::conv2d_backward_weight(gy_view, nchw_view(x, p.input_nchw()), p.weight_oihw(), params);
    const auto db = cvk::conv2d_backward_bias(gy_view, params);
    const double eps = 1e-3;
    const auto check = [&](std::vector<double>& v, const double* grad, const char* what) {
      for (std::size_t k = 0; k < v.size(); ++k) {
        const double saved = v[k];
        v[k] = saved + eps;
        const long double up = loss();
        v[k] = saved - eps;
        const long double down = loss();
        v[k] = saved;
        const double numeric = static_cast<double>((up - down) / (2 * eps));
        INFO(p.describe() << ": d" << what << "[" << k << "] analytic " << grad[k] << ", numeric "
                          << numeric);
        REQUIRE(std::fabs(numeric - grad[k]) <= 1e-8 * (1 + std::fabs(grad[k])));
      }
    };
    check(x, dx.data(), "x");
    check(w, dw.data(), "w");
    check(b, db.data(), "b");
  }
}

TEMPLATE_TEST_CASE(
    "conv2d backward: adjoint identities <conv2d(x, w), gy> = <x, dX(gy, w)> = "
    "<w, dW(gy, x)>",
    "[conv][conv2d_backward]", float, double) {
  using T = TestType;
  cvk::rng gen(31337);
  for (int trial = 0; trial < cvk_test::trials(30); ++trial) {
    const conv_problem p = random_backward_problem(gen);
    const auto x = cvk_test::random_reals<T>(gen, cvk_test::product(p.input_nchw()));
    const auto w = cvk_test::random_reals<T>(gen, cvk_test::product(p.weight_oihw()));
    const auto gy = cvk_test::random_reals<T>(gen, cvk_test::product(p.output_nchw()));
    const auto params = params_of(p, cvk::layout::nhwc);
    const auto xs = cvk_test::store(x, p.input_nchw(), cvk::layout::nhwc, storage::contiguous);
    const auto gys = cvk_test::store(gy, p.output_nchw(), cvk::layout::nhwc, storage::contiguous);
    const cvk::strided_view<const T, 4> x_view = xs.view, gy_view = gys.view;
    const auto weight = nchw_view(w, p.weight_oihw());
    const auto y = cvk::conv2d(x_view, weight, params);
    const auto dx = cvk::conv2d_backward_input(gy_view, weight, x_view.extents(), params);
    const auto dw = cvk::conv2d_backward_weight(gy_view, x_view, p.weight_oihw(), params);
    const long double forward =
        dot(cvk_test::flatten(y.view()), cvk_test::flatten(cvk::strided_view<const T, 4>(gy_view)));
    const long double through_input = dot(cvk_test::flatten(dx.view()), cvk_test::flatten(x_view));
    const long double through_weight = dot(std::vector<T>(dw.begin(), dw.end()), w);
    // Each side rounds every product sum once per element in T: relative error ~ terms·eps.
    const long double terms = static_cast<long double>(cvk_test::product(p.weight_oihw()) *
                                                       cvk_test::product(p.output_nchw()));
    const long double tolerance = 4 * std::numeric_limits<T>::epsilon() * (terms + 8);
    INFO(p.describe() << ": " << static_cast<double>(forward) << " "
                      << static_cast<double>(through_input) << " "
                      << static_cast<double>(through_weight));
    REQUIRE(std::fabs(forward - through_input) <= tolerance);
    REQUIRE(std::fabs(forward - through_weight) <= tolerance);
  }
}

TEMPLATE_TEST_CASE("conv2d backward and conv_transpose2d: bit-identical for 1, 2 and 3 threads",
                   "[conv][conv2d_backward][conv_transpose2d]", float, double) {
  using T = TestType;
  cvk::rng gen(100);
  // Stride 1 runs the input gradient as a forward conv, stride 2 the gather.
  for (const auto& [groups, vertical_stride] :
       {std::pair<index_t, index_t>{1, 2}, {4, 2}, {32, 2}, {1, 1}, {4, 1}, {32, 1}}) {
    conv_problem p;
    p.n = 2;
    p.c = 32;
    p.o = 32;
    p.groups = groups;
    p.h = 13;
    p.w = 11;
    p.kh = 3;
    p.kw = 3;
    p.stride = {vertical_stride, 1};
    p.pad = {1, 1, 1, 1};
    // Real-valued data: the sums round, so any change of order would show.
    const auto x = cvk_test::random_reals<T>(gen, cvk_test::product(p.input_nchw()));
    const auto w = cvk_test::random_reals<T>(gen, cvk_test::product(p.weight_oihw()));
    const auto gy = cvk_test::random_reals<T>(gen, cvk_test::product(p.output_nchw()));
    for (const auto l : both_layouts) {
      const auto xs = cvk_test::store(x, p.input_nchw(), l, storage::contiguous);
      const auto gys = cvk_test::store(gy, p.output_nchw(), l, storage::contiguous);
      const cvk::strided_view<const T, 4> x_view = xs.view, gy_view = gys.view;
      const auto weight = nchw_view(w, p.weight_oihw());
      std::vector<cvk::tensor<T, 4>> dx, dw, y;
      std::vector<cvk::tensor<T, 1>> db;
      for (const int threads : {1, 2, 3}) {
        auto params = params_of(p, l);
        params.threads = threads;
        dx.push_back(cvk::conv2d_backward_input(gy_view, weight, x_view.extents(), params));
        dw.push_back(cvk::conv2d_backward_weight(gy_view, x_view, p.weight_oihw(), params));
        db.push_back(cvk::conv2d_backward_bias(gy_view, params));
        // The transposed conv of x with the conv weight read as I×O/g×KH×KW.
        const auto tw = nchw_view(w, {p.c, p.o / groups, p.kh, p.kw});
        y.push_back(cvk::conv_transpose2d(x_view, tw,
                                          {.stride = {vertical_stride, 1},
                                           .padding = {1, 1, 1, 1},
                                           .groups = groups,
                                           .data_layout = l,
                                           .threads = threads}));
      }
      INFO("groups " << groups << " stride " << vertical_stride << " " << name(l));
      for (std::size_t k = 1; k < 3; ++k) {
        REQUIRE(dx[k] == dx[0]);
        REQUIRE(dw[k] == dw[0]);
        REQUIRE(db[k] == db[0]);
        REQUIRE(y[k] == y[0]);
      }
    }
  }
}

TEST_CASE("conv2d backward: a cvk::view with negative strides as grad_weight and grad_output",
          "[conv][conv2d_backward]") {
  cvk::rng gen(12);
  conv_problem p;
  p.n = 2;
  p.c = 4;
  p.o = 6;
  p.groups = 2;
  p.h = 6;
  p.w = 5;
  p.kh = 3;
  p.kw = 2;
  p.pad = {1, 0, 1, 1};
  const auto x = cvk_test::small_integers<float>(gen, cvk_test::product(p.input_nchw()), 2);
  const auto dy = cvk_test::small_integers<float>(gen, cvk_test::product(p.output_nchw()), 2);
  // grad_output read with every axis reversed.
  std::vector<float> reversed(dy.rbegin(), dy.rend());
  const auto e = p.output_nchw();
  const auto gy = cvk::view(reversed.data() + reversed.size() - 1, {e[0], e[1], e[2], e[3]},
                            {-e[1] * e[2] * e[3], -e[2] * e[3], -e[3], index_t{-1}});
  // grad_weight written back to front.
  const auto we = p.weight_oihw();
  std::vector<float> dw(cvk_test::product(we), -1.0f);
  auto out = cvk::view(dw.data() + dw.size() - 1, {we[0], we[1], we[2], we[3]},
                       {-we[1] * we[2] * we[3], -we[2] * we[3], -we[3], index_t{-1}});
  cvk::conv2d_backward_weight(gy, nchw_view(x, p.input_nchw()), params_of(p), out);
  const auto expected = cvk_test::reference_conv2d_backward_weight(p, dy, x);
  REQUIRE(std::vector<float>(dw.rbegin(), dw.rend()) == expected);
  const auto db = cvk::conv2d_backward_bias(gy);
  REQUIRE(std::vector<float>(db.begin(), db.end()) ==
          cvk_test::reference_conv2d_backward_bias(dy, e));
}

namespace {

/// Every element within (terms + 2)·eps·terms·max|a|·max|b| (both results are within
/// half of that of the exact sum of `terms` products of factors bounded by max|a|, max|b|).
template <class T>
void require_close(const std::vector<T>& got, const std::vector<T>& expected, long double terms,
                   long double max_a, long double max_b, const char* what) {
  REQUIRE(got.size() == expected.size());
  const long double bound =
      2 * (terms + 2) * std::numeric_limits<T>::epsilon() * (terms * max_a * max_b + 4);
  for (std::size_t i = 0; i < got.size(); ++i) {
    INFO(what << " element " << i << ": cvk " << got[i] << ", torch " << expected[i]);
    REQUIRE(std::fabs(static_cast<long double>(got[i]) - expected[i]) <= bound);
  }
}

template <class T>
long double max_abs(const std::vector<T>& v) {
  long double m = 0;
  for (const T value : v) m = std::max(m, std::fabs(static_cast<long double>(value)));
  return m;
}

}  // namespace

TEMPLATE_TEST_CASE(
    "conv2d backward and conv_transpose2d: PyTorch 1.13 golden fixtures (autograd grads, "
    "F.conv_transpose2d)",
    "[conv][conv2d_backward][conv_transpose2d][fixtures]", float, double) {
  using T = TestType;
  const std::string dtype = std::is_same_v<T, float> ? "float32" : "float64";
  const cvk_test::fixture_file file(cvk_test::test_data_path("conv2d_backward_torch.txt"));
  const int conv_cases = std::stoi(file.meta("conv_cases"));
  const int transpose_cases = std::stoi(file.meta("transpose_cases"));
  REQUIRE(conv_cases >= 12);
  REQUIRE(transpose_cases >= 8);
  for (int k = 0; k < conv_cases; ++k) {
    const std::string prefix = "conv" + std::to_string(k) + "/";
    const auto v = file.table(prefix + "params").values<index_t>();
    conv_problem p;
    cvk_test::read_conv_fields(p, v);
    const auto table = [&](const char* what) {
      return file.table(prefix + dtype + "/" + what).values<T>();
    };
    const auto x = table("input"), w = table("weight"), gy = table("grad_output");
    const auto dx_torch = table("grad_input"), dw_torch = table("grad_weight"),
               db_torch = table("grad_bias");
    INFO("fixture " << prefix << dtype << ": " << p.describe());
    for (const auto l : both_layouts) {
      for (const auto wl : both_weight_layouts) {
        const auto params = params_of(p, l, wl);
        const auto xs = cvk_test::store(x, p.input_nchw(), l, storage::contiguous);
        const auto gys = cvk_test::store(gy, p.output_nchw(), l, storage::contiguous);
        const cvk::strided_view<const T, 4> x_view = xs.view, gy_view = gys.view;
        const auto weight = weight_tensor(w, p.weight_oihw(), wl);
        const auto dx = cvk::conv2d_backward_input(gy_view, weight, x_view.extents(), params);
        const auto dw = cvk::conv2d_backward_weight(gy_view, x_view, weight.extents(), params);
        const auto db = cvk::conv2d_backward_bias(gy_view, params);
        require_close(cvk_test::to_nchw(dx.view(), l), dx_torch,
                      static_cast<long double>(p.o / p.groups * p.kh * p.kw), max_abs(w),
                      max_abs(gy), "grad_input");
        require_close(to_oihw(dw.view(), wl), dw_torch,
                      static_cast<long double>(p.n * p.out_h() * p.out_w()), max_abs(x),
                      max_abs(gy), "grad_weight");
        require_close(std::vector<T>(db.begin(), db.end()), db_torch,
                      static_cast<long double>(p.n * p.out_h() * p.out_w()), 1, max_abs(gy),
                      "grad_bias");
      }
    }
  }
  for (int k = 0; k < transpose_cases; ++k) {
    const std::string prefix = "transpose" + std::to_string(k) + "/";
    const auto v = file.table(prefix + "params").values<index_t>();
    transpose_problem t;
    cvk_test::read_conv_fields(t, v);
    t.output_padding = {v[16], v[17]};
    const bool has_bias = v[18] != 0;
    const auto x = file.table(prefix + dtype + "/input").values<T>();
    const auto w = file.table(prefix + dtype + "/weight").values<T>();
    const auto b = file.table(prefix + dtype + "/bias").values<T>();
    const auto expected = file.table(prefix + dtype + "/output").values<T>();
    const auto shape = file.table(prefix + dtype + "/output_shape").values<index_t>();
    INFO("fixture " << prefix << dtype << ": " << t.describe());
    REQUIRE(std::vector<index_t>{t.n, t.o, t.out_h(), t.out_w()} == shape);
    for (const auto l : both_layouts) {
      for (const auto wl : both_weight_layouts) {
        const auto params = params_of(t, l, wl);
        const auto xs = cvk_test::store(x, t.input_nchw(), l, storage::contiguous);
        const cvk::strided_view<const T, 4> x_view = xs.view;
        const auto weight = weight_tensor(w, t.weight_iohw(), wl);
        const auto y = has_bias ? cvk::conv_transpose2d(x_view, weight, b, params)
                                : cvk::conv_transpose2d(x_view, weight, params);
        REQUIRE(y.extents() == in_layout(t.output_nchw(), l));
        require_close(cvk_test::to_nchw(y.view(), l), expected,
                      static_cast<long double>(t.c / t.groups * t.kh * t.kw), max_abs(x),
                      max_abs(w), "output");
      }
    }
  }
}

TEST_CASE(
    "conv2d backward and conv_transpose2d: bad input raises cvk errors naming the function, "
    "the argument and the shapes",
    "[conv][conv2d_backward][conv_transpose2d][errors]") {
  using Catch::Matchers::Contains;
  // conv2d of x 2×4×5×5 with w 6×2×3×3 in 2 groups: y 2×6×3×3.
  const std::vector<float> x(2 * 4 * 5 * 5, 1.0f), w(6 * 2 * 3 * 3, 1.0f), gy(2 * 6 * 3 * 3, 1.0f);
  const cvk::strided_view<const float, 4> input(x.data(), {2, 4, 5, 5});
  const cvk::strided_view<const float, 4> weight(w.data(), {6, 2, 3, 3});
  const cvk::strided_view<const float, 4> grad(gy.data(), {2, 6, 3, 3});
  const std::array<index_t, 4> input_shape{2, 4, 5, 5}, weight_shape{6, 2, 3, 3};
  const cvk::conv2d_params ok{.groups = 2};
  REQUIRE(cvk::conv2d_backward_input(grad, weight, input_shape, ok).extents() == input_shape);
  REQUIRE(cvk::conv2d_backward_weight(grad, input, weight_shape, ok).extents() == weight_shape);

  SECTION("wrong rank (runtime-rank tensors)") {
    const cvk::dynamic_view<const float> rank3(
        gy.data(), 3, cvk::dynamic_view<const float>::extents_type{2, 6, 9},
        cvk::dynamic_view<const float>::extents_type{54, 9, 1});
    CHECK_THROWS_AS(cvk::conv2d_backward_input(rank3, weight, input_shape, ok), cvk::shape_error);
    CHECK_THROWS_WITH(cvk::conv2d_backward_bias(rank3, ok),
                      Contains("conv2d_backward_bias: grad_output must have rank 4"));
  }
  SECTION("channels not divisible by groups, channel mismatches") {
    CHECK_THROWS_AS(cvk::conv2d_backward_input(grad, weight, input_shape, {.groups = 3}),
                    cvk::shape_error);
    CHECK_THROWS_WITH(cvk::conv2d_backward_input(grad, weight, input_shape, {.groups = 4}),
                      Contains("conv2d_backward_input: params.groups (4) must divide the input "
                               "channels (4) and the output channels (6)"));
    CHECK_THROWS_WITH(
        cvk::conv2d_backward_weight(grad, input, weight_shape, {}),
        Contains("conv2d_backward_weight: weight has 2 input channels per group, but input has "
                 "4 channels in 1 groups") &&
            Contains("input 2×4×5×5 (N×C×H×W), weight_shape 6×2×3×3 (O×I/groups×KH×KW)"));
    // grad_output with 5 channels for a weight of 6 outputs.
    const cvk::strided_view<const float, 4> five(gy.data(), {2, 5, 3, 3});
    CHECK_THROWS_AS(cvk::conv2d_backward_input(five, weight, input_shape, ok), cvk::shape_error);
    CHECK_THROWS_WITH(cvk::conv2d_backward_weight(five, input, weight_shape, ok),
                      Contains("conv2d_backward_weight: grad_output must be N×C×H×W = 2×6×3×3 "
                               "(the conv2d output of input 2×4×5×5") &&
                          Contains("got 2×5×3×3"));
  }
  SECTION("input_shape that no stride or padding maps to grad_output") {
    CHECK_THROWS_WITH(
        cvk::conv2d_backward_input(grad, weight, {2, 4, 7, 5}, ok),
        Contains("conv2d_backward_input: grad_output must be N×C×H×W = 2×6×5×3 (the conv2d "
                 "output of input_shape 2×4×7×5 (N×C×H×W), weight 6×2×3×3") &&
            Contains("got 2×6×3×3"));
    // With stride 2, inputs of 5 and 6 rows both give 2 output rows; 7 gives 3.
    const std::vector<float> g2(2 * 6 * 2 * 2, 1.0f);
    const cvk::strided_view<const float, 4> strided(g2.data(), {2, 6, 2, 2});
    const cvk::conv2d_params s2{.stride = {2, 2}, .groups = 2};
    CHECK(cvk::conv2d_backward_input(strided, weight, {2, 4, 6, 6}, s2).extents() ==
          std::array<index_t, 4>{2, 4, 6, 6});
    CHECK_THROWS_AS(cvk::conv2d_backward_input(strided, weight, {2, 4, 7, 6}, s2),
                    cvk::shape_error);
    cvk::tensor<float, 4> wrong_grad_input(std::array<index_t, 4>{2, 4, 4, 5});
    CHECK_THROWS_WITH(
        cvk::conv2d_backward_input(grad, weight, ok, wrong_grad_input),
        Contains("conv2d_backward_input: grad_output must be") && Contains("grad_input 2×4×4×5"));
  }
  SECTION("stride, dilation, padding, groups, act, threads out of their domains") {
    CHECK_THROWS_AS(cvk::conv2d_backward_input(grad, weight, input_shape, {.stride = {0, 1}}),
                    cvk::invalid_argument);
    CHECK_THROWS_WITH(
        cvk::conv2d_backward_weight(grad, input, weight_shape, {.stride = {1, -2}, .groups = 2}),
        Contains("conv2d_backward_weight: params.stride must be >= 1, got {1, -2}"));
    CHECK_THROWS_WITH(
        cvk::conv2d_backward_input(grad, weight, input_shape, {.dilation = {0, 1}, .groups = 2}),
        Contains("conv2d_backward_input: params.dilation must be >= 1"));
    CHECK_THROWS_WITH(cvk::conv2d_backward_input(grad, weight, input_shape,
                                                 {.padding = {0, -1, 0, 0}, .groups = 2}),
                      Contains("params.padding (top, left, bottom, right) must be >= 0"));
    CHECK_THROWS_WITH(cvk::conv2d_backward_bias(grad, {.groups = 0}),
                      Contains("conv2d_backward_bias: params.groups must be >= 1"));
    CHECK_THROWS_WITH(cvk::conv2d_backward_input(grad, weight, input_shape,
                                                 {.groups = 2, .act = cvk::activation::relu}),
                      Contains("conv2d_backward_input: params.act must be activation::none"));
    CHECK_THROWS_AS(cvk::conv2d_backward_bias(grad, {.threads = -1}), cvk::invalid_argument);
  }
  SECTION("kernel larger than the padded input") {
    CHECK_THROWS_WITH(
        cvk::conv2d_backward_weight(grad, input, weight_shape, {.dilation = {3, 1}, .groups = 2}),
        Contains("conv2d_backward_weight: the dilated kernel (7) is larger than the padded "
                 "input (5) along H"));
  }
  SECTION("outputs of the wrong shape") {
    cvk::tensor<float, 4> dw(std::array<index_t, 4>{6, 2, 3, 2});
    CHECK_THROWS_AS(cvk::conv2d_backward_weight(grad, input, ok, dw), cvk::shape_error);
    CHECK_THROWS_WITH(cvk::conv2d_backward_weight(grad, input, ok, dw),
                      Contains("conv2d_backward_weight: grad_output must be N×C×H×W = 2×6×3×4") &&
                          Contains("grad_weight 6×2×3×2"));
    std::vector<float> db(5);
    CHECK_THROWS_WITH(cvk::conv2d_backward_bias(grad, ok, db),
                      Contains("conv2d_backward_bias: grad_bias must be 6, got 5"));
  }
  SECTION("sizes whose products overflow, buffers too large to allocate") {
    const index_t huge = index_t{1} << 40;
    CHECK_THROWS_AS(cvk::conv2d_backward_input(grad, weight, {1, 4, huge, huge}, ok),
                    cvk::out_of_range);
    CHECK_THROWS_WITH(cvk::conv2d_backward_input(grad, weight, {1, 4, huge, huge}, ok),
                      Contains("conv2d_backward_input: the output") && Contains("overflows"));
    // A broadcast grad_output of 2^18 × 2^18 pixels: the input gradient would need 2^38 floats.
    const index_t big = index_t{1} << 18;
    const std::vector<float> w1(6 * 2, 1.0f);
    const cvk::strided_view<const float, 4> pointwise(w1.data(), {6, 2, 1, 1});
    const cvk::strided_view<const float, 4> broadcast(gy.data(), {1, 6, big, big}, {0, 1, 0, 0});
    CHECK_THROWS_WITH(
        cvk::conv2d_backward_input(broadcast, pointwise, {1, 4, big, big}, ok),
        Contains("conv2d_backward_input: grad_input") && Contains("more than can be allocated"));
  }
  SECTION("conv_transpose2d") {
    // conv_transpose2d of x 2×4×5×5 with weight 4×3×3×3 in 2 groups: 2×6×7×7.
    const std::vector<float> tw(4 * 3 * 3 * 3, 1.0f);
    const cvk::strided_view<const float, 4> tweight(tw.data(), {4, 3, 3, 3});
    const cvk::conv_transpose2d_params tok{.groups = 2};
    REQUIRE(cvk::conv_transpose2d(input, tweight, tok).extents() ==
            std::array<index_t, 4>{2, 6, 7, 7});
    CHECK_THROWS_AS(cvk::conv_transpose2d(input, tweight, {.groups = 3}), cvk::shape_error);
    CHECK_THROWS_WITH(cvk::conv_transpose2d(input, tweight, {.groups = 3}),
                      Contains("conv_transpose2d: params.groups (3) must divide the input "
                               "channels (4); shapes input 2×4×5×5 (N×C×H×W), weight 4×3×3×3 "
                               "(I×O/groups×KH×KW)"));
    CHECK_THROWS_WITH(cvk::conv_transpose2d(input, weight, tok),
                      Contains("conv_transpose2d: weight must have the input's 4 channels along "
                               "its I axis, got 6"));
    CHECK_THROWS_AS(cvk::conv_transpose2d(input, tweight, {.stride = {0, 1}}),
                    cvk::invalid_argument);
    CHECK_THROWS_WITH(cvk::conv_transpose2d(input, tweight, {.dilation = {1, 0}, .groups = 2}),
                      Contains("conv_transpose2d: params.dilation must be >= 1"));
    CHECK_THROWS_AS(cvk::conv_transpose2d(input, tweight, {.padding = {-1, 0, 0, 0}}),
                    cvk::invalid_argument);
    CHECK_THROWS_WITH(
        cvk::conv_transpose2d(input, tweight,
                              {.stride = {2, 2}, .output_padding = {2, 0}, .groups = 2}),
        Contains("conv_transpose2d: params.output_padding[0] must be >= 0 and smaller than "
                 "params.stride[0] or params.dilation[0] (PyTorch), got 2 with stride 2 and "
                 "dilation 1"));
    CHECK_THROWS_AS(cvk::conv_transpose2d(input, tweight, {.output_padding = {0, -1}}),
                    cvk::invalid_argument);
    // output_padding 1 with stride 1 is allowed when the dilation is 2.
    CHECK(cvk::conv_transpose2d_output_shape(
              {2, 4, 5, 5}, {4, 3, 3, 3},
              {.output_padding = {1, 0}, .dilation = {2, 1}, .groups = 2}) ==
          std::array<index_t, 4>{2, 6, 10, 7});
    CHECK_THROWS_WITH(
        cvk::conv_transpose2d(input, tweight, {.padding = {4, 0, 3, 0}, .groups = 2}),
        Contains("conv_transpose2d: params.padding removes 7 of the 7 output rows or columns "
                 "along H, the output would be empty"));
    const std::vector<float> short_bias(5);
    CHECK_THROWS_WITH(cvk::conv_transpose2d(input, tweight, short_bias, tok),
                      Contains("conv_transpose2d: bias must have 6 values") && Contains("got 5"));
    cvk::tensor<float, 4> out(std::array<index_t, 4>{2, 6, 7, 6});
    CHECK_THROWS_WITH(cvk::conv_transpose2d(input, tweight, cvk::no_bias, tok, out),
                      Contains("conv_transpose2d: out must be N×C×H×W = 2×6×7×7, got 2×6×7×6"));
    const std::vector<float> empty_image;
    CHECK_THROWS_WITH(
        cvk::conv_transpose2d(cvk::strided_view<const float, 4>(empty_image.data(), {1, 4, 0, 5}),
                              tweight, tok),
        Contains("conv_transpose2d: input must have at least one pixel along H"));
    CHECK_THROWS_WITH(
        cvk::conv_transpose2d_output_shape({1, 4, index_t{1} << 62, 5}, {4, 3, 3, 3},
                                           {.stride = {4, 1}, .groups = 2}),
        Contains("conv_transpose2d_output_shape: the output") && Contains("overflows"));
  }
}
