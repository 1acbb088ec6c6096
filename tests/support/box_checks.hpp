// cvk — computer-vision kernels, header-only C++20.
// Test support: element-wise checks of box-operator results (any tensor cvk accepts) against
// the reference implementation or against another result.
// SPDX-License-Identifier: MIT
#pragma once

#include <array>
#include <cmath>
#include <cstddef>
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include <cvk/core/as_view.hpp>

#include "box_reference.hpp"
#include "compare.hpp"

namespace cvk_test {

/// Checks an N×4 result against reference boxes, each coordinate within the rounding error of
/// computing it in T from `input` (NaN must match NaN).
template <class T, class Result>
void check_boxes_near(const Result& result, const std::vector<std::array<T, 4>>& input,
                      const std::vector<reference::box>& expected) {
  const auto v = cvk::as_view(result);
  REQUIRE(v.extent(0) == static_cast<cvk::index_t>(expected.size()));
  REQUIRE(v.extent(1) == 4);
  std::size_t mismatches = 0;
  std::string first;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const long double tolerance = coordinate_tolerance<T>(box_scale(input[i]));
    for (std::size_t k = 0; k < 4; ++k) {
      const auto got =
          static_cast<long double>(v(static_cast<cvk::index_t>(i), static_cast<cvk::index_t>(k)));
      const long double want = expected[i][k];
      const bool ok = std::isnan(want) ? std::isnan(got) : std::fabs(got - want) <= tolerance;
      if (!ok && mismatches++ == 0) {
        std::ostringstream text;
        text.precision(21);
        text << "box " << i << " column " << k << ": got " << got << ", want " << want
             << " (tolerance " << tolerance << ")";
        first = text.str();
      }
    }
  }
  INFO("first mismatch: " << first);
  CHECK(mismatches == 0);
}

/// Checks N values (areas) against reference values within the rounding error of computing
/// them in T from `input`.
template <class T, class Result>
void check_values_near(const Result& result, const std::vector<std::array<T, 4>>& input,
                       const std::vector<reference::real>& expected) {
  const auto v = cvk::as_view(result);
  REQUIRE(v.extent(0) == static_cast<cvk::index_t>(expected.size()));
  std::size_t mismatches = 0;
  std::string first;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const long double tolerance = area_tolerance<T>(box_scale(input[i]));
    const auto got = static_cast<long double>(v(static_cast<cvk::index_t>(i)));
    const long double want = expected[i];
    const bool ok = std::isnan(want) ? std::isnan(got) : std::fabs(got - want) <= tolerance;
    if (!ok && mismatches++ == 0) {
      std::ostringstream text;
      text.precision(21);
      text << "value " << i << ": got " << got << ", want " << want << " (tolerance " << tolerance
           << ")";
      first = text.str();
    }
  }
  INFO("first mismatch: " << first);
  CHECK(mismatches == 0);
}

/// Checks that two tensors of the same rank hold the same values (NaN equal to NaN, no
/// tolerance): used to show a layout or container does not change a result.
template <class A, class B>
void check_same_values(const A& a, const B& b) {
  const auto va = cvk::as_view(a);
  const auto vb = cvk::as_view(b);
  static_assert(decltype(va)::rank() == decltype(vb)::rank());
  REQUIRE(va.extents() == vb.extents());
  std::size_t mismatches = 0;
  if constexpr (decltype(va)::rank() == 1) {
    for (cvk::index_t i = 0; i < va.extent(0); ++i) {
      if (!same_value(va(i), vb(i))) ++mismatches;
    }
  } else {
    static_assert(decltype(va)::rank() == 2);
    for (cvk::index_t i = 0; i < va.extent(0); ++i) {
      for (cvk::index_t k = 0; k < va.extent(1); ++k) {
        if (!same_value(va(i, k), vb(i, k))) ++mismatches;
      }
    }
  }
  CHECK(mismatches == 0);
}

}  // namespace cvk_test
