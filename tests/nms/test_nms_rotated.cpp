// cvk — computer-vision kernels, header-only C++20.
// Tests of cvk/nms/rotated.hpp: nms_rotated and batched_nms_rotated against detectron2's
// algorithm written plainly (stable sort, O(N²) suppress-forward loop over the IoU matrix that
// cvk::rotated_box_iou gives) on random scenes of every density, angle convention and option;
// the grid kernel against the compare-against-kept loop; hand-computed IoU cases; degenerate and
// non-finite boxes; strided and container inputs; the errors.
// SPDX-License-Identifier: MIT
#include <algorithm>
#include <array>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <numbers>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include <cvk/box/rotated.hpp>
#include <cvk/core.hpp>
#include <cvk/nms/rotated.hpp>

#include "support/error_inputs.hpp"
#include "support/layouts.hpp"
#include "support/nms_reference.hpp"

namespace {

using cvk::index_t;
template <class T>
using rboxes_t = std::vector<std::array<T, 5>>;

using cvk_test::reference_batched_nms_rotated;
using cvk_test::reference_nms_rotated;
using cvk_test::reference_rotated_order;

std::vector<index_t> to_vector(const cvk::tensor<index_t, 1>& t) {
  return std::vector<index_t>(t.begin(), t.end());
}

// ---------------------------------------------------------------------------------------------
// Random scenes.

enum class density {
  sparse,
  clusters,
  overlapping,
  mixed_scales,
  tiny_canvas,
  degenerate,
  extreme
};
constexpr std::size_t density_count = 7;

template <class T>
rboxes_t<T> random_scene(cvk::rng& gen, density d, std::size_t n, bool radians = false) {
  const double full_turn = radians ? 2 * std::numbers::pi : 360.0;
  const auto angle = [&] { return gen.uniform(-full_turn, full_turn); };
  const auto box = [](double cx, double cy, double w, double h, double a) {
    return std::array<T, 5>{static_cast<T>(cx), static_cast<T>(cy), static_cast<T>(w),
                            static_cast<T>(h), static_cast<T>(a)};
  };
  rboxes_t<T> boxes(n);
  switch (d) {
    case density::sparse:
      for (auto& b : boxes) {
        b = box(gen.uniform(0.0, 1000.0), gen.uniform(0.0, 1000.0), gen.uniform(1.0, 50.0),
                gen.uniform(1.0, 50.0), angle());
      }
      break;
    case density::clusters: {
      const std::size_t objects = 1 + gen.below(10);
      std::vector<std::array<double, 5>> centres(objects);
      for (auto& c : centres) {
        c = {gen.uniform(-200.0, 400.0), gen.uniform(-200.0, 400.0), gen.uniform(5.0, 80.0),
             gen.uniform(5.0, 80.0), angle()};
      }
      for (auto& b : boxes) {
        const auto& c = centres[gen.below(objects)];
        b = box(c[0] + gen.normal(0.0, 0.1) * c[2], c[1] + gen.normal(0.0, 0.1) * c[3],
                c[2] * std::exp(gen.normal(0.0, 0.1)), c[3] * std::exp(gen.normal(0.0, 0.1)),
                c[4] + gen.normal(0.0, 0.05) * full_turn);
      }
      break;
    }
    case density::overlapping:
      for (auto& b : boxes) {
        b = box(500 + gen.uniform(-20.0, 20.0), 500 + gen.uniform(-20.0, 20.0),
                gen.uniform(50.0, 300.0), gen.uniform(50.0, 300.0), angle());
      }
      break;
    case density::mixed_scales:
      for (auto& b : boxes) {
        const double side = std::exp(gen.uniform(0.0, 6.5));  // 1 .. 665
        b = box(gen.uniform(0.0, 800.0), gen.uniform(0.0, 800.0), side * gen.uniform(0.2, 1.5),
                side * gen.uniform(0.5, 1.5), angle());
      }
      break;
    case density::tiny_canvas:  // integer grid, right angles: exact IoU ties, identical boxes
      for (auto& b : boxes) {
        b = box(static_cast<double>(gen.below(6)), static_cast<double>(gen.below(6)),
                static_cast<double>(2 * (1 + gen.below(3))),
                static_cast<double>(2 * (1 + gen.below(3))),
                (radians ? std::numbers::pi / 2 : 90.0) * static_cast<double>(gen.below(4)));
      }
      break;
    case density::extreme:  // tiny and needle-thin boxes far from the origin, clustered
      for (auto& b : boxes) {
        const double side = std::exp(gen.uniform(-7.0, 0.0));  // 0.001 .. 1
        b = box(1e5 + gen.uniform(0.0, 3.0), -2e5 + gen.uniform(0.0, 3.0), side,
                side * std::exp(gen.uniform(-8.0, 2.0)), angle());
      }
      break;
    case density::degenerate:  // sparse boxes, some with zero, negative or tiny sides
      for (auto& b : boxes) {
        const std::array<double, 6> sides = {0.0, -3.0, 1e-8, 5.0, 20.0, 40.0};
        b = box(gen.uniform(0.0, 100.0), gen.uniform(0.0, 100.0), sides[gen.below(6)],
                sides[gen.below(6)], angle());
      }
      break;
  }
  return boxes;
}

template <class T>
std::vector<T> random_scores(cvk::rng& gen, std::size_t n, bool ties) {
  std::vector<T> scores(n);
  for (auto& s : scores) {
    s = ties ? static_cast<T>(gen.below(5)) / T(4) : gen.uniform<T>(T(0), T(1));
  }
  return scores;
}

double random_threshold(cvk::rng& gen) {
  constexpr std::array<double, 9> fixed = {0.0, 0.3, 0.5, 0.7, 1.0, -0.25, 0.1, 0.25, 0.75};
  return gen.bernoulli(0.7) ? fixed[gen.below(fixed.size())] : gen.uniform(0.0, 1.0);
}

cvk::nms_rotated_options random_options(cvk::rng& gen, std::size_t n) {
  cvk::nms_rotated_options o;
  o.inclusive = !gen.bernoulli(0.3);
  if (gen.bernoulli(0.25)) o.score_threshold = gen.uniform(-0.1, 0.9);
  if (gen.bernoulli(0.25)) o.max_output = static_cast<index_t>(gen.below(n + 2));
  if (gen.bernoulli(0.25)) o.top_k = static_cast<index_t>(gen.below(n + 2));
  if (gen.bernoulli(0.3)) o.direction = cvk::rotation_direction::clockwise;
  return o;
}

std::string describe(density d, std::size_t n, double threshold,
                     const cvk::nms_rotated_options& o) {
  constexpr std::array<const char*, density_count> names = {
      "sparse", "clusters", "overlapping", "mixed_scales", "tiny_canvas", "degenerate", "extreme"};
  std::string text = std::string(names[static_cast<std::size_t>(d)]) + " N=" + std::to_string(n) +
                     " threshold=" + std::to_string(threshold) +
                     (o.inclusive ? " inclusive" : " exclusive") +
                     (o.unit == cvk::angle_unit::radians ? " radians" : "") +
                     (o.direction == cvk::rotation_direction::clockwise ? " clockwise" : "");
  if (o.score_threshold) text += " score_threshold=" + std::to_string(*o.score_threshold);
  if (o.max_output) text += " max_output=" + std::to_string(*o.max_output);
  if (o.top_k) text += " top_k=" + std::to_string(*o.top_k);
  return text;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Hand-computed cases

TEMPLATE_TEST_CASE("nms_rotated: hand-computed IoUs at and around the threshold", "[nms_rotated]",
                   float, double) {
  using T = TestType;
  const std::vector<T> two = {T(0.9), T(0.8)};
  // a 2×1 box and the 1×1 box in its left half: IoU 1/2 exactly
  const rboxes_t<T> half = {{1, 0.5, 2, 1, 0}, {0.5, 0.5, 1, 1, 0}};
  CHECK(to_vector(cvk::nms_rotated(half, two, 0.5)) == std::vector<index_t>{0});  // >= 0.5
  CHECK(to_vector(cvk::nms_rotated(half, two, 0.5, {.inclusive = false})) ==
        std::vector<index_t>{0, 1});
  CHECK(to_vector(cvk::nms_rotated(half, two, 0.5000001)) == std::vector<index_t>{0, 1});
  // the same pair turned by 90° (the 2×1 box written as 1×2 at 90°, the other at -270°)
  const rboxes_t<T> turned = {{-0.5, 1, 2, 1, 90}, {-0.5, 0.5, 1, 1, -270}};
  CHECK(to_vector(cvk::nms_rotated(turned, two, 0.5)) == std::vector<index_t>{0});
  CHECK(to_vector(cvk::nms_rotated(turned, two, 0.5, {.inclusive = false})) ==
        std::vector<index_t>{0, 1});
  // a unit square and itself turned by 45°: the intersection is the regular octagon of area
  // 2(√2 - 1), IoU = 2(√2 - 1) / (2 - 2(√2 - 1)) = 1/√2 ≈ 0.70711
  const rboxes_t<T> star = {{3, 4, 1, 1, 0}, {3, 4, 1, 1, 45}};
  CHECK(to_vector(cvk::nms_rotated(star, two, 0.707)) == std::vector<index_t>{0});
  CHECK(to_vector(cvk::nms_rotated(star, two, 0.7072)) == std::vector<index_t>{0, 1});
  // the same in radians, clockwise (the octagon does not depend on the direction)
  const rboxes_t<T> star_rad = {{3, 4, 1, 1, 0}, {3, 4, 1, 1, T(std::numbers::pi / 4)}};
  const cvk::nms_rotated_options mmcv{.unit = cvk::angle_unit::radians,
                                      .direction = cvk::rotation_direction::clockwise};
  CHECK(to_vector(cvk::nms_rotated(star_rad, two, 0.707, mmcv)) == std::vector<index_t>{0});
  CHECK(to_vector(cvk::nms_rotated(star_rad, two, 0.7072, mmcv)) == std::vector<index_t>{0, 1});
  // identical boxes: IoU 1 suppresses at threshold 1 with >=, not with >
  const rboxes_t<T> same = {{1, 2, 3, 4, 30}, {1, 2, 3, 4, 30}};
  CHECK(to_vector(cvk::nms_rotated(same, two, 1.0)) == std::vector<index_t>{0});
  CHECK(to_vector(cvk::nms_rotated(same, two, 1.0, {.inclusive = false})) ==
        std::vector<index_t>{0, 1});
  // disjoint boxes: IoU 0 suppresses only with >= 0 (or > a negative threshold)
  const rboxes_t<T> apart = {{0, 0, 1, 1, 10}, {5, 5, 1, 1, 20}};
  CHECK(to_vector(cvk::nms_rotated(apart, two, 0.1)) == std::vector<index_t>{0, 1});
  CHECK(to_vector(cvk::nms_rotated(apart, two, 0.0)) == std::vector<index_t>{0});
  CHECK(to_vector(cvk::nms_rotated(apart, two, 0.0, {.inclusive = false})) ==
        std::vector<index_t>{0, 1});
  CHECK(to_vector(cvk::nms_rotated(apart, two, -0.5, {.inclusive = false})) ==
        std::vector<index_t>{0});
  // the order: equal scores keep index order, the output is in score order
  const rboxes_t<T> three = {{0, 0, 4, 4, 0}, {50, 0, 4, 4, 0}, {T(0.2), 0, 4, 4, 0}};
  const std::vector<T> tied = {T(0.5), T(0.7), T(0.5)};
  CHECK(to_vector(cvk::nms_rotated(three, tied, 0.5)) == std::vector<index_t>{1, 0});
  const std::vector<T> tied_rev = {T(0.5), T(0.7), T(0.6)};
  CHECK(to_vector(cvk::nms_rotated(three, tied_rev, 0.5)) == std::vector<index_t>{1, 2});
}

TEMPLATE_TEST_CASE("nms_rotated: degenerate and non-finite boxes", "[nms_rotated]", float, double) {
  using T = TestType;
  const T nan = std::numeric_limits<T>::quiet_NaN();
  const T inf = std::numeric_limits<T>::infinity();
  // Each degenerate box sits on top of box 0 (which outranks it). cvk's rotated IoU is 0 for a
  // side <= 0 or w·h < 1e-14 and NaN for a non-finite value: none is suppressed by, or
  // suppresses, anything at a threshold > 0.
  rboxes_t<T> boxes = {
      {10, 10, 4, 4, 0},   {10, 10, 0, 4, 0},  {10, 10, -4, -4, 0}, {10, 10, T(1e-8), T(1e-7), 0},
      {10, 10, 4, nan, 0}, {inf, 10, 4, 4, 0}, {10, 10, 4, 4, inf}, {10, 10, 4, 4, 0}};
  // box 7 duplicates box 0: suppressed. Degenerate duplicates after it: kept.
  boxes.push_back({10, 10, 0, 0, 0});
  std::vector<T> scores(boxes.size());
  for (std::size_t i = 0; i < scores.size(); ++i) scores[i] = T(1) - T(0.05) * static_cast<T>(i);
  const std::vector<index_t> expected = {0, 1, 2, 3, 4, 5, 6, 8};
  CHECK(to_vector(cvk::nms_rotated(boxes, scores, 0.5)) == expected);
  CHECK(reference_nms_rotated(boxes, scores, 0.5) == expected);
  // the same among many sparse boxes (the grid path), degenerate boxes first and last
  cvk::rng gen(31, std::is_same_v<T, float> ? 1 : 2);
  rboxes_t<T> many = boxes;
  for (const auto& b : random_scene<T>(gen, density::sparse, 200)) many.push_back(b);
  for (const auto& b : boxes) many.push_back(b);
  const auto many_scores = random_scores<T>(gen, many.size(), true);
  for (const double t : {0.0, 0.3, 0.5, 1.0}) {
    for (const bool inclusive : {true, false}) {
      const cvk::nms_rotated_options o{.inclusive = inclusive};
      INFO("threshold " << t << (inclusive ? " inclusive" : " exclusive"));
      CHECK(to_vector(cvk::nms_rotated(many, many_scores, t, o)) ==
            reference_nms_rotated(many, many_scores, t, o));
    }
  }
  // with >= 0 every finite pair suppresses, a NaN IoU still does not
  CHECK(to_vector(cvk::nms_rotated(boxes, scores, 0.0)) == std::vector<index_t>{0, 4, 5, 6});
}

TEST_CASE("nms_rotated: huge but finite coordinates take the exact path", "[nms_rotated]") {
  // w·h overflows double and the corners overflow: such boxes are compared with everything.
  const double big = 1e307;
  rboxes_t<double> boxes = {{0, 0, big, big, 30}, {0, 0, big, big, 30}, {1e300, 0, 10, 10, 0}};
  cvk::rng gen(37);
  for (const auto& b : random_scene<double>(gen, density::sparse, 100)) boxes.push_back(b);
  boxes.push_back({1e300, 0, 10, 10, 0});
  boxes.push_back({1e300, 3, 10, 10, 0});
  const auto scores = random_scores<double>(gen, boxes.size(), false);
  for (const double t : {0.1, 0.5}) {
    CHECK(to_vector(cvk::nms_rotated(boxes, scores, t)) == reference_nms_rotated(boxes, scores, t));
  }
  // a canvas wider than double's range (1.5e308 - (-1.5e308) overflows): still exact
  boxes.push_back({1.5e308, 0, 10, 10, 0});
  boxes.push_back({-1.5e308, 0, 10, 10, 0});
  boxes.push_back({-1.5e308, 1, 10, 10, 0});
  const auto more_scores = random_scores<double>(gen, boxes.size(), false);
  for (const double t : {0.1, 0.5}) {
    const auto kept = to_vector(cvk::nms_rotated(boxes, more_scores, t));
    CHECK(kept == reference_nms_rotated(boxes, more_scores, t));
    CHECK(kept.size() + 1 < boxes.size());
  }
}

// ---------------------------------------------------------------------------------------------
// The fast path against the plain reference

TEMPLATE_TEST_CASE("nms_rotated: equals the plain O(N^2) greedy on random scenes", "[nms_rotated]",
                   float, double) {
  using T = TestType;
  cvk::rng gen(41, std::is_same_v<T, float> ? 1 : 2);
  std::size_t grid_runs = 0;
  std::size_t suppressing_runs = 0;
  for (int scene = 0; scene < 2000; ++scene) {
    const auto d = static_cast<density>(static_cast<std::size_t>(scene) % density_count);
    const std::size_t n = gen.bernoulli(0.2) ? gen.below(40) : 30 + gen.below(250);
    auto options = gen.bernoulli(0.6) ? random_options(gen, n) : cvk::nms_rotated_options{};
    if (gen.bernoulli(0.2)) options.unit = cvk::angle_unit::radians;
    const auto boxes = random_scene<T>(gen, d, n, options.unit == cvk::angle_unit::radians);
    const auto scores = random_scores<T>(gen, n, gen.bernoulli(0.3));
    const double threshold = random_threshold(gen);
    if (threshold > 0 && n >= 32) ++grid_runs;
    INFO(describe(d, n, threshold, options));
    const auto expected = reference_nms_rotated(boxes, scores, threshold, options);
    if (expected.size() + 1 < n) ++suppressing_runs;
    REQUIRE(to_vector(cvk::nms_rotated(boxes, scores, threshold, options)) == expected);
  }
  CHECK(grid_runs > 900);
  CHECK(suppressing_runs > 900);
}

TEMPLATE_TEST_CASE("nms_rotated: the grid kernel equals the compare-against-kept loop",
                   "[nms_rotated]", float, double) {
  using T = TestType;
  using quad = cvk::detail::convex_quad<double>;
  cvk::rng gen(43, std::is_same_v<T, float> ? 1 : 2);
  for (int scene = 0; scene < 3000; ++scene) {
    const auto d = static_cast<density>(static_cast<std::size_t>(scene) % density_count);
    const std::size_t n = gen.below(150);
    const auto boxes = random_scene<T>(gen, d, n);
    std::vector<quad> quads;
    const cvk::rotated_options g{};
    for (const auto& b : boxes) {
      quads.push_back(cvk::detail::rotated_quad<double>(b[0], b[1], b[2], b[3], b[4], g));
    }
    const auto threshold =
        cvk::detail::nms_threshold<T>::from(gen.uniform(0.001, 1.0), gen.bernoulli(0.7));
    const std::size_t max_keep = gen.bernoulli(0.2) ? gen.below(n + 1) : n;
    std::vector<index_t> grid;
    std::vector<index_t> plain;
    cvk::detail::greedy_rotated_grid<T>(quads, threshold, max_keep, grid);
    cvk::detail::greedy_rotated_against_kept<T>(quads, threshold, max_keep, plain);
    INFO("scene " << scene << " N=" << n << " max_keep=" << max_keep);
    REQUIRE(grid == plain);
  }
}

TEST_CASE("nms_rotated: 4000 sparse boxes equal the compare-against-kept loop", "[nms_rotated]") {
  cvk::rng gen(47);
  const auto boxes = random_scene<float>(gen, density::sparse, 4000);
  const auto scores = random_scores<float>(gen, 4000, false);
  const auto kept = to_vector(cvk::nms_rotated(boxes, scores, 0.3));
  // the reference loop on the same candidates, in score order
  const auto order = reference_rotated_order(scores, {});
  std::vector<cvk::detail::convex_quad<double>> quads;
  for (const index_t i : order) {
    const auto& b = boxes[static_cast<std::size_t>(i)];
    quads.push_back(cvk::detail::rotated_quad<double>(b[0], b[1], b[2], b[3], b[4], {}));
  }
  std::vector<index_t> plain;
  cvk::detail::greedy_rotated_against_kept<float>(
      quads, cvk::detail::nms_threshold<float>::from(0.3, true), quads.size(), plain);
  for (index_t& k : plain) k = order[static_cast<std::size_t>(k)];
  CHECK(kept == plain);
  REQUIRE(kept.size() > 1000);
  REQUIRE(kept.size() < 4000);
  // max_output stops early with the first survivors
  const auto first = to_vector(cvk::nms_rotated(boxes, scores, 0.3, {.max_output = 100}));
  CHECK(first == std::vector<index_t>(kept.begin(), kept.begin() + 100));
}

TEMPLATE_TEST_CASE("batched_nms_rotated: equals per-class reference NMS on random scenes",
                   "[batched_nms_rotated]", float, double) {
  using T = TestType;
  cvk::rng gen(53, std::is_same_v<T, float> ? 1 : 2);
  for (int scene = 0; scene < 300; ++scene) {
    const auto d = static_cast<density>(static_cast<std::size_t>(scene) % density_count);
    const std::size_t n = gen.below(300);
    const auto boxes = random_scene<T>(gen, d, n);
    const auto scores = random_scores<T>(gen, n, gen.bernoulli(0.3));
    const std::uint64_t class_count = 1 + gen.below(12);
    std::vector<int> classes(n);
    for (auto& c : classes) c = static_cast<int>(gen.below(class_count)) - 3;
    const double threshold = random_threshold(gen);
    const auto options = gen.bernoulli(0.6) ? random_options(gen, n) : cvk::nms_rotated_options{};
    INFO(describe(d, n, threshold, options) << " classes=" << class_count);
    const auto expected = reference_batched_nms_rotated(boxes, scores, classes, threshold, options);
    REQUIRE(to_vector(cvk::batched_nms_rotated(boxes, scores, classes, threshold, options)) ==
            expected);
    cvk::nms_rotated_options one_thread = options;
    one_thread.threads = 1;
    REQUIRE(to_vector(cvk::batched_nms_rotated(boxes, scores, classes, threshold, one_thread)) ==
            expected);
  }
}

TEST_CASE("batched_nms_rotated: classes stay apart, any thread count", "[batched_nms_rotated]") {
  // two identical boxes of different classes both survive; of the same class, one does
  const rboxes_t<double> boxes = {{-10, -10, 5, 5, 30}, {-10, -10, 5, 5, 30}, {-10, -10, 5, 5, 30}};
  const std::vector<double> scores = {0.9, 0.8, 0.7};
  const std::vector<std::int64_t> classes = {4, 4, -1};
  CHECK(to_vector(cvk::batched_nms_rotated(boxes, scores, classes, 0.5)) ==
        std::vector<index_t>{0, 2});
  CHECK(to_vector(cvk::nms_rotated(boxes, scores, 0.5)) == std::vector<index_t>{0});
  // a larger scene: every thread count gives the reference
  cvk::rng gen(59);
  const auto many = random_scene<float>(gen, density::sparse, 3000);
  const auto many_scores = random_scores<float>(gen, 3000, false);
  std::vector<std::int16_t> many_classes(3000);
  for (auto& c : many_classes) c = static_cast<std::int16_t>(gen.below(30));
  const auto expected = reference_batched_nms_rotated(many, many_scores, many_classes, 0.2);
  for (const int threads : {0, 1, 2, 3}) {
    INFO("threads " << threads);
    CHECK(to_vector(cvk::batched_nms_rotated(many, many_scores, many_classes, 0.2,
                                             {.threads = threads})) == expected);
  }
}

// ---------------------------------------------------------------------------------------------
// Options and inputs

TEST_CASE("nms_rotated: score_threshold, top_k, max_output, NaN scores", "[nms_rotated]") {
  const rboxes_t<double> boxes = {{5, 5, 10, 10, 0},   {6, 6, 10, 10, 5},   {25, 25, 10, 10, 0},
                                  {45, 45, 10, 10, 0}, {46, 46, 10, 10, 0}, {65, 65, 10, 10, 0}};
  const std::vector<double> scores = {0.9, 0.95, 0.3, 0.6, 0.5, 0.1};
  CHECK(to_vector(cvk::nms_rotated(boxes, scores, 0.5)) == std::vector<index_t>{1, 3, 2, 5});
  CHECK(to_vector(cvk::nms_rotated(boxes, scores, 0.5, {.score_threshold = 0.3})) ==
        std::vector<index_t>{1, 3});
  CHECK(to_vector(cvk::nms_rotated(boxes, scores, 0.5, {.max_output = 2})) ==
        std::vector<index_t>{1, 3});
  CHECK(to_vector(cvk::nms_rotated(boxes, scores, 0.5, {.max_output = 0})).empty());
  // top_k = 3: candidates 1, 0, 3 (box 0 suppressed by box 1)
  CHECK(to_vector(cvk::nms_rotated(boxes, scores, 0.5, {.top_k = 3})) ==
        std::vector<index_t>{1, 3});
  CHECK(to_vector(cvk::nms_rotated(boxes, scores, 0.5, {.top_k = 0})).empty());
  // NaN scores rank last in index order; a score threshold drops them
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const std::vector<double> with_nan = {nan, 0.5, 0.7, nan, nan, 0.1};
  CHECK(to_vector(cvk::nms_rotated(boxes, with_nan, 0.5)) == std::vector<index_t>{2, 1, 5, 3});
  CHECK(to_vector(cvk::nms_rotated(boxes, with_nan, 0.5, {.score_threshold = -1.0})) ==
        std::vector<index_t>{2, 1, 5});
}

TEST_CASE("nms_rotated: reads any strides and any tensor type", "[nms_rotated]") {
  cvk::rng gen(61);
  const auto boxes = random_scene<float>(gen, density::clusters, 300);
  const auto scores = random_scores<float>(gen, 300, true);
  const auto expected = reference_nms_rotated(boxes, scores, 0.45);
  REQUIRE(expected.size() < 300);
  for (const auto l : cvk_test::all_layouts) {
    INFO(cvk_test::to_string(l));
    const auto stored = cvk_test::with_layout(boxes, l, std::nanf(""));
    CHECK(to_vector(cvk::nms_rotated(stored.view, scores, 0.45)) == expected);
  }
  // scores with stride 3, walked backwards
  std::vector<float> spread(3 * scores.size(), -1.0f);
  for (std::size_t i = 0; i < scores.size(); ++i) spread[3 * (scores.size() - 1 - i)] = scores[i];
  const auto backwards = cvk::view(spread.data() + 3 * (scores.size() - 1),
                                   {static_cast<index_t>(scores.size())}, {index_t{-3}});
  CHECK(to_vector(cvk::nms_rotated(boxes, backwards, 0.45)) == expected);
  // cvk::tensor inputs
  cvk::tensor<float, 2> box_tensor(static_cast<index_t>(boxes.size()), index_t{5});
  cvk::tensor<float, 1> score_tensor(static_cast<index_t>(scores.size()));
  for (std::size_t i = 0; i < boxes.size(); ++i) {
    for (std::size_t k = 0; k < 5; ++k) {
      box_tensor(static_cast<index_t>(i), static_cast<index_t>(k)) = boxes[i][k];
    }
    score_tensor(static_cast<index_t>(i)) = scores[i];
  }
  CHECK(to_vector(cvk::nms_rotated(box_tensor, score_tensor, 0.45)) == expected);
  // integer boxes (computed in double) and integer scores
  const rboxes_t<int> int_boxes = {{2, 2, 4, 4, 0}, {3, 3, 4, 4, 90}, {11, 11, 2, 2, 45}};
  const std::vector<int> int_scores = {3, 7, 7};
  // IoU(box 1, box 0) = 9/23 = 0.391; equal scores 7: index 1 before index 2
  CHECK(to_vector(cvk::nms_rotated(int_boxes, int_scores, 0.4)) == std::vector<index_t>{1, 2, 0});
  CHECK(to_vector(cvk::nms_rotated(int_boxes, int_scores, 0.39)) == std::vector<index_t>{1, 2});
}

TEST_CASE("nms_rotated: empty input is empty", "[nms_rotated]") {
  const rboxes_t<float> none;
  const std::vector<float> no_scores;
  const std::vector<int> no_classes;
  CHECK(cvk::nms_rotated(none, no_scores, 0.5).size() == 0);
  CHECK(cvk::batched_nms_rotated(none, no_scores, no_classes, 0.5).size() == 0);
  CHECK(cvk::nms_rotated(none, no_scores, 0.5, {.max_output = 3, .top_k = 2}).size() == 0);
}

TEST_CASE("nms_rotated: errors name the function, the argument and the shapes",
          "[nms_rotated][errors]") {
  const rboxes_t<float> seven(7, std::array<float, 5>{0, 0, 1, 1, 0});
  const std::vector<float> five(5, 0.5f);
  const std::vector<float> scores(7, 0.5f);
  const std::vector<int> classes(7, 0);
  const std::vector<int> six_classes(6, 0);
  std::vector<float> flat(28, 0.0f);
  const auto seven_by_four = cvk::view(flat.data(), 7, 4);
  CHECK_THROWS_MATCHES(
      cvk::nms_rotated(seven, five, 0.5), cvk::shape_error,
      Catch::Message("nms_rotated: scores must have 7 elements (one per box), got 5"));
  CHECK_THROWS_MATCHES(cvk::nms_rotated(seven_by_four, scores, 0.5), cvk::shape_error,
                       Catch::Message("nms_rotated: boxes must be N×5, got 7×4"));
  CHECK_THROWS_MATCHES(cvk::nms_rotated(seven, scores, std::nan("")), cvk::invalid_argument,
                       Catch::Message("nms_rotated: iou_threshold must be a number, got nan"));
  CHECK_THROWS_MATCHES(cvk::nms_rotated(seven, scores, 0.5, {.score_threshold = std::nan("")}),
                       cvk::invalid_argument,
                       Catch::Message("nms_rotated: score_threshold must be a number, got nan"));
  CHECK_THROWS_MATCHES(cvk::nms_rotated(seven, scores, 0.5, {.max_output = -1}),
                       cvk::invalid_argument,
                       Catch::Message("nms_rotated: max_output must be >= 0, got -1"));
  CHECK_THROWS_MATCHES(cvk::nms_rotated(seven, scores, 0.5, {.top_k = -2}), cvk::invalid_argument,
                       Catch::Message("nms_rotated: top_k must be >= 0, got -2"));
  CHECK_THROWS_MATCHES(
      cvk::batched_nms_rotated(seven, scores, six_classes, 0.5), cvk::shape_error,
      Catch::Message("batched_nms_rotated: classes must have 7 elements (one per box), got 6"));
  CHECK_THROWS_MATCHES(
      cvk::batched_nms_rotated(seven, five, classes, 0.5), cvk::shape_error,
      Catch::Message("batched_nms_rotated: scores must have 7 elements (one per box), got 5"));
  CHECK_THROWS_MATCHES(cvk::batched_nms_rotated(seven_by_four, scores, classes, 0.5),
                       cvk::shape_error,
                       Catch::Message("batched_nms_rotated: boxes must be N×5, got 7×4"));
  CHECK_THROWS_MATCHES(
      cvk::batched_nms_rotated(seven, scores, classes, std::nan("")), cvk::invalid_argument,
      Catch::Message("batched_nms_rotated: iou_threshold must be a number, got nan"));
  // a runtime-rank tensor of the wrong rank
  std::vector<float> data(35, 0.0f);
  const cvk::dynamic_view<const float> rank3(data.data(), 3, {7, 5, 1}, {5, 1, 1});
  CHECK_THROWS_AS(cvk::nms_rotated(rank3, scores, 0.5), cvk::shape_error);
}

TEST_CASE("errors table: nms_rotated and batched_nms_rotated (docs/errors.md)",
          "[nms_rotated][errors]") {
  const std::vector<float> buffer(8, 1.0F);
  const std::vector<std::array<float, 5>> two = {{0, 0, 2, 2, 0}, {10, 10, 2, 2, 45}};
  CHECK_THROWS_MATCHES(cvk::nms_rotated(two, cvk_test::rank3_view(buffer), 0.5), cvk::shape_error,
                       Catch::Message("nms_rotated: scores must have rank 1, got rank 3 (2×2×2)"));
  // 2^40 broadcast boxes: the ranking cannot be allocated (the old code ended in bad_alloc)
  const std::array<float, 5> row{0, 0, 1, 1, 0};
  const float score = 0.5F;
  const int label = 0;
  const auto many = cvk_test::broadcast_rows(row.data(), cvk_test::huge_rows, 5);
  const auto many_scores = cvk_test::broadcast_values(&score, cvk_test::huge_rows);
  CHECK_THROWS_MATCHES(cvk::nms_rotated(many, many_scores, 0.5), cvk::out_of_range,
                       Catch::Message("nms_rotated: boxes (1099511627776×5) needs 1099511627776 "
                                      "elements of 8 bytes, more than can be allocated"));
  CHECK_THROWS_AS(
      cvk::batched_nms_rotated(many, many_scores,
                               cvk_test::broadcast_values(&label, cvk_test::huge_rows), 0.5),
      cvk::out_of_range);
}
