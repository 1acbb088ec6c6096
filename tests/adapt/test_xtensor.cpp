// cvk — computer-vision kernels, header-only C++20.
// Tests of cvk/adapt/xtensor.hpp: views of xtensor containers, adaptors and strided views
// (extents, strides including xtensor's 0 strides, constness, runtime rank) and box operators
// through them, compared with the std::vector adaptor.
// SPDX-License-Identifier: MIT
#if defined(CVK_TEST_HAS_XTENSOR)

#  include <cvk/adapt/xtensor.hpp>

#  if __has_include(<xtensor/containers/xadapt.hpp>)
#    include <xtensor/containers/xadapt.hpp>
#    include <xtensor/containers/xfixed.hpp>
#  else
#    include <xtensor/xadapt.hpp>
#    include <xtensor/xfixed.hpp>
#  endif

#  include <array>
#  include <cstddef>
#  include <type_traits>
#  include <utility>
#  include <vector>

#  include <catch2/catch.hpp>

#  include "adapt_test_support.hpp"

namespace {

using cvk::dynamic_view;
using cvk::index_t;
using cvk::strided_view;
using cvk::view_t;
using cvk_test::box_rows;

using shape1 = std::array<std::size_t, 1>;
using shape2 = std::array<std::size_t, 2>;

/// A rows×cols tensor whose element (i, j) is 10*i + j.
template <class Tensor>
Tensor numbered(std::size_t rows, std::size_t cols) {
  Tensor t = Tensor::from_shape({rows, cols});
  for (std::size_t i = 0; i < rows; ++i) {
    for (std::size_t j = 0; j < cols; ++j) {
      t(i, j) = static_cast<typename Tensor::value_type>(10 * i + j);
    }
  }
  return t;
}

/// Every element of a rank-2 view is the expression's element, at the same address.
template <class View, class Expr>
void check_same_elements(const View& v, Expr& expr) {
  REQUIRE(v.extent(0) == static_cast<index_t>(expr.shape()[0]));
  REQUIRE(v.extent(1) == static_cast<index_t>(expr.shape()[1]));
  for (std::size_t i = 0; i < expr.shape()[0]; ++i) {
    for (std::size_t j = 0; j < expr.shape()[1]; ++j) {
      const auto vi = static_cast<index_t>(i);
      const auto vj = static_cast<index_t>(j);
      CHECK(v(vi, vj) == expr(i, j));
      CHECK(&v(vi, vj) == &expr(i, j));
    }
  }
}

template <class Tensor, class T>
Tensor to_xtensor(const box_rows<T>& boxes) {
  Tensor t = Tensor::from_shape({boxes.size(), std::size_t{4}});
  for (std::size_t i = 0; i < boxes.size(); ++i) {
    for (std::size_t k = 0; k < 4; ++k) t(i, k) = boxes[i][k];
  }
  return t;
}

template <class Expr>
auto rows_of(const Expr& t) {
  box_rows<std::remove_cv_t<typename Expr::value_type>> rows;
  for (std::size_t i = 0; i < t.shape()[0]; ++i)
    rows.push_back({t(i, 0), t(i, 1), t(i, 2), t(i, 3)});
  return rows;
}

template <class Expr>
auto values_of(const Expr& t) {
  std::vector<std::remove_cv_t<typename Expr::value_type>> values;
  for (std::size_t i = 0; i < t.shape()[0]; ++i) values.push_back(t(i));
  return values;
}

}  // namespace

