// cvk — computer-vision kernels, header-only C++20.
// Gradient attributions (cvk/saliency/gradient.hpp) on one 3×224×224 float image (NCHW) with a
// trivially cheap gradient callable (score 0, gradient = the input: one read and one write per
// element), so the time is cvk's own: integrated_gradients with 50 Gauss–Legendre steps (zero
// baseline, with the completeness delta: 50 + 2 model inputs) and smooth_grad with 25 samples
// (PAIR's defaults: σ = 0.15 of the range, smoothgrad), batch_size 16, 1 and 2 threads.
// Counters:
//   outside_callable  fraction of the wall time spent outside the callable (timed inside it);
//   bytes_per_second  bytes cvk touches per call ÷ time — integrated_gradients per model input:
//                     read x, write the batch slot, read the gradient (4 B each) and read + write
//                     the double accumulator (16 B); per endpoint 8 B; at the end read x and
//                     write the attribution (8 B). smooth_grad per model input: read x, write the
//                     slot, read the gradient (4 B each), read + write the accumulator (16 B).
//                     Compare with the copy bandwidth the post-processing bench measures in the
//                     same binary. smooth_grad also draws one Box–Muller normal (log, sqrt, cos)
//                     per element and sample: it is bound by that arithmetic, not by memory.
// Names: <op>/cvk/float/C:3/H:224/W:224/steps|samples:<k>/batch:16/threads:<T>.
// SPDX-License-Identifier: MIT
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common.hpp"
#include "cvk/core/rng.hpp"
#include "cvk/saliency/gradient.hpp"

namespace {

using cvk::index_t;
using clock_type = std::chrono::steady_clock;

constexpr index_t channels = 3, height = 224, width = 224;
constexpr index_t image_elements = channels * height * width;

const std::vector<float>& image() { return cvk_bench::saliency_image(11); }

/// Score 0 and gradient = input, timing itself.
struct cheap_gradient {
  double* seconds_inside;
  void operator()(cvk::strided_view<const float, 4> batch, cvk::strided_view<float, 1> scores,
                  cvk::strided_view<float, 4> grads) const {
    const auto start = clock_type::now();
    const index_t count = batch.size();
    const float* in = batch.data();
    float* out = grads.data();
    for (index_t i = 0; i < count; ++i) out[i] = in[i];
    for (index_t b = 0; b < scores.extent(0); ++b) scores(b) = 0.0f;
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
    run(cheap_gradient{&inside});
    total += std::chrono::duration<double>(clock_type::now() - start).count();
  }
  state.counters["outside_callable"] = total > 0.0 ? (total - inside) / total : 0.0;
  state.counters["bytes_per_second"] = benchmark::Counter(
      bytes_per_call * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

void bench_integrated_gradients(benchmark::State& state, index_t steps, int threads) {
  const cvk::strided_view<const float, 4> x(image().data(), {1, channels, height, width});
  cvk::tensor<float, 4> attributions(x.extents());
  cvk::tensor<float, 1> delta(std::array<index_t, 1>{1});
  const cvk::integrated_gradients_params p{.steps = steps, .threads = threads};
  const auto elements = static_cast<double>(image_elements);
  const double bytes = elements * (static_cast<double>(steps) * 28.0 + 2.0 * 8.0 + 8.0);
  timed(state, bytes, threads, [&](cheap_gradient g) {
    cvk::integrated_gradients(x, g, p, attributions, delta);
    benchmark::DoNotOptimize(attributions.data());
    benchmark::ClobberMemory();
  });
  state.SetLabel("cvk; zero baseline, gauss_legendre, with delta");
}

void bench_smooth_grad(benchmark::State& state, index_t samples, int threads) {
  const cvk::strided_view<const float, 4> x(image().data(), {1, channels, height, width});
  cvk::tensor<float, 4> out(x.extents());
  const cvk::smooth_grad_params p{.samples = samples, .threads = threads};
  const double bytes = static_cast<double>(image_elements) * static_cast<double>(samples) * 28.0;
  timed(state, bytes, threads, [&](cheap_gradient g) {
    cvk::smooth_grad(x, g, p, out);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  });
  state.SetLabel("cvk; smoothgrad, sigma 0.15 of the range");
}

std::vector<std::pair<std::string, std::size_t>> shape_params(const char* key, index_t k) {
  const auto size = [](index_t v) { return static_cast<std::size_t>(v); };
  return {{"C", size(channels)},
          {"H", size(height)},
          {"W", size(width)},
          {key, size(k)},
          {"batch", 16}};
}

const bool registered = [] {
  for (const int threads : {1, 2}) {
    cvk_bench::add(
        cvk_bench::name("integrated_gradients", "cvk", "float", shape_params("steps", 50), threads),
        [threads](benchmark::State& state) { bench_integrated_gradients(state, 50, threads); });
    cvk_bench::add(
        cvk_bench::name("smooth_grad", "cvk", "float", shape_params("samples", 25), threads),
        [threads](benchmark::State& state) { bench_smooth_grad(state, 25, threads); });
  }
  return true;
}();

}  // namespace
