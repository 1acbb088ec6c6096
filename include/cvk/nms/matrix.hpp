// cvk — computer-vision kernels, header-only C++20.
// The matrix family of NMS: matrix_nms and batched_matrix_nms (PaddlePaddle matrix_nms,
// SOLOv2), fast_nms (YOLACT Fast NMS) and cluster_nms (Zheng et al., Cluster-NMS with its
// score-penalty, distance, weighted and DIoU variants). Each is defined by an upper-triangular
// pair matrix over the score-ordered candidates; cvk computes the matrix row by row (never
// stored), vectorized, and on spread-out scenes only over the pairs that can be non-zero.
// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "../box/format.hpp"
#include "../core/as_view.hpp"
#include "../core/config.hpp"
#include "../core/errors.hpp"
#include "../core/parallel.hpp"
#include "../core/tensor.hpp"
#include "../detail/checks.hpp"
#include "../detail/scratch.hpp"
#include "detail/greedy.hpp"
#include "detail/overlap.hpp"
#include "detail/rank.hpp"
#include "nms.hpp"

CVK_BEGIN_NAMESPACE

/// How matrix_nms turns an overlap into a score decay.
enum class matrix_nms_decay {
  linear,    ///< (1 - iou) / (1 - iou_max)  (Paddle use_gaussian = false, its default)
  gaussian,  ///< exp((iou_max² - iou²) · gaussian_sigma)  (Paddle use_gaussian = true)
};

/// Options of matrix_nms and batched_matrix_nms. The defaults are Paddle's matrix_nms defaults
/// with both thresholds off.
struct matrix_nms_options {
  /// Candidates: only boxes whose score is > score_threshold (Paddle score_threshold).
  /// Compared in double. Unset: every box.
  std::optional<double> score_threshold{};
  /// Survivors: only boxes whose decayed score is > post_threshold (Paddle post_threshold).
  /// Compared in double. Unset: every candidate survives (its score is only decayed).
  std::optional<double> post_threshold{};
  /// Only the nms_top_k highest scored candidates enter the matrix (Paddle nms_top_k; -1 there
  /// is unset here). In batched_matrix_nms: per class, as Paddle.
  std::optional<index_t> nms_top_k{};
  /// At most keep_top_k results, the highest decayed scores (Paddle keep_top_k; over all classes
  /// in batched_matrix_nms).
  std::optional<index_t> keep_top_k{};
  /// Decay function (Paddle use_gaussian).
  matrix_nms_decay decay = matrix_nms_decay::linear;
  /// Gaussian decay factor: it multiplies, exp((iou_max² - iou²) · sigma) (Paddle
  /// gaussian_sigma; SOLOv2's sigma divides, so SOLOv2's 2.0 is Paddle's 0.5). Must be > 0.
  double gaussian_sigma = 2.0;
  /// false: the pixel-inclusive "+1" convention of Paddle normalized = false (widths x2-x1+1,
  /// touching boxes overlap).
  bool normalized = true;
  /// batched_matrix_nms only: boxes of this class are dropped (Paddle background_label; its
  /// default there is 0). Unset: no class is dropped.
  std::optional<std::int64_t> background_label{};
  /// Column order of the boxes.
  box_format format = box_format::xyxy;
  /// Threads over the rows of the matrix (and classes), 0 = max_threads(). Results do not
  /// depend on it.
  int threads = 0;
};

/// Result of matrix_nms and cluster_nms without merged boxes: indices into the input and the
/// scores that go with them (decayed, penalized or the input's, see each function).
template <class R>
struct scored_indices {
  tensor<index_t, 1> indices;
  tensor<R, 1> scores;
};

/// Options of fast_nms (the candidate and output options of nms_options).
struct fast_nms_options {
  /// Candidates: only scores > score_threshold (compared in double). Unset: every box.
  std::optional<double> score_threshold{};
  /// Only the top_k highest scored candidates enter the matrix (YOLACT: 200). Unset: all.
  std::optional<index_t> top_k{};
  /// At most this many results (the highest scored survivors). Unset: no limit.
  std::optional<index_t> max_output{};
  /// Suppress when IoU >= iou_threshold instead of IoU > iou_threshold.
  bool inclusive = false;
  /// Column order of the boxes.
  box_format format = box_format::xyxy;
  /// Threads over the rows of the matrix, 0 = max_threads(). Results do not depend on it.
  int threads = 0;
};

/// Criterion cluster_nms clusters by.
enum class cluster_criterion {
  iou,   ///< IoU (torchvision's arithmetic): Cluster-NMS, equal to greedy nms
  diou,  ///< IoU - (ρ²/(c² + 1e-7))^diou_beta: Cluster-DIoU-NMS (Zzh-tju/CIoU `diou`)
};

/// Score penalty of cluster_nms (Zzh-tju/CIoU "SPM").
enum class cluster_penalty {
  none,            ///< hard: a box is kept or suppressed
  score,           ///< score · Π exp(-B²/σ) over the kept boxes before it (Cluster-SPM-NMS)
  score_distance,  ///< score · Π min(exp(-B²/σ) + D^β·[B > 0], 1) (Cluster-SPM-dist-NMS)
};

