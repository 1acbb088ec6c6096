// cvk — computer-vision kernels, header-only C++20.
// Test support for the adaptor tests: boxes held in the built-in std::vector<std::array<T, 4>>
// (the reference every adapted tensor is compared with) and copies of views for comparisons.
// SPDX-License-Identifier: MIT
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

#include <cvk/box/area.hpp>
#include <cvk/box/format.hpp>
#include <cvk/core/rng.hpp>
#include <cvk/core/std_adaptors.hpp>
#include <cvk/core/strided_view.hpp>

#include "support/random_boxes.hpp"

namespace cvk_test {

using cvk::index_t;

template <class T>
using box_rows = std::vector<std::array<T, 4>>;

/// `n` random xyxy boxes (tests/support/random_boxes.hpp) whose last two are degenerate, an
/// inverted box and a zero-width box, so that areas can be negative or zero.
template <class T>
box_rows<T> random_boxes_with_degenerate(std::size_t n, std::uint64_t seed) {
  cvk::rng gen(seed);
  box_rows<T> boxes = random_xyxy_boxes<T>(gen, n);
  if (n >= 2) {
    boxes[n - 2] = {T(10), T(10), T(4), T(2)};
    boxes[n - 1] = {T(3), T(1), T(3), T(9)};
  }
  return boxes;
}

/// The elements of a rank-1 view, in order.
template <class T>
std::vector<std::remove_const_t<T>> to_vector(cvk::strided_view<T, 1> v) {
  std::vector<std::remove_const_t<T>> values;
  for (index_t i = 0; i < v.extent(0); ++i) values.push_back(v(i));
  return values;
}

/// The rows of an N×4 view.
template <class T>
box_rows<std::remove_const_t<T>> to_rows(cvk::strided_view<T, 2> v) {
  box_rows<std::remove_const_t<T>> rows;
  for (index_t i = 0; i < v.extent(0); ++i) rows.push_back({v(i, 0), v(i, 1), v(i, 2), v(i, 3)});
  return rows;
}

/// Areas computed on the built-in std::vector adaptor: the reference.
template <class T>
std::vector<T> reference_areas(const box_rows<T>& boxes,
                               cvk::box_format format = cvk::box_format::xyxy) {
  const auto areas = cvk::box_area(boxes, format);
  return {areas.begin(), areas.end()};
}

/// Conversion computed on the built-in std::vector adaptor: the reference.
template <class T>
box_rows<T> reference_convert(const box_rows<T>& boxes, cvk::box_format from, cvk::box_format to) {
  box_rows<T> out(boxes.size());
  cvk::box_convert(boxes, from, to, out);
  return out;
}

inline constexpr std::array<cvk::box_format, 4> all_formats{
    cvk::box_format::xyxy, cvk::box_format::xywh, cvk::box_format::cxcywh, cvk::box_format::yxyx};

}  // namespace cvk_test
