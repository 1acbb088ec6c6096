// cvk — computer-vision kernels, header-only C++20.
// Tests of cvk/core/strided_view.hpp: strided_view, dynamic_view and cvk::view.
// SPDX-License-Identifier: MIT
#include <cvk/core/strided_view.hpp>

#include <array>
#include <numeric>
#include <string>
#include <type_traits>
#include <vector>

#include <catch2/catch.hpp>

#include <cvk/core/errors.hpp>

using cvk::index_t;

// A view of T converts to a view of const T, never the other way round.
static_assert(
    std::is_convertible_v<cvk::strided_view<float, 2>, cvk::strided_view<const float, 2>>);
static_assert(
    !std::is_convertible_v<cvk::strided_view<const float, 2>, cvk::strided_view<float, 2>>);
static_assert(
    !std::is_constructible_v<cvk::strided_view<float, 2>, cvk::strided_view<const float, 2>>);
static_assert(std::is_convertible_v<cvk::dynamic_view<double>, cvk::dynamic_view<const double>>);
static_assert(!std::is_convertible_v<cvk::dynamic_view<const double>, cvk::dynamic_view<double>>);
// Different ranks never convert.
static_assert(!std::is_convertible_v<cvk::strided_view<float, 2>, cvk::strided_view<float, 1>>);
// Views are cheap to pass around.
static_assert(std::is_trivially_copyable_v<cvk::strided_view<float, 3>>);
static_assert(std::is_trivially_copyable_v<cvk::dynamic_view<const int>>);
static_assert(std::is_same_v<cvk::strided_view<const float, 2>::value_type, float>);
static_assert(std::is_same_v<cvk::strided_view<const float, 2>::element_type, const float>);
static_assert(cvk::strided_view<int, 4>::rank() == 4);

TEMPLATE_TEST_CASE("strided_view: row-major constructor", "[core][strided_view]", float, double) {
  std::vector<TestType> values(24);
  std::iota(values.begin(), values.end(), TestType(0));
  const cvk::strided_view<TestType, 3> v(values.data(), {2, 3, 4});

  CHECK(v.rank() == 3);
  CHECK(v.data() == values.data());
  CHECK(v.extent(0) == 2);
  CHECK(v.extent(1) == 3);
  CHECK(v.extent(2) == 4);
  CHECK(v.stride(0) == 12);
  CHECK(v.stride(1) == 4);
  CHECK(v.stride(2) == 1);
  CHECK(v.extents() == std::array<index_t, 3>{2, 3, 4});
  CHECK(v.strides() == std::array<index_t, 3>{12, 4, 1});
  CHECK(v.size() == 24);
  CHECK_FALSE(v.empty());
  CHECK(v.is_contiguous());
  CHECK(v(0, 0, 0) == TestType(0));
  CHECK(v(1, 2, 3) == TestType(23));
  CHECK(v(1, 0, 2) == TestType(14));

  // Writes go through to the memory.
  v(0, 1, 1) = TestType(-5);
  CHECK(values[5] == TestType(-5));

  CHECK(cvk::strided_view<TestType, 3>::row_major_strides({5, 6, 7}) ==
        std::array<index_t, 3>{42, 7, 1});
}

TEMPLATE_TEST_CASE("strided_view: explicit strides", "[core][strided_view]", float, double) {
  std::vector<TestType> values(30);
  std::iota(values.begin(), values.end(), TestType(0));

  SECTION("padded rows (row stride 7)") {
    const cvk::strided_view<TestType, 2> v(values.data() + 1, {4, 3}, {7, 1});
    CHECK(v(0, 0) == TestType(1));
    CHECK(v(2, 1) == TestType(16));
    CHECK(v(3, 2) == TestType(24));
    CHECK(v.size() == 12);
    CHECK_FALSE(v.is_contiguous());
  }
  SECTION("column-major (transposed) storage") {
    // A 3×5 matrix stored column by column: element (i, j) at j*3 + i.
    const cvk::strided_view<TestType, 2> v(values.data(), {3, 5}, {1, 3});
    CHECK(v(0, 0) == TestType(0));
    CHECK(v(1, 0) == TestType(1));
    CHECK(v(0, 1) == TestType(3));
    CHECK(v(2, 4) == TestType(14));
    CHECK_FALSE(v.is_contiguous());
  }
  SECTION("negative strides walk backwards") {
    // Rows in reverse order: row i of the view is row (4 - i) of the 5×6 buffer.
    const cvk::strided_view<TestType, 2> rows(values.data() + 24, {5, 6}, {-6, 1});
    CHECK(rows(0, 0) == TestType(24));
    CHECK(rows(4, 0) == TestType(0));
    CHECK(rows(1, 5) == TestType(23));
    CHECK_FALSE(rows.is_contiguous());
    // Both axes reversed.
    const cvk::strided_view<TestType, 2> both(values.data() + 29, {5, 6}, {-6, -1});
    CHECK(both(0, 0) == TestType(29));
    CHECK(both(4, 5) == TestType(0));
    CHECK(both(2, 3) == TestType(29 - 12 - 3));
  }
  SECTION("zero strides broadcast") {
    const cvk::strided_view<TestType, 2> row_repeated(values.data() + 6, {4, 3}, {0, 1});
    for (index_t i = 0; i < 4; ++i) {
      CHECK(row_repeated(i, 0) == TestType(6));
      CHECK(row_repeated(i, 2) == TestType(8));
    }
    const cvk::strided_view<TestType, 2> constant(values.data() + 9, {3, 3}, {0, 0});
    CHECK(constant(2, 2) == TestType(9));
    CHECK_FALSE(row_repeated.is_contiguous());
    CHECK_FALSE(constant.is_contiguous());
  }
}

