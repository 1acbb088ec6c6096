// cvk — computer-vision kernels, header-only C++20.
// conv2d forward and backward on the shapes of issue 10 (ResNeXt-50 32x4d grouped 3×3 at 2–32
// channels per group, ShuffleNet V1 grouped 1×1, MobileNet V1/V2 depthwise 3×3 stride 1 and 2, a
// dense 3×3 for reference), NHWC float, batch 1 (and 8 for a few), 1 and 2 threads, against
// oneDNN 2.6 and XNNPACK in the same binary (backward: oneDNN only; XNNPACK is inference-only).
// Every peer gets the same NHWC activations and the same weights, packed or reordered to its own
// format once, outside the timed loop; every output includes the bias. Items are FLOPs (2 per
// multiply-add), so items_per_second is FLOP/s; fma_peak/machine measures the core's FMA throughput
// in the same binary so the report can print each row as a fraction of the peak
// (benchmarks/report.py, docs/benchmarks.md).
//
// Names: conv2d/<impl>/float/shape:<id>/batch:<N>/threads:<T> (impl cvk, onednn, xnnpack),
// conv2d_backward_input/... and conv2d_backward_weight/... (cvk, onednn; when
// cvk/conv/conv2d_backward.hpp exists) and fma_peak/machine/float/threads:<T>. The counters
// in_channels, out_channels, groups, kernel, stride and height describe the shape to report.py
// (the targets depend on the channels per group).
// SPDX-License-Identifier: MIT
#include <benchmark/benchmark.h>

#include <array>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common.hpp"
#include "cvk/conv.hpp"
#include "cvk/core/parallel.hpp"
#include "cvk/core/rng.hpp"

#if defined(__AVX512F__) || defined(__AVX__) || defined(__SSE2__)
#  include <immintrin.h>
#endif
// The backward rows need conv2d_backward_input / _weight (issue 10 item 3).
#if __has_include("cvk/conv/conv2d_backward.hpp")
#  include "cvk/conv/conv2d_backward.hpp"
#  define CVK_BENCH_CONV_BACKWARD 1
#endif
#if defined(CVK_BENCH_HAS_DNNL)
#  if __has_include(<oneapi/dnnl/dnnl.hpp>)
#    include <oneapi/dnnl/dnnl.hpp>
#  else
#    include <dnnl.hpp>
#  endif
#endif
#if defined(CVK_BENCH_HAS_XNNPACK)
#  include <pthreadpool.h>
#  include <xnnpack.h>
#endif

namespace {

using cvk::index_t;

// ---------------------------------------------------------------------------------------------
// Shapes. Square images, "same" padding (kernel / 2 on every side), no dilation.

struct conv_shape {
  const char* id;  // the "shape" parameter of the benchmark name
  index_t channels, size, out_channels, groups, kernel, stride;
  bool batch8;  // also measured at batch 8

