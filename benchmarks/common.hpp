// cvk — computer-vision kernels, header-only C++20.
// Shared by the benchmark files: the naming scheme, cached random inputs, throughput counters.
// SPDX-License-Identifier: MIT
#pragma once

#include <benchmark/benchmark.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "cvk/core/rng.hpp"

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

}  // namespace cvk_bench
