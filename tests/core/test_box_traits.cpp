// cvk — computer-vision kernels, header-only C++20.
// Tests of cvk/core/box_traits.hpp: user box structs registered with CVK_REGISTER_BOX.
// SPDX-License-Identifier: MIT
#include <cvk/core/box_traits.hpp>

#include <array>
#include <cstddef>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include <cvk/box/area.hpp>
#include <cvk/box/format.hpp>

using cvk::index_t;

/// An extra member before the coordinates.
struct labelled_box {
  int label;
  float x1, y1, x2, y2;
};
CVK_REGISTER_BOX(labelled_box, x1, y1, x2, y2);

/// Double coordinates with an extra member after them (and padding at the end).
struct scored_box {
  double x1, y1, x2, y2;
  float score;
};
CVK_REGISTER_BOX(scored_box, x1, y1, x2, y2);

/// Integer coordinates with other names (an OpenCV-like rectangle in corner form).
struct pixel_rect {
  int left, top, right, bottom;
};
CVK_REGISTER_BOX(pixel_rect, left, top, right, bottom);

/// Members declared in reverse order: the coordinates have a negative stride.
struct reversed_box {
  float y2, x2, y1, x1;
};
CVK_REGISTER_BOX(reversed_box, x1, y1, x2, y2);

namespace geometry {
/// A struct in a namespace, registered in xywh column order.
struct rect {
  float x, y, w, h;
  char tag;
};
}  // namespace geometry
CVK_REGISTER_BOX(geometry::rect, x, y, w, h);

static_assert(cvk::registered_box<labelled_box>);
static_assert(cvk::registered_box<const labelled_box>);
static_assert(cvk::registered_box<geometry::rect>);
static_assert(!cvk::registered_box<std::array<float, 4>>);
static_assert(!cvk::registered_box<float>);
static_assert(std::is_same_v<cvk::box_traits<labelled_box>::scalar_type, float>);
static_assert(std::is_same_v<cvk::box_traits<scored_box>::scalar_type, double>);
static_assert(std::is_same_v<cvk::box_traits<pixel_rect>::scalar_type, int>);

static_assert(cvk::tensor_of_static_rank<labelled_box, 1>);
static_assert(cvk::tensor_of_static_rank<std::vector<labelled_box>, 2>);
static_assert(cvk::tensor_of_static_rank<std::span<const scored_box>, 2>);
static_assert(cvk::tensor_of_static_rank<pixel_rect[3], 2>);
static_assert(cvk::mutable_tensor<std::vector<labelled_box>&>);
static_assert(!cvk::mutable_tensor<const std::vector<labelled_box>&>);
static_assert(!cvk::mutable_tensor<std::span<const labelled_box>>);
static_assert(cvk::mutable_tensor<std::span<labelled_box>>);

TEST_CASE("box_traits: a single registered box is a 4-vector", "[core][box_traits]") {
  labelled_box b{7, 1.0f, 2.0f, 4.0f, 8.0f};
  const auto v = cvk::as_view(b);
  static_assert(std::is_same_v<decltype(v), const cvk::strided_view<float, 1>>);
  CHECK(v.extent(0) == 4);
  CHECK(v.stride(0) == 1);
  CHECK(v.data() == &b.x1);
  CHECK(v(0) == 1.0f);
  CHECK(v(3) == 8.0f);
  v(2) = 5.0f;
  CHECK(b.x2 == 5.0f);
  CHECK(b.label == 7);

  const labelled_box& cb = b;
  const auto cv = cvk::as_view(cb);
  static_assert(std::is_same_v<decltype(cv), const cvk::strided_view<const float, 1>>);
  CHECK(cv(2) == 5.0f);

  // Single-box operators.
  CHECK(cvk::box_area(b) == 24.0f);  // (5 - 1) * (8 - 2)
  const auto xywh = cvk::box_convert(b, cvk::box_format::xyxy, cvk::box_format::xywh);
  static_assert(std::is_same_v<decltype(xywh), const std::array<float, 4>>);
  CHECK(xywh == std::array<float, 4>{1.0f, 2.0f, 4.0f, 6.0f});
}

