// cvk — computer-vision kernels, header-only C++20.
// A tour of cvk's saliency methods on one synthetic image. The "network" is a small analytic
// model written here (no training, no framework): 8×8 average pooling, a 1×1 convolution with four
// fixed colour filters and a ReLU give the feature map A (4×12×12), then global average pooling
// and a linear layer give the score. Its backward pass is written by hand (checked against a
// finite difference below), so every method that needs activations, gradients or model calls can
// run on it: the CAM family, the gradient methods, occlusion, RISE, extremal perturbations and a
// FickleNet-style aggregation. The image holds clutter, a green distractor and a red textured
// square, the object that drives the score; every map should point at that square. Prints, per
// method, the pointing-game hit and the time, the deletion / insertion AUC of three methods, and
// writes saliency_tour.png: one tile per method, its map in jet overlaid on the image.
// SPDX-License-Identifier: MIT
#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include <cvk/saliency.hpp>

#include "support/png.hpp"

namespace {

using cvk::index_t;

constexpr index_t channels = 3;
constexpr index_t side = 96;           // image H = W
constexpr index_t cell = 8;            // pooling window and stride
constexpr index_t grid = side / cell;  // feature map h = w = 12
constexpr index_t features = 4;        // K
constexpr index_t image_size = channels * side * side;
constexpr index_t cells = grid * grid;

// The object: a textured red square (pixels [top, top + size) × [left, left + size)).
constexpr index_t object_top = 20, object_left = 54, object_size = 32;

// The model's fixed parameters. Feature k at cell (i, j): z_k = Σ_c filter[k][c]·P_c(i, j) +
// bias[k], P the 8×8 average of channel c, A_k = max(z_k, 0). Score = gain·Σ_k weight[k]·mean(A_k).
constexpr std::array<std::array<double, 3>, features> filter = {{
    {1.0, -0.5, -0.5},    // "red": the object's colour
    {0.5, 0.25, 0.25},    // "bright": brighter than the clutter
    {-0.5, 1.0, -0.5},    // "green": the distractor, evidence against the class
    {-0.25, -0.25, 0.5},  // "blue": weak evidence for the class
}};
constexpr std::array<double, features> bias = {-0.2, -0.45, -0.2, -0.1};
constexpr std::array<double, features> weight = {1.0, 0.5, -0.6, 0.15};
constexpr double gain = 200;  // scales the score to logit-like values (about 10)

/// The feature map of one image (C×H×W, contiguous): pre-activations z and activations A, K×12×12.
void forward_features(const float* x, std::vector<double>& z, std::vector<double>& a) {
  z.assign(static_cast<std::size_t>(features * cells), 0.0);
  a.assign(z.size(), 0.0);
  for (index_t i = 0; i < grid; ++i) {
    for (index_t j = 0; j < grid; ++j) {
      std::array<double, channels> pooled{};
      for (index_t c = 0; c < channels; ++c) {
        double sum = 0;
        for (index_t y = i * cell; y < (i + 1) * cell; ++y) {
          for (index_t u = j * cell; u < (j + 1) * cell; ++u) sum += x[(c * side + y) * side + u];
        }
        pooled[static_cast<std::size_t>(c)] = sum / static_cast<double>(cell * cell);
      }
      for (std::size_t k = 0; k < features; ++k) {
        const double v = filter[k][0] * pooled[0] + filter[k][1] * pooled[1] +
                         filter[k][2] * pooled[2] + bias[k];
        const auto at = static_cast<std::size_t>(static_cast<index_t>(k) * cells + i * grid + j);
        z[at] = v;
        a[at] = std::max(v, 0.0);
      }
    }
  }
}

/// The score of activations A: gain·Σ_k weight[k]·mean(A_k).
double head(const std::vector<double>& a) {
  double s = 0;
  for (std::size_t k = 0; k < features; ++k) {
    double sum = 0;
    for (index_t p = 0; p < cells; ++p)
      sum += a[k * static_cast<std::size_t>(cells) + static_cast<std::size_t>(p)];
    s += weight[k] * sum / static_cast<double>(cells);
  }
  return gain * s;
}

/// d score / d A_k(i, j): the same for every cell, gain·weight[k]/(h·w).
double head_gradient(std::size_t k) { return gain * weight[k] / static_cast<double>(cells); }

/// The score of one image, and d score / d image into `grad` (C×H×W) when it is not null.
double score_image(const float* x, float* grad) {
  std::vector<double> z, a;
  forward_features(x, z, a);
  if (grad != nullptr) {
    // Back through the ReLU (1 where z > 0), the 1×1 convolution and the 8×8 average pooling.
    for (index_t c = 0; c < channels; ++c) {
      for (index_t y = 0; y < side; ++y) {
        for (index_t u = 0; u < side; ++u) {
          const index_t p = (y / cell) * grid + u / cell;
          double g = 0;
          for (std::size_t k = 0; k < features; ++k) {
            if (z[k * static_cast<std::size_t>(cells) + static_cast<std::size_t>(p)] > 0) {
              g += head_gradient(k) * filter[k][static_cast<std::size_t>(c)];
            }
          }
          grad[(c * side + y) * side + u] =
              static_cast<float>(g / static_cast<double>(cell * cell));
        }
      }
    }
  }
  return head(a);
}

// The model as cvk's callables (cvk/saliency/model.hpp): batches B×3×96×96, contiguous NCHW.
void forward(cvk::strided_view<const float, 4> batch, cvk::strided_view<float, 1> scores) {
  for (index_t b = 0; b < batch.extent(0); ++b) {
    scores(b) = static_cast<float>(score_image(batch.data() + b * image_size, nullptr));
  }
}

void gradient(cvk::strided_view<const float, 4> batch, cvk::strided_view<float, 1> scores,
              cvk::strided_view<float, 4> grads) {
  for (index_t b = 0; b < batch.extent(0); ++b) {
    scores(b) = static_cast<float>(
        score_image(batch.data() + b * image_size, grads.data() + b * image_size));
  }
}

/// A deterministic generator of doubles in [0, 1) (splitmix64).
struct noise {
  std::uint64_t state;
  double next() {
    std::uint64_t v = (state += 0x9E3779B97F4A7C15ULL);
    v = (v ^ (v >> 30)) * 0xBF58476D1CE4E5B9ULL;
    v = (v ^ (v >> 27)) * 0x94D049BB133111EBULL;
    v ^= v >> 31;
    return static_cast<double>(v >> 11) * 0x1.0p-53;
  }
};

/// The test image, 1×3×96×96 in [0, 1]: noisy grey-blue background with grey clutter boxes, a
/// blue patch, a green distractor blob and the red checkered object.
cvk::tensor<float, 4> make_image() {
  cvk::tensor<float, 4> x(index_t{1}, channels, side, side);
  noise rng{42};
  const auto paint = [&](index_t y, index_t u, std::array<double, 3> rgb) {
    for (index_t c = 0; c < channels; ++c) {
      x(index_t{0}, c, y, u) =
          static_cast<float>(std::clamp(rgb[static_cast<std::size_t>(c)], 0.0, 1.0));
    }
  };
  for (index_t y = 0; y < side; ++y) {
    for (index_t u = 0; u < side; ++u) {
      const double n = 0.12 * (rng.next() - 0.5);
      paint(y, u, {0.36 + n, 0.40 + n, 0.44 + n});
    }
  }
  // Clutter: grey boxes of random size and shade.
  for (int box = 0; box < 9; ++box) {
    const auto y0 = static_cast<index_t>(rng.next() * 80),
               u0 = static_cast<index_t>(rng.next() * 80);
    const auto h = 6 + static_cast<index_t>(rng.next() * 14),
               w = 6 + static_cast<index_t>(rng.next() * 14);
    const double shade = 0.25 + 0.35 * rng.next();
    for (index_t y = y0; y < std::min(y0 + h, side); ++y) {
      for (index_t u = u0; u < std::min(u0 + w, side); ++u) {
        const double n = 0.08 * (rng.next() - 0.5);
        paint(y, u, {shade + n, shade + 0.02 + n, shade + 0.04 + n});
      }
    }
  }
  // A blue patch (top left) and a green disc (bottom left).
  for (index_t y = 6; y < 30; ++y) {
    for (index_t u = 6; u < 34; ++u) paint(y, u, {0.2, 0.3, 0.8 + 0.1 * (rng.next() - 0.5)});
  }
  for (index_t y = 0; y < side; ++y) {
    for (index_t u = 0; u < side; ++u) {
      const double dy = static_cast<double>(y) - 70, du = static_cast<double>(u) - 24;
      if (dy * dy + du * du < 15.0 * 15.0) paint(y, u, {0.15, 0.8 + 0.1 * (rng.next() - 0.5), 0.2});
    }
  }
  // The object: a red square with a 4-pixel checker texture.
  for (index_t y = object_top; y < object_top + object_size; ++y) {
    for (index_t u = object_left; u < object_left + object_size; ++u) {
      const bool light = ((y / 4) + (u / 4)) % 2 == 0;
      paint(y, u,
            light ? std::array<double, 3>{0.95, 0.25, 0.2} : std::array<double, 3>{0.75, 0.1, 0.1});
    }
  }
  return x;
}

/// A method's result for the picture and the report.
struct entry {
  std::string name;
  cvk::tensor<float, 3> map;  // 1×96×96, the raw (unnormalised) map at the image's size
  double ms = 0;
  std::string note;
};

using clock_type = std::chrono::steady_clock;

double ms_since(clock_type::time_point start) {
  return std::chrono::duration<double, std::milli>(clock_type::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  const std::string directory = argc > 1 ? argv[1] : ".";
  const auto image = make_image();
  const std::array<index_t, 2> size{side, side};

  // The object's mask, for the pointing game.
  cvk::tensor<std::uint8_t, 3> target(index_t{1}, side, side);
  for (index_t y = object_top; y < object_top + object_size; ++y) {
    for (index_t u = object_left; u < object_left + object_size; ++u) target(index_t{0}, y, u) = 1;
  }

  // The model's activations and d score / d activations (what a framework's hooks would give).
  std::vector<double> z, a;
  forward_features(image.data(), z, a);
  cvk::tensor<float, 4> acts(index_t{1}, features, grid, grid);
  cvk::tensor<float, 4> acts_grad(index_t{1}, features, grid, grid);
  cvk::tensor<float, 2> fc(index_t{1}, features);
  for (index_t k = 0; k < features; ++k) {
    const auto kk = static_cast<std::size_t>(k);
    fc(index_t{0}, k) = static_cast<float>(gain * weight[kk]);
    for (index_t i = 0; i < grid; ++i) {
      for (index_t j = 0; j < grid; ++j) {
        acts(index_t{0}, k, i, j) = static_cast<float>(
            a[kk * static_cast<std::size_t>(cells) + static_cast<std::size_t>(i * grid + j)]);
        acts_grad(index_t{0}, k, i, j) = static_cast<float>(head_gradient(kk));
      }
    }
  }

  // The hand-written backward against a central difference at one object pixel.
  {
    const index_t c = 0, y = object_top + 5, u = object_left + 5;
    std::vector<float> x(image.data(), image.data() + image_size),
        g(static_cast<std::size_t>(image_size));
    const double s = score_image(x.data(), g.data());
    const auto at = static_cast<std::size_t>((c * side + y) * side + u);
    const float x0 = x[at];
    x[at] = x0 + 0.01f;
    const double up = score_image(x.data(), nullptr);
    const float hi = x[at];
    x[at] = x0 - 0.01f;
    const double down = score_image(x.data(), nullptr);
    const float lo = x[at];
    std::printf(
        "model: score %.4f; d score/d x[R, %td, %td] = %.6g analytic, %.6g finite difference\n", s,
        y, u, static_cast<double>(g[at]), (up - down) / static_cast<double>(hi - lo));
  }

  std::vector<entry> entries;
  const auto add_cam = [&](const std::string& name, const cvk::tensor<float, 3>& m, double ms) {
    entries.push_back({name, cvk::upsample_bilinear(m, size), ms, ""});
  };
  const auto add_elementwise = [&](const std::string& name, const cvk::tensor<float, 4>& attr,
                                   cvk::channel_reduction mode, double ms, std::string note = "") {
    entries.push_back({name, cvk::reduce_channels(attr, {.mode = mode}), ms, std::move(note)});
  };

  // The CAM family (maps at the feature map's 12×12, upsampled to 96×96 for display and scoring).
  auto t = clock_type::now();
  const cvk::tensor<int, 1> classes(index_t{1});
  auto m = cvk::cam(acts, fc, classes);
  add_cam("cam", m, ms_since(t));
  t = clock_type::now();
  m = cvk::grad_cam(acts, acts_grad);
  add_cam("grad_cam", m, ms_since(t));
  t = clock_type::now();
  m = cvk::grad_cam_pp(acts, acts_grad);
  add_cam("grad_cam_pp", m, ms_since(t));
  t = clock_type::now();
  m = cvk::xgrad_cam(acts, acts_grad);
  add_cam("xgrad_cam", m, ms_since(t));
  t = clock_type::now();
  m = cvk::layer_cam(acts, acts_grad);
  add_cam("layer_cam", m, ms_since(t));
  t = clock_type::now();
  m = cvk::hires_cam(acts, acts_grad);
  add_cam("hires_cam", m, ms_since(t));
  t = clock_type::now();
  m = cvk::eigen_cam(acts);
  add_cam("eigen_cam", m, ms_since(t));
  t = clock_type::now();
  m = cvk::score_cam(image, acts, forward);
  add_cam("score_cam", m, ms_since(t));

  // Gradient methods (elementwise attributions, reduced over the colour channels).
  t = clock_type::now();
  auto attr = cvk::vanilla_gradient(image, gradient);
  add_elementwise("vanilla_gradient", attr, cvk::channel_reduction::sum, ms_since(t),
                  "|gradient| is constant on each active 8x8 cell: the argmax is a tie");
  t = clock_type::now();
  attr = cvk::gradient_x_input(image, gradient);
  add_elementwise("gradient_x_input", attr, cvk::channel_reduction::sum, ms_since(t));
  t = clock_type::now();
  attr = cvk::smooth_grad(image, gradient);
  add_elementwise("smooth_grad", attr, cvk::channel_reduction::abs_sum, ms_since(t));
  t = clock_type::now();
  const auto ig = cvk::integrated_gradients(image, gradient);
  const double ig_ms = ms_since(t);
  char delta[64];
  std::snprintf(delta, sizeof delta, "completeness delta %.2e",
                static_cast<double>(ig.delta(index_t{0})));
  add_elementwise("integrated_gradients", ig.attributions, cvk::channel_reduction::sum, ig_ms,
                  delta);

  // Perturbation methods through the forward callable.
  t = clock_type::now();
  attr =
      cvk::occlusion(image, forward,
                     {.window = {.height = 12, .width = 12}, .strides = {.height = 6, .width = 6}});
  add_elementwise("occlusion", attr, cvk::channel_reduction::sum, ms_since(t),
                  "12x12 window, stride 6");
  t = clock_type::now();
  auto rise_map = cvk::rise(image, forward, {.masks = 500});
  entries.push_back({"rise", std::move(rise_map), ms_since(t), "500 masks"});

  // Extremal perturbation: the preserve game for a mask of about the object's area.
  t = clock_type::now();
  const auto ep = cvk::extremal_perturbation(
      image, gradient, {.areas = {0.07}, .max_blur = 10, .step = 6, .sigma = 12, .max_iter = 300});
  char reward[64];
  std::snprintf(reward, sizeof reward, "300 iterations, final reward %.2f",
                static_cast<double>(ep.history(index_t{0}, index_t{299}, index_t{0})));
  entries.push_back({"extremal_perturbation", ep.masks, ms_since(t), reward});

  // FickleNet: the feature map expanded to 3×3 windows and dropped out at random; each sample's
  // map is the Grad-CAM of a 3×3 / stride 3 box filter over the masked expanded map (our model's
  // gradient with respect to it is still weight[k]·gain/(h·w) everywhere).
  t = clock_type::now();
  const cvk::fickle_params fp{.samples = 100};
  const auto expanded = cvk::fickle_expand(acts, fp);
  const auto sample = [&](index_t, cvk::strided_view<const float, 4> mask) {
    cvk::tensor<float, 3> map(index_t{1}, grid, grid);
    for (index_t i = 0; i < grid; ++i) {
      for (index_t j = 0; j < grid; ++j) {
        double v = 0;
        for (index_t k = 0; k < features; ++k) {
          double sum = 0;
          for (index_t dy = 0; dy < 3; ++dy) {
            for (index_t dx = 0; dx < 3; ++dx) {
              sum += static_cast<double>(expanded(index_t{0}, k, 3 * i + dy, 3 * j + dx) *
                                         mask(index_t{0}, k, 3 * i + dy, 3 * j + dx));
            }
          }
          v += head_gradient(static_cast<std::size_t>(k)) * sum / 9;
        }
        map(index_t{0}, i, j) = static_cast<float>(std::max(v, 0.0));
      }
    }
    return map;
  };
  m = cvk::fickle_aggregate<float>({1, features, grid, grid}, sample, fp);
  add_cam("fickle_aggregate", m, ms_since(t));
  entries.back().note = "100 samples, mean";

  // Pointing game: Quantus' strict form (tolerance 0: the map's argmax lies on the object) and
  // TorchRay's (an object pixel within 15 pixels of it); and each method's time.
  std::printf("\n%-22s %8s %6s %7s %10s  %s\n", "method", "argmax", "hit", "hit@15", "time ms", "");
  std::vector<std::array<index_t, 2>> points;
  for (const auto& e : entries) {
    const auto pg = cvk::pointing_game(e.map, target, {.tolerance = 0});
    const auto pg15 = cvk::pointing_game(e.map, target, {.tolerance = 15});
    points.push_back({pg.points(index_t{0}, index_t{0}), pg.points(index_t{0}, index_t{1})});
    char where[32];
    std::snprintf(where, sizeof where, "%td,%td", points.back()[0], points.back()[1]);
    std::printf("%-22s %8s %6s %7s %10.2f  %s\n", e.name.c_str(), where,
                pg.hits(index_t{0}) != 0 ? "yes" : "MISS",
                pg15.hits(index_t{0}) != 0 ? "yes" : "MISS", e.ms, e.note.c_str());
  }

  // Deletion and insertion games (RISE's causal metrics): lower deletion and higher insertion
  // AUC are better. 96 pixels per step.
  std::printf("\n%-22s %12s %13s\n", "method", "deletion_auc", "insertion_auc");
  for (const char* name : {"grad_cam", "integrated_gradients", "rise"}) {
    const auto it = std::find_if(entries.begin(), entries.end(),
                                 [&](const entry& e) { return e.name == name; });
    const auto del = cvk::deletion_auc(forward, image, it->map, {.step = 96});
    const auto ins = cvk::insertion_auc(forward, image, it->map, {.step = 96});
    std::printf("%-22s %12.3f %13.3f\n", name, static_cast<double>(del.auc(index_t{0})),
                static_cast<double>(ins.auc(index_t{0})));
  }

  // The picture: the image, then one tile per method (min-max normalised positive part, jet,
  // overlaid at half weight), the object outlined and the argmax marked.
  cvk::tensor<float, 3> rgb(side, side, channels);  // H×W×3 in [0, 1] for overlay
  for (index_t y = 0; y < side; ++y) {
    for (index_t u = 0; u < side; ++u) {
      for (index_t c = 0; c < channels; ++c) rgb(y, u, c) = image(index_t{0}, c, y, u);
    }
  }
  constexpr int scale = 2, tile = static_cast<int>(side) * scale, title = 22, columns = 6;
  const int count = static_cast<int>(entries.size()) + 1;
  const int rows = (count + columns - 1) / columns;
  png::image picture(columns * tile, rows * (tile + title));
  const auto draw_tile = [&](int index, const std::string& name, const auto& pixels,
                             const std::array<index_t, 2>* point) {
    const int ox = (index % columns) * tile, oy = (index / columns) * (tile + title);
    picture.draw_text(ox + 4, oy + 4, name, png::black, name.size() > 15 ? 1 : 2);
    for (index_t y = 0; y < side; ++y) {
      for (index_t u = 0; u < side; ++u) {
        const png::rgb colour{pixels(y, u, index_t{0}), pixels(y, u, index_t{1}),
                              pixels(y, u, index_t{2})};
        picture.fill_rect(ox + static_cast<int>(u) * scale,
                          oy + title + static_cast<int>(y) * scale,
                          ox + static_cast<int>(u + 1) * scale,
                          oy + title + static_cast<int>(y + 1) * scale, colour);
      }
    }
    picture.draw_rect(ox + static_cast<double>(object_left * scale),
                      oy + title + static_cast<double>(object_top * scale),
                      ox + static_cast<double>((object_left + object_size) * scale),
                      oy + title + static_cast<double>((object_top + object_size) * scale),
                      png::white, 1);
    if (point != nullptr) {
      const double px = ox + static_cast<double>((*point)[1] * scale) + 1;
      const double py = oy + title + static_cast<double>((*point)[0] * scale) + 1;
      picture.draw_line(px - 6, py, px + 6, py, png::white, 2);
      picture.draw_line(px, py - 6, px, py + 6, png::white, 2);
    }
  };
  cvk::tensor<std::uint8_t, 3> input(side, side, channels);
  for (index_t y = 0; y < side; ++y) {
    for (index_t u = 0; u < side; ++u) {
      for (index_t c = 0; c < channels; ++c) {
        input(y, u, c) =
            static_cast<std::uint8_t>(std::lround(255.0 * static_cast<double>(rgb(y, u, c))));
      }
    }
  }
  draw_tile(0, "image", input, nullptr);
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const auto normalised = cvk::normalize(entries[i].map, {.sign = cvk::sign_mode::positive});
    const auto heat = cvk::colormap(normalised);  // 1×96×96×3
    const cvk::strided_view<const std::uint8_t, 3> heat0(heat.data(), {side, side, channels});
    const auto mixed = cvk::overlay(rgb, heat0);
    draw_tile(static_cast<int>(i) + 1, entries[i].name, mixed, &points[i]);
  }
  const std::string path = directory + "/saliency_tour.png";
  if (!picture.save(path)) {
    std::fprintf(stderr, "could not write %s\n", path.c_str());
    return 1;
  }
  std::printf("\nwrote %s\n", path.c_str());
}
