// cvk — computer-vision kernels, header-only C++20.
// Tests of cvk/conv/conv2d.hpp: every path against the plain reference loop on seeded random
// shapes (both layouts, both weight layouts, strided / negative-stride / transposed inputs,
// Eigen, xtensor and DLPack tensors), grouped = per-group dense convs concatenated, bit-identical
// results for 1/2/3 threads, plan reuse, epilogues, ONNX auto_pad, PyTorch 1.13 fixtures, errors.
// Small-integer inputs make float sums exact, so most comparisons are exact.
// SPDX-License-Identifier: MIT
#include <cvk/conv.hpp>
#include <cvk/core/rng.hpp>

#if defined(CVK_TEST_HAS_EIGEN)
#  include <cvk/adapt/eigen.hpp>
#endif
#if defined(CVK_TEST_HAS_XTENSOR)
#  include <cvk/adapt/xtensor.hpp>
#endif
#if defined(CVK_TEST_HAS_DLPACK)
#  include <cvk/adapt/dlpack.hpp>
#endif

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "support/compare.hpp"
#include "support/conv_reference.hpp"
#include "support/fixtures.hpp"

namespace {

using cvk::index_t;
using cvk_test::conv_problem;

// The shared test support: layouts, storages, store / to_nchw, random data, draw.
using cvk_test::all_storages;
using cvk_test::both_layouts;
using cvk_test::both_weight_layouts;
using cvk_test::conv_params;
using cvk_test::draw;
using cvk_test::random_reals;
using cvk_test::small_integers;
using cvk_test::storage;
using cvk_test::store;
using cvk_test::to_nchw;
using cvk_test::to_string;

/// A random problem with a non-empty output: odd sizes, 1×1 images, groups with multipliers,
/// depthwise, asymmetric padding, dilation, occasionally a huge stride.
conv_problem random_problem(cvk::rng& gen) {
  for (;;) {
    conv_problem p;
    p.n = draw(gen, 1, 2);
    p.groups = draw(gen, 1, 4);
    const index_t per_group_in = gen.below(3) == 0 ? 1 : draw(gen, 1, 4);
    p.c = p.groups * per_group_in;
    p.o = p.groups * draw(gen, 1, 3);
    p.h = gen.below(6) == 0 ? 1 : draw(gen, 1, 9);
    p.w = gen.below(6) == 0 ? 1 : draw(gen, 1, 9);
    p.kh = draw(gen, 1, 4);
    p.kw = draw(gen, 1, 4);
    p.stride = {gen.below(8) == 0 ? 9 : draw(gen, 1, 3), draw(gen, 1, 3)};
    p.dilation = {draw(gen, 1, 3), draw(gen, 1, 2)};
    p.pad = {draw(gen, 0, 2), draw(gen, 0, 2), draw(gen, 0, 2), draw(gen, 0, 2)};
    if (p.h + p.pad[0] + p.pad[2] >= p.dilation[0] * (p.kh - 1) + 1 &&
        p.w + p.pad[1] + p.pad[3] >= p.dilation[1] * (p.kw - 1) + 1) {
      return p;
    }
  }
}

/// A problem's data: NCHW input, OIHW weight, bias.
template <class T>
struct conv_data {
  conv_problem p;
  std::vector<T> x, w, b;
};

template <class T>
conv_data<T> integer_data(cvk::rng& gen, const conv_problem& p) {
  return {p, small_integers<T>(gen, cvk_test::product(p.input_nchw()), 2),
          small_integers<T>(gen, cvk_test::product(p.weight_oihw()), 2),
          small_integers<T>(gen, static_cast<std::size_t>(p.o), 3)};
}

/// The weight as a tensor in layout wl.
template <class T>
cvk::tensor<T, 4> weight_tensor(const conv_data<T>& d, cvk::weight_layout wl) {
  const auto e = d.p.weight_oihw();
  if (wl == cvk::weight_layout::oihw) {
    cvk::tensor<T, 4> t(e);
    std::copy(d.w.begin(), d.w.end(), t.begin());
    return t;
  }
  cvk::tensor<T, 4> t(std::array<index_t, 4>{e[2], e[3], e[1], e[0]});
  const auto hwio = cvk_test::oihw_to_hwio(d.w, e);
  std::copy(hwio.begin(), hwio.end(), t.begin());
  return t;
}

}  // namespace

