// cvk — computer-vision kernels, header-only C++20.
// Shared by the benchmark files: the naming scheme, cached random inputs, throughput counters.
// SPDX-License-Identifier: MIT
#pragma once

#include <benchmark/benchmark.h>

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "cvk/core/rng.hpp"

#if defined(_OPENMP)
#  include <omp.h>
#endif

namespace cvk_bench {

/// Sizes every O(N) box benchmark runs at.
inline constexpr std::array<std::size_t, 3> box_counts = {1'000, 100'000, 1'000'000};

template <class T>
constexpr const char* type_name() noexcept {
  if constexpr (std::is_same_v<T, float>) {
    return "float";
  } else {
    static_assert(std::is_same_v<T, double>, "benchmarks run on float or double");
    return "double";
  }
}

/// A 3×224×224 float image of uniform values in [0, 1) drawn from cvk::rng(2019, stream), made
/// once per stream and kept for the process (the saliency benchmarks' input).
inline const std::vector<float>& saliency_image(std::uint64_t stream) {
  static std::map<std::uint64_t, std::vector<float>> images;
  auto [it, fresh] = images.try_emplace(stream);
  if (fresh) {
    it->second.resize(3 * 224 * 224);
    cvk::rng gen(2019, stream);
    for (float& x : it->second) x = gen.uniform<float>(0.0f, 1.0f);
  }
  return it->second;
}

/// The name every benchmark (and every peer script) uses, which benchmarks/report.py parses:
/// `op/impl/type/key:value/.../threads:T`, e.g. "box_area/cvk/float/N:1000/threads:1".
/// `impl` is "cvk", "loop" (the plain reference loop) or a peer ("opencv", "onednn", ...).
inline std::string name(const std::string& op, const std::string& impl, const std::string& type,
                        const std::vector<std::pair<std::string, std::size_t>>& params,
                        int threads = 1) {
  std::string result = op + "/" + impl + "/" + type;
  for (const auto& [key, value] : params) result += "/" + key + ":" + std::to_string(value);
  return result + "/threads:" + std::to_string(threads);
}

/// A box of the uniform NMS scene (docs/nms.md): top-left corner uniform on a 1000×1000
/// image, sides uniform in [1, 50]; xyxy.
template <class T>
std::array<T, 4> uniform_scene_box(cvk::rng& gen) {
  const double x = gen.uniform(0.0, 1000.0);
  const double y = gen.uniform(0.0, 1000.0);
  const double w = gen.uniform(1.0, 50.0);
  const double h = gen.uniform(1.0, 50.0);
  return {static_cast<T>(x), static_cast<T>(y), static_cast<T>(x + w), static_cast<T>(y + h)};
}

/// The dense shelf of the NMS benchmarks: 150 products on a 15 × 10 shelf of 60 × 90 cells,
/// `per_object` candidates each, jittered by 10%; boxes[o · per_object + c] (xyxy).
template <class T>
void shelf_scene(cvk::rng& gen, std::size_t per_object, std::vector<std::array<T, 4>>& boxes) {
  constexpr std::size_t objects = 150;
  boxes.resize(objects * per_object);
  for (std::size_t o = 0; o < objects; ++o) {
    const double cx = 40.0 + 65.0 * static_cast<double>(o % 15);
    const double cy = 50.0 + 95.0 * static_cast<double>(o / 15);
    for (std::size_t c = 0; c < per_object; ++c) {
      const double w = 60.0 * std::exp(gen.normal(0.0, 0.1));
      const double h = 90.0 * std::exp(gen.normal(0.0, 0.1));
      const double x = cx + gen.normal(0.0, 6.0);
      const double y = cy + gen.normal(0.0, 9.0);
      boxes[o * per_object + c] = {static_cast<T>(x - w / 2), static_cast<T>(y - h / 2),
                                   static_cast<T>(x + w / 2), static_cast<T>(y + h / 2)};
    }
  }
}

/// The adversarial scenes of the NMS benchmarks (issue 9), the `scene:<id>` key of their names:
/// 0 the uniform scene (uniform_scene_box), 1 every box (0, 0, 0, 0) (exported detectors'
/// padding), 2 every coordinate NaN, 3 the uniform scene with box 0 at (1e9, 1e9, 1e9 + 128,
/// 1e9 + 128), 4 the uniform scene with every odd box a long thin strip (1000 × 0.005, stacked
/// 0.01 apart below the image), 5 the uniform scene with box 0 NaN. The same boxes as
/// tests/support/nms_scenes.hpp's cost scenes, drawn with `gen`; xyxy.
inline constexpr std::array<const char*, 6> adversarial_scene_names = {
    "uniform", "zeros", "nans", "far_outlier", "thin_strips", "one_nan"};

template <class T>
std::vector<std::array<T, 4>> adversarial_scene(cvk::rng& gen, std::size_t scene, std::size_t n) {
  std::vector<std::array<T, 4>> boxes(n);
  for (auto& b : boxes) b = uniform_scene_box<T>(gen);
  const T nan = std::numeric_limits<T>::quiet_NaN();
  switch (scene) {
    case 1:
      for (auto& b : boxes) b = {T(0), T(0), T(0), T(0)};
      break;
    case 2:
      for (auto& b : boxes) b = {nan, nan, nan, nan};
      break;
    case 3:
      if (n > 0) boxes[0] = {T(1e9), T(1e9), T(1e9 + 128), T(1e9 + 128)};
      break;
    case 4:
      for (std::size_t i = 1; i < n; i += 2) {
        const double y = 1000.0 + 0.01 * static_cast<double>(i / 2);
        boxes[i] = {T(0), static_cast<T>(y), T(1000), static_cast<T>(y + 0.005)};
      }
      break;
    case 5:
      if (n > 0) boxes[0] = {nan, nan, nan, nan};
      break;
    default:
      break;
  }
  return boxes;
}

/// `n` random xyxy boxes with corners in [0, 1000) and sides in [1, 100), the same on every
/// run (fixed seed, one stream per size). Cached: the 1M-box input is generated once.
template <class T>
const std::vector<std::array<T, 4>>& random_boxes(std::size_t n) {
  static std::map<std::size_t, std::vector<std::array<T, 4>>> cache;
  auto [it, inserted] = cache.try_emplace(n);
  if (inserted) {
    cvk::rng gen(2019, n);
    it->second.resize(n);
    for (auto& box : it->second) {
      const T x1 = gen.uniform<T>(T(0), T(1000));
      const T y1 = gen.uniform<T>(T(0), T(1000));
      box = {x1, y1, x1 + gen.uniform<T>(T(1), T(100)), y1 + gen.uniform<T>(T(1), T(100))};
    }
  }
  return it->second;
}

/// Runs `check()` (true when the benchmarked code agrees with its reference) once per process
/// for `key` and remembers the answer. Google Benchmark calls a benchmark's function again for
/// every repetition and every iteration-count probe, so an O(N²) check in the function body
/// would otherwise dominate the suite's run time.
template <class Check>
bool checked_once(const std::string& key, Check check) {
  static std::map<std::string, bool> verdicts;
  auto [it, inserted] = verdicts.try_emplace(key, false);
  if (inserted) it->second = check();
  return it->second;
}

/// Whether a peer's values `theirs` equal cvk's `mine` (n floats each) up to float sums taken in
/// another order: a relative tolerance of 1e-3.
inline bool close_floats(const float* mine, const float* theirs, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    if (!(std::fabs(mine[i] - theirs[i]) <= 1e-3f * (1.0f + std::fabs(theirs[i])))) return false;
  }
  return true;
}

