// cvk — computer-vision kernels, header-only C++20.
// Greedy non-maximum suppression of rotated boxes (cx, cy, w, h, angle): nms_rotated
// (detectron2 / torchvision nms_rotated semantics) and the class-aware batched_nms_rotated
// (computed per class, no coordinate offsets), with cvk's rotated IoU as the overlap. Pairs are
// pruned exactly before the polygon IoU: the shared NMS grid (nms/detail/box_grid.hpp) over the
// kept boxes' bounding boxes, the bounding-box test the IoU kernel itself applies, and an
// area-ratio bound on the IoU.
// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <new>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "../box/detail/polygon.hpp"
#include "../box/rotated.hpp"
#include "../core/as_view.hpp"
#include "../core/config.hpp"
#include "../core/errors.hpp"
#include "../core/parallel.hpp"
#include "../core/tensor.hpp"
#include "../detail/checks.hpp"
#include "../detail/scratch.hpp"
#include "detail/candidates.hpp"
#include "detail/greedy.hpp"
#include "detail/output.hpp"
#include "detail/rank.hpp"
#include "detail/rotated.hpp"

CVK_BEGIN_NAMESPACE

/// Options of nms_rotated and batched_nms_rotated. The defaults give detectron2's and
/// torchvision's nms_rotated (angles in degrees, counter-clockwise, IoU >= threshold).
struct nms_rotated_options {
  /// Keep only boxes whose score is > score_threshold before suppression. Compared in double.
  /// Unset: no score filter.
  std::optional<double> score_threshold{};
  /// Return at most this many indices (the highest scored survivors); the greedy loop stops as
  /// soon as they are found. Unset: no limit.
  std::optional<index_t> max_output{};
  /// Only the top_k highest scored candidates (after score_threshold) enter suppression.
  /// Unset: all.
  std::optional<index_t> top_k{};
  /// Suppress when IoU >= iou_threshold (detectron2, torchvision, mmcv nms_rotated); false:
  /// when IoU > iou_threshold (OpenCV NMSBoxes on RotatedRect, torchvision's axis-aligned nms).
  bool inclusive = true;
  /// Unit of the angle column: degrees (detectron2, torchvision, OpenCV) or radians (mmcv).
  angle_unit unit = angle_unit::degrees;
  /// Which way a positive angle turns the box: counter-clockwise (detectron2, torchvision) or
  /// clockwise (mmcv's default, OpenCV's RotatedRect).
  rotation_direction direction = rotation_direction::counter_clockwise;
  /// batched_nms_rotated only: threads over classes, 0 = max_threads(). Results do not depend
  /// on it.
  int threads = 0;
};

namespace detail {

/// Checks the arguments shared by nms_rotated and batched_nms_rotated; returns N.
template <class BoxView, class ScoreView>
index_t check_nms_rotated_arguments(const BoxView& boxes, const ScoreView& scores,
                                    double iou_threshold, const nms_rotated_options& options,
                                    const char* fn) {
  const index_t n = check_boxes_and_scores<5>(boxes, scores, fn);
  expect_number(iou_threshold, fn, "iou_threshold");
  expect_optional_number(options.score_threshold, fn, "score_threshold");
  expect_non_negative(options.max_output, fn, "max_output");
  expect_non_negative(options.top_k, fn, "top_k");
  return n;
}

/// The ranking options of nms_order (score filter, top_k) from nms_rotated_options.
inline candidate_filter rotated_ranking(const nms_rotated_options& options) {
  candidate_filter o;
  o.score_threshold = options.score_threshold;
  o.top_k = options.top_k;
  return o;
}

/// The rotated boxes listed in `order` as convex quads (double), in per-thread scratch memory:
/// convex_quad is trivially destructible, so the objects are created in place and need no
/// destruction.
class rotated_candidates {
  static_assert(std::is_trivially_destructible_v<convex_quad<double>> &&
                alignof(convex_quad<double>) <= alignof(std::max_align_t));

