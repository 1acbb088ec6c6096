// cvk — computer-vision kernels, header-only C++20.
// libFuzzer target: the IoU family (box_iou, box_ioa, generalized_box_iou, distance_box_iou,
// complete_box_iou; pairwise, aligned, single), the IoU losses and their gradients, rotated
// IoU / GIoU and quad IoU, on decoded boxes (float or double). Checked against the contract of
// docs/boxes.md: the three call forms give the same bits; IoU and IoA in [0, 1], GIoU and DIoU
// in [-1, 1]; NaN for a NaN coordinate, torchvision's arithmetic for an infinite one (IoU 0 or
// NaN), NaN exactly for rotated / quad values out of range; values equal the long-double
// reference of tests/support/iou_reference.hpp on exactly representable boxes; the losses'
// reductions, single forms and analytic gradients agree (central differences in double);
// invalid options and mismatched shapes throw a cvk::error.
// Input layout: byte 0 picks the area (low 2 bits: IoU family, losses, rotated, quad) and the
// type (bit 4: double); then the area's option bytes, the counts and the boxes (fuzz_input.hpp).
// SPDX-License-Identifier: MIT
#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include <cvk/box.hpp>
#include <cvk/core.hpp>

#include "fuzz/fuzz_input.hpp"
#include "support/iou_reference.hpp"

