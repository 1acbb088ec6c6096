// cvk — computer-vision kernels, header-only C++20.
// Box coding for detector regression heads: box_coder encodes ground-truth boxes as
// (dx, dy, dw, dh) deltas relative to proposals and decodes deltas back to boxes (Faster R-CNN,
// Ren et al. 2015, eq. 2; torchvision.models.detection._utils.BoxCoder semantics), plus
// clip_boxes_to_image and remove_small_boxes (torchvision.ops).
// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "../core/as_view.hpp"
#include "../core/config.hpp"
#include "../core/tensor.hpp"
#include "../detail/checks.hpp"
#include "format.hpp"

CVK_BEGIN_NAMESPACE

CVK_KERNEL_BEGIN
namespace detail {

/// (dx, dy, dw, dh) of `reference` relative to `proposal`, both xyxy; operation order as
/// torchvision's encode_boxes.
template <class R>
std::array<R, 4> encode_box(const std::array<R, 4>& reference, const std::array<R, 4>& proposal,
                            const std::array<R, 4>& weights) noexcept {
  const R half = R(0.5);
  const R ex_w = proposal[2] - proposal[0];
  const R ex_h = proposal[3] - proposal[1];
  const R ex_half_w = half * ex_w;
  const R ex_half_h = half * ex_h;
  const R ex_cx = proposal[0] + ex_half_w;
  const R ex_cy = proposal[1] + ex_half_h;
  const R gt_w = reference[2] - reference[0];
  const R gt_h = reference[3] - reference[1];
  const R gt_half_w = half * gt_w;
  const R gt_half_h = half * gt_h;
  const R gt_cx = reference[0] + gt_half_w;
  const R gt_cy = reference[1] + gt_half_h;
  const R wdx = weights[0] * (gt_cx - ex_cx);
  const R wdy = weights[1] * (gt_cy - ex_cy);
  return {wdx / ex_w, wdy / ex_h, weights[2] * std::log(gt_w / ex_w),
          weights[3] * std::log(gt_h / ex_h)};
}

/// The box `deltas` describe relative to `box` (xyxy); operation order as torchvision's
/// decode_single: dw and dh are clamped to at most `clip` before exp.
template <class R>
std::array<R, 4> decode_box(const std::array<R, 4>& deltas, const std::array<R, 4>& box,
                            const std::array<R, 4>& weights, R clip) noexcept {
  const R half = R(0.5);
  const R w = box[2] - box[0];
  const R h = box[3] - box[1];
  const R half_w = half * w;
  const R half_h = half * h;
  const R cx = box[0] + half_w;
  const R cy = box[1] + half_h;
  const R dx = deltas[0] / weights[0];
  const R dy = deltas[1] / weights[1];
  R dw = deltas[2] / weights[2];
  R dh = deltas[3] / weights[3];
  dw = dw > clip ? clip : dw;  // torch.clamp(max=clip): NaN stays NaN
  dh = dh > clip ? clip : dh;
  const R dxw = dx * w;
  const R dyh = dy * h;
  const R pcx = dxw + cx;
  const R pcy = dyh + cy;
  const R pw = std::exp(dw) * w;
  const R ph = std::exp(dh) * h;
  const R hw = half * pw;
  const R hh = half * ph;
  return {pcx - hw, pcy - hh, pcx + hw, pcy + hh};
}

}  // namespace detail
CVK_KERNEL_END

/// Encodes boxes as regression deltas and decodes deltas back to boxes.
///
/// encode: dx = wx (gx − px) / pw, dy = wy (gy − py) / ph, dw = ww log(gw / pw),
///         dh = wh log(gh / ph), with (px, py, pw, ph) the proposal's centre and size and
///         (gx, gy, gw, gh) the reference (ground-truth) box's.
/// decode: the inverse, with dw and dh clamped to at most `clip` (log(1000/16), as torchvision)
///         so that exp cannot overflow; a clip that is NaN or infinite (which would clamp
///         nothing) raises cvk::invalid_argument.
/// Boxes are xyxy, continuous coordinates. Zero-width proposals give inf/NaN deltas, as in
/// torchvision (filter them with remove_small_boxes first).
struct box_coder {
  /// (wx, wy, ww, wh); torchvision's Faster R-CNN uses (10, 10, 5, 5), RPN (1, 1, 1, 1).
  std::array<double, 4> weights{1.0, 1.0, 1.0, 1.0};
  /// Upper bound of dw, dh before exp in decode.
  double clip = 4.135166556742356;  // log(1000 / 16)