  [[nodiscard]] index_t out_size() const { return (size + 2 * (kernel / 2) - kernel) / stride + 1; }
  [[nodiscard]] index_t in_per_group() const { return channels / groups; }
  [[nodiscard]] double flops(index_t batch) const {
    return 2.0 * static_cast<double>(batch * out_size() * out_size() * out_channels *
                                     in_per_group() * kernel * kernel);
  }
};

// ShuffleNet V1 (Zhang et al. 2018, table 1) at 224², stage 2 (28²): with g = 3 the stage has
// 240 output channels, with g = 8 384, and each unit's bottleneck is a quarter of that; the
// grouped 1×1 convolutions are the compression C → C/4 and the expansion C/4 → C, both with g
// groups (80 → 20 and 20 → 80 channels per group at g = 3; 48 → 12 and 12 → 48 at g = 8).
// MobileNet V1 (Howard et al. 2017, table 1): conv dw 128 ch at 56² stride 1 and 2, 256 ch at
// 28² stride 2, 512 ch at 14² stride 1. MobileNet V2 (Sandler et al. 2018): the expanded 144
// channels of the 56² bottlenecks, stride 1 and 2. ResNeXt-50 32x4d (Xie et al. 2017): the
// grouped 3×3 of conv2..conv5 (4, 8, 16, 32 channels per group); the 2-per-group layer is the
// same 32 groups on 64 channels at 56² (FLGC-style thin groups, where GEMM-based peers are
// weakest).
const std::vector<conv_shape>& shapes() {
  static const std::vector<conv_shape> list{
      {"dense3x3_c64_56", 64, 56, 64, 1, 3, 1, true},              // ResNet conv2 3×3, reference
      {"resnext_g32x2_c64_56", 64, 56, 64, 32, 3, 1, false},       // 2 channels per group
      {"resnext_g32x4_c128_56", 128, 56, 128, 32, 3, 1, true},     // 4 per group (conv2)
      {"resnext_g32x8_c256_28", 256, 28, 256, 32, 3, 1, false},    // 8 (conv3)
      {"resnext_g32x16_c512_14", 512, 14, 512, 32, 3, 1, false},   // 16 (conv4)
      {"resnext_g32x32_c1024_7", 1024, 7, 1024, 32, 3, 1, false},  // 32 (conv5)
      {"shufflenet_g3_1x1_c240to60_28", 240, 28, 60, 3, 1, 1, false},
      {"shufflenet_g3_1x1_c60to240_28", 60, 28, 240, 3, 1, 1, false},
      {"shufflenet_g8_1x1_c384to96_28", 384, 28, 96, 8, 1, 1, false},
      {"shufflenet_g8_1x1_c96to384_28", 96, 28, 384, 8, 1, 1, false},
      {"mobilenet1_dw_s1_c128_56", 128, 56, 128, 128, 3, 1, true},
      {"mobilenet1_dw_s2_c128_56", 128, 56, 128, 128, 3, 2, false},
      {"mobilenet1_dw_s2_c256_28", 256, 28, 256, 256, 3, 2, false},
      {"mobilenet1_dw_s1_c512_14", 512, 14, 512, 512, 3, 1, false},
      {"mobilenet2_dw_s1_c144_56", 144, 56, 144, 144, 3, 1, false},
      {"mobilenet2_dw_s2_c144_56", 144, 56, 144, 144, 3, 2, false},
  };
  return list;
}

std::vector<index_t> batches(const conv_shape& s) {
  return s.batch8 ? std::vector<index_t>{1, 8} : std::vector<index_t>{1};
}

std::vector<float> random_floats(std::size_t n, std::uint64_t stream) {
  cvk::rng gen(2019, stream);
  std::vector<float> v(n);
  for (auto& x : v) x = gen.uniform<float>(-1.0f, 1.0f);
  return v;
}

struct conv_data {
  std::vector<float> input;   // NHWC, batch 8 (batch 1 is its first image)
  std::vector<float> weight;  // OIHW (= goihw)
  std::vector<float> bias;
  std::vector<float> grad_output;  // NHWC, batch 8: the backward rows' ∂L/∂y
};

std::size_t shape_index(const conv_shape& s) {
  return static_cast<std::size_t>(&s - shapes().data());
}

const conv_data& data_for(const conv_shape& s) {
  static std::vector<conv_data> cache(shapes().size());
  const std::size_t index = shape_index(s);
  conv_data& d = cache[index];
  if (d.input.empty()) {
    d.input = random_floats(static_cast<std::size_t>(8 * s.size * s.size * s.channels), 1 + index);
    d.weight = random_floats(
        static_cast<std::size_t>(s.out_channels * s.in_per_group() * s.kernel * s.kernel),
        100 + index);
    d.bias = random_floats(static_cast<std::size_t>(s.out_channels), 200 + index);
    d.grad_output = random_floats(
        static_cast<std::size_t>(8 * s.out_size() * s.out_size() * s.out_channels), 300 + index);
  }
  return d;
}

std::size_t output_size(const conv_shape& s, index_t batch) {
  return static_cast<std::size_t>(batch * s.out_size() * s.out_size() * s.out_channels);
}

cvk::conv2d_params params_for(const conv_shape& s, int threads) {
  const index_t pad = s.kernel / 2;
  return {.stride = {s.stride, s.stride},
          .padding = {pad, pad, pad, pad},
          .groups = s.groups,
          .data_layout = cvk::layout::nhwc,
          .threads = threads};
}

std::string bench_name(const std::string& op, const std::string& impl, const conv_shape& s,
                       index_t batch, int threads) {
  // cvk_bench::name's scheme with a text parameter first (the shape id).
  return op + "/" + impl + "/float/shape:" + s.id + "/batch:" + std::to_string(batch) +
         "/threads:" + std::to_string(threads);
}

void set_counters(benchmark::State& state, const conv_shape& s, index_t batch,
                  const std::string& label) {
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) *
                          static_cast<std::int64_t>(s.flops(batch)));
  state.SetLabel(label);
  state.counters["in_channels"] = static_cast<double>(s.channels);
  state.counters["out_channels"] = static_cast<double>(s.out_channels);
  state.counters["groups"] = static_cast<double>(s.groups);
  state.counters["kernel"] = static_cast<double>(s.kernel);
  state.counters["stride"] = static_cast<double>(s.stride);
  state.counters["height"] = static_cast<double>(s.size);
}

