// cvk — computer-vision kernels, header-only C++20.
// matrix_nms (Paddle, linear decay), fast_nms (YOLACT) and cluster_nms (Cluster-SPM-NMS with the
// weighted merge, the variant that needs the whole final matrix B) on uniform boxes on a
// 1000×1000 image (sides 1–50, N ∈ {1k, 10k}, every box a candidate: no top_k), against the
// peers' definitions written as plain loops ("loop": the O(N²) pair loops, no stored matrix).
// SPDX-License-Identifier: MIT
#include <benchmark/benchmark.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <map>
#include <numeric>
#include <string>
#include <vector>

#include "common.hpp"
#include "cvk/core.hpp"
#include "cvk/nms/matrix.hpp"

namespace {

using cvk::index_t;
using cvk_bench::type_name;

constexpr double iou_threshold = 0.5;

template <class T>
struct scene {
  std::vector<std::array<T, 4>> boxes;
  std::vector<T> scores;
};

// Uniform boxes (the "uniform" scene of bench_nms.cpp, generated the same way).
template <class T>
const scene<T>& make_scene(std::size_t n) {
  static std::map<std::size_t, scene<T>> cache;
  auto [it, inserted] = cache.try_emplace(n);
  if (!inserted) return it->second;
  scene<T>& s = it->second;
  cvk::rng gen(2019, n);
  s.boxes.resize(n);
  s.scores.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    s.boxes[i] = cvk_bench::uniform_scene_box<T>(gen);
    s.scores[i] = gen.uniform<T>(T(0), T(1));
    (void)gen.below(80);  // the class draw of bench_nms.cpp's scenes
  }
  return s;
}

enum class op { matrix, fast, cluster };

constexpr const char* op_name(op o) noexcept {
  switch (o) {
    case op::matrix:
      return "matrix_nms";
    case op::fast:
      return "fast_nms";
    case op::cluster:
      return "cluster_nms";
  }
  return "?";
}

template <class T>
struct result {
  std::vector<index_t> indices;
  std::vector<T> scores;
  std::vector<std::array<T, 4>> boxes;
  bool operator==(const result&) const = default;
};

// ---------------------------------------------------------------------------------------------
// The plain loops: the peers' definitions, O(N²), no stored matrix.
CVK_KERNEL_BEGIN

template <class T>
std::vector<std::size_t> plain_order(const std::vector<T>& scores) {
  std::vector<std::size_t> order(scores.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return scores[a] > scores[b]; });
  return order;
}

// std::max / std::min spelled out: GCC does not inline them into CVK_KERNEL code.
template <class T>
T max_of(T a, T b) {
  return a < b ? b : a;
}
template <class T>
T min_of(T a, T b) {
  return b < a ? b : a;
}

/// Paddle's NMSMatrix (linear decay, normalized boxes): iou_max per box, then the decays.
template <class T>
result<T> plain_matrix_nms(const scene<T>& s) {
  const auto order = plain_order(s.scores);
  const std::size_t n = order.size();
  std::vector<std::array<T, 4>> b(n);
  std::vector<T> area(n);
  for (std::size_t k = 0; k < n; ++k) {
    b[k] = s.boxes[order[k]];
    area[k] =
        b[k][2] < b[k][0] || b[k][3] < b[k][1] ? T(0) : (b[k][2] - b[k][0]) * (b[k][3] - b[k][1]);
  }
  const auto iou = [&](std::size_t i, std::size_t j) {  // JaccardOverlap(box i, box j)
    if (b[j][0] > b[i][2] || b[j][2] < b[i][0] || b[j][1] > b[i][3] || b[j][3] < b[i][1]) {
      return T(0);
    }
    const T w = min_of(b[i][2], b[j][2]) - max_of(b[i][0], b[j][0]);
    const T h = min_of(b[i][3], b[j][3]) - max_of(b[i][1], b[j][1]);
    const T inter = w * h;
    return inter / (area[i] + area[j] - inter);
  };
  std::vector<T> iou_max(n, T(0));
  for (std::size_t i = 1; i < n; ++i) {
    T m = 0;
    for (std::size_t j = 0; j < i; ++j) m = max_of(m, iou(i, j));
    iou_max[i] = m;
  }
  std::vector<std::pair<std::size_t, T>> kept;
  for (std::size_t i = 0; i < n; ++i) {
    T min_decay = 1;
    for (std::size_t j = 0; j < i; ++j) {
      const auto decay = static_cast<T>((1. - iou(i, j)) / (1. - iou_max[j]));
      min_decay = min_of(min_decay, decay);
    }
    kept.emplace_back(i, min_decay * s.scores[order[i]]);
  }
  std::stable_sort(kept.begin(), kept.end(),
                   [](const auto& x, const auto& y) { return x.second > y.second; });
  result<T> r;
  for (const auto& [k, score] : kept) {
    r.indices.push_back(static_cast<index_t>(order[k]));
    r.scores.push_back(score);
  }
  return r;
}

