// cvk — computer-vision kernels, header-only C++20.
// Tests of cvk/box/loss.hpp: the IoU-family losses and their gradients against torchvision 0.14
// (values and autograd gradients in tests/data/box_loss_iou.txt, written by
// tests/gen_loss_fixtures.py) and against central finite differences; kl_loss against its
// formula, torch autograd (tests/data/box_loss_kl.txt) and finite differences.
// SPDX-License-Identifier: MIT
#include <cvk/box/loss.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include <cvk/box/format.hpp>
#include <cvk/core/errors.hpp>
#include <cvk/core/rng.hpp>
#include <cvk/core/std_adaptors.hpp>
#include <cvk/core/strided_view.hpp>
#include <cvk/core/tensor.hpp>

#include "support/compare.hpp"
#include "support/error_inputs.hpp"
#include "support/fixtures.hpp"

using cvk::index_t;
using box4 = std::array<double, 4>;

static_assert(std::is_same_v<decltype(cvk::generalized_box_iou_loss(
                                 std::declval<const std::vector<std::array<float, 4>>&>(),
                                 std::declval<const std::vector<std::array<float, 4>>&>())),
                             cvk::tensor<float, 1>>);
static_assert(
    std::is_same_v<decltype(cvk::iou_loss(std::declval<const std::vector<std::array<int, 4>>&>(),
                                          std::declval<const std::vector<std::array<int, 4>>&>(),
                                          cvk::loss_reduction::mean)),
                   double>);
static_assert(std::is_same_v<decltype(cvk::complete_box_iou_loss_backward(
                                 std::declval<const std::vector<std::array<float, 4>>&>(),
                                 std::declval<const std::vector<std::array<double, 4>>&>(),
                                 cvk::loss_reduction::sum)),
                             cvk::tensor<double, 2>>);
static_assert(std::is_same_v<decltype(cvk::distance_box_iou_loss_backward(
                                 std::declval<const std::array<float, 4>&>(),
                                 std::declval<const std::array<float, 4>&>())),
                             std::array<float, 4>>);
static_assert(
    std::is_same_v<decltype(cvk::kl_loss_backward(std::declval<const cvk::tensor<float, 2>&>(),
                                                  std::declval<const cvk::tensor<float, 2>&>(),
                                                  std::declval<const cvk::tensor<float, 2>&>(),
                                                  cvk::loss_reduction::mean)),
                   cvk::kl_loss_gradients<float>>);