TEMPLATE_TEST_CASE("xtensor: view types follow constness, ownership and rank", "[adapt][xtensor]",
                   float, double) {
  using T = TestType;
  using X2 = xt::xtensor<T, 2>;
  using A = xt::xarray<T>;
  // Containers own: mutable only as non-const lvalues.
  STATIC_REQUIRE(std::is_same_v<view_t<X2&>, strided_view<T, 2>>);
  STATIC_REQUIRE(std::is_same_v<view_t<const X2&>, strided_view<const T, 2>>);
  STATIC_REQUIRE(std::is_same_v<view_t<X2>, strided_view<const T, 2>>);
  STATIC_REQUIRE(std::is_same_v<view_t<xt::xtensor<T, 3, xt::layout_type::column_major>&>,
                                strided_view<T, 3>>);
  STATIC_REQUIRE(std::is_same_v<view_t<A&>, dynamic_view<T>>);
  STATIC_REQUIRE(std::is_same_v<view_t<const A&>, dynamic_view<const T>>);
  STATIC_REQUIRE(std::is_same_v<view_t<A>, dynamic_view<const T>>);
  STATIC_REQUIRE(
      std::is_same_v<view_t<xt::xtensor_fixed<T, xt::xshape<3, 4>>&>, strided_view<T, 2>>);
  // Adaptors and views that borrow memory are outputs even as temporaries.
  using pointer_adaptor =
      decltype(xt::adapt(std::declval<T*>(), 4, xt::no_ownership(), std::declval<shape2>()));
  using vector_adaptor = decltype(xt::adapt(std::declval<std::vector<T>&>(), shape1{}));
  using owning_adaptor = decltype(xt::adapt(std::declval<std::vector<T>>(), shape1{}));
  using const_vector_adaptor = decltype(xt::adapt(std::declval<const std::vector<T>&>(), shape1{}));
  using dynamic_adaptor =
      decltype(xt::adapt(std::declval<T*>(), 4, xt::no_ownership(), std::vector<std::size_t>{}));
  using column = decltype(xt::view(std::declval<X2&>(), xt::all(), 1));
  using const_column = decltype(xt::view(std::declval<const X2&>(), xt::all(), 1));
  STATIC_REQUIRE(std::is_same_v<view_t<pointer_adaptor>, strided_view<T, 2>>);
  STATIC_REQUIRE(std::is_same_v<view_t<vector_adaptor>, strided_view<T, 1>>);
  STATIC_REQUIRE(std::is_same_v<view_t<owning_adaptor>, strided_view<const T, 1>>);
  STATIC_REQUIRE(std::is_same_v<view_t<owning_adaptor&>, strided_view<T, 1>>);
  STATIC_REQUIRE(std::is_same_v<view_t<const_vector_adaptor&>, strided_view<const T, 1>>);
  STATIC_REQUIRE(std::is_same_v<view_t<dynamic_adaptor>, dynamic_view<T>>);
  STATIC_REQUIRE(std::is_same_v<view_t<column>, strided_view<T, 1>>);
  STATIC_REQUIRE(std::is_same_v<view_t<const column&>, strided_view<const T, 1>>);
  STATIC_REQUIRE(std::is_same_v<view_t<const_column>, strided_view<const T, 1>>);
  STATIC_REQUIRE(cvk::mutable_tensor<column>);
  STATIC_REQUIRE(cvk::mutable_tensor<pointer_adaptor>);
  STATIC_REQUIRE(!cvk::mutable_tensor<X2>);
  STATIC_REQUIRE(!cvk::mutable_tensor<const X2&>);
  // Lazy expressions have no memory to view.
  STATIC_REQUIRE(!cvk::tensor_like<decltype(std::declval<X2&>() + std::declval<X2&>())>);
  // Views whose slices are not strided (keep) have no data interface.
  STATIC_REQUIRE(
      !cvk::tensor_like<decltype(xt::view(std::declval<X2&>(), xt::keep(0, 2), xt::all()))>);
  // xarray has a runtime rank: accepted where any rank is, and checked when used.
  STATIC_REQUIRE(cvk::tensor_of_rank<A, 2>);
  STATIC_REQUIRE(!cvk::tensor_of_static_rank<A, 1>);
  STATIC_REQUIRE(cvk::tensor_of_rank<X2, 2>);
  STATIC_REQUIRE(!cvk::tensor_of_rank<X2, 1>);
}