TEMPLATE_TEST_CASE(
    "conv2d: random shapes equal the reference loop (layouts, weight layouts, "
    "strides)",
    "[conv][conv2d]", float, double) {
  using T = TestType;
  cvk::rng gen(2019, 10);
  int depthwise_runs = 0;
  for (int trial = 0; trial < cvk_test::trials(60); ++trial) {
    const conv_problem p = random_problem(gen);
    const auto d = integer_data<T>(gen, p);
    const auto expected = cvk_test::reference_conv2d(p, d.x, d.w, d.b);
    for (const auto l : both_layouts) {
      for (const auto wl : both_weight_layouts) {
        const auto weight = weight_tensor(d, wl);
        for (const auto s : all_storages) {
          INFO("trial " << trial << ": " << p.describe() << ", layout "
                        << (l == cvk::layout::nhwc ? "nhwc" : "nchw") << ", weights "
                        << (wl == cvk::weight_layout::hwio ? "hwio" : "oihw") << ", input "
                        << to_string(s));
          const auto input = store(d.x, p.input_nchw(), l, s);
          const auto params = conv_params(p, l, wl);
          const cvk::strided_view<const T, 4> in = input.view;
          const auto y = cvk::conv2d(in, weight, d.b, params);
          REQUIRE(y.extents() == cvk::conv2d_output_shape(in.extents(), weight.extents(), params));
          REQUIRE(to_nchw(y.view(), l) == expected);
          // Write-into form, through an output stored with the same strides.
          auto out = store(std::vector<T>(expected.size(), T(7)), p.output_nchw(), l, s);
          cvk::conv2d(in, weight, d.b, params, out.view);
          REQUIRE(to_nchw(cvk::strided_view<const T, 4>(out.view), l) == expected);
        }
        const cvk::conv2d_plan<T> plan(weight, d.b, conv_params(p, l, wl));
        depthwise_runs += plan.path() == cvk::conv2d_path::depthwise_nhwc ? 1 : 0;
      }
    }
  }
  CHECK(depthwise_runs > 0);  // the depthwise path was among those tested
}

TEMPLATE_TEST_CASE("conv2d: edge shapes (1×1 image, kernel = padded input, huge stride)",
                   "[conv][conv2d]", float, double) {
  using T = TestType;
  cvk::rng gen(7);
  const std::vector<conv_problem> problems = cvk_test::edge_problems();
  for (const auto& p : problems) {
    const auto d = integer_data<T>(gen, p);
    const auto expected = cvk_test::reference_conv2d(p, d.x, d.w, d.b);
    for (const auto l : both_layouts) {
      INFO(p.describe());
      const auto input = store(d.x, p.input_nchw(), l, storage::contiguous);
      const auto y =
          cvk::conv2d(cvk::strided_view<const T, 4>(input.view),
                      weight_tensor(d, cvk::weight_layout::oihw), d.b, conv_params(p, l));
      REQUIRE(to_nchw(y.view(), l) == expected);
    }
  }
}

TEMPLATE_TEST_CASE(
    "conv2d: the depthwise path (multiplier, channel tails, wide rows) equals the "
    "reference",
    "[conv][conv2d][depthwise]", float, double) {
  using T = TestType;
  cvk::rng gen(31);
  for (const index_t channels : {1, 5, 16, 17, 37, 115}) {  // 115 float: 4 + 2 + 1 vectors
    for (const index_t multiplier : {1, 2, 3}) {
      for (const index_t stride : {1, 2}) {
        conv_problem p;
        p.n = 2;
        p.c = channels;
        p.groups = channels;
        p.o = channels * multiplier;
        p.h = 6;
        p.w = 23;
        p.kh = 3;
        p.kw = 3;
        p.stride = {stride, stride};
        p.pad = {1, 1, 1, 1};
        p.dilation = {1, stride};
        const auto d = integer_data<T>(gen, p);
        const auto expected = cvk_test::reference_conv2d(p, d.x, d.w, d.b);
        for (const auto l : both_layouts) {
          INFO(p.describe() << (l == cvk::layout::nhwc ? " nhwc" : " nchw"));
          const auto params = conv_params(p, l);
          const cvk::conv2d_plan<T> plan(weight_tensor(d, cvk::weight_layout::oihw), d.b, params);
          REQUIRE(plan.path() == cvk::conv2d_path::depthwise_nhwc);
          const auto input = store(d.x, p.input_nchw(), l, storage::contiguous);
          REQUIRE(to_nchw(plan(cvk::strided_view<const T, 4>(input.view)).view(), l) == expected);
        }
      }
    }
  }
}

