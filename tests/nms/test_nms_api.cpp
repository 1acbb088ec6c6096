// cvk — computer-vision kernels, header-only C++20.
// Tests of the NMS area's one API style (issue 12, item 4): the write-into form of every NMS
// operator equals its value form (indices and scores copied, the count returned; a short buffer is
// a cvk::shape_error naming the sizes), one result type for indices with scores (soft_nms,
// matrix_nms, batched_matrix_nms) and one with boxes (cluster_nms, var_voting, em_merge), the
// options names shared across operators, and onnx::non_max_suppression's options form.
// SPDX-License-Identifier: MIT
#include <array>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include <catch2/catch.hpp>
#include <cvk/core.hpp>
#include <cvk/core/rng.hpp>
#include <cvk/nms.hpp>

namespace {

using Catch::Matchers::Contains;
using cvk::index_t;

struct scene {
  std::vector<std::array<double, 4>> boxes;
  std::vector<std::array<double, 5>> rotated;
  std::vector<double> scores;
  std::vector<int> classes;
};

/// Clustered boxes with distinct scores: every operator suppresses some and keeps some.
scene make_scene(std::size_t n) {
  cvk::rng gen(12);
  scene s;
  for (std::size_t i = 0; i < n; ++i) {
    const double cx = 20.0 * static_cast<double>(i % 5) + gen.uniform(0.0, 6.0);
    const double cy = 20.0 * static_cast<double>(i % 3) + gen.uniform(0.0, 6.0);
    const double w = gen.uniform(8.0, 14.0), h = gen.uniform(8.0, 14.0);
    s.boxes.push_back({cx, cy, cx + w, cy + h});
    s.rotated.push_back({cx + w / 2, cy + h / 2, w, h, gen.uniform(-30.0, 30.0)});
    s.scores.push_back(gen.uniform(0.05, 1.0));
    s.classes.push_back(static_cast<int>(i % 2));
  }
  return s;
}

std::vector<index_t> values(const cvk::tensor<index_t, 1>& t) {
  return {t.data(), t.data() + t.size()};
}

template <class F>
void check_indices(F&& write, const cvk::tensor<index_t, 1>& want, const char* fn) {
  INFO(fn);
  REQUIRE(want.size() > 0);
  std::vector<index_t> buffer(40, -7);
  const index_t k = write(buffer);
  CHECK(k == want.size());
  CHECK(std::vector<index_t>(buffer.begin(), buffer.begin() + k) == values(want));
  CHECK(buffer[static_cast<std::size_t>(k)] == -7);  // nothing written past the count
  std::vector<index_t> short_buffer(static_cast<std::size_t>(want.size() - 1));
  CHECK_THROWS_AS(write(short_buffer), cvk::shape_error);
  CHECK_THROWS_WITH(
      write(short_buffer),
      Contains(std::string(fn) + ": indices holds " + std::to_string(want.size() - 1) +
               " values, but " + std::to_string(want.size()) + " boxes were selected"));
}

template <class S, class F>
void check_scored(F&& write, const cvk::scored_indices<S>& want, const char* fn) {
  INFO(fn);
  REQUIRE(want.indices.size() > 0);
  std::vector<index_t> indices(40, -7);
  std::vector<S> scores(40, S(-7));
  const index_t k = write(indices, scores);
  CHECK(k == want.indices.size());
  CHECK(std::vector<index_t>(indices.begin(), indices.begin() + k) == values(want.indices));
  for (index_t i = 0; i < k; ++i) CHECK(scores[static_cast<std::size_t>(i)] == want.scores(i));
  std::vector<S> short_scores(static_cast<std::size_t>(k - 1));
  CHECK_THROWS_WITH(write(indices, short_scores), Contains(std::string(fn) + ": scores holds"));
}

}  // namespace

TEST_CASE("nms api: every NMS operator's write-into form equals its value form", "[nms][api]") {
  const scene s = make_scene(40);
  const auto& b = s.boxes;
  const auto& r = s.rotated;
  const auto& sc = s.scores;
  const auto& c = s.classes;
  check_indices([&](auto& out) { return cvk::nms(b, sc, 0.3, {}, out); }, cvk::nms(b, sc, 0.3),
                "nms");
  check_indices([&](auto& out) { return cvk::batched_nms(b, sc, c, 0.3, {}, out); },
                cvk::batched_nms(b, sc, c, 0.3), "batched_nms");
  check_indices([&](auto& out) { return cvk::fast_nms(b, sc, 0.3, {}, out); },
                cvk::fast_nms(b, sc, 0.3), "fast_nms");
  check_indices([&](auto& out) { return cvk::nms_rotated(r, sc, 0.3, {}, out); },
                cvk::nms_rotated(r, sc, 0.3), "nms_rotated");
  check_indices([&](auto& out) { return cvk::batched_nms_rotated(r, sc, c, 0.3, {}, out); },
                cvk::batched_nms_rotated(r, sc, c, 0.3), "batched_nms_rotated");
  check_scored([&](auto& i, auto& o) { return cvk::soft_nms(b, sc, 0.3, {}, i, o); },
               cvk::soft_nms(b, sc, 0.3), "soft_nms");
  const cvk::matrix_nms_options m{.post_threshold = 0.1, .top_k = 30, .max_output = 20};
  check_scored([&](auto& i, auto& o) { return cvk::matrix_nms(b, sc, m, i, o); },
               cvk::matrix_nms(b, sc, m), "matrix_nms");
  check_scored([&](auto& i, auto& o) { return cvk::batched_matrix_nms(b, sc, c, m, i, o); },
               cvk::batched_matrix_nms(b, sc, c, m), "batched_matrix_nms");
  const auto cl = cvk::cluster_nms(b, sc, 0.3);
  check_scored([&](auto& i, auto& o) { return cvk::cluster_nms(b, sc, 0.3, {}, i, o); },
               cvk::scored_indices<double>{cl.indices, cl.scores}, "cluster_nms");
  // A buffer of N always suffices, and the index type is checked at compile time (a buffer of
  // int does not compile: docs/nms.md).
  std::vector<index_t> all(b.size());
  CHECK(cvk::nms(b, sc, 1.0, {}, all) == static_cast<index_t>(b.size()));
}

