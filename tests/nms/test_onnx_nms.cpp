// cvk — computer-vision kernels, header-only C++20.
// Tests of cvk/nms/onnx.hpp: onnx::non_max_suppression against the ONNX backend node tests and
// random cases (tests/data/onnx_nms.txt, written by tests/gen_onnx_nms_fixtures.py), and against
// ONNX Runtime's CPU kernel written plainly (below) on random batches of every kind: both box
// modes, flipped corners, ties, degenerate and non-finite boxes, float, double and integer
// input, strided layouts; the thresholds exactly hit; the errors.
// SPDX-License-Identifier: MIT
#include <algorithm>
#include <array>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include <cvk/core.hpp>
#include <cvk/nms/onnx.hpp>

#include "support/fixtures.hpp"

namespace {

/// An optional threshold, engaged or not. Built engaged, then reset: g++ 12 at -O3 warns
/// (-Wmaybe-uninitialized) when a disengaged std::optional<double> is copied, its payload never
/// having been written.
std::optional<double> optional_threshold(bool engaged, double value) {
  std::optional<double> threshold(value);
  if (!engaged) threshold.reset();
  return threshold;
}

using cvk::index_t;
using triple = std::array<std::int64_t, 3>;

/// A NonMaxSuppression input: boxes [B,N,4] and scores [B,C,N], row-major.
template <class T>
struct nms_input {
  index_t batches = 0;
  index_t n = 0;
  index_t classes = 0;
  std::vector<T> boxes;   // B*N*4
  std::vector<T> scores;  // B*C*N