TEMPLATE_TEST_CASE(
    "conv2d: every vector path (small groups, large groups, pointwise, generic) equals the "
    "reference over lane tails, tile tails and borders",
    "[conv][conv2d][paths]", float, double) {
  using T = TestType;
  cvk::rng gen(2024);
  // Families of shapes aimed at each path: group counts around the vector width (lanes of
  // empty groups), output channels per group around it (partial vectors, 1–4 vectors per
  // tile), widths around the tile sizes (12, 4, shifted last tiles, border-only rows).
  struct family {
    index_t groups_lo, groups_hi, in_lo, in_hi, out_lo, out_hi, kernel_lo, kernel_hi;
  };
  const family families[] = {
      {2, 40, 2, 8, 1, 8, 1, 3},   // small groups
      {1, 3, 1, 20, 8, 70, 1, 3},  // large groups (and pointwise with 1×1)
      {1, 4, 9, 24, 3, 40, 1, 1},  // pointwise
      {2, 3, 9, 16, 1, 3, 2, 3},   // generic
      {1, 1, 1, 16, 1, 3, 2, 3},   // one group, few outputs: large groups on (half) vectors
  };
  std::array<int, 5> hits{};
  for (int trial = 0; trial < 80; ++trial) {  // every family often enough to reach its path
    const family& f = families[trial % 5];
    conv_problem p;
    p.n = draw(gen, 1, 2);
    p.groups = draw(gen, f.groups_lo, f.groups_hi);
    p.c = p.groups * draw(gen, f.in_lo, f.in_hi);
    p.o = p.groups * draw(gen, f.out_lo, f.out_hi);
    p.kh = draw(gen, f.kernel_lo, f.kernel_hi);
    p.kw = draw(gen, f.kernel_lo, f.kernel_hi);
    p.h = draw(gen, 1, 5);
    p.w = gen.below(4) == 0 ? draw(gen, 1, 4) : draw(gen, 5, 31);
    p.stride = {draw(gen, 1, 2), draw(gen, 1, 2)};
    p.dilation = {1, draw(gen, 1, 2)};
    const index_t pad = p.kh > 1 ? draw(gen, 0, 2) : (trial % 8 == 2 ? 1 : 0);
    p.pad = {pad, pad, draw(gen, 0, pad), draw(gen, 0, pad)};
    if (p.h + p.pad[0] + p.pad[2] < p.dilation[0] * (p.kh - 1) + 1 ||
        p.w + p.pad[1] + p.pad[3] < p.dilation[1] * (p.kw - 1) + 1) {
      continue;
    }
    const auto d = integer_data<T>(gen, p);
    const auto expected = cvk_test::reference_conv2d(p, d.x, d.w, d.b);
    for (const auto l : both_layouts) {
      const storage s = trial % 3 == 0 ? storage::transposed : storage::contiguous;
      const cvk::conv2d_plan<T> plan(weight_tensor(d, cvk::weight_layout::oihw), d.b,
                                     conv_params(p, l));
      INFO("trial " << trial << ": " << p.describe() << (l == cvk::layout::nhwc ? " nhwc" : " nchw")
                    << ", path " << cvk::to_string(plan.path()) << ", input " << to_string(s));
      ++hits[static_cast<std::size_t>(plan.path())];
      const auto input = store(d.x, p.input_nchw(), l, s);
      REQUIRE(to_nchw(plan(cvk::strided_view<const T, 4>(input.view)).view(), l) == expected);
    }
  }
  for (const auto path : {cvk::conv2d_path::small_group_nhwc, cvk::conv2d_path::large_group_nhwc,
                          cvk::conv2d_path::pointwise_nhwc, cvk::conv2d_path::generic_nhwc}) {
    // With 2 lanes (double without AVX) every output count fills a vector: no generic shapes.
    if (path == cvk::conv2d_path::generic_nhwc && cvk::detail::simd<T>::lanes <= 2) continue;
    INFO("path " << cvk::to_string(path));
    CHECK(hits[static_cast<std::size_t>(path)] > 0);
  }
}

TEMPLATE_TEST_CASE(
    "conv2d: an infinite weight on a tap in the padding contributes nothing, on every path",
    "[conv][conv2d][paths]", float, double) {
  // The vector paths run border pixels in tiles that read zeros outside the image when every
  // weight is finite (0·w then adds nothing); with an infinite weight 0·inf would be NaN, so the
  // plan falls back to skipping those taps, as the reference and the other paths do.
  using T = TestType;
  cvk::rng gen(77);
  struct shape {
    index_t groups, in_per_group, out_per_group, kernel;
  };
  for (const shape sh : {shape{32, 4, 4, 3}, shape{2, 8, 32, 3}, shape{3, 16, 40, 3},
                         shape{1, 12, 2, 3}, shape{16, 2, 2, 3}}) {
    conv_problem p;
    p.groups = sh.groups;
    p.c = sh.groups * sh.in_per_group;
    p.o = sh.groups * sh.out_per_group;
    p.h = 5;
    p.w = 19;
    p.kh = p.kw = sh.kernel;
    p.pad = {1, 1, 1, 1};
    auto d = integer_data<T>(gen, p);
    for (auto& v : d.x) v = v == T(0) ? T(1) : v;  // no 0·inf inside the image
    d.w[0] = std::numeric_limits<T>::infinity();   // o = 0, i = 0, ky = 0, kx = 0
    const auto expected = cvk_test::reference_conv2d(p, d.x, d.w, d.b);
    for (const auto l : both_layouts) {
      const cvk::conv2d_plan<T> plan(weight_tensor(d, cvk::weight_layout::oihw), d.b,
                                     conv_params(p, l));
      INFO(p.describe() << ", path " << cvk::to_string(plan.path()));
      const auto input = store(d.x, p.input_nchw(), l, storage::contiguous);
      const auto got = to_nchw(plan(cvk::strided_view<const T, 4>(input.view)).view(), l);
      REQUIRE(got.size() == expected.size());
      for (std::size_t k = 0; k < got.size(); ++k) {
        INFO("output " << k << ": " << got[k] << " vs " << expected[k]);
        REQUIRE(cvk_test::same_value(got[k], expected[k]));
      }
    }
  }
}

