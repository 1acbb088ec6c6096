// cvk — computer-vision kernels, header-only C++20.
// The pairwise IoU family (box_iou, generalized_box_iou, distance_box_iou, complete_box_iou) at
// N = M ∈ {100, 1000, 4000}, 1 and 2 threads, against a plain per-pair loop compiled with the
// same flags. Throughput in box pairs per second; torchvision runs in torchvision_bench.py.
// SPDX-License-Identifier: MIT
#include <benchmark/benchmark.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <numbers>
#include <string>
#include <vector>

#include "common.hpp"
#include "cvk/cvk.hpp"

namespace {

using cvk_bench::type_name;

template <class T>
using boxes_t = std::vector<std::array<T, 4>>;

enum class metric { iou, giou, diou, ciou };

constexpr const char* metric_name(metric m) noexcept {
  switch (m) {
    case metric::iou:
      return "box_iou";
    case metric::giou:
      return "generalized_box_iou";
    case metric::diou:
      return "distance_box_iou";
    case metric::ciou:
      return "complete_box_iou";
  }
  return "box_iou";
}

// The plain loop a user would write from torchvision's formulas: one pair at a time, areas
// and the aspect-ratio term recomputed per pair, array-of-structures input.
template <class T>
T reference_pair(metric m, const std::array<T, 4>& a, const std::array<T, 4>& b) {
  const T area_a = (a[2] - a[0]) * (a[3] - a[1]);
  const T area_b = (b[2] - b[0]) * (b[3] - b[1]);
  const T w = std::max(T(0), std::min(a[2], b[2]) - std::max(a[0], b[0]));
  const T h = std::max(T(0), std::min(a[3], b[3]) - std::max(a[1], b[1]));
  const T inter = w * h;
  const T uni = area_a + area_b - inter;
  const T iou = inter / uni;
  if (m == metric::iou) return iou;
  const T cw = std::max(T(0), std::max(a[2], b[2]) - std::min(a[0], b[0]));
  const T ch = std::max(T(0), std::max(a[3], b[3]) - std::min(a[1], b[1]));
  if (m == metric::giou) {
    const T hull = cw * ch;
    return iou - (hull - uni) / hull;
  }
  const T diag = cw * cw + ch * ch + T(1e-7);
  const T dx = (a[0] + a[2]) / T(2) - (b[0] + b[2]) / T(2);
  const T dy = (a[1] + a[3]) / T(2) - (b[1] + b[3]) / T(2);
  const T diou = iou - (dx * dx + dy * dy) / diag;
  if (m == metric::diou) return diou;
  const T angle =
      std::atan((a[2] - a[0]) / (a[3] - a[1])) - std::atan((b[2] - b[0]) / (b[3] - b[1]));
  const T v = T(4 / (std::numbers::pi * std::numbers::pi)) * angle * angle;
  const T alpha = v / (T(1) - iou + v + T(1e-7));
  return diou - alpha * v;
}

template <class T>
void reference_pairwise(metric m, const boxes_t<T>& a, const boxes_t<T>& b, std::vector<T>& out) {
  for (std::size_t i = 0; i < a.size(); ++i) {
    for (std::size_t j = 0; j < b.size(); ++j)
      out[i * b.size() + j] = reference_pair(m, a[i], b[j]);
  }
}

template <class T>
void cvk_pairwise(metric m, const boxes_t<T>& a, const boxes_t<T>& b, cvk::tensor<T, 2>& out,
                  int threads) {
  const cvk::iou_options options{.threads = threads};
  switch (m) {
    case metric::iou:
      cvk::box_iou(a, b, out, options);
      break;
    case metric::giou:
      cvk::generalized_box_iou(a, b, out, options);
      break;
    case metric::diou:
      cvk::distance_box_iou(a, b, out, options);
      break;
    case metric::ciou:
      cvk::complete_box_iou(a, b, out, options);
      break;
  }
}

// The two sets are different random boxes on a 1000×1000 image (sides 1–100).
template <class T>
const boxes_t<T>& second_set(std::size_t n) {
  return cvk_bench::random_boxes<T>(n + 1);
}

template <class T>
void run_cvk(benchmark::State& state, metric m, std::size_t n, int threads) {
  const auto& a = cvk_bench::random_boxes<T>(n);
  const auto& b = second_set<T>(n);
  cvk::tensor<T, 2> out(static_cast<cvk::index_t>(a.size()), static_cast<cvk::index_t>(b.size()));
  const std::string key = std::string(metric_name(m)) + type_name<T>() + std::to_string(n) + "/" +
                          std::to_string(threads);
  const bool agrees = cvk_bench::checked_once(key, [&] {
    std::vector<T> expected(a.size() * b.size());
    cvk_pairwise(m, a, b, out, threads);
    reference_pairwise(m, a, b, expected);
    const double tolerance = std::is_same_v<T, float> ? 1e-5 : 1e-12;
    for (std::size_t k = 0; k < expected.size(); ++k) {
      const double diff = static_cast<double>(out.data()[k]) - static_cast<double>(expected[k]);
      if (!(std::abs(diff) <= tolerance)) return false;
    }
    return true;
  });
  if (!agrees) {
    state.SkipWithError("cvk disagrees with the plain loop");
    return;
  }
  for ([[maybe_unused]] auto iteration : state) {
    cvk_pairwise(m, a, b, out, threads);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  cvk_bench::set_items(state, a.size() * b.size());
  state.SetLabel("box pairs/s; cvk::" + std::string(metric_name(m)) +
                 "(vector<array<T,4>> ×2, tensor&)");
}

template <class T>
void run_loop(benchmark::State& state, metric m, std::size_t n) {
  const auto& a = cvk_bench::random_boxes<T>(n);
  const auto& b = second_set<T>(n);
  std::vector<T> out(a.size() * b.size());
  for ([[maybe_unused]] auto iteration : state) {
    reference_pairwise(m, a, b, out);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  cvk_bench::set_items(state, a.size() * b.size());
  state.SetLabel("box pairs/s; plain per-pair loop over vector<array<T,4>>");
}

template <class T>
void register_type() {
  for (const metric m : {metric::iou, metric::giou, metric::diou, metric::ciou}) {
    for (const std::size_t n : {std::size_t{100}, std::size_t{1000}, std::size_t{4000}}) {
      const auto at = [&](const char* impl, int threads) {
        return cvk_bench::name(metric_name(m), impl, type_name<T>(), {{"N", n}}, threads);
      };
      for (const int threads : {1, 2}) {
        cvk_bench::add(at("cvk", threads),
                       [m, n, threads](benchmark::State& s) { run_cvk<T>(s, m, n, threads); });
      }
      cvk_bench::add(at("loop", 1), [m, n](benchmark::State& s) { run_loop<T>(s, m, n); });
    }
  }
}

const bool registered = [] {
  register_type<float>();
  register_type<double>();
  return true;
}();

}  // namespace