TEMPLATE_TEST_CASE("xtensor: extents, strides and element access", "[adapt][xtensor]", float,
                   double) {
  using T = TestType;
  SECTION("row-major xtensor") {
    auto t = numbered<xt::xtensor<T, 2>>(3, 5);
    const auto v = cvk::as_view(t);
    CHECK(v.data() == t.data());
    CHECK(v.stride(0) == 5);
    CHECK(v.stride(1) == 1);
    CHECK(v.is_contiguous());
    check_same_elements(v, t);
    v(2, 4) = T(-3);
    CHECK(t(2, 4) == T(-3));
  }
  SECTION("column-major xtensor") {
    auto t = numbered<xt::xtensor<T, 2, xt::layout_type::column_major>>(3, 5);
    const auto v = cvk::as_view(t);
    CHECK(v.stride(0) == 1);
    CHECK(v.stride(1) == 3);
    check_same_elements(v, t);
  }
  SECTION("axes of extent 1 have stride 0 and still index correctly") {
    xt::xtensor<T, 3> t = xt::xtensor<T, 3>::from_shape({1, 4, 1});
    for (std::size_t j = 0; j < 4; ++j) t(0, j, 0) = static_cast<T>(j + 1);
    const auto v = cvk::as_view(t);
    CHECK(v.stride(0) == 0);
    CHECK(v.stride(1) == 1);
    CHECK(v.stride(2) == 0);
    CHECK(v.is_contiguous());
    for (index_t j = 0; j < 4; ++j) CHECK(v(0, j, 0) == static_cast<T>(j + 1));
    // One box: a 1×4 tensor whose row stride is 0.
    xt::xtensor<T, 2> one_box = {{T(1), T(2), T(4), T(7)}};
    CHECK(cvk::as_view(one_box).stride(0) == 0);
    CHECK(cvk::box_area(one_box)(0) == T(15));
  }
  SECTION("xtensor_fixed") {
    xt::xtensor_fixed<T, xt::xshape<3, 4>> t = numbered<xt::xtensor<T, 2>>(3, 4);
    const auto v = cvk::as_view(t);
    CHECK(v.stride(0) == 4);
    CHECK(v.stride(1) == 1);
    check_same_elements(v, t);
  }
  SECTION("views: a column, a stepped range and a reversed range") {
    auto t = numbered<xt::xtensor<T, 2>>(6, 5);
    auto column = xt::view(t, xt::all(), 3);
    const auto c = cvk::as_view(column);
    CHECK(c.extent(0) == 6);
    CHECK(c.stride(0) == 5);
    CHECK(&c(4) == &t(4, 3));
    auto stepped = xt::view(t, xt::range(1, 6, 2), xt::range(1, 5));
    const auto s = cvk::as_view(stepped);
    CHECK(s.stride(0) == 10);
    CHECK(s.stride(1) == 1);
    check_same_elements(s, stepped);
    auto reversed = xt::view(t, xt::range(xt::placeholders::_, xt::placeholders::_, -1), xt::all());
    const auto r = cvk::as_view(reversed);
    CHECK(r.stride(0) == -5);
    CHECK(r(0, 0) == T(50));
    check_same_elements(r, reversed);
  }
  SECTION("transpose") {
    auto t = numbered<xt::xtensor<T, 2>>(3, 5);
    auto transposed = xt::transpose(t);
    const auto v = cvk::as_view(transposed);
    CHECK(v.extent(0) == 5);
    CHECK(v.extent(1) == 3);
    CHECK(v.stride(0) == 1);
    CHECK(v.stride(1) == 5);
    STATIC_REQUIRE(std::is_same_v<decltype(v), const strided_view<T, 2>>);
    CHECK(&v(4, 2) == &t(2, 4));
  }
  SECTION("adapted memory with explicit (column-major) strides") {
    std::vector<T> buffer(12);
    for (std::size_t i = 0; i < buffer.size(); ++i) buffer[i] = static_cast<T>(i);
    auto a = xt::adapt(buffer.data(), buffer.size(), xt::no_ownership(), shape2{3, 4},
                       std::array<std::ptrdiff_t, 2>{1, 3});
    const auto v = cvk::as_view(a);
    CHECK(v.stride(0) == 1);
    CHECK(v.stride(1) == 3);
    CHECK(v(2, 3) == T(11));
    check_same_elements(v, a);
  }
  SECTION("xarray") {
    xt::xarray<T> a = xt::xarray<T>::from_shape({2, 3, 4});
    a(1, 2, 3) = T(9);
    const auto v = cvk::as_view(a);
    REQUIRE(v.rank() == 3);
    CHECK(v.extent(0) == 2);
    CHECK(v.extent(2) == 4);
    CHECK(v.stride(0) == 12);
    CHECK(v.stride(1) == 4);
    CHECK(v.stride(2) == 1);
    const auto fixed = v.template to_rank<3>();
    CHECK(fixed(1, 2, 3) == T(9));
    CHECK(&fixed(1, 2, 3) == &a(1, 2, 3));
    const auto sv = cvk::as_view(xt::strided_view(a, {1, xt::all(), 2}));
    REQUIRE(sv.rank() == 1);
    CHECK(sv.stride(0) == 4);
    CHECK(sv.data() == &a(1, 0, 2));
  }
}

