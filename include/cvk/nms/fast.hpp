// cvk — computer-vision kernels, header-only C++20.
// Fast NMS (YOLACT, Bolya et al. 2019): a box is dropped when any higher-scored box, kept or
// not, overlaps it by more than the threshold; rows of the IoU matrix are independent and run in
// parallel (nms/detail/fast.hpp).
// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <cstddef>
#include <optional>
#include <span>
#include <vector>

#include "../box/format.hpp"
#include "../core/as_view.hpp"
#include "../core/config.hpp"
#include "../core/tensor.hpp"
#include "../detail/checks.hpp"
#include "detail/candidates.hpp"
#include "detail/fast.hpp"
#include "detail/greedy.hpp"
#include "detail/output.hpp"

CVK_BEGIN_NAMESPACE

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
  const std::vector<index_t> order =
      detail::nms_order(s, detail::candidate_filter{options.score_threshold, options.top_k});
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

/// Writes fast_nms's selection into `indices` (cvk::index_t, at least as many values as are
/// selected: N always suffices) and returns the count. Errors as fast_nms, and cvk::shape_error for
/// a buffer too small.
template <tensor_of_rank<2> Boxes, tensor_of_rank<1> Scores, tensor_of_rank<1> Indices>
index_t fast_nms(const Boxes& boxes, const Scores& scores, double iou_threshold,
                 const fast_nms_options& options, Indices&& indices) {
  return detail::write_selection(fast_nms(boxes, scores, iou_threshold, options),
                                 std::forward<Indices>(indices), "fast_nms");
}

CVK_END_NAMESPACE
