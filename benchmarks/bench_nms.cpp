// cvk — computer-vision kernels, header-only C++20.
// nms and batched_nms on the scenes of docs/nms.md: uniform boxes on a 1000×1000 image (sides
// 1–50, N ∈ {1k, 10k, 50k, 200k}), a dense shelf (150 objects × 200 jittered candidates), an
// all-overlapping worst case (2k), and 10k boxes in 80 classes; against torchvision's CPU
// algorithm written plainly ("loop", only where it takes < 2 s) and OpenCV's NMSBoxes.
// torchvision itself runs in torchvision_bench.py on the same scenes.
// SPDX-License-Identifier: MIT
#include <benchmark/benchmark.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <map>
#include <numeric>
#include <string>
#include <vector>

#include "common.hpp"
#include "cvk/cvk.hpp"

#if defined(CVK_BENCH_HAS_OPENCV)
#  include <opencv2/core/version.hpp>
#  include <opencv2/dnn.hpp>
#  if CV_VERSION_MAJOR > 4 || (CV_VERSION_MAJOR == 4 && CV_VERSION_MINOR >= 7)
#    define CVK_BENCH_HAS_NMS_BATCHED 1
#  endif
#endif

namespace {

using cvk::index_t;
using cvk_bench::type_name;

constexpr double iou_threshold = 0.5;

template <class T>
struct scene {
  std::vector<std::array<T, 4>> boxes;
  std::vector<T> scores;
  std::vector<std::int64_t> classes;
};

enum class kind { uniform, shelf, overlapping, classes80 };

constexpr const char* op_name(kind k) noexcept {
  switch (k) {
    case kind::uniform:
      return "nms";
    case kind::shelf:
      return "nms_shelf";
    case kind::overlapping:
      return "nms_overlapping";
    case kind::classes80:
      return "batched_nms";
  }
  return "nms";
}

// The same scenes as torchvision_bench.py describes (generated here with cvk::rng).
template <class T>
const scene<T>& make_scene(kind k, std::size_t n) {
  static std::map<std::pair<int, std::size_t>, scene<T>> cache;
  auto [it, inserted] = cache.try_emplace({static_cast<int>(k), n});
  if (!inserted) return it->second;
  scene<T>& s = it->second;
  cvk::rng gen(2019, n + 17 * static_cast<std::size_t>(k));
  s.boxes.resize(n);
  s.scores.resize(n);
  s.classes.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    switch (k) {
      case kind::uniform:
      case kind::classes80: {
        s.boxes[i] = cvk_bench::uniform_scene_box<T>(gen);
        break;
      }
      case kind::overlapping:  // every box contains the image centre
        s.boxes[i] = {static_cast<T>(500 - gen.uniform(1.0, 200.0)),
                      static_cast<T>(500 - gen.uniform(1.0, 200.0)),
                      static_cast<T>(500 + gen.uniform(1.0, 200.0)),
                      static_cast<T>(500 + gen.uniform(1.0, 200.0))};
        break;
      case kind::shelf:
        break;
    }
    s.scores[i] = gen.uniform<T>(T(0), T(1));
    s.classes[i] = static_cast<std::int64_t>(gen.below(80));
  }
  if (k == kind::shelf) {
    cvk_bench::shelf_scene(gen, n / 150, s.boxes);  // the dense shelf (common.hpp)
  }
  return s;
}

// torchvision's CPU kernel written plainly: stable sort, then the O(N²) suppress-forward loop.
CVK_KERNEL_BEGIN
template <class T>
std::vector<index_t> plain_nms(const std::vector<std::array<T, 4>>& boxes,
                               const std::vector<T>& scores, double threshold) {
  const std::size_t n = boxes.size();
  std::vector<index_t> order(n);
  std::iota(order.begin(), order.end(), index_t{0});
  std::stable_sort(order.begin(), order.end(), [&](index_t a, index_t b) {
    return scores[static_cast<std::size_t>(a)] > scores[static_cast<std::size_t>(b)];
  });
  std::vector<T> x1(n), y1(n), x2(n), y2(n), areas(n);
  for (std::size_t k = 0; k < n; ++k) {
    const auto& b = boxes[static_cast<std::size_t>(order[k])];
    x1[k] = b[0];
    y1[k] = b[1];
    x2[k] = b[2];
    y2[k] = b[3];
    areas[k] = (b[2] - b[0]) * (b[3] - b[1]);
  }
  std::vector<unsigned char> suppressed(n, 0);
  std::vector<index_t> keep;
  for (std::size_t i = 0; i < n; ++i) {
    if (suppressed[i] != 0) continue;
    keep.push_back(order[i]);
    for (std::size_t j = i + 1; j < n; ++j) {
      if (suppressed[j] != 0) continue;
      // std::max / std::min spelled out: GCC does not inline them into CVK_KERNEL code
      const T xx1 = x1[i] < x1[j] ? x1[j] : x1[i];
      const T yy1 = y1[i] < y1[j] ? y1[j] : y1[i];
      const T xx2 = x2[j] < x2[i] ? x2[j] : x2[i];
      const T yy2 = y2[j] < y2[i] ? y2[j] : y2[i];
      const T dx = xx2 - xx1;
      const T dy = yy2 - yy1;
      const T w = T(0) < dx ? dx : T(0);
      const T h = T(0) < dy ? dy : T(0);
      const T inter = w * h;
      const T ovr = inter / (areas[i] + areas[j] - inter);
      if (static_cast<double>(ovr) > threshold) suppressed[j] = 1;
    }
  }
  return keep;
}
CVK_KERNEL_END

