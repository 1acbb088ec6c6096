// cvk — computer-vision kernels, header-only C++20.
// soft_nms on uniform boxes on a 1000×1000 image (sides 1–50, scores uniform in [0, 1),
// N ∈ {1k, 10k}), gaussian (sigma 0.5) and linear (IoU threshold 0.3), score floor 1e-3, float:
// cvk (OpenCV convention) against OpenCV's cv::dnn::softNMSBoxes and against the same O(N²) loop
// written plainly ("loop"). OpenCV's softNMSBoxes takes only integer cv::Rect: the scene is
// rounded to int (x, y, w, h) outside the timed loop, so its IoUs (and decayed scores) differ
// slightly from the float scene cvk and the loop see; the work per box is the same.
// SPDX-License-Identifier: MIT
#include <benchmark/benchmark.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "common.hpp"
#include "cvk/cvk.hpp"
#include "cvk/nms/soft.hpp"

#if defined(CVK_BENCH_HAS_OPENCV)
#  include <opencv2/dnn.hpp>
#endif

namespace {

using cvk::index_t;

constexpr double iou_threshold = 0.3;  // mmcv's default; used by the linear method
constexpr double sigma = 0.5;
constexpr double min_score = 1e-3;

struct soft_scene {
  std::vector<std::array<float, 4>> boxes;  // xyxy
  std::vector<float> scores;
};

// Uniform boxes: corners uniform on the 1000×1000 image, sides uniform in [1, 50).
const soft_scene& uniform_scene(std::size_t n) {
  static std::map<std::size_t, soft_scene> cache;
  auto [it, inserted] = cache.try_emplace(n);
  if (!inserted) return it->second;
  soft_scene& s = it->second;
  cvk::rng gen(1704, n);  // arXiv 1704.04503
  s.boxes.resize(n);
  s.scores.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    const double x = gen.uniform(0.0, 1000.0);
    const double y = gen.uniform(0.0, 1000.0);
    s.boxes[i] = {static_cast<float>(x), static_cast<float>(y),
                  static_cast<float>(x + gen.uniform(1.0, 50.0)),
                  static_cast<float>(y + gen.uniform(1.0, 50.0))};
    s.scores[i] = gen.uniform<float>(0.0f, 1.0f);
  }
  return s;
}

cvk::soft_nms_options options_for(cvk::soft_nms_method method) {
  return {.method = method,
          .sigma = sigma,
          .min_score = min_score,
          .convention = cvk::soft_nms_convention::opencv};
}

// OpenCV's softNMSBoxes loop written plainly (O(N²): a max_element scan and a rescoring pass per
// selection), with cvk's IoU arithmetic on the float boxes.
CVK_KERNEL_BEGIN
std::vector<index_t> plain_soft_nms(const soft_scene& s, cvk::soft_nms_method method) {
  const std::size_t n = s.boxes.size();
  std::vector<float> area(n);
  for (std::size_t i = 0; i < n; ++i) {
    const float w = s.boxes[i][2] - s.boxes[i][0];
    const float h = s.boxes[i][3] - s.boxes[i][1];
    area[i] = w * h;
  }
  std::vector<std::pair<float, std::size_t>> vec(n);
  for (std::size_t i = 0; i < n; ++i) vec[i] = {s.scores[i], i};
  const auto cmp = [](const std::pair<float, std::size_t>& a,
                      const std::pair<float, std::size_t>& b) {
    return a.first == b.first ? a.second > b.second : a.first < b.first;
  };
  const auto t = static_cast<float>(iou_threshold);
  const auto sg = static_cast<float>(sigma);
  const auto floor = static_cast<float>(min_score);
  std::vector<index_t> picked;
  for (std::size_t start = 0; start < n; ++start) {
    const auto it =
        std::max_element(vec.begin() + static_cast<std::ptrdiff_t>(start), vec.end(), cmp);
    if (it->first < floor) break;
    const std::size_t best = it->second;
    picked.push_back(static_cast<index_t>(best));
    std::swap(vec[start], *it);
    const auto& a = s.boxes[best];
    for (std::size_t k = start + 1; k < n; ++k) {
      float& score = vec[k].first;
      if (score < floor) continue;
      const std::size_t j = vec[k].second;
      const auto& b = s.boxes[j];
      // std::max / std::min spelled out: GCC does not inline them into CVK_KERNEL code
      const float xx1 = a[0] < b[0] ? b[0] : a[0];
      const float yy1 = a[1] < b[1] ? b[1] : a[1];
      const float xx2 = b[2] < a[2] ? b[2] : a[2];
      const float yy2 = b[3] < a[3] ? b[3] : a[3];
      const float dx = xx2 - xx1;
      const float dy = yy2 - yy1;
      const float w = 0.0f < dx ? dx : 0.0f;
      const float h = 0.0f < dy ? dy : 0.0f;
      const float inter = w * h;
      const float sum = area[best] + area[j];
      const float uni = sum - inter;
      const float ovr = inter / uni;
      if (method == cvk::soft_nms_method::linear) {
        if (ovr > t) score *= 1.0f - ovr;
      } else {
        const float sq = ovr * ovr;
        score *= std::exp(-sq / sg);
      }
    }
  }
  return picked;
}
CVK_KERNEL_END

