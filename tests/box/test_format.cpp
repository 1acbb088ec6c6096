// cvk — computer-vision kernels, header-only C++20.
// Tests of cvk/box/format.hpp: box_convert against the reference on random boxes, for every
// pair of formats, every layout and every kind of tensor; conventions, degenerate boxes, errors.
// SPDX-License-Identifier: MIT
#include <cvk/box/area.hpp>
#include <cvk/box/format.hpp>

#include <array>
#include <cmath>
#include <cstddef>
#include <limits>
#include <span>
#include <type_traits>
#include <vector>

#include <catch2/catch.hpp>

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

struct format_test_box {
  float score;
  float x1, y1, x2, y2;
};

}  // namespace

CVK_REGISTER_BOX(format_test_box, x1, y1, x2, y2);

TEST_CASE("box_format: names", "[box][format]") {
  CHECK(std::string(cvk::to_string(box_format::xyxy)) == "xyxy");
  CHECK(std::string(cvk::to_string(box_format::xywh)) == "xywh");
  CHECK(std::string(cvk::to_string(box_format::cxcywh)) == "cxcywh");
  CHECK(std::string(cvk::to_string(box_format::yxyx)) == "yxyx");
  static_assert(cvk::to_string(box_format::yxyx)[0] == 'y');
}

TEMPLATE_TEST_CASE("box_convert: known values", "[box][format]", float, double) {
  using T = TestType;
  const std::array<T, 4> xyxy{1, 2, 5, 10};
  const auto to = [&](box_format f) { return cvk::box_convert(xyxy, box_format::xyxy, f); };
  CHECK(to(box_format::xyxy) == std::array<T, 4>{1, 2, 5, 10});
  CHECK(to(box_format::xywh) == std::array<T, 4>{1, 2, 4, 8});
  CHECK(to(box_format::cxcywh) == std::array<T, 4>{3, 6, 4, 8});
  CHECK(to(box_format::yxyx) == std::array<T, 4>{2, 1, 10, 5});
  CHECK(cvk::box_convert(std::array<T, 4>{3, 6, 4, 8}, box_format::cxcywh, box_format::xywh) ==
        std::array<T, 4>{1, 2, 4, 8});
  CHECK(cvk::box_convert(std::array<T, 4>{2, 1, 10, 5}, box_format::yxyx, box_format::cxcywh) ==
        std::array<T, 4>{3, 6, 4, 8});
}

TEMPLATE_TEST_CASE("box_convert: pixel-inclusive convention", "[box][format]", float, double) {
  using T = TestType;
  const cvk::box_convention inclusive{.pixel_inclusive = true};
  // Pixels 0..9 in both directions: 10 × 10 pixels centred at 5 (x1 + w/2).
  const std::array<T, 4> corners{0, 0, 9, 9};
  CHECK(cvk::box_convert(corners, box_format::xyxy, box_format::xywh, inclusive) ==
        std::array<T, 4>{0, 0, 10, 10});
  CHECK(cvk::box_convert(corners, box_format::xyxy, box_format::cxcywh, inclusive) ==
        std::array<T, 4>{5, 5, 10, 10});
  CHECK(cvk::box_convert(std::array<T, 4>{5, 5, 10, 10}, box_format::cxcywh, box_format::xyxy,
                         inclusive) == corners);
  CHECK(cvk::box_convert(std::array<T, 4>{0, 0, 10, 10}, box_format::xywh, box_format::xyxy,
                         inclusive) == corners);
  // A single pixel has width 1.
  CHECK(cvk::box_convert(std::array<T, 4>{3, 4, 3, 4}, box_format::xyxy, box_format::xywh,
                         inclusive) == std::array<T, 4>{3, 4, 1, 1});
  // The continuous convention gives width 9 for the same corners.
  CHECK(cvk::box_convert(corners, box_format::xyxy, box_format::xywh) ==
        std::array<T, 4>{0, 0, 9, 9});
}

