// cvk — computer-vision kernels, header-only C++20.
// The network of examples/explain_cnn.cpp (examples/support/shapes_network.hpp: 40×40×3 NHWC,
// conv, grouped conv, depthwise and pointwise conv, batch norm, ReLU, pooling, linear; float):
//   explain_cnn_train_step   one SGD step (forward in train mode, softmax cross-entropy,
//                            backward, update) on a batch of 32: items = images, so
//                            items_per_second is the training throughput. torch runs the same
//                            layers in benchmarks/torchvision_bench.py (same name, impl torch).
//   explain_cnn_gradient     the input gradient of the target logit (eval-mode forward and
//                            backward: what every gradient-based saliency method calls)
//   explain_cnn_lrp          one LRP pass (cvk::lrp over net.lrp_layers(), batch norm merged)
//                            with a composite: the "LRP ≤ 2× a backward pass" is
//                            explain_cnn_lrp ÷ explain_cnn_gradient at the same batch.
// Weights: the network's seeded initialisation (timings do not depend on trained values);
// images: the shapes data set.
// Names: explain_cnn_<what>/cvk/float[/composite:<c>]/batch:<B>/threads:<T>
// SPDX-License-Identifier: MIT
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "../examples/support/shapes_dataset.hpp"
#include "../examples/support/shapes_network.hpp"
#include "cvk/saliency/lrp.hpp"

namespace {

using cvk::index_t;

cvk_example::shapes_data<float> images(index_t batch) {
  return cvk_example::make_shapes<float>(batch, 3);
}

void train_step(benchmark::State& state, index_t batch, int threads) {
  auto net = cvk_example::shapes_network<float>(7, threads);
  const auto data = images(batch);
  for (auto _ : state) {
    const auto r = net.train_step(data.images, data.labels, 0.01, 0.9, 5e-4);
    benchmark::DoNotOptimize(r.loss);
  }
  state.SetItemsProcessed(state.iterations() * batch);
}

void gradient(benchmark::State& state, index_t batch, int threads) {
  auto net = cvk_example::shapes_network<float>(7, threads);
  const auto data = images(batch);
  cvk::tensor<float, 1> scores(batch);
  cvk::tensor<float, 4> grads(data.images.extents());
  for (auto _ : state) {
    net.score_gradients(data.images.view(), 0, scores.view(), grads.view());
    benchmark::DoNotOptimize(grads.data());
  }
  state.SetItemsProcessed(state.iterations() * batch);
}

void lrp(benchmark::State& state, index_t batch, int threads, const cvk::lrp_composite& c) {
  auto net = cvk_example::shapes_network<float>(7, threads);
  const auto data = images(batch);
  const auto layers = net.lrp_layers();
  const cvk::lrp_options options{.data_layout = cvk::layout::nhwc, .threads = threads};
  for (auto _ : state) {
    const auto r = cvk::lrp(layers, data.images, data.labels, c, options);
    benchmark::DoNotOptimize(r.relevance.data());
  }
  state.SetItemsProcessed(state.iterations() * batch);
}

std::string name(const std::string& what, const std::string& extra, index_t batch, int threads) {
  return "explain_cnn_" + what + "/cvk/float" + extra + "/batch:" + std::to_string(batch) +
         "/threads:" + std::to_string(threads);
}

const bool registered = [] {
  for (const int threads : {1, 2}) {
    benchmark::RegisterBenchmark(name("train_step", "", 32, threads).c_str(),
                                 [threads](benchmark::State& s) { train_step(s, 32, threads); })
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
  }
  for (const index_t batch : {1, 32}) {
    benchmark::RegisterBenchmark(name("gradient", "", batch, 1).c_str(),
                                 [batch](benchmark::State& s) { gradient(s, batch, 1); })
        ->Unit(benchmark::kMicrosecond)
        ->UseRealTime();
    benchmark::RegisterBenchmark(
        name("lrp", "/composite:epsilon_plus_flat", batch, 1).c_str(),
        [batch](benchmark::State& s) { lrp(s, batch, 1, cvk::lrp_composite::epsilon_plus_flat()); })
        ->Unit(benchmark::kMicrosecond)
        ->UseRealTime();
    benchmark::RegisterBenchmark(name("lrp", "/composite:epsilon_gamma_box", batch, 1).c_str(),
                                 [batch](benchmark::State& s) {
                                   lrp(s, batch, 1,
                                       cvk::lrp_composite::epsilon_gamma_box({0.0}, {1.0}));
                                 })
        ->Unit(benchmark::kMicrosecond)
        ->UseRealTime();
  }
  return true;
}();

}  // namespace