TEMPLATE_TEST_CASE("conv2d: a grouped conv equals the per-group dense convs concatenated",
                   "[conv][conv2d]", float, double) {
  using T = TestType;
  cvk::rng gen(1708);
  for (int trial = 0; trial < cvk_test::trials(12); ++trial) {
    conv_problem p = random_problem(gen);
    if (trial % 3 == 0) p.o = p.groups * (trial % 2 == 1 ? 8 : 4);  // the unrolled O/g sizes
    const auto d = integer_data<T>(gen, p);
    const auto grouped = cvk::conv2d(cvk::strided_view<const T, 4>(d.x.data(), p.input_nchw()),
                                     cvk::strided_view<const T, 4>(d.w.data(), p.weight_oihw()),
                                     d.b, conv_params(p));
    const index_t ig = p.c / p.groups, og = p.o / p.groups;
    INFO(p.describe());
    for (index_t g = 0; g < p.groups; ++g) {
      conv_problem dense = p;
      dense.groups = 1;
      dense.c = ig;
      dense.o = og;
      // The group's input channels: a strided view into the whole input (no copy).
      const cvk::strided_view<const T, 4> x_group(d.x.data() + g * ig * p.h * p.w,
                                                  {p.n, ig, p.h, p.w},
                                                  {p.c * p.h * p.w, p.h * p.w, p.w, 1});
      const cvk::strided_view<const T, 4> w_group(d.w.data() + g * og * ig * p.kh * p.kw,
                                                  {og, ig, p.kh, p.kw});
      const std::vector<T> b_group(d.b.begin() + g * og, d.b.begin() + (g + 1) * og);
      const auto y = cvk::conv2d(x_group, w_group, b_group, conv_params(dense));
      const auto oh = p.out_h(), ow = p.out_w();
      const cvk::strided_view<const T, 4> slice(grouped.data() + g * og * oh * ow,
                                                {p.n, og, oh, ow}, {p.o * oh * ow, oh * ow, ow, 1});
      REQUIRE(cvk_test::flatten(slice) == cvk_test::flatten(y.view()));
    }
  }
}

TEMPLATE_TEST_CASE("conv2d: results are bit-identical for 1, 2 and 3 threads", "[conv][conv2d]",
                   float, double) {
  using T = TestType;
  cvk::rng gen(99);
  // Dense and 16 per group (large groups), 4 and 2 per group (small groups), depthwise.
  for (const index_t groups : {1, 4, 16, 32, 64}) {
    conv_problem p;
    p.n = 2;
    p.c = 64;
    p.o = 64;
    p.groups = groups;
    p.h = 17;
    p.w = 15;
    p.kh = 3;
    p.kw = 3;
    p.pad = {1, 1, 1, 1};
    // Real-valued data: the sums round, so any change of order would show.
    const std::vector<T> x = random_reals<T>(gen, cvk_test::product(p.input_nchw()));
    const std::vector<T> w = random_reals<T>(gen, cvk_test::product(p.weight_oihw()));
    for (const auto l : both_layouts) {
      std::vector<cvk::tensor<T, 4>> results;
      const auto input = store(x, p.input_nchw(), l, storage::contiguous);
      const auto weight = cvk::strided_view<const T, 4>(w.data(), p.weight_oihw());
      for (const int threads : {1, 2, 3}) {
        auto params = conv_params(p, l);
        params.threads = threads;
        results.push_back(cvk::conv2d(cvk::strided_view<const T, 4>(input.view), weight, params));
      }
      INFO("groups " << groups);
      REQUIRE(results[0] == results[1]);
      REQUIRE(results[0] == results[2]);
    }
  }
}

TEMPLATE_TEST_CASE("conv2d_plan: reused across inputs equals the one-shot call", "[conv][conv2d]",
                   float, double) {
  using T = TestType;
  cvk::rng gen(5);
  for (const index_t groups : {1, 3, 6}) {
    conv_problem p;
    p.c = 6;
    p.o = 12;
    p.groups = groups;
    p.kh = 3;
    p.kw = 2;
    p.pad = {1, 0, 1, 1};
    const auto w = small_integers<T>(gen, cvk_test::product(p.weight_oihw()), 2);
    const auto b = small_integers<T>(gen, 12, 3);
    const auto weight = cvk::strided_view<const T, 4>(w.data(), p.weight_oihw());
    const auto params = conv_params(p, cvk::layout::nhwc);
    const cvk::conv2d_plan<T> plan(weight, b, params);
    // The weight, zero-padded to whole vectors on the vector paths (at most lanes × it), + bias.
    const auto lanes = static_cast<std::size_t>(cvk::detail::simd<T>::lanes);
    CHECK(plan.memory_bytes() >= (w.size() + b.size()) * sizeof(T));
    CHECK(plan.memory_bytes() <= (w.size() * lanes + b.size()) * sizeof(T));
    CHECK(plan.memory_bytes() == (static_cast<std::size_t>(cvk::detail::packed_weight_size<T>(
                                      plan.path(),
                                      [&] {
                                        cvk::detail::conv2d_geometry g;
                                        g.groups = groups;
                                        g.out_channels = p.o;
                                        g.in_channels = p.c;
                                        g.in_per_group = p.c / groups;
                                        g.out_per_group = p.o / groups;
                                        g.kernel_h = p.kh;
                                        g.kernel_w = p.kw;
                                        return g;
                                      }())) +
                                  b.size()) *
                                     sizeof(T));
    CHECK(plan.weight_extents() == p.weight_oihw());
    for (const index_t size : {4, 9, 1}) {  // the same plan on images of different sizes
      p.h = size;
      p.w = size + 2;
      const auto x = small_integers<T>(gen, cvk_test::product(p.input_nchw()), 2);
      const auto input = store(x, p.input_nchw(), cvk::layout::nhwc, storage::contiguous);
      const cvk::strided_view<const T, 4> in = input.view;
      const auto once = cvk::conv2d(in, weight, b, params);
      REQUIRE(plan(in) == once);
      cvk::tensor<T, 4> out(plan.output_shape(in.extents()));
      plan(in, out);
      REQUIRE(out == once);
      REQUIRE(to_nchw(once.view(), cvk::layout::nhwc) == cvk_test::reference_conv2d(p, x, w, b));
    }
  }
}

