// cvk — computer-vision kernels, header-only C++20.
// Tests of the example network examples/support/tiny_cnn.hpp and the data set
// examples/support/shapes_dataset.hpp: the backward pass (input and every parameter gradient)
// against central finite differences in double, in train mode (batch statistics) and eval mode,
// for networks with plain, grouped and depthwise convs, batch norm, ReLU, max / average / global
// pooling, flatten and linear, at points away from the ReLU and max kinks; Grad-CAM's layer
// gradient against its closed form; seeded training reproducible bit for bit (and for 1 and 2
// threads); the saliency hooks through cvk::vanilla_gradient; LRP's layer list giving the
// network's logits through cvk::lrp_forward; cascading randomisation; the data set's
// determinism and ranges; the errors.
// SPDX-License-Identifier: MIT
#include <cvk/core/rng.hpp>
#include <cvk/saliency/gradient.hpp>
#include <cvk/saliency/lrp.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "../../examples/support/shapes_dataset.hpp"
#include "../../examples/support/tiny_cnn.hpp"
#include "support/conv_reference.hpp"

namespace {

using cvk::index_t;
using cvk_example::sequential_net;

cvk::conv2d_params padded(index_t pad, index_t groups = 1, index_t stride = 1) {
  cvk::conv2d_params p;
  p.stride = {stride, stride};
  p.padding = {pad, pad, pad, pad};
  p.groups = groups;
  return p;
}

/// Every layer kind with a global average pool at the end: conv (stride 2), BN, ReLU, max pool,
/// grouped conv, avg pool, depthwise conv, pointwise conv without bias, global pool, linear.
sequential_net<double> global_pool_net(std::uint64_t seed) {
  sequential_net<double> net(seed);
  net.conv(3, 6, 3, padded(1, 1, 1))
      .batch_norm()
      .relu()
      .max_pool(2)
      .conv(6, 8, 3, padded(1, 2))
      .batch_norm()
      .relu()
      .avg_pool(2)
      .conv(8, 8, 3, padded(1, 8))
      .conv(8, 6, 1, {}, false)
      .batch_norm()
      .relu()
      .global_avg_pool()
      .flatten()
      .linear(6, 3);
  return net;
}

/// A flatten over a 2×2 map ((h, w, c) order matters) and two linear layers, a strided conv,
/// overlapping max pooling with padding.
sequential_net<double> flatten_net(std::uint64_t seed) {
  sequential_net<double> net(seed);
  net.conv(3, 4, 3, padded(1, 1, 2))
      .batch_norm()
      .relu()
      .max_pool(3, 2, 1)
      .conv(4, 4, 3, padded(1, 4))
      .relu()
      .avg_pool(2)
      .flatten()
      .linear(16, 5)
      .relu()
      .linear(5, 3);
  return net;
}

/// N×H×W×C values uniform in [0, 1).
template <class T>
cvk::tensor<T, 4> random_images(index_t n, index_t side, index_t channels, std::uint64_t seed) {
  cvk::tensor<T, 4> x(n, side, side, channels);
  cvk::rng gen(seed);
  for (T& v : x) v = gen.uniform<T>();
  return x;
}

/// The distance of the last forward from every kink: the smallest |input| of a ReLU and the
/// smallest gap between a max-pool window's largest and second-largest tap (unless both are
/// zeros of a ReLU).
double kink_margin(const sequential_net<double>& net) {
  double margin = std::numeric_limits<double>::infinity();
  for (index_t i = 0; i < net.layer_count(); ++i) {
    const auto& x = net.activation(i);
    if (std::holds_alternative<cvk_example::relu_layer<double>>(net.layer_at(i))) {
      for (const double v : x) margin = std::min(margin, std::abs(v));
    }
    if (const auto* pool = std::get_if<cvk_example::max_pool_layer<double>>(&net.layer_at(i))) {
      const auto& p = pool->params;
      const index_t k = p.kernel[0], s = p.stride[0] == 0 ? k : p.stride[0], pad = p.padding[0];
      const auto& y = net.activation(i + 1);
      for (index_t n = 0; n < y.extent(0); ++n) {
        for (index_t oy = 0; oy < y.extent(1); ++oy) {
          for (index_t ox = 0; ox < y.extent(2); ++ox) {
            for (index_t c = 0; c < y.extent(3); ++c) {
              double first = -std::numeric_limits<double>::infinity(), second = first;
              for (index_t ky = 0; ky < k; ++ky) {
                for (index_t kx = 0; kx < k; ++kx) {
                  const index_t iy = oy * s - pad + ky, ix = ox * s - pad + kx;
                  if (iy < 0 || iy >= x.extent(1) || ix < 0 || ix >= x.extent(2)) continue;
                  const double v = x(n, iy, ix, c);
                  if (v > first) {
                    second = first;
                    first = v;
                  } else {
                    second = std::max(second, v);
                  }
                }
              }
              // Exact zeros are ReLU outputs whose inputs the ReLU margin keeps negative: a tie
              // among them stays a tie of zeros.
              if (second > -std::numeric_limits<double>::infinity() && first != 0) {
                margin = std::min(margin, first - second);
              }
            }
          }
        }
      }
    }
  }
  return margin;
}

/// L = Σ r ⊙ logits for fixed random r.
double weighted_logits(sequential_net<double>& net, const cvk::tensor<double, 4>& x,
                       const cvk::tensor<double, 2>& r, bool train) {
  const auto logits = net.forward(x, train);
  double sum = 0;
  for (index_t n = 0; n < logits.extent(0); ++n) {
    for (index_t k = 0; k < logits.extent(1); ++k) sum += r(n, k) * logits(n, k);
  }
  return sum;
}

constexpr double fd_step = 1e-6;

/// Central difference of L at `value` (restored afterwards).
double central_difference(sequential_net<double>& net, const cvk::tensor<double, 4>& x,
                          const cvk::tensor<double, 2>& r, bool train, double& value) {
  const double saved = value;
  value = saved + fd_step;
  const double up = weighted_logits(net, x, r, train);
  value = saved - fd_step;
  const double down = weighted_logits(net, x, r, train);
  value = saved;
  return (up - down) / (2 * fd_step);
}

bool close_to(double analytic, double numeric) {
  return std::abs(analytic - numeric) <= 1e-6 * std::max(1.0, std::abs(analytic));
}

/// Checks d L / d input and every parameter gradient against central differences at sampled
/// elements, after moving to a seed whose forward stays away from the kinks.
void check_gradients(sequential_net<double> (*make)(std::uint64_t), index_t side, bool train) {
  const index_t n_count = 3, samples = cvk_test::trials(24);
  for (std::uint64_t seed = 1;; ++seed) {
    INFO("seed " << seed << (train ? " (train mode)" : " (eval mode)"));
    sequential_net<double> net = make(seed);
    cvk::tensor<double, 4> x = random_images<double>(n_count, side, 3, seed);
    if (!train) {
      // Running statistics that are not the identity: a few train-mode passes.
      for (int pass = 0; pass < 3; ++pass) {
        (void)net.forward(random_images<double>(n_count, side, 3, 100 + seed), true);
      }
    }
    const auto logits = net.forward(x, train);
    // A kink closer than 1e-4 might be crossed by a step of 1e-6 times a derivative of up to
    // ~100: try the next seed.
    if (kink_margin(net) < 1e-4) continue;
    cvk::tensor<double, 2> r(logits.extents());
    cvk::rng gen(seed, 1);
    for (double& v : r) v = gen.uniform(-1.0, 1.0);
    const cvk::tensor<double, 4> grad_input = net.backward(r);
    REQUIRE(grad_input.extents() == x.extents());

    for (index_t s = 0; s < samples; ++s) {
      const auto e = static_cast<index_t>(gen.below(static_cast<std::uint64_t>(x.size())));
      const double numeric = central_difference(net, x, r, train, x.data()[e]);
      INFO("input element " << e);
      CHECK(close_to(grad_input.data()[e], numeric));
    }
    // The parameter gradients of this point (a forward for the differences overwrites nothing
    // but the activations: backward has already written them).
    std::vector<std::vector<double>> grads;
    net.for_each_parameter(
        [&](const auto& p) { grads.emplace_back(p.grad.begin(), p.grad.end()); });
    REQUIRE(grads.size() >= 8);
    std::size_t which = 0;
    net.for_each_parameter([&](auto& p) {
      const auto& g = grads[which];
      for (index_t s = 0; s < std::min<index_t>(samples, p.value.size()); ++s) {
        const auto e = static_cast<index_t>(gen.below(static_cast<std::uint64_t>(p.value.size())));
        const double numeric = central_difference(net, x, r, train, p.value.data()[e]);
        INFO("parameter " << which << " element " << e);
        CHECK(close_to(g[static_cast<std::size_t>(e)], numeric));
      }
      ++which;
    });
    return;
  }
}

}  // namespace

