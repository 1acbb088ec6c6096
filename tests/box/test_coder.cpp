// cvk — computer-vision kernels, header-only C++20.
// Tests of cvk/box/coder.hpp: box_coder encode/decode, clip_boxes_to_image and
// remove_small_boxes against torchvision 0.14 fixtures and the definitions; round trips,
// strided views and errors.
// SPDX-License-Identifier: MIT
#include <array>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstddef>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include <cvk/box/coder.hpp>
#include <cvk/core.hpp>

#include "support/error_inputs.hpp"
#include "support/fixtures.hpp"
#include "support/random_boxes.hpp"

namespace {

// Within `ulps` units in the last place of the expected value (log and exp come from different
// libraries in torch and here, so they may differ in the last bit).
template <class T>
bool close_ulps(T have, T want, int ulps) {
  if (have == want) return true;
  const T scale = std::max(std::abs(want), std::numeric_limits<T>::min());
  return std::abs(have - want) <= static_cast<T>(ulps) * std::numeric_limits<T>::epsilon() * scale;
}

}  // namespace

TEMPLATE_TEST_CASE("box_coder, clip and remove_small_boxes reproduce torchvision",
                   "[box][coder][fixtures]", float, double) {
  using T = TestType;
  const std::string dtype = std::is_same_v<T, float> ? "float32" : "float64";
  const cvk_test::fixture_file file(cvk_test::test_data_path("box_coder_torchvision.txt"));
  const auto proposals = file.table("proposals/" + dtype).template rows_of<T, 4>();
  const auto reference = file.table("reference/" + dtype).template rows_of<T, 4>();
  const auto deltas = file.table("deltas/" + dtype).template rows_of<T, 8>();
  const std::size_t n = proposals.size();
  for (const auto& [weights, name] : {std::pair{std::array<double, 4>{10, 10, 5, 5}, "10_10_5_5"},
                                      std::pair{std::array<double, 4>{1, 1, 1, 1}, "1_1_1_1"}}) {
    INFO("weights " << name);
    const cvk::box_coder coder{weights};
    const auto encoded = coder.encode(reference, proposals);
    const auto want_encoded =
        file.table("encode/" + std::string(name) + "/" + dtype).template values<T>();
    for (std::size_t i = 0; i < n; ++i) {
      for (std::size_t k = 0; k < 4; ++k) {
        INFO("encode row " << i << " column " << k);
        // dx, dy: the same operations as torchvision (bit-identical); dw, dh go through log.
        if (k < 2) {
          CHECK(encoded(i, k) == want_encoded[i * 4 + k]);
        } else {
          CHECK(close_ulps(encoded(i, k), want_encoded[i * 4 + k], 4));
        }
      }
    }
    const auto decoded = coder.decode(deltas, proposals);
    const auto want_decoded =
        file.table("decode/" + std::string(name) + "/" + dtype).template values<T>();
    REQUIRE(decoded.extent(1) == 8);
    for (std::size_t i = 0; i < n; ++i) {
      for (std::size_t k = 0; k < 8; ++k) {
        INFO("decode row " << i << " column " << k);
        CHECK(std::abs(decoded(i, k) - want_decoded[i * 8 + k]) <=
              4 * std::numeric_limits<T>::epsilon() * (1 + std::abs(want_decoded[i * 8 + k])) *
                  1000);
      }
    }
  }
  const auto clipped = cvk::clip_boxes_to_image(reference, 400, 300);
  const auto want_clip = file.table("clip/" + dtype).template values<T>();
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t k = 0; k < 4; ++k) CHECK(clipped(i, k) == want_clip[i * 4 + k]);
  }
  const auto keep = cvk::remove_small_boxes(reference, 40.0);
  const auto want_keep = file.table("remove_small/" + dtype).template values<cvk::index_t>();
  REQUIRE(static_cast<std::size_t>(keep.size()) == want_keep.size());
  for (std::size_t i = 0; i < want_keep.size(); ++i) CHECK(keep(i) == want_keep[i]);
}

