// cvk — computer-vision kernels, header-only C++20.
// deform_conv2d forward and backward (issue 13) on the shape: 64 → 64 channels, 56×56,
// 3×3, padding 1, batch 1, one offset group, v1 (no mask) and v2 (mask), NHWC float, 1 and 2
// threads. The peer is torchvision's CPU kernel (benchmarks/torchvision_bench.py, same names,
// NCHW as that kernel requires). Offsets are uniform in [−2, 2) (samples spread over the cell
// and partly outside the image), the mask uniform in [0, 1). Items are the FLOPs of the 1×1
// GEMM (2 per multiply-add: 2·Ho·Wo·O·C·KH·KW), twice that for the backward (column gradient and
// weight gradient), so items_per_second reads as GEMM FLOP/s.
//
// Names: deform_conv2d/cvk/float/shape:c64_56_k3/batch:1/mask:<0|1>/threads:<T> and
// deform_conv2d_backward/... (every gradient: input, offset, mask when given, weight, bias).
// SPDX-License-Identifier: MIT
#include <benchmark/benchmark.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common.hpp"
#include "cvk/conv.hpp"
#include "cvk/core/rng.hpp"

namespace {

using cvk::index_t;

constexpr index_t channels = 64, size = 56, out_channels = 64, kernel = 3, taps = kernel * kernel;

/// The problem, NHWC, made once.
struct deform_data {
  std::vector<float> input, offset, mask, weight, bias, grad_output;
};

const deform_data& data() {
  static const deform_data d = [] {
    cvk::rng gen(2019, 13);
    const auto fill = [&gen](std::size_t n, float lo, float hi) {
      std::vector<float> v(n);
      for (auto& x : v) x = gen.uniform<float>(lo, hi);
      return v;
    };
    const std::size_t pixels = static_cast<std::size_t>(size * size);
    deform_data r;
    r.input = fill(pixels * channels, -1.0F, 1.0F);
    r.offset = fill(pixels * 2 * taps, -2.0F, 2.0F);
    r.mask = fill(pixels * taps, 0.0F, 1.0F);
    r.weight = fill(static_cast<std::size_t>(out_channels * channels * taps), -0.1F, 0.1F);
    r.bias = fill(static_cast<std::size_t>(out_channels), -1.0F, 1.0F);
    r.grad_output = fill(pixels * out_channels, -1.0F, 1.0F);
    return r;
  }();
  return d;
}

std::string bench_name(const std::string& op, bool masked, int threads) {
  return op + "/cvk/float/shape:c64_56_k3/batch:1/mask:" + std::to_string(masked ? 1 : 0) +
         "/threads:" + std::to_string(threads);
}

double gemm_flops() {
  return 2.0 * static_cast<double>(size * size * out_channels * channels * taps);
}

void set_counters(benchmark::State& state, double flops) {
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) *
                          static_cast<std::int64_t>(flops));
  state.counters["in_channels"] = static_cast<double>(channels);
  state.counters["out_channels"] = static_cast<double>(out_channels);
  state.counters["kernel"] = static_cast<double>(kernel);
  state.counters["height"] = static_cast<double>(size);
}

struct views {
  cvk::strided_view<const float, 4> input, offset, mask, weight, grad_output;
  cvk::strided_view<const float, 1> bias;
};

views make_views() {
  const deform_data& d = data();
  return {
      cvk::strided_view<const float, 4>(d.input.data(), {1, size, size, channels}),
      cvk::strided_view<const float, 4>(d.offset.data(), {1, size, size, 2 * taps}),
      cvk::strided_view<const float, 4>(d.mask.data(), {1, size, size, taps}),
      cvk::strided_view<const float, 4>(d.weight.data(), {out_channels, channels, kernel, kernel}),
      cvk::strided_view<const float, 4>(d.grad_output.data(), {1, size, size, out_channels}),
      cvk::strided_view<const float, 1>(d.bias.data(), {out_channels})};
}

cvk::deform_conv2d_params params_for(int threads) {
  return {.padding = {1, 1, 1, 1}, .data_layout = cvk::layout::nhwc, .threads = threads};
}

void bench_forward(benchmark::State& state, bool masked, int threads) {
  const views v = make_views();
  const auto params = params_for(threads);
  cvk::tensor<float, 4> out(std::array<index_t, 4>{1, size, size, out_channels});
  for (auto _ : state) {
    if (masked) {
      cvk::deform_conv2d(v.input, v.offset, v.mask, v.weight, v.bias, params, out);
    } else {
      cvk::deform_conv2d(v.input, v.offset, cvk::no_mask, v.weight, v.bias, params, out);
    }
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, gemm_flops());
  state.SetLabel("cvk NHWC");
}

void bench_backward(benchmark::State& state, bool masked, int threads) {
  const views v = make_views();
  const auto params = params_for(threads);
  cvk::tensor<float, 4> gi(std::array<index_t, 4>{1, size, size, channels});
  cvk::tensor<float, 4> go(std::array<index_t, 4>{1, size, size, 2 * taps});
  cvk::tensor<float, 4> gm(std::array<index_t, 4>{1, size, size, taps});
  cvk::tensor<float, 4> gw(std::array<index_t, 4>{out_channels, channels, kernel, kernel});
  cvk::tensor<float, 1> gb(std::array<index_t, 1>{out_channels});
  cvk::deform_conv2d_gradient_views<float> targets{
      .input = gi.view(), .offset = go.view(), .weight = gw.view(), .bias = gb.view()};
  for (auto _ : state) {
    if (masked) {
      targets.mask = gm.view();
      cvk::deform_conv2d_backward(v.grad_output, v.input, v.offset, v.mask, v.weight, params,
                                  targets);
    } else {
      cvk::deform_conv2d_backward(v.grad_output, v.input, v.offset, cvk::no_mask, v.weight, params,
                                  targets);
    }
    benchmark::DoNotOptimize(gi.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, 2 * gemm_flops());
  state.SetLabel("cvk NHWC");
}

const bool registered = [] {
  for (const int threads : {1, 2}) {
    for (const bool masked : {false, true}) {
      cvk_bench::add(
          bench_name("deform_conv2d", masked, threads),
          [masked, threads](benchmark::State& state) { bench_forward(state, masked, threads); });
      cvk_bench::add(
          bench_name("deform_conv2d_backward", masked, threads),
          [masked, threads](benchmark::State& state) { bench_backward(state, masked, threads); });
    }
  }
  return true;
}();

}  // namespace