TEMPLATE_TEST_CASE("xtensor: runtime ranks are checked with messages naming the argument",
                   "[adapt][xtensor]", float, double) {
  using T = TestType;
  const xt::xarray<T> rank3 = xt::zeros<T>({2, 3, 4});
  CHECK_THROWS_AS(static_cast<void>(cvk::box_area(rank3)), cvk::shape_error);
  CHECK_THROWS_WITH(static_cast<void>(cvk::box_area(rank3)),
                    "box_area: boxes must have rank 2, got rank 3 (2×3×4)");
  const xt::xarray<T> seven_by_three = xt::zeros<T>({7, 3});
  CHECK_THROWS_WITH(static_cast<void>(cvk::box_area(seven_by_three)),
                    "box_area: boxes must be N×4, got 7×3");
  const xt::xtensor<T, 2> fixed_seven_by_three = xt::zeros<T>({7, 3});
  CHECK_THROWS_WITH(static_cast<void>(cvk::box_area(fixed_seven_by_three)),
                    "box_area: boxes must be N×4, got 7×3");
  const xt::xarray<T> boxes = xt::zeros<T>({5, 4});
  xt::xarray<T> column = xt::zeros<T>({5, 1});
  CHECK_THROWS_WITH(cvk::box_area(boxes, column),
                    "box_area: out must have rank 1, got rank 2 (5×1)");
  xt::xarray<T> six = xt::zeros<T>({6});
  CHECK_THROWS_WITH(cvk::box_area(boxes, six), "box_area: out must be 5, got 6");
  xt::xarray<T> rank9 = xt::zeros<T>({1, 1, 1, 1, 1, 1, 1, 2, 4});
  CHECK_THROWS_AS(cvk::as_view(rank9), cvk::shape_error);
  CHECK_THROWS_WITH(cvk::as_view(rank9),
                    "as_view: xtensor expression of rank 9 (1×1×1×1×1×1×1×2×4) exceeds "
                    "cvk::max_dynamic_rank (8)");
}

