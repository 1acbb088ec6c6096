// cvk — computer-vision kernels, header-only C++20.
// The algorithm of detection_ap (<cvk/eval/detection_ap.hpp>): pycocotools' COCOeval for boxes.
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
#include "../../box/format.hpp"
#include "../../core/as_view.hpp"
#include "../../core/config.hpp"
#include "../../core/errors.hpp"
#include "../../core/parallel.hpp"
#include "../../core/tensor.hpp"
#include "../../detail/checks.hpp"
#include "../../nms/detail/overlap.hpp"
#include "../detection_ap_types.hpp"

CVK_BEGIN_NAMESPACE
CVK_KERNEL_BEGIN
namespace detail {

/// A box as pycocotools stores it: x, y, w, h and the area w·h, in double.
struct coco_box {
  double x = 0;
  double y = 0;
  double w = 0;
  double h = 0;
  double area = 0;
};

/// One row in `format` → pycocotools' xywh (converted directly: w = x2 - x1; cxcywh keeps w, h).
inline coco_box make_coco_box(const std::array<double, 4>& b, box_format format) noexcept {
  coco_box c;
  switch (format) {
    case box_format::xyxy:
      c = {b[0], b[1], b[2] - b[0], b[3] - b[1], 0};
      break;
    case box_format::xywh:
      c = {b[0], b[1], b[2], b[3], 0};
      break;
    case box_format::cxcywh:
      c = {b[0] - 0.5 * b[2], b[1] - 0.5 * b[3], b[2], b[3], 0};
      break;
    case box_format::yxyx:
      c = {b[1], b[0], b[3] - b[1], b[2] - b[0], 0};
      break;
  }
  const double area = c.w * c.h;
  c.area = area;
  return c;
}

/// COCOeval's recall thresholds np.linspace(0, 1, 101): i·0.01 + 0, the last exactly 1.
inline std::array<double, 101> coco_recall_thresholds() noexcept {
  std::array<double, 101> r{};
  const double step = 1.0 / 100.0;
  for (std::size_t i = 0; i < 100; ++i) {
    const double v = static_cast<double>(i) * step;
    r[i] = v + 0.0;
  }
  r[100] = 1.0;
  return r;
}

/// COCOeval's area ranges: all, small, medium, large (bounds inclusive on both sides).
inline constexpr std::array<std::array<double, 2>, 4> coco_area_ranges{
    {{0.0, 1e10}, {0.0, 1024.0}, {1024.0, 9216.0}, {9216.0, 1e10}}};

/// One detection after validation: its box, score, class and image as int64, input index.
struct ap_detection {
  coco_box box;
  double score = 0;
  std::int64_t cls = 0;
  std::int64_t image = 0;
  index_t index = 0;
};

/// One ground truth after validation.
struct ap_ground_truth {
  coco_box box;
  std::int64_t cls = 0;
  std::int64_t image = 0;
  bool crowd = false;
};

/// An id of any integer type as int64; throws when it does not fit.
template <class I>
std::int64_t ap_id(I value, const char* fn, const char* argument) {
  static_assert(std::is_integral_v<I> && !std::is_same_v<I, bool>,
                "cvk: detection_ap class and image ids must be integer tensors");
  if constexpr (std::is_unsigned_v<I> && sizeof(I) >= sizeof(std::int64_t)) {
    if (value > static_cast<I>(std::numeric_limits<std::int64_t>::max())) {
      CVK_THROW(invalid_argument,
                std::string(fn) + ": " + argument +
                    " holds an id that does not fit in int64: " + std::to_string(value));
    }
  }
  return static_cast<std::int64_t>(value);
}

/// Results of one class: per area range a, max_detections m and threshold t, the mean
/// interpolated precision and the recall (-1 without ground truth), at [(a·M + m)·T + t].
struct ap_class_result {
  std::vector<double> precision;
  std::vector<double> recall;
};

/// Evaluates one class: `dets` (sorted by image, then score descending, then index) and `gts`
/// (sorted by image, then index) of that class. COCOeval's evaluateImg for every image and area
/// range, then accumulate.
class ap_class_evaluator {
 public:
  ap_class_evaluator(const std::vector<double>& thresholds, const std::vector<index_t>& max_dets,
                     std::size_t areas)
      : thresholds_(thresholds), max_dets_(max_dets), areas_(areas) {}