TEST_CASE("tiny_cnn: backward equals central finite differences (train mode)", "[tiny_cnn]") {
  check_gradients(global_pool_net, 16, true);
  check_gradients(flatten_net, 16, true);
}

TEST_CASE("tiny_cnn: backward equals central finite differences (eval mode)", "[tiny_cnn]") {
  check_gradients(global_pool_net, 16, false);
}

TEST_CASE("tiny_cnn: score gradients, Grad-CAM layer gradients", "[tiny_cnn]") {
  sequential_net<double> net = global_pool_net(3);
  (void)net.forward(random_images<double>(4, 16, 3, 9), true);  // running statistics
  const auto x = random_images<double>(2, 16, 3, 10);
  const std::vector<index_t> targets{2, 0};

  // Before the global pool: d logit_c / d A[n, h, w, k] = W[c, k] / (h·w), exactly.
  const index_t relu = net.layer_count() - 4;
  REQUIRE(net.layer_name(relu) == "relu");
  const auto r = net.activations_and_gradients(x, relu, targets);
  const auto& fc = std::get<cvk_example::linear_layer<double>>(net.layer_at(net.layer_count() - 1));
  REQUIRE(r.gradients.extents() == r.activations.extents());
  REQUIRE(r.activations.extent(3) == 6);
  const auto area = static_cast<double>(r.activations.extent(1) * r.activations.extent(2));
  for (index_t n = 0; n < 2; ++n) {
    for (index_t h = 0; h < r.activations.extent(1); ++h) {
      for (index_t w = 0; w < r.activations.extent(2); ++w) {
        for (index_t k = 0; k < 6; ++k) {
          CHECK(r.gradients(n, h, w, k) ==
                Approx(fc.weight.value(targets[static_cast<std::size_t>(n)], k) / area)
                    .epsilon(1e-14));
        }
      }
    }
  }
  // The activation is the layer's output of an eval forward.
  const auto logits = net.forward(x, false);
  CHECK(r.activations == net.activation(relu + 1));
  CHECK(r.logits == logits);

  // The gradient callable through cvk::vanilla_gradient (raw, NHWC), against score_gradients
  // image by image; the parameter gradients stay untouched.
  net.for_each_parameter([](auto& p) { std::fill(p.grad.begin(), p.grad.end(), 7.0); });
  static_assert(cvk::gradient_function<decltype(net.gradient_function(0)), double>);
  static_assert(cvk::forward_function<decltype(net.forward_function(0)), double>);
  cvk::vanilla_gradient_params vp;
  vp.mode = cvk::gradient_mode::raw;
  vp.model = {.batch_size = 2, .data_layout = cvk::layout::nhwc};
  const auto attribution = cvk::vanilla_gradient(x, net.gradient_function(1), vp);
  cvk::tensor<double, 4> grads(x.extents());
  cvk::tensor<double, 1> scores(2);
  net.score_gradients(x.view(), 1, scores.view(), grads.view());
  CHECK(attribution == grads);
  CHECK(scores(0) == logits(0, 1));
  CHECK(scores(1) == logits(1, 1));
  CHECK(std::any_of(grads.begin(), grads.end(), [](double v) { return v != 0; }));
  net.for_each_parameter([](const auto& p) {
    CHECK(std::all_of(p.grad.begin(), p.grad.end(), [](double v) { return v == 7.0; }));
  });
}