/// torchvision's IoU.
template <class T>
T tv_iou(const std::array<T, 4>& a, const std::array<T, 4>& c) {
  const T w = max_of(T(0), min_of(a[2], c[2]) - max_of(a[0], c[0]));
  const T h = max_of(T(0), min_of(a[3], c[3]) - max_of(a[1], c[1]));
  const T inter = w * h;
  const T area_a = (a[2] - a[0]) * (a[3] - a[1]);
  const T area_c = (c[2] - c[0]) * (c[3] - c[1]);
  return inter / (area_a + area_c - inter);
}

/// YOLACT Fast NMS: box j kept iff no higher-scored box overlaps it by more than the threshold.
template <class T>
result<T> plain_fast_nms(const scene<T>& s) {
  const auto order = plain_order(s.scores);
  result<T> r;
  for (std::size_t j = 0; j < order.size(); ++j) {
    bool suppressed = false;
    for (std::size_t i = 0; i < j && !suppressed; ++i) {
      suppressed =
          static_cast<double>(tv_iou(s.boxes[order[i]], s.boxes[order[j]])) > iou_threshold;
    }
    if (!suppressed) r.indices.push_back(static_cast<index_t>(order[j]));
  }
  return r;
}

/// Cluster-SPM-NMS with the weighted merge: the greedy keep set (the iteration's fixed point),
/// score · Π exp(-IoU²/0.2) over the kept boxes before it, keep > 0.01, and each kept box the
/// IoU·score-weighted mean of itself and the later boxes with IoU > 0.8.
template <class T>
result<T> plain_cluster_nms(const scene<T>& s) {
  const auto order = plain_order(s.scores);
  const std::size_t n = order.size();
  std::vector<std::array<T, 4>> b(n);
  for (std::size_t k = 0; k < n; ++k) b[k] = s.boxes[order[k]];
  std::vector<unsigned char> suppressed(n, 0);
  for (std::size_t i = 0; i < n; ++i) {
    if (suppressed[i] != 0) continue;
    for (std::size_t j = i + 1; j < n; ++j) {
      if (static_cast<double>(tv_iou(b[i], b[j])) > iou_threshold) suppressed[j] = 1;
    }
  }
  std::vector<T> score(n);
  std::vector<std::pair<std::size_t, T>> rows;
  for (std::size_t j = 0; j < n; ++j) {
    T product = 1;
    for (std::size_t i = 0; i < j; ++i) {
      if (suppressed[i] != 0) continue;
      const T iou = tv_iou(b[i], b[j]);
      if (iou > T(0)) product *= std::exp(-(iou * iou / T(0.2)));
    }
    score[j] = product * s.scores[order[j]];
    if (static_cast<double>(score[j]) > 0.01) rows.emplace_back(j, score[j]);
  }
  std::stable_sort(rows.begin(), rows.end(),
                   [](const auto& x, const auto& y) { return x.second > y.second; });
  result<T> r;
  for (const auto& [i, sc] : rows) {
    std::array<T, 4> sum{};
    for (std::size_t q = 0; q < 4; ++q) sum[q] = b[i][q] * score[i];
    T weight_sum = score[i];
    if (suppressed[i] == 0) {
      for (std::size_t j = i + 1; j < n; ++j) {
        const T iou = tv_iou(b[i], b[j]);
        if (!(static_cast<double>(iou) > 0.8)) continue;
        const T w = iou * score[j];
        for (std::size_t q = 0; q < 4; ++q) sum[q] += b[j][q] * w;
        weight_sum += w;
      }
    }
    std::array<T, 4> merged{};
    for (std::size_t q = 0; q < 4; ++q) merged[q] = sum[q] / weight_sum;
    r.indices.push_back(static_cast<index_t>(order[i]));
    r.scores.push_back(sc);
    r.boxes.push_back(merged);
  }
  return r;
}
CVK_KERNEL_END

template <class T>
result<T> run_plain(op o, const scene<T>& s) {
  switch (o) {
    case op::matrix:
      return plain_matrix_nms(s);
    case op::fast:
      return plain_fast_nms(s);
    case op::cluster:
      return plain_cluster_nms(s);
  }
  return {};
}

const cvk::cluster_nms_options cluster_options{.penalty = cvk::cluster_penalty::score,
                                               .weighted = true};

