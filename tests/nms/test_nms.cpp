// cvk — computer-vision kernels, header-only C++20.
// Tests of cvk/nms/nms.hpp: nms and batched_nms against torchvision 0.14 fixtures and against
// torchvision's CPU algorithm written plainly (O(N²), below) on thousands of random scenes of
// every density and every option; the grid kernel against the compare-against-kept loop;
// strided and container inputs; the NaN and degenerate-box policies; the errors.
// SPDX-License-Identifier: MIT
#include <algorithm>
#include <array>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <cvk/core.hpp>
#include <cvk/nms.hpp>

#include "support/error_inputs.hpp"
#include "support/fixtures.hpp"
#include "support/layouts.hpp"
#include "support/nms_reference.hpp"
#include "support/nms_scenes.hpp"

namespace {

using cvk::index_t;
template <class T>
using boxes_t = std::vector<std::array<T, 4>>;

using cvk_test::reference_batched_nms;
using cvk_test::reference_nms;

std::vector<index_t> to_vector(const cvk::tensor<index_t, 1>& t) {
  return std::vector<index_t>(t.begin(), t.end());
}

// ---------------------------------------------------------------------------------------------
// Random scenes.

using cvk_test::density;
using cvk_test::density_names;
using cvk_test::random_scene;

template <class T>
std::vector<T> random_scores(cvk::rng& gen, std::size_t n, bool ties) {
  std::vector<T> scores(n);
  for (auto& s : scores) {
    s = ties ? static_cast<T>(gen.below(5)) / T(4) : gen.uniform<T>(T(0), T(1));
  }
  return scores;
}

double random_threshold(cvk::rng& gen) {
  constexpr std::array<double, 9> fixed = {0.0, 0.3, 0.45, 0.5, 0.7, 1.0, -0.25, 0.25, 0.75};
  return gen.bernoulli(0.7) ? fixed[gen.below(fixed.size())] : gen.uniform(0.0, 1.0);
}

cvk::nms_options random_options(cvk::rng& gen, std::size_t n) {
  cvk::nms_options o;
  o.inclusive = gen.bernoulli(0.3);
  if (gen.bernoulli(0.25)) o.score_threshold = gen.uniform(-0.1, 0.9);
  if (gen.bernoulli(0.25)) o.max_output = static_cast<index_t>(gen.below(n + 2));
  if (gen.bernoulli(0.25)) o.top_k = static_cast<index_t>(gen.below(n + 2));
  return o;
}

std::string describe(density d, std::size_t n, double threshold, const cvk::nms_options& o) {
  std::string text = std::string(density_names[static_cast<std::size_t>(d)]) +
                     " N=" + std::to_string(n) + " threshold=" + std::to_string(threshold) +
                     (o.inclusive ? " inclusive" : "");
  if (o.score_threshold) text += " score_threshold=" + std::to_string(*o.score_threshold);
  if (o.max_output) text += " max_output=" + std::to_string(*o.max_output);
  if (o.top_k) text += " top_k=" + std::to_string(*o.top_k);
  return text;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// torchvision fixtures

TEMPLATE_TEST_CASE("nms and batched_nms equal torchvision 0.14 on the fixtures", "[nms]", float,
                   double) {
  using T = TestType;
  const cvk_test::fixture_file file(cvk_test::test_data_path("nms_torchvision.txt"));
  const std::string dtype = std::is_same_v<T, float> ? "float32" : "float64";
  const auto thresholds = file.table("thresholds").values<double>();
  std::size_t nms_checked = 0;
  std::size_t batched_checked = 0;
  for (const auto& [name, table] : file.tables()) {
    const bool is_nms = name.rfind("nms/", 0) == 0;
    const bool is_batched = name.rfind("batched_nms/", 0) == 0;
    if (!is_nms && !is_batched) continue;
    // <op>/<scene>/<dtype>/<t>
    const auto first = name.find('/');
    const auto second = name.find('/', first + 1);
    const auto third = name.find('/', second + 1);
    const std::string scene = name.substr(first + 1, second - first - 1);
    if (name.substr(second + 1, third - second - 1) != dtype) continue;
    const double threshold = thresholds[std::stoul(name.substr(third + 1))];
    const auto boxes = file.table("boxes/" + scene + "/" + dtype).template rows_of<T, 4>();
    const auto scores = file.table("scores/" + scene + "/" + dtype).template values<T>();
    const auto expected = table.template values<index_t>();
    INFO(name << " threshold " << threshold);
    if (is_nms) {
      CHECK(to_vector(cvk::nms(boxes, scores, threshold)) == expected);
      ++nms_checked;
    } else {
      const auto classes = file.table("classes/" + scene).template values<std::int64_t>();
      CHECK(to_vector(cvk::batched_nms(boxes, scores, classes, threshold)) == expected);
      ++batched_checked;
    }
  }
  CHECK(nms_checked == 14 * 6);
  CHECK(batched_checked >= 14 * 6 - 4);
}

TEST_CASE("the fixture's adversarial scenes test what they claim", "[nms]") {
  // IoU exactly 0.5 (float and double): kept at 0.5, suppressed just below it or with >=.
  const boxes_t<float> half = {{0, 0, 2, 1}, {0, 0, 1, 1}};
  const std::vector<float> scores = {0.9f, 0.8f};
  CHECK(to_vector(cvk::nms(half, scores, 0.5)) == std::vector<index_t>{0, 1});
  CHECK(to_vector(cvk::nms(half, scores, 0.4999999)) == std::vector<index_t>{0});
  CHECK(to_vector(cvk::nms(half, scores, 0.5, {.inclusive = true})) == std::vector<index_t>{0});
  // IoU 0.3f (in float, 3/10 rounds to 0.300000012) is > 0.3 in double: suppressed, as
  // torchvision; in double 3/10 rounds to exactly the double 0.3: kept.
  const boxes_t<float> f3 = {{10, 0, 20, 10}, {10, 0, 20, 3}};
  const boxes_t<double> d3 = {{10, 0, 20, 10}, {10, 0, 20, 3}};
  CHECK(to_vector(cvk::nms(f3, scores, 0.3)) == std::vector<index_t>{0});
  CHECK(to_vector(cvk::nms(d3, std::vector<double>{0.9, 0.8}, 0.3)) == std::vector<index_t>{0, 1});
  // two zero-area boxes: 0/0 = NaN never suppresses, at any threshold, even with >= 0.
  const boxes_t<double> points = {{3, 3, 3, 3}, {3, 3, 3, 3}};
  const std::vector<double> two = {0.9, 0.8};
  CHECK(to_vector(cvk::nms(points, two, 0.0)) == std::vector<index_t>{0, 1});
  CHECK(to_vector(cvk::nms(points, two, -1.0)) == std::vector<index_t>{0, 1});
  CHECK(to_vector(cvk::nms(points, two, 0.0, {.inclusive = true})) == std::vector<index_t>{0, 1});
  // disjoint boxes: IoU 0 suppresses only below 0 or with >= 0.
  const boxes_t<double> apart = {{0, 0, 1, 1}, {5, 5, 6, 6}};
  CHECK(to_vector(cvk::nms(apart, two, 0.0)) == std::vector<index_t>{0, 1});
  CHECK(to_vector(cvk::nms(apart, two, -0.5)) == std::vector<index_t>{0});
  CHECK(to_vector(cvk::nms(apart, two, 0.0, {.inclusive = true})) == std::vector<index_t>{0});
  // identical boxes at threshold 1: IoU 1 is not > 1.
  const boxes_t<double> same = {{1, 2, 3, 4}, {1, 2, 3, 4}};
  CHECK(to_vector(cvk::nms(same, two, 1.0)) == std::vector<index_t>{0, 1});
  CHECK(to_vector(cvk::nms(same, two, 1.0, {.inclusive = true})) == std::vector<index_t>{0});
}

// ---------------------------------------------------------------------------------------------
// The fast path against the plain reference

TEMPLATE_TEST_CASE("nms equals the plain O(N^2) greedy on random scenes of every density", "[nms]",
                   float, double) {
  using T = TestType;
  cvk::rng gen(7, std::is_same_v<T, float> ? 1 : 2);
  std::size_t grid_runs = 0;
  for (int scene = 0; scene < 2500; ++scene) {
    const auto d = static_cast<density>(scene % 5);
    const std::size_t n = gen.bernoulli(0.2) ? gen.below(60) : 40 + gen.below(500);
    const auto boxes = random_scene<T>(gen, d, n);
    const auto scores = random_scores<T>(gen, n, gen.bernoulli(0.3));
    const double threshold = random_threshold(gen);
    const auto options = gen.bernoulli(0.6) ? random_options(gen, n) : cvk::nms_options{};
    if (threshold >= 0 && n >= cvk::detail::grid_min_boxes) ++grid_runs;
    INFO(describe(d, n, threshold, options));
    REQUIRE(to_vector(cvk::nms(boxes, scores, threshold, options)) ==
            reference_nms(boxes, scores, threshold, options));
  }
  CHECK(grid_runs > 700);
}

TEMPLATE_TEST_CASE("the grid kernel equals the compare-against-kept loop at every size", "[nms]",
                   float, double) {
  using T = TestType;
  using box = cvk::detail::nms_box<T>;
  cvk::rng gen(11, std::is_same_v<T, float> ? 1 : 2);
  for (int scene = 0; scene < 2000; ++scene) {
    const auto d = static_cast<density>(scene % 5);
    const std::size_t n = gen.below(120);
    const auto corners = random_scene<T>(gen, d, n);
    std::vector<box> boxes;
    for (const auto& b : corners)
      boxes.push_back(cvk::detail::make_nms_box(b[0], b[1], b[2], b[3]));
    const auto threshold =
        cvk::detail::nms_threshold<T>::from(gen.uniform(0.01, 1.0), gen.bernoulli(0.3));
    const std::size_t max_keep = gen.bernoulli(0.2) ? gen.below(n + 1) : n;
    std::vector<index_t> grid;
    std::vector<index_t> plain;
    cvk::detail::greedy_grid<T>(boxes, threshold, max_keep, grid);
    cvk::detail::greedy_against_kept<T>(boxes, threshold, max_keep, plain);
    INFO("scene " << scene << " N=" << n << " max_keep=" << max_keep);
    REQUIRE(grid == plain);
  }
}

TEST_CASE("nms threshold rounding: float IoU compared as double at every float threshold",
          "[nms]") {
  // Thresholds right next to the IoU of a pair, in double and in float steps.
  const boxes_t<float> pair = {{0, 0, 3, 1}, {0, 0, 1, 1}};  // float IoU = 1/3 rounded
  const std::vector<float> scores = {1.0f, 0.5f};
  const float iou = 1.0f / 3.0f;
  for (const double t : {static_cast<double>(iou), std::nextafter(static_cast<double>(iou), 0.0),
                         std::nextafter(static_cast<double>(iou), 1.0),
                         static_cast<double>(std::nextafter(iou, 0.0f)),
                         static_cast<double>(std::nextafter(iou, 1.0f)), 1.0 / 3.0}) {
    for (const bool inclusive : {false, true}) {
      INFO("threshold " << t << (inclusive ? " inclusive" : ""));
      const cvk::nms_options o{.inclusive = inclusive};
      CHECK(to_vector(cvk::nms(pair, scores, t, o)) == reference_nms(pair, scores, t, o));
    }
  }
  // thresholds beyond float's range
  for (const double t : {1e300, -1e300, std::numeric_limits<double>::infinity(),
                         -std::numeric_limits<double>::infinity()}) {
    for (const bool inclusive : {false, true}) {
      const cvk::nms_options o{.inclusive = inclusive};
      CHECK(to_vector(cvk::nms(pair, scores, t, o)) == reference_nms(pair, scores, t, o));
    }
  }
}

TEMPLATE_TEST_CASE("batched_nms equals per-class reference NMS on random scenes", "[nms]", float,
                   double) {
  using T = TestType;
  cvk::rng gen(13, std::is_same_v<T, float> ? 1 : 2);
  for (int scene = 0; scene < 600; ++scene) {
    const auto d = static_cast<density>(scene % 5);
    const std::size_t n = gen.below(400);
    const auto boxes = random_scene<T>(gen, d, n);
    const auto scores = random_scores<T>(gen, n, gen.bernoulli(0.3));
    const std::uint64_t class_count = 1 + gen.below(20);
    std::vector<int> classes(n);
    for (auto& c : classes) c = static_cast<int>(gen.below(class_count)) - 3;
    const double threshold = random_threshold(gen);
    const auto options = gen.bernoulli(0.6) ? random_options(gen, n) : cvk::nms_options{};
    INFO(describe(d, n, threshold, options) << " classes=" << class_count);
    const auto expected = reference_batched_nms(boxes, scores, classes, threshold, options);
    REQUIRE(to_vector(cvk::batched_nms(boxes, scores, classes, threshold, options)) == expected);
    cvk::nms_options one_thread = options;
    one_thread.threads = 1;
    REQUIRE(to_vector(cvk::batched_nms(boxes, scores, classes, threshold, one_thread)) == expected);
  }
}

TEST_CASE("batched_nms on a large scene is the same for any thread count", "[nms]") {
  cvk::rng gen(17);
  const auto boxes = random_scene<float>(gen, density::sparse, 6000);
  const auto scores = random_scores<float>(gen, 6000, false);
  std::vector<std::int64_t> classes(6000);
  for (auto& c : classes) c = static_cast<std::int64_t>(gen.below(80));
  const auto expected = reference_batched_nms(boxes, scores, classes, 0.5);
  for (const int threads : {0, 1, 2, 3}) {
    INFO("threads " << threads);
    CHECK(to_vector(cvk::batched_nms(boxes, scores, classes, 0.5, {.threads = threads})) ==
          expected);
  }
}

TEST_CASE("batched_nms keeps classes apart with negative coordinates", "[nms]") {
  // torchvision's offset trick shifts class c by c * (max coordinate + 1) = c * 0 here (every
  // coordinate is negative, the largest is -1): box 2 would be suppressed by box 0 of class 0.
  const boxes_t<double> boxes = {{-10, -10, -1, -1}, {-10, -10, -1, -1}, {-10, -9, -1, -2}};
  const std::vector<double> scores = {0.9, 0.8, 0.7};
  const std::vector<int> classes = {0, 0, 1};
  CHECK(to_vector(cvk::batched_nms(boxes, scores, classes, 0.5)) == std::vector<index_t>{0, 2});
  CHECK(to_vector(cvk::nms(boxes, scores, 0.5)) == std::vector<index_t>{0});
}

// ---------------------------------------------------------------------------------------------
// Options

TEST_CASE("nms options: score_threshold, top_k, max_output, format", "[nms]") {
  const boxes_t<double> boxes = {{0, 0, 10, 10},   {1, 1, 11, 11},   {20, 20, 30, 30},
                                 {40, 40, 50, 50}, {41, 41, 51, 51}, {60, 60, 70, 70}};
  const std::vector<double> scores = {0.9, 0.95, 0.3, 0.6, 0.5, 0.1};
  CHECK(to_vector(cvk::nms(boxes, scores, 0.5)) == std::vector<index_t>{1, 3, 2, 5});
  CHECK(to_vector(cvk::nms(boxes, scores, 0.5, {.score_threshold = 0.3})) ==
        std::vector<index_t>{1, 3});
  CHECK(to_vector(cvk::nms(boxes, scores, 0.5, {.max_output = 2})) == std::vector<index_t>{1, 3});
  CHECK(to_vector(cvk::nms(boxes, scores, 0.5, {.max_output = 0})).empty());
  // top_k = 3 keeps the candidates 1, 0, 3 (box 2 never enters); box 0 is suppressed by box 1
  CHECK(to_vector(cvk::nms(boxes, scores, 0.5, {.top_k = 3})) == std::vector<index_t>{1, 3});
  CHECK(to_vector(cvk::nms(boxes, scores, 0.5, {.top_k = 0})).empty());
  // formats: the same boxes written as xywh, cxcywh, yxyx (integer-valued: exact conversions)
  boxes_t<double> xywh;
  boxes_t<double> cxcywh;
  boxes_t<double> yxyx;
  for (const auto& b : boxes) {
    xywh.push_back({b[0], b[1], b[2] - b[0], b[3] - b[1]});
    cxcywh.push_back({(b[0] + b[2]) / 2, (b[1] + b[3]) / 2, b[2] - b[0], b[3] - b[1]});
    yxyx.push_back({b[1], b[0], b[3], b[2]});
  }
  const auto expected = to_vector(cvk::nms(boxes, scores, 0.1));
  REQUIRE(expected == std::vector<index_t>{1, 3, 2, 5});
  CHECK(to_vector(cvk::nms(xywh, scores, 0.1, {.format = cvk::box_format::xywh})) == expected);
  CHECK(to_vector(cvk::nms(cxcywh, scores, 0.1, {.format = cvk::box_format::cxcywh})) == expected);
  CHECK(to_vector(cvk::nms(yxyx, scores, 0.1, {.format = cvk::box_format::yxyx})) == expected);
  // xywh read as xyxy: boxes 3 and 4 become inverted and no longer suppress each other
  CHECK(to_vector(cvk::nms(xywh, scores, 0.1)) == std::vector<index_t>{1, 3, 4, 2, 5});
}

TEST_CASE("nms stops at max_output on a large scene", "[nms]") {
  cvk::rng gen(19);
  const auto boxes = random_scene<float>(gen, density::sparse, 20000);
  const auto scores = random_scores<float>(gen, 20000, false);
  const auto all = to_vector(cvk::nms(boxes, scores, 0.5));
  REQUIRE(all.size() > 100);
  const auto first = to_vector(cvk::nms(boxes, scores, 0.5, {.max_output = 100}));
  CHECK(first == std::vector<index_t>(all.begin(), all.begin() + 100));
}

TEST_CASE("nms ranks NaN scores last and drops them under a score threshold", "[nms]") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const boxes_t<double> boxes = {
      {0, 0, 10, 10}, {0, 0, 10, 10}, {50, 50, 60, 60}, {50, 50, 60, 60}, {80, 80, 90, 90}};
  const std::vector<double> scores = {nan, 0.5, 0.7, nan, nan};
  // torchvision ranks NaN first and would return {0, 3, 4}: cvk ranks them last (index order)
  CHECK(to_vector(cvk::nms(boxes, scores, 0.5)) == std::vector<index_t>{2, 1, 4});
  CHECK(to_vector(cvk::nms(boxes, scores, 0.5, {.score_threshold = -1.0})) ==
        std::vector<index_t>{2, 1});
  CHECK(to_vector(cvk::nms(boxes, scores, 0.5, {.top_k = 3})) == std::vector<index_t>{2, 1});
}

TEST_CASE("nms: NaN and infinite coordinates never suppress and are never suppressed", "[nms]") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  boxes_t<double> boxes = {
      {0, 0, 10, 10}, {0, 0, nan, 10}, {0, 0, 10, 10}, {-inf, 0, 10, 10}, {0, 0, 10, 10}};
  // plus enough sparse boxes to take the grid path
  cvk::rng gen(23);
  for (const auto& b : random_scene<double>(gen, density::sparse, 100)) {
    boxes.push_back({b[0] + 100, b[1] + 100, b[2] + 100, b[3] + 100});
  }
  std::vector<double> scores(boxes.size());
  for (std::size_t i = 0; i < scores.size(); ++i) scores[i] = 1.0 - 0.001 * static_cast<double>(i);
  const auto kept = to_vector(cvk::nms(boxes, scores, 0.5));
  CHECK(kept == reference_nms(boxes, scores, 0.5));
  CHECK(std::vector<index_t>(kept.begin(), kept.begin() + 3) == std::vector<index_t>{0, 1, 3});
}

