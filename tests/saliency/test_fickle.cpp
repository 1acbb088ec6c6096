// cvk — computer-vision kernels, header-only C++20.
// Tests of cvk/saliency/fickle.hpp: the map expansion against a plain gather loop and torch's
// F.unfold goldens (both layouts, float and double, strided views), its adjoint against a
// scatter loop, the adjoint identity and autograd goldens; the center-fixed dropout mask (centres
// kept, keep rate 1 − p, rescaling, sharing, reproducibility, layouts); the aggregation modes by
// hand, the masks handed to the sample callable, thread invariance; and the errors.
// SPDX-License-Identifier: MIT
#include <cvk/core/rng.hpp>
#include <cvk/saliency/fickle.hpp>

#if defined(CVK_TEST_HAS_EIGEN)
#  include <cvk/adapt/eigen.hpp>
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

#include "support/conv_reference.hpp"
#include "support/fixtures.hpp"

namespace {

using cvk::index_t;
using nchw_t = std::array<index_t, 4>;
using cvk_test::storage;

constexpr std::array<cvk::layout, 2> layouts{cvk::layout::nchw, cvk::layout::nhwc};

std::size_t count_of(const nchw_t& e) {
  return static_cast<std::size_t>(e[0] * e[1] * e[2] * e[3]);
}

/// The expansion by its definition (NCHW): out[n][k][i·s + a][j·s + b] = x[n][k][i + a − r]
/// [j + b − r] or 0, looping over the windows rather than over the output.
template <class T>
std::vector<T> reference_expand(const std::vector<T>& x, const nchw_t& e, index_t s) {
  const index_t r = (s - 1) / 2, hs = e[2] * s, ws = e[3] * s;
  std::vector<T> out(static_cast<std::size_t>(e[0] * e[1] * hs * ws), T(0));
  for (index_t n = 0; n < e[0]; ++n)
    for (index_t k = 0; k < e[1]; ++k)
      for (index_t i = 0; i < e[2]; ++i)
        for (index_t j = 0; j < e[3]; ++j)
          for (index_t a = 0; a < s; ++a)
            for (index_t b = 0; b < s; ++b) {
              const index_t y = i + a - r, xx = j + b - r;
              if (y < 0 || y >= e[2] || xx < 0 || xx >= e[3]) continue;
              out[static_cast<std::size_t>(((n * e[1] + k) * hs + i * s + a) * ws + j * s + b)] =
                  x[static_cast<std::size_t>(((n * e[1] + k) * e[2] + y) * e[3] + xx)];
            }
  return out;
}

/// The adjoint by scattering every expanded element back to its source, in long double.
template <class T>
std::vector<T> reference_backward(const std::vector<T>& g, const nchw_t& e, index_t s) {
  const index_t r = (s - 1) / 2, hs = e[2] * s, ws = e[3] * s;
  std::vector<long double> acc(count_of(e), 0.0L);
  for (index_t n = 0; n < e[0]; ++n)
    for (index_t k = 0; k < e[1]; ++k)
      for (index_t yy = 0; yy < hs; ++yy)
        for (index_t xx = 0; xx < ws; ++xx) {
          const index_t y = yy / s + yy % s - r, x = xx / s + xx % s - r;
          if (y < 0 || y >= e[2] || x < 0 || x >= e[3]) continue;
          acc[static_cast<std::size_t>(((n * e[1] + k) * e[2] + y) * e[3] + x)] +=
              g[static_cast<std::size_t>(((n * e[1] + k) * hs + yy) * ws + xx)];
        }
  return std::vector<T>(acc.begin(), acc.end());
}

template <class X>
auto values_nchw(const X& x, cvk::layout l) {
  return cvk_test::to_nchw(cvk::as_view(x), l);
}

const cvk_test::fixture_file& goldens() {
  static const cvk_test::fixture_file file(cvk_test::test_data_path("saliency_perturb_torch.txt"));
  return file;
}

}  // namespace

