// cvk — computer-vision kernels, header-only C++20.
// Tests of cvk/saliency/metrics.hpp: Spearman's rho against scipy.stats.spearmanr goldens and a
// plain O(n²) rank reference, SSIM against skimage's formula (numpy/scipy goldens, both windows)
// and a direct per-window reference, the pointing game by hand (TorchRay's tolerance and
// Quantus' exact hit), the RISE deletion/insertion curves of a linear model (numpy goldens),
// cascading randomisation, thread invariance and the errors.
// SPDX-License-Identifier: MIT
#include <cvk/core/rng.hpp>
#include <cvk/saliency/metrics.hpp>
#include <cvk/saliency/postprocess.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "support/compare.hpp"
#include "support/conv_reference.hpp"
#include "support/fixtures.hpp"

namespace {

using cvk::index_t;

const cvk_test::fixture_file& fixtures() {
  static const cvk_test::fixture_file file(cvk_test::test_data_path("saliency_post_torch.txt"));
  return file;
}

template <class T>
std::vector<T> random_values(cvk::rng& gen, index_t count, double lo = -1, double hi = 1) {
  std::vector<T> v(static_cast<std::size_t>(count));
  for (auto& x : v) x = static_cast<T>(gen.uniform(lo, hi));
  return v;
}

/// The values of x behind a view whose last two axes are reversed (negative strides).
template <class T>
struct reversed_maps {
  std::vector<T> buffer;
  cvk::strided_view<T, 3> view;
};
template <class T>
reversed_maps<T> reversed(const std::vector<T>& x, index_t n, index_t h, index_t w) {
  reversed_maps<T> r;
  r.buffer.resize(x.size());
  r.view = {r.buffer.data() + (h * w - 1), {n, h, w}, {h * w, -w, -1}};
  for (index_t i = 0; i < n; ++i)
    for (index_t y = 0; y < h; ++y)
      for (index_t c = 0; c < w; ++c)
        r.view(i, y, c) = x[static_cast<std::size_t>((i * h + y) * w + c)];
  return r;
}

// ---------------------------------------------------------------------------------------------
// References.

/// Spearman from the definition: rank_i = 1 + #{j: v_j < v_i} + (#{j: v_j == v_i} − 1)/2, then
/// Pearson in long double. NaN for a constant input.
double reference_spearman(const std::vector<double>& a, const std::vector<double>& b) {
  const auto ranks = [](const std::vector<double>& v) {
    std::vector<long double> r;
    for (const double x : v) {
      long double less = 0, equal = 0;
      for (const double y : v) {
        less += y < x ? 1 : 0;
        equal += y == x ? 1 : 0;
      }
      r.push_back(1 + less + (equal - 1) / 2);
    }
    return r;
  };
  const auto ra = ranks(a), rb = ranks(b);
  const auto n = static_cast<long double>(a.size());
  long double ma = 0, mb = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    ma += ra[i] / n;
    mb += rb[i] / n;
  }
  long double sab = 0, saa = 0, sbb = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    sab += (ra[i] - ma) * (rb[i] - mb);
    saa += (ra[i] - ma) * (ra[i] - ma);
    sbb += (rb[i] - mb) * (rb[i] - mb);
  }
  if (saa == 0 || sbb == 0) return std::nan("");
  return static_cast<double>(sab / std::sqrt(saa * sbb));
}

/// SSIM from the definition, window by window: weights g(i)·g(j) over each valid window.
double reference_ssim(const std::vector<double>& a, const std::vector<double>& b, index_t h,
                      index_t w, index_t size, bool gaussian, double sigma, bool sample,
                      double range, double k1 = 0.01, double k2 = 0.03) {
  std::vector<long double> g(static_cast<std::size_t>(size));
  long double gs = 0;
  for (index_t k = 0; k < size; ++k) {
    const long double d = static_cast<long double>(k - size / 2);
    g[static_cast<std::size_t>(k)] = gaussian ? std::exp(-d * d / (2.0L * sigma * sigma)) : 1.0L;
    gs += g[static_cast<std::size_t>(k)];
  }
  for (auto& v : g) v /= gs;
  const long double np = static_cast<long double>(size * size);
  const long double norm = sample ? np / (np - 1) : 1.0L;
  const long double c1 = (k1 * range) * (k1 * range), c2 = (k2 * range) * (k2 * range);
  long double total = 0;
  index_t count = 0;
  for (index_t y = 0; y + size <= h; ++y)
    for (index_t x = 0; x + size <= w; ++x) {
      long double ua = 0, ub = 0, uaa = 0, ubb = 0, uab = 0;
      for (index_t i = 0; i < size; ++i)
        for (index_t j = 0; j < size; ++j) {
          const long double wt = g[static_cast<std::size_t>(i)] * g[static_cast<std::size_t>(j)];
          const long double va = a[static_cast<std::size_t>((y + i) * w + x + j)];
          const long double vb = b[static_cast<std::size_t>((y + i) * w + x + j)];
          ua += wt * va;
          ub += wt * vb;
          uaa += wt * va * va;
          ubb += wt * vb * vb;
          uab += wt * va * vb;
        }
      const long double sa = norm * (uaa - ua * ua), sb = norm * (ubb - ub * ub),
                        sab = norm * (uab - ua * ub);
      total += (2 * ua * ub + c1) * (2 * sab + c2) / ((ua * ua + ub * ub + c1) * (sa + sb + c2));
      ++count;
    }
  return static_cast<double>(total / static_cast<long double>(count));
}

