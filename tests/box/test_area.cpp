// cvk — computer-vision kernels, header-only C++20.
// Tests of cvk/box/area.hpp: box_area against the reference on random boxes, in every format,
// layout and kind of tensor; conventions, degenerate boxes, errors.
// SPDX-License-Identifier: MIT
#include <cvk/box/area.hpp>

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <type_traits>
#include <vector>

#include <catch2/catch.hpp>

#include <cvk/box/format.hpp>
#include <cvk/core/box_traits.hpp>
#include <cvk/core/errors.hpp>
#include <cvk/core/rng.hpp>
#include <cvk/core/std_adaptors.hpp>
#include <cvk/core/tensor.hpp>

#include "support/box_checks.hpp"
#include "support/box_reference.hpp"
#include "support/error_inputs.hpp"
#include "support/layouts.hpp"
#include "support/random_boxes.hpp"

using cvk::box_format;
using cvk::index_t;

namespace {

constexpr std::array<box_format, 4> all_formats{box_format::xyxy, box_format::xywh,
                                                box_format::cxcywh, box_format::yxyx};

struct area_test_box {
  double x1, y1, x2, y2;
  int label;
};

}  // namespace

CVK_REGISTER_BOX(area_test_box, x1, y1, x2, y2);

TEMPLATE_TEST_CASE("box_area: known values", "[box][area]", float, double) {
  using T = TestType;
  const std::vector<std::array<T, 4>> boxes{{0, 0, 2, 3}, {1, 1, 5, 2}, {-3, -3, -1, 0}};
  const auto areas = cvk::box_area(boxes);
  static_assert(std::is_same_v<decltype(areas), const cvk::tensor<T, 1>>);
  REQUIRE(areas.extent(0) == 3);
  CHECK(areas(0) == T(6));
  CHECK(areas(1) == T(4));
  CHECK(areas(2) == T(6));
  // The same boxes in other formats.
  CHECK(cvk::box_area(std::array<T, 4>{1, 1, 4, 1}, box_format::xywh) == T(4));
  CHECK(cvk::box_area(std::array<T, 4>{3, T(1.5), 4, 1}, box_format::cxcywh) == T(4));
  CHECK(cvk::box_area(std::array<T, 4>{1, 1, 2, 5}, box_format::yxyx) == T(4));
}

TEMPLATE_TEST_CASE("box_area: pixel-inclusive convention", "[box][area]", float, double) {
  using T = TestType;
  const cvk::box_convention inclusive{.pixel_inclusive = true};
  const std::array<T, 4> corners{0, 0, 9, 4};  // pixels 0..9 by 0..4
  CHECK(cvk::box_area(corners, box_format::xyxy, inclusive) == T(50));
  CHECK(cvk::box_area(corners) == T(36));
  // One pixel.
  CHECK(cvk::box_area(std::array<T, 4>{3, 3, 3, 3}, box_format::xyxy, inclusive) == T(1));
  // In the other formats the sizes are already pixel counts.
  CHECK(cvk::box_area(std::array<T, 4>{0, 0, 10, 5}, box_format::xywh, inclusive) == T(50));
  CHECK(cvk::box_area(std::array<T, 4>{5, T(2.5), 10, 5}, box_format::cxcywh, inclusive) == T(50));
  CHECK(cvk::box_area(std::array<T, 4>{0, 0, 4, 9}, box_format::yxyx, inclusive) == T(50));
  const std::vector<std::array<T, 4>> boxes{corners, {0, 0, -1, -1}};
  const auto areas = cvk::box_area(boxes, box_format::xyxy, inclusive);
  CHECK(areas(0) == T(50));
  CHECK(areas(1) == T(0));  // x2 = x1 - 1: an empty pixel range
}

