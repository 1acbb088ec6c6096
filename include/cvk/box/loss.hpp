// cvk — computer-vision kernels, header-only C++20.
// Box regression losses with analytic gradients: iou_loss, generalized_box_iou_loss (Rezatofighi
// et al., CVPR 2019, Algorithm 2), distance_box_iou_loss and complete_box_iou_loss (Zheng et al.,
// AAAI 2020) with torchvision 0.14's values and autograd gradients, and kl_loss (He et al.,
// "Bounding Box Regression with Uncertainty", CVPR 2019, §3.2, smooth-L1 form).
// SPDX-License-Identifier: MIT
#pragma once

#include <array>
#include <cmath>
#include <cstddef>
#include <numbers>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include "../core/as_view.hpp"
#include "../core/config.hpp"
#include "../core/errors.hpp"
#include "../core/tensor.hpp"
#include "../detail/checks.hpp"
#include "detail/loss.hpp"
#include "format.hpp"
#include "loss_types.hpp"

CVK_BEGIN_NAMESPACE

// The public entry points. For each IoU-family loss `name`:
//   name(pred, target[, options])                        → tensor<R, 1> of N losses (none)
//   name(pred, target, out[, options])                   → writes the N losses into out
//   name(pred, target, reduction[, options])             → R, their mean or sum
//   name(pred_box, target_box[, options])                → R, one pair of single boxes
//   name_backward(pred, target, grad_loss, grad_pred[, options])
//                      → grad_pred(i, :) = grad_loss(i) · d loss_i / d pred_i   (N×4)
//   name_backward(pred, target, grad_loss[, options])    → tensor<R, 2>, N×4, the same
//   name_backward(pred, target, reduction, grad_pred[, options])
//                      → d (mean or sum) / d pred; none: each box's own d loss_i / d pred_i
//   name_backward(pred, target, reduction[, options])    → tensor<R, 2>, N×4, the same
//   name_backward(pred_box, target_box[, options])       → std::array<R, 4>
// pred, target: N×4 in options.format, any arithmetic type and strides; grad_loss: N values.
// R is float for float input, double for double or integer input (the common type of all
// inputs); outputs must hold R without narrowing. Gradients are with respect to pred, in
// options.format, and equal torch autograd through torchvision 0.14's function, including its
// choices at ties: torch.max / torch.min split the gradient in half between equal arguments, the
// intersection mask passes no gradient where it is false, and CIoU's α is a constant.
// Errors: cvk::shape_error when pred or target is not N×4 (4 for single boxes), they disagree in
// N, or grad_loss / an output has the wrong shape; cvk::invalid_argument for a runtime reduction
// holding none in the reduced form, an options.format outside the enum (which would be read as
// xyxy), or an options.eps that is NaN or negative. The literal loss_reduction::none in the
// reduced form does not compile (a static_assert names the per-box overloads).
#define CVK_DEFINE_BOX_LOSS(name, kind)                                                           \
  template <tensor_of_rank<2> P, tensor_of_rank<2> T>                                             \
  [[nodiscard]] auto name(const P& pred, const T& target, const box_loss_options& options = {}) { \
    return detail::box_loss_entry<kind>(pred, target, options);                                   \
  }                                                                                               \
  template <tensor_of_rank<2> P, tensor_of_rank<2> T, tensor_of_rank<1> Out>                      \
  void name(const P& pred, const T& target, Out&& out, const box_loss_options& options = {}) {    \
    detail::box_loss_entry<kind>(pred, target, std::forward<Out>(out), options);                  \
  }                                                                                               \
  template <tensor_of_rank<2> P, tensor_of_rank<2> T>                                             \
  [[nodiscard]] auto name(const P& pred, const T& target, loss_reduction reduction,               \
                          const box_loss_options& options = {}) {                                 \
    return detail::box_loss_reduced<kind>(pred, target, reduction, options);                      \
  }                                                                                               \
  template <tensor_of_rank<2> P, tensor_of_rank<2> T>                                             \
  void name(const P&, const T&, loss_reduction::none_t, const box_loss_options& = {}) {           \
    static_assert(detail::scalar_loss_with_none<P>,                                               \
                  "cvk::" #name                                                                   \
                  "(pred, target, loss_reduction::none): the reduced form returns "               \
                  "one number; for one loss per box call " #name "(pred, target[, out])");        \
  }                                                                                               \
  template <tensor_of_static_rank<1> P, tensor_of_static_rank<1> T>                               \
  [[nodiscard]] auto name(const P& pred, const T& target, const box_loss_options& options = {}) { \
    return detail::box_loss_single<kind>(pred, target, options);                                  \
  }                                                                                               \
  template <tensor_of_rank<2> P, tensor_of_rank<2> T, tensor_of_rank<1> G, tensor_of_rank<2> GP>  \
  void name##_backward(const P& pred, const T& target, const G& grad_loss, GP&& grad_pred,        \
                       const box_loss_options& options = {}) {                                    \
    detail::box_loss_backward_entry<kind>(pred, target, grad_loss, std::forward<GP>(grad_pred),   \
                                          options);                                               \
  }                                                                                               \
  template <tensor_of_rank<2> P, tensor_of_rank<2> T, tensor_of_rank<1> G>                        \
  [[nodiscard]] auto name##_backward(const P& pred, const T& target, const G& grad_loss,          \
                                     const box_loss_options& options = {}) {                      \
    return detail::box_loss_backward_value<kind>(pred, target, grad_loss, options);               \
  }                                                                                               \
  template <tensor_of_rank<2> P, tensor_of_rank<2> T, tensor_of_rank<2> GP>                       \
  void name##_backward(const P& pred, const T& target, loss_reduction reduction, GP&& grad_pred,  \
                       const box_loss_options& options = {}) {                                    \
    detail::box_loss_backward_entry<kind>(pred, target, reduction, std::forward<GP>(grad_pred),   \
                                          options);                                               \
  }                                                                                               \
  template <tensor_of_rank<2> P, tensor_of_rank<2> T>                                             \
  [[nodiscard]] auto name##_backward(const P& pred, const T& target, loss_reduction reduction,    \
                                     const box_loss_options& options = {}) {                      \
    return detail::box_loss_backward_value<kind>(pred, target, reduction, options);               \
  }                                                                                               \
  template <tensor_of_static_rank<1> P, tensor_of_static_rank<1> T>                               \
  [[nodiscard]] auto name##_backward(const P& pred, const T& target,                              \
                                     const box_loss_options& options = {}) {                      \
    return detail::box_loss_single_backward<kind>(pred, target, options);                         \
  }