cvk::conv2d_plan<float> make_plan(const conv_shape& s, int threads) {
  const conv_data& d = data_for(s);
  return cvk::conv2d_plan<float>(
      cvk::strided_view<const float, 4>(d.weight.data(),
                                        {s.out_channels, s.in_per_group(), s.kernel, s.kernel}),
      d.bias, params_for(s, threads));
}

cvk::strided_view<const float, 4> input_view(const conv_shape& s, index_t batch) {
  return cvk::strided_view<const float, 4>(data_for(s).input.data(),
                                           {batch, s.size, s.size, s.channels});
}

/// Whether a peer's values equal cvk's (float sums in another order).
bool close(const cvk::tensor<float, 4>& mine, const std::vector<float>& theirs) {
  return static_cast<std::size_t>(mine.size()) == theirs.size() &&
         cvk_bench::close_floats(mine.data(), theirs.data(), theirs.size());
}

/// Whether a peer's output equals cvk's on the same input, checked once per process and
/// benchmark.
bool agrees_with_cvk(const std::string& key, const conv_shape& s, index_t batch,
                     const std::vector<float>& output) {
  return cvk_bench::checked_once(
      key, [&] { return close(make_plan(s, 1)(input_view(s, batch)), output); });
}

// ---------------------------------------------------------------------------------------------
// cvk

void bench_cvk(benchmark::State& state, const conv_shape& s, index_t batch, int threads) {
  const auto plan = make_plan(s, threads);  // packing outside the timing
  const auto input = input_view(s, batch);
  cvk::tensor<float, 4> out(plan.output_shape(input.extents()));
  for (auto _ : state) {
    plan(input, out);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, s, batch, std::string("cvk ") + cvk::to_string(plan.path()));
}

// ---------------------------------------------------------------------------------------------
// oneDNN: NHWC activations, weights goihw reordered once to the layout the primitive picks
// (format tag any), forward_inference, bias fused.