TEMPLATE_TEST_CASE("box_area: matches the reference in every format", "[box][area]", float,
                   double) {
  using T = TestType;
  cvk::rng gen(2019, 2);
  for (const bool pixel_inclusive : {false, true}) {
    for (const box_format format : all_formats) {
      CAPTURE(pixel_inclusive, cvk::to_string(format));
      const cvk::box_convention convention{pixel_inclusive};
      const auto boxes = cvk_test::random_boxes<T>(gen, 200, format, pixel_inclusive);
      const auto expected = cvk_test::reference::box_area(boxes, format, pixel_inclusive);
      const auto areas = cvk::box_area(boxes, format, convention);
      cvk_test::check_values_near(areas, boxes, expected);
      // Out-parameter and single-box forms agree exactly.
      std::vector<T> out(boxes.size());
      cvk::box_area(boxes, out, format, convention);
      cvk_test::check_same_values(out, areas);
      std::size_t single_mismatches = 0;
      for (std::size_t i = 0; i < boxes.size(); ++i) {
        if (cvk::box_area(boxes[i], format, convention) != out[i]) ++single_mismatches;
      }
      CHECK(single_mismatches == 0);
      // The area does not depend on the format the box is written in.
      const auto as_xyxy = cvk::box_convert(boxes, format, box_format::xyxy, convention);
      cvk_test::check_values_near(cvk::box_area(as_xyxy, box_format::xyxy, convention), boxes,
                                  expected);
    }
  }
}

TEMPLATE_TEST_CASE("box_area: integer-valued boxes are exact", "[box][area]", float, double) {
  using T = TestType;
  cvk::rng gen(8);
  for (const box_format format : all_formats) {
    CAPTURE(cvk::to_string(format));
    const auto boxes = cvk_test::random_integer_valued_boxes<T>(gen, 100, format);
    const auto expected = cvk_test::reference::box_area(boxes, format);
    const auto areas = cvk::box_area(boxes, format);
    std::size_t mismatches = 0;
    for (std::size_t i = 0; i < boxes.size(); ++i) {
      if (static_cast<cvk_test::reference::real>(areas(static_cast<index_t>(i))) != expected[i]) {
        ++mismatches;
      }
    }
    CHECK(mismatches == 0);
  }
}

TEMPLATE_TEST_CASE("box_area: every input layout gives the same result", "[box][area]", float,
                   double) {
  using T = TestType;
  cvk::rng gen(9);
  const auto boxes = cvk_test::random_boxes<T>(gen, 41, box_format::xywh);
  const auto expected = cvk::box_area(boxes, box_format::xywh);
  cvk_test::check_values_near(expected, boxes,
                              cvk_test::reference::box_area(boxes, box_format::xywh));
  for (const auto l : cvk_test::all_layouts) {
    CAPTURE(cvk_test::to_string(l));
    const auto stored = cvk_test::with_layout(boxes, l, std::numeric_limits<T>::quiet_NaN());
    cvk_test::check_same_values(cvk::box_area(stored.view, box_format::xywh), expected);
    const cvk::strided_view<const T, 2> read_only = stored.view;
    cvk_test::check_same_values(cvk::box_area(read_only, box_format::xywh), expected);
  }
  SECTION("zero row stride repeats one box") {
    const auto areas = cvk::box_area(cvk::view(boxes[5].data(), {6, 4}, {0, 1}), box_format::xywh);
    REQUIRE(areas.extent(0) == 6);
    for (index_t i = 0; i < 6; ++i) CHECK(areas(i) == expected(5));
  }
}

