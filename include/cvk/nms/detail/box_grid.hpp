// cvk — computer-vision kernels, header-only C++20.
// The neighbour grid every NMS kernel uses to find the boxes that may overlap a given one: a few
// uniform grids ("levels"), each over the boxes of one size class and one region, so that
// neither an outlier far away, nor boxes of another size, nor boxes that cannot overlap
// anything make a query scan boxes it cannot meet.
// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#include "../../core/config.hpp"
#include "../../core/strided_view.hpp"
#include "../../detail/scratch.hpp"

#if defined(CVK_COUNT_PAIR_TESTS)
#  include <atomic>
#endif

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

#if defined(CVK_COUNT_PAIR_TESTS)
/// Pair tests performed by the NMS kernels since the last reset: the work measure of the cost
/// tests (tests/nms/test_box_grid.cpp). Only in builds that define CVK_COUNT_PAIR_TESTS.
inline std::atomic<std::uint64_t> pair_test_count{0};
inline void count_pair_tests(std::size_t n) noexcept {
  pair_test_count.fetch_add(n, std::memory_order_relaxed);
}
#else
/// Counts pair tests in builds that define CVK_COUNT_PAIR_TESTS; nothing otherwise.
inline void count_pair_tests(std::size_t /*n*/) noexcept {}
#endif

/// The closed extent [xlo, xhi] × [ylo, yhi] of a box as the grid sees it: finite, xlo <= xhi,
/// ylo <= yhi. Each kernel chooses it so that every pair it must test has intersecting extents.
struct grid_bounds {
  double xlo;
  double ylo;
  double xhi;
  double yhi;
};

/// Columns c0..c1 and rows r0..r1 of one level (trivial: the grid keeps them in scratch memory).
struct grid_span {
  index_t c0;
  index_t c1;
  index_t r0;
  index_t r1;
  std::uint32_t level;
};

/// A set of uniform grids ("levels") over the boxes that take part. A box is stored in every
/// cell of one level; a query visits, at every level, the cells its own extent covers. The cell
/// map of a level is monotone, so two boxes with intersecting extents share a cell of the
/// level that stores one of them: a query meets every stored box whose extent meets its own.
///
/// Levels are built one after the other from the boxes the previous ones left:
/// - extents: along each axis, the extent of the boxes near the middle half (see plan) when the
///   full extent is more than twice as wide (one box at 1e9 must not size the grid of a
///   1000-pixel image); the boxes outside go to a later level;
/// - cell: the median box side (square cells), or the median width and median height when they
///   differ more than 4× (long thin boxes); at most about 2 cells per box;
/// - a box stays when it lies inside the extents, spans at most `max_span` cells along each
///   axis and is not much smaller than the median (side >= median / 8), so that a cell holds
///   boxes of one size class: long strips and tiny boxes get levels of their own.
/// A level that would keep fewer than 1/8 of its boxes drops the size tests (square cells of
/// the median side: at least half of the boxes span few cells), so there are O(log N) levels;
/// after `max_levels`, the rest shares one cell.
class box_grid {
 public:
  static constexpr index_t max_span = 4;
  static constexpr std::size_t max_levels = 24;