TEST_CASE("nms api: one result type for indices with scores, one with boxes", "[nms][api]") {
  static_assert(std::is_same_v<cvk::soft_nms_result<float>, cvk::scored_indices<float>>);
  static_assert(std::is_same_v<cvk::cluster_nms_result<double>, cvk::scored_boxes<double>>);
  static_assert(std::is_same_v<cvk::em_merge_result<float>, cvk::scored_boxes<float>>);
  static_assert(
      std::is_same_v<cvk::var_voting_result<float, double>, cvk::scored_boxes<float, double>>);
  const scene s = make_scene(12);
  const cvk::scored_indices<double> soft = cvk::soft_nms(s.boxes, s.scores, 0.5);
  const cvk::scored_indices<double> matrix = cvk::matrix_nms(s.boxes, s.scores);
  const cvk::scored_boxes<double> cluster = cvk::cluster_nms(s.boxes, s.scores, 0.5);
  CHECK(soft.indices.size() == soft.scores.size());
  CHECK(matrix.indices.size() == matrix.scores.size());
  CHECK(cluster.boxes.extent(0) == cluster.indices.size());
}

TEST_CASE("nms api: matrix_nms_options use the names of the other operators", "[nms][api]") {
  // top_k (Paddle nms_top_k), max_output (keep_top_k), pixel_inclusive (!normalized).
  const std::vector<std::array<double, 4>> boxes{{0, 0, 9, 9}, {10, 0, 19, 9}, {0, 20, 9, 29}};
  const std::vector<double> scores{0.9, 0.8, 0.7};
  CHECK(cvk::matrix_nms(boxes, scores, {.top_k = 1}).indices.size() == 1);
  CHECK(cvk::matrix_nms(boxes, scores, {.max_output = 2}).indices.size() == 2);
  // Boxes that share the column x = 9 overlap only with the +1 convention.
  const std::vector<std::array<double, 4>> touching{{0, 0, 9, 9}, {9, 0, 18, 9}};
  const std::vector<double> two{0.9, 0.8};
  CHECK(cvk::matrix_nms(touching, two).scores(1) == 0.8);  // IoU 0: touching, no overlap
  CHECK(cvk::matrix_nms(touching, two, {.pixel_inclusive = true}).scores(1) < 0.8);
}

TEST_CASE("nms api: onnx::non_max_suppression takes its optional inputs as options",
          "[nms][api][onnx]") {
  const scene s = make_scene(30);
  cvk::tensor<float, 3> boxes(std::array<index_t, 3>{1, 30, 4});
  cvk::tensor<float, 3> scores(std::array<index_t, 3>{1, 2, 30});
  for (index_t i = 0; i < 30; ++i) {
    const auto& bx = s.boxes[static_cast<std::size_t>(i)];
    for (index_t k = 0; k < 4; ++k) {
      boxes(0, i, k) = static_cast<float>(bx[static_cast<std::size_t>((k + 1) % 4 == 0 ? 2 : k)]);
    }
    scores(0, 0, i) = static_cast<float>(s.scores[static_cast<std::size_t>(i)]);
    scores(0, 1, i) = static_cast<float>(1.0 - s.scores[static_cast<std::size_t>(i)]);
  }
  const auto positional = cvk::onnx::non_max_suppression(boxes, scores, 5, 0.4, 0.2, 0, 1);
  for (const int threads : {0, 1, 2, 3}) {
    const auto named = cvk::onnx::non_max_suppression(
        boxes, scores, 5, {.iou_threshold = 0.4, .score_threshold = 0.2, .threads = threads});
    REQUIRE(named.extent(0) == positional.extent(0));
    CHECK(std::vector<std::int64_t>(named.data(), named.data() + named.size()) ==
          std::vector<std::int64_t>(positional.data(), positional.data() + positional.size()));
  }
  CHECK_THROWS_AS(cvk::onnx::non_max_suppression(boxes, scores, 5, {.center_point_box = 2}),
                  cvk::invalid_argument);
}