// ---------------------------------------------------------------------------------------------
// Inputs

TEST_CASE("nms reads any strides and any tensor type", "[nms]") {
  cvk::rng gen(29);
  const auto boxes = random_scene<float>(gen, density::clusters, 300);
  const auto scores = random_scores<float>(gen, 300, true);
  const auto expected = reference_nms(boxes, scores, 0.45);
  for (const auto l : cvk_test::all_layouts) {
    INFO(cvk_test::to_string(l));
    const auto stored = cvk_test::with_layout(boxes, l, std::nanf(""));
    CHECK(to_vector(cvk::nms(stored.view, scores, 0.45)) == expected);
  }
  // scores with stride 3, walked backwards
  std::vector<float> spread(3 * scores.size(), -1.0f);
  for (std::size_t i = 0; i < scores.size(); ++i) spread[3 * (scores.size() - 1 - i)] = scores[i];
  const auto backwards = cvk::view(spread.data() + 3 * (scores.size() - 1),
                                   {static_cast<index_t>(scores.size())}, {index_t{-3}});
  CHECK(to_vector(cvk::nms(boxes, backwards, 0.45)) == expected);
  // cvk::tensor inputs
  cvk::tensor<float, 2> box_tensor(static_cast<index_t>(boxes.size()), index_t{4});
  cvk::tensor<float, 1> score_tensor(static_cast<index_t>(scores.size()));
  for (std::size_t i = 0; i < boxes.size(); ++i) {
    for (std::size_t k = 0; k < 4; ++k) {
      box_tensor(static_cast<index_t>(i), static_cast<index_t>(k)) = boxes[i][k];
    }
    score_tensor(static_cast<index_t>(i)) = scores[i];
  }
  CHECK(to_vector(cvk::nms(box_tensor, score_tensor, 0.45)) == expected);
  // integer boxes (computed in double) and integer scores
  const boxes_t<int> int_boxes = {{0, 0, 4, 4}, {1, 1, 5, 5}, {10, 10, 12, 12}};
  const std::vector<int> int_scores = {3, 7, 7};
  // IoU(box 1, box 0) = 9/23 = 0.391; equal scores 7: index 1 before index 2
  CHECK(to_vector(cvk::nms(int_boxes, int_scores, 0.4)) == std::vector<index_t>{1, 2, 0});
  CHECK(to_vector(cvk::nms(int_boxes, int_scores, 0.3)) == std::vector<index_t>{1, 2});
}