TEMPLATE_TEST_CASE("xtensor: box_area and box_convert match the std::vector adaptor",
                   "[adapt][xtensor]", float, double) {
  using T = TestType;
  auto boxes = cvk_test::random_boxes_with_degenerate<T>(41, 20191027);
  const std::size_t n = boxes.size();
  const auto expected_areas = cvk_test::reference_areas(boxes);

  const auto row_major = to_xtensor<xt::xtensor<T, 2>>(boxes);
  const auto col_major = to_xtensor<xt::xtensor<T, 2, xt::layout_type::column_major>>(boxes);
  const auto array = to_xtensor<xt::xarray<T>>(boxes);
  const auto adapted = xt::adapt(boxes.front().data(), 4 * n, xt::no_ownership(), shape2{n, 4});
  xt::xtensor<T, 2> big = xt::zeros<T>({n + 3, std::size_t{7}});
  xt::view(big, xt::range(2, n + 2), xt::range(1, 5)) = row_major;
  const auto inner = xt::view(big, xt::range(2, n + 2), xt::range(1, 5));

  SECTION("value-returning box_area") {
    CHECK(cvk_test::to_vector(cvk::box_area(row_major).view()) == expected_areas);
    CHECK(cvk_test::to_vector(cvk::box_area(col_major).view()) == expected_areas);
    CHECK(cvk_test::to_vector(cvk::box_area(array).view()) == expected_areas);
    CHECK(cvk_test::to_vector(cvk::box_area(adapted).view()) == expected_areas);
    CHECK(cvk_test::to_vector(cvk::box_area(inner).view()) == expected_areas);
  }
  SECTION("box_area in every input format") {
    for (const auto format : cvk_test::all_formats) {
      CAPTURE(cvk::to_string(format));
      const auto expected = cvk_test::reference_areas(boxes, format);
      CHECK(cvk_test::to_vector(cvk::box_area(col_major, format).view()) == expected);
      CHECK(cvk_test::to_vector(cvk::box_area(array, format).view()) == expected);
    }
  }
  SECTION("box_area into xtensor outputs, temporaries included") {
    xt::xtensor<T, 2> out = xt::zeros<T>({n, std::size_t{3}});
    cvk::box_area(row_major, xt::view(out, xt::all(), 1));  // a temporary view, stride 3
    CHECK(values_of(xt::view(out, xt::all(), 1)) == expected_areas);
    CHECK(values_of(xt::view(out, xt::all(), 0)) == std::vector<T>(n, T(0)));

    std::vector<T> buffer(n, T(0));
    cvk::box_area(array, xt::adapt(buffer.data(), n, xt::no_ownership(), shape1{n}));
    CHECK(buffer == expected_areas);

    std::vector<T> by_reference(n, T(0));
    cvk::box_area(col_major, xt::adapt(by_reference, shape1{n}));
    CHECK(by_reference == expected_areas);

    xt::xtensor<T, 1> areas = xt::zeros<T>({n});
    cvk::box_area(inner, areas);
    CHECK(values_of(areas) == expected_areas);

    xt::xarray<T> dynamic_areas = xt::zeros<T>({n});
    cvk::box_area(adapted, dynamic_areas);
    CHECK(values_of(dynamic_areas) == expected_areas);
  }
  SECTION("box_convert between every pair of formats") {
    for (const auto from : cvk_test::all_formats) {
      for (const auto to : cvk_test::all_formats) {
        CAPTURE(cvk::to_string(from), cvk::to_string(to));
        const auto expected = cvk_test::reference_convert(boxes, from, to);
        CHECK(cvk_test::to_rows(cvk::box_convert(row_major, from, to).view()) == expected);
        CHECK(cvk_test::to_rows(cvk::box_convert(col_major, from, to).view()) == expected);
        CHECK(cvk_test::to_rows(cvk::box_convert(array, from, to).view()) == expected);
        CHECK(cvk_test::to_rows(cvk::box_convert(inner, from, to).view()) == expected);
      }
    }
  }
  SECTION("box_convert into xtensor outputs, temporaries included") {
    const auto expected =
        cvk_test::reference_convert(boxes, cvk::box_format::xyxy, cvk::box_format::xywh);
    xt::xtensor<T, 2> target = xt::zeros<T>({n + 2, std::size_t{6}});
    cvk::box_convert(col_major, cvk::box_format::xyxy, cvk::box_format::xywh,
                     xt::view(target, xt::range(1, n + 1), xt::range(2, 6)));
    CHECK(rows_of(xt::view(target, xt::range(1, n + 1), xt::range(2, 6))) == expected);
    CHECK(values_of(xt::view(target, 0, xt::all())) == std::vector<T>(6, T(0)));

    std::vector<T> buffer(4 * n, T(0));
    cvk::box_convert(array, cvk::box_format::xyxy, cvk::box_format::xywh,
                     xt::adapt(buffer.data(), 4 * n, xt::no_ownership(), shape2{n, 4}));
    CHECK(rows_of(xt::adapt(buffer.data(), 4 * n, xt::no_ownership(), shape2{n, 4})) == expected);

    xt::xarray<T> dynamic_out = xt::zeros<T>({n, std::size_t{4}});
    cvk::box_convert(row_major, cvk::box_format::xyxy, cvk::box_format::xywh, dynamic_out);
    CHECK(rows_of(dynamic_out) == expected);

    xt::xtensor<T, 2, xt::layout_type::column_major> in_place = col_major;
    cvk::box_convert(in_place, cvk::box_format::xyxy, cvk::box_format::xywh, in_place);
    CHECK(rows_of(in_place) == expected);
  }
}

#endif  // CVK_TEST_HAS_XTENSOR