TEST_CASE("box_traits: std::vector of boxes with a member before the coordinates",
          "[core][box_traits]") {
  std::vector<labelled_box> boxes{
      {1, 0.0f, 0.0f, 2.0f, 3.0f}, {2, 1.0f, 1.0f, 5.0f, 2.0f}, {3, -1.0f, -1.0f, 1.0f, 1.0f}};
  const auto v = cvk::as_view(boxes);
  static_assert(std::is_same_v<decltype(v), const cvk::strided_view<float, 2>>);
  CHECK(v.extent(0) == 3);
  CHECK(v.extent(1) == 4);
  CHECK(v.stride(0) == 5);  // sizeof(labelled_box) / sizeof(float)
  CHECK(v.stride(1) == 1);
  CHECK(v.data() == &boxes[0].x1);
  CHECK(v(1, 2) == 5.0f);
  CHECK(v(2, 0) == -1.0f);
  CHECK_FALSE(v.is_contiguous());

  const auto areas = cvk::box_area(boxes);
  REQUIRE(areas.extent(0) == 3);
  CHECK(areas(0) == 6.0f);
  CHECK(areas(1) == 4.0f);
  CHECK(areas(2) == 4.0f);

  SECTION("registered boxes as an output: only the coordinates are written") {
    std::vector<labelled_box> out(3, labelled_box{-9, 0.0f, 0.0f, 0.0f, 0.0f});
    cvk::box_convert(boxes, cvk::box_format::xyxy, cvk::box_format::cxcywh, out);
    CHECK(out[1].x1 == 3.0f);  // cx
    CHECK(out[1].y1 == 1.5f);  // cy
    CHECK(out[1].x2 == 4.0f);  // w
    CHECK(out[1].y2 == 1.0f);  // h
    for (const auto& b : out) CHECK(b.label == -9);
  }
  SECTION("const vector gives a const view") {
    const auto& cboxes = boxes;
    const auto cv = cvk::as_view(cboxes);
    static_assert(std::is_same_v<decltype(cv), const cvk::strided_view<const float, 2>>);
    CHECK(cv(0, 3) == 3.0f);
  }
  SECTION("empty vector") {
    std::vector<labelled_box> none;
    const auto e = cvk::as_view(none);
    CHECK(e.extent(0) == 0);
    CHECK(e.extent(1) == 4);
    CHECK(e.data() == nullptr);
    CHECK(cvk::box_area(none).size() == 0);
  }
}

TEST_CASE("box_traits: double coordinates with a member after them", "[core][box_traits]") {
  static_assert(sizeof(scored_box) == 5 * sizeof(double));
  std::vector<scored_box> boxes{{0.0, 0.0, 0.5, 0.25, 0.9f}, {10.0, 20.0, 30.0, 60.0, 0.1f}};
  const auto v = cvk::as_view(boxes);
  static_assert(std::is_same_v<decltype(v), const cvk::strided_view<double, 2>>);
  CHECK(v.stride(0) == 5);
  CHECK(v.stride(1) == 1);
  CHECK(v(1, 3) == 60.0);
  const auto areas = cvk::box_area(boxes);
  static_assert(std::is_same_v<decltype(areas), const cvk::tensor<double, 1>>);
  CHECK(areas(0) == 0.125);
  CHECK(areas(1) == 800.0);
  CHECK(boxes[0].score == 0.9f);
}

