// cvk — computer-vision kernels, header-only C++20.
// em_merge (the EM-Merger of Goldman et al., CVPR 2019) on the dense shelf of bench_nms.cpp:
// 150 products on a 15 × 10 shelf of 60 × 90 cells, 200 or 20 jittered candidates each
// (N = 30 000 and 3 000), uniform random scores; against greedy cvk::nms at IoU 0.3 (the
// merger's own final step, impl "cvk_nms") on the same scene. Items are input boxes.
// SPDX-License-Identifier: MIT
#include <benchmark/benchmark.h>

#include <array>
#include <cmath>
#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "common.hpp"
#include "cvk/cvk.hpp"
#include "cvk/nms/em_merge.hpp"

namespace {

using cvk::index_t;
using cvk_bench::type_name;

constexpr std::size_t objects = 150;

template <class T>
struct scene {
  std::vector<std::array<T, 4>> boxes;
  std::vector<T> scores;
};

// The shelf of bench_nms.cpp (same generator, same seed scheme), `per_object` candidates per
// product: centres jittered by N(0, 6) × N(0, 9) px, sides by a factor exp(N(0, 0.1)).
template <class T>
const scene<T>& make_shelf(std::size_t per_object) {
  static std::map<std::size_t, scene<T>> cache;
  auto [it, inserted] = cache.try_emplace(per_object);
  if (!inserted) return it->second;
  scene<T>& s = it->second;
  const std::size_t n = objects * per_object;
  cvk::rng gen(2019, n + 17);
  s.boxes.resize(n);
  s.scores.resize(n);
  for (std::size_t i = 0; i < n; ++i) s.scores[i] = gen.uniform<T>(T(0), T(1));
  cvk_bench::shelf_scene(gen, per_object, s.boxes);
  return s;
}

template <class T>
void run_em_merge(benchmark::State& state, std::size_t per_object) {
  const scene<T>& s = make_shelf<T>(per_object);
  // Sanity, once per process: about one detection per product.
  const bool plausible = cvk_bench::checked_once(
      std::string("em_merge") + type_name<T>() + std::to_string(per_object), [&] {
        const auto r = cvk::em_merge(s.boxes, s.scores);
        return r.indices.size() >= static_cast<index_t>(objects) - 10 &&
               r.indices.size() <= static_cast<index_t>(objects) + 10;
      });
  if (!plausible) {
    state.SkipWithError("em_merge did not find about one detection per product");
    return;
  }
  index_t kept = 0;
  for ([[maybe_unused]] auto iteration : state) {
    const auto result = cvk::em_merge(s.boxes, s.scores);
    kept = result.indices.size();
    benchmark::DoNotOptimize(result.indices.data());
  }
  cvk_bench::set_items(state, s.boxes.size());
  state.counters["kept"] = static_cast<double>(kept);
  state.SetLabel("boxes/s; cvk::em_merge, default options (150 products)");
}

template <class T>
void run_nms(benchmark::State& state, std::size_t per_object) {
  const scene<T>& s = make_shelf<T>(per_object);
  index_t kept = 0;
  for ([[maybe_unused]] auto iteration : state) {
    const auto result = cvk::nms(s.boxes, s.scores, 0.3);
    kept = result.size();
    benchmark::DoNotOptimize(result.data());
  }
  cvk_bench::set_items(state, s.boxes.size());
  state.counters["kept"] = static_cast<double>(kept);
  state.SetLabel("boxes/s; cvk::nms, IoU > 0.3 (150 products)");
}

template <class T>
void register_type() {
  for (const std::size_t per_object : {std::size_t{20}, std::size_t{200}}) {
    const std::size_t n = objects * per_object;
    const auto at = [&](const char* impl) {
      return cvk_bench::name("em_merge", impl, type_name<T>(), {{"N", n}}, 1);
    };
    cvk_bench::add(at("cvk"),
                   [per_object](benchmark::State& s) { run_em_merge<T>(s, per_object); });
    cvk_bench::add(at("cvk_nms"), [per_object](benchmark::State& s) { run_nms<T>(s, per_object); });
  }
}

const bool registered = [] {
  register_type<float>();
  register_type<double>();
  return true;
}();

}  // namespace
