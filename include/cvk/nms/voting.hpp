// cvk — computer-vision kernels, header-only C++20.
// Merging variants of NMS that move boxes instead of only keeping them:
//   box_voting  Detectron's bounding-box voting (detectron/utils/boxes.py box_voting, from the
//               Multi-Region CNN paper): each kept box becomes the score-weighted mean of every
//               box with IoU >= threshold, with Detectron's optional re-scoring methods;
//   var_voting  variance voting / Softer-NMS (He et al., "Bounding Box Regression with
//               Uncertainty", CVPR 2019; KL-Loss detectron/utils/py_cpu_nms.py soft): greedy
//               selection with soft-NMS decay, each selected box the mean of its remaining
//               neighbours weighted by an IoU kernel and the inverse predicted variances.
// Both compare a box only with the boxes that can overlap it (a uniform grid), and reproduce the
// plain O(N²) definitions exactly (same decisions, same summation order).
// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
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
#include "detail/box_grid.hpp"
#include "detail/overlap.hpp"
#include "detail/tournament.hpp"
#include "detail/voting.hpp"
#include "result.hpp"

CVK_BEGIN_NAMESPACE

// ---------------------------------------------------------------------------------------------
// box_voting

/// How box_voting re-scores a kept box from the scores w_1..w_m of its m voters (Detectron's
/// TEST.BBOX_VOTE.SCORING_METHOD; beta is SCORING_METHOD_BETA).
enum class box_voting_scoring {
  id,        ///< ID: the kept score, unchanged
  temp_avg,  ///< TEMP_AVG: mean of w^(1/β) / (w^(1/β) + (1-w)^(1/β)), via log/exp as Detectron
  avg,       ///< AVG: mean of w
  iou_avg,   ///< IOU_AVG: Σ IoU·w / Σ IoU
  generalized_avg,  ///< GENERALIZED_AVG: (mean of w^β)^(1/β)
  quasi_sum,        ///< QUASI_SUM: Σ w / m^β
};

/// Name of a scoring method as Detectron spells it, "TEMP_AVG".
[[nodiscard]] constexpr const char* to_string(box_voting_scoring scoring) noexcept {
  switch (scoring) {
    case box_voting_scoring::id:
      return "ID";
    case box_voting_scoring::temp_avg:
      return "TEMP_AVG";
    case box_voting_scoring::avg:
      return "AVG";
    case box_voting_scoring::iou_avg:
      return "IOU_AVG";
    case box_voting_scoring::generalized_avg:
      return "GENERALIZED_AVG";
    case box_voting_scoring::quasi_sum:
      return "QUASI_SUM";
  }
  return "unknown";
}

/// Options of box_voting. The defaults are Detectron's (TEST.BBOX_VOTE), except
/// pixel_inclusive: Detectron's IoU uses the legacy "+1" widths; set it to true to match.
struct box_voting_options {
  /// A box votes for a kept box when IoU >= threshold (VOTE_TH). Compared in the box type with
  /// the threshold rounded to it (numpy compares Detectron's float32 IoUs in float32).
  double threshold = 0.8;
  /// How the kept box's score is recomputed from its voters.
  box_voting_scoring scoring = box_voting_scoring::id;
  /// Parameter of temp_avg (temperature), generalized_avg (exponent) and quasi_sum (exponent).
  double beta = 1.0;
  /// Widths are x2 - x1 + 1 (Detectron, py-faster-rcnn) instead of x2 - x1.
  bool pixel_inclusive = false;
  /// Column order of kept_boxes, all_boxes and the result.
  box_format format = box_format::xyxy;
  /// Threads over the kept boxes, 0 = max_threads(). Results do not depend on it.
  int threads = 0;
};

/// What box_voting returns: the voted boxes (K×4, in options.format) and their scores (K).
template <class R, class S>
struct box_voting_result {
  tensor<R, 2> boxes;
  tensor<S, 1> scores;
};

// ---------------------------------------------------------------------------------------------
// var_voting

/// What the `variances` argument of var_voting holds, per coordinate.
enum class var_voting_input {
  variance,      ///< σ²
  stddev,        ///< σ (what KL-Loss's test code passes to its voting: exp(α/2))
  log_variance,  ///< α = log σ² (what the KL-Loss box head predicts); σ = exp(α/2) as KL-Loss
};