/// Options of cluster_nms. The defaults give greedy nms (cvk::nms) exactly.
struct cluster_nms_options {
  /// Candidates: only scores > score_threshold (compared in double). Unset: every box.
  std::optional<double> score_threshold{};
  /// Only the top_k highest scored candidates enter the matrix (the CIoU repository uses 200).
  std::optional<index_t> top_k{};
  /// At most this many results (the highest returned scores).
  std::optional<index_t> max_output{};
  /// Suppress when B >= iou_threshold instead of B > iou_threshold.
  bool inclusive = false;
  /// Column order of the boxes (merged boxes are returned in it too).
  box_format format = box_format::xyxy;
  /// The pair criterion B is built from.
  cluster_criterion criterion = cluster_criterion::iou;
  /// Exponent of the distance term of the DIoU criterion: 0.9 in the CIoU repository
  /// (`box_utils.diou`), 1 in the DIoU paper. Must be >= 0.
  double diou_beta = 0.9;
  /// Score penalty instead of hard suppression (needs criterion iou).
  cluster_penalty penalty = cluster_penalty::none;
  /// σ of the penalty: exp(-B²/σ), 0.2 in the repository. Must be > 0.
  double penalty_sigma = 0.2;
  /// With a penalty: keep the boxes whose penalized score is > this (0.01 in the repository).
  double penalty_min_score = 0.01;
  /// Exponent of the distance of score_distance: D = (ρ²/(c² + 1e-7))^distance_beta (0.6 in
  /// the repository's `distance`). Must be >= 0.
  double distance_beta = 0.6;
  /// Weighted Cluster-NMS: each kept box becomes the average of itself and the boxes it
  /// suppresses with B > merge_threshold, weighted by B times their score.
  bool weighted = false;
  /// B above which a box is merged into the kept box (0.8 in the repository). Must be >= 0.
  double merge_threshold = 0.8;
};

/// Result of cluster_nms: indices, scores and the boxes (K×4, in options.format): the input's
/// boxes, or the merged ones when options.weighted.
template <class R>
struct cluster_nms_result {
  tensor<index_t, 1> indices;
  tensor<R, 1> scores;
  tensor<R, 2> boxes;
};

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
    position_.emplace(scratch_slot_id::nms_kept_boxes, slots);
    R* const x1 = column(0);
    R* const y1 = column(1);
    R* const x2 = column(2);
    R* const y2 = column(3);
    R* const area = column(4);
    index_t* const position = position_->get();
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
  [[nodiscard]] R* column(std::size_t q) const noexcept { return columns_->get() + q * stride_; }
  /// The stored candidates of cell c before position k (positions increase along a cell).
  [[nodiscard]] block earlier_in(std::size_t c, std::size_t k) const noexcept {
    const std::size_t first = grid_.cell_start()[c];
    const index_t* const position = position_->get();
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

/// Decay factors of candidates in processing order (Paddle's NMSMatrix without the thresholds).
template <class R>
void matrix_decays(const box_columns<R>& c, const matrix_nms_options& options, int threads,
                   R* decay, R* iou_max) {
  const std::size_t n = c.size();
  std::fill(decay, decay + n, R(1));
  if (n == 0) return;
  const R norm = options.normalized ? R(0) : R(1);
  const auto sigma = static_cast<R>(options.gaussian_sigma);
  const bool gaussian = options.decay == matrix_nms_decay::gaussian;
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
  parallel_for(
      0, rows, grain,
      [&](index_t lo, index_t hi) {
        for (auto i = static_cast<std::size_t>(lo); i < static_cast<std::size_t>(hi); ++i) {
          matrix_row_result<R> r;
          const auto a = row_box(i);
          if (grid.large(i)) {
            // a NaN or flat box: iou_max 0
          } else {
            matrix_lanes<R> acc;
            grid.scan_earlier(i, c, [&](const typename neighbour_grid<R>::block& b) {
              matrix_block_scan<R, true, false, false>(b.x1, b.y1, b.x2, b.y2, b.area, b.aux,
                                                       b.count, a, norm, sigma, acc);
              return false;
            });
            r = matrix_lanes_result(acc);
          }
          iou_max[i] = r.iou_max;
        }
      },
      team);
  grid.set_aux(iou_max);
  const auto decay_rows = [&]<bool Gaussian>(std::integral_constant<bool, Gaussian>) {
    parallel_for(
        0, rows, grain,
        [&](index_t lo, index_t hi) {
          for (auto i = static_cast<std::size_t>(lo); i < static_cast<std::size_t>(hi); ++i) {
            matrix_row_result<R> r;
            const auto a = row_box(i);
            if (grid.large(i)) {
              // a NaN or flat box: decay 1
            } else {
              matrix_lanes<R> acc;
              grid.scan_earlier(i, c, [&](const typename neighbour_grid<R>::block& b) {
                matrix_block_scan<R, false, true, Gaussian>(b.x1, b.y1, b.x2, b.y2, b.area, b.aux,
                                                            b.count, a, norm, sigma, acc);
                return false;
              });
              r = matrix_lanes_result(acc);
            }
            decay[i] = matrix_decay<R, Gaussian>(r);
          }
        },
        team);
  };
  if (gaussian) {
    decay_rows(std::true_type{});
  } else {
    decay_rows(std::false_type{});
  }
}

}  // namespace detail
CVK_KERNEL_END

