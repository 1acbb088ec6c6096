// cvk — computer-vision kernels, header-only C++20.
// Fast NMS's kernel (YOLACT): a candidate survives when no earlier candidate, kept or not,
// suppresses it; rows are independent and run in parallel batches.
// SPDX-License-Identifier: MIT
#pragma once

#include <cstddef>
#include <span>
#include <vector>

#include "../../core/config.hpp"
#include "../../core/parallel.hpp"
#include "greedy.hpp"
#include "matrix.hpp"

CVK_BEGIN_NAMESPACE
CVK_KERNEL_BEGIN
namespace detail {

/// Whether any of the first `count` candidates suppresses `j` (torchvision's pair test), in
/// vectorized blocks with an exit between blocks.
template <class R, bool Inclusive>
bool any_earlier_suppresses(const box_columns<R>& c, std::size_t count, const nms_box<R>& j,
                            R threshold) noexcept {
  count_pair_tests(count);
  constexpr std::size_t block = 256;
  for (std::size_t first = 0; first < count; first += block) {
    const std::size_t size = min_of(block, count - first);
    if (any_suppresses<R, Inclusive>(&c.x1[first], &c.y1[first], &c.x2[first], &c.y2[first],
                                     &c.area[first], size, j, threshold)) {
      return true;
    }
  }
  return false;
}

/// Fast NMS keep flags: candidate j survives iff no earlier candidate, kept or not, suppresses
/// it. Rows are independent; they run in batches on `threads` threads until max_keep survive.
template <class R, bool Inclusive>
std::vector<index_t> fast_nms_kept(std::span<const nms_box<R>> boxes,
                                   const nms_threshold<R>& threshold, std::size_t max_keep,
                                   int threads) {
  const std::size_t n = boxes.size();
  std::vector<index_t> kept;
  if (n == 0 || max_keep == 0) return kept;
  const candidate_index<R> index(boxes, threshold.needs_overlap());
  const box_columns<R>& c = index.c;
  const unsigned char* const member = c.flag;
  const bool use_grid = index.grid.has_value();
  const neighbour_grid<R>* const grid = use_grid ? &*index.grid : nullptr;
  const R t = threshold.value;
  std::vector<unsigned char> keep(n, 0);
  const auto row = [&](std::size_t j) {
    const nms_box<R>& box = boxes[j];
    if (!use_grid) return !any_earlier_suppresses<R, Inclusive>(c, j, box, t);
    if (member[j] == 0) return true;  // meets nothing with positive area: never suppressed
    if (grid->large(j)) return !any_earlier_suppresses<R, Inclusive>(c, j, box, t);
    return !grid->scan_earlier(j, c, [&](const typename neighbour_grid<R>::block& b) {
      return any_suppresses<R, Inclusive>(b.x1, b.y1, b.x2, b.y2, b.area, b.count, box, t);
    });
  };
  const std::size_t batch = max_keep >= n ? n : max_of<std::size_t>(4096, 2 * max_keep);
  for (std::size_t first = 0; first < n && kept.size() < max_keep; first += batch) {
    const std::size_t last = min_of(n, first + batch);
    parallel_for(
        static_cast<index_t>(first), static_cast<index_t>(last), 256,
        [&](index_t lo, index_t hi) {
          for (index_t j = lo; j < hi; ++j) {
            keep[static_cast<std::size_t>(j)] = row(static_cast<std::size_t>(j)) ? 1 : 0;
          }
        },
        last - first >= 1024 ? threads : 1);
    for (std::size_t j = first; j < last && kept.size() < max_keep; ++j) {
      if (keep[j] != 0) kept.push_back(static_cast<index_t>(j));
    }
  }
  return kept;
}

}  // namespace detail
CVK_KERNEL_END
CVK_END_NAMESPACE
