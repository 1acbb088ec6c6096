// cvk — computer-vision kernels, header-only C++20.
// Tests of cvk/saliency/detail/resample.hpp (the bilinear and Gaussian kernels every saliency
// method shares) and cvk/saliency/postprocess.hpp: plain reference loops written from the
// definitions on seeded random planes (float and double, contiguous, padded, reversed and
// transposed views), PyTorch 1.13 F.interpolate and TorchRay imsmooth goldens
// (tests/gen_saliency_post_fixtures.py), hand-computed cases and the errors.
// SPDX-License-Identifier: MIT
#include <cvk/core/rng.hpp>
#include <cvk/saliency/detail/resample.hpp>
#include <cvk/saliency/postprocess.hpp>

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

// ---------------------------------------------------------------------------------------------
// Storage of test tensors: the same logical values behind differently strided views.

enum class arrangement { contiguous, padded, reversed, transposed };
constexpr std::array<arrangement, 4> all_arrangements{
    arrangement::contiguous, arrangement::padded, arrangement::reversed, arrangement::transposed};

const char* to_string(arrangement a) {
  switch (a) {
    case arrangement::contiguous:
      return "contiguous";
    case arrangement::padded:
      return "padded (every axis one longer)";
    case arrangement::reversed:
      return "last two axes reversed (negative strides)";
    case arrangement::transposed:
      return "last two axes swapped in memory";
  }
  return "?";
}

template <class T, std::size_t R>
struct stored {
  std::vector<T> buffer;
  cvk::strided_view<T, R> view;
};

/// Element `flat` (row-major over e) of a rank-R view.
template <class T, std::size_t R>
T& element(const cvk::strided_view<T, R>& v, index_t flat) {
  index_t offset = 0;
  for (std::size_t a = R; a-- > 0;) {
    offset += (flat % v.extent(a)) * v.stride(a);
    flat /= v.extent(a);
  }
  return v.data()[offset];
}

/// The row-major values `x` of extents `e` behind a view arranged as `a`; padding holds -99.
template <class T, std::size_t R>
stored<T, R> store(const std::vector<T>& x, const std::array<index_t, R>& e, arrangement a) {
  std::array<std::size_t, R> order{};  // memory order, outer to inner
  for (std::size_t i = 0; i < R; ++i) order[i] = i;
  if (a == arrangement::transposed && R >= 2) std::swap(order[R - 1], order[R - 2]);
  std::array<index_t, R> strides{};
  index_t step = 1;
  index_t base = 1;
  for (std::size_t k = R; k-- > 0;) {
    const std::size_t axis = order[k];
    const bool reverse = a == arrangement::reversed && axis + 2 >= R;
    strides[axis] = reverse ? -step : step;
    if (reverse) base += (e[axis] - 1) * step;
    step *= e[axis] + (a == arrangement::padded ? 1 : 0);
  }
  stored<T, R> s;
  s.buffer.assign(static_cast<std::size_t>(step) + 2, T(-99));
  s.view = {s.buffer.data() + base, e, strides};
  for (index_t i = 0; i < static_cast<index_t>(x.size()); ++i) {
    element(s.view, i) = x[static_cast<std::size_t>(i)];
  }
  return s;
}

/// The row-major values of a view.
template <class T, std::size_t R>
std::vector<std::remove_const_t<T>> values_of(const cvk::strided_view<T, R>& v) {
  std::vector<std::remove_const_t<T>> out(static_cast<std::size_t>(v.size()));
  for (index_t i = 0; i < v.size(); ++i) out[static_cast<std::size_t>(i)] = element(v, i);
  return out;
}

template <class T>
std::vector<T> random_values(cvk::rng& gen, index_t count, double lo = -1, double hi = 1) {
  std::vector<T> v(static_cast<std::size_t>(count));
  for (auto& x : v) x = static_cast<T>(gen.uniform(lo, hi));
  return v;
}

template <class T>
double max_abs(const std::vector<T>& v) {
  double m = 0;
  for (const T x : v) m = std::max(m, std::fabs(static_cast<double>(x)));
  return m;
}

/// max |a − b| over two equally long vectors (infinity when the lengths differ or a NaN shows).
template <class A, class B>
double max_diff(const std::vector<A>& a, const std::vector<B>& b) {
  if (a.size() != b.size()) return std::numeric_limits<double>::infinity();
  double m = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double d = std::fabs(static_cast<double>(a[i]) - static_cast<double>(b[i]));
    if (std::isnan(d)) return std::numeric_limits<double>::infinity();
    m = std::max(m, d);
  }
  return m;
}

template <class T>
constexpr double eps() {
  return static_cast<double>(std::numeric_limits<T>::epsilon());
}

const cvk_test::fixture_file& fixtures() {
  static const cvk_test::fixture_file file(cvk_test::test_data_path("saliency_post_torch.txt"));
  return file;
}

// ---------------------------------------------------------------------------------------------
// Reference loops, written from the definitions.

/// F.interpolate(bilinear) from its definition: the source coordinate of output o along an axis,
/// its floor and the next sample (the last one repeats), in long double.
struct axis_sample {
  index_t lo, hi;
  long double frac;
};
axis_sample reference_coordinate(index_t o, index_t in, index_t out, bool align_corners) {
  long double c = 0;
  if (in == out) {
    c = static_cast<long double>(o);
  } else if (align_corners) {
    c = out == 1 ? 0.0L
                 : static_cast<long double>(o) * static_cast<long double>(in - 1) /
                       static_cast<long double>(out - 1);
  } else {
    c = (static_cast<long double>(o) + 0.5L) * static_cast<long double>(in) /
            static_cast<long double>(out) -
        0.5L;
    c = std::max(c, 0.0L);
  }
  const auto lo = std::min(static_cast<index_t>(std::floor(c)), in - 1);
  return {lo, std::min(lo + 1, in - 1), c - static_cast<long double>(lo)};
}

template <class T>
std::vector<T> reference_bilinear(const std::vector<T>& x, index_t h, index_t w, index_t ho,
                                  index_t wo, bool align_corners) {
  std::vector<T> y;
  const auto at = [&](index_t r, index_t c) {
    return static_cast<long double>(x[static_cast<std::size_t>(r * w + c)]);
  };
  for (index_t oy = 0; oy < ho; ++oy) {
    const axis_sample sy = reference_coordinate(oy, h, ho, align_corners);
    for (index_t ox = 0; ox < wo; ++ox) {
      const axis_sample sx = reference_coordinate(ox, w, wo, align_corners);
      const long double top = (1 - sx.frac) * at(sy.lo, sx.lo) + sx.frac * at(sy.lo, sx.hi);
      const long double bottom = (1 - sx.frac) * at(sy.hi, sx.lo) + sx.frac * at(sy.hi, sx.hi);
      y.push_back(static_cast<T>((1 - sy.frac) * top + sy.frac * bottom));
    }
  }
  return y;
}

/// Index i of an axis of n samples under a border: -1 (zero) or an index in [0, n), mirrored
/// by walking back and forth (independent of the library's modular formula).
index_t reference_border_index(index_t i, index_t n, cvk::detail::blur_border border) {
  using cvk::detail::blur_border;
  if (i >= 0 && i < n) return i;
  if (border == blur_border::zero) return -1;
  if (border == blur_border::replicate) return i < 0 ? 0 : n - 1;
  if (n == 1) return 0;
  while (i < 0 || i >= n) i = i < 0 ? -i : 2 * (n - 1) - i;
  return i;
}