TEST_CASE("fickle_expand: hand case 1x1x2x2, s = 3", "[fickle]") {
  const std::vector<double> x{1, 2, 3, 4};
  const auto y = cvk::fickle_expand(cvk::view(x.data(), 1, 1, 2, 2), {.window = 3});
  REQUIRE(y.extent(2) == 6);
  REQUIRE(y.extent(3) == 6);
  // Block (i, j) is the 3×3 window centred on (i, j), zero outside the 2×2 map.
  const std::vector<double> want{0, 0, 0, 0, 0, 0,  //
                                 0, 1, 2, 1, 2, 0,  //
                                 0, 3, 4, 3, 4, 0,  //
                                 0, 1, 2, 1, 2, 0,  //
                                 0, 3, 4, 3, 4, 0,  //
                                 0, 0, 0, 0, 0, 0};
  CHECK(std::vector<double>(y.begin(), y.end()) == want);
  // Its adjoint sums each feature's copies: every feature appears 4 times here.
  const auto g = cvk::fickle_expand_backward(y, {.window = 3});
  CHECK(std::vector<double>(g.begin(), g.end()) == std::vector<double>{4, 8, 12, 16});
  // s = 1 is the identity.
  const auto same = cvk::fickle_expand(cvk::view(x.data(), 1, 1, 2, 2), {.window = 1});
  CHECK(std::vector<double>(same.begin(), same.end()) == x);
}

TEMPLATE_TEST_CASE("fickle_expand and its adjoint: random maps against the reference loops",
                   "[fickle]", float, double) {
  using T = TestType;
  cvk::rng gen(1902);
  for (int trial = 0; trial < cvk_test::trials(40); ++trial) {
    const nchw_t e{cvk_test::draw(gen, 1, 3), cvk_test::draw(gen, 1, 4), cvk_test::draw(gen, 1, 6),
                   cvk_test::draw(gen, 1, 6)};
    const index_t s = 2 * cvk_test::draw(gen, 0, 3) + 1;
    const auto l = layouts[gen.below(2)];
    const auto st = cvk_test::all_storages[gen.below(4)];
    const int threads = static_cast<int>(cvk_test::draw(gen, 1, 3));
    INFO("trial " << trial << " " << e[0] << "x" << e[1] << "x" << e[2] << "x" << e[3] << " s " << s
                  << " layout " << static_cast<int>(l) << " " << cvk_test::to_string(st));
    const cvk::fickle_params p{.window = s, .data_layout = l, .threads = threads};
    const auto x = cvk_test::random_reals<T>(gen, count_of(e));
    const auto stored = cvk_test::store(x, e, l, st);
    const nchw_t ex{e[0], e[1], e[2] * s, e[3] * s};
    const auto expanded = values_nchw(cvk::fickle_expand(stored.view, p), l);
    REQUIRE(expanded == reference_expand(x, e, s));
    // Write-into form into a strided output.
    auto out = cvk_test::store(std::vector<T>(count_of(ex), T(-5)), ex, l, st);
    cvk::fickle_expand(stored.view, p, out.view);
    REQUIRE(cvk_test::to_nchw(out.view, l) == expanded);
    // The adjoint: against the scatter loop (sums of at most s² values, compared in ulps).
    const auto g = cvk_test::random_reals<T>(gen, count_of(ex));
    const auto gs = cvk_test::store(g, ex, l, st);
    const auto back = values_nchw(cvk::fickle_expand_backward(gs.view, p), l);
    const auto want = reference_backward(g, e, s);
    for (std::size_t i = 0; i < back.size(); ++i) {
      REQUIRE(back[i] == Approx(want[i]).margin(std::is_same_v<T, float> ? 1e-5 : 1e-13));
    }
    auto gi = cvk_test::store(std::vector<T>(count_of(e), T(3)), e, l, st);
    cvk::fickle_expand_backward(gs.view, p, gi.view);
    REQUIRE(cvk_test::to_nchw(gi.view, l) == back);
  }
}

