// cvk — computer-vision kernels, header-only C++20.
// Matrix NMS: matrix_nms and the class-aware batched_matrix_nms (PaddlePaddle matrix_nms,
// SOLOv2): soft suppression from the upper-triangular IoU matrix of the score-ordered candidates,
// computed row by row (never stored), vectorized, and on spread-out scenes only over the pairs
// that can be non-zero (nms/detail/matrix.hpp). The other operators of the matrix family,
// fast_nms and cluster_nms, have headers of their own; this header includes them.
// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
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
#include "cluster.hpp"
#include "detail/candidates.hpp"
#include "detail/matrix.hpp"
#include "detail/output.hpp"
#include "fast.hpp"
#include "result.hpp"

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
  /// Only the top_k highest scored candidates enter the matrix (Paddle nms_top_k; -1 there is
  /// unset here). In batched_matrix_nms: per class, as Paddle. (The name every cvk NMS uses.)
  std::optional<index_t> top_k{};
  /// At most max_output results, the highest decayed scores (Paddle keep_top_k; over all classes
  /// in batched_matrix_nms).
  std::optional<index_t> max_output{};
  /// Decay function (Paddle use_gaussian).
  matrix_nms_decay decay = matrix_nms_decay::linear;
  /// Gaussian decay factor: it multiplies, exp((iou_max² - iou²) · sigma) (Paddle
  /// gaussian_sigma; SOLOv2's sigma divides, so SOLOv2's 2.0 is Paddle's 0.5). Must be > 0.
  double gaussian_sigma = 2.0;
  /// true: the pixel-inclusive "+1" convention (widths x2 − x1 + 1, touching boxes overlap) —
  /// Paddle's normalized = false; the name nms_options, box_voting and var_voting use.
  bool pixel_inclusive = false;
  /// batched_matrix_nms only: boxes of this class are dropped (Paddle background_label; its
  /// default there is 0). Unset: no class is dropped.
  std::optional<std::int64_t> background_label{};
  /// Column order of the boxes.
  box_format format = box_format::xyxy;
  /// Threads over the rows of the matrix (and classes), 0 = max_threads(). Results do not
  /// depend on it.
  int threads = 0;
};