TEST_CASE("strided_view: is_contiguous", "[core][strided_view]") {
  float buffer[64] = {};
  using v3 = cvk::strided_view<float, 3>;
  CHECK(v3(buffer, {2, 3, 4}, {12, 4, 1}).is_contiguous());
  CHECK_FALSE(v3(buffer, {2, 3, 4}, {1, 2, 6}).is_contiguous());   // column-major
  CHECK_FALSE(v3(buffer, {2, 3, 4}, {16, 4, 1}).is_contiguous());  // padded
  CHECK_FALSE(v3(buffer, {2, 3, 4}, {12, 4, 2}).is_contiguous());
  CHECK_FALSE(v3(buffer + 23, {2, 3, 4}, {-12, -4, -1}).is_contiguous());

  // Axes of extent 1 may have any stride (xtensor gives them 0, NumPy sometimes garbage).
  CHECK(v3(buffer, {1, 3, 4}, {0, 4, 1}).is_contiguous());
  CHECK(v3(buffer, {1, 3, 4}, {999, 4, 1}).is_contiguous());
  CHECK(v3(buffer, {2, 1, 4}, {4, -3, 1}).is_contiguous());
  CHECK(v3(buffer, {2, 3, 1}, {3, 1, 0}).is_contiguous());
  CHECK(v3(buffer, {1, 1, 1}, {7, 0, -2}).is_contiguous());
  // ... but the axes after it still must be row-major.
  CHECK_FALSE(v3(buffer, {1, 3, 4}, {0, 1, 3}).is_contiguous());

  // Empty views.
  CHECK(cvk::strided_view<float, 2>(buffer, {0, 4}).is_contiguous());
  CHECK(cvk::strided_view<float, 2>(buffer, {0, 4}).empty());
  CHECK(cvk::strided_view<float, 2>(buffer, {0, 4}).size() == 0);
  CHECK(cvk::strided_view<float, 1>(buffer, {5}, {1}).is_contiguous());
  CHECK_FALSE(cvk::strided_view<float, 1>(buffer, {5}, {2}).is_contiguous());
}

TEST_CASE("strided_view: const conversion", "[core][strided_view]") {
  int values[6] = {1, 2, 3, 4, 5, 6};
  const cvk::strided_view<int, 2> mutable_view(values, {2, 3});
  const cvk::strided_view<const int, 2> const_view = mutable_view;  // implicit
  CHECK(const_view.data() == values);
  CHECK(const_view.extents() == mutable_view.extents());
  CHECK(const_view.strides() == mutable_view.strides());
  CHECK(const_view(1, 2) == 6);
  mutable_view(1, 2) = 60;
  CHECK(const_view(1, 2) == 60);
}

TEST_CASE("strided_view: default and rank 0", "[core][strided_view]") {
  const cvk::strided_view<double, 2> empty;
  CHECK(empty.data() == nullptr);
  CHECK(empty.extent(0) == 0);
  CHECK(empty.extent(1) == 0);
  CHECK(empty.empty());

  double scalar = 2.5;
  const cvk::strided_view<double, 0> s(&scalar, {});
  CHECK(s.size() == 1);
  CHECK(s() == 2.5);
  CHECK(s.shape_string() == "scalar");
  CHECK(s.is_contiguous());
}

TEST_CASE("strided_view: as_cvk_view returns itself", "[core][strided_view]") {
  float values[4] = {};
  const cvk::strided_view<float, 2> v(values, {2, 2}, {1, 2});
  const auto same = v.as_cvk_view();
  static_assert(std::is_same_v<decltype(same), const cvk::strided_view<float, 2>>);
  CHECK(same.data() == v.data());
  CHECK(same.strides() == v.strides());
}

TEST_CASE("strided_view: shape_string", "[core][strided_view]") {
  float values[1] = {};
  CHECK(cvk::strided_view<float, 2>(values, {7, 3}).shape_string() == "7×3");
  CHECK(cvk::strided_view<float, 1>(values, {12}).shape_string() == "12");
  CHECK(cvk::strided_view<float, 4>(values, {1, 0, 2, 3}).shape_string() == "1×0×2×3");
  CHECK(cvk::strided_view<float, 2>(values, {-1, 4}).shape_string() == "-1×4");
}