/// The 2-D Gaussian blur as one convolution with the outer product of the normalised 1-D taps,
/// every tap read through the border, in long double.
template <class T>
std::vector<T> reference_blur(const std::vector<T>& x, index_t h, index_t w, double sigma,
                              cvk::detail::blur_border border) {
  const auto half = static_cast<index_t>(std::ceil(4.0 * sigma));
  std::vector<long double> taps;
  long double sum = 0;
  for (index_t k = -half; k <= half; ++k) {
    const long double v = sigma == 0 ? 1.0L
                                     : std::exp(-static_cast<long double>(k * k) /
                                                (2.0L * static_cast<long double>(sigma) * sigma));
    taps.push_back(v);
    sum += v;
  }
  for (auto& t : taps) t /= sum;
  std::vector<T> y;
  for (index_t r = 0; r < h; ++r)
    for (index_t c = 0; c < w; ++c) {
      long double acc = 0;
      for (index_t i = -half; i <= half; ++i)
        for (index_t j = -half; j <= half; ++j) {
          const index_t rr = reference_border_index(r + i, h, border);
          const index_t cc = reference_border_index(c + j, w, border);
          if (rr < 0 || cc < 0) continue;
          acc += taps[static_cast<std::size_t>(i + half)] *
                 taps[static_cast<std::size_t>(j + half)] *
                 static_cast<long double>(x[static_cast<std::size_t>(rr * w + cc)]);
        }
      y.push_back(static_cast<T>(acc));
    }
  return y;
}

/// Bilinear results against the long-double reference: float is computed in double and rounded
/// once (1 ulp of the largest value), double through a few roundings.
template <class T>
double bilinear_tolerance(const std::vector<T>& x) {
  return (sizeof(T) == 4 ? 1.0 : 8.0) * eps<T>() * max_abs(x);
}

constexpr std::array<cvk::detail::blur_border, 3> all_borders{cvk::detail::blur_border::zero,
                                                              cvk::detail::blur_border::replicate,
                                                              cvk::detail::blur_border::reflect};

// ---------------------------------------------------------------------------------------------
// detail::resize_bilinear_plane

TEST_CASE("resize_bilinear_plane: hand-computed 2x2 -> 4x4 in both conventions", "[post]") {
  const std::vector<double> x{0, 1, 2, 3};
  const cvk::strided_view<const double, 2> src(x.data(), {2, 2});
  std::vector<double> y(16);
  cvk::strided_view<double, 2> dst(y.data(), {4, 4});
  // align_corners=true: o·(2 − 1)/(4 − 1) = 0, 1/3, 2/3, 1 along both axes.
  cvk::detail::resize_bilinear_plane(src, dst, true);
  CHECK(y[0] == 0.0);
  CHECK(y[1] == Approx(1.0 / 3));
  CHECK(y[2] == Approx(2.0 / 3));
  CHECK(y[3] == 1.0);
  CHECK(y[12] == 2.0);
  CHECK(y[15] == 3.0);
  CHECK(y[5] == Approx(2.0 / 3 + 1.0 / 3));  // (1/3, 1/3): 2·(1/3) + 1·(1/3)
  // align_corners=false: (o + 0.5)·2/4 − 0.5 = −0.25 → 0, 0.25, 0.75, 1.25 → the last sample.
  cvk::detail::resize_bilinear_plane(src, dst, false);
  CHECK(y[0] == 0.0);
  CHECK(y[1] == 0.25);
  CHECK(y[2] == 0.75);
  CHECK(y[3] == 1.0);
  CHECK(y[4] == 0.5);  // row 0.25: 0.25·2
  CHECK(y[15] == 3.0);
  CHECK(y[10] == 0.75 * 2 + 0.75);  // (0.75, 0.75)
}

TEMPLATE_TEST_CASE("resize_bilinear_plane matches the reference loop on random planes", "[post]",
                   float, double) {
  using T = TestType;
  cvk::rng gen(11, 1);
  for (int trial = 0; trial < cvk_test::trials(60); ++trial) {
    const index_t h = cvk_test::draw(gen, 1, 9), w = cvk_test::draw(gen, 1, 9);
    const index_t ho = cvk_test::draw(gen, 1, 23), wo = cvk_test::draw(gen, 1, 23);
    const bool align = gen.below(2) == 0;
    const auto x = random_values<T>(gen, h * w, -3, 3);
    const auto expected = reference_bilinear(x, h, w, ho, wo, align);
    for (const arrangement as : all_arrangements) {
      for (const arrangement ad : all_arrangements) {
        auto src = store<T, 2>(x, {h, w}, as);
        auto dst = store<T, 2>(std::vector<T>(static_cast<std::size_t>(ho * wo)), {ho, wo}, ad);
        cvk::detail::resize_bilinear_plane(cvk::strided_view<const T, 2>(src.view), dst.view,
                                           align);
        INFO("trial " << trial << ": " << h << "x" << w << " -> " << ho << "x" << wo
                      << " align_corners " << align << ", src " << to_string(as) << ", dst "
                      << to_string(ad));
        CHECK(max_diff(values_of(dst.view), expected) <= bilinear_tolerance<T>(x));
      }
    }
  }
}

TEST_CASE("resize_bilinear_plane writes another element type (double plane into float)", "[post]") {
  cvk::rng gen(12, 1);
  const auto x = random_values<double>(gen, 15);
  std::vector<float> y(40);
  cvk::detail::resize_bilinear_plane(cvk::strided_view<const double, 2>(x.data(), {3, 5}),
                                     cvk::strided_view<float, 2>(y.data(), {5, 8}), false);
  const auto expected = reference_bilinear(x, 3, 5, 5, 8, false);
  for (std::size_t i = 0; i < y.size(); ++i) CHECK(y[i] == static_cast<float>(expected[i]));
}

TEMPLATE_TEST_CASE("resize_bilinear_plane matches torch F.interpolate", "[post]", float, double) {
  using T = TestType;
  const auto& f = fixtures();
  const char* dname = sizeof(T) == 4 ? "float32" : "float64";
  const int cases = std::stoi(f.meta("bilinear_cases"));
  REQUIRE(cases >= 10);
  for (int k = 0; k < cases; ++k) {
    const std::string prefix = "bilinear" + std::to_string(k);
    const auto p = f.table(prefix + "/params").values<index_t>();
    const index_t h = p[0], w = p[1], ho = p[2], wo = p[3];
    const bool align = p[4] != 0;
    const auto x = f.table(prefix + "/" + dname + "/input").values<T>();
    const auto expected = f.table(prefix + "/" + dname + "/output").values<T>();
    REQUIRE(static_cast<index_t>(x.size()) == h * w);
    REQUIRE(static_cast<index_t>(expected.size()) == ho * wo);
    std::vector<T> y(expected.size());
    cvk::detail::resize_bilinear_plane(cvk::strided_view<const T, 2>(x.data(), {h, w}),
                                       cvk::strided_view<T, 2>(y.data(), {ho, wo}), align);
    INFO(prefix << ": " << h << "x" << w << " -> " << ho << "x" << wo << " align_corners "
                << align);
    // torch computes a float plane in float: a few roundings apart from cvk's single one.
    CHECK(max_diff(y, expected) <= 8 * eps<T>() * max_abs(x));
    if (h == ho && w == wo) CHECK(y == x);  // same size: torch and cvk copy
  }
}

// ---------------------------------------------------------------------------------------------
// detail::gaussian_blur_plane

