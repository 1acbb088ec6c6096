// cvk — computer-vision kernels, header-only C++20.
// Pooling and channel shuffle (cvk/conv/pool2d.hpp, cvk/conv/channel_shuffle.hpp) on the layers
// of the networks issue 10 measures, float, batch 1, 1 and 2 threads, NCHW and NHWC, against
// oneDNN 2.6 in the same binary (torch: benchmarks/torchvision_bench.py, same names):
//   max_pool2d 3×3 s2 p1 on the ResNet stem (64×112×112), without indices (oneDNN
//   forward_inference) and with them (max_pool2d_with_indices; oneDNN forward_training, which
//   writes its workspace), and max_pool2d_backward (oneDNN pooling_backward from that workspace);
//   avg_pool2d 3×3 s2 p1 count_include_pad=false on a ShuffleNet V1 stage-2 tensor (240×28×28)
//   and avg_pool2d_backward (oneDNN pooling_avg_exclude_padding);
//   adaptive_avg_pool2d to 1×1 on the ResNet-50 head (2048×7×7; oneDNN: a 7×7 average pooling);
//   channel_shuffle with 3 groups on 240×28×28 (oneDNN shuffle_forward on the channel axis,
//   group_size 80).
// Items: elements written per call — the output for the forward passes, grad_input for the
// backward passes — and, for channel_shuffle, bytes moved (4 read + 4 written per element); every
// row's label says which. Inputs, workspaces and primitives are made outside the timed loop; each
// peer's result is checked once against cvk's on the same data.
//
// Names: <op>/<impl>/float/shape:<id>/batch:1/layout:<nchw|nhwc>/threads:<T>, impl cvk or onednn.
// SPDX-License-Identifier: MIT
#include <benchmark/benchmark.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <utility>
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

namespace {

using cvk::index_t;
using cvk::layout;

enum class kind { max, max_indices, max_backward, avg, avg_backward, adaptive, shuffle };

// One benchmarked call: an operator on a square C×S×S image. Pooling windows are kernel ×
// kernel with stride and symmetric padding (adaptive: the whole 7×7 plane); groups is the
// shuffle's.
struct pool_case {
  const char* op;
  const char* shape;
  kind what;
  index_t channels, size, kernel, stride, padding, groups;