/// IoU loss 1 - IoU, IoU = inter / (union + eps) with generalized_box_iou_loss's intersection
/// (torchvision has no iou_loss; this is its _loss_inter_union). Not clamped: an inverted
/// prediction has a negative area.
CVK_DEFINE_BOX_LOSS(iou_loss, detail::box_loss_kind::iou)
/// GIoU loss 1 - GIoU, GIoU = IoU - (|C| - U) / (|C| + eps), C the enclosing box (GIoU paper,
/// Algorithm 2; step 1, the corner ordering, only with options.order_pred_corners).
CVK_DEFINE_BOX_LOSS(generalized_box_iou_loss, detail::box_loss_kind::giou)
/// DIoU loss 1 - IoU + ρ² / (c² + eps): ρ the distance between the centres, c the diagonal of
/// the enclosing box.
CVK_DEFINE_BOX_LOSS(distance_box_iou_loss, detail::box_loss_kind::diou)
/// CIoU loss: DIoU loss + α v, v = 4/π² (atan(w_t/h_t) - atan(w_p/h_p))²,
/// α = v / (1 - IoU + v + eps) held constant in the gradient. NaN when a box has w = h = 0.
CVK_DEFINE_BOX_LOSS(complete_box_iou_loss, detail::box_loss_kind::ciou)

#undef CVK_DEFINE_BOX_LOSS

