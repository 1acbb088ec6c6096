// cvk — computer-vision kernels, header-only C++20.
// The greedy NMS kernels on candidates already in processing order: the pair test written as
// torchvision 0.14's CPU kernel (csrc/ops/cpu/nms_kernel.cpp) so the decisions are bit-identical,
// a compare-against-kept loop, and the same loop with a uniform grid over the kept boxes.
// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <memory>
#include <span>
#include <type_traits>
#include <vector>

#include "../../core/config.hpp"
#include "../../core/strided_view.hpp"
#include "../../detail/scratch.hpp"
#include "box_grid.hpp"
#include "overlap.hpp"
#include "threshold.hpp"

CVK_BEGIN_NAMESPACE
CVK_KERNEL_BEGIN
namespace detail {

/// The IoU threshold as a value of R plus the comparison. torchvision compares the IoU in R
/// with the threshold in double; for float, `double(iou) > t` holds exactly when
/// `iou > (largest float <= t)` and `double(iou) >= t` when `iou >= (smallest float >= t)`, so
/// rounding the threshold once in the right direction gives the same decisions in R.
template <class R>
struct nms_threshold {
  R value{};
  bool inclusive = false;

  static nms_threshold from(double threshold, bool inclusive_comparison) noexcept {
    return {round_toward<R>(threshold, inclusive_comparison), inclusive_comparison};
  }