  /// Builds the grid over the boxes i < n for which bounds_of(i, grid_bounds&) returns true (and
  /// sets finite bounds). Returns false when there are none. The cells of each box are kept in
  /// `span_storage` (n of them, e.g. a scratch_lease of slot grid_spans, which must outlive
  /// the grid's use) or, when it is null, in a vector of the grid. The temporary buffers of the
  /// build come from the calling thread's scratch memory (detail/scratch.hpp): a kernel called
  /// again and again does not page-fault fresh buffers in on every call.
  template <class BoundsOf>
  bool build(std::size_t n, BoundsOf&& bounds_of, grid_span* span_storage = nullptr) {
    levels_.clear();
    if (span_storage == nullptr) {
      own_spans_.resize(n);
      span_storage = own_spans_.data();
    }
    spans_ = span_storage;
    const scratch_lease<entry> entry_storage(scratch_slot_id::grid_entries, n);
    entry* const entries = entry_storage.get();
    std::size_t m = 0;
    for (std::size_t i = 0; i < n; ++i) {
      spans_[i] = grid_span{0, -1, 0, -1, not_stored};
      grid_bounds b{};
      if (bounds_of(i, b)) entries[m++] = entry{b, i};
    }
    if (m == 0) {
      cell_start_.assign(1, 0);
      return false;
    }
    const scratch_lease<double> value_storage(scratch_slot_id::nms_sides, m);
    double* const values = value_storage.get();
    std::size_t cells = 0;
    while (m > 0) {
      const std::span<entry> rest(entries, m);
      const auto level_id = static_cast<std::uint32_t>(levels_.size());
      const bool last = levels_.size() + 1 == max_levels;
      level lv = plan(rest, values, last ? mode::single : mode::sized);
      std::size_t staying = place(lv, level_id, rest);
      if (!last && staying < (m + 7) / 8) {
        lv = plan(rest, values, mode::size_class);
        staying = place(lv, level_id, rest);
      }
      if (!last && staying == 0) {
        lv = plan(rest, values, mode::square);
        staying = place(lv, level_id, rest);
      }
      if (staying == 0) {
        lv = plan(rest, values, mode::single);
        place(lv, level_id, rest);
      }
      lv.first_cell = cells;
      cells += static_cast<std::size_t>(lv.cols * lv.rows);
      const double inf = std::numeric_limits<double>::infinity();
      lv.used = {inf, inf, -inf, -inf};
      std::size_t left = 0;
      for (const entry& e : rest) {
        if (spans_[e.id].level != level_id) {
          entries[left++] = e;
          continue;
        }
        lv.used = {min_of(lv.used.xlo, e.bounds.xlo), min_of(lv.used.ylo, e.bounds.ylo),
                   max_of(lv.used.xhi, e.bounds.xhi), max_of(lv.used.yhi, e.bounds.yhi)};
      }
      levels_.push_back(lv);
      m = left;
    }
    // Slots: every stored box once per cell it covers, cell after cell (counting sort).
    cell_start_.assign(cells + 1, 0);
    for (std::size_t i = 0; i < n; ++i) {
      if (spans_[i].level == not_stored) continue;
      for_each_cell(spans_[i], [&](std::size_t c, index_t, index_t) {
        ++cell_start_[c + 1];
        return false;
      });
    }
    for (std::size_t c = 0; c < cells; ++c) cell_start_[c + 1] += cell_start_[c];
    return true;
  }

  [[nodiscard]] std::size_t levels() const noexcept { return levels_.size(); }
  [[nodiscard]] std::size_t cells() const noexcept { return cell_start_.size() - 1; }
  /// Stored entries in all: a box covering c cells counts c times.
  [[nodiscard]] std::size_t slots() const noexcept { return cell_start_.back(); }
  /// Slots [cell_start()[c], cell_start()[c + 1]) belong to cell c.
  [[nodiscard]] const std::vector<std::size_t>& cell_start() const noexcept { return cell_start_; }
  [[nodiscard]] bool stored(std::size_t i) const noexcept { return spans_[i].level != not_stored; }
  /// The cells of stored box i.
  [[nodiscard]] const grid_span& span(std::size_t i) const noexcept { return spans_[i]; }

  /// Calls f(cell, x, y) for the cells of `s` row by row until f returns true; returns whether
  /// it did.
  template <class F>
  bool for_each_cell(const grid_span& s, F&& f) const {
    const level& lv = levels_[s.level];
    for (index_t y = s.r0; y <= s.r1; ++y) {
      const std::size_t row_first = lv.first_cell + static_cast<std::size_t>(y * lv.cols);
      for (index_t x = s.c0; x <= s.c1; ++x) {
        if (f(row_first + static_cast<std::size_t>(x), x, y)) return true;
      }
    }
    return false;
  }