/// KL loss (He et al., CVPR 2019, §3.2) of each coordinate, written into `out`:
///
///   pred     N×4 predicted coordinates x_e (any format, any arithmetic type and strides)
///   log_var  N×4 predicted α = log σ² of each coordinate
///   target   N×4 target coordinates x_g
///   out      N×4 mutable float or double tensor (no narrowing), receives the losses
///
/// With d = x_g - x_e: loss = e^(-α) d²/2 + α/2 when |d| <= 1, else e^(-α) (|d| - 1/2) + α/2
/// (the smooth-L1 form of the paper). Values are computed in real_t of the inputs' common type.
/// Throws cvk::shape_error when an input is not N×4 or the inputs or out disagree in N. O(N).
template <tensor_of_rank<2> P, tensor_of_rank<2> V, tensor_of_rank<2> T, tensor_of_rank<2> Out>
void kl_loss(const P& pred, const V& log_var, const T& target, Out&& out) {
  const auto [p, v, t] = detail::checked_kl_inputs(pred, log_var, target, "kl_loss");
  auto dst = detail::output_view<2>(std::forward<Out>(out), {p.extent(0), 4}, "kl_loss");
  using R = detail::loss_real_t<P, V, T>;
  using O = typename decltype(dst)::value_type;
  detail::assert_no_narrowing<O, R>();
  detail::kl_loss_rows<R>(p, v, t, [&](index_t i, index_t k, const detail::kl_terms<R>& terms) {
    dst(i, k) = static_cast<O>(terms.loss);
  });
}

/// The literal loss_reduction::none in the reduced form: rejected at compile time.
template <tensor_of_rank<2> P, tensor_of_rank<2> V, tensor_of_rank<2> T>
void kl_loss(const P&, const V&, const T&, loss_reduction::none_t) {
  static_assert(detail::scalar_loss_with_none<P>,
                "cvk::kl_loss(pred, log_var, target, loss_reduction::none): the reduced form "
                "returns one number; for one loss per coordinate call kl_loss(pred, log_var, "
                "target[, out])");
}

/// KL loss of each coordinate, returned as an N×4 tensor (see above).
template <tensor_of_rank<2> P, tensor_of_rank<2> V, tensor_of_rank<2> T>
[[nodiscard]] auto kl_loss(const P& pred, const V& log_var, const T& target) {
  const auto [p, v, t] = detail::checked_kl_inputs(pred, log_var, target, "kl_loss");
  tensor<detail::loss_real_t<P, V, T>, 2> result(p.extent(0), index_t{4});
  kl_loss(p, v, t, result);
  return result;
}

/// KL loss reduced over all 4N coordinates: `mean` (the sum divided by 4N; 0 for N = 0) or
/// `sum`. `none` throws cvk::invalid_argument (use the overloads above).
template <tensor_of_rank<2> P, tensor_of_rank<2> V, tensor_of_rank<2> T>
[[nodiscard]] auto kl_loss(const P& pred, const V& log_var, const T& target,
                           loss_reduction reduction) {
  const auto [p, v, t] = detail::checked_kl_inputs(pred, log_var, target, "kl_loss");
  if (reduction == loss_reduction::none) detail::reject_none_reduction("kl_loss");
  using R = detail::loss_real_t<P, V, T>;
  detail::loss_accumulator_t<R> total = 0;
  detail::kl_loss_rows<R>(
      p, v, t, [&](index_t, index_t, const detail::kl_terms<R>& terms) { total += terms.loss; });
  const R sum = static_cast<R>(total);
  if (reduction == loss_reduction::sum) return sum;
  return p.extent(0) == 0 ? R(0) : sum / static_cast<R>(4 * p.extent(0));
}

/// Gradients of the KL loss, written into `grad_pred` and `grad_log_var` (N×4 each, float or
/// double without narrowing): grad_loss(i, k) times d loss(i, k) / d pred(i, k) and
/// d loss(i, k) / d log_var(i, k). grad_loss is N×4 (the upstream gradient of reduction none).
///   d loss / d pred    = -e^(-α) d        (|d| <= 1),   -e^(-α) sign(d)   (|d| > 1)
///   d loss / d log_var = 1/2 - e^(-α) s,  s = d²/2 or |d| - 1/2
template <tensor_of_rank<2> P, tensor_of_rank<2> V, tensor_of_rank<2> T, tensor_of_rank<2> G,
          tensor_of_rank<2> GP, tensor_of_rank<2> GV>