namespace {

template <class T>
struct dtype;
template <>
struct dtype<float> {
  static constexpr const char* name = "float32";
};
template <>
struct dtype<double> {
  static constexpr const char* name = "float64";
};

const cvk_test::fixture_file& iou_fixtures() {
  static const cvk_test::fixture_file file(cvk_test::test_data_path("box_loss_iou.txt"));
  return file;
}

const cvk_test::fixture_file& kl_fixtures() {
  static const cvk_test::fixture_file file(cvk_test::test_data_path("box_loss_kl.txt"));
  return file;
}

// One struct per loss, so that the checks below are written once and call the public overloads.
#define CVK_TEST_LOSS(type, function, label, exact_match)           \
  struct type {                                                     \
    static constexpr const char* name = label;                      \
    static constexpr bool exact = exact_match;                      \
    template <class... Args>                                        \
    static decltype(auto) loss(Args&&... args) {                    \
      return cvk::function(std::forward<Args>(args)...);            \
    }                                                               \
    template <class... Args>                                        \
    static decltype(auto) backward(Args&&... args) {                \
      return cvk::function##_backward(std::forward<Args>(args)...); \
    }                                                               \
  };
// `exact`: cvk computes torch's separate elementwise ops in the same order with the same
// roundings, so values and gradients are the same numbers. CIoU is not exact: torch's CPU atan
// is SLEEF's vectorized atan (within 1 ulp), cvk's is the C library's; a 1-ulp difference of
// atan(w/h) moves the aspect term of the gradient by a few ulp of the row's largest component.
CVK_TEST_LOSS(iou_fn, iou_loss, "iou", true)
CVK_TEST_LOSS(giou_fn, generalized_box_iou_loss, "giou", true)
CVK_TEST_LOSS(diou_fn, distance_box_iou_loss, "diou", true)
CVK_TEST_LOSS(ciou_fn, complete_box_iou_loss, "ciou", false)
#undef CVK_TEST_LOSS

/// |actual - expected| <= tolerance, or both NaN.
template <class T>
bool close(T actual, T expected, long double tolerance) {
  if (std::isnan(expected) || std::isnan(actual)) return cvk_test::same_value(actual, expected);
  return std::fabs(static_cast<long double>(actual) - static_cast<long double>(expected)) <=
         tolerance;
}

/// Error allowed between a reduction of `n` per-box losses and torch's. The losses are
/// non-negative, so every summation order is within (n - 1) eps Σ|x| of the exact sum. For float
/// cvk sums in double and rounds once, torch sums in float with its cascade (error about
/// log2(n) eps Σ|x|): 8 eps Σ|x|. For double both are within n eps Σ|x| of the exact sum.
template <class T>
long double reduction_tolerance(long double sum_abs, std::size_t n) {
  const long double eps = std::numeric_limits<T>::epsilon();
  const long double factor = std::is_same_v<T, float> ? 8.0L : 2.0L * static_cast<long double>(n);
  return factor * eps * sum_abs;
}

/// Checks `Loss` (all its overloads) against one variant of the fixture tables.
template <class Loss, class T>
void check_iou_family_fixture(const std::string& variant, const cvk::box_loss_options& options) {
  const auto& file = iou_fixtures();
  const std::string dt = dtype<T>::name;
  const auto pred = file.table("pred/" + dt).rows_of<T, 4>();
  const auto target = file.table("target/" + dt).rows_of<T, 4>();
  const auto grad_loss = file.table("grad_loss/" + dt).values<T>();
  const std::string prefix = std::string(Loss::name) + variant + "/";
  const auto expected = file.table(prefix + "none/" + dt).values<T>();
  const std::size_t n = pred.size();
  REQUIRE(n > 100);
  REQUIRE(expected.size() == n);
  const long double eps = std::numeric_limits<T>::epsilon();
  INFO(prefix << dt);

  // Values, reduction none: the returned tensor and the out form.
  const cvk::tensor<T, 1> values = Loss::loss(pred, target, options);
  std::vector<T> out(n, T(-7));
  Loss::loss(pred, target, out, options);
  long double sum_abs = 0;
  for (std::size_t i = 0; i < n; ++i) {
    INFO("box " << i << ": got " << values(i) << ", torchvision " << expected[i]);
    if (Loss::exact) {
      CHECK(cvk_test::ulp_distance(values(i), expected[i]) == 0);
    } else {
      const long double scale = std::max<long double>(1, std::fabs(expected[i]));
      CHECK(close(values(i), expected[i], 16 * eps * scale));
    }
    CHECK(cvk_test::same_value(out[i], values(i)));
    sum_abs += std::fabs(static_cast<long double>(expected[i]));
  }

  // Reductions.
  const T mean = file.table(prefix + "mean/" + dt).values<T>().at(0);
  const T sum = file.table(prefix + "sum/" + dt).values<T>().at(0);
  const T got_mean = Loss::loss(pred, target, cvk::loss_reduction::mean, options);
  const T got_sum = Loss::loss(pred, target, cvk::loss_reduction::sum, options);
  CHECK(close(got_sum, sum, reduction_tolerance<T>(sum_abs, n)));
  CHECK(close(got_mean, mean,
              reduction_tolerance<T>(sum_abs, n) / static_cast<long double>(n) + eps * mean));

  // Gradients: none (vector-Jacobian product with grad_loss), mean and sum; value and out forms.
  const auto check_gradient = [&](const std::string& table, const cvk::tensor<T, 2>& got) {
    const auto want = file.table(prefix + table + "/" + dt).rows_of<T, 4>();
    REQUIRE(got.extent(0) == static_cast<index_t>(n));
    for (std::size_t i = 0; i < n; ++i) {
      long double row_scale = 0;
      for (const T g : want[i]) row_scale = std::max<long double>(row_scale, std::fabs(g));
      for (std::size_t k = 0; k < 4; ++k) {
        const T g = got(static_cast<index_t>(i), static_cast<index_t>(k));
        INFO(table << " box " << i << " coordinate " << k << ": got " << g << ", torch "
                   << want[i][k]);
        if (Loss::exact) {
          CHECK(cvk_test::ulp_distance(g, want[i][k]) == 0);
        } else {
          CHECK(close(g, want[i][k], 16 * eps * std::max<long double>(row_scale, 1e-30L)));
        }
      }
    }
  };
  const cvk::tensor<T, 2> grad_none = Loss::backward(pred, target, grad_loss, options);
  check_gradient("grad_none", grad_none);
  const cvk::tensor<T, 2> grad_mean =
      Loss::backward(pred, target, cvk::loss_reduction::mean, options);
  check_gradient("grad_mean", grad_mean);
  cvk::tensor<T, 2> grad_sum(static_cast<index_t>(n), index_t{4});
  Loss::backward(pred, target, cvk::loss_reduction::sum, grad_sum, options);
  check_gradient("grad_sum", grad_sum);
  cvk::tensor<T, 2> grad_none_out(static_cast<index_t>(n), index_t{4});
  Loss::backward(pred, target, grad_loss, grad_none_out, options);
  CHECK(std::equal(grad_none_out.begin(), grad_none_out.end(), grad_none.begin(),
                   [](T a, T b) { return cvk_test::same_value(a, b); }));
}

template <class Loss, class T>
void check_degenerate_fixture() {
  const auto& file = iou_fixtures();
  const std::string dt = dtype<T>::name;
  const auto pred = file.table("degenerate/pred/" + dt).rows_of<T, 4>();
  const auto target = file.table("degenerate/target/" + dt).rows_of<T, 4>();
  const std::string prefix = std::string("degenerate/") + Loss::name + "/";
  const auto expected = file.table(prefix + "none/" + dt).values<T>();
  const auto expected_grad = file.table(prefix + "grad_sum/" + dt).rows_of<T, 4>();
  const auto values = Loss::loss(pred, target);
  const auto grad = Loss::backward(pred, target, cvk::loss_reduction::sum);
  for (std::size_t i = 0; i < pred.size(); ++i) {
    INFO(prefix << dt << " box " << i);
    CHECK(cvk_test::same_value(values(static_cast<index_t>(i)), expected[i]));
    for (std::size_t k = 0; k < 4; ++k) {
      CHECK(cvk_test::same_value(grad(static_cast<index_t>(i), static_cast<index_t>(k)),
                                 expected_grad[i][k]));
    }
  }
}

template <class Loss, class T>
void check_all_fixture_variants() {
  check_iou_family_fixture<Loss, T>("", {});
  cvk::box_loss_options ordered;
  ordered.order_pred_corners = true;
  check_iou_family_fixture<Loss, T>("/ordered", ordered);
  if constexpr (!std::is_same_v<Loss, ciou_fn>) {
    cvk::box_loss_options wide;
    wide.eps = 0.01;
    check_iou_family_fixture<Loss, T>("/eps=0.01", wide);
  }
  check_degenerate_fixture<Loss, T>();
}

// --- Finite differences ----------------------------------------------------------------------

struct box_pair {
  box4 pred;
  box4 target;
};

/// The smallest distance of a pair to a kink of the IoU-family losses: a tie in one of the
/// min/max (intersection, enclosing box, corner ordering) or the boundary of the intersection
/// mask; and the smallest predicted width or height (atan(w/h) of CIoU).
double distance_to_kinks(const box_pair& pair) {
  const auto& p = pair.pred;
  const auto& t = pair.target;
  double d = std::numeric_limits<double>::infinity();
  for (std::size_t k = 0; k < 4; ++k) d = std::min(d, std::fabs(p[k] - t[k]));
  const double px1 = std::min(p[0], p[2]), px2 = std::max(p[0], p[2]);
  const double py1 = std::min(p[1], p[3]), py2 = std::max(p[1], p[3]);
  for (const auto& q : {p, box4{px1, py1, px2, py2}}) {
    d = std::min(d, std::fabs(std::min(q[2], t[2]) - std::max(q[0], t[0])));
    d = std::min(d, std::fabs(std::min(q[3], t[3]) - std::max(q[1], t[1])));
    for (std::size_t k = 0; k < 4; ++k) d = std::min(d, std::fabs(q[k] - t[k]));
  }
  d = std::min(d, std::fabs(p[2] - p[0]));
  d = std::min(d, std::fabs(p[3] - p[1]));
  return d;
}

/// Random pairs at least 0.05 away from every kink: overlapping (jittered target), disjoint and
/// nested predictions, and, when `inverted`, some with swapped corners.
std::vector<box_pair> smooth_pairs(std::uint64_t seed, std::size_t n, bool inverted) {
  cvk::rng gen(seed);
  std::vector<box_pair> pairs;
  while (pairs.size() < n) {
    const double x1 = gen.uniform(-50.0, 150.0);
    const double y1 = gen.uniform(-50.0, 150.0);
    const double w = gen.uniform(5.0, 60.0);
    const double h = gen.uniform(5.0, 60.0);
    box_pair pair{{}, {x1, y1, x1 + w, y1 + h}};
    const auto kind = gen.below(3);
    if (kind == 0) {  // overlapping
      for (std::size_t k = 0; k < 4; ++k) {
        pair.pred[k] = pair.target[k] + gen.uniform(-0.3, 0.3) * (k % 2 == 0 ? w : h);
      }
    } else if (kind == 1) {  // disjoint
      const double dx = gen.uniform(1.1, 2.0) * w;
      const double dy = gen.uniform(-0.5, 0.5) * h;
      pair.pred = {x1 + dx, y1 + dy, x1 + dx + gen.uniform(3.0, 40.0),
                   y1 + dy + gen.uniform(3.0, 40.0)};
    } else {  // nested
      pair.pred = {x1 + gen.uniform(0.1, 0.4) * w, y1 + gen.uniform(0.1, 0.4) * h,
                   x1 + gen.uniform(0.6, 0.9) * w, y1 + gen.uniform(0.6, 0.9) * h};
    }
    if (inverted && gen.bernoulli(0.4)) std::swap(pair.pred[0], pair.pred[2]);
    if (inverted && gen.bernoulli(0.4)) std::swap(pair.pred[1], pair.pred[3]);
    if (distance_to_kinks(pair) > 0.05) pairs.push_back(pair);
  }
  return pairs;
}

/// CIoU's v for xyxy boxes, written from the definition (Zheng et al., eq. 9).
double aspect_term(const box4& p, const box4& t) {
  const double pi = 3.141592653589793238462643383279502884;
  const double angle =
      std::atan((t[2] - t[0]) / (t[3] - t[1])) - std::atan((p[2] - p[0]) / (p[3] - p[1]));
  return 4.0 / (pi * pi) * angle * angle;
}

box4 ordered_box(const box4& b) {
  return {std::min(b[0], b[2]), std::min(b[1], b[3]), std::max(b[0], b[2]), std::max(b[1], b[3])};
}

/// The function whose gradient `Loss::backward` is: the loss itself, except for CIoU, whose α
/// is held at its value at `base` (torchvision computes α under torch.no_grad()).
template <class Loss>
auto differentiated_function(const box4& base, const box4& target,
                             const cvk::box_loss_options& options) {
  if constexpr (std::is_same_v<Loss, ciou_fn>) {
    const auto xyxy = [options](const box4& b) {
      const box4 c = cvk::box_convert(b, options.format, cvk::box_format::xyxy);
      return options.order_pred_corners ? ordered_box(c) : c;
    };
    const box4 t = cvk::box_convert(target, options.format, cvk::box_format::xyxy);
    const double iou0 = 1.0 - cvk::iou_loss(base, target, options);
    const double v0 = aspect_term(xyxy(base), t);
    const double alpha0 = v0 / (1.0 - iou0 + v0 + options.eps);
    return [=](const box4& p) {
      return cvk::distance_box_iou_loss(p, target, options) + alpha0 * aspect_term(xyxy(p), t);
    };
  } else {
    static_cast<void>(base);
    return [target, options](const box4& p) {
      return static_cast<double>(Loss::loss(p, target, options));
    };
  }
}

/// Central differences of f at p, step h in each coordinate.
template <class F>
box4 central_difference(const F& f, const box4& p, double h) {
  box4 g{};
  for (std::size_t k = 0; k < 4; ++k) {
    box4 hi = p;
    box4 lo = p;
    hi[k] += h;
    lo[k] -= h;
    g[k] = (f(hi) - f(lo)) / (2 * h);
  }
  return g;
}

template <class Loss>
void check_finite_differences(cvk::box_format format, bool order) {
  const auto pairs = smooth_pairs(format == cvk::box_format::xyxy ? 11 : 12, 60, order);
  cvk::box_loss_options options;
  options.format = format;
  options.order_pred_corners = order;
  std::vector<box4> pred;
  std::vector<box4> target;
  for (const auto& pair : pairs) {
    pred.push_back(cvk::box_convert(pair.pred, cvk::box_format::xyxy, format));
    target.push_back(cvk::box_convert(pair.target, cvk::box_format::xyxy, format));
  }
  const auto grad_sum = Loss::backward(pred, target, cvk::loss_reduction::sum, options);
  const auto grad_mean = Loss::backward(pred, target, cvk::loss_reduction::mean, options);
  const double n = static_cast<double>(pred.size());
  for (std::size_t i = 0; i < pred.size(); ++i) {
    const auto f = differentiated_function<Loss>(pred[i], target[i], options);
    const box4 fd = central_difference(f, pred[i], 1e-5);
    double row_scale = 0;
    for (const double g : fd) row_scale = std::max(row_scale, std::fabs(g));
    const auto single = Loss::backward(pred[i], target[i], options);
    for (std::size_t k = 0; k < 4; ++k) {
      const auto r = static_cast<index_t>(i);
      const auto c = static_cast<index_t>(k);
      INFO(Loss::name << " " << cvk::to_string(format) << (order ? " ordered" : "") << " box " << i
                      << " coordinate " << k << ": analytic " << grad_sum(r, c)
                      << ", finite difference " << fd[k]);
      CHECK(std::fabs(grad_sum(r, c) - fd[k]) <= 1e-6 * row_scale + 1e-10);
      CHECK(grad_mean(r, c) == Approx(grad_sum(r, c) / n).epsilon(1e-12).margin(1e-300));
      CHECK(cvk_test::same_value(single[k], grad_sum(r, c)));
    }
  }
}

template <class Loss>
void check_finite_differences_all() {
  for (const auto format : {cvk::box_format::xyxy, cvk::box_format::xywh, cvk::box_format::cxcywh,
                            cvk::box_format::yxyx}) {
    check_finite_differences<Loss>(format, false);
  }
  check_finite_differences<Loss>(cvk::box_format::xyxy, true);
}

}  // namespace

