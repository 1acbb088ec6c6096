// cvk — computer-vision kernels, header-only C++20.
// Quickstart (the README's first example): boxes kept in a plain std::vector, converted to
// another format and measured without copying them into a tensor type.
// SPDX-License-Identifier: MIT
#include <array>
#include <cstdio>
#include <cvk/cvk.hpp>
#include <vector>

int main() {
  // Two boxes as (x1, y1, x2, y2); any N×4 tensor would do.
  const std::vector<std::array<float, 4>> boxes = {{10, 20, 50, 80}, {0, 0, 100, 100}};

  const auto centred = cvk::box_convert(boxes, cvk::box_format::xyxy, cvk::box_format::cxcywh);
  const auto areas = cvk::box_area(boxes);  // a cvk::tensor<float, 1> of 2 areas

  for (std::size_t i = 0; i < boxes.size(); ++i) {
    std::printf("box %zu: cx=%g cy=%g w=%g h=%g area=%g\n", i, centred(i, 0), centred(i, 1),
                centred(i, 2), centred(i, 3), areas(i));
  }
}
