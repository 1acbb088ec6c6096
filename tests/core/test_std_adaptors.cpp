// cvk — computer-vision kernels, header-only C++20.
// Tests of cvk/core/std_adaptors.hpp: views of std::vector, std::array, std::span and C arrays.
// SPDX-License-Identifier: MIT
#include <cvk/core/std_adaptors.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

using cvk::index_t;

template <class X, class View>
inline constexpr bool gives_view = std::is_same_v<cvk::view_t<X>, View>;

// Owning containers: mutable views only from non-const lvalues.
static_assert(gives_view<std::vector<float>&, cvk::strided_view<float, 1>>);
static_assert(gives_view<const std::vector<float>&, cvk::strided_view<const float, 1>>);
static_assert(gives_view<std::vector<float>, cvk::strided_view<const float, 1>>);
static_assert(gives_view<std::array<int, 4>&, cvk::strided_view<int, 1>>);
static_assert(gives_view<const std::array<int, 4>&, cvk::strided_view<const int, 1>>);
static_assert(gives_view<std::array<int, 4>, cvk::strided_view<const int, 1>>);
static_assert(gives_view<std::vector<std::array<double, 4>>&, cvk::strided_view<double, 2>>);
static_assert(
    gives_view<const std::vector<std::array<double, 4>>&, cvk::strided_view<const double, 2>>);
static_assert(gives_view<std::vector<std::array<double, 4>>, cvk::strided_view<const double, 2>>);
static_assert(gives_view<float (&)[3], cvk::strided_view<float, 1>>);
static_assert(gives_view<const float (&)[3], cvk::strided_view<const float, 1>>);
static_assert(gives_view<double (&)[2][4], cvk::strided_view<double, 2>>);
static_assert(gives_view<const double (&)[2][4], cvk::strided_view<const double, 2>>);
// Spans do not own: the constness is the span's element type, whatever the span's own.
static_assert(gives_view<std::span<float>, cvk::strided_view<float, 1>>);
static_assert(gives_view<const std::span<float>&, cvk::strided_view<float, 1>>);
static_assert(gives_view<std::span<const float>, cvk::strided_view<const float, 1>>);
static_assert(gives_view<std::span<float, 3>, cvk::strided_view<float, 1>>);
static_assert(gives_view<std::span<std::array<float, 4>>, cvk::strided_view<float, 2>>);
static_assert(gives_view<std::span<const std::array<float, 4>>, cvk::strided_view<const float, 2>>);
static_assert(gives_view<std::span<std::array<float, 4>, 2>, cvk::strided_view<float, 2>>);

// Not tensors: non-numbers, and std::vector<bool>, which stores bits and has no data().
static_assert(!cvk::tensor_like<std::vector<bool>&>);
static_assert(!cvk::tensor_like<std::vector<std::vector<float>>>);
static_assert(!cvk::tensor_like<std::array<std::vector<float>, 2>>);
static_assert(!cvk::tensor_like<std::vector<float*>>);
static_assert(cvk::tensor_like<std::array<bool, 3>>);  // contiguous bools are fine

TEMPLATE_TEST_CASE("std adaptors: std::vector<T>", "[core][std_adaptors]", float, double) {
  std::vector<TestType> v(5);
  std::iota(v.begin(), v.end(), TestType(1));
  const auto view = cvk::as_view(v);
  CHECK(view.data() == v.data());
  CHECK(view.extent(0) == 5);
  CHECK(view.stride(0) == 1);
  CHECK(view(4) == TestType(5));
  view(2) = TestType(-1);
  CHECK(v[2] == TestType(-1));

  const auto const_view = cvk::as_view(std::as_const(v));
  CHECK(const_view.data() == v.data());
  CHECK(const_view(2) == TestType(-1));

  std::vector<TestType> empty;
  CHECK(cvk::as_view(empty).extent(0) == 0);
  CHECK(cvk::as_view(empty).empty());
}

TEMPLATE_TEST_CASE("std adaptors: std::array<T, K>", "[core][std_adaptors]", float, double) {
  std::array<TestType, 4> a{1, 2, 3, 4};
  const auto view = cvk::as_view(a);
  CHECK(view.data() == a.data());
  CHECK(view.extent(0) == 4);
  CHECK(view.stride(0) == 1);
  view(3) = TestType(40);
  CHECK(a[3] == TestType(40));
  CHECK(cvk::as_view(std::as_const(a))(3) == TestType(40));
  constexpr std::array<int, 3> fixed{7, 8, 9};
  static_assert(cvk::as_view(fixed).extent(0) == 3);  // usable in constant expressions
  static_assert(cvk::as_view(fixed)(1) == 8);
}

