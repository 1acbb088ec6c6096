// cvk — computer-vision kernels, header-only C++20.
// Extremal perturbations (cvk/saliency/extremal.hpp) at 224×224, float, 1 and 2 threads:
//   smooth_mask_forward / smooth_mask_backward / smooth_mask_step: the smooth-mask generator of
//     one mask with TorchRay's defaults (step 7, sigma 21: a 32×32 grid, a 260×260 full mask,
//     81 taps per pixel, smooth max with coldness 20) — forward into a preallocated full mask,
//     backward from a full-mask gradient, and both (one optimisation step's mask work);
//   perturbation_step: one perturbation step of a 3×224×224 image, 8 blur levels — apply of one
//     mask and its backward from an image gradient;
//   extremal_iterations: extremal_perturbation itself (blur, preserve, one area, 8 iterations)
//     with a trivial analytic callable (score = mean of a rectangle), whose time is measured
//     inside the callable: counter outside_callable = fraction of the time spent in cvk. The
//     pyramid is built once per call (amortised over TorchRay's 800 iterations in real use).
// Counter bytes_per_second: the bytes each call must read and write at least (inputs once,
// outputs once; the mask generator's tap weights and intermediate values excluded), per second
// — compare with the copy bandwidth of the same binary (copy_bandwidth rows) for the
// memory-bound fraction.
//
// Names: <op>/cvk/float/size:224/threads:<T>.
// SPDX-License-Identifier: MIT
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common.hpp"
#include "cvk/core/rng.hpp"
#include "cvk/saliency/extremal.hpp"