#if defined(CVK_BENCH_HAS_DNNL)
void bench_onednn(benchmark::State& state, const conv_shape& s, index_t batch, int threads) {
  using namespace dnnl;
  using tag = memory::format_tag;
  using dt = memory::data_type;
  const cvk_bench::omp_threads_scope omp_threads(threads);
  const conv_data& d = data_for(s);
  const index_t pad = s.kernel / 2;
  const index_t os = s.out_size();
  engine eng(engine::kind::cpu, 0);
  stream strm(eng);
  const memory::dims src_dims{batch, s.channels, s.size, s.size};
  const memory::dims wei_dims{s.groups, s.out_channels / s.groups, s.in_per_group(), s.kernel,
                              s.kernel};
  const memory::dims bias_dims{s.out_channels};
  const memory::dims dst_dims{batch, s.out_channels, os, os};
  const memory::desc src_md(src_dims, dt::f32, tag::nhwc);
  const memory::desc dst_md(dst_dims, dt::f32, tag::nhwc);
  const memory::desc wei_any(wei_dims, dt::f32, tag::any);
  const memory::desc bias_md(bias_dims, dt::f32, tag::x);
  const convolution_forward::desc desc(prop_kind::forward_inference, algorithm::convolution_direct,
                                       src_md, wei_any, bias_md, dst_md, {s.stride, s.stride},
                                       {pad, pad}, {pad, pad});
  const convolution_forward::primitive_desc pd(desc, eng);
  std::vector<float> input(
      d.input.begin(),
      d.input.begin() + static_cast<std::ptrdiff_t>(batch * s.size * s.size * s.channels));
  std::vector<float> weight = d.weight;
  std::vector<float> bias = d.bias;
  std::vector<float> output(output_size(s, batch));
  memory src(src_md, eng, input.data());
  memory dst(dst_md, eng, output.data());
  memory bias_mem(bias_md, eng, bias.data());
  memory user_weights({wei_dims, dt::f32, tag::goihw}, eng, weight.data());
  memory weights = user_weights;
  if (pd.weights_desc() != user_weights.get_desc()) {
    weights = memory(pd.weights_desc(), eng);
    reorder(user_weights, weights).execute(strm, user_weights, weights);
    strm.wait();
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
  // Which oneDNN kernel ran ("jit:avx512_core", "gemm:jit", ...): the reason behind a ratio.
  set_counters(state, s, batch, std::string("oneDNN ") + pd.impl_info_str());
  if (!agrees_with_cvk(bench_name("conv2d", "onednn", s, batch, threads), s, batch, output)) {
    state.SkipWithError("oneDNN and cvk disagree");
  }
}
#endif

// ---------------------------------------------------------------------------------------------
// XNNPACK: xnn_create_convolution2d_nhwc_f32 with groups (its weights are g×(O/g)×KH×KW×(I/g),
// packed by the operator at creation), setup once for the batch, run on a pthreadpool of
// `threads` threads. Depthwise shapes (one input and one output channel per group) take
// XNNPACK's depthwise kernels; their weights are then g×KH×KW, which OIHW already is.

#if defined(CVK_BENCH_HAS_XNNPACK)
bool xnnpack_ready() {
  static const bool ready = xnn_initialize(nullptr) == xnn_status_success;
  return ready;
}

void bench_xnnpack(benchmark::State& state, const conv_shape& s, index_t batch, int threads) {
  if (!xnnpack_ready()) {
    state.SkipWithError("xnn_initialize failed (no XNNPACK kernels for this CPU?)");
    return;
  }
  const conv_data& d = data_for(s);
  const index_t cig = s.in_per_group();
  const index_t k2 = s.kernel * s.kernel;
  // OIHW → O·KH·KW·(I/g) (the output channels are already group-major).
  std::vector<float> weight(d.weight.size());
  for (index_t o = 0; o < s.out_channels; ++o) {
    for (index_t i = 0; i < cig; ++i) {
      for (index_t t = 0; t < k2; ++t) {
        weight[static_cast<std::size_t>((o * k2 + t) * cig + i)] =
            d.weight[static_cast<std::size_t>((o * cig + i) * k2 + t)];
      }
    }
  }
  const auto pad = static_cast<std::uint32_t>(s.kernel / 2);
  const auto k = static_cast<std::uint32_t>(s.kernel);
  const auto stride = static_cast<std::uint32_t>(s.stride);
  xnn_operator_t op = nullptr;
  if (xnn_create_convolution2d_nhwc_f32(
          pad, pad, pad, pad, k, k, stride, stride, 1, 1, static_cast<std::uint32_t>(s.groups),
          static_cast<std::size_t>(cig), static_cast<std::size_t>(s.out_channels / s.groups),
          static_cast<std::size_t>(s.channels), static_cast<std::size_t>(s.out_channels),
          weight.data(), d.bias.data(), -INFINITY, INFINITY, 0, &op) != xnn_status_success) {
    state.SkipWithError("xnn_create_convolution2d_nhwc_f32 failed");
    return;
  }
  pthreadpool_t pool = pthreadpool_create(static_cast<std::size_t>(threads));
  std::vector<float> output(output_size(s, batch));
  if (xnn_setup_convolution2d_nhwc_f32(op, static_cast<std::size_t>(batch),
                                       static_cast<std::size_t>(s.size),
                                       static_cast<std::size_t>(s.size), d.input.data(),
                                       output.data(), pool) != xnn_status_success) {
    state.SkipWithError("xnn_setup_convolution2d_nhwc_f32 failed");
  } else {
    for (auto _ : state) {
      xnn_run_operator(op, pool);
      benchmark::ClobberMemory();
    }
    set_counters(state, s, batch, "XNNPACK xnn_create_convolution2d_nhwc_f32");
    if (!agrees_with_cvk(bench_name("conv2d", "xnnpack", s, batch, threads), s, batch, output)) {
      state.SkipWithError("XNNPACK and cvk disagree");
    }
  }
  xnn_delete_operator(op);
  pthreadpool_destroy(pool);
}
#endif

// ---------------------------------------------------------------------------------------------
// Backward: conv2d_backward_input (∂L/∂x from ∂L/∂y and the weight) and conv2d_backward_weight
// (∂L/∂w from ∂L/∂y and the input), each as many FLOPs as the forward pass; against oneDNN's
// convolution_backward_data / convolution_backward_weights (hinted by a forward_training
// primitive, as a training framework builds them). oneDNN's weights and weight gradient are in
// the layout it prefers (format tag any; the reorders are not timed), cvk's are OIHW.

#if defined(CVK_BENCH_CONV_BACKWARD)
enum class gradient { input, weight };

const char* gradient_op(gradient which) {
  return which == gradient::input ? "conv2d_backward_input" : "conv2d_backward_weight";
}

cvk::strided_view<const float, 4> grad_output_view(const conv_shape& s, index_t batch) {
  return cvk::strided_view<const float, 4>(data_for(s).grad_output.data(),
                                           {batch, s.out_size(), s.out_size(), s.out_channels});
}

cvk::strided_view<const float, 4> weight_view(const conv_shape& s) {
  return cvk::strided_view<const float, 4>(data_for(s).weight.data(),
                                           {s.out_channels, s.in_per_group(), s.kernel, s.kernel});
}

std::array<index_t, 4> weight_shape(const conv_shape& s) {
  return {s.out_channels, s.in_per_group(), s.kernel, s.kernel};
}

void bench_cvk_backward(benchmark::State& state, const conv_shape& s, gradient which, index_t batch,
                        int threads) {
  const auto params = params_for(s, threads);
  const auto dy = grad_output_view(s, batch);
  if (which == gradient::input) {
    const auto w = weight_view(s);
    cvk::tensor<float, 4> dx(std::array<index_t, 4>{batch, s.size, s.size, s.channels});
    for (auto _ : state) {
      cvk::conv2d_backward_input(dy, w, params, dx);
      benchmark::DoNotOptimize(dx.data());
      benchmark::ClobberMemory();
    }
  } else {
    const auto x = input_view(s, batch);
    cvk::tensor<float, 4> dw(weight_shape(s));
    for (auto _ : state) {
      cvk::conv2d_backward_weight(dy, x, params, dw);
      benchmark::DoNotOptimize(dw.data());
      benchmark::ClobberMemory();
    }
  }
  set_counters(state, s, batch, "cvk");
}

#  if defined(CVK_BENCH_HAS_DNNL)
void bench_onednn_backward(benchmark::State& state, const conv_shape& s, gradient which,
                           index_t batch, int threads) {
  using namespace dnnl;
  using tag = memory::format_tag;
  using dt = memory::data_type;
  const cvk_bench::omp_threads_scope omp_threads(threads);
  const conv_data& d = data_for(s);
  const index_t pad = s.kernel / 2;
  const index_t os = s.out_size();
  engine eng(engine::kind::cpu, 0);
  stream strm(eng);
  const memory::dims wei_dims{s.groups, s.out_channels / s.groups, s.in_per_group(), s.kernel,
                              s.kernel};
  const memory::desc src_md({batch, s.channels, s.size, s.size}, dt::f32, tag::nhwc);
  const memory::desc dst_md({batch, s.out_channels, os, os}, dt::f32, tag::nhwc);
  const memory::desc wei_any(wei_dims, dt::f32, tag::any);
  const memory::dims strides{s.stride, s.stride};
  const memory::dims padding{pad, pad};
  const convolution_forward::primitive_desc hint(
      convolution_forward::desc(prop_kind::forward_training, algorithm::convolution_direct, src_md,
                                wei_any, dst_md, strides, padding, padding),
      eng);
  std::vector<float> input(
      d.input.begin(),
      d.input.begin() + static_cast<std::ptrdiff_t>(batch * s.size * s.size * s.channels));
  std::vector<float> grad_output(
      d.grad_output.begin(),
      d.grad_output.begin() + static_cast<std::ptrdiff_t>(output_size(s, batch)));
  std::vector<float> weight = d.weight;
  memory dy(dst_md, eng, grad_output.data());
  memory user_weights({wei_dims, dt::f32, tag::goihw}, eng, weight.data());
  std::vector<float> result;  // dx (NHWC) or dw (goihw), compared with cvk's
  std::string kernel;
  if (which == gradient::input) {
    const convolution_backward_data::primitive_desc pd(
        convolution_backward_data::desc(algorithm::convolution_direct, src_md, wei_any, dst_md,
                                        strides, padding, padding),
        eng, hint);
    memory weights = user_weights;
    if (pd.weights_desc() != user_weights.get_desc()) {
      weights = memory(pd.weights_desc(), eng);
      reorder(user_weights, weights).execute(strm, user_weights, weights);
      strm.wait();
    }
    result.resize(input.size());
    memory dx(src_md, eng, result.data());
    const convolution_backward_data prim(pd);
    for (auto _ : state) {
      prim.execute(strm,
                   {{DNNL_ARG_DIFF_DST, dy}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_DIFF_SRC, dx}});
      strm.wait();
      benchmark::ClobberMemory();
    }
    kernel = pd.impl_info_str();
  } else {
    const convolution_backward_weights::primitive_desc pd(
        convolution_backward_weights::desc(algorithm::convolution_direct, src_md, wei_any, dst_md,
                                           strides, padding, padding),
        eng, hint);
    memory x(src_md, eng, input.data());
    memory dw(pd.diff_weights_desc(), eng);
    const convolution_backward_weights prim(pd);
    for (auto _ : state) {
      prim.execute(strm, {{DNNL_ARG_SRC, x}, {DNNL_ARG_DIFF_DST, dy}, {DNNL_ARG_DIFF_WEIGHTS, dw}});
      strm.wait();
      benchmark::ClobberMemory();
    }
    result.resize(weight.size());
    memory user_dw({wei_dims, dt::f32, tag::goihw}, eng, result.data());
    reorder(dw, user_dw).execute(strm, dw, user_dw);
    strm.wait();
    kernel = pd.impl_info_str();
  }
  set_counters(state, s, batch, "oneDNN " + kernel);
  const bool agrees =
      cvk_bench::checked_once(bench_name(gradient_op(which), "onednn", s, batch, threads), [&] {
        const auto params = params_for(s, 1);
        return which == gradient::input
                   ? close(cvk::conv2d_backward_input(
                               grad_output_view(s, batch), weight_view(s),
                               std::array<index_t, 4>{batch, s.size, s.size, s.channels}, params),
                           result)
                   : close(
                         cvk::conv2d_backward_weight(grad_output_view(s, batch),
                                                     input_view(s, batch), weight_shape(s), params),
                         result);
      });
  if (!agrees) state.SkipWithError("oneDNN and cvk disagree");
}
#  endif
#endif

