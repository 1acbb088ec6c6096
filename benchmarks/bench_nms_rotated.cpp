// cvk — computer-vision kernels, header-only C++20.
// nms_rotated on rotated boxes: uniform centres on a 1000×1000 image (sides 1–50, angles
// uniform, N ∈ {1k, 10k}) and a dense scene (150 objects × 20 jittered candidates); against
// detectron2's CPU algorithm written plainly with cvk's rotated IoU ("loop": stable sort, then
// the O(N²) suppress-forward loop) and OpenCV's cv::dnn::NMSBoxes on cv::RotatedRect.
// SPDX-License-Identifier: MIT
#include <benchmark/benchmark.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <map>
#include <numeric>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "common.hpp"
#include "cvk/cvk.hpp"
#include "cvk/nms/rotated.hpp"

#if defined(CVK_BENCH_HAS_OPENCV)
#  include <opencv2/core/types.hpp>
#  include <opencv2/dnn.hpp>
#endif

namespace {

using cvk::index_t;
using cvk_bench::type_name;

constexpr double iou_threshold = 0.5;

template <class T>
struct scene {
  std::vector<std::array<T, 5>> boxes;  // cx, cy, w, h, angle (degrees, counter-clockwise)
  std::vector<T> scores;
};

enum class kind { sparse, dense };

constexpr const char* op_name(kind k) noexcept {
  return k == kind::sparse ? "nms_rotated" : "nms_rotated_dense";
}

template <class T>
const scene<T>& make_scene(kind k, std::size_t n) {
  static std::map<std::pair<int, std::size_t>, scene<T>> cache;
  auto [it, inserted] = cache.try_emplace({static_cast<int>(k), n});
  if (!inserted) return it->second;
  scene<T>& s = it->second;
  cvk::rng gen(2019, 3 * n + 29 * static_cast<std::size_t>(k));
  s.boxes.resize(n);
  s.scores.resize(n);
  const std::size_t per_object = n / 150;
  for (std::size_t i = 0; i < n; ++i) {
    if (k == kind::sparse) {
      s.boxes[i] = {static_cast<T>(gen.uniform(0.0, 1000.0)),
                    static_cast<T>(gen.uniform(0.0, 1000.0)),
                    static_cast<T>(gen.uniform(1.0, 50.0)), static_cast<T>(gen.uniform(1.0, 50.0)),
                    static_cast<T>(gen.uniform(-180.0, 180.0))};
    } else {
      // 150 objects on a 15 × 10 grid of 65 × 95 cells (60 × 90 boxes at an object angle),
      // each seen by per_object candidates jittered by 10% in position, size and 5° in angle
      const std::size_t o = std::min<std::size_t>(i / per_object, 149);
      const double cx = 40.0 + 65.0 * static_cast<double>(o % 15);
      const double cy = 50.0 + 95.0 * static_cast<double>(o / 15);
      const double angle = 30.0 * std::sin(static_cast<double>(o));
      s.boxes[i] = {static_cast<T>(cx + gen.normal(0.0, 6.0)),
                    static_cast<T>(cy + gen.normal(0.0, 9.0)),
                    static_cast<T>(60.0 * std::exp(gen.normal(0.0, 0.1))),
                    static_cast<T>(90.0 * std::exp(gen.normal(0.0, 0.1))),
                    static_cast<T>(angle + gen.normal(0.0, 5.0))};
    }
    s.scores[i] = gen.uniform<T>(T(0), T(1));
  }
  return s;
}

// detectron2's nms_rotated_cpu written plainly: stable sort by score, then for every kept box the
// rotated IoU with every later box still standing (cvk's pair IoU, in double, rounded to T),
// suppressing when IoU >= threshold. O(N²).
template <class T>
std::vector<index_t> plain_nms_rotated(const scene<T>& s, double threshold) {
  const std::size_t n = s.boxes.size();
  std::vector<index_t> order(n);
  std::iota(order.begin(), order.end(), index_t{0});
  std::stable_sort(order.begin(), order.end(), [&](index_t a, index_t b) {
    return s.scores[static_cast<std::size_t>(a)] > s.scores[static_cast<std::size_t>(b)];
  });
  std::vector<cvk::detail::convex_quad<double>> quads(n);
  for (std::size_t k = 0; k < n; ++k) {
    const auto& b = s.boxes[static_cast<std::size_t>(order[k])];
    quads[k] = cvk::detail::rotated_quad<double>(b[0], b[1], b[2], b[3], b[4], {});
  }
  std::vector<unsigned char> suppressed(n, 0);
  std::vector<index_t> keep;
  for (std::size_t i = 0; i < n; ++i) {
    if (suppressed[i] != 0) continue;
    keep.push_back(order[i]);
    for (std::size_t j = i + 1; j < n; ++j) {
      if (suppressed[j] != 0) continue;
      const double iou = cvk::detail::convex_pair_metric<cvk::detail::convex_metric::iou>(
          quads[i], quads[j], cvk::detail::bounds_may_overlap(quads[i], quads[j]));
      if (static_cast<double>(static_cast<T>(iou)) >= threshold) suppressed[j] = 1;
    }
  }
  return keep;
}

template <class T>
std::vector<index_t> run_cvk_once(const scene<T>& s) {
  const cvk::tensor<index_t, 1> kept = cvk::nms_rotated(s.boxes, s.scores, iou_threshold);
  return {kept.begin(), kept.end()};
}

template <class T>
void run_cvk(benchmark::State& state, kind k, std::size_t n) {
  const scene<T>& s = make_scene<T>(k, n);
  const bool same = cvk_bench::checked_once(
      std::string(op_name(k)) + type_name<T>() + std::to_string(n),
      [&] { return run_cvk_once(s) == plain_nms_rotated(s, iou_threshold); });
  if (!same) {
    state.SkipWithError("cvk disagrees with the plain loop");
    return;
  }
  std::size_t kept = 0;
  for ([[maybe_unused]] auto iteration : state) {
    const auto result = run_cvk_once(s);
    kept = result.size();
    benchmark::DoNotOptimize(result.data());
  }
  cvk_bench::set_items(state, n);
  state.counters["kept"] = static_cast<double>(kept);
  state.SetLabel("boxes/s; cvk::nms_rotated, IoU >= 0.5");
}

template <class T>
void run_loop(benchmark::State& state, kind k, std::size_t n) {
  const scene<T>& s = make_scene<T>(k, n);
  for ([[maybe_unused]] auto iteration : state) {
    const auto result = plain_nms_rotated(s, iou_threshold);
    benchmark::DoNotOptimize(result.data());
  }
  cvk_bench::set_items(state, n);
  state.SetLabel("boxes/s; detectron2's CPU algorithm with cvk's rotated IoU (O(N²))");
}

#if defined(CVK_BENCH_HAS_OPENCV)
// OpenCV's RotatedRect turns clockwise (width axis (cos a, sin a)): a counter-clockwise angle a
// is the RotatedRect angle -a. NMSBoxes suppresses when IoU > threshold (cvk: >=) and takes a
// box nested in another as IoU 1, so its selection may differ slightly; it is not compared.
void run_opencv(benchmark::State& state, kind k, std::size_t n) {
  const scene<float>& s = make_scene<float>(k, n);
  std::vector<cv::RotatedRect> rects;
  rects.reserve(n);
  for (const auto& b : s.boxes) {
    rects.emplace_back(cv::Point2f(b[0], b[1]), cv::Size2f(b[2], b[3]), -b[4]);
  }
  std::vector<int> indices;
  for ([[maybe_unused]] auto iteration : state) {
    cv::dnn::NMSBoxes(rects, s.scores, 0.0f, static_cast<float>(iou_threshold), indices);
    benchmark::DoNotOptimize(indices.data());
  }
  cvk_bench::set_items(state, n);
  state.counters["kept"] = static_cast<double>(indices.size());
  state.SetLabel("boxes/s; cv::dnn::NMSBoxes(vector<RotatedRect>, vector<float>), IoU > 0.5");
}
#endif

template <class T>
void register_type() {
  struct entry {
    kind k;
    std::size_t n;
    bool opencv;  // OpenCV's NMSBoxes takes < 2 s (about 10 s at 10k sparse boxes)
  };
  const std::array<entry, 3> entries = {
      {{kind::sparse, 1'000, true}, {kind::sparse, 10'000, false}, {kind::dense, 3'000, true}}};
  for (const entry& e : entries) {
    const auto at = [&](const char* impl) {
      return cvk_bench::name(op_name(e.k), impl, type_name<T>(), {{"N", e.n}}, 1);
    };
    const kind k = e.k;
    const std::size_t n = e.n;
    cvk_bench::add(at("cvk"), [k, n](benchmark::State& s) { run_cvk<T>(s, k, n); });
    cvk_bench::add(at("loop"), [k, n](benchmark::State& s) { run_loop<T>(s, k, n); });
#if defined(CVK_BENCH_HAS_OPENCV)
    if (std::is_same_v<T, float> && e.opencv) {
      cvk_bench::add(at("opencv"), [k, n](benchmark::State& s) { run_opencv(s, k, n); });
    }
#endif
  }
}

// Issue 9's scenes at 20k boxes (common.hpp, adversarial_scene) as rotated boxes, every other
// one turned (the strips stay level): the uniform scene, one far outlier, one NaN box.
std::vector<std::array<float, 5>> turned(const std::vector<std::array<float, 4>>& boxes) {
  std::vector<std::array<float, 5>> out(boxes.size());
  for (std::size_t i = 0; i < boxes.size(); ++i) {
    const auto& b = boxes[i];
    const float angle = i % 2 == 0 ? static_cast<float>((i * 37) % 180) - 90.0F : 0.0F;
    out[i] = {(b[0] + b[2]) / 2, (b[1] + b[3]) / 2, b[2] - b[0], b[3] - b[1], angle};
  }
  return out;
}

const bool registered_adversarial = [] {
  cvk_bench::add_adversarial("nms_rotated_adversarial", 20'000, {0, 3, 5}, turned,
                             [](const auto& boxes, const std::vector<float>& scores) {
                               return cvk::nms_rotated(boxes, scores, iou_threshold);
                             });
  return true;
}();

const bool registered = [] {
  register_type<float>();
  register_type<double>();
  return true;
}();

}  // namespace
