// cvk — computer-vision kernels, header-only C++20.
// box_area and box_convert (xyxy → cxcywh) against a plain loop compiled with the same flags
// and, when found, OpenCV's cv::Rect_<T>::area(). Throughput in boxes per second.
// SPDX-License-Identifier: MIT
#include <benchmark/benchmark.h>

#include <array>
#include <cstddef>
#include <string>
#include <vector>

#include "common.hpp"
#include "cvk/cvk.hpp"

#if defined(CVK_BENCH_HAS_OPENCV)
#  include <opencv2/core/types.hpp>
#endif

namespace {

using cvk_bench::type_name;

template <class T>
using boxes_t = std::vector<std::array<T, 4>>;

// The reference loops: what a user would write by hand for contiguous xyxy boxes.
template <class T>
void reference_box_area(const boxes_t<T>& boxes, std::vector<T>& areas) {
  for (std::size_t i = 0; i < boxes.size(); ++i) {
    const auto& b = boxes[i];
    areas[i] = (b[2] - b[0]) * (b[3] - b[1]);
  }
}

template <class T>
void reference_xyxy_to_cxcywh(const boxes_t<T>& boxes, boxes_t<T>& converted) {
  for (std::size_t i = 0; i < boxes.size(); ++i) {
    const auto& b = boxes[i];
    converted[i] = {(b[0] + b[2]) / T(2), (b[1] + b[3]) / T(2), b[2] - b[0], b[3] - b[1]};
  }
}

template <class T>
void cvk_box_area(benchmark::State& state, std::size_t n) {
  const auto& boxes = cvk_bench::random_boxes<T>(n);
  std::vector<T> areas(n);
  const std::string key = std::string("box_area/") + type_name<T>() + "/" + std::to_string(n);
  const bool agrees = cvk_bench::checked_once(key, [&] {
    std::vector<T> expected(n);
    cvk::box_area(boxes, areas);
    reference_box_area(boxes, expected);
    return areas == expected;
  });
  if (!agrees) state.SkipWithError("cvk::box_area disagrees with the reference loop");
  for ([[maybe_unused]] auto iteration : state) {
    cvk::box_area(boxes, areas);
    benchmark::DoNotOptimize(areas.data());
    benchmark::ClobberMemory();
  }
  cvk_bench::set_items(state, n);
  state.SetLabel("cvk::box_area(std::vector<std::array<T, 4>>, std::vector<T>&), xyxy");
}

template <class T>
void loop_box_area(benchmark::State& state, std::size_t n) {
  const auto& boxes = cvk_bench::random_boxes<T>(n);
  std::vector<T> areas(n);
  for ([[maybe_unused]] auto iteration : state) {
    reference_box_area(boxes, areas);
    benchmark::DoNotOptimize(areas.data());
    benchmark::ClobberMemory();
  }
  cvk_bench::set_items(state, n);
  state.SetLabel("hand-written loop over std::vector<std::array<T, 4>>, xyxy");
}

template <class T>
void cvk_box_convert(benchmark::State& state, std::size_t n) {
  const auto& boxes = cvk_bench::random_boxes<T>(n);
  boxes_t<T> converted(n);
  const std::string key = std::string("box_convert/") + type_name<T>() + "/" + std::to_string(n);
  const bool agrees = cvk_bench::checked_once(key, [&] {
    boxes_t<T> expected(n);
    cvk::box_convert(boxes, cvk::box_format::xyxy, cvk::box_format::cxcywh, converted);
    reference_xyxy_to_cxcywh(boxes, expected);
    return converted == expected;
  });
  if (!agrees) state.SkipWithError("cvk::box_convert disagrees with the reference loop");
  for ([[maybe_unused]] auto iteration : state) {
    cvk::box_convert(boxes, cvk::box_format::xyxy, cvk::box_format::cxcywh, converted);
    benchmark::DoNotOptimize(converted.data());
    benchmark::ClobberMemory();
  }
  cvk_bench::set_items(state, n);
  state.SetLabel("cvk::box_convert(boxes, xyxy, cxcywh, out), std::vector<std::array<T, 4>>");
}

template <class T>
void loop_box_convert(benchmark::State& state, std::size_t n) {
  const auto& boxes = cvk_bench::random_boxes<T>(n);
  boxes_t<T> converted(n);
  for ([[maybe_unused]] auto iteration : state) {
    reference_xyxy_to_cxcywh(boxes, converted);
    benchmark::DoNotOptimize(converted.data());
    benchmark::ClobberMemory();
  }
  cvk_bench::set_items(state, n);
  state.SetLabel("hand-written loop over std::vector<std::array<T, 4>>, xyxy to cxcywh");
}

#if defined(CVK_BENCH_HAS_OPENCV)
// OpenCV has no box-array operator for areas; the idiom is cv::Rect_<T>::area() (width *
// height) over a std::vector of rectangles, which hold the same boxes as (x, y, w, h).
template <class T>
void opencv_box_area(benchmark::State& state, std::size_t n) {
  const auto& boxes = cvk_bench::random_boxes<T>(n);
  std::vector<cv::Rect_<T>> rects;
  rects.reserve(n);
  for (const auto& b : boxes) rects.emplace_back(b[0], b[1], b[2] - b[0], b[3] - b[1]);
  std::vector<T> areas(n);
  for ([[maybe_unused]] auto iteration : state) {
    for (std::size_t i = 0; i < n; ++i) areas[i] = rects[i].area();
    benchmark::DoNotOptimize(areas.data());
    benchmark::ClobberMemory();
  }
  cvk_bench::set_items(state, n);
  state.SetLabel("cv::Rect_<T>::area() over std::vector<cv::Rect_<T>> (xywh)");
}
#endif

template <class T>
void register_type() {
  for (const std::size_t n : cvk_bench::box_counts) {
    const auto at = [&](const char* op, const char* impl) {
      return cvk_bench::name(op, impl, type_name<T>(), {{"N", n}});
    };
    cvk_bench::add(at("box_area", "cvk"), [n](benchmark::State& s) { cvk_box_area<T>(s, n); });
    cvk_bench::add(at("box_area", "loop"), [n](benchmark::State& s) { loop_box_area<T>(s, n); });
#if defined(CVK_BENCH_HAS_OPENCV)
    cvk_bench::add(at("box_area", "opencv"),
                   [n](benchmark::State& s) { opencv_box_area<T>(s, n); });
#endif
    cvk_bench::add(at("box_convert", "cvk"),
                   [n](benchmark::State& s) { cvk_box_convert<T>(s, n); });
    cvk_bench::add(at("box_convert", "loop"),
                   [n](benchmark::State& s) { loop_box_convert<T>(s, n); });
  }
}

const bool registered = [] {
  register_type<float>();
  register_type<double>();
  return true;
}();

}  // namespace
