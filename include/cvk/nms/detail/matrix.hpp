// cvk — computer-vision kernels, header-only C++20.
// The matrix family's machinery (matrix_nms, fast_nms, cluster_nms): candidates as coordinate
// columns in scratch memory, the grid of the members of a candidate list for "which earlier
// candidates may overlap this one", and Paddle's matrix decays computed row by row, vectorized.
// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <limits>
#include <optional>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include "../../box/format.hpp"
#include "../../core/config.hpp"
#include "../../core/parallel.hpp"
#include "../../detail/checks.hpp"
#include "../../detail/scratch.hpp"
#include "box_grid.hpp"
#include "greedy.hpp"
#include "overlap.hpp"

CVK_BEGIN_NAMESPACE
CVK_KERNEL_BEGIN
namespace detail {

/// Candidate boxes as columns (x1, y1, x2, y2 after conversion to corners, and an area whose
/// definition depends on the method), in processing order, plus `extra` more columns of R and a
/// column of flags, all in one lease of the calling thread's scratch slot `slot`
/// (detail/scratch.hpp). Contents are uninitialised.
template <class R>
class box_columns {
 public:
  box_columns(scratch_slot_id slot, std::size_t n, std::size_t extra = 0)
      : n_(n), storage_(slot, (5 + extra) * n + (n + sizeof(R) - 1) / sizeof(R)) {
    R* const base = storage_.get();
    x1 = base;
    y1 = base + n;
    x2 = base + 2 * n;
    y2 = base + 3 * n;
    area = base + 4 * n;
    extra_ = base + 5 * n;
    flag = reinterpret_cast<unsigned char*>(base + (5 + extra) * n);
  }
  box_columns(const box_columns&) = delete;
  box_columns& operator=(const box_columns&) = delete;

  [[nodiscard]] std::size_t size() const noexcept { return n_; }
  /// Extra column k (0-based).
  [[nodiscard]] R* column(std::size_t k) const noexcept { return extra_ + k * n_; }

  R* x1;
  R* y1;
  R* x2;
  R* y2;
  R* area;
  unsigned char* flag;  ///< one per box; its meaning is the user's (members of a grid)

 private:
  std::size_t n_;
  scratch_lease<R> storage_;
  R* extra_;
};

/// Lanes of the blocked reductions: one 64-byte vector (16 floats, 8 doubles). The lane
/// accumulators live in small arrays so that the compiler vectorizes max/min reductions whose
/// NaN rule (`a < b ? b : a`) it would not reassociate.
template <class R>
inline constexpr std::size_t reduction_lanes = 64 / sizeof(R);

// ---------------------------------------------------------------------------------------------
// Neighbour grid: which earlier candidates can overlap a given one.

/// The members of a candidate list in the shared grid (box_grid.hpp), for queries "which
/// earlier candidates may overlap candidate k": each member box is stored in every cell its
/// closed extent covers, cells listing candidates in increasing position, with the coordinates
/// copied next to them (columns, so cell scans vectorize). Two members whose closed extents
/// intersect share a cell. (box_grid holds the cells; this adds the per-cell copy of all the
/// members, sorted by position, where greedy_grid fills cells with kept boxes as it goes.) All
/// its buffers are leases of the calling thread's scratch memory.
template <class R>
class neighbour_grid {
 public:
  /// A run of stored boxes: columns and positions, `count` of them.
  struct block {
    const R* x1;
    const R* y1;
    const R* x2;
    const R* y2;
    const R* area;
    const R* aux;
    const index_t* position;
    std::size_t count;
  };