// ---------------------------------------------------------------------------------------------
// spearman_correlation

TEST_CASE("spearman_correlation by hand", "[metrics]") {
  // Identical order: 1; reversed: −1; ranks with ties by hand.
  const std::vector<double> a{1, 2, 3, 4}, b{10, 20, 30, 40}, c{4, 3, 2, 1};
  const cvk::strided_view<const double, 3> va(a.data(), {1, 2, 2}), vb(b.data(), {1, 2, 2}),
      vc(c.data(), {1, 2, 2});
  CHECK(cvk::spearman_correlation(va, vb)(0) == Approx(1.0));
  CHECK(cvk::spearman_correlation(va, vc)(0) == Approx(-1.0));
  // |a| = |−a|: the absolute comparison of a and −a is perfect, the signed one reversed.
  const std::vector<double> neg{-1, -2, -3, -4};
  const cvk::strided_view<const double, 3> vn(neg.data(), {1, 2, 2});
  CHECK(cvk::spearman_correlation(va, vn)(0) == Approx(-1.0));
  CHECK(cvk::spearman_correlation(va, vn, {.absolute = true})(0) == Approx(1.0));
  // x = 1, 2, 2, 3 (ranks 1, 2.5, 2.5, 4) against y = 1, 3, 2, 4: ρ = 4.5/sqrt(4.5·5) = 0.9487.
  const std::vector<double> x{1, 2, 2, 3}, y{1, 3, 2, 4};
  const auto r = cvk::spearman_correlation(cvk::strided_view<const double, 3>(x.data(), {1, 1, 4}),
                                           cvk::strided_view<const double, 3>(y.data(), {1, 1, 4}));
  CHECK(r(0) == Approx(4.5 / std::sqrt(4.5 * 5.0)).epsilon(1e-14));
}

TEMPLATE_TEST_CASE("spearman_correlation matches the O(n²) rank reference", "[metrics]", float,
                   double) {
  using T = TestType;
  cvk::rng gen(31, 1);
  for (int trial = 0; trial < cvk_test::trials(20); ++trial) {
    const index_t n = cvk_test::draw(gen, 1, 3), h = cvk_test::draw(gen, 1, 6),
                  w = cvk_test::draw(gen, 1, 6);
    auto a = random_values<T>(gen, n * h * w, -2, 2);
    auto b = random_values<T>(gen, n * h * w, -2, 2);
    if (trial % 2 == 1) {
      for (auto& v : a) v = std::round(v);
      for (auto& v : b) v = std::round(v * 2) / 2;
    }
    const auto ra = reversed(a, n, h, w);
    for (const bool absolute : {false, true}) {
      const auto rho = cvk::spearman_correlation(
          ra.view, cvk::strided_view<const T, 3>(b.data(), {n, h, w}), {.absolute = absolute});
      for (index_t i = 0; i < n; ++i) {
        std::vector<double> ma, mb;
        for (index_t k = 0; k < h * w; ++k) {
          const auto va = static_cast<double>(a[static_cast<std::size_t>(i * h * w + k)]);
          const auto vb = static_cast<double>(b[static_cast<std::size_t>(i * h * w + k)]);
          ma.push_back(absolute ? std::fabs(va) : va);
          mb.push_back(absolute ? std::fabs(vb) : vb);
        }
        const double expected = reference_spearman(ma, mb);
        INFO("trial " << trial << " map " << i << " absolute " << absolute << " " << h << "x" << w);
        if (std::isnan(expected)) {
          CHECK(std::isnan(rho(i)));
        } else {
          CHECK(static_cast<double>(rho(i)) ==
                Approx(expected).margin(4 * std::numeric_limits<T>::epsilon()));
        }
      }
      for (const int threads : {1, 2, 3}) {
        std::vector<T> out(static_cast<std::size_t>(n));
        cvk::spearman_correlation(ra.view, cvk::strided_view<const T, 3>(b.data(), {n, h, w}), out,
                                  {.absolute = absolute, .threads = threads});
        for (index_t i = 0; i < n; ++i) {
          CHECK(cvk_test::same_value(out[static_cast<std::size_t>(i)], rho(i)));
        }
      }
    }
  }
}

