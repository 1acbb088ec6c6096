// cvk — computer-vision kernels, header-only C++20.
// Per-thread scratch memory reused between calls. Kernels that need large temporary buffers on
// every call (the NMS grid, for example) would otherwise get fresh pages from the system each
// time: a large free returns memory to the OS and the next call page-faults it back, which can
// cost more than the kernel itself. A lease borrows one of a few per-thread slots; buffers up to
// scratch_keep_bytes stay allocated for the next call, larger ones are freed when returned.
// SPDX-License-Identifier: MIT
#pragma once

#include <array>
#include <cstddef>
#include <memory>
#include <new>
#include <type_traits>

#include "../core/config.hpp"

CVK_BEGIN_NAMESPACE
namespace detail {

/// Buffers up to this size stay allocated per thread and slot between calls (32 MiB).
inline constexpr std::size_t scratch_keep_bytes = std::size_t{32} << 20;
/// Slots per thread; a kernel uses a fixed slot per buffer (see scratch_slot_id).
inline constexpr std::size_t scratch_slots = 8;

enum class scratch_slot_id : std::size_t {
  nms_grid_boxes = 0,
  nms_grid_cells = 1,
  nms_kept_boxes = 2,
  nms_sides = 3,
  radix_pairs = 4,
  nms_candidates = 5,
  grid_spans = 6,    // box_grid: the cells of every box
  grid_entries = 7,  // box_grid::build: the boxes still to place
};

struct scratch_slot {
  std::unique_ptr<std::max_align_t[]> memory;
  std::size_t bytes = 0;
  bool in_use = false;
};

inline scratch_slot& thread_scratch_slot(scratch_slot_id id) {
  thread_local std::array<scratch_slot, scratch_slots> slots;
  return slots[static_cast<std::size_t>(id)];
}

/// `count` uninitialised T (trivial types only) from the calling thread's slot `id`, for the
/// lifetime of the lease. A slot already leased on this thread (re-entrant use) gets a private
/// allocation instead, so leases never alias.
template <class T>
class scratch_lease {
  static_assert(std::is_trivially_default_constructible_v<T> &&
                    std::is_trivially_destructible_v<T> && alignof(T) <= alignof(std::max_align_t),
                "cvk: scratch memory holds trivial types only");

 public:
  scratch_lease(scratch_slot_id id, std::size_t count) {
    const std::size_t units =
        (count * sizeof(T) + sizeof(std::max_align_t) - 1) / sizeof(std::max_align_t);
    const std::size_t bytes = units * sizeof(std::max_align_t);
    scratch_slot& slot = thread_scratch_slot(id);
    if (slot.in_use) {
      own_.reset(new std::max_align_t[units == 0 ? 1 : units]);
      data_ = reinterpret_cast<T*>(own_.get());
      return;
    }
    if (slot.bytes < bytes) {
      slot.memory.reset();  // free first: never hold both the old and the new buffer
      slot.bytes = 0;
      slot.memory.reset(new std::max_align_t[units]);
      slot.bytes = bytes;
    }
    slot.in_use = true;
    slot_ = &slot;
    data_ = reinterpret_cast<T*>(slot.memory.get());
  }
  scratch_lease(const scratch_lease&) = delete;
  scratch_lease& operator=(const scratch_lease&) = delete;
  ~scratch_lease() {
    if (slot_ == nullptr) return;
    slot_->in_use = false;
    if (slot_->bytes > scratch_keep_bytes) {
      slot_->memory.reset();
      slot_->bytes = 0;
    }
  }

  [[nodiscard]] T* get() const noexcept { return data_; }

 private:
  std::unique_ptr<std::max_align_t[]> own_;
  scratch_slot* slot_ = nullptr;
  T* data_ = nullptr;
};

}  // namespace detail
CVK_END_NAMESPACE
