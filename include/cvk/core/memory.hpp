// cvk — computer-vision kernels, header-only C++20.
// The memory cvk keeps between calls, and how to give it back.
//
// Contract. cvk has no caches and no global state, with one bounded exception: kernels that
// need large temporary buffers on every call (the NMS grid, radix sorts, candidate lists) borrow
// them from per-thread scratch slots and keep them for the next call on the same thread, so that
// repeated calls do not page-fault fresh memory each time.
//   - Bound: at most detail::scratch_slots (8) buffers per thread, each kept only while it is at
//     most scratch_keep_bytes (32 MiB); a larger buffer is freed when the call returns. So a
//     thread keeps at most 256 MiB, and only a thread that ran such a kernel keeps anything.
//   - Which threads: the calling thread and, with OpenMP, the worker threads of cvk's parallel
//     regions.
//   - Release: thread_scratch_bytes() reports what the calling thread keeps;
//     release_thread_scratch() frees it; release_scratch() frees it on the calling thread and on
//     every thread of an OpenMP team of max_threads() (the team cvk's own loops use). A thread's
//     scratch is also freed when the thread exits.
// Never call the release functions from inside a cvk call (a kernel's body): a buffer in use is
// kept (its lease frees it when done, if too large), so they are safe, but they free nothing then.
// SPDX-License-Identifier: MIT
#pragma once

#include <cstddef>

#include "../detail/scratch.hpp"
#include "config.hpp"
#include "parallel.hpp"

CVK_BEGIN_NAMESPACE

/// Bytes of scratch memory the calling thread keeps between calls (0 when it ran no kernel that
/// uses scratch, or after release_thread_scratch()).
[[nodiscard]] inline std::size_t thread_scratch_bytes() noexcept {
  std::size_t bytes = 0;
  for (std::size_t i = 0; i < detail::scratch_slots; ++i) {
    bytes += detail::thread_scratch_slot(static_cast<detail::scratch_slot_id>(i)).bytes;
  }
  return bytes;
}

/// Frees the scratch memory the calling thread keeps (buffers in use by a running call stay).
inline void release_thread_scratch() noexcept {
  for (std::size_t i = 0; i < detail::scratch_slots; ++i) {
    detail::scratch_slot& slot =
        detail::thread_scratch_slot(static_cast<detail::scratch_slot_id>(i));
    if (slot.in_use) continue;
    slot.memory.reset();
    slot.bytes = 0;
  }
}

/// release_thread_scratch() on the calling thread and on each thread of an OpenMP team of
/// max_threads() (the threads cvk's parallel loops run on).
inline void release_scratch() noexcept {
  release_thread_scratch();
#if CVK_HAS_OPENMP
  if (!omp_in_parallel()) {
#  pragma omp parallel num_threads(max_threads())
    release_thread_scratch();
  }
#endif
}

CVK_END_NAMESPACE
