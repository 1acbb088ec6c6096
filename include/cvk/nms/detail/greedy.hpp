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

CVK_BEGIN_NAMESPACE
CVK_KERNEL_BEGIN
namespace detail {

/// std::max and std::min with their exact semantics ((a < b) ? b : a, and (b < a) ? b : a:
/// the first argument wins ties and NaN comparisons), written here because GCC does not inline
/// functions compiled with other options (std::max) into CVK_KERNEL code.
template <class R>
constexpr R max_of(R a, R b) noexcept {
  return a < b ? b : a;
}
template <class R>
constexpr R min_of(R a, R b) noexcept {
  return b < a ? b : a;
}

/// One candidate: xyxy corners and torchvision's area (x2 - x1) * (y2 - y1), unclamped.
template <class R>
struct nms_box {  // trivial (no member initialisers): it lives in scratch memory
  R x1;
  R y1;
  R x2;
  R y2;
  R area;
};

/// Corners → candidate (the area product in its own statement, as torchvision's box_area).
template <class R>
constexpr nms_box<R> make_nms_box(R x1, R y1, R x2, R y2) noexcept {
  const R w = x2 - x1;
  const R h = y2 - y1;
  const R area = w * h;
  return {x1, y1, x2, y2, area};
}

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

 private:
  template <class T>
  static T round_toward(double t, bool up) noexcept {
    if constexpr (sizeof(T) >= sizeof(double)) {
      (void)up;
      return static_cast<T>(t);
    } else {
      constexpr T inf = std::numeric_limits<T>::infinity();
      constexpr T big = std::numeric_limits<T>::max();
      if (t > static_cast<double>(big)) return up || std::isinf(t) ? inf : big;
      if (t < -static_cast<double>(big)) return !up || std::isinf(t) ? -inf : -big;
      T r = static_cast<T>(t);
      if (!up && static_cast<double>(r) > t) r = std::nextafter(r, -inf);
      if (up && static_cast<double>(r) < t) r = std::nextafter(r, inf);
      return r;
    }
  }
};

/// The IoU of kept box (kx1, ky1, kx2, ky2, karea) and candidate `j`: torchvision's per-pair
/// code, same operations in the same order (std::max / std::min argument order included, which
/// decides NaN results). A zero union gives 0/0 = NaN, and NaN compares false: such a pair never
/// suppresses.
template <class R>
struct iou_pair {
  static constexpr bool unit_beta = true;
  static R overlap(R kx1, R ky1, R kx2, R ky2, R karea, const nms_box<R>& j, R /*beta*/) noexcept {
    const R xx1 = max_of(kx1, j.x1);
    const R yy1 = max_of(ky1, j.y1);
    const R xx2 = min_of(kx2, j.x2);
    const R yy2 = min_of(ky2, j.y2);
    const R w = max_of(R(0), xx2 - xx1);
    const R h = max_of(R(0), yy2 - yy1);
    const R inter = w * h;
    const R sum = karea + j.area;
    const R uni = sum - inter;
    return inter / uni;
  }
};

