// cvk — computer-vision kernels, header-only C++20.
// Tests of cvk/core/parallel.hpp: coverage, chunking independent of the thread count,
// bit-identical reductions, exceptions.
// SPDX-License-Identifier: MIT
#include <cvk/core/parallel.hpp>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

using cvk::index_t;

namespace {

/// The chunks parallel_for hands out, sorted.
std::vector<std::pair<index_t, index_t>> chunks_of(index_t begin, index_t end, index_t grain,
                                                   int threads) {
  std::vector<std::pair<index_t, index_t>> chunks;
  std::mutex mutex;
  cvk::parallel_for(
      begin, end, grain,
      [&](index_t lo, index_t hi) {
        const std::lock_guard<std::mutex> lock(mutex);
        chunks.emplace_back(lo, hi);
      },
      threads);
  std::sort(chunks.begin(), chunks.end());
  return chunks;
}

/// Per-chunk sums of a badly conditioned series, then combined in chunk order: the result
/// depends on the chunk boundaries, never on which thread ran which chunk.
double chunked_sum(index_t n, index_t grain, int threads) {
  const index_t chunks = (n + grain - 1) / grain;
  std::vector<double> partial(static_cast<std::size_t>(chunks), 0.0);
  cvk::parallel_for(
      0, n, grain,
      [&](index_t lo, index_t hi) {
        double sum = 0;
        for (index_t i = lo; i < hi; ++i) {
          const double x = static_cast<double>(i);
          sum += std::sin(x) * 1e6 / (x + 1.0) + 1e-9 * x;
        }
        partial[static_cast<std::size_t>(lo / grain)] = sum;
      },
      threads);
  double total = 0;
  for (const double p : partial) total += p;
  return total;
}

}  // namespace

TEST_CASE("parallel_for: max_threads", "[core][parallel]") {
  CHECK(cvk::max_threads() >= 1);
#if !CVK_HAS_OPENMP
  CHECK(cvk::max_threads() == 1);
#endif
}

TEST_CASE("parallel_for: covers every index exactly once", "[core][parallel]") {
  for (const int threads : {0, 1, 2, 3, 8}) {
    for (const index_t grain : {index_t{1}, index_t{7}, index_t{64}, index_t{1000}}) {
      CAPTURE(threads, grain);
      const index_t begin = 5;
      const index_t end = 1005;
      std::vector<std::atomic<int>> hits(static_cast<std::size_t>(end));
      // Catch2 assertions are not thread-safe: the body only records, the test checks after.
      std::atomic<int> bad_chunks{0};
      cvk::parallel_for(
          begin, end, grain,
          [&](index_t lo, index_t hi) {
            if (!(lo < hi && hi - lo <= grain)) ++bad_chunks;
            for (index_t i = lo; i < hi; ++i) ++hits[static_cast<std::size_t>(i)];
          },
          threads);
      CHECK(bad_chunks == 0);
      bool exactly_once = true;
      for (index_t i = 0; i < end; ++i) {
        const int expected = i >= begin ? 1 : 0;
        if (hits[static_cast<std::size_t>(i)].load() != expected) exactly_once = false;
      }
      CHECK(exactly_once);
    }
  }
}

TEST_CASE("parallel_for: empty and degenerate ranges", "[core][parallel]") {
  int calls = 0;
  cvk::parallel_for(10, 10, 4, [&](index_t, index_t) { ++calls; });
  cvk::parallel_for(10, 3, 4, [&](index_t, index_t) { ++calls; });
  CHECK(calls == 0);
  // A grain below 1 is taken as 1.
  CHECK(chunks_of(0, 3, 0, 1) == std::vector<std::pair<index_t, index_t>>{{0, 1}, {1, 2}, {2, 3}});
  CHECK(chunks_of(0, 3, -5, 0).size() == 3);
  // Negative ranges work.
  CHECK(chunks_of(-10, -4, 4, 0) == std::vector<std::pair<index_t, index_t>>{{-10, -6}, {-6, -4}});
}

TEST_CASE("parallel_for: chunk boundaries do not depend on the thread count", "[core][parallel]") {
  const auto expected =
      std::vector<std::pair<index_t, index_t>>{{3, 13}, {13, 23}, {23, 33}, {33, 43}, {43, 50}};
  CHECK(chunks_of(3, 50, 10, 1) == expected);
  CHECK(chunks_of(3, 50, 10, 2) == expected);
  CHECK(chunks_of(3, 50, 10, 0) == expected);
  CHECK(chunks_of(3, 50, 10, 64) == expected);
  CHECK(chunks_of(0, 100000, 333, 1) == chunks_of(0, 100000, 333, 0));
}

TEST_CASE("parallel_for: floating-point reductions are identical for any thread count",
          "[core][parallel]") {
  const index_t n = 200000;
  const index_t grain = 997;
  const double one_thread = chunked_sum(n, grain, 1);
  const double all_threads = chunked_sum(n, grain, 0);
  const double two_threads = chunked_sum(n, grain, 2);
  CHECK(one_thread == all_threads);  // exact, not approximate
  CHECK(one_thread == two_threads);
  // Another grain groups the additions differently and does change the last bits: the sum is
  // sensitive enough for the exact comparisons above to catch a thread-dependent grouping.
  const double other_grain = chunked_sum(n, 1000, 1);
  CHECK(other_grain == Approx(one_thread).epsilon(1e-9));
  CHECK(other_grain != one_thread);
}

TEST_CASE("parallel_for: an exception is rethrown on the caller", "[core][parallel]") {
  for (const int threads : {0, 1, 2}) {
    CAPTURE(threads);
    CHECK_THROWS_AS(cvk::parallel_for(
                        0, 100, 10,
                        [](index_t lo, index_t) {
                          if (lo == 30) throw std::runtime_error("chunk 3 failed");
                        },
                        threads),
                    std::runtime_error);
    // Several chunks throw: the first in chunk order is reported.
    CHECK_THROWS_WITH(cvk::parallel_for(
                          0, 100, 10,
                          [](index_t lo, index_t) {
                            if (lo == 20 || lo == 70 || lo == 90) {
                              throw std::invalid_argument("chunk at " + std::to_string(lo));
                            }
                          },
                          threads),
                      "chunk at 20");
  }
}

TEST_CASE("parallel_for: nested calls run inline and still cover everything", "[core][parallel]") {
  std::vector<std::atomic<int>> hits(40 * 25);
  cvk::parallel_for(0, 40, 3, [&](index_t lo, index_t hi) {
    for (index_t i = lo; i < hi; ++i) {
      cvk::parallel_for(0, 25, 4, [&](index_t jlo, index_t jhi) {
        for (index_t j = jlo; j < jhi; ++j) ++hits[static_cast<std::size_t>(i * 25 + j)];
      });
    }
  });
  CHECK(std::all_of(hits.begin(), hits.end(), [](const std::atomic<int>& h) { return h == 1; }));
}