template <class T>
result<T> run_cvk_once(op o, const scene<T>& s, int threads) {
  result<T> r;
  switch (o) {
    case op::matrix: {
      const auto m = cvk::matrix_nms(s.boxes, s.scores, {.threads = threads});
      r.indices.assign(m.indices.begin(), m.indices.end());
      r.scores.assign(m.scores.begin(), m.scores.end());
      break;
    }
    case op::fast: {
      const auto f = cvk::fast_nms(s.boxes, s.scores, iou_threshold, {.threads = threads});
      r.indices.assign(f.begin(), f.end());
      break;
    }
    case op::cluster: {
      const auto c = cvk::cluster_nms(s.boxes, s.scores, iou_threshold, cluster_options);
      r.indices.assign(c.indices.begin(), c.indices.end());
      r.scores.assign(c.scores.begin(), c.scores.end());
      for (index_t k = 0; k < c.indices.size(); ++k) {
        r.boxes.push_back({c.boxes(k, 0), c.boxes(k, 1), c.boxes(k, 2), c.boxes(k, 3)});
      }
      break;
    }
  }
  return r;
}

const char* label(op o) {
  switch (o) {
    case op::matrix:
      return "matrix_nms, linear decay, all boxes";
    case op::fast:
      return "fast_nms, IoU > 0.5";
    case op::cluster:
      return "cluster_nms, IoU > 0.5, score penalty + weighted merge";
  }
  return "";
}

template <class T>
void run_cvk(benchmark::State& state, op o, std::size_t n, int threads) {
  const scene<T>& s = make_scene<T>(n);
  const bool same =
      cvk_bench::checked_once(std::string(op_name(o)) + type_name<T>() + std::to_string(n),
                              [&] { return run_cvk_once(o, s, threads) == run_plain(o, s); });
  if (!same) {
    state.SkipWithError("cvk disagrees with the plain loop");
    return;
  }
  std::size_t kept = 0;
  for ([[maybe_unused]] auto iteration : state) {
    const auto r = run_cvk_once(o, s, threads);
    kept = r.indices.size();
    benchmark::DoNotOptimize(r.indices.data());
  }
  cvk_bench::set_items(state, n);
  state.counters["kept"] = static_cast<double>(kept);
  state.SetLabel(std::string("boxes/s; cvk::") + label(o));
}

template <class T>
void run_loop(benchmark::State& state, op o, std::size_t n) {
  const scene<T>& s = make_scene<T>(n);
  for ([[maybe_unused]] auto iteration : state) {
    const auto r = run_plain(o, s);
    benchmark::DoNotOptimize(r.indices.data());
  }
  cvk_bench::set_items(state, n);
  state.SetLabel("boxes/s; the definition written as plain O(N²) loops");
}

template <class T>
void register_type() {
  for (const op o : {op::matrix, op::fast, op::cluster}) {
    for (const std::size_t n : {std::size_t{1'000}, std::size_t{10'000}}) {
      const auto at = [&](const char* impl, int threads) {
        return cvk_bench::name(op_name(o), impl, type_name<T>(), {{"N", n}}, threads);
      };
      cvk_bench::add(at("cvk", 1), [o, n](benchmark::State& s) { run_cvk<T>(s, o, n, 1); });
      if (o != op::cluster && n >= 10'000) {
        cvk_bench::add(at("cvk", 2), [o, n](benchmark::State& s) { run_cvk<T>(s, o, n, 2); });
      }
      cvk_bench::add(at("loop", 1), [o, n](benchmark::State& s) { run_loop<T>(s, o, n); });
    }
  }
}

const bool registered = [] {
  register_type<float>();
  register_type<double>();
  // Issue 9's scenes at 20k boxes (common.hpp, adversarial_scene): uniform, far outlier, one
  // NaN box.
  cvk_bench::add_adversarial("matrix_nms_adversarial", 20'000, {0, 3, 5},
                             [](const auto& boxes, const std::vector<float>& scores) {
                               return cvk::matrix_nms(boxes, scores);
                             });
  cvk_bench::add_adversarial("fast_nms_adversarial", 20'000, {0, 3, 5},
                             [](const auto& boxes, const std::vector<float>& scores) {
                               return cvk::fast_nms(boxes, scores, iou_threshold);
                             });
  cvk_bench::add_adversarial("cluster_nms_adversarial", 20'000, {0, 3, 5},
                             [](const auto& boxes, const std::vector<float>& scores) {
                               return cvk::cluster_nms(boxes, scores, iou_threshold,
                                                       cluster_options);
                             });
  return true;
}();

}  // namespace