TEST_CASE("nms and batched_nms of empty input are empty", "[nms]") {
  const boxes_t<float> none;
  const std::vector<float> no_scores;
  const std::vector<int> no_classes;
  CHECK(cvk::nms(none, no_scores, 0.5).size() == 0);
  CHECK(cvk::batched_nms(none, no_scores, no_classes, 0.5).size() == 0);
  CHECK(cvk::nms(none, no_scores, 0.5, {.max_output = 3, .top_k = 2}).size() == 0);
}

TEST_CASE("nms and batched_nms errors name the function, the argument and the shapes", "[nms]") {
  const boxes_t<float> seven(7, std::array<float, 4>{0, 0, 1, 1});
  const std::vector<float> five(5, 0.5f);
  const std::vector<float> scores(7, 0.5f);
  const std::vector<int> classes(7, 0);
  const std::vector<int> six_classes(6, 0);
  std::vector<float> flat(21, 0.0f);
  const auto seven_by_three = cvk::view(flat.data(), 7, 3);
  CHECK_THROWS_MATCHES(cvk::nms(seven, five, 0.5), cvk::shape_error,
                       Catch::Message("nms: scores must have 7 elements (one per box), got 5"));
  CHECK_THROWS_MATCHES(cvk::nms(seven_by_three, scores, 0.5), cvk::shape_error,
                       Catch::Message("nms: boxes must be N×4, got 7×3"));
  CHECK_THROWS_MATCHES(cvk::nms(seven, scores, std::nan("")), cvk::invalid_argument,
                       Catch::Message("nms: iou_threshold must be a number, got nan"));
  CHECK_THROWS_MATCHES(cvk::nms(seven, scores, 0.5, {.score_threshold = std::nan("")}),
                       cvk::invalid_argument,
                       Catch::Message("nms: score_threshold must be a number, got nan"));
  CHECK_THROWS_MATCHES(cvk::nms(seven, scores, 0.5, {.max_output = -1}), cvk::invalid_argument,
                       Catch::Message("nms: max_output must be >= 0, got -1"));
  CHECK_THROWS_MATCHES(cvk::nms(seven, scores, 0.5, {.top_k = -2}), cvk::invalid_argument,
                       Catch::Message("nms: top_k must be >= 0, got -2"));
  CHECK_THROWS_MATCHES(
      cvk::batched_nms(seven, scores, six_classes, 0.5), cvk::shape_error,
      Catch::Message("batched_nms: classes must have 7 elements (one per box), got 6"));
  CHECK_THROWS_MATCHES(
      cvk::batched_nms(seven, five, classes, 0.5), cvk::shape_error,
      Catch::Message("batched_nms: scores must have 7 elements (one per box), got 5"));
  CHECK_THROWS_MATCHES(cvk::batched_nms(seven_by_three, scores, classes, 0.5), cvk::shape_error,
                       Catch::Message("batched_nms: boxes must be N×4, got 7×3"));
  CHECK_THROWS_MATCHES(cvk::batched_nms(seven, scores, classes, std::nan("")),
                       cvk::invalid_argument,
                       Catch::Message("batched_nms: iou_threshold must be a number, got nan"));
}