TEMPLATE_TEST_CASE("box_convert: matches the reference for every pair of formats", "[box][format]",
                   float, double) {
  using T = TestType;
  cvk::rng gen(2019, 1);
  for (const bool pixel_inclusive : {false, true}) {
    for (const box_format from : all_formats) {
      for (const box_format to : all_formats) {
        CAPTURE(pixel_inclusive, cvk::to_string(from), cvk::to_string(to));
        const auto boxes = cvk_test::random_boxes<T>(gen, 100, from, pixel_inclusive);
        const auto expected = cvk_test::reference::box_convert(boxes, from, to, pixel_inclusive);
        const cvk::box_convention convention{pixel_inclusive};
        const auto result = cvk::box_convert(boxes, from, to, convention);
        static_assert(std::is_same_v<decltype(result), const cvk::tensor<T, 2>>);
        cvk_test::check_boxes_near(result, boxes, expected);
        // The out-parameter form gives the same values.
        std::vector<std::array<T, 4>> out(boxes.size());
        cvk::box_convert(boxes, from, to, out, convention);
        cvk_test::check_same_values(out, result);
        // And so does the single-box form.
        std::size_t single_mismatches = 0;
        for (std::size_t i = 0; i < boxes.size(); ++i) {
          const auto one = cvk::box_convert(boxes[i], from, to, convention);
          for (std::size_t k = 0; k < 4; ++k) {
            if (one[k] != out[i][k]) ++single_mismatches;
          }
        }
        CHECK(single_mismatches == 0);
      }
    }
  }
}

TEMPLATE_TEST_CASE("box_convert: same format is the identity", "[box][format]", float, double) {
  // torchvision returns a copy; going through xyxy would round (x + w - x != w).
  using T = TestType;
  cvk::rng gen(3);
  for (const bool pixel_inclusive : {false, true}) {
    for (const box_format format : all_formats) {
      CAPTURE(pixel_inclusive, cvk::to_string(format));
      const auto boxes = cvk_test::random_boxes<T>(gen, 200, format);
      const auto same = cvk::box_convert(boxes, format, format, {pixel_inclusive});
      cvk_test::check_same_values(same, boxes);
      CHECK(cvk::box_convert(boxes[7], format, format, {pixel_inclusive}) == boxes[7]);
    }
  }
}

TEMPLATE_TEST_CASE("box_convert: round trips", "[box][format]", float, double) {
  using T = TestType;
  cvk::rng gen(4);
  for (const bool pixel_inclusive : {false, true}) {
    for (const box_format a : all_formats) {
      for (const box_format b : all_formats) {
        CAPTURE(pixel_inclusive, cvk::to_string(a), cvk::to_string(b));
        const cvk::box_convention convention{pixel_inclusive};
        // Integer-valued boxes with even sizes: every step is exact, so the round trip is too.
        const auto exact = cvk_test::random_integer_valued_boxes<T>(gen, 100, a);
        const auto there = cvk::box_convert(exact, a, b, convention);
        const auto back = cvk::box_convert(there, b, a, convention);
        cvk_test::check_same_values(back, exact);
        // Arbitrary boxes come back within rounding.
        const auto boxes = cvk_test::random_boxes<T>(gen, 100, a, pixel_inclusive);
        const auto round_trip =
            cvk::box_convert(cvk::box_convert(boxes, a, b, convention), b, a, convention);
        cvk_test::check_boxes_near(round_trip, boxes,
                                   cvk_test::reference::box_convert(boxes, a, a, pixel_inclusive));
      }
    }
  }
}

TEMPLATE_TEST_CASE("box_convert: every input layout gives the same result", "[box][format]", float,
                   double) {
  using T = TestType;
  cvk::rng gen(5);
  const auto boxes = cvk_test::random_boxes<T>(gen, 37, box_format::cxcywh);
  const auto expected = cvk::box_convert(boxes, box_format::cxcywh, box_format::xyxy);
  cvk_test::check_boxes_near(
      expected, boxes,
      cvk_test::reference::box_convert(boxes, box_format::cxcywh, box_format::xyxy));
  for (const auto l : cvk_test::all_layouts) {
    CAPTURE(cvk_test::to_string(l));
    const auto stored = cvk_test::with_layout(boxes, l, std::numeric_limits<T>::quiet_NaN());
    const auto result = cvk::box_convert(stored.view, box_format::cxcywh, box_format::xyxy);
    cvk_test::check_same_values(result, expected);
    // Through a const view too.
    const cvk::strided_view<const T, 2> read_only = stored.view;
    cvk_test::check_same_values(cvk::box_convert(read_only, box_format::cxcywh, box_format::xyxy),
                                expected);
  }
  SECTION("zero row stride repeats one box") {
    const auto repeated = cvk::view(boxes[3].data(), {5, 4}, {0, 1});
    const auto result = cvk::box_convert(repeated, box_format::cxcywh, box_format::xyxy);
    for (index_t i = 0; i < 5; ++i) {
      for (index_t k = 0; k < 4; ++k) CHECK(result(i, k) == expected(3, k));
    }
  }
}