TEMPLATE_TEST_CASE("spearman_correlation matches scipy.stats.spearmanr", "[metrics]", float,
                   double) {
  using T = TestType;
  const auto& f = fixtures();
  const std::string d = sizeof(T) == 4 ? "float32" : "float64";
  const auto a = f.table("spearman/" + d + "/a").values<T>();
  const auto b = f.table("spearman/" + d + "/b").values<T>();
  const auto rho = f.table("spearman/" + d + "/rho").values<double>();
  const auto rho_abs = f.table("spearman/" + d + "/rho_abs").values<double>();
  const cvk::strided_view<const T, 3> va(a.data(), {4, 5, 6}), vb(b.data(), {4, 5, 6});
  const auto r = cvk::spearman_correlation(va, vb);
  const auto ra = cvk::spearman_correlation(va, vb, {.absolute = true});
  for (index_t i = 0; i < 4; ++i) {
    INFO("map " << i);
    CHECK(static_cast<double>(r(i)) == Approx(rho[static_cast<std::size_t>(i)]).margin(1e-6));
    CHECK(static_cast<double>(ra(i)) == Approx(rho_abs[static_cast<std::size_t>(i)]).margin(1e-6));
  }
}

TEST_CASE("spearman_correlation: constant maps give NaN, NaN and shapes are errors", "[metrics]") {
  using Catch::Matchers::Contains;
  const cvk::tensor<double, 3> constant(std::array<index_t, 3>{2, 3, 3}, 1.0);
  cvk::tensor<double, 3> other(2, 3, 3);
  other(0, 1, 1) = 2;
  const auto r = cvk::spearman_correlation(constant, other);
  CHECK(std::isnan(r(0)));
  CHECK(std::isnan(r(1)));
  CHECK(std::isnan(cvk::spearman_correlation(cvk::tensor<float, 3>(1, 1, 1),
                                             cvk::tensor<float, 3>(1, 1, 1))(0)));
  other(1, 2, 0) = std::numeric_limits<double>::quiet_NaN();
  CHECK_THROWS_WITH(cvk::spearman_correlation(constant, other),
                    Contains("spearman_correlation: b[1] holds NaN at (2, 0)"));
  const cvk::tensor<double, 3> small(2, 3, 2);
  CHECK_THROWS_WITH(cvk::spearman_correlation(constant, small),
                    Contains("a and b must have the same shape N×H×W, got 2×3×3 and 2×3×2"));
  CHECK(cvk::spearman_correlation(cvk::tensor<double, 3>(0, 3, 3), cvk::tensor<double, 3>(0, 3, 3))
            .size() == 0);
  CHECK_THROWS_AS(cvk::spearman_correlation(constant, constant, {.threads = -1}),
                  cvk::invalid_argument);
}

// ---------------------------------------------------------------------------------------------
// ssim

