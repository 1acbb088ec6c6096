// cvk — computer-vision kernels, header-only C++20.
// libFuzzer target: cvk::detection_ap on decoded detections and ground truths (float or double
// boxes). Checked against the contract of docs/eval.md: invalid input (NaN score or coordinate,
// thresholds outside [0, 1], bad max_detections, a format outside the enum) throws a
// cvk::error and valid input does not; every number is in [0, 1] or -1 (NaN for the sized ones
// without area ranges); AR1 <= AR10 <= AR100; results do not depend on the thread count; and
// detections equal to the ground truths (positive areas) score AP 1.
// Input layout: byte 0: bit 4 double, bit 5 "perfect detections"; the options; D, G; the boxes,
// scores, classes, images and crowd flags (fuzz_input.hpp).
// SPDX-License-Identifier: MIT
#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include <cvk/core.hpp>
#include <cvk/eval.hpp>

#include "fuzz/fuzz_input.hpp"

namespace {

using cvk::index_t;
using cvk_fuzz::byte_reader;

bool same_bits(double a, double b) { return (std::isnan(a) && std::isnan(b)) || a == b; }

template <class T>
void fuzz_ap(byte_reader& in, bool perfect) {
  cvk::detection_ap_options o;
  const std::uint8_t flags = in.u8();
  bool valid = true;
  if ((flags & 1U) != 0) {
    o.iou_thresholds.clear();
    const std::size_t count = in.u8() % 4;
    for (std::size_t k = 0; k < count; ++k) {
      const double t = cvk_fuzz::threshold(in);
      valid = valid && t >= 0 && t <= 1;
      o.iou_thresholds.push_back(t);
    }
    valid = valid && !o.iou_thresholds.empty();
  }
  if ((flags & 2U) != 0 && !perfect) {
    o.max_detections.clear();
    const std::size_t count = 2 + in.u8() % 3;
    for (std::size_t k = 0; k < count; ++k) {
      const auto m = static_cast<index_t>(cvk_fuzz::count(in));
      valid = valid && m >= 0;
      o.max_detections.push_back(m);
    }
    valid = valid && o.max_detections.size() == 3;
  }
  o.area_ranges = (flags & 4U) == 0;
  const unsigned format = (flags >> 3U) % 5U;
  o.format = static_cast<cvk::box_format>(format);
  // perfect detections are compared in xyxy
  valid = valid && (format < 4 || perfect);

  const std::size_t g_count = in.u8() % 48;
  std::vector<std::array<T, 4>> gt = cvk_fuzz::boxes<T>(in, g_count);
  std::vector<int> gt_classes(g_count), gt_images(g_count);
  std::vector<unsigned char> crowd(g_count);
  for (std::size_t i = 0; i < g_count; ++i) {
    gt_classes[i] = static_cast<int>(in.u8() % 3);
    gt_images[i] = static_cast<int>(in.u8() % 4) - 1;
    crowd[i] = perfect ? 0 : static_cast<unsigned char>((in.u8() & 7U) == 0);
  }
  std::vector<std::array<T, 4>> det;
  std::vector<int> det_classes, det_images;
  if (perfect) {
    // the ground truths that can be matched: finite, positive sides in xyxy
    o.format = cvk::box_format::xyxy;
    std::vector<std::size_t> keep;
    for (std::size_t i = 0; i < g_count; ++i) {
      const auto& b = gt[i];
      if (cvk_fuzz::finite(b) && b[2] > b[0] && b[3] > b[1]) keep.push_back(i);
    }
    std::vector<std::array<T, 4>> kept_gt;
    std::vector<int> kept_classes, kept_images;
    for (const std::size_t i : keep) {
      kept_gt.push_back(gt[i]);
      kept_classes.push_back(gt_classes[i]);
      kept_images.push_back(gt_images[i]);
    }
    gt = kept_gt;
    gt_classes = kept_classes;
    gt_images = kept_images;
    crowd.assign(gt.size(), 0);
    det = gt;
    det_classes = gt_classes;
    det_images = gt_images;
  } else {
    const std::size_t d_count = in.u8() % 64;
    det = cvk_fuzz::boxes<T>(in, d_count);
    for (std::size_t i = 0; i < d_count; ++i) {
      det_classes.push_back(static_cast<int>(in.u8() % 4));
      det_images.push_back(static_cast<int>(in.u8() % 4) - 1);
    }
  }
  std::vector<T> det_scores = cvk_fuzz::scores<T>(in, det.size());
  for (const auto& b : det)
    valid =
        valid && !std::isnan(b[0]) && !std::isnan(b[1]) && !std::isnan(b[2]) && !std::isnan(b[3]);
  for (const auto& b : gt)
    valid =
        valid && !std::isnan(b[0]) && !std::isnan(b[1]) && !std::isnan(b[2]) && !std::isnan(b[3]);
  for (const T s : det_scores) valid = valid && !std::isnan(s);

  cvk::detection_ap_result one, two;
  const bool threw = cvk_fuzz::throws_cvk_error([&] {
    o.threads = 1;
    one = cvk::detection_ap(det, det_scores, det_classes, det_images, gt, gt_classes, gt_images,
                            crowd, o);
    o.threads = 2;
    two = cvk::detection_ap(det, det_scores, det_classes, det_images, gt, gt_classes, gt_images,
                            crowd, o);
  });
  CVK_FUZZ_CHECK(threw == !valid, "detection_ap: valid input ", valid, " but threw ", threw,
                 " (format ", format, ", ", o.iou_thresholds.size(), " thresholds, ",
                 o.max_detections.size(), " max_detections, ", det.size(), " detections, ",
                 gt.size(), " ground truths)");
  if (threw) return;
  const auto stats = one.stats();
  const auto stats2 = two.stats();
  for (std::size_t k = 0; k < 12; ++k) {
    CVK_FUZZ_CHECK(same_bits(stats[k], stats2[k]), "detection_ap: stats[", k, "] ", stats[k],
                   " with 1 thread, ", stats2[k], " with 2");
    const bool sized = k == 3 || k == 4 || k == 5 || k >= 9;
    const double v = stats[k];
    const bool ok = (v >= 0 && v <= 1) || v == -1 || (sized && !o.area_ranges && std::isnan(v));
    CVK_FUZZ_CHECK(ok, "detection_ap: stats[", k, "] = ", v);
  }
  CVK_FUZZ_CHECK(one.ap_per_class.size() == two.ap_per_class.size() &&
                     std::equal(one.ap_per_class.begin(), one.ap_per_class.end(),
                                two.ap_per_class.begin(), same_bits),
                 "detection_ap: ap_per_class depends on the thread count");
  if (one.ar1 != -1 && one.ar10 != -1 && one.ar100 != -1) {
    CVK_FUZZ_CHECK(one.ar1 <= one.ar10 + 1e-12 && one.ar10 <= one.ar100 + 1e-12,
                   "detection_ap: AR1 ", one.ar1, ", AR10 ", one.ar10, ", AR100 ", one.ar100,
                   " not increasing");
  }
  if (perfect) {
    // every ground truth is found by its own detection at IoU 1: AP 1 (COCOeval's precision
    // is tp / (tp + fp + 2^-52)), or -1 when every ground truth is outside the "all" range
    for (const double v : {one.ap, one.ap50, one.ap75, one.ar100}) {
      CVK_FUZZ_CHECK(v == -1 || std::fabs(v - 1) <= 1e-9, "detection_ap: perfect detections of ",
                     gt.size(), " ground truths score ", v);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  byte_reader in(data, size);
  const std::uint8_t head = in.u8();
  const bool perfect = (head & 32U) != 0;
  if ((head & 16U) != 0) {
    fuzz_ap<double>(in, perfect);
  } else {
    fuzz_ap<float>(in, perfect);
  }
  return 0;
}