  /// Deltas of `reference_boxes` relative to `proposals`, written into `out`.
  ///   reference_boxes  N×4 xyxy (the targets)
  ///   proposals        N×4 xyxy (anchors or proposals)
  ///   out              N×4 float/double: (dx, dy, dw, dh) per row
  /// Throws cvk::shape_error on other shapes. O(N).
  template <tensor_of_rank<2> Reference, tensor_of_rank<2> Proposals, tensor_of_rank<2> Out>
  void encode(const Reference& reference_boxes, const Proposals& proposals, Out&& out) const {
    const auto ref =
        detail::checked_view<2>(reference_boxes, "box_coder::encode", "reference_boxes");
    const auto prop = detail::checked_view<2>(proposals, "box_coder::encode", "proposals");
    detail::expect_shape(ref, {detail::any_extent, 4}, "box_coder::encode", "reference_boxes",
                         "N×4");
    detail::expect_shape(prop, {ref.extent(0), 4}, "box_coder::encode", "proposals",
                         (std::to_string(ref.extent(0)) + "×4 (as reference_boxes)").c_str());
    auto dst =
        detail::output_view<2>(std::forward<Out>(out), {ref.extent(0), 4}, "box_coder::encode");
    using R = real_t<std::common_type_t<typename decltype(ref)::value_type,
                                        typename decltype(prop)::value_type>>;
    using O = typename decltype(dst)::value_type;
    detail::assert_no_narrowing<O, R>();
    const auto w = weights_as<R>();
    for (index_t i = 0; i < ref.extent(0); ++i) {
      const auto d =
          detail::encode_box(detail::load_box<R>(ref, i), detail::load_box<R>(prop, i), w);
      for (index_t k = 0; k < 4; ++k) dst(i, k) = static_cast<O>(d[static_cast<std::size_t>(k)]);
    }
  }

  /// Deltas as a new N×4 tensor (see above).
  template <tensor_of_rank<2> Reference, tensor_of_rank<2> Proposals>
  [[nodiscard]] auto encode(const Reference& reference_boxes, const Proposals& proposals) const {
    const auto ref =
        detail::checked_view<2>(reference_boxes, "box_coder::encode", "reference_boxes");
    const auto prop = detail::checked_view<2>(proposals, "box_coder::encode", "proposals");
    using R = real_t<std::common_type_t<typename decltype(ref)::value_type,
                                        typename decltype(prop)::value_type>>;
    tensor<R, 2> result(ref.extent(0), index_t{4});
    encode(ref, prop, result);
    return result;
  }