TEST_CASE("fickle_expand: the adjoint identity <expand(x), y> = <x, expand_backward(y)>",
          "[fickle]") {
  cvk::rng gen(7);
  for (const index_t s : {1, 3, 5, 7}) {
    for (const auto l : layouts) {
      const nchw_t e{2, 3, 5, 4};
      const auto x = cvk_test::random_reals<double>(gen, count_of(e));
      const nchw_t ex{2, 3, 5 * s, 4 * s};
      const auto y = cvk_test::random_reals<double>(gen, count_of(ex));
      const cvk::fickle_params p{.window = s, .data_layout = l};
      const auto xs = cvk_test::store(x, e, l, storage::contiguous);
      const auto ys = cvk_test::store(y, ex, l, storage::reversed_inner);
      const auto ex_x = values_nchw(cvk::fickle_expand(xs.view, p), l);
      const auto bw_y = values_nchw(cvk::fickle_expand_backward(ys.view, p), l);
      long double left = 0, right = 0, scale = 0;
      for (std::size_t i = 0; i < y.size(); ++i) {
        left += static_cast<long double>(ex_x[i]) * y[i];
        scale += std::abs(static_cast<long double>(ex_x[i]) * y[i]);
      }
      for (std::size_t i = 0; i < x.size(); ++i) right += static_cast<long double>(x[i]) * bw_y[i];
      INFO("s " << s << " layout " << static_cast<int>(l));
      CHECK(std::abs(static_cast<double>(left - right)) <= 1e-13 * static_cast<double>(scale));
    }
  }
}

TEST_CASE("fickle_expand: torch goldens (F.unfold and autograd)", "[fickle]") {
  const auto& f = goldens();
  const int cases = std::stoi(f.meta("fickle_cases"));
  REQUIRE(cases >= 4);
  for (int k = 0; k < cases; ++k) {
    const std::string name = "fickle" + std::to_string(k);
    const auto v = f.table(name + "/params").values<double>();
    const nchw_t e{static_cast<index_t>(v[0]), static_cast<index_t>(v[1]),
                   static_cast<index_t>(v[2]), static_cast<index_t>(v[3])};
    const auto s = static_cast<index_t>(v[4]);
    const auto x = f.table(name + "/x").values<double>();
    const auto y = f.table(name + "/y").values<double>();
    INFO(name);
    for (const auto l : layouts) {
      const cvk::fickle_params p{.window = s, .data_layout = l};
      const auto xs = cvk_test::store(x, e, l, storage::padded_inner);
      REQUIRE(values_nchw(cvk::fickle_expand(xs.view, p), l) ==
              f.table(name + "/expanded").values<double>());
      const auto ys = cvk_test::store(y, {e[0], e[1], e[2] * s, e[3] * s}, l, storage::transposed);
      const auto grad = values_nchw(cvk::fickle_expand_backward(ys.view, p), l);
      const auto want = f.table(name + "/grad").values<double>();
      for (std::size_t i = 0; i < grad.size(); ++i)
        REQUIRE(grad[i] == Approx(want[i]).margin(1e-13));
    }
  }
}