TEMPLATE_TEST_CASE("gaussian_blur_plane matches the 2-D convolution reference", "[post]", float,
                   double) {
  using T = TestType;
  cvk::rng gen(13, 1);
  const std::array<double, 6> sigmas{0.0, 0.4, 1.0, 1.7, 3.0, 6.5};
  for (int trial = 0; trial < cvk_test::trials(40); ++trial) {
    const index_t h = cvk_test::draw(gen, 1, 13), w = cvk_test::draw(gen, 1, 13);
    const double sigma = sigmas[gen.below(sigmas.size())];
    const auto border = all_borders[gen.below(3)];
    const auto x = random_values<T>(gen, h * w, -2, 2);
    const auto expected = reference_blur(x, h, w, sigma, border);
    const auto half = static_cast<double>(cvk::detail::gaussian_half_width(sigma));
    const double tolerance = 4 * (2 * half + 2) * eps<T>() * max_abs(x);
    std::vector<T> scratch(static_cast<std::size_t>(h * w));
    for (const arrangement as : all_arrangements) {
      const arrangement ad = all_arrangements[gen.below(4)];
      auto src = store<T, 2>(x, {h, w}, as);
      auto dst = store<T, 2>(std::vector<T>(x.size(), T(7)), {h, w}, ad);
      cvk::detail::gaussian_blur_plane(cvk::strided_view<const T, 2>(src.view), dst.view, sigma,
                                       border, scratch.data());
      INFO("trial " << trial << ": " << h << "x" << w << " sigma " << sigma << " border "
                    << static_cast<int>(border) << ", src " << to_string(as) << ", dst "
                    << to_string(ad));
      CHECK(max_diff(values_of(dst.view), expected) <= tolerance);
      // In place: dst is src.
      cvk::detail::gaussian_blur_plane(cvk::strided_view<const T, 2>(src.view), src.view, sigma,
                                       border, scratch.data());
      CHECK(values_of(src.view) == values_of(dst.view));
    }
  }
}

TEST_CASE("gaussian_blur_plane: sigma 0 copies, a constant plane stays constant", "[post]") {
  cvk::rng gen(14, 1);
  const auto x = random_values<double>(gen, 30);
  std::vector<double> y(30), scratch(30);
  for (const auto border : all_borders) {
    cvk::detail::gaussian_blur_plane(cvk::strided_view<const double, 2>(x.data(), {5, 6}),
                                     cvk::strided_view<double, 2>(y.data(), {5, 6}), 0.0, border,
                                     scratch.data());
    CHECK(y == x);
  }
  const std::vector<double> c(30, 2.5);
  for (const double sigma : {0.5, 1.0, 9.0}) {
    for (const auto border :
         {cvk::detail::blur_border::replicate, cvk::detail::blur_border::reflect}) {
      cvk::detail::gaussian_blur_plane(cvk::strided_view<const double, 2>(c.data(), {5, 6}),
                                       cvk::strided_view<double, 2>(y.data(), {5, 6}), sigma,
                                       border, scratch.data());
      for (const double v : y) CHECK(v == Approx(2.5).epsilon(1e-14));
    }
    // Zero border: the centre of a 1×1 plane keeps the weight of the central tap only, g0².
    std::vector<double> one{1.0}, out{0.0}, s1{0.0};
    cvk::detail::gaussian_blur_plane(cvk::strided_view<const double, 2>(one.data(), {1, 1}),
                                     cvk::strided_view<double, 2>(out.data(), {1, 1}), sigma,
                                     cvk::detail::blur_border::zero, s1.data());
    const double g0 =
        1.0 / cvk::detail::gaussian_tap_sum(sigma, cvk::detail::gaussian_half_width(sigma));
    CHECK(out[0] == Approx(g0 * g0).epsilon(1e-14));
  }
}

TEMPLATE_TEST_CASE("gaussian_blur_plane matches torch conv2d with TorchRay's imsmooth kernel",
                   "[post]", float, double) {
  using T = TestType;
  const auto& f = fixtures();
  const char* dname = sizeof(T) == 4 ? "float32" : "float64";
  const int cases = std::stoi(f.meta("blur_cases"));
  REQUIRE(cases >= 9);
  for (int k = 0; k < cases; ++k) {
    const std::string prefix = "blur" + std::to_string(k);
    const auto p = f.table(prefix + "/params").values<double>();
    const auto h = static_cast<index_t>(p[0]), w = static_cast<index_t>(p[1]);
    const double sigma = p[2];
    const auto border = static_cast<cvk::detail::blur_border>(static_cast<int>(p[3]));
    const auto x = f.table(prefix + "/" + dname + "/input").values<T>();
    const auto expected = f.table(prefix + "/" + dname + "/output").values<T>();
    const auto torchray = f.table(prefix + "/" + dname + "/torchray").values<T>();
    std::vector<T> y(x.size()), scratch(x.size());
    cvk::detail::gaussian_blur_plane(cvk::strided_view<const T, 2>(x.data(), {h, w}),
                                     cvk::strided_view<T, 2>(y.data(), {h, w}), sigma, border,
                                     scratch.data());
    const auto half = static_cast<double>(cvk::detail::gaussian_half_width(sigma));
    INFO(prefix << ": " << h << "x" << w << " sigma " << sigma << " border " << p[3]);
    CHECK(max_diff(y, expected) <= 4 * (2 * half + 2) * eps<T>() * max_abs(x));
    // TorchRay's own taps divide by √2·σ + 1.19e-7: within a few 1e-6 of cvk's.
    CHECK(max_diff(y, torchray) <= 1e-5 * max_abs(x));
  }
}

TEST_CASE("check_blur_sigma rejects negative, non-finite and huge sigmas", "[post]") {
  using Catch::Matchers::Contains;
  CHECK_NOTHROW(cvk::detail::check_blur_sigma(0.0, "f"));
  CHECK_NOTHROW(cvk::detail::check_blur_sigma(20.0, "f"));
  CHECK_THROWS_WITH(cvk::detail::check_blur_sigma(-1.0, "gaussian_smooth"),
                    Contains("gaussian_smooth: sigma must be finite") && Contains("-1"));
  CHECK_THROWS_AS(cvk::detail::check_blur_sigma(std::nan(""), "f"), cvk::invalid_argument);
  CHECK_THROWS_AS(cvk::detail::check_blur_sigma(std::numeric_limits<double>::infinity(), "f"),
                  cvk::invalid_argument);
  CHECK_THROWS_AS(cvk::detail::check_blur_sigma(1e7, "f"), cvk::invalid_argument);
}

// ---------------------------------------------------------------------------------------------
// upsample_bilinear

TEMPLATE_TEST_CASE("upsample_bilinear resizes every map as F.interpolate", "[post]", float,
                   double) {
  using T = TestType;
  cvk::rng gen(21, 1);
  for (int trial = 0; trial < cvk_test::trials(12); ++trial) {
    const index_t n = cvk_test::draw(gen, 1, 4), h = cvk_test::draw(gen, 1, 8),
                  w = cvk_test::draw(gen, 1, 8);
    const index_t ho = cvk_test::draw(gen, 1, 20), wo = cvk_test::draw(gen, 1, 20);
    const bool align = gen.below(2) == 0;
    const auto x = random_values<T>(gen, n * h * w, -2, 2);
    std::vector<T> expected;
    for (index_t i = 0; i < n; ++i) {
      const std::vector<T> m(x.begin() + i * h * w, x.begin() + (i + 1) * h * w);
      const auto y = reference_bilinear(m, h, w, ho, wo, align);
      expected.insert(expected.end(), y.begin(), y.end());
    }
    const double tolerance = bilinear_tolerance<T>(x);
    for (const arrangement a : all_arrangements) {
      auto maps = store<T, 3>(x, {n, h, w}, a);
      INFO("trial " << trial << ": " << n << "x" << h << "x" << w << " -> " << ho << "x" << wo
                    << " align " << align << ", " << to_string(a));
      const auto y = cvk::upsample_bilinear(maps.view, {ho, wo}, {.align_corners = align});
      REQUIRE(y.extents() == std::array<index_t, 3>{n, ho, wo});
      CHECK(max_diff(std::vector<T>(y.begin(), y.end()), expected) <= tolerance);
      // Write-into form, a transposed out, 1, 2 and 3 threads: the same bits.
      for (const int threads : {1, 2, 3}) {
        auto out = store<T, 3>(std::vector<T>(static_cast<std::size_t>(n * ho * wo)), {n, ho, wo},
                               arrangement::transposed);
        cvk::upsample_bilinear(maps.view, out.view, {.align_corners = align, .threads = threads});
        CHECK(values_of(out.view) == std::vector<T>(y.begin(), y.end()));
      }
    }
  }
}