// ---------------------------------------------------------------------------------------------
// FMA peak: independent multiply-add chains held in registers, as many as cover the FMA latency
// times the FMA units (4 cycles × 2 units on current x86 cores: 8 chains; 12 leave a margin),
// `threads` copies at once. 2 FLOPs per lane per FMA. Each chain converges to a / (1 − m), so
// no value overflows or turns subnormal.

#if defined(__AVX512F__)
constexpr int fma_chains = 12;
constexpr int fma_lanes = 16;
using fma_vec = __m512;
inline fma_vec fma_set(float x) { return _mm512_set1_ps(x); }
inline fma_vec fma_step(fma_vec acc, fma_vec m, fma_vec a) { return _mm512_fmadd_ps(acc, m, a); }
// Not _mm512_reduce_add_ps: g++ 12 warns (-Wuninitialized) inside its header.
inline void fma_store(float* out, fma_vec v) { _mm512_storeu_ps(out, v); }
constexpr const char* fma_isa = "AVX-512 FMA";
#elif defined(__FMA__) && defined(__AVX__)
constexpr int fma_chains = 10;  // + 2 constants: 12 of the 16 ymm registers
constexpr int fma_lanes = 8;
using fma_vec = __m256;
inline fma_vec fma_set(float x) { return _mm256_set1_ps(x); }
inline fma_vec fma_step(fma_vec acc, fma_vec m, fma_vec a) { return _mm256_fmadd_ps(acc, m, a); }
inline void fma_store(float* out, fma_vec v) { _mm256_storeu_ps(out, v); }
constexpr const char* fma_isa = "AVX2 FMA";
#elif defined(__SSE2__)
// No FMA instruction in the target: a multiply and an add, still 2 FLOPs per lane.
constexpr int fma_chains = 10;
constexpr int fma_lanes = 4;
using fma_vec = __m128;
inline fma_vec fma_set(float x) { return _mm_set1_ps(x); }
inline fma_vec fma_step(fma_vec acc, fma_vec m, fma_vec a) {
  return _mm_add_ps(_mm_mul_ps(acc, m), a);
}
inline void fma_store(float* out, fma_vec v) { _mm_storeu_ps(out, v); }
constexpr const char* fma_isa = "SSE2 multiply + add (no FMA in the target)";
#else
constexpr int fma_chains = 8;
constexpr int fma_lanes = 1;
using fma_vec = float;
inline fma_vec fma_set(float x) { return x; }
inline fma_vec fma_step(fma_vec acc, fma_vec m, fma_vec a) { return acc * m + a; }
inline void fma_store(float* out, fma_vec v) { *out = v; }
constexpr const char* fma_isa = "scalar multiply + add";
#endif

