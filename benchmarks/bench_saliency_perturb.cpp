// cvk — computer-vision kernels, header-only C++20.
// Perturbation saliency (cvk/saliency/perturbation.hpp) on 224×224 float images:
//   rise_masks   64 RISE masks (7 cells, p = 0.5, paper upsampling) per iteration; items = masks,
//                bytes_per_second = the 224·224·4 bytes written per mask ÷ time (the grid draw
//                and the 7-line horizontal pass touch only cache-resident scratch).
//   rise         256 masks of one 3×224×224 image through a cheap forward callable (the sum of
//                the batch image, one read per element), batch 16;
//   occlusion    16×16 windows over all channels, stride 8 (27 × 27 = 729 windows + the clean
//                image) of one 3×224×224 image through the same callable, batch 16.
// Counters of the callable methods:
//   outside_callable  fraction of the wall time spent outside the callable (timed inside it);
//   bytes_per_second  bytes cvk itself touches per call ÷ wall time (cvk_bytes_per_second: ÷ the
//                     time outside the callable, cvk's own rate). rise per model input: read x
//                     and write the batch slot (2·3·4 B per pixel), write the mask and read it
//                     twice (12 B), read + write the double accumulator (16 B): 52 B per pixel.
//                     occlusion: 16 slots filled once (read x, write: 24 B per pixel), per
//                     window restore + occlude + accumulate (4 + 4 + 4 + 16 B per occluded
//                     element), at the end read the accumulator and write the result (12 B per
//                     element). Compare with the copy bandwidth of the same binary
//                     (copy_bandwidth rows of the post-processing bench).
// Names: <op>/cvk/float/C:3/H:224/W:224/.../threads:<T>.
// SPDX-License-Identifier: MIT
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common.hpp"
#include "cvk/core/rng.hpp"
#include "cvk/saliency/perturbation.hpp"

namespace {

using cvk::index_t;
using clock_type = std::chrono::steady_clock;

constexpr index_t channels = 3, height = 224, width = 224;
constexpr index_t image_elements = channels * height * width;

const std::vector<float>& image() { return cvk_bench::saliency_image(12); }

/// score = Σ of the image's elements (one read each), timing itself.
struct sum_model {
  double* seconds_inside;
  void operator()(cvk::strided_view<const float, 4> batch,
                  cvk::strided_view<float, 1> scores) const {
    const auto start = clock_type::now();
    const index_t per_image = batch.size() / std::max<index_t>(batch.extent(0), 1);
    for (index_t b = 0; b < batch.extent(0); ++b) {
      const float* in = batch.data() + b * per_image;
      float sum = 0.0f;
      for (index_t i = 0; i < per_image; ++i) sum += in[i];
      scores(b) = sum;
    }
    *seconds_inside += std::chrono::duration<double>(clock_type::now() - start).count();
  }
};

template <class Run>
void timed(benchmark::State& state, double bytes_per_call, int threads, Run&& run) {
  const cvk_bench::omp_threads_scope omp_threads(threads);
  double inside = 0.0;
  double total = 0.0;
  for (auto _ : state) {
    const auto start = clock_type::now();
    run(sum_model{&inside});
    total += std::chrono::duration<double>(clock_type::now() - start).count();
  }
  state.counters["outside_callable"] = total > 0.0 ? (total - inside) / total : 0.0;
  state.counters["bytes_per_second"] = benchmark::Counter(
      bytes_per_call * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  // The same bytes over the time outside the callable only: cvk's own memory rate.
  state.counters["cvk_bytes_per_second"] =
      total > inside ? bytes_per_call * static_cast<double>(state.iterations()) / (total - inside)
                     : 0.0;
}

void bench_rise_masks(benchmark::State& state, index_t masks, int threads) {
  const cvk_bench::omp_threads_scope omp_threads(threads);
  cvk::tensor<float, 3> out(masks, height, width);
  const cvk::rise_params p{.cells = 7, .threads = threads};
  std::uint64_t first = 0;
  for (auto _ : state) {
    cvk::rise_masks(out, p, first);
    first += static_cast<std::uint64_t>(masks);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  cvk_bench::set_items(state, static_cast<std::size_t>(masks));
  state.counters["bytes_per_second"] = benchmark::Counter(
      static_cast<double>(masks * height * width) * 4.0 * static_cast<double>(state.iterations()),
      benchmark::Counter::kIsRate);
  state.SetLabel("cvk; masks/s = items_per_second");
}

void bench_rise(benchmark::State& state, index_t masks, int threads) {
  const cvk::strided_view<const float, 4> x(image().data(), {1, channels, height, width});
  cvk::tensor<float, 3> maps(1, height, width);
  const cvk::rise_params p{.masks = masks, .model = {.batch_size = 16}, .threads = threads};
  const double bytes = static_cast<double>(masks) * static_cast<double>(height * width) * 52.0;
  timed(state, bytes, threads, [&](sum_model f) {
    cvk::rise(x, f, p, maps);
    benchmark::DoNotOptimize(maps.data());
    benchmark::ClobberMemory();
  });
  state.SetLabel("cvk; 7 cells, p 0.5, paper upsampling");
}

void bench_occlusion(benchmark::State& state, int threads) {
  const cvk::strided_view<const float, 4> x(image().data(), {1, channels, height, width});
  cvk::tensor<float, 4> out(x.extents());
  const cvk::occlusion_params p{.window = {.height = 16, .width = 16},
                                .strides = {.height = 8, .width = 8},
                                .model = {.batch_size = 16},
                                .threads = threads};
  const double windows = 27.0 * 27.0;
  const double elements = static_cast<double>(image_elements);
  const double bytes = 16.0 * elements * 8.0 + windows * 3.0 * 16.0 * 16.0 * 28.0 + elements * 12.0;
  timed(state, bytes, threads, [&](sum_model f) {
    cvk::occlusion(x, f, p, out);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  });
  state.SetLabel("cvk; 16x16 all channels, stride 8, Captum averaging");
}

std::vector<std::pair<std::string, std::size_t>> shape_params(
    std::vector<std::pair<std::string, std::size_t>> extra) {
  std::vector<std::pair<std::string, std::size_t>> params{{"C", static_cast<std::size_t>(channels)},
                                                          {"H", static_cast<std::size_t>(height)},
                                                          {"W", static_cast<std::size_t>(width)}};
  params.insert(params.end(), extra.begin(), extra.end());
  return params;
}

const bool registered = [] {
  for (const int threads : {1, 2}) {
    cvk_bench::add(cvk_bench::name("rise_masks", "cvk", "float",
                                   {{"H", 224}, {"W", 224}, {"cells", 7}, {"masks", 64}}, threads),
                   [threads](benchmark::State& state) { bench_rise_masks(state, 64, threads); });
    cvk_bench::add(cvk_bench::name("rise", "cvk", "float",
                                   shape_params({{"masks", 256}, {"batch", 16}}), threads),
                   [threads](benchmark::State& state) { bench_rise(state, 256, threads); });
    cvk_bench::add(
        cvk_bench::name("occlusion", "cvk", "float",
                        shape_params({{"window", 16}, {"stride", 8}, {"batch", 16}}), threads),
        [threads](benchmark::State& state) { bench_occlusion(state, threads); });
  }
  return true;
}();

}  // namespace
