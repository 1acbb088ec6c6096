// cvk — computer-vision kernels, header-only C++20.
// ragged_conv2d (issue 13, the FLGC payoff) on ResNet-50 bottleneck shapes with 4 and 8 groups,
// NHWC float, batch 1, 1 thread, plans built outside the timing. Groups are unequal as learned
// groups are: group g gets C/G·f_g input channels and O/G·f'_g outputs, f = 0.5, 1.5, 0.75, 1.25
// (repeated; the outputs' factors reversed), so no two neighbours share a shape.
//
// Columns (one binary, one run):
//   cvk                  the compiled ragged conv (perm:0 — permutations folded away; perm:1 —
//                        with the input gather and output scatter of an unfolded FLGC layer)
//   masked_dense_conv2d  what FLGC trains with: conv2d (groups = 1) with W ⊙ M
//   grouped_conv2d       a uniform grouped conv2d with the same G
// Items are the multiply-add FLOPs each conv does usefully: 2·Ho·Wo·KH·KW·Σ_g I_g·O_g for the
// ragged and the masked dense conv (so cvk ÷ masked_dense_conv2d is the time saved), 2·Ho·Wo·
// KH·KW·I·O/G for the grouped conv (so cvk ÷ grouped_conv2d compares FLOP rates: the issue's
// "within 1.2× of the uniform grouped conv" is a ratio ≥ 0.83).
//
// Names: ragged_conv2d/<impl>/float/shape:<name>/groups:<G>/perm:<0|1>/threads:1
// SPDX-License-Identifier: MIT
#include <benchmark/benchmark.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <string>
#include <vector>

#include "common.hpp"
#include "cvk/conv.hpp"
#include "cvk/core/rng.hpp"

namespace {

using cvk::index_t;

struct shape {
  const char* name;
  index_t in, out, size, kernel;
};

// ResNet-50 bottleneck convolutions (stage 1 at 56², stage 2 at 28², stage 3 at 14²).
constexpr std::array<shape, 4> shapes{{{"r50_s1_1x1_256_64_56", 256, 64, 56, 1},
                                       {"r50_s1_3x3_64_56", 64, 64, 56, 3},
                                       {"r50_s2_3x3_128_28", 128, 128, 28, 3},
                                       {"r50_s3_3x3_256_14", 256, 256, 14, 3}}};

/// Offsets of G unequal groups of `total` channels (factors 0.5, 1.5, 0.75, 1.25, repeated).
std::vector<index_t> ragged_offsets(index_t total, index_t groups, bool reversed) {
  constexpr std::array<double, 4> factors{0.5, 1.5, 0.75, 1.25};
  std::vector<index_t> offsets{0};
  for (index_t g = 0; g < groups; ++g) {
    const std::size_t k = static_cast<std::size_t>(reversed ? groups - 1 - g : g) % 4;
    const index_t size =
        g + 1 == groups ? total - offsets.back()
                        : static_cast<index_t>(static_cast<double>(total / groups) * factors[k]);
    offsets.push_back(offsets.back() + size);
  }
  return offsets;
}

std::vector<index_t> shuffled(index_t count, cvk::rng& gen) {
  std::vector<index_t> p(static_cast<std::size_t>(count));
  std::iota(p.begin(), p.end(), index_t{0});
  for (std::size_t i = p.size(); i > 1; --i) {
    std::swap(p[i - 1], p[static_cast<std::size_t>(gen.below(i))]);
  }
  return p;
}

std::vector<float> uniform(std::size_t n, cvk::rng& gen) {
  std::vector<float> v(n);
  for (auto& x : v) x = gen.uniform<float>(-1.0F, 1.0F);
  return v;
}

cvk::conv2d_params params_for(const shape& s, index_t groups) {
  const index_t pad = s.kernel / 2;
  return {.padding = {pad, pad, pad, pad},
          .groups = groups,
          .data_layout = cvk::layout::nhwc,
          .threads = 1};
}

std::string bench_name(const char* impl, const shape& s, index_t groups, bool perm) {
  return std::string("ragged_conv2d/") + impl + "/float/shape:" + s.name +
         "/groups:" + std::to_string(groups) + "/perm:" + (perm ? "1" : "0") + "/threads:1";
}

void counters(benchmark::State& state, const shape& s, double macs) {
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) *
                          static_cast<std::int64_t>(2 * macs));
  state.counters["in_channels"] = static_cast<double>(s.in);
  state.counters["out_channels"] = static_cast<double>(s.out);
  state.counters["kernel"] = static_cast<double>(s.kernel);
  state.counters["height"] = static_cast<double>(s.size);
}