// --- Fixtures --------------------------------------------------------------------------------

TEMPLATE_TEST_CASE("iou_loss matches torchvision's _loss_inter_union and autograd",
                   "[box][loss][fixture]", float, double) {
  check_all_fixture_variants<iou_fn, TestType>();
}

TEMPLATE_TEST_CASE("generalized_box_iou_loss matches torchvision and autograd",
                   "[box][loss][fixture]", float, double) {
  check_all_fixture_variants<giou_fn, TestType>();
}

TEMPLATE_TEST_CASE("distance_box_iou_loss matches torchvision and autograd", "[box][loss][fixture]",
                   float, double) {
  check_all_fixture_variants<diou_fn, TestType>();
}

TEMPLATE_TEST_CASE("complete_box_iou_loss matches torchvision and autograd", "[box][loss][fixture]",
                   float, double) {
  check_all_fixture_variants<ciou_fn, TestType>();
}

// --- Gradients against finite differences ---------------------------------------------------

TEST_CASE("iou_loss gradient equals central finite differences", "[box][loss][gradient]") {
  check_finite_differences_all<iou_fn>();
}

TEST_CASE("generalized_box_iou_loss gradient equals central finite differences",
          "[box][loss][gradient]") {
  check_finite_differences_all<giou_fn>();
}

TEST_CASE("distance_box_iou_loss gradient equals central finite differences",
          "[box][loss][gradient]") {
  check_finite_differences_all<diou_fn>();
}

TEST_CASE("complete_box_iou_loss gradient equals finite differences with alpha held constant",
          "[box][loss][gradient]") {
  check_finite_differences_all<ciou_fn>();
}

TEST_CASE("complete_box_iou_loss: alpha is not differentiated", "[box][loss][gradient]") {
  // A pair with a large aspect term: the full derivative (α differentiated too) is measurably
  // different from torchvision's gradient, which cvk reproduces.
  const box4 pred{0.0, 0.0, 40.0, 10.0};
  const box4 target{5.0, -8.0, 25.0, 22.0};
  const box4 analytic = cvk::complete_box_iou_loss_backward(pred, target);
  const box4 full = central_difference(
      [&](const box4& p) { return cvk::complete_box_iou_loss(p, target); }, pred, 1e-5);
  const box4 frozen =
      central_difference(differentiated_function<ciou_fn>(pred, target, {}), pred, 1e-5);
  double full_gap = 0;
  for (std::size_t k = 0; k < 4; ++k) {
    CHECK(std::fabs(analytic[k] - frozen[k]) <= 1e-9);
    full_gap = std::max(full_gap, std::fabs(analytic[k] - full[k]));
  }
  CHECK(full_gap > 1e-4);
}

