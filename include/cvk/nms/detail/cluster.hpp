// cvk — computer-vision kernels, header-only C++20.
// Cluster-NMS's kernels: the keep set with the DIoU criterion (greedy, the iteration's fixed
// point), and the overlapping (kept, candidate) pairs that make the non-zero entries of the
// final matrix B, each once (the grid of nms/detail/matrix.hpp).
// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <span>
#include <vector>

#include "../../core/config.hpp"
#include "greedy.hpp"
#include "matrix.hpp"
#include "overlap.hpp"

CVK_BEGIN_NAMESPACE
CVK_KERNEL_BEGIN
namespace detail {

template <class R>
inline bool above(R value, const nms_threshold<R>& t) noexcept {
  return t.inclusive ? value >= t.value : value > t.value;
}

/// Greedy NMS with the DIoU criterion (= Cluster-DIoU-NMS at its fixed point). The IoU bounds
/// the DIoU from above, so the power is computed only for pairs whose IoU passes.
template <class R>
void diou_greedy(std::span<const nms_box<R>> boxes, const nms_threshold<R>& threshold, R beta,
                 std::size_t max_keep, std::vector<index_t>& kept,
                 std::vector<unsigned char>& kept_flag) {
  const std::size_t n = boxes.size();
  if (max_keep == 0) return;
  const auto suppresses_diou = [&](std::size_t i, std::size_t j) {
    const R iou = torchvision_iou(boxes[i], boxes[j]);
    if (!above(iou, threshold)) return false;
    return above(iou - std::pow(cluster_centre_distance(boxes[i], boxes[j]), beta), threshold);
  };
  const candidate_index<R> index(boxes, threshold.needs_overlap());
  const box_columns<R>& c = index.c;
  const unsigned char* const member = c.flag;
  const bool use_grid = index.grid.has_value();
  const neighbour_grid<R>* const grid = use_grid ? &*index.grid : nullptr;
  for (std::size_t j = 0; j < n; ++j) {
    bool suppressed = false;
    if (use_grid && member[j] == 0) {
      suppressed = false;  // IoU 0 or NaN with everything: DIoU <= 0
    } else if (use_grid && !grid->large(j)) {
      suppressed = grid->scan_earlier(j, c, [&](const typename neighbour_grid<R>::block& b) {
        for (std::size_t s = 0; s < b.count; ++s) {
          const auto i = static_cast<std::size_t>(b.position[s]);
          if (kept_flag[i] != 0 && suppresses_diou(i, j)) return true;
        }
        return false;
      });
    } else {
      count_pair_tests(kept.size());
      for (const index_t i : kept) {
        if (suppresses_diou(static_cast<std::size_t>(i), j)) {
          suppressed = true;
          break;
        }
      }
    }
    if (suppressed) continue;
    kept.push_back(static_cast<index_t>(j));
    kept_flag[j] = 1;
    if (kept.size() == max_keep) return;
  }
}

/// One non-zero entry of Cluster-NMS's final matrix B (row i kept, column j > i).
template <class R>
struct cluster_entry {
  std::size_t i;
  std::size_t j;
  R value;
};

/// Every pair (i, j), i < j, i with kept_flag, of boxes that overlap with positive area, once:
/// the pairs whose B entry can be non-zero (the IoU of any other pair is 0, or NaN for pairs of
/// zero-area boxes, which cvk treats as 0).
template <class R, class Pair>
void for_each_kept_overlap(std::span<const nms_box<R>> boxes,
                           const std::vector<unsigned char>& kept_flag, Pair&& pair) {
  const std::size_t n = boxes.size();
  const candidate_index<R> index(boxes, true);
  const box_columns<R>& c = index.c;
  const unsigned char* const member = c.flag;
  const bool use_grid = index.grid.has_value();
  const neighbour_grid<R>* const grid = use_grid ? &*index.grid : nullptr;
  for (std::size_t j = 0; j < n; ++j) {
    if (member[j] == 0) continue;
    if (use_grid && !grid->large(j)) {
      grid->for_each_earlier_once(j, c, [&](std::size_t i) {
        if (kept_flag[i] != 0) pair(i, j);
      });
    } else {
      count_pair_tests(j);
      for (std::size_t i = 0; i < j; ++i) {
        if (member[i] != 0 && kept_flag[i] != 0) pair(i, j);
      }
    }
  }
}

}  // namespace detail
CVK_KERNEL_END

namespace detail {

/// The non-zero entries of Cluster-NMS's final B (rows in the keep set; columns that overlap
/// them with positive area), each once, grouped by column in increasing order, rows increasing
/// within a column. With the DIoU criterion only the entries whose IoU is above merge_threshold
/// (DIoU <= IoU: the others never merge).
template <class R>
std::vector<cluster_entry<R>> cluster_entries(std::span<const nms_box<R>> candidates,
                                              const std::vector<unsigned char>& kept_flag,
                                              bool diou, R beta, double merge_threshold) {
  std::vector<cluster_entry<R>> entries;
  for_each_kept_overlap<R>(candidates, kept_flag, [&](std::size_t i, std::size_t j) {
    const R iou = torchvision_iou(candidates[i], candidates[j]);
    if (!(iou > R(0))) return;
    if (!diou) {
      entries.push_back({i, j, iou});
    } else if (static_cast<double>(iou) > merge_threshold) {  // DIoU <= IoU
      entries.push_back(
          {i, j, iou - std::pow(cluster_centre_distance(candidates[i], candidates[j]), beta)});
    }
  });
  for (std::size_t first = 0; first < entries.size();) {  // the pairs come column by column
    std::size_t last = first + 1;
    while (last < entries.size() && entries[last].j == entries[first].j) ++last;
    std::sort(entries.begin() + static_cast<std::ptrdiff_t>(first),
              entries.begin() + static_cast<std::ptrdiff_t>(last),
              [](const auto& x, const auto& y) { return x.i < y.i; });
    first = last;
  }
  return entries;
}

}  // namespace detail
CVK_END_NAMESPACE
