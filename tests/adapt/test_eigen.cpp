// cvk — computer-vision kernels, header-only C++20.
// Tests of cvk/adapt/eigen.hpp: views of Eigen dense expressions and tensors (extents, strides,
// constness) and box operators through them, compared with the std::vector adaptor.
// SPDX-License-Identifier: MIT
#if defined(CVK_TEST_HAS_EIGEN)

#  include <cvk/adapt/eigen.hpp>

#  include <array>
#  include <cstddef>
#  include <type_traits>
#  include <utility>
#  include <vector>

#  include <catch2/catch.hpp>

#  include "adapt_test_support.hpp"

namespace {

using cvk::index_t;
using cvk::strided_view;
using cvk::view_t;
using cvk_test::box_rows;

template <class T>
using col_major = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic>;
template <class T>
using row_major = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T>
using boxes_row_major = Eigen::Matrix<T, Eigen::Dynamic, 4, Eigen::RowMajor>;
template <class T>
using boxes_col_major = Eigen::Matrix<T, Eigen::Dynamic, 4>;
template <class T>
using vector_x = Eigen::Matrix<T, Eigen::Dynamic, 1>;

/// A rows×cols matrix whose coefficient (i, j) is 10*i + j.
template <class Matrix>
Matrix numbered(index_t rows, index_t cols) {
  Matrix m(rows, cols);
  for (index_t i = 0; i < rows; ++i) {
    for (index_t j = 0; j < cols; ++j) m(i, j) = static_cast<typename Matrix::Scalar>(10 * i + j);
  }
  return m;
}

/// Every coefficient of a rank-2 view is the expression's coefficient, at the same address.
template <class View, class Expr>
void check_same_elements(const View& v, const Expr& expr) {
  REQUIRE(v.extent(0) == expr.rows());
  REQUIRE(v.extent(1) == expr.cols());
  for (index_t i = 0; i < expr.rows(); ++i) {
    for (index_t j = 0; j < expr.cols(); ++j) {
      CHECK(v(i, j) == expr(i, j));
      CHECK(&v(i, j) == &expr.coeffRef(i, j));
    }
  }
}

/// The same boxes in an Eigen matrix type.
template <class Matrix, class T>
Matrix to_eigen(const box_rows<T>& boxes) {
  Matrix m(static_cast<index_t>(boxes.size()), 4);
  for (std::size_t i = 0; i < boxes.size(); ++i) {
    for (std::size_t k = 0; k < 4; ++k) {
      m(static_cast<index_t>(i), static_cast<index_t>(k)) = boxes[i][k];
    }
  }
  return m;
}

template <class Expr>
auto rows_of(const Expr& m) {
  box_rows<typename Expr::Scalar> rows;
  for (index_t i = 0; i < m.rows(); ++i) rows.push_back({m(i, 0), m(i, 1), m(i, 2), m(i, 3)});
  return rows;
}

template <class Expr>
auto values_of(const Expr& v) {
  std::vector<typename Expr::Scalar> values;
  for (index_t i = 0; i < v.size(); ++i) values.push_back(v(i));
  return values;
}

}  // namespace

