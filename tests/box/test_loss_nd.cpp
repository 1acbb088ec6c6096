// cvk — computer-vision kernels, header-only C++20.
// Tests of cvk/box/loss_nd.hpp: the N-dimensional GIoU loss against its definition (long double),
// its gradient against central finite differences in double (away from ties), the 2-D case
// against the torchvision-exact 2-D loss, reductions and errors.
// SPDX-License-Identifier: MIT
#include <array>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstddef>
#include <vector>

#include <cvk/box/loss.hpp>
#include <cvk/box/loss_nd.hpp>
#include <cvk/core.hpp>

#include "support/error_inputs.hpp"

namespace {

// GIoU loss of one pair from the definition, in long double.
template <std::size_t Dim, class Box>
long double reference_loss(const Box& p, const Box& t, long double eps = 1e-7L) {
  long double inter = 1, vp = 1, vt = 1, vc = 1;
  bool overlap = true;
  for (std::size_t d = 0; d < Dim; ++d) {
    const long double lo = std::max<long double>(p[d], t[d]);
    const long double hi = std::min<long double>(p[Dim + d], t[Dim + d]);
    overlap = overlap && hi > lo;
    inter *= hi - lo;
    vp *= static_cast<long double>(p[Dim + d]) - p[d];
    vt *= static_cast<long double>(t[Dim + d]) - t[d];
    vc *= std::max<long double>(p[Dim + d], t[Dim + d]) - std::min<long double>(p[d], t[d]);
  }
  if (!overlap) inter = 0;
  const long double uni = vp + vt - inter;
  return 1 - inter / (uni + eps) + (vc - uni) / (vc + eps);
}

template <std::size_t Dim>
std::vector<std::array<double, 2 * Dim>> random_nd_boxes(cvk::rng& gen, std::size_t n) {
  std::vector<std::array<double, 2 * Dim>> boxes(n);
  for (auto& b : boxes) {
    for (std::size_t d = 0; d < Dim; ++d) {
      b[d] = gen.uniform(0.0, 40.0);
      b[Dim + d] = b[d] + gen.uniform(2.0, 30.0);
    }
  }
  return boxes;
}

// True when no coordinate of p is within `margin` of the matching coordinate of t (the min/max
// in the loss are then differentiable).
template <std::size_t Dim>
bool away_from_ties(const std::array<double, 2 * Dim>& p, const std::array<double, 2 * Dim>& t,
                    double margin) {
  for (std::size_t k = 0; k < 2 * Dim; ++k) {
    if (std::abs(p[k] - t[k]) < margin) return false;
  }
  for (std::size_t d = 0; d < Dim; ++d) {  // the intersection side is not at 0 either
    const double side = std::min(p[Dim + d], t[Dim + d]) - std::max(p[d], t[d]);
    if (std::abs(side) < margin) return false;
  }
  return true;
}

template <std::size_t Dim>
void check_dimension(std::uint64_t seed) {
  cvk::rng gen(seed);
  const auto pred = random_nd_boxes<Dim>(gen, 60);
  const auto target = random_nd_boxes<Dim>(gen, 60);
  const auto losses = cvk::generalized_box_iou_loss<Dim>(pred, target);
  REQUIRE(losses.size() == 60);
  long double sum = 0;
  for (std::size_t i = 0; i < 60; ++i) {
    CHECK(std::abs(losses(i) - reference_loss<Dim>(pred[i], target[i])) <= 1e-12);
    sum += reference_loss<Dim>(pred[i], target[i]);
  }
  CHECK(std::abs(cvk::generalized_box_iou_loss<Dim>(pred, target, cvk::loss_reduction::sum) -
                 sum) <= 1e-10);
  CHECK(std::abs(cvk::generalized_box_iou_loss<Dim>(pred, target, cvk::loss_reduction::mean) -
                 sum / 60) <= 1e-12);

  for (const bool order : {false, true}) {
    const cvk::box_loss_options options{.order_pred_corners = order};
    const auto grad = cvk::generalized_box_iou_loss_backward<Dim>(
        pred, target, cvk::loss_reduction::sum, options);
    REQUIRE(grad.extent(1) == static_cast<cvk::index_t>(2 * Dim));
    std::size_t checked = 0;
    for (std::size_t i = 0; i < 60; ++i) {
      if (!away_from_ties<Dim>(pred[i], target[i], 1e-3)) continue;
      ++checked;
      for (std::size_t k = 0; k < 2 * Dim; ++k) {
        const double h = 1e-6;
        auto plus = pred[i];
        auto minus = pred[i];
        plus[k] += h;
        minus[k] -= h;
        const std::vector<std::array<double, 2 * Dim>> p1{plus}, p2{minus}, t1{target[i]};
        const double numeric = (cvk::generalized_box_iou_loss<Dim>(p1, t1, options)(0) -
                                cvk::generalized_box_iou_loss<Dim>(p2, t1, options)(0)) /
                               (2 * h);
        INFO("Dim " << Dim << " box " << i << " coordinate " << k << " order " << order);
        CHECK(grad(static_cast<cvk::index_t>(i), static_cast<cvk::index_t>(k)) ==
              Approx(numeric).margin(1e-7).epsilon(1e-5));
      }
    }
    CHECK(checked > 30);
  }
}

}  // namespace