namespace detail {

/// "fn: name must be a number, got nan" unless value is a number.
inline void expect_number(double value, const char* fn, const char* name) {
  if (std::isnan(value)) {
    CVK_THROW(invalid_argument, std::string(fn) + ": " + name + " must be a number, got nan");
  }
}

inline void expect_optional_number(const std::optional<double>& value, const char* fn,
                                   const char* name) {
  if (value) expect_number(*value, fn, name);
}

inline void expect_non_negative(const std::optional<index_t>& value, const char* fn,
                                const char* name) {
  if (value && *value < 0) {
    CVK_THROW(invalid_argument,
              std::string(fn) + ": " + name + " must be >= 0, got " + std::to_string(*value));
  }
}

/// A number for a message: "0.5", "-1", "nan", "inf".
inline std::string number_text(double value) {
  std::array<char, 32> text{};
  std::snprintf(text.data(), text.size(), "%g", value);
  return text.data();
}

/// Throws unless `value` is a number >= lo (or > lo when `strict`), finite when `finite`:
/// "fn: name must be a finite number > 0, got -1".
inline void expect_at_least(double value, double lo, bool strict, bool finite, const char* fn,
                            const char* name) {
  const bool ok = strict ? value > lo : value >= lo;
  if (!ok || (finite && !std::isfinite(value))) {
    CVK_THROW(invalid_argument, std::string(fn) + ": " + name + " must be a " +
                                    (finite ? "finite " : "") + "number " + (strict ? ">" : ">=") +
                                    " " + number_text(lo) + ", got " + number_text(value));
  }
}

template <class BoxView, class ScoreView>
index_t check_boxes_and_scores(const BoxView& boxes, const ScoreView& scores, const char* fn) {
  expect_shape(boxes, {any_extent, 4}, fn, "boxes", "N×4");
  const index_t n = boxes.extent(0);
  // every ranking allocates N indices first (nms_order)
  check_allocation_size(n, sizeof(index_t), fn, "boxes", boxes);
  if (scores.extent(0) != n) {
    CVK_THROW(shape_error, std::string(fn) + ": scores must have " + std::to_string(n) +
                               " elements (one per box), got " + std::to_string(scores.extent(0)));
  }
  return n;
}

inline void check_matrix_options(const matrix_nms_options& o, const char* fn) {
  check_format(o.format, fn, "options.format");
  expect_optional_number(o.score_threshold, fn, "score_threshold");
  expect_optional_number(o.post_threshold, fn, "post_threshold");
  expect_non_negative(o.nms_top_k, fn, "nms_top_k");
  expect_non_negative(o.keep_top_k, fn, "keep_top_k");
  if (o.decay == matrix_nms_decay::gaussian) {
    expect_at_least(o.gaussian_sigma, 0.0, true, true, fn, "gaussian_sigma");
  }
}

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

/// Orders `entries` (rank, score) by score descending, NaN last, equal scores by rank: stable
/// radix sorts (by rank when the entries are not in rank order yet, then by score).
template <class R>
void sort_by_score(std::vector<std::pair<std::size_t, R>>& entries, bool in_rank_order) {
  const std::size_t n = entries.size();
  std::vector<std::pair<std::size_t, R>> sorted;
  sorted.reserve(n);
  if (!in_rank_order) {
    const std::vector<index_t> by_rank = radix_order<std::uint64_t>(
        n, [&](std::size_t k) { return static_cast<std::uint64_t>(entries[k].first); });
    for (const index_t k : by_rank) sorted.push_back(entries[static_cast<std::size_t>(k)]);
    entries.swap(sorted);
    sorted.clear();
  }
  std::vector<std::size_t> numbers;  // positions of the non-NaN scores
  numbers.reserve(n);
  for (std::size_t k = 0; k < n; ++k) {
    if (!std::isnan(entries[k].second)) numbers.push_back(k);
  }
  const std::vector<index_t> by_score = radix_order<radix_key_t<R>>(
      numbers.size(), [&](std::size_t k) { return radix_key(entries[numbers[k]].second); });
  for (const index_t k : by_score) {
    sorted.push_back(entries[numbers[static_cast<std::size_t>(k)]]);
  }
  for (std::size_t k = 0; k < n; ++k) {
    if (std::isnan(entries[k].second)) sorted.push_back(entries[k]);
  }
  entries.swap(sorted);
}

/// Matrix NMS of one class: (rank, decayed score) of the survivors, in processing order.
template <class R, class BoxView, class ScoreView>
void matrix_nms_class(const BoxView& boxes, const ScoreView& scores,
                      const std::vector<index_t>& order, const matrix_nms_options& options,
                      int threads, std::vector<std::pair<std::size_t, R>>& kept,
                      const std::vector<std::size_t>& ranks) {
  // The candidates' columns, their decays and iou_max (extra columns 0 and 1), grid members.
  const box_columns<R> columns(scratch_slot_id::nms_candidates, order.size(), 2);
  gather_paddle_boxes<R>(boxes, order, options.format, options.normalized, columns);
  R* const decay = columns.column(0);
  matrix_decays(columns, options, threads, decay, columns.column(1));
  for (std::size_t k = 0; k < order.size(); ++k) {
    const R decayed = decay[k] * static_cast<R>(scores(order[k]));
    if (options.post_threshold && !(static_cast<double>(decayed) > *options.post_threshold)) {
      continue;
    }
    kept.emplace_back(ranks.empty() ? k : ranks[k], decayed);
  }
}

template <class R>
scored_indices<R> to_scored_indices(const std::vector<std::pair<std::size_t, R>>& entries,
                                    const std::vector<index_t>& order) {
  scored_indices<R> result{tensor<index_t, 1>(static_cast<index_t>(entries.size())),
                           tensor<R, 1>(static_cast<index_t>(entries.size()))};
  for (std::size_t k = 0; k < entries.size(); ++k) {
    result.indices(static_cast<index_t>(k)) = order[entries[k].first];
    result.scores(static_cast<index_t>(k)) = entries[k].second;
  }
  return result;
}

}  // namespace detail

