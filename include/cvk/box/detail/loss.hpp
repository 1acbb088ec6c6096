// cvk — computer-vision kernels, header-only C++20.
// The box losses' algorithm: the IoU-family forward terms and torch-autograd-order gradients,
// the argument checks and reductions behind the public forms, and kl_loss's per-coordinate
// kernel (<cvk/box/loss.hpp> states the contract).
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

#include "../../core/as_view.hpp"
#include "../../core/config.hpp"
#include "../../core/errors.hpp"
#include "../../core/tensor.hpp"
#include "../../detail/checks.hpp"
#include "../format.hpp"
#include "../loss_types.hpp"

CVK_BEGIN_NAMESPACE

CVK_KERNEL_BEGIN
namespace detail {

/// Which IoU-family loss a kernel computes.
enum class box_loss_kind { iou, giou, diou, ciou };

// torch.maximum / torch.minimum: NaN propagates.
template <class R>
constexpr R nan_max(R a, R b) noexcept {
  return (a != a || a > b) ? a : b;
}
template <class R>
constexpr R nan_min(R a, R b) noexcept {
  return (a != a || a < b) ? a : b;
}

// The share of the gradient g of torch.maximum(a, b) / torch.minimum(a, b) that goes to a,
// exactly as torch 1.13's autograd: all of it when a wins, none when b wins, half each at a tie
// (and all of it to both when a NaN is involved).
template <class R>
constexpr R max_grad(R a, R b, R g) noexcept {
  return a == b ? g / R(2) : (a < b ? R(0) : g);
}
template <class R>
constexpr R min_grad(R a, R b, R g) noexcept {
  return a == b ? g / R(2) : (a > b ? R(0) : g);
}

/// Every intermediate of one IoU-family loss, computed in torchvision 0.14's operation order
/// (ops/_utils.py _loss_inter_union, giou_loss.py, diou_loss.py, ciou_loss.py). The kernels keep
/// each product in its own statement and are compiled without contraction (CVK_KERNEL_BEGIN), so
/// float results match torch's separate elementwise ops bit for bit.
///
/// These are not the formulas of pair_math.hpp: the losses guard with eps instead of returning
/// 0 for an empty union, mask the intersection instead of clamping it, do not clamp the
/// enclosing box, and give NaN (not 0) for atan(0/0); so the loss keeps its own forward.
template <class R>
struct box_loss_terms {
  std::array<R, 4> p{};          // predicted corners (x1, y1, x2, y2)
  std::array<R, 4> t{};          // target corners
  R ix1{}, iy1{}, ix2{}, iy2{};  // intersection corners
  bool overlap = false;          // torchvision's mask (ix2 > ix1) & (iy2 > iy1)
  R iw{}, ih{}, inter{};
  R pw{}, ph{}, area_p{};
  R uni{}, uni_eps{}, iou{};
  R cx1{}, cy1{}, cx2{}, cy2{}, cw{}, ch{};  // enclosing box
  R area_c{}, area_c_eps{}, penalty{};       // GIoU: (area_c - union) / (area_c + eps)
  R diag{}, dx{}, dy{}, distance{};          // DIoU: diag = c² + eps, distance = ρ² / diag
  R ratio_p{}, angle{}, v{}, alpha{};        // CIoU
  R loss{};
};

template <box_loss_kind Kind, class R>
box_loss_terms<R> box_loss_forward(const std::array<R, 4>& p, const std::array<R, 4>& t,
                                   R eps) noexcept {
  box_loss_terms<R> s;
  s.p = p;
  s.t = t;
  // _loss_inter_union
  s.ix1 = nan_max(p[0], t[0]);
  s.iy1 = nan_max(p[1], t[1]);
  s.ix2 = nan_min(p[2], t[2]);
  s.iy2 = nan_min(p[3], t[3]);
  s.overlap = s.iy2 > s.iy1 && s.ix2 > s.ix1;
  s.iw = s.ix2 - s.ix1;
  s.ih = s.iy2 - s.iy1;
  s.inter = s.overlap ? s.iw * s.ih : R(0);
  s.pw = p[2] - p[0];
  s.ph = p[3] - p[1];
  s.area_p = s.pw * s.ph;
  const R tw = t[2] - t[0];
  const R th = t[3] - t[1];
  const R area_t = tw * th;
  const R areas = s.area_p + area_t;
  s.uni = areas - s.inter;
  s.uni_eps = s.uni + eps;
  s.iou = s.inter / s.uni_eps;
  if constexpr (Kind == box_loss_kind::iou) {
    s.loss = R(1) - s.iou;
    return s;
  }
  s.cx1 = nan_min(p[0], t[0]);
  s.cy1 = nan_min(p[1], t[1]);
  s.cx2 = nan_max(p[2], t[2]);
  s.cy2 = nan_max(p[3], t[3]);
  s.cw = s.cx2 - s.cx1;
  s.ch = s.cy2 - s.cy1;
  if constexpr (Kind == box_loss_kind::giou) {
    s.area_c = s.cw * s.ch;
    s.area_c_eps = s.area_c + eps;
    const R gap = s.area_c - s.uni;
    s.penalty = gap / s.area_c_eps;
    const R giou = s.iou - s.penalty;
    s.loss = R(1) - giou;
    return s;
  } else {
    const R cw2 = s.cw * s.cw;
    const R ch2 = s.ch * s.ch;
    const R c2 = cw2 + ch2;
    s.diag = c2 + eps;
    const R pcx = (p[2] + p[0]) / R(2);
    const R pcy = (p[3] + p[1]) / R(2);
    const R tcx = (t[0] + t[2]) / R(2);
    const R tcy = (t[1] + t[3]) / R(2);
    s.dx = pcx - tcx;
    s.dy = pcy - tcy;
    const R dx2 = s.dx * s.dx;
    const R dy2 = s.dy * s.dy;
    const R rho2 = dx2 + dy2;
    s.distance = rho2 / s.diag;
    const R one_minus_iou = R(1) - s.iou;
    const R diou_loss = one_minus_iou + s.distance;
    if constexpr (Kind == box_loss_kind::diou) {
      s.loss = diou_loss;
    } else {
      // v = 4/π² (atan(w_t/h_t) - atan(w_p/h_p))², α = v / (1 - IoU + v + eps), α held constant
      // in the gradient (torch.no_grad in torchvision; the CIoU paper's recipe).
      s.ratio_p = s.pw / s.ph;
      const R ratio_t = tw / th;
      s.angle = std::atan(ratio_t) - std::atan(s.ratio_p);
      const R angle2 = s.angle * s.angle;
      s.v = static_cast<R>(4.0 / (std::numbers::pi * std::numbers::pi)) * angle2;
      const R denominator = (one_minus_iou + s.v) + eps;
      // eps = 0 and identical boxes: 0/0. v = 0 there, so α·v is 0 — α = 0, as the metric
      // complete_box_iou defines it (torchvision keeps 1e-7 in the IoU and never gets here).
      s.alpha = denominator == R(0) ? R(0) : s.v / denominator;
      const R penalty = s.alpha * s.v;
      s.loss = diou_loss + penalty;
    }
    return s;
  }
}

/// d loss / d p (xyxy) times g: torch's backward formulas for each op (sub: -g; mul: g * other;
/// div: g / d and -g * ((n / d) / d); pow 2: g * (2 x); atan: g / (x² + 1); maximum/minimum: see
/// max_grad), with the contributions summed in the order torch's autograd sums them, so that
/// float gradients match torch's to the last bit or nearly.
template <box_loss_kind Kind, class R>
std::array<R, 4> box_loss_backward(const box_loss_terms<R>& s, R g) noexcept {
  const auto& p = s.p;
  const auto& t = s.t;
  // Gradients reaching the predicted corners through each `unbind` of torchvision's code:
  // from_inter_union (_loss_inter_union), from_metric (giou_loss / _diou_iou_loss) and, for
  // CIoU, from_aspect (complete_box_iou_loss's own unbind).
  std::array<R, 4> from_inter_union{};
  std::array<R, 4> from_metric{};
  std::array<R, 4> from_aspect{};

  R g_iou{};
  R g_uni{};
  if constexpr (Kind == box_loss_kind::iou) {
    g_iou = -g;
  } else if constexpr (Kind == box_loss_kind::giou) {
    const R g_giou = -g;
    g_iou = g_giou;
    const R g_penalty = -g_giou;
    const R g_gap = g_penalty / s.area_c_eps;
    const R ratio = s.penalty / s.area_c_eps;
    const R g_area_c_eps = -g_penalty * ratio;
    const R g_area_c = g_gap + g_area_c_eps;
    g_uni = -g_gap;
    const R g_cw = g_area_c * s.ch;
    const R g_ch = g_area_c * s.cw;
    from_metric[0] = min_grad(p[0], t[0], -g_cw);
    from_metric[1] = min_grad(p[1], t[1], -g_ch);
    from_metric[2] = max_grad(p[2], t[2], g_cw);
    from_metric[3] = max_grad(p[3], t[3], g_ch);
  } else {
    g_iou = -g;
    const R g_rho2 = g / s.diag;
    const R ratio = s.distance / s.diag;
    const R g_diag = -g * ratio;
    const R twice_cw = R(2) * s.cw;
    const R twice_ch = R(2) * s.ch;
    const R g_cw = g_diag * twice_cw;
    const R g_ch = g_diag * twice_ch;
    const R twice_dx = R(2) * s.dx;
    const R twice_dy = R(2) * s.dy;
    const R g_dx = g_rho2 * twice_dx;
    const R g_dy = g_rho2 * twice_dy;
    const R g_pcx_sum = g_dx / R(2);
    const R g_pcy_sum = g_dy / R(2);
    from_metric[0] = min_grad(p[0], t[0], -g_cw) + g_pcx_sum;
    from_metric[1] = min_grad(p[1], t[1], -g_ch) + g_pcy_sum;
    from_metric[2] = max_grad(p[2], t[2], g_cw) + g_pcx_sum;
    from_metric[3] = max_grad(p[3], t[3], g_ch) + g_pcy_sum;
    if constexpr (Kind == box_loss_kind::ciou) {
      const R g_v = g * s.alpha;
      const R g_angle2 = g_v * static_cast<R>(4.0 / (std::numbers::pi * std::numbers::pi));
      const R twice_angle = R(2) * s.angle;
      const R g_angle = g_angle2 * twice_angle;
      const R g_atan = -g_angle;
      const R ratio2 = s.ratio_p * s.ratio_p;
      const R slope = ratio2 + R(1);
      const R g_ratio = g_atan / slope;
      const R g_pw = g_ratio / s.ph;
      const R ratio_over_h = s.ratio_p / s.ph;
      const R g_ph = -g_ratio * ratio_over_h;
      from_aspect = {-g_pw, -g_ph, g_pw, g_ph};
    }
  }
  // iou = inter / (union + eps); union = (area_p + area_t) - inter.
  const R g_inter_iou = g_iou / s.uni_eps;
  const R iou_ratio = s.iou / s.uni_eps;
  const R g_uni_eps = -g_iou * iou_ratio;
  g_uni = Kind == box_loss_kind::giou ? g_uni + g_uni_eps : g_uni_eps;
  const R g_area_p = g_uni;
  const R g_inter = g_inter_iou + -g_uni;
  const R g_pw = g_area_p * s.ph;
  const R g_ph = g_area_p * s.pw;
  R g_ix1{}, g_iy1{}, g_ix2{}, g_iy2{};
  if (s.overlap) {
    const R g_iw = g_inter * s.ih;
    const R g_ih = g_inter * s.iw;
    g_ix1 = -g_iw;
    g_iy1 = -g_ih;
    g_ix2 = g_iw;
    g_iy2 = g_ih;
  }
  from_inter_union[0] = max_grad(p[0], t[0], g_ix1) + -g_pw;
  from_inter_union[1] = max_grad(p[1], t[1], g_iy1) + -g_ph;
  from_inter_union[2] = min_grad(p[2], t[2], g_ix2) + g_pw;
  from_inter_union[3] = min_grad(p[3], t[3], g_iy2) + g_ph;

  std::array<R, 4> grad{};
  CVK_UNROLL
  for (std::size_t k = 0; k < 4; ++k) {
    if constexpr (Kind == box_loss_kind::iou) {
      grad[k] = from_inter_union[k];
    } else if constexpr (Kind == box_loss_kind::ciou) {
      // autograd runs the unbind nodes latest-created first and sums in arrival order
      const R aspect_and_metric = from_aspect[k] + from_metric[k];
      grad[k] = aspect_and_metric + from_inter_union[k];
    } else {
      grad[k] = from_metric[k] + from_inter_union[k];
    }
  }
  return grad;
}

/// GIoU Algorithm 2, step 1 (optional): corners in order.
template <class R>
constexpr std::array<R, 4> ordered_corners(const std::array<R, 4>& p) noexcept {
  return {nan_min(p[0], p[2]), nan_min(p[1], p[3]), nan_max(p[0], p[2]), nan_max(p[1], p[3])};
}

/// The gradient through ordered_corners (torch.min / torch.max backward).
template <class R>
constexpr std::array<R, 4> ordered_corners_backward(const std::array<R, 4>& p,
                                                    const std::array<R, 4>& g) noexcept {
  std::array<R, 4> result{};
  CVK_UNROLL
  for (std::size_t k = 0; k < 2; ++k) {
    const R lo_share = min_grad(p[k], p[k + 2], g[k]);
    const R hi_share = max_grad(p[k], p[k + 2], g[k + 2]);
    const R lo_share_other = min_grad(p[k + 2], p[k], g[k]);
    const R hi_share_other = max_grad(p[k + 2], p[k], g[k + 2]);
    result[k] = lo_share + hi_share;
    result[k + 2] = lo_share_other + hi_share_other;
  }
  return result;
}

/// One box's loss: xyxy pred and target.
template <box_loss_kind Kind, class R>
R box_loss_one(const std::array<R, 4>& pred, const std::array<R, 4>& target, R eps,
               bool order) noexcept {
  return box_loss_forward<Kind>(order ? ordered_corners(pred) : pred, target, eps).loss;
}

/// One box's loss and g times its gradient with respect to pred (xyxy).
template <box_loss_kind Kind, class R>
R box_loss_gradient_one(const std::array<R, 4>& pred, const std::array<R, 4>& target, R eps,
                        bool order, R g, std::array<R, 4>& grad) noexcept {
  const auto terms = box_loss_forward<Kind>(order ? ordered_corners(pred) : pred, target, eps);
  grad = box_loss_backward<Kind>(terms, g);
  if (order) grad = ordered_corners_backward(pred, grad);
  return terms.loss;
}

/// A gradient with respect to xyxy corners → with respect to the columns of `format` (the chain
/// rule through to_xyxy, continuous convention).
template <class R>
constexpr std::array<R, 4> xyxy_gradient_to_format(const std::array<R, 4>& g,
                                                   box_format format) noexcept {
  switch (format) {
    case box_format::xyxy:
      return g;
    case box_format::yxyx:
      return {g[1], g[0], g[3], g[2]};
    case box_format::xywh: {
      // x2 = x + w
      const R gx = g[0] + g[2];
      const R gy = g[1] + g[3];
      return {gx, gy, g[2], g[3]};
    }
    case box_format::cxcywh: {
      // x1 = cx - w/2, x2 = cx + w/2
      const R gcx = g[0] + g[2];
      const R gcy = g[1] + g[3];
      const R dgx = g[2] - g[0];
      const R dgy = g[3] - g[1];
      return {gcx, gcy, R(0.5) * dgx, R(0.5) * dgy};
    }
  }
  return g;
}

/// KL loss of one coordinate (He et al. 2019): e^(-α) d²/2 + α/2 for |d| <= 1, else
/// e^(-α) (|d| - 1/2) + α/2, with d = target - pred and α = log σ².
template <class R>
struct kl_terms {
  R diff{}, distance{}, smooth{}, scale{}, loss{};
};

template <class R>
kl_terms<R> kl_forward(R pred, R log_var, R target) noexcept {
  kl_terms<R> s;
  s.diff = target - pred;
  s.distance = std::fabs(s.diff);
  if (s.distance <= R(1)) {
    const R square = s.diff * s.diff;
    s.smooth = R(0.5) * square;
  } else {
    s.smooth = s.distance - R(0.5);  // the smooth-L1 branch keeps gradients bounded
  }
  s.scale = std::exp(-log_var);
  const R weighted = s.scale * s.smooth;
  const R half_log_var = R(0.5) * log_var;
  s.loss = weighted + half_log_var;
  return s;
}

/// g times (d loss / d pred, d loss / d log_var) of one coordinate, in torch autograd's order.
template <class R>
std::array<R, 2> kl_backward(const kl_terms<R>& s, R g) noexcept {
  const R g_smooth = g * s.scale;
  R g_diff{};
  if (s.distance <= R(1)) {
    const R g_square = g_smooth * R(0.5);
    const R half = g_square * s.diff;
    g_diff = half + half;
  } else {
    // torch.sign: 0 at 0 (never reached here: |d| > 1)
    const R sign = s.diff > R(0) ? R(1) : (s.diff < R(0) ? R(-1) : s.diff);
    g_diff = g_smooth * sign;
  }
  const R g_scale = g * s.smooth;
  const R g_exp = g_scale * s.scale;
  const R g_half = g * R(0.5);
  const R g_log_var = g_half + -g_exp;
  return {-g_diff, g_log_var};
}

}  // namespace detail
CVK_KERNEL_END

