// cvk — computer-vision kernels, header-only C++20.
// Tests of cvk/core/rng.hpp: reproducibility, streams, distributions and pinned golden values.
// SPDX-License-Identifier: MIT
#include <cvk/core/rng.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

#include <catch2/catch.hpp>

static_assert(std::uniform_random_bit_generator<cvk::rng>);

// Golden values: the first outputs of rng(42) and rng(42, 7), computed once by an independent
// Python transcription of splitmix64 and xoshiro256** (Blackman & Vigna's reference code). They
// guard the sequence against changes across platforms, compilers and standard libraries: tests
// and users' seeded experiments depend on it.
TEST_CASE("rng: golden values", "[core][rng]") {
  SECTION("rng(42)") {
    cvk::rng gen(42);
    CHECK(gen() == 0x0DD44A599D6E50A8ULL);
    CHECK(gen() == 0x3445766876C5C49DULL);
    CHECK(gen() == 0xB7EC2B463151E8CEULL);
    CHECK(gen() == 0xCC6FE1365D66DDC7ULL);
    CHECK(gen() == 0x9A1E5418C063AE4DULL);
  }
  SECTION("rng(42, 7)") {
    cvk::rng gen(42, 7);
    CHECK(gen() == 0x65220551F6F7563FULL);
    CHECK(gen() == 0xB862D3609B65BAE4ULL);
    CHECK(gen() == 0x60277BB3B9F63189ULL);
    CHECK(gen() == 0xE50276791486C072ULL);
    CHECK(gen() == 0x4588FEC6FC22CFF3ULL);
  }
  SECTION("default seed is rng(0, 0)") {
    cvk::rng gen;
    CHECK(gen() == 0x713583E604355C87ULL);
    CHECK(gen() == 0xB5C2E0B714422419ULL);
  }
  SECTION("uniform, from the same bits") {
    cvk::rng gen(42);
    CHECK(gen.uniform() == 0.05402054489007324);
    CHECK(gen.uniform() == 0.20418491411580586);
    CHECK(gen.uniform() == 0.7184474035614766);
    cvk::rng gen_float(42);
    CHECK(gen_float.uniform<float>() == 0.05402052402496338f);
    CHECK(gen_float.uniform<float>() == 0.204184889793396f);
    CHECK(gen_float.uniform<float>() == 0.7184473872184753f);
  }
  SECTION("below") {
    cvk::rng gen(42);
    CHECK(gen.below(10) == 8);
    CHECK(gen.below(10) == 1);
    CHECK(gen.below(10) == 0);
    CHECK(gen.below(10) == 9);
    CHECK(gen.below(10) == 9);
  }
  SECTION("normal (libm may differ in the last bits)") {
    cvk::rng gen(42);
    CHECK(gen.normal() == Approx(0.09461714082299186).epsilon(1e-12));
    CHECK(gen.normal() == Approx(0.47848584276013173).epsilon(1e-12));
  }
}

TEST_CASE("rng: same seed, same sequence", "[core][rng]") {
  cvk::rng a(123, 4);
  cvk::rng b(123, 4);
  int differences = 0;
  for (int i = 0; i < 1000; ++i) differences += a() == b() ? 0 : 1;
  CHECK(differences == 0);
  // Copies continue the same sequence.
  cvk::rng c = a;
  for (int i = 0; i < 100; ++i) differences += a.uniform() == c.uniform() ? 0 : 1;
  CHECK(differences == 0);
  // constexpr-usable: the same numbers at compile time.
  constexpr auto first = [] {
    cvk::rng gen(42);
    return gen();
  }();
  static_assert(first == 0x0DD44A599D6E50A8ULL);
}

TEST_CASE("rng: different seeds and streams differ", "[core][rng]") {
  const auto first_values = [](cvk::rng gen) {
    std::array<std::uint64_t, 8> values{};
    for (auto& v : values) v = gen();
    return values;
  };
  const auto base = first_values(cvk::rng(42, 0));
  CHECK(base != first_values(cvk::rng(43, 0)));
  for (std::uint64_t stream = 1; stream < 64; ++stream) {
    const auto other = first_values(cvk::rng(42, stream));
    // No shared value in the first few outputs (a shifted copy would share them).
    for (const auto v : other) CHECK(std::find(base.begin(), base.end(), v) == base.end());
  }
  // Stream and seed are not interchangeable.
  CHECK(first_values(cvk::rng(1, 2)) != first_values(cvk::rng(2, 1)));
}