TEMPLATE_TEST_CASE("eigen: view types follow constness and ownership", "[adapt][eigen]", float,
                   double) {
  using T = TestType;
  using M = col_major<T>;
  using R = row_major<T>;
  // Owning matrices and arrays: mutable only as non-const lvalues.
  STATIC_REQUIRE(std::is_same_v<view_t<M&>, strided_view<T, 2>>);
  STATIC_REQUIRE(std::is_same_v<view_t<const M&>, strided_view<const T, 2>>);
  STATIC_REQUIRE(std::is_same_v<view_t<M>, strided_view<const T, 2>>);
  STATIC_REQUIRE(std::is_same_v<view_t<R&>, strided_view<T, 2>>);
  STATIC_REQUIRE(std::is_same_v<view_t<R>, strided_view<const T, 2>>);
  STATIC_REQUIRE(std::is_same_v<view_t<Eigen::Array<T, Eigen::Dynamic, 4>&>, strided_view<T, 2>>);
  STATIC_REQUIRE(std::is_same_v<view_t<const Eigen::Array<T, 3, 4>&>, strided_view<const T, 2>>);
  // Compile-time vectors are rank 1, whatever their orientation.
  STATIC_REQUIRE(std::is_same_v<view_t<vector_x<T>&>, strided_view<T, 1>>);
  STATIC_REQUIRE(std::is_same_v<view_t<Eigen::Matrix<T, 1, Eigen::Dynamic>&>, strided_view<T, 1>>);
  STATIC_REQUIRE(std::is_same_v<view_t<const Eigen::Matrix<T, 1, 4>&>, strided_view<const T, 1>>);
  STATIC_REQUIRE(std::is_same_v<view_t<Eigen::Matrix<T, 4, 1>&>, strided_view<T, 1>>);
  // Non-owning expressions: a temporary is a valid output unless it is read-only.
  using block_col = decltype(std::declval<M&>().col(0));
  using const_block_col = decltype(std::declval<const M&>().col(0));
  using block = decltype(std::declval<R&>().block(0, 0, 1, 1));
  STATIC_REQUIRE(std::is_same_v<view_t<block_col>, strided_view<T, 1>>);
  STATIC_REQUIRE(std::is_same_v<view_t<const block_col&>, strided_view<const T, 1>>);
  STATIC_REQUIRE(std::is_same_v<view_t<const_block_col>, strided_view<const T, 1>>);
  STATIC_REQUIRE(std::is_same_v<view_t<decltype(std::declval<R&>().row(0))>, strided_view<T, 1>>);
  STATIC_REQUIRE(std::is_same_v<view_t<block>, strided_view<T, 2>>);
  STATIC_REQUIRE(std::is_same_v<view_t<Eigen::Map<R>>, strided_view<T, 2>>);
  STATIC_REQUIRE(std::is_same_v<view_t<Eigen::Map<R>&>, strided_view<T, 2>>);
  STATIC_REQUIRE(std::is_same_v<view_t<const Eigen::Map<R>&>, strided_view<const T, 2>>);
  STATIC_REQUIRE(std::is_same_v<view_t<Eigen::Map<const R>>, strided_view<const T, 2>>);
  STATIC_REQUIRE(std::is_same_v<view_t<Eigen::Map<const R>&>, strided_view<const T, 2>>);
  STATIC_REQUIRE(std::is_same_v<view_t<Eigen::Ref<M>>, strided_view<T, 2>>);
  STATIC_REQUIRE(std::is_same_v<view_t<Eigen::Ref<const M>>, strided_view<const T, 2>>);
  STATIC_REQUIRE(std::is_same_v<view_t<Eigen::Ref<vector_x<T>>>, strided_view<T, 1>>);
  STATIC_REQUIRE(
      std::is_same_v<view_t<decltype(std::declval<M&>().transpose())>, strided_view<T, 2>>);
  STATIC_REQUIRE(std::is_same_v<view_t<decltype(std::declval<M&>().array())>, strided_view<T, 2>>);
  // What can be passed as an output.
  STATIC_REQUIRE(cvk::mutable_tensor<M&>);
  STATIC_REQUIRE(!cvk::mutable_tensor<M>);
  STATIC_REQUIRE(!cvk::mutable_tensor<const M&>);
  STATIC_REQUIRE(cvk::mutable_tensor<block_col>);
  STATIC_REQUIRE(cvk::mutable_tensor<Eigen::Map<vector_x<T>>>);
  STATIC_REQUIRE(!cvk::mutable_tensor<Eigen::Map<const vector_x<T>>>);
  // Lazy expressions have no memory to view.
  STATIC_REQUIRE(!cvk::tensor_like<decltype(std::declval<M&>() + std::declval<M&>())>);
  STATIC_REQUIRE(!cvk::tensor_like<decltype(std::declval<M&>() * T(2))>);
  STATIC_REQUIRE(cvk::tensor_of_rank<M, 2>);
  STATIC_REQUIRE(!cvk::tensor_of_rank<M, 1>);
  STATIC_REQUIRE(cvk::tensor_of_static_rank<Eigen::Matrix<T, 1, 4>, 1>);
}