// ---------------------------------------------------------------------------------------------
// The ranking (a radix sort above 256 candidates) against a stable comparison sort.
namespace {
template <class S>
std::vector<index_t> stable_rank(const std::vector<S>& scores) {
  std::vector<index_t> order(scores.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = static_cast<index_t>(i);
  std::stable_sort(order.begin(), order.end(), [&](index_t a, index_t b) {
    const S sa = scores[static_cast<std::size_t>(a)];
    const S sb = scores[static_cast<std::size_t>(b)];
    if constexpr (std::is_floating_point_v<S>) {
      if (std::isnan(sb)) return !std::isnan(sa);
      if (std::isnan(sa)) return false;
    }
    return sa > sb;
  });
  return order;
}
}  // namespace

TEMPLATE_TEST_CASE("nms ranking equals a stable sort for every score type", "[nms]", float, double,
                   std::int8_t, std::uint8_t, std::int32_t, std::uint32_t, std::int64_t,
                   std::uint64_t) {
  using S = TestType;
  cvk::rng gen(31, sizeof(S));
  for (const std::size_t n :
       {std::size_t{0}, std::size_t{1}, std::size_t{255}, std::size_t{256}, std::size_t{3000}}) {
    for (int variant = 0; variant < 4; ++variant) {
      std::vector<S> scores(n);
      for (auto& s : scores) {
        if constexpr (std::is_floating_point_v<S>) {
          constexpr std::array<S, 7> special = {S(0),
                                                -S(0),
                                                std::numeric_limits<S>::infinity(),
                                                -std::numeric_limits<S>::infinity(),
                                                std::numeric_limits<S>::quiet_NaN(),
                                                std::numeric_limits<S>::denorm_min(),
                                                S(-1e30)};
          s = variant == 0         ? gen.uniform<S>(S(-1), S(1))
              : variant == 1       ? static_cast<S>(gen.below(7)) / S(3)  // heavy ties
              : gen.bernoulli(0.5) ? special[gen.below(special.size())]
                                   : gen.uniform<S>(S(-1e3), S(1e3));
        } else {
          const auto wide = static_cast<std::uint64_t>(gen.below(std::uint64_t{1} << 62)) * 3u;
          s = variant == 1 ? static_cast<S>(gen.below(5)) : static_cast<S>(wide);  // wraps
        }
      }
      const std::vector<index_t> expected = stable_rank(scores);
      const auto view = cvk::as_view(scores);
      INFO("N=" << n << " variant " << variant);
      REQUIRE(cvk::detail::nms_order(view, cvk::nms_options{}) == expected);
      // equal scores of different signs of zero keep index order, as a comparison sort does
      const cvk::nms_options capped{.top_k = static_cast<index_t>(n / 3)};
      REQUIRE(cvk::detail::nms_order(view, capped) ==
              std::vector<index_t>(expected.begin(),
                                   expected.begin() + static_cast<std::ptrdiff_t>(n / 3)));
    }
  }
}

TEST_CASE("batched_nms groups class ids spanning more than 32 bits", "[nms]") {
  cvk::rng gen(37);
  const std::size_t n = 2000;
  const auto boxes = random_scene<double>(gen, density::clusters, n);
  const auto scores = random_scores<double>(gen, n, true);
  constexpr std::array<std::int64_t, 5> ids = {std::numeric_limits<std::int64_t>::min(), -1, 0,
                                               std::int64_t{1} << 40,
                                               std::numeric_limits<std::int64_t>::max()};
  std::vector<std::int64_t> classes(n);
  for (auto& c : classes) c = ids[gen.below(ids.size())];
  for (const double threshold : {0.3, 0.5, 0.7}) {
    REQUIRE(to_vector(cvk::batched_nms(boxes, scores, classes, threshold)) ==
            reference_batched_nms(boxes, scores, classes, threshold));
  }
  std::vector<std::uint16_t> small(n);
  for (auto& c : small) c = static_cast<std::uint16_t>(gen.below(3) * 30000);
  REQUIRE(to_vector(cvk::batched_nms(boxes, scores, small, 0.5)) ==
          reference_batched_nms(boxes, scores, small, 0.5));
}

TEST_CASE("scratch leases of one slot never alias, nested or repeated", "[nms]") {
  using cvk::detail::scratch_lease;
  using cvk::detail::scratch_slot_id;
  const scratch_lease<int> outer(scratch_slot_id::nms_sides, 100);
  std::fill(outer.get(), outer.get() + 100, 7);
  {
    const scratch_lease<int> inner(scratch_slot_id::nms_sides, 100);  // re-entrant: private
    REQUIRE(inner.get() != outer.get());
    std::fill(inner.get(), inner.get() + 100, 9);
  }
  REQUIRE(std::count(outer.get(), outer.get() + 100, 7) == 100);
  // nms inside a lease of its own slots still gives the reference answer
  cvk::rng gen(41);
  const auto boxes = random_scene<float>(gen, density::sparse, 3000);
  const auto scores = random_scores<float>(gen, 3000, false);
  const scratch_lease<float> held(scratch_slot_id::nms_grid_boxes, 10);
  REQUIRE(to_vector(cvk::nms(boxes, scores, 0.5)) == reference_nms(boxes, scores, 0.5));
  REQUIRE(to_vector(cvk::nms(boxes, scores, 0.5)) == reference_nms(boxes, scores, 0.5));
}

// ---------------------------------------------------------------------------------------------
// eta (OpenCV's adaptive threshold), DIoU-NMS and pixel-inclusive boxes against OpenCV's
// compare-against-kept loop written plainly: a candidate is kept when no kept box reaches the
// current threshold; after each kept box a threshold above 0.5 is multiplied by eta.
namespace {
CVK_KERNEL_BEGIN
template <class T>
T plain_overlap(const std::array<T, 4>& a, const std::array<T, 4>& b, bool diou, T beta) {
  const T area_a = (a[2] - a[0]) * (a[3] - a[1]);
  const T area_b = (b[2] - b[0]) * (b[3] - b[1]);
  const T w = std::max(T(0), std::min(a[2], b[2]) - std::max(a[0], b[0]));
  const T h = std::max(T(0), std::min(a[3], b[3]) - std::max(a[1], b[1]));
  const T inter = w * h;
  const T iou = inter / ((area_a + area_b) - inter);
  if (!diou) return iou;
  // centres (a1 + a2)/2: the factor 2 of both distances cancels in the ratio
  const T dx = (a[0] + a[2]) - (b[0] + b[2]);
  const T dy = (a[1] + a[3]) - (b[1] + b[3]);
  const T cw = std::max(a[2], b[2]) - std::min(a[0], b[0]);
  const T ch = std::max(a[3], b[3]) - std::min(a[1], b[1]);
  const T c2 = T(4) * (cw * cw + ch * ch);
  T penalty = c2 > T(0) ? (dx * dx + dy * dy) / c2 : T(0);
  if (beta != T(1)) penalty = std::pow(penalty, beta);
  return iou - penalty;
}

template <class T, class S>
std::vector<index_t> reference_adaptive_nms(boxes_t<T> boxes, const std::vector<S>& scores,
                                            double threshold, const cvk::nms_options& options) {
  if (options.pixel_inclusive) {
    for (auto& b : boxes) b = {b[0], b[1], b[2] + T(1), b[3] + T(1)};
  }
  std::vector<index_t> order(scores.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = static_cast<index_t>(i);
  std::stable_sort(order.begin(), order.end(), [&](index_t a, index_t b) {
    return scores[static_cast<std::size_t>(a)] > scores[static_cast<std::size_t>(b)];
  });
  const bool diou = options.criterion == cvk::nms_criterion::diou;
  const auto beta = static_cast<T>(options.diou_beta);
  std::vector<index_t> keep;
  for (const index_t j : order) {
    bool kept = true;
    for (const index_t i : keep) {
      const auto o = static_cast<double>(plain_overlap(
          boxes[static_cast<std::size_t>(i)], boxes[static_cast<std::size_t>(j)], diou, beta));
      if (options.inclusive ? o >= threshold : o > threshold) {
        kept = false;
        break;
      }
    }
    if (!kept) continue;
    keep.push_back(j);
    if (options.eta < 1.0 && threshold > 0.5) threshold *= options.eta;
  }
  return keep;
}
CVK_KERNEL_END
}  // namespace

TEMPLATE_TEST_CASE("nms eta, DIoU criterion and pixel-inclusive boxes equal a plain reference",
                   "[nms]", float, double) {
  using T = TestType;
  cvk::rng gen(43, std::is_same_v<T, float> ? 1 : 2);
  std::size_t adaptive = 0;
  for (int scene = 0; scene < 1500; ++scene) {
    const auto d = static_cast<density>(scene % 5);
    const std::size_t n = gen.bernoulli(0.3) ? gen.below(60) : 100 + gen.below(600);
    const auto boxes = random_scene<T>(gen, d, n);
    const auto scores = random_scores<T>(gen, n, gen.bernoulli(0.3));
    const double threshold = random_threshold(gen);
    cvk::nms_options options;
    options.inclusive = gen.bernoulli(0.3);
    options.pixel_inclusive = gen.bernoulli(0.3);
    if (gen.bernoulli(0.5)) options.eta = gen.bernoulli(0.5) ? 0.9 : gen.uniform(0.5, 1.0);
    if (gen.bernoulli(0.5)) {
      options.criterion = cvk::nms_criterion::diou;
      if (gen.bernoulli(0.5)) options.diou_beta = gen.bernoulli(0.5) ? 0.6 : gen.uniform(0.3, 2.0);
    }
    INFO(describe(d, n, threshold, options)
         << " eta=" << options.eta << " pixel_inclusive=" << options.pixel_inclusive << " diou="
         << (options.criterion == cvk::nms_criterion::diou) << " beta=" << options.diou_beta);
    const auto expected = reference_adaptive_nms(boxes, scores, threshold, options);
    REQUIRE(to_vector(cvk::nms(boxes, scores, threshold, options)) == expected);
    if (options.eta < 1.0 && threshold > 0.5 && expected.size() > 1) ++adaptive;
    // one class: batched_nms is nms
    const std::vector<int> one_class(n, 3);
    REQUIRE(to_vector(cvk::batched_nms(boxes, scores, one_class, threshold, options)) == expected);
  }
  CHECK(adaptive > 100);
}

TEST_CASE("nms options by hand: eta lowers the threshold, DIoU suppresses close centres", "[nms]") {
  // IoU(a, b) = 0.6 (a is 0..10, b is 0..10 shifted by 2.5 in x: inter 75, union 125)
  const boxes_t<double> boxes = {{0, 0, 10, 10},
                                 {2.5, 0, 12.5, 10},
                                 {20, 0, 30, 10},
                                 {22, 0, 32, 10}};  // IoU(c, d) = 80 / 120 = 0.667
  const std::vector<double> scores = {0.9, 0.8, 0.7, 0.6};
  REQUIRE(to_vector(cvk::nms(boxes, scores, 0.7)) == std::vector<index_t>{0, 1, 2, 3});
  // eta 0.8: after box 0 the threshold is 0.56 < 0.6: box 1 suppressed; after box 2 it stays 0.56
  // (0.56 > 0.5 → 0.448): box 3 (0.667) suppressed
  REQUIRE(to_vector(cvk::nms(boxes, scores, 0.7, {.eta = 0.8})) == std::vector<index_t>{0, 2});
  // DIoU of (a, b): 0.6 - ρ²/c² with ρ = 2.5, c² = 12.5² + 10² = 256.25 → 0.6 - 0.02439 = 0.5756
  REQUIRE(to_vector(cvk::nms(boxes, scores, 0.58, {.criterion = cvk::nms_criterion::diou})) ==
          std::vector<index_t>{0, 1, 2});
  REQUIRE(to_vector(cvk::nms(boxes, scores, 0.57, {.criterion = cvk::nms_criterion::diou})) ==
          std::vector<index_t>{0, 2});
  // pixel-inclusive: 0..10 is 11 pixels wide; IoU(a, b) = (8.5·11) / (2·121 − 93.5) = 0.6296
  REQUIRE(to_vector(cvk::nms(boxes, scores, 0.62, {.pixel_inclusive = true})) ==
          std::vector<index_t>{0, 2});
  // and IoU(c, d) = (9·11) / (2·121 − 99) = 0.6923 (0.667 without +1)
  REQUIRE(to_vector(cvk::nms(boxes, scores, 0.63, {.pixel_inclusive = true})) ==
          std::vector<index_t>{0, 1, 2});
  REQUIRE(to_vector(cvk::nms(boxes, scores, 0.68, {.pixel_inclusive = true})) ==
          std::vector<index_t>{0, 1, 2});
  REQUIRE(to_vector(cvk::nms(boxes, scores, 0.68)) == std::vector<index_t>{0, 1, 2, 3});
  REQUIRE_THROWS_AS(cvk::nms(boxes, scores, 0.5, {.eta = 0.0}), cvk::invalid_argument);
  REQUIRE_THROWS_AS(cvk::nms(boxes, scores, 0.5, {.eta = 1.5}), cvk::invalid_argument);
  REQUIRE_THROWS_AS(cvk::nms(boxes, scores, 0.5, {.diou_beta = 0.0}), cvk::invalid_argument);
  REQUIRE_THROWS_WITH(cvk::nms(boxes, scores, 0.5, {.eta = -1.0}),
                      Catch::Contains("nms: eta must be in (0, 1]"));
}

TEST_CASE("errors table: nms and batched_nms (docs/errors.md)", "[nms][errors]") {
  const std::vector<float> buffer(8, 1.0F);
  const auto rank3 = cvk_test::rank3_view(buffer);
  const boxes_t<float> two = {{0, 0, 10, 10}, {20, 20, 30, 30}};
  const std::vector<float> scores = {0.9F, 0.8F};
  const std::vector<int> classes = {0, 1};
  CHECK_THROWS_MATCHES(cvk::nms(rank3, scores, 0.5), cvk::shape_error,
                       Catch::Message("nms: boxes must have rank 2, got rank 3 (2×2×2)"));
  CHECK_THROWS_MATCHES(cvk::nms(two, rank3, 0.5), cvk::shape_error,
                       Catch::Message("nms: scores must have rank 1, got rank 3 (2×2×2)"));
  const std::vector<int> int_buffer(8, 0);
  CHECK_THROWS_MATCHES(cvk::batched_nms(two, scores, cvk_test::rank3_view(int_buffer), 0.5),
                       cvk::shape_error,
                       Catch::Message("batched_nms: classes must have rank 1, got rank 3 (2×2×2)"));
  CHECK_THROWS_MATCHES(cvk::nms(cvk::view(buffer.data(), {-1, 4}), scores, 0.5), cvk::shape_error,
                       Catch::Message("nms: boxes has a negative extent, got -1×4"));
  // iou_threshold outside [0, 1]: compared as given (torchvision): above 1 suppresses nothing,
  // below 0 suppresses every later box, disjoint ones included (IoU 0 > t)
  const boxes_t<float> same = {{0, 0, 10, 10}, {0, 0, 10, 10}, {50, 50, 60, 60}};
  const std::vector<float> three = {0.9F, 0.8F, 0.7F};
  CHECK(cvk::nms(same, three, 1.5).size() == 3);
  CHECK(cvk::nms(same, three, -0.5).size() == 1);
  // 2^40 broadcast boxes: the ranking cannot be allocated
  const std::array<float, 4> row{0, 0, 1, 1};
  const float score = 0.5F;
  const int label = 0;
  const auto many = cvk_test::broadcast_rows(row.data(), cvk_test::huge_rows, 4);
  const auto many_scores = cvk_test::broadcast_values(&score, cvk_test::huge_rows);
  CHECK_THROWS_MATCHES(cvk::nms(many, many_scores, 0.5), cvk::out_of_range,
                       Catch::Message("nms: boxes (1099511627776×4) needs 1099511627776 elements "
                                      "of 8 bytes, more than can be allocated"));
  CHECK_THROWS_AS(cvk::batched_nms(many, many_scores,
                                   cvk_test::broadcast_values(&label, cvk_test::huge_rows), 0.5),
                  cvk::out_of_range);
  // a box_format outside the enum
  CHECK_THROWS_MATCHES(
      cvk::nms(two, scores, 0.5, {.format = static_cast<cvk::box_format>(5)}),
      cvk::invalid_argument,
      Catch::Message("nms: options.format must be xyxy, xywh, cxcywh or yxyx, got box_format(5)"));
}