/// Sets OpenMP's thread count (oneDNN's CPU runtime in Debian's build) for one benchmark and
/// restores it afterwards.
class omp_threads_scope {
 public:
  explicit omp_threads_scope([[maybe_unused]] int threads) {
#if defined(_OPENMP)
    omp_set_num_threads(threads);
#endif
  }
  ~omp_threads_scope() {
#if defined(_OPENMP)
    omp_set_num_threads(previous_);
#endif
  }
  omp_threads_scope(const omp_threads_scope&) = delete;
  omp_threads_scope& operator=(const omp_threads_scope&) = delete;

 private:
#if defined(_OPENMP)
  int previous_ = omp_get_max_threads();
#endif
};

/// Reports `items_per_iteration` items per iteration (boxes/s for box operators).
inline void set_items(benchmark::State& state, std::size_t items_per_iteration) {
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) *
                          static_cast<std::int64_t>(items_per_iteration));
}

/// Registers `body(state)` under `bench_name` with the suite's common settings: wall-clock time
/// (multi-threaded kernels must not be charged the sum of their threads' CPU time), in µs. The
/// minimum time per repetition is the --benchmark_min_time flag (main.cpp defaults it to 0.05 s).
template <class Body>
void add(const std::string& bench_name, Body body) {
  benchmark::RegisterBenchmark(bench_name.c_str(), std::move(body))
      ->Unit(benchmark::kMicrosecond)
      ->UseRealTime();
}

/// Adversarial scene `scene` of n boxes (float, xyxy) and its scores (uniform in [0, 1), drawn
/// after the boxes from the same stream), made once per process and (scene, n).
inline const std::pair<std::vector<std::array<float, 4>>, std::vector<float>>& adversarial_input(
    std::size_t scene, std::size_t n) {
  static std::map<std::pair<std::size_t, std::size_t>,
                  std::pair<std::vector<std::array<float, 4>>, std::vector<float>>>
      cache;
  auto [it, inserted] = cache.try_emplace({scene, n});
  if (inserted) {
    cvk::rng gen(2019, n);
    it->second.first = adversarial_scene<float>(gen, scene, n);
    it->second.second.resize(n);
    for (auto& v : it->second.second) v = gen.uniform<float>(0.0F, 1.0F);
  }
  return it->second;
}

/// Registers `<op>/cvk/float/N:<n>/scene:<k>` for each of `scenes` (adversarial_scene), timing
/// `run(input, scores)`, where input = prepare(boxes) is made once, outside the timed loop (e.g.
/// the boxes as rotated boxes). Issue 9: every scene must cost about what the uniform one costs.
template <class Prepare, class Run>
void add_adversarial(const std::string& op, std::size_t n,
                     std::initializer_list<std::size_t> scenes, Prepare prepare, Run run) {
  using input_type =
      std::decay_t<decltype(prepare(std::declval<const std::vector<std::array<float, 4>>&>()))>;
  for (const std::size_t scene : scenes) {
    auto input = std::make_shared<std::optional<input_type>>();
    add(name(op, "cvk", "float", {{"N", n}, {"scene", scene}}), [=](benchmark::State& state) {
      const auto& [boxes, scores] = adversarial_input(scene, n);
      if (!input->has_value()) *input = prepare(boxes);
      for (auto _ : state) {
        auto out = run(**input, scores);
        benchmark::DoNotOptimize(out);
      }
      set_items(state, n);
    });
  }
}

/// add_adversarial on the xyxy boxes themselves.
template <class Run>
void add_adversarial(const std::string& op, std::size_t n,
                     std::initializer_list<std::size_t> scenes, Run run) {
  add_adversarial(
      op, n, scenes, [](const std::vector<std::array<float, 4>>& boxes) { return boxes; }, run);
}

}  // namespace cvk_bench