/// How var_voting lowers the scores of the boxes overlapping a selected box (KL-Loss STD.SOFT).
enum class var_voting_decay {
  gaussian,  ///< 'soft' (the default): score *= exp(-IoU² / soft_sigma)
  hard,      ///< 'hard': score = 0 when IoU > iou_threshold (classic NMS), unchanged otherwise
};

/// Options of var_voting. The defaults are KL-Loss's configuration (STD.METHOD 'stdiou',
/// STD.IOU_SIGMA 0.01, STD.SOFT 'soft'), except pixel_inclusive: KL-Loss's IoU uses the legacy
/// "+1" widths; set it to true to match.
struct var_voting_options {
  /// What `variances` holds.
  var_voting_input input = var_voting_input::variance;
  /// σ_t of the IoU kernel p = exp(-(1 - IoU)² / σ_t) (STD.IOU_SIGMA). Must be > 0.
  double sigma_t = 0.01;
  /// The remaining boxes with IoU > vote_threshold vote (KL-Loss's STD_TH, forced to 0.01 for
  /// 'stdiou'). Compared in double. Must be < 1 (the selected box always votes for itself).
  double vote_threshold = 0.01;
  /// Score decay of the remaining boxes that overlap (IoU > 0) the selected one.
  var_voting_decay decay = var_voting_decay::gaussian;
  /// σ of the gaussian decay (hard-coded 0.5 in KL-Loss). Must be > 0.
  double soft_sigma = 0.5;
  /// hard decay only: IoU > iou_threshold sets the score to 0 (KL-Loss uses TEST.NMS; its
  /// configs set 0.5). Compared in double.
  double iou_threshold = 0.5;
  /// A decayed box whose score drops below this (compared in double) is discarded (hard-coded
  /// 0.001 in KL-Loss).
  double score_threshold = 0.001;
  /// Widths are x2 - x1 + 1 (KL-Loss, Detectron) instead of x2 - x1.
  bool pixel_inclusive = false;
  /// Column order of boxes and of the result. `variances` follow the corner order: (y1, x1, y2,
  /// x2) for yxyx, (x1, y1, x2, y2) for every other format.
  box_format format = box_format::xyxy;
};

/// What var_voting returns, in selection order: the index of each selected box, the voted box
/// (K×4, in options.format) and its score when selected (decayed by earlier selections).
template <class R, class S>
using var_voting_result = scored_boxes<R, S>;

/// Bounding-box voting (Detectron's `box_voting(top_dets, all_dets, thresh, scoring_method,
/// beta)`): refines boxes kept by NMS with all the detections they came from.
///
///   kept_boxes   K×4 in options.format, any arithmetic type, any strides (e.g. NMS survivors)
///   kept_scores  K, any arithmetic type, any strides
///   all_boxes    N×4 in options.format, any arithmetic type, any strides (all candidates)
///   all_scores   N, any arithmetic type, any strides (the voting weights)
///   result       .boxes K×4 in options.format, .scores K (real types of the inputs)
///
/// For each kept box k, the voters are the boxes j of all_boxes with IoU(k, j) >= threshold
/// (Detectron's cython bbox_overlaps: 0 unless the intersection has positive sides, "+1" widths
/// with pixel_inclusive). The voted corners are Σ w_j·x_j / Σ w_j with w_j = all_scores(j),
/// summed in index order (in double for float input); the score is recomputed by
/// options.scoring. When nothing votes or the weights sum to 0, the kept box and score are
/// returned unchanged (Detectron raises ZeroDivisionError there); iou_avg with Σ IoU = 0 keeps
/// the kept score. NaN scores or coordinates propagate into the boxes they vote for.
///
/// Throws cvk::shape_error when a box tensor is not ·×4 or a score tensor's length differs from
/// its boxes', and cvk::invalid_argument when threshold or beta is NaN or infinite, or beta is
/// 0 for temp_avg / generalized_avg. O(N log N) to build a grid, then each kept box is compared
/// only with the boxes in its cells (threshold > 0): O(K·m log m) for m boxes near each kept box;
/// O(K·N) for a threshold <= 0 (every box votes).
template <tensor_of_rank<2> KeptBoxes, tensor_of_rank<1> KeptScores, tensor_of_rank<2> AllBoxes,
          tensor_of_rank<1> AllScores>