TEST_CASE("fickle_dropout_mask: centres kept, keep rate 1 - p, rescaling, sharing", "[fickle]") {
  const nchw_t shape{2, 8, 7, 9};
  for (const double p : {0.0, 0.3, 0.9, 1.0}) {
    for (const index_t s : {1, 3, 5}) {
      const cvk::fickle_params fp{.window = s, .drop_probability = p, .seed = 77};
      const auto m = cvk::fickle_dropout_mask<float>(shape, fp, 3);
      REQUIRE(m.extents() == nchw_t{2, 8, 7 * s, 9 * s});
      const index_t r = (s - 1) / 2;
      index_t kept = 0, others = 0;
      for (index_t n = 0; n < 2; ++n)
        for (index_t k = 0; k < 8; ++k)
          for (index_t y = 0; y < 7 * s; ++y)
            for (index_t x = 0; x < 9 * s; ++x) {
              const float v = m(n, k, y, x);
              REQUIRE((v == 0.0f || v == 1.0f));
              if (y % s == r && x % s == r) {
                REQUIRE(v == 1.0f);  // the centre is never dropped
              } else {
                ++others;
                kept += v == 1.0f ? 1 : 0;
              }
            }
      if (others > 0) {
        INFO("p " << p << " s " << s);
        CHECK(static_cast<double>(kept) / static_cast<double>(others) ==
              Approx(1.0 - p).margin(0.02));
      }
    }
  }
  // Rescaled: kept non-centre elements hold 1/(1 − p), centres 1.
  const cvk::fickle_params rp{.window = 3, .drop_probability = 0.75, .rescale = true};
  const auto m = cvk::fickle_dropout_mask<double>(shape, rp, 0);
  for (index_t y = 0; y < 21; ++y)
    for (index_t x = 0; x < 27; ++x) {
      const double v = m(1, 2, y, x);
      if (y % 3 == 1 && x % 3 == 1) {
        REQUIRE(v == 1.0);
      } else {
        REQUIRE((v == 0.0 || v == 4.0));
      }
    }
  // Shared across channels: one channel.
  const auto shared = cvk::fickle_dropout_mask<float>(
      shape, {.window = 3, .sharing = cvk::fickle_mask_sharing::per_position}, 0);
  CHECK(shared.extents() == nchw_t{2, 1, 21, 27});
}

TEST_CASE("fickle_dropout_mask: reproducible, per sample, the same in both layouts", "[fickle]") {
  const nchw_t shape{2, 3, 4, 5};
  const cvk::fickle_params p{.window = 3, .drop_probability = 0.5, .seed = 12};
  const auto a = cvk::fickle_dropout_mask<double>(shape, p, 4);
  const auto b = cvk::fickle_dropout_mask<double>(shape, p, 4);
  const auto c = cvk::fickle_dropout_mask<double>(shape, p, 5);
  CHECK(a == b);
  CHECK_FALSE(a == c);
  cvk::fickle_params other = p;
  other.seed = 13;
  CHECK_FALSE(a == cvk::fickle_dropout_mask<double>(shape, other, 4));
  // NHWC: the same mask, axes permuted; the feature shape is given in NHWC order.
  cvk::fickle_params nhwc = p;
  nhwc.data_layout = cvk::layout::nhwc;
  const auto h = cvk::fickle_dropout_mask<double>({2, 4, 5, 3}, nhwc, 4);
  REQUIRE(h.extents() == nchw_t{2, 12, 15, 3});
  CHECK(values_nchw(h, cvk::layout::nhwc) == std::vector<double>(a.begin(), a.end()));
  // Write-into form with a strided output.
  const nchw_t ex{2, 3, 12, 15};
  auto out = cvk_test::store(std::vector<double>(count_of(ex), 9.0), ex, cvk::layout::nchw,
                             storage::reversed_inner);
  cvk::fickle_dropout_mask(shape, p, 4, out.view);
  CHECK(cvk_test::to_nchw(out.view, cvk::layout::nchw) == std::vector<double>(a.begin(), a.end()));
}

