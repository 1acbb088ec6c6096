// cvk — computer-vision kernels, header-only C++20.
// Random NMS scenes shared by the NMS test suites: boxes (xyxy) of six densities, from sparse
// (the grid paths) to all-overlapping, integer grids with exact IoU ties, and degenerate boxes.
// Every random draw is its own statement, so the scenes are the same with every compiler
// (the evaluation order of function arguments is unspecified).
// SPDX-License-Identifier: MIT
#pragma once

#include <array>
#include <cmath>
#include <cstddef>
#include <limits>
#include <utility>
#include <vector>

#include <cvk/core/rng.hpp>

namespace cvk_test {

enum class density { sparse, clusters, overlapping, mixed_scales, tiny_canvas, degenerate };
inline constexpr std::array<const char*, 6> density_names = {
    "sparse", "clusters", "overlapping", "mixed_scales", "tiny_canvas", "degenerate"};

/// n boxes (xyxy, type T) of density d:
///   sparse        1000×1000 canvas, sides 1–50 (most boxes kept)
///   clusters      1–12 objects, candidates jittered by ~10% (IoU ~0.5–0.95)
///   overlapping   every box contains (500, 500)
///   mixed_scales  sides 1–665: some boxes span many grid cells
///   tiny_canvas   8×8 integer grid: exact IoU ties, identical, touching and zero-width boxes
///   degenerate    sparse plus inverted, zero-area, huge, NaN and infinite boxes
template <class T>
std::vector<std::array<T, 4>> random_scene(cvk::rng& gen, density d, std::size_t n) {
  std::vector<std::array<T, 4>> boxes(n);
  const auto box_at = [](double cx, double cy, double w, double h) {
    return std::array<T, 4>{static_cast<T>(cx - w / 2), static_cast<T>(cy - h / 2),
                            static_cast<T>(cx + w / 2), static_cast<T>(cy + h / 2)};
  };
  const auto sparse_box = [&] {
    const double x = gen.uniform(0.0, 1000.0);
    const double y = gen.uniform(0.0, 1000.0);
    const double w = gen.uniform(1.0, 50.0);
    const double h = gen.uniform(1.0, 50.0);
    return std::array<T, 4>{static_cast<T>(x), static_cast<T>(y), static_cast<T>(x + w),
                            static_cast<T>(y + h)};
  };
  switch (d) {
    case density::sparse:
      for (auto& b : boxes) b = sparse_box();
      break;
    case density::clusters: {
      const std::size_t objects = 1 + gen.below(12);
      std::vector<std::array<double, 4>> centres(objects);
      for (auto& c : centres) {
        const double x = gen.uniform(-200.0, 400.0);
        const double y = gen.uniform(-200.0, 400.0);
        const double w = gen.uniform(5.0, 80.0);
        const double h = gen.uniform(5.0, 80.0);
        c = {x, y, w, h};
      }
      for (auto& b : boxes) {
        const auto& c = centres[gen.below(objects)];
        const double dx = gen.normal(0.0, 0.1);
        const double dy = gen.normal(0.0, 0.1);
        const double sw = gen.normal(0.0, 0.1);
        const double sh = gen.normal(0.0, 0.1);
        b = box_at(c[0] + dx * c[2], c[1] + dy * c[3], c[2] * std::exp(sw), c[3] * std::exp(sh));
      }
      break;
    }
    case density::overlapping:
      for (auto& b : boxes) {
        const double x1 = 500 - gen.uniform(1.0, 200.0);
        const double y1 = 500 - gen.uniform(1.0, 200.0);
        const double x2 = 500 + gen.uniform(1.0, 200.0);
        const double y2 = 500 + gen.uniform(1.0, 200.0);
        b = {static_cast<T>(x1), static_cast<T>(y1), static_cast<T>(x2), static_cast<T>(y2)};
      }
      break;
    case density::mixed_scales:
      for (auto& b : boxes) {
        const double side = std::exp(gen.uniform(0.0, 6.5));  // 1 .. 665
        const double cx = gen.uniform(0.0, 800.0);
        const double cy = gen.uniform(0.0, 800.0);
        const double w = side * gen.uniform(0.5, 1.5);
        const double h = side * gen.uniform(0.5, 1.5);
        b = box_at(cx, cy, w, h);
      }
      break;
    case density::tiny_canvas:
      for (auto& b : boxes) {
        const auto x = static_cast<double>(gen.below(8));
        const auto y = static_cast<double>(gen.below(8));
        const auto w = static_cast<double>(gen.bernoulli(0.1) ? 0 : 1 + gen.below(4));
        const auto h = static_cast<double>(1 + gen.below(4));
        b = {static_cast<T>(x), static_cast<T>(y), static_cast<T>(x + w), static_cast<T>(y + h)};
      }
      break;
    case density::degenerate:
      for (auto& b : boxes) {
        b = sparse_box();
        switch (gen.below(10)) {
          case 0:
            std::swap(b[0], b[2]);  // inverted
            break;
          case 1:
            b[2] = b[0];  // zero area
            b[3] = b[1];
            break;
          case 2:
            b[gen.below(4)] = std::numeric_limits<T>::quiet_NaN();
            break;
          case 3:
            b[2] = std::numeric_limits<T>::infinity();
            break;
          case 4:
            b = {T(-100), T(-100), T(2000), T(2000)};  // covers everything
            break;
          default:
            break;
        }
      }
      break;
  }
  return boxes;
}

/// The scenes of the cost tests (issue 9): a normal scene and the inputs that used to make the
/// grid kernels quadratic, each of n boxes (xyxy, type T).
///   normal        the sparse scene: 1000×1000 canvas, sides 1–50
///   zeros         every box (0, 0, 0, 0): how exported detectors pad their outputs
///   nans          every coordinate NaN
///   far_outlier   the normal scene with box 0 at (1e9, 1e9, 1e9 + 128, 1e9 + 128)
///   thin_strips   the normal scene for even i; for odd i long thin disjoint strips (1000 × 0.005,
///                 stacked 0.01 apart on a band below the canvas)
///   one_nan       the normal scene with box 0 NaN
enum class cost_scene { normal, zeros, nans, far_outlier, thin_strips, one_nan };
inline constexpr std::array<const char*, 6> cost_scene_names = {
    "normal", "zeros", "nans", "far_outlier", "thin_strips", "one_nan"};

template <class T>
std::vector<std::array<T, 4>> cost_scene_boxes(cvk::rng& gen, cost_scene s, std::size_t n) {
  std::vector<std::array<T, 4>> boxes = random_scene<T>(gen, density::sparse, n);
  const T nan = std::numeric_limits<T>::quiet_NaN();
  switch (s) {
    case cost_scene::normal:
      break;
    case cost_scene::zeros:
      for (auto& b : boxes) b = {T(0), T(0), T(0), T(0)};
      break;
    case cost_scene::nans:
      for (auto& b : boxes) b = {nan, nan, nan, nan};
      break;
    case cost_scene::far_outlier:
      if (n > 0) boxes[0] = {T(1e9), T(1e9), T(1e9 + 128), T(1e9 + 128)};
      break;
    case cost_scene::thin_strips:
      for (std::size_t i = 1; i < n; i += 2) {
        const double y = 1000.0 + 0.01 * static_cast<double>(i / 2);
        boxes[i] = {T(0), static_cast<T>(y), T(1000), static_cast<T>(y + 0.005)};
      }
      break;
    case cost_scene::one_nan:
      if (n > 0) boxes[0] = {nan, nan, nan, nan};
      break;
  }
  return boxes;
}

}  // namespace cvk_test
