// cvk — computer-vision kernels, header-only C++20.
// The CAM family (cvk/saliency/cam.hpp), float:
//   grad_cam on ResNet-50's last block ([1, 2048, 7, 7]) and on a batch of VGG-style features
//   ([32, 512, 14, 14]), NCHW and NHWC, 1 and 2 threads — a memory-bound kernel: the
//   bytes_per_second counter (bytes of A and g read + bytes of the maps written, per second) is
//   to be set against the copy bandwidth measured in the same binary (the copy_bandwidth rows of
//   the post-processing bench); grad_cam_pp and layer_cam on the first shape for comparison;
//   eigen_cam on the first shape (its cost is the Gram matrix and the eigen-solver, O(Z·K·m + m³),
//   m = min(Z, K) = 49);
//   score_cam on [1, 3, 224, 224] images with [1, 64, 7, 7] activations through a callable that
//   averages each image (64 model inputs of 224²·3): the outside_callable counter is the
//   fraction of the time spent outside the callable (resizing, normalising and masking).
// Inputs are made once, outside the timed loop; the maps are written into a tensor allocated
// once.
//
// Names: <op>/cvk/float/shape:<N>x<K>x<H>x<W>/layout:<nchw|nhwc>/threads:<T>.
// SPDX-License-Identifier: MIT
#include <benchmark/benchmark.h>

#include <array>
#include <chrono>
#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "common.hpp"
#include "cvk/core/rng.hpp"
#include "cvk/saliency/cam.hpp"