  /// Builds the grid over the candidates k with boxes.flag[k] != 0 (finite, x1 <= x2,
  /// y1 <= y2).
  explicit neighbour_grid(const box_columns<R>& boxes)
      : spans_(scratch_slot_id::grid_spans, boxes.size()) {
    const std::size_t n = boxes.size();
    grid_.build(
        n,
        [&](std::size_t k, grid_bounds& g) {
          if (boxes.flag[k] == 0) return false;
          g = bounds(boxes, k);
          return true;
        },
        spans_.get());
    const std::size_t slots = grid_.slots();
    // Coordinate columns padded with zero boxes: a masked vector scan may read a few slots past
    // the last cell.
    stride_ = slots + padding;
    columns_.emplace(scratch_slot_id::nms_grid_boxes, 6 * stride_);
    std::fill(columns_->get(), columns_->get() + 6 * stride_, R(0));
    for (std::size_t q = 0; q < 6; ++q) column_[q] = columns_->get() + q * stride_;
    position_.emplace(scratch_slot_id::nms_kept_boxes, slots);
    R* const x1 = column(0);
    R* const y1 = column(1);
    R* const x2 = column(2);
    R* const y2 = column(3);
    R* const area = column(4);
    index_t* const position = position_->get();
    position_data_ = position;
    const std::vector<std::size_t>& start = grid_.cell_start();
    const scratch_lease<std::size_t> fill_storage(scratch_slot_id::nms_grid_cells, grid_.cells());
    std::size_t* const fill = fill_storage.get();
    std::copy(start.begin(), start.end() - 1, fill);
    // Increasing k: every cell lists positions in order.
    for (std::size_t k = 0; k < n; ++k) {
      if (!grid_.stored(k)) continue;
      grid_.for_each_cell(grid_.span(k), [&](std::size_t c, index_t, index_t) {
        const std::size_t s = fill[c]++;
        x1[s] = boxes.x1[k];
        y1[s] = boxes.y1[k];
        x2[s] = boxes.x2[k];
        y2[s] = boxes.y2[k];
        area[s] = boxes.area[k];
        position[s] = static_cast<index_t>(k);
        return false;
      });
    }
  }
  neighbour_grid(const neighbour_grid&) = delete;
  neighbour_grid& operator=(const neighbour_grid&) = delete;

  /// A non-member: its row needs a full scan.
  [[nodiscard]] bool large(std::size_t k) const noexcept { return !grid_.stored(k); }

  /// Sets the extra column of every stored copy of candidate k to values[k].
  void set_aux(const R* values) {
    R* const aux = column(5);
    const index_t* const position = position_->get();
    for (std::size_t s = 0; s < grid_.slots(); ++s) {
      aux[s] = values[static_cast<std::size_t>(position[s])];
    }
  }

  /// Calls body(block) for the stored candidates before position k (a member) that share a
  /// cell with it, cell by cell; stops when body returns true. A candidate may be seen once per
  /// shared cell. Returns whether body stopped.
  template <class Body>
  bool scan_earlier(std::size_t k, const box_columns<R>& boxes, Body&& body) const {
    return grid_.for_each_query_cell(bounds(boxes, k),
                                     [&](std::size_t c, const grid_span&, index_t, index_t) {
                                       const block b = earlier_in(c, k);
                                       count_pair_tests(b.count);
                                       return b.count != 0 && body(b);
                                     });
  }

  /// Calls pair(i) exactly once for each member i < k (k a member) whose closed extent meets
  /// candidate k's (in the first cell they share).
  template <class Pair>
  void for_each_earlier_once(std::size_t k, const box_columns<R>& boxes, Pair&& pair) const {
    const R kx1 = boxes.x1[k];
    const R ky1 = boxes.y1[k];
    const R kx2 = boxes.x2[k];
    const R ky2 = boxes.y2[k];
    grid_.for_each_query_cell(
        bounds(boxes, k), [&](std::size_t c, const grid_span& qs, index_t x, index_t y) {
          const block b = earlier_in(c, k);
          count_pair_tests(b.count);
          for (std::size_t s = 0; s < b.count; ++s) {
            if (b.x1[s] > kx2 || b.x2[s] < kx1 || b.y1[s] > ky2 || b.y2[s] < ky1) continue;
            const auto i = static_cast<std::size_t>(b.position[s]);
            if (box_grid::first_shared(grid_.span(i), qs, x, y)) pair(i);
          }
          return false;
        });
  }

  /// Slots readable past the end of any block (zero boxes with aux 0).
  static constexpr std::size_t padding = 16;