TEST_CASE("upsample_bilinear: empty batches, errors", "[post]") {
  using Catch::Matchers::Contains;
  const cvk::tensor<float, 3> none(0, 5, 5);
  const auto y = cvk::upsample_bilinear(none, {7, 9});
  CHECK(y.extents() == std::array<index_t, 3>{0, 7, 9});
  const cvk::tensor<float, 3> maps(2, 3, 4);
  CHECK_THROWS_WITH(cvk::upsample_bilinear(maps, {0, 4}),
                    Contains("upsample_bilinear: size must be {Ho, Wo} with Ho, Wo >= 1"));
  cvk::tensor<float, 3> wrong(3, 7, 7);
  CHECK_THROWS_WITH(cvk::upsample_bilinear(maps, wrong),
                    Contains("out must be N×Ho×Wo with N = 2") && Contains("3×7×7"));
  const cvk::tensor<float, 3> flat(2, 0, 4);
  CHECK_THROWS_AS(cvk::upsample_bilinear(flat, {3, 3}), cvk::shape_error);
  CHECK_THROWS_AS(cvk::upsample_bilinear(maps, {3, 3}, {.threads = -1}), cvk::invalid_argument);
}

#if defined(CVK_TEST_HAS_EIGEN)
TEST_CASE("upsample_bilinear reads an Eigen::Tensor (column-major)", "[post]") {
  Eigen::Tensor<double, 3> maps(2, 3, 4);  // column-major: strides 1, 2, 6
  std::vector<double> flat;
  for (index_t i = 0; i < 2; ++i)
    for (index_t y = 0; y < 3; ++y)
      for (index_t x = 0; x < 4; ++x) {
        maps(i, y, x) = static_cast<double>(i * 100 + y * 10 + x);
        flat.push_back(maps(i, y, x));
      }
  const auto y = cvk::upsample_bilinear(maps, {5, 6});
  const auto plane0 =
      reference_bilinear(std::vector<double>(flat.begin(), flat.begin() + 12), 3, 4, 5, 6, false);
  for (index_t r = 0; r < 5; ++r)
    for (index_t c = 0; c < 6; ++c) {
      CHECK(y(0, r, c) == Approx(plane0[static_cast<std::size_t>(r * 6 + c)]).margin(1e-12));
    }
  CHECK(y(1, 0, 0) == 100.0);
}
#endif

// ---------------------------------------------------------------------------------------------
// normalize

/// numpy.percentile (linear) of a copy.
double reference_percentile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  const double pos = q / 100.0 * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(pos));
  if (lo + 1 >= v.size()) return v.back();
  return v[lo] + (pos - static_cast<double>(lo)) * (v[lo + 1] - v[lo]);
}

/// The normalisation of one set of values (a map, or the batch) from the definitions.
std::vector<double> reference_normalize(const std::vector<double>& x, cvk::normalize_mode mode,
                                        cvk::sign_mode sign, double outlier, double percentile) {
  std::vector<double> s;
  for (const double v : x) {
    switch (sign) {
      case cvk::sign_mode::all:
        s.push_back(v);
        break;
      case cvk::sign_mode::positive:
        s.push_back(v > 0 ? v : 0.0);
        break;
      case cvk::sign_mode::negative:
        s.push_back(v < 0 ? -v : 0.0);
        break;
      case cvk::sign_mode::absolute:
        s.push_back(std::fabs(v));
        break;
    }
  }
  const double lo = *std::min_element(s.begin(), s.end());
  const double hi = *std::max_element(s.begin(), s.end());
  double offset = 0, scale = 1, clip_lo = -1e300, clip_hi = 1e300;
  if (mode == cvk::normalize_mode::min_max) {
    offset = lo;
    scale = hi - lo;
  } else if (mode == cvk::normalize_mode::max_abs) {
    scale = std::max(std::fabs(lo), std::fabs(hi));
  } else if (mode == cvk::normalize_mode::percentile_clip) {
    std::vector<double> a;
    for (const double v : s) a.push_back(std::fabs(v));
    std::sort(a.begin(), a.end());
    double total = 0;
    for (const double v : a) total += v;
    double running = 0;
    scale = a.back();
    for (const double v : a) {
      running += v;
      if (running >= total * 0.01 * (100.0 - outlier)) {
        scale = v;
        break;
      }
    }
    clip_lo = -1;
    clip_hi = 1;
  } else {
    offset = lo;
    scale = reference_percentile(s, percentile) - lo;
    clip_lo = 0;
    clip_hi = 1;
  }
  std::vector<double> y;
  for (const double v : s) {
    y.push_back(scale == 0 ? 0.0 : std::clamp((v - offset) / scale, clip_lo, clip_hi));
  }
  return y;
}

constexpr std::array<cvk::normalize_mode, 4> all_modes{
    cvk::normalize_mode::min_max, cvk::normalize_mode::max_abs,
    cvk::normalize_mode::percentile_clip, cvk::normalize_mode::percentile};
constexpr std::array<cvk::sign_mode, 4> all_signs{cvk::sign_mode::all, cvk::sign_mode::positive,
                                                  cvk::sign_mode::negative,
                                                  cvk::sign_mode::absolute};
const char* mode_name(cvk::normalize_mode m) {
  constexpr std::array<const char*, 4> names{"min_max", "max_abs", "percentile_clip", "percentile"};
  return names[static_cast<std::size_t>(m)];
}
const char* sign_name(cvk::sign_mode s) {
  constexpr std::array<const char*, 4> names{"all", "positive", "negative", "absolute"};
  return names[static_cast<std::size_t>(s)];
}

TEST_CASE("normalize: hand-computed values of every mode", "[post]") {
  // One map 1×1×4: |s| = 1, 1, 1, 7 (sum 10).
  const std::vector<double> x{1, -1, 1, 7};
  const cvk::strided_view<const double, 3> m(x.data(), {1, 1, 4});
  auto y = cvk::normalize(m);  // min_max: (x + 1)/8
  CHECK(y(0, 0, 0) == 0.25);
  CHECK(y(0, 0, 1) == 0.0);
  CHECK(y(0, 0, 3) == 1.0);
  y = cvk::normalize(m, {.mode = cvk::normalize_mode::max_abs});
  CHECK(y(0, 0, 1) == -1.0 / 7);
  // Captum: cumulative sums of sorted |s| 1, 2, 3, 10; 98% of 10 = 9.8 is first reached by 7.
  y = cvk::normalize(m, {.mode = cvk::normalize_mode::percentile_clip});
  CHECK(y(0, 0, 0) == 1.0 / 7);
  CHECK(y(0, 0, 3) == 1.0);
  // outlier 75%: 25% of 10 = 2.5, first reached by the second 1: clip(x / 1).
  y = cvk::normalize(m, {.mode = cvk::normalize_mode::percentile_clip, .outlier_percent = 75});
  CHECK(y(0, 0, 1) == -1.0);
  CHECK(y(0, 0, 3) == 1.0);
  // Negative part: max(−x, 0) = 0, 1, 0, 0 → min_max 0, 1, 0, 0.
  y = cvk::normalize(m, {.sign = cvk::sign_mode::negative});
  CHECK(y(0, 0, 1) == 1.0);
  CHECK(y(0, 0, 3) == 0.0);
  // PAIR: 0..100, the 90th percentile is 90: clip(x / 90, 0, 1).
  std::vector<double> ramp(101);
  for (std::size_t i = 0; i < ramp.size(); ++i) ramp[i] = static_cast<double>(i);
  const auto p = cvk::normalize(cvk::strided_view<const double, 3>(ramp.data(), {1, 1, 101}),
                                {.mode = cvk::normalize_mode::percentile, .percentile = 90});
  CHECK(p(0, 0, 45) == 0.5);
  CHECK(p(0, 0, 95) == 1.0);
}