void kl_loss_backward(const P& pred, const V& log_var, const T& target, const G& grad_loss,
                      GP&& grad_pred, GV&& grad_log_var) {
  constexpr const char* fn = "kl_loss_backward";
  const auto [p, v, t] = detail::checked_kl_inputs(pred, log_var, target, fn);
  const auto g = detail::checked_view<2>(grad_loss, fn, "grad_loss");
  detail::expect_shape(g, {p.extent(0), 4}, fn, "grad_loss");
  auto dp = detail::output_view<2>(std::forward<GP>(grad_pred), {p.extent(0), 4}, fn, "grad_pred");
  auto dv =
      detail::output_view<2>(std::forward<GV>(grad_log_var), {p.extent(0), 4}, fn, "grad_log_var");
  using R = detail::loss_real_t<P, V, T, G>;
  detail::assert_no_narrowing<typename decltype(dp)::value_type, R>();
  detail::assert_no_narrowing<typename decltype(dv)::value_type, R>();
  detail::kl_gradient_rows<R>(p, v, t, dp, dv,
                              [&](index_t i, index_t k) { return static_cast<R>(g(i, k)); });
}

/// Gradients of the reduced KL loss (`mean`: each coordinate's gradient divided by 4N; `sum`),
/// written into grad_pred and grad_log_var; `none` gives each coordinate's own gradient (an
/// upstream gradient of 1 everywhere).
template <tensor_of_rank<2> P, tensor_of_rank<2> V, tensor_of_rank<2> T, tensor_of_rank<2> GP,
          tensor_of_rank<2> GV>
void kl_loss_backward(const P& pred, const V& log_var, const T& target, loss_reduction reduction,
                      GP&& grad_pred, GV&& grad_log_var) {
  constexpr const char* fn = "kl_loss_backward";
  const auto [p, v, t] = detail::checked_kl_inputs(pred, log_var, target, fn);
  auto dp = detail::output_view<2>(std::forward<GP>(grad_pred), {p.extent(0), 4}, fn, "grad_pred");
  auto dv =
      detail::output_view<2>(std::forward<GV>(grad_log_var), {p.extent(0), 4}, fn, "grad_log_var");
  using R = detail::loss_real_t<P, V, T>;
  detail::assert_no_narrowing<typename decltype(dp)::value_type, R>();
  detail::assert_no_narrowing<typename decltype(dv)::value_type, R>();
  const R scale = reduction == loss_reduction::mean && p.extent(0) > 0
                      ? R(1) / static_cast<R>(4 * p.extent(0))
                      : R(1);
  detail::kl_gradient_rows<R>(p, v, t, dp, dv, [scale](index_t, index_t) { return scale; });
}

/// Gradients of the KL loss for an N×4 upstream gradient, returned (see above).
template <tensor_of_rank<2> P, tensor_of_rank<2> V, tensor_of_rank<2> T, tensor_of_rank<2> G>
[[nodiscard]] auto kl_loss_backward(const P& pred, const V& log_var, const T& target,
                                    const G& grad_loss) {
  const auto p = detail::checked_view<2>(pred, "kl_loss_backward", "pred");
  using R = detail::loss_real_t<P, V, T, G>;
  kl_loss_gradients<R> result{tensor<R, 2>(p.extent(0), index_t{4}),
                              tensor<R, 2>(p.extent(0), index_t{4})};
  kl_loss_backward(pred, log_var, target, grad_loss, result.grad_pred, result.grad_log_var);
  return result;
}

/// Gradients of the reduced KL loss, returned (see above).
template <tensor_of_rank<2> P, tensor_of_rank<2> V, tensor_of_rank<2> T>
[[nodiscard]] auto kl_loss_backward(const P& pred, const V& log_var, const T& target,
                                    loss_reduction reduction) {
  const auto p = detail::checked_view<2>(pred, "kl_loss_backward", "pred");
  using R = detail::loss_real_t<P, V, T>;
  kl_loss_gradients<R> result{tensor<R, 2>(p.extent(0), index_t{4}),
                              tensor<R, 2>(p.extent(0), index_t{4})};
  kl_loss_backward(pred, log_var, target, reduction, result.grad_pred, result.grad_log_var);
  return result;
}

CVK_END_NAMESPACE