template <class T>
std::vector<index_t> run_cvk_once(kind k, const scene<T>& s, int threads) {
  const cvk::tensor<index_t, 1> kept =
      k == kind::classes80
          ? cvk::batched_nms(s.boxes, s.scores, s.classes, iou_threshold, {.threads = threads})
          : cvk::nms(s.boxes, s.scores, iou_threshold);
  return {kept.begin(), kept.end()};
}

template <class T>
void run_cvk(benchmark::State& state, kind k, std::size_t n, int threads) {
  const scene<T>& s = make_scene<T>(k, n);
  if (k != kind::classes80 && n <= 30'000) {
    const bool same = cvk_bench::checked_once(
        std::string(op_name(k)) + type_name<T>() + std::to_string(n),
        [&] { return run_cvk_once(k, s, threads) == plain_nms(s.boxes, s.scores, iou_threshold); });
    if (!same) {
      state.SkipWithError("cvk disagrees with the plain loop");
      return;
    }
  }
  std::size_t kept = 0;
  for ([[maybe_unused]] auto iteration : state) {
    const auto result = run_cvk_once(k, s, threads);
    kept = result.size();
    benchmark::DoNotOptimize(result.data());
  }
  cvk_bench::set_items(state, n);
  state.counters["kept"] = static_cast<double>(kept);
  state.SetLabel(std::string("boxes/s; cvk::") + (k == kind::classes80 ? "batched_nms" : "nms") +
                 ", IoU > 0.5");
}

template <class T>
void run_loop(benchmark::State& state, kind k, std::size_t n) {
  const scene<T>& s = make_scene<T>(k, n);
  for ([[maybe_unused]] auto iteration : state) {
    const auto result = plain_nms(s.boxes, s.scores, iou_threshold);
    benchmark::DoNotOptimize(result.data());
  }
  cvk_bench::set_items(state, n);
  state.SetLabel("boxes/s; torchvision's CPU algorithm written plainly (O(N²))");
}

#if defined(CVK_BENCH_HAS_OPENCV)
template <class T>
void run_opencv(benchmark::State& state, kind k, std::size_t n) {
  const scene<T>& s = make_scene<T>(k, n);
  std::vector<cv::Rect2d> rects;
  std::vector<float> scores;
  std::vector<int> classes;
  for (std::size_t i = 0; i < n; ++i) {
    const auto& b = s.boxes[i];
    rects.emplace_back(static_cast<double>(b[0]), static_cast<double>(b[1]),
                       static_cast<double>(b[2] - b[0]), static_cast<double>(b[3] - b[1]));
    scores.push_back(static_cast<float>(s.scores[i]));
    classes.push_back(static_cast<int>(s.classes[i]));
  }
  std::vector<int> indices;
  for ([[maybe_unused]] auto iteration : state) {
#  if defined(CVK_BENCH_HAS_NMS_BATCHED)
    if (k == kind::classes80) {
      cv::dnn::NMSBoxesBatched(rects, scores, classes, 0.0f, static_cast<float>(iou_threshold),
                               indices);
    } else {
      cv::dnn::NMSBoxes(rects, scores, 0.0f, static_cast<float>(iou_threshold), indices);
    }
#  else
    cv::dnn::NMSBoxes(rects, scores, 0.0f, static_cast<float>(iou_threshold), indices);
#  endif
    benchmark::DoNotOptimize(indices.data());
  }
  cvk_bench::set_items(state, n);
  state.SetLabel("boxes/s; cv::dnn::NMSBoxes(vector<Rect2d>, vector<float>)");
}
#endif

template <class T>
void register_type() {
  struct entry {
    kind k;
    std::size_t n;
    bool loop;  // the plain loop (and OpenCV, also O(N²)) takes < 2 s
  };
  const std::array<entry, 7> entries = {{{kind::uniform, 1'000, true},
                                         {kind::uniform, 10'000, true},
                                         {kind::uniform, 50'000, false},
                                         {kind::uniform, 200'000, false},
                                         {kind::shelf, 30'000, true},
                                         {kind::overlapping, 2'000, true},
                                         {kind::classes80, 10'000, false}}};
  for (const entry& e : entries) {
    const auto at = [&](const char* impl, int threads) {
      return cvk_bench::name(op_name(e.k), impl, type_name<T>(), {{"N", e.n}}, threads);
    };
    const kind k = e.k;
    const std::size_t n = e.n;
    cvk_bench::add(at("cvk", 1), [k, n](benchmark::State& s) { run_cvk<T>(s, k, n, 1); });
    if (k == kind::classes80) {
      cvk_bench::add(at("cvk", 2), [k, n](benchmark::State& s) { run_cvk<T>(s, k, n, 2); });
    }
    if (e.loop) {
      cvk_bench::add(at("loop", 1), [k, n](benchmark::State& s) { run_loop<T>(s, k, n); });
    }
#if defined(CVK_BENCH_HAS_OPENCV)
#  if !defined(CVK_BENCH_HAS_NMS_BATCHED)
    if (k == kind::classes80) continue;  // NMSBoxesBatched appeared in OpenCV 4.7
#  endif
    if (e.loop || k == kind::classes80) {
      cvk_bench::add(at("opencv", 1), [k, n](benchmark::State& s) { run_opencv<T>(s, k, n); });
    }
#endif
  }
}

// Issue 9's adversarial scenes at 100k boxes (common.hpp, adversarial_scene): the padding, NaN,
// far-outlier and thin-strip scenes must cost about what the uniform scene costs.
const bool registered_adversarial = [] {
  cvk_bench::add_adversarial("nms_adversarial", 100'000, {0, 1, 2, 3, 4, 5},
                             [](const auto& boxes, const std::vector<float>& scores) {
                               return cvk::nms(boxes, scores, iou_threshold);
                             });
  return true;
}();

const bool registered = [] {
  register_type<float>();
  register_type<double>();
  return true;
}();

}  // namespace