TEMPLATE_TEST_CASE("box_coder: definitions, round trip, clip, strided views", "[box][coder]", float,
                   double) {
  using T = TestType;
  cvk::rng gen(99);
  const auto proposals = cvk_test::random_xyxy_boxes<T>(gen, 50, 0.0, 500.0, 100.0);
  std::vector<std::array<T, 4>> targets =
      cvk_test::random_xyxy_boxes<T>(gen, 50, 0.0, 500.0, 100.0);
  for (std::size_t i = 0; i < 50; ++i) {  // keep every box at least 1 wide for the logs
    for (std::size_t k = 0; k < 2; ++k) {
      targets[i][k + 2] = std::max(targets[i][k + 2], targets[i][k] + T(1));
    }
  }
  std::vector<std::array<T, 4>> props = proposals;
  for (auto& p : props) {
    p[2] = std::max(p[2], p[0] + T(1));
    p[3] = std::max(p[3], p[1] + T(1));
  }
  const cvk::box_coder coder{{10, 10, 5, 5}};
  // Strided views: the proposals in column-major storage.
  std::vector<T> columns(50 * 4);
  for (std::size_t i = 0; i < 50; ++i) {
    for (std::size_t k = 0; k < 4; ++k) columns[k * 50 + i] = props[i][k];
  }
  const auto props_view = cvk::view(columns.data(), {50, 4}, {1, 50});
  const auto deltas = coder.encode(targets, props_view);
  for (std::size_t i = 0; i < 50; ++i) {
    const long double pw = static_cast<long double>(props[i][2]) - props[i][0];
    const long double ph = static_cast<long double>(props[i][3]) - props[i][1];
    const long double gw = static_cast<long double>(targets[i][2]) - targets[i][0];
    const long double gh = static_cast<long double>(targets[i][3]) - targets[i][1];
    const long double dx = 10 * ((targets[i][0] + gw / 2) - (props[i][0] + pw / 2)) / pw;
    const long double dw = 5 * std::log(gw / pw);
    const double tol = std::is_same_v<T, float> ? 1e-3 : 1e-9;
    CHECK(std::abs(deltas(i, 0) - dx) <= tol);
    CHECK(std::abs(deltas(i, 2) - dw) <= tol);
    CHECK(std::abs(deltas(i, 3) - 5 * std::log(gh / ph)) <= tol);
  }
  const auto decoded = coder.decode(deltas, props);
  for (std::size_t i = 0; i < 50; ++i) {
    for (std::size_t k = 0; k < 4; ++k) {
      CHECK(decoded(i, k) ==
            Approx(targets[i][k]).epsilon(std::is_same_v<T, float> ? 1e-4 : 1e-10).margin(1e-3));
    }
  }
  // dw beyond the clip is clamped before exp.
  const std::vector<std::array<T, 4>> huge{{0, 0, T(100), T(100)}};
  const std::vector<std::array<T, 4>> unit{{0, 0, 1, 1}};
  const auto clamped = cvk::box_coder{}.decode(huge, unit);
  CHECK(clamped(0, 2) - clamped(0, 0) == Approx(1000.0 / 16.0).epsilon(1e-5));
  // clip in place through a mutable view, NaN kept.
  std::vector<std::array<T, 4>> boxes{{-5, 3, 50, 70},
                                      {std::numeric_limits<T>::quiet_NaN(), 1, 2, 3}};
  cvk::clip_boxes_to_image(boxes, 60, 40, boxes);
  CHECK(boxes[0] == std::array<T, 4>{0, 3, 40, 60});
  CHECK(std::isnan(boxes[1][0]));
  CHECK(cvk::remove_small_boxes(boxes, 1.0).size() == 1);
}

TEST_CASE("box_coder: errors", "[box][coder][errors]") {
  const std::vector<std::array<float, 4>> five(5);
  const std::vector<std::array<float, 4>> four(4);
  const std::vector<std::array<float, 6>> six(3);
  const cvk::box_coder coder;
  CHECK_THROWS_WITH(coder.encode(five, four),
                    "box_coder::encode: proposals must be 5×4 (as reference_boxes), got 4×4");
  CHECK_THROWS_WITH(coder.decode(six, four), "box_coder::decode: deltas must be N×(4·K), got 3×6");
  CHECK_THROWS_AS((cvk::box_coder{{0, 1, 1, 1}}.encode(five, five)), cvk::invalid_argument);
  CHECK_THROWS_WITH(cvk::clip_boxes_to_image(six, 10, 10),
                    "clip_boxes_to_image: boxes must be N×4, got 3×6");
  CHECK_THROWS_AS(cvk::clip_boxes_to_image(five, -1, 10), cvk::invalid_argument);
  CHECK_THROWS_WITH(cvk::remove_small_boxes(six, 1.0),
                    "remove_small_boxes: boxes must be N×4, got 3×6");
}