namespace {

/// Trains a float network on a small shapes set for `steps` steps; returns the loss curve.
std::vector<double> loss_curve(int threads, int steps) {
  cvk_example::shapes_options o;
  o.side = 16;
  o.min_size = 6;
  o.max_size = 10;
  const index_t batch = 8;
  const auto data = cvk_example::make_shapes<float>(batch * steps, 5, o);
  sequential_net<float> net(11, threads);
  net.conv(3, 8, 3, padded(1))
      .batch_norm()
      .relu()
      .max_pool(2)
      .conv(8, 8, 3, padded(1, 2))
      .batch_norm()
      .relu()
      .conv(8, 8, 3, padded(1, 8))
      .conv(8, 16, 1)
      .relu()
      .global_avg_pool()
      .flatten()
      .linear(16, 4);
  std::vector<double> curve;
  const index_t image = 16 * 16 * 3;
  cvk::tensor<float, 4> x(batch, 16, 16, 3);
  std::vector<index_t> labels(static_cast<std::size_t>(batch));
  for (int s = 0; s < steps; ++s) {
    std::copy_n(data.images.data() + s * batch * image, batch * image, x.data());
    std::copy_n(data.labels.begin() + s * batch, batch, labels.begin());
    curve.push_back(net.train_step(x, labels, 0.05, 0.9, 5e-4).loss);
  }
  return curve;
}

}  // namespace

