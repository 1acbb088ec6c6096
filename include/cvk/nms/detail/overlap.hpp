// cvk — computer-vision kernels, header-only C++20.
// The pair overlaps of the NMS operators, one function per upstream convention, each written
// with the peer's operations in the peer's order (argument order of max/min included, which
// decides NaN results; the area product in its own statement) so that cvk's decisions and scores
// are the peer's bit for bit. Kernels are compiled without floating-point contraction
// (CVK_KERNEL_BEGIN), so no product is fused into a sum behind the formula's back.
//
//   torchvision_iou          torchvision nms (csrc/ops/cpu/nms_kernel.cpp); also mmcv
//                            softnms_cpu with offset 0, OpenCV NMSBoxes, and ONNX Runtime's
//                            suppress_by_iou on its own box reading (onnx.hpp proves the
//                            decisions equal for thresholds in [0, 1])
//   diou_nms_criterion       DIoU-NMS (Zheng et al., AAAI 2020; darknet's beta_nms)
//   cluster_centre_distance  Zzh-tju/CIoU box_utils `diou` / `distance` (Cluster-NMS)
//   detectron_iou            Detectron utils/cython_bbox.pyx bbox_overlaps (box voting)
//   kl_loss_iou              KL-Loss py_cpu_nms.py soft (numpy; var voting)
//   paddle_iou, paddle_area  PaddlePaddle matrix_nms JaccardOverlap and BBoxArea
//   pycocotools_iou          pycocotools maskApi.c bbIou (COCO evaluation; crowd ground truth)
// SPDX-License-Identifier: MIT
#pragma once

#include <array>
#include <cmath>

#include "../../core/config.hpp"
#include "box_grid.hpp"