  /// Calls f(cell, query span, x, y), level by level, for every cell that the extent `q` covers
  /// within the region the level's boxes occupy, until f returns true; returns whether it did.
  /// Every stored box whose extent meets `q` lies in one of those cells. (Clamping `q` to the
  /// occupied region keeps such a box: it lies inside the region, so it meets the clamped `q`.
  /// Without it, a query far from a level of fine cells, e.g. thin strips, would walk its empty
  /// cells.)
  template <class F>
  bool for_each_query_cell(const grid_bounds& q, F&& f) const {
    for (std::size_t l = 0; l < levels_.size(); ++l) {
      const level& lv = levels_[l];
      if (q.xhi < lv.used.xlo || q.xlo > lv.used.xhi || q.yhi < lv.used.ylo ||
          q.ylo > lv.used.yhi) {
        continue;
      }
      const grid_bounds clamped{max_of(q.xlo, lv.used.xlo), max_of(q.ylo, lv.used.ylo),
                                min_of(q.xhi, lv.used.xhi), min_of(q.yhi, lv.used.yhi)};
      grid_span s = span_at(lv, clamped);
      s.level = static_cast<std::uint32_t>(l);
      if (for_each_cell(s, [&](std::size_t c, index_t x, index_t y) { return f(c, s, x, y); })) {
        return true;
      }
    }
    return false;
  }

  /// Whether cell (x, y) is the one that reports a stored box of span `stored` to a query of
  /// span `query` at the same level: the first cell both cover, (max c0, max r0). A box met in
  /// several cells is then handled once.
  [[nodiscard]] static bool first_shared(const grid_span& stored, const grid_span& query, index_t x,
                                         index_t y) noexcept {
    const index_t c0 = stored.c0 < query.c0 ? query.c0 : stored.c0;
    const index_t r0 = stored.r0 < query.r0 ? query.r0 : stored.r0;
    return c0 == x && r0 == y;
  }

 private:
  static constexpr std::uint32_t not_stored = std::numeric_limits<std::uint32_t>::max();
  static constexpr std::uint32_t small_mark = not_stored - 1;  // placing: smaller than its class
  static constexpr std::size_t small_crowd = 8;

  struct level {
    double lo_x = 0;
    double lo_y = 0;
    double hi_x = 0;  // the extents a box must lie in to stay
    double hi_y = 0;
    double inverse_x = 0;  // 1 / cell width
    double inverse_y = 0;
    double min_w = 0;  // the smallest width and height (or longer side) a box may have to stay
    double min_h = 0;
    bool square = true;  // min_w applies to the longer side
    bool sized = true;   // false: every box stays (no extent, span or size test)
    index_t cols = 1;
    index_t rows = 1;
    std::size_t first_cell = 0;
    grid_bounds used{};  // the smallest extent holding every box stored on the level
  };
  enum class mode { sized, size_class, square, single };
  struct entry {  // a box still to place (trivial: it lives in scratch memory)
    grid_bounds bounds;
    std::size_t id;
  };

  /// Monotone (each step rounds monotonically) and clamped: intersecting intervals share a cell.
  [[nodiscard]] static index_t cell_of(double v, double lo, double inverse,
                                       index_t count) noexcept {
    const double c = __builtin_floor((v - lo) * inverse);
    const auto last = static_cast<double>(count - 1);
    return static_cast<index_t>(c >= last ? last : (c > 0.0 ? c : 0.0));
  }
  [[nodiscard]] static grid_span span_at(const level& lv, const grid_bounds& b) noexcept {
    return {cell_of(b.xlo, lv.lo_x, lv.inverse_x, lv.cols),
            cell_of(b.xhi, lv.lo_x, lv.inverse_x, lv.cols),
            cell_of(b.ylo, lv.lo_y, lv.inverse_y, lv.rows),
            cell_of(b.yhi, lv.lo_y, lv.inverse_y, lv.rows), 0};
  }
  enum class fit { out, small, in };
  /// Whether a box stays on `lv`: it must lie inside the extents and span at most max_span
  /// cells along each axis (else `out`), and not be smaller than the level's size class (else
  /// `small`: it may still stay where it does not crowd a cell, see place).
  [[nodiscard]] static fit fits(const level& lv, const grid_bounds& b,
                                const grid_span& s) noexcept {
    if (!lv.sized) return fit::in;
    if (b.xlo < lv.lo_x || b.xhi > lv.hi_x || b.ylo < lv.lo_y || b.yhi > lv.hi_y) return fit::out;
    if (s.c1 - s.c0 >= max_span || s.r1 - s.r0 >= max_span) return fit::out;
    const double w = b.xhi - b.xlo;
    const double h = b.yhi - b.ylo;
    const bool large_enough =
        lv.square ? (w < h ? h : w) >= lv.min_w : w >= lv.min_w && h >= lv.min_h;
    return large_enough ? fit::in : fit::small;
  }