namespace detail {

inline void check_matrix_options(const matrix_nms_options& o, const char* fn) {
  check_format(o.format, fn, "options.format");
  expect_optional_number(o.score_threshold, fn, "score_threshold");
  expect_optional_number(o.post_threshold, fn, "post_threshold");
  expect_non_negative(o.top_k, fn, "top_k");
  expect_non_negative(o.max_output, fn, "max_output");
  if (o.decay == matrix_nms_decay::gaussian) {
    expect_at_least(o.gaussian_sigma, 0.0, true, true, fn, "gaussian_sigma");
  }
}

inline matrix_rule matrix_rule_of(const matrix_nms_options& o) noexcept {
  return {o.format, !o.pixel_inclusive, o.decay == matrix_nms_decay::gaussian, o.gaussian_sigma,
          o.post_threshold};
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
///    lower index first; NaN scores last), the first top_k (if set).
/// 2. IoU(i, j) for each candidate i and each higher-ranked j < i as Paddle's JaccardOverlap
///    (0 for boxes apart, + 1 on widths when pixel_inclusive, inverted boxes have area 0).
/// 3. iou_max(j) = max(0, IoU(j, k) over k < j): how much j itself is overlapped.
/// 4. decay(i) = min(1, f(IoU(i, j), iou_max(j)) over j < i), f = (1 - iou)/(1 - iou_max)
///    (linear) or exp((iou_max² - iou²) · gaussian_sigma) (gaussian); decayed = decay · score.
/// 5. Survivors: decayed > post_threshold (if set); sorted by decayed score descending (equal:
///    processing order; NaN last); the first max_output (if set).
/// Paddle's arithmetic is reproduced in R (the linear decay in double, as Paddle's `1.`
/// literal makes it); Paddle orders equal scores unstably (partial_sort), cvk by index.
///
/// Throws cvk::shape_error when boxes is not N×4 or scores has not N elements, and
/// cvk::invalid_argument when a threshold is NaN, top_k or max_output is negative, or the
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
  const std::vector<index_t> order =
      detail::nms_order(s, detail::candidate_filter{options.score_threshold, options.top_k});
  std::vector<std::pair<std::size_t, R>> kept;
  detail::matrix_nms_class<R>(b, s, order, detail::matrix_rule_of(options), options.threads, kept,
                              {});
  detail::sort_by_score(kept, true);
  if (options.max_output && kept.size() > static_cast<std::size_t>(*options.max_output)) {
    kept.resize(static_cast<std::size_t>(*options.max_output));
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
/// options.top_k caps the candidates of each class (as Paddle), options.max_output the
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
  const index_t n = detail::check_boxes_and_scores(b, s, fn);
  detail::check_classes(c, n, fn);
  detail::check_matrix_options(options, fn);
  using R =
      detail::matrix_real_t<typename decltype(b)::value_type, typename decltype(s)::value_type>;
  std::vector<index_t> order =
      detail::nms_order(s, detail::candidate_filter{options.score_threshold, {}});
  if (options.background_label) {
    const std::int64_t background = *options.background_label;
    std::erase_if(order, [&](index_t i) { return std::cmp_equal(c(i), background); });
  }
  const std::size_t count = order.size();

  // The ranks grouped by class, each group in processing order; per class, Paddle's matrix.
  const detail::class_groups grouped(c, order);
  const index_t groups = count == 0 ? 0 : grouped.groups();
  const detail::matrix_rule rule = detail::matrix_rule_of(options);
  std::vector<std::vector<std::pair<std::size_t, R>>> kept_by_group(
      static_cast<std::size_t>(groups));
  parallel_for(
      0, groups, 1,
      [&](index_t lo, index_t hi) {
        for (index_t g = lo; g < hi; ++g) {
          const std::size_t first = grouped.start[static_cast<std::size_t>(g)];
          std::size_t last = grouped.start[static_cast<std::size_t>(g) + 1];
          if (options.top_k) {
            last = std::min(last, first + static_cast<std::size_t>(*options.top_k));
          }
          std::vector<index_t> group_order;
          std::vector<std::size_t> ranks;
          for (std::size_t k = first; k < last; ++k) {
            ranks.push_back(static_cast<std::size_t>(grouped.rank[k]));
            group_order.push_back(grouped.box[k]);
          }
          detail::matrix_nms_class<R>(b, s, group_order, rule, groups == 1 ? options.threads : 1,
                                      kept_by_group[static_cast<std::size_t>(g)], ranks);
        }
      },
      groups > 1 && count >= 2048 ? options.threads : 1);
  std::vector<std::pair<std::size_t, R>> kept;
  for (const auto& group : kept_by_group) kept.insert(kept.end(), group.begin(), group.end());
  detail::sort_by_score(kept, false);
  if (options.max_output && kept.size() > static_cast<std::size_t>(*options.max_output)) {
    kept.resize(static_cast<std::size_t>(*options.max_output));
  }
  return detail::to_scored_indices(kept, order);
}

/// Writes matrix_nms's selection into `indices` (cvk::index_t) and `scores` (the value form's score
/// type), each holding at least as many values as are selected (N always suffices); returns the
/// count. Errors as matrix_nms, and cvk::shape_error for a buffer too small.
template <tensor_of_rank<2> Boxes, tensor_of_rank<1> Scores, tensor_of_rank<1> Indices,
          tensor_of_rank<1> OutScores>
index_t matrix_nms(const Boxes& boxes, const Scores& scores, const matrix_nms_options& options,
                   Indices&& indices, OutScores&& out_scores) {
  return detail::write_selection(matrix_nms(boxes, scores, options), std::forward<Indices>(indices),
                                 std::forward<OutScores>(out_scores), "matrix_nms");
}

/// Writes batched_matrix_nms's selection into `indices` (cvk::index_t) and `scores` (the value
/// form's score type), each holding at least as many values as are selected (N always suffices);
/// returns the count. Errors as batched_matrix_nms, and cvk::shape_error for a buffer too small.
template <tensor_of_rank<2> Boxes, tensor_of_rank<1> Scores, tensor_of_rank<1> Classes,
          tensor_of_rank<1> Indices, tensor_of_rank<1> OutScores>
index_t batched_matrix_nms(const Boxes& boxes, const Scores& scores, const Classes& classes,
                           const matrix_nms_options& options, Indices&& indices,
                           OutScores&& out_scores) {
  return detail::write_selection(batched_matrix_nms(boxes, scores, classes, options),
                                 std::forward<Indices>(indices),
                                 std::forward<OutScores>(out_scores), "batched_matrix_nms");
}

CVK_END_NAMESPACE