TEST_CASE(
    "box_coder rejects a NaN or infinite clip; remove_small_boxes a NaN min_size (issue 9 #8)",
    "[box][coder][regression]") {
  const std::vector<std::array<double, 4>> deltas = {{0, 0, 1000, 1000}};
  const std::vector<std::array<double, 4>> boxes = {{0, 0, 10, 10}};
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  // the old code clamped nothing and decoded exp(1000) = inf: boxes (-inf, -inf, inf, inf)
  const std::vector<std::pair<double, std::string>> cases = {
      {nan, "nan"}, {inf, "inf"}, {-inf, "-inf"}};
  for (const auto& [clip, text] : cases) {
    const cvk::box_coder coder{.clip = clip};
    CHECK_THROWS_MATCHES(
        coder.decode(deltas, boxes), cvk::invalid_argument,
        Catch::Message("box_coder::decode: clip must be a finite number, got " + text));
  }
  // beyond float's range for float input
  const std::vector<std::array<float, 4>> deltas_f = {{0, 0, 1, 1}};
  const std::vector<std::array<float, 4>> boxes_f = {{0, 0, 10, 10}};
  CHECK_THROWS_AS((cvk::box_coder{.clip = 1e300}.decode(deltas_f, boxes_f)), cvk::invalid_argument);
  // a finite clip still clamps: exp(log(1000/16)) · 10 = 625
  const auto decoded = cvk::box_coder{}.decode(deltas, boxes);
  CHECK(decoded(0, 2) - decoded(0, 0) == Approx(625.0));
  // remove_small_boxes with min_size NaN removed every box silently
  CHECK_THROWS_MATCHES(cvk::remove_small_boxes(boxes, nan), cvk::invalid_argument,
                       Catch::Message("remove_small_boxes: min_size must be a number, got nan"));
  CHECK(cvk::remove_small_boxes(boxes, 10.0).size() == 1);
  CHECK(cvk::remove_small_boxes(boxes, inf).size() == 0);
}

TEST_CASE("remove_small_boxes rejects a min_size beyond the box type's range, as clip (issue 9 #8)",
          "[box][coder][regression]") {
  // the old code cast min_size to float unchecked: 1e300 became inf (silently the same as an
  // infinite bound), and -1e300 became -inf, which keeps a box of width -inf that the exact
  // comparison -inf >= -1e300 removes
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<std::array<float, 4>> boxes = {{0, 0, 10, 10}, {0, 0, -inf, 10}};
  CHECK_THROWS_MATCHES(
      cvk::remove_small_boxes(boxes, 1e300), cvk::invalid_argument,
      Catch::Message(
          "remove_small_boxes: min_size must be representable in the box type, got 1e+300"));
  CHECK_THROWS_MATCHES(
      cvk::remove_small_boxes(boxes, -1e300), cvk::invalid_argument,
      Catch::Message(
          "remove_small_boxes: min_size must be representable in the box type, got -1e+300"));
  // the largest float is fine, and so are ±inf (documented bounds: keep only infinite sides /
  // everything that is not NaN)
  CHECK(cvk::remove_small_boxes(boxes, static_cast<double>(std::numeric_limits<float>::max()))
            .size() == 0);
  CHECK(cvk::remove_small_boxes(boxes, -static_cast<double>(std::numeric_limits<float>::infinity()))
            .size() == 2);
  CHECK(cvk::remove_small_boxes(boxes, 1.0).size() == 1);
  // double boxes take the same value: it is representable there
  const std::vector<std::array<double, 4>> boxes_d = {{0, 0, 10, 10}};
  CHECK(cvk::remove_small_boxes(boxes_d, 1e300).size() == 0);
  CHECK(cvk::remove_small_boxes(boxes_d, -1e300).size() == 1);
}

