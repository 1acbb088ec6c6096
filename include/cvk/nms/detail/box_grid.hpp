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
#include <vector>

#include "../../core/config.hpp"
#include "../../core/strided_view.hpp"

#if defined(CVK_COUNT_PAIR_TESTS)
#  include <atomic>
#endif

CVK_BEGIN_NAMESPACE
CVK_KERNEL_BEGIN
namespace detail {

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

/// Columns c0..c1 and rows r0..r1 of one level.
struct grid_span {
  index_t c0 = 0;
  index_t c1 = -1;
  index_t r0 = 0;
  index_t r1 = -1;
  std::uint32_t level = 0;
};

/// A set of uniform grids ("levels") over the boxes that take part. A box is stored in every
/// cell of one level; a query visits, at every level, the cells its own extent covers. The cell
/// map of a level is monotone, so two boxes with intersecting extents share a cell of the
/// level that stores one of them: a query meets every stored box whose extent meets its own.
///
/// Levels are built one after the other from the boxes the previous ones left:
/// - extents: the box extents without the 1/64 lowest and highest along each axis when the
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
  /// sets finite bounds). Returns false when there are none.
  template <class BoundsOf>
  bool build(std::size_t n, BoundsOf&& bounds_of) {
    levels_.clear();
    spans_.assign(n, grid_span{0, -1, 0, -1, not_stored});
    std::vector<std::size_t> ids;
    std::vector<grid_bounds> bounds;
    for (std::size_t i = 0; i < n; ++i) {
      grid_bounds b{};
      if (!bounds_of(i, b)) continue;
      ids.push_back(i);
      bounds.push_back(b);
    }
    if (ids.empty()) {
      cell_start_.assign(1, 0);
      return false;
    }
    std::size_t cells = 0;
    std::vector<double> values;
    while (!ids.empty()) {
      const std::size_t m = ids.size();
      const bool last = levels_.size() + 1 == max_levels;
      level lv = plan(bounds, values, last ? mode::single : mode::sized);
      std::size_t staying = count_staying(lv, bounds);
      if (!last && staying < (m + 7) / 8) {
        lv = plan(bounds, values, mode::size_class);
        staying = count_staying(lv, bounds);
      }
      if (!last && staying == 0) {
        lv = plan(bounds, values, mode::square);
        staying = count_staying(lv, bounds);
      }
      if (staying == 0) lv = plan(bounds, values, mode::single);
      lv.first_cell = cells;
      cells += static_cast<std::size_t>(lv.cols * lv.rows);
      const auto level_id = static_cast<std::uint32_t>(levels_.size());
      levels_.push_back(lv);
      std::size_t rest = 0;
      for (std::size_t k = 0; k < m; ++k) {
        grid_span s = span_at(lv, bounds[k]);
        if (stays(lv, bounds[k], s)) {
          s.level = level_id;
          spans_[ids[k]] = s;
        } else {
          ids[rest] = ids[k];
          bounds[rest] = bounds[k];
          ++rest;
        }
      }
      ids.resize(rest);
      bounds.resize(rest);
    }
    // Slots: every stored box once per cell it covers, cell after cell (counting sort).
    cell_start_.assign(cells + 1, 0);
    for (const grid_span& s : spans_) {
      if (s.level == not_stored) continue;
      for_each_cell(s, [&](std::size_t c, index_t, index_t) {
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
  [[nodiscard]] bool stored(std::size_t i) const noexcept {
    return spans_[i].level != not_stored;
  }
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
  /// (clamped to the level), until f returns true; returns whether it did. Every stored box
  /// whose extent meets `q` lies in one of those cells.
  template <class F>
  bool for_each_query_cell(const grid_bounds& q, F&& f) const {
    for (std::size_t l = 0; l < levels_.size(); ++l) {
      grid_span s = span_at(levels_[l], q);
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
  };
  enum class mode { sized, size_class, square, single };

  /// Monotone (each step rounds monotonically) and clamped: intersecting intervals share a cell.
  [[nodiscard]] static index_t cell_of(double v, double lo, double inverse, index_t count) noexcept {
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
  [[nodiscard]] static bool stays(const level& lv, const grid_bounds& b,
                                  const grid_span& s) noexcept {
    if (!lv.sized) return true;
    if (b.xlo < lv.lo_x || b.xhi > lv.hi_x || b.ylo < lv.lo_y || b.yhi > lv.hi_y) return false;
    if (s.c1 - s.c0 >= max_span || s.r1 - s.r0 >= max_span) return false;
    const double w = b.xhi - b.xlo;
    const double h = b.yhi - b.ylo;
    if (lv.square) return (w < h ? h : w) >= lv.min_w;
    return w >= lv.min_w && h >= lv.min_h;
  }
  [[nodiscard]] static std::size_t count_staying(const level& lv,
                                                 const std::vector<grid_bounds>& bounds) noexcept {
    std::size_t count = 0;
    for (const grid_bounds& b : bounds) {
      if (stays(lv, b, span_at(lv, b))) ++count;
    }
    return count;
  }

  /// The k-th smallest of `values` (reordered).
  static double kth(std::vector<double>& values, std::size_t k) {
    const auto at = values.begin() + static_cast<std::ptrdiff_t>(k);
    std::nth_element(values.begin(), at, values.end());
    return *at;
  }
  /// One extent bound: the k-th smallest (or largest) of the selected coordinate.
  template <class Get>
  static double order_statistic(const std::vector<grid_bounds>& bounds,
                                std::vector<double>& values, std::size_t k, bool largest,
                                Get get) {
    values.clear();
    for (const grid_bounds& b : bounds) values.push_back(get(b));
    return kth(values, largest ? values.size() - 1 - k : k);
  }

  struct sides {
    double w;
    double h;
  };
  /// The median width and the median height.
  static sides median_sides(const std::vector<grid_bounds>& bounds, std::vector<double>& values) {
    const std::size_t mid = bounds.size() / 2;
    values.clear();
    for (const grid_bounds& b : bounds) values.push_back(b.xhi - b.xlo);
    const double w = kth(values, mid);
    values.clear();
    for (const grid_bounds& b : bounds) values.push_back(b.yhi - b.ylo);
    return {w, kth(values, mid)};
  }
  /// The median width and height of the most common size class (width and height each within
  /// a factor of 4): when sizes mix, a level for one class at a time.
  static sides common_sides(const std::vector<grid_bounds>& bounds) {
    const auto class_of = [](double side) {
      return side > 0.0 ? static_cast<int>(std::floor(std::log2(side) / 2.0)) : -4096;
    };
    std::vector<std::array<double, 3>> keyed;  // (class key, width, height)
    keyed.reserve(bounds.size());
    for (const grid_bounds& b : bounds) {
      const double w = b.xhi - b.xlo;
      const double h = b.yhi - b.ylo;
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
    return {kth(ws, ws.size() / 2), kth(hs, hs.size() / 2)};
  }

  static level plan(const std::vector<grid_bounds>& bounds, std::vector<double>& values, mode m) {
    const std::size_t n = bounds.size();
    level lv;
    lv.sized = m != mode::single;
    lv.lo_x = lv.lo_y = std::numeric_limits<double>::infinity();
    lv.hi_x = lv.hi_y = -lv.lo_x;
    for (const grid_bounds& b : bounds) {
      lv.lo_x = std::min(lv.lo_x, b.xlo);
      lv.lo_y = std::min(lv.lo_y, b.ylo);
      lv.hi_x = std::max(lv.hi_x, b.xhi);
      lv.hi_y = std::max(lv.hi_y, b.yhi);
    }
    if (m == mode::single) {
      lv.inverse_x = lv.inverse_y = 0.0;
      return lv;
    }
    // Extents without the outermost 1/64 per side, where that makes an axis less than half.
    const std::size_t trim = n / 64;
    if (trim > 0) {
      const double lo_x = order_statistic(bounds, values, trim, false,
                                          [](const grid_bounds& b) { return b.xlo; });
      const double hi_x = order_statistic(bounds, values, trim, true,
                                          [](const grid_bounds& b) { return b.xhi; });
      const double lo_y = order_statistic(bounds, values, trim, false,
                                          [](const grid_bounds& b) { return b.ylo; });
      const double hi_y = order_statistic(bounds, values, trim, true,
                                          [](const grid_bounds& b) { return b.yhi; });
      if (hi_x > lo_x && lv.hi_x - lv.lo_x > 2.0 * (hi_x - lo_x)) {
        lv.lo_x = lo_x;
        lv.hi_x = hi_x;
      }
      if (hi_y > lo_y && lv.hi_y - lv.lo_y > 2.0 * (hi_y - lo_y)) {
        lv.lo_y = lo_y;
        lv.hi_y = hi_y;
      }
    }
    const double width = lv.hi_x - lv.lo_x;
    const double height = lv.hi_y - lv.lo_y;
    const std::size_t mid = n / 2;
    values.clear();
    for (const grid_bounds& b : bounds) values.push_back(std::max(b.xhi - b.xlo, b.yhi - b.ylo));
    const double side = kth(values, mid);
    double cell_w = side;
    double cell_h = side;
    lv.square = true;
    lv.min_w = side / 8.0;
    if (m == mode::sized || m == mode::size_class) {
      const auto [w, h] = m == mode::sized ? median_sides(bounds, values) : common_sides(bounds);
      if (m == mode::size_class || (w > 0.0 && h > 0.0 && (w > 4.0 * h || h > 4.0 * w))) {
        cell_w = w;
        cell_h = h;
        lv.square = false;
        lv.min_w = w / 8.0;
        lv.min_h = h / 8.0;
      }
    } else {
      lv.min_w = 0.0;  // mode::square: no size test
    }
    if (!(cell_w > 0.0) || !(cell_h > 0.0)) {  // half of the boxes are points or lines
      cell_w = cell_h = std::max(width, height) / std::ceil(std::sqrt(static_cast<double>(n)));
      if (!(cell_w > 0.0)) cell_w = cell_h = 1.0;  // every box is the same point
    }
    // At most about 2 cells per box: a large empty canvas must not cost memory.
    const double max_cells = 2.0 * static_cast<double>(n) + 16.0;
    const auto count = [](double extent, double cell) {
      return std::max(1.0, std::ceil(std::min(extent / cell, 1e15)));
    };
    double cols = count(width, cell_w);
    double rows = count(height, cell_h);
    while (cols * rows > max_cells) {
      const double grow = std::max(1.05, std::sqrt(cols * rows / max_cells));
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
  std::vector<grid_span> spans_;
  std::vector<std::size_t> cell_start_{0};
};

}  // namespace detail
CVK_KERNEL_END
CVK_END_NAMESPACE