 public:
  template <class BoxView>
  rotated_candidates(const BoxView& boxes, const std::vector<index_t>& order,
                     const nms_rotated_options& options)
      : count_(order.size()),
        storage_(scratch_slot_id::nms_candidates,
                 (order.size() * sizeof(convex_quad<double>) + sizeof(std::max_align_t) - 1) /
                     sizeof(std::max_align_t)) {
    rotated_options geometry;
    geometry.unit = options.unit;
    geometry.direction = options.direction;
    auto* const first = reinterpret_cast<convex_quad<double>*>(storage_.get());
    for (std::size_t k = 0; k < count_; ++k) {
      ::new (static_cast<void*>(first + k)) convex_quad<double>(
          load_convex<convex_input::rotated, double>(boxes, order[k], geometry));
    }
    data_ = first;
  }

  [[nodiscard]] std::span<const convex_quad<double>> span() const noexcept {
    return {data_, count_};
  }

 private:
  std::size_t count_;
  scratch_lease<std::max_align_t> storage_;
  const convex_quad<double>* data_ = nullptr;
};

inline std::size_t rotated_max_keep(const nms_rotated_options& options, std::size_t candidates) {
  return options.max_output ? std::min(static_cast<std::size_t>(*options.max_output), candidates)
                            : candidates;
}

}  // namespace detail

/// Greedy non-maximum suppression of rotated boxes; the indices of the kept boxes, highest
/// score first.
///
///   boxes   N×5 (cx, cy, w, h, angle), any arithmetic type, any strides; angle in degrees,
///           counter-clockwise by default (options.unit, options.direction)
///   scores  N, any arithmetic type, any strides
///   result  K indices into boxes, K <= N, in decreasing score (equal scores: lower index first)
///
/// detectron2's and torchvision's nms_rotated: candidates sorted by score (stable: equal scores
/// in index order), each kept box suppresses the later ones whose IoU with it is
/// >= iou_threshold (options.inclusive = false: > iou_threshold). The IoU is cvk's rotated IoU,
/// exactly the value rotated_box_iou(boxes, boxes)(kept, candidate) holds: computed in double,
/// rounded to float for float boxes (double otherwise), compared with the threshold in double.
/// A box with a side <= 0 or w·h < 1e-14 has IoU 0 with every box (detectron2 also zeroes
/// w·h < 1e-14 but takes a box with two negative sides as the box turned by 180°): with a
/// threshold > 0 it is always kept and never suppresses. A NaN or infinite value makes the
/// box's IoUs NaN: it neither suppresses nor is suppressed. NaN scores rank last.
///
/// Throws cvk::shape_error when boxes is not N×5 or scores has not N elements, and
/// cvk::invalid_argument when iou_threshold or score_threshold is NaN or max_output or top_k is
/// negative. O(N log N) to sort; then, for a threshold that needs a positive IoU (> 0 inclusive,
/// >= 0 exclusive), each candidate is compared only with the kept boxes whose bounding boxes
/// meet its own (a uniform grid) and whose area ratio allows the threshold: O(N) rotated IoUs
/// for spread-out boxes, O(N·K) at worst.
template <tensor_of_rank<2> Boxes, tensor_of_rank<1> Scores>
[[nodiscard]] tensor<index_t, 1> nms_rotated(const Boxes& boxes, const Scores& scores,
                                             double iou_threshold,
                                             const nms_rotated_options& options = {}) {
  constexpr const char* fn = "nms_rotated";
  const auto b = detail::checked_view<2>(boxes, fn, "boxes");
  const auto s = detail::checked_view<1>(scores, fn, "scores");
  detail::check_nms_rotated_arguments(b, s, iou_threshold, options, fn);
  using R = real_t<typename decltype(b)::value_type>;
  const std::vector<index_t> order = detail::nms_order(s, detail::rotated_ranking(options));
  const detail::rotated_candidates candidates(b, order, options);
  std::vector<index_t> kept;
  detail::greedy_nms_rotated<R>(candidates.span(),
                                detail::nms_threshold<R>::from(iou_threshold, options.inclusive),
                                detail::rotated_max_keep(options, order.size()), kept);
  for (index_t& k : kept) k = order[static_cast<std::size_t>(k)];
  return detail::to_index_tensor(kept);
}