TEMPLATE_TEST_CASE("box_convert: every output layout receives the result", "[box][format]", float,
                   double) {
  using T = TestType;
  cvk::rng gen(6);
  const auto boxes = cvk_test::random_boxes<T>(gen, 23, box_format::xyxy);
  const auto expected = cvk::box_convert(boxes, box_format::xyxy, box_format::xywh);
  const T filler = T(-12345);
  for (const auto l : cvk_test::all_layouts) {
    CAPTURE(cvk_test::to_string(l));
    auto out = cvk_test::make_storage<T, 4>(boxes.size(), l, filler);
    cvk::box_convert(boxes, box_format::xyxy, box_format::xywh, out.view);
    cvk_test::check_same_values(out.view, expected);
    // Nothing outside the view was written.
    CHECK(out.count_filler(filler) == out.buffer.size() - 4 * boxes.size());
  }
  SECTION("std::vector<std::array<T, 4>>") {
    std::vector<std::array<T, 4>> out(boxes.size());
    cvk::box_convert(boxes, box_format::xyxy, box_format::xywh, out);
    cvk_test::check_same_values(out, expected);
  }
  SECTION("cvk::tensor") {
    cvk::tensor<T, 2> out(static_cast<index_t>(boxes.size()), 4);
    cvk::box_convert(boxes, box_format::xyxy, box_format::xywh, out);
    CHECK(out == expected);
  }
  SECTION("a double output for float input (widening is allowed)") {
    std::vector<std::array<double, 4>> out(boxes.size());
    cvk::box_convert(boxes, box_format::xyxy, box_format::xywh, out);
    std::size_t mismatches = 0;
    for (std::size_t i = 0; i < boxes.size(); ++i) {
      for (std::size_t k = 0; k < 4; ++k) {
        const T want = expected(static_cast<index_t>(i), static_cast<index_t>(k));
        if (out[i][k] != static_cast<double>(want)) ++mismatches;
      }
    }
    CHECK(mismatches == 0);
  }
  SECTION("in place") {
    auto in_place = boxes;
    cvk::box_convert(in_place, box_format::xyxy, box_format::xywh, in_place);
    cvk_test::check_same_values(in_place, expected);
  }
}

TEMPLATE_TEST_CASE("box_convert: containers and registered structs", "[box][format]", float,
                   double) {
  using T = TestType;
  const T c_array[3][4] = {{0, 0, 2, 2}, {1, 2, 3, 6}, {-4, -4, 4, 0}};
  const std::vector<std::array<T, 4>> rows{{0, 0, 2, 2}, {1, 2, 3, 6}, {-4, -4, 4, 0}};
  const auto expected = cvk::box_convert(rows, box_format::xyxy, box_format::cxcywh);
  CHECK(expected(1, 0) == T(2));
  CHECK(expected(1, 1) == T(4));
  CHECK(expected(2, 3) == T(4));
  cvk_test::check_same_values(cvk::box_convert(c_array, box_format::xyxy, box_format::cxcywh),
                              expected);
  cvk_test::check_same_values(cvk::box_convert(std::span<const std::array<T, 4>>(rows),
                                               box_format::xyxy, box_format::cxcywh),
                              expected);
  cvk::tensor<T, 2> t(3, 4);
  for (index_t i = 0; i < 3; ++i) {
    for (index_t k = 0; k < 4; ++k) {
      t(i, k) = rows[static_cast<std::size_t>(i)][static_cast<std::size_t>(k)];
    }
  }
  CHECK(cvk::box_convert(t, box_format::xyxy, box_format::cxcywh) == expected);

  std::vector<format_test_box> structs{
      {0.9f, 0, 0, 2, 2}, {0.8f, 1, 2, 3, 6}, {0.7f, -4, -4, 4, 0}};
  const auto from_structs = cvk::box_convert(structs, box_format::xyxy, box_format::cxcywh);
  static_assert(std::is_same_v<decltype(from_structs), const cvk::tensor<float, 2>>);
  for (index_t i = 0; i < 3; ++i) {
    for (index_t k = 0; k < 4; ++k) {
      CHECK(static_cast<T>(from_structs(i, k)) == expected(i, k));
    }
  }
}

