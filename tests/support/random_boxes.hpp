// cvk — computer-vision kernels, header-only C++20.
// Test support: random boxes from cvk::rng (the same boxes on every platform), in any format and
// any coordinate type.
// SPDX-License-Identifier: MIT
#pragma once

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

#include <cvk/box/format.hpp>
#include <cvk/core/rng.hpp>

#include "box_reference.hpp"

namespace cvk_test {

/// `n` valid xyxy boxes (x1 <= x2, y1 <= y2): top-left corner uniform in [lo, hi), width and
/// height uniform in [0, max_size). Integer T gets integer corners and sizes.
template <class T>
std::vector<std::array<T, 4>> random_xyxy_boxes(cvk::rng& gen, std::size_t n, double lo = -100.0,
                                                double hi = 500.0, double max_size = 200.0) {
  std::vector<std::array<T, 4>> boxes(n);
  for (auto& b : boxes) {
    if constexpr (std::is_integral_v<T>) {
      const auto span = static_cast<std::uint64_t>(hi - lo);
      const auto size = static_cast<std::uint64_t>(max_size);
      const auto x1 = static_cast<T>(lo) + static_cast<T>(gen.below(span));
      const auto y1 = static_cast<T>(lo) + static_cast<T>(gen.below(span));
      b = {x1, y1, static_cast<T>(x1 + static_cast<T>(gen.below(size))),
           static_cast<T>(y1 + static_cast<T>(gen.below(size)))};
    } else {
      const T x1 = static_cast<T>(gen.uniform(lo, hi));
      const T y1 = static_cast<T>(gen.uniform(lo, hi));
      b = {x1, y1, x1 + static_cast<T>(gen.uniform(0.0, max_size)),
           y1 + static_cast<T>(gen.uniform(0.0, max_size))};
    }
  }
  return boxes;
}

/// `n` valid boxes written in `format` (random xyxy boxes converted by the reference, rounded
/// to T).
template <class T>
std::vector<std::array<T, 4>> random_boxes(cvk::rng& gen, std::size_t n, cvk::box_format format,
                                           bool pixel_inclusive = false) {
  static_assert(std::is_floating_point_v<T>, "use random_xyxy_boxes for integer boxes");
  const auto corners = random_xyxy_boxes<T>(gen, n);
  const auto converted =
      reference::box_convert(corners, cvk::box_format::xyxy, format, pixel_inclusive);
  std::vector<std::array<T, 4>> boxes(n);
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t k = 0; k < 4; ++k) boxes[i][k] = static_cast<T>(converted[i][k]);
  }
  return boxes;
}

/// `n` integer-valued boxes stored as T, in `format`, with even widths and heights so that
/// every conversion (centres included) is exact in float and double.
template <class T>
std::vector<std::array<T, 4>> random_integer_valued_boxes(cvk::rng& gen, std::size_t n,
                                                          cvk::box_format format) {
  std::vector<std::array<T, 4>> corners(n);
  for (auto& b : corners) {
    const auto x1 = static_cast<T>(static_cast<double>(gen.below(1000)) - 300.0);
    const auto y1 = static_cast<T>(static_cast<double>(gen.below(1000)) - 300.0);
    b = {x1, y1, x1 + static_cast<T>(2 * gen.below(200)), y1 + static_cast<T>(2 * gen.below(200))};
  }
  const auto converted = reference::box_convert(corners, cvk::box_format::xyxy, format);
  std::vector<std::array<T, 4>> boxes(n);
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t k = 0; k < 4; ++k) boxes[i][k] = static_cast<T>(converted[i][k]);
  }
  return boxes;
}

}  // namespace cvk_test