  /// Gives every entry that stays on `lv` its cells there (level `level_id`), marks the others
  /// not stored; returns how many stay.
  std::size_t place(const level& lv, std::uint32_t level_id, std::span<const entry> rest) {
    std::size_t count = 0;
    std::size_t small = 0;
    for (const entry& e : rest) {
      grid_span s = span_at(lv, e.bounds);
      const fit f = fits(lv, e.bounds, s);
      s.level = f == fit::in ? level_id : (f == fit::small ? small_mark : not_stored);
      spans_[e.id] = s;
      count += f == fit::in ? 1 : 0;
      small += f == fit::small ? 1 : 0;
    }
    return small == 0 ? count : count + place_small(lv, level_id, rest);
  }

  /// Boxes smaller than a level's size class stay on it in the cells where they are at most
  /// max(small_crowd, the level's other boxes in the cell): a query then meets at most about
  /// twice the boxes it would without them. A level of their own would have cells no finer
  /// where they are few and spread (its cells are limited to ~2 per box), and would cost every
  /// query one more level; where they crowd a cell they still go to a level of their own. The
  /// others in those cells are marked not stored. Returns how many stay.
  std::size_t place_small(const level& lv, std::uint32_t level_id, std::span<const entry> rest) {
    const auto cells = static_cast<std::size_t>(lv.cols * lv.rows);
    const scratch_lease<std::size_t> count_storage(scratch_slot_id::nms_grid_cells, 2 * cells);
    std::size_t* const regular = count_storage.get();  // per cell: boxes of the size class
    std::size_t* const small = regular + cells;        // per cell: smaller boxes
    std::fill(regular, regular + 2 * cells, std::size_t{0});
    const auto for_each_local_cell = [&](const grid_span& s, auto&& f) {
      for (index_t y = s.r0; y <= s.r1; ++y) {
        for (index_t x = s.c0; x <= s.c1; ++x) f(static_cast<std::size_t>(y * lv.cols + x));
      }
    };
    std::size_t most = 0;
    for (const entry& e : rest) {
      const grid_span& s = spans_[e.id];
      if (s.level == small_mark)
        for_each_local_cell(s, [&](std::size_t c) { most = max_of(most, ++small[c]); });
    }
    std::size_t count = 0;
    if (most <= small_crowd) {  // no cell crowded, whatever the others: all stay
      for (const entry& e : rest) {
        grid_span& s = spans_[e.id];
        if (s.level != small_mark) continue;
        s.level = level_id;
        ++count;
      }
      return count;
    }
    for (const entry& e : rest) {
      const grid_span& s = spans_[e.id];
      if (s.level == level_id) for_each_local_cell(s, [&](std::size_t c) { ++regular[c]; });
    }
    for (const entry& e : rest) {
      grid_span& s = spans_[e.id];
      if (s.level != small_mark) continue;
      bool crowded = false;
      for_each_local_cell(s, [&](std::size_t c) {
        crowded = crowded || small[c] > max_of(small_crowd, regular[c]);
      });
      s.level = crowded ? not_stored : level_id;
      count += crowded ? 0 : 1;
    }
    return count;
  }

  /// The k-th smallest of values[0, n) (reordered).
  static double kth(double* values, std::size_t n, std::size_t k) {
    std::nth_element(values, values + k, values + n);
    return values[k];
  }
  /// One extent bound: the k-th smallest (or largest) of the selected coordinate.
  template <class Get>
  static double order_statistic(std::span<const entry> rest, double* values, std::size_t k,
                                bool largest, Get get) {
    for (std::size_t i = 0; i < rest.size(); ++i) values[i] = get(rest[i].bounds);
    return kth(values, rest.size(), largest ? rest.size() - 1 - k : k);
  }

