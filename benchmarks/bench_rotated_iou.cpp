// cvk — computer-vision kernels, header-only C++20.
// rotated_box_iou 1000×1000 on a sparse and a dense scene against OpenCV's
// cv::rotatedRectangleIntersection + cv::contourArea computing the same matrix. Pairs per second.
// SPDX-License-Identifier: MIT
#include <benchmark/benchmark.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "common.hpp"
#include "cvk/cvk.hpp"

#if defined(CVK_BENCH_HAS_OPENCV)
#  include <opencv2/core/types.hpp>
#  include <opencv2/imgproc.hpp>
#endif

namespace {

using cvk_bench::type_name;

template <class T>
using rotated_boxes_t = std::vector<std::array<T, 5>>;

/// Sizes of both box sets (the matrix is box_count × box_count).
constexpr std::size_t box_count = 1000;

enum class scene { sparse, dense };

const char* scene_name(scene s) { return s == scene::sparse ? "sparse" : "dense"; }

/// Boxes (cx, cy, w, h, angle in degrees, counter-clockwise), the same on every run.
///   sparse: centres uniform over a 1000×1000 image, sides in [5, 50): most pairs are apart.
///   dense:  centres within ±12 px of one of three nearby points, sides in [20, 60): most pairs
///           overlap (the fraction is reported as the counter `overlapping`).
template <class T>
const rotated_boxes_t<T>& scene_boxes(scene s, std::size_t set) {
  static std::map<std::pair<int, std::size_t>, rotated_boxes_t<T>> cache;
  auto [it, inserted] = cache.try_emplace({static_cast<int>(s), set});
  if (inserted) {
    cvk::rng gen(2019, 100 + 2 * set + (s == scene::dense ? 1 : 0));
    constexpr std::array<std::array<double, 2>, 3> centres = {
        {{500.0, 500.0}, {525.0, 510.0}, {510.0, 530.0}}};
    it->second.resize(box_count);
    for (auto& box : it->second) {
      if (s == scene::sparse) {
        box = {static_cast<T>(gen.uniform(0.0, 1000.0)), static_cast<T>(gen.uniform(0.0, 1000.0)),
               static_cast<T>(gen.uniform(5.0, 50.0)), static_cast<T>(gen.uniform(5.0, 50.0)),
               static_cast<T>(gen.uniform(-180.0, 180.0))};
      } else {
        const auto& c = centres[gen.below(centres.size())];
        box = {static_cast<T>(c[0] + gen.uniform(-12.0, 12.0)),
               static_cast<T>(c[1] + gen.uniform(-12.0, 12.0)),
               static_cast<T>(gen.uniform(20.0, 60.0)), static_cast<T>(gen.uniform(20.0, 60.0)),
               static_cast<T>(gen.uniform(-180.0, 180.0))};
      }
    }
  }
  return it->second;
}

std::string bench_name(const char* op, const char* impl, const char* type, scene s) {
  return std::string(op) + "/" + impl + "/" + type + "/scene:" + scene_name(s) +
         "/N:" + std::to_string(box_count) + "/M:" + std::to_string(box_count) + "/threads:1";
}

template <class T>
double overlapping_fraction(const cvk::tensor<T, 2>& iou) {
  const auto positive = std::count_if(iou.begin(), iou.end(), [](T v) { return v > T(0); });
  return static_cast<double>(positive) / static_cast<double>(iou.size());
}

template <class T, bool Generalized>
void cvk_rotated(benchmark::State& state, scene s) {
  const auto& boxes1 = scene_boxes<T>(s, 0);
  const auto& boxes2 = scene_boxes<T>(s, 1);
  cvk::tensor<T, 2> result(box_count, box_count);
  const cvk::rotated_options options{.threads = 1};
  for ([[maybe_unused]] auto iteration : state) {
    if constexpr (Generalized) {
      cvk::rotated_generalized_box_iou(boxes1, boxes2, result, options);
    } else {
      cvk::rotated_box_iou(boxes1, boxes2, result, options);
    }
    benchmark::DoNotOptimize(result.data());
    benchmark::ClobberMemory();
  }
  cvk_bench::set_items(state, box_count * box_count);
  if constexpr (!Generalized) state.counters["overlapping"] = overlapping_fraction(result);
  state.SetLabel(Generalized ? "cvk::rotated_generalized_box_iou(boxes1, boxes2, out), 1 thread"
                             : "cvk::rotated_box_iou(boxes1, boxes2, out), 1 thread");
}

#if defined(CVK_BENCH_HAS_OPENCV)
// OpenCV's RotatedRect turns clockwise on the image (width axis (cos a, sin a)), so a
// counter-clockwise angle a is the RotatedRect angle -a. The IoU is the intersection polygon's
// contourArea over the union, for every pair (cv::dnn's rotatedRectIOU returns 1 for nested
// boxes instead; that is not the IoU).
template <class T>
std::vector<cv::RotatedRect> to_opencv(const rotated_boxes_t<T>& boxes) {
  std::vector<cv::RotatedRect> rects;
  rects.reserve(boxes.size());
  for (const auto& b : boxes) {
    rects.emplace_back(cv::Point2f(static_cast<float>(b[0]), static_cast<float>(b[1])),
                       cv::Size2f(static_cast<float>(b[2]), static_cast<float>(b[3])),
                       -static_cast<float>(b[4]));
  }
  return rects;
}

void opencv_iou_matrix(const std::vector<cv::RotatedRect>& rects1,
                       const std::vector<cv::RotatedRect>& rects2, std::vector<float>& out,
                       std::vector<cv::Point2f>& polygon) {
  for (std::size_t i = 0; i < rects1.size(); ++i) {
    const float area1 = rects1[i].size.area();
    for (std::size_t j = 0; j < rects2.size(); ++j) {
      float iou = 0.0F;
      const int kind = cv::rotatedRectangleIntersection(rects1[i], rects2[j], polygon);
      if (kind != cv::INTERSECT_NONE && polygon.size() > 2) {
        const auto inter = static_cast<float>(cv::contourArea(polygon));
        iou = inter / (area1 + rects2[j].size.area() - inter);
      }
      out[i * rects2.size() + j] = iou;
    }
  }
}

void opencv_rotated(benchmark::State& state, scene s) {
  const auto rects1 = to_opencv(scene_boxes<float>(s, 0));
  const auto rects2 = to_opencv(scene_boxes<float>(s, 1));
  std::vector<float> result(box_count * box_count);
  std::vector<cv::Point2f> polygon;
  polygon.reserve(16);
  // The same matrix as cvk's (OpenCV computes in float with its own tolerances).
  opencv_iou_matrix(rects1, rects2, result, polygon);
  const auto expected = cvk::rotated_box_iou(scene_boxes<double>(s, 0), scene_boxes<double>(s, 1),
                                             cvk::rotated_options{.threads = 1});
  double worst = 0.0;
  for (std::size_t k = 0; k < result.size(); ++k) {
    worst = std::max(worst, std::fabs(static_cast<double>(result[k]) - expected.data()[k]));
  }
  if (worst > 1e-3) state.SkipWithError("OpenCV's matrix differs from cvk's by more than 1e-3");
  for ([[maybe_unused]] auto iteration : state) {
    opencv_iou_matrix(rects1, rects2, result, polygon);
    benchmark::DoNotOptimize(result.data());
    benchmark::ClobberMemory();
  }
  cvk_bench::set_items(state, box_count * box_count);
  state.counters["max_abs_diff_vs_cvk"] = worst;
  state.SetLabel("cv::rotatedRectangleIntersection + cv::contourArea per pair");
}
#endif

const bool registered = [] {
  for (const scene s : {scene::sparse, scene::dense}) {
    cvk_bench::add(bench_name("rotated_box_iou", "cvk", type_name<float>(), s),
                   [s](benchmark::State& st) { cvk_rotated<float, false>(st, s); });
#if defined(CVK_BENCH_HAS_OPENCV)
    cvk_bench::add(bench_name("rotated_box_iou", "opencv", type_name<float>(), s),
                   [s](benchmark::State& st) { opencv_rotated(st, s); });
#endif
    cvk_bench::add(bench_name("rotated_generalized_box_iou", "cvk", type_name<float>(), s),
                   [s](benchmark::State& st) { cvk_rotated<float, true>(st, s); });
  }
  return true;
}();

}  // namespace
