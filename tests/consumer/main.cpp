// cvk — computer-vision kernels, header-only C++20.
// Consumer of an installed cvk (find_package(cvk), cvk::eigen, cvk::xtensor): the same boxes in
// an Eigen matrix, an xtensor and a std::vector give identical areas, equal to hand-computed ones.
// SPDX-License-Identifier: MIT
#include <array>
#include <cstddef>
#include <cstdio>
#include <vector>

#include <cvk/adapt/eigen.hpp>
#include <cvk/adapt/xtensor.hpp>
#include <cvk/cvk.hpp>

int main() {
  // (x1, y1, x2, y2); the areas are exact in float.
  const std::vector<std::array<float, 4>> boxes{
      {0.0f, 0.0f, 2.0f, 3.0f},     // 2 * 3
      {1.0f, 1.0f, 3.5f, 5.0f},     // 2.5 * 4
      {-4.0f, 2.0f, 6.0f, 2.5f},    // 10 * 0.5
      {10.0f, 10.0f, 10.0f, 20.0f}  // zero width
  };
  const std::array<float, 4> expected{6.0f, 10.0f, 5.0f, 0.0f};
  const auto n = static_cast<Eigen::Index>(boxes.size());

  Eigen::Matrix<float, Eigen::Dynamic, 4, Eigen::RowMajor> eigen_boxes(n, 4);
  xt::xtensor<float, 2> xtensor_boxes = xt::xtensor<float, 2>::from_shape({boxes.size(), 4});
  for (std::size_t i = 0; i < boxes.size(); ++i) {
    for (std::size_t k = 0; k < 4; ++k) {
      eigen_boxes(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(k)) = boxes[i][k];
      xtensor_boxes(i, k) = boxes[i][k];
    }
  }

  const auto from_std = cvk::box_area(boxes);
  const auto from_eigen = cvk::box_area(eigen_boxes);
  const auto from_xtensor = cvk::box_area(xtensor_boxes);

  int failures = 0;
  for (std::size_t i = 0; i < boxes.size(); ++i) {
    const auto index = static_cast<cvk::index_t>(i);
    const float s = from_std(index);
    const float e = from_eigen(index);
    const float x = from_xtensor(index);
    std::printf("box %zu: std %g, Eigen %g, xtensor %g, expected %g\n", i, static_cast<double>(s),
                static_cast<double>(e), static_cast<double>(x), static_cast<double>(expected[i]));
    if (s != expected[i] || e != expected[i] || x != expected[i]) ++failures;
  }
  if (from_std.size() != n || from_eigen.size() != n || from_xtensor.size() != n) ++failures;
  std::printf(failures == 0 ? "cvk consumer: OK\n" : "cvk consumer: MISMATCH\n");
  return failures == 0 ? 0 : 1;
}