constexpr std::int64_t fma_rounds = 1 << 17;

template <std::size_t... I>
[[gnu::noinline]] float fma_chains_run(std::int64_t rounds, float seed,
                                       std::index_sequence<I...> /*chains*/) {
  const fma_vec m = fma_set(0.999f);
  const fma_vec a = fma_set(1e-3f);
  fma_vec acc[sizeof...(I)] = {fma_set(seed + static_cast<float>(I))...};
  for (std::int64_t r = 0; r < rounds; ++r) {
    ((acc[I] = fma_step(acc[I], m, a)), ...);
  }
  float lanes[fma_lanes] = {};
  float sum = 0;
  for (const fma_vec& v : acc) {
    fma_store(lanes, v);
    for (const float x : lanes) sum += x;
  }
  return sum;
}

// Each iteration runs fma_bursts bursts of fma_rounds / fma_bursts rounds and reports the
// fastest burst (manual time): the peak is what the cores can do, and on a shared machine a burst
// of a few tens of microseconds usually runs unpreempted while a whole iteration often does not.
constexpr std::int64_t fma_bursts = 8;

void bench_fma_peak(benchmark::State& state, int threads) {
  std::vector<float> sink(static_cast<std::size_t>(threads));
  for (auto _ : state) {
    double fastest = 0;
    for (std::int64_t b = 0; b < fma_bursts; ++b) {
      const auto start = std::chrono::steady_clock::now();
      cvk::parallel_for(
          0, threads, 1,
          [&](index_t lo, index_t hi) {
            for (index_t t = lo; t < hi; ++t) {
              sink[static_cast<std::size_t>(t)] =
                  fma_chains_run(fma_rounds / fma_bursts, static_cast<float>(t),
                                 std::make_index_sequence<static_cast<std::size_t>(fma_chains)>{});
            }
          },
          threads);
      const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
      if (b == 0 || took.count() < fastest) fastest = took.count();
    }
    benchmark::DoNotOptimize(sink.data());
    benchmark::ClobberMemory();
    state.SetIterationTime(fastest * static_cast<double>(fma_bursts));
  }
  cvk_bench::set_items(state, static_cast<std::size_t>(2 * fma_lanes * fma_chains) *
                                  static_cast<std::size_t>(fma_rounds) *
                                  static_cast<std::size_t>(threads));
  state.SetLabel(std::string(fma_isa) + ", " + std::to_string(fma_chains) + " chains of " +
                 std::to_string(fma_lanes) + " lanes per thread, fastest of " +
                 std::to_string(fma_bursts) + " bursts");
}

