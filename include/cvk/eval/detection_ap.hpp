// cvk — computer-vision kernels, header-only C++20.
// COCO-style detection evaluation: detection_ap gives the twelve numbers of pycocotools'
// COCOeval (iouType 'bbox') — AP, AP50, AP75, AP and AR by object size, AR at 1/10/100
// detections — from flat arrays of detections and ground truths.
// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
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
#include "../nms/detail/overlap.hpp"
#include "detail/detection_ap.hpp"
#include "detection_ap_types.hpp"

CVK_BEGIN_NAMESPACE

// Argument groups: detection_ap(detections, ground_truths[, options]) with the tensors named,
// so that no two of the same type can be swapped unnoticed:
//
//   cvk::detection_ap({.boxes = det_boxes, .scores = det_scores, .classes = det_classes,
//                      .images = det_images},
//                     {.boxes = gt_boxes, .classes = gt_classes, .images = gt_images,
//                      .iscrowd = gt_iscrowd /* optional */}, options);
//
// Each member takes any tensor of the positional form's type and rank (ids: integer tensors, a
// compile error otherwise) and copies it at construction (boxes and scores as double, ids as
// int64, as the evaluation reads them), so the groups are plain non-template structs and the
// result equals the positional form's bit for bit. A group owns its copies (O(D + G) memory).

/// A column of an argument group: the values of one tensor, copied as V, with its extents.
template <class V, std::size_t Rank>
class ap_column {
 public:
  ap_column() = default;
  /// Any tensor of rank `Rank`; `what` names it in errors.
  template <class X>
  ap_column(const X& x, const char* what) {
    const auto v = detail::checked_view<Rank>(x, "detection_ap", what);
    using E = typename decltype(v)::value_type;
    static_assert(std::is_arithmetic_v<E>, "cvk: detection_ap boxes and scores must be arithmetic");
    extents_ = v.extents();
    index_t count = 1;
    for (const index_t e : extents_) count = detail::checked_mul(count, e, "detection_ap", what, v);
    values_ = detail::checked_vector<V>(count, "detection_ap", what, v);
    std::size_t k = 0;
    if constexpr (Rank == 1) {
      for (index_t i = 0; i < extents_[0]; ++i) values_[k++] = convert(v(i), what);
    } else {
      for (index_t i = 0; i < extents_[0]; ++i) {
        for (index_t j = 0; j < extents_[1]; ++j) values_[k++] = convert(v(i, j), what);
      }
    }
    given_ = true;
  }

  [[nodiscard]] bool given() const noexcept { return given_; }
  [[nodiscard]] strided_view<const V, Rank> view() const noexcept {
    return {values_.data(), extents_};
  }

 private:
  template <class E>
  static V convert(E value, const char* what) {
    if constexpr (std::is_same_v<V, std::int64_t>) {
      return detail::ap_id(value, "detection_ap", what);  // integers only (compile time)
    } else {
      return static_cast<V>(value);
    }
  }

  std::vector<V> values_;
  std::array<index_t, Rank> extents_{};
  bool given_ = false;
};

/// The detections of detection_ap's group form: .boxes D×4 (options.format), .scores D,
/// .classes D and .images D (integer ids).
struct ap_detections {
  struct boxes_t : ap_column<double, 2> {
    template <tensor_of_rank<2> X>
    boxes_t(const X& x) : ap_column(x, "detections.boxes") {}  // NOLINT: implicit by design
  };
  struct scores_t : ap_column<double, 1> {
    template <tensor_of_rank<1> X>
    scores_t(const X& x) : ap_column(x, "detections.scores") {}  // NOLINT
  };
  struct classes_t : ap_column<std::int64_t, 1> {
    template <tensor_of_rank<1> X>
    classes_t(const X& x) : ap_column(x, "detections.classes") {}  // NOLINT
  };
  struct images_t : ap_column<std::int64_t, 1> {
    template <tensor_of_rank<1> X>
    images_t(const X& x) : ap_column(x, "detections.images") {}  // NOLINT
  };
  boxes_t boxes;
  scores_t scores;
  classes_t classes;
  images_t images;
};