namespace detail {

template <box_loss_kind Kind>
constexpr const char* box_loss_name(bool backward) noexcept {
  switch (Kind) {
    case box_loss_kind::iou:
      return backward ? "iou_loss_backward" : "iou_loss";
    case box_loss_kind::giou:
      return backward ? "generalized_box_iou_loss_backward" : "generalized_box_iou_loss";
    case box_loss_kind::diou:
      return backward ? "distance_box_iou_loss_backward" : "distance_box_iou_loss";
    case box_loss_kind::ciou:
      return backward ? "complete_box_iou_loss_backward" : "complete_box_iou_loss";
  }
  return "box_loss";
}

/// pred and target as checked N×4 views.
template <class P, class T>
auto checked_box_pair(const P& pred, const T& target, const char* function) {
  auto p = checked_view<2>(pred, function, "pred");
  auto t = checked_view<2>(target, function, "target");
  expect_shape(p, {any_extent, 4}, function, "pred", "N×4");
  expect_shape(t, {any_extent, 4}, function, "target", "N×4");
  expect_same_rows(p, t, function, "pred", "target");
  return std::pair{p, t};
}

/// eps guards denominators: a NaN eps makes every loss NaN and a negative one can cancel a
/// union, so both are rejected, as distance_box_iou / complete_box_iou do.
inline void check_loss_eps(double eps, const char* function) {
  if (!(eps >= 0.0)) {
    CVK_THROW(invalid_argument,
              std::string(function) + ": eps must be a number >= 0, got " + number_string(eps));
  }
}

/// Checks the options of an IoU-family loss: a format outside the enum would be read as xyxy.
inline void check_box_loss_options(const box_loss_options& options, const char* function) {
  check_format(options.format, function, "options.format");
  check_loss_eps(options.eps, function);
}

/// Sums are accumulated in double (or wider) and rounded once.
template <class R>
using loss_accumulator_t = std::conditional_t<(sizeof(R) > sizeof(double)), R, double>;

template <class... X>
using loss_real_t = real_t<std::common_type_t<tensor_value_t<const X&>...>>;

/// The type a backward pass computes in: that of pred and target, and of grad_loss if given.
template <class Upstream, class P, class T>
struct upstream_real {
  using type = loss_real_t<P, T, Upstream>;
};
template <class P, class T>
struct upstream_real<loss_reduction, P, T> {
  using type = loss_real_t<P, T>;
};

/// False for every type: the condition of the static_assert in the scalar loss forms' overload for
/// the literal loss_reduction::none, which fires only when that overload is chosen.
template <class>
inline constexpr bool scalar_loss_with_none = false;

[[noreturn]] inline void reject_none_reduction(const char* function) {
  CVK_THROW(invalid_argument,
            std::string(function) +
                ": reduction none gives one loss per element; call the overload without a "
                "reduction, or the one with an out tensor");
}

/// Calls sink(i, loss_i) for every box.
template <box_loss_kind Kind, class R, class PV, class TV, class Sink>
void box_loss_rows(const PV& p, const TV& t, const box_loss_options& options, Sink&& sink) {
  const R eps = static_cast<R>(options.eps);
  for (index_t i = 0; i < p.extent(0); ++i) {
    const auto pred = to_xyxy(load_box<R>(p, i), options.format, box_convention{});
    const auto target = to_xyxy(load_box<R>(t, i), options.format, box_convention{});
    sink(i, box_loss_one<Kind>(pred, target, eps, options.order_pred_corners));
  }
}

template <box_loss_kind Kind, class P, class T, class Out>
void box_loss_entry(const P& pred, const T& target, Out&& out, const box_loss_options& options) {
  constexpr const char* fn = box_loss_name<Kind>(false);
  const auto [p, t] = checked_box_pair(pred, target, fn);
  check_box_loss_options(options, fn);
  auto dst = output_view<1>(std::forward<Out>(out), {p.extent(0)}, fn);
  using R = loss_real_t<P, T>;
  using O = typename decltype(dst)::value_type;
  assert_no_narrowing<O, R>();
  box_loss_rows<Kind, R>(p, t, options, [&](index_t i, R loss) { dst(i) = static_cast<O>(loss); });
}

template <box_loss_kind Kind, class P, class T>
auto box_loss_entry(const P& pred, const T& target, const box_loss_options& options) {
  constexpr const char* fn = box_loss_name<Kind>(false);
  const auto [p, t] = checked_box_pair(pred, target, fn);
  check_box_loss_options(options, fn);
  tensor<loss_real_t<P, T>, 1> result(p.extent(0));
  box_loss_entry<Kind>(p, t, result, options);
  return result;
}

template <box_loss_kind Kind, class P, class T>
auto box_loss_reduced(const P& pred, const T& target, loss_reduction reduction,
                      const box_loss_options& options) {
  constexpr const char* fn = box_loss_name<Kind>(false);
  const auto [p, t] = checked_box_pair(pred, target, fn);
  check_box_loss_options(options, fn);
  if (reduction == loss_reduction::none) reject_none_reduction(fn);
  using R = loss_real_t<P, T>;
  loss_accumulator_t<R> total = 0;
  box_loss_rows<Kind, R>(p, t, options, [&](index_t, R loss) { total += loss; });
  const R sum = static_cast<R>(total);
  if (reduction == loss_reduction::sum) return sum;
  // torch: sum, then one division by N in the loss's type; mean of nothing is 0
  return p.extent(0) == 0 ? R(0) : sum / static_cast<R>(p.extent(0));
}

/// grad_pred(i, :) = upstream(i) · d loss_i / d pred_i, in the boxes' format.
template <box_loss_kind Kind, class R, class PV, class TV, class GV, class Upstream>
void box_loss_gradient_rows(const PV& p, const TV& t, const GV& grad_pred,
                            const box_loss_options& options, Upstream&& upstream) {
  using O = typename GV::value_type;
  const R eps = static_cast<R>(options.eps);
  for (index_t i = 0; i < p.extent(0); ++i) {
    const auto pred = to_xyxy(load_box<R>(p, i), options.format, box_convention{});
    const auto target = to_xyxy(load_box<R>(t, i), options.format, box_convention{});
    std::array<R, 4> grad{};
    box_loss_gradient_one<Kind>(pred, target, eps, options.order_pred_corners, upstream(i), grad);
    grad = xyxy_gradient_to_format(grad, options.format);
    for (index_t k = 0; k < 4; ++k)
      grad_pred(i, k) = static_cast<O>(grad[static_cast<std::size_t>(k)]);
  }
}

template <box_loss_kind Kind, class P, class T, class G, class GP>
void box_loss_backward_entry(const P& pred, const T& target, const G& grad_loss, GP&& grad_pred,
                             const box_loss_options& options) {
  constexpr const char* fn = box_loss_name<Kind>(true);
  const auto [p, t] = checked_box_pair(pred, target, fn);
  check_box_loss_options(options, fn);
  const auto g = checked_view<1>(grad_loss, fn, "grad_loss");
  expect_shape(g, {p.extent(0)}, fn, "grad_loss");
  auto dst = output_view<2>(std::forward<GP>(grad_pred), {p.extent(0), 4}, fn, "grad_pred");
  using R = loss_real_t<P, T, G>;
  assert_no_narrowing<typename decltype(dst)::value_type, R>();
  box_loss_gradient_rows<Kind, R>(p, t, dst, options,
                                  [&](index_t i) { return static_cast<R>(g(i)); });
}

template <box_loss_kind Kind, class P, class T, class GP>
void box_loss_backward_entry(const P& pred, const T& target, loss_reduction reduction,
                             GP&& grad_pred, const box_loss_options& options) {
  constexpr const char* fn = box_loss_name<Kind>(true);
  const auto [p, t] = checked_box_pair(pred, target, fn);
  check_box_loss_options(options, fn);
  auto dst = output_view<2>(std::forward<GP>(grad_pred), {p.extent(0), 4}, fn, "grad_pred");
  using R = loss_real_t<P, T>;
  assert_no_narrowing<typename decltype(dst)::value_type, R>();
  // torch's mean backward: the upstream 1 divided by N in the loss's type
  const R scale = reduction == loss_reduction::mean && p.extent(0) > 0
                      ? R(1) / static_cast<R>(p.extent(0))
                      : R(1);
  box_loss_gradient_rows<Kind, R>(p, t, dst, options, [scale](index_t) { return scale; });
}

template <box_loss_kind Kind, class P, class T, class Upstream>
auto box_loss_backward_value(const P& pred, const T& target, const Upstream& upstream,
                             const box_loss_options& options) {
  constexpr const char* fn = box_loss_name<Kind>(true);
  const auto [p, t] = checked_box_pair(pred, target, fn);
  check_box_loss_options(options, fn);
  using R = typename upstream_real<Upstream, P, T>::type;
  tensor<R, 2> result(p.extent(0), index_t{4});
  box_loss_backward_entry<Kind>(p, t, upstream, result, options);
  return result;
}

template <box_loss_kind Kind, class P, class T>
auto box_loss_single(const P& pred, const T& target, const box_loss_options& options) {
  constexpr const char* fn = box_loss_name<Kind>(false);
  const auto p = checked_view<1>(pred, fn, "pred");
  const auto t = checked_view<1>(target, fn, "target");
  expect_shape(p, {4}, fn, "pred");
  expect_shape(t, {4}, fn, "target");
  check_box_loss_options(options, fn);
  using R = loss_real_t<P, T>;
  return box_loss_one<Kind>(to_xyxy(load_single_box<R>(p), options.format, box_convention{}),
                            to_xyxy(load_single_box<R>(t), options.format, box_convention{}),
                            static_cast<R>(options.eps), options.order_pred_corners);
}

template <box_loss_kind Kind, class P, class T>
auto box_loss_single_backward(const P& pred, const T& target, const box_loss_options& options) {
  constexpr const char* fn = box_loss_name<Kind>(true);
  const auto p = checked_view<1>(pred, fn, "pred");
  const auto t = checked_view<1>(target, fn, "target");
  expect_shape(p, {4}, fn, "pred");
  expect_shape(t, {4}, fn, "target");
  check_box_loss_options(options, fn);
  using R = loss_real_t<P, T>;
  std::array<R, 4> grad{};
  box_loss_gradient_one<Kind>(to_xyxy(load_single_box<R>(p), options.format, box_convention{}),
                              to_xyxy(load_single_box<R>(t), options.format, box_convention{}),
                              static_cast<R>(options.eps), options.order_pred_corners, R(1), grad);
  return xyxy_gradient_to_format(grad, options.format);
}

}  // namespace detail