namespace {

using cvk::index_t;

constexpr index_t size = 224;
constexpr index_t channels = 3;

void set_bytes(benchmark::State& state, double bytes_per_call) {
  state.counters["bytes_per_second"] = benchmark::Counter(
      bytes_per_call * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

std::vector<float> random_values(std::size_t n, std::uint64_t stream, float lo, float hi) {
  cvk::rng gen(2019, stream);
  std::vector<float> v(n);
  for (float& x : v) x = gen.uniform<float>(lo, hi);
  return v;
}

enum class mask_part { forward, backward, both };

void bench_smooth_mask(benchmark::State& state, mask_part part, int threads) {
  const cvk::smooth_mask_params p{.threads = threads};
  const auto g = cvk::smooth_mask_shape({size, size}, p);
  const auto grid_values =
      random_values(static_cast<std::size_t>(g.grid_height * g.grid_width), 1, 0.0F, 1.0F);
  const auto grad_values =
      random_values(static_cast<std::size_t>(g.full_height * g.full_width), 2, -1.0F, 1.0F);
  const cvk::strided_view<const float, 3> grid(grid_values.data(),
                                               {1, g.grid_height, g.grid_width});
  const cvk::strided_view<const float, 3> grad(grad_values.data(),
                                               {1, g.full_height, g.full_width});
  cvk::tensor<float, 3> full(1, g.full_height, g.full_width);
  cvk::tensor<float, 3> grad_grid(1, g.grid_height, g.grid_width);
  for (auto _ : state) {
    if (part != mask_part::backward) cvk::smooth_mask_full(grid, p, {size, size}, full);
    if (part != mask_part::forward) {
      cvk::smooth_mask_full_backward(grid, p, {size, size}, grad, grad_grid);
    }
    benchmark::DoNotOptimize(full.data());
    benchmark::DoNotOptimize(grad_grid.data());
  }
  const double grid_bytes = 4.0 * static_cast<double>(g.grid_height * g.grid_width);
  const double full_bytes = 4.0 * static_cast<double>(g.full_height * g.full_width);
  double bytes = 0;
  if (part != mask_part::backward) bytes += grid_bytes + full_bytes;
  if (part != mask_part::forward) bytes += grid_bytes + full_bytes + grid_bytes;
  set_bytes(state, bytes);
  state.SetLabel("1 mask, 32x32 grid -> 260x260 full mask, 81 taps per pixel");
}

void bench_perturbation_step(benchmark::State& state, int threads) {
  const auto image = random_values(static_cast<std::size_t>(channels * size * size), 3, 0, 1);
  const auto mask = random_values(static_cast<std::size_t>(size * size), 4, 0, 1);
  const auto grad = random_values(static_cast<std::size_t>(channels * size * size), 5, -1, 1);
  const cvk::perturbation_pyramid pyr(
      cvk::strided_view<const float, 4>(image.data(), {1, channels, size, size}),
      {.threads = threads});
  const cvk::strided_view<const float, 3> m(mask.data(), {1, size, size});
  const cvk::strided_view<const float, 4> gv(grad.data(), {1, channels, size, size});
  cvk::tensor<float, 4> out(1, channels, size, size);
  cvk::tensor<float, 3> dmask(1, size, size);
  for (auto _ : state) {
    pyr.apply(m, out);
    pyr.apply_backward(m, gv, dmask);
    benchmark::DoNotOptimize(out.data());
    benchmark::DoNotOptimize(dmask.data());
  }
  // apply: mask + 2 levels × C read, C written; backward: mask + C gradient + 2 levels × C read,
  // the mask gradient written.
  const double plane = 4.0 * static_cast<double>(size * size);
  set_bytes(state,
            plane * (1 + 2 * channels + channels) + plane * (1 + channels + 2 * channels + 1));
  state.SetLabel("3x224x224, 8 blur levels: apply + backward of one mask");
}

void bench_iterations(benchmark::State& state, int threads) {
  const auto image = random_values(static_cast<std::size_t>(channels * size * size), 6, 0, 1);
  const cvk::strided_view<const float, 4> x(image.data(), {1, channels, size, size});
  const index_t iterations = 8;
  const cvk::extremal_params p{.max_iter = iterations, .threads = threads};
  double inside = 0;
  auto model = [&inside](cvk::strided_view<const float, 4> batch,
                         cvk::strided_view<float, 1> scores, cvk::strided_view<float, 4> grads) {
    const auto start = std::chrono::steady_clock::now();
    const index_t n = batch.extent(0);
    const float inv = 1.0F / static_cast<float>(channels * 64 * 64);
    for (index_t b = 0; b < n; ++b) {
      float s = 0;
      for (index_t c = 0; c < channels; ++c) {
        for (index_t y = 0; y < size; ++y) {
          for (index_t xx = 0; xx < size; ++xx) {
            const bool in = y >= 80 && y < 144 && xx >= 80 && xx < 144;
            if (in) s += batch(b, c, y, xx);
            grads(b, c, y, xx) = in ? 100 * inv : 0.0F;
          }
        }
      }
      scores(b) = 100 * s * inv;
    }
    inside += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  double total = 0;
  for (auto _ : state) {
    inside = 0;
    const auto start = std::chrono::steady_clock::now();
    auto r = cvk::extremal_perturbation(x, model, p);
    total += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    benchmark::DoNotOptimize(r.masks.data());
  }
  // The callable's share of the last call scaled to all: a steady per-call cost.
  state.counters["outside_callable"] =
      total > 0 ? 1.0 - inside * static_cast<double>(state.iterations()) / total : 0.0;
  state.counters["ms_per_iteration"] =
      1e3 * total / static_cast<double>(state.iterations() * iterations);
  state.SetLabel("blur, preserve, 1 area, 8 iterations (pyramid build included)");
}

const bool registered = [] {
  for (const int threads : {1, 2}) {
    const auto n = [threads](const char* op) {
      return cvk_bench::name(op, "cvk", "float", {{"size", size}}, threads);
    };
    cvk_bench::add(n("smooth_mask_forward"), [threads](benchmark::State& state) {
      bench_smooth_mask(state, mask_part::forward, threads);
    });
    cvk_bench::add(n("smooth_mask_backward"), [threads](benchmark::State& state) {
      bench_smooth_mask(state, mask_part::backward, threads);
    });
    cvk_bench::add(n("smooth_mask_step"), [threads](benchmark::State& state) {
      bench_smooth_mask(state, mask_part::both, threads);
    });
    cvk_bench::add(n("perturbation_step"),
                   [threads](benchmark::State& state) { bench_perturbation_step(state, threads); });
    cvk_bench::add(n("extremal_iterations"),
                   [threads](benchmark::State& state) { bench_iterations(state, threads); });
  }
  return true;
}();

}  // namespace