 private:
  [[nodiscard]] static grid_bounds bounds(const box_columns<R>& boxes, std::size_t k) noexcept {
    return {static_cast<double>(boxes.x1[k]), static_cast<double>(boxes.y1[k]),
            static_cast<double>(boxes.x2[k]), static_cast<double>(boxes.y2[k])};
  }
  [[nodiscard]] R* column(std::size_t q) const noexcept { return column_[q]; }
  /// The stored candidates of cell c before position k (positions increase along a cell).
  [[nodiscard]] block earlier_in(std::size_t c, std::size_t k) const noexcept {
    const std::size_t first = grid_.cell_start()[c];
    const index_t* const position = position_data_;
    const index_t* begin = position + first;
    const index_t* end =
        std::lower_bound(begin, position + grid_.cell_start()[c + 1], static_cast<index_t>(k));
    return {column(0) + first,
            column(1) + first,
            column(2) + first,
            column(3) + first,
            column(4) + first,
            column(5) + first,
            begin,
            static_cast<std::size_t>(end - begin)};
  }

  scratch_lease<grid_span> spans_;
  box_grid grid_;
  std::size_t stride_ = 0;
  std::optional<scratch_lease<R>> columns_;  // x1, y1, x2, y2, area, aux; stride_ apart
  std::array<R*, 6> column_{};
  index_t* position_data_ = nullptr;
  std::optional<scratch_lease<index_t>> position_;
};

/// Below this many candidates the matrix methods scan every earlier candidate.
inline constexpr std::size_t matrix_grid_min_boxes = 64;

// ---------------------------------------------------------------------------------------------
// matrix_nms (Paddle)

/// The reductions of one matrix row: iou_max (max over the columns of the row's IoUs, from 0)
/// and the decay's argument (min over the columns of (m_j² - iou²)·σ for gaussian, of
/// (1 - iou)/(1 - m_j) in double for linear; NaN terms never win, as in Paddle's std::min).
template <class R>
struct matrix_row_result {
  R iou_max = 0;
  R gaussian_min = std::numeric_limits<R>::infinity();
  double linear_min = std::numeric_limits<double>::infinity();
};

/// One row against `count` column boxes (columns x1..area, and aux = their iou_max). Runs of at
/// least two vectors go through lane accumulators; shorter ones (grid cells) are scalar.
template <class R, bool Max, bool Decay, bool Gaussian>
inline void matrix_row_scan(const R* x1, const R* y1, const R* x2, const R* y2, const R* area,
                            const R* m, std::size_t count, const std::array<R, 5>& a, R norm,
                            R sigma, matrix_row_result<R>& out) noexcept {
  constexpr std::size_t lanes = reduction_lanes<R>;
  const auto term = [&](std::size_t c, R& mx, R& gmin, double& lmin) {
    const R iou =
        paddle_iou(a[0], a[1], a[2], a[3], a[4], x1[c], y1[c], x2[c], y2[c], area[c], norm);
    if constexpr (Max) mx = mx < iou ? iou : mx;
    if constexpr (Decay) {
      if constexpr (Gaussian) {
        const R mm = m[c] * m[c];
        const R ii = iou * iou;
        const R arg = (mm - ii) * sigma;
        gmin = arg < gmin ? arg : gmin;
      } else {
        const double d = (1.0 - static_cast<double>(iou)) / (1.0 - static_cast<double>(m[c]));
        lmin = d < lmin ? d : lmin;
      }
    }
  };
  std::size_t k = 0;
  if (count >= 2 * lanes) {
    std::array<R, lanes> max_lane;
    std::array<R, lanes> gauss_lane;
    std::array<double, lanes> linear_lane;
    if constexpr (Max) max_lane.fill(out.iou_max);
    if constexpr (Decay && Gaussian) gauss_lane.fill(out.gaussian_min);
    if constexpr (Decay && !Gaussian) linear_lane.fill(out.linear_min);
    for (; k + lanes <= count; k += lanes) {
      for (std::size_t l = 0; l < lanes; ++l) {
        term(k + l, max_lane[l], gauss_lane[l], linear_lane[l]);
      }
    }
    for (std::size_t l = 0; l < lanes; ++l) {
      if constexpr (Max) out.iou_max = out.iou_max < max_lane[l] ? max_lane[l] : out.iou_max;
      if constexpr (Decay && Gaussian) {
        out.gaussian_min = gauss_lane[l] < out.gaussian_min ? gauss_lane[l] : out.gaussian_min;
      }
      if constexpr (Decay && !Gaussian) {
        out.linear_min = linear_lane[l] < out.linear_min ? linear_lane[l] : out.linear_min;
      }
    }
  }
  for (; k < count; ++k) term(k, out.iou_max, out.gaussian_min, out.linear_min);
}

/// Lane accumulators of one row, kept across the blocks (grid cells) of the row.
template <class R>
struct matrix_lanes {
  static constexpr std::size_t lanes = reduction_lanes<R>;
  std::array<R, lanes> max;
  std::array<R, lanes> gauss;
  std::array<double, lanes> linear;