TEMPLATE_TEST_CASE("ssim matches the per-window reference", "[metrics]", float, double) {
  using T = TestType;
  cvk::rng gen(32, 1);
  for (int trial = 0; trial < cvk_test::trials(12); ++trial) {
    const bool gaussian = trial % 3 == 2;
    const double sigma = gaussian ? 0.5 + gen.uniform<double>() : 1.5;
    const index_t size = gaussian ? 2 * static_cast<index_t>(std::floor(3.5 * sigma + 0.5)) + 1
                                  : 2 * cvk_test::draw(gen, 0, 4) + 1;
    const index_t n = cvk_test::draw(gen, 1, 3), h = size + cvk_test::draw(gen, 0, 6),
                  w = size + cvk_test::draw(gen, 0, 6);
    const auto a = random_values<T>(gen, n * h * w, -1, 2);
    auto b = a;
    for (auto& v : b) v += static_cast<T>(gen.uniform(-0.5, 0.5));
    const bool sample = gen.below(2) == 0;
    const double range = trial % 4 == 0 ? 3.0 : 0.0;
    const cvk::ssim_params p{
        .window = gaussian ? cvk::ssim_window::gaussian : cvk::ssim_window::uniform,
        .window_size = gaussian ? 0 : size,
        .sigma = sigma,
        .covariance = sample ? cvk::ssim_covariance::sample : cvk::ssim_covariance::population,
        .data_range = range};
    const auto ra = reversed(a, n, h, w);
    const auto s = cvk::ssim(ra.view, cvk::strided_view<const T, 3>(b.data(), {n, h, w}), p);
    for (index_t i = 0; i < n; ++i) {
      const std::vector<double> ma(a.begin() + i * h * w, a.begin() + (i + 1) * h * w);
      const std::vector<double> mb(b.begin() + i * h * w, b.begin() + (i + 1) * h * w);
      double r = range;
      if (r == 0) {
        r = std::max(*std::max_element(ma.begin(), ma.end()),
                     *std::max_element(mb.begin(), mb.end())) -
            std::min(*std::min_element(ma.begin(), ma.end()),
                     *std::min_element(mb.begin(), mb.end()));
      }
      const double expected = reference_ssim(ma, mb, h, w, size, gaussian, sigma, sample, r);
      INFO("trial " << trial << " map " << i << " " << h << "x" << w << " window " << size
                    << (gaussian ? " gaussian" : " uniform") << " sample " << sample);
      CHECK(static_cast<double>(s(i)) ==
            Approx(expected).margin(1e-10 + 4 * std::numeric_limits<T>::epsilon()));
    }
    for (const int threads : {1, 2, 3}) {
      std::vector<T> out(static_cast<std::size_t>(n));
      auto q = p;
      q.threads = threads;
      cvk::ssim(ra.view, cvk::strided_view<const T, 3>(b.data(), {n, h, w}), out, q);
      for (index_t i = 0; i < n; ++i) CHECK(out[static_cast<std::size_t>(i)] == s(i));
    }
  }
}

TEMPLATE_TEST_CASE("ssim matches skimage's structural_similarity (numpy/scipy goldens)",
                   "[metrics]", float, double) {
  using T = TestType;
  const auto& f = fixtures();
  const std::string d = sizeof(T) == 4 ? "float32" : "float64";
  const int cases = std::stoi(f.meta("ssim_cases"));
  REQUIRE(cases >= 6);
  for (int k = 0; k < cases; ++k) {
    const std::string prefix = "ssim" + std::to_string(k);
    const auto p = f.table(prefix + "/params").values<double>();
    const auto h = static_cast<index_t>(p[0]), w = static_cast<index_t>(p[1]);
    const bool gaussian = p[3] != 0;
    const auto a = f.table(prefix + "/" + d + "/a").values<T>();
    const auto b = f.table(prefix + "/" + d + "/b").values<T>();
    const auto expected = f.table(prefix + "/" + d + "/ssim").values<double>();
    const cvk::ssim_params params{
        .window = gaussian ? cvk::ssim_window::gaussian : cvk::ssim_window::uniform,
        .window_size = gaussian ? 0 : static_cast<index_t>(p[2]),
        .covariance = p[4] != 0 ? cvk::ssim_covariance::sample : cvk::ssim_covariance::population,
        .k1 = p[6],
        .k2 = p[7],
        .data_range = p[5]};
    const auto s = cvk::ssim(cvk::strided_view<const T, 3>(a.data(), {3, h, w}),
                             cvk::strided_view<const T, 3>(b.data(), {3, h, w}), params);
    for (index_t i = 0; i < 3; ++i) {
      INFO(prefix << " map " << i);
      CHECK(static_cast<double>(s(i)) ==
            Approx(expected[static_cast<std::size_t>(i)]).margin(sizeof(T) == 4 ? 1e-6 : 1e-12));
    }
  }
  // Defaults: the uniform 7×7 window with sample covariance and automatic covariance for the
  // Wang et al. window.
  const auto a = f.table("ssim3/" + d + "/a").values<T>();
  const auto b = f.table("ssim3/" + d + "/b").values<T>();
  const auto wang = cvk::ssim(cvk::strided_view<const T, 3>(a.data(), {3, 24, 20}),
                              cvk::strided_view<const T, 3>(b.data(), {3, 24, 20}),
                              {.window = cvk::ssim_window::gaussian});
  CHECK(static_cast<double>(wang(0)) ==
        Approx(f.table("ssim3/" + d + "/ssim").values<double>()[0]).margin(1e-6));
}

