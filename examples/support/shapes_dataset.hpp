// cvk — computer-vision kernels, header-only C++20.
// Example support: a seeded synthetic localisation data set made in code. Each RGB image holds
// one object — a filled square, disk, triangle or plus-shaped cross of a random bright colour and
// size at a random position — on clutter that is not an object (a dark noisy background with a
// colour gradient, faint thin lines and faint blurred blobs). Images come with their class and
// the object's bounding box, so a saliency map can be scored by whether it points at the object.
// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include <cvk/core/errors.hpp>
#include <cvk/core/parallel.hpp>
#include <cvk/core/rng.hpp>
#include <cvk/core/tensor.hpp>

namespace cvk_example {

using cvk::index_t;

/// The classes, in label order.
inline constexpr std::array<const char*, 4> shape_names = {"square", "disk", "triangle", "cross"};
inline constexpr index_t shape_classes = 4;

/// An object's bounding box: pixels [x0, x1) × [y0, y1).
struct pixel_box {
  index_t x0 = 0, y0 = 0, x1 = 0, y1 = 0;
  [[nodiscard]] bool contains(index_t x, index_t y) const noexcept {
    return x >= x0 && x < x1 && y >= y0 && y < y1;
  }
};

struct shapes_options {
  /// Images side×side. 40 with objects of 8 to 14 pixels: the box covers 4% to 12% of the
  /// image, so a map that always points at the centre hits only about one object in five.
  index_t side = 40;
  index_t min_size = 8, max_size = 14;  ///< the object's box side, drawn uniformly
  index_t lines = 4;                    ///< faint clutter lines per image
  index_t blobs = 3;                    ///< faint blurred clutter blobs per image
  double noise = 0.04;                  ///< standard deviation of the pixel noise
};

/// N images (N×side×side×3, NHWC, values in [0, 1]), their labels and object boxes.
template <class T>
struct shapes_data {
  cvk::tensor<T, 4> images;
  std::vector<index_t> labels;
  std::vector<pixel_box> boxes;
};

namespace detail {

/// Whether point (u, v), in units of the object's box side and centred on it (|u|, |v| <= 0.5
/// inside the box), lies in shape `label`.
inline bool inside_shape(index_t label, double u, double v) {
  switch (label) {
    case 0:  // square, filling the box
      return std::abs(u) <= 0.5 && std::abs(v) <= 0.5;
    case 1:  // disk
      return u * u + v * v <= 0.25;
    case 2:  // triangle, apex up, base the box's bottom edge
      return v >= -0.5 && v <= 0.5 && std::abs(u) <= 0.5 * (v + 0.5);
    default:  // cross: two bars of a third of the side
      return (std::abs(u) <= 1.0 / 6 && std::abs(v) <= 0.5) ||
             (std::abs(v) <= 1.0 / 6 && std::abs(u) <= 0.5);
  }
}

/// A colour with channels in [lo, hi).
inline std::array<double, 3> random_colour(cvk::rng& gen, double lo, double hi) {
  return {gen.uniform(lo, hi), gen.uniform(lo, hi), gen.uniform(lo, hi)};
}

/// Image `index` of the set: pixels (row-major side×side×3) into `out`, its label and box.
inline void draw_shape_image(cvk::rng& gen, const shapes_options& o, double* out, index_t& label,
                             pixel_box& box) {
  const index_t side = o.side;
  const auto at = [&](index_t y, index_t x) { return out + (y * side + x) * 3; };
  // Background: a dark colour with a linear gradient across the image.
  const auto base = random_colour(gen, 0.05, 0.4);
  const auto tilt = random_colour(gen, -0.15, 0.15);
  const double angle = gen.uniform(0.0, 6.283185307179586);
  const double gx = std::cos(angle) / static_cast<double>(side);
  const double gy = std::sin(angle) / static_cast<double>(side);
  for (index_t y = 0; y < side; ++y) {
    for (index_t x = 0; x < side; ++x) {
      const double t = gx * static_cast<double>(x) + gy * static_cast<double>(y);
      for (std::size_t c = 0; c < 3; ++c) at(y, x)[c] = base[c] + tilt[c] * t;
    }
  }
  const auto blend = [&](index_t y, index_t x, const std::array<double, 3>& colour, double a) {
    if (y < 0 || y >= side || x < 0 || x >= side || a <= 0) return;
    double* p = at(y, x);
    for (std::size_t c = 0; c < 3; ++c) p[c] = (1 - a) * p[c] + a * colour[c];
  };
  // Clutter: faint blurred blobs and faint one-pixel lines of any colour.
  for (index_t b = 0; b < o.blobs; ++b) {
    const auto colour = random_colour(gen, 0.0, 1.0);
    const double cx = gen.uniform(0.0, static_cast<double>(side));
    const double cy = gen.uniform(0.0, static_cast<double>(side));
    const double sigma = gen.uniform(1.5, 3.5), strength = gen.uniform(0.2, 0.4);
    for (index_t y = 0; y < side; ++y) {
      for (index_t x = 0; x < side; ++x) {
        const double dx = static_cast<double>(x) + 0.5 - cx, dy = static_cast<double>(y) + 0.5 - cy;
        blend(y, x, colour, strength * std::exp(-(dx * dx + dy * dy) / (2 * sigma * sigma)));
      }
    }
  }
  for (index_t l = 0; l < o.lines; ++l) {
    const auto colour = random_colour(gen, 0.0, 1.0);
    const double strength = gen.uniform(0.2, 0.4);
    const double x0 = gen.uniform(0.0, static_cast<double>(side));
    const double y0 = gen.uniform(0.0, static_cast<double>(side));
    const double x1 = gen.uniform(0.0, static_cast<double>(side));
    const double y1 = gen.uniform(0.0, static_cast<double>(side));
    const auto steps = static_cast<index_t>(2 * std::max(std::abs(x1 - x0), std::abs(y1 - y0))) + 1;
    index_t last_x = -1, last_y = -1;
    for (index_t s = 0; s <= steps; ++s) {
      const double t = static_cast<double>(s) / static_cast<double>(steps);
      const auto x = static_cast<index_t>(x0 + t * (x1 - x0));
      const auto y = static_cast<index_t>(y0 + t * (y1 - y0));
      if (x == last_x && y == last_y) continue;
      blend(y, x, colour, strength);
      last_x = x;
      last_y = y;
    }
  }
  // The object: a colour with one channel in [0.8, 1), above the background's range, so it
  // stands out; coverage 4×4 supersampled.
  label = static_cast<index_t>(gen.below(static_cast<std::uint64_t>(shape_classes)));
  const index_t size =
      o.min_size +
      static_cast<index_t>(gen.below(static_cast<std::uint64_t>(o.max_size - o.min_size + 1)));
  const index_t x_first =
      1 + static_cast<index_t>(gen.below(static_cast<std::uint64_t>(side - size - 1)));
  const index_t y_first =
      1 + static_cast<index_t>(gen.below(static_cast<std::uint64_t>(side - size - 1)));
  box = {x_first, y_first, x_first + size, y_first + size};
  auto colour = random_colour(gen, 0.2, 1.0);
  colour[gen.below(3)] = gen.uniform(0.8, 1.0);
  constexpr int sub = 4;
  for (index_t y = box.y0; y < box.y1; ++y) {
    for (index_t x = box.x0; x < box.x1; ++x) {
      int hits = 0;
      for (int sy = 0; sy < sub; ++sy) {
        for (int sx = 0; sx < sub; ++sx) {
          const double u =
              (static_cast<double>(x - box.x0) + (sx + 0.5) / sub) / static_cast<double>(size) -
              0.5;
          const double v =
              (static_cast<double>(y - box.y0) + (sy + 0.5) / sub) / static_cast<double>(size) -
              0.5;
          hits += inside_shape(label, u, v) ? 1 : 0;
        }
      }
      blend(y, x, colour, static_cast<double>(hits) / (sub * sub));
    }
  }
  for (index_t i = 0; i < side * side * 3; ++i) {
    out[i] = std::clamp(out[i] + o.noise * gen.normal(), 0.0, 1.0);
  }
}

}  // namespace detail

/// `count` images; image i is drawn from cvk::rng(seed, i) alone, so a set does not depend on
/// its size, its order of generation or the thread count (sets of different seeds are
/// disjoint draws: use one seed for training, another for testing).
template <class T = float>
shapes_data<T> make_shapes(index_t count, std::uint64_t seed, const shapes_options& o = {}) {
  if (o.min_size < 3 || o.max_size < o.min_size || o.max_size > o.side - 2) {
    CVK_THROW(cvk::invalid_argument, "make_shapes: need 3 <= min_size <= max_size <= side - 2");
  }
  shapes_data<T> d;
  d.images = cvk::tensor<T, 4>(count, o.side, o.side, index_t{3});
  d.labels.assign(static_cast<std::size_t>(count), 0);
  d.boxes.assign(static_cast<std::size_t>(count), {});
  const index_t image_size = o.side * o.side * 3;
  cvk::parallel_for(0, count, 16, [&](index_t lo, index_t hi) {
    std::vector<double> pixels(static_cast<std::size_t>(image_size));
    for (index_t i = lo; i < hi; ++i) {
      cvk::rng gen(seed, static_cast<std::uint64_t>(i));
      const auto s = static_cast<std::size_t>(i);
      detail::draw_shape_image(gen, o, pixels.data(), d.labels[s], d.boxes[s]);
      std::transform(pixels.begin(), pixels.end(), d.images.data() + i * image_size,
                     [](double v) { return static_cast<T>(v); });
    }
  });
  return d;
}

}  // namespace cvk_example