TEMPLATE_TEST_CASE("rng: uniform from 0 (included) to 1 (excluded)", "[core][rng]", float, double) {
  cvk::rng gen(7);
  constexpr int n = 200000;
  double sum = 0;
  double sum_sq = 0;
  TestType lowest = 1;
  TestType highest = 0;
  std::array<int, 10> deciles{};
  int outside = 0;
  for (int i = 0; i < n; ++i) {
    const TestType u = gen.template uniform<TestType>();
    if (!(u >= TestType(0) && u < TestType(1))) {
      ++outside;
      continue;
    }
    lowest = std::min(lowest, u);
    highest = std::max(highest, u);
    sum += static_cast<double>(u);
    sum_sq += static_cast<double>(u) * static_cast<double>(u);
    ++deciles[static_cast<std::size_t>(static_cast<double>(u) * 10.0)];
  }
  REQUIRE(outside == 0);
  const double mean = sum / n;
  const double variance = sum_sq / n - mean * mean;
  // Standard error of the mean: sqrt(1/12 / n) = 6.5e-4; allow 5 sigma.
  CHECK(mean == Approx(0.5).margin(3.3e-3));
  CHECK(variance == Approx(1.0 / 12.0).margin(2e-3));
  CHECK(lowest < TestType(1e-3));
  CHECK(highest > TestType(0.999));
  for (const int count : deciles) CHECK(count == Approx(n / 10).margin(n / 10 * 0.05));

  // uniform(lo, hi)
  for (int i = 0; i < 1000; ++i) {
    const TestType x = gen.uniform(TestType(-3), TestType(5));
    if (!(x >= TestType(-3) && x < TestType(5))) ++outside;
  }
  CHECK(outside == 0);
}

TEST_CASE("rng: below(n)", "[core][rng]") {
  cvk::rng gen(99);
  CHECK(gen.below(0) == 0);
  for (int i = 0; i < 100; ++i) CHECK(gen.below(1) == 0);

  constexpr std::uint64_t buckets = 7;
  constexpr int n = 70000;
  std::array<int, buckets> counts{};
  int outside = 0;
  for (int i = 0; i < n; ++i) {
    const std::uint64_t k = gen.below(buckets);
    if (k < buckets) {
      ++counts[k];
    } else {
      ++outside;
    }
  }
  CHECK(outside == 0);
  // Expected 10000 each, standard deviation ~93: 5 sigma.
  for (const int count : counts) CHECK(count == Approx(n / int{buckets}).margin(470));

  // Large n: still in range, and both halves are reached.
  const std::uint64_t large = (std::uint64_t{1} << 63) + 12345;
  bool low_half = false;
  bool high_half = false;
  for (int i = 0; i < 200; ++i) {
    const std::uint64_t k = gen.below(large);
    if (k >= large) ++outside;
    (k < large / 2 ? low_half : high_half) = true;
  }
  CHECK(outside == 0);
  CHECK(low_half);
  CHECK(high_half);
}

TEST_CASE("rng: bernoulli", "[core][rng]") {
  cvk::rng gen(5);
  int hits = 0;
  constexpr int n = 100000;
  for (int i = 0; i < n; ++i) hits += gen.bernoulli(0.3) ? 1 : 0;
  CHECK(hits == Approx(0.3 * n).margin(0.3 * n * 0.03));
  CHECK_FALSE(gen.bernoulli(0.0));
  CHECK(gen.bernoulli(1.0));
}

TEMPLATE_TEST_CASE("rng: normal mean and standard deviation", "[core][rng]", float, double) {
  cvk::rng gen(11, 3);
  constexpr int n = 200000;
  double sum = 0;
  double sum_sq = 0;
  int beyond_two_sigma = 0;
  int not_finite = 0;
  for (int i = 0; i < n; ++i) {
    const auto z = static_cast<double>(gen.normal(TestType(2), TestType(3)));
    if (!std::isfinite(z)) ++not_finite;
    sum += z;
    sum_sq += z * z;
    if (std::fabs(z - 2.0) > 6.0) ++beyond_two_sigma;
  }
  REQUIRE(not_finite == 0);
  const double mean = sum / n;
  const double stddev = std::sqrt(sum_sq / n - mean * mean);
  CHECK(mean == Approx(2.0).margin(0.035));  // 5 standard errors (3 / sqrt(n) = 0.0067)
  CHECK(stddev == Approx(3.0).margin(0.03));
  // P(|Z| > 2) = 4.55 %.
  CHECK(static_cast<double>(beyond_two_sigma) / n == Approx(0.0455).margin(0.003));
}

TEST_CASE("rng: works with <random> and std::shuffle", "[core][rng]") {
  cvk::rng a(2024);
  cvk::rng b(2024);
  std::vector<int> x(50);
  for (int i = 0; i < 50; ++i) x[static_cast<std::size_t>(i)] = i;
  std::vector<int> y = x;
  std::shuffle(x.begin(), x.end(), a);
  std::shuffle(y.begin(), y.end(), b);
  CHECK(x == y);
  std::vector<int> sorted = x;
  std::sort(sorted.begin(), sorted.end());
  CHECK(sorted.front() == 0);
  CHECK(sorted.back() == 49);
  CHECK(std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end());
}