TEMPLATE_TEST_CASE("std adaptors: std::vector<std::array<T, K>>", "[core][std_adaptors]", float,
                   double) {
  std::vector<std::array<TestType, 4>> rows{{1, 2, 3, 4}, {5, 6, 7, 8}, {9, 10, 11, 12}};
  const auto view = cvk::as_view(rows);
  CHECK(view.extent(0) == 3);
  CHECK(view.extent(1) == 4);
  CHECK(view.stride(0) == 4);
  CHECK(view.stride(1) == 1);
  CHECK(view.is_contiguous());
  CHECK(view.data() == rows[0].data());
  CHECK(view(2, 1) == TestType(10));
  view(1, 3) = TestType(80);
  CHECK(rows[1][3] == TestType(80));
  CHECK(cvk::as_view(std::as_const(rows))(1, 3) == TestType(80));

  std::vector<std::array<TestType, 3>> triples(2);
  CHECK(cvk::as_view(triples).extent(1) == 3);
  CHECK(cvk::as_view(triples).stride(0) == 3);

  std::vector<std::array<TestType, 4>> none;
  const auto empty = cvk::as_view(none);
  CHECK(empty.extent(0) == 0);
  CHECK(empty.extent(1) == 4);
  CHECK(empty.data() == nullptr);
}

TEMPLATE_TEST_CASE("std adaptors: std::span", "[core][std_adaptors]", float, double) {
  std::vector<TestType> values{1, 2, 3, 4, 5, 6};
  SECTION("span<T> over part of a vector") {
    const std::span<TestType> s(values.data() + 2, 3);
    const auto view = cvk::as_view(s);
    CHECK(view.data() == values.data() + 2);
    CHECK(view.extent(0) == 3);
    CHECK(view(0) == TestType(3));
    view(2) = TestType(50);
    CHECK(values[4] == TestType(50));
  }
  SECTION("span<const T>") {
    const std::span<const TestType> s(values);
    CHECK(cvk::as_view(s).extent(0) == 6);
    CHECK(cvk::as_view(s)(5) == TestType(6));
  }
  SECTION("fixed-extent span") {
    const std::span<TestType, 2> s(values.data() + 4, 2);
    CHECK(cvk::as_view(s).extent(0) == 2);
    CHECK(cvk::as_view(s)(1) == TestType(6));
  }
  SECTION("span<array<T, K>> and span<const array<T, K>>") {
    std::vector<std::array<TestType, 4>> rows{{1, 2, 3, 4}, {5, 6, 7, 8}, {9, 10, 11, 12}};
    const std::span<std::array<TestType, 4>> tail(rows.data() + 1, 2);
    const auto view = cvk::as_view(tail);
    CHECK(view.extent(0) == 2);
    CHECK(view.extent(1) == 4);
    CHECK(view(0, 0) == TestType(5));
    view(1, 2) = TestType(0);
    CHECK(rows[2][2] == TestType(0));
    const std::span<const std::array<TestType, 4>> all(rows);
    CHECK(cvk::as_view(all).extent(0) == 3);
    CHECK(cvk::as_view(all)(2, 2) == TestType(0));
    const std::span<std::array<TestType, 4>> nothing;
    CHECK(cvk::as_view(nothing).extent(0) == 0);
  }
}

TEMPLATE_TEST_CASE("std adaptors: C arrays", "[core][std_adaptors]", float, double) {
  TestType vec[3] = {1, 2, 3};
  const auto v = cvk::as_view(vec);
  CHECK(v.data() == &vec[0]);
  CHECK(v.extent(0) == 3);
  v(0) = TestType(10);
  CHECK(vec[0] == TestType(10));

  TestType boxes[2][4] = {{1, 2, 3, 4}, {5, 6, 7, 8}};
  const auto b = cvk::as_view(boxes);
  CHECK(b.data() == &boxes[0][0]);
  CHECK(b.extent(0) == 2);
  CHECK(b.extent(1) == 4);
  CHECK(b.stride(0) == 4);
  CHECK(b.stride(1) == 1);
  CHECK(b(1, 2) == TestType(7));
  b(1, 2) = TestType(70);
  CHECK(boxes[1][2] == TestType(70));

  const TestType fixed[2][3] = {{1, 2, 3}, {4, 5, 6}};
  const auto c = cvk::as_view(fixed);
  static_assert(std::is_same_v<decltype(c), const cvk::strided_view<const TestType, 2>>);
  CHECK(c(1, 0) == TestType(4));
}

TEST_CASE("std adaptors: integer element types", "[core][std_adaptors]") {
  std::vector<std::array<int, 4>> rows{{1, 2, 3, 4}};
  const auto v = cvk::as_view(rows);
  static_assert(std::is_same_v<decltype(v), const cvk::strided_view<int, 2>>);
  CHECK(v(0, 3) == 4);
  std::vector<std::uint8_t> bytes{1, 2, 255};
  CHECK(cvk::as_view(bytes)(2) == 255);
  std::array<bool, 2> flags{true, false};
  CHECK(cvk::as_view(flags)(0));
  CHECK_FALSE(cvk::as_view(flags)(1));
}