[[nodiscard]] auto box_voting(const KeptBoxes& kept_boxes, const KeptScores& kept_scores,
                              const AllBoxes& all_boxes, const AllScores& all_scores,
                              const box_voting_options& options = {}) {
  constexpr const char* fn = "box_voting";
  const auto kb = detail::checked_view<2>(kept_boxes, fn, "kept_boxes");
  const auto ks = detail::checked_view<1>(kept_scores, fn, "kept_scores");
  const auto ab = detail::checked_view<2>(all_boxes, fn, "all_boxes");
  const auto as = detail::checked_view<1>(all_scores, fn, "all_scores");
  detail::expect_shape(kb, {detail::any_extent, 4}, fn, "kept_boxes", "K×4");
  detail::expect_shape(ab, {detail::any_extent, 4}, fn, "all_boxes", "N×4");
  const index_t k_count = kb.extent(0);
  const index_t n = ab.extent(0);
  if (ks.extent(0) != k_count) {
    CVK_THROW(shape_error, std::string(fn) + ": kept_scores must have " + std::to_string(k_count) +
                               " elements (one per kept box), got " + std::to_string(ks.extent(0)));
  }
  if (as.extent(0) != n) {
    CVK_THROW(shape_error, std::string(fn) + ": all_scores must have " + std::to_string(n) +
                               " elements (one per box of all_boxes), got " +
                               std::to_string(as.extent(0)));
  }
  detail::check_format(options.format, fn, "options.format");
  detail::check_allocation_size(n, sizeof(detail::voting_box<double>), fn, "all_boxes", ab);
  detail::check_allocation_size(k_count, sizeof(std::array<double, 4>), fn, "kept_boxes", kb);
  if (!std::isfinite(options.threshold)) {
    CVK_THROW(invalid_argument, std::string(fn) + ": threshold must be a finite number, got " +
                                    detail::number_string(options.threshold));
  }
  if (!std::isfinite(options.beta)) {
    CVK_THROW(invalid_argument, std::string(fn) + ": beta must be a finite number, got " +
                                    detail::number_string(options.beta));
  }
  if (options.beta == 0.0 && (options.scoring == box_voting_scoring::temp_avg ||
                              options.scoring == box_voting_scoring::generalized_avg)) {
    CVK_THROW(invalid_argument,
              std::string(fn) + ": beta must not be 0 for scoring " + to_string(options.scoring));
  }
  using R = std::common_type_t<real_t<typename decltype(kb)::value_type>,
                               real_t<typename decltype(ab)::value_type>>;
  using RS = real_t<typename decltype(ks)::value_type>;
  using A = detail::voting_acc_t<std::common_type_t<R, real_t<typename decltype(as)::value_type>>>;
  const box_convention convention{options.pixel_inclusive};
  const R one = options.pixel_inclusive ? R(1) : R(0);

  std::vector<detail::voting_box<R>> kept(static_cast<std::size_t>(k_count));
  std::vector<std::array<R, 4>> kept_rows(static_cast<std::size_t>(k_count));
  std::vector<RS> kept_score_values(static_cast<std::size_t>(k_count));
  for (index_t k = 0; k < k_count; ++k) {
    const auto kk = static_cast<std::size_t>(k);
    kept_rows[kk] = detail::load_box<R>(kb, k);
    kept[kk] =
        detail::make_voting_box(detail::to_xyxy(kept_rows[kk], options.format, convention), one);
    kept_score_values[kk] = static_cast<RS>(ks(k));
  }
  std::vector<detail::voting_box<R>> all(static_cast<std::size_t>(n));
  std::vector<A> all_score_values(static_cast<std::size_t>(n));
  for (index_t j = 0; j < n; ++j) {
    const auto jj = static_cast<std::size_t>(j);
    all[jj] = detail::make_voting_box(
        detail::to_xyxy(detail::load_box<R>(ab, j), options.format, convention), one);
    all_score_values[jj] = static_cast<A>(as(j));
  }
  box_voting_result<R, RS> result{tensor<R, 2>(k_count, index_t{4}), tensor<RS, 1>(k_count)};
  detail::box_voting_kernel<R, RS, A>(kept, kept_rows, kept_score_values, all, all_score_values,
                                      options, result.boxes, result.scores);
  return result;
}