  struct sides {
    double w;
    double h;
  };
  /// The median width and the median height.
  static sides median_sides(std::span<const entry> rest, double* values) {
    const std::size_t n = rest.size();
    for (std::size_t i = 0; i < n; ++i) values[i] = rest[i].bounds.xhi - rest[i].bounds.xlo;
    const double w = kth(values, n, n / 2);
    for (std::size_t i = 0; i < n; ++i) values[i] = rest[i].bounds.yhi - rest[i].bounds.ylo;
    return {w, kth(values, n, n / 2)};
  }
  /// The median width and height of the most common size class (width and height each within
  /// a factor of 4): when sizes mix, a level for one class at a time.
  static sides common_sides(std::span<const entry> rest) {
    const auto class_of = [](double side) {
      return side > 0.0 ? static_cast<int>(std::floor(std::log2(side) / 2.0)) : -4096;
    };
    std::vector<std::array<double, 3>> keyed;  // (class key, width, height)
    keyed.reserve(rest.size());
    for (const entry& e : rest) {
      const double w = e.bounds.xhi - e.bounds.xlo;
      const double h = e.bounds.yhi - e.bounds.ylo;
      keyed.push_back({static_cast<double>(class_of(w)) * 8192.0 + class_of(h), w, h});
    }
    std::sort(keyed.begin(), keyed.end());
    std::size_t best = 0;
    std::size_t best_count = 0;
    for (std::size_t i = 0; i < keyed.size();) {
      std::size_t j = i;
      while (j < keyed.size() && keyed[j][0] == keyed[i][0]) ++j;
      if (j - i > best_count) {
        best = i;
        best_count = j - i;
      }
      i = j;
    }
    std::vector<double> ws;
    std::vector<double> hs;
    for (std::size_t i = best; i < best + best_count; ++i) {
      ws.push_back(keyed[i][1]);
      hs.push_back(keyed[i][2]);
    }
    return {kth(ws.data(), ws.size(), ws.size() / 2), kth(hs.data(), hs.size(), hs.size() / 2)};
  }

