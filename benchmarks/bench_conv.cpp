// cvk — computer-vision kernels, header-only C++20.
// conv2d forward on the shapes cvk has paths for (issue 10): MobileNet depthwise 3×3 stride 1
// and 2 (depthwise_nhwc) and ResNeXt-50 32x4d grouped 3×3 layers (generic_nhwc), NHWC, batch 1,
// float; against oneDNN 2.6 in the same binary (NHWC activations, grouped weights goihw reordered
// once to the primitive's choice, primitive built outside the timed loop). Items are FLOPs
// (2·multiply-adds), so items_per_second is FLOP/s.
// SPDX-License-Identifier: MIT
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include "common.hpp"
#include "cvk/conv.hpp"
#include "cvk/core/rng.hpp"

#if defined(CVK_BENCH_HAS_DNNL)
#  if __has_include(<oneapi/dnnl/dnnl.hpp>)
#    include <oneapi/dnnl/dnnl.hpp>
#  else
#    include <dnnl.hpp>
#  endif
#endif
#if defined(_OPENMP)
#  include <omp.h>
#endif

namespace {

using cvk::index_t;

struct conv_shape {
  const char* name;  // parameter "shape" of the benchmark name
  index_t channels, size, out_channels, groups, kernel, stride;

  [[nodiscard]] index_t out_size() const { return (size + 2 * (kernel / 2) - kernel) / stride + 1; }
  [[nodiscard]] double flops() const {
    return 2.0 * static_cast<double>(out_size() * out_size() * out_channels * (channels / groups) *
                                     kernel * kernel);
  }
};

// Names are benchmark parameters: key "layer" with an integer id, as report.py expects.
const std::vector<conv_shape>& shapes() {
  static const std::vector<conv_shape> list{
      {"dw3x3s1_c128_56", 128, 56, 128, 128, 3, 1},    // MobileNet V1 depthwise, stride 1
      {"dw3x3s1_c512_14", 512, 14, 512, 512, 3, 1},    // MobileNet V1 depthwise, 14²
      {"dw3x3s2_c256_28", 256, 28, 256, 256, 3, 2},    // MobileNet V1 depthwise, stride 2
      {"g32x4_3x3_c128_56", 128, 56, 128, 32, 3, 1},   // ResNeXt-50 32x4d, 4 channels per group
      {"g32x8_3x3_c256_28", 256, 28, 256, 32, 3, 1},   // 8 per group
      {"g32x16_3x3_c512_14", 512, 14, 512, 32, 3, 1},  // 16 per group
  };
  return list;
}

std::vector<float> random_floats(std::size_t n, std::uint64_t stream) {
  cvk::rng gen(2019, stream);
  std::vector<float> v(n);
  for (auto& x : v) x = gen.uniform<float>(-1.0f, 1.0f);
  return v;
}

struct conv_data {
  std::vector<float> input;   // NHWC
  std::vector<float> weight;  // OIHW (= goihw)
  std::vector<float> bias;
};

const conv_data& data_for(const conv_shape& s) {
  static std::vector<conv_data> cache(shapes().size());
  const auto index = static_cast<std::size_t>(&s - shapes().data());
  conv_data& d = cache[index];
  if (d.input.empty()) {
    d.input = random_floats(static_cast<std::size_t>(s.size * s.size * s.channels), 1 + index);
    d.weight = random_floats(
        static_cast<std::size_t>(s.out_channels * (s.channels / s.groups) * s.kernel * s.kernel),
        100 + index);
    d.bias = random_floats(static_cast<std::size_t>(s.out_channels), 200 + index);
  }
  return d;
}

cvk::conv2d_params params_for(const conv_shape& s, int threads) {
  const index_t pad = s.kernel / 2;
  return {.stride = {s.stride, s.stride},
          .padding = {pad, pad, pad, pad},
          .groups = s.groups,
          .data_layout = cvk::layout::nhwc,
          .threads = threads};
}

std::string bench_name(const char* impl, std::size_t layer, int threads) {
  return cvk_bench::name("conv2d", impl, "float", {{"layer", layer}}, threads);
}

void set_flops(benchmark::State& state, const conv_shape& s) {
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) *
                          static_cast<std::int64_t>(s.flops()));
  state.SetLabel(s.name);
}