TEMPLATE_TEST_CASE("normalize matches the reference for every mode, sign and scope", "[post]",
                   float, double) {
  using T = TestType;
  cvk::rng gen(22, 1);
  for (int trial = 0; trial < cvk_test::trials(12); ++trial) {
    const index_t n = cvk_test::draw(gen, 1, 3), h = cvk_test::draw(gen, 1, 6),
                  w = cvk_test::draw(gen, 1, 7);
    auto x = random_values<T>(gen, n * h * w, -3, 3);
    if (trial % 3 == 1) {
      for (auto& v : x) v = std::round(v);  // ties and zeros
    }
    const double outlier = trial % 2 == 0 ? 2.0 : 10.0 * gen.uniform<double>();
    const double percentile = trial % 2 == 0 ? 99.0 : 100.0 * gen.uniform<double>();
    const arrangement a = all_arrangements[static_cast<std::size_t>(trial) % 4];
    auto maps = store<T, 3>(x, {n, h, w}, a);
    for (const auto mode : all_modes)
      for (const auto sign : all_signs)
        for (const bool per_map : {true, false}) {
          std::vector<double> expected;
          if (per_map) {
            for (index_t i = 0; i < n; ++i) {
              const std::vector<double> m(x.begin() + i * h * w, x.begin() + (i + 1) * h * w);
              const auto y = reference_normalize(m, mode, sign, outlier, percentile);
              expected.insert(expected.end(), y.begin(), y.end());
            }
          } else {
            expected = reference_normalize(std::vector<double>(x.begin(), x.end()), mode, sign,
                                           outlier, percentile);
          }
          const cvk::normalize_params p{.mode = mode,
                                        .sign = sign,
                                        .outlier_percent = outlier,
                                        .percentile = percentile,
                                        .per_map = per_map};
          const auto y = cvk::normalize(maps.view, p);
          INFO("trial " << trial << " " << mode_name(mode) << " " << sign_name(sign)
                        << (per_map ? " per map " : " batch ") << n << "x" << h << "x" << w << " "
                        << to_string(a));
          const std::vector<T> got(y.begin(), y.end());
          CHECK(max_diff(got, expected) <= 4 * eps<T>());
          for (const T v : got) CHECK(std::isfinite(v));
          // In place (out = maps), and 1, 2, 3 threads: the same bits.
          for (const int threads : {1, 2, 3}) {
            auto copy = store<T, 3>(x, {n, h, w}, a);
            auto q = p;
            q.threads = threads;
            cvk::normalize(copy.view, copy.view, q);
            CHECK(values_of(copy.view) == got);
          }
        }
  }
}

TEMPLATE_TEST_CASE("normalize matches the Captum / PAIR / grad-cam formulas (numpy goldens)",
                   "[post]", float, double) {
  using T = TestType;
  const auto& f = fixtures();
  const char* dname = sizeof(T) == 4 ? "float32" : "float64";
  const auto x = f.table(std::string("normalize/") + dname + "/input").values<T>();
  REQUIRE(x.size() == 3 * 6 * 7);
  const cvk::strided_view<const T, 3> maps(x.data(), {3, 6, 7});
  for (const auto mode : all_modes)
    for (const auto sign : all_signs)
      for (const int per_map : {1, 0}) {
        const auto expected = f.table(std::string("normalize/") + mode_name(mode) + "/" +
                                      sign_name(sign) + "/" + std::to_string(per_map) + "/" + dname)
                                  .values<T>();
        const auto y = cvk::normalize(maps, {.mode = mode, .sign = sign, .per_map = per_map != 0});
        INFO(mode_name(mode) << " " << sign_name(sign) << " per_map " << per_map);
        CHECK(max_diff(std::vector<T>(y.begin(), y.end()), expected) <= 4 * eps<T>());
      }
}

TEST_CASE("normalize: zero ranges give zeros, never NaN", "[post]") {
  // A constant map: min_max and percentile see max = min (zeros); max_abs and percentile_clip
  // divide by the value itself (ones), or see all zeros after a negative selection.
  const cvk::tensor<double, 3> constant(std::array<index_t, 3>{2, 3, 3}, 4.5);
  const cvk::tensor<double, 3> zeros(2, 3, 3);
  for (const auto mode : all_modes)
    for (const auto sign : all_signs)
      for (const bool per_map : {true, false}) {
        const auto y = cvk::normalize(constant, {.mode = mode, .sign = sign, .per_map = per_map});
        const bool range_mode =
            mode == cvk::normalize_mode::min_max || mode == cvk::normalize_mode::percentile;
        const double expected = range_mode || sign == cvk::sign_mode::negative ? 0.0 : 1.0;
        INFO(mode_name(mode) << " " << sign_name(sign));
        for (const double v : y) CHECK(v == expected);
        for (const double v :
             cvk::normalize(zeros, {.mode = mode, .sign = sign, .per_map = per_map})) {
          CHECK(v == 0.0);
        }
      }
  // A positive selection of an all-negative map is all zeros.
  const cvk::tensor<float, 3> negative(std::array<index_t, 3>{1, 2, 2}, -1.0f);
  for (const auto mode : all_modes) {
    const auto y = cvk::normalize(negative, {.mode = mode, .sign = cvk::sign_mode::positive});
    for (const float v : y) CHECK(v == 0.0f);
  }
  // Batch statistics: a constant map next to a varying one is not a zero range.
  cvk::tensor<double, 3> two(std::array<index_t, 3>{2, 1, 2}, 1.0);
  two(1, 0, 1) = 3.0;
  const auto y = cvk::normalize(two, {.per_map = false});
  CHECK(y(0, 0, 0) == 0.0);
  CHECK(y(1, 0, 1) == 1.0);
  const auto z = cvk::normalize(two);
  CHECK(z(0, 0, 0) == 0.0);  // per map: map 0 is constant
  // Double maps whose range overflows stay finite.
  const std::vector<double> huge{-1.5e308, 1.5e308, 0.0};
  const auto big = cvk::normalize(cvk::strided_view<const double, 3>(huge.data(), {1, 1, 3}));
  CHECK(big(0, 0, 0) == 0.0);
  CHECK(big(0, 0, 1) == 1.0);
  CHECK(big(0, 0, 2) == 0.5);
}