/// Matrix NMS (PaddlePaddle matrix_nms for one class, SOLOv2): soft suppression computed
/// from the IoU matrix in one step. Returns the surviving boxes and their decayed scores,
/// highest decayed score first.
///
///   boxes   N×4 in options.format (xyxy by default), any arithmetic type, any strides
///   scores  N, any arithmetic type, any strides
///   result  indices (K <= N, into boxes) and scores (K decayed scores), type R = the common
///           floating type of boxes and scores (double for integers)
///
/// 1. Candidates: scores > score_threshold (if set), ordered by score descending (equal scores:
///    lower index first; NaN scores last), the first nms_top_k (if set).
/// 2. IoU(i, j) for each candidate i and each higher-ranked j < i as Paddle's JaccardOverlap
///    (0 for boxes apart, + 1 on widths when normalized is false, inverted boxes have area 0).
/// 3. iou_max(j) = max(0, IoU(j, k) over k < j): how much j itself is overlapped.
/// 4. decay(i) = min(1, f(IoU(i, j), iou_max(j)) over j < i), f = (1 - iou)/(1 - iou_max)
///    (linear) or exp((iou_max² - iou²) · gaussian_sigma) (gaussian); decayed = decay · score.
/// 5. Survivors: decayed > post_threshold (if set); sorted by decayed score descending (equal:
///    processing order; NaN last); the first keep_top_k (if set).
/// Paddle's arithmetic is reproduced in R (the linear decay in double, as Paddle's `1.`
/// literal makes it); Paddle orders equal scores unstably (partial_sort), cvk by index.
///
/// Throws cvk::shape_error when boxes is not N×4 or scores has not N elements, and
/// cvk::invalid_argument when a threshold is NaN, nms_top_k or keep_top_k is negative, or the
/// gaussian sigma is not a finite number > 0. O(N log N) to sort, then O(N²) pair evaluations
/// at worst (no N² memory); on spread-out scenes only pairs of boxes sharing a grid cell are
/// evaluated: O(N · neighbours). Rows run on options.threads threads.
template <tensor_of_rank<2> Boxes, tensor_of_rank<1> Scores>
[[nodiscard]] auto matrix_nms(const Boxes& boxes, const Scores& scores,
                              const matrix_nms_options& options = {}) {
  constexpr const char* fn = "matrix_nms";
  const auto b = detail::checked_view<2>(boxes, fn, "boxes");
  const auto s = detail::checked_view<1>(scores, fn, "scores");
  detail::check_boxes_and_scores(b, s, fn);
  detail::check_matrix_options(options, fn);
  using R =
      detail::matrix_real_t<typename decltype(b)::value_type, typename decltype(s)::value_type>;
  nms_options ranking;
  ranking.score_threshold = options.score_threshold;
  ranking.top_k = options.nms_top_k;
  const std::vector<index_t> order = detail::nms_order(s, ranking);
  std::vector<std::pair<std::size_t, R>> kept;
  detail::matrix_nms_class<R>(b, s, order, options, options.threads, kept, {});
  detail::sort_by_score(kept, true);
  if (options.keep_top_k && kept.size() > static_cast<std::size_t>(*options.keep_top_k)) {
    kept.resize(static_cast<std::size_t>(*options.keep_top_k));
  }
  return detail::to_scored_indices(kept, order);
}