TEST_CASE("fickle_aggregate: the four reductions by hand", "[fickle]") {
  // Sample i returns, for 2 images of 2×3: image 0 = base + i·ramp, image 1 = a map that is
  // zero in sample 0 (selects nothing) and negative-peaked in sample 1.
  const std::array<std::array<double, 6>, 3> image0{
      {{1, 0, 0, 0, 0, 2}, {0, 4, 1, 0, 3, 0}, {0, 0, 0, 1, 0, 0.5}}};
  const std::array<std::array<double, 6>, 3> image1{
      {{0, 0, 0, 0, 0, 0}, {-1, -2, -3, -1, -2, -3}, {1, 1, 1, 1, 1, 1}}};
  const auto sample = [&](index_t i, cvk::strided_view<const float, 4>) {
    cvk::tensor<double, 3> m(2, 2, 3);
    for (index_t q = 0; q < 6; ++q) {
      m(0, q / 3, q % 3) = image0[static_cast<std::size_t>(i)][static_cast<std::size_t>(q)];
      m(1, q / 3, q % 3) = image1[static_cast<std::size_t>(i)][static_cast<std::size_t>(q)];
    }
    return m;
  };
  const nchw_t shape{2, 4, 3, 3};
  const auto run = [&](cvk::fickle_aggregation a, double threshold) {
    const cvk::fickle_params p{.samples = 3, .aggregation = a, .threshold = threshold};
    const auto r = cvk::fickle_aggregate(shape, sample, p);
    return std::vector<float>(r.begin(), r.end());
  };
  using A = cvk::fickle_aggregation;
  CHECK(run(A::mean, 0.5) == std::vector<float>{1.0f / 3, 4.0f / 3, 1.0f / 3, 1.0f / 3, 1.0f,
                                                2.5f / 3, 0, -1.0f / 3, -2.0f / 3, 0, -1.0f / 3,
                                                -2.0f / 3});
  CHECK(run(A::max, 0.5) == std::vector<float>{1, 4, 1, 1, 3, 2, 1, 1, 1, 1, 1, 1});
  // threshold 0.5: sample 0 of image 0 (max 2) selects {0: 1 >= 1, 5: 2}; sample 1 (max 4)
  // selects {1: 4, 4: 3}; sample 2 (max 1) selects {3: 1, 5: 0.5}. Image 1: sample 0 is all zero
  // (nothing), sample 1 has max −1 (nothing), sample 2 selects everything.
  CHECK(run(A::threshold_union, 0.5) == std::vector<float>{1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1});
  CHECK(run(A::vote, 0.5) == std::vector<float>{1.0f / 3, 1.0f / 3, 0, 1.0f / 3, 1.0f / 3, 2.0f / 3,
                                                1.0f / 3, 1.0f / 3, 1.0f / 3, 1.0f / 3, 1.0f / 3,
                                                1.0f / 3});
  // threshold 0.8: sample 0 selects {5}, sample 1 {1} (3 < 3.2), sample 2 {3}.
  CHECK(run(A::threshold_union, 0.8) == std::vector<float>{0, 1, 0, 1, 0, 1, 1, 1, 1, 1, 1, 1});
}

TEST_CASE("fickle_aggregate: the callable gets sample i's mask; threads", "[fickle]") {
  const nchw_t shape{1, 2, 3, 4};
  const cvk::fickle_params p{.window = 3, .drop_probability = 0.6, .samples = 9, .seed = 4};
  index_t calls = 0;
  // A Grad-CAM-like map from the mask: per position, the mean kept fraction of its block.
  const auto sample = [&](index_t i, cvk::strided_view<const double, 4> mask) {
    REQUIRE(i == calls);
    ++calls;
    const auto want = cvk::fickle_dropout_mask<double>(shape, p, static_cast<std::uint64_t>(i));
    REQUIRE(mask.extent(2) == 9);
    REQUIRE(mask.extent(3) == 12);
    for (index_t k = 0; k < 2; ++k)
      for (index_t y = 0; y < 9; ++y)
        for (index_t x = 0; x < 12; ++x) REQUIRE(mask(0, k, y, x) == want(0, k, y, x));
    cvk::tensor<double, 3> m(1, 3, 4);
    for (index_t y = 0; y < 9; ++y)
      for (index_t x = 0; x < 12; ++x) m(0, y / 3, x / 3) += mask(0, 0, y, x) + mask(0, 1, y, x);
    return m;
  };
  std::vector<double> first;
  for (const auto a : {cvk::fickle_aggregation::mean, cvk::fickle_aggregation::max,
                       cvk::fickle_aggregation::threshold_union, cvk::fickle_aggregation::vote}) {
    for (const int threads : {1, 2, 3}) {
      calls = 0;
      cvk::fickle_params q = p;
      q.aggregation = a;
      q.threads = threads;
      const auto r = cvk::fickle_aggregate<double>(shape, sample, q);
      CHECK(calls == 9);
      // Write-into form.
      cvk::tensor<double, 3> out(1, 3, 4);
      calls = 0;
      cvk::fickle_aggregate(shape, sample, q, out);
      CHECK(out == r);
      if (threads == 1) first = std::vector<double>(r.begin(), r.end());
      REQUIRE(std::vector<double>(r.begin(), r.end()) == first);
    }
  }
}

