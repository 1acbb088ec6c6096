// cvk — computer-vision kernels, header-only C++20.
// A CNN trained from cvk kernels, then explained. Part 1 (here): a synthetic localisation data
// set made in code (examples/support/shapes_dataset.hpp: one square, disk, triangle or cross of
// random colour and size on clutter per 40×40 image) and a small network composed of cvk's
// conv2d, pooling and their backward passes (examples/support/tiny_cnn.hpp: conv 3→16, a conv
// with 2 groups 16→32, a depthwise 3×3 and a pointwise 1×1 conv, batch norm, ReLU, max and
// global average pooling, a linear layer), trained with SGD, momentum and weight decay and a
// cosine learning rate, seeded: the same loss curve on every run with the same thread count.
// Prints the progress per epoch, the test accuracy, the time and the training throughput.
// SPDX-License-Identifier: MIT
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include <cvk/core/parallel.hpp>

#include "support/shapes_dataset.hpp"
#include "support/tiny_cnn.hpp"

namespace {

using cvk::index_t;
using cvk_example::sequential_net;
using cvk_example::shapes_data;

constexpr index_t image_side = 40;  // shapes_options' default
constexpr index_t classes = cvk_example::shape_classes;

/// The network: 40×40×3 → 20×20×16 → 10×10×32 → 10×10×64 → 64 → 4 logits.
sequential_net<float> make_network(std::uint64_t seed) {
  const cvk::conv2d_params same{.padding = {1, 1, 1, 1}};
  cvk::conv2d_params grouped = same, depthwise = same;
  grouped.groups = 2;
  depthwise.groups = 32;
  sequential_net<float> net(seed);
  net.conv(3, 16, 3, same)
      .batch_norm()
      .relu()
      .max_pool(2)
      .conv(16, 32, 3, grouped)
      .batch_norm()
      .relu()
      .max_pool(2)
      .conv(32, 32, 3, depthwise)
      .conv(32, 64, 1)
      .batch_norm()
      .relu()
      .global_avg_pool()
      .flatten()
      .linear(64, classes);
  return net;
}

struct training_options {
  int epochs = 6;
  index_t batch = 32;
  double learning_rate = 0.05;  ///< the peak of the cosine schedule
  double momentum = 0.9;
  double weight_decay = 5e-4;
  std::uint64_t shuffle_seed = 99;
};

struct training_report {
  double seconds = 0;            ///< training steps only (no data generation, no evaluation)
  double images_per_second = 0;  ///< training images (forward + backward + SGD) per second
  double test_accuracy = 0;
};

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

/// Images [first, first + count) of `data` (NHWC) as one batch.
cvk::tensor<float, 4> batch_of(const shapes_data<float>& data, const std::vector<index_t>& order,
                               index_t first, index_t count) {
  const index_t side = data.images.extent(1), size = side * side * 3;
  cvk::tensor<float, 4> x(count, side, side, index_t{3});
  for (index_t j = 0; j < count; ++j) {
    const index_t i = order[static_cast<std::size_t>(first + j)];
    std::copy_n(data.images.data() + i * size, size, x.data() + j * size);
  }
  return x;
}

/// The fraction of `data` the network (eval mode) classifies correctly.
double accuracy(sequential_net<float>& net, const shapes_data<float>& data) {
  const index_t count = data.images.extent(0), batch = 100;
  std::vector<index_t> order(static_cast<std::size_t>(count));
  std::iota(order.begin(), order.end(), index_t{0});
  index_t correct = 0;
  for (index_t first = 0; first < count; first += batch) {
    const index_t n = std::min(batch, count - first);
    const auto logits = net.forward(batch_of(data, order, first, n), false);
    for (index_t j = 0; j < n; ++j) {
      index_t best = 0;
      for (index_t k = 1; k < logits.extent(1); ++k) {
        if (logits(j, k) > logits(j, best)) best = k;
      }
      correct += best == data.labels[static_cast<std::size_t>(first + j)] ? 1 : 0;
    }
  }
  return static_cast<double>(correct) / static_cast<double>(std::max<index_t>(count, 1));
}

/// Trains `net` on `train` (shuffled each epoch, the last partial batch dropped), printing the
/// loss, accuracies and throughput per epoch; returns the time and the final test accuracy.
training_report train(sequential_net<float>& net, const shapes_data<float>& train,
                      const shapes_data<float>& test, const training_options& o) {
  const index_t count = train.images.extent(0);
  const index_t steps_per_epoch = count / o.batch;
  const double total_steps = static_cast<double>(o.epochs * steps_per_epoch);
  std::vector<index_t> order(static_cast<std::size_t>(count));
  cvk::rng shuffle(o.shuffle_seed);
  training_report report;
  index_t step = 0;
  for (int epoch = 1; epoch <= o.epochs; ++epoch) {
    std::iota(order.begin(), order.end(), index_t{0});
    for (index_t i = count - 1; i > 0; --i) {
      std::swap(order[static_cast<std::size_t>(i)],
                order[shuffle.below(static_cast<std::uint64_t>(i + 1))]);
    }
    double loss = 0;
    index_t correct = 0;
    const auto start = std::chrono::steady_clock::now();
    for (index_t s = 0; s < steps_per_epoch; ++s, ++step) {
      const auto x = batch_of(train, order, s * o.batch, o.batch);
      std::vector<index_t> labels(static_cast<std::size_t>(o.batch));
      for (index_t j = 0; j < o.batch; ++j) {
        labels[static_cast<std::size_t>(j)] =
            train
                .labels[static_cast<std::size_t>(order[static_cast<std::size_t>(s * o.batch + j)])];
      }
      // Cosine decay from the peak to 0 over the whole run.
      const double lr = o.learning_rate * 0.5 *
                        (1 + std::cos(3.141592653589793 * static_cast<double>(step) / total_steps));
      const auto r = net.train_step(x, labels, lr, o.momentum, o.weight_decay);
      loss += r.loss;
      correct += r.correct;
    }
    const double seconds = seconds_since(start);
    report.seconds += seconds;
    report.test_accuracy = accuracy(net, test);
    const double seen = static_cast<double>(steps_per_epoch * o.batch);
    std::printf(
        "epoch %d/%d  loss %.4f  train accuracy %.3f  test accuracy %.3f  %.1f s  %.0f "
        "images/s\n",
        epoch, o.epochs, loss / static_cast<double>(steps_per_epoch),
        static_cast<double>(correct) / seen, report.test_accuracy, seconds, seen / seconds);
    std::fflush(stdout);
  }
  report.images_per_second =
      static_cast<double>(o.epochs * steps_per_epoch * o.batch) / report.seconds;
  return report;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string directory = argc > 1 ? argv[1] : ".";
  (void)directory;  // the pictures of part 2 go there

  // Part 1: data and training.
  const auto start = std::chrono::steady_clock::now();
  const auto train_set = cvk_example::make_shapes<float>(6000, 1);
  const auto test_set = cvk_example::make_shapes<float>(1000, 2);
  std::printf("data: %lld training and %lld test images of %lld×%lld, %lld classes (%.1f s)\n",
              static_cast<long long>(train_set.images.extent(0)),
              static_cast<long long>(test_set.images.extent(0)), static_cast<long long>(image_side),
              static_cast<long long>(image_side), static_cast<long long>(classes),
              seconds_since(start));
  auto net = make_network(7);
  std::printf("network: %lld layers, %lld parameters, %d threads\n",
              static_cast<long long>(net.layer_count()),
              static_cast<long long>(net.parameter_count()), cvk::max_threads());
  for (index_t i = 0; i < net.layer_count(); ++i) {
    std::printf("  %2lld  %s\n", static_cast<long long>(i), net.layer_name(i).c_str());
  }
  const training_report report = train(net, train_set, test_set, {});
  std::printf("trained in %.1f s (%.0f images/s); test accuracy %.1f%% (target >= 95%%)\n",
              report.seconds, report.images_per_second, 100 * report.test_accuracy);
  if (report.test_accuracy < 0.95) return 1;

  // Part 2: the saliency evaluation (pointing game, sanity checks, deletion / insertion AUC,
  // the PNGs) on held-out images.
  return 0;
}