TEMPLATE_TEST_CASE("box_area: outputs", "[box][area]", float, double) {
  using T = TestType;
  cvk::rng gen(10);
  const auto boxes = cvk_test::random_boxes<T>(gen, 29, box_format::xyxy);
  const auto expected = cvk::box_area(boxes);
  SECTION("std::vector<T>") {
    std::vector<T> out(boxes.size());
    cvk::box_area(boxes, out);
    cvk_test::check_same_values(out, expected);
  }
  SECTION("cvk::tensor") {
    cvk::tensor<T, 1> out(static_cast<index_t>(boxes.size()));
    cvk::box_area(boxes, out);
    CHECK(out == expected);
  }
  SECTION("a strided view into a bigger buffer") {
    const T filler = T(-777);
    std::vector<T> buffer(boxes.size() * 3 + 1, filler);
    cvk::box_area(boxes, cvk::view(buffer.data() + 1, {static_cast<index_t>(boxes.size())}, {3}));
    std::size_t mismatches = 0;
    for (std::size_t i = 0; i < boxes.size(); ++i) {
      if (buffer[1 + 3 * i] != expected(static_cast<index_t>(i))) ++mismatches;
    }
    CHECK(mismatches == 0);
    std::size_t untouched = 0;
    for (const T x : buffer) {
      if (x == filler) ++untouched;
    }
    CHECK(untouched == buffer.size() - boxes.size());
  }
  SECTION("a reversed view") {
    std::vector<T> buffer(boxes.size());
    cvk::box_area(boxes, cvk::view(buffer.data() + buffer.size() - 1,
                                   {static_cast<index_t>(boxes.size())}, {-1}));
    CHECK(buffer.front() == expected(static_cast<index_t>(boxes.size()) - 1));
    CHECK(buffer.back() == expected(0));
  }
  SECTION("a std::span and a C array") {
    std::vector<T> storage(boxes.size());
    cvk::box_area(boxes, std::span<T>(storage));
    cvk_test::check_same_values(storage, expected);
    T c_array[3] = {};
    const std::vector<std::array<T, 4>> three(boxes.begin(), boxes.begin() + 3);
    cvk::box_area(three, c_array);
    CHECK(c_array[0] == expected(0));
    CHECK(c_array[2] == expected(2));
  }
  SECTION("a double output for float input") {
    std::vector<double> out(boxes.size());
    cvk::box_area(boxes, out);
    CHECK(out[4] == static_cast<double>(expected(4)));
  }
}

TEMPLATE_TEST_CASE("box_area: containers, C arrays, registered structs, tensors", "[box][area]",
                   float, double) {
  using T = TestType;
  const T c_array[3][4] = {{0, 0, 2, 2}, {1, 2, 3, 6}, {-4, -4, 4, 0}};
  const std::vector<std::array<T, 4>> rows{{0, 0, 2, 2}, {1, 2, 3, 6}, {-4, -4, 4, 0}};
  const auto expected = cvk::box_area(rows);
  CHECK(expected(0) == T(4));
  CHECK(expected(1) == T(8));
  CHECK(expected(2) == T(32));
  cvk_test::check_same_values(cvk::box_area(c_array), expected);
  cvk_test::check_same_values(cvk::box_area(std::span<const std::array<T, 4>>(rows)), expected);
  cvk::tensor<T, 2> t(3, 4);
  for (index_t i = 0; i < 3; ++i) {
    for (index_t k = 0; k < 4; ++k) {
      t(i, k) = rows[static_cast<std::size_t>(i)][static_cast<std::size_t>(k)];
    }
  }
  CHECK(cvk::box_area(t) == expected);

  const std::vector<area_test_box> structs{{0, 0, 2, 2, 1}, {1, 2, 3, 6, 2}, {-4, -4, 4, 0, 3}};
  const auto from_structs = cvk::box_area(structs);
  static_assert(std::is_same_v<decltype(from_structs), const cvk::tensor<double, 1>>);
  for (index_t i = 0; i < 3; ++i) CHECK(from_structs(i) == static_cast<double>(expected(i)));
  CHECK(cvk::box_area(structs[1]) == 8.0);
}

TEST_CASE("box_area: integer input gives double areas", "[box][area]") {
  const std::vector<std::array<int, 4>> boxes{{0, 0, 3, 5}, {-2, 1, 7, 4}, {5, 5, 1, 1}};
  const auto areas = cvk::box_area(boxes);
  static_assert(std::is_same_v<decltype(areas), const cvk::tensor<double, 1>>);
  CHECK(areas(0) == 15.0);
  CHECK(areas(1) == 27.0);
  CHECK(areas(2) == 16.0);  // inverted in both directions
  const std::array<std::int16_t, 4> one{1, 1, 4, 3};
  const auto area = cvk::box_area(one, box_format::xywh);
  static_assert(std::is_same_v<decltype(area), const double>);
  CHECK(area == 12.0);
  // Products of large integers do not overflow (computed in double).
  const std::vector<std::array<std::int32_t, 4>> big{{0, 0, 100000, 100000}};
  CHECK(cvk::box_area(big)(0) == 1e10);
  std::vector<double> out(3);
  cvk::box_area(boxes, out);
  CHECK(out[1] == 27.0);
}

