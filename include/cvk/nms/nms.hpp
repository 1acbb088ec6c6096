// cvk — computer-vision kernels, header-only C++20.
// Greedy non-maximum suppression: nms (torchvision.ops.nms semantics, bit-identical decisions)
// and the class-aware batched_nms (torchvision.ops.batched_nms output, computed per class).
// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
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
#include "detail/candidates.hpp"
#include "detail/greedy.hpp"
#include "detail/output.hpp"
#include "detail/rank.hpp"

CVK_BEGIN_NAMESPACE

/// What greedy NMS compares with the threshold.
enum class nms_criterion {
  iou,   ///< intersection over union (torchvision, OpenCV, ONNX, ...)
  diou,  ///< DIoU-NMS (Zheng et al., AAAI 2020): IoU minus the normalised centre distance
};

/// Options of nms and batched_nms. The defaults give torchvision.ops.nms exactly.
struct nms_options {
  /// Keep only boxes whose score is > score_threshold before suppression (OpenCV NMSBoxes,
  /// ONNX NonMaxSuppression). Compared in double. Unset: no score filter.
  std::optional<double> score_threshold{};
  /// Return at most this many indices (the highest scored survivors); the greedy loop stops as
  /// soon as they are found. Unset: no limit.
  std::optional<index_t> max_output{};
  /// Only the top_k highest scored candidates (after score_threshold) enter suppression
  /// (OpenCV's top_k, mmcv/Paddle nms_pre). Unset: all.
  std::optional<index_t> top_k{};
  /// Suppress when IoU >= iou_threshold instead of IoU > iou_threshold (mmcv soft/rotated,
  /// TensorRT EfficientNMS).
  bool inclusive = false;
  /// Column order of the boxes.
  box_format format = box_format::xyxy;
  /// Legacy pixel-inclusive boxes (mmcv offset=1, Caffe, Detectron): a box covers x1..x2
  /// inclusive, so widths and intersections get +1 (computed as x2 + 1 and y2 + 1).
  bool pixel_inclusive = false;
  /// OpenCV/SSD adaptive threshold: after each kept box, a threshold above 0.5 is multiplied by
  /// eta (in double). 1 = fixed threshold. Must be in (0, 1].
  double eta = 1.0;
  /// Suppression criterion: IoU (default) or DIoU-NMS, IoU - (ρ²/c²)^diou_beta.
  nms_criterion criterion = nms_criterion::iou;
  /// DIoU-NMS exponent of the distance penalty: 1 in the DIoU paper, 0.6 in darknet
  /// (beta_nms). Must be > 0.
  double diou_beta = 1.0;
  /// batched_nms only: threads over classes, 0 = max_threads(). Results do not depend on it.
  int threads = 0;
};

namespace detail {

/// Checks the arguments shared by nms and batched_nms; returns N.
template <class BoxView, class ScoreView>
index_t check_nms_arguments(const BoxView& boxes, const ScoreView& scores, double iou_threshold,
                            const nms_options& options, const char* fn) {
  const index_t n = check_boxes_and_scores(boxes, scores, fn);
  expect_number(iou_threshold, fn, "iou_threshold");
  expect_optional_number(options.score_threshold, fn, "score_threshold");
  expect_non_negative(options.max_output, fn, "max_output");
  expect_non_negative(options.top_k, fn, "top_k");
  if (!(options.eta > 0.0 && options.eta <= 1.0)) {
    CVK_THROW(invalid_argument, std::string(fn) + ": eta must be in (0, 1], got " +
                                    detail::number_string(options.eta));
  }
  if (!(options.diou_beta > 0.0 && std::isfinite(options.diou_beta))) {
    CVK_THROW(invalid_argument, std::string(fn) + ": diou_beta must be a finite number > 0, got " +
                                    detail::number_string(options.diou_beta));
  }
  check_format(options.format, fn, "options.format");
  return n;
}

/// Box i as an NMS candidate: xyxy corners (x2 + 1 and y2 + 1 for pixel-inclusive boxes) and
/// the area in R.
template <class R, class BoxView>
nms_box<R> nms_candidate(const BoxView& boxes, index_t i, const nms_options& options) {
  const auto b = to_xyxy(load_box<R>(boxes, i), options.format,
                         box_convention{.pixel_inclusive = options.pixel_inclusive});
  if (options.pixel_inclusive) return make_nms_box(b[0], b[1], b[2] + R(1), b[3] + R(1));
  return make_nms_box(b[0], b[1], b[2], b[3]);
}

/// The greedy rule of the options.
template <class R>
nms_rule<R> make_nms_rule(double iou_threshold, const nms_options& options) {
  return nms_rule<R>::from(iou_threshold, options.inclusive, options.eta,
                           static_cast<R>(options.diou_beta));
}

inline std::size_t nms_max_keep(const nms_options& options, std::size_t candidates) {
  return options.max_output ? std::min(static_cast<std::size_t>(*options.max_output), candidates)
                            : candidates;
}

}  // namespace detail