TEST_CASE("errors table: box_coder, clip_boxes_to_image, remove_small_boxes (docs/errors.md)",
          "[box][coder][errors]") {
  const std::vector<double> buffer(8, 1.0);
  const auto rank3 = cvk_test::rank3_view(buffer);
  const std::vector<std::array<double, 4>> boxes = {{0, 0, 10, 10}, {5, 5, 20, 30}};
  const cvk::box_coder coder;
  CHECK_THROWS_MATCHES(
      coder.encode(rank3, boxes), cvk::shape_error,
      Catch::Message("box_coder::encode: reference_boxes must have rank 2, got rank 3 (2×2×2)"));
  CHECK_THROWS_MATCHES(
      coder.decode(boxes, rank3), cvk::shape_error,
      Catch::Message("box_coder::decode: boxes must have rank 2, got rank 3 (2×2×2)"));
  CHECK_THROWS_AS(cvk::clip_boxes_to_image(rank3, 10, 10), cvk::shape_error);
  CHECK_THROWS_MATCHES(
      cvk::remove_small_boxes(rank3, 1.0), cvk::shape_error,
      Catch::Message("remove_small_boxes: boxes must have rank 2, got rank 3 (2×2×2)"));
  // mismatched lengths
  const std::vector<std::array<double, 4>> one = {{0, 0, 1, 1}};
  CHECK_THROWS_AS(coder.encode(boxes, one), cvk::shape_error);
  CHECK_THROWS_AS(coder.decode(one, boxes), cvk::shape_error);
  // weights: zero, negative, NaN or infinite
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (const double w : {0.0, -1.0, nan, std::numeric_limits<double>::infinity()}) {
    const cvk::box_coder bad{{1, 1, w, 1}};
    CHECK_THROWS_WITH(bad.decode(boxes, boxes),
                      Catch::StartsWith("box_coder: weights must be positive and finite"));
  }
  // clip_boxes_to_image: a NaN or negative size is rejected; an infinite one clamps nothing
  CHECK_THROWS_AS(cvk::clip_boxes_to_image(boxes, nan, 10), cvk::invalid_argument);
  CHECK_THROWS_AS(cvk::clip_boxes_to_image(boxes, 10, -0.5), cvk::invalid_argument);
  const auto unclipped =
      cvk::clip_boxes_to_image(boxes, std::numeric_limits<double>::infinity(), 25);
  CHECK(unclipped(1, 3) == 30.0);
  CHECK(unclipped(1, 2) == 20.0);
  // in place is allowed
  std::vector<std::array<double, 4>> in_place = {{-1, -1, 50, 50}};
  cvk::clip_boxes_to_image(in_place, 10, 20, in_place);
  CHECK(in_place[0] == std::array<double, 4>{0, 0, 20, 10});
  // NaN coordinates: encode/decode give NaN in that row only, clip keeps NaN, remove drops it
  const std::vector<std::array<double, 4>> with_nan = {{0, 0, 10, 10}, {0, 0, nan, 10}};
  const auto deltas = coder.encode(with_nan, boxes);
  CHECK_FALSE(std::isnan(deltas(0, 0)));
  CHECK(std::isnan(deltas(1, 0)));
  const auto decoded = coder.decode(boxes, with_nan);
  CHECK_FALSE(std::isnan(decoded(0, 2)));
  CHECK(std::isnan(decoded(1, 2)));
  CHECK(std::isnan(cvk::clip_boxes_to_image(with_nan, 5, 5)(1, 2)));
  CHECK(cvk::remove_small_boxes(with_nan, 1.0).size() == 1);
  // empty input: empty results
  const std::vector<std::array<double, 4>> none;
  CHECK(coder.encode(none, none).extent(0) == 0);
  CHECK(coder.decode(none, none).extent(0) == 0);
  CHECK(cvk::clip_boxes_to_image(none, 1, 1).extent(0) == 0);
  CHECK(cvk::remove_small_boxes(none, 1.0).size() == 0);
  // 2^40 broadcast boxes: the result cannot be allocated
  const std::array<double, 4> row{0, 0, 1, 1};
  const auto many = cvk_test::broadcast_rows(row.data(), cvk_test::huge_rows, 4);
  CHECK_THROWS_AS(coder.encode(many, many), cvk::out_of_range);
  CHECK_THROWS_AS(cvk::clip_boxes_to_image(many, 1, 1), cvk::out_of_range);
  CHECK_THROWS_MATCHES(cvk::remove_small_boxes(many, 0.5), cvk::out_of_range,
                       Catch::Message("remove_small_boxes: boxes (1099511627776×4) needs "
                                      "1099511627776 elements of 8 bytes, more than can be "
                                      "allocated"));
}