TEMPLATE_TEST_CASE("eigen: matrices in either storage order", "[adapt][eigen]", float, double) {
  using T = TestType;
  SECTION("column-major (Eigen's default)") {
    auto m = numbered<col_major<T>>(3, 5);
    const auto v = cvk::as_view(m);
    CHECK(v.data() == m.data());
    CHECK(v.stride(0) == 1);
    CHECK(v.stride(1) == 3);
    CHECK_FALSE(v.is_contiguous());
    check_same_elements(v, m);
  }
  SECTION("row-major") {
    auto m = numbered<row_major<T>>(3, 5);
    const auto v = cvk::as_view(m);
    CHECK(v.stride(0) == 5);
    CHECK(v.stride(1) == 1);
    CHECK(v.is_contiguous());
    check_same_elements(v, m);
  }
  SECTION("fixed-size array") {
    Eigen::Array<T, 3, 4, Eigen::RowMajor> a =
        numbered<Eigen::Array<T, 3, 4, Eigen::RowMajor>>(3, 4);
    const auto v = cvk::as_view(std::as_const(a));
    STATIC_REQUIRE(std::is_same_v<decltype(v), const strided_view<const T, 2>>);
    CHECK(v.stride(0) == 4);
    check_same_elements(v, a);
  }
  SECTION("a mutable view writes into the matrix") {
    auto m = numbered<col_major<T>>(2, 3);
    const auto v = cvk::as_view(m);
    v(1, 2) = T(-7);
    CHECK(m(1, 2) == T(-7));
  }
  SECTION("empty matrix") {
    col_major<T> m(0, 4);
    const auto v = cvk::as_view(m);
    CHECK(v.extent(0) == 0);
    CHECK(v.extent(1) == 4);
    CHECK(v.empty());
  }
}

TEMPLATE_TEST_CASE("eigen: blocks, columns, rows, transposes and diagonals", "[adapt][eigen]",
                   float, double) {
  using T = TestType;
  SECTION("block of a column-major matrix") {
    auto m = numbered<col_major<T>>(5, 6);
    const auto v = cvk::as_view(m.block(1, 2, 3, 4));
    STATIC_REQUIRE(std::is_same_v<decltype(v), const strided_view<T, 2>>);
    CHECK(v.data() == &m(1, 2));
    CHECK(v.stride(0) == 1);
    CHECK(v.stride(1) == 5);
    check_same_elements(v, m.block(1, 2, 3, 4));
  }
  SECTION("block of a row-major matrix") {
    auto m = numbered<row_major<T>>(5, 6);
    const auto v = cvk::as_view(m.block(1, 2, 3, 4));
    CHECK(v.stride(0) == 6);
    CHECK(v.stride(1) == 1);
    check_same_elements(v, m.block(1, 2, 3, 4));
  }
  SECTION("column and row of a column-major matrix") {
    auto m = numbered<col_major<T>>(4, 3);
    const auto col = cvk::as_view(m.col(2));
    CHECK(col.extent(0) == 4);
    CHECK(col.stride(0) == 1);
    CHECK(col(3) == m(3, 2));
    const auto row = cvk::as_view(m.row(1));
    CHECK(row.extent(0) == 3);
    CHECK(row.stride(0) == 4);
    CHECK(row(2) == m(1, 2));
    CHECK(&row(2) == &m(1, 2));
  }
  SECTION("column and row of a row-major matrix") {
    auto m = numbered<row_major<T>>(4, 3);
    const auto col = cvk::as_view(m.col(2));
    CHECK(col.stride(0) == 3);
    CHECK(&col(3) == &m(3, 2));
    const auto row = cvk::as_view(m.row(1));
    CHECK(row.stride(0) == 1);
    CHECK(&row(2) == &m(1, 2));
  }
  SECTION("a temporary column is a mutable view") {
    auto m = numbered<col_major<T>>(4, 3);
    cvk::as_view(m.col(1))(2) = T(99);
    CHECK(m(2, 1) == T(99));
  }
  SECTION("transpose swaps the strides") {
    auto m = numbered<col_major<T>>(3, 5);
    const auto v = cvk::as_view(m.transpose());
    CHECK(v.extent(0) == 5);
    CHECK(v.extent(1) == 3);
    CHECK(v.stride(0) == 3);
    CHECK(v.stride(1) == 1);
    check_same_elements(v, m.transpose());
  }
  SECTION("diagonal steps by rows + 1") {
    auto m = numbered<col_major<T>>(4, 4);
    const auto v = cvk::as_view(m.diagonal());
    CHECK(v.extent(0) == 4);
    CHECK(v.stride(0) == 5);
    CHECK(v(3) == m(3, 3));
  }
}