TEMPLATE_TEST_CASE("box_area: degenerate boxes", "[box][area]", float, double) {
  using T = TestType;
  const T nan = std::numeric_limits<T>::quiet_NaN();
  const T inf = std::numeric_limits<T>::infinity();
  SECTION("inverted boxes give negative areas, as torchvision (no clamping)") {
    CHECK(cvk::box_area(std::array<T, 4>{5, 0, 2, 4}) == T(-12));
    CHECK(cvk::box_area(std::array<T, 4>{0, 5, 4, 2}) == T(-12));
    CHECK(cvk::box_area(std::array<T, 4>{5, 5, 2, 2}) == T(9));  // inverted twice
    CHECK(cvk::box_area(std::array<T, 4>{0, 0, -3, 2}, box_format::xywh) == T(-6));
  }
  SECTION("zero-area boxes") {
    CHECK(cvk::box_area(std::array<T, 4>{1, 1, 1, 5}) == T(0));
    CHECK(cvk::box_area(std::array<T, 4>{1, 1, 5, 1}) == T(0));
    CHECK(cvk::box_area(std::array<T, 4>{0, 0, 0, 0}) == T(0));
  }
  SECTION("NaN propagates") {
    for (std::size_t k = 0; k < 4; ++k) {
      std::array<T, 4> b{0, 0, 1, 1};
      b[k] = nan;
      CHECK(std::isnan(cvk::box_area(b)));
    }
    const std::vector<std::array<T, 4>> boxes{{0, 0, 1, 1}, {0, nan, 1, 1}, {0, 0, 2, 2}};
    const auto areas = cvk::box_area(boxes);
    CHECK(areas(0) == T(1));
    CHECK(std::isnan(areas(1)));
    CHECK(areas(2) == T(4));  // a NaN does not leak into its neighbours
  }
  SECTION("infinities") {
    CHECK(cvk::box_area(std::array<T, 4>{0, 0, inf, 1}) == inf);
    CHECK(std::isnan(cvk::box_area(std::array<T, 4>{inf, 0, inf, 1})));
    CHECK(std::isnan(cvk::box_area(std::array<T, 4>{0, 0, inf, 0})));  // inf * 0
  }
  SECTION("empty input gives empty output") {
    const std::vector<std::array<T, 4>> none;
    for (const box_format format : all_formats) {
      const auto areas = cvk::box_area(none, format);
      CHECK(areas.extent(0) == 0);
      CHECK(areas.empty());
    }
    std::vector<T> out;
    cvk::box_area(none, out);
    CHECK(out.empty());
    const T* nothing = nullptr;
    CHECK(cvk::box_area(cvk::view(nothing, 0, 4)).empty());
  }
}

