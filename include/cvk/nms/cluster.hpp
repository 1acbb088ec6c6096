// cvk — computer-vision kernels, header-only C++20.
// Cluster-NMS (Zheng et al. 2021, Zzh-tju/CIoU): the fixed point of an iterated IoU matrix,
// which keeps what greedy nms keeps, with its score-penalty, distance, weighted and DIoU
// variants (nms/detail/cluster.hpp).
// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "../box/format.hpp"
#include "../core/as_view.hpp"
#include "../core/config.hpp"
#include "../core/errors.hpp"
#include "../core/tensor.hpp"
#include "../detail/checks.hpp"
#include "detail/candidates.hpp"
#include "detail/cluster.hpp"
#include "detail/greedy.hpp"
#include "detail/output.hpp"
#include "result.hpp"

CVK_BEGIN_NAMESPACE

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
using cluster_nms_result = scored_boxes<R>;

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
  const std::vector<index_t> order =
      detail::nms_order(s, detail::candidate_filter{options.score_threshold, options.top_k});
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
  const std::vector<detail::cluster_entry<R>> entries =
      penalized || options.weighted
          ? detail::cluster_entries<R>(boxes_span, kept_flag,
                                       options.criterion == cluster_criterion::diou,
                                       static_cast<R>(options.diou_beta), options.merge_threshold)
          : std::vector<detail::cluster_entry<R>>{};

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
  cluster_nms_result<R> result{tensor<index_t, 1>(count), tensor<R, 2>(count, index_t{4}),
                               tensor<R, 1>(count)};
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

/// Writes cluster_nms's selected indices and scores into `indices` (cvk::index_t) and `scores` (the
/// value form's score type), each holding at least as many values as are selected (N always
/// suffices); returns the count (the value form also returns the boxes). Errors as cluster_nms, and
/// cvk::shape_error for a buffer too small.
template <tensor_of_rank<2> Boxes, tensor_of_rank<1> Scores, tensor_of_rank<1> Indices,
          tensor_of_rank<1> OutScores>
index_t cluster_nms(const Boxes& boxes, const Scores& scores, double iou_threshold,
                    const cluster_nms_options& options, Indices&& indices, OutScores&& out_scores) {
  auto r = cluster_nms(boxes, scores, iou_threshold, options);
  using S = typename decltype(r.scores)::value_type;
  return detail::write_selection(scored_indices<S>{std::move(r.indices), std::move(r.scores)},
                                 std::forward<Indices>(indices),
                                 std::forward<OutScores>(out_scores), "cluster_nms");
}

CVK_END_NAMESPACE
