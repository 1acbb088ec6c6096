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

CVK_END_NAMESPACE
