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
#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include <cvk/core/parallel.hpp>
#include <cvk/saliency.hpp>

#include "support/png.hpp"
#include "support/shapes_dataset.hpp"
#include "support/shapes_network.hpp"
#include "support/tiny_cnn.hpp"

namespace {

using cvk::index_t;
using cvk_example::sequential_net;
using cvk_example::shapes_data;

constexpr index_t image_side = 40;  // shapes_options' default
constexpr index_t classes = cvk_example::shape_classes;

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

// ---------------------------------------------------------------------------------------------
// Part 2: every saliency method on held-out images.

using map_t = cvk::tensor<float, 3>;  // N×H×W
constexpr cvk::model_options nhwc_model{.batch_size = 64, .data_layout = cvk::layout::nhwc};

/// One method: the 1×H×W map of one image (1×H×W×3) for class `label`, with network `net`.
struct method {
  std::string name;
  std::function<map_t(sequential_net<float>&, const cvk::tensor<float, 4>&, index_t)> run;
};

map_t reduce(const cvk::tensor<float, 4>& attributions, cvk::channel_reduction mode) {
  return cvk::reduce_channels(attributions, {.mode = mode, .data_layout = cvk::layout::nhwc});
}

map_t upsample(const map_t& m) { return cvk::upsample_bilinear(m, {image_side, image_side}); }

/// The class-activation layer's activations and gradients for one image (N×10×10×64, NHWC).
cvk_example::layer_gradients<float> cam_inputs(sequential_net<float>& net,
                                               const cvk::tensor<float, 4>& x, index_t label) {
  return net.activations_and_gradients(x, cvk_example::shapes_cam_layer,
                                       std::vector<index_t>{label});
}

/// The linear head's weights for class c (64 values), for the FickleNet samples.
std::vector<float> head_weights(const sequential_net<float>& net, index_t c) {
  const auto layers = net.lrp_layers();
  const auto& head = std::get<cvk::lrp_linear<float>>(layers.back());
  std::vector<float> w(static_cast<std::size_t>(head.weight.extent(1)));
  for (index_t k = 0; k < head.weight.extent(1); ++k)
    w[static_cast<std::size_t>(k)] = head.weight(c, k);
  return w;
}

std::vector<method> saliency_methods() {
  using cr = cvk::channel_reduction;
  const auto model = nhwc_model;
  const cvk::grad_cam_params cam_nhwc{.data_layout = cvk::layout::nhwc};
  std::vector<method> m;
  m.push_back({"gradient", [=](auto& net, const auto& x, index_t c) {
                 return reduce(cvk::vanilla_gradient(x, net.gradient_function(c), {.model = model}),
                               cr::max_abs);
               }});
  m.push_back({"grad_x_input", [=](auto& net, const auto& x, index_t c) {
                 return reduce(cvk::gradient_x_input(x, net.gradient_function(c), {.model = model}),
                               cr::sum);
               }});
  m.push_back({"smooth_grad", [=](auto& net, const auto& x, index_t c) {
                 return reduce(
                     cvk::smooth_grad(x, net.gradient_function(c), {.samples = 16, .model = model}),
                     cr::abs_sum);
               }});
  m.push_back({"integrated_grad", [=](auto& net, const auto& x, index_t c) {
                 return reduce(cvk::integrated_gradients(x, net.gradient_function(c),
                                                         {.steps = 16, .model = model})
                                   .attributions,
                               cr::sum);
               }});
  m.push_back({"grad_cam", [=](auto& net, const auto& x, index_t c) {
                 const auto g = cam_inputs(net, x, c);
                 return upsample(cvk::grad_cam(g.activations, g.gradients, cam_nhwc));
               }});
  m.push_back({"grad_cam_pp", [=](auto& net, const auto& x, index_t c) {
                 const auto g = cam_inputs(net, x, c);
                 return upsample(cvk::grad_cam_pp(g.activations, g.gradients,
                                                  {.data_layout = cvk::layout::nhwc}));
               }});
  m.push_back({"layer_cam", [=](auto& net, const auto& x, index_t c) {
                 const auto g = cam_inputs(net, x, c);
                 return upsample(cvk::layer_cam(g.activations, g.gradients, cam_nhwc));
               }});
  m.push_back({"eigen_cam", [=](auto& net, const auto& x, index_t c) {
                 const auto g = cam_inputs(net, x, c);
                 return upsample(cvk::eigen_cam(g.activations, {.data_layout = cvk::layout::nhwc}));
               }});
  m.push_back({"score_cam", [=](auto& net, const auto& x, index_t c) {
                 const auto g = cam_inputs(net, x, c);
                 return upsample(
                     cvk::score_cam(x, g.activations, net.forward_function(c),
                                    {.data_layout = cvk::layout::nhwc, .model = model}));
               }});
  m.push_back({"occlusion", [=](auto& net, const auto& x, index_t c) {
                 return reduce(cvk::occlusion(x, net.forward_function(c),
                                              {.window = {.height = 8, .width = 8},
                                               .strides = {.height = 4, .width = 4},
                                               .model = model}),
                               cr::sum);
               }});
  m.push_back({"rise", [=](auto& net, const auto& x, index_t c) {
                 return cvk::rise(x, net.forward_function(c),
                                  {.masks = 1000, .cells = 5, .model = model});
               }});
  m.push_back({"extremal", [=](auto& net, const auto& x, index_t c) {
                 // The mask saturates at 1 over about its area: its first maximum in row-major
                 // order would be the plateau's top-left pixel. Smoothed with σ = 2 px, the
                 // maximum is the plateau's centre.
                 return cvk::gaussian_smooth(cvk::extremal_perturbation(x, net.gradient_function(c),
                                                                        {.areas = {0.06},
                                                                         .max_blur = 4,
                                                                         .step = 3,
                                                                         .sigma = 5,
                                                                         .max_iter = 150,
                                                                         .model = model})
                                                 .masks,
                                             2.0);
               }});
  m.push_back({"fickle", [=](auto& net, const auto& x, index_t c) {
                 // FickleNet: the CAM features expanded to 3×3 windows and dropped out at random;
                 // each sample's map is the CAM of a 3×3 / stride 3 box filter over the masked
                 // expanded features (the network's head is a global average and a linear layer).
                 const auto g = cam_inputs(net, x, c);
                 const cvk::fickle_params fp{.samples = 64, .data_layout = cvk::layout::nhwc};
                 const auto expanded = cvk::fickle_expand(g.activations, fp);
                 const std::vector<float> w = head_weights(net, c);
                 const index_t h = g.activations.extent(1), k_count = g.activations.extent(3);
                 const auto sample = [&](index_t, cvk::strided_view<const float, 4> mask) {
                   map_t out(index_t{1}, h, h);
                   for (index_t i = 0; i < h; ++i) {
                     for (index_t j = 0; j < h; ++j) {
                       double v = 0;
                       for (index_t k = 0; k < k_count; ++k) {
                         double sum = 0;
                         for (index_t dy = 0; dy < 3; ++dy) {
                           for (index_t dx = 0; dx < 3; ++dx) {
                             const index_t yy = 3 * i + dy, xx = 3 * j + dx;
                             sum += static_cast<double>(expanded(index_t{0}, yy, xx, k) *
                                                        mask(index_t{0}, yy, xx, k));
                           }
                         }
                         v += static_cast<double>(w[static_cast<std::size_t>(k)]) * sum / 9;
                       }
                       out(index_t{0}, i, j) = static_cast<float>(std::max(v, 0.0));
                     }
                   }
                   return out;
                 };
                 return upsample(cvk::fickle_aggregate<float>({1, k_count, h, h}, sample, fp));
               }});
  m.push_back({"lrp_eps_plus_flat", [=](auto& net, const auto& x, index_t c) {
                 return reduce(cvk::lrp(net.lrp_layers(), x, std::vector<index_t>{c},
                                        cvk::lrp_composite::epsilon_plus_flat(),
                                        {.data_layout = cvk::layout::nhwc})
                                   .relevance,
                               cr::sum);
               }});
  m.push_back({"lrp_eps_gamma_box", [=](auto& net, const auto& x, index_t c) {
                 return reduce(cvk::lrp(net.lrp_layers(), x, std::vector<index_t>{c},
                                        cvk::lrp_composite::epsilon_gamma_box({0.0}, {1.0}),
                                        {.data_layout = cvk::layout::nhwc})
                                   .relevance,
                               cr::sum);
               }});
  return m;
}

/// Image i of `data` as a 1×H×W×3 batch.
cvk::tensor<float, 4> image_at(const shapes_data<float>& data, index_t i) {
  const index_t side = data.images.extent(1), size = side * side * 3;
  cvk::tensor<float, 4> x(index_t{1}, side, side, index_t{3});
  std::copy_n(data.images.data() + i * size, size, x.data());
  return x;
}

/// The maps of images [0, count) of `data` by method `m` with network `net` (count×H×W).
map_t maps_of(const method& m, sequential_net<float>& net, const shapes_data<float>& data,
              index_t count) {
  map_t maps(count, image_side, image_side);
  const index_t plane = image_side * image_side;
  for (index_t i = 0; i < count; ++i) {
    const map_t one = m.run(net, image_at(data, i), data.labels[static_cast<std::size_t>(i)]);
    std::copy_n(one.data(), plane, maps.data() + i * plane);
  }
  return maps;
}

/// Object masks (count×H×W, 1 inside the box) for the pointing game.
cvk::tensor<std::uint8_t, 3> object_masks(const shapes_data<float>& data, index_t count) {
  cvk::tensor<std::uint8_t, 3> masks(count, image_side, image_side);
  for (index_t i = 0; i < count; ++i) {
    const auto& b = data.boxes[static_cast<std::size_t>(i)];
    for (index_t y = 0; y < image_side; ++y) {
      for (index_t x = 0; x < image_side; ++x) masks(i, y, x) = b.contains(x, y) ? 1 : 0;
    }
  }
  return masks;
}

/// The baselines: a Gaussian bump at the image centre, and seeded uniform noise.
map_t centre_maps(index_t count) {
  map_t m(count, image_side, image_side);
  const double c = (static_cast<double>(image_side) - 1) / 2;
  for (index_t i = 0; i < count; ++i) {
    for (index_t y = 0; y < image_side; ++y) {
      for (index_t x = 0; x < image_side; ++x) {
        const double dy = static_cast<double>(y) - c, dx = static_cast<double>(x) - c;
        m(i, y, x) = static_cast<float>(std::exp(-(dx * dx + dy * dy) / 50.0));
      }
    }
  }
  return m;
}

map_t random_maps(index_t count) {
  map_t m(count, image_side, image_side);
  cvk::rng gen(12345);
  for (float& v : m) v = static_cast<float>(gen.uniform(0.0, 1.0));
  return m;
}

struct evaluated {
  std::string name;
  map_t maps;  // pointing-game images
  double ms_per_image = 0;
};

/// Writes the grid: rows are images, columns the image and each method's map (positive part,
/// min-max normalised, jet, overlaid), the object's box in white and the map's maximum as a
/// cross.
void write_grid(const std::string& path, const shapes_data<float>& data,
                const std::vector<evaluated>& results, index_t rows) {
  constexpr int scale = 3, tile = static_cast<int>(image_side) * scale, gap = 4, top = 16;
  const int columns = static_cast<int>(results.size()) + 1;
  png::image img(columns * (tile + gap) + gap, top + static_cast<int>(rows) * (tile + gap) + gap);
  const auto blit = [&](int column, int row, const cvk::tensor<std::uint8_t, 3>& rgb) {
    const int x0 = gap + column * (tile + gap), y0 = top + gap + row * (tile + gap);
    for (int y = 0; y < tile; ++y) {
      for (int x = 0; x < tile; ++x) {
        const index_t sy = y / scale, sx = x / scale;
        img.set(x0 + x, y0 + y, {rgb(sy, sx, 0), rgb(sy, sx, 1), rgb(sy, sx, 2)});
      }
    }
  };
  img.draw_text(gap, 3, "image", png::black);
  for (std::size_t m = 0; m < results.size(); ++m) {
    img.draw_text(gap + static_cast<int>(m + 1) * (tile + gap), 3, results[m].name.substr(0, 18),
                  png::black);
  }
  for (index_t i = 0; i < rows; ++i) {
    const auto x = image_at(data, i);
    cvk::tensor<float, 3> rgb_float(image_side, image_side, index_t{3});
    cvk::tensor<std::uint8_t, 3> rgb(image_side, image_side, index_t{3});
    for (index_t k = 0; k < rgb.size(); ++k) {
      rgb_float.data()[k] = x.data()[k];
      rgb.data()[k] =
          static_cast<std::uint8_t>(std::lround(255 * std::clamp(x.data()[k], 0.f, 1.f)));
    }
    blit(0, static_cast<int>(i), rgb);
    const auto& b = data.boxes[static_cast<std::size_t>(i)];
    for (std::size_t m = 0; m < results.size(); ++m) {
      const cvk::strided_view<const float, 3> one(
          results[m].maps.data() + i * image_side * image_side,
          {index_t{1}, image_side, image_side});
      const auto normalised = cvk::normalize(one, {.sign = cvk::sign_mode::positive});
      const auto heat = cvk::colormap(normalised);  // 1×H×W×3
      const cvk::strided_view<const std::uint8_t, 3> heat0(heat.data(),
                                                           {image_side, image_side, index_t{3}});
      const int column = static_cast<int>(m) + 1;
      blit(column, static_cast<int>(i), cvk::overlay(rgb_float, heat0));
      const int x0 = gap + column * (tile + gap),
                y0 = top + gap + static_cast<int>(i) * (tile + gap);
      img.draw_rect(x0 + static_cast<double>(b.x0 * scale), y0 + static_cast<double>(b.y0 * scale),
                    x0 + static_cast<double>(b.x1 * scale) - 1,
                    y0 + static_cast<double>(b.y1 * scale) - 1, png::white);
      const auto pg = cvk::pointing_game(
          one, cvk::tensor<std::uint8_t, 3>({index_t{1}, image_side, image_side}, 1),
          {.tolerance = 0});
      const double py = y0 + (static_cast<double>(pg.points(index_t{0}, index_t{0})) + 0.5) * scale;
      const double px = x0 + (static_cast<double>(pg.points(index_t{0}, index_t{1})) + 0.5) * scale;
      img.draw_line(px - 5, py, px + 5, py, png::black, 2);
      img.draw_line(px, py - 5, px, py + 5, png::black, 2);
    }
  }
  if (!img.save(path)) std::printf("could not write %s\n", path.c_str());
}

/// Writes the sanity-check curves: mean |Spearman| of each method's maps against the trained
/// network's, per randomisation stage.
void write_sanity_plot(const std::string& path, const std::vector<std::string>& names,
                       const std::vector<std::vector<double>>& curves) {
  const int width = 760, height = 420, left = 50, right = 200, top = 20, bottom = 40;
  png::image img(width, height);
  const int plot_w = width - left - right, plot_h = height - top - bottom;
  const std::size_t stages = curves.empty() ? 1 : curves[0].size();
  const auto px = [&](std::size_t s) {
    return left + plot_w * static_cast<double>(s) /
                      static_cast<double>(std::max<std::size_t>(1, stages - 1));
  };
  const auto py = [&](double v) { return top + plot_h * (1.0 - (v + 0.2) / 1.2); };  // [-0.2, 1]
  for (double v = -0.2; v <= 1.0001; v += 0.2) {
    img.draw_line(left, py(v), left + plot_w, py(v), png::grey);
    char label[16];
    std::snprintf(label, sizeof label, "%.1f", v);
    img.draw_text(8, py(v) - 3, label, png::black);
  }
  for (std::size_t s = 0; s < stages; ++s) {
    char label[32];
    std::snprintf(label, sizeof label, "%zu", s);
    img.draw_text(px(s) - 3, top + plot_h + 6, label, png::black);
  }
  img.draw_text(left, height - 14, "parameter layers randomised from the top (0: trained)",
                png::black);
  for (std::size_t m = 0; m < curves.size(); ++m) {
    const png::rgb colour = png::palette(m);
    for (std::size_t s = 1; s < curves[m].size(); ++s) {
      img.draw_line(px(s - 1), py(curves[m][s - 1]), px(s), py(curves[m][s]), colour, 2);
    }
    const int y = top + 6 + static_cast<int>(m) * 14;
    img.draw_line(width - right + 12, y + 3, width - right + 30, y + 3, colour, 2);
    img.draw_text(width - right + 36, y, names[m], png::black);
  }
  if (!img.save(path)) std::printf("could not write %s\n", path.c_str());
}

double mean_of(const cvk::tensor<float, 2>& t, index_t row) {
  double s = 0;
  index_t n = 0;
  for (index_t i = 0; i < t.extent(1); ++i) {
    const double v = static_cast<double>(t(row, i));
    if (std::isfinite(v)) {
      s += v;
      ++n;
    }
  }
  return n > 0 ? s / static_cast<double>(n) : std::nan("");
}

/// Part 2: the pointing game (with baselines), the cascading randomisation sanity check and the
/// deletion / insertion AUCs, then the two pictures. Returns false when a target is missed.
bool explain(sequential_net<float>& net, const shapes_data<float>& test,
             const std::string& directory) {
  constexpr index_t pointing_images = 100, auc_images = 24, sanity_images = 6, grid_rows = 6;
  const auto methods = saliency_methods();
  const auto targets = object_masks(test, pointing_images);

  // Pointing game.
  std::printf(
      "\npointing game on %lld held-out images: hit = the map's maximum on the object "
      "(tolerance 0, Quantus) or within 3 px of it (TorchRay's 15 px at 224 px, scaled)\n",
      static_cast<long long>(pointing_images));
  std::printf("%-20s %8s %8s %12s\n", "method", "hit", "hit@3px", "ms / image");
  std::vector<evaluated> results;
  bool ok = true;
  const auto report = [&](const std::string& name, const map_t& maps, double ms) {
    const double strict = cvk::pointing_game(maps, targets, {.tolerance = 0}).accuracy;
    const double loose = cvk::pointing_game(maps, targets, {.tolerance = 3}).accuracy;
    std::printf("%-20s %7.1f%% %7.1f%% %12.2f\n", name.c_str(), 100 * strict, 100 * loose, ms);
    return strict;
  };
  report("centre baseline", centre_maps(pointing_images), 0);
  report("random baseline", random_maps(pointing_images), 0);
  for (const method& m : methods) {
    const auto start = std::chrono::steady_clock::now();
    map_t maps = maps_of(m, net, test, pointing_images);
    const double ms = 1e3 * seconds_since(start) / static_cast<double>(pointing_images);
    const double hit = report(m.name, maps, ms);
    if ((m.name == "grad_cam" || m.name == "extremal" || m.name == "lrp_eps_plus_flat") &&
        hit < 0.9) {
      std::printf("  ^ below the 90%% target\n");
      ok = false;
    }
    results.push_back({m.name, std::move(maps), ms});
  }

  // Deletion and insertion (RISE's causal metrics; 40 pixels per step): lower deletion and
  // higher insertion AUC are better. Scores are the target logits.
  std::printf(
      "\ndeletion / insertion AUC on %lld images (40 pixels per step; deletion to 0, "
      "insertion from a blur of sigma 5; logits)\n",
      static_cast<long long>(auc_images));
  std::printf("%-20s %10s %10s\n", "method", "deletion", "insertion");
  const auto causal = [&](const map_t& maps) {
    double del = 0, ins = 0;
    for (index_t i = 0; i < auc_images; ++i) {
      const auto x = image_at(test, i);
      const cvk::strided_view<const float, 3> one(maps.data() + i * image_side * image_side,
                                                  {index_t{1}, image_side, image_side});
      const auto f = net.forward_function(test.labels[static_cast<std::size_t>(i)]);
      const cvk::causal_params cp{.step = 40, .model = nhwc_model};
      del += static_cast<double>(cvk::deletion_auc(f, x, one, cp).auc(index_t{0}));
      ins += static_cast<double>(cvk::insertion_auc(f, x, one, cp).auc(index_t{0}));
    }
    return std::pair{del / static_cast<double>(auc_images), ins / static_cast<double>(auc_images)};
  };
  {
    const auto [d, i] = causal(random_maps(auc_images));
    std::printf("%-20s %10.3f %10.3f\n", "random baseline", d, i);
  }
  for (const evaluated& r : results) {
    const auto [d, i] = causal(r.maps);
    std::printf("%-20s %10.3f %10.3f\n", r.name.c_str(), d, i);
  }

  // Cascading model-parameter randomisation (Adebayo et al.): stage k randomises the top k
  // parameter layers; each method's maps are compared with the trained network's.
  const index_t stages = net.parameter_layer_count() + 1;
  std::vector<sequential_net<float>> nets;
  for (index_t k = 0; k < stages; ++k) {
    nets.push_back(net);
    nets.back().randomize_from_top(k, 1000 + static_cast<std::uint64_t>(k));
  }
  std::printf(
      "\ncascading randomisation on %lld images: mean |Spearman| (top) and SSIM "
      "(bottom) with the trained network's maps, per stage (k = parameter layers "
      "randomised from the top)\n%-20s",
      static_cast<long long>(sanity_images), "method");
  for (index_t k = 0; k < stages; ++k) std::printf(" %6lld", static_cast<long long>(k));
  std::printf("\n");
  std::vector<std::vector<double>> spearman_curves, ssim_curves;
  std::vector<std::string> names;
  for (const method& m : methods) {
    const auto r = cvk::cascading_randomization(
        nets, [&](sequential_net<float>& s) { return maps_of(m, s, test, sanity_images); },
        {.ssim = {.window_size = 7}});
    std::vector<double> rho, sim;
    for (index_t k = 0; k < stages; ++k) {
      rho.push_back(mean_of(r.spearman_abs, k));
      sim.push_back(mean_of(r.ssim, k));
    }
    std::printf("%-20s", m.name.c_str());
    for (const double v : rho) std::printf(" %6.2f", v);
    std::printf("\n%-20s", "");
    for (const double v : sim) std::printf(" %6.2f", v);
    std::printf("\n");
    names.push_back(m.name);
    spearman_curves.push_back(std::move(rho));
    ssim_curves.push_back(std::move(sim));
  }

  write_grid(directory + "/explain_cnn.png", test, results, grid_rows);
  write_sanity_plot(directory + "/explain_cnn_sanity.png", names, spearman_curves);
  std::printf("\nwrote %s/explain_cnn.png and %s/explain_cnn_sanity.png\n", directory.c_str(),
              directory.c_str());
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string directory = argc > 1 ? argv[1] : ".";

  // Part 1: data and training.
  const auto start = std::chrono::steady_clock::now();
  const auto train_set = cvk_example::make_shapes<float>(6000, 1);
  const auto test_set = cvk_example::make_shapes<float>(1000, 2);
  std::printf("data: %lld training and %lld test images of %lld×%lld, %lld classes (%.1f s)\n",
              static_cast<long long>(train_set.images.extent(0)),
              static_cast<long long>(test_set.images.extent(0)), static_cast<long long>(image_side),
              static_cast<long long>(image_side), static_cast<long long>(classes),
              seconds_since(start));
  auto net = cvk_example::shapes_network<float>(7);
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

  // Part 2: every saliency method on held-out images of the test set.
  const auto explain_start = std::chrono::steady_clock::now();
  const bool ok = explain(net, test_set, directory);
  std::printf("explained in %.1f s\n", seconds_since(explain_start));
  return ok ? 0 : 1;
}
