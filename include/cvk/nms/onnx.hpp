// cvk — computer-vision kernels, header-only C++20.
// cvk::onnx::non_max_suppression: the ONNX NonMaxSuppression operator (opset 10/11), with the
// decisions of ONNX Runtime's CPU kernel and the ONNX reference implementation: boxes [B,N,4]
// as [y1,x1,y2,x2] (any diagonal corners) or [xc,yc,w,h], scores [B,C,N], per batch and class a
// greedy NMS with IoU > iou_threshold, output (batch, class, box) triples.
// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <system_error>
#include <type_traits>
#include <vector>

#include "../core/as_view.hpp"
#include "../core/config.hpp"
#include "../core/errors.hpp"
#include "../core/parallel.hpp"
#include "../core/strided_view.hpp"
#include "../core/tensor.hpp"
#include "../detail/checks.hpp"
#include "detail/candidates.hpp"
#include "detail/greedy.hpp"
#include "detail/threshold.hpp"

CVK_BEGIN_NAMESPACE
namespace detail {

/// Shortest round-trip text of a double, for error messages.
inline std::string onnx_number(double value) { return number_string(value); }

/// Box i of batch `batch` as an NMS candidate in R, the way ONNX Runtime reads it:
/// center_point_box 0: [y1, x1, y2, x2], each axis ordered with ORT's MaxMin
/// (lhs >= rhs ? (rhs, lhs) : (lhs, rhs)); 1: [xc, yc, w, h] → xc ∓ w / 2, yc ∓ h / 2.
/// The area is (x_max - x_min) * (y_max - y_min), as ORT's suppress_by_iou computes it.
template <class R, class BoxView>
nms_box<R> onnx_candidate(const BoxView& boxes, index_t batch, index_t i, int center_point_box) {
  const auto at = [&](index_t k) { return static_cast<R>(boxes(batch, i, k)); };
  R x_min{};
  R x_max{};
  R y_min{};
  R y_max{};
  if (center_point_box == 0) {
    const R y1 = at(0);
    const R x1 = at(1);
    const R y2 = at(2);
    const R x2 = at(3);
    const bool x_swap = x1 >= x2;
    x_min = x_swap ? x2 : x1;
    x_max = x_swap ? x1 : x2;
    const bool y_swap = y1 >= y2;
    y_min = y_swap ? y2 : y1;
    y_max = y_swap ? y1 : y2;
  } else {
    const R xc = at(0);
    const R yc = at(1);
    const R half_w = at(2) / R(2);
    const R half_h = at(3) / R(2);
    x_min = xc - half_w;
    x_max = xc + half_w;
    y_min = yc - half_h;
    y_max = yc + half_h;
  }
  return make_nms_box(x_min, y_min, x_max, y_max);
}

}  // namespace detail

