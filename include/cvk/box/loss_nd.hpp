// cvk — computer-vision kernels, header-only C++20.
// The GIoU loss on N-dimensional axis-aligned boxes (Rezatofighi et al., CVPR 2019: GIoU is
// defined for shapes in Rⁿ; Algorithm 2 with volumes in place of areas), with its analytic
// gradient: generalized_box_iou_loss<Dim>, e.g. Dim = 3 for (x1, y1, z1, x2, y2, z2).
// SPDX-License-Identifier: MIT
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <type_traits>
#include <utility>

#include "../core/as_view.hpp"
#include "../core/config.hpp"
#include "../core/tensor.hpp"
#include "../detail/checks.hpp"
#include "loss.hpp"

CVK_BEGIN_NAMESPACE

CVK_KERNEL_BEGIN
namespace detail {

/// Loss and d loss / d pred for one pair of Dim-dimensional boxes (lo..., hi...), the N-D form of
/// the 2-D GIoU loss: inter masked (0 unless every side overlaps), volumes of unclamped sides,
/// IoU = inter / (union + eps), GIoU = IoU - (|C| - union) / (|C| + eps). Ties in min/max split
/// the gradient in half, as torch's autograd does in the 2-D loss.
template <std::size_t Dim, class R>
R giou_loss_nd_one(std::array<R, 2 * Dim> p, const std::array<R, 2 * Dim>& t, R eps, bool order,
                   R g, std::type_identity_t<std::array<R, 2 * Dim>>* grad) noexcept {
  const std::array<R, 2 * Dim> raw = p;
  if (order) {
    for (std::size_t d = 0; d < Dim; ++d) {
      const R lo = nan_min(raw[d], raw[Dim + d]);
      const R hi = nan_max(raw[d], raw[Dim + d]);
      p[d] = lo;
      p[Dim + d] = hi;
    }
  }
  std::array<R, Dim> side{};   // intersection sides
  std::array<R, Dim> width{};  // pred sides
  std::array<R, Dim> hull{};   // enclosing sides
  bool overlap = true;
  R inter = R(1);
  R vol_p = R(1);
  R vol_t = R(1);
  R vol_c = R(1);
  for (std::size_t d = 0; d < Dim; ++d) {
    const R lo = nan_max(p[d], t[d]);
    const R hi = nan_min(p[Dim + d], t[Dim + d]);
    overlap = overlap && hi > lo;
    side[d] = hi - lo;
    inter = d == 0 ? side[d] : inter * side[d];
    width[d] = p[Dim + d] - p[d];
    vol_p = d == 0 ? width[d] : vol_p * width[d];
    const R tw = t[Dim + d] - t[d];
    vol_t = d == 0 ? tw : vol_t * tw;
    hull[d] = nan_max(p[Dim + d], t[Dim + d]) - nan_min(p[d], t[d]);
    vol_c = d == 0 ? hull[d] : vol_c * hull[d];
  }
  if (!overlap) inter = R(0);
  const R vols = vol_p + vol_t;
  const R uni = vols - inter;
  const R a = uni + eps;
  const R b = vol_c + eps;
  const R iou = inter / a;
  const R gap = vol_c - uni;
  const R penalty = gap / b;
  const R loss = (R(1) - iou) + penalty;
  if (grad == nullptr) return loss;

  // dL/dI, dL/dVp, dL/dC (U = Vp + Vt - I).
  const R g_inter = g * ((R(1) / b - R(1) / a) - iou / a);
  const R g_vol_p = g * (iou / a - R(1) / b);
  const R g_hull = g * (a / (b * b));
  const auto product_without = [](const std::array<R, Dim>& values, std::size_t skip) {
    R result = R(1);
    for (std::size_t k = 0; k < Dim; ++k) {
      if (k != skip) result = result * values[k];
    }
    return result;
  };
  std::array<R, 2 * Dim> gp{};
  for (std::size_t d = 0; d < Dim; ++d) {
    const R d_inter = overlap ? g_inter * product_without(side, d) : R(0);
    const R d_vol = g_vol_p * product_without(width, d);
    const R d_hull = g_hull * product_without(hull, d);
    // hi: +side (through min(p_hi, t_hi)), +width, +hull (through max(p_hi, t_hi)).
    gp[Dim + d] = min_grad(p[Dim + d], t[Dim + d], d_inter) + d_vol +
                  max_grad(p[Dim + d], t[Dim + d], d_hull);
    // lo: -side (through max(p_lo, t_lo)), -width, -hull (through min(p_lo, t_lo)).
    gp[d] = -max_grad(p[d], t[d], d_inter) - d_vol - min_grad(p[d], t[d], d_hull);
  }
  if (order) {
    // Back through lo = min(raw_lo, raw_hi), hi = max(raw_lo, raw_hi).
    for (std::size_t d = 0; d < Dim; ++d) {
      const R a_lo = raw[d];
      const R a_hi = raw[Dim + d];
      const R from_lo = gp[d];
      const R from_hi = gp[Dim + d];
      gp[d] = min_grad(a_lo, a_hi, from_lo) + max_grad(a_lo, a_hi, from_hi);
      gp[Dim + d] = min_grad(a_hi, a_lo, from_lo) + max_grad(a_hi, a_lo, from_hi);
    }
  }
  *grad = gp;
  return loss;
}

}  // namespace detail
CVK_KERNEL_END