  ap_class_result evaluate(const ap_detection* dets, std::size_t n_dets, const ap_ground_truth* gts,
                           std::size_t n_gts) {
    const std::size_t n_thr = thresholds_.size();
    const std::size_t n_max = max_dets_.size();
    const auto largest = static_cast<std::size_t>(max_dets_.back());
    entries_.clear();
    flags_.clear();
    npig_.assign(areas_, 0);

    // Per image (ascending id, union of both lists): the kept detections become entries in
    // COCOeval's concatenation order (image by image, score descending within an image).
    std::size_t di = 0;
    std::size_t gi = 0;
    while (di < n_dets || gi < n_gts) {
      std::int64_t image;
      if (di < n_dets && gi < n_gts) {
        image = std::min(dets[di].image, gts[gi].image);
      } else {
        image = di < n_dets ? dets[di].image : gts[gi].image;
      }
      std::size_t d_end = di;
      while (d_end < n_dets && dets[d_end].image == image) ++d_end;
      std::size_t g_end = gi;
      while (g_end < n_gts && gts[g_end].image == image) ++g_end;
      evaluate_image(dets + di, std::min(d_end - di, largest), gts + gi, g_end - gi);
      di = d_end;
      gi = g_end;
    }

    // accumulate: all entries in score order (stable: equal scores keep concatenation order).
    const std::size_t n_entries = entries_.size();
    order_.resize(n_entries);
    for (std::size_t e = 0; e < n_entries; ++e) order_[e] = e;
    std::stable_sort(order_.begin(), order_.end(), [this](std::size_t a, std::size_t b) {
      return entries_[a].score > entries_[b].score;
    });
    // Entries and their flags in that order, so that every pass below reads memory in order.
    const std::size_t row = areas_ * n_thr;
    sorted_rank_.resize(n_entries);
    sorted_flags_.resize(n_entries * row);
    for (std::size_t pos = 0; pos < n_entries; ++pos) {
      const std::size_t e = order_[pos];
      sorted_rank_[pos] = entries_[e].rank;
      std::copy_n(flags_.begin() + static_cast<std::ptrdiff_t>(e * row), row,
                  sorted_flags_.begin() + static_cast<std::ptrdiff_t>(pos * row));
    }

    ap_class_result result;
    result.precision.assign(areas_ * n_max * n_thr, -1.0);
    result.recall.assign(areas_ * n_max * n_thr, -1.0);
    const std::array<double, 101> rec_thrs = coco_recall_thresholds();
    rc_.resize(n_entries);
    pr_.resize(n_entries);
    constexpr double eps = std::numeric_limits<double>::epsilon();  // np.spacing(1)
    for (std::size_t a = 0; a < areas_; ++a) {
      if (npig_[a] == 0) continue;
      const auto npig = static_cast<double>(npig_[a]);
      for (std::size_t m = 0; m < n_max; ++m) {
        const auto max_det = max_dets_[m];
        for (std::size_t t = 0; t < n_thr; ++t) {
          const std::size_t column = a * n_thr + t;
          // COCOeval computes recall tp/npig and precision tp/(tp + fp + 2^-52) at every
          // position of the ranking, makes the precision non-increasing from the right and reads
          // it at the first position whose recall reaches each threshold. Recall grows only at
          // true positives, and every other position's precision is at most that of the true
          // positive before it (or 0 before the first), so only the true positives' values are
          // computed: the same doubles, the same maxima.
          double* rc = rc_.data();
          double* pr = pr_.data();
          double tp = 0;
          double fp = 0;
          std::size_t n_tp = 0;
          for (std::size_t pos = 0; pos < n_entries; ++pos) {
            if (sorted_rank_[pos] >= max_det) continue;
            const unsigned char flag = sorted_flags_[pos * row + column];
            if ((flag & ignored) != 0) continue;
            if ((flag & matched) == 0) {
              fp += 1;
              continue;
            }
            tp += 1;
            rc[n_tp] = tp / npig;
            const double total = fp + tp;
            pr[n_tp] = tp / (total + eps);
            ++n_tp;
          }
          const std::size_t slot = (a * n_max + m) * n_thr + t;
          result.recall[slot] = tp / npig;  // the last recall; 0 without detections
          for (std::size_t i = n_tp; i-- > 1;) {
            if (pr[i] > pr[i - 1]) pr[i - 1] = pr[i];
          }
          // np.searchsorted(rc, recThrs, side='left'): the first position with recall >= r;
          // past the end the precision stays 0.
          double sum = 0;
          std::size_t pos = 0;
          for (const double r : rec_thrs) {
            while (pos < n_tp && rc[pos] < r) ++pos;
            if (pos == n_tp) break;
            sum += pr[pos];
          }
          result.precision[slot] = sum / static_cast<double>(rec_thrs.size());
        }
      }
    }
    return result;
  }