TEST_CASE("box losses split the gradient in half at min/max ties, as torch",
          "[box][loss][gradient]") {
  // torch.maximum / torch.minimum give half the gradient to each of two equal arguments: at a
  // tie the gradient is the mean of the two one-sided gradients (everything else is smooth).
  // pred and target share y1 and y2 (ties in the intersection and in the enclosing box).
  const box4 pred{0.0, 0.0, 2.0, 2.0};
  const box4 target{1.0, 0.0, 3.0, 2.0};
  const double delta = 1e-7;
  const auto check = [&](auto loss_fn) {
    using Loss = decltype(loss_fn);
    for (const std::size_t k : {std::size_t{1}, std::size_t{3}}) {
      box4 above = pred;
      box4 below = pred;
      above[k] += delta;
      below[k] -= delta;
      const box4 at_tie = Loss::backward(pred, target);
      const box4 g_above = Loss::backward(above, target);
      const box4 g_below = Loss::backward(below, target);
      INFO(Loss::name << " coordinate " << k << ": " << at_tie[k] << " vs one-sided " << g_above[k]
                      << ", " << g_below[k]);
      CHECK(std::fabs(g_above[k] - g_below[k]) > 1e-3);  // a real kink
      CHECK(at_tie[k] == Approx((g_above[k] + g_below[k]) / 2).margin(1e-6));
    }
  };
  check(giou_fn{});
  check(diou_fn{});
  check(ciou_fn{});
  // IoU: the enclosing box is not involved; only the intersection's max(y1)/min(y2) tie.
  check(iou_fn{});
}

TEST_CASE("box losses: no gradient through an empty intersection mask, as torchvision",
          "[box][loss][gradient]") {
  // Touching boxes: torchvision's mask (x2 > x1) & (y2 > y1) is false, the intersection is the
  // constant 0, so IoU's gradient is exactly zero although overlapping by 1e-3 gives a slope.
  const box4 pred{0.0, 0.0, 1.0, 1.0};
  const box4 target{1.0, 0.0, 2.0, 1.0};
  const box4 touching = cvk::iou_loss_backward(pred, target);
  for (const double g : touching) CHECK(g == 0.0);
  const box4 overlapping = cvk::iou_loss_backward(box4{0.0, 0.0, 1.001, 1.0}, target);
  CHECK(overlapping[2] < -0.4);
}

// --- API forms, layouts and types ------------------------------------------------------------

TEST_CASE("box losses: options defaults", "[box][loss]") {
  const cvk::box_loss_options options;
  CHECK(options.format == cvk::box_format::xyxy);
  CHECK(options.eps == 1e-7);
  CHECK_FALSE(options.order_pred_corners);
  CHECK(std::string(cvk::to_string(cvk::loss_reduction::none)) == "none");
  CHECK(std::string(cvk::to_string(cvk::loss_reduction::mean)) == "mean");
  CHECK(std::string(cvk::to_string(cvk::loss_reduction::sum)) == "sum");
}

TEMPLATE_TEST_CASE("box losses: strided views, cvk::tensor and std containers agree",
                   "[box][loss][layout]", float, double) {
  using T = TestType;
  const auto pairs = smooth_pairs(21, 17, true);
  const auto n = static_cast<index_t>(pairs.size());
  std::vector<std::array<T, 4>> pred;
  std::vector<std::array<T, 4>> target;
  for (const auto& pair : pairs) {
    pred.push_back({static_cast<T>(pair.pred[0]), static_cast<T>(pair.pred[1]),
                    static_cast<T>(pair.pred[2]), static_cast<T>(pair.pred[3])});
    target.push_back({static_cast<T>(pair.target[0]), static_cast<T>(pair.target[1]),
                      static_cast<T>(pair.target[2]), static_cast<T>(pair.target[3])});
  }
  // pred as rows of 6 with two unrelated columns; target column-major; a cvk::tensor copy.
  std::vector<T> pred_rows(static_cast<std::size_t>(n) * 6, T(-99));
  std::vector<T> target_cols(static_cast<std::size_t>(n) * 4);
  cvk::tensor<T, 2> pred_tensor(n, index_t{4});
  for (index_t i = 0; i < n; ++i) {
    for (index_t k = 0; k < 4; ++k) {
      const auto u = static_cast<std::size_t>(i);
      const auto c = static_cast<std::size_t>(k);
      pred_rows[u * 6 + 1 + c] = pred[u][c];
      target_cols[c * static_cast<std::size_t>(n) + u] = target[u][c];
      pred_tensor(i, k) = pred[u][c];
    }
  }
  const auto pred_view = cvk::view(pred_rows.data() + 1, {n, index_t{4}}, {index_t{6}, index_t{1}});
  const auto target_view = cvk::view(target_cols.data(), {n, index_t{4}}, {index_t{1}, n});

  const auto check = [&](auto loss_fn) {
    using Loss = decltype(loss_fn);
    INFO(Loss::name);
    const cvk::tensor<T, 1> reference = Loss::loss(pred, target);
    const cvk::tensor<T, 2> reference_grad = Loss::backward(pred, target, cvk::loss_reduction::sum);
    // Strided output of the losses (every other element) and a transposed gradient output.
    std::vector<T> strided_out(static_cast<std::size_t>(n) * 2, T(5));
    Loss::loss(pred_view, target_view, cvk::view(strided_out.data(), {n}, {index_t{2}}));
    std::vector<T> grad_cols(static_cast<std::size_t>(n) * 4);
    Loss::backward(pred_tensor, target_view, cvk::loss_reduction::sum,
                   cvk::view(grad_cols.data(), {n, index_t{4}}, {index_t{1}, n}));
    for (index_t i = 0; i < n; ++i) {
      const auto u = static_cast<std::size_t>(i);
      CHECK(cvk_test::same_value(strided_out[2 * u], reference(i)));
      CHECK(strided_out[2 * u + 1] == T(5));  // untouched
      for (index_t k = 0; k < 4; ++k) {
        const auto column_major = static_cast<std::size_t>(k) * static_cast<std::size_t>(n) + u;
        CHECK(cvk_test::same_value(grad_cols[column_major], reference_grad(i, k)));
      }
      // Single-box forms give the rows of the batched forms.
      CHECK(cvk_test::same_value(Loss::loss(pred[u], target[u]), reference(i)));
      const auto single_grad = Loss::backward(pred[u], target[u]);
      for (index_t k = 0; k < 4; ++k) {
        CHECK(cvk_test::same_value(single_grad[static_cast<std::size_t>(k)], reference_grad(i, k)));
      }
    }
    CHECK(cvk_test::same_value(Loss::loss(pred_view, target_view, cvk::loss_reduction::sum),
                               Loss::loss(pred, target, cvk::loss_reduction::sum)));
  };
  check(iou_fn{});
  check(giou_fn{});
  check(diou_fn{});
  check(ciou_fn{});
}