TEST_CASE("box_area: errors", "[box][area]") {
  std::vector<double> buffer(40, 1.0);
  SECTION("boxes must have 4 columns") {
    CHECK_THROWS_AS(cvk::box_area(cvk::view(buffer.data(), 7, 3)), cvk::shape_error);
    CHECK_THROWS_WITH(cvk::box_area(cvk::view(buffer.data(), 7, 3)),
                      "box_area: boxes must be N×4, got 7×3");
    std::vector<double> out(7);
    CHECK_THROWS_WITH(cvk::box_area(cvk::view(buffer.data(), 7, 3), out),
                      "box_area: boxes must be N×4, got 7×3");
    const std::vector<std::array<double, 2>> pairs(3);
    CHECK_THROWS_WITH(cvk::box_area(pairs), "box_area: boxes must be N×4, got 3×2");
    // Catchable as the whole hierarchy.
    CHECK_THROWS_AS(cvk::box_area(pairs), cvk::error);
    CHECK_THROWS_AS(cvk::box_area(pairs), std::invalid_argument);
  }
  SECTION("out must hold one value per box") {
    const auto boxes = cvk::view(buffer.data(), 5, 4);
    std::vector<double> short_out(4, -1.0);
    CHECK_THROWS_AS(cvk::box_area(boxes, short_out), cvk::shape_error);
    CHECK_THROWS_WITH(cvk::box_area(boxes, short_out), "box_area: out must be 5, got 4");
    CHECK(short_out[0] == -1.0);  // nothing was written
    std::vector<double> long_out(6);
    CHECK_THROWS_WITH(cvk::box_area(boxes, long_out), "box_area: out must be 5, got 6");
  }
  SECTION("negative extents from a raw-pointer view") {
    CHECK_THROWS_AS(cvk::box_area(cvk::view(buffer.data(), {-1, 4})), cvk::shape_error);
    CHECK_THROWS_WITH(cvk::box_area(cvk::view(buffer.data(), {-1, 4})),
                      "box_area: boxes has a negative extent, got -1×4");
    const std::vector<std::array<double, 4>> none;
    CHECK_THROWS_WITH(cvk::box_area(none, cvk::view(buffer.data(), {-2})),
                      "box_area: out has a negative extent, got -2");
  }
  SECTION("rank mismatch through a dynamic_view") {
    cvk::dynamic_view<double>::extents_type extents{};
    cvk::dynamic_view<double>::extents_type strides{};
    extents[0] = 8;
    strides[0] = 1;
    const cvk::dynamic_view<double> rank1(buffer.data(), 1, extents, strides);
    CHECK_THROWS_AS(cvk::box_area(rank1), cvk::shape_error);
    CHECK_THROWS_WITH(cvk::box_area(rank1), "box_area: boxes must have rank 2, got rank 1 (8)");
    // A dynamic output of the wrong rank.
    extents[0] = 2;
    extents[1] = 4;
    strides[0] = 4;
    const cvk::dynamic_view<double> rank2(buffer.data(), 2, extents, strides);
    std::vector<std::array<double, 4>> boxes(2);
    CHECK_THROWS_WITH(cvk::box_area(boxes, rank2),
                      "box_area: out must have rank 1, got rank 2 (2×4)");
    // The right ranks go through.
    CHECK(cvk::box_area(rank2).extent(0) == 2);
    cvk::box_area(rank2, cvk::view(buffer.data() + 20, {2}));
    CHECK(buffer[20] == 0.0);  // the boxes (1, 1, 1, 1) have zero area
    CHECK(buffer[21] == 0.0);
    CHECK(buffer[22] == 1.0);
  }
  SECTION("a single box must have 4 values") {
    const std::array<double, 5> five{};
    CHECK_THROWS_WITH(cvk::box_area(five), "box_area: box must be 4, got 5");
  }
}

TEST_CASE("errors table: box_area, every form (docs/errors.md)", "[box][area][errors]") {
  const std::vector<double> buffer(8, 1.0);
  const auto rank3 = cvk_test::rank3_view(buffer);
  CHECK_THROWS_MATCHES(cvk::box_area(rank3), cvk::shape_error,
                       Catch::Message("box_area: boxes must have rank 2, got rank 3 (2×2×2)"));
  // NaN and infinite coordinates give NaN or ±inf areas, empty input an empty result
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const std::vector<std::array<double, 4>> odd = {{0, 0, nan, 1}, {0, 0, 1e308, 1e308}};
  const auto areas = cvk::box_area(odd);
  CHECK(std::isnan(areas(0)));
  CHECK(std::isinf(areas(1)));
  CHECK(cvk::box_area(std::vector<std::array<double, 4>>{}).size() == 0);
  // 2^40 broadcast boxes: the result cannot be allocated
  const std::array<double, 4> row{0, 0, 1, 1};
  CHECK_THROWS_AS(cvk::box_area(cvk_test::broadcast_rows(row.data(), cvk_test::huge_rows, 4)),
                  cvk::out_of_range);
}