#if defined(CVK_TEST_HAS_EIGEN)
TEST_CASE("fickle: Eigen tensors in and out", "[fickle][adapt]") {
  cvk::rng gen(44);
  const nchw_t e{1, 2, 3, 4};
  const auto x = cvk_test::random_reals<float>(gen, count_of(e));
  using tensor4 = Eigen::Tensor<float, 4, Eigen::RowMajor>;
  const Eigen::TensorMap<const tensor4> in(x.data(), e[0], e[1], e[2], e[3]);
  tensor4 expanded(1, 2, 9, 12);
  cvk::fickle_expand(in, {.window = 3}, expanded);
  REQUIRE(std::vector<float>(expanded.data(), expanded.data() + expanded.size()) ==
          reference_expand(x, e, 3));
  tensor4 back(1, 2, 3, 4);
  cvk::fickle_expand_backward(expanded, {.window = 3}, back);
  const auto want = cvk::fickle_expand_backward(
      cvk::fickle_expand(cvk::view(x.data(), 1, 2, 3, 4), {.window = 3}), {.window = 3});
  REQUIRE(std::vector<float>(back.data(), back.data() + back.size()) ==
          std::vector<float>(want.begin(), want.end()));
  Eigen::Tensor<float, 3, Eigen::RowMajor> maps(1, 3, 4);
  const auto sample = [](index_t i, cvk::strided_view<const float, 4>) {
    cvk::tensor<float, 3> m(1, 3, 4);
    m(0, 1, 2) = static_cast<float>(i);
    return m;
  };
  cvk::fickle_aggregate(e, sample, {.samples = 4, .aggregation = cvk::fickle_aggregation::max},
                        maps);
  CHECK(maps(0, 1, 2) == 3.0f);
  CHECK(maps(0, 0, 0) == 0.0f);
}
#endif

