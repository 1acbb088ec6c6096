// cvk — computer-vision kernels, header-only C++20.
// Saliency post-processing and metrics (cvk/saliency/postprocess.hpp, metrics.hpp) at ImageNet
// size, float, against the memory-bandwidth bound measured in the same binary:
//   copy_bandwidth   memcpy of 64 MiB: bytes_per_second counts the bytes read plus the bytes
//                    written (2 × 64 MiB per call), the bound every other row is compared with
//   ssim             224×224 map pairs, 7×7 uniform window (skimage's default), 1 and 32 pairs
//   upsample_bilinear  7×7 → 224×224 (a Grad-CAM map to the input), align_corners = false
//   normalize        224×224, min_max
//   colormap         224×224, jet, to uint8 RGB
// Every row's bytes_per_second counter is the bytes the call must touch at least (inputs read
// once, outputs written once) per second, so bytes_per_second ÷ copy_bandwidth's is the fraction
// of the bandwidth bound reached (1 = as fast as a copy of the same bytes).
//
// Names: <op>/cvk/float/<key:value>.../threads:<T>.
// SPDX-License-Identifier: MIT
#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "common.hpp"
#include "cvk/core/rng.hpp"
#include "cvk/core/tensor.hpp"
#include "cvk/saliency/metrics.hpp"
#include "cvk/saliency/postprocess.hpp"

namespace {

using cvk::index_t;

/// Reports `bytes` touched per call as the rate counter bytes_per_second.
void set_bytes(benchmark::State& state, double bytes) {
  state.counters["bytes_per_second"] = benchmark::Counter(
      bytes * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

cvk::tensor<float, 3> random_maps(index_t n, index_t h, index_t w, std::uint64_t stream) {
  cvk::tensor<float, 3> maps(n, h, w);
  cvk::rng gen(2018, stream);
  for (float& v : maps) v = gen.uniform<float>(-1.0f, 1.0f);
  return maps;
}

void bench_copy(benchmark::State& state) {
  constexpr std::size_t bytes = std::size_t{64} << 20;
  std::vector<unsigned char> src(bytes, 1), dst(bytes, 0);
  for (auto _ : state) {
    std::memcpy(dst.data(), src.data(), bytes);
    benchmark::DoNotOptimize(dst.data());
    benchmark::ClobberMemory();
  }
  set_bytes(state, 2.0 * static_cast<double>(bytes));
  state.SetLabel("memcpy; bytes read + written");
}

void bench_ssim(benchmark::State& state, index_t n, int threads) {
  const auto a = random_maps(n, 224, 224, 1);
  auto b = random_maps(n, 224, 224, 2);
  for (std::size_t i = 0; i < static_cast<std::size_t>(b.size()); ++i) {
    b.data()[i] = 0.5f * b.data()[i] + a.data()[i];
  }
  cvk::tensor<float, 1> out(n);
  for (auto _ : state) {
    cvk::ssim(a, b, out, {.threads = threads});
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  set_bytes(state, 2.0 * static_cast<double>(n) * 224 * 224 * sizeof(float));
  state.SetLabel("7x7 uniform; bytes of both maps");
}

void bench_upsample(benchmark::State& state) {
  const auto maps = random_maps(1, 7, 7, 3);
  cvk::tensor<float, 3> out(1, 224, 224);
  for (auto _ : state) {
    cvk::upsample_bilinear(maps, out, {.threads = 1});
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  set_bytes(state, (49.0 + 224.0 * 224.0) * sizeof(float));
  state.SetLabel("7x7 -> 224x224; bytes read + written");
}

void bench_normalize(benchmark::State& state) {
  const auto maps = random_maps(1, 224, 224, 4);
  cvk::tensor<float, 3> out(1, 224, 224);
  for (auto _ : state) {
    cvk::normalize(maps, out, {.threads = 1});
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  set_bytes(state, 2.0 * 224 * 224 * sizeof(float));
  state.SetLabel("min_max; bytes read + written");
}

void bench_colormap(benchmark::State& state) {
  auto maps = random_maps(1, 224, 224, 5);
  for (float& v : maps) v = 0.5f * (v + 1.0f);
  cvk::tensor<std::uint8_t, 4> out(1, 224, 224, 3);
  for (auto _ : state) {
    cvk::colormap(maps, out, {.threads = 1});
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  set_bytes(state, 224.0 * 224 * (sizeof(float) + 3));
  state.SetLabel("jet; bytes read + written");
}

const bool registered = [] {
  cvk_bench::add(cvk_bench::name("copy_bandwidth", "cvk", "float", {{"MiB", 64}}, 1),
                 [](benchmark::State& state) { bench_copy(state); });
  for (const index_t n : {index_t{1}, index_t{32}}) {
    for (const int threads : {1, 2}) {
      if (n == 1 && threads == 2) continue;  // one pair runs on one thread
      cvk_bench::add(
          cvk_bench::name("ssim", "cvk", "float",
                          {{"size", 224}, {"batch", static_cast<std::size_t>(n)}}, threads),
          [n, threads](benchmark::State& state) { bench_ssim(state, n, threads); });
    }
  }
  cvk_bench::add(cvk_bench::name("upsample_bilinear", "cvk", "float", {{"from", 7}, {"size", 224}}),
                 [](benchmark::State& state) { bench_upsample(state); });
  cvk_bench::add(cvk_bench::name("normalize", "cvk", "float", {{"size", 224}}),
                 [](benchmark::State& state) { bench_normalize(state); });
  cvk_bench::add(cvk_bench::name("colormap", "cvk", "float", {{"size", 224}}),
                 [](benchmark::State& state) { bench_colormap(state); });
  return true;
}();

}  // namespace