TEST_CASE("normalize: NaN and inf are rejected naming the map and pixel; empty inputs", "[post]") {
  using Catch::Matchers::Contains;
  cvk::tensor<float, 3> maps(3, 2, 4);
  maps(2, 1, 3) = std::numeric_limits<float>::quiet_NaN();
  for (const bool per_map : {true, false}) {
    CHECK_THROWS_WITH(cvk::normalize(maps, {.per_map = per_map}),
                      Contains("normalize: maps[2] holds nan at (1, 3)"));
  }
  maps(2, 1, 3) = 0;
  maps(0, 0, 1) = -std::numeric_limits<float>::infinity();
  CHECK_THROWS_WITH(cvk::normalize(maps), Contains("maps[0] holds -inf at (0, 1)"));
  // Nothing is written before the error, in place either.
  maps(1, 0, 0) = 5;
  for (const bool per_map : {true, false}) {
    CHECK_THROWS_AS(cvk::normalize(maps, maps, {.per_map = per_map, .threads = 1}),
                    cvk::invalid_argument);
    CHECK(maps(1, 0, 0) == 5);
  }
  CHECK(cvk::normalize(cvk::tensor<float, 3>(0, 4, 4)).extents() ==
        std::array<index_t, 3>{0, 4, 4});
  CHECK(cvk::normalize(cvk::tensor<double, 3>(2, 0, 4)).size() == 0);
  const cvk::tensor<double, 3> ok(1, 2, 2);
  CHECK_THROWS_WITH(cvk::normalize(ok, {.outlier_percent = 101}),
                    Contains("outlier_percent must be in [0, 100], got 101"));
  CHECK_THROWS_WITH(cvk::normalize(ok, {.percentile = -1}),
                    Contains("percentile must be in [0, 100], got -1"));
  CHECK_THROWS_AS(cvk::normalize(ok, {.mode = static_cast<cvk::normalize_mode>(9)}),
                  cvk::invalid_argument);
  CHECK_THROWS_AS(cvk::normalize(ok, {.sign = static_cast<cvk::sign_mode>(9)}),
                  cvk::invalid_argument);
  CHECK_THROWS_AS(cvk::normalize(ok, {.threads = -2}), cvk::invalid_argument);
  cvk::tensor<double, 3> wrong(1, 2, 3);
  CHECK_THROWS_WITH(cvk::normalize(ok, wrong), Contains("out must be N×H×W = 1×2×2, got 1×2×3"));
}

// ---------------------------------------------------------------------------------------------
// gaussian_smooth

TEMPLATE_TEST_CASE("gaussian_smooth blurs every map as the 2-D reference", "[post]", float,
                   double) {
  using T = TestType;
  cvk::rng gen(23, 1);
  for (int trial = 0; trial < cvk_test::trials(8); ++trial) {
    const index_t n = cvk_test::draw(gen, 1, 4), h = cvk_test::draw(gen, 1, 9),
                  w = cvk_test::draw(gen, 1, 9);
    const double sigma = 3.0 * gen.uniform<double>();
    const auto border = all_borders[gen.below(3)];
    const auto x = random_values<T>(gen, n * h * w);
    std::vector<T> expected;
    for (index_t i = 0; i < n; ++i) {
      const std::vector<T> m(x.begin() + i * h * w, x.begin() + (i + 1) * h * w);
      const auto y = reference_blur(m, h, w, sigma, border);
      expected.insert(expected.end(), y.begin(), y.end());
    }
    const auto half = static_cast<double>(cvk::detail::gaussian_half_width(sigma));
    auto maps = store<T, 3>(x, {n, h, w}, all_arrangements[gen.below(4)]);
    const auto y = cvk::gaussian_smooth(maps.view, sigma, {.border = border});
    const std::vector<T> got(y.begin(), y.end());
    INFO("trial " << trial << " sigma " << sigma << " border " << static_cast<int>(border));
    CHECK(max_diff(got, expected) <= 4 * (2 * half + 2) * eps<T>());
    for (const int threads : {1, 2, 3}) {
      auto copy = store<T, 3>(x, {n, h, w}, arrangement::reversed);
      cvk::gaussian_smooth(copy.view, sigma, copy.view, {.border = border, .threads = threads});
      CHECK(values_of(copy.view) == got);
    }
  }
}

TEST_CASE("gaussian_smooth: errors and empty inputs", "[post]") {
  using Catch::Matchers::Contains;
  const cvk::tensor<double, 3> maps(2, 3, 3);
  CHECK_THROWS_WITH(cvk::gaussian_smooth(maps, -0.5), Contains("gaussian_smooth: sigma"));
  CHECK_THROWS_AS(cvk::gaussian_smooth(maps, std::nan("")), cvk::invalid_argument);
  CHECK_THROWS_AS(cvk::gaussian_smooth(maps, 1.0, {.border = static_cast<cvk::blur_border>(7)}),
                  cvk::invalid_argument);
  CHECK(cvk::gaussian_smooth(cvk::tensor<double, 3>(0, 3, 3), 2.0).size() == 0);
  CHECK(cvk::gaussian_smooth(maps, 0.0) == maps);
}

// ---------------------------------------------------------------------------------------------
// reduce_channels

constexpr std::array<cvk::channel_reduction, 5> all_reductions{
    cvk::channel_reduction::sum, cvk::channel_reduction::abs_sum, cvk::channel_reduction::max_abs,
    cvk::channel_reduction::l2, cvk::channel_reduction::mean};

template <class T>
std::vector<T> reference_reduce(const std::vector<T>& x, const std::array<index_t, 4>& e,
                                cvk::channel_reduction mode) {
  std::vector<T> y;
  for (index_t n = 0; n < e[0]; ++n)
    for (index_t r = 0; r < e[2]; ++r)
      for (index_t c = 0; c < e[3]; ++c) {
        long double acc = 0;
        for (index_t ch = 0; ch < e[1]; ++ch) {
          const auto v = static_cast<long double>(
              x[static_cast<std::size_t>(((n * e[1] + ch) * e[2] + r) * e[3] + c)]);
          switch (mode) {
            case cvk::channel_reduction::sum:
            case cvk::channel_reduction::mean:
              acc += v;
              break;
            case cvk::channel_reduction::abs_sum:
              acc += std::fabs(v);
              break;
            case cvk::channel_reduction::max_abs:
              acc = std::max(acc, std::fabs(v));
              break;
            case cvk::channel_reduction::l2:
              acc += v * v;
              break;
          }
        }
        if (mode == cvk::channel_reduction::mean) acc /= static_cast<long double>(e[1]);
        if (mode == cvk::channel_reduction::l2) acc = std::sqrt(acc);
        y.push_back(static_cast<T>(acc));
      }
  return y;
}

TEMPLATE_TEST_CASE("reduce_channels matches the reference in both layouts", "[post]", float,
                   double) {
  using T = TestType;
  cvk::rng gen(24, 1);
  for (int trial = 0; trial < cvk_test::trials(12); ++trial) {
    const std::array<index_t, 4> e{cvk_test::draw(gen, 1, 3), cvk_test::draw(gen, 1, 5),
                                   cvk_test::draw(gen, 1, 6), cvk_test::draw(gen, 1, 6)};
    const auto x = random_values<T>(gen, e[0] * e[1] * e[2] * e[3], -2, 2);
    for (const auto l : {cvk::layout::nchw, cvk::layout::nhwc})
      for (const auto s : cvk_test::all_storages) {
        auto a = cvk_test::store(x, e, l, s);
        for (const auto mode : all_reductions) {
          const auto expected = reference_reduce(x, e, mode);
          const auto y = cvk::reduce_channels(a.view, {.mode = mode, .data_layout = l});
          INFO("trial " << trial << " " << cvk::detail::shape_string(e, 4) << " mode "
                        << static_cast<int>(mode) << " " << cvk_test::to_string(s));
          REQUIRE(y.extents() == std::array<index_t, 3>{e[0], e[2], e[3]});
          const std::vector<T> got(y.begin(), y.end());
          CHECK(max_diff(got, expected) <= 2 * eps<T>() * static_cast<double>(e[1]) * 2);
          for (const int threads : {1, 2, 3}) {
            cvk::tensor<T, 3> out(e[0], e[2], e[3]);
            cvk::reduce_channels(a.view, out, {.mode = mode, .data_layout = l, .threads = threads});
            CHECK(std::vector<T>(out.begin(), out.end()) == got);
          }
        }
      }
  }
}