TEST_CASE("box losses: integer boxes are computed in double, mixed types in the wider type",
          "[box][loss][types]") {
  const std::vector<std::array<int, 4>> pred{{0, 0, 4, 3}, {10, 10, 12, 20}, {5, 5, 1, 9}};
  const std::vector<std::array<int, 4>> target{{1, 1, 5, 5}, {0, 0, 11, 11}, {2, 2, 6, 6}};
  std::vector<box4> pred_d;
  std::vector<box4> target_d;
  std::vector<std::array<float, 4>> pred_f;
  for (std::size_t i = 0; i < pred.size(); ++i) {
    pred_d.push_back(
        {double(pred[i][0]), double(pred[i][1]), double(pred[i][2]), double(pred[i][3])});
    target_d.push_back(
        {double(target[i][0]), double(target[i][1]), double(target[i][2]), double(target[i][3])});
    pred_f.push_back({float(pred[i][0]), float(pred[i][1]), float(pred[i][2]), float(pred[i][3])});
  }
  const cvk::tensor<double, 1> from_int = cvk::complete_box_iou_loss(pred, target);
  const cvk::tensor<double, 1> from_double = cvk::complete_box_iou_loss(pred_d, target_d);
  const cvk::tensor<double, 1> mixed = cvk::complete_box_iou_loss(pred_f, target_d);
  CHECK(from_int == from_double);
  CHECK(mixed == from_double);
  const cvk::tensor<double, 2> grad_int =
      cvk::generalized_box_iou_loss_backward(pred, target, std::vector<int>{1, -2, 3});
  const cvk::tensor<double, 2> grad_double =
      cvk::generalized_box_iou_loss_backward(pred_d, target_d, std::vector<double>{1, -2, 3});
  CHECK(grad_int == grad_double);
  // A double output for float input is allowed (widening): the float results, widened.
  std::vector<double> wide(3);
  cvk::iou_loss(pred_f, pred_f, wide);
  const cvk::tensor<float, 1> narrow = cvk::iou_loss(pred_f, pred_f);
  for (index_t i = 0; i < 3; ++i) CHECK(wide[static_cast<std::size_t>(i)] == double(narrow(i)));
}

TEST_CASE("box losses: formats give the losses of the converted boxes", "[box][loss][format]") {
  // Integer-valued corners with even sizes: every conversion is exact, so the values agree
  // exactly with those of the xyxy boxes.
  cvk::rng gen(5);
  std::vector<box4> pred;
  std::vector<box4> target;
  for (int i = 0; i < 40; ++i) {
    const auto corner = [&] { return static_cast<double>(gen.below(100)) - 20.0; };
    const auto size = [&] { return 2.0 * static_cast<double>(1 + gen.below(30)); };
    const double px = corner(), py = corner(), tx = corner(), ty = corner();
    pred.push_back({px, py, px + size(), py + size()});
    target.push_back({tx, ty, tx + size(), ty + size()});
  }
  const auto check = [&](auto loss_fn) {
    using Loss = decltype(loss_fn);
    const cvk::tensor<double, 1> reference = Loss::loss(pred, target);
    for (const auto format :
         {cvk::box_format::xywh, cvk::box_format::cxcywh, cvk::box_format::yxyx}) {
      INFO(Loss::name << " " << cvk::to_string(format));
      cvk::box_loss_options options;
      options.format = format;
      const auto converted =
          Loss::loss(cvk::box_convert(pred, cvk::box_format::xyxy, format),
                     cvk::box_convert(target, cvk::box_format::xyxy, format), options);
      CHECK(converted == reference);
    }
  };
  check(iou_fn{});
  check(giou_fn{});
  check(diou_fn{});
  check(ciou_fn{});
}

TEST_CASE("box losses: order_pred_corners (GIoU Algorithm 2, step 1)", "[box][loss]") {
  const box4 inverted{6.0, 7.0, 1.0, 2.0};
  const box4 in_order{1.0, 2.0, 6.0, 7.0};
  const box4 target{0.0, 3.0, 4.0, 9.0};
  cvk::box_loss_options ordered;
  ordered.order_pred_corners = true;
  const auto check = [&](auto loss_fn) {
    using Loss = decltype(loss_fn);
    INFO(Loss::name);
    // Off (torchvision): the inverted box has negative width and height and another loss.
    CHECK(Loss::loss(inverted, target) != Loss::loss(in_order, target));
    CHECK(Loss::loss(inverted, target, ordered) == Loss::loss(in_order, target));
    // Boxes already in order are unaffected.
    CHECK(Loss::loss(in_order, target, ordered) == Loss::loss(in_order, target));
    const box4 g = Loss::backward(inverted, target, ordered);
    const box4 g_in_order = Loss::backward(in_order, target);
    CHECK(g == box4{g_in_order[2], g_in_order[3], g_in_order[0], g_in_order[1]});
  };
  check(iou_fn{});
  check(giou_fn{});
  check(diou_fn{});
  check(ciou_fn{});
}

TEST_CASE("box losses: empty input", "[box][loss]") {
  const std::vector<box4> none;
  CHECK(cvk::generalized_box_iou_loss(none, none).size() == 0);
  // Mean of nothing is 0, as torchvision's 0.0 * loss.sum().
  CHECK(cvk::generalized_box_iou_loss(none, none, cvk::loss_reduction::mean) == 0.0);
  CHECK(cvk::complete_box_iou_loss(none, none, cvk::loss_reduction::mean) == 0.0);
  CHECK(cvk::iou_loss(none, none, cvk::loss_reduction::sum) == 0.0);
  const cvk::tensor<double, 2> grad =
      cvk::distance_box_iou_loss_backward(none, none, cvk::loss_reduction::mean);
  CHECK(grad.extent(0) == 0);
  CHECK(grad.extent(1) == 4);
  CHECK(cvk::kl_loss(none, none, none, cvk::loss_reduction::mean) == 0.0);
  CHECK(cvk::kl_loss_backward(none, none, none, cvk::loss_reduction::mean).grad_pred.size() == 0);
}

TEST_CASE("box losses: reduction none", "[box][loss]") {
  const std::vector<box4> pred{{0.0, 0.0, 2.0, 3.0}, {1.0, 1.0, 4.0, 2.5}};
  const std::vector<box4> target{{0.5, 0.5, 2.5, 2.5}, {0.0, 0.0, 3.0, 3.0}};
  // The scalar form has no value for none: the literal does not compile (tests/compile_fail/
  // scalar_loss_none.cpp), a reduction chosen at run time throws.
  const cvk::loss_reduction runtime_none = GENERATE(cvk::loss_reduction(cvk::loss_reduction::none));
  CHECK(runtime_none == cvk::loss_reduction::none);
  CHECK(runtime_none != cvk::loss_reduction::mean);
  try {
    static_cast<void>(cvk::generalized_box_iou_loss(pred, target, runtime_none));
    FAIL("no exception");
  } catch (const cvk::invalid_argument& e) {
    CHECK(std::string(e.what()) ==
          "generalized_box_iou_loss: reduction none gives one loss per element; call the overload "
          "without a reduction, or the one with an out tensor");
  }
  CHECK_THROWS_AS(cvk::kl_loss(pred, pred, target, runtime_none), cvk::invalid_argument);
  // The backward of none is each box's own gradient: an upstream gradient of ones.
  const auto by_reduction =
      cvk::complete_box_iou_loss_backward(pred, target, cvk::loss_reduction::none);
  const auto by_ones = cvk::complete_box_iou_loss_backward(pred, target, std::vector<double>{1, 1});
  const auto by_sum = cvk::complete_box_iou_loss_backward(pred, target, cvk::loss_reduction::sum);
  CHECK(by_reduction == by_ones);
  CHECK(by_reduction == by_sum);
  const auto kl_none = cvk::kl_loss_backward(pred, target, target, cvk::loss_reduction::none);
  const auto kl_ones =
      cvk::kl_loss_backward(pred, target, target, std::vector<box4>(2, box4{1.0, 1.0, 1.0, 1.0}));
  CHECK(kl_none.grad_pred == kl_ones.grad_pred);
  CHECK(kl_none.grad_log_var == kl_ones.grad_log_var);
}