std::string bench_name(const char* impl, cvk::soft_nms_method method, std::size_t n) {
  return std::string("soft_nms/") + impl + "/float/method:" + cvk::to_string(method) +
         "/N:" + std::to_string(n) + "/threads:1";
}

const char* label_of(cvk::soft_nms_method method) {
  return method == cvk::soft_nms_method::gaussian ? "gaussian sigma 0.5, score floor 1e-3"
                                                  : "linear IoU > 0.3, score floor 1e-3";
}

void run_cvk(benchmark::State& state, cvk::soft_nms_method method, std::size_t n) {
  const soft_scene& s = uniform_scene(n);
  const auto options = options_for(method);
  const bool same = cvk_bench::checked_once(
      std::string("soft_nms") + cvk::to_string(method) + std::to_string(n), [&] {
        const auto r = cvk::soft_nms(s.boxes, s.scores, iou_threshold, options);
        return std::vector<index_t>(r.indices.begin(), r.indices.end()) ==
               plain_soft_nms(s, method);
      });
  if (!same) {
    state.SkipWithError("cvk disagrees with the plain loop");
    return;
  }
  std::size_t kept = 0;
  for ([[maybe_unused]] auto iteration : state) {
    const auto r = cvk::soft_nms(s.boxes, s.scores, iou_threshold, options);
    kept = static_cast<std::size_t>(r.indices.size());
    benchmark::DoNotOptimize(r.scores.data());
  }
  cvk_bench::set_items(state, n);
  state.counters["kept"] = static_cast<double>(kept);
  state.SetLabel(std::string("boxes/s; cvk::soft_nms, opencv convention, ") + label_of(method));
}

void run_loop(benchmark::State& state, cvk::soft_nms_method method, std::size_t n) {
  const soft_scene& s = uniform_scene(n);
  for ([[maybe_unused]] auto iteration : state) {
    const auto picked = plain_soft_nms(s, method);
    benchmark::DoNotOptimize(picked.data());
  }
  cvk_bench::set_items(state, n);
  state.SetLabel(std::string("boxes/s; softNMSBoxes' O(N²) loop written plainly, ") +
                 label_of(method));
}

#if defined(CVK_BENCH_HAS_OPENCV)
void run_opencv(benchmark::State& state, cvk::soft_nms_method method, std::size_t n) {
  const soft_scene& s = uniform_scene(n);
  std::vector<cv::Rect> rects;  // softNMSBoxes has no Rect2d overload: integer boxes
  rects.reserve(n);
  for (const auto& b : s.boxes) {
    const int x = static_cast<int>(std::lround(b[0]));
    const int y = static_cast<int>(std::lround(b[1]));
    rects.emplace_back(x, y, std::max(1, static_cast<int>(std::lround(b[2])) - x),
                       std::max(1, static_cast<int>(std::lround(b[3])) - y));
  }
  const cv::dnn::SoftNMSMethod m = method == cvk::soft_nms_method::gaussian
                                       ? cv::dnn::SoftNMSMethod::SOFTNMS_GAUSSIAN
                                       : cv::dnn::SoftNMSMethod::SOFTNMS_LINEAR;
  std::vector<float> updated;
  std::vector<int> indices;
  for ([[maybe_unused]] auto iteration : state) {
    cv::dnn::softNMSBoxes(rects, s.scores, updated, static_cast<float>(min_score),
                          static_cast<float>(iou_threshold), indices, 0, static_cast<float>(sigma),
                          m);
    benchmark::DoNotOptimize(indices.data());
  }
  cvk_bench::set_items(state, n);
  state.counters["kept"] = static_cast<double>(indices.size());
  state.SetLabel(
      std::string("boxes/s; cv::dnn::softNMSBoxes(vector<Rect> (int), vector<float>), ") +
      label_of(method));
}
#endif

const bool registered = [] {
  for (const auto method : {cvk::soft_nms_method::gaussian, cvk::soft_nms_method::linear}) {
    for (const std::size_t n : {std::size_t{1'000}, std::size_t{10'000}}) {
      cvk_bench::add(bench_name("cvk", method, n),
                     [method, n](benchmark::State& s) { run_cvk(s, method, n); });
      cvk_bench::add(bench_name("loop", method, n),
                     [method, n](benchmark::State& s) { run_loop(s, method, n); });
#if defined(CVK_BENCH_HAS_OPENCV)
      cvk_bench::add(bench_name("opencv", method, n),
                     [method, n](benchmark::State& s) { run_opencv(s, method, n); });
#endif
    }
  }
  // Issue 9's scenes at 20k boxes (common.hpp, adversarial_scene): uniform, far outlier, one
  // NaN box; gaussian, mmcv's convention.
  cvk_bench::add_adversarial("soft_nms_adversarial", 20'000, {0, 3, 5},
                             [](const auto& boxes, const std::vector<float>& scores) {
                               return cvk::soft_nms(boxes, scores, iou_threshold,
                                                    {.method = cvk::soft_nms_method::gaussian});
                             });
  return true;
}();

}  // namespace