  /// True when suppression needs a positive intersection (IoU > t >= 0, or IoU >= t > 0):
  /// then only boxes that overlap with positive area can suppress each other.
  [[nodiscard]] bool needs_overlap() const noexcept {
    return inclusive ? value > R(0) : value >= R(0);
  }
};

/// The pair criteria of the greedy kernels (overlap.hpp): torchvision's IoU, and DIoU-NMS's
/// IoU − (ρ²/c²)^β (UnitBeta: β = 1, no pow).
template <class R>
struct iou_pair {
  static constexpr bool unit_beta = true;
  static R overlap(R kx1, R ky1, R kx2, R ky2, R karea, const nms_box<R>& j, R /*beta*/) noexcept {
    return torchvision_iou(kx1, ky1, kx2, ky2, karea, j);
  }
};

template <class R, bool UnitBeta>
struct diou_pair {
  static constexpr bool unit_beta = UnitBeta;
  static R overlap(R kx1, R ky1, R kx2, R ky2, R karea, const nms_box<R>& j, R beta) noexcept {
    return diou_nms_criterion<R, UnitBeta>(kx1, ky1, kx2, ky2, karea, j, beta);
  }
};

/// Whether kept box `i` suppresses candidate `j` under the criterion `Pair`.
template <class R, class Pair = iou_pair<R>>
inline bool suppresses(const nms_box<R>& i, const nms_box<R>& j, const nms_threshold<R>& threshold,
                       R beta = R(1)) noexcept {
  const R ovr = Pair::overlap(i.x1, i.y1, i.x2, i.y2, i.area, j, beta);
  return threshold.inclusive ? ovr >= threshold.value : ovr > threshold.value;
}

/// Whether any of `count` kept boxes (columns x1, y1, x2, y2, area) suppresses `j`: the pair
/// test of `suppresses` without an early exit, so that it vectorizes.
template <class R, bool Inclusive, class Pair = iou_pair<R>>
inline bool any_suppresses(const R* x1, const R* y1, const R* x2, const R* y2, const R* area,
                           std::size_t count, const nms_box<R>& j, R threshold,
                           R beta = R(1)) noexcept {
  unsigned hit = 0;
  for (std::size_t k = 0; k < count; ++k) {
    const R ovr = Pair::overlap(x1[k], y1[k], x2[k], y2[k], area[k], j, beta);
    if constexpr (Inclusive) {
      hit |= static_cast<unsigned>(ovr >= threshold);
    } else {
      hit |= static_cast<unsigned>(ovr > threshold);
    }
  }
  return hit != 0;
}

/// `any_suppresses` with the comparison chosen at run time.
template <class R, class Pair>
inline bool any_suppresses(const R* x1, const R* y1, const R* x2, const R* y2, const R* area,
                           std::size_t count, const nms_box<R>& j,
                           const nms_threshold<R>& threshold, R beta) noexcept {
  return threshold.inclusive
             ? any_suppresses<R, true, Pair>(x1, y1, x2, y2, area, count, j, threshold.value, beta)
             : any_suppresses<R, false, Pair>(x1, y1, x2, y2, area, count, j, threshold.value,
                                              beta);
}

/// Kept boxes are tested in blocks of this many (one or two vector registers, no remainder loop).
inline constexpr std::size_t nms_block = 16;

/// Whether any kept box in columns [0, count) suppresses `j`, reading whole blocks: the columns
/// must hold readable boxes up to count rounded up to nms_block. The extra slots hold either
/// other kept boxes (a true suppressor anyway: any kept box with IoU above the threshold
/// suppresses j) or NaN boxes (IoU NaN: never suppress), so the answer is unchanged.
template <class R, bool Inclusive, class Pair>
inline bool any_suppresses_blocks(const R* x1, const R* y1, const R* x2, const R* y2, const R* area,
                                  std::size_t count, const nms_box<R>& j, R threshold,
                                  R beta) noexcept {
  // Per-lane hits, reduced after every 4 blocks (a horizontal reduction per block would cost
  // as much as the block).
  constexpr std::size_t blocks_per_check = 4;
  std::array<unsigned, nms_block> hits{};
  std::size_t blocks = 0;
  for (std::size_t first = 0; first < count; first += nms_block) {
    for (std::size_t lane = 0; lane < nms_block; ++lane) {
      const std::size_t k = first + lane;
      const R ovr = Pair::overlap(x1[k], y1[k], x2[k], y2[k], area[k], j, beta);
      if constexpr (Inclusive) {
        hits[lane] |= static_cast<unsigned>(ovr >= threshold);
      } else {
        hits[lane] |= static_cast<unsigned>(ovr > threshold);
      }
    }
    if (++blocks % blocks_per_check == 0 || first + nms_block >= count) {
      unsigned any = 0;
      for (const unsigned h : hits) any |= h;
      if (any != 0) return true;
    }
  }
  return false;
}

/// `any_suppresses_blocks` with the comparison chosen at run time.
template <class R, class Pair>
inline bool any_suppresses_blocks(const R* x1, const R* y1, const R* x2, const R* y2, const R* area,
                                  std::size_t count, const nms_box<R>& j,
                                  const nms_threshold<R>& threshold, R beta) noexcept {
  return threshold.inclusive ? any_suppresses_blocks<R, true, Pair>(x1, y1, x2, y2, area, count, j,
                                                                    threshold.value, beta)
                             : any_suppresses_blocks<R, false, Pair>(x1, y1, x2, y2, area, count, j,
                                                                     threshold.value, beta);
}

/// Five columns (x1, y1, x2, y2, area) of `capacity` boxes plus one block of padding, all NaN
/// (a NaN box never suppresses), in scratch memory.
template <class R>
class nms_columns {
 public:
  nms_columns(scratch_slot_id slot, std::size_t capacity)
      : stride_(capacity + nms_block), storage_(slot, 5 * stride_) {
    std::fill(storage_.get(), storage_.get() + 5 * stride_, std::numeric_limits<R>::quiet_NaN());
  }
  [[nodiscard]] R* x1() const noexcept { return storage_.get(); }
  [[nodiscard]] R* y1() const noexcept { return storage_.get() + stride_; }
  [[nodiscard]] R* x2() const noexcept { return storage_.get() + 2 * stride_; }
  [[nodiscard]] R* y2() const noexcept { return storage_.get() + 3 * stride_; }
  [[nodiscard]] R* area() const noexcept { return storage_.get() + 4 * stride_; }
  void store(std::size_t slot, const nms_box<R>& b) const noexcept {
    x1()[slot] = b.x1;
    y1()[slot] = b.y1;
    x2()[slot] = b.x2;
    y2()[slot] = b.y2;
    area()[slot] = b.area;
  }
  /// Whether a kept box among slots [first, first + count) (read in whole blocks) suppresses j.
  template <class Pair>
  [[nodiscard]] bool any(std::size_t first, std::size_t count, const nms_box<R>& j,
                         const nms_threshold<R>& threshold, R beta) const noexcept {
    return any_suppresses_blocks<R, Pair>(x1() + first, y1() + first, x2() + first, y2() + first,
                                          area() + first, count, j, threshold, beta);
  }