const bool registered = [] {
  for (const int threads : {1, 2}) {
    // Manual time (the fastest burst), not cvk_bench::add's real time.
    benchmark::RegisterBenchmark(
        cvk_bench::name("fma_peak", "machine", "float", {}, threads).c_str(),
        [threads](benchmark::State& state) { bench_fma_peak(state, threads); })
        ->Unit(benchmark::kMicrosecond)
        ->UseManualTime();
  }
  for (const conv_shape& s : shapes()) {
    for (const index_t batch : batches(s)) {
      for (const int threads : {1, 2}) {
        cvk_bench::add(
            bench_name("conv2d", "cvk", s, batch, threads),
            [&s, batch, threads](benchmark::State& state) { bench_cvk(state, s, batch, threads); });
#if defined(CVK_BENCH_HAS_DNNL)
        cvk_bench::add(bench_name("conv2d", "onednn", s, batch, threads),
                       [&s, batch, threads](benchmark::State& state) {
                         bench_onednn(state, s, batch, threads);
                       });
#endif
#if defined(CVK_BENCH_HAS_XNNPACK)
        cvk_bench::add(bench_name("conv2d", "xnnpack", s, batch, threads),
                       [&s, batch, threads](benchmark::State& state) {
                         bench_xnnpack(state, s, batch, threads);
                       });
#endif
      }
    }
  }
#if defined(CVK_BENCH_CONV_BACKWARD)
  // Backward at batch 1 (the forward rows' batch-8 cases are about packing reuse, which the
  // backward entry points do not have).
  for (const gradient which : {gradient::input, gradient::weight}) {
    for (const conv_shape& s : shapes()) {
      for (const int threads : {1, 2}) {
        cvk_bench::add(bench_name(gradient_op(which), "cvk", s, 1, threads),
                       [&s, which, threads](benchmark::State& state) {
                         bench_cvk_backward(state, s, which, 1, threads);
                       });
#  if defined(CVK_BENCH_HAS_DNNL)
        cvk_bench::add(bench_name(gradient_op(which), "onednn", s, 1, threads),
                       [&s, which, threads](benchmark::State& state) {
                         bench_onednn_backward(state, s, which, 1, threads);
                       });
#  endif
      }
    }
  }
#endif
  return true;
}();

}  // namespace