TEST_CASE("ssim by hand: identical maps give 1, constants, errors", "[metrics]") {
  using Catch::Matchers::Contains;
  cvk::rng gen(33, 1);
  cvk::tensor<double, 3> a(2, 8, 9);
  for (auto& v : a) v = gen.uniform<double>();
  const auto same = cvk::ssim(a, a);
  CHECK(same(0) == Approx(1.0).epsilon(1e-12));
  CHECK(same(1) == Approx(1.0).epsilon(1e-12));
  // Two equal constants: R = 0, identical images: 1 (skimage's 0/0 is NaN).
  const cvk::tensor<float, 3> c(std::array<index_t, 3>{1, 7, 7}, 3.0f);
  CHECK(cvk::ssim(c, c)(0) == 1.0f);
  // A constant against its negation: μ terms (2·3·(−3) + C1)/(9 + 9 + C1) with C1 = (0.01·6)².
  const cvk::tensor<float, 3> d(std::array<index_t, 3>{1, 7, 7}, -3.0f);
  const double c1 = 0.06 * 0.06, c2 = 0.18 * 0.18;
  CHECK(static_cast<double>(cvk::ssim(c, d)(0)) ==
        Approx((-18 + c1) * c2 / ((18 + c1) * c2)).epsilon(1e-6));
  CHECK_THROWS_WITH(cvk::ssim(cvk::tensor<double, 3>(1, 6, 9), cvk::tensor<double, 3>(1, 6, 9)),
                    Contains("ssim: maps must be at least 7×7 for the SSIM window, got 6×9"));
  CHECK_THROWS_WITH(cvk::ssim(a, a, {.window_size = 4}),
                    Contains("window_size must be odd and >= 1, got 4"));
  CHECK_THROWS_WITH(cvk::ssim(a, a, {.window = cvk::ssim_window::gaussian, .window_size = 7}),
                    Contains("window_size must be 0 or that, got 7"));
  CHECK_THROWS_AS(cvk::ssim(a, a, {.window = cvk::ssim_window::gaussian, .sigma = 0}),
                  cvk::invalid_argument);
  CHECK_THROWS_AS(cvk::ssim(a, a, {.data_range = -1}), cvk::invalid_argument);
  CHECK_THROWS_AS(cvk::ssim(a, a, {.k1 = std::nan("")}), cvk::invalid_argument);
  CHECK_THROWS_AS(cvk::ssim(a, a, {.covariance = static_cast<cvk::ssim_covariance>(4)}),
                  cvk::invalid_argument);
  a(1, 3, 3) = std::nan("");
  CHECK_THROWS_WITH(cvk::ssim(a, a), Contains("ssim: a[1] holds NaN at (3, 3)"));
  CHECK(cvk::ssim(cvk::tensor<float, 3>(0, 2, 2), cvk::tensor<float, 3>(0, 2, 2)).size() == 0);
}

// ---------------------------------------------------------------------------------------------
// pointing_game

TEST_CASE("pointing_game: TorchRay's strict tolerance, Quantus' exact hit, ties", "[metrics]") {
  using Catch::Matchers::Contains;
  // 3 maps 40×40; maps 0 and 1 peak at (10, 10); map 2 is flat (argmax = (0, 0)).
  cvk::tensor<float, 3> maps(3, 40, 40);
  maps(0, 10, 10) = 1;
  maps(1, 10, 10) = 1;
  maps(1, 30, 30) = 1;  // a tie later in row-major order: (10, 10) wins
  cvk::tensor<std::uint8_t, 3> targets(3, 40, 40);
  targets(0, 10, 25) = 1;  // distance exactly 15: TorchRay's test is strict
  targets(1, 19, 22) = 1;  // distance 15 (9² + 12² = 225): strict again
  targets(1, 20, 21) = 1;  // distance sqrt(221) < 15: a hit
  targets(2, 0, 0) = 1;    // on the point
  auto r = cvk::pointing_game(maps, targets);
  CHECK(r.hits(0) == 0);
  CHECK(r.hits(1) == 1);
  CHECK(r.hits(2) == 1);
  CHECK(r.points(1, 0) == 10);
  CHECK(r.points(1, 1) == 10);
  CHECK(r.accuracy == Approx(2.0 / 3));
  r = cvk::pointing_game(maps, targets, {.tolerance = 15.5});
  CHECK(r.hits(0) == 1);
  // Quantus: tolerance 0, a hit only when the argmax is inside the mask.
  r = cvk::pointing_game(maps, targets, {.tolerance = 0});
  CHECK(r.hits(0) == 0);
  CHECK(r.hits(1) == 0);
  CHECK(r.hits(2) == 1);
  targets(0, 10, 10) = 1;
  CHECK(cvk::pointing_game(maps, targets, {.tolerance = 0}).hits(0) == 1);
  for (const int threads : {1, 2, 3}) {
    const auto t = cvk::pointing_game(maps, targets, {.threads = threads});
    CHECK(t.accuracy == 1.0);
  }
  // Float masks and a huge tolerance.
  cvk::tensor<double, 3> soft(3, 40, 40);
  soft(0, 39, 39) = 0.5;
  soft(1, 39, 39) = 0.5;
  soft(2, 39, 39) = 0.5;
  CHECK(cvk::pointing_game(maps, soft, {.tolerance = 1e9}).accuracy == 1.0);
  CHECK(cvk::pointing_game(maps, soft).accuracy == 0.0);
  // Errors.
  cvk::tensor<std::uint8_t, 3> empty(3, 40, 40);
  empty(0, 0, 0) = 1;
  empty(2, 0, 0) = 1;
  CHECK_THROWS_WITH(cvk::pointing_game(maps, empty),
                    Contains("pointing_game: targets[1] has no pixel"));
  maps(2, 5, 5) = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_WITH(cvk::pointing_game(maps, targets), Contains("maps[2] holds NaN at (5, 5)"));
  CHECK_THROWS_AS(cvk::pointing_game(maps, targets, {.tolerance = -1}), cvk::invalid_argument);
  CHECK_THROWS_WITH(cvk::pointing_game(maps, cvk::tensor<std::uint8_t, 3>(3, 40, 39)),
                    Contains("targets must have the maps' shape 3×40×40, got 3×40×39"));
  const auto none =
      cvk::pointing_game(cvk::tensor<float, 3>(0, 4, 4), cvk::tensor<std::uint8_t, 3>(0, 4, 4));
  CHECK(std::isnan(none.accuracy));
}