  matrix_lanes() noexcept {
    max.fill(R(0));
    gauss.fill(std::numeric_limits<R>::infinity());
    linear.fill(std::numeric_limits<double>::infinity());
  }
};

/// matrix_row_scan on a block of the grid, in whole vectors: the lanes past `count` (reading the
/// grid's padding or the next cell) take IoU 0, which changes nothing when every iou_max is in
/// [0, 1] (every box regular): max(m, 0) = m, and the decay terms of IoU 0, 1/(1 - m) and
/// exp(m²σ), are >= 1.
template <class R, bool Max, bool Decay, bool Gaussian>
inline void matrix_block_scan(const R* x1, const R* y1, const R* x2, const R* y2, const R* area,
                              const R* m, std::size_t count, const std::array<R, 5>& a, R norm,
                              R sigma, matrix_lanes<R>& acc) noexcept {
  constexpr std::size_t lanes = reduction_lanes<R>;
  for (std::size_t k = 0; k < count; k += lanes) {
    for (std::size_t l = 0; l < lanes; ++l) {
      const std::size_t c = k + l;
      const R raw =
          paddle_iou(a[0], a[1], a[2], a[3], a[4], x1[c], y1[c], x2[c], y2[c], area[c], norm);
      const R iou = c < count ? raw : R(0);
      if constexpr (Max) acc.max[l] = acc.max[l] < iou ? iou : acc.max[l];
      if constexpr (Decay) {
        if constexpr (Gaussian) {
          const R mm = m[c] * m[c];
          const R ii = iou * iou;
          const R arg = (mm - ii) * sigma;
          acc.gauss[l] = arg < acc.gauss[l] ? arg : acc.gauss[l];
        } else {
          const double d = (1.0 - static_cast<double>(iou)) / (1.0 - static_cast<double>(m[c]));
          acc.linear[l] = d < acc.linear[l] ? d : acc.linear[l];
        }
      }
    }
  }
}

template <class R>
inline matrix_row_result<R> matrix_lanes_result(const matrix_lanes<R>& acc) noexcept {
  matrix_row_result<R> out;
  for (std::size_t l = 0; l < matrix_lanes<R>::lanes; ++l) {
    out.iou_max = out.iou_max < acc.max[l] ? acc.max[l] : out.iou_max;
    out.gaussian_min = acc.gauss[l] < out.gaussian_min ? acc.gauss[l] : out.gaussian_min;
    out.linear_min = acc.linear[l] < out.linear_min ? acc.linear[l] : out.linear_min;
  }
  return out;
}

/// The decay factor of a row from its reductions: Paddle's min over the columns of the decay,
/// starting from 1. exp is monotone, so min exp(arg) = exp(min arg).
template <class R, bool Gaussian>
inline R matrix_decay(const matrix_row_result<R>& r) noexcept {
  if constexpr (Gaussian) {
    const R e = std::exp(r.gaussian_min);
    return e < R(1) ? e : R(1);
  } else {
    const auto d = static_cast<R>(r.linear_min);
    return d < R(1) ? d : R(1);
  }
}

/// What matrix_nms_options says about one class's matrix (detail: no public type needed).
struct matrix_rule {
  box_format format = box_format::xyxy;
  bool normalized = true;
  bool gaussian = false;
  double gaussian_sigma = 2.0;
  std::optional<double> post_threshold{};
};

/// Decay factors of candidates in processing order (Paddle's NMSMatrix without the thresholds).
template <class R>
void matrix_decays(const box_columns<R>& c, const matrix_rule& rule, int threads, R* decay,
                   R* iou_max) {
  const std::size_t n = c.size();
  std::fill(decay, decay + n, R(1));
  if (n == 0) return;
  const R norm = rule.normalized ? R(0) : R(1);
  const auto sigma = static_cast<R>(rule.gaussian_sigma);
  const bool gaussian = rule.gaussian;
  const auto row_box = [&](std::size_t i) {
    return std::array<R, 5>{c.x1[i], c.y1[i], c.x2[i], c.y2[i], c.area[i]};
  };
  std::fill(iou_max, iou_max + n, R(0));

  // Every candidate regular (finite, not inverted, finite area): two boxes that are apart have
  // IoU 0, and an IoU of 0 against an iou_max in [0, 1] never lowers a decay (linear: 1/(1-m)
  // >= 1, gaussian: exp(m²σ) >= 1) nor raises an iou_max: only boxes sharing a grid cell matter.
  // A box with a NaN coordinate has IoU NaN (or 0, when apart) with every box, which changes no
  // maximum and no decay (the comparisons are written so that NaN never wins): it stays out of
  // the grid, its row keeps iou_max 0 and decay 1; so does a flat box when normalized. Other
  // irregular boxes (inverted, infinite): the dense pass.
  unsigned char* const member = c.flag;
  std::fill(member, member + n, static_cast<unsigned char>(1));
  bool regular = n >= matrix_grid_min_boxes;
  for (std::size_t i = 0; i < n && regular; ++i) {
    const R finite_if_zero = c.area[i] - c.area[i];
    const bool finite = finite_if_zero == R(0) && c.x1[i] <= c.x2[i] && c.y1[i] <= c.y2[i] &&
                        std::isfinite(c.x1[i]) && std::isfinite(c.y1[i]) &&
                        std::isfinite(c.x2[i]) && std::isfinite(c.y2[i]);
    const bool nan =
        std::isnan(c.x1[i]) || std::isnan(c.y1[i]) || std::isnan(c.x2[i]) || std::isnan(c.y2[i]);
    // (normalized: a box of zero width or height has IoU 0 or 0/0 with every box, as a NaN box)
    const bool flat = norm == R(0) && !(c.x2[i] > c.x1[i] && c.y2[i] > c.y1[i]);
    member[i] = finite && !flat ? 1 : 0;
    regular = finite || nan;
  }
  if (!regular) {
    // Dense: one pass, row i against every earlier column (iou_max of the columns is final).
    for (std::size_t i = 0; i < n; ++i) {
      count_pair_tests(i);
      matrix_row_result<R> r;
      const auto a = row_box(i);
      if (gaussian) {
        matrix_row_scan<R, true, true, true>(c.x1, c.y1, c.x2, c.y2, c.area, iou_max, i, a, norm,
                                             sigma, r);
        decay[i] = matrix_decay<R, true>(r);
      } else {
        matrix_row_scan<R, true, true, false>(c.x1, c.y1, c.x2, c.y2, c.area, iou_max, i, a, norm,
                                              sigma, r);
        decay[i] = matrix_decay<R, false>(r);
      }
      iou_max[i] = r.iou_max;
    }
    return;
  }

  // Grid: pass 1 the iou_max of every row, pass 2 the decays; rows are independent in each.
  neighbour_grid<R> grid(c);
  const auto rows = static_cast<index_t>(n);
  constexpr index_t grain = 512;
  const int team = n >= 2048 ? threads : 1;
  // One pass over the rows: row i's reductions matrix_block_scan<Max, Decay, Gaussian> over the
  // grid blocks before it, handed to store(i, result). A NaN or flat box (not in the grid) keeps
  // the empty result: iou_max 0, decay 1.
  const auto grid_pass = [&]<bool Max, bool Decay, bool Gaussian>(
                             std::bool_constant<Max>, std::bool_constant<Decay>,
                             std::bool_constant<Gaussian>, auto&& store) {
    parallel_for(
        0, rows, grain,
        [&](index_t lo, index_t hi) {
          for (auto i = static_cast<std::size_t>(lo); i < static_cast<std::size_t>(hi); ++i) {
            matrix_row_result<R> r;
            if (!grid.large(i)) {
              const auto a = row_box(i);
              matrix_lanes<R> acc;
              grid.scan_earlier(i, c, [&](const typename neighbour_grid<R>::block& b) {
                matrix_block_scan<R, Max, Decay, Gaussian>(b.x1, b.y1, b.x2, b.y2, b.area, b.aux,
                                                           b.count, a, norm, sigma, acc);
                return false;
              });
              r = matrix_lanes_result(acc);
            }
            store(i, r);
          }
        },
        team);
  };
  grid_pass(std::true_type{}, std::false_type{}, std::false_type{},
            [&](std::size_t i, const matrix_row_result<R>& r) { iou_max[i] = r.iou_max; });
  grid.set_aux(iou_max);
  if (gaussian) {
    grid_pass(
        std::false_type{}, std::true_type{}, std::true_type{},
        [&](std::size_t i, const matrix_row_result<R>& r) { decay[i] = matrix_decay<R, true>(r); });
  } else {
    grid_pass(std::false_type{}, std::true_type{}, std::false_type{},
              [&](std::size_t i, const matrix_row_result<R>& r) {
                decay[i] = matrix_decay<R, false>(r);
              });
  }
}

/// The columns of a candidate list (torchvision's corners and unclamped area; flag: the box
/// takes part, see takes_part) and, when asked for and the list is not tiny, the grid of the
/// boxes that take part; all in the calling thread's scratch memory.
template <class R>
struct candidate_index {
  box_columns<R> c;
  std::optional<neighbour_grid<R>> grid;