TEST_CASE("cvk::view overloads", "[core][strided_view]") {
  std::vector<double> values(40);
  std::iota(values.begin(), values.end(), 0.0);

  SECTION("variadic extents, contiguous row-major") {
    const auto v = cvk::view(values.data(), 5, 8);
    static_assert(std::is_same_v<decltype(v), const cvk::strided_view<double, 2>>);
    CHECK(v.extents() == std::array<index_t, 2>{5, 8});
    CHECK(v.strides() == std::array<index_t, 2>{8, 1});
    CHECK(v(4, 7) == 39.0);
    // Any integral type is accepted for extents.
    const auto w = cvk::view(values.data(), std::size_t{40});
    static_assert(std::is_same_v<decltype(w), const cvk::strided_view<double, 1>>);
    CHECK(w.extent(0) == 40);
    const auto x = cvk::view(values.data(), 2u, short{4}, 5L);
    CHECK(x.extents() == std::array<index_t, 3>{2, 4, 5});
    CHECK(x(1, 3, 4) == 39.0);
  }
  SECTION("braced extents") {
    const auto v = cvk::view(values.data(), {4, 10});
    static_assert(std::is_same_v<decltype(v), const cvk::strided_view<double, 2>>);
    CHECK(v.strides() == std::array<index_t, 2>{10, 1});
    CHECK(v(3, 9) == 39.0);
  }
  SECTION("braced extents and strides") {
    const auto v = cvk::view(values.data() + 3, {5, 4}, {7, 1});
    CHECK(v.extents() == std::array<index_t, 2>{5, 4});
    CHECK(v.strides() == std::array<index_t, 2>{7, 1});
    CHECK(v(0, 0) == 3.0);
    CHECK(v(4, 3) == 34.0);
    const auto reversed = cvk::view(values.data() + 39, {40}, {-1});
    CHECK(reversed(0) == 39.0);
    CHECK(reversed(39) == 0.0);
  }
  SECTION("a const pointer gives a const view") {
    const double* data = values.data();
    const auto v = cvk::view(data, 4, 10);
    static_assert(std::is_same_v<decltype(v), const cvk::strided_view<const double, 2>>);
    CHECK(v(1, 1) == 11.0);
    const auto w = cvk::view(data, {2, 2}, {20, 1});
    static_assert(std::is_same_v<decltype(w), const cvk::strided_view<const double, 2>>);
    CHECK(w(1, 1) == 21.0);
  }
}

TEST_CASE("dynamic_view: accessors and to_rank", "[core][strided_view]") {
  std::vector<float> values(24);
  std::iota(values.begin(), values.end(), 0.0f);
  cvk::dynamic_view<float>::extents_type extents{};
  cvk::dynamic_view<float>::extents_type strides{};
  extents[0] = 2;
  extents[1] = 3;
  extents[2] = 4;
  strides[0] = 1;  // column-major
  strides[1] = 2;
  strides[2] = 6;
  const cvk::dynamic_view<float> dyn(values.data(), 3, extents, strides);

  CHECK(dyn.rank() == 3);
  CHECK(dyn.data() == values.data());
  CHECK(dyn.extent(2) == 4);
  CHECK(dyn.stride(1) == 2);
  CHECK(dyn.shape_string() == "2×3×4");
  CHECK(dyn.as_cvk_view().data() == values.data());

  SECTION("to_rank with the right rank keeps data, extents and strides") {
    const auto v = dyn.to_rank<3>();
    static_assert(std::is_same_v<decltype(v), const cvk::strided_view<float, 3>>);
    CHECK(v.data() == values.data());
    CHECK(v.extents() == std::array<index_t, 3>{2, 3, 4});
    CHECK(v.strides() == std::array<index_t, 3>{1, 2, 6});
    CHECK(v(1, 2, 3) == 23.0f);
    CHECK(v(1, 0, 2) == 13.0f);
  }
  SECTION("to_rank with another rank throws shape_error naming the caller") {
    CHECK_THROWS_AS(dyn.to_rank<2>(), cvk::shape_error);
    CHECK_THROWS_WITH(dyn.to_rank<2>(), "to_rank: tensor must have rank 2, got rank 3 (2×3×4)");
    CHECK_THROWS_WITH(dyn.to_rank<1>("box_area", "boxes"),
                      "box_area: boxes must have rank 1, got rank 3 (2×3×4)");
  }
  SECTION("const conversion") {
    const cvk::dynamic_view<const float> c = dyn;
    CHECK(c.rank() == 3);
    const auto v = c.to_rank<3>();
    static_assert(std::is_same_v<decltype(v), const cvk::strided_view<const float, 3>>);
    CHECK(v(0, 1, 0) == 2.0f);
  }
  SECTION("rank 0") {
    const cvk::dynamic_view<float> scalar(values.data() + 5, 0, {}, {});
    CHECK(scalar.shape_string() == "scalar");
    CHECK(scalar.to_rank<0>()() == 5.0f);
    CHECK_THROWS_WITH(scalar.to_rank<1>(), "to_rank: tensor must have rank 1, got rank 0 (scalar)");
  }
}
