// cvk — computer-vision kernels, header-only C++20.
// The box losses' public types: loss_reduction, box_loss_options, kl_loss_gradients
// (<cvk/box/loss.hpp> has the losses).
// SPDX-License-Identifier: MIT
#pragma once

#include "../core/config.hpp"
#include "../core/tensor.hpp"
#include "format.hpp"

CVK_BEGIN_NAMESPACE

/// How per-box (or per-coordinate) losses are combined, as torch's `reduction` argument:
/// `loss_reduction::none` (one loss per box, per coordinate for kl_loss), `loss_reduction::mean`
/// (their mean; 0 when there are none, as torchvision returns 0.0 * sum) or `loss_reduction::sum`.
/// A value type used like an enum (copy, compare, switch on value()). `none` has a type of its
/// own, loss_reduction::none_t, that converts to loss_reduction: a scalar loss form named with
/// the literal `loss_reduction::none` — a combination that can never be valid, since that form
/// returns one number — fails to compile; a runtime loss_reduction holding none still gets
/// cvk::invalid_argument there.
class loss_reduction {
 public:
  enum class value_type : unsigned char { none, mean, sum };
  /// The type of loss_reduction::none.
  struct none_t {
    constexpr operator loss_reduction() const noexcept;  // NOLINT(google-explicit-constructor)
  };
  static constexpr none_t none{};
  static const loss_reduction mean;
  static const loss_reduction sum;

  constexpr loss_reduction() noexcept = default;  // mean
  constexpr explicit loss_reduction(value_type value) noexcept : value_(value) {}
  [[nodiscard]] constexpr value_type value() const noexcept { return value_; }
  [[nodiscard]] constexpr bool operator==(const loss_reduction&) const noexcept = default;

 private:
  value_type value_ = value_type::mean;
};

constexpr loss_reduction::none_t::operator loss_reduction() const noexcept {
  return loss_reduction(loss_reduction::value_type::none);
}
inline constexpr loss_reduction loss_reduction::mean{loss_reduction::value_type::mean};
inline constexpr loss_reduction loss_reduction::sum{loss_reduction::value_type::sum};

/// Name of a reduction, "none", "mean" or "sum".
[[nodiscard]] constexpr const char* to_string(loss_reduction reduction) noexcept {
  switch (reduction.value()) {
    case loss_reduction::value_type::none:
      return "none";
    case loss_reduction::value_type::mean:
      return "mean";
    case loss_reduction::value_type::sum:
      return "sum";
  }
  return "unknown";
}

/// Options of the IoU-family losses.
struct box_loss_options {
  /// Format of both pred and target; gradients are returned in this format too.
  box_format format = box_format::xyxy;
  /// Guard added to the union, the enclosing area (GIoU), the squared diagonal (DIoU, CIoU) and
  /// the CIoU trade-off denominator; torchvision's default 1e-7. (torchvision 0.14's
  /// complete_box_iou_loss passes its eps to the trade-off only and keeps 1e-7 in the DIoU
  /// terms; cvk uses eps everywhere, which is the same at the default.)
  double eps = 1e-7;
  /// Put the predicted corners in order first, x1 = min(x1, x2), x2 = max(x1, x2) (and y), as
  /// step 1 of the GIoU paper's Algorithm 2. torchvision does not (an inverted prediction then
  /// has a negative width), hence off by default.
  bool order_pred_corners = false;
};

/// The gradients kl_loss_backward returns: d loss / d pred and d loss / d log_var, N×4 each.
template <class R>
struct kl_loss_gradients {
  tensor<R, 2> grad_pred;
  tensor<R, 2> grad_log_var;
};

CVK_END_NAMESPACE