TEMPLATE_TEST_CASE("eigen: Map with outer and inner strides, and Ref", "[adapt][eigen]", float,
                   double) {
  using T = TestType;
  std::vector<T> buffer(64);
  for (std::size_t i = 0; i < buffer.size(); ++i) buffer[i] = static_cast<T>(i);
  SECTION("row-major Map with OuterStride") {
    Eigen::Map<row_major<T>, 0, Eigen::OuterStride<>> m(buffer.data(), 3, 4,
                                                        Eigen::OuterStride<>(6));
    const auto v = cvk::as_view(m);
    CHECK(v.stride(0) == 6);
    CHECK(v.stride(1) == 1);
    CHECK(v(2, 3) == T(15));
    check_same_elements(v, m);
  }
  SECTION("column-major Map with inner and outer strides") {
    using stride = Eigen::Stride<Eigen::Dynamic, Eigen::Dynamic>;
    Eigen::Map<col_major<T>, 0, stride> m(buffer.data(), 3, 4, stride(10, 2));
    const auto v = cvk::as_view(m);
    CHECK(v.stride(0) == 2);
    CHECK(v.stride(1) == 10);
    CHECK(v(2, 3) == T(34));
    check_same_elements(v, m);
  }
  SECTION("vector Map with InnerStride") {
    Eigen::Map<vector_x<T>, 0, Eigen::InnerStride<3>> m(buffer.data() + 1, 5);
    const auto v = cvk::as_view(m);
    STATIC_REQUIRE(std::is_same_v<decltype(v), const strided_view<T, 1>>);
    CHECK(v.extent(0) == 5);
    CHECK(v.stride(0) == 3);
    CHECK(v(4) == T(13));
  }
  SECTION("Map of const data") {
    const std::vector<T>& data = buffer;
    Eigen::Map<const row_major<T>> m(data.data(), 4, 4);
    const auto v = cvk::as_view(m);
    STATIC_REQUIRE(std::is_same_v<decltype(v), const strided_view<const T, 2>>);
    check_same_elements(v, m);
  }
  SECTION("Ref to a block with a generic stride") {
    auto big = numbered<col_major<T>>(6, 6);
    Eigen::Ref<col_major<T>, 0, Eigen::Stride<Eigen::Dynamic, Eigen::Dynamic>> ref =
        big.block(1, 1, 3, 4);
    const auto v = cvk::as_view(ref);
    CHECK(v.data() == &big(1, 1));
    CHECK(v.stride(0) == 1);
    CHECK(v.stride(1) == 6);
    check_same_elements(v, ref);
    const auto small = numbered<row_major<T>>(2, 3);
    const Eigen::Ref<const row_major<T>> cref = small;
    const auto cv = cvk::as_view(cref);
    STATIC_REQUIRE(std::is_same_v<decltype(cv), const strided_view<const T, 2>>);
    check_same_elements(cv, cref);
  }
}

#  if CVK_EIGEN_HAS_TENSOR
TEMPLATE_TEST_CASE("eigen: Tensor, TensorFixedSize and TensorMap", "[adapt][eigen]", float,
                   double) {
  using T = TestType;
  SECTION("Tensor is column-major by default") {
    Eigen::Tensor<T, 3> t(2, 3, 4);
    t.setZero();
    t(1, 2, 3) = T(5);
    const auto v = cvk::as_view(t);
    STATIC_REQUIRE(std::is_same_v<decltype(v), const strided_view<T, 3>>);
    CHECK(v.extent(0) == 2);
    CHECK(v.extent(1) == 3);
    CHECK(v.extent(2) == 4);
    CHECK(v.stride(0) == 1);
    CHECK(v.stride(1) == 2);
    CHECK(v.stride(2) == 6);
    CHECK(v(1, 2, 3) == T(5));
    CHECK(&v(1, 2, 3) == &t(1, 2, 3));
    STATIC_REQUIRE(std::is_same_v<view_t<const Eigen::Tensor<T, 3>&>, strided_view<const T, 3>>);
    STATIC_REQUIRE(std::is_same_v<view_t<Eigen::Tensor<T, 3>>, strided_view<const T, 3>>);
  }
  SECTION("row-major Tensor") {
    Eigen::Tensor<T, 3, Eigen::RowMajor> t(2, 3, 4);
    const auto v = cvk::as_view(t);
    CHECK(v.stride(0) == 12);
    CHECK(v.stride(1) == 4);
    CHECK(v.stride(2) == 1);
    CHECK(&v(1, 2, 3) == &t(1, 2, 3));
  }
  SECTION("Tensor with int indices") {
    Eigen::Tensor<T, 2, Eigen::ColMajor, int> t(2, 3);
    const auto v = cvk::as_view(t);
    CHECK(v.extent(1) == 3);
    CHECK(v.stride(1) == 2);
    CHECK(&v(1, 2) == &t(1, 2));
  }
  SECTION("TensorFixedSize") {
    Eigen::TensorFixedSize<T, Eigen::Sizes<3, 4>> t;
    const auto v = cvk::as_view(t);
    STATIC_REQUIRE(std::is_same_v<decltype(v), const strided_view<T, 2>>);
    CHECK(v.extent(0) == 3);
    CHECK(v.stride(1) == 3);
    CHECK(&v(2, 3) == &t(2, 3));
  }
  SECTION("TensorMap, mutable and const") {
    std::vector<T> buffer(12, T(0));
    using map = Eigen::TensorMap<Eigen::Tensor<T, 2, Eigen::RowMajor>>;
    STATIC_REQUIRE(std::is_same_v<view_t<map>, strided_view<T, 2>>);
    STATIC_REQUIRE(std::is_same_v<view_t<const map&>, strided_view<const T, 2>>);
    STATIC_REQUIRE(std::is_same_v<view_t<Eigen::TensorMap<const Eigen::Tensor<T, 2>>>,
                                  strided_view<const T, 2>>);
    const auto v = cvk::as_view(map(buffer.data(), 3, 4));
    CHECK(v.stride(0) == 4);
    CHECK(v.stride(1) == 1);
    v(2, 1) = T(8);
    CHECK(buffer[9] == T(8));
    using fixed_map =
        Eigen::TensorMap<Eigen::TensorFixedSize<T, Eigen::Sizes<3, 4>, Eigen::RowMajor>>;
    const auto f = cvk::as_view(fixed_map(buffer.data(), 3, 4));
    CHECK(f.stride(0) == 4);
    CHECK(f(2, 1) == T(8));
  }
}
#  endif