 private:
  std::size_t stride_;
  scratch_lease<R> storage_;
};

/// How a greedy walk decides: the threshold and its comparison, OpenCV's adaptive `eta` (after
/// each kept box, a threshold above 0.5 is multiplied by eta, in double), and the DIoU exponent.
template <class R>
struct nms_rule {
  nms_threshold<R> threshold{};
  double threshold_value = 0.0;  // the threshold as given (eta multiplies this)
  double eta = 1.0;
  R beta = R(1);

  static nms_rule from(double threshold, bool inclusive, double eta = 1.0, R beta = R(1)) {
    return {nms_threshold<R>::from(threshold, inclusive), threshold, eta, beta};
  }
  /// After a box is kept: the adaptive threshold of OpenCV's NMSFast_ / Caffe SSD.
  void after_keep() noexcept {
    if (eta < 1.0 && threshold_value > 0.5) {
      threshold_value *= eta;
      threshold = nms_threshold<R>::from(threshold_value, threshold.inclusive);
    }
  }
};

/// Whether a candidate can take part in a suppression when `needs_overlap()` holds: finite area
/// (so finite corners) and positive width and height. Any other box meets every box with a zero
/// intersection or a NaN/infinite union, so its IoU is 0, -0 or NaN: never above a threshold
/// >= 0. Such boxes are always kept and never stored in the grid.
template <class R>
inline bool takes_part(const nms_box<R>& b) noexcept {
  const R finite_if_zero = b.area - b.area;  // 0 for finite areas, NaN for inf and NaN
  return finite_if_zero == R(0) && b.x2 > b.x1 && b.y2 > b.y1;
}

/// Greedy NMS by comparing each candidate with the boxes kept so far (ONNX Runtime's loop):
/// candidate j is kept iff no kept i < j suppresses it, which is exactly the decision of
/// torchvision's suppress-forward loop. The kept boxes are held as coordinate columns and
/// tested in vectorized blocks of 64, stopping after the first block with a hit. Appends kept
/// positions; stops after `max_keep`. O(N·K) for K kept boxes.
template <class R, class Pair = iou_pair<R>>
void greedy_against_kept(std::span<const nms_box<R>> boxes, nms_rule<R> rule, std::size_t max_keep,
                         std::vector<index_t>& kept) {
  if (max_keep == 0) return;
  const nms_columns<R> columns(scratch_slot_id::nms_kept_boxes, std::min(max_keep, boxes.size()));
  constexpr std::size_t block = 64;  // early exit after each block of kept boxes
  // With a threshold that needs overlap, a box that does not take part is never suppressed and
  // never suppresses: O(1), not compared and not stored (eta keeps such a threshold >= 0).
  const bool skip_inert = rule.threshold.needs_overlap();
  std::size_t count = 0;
  for (std::size_t j = 0; j < boxes.size(); ++j) {
    const nms_box<R>& candidate = boxes[j];
    const bool inert = skip_inert && !takes_part(candidate);
    bool suppressed = false;
    if (!inert) count_pair_tests(count);
    for (std::size_t first = 0; first < count && !suppressed && !inert; first += block) {
      suppressed = columns.template any<Pair>(first, std::min(block, count - first), candidate,
                                              rule.threshold, rule.beta);
    }
    if (suppressed) continue;
    kept.push_back(static_cast<index_t>(j));
    if (kept.size() == max_keep) return;
    rule.after_keep();
    if (!inert) columns.store(count++, candidate);
  }
}

/// greedy_against_kept with a fixed IoU threshold.
template <class R>
void greedy_against_kept(std::span<const nms_box<R>> boxes, const nms_threshold<R>& threshold,
                         std::size_t max_keep, std::vector<index_t>& kept) {
  greedy_against_kept<R, iou_pair<R>>(boxes, nms_rule<R>{threshold, 0.0, 1.0, R(1)}, max_keep,
                                      kept);
}

/// Below this many candidates the plain compare-against-kept loop is faster than building a grid.
inline constexpr std::size_t grid_min_boxes = 192;

/// Greedy NMS, same decisions as greedy_against_kept, when `threshold.needs_overlap()`: kept
/// boxes are stored in the shared grid (box_grid.hpp), and a candidate is compared only with
/// the kept boxes in the cells its extent covers. Two boxes with a positive intersection have
/// intersecting extents, so they share a cell: no suppressing pair is missed. A candidate that
/// does not take part is kept at O(1) cost. O(N log N) to build; a candidate's pair tests are
/// the kept boxes in its cells (see docs/nms.md for what bounds them).
template <class R, class Pair = iou_pair<R>>
void greedy_grid(std::span<const nms_box<R>> boxes, nms_rule<R> rule, std::size_t max_keep,
                 std::vector<index_t>& kept) {
  if (max_keep == 0) return;
  const auto bounds = [&](std::size_t i) {
    const nms_box<R>& b = boxes[i];
    return grid_bounds{static_cast<double>(b.x1), static_cast<double>(b.y1),
                       static_cast<double>(b.x2), static_cast<double>(b.y2)};
  };
  const scratch_lease<grid_span> spans(scratch_slot_id::grid_spans, boxes.size());
  box_grid grid;
  grid.build(
      boxes.size(),
      [&](std::size_t i, grid_bounds& b) {
        if (!takes_part(boxes[i])) return false;
        b = bounds(i);
        return true;
      },
      spans.get());
  // fill[c]: one past the last kept box stored in cell c (cell c starts empty at start[c]).
  const std::vector<std::size_t>& start = grid.cell_start();
  const scratch_lease<std::size_t> fill_storage(scratch_slot_id::nms_grid_cells, grid.cells());
  std::size_t* const fill = fill_storage.get();
  std::copy(start.begin(), start.end() - 1, fill);
  // Kept boxes by cell, one column per coordinate (the cell scan vectorizes over them).
  const nms_columns<R> stored(scratch_slot_id::nms_grid_boxes, grid.slots());
  for (std::size_t j = 0; j < boxes.size(); ++j) {
    const nms_box<R>& candidate = boxes[j];
    const bool active = grid.stored(j);
    const bool suppressed =
        active &&
        grid.for_each_query_cell(bounds(j), [&](std::size_t c, const grid_span&, index_t, index_t) {
          const std::size_t first = start[c];
          if (fill[c] == first) return false;
          count_pair_tests(fill[c] - first);
          return stored.template any<Pair>(first, fill[c] - first, candidate, rule.threshold,
                                           rule.beta);
        });
    if (suppressed) continue;
    kept.push_back(static_cast<index_t>(j));
    if (kept.size() == max_keep) return;
    rule.after_keep();
    if (!active) continue;
    grid.for_each_cell(grid.span(j), [&](std::size_t c, index_t, index_t) {
      stored.store(fill[c]++, candidate);
      return false;
    });
  }
}

/// greedy_grid with a fixed IoU threshold.
template <class R>
void greedy_grid(std::span<const nms_box<R>> boxes, const nms_threshold<R>& threshold,
                 std::size_t max_keep, std::vector<index_t>& kept) {
  greedy_grid<R, iou_pair<R>>(boxes, nms_rule<R>{threshold, 0.0, 1.0, R(1)}, max_keep, kept);
}

/// Greedy NMS on candidates in processing order: appends the positions of the kept ones, at
/// most `max_keep`. Picks the grid when the threshold allows it (a suppressing pair must then
/// overlap: IoU > t >= 0, and DIoU <= IoU) and the input is not tiny. `diou` selects DIoU-NMS.
template <class R>
void greedy_nms(std::span<const nms_box<R>> boxes, const nms_rule<R>& rule, bool diou,
                std::size_t max_keep, std::vector<index_t>& kept) {
  const auto run = [&]<class Pair>(Pair*) {
    if (rule.threshold.needs_overlap() && boxes.size() >= grid_min_boxes) {
      greedy_grid<R, Pair>(boxes, rule, max_keep, kept);
    } else {
      greedy_against_kept<R, Pair>(boxes, rule, max_keep, kept);
    }
  };
  if (!diou) {
    run(static_cast<iou_pair<R>*>(nullptr));
  } else if (rule.beta == R(1)) {
    run(static_cast<diou_pair<R, true>*>(nullptr));
  } else {
    run(static_cast<diou_pair<R, false>*>(nullptr));
  }
}

/// Greedy IoU NMS with a fixed threshold.
template <class R>
void greedy_nms(std::span<const nms_box<R>> boxes, const nms_threshold<R>& threshold,
                std::size_t max_keep, std::vector<index_t>& kept) {
  greedy_nms<R>(boxes, nms_rule<R>{threshold, 0.0, 1.0, R(1)}, false, max_keep, kept);
}

}  // namespace detail
CVK_KERNEL_END
CVK_END_NAMESPACE