TEST_CASE("box losses: error messages", "[box][loss][errors]") {
  const auto message = [](auto&& call) {
    try {
      call();
    } catch (const cvk::shape_error& e) {
      return std::string(e.what());
    }
    return std::string("no shape_error");
  };
  const std::vector<box4> five(5, box4{0, 0, 1, 1});
  const std::vector<box4> seven(7, box4{0, 0, 1, 1});
  const std::vector<std::array<double, 3>> five_by_3(5);
  CHECK(message([&] { static_cast<void>(cvk::generalized_box_iou_loss(five, seven)); }) ==
        "generalized_box_iou_loss: pred and target must have the same number of boxes, got 5×4 "
        "and 7×4");
  CHECK(message([&] { static_cast<void>(cvk::iou_loss(five_by_3, five)); }) ==
        "iou_loss: pred must be N×4, got 5×3");
  CHECK(message([&] {
          static_cast<void>(cvk::distance_box_iou_loss(five, five_by_3, cvk::loss_reduction::sum));
        }) == "distance_box_iou_loss: target must be N×4, got 5×3");
  std::vector<double> out3(3, 42.0);
  CHECK(message([&] { cvk::generalized_box_iou_loss(five, five, out3); }) ==
        "generalized_box_iou_loss: out must be 5, got 3");
  CHECK(std::all_of(out3.begin(), out3.end(), [](double v) { return v == 42.0; }));
  CHECK(message([&] {
          static_cast<void>(
              cvk::complete_box_iou_loss_backward(five, five, std::vector<double>(4)));
        }) == "complete_box_iou_loss_backward: grad_loss must be 5, got 4");
  std::vector<std::array<double, 3>> grad_5x3(5);
  CHECK(message([&] {
          cvk::distance_box_iou_loss_backward(five, five, cvk::loss_reduction::mean, grad_5x3);
        }) == "distance_box_iou_loss_backward: grad_pred must be 5×4, got 5×3");
  CHECK(message([&] {
          static_cast<void>(cvk::iou_loss_backward(five, seven, cvk::loss_reduction::sum));
        }) ==
        "iou_loss_backward: pred and target must have the same number of boxes, got 5×4 "
        "and 7×4");
  CHECK(message([&] {
          static_cast<void>(
              cvk::generalized_box_iou_loss(std::array<double, 5>{}, std::array<double, 4>{}));
        }) == "generalized_box_iou_loss: pred must be 4, got 5");
  CHECK(message([&] { static_cast<void>(cvk::kl_loss(five, std::vector<box4>(6), five)); }) ==
        "kl_loss: pred and log_var must have the same number of boxes, got 5×4 and 6×4");
  CHECK(message([&] {
          static_cast<void>(cvk::kl_loss(five, five, seven, cvk::loss_reduction::mean));
        }) == "kl_loss: pred and target must have the same number of boxes, got 5×4 and 7×4");
  CHECK(message([&] { static_cast<void>(cvk::kl_loss(five, five_by_3, five)); }) ==
        "kl_loss: log_var must be N×4, got 5×3");
  std::vector<box4> grad_pred(5);
  std::vector<box4> grad_log_var4(4);
  CHECK(message([&] {
          cvk::kl_loss_backward(five, five, five, cvk::loss_reduction::sum, grad_pred,
                                grad_log_var4);
        }) == "kl_loss_backward: grad_log_var must be 5×4, got 4×4");
  CHECK(message([&] {
          static_cast<void>(cvk::kl_loss_backward(five, five, five, std::vector<box4>(4)));
        }) == "kl_loss_backward: grad_loss must be 5×4, got 4×4");
  cvk::tensor<double, 2> kl_out(4, 4);
  CHECK(message([&] { cvk::kl_loss(five, five, five, kl_out); }) ==
        "kl_loss: out must be 5×4, got 4×4");
}

// --- kl_loss ---------------------------------------------------------------------------------

namespace {

/// KL loss of one coordinate from the paper's formula, in long double.
long double kl_reference(long double pred, long double log_var, long double target) {
  const long double d = target - pred;
  const long double smooth = std::fabs(d) <= 1 ? d * d / 2 : std::fabs(d) - 0.5L;
  return std::exp(-log_var) * smooth + log_var / 2;
}

/// Sum of the magnitudes of the two terms of the KL loss (the scale of its rounding error).
long double kl_scale(long double pred, long double log_var, long double target) {
  const long double d = target - pred;
  const long double smooth = std::fabs(d) <= 1 ? d * d / 2 : std::fabs(d) - 0.5L;
  return std::exp(-log_var) * smooth + std::fabs(log_var) / 2;
}

struct kl_inputs {
  std::vector<box4> pred, log_var, target;
};

/// Coordinates with |target - pred| in [0.05, 0.95] or [1.05, 4] (both branches, away from the
/// switch at 1 where finite differences straddle it).
kl_inputs random_kl_inputs(std::uint64_t seed, std::size_t n) {
  cvk::rng gen(seed);
  kl_inputs in;
  for (std::size_t i = 0; i < n; ++i) {
    box4 p{}, v{}, t{};
    for (std::size_t k = 0; k < 4; ++k) {
      p[k] = gen.uniform(-5.0, 5.0);
      v[k] = gen.uniform(-3.0, 3.0);
      const double sign = gen.bernoulli(0.5) ? 1.0 : -1.0;
      const double d = gen.bernoulli(0.5) ? gen.uniform(0.05, 0.95) : gen.uniform(1.05, 4.0);
      t[k] = p[k] + sign * d;
    }
    in.pred.push_back(p);
    in.log_var.push_back(v);
    in.target.push_back(t);
  }
  return in;
}

}  // namespace

TEMPLATE_TEST_CASE("kl_loss equals the formula of He et al. on both branches", "[box][loss][kl]",
                   float, double) {
  using T = TestType;
  const auto in = random_kl_inputs(31, 50);
  std::vector<std::array<T, 4>> pred, log_var, target;
  for (std::size_t i = 0; i < in.pred.size(); ++i) {
    std::array<T, 4> p{}, v{}, t{};
    for (std::size_t k = 0; k < 4; ++k) {
      p[k] = static_cast<T>(in.pred[i][k]);
      v[k] = static_cast<T>(in.log_var[i][k]);
      t[k] = static_cast<T>(in.target[i][k]);
    }
    pred.push_back(p);
    log_var.push_back(v);
    target.push_back(t);
  }
  const cvk::tensor<T, 2> loss = cvk::kl_loss(pred, log_var, target);
  const long double eps = std::numeric_limits<T>::epsilon();
  long double sum = 0;
  long double sum_scale = 0;
  std::size_t quadratic = 0;
  for (std::size_t i = 0; i < pred.size(); ++i) {
    for (std::size_t k = 0; k < 4; ++k) {
      const long double want = kl_reference(pred[i][k], log_var[i][k], target[i][k]);
      const long double scale = kl_scale(pred[i][k], log_var[i][k], target[i][k]);
      const T got = loss(static_cast<index_t>(i), static_cast<index_t>(k));
      INFO("coordinate " << i << "," << k << ": " << got << " vs " << static_cast<double>(want));
      CHECK(std::fabs(got - want) <= 8 * eps * scale);
      sum += want;
      sum_scale += scale;
      if (std::fabs(static_cast<long double>(target[i][k]) - pred[i][k]) <= 1) ++quadratic;
    }
  }
  CHECK(quadratic > 50);  // both branches are exercised
  CHECK(quadratic < 150);
  const T got_sum = cvk::kl_loss(pred, log_var, target, cvk::loss_reduction::sum);
  const T got_mean = cvk::kl_loss(pred, log_var, target, cvk::loss_reduction::mean);
  CHECK(std::fabs(got_sum - sum) <= 8 * eps * sum_scale);
  CHECK(std::fabs(got_mean - sum / 200) <= 8 * eps * sum_scale / 200);
  // Continuity at |d| = 1: both branches give e^(-α)/2 + α/2.
  const std::vector<std::array<T, 4>> at_one{{T(0), T(0), T(0), T(0)}};
  const std::vector<std::array<T, 4>> alpha{{T(0.5), T(0.5), T(-1), T(-1)}};
  const std::vector<std::array<T, 4>> plus_minus_one{{T(1), T(-1), T(1), T(-1)}};
  const cvk::tensor<T, 2> edge = cvk::kl_loss(at_one, alpha, plus_minus_one);
  CHECK(edge(0, 0) == Approx(std::exp(-0.5) / 2 + 0.25).epsilon(1e-6));
  CHECK(edge(0, 2) == Approx(std::exp(1.0) / 2 - 0.5).epsilon(1e-6));
}