TEMPLATE_TEST_CASE("eigen: box_area and box_convert match the std::vector adaptor",
                   "[adapt][eigen]", float, double) {
  using T = TestType;
  const auto boxes = cvk_test::random_boxes_with_degenerate<T>(37, 20190616);
  const index_t n = static_cast<index_t>(boxes.size());
  const auto expected_areas = cvk_test::reference_areas(boxes);

  const auto rm = to_eigen<boxes_row_major<T>>(boxes);
  const auto cm = to_eigen<boxes_col_major<T>>(boxes);
  const Eigen::Map<const boxes_row_major<T>> map(boxes.front().data(), n, 4);
  col_major<T> big = col_major<T>::Constant(n + 3, 7, T(-1));
  big.block(2, 1, n, 4) = cm;

  SECTION("value-returning box_area") {
    CHECK(cvk_test::to_vector(cvk::box_area(rm).view()) == expected_areas);
    CHECK(cvk_test::to_vector(cvk::box_area(cm).view()) == expected_areas);
    CHECK(cvk_test::to_vector(cvk::box_area(map).view()) == expected_areas);
    CHECK(cvk_test::to_vector(cvk::box_area(big.block(2, 1, n, 4)).view()) == expected_areas);
  }
  SECTION("box_area in every input format") {
    for (const auto format : cvk_test::all_formats) {
      CAPTURE(cvk::to_string(format));
      const auto expected = cvk_test::reference_areas(boxes, format);
      CHECK(cvk_test::to_vector(cvk::box_area(cm, format).view()) == expected);
      CHECK(cvk_test::to_vector(cvk::box_area(map, format).view()) == expected);
    }
  }
  SECTION("box_area into Eigen outputs, temporaries included") {
    col_major<T> out = col_major<T>::Zero(n, 3);
    cvk::box_area(rm, out.col(1));  // a temporary Block
    CHECK(values_of(out.col(1)) == expected_areas);
    CHECK(out.col(0).isZero());
    CHECK(out.col(2).isZero());

    col_major<T> out_rows = col_major<T>::Zero(3, n);
    cvk::box_area(cm, out_rows.row(2));  // a row of a column-major matrix: stride 3
    CHECK(values_of(out_rows.row(2)) == expected_areas);
    CHECK(out_rows.row(1).isZero());

    std::vector<T> buffer(static_cast<std::size_t>(n), T(0));
    cvk::box_area(big.block(2, 1, n, 4), Eigen::Map<vector_x<T>>(buffer.data(), n));
    CHECK(buffer == expected_areas);

    vector_x<T> areas(n);
    cvk::box_area(map, areas);
    CHECK(values_of(areas) == expected_areas);

    // A column of a row-major matrix: stride 2.
    Eigen::Matrix<T, Eigen::Dynamic, 2, Eigen::RowMajor> pairs =
        Eigen::Matrix<T, Eigen::Dynamic, 2, Eigen::RowMajor>::Zero(n, 2);
    cvk::box_area(cm, pairs.col(0));
    CHECK(values_of(pairs.col(0)) == expected_areas);
    CHECK(pairs.col(1).isZero());
  }
  SECTION("box_convert between every pair of formats") {
    for (const auto from : cvk_test::all_formats) {
      for (const auto to : cvk_test::all_formats) {
        CAPTURE(cvk::to_string(from), cvk::to_string(to));
        const auto expected = cvk_test::reference_convert(boxes, from, to);
        CHECK(cvk_test::to_rows(cvk::box_convert(rm, from, to).view()) == expected);
        CHECK(cvk_test::to_rows(cvk::box_convert(cm, from, to).view()) == expected);
        CHECK(cvk_test::to_rows(cvk::box_convert(map, from, to).view()) == expected);
        CHECK(cvk_test::to_rows(cvk::box_convert(big.block(2, 1, n, 4), from, to).view()) ==
              expected);
      }
    }
  }
  SECTION("box_convert into Eigen outputs, temporaries included") {
    const auto expected =
        cvk_test::reference_convert(boxes, cvk::box_format::xyxy, cvk::box_format::cxcywh);
    std::vector<T> buffer(static_cast<std::size_t>(4 * n), T(0));
    cvk::box_convert(cm, cvk::box_format::xyxy, cvk::box_format::cxcywh,
                     Eigen::Map<boxes_row_major<T>>(buffer.data(), n, 4));
    CHECK(rows_of(Eigen::Map<const boxes_row_major<T>>(buffer.data(), n, 4)) == expected);

    col_major<T> target = col_major<T>::Zero(n + 2, 6);
    cvk::box_convert(rm, cvk::box_format::xyxy, cvk::box_format::cxcywh, target.block(1, 2, n, 4));
    CHECK(rows_of(target.block(1, 2, n, 4)) == expected);
    CHECK(target.col(0).isZero());
    CHECK(target.row(0).isZero());

    boxes_col_major<T> out(n, 4);
    cvk::box_convert(map, cvk::box_format::xyxy, cvk::box_format::cxcywh, out);
    CHECK(rows_of(out) == expected);

    // In place, through a Ref.
    boxes_row_major<T> in_place = rm;
    Eigen::Ref<boxes_row_major<T>> ref(in_place);
    cvk::box_convert(ref, cvk::box_format::xyxy, cvk::box_format::cxcywh, ref);
    CHECK(rows_of(in_place) == expected);
  }
  SECTION("a single box as a fixed-size vector") {
    const Eigen::Matrix<T, 1, 4> row(T(1), T(2), T(4), T(7));
    const Eigen::Matrix<T, 4, 1> col(T(1), T(2), T(4), T(7));
    CHECK(cvk::box_area(row) == T(15));
    CHECK(cvk::box_area(col, cvk::box_format::xywh) == T(28));
    const auto converted = cvk::box_convert(row, cvk::box_format::xyxy, cvk::box_format::xywh);
    CHECK((converted == std::array<T, 4>{T(1), T(2), T(3), T(5)}));
  }
}

