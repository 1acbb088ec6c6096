// cvk — computer-vision kernels, header-only C++20.
// parallel_for: OpenMP when the translation unit is compiled with it (-fopenmp), a plain loop
// otherwise. Work is cut into chunks whose boundaries depend only on the range and the grain,
// never on the thread count, so results are bit-identical for any number of threads.
// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <exception>

#include "config.hpp"
#include "strided_view.hpp"

#if CVK_HAS_OPENMP
#  include <omp.h>
#endif

CVK_BEGIN_NAMESPACE

/// Threads a parallel_for with `threads == 0` uses: OpenMP's current maximum, or 1.
[[nodiscard]] inline int max_threads() noexcept {
#if CVK_HAS_OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

/// Calls `body(lo, hi)` on consecutive chunks [lo, hi) covering [begin, end), each of `grain`
/// indices (the last may be shorter), possibly concurrently. `threads`: 0 for max_threads(),
/// otherwise an upper bound. Chunks must be independent. An exception thrown by `body` is
/// rethrown on the calling thread after the loop (the first one, in chunk order).
template <class Body>
void parallel_for(index_t begin, index_t end, index_t grain, Body&& body, int threads = 0) {
  if (end <= begin) return;
  grain = std::max<index_t>(grain, 1);
  const index_t chunks = (end - begin + grain - 1) / grain;
#if CVK_HAS_OPENMP
  const int team = threads > 0 ? std::min(threads, omp_get_max_threads()) : omp_get_max_threads();
  if (chunks > 1 && team > 1 && !omp_in_parallel()) {
#  if CVK_HAS_EXCEPTIONS
    std::exception_ptr first_error;
    index_t first_chunk = chunks;
#  endif
#  pragma omp parallel for schedule(dynamic, 1) num_threads(team)
    for (index_t c = 0; c < chunks; ++c) {
      const index_t lo = begin + c * grain;
      const index_t hi = std::min(end, lo + grain);
#  if CVK_HAS_EXCEPTIONS
      try {
        body(lo, hi);
      } catch (...) {
#    pragma omp critical(cvk_parallel_for_error)
        if (c < first_chunk) {
          first_chunk = c;
          first_error = std::current_exception();
        }
      }
#  else
      body(lo, hi);
#  endif
    }
#  if CVK_HAS_EXCEPTIONS
    if (first_error) std::rethrow_exception(first_error);
#  endif
    return;
  }
#else
  (void)threads;
#endif
  for (index_t c = 0; c < chunks; ++c) {
    const index_t lo = begin + c * grain;
    body(lo, std::min(end, lo + grain));
  }
}

CVK_END_NAMESPACE