  /// Boxes decoded from `deltas` relative to `boxes`, written into `out`.
  ///   deltas  N×(4·K): K sets of (dx, dy, dw, dh) per box (K = 1, or one per class)
  ///   boxes   N×4 xyxy (anchors or proposals)
  ///   out     N×(4·K) float/double: K decoded xyxy boxes per row
  /// Throws cvk::shape_error on other shapes. O(N·K).
  template <tensor_of_rank<2> Deltas, tensor_of_rank<2> Boxes, tensor_of_rank<2> Out>
  void decode(const Deltas& deltas, const Boxes& boxes, Out&& out) const {
    const auto del = detail::checked_view<2>(deltas, "box_coder::decode", "deltas");
    const auto box = detail::checked_view<2>(boxes, "box_coder::decode", "boxes");
    if (del.extent(1) % 4 != 0) {
      CVK_THROW(shape_error,
                "box_coder::decode: deltas must be N×(4·K), got " + del.shape_string());
    }
    detail::expect_shape(
        box, {del.extent(0), 4}, "box_coder::decode", "boxes",
        (std::to_string(del.extent(0)) + "×4 (one box per row of deltas)").c_str());
    auto dst = detail::output_view<2>(std::forward<Out>(out), {del.extent(0), del.extent(1)},
                                      "box_coder::decode");
    using R = real_t<
        std::common_type_t<typename decltype(del)::value_type, typename decltype(box)::value_type>>;
    using O = typename decltype(dst)::value_type;
    detail::assert_no_narrowing<O, R>();
    const auto w = weights_as<R>();
    const R c = clip_as<R>();
    const index_t sets = del.extent(1) / 4;
    for (index_t i = 0; i < del.extent(0); ++i) {
      const auto b = detail::load_box<R>(box, i);
      for (index_t s = 0; s < sets; ++s) {
        const std::array<R, 4> d{static_cast<R>(del(i, 4 * s)), static_cast<R>(del(i, 4 * s + 1)),
                                 static_cast<R>(del(i, 4 * s + 2)),
                                 static_cast<R>(del(i, 4 * s + 3))};
        const auto p = detail::decode_box(d, b, w, c);
        for (index_t k = 0; k < 4; ++k)
          dst(i, 4 * s + k) = static_cast<O>(p[static_cast<std::size_t>(k)]);
      }
    }
  }

  /// Decoded boxes as a new N×(4·K) tensor (see above).
  template <tensor_of_rank<2> Deltas, tensor_of_rank<2> Boxes>
  [[nodiscard]] auto decode(const Deltas& deltas, const Boxes& boxes) const {
    const auto del = detail::checked_view<2>(deltas, "box_coder::decode", "deltas");
    const auto box = detail::checked_view<2>(boxes, "box_coder::decode", "boxes");
    using R = real_t<
        std::common_type_t<typename decltype(del)::value_type, typename decltype(box)::value_type>>;
    tensor<R, 2> result(del.extent(0), del.extent(1));
    decode(del, box, result);
    return result;
  }

 private:
  template <class R>
  [[nodiscard]] std::array<R, 4> weights_as() const {
    for (const double w : weights) {
      if (!(w > 0.0) || !std::isfinite(w)) {
        CVK_THROW(invalid_argument,
                  "box_coder: weights must be positive and finite, got (" +
                      std::to_string(weights[0]) + ", " + std::to_string(weights[1]) + ", " +
                      std::to_string(weights[2]) + ", " + std::to_string(weights[3]) + ")");
      }
    }
    return {static_cast<R>(weights[0]), static_cast<R>(weights[1]), static_cast<R>(weights[2]),
            static_cast<R>(weights[3])};
  }

  /// clip in R. A NaN clip clamps nothing and an infinite one lets exp overflow (decoding
  /// to ±inf): both are rejected, as is a value beyond R's range.
  template <class R>
  [[nodiscard]] R clip_as() const {
    if (!std::isfinite(clip) ||
        std::fabs(clip) > static_cast<double>(std::numeric_limits<R>::max())) {
      CVK_THROW(invalid_argument, "box_coder::decode: clip must be a finite number, got " +
                                      detail::number_string(clip));
    }
    return static_cast<R>(clip);
  }
};