TEMPLATE_TEST_CASE("conv2d: fused epilogue — bias, residual, relu, relu6, clamp", "[conv][conv2d]",
                   float, double) {
  using T = TestType;
  cvk::rng gen(6);
  // Large-group, generic (2 groups of 2 → 4 with 16 lanes) and depthwise paths, and 8 groups of
  // 2 → 2 (small groups).
  for (const index_t groups : {1, 2, 4, 8}) {
    conv_problem p;
    p.n = 2;
    p.c = groups == 8 ? 16 : 4;
    p.o = groups == 8 ? 16 : 8;
    p.groups = groups;
    p.h = 5;
    p.w = 6;
    p.kh = 3;
    p.kw = 3;
    p.pad = {1, 1, 1, 1};
    const auto d = integer_data<T>(gen, p);
    const auto conv = cvk_test::reference_conv2d(p, d.x, d.w, d.b);
    const auto residual = small_integers<T>(gen, conv.size(), 4);
    const auto weight = weight_tensor(d, cvk::weight_layout::oihw);
    for (const auto l : both_layouts) {
      const auto input = store(d.x, p.input_nchw(), l, storage::contiguous);
      const cvk::strided_view<const T, 4> in = input.view;
      auto res = store(residual, p.output_nchw(), l, storage::contiguous);
      const cvk::strided_view<const T, 4> res_view = res.view;
      struct act_case {
        cvk::activation act;
        double lo, hi;
      };
      for (const act_case a :
           {act_case{cvk::activation::none, 0, 0}, act_case{cvk::activation::relu, 0, 0},
            act_case{cvk::activation::relu6, 0, 0}, act_case{cvk::activation::clamp, -2.5, 3.5}}) {
        auto params = conv_params(p, l);
        params.act = a.act;
        params.clamp_min = a.lo;
        params.clamp_max = a.hi;
        const auto apply = [&](T v) {
          switch (a.act) {
            case cvk::activation::relu:
              return std::max(v, T(0));
            case cvk::activation::relu6:
              return std::min(std::max(v, T(0)), T(6));
            case cvk::activation::clamp:
              return std::min(std::max(v, static_cast<T>(a.lo)), static_cast<T>(a.hi));
            case cvk::activation::none:
              break;
          }
          return v;
        };
        std::vector<T> with_residual(conv.size()), without(conv.size());
        for (std::size_t i = 0; i < conv.size(); ++i) {
          with_residual[i] = apply(conv[i] + residual[i]);
          without[i] = apply(conv[i]);
        }
        INFO("groups " << groups << " activation " << static_cast<int>(a.act));
        REQUIRE(to_nchw(cvk::conv2d(in, weight, d.b, params).view(), l) == without);
        REQUIRE(to_nchw(cvk::conv2d(in, weight, d.b, res_view, params).view(), l) == with_residual);
        const cvk::conv2d_plan<T> plan(weight, d.b, params);
        REQUIRE(to_nchw(plan.with_residual(in, res_view).view(), l) == with_residual);
        // In place: the residual tensor receives the result.
        auto inplace = store(residual, p.output_nchw(), l, storage::contiguous);
        cvk::conv2d(in, weight, d.b, cvk::strided_view<const T, 4>(inplace.view), params,
                    inplace.view);
        REQUIRE(to_nchw(cvk::strided_view<const T, 4>(inplace.view), l) == with_residual);
      }
      // No bias: cvk::no_bias and the bias-free form agree with a zero bias.
      const std::vector<T> zero(static_cast<std::size_t>(p.o), T(0));
      const auto expected = cvk_test::reference_conv2d(p, d.x, d.w, zero);
      REQUIRE(to_nchw(cvk::conv2d(in, weight, conv_params(p, l)).view(), l) == expected);
      REQUIRE(to_nchw(cvk::conv2d(in, weight, cvk::no_bias, conv_params(p, l)).view(), l) ==
              expected);
    }
  }
  SECTION("NaN propagates through relu and clamp") {
    const std::vector<T> x{std::numeric_limits<T>::quiet_NaN()};
    const std::vector<T> w{T(1)};
    for (const auto act : {cvk::activation::relu, cvk::activation::relu6}) {
      const auto y = cvk::conv2d(cvk::strided_view<const T, 4>(x.data(), {1, 1, 1, 1}),
                                 cvk::strided_view<const T, 4>(w.data(), {1, 1, 1, 1}),
                                 cvk::conv2d_params{.act = act});
      CHECK(std::isnan(y(0, 0, 0, 0)));
    }
  }
}