namespace detail {

template <class P, class V, class T>
auto checked_kl_inputs(const P& pred, const V& log_var, const T& target, const char* function) {
  auto p = checked_view<2>(pred, function, "pred");
  auto v = checked_view<2>(log_var, function, "log_var");
  auto t = checked_view<2>(target, function, "target");
  expect_shape(p, {any_extent, 4}, function, "pred", "N×4");
  expect_shape(v, {any_extent, 4}, function, "log_var", "N×4");
  expect_shape(t, {any_extent, 4}, function, "target", "N×4");
  expect_same_rows(p, v, function, "pred", "log_var");
  expect_same_rows(p, t, function, "pred", "target");
  return std::tuple{p, v, t};
}

template <class R, class PV, class VV, class TV, class Sink>
void kl_loss_rows(const PV& p, const VV& v, const TV& t, Sink&& sink) {
  for (index_t i = 0; i < p.extent(0); ++i) {
    for (index_t k = 0; k < 4; ++k) {
      sink(i, k,
           kl_forward(static_cast<R>(p(i, k)), static_cast<R>(v(i, k)), static_cast<R>(t(i, k))));
    }
  }
}

template <class R, class PV, class VV, class TV, class GP, class GV, class Upstream>
void kl_gradient_rows(const PV& p, const VV& v, const TV& t, const GP& grad_pred,
                      const GV& grad_log_var, Upstream&& upstream) {
  using OP = typename GP::value_type;
  using OV = typename GV::value_type;
  kl_loss_rows<R>(p, v, t, [&](index_t i, index_t k, const kl_terms<R>& terms) {
    const auto grad = kl_backward(terms, upstream(i, k));
    grad_pred(i, k) = static_cast<OP>(grad[0]);
    grad_log_var(i, k) = static_cast<OV>(grad[1]);
  });
}

}  // namespace detail

CVK_END_NAMESPACE