/// DIoU-NMS (Zheng et al., AAAI 2020): IoU − (ρ²/c²)^β, ρ the distance of the centres and c the
/// diagonal of the smallest enclosing box; the penalty is 0 when c = 0 (two identical points).
/// β = 1 is the paper's criterion, darknet's beta_nms is 0.6.
template <class R, bool UnitBeta>
struct diou_pair {
  static constexpr bool unit_beta = UnitBeta;
  static R overlap(R kx1, R ky1, R kx2, R ky2, R karea, const nms_box<R>& j, R beta) noexcept {
    const R iou = iou_pair<R>::overlap(kx1, ky1, kx2, ky2, karea, j, beta);
    const R dx = (kx1 + kx2) - (j.x1 + j.x2);  // 2 × centre distance
    const R dy = (ky1 + ky2) - (j.y1 + j.y2);
    const R cw = max_of(kx2, j.x2) - min_of(kx1, j.x1);
    const R ch = max_of(ky2, j.y2) - min_of(ky1, j.y1);
    const R c2 = R(4) * (cw * cw + ch * ch);
    const R rho2 = dx * dx + dy * dy;
    R penalty = c2 > R(0) ? rho2 / c2 : R(0);
    if constexpr (!UnitBeta) penalty = std::pow(penalty, beta);
    return iou - penalty;
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
  std::size_t count = 0;
  for (std::size_t j = 0; j < boxes.size(); ++j) {
    const nms_box<R>& candidate = boxes[j];
    bool suppressed = false;
    for (std::size_t first = 0; first < count && !suppressed; first += block) {
      suppressed = columns.template any<Pair>(first, std::min(block, count - first), candidate,
                                              rule.threshold, rule.beta);
    }
    if (suppressed) continue;
    kept.push_back(static_cast<index_t>(j));
    if (kept.size() == max_keep) return;
    rule.after_keep();
    columns.store(count++, candidate);
  }
}

/// greedy_against_kept with a fixed IoU threshold.
template <class R>
void greedy_against_kept(std::span<const nms_box<R>> boxes, const nms_threshold<R>& threshold,
                         std::size_t max_keep, std::vector<index_t>& kept) {
  greedy_against_kept<R, iou_pair<R>>(boxes, nms_rule<R>{threshold, 0.0, 1.0, R(1)}, max_keep,
                                      kept);
}

/// Whether a candidate can take part in a suppression when `needs_overlap()` holds: finite area
/// (so finite corners) and positive width and height. Any other box meets every box with a zero
/// intersection or a NaN/infinite union, so its IoU is 0, -0 or NaN: never above a threshold
/// >= 0. Such boxes are always kept and never stored in the grid.
template <class R>
inline bool takes_part(const nms_box<R>& b) noexcept {
  const R finite_if_zero = b.area - b.area;  // 0 for finite areas, NaN for inf and NaN
  return finite_if_zero == R(0) && b.x2 > b.x1 && b.y2 > b.y1;
}

/// Cells of the grid a box may be stored in along one axis, and how many fit before a box is
/// "large": large kept boxes go to a list every candidate scans, large candidates scan every
/// kept box. The cell side is `cell_scale` times the median box side.
inline constexpr index_t grid_max_span = 4;
inline constexpr double grid_cell_scale = 1.0;
/// Below this many candidates the plain compare-against-kept loop is faster than building a grid.
inline constexpr std::size_t grid_min_boxes = 192;

/// Greedy NMS, same decisions as greedy_against_kept, when `threshold.needs_overlap()`: kept
/// boxes are stored in a uniform grid (in every cell they cover), and a candidate is compared
/// only with the kept boxes in the cells it covers. Two boxes with a positive intersection share
/// at least one cell (the cell mapping is monotone), so no suppressing pair is missed.
/// O(N + cells) memory; O(N · kept boxes per neighbourhood) time on spatially spread scenes.
template <class R, class Pair = iou_pair<R>>
void greedy_grid(std::span<const nms_box<R>> boxes, nms_rule<R> rule, std::size_t max_keep,
                 std::vector<index_t>& kept) {
  if (max_keep == 0) return;
  // Extent of the boxes that take part, and the median of their longer sides.
  double lo_x = std::numeric_limits<double>::infinity();
  double lo_y = lo_x;
  double hi_x = -lo_x;
  double hi_y = -lo_x;
  const scratch_lease<R> side_storage(scratch_slot_id::nms_sides, boxes.size());
  R* const sides = side_storage.get();
  std::size_t side_count = 0;
  for (const nms_box<R>& b : boxes) {
    if (!takes_part(b)) continue;
    lo_x = min_of(lo_x, static_cast<double>(b.x1));
    lo_y = min_of(lo_y, static_cast<double>(b.y1));
    hi_x = max_of(hi_x, static_cast<double>(b.x2));
    hi_y = max_of(hi_y, static_cast<double>(b.y2));
    sides[side_count++] = max_of(b.x2 - b.x1, b.y2 - b.y1);
  }
  const double width = hi_x - lo_x;
  const double height = hi_y - lo_y;
  if (side_count == 0 || !std::isfinite(width) || !std::isfinite(height)) {
    greedy_against_kept<R, Pair>(boxes, rule, max_keep, kept);
    return;
  }
  R* const middle = sides + side_count / 2;
  std::nth_element(sides, middle, sides + side_count);
  double cell = static_cast<double>(*middle) * grid_cell_scale;
  // At most about 2 cells per box: a large empty canvas must not cost memory.
  const double max_cells = 2.0 * static_cast<double>(side_count) + 16.0;
  double cols_d = std::max(1.0, std::ceil(width / cell));
  double rows_d = std::max(1.0, std::ceil(height / cell));
  while (cols_d * rows_d > max_cells) {
    cell *= std::max(1.05, std::sqrt(cols_d * rows_d / max_cells));
    cols_d = std::max(1.0, std::ceil(width / cell));
    rows_d = std::max(1.0, std::ceil(height / cell));
  }
  const auto cols = static_cast<index_t>(cols_d);
  const auto rows = static_cast<index_t>(rows_d);
  const double inverse = 1.0 / cell;
  // Monotone in x (each step rounds monotonically), so overlapping intervals share a cell.
  const auto column = [&](R x) {
    const double c = __builtin_floor((static_cast<double>(x) - lo_x) * inverse);
    return static_cast<index_t>(min_of(max_of(c, 0.0), static_cast<double>(cols - 1)));
  };
  const auto row = [&](R y) {
    const double r = __builtin_floor((static_cast<double>(y) - lo_y) * inverse);
    return static_cast<index_t>(min_of(max_of(r, 0.0), static_cast<double>(rows - 1)));
  };
  struct cell_range {
    index_t c0, c1, r0, r1;
    [[nodiscard]] bool large() const noexcept {
      return c1 - c0 >= grid_max_span || r1 - r0 >= grid_max_span;
    }
  };
  const auto range_of = [&](const nms_box<R>& b) {
    return cell_range{column(b.x1), column(b.x2), row(b.y1), row(b.y2)};
  };

  // Bucket storage sized for the worst case (every candidate kept): counting sort by cell.
  const auto cell_count = static_cast<std::size_t>(cols * rows);
  // fill[c]: one past the last box stored in cell c; start[c]: its first slot.
  const scratch_lease<std::size_t> cell_storage(scratch_slot_id::nms_grid_cells,
                                                2 * cell_count + 1);
  std::size_t* const fill = cell_storage.get();
  std::size_t* const start = fill + cell_count + 1;
  std::fill(fill, fill + cell_count + 1, std::size_t{0});
  for (const nms_box<R>& b : boxes) {
    if (!takes_part(b)) continue;
    const cell_range range = range_of(b);
    if (range.large()) continue;
    for (index_t r = range.r0; r <= range.r1; ++r) {
      for (index_t c = range.c0; c <= range.c1; ++c)
        ++fill[static_cast<std::size_t>(r * cols + c) + 1];
    }
  }
  for (std::size_t c = 0; c < cell_count; ++c) fill[c + 1] += fill[c];
  // Kept boxes by cell, one column per coordinate (the cell scan vectorizes over them).
  const std::size_t capacity = fill[cell_count];
  const nms_columns<R> stored(scratch_slot_id::nms_grid_boxes, capacity);
  std::copy(fill, fill + cell_count, start);  // every cell starts empty: fill[c] = start[c]

  std::vector<nms_box<R>> large_kept;
  for (std::size_t j = 0; j < boxes.size(); ++j) {
    const nms_box<R>& candidate = boxes[j];
    bool suppressed = false;
    cell_range range{};
    const bool active = takes_part(candidate);
    if (active) {
      range = range_of(candidate);
      if (range.large()) {
        for (const index_t k : kept) {
          if (suppresses<R, Pair>(boxes[static_cast<std::size_t>(k)], candidate, rule.threshold,
                                  rule.beta)) {
            suppressed = true;
            break;
          }
        }
      } else {
        for (index_t r = range.r0; r <= range.r1 && !suppressed; ++r) {
          for (index_t c = range.c0; c <= range.c1 && !suppressed; ++c) {
            const auto cell_index = static_cast<std::size_t>(r * cols + c);
            const std::size_t first = start[cell_index];
            suppressed = stored.template any<Pair>(first, fill[cell_index] - first, candidate,
                                                   rule.threshold, rule.beta);
          }
        }
        for (std::size_t k = 0; k < large_kept.size() && !suppressed; ++k) {
          suppressed = suppresses<R, Pair>(large_kept[k], candidate, rule.threshold, rule.beta);
        }
      }
    }
    if (suppressed) continue;
    kept.push_back(static_cast<index_t>(j));
    if (kept.size() == max_keep) return;
    rule.after_keep();
    if (!active) continue;
    if (range.large()) {
      large_kept.push_back(candidate);
    } else {
      for (index_t r = range.r0; r <= range.r1; ++r) {
        for (index_t c = range.c0; c <= range.c1; ++c) {
          stored.store(fill[static_cast<std::size_t>(r * cols + c)]++, candidate);
        }
      }
    }
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