TEST_CASE("conv2d: ONNX auto_pad follows the ONNX Conv formulas", "[conv][conv2d][onnx]") {
  cvk::rng gen(11);
  for (int trial = 0; trial < cvk_test::trials(40); ++trial) {
    conv_problem p = random_problem(gen);
    p.pad = {0, 0, 0, 0};
    for (const auto mode :
         {cvk::auto_pad::same_upper, cvk::auto_pad::same_lower, cvk::auto_pad::valid}) {
      // The spec, written out independently of the library.
      conv_problem q = p;
      bool empty = false;
      const auto axis = [&](index_t in, index_t k, index_t s, index_t d, index_t& begin,
                            index_t& end) {
        const index_t span = (k - 1) * d + 1;
        if (mode == cvk::auto_pad::valid) {
          begin = end = 0;
          empty = empty || in < span;
          return;
        }
        const index_t out = (in + s - 1) / s;
        const index_t total = std::max<index_t>(0, (out - 1) * s + span - in);
        begin = mode == cvk::auto_pad::same_upper ? total / 2 : total - total / 2;
        end = total - begin;
      };
      axis(p.h, p.kh, p.stride[0], p.dilation[0], q.pad[0], q.pad[2]);
      axis(p.w, p.kw, p.stride[1], p.dilation[1], q.pad[1], q.pad[3]);
      auto params = conv_params(p);
      params.pad_mode = mode;
      INFO(p.describe() << " auto_pad " << static_cast<int>(mode));
      if (empty) {
        CHECK_THROWS_AS(cvk::conv2d_output_shape(p.input_nchw(), p.weight_oihw(), params),
                        cvk::shape_error);
        continue;
      }
      if (mode != cvk::auto_pad::valid) {
        CHECK(q.out_h() == (p.h + p.stride[0] - 1) / p.stride[0]);
        CHECK(q.out_w() == (p.w + p.stride[1] - 1) / p.stride[1]);
      }
      const auto d = integer_data<double>(gen, q);
      const auto y =
          cvk::conv2d(cvk::strided_view<const double, 4>(d.x.data(), q.input_nchw()),
                      cvk::strided_view<const double, 4>(d.w.data(), q.weight_oihw()), d.b, params);
      REQUIRE(y.extents() == q.output_nchw());
      REQUIRE(cvk_test::flatten(y.view()) == cvk_test::reference_conv2d(q, d.x, d.w, d.b));
    }
  }
}

TEMPLATE_TEST_CASE(
    "conv2d: PyTorch 1.13 golden fixtures (groups, stride, dilation, asymmetric "
    "padding, multiplier, ONNX auto_pad)",
    "[conv][conv2d][fixtures]", float, double) {
  using T = TestType;
  const std::string dtype = std::is_same_v<T, float> ? "float32" : "float64";
  const cvk_test::fixture_file file(cvk_test::test_data_path("conv2d_torch.txt"));
  const int cases = std::stoi(file.meta("cases"));
  REQUIRE(cases >= 17);
  for (int k = 0; k < cases; ++k) {
    const std::string prefix = "case" + std::to_string(k) + "/";
    const auto v = file.table(prefix + "params").values<index_t>();
    conv_problem p;
    cvk_test::read_conv_fields(p, v);  // explicit padding in p.pad (zeros with auto_pad)
    const auto mode = static_cast<cvk::auto_pad>(v[16]);
    const bool has_bias = v[17] != 0;
    const auto x = file.table(prefix + dtype + "/input").values<T>();
    const auto w = file.table(prefix + dtype + "/weight").values<T>();
    const auto b = file.table(prefix + dtype + "/bias").values<T>();
    const auto expected = file.table(prefix + dtype + "/output").values<T>();
    const auto shape = file.table(prefix + dtype + "/output_shape").values<index_t>();
    const std::vector<T> no_bias_values;
    INFO("fixture " << prefix << dtype << ": " << p.describe());
    for (const auto l : both_layouts) {
      for (const auto wl : both_weight_layouts) {
        auto params = conv_params(p, l, wl);
        params.pad_mode = mode;
        const auto input = store(x, p.input_nchw(), l, storage::contiguous);
        const conv_data<T> d{p, x, w, b};
        const auto weight = weight_tensor(d, wl);
        const cvk::strided_view<const T, 4> in = input.view;
        const auto y = has_bias ? cvk::conv2d(in, weight, b, params)
                                : cvk::conv2d(in, weight, cvk::no_bias, params);
        const auto got_shape = cvk::detail::nchw_extents(y.extents(), l);
        REQUIRE(std::vector<index_t>(got_shape.begin(), got_shape.end()) == shape);
        const auto got = to_nchw(y.view(), l);
        REQUIRE(got.size() == expected.size());
        // Error bound: both results are within (taps + 2)·eps·Σ|w·x| of the exact sum.
        const index_t taps = p.c / p.groups * p.kh * p.kw;
        const long double eps = std::numeric_limits<T>::epsilon();
        long double magnitude = 0;
        for (const T value : x)
          magnitude = std::max(magnitude, std::fabs(static_cast<long double>(value)));
        long double wmax = 0;
        for (const T value : w) wmax = std::max(wmax, std::fabs(static_cast<long double>(value)));
        const long double bound = 2 * static_cast<long double>(taps + 2) * eps *
                                  (static_cast<long double>(taps) * magnitude * wmax + 4);
        for (std::size_t i = 0; i < got.size(); ++i) {
          INFO("element " << i << ": cvk " << got[i] << ", torch " << expected[i]);
          REQUIRE(std::fabs(static_cast<long double>(got[i]) - expected[i]) <= bound);
        }
      }
    }
  }
}