/// Greedy non-maximum suppression; the indices of the kept boxes, highest score first.
///
///   boxes   N×4 in options.format (xyxy by default), any arithmetic type, any strides
///   scores  N, any arithmetic type, any strides
///   result  K indices into boxes, K <= N, in decreasing score (equal scores: lower index first)
///
/// With default options the result equals torchvision.ops.nms(boxes, scores, iou_threshold)
/// element for element for float and double input: IoU computed with torchvision's operations,
/// a box suppressed when IoU > iou_threshold, the threshold compared in double. A pair whose
/// union is 0 (two zero-area boxes) has IoU 0/0 = NaN in torchvision, which never suppresses;
/// cvk decides the same. NaN scores rank last (torchvision ranks them first); a NaN or infinite
/// coordinate makes the box's IoU NaN, so it neither suppresses nor is suppressed. Integer boxes
/// are computed in double.
///
/// Throws cvk::shape_error when boxes is not N×4 or scores has not N elements, and
/// cvk::invalid_argument when iou_threshold or score_threshold is NaN or max_output or top_k
/// is negative. O(N log N) to sort; then, for a threshold >= 0, each candidate is compared only
/// with the kept boxes near it (a uniform grid): O(N) for spread-out boxes, O(N·K) at worst.
template <tensor_of_rank<2> Boxes, tensor_of_rank<1> Scores>
[[nodiscard]] tensor<index_t, 1> nms(const Boxes& boxes, const Scores& scores, double iou_threshold,
                                     const nms_options& options = {}) {
  constexpr const char* fn = "nms";
  const auto b = detail::checked_view<2>(boxes, fn, "boxes");
  const auto s = detail::checked_view<1>(scores, fn, "scores");
  detail::check_nms_arguments(b, s, iou_threshold, options, fn);
  using R = real_t<typename decltype(b)::value_type>;
  const std::vector<index_t> order = detail::nms_order(s, options);
  const std::size_t count = order.size();
  const detail::scratch_lease<detail::nms_box<R>> storage(detail::scratch_slot_id::nms_candidates,
                                                          count);
  detail::nms_box<R>* const candidates = storage.get();
  for (std::size_t r = 0; r < count; ++r)
    candidates[r] = detail::nms_candidate<R>(b, order[r], options);
  std::vector<index_t> kept;
  kept.reserve(detail::nms_max_keep(options, count));
  detail::greedy_nms<R>(std::span<const detail::nms_box<R>>(candidates, count),
                        detail::make_nms_rule<R>(iou_threshold, options),
                        options.criterion == nms_criterion::diou,
                        detail::nms_max_keep(options, count), kept);
  for (index_t& k : kept) k = order[static_cast<std::size_t>(k)];
  return detail::to_index_tensor(kept);
}