  [[nodiscard]] bool backward() const {
    return what == kind::max_backward || what == kind::avg_backward;
  }
  [[nodiscard]] bool is_max() const {
    return what == kind::max || what == kind::max_indices || what == kind::max_backward;
  }
  [[nodiscard]] index_t out_size() const {
    if (what == kind::shuffle) return size;
    return (size + 2 * padding - kernel) / stride + 1;  // floor mode, no dilation
  }
  [[nodiscard]] std::size_t input_elements() const {
    return static_cast<std::size_t>(channels * size * size);
  }
  [[nodiscard]] std::size_t output_elements() const {
    return static_cast<std::size_t>(channels * out_size() * out_size());
  }
  /// Work per call (see the file comment) and what it counts.
  [[nodiscard]] std::size_t items() const {
    if (what == kind::shuffle) return 2 * sizeof(float) * input_elements();
    return backward() ? input_elements() : output_elements();
  }
  [[nodiscard]] const char* items_text() const {
    if (what == kind::shuffle) return "items = bytes read + written";
    return backward() ? "items = grad_input elements" : "items = output elements";
  }
};

// ResNet stem max pooling (He et al. 2016: 3×3 s2 after the 7×7 s2 convolution, 64 channels at
// 112²), ShuffleNet V1 g=3 stage 2 (Zhang et al. 2018: 240 channels at 28², the stride-2 unit's
// 3×3 average pooling shortcut, the shuffle between its grouped 1×1 convolutions), ResNet-50's
// global average pooling (2048 channels at 7²).
const std::vector<pool_case>& cases() {
  static const std::vector<pool_case> list{
      {"max_pool2d", "resnet_stem_c64_112", kind::max, 64, 112, 3, 2, 1, 0},
      {"max_pool2d_with_indices", "resnet_stem_c64_112", kind::max_indices, 64, 112, 3, 2, 1, 0},
      {"max_pool2d_backward", "resnet_stem_c64_112", kind::max_backward, 64, 112, 3, 2, 1, 0},
      {"avg_pool2d", "shufflenet_c240_28", kind::avg, 240, 28, 3, 2, 1, 0},
      {"avg_pool2d_backward", "shufflenet_c240_28", kind::avg_backward, 240, 28, 3, 2, 1, 0},
      {"adaptive_avg_pool2d", "resnet_head_c2048_7", kind::adaptive, 2048, 7, 7, 7, 0, 0},
      {"channel_shuffle", "shufflenet_g3_c240_28", kind::shuffle, 240, 28, 0, 0, 0, 3},
  };
  return list;
}

const char* layout_name(layout l) { return l == layout::nchw ? "nchw" : "nhwc"; }

std::array<index_t, 4> extents_in(layout l, index_t channels, index_t size) {
  return l == layout::nchw ? std::array<index_t, 4>{1, channels, size, size}
                           : std::array<index_t, 4>{1, size, size, channels};
}

std::string bench_name(const pool_case& c, const std::string& impl, layout l, int threads) {
  return c.op + ("/" + impl) + "/float/shape:" + c.shape + "/batch:1/layout:" + layout_name(l) +
         "/threads:" + std::to_string(threads);
}

// The input (and, for the backward passes, ∂L/∂y) in the layout's own order, made once per
// case and layout; cvk and the peer read the same buffers.
struct pool_data {
  std::vector<float> input, grad_output;
};

const pool_data& data_for(const pool_case& c, layout l) {
  static std::map<std::pair<const pool_case*, layout>, pool_data> cache;
  auto [it, inserted] = cache.try_emplace({&c, l});
  if (inserted) {
    cvk::rng gen(2019, static_cast<std::uint64_t>(&c - cases().data()));
    it->second.input.resize(c.input_elements());
    for (float& x : it->second.input) x = gen.uniform<float>(-1.0f, 1.0f);
    it->second.grad_output.resize(c.output_elements());
    for (float& x : it->second.grad_output) x = gen.uniform<float>(-1.0f, 1.0f);
  }
  return it->second;
}

void set_counters(benchmark::State& state, const pool_case& c, const std::string& label) {
  cvk_bench::set_items(state, c.items());
  state.SetLabel(label + "; " + c.items_text());
}

// ---------------------------------------------------------------------------------------------
// cvk: the in-place forms (out, indices and grad_input allocated once). max_pool2d_backward reads
// the indices max_pool2d_with_indices wrote for the same input, made before the timing.

class cvk_call {
 public:
  cvk_call(const pool_case& c, layout l, int threads)
      : c_(c),
        layout_(l),
        input_(data_for(c, l).input.data(), extents_in(l, c.channels, c.size)),
        grad_output_(data_for(c, l).grad_output.data(), extents_in(l, c.channels, c.out_size())),
        out_(c.backward() || c.what == kind::shuffle ? extents_in(l, c.channels, c.size)
                                                     : extents_in(l, c.channels, c.out_size())) {
    params_ = {.kernel = {c.kernel, c.kernel},
               .stride = {c.stride, c.stride},
               .padding = {c.padding, c.padding},
               .count_include_pad = false,
               .data_layout = l,
               .threads = threads};
    adaptive_ = {.output_size = {1, 1}, .data_layout = l, .threads = threads};
    if (c.what == kind::max_indices || c.what == kind::max_backward) {
      indices_ = cvk::tensor<index_t, 4>(extents_in(l, c.channels, c.out_size()));
    }
    if (c.what == kind::max_backward) {
      cvk::tensor<float, 4> pooled(indices_.extents());
      cvk::max_pool2d_with_indices(input_, params_, pooled, indices_);
    }
  }

  void run() {
    switch (c_.what) {
      case kind::max:
        cvk::max_pool2d(input_, params_, out_);
        break;
      case kind::max_indices:
        cvk::max_pool2d_with_indices(input_, params_, out_, indices_);
        break;
      case kind::max_backward:
        cvk::max_pool2d_backward(grad_output_, indices_, params_, out_);
        break;
      case kind::avg:
        cvk::avg_pool2d(input_, params_, out_);
        break;
      case kind::avg_backward:
        cvk::avg_pool2d_backward(grad_output_, params_, out_);
        break;
      case kind::adaptive:
        cvk::adaptive_avg_pool2d(input_, adaptive_, out_);
        break;
      case kind::shuffle:
        cvk::channel_shuffle(input_, c_.groups, layout_, out_);
        break;
    }
  }

  /// What the call writes: the output, or grad_input for the backward passes.
  [[nodiscard]] const cvk::tensor<float, 4>& result() const { return out_; }