// ---------------------------------------------------------------------------------------------
// deletion_auc / insertion_auc

/// A linear model: score = Σ weight · x over C×H×W (any layout through the view).
template <class T>
struct linear_model {
  std::vector<T> weight;  // C×H×W
  index_t c, h, w;
  cvk::layout l;
  int* calls;
  void operator()(cvk::strided_view<const T, 4> batch, cvk::strided_view<T, 1> scores) const {
    ++*calls;
    for (index_t b = 0; b < batch.extent(0); ++b) {
      double s = 0;
      for (index_t ch = 0; ch < c; ++ch)
        for (index_t y = 0; y < h; ++y)
          for (index_t x = 0; x < w; ++x) {
            const T v = l == cvk::layout::nchw ? batch(b, ch, y, x) : batch(b, y, x, ch);
            s += static_cast<double>(weight[static_cast<std::size_t>((ch * h + y) * w + x)]) *
                 static_cast<double>(v);
          }
      scores(b) = static_cast<T>(s);
    }
  }
};

TEMPLATE_TEST_CASE("deletion_auc / insertion_auc match RISE's CausalMetric (numpy goldens)",
                   "[metrics]", float, double) {
  using T = TestType;
  const auto& f = fixtures();
  const std::string d = sizeof(T) == 4 ? "float32" : "float64";
  const auto p = f.table("causal/params").values<double>();
  const auto c = static_cast<index_t>(p[0]), h = static_cast<index_t>(p[1]),
             w = static_cast<index_t>(p[2]), step = static_cast<index_t>(p[3]);
  const double sigma = p[4];
  const auto images = f.table("causal/" + d + "/images").values<T>();
  const auto maps = f.table("causal/" + d + "/maps").values<T>();
  int calls = 0;
  const linear_model<T> model{
      f.table("causal/" + d + "/weight").values<T>(), c, h, w, cvk::layout::nchw, &calls};
  const cvk::strided_view<const T, 4> x(images.data(), {2, c, h, w});
  const cvk::strided_view<const T, 3> m(maps.data(), {2, h, w});
  const index_t steps = (h * w + step - 1) / step;
  const double tol = sizeof(T) == 4 ? 2e-4 : 1e-9;
  for (const bool insertion : {false, true}) {
    const std::string mode = insertion ? "insertion" : "deletion";
    const auto curve = f.table("causal/" + d + "/" + mode + "/curve").values<double>();
    const auto auc = f.table("causal/" + d + "/" + mode + "/auc").values<double>();
    for (const index_t batch : {1, 4, 100}) {
      calls = 0;
      const cvk::causal_params params{
          .step = step, .blur_sigma = sigma, .model = {.batch_size = batch}};
      const auto r = insertion ? cvk::insertion_auc(model, x, m, params)
                               : cvk::deletion_auc(model, x, m, params);
      REQUIRE(r.curve.extents() == std::array<index_t, 2>{2, steps + 1});
      INFO(mode << " batch " << batch);
      for (index_t i = 0; i < 2; ++i) {
        CHECK(static_cast<double>(r.auc(i)) ==
              Approx(auc[static_cast<std::size_t>(i)]).margin(tol));
        for (index_t k = 0; k <= steps; ++k) {
          CHECK(static_cast<double>(r.curve(i, k)) ==
                Approx(curve[static_cast<std::size_t>(i * (steps + 1) + k)]).margin(tol));
        }
      }
      // Batches never mix images: ceil((S + 1)/batch) calls per image.
      CHECK(calls == 2 * ((steps + 1 + batch - 1) / batch));
    }
  }
}