namespace detail {

template <std::size_t Dim, class P, class T>
auto checked_nd_loss_inputs(const P& pred, const T& target, const char* function) {
  constexpr auto cols = static_cast<index_t>(2 * Dim);
  const auto p = checked_view<2>(pred, function, "pred");
  const auto t = checked_view<2>(target, function, "target");
  const std::string pattern = "N×" + std::to_string(cols);
  expect_shape(p, {any_extent, cols}, function, "pred", pattern.c_str());
  expect_shape(t, {any_extent, cols}, function, "target", pattern.c_str());
  expect_same_rows(p, t, function, "pred", "target");
  return std::pair{p, t};
}

template <std::size_t Dim, class R, class View>
std::array<R, 2 * Dim> load_nd_box(const View& v, index_t i) noexcept {
  std::array<R, 2 * Dim> box{};
  for (std::size_t k = 0; k < 2 * Dim; ++k) box[k] = static_cast<R>(v(i, static_cast<index_t>(k)));
  return box;
}

}  // namespace detail

/// GIoU loss of N pairs of Dim-dimensional boxes, one loss per pair (reduction none).
///   pred, target  N×(2·Dim): (lo₀ … lo_{Dim−1}, hi₀ … hi_{Dim−1}), any type and strides
///   → tensor<R, 1> of N losses; R float for float input, else double
/// options.eps and options.order_pred_corners apply; options.format is ignored (N-D boxes have
/// one layout). Dim = 2 is the torchvision-exact 2-D generalized_box_iou_loss. O(N·Dim).
/// Throws cvk::shape_error for other shapes or different numbers of boxes, cvk::invalid_argument
/// for an eps that is NaN or negative.
template <std::size_t Dim, tensor_of_rank<2> P, tensor_of_rank<2> T>
[[nodiscard]] auto generalized_box_iou_loss(const P& pred, const T& target,
                                            const box_loss_options& options = {}) {
  if constexpr (Dim == 2) {
    return generalized_box_iou_loss(pred, target, options);
  } else {
    const auto [p, t] =
        detail::checked_nd_loss_inputs<Dim>(pred, target, "generalized_box_iou_loss");
    detail::check_loss_eps(options.eps, "generalized_box_iou_loss");
    using R = detail::loss_real_t<P, T>;
    tensor<R, 1> losses(p.extent(0));
    for (index_t i = 0; i < p.extent(0); ++i) {
      losses(i) = detail::giou_loss_nd_one<Dim>(
          detail::load_nd_box<Dim, R>(p, i), detail::load_nd_box<Dim, R>(t, i),
          static_cast<R>(options.eps), options.order_pred_corners, R(1), nullptr);
    }
    return losses;
  }
}

/// The literal loss_reduction::none in the reduced N-D form: rejected at compile time.
template <std::size_t Dim, tensor_of_rank<2> P, tensor_of_rank<2> T>
void generalized_box_iou_loss(const P&, const T&, loss_reduction::none_t,
                              const box_loss_options& = {}) {
  static_assert(detail::scalar_loss_with_none<P>,
                "cvk::generalized_box_iou_loss<Dim>(pred, target, loss_reduction::none): the "
                "reduced form returns one number; for one loss per box call "
                "generalized_box_iou_loss<Dim>(pred, target)");
}

/// The mean or sum of the N-D GIoU losses (mean of nothing is 0); a runtime reduction holding
/// `none` throws cvk::invalid_argument (use the overload above).
template <std::size_t Dim, tensor_of_rank<2> P, tensor_of_rank<2> T>
[[nodiscard]] auto generalized_box_iou_loss(const P& pred, const T& target,
                                            loss_reduction reduction,
                                            const box_loss_options& options = {}) {
  if constexpr (Dim == 2) {
    return generalized_box_iou_loss(pred, target, reduction, options);
  } else {
    if (reduction == loss_reduction::none) {
      CVK_THROW(invalid_argument,
                "generalized_box_iou_loss: reduction none gives one loss per box; call the "
                "overload without a reduction");
    }
    const auto losses = generalized_box_iou_loss<Dim>(pred, target, options);
    using R = typename decltype(losses)::value_type;
    R total = R(0);
    for (const R value : losses) total += value;
    if (reduction == loss_reduction::sum || losses.size() == 0) return total;
    return total / static_cast<R>(losses.size());
  }
}

/// d loss / d pred of the N-D GIoU loss: N×(2·Dim), for the given reduction (none: each box's
/// own d loss_i / d pred_i; mean: divided by N; sum: as none).
template <std::size_t Dim, tensor_of_rank<2> P, tensor_of_rank<2> T>
[[nodiscard]] auto generalized_box_iou_loss_backward(const P& pred, const T& target,
                                                     loss_reduction reduction,
                                                     const box_loss_options& options = {}) {
  if constexpr (Dim == 2) {
    return generalized_box_iou_loss_backward(pred, target, reduction, options);
  } else {
    const auto [p, t] =
        detail::checked_nd_loss_inputs<Dim>(pred, target, "generalized_box_iou_loss_backward");
    detail::check_loss_eps(options.eps, "generalized_box_iou_loss_backward");
    using R = detail::loss_real_t<P, T>;
    const index_t n = p.extent(0);
    const R g = reduction == loss_reduction::mean && n > 0 ? R(1) / static_cast<R>(n) : R(1);
    tensor<R, 2> grad(n, static_cast<index_t>(2 * Dim));
    for (index_t i = 0; i < n; ++i) {
      std::array<R, 2 * Dim> gi{};
      (void)detail::giou_loss_nd_one<Dim>(
          detail::load_nd_box<Dim, R>(p, i), detail::load_nd_box<Dim, R>(t, i),
          static_cast<R>(options.eps), options.order_pred_corners, g, &gi);
      for (std::size_t k = 0; k < 2 * Dim; ++k) grad(i, static_cast<index_t>(k)) = gi[k];
    }
    return grad;
  }
}

CVK_END_NAMESPACE