 private:
  const pool_case& c_;
  layout layout_;
  cvk::strided_view<const float, 4> input_, grad_output_;
  cvk::pool2d_params params_;
  cvk::adaptive_pool2d_params adaptive_;
  cvk::tensor<float, 4> out_;
  cvk::tensor<index_t, 4> indices_;
};

void bench_cvk(benchmark::State& state, const pool_case& c, layout l, int threads) {
  // channel_shuffle takes no thread count: it runs cvk::max_threads(), OpenMP's count.
  const cvk_bench::omp_threads_scope omp_threads(threads);
  cvk_call call(c, l, threads);
  for (auto _ : state) {
    call.run();
    benchmark::DoNotOptimize(call.result().data());
    benchmark::ClobberMemory();
  }
  set_counters(state, c, "cvk");
}

// ---------------------------------------------------------------------------------------------
// oneDNN: plain nchw or nhwc memory (no blocked formats: the rows compare the same layouts),
// padding_r = padding_l (the shapes divide evenly: torch's floor output size). Max pooling's
// indices are oneDNN's workspace (forward_training); its backward pass reads the workspace a
// forward_training run wrote before the timing, as a training step would.

#if defined(CVK_BENCH_HAS_DNNL)
void bench_onednn(benchmark::State& state, const pool_case& c, layout l, int threads) {
  using namespace dnnl;
  using tag = memory::format_tag;
  using dt = memory::data_type;
  const cvk_bench::omp_threads_scope omp_threads(threads);
  const pool_data& d = data_for(c, l);
  engine eng(engine::kind::cpu, 0);
  stream strm(eng);
  const tag format = l == layout::nchw ? tag::nchw : tag::nhwc;
  const index_t os = c.out_size();
  const memory::desc src_md({1, c.channels, c.size, c.size}, dt::f32, format);
  const memory::desc dst_md({1, c.channels, os, os}, dt::f32, format);
  std::vector<float> input = d.input;  // oneDNN's memory takes a mutable handle
  std::vector<float> grad_output = d.grad_output;
  std::vector<float> result(c.backward() ? c.input_elements() : c.output_elements());
  memory src(src_md, eng, input.data());
  std::string kernel;
  const auto time = [&](const primitive& prim, const std::unordered_map<int, memory>& args) {
    for (auto _ : state) {
      prim.execute(strm, args);
      strm.wait();
      benchmark::ClobberMemory();
    }
  };
  if (c.what == kind::shuffle) {
    // oneDNN's group_size is the other factor of the channel axis: its shuffle with group_size
    // C/g is torch's (and cvk's) channel_shuffle with g groups.
    const shuffle_forward::primitive_desc pd(
        shuffle_forward::desc(prop_kind::forward_inference, src_md, 1,
                              static_cast<int>(c.channels / c.groups)),
        eng);
    memory dst(src_md, eng, result.data());
    time(shuffle_forward(pd), {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}});
    kernel = pd.impl_info_str();
  } else {
    const algorithm alg =
        c.is_max() ? algorithm::pooling_max : algorithm::pooling_avg_exclude_padding;
    const memory::dims strides{c.stride, c.stride};
    const memory::dims window{c.kernel, c.kernel};
    const memory::dims padding{c.padding, c.padding};
    const bool training = c.what == kind::max_indices || c.backward();
    const pooling_forward::primitive_desc fwd(
        pooling_forward::desc(training ? prop_kind::forward_training : prop_kind::forward_inference,
                              alg, src_md, dst_md, strides, window, padding, padding),
        eng);
    memory workspace;
    if (training && fwd.workspace_desc().get_size() != 0) {
      workspace = memory(fwd.workspace_desc(), eng);
    }
    if (!c.backward()) {
      memory dst(dst_md, eng, result.data());
      std::unordered_map<int, memory> args{{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}};
      if (workspace) args[DNNL_ARG_WORKSPACE] = workspace;
      time(pooling_forward(fwd), args);
      kernel = fwd.impl_info_str();
    } else {
      if (workspace) {  // max pooling: the forward pass's argmax, before the timing
        std::vector<float> pooled(c.output_elements());
        memory y(dst_md, eng, pooled.data());
        pooling_forward(fwd).execute(
            strm, {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, y}, {DNNL_ARG_WORKSPACE, workspace}});
        strm.wait();
      }
      const pooling_backward::primitive_desc bwd(
          pooling_backward::desc(alg, src_md, dst_md, strides, window, padding, padding), eng, fwd);
      memory dy(dst_md, eng, grad_output.data());
      memory dx(src_md, eng, result.data());
      std::unordered_map<int, memory> args{{DNNL_ARG_DIFF_DST, dy}, {DNNL_ARG_DIFF_SRC, dx}};
      if (workspace) args[DNNL_ARG_WORKSPACE] = workspace;
      time(pooling_backward(bwd), args);
      kernel = bwd.impl_info_str();
    }
  }
  // Which oneDNN kernel ran ("jit:avx512_common", "simple_nchw", "ref:any", ...).
  set_counters(state, c, "oneDNN " + kernel);
  const bool agrees = cvk_bench::checked_once(bench_name(c, "onednn", l, threads), [&] {
    cvk_call mine(c, l, 1);
    mine.run();
    return static_cast<std::size_t>(mine.result().size()) == result.size() &&
           cvk_bench::close_floats(mine.result().data(), result.data(), result.size());
  });
  if (!agrees) state.SkipWithError("oneDNN and cvk disagree");
}
#endif

const bool registered = [] {
  for (const pool_case& c : cases()) {
    for (const layout l : {layout::nchw, layout::nhwc}) {
      for (const int threads : {1, 2}) {
        cvk_bench::add(bench_name(c, "cvk", l, threads), [&c, l, threads](benchmark::State& state) {
          bench_cvk(state, c, l, threads);
        });
#if defined(CVK_BENCH_HAS_DNNL)
        cvk_bench::add(
            bench_name(c, "onednn", l, threads),
            [&c, l, threads](benchmark::State& state) { bench_onednn(state, c, l, threads); });
#endif
      }
    }
  }
  return true;
}();

}  // namespace