TEST_CASE("deletion_auc by hand: baselines, layouts, threads, errors", "[metrics]") {
  using Catch::Matchers::Contains;
  // One 1×2×2 image of ones, score = sum: deleting one pixel per step gives 4, 3, 2, 1, 0.
  const cvk::tensor<double, 4> ones(std::array<index_t, 4>{1, 1, 2, 2}, 1.0);
  cvk::tensor<double, 3> map(1, 2, 2);
  map(0, 0, 0) = 3;
  map(0, 0, 1) = 1;
  map(0, 1, 0) = 3;  // tie with (0, 0): the lower index goes first
  map(0, 1, 1) = 2;
  const auto sum = [](cvk::strided_view<const double, 4> batch) {
    cvk::tensor<double, 1> s(batch.extent(0));
    for (index_t b = 0; b < batch.extent(0); ++b)
      for (index_t i = 0; i < batch.extent(1); ++i)
        for (index_t y = 0; y < batch.extent(2); ++y)
          for (index_t x = 0; x < batch.extent(3); ++x) {
            s(b) += batch(b, i, y, x) * static_cast<double>(1 + 10 * y + 100 * x);
          }
    return s;
  };
  // Weighted so that the order shows: pixel (y, x) weighs 1 + 10y + 100x: 1, 101, 11, 111.
  const auto r = cvk::deletion_auc(sum, ones, map, {.step = 1});
  // Order: (0,0) [1], (1,0) [11], (1,1) [111], (0,1) [101].
  const std::array<double, 5> expected{224, 223, 212, 101, 0};
  for (index_t k = 0; k < 5; ++k) CHECK(r.curve(0, k) == expected[static_cast<std::size_t>(k)]);
  CHECK(r.auc(0) == Approx((224 + 223 + 212 + 101 + 0 - 112.0) / 4));
  // A constant baseline 0.5 and a tensor baseline of twos; insertion from the same baseline.
  const auto half = cvk::deletion_auc(sum, ones, map, {.step = 2, .baseline = 0.5});
  CHECK(half.curve(0, 1) == Approx(224 - 0.5 * 12));
  CHECK(half.curve(0, 2) == Approx(112));
  const cvk::tensor<double, 4> twos(std::array<index_t, 4>{1, 1, 2, 2}, 2.0);
  const auto ins = cvk::insertion_auc(sum, ones, map, twos, {.step = 4});
  CHECK(ins.curve(0, 0) == Approx(448));
  CHECK(ins.curve(0, 1) == Approx(224));
  CHECK(ins.auc(0) == Approx(336));
  // NHWC images with 3 channels, threads: the same curve as the NCHW copy.
  cvk::rng gen(34, 1);
  cvk::tensor<double, 4> nchw(2, 3, 4, 5);
  for (auto& v : nchw) v = gen.uniform<double>();
  cvk::tensor<double, 4> nhwc(2, 4, 5, 3);
  for (index_t n = 0; n < 2; ++n)
    for (index_t ch = 0; ch < 3; ++ch)
      for (index_t y = 0; y < 4; ++y)
        for (index_t x = 0; x < 5; ++x) nhwc(n, y, x, ch) = nchw(n, ch, y, x);
  cvk::tensor<double, 3> maps(2, 4, 5);
  for (auto& v : maps) v = gen.uniform<double>();
  int calls = 0;
  std::vector<double> weight(60);
  for (auto& v : weight) v = gen.uniform(-1.0, 1.0);
  const linear_model<double> a{weight, 3, 4, 5, cvk::layout::nchw, &calls};
  const linear_model<double> b{weight, 3, 4, 5, cvk::layout::nhwc, &calls};
  const auto ra = cvk::insertion_auc(a, nchw, maps, {.step = 3});
  for (const int threads : {1, 2, 3}) {
    const auto rb =
        cvk::insertion_auc(b, nhwc, maps,
                           {.step = 3,
                            .model = {.batch_size = 5, .data_layout = cvk::layout::nhwc},
                            .threads = threads});
    CHECK(rb.curve == ra.curve);
    CHECK(rb.auc == ra.auc);
  }
  // Errors.
  CHECK_THROWS_WITH(cvk::deletion_auc(sum, ones, map, {.step = 0}),
                    Contains("deletion_auc: step must be >= 1 pixel, got 0"));
  CHECK_THROWS_WITH(cvk::deletion_auc(sum, ones, cvk::tensor<double, 3>(1, 2, 3)),
                    Contains("maps must be N×H×W of images N×C×H×W 1×1×2×2, got 1×2×3"));
  CHECK_THROWS_AS(cvk::deletion_auc(sum, ones, map, {.baseline = std::nan("")}),
                  cvk::invalid_argument);
  CHECK_THROWS_AS(cvk::insertion_auc(sum, ones, map, {.blur_sigma = -1}), cvk::invalid_argument);
  CHECK_THROWS_AS(cvk::deletion_auc(sum, ones, map, {.model = {.batch_size = 0}}),
                  cvk::invalid_argument);
  CHECK_THROWS_WITH(cvk::deletion_auc(sum, ones, map, cvk::tensor<double, 4>(1, 2, 2, 2)),
                    Contains("baseline must have the images' shape 1×1×2×2"));
  map(0, 1, 1) = std::nan("");
  CHECK_THROWS_WITH(cvk::deletion_auc(sum, ones, map), Contains("maps[0] holds NaN at (1, 1)"));
  map(0, 1, 1) = 0;
  const auto wrong = [](cvk::strided_view<const double, 4>) { return cvk::tensor<double, 1>(7); };
  CHECK_THROWS_WITH(
      cvk::deletion_auc(wrong, ones, map),
      Contains("deletion_auc: the forward callable returned 7 scores for a batch of"));
  const auto none =
      cvk::deletion_auc(sum, cvk::tensor<double, 4>(0, 1, 2, 2), cvk::tensor<double, 3>(0, 2, 2));
  CHECK(none.auc.size() == 0);
  CHECK_THROWS_AS(cvk::deletion_auc(sum, cvk::tensor<double, 4>(1, 0, 2, 2), map),
                  cvk::shape_error);
}