/// Class-aware greedy NMS: boxes suppress only boxes of the same class. The indices of the kept
/// boxes over all classes, highest score first (equal scores: lower index first).
///
///   boxes    N×4 in options.format, any arithmetic type, any strides
///   scores   N, any arithmetic type, any strides
///   classes  N, any integer type, any strides (class ids, any values, negative included)
///   result   K indices into boxes, K <= N
///
/// Equals torchvision.ops.batched_nms(boxes, scores, classes, iou_threshold) — NMS run per
/// class, kept indices merged by score — but without the coordinate-offset trick, so no
/// rounding from the offsets and no overlap between classes when coordinates are negative.
/// options.top_k caps the candidates over all classes; options.max_output caps the merged result
/// (the highest scored survivors); classes run concurrently on options.threads threads.
/// Throws as nms, and cvk::shape_error when classes has not N elements.
/// O(N log N) plus the per-class cost of nms.
template <tensor_of_rank<2> Boxes, tensor_of_rank<1> Scores, tensor_of_rank<1> Classes>
[[nodiscard]] tensor<index_t, 1> batched_nms(const Boxes& boxes, const Scores& scores,
                                             const Classes& classes, double iou_threshold,
                                             const nms_options& options = {}) {
  constexpr const char* fn = "batched_nms";
  const auto b = detail::checked_view<2>(boxes, fn, "boxes");
  const auto s = detail::checked_view<1>(scores, fn, "scores");
  const auto c = detail::checked_view<1>(classes, fn, "classes");
  const index_t n = detail::check_nms_arguments(b, s, iou_threshold, options, fn);
  detail::check_classes(c, n, fn);
  using R = real_t<typename decltype(b)::value_type>;
  const std::vector<index_t> order = detail::nms_order(s, options);
  const detail::class_groups grouped(c, order);
  std::vector<detail::nms_box<R>> candidates;
  candidates.reserve(order.size());
  for (const index_t i : grouped.box) candidates.push_back(detail::nms_candidate<R>(b, i, options));
  const auto rule = detail::make_nms_rule<R>(iou_threshold, options);
  const bool diou = options.criterion == nms_criterion::diou;
  const std::size_t max_keep = detail::nms_max_keep(options, order.size());
  return grouped.merge(order, max_keep,
                       grouped.groups() > 1 && order.size() >= 2048 ? options.threads : 1,
                       [&](std::size_t first, std::size_t last, std::vector<index_t>& kept) {
                         detail::greedy_nms<R>(std::span(candidates).subspan(first, last - first),
                                               rule, diou, max_keep, kept);
                       });
}

/// Writes nms's selection into `indices` (cvk::index_t, at least as many values as are
/// selected: N always suffices) and returns the count. Errors as nms, and cvk::shape_error for
/// a buffer too small.
template <tensor_of_rank<2> Boxes, tensor_of_rank<1> Scores, tensor_of_rank<1> Indices>
index_t nms(const Boxes& boxes, const Scores& scores, double iou_threshold,
            const nms_options& options, Indices&& indices) {
  return detail::write_selection(nms(boxes, scores, iou_threshold, options),
                                 std::forward<Indices>(indices), "nms");
}

/// Writes batched_nms's selection into `indices` (cvk::index_t, at least as many values as are
/// selected: N always suffices) and returns the count. Errors as batched_nms, and cvk::shape_error
/// for a buffer too small.
template <tensor_of_rank<2> Boxes, tensor_of_rank<1> Scores, tensor_of_rank<1> Classes,
          tensor_of_rank<1> Indices>
index_t batched_nms(const Boxes& boxes, const Scores& scores, const Classes& classes,
                    double iou_threshold, const nms_options& options, Indices&& indices) {
  return detail::write_selection(batched_nms(boxes, scores, classes, iou_threshold, options),
                                 std::forward<Indices>(indices), "batched_nms");
}

CVK_END_NAMESPACE