CVK_BEGIN_NAMESPACE
CVK_KERNEL_BEGIN
namespace detail {

// ---------------------------------------------------------------------------------------------
// torchvision

/// One candidate: xyxy corners and torchvision's area (x2 - x1) * (y2 - y1), unclamped.
template <class R>
struct nms_box {  // trivial (no member initialisers): it lives in scratch memory
  R x1;
  R y1;
  R x2;
  R y2;
  R area;
};

/// Corners → candidate (the area product in its own statement, as torchvision's box_area).
template <class R>
constexpr nms_box<R> make_nms_box(R x1, R y1, R x2, R y2) noexcept {
  const R w = x2 - x1;
  const R h = y2 - y1;
  const R area = w * h;
  return {x1, y1, x2, y2, area};
}

/// The IoU of kept box (kx1, ky1, kx2, ky2, karea) and candidate `j`: torchvision's per-pair
/// code, same operations in the same order (std::max / std::min argument order included). A zero
/// union gives 0/0 = NaN, and NaN compares false: such a pair never suppresses.
template <class R>
inline R torchvision_iou(R kx1, R ky1, R kx2, R ky2, R karea, const nms_box<R>& j) noexcept {
  const R xx1 = max_of(kx1, j.x1);
  const R yy1 = max_of(ky1, j.y1);
  const R xx2 = min_of(kx2, j.x2);
  const R yy2 = min_of(ky2, j.y2);
  const R w = max_of(R(0), xx2 - xx1);
  const R h = max_of(R(0), yy2 - yy1);
  const R inter = w * h;
  const R sum = karea + j.area;
  const R uni = sum - inter;
  return inter / uni;
}

/// torchvision_iou of two candidates, the earlier (kept, selected) box first.
template <class R>
inline R torchvision_iou(const nms_box<R>& i, const nms_box<R>& j) noexcept {
  return torchvision_iou(i.x1, i.y1, i.x2, i.y2, i.area, j);
}

// ---------------------------------------------------------------------------------------------
// DIoU (Zheng et al.) and the Cluster-NMS repository

/// DIoU-NMS's criterion: IoU − (ρ²/c²)^β, ρ the distance of the centres and c the diagonal of
/// the smallest enclosing box; the penalty is 0 when c = 0 (two identical points). β = 1 is the
/// paper's criterion (UnitBeta: no pow), darknet's beta_nms is 0.6. The IoU is torchvision_iou.
template <class R, bool UnitBeta>
inline R diou_nms_criterion(R kx1, R ky1, R kx2, R ky2, R karea, const nms_box<R>& j,
                            R beta) noexcept {
  const R iou = torchvision_iou(kx1, ky1, kx2, ky2, karea, j);
  const R dx = (kx1 + kx2) - (j.x1 + j.x2);  // 2 × centre distance
  const R dy = (ky1 + ky2) - (j.y1 + j.y2);
  const R cw = max_of(kx2, j.x2) - min_of(kx1, j.x1);
  const R ch = max_of(ky2, j.y2) - min_of(ky1, j.y1);
  const R c2 = R(4) * (cw * cw + ch * ch);
  const R rho2 = dx * dx + dy * dy;
  R penalty = c2 > R(0) ? rho2 / c2 : R(0);
  if constexpr (!UnitBeta) penalty = std::pow(penalty, beta);
  return iou - penalty;
}

/// The normalized squared centre distance of the CIoU repository's `diou` and `distance`
/// (Cluster-NMS): ρ² / (c² + 1e-7), ρ the distance between the centres, c the diagonal of the
/// enclosing box, in the repository's operation order.
template <class R>
inline R cluster_centre_distance(const nms_box<R>& a, const nms_box<R>& b) noexcept {
  const R ax = (a.x2 + a.x1) / R(2);
  const R ay = (a.y2 + a.y1) / R(2);
  const R bx = (b.x2 + b.x1) / R(2);
  const R by = (b.y2 + b.y1) / R(2);
  const R dx = bx - ax;
  const R dy = by - ay;
  const R rho2 = dx * dx + dy * dy;
  const R cw = max_of(a.x2, b.x2) - min_of(a.x1, b.x1);
  const R ch = max_of(a.y2, b.y2) - min_of(a.y1, b.y1);
  const R c2 = cw * cw + ch * ch;
  return rho2 / (c2 + static_cast<R>(1e-7));
}

// ---------------------------------------------------------------------------------------------
// Detectron and KL-Loss (box and variance voting)

/// One box as corners plus its area in the chosen convention, ((x2 - x1) + one)·((y2 - y1) + one)
/// (one = 1: the pixel-inclusive "+1" of Detectron and KL-Loss).
template <class R>
struct voting_box {
  R x1{};
  R y1{};
  R x2{};
  R y2{};
  R area{};
};

template <class R>
constexpr voting_box<R> make_voting_box(const std::array<R, 4>& c, R one) noexcept {
  const R w = (c[2] - c[0]) + one;
  const R h = (c[3] - c[1]) + one;
  const R area = w * h;
  return {c[0], c[1], c[2], c[3], area};
}

/// Detectron's bbox_overlaps (utils/cython_bbox.pyx) for one pair, `top` first: 0 unless the
/// intersection has a positive width and height, else inter / (area_top + area_other - inter).
template <class R>
inline R detectron_iou(const voting_box<R>& top, const voting_box<R>& other, R one) noexcept {
  const R right = other.x2 < top.x2 ? other.x2 : top.x2;
  const R left = top.x1 < other.x1 ? other.x1 : top.x1;
  const R iw = (right - left) + one;
  if (!(iw > R(0))) return R(0);
  const R bottom = other.y2 < top.y2 ? other.y2 : top.y2;
  const R upper = top.y1 < other.y1 ? other.y1 : top.y1;
  const R ih = (bottom - upper) + one;
  if (!(ih > R(0))) return R(0);
  const R inter = iw * ih;
  const R sum = top.area + other.area;
  const R ua = sum - inter;
  return inter / ua;
}

/// KL-Loss's IoU (py_cpu_nms.py soft, numpy): w = max(0, min(x2) - max(x1) + one) (NaN
/// propagates), inter = w·h, inter / (area_i + area_j - inter). 0/0 and NaN stay NaN.
template <class R>
inline R kl_loss_iou(const voting_box<R>& i, const voting_box<R>& j, R one) noexcept {
  const R xx1 = i.x1 < j.x1 ? j.x1 : i.x1;
  const R yy1 = i.y1 < j.y1 ? j.y1 : i.y1;
  const R xx2 = j.x2 < i.x2 ? j.x2 : i.x2;
  const R yy2 = j.y2 < i.y2 ? j.y2 : i.y2;
  const R wv = (xx2 - xx1) + one;
  const R hv = (yy2 - yy1) + one;
  const R w = wv < R(0) ? R(0) : wv;
  const R h = hv < R(0) ? R(0) : hv;
  const R inter = w * h;
  const R sum = i.area + j.area;
  const R uni = sum - inter;
  return inter / uni;
}

// ---------------------------------------------------------------------------------------------
// PaddlePaddle (matrix_nms)

/// Paddle's JaccardOverlap(box1 = the row box, box2 = a column box), same operations in the
/// same order: 0 when the boxes are apart (strict comparisons: touching boxes are not apart),
/// else inter / (area1 + area2 - inter) with inter = (min x2 - max x1 + norm)·(...), norm = 1
/// for the pixel-inclusive convention (Paddle normalized = false).
template <class R>
inline R paddle_iou(R ax1, R ay1, R ax2, R ay2, R aarea, R bx1, R by1, R bx2, R by2, R barea,
                    R norm) noexcept {
  const bool apart = (bx1 > ax2) | (bx2 < ax1) | (by1 > ay2) | (by2 < ay1);
  const R ix1 = max_of(ax1, bx1);
  const R iy1 = max_of(ay1, by1);
  const R ix2 = min_of(ax2, bx2);
  const R iy2 = min_of(ay2, by2);
  const R iw = ix2 - ix1 + norm;
  const R ih = iy2 - iy1 + norm;
  const R inter = iw * ih;
  const R sum = aarea + barea;
  const R iou = inter / (sum - inter);
  return apart ? R(0) : iou;
}

/// Paddle's BBoxArea: 0 for an inverted box, else w·h or (w + 1)·(h + 1) (normalized false).
template <class R>
inline R paddle_area(R x1, R y1, R x2, R y2, bool normalized) noexcept {
  if (x2 < x1 || y2 < y1) return R(0);
  const R w = x2 - x1;
  const R h = y2 - y1;
  if (normalized) return w * h;
  return (w + R(1)) * (h + R(1));
}

// ---------------------------------------------------------------------------------------------
// pycocotools (COCO evaluation)

/// pycocotools' bbIou (maskApi.c) of detection d and ground truth g: same operations in the
/// same order; a crowd ground truth divides by the detection's area. Box: any type with double
/// members x, y, w, h (COCO's xywh) and area (w·h).
template <class Box>
inline double pycocotools_iou(const Box& d, const Box& g, bool crowd) noexcept {
  const double w = std::fmin(d.w + d.x, g.w + g.x) - std::fmax(d.x, g.x);
  if (w <= 0) return 0;
  const double h = std::fmin(d.h + d.y, g.h + g.y) - std::fmax(d.y, g.y);
  if (h <= 0) return 0;
  const double inter = w * h;
  const double sum = d.area + g.area;
  const double uni = crowd ? d.area : sum - inter;
  return inter / uni;
}

}  // namespace detail
CVK_KERNEL_END
CVK_END_NAMESPACE