namespace {

using cvk::index_t;
using cvk_fuzz::byte_reader;
template <class T>
using boxes_t = std::vector<std::array<T, 4>>;

template <class V>
bool same_bits(V a, V b) {
  return (std::isnan(a) && std::isnan(b)) || a == b;
}

/// A coordinate the decoder's exact modes produce: a multiple of 1/8 of magnitude ≤ 2^15, where
/// every side, area and sum of the IoU family is exact or rounded once in float.
template <class T>
bool exact(T v) {
  return std::fabs(v) <= T(32768) && std::floor(v * T(8)) == v * T(8);
}

struct metric {
  const char* name;
  cvk_test::reference::iou_metric kind;
  double lo, hi;
  bool checks_eps;
};
constexpr std::array<metric, 5> metrics = {{
    {"box_iou", cvk_test::reference::iou_metric::iou, 0, 1, false},
    {"box_ioa", cvk_test::reference::iou_metric::ioa, 0, 1, false},
    {"generalized_box_iou", cvk_test::reference::iou_metric::giou, -1, 1, false},
    {"distance_box_iou", cvk_test::reference::iou_metric::diou, -1, 1, true},
    {"complete_box_iou", cvk_test::reference::iou_metric::ciou,
     -std::numeric_limits<double>::infinity(), 1, true},
}};

/// Calls the pairwise, aligned or single form of metric m.
template <class... Args>
auto pairwise(std::size_t m, const Args&... args) {
  switch (m) {
    case 0:
      return cvk::box_iou(args...);
    case 1:
      return cvk::box_ioa(args...);
    case 2:
      return cvk::generalized_box_iou(args...);
    case 3:
      return cvk::distance_box_iou(args...);
    default:
      return cvk::complete_box_iou(args...);
  }
}
template <class... Args>
auto aligned(std::size_t m, const Args&... args) {
  switch (m) {
    case 0:
      return cvk::box_iou_aligned(args...);
    case 1:
      return cvk::box_ioa_aligned(args...);
    case 2:
      return cvk::generalized_box_iou_aligned(args...);
    case 3:
      return cvk::distance_box_iou_aligned(args...);
    default:
      return cvk::complete_box_iou_aligned(args...);
  }
}

template <class T>
void fuzz_iou_family(byte_reader& in) {
  cvk::iou_options o;
  const unsigned format = in.u8() % 5U;
  o.format = static_cast<cvk::box_format>(format);
  if (in.flag()) o.eps = cvk_fuzz::threshold(in) * 1e-5;
  o.threads = 1 + static_cast<int>(in.below(2));
  const std::size_t n = in.u8() % 24;
  const std::size_t m_count = in.u8() % 24;
  const boxes_t<T> a = cvk_fuzz::boxes<T>(in, n);
  const boxes_t<T> b = cvk_fuzz::boxes<T>(in, m_count);
  const std::size_t common = std::min(n, m_count);
  const boxes_t<T> b_aligned(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(common));
  const boxes_t<T> a_aligned(a.begin(), a.begin() + static_cast<std::ptrdiff_t>(common));

  // corners in xyxy, as the documented conversion gives them
  const auto corners = [&](const std::array<T, 4>& box) {
    return cvk::box_convert(box, o.format, cvk::box_format::xyxy);
  };
  for (std::size_t k = 0; k < metrics.size(); ++k) {
    const metric& mt = metrics[k];
    const bool valid = format < 4 && (!mt.checks_eps || o.eps >= 0);
    cvk::tensor<T, 2> p;
    cvk::tensor<T, 1> al;
    const bool threw = cvk_fuzz::throws_cvk_error([&] {
      p = pairwise(k, a, b, o);
      al = aligned(k, a_aligned, b_aligned, o);
    });
    CVK_FUZZ_CHECK(threw == !valid, mt.name, ": valid ", valid, " but threw ", threw, " (eps ",
                   o.eps, ", format ", format, ")");
    if (threw) continue;
    // a mismatched aligned call is a shape error
    if (n != m_count) {
      CVK_FUZZ_CHECK(cvk_fuzz::throws_cvk_error([&] { (void)aligned(k, a, b, o); }), mt.name,
                     "_aligned: ", n, " and ", m_count, " boxes did not throw");
    }
    CVK_FUZZ_CHECK(p.extent(0) == static_cast<index_t>(n) &&
                       p.extent(1) == static_cast<index_t>(m_count) &&
                       al.size() == static_cast<index_t>(common),
                   mt.name, ": result shapes");
    for (std::size_t i = 0; i < n; ++i) {
      const auto ca = corners(a[i]);
      for (std::size_t j = 0; j < m_count; ++j) {
        const T v = p(static_cast<index_t>(i), static_cast<index_t>(j));
        const auto cb = corners(b[j]);
        const bool finite = cvk_fuzz::finite(ca) && cvk_fuzz::finite(cb);
        if (i == j) {
          const T single = [&] {
            switch (k) {
              case 0:
                return cvk::box_iou(a[i], b[j], o);
              case 1:
                return cvk::box_ioa(a[i], b[j], o);
              case 2:
                return cvk::generalized_box_iou(a[i], b[j], o);
              case 3:
                return cvk::distance_box_iou(a[i], b[j], o);
              default:
                return cvk::complete_box_iou(a[i], b[j], o);
            }
          }();
          CVK_FUZZ_CHECK(same_bits(v, al(static_cast<index_t>(i))) && same_bits(v, single), mt.name,
                         ": forms differ at pair ", i, ": pairwise ", v, ", aligned ",
                         al(static_cast<index_t>(i)), ", single ", single);
        }
        // a NaN coordinate gives NaN in every member (docs/boxes.md)
        const bool has_nan =
            std::any_of(ca.begin(), ca.end(), [](auto x) { return std::isnan(x); }) ||
            std::any_of(cb.begin(), cb.end(), [](auto x) { return std::isnan(x); });
        CVK_FUZZ_CHECK(!has_nan || std::isnan(v), mt.name, ": pair (", i, ", ", j,
                       ") with a NaN coordinate gave ", v, ", not NaN");
        if (!finite) {
          // an infinite one follows torchvision's arithmetic (docs/boxes.md): a finite
          // intersection over an infinite union is 0, inf - inf and inf / inf are NaN; so IoU
          // is 0 or NaN, IoA in [0, 1] or NaN
          if (!has_nan && k == 0) {
            CVK_FUZZ_CHECK(v == T(0) || std::isnan(v), mt.name, ": pair (", i, ", ", j,
                           ") with an infinite coordinate gave ", v, ", not 0 or NaN");
          }
          if (!has_nan && k == 1) {
            CVK_FUZZ_CHECK(std::isnan(v) || (v >= T(0) && v <= T(1)), mt.name, ": pair (", i, ", ",
                           j, ") with an infinite coordinate gave ", v);
          }
          continue;
        }
        // sizes whose products cannot overflow: the result must be a number
        const double bound = sizeof(T) == 4 ? 1e17 : 1e150;
        bool moderate = true;
        for (std::size_t c = 0; c < 4; ++c) {
          moderate = moderate && std::fabs(static_cast<double>(ca[c])) < bound &&
                     std::fabs(static_cast<double>(cb[c])) < bound;
        }
        if (!moderate) continue;
        CVK_FUZZ_CHECK(!std::isnan(v), mt.name, ": finite pair (", i, ", ", j, ") gave NaN");
        // GIoU, DIoU and CIoU are bounded for ordered corners only (an inverted box has a
        // negative area and a centre outside the enclosing box); IoU and IoA always
        const bool ordered = ca[0] <= ca[2] && ca[1] <= ca[3] && cb[0] <= cb[2] && cb[1] <= cb[3];
        const double slack = sizeof(T) == 4 ? 1e-6 : 1e-14;
        CVK_FUZZ_CHECK((!ordered && k >= 2) || static_cast<double>(v) >= mt.lo - slack &&
                                                   static_cast<double>(v) <= mt.hi + slack,
                       mt.name, ": pair (", i, ", ", j, ") = ", v, " outside [", mt.lo, ", ", mt.hi,
                       "]");
        bool representable = o.format == cvk::box_format::xyxy;
        for (std::size_t c = 0; c < 4; ++c) {
          representable = representable && exact(ca[c]) && exact(cb[c]);
        }
        if (!representable || !(o.eps >= 0)) continue;
        const long double want =
            cvk_test::reference::iou_pair(mt.kind, ca, cb, 2, static_cast<long double>(o.eps));
        const long double tolerance =
            (sizeof(T) == 4 ? 4e-6L : 1e-13L) * std::max(1.0L, std::fabs(want));
        CVK_FUZZ_CHECK(std::fabs(static_cast<long double>(v) - want) <= tolerance, mt.name,
                       ": pair (", i, ", ", j, ") = ", v, ", the reference ",
                       static_cast<double>(want));
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Losses.

template <class... Args>
auto loss(std::size_t k, const Args&... args) {
  switch (k) {
    case 0:
      return cvk::iou_loss(args...);
    case 1:
      return cvk::generalized_box_iou_loss(args...);
    case 2:
      return cvk::distance_box_iou_loss(args...);
    default:
      return cvk::complete_box_iou_loss(args...);
  }
}
template <class... Args>
auto loss_backward(std::size_t k, const Args&... args) {
  switch (k) {
    case 0:
      return cvk::iou_loss_backward(args...);
    case 1:
      return cvk::generalized_box_iou_loss_backward(args...);
    case 2:
      return cvk::distance_box_iou_loss_backward(args...);
    default:
      return cvk::complete_box_iou_loss_backward(args...);
  }
}
constexpr std::array<const char*, 4> loss_names = {
    "iou_loss", "generalized_box_iou_loss", "distance_box_iou_loss", "complete_box_iou_loss"};
constexpr std::array<double, 4> loss_max = {1, 2, 2, 3};

/// An upper bound of Σ |term| over the chain-rule terms summed into one column of loss k's
/// gradient with respect to pred (upstream gradient 1), from the pair's sides, intersection,
/// union, enclosing box and centres in double: each term is a side over a denominator (union,
/// enclosing area, squared diagonal) or such a quotient times a ratio of them; ×2 for the sums
/// of the xywh / cxcywh chain. Infinite when a denominator is 0 or a value is not finite (the
/// caller then skips the comparison).
template <class T>
double gradient_term_bound(std::size_t k, const std::array<T, 4>& pred,
                           const std::array<T, 4>& target, const cvk::box_loss_options& o) {
  auto p = cvk::box_convert(pred, o.format, cvk::box_format::xyxy);
  const auto t = cvk::box_convert(target, o.format, cvk::box_format::xyxy);
  if (o.order_pred_corners) {
    p = {std::min(p[0], p[2]), std::min(p[1], p[3]), std::max(p[0], p[2]), std::max(p[1], p[3])};
  }
  const auto d = [](T v) { return static_cast<double>(v); };
  const double wp = d(p[2]) - d(p[0]), hp = d(p[3]) - d(p[1]);
  const double wt = d(t[2]) - d(t[0]), ht = d(t[3]) - d(t[1]);
  const double wi = std::max(0.0, std::min(d(p[2]), d(t[2])) - std::max(d(p[0]), d(t[0])));
  const double hi = std::max(0.0, std::min(d(p[3]), d(t[3])) - std::max(d(p[1]), d(t[1])));
  const double cw = std::max(0.0, std::max(d(p[2]), d(t[2])) - std::min(d(p[0]), d(t[0])));
  const double ch = std::max(0.0, std::max(d(p[3]), d(t[3])) - std::min(d(p[1]), d(t[1])));
  const double dx = (d(p[0]) + d(p[2]) - d(t[0]) - d(t[2])) / 2;
  const double dy = (d(p[1]) + d(p[3]) - d(t[1]) - d(t[3])) / 2;
  const double side = std::max({std::fabs(wp), std::fabs(hp), std::fabs(wt), std::fabs(ht), cw, ch,
                                std::fabs(dx), std::fabs(dy)});
  const double inter = wi * hi;
  const double uni = std::fabs(wp * hp + wt * ht - inter);
  double bound = 4 * side * (1 / uni + inter / (uni * uni));
  if (k == 1) {
    const double hull = cw * ch;
    bound += 4 * side * (1 / hull + std::fabs(hull - uni) / (hull * hull));
  } else if (k >= 2) {
    const double diag2 = cw * cw + ch * ch + o.eps;
    const double centre2 = dx * dx + dy * dy;
    bound += 4 * (side / diag2 + centre2 * side / (diag2 * diag2));
    if (k == 3) {
      bound +=
          4 / std::max(std::fabs(wp), std::fabs(hp)) + 4 / std::max(std::fabs(wt), std::fabs(ht));
    }
  }
  return 2 * bound;
}

template <class T>
void fuzz_losses(byte_reader& in) {
  cvk::box_loss_options o;
  const unsigned format = in.u8() % 5U;
  o.format = static_cast<cvk::box_format>(format);
  if (in.flag()) o.eps = std::fabs(cvk_fuzz::threshold(in)) * 1e-5;
  o.order_pred_corners = in.flag();
  const std::size_t n = in.u8() % 16;
  const bool mismatch = (in.u8() & 7U) == 0;
  const boxes_t<T> pred = cvk_fuzz::boxes<T>(in, n);
  const boxes_t<T> target = cvk_fuzz::boxes<T>(in, n + (mismatch ? 1 : 0));
  const std::vector<T> grad_loss = cvk_fuzz::scores<T>(in, n);
  // A NaN eps (from a NaN threshold) is rejected like a negative one (docs/errors.md).
  const bool valid = format < 4 && !mismatch && o.eps >= 0;

  for (std::size_t k = 0; k < 4; ++k) {
    const char* name = loss_names[k];
    cvk::tensor<T, 1> none;
    T sum{}, mean{};
    cvk::tensor<T, 2> grad_ones, grad_sum, grad_weighted;
    const bool threw = cvk_fuzz::throws_cvk_error([&] {
      none = loss(k, pred, target, o);
      sum = loss(k, pred, target, cvk::loss_reduction::sum, o);
      mean = loss(k, pred, target, cvk::loss_reduction::mean, o);
      grad_ones = loss_backward(k, pred, target, std::vector<T>(n, T(1)), o);
      grad_sum = loss_backward(k, pred, target, cvk::loss_reduction::sum, o);
      grad_weighted = loss_backward(k, pred, target, grad_loss, o);
    });
    CVK_FUZZ_CHECK(threw == !valid, name, ": valid ", valid, " but threw ", threw, " (eps ", o.eps,
                   ", format ", format, ", ", n, " pred and ", target.size(), " target boxes)");
    if (threw) continue;
    CVK_FUZZ_CHECK(cvk_fuzz::throws_cvk_error([&] {
                     // A reduction chosen at run time: the literal none does not compile.
                     const cvk::loss_reduction none_reduction = cvk::loss_reduction::none;
                     (void)loss(k, pred, target, none_reduction, o);
                   }),
                   name, ": reduction none in the reduced form did not throw");
    double total = 0;
    bool all_finite = true;
    for (std::size_t i = 0; i < n; ++i) {
      const T v = none(static_cast<index_t>(i));
      const T single = loss(k, pred[i], target[i], o);
      CVK_FUZZ_CHECK(same_bits(v, single), name, ": box ", i, " batch ", v, ", single ", single);
      const auto single_grad = loss_backward(k, pred[i], target[i], o);
      for (std::size_t c = 0; c < 4; ++c) {
        const T g = grad_ones(static_cast<index_t>(i), static_cast<index_t>(c));
        CVK_FUZZ_CHECK(same_bits(g, single_grad[c]), name, "_backward: box ", i, " column ", c,
                       " batch ", g, ", single ", single_grad[c]);
        CVK_FUZZ_CHECK(same_bits(g, grad_sum(static_cast<index_t>(i), static_cast<index_t>(c))),
                       name, "_backward: sum reduction differs from unit upstream gradients");
        const double want = static_cast<double>(grad_loss[i]) * static_cast<double>(g);
        const double got =
            static_cast<double>(grad_weighted(static_cast<index_t>(i), static_cast<index_t>(c)));
        // The gradient is a sum of chain-rule terms: both forms round each term, so they agree
        // to a few ulps of the terms, not of the sum, which cancels to ~1e-17 on some boxes.
        const double terms = gradient_term_bound(k, pred[i], target[i], o);
        // With a huge upstream gradient (1e37 in float) the weighted chain's products overflow
        // T where upstream × unit, formed in double, does not (as in torch): compared only
        // while upstream × terms stays 2^40 below T's largest value.
        const double headroom = static_cast<double>(std::numeric_limits<T>::max()) * 0x1p-40;
        const double upstream = std::fabs(static_cast<double>(grad_loss[i]));
        if (std::isfinite(want) && std::isfinite(terms) &&
            upstream * std::max(1.0, terms) <= headroom) {
          const double tol =
              32 * static_cast<double>(std::numeric_limits<T>::epsilon()) *
                  (std::fabs(want) + std::fabs(static_cast<double>(grad_loss[i])) * terms) +
              static_cast<double>(std::numeric_limits<T>::min());
          CVK_FUZZ_CHECK(std::fabs(got - want) <= tol, name, "_backward: box ", i, " column ", c,
                         " weighted ", got, ", upstream × unit ", want, " (terms up to ", terms,
                         ")");
        }
      }
      all_finite = all_finite && std::isfinite(v);
      total += static_cast<double>(v);
      // valid, moderate xyxy boxes with positive sides: the loss in range, a finite gradient
      const auto& p = pred[i];
      const auto& t = target[i];
      bool regular = o.format == cvk::box_format::xyxy && o.eps <= 1e-5;
      for (std::size_t c = 0; c < 4; ++c) regular = regular && exact(p[c]) && exact(t[c]);
      regular = regular && p[2] > p[0] && p[3] > p[1] && t[2] > t[0] && t[3] > t[1];
      if (!regular) continue;
      const double slack = sizeof(T) == 4 ? 1e-5 : 1e-12;
      CVK_FUZZ_CHECK(
          static_cast<double>(v) >= -slack && static_cast<double>(v) <= loss_max[k] + slack, name,
          ": box ", i, " loss ", v, " outside [0, ", loss_max[k], "]");
      for (std::size_t c = 0; c < 4; ++c) {
        CVK_FUZZ_CHECK(std::isfinite(single_grad[c]), name, "_backward: box ", i,
                       " gradient not finite");
      }
      if constexpr (std::is_same_v<T, double>) {
        if (k == 3) continue;  // CIoU's α is a constant in the gradient (torchvision)
        // away from the kinks of min/max and of the intersection mask, the analytic gradient
        // is the derivative: central differences
        const double scale =
            std::max({1.0, std::fabs(p[0]), std::fabs(p[2]), std::fabs(p[1]), std::fabs(p[3])});
        const double h = 1e-6 * scale;
        const double xi = std::min(p[2], t[2]) - std::max(p[0], t[0]);
        const double yi = std::min(p[3], t[3]) - std::max(p[1], t[1]);
        const std::array<double, 6> gaps = {p[0] - t[0], p[1] - t[1], p[2] - t[2],
                                            p[3] - t[3], xi,          yi};
        bool smooth = true;
        for (const double gap : gaps) smooth = smooth && std::fabs(gap) > 100 * h;
        if (!smooth) continue;
        for (std::size_t c = 0; c < 4; ++c) {
          std::array<T, 4> up = p, down = p;
          up[c] += h;
          down[c] -= h;
          const double fd =
              (static_cast<double>(loss(k, up, t, o)) - static_cast<double>(loss(k, down, t, o))) /
              (2 * h);
          CVK_FUZZ_CHECK(std::fabs(fd - single_grad[c]) <= 1e-5 * (1 + std::fabs(fd)), name,
                         "_backward: box ", i, " column ", c, " analytic ", single_grad[c],
                         ", central difference ", fd);
        }
      }
    }
    if (all_finite) {
      const double tol =
          8 * static_cast<double>(std::numeric_limits<T>::epsilon()) * (std::fabs(total) + 1);
      CVK_FUZZ_CHECK(std::fabs(static_cast<double>(sum) - total) <= tol, name, ": sum ", sum,
                     ", the sum of the losses ", total);
      const double want_mean = n == 0 ? 0.0 : total / static_cast<double>(n);
      CVK_FUZZ_CHECK(std::fabs(static_cast<double>(mean) - want_mean) <= tol, name, ": mean ", mean,
                     ", want ", want_mean);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Rotated IoU / GIoU and quadrilateral IoU.

template <class T>
bool empty_rotated(const std::array<T, 5>& r) {
  const double w = static_cast<double>(r[2]);
  const double h = static_cast<double>(r[3]);
  return !(w > 0 && h > 0 && w * h >= 1e-14);
}

template <class T>
void fuzz_rotated(byte_reader& in) {
  cvk::rotated_options o;
  const std::uint8_t flags = in.u8();
  o.unit = (flags & 1U) != 0 ? cvk::angle_unit::radians : cvk::angle_unit::degrees;
  o.direction = (flags & 2U) != 0 ? cvk::rotation_direction::clockwise
                                  : cvk::rotation_direction::counter_clockwise;
  o.threads = 1 + static_cast<int>(in.below(2));
  const std::size_t n = in.u8() % 12;
  std::vector<std::array<T, 5>> a;
  for (std::size_t i = 0; i < n; ++i) a.push_back(cvk_fuzz::rotated_box<T>(in, a));
  std::vector<std::array<T, 5>> b = a;  // the pairs (i, i) are identical boxes
  if ((flags & 4U) != 0) {
    b.clear();
    for (std::size_t i = 0; i < n; ++i) b.push_back(cvk_fuzz::rotated_box<T>(in, a));
  }
  // In range (docs/boxes.md): finite values with |w|, |h| <= 2^500; anything else gives NaN in
  // every form ("rotated_box_iou: finite boxes near the largest double"). Centres may be any
  // finite number: IoU stays a number, GIoU may be NaN when the hull of two far-apart boxes
  // overflows (centres beyond 2^500).
  const auto in_range = [](const std::array<T, 5>& r) {
    return cvk_fuzz::finite(r) && std::fabs(static_cast<double>(r[2])) <= 0x1p500 &&
           std::fabs(static_cast<double>(r[3])) <= 0x1p500;
  };
  const auto centred = [](const std::array<T, 5>& r) {
    return std::fabs(static_cast<double>(r[0])) <= 0x1p500 &&
           std::fabs(static_cast<double>(r[1])) <= 0x1p500;
  };
  const auto iou = cvk::rotated_box_iou(a, b, o);
  const auto iou_aligned = cvk::rotated_box_iou_aligned(a, b, o);
  const auto giou = cvk::rotated_generalized_box_iou(a, b, o);
  const auto giou_aligned = cvk::rotated_generalized_box_iou_aligned(a, b, o);
  const auto iou_swapped = cvk::rotated_box_iou(b, a, o);
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = 0; j < n; ++j) {
      const auto ii = static_cast<index_t>(i);
      const auto jj = static_cast<index_t>(j);
      const T v = iou(ii, jj);
      const T g = giou(ii, jj);
      const bool finite = in_range(a[i]) && in_range(b[j]);
      CVK_FUZZ_CHECK(finite == !std::isnan(v), "rotated_box_iou: pair (", i, ", ", j, ") = ", v,
                     " (NaN exactly for input out of range): (", a[i][0], ", ", a[i][1], ", ",
                     a[i][2], ", ", a[i][3], ", ", a[i][4], ") and (", b[j][0], ", ", b[j][1], ", ",
                     b[j][2], ", ", b[j][3], ", ", b[j][4], ")");
      const bool near = centred(a[i]) && centred(b[j]);
      CVK_FUZZ_CHECK(finite ? (!near || !std::isnan(g)) : std::isnan(g),
                     "rotated_generalized_box_iou: pair (", i, ", ", j, ") = ", g,
                     " (NaN exactly for input out of range)");
      if (i == j) {
        CVK_FUZZ_CHECK(
            same_bits(v, iou_aligned(ii)) && same_bits(v, cvk::rotated_box_iou(a[i], b[j], o)),
            "rotated_box_iou: forms differ at pair ", i, ": pairwise ", v, ", aligned ",
            iou_aligned(ii), ", single ", cvk::rotated_box_iou(a[i], b[j], o));
        CVK_FUZZ_CHECK(same_bits(g, giou_aligned(ii)) &&
                           same_bits(g, cvk::rotated_generalized_box_iou(a[i], b[j], o)),
                       "rotated_generalized_box_iou: forms differ at pair ", i);
      }
      if (!finite) continue;
      CVK_FUZZ_CHECK(v >= T(0) && v <= T(1), "rotated_box_iou: pair (", i, ", ", j, ") = ", v);
      CVK_FUZZ_CHECK((!near && std::isnan(g)) || (g >= T(-1) && g <= v),
                     "rotated_generalized_box_iou: pair (", i, ", ", j, ") = ", g, " with IoU ", v);
      const T w = iou_swapped(jj, ii);
      const double tol = sizeof(T) == 4 ? 2e-7 : 1e-12;
      CVK_FUZZ_CHECK(std::fabs(static_cast<double>(v) - static_cast<double>(w)) <= tol,
                     "rotated_box_iou: not symmetric at (", i, ", ", j, "): ", v, " and ", w);
      if (a[i] == b[j] && !empty_rotated(a[i])) {
        CVK_FUZZ_CHECK(v == T(1), "rotated_box_iou: identical boxes ", i, " give ", v, ", not 1");
      }
      if (empty_rotated(a[i]) || empty_rotated(b[j])) {
        CVK_FUZZ_CHECK(v == T(0), "rotated_box_iou: an empty box in pair (", i, ", ", j, ") gives ",
                       v);
      }
    }
  }
}

template <class T>
void fuzz_quad(byte_reader& in) {
  cvk::quad_options o;
  o.threads = 1 + static_cast<int>(in.below(2));
  const std::size_t n = in.u8() % 12;
  std::vector<std::array<T, 8>> a(n), b(n);
  for (auto* set : {&a, &b}) {
    for (auto& q : *set) {
      if (in.flag()) {
        // a rectangle's corners, starting anywhere, in either orientation: convex
        const auto r = cvk_fuzz::box<T>(in, {});
        std::array<std::array<T, 2>, 4> v = {
            {{r[0], r[1]}, {r[2], r[1]}, {r[2], r[3]}, {r[0], r[3]}}};
        const std::size_t start = in.below(4);
        const bool reverse = in.flag();
        for (std::size_t k = 0; k < 4; ++k) {
          const std::size_t s = reverse ? (start + 4 - k) % 4 : (start + k) % 4;
          q[2 * k] = v[s][0];
          q[2 * k + 1] = v[s][1];
        }
      } else {
        for (auto& x : q) x = cvk_fuzz::value<T>(in);
      }
    }
  }
  // In range (docs/boxes.md): finite, every vertex within 2^500 of the vertex mean; beyond it
  // NaN in every form ("quad_iou: a finite quad whose shoelace products overflow"). The mean in
  // long double; offsets within a factor 2 of the limit are not classified (the library's mean
  // is rounded in double).
  enum class range { in, out, edge };
  const auto classify = [](const std::array<T, 8>& q) {
    if (!cvk_fuzz::finite(q)) return range::out;
    long double far = 0;
    for (std::size_t axis = 0; axis < 2; ++axis) {
      long double mean = 0;
      for (std::size_t k = 0; k < 4; ++k) mean += static_cast<long double>(q[2 * k + axis]);
      mean /= 4;
      for (std::size_t k = 0; k < 4; ++k) {
        far = std::max(far, std::fabs(static_cast<long double>(q[2 * k + axis]) - mean));
      }
    }
    return far <= 0x1p499L ? range::in : far > 0x1p501L ? range::out : range::edge;
  };
  const auto iou = cvk::quad_iou(a, b, o);
  const auto iou_aligned = cvk::quad_iou_aligned(a, b, o);
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = 0; j < n; ++j) {
      const T v = iou(static_cast<index_t>(i), static_cast<index_t>(j));
      const range ra = classify(a[i]);
      const range rb = classify(b[j]);
      const bool finite = ra == range::in && rb == range::in;
      const bool out = ra == range::out || rb == range::out;
      CVK_FUZZ_CHECK(!(finite || out) || finite == !std::isnan(v), "quad_iou: pair (", i, ", ", j,
                     ") = ", v, " (NaN exactly for input out of range)");
      if (i == j) {
        CVK_FUZZ_CHECK(same_bits(v, iou_aligned(static_cast<index_t>(i))) &&
                           same_bits(v, cvk::quad_iou(a[i], b[j], o)),
                       "quad_iou: forms differ at pair ", i, ": pairwise ", v, ", aligned ",
                       iou_aligned(static_cast<index_t>(i)), ", single ",
                       cvk::quad_iou(a[i], b[j], o));
      }
      // any quad, convex or not, gives a value in [0, 1] (docs/boxes.md)
      if (!std::isnan(v))
        CVK_FUZZ_CHECK(v >= T(0) && v <= T(1), "quad_iou: pair (", i, ", ", j, ") = ", v);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  byte_reader in(data, size);
  const std::uint8_t head = in.u8();
  const bool dbl = (head & 16U) != 0;
  switch (head & 3U) {
    case 0:
      dbl ? fuzz_iou_family<double>(in) : fuzz_iou_family<float>(in);
      break;
    case 1:
      dbl ? fuzz_losses<double>(in) : fuzz_losses<float>(in);
      break;
    case 2:
      dbl ? fuzz_rotated<double>(in) : fuzz_rotated<float>(in);
      break;
    default:
      dbl ? fuzz_quad<double>(in) : fuzz_quad<float>(in);
      break;
  }
  return 0;
}
