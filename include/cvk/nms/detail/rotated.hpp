// cvk — computer-vision kernels, header-only C++20.
// The greedy kernels of rotated NMS (nms_rotated): compare-against-kept with the polygon IoU of
// box/detail/polygon.hpp, and the grid kernel that passes a pair to the polygon IoU only when a
// cell, the padded bounding boxes and an IoU upper bound all fail to rule it out.
// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <new>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "../../box/detail/polygon.hpp"
#include "../../core/config.hpp"
#include "../../detail/scratch.hpp"
#include "box_grid.hpp"
#include "greedy.hpp"

CVK_BEGIN_NAMESPACE
CVK_KERNEL_BEGIN
namespace detail {

/// Whether kept box `kept` suppresses `candidate`: cvk's rotated IoU of the pair (the value
/// rotated_box_iou(boxes, boxes)(kept, candidate) holds, computed in double and rounded to R)
/// compared with the threshold. NaN (non-finite input) never suppresses.
template <class R>
inline bool rotated_suppresses(const convex_quad<double>& kept,
                               const convex_quad<double>& candidate,
                               const nms_threshold<R>& threshold) noexcept {
  const double iou =
      convex_pair_metric<convex_metric::iou>(kept, candidate, bounds_may_overlap(kept, candidate));
  const R value = static_cast<R>(iou);
  return threshold.inclusive ? value >= threshold.value : value > threshold.value;
}

/// Greedy NMS comparing each candidate with every box kept so far: candidate j is kept iff no
/// kept i < j suppresses it (the decisions of the suppress-forward O(N²) loop). Appends kept
/// positions; stops after `max_keep`. O(N·K) rotated IoUs for K kept boxes.
template <class R>
void greedy_rotated_against_kept(std::span<const convex_quad<double>> boxes,
                                 const nms_threshold<R>& threshold, std::size_t max_keep,
                                 std::vector<index_t>& kept) {
  if (max_keep == 0) return;
  std::vector<std::size_t> kept_positions;
  for (std::size_t j = 0; j < boxes.size(); ++j) {
    bool suppressed = false;
    for (const std::size_t k : kept_positions) {
      if (rotated_suppresses(boxes[k], boxes[j], threshold)) {
        suppressed = true;
        break;
      }
    }
    if (suppressed) continue;
    kept.push_back(static_cast<index_t>(j));
    if (kept.size() == max_keep) return;
    kept_positions.push_back(j);
  }
}

/// How a box takes part in the grid kernel (which runs only when suppression needs IoU > 0).
enum class rotated_role : unsigned char {
  inert,   ///< IoU 0 or NaN with every box (empty: area < 1e-14, or non-finite input): always
           ///< kept, never suppresses, O(1)
  normal,  ///< finite bounding box: stored in the shared grid (nms/detail/box_grid.hpp)
  large,   ///< finite input whose bounding box or area overflowed: compared with every kept
           ///< box, and every candidate compares with it
};

/// A kept box as a grid cell stores it: its padded absolute bounding box and its position.
struct rotated_grid_entry {
  double xlo, ylo, xhi, yhi;
  std::size_t position;
};

/// A rectangle as the IoU upper bound reads it: centre, half-axes u (width) and v (height)
/// recovered from the quad's vertices (u+v, -u+v, -u-v, u-v), 1/|u|², 1/|v|², area and |u|+|v|.
struct rotated_shape {
  double cx, cy, ux, uy, vx, vy, inv_uu, inv_vv, area, reach;
};

inline rotated_shape make_rotated_shape(const convex_quad<double>& q) noexcept {
  rotated_shape r{};
  r.cx = q.cx;
  r.cy = q.cy;
  r.ux = (q.x[0] - q.x[1]) / 2;
  r.uy = (q.y[0] - q.y[1]) / 2;
  r.vx = (q.x[0] + q.x[1]) / 2;
  r.vy = (q.y[0] + q.y[1]) / 2;
  const double uu = r.ux * r.ux + r.uy * r.uy;
  const double vv = r.vx * r.vx + r.vy * r.vy;
  r.inv_uu = 1.0 / uu;
  r.inv_vv = 1.0 / vv;
  r.area = q.area;
  r.reach = std::sqrt(uu) + std::sqrt(vv);
  return r;
}

/// Length of [c - h, c + h] ∩ [-1, 1] (0 when empty, NaN for NaN input).
inline double unit_overlap(double c, double h) noexcept {
  const double hi = c + h < 1.0 ? c + h : 1.0;
  const double lo = c - h > -1.0 ? c - h : -1.0;
  const double length = hi - lo;
  return c != c || h != h ? c + h : (length <= 0.0 ? 0.0 : length);
}

/// Area of b ∩ (a's bounding box in b's frame): an upper bound of |a ∩ b|. 0 when the
/// projections on b's axes are apart (half of the separating-axis test).
inline double frame_bound(const rotated_shape& a, const rotated_shape& b) noexcept {
  const double dx = a.cx - b.cx;
  const double dy = a.cy - b.cy;
  // b's frame scaled so that b is [-1, 1]²
  const double c1 = (dx * b.ux + dy * b.uy) * b.inv_uu;
  const double c2 = (dx * b.vx + dy * b.vy) * b.inv_vv;
  const double h1 =
      (std::fabs(a.ux * b.ux + a.uy * b.uy) + std::fabs(a.vx * b.ux + a.vy * b.uy)) * b.inv_uu;
  const double h2 =
      (std::fabs(a.ux * b.vx + a.uy * b.vy) + std::fabs(a.vx * b.vx + a.vy * b.vy)) * b.inv_vv;
  return unit_overlap(c1, h1) * unit_overlap(c2, h2) * (b.area / 4);
}

/// True when the IoU of a and b, as the polygon kernel computes it, is surely below
/// `threshold`: IoU <= I / (|A| + |B| - I) with I = min(|A|, |B|, frame_bound(a, b),
/// frame_bound(b, a)), widened by a relative 1e-6 (the rounding of the IoU to R and of the
/// bound) and an absolute 1e-9 · (reach_a + reach_b)² / max(|A|, |B|) (a million times the
/// rounding error of an area computed from coordinates of that size). NaN gives false.
inline bool iou_bound_rules_out(const rotated_shape& a, const rotated_shape& b,
                                double threshold) noexcept {
  const double fa = frame_bound(a, b);
  const double fb = frame_bound(b, a);
  if (fa != fa || fb != fb) return false;
  const double smaller = min_of(a.area, b.area);
  const double larger = max_of(a.area, b.area);
  const double inter = min_of(min_of(fa, fb), smaller);
  const double iou = inter / ((a.area + b.area) - inter);
  const double reach = a.reach + b.reach;
  const double margin = 1e-9 * (reach * reach) / larger;
  return iou * (1.0 + 1e-6) + margin < threshold;
}

/// Per-candidate data of the grid kernel (trivial, for per-thread scratch memory).
struct rotated_grid_box {
  rotated_grid_entry bounds;  ///< padded absolute bounding box (when finite_bounds)
  rotated_shape shape;        ///< what the IoU bound reads (when finite_bounds)
  rotated_role role;
  bool finite_bounds;
};

/// The minimum candidate count for which the grid beats the plain loop.
inline constexpr std::size_t rotated_grid_min_boxes = 32;

/// Greedy NMS of rotated boxes with the decisions of greedy_rotated_against_kept, for a
/// threshold that needs a positive IoU (`threshold.needs_overlap()`). A pair is passed to the
/// polygon IoU only when three exact tests fail to rule it out:
///  1. grid: kept boxes are stored in the shared grid (box_grid.hpp) over their padded absolute
///     bounding boxes; a candidate looks only at the kept boxes of the cells its own covers.
///  2. bounding boxes: the padded absolute bounding boxes must meet. The padding (1e-9 of the
///     box's coordinate scale) exceeds every rounding difference from the centre-relative test
///     bounds_may_overlap of the IoU kernel, so a pair dropped here has bounds_may_overlap false,
///     hence intersection 0 and IoU 0, which never suppresses.
///  3. an upper bound of the IoU (iou_bound_rules_out: each rectangle clipped by the other's
///     bounding box in its own frame, and the smaller area), widened far beyond rounding, must
///     reach the threshold. This also drops most pairs whose bounding boxes meet but whose
///     rectangles do not (separating axes).
/// Empty and non-finite boxes (inert) are kept at O(1) cost. O(N) memory; the pair tests of a
/// candidate are the kept boxes in its cells (docs/nms.md, the shared grid).
template <class R>
void greedy_rotated_grid(std::span<const convex_quad<double>> boxes,
                         const nms_threshold<R>& threshold, std::size_t max_keep,
                         std::vector<index_t>& kept) {
  if (max_keep == 0) return;
  const std::size_t n = boxes.size();
  constexpr double min_area = min_convex_area;
  // Per-thread scratch memory: fresh pages on every call would cost more than the kernel.
  const scratch_lease<rotated_grid_box> box_storage(scratch_slot_id::nms_grid_boxes, n);
  rotated_grid_box* const info = box_storage.get();
  // Padded absolute bounding boxes, shapes and roles.
  for (std::size_t j = 0; j < n; ++j) {
    const convex_quad<double>& q = boxes[j];
    rotated_grid_box& box = info[j];
    box.role = rotated_role::inert;
    box.finite_bounds = false;
    // NaN area: non-finite input (IoU NaN). Area below min_area: IoU exactly 0.
    if (q.area != q.area || q.area < min_area) continue;
    const double scale = std::fabs(q.cx) + std::fabs(q.cy) + (q.xhi - q.xlo) + (q.yhi - q.ylo);
    const double pad = 1e-9 * scale + 1e-300;
    rotated_grid_entry& e = box.bounds;
    e = {q.cx + q.xlo - pad, q.cy + q.ylo - pad, q.cx + q.xhi + pad, q.cy + q.yhi + pad, j};
    const double finite_if_zero = (e.xlo - e.xhi) + (e.ylo - e.yhi) + q.area;
    if (!(finite_if_zero - finite_if_zero == 0.0)) {
      box.role = rotated_role::large;  // overflowed: never pruned, compared exactly
      continue;
    }
    box.role = rotated_role::normal;
    box.finite_bounds = true;
    box.shape = make_rotated_shape(q);
  }
  const auto grid_bounds_of = [&](std::size_t j) {
    const rotated_grid_entry& e = info[j].bounds;
    return grid_bounds{e.xlo, e.ylo, e.xhi, e.yhi};
  };
  const scratch_lease<grid_span> spans(scratch_slot_id::grid_spans, n);
  box_grid grid;
  grid.build(
      n,
      [&](std::size_t j, grid_bounds& b) {
        if (info[j].role != rotated_role::normal) return false;
        b = grid_bounds_of(j);
        return true;
      },
      spans.get());
  // Kept boxes by cell (counting sort: fill[c], one past the last kept box stored in cell c,
  // starts at start[c]), one column per value so that the scan of a cell vectorizes: the
  // padded bounds, the first cell the box covers (c0, r0), and its position.
  const std::vector<std::size_t>& start = grid.cell_start();
  const std::size_t cell_count = grid.cells();
  const std::size_t capacity = grid.slots();
  const scratch_lease<std::size_t> fill_storage(scratch_slot_id::nms_kept_boxes, cell_count);
  std::size_t* const fill = fill_storage.get();
  std::copy(start.begin(), start.end() - 1, fill);
  std::size_t largest_cell = 0;
  for (std::size_t c = 0; c < cell_count; ++c) {
    largest_cell = max_of(largest_cell, start[c + 1] - start[c]);
  }
  constexpr std::size_t entry_bytes =
      4 * sizeof(double) + 2 * sizeof(index_t) + sizeof(std::size_t);
  const scratch_lease<std::max_align_t> entry_storage(
      scratch_slot_id::nms_grid_cells,
      (capacity * entry_bytes + sizeof(std::max_align_t) - 1) / sizeof(std::max_align_t));
  double* const kept_xlo = reinterpret_cast<double*>(entry_storage.get());
  double* const kept_ylo = kept_xlo + capacity;
  double* const kept_xhi = kept_ylo + capacity;
  double* const kept_yhi = kept_xhi + capacity;
  index_t* const kept_c0 = reinterpret_cast<index_t*>(kept_yhi + capacity);
  index_t* const kept_r0 = kept_c0 + capacity;
  std::size_t* const kept_position = reinterpret_cast<std::size_t*>(kept_r0 + capacity);
  // hit[t] != 0: entry t of the cell being scanned meets the candidate (padded to whole words)
  std::vector<unsigned char> hit(largest_cell + 8, 0);

  std::vector<std::size_t> large_kept;
  const auto threshold_value = static_cast<double>(threshold.value);
  const auto try_pair = [&](std::size_t k, std::size_t j) {
    if (info[k].finite_bounds && info[j].finite_bounds &&
        iou_bound_rules_out(info[k].shape, info[j].shape, threshold_value)) {
      return false;
    }
    return rotated_suppresses(boxes[k], boxes[j], threshold);
  };
  const auto boxes_meet = [](const rotated_grid_entry& a, const rotated_grid_entry& b) {
    return !((a.xhi < b.xlo) | (b.xhi < a.xlo) | (a.yhi < b.ylo) | (b.yhi < a.ylo));
  };
  // Whether a kept box in cell c suppresses candidate j (query span qs, cell (x, y)). A kept
  // box sharing several cells with the candidate is tested in the first of them only.
  const auto cell_suppresses = [&](std::size_t c, const grid_span& qs, index_t x, index_t y,
                                   std::size_t j) {
    const rotated_grid_entry& e = info[j].bounds;
    const std::size_t first = start[c];
    const std::size_t count = fill[c] - first;
    if (count == 0) return false;
    count_pair_tests(count);
    unsigned char* const h = hit.data();
    for (std::size_t t = 0; t < count; ++t) {
      const std::size_t slot = first + t;
      const bool apart = (kept_xhi[slot] < e.xlo) | (e.xhi < kept_xlo[slot]) |
                         (kept_yhi[slot] < e.ylo) | (e.yhi < kept_ylo[slot]);
      h[t] = static_cast<unsigned char>(!apart);
    }
    std::fill(h + count, h + count + 8, static_cast<unsigned char>(0));
    const auto visit = [&](std::size_t t) {
      const std::size_t slot = first + t;
      if (!box_grid::first_shared({kept_c0[slot], 0, kept_r0[slot], 0, 0}, qs, x, y)) {
        return false;
      }
      return try_pair(kept_position[slot], j);
    };
    if constexpr (std::endian::native == std::endian::little) {
      for (std::size_t w = 0; w < count; w += 8) {
        std::uint64_t word = 0;
        std::memcpy(&word, h + w, sizeof(word));
        while (word != 0) {
          const auto t = w + static_cast<std::size_t>(std::countr_zero(word)) / 8;
          word &= word - 1;
          if (visit(t)) return true;
        }
      }
    } else {
      for (std::size_t t = 0; t < count; ++t) {
        if (h[t] != 0 && visit(t)) return true;
      }
    }
    return false;
  };

  for (std::size_t j = 0; j < n; ++j) {
    const rotated_grid_box& box = info[j];
    bool suppressed = false;
    if (box.role == rotated_role::large) {
      // Compared with every kept box that takes part (inert ones never suppress).
      count_pair_tests(kept.size());
      for (const index_t k : kept) {
        const rotated_grid_box& other = info[static_cast<std::size_t>(k)];
        if (other.role == rotated_role::inert) continue;
        if (other.finite_bounds && box.finite_bounds && !boxes_meet(other.bounds, box.bounds)) {
          continue;
        }
        if (try_pair(static_cast<std::size_t>(k), j)) {
          suppressed = true;
          break;
        }
      }
    } else if (box.role == rotated_role::normal) {
      suppressed = grid.for_each_query_cell(
          grid_bounds_of(j), [&](std::size_t c, const grid_span& qs, index_t x, index_t y) {
            return cell_suppresses(c, qs, x, y, j);
          });
      count_pair_tests(suppressed ? 0 : large_kept.size());
      for (std::size_t k = 0; k < large_kept.size() && !suppressed; ++k) {
        const rotated_grid_box& other = info[large_kept[k]];
        if (other.finite_bounds && !boxes_meet(other.bounds, box.bounds)) continue;
        suppressed = try_pair(large_kept[k], j);
      }
    }
    if (suppressed) continue;
    kept.push_back(static_cast<index_t>(j));
    if (kept.size() == max_keep) return;
    if (box.role == rotated_role::large) {
      large_kept.push_back(j);
    } else if (box.role == rotated_role::normal) {
      const grid_span& s = grid.span(j);
      grid.for_each_cell(s, [&](std::size_t c, index_t, index_t) {
        const std::size_t slot = fill[c]++;
        kept_xlo[slot] = box.bounds.xlo;
        kept_ylo[slot] = box.bounds.ylo;
        kept_xhi[slot] = box.bounds.xhi;
        kept_yhi[slot] = box.bounds.yhi;
        kept_c0[slot] = s.c0;
        kept_r0[slot] = s.r0;
        kept_position[slot] = j;
        return false;
      });
    }
  }
}

/// Greedy NMS of rotated candidates in processing order: appends the positions of the kept
/// ones, at most `max_keep`. The grid kernel when the threshold allows it and the input is not
/// tiny, else the plain compare-against-kept loop.
template <class R>
void greedy_nms_rotated(std::span<const convex_quad<double>> boxes,
                        const nms_threshold<R>& threshold, std::size_t max_keep,
                        std::vector<index_t>& kept) {
  if (threshold.needs_overlap() && boxes.size() >= rotated_grid_min_boxes) {
    greedy_rotated_grid(boxes, threshold, max_keep, kept);
  } else {
    greedy_rotated_against_kept(boxes, threshold, max_keep, kept);
  }
}

}  // namespace detail
CVK_KERNEL_END

CVK_END_NAMESPACE