TEST_CASE("tiny_cnn: seeded training is reproducible bit for bit", "[tiny_cnn]") {
  const int steps = 30;
  const auto first = loss_curve(2, steps);
  const auto second = loss_curve(2, steps);
  CHECK(first == second);
  // Every kernel is bit-identical for any thread count, and so is the network.
  CHECK(loss_curve(1, steps) == first);
  // It learns: the mean loss of the last 5 steps is below that of the first 5.
  double early = 0, late = 0;
  for (std::size_t i = 0; i < 5; ++i) {
    early += first[i];
    late += first[first.size() - 1 - i];
  }
  CHECK(late < early);
}

TEST_CASE("tiny_cnn: lrp_layers gives the network's logits through lrp_forward", "[tiny_cnn]") {
  for (const auto make : {global_pool_net, flatten_net}) {
    sequential_net<double> net = make(4);
    (void)net.forward(random_images<double>(4, 16, 3, 21), true);
    const auto x = random_images<double>(3, 16, 3, 22);
    const auto logits = net.forward(x, false);
    const auto layers = net.lrp_layers();
    REQUIRE(static_cast<index_t>(layers.size()) == net.layer_count());
    const auto lrp_logits =
        cvk::lrp_forward(layers, x, cvk::lrp_options{.data_layout = cvk::layout::nhwc});
    REQUIRE(lrp_logits.extents() == logits.extents());
    for (index_t n = 0; n < logits.extent(0); ++n) {
      for (index_t k = 0; k < logits.extent(1); ++k) {
        CHECK(lrp_logits(n, k) == Approx(logits(n, k)).epsilon(1e-12).margin(1e-12));
      }
    }
  }
}

TEST_CASE("tiny_cnn: cascading randomisation from the top", "[tiny_cnn]") {
  // Two SGD steps first, so that no parameter holds its initial value (batch norm's γ = 1).
  sequential_net<double> trained = global_pool_net(6);
  REQUIRE(trained.parameter_layer_count() == 8);  // 4 convs, 3 batch norms, 1 linear
  for (std::uint64_t step = 0; step < 2; ++step) {
    (void)trained.train_step(random_images<double>(4, 16, 3, 30 + step),
                             std::vector<index_t>{0, 1, 2, 1}, 0.1, 0.9, 0.0);
  }
  const auto values = [](const sequential_net<double>& net) {
    std::vector<std::vector<double>> v;
    net.for_each_parameter([&](const auto& p) { v.emplace_back(p.value.begin(), p.value.end()); });
    return v;
  };
  const auto before = values(trained);
  // Parameter tensors per layer, bottom to top: conv w b | bn γ β | conv w b | bn γ β | dw w b |
  // pw w | bn γ β | linear w b.
  const std::vector<std::size_t> first_tensor_of_stage = {15, 13, 11, 10, 8, 6, 4, 2, 0};
  for (index_t stages = 1; stages <= 3; ++stages) {
    sequential_net<double> net = trained;
    net.randomize_from_top(stages, 99);
    const auto after = values(net);
    const std::size_t changed_from = first_tensor_of_stage[static_cast<std::size_t>(stages)];
    for (std::size_t t = 0; t < before.size(); ++t) {
      INFO("stages " << stages << ", parameter tensor " << t);
      if (t < changed_from) {
        CHECK(after[t] == before[t]);
      } else {
        CHECK(after[t] != before[t]);
      }
    }
  }
}