void run_ragged(benchmark::State& state, const shape& s, index_t groups, bool perm) {
  cvk::rng gen(2019, static_cast<std::uint64_t>(groups));
  cvk::ragged_groups rg{
      ragged_offsets(s.in, groups, false), ragged_offsets(s.out, groups, true), {}, {}};
  if (perm) {
    rg.in_permutation = shuffled(s.in, gen);
    rg.out_permutation = shuffled(s.out, gen);
  }
  const std::array<index_t, 2> k{s.kernel, s.kernel};
  const index_t wsize = cvk::ragged_weight_size(rg, k);
  const auto w = uniform(static_cast<std::size_t>(wsize), gen);
  const auto b = uniform(static_cast<std::size_t>(s.out), gen);
  const auto x = uniform(static_cast<std::size_t>(s.size * s.size * s.in), gen);
  auto params = params_for(s, 1);
  const cvk::ragged_conv2d_plan<float> plan(
      rg, cvk::strided_view<const float, 1>(w.data(), {wsize}), k,
      cvk::strided_view<const float, 1>(b.data(), {s.out}), params);
  cvk::tensor<float, 4> y(std::array<index_t, 4>{1, s.size, s.size, s.out});
  const cvk::strided_view<const float, 4> xv(x.data(), {1, s.size, s.size, s.in});
  for (auto _ : state) {
    plan(xv, y);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  counters(state, s, static_cast<double>(wsize) * static_cast<double>(s.size * s.size));
  state.SetLabel(std::to_string(plan.segment_count()) + " segments");
}

void run_dense(benchmark::State& state, const shape& s, index_t groups, bool masked) {
  cvk::rng gen(2019, static_cast<std::uint64_t>(groups));
  const cvk::ragged_groups rg{
      ragged_offsets(s.in, groups, false), ragged_offsets(s.out, groups, true), {}, {}};
  const std::array<index_t, 2> k{s.kernel, s.kernel};
  const index_t ragged_size = cvk::ragged_weight_size(rg, k);
  const index_t in_per_group = masked ? s.in : s.in / groups;
  const auto w = uniform(static_cast<std::size_t>(s.out * in_per_group * s.kernel * s.kernel), gen);
  const auto b = uniform(static_cast<std::size_t>(s.out), gen);
  const auto x = uniform(static_cast<std::size_t>(s.size * s.size * s.in), gen);
  const cvk::conv2d_plan<float> plan(
      cvk::strided_view<const float, 4>(w.data(), {s.out, in_per_group, s.kernel, s.kernel}),
      cvk::strided_view<const float, 1>(b.data(), {s.out}), params_for(s, masked ? 1 : groups));
  cvk::tensor<float, 4> y(std::array<index_t, 4>{1, s.size, s.size, s.out});
  const cvk::strided_view<const float, 4> xv(x.data(), {1, s.size, s.size, s.in});
  for (auto _ : state) {
    plan(xv, y);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  const double useful = masked ? static_cast<double>(ragged_size)
                               : static_cast<double>(s.out * in_per_group * s.kernel * s.kernel);
  counters(state, s, useful * static_cast<double>(s.size * s.size));
}

const bool registered = [] {
  for (const shape& s : shapes) {
    for (const index_t groups : {4, 8}) {
      for (const bool perm : {false, true}) {
        benchmark::RegisterBenchmark(
            bench_name("cvk", s, groups, perm).c_str(),
            [s, groups, perm](benchmark::State& st) { run_ragged(st, s, groups, perm); })
            ->Unit(benchmark::kMicrosecond)
            ->UseRealTime();
      }
      benchmark::RegisterBenchmark(
          bench_name("grouped_conv2d", s, groups, false).c_str(),
          [s, groups](benchmark::State& st) { run_dense(st, s, groups, false); })
          ->Unit(benchmark::kMicrosecond)
          ->UseRealTime();
      benchmark::RegisterBenchmark(
          bench_name("masked_dense_conv2d", s, groups, false).c_str(),
          [s, groups](benchmark::State& st) { run_dense(st, s, groups, true); })
          ->Unit(benchmark::kMicrosecond)
          ->UseRealTime();
    }
  }
  return true;
}();

}  // namespace