TEMPLATE_TEST_CASE("kl_loss matches torch autograd", "[box][loss][kl][fixture]", float, double) {
  using T = TestType;
  const auto& file = kl_fixtures();
  const std::string dt = dtype<T>::name;
  const auto pred = file.table("pred/" + dt).rows_of<T, 4>();
  const auto log_var = file.table("log_var/" + dt).rows_of<T, 4>();
  const auto target = file.table("target/" + dt).rows_of<T, 4>();
  const auto grad_loss = file.table("grad_loss/" + dt).rows_of<T, 4>();
  const std::size_t n = pred.size();
  REQUIRE(n == 64);
  // torch's exp is SLEEF's (within 1 ulp of the C library's), so allow a few ulp of the terms.
  const long double eps = std::numeric_limits<T>::epsilon();
  const auto scale_at = [&](std::size_t i, std::size_t k) {
    return kl_scale(pred[i][k], log_var[i][k], target[i][k]);
  };
  const auto values = file.table("kl/none/" + dt).rows_of<T, 4>();
  const cvk::tensor<T, 2> loss = cvk::kl_loss(pred, log_var, target);
  long double sum_scale = 0;
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t k = 0; k < 4; ++k) {
      CHECK(close(loss(static_cast<index_t>(i), static_cast<index_t>(k)), values[i][k],
                  4 * eps * scale_at(i, k)));
      sum_scale += scale_at(i, k);
    }
  }
  const T sum = file.table("kl/sum/" + dt).values<T>().at(0);
  const T mean = file.table("kl/mean/" + dt).values<T>().at(0);
  CHECK(close(cvk::kl_loss(pred, log_var, target, cvk::loss_reduction::sum), sum,
              8 * eps * sum_scale));
  CHECK(close(cvk::kl_loss(pred, log_var, target, cvk::loss_reduction::mean), mean,
              8 * eps * sum_scale / static_cast<long double>(4 * n)));

  const auto check_gradients = [&](const std::string& reduction,
                                   const cvk::kl_loss_gradients<T>& got, long double upstream_max) {
    const auto want_pred = file.table("kl/grad_pred_" + reduction + "/" + dt).rows_of<T, 4>();
    const auto want_var = file.table("kl/grad_log_var_" + reduction + "/" + dt).rows_of<T, 4>();
    for (std::size_t i = 0; i < n; ++i) {
      for (std::size_t k = 0; k < 4; ++k) {
        const auto r = static_cast<index_t>(i);
        const auto c = static_cast<index_t>(k);
        INFO(reduction << " coordinate " << i << "," << k);
        CHECK(close(got.grad_pred(r, c), want_pred[i][k],
                    4 * eps * std::fabs(static_cast<long double>(want_pred[i][k]))));
        CHECK(close(got.grad_log_var(r, c), want_var[i][k],
                    4 * eps * upstream_max * (0.5L + scale_at(i, k))));
      }
    }
  };
  long double grad_max = 0;
  for (const auto& row : grad_loss) {
    for (const T g : row) grad_max = std::max<long double>(grad_max, std::fabs(g));
  }
  check_gradients("none", cvk::kl_loss_backward(pred, log_var, target, grad_loss), grad_max);
  check_gradients("sum", cvk::kl_loss_backward(pred, log_var, target, cvk::loss_reduction::sum), 1);
  check_gradients("mean", cvk::kl_loss_backward(pred, log_var, target, cvk::loss_reduction::mean),
                  1.0L / static_cast<long double>(4 * n));
  // The out form writes the same numbers.
  cvk::tensor<T, 2> grad_pred(static_cast<index_t>(n), index_t{4});
  cvk::tensor<T, 2> grad_log_var(static_cast<index_t>(n), index_t{4});
  cvk::kl_loss_backward(pred, log_var, target, grad_loss, grad_pred, grad_log_var);
  const auto returned = cvk::kl_loss_backward(pred, log_var, target, grad_loss);
  CHECK(grad_pred == returned.grad_pred);
  CHECK(grad_log_var == returned.grad_log_var);
}

TEST_CASE("kl_loss gradients equal central finite differences on both branches",
          "[box][loss][kl][gradient]") {
  const auto in = random_kl_inputs(37, 40);
  const auto n = static_cast<index_t>(in.pred.size());
  // Upstream gradients of any sign, through a strided view (every other column of 8).
  cvk::rng gen(41);
  std::vector<double> upstream(static_cast<std::size_t>(n) * 8);
  for (auto& u : upstream) u = gen.uniform(-2.0, 2.0);
  const auto grad_loss = cvk::view(upstream.data(), {n, index_t{4}}, {index_t{8}, index_t{2}});
  const auto grads = cvk::kl_loss_backward(in.pred, in.log_var, in.target, grad_loss);
  const double h = 1e-5;
  for (index_t i = 0; i < n; ++i) {
    const auto u = static_cast<std::size_t>(i);
    for (index_t k = 0; k < 4; ++k) {
      const auto c = static_cast<std::size_t>(k);
      const auto loss_at = [&](double p, double v) {
        std::vector<box4> pred{in.pred[u]}, log_var{in.log_var[u]}, target{in.target[u]};
        pred[0][c] = p;
        log_var[0][c] = v;
        return cvk::kl_loss(pred, log_var, target)(0, k);
      };
      const double p = in.pred[u][c];
      const double v = in.log_var[u][c];
      const double g = grad_loss(i, k);
      const double fd_pred = g * (loss_at(p + h, v) - loss_at(p - h, v)) / (2 * h);
      const double fd_var = g * (loss_at(p, v + h) - loss_at(p, v - h)) / (2 * h);
      INFO("coordinate " << i << "," << k << " |d| = " << std::fabs(in.target[u][c] - p));
      CHECK(grads.grad_pred(i, k) == Approx(fd_pred).epsilon(1e-6).margin(1e-7));
      CHECK(grads.grad_log_var(i, k) == Approx(fd_var).epsilon(1e-6).margin(1e-7));
    }
  }
}