TEST_CASE("N-D GIoU loss: values and gradients, Dim 1 and 3", "[box][loss][nd]") {
  check_dimension<1>(1);
  check_dimension<3>(3);
}

TEST_CASE("N-D GIoU loss: the generic formula at Dim 2 equals the 2-D loss", "[box][loss][nd]") {
  cvk::rng gen(9);
  const auto pred = random_nd_boxes<2>(gen, 50);
  const auto target = random_nd_boxes<2>(gen, 50);
  const auto two_d = cvk::generalized_box_iou_loss(pred, target);
  const auto grad_2d =
      cvk::generalized_box_iou_loss_backward(pred, target, cvk::loss_reduction::sum);
  CHECK(cvk::generalized_box_iou_loss<2>(pred, target) == two_d);
  for (std::size_t i = 0; i < 50; ++i) {
    std::array<double, 4> g{};
    const double loss = cvk::detail::giou_loss_nd_one<2>(pred[i], target[i], 1e-7, false, 1.0, &g);
    CHECK(loss == Approx(two_d(static_cast<cvk::index_t>(i))).epsilon(1e-12));
    if (!away_from_ties<2>(pred[i], target[i], 1e-9)) continue;
    for (std::size_t k = 0; k < 4; ++k) {
      CHECK(g[k] == Approx(grad_2d(static_cast<cvk::index_t>(i), static_cast<cvk::index_t>(k)))
                        .margin(1e-12)
                        .epsilon(1e-9));
    }
  }
}

TEST_CASE("N-D GIoU loss: disjoint boxes still have a gradient, errors", "[box][loss][nd]") {
  // The paper's point, in 3-D: disjoint boxes, IoU 0, yet GIoU pulls the prediction closer.
  const std::vector<std::array<float, 6>> pred{{0, 0, 0, 1, 1, 1}};
  const std::vector<std::array<float, 6>> target{{3, 0, 0, 4, 1, 1}};
  const auto grad =
      cvk::generalized_box_iou_loss_backward<3>(pred, target, cvk::loss_reduction::mean);
  CHECK(grad(0, 3) < 0);  // moving x2 right lowers the loss
  CHECK(cvk::generalized_box_iou_loss<3>(pred, target)(0) > 1.0f);
  const std::vector<std::array<float, 4>> four(2);
  CHECK_THROWS_WITH(cvk::generalized_box_iou_loss<3>(four, four),
                    "generalized_box_iou_loss: pred must be N×6, got 2×4");
  const cvk::loss_reduction runtime_none = GENERATE(cvk::loss_reduction(cvk::loss_reduction::none));
  CHECK_THROWS_AS(cvk::generalized_box_iou_loss<3>(pred, target, runtime_none),
                  cvk::invalid_argument);
  const std::vector<std::array<float, 6>> none;
  CHECK(cvk::generalized_box_iou_loss<3>(none, none, cvk::loss_reduction::mean) == 0.0f);
}

TEST_CASE("errors table: the N-D GIoU loss (docs/errors.md)", "[box][loss][errors]") {
  const std::vector<float> buffer(8, 1.0F);
  const std::vector<std::array<float, 6>> two = {{0, 0, 0, 1, 1, 1}, {0, 0, 0, 2, 2, 2}};
  CHECK_THROWS_MATCHES(
      cvk::generalized_box_iou_loss<3>(cvk_test::rank3_view(buffer), two), cvk::shape_error,
      Catch::Message("generalized_box_iou_loss: pred must have rank 2, got rank 3 (2×2×2)"));
  const std::vector<std::array<float, 6>> one(1);
  CHECK_THROWS_WITH(cvk::generalized_box_iou_loss<3>(two, one),
                    Catch::Contains("pred and target must have the same number of boxes"));
  CHECK_THROWS_MATCHES(
      cvk::generalized_box_iou_loss<3>(two, two, {.eps = -1.0}), cvk::invalid_argument,
      Catch::Message("generalized_box_iou_loss: eps must be a number >= 0, got -1"));
  CHECK_THROWS_AS(
      cvk::generalized_box_iou_loss_backward<3>(two, two, cvk::loss_reduction::mean,
                                                {.eps = std::numeric_limits<double>::quiet_NaN()}),
      cvk::invalid_argument);
  std::vector<std::array<float, 6>> pred = two;
  pred[0][4] = std::numeric_limits<float>::quiet_NaN();
  const auto losses = cvk::generalized_box_iou_loss<3>(pred, two);
  CHECK(std::isnan(losses(0)));
  CHECK(losses(1) == 0.0F);
}
