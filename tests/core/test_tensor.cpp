// cvk — computer-vision kernels, header-only C++20.
// Tests of cvk/core/tensor.hpp: the owning row-major tensor.
// SPDX-License-Identifier: MIT
#include <cvk/core/tensor.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <limits>
#include <numeric>
#include <type_traits>
#include <utility>

#include <catch2/catch.hpp>

#include <cvk/box/area.hpp>
#include <cvk/box/format.hpp>
#include <cvk/core/as_view.hpp>
#include <cvk/core/errors.hpp>

using cvk::index_t;

static_assert(cvk::tensor_of_static_rank<cvk::tensor<float, 2>, 2>);
static_assert(std::is_same_v<cvk::tensor<float, 3>::view_type, cvk::strided_view<float, 3>>);
static_assert(
    std::is_same_v<cvk::tensor<float, 3>::const_view_type, cvk::strided_view<const float, 3>>);
// Extents are explicit: a number is not silently a tensor.
static_assert(!std::is_convertible_v<int, cvk::tensor<float, 1>>);
static_assert(std::is_constructible_v<cvk::tensor<float, 2>, int, long>);
static_assert(!std::is_constructible_v<cvk::tensor<float, 2>, int>);  // rank must match

TEMPLATE_TEST_CASE("tensor: constructors", "[core][tensor]", float, double) {
  SECTION("default: empty, every extent 0") {
    const cvk::tensor<TestType, 2> t;
    CHECK(t.empty());
    CHECK(t.size() == 0);
    CHECK(t.extent(0) == 0);
    CHECK(t.extent(1) == 0);
    CHECK(t.shape_string() == "0×0");
  }
  SECTION("default rank 0: one element") {
    cvk::tensor<TestType, 0> scalar;
    CHECK(scalar.size() == 1);
    CHECK_FALSE(scalar.empty());
    CHECK(scalar() == TestType(0));
    scalar() = TestType(3);
    CHECK(scalar() == TestType(3));
    CHECK(scalar.shape_string() == "scalar");
  }
  SECTION("variadic extents, value-initialized") {
    const cvk::tensor<TestType, 3> t(2, 3, 4);
    CHECK(t.rank() == 3);
    CHECK(t.size() == 24);
    CHECK(t.extents() == std::array<index_t, 3>{2, 3, 4});
    CHECK(t.shape_string() == "2×3×4");
    CHECK(std::all_of(t.begin(), t.end(), [](TestType x) { return x == TestType(0); }));
  }
  SECTION("extents and fill") {
    const cvk::tensor<TestType, 2> t({3, 2}, TestType(1.5));
    CHECK(t.size() == 6);
    CHECK(std::all_of(t.begin(), t.end(), [](TestType x) { return x == TestType(1.5); }));
    CHECK(t(2, 1) == TestType(1.5));
  }
  SECTION("zero extents are fine") {
    const cvk::tensor<TestType, 2> t(0, 4);
    CHECK(t.empty());
    CHECK(t.extent(1) == 4);
    CHECK(t.view().extent(1) == 4);
  }
}

TEST_CASE("tensor: negative extents throw shape_error", "[core][tensor]") {
  CHECK_THROWS_AS((cvk::tensor<float, 2>(2, -1)), cvk::shape_error);
  CHECK_THROWS_WITH((cvk::tensor<float, 2>(2, -1)),
                    "tensor: extents must be non-negative, got 2×-1");
  CHECK_THROWS_AS((cvk::tensor<double, 1>({-3}, 1.0)), cvk::shape_error);
}

TEST_CASE("tensor: sizes that overflow throw out_of_range", "[core][tensor]") {
  constexpr index_t big = index_t{1} << 40;
  CHECK_THROWS_AS((cvk::tensor<float, 2>(big, big)), cvk::out_of_range);
  CHECK_THROWS_WITH((cvk::tensor<float, 2>(big, big)),
                    Catch::Contains("do not fit in memory") &&
                        Catch::StartsWith("tensor: 1099511627776×1099511627776"));
  // The element count fits in size_t but the bytes do not.
  CHECK_THROWS_AS((cvk::tensor<double, 1>(index_t{1} << 62)), cvk::out_of_range);
  CHECK_THROWS_AS((cvk::tensor<double, 3>(index_t{1} << 21, index_t{1} << 21, index_t{1} << 21)),
                  cvk::out_of_range);
  const auto max = std::numeric_limits<index_t>::max();
  CHECK_THROWS_AS((cvk::tensor<char, 2>(max, 3)), cvk::out_of_range);
  // Huge extents are fine once an earlier one is zero: there are no elements.
  CHECK(cvk::tensor<char, 3>(0, max, 3).empty());
}

