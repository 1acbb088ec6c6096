// cvk — computer-vision kernels, header-only C++20.
// The box losses' public types: loss_reduction, box_loss_options, kl_loss_gradients
// (<cvk/box/loss.hpp> has the losses).
// SPDX-License-Identifier: MIT
#pragma once

#include "../core/config.hpp"
#include "../core/tensor.hpp"
#include "format.hpp"

CVK_BEGIN_NAMESPACE

/// How per-box (or per-coordinate) losses are combined, as torch's `reduction` argument.
enum class loss_reduction {
  none,  ///< one loss per box (per coordinate for kl_loss)
  mean,  ///< their mean; 0 when there are none (torchvision returns 0.0 * sum)
  sum,   ///< their sum
};

/// Name of a reduction, "none", "mean" or "sum".
[[nodiscard]] constexpr const char* to_string(loss_reduction reduction) noexcept {
  switch (reduction) {
    case loss_reduction::none:
      return "none";
    case loss_reduction::mean:
      return "mean";
    case loss_reduction::sum:
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