 private:
  static constexpr unsigned char matched = 1;
  static constexpr unsigned char ignored = 2;

  struct entry {
    double score;
    index_t rank;  // position within its image, score descending
  };

  /// COCOeval.evaluateImg for one image and every area range: greedy matching per threshold.
  void evaluate_image(const ap_detection* dets, std::size_t n_det, const ap_ground_truth* gts,
                      std::size_t n_gt) {
    const std::size_t n_thr = thresholds_.size();
    const std::size_t first = entries_.size();
    for (std::size_t d = 0; d < n_det; ++d) {
      entries_.push_back({dets[d].score, static_cast<index_t>(d)});
    }
    const std::size_t row = areas_ * n_thr;  // flags of one entry: [a·T + t]
    flags_.resize(entries_.size() * row, 0);
    // IoU of every (detection, ground truth) pair, ground truths in input order.
    iou_.resize(n_det * n_gt);
    for (std::size_t d = 0; d < n_det; ++d) {
      for (std::size_t g = 0; g < n_gt; ++g) {
        iou_[d * n_gt + g] = pycocotools_iou(dets[d].box, gts[g].box, gts[g].crowd);
      }
    }
    for (std::size_t a = 0; a < areas_; ++a) {
      const double lo = coco_area_ranges[a][0];
      const double hi = coco_area_ranges[a][1];
      // Ground truths not ignored first, then ignored ones (a stable partition).
      gt_order_.clear();
      gt_ignored_.clear();
      for (int pass = 0; pass < 2; ++pass) {
        for (std::size_t g = 0; g < n_gt; ++g) {
          const double area = gts[g].box.area;
          const bool ig = gts[g].crowd || area < lo || area > hi;
          if (ig == (pass == 1)) {
            gt_order_.push_back(g);
            gt_ignored_.push_back(ig ? 1 : 0);
          }
        }
      }
      for (const unsigned char ig : gt_ignored_) npig_[a] += ig == 0 ? 1 : 0;
      // Without detections there is nothing to flag, and flags_ may be empty: no pointer into it
      // is formed (an offset from its null data() is undefined behaviour).
      if (n_det == 0) continue;
      for (std::size_t t = 0; t < n_thr; ++t) {
        unsigned char* f = flags_.data() + first * row + a * n_thr + t;  // entry d at f[d·row]
        gt_taken_.assign(n_gt, 0);
        const double start = std::min(thresholds_[t], 1 - 1e-10);
        for (std::size_t d = 0; d < n_det; ++d) {
          double best = start;
          std::ptrdiff_t m = -1;
          for (std::size_t k = 0; k < n_gt; ++k) {
            const std::size_t g = gt_order_[k];
            if (gt_taken_[k] != 0 && !gts[g].crowd) continue;
            if (m > -1 && gt_ignored_[static_cast<std::size_t>(m)] == 0 && gt_ignored_[k] == 1) {
              break;
            }
            const double iou = iou_[d * n_gt + g];
            if (iou < best) continue;
            best = iou;
            m = static_cast<std::ptrdiff_t>(k);
          }
          if (m == -1) continue;
          const auto mk = static_cast<std::size_t>(m);
          f[d * row] = static_cast<unsigned char>(matched | (gt_ignored_[mk] != 0 ? ignored : 0));
          gt_taken_[mk] = 1;
        }
        // Unmatched detections outside the area range are ignored.
        for (std::size_t d = 0; d < n_det; ++d) {
          const double area = dets[d].box.area;
          if ((f[d * row] & matched) == 0 && (area < lo || area > hi)) f[d * row] = ignored;
        }
      }
    }
  }

