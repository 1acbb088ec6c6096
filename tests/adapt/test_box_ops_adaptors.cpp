// cvk — computer-vision kernels, header-only C++20.
// The IoU family, the box coder and the losses' inputs through the Eigen and xtensor adaptors:
// the same results as on std::vector<std::array<T, 4>>, including column-major and strided
// inputs and outputs written into Eigen / xtensor containers.
// SPDX-License-Identifier: MIT
#include <array>
#include <catch2/catch.hpp>
#include <cstddef>
#include <vector>

#include <cvk/box/coder.hpp>
#include <cvk/box/iou.hpp>
#include <cvk/core.hpp>

#include "support/random_boxes.hpp"

#if defined(CVK_TEST_HAS_EIGEN)
#  include <Eigen/Core>
#  include <cvk/adapt/eigen.hpp>
#endif
#if defined(CVK_TEST_HAS_XTENSOR)
#  include <cvk/adapt/xtensor.hpp>
#  if __has_include(<xtensor/containers/xtensor.hpp>)
#    include <xtensor/containers/xarray.hpp>
#    include <xtensor/containers/xtensor.hpp>
#  else
#    include <xtensor/xarray.hpp>
#    include <xtensor/xtensor.hpp>
#  endif
#endif

namespace {

template <class T>
std::vector<std::array<T, 4>> boxes_for_test(std::size_t n, std::uint64_t seed) {
  cvk::rng gen(seed);
  return cvk_test::random_xyxy_boxes<T>(gen, n);
}

}  // namespace

#if defined(CVK_TEST_HAS_EIGEN)
TEMPLATE_TEST_CASE("IoU family and box coder over Eigen matrices", "[adapt][eigen][iou]", float,
                   double) {
  using T = TestType;
  const auto a = boxes_for_test<T>(40, 1);
  const auto b = boxes_for_test<T>(25, 2);
  using RowMajor = Eigen::Matrix<T, Eigen::Dynamic, 4, Eigen::RowMajor>;
  using ColMajor = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor>;
  RowMajor ar(40, 4);
  ColMajor bc(25, 4);
  for (Eigen::Index i = 0; i < 40; ++i) {
    for (Eigen::Index k = 0; k < 4; ++k)
      ar(i, k) = a[static_cast<std::size_t>(i)][static_cast<std::size_t>(k)];
  }
  for (Eigen::Index i = 0; i < 25; ++i) {
    for (Eigen::Index k = 0; k < 4; ++k)
      bc(i, k) = b[static_cast<std::size_t>(i)][static_cast<std::size_t>(k)];
  }
  const auto expected = cvk::generalized_box_iou(a, b);
  CHECK(cvk::generalized_box_iou(ar, bc) == expected);
  // Output into a column-major Eigen matrix and into a block of a bigger one.
  ColMajor out(40, 25);
  cvk::generalized_box_iou(ar, bc, out);
  ColMajor big = ColMajor::Constant(50, 30, T(7));
  cvk::generalized_box_iou(ar, bc, big.block(5, 3, 40, 25));
  for (Eigen::Index i = 0; i < 40; ++i) {
    for (Eigen::Index j = 0; j < 25; ++j) {
      CHECK(out(i, j) == expected(i, j));
      CHECK(big(i + 5, j + 3) == expected(i, j));
    }
  }
  CHECK(big(0, 0) == T(7));
  // A block of rows as input (outer stride), aligned form into an Eigen vector.
  const auto first = ar.topRows(25);
  Eigen::Matrix<T, Eigen::Dynamic, 1> aligned(25);
  cvk::box_iou_aligned(first, bc, aligned);
  const std::vector<std::array<T, 4>> a25(a.begin(), a.begin() + 25);
  const auto want = cvk::box_iou_aligned(a25, b);
  for (Eigen::Index i = 0; i < 25; ++i) CHECK(aligned(i) == want(i));
  // The box coder over Eigen inputs.
  const cvk::box_coder coder{{10, 10, 5, 5}};
  const auto deltas = coder.encode(bc, first);
  CHECK(deltas == coder.encode(b, a25));
}
#endif

#if defined(CVK_TEST_HAS_XTENSOR)
TEMPLATE_TEST_CASE("IoU family over xtensor containers", "[adapt][xtensor][iou]", float, double) {
  using T = TestType;
  const auto a = boxes_for_test<T>(30, 3);
  const auto b = boxes_for_test<T>(20, 4);
  xt::xtensor<T, 2> xa = xt::zeros<T>({std::size_t{30}, std::size_t{4}});
  xt::xarray<T> xb = xt::zeros<T>({std::size_t{20}, std::size_t{4}});
  for (std::size_t i = 0; i < 30; ++i) {
    for (std::size_t k = 0; k < 4; ++k) xa(i, k) = a[i][k];
  }
  for (std::size_t i = 0; i < 20; ++i) {
    for (std::size_t k = 0; k < 4; ++k) xb(i, k) = b[i][k];
  }
  const auto expected = cvk::complete_box_iou(a, b);
  CHECK(cvk::complete_box_iou(xa, xb) == expected);
  xt::xtensor<T, 2> out = xt::zeros<T>({std::size_t{30}, std::size_t{20}});
  cvk::complete_box_iou(xa, xb, out);
  for (std::size_t i = 0; i < 30; ++i) {
    for (std::size_t j = 0; j < 20; ++j)
      CHECK(out(i, j) == expected(static_cast<cvk::index_t>(i), static_cast<cvk::index_t>(j)));
  }
  // An xarray of the wrong rank is rejected at run time with the argument's name.
  xt::xarray<T> flat = xt::zeros<T>({std::size_t{8}});
  CHECK_THROWS_WITH(cvk::box_iou(flat, xa), "box_iou: boxes1 must have rank 2, got rank 1 (8)");
}
#endif