/// Clamps x coordinates to [0, width] and y coordinates to [0, height], written into `out`.
///   boxes  N×4 xyxy;  out  N×4 float/double (may be `boxes` itself)
/// NaN stays NaN (torch.clamp). Throws cvk::shape_error on other shapes and
/// cvk::invalid_argument on a negative or NaN size. O(N).
template <tensor_of_rank<2> Boxes, tensor_of_rank<2> Out>
void clip_boxes_to_image(const Boxes& boxes, double height, double width, Out&& out) {
  const auto in = detail::checked_view<2>(boxes, "clip_boxes_to_image", "boxes");
  detail::expect_shape(in, {detail::any_extent, 4}, "clip_boxes_to_image", "boxes", "N×4");
  if (!(height >= 0.0) || !(width >= 0.0)) {
    CVK_THROW(invalid_argument, "clip_boxes_to_image: height and width must be non-negative, got " +
                                    std::to_string(height) + " and " + std::to_string(width));
  }
  auto dst =
      detail::output_view<2>(std::forward<Out>(out), {in.extent(0), 4}, "clip_boxes_to_image");
  using R = real_t<typename decltype(in)::value_type>;
  using O = typename decltype(dst)::value_type;
  detail::assert_no_narrowing<O, R>();
  const std::array<R, 2> limit{static_cast<R>(width), static_cast<R>(height)};
  for (index_t i = 0; i < in.extent(0); ++i) {
    for (index_t k = 0; k < 4; ++k) {
      const R v = static_cast<R>(in(i, k));
      const R hi = limit[static_cast<std::size_t>(k % 2)];
      dst(i, k) = static_cast<O>(v < R(0) ? R(0) : (v > hi ? hi : v));
    }
  }
}

/// Clipped boxes as a new N×4 tensor (see above).
template <tensor_of_rank<2> Boxes>
[[nodiscard]] auto clip_boxes_to_image(const Boxes& boxes, double height, double width) {
  const auto in = detail::checked_view<2>(boxes, "clip_boxes_to_image", "boxes");
  tensor<real_t<typename decltype(in)::value_type>, 2> result(in.extent(0), index_t{4});
  clip_boxes_to_image(in, height, width, result);
  return result;
}

/// Indices (ascending) of the boxes whose width and height are both >= min_size.
///   boxes  N×4 xyxy  →  K indices, K <= N
/// Boxes with a NaN side are removed (the comparison is false), as torchvision. min_size is
/// compared in the box computation type R (float for float boxes). Throws cvk::shape_error when
/// boxes is not N×4, and cvk::invalid_argument when min_size is NaN or finite but beyond R's
/// range (e.g. 1e300 for float boxes; ±inf are accepted). O(N).
template <tensor_of_rank<2> Boxes>
[[nodiscard]] tensor<index_t, 1> remove_small_boxes(const Boxes& boxes, double min_size) {
  const auto in = detail::checked_view<2>(boxes, "remove_small_boxes", "boxes");
  detail::expect_shape(in, {detail::any_extent, 4}, "remove_small_boxes", "boxes", "N×4");
  if (std::isnan(min_size)) {  // every comparison would be false: every box removed
    CVK_THROW(invalid_argument, "remove_small_boxes: min_size must be a number, got nan");
  }
  using R = real_t<typename decltype(in)::value_type>;
  // As box_coder::clip_as, a finite value beyond R's range is rejected, not saturated: it would
  // round to ±inf and change decisions (a width of -inf passes -inf, not -1e300). ±inf
  // themselves are meaningful bounds and taken as given.
  if (std::isfinite(min_size) &&
      std::fabs(min_size) > static_cast<double>(std::numeric_limits<R>::max())) {
    CVK_THROW(invalid_argument,
              "remove_small_boxes: min_size must be representable in the box type, got " +
                  detail::number_string(min_size));
  }
  const auto m = static_cast<R>(min_size);
  // the kept indices may be as many as the boxes: a broadcast view of 2^40 rows is an error
  // up front, not a loop that ends in std::bad_alloc
  detail::check_allocation_size(in.extent(0), sizeof(index_t), "remove_small_boxes", "boxes", in);
  std::vector<index_t> keep;
  for (index_t i = 0; i < in.extent(0); ++i) {
    const R w = static_cast<R>(in(i, 2)) - static_cast<R>(in(i, 0));
    const R h = static_cast<R>(in(i, 3)) - static_cast<R>(in(i, 1));
    if (w >= m && h >= m) keep.push_back(i);
  }
  tensor<index_t, 1> result(static_cast<index_t>(keep.size()));
  std::copy(keep.begin(), keep.end(), result.begin());
  return result;
}

CVK_END_NAMESPACE