TEST_CASE("box_convert: integer input is converted in double", "[box][format]") {
  const std::vector<std::array<int, 4>> boxes{{0, 0, 3, 5}, {-2, 1, 7, 4}};
  const auto result = cvk::box_convert(boxes, box_format::xyxy, box_format::cxcywh);
  static_assert(std::is_same_v<decltype(result), const cvk::tensor<double, 2>>);
  CHECK(result(0, 0) == 1.5);
  CHECK(result(0, 1) == 2.5);
  CHECK(result(0, 2) == 3.0);
  CHECK(result(0, 3) == 5.0);
  CHECK(result(1, 0) == 2.5);
  CHECK(result(1, 1) == 2.5);

  const std::array<int, 4> one{1, 1, 4, 4};
  const auto converted = cvk::box_convert(one, box_format::xyxy, box_format::cxcywh);
  static_assert(std::is_same_v<decltype(converted), const std::array<double, 4>>);
  CHECK(converted == std::array<double, 4>{2.5, 2.5, 3.0, 3.0});

  std::vector<std::array<double, 4>> out(2);
  cvk::box_convert(boxes, box_format::xyxy, box_format::xywh, out);
  CHECK(out[1] == std::array<double, 4>{-2.0, 1.0, 9.0, 3.0});

  // Large integers stay exact in double (they would not in float).
  const std::vector<std::array<std::int64_t, 4>> big{{0, 0, 16777217, 1}};
  CHECK(cvk::box_convert(big, box_format::xyxy, box_format::xywh)(0, 2) == 16777217.0);
}

TEMPLATE_TEST_CASE("box_convert: single-box overloads", "[box][format]", float, double) {
  using T = TestType;
  const std::array<T, 4> arr{1, 2, 5, 10};
  const std::array<T, 4> want{3, 6, 4, 8};
  CHECK(cvk::box_convert(arr, box_format::xyxy, box_format::cxcywh) == want);
  const T c_array[4] = {1, 2, 5, 10};
  CHECK(cvk::box_convert(c_array, box_format::xyxy, box_format::cxcywh) == want);
  CHECK(cvk::box_convert(std::span<const T, 4>(arr), box_format::xyxy, box_format::cxcywh) == want);
  // A strided 4-vector: every other element of a buffer.
  const T spaced[8] = {1, -1, 2, -1, 5, -1, 10, -1};
  CHECK(cvk::box_convert(cvk::view(spaced, {4}, {2}), box_format::xyxy, box_format::cxcywh) ==
        want);
  const format_test_box registered{0.5f, 1, 2, 5, 10};
  const auto from_struct = cvk::box_convert(registered, box_format::xyxy, box_format::cxcywh);
  CHECK(from_struct == std::array<float, 4>{3, 6, 4, 8});
}

TEMPLATE_TEST_CASE("box_convert: degenerate boxes", "[box][format]", float, double) {
  using T = TestType;
  const T nan = std::numeric_limits<T>::quiet_NaN();
  SECTION("inverted boxes give negative sizes, as torchvision") {
    const auto r =
        cvk::box_convert(std::array<T, 4>{5, 5, 2, 9}, box_format::xyxy, box_format::cxcywh);
    CHECK(r == std::array<T, 4>{T(3.5), 7, -3, 4});
    CHECK(cvk::box_convert(r, box_format::cxcywh, box_format::xyxy) ==
          std::array<T, 4>{5, 5, 2, 9});
  }
  SECTION("zero-size boxes") {
    CHECK(cvk::box_convert(std::array<T, 4>{2, 3, 2, 3}, box_format::xyxy, box_format::xywh) ==
          std::array<T, 4>{2, 3, 0, 0});
  }
  SECTION("NaN propagates to the coordinates computed from it") {
    const auto r =
        cvk::box_convert(std::array<T, 4>{nan, 0, 4, 4}, box_format::xyxy, box_format::cxcywh);
    CHECK(std::isnan(r[0]));  // cx
    CHECK(r[1] == T(2));      // cy
    CHECK(std::isnan(r[2]));  // w
    CHECK(r[3] == T(4));      // h
    const auto s =
        cvk::box_convert(std::array<T, 4>{0, 0, nan, 1}, box_format::xywh, box_format::xyxy);
    CHECK(std::isnan(s[2]));
    CHECK(s[3] == T(1));
  }
  SECTION("empty input gives empty output") {
    const std::vector<std::array<T, 4>> none;
    for (const box_format from : all_formats) {
      for (const box_format to : all_formats) {
        const auto r = cvk::box_convert(none, from, to);
        CHECK(r.extent(0) == 0);
        CHECK(r.extent(1) == 4);
      }
    }
    std::vector<std::array<T, 4>> out;
    cvk::box_convert(none, box_format::xyxy, box_format::xywh, out);
    CHECK(out.empty());
    const T* nothing = nullptr;
    CHECK(cvk::box_convert(cvk::view(nothing, 0, 4), box_format::xyxy, box_format::yxyx).empty());
  }
}