TEST_CASE("tiny_cnn: errors name the layer", "[tiny_cnn]") {
  sequential_net<double> net(1);
  net.conv(3, 4, 3).relu().flatten().linear(10, 2);
  const auto x = random_images<double>(1, 6, 3, 1);
  try {
    (void)net.forward(x, false);
    FAIL("no error");
  } catch (const cvk::shape_error& e) {
    CHECK_THAT(e.what(), Catch::Contains("layer 3 (linear 10→2)") && Catch::Contains("N×1×1×10") &&
                             Catch::Contains("1×1×1×64"));
  }
  sequential_net<double> wrong(1);
  CHECK_THROWS_AS(wrong.conv(3, 4, 3).conv(5, 4, 3), cvk::invalid_argument);
  CHECK_THROWS_AS(wrong.conv(4, 6, 3, padded(0, 4)), cvk::invalid_argument);
  CHECK_THROWS_AS(sequential_net<double>(1).batch_norm(), cvk::invalid_argument);
  CHECK_THROWS_AS(net.activations_and_gradients(x, 9, std::vector<index_t>{0}), cvk::out_of_range);
}

TEST_CASE("shapes_dataset: seeded, per-image draws, ranges, boxes", "[tiny_cnn]") {
  const auto small = cvk_example::make_shapes<float>(6, 3);
  const auto large = cvk_example::make_shapes<double>(12, 3);
  const cvk_example::shapes_options o;
  const index_t image = o.side * o.side * 3;
  // Image i depends on (seed, i) only: the same in a larger set (float rounding of a double).
  bool same = true;
  for (index_t i = 0; i < 6 * image; ++i) {
    same = same && small.images.data()[i] == static_cast<float>(large.images.data()[i]);
  }
  CHECK(same);
  CHECK(std::equal(small.labels.begin(), small.labels.end(), large.labels.begin()));
  const auto other = cvk_example::make_shapes<double>(12, 4);
  CHECK(other.images != large.images);
  std::vector<int> seen(4, 0);
  const auto many = cvk_example::make_shapes<float>(64, 8);
  CHECK(std::all_of(many.images.begin(), many.images.end(),
                    [](float v) { return v >= 0 && v <= 1; }));
  for (std::size_t i = 0; i < 64; ++i) {
    const auto& b = many.boxes[i];
    REQUIRE(many.labels[i] >= 0);
    REQUIRE(many.labels[i] < 4);
    ++seen[static_cast<std::size_t>(many.labels[i])];
    CHECK(b.x1 - b.x0 == b.y1 - b.y0);
    CHECK(b.x1 - b.x0 >= o.min_size);
    CHECK(b.x1 - b.x0 <= o.max_size);
    CHECK(b.x0 >= 1);
    CHECK(b.y0 >= 1);
    CHECK(b.x1 <= o.side - 1);
    CHECK(b.y1 <= o.side - 1);
    // The object's colour has a channel of at least 0.8 − noise: the box holds a bright pixel.
    float brightest = 0;
    for (index_t y = b.y0; y < b.y1; ++y) {
      for (index_t x = b.x0; x < b.x1; ++x) {
        for (index_t c = 0; c < 3; ++c) {
          brightest = std::max(brightest, many.images(static_cast<index_t>(i), y, x, c));
        }
      }
    }
    CHECK(brightest > 0.7f);
  }
  CHECK(std::all_of(seen.begin(), seen.end(), [](int s) { return s > 0; }));
  CHECK_THROWS_AS(
      cvk_example::make_shapes<float>(1, 1, {.side = 12, .min_size = 8, .max_size = 11}),
      cvk::invalid_argument);
}