namespace {

using cvk::index_t;
using cvk::layout;
using shape4 = std::array<index_t, 4>;  // N, K, H, W

const char* layout_name(layout l) { return l == layout::nchw ? "nchw" : "nhwc"; }

std::string shape_name(const shape4& s) {
  return std::to_string(s[0]) + "x" + std::to_string(s[1]) + "x" + std::to_string(s[2]) + "x" +
         std::to_string(s[3]);
}

std::string bench_name(const std::string& op, const shape4& s, layout l, int threads) {
  return op + "/cvk/float/shape:" + shape_name(s) + "/layout:" + layout_name(l) +
         "/threads:" + std::to_string(threads);
}

std::size_t elements(const shape4& s) {
  return static_cast<std::size_t>(s[0] * s[1] * s[2] * s[3]);
}

/// Activations (uniform in [0, 1), as after a ReLU) and gradients (uniform in [−1, 1)) of a
/// shape, made once; the same values serve both layouts (only the view differs).
const std::pair<std::vector<float>, std::vector<float>>& data_for(const shape4& s) {
  static std::map<shape4, std::pair<std::vector<float>, std::vector<float>>> cache;
  auto [it, inserted] = cache.try_emplace(s);
  if (inserted) {
    cvk::rng gen(2019, static_cast<std::uint64_t>(s[1]));
    it->second.first.resize(elements(s));
    it->second.second.resize(elements(s));
    for (float& x : it->second.first) x = gen.uniform<float>(0.0f, 1.0f);
    for (float& x : it->second.second) x = gen.uniform<float>(-1.0f, 1.0f);
  }
  return it->second;
}

shape4 extents_in(const shape4& s, layout l) {
  return l == layout::nchw ? s : shape4{s[0], s[2], s[3], s[1]};
}

enum class op { grad_cam, grad_cam_pp, layer_cam, eigen_cam };

void bench_gradient(benchmark::State& state, op which, const shape4& s, layout l, int threads) {
  const auto& [a, g] = data_for(s);
  const cvk::strided_view<const float, 4> av(a.data(), extents_in(s, l));
  const cvk::strided_view<const float, 4> gv(g.data(), extents_in(s, l));
  cvk::tensor<float, 3> maps(std::array<index_t, 3>{s[0], s[2], s[3]});
  const cvk::grad_cam_params p{.data_layout = l, .threads = threads};
  for (auto _ : state) {
    switch (which) {
      case op::grad_cam:
        cvk::grad_cam(av, gv, p, maps);
        break;
      case op::grad_cam_pp:
        cvk::grad_cam_pp(av, gv, {.data_layout = l, .threads = threads}, maps);
        break;
      case op::layer_cam:
        cvk::layer_cam(av, gv, p, maps);
        break;
      case op::eigen_cam:
        cvk::eigen_cam(av, {.data_layout = l, .threads = threads}, maps);
        break;
    }
    benchmark::DoNotOptimize(maps.data());
    benchmark::ClobberMemory();
  }
  const std::size_t read = (which == op::eigen_cam ? 1 : 2) * elements(s);
  const auto bytes =
      static_cast<double>((read + static_cast<std::size_t>(maps.size())) * sizeof(float));
  state.counters["bytes_per_second"] =
      benchmark::Counter(bytes, benchmark::Counter::kIsIterationInvariantRate);
  cvk_bench::set_items(state, static_cast<std::size_t>(maps.size()));
  state.SetLabel("items = map values; bytes = A + g read, maps written");
}

void bench_score_cam(benchmark::State& state, layout l, int threads) {
  const shape4 image_shape{1, 3, 224, 224}, activation_shape{1, 64, 7, 7};
  const auto& images = data_for(image_shape).second;
  const auto& a = data_for(activation_shape).first;
  const cvk::strided_view<const float, 4> xv(images.data(), extents_in(image_shape, l));
  const cvk::strided_view<const float, 4> av(a.data(), extents_in(activation_shape, l));
  cvk::tensor<float, 3> maps(std::array<index_t, 3>{1, 7, 7});
  double inside = 0;  // seconds spent in the callable
  const auto model = [&inside](cvk::strided_view<const float, 4> batch,
                               cvk::strided_view<float, 1> scores) {
    const auto start = std::chrono::steady_clock::now();
    const index_t per_image = batch.size() / batch.extent(0);
    const float* values = batch.data();
    for (index_t b = 0; b < batch.extent(0); ++b) {
      float sum = 0;
      for (index_t i = 0; i < per_image; ++i) sum += values[b * per_image + i];
      scores(b) = sum / static_cast<float>(per_image);
    }
    inside += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  const cvk::score_cam_params p{
      .data_layout = l, .model = {.batch_size = 16, .data_layout = l}, .threads = threads};
  double total = 0;
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    cvk::score_cam(xv, av, model, p, maps);
    benchmark::DoNotOptimize(maps.data());
    benchmark::ClobberMemory();
    total += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  state.counters["outside_callable"] = total > 0 ? (total - inside) / total : 0.0;
  cvk_bench::set_items(state, 64);
  state.SetLabel("items = model inputs (64 masked 3×224×224 images)");
}

const bool registered = [] {
  for (const shape4& s : {shape4{1, 2048, 7, 7}, shape4{32, 512, 14, 14}}) {
    for (const layout l : {layout::nchw, layout::nhwc}) {
      for (const int threads : {1, 2}) {
        cvk_bench::add(bench_name("grad_cam", s, l, threads),
                       [s, l, threads](benchmark::State& state) {
                         bench_gradient(state, op::grad_cam, s, l, threads);
                       });
      }
    }
  }
  const shape4 head{1, 2048, 7, 7};
  for (const layout l : {layout::nchw, layout::nhwc}) {
    cvk_bench::add(bench_name("grad_cam_pp", head, l, 1), [head, l](benchmark::State& state) {
      bench_gradient(state, op::grad_cam_pp, head, l, 1);
    });
    cvk_bench::add(bench_name("layer_cam", head, l, 1), [head, l](benchmark::State& state) {
      bench_gradient(state, op::layer_cam, head, l, 1);
    });
    cvk_bench::add(bench_name("eigen_cam", head, l, 1), [head, l](benchmark::State& state) {
      bench_gradient(state, op::eigen_cam, head, l, 1);
    });
    for (const int threads : {1, 2}) {
      cvk_bench::add("score_cam/cvk/float/shape:1x3x224x224_1x64x7x7/layout:" +
                         std::string(layout_name(l)) + "/threads:" + std::to_string(threads),
                     [l, threads](benchmark::State& state) { bench_score_cam(state, l, threads); });
    }
  }
  return true;
}();

}  // namespace
