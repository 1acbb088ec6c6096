// cvk — computer-vision kernels, header-only C++20.
// Test support: a plain reference implementation of box formats and areas, written from the
// definitions (one box at a time, in long double, no shared code with cvk), for the box tests
// to compare cvk's kernels against.
// SPDX-License-Identifier: MIT
#pragma once

#include <array>
#include <cstddef>
#include <vector>

#include <cvk/box/format.hpp>

namespace cvk_test::reference {

using real = long double;
using box = std::array<real, 4>;

/// The corners (x1, y1, x2, y2) of a box written in `format`. Continuous boxes span
/// [x1, x2] with width x2 - x1; pixel-inclusive boxes span the pixels x1..x2 with
/// width x2 - x1 + 1.
inline box to_corners(const box& b, cvk::box_format format, bool pixel_inclusive) {
  const real one = pixel_inclusive ? 1 : 0;
  switch (format) {
    case cvk::box_format::xyxy:
      return b;
    case cvk::box_format::yxyx: {
      const real y1 = b[0], x1 = b[1], y2 = b[2], x2 = b[3];
      return {x1, y1, x2, y2};
    }
    case cvk::box_format::xywh: {
      const real x1 = b[0], y1 = b[1], w = b[2], h = b[3];
      return {x1, y1, x1 + w - one, y1 + h - one};
    }
    case cvk::box_format::cxcywh: {
      const real cx = b[0], cy = b[1], w = b[2], h = b[3];
      const real x1 = cx - w / 2;
      const real y1 = cy - h / 2;
      return {x1, y1, x1 + w - one, y1 + h - one};
    }
  }
  return b;
}

/// The box with corners `c` (x1, y1, x2, y2) written in `format`.
inline box from_corners(const box& c, cvk::box_format format, bool pixel_inclusive) {
  const real one = pixel_inclusive ? 1 : 0;
  const real x1 = c[0], y1 = c[1], x2 = c[2], y2 = c[3];
  const real w = x2 - x1 + one;
  const real h = y2 - y1 + one;
  switch (format) {
    case cvk::box_format::xyxy:
      return c;
    case cvk::box_format::yxyx:
      return {y1, x1, y2, x2};
    case cvk::box_format::xywh:
      return {x1, y1, w, h};
    case cvk::box_format::cxcywh:
      return {x1 + w / 2, y1 + h / 2, w, h};
  }
  return c;
}

/// Width times height, not clamped (inverted boxes give negative or zero areas).
inline real corners_area(const box& c, bool pixel_inclusive) {
  const real one = pixel_inclusive ? 1 : 0;
  return (c[2] - c[0] + one) * (c[3] - c[1] + one);
}

template <class T>
box widen(const std::array<T, 4>& b) {
  return {static_cast<real>(b[0]), static_cast<real>(b[1]), static_cast<real>(b[2]),
          static_cast<real>(b[3])};
}

/// Every box converted from `from` to `to`.
template <class T>
std::vector<box> box_convert(const std::vector<std::array<T, 4>>& boxes, cvk::box_format from,
                             cvk::box_format to, bool pixel_inclusive = false) {
  std::vector<box> result;
  for (const auto& b : boxes) {
    result.push_back(
        from_corners(to_corners(widen(b), from, pixel_inclusive), to, pixel_inclusive));
  }
  return result;
}

/// The area of every box written in `format`.
template <class T>
std::vector<real> box_area(const std::vector<std::array<T, 4>>& boxes,
                           cvk::box_format format = cvk::box_format::xyxy,
                           bool pixel_inclusive = false) {
  std::vector<real> result;
  for (const auto& b : boxes) {
    result.push_back(corners_area(to_corners(widen(b), format, pixel_inclusive), pixel_inclusive));
  }
  return result;
}

}  // namespace cvk_test::reference