TEST_CASE("box_convert: errors", "[box][format]") {
  std::vector<float> buffer(40, 1.0f);
  SECTION("boxes must have 4 columns") {
    CHECK_THROWS_AS(
        cvk::box_convert(cvk::view(buffer.data(), 7, 3), box_format::xyxy, box_format::xywh),
        cvk::shape_error);
    CHECK_THROWS_WITH(
        cvk::box_convert(cvk::view(buffer.data(), 7, 3), box_format::xyxy, box_format::xywh),
        "box_convert: boxes must be N×4, got 7×3");
    std::vector<std::array<float, 4>> out(7);
    CHECK_THROWS_WITH(
        cvk::box_convert(cvk::view(buffer.data(), 7, 3), box_format::xyxy, box_format::xywh, out),
        "box_convert: boxes must be N×4, got 7×3");
    const std::vector<std::array<float, 5>> five(2);
    CHECK_THROWS_WITH(cvk::box_convert(five, box_format::xyxy, box_format::xywh),
                      "box_convert: boxes must be N×4, got 2×5");
  }
  SECTION("out must match the boxes") {
    const auto boxes = cvk::view(buffer.data(), 5, 4);
    std::vector<std::array<float, 4>> short_out(4);
    CHECK_THROWS_AS(cvk::box_convert(boxes, box_format::xyxy, box_format::xywh, short_out),
                    cvk::shape_error);
    CHECK_THROWS_WITH(cvk::box_convert(boxes, box_format::xyxy, box_format::xywh, short_out),
                      "box_convert: out must be 5×4, got 4×4");
    std::vector<std::array<float, 3>> narrow_out(5);
    CHECK_THROWS_WITH(cvk::box_convert(boxes, box_format::xyxy, box_format::xywh, narrow_out),
                      "box_convert: out must be 5×4, got 5×3");
    // Nothing was written.
    CHECK(short_out[0] == std::array<float, 4>{});
  }
  SECTION("negative extents from a raw-pointer view") {
    CHECK_THROWS_AS(
        cvk::box_convert(cvk::view(buffer.data(), {-1, 4}), box_format::xyxy, box_format::xywh),
        cvk::shape_error);
    CHECK_THROWS_WITH(
        cvk::box_convert(cvk::view(buffer.data(), {-1, 4}), box_format::xyxy, box_format::xywh),
        "box_convert: boxes has a negative extent, got -1×4");
    std::vector<std::array<float, 4>> out(2);
    CHECK_THROWS_WITH(cvk::box_convert(out, box_format::xyxy, box_format::xywh,
                                       cvk::view(buffer.data(), {2, -4})),
                      "box_convert: out has a negative extent, got 2×-4");
  }
  SECTION("rank mismatch through a dynamic_view") {
    cvk::dynamic_view<float>::extents_type extents{};
    cvk::dynamic_view<float>::extents_type strides{};
    extents[0] = 2;
    extents[1] = 4;
    extents[2] = 2;
    strides[0] = 8;
    strides[1] = 2;
    strides[2] = 1;
    const cvk::dynamic_view<float> rank3(buffer.data(), 3, extents, strides);
    CHECK_THROWS_AS(cvk::box_convert(rank3, box_format::xyxy, box_format::xywh), cvk::shape_error);
    CHECK_THROWS_WITH(cvk::box_convert(rank3, box_format::xyxy, box_format::xywh),
                      "box_convert: boxes must have rank 2, got rank 3 (2×4×2)");
    // The right rank goes through.
    const cvk::dynamic_view<float> rank2(buffer.data(), 2, extents, strides);
    const auto converted = cvk::box_convert(rank2, box_format::xyxy, box_format::xywh);
    CHECK(converted.extent(0) == 2);
    std::vector<std::array<float, 4>> out(2);
    cvk::box_convert(rank2, box_format::xyxy, box_format::xywh, out);
    CHECK(out[1] == std::array<float, 4>{1.0f, 1.0f, 0.0f, 0.0f});
    CHECK_THROWS_WITH(cvk::box_convert(out, box_format::xyxy, box_format::xywh, rank3),
                      "box_convert: out must have rank 2, got rank 3 (2×4×2)");
  }
  SECTION("a single box must have 4 values") {
    const std::array<float, 3> three{1, 2, 3};
    CHECK_THROWS_AS(cvk::box_convert(three, box_format::xyxy, box_format::xywh), cvk::shape_error);
    CHECK_THROWS_WITH(cvk::box_convert(three, box_format::xyxy, box_format::xywh),
                      "box_convert: box must be 4, got 3");
  }
}