#if defined(CVK_TEST_HAS_EIGEN) || defined(CVK_TEST_HAS_XTENSOR) || defined(CVK_TEST_HAS_DLPACK)
TEST_CASE("conv2d: Eigen, xtensor and DLPack tensors", "[conv][conv2d][adapt]") {
  cvk::rng gen(3);
  conv_problem p;
  p.n = 1;
  p.c = 4;
  p.o = 6;
  p.groups = 2;
  p.h = 5;
  p.w = 4;
  p.kh = 3;
  p.kw = 3;
  p.pad = {1, 1, 1, 1};
  const auto d = integer_data<float>(gen, p);
  const auto expected = cvk_test::reference_conv2d(p, d.x, d.w, d.b);
  const auto params = conv_params(p);
  const auto oh = p.out_h(), ow = p.out_w();
#  if defined(CVK_TEST_HAS_EIGEN)
  SECTION("Eigen Tensor and TensorMap (row-major)") {
    using tensor4 = Eigen::Tensor<float, 4, Eigen::RowMajor>;
    const Eigen::TensorMap<const tensor4> x(d.x.data(), p.n, p.c, p.h, p.w);
    tensor4 w(p.o, p.c / p.groups, p.kh, p.kw);
    std::copy(d.w.begin(), d.w.end(), w.data());
    Eigen::Tensor<float, 1, Eigen::RowMajor> b(p.o);
    std::copy(d.b.begin(), d.b.end(), b.data());
    tensor4 y(p.n, p.o, oh, ow);
    cvk::conv2d(x, w, b, params, y);
    REQUIRE(std::vector<float>(y.data(), y.data() + y.size()) == expected);
    // Column-major Eigen tensors have reversed strides: still a valid strided input.
    Eigen::Tensor<float, 4> col(p.n, p.c, p.h, p.w);
    for (index_t n = 0; n < p.n; ++n)
      for (index_t c = 0; c < p.c; ++c)
        for (index_t yy = 0; yy < p.h; ++yy)
          for (index_t xx = 0; xx < p.w; ++xx)
            col(n, c, yy, xx) =
                d.x[static_cast<std::size_t>(((n * p.c + c) * p.h + yy) * p.w + xx)];
    REQUIRE(cvk_test::flatten(cvk::conv2d(col, w, b, params).view()) == expected);
  }
#  endif
#  if defined(CVK_TEST_HAS_XTENSOR)
  SECTION("xtensor") {
    xt::xtensor<float, 4> x = xt::zeros<float>({p.n, p.c, p.h, p.w});
    std::copy(d.x.begin(), d.x.end(), x.begin());
    xt::xtensor<float, 4> w = xt::zeros<float>({p.o, p.c / p.groups, p.kh, p.kw});
    std::copy(d.w.begin(), d.w.end(), w.begin());
    xt::xtensor<float, 1> b = xt::zeros<float>({p.o});
    std::copy(d.b.begin(), d.b.end(), b.begin());
    xt::xtensor<float, 4> y = xt::zeros<float>({p.n, p.o, oh, ow});
    cvk::conv2d(x, w, b, params, y);
    REQUIRE(std::vector<float>(y.begin(), y.end()) == expected);
  }
#  endif
#  if defined(CVK_TEST_HAS_DLPACK)
  SECTION("DLPack (runtime rank)") {
    std::vector<float> x = d.x;
    std::array<std::int64_t, 4> shape{p.n, p.c, p.h, p.w};
    DLTensor t{};
    t.data = x.data();
    t.device = {kDLCPU, 0};
    t.ndim = 4;
    t.dtype = {kDLFloat, 32, 1};
    t.shape = shape.data();
    t.strides = nullptr;
    const auto y =
        cvk::conv2d(cvk::from_dlpack<const float>(t),
                    cvk::strided_view<const float, 4>(d.w.data(), p.weight_oihw()), d.b, params);
    REQUIRE(cvk_test::flatten(y.view()) == expected);
    std::array<std::int64_t, 3> wrong_shape{p.n, p.c, p.h};
    t.ndim = 3;
    t.shape = wrong_shape.data();
    CHECK_THROWS_AS(
        cvk::conv2d(cvk::from_dlpack<const float>(t),
                    cvk::strided_view<const float, 4>(d.w.data(), p.weight_oihw()), params),
        cvk::shape_error);
  }
#  endif
}
#endif