/// Class-aware matrix NMS: matrix_nms run separately on the boxes of each class (boxes of
/// different classes never decay each other), results merged by decayed score.
///
///   boxes    N×4 in options.format, any arithmetic type, any strides
///   scores   N, any arithmetic type, any strides
///   classes  N, any integer type, any strides (one class id per box, any values)
///   result   indices into boxes and decayed scores, highest decayed score first (equal: score
///            descending, then lower index)
///
/// The torchvision batched_nms layout (one score and class per box). Paddle's layout — boxes
/// N×4 and scores C×N, every box scored in every class — is this with each box repeated once per
/// class (class c's copy scored scores[c][i]; index k of the result is box k mod N).
/// options.nms_top_k caps the candidates of each class (as Paddle), options.keep_top_k the
/// merged result; boxes of class options.background_label are dropped. Classes run on
/// options.threads threads. Throws as matrix_nms, and cvk::shape_error when classes has not N
/// elements. O(N log N) plus the per-class cost of matrix_nms.
template <tensor_of_rank<2> Boxes, tensor_of_rank<1> Scores, tensor_of_rank<1> Classes>
[[nodiscard]] auto batched_matrix_nms(const Boxes& boxes, const Scores& scores,
                                      const Classes& classes,
                                      const matrix_nms_options& options = {}) {
  constexpr const char* fn = "batched_matrix_nms";
  const auto b = detail::checked_view<2>(boxes, fn, "boxes");
  const auto s = detail::checked_view<1>(scores, fn, "scores");
  const auto c = detail::checked_view<1>(classes, fn, "classes");
  using C = typename decltype(c)::value_type;
  static_assert(detail::has_radix_key<C> && std::is_integral_v<C>,
                "cvk: batched_matrix_nms classes must be an integer tensor (class ids)");
  const index_t n = detail::check_boxes_and_scores(b, s, fn);
  if (c.extent(0) != n) {
    CVK_THROW(shape_error, std::string(fn) + ": classes must have " + std::to_string(n) +
                               " elements (one per box), got " + std::to_string(c.extent(0)));
  }
  detail::check_matrix_options(options, fn);
  using R =
      detail::matrix_real_t<typename decltype(b)::value_type, typename decltype(s)::value_type>;
  nms_options ranking;
  ranking.score_threshold = options.score_threshold;
  std::vector<index_t> order = detail::nms_order(s, ranking);
  if (options.background_label) {
    const std::int64_t background = *options.background_label;
    std::erase_if(order, [&](index_t i) { return std::cmp_equal(c(i), background); });
  }
  const std::size_t count = order.size();

  // Group the ranks by class, each group in processing order (a stable radix sort by class).
  const std::vector<index_t> by_class = detail::radix_order<detail::radix_key_t<C>>(
      count, [&](std::size_t r) { return detail::radix_key(c(order[r])); });
  std::vector<std::size_t> group_start{0};
  for (std::size_t k = 1; k < count; ++k) {
    if (c(order[static_cast<std::size_t>(by_class[k])]) !=
        c(order[static_cast<std::size_t>(by_class[k - 1])])) {
      group_start.push_back(k);
    }
  }
  group_start.push_back(count);
  const auto groups = static_cast<index_t>(count == 0 ? 0 : group_start.size() - 1);
  std::vector<std::vector<std::pair<std::size_t, R>>> kept_by_group(
      static_cast<std::size_t>(groups));
  parallel_for(
      0, groups, 1,
      [&](index_t lo, index_t hi) {
        for (index_t g = lo; g < hi; ++g) {
          const std::size_t first = group_start[static_cast<std::size_t>(g)];
          std::size_t last = group_start[static_cast<std::size_t>(g) + 1];
          if (options.nms_top_k) {
            last = std::min(last, first + static_cast<std::size_t>(*options.nms_top_k));
          }
          std::vector<index_t> group_order;
          std::vector<std::size_t> ranks;
          for (std::size_t k = first; k < last; ++k) {
            const auto rank = static_cast<std::size_t>(by_class[k]);
            ranks.push_back(rank);
            group_order.push_back(order[rank]);
          }
          detail::matrix_nms_class<R>(b, s, group_order, options, groups == 1 ? options.threads : 1,
                                      kept_by_group[static_cast<std::size_t>(g)], ranks);
        }
      },
      groups > 1 && count >= 2048 ? options.threads : 1);
  std::vector<std::pair<std::size_t, R>> kept;
  for (const auto& group : kept_by_group) kept.insert(kept.end(), group.begin(), group.end());
  detail::sort_by_score(kept, false);
  if (options.keep_top_k && kept.size() > static_cast<std::size_t>(*options.keep_top_k)) {
    kept.resize(static_cast<std::size_t>(*options.keep_top_k));
  }
  return detail::to_scored_indices(kept, order);
}

// ---------------------------------------------------------------------------------------------
// fast_nms and cluster_nms