  candidate_index(std::span<const nms_box<R>> boxes, bool want_grid)
      : c(scratch_slot_id::nms_candidates, boxes.size()) {
    for (std::size_t k = 0; k < boxes.size(); ++k) {
      c.x1[k] = boxes[k].x1;
      c.y1[k] = boxes[k].y1;
      c.x2[k] = boxes[k].x2;
      c.y2[k] = boxes[k].y2;
      c.area[k] = boxes[k].area;
      c.flag[k] = takes_part(boxes[k]) ? 1 : 0;
    }
    // A grid without members (every box of zero area or NaN) still answers: nothing overlaps.
    if (want_grid && boxes.size() >= matrix_grid_min_boxes) grid.emplace(c);
  }
  candidate_index(const candidate_index&) = delete;
  candidate_index& operator=(const candidate_index&) = delete;
};

}  // namespace detail
CVK_KERNEL_END

namespace detail {

/// Common real type of box and score computations.
template <class B, class S>
using matrix_real_t = std::common_type_t<real_t<B>, real_t<S>>;

/// Candidate columns for matrix_nms: corners in R and Paddle's area.
template <class R, class BoxView>
void gather_paddle_boxes(const BoxView& boxes, const std::vector<index_t>& order, box_format format,
                         bool normalized, const box_columns<R>& c) {
  for (std::size_t k = 0; k < order.size(); ++k) {
    const auto b = to_xyxy(load_box<R>(boxes, order[k]), format, box_convention{});
    c.x1[k] = b[0];
    c.y1[k] = b[1];
    c.x2[k] = b[2];
    c.y2[k] = b[3];
    c.area[k] = paddle_area(b[0], b[1], b[2], b[3], normalized);
  }
}

/// Matrix NMS of one class: (rank, decayed score) of the survivors, in processing order.
template <class R, class BoxView, class ScoreView>
void matrix_nms_class(const BoxView& boxes, const ScoreView& scores,
                      const std::vector<index_t>& order, const matrix_rule& rule, int threads,
                      std::vector<std::pair<std::size_t, R>>& kept,
                      const std::vector<std::size_t>& ranks) {
  // The candidates' columns, their decays and iou_max (extra columns 0 and 1), grid members.
  const box_columns<R> columns(scratch_slot_id::nms_candidates, order.size(), 2);
  gather_paddle_boxes<R>(boxes, order, rule.format, rule.normalized, columns);
  R* const decay = columns.column(0);
  matrix_decays(columns, rule, threads, decay, columns.column(1));
  for (std::size_t k = 0; k < order.size(); ++k) {
    const R decayed = decay[k] * static_cast<R>(scores(order[k]));
    if (rule.post_threshold && !(static_cast<double>(decayed) > *rule.post_threshold)) {
      continue;
    }
    kept.emplace_back(ranks.empty() ? k : ranks[k], decayed);
  }
}

}  // namespace detail
CVK_END_NAMESPACE