TEST_CASE("box_convert and box_area reject a box_format outside the enum (issue 9 #8)",
          "[box][format][regression]") {
  // the old code read any other value as xyxy
  const std::vector<std::array<double, 4>> boxes = {{0, 0, 2, 3}};
  const auto bad = static_cast<box_format>(7);
  CHECK_THROWS_MATCHES(
      cvk::box_convert(boxes, bad, box_format::xywh), cvk::invalid_argument,
      Catch::Message("box_convert: from must be xyxy, xywh, cxcywh or yxyx, got box_format(7)"));
  CHECK_THROWS_MATCHES(
      cvk::box_convert(boxes, box_format::xyxy, static_cast<box_format>(-1)), cvk::invalid_argument,
      Catch::Message("box_convert: to must be xyxy, xywh, cxcywh or yxyx, got box_format(-1)"));
  CHECK_THROWS_AS(cvk::box_convert(boxes[0], bad, box_format::xyxy), cvk::invalid_argument);
  CHECK_THROWS_MATCHES(
      cvk::box_area(boxes, bad), cvk::invalid_argument,
      Catch::Message("box_area: format must be xyxy, xywh, cxcywh or yxyx, got box_format(7)"));
  CHECK_THROWS_AS(cvk::box_area(boxes[0], bad), cvk::invalid_argument);
  CHECK(cvk::box_area(boxes, box_format::xywh)(0) == 6.0);
}

TEST_CASE("errors table: box_convert, every form (docs/errors.md)", "[box][format][errors]") {
  const std::vector<double> buffer(8, 1.0);
  CHECK_THROWS_MATCHES(
      cvk::box_convert(cvk_test::rank3_view(buffer), box_format::xyxy, box_format::xywh),
      cvk::shape_error, Catch::Message("box_convert: boxes must have rank 2, got rank 3 (2×2×2)"));
  CHECK_THROWS_MATCHES(
      cvk::box_convert(cvk::view(buffer.data(), {-1, 4}), box_format::xyxy, box_format::xywh),
      cvk::shape_error, Catch::Message("box_convert: boxes has a negative extent, got -1×4"));
  // NaN propagates coordinate-wise; empty input gives an empty result
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const std::vector<std::array<double, 4>> one = {{0, 0, nan, 2}};
  const auto converted = cvk::box_convert(one, box_format::xyxy, box_format::xywh);
  CHECK(converted(0, 0) == 0.0);
  CHECK(std::isnan(converted(0, 2)));
  CHECK(converted(0, 3) == 2.0);
  CHECK(cvk::box_convert(std::vector<std::array<double, 4>>{}, box_format::xyxy, box_format::cxcywh)
            .extent(0) == 0);
  // in place is allowed (out is boxes itself)
  std::vector<std::array<double, 4>> boxes = {{1, 2, 4, 6}};
  cvk::box_convert(boxes, box_format::xyxy, box_format::xywh, boxes);
  CHECK(boxes[0] == std::array<double, 4>{1, 2, 3, 4});
  // 2^40 broadcast boxes: the result cannot be allocated
  const std::array<double, 4> row{0, 0, 1, 1};
  CHECK_THROWS_AS(cvk::box_convert(cvk_test::broadcast_rows(row.data(), cvk_test::huge_rows, 4),
                                   box_format::xyxy, box_format::xywh),
                  cvk::out_of_range);
}