TEST_CASE("reduce_channels: NaN propagates, C = 0 and bad arguments are errors", "[post]") {
  using Catch::Matchers::Contains;
  cvk::tensor<double, 4> a(1, 3, 2, 2);
  a(0, 1, 1, 0) = std::numeric_limits<double>::quiet_NaN();
  a(0, 2, 1, 0) = 5;
  for (const auto mode : all_reductions) {
    const auto y = cvk::reduce_channels(a, {.mode = mode});
    CHECK(std::isnan(y(0, 1, 0)));
    CHECK(y(0, 0, 0) == 0.0);
  }
  const cvk::tensor<double, 4> none(2, 0, 3, 3);
  CHECK_THROWS_WITH(cvk::reduce_channels(none),
                    Contains("reduce_channels: attributions must have C >= 1 channels (N×C×H×W), "
                             "got 2×0×3×3"));
  CHECK_THROWS_AS(cvk::reduce_channels(a, {.mode = static_cast<cvk::channel_reduction>(9)}),
                  cvk::invalid_argument);
  CHECK_THROWS_AS(cvk::reduce_channels(a, {.data_layout = static_cast<cvk::layout>(5)}),
                  cvk::invalid_argument);
  cvk::tensor<double, 3> wrong(1, 3, 2);
  CHECK_THROWS_WITH(cvk::reduce_channels(a, wrong), Contains("out must be N×H×W = 1×2×2"));
  CHECK(cvk::reduce_channels(cvk::tensor<float, 4>(0, 3, 2, 2)).size() == 0);
}

// ---------------------------------------------------------------------------------------------
// colormap

TEST_CASE("colormap tables: OpenCV's jet, Google's Turbo, matplotlib's bwr", "[post]") {
  const auto& f = fixtures();
  const auto jet = cvk::colormap_table(cvk::cmap::jet);
  const auto opencv = f.table("colour/jet_opencv").values<double>();
  REQUIRE(opencv.size() == 256 * 3);
  for (std::size_t i = 0; i < 256; ++i)
    for (std::size_t c = 0; c < 3; ++c) {
      INFO("jet entry " << i << " channel " << c);
      CHECK(static_cast<double>(jet[i][c]) == opencv[i * 3 + c]);
    }
  // Hand values: dark blue at 0 (OpenCV's BGR (128, 0, 0)), dark red at 255, green at the centre.
  CHECK(jet[0] == std::array<std::uint8_t, 3>{0, 0, 128});
  CHECK(jet[255] == std::array<std::uint8_t, 3>{128, 0, 0});
  CHECK(jet[128][1] == 255);
  CHECK(jet[159][2] == 1);  // OpenCV's float interpolation makes 1.5 a 1.4999999
  // Turbo: Google's polynomial, entry for entry; it follows Google's 256-entry table (as
  // matplotlib ships it) to 6 levels on average, 33 at most (the dark blue end, t = 0).
  const auto turbo = cvk::colormap_table(cvk::cmap::turbo);
  const auto poly = f.table("colour/turbo_poly").values<double>();
  const auto table = f.table("colour/turbo").values<double>();
  double worst = 0, mean = 0;
  for (std::size_t i = 0; i < 256; ++i)
    for (std::size_t c = 0; c < 3; ++c) {
      INFO("turbo entry " << i << " channel " << c);
      CHECK(static_cast<double>(turbo[i][c]) == poly[i * 3 + c]);
      const double d = std::fabs(static_cast<double>(turbo[i][c]) - table[i * 3 + c]);
      worst = std::max(worst, d);
      mean += d / (256 * 3);
    }
  CHECK(worst <= 33.0);
  CHECK(mean <= 7.0);
  const auto bwr = cvk::colormap_table(cvk::cmap::diverging);
  const auto mpl = f.table("colour/bwr").values<double>();
  for (std::size_t i = 0; i < 256; ++i)
    for (std::size_t c = 0; c < 3; ++c) {
      INFO("bwr entry " << i << " channel " << c);
      CHECK(std::fabs(static_cast<double>(bwr[i][c]) - mpl[i * 3 + c]) <= 1.0);
    }
  CHECK(bwr[0] == std::array<std::uint8_t, 3>{0, 0, 255});
  CHECK(bwr[255] == std::array<std::uint8_t, 3>{255, 0, 0});
  CHECK(bwr[127] == std::array<std::uint8_t, 3>{254, 254, 255});
  CHECK_THROWS_AS(cvk::colormap_table(static_cast<cvk::cmap>(3)), cvk::invalid_argument);
}

TEMPLATE_TEST_CASE("colormap colours entry floor(255·t) of the table", "[post]", float, double) {
  using T = TestType;
  cvk::rng gen(25, 1);
  const index_t n = 2, h = 5, w = 7;
  auto x = random_values<T>(gen, n * h * w, -0.2, 1.2);  // some outside [0, 1]: clamped
  x[0] = T(0.5);                                         // 127.5 → entry 127
  x[1] = T(1);
  for (const auto which : {cvk::cmap::jet, cvk::cmap::turbo, cvk::cmap::diverging}) {
    const auto table = cvk::colormap_table(which);
    const auto maps = store<T, 3>(x, {n, h, w}, arrangement::reversed);
    const auto rgb = cvk::colormap(maps.view, {.map = which});
    REQUIRE(rgb.extents() == std::array<index_t, 4>{n, h, w, 3});
    for (index_t i = 0; i < n * h * w; ++i) {
      T t = x[static_cast<std::size_t>(i)];
      if (which == cvk::cmap::diverging) t = (t + T(1)) / T(2);
      t = std::min(std::max(t, T(0)), T(1));
      const auto k = static_cast<std::size_t>(std::floor(T(255) * t));
      for (index_t c = 0; c < 3; ++c)
        CHECK(rgb.data()[i * 3 + c] == table[k][static_cast<std::size_t>(c)]);
    }
    if (which == cvk::cmap::jet) {
      CHECK(rgb(0, 0, 0, 1) == table[127][1]);
      CHECK(rgb(0, 0, 1, 0) == table[255][0]);
    }
    // One map: H×W×3, the first map's colours; threads do not matter.
    const cvk::strided_view<const T, 2> one(x.data(), {h, w});
    const auto single = cvk::colormap(one, {.map = which});
    REQUIRE(single.extents() == std::array<index_t, 3>{h, w, 3});
    for (index_t k = 0; k < h * w * 3; ++k) CHECK(single.data()[k] == rgb.data()[k]);
    for (const int threads : {1, 2, 3}) {
      cvk::tensor<std::uint8_t, 4> out(n, h, w, 3);
      cvk::colormap(maps.view, out, {.map = which, .threads = threads});
      CHECK(out == rgb);
    }
  }
  // Diverging: 0 is entry 127 (white-ish), −1 blue, 1 red.
  const std::vector<T> v{T(-1), T(0), T(1)};
  const auto d =
      cvk::colormap(cvk::strided_view<const T, 2>(v.data(), {1, 3}), {.map = cvk::cmap::diverging});
  CHECK(d(0, 0, 2) == 255);
  CHECK(d(0, 1, 0) == 254);
  CHECK(d(0, 2, 0) == 255);
  CHECK(d(0, 2, 2) == 0);
}