  static level plan(std::span<const entry> rest, double* values, mode m) {
    const std::size_t n = rest.size();
    level lv;
    lv.sized = m != mode::single;
    lv.lo_x = lv.lo_y = std::numeric_limits<double>::infinity();
    lv.hi_x = lv.hi_y = -lv.lo_x;
    for (const entry& e : rest) {
      lv.lo_x = min_of(lv.lo_x, e.bounds.xlo);
      lv.lo_y = min_of(lv.lo_y, e.bounds.ylo);
      lv.hi_x = max_of(lv.hi_x, e.bounds.xhi);
      lv.hi_y = max_of(lv.hi_y, e.bounds.yhi);
    }
    if (m == mode::single) {
      lv.inverse_x = lv.inverse_y = 0.0;
      return lv;
    }
    // The median longer side, and how many boxes are long and thin (strip cells only pay off
    // when many are).
    std::size_t wide = 0;
    std::size_t tall = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const double w = rest[i].bounds.xhi - rest[i].bounds.xlo;
      const double h = rest[i].bounds.yhi - rest[i].bounds.ylo;
      values[i] = max_of(w, h);
      wide += w > 4.0 * h ? 1 : 0;
      tall += h > 4.0 * w ? 1 : 0;
    }
    const double side = kth(values, n, n / 2);
    // At most about 2 cells per box: a large empty canvas must not cost memory.
    const double max_cells = 2.0 * static_cast<double>(n) + 16.0;
    const auto count = [](double extent, double cell) {
      return max_of(1.0, std::ceil(min_of(extent / cell, 1e15)));
    };
    // Robust extents, looked for only when cells of the median side over the full extent would
    // be more than 4× the cells n boxes may have (something stretches it; a scene of spread
    // boxes skips the four selections): along each axis, the middle half of the boxes (the
    // lower quartile of the low edges to the upper quartile of the high edges) widened by twice
    // its width on both sides is a window, and the extent is that of the boxes inside it, where
    // that makes the axis less than half. Up to a quarter of the boxes at either end may lie
    // anywhere; the boxes of a compact scene all lie inside (none is pushed to a later level).
    const double full_cells = count(lv.hi_x - lv.lo_x, side) * count(lv.hi_y - lv.lo_y, side);
    if (n >= 16 && !(full_cells <= 4.0 * max_cells)) {
      const std::size_t quarter = n / 4;
      const double q_lo_x =
          order_statistic(rest, values, quarter, false, [](const grid_bounds& b) { return b.xlo; });
      const double q_hi_x =
          order_statistic(rest, values, quarter, true, [](const grid_bounds& b) { return b.xhi; });
      const double q_lo_y =
          order_statistic(rest, values, quarter, false, [](const grid_bounds& b) { return b.ylo; });
      const double q_hi_y =
          order_statistic(rest, values, quarter, true, [](const grid_bounds& b) { return b.yhi; });
      const double margin_x = 2.0 * max_of(q_hi_x - q_lo_x, side);
      const double margin_y = 2.0 * max_of(q_hi_y - q_lo_y, side);
      const double inf = std::numeric_limits<double>::infinity();
      grid_bounds inside{inf, inf, -inf, -inf};
      for (const entry& e : rest) {
        const grid_bounds& b = e.bounds;
        if (b.xlo >= q_lo_x - margin_x && b.xhi <= q_hi_x + margin_x) {
          inside.xlo = min_of(inside.xlo, b.xlo);
          inside.xhi = max_of(inside.xhi, b.xhi);
        }
        if (b.ylo >= q_lo_y - margin_y && b.yhi <= q_hi_y + margin_y) {
          inside.ylo = min_of(inside.ylo, b.ylo);
          inside.yhi = max_of(inside.yhi, b.yhi);
        }
      }
      if (inside.xhi >= inside.xlo && lv.hi_x - lv.lo_x > 2.0 * (inside.xhi - inside.xlo)) {
        lv.lo_x = inside.xlo;
        lv.hi_x = inside.xhi;
      }
      if (inside.yhi >= inside.ylo && lv.hi_y - lv.lo_y > 2.0 * (inside.yhi - inside.ylo)) {
        lv.lo_y = inside.ylo;
        lv.hi_y = inside.yhi;
      }
    }
    const double width = lv.hi_x - lv.lo_x;
    const double height = lv.hi_y - lv.lo_y;
    double cell_w = side;
    double cell_h = side;
    lv.square = true;
    lv.min_w = side / 8.0;
    const bool many_thin = 4 * wide >= n || 4 * tall >= n;
    if (m == mode::size_class || (m == mode::sized && many_thin)) {
      const auto [w, h] = m == mode::sized ? median_sides(rest, values) : common_sides(rest);
      if (m == mode::size_class || (w > 0.0 && h > 0.0 && (w > 4.0 * h || h > 4.0 * w))) {
        cell_w = w;
        cell_h = h;
        lv.square = false;
        lv.min_w = w / 8.0;
        lv.min_h = h / 8.0;
      }
    } else if (m == mode::square) {
      lv.min_w = 0.0;  // no size test
    }
    if (!(cell_w > 0.0) || !(cell_h > 0.0)) {  // half of the boxes are points or lines
      cell_w = cell_h = max_of(width, height) / std::ceil(std::sqrt(static_cast<double>(n)));
      if (!(cell_w > 0.0)) cell_w = cell_h = 1.0;  // every box is the same point
    }
    double cols = count(width, cell_w);
    double rows = count(height, cell_h);
    while (cols * rows > max_cells) {
      const double grow = max_of(1.05, std::sqrt(cols * rows / max_cells));
      cell_w *= grow;
      cell_h *= grow;
      cols = count(width, cell_w);
      rows = count(height, cell_h);
    }
    lv.cols = static_cast<index_t>(cols);
    lv.rows = static_cast<index_t>(rows);
    lv.inverse_x = 1.0 / cell_w;
    lv.inverse_y = 1.0 / cell_h;
    return lv;
  }

  std::vector<level> levels_;
  std::vector<grid_span> own_spans_;
  grid_span* spans_ = nullptr;  // one per box given to build: own_spans_ or the caller's
  std::vector<std::size_t> cell_start_{0};
};

}  // namespace detail
CVK_KERNEL_END
CVK_END_NAMESPACE