void bench_cvk(benchmark::State& state, const conv_shape& s, int threads) {
  const conv_data& d = data_for(s);
  const auto params = params_for(s, threads);
  const index_t cig = s.channels / s.groups;
  const cvk::conv2d_plan<float> plan(
      cvk::strided_view<const float, 4>(d.weight.data(), {s.out_channels, cig, s.kernel, s.kernel}),
      d.bias, params);
  const cvk::strided_view<const float, 4> input(d.input.data(), {1, s.size, s.size, s.channels});
  cvk::tensor<float, 4> out(plan.output_shape(input.extents()));
  for (auto _ : state) {
    plan(input, out);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  set_flops(state, s);
  state.counters["path_depthwise"] = plan.path() == cvk::conv2d_path::depthwise_nhwc ? 1 : 0;
}

#if defined(CVK_BENCH_HAS_DNNL)
void bench_onednn(benchmark::State& state, const conv_shape& s, int threads) {
  using namespace dnnl;
  using tag = memory::format_tag;
  using dt = memory::data_type;
#  if defined(_OPENMP)
  const int previous = omp_get_max_threads();
  omp_set_num_threads(threads);
#  endif
  const conv_data& d = data_for(s);
  const index_t pad = s.kernel / 2;
  const index_t os = s.out_size();
  engine eng(engine::kind::cpu, 0);
  stream strm(eng);
  const memory::dims src_dims{1, s.channels, s.size, s.size};
  const memory::dims wei_dims{s.groups, s.out_channels / s.groups, s.channels / s.groups, s.kernel,
                              s.kernel};
  const memory::dims bias_dims{s.out_channels};
  const memory::dims dst_dims{1, s.out_channels, os, os};
  const memory::desc src_md(src_dims, dt::f32, tag::nhwc);
  const memory::desc dst_md(dst_dims, dt::f32, tag::nhwc);
  const memory::desc wei_any(wei_dims, dt::f32, tag::any);
  const memory::desc bias_md(bias_dims, dt::f32, tag::x);
  const convolution_forward::desc desc(prop_kind::forward_inference, algorithm::convolution_direct,
                                       src_md, wei_any, bias_md, dst_md, {s.stride, s.stride},
                                       {pad, pad}, {pad, pad});
  const convolution_forward::primitive_desc pd(desc, eng);
  std::vector<float> input = d.input;
  std::vector<float> weight = d.weight;
  std::vector<float> bias = d.bias;
  std::vector<float> output(static_cast<std::size_t>(os * os * s.out_channels));
  memory src(src_md, eng, input.data());
  memory dst(dst_md, eng, output.data());
  memory bias_mem(bias_md, eng, bias.data());
  memory user_weights({wei_dims, dt::f32, tag::goihw}, eng, weight.data());
  memory weights = user_weights;
  if (pd.weights_desc() != user_weights.get_desc()) {
    weights = memory(pd.weights_desc(), eng);
    reorder(user_weights, weights).execute(strm, user_weights, weights);
  }
  const convolution_forward conv(pd);
  for (auto _ : state) {
    conv.execute(strm, {{DNNL_ARG_SRC, src},
                        {DNNL_ARG_WEIGHTS, weights},
                        {DNNL_ARG_BIAS, bias_mem},
                        {DNNL_ARG_DST, dst}});
    strm.wait();
    benchmark::ClobberMemory();
  }
  set_flops(state, s);
  // Same inputs as cvk: the outputs must agree (float sums in different orders).
  const bool agrees = cvk_bench::checked_once(bench_name("onednn", 0, threads) + s.name, [&] {
    const cvk::conv2d_plan<float> plan(
        cvk::strided_view<const float, 4>(
            d.weight.data(), {s.out_channels, s.channels / s.groups, s.kernel, s.kernel}),
        d.bias, params_for(s, threads));
    const auto y =
        plan(cvk::strided_view<const float, 4>(d.input.data(), {1, s.size, s.size, s.channels}));
    for (std::size_t i = 0; i < output.size(); ++i) {
      if (std::fabs(y.data()[i] - output[i]) > 1e-3f * (1.0f + std::fabs(output[i]))) {
        return false;
      }
    }
    return true;
  });
  if (!agrees) state.SkipWithError("oneDNN and cvk disagree");
#  if defined(_OPENMP)
  omp_set_num_threads(previous);
#  endif
}
#endif

const bool registered = [] {
  for (std::size_t layer = 0; layer < shapes().size(); ++layer) {
    const conv_shape& s = shapes()[layer];
    for (const int threads : {1, 2}) {
      cvk_bench::add(bench_name("cvk", layer, threads),
                     [&s, threads](benchmark::State& state) { bench_cvk(state, s, threads); });
#if defined(CVK_BENCH_HAS_DNNL)
      cvk_bench::add(bench_name("onednn", layer, threads),
                     [&s, threads](benchmark::State& state) { bench_onednn(state, s, threads); });
#endif
    }
  }
  return true;
}();

}  // namespace