CVK_KERNEL_BEGIN
namespace detail {

/// NMS candidates (torchvision's corners and unclamped area) of the boxes listed in `order`.
template <class R, class BoxView>
std::vector<nms_box<R>> gather_candidates(const BoxView& boxes, const std::vector<index_t>& order,
                                          box_format format) {
  std::vector<nms_box<R>> result(order.size());
  for (std::size_t k = 0; k < order.size(); ++k) {
    const auto b = to_xyxy(load_box<R>(boxes, order[k]), format, box_convention{});
    result[k] = make_nms_box(b[0], b[1], b[2], b[3]);
  }
  return result;
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

/// Fast NMS (YOLACT, Bolya et al. 2019): the IoU matrix of the score-ordered candidates, upper
/// triangle; a box is dropped when any higher-scored box — kept or not — overlaps it by more
/// than the threshold. Drops a superset of greedy nms's drops (a suppressed box still
/// suppresses); the indices of the kept boxes, highest score first.
///
///   boxes   N×4 in options.format (xyxy by default), any arithmetic type, any strides
///   scores  N, any arithmetic type, any strides
///   result  K indices into boxes, in decreasing score (equal scores: lower index first)
///
/// 1. Candidates as nms: scores > options.score_threshold (if set), score descending (equal
///    scores: lower index first; NaN last), the first options.top_k (YOLACT: 200).
/// 2. Candidate j is kept iff no candidate i before it has IoU(i, j) > iou_threshold (>= with
///    options.inclusive) — YOLACT's `iou.triu_(1).max(0) <= threshold`. IoU with torchvision's
///    arithmetic, as nms: a pair with a zero union (IoU NaN) never suppresses (YOLACT's
///    torch.max would propagate the NaN and drop the box); the first candidate is always kept
///    (YOLACT drops it for a threshold < 0).
/// 3. The first options.max_output survivors.
///
/// Throws as nms: cvk::shape_error for boxes not N×4 or scores not N, cvk::invalid_argument for
/// a NaN threshold or a negative top_k / max_output. O(N log N) to sort, then O(N²) pair tests
/// at worst; for a threshold >= 0 only boxes sharing a grid cell are tested (O(N · neighbours) on
/// spread-out scenes). Rows run on options.threads threads; no N² memory.
template <tensor_of_rank<2> Boxes, tensor_of_rank<1> Scores>
[[nodiscard]] tensor<index_t, 1> fast_nms(const Boxes& boxes, const Scores& scores,
                                          double iou_threshold,
                                          const fast_nms_options& options = {}) {
  constexpr const char* fn = "fast_nms";
  const auto b = detail::checked_view<2>(boxes, fn, "boxes");
  const auto s = detail::checked_view<1>(scores, fn, "scores");
  detail::check_boxes_and_scores(b, s, fn);
  detail::check_format(options.format, fn, "options.format");
  detail::expect_number(iou_threshold, fn, "iou_threshold");
  detail::expect_optional_number(options.score_threshold, fn, "score_threshold");
  detail::expect_non_negative(options.top_k, fn, "top_k");
  detail::expect_non_negative(options.max_output, fn, "max_output");
  using R = real_t<typename decltype(b)::value_type>;
  nms_options ranking;
  ranking.score_threshold = options.score_threshold;
  ranking.top_k = options.top_k;
  const std::vector<index_t> order = detail::nms_order(s, ranking);
  const std::vector<detail::nms_box<R>> candidates =
      detail::gather_candidates<R>(b, order, options.format);
  const auto threshold = detail::nms_threshold<R>::from(iou_threshold, options.inclusive);
  const std::size_t max_keep =
      options.max_output ? std::min(static_cast<std::size_t>(*options.max_output), order.size())
                         : order.size();
  const std::span<const detail::nms_box<R>> span(candidates);
  std::vector<index_t> kept =
      options.inclusive
          ? detail::fast_nms_kept<R, true>(span, threshold, max_keep, options.threads)
          : detail::fast_nms_kept<R, false>(span, threshold, max_keep, options.threads);
  for (index_t& k : kept) k = order[static_cast<std::size_t>(k)];
  return detail::to_index_tensor(kept);
}

namespace detail {

inline void check_cluster_options(double iou_threshold, const cluster_nms_options& o,
                                  const char* fn) {
  check_format(o.format, fn, "options.format");
  expect_number(iou_threshold, fn, "iou_threshold");
  expect_optional_number(o.score_threshold, fn, "score_threshold");
  expect_non_negative(o.top_k, fn, "top_k");
  expect_non_negative(o.max_output, fn, "max_output");
  if (o.criterion == cluster_criterion::diou) {
    expect_at_least(o.diou_beta, 0.0, false, true, fn, "diou_beta");
  }
  if (o.penalty != cluster_penalty::none) {
    if (o.criterion != cluster_criterion::iou) {
      CVK_THROW(invalid_argument, std::string(fn) +
                                      ": a score penalty needs criterion iou (the DIoU "
                                      "criterion is negative for boxes apart), got diou");
    }
    expect_at_least(o.penalty_sigma, 0.0, true, true, fn, "penalty_sigma");
    expect_number(o.penalty_min_score, fn, "penalty_min_score");
    if (o.penalty == cluster_penalty::score_distance) {
      expect_at_least(o.distance_beta, 0.0, false, true, fn, "distance_beta");
    }
  }
  if (o.weighted) expect_at_least(o.merge_threshold, 0.0, false, false, fn, "merge_threshold");
}

}  // namespace detail

/// Cluster-NMS (Zheng et al. 2021, Zzh-tju/CIoU `layers/functions/detection.py`): the IoU
/// matrix of the score-ordered candidates, upper triangle, iterated B = IoU ⊙ [rows whose
/// column max over B is <= threshold] until it stops changing. Its fixed point keeps exactly
/// what greedy nms keeps; the variants use B to decay scores or to merge boxes.
///
///   boxes   N×4 in options.format (xyxy by default), any arithmetic type, any strides
///   scores  N, any arithmetic type, any strides
///   result  indices (K, into boxes), scores (K) and boxes (K×4, options.format) in R, the
///           common floating type of boxes and scores (double for integers)
///
/// 1. Candidates as nms: scores > score_threshold (if set), score descending (equal scores:
///    lower index first; NaN last), the first top_k (the repository: 200).
/// 2. Keep set K: candidate j is kept iff no kept candidate before it has B(i, j) >
///    iou_threshold (>= with inclusive), B = IoU (torchvision's arithmetic; with the default
///    options the indices equal cvk::nms) or, with criterion diou, IoU - (ρ²/(c² + 1e-7))^diou_beta
///    (the repository's `diou`). This is the iteration's fixed point, computed directly (the
///    repository stops after 200 iterations, which matters only for suppression chains longer
///    than 200). Final B(i, j) = criterion for i in K, 0 for other rows.
/// 3. Returned scores: the input's; with penalty score: score_j · Π_{i in K, i < j}
///    exp(-B(i, j)²/penalty_sigma); with score_distance the factor is min(exp(-B²/σ) + D, 1) for
///    B > 0, D = (ρ²/(c² + 1e-7))^distance_beta. With a penalty the result is every candidate
///    whose penalized score is > penalty_min_score (not only K).
/// 4. weighted: each returned box i in K becomes Σ_j w_ij·box_j / Σ_j w_ij with w_ii = s_i and
///    w_ij = B(i, j)·s_j for j > i with B(i, j) > merge_threshold (s: the returned scores; the
///    repository's cross-class `cc_cluster_SPM_dist_weighted_nms`); other returned boxes are
///    box_i·s_i / s_i. Coordinates are averaged in options.format. When Σ_j w_ij is 0 or not
///    finite (zero, infinite or NaN scores), or the average is not finite, the row's own box is
///    returned unmerged (never 0/0 or inf/inf).
/// 5. Sorted by returned score descending (equal: processing order; NaN last); the first
///    max_output.
/// Pairs of boxes that do not overlap with positive area have B = 0 (IoU criterion) and take no
/// part in penalties or merges (the repository's 0/0 IoU for two zero-area boxes is NaN; cvk
/// treats it as 0, as nms does).
///
/// Throws cvk::shape_error when boxes is not N×4 or scores has not N elements;
/// cvk::invalid_argument when iou_threshold or score_threshold is NaN, top_k or max_output is
/// negative, diou_beta or distance_beta is not a finite number >= 0, penalty_sigma is not a
/// finite number > 0, penalty_min_score is NaN, merge_threshold is not a number >= 0, or a
/// penalty is asked with criterion diou. O(N log N) to sort; the keep set costs as nms
/// (IoU criterion) or O(N · K) pair tests (DIoU, threshold < 0); penalties and merges visit the
/// overlapping (kept, candidate) pairs once each (grid), O(N²) at worst.
template <tensor_of_rank<2> Boxes, tensor_of_rank<1> Scores>
[[nodiscard]] auto cluster_nms(const Boxes& boxes, const Scores& scores, double iou_threshold,
                               const cluster_nms_options& options = {}) {
  constexpr const char* fn = "cluster_nms";
  const auto b = detail::checked_view<2>(boxes, fn, "boxes");
  const auto s = detail::checked_view<1>(scores, fn, "scores");
  detail::check_boxes_and_scores(b, s, fn);
  detail::check_cluster_options(iou_threshold, options, fn);
  using R =
      detail::matrix_real_t<typename decltype(b)::value_type, typename decltype(s)::value_type>;
  nms_options ranking;
  ranking.score_threshold = options.score_threshold;
  ranking.top_k = options.top_k;
  const std::vector<index_t> order = detail::nms_order(s, ranking);
  const std::vector<detail::nms_box<R>> candidates =
      detail::gather_candidates<R>(b, order, options.format);
  const std::span<const detail::nms_box<R>> boxes_span(candidates);
  const std::size_t n = candidates.size();
  const auto threshold = detail::nms_threshold<R>::from(iou_threshold, options.inclusive);
  const bool penalized = options.penalty != cluster_penalty::none;
  const std::size_t max_output =
      options.max_output ? std::min(static_cast<std::size_t>(*options.max_output), n) : n;

  // 1. The keep set (the fixed point's rows).
  std::vector<index_t> kept;
  std::vector<unsigned char> kept_flag(n, 0);
  const std::size_t max_keep = penalized ? n : max_output;
  if (options.criterion == cluster_criterion::iou) {
    detail::greedy_nms<R>(boxes_span, threshold, max_keep, kept);
    for (const index_t k : kept) kept_flag[static_cast<std::size_t>(k)] = 1;
  } else {
    detail::diou_greedy<R>(boxes_span, threshold, static_cast<R>(options.diou_beta), max_keep, kept,
                           kept_flag);
  }

  // 2. The non-zero entries of the final B (rows in K; columns that overlap them with positive
  // area), each once, grouped by column in increasing order, rows increasing within a column.
  std::vector<detail::cluster_entry<R>> entries;
  if (penalized || options.weighted) {
    const auto beta = static_cast<R>(options.diou_beta);
    const bool diou = options.criterion == cluster_criterion::diou;
    detail::for_each_kept_overlap<R>(boxes_span, kept_flag, [&](std::size_t i, std::size_t j) {
      const R iou = detail::torchvision_iou(candidates[i], candidates[j]);
      if (!(iou > R(0))) return;
      if (!diou) {
        entries.push_back({i, j, iou});
      } else if (static_cast<double>(iou) > options.merge_threshold) {  // DIoU <= IoU
        entries.push_back(
            {i, j,
             iou - std::pow(detail::cluster_centre_distance(candidates[i], candidates[j]), beta)});
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
  }

  // 3. The returned scores, and the rows returned.
  std::vector<R> score(n);
  for (std::size_t k = 0; k < n; ++k) score[k] = static_cast<R>(s(order[k]));
  std::vector<std::pair<std::size_t, R>> rows;
  if (penalized) {
    // Per column, the product of the factors of its entries in row order.
    const auto sigma = static_cast<R>(options.penalty_sigma);
    const auto beta = static_cast<R>(options.distance_beta);
    const bool with_distance = options.penalty == cluster_penalty::score_distance;
    std::vector<R> product(n, R(1));
    for (const auto& e : entries) {
      const R bb = e.value * e.value;
      R factor = std::exp(-(bb / sigma));
      if (with_distance) {
        const R d =
            std::pow(detail::cluster_centre_distance(candidates[e.i], candidates[e.j]), beta);
        const R raised = factor + d;
        factor = raised < R(1) ? raised : R(1);
      }
      product[e.j] *= factor;
    }
    for (std::size_t k = 0; k < n; ++k) {
      score[k] = product[k] * score[k];
      if (static_cast<double>(score[k]) > options.penalty_min_score) rows.emplace_back(k, score[k]);
    }
    detail::sort_by_score(rows, true);
  } else {
    for (const index_t k : kept) {
      rows.emplace_back(static_cast<std::size_t>(k), score[static_cast<std::size_t>(k)]);
    }
  }
  if (rows.size() > max_output) rows.resize(max_output);

  // 4. Boxes: the input's, or merged.
  const auto count = static_cast<index_t>(rows.size());
  cluster_nms_result<R> result{tensor<index_t, 1>(count), tensor<R, 1>(count),
                               tensor<R, 2>(count, index_t{4})};
  std::vector<std::array<R, 4>> merged;
  if (options.weighted) {
    // Σ w·box and Σ w per returned row: the diagonal first, then its columns in order (the
    // entries are in column order: a stable pass per row keeps it).
    std::vector<std::size_t> row_of(n, n);  // position in rows, n when not returned
    for (std::size_t k = 0; k < rows.size(); ++k) row_of[rows[k].first] = k;
    merged.resize(rows.size());
    std::vector<R> weight_sum(rows.size());
    for (std::size_t k = 0; k < rows.size(); ++k) {
      const std::size_t i = rows[k].first;
      const auto box = detail::load_box<R>(b, order[i]);
      for (std::size_t q = 0; q < 4; ++q) merged[k][q] = box[q] * score[i];
      weight_sum[k] = score[i];
    }
    std::vector<std::size_t> start(rows.size() + 1, 0);
    const auto merges = [&](const detail::cluster_entry<R>& e) {
      return row_of[e.i] != n && static_cast<double>(e.value) > options.merge_threshold;
    };
    for (const auto& e : entries) {
      if (merges(e)) ++start[row_of[e.i] + 1];
    }
    for (std::size_t k = 0; k < rows.size(); ++k) start[k + 1] += start[k];
    std::vector<const detail::cluster_entry<R>*> by_row(start.back());
    for (const auto& e : entries) {
      if (merges(e)) by_row[start[row_of[e.i]]++] = &e;
    }
    for (const detail::cluster_entry<R>* e : by_row) {
      const std::size_t k = row_of[e->i];
      const R weight = e->value * score[e->j];
      const auto box = detail::load_box<R>(b, order[e->j]);
      for (std::size_t q = 0; q < 4; ++q) merged[k][q] += box[q] * weight;
      weight_sum[k] += weight;
    }
    for (std::size_t k = 0; k < rows.size(); ++k) {
      // A weight sum of 0 (zero scores) or one that is not finite (an infinite or NaN score)
      // has no average (0/0, inf/inf would make the box NaN), nor has an average that is not
      // finite: the row keeps its own box, unmerged.
      const R sum = weight_sum[k];
      bool usable = sum != R(0) && std::isfinite(sum);
      std::array<R, 4> mean{};
      for (std::size_t q = 0; q < 4 && usable; ++q) {
        mean[q] = merged[k][q] / sum;
        usable = std::isfinite(mean[q]);
      }
      merged[k] = usable ? mean : detail::load_box<R>(b, order[rows[k].first]);
    }
  }
  for (index_t k = 0; k < count; ++k) {
    const auto& row = rows[static_cast<std::size_t>(k)];
    result.indices(k) = order[row.first];
    result.scores(k) = row.second;
    const auto box = options.weighted ? merged[static_cast<std::size_t>(k)]
                                      : detail::load_box<R>(b, order[row.first]);
    for (index_t q = 0; q < 4; ++q) result.boxes(k, q) = box[static_cast<std::size_t>(q)];
  }
  return result;
}

CVK_END_NAMESPACE
