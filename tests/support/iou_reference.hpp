// cvk — computer-vision kernels, header-only C++20.
// Test support: a plain reference of the IoU family, one pair at a time in long double, written
// from the definitions and cvk's documented degenerate-box policy (no shared code with cvk).
// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <numbers>
#include <vector>

namespace cvk_test::reference {

enum class iou_metric { iou, ioa, giou, diou, ciou };

/// The metric between boxes a and b given as corners (lo[0..D), hi[0..D)).
template <class A, class B>
long double iou_pair(iou_metric metric, const A& a, const B& b, std::size_t dim,
                     long double eps = 1e-7L) {
  long double inter = 1, vol_a = 1, vol_b = 1, hull = 1, diag2 = 0, centre2 = 0;
  for (std::size_t d = 0; d < dim; ++d) {
    const long double alo = static_cast<long double>(a[d]),
                      ahi = static_cast<long double>(a[dim + d]);
    const long double blo = static_cast<long double>(b[d]),
                      bhi = static_cast<long double>(b[dim + d]);
    inter *= std::max(0.0L, std::min(ahi, bhi) - std::max(alo, blo));
    vol_a *= ahi - alo;
    vol_b *= bhi - blo;
    const long double side = std::max(0.0L, std::max(ahi, bhi) - std::min(alo, blo));
    hull *= side;
    diag2 += side * side;
    const long double dc = (alo + ahi) / 2 - (blo + bhi) / 2;
    centre2 += dc * dc;
  }
  const long double uni = vol_a + vol_b - inter;
  const long double iou = uni <= 0 ? 0 : inter / uni;
  switch (metric) {
    case iou_metric::iou:
      return iou;
    case iou_metric::ioa:
      return vol_a <= 0 ? 0 : inter / vol_a;
    case iou_metric::giou:
      return hull <= 0 ? iou : iou - (hull - uni) / hull;
    case iou_metric::diou:
      return diag2 + eps <= 0 ? iou : iou - centre2 / (diag2 + eps);
    case iou_metric::ciou: {
      const auto angle = [](long double w, long double h) {
        return (w == 0 && h == 0) ? 0.0L : std::atan(w / h);
      };
      const long double wa = static_cast<long double>(a[2]) - static_cast<long double>(a[0]);
      const long double ha = static_cast<long double>(a[3]) - static_cast<long double>(a[1]);
      const long double wb = static_cast<long double>(b[2]) - static_cast<long double>(b[0]);
      const long double hb = static_cast<long double>(b[3]) - static_cast<long double>(b[1]);
      const long double da = angle(wa, ha) - angle(wb, hb);
      const long double v =
          4 / (std::numbers::pi_v<long double> * std::numbers::pi_v<long double>)*da * da;
      const long double alpha = (1 - iou + v + eps) <= 0 ? 0 : v / (1 - iou + v + eps);
      const long double diou = diag2 + eps <= 0 ? iou : iou - centre2 / (diag2 + eps);
      return diou - alpha * v;
    }
  }
  return iou;
}

/// The N×M matrix of the metric, row-major.
template <class Box>
std::vector<long double> iou_matrix(iou_metric metric, const std::vector<Box>& a,
                                    const std::vector<Box>& b, std::size_t dim) {
  std::vector<long double> out;
  for (const auto& x : a) {
    for (const auto& y : b) out.push_back(iou_pair(metric, x, y, dim));
  }
  return out;
}

}  // namespace cvk_test::reference