namespace detail {

/// Throws cvk::invalid_argument "var_voting: variances(3, 1) must be a number >= 0 (σ²), got -1"
/// (a number, for log σ²).
[[noreturn]] inline void reject_variance(index_t row, index_t column, double value,
                                         var_voting_input input, const char* fn) {
  const char* rule = input == var_voting_input::variance ? "a number >= 0 (σ²)"
                     : input == var_voting_input::stddev ? "a number >= 0 (σ)"
                                                         : "a number (log σ²)";
  CVK_THROW(invalid_argument, std::string(fn) + ": variances(" + std::to_string(row) + ", " +
                                  std::to_string(column) + ") must be " + rule + ", got " +
                                  detail::number_string(value));
}

}  // namespace detail

/// Variance voting with soft-NMS (Softer-NMS; KL-Loss's `py_cpu_nms.soft` with STD.METHOD
/// 'stdiou'): greedy selection in which each selected box is replaced by the mean of its
/// remaining neighbours weighted by an IoU kernel and their inverse predicted variances.
///
///   boxes      N×4 in options.format, any arithmetic type, any strides
///   scores     N, any arithmetic type, any strides
///   variances  N×4 per-corner uncertainty (options.input: σ², σ or log σ²), any arithmetic
///              type, any strides; columns in corner order (y1, x1, y2, x2 for yxyx)
///   result     .indices K selected boxes in selection order, .boxes K×4 voted (in
///              options.format), .scores K (the score of each box when it was selected)
///
/// Per iteration, over the remaining boxes (neither selected nor discarded), in KL-Loss's order:
/// select the highest score (NaN first, ties by KL-Loss's array position, which its swaps
/// permute); vote over the remaining boxes j with IoU > vote_threshold (the selected box itself
/// with IoU 1): x = Σ p_j·x_j/σ_j² / Σ p_j/σ_j² per corner, p_j = exp(-(1 - IoU)²/σ_t), summed in
/// position order (in double for float input); then decay every remaining box with IoU > 0
/// (gaussian or hard) and discard those whose score falls below score_threshold. IoUs come from
/// the input boxes (voted boxes never vote again). A corner whose weights sum to 0 keeps the
/// selected box's value. A corner with σ² = 0 (or so small that x/σ² or 1/σ² overflows; e.g. a
/// log-variance below about -709) is exact and outweighs every finite variance:
/// when any voter's corner is exact, the vote is the exact voters' Σ p_j·x_j / Σ p_j.
///
/// Throws cvk::shape_error when boxes or variances are not N×4 or scores has not N elements,
/// and cvk::invalid_argument when sigma_t or soft_sigma is not > 0, vote_threshold is NaN or
/// >= 1, iou_threshold or score_threshold is NaN, or a variance is NaN (or negative, for σ² and
/// σ; +inf is an infinite variance, a log-variance may be any number but NaN). Each selection
/// compares the selected box only with the remaining boxes in its grid cells (vote_threshold
/// >= 0) and re-ranks a changed score in O(log N) (a tournament tree over KL-Loss's positions):
/// O(N log N + P log P) for P overlapping pairs on spread-out scenes; O(N²) at worst (everything
/// overlapping, a box spanning most of the image, or vote_threshold < 0, which makes every
/// remaining box vote).
template <tensor_of_rank<2> Boxes, tensor_of_rank<1> Scores, tensor_of_rank<2> Variances>
[[nodiscard]] auto var_voting(const Boxes& boxes, const Scores& scores, const Variances& variances,
                              const var_voting_options& options = {}) {
  constexpr const char* fn = "var_voting";
  const auto b = detail::checked_view<2>(boxes, fn, "boxes");
  const auto s = detail::checked_view<1>(scores, fn, "scores");
  const auto v = detail::checked_view<2>(variances, fn, "variances");
  detail::expect_shape(b, {detail::any_extent, 4}, fn, "boxes", "N×4");
  const index_t n = b.extent(0);
  if (s.extent(0) != n) {
    CVK_THROW(shape_error, std::string(fn) + ": scores must have " + std::to_string(n) +
                               " elements (one per box), got " + std::to_string(s.extent(0)));
  }
  if (v.extent(0) != n || v.extent(1) != 4) {
    CVK_THROW(shape_error, std::string(fn) + ": variances must be " + std::to_string(n) +
                               "×4 (one row per box), got " + v.shape_string());
  }
  const auto positive = [&](double value, const char* name) {
    if (!(value > 0.0)) {
      CVK_THROW(invalid_argument, std::string(fn) + ": " + name + " must be > 0, got " +
                                      detail::number_string(value));
    }
  };
  positive(options.sigma_t, "sigma_t");
  positive(options.soft_sigma, "soft_sigma");
  if (!(options.vote_threshold < 1.0)) {
    CVK_THROW(invalid_argument, std::string(fn) + ": vote_threshold must be < 1, got " +
                                    detail::number_string(options.vote_threshold));
  }
  if (std::isnan(options.iou_threshold)) {
    CVK_THROW(invalid_argument, std::string(fn) + ": iou_threshold must be a number, got nan");
  }
  if (std::isnan(options.score_threshold)) {
    CVK_THROW(invalid_argument, std::string(fn) + ": score_threshold must be a number, got nan");
  }
  detail::check_format(options.format, fn, "options.format");
  using R = real_t<typename decltype(b)::value_type>;
  using RS = real_t<typename decltype(s)::value_type>;
  using A = detail::voting_acc_t<R>;
  const box_convention convention{options.pixel_inclusive};
  const R one = options.pixel_inclusive ? R(1) : R(0);
  const bool rows_first = options.format == box_format::yxyx;

  const auto count = static_cast<std::size_t>(n);
  auto corners = detail::checked_vector<detail::voting_box<R>>(n, fn, "boxes", b);
  std::vector<detail::vote_weights<A>> weights(count);
  std::vector<RS> score(count);
  for (index_t i = 0; i < n; ++i) {
    const auto ii = static_cast<std::size_t>(i);
    const auto c = detail::to_xyxy(detail::load_box<R>(b, i), options.format, convention);
    corners[ii] = detail::make_voting_box(c, one);
    score[ii] = static_cast<RS>(s(i));
    for (index_t k = 0; k < 4; ++k) {
      const index_t column = rows_first ? (k ^ 1) : k;  // yxyx columns hold (y1, x1, y2, x2)
      const auto value = static_cast<A>(v(i, column));
      // A NaN (or, for σ² and σ, negative) uncertainty is a broken input, not a box that cannot
      // take part: unlike a NaN coordinate it would poison every vote it enters, so it is
      // rejected, naming the element (the row is the box).
      if (std::isnan(value) || (options.input != var_voting_input::log_variance && value < A(0))) {
        detail::reject_variance(i, column, static_cast<double>(value), options.input, fn);
      }
      A variance = value;
      if (options.input == var_voting_input::stddev) {
        variance = value * value;
      } else if (options.input == var_voting_input::log_variance) {
        const A sigma = std::exp(value / A(2));
        variance = sigma * sigma;
      }
      const auto kk = static_cast<std::size_t>(k);
      const A weighted = static_cast<A>(c[kk]) / variance;
      const A inverse = A(1) / variance;
      if (std::isinf(inverse) || (std::isinf(weighted) && std::isfinite(c[kk]))) {
        // σ² = 0, or so small that x/σ² or 1/σ² overflows: an exact corner, stored as x and an
        // infinite inverse (the kernel's vote takes the exact corners' mean)
        weights[ii].weighted[kk] = static_cast<A>(c[kk]);
        weights[ii].inverse[kk] = std::numeric_limits<A>::infinity();
      } else {
        weights[ii].weighted[kk] = weighted;
        weights[ii].inverse[kk] = inverse;
      }
    }
  }
  std::vector<index_t> indices;
  std::vector<std::array<R, 4>> voted;
  std::vector<RS> voted_scores;
  indices.reserve(count);
  voted.reserve(count);
  voted_scores.reserve(count);
  detail::var_voting_kernel<R, RS>(corners, weights, score, options, indices, voted, voted_scores);
  const auto k_count = static_cast<index_t>(indices.size());
  var_voting_result<R, RS> result{tensor<index_t, 1>(k_count), tensor<R, 2>(k_count, index_t{4}),
                                  tensor<RS, 1>(k_count)};
  for (index_t k = 0; k < k_count; ++k) {
    const auto kk = static_cast<std::size_t>(k);
    result.indices(k) = indices[kk];
    const auto row = detail::from_xyxy(voted[kk], options.format, convention);
    for (index_t c = 0; c < 4; ++c) result.boxes(k, c) = row[static_cast<std::size_t>(c)];
    result.scores(k) = voted_scores[kk];
  }
  return result;
}

CVK_END_NAMESPACE