TEST_CASE("fickle: errors", "[fickle]") {
  std::vector<float> x(2 * 3 * 4 * 4, 1.0f);
  const auto in = cvk::view(x.data(), 2, 3, 4, 4);
  using P = cvk::fickle_params;
  CHECK_THROWS_WITH(cvk::fickle_expand(in, P{.window = 2}),
                    Catch::Contains("fickle_expand: window must be odd and >= 1, got 2"));
  CHECK_THROWS_AS(cvk::fickle_expand(in, P{.window = 0}), cvk::invalid_argument);
  CHECK_THROWS_AS(cvk::fickle_expand(in, P{.window = -3}), cvk::invalid_argument);
  CHECK_THROWS_AS(cvk::fickle_expand(in, P{.threads = -1}), cvk::invalid_argument);
  std::vector<float> wrong(2 * 3 * 12 * 11);
  CHECK_THROWS_AS(cvk::fickle_expand(in, P{}, cvk::view(wrong.data(), 2, 3, 12, 11)),
                  cvk::shape_error);
  CHECK_THROWS_WITH(cvk::fickle_expand_backward(cvk::view(wrong.data(), 2, 3, 12, 11), P{}),
                    Catch::Contains("H and W multiples of window 3, got 2×3×12×11"));
  // Empty features: an empty expansion.
  const auto empty = cvk::fickle_expand(cvk::view(x.data(), 0, 3, 4, 4), P{});
  CHECK(empty.size() == 0);
  CHECK(empty.extent(2) == 12);
  // Masks.
  CHECK_THROWS_WITH(cvk::fickle_dropout_mask<float>({2, 3, 4, 4}, P{.drop_probability = 1.5}, 0),
                    Catch::Contains("drop_probability must be in [0, 1], got 1.5"));
  CHECK_THROWS_AS(
      cvk::fickle_dropout_mask<float>({2, 3, 4, 4}, P{.drop_probability = std::nan("")}, 0),
      cvk::invalid_argument);
  CHECK_THROWS_AS(cvk::fickle_dropout_mask<float>({2, 0, 4, 4}, P{}, 0), cvk::shape_error);
  CHECK_THROWS_AS(cvk::fickle_dropout_mask<float>(
                      {2, 3, 4, 4}, P{.sharing = static_cast<cvk::fickle_mask_sharing>(5)}, 0),
                  cvk::invalid_argument);
  // Aggregation.
  const auto good = [](index_t, cvk::strided_view<const float, 4>) {
    return cvk::tensor<float, 3>(2, 5, 5);
  };
  CHECK_THROWS_WITH(cvk::fickle_aggregate({2, 3, 4, 4}, good, P{.samples = 0}),
                    Catch::Contains("samples must be >= 1, got 0"));
  CHECK_THROWS_WITH(cvk::fickle_aggregate({2, 3, 4, 4}, good, P{.samples = 2, .threshold = 2}),
                    Catch::Contains("threshold must be in [0, 1], got 2"));
  CHECK_THROWS_AS(cvk::fickle_aggregate(
                      {2, 3, 4, 4}, good,
                      P{.samples = 2, .aggregation = static_cast<cvk::fickle_aggregation>(9)}),
                  cvk::invalid_argument);
  const auto wrong_n = [](index_t, cvk::strided_view<const float, 4>) {
    return cvk::tensor<float, 3>(3, 5, 5);
  };
  CHECK_THROWS_WITH(cvk::fickle_aggregate({2, 3, 4, 4}, wrong_n, P{.samples = 2}),
                    Catch::Contains("sample 0 returned a map of 3×5×5, expected N×H×W with N = 2"));
  const auto changing = [](index_t i, cvk::strided_view<const float, 4>) {
    return cvk::tensor<float, 3>(2, 5, i == 0 ? 5 : 6);
  };
  CHECK_THROWS_WITH(cvk::fickle_aggregate({2, 3, 4, 4}, changing, P{.samples = 2}),
                    Catch::Contains("sample 1 returned a map of 2×5×6, expected 2×5×5"));
  cvk::tensor<float, 3> out(2, 5, 4);
  CHECK_THROWS_AS(cvk::fickle_aggregate({2, 3, 4, 4}, good, P{.samples = 2}, out),
                  cvk::shape_error);
  cvk::tensor<float, 3> out_n(1, 5, 5);
  CHECK_THROWS_WITH(cvk::fickle_aggregate({2, 3, 4, 4}, good, P{.samples = 2}, out_n),
                    Catch::Contains("out must be N×H×W with N = 2"));
  const auto nan_map = [](index_t i, cvk::strided_view<const float, 4>) {
    cvk::tensor<float, 3> m(2, 5, 5);
    if (i == 1) m(1, 2, 3) = std::numeric_limits<float>::quiet_NaN();
    return m;
  };
  CHECK_THROWS_WITH(cvk::fickle_aggregate({2, 3, 4, 4}, nan_map, P{.samples = 3}),
                    Catch::Contains("sample 1 returned a map with NaN at (1, 2, 3)"));
  CHECK_THROWS_AS(cvk::fickle_aggregate({2, 3, 4, 4}, nan_map, P{.samples = 3}),
                  cvk::invalid_argument);
}