  const std::vector<double>& thresholds_;
  const std::vector<index_t>& max_dets_;
  std::size_t areas_;
  std::vector<entry> entries_;
  std::vector<unsigned char> flags_;  // [e·A·T + a·T + t]: matched / ignored bits
  std::vector<std::size_t> npig_;     // per area: ground truths not ignored
  std::vector<std::size_t> order_;
  std::vector<index_t> sorted_rank_;
  std::vector<unsigned char> sorted_flags_;
  std::vector<double> rc_;
  std::vector<double> pr_;
  std::vector<double> iou_;
  std::vector<std::size_t> gt_order_;
  std::vector<unsigned char> gt_ignored_;  // in gt_order_ order
  std::vector<unsigned char> gt_taken_;    // in gt_order_ order
};

/// Mean of the entries > -1 of `values` at the given indices; -1 when there is none
/// (COCOeval.summarize's np.mean(s[s > -1])).
inline double ap_mean_valid(const std::vector<double>& values,
                            const std::vector<std::size_t>& slots) {
  double sum = 0;
  std::size_t count = 0;
  for (const std::size_t s : slots) {
    if (values[s] > -1) {
      sum += values[s];
      ++count;
    }
  }
  return count == 0 ? -1.0 : sum / static_cast<double>(count);
}

}  // namespace detail
CVK_KERNEL_END