TEST_CASE("box_traits: integer coordinates give double results", "[core][box_traits]") {
  pixel_rect rects[2] = {{0, 0, 10, 20}, {5, 5, 6, 8}};
  const auto v = cvk::as_view(rects);
  static_assert(std::is_same_v<decltype(v), const cvk::strided_view<int, 2>>);
  CHECK(v.stride(0) == 4);
  CHECK(v.is_contiguous());
  CHECK(v(1, 3) == 8);

  const auto areas = cvk::box_area(rects);
  static_assert(std::is_same_v<decltype(areas), const cvk::tensor<double, 1>>);
  CHECK(areas(0) == 200.0);
  CHECK(areas(1) == 3.0);

  const auto area = cvk::box_area(rects[1]);
  static_assert(std::is_same_v<decltype(area), const double>);
  CHECK(area == 3.0);
  // Pixel-inclusive corners: 11 × 21 pixels.
  CHECK(cvk::box_area(rects[0], cvk::box_format::xyxy, {.pixel_inclusive = true}) == 231.0);

  const auto centre = cvk::box_convert(rects[1], cvk::box_format::xyxy, cvk::box_format::cxcywh);
  static_assert(std::is_same_v<decltype(centre), const std::array<double, 4>>);
  CHECK(centre == std::array<double, 4>{5.5, 6.5, 1.0, 3.0});
}

TEST_CASE("box_traits: members in reverse order have a negative stride", "[core][box_traits]") {
  reversed_box b{4.0f, 3.0f, 2.0f, 1.0f};  // y2, x2, y1, x1
  const auto v = cvk::as_view(b);
  CHECK(v.stride(0) == -1);
  CHECK(v(0) == 1.0f);  // x1
  CHECK(v(1) == 2.0f);  // y1
  CHECK(v(2) == 3.0f);  // x2
  CHECK(v(3) == 4.0f);  // y2
  CHECK(cvk::box_area(b) == 4.0f);

  std::vector<reversed_box> boxes{b, {10.0f, 10.0f, 0.0f, 0.0f}};
  const auto rows = cvk::as_view(boxes);
  CHECK(rows.stride(0) == 4);
  CHECK(rows.stride(1) == -1);
  CHECK(rows(1, 2) == 10.0f);
  const auto areas = cvk::box_area(boxes);
  CHECK(areas(0) == 4.0f);
  CHECK(areas(1) == 100.0f);
}

TEST_CASE("box_traits: spans and C arrays of registered boxes", "[core][box_traits]") {
  geometry::rect rects[3] = {
      {0.0f, 0.0f, 2.0f, 2.0f, 'a'}, {1.0f, 1.0f, 3.0f, 1.0f, 'b'}, {-1.0f, 0.0f, 0.5f, 4.0f, 'c'}};
  SECTION("C array") {
    const auto v = cvk::as_view(rects);
    CHECK(v.extent(0) == 3);
    CHECK(v.stride(0) == static_cast<index_t>(sizeof(geometry::rect) / sizeof(float)));
    CHECK(v(2, 3) == 4.0f);
    const auto areas = cvk::box_area(rects, cvk::box_format::xywh);
    CHECK(areas(0) == 4.0f);
    CHECK(areas(1) == 3.0f);
    CHECK(areas(2) == 2.0f);
  }
  SECTION("const C array") {
    const geometry::rect& first = rects[0];
    const geometry::rect copy[1] = {first};
    const auto v = cvk::as_view(copy);
    static_assert(std::is_same_v<decltype(v), const cvk::strided_view<const float, 2>>);
    CHECK(v(0, 2) == 2.0f);
  }
  SECTION("span of the last two") {
    const std::span<geometry::rect> tail(rects + 1, 2);
    const auto v = cvk::as_view(tail);
    static_assert(std::is_same_v<decltype(v), const cvk::strided_view<float, 2>>);
    CHECK(v.extent(0) == 2);
    CHECK(v(0, 2) == 3.0f);
    v(1, 0) = -2.0f;
    CHECK(rects[2].x == -2.0f);
    CHECK(rects[2].tag == 'c');
  }
  SECTION("span of const boxes") {
    const std::span<const geometry::rect> all(rects);
    const auto v = cvk::as_view(all);
    static_assert(std::is_same_v<decltype(v), const cvk::strided_view<const float, 2>>);
    CHECK(v.extent(0) == 3);
    const auto xyxy = cvk::box_convert(all, cvk::box_format::xywh, cvk::box_format::xyxy);
    CHECK(xyxy(1, 2) == 4.0f);
    CHECK(xyxy(1, 3) == 2.0f);
  }
}