TEST_CASE("conv2d: bad input raises cvk errors naming the function, the argument and the shapes",
          "[conv][conv2d][errors]") {
  using Catch::Matchers::Contains;
  const std::vector<float> x(2 * 4 * 5 * 5, 1.0f), w(6 * 2 * 3 * 3, 1.0f), b(6, 0.0f);
  const cvk::strided_view<const float, 4> input(x.data(), {2, 4, 5, 5});
  const cvk::strided_view<const float, 4> weight(w.data(), {6, 2, 3, 3});
  const cvk::conv2d_params ok{.groups = 2};
  REQUIRE(cvk::conv2d(input, weight, b, ok).extents() == std::array<index_t, 4>{2, 6, 3, 3});

  const auto fails = [&](const cvk::conv2d_params& params, const char* text) {
    INFO(text);
    CHECK_THROWS_WITH(cvk::conv2d(input, weight, b, params), Contains("conv2d") && Contains(text));
  };
  SECTION("channels not divisible by groups") {
    CHECK_THROWS_AS(cvk::conv2d(input, weight, b, {.groups = 3}), cvk::shape_error);
    fails({.groups = 4}, "params.groups (4) must divide the output channels (6)");
    fails({.groups = 3}, "params.groups (3) must divide the input channels (4)");
  }
  SECTION("weight / input channel mismatch") {
    CHECK_THROWS_AS(cvk::conv2d(input, weight, b, {}), cvk::shape_error);
    fails({}, "weight has 2 input channels per group, but input has 4 channels in 1 groups");
    fails({}, "input 2×4×5×5 (N×C×H×W), weight 6×2×3×3 (O×I/groups×KH×KW)");
  }
  SECTION("stride, dilation, padding, groups, clamp, threads out of their domains") {
    CHECK_THROWS_AS(cvk::conv2d(input, weight, b, {.stride = {0, 1}, .groups = 2}),
                    cvk::invalid_argument);
    fails({.stride = {1, -2}, .groups = 2}, "params.stride must be >= 1, got {1, -2}");
    fails({.dilation = {0, 1}, .groups = 2}, "params.dilation must be >= 1");
    fails({.padding = {0, -1, 0, 0}, .groups = 2}, "params.padding (top, left, bottom, right)");
    fails({.groups = 0}, "params.groups must be >= 1");
    fails({.padding = {1, 1, 1, 1}, .groups = 2, .pad_mode = cvk::auto_pad::same_upper},
          "params.padding must be all zero");
    fails({.groups = 2, .act = cvk::activation::clamp, .clamp_min = 2, .clamp_max = 1},
          "clamp_min must be <= params.clamp_max");
    fails({.groups = 2, .threads = -1}, "params.threads must be >= 0");
  }
  SECTION("kernel larger than the padded input") {
    CHECK_THROWS_AS(cvk::conv2d(input, weight, b, {.dilation = {3, 1}, .groups = 2}),
                    cvk::shape_error);
    fails({.dilation = {3, 1}, .groups = 2},
          "the dilated kernel (7) is larger than the padded input (5) along H");
  }
  SECTION("bias of the wrong length") {
    const std::vector<float> short_bias(5);
    CHECK_THROWS_AS(cvk::conv2d(input, weight, short_bias, ok), cvk::shape_error);
    CHECK_THROWS_WITH(cvk::conv2d(input, weight, short_bias, ok),
                      Contains("conv2d: bias must have 6 values") && Contains("got 5"));
  }
  SECTION("output and residual of the wrong shape") {
    cvk::tensor<float, 4> out(std::array<index_t, 4>{2, 6, 3, 4});
    CHECK_THROWS_AS(cvk::conv2d(input, weight, b, ok, out), cvk::shape_error);
    CHECK_THROWS_WITH(cvk::conv2d(input, weight, b, ok, out),
                      Contains("conv2d: out must be N×C×H×W = 2×6×3×3, got 2×6×3×4"));
    cvk::tensor<float, 4> good(std::array<index_t, 4>{2, 6, 3, 3});
    const cvk::tensor<float, 4> residual(std::array<index_t, 4>{2, 3, 3, 6});
    CHECK_THROWS_WITH(cvk::conv2d(input, weight, b, residual, ok, good),
                      Contains("conv2d: residual must be N×C×H×W = 2×6×3×3, got 2×3×3×6"));
  }
  SECTION("sizes whose products overflow, buffers too large to allocate") {
    const index_t huge = index_t{1} << 40;
    // A zero-stride input of 2^40 × 2^40 pixels: the size product overflows.
    const cvk::strided_view<const float, 4> broadcast(x.data(), {1, 4, huge, huge}, {0, 1, 0, 0});
    CHECK_THROWS_AS(cvk::conv2d(broadcast, weight, b, ok), cvk::out_of_range);
    CHECK_THROWS_WITH(cvk::conv2d(broadcast, weight, b, ok),
                      Contains("conv2d: the output") && Contains("overflows"));
    // 2^36 pixels fit in index_t, but the output's 2^38 floats exceed what cvk allocates.
    const cvk::strided_view<const float, 4> large(
        x.data(), {1, 4, index_t{1} << 18, index_t{1} << 18}, {0, 1, 0, 0});
    const std::vector<float> w1(6 * 2, 1.0f);
    const cvk::strided_view<const float, 4> pointwise(w1.data(), {6, 2, 1, 1});
    CHECK_THROWS_WITH(cvk::conv2d(large, pointwise, b, ok),
                      Contains("conv2d: the output") && Contains("more than can be allocated"));
    CHECK_THROWS_AS(cvk::conv2d_output_shape(
                        {1, 4, 5, 5}, {6, 2, 3, 3},
                        {.padding = {std::numeric_limits<index_t>::max(), 0, 1, 0}, .groups = 2}),
                    cvk::out_of_range);
  }
  SECTION("conv2d_plan names itself") {
    CHECK_THROWS_WITH(cvk::conv2d_plan<float>(weight, b, {.groups = 4}),
                      Contains("conv2d_plan: params.groups (4) must divide the output channels"));
  }
}