namespace onnx {

/// The ONNX NonMaxSuppression operator: for every batch b and class c, a greedy NMS of the N
/// boxes of batch b ranked by their class-c scores. Returns the selected (batch, class, box)
/// triples, ordered by batch, then class, then selection order (decreasing score).
///
///   boxes   B×N×4, any arithmetic type, any strides: [y1, x1, y2, x2] with (y1, x1) and
///           (y2, x2) any two diagonal corners (center_point_box = 0, TensorFlow), or
///           [x_center, y_center, width, height] (center_point_box = 1, PyTorch)
///   scores  B×C×N, any arithmetic type, any strides
///   result  K×3 int64 (batch_index, class_index, box_index), K <= B·C·min(N, max_output)
///
/// Semantics (ONNX spec, onnx/reference op_non_max_suppression.py, ONNX Runtime's CPU kernel):
///  1. max_output_boxes_per_class <= 0 selects nothing (0 is the spec's default; ORT and the
///     reference clamp a negative value to 0).
///  2. With a score_threshold, only boxes with score > score_threshold are candidates; without
///     one, every box is.
///  3. Candidates are visited by score, descending; equal scores by ascending box index (ORT's
///     and the reference's (score, index) order). NaN scores, for which ORT's heap order is
///     unspecified, come last in index order (a score_threshold drops them).
///  4. A candidate is selected unless it has IoU > iou_threshold (strictly) with a box already
///     selected for this batch and class; at most max_output_boxes_per_class per class.
///  5. IoU as ORT's suppress_by_iou: a pair whose intersection has an extent <= 0, or whose
///     intersection area, box areas or union are <= 0 (or NaN), never suppresses; so boxes with
///     zero or negative width or height (center mode), NaN or infinite coordinates are always
///     selected and never suppress.
///  6. Arithmetic in the boxes' type (float for float boxes, as ORT; double for double or
///     integer boxes); the thresholds are rounded to that type (iou_threshold) and to the
///     scores' type (score_threshold) first, as the ONNX inputs are float tensors — so float
///     boxes and scores give ORT's selections bit for bit.
///
/// Throws cvk::shape_error when boxes is not B×N×4 or scores is not B×C×N for the same B and
/// N (or a runtime-rank input is not of rank 3), and cvk::invalid_argument when iou_threshold
/// is not in [0, 1] (NaN included; ORT's check), score_threshold is NaN (where ORT would select
/// nothing) or center_point_box is not 0 or 1; cvk::out_of_range when B·N or B·C·N (broadcast
/// views) overflows or needs more memory than can be allocated.
/// O(B·C·N log N) to rank; then per class the greedy loop compares a candidate only with the
/// selected boxes near it (a uniform grid): O(N) for spread-out boxes, O(N·K) at worst. Classes
/// run concurrently on `threads` threads (0 = max_threads()); results do not depend on it.
template <tensor_of_rank<3> Boxes, tensor_of_rank<3> Scores>
[[nodiscard]] tensor<std::int64_t, 2> non_max_suppression(
    const Boxes& boxes, const Scores& scores, std::int64_t max_output_boxes_per_class,
    double iou_threshold = 0.0, std::optional<double> score_threshold = std::nullopt,
    int center_point_box = 0, int threads = 0) {
  constexpr const char* fn = "onnx::non_max_suppression";
  const auto b = cvk::detail::checked_view<3>(boxes, fn, "boxes");
  const auto s = cvk::detail::checked_view<3>(scores, fn, "scores");
  cvk::detail::expect_shape(b, {cvk::detail::any_extent, cvk::detail::any_extent, 4}, fn, "boxes",
                            "B×N×4");
  const index_t batches = b.extent(0);
  const index_t n = b.extent(1);
  const index_t classes = s.extent(1);
  if (s.extent(0) != batches || s.extent(2) != n) {
    CVK_THROW(shape_error, std::string(fn) + ": scores must be B×C×N with B = " +
                               std::to_string(batches) + " and N = " + std::to_string(n) +
                               " (boxes is " + b.shape_string() + "), got " + s.shape_string());
  }
  if (center_point_box != 0 && center_point_box != 1) {
    CVK_THROW(invalid_argument, std::string(fn) + ": center_point_box must be 0 or 1, got " +
                                    std::to_string(center_point_box));
  }
  if (!(iou_threshold >= 0.0 && iou_threshold <= 1.0)) {
    CVK_THROW(invalid_argument, std::string(fn) + ": iou_threshold must be in [0, 1], got " +
                                    cvk::detail::onnx_number(iou_threshold));
  }
  if (score_threshold && std::isnan(*score_threshold)) {
    CVK_THROW(invalid_argument, std::string(fn) + ": score_threshold must be a number, got nan");
  }
  if (max_output_boxes_per_class <= 0 || batches == 0 || classes == 0 || n == 0) {
    return tensor<std::int64_t, 2>(index_t{0}, index_t{3});
  }

  using R = real_t<typename decltype(b)::value_type>;
  using S = typename decltype(s)::value_type;
  cvk::detail::candidate_filter ranking;
  if (score_threshold) {
    // score > t compared in the scores' type: for float scores, t rounded to float first.
    if constexpr (std::is_floating_point_v<S>) {
      ranking.score_threshold =
          static_cast<double>(cvk::detail::round_to_nearest<S>(*score_threshold));
    } else {
      ranking.score_threshold = *score_threshold;
    }
  }
  const auto threshold = cvk::detail::nms_threshold<R>::from(
      static_cast<double>(cvk::detail::round_to_nearest<R>(iou_threshold)), false);
  const auto max_keep = static_cast<std::size_t>(
      std::min<std::int64_t>(max_output_boxes_per_class, static_cast<std::int64_t>(n)));

  // Every box of every batch as a candidate, once. Every size product is checked before it is
  // formed: broadcast (zero-stride) views can have any extents.
  const index_t box_count = cvk::detail::checked_mul(batches, n, fn, "boxes", b);
  const index_t groups = cvk::detail::checked_mul(batches, classes, fn, "scores", s);
  const index_t score_count = cvk::detail::checked_mul(groups, n, fn, "scores", s);
  auto all_boxes = cvk::detail::checked_vector<cvk::detail::nms_box<R>>(box_count, fn, "boxes", b);
  for (index_t batch = 0; batch < batches; ++batch) {
    for (index_t i = 0; i < n; ++i) {
      all_boxes[static_cast<std::size_t>(batch * n + i)] =
          cvk::detail::onnx_candidate<R>(b, batch, i, center_point_box);
    }
  }

  // Selected box indices per (batch, class), in selection order.
  auto selected = cvk::detail::checked_vector<std::vector<index_t>>(groups, fn, "scores", s);
  parallel_for(
      0, groups, 1,
      [&](index_t lo, index_t hi) {
        std::vector<cvk::detail::nms_box<R>> candidates;
        for (index_t g = lo; g < hi; ++g) {
          const index_t batch = g / classes;
          const index_t cls = g % classes;
          const strided_view<const S, 1> class_scores(
              s.data() + batch * s.stride(0) + cls * s.stride(1), {n}, {s.stride(2)});
          const std::vector<index_t> order = cvk::detail::nms_order(class_scores, ranking);
          candidates.clear();
          for (const index_t i : order) {
            candidates.push_back(all_boxes[static_cast<std::size_t>(batch * n + i)]);
          }
          std::vector<index_t>& kept = selected[static_cast<std::size_t>(g)];
          cvk::detail::greedy_nms<R>(candidates, threshold, std::min(max_keep, candidates.size()),
                                     kept);
          for (index_t& k : kept) k = order[static_cast<std::size_t>(k)];
        }
      },
      groups > 1 && score_count >= 4096 ? threads : 1);

  std::size_t total = 0;
  for (const auto& group : selected) total += group.size();
  tensor<std::int64_t, 2> result(static_cast<index_t>(total), index_t{3});
  std::int64_t* out = result.data();
  for (index_t g = 0; g < groups; ++g) {
    for (const index_t i : selected[static_cast<std::size_t>(g)]) {
      *out++ = static_cast<std::int64_t>(g / classes);
      *out++ = static_cast<std::int64_t>(g % classes);
      *out++ = static_cast<std::int64_t>(i);
    }
  }
  return result;
}

/// The inputs of NonMaxSuppression after max_output_boxes_per_class, named, plus the threads:
/// `onnx::non_max_suppression(boxes, scores, 10, {.iou_threshold = 0.5, .threads = 4})`.
struct non_max_suppression_options {
  double iou_threshold = 0.0;
  std::optional<double> score_threshold{};
  int center_point_box = 0;
  int threads = 0;
};

/// non_max_suppression with the optional inputs in an options struct (same semantics, errors and
/// complexity as the positional form above).
template <tensor_of_rank<3> Boxes, tensor_of_rank<3> Scores>
[[nodiscard]] tensor<std::int64_t, 2> non_max_suppression(
    const Boxes& boxes, const Scores& scores, std::int64_t max_output_boxes_per_class,
    const non_max_suppression_options& options) {
  return non_max_suppression(boxes, scores, max_output_boxes_per_class, options.iou_threshold,
                             options.score_threshold, options.center_point_box, options.threads);
}

}  // namespace onnx
CVK_END_NAMESPACE