TEST_CASE("colormap: NaN and shape errors", "[post]") {
  using Catch::Matchers::Contains;
  cvk::tensor<float, 3> maps(2, 2, 2);
  maps(1, 0, 1) = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_WITH(cvk::colormap(maps), Contains("colormap: maps[1] holds NaN at (0, 1)"));
  cvk::tensor<std::uint8_t, 4> wrong(2, 2, 2, 4);
  const cvk::tensor<float, 3> ok(2, 2, 2);
  CHECK_THROWS_WITH(cvk::colormap(ok, wrong), Contains("out must be N×H×W×3 = 2×2×2×3"));
  CHECK_THROWS_AS(cvk::colormap(ok, {.map = static_cast<cvk::cmap>(-1)}), cvk::invalid_argument);
  CHECK(cvk::colormap(cvk::tensor<double, 3>(0, 2, 2)).size() == 0);
}

#if defined(CVK_TEST_HAS_EIGEN)
TEST_CASE("colormap of an Eigen matrix", "[post]") {
  Eigen::MatrixXf m(2, 3);
  m << 0.0f, 0.25f, 0.5f, 0.75f, 1.0f, 0.1f;
  const auto rgb = cvk::colormap(m, {.map = cvk::cmap::turbo});
  const auto table = cvk::colormap_table(cvk::cmap::turbo);
  CHECK(rgb.extents() == std::array<index_t, 3>{2, 3, 3});
  CHECK(rgb(1, 1, 0) == table[255][0]);
  CHECK(rgb(0, 1, 2) == table[63][2]);
}
#endif

// ---------------------------------------------------------------------------------------------
// overlay

TEST_CASE("overlay: pytorch-grad-cam's show_cam_on_image by hand and the plain blend", "[post]") {
  // Image grey 0.5, heat pure red: c = 0.5·(1, 0, 0) + 0.5·0.5 = (0.75, 0.25, 0.25), / 0.75
  // in float32 → (1, 0.33333334, 0.33333334) → 255, 85, 85.
  const cvk::tensor<float, 3> image(std::array<index_t, 3>{1, 2, 3}, 0.5f);
  cvk::tensor<std::uint8_t, 3> heat(1, 2, 3);
  for (index_t x = 0; x < 2; ++x) heat(0, x, 0) = 255;
  const auto out = cvk::overlay(image, heat);
  CHECK(out(0, 0, 0) == 255);
  CHECK(out(0, 0, 1) == 85);
  CHECK(out(0, 1, 2) == 85);
  // Plain blend, image weight 0.25: round(255·(0.75·1 + 0.25·0.5)) = round(223.125) = 223.
  const auto blend =
      cvk::overlay(image, heat, {.mode = cvk::overlay_mode::blend, .image_weight = 0.25});
  CHECK(blend(0, 0, 0) == 223);
  CHECK(blend(0, 0, 1) == 32);  // round(255·0.125) = round(31.875)
  // uint8 image, weight 1: the image itself (rescaled by its maximum in rescale mode).
  cvk::tensor<std::uint8_t, 3> u8(1, 1, 3);
  u8(0, 0, 0) = 10;
  u8(0, 0, 1) = 20;
  u8(0, 0, 2) = 40;
  cvk::tensor<std::uint8_t, 3> h8(1, 1, 3);
  const auto same = cvk::overlay(u8, h8, {.mode = cvk::overlay_mode::blend, .image_weight = 1});
  CHECK(same == u8);
  const auto rescaled = cvk::overlay(u8, h8, {.image_weight = 1});
  CHECK(rescaled(0, 0, 2) == 255);
  CHECK(rescaled(0, 0, 1) == 127);  // floor(255·0.5)
  // A black result stays black (grad-cam divides 0 by 0).
  const auto black = cvk::overlay(cvk::tensor<std::uint8_t, 3>(1, 1, 3), h8);
  CHECK(black(0, 0, 0) == 0);
}

TEST_CASE("overlay matches pytorch-grad-cam's float32 pipeline (numpy goldens)", "[post]") {
  const auto& f = fixtures();
  const auto mask = f.table("overlay/mask").values<float>();
  const auto image = f.table("overlay/image").values<float>();
  const auto expected = f.table("overlay/output").values<int>();
  const index_t h = 6, w = 5;
  REQUIRE(mask.size() == static_cast<std::size_t>(h * w));
  const auto heat = cvk::colormap(cvk::strided_view<const float, 2>(mask.data(), {h, w}));
  const auto out = cvk::overlay(cvk::strided_view<const float, 3>(image.data(), {h, w, 3}), heat);
  for (index_t k = 0; k < h * w * 3; ++k) {
    INFO("value " << k);
    CHECK(static_cast<int>(out.data()[k]) == expected[static_cast<std::size_t>(k)]);
  }
  const auto blend = f.table("overlay/blend").values<int>();
  const auto b = cvk::overlay(cvk::strided_view<const float, 3>(image.data(), {h, w, 3}), heat,
                              {.mode = cvk::overlay_mode::blend, .image_weight = 0.3});
  for (index_t k = 0; k < h * w * 3; ++k) {
    CHECK(static_cast<int>(b.data()[k]) == blend[static_cast<std::size_t>(k)]);
  }
}

TEST_CASE("overlay: batches, threads and errors", "[post]") {
  using Catch::Matchers::Contains;
  cvk::rng gen(26, 1);
  cvk::tensor<double, 4> images(3, 4, 5, 3);
  for (auto& v : images) v = gen.uniform<double>();
  cvk::tensor<double, 3> maps(3, 4, 5);
  for (auto& v : maps) v = gen.uniform<double>();
  const auto heat = cvk::colormap(maps);
  const auto all = cvk::overlay(images, heat);
  for (index_t i = 0; i < 3; ++i) {
    // Image i alone gives the same pixels: the maximum is per image.
    const cvk::strided_view<const double, 3> one(images.data() + i * 60, {4, 5, 3});
    const cvk::strided_view<const std::uint8_t, 3> hone(heat.data() + i * 60, {4, 5, 3});
    const auto single = cvk::overlay(one, hone);
    for (index_t k = 0; k < 60; ++k) CHECK(single.data()[k] == all.data()[i * 60 + k]);
  }
  for (const int threads : {1, 2, 3}) {
    for (const auto mode : {cvk::overlay_mode::rescale, cvk::overlay_mode::blend}) {
      cvk::tensor<std::uint8_t, 4> out(3, 4, 5, 3);
      cvk::overlay(images, heat, out, {.mode = mode, .threads = threads});
      CHECK(out == cvk::overlay(images, heat, {.mode = mode}));
    }
  }
  images(1, 2, 3, 1) = 1.5;
  CHECK_THROWS_WITH(cvk::overlay(images, heat),
                    Contains("overlay: rgb holds 1.5 at (1, 2, 3, 1); a floating-point image must "
                             "lie in [0, 1]"));
  images(1, 2, 3, 1) = std::nan("");
  CHECK_THROWS_AS(cvk::overlay(images, heat), cvk::invalid_argument);
  const cvk::tensor<std::uint8_t, 4> small(3, 4, 4, 3);
  CHECK_THROWS_WITH(cvk::overlay(images, small), Contains("heat must have rgb's shape 3×4×5×3"));
  const cvk::tensor<float, 3> two_channels(4, 5, 2);
  const cvk::tensor<std::uint8_t, 3> h2(4, 5, 2);
  CHECK_THROWS_WITH(cvk::overlay(two_channels, h2), Contains("rgb must be H×W×3"));
  const cvk::tensor<float, 3> img(4, 5, 3);
  const cvk::tensor<std::uint8_t, 3> h3(4, 5, 3);
  CHECK_THROWS_WITH(cvk::overlay(img, h3, {.image_weight = 1.5}),
                    Contains("image_weight must be in [0, 1], got 1.5"));
}

}  // namespace