TEMPLATE_TEST_CASE("tensor: element access and views", "[core][tensor]", float, double) {
  cvk::tensor<TestType, 2> t(3, 4);
  std::iota(t.begin(), t.end(), TestType(0));
  CHECK(t(0, 0) == TestType(0));
  CHECK(t(2, 3) == TestType(11));
  CHECK(t(1, 2) == TestType(6));
  CHECK(t.data()[6] == TestType(6));

  const auto v = t.view();
  static_assert(std::is_same_v<decltype(v), const cvk::strided_view<TestType, 2>>);
  CHECK(v.data() == t.data());
  CHECK(v.extents() == t.extents());
  CHECK(v.strides() == std::array<index_t, 2>{4, 1});
  CHECK(v.is_contiguous());
  v(1, 1) = TestType(-1);
  CHECK(t(1, 1) == TestType(-1));

  const auto& ct = t;
  const auto cv = ct.view();
  static_assert(std::is_same_v<decltype(cv), const cvk::strided_view<const TestType, 2>>);
  CHECK(cv(1, 1) == TestType(-1));
  static_assert(std::is_same_v<decltype(ct(0, 0)), const TestType&>);
  static_assert(std::is_same_v<decltype(ct.data()), const TestType*>);

  // Through cvk::as_view: mutable from a non-const lvalue only.
  static_assert(std::is_same_v<decltype(cvk::as_view(t)), cvk::strided_view<TestType, 2>>);
  static_assert(std::is_same_v<decltype(cvk::as_view(ct)), cvk::strided_view<const TestType, 2>>);
  static_assert(
      std::is_same_v<decltype(cvk::as_view(std::move(t))), cvk::strided_view<const TestType, 2>>);
  CHECK(cvk::as_view(t).data() == t.data());
}

TEMPLATE_TEST_CASE("tensor: equality", "[core][tensor]", float, double) {
  cvk::tensor<TestType, 2> a(2, 3);
  cvk::tensor<TestType, 2> b(2, 3);
  CHECK(a == b);
  b(1, 2) = TestType(1);
  CHECK_FALSE(a == b);
  CHECK(a != b);
  a(1, 2) = TestType(1);
  CHECK(a == b);
  // Same elements, different shape.
  const cvk::tensor<TestType, 2> c(3, 2);
  const cvk::tensor<TestType, 2> d(2, 3);
  CHECK_FALSE(c == d);
  // Empty tensors of different shapes differ too.
  CHECK_FALSE((cvk::tensor<TestType, 2>(0, 4) == cvk::tensor<TestType, 2>(4, 0)));
  // Copies are deep.
  cvk::tensor<TestType, 2> copy = a;
  CHECK(copy == a);
  copy(0, 0) = TestType(9);
  CHECK(a(0, 0) == TestType(0));
}

TEMPLATE_TEST_CASE("tensor: input and output of box operators", "[core][tensor]", float, double) {
  cvk::tensor<TestType, 2> boxes(2, 4);
  const std::array<TestType, 8> coordinates{0, 0, 2, 3, 1, 1, 5, 2};
  std::copy(coordinates.begin(), coordinates.end(), boxes.begin());

  SECTION("returned tensors") {
    const auto areas = cvk::box_area(boxes);
    static_assert(std::is_same_v<decltype(areas), const cvk::tensor<TestType, 1>>);
    REQUIRE(areas.extent(0) == 2);
    CHECK(areas(0) == TestType(6));
    CHECK(areas(1) == TestType(4));

    const auto xywh = cvk::box_convert(boxes, cvk::box_format::xyxy, cvk::box_format::xywh);
    static_assert(std::is_same_v<decltype(xywh), const cvk::tensor<TestType, 2>>);
    CHECK(xywh.extents() == std::array<index_t, 2>{2, 4});
    CHECK(xywh(1, 2) == TestType(4));
    CHECK(xywh(1, 3) == TestType(1));
    // A result feeds straight into another operator.
    const auto again = cvk::box_area(xywh, cvk::box_format::xywh);
    CHECK(again == areas);
  }
  SECTION("tensors as outputs") {
    cvk::tensor<TestType, 1> areas(2);
    cvk::box_area(boxes, areas);
    CHECK(areas(0) == TestType(6));
    CHECK(areas(1) == TestType(4));

    cvk::tensor<TestType, 2> cxcywh(2, 4);
    cvk::box_convert(boxes, cvk::box_format::xyxy, cvk::box_format::cxcywh, cxcywh);
    CHECK(cxcywh(0, 0) == TestType(1));
    CHECK(cxcywh(0, 1) == TestType(1.5));
    CHECK(cxcywh(1, 0) == TestType(3));

    cvk::tensor<TestType, 1> wrong(3);
    CHECK_THROWS_AS(cvk::box_area(boxes, wrong), cvk::shape_error);
  }
  SECTION("a temporary tensor is a read-only input") {
    const auto areas = cvk::box_area(cvk::tensor<TestType, 2>({1, 4}, TestType(2)));
    CHECK(areas(0) == TestType(0));
  }
}

TEST_CASE("tensor: more than 1 TiB is out_of_range, not std::bad_alloc (docs/errors.md)",
          "[core][tensor][errors]") {
  // 2^40 doubles (8 TiB) fit in size_t; the old constructor asked std::vector for them and
  // ended in std::bad_alloc, which every value-returning operator passed on
  CHECK_THROWS_MATCHES((cvk::tensor<double, 1>(index_t{1} << 40)), cvk::out_of_range,
                       Catch::Message("tensor: 1099511627776 elements do not fit in memory"));
  CHECK_THROWS_AS((cvk::tensor<float, 2>(index_t{1} << 20, index_t{1} << 20)), cvk::out_of_range);
  // 1 TiB itself is the bound: one more byte is refused up front
  CHECK_THROWS_AS((cvk::tensor<char, 1>((index_t{1} << 40) + 1)), cvk::out_of_range);
}