TEST_CASE("box losses reject a box_format outside the enum (issue 9 #8)",
          "[box][loss][errors][regression]") {
  // the old code read any other value as xyxy in every loss and gradient entry point
  const std::vector<box4> pred = {{0, 0, 2, 2}};
  const std::vector<box4> target = {{1, 1, 3, 3}};
  const box4 one_pred = pred[0];
  const box4 one_target = target[0];
  const std::vector<double> grad_loss = {1.0};
  cvk::box_loss_options o;
  o.format = static_cast<cvk::box_format>(7);
  const std::string tail = ": options.format must be xyxy, xywh, cxcywh or yxyx, got box_format(7)";
  const auto rejected = [&](const std::string& function) {
    return Catch::Message(function + tail);
  };
  CHECK_THROWS_MATCHES(cvk::generalized_box_iou_loss(pred, target, o), cvk::invalid_argument,
                       rejected("generalized_box_iou_loss"));
  std::vector<double> out(1);
  CHECK_THROWS_MATCHES(cvk::iou_loss(pred, target, out, o), cvk::invalid_argument,
                       rejected("iou_loss"));
  CHECK_THROWS_MATCHES(cvk::distance_box_iou_loss(pred, target, cvk::loss_reduction::sum, o),
                       cvk::invalid_argument, rejected("distance_box_iou_loss"));
  CHECK_THROWS_MATCHES(cvk::complete_box_iou_loss(one_pred, one_target, o), cvk::invalid_argument,
                       rejected("complete_box_iou_loss"));
  CHECK_THROWS_MATCHES(cvk::iou_loss_backward(pred, target, grad_loss, o), cvk::invalid_argument,
                       rejected("iou_loss_backward"));
  std::vector<box4> grad_pred(1);
  CHECK_THROWS_MATCHES(
      cvk::generalized_box_iou_loss_backward(pred, target, grad_loss, grad_pred, o),
      cvk::invalid_argument, rejected("generalized_box_iou_loss_backward"));
  CHECK_THROWS_MATCHES(
      cvk::distance_box_iou_loss_backward(pred, target, cvk::loss_reduction::mean, grad_pred, o),
      cvk::invalid_argument, rejected("distance_box_iou_loss_backward"));
  CHECK_THROWS_MATCHES(
      cvk::complete_box_iou_loss_backward(pred, target, cvk::loss_reduction::mean, o),
      cvk::invalid_argument, rejected("complete_box_iou_loss_backward"));
  CHECK_THROWS_MATCHES(cvk::iou_loss_backward(one_pred, one_target, o), cvk::invalid_argument,
                       rejected("iou_loss_backward"));
  // a valid format still works: IoU 1/7
  CHECK(cvk::iou_loss(pred, target)(0) == Approx(1.0 - 1.0 / 7.0));
}

TEST_CASE("errors table: the IoU-family losses and kl_loss, every form (docs/errors.md)",
          "[box][loss][errors]") {
  const std::vector<double> buffer(8, 1.0);
  const auto rank3 = cvk_test::rank3_view(buffer);
  const std::vector<box4> two = {{0, 0, 2, 2}, {1, 1, 3, 3}};
  CHECK_THROWS_MATCHES(cvk::iou_loss(rank3, two), cvk::shape_error,
                       Catch::Message("iou_loss: pred must have rank 2, got rank 3 (2×2×2)"));
  CHECK_THROWS_MATCHES(
      cvk::complete_box_iou_loss_backward(two, rank3, cvk::loss_reduction::sum), cvk::shape_error,
      Catch::Message(
          "complete_box_iou_loss_backward: target must have rank 2, got rank 3 (2×2×2)"));
  CHECK_THROWS_MATCHES(cvk::kl_loss(two, rank3, two), cvk::shape_error,
                       Catch::Message("kl_loss: log_var must have rank 2, got rank 3 (2×2×2)"));
  CHECK_THROWS_MATCHES(
      cvk::generalized_box_iou_loss(cvk::view(buffer.data(), {-1, 4}), two), cvk::shape_error,
      Catch::Message("generalized_box_iou_loss: pred has a negative extent, got -1×4"));
  // eps NaN or negative: rejected (it guards the denominators)
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (const double eps : {nan, -1e-7}) {
    const cvk::box_loss_options o{.eps = eps};
    CHECK_THROWS_WITH(cvk::iou_loss(two, two, o),
                      Catch::StartsWith("iou_loss: eps must be a number >= 0, got "));
    CHECK_THROWS_AS(cvk::distance_box_iou_loss(two, two, cvk::loss_reduction::mean, o),
                    cvk::invalid_argument);
    CHECK_THROWS_AS(cvk::complete_box_iou_loss_backward(two, two, cvk::loss_reduction::mean, o),
                    cvk::invalid_argument);
    CHECK_THROWS_AS(cvk::generalized_box_iou_loss(two[0], two[1], o), cvk::invalid_argument);
  }
  CHECK(cvk::iou_loss(two, two, {.eps = 0.0})(0) == 0.0);
  // a NaN coordinate makes that box's loss and gradient NaN, and no other
  std::vector<box4> pred = two;
  pred[1][2] = nan;
  const auto losses = cvk::generalized_box_iou_loss(pred, two);
  CHECK_FALSE(std::isnan(losses(0)));
  CHECK(std::isnan(losses(1)));
  const auto grad = cvk::complete_box_iou_loss_backward(pred, two, cvk::loss_reduction::none);
  CHECK_FALSE(std::isnan(grad(0, 0)));
  CHECK(std::isnan(grad(1, 2)));
  CHECK(std::isnan(cvk::kl_loss(pred, two, two)(1, 2)));
  // 2^40 broadcast boxes: a per-box result cannot be allocated
  const std::array<double, 4> row{0, 0, 1, 1};
  const auto many = cvk_test::broadcast_rows(row.data(), cvk_test::huge_rows, 4);
  CHECK_THROWS_AS(cvk::iou_loss(many, many), cvk::out_of_range);
  CHECK_THROWS_AS(cvk::generalized_box_iou_loss_backward(many, many, cvk::loss_reduction::sum),
                  cvk::out_of_range);
  CHECK_THROWS_AS(cvk::kl_loss(many, many, many), cvk::out_of_range);
}

TEST_CASE("complete_box_iou_loss: eps = 0 on identical boxes is 0, not NaN",
          "[box][loss][fuzz-finding]") {
  // 1 − IoU + v + eps = 0 there: α = 0 (v = 0), as the metric complete_box_iou (docs/boxes.md).
  cvk::box_loss_options o;
  o.eps = 0;
  const std::array<double, 4> a{1, 2, 5, 7};
  CHECK(cvk::complete_box_iou_loss(a, a, o) == 0.0);
  const auto g = cvk::complete_box_iou_loss_backward(a, a, o);
  for (const double v : g) CHECK(std::isfinite(v));
  const std::array<float, 4> f{-3.5f, 0.25f, 8, 9};
  CHECK(cvk::complete_box_iou_loss(f, f, o) == 0.0f);
  const std::vector<std::array<double, 4>> many{a, {0, 0, 2, 3}};
  CHECK(cvk::complete_box_iou_loss(many, many, cvk::loss_reduction::sum, o) == 0.0);
}