namespace detail {

/// Checks the options; returns max_detections sorted.
inline std::vector<index_t> check_detection_ap_options(const detection_ap_options& options,
                                                       const char* fn) {
  check_format(options.format, fn, "options.format");
  if (options.iou_thresholds.empty()) {
    CVK_THROW(invalid_argument, std::string(fn) + ": iou_thresholds must not be empty");
  }
  for (const double t : options.iou_thresholds) {
    if (!(t >= 0 && t <= 1)) {
      CVK_THROW(invalid_argument, std::string(fn) + ": iou_thresholds must be in [0, 1], got " +
                                      detail::number_string(t));
    }
  }
  if (options.max_detections.size() != 3) {
    CVK_THROW(invalid_argument, std::string(fn) + ": max_detections must hold 3 values, got " +
                                    std::to_string(options.max_detections.size()));
  }
  for (const index_t m : options.max_detections) {
    if (m < 0) {
      CVK_THROW(invalid_argument,
                std::string(fn) + ": max_detections must be >= 0, got " + std::to_string(m));
    }
  }
  std::vector<index_t> sorted = options.max_detections;
  std::sort(sorted.begin(), sorted.end());
  return sorted;
}

/// Reads and checks a box row (NaN coordinates are rejected).
template <class View>
coco_box read_ap_box(const View& boxes, index_t i, box_format format, const char* fn,
                     const char* argument) {
  const auto b = load_box<double>(boxes, i);
  for (const double v : b) {
    if (std::isnan(v)) {
      CVK_THROW(invalid_argument, std::string(fn) + ": " + argument + " row " + std::to_string(i) +
                                      " has a NaN coordinate");
    }
  }
  return make_coco_box(b, format);
}

/// The whole evaluation on checked views; `crowd` is null or has one flag per ground truth.
template <class DB, class DS, class DC, class DI, class GB, class GC, class GI>
detection_ap_result detection_ap_impl(const DB& db, const DS& ds, const DC& dc, const DI& dimg,
                                      const GB& gb, const GC& gc, const GI& gimg,
                                      const std::vector<unsigned char>* crowd,
                                      const detection_ap_options& options, const char* fn) {
  static_assert(std::is_arithmetic_v<typename DB::value_type> &&
                    std::is_arithmetic_v<typename GB::value_type>,
                "cvk: detection_ap boxes must be arithmetic");
  static_assert(std::is_arithmetic_v<typename DS::value_type>,
                "cvk: detection_ap scores must be arithmetic");
  const std::vector<index_t> max_dets = check_detection_ap_options(options, fn);
  expect_shape(db, {any_extent, 4}, fn, "det_boxes", "D×4");
  expect_shape(gb, {any_extent, 4}, fn, "gt_boxes", "G×4");
  const index_t n_det = db.extent(0);
  const index_t n_gt = gb.extent(0);
  const auto expect_length = [fn](index_t got, index_t want, const char* argument,
                                  const char* per) {
    if (got != want) {
      CVK_THROW(shape_error, std::string(fn) + ": " + argument + " must have " +
                                 std::to_string(want) + " elements (one per " + per + "), got " +
                                 std::to_string(got));
    }
  };
  expect_length(ds.extent(0), n_det, "det_scores", "detection");
  expect_length(dc.extent(0), n_det, "det_classes", "detection");
  expect_length(dimg.extent(0), n_det, "det_images", "detection");
  expect_length(gc.extent(0), n_gt, "gt_classes", "ground truth");
  expect_length(gimg.extent(0), n_gt, "gt_images", "ground truth");
  if (crowd != nullptr) {
    expect_length(static_cast<index_t>(crowd->size()), n_gt, "gt_iscrowd", "ground truth");
  }

  auto dets = checked_vector<ap_detection>(n_det, fn, "det_boxes", db);
  for (index_t i = 0; i < n_det; ++i) {
    ap_detection& d = dets[static_cast<std::size_t>(i)];
    d.score = static_cast<double>(ds(i));
    if (std::isnan(d.score)) {
      CVK_THROW(invalid_argument,
                std::string(fn) + ": det_scores[" + std::to_string(i) + "] is NaN");
    }
    d.box = read_ap_box(db, i, options.format, fn, "det_boxes");
    d.cls = ap_id(dc(i), fn, "det_classes");
    d.image = ap_id(dimg(i), fn, "det_images");
    d.index = i;
  }
  auto gts = checked_vector<ap_ground_truth>(n_gt, fn, "gt_boxes", gb);
  for (index_t i = 0; i < n_gt; ++i) {
    ap_ground_truth& g = gts[static_cast<std::size_t>(i)];
    g.box = read_ap_box(gb, i, options.format, fn, "gt_boxes");
    g.cls = ap_id(gc(i), fn, "gt_classes");
    g.image = ap_id(gimg(i), fn, "gt_images");
    g.crowd = crowd != nullptr && (*crowd)[static_cast<std::size_t>(i)] != 0;
  }
  // Detections by (class, image, score descending, input index): within an image COCOeval's
  // stable sort on -score; ground truths by (class, image, input index).
  std::sort(dets.begin(), dets.end(), [](const ap_detection& a, const ap_detection& b) {
    if (a.cls != b.cls) return a.cls < b.cls;
    if (a.image != b.image) return a.image < b.image;
    if (a.score != b.score) return a.score > b.score;
    return a.index < b.index;
  });
  std::stable_sort(gts.begin(), gts.end(), [](const ap_ground_truth& a, const ap_ground_truth& b) {
    if (a.cls != b.cls) return a.cls < b.cls;
    return a.image < b.image;
  });

  // Classes: the union of both lists, each with its ranges of dets and gts.
  detection_ap_result result;
  std::vector<std::array<std::size_t, 4>> ranges;  // det begin, det end, gt begin, gt end
  {
    std::size_t di = 0;
    std::size_t gi = 0;
    while (di < dets.size() || gi < gts.size()) {
      std::int64_t c;
      if (di < dets.size() && gi < gts.size()) {
        c = std::min(dets[di].cls, gts[gi].cls);
      } else {
        c = di < dets.size() ? dets[di].cls : gts[gi].cls;
      }
      std::array<std::size_t, 4> r{di, di, gi, gi};
      while (r[1] < dets.size() && dets[r[1]].cls == c) ++r[1];
      while (r[3] < gts.size() && gts[r[3]].cls == c) ++r[3];
      result.classes.push_back(c);
      ranges.push_back(r);
      di = r[1];
      gi = r[3];
    }
  }

  const std::size_t n_cls = result.classes.size();
  const std::size_t n_thr = options.iou_thresholds.size();
  const std::size_t n_max = max_dets.size();
  const std::size_t n_areas = options.area_ranges ? 4 : 1;
  std::vector<ap_class_result> per_class(n_cls);
  parallel_for(
      0, static_cast<index_t>(n_cls), 1,
      [&](index_t lo, index_t hi) {
        ap_class_evaluator evaluator(options.iou_thresholds, max_dets, n_areas);
        for (index_t k = lo; k < hi; ++k) {
          const auto& r = ranges[static_cast<std::size_t>(k)];
          per_class[static_cast<std::size_t>(k)] =
              evaluator.evaluate(dets.data() + r[0], r[1] - r[0], gts.data() + r[2], r[3] - r[2]);
        }
      },
      options.threads);

  // Summaries: means over the valid (class, threshold) entries, as COCOeval.summarize.
  std::vector<double> precision(n_cls * n_areas * n_max * n_thr);
  std::vector<double> recall(n_cls * n_areas * n_max * n_thr);
  for (std::size_t k = 0; k < n_cls; ++k) {
    std::copy(per_class[k].precision.begin(), per_class[k].precision.end(),
              precision.begin() + static_cast<std::ptrdiff_t>(k * n_areas * n_max * n_thr));
    std::copy(per_class[k].recall.begin(), per_class[k].recall.end(),
              recall.begin() + static_cast<std::ptrdiff_t>(k * n_areas * n_max * n_thr));
  }
  const auto slots = [&](std::size_t a, std::size_t m, double only_threshold) {
    std::vector<std::size_t> s;
    for (std::size_t k = 0; k < n_cls; ++k) {
      for (std::size_t t = 0; t < n_thr; ++t) {
        if (!std::isnan(only_threshold) && !(options.iou_thresholds[t] == only_threshold)) continue;
        s.push_back(((k * n_areas + a) * n_max + m) * n_thr + t);
      }
    }
    return s;
  };
  constexpr double every = std::numeric_limits<double>::quiet_NaN();
  const std::size_t last = n_max - 1;
  result.ap = ap_mean_valid(precision, slots(0, last, every));
  result.ap50 = ap_mean_valid(precision, slots(0, last, 0.5));
  result.ap75 = ap_mean_valid(precision, slots(0, last, 0.75));
  result.ar1 = ap_mean_valid(recall, slots(0, 0, every));
  result.ar10 = ap_mean_valid(recall, slots(0, 1, every));
  result.ar100 = ap_mean_valid(recall, slots(0, 2, every));
  if (options.area_ranges) {
    result.ap_small = ap_mean_valid(precision, slots(1, last, every));
    result.ap_medium = ap_mean_valid(precision, slots(2, last, every));
    result.ap_large = ap_mean_valid(precision, slots(3, last, every));
    result.ar_small = ap_mean_valid(recall, slots(1, last, every));
    result.ar_medium = ap_mean_valid(recall, slots(2, last, every));
    result.ar_large = ap_mean_valid(recall, slots(3, last, every));
  } else {
    result.ap_small = result.ap_medium = result.ap_large = every;
    result.ar_small = result.ar_medium = result.ar_large = every;
  }

  const auto rows = static_cast<index_t>(n_cls);
  const auto cols = static_cast<index_t>(n_thr);
  result.ap_per_class_and_threshold = tensor<double, 2>(rows, cols);
  result.ar_per_class_and_threshold = tensor<double, 2>(rows, cols);
  result.ap_per_class.assign(n_cls, -1.0);
  for (std::size_t k = 0; k < n_cls; ++k) {
    double sum = 0;
    std::size_t count = 0;
    for (std::size_t t = 0; t < n_thr; ++t) {
      const std::size_t s = ((k * n_areas + 0) * n_max + last) * n_thr + t;
      const auto i = static_cast<index_t>(k);
      const auto j = static_cast<index_t>(t);
      result.ap_per_class_and_threshold(i, j) = precision[s];
      result.ar_per_class_and_threshold(i, j) = recall[s];
      if (precision[s] > -1) {
        sum += precision[s];
        ++count;
      }
    }
    if (count != 0) result.ap_per_class[k] = sum / static_cast<double>(count);
  }
  result.iou_thresholds = options.iou_thresholds;
  return result;
}

}  // namespace detail

CVK_END_NAMESPACE
