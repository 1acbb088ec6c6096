// cvk — computer-vision kernels, header-only C++20.
// The options and result of detection_ap (<cvk/eval/detection_ap.hpp>), in a header of their
// own so that the algorithm (eval/detail/detection_ap.hpp) can take them.
// SPDX-License-Identifier: MIT
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "../box/format.hpp"
#include "../core/config.hpp"
#include "../core/tensor.hpp"

CVK_BEGIN_NAMESPACE

/// Options of detection_ap. The defaults are pycocotools' COCOeval parameters for 'bbox'.
struct detection_ap_options {
  /// IoU thresholds T, each in [0, 1]. Default: np.linspace(.5, .95, 10), the exact doubles
  /// numpy gives (i·((.95 - .5)/9) + .5, the last set to .95: note 0.8999999999999999).
  /// A threshold t matches pairs with IoU >= min(t, 1 - 1e-10).
  std::vector<double> iou_thresholds{0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.8999999999999999,
                                     0.95};
  /// Three limits on the detections per image and class (the top-scored ones), sorted
  /// ascending before use (as COCOeval): AR is reported at each, AP at the largest.
  std::vector<index_t> max_detections{1, 10, 100};
  /// Also evaluate the small / medium / large area ranges. When false, ap_small, ap_medium,
  /// ap_large, ar_small, ar_medium and ar_large are NaN (not computed).
  bool area_ranges = true;
  /// Column order of det_boxes and gt_boxes (COCO json files use xywh).
  box_format format = box_format::xyxy;
  /// Threads over classes, 0 = max_threads(). Results do not depend on it.
  int threads = 0;
};

/// What detection_ap returns. A value of -1 means "no ground truth to measure against" (as
/// COCOeval: every class has no non-crowd ground truth in that area range).
struct detection_ap_result {
  double ap = -1;         ///< AP @[IoU=.50:.95 | area=all | maxDets=largest]
  double ap50 = -1;       ///< AP @[IoU=.50 | all | largest] (-1 when no threshold equals 0.5)
  double ap75 = -1;       ///< AP @[IoU=.75 | all | largest] (-1 when no threshold equals 0.75)
  double ap_small = -1;   ///< AP, area <= 32²
  double ap_medium = -1;  ///< AP, 32² <= area <= 96²
  double ap_large = -1;   ///< AP, area >= 96²
  double ar1 = -1;        ///< AR @[IoU=.50:.95 | all | maxDets=max_detections[0]]
  double ar10 = -1;       ///< AR at max_detections[1]
  double ar100 = -1;      ///< AR at max_detections[2]
  double ar_small = -1;   ///< AR, area <= 32², largest max_detections
  double ar_medium = -1;  ///< AR, 32² <= area <= 96²
  double ar_large = -1;   ///< AR, area >= 96²
  /// C×T: AP of each class at each threshold (area all, largest max_detections): the mean of
  /// the 101-point interpolated precision; -1 for a class without non-crowd ground truth.
  tensor<double, 2> ap_per_class_and_threshold;
  /// C×T: recall of each class at each threshold (area all, largest max_detections); -1 as above.
  tensor<double, 2> ar_per_class_and_threshold;
  /// C: AP of each class averaged over the thresholds; -1 for a class without ground truth.
  std::vector<double> ap_per_class;
  /// C: the class ids of the rows above, ascending: every id in gt_classes or det_classes.
  std::vector<std::int64_t> classes;
  /// T: the IoU thresholds of the columns above (options.iou_thresholds).
  std::vector<double> iou_thresholds;

  /// The twelve numbers in COCOeval.stats order (AP, AP50, AP75, APs, APm, APl, AR1, AR10,
  /// AR100, ARs, ARm, ARl).
  [[nodiscard]] std::array<double, 12> stats() const noexcept {
    return {ap,  ap50, ap75,  ap_small, ap_medium, ap_large,
            ar1, ar10, ar100, ar_small, ar_medium, ar_large};
  }
};

CVK_END_NAMESPACE
