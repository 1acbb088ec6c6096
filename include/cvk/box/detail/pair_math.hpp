// cvk — computer-vision kernels, header-only C++20.
// The per-pair formulas of the IoU family (IoU, IoA, GIoU, DIoU, CIoU) on prepared boxes, shared
// by the pairwise, aligned and single-box entry points so that all give identical values.
// Operation order follows torchvision 0.14 (ops/boxes.py) so float results match it bit for bit.
// SPDX-License-Identifier: MIT
#pragma once

#include <array>
#include <cmath>
#include <cstddef>
#include <numbers>

#include "../../core/config.hpp"

CVK_BEGIN_NAMESPACE
CVK_KERNEL_BEGIN
namespace detail {

/// Which member of the IoU family a kernel computes.
enum class iou_kind { iou, ioa, giou, diou, ciou };

/// One axis-aligned box in Dim dimensions, prepared for the pair formulas: corners, the volume
/// (product of the unclamped sides, as torchvision's box_area), and for 2-D boxes the centre and
/// atan(w / h) used by DIoU/CIoU.
template <class R, std::size_t Dim>
struct prepared_box {
  std::array<R, Dim> lo{};
  std::array<R, Dim> hi{};
  R volume{};
  std::array<R, Dim> centre{};
  R aspect_angle{};  // atan(w / h); 0 when w == h == 0 (torchvision gives NaN there)
};

/// Corners (lo[0..Dim), hi[0..Dim)) → prepared box.
template <class R, std::size_t Dim, bool Aspect = true>
constexpr prepared_box<R, Dim> prepare_box(const std::array<R, 2 * Dim>& corners) noexcept {
  prepared_box<R, Dim> b;
  R volume = R(1);
  CVK_UNROLL
  for (std::size_t d = 0; d < Dim; ++d) {
    b.lo[d] = corners[d];
    b.hi[d] = corners[Dim + d];
    const R side = b.hi[d] - b.lo[d];
    volume = d == 0 ? side : volume * side;
    b.centre[d] = (b.lo[d] + b.hi[d]) / R(2);
  }
  b.volume = volume;
  if constexpr (Dim == 2 && Aspect) {  // atan: only CIoU reads it
    const R w = b.hi[0] - b.lo[0];
    const R h = b.hi[1] - b.lo[1];
    const R ratio = w / h;
    b.aspect_angle = ratio == ratio ? std::atan(ratio) : R(0);
  }
  return b;
}

/// num / den, or 0 when den <= 0; NaN when den is NaN.
template <class R>
constexpr R ratio_or_zero(R num, R den) noexcept {
  const R q = num / den;
  return den <= R(0) ? R(0) : q;
}

/// IoU = inter / union; 0 when union <= 0 (degenerate or inverted boxes), NaN when any
/// coordinate is NaN or infinite. `inter_out` and `union_out` receive the two terms.
template <class R, std::size_t Dim>
constexpr R pair_iou(const prepared_box<R, Dim>& a, const prepared_box<R, Dim>& b, R& inter_out,
                     R& union_out) noexcept {
  R inter = R(1);
  CVK_UNROLL
  for (std::size_t d = 0; d < Dim; ++d) {
    const R lo = a.lo[d] > b.lo[d] ? a.lo[d] : b.lo[d];
    const R hi = a.hi[d] < b.hi[d] ? a.hi[d] : b.hi[d];
    const R diff = hi - lo;
    const R side = diff < R(0) ? R(0) : diff;  // clamp(min=0); NaN stays NaN
    inter = d == 0 ? side : inter * side;
  }
  const R sum = a.volume + b.volume;
  const R uni = sum - inter;
  inter_out = inter;
  union_out = uni;
  return ratio_or_zero(inter, uni);
}

/// Volume of the smallest box enclosing a and b, and its squared diagonal.
template <class R, std::size_t Dim>
constexpr void enclosing(const prepared_box<R, Dim>& a, const prepared_box<R, Dim>& b, R& volume,
                         R& diagonal2) noexcept {
  R v = R(1);
  R d2 = R(0);
  CVK_UNROLL
  for (std::size_t d = 0; d < Dim; ++d) {
    const R lo = a.lo[d] < b.lo[d] ? a.lo[d] : b.lo[d];
    const R hi = a.hi[d] > b.hi[d] ? a.hi[d] : b.hi[d];
    const R diff = hi - lo;
    const R side = diff < R(0) ? R(0) : diff;  // clamp(min=0); NaN stays NaN
    v = d == 0 ? side : v * side;
    const R sq = side * side;
    d2 = d == 0 ? sq : d2 + sq;
  }
  volume = v;
  diagonal2 = d2;
}

/// The requested member of the IoU family for one pair. `eps` is the DIoU/CIoU guard (1e-7 in
/// torchvision).
template <iou_kind Kind, class R, std::size_t Dim>
constexpr R pair_metric(const prepared_box<R, Dim>& a, const prepared_box<R, Dim>& b,
                        R eps) noexcept {
  R inter{};
  R uni{};
  const R iou = pair_iou(a, b, inter, uni);
  if constexpr (Kind == iou_kind::iou) {
    (void)eps;
    return iou;
  } else if constexpr (Kind == iou_kind::ioa) {
    (void)eps;
    // |A| <= 0 gives 0, but not when the intersection is NaN (a NaN coordinate in b): the NaN
    // policy of the family wins over the degenerate-box rule, as in IoU where the union is NaN.
    const R ioa = ratio_or_zero(inter, a.volume);
    return inter != inter ? inter : ioa;
  } else if constexpr (Kind == iou_kind::giou) {
    (void)eps;
    R hull{};
    R diagonal2{};
    enclosing(a, b, hull, diagonal2);
    const R gap = hull - uni;
    const R penalty = ratio_or_zero(gap, hull);
    return iou - penalty;
  } else {
    static_assert(Dim == 2, "cvk: DIoU and CIoU are defined for 2-D boxes");
    R hull{};
    R diagonal2{};
    enclosing(a, b, hull, diagonal2);
    const R diag = diagonal2 + eps;
    const R dx = a.centre[0] - b.centre[0];
    const R dy = a.centre[1] - b.centre[1];
    const R dx2 = dx * dx;
    const R dy2 = dy * dy;
    const R centre2 = dx2 + dy2;
    // c² + eps = 0 (eps = 0 and an enclosing box of one point) gives no penalty, as GIoU's
    // empty enclosing box does; torchvision divides 0 by 0
    const R diou = iou - ratio_or_zero(centre2, diag);
    if constexpr (Kind == iou_kind::diou) {
      return diou;
    } else {
      // CIoU (Zheng et al. 2020, eq. 9-11) as torchvision: v = 4/π² (atan(wa/ha) - atan(wb/hb))²,
      // α = v / (1 - IoU + v + eps), CIoU = DIoU - α v.
      const R angle = a.aspect_angle - b.aspect_angle;
      const R angle2 = angle * angle;
      const R v = static_cast<R>(4.0 / (std::numbers::pi * std::numbers::pi)) * angle2;
      const R denominator = ((R(1) - iou) + v) + eps;
      // identical boxes with eps = 0 make the denominator 0 (v = 0): α·v is then 0, not NaN
      const R alpha = ratio_or_zero(v, denominator);
      const R penalty = alpha * v;
      return diou - penalty;
    }
  }
}

}  // namespace detail
CVK_KERNEL_END
CVK_END_NAMESPACE