/// The ground truths of detection_ap's group form: .boxes G×4, .classes G, .images G and,
/// optionally, .iscrowd G (bool or integer flags; unset: no crowd).
struct ap_ground_truths {
  struct boxes_t : ap_column<double, 2> {
    template <tensor_of_rank<2> X>
    boxes_t(const X& x) : ap_column(x, "ground_truths.boxes") {}  // NOLINT
  };
  struct classes_t : ap_column<std::int64_t, 1> {
    template <tensor_of_rank<1> X>
    classes_t(const X& x) : ap_column(x, "ground_truths.classes") {}  // NOLINT
  };
  struct images_t : ap_column<std::int64_t, 1> {
    template <tensor_of_rank<1> X>
    images_t(const X& x) : ap_column(x, "ground_truths.images") {}  // NOLINT
  };
  struct iscrowd_t : ap_column<unsigned char, 1> {
    iscrowd_t() = default;
    template <tensor_of_rank<1> X>
    iscrowd_t(const X& x) : ap_column(x, "ground_truths.iscrowd") {  // NOLINT
      using K = tensor_value_t<const X&>;
      static_assert(std::is_integral_v<std::remove_const_t<K>>,
                    "cvk: detection_ap gt_iscrowd must be bool or integer");
    }
  };
  boxes_t boxes;
  classes_t classes;
  images_t images;
  iscrowd_t iscrowd{};
};

/// COCO detection evaluation (pycocotools COCOeval, iouType 'bbox'): AP, AP50, AP75,
/// AP small/medium/large, AR at 1/10/100 detections and AR small/medium/large.
///
///   det_boxes    D×4 in options.format (xyxy by default), any arithmetic type, any strides
///   det_scores   D, any arithmetic type (no NaN)
///   det_classes  D, any integer type: class ids (any values, fitting int64)
///   det_images   D, any integer type: image ids
///   gt_boxes     G×4 in options.format
///   gt_classes   G, any integer type
///   gt_images    G, any integer type
///
/// The result equals COCOeval.evaluate(); accumulate(); summarize() with catIds the classes
/// and imgIds every image id of either list, the boxes given as xywh in double (xyxy rows
/// converted with w = x2 - x1), each ground truth's 'area' its box area w·h and iscrowd 0:
///   1. Per image and class, detections sorted by score descending (equal scores keep input
///      order), at most the largest max_detections kept.
///   2. IoU as maskApi.c's bbIou in double (continuous, no +1; crowd ground truth: intersection
///      over the detection's area).
///   3. Per area range (ground truths with area outside it, and crowds, are ignored) and IoU
///      threshold t: each detection in score order takes, among the ground truths not yet
///      matched (crowds may be matched again), the one with the best IoU >= min(t, 1 - 1e-10),
///      preferring ground truths that are not ignored; equal IoUs go to the later one. A
///      detection matched to an ignored ground truth, or unmatched with its area outside the
///      range, is ignored.
///   4. Per class, area range, max_detections and threshold: the detections of every image
///      (each image's top max_detections) in score order (equal scores: image id, then rank),
///      cumulative tp/fp, recall tp/npig, precision tp/(tp + fp + 2^-52) made non-increasing
///      from the right, read at recall thresholds 0, .01, ..., 1 (first position with recall >=
///      r; 0 past the end), averaged: the AP; the final recall: the AR. -1 when the class has no
///      non-ignored ground truth in the range.
///   5. Each summary number is the mean of the valid (>-1) values over classes and thresholds
///      (AP50 / AP75: the thresholds equal to 0.5 / 0.75); -1 when none is valid.
/// Empty input gives every summary number -1 and no class.
///
/// Throws cvk::shape_error when a box tensor is not D×4 / G×4 or a per-box tensor has the wrong
/// length, and cvk::invalid_argument for a NaN score or coordinate, an id that does not fit in
/// int64, an empty or out-of-[0, 1] iou_thresholds, max_detections not 3 values >= 0, or a
/// format outside box_format; cvk::out_of_range when the detections or ground truths (broadcast
/// views) need more memory than can be allocated.
/// O((D + G) log(D + G)) to sort, O(A·T·Σ D_i·G_i) to match per image and class, and
/// O(A·M·T·D) to accumulate (A = 4 area ranges, M = 3, T = 10 by default).
template <tensor_of_rank<2> DetBoxes, tensor_of_rank<1> DetScores, tensor_of_rank<1> DetClasses,
          tensor_of_rank<1> DetImages, tensor_of_rank<2> GtBoxes, tensor_of_rank<1> GtClasses,
          tensor_of_rank<1> GtImages>