/// Class-aware greedy NMS of rotated boxes: boxes suppress only boxes of the same class. The
/// indices of the kept boxes over all classes, highest score first (equal scores: lower index
/// first).
///
///   boxes    N×5 (cx, cy, w, h, angle), any arithmetic type, any strides
///   scores   N, any arithmetic type, any strides
///   classes  N, any integer type, any strides (class ids, any values, negative included)
///   result   K indices into boxes, K <= N
///
/// Equals detectron2's batched_nms_rotated (nms_rotated per class, kept indices merged by
/// score) without its coordinate-offset trick: no rounding from the offsets, and no
/// dependence on the coordinate range. options.top_k caps the candidates over all classes;
/// options.max_output caps the merged result (the highest scored survivors); classes run
/// concurrently on options.threads threads. Throws as nms_rotated, and cvk::shape_error when
/// classes has not N elements. O(N log N) plus the per-class cost of nms_rotated.
template <tensor_of_rank<2> Boxes, tensor_of_rank<1> Scores, tensor_of_rank<1> Classes>
[[nodiscard]] tensor<index_t, 1> batched_nms_rotated(const Boxes& boxes, const Scores& scores,
                                                     const Classes& classes, double iou_threshold,
                                                     const nms_rotated_options& options = {}) {
  constexpr const char* fn = "batched_nms_rotated";
  const auto b = detail::checked_view<2>(boxes, fn, "boxes");
  const auto s = detail::checked_view<1>(scores, fn, "scores");
  const auto c = detail::checked_view<1>(classes, fn, "classes");
  const index_t n = detail::check_nms_rotated_arguments(b, s, iou_threshold, options, fn);
  detail::check_classes(c, n, fn);
  using R = real_t<typename decltype(b)::value_type>;
  const std::vector<index_t> order = detail::nms_order(s, detail::rotated_ranking(options));
  const detail::class_groups grouped(c, order);
  const detail::rotated_candidates candidates(b, grouped.box, options);
  const auto threshold = detail::nms_threshold<R>::from(iou_threshold, options.inclusive);
  const std::size_t max_keep = detail::rotated_max_keep(options, order.size());
  return grouped.merge(
      order, max_keep, grouped.groups() > 1 && order.size() >= 256 ? options.threads : 1,
      [&](std::size_t first, std::size_t last, std::vector<index_t>& kept) {
        detail::greedy_nms_rotated<R>(candidates.span().subspan(first, last - first), threshold,
                                      max_keep, kept);
      });
}

/// Writes nms_rotated's selection into `indices` (cvk::index_t, at least as many values as are
/// selected: N always suffices) and returns the count. Errors as nms_rotated, and cvk::shape_error
/// for a buffer too small.
template <tensor_of_rank<2> Boxes, tensor_of_rank<1> Scores, tensor_of_rank<1> Indices>
index_t nms_rotated(const Boxes& boxes, const Scores& scores, double iou_threshold,
                    const nms_rotated_options& options, Indices&& indices) {
  return detail::write_selection(nms_rotated(boxes, scores, iou_threshold, options),
                                 std::forward<Indices>(indices), "nms_rotated");
}

/// Writes batched_nms_rotated's selection into `indices` (cvk::index_t, at least as many values as
/// are selected: N always suffices) and returns the count. Errors as batched_nms_rotated, and
/// cvk::shape_error for a buffer too small.
template <tensor_of_rank<2> Boxes, tensor_of_rank<1> Scores, tensor_of_rank<1> Classes,
          tensor_of_rank<1> Indices>
index_t batched_nms_rotated(const Boxes& boxes, const Scores& scores, const Classes& classes,
                            double iou_threshold, const nms_rotated_options& options,
                            Indices&& indices) {
  return detail::write_selection(
      batched_nms_rotated(boxes, scores, classes, iou_threshold, options),
      std::forward<Indices>(indices), "batched_nms_rotated");
}

CVK_END_NAMESPACE