// ---------------------------------------------------------------------------------------------
// cascading_randomization

TEST_CASE("cascading_randomization compares every stage with the original", "[metrics]") {
  cvk::rng gen(35, 1);
  cvk::tensor<double, 3> original(2, 8, 8);
  for (auto& v : original) v = gen.uniform(-1.0, 1.0);
  // Stage 1: the original negated; stage 2: noise; each a callable returning maps.
  cvk::tensor<double, 3> noise(2, 8, 8);
  for (auto& v : noise) v = gen.uniform(-1.0, 1.0);
  cvk::tensor<double, 3> negated = original;
  for (auto& v : negated) v = -v;
  std::vector<std::function<cvk::tensor<double, 3>()>> stages{
      [&] { return original; }, [&] { return negated; }, [&] { return noise; }};
  const auto r = cvk::cascading_randomization(stages);
  REQUIRE(r.spearman.extents() == std::array<index_t, 2>{3, 2});
  const auto rho = cvk::spearman_correlation(noise, original);
  const auto s = cvk::ssim(noise, original);
  for (index_t i = 0; i < 2; ++i) {
    CHECK(r.spearman(0, i) == Approx(1.0));
    CHECK(r.spearman_abs(0, i) == Approx(1.0));
    CHECK(r.ssim(0, i) == Approx(1.0));
    CHECK(r.spearman(1, i) == Approx(-1.0));
    CHECK(r.spearman_abs(1, i) == Approx(1.0));  // |−x| = |x|
    CHECK(r.spearman(2, i) == rho(i));
    CHECK(r.ssim(2, i) == s(i));
  }
  // The (stage, method) form: a method run on each stage object.
  const std::vector<double> scales{1.0, 2.0, -1.0};
  const auto q = cvk::cascading_randomization(scales, [&](double k) {
    cvk::tensor<double, 3> m = original;
    for (auto& v : m) v *= k;
    return m;
  });
  CHECK(q.spearman(1, 0) == Approx(1.0));
  CHECK(q.spearman(2, 1) == Approx(-1.0));
  CHECK(q.ssim(1, 0) < 1.0);  // a rescaled map is not structurally identical
  // Errors: an empty range, a stage of another shape.
  using Catch::Matchers::Contains;
  CHECK_THROWS_WITH(
      cvk::cascading_randomization(std::vector<std::function<cvk::tensor<double, 3>()>>{}),
      Contains("cascading_randomization: stages is empty"));
  std::vector<std::function<cvk::tensor<double, 3>()>> bad{
      [&] { return original; }, [] { return cvk::tensor<double, 3>(2, 8, 7); }};
  CHECK_THROWS_WITH(cvk::cascading_randomization(bad),
                    Contains("stage 1 returned maps of 2×8×7, the original's are 2×8×8"));
}

}  // namespace