  [[nodiscard]] cvk::strided_view<const T, 3> boxes_view() const {
    return {boxes.data(), {batches, n, 4}};
  }
  [[nodiscard]] cvk::strided_view<const T, 3> scores_view() const {
    return {scores.data(), {batches, classes, n}};
  }
  [[nodiscard]] T box(index_t b, index_t i, index_t k) const {
    return boxes[static_cast<std::size_t>((b * n + i) * 4 + k)];
  }
  [[nodiscard]] T score(index_t b, index_t c, index_t i) const {
    return scores[static_cast<std::size_t>((b * classes + c) * n + i)];
  }
};

// ---------------------------------------------------------------------------------------------
// The reference: ONNX Runtime's NonMaxSuppression CPU kernel (non_max_suppression.cc and
// suppress_by_iou in non_max_suppression_helper.h) written plainly, in T, the thresholds
// rounded to T as the operator's float inputs are.
CVK_KERNEL_BEGIN
template <class T>
struct extent {
  T x_min, x_max, y_min, y_max;
};

template <class T>
extent<T> ort_extent(T v0, T v1, T v2, T v3, int center_point_box) {
  if (center_point_box == 0) {  // [y1, x1, y2, x2]; MaxMin(lhs, rhs): lhs >= rhs → (rhs, lhs)
    extent<T> e{};
    if (v1 >= v3) {
      e.x_min = v3;
      e.x_max = v1;
    } else {
      e.x_min = v1;
      e.x_max = v3;
    }
    if (v0 >= v2) {
      e.y_min = v2;
      e.y_max = v0;
    } else {
      e.y_min = v0;
      e.y_max = v2;
    }
    return e;
  }
  const T half_w = v2 / T(2);
  const T half_h = v3 / T(2);
  return {v0 - half_w, v0 + half_w, v1 - half_h, v1 + half_h};
}

// std::max(a, b) = (a < b) ? b : a; std::min(a, b) = (b < a) ? b : a (their NaN behaviour).
template <class T>
T std_max(T a, T b) {
  return a < b ? b : a;
}
template <class T>
T std_min(T a, T b) {
  return b < a ? b : a;
}

/// suppress_by_iou(candidate = box1, selected = box2).
template <class T>
bool ort_suppresses(const extent<T>& box1, const extent<T>& box2, T iou_threshold) {
  const T ix_min = std_max(box1.x_min, box2.x_min);
  const T ix_max = std_min(box1.x_max, box2.x_max);
  if (ix_max <= ix_min) return false;
  const T iy_min = std_max(box1.y_min, box2.y_min);
  const T iy_max = std_min(box1.y_max, box2.y_max);
  if (iy_max <= iy_min) return false;
  const T inter = (ix_max - ix_min) * (iy_max - iy_min);
  if (inter <= T(0)) return false;
  const T area1 = (box1.x_max - box1.x_min) * (box1.y_max - box1.y_min);
  const T area2 = (box2.x_max - box2.x_min) * (box2.y_max - box2.y_min);
  const T sum = area1 + area2;
  const T uni = sum - inter;
  if (area1 <= T(0) || area2 <= T(0) || uni <= T(0)) return false;
  const T iou = inter / uni;
  return iou > iou_threshold;
}
CVK_KERNEL_END

template <class T>
std::vector<triple> reference_onnx(const nms_input<T>& in, std::int64_t max_output,
                                   double iou_threshold, std::optional<double> score_threshold,
                                   int center_point_box) {
  using R = cvk::real_t<T>;
  std::vector<triple> result;
  if (max_output <= 0) return result;
  const auto thr = static_cast<R>(iou_threshold);
  for (index_t b = 0; b < in.batches; ++b) {
    std::vector<extent<R>> extents;
    for (index_t i = 0; i < in.n; ++i) {
      extents.push_back(ort_extent(static_cast<R>(in.box(b, i, 0)), static_cast<R>(in.box(b, i, 1)),
                                   static_cast<R>(in.box(b, i, 2)), static_cast<R>(in.box(b, i, 3)),
                                   center_point_box));
    }
    for (index_t c = 0; c < in.classes; ++c) {
      std::vector<index_t> candidates;
      for (index_t i = 0; i < in.n; ++i) {
        bool passes = true;
        if (score_threshold) {
          if constexpr (std::is_floating_point_v<T>) {
            passes = in.score(b, c, i) > static_cast<T>(*score_threshold);
          } else {
            passes = static_cast<double>(in.score(b, c, i)) > *score_threshold;
          }
        }
        if (passes) candidates.push_back(i);
      }
      // score descending, equal scores by index (ORT's (score, index) heap order); NaN last
      std::stable_sort(candidates.begin(), candidates.end(), [&](index_t x, index_t y) {
        const T sx = in.score(b, c, x);
        const T sy = in.score(b, c, y);
        if constexpr (std::is_floating_point_v<T>) {
          if (std::isnan(sy)) return !std::isnan(sx);
        }
        return sx > sy;
      });
      std::vector<index_t> chosen;
      for (const index_t i : candidates) {
        if (static_cast<std::int64_t>(chosen.size()) == max_output) break;
        bool selected = true;
        for (const index_t k : chosen) {
          if (ort_suppresses(extents[static_cast<std::size_t>(i)],
                             extents[static_cast<std::size_t>(k)], thr)) {
            selected = false;
            break;
          }
        }
        if (!selected) continue;
        chosen.push_back(i);
        result.push_back({b, c, i});
      }
    }
  }
  return result;
}

std::vector<triple> to_triples(const cvk::tensor<std::int64_t, 2>& t) {
  REQUIRE(t.extent(1) == 3);
  std::vector<triple> rows(static_cast<std::size_t>(t.extent(0)));
  for (index_t r = 0; r < t.extent(0); ++r) {
    rows[static_cast<std::size_t>(r)] = {t(r, 0), t(r, 1), t(r, 2)};
  }
  return rows;
}

// ---------------------------------------------------------------------------------------------
// Random inputs.

enum class scene { sparse, clusters, grid, degenerate, non_finite };
constexpr std::size_t scene_count = 5;

template <class T>
nms_input<T> random_input(cvk::rng& gen, scene kind, int center_point_box) {
  nms_input<T> in;
  in.batches = static_cast<index_t>(1 + gen.below(3));
  in.classes = static_cast<index_t>(1 + gen.below(4));
  in.n = static_cast<index_t>(gen.bernoulli(0.2) ? gen.below(50) : 40 + gen.below(260));
  const auto count = static_cast<std::size_t>(in.batches * in.n);
  std::array<double, 10> centres{};
  for (double& c : centres) c = gen.uniform(0.0, 300.0);
  for (std::size_t j = 0; j < count; ++j) {
    double x = 0;
    double y = 0;
    double w = 0;
    double h = 0;
    switch (kind) {
      case scene::sparse:
      case scene::non_finite:
      case scene::degenerate:
        x = gen.uniform(0.0, 1000.0);
        y = gen.uniform(0.0, 1000.0);
        w = gen.uniform(1.0, 50.0);
        h = gen.uniform(1.0, 50.0);
        break;
      case scene::clusters: {
        const std::size_t k = 2 * gen.below(5);
        w = gen.uniform(20.0, 60.0);
        h = gen.uniform(20.0, 60.0);
        x = centres[k] + gen.normal(0.0, 5.0) - w / 2;
        y = centres[k + 1] + gen.normal(0.0, 5.0) - h / 2;
        break;
      }
      case scene::grid:  // integer boxes on a small canvas: identical boxes, exact IoU values
        x = static_cast<double>(gen.below(6));
        y = static_cast<double>(gen.below(6));
        w = static_cast<double>(1 + gen.below(3));
        h = static_cast<double>(1 + gen.below(3));
        break;
    }
    if (kind == scene::degenerate) {
      if (gen.bernoulli(0.2)) w = 0;
      if (gen.bernoulli(0.2)) h = 0;
      if (gen.bernoulli(0.1)) w = -w;
      if (gen.bernoulli(0.1)) h = -h;
    }
    std::array<double, 4> v{};
    if (center_point_box == 0) {
      v = {y, x, y + h, x + w};
      if (gen.bernoulli(0.3)) std::swap(v[0], v[2]);
      if (gen.bernoulli(0.3)) std::swap(v[1], v[3]);
    } else {
      v = {x + w / 2, y + h / 2, w, h};
    }
    if (kind == scene::non_finite && gen.bernoulli(0.1)) {
      const std::array<double, 3> bad = {std::numeric_limits<double>::quiet_NaN(),
                                         std::numeric_limits<double>::infinity(),
                                         -std::numeric_limits<double>::infinity()};
      v[gen.below(4)] = bad[gen.below(3)];
    }
    for (const double value : v) in.boxes.push_back(static_cast<T>(value));
  }
  const bool ties = gen.bernoulli(0.4);
  const auto score_count = static_cast<std::size_t>(in.batches * in.classes * in.n);
  for (std::size_t j = 0; j < score_count; ++j) {
    in.scores.push_back(ties ? static_cast<T>(static_cast<double>(gen.below(5)) / 4.0)
                             : static_cast<T>(gen.uniform(0.0, 1.0)));
  }
  return in;
}

double random_iou_threshold(cvk::rng& gen) {
  constexpr std::array<double, 7> fixed = {0.0, 0.3, 1.0 / 3.0, 0.5, 0.7, 1.0, 0.45};
  return gen.bernoulli(0.7) ? fixed[gen.below(fixed.size())] : gen.uniform(0.0, 1.0);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Fixtures: the ONNX backend node tests and generated cases

TEST_CASE("onnx::non_max_suppression: equals the ONNX backend tests and the generated cases",
          "[onnx_nms]") {
  const cvk_test::fixture_file file(cvk_test::test_data_path("onnx_nms.txt"));
  std::size_t backend = 0;
  std::size_t hand = 0;
  std::size_t random = 0;
  std::size_t selected_total = 0;
  for (const auto& [name, table] : file.tables()) {
    if (name.size() < 6 || name.compare(name.size() - 6, 6, "/shape") != 0) continue;
    const std::string prefix = name.substr(0, name.size() - 6);
    const auto shape = table.values<std::int64_t>();
    REQUIRE(shape.size() == 6);
    const auto thresholds = file.table(prefix + "/thresholds").values<float>();
    nms_input<float> in;
    in.batches = shape[0];
    in.n = shape[1];
    in.classes = shape[2];
    in.boxes = file.table(prefix + "/boxes").values<float>();
    in.scores = file.table(prefix + "/scores").values<float>();
    REQUIRE(in.boxes.size() == static_cast<std::size_t>(in.batches * in.n * 4));
    REQUIRE(in.scores.size() == static_cast<std::size_t>(in.batches * in.classes * in.n));
    const std::int64_t max_output = shape[3];
    const auto center = static_cast<int>(shape[4]);
    const std::optional<double> score_threshold = optional_threshold(shape[5] != 0, thresholds[1]);
    const auto expected = file.table(prefix + "/selected").rows_of<std::int64_t, 3>();
    INFO(prefix);
    CHECK(to_triples(cvk::onnx::non_max_suppression(in.boxes_view(), in.scores_view(), max_output,
                                                    thresholds[0], score_threshold, center)) ==
          expected);
    // the float thresholds given as the nearest doubles of the model's values: same result
    CHECK(reference_onnx(in, max_output, thresholds[0], score_threshold, center) == expected);
    selected_total += expected.size();
    if (prefix.rfind("case/backend/", 0) == 0) ++backend;
    if (prefix.rfind("case/hand/", 0) == 0) ++hand;
    if (prefix.rfind("case/random/", 0) == 0) ++random;
  }
  CHECK(backend == 9);
  CHECK(hand == 6);
  CHECK(random == 120);
  CHECK(selected_total > 2000);
}

TEST_CASE("onnx::non_max_suppression: the backend test suppress_by_IOU by hand", "[onnx_nms]") {
  // onnx/backend/test/case/node/nonmaxsuppression.py, test_nonmaxsuppression_suppress_by_IOU and
  // its variants; box 1 and 2 are box 0 shifted by ±0.1 (IoU 0.9/1.1 = 0.818), box 4 is box 3
  // shifted by 0.1.
  const std::array<float, 24> box_data = {0.0f, 0.0f,  1.0f, 1.0f,  0.0f, 0.1f,   1.0f, 1.1f,
                                          0.0f, -0.1f, 1.0f, 0.9f,  0.0f, 10.0f,  1.0f, 11.0f,
                                          0.0f, 10.1f, 1.0f, 11.1f, 0.0f, 100.0f, 1.0f, 101.0f};
  const std::array<float, 6> score_data = {0.9f, 0.75f, 0.6f, 0.95f, 0.5f, 0.3f};
  const auto boxes = cvk::view(box_data.data(), 1, 6, 4);
  const auto scores = cvk::view(score_data.data(), 1, 1, 6);
  using rows = std::vector<triple>;
  CHECK(to_triples(cvk::onnx::non_max_suppression(boxes, scores, 3, 0.5, 0.0)) ==
        rows{{0, 0, 3}, {0, 0, 0}, {0, 0, 5}});
  CHECK(to_triples(cvk::onnx::non_max_suppression(boxes, scores, 3, 0.5, 0.4)) ==
        rows{{0, 0, 3}, {0, 0, 0}});
  CHECK(to_triples(cvk::onnx::non_max_suppression(boxes, scores, 2, 0.5, 0.0)) ==
        rows{{0, 0, 3}, {0, 0, 0}});
  // no score_threshold input: every box is a candidate
  CHECK(to_triples(cvk::onnx::non_max_suppression(boxes, scores, 3, 0.5)) ==
        rows{{0, 0, 3}, {0, 0, 0}, {0, 0, 5}});
  // IoU 0.818 is not > 0.82: nothing is suppressed among the first three
  CHECK(to_triples(cvk::onnx::non_max_suppression(boxes, scores, 10, 0.82)) ==
        rows{{0, 0, 3}, {0, 0, 0}, {0, 0, 1}, {0, 0, 2}, {0, 0, 4}, {0, 0, 5}});
  // max_output_boxes_per_class 0 (the spec's default) and negative (ORT clamps to 0): nothing
  for (const std::int64_t none : {std::int64_t{0}, std::int64_t{-1}, std::int64_t{-100}}) {
    const auto result = cvk::onnx::non_max_suppression(boxes, scores, none, 0.5);
    CHECK(result.extent(0) == 0);
    CHECK(result.extent(1) == 3);
  }
}

TEST_CASE("onnx::non_max_suppression: thresholds exactly hit, in float and in double",
          "[onnx_nms]") {
  // [y1, x1, y2, x2]: box 1 is the left half of box 0 (IoU 1/2 exactly)
  nms_input<float> f;
  f.batches = 1;
  f.n = 2;
  f.classes = 1;
  f.boxes = {0, 0, 1, 2, 1, 1, 0, 0};  // box 1 written with the other diagonal order
  f.scores = {0.5f, 0.5f};             // a tie: box 0 first
  using rows = std::vector<triple>;
  CHECK(to_triples(cvk::onnx::non_max_suppression(f.boxes_view(), f.scores_view(), 5, 0.5)) ==
        rows{{0, 0, 0}, {0, 0, 1}});
  CHECK(to_triples(cvk::onnx::non_max_suppression(
            f.boxes_view(), f.scores_view(), 5, static_cast<double>(std::nextafter(0.5f, 0.0f)))) ==
        rows{{0, 0, 0}});
  // the double just below 0.5 rounds to the float 0.5 (ORT's float input): not suppressed
  CHECK(to_triples(cvk::onnx::non_max_suppression(f.boxes_view(), f.scores_view(), 5,
                                                  std::nextafter(0.5, 0.0))) ==
        rows{{0, 0, 0}, {0, 0, 1}});
  // a score exactly at score_threshold is dropped (score > threshold)
  CHECK(to_triples(cvk::onnx::non_max_suppression(f.boxes_view(), f.scores_view(), 5, 0.9, 0.5))
            .empty());
  // 0.3 as a double is not a float: the threshold is rounded to float first, as ORT reads it.
  // Box 1 is 3/10 of box 0: the float IoU 0.3f equals float(0.3) and is not > it.
  nms_input<float> g = f;
  g.boxes = {0, 0, 1, 10, 0, 0, 1, 3};
  CHECK(to_triples(cvk::onnx::non_max_suppression(g.boxes_view(), g.scores_view(), 5, 0.3)) ==
        rows{{0, 0, 0}, {0, 0, 1}});
  // a score threshold of 0.1 (double) against a float score 0.1f: float(0.1) == 0.1f, not >
  g.scores = {0.1f, 0.2f};
  CHECK(to_triples(cvk::onnx::non_max_suppression(g.boxes_view(), g.scores_view(), 5, 0.9, 0.1)) ==
        rows{{0, 0, 1}});
  // double input: IoU 0.3 computed in double (3/10 rounds to the double 0.3): not > 0.3
  nms_input<double> d;
  d.batches = 1;
  d.n = 2;
  d.classes = 1;
  d.boxes = {0, 0, 1, 10, 0, 0, 1, 3};
  d.scores = {0.5, 0.4};
  CHECK(to_triples(cvk::onnx::non_max_suppression(d.boxes_view(), d.scores_view(), 5, 0.3)) ==
        rows{{0, 0, 0}, {0, 0, 1}});
  CHECK(to_triples(cvk::onnx::non_max_suppression(d.boxes_view(), d.scores_view(), 5, 0.29)) ==
        rows{{0, 0, 0}});
  // iou_threshold 1: nothing is suppressed, identical boxes included
  d.boxes = {0, 0, 1, 1, 0, 0, 1, 1};
  CHECK(to_triples(cvk::onnx::non_max_suppression(d.boxes_view(), d.scores_view(), 5, 1.0)) ==
        rows{{0, 0, 0}, {0, 0, 1}});
  CHECK(to_triples(cvk::onnx::non_max_suppression(d.boxes_view(), d.scores_view(), 5, 0.0)) ==
        rows{{0, 0, 0}});
}

// ---------------------------------------------------------------------------------------------
// Random inputs against the plain reference

TEMPLATE_TEST_CASE("onnx::non_max_suppression: equals ORT's kernel written plainly on random input",
                   "[onnx_nms]", float, double) {
  using T = TestType;
  cvk::rng gen(71, std::is_same_v<T, float> ? 1 : 2);
  std::size_t grid_classes = 0;
  for (int round = 0; round < 700; ++round) {
    const auto kind = static_cast<scene>(static_cast<std::size_t>(round) % scene_count);
    const int center = static_cast<int>(gen.below(2));
    const auto in = random_input<T>(gen, kind, center);
    const double iou = random_iou_threshold(gen);
    const bool has_score_threshold = gen.bernoulli(0.4);
    const std::optional<double> score_threshold =
        optional_threshold(has_score_threshold, has_score_threshold ? gen.uniform(-0.1, 0.8) : 0.0);
    const std::array<std::int64_t, 6> limits = {1, 2, 5, 20, 1000, std::int64_t{1} << 40};
    const std::int64_t max_output = limits[gen.below(limits.size())];
    if (in.n >= 48) grid_classes += static_cast<std::size_t>(in.batches * in.classes);
    INFO("round " << round << " B=" << in.batches << " N=" << in.n << " C=" << in.classes
                  << " center_point_box=" << center << " iou=" << iou
                  << " max_output=" << max_output);
    const auto expected = reference_onnx(in, max_output, iou, score_threshold, center);
    REQUIRE(to_triples(cvk::onnx::non_max_suppression(in.boxes_view(), in.scores_view(), max_output,
                                                      iou, score_threshold, center)) == expected);
  }
  CHECK(grid_classes > 1000);
}

TEST_CASE("onnx::non_max_suppression: integer input is computed in double", "[onnx_nms]") {
  cvk::rng gen(73);
  for (int round = 0; round < 100; ++round) {
    const int center = static_cast<int>(gen.below(2));
    const auto grid = random_input<double>(gen, scene::grid, center);
    nms_input<int> in;
    in.batches = grid.batches;
    in.n = grid.n;
    in.classes = grid.classes;
    for (const double v : grid.boxes) in.boxes.push_back(static_cast<int>(2 * v));
    for (std::size_t j = 0; j < grid.scores.size(); ++j)
      in.scores.push_back(static_cast<int>(j % 7));
    const double iou = random_iou_threshold(gen);
    INFO("round " << round);
    CHECK(to_triples(cvk::onnx::non_max_suppression(in.boxes_view(), in.scores_view(), 50, iou, 2.0,
                                                    center)) ==
          reference_onnx(in, 50, iou, 2.0, center));
  }
}

TEST_CASE("onnx::non_max_suppression: NaN scores rank last, non-finite boxes never suppress",
          "[onnx_nms]") {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  nms_input<float> in;
  in.batches = 1;
  in.n = 5;
  in.classes = 1;
  // box 1 = box 0 with a NaN corner, box 2 = box 0 with an infinite one, box 3 = box 0
  in.boxes = {0, 0, 1, 1, 0, 0, nan, 1, 0, -inf, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1};
  in.scores = {0.9f, 0.8f, 0.7f, 0.6f, nan};
  using rows = std::vector<triple>;
  CHECK(to_triples(cvk::onnx::non_max_suppression(in.boxes_view(), in.scores_view(), 9, 0.5)) ==
        rows{{0, 0, 0}, {0, 0, 1}, {0, 0, 2}});
  CHECK(reference_onnx(in, 9, 0.5, std::nullopt, 0) == rows{{0, 0, 0}, {0, 0, 1}, {0, 0, 2}});
  // NaN score last: box 4 (a copy of box 0) comes after everything and is suppressed; with a
  // different box it is selected last
  in.boxes[16] = 5;
  in.boxes[18] = 6;
  CHECK(to_triples(cvk::onnx::non_max_suppression(in.boxes_view(), in.scores_view(), 9, 0.5)) ==
        rows{{0, 0, 0}, {0, 0, 1}, {0, 0, 2}, {0, 0, 4}});
  CHECK(to_triples(cvk::onnx::non_max_suppression(in.boxes_view(), in.scores_view(), 9, 0.5,
                                                  -1.0)) == rows{{0, 0, 0}, {0, 0, 1}, {0, 0, 2}});
}

TEST_CASE("onnx::non_max_suppression: strided inputs, containers, thread counts", "[onnx_nms]") {
  cvk::rng gen(79);
  const auto in = random_input<float>(gen, scene::clusters, 0);
  const auto expected = reference_onnx(in, 1000, 0.45, 0.2, 0);
  REQUIRE(!expected.empty());
  // boxes stored transposed ([4][N][B]) and scores stored [N][C][B] walked with negative strides
  const auto b = in.batches;
  const auto n = in.n;
  const auto c = in.classes;
  std::vector<float> boxes_t(in.boxes.size());
  for (index_t i = 0; i < b; ++i) {
    for (index_t j = 0; j < n; ++j) {
      for (index_t k = 0; k < 4; ++k) {
        boxes_t[static_cast<std::size_t>((k * n + j) * b + i)] = in.box(i, j, k);
      }
    }
  }
  const auto boxes_view = cvk::view(boxes_t.data(), {b, n, index_t{4}}, {index_t{1}, b, n * b});
  std::vector<float> scores_r(in.scores.size());
  const auto last = static_cast<index_t>(scores_r.size()) - 1;
  for (index_t i = 0; i < b; ++i) {
    for (index_t k = 0; k < c; ++k) {
      for (index_t j = 0; j < n; ++j) {
        scores_r[static_cast<std::size_t>(last - ((j * c + k) * b + i))] = in.score(i, k, j);
      }
    }
  }
  const auto scores_view =
      cvk::view(scores_r.data() + last, {b, c, n}, {index_t{-1}, -b, -(c * b)});
  CHECK(to_triples(cvk::onnx::non_max_suppression(boxes_view, scores_view, 1000, 0.45, 0.2)) ==
        expected);
  // cvk::tensor inputs and every thread count
  cvk::tensor<float, 3> boxes_tensor(b, n, index_t{4});
  std::copy(in.boxes.begin(), in.boxes.end(), boxes_tensor.begin());
  cvk::tensor<float, 3> scores_tensor(b, c, n);
  std::copy(in.scores.begin(), in.scores.end(), scores_tensor.begin());
  for (const int threads : {0, 1, 2, 3}) {
    INFO("threads " << threads);
    CHECK(to_triples(cvk::onnx::non_max_suppression(boxes_tensor, scores_tensor, 1000, 0.45, 0.2, 0,
                                                    threads)) == expected);
  }
  // a runtime-rank tensor of rank 3
  const cvk::dynamic_view<const float> dynamic_boxes(in.boxes.data(), 3, {b, n, 4}, {n * 4, 4, 1});
  CHECK(to_triples(cvk::onnx::non_max_suppression(dynamic_boxes, scores_tensor, 1000, 0.45, 0.2)) ==
        expected);
}

TEST_CASE("onnx::non_max_suppression: empty batches, classes and boxes", "[onnx_nms]") {
  const cvk::tensor<float, 3> no_boxes(index_t{2}, index_t{0}, index_t{4});
  const cvk::tensor<float, 3> no_scores(index_t{2}, index_t{3}, index_t{0});
  CHECK(cvk::onnx::non_max_suppression(no_boxes, no_scores, 5, 0.5).extent(0) == 0);
  const cvk::tensor<float, 3> boxes(index_t{1}, index_t{4}, index_t{4});
  const cvk::tensor<float, 3> no_classes(index_t{1}, index_t{0}, index_t{4});
  CHECK(cvk::onnx::non_max_suppression(boxes, no_classes, 5, 0.5).extent(0) == 0);
  const cvk::tensor<float, 3> no_batches(index_t{0}, index_t{3}, index_t{4});
  const cvk::tensor<float, 3> no_batch_scores(index_t{0}, index_t{2}, index_t{3});
  const auto none = cvk::onnx::non_max_suppression(no_batches, no_batch_scores, 5, 0.5);
  CHECK(none.extent(0) == 0);
  CHECK(none.extent(1) == 3);
}

TEST_CASE("onnx::non_max_suppression: errors name the function, the argument and the shapes",
          "[onnx_nms][errors]") {
  const cvk::tensor<float, 3> boxes(index_t{2}, index_t{6}, index_t{4});
  const cvk::tensor<float, 3> scores(index_t{2}, index_t{3}, index_t{6});
  const cvk::tensor<float, 3> boxes5(index_t{2}, index_t{6}, index_t{5});
  const cvk::tensor<float, 3> scores_b(index_t{1}, index_t{3}, index_t{6});
  const cvk::tensor<float, 3> scores_n(index_t{2}, index_t{3}, index_t{5});
  constexpr auto nms = [](const auto& b, const auto& s, double iou,
                          std::optional<double> score = std::nullopt, int center = 0) {
    return cvk::onnx::non_max_suppression(b, s, 10, iou, score, center);
  };
  CHECK_THROWS_MATCHES(nms(boxes5, scores, 0.5), cvk::shape_error,
                       Catch::Message("onnx::non_max_suppression: boxes must be B×N×4, got 2×6×5"));
  CHECK_THROWS_MATCHES(nms(boxes, scores_b, 0.5), cvk::shape_error,
                       Catch::Message("onnx::non_max_suppression: scores must be B×C×N with B = 2 "
                                      "and N = 6 (boxes is 2×6×4), got 1×3×6"));
  CHECK_THROWS_MATCHES(nms(boxes, scores_n, 0.5), cvk::shape_error,
                       Catch::Message("onnx::non_max_suppression: scores must be B×C×N with B = 2 "
                                      "and N = 6 (boxes is 2×6×4), got 2×3×5"));
  CHECK_THROWS_MATCHES(
      nms(boxes, scores, 1.5), cvk::invalid_argument,
      Catch::Message("onnx::non_max_suppression: iou_threshold must be in [0, 1], got 1.5"));
  CHECK_THROWS_MATCHES(
      nms(boxes, scores, -0.25), cvk::invalid_argument,
      Catch::Message("onnx::non_max_suppression: iou_threshold must be in [0, 1], got -0.25"));
  CHECK_THROWS_MATCHES(
      nms(boxes, scores, std::nan("")), cvk::invalid_argument,
      Catch::Message("onnx::non_max_suppression: iou_threshold must be in [0, 1], got nan"));
  CHECK_THROWS_MATCHES(
      nms(boxes, scores, 0.5, std::nan("")), cvk::invalid_argument,
      Catch::Message("onnx::non_max_suppression: score_threshold must be a number, got nan"));
  CHECK_THROWS_MATCHES(
      nms(boxes, scores, 0.5, std::nullopt, 2), cvk::invalid_argument,
      Catch::Message("onnx::non_max_suppression: center_point_box must be 0 or 1, got 2"));
  // errors come before max_output_boxes_per_class = 0 returns (ORT's order)
  CHECK_THROWS_AS(cvk::onnx::non_max_suppression(boxes, scores, 0, 2.0), cvk::invalid_argument);
  CHECK_THROWS_AS(cvk::onnx::non_max_suppression(boxes5, scores, 0, 0.5), cvk::shape_error);
  // runtime-rank tensors of the wrong rank
  std::vector<float> data(48, 0.0f);
  const cvk::dynamic_view<const float> rank2(data.data(), 2, {12, 4}, {4, 1});
  const cvk::dynamic_view<const float> rank4(data.data(), 4, {2, 6, 1, 4}, {24, 4, 4, 1});
  CHECK_THROWS_MATCHES(
      nms(rank2, scores, 0.5), cvk::shape_error,
      Catch::Message("onnx::non_max_suppression: boxes must have rank 3, got rank 2 (12×4)"));
  CHECK_THROWS_AS(nms(boxes, rank4, 0.5), cvk::shape_error);
}

TEST_CASE(
    "onnx::non_max_suppression: size products of broadcast views are checked before they are "
    "formed (issue 9 #3)",
    "[onnx][regression]") {
  const std::vector<float> box_data = {0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1};
  const float score = 0.9f;
  const auto boxes = cvk::view(box_data.data(), {index_t{4}, index_t{1}, index_t{4}},
                               {index_t{4}, index_t{4}, index_t{1}});
  // B·C = 4·2^62 overflows index_t: the old code wrapped it to 0 (undefined behaviour) and
  // returned nothing.
  const index_t huge = index_t{1} << 62;
  const auto scores = cvk::view(&score, {index_t{4}, huge, index_t{1}}, {0, 0, 0});
  CHECK_THROWS_MATCHES(
      cvk::onnx::non_max_suppression(boxes, scores, 1, 0.5), cvk::out_of_range,
      Catch::Message("onnx::non_max_suppression: scores (4×4611686018427387904×1): the size "
                     "4·4611686018427387904 overflows"));
  // B·C fits but the per-class results of 2^40 classes cannot be allocated: a cvk error naming
  // scores, not std::bad_alloc.
  const auto one_box = cvk::view(box_data.data(), {index_t{1}, index_t{1}, index_t{4}},
                                 {index_t{4}, index_t{4}, index_t{1}});
  const auto many_classes =
      cvk::view(&score, {index_t{1}, index_t{1} << 40, index_t{1}}, {0, 0, 0});
  CHECK_THROWS_AS(cvk::onnx::non_max_suppression(one_box, many_classes, 1, 0.5), cvk::out_of_range);
  CHECK_THROWS_WITH(cvk::onnx::non_max_suppression(one_box, many_classes, 1, 0.5),
                    Catch::Contains("onnx::non_max_suppression: scores (1×1099511627776×1) "
                                    "needs 1099511627776 elements") &&
                        Catch::Contains("more than can be allocated"));
  // the products of an ordinary input are unchanged
  const auto four_classes = cvk::view(&score, {index_t{4}, index_t{3}, index_t{1}}, {0, 0, 0});
  CHECK(cvk::onnx::non_max_suppression(boxes, four_classes, 1, 0.5).extent(0) == 12);
}