[[nodiscard]] detection_ap_result detection_ap(
    const DetBoxes& det_boxes, const DetScores& det_scores, const DetClasses& det_classes,
    const DetImages& det_images, const GtBoxes& gt_boxes, const GtClasses& gt_classes,
    const GtImages& gt_images, const detection_ap_options& options = {}) {
  constexpr const char* fn = "detection_ap";
  return detail::detection_ap_impl(detail::checked_view<2>(det_boxes, fn, "det_boxes"),
                                   detail::checked_view<1>(det_scores, fn, "det_scores"),
                                   detail::checked_view<1>(det_classes, fn, "det_classes"),
                                   detail::checked_view<1>(det_images, fn, "det_images"),
                                   detail::checked_view<2>(gt_boxes, fn, "gt_boxes"),
                                   detail::checked_view<1>(gt_classes, fn, "gt_classes"),
                                   detail::checked_view<1>(gt_images, fn, "gt_images"), nullptr,
                                   options, fn);
}

/// detection_ap with crowd ground truths: `gt_iscrowd` has G flags (bool or any integer type,
/// nonzero = crowd). A crowd ground truth is ignored (it neither counts as an object to find
/// nor makes a detection that matches it a false positive), may be matched by any number of
/// detections, and its IoU with a detection is intersection / detection area. Throws as above,
/// and cvk::shape_error when gt_iscrowd has not G elements.
template <tensor_of_rank<2> DetBoxes, tensor_of_rank<1> DetScores, tensor_of_rank<1> DetClasses,
          tensor_of_rank<1> DetImages, tensor_of_rank<2> GtBoxes, tensor_of_rank<1> GtClasses,
          tensor_of_rank<1> GtImages, tensor_of_rank<1> GtCrowd>
[[nodiscard]] detection_ap_result detection_ap(const DetBoxes& det_boxes,
                                               const DetScores& det_scores,
                                               const DetClasses& det_classes,
                                               const DetImages& det_images, const GtBoxes& gt_boxes,
                                               const GtClasses& gt_classes,
                                               const GtImages& gt_images, const GtCrowd& gt_iscrowd,
                                               const detection_ap_options& options = {}) {
  constexpr const char* fn = "detection_ap";
  const auto crowd_view = detail::checked_view<1>(gt_iscrowd, fn, "gt_iscrowd");
  using K = typename decltype(crowd_view)::value_type;
  static_assert(std::is_integral_v<K>, "cvk: detection_ap gt_iscrowd must be bool or integer");
  auto crowd =
      detail::checked_vector<unsigned char>(crowd_view.extent(0), fn, "gt_iscrowd", crowd_view);
  for (index_t i = 0; i < crowd_view.extent(0); ++i) {
    crowd[static_cast<std::size_t>(i)] = crowd_view(i) != K{0} ? 1 : 0;
  }
  return detail::detection_ap_impl(detail::checked_view<2>(det_boxes, fn, "det_boxes"),
                                   detail::checked_view<1>(det_scores, fn, "det_scores"),
                                   detail::checked_view<1>(det_classes, fn, "det_classes"),
                                   detail::checked_view<1>(det_images, fn, "det_images"),
                                   detail::checked_view<2>(gt_boxes, fn, "gt_boxes"),
                                   detail::checked_view<1>(gt_classes, fn, "gt_classes"),
                                   detail::checked_view<1>(gt_images, fn, "gt_images"), &crowd,
                                   options, fn);
}

/// detection_ap with named argument groups (see above); the same result, errors and complexity
/// as the positional forms (the messages name the members: "detections.classes").
[[nodiscard]] inline detection_ap_result detection_ap(const ap_detections& detections,
                                                      const ap_ground_truths& ground_truths,
                                                      const detection_ap_options& options = {}) {
  constexpr const char* fn = "detection_ap";
  std::vector<unsigned char> crowd;
  if (ground_truths.iscrowd.given()) {
    const auto c = ground_truths.iscrowd.view();
    crowd.assign(c.data(), c.data() + c.extent(0));
    for (auto& flag : crowd) flag = flag != 0 ? 1 : 0;
  }
  return detail::detection_ap_impl(
      detections.boxes.view(), detections.scores.view(), detections.classes.view(),
      detections.images.view(), ground_truths.boxes.view(), ground_truths.classes.view(),
      ground_truths.images.view(), ground_truths.iscrowd.given() ? &crowd : nullptr, options, fn);
}

CVK_END_NAMESPACE