TEMPLATE_TEST_CASE("eigen: wrong shapes raise cvk::shape_error naming the argument",
                   "[adapt][eigen]", float, double) {
  using T = TestType;
  const col_major<T> seven_by_three = col_major<T>::Zero(7, 3);
  CHECK_THROWS_AS(static_cast<void>(cvk::box_area(seven_by_three)), cvk::shape_error);
  CHECK_THROWS_WITH(static_cast<void>(cvk::box_area(seven_by_three)),
                    "box_area: boxes must be N×4, got 7×3");
  CHECK_THROWS_WITH(static_cast<void>(cvk::box_area(seven_by_three.transpose())),
                    "box_area: boxes must be N×4, got 3×7");
  const boxes_row_major<T> five = boxes_row_major<T>::Zero(5, 4);
  vector_x<T> six(6);
  CHECK_THROWS_AS(cvk::box_area(five, six), cvk::shape_error);
  CHECK_THROWS_WITH(cvk::box_area(five, six), "box_area: out must be 5, got 6");
  col_major<T> five_by_three(5, 3);
  CHECK_THROWS_WITH(
      cvk::box_convert(five, cvk::box_format::xyxy, cvk::box_format::xywh, five_by_three),
      "box_convert: out must be 5×4, got 5×3");
  CHECK_THROWS_WITH(static_cast<void>(cvk::box_convert(seven_by_three, cvk::box_format::xyxy,
                                                       cvk::box_format::xywh)),
                    "box_convert: boxes must be N×4, got 7×3");
}

#endif  // CVK_TEST_HAS_EIGEN
