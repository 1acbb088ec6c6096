// cvk — computer-vision kernels, header-only C++20.
// Tests of cvk/box/iou.hpp: the IoU family against torchvision 0.14 fixtures and against a plain
// long-double reference on random boxes (pairwise, aligned, single-box; 2-D and N-D; strided
// inputs and outputs; any thread count), the degenerate-box policy and the errors.
// SPDX-License-Identifier: MIT
#include <array>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstddef>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include <cvk/box/iou.hpp>
#include <cvk/core.hpp>

#include "support/error_inputs.hpp"
#include "support/fixtures.hpp"
#include "support/iou_reference.hpp"
#include "support/random_boxes.hpp"

namespace {

using cvk_test::reference::iou_metric;
using cvk_test::reference::iou_pair;

constexpr std::array<iou_metric, 5> all_metrics = {
    iou_metric::iou, iou_metric::ioa, iou_metric::giou, iou_metric::diou, iou_metric::ciou};

const char* metric_name(iou_metric m) {
  switch (m) {
    case iou_metric::iou:
      return "box_iou";
    case iou_metric::ioa:
      return "box_ioa";
    case iou_metric::giou:
      return "generalized_box_iou";
    case iou_metric::diou:
      return "distance_box_iou";
    case iou_metric::ciou:
      return "complete_box_iou";
  }
  return "";
}

// Dispatch to the cvk entry points by metric (pairwise, into out).
template <std::size_t Dim = 2, class A, class B, class Out>
void pairwise(iou_metric m, const A& a, const B& b, Out&& out, const cvk::iou_options& o = {}) {
  switch (m) {
    case iou_metric::iou:
      cvk::box_iou<Dim>(a, b, std::forward<Out>(out), o);
      break;
    case iou_metric::ioa:
      cvk::box_ioa<Dim>(a, b, std::forward<Out>(out), o);
      break;
    case iou_metric::giou:
      cvk::generalized_box_iou<Dim>(a, b, std::forward<Out>(out), o);
      break;
    case iou_metric::diou:
      cvk::distance_box_iou(a, b, std::forward<Out>(out), o);
      break;
    case iou_metric::ciou:
      cvk::complete_box_iou(a, b, std::forward<Out>(out), o);
      break;
  }
}

template <class A, class B>
auto aligned(iou_metric m, const A& a, const B& b) {
  switch (m) {
    case iou_metric::iou:
      return cvk::box_iou_aligned(a, b);
    case iou_metric::ioa:
      return cvk::box_ioa_aligned(a, b);
    case iou_metric::giou:
      return cvk::generalized_box_iou_aligned(a, b);
    case iou_metric::diou:
      return cvk::distance_box_iou_aligned(a, b);
    case iou_metric::ciou:
      break;
  }
  return cvk::complete_box_iou_aligned(a, b);
}

template <class A, class B>
auto single(iou_metric m, const A& a, const B& b) {
  switch (m) {
    case iou_metric::iou:
      return cvk::box_iou(a, b);
    case iou_metric::ioa:
      return cvk::box_ioa(a, b);
    case iou_metric::giou:
      return cvk::generalized_box_iou(a, b);
    case iou_metric::diou:
      return cvk::distance_box_iou(a, b);
    case iou_metric::ciou:
      break;
  }
  return cvk::complete_box_iou(a, b);
}

template <class T>
double tolerance() {
  return std::is_same_v<T, float> ? 2e-5 : 1e-12;
}

template <class T>
bool same_bits_or_both_nan(T a, T b) {
  return (std::isnan(a) && std::isnan(b)) || a == b;
}

}  // namespace

TEMPLATE_TEST_CASE("IoU family reproduces torchvision 0.14", "[box][iou][fixtures]", float,
                   double) {
  using T = TestType;
  const std::string dtype = std::is_same_v<T, float> ? "float32" : "float64";
  const cvk_test::fixture_file file(cvk_test::test_data_path("box_iou_torchvision.txt"));
  const auto a = file.table("boxes1/" + dtype).template rows_of<T, 4>();
  const auto b = file.table("boxes2/" + dtype).template rows_of<T, 4>();
  for (const iou_metric m :
       {iou_metric::iou, iou_metric::giou, iou_metric::diou, iou_metric::ciou}) {
    const auto expected =
        file.table(std::string(metric_name(m)) + "/" + dtype).template values<T>();
    cvk::tensor<T, 2> got(static_cast<cvk::index_t>(a.size()), static_cast<cvk::index_t>(b.size()));
    pairwise(m, a, b, got);
    std::size_t exact = 0, compared = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
      for (std::size_t j = 0; j < b.size(); ++j) {
        const T want = expected[i * b.size() + j];
        const T have = got(i, j);
        INFO(metric_name(m) << " pair (" << i << ", " << j << ") torchvision " << want << " cvk "
                            << have);
        if (std::isnan(want)) {
          // torchvision divides 0 by 0 for pairs with no union or no enclosing area; cvk's
          // documented policy gives the value of the reference instead.
          CHECK(std::abs(static_cast<long double>(have) - iou_pair(m, a[i], b[j], 2)) <=
                tolerance<T>());
          continue;
        }
        ++compared;
        if (m == iou_metric::ciou) {
          // torch's atan (SLEEF) and the C library's atan differ in the last bit.
          CHECK(std::abs(have - want) <= (std::is_same_v<T, float> ? T(5e-7) : T(1e-15)));
        } else {
          // Same operations in the same order: bit-identical.
          CHECK(have == want);
        }
        exact += have == want ? 1 : 0;
      }
    }
    CHECK(compared > a.size() * b.size() * 9 / 10);
    if (m != iou_metric::ciou) CHECK(exact == compared);
  }
}

TEMPLATE_TEST_CASE("IoU family equals the plain reference on random boxes", "[box][iou]", float,
                   double) {
  using T = TestType;
  cvk::rng gen(7, 1);
  const auto a = cvk_test::random_xyxy_boxes<T>(gen, 37, -100.0, 300.0, 150.0);
  const auto b = cvk_test::random_xyxy_boxes<T>(gen, 53, -100.0, 300.0, 150.0);
  for (const iou_metric m : all_metrics) {
    INFO(metric_name(m));
    cvk::tensor<T, 2> got(37, 53);
    pairwise(m, a, b, got);
    for (std::size_t i = 0; i < a.size(); ++i) {
      for (std::size_t j = 0; j < b.size(); ++j) {
        REQUIRE(std::abs(static_cast<long double>(got(i, j)) - iou_pair(m, a[i], b[j], 2)) <=
                tolerance<T>());
      }
    }
    // Aligned and single-box forms give exactly the pairwise values.
    std::vector<std::array<T, 4>> diagonal(b.begin(), b.begin() + 37);
    const auto al = aligned(m, a, diagonal);
    REQUIRE(al.size() == 37);
    for (std::size_t i = 0; i < a.size(); ++i) {
      cvk::tensor<T, 2> one(1, 1);
      pairwise(m, std::vector<std::array<T, 4>>{a[i]}, std::vector<std::array<T, 4>>{diagonal[i]},
               one);
      CHECK(same_bits_or_both_nan(al(i), one(0, 0)));
      CHECK(same_bits_or_both_nan(single(m, a[i], diagonal[i]), one(0, 0)));
    }
  }
}

TEMPLATE_TEST_CASE("IoU family: strided inputs and outputs, any thread count", "[box][iou]", float,
                   double) {
  using T = TestType;
  cvk::rng gen(11);
  const auto a = cvk_test::random_xyxy_boxes<T>(gen, 70);
  const auto b = cvk_test::random_xyxy_boxes<T>(gen, 1100);  // more than one column tile
  for (const iou_metric m : all_metrics) {
    INFO(metric_name(m));
    cvk::tensor<T, 2> expected(70, 1100);
    pairwise(m, a, b, expected, {.threads = 1});

    // Row stride 7 for A; column-major storage for B; negative row stride for both.
    std::vector<T> a_rows(70 * 7, T(-1));
    std::vector<T> b_cols(1100 * 4);
    for (std::size_t i = 0; i < 70; ++i) {
      for (std::size_t k = 0; k < 4; ++k) a_rows[i * 7 + k] = a[i][k];
    }
    for (std::size_t j = 0; j < 1100; ++j) {
      for (std::size_t k = 0; k < 4; ++k) b_cols[k * 1100 + j] = b[j][k];
    }
    const auto av = cvk::view(a_rows.data(), {70, 4}, {7, 1});
    const auto bv = cvk::view(b_cols.data(), {1100, 4}, {1, 1100});
    // Output: column-major (stride 1 along rows) inside a bigger buffer.
    std::vector<T> out_buffer(70 * 1100 + 5, T(42));
    const auto out = cvk::view(out_buffer.data() + 5, {70, 1100}, {1, 70});
    pairwise(m, av, bv, out, {.threads = 2});
    for (cvk::index_t i = 0; i < 70; ++i) {
      for (cvk::index_t j = 0; j < 1100; ++j)
        REQUIRE(same_bits_or_both_nan(out(i, j), expected(i, j)));
    }
    CHECK(out_buffer[0] == T(42));

    const auto a_rev = cvk::view(a.back().data(), {70, 4}, {-4, 1});
    cvk::tensor<T, 2> reversed(70, 1100);
    pairwise(m, a_rev, b, reversed, {.threads = 2});
    for (cvk::index_t i = 0; i < 70; ++i) {
      for (cvk::index_t j = 0; j < 1100; ++j)
        REQUIRE(same_bits_or_both_nan(reversed(i, j), expected(69 - i, j)));
    }
  }
}

TEST_CASE("IoU family: integer boxes are computed in double", "[box][iou]") {
  const std::vector<std::array<int, 4>> a{{0, 0, 10, 10}, {5, 5, 15, 15}};
  const int b[1][4] = {{0, 0, 10, 20}};
  const auto r = cvk::box_iou(a, b);
  static_assert(std::is_same_v<decltype(r), const cvk::tensor<double, 2>>);
  CHECK(r(0, 0) == 0.5);
  CHECK(r(1, 0) == Approx(50.0 / 250.0));
}

TEMPLATE_TEST_CASE("IoU family: box formats", "[box][iou]", float, double) {
  using T = TestType;
  cvk::rng gen(3);
  const auto a = cvk_test::random_integer_valued_boxes<T>(gen, 20, cvk::box_format::xyxy);
  const auto b = cvk_test::random_integer_valued_boxes<T>(gen, 30, cvk::box_format::xyxy);
  const auto expected = cvk::generalized_box_iou(a, b);
  for (const auto format :
       {cvk::box_format::xywh, cvk::box_format::cxcywh, cvk::box_format::yxyx}) {
    const auto ac = cvk::box_convert(a, cvk::box_format::xyxy, format);
    const auto bc = cvk::box_convert(b, cvk::box_format::xyxy, format);
    const auto got = cvk::generalized_box_iou(ac, bc, {.format = format});
    CHECK(got == expected);
  }
}

TEMPLATE_TEST_CASE("IoU family: N-dimensional boxes", "[box][iou][nd]", float, double) {
  using T = TestType;
  cvk::rng gen(5);
  const auto make3 = [&](std::size_t n) {
    std::vector<std::array<T, 6>> boxes(n);
    for (auto& box : boxes) {
      for (std::size_t d = 0; d < 3; ++d) {
        box[d] = static_cast<T>(gen.uniform(0.0, 100.0));
        box[3 + d] = box[d] + static_cast<T>(gen.uniform(1.0, 60.0));
      }
    }
    return boxes;
  };
  const auto a = make3(23);
  const auto b = make3(31);
  for (const iou_metric m : {iou_metric::iou, iou_metric::ioa, iou_metric::giou}) {
    INFO(metric_name(m));
    cvk::tensor<T, 2> got(23, 31);
    pairwise<3>(m, a, b, got);
    for (std::size_t i = 0; i < a.size(); ++i) {
      for (std::size_t j = 0; j < b.size(); ++j) {
        REQUIRE(std::abs(static_cast<long double>(got(i, j)) - iou_pair(m, a[i], b[j], 3)) <=
                tolerance<T>());
      }
    }
  }
  // A 3-D box that is flat in z reduces to nothing; equal z extents reduce to the 2-D IoU.
  const std::array<T, 6> p{0, 0, 0, 2, 2, 1};
  const std::array<T, 6> q{1, 1, 0, 3, 3, 1};
  CHECK(cvk::box_iou<3>(p, q) == Approx(1.0 / 7.0));
  CHECK(cvk::box_iou(std::array<T, 4>{0, 0, 2, 2}, std::array<T, 4>{1, 1, 3, 3}) ==
        Approx(1.0 / 7.0));
  // 1-D intervals.
  CHECK(cvk::box_iou<1>(std::array<T, 2>{0, 4}, std::array<T, 2>{2, 6}) == Approx(2.0 / 6.0));
  CHECK(cvk::generalized_box_iou<1>(std::array<T, 2>{0, 1}, std::array<T, 2>{3, 4}) ==
        Approx(-0.5));
}

TEMPLATE_TEST_CASE("IoU family: degenerate boxes follow the documented policy", "[box][iou]", float,
                   double) {
  using T = TestType;
  const T nan = std::numeric_limits<T>::quiet_NaN();
  const std::array<T, 4> point{1, 1, 1, 1};
  const std::array<T, 4> line{0, 0, 0, 5};
  const std::array<T, 4> unit{0, 0, 1, 1};
  // Zero union → 0 (torchvision: 0/0 = NaN).
  CHECK(cvk::box_iou(point, point) == T(0));
  CHECK(cvk::box_iou(line, line) == T(0));
  // Zero enclosing area → GIoU = IoU.
  CHECK(cvk::generalized_box_iou(point, point) == T(0));
  // Zero-area box against a real one: IoU 0, GIoU negative and finite.
  CHECK(cvk::box_iou(point, unit) == T(0));
  CHECK(std::isfinite(cvk::generalized_box_iou(point, unit)));
  // IoA of a zero-area first box is 0.
  CHECK(cvk::box_ioa(point, unit) == T(0));
  // CIoU of zero-area boxes stays finite (aspect angle of 0/0 taken as 0).
  CHECK(std::isfinite(cvk::complete_box_iou(point, point)));
  // NaN coordinates give NaN for every metric.
  const std::array<T, 4> bad{0, 0, nan, 1};
  CHECK(std::isnan(cvk::box_iou(bad, unit)));
  CHECK(std::isnan(cvk::box_iou(unit, bad)));
  CHECK(std::isnan(cvk::generalized_box_iou(bad, unit)));
  CHECK(std::isnan(cvk::distance_box_iou(bad, unit)));
  // Identical boxes: 1 for every metric; touching boxes: IoU 0.
  CHECK(cvk::complete_box_iou(unit, unit) == T(1));
  CHECK(cvk::box_iou(unit, std::array<T, 4>{1, 0, 2, 1}) == T(0));
  // Empty inputs give empty results.
  const std::vector<std::array<T, 4>> none;
  const std::vector<std::array<T, 4>> some{unit, unit};
  CHECK(cvk::box_iou(none, some).extent(0) == 0);
  CHECK(cvk::box_iou(some, none).extent(1) == 0);
  CHECK(cvk::box_iou_aligned(none, none).size() == 0);
}

TEST_CASE("IoU family: errors name the function, the argument and the shapes",
          "[box][iou][errors]") {
  const std::vector<std::array<float, 4>> a(3);
  const std::vector<std::array<float, 5>> five(3);
  const std::vector<std::array<float, 4>> b(7);
  CHECK_THROWS_WITH(cvk::box_iou(five, a), "box_iou: boxes1 must be N×4, got 3×5");
  CHECK_THROWS_WITH(cvk::generalized_box_iou(a, five),
                    "generalized_box_iou: boxes2 must be N×4, got 3×5");
  CHECK_THROWS_AS(cvk::box_iou<3>(a, a), cvk::shape_error);
  CHECK_THROWS_WITH(cvk::box_iou<3>(a, a), "box_iou: boxes1 must be N×6, got 3×4");
  CHECK_THROWS_WITH(
      cvk::box_iou_aligned(a, b),
      "box_iou_aligned: boxes1 and boxes2 must have the same number of boxes, got 3×4 and 7×4");
  cvk::tensor<float, 2> wrong(3, 6);
  CHECK_THROWS_WITH(cvk::complete_box_iou(a, b, wrong),
                    "complete_box_iou: out must be 3×7, got 3×6");
  std::vector<float> short_out(2);
  CHECK_THROWS_WITH(cvk::box_ioa_aligned(a, a, short_out), "box_ioa_aligned: out must be 3, got 2");
}

TEMPLATE_TEST_CASE("IoU family: every row width and tile boundary gives the single-pair values",
                   "[box][iou]", float, double) {
  // The kernel works in fixed-width blocks and recomputes the last partial one; widths around
  // the block (16) and the tile (1024) must all equal the single-box form bit for bit.
  using T = TestType;
  cvk::rng gen(11, 3);
  const auto a = cvk_test::random_xyxy_boxes<T>(gen, 3, -50.0, 200.0, 120.0);
  for (const std::size_t m : {std::size_t{1}, std::size_t{15}, std::size_t{16}, std::size_t{17},
                              std::size_t{31}, std::size_t{33}, std::size_t{1023},
                              std::size_t{1024}, std::size_t{1025}, std::size_t{2061}}) {
    const auto b = cvk_test::random_xyxy_boxes<T>(gen, m, -50.0, 200.0, 120.0);
    for (const iou_metric metric : all_metrics) {
      INFO(metric_name(metric) << " M=" << m);
      cvk::tensor<T, 2> got(3, static_cast<cvk::index_t>(m));
      pairwise(metric, a, b, got);
      for (std::size_t i = 0; i < a.size(); ++i) {
        for (std::size_t j = 0; j < m; ++j) {
          REQUIRE(
              same_bits_or_both_nan(got(static_cast<cvk::index_t>(i), static_cast<cvk::index_t>(j)),
                                    single(metric, a[i], b[j])));
        }
      }
    }
  }
}

TEST_CASE("distance_box_iou and complete_box_iou reject a NaN or negative eps (issue 9 #8)",
          "[iou][regression]") {
  const std::vector<std::array<double, 4>> a = {{0, 0, 1, 1}};
  const std::vector<std::array<double, 4>> b = {{0.5, 0, 1.5, 1}};
  const std::array<double, 4> box{0, 0, 1, 1};
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const std::vector<std::pair<double, std::string>> cases = {{nan, "nan"}, {-1e-7, "-1e-07"}};
  for (const auto& [eps, got] : cases) {
    const cvk::iou_options o{.eps = eps};
    CHECK_THROWS_MATCHES(cvk::distance_box_iou(a, b, o), cvk::invalid_argument,
                         Catch::Message("distance_box_iou: eps must be a number >= 0, got " + got));
    CHECK_THROWS_MATCHES(cvk::complete_box_iou(a, b, o), cvk::invalid_argument,
                         Catch::Message("complete_box_iou: eps must be a number >= 0, got " + got));
    CHECK_THROWS_MATCHES(
        cvk::distance_box_iou_aligned(a, b, o), cvk::invalid_argument,
        Catch::Message("distance_box_iou_aligned: eps must be a number >= 0, got " + got));
    CHECK_THROWS_AS(cvk::complete_box_iou(box, box, o), cvk::invalid_argument);
    CHECK_NOTHROW(cvk::box_iou(a, b, o));  // eps is a DIoU / CIoU parameter only
  }
  CHECK(cvk::distance_box_iou(a, b, {.eps = 0.0})(0, 0) == Approx(1.0 / 3.0 - 0.25 / 3.25));
}

TEST_CASE(
    "distance_box_iou and complete_box_iou with eps = 0 give numbers on degenerate pairs "
    "(fuzz finding)",
    "[iou][regression]") {
  // eps = 0 is allowed; two equal points have an enclosing box of diagonal 0 (DIoU: 0/0 in
  // torchvision) and two identical boxes make CIoU's α = v / (1 - IoU + v) = 0/0
  for (const double eps : {0.0, -0.0}) {
    const cvk::iou_options o{.eps = eps};
    const std::array<float, 4> point{0, 0, 0, 0};
    const std::array<float, 4> other_point{2, 3, 2, 3};
    const std::array<float, 4> box{0, 0, 1, 1};
    CHECK(cvk::distance_box_iou(point, point, o) == 0.0f);
    CHECK(cvk::complete_box_iou(point, point, o) == 0.0f);
    CHECK(cvk::distance_box_iou(box, box, o) == 1.0f);
    CHECK(cvk::complete_box_iou(box, box, o) == 1.0f);
    // a distinct point still has a diagonal: the penalty is the full ρ²/c² = 1
    CHECK(cvk::distance_box_iou(point, other_point, o) == -1.0f);
    const std::vector<std::array<double, 4>> pts = {{0, 0, 0, 0}, {0, 0, 1, 1}};
    const auto d = cvk::distance_box_iou(pts, pts, o);
    const auto c = cvk::complete_box_iou_aligned(pts, pts, o);
    CHECK(d(0, 0) == 0.0);
    CHECK(d(1, 1) == 1.0);
    CHECK(c(0) == 0.0);
    CHECK(c(1) == 1.0);
  }
}

TEST_CASE("the IoU family rejects a box_format outside the enum (issue 9 #8)",
          "[iou][regression]") {
  const std::vector<std::array<float, 4>> a = {{0, 0, 1, 1}};
  const cvk::iou_options o{.format = static_cast<cvk::box_format>(7)};
  CHECK_THROWS_MATCHES(
      cvk::box_iou(a, a, o), cvk::invalid_argument,
      Catch::Message(
          "box_iou: options.format must be xyxy, xywh, cxcywh or yxyx, got box_format(7)"));
  CHECK_THROWS_AS(cvk::generalized_box_iou_aligned(a, a, o), cvk::invalid_argument);
  CHECK_THROWS_AS(cvk::box_iou(a[0], a[0], o), cvk::invalid_argument);
}

TEST_CASE("box_iou: an N×M result that cannot be allocated is a cvk error (issue 9 #8)",
          "[iou][regression]") {
  // 2^20 × 2^20 broadcast boxes (one row, stride 0): the 2^40-entry result needs 4 TiB. The
  // old code ended in std::bad_alloc.
  const std::array<float, 4> row{0, 0, 1, 1};
  const cvk::index_t n = cvk::index_t{1} << 20;
  const auto many = cvk::view(row.data(), {n, cvk::index_t{4}}, {cvk::index_t{0}, cvk::index_t{1}});
  CHECK_THROWS_MATCHES(cvk::box_iou(many, many), cvk::out_of_range,
                       Catch::Message("box_iou: the N×M result of boxes1 × boxes2 (1048576×4 and "
                                      "1048576×4) needs 1099511627776 elements of 4 bytes, more "
                                      "than can be allocated"));
}

TEST_CASE("errors table: the IoU family, every form (docs/errors.md)", "[box][iou][errors]") {
  const std::vector<float> buffer(8, 1.0F);
  const auto rank3 = cvk_test::rank3_view(buffer);
  const std::vector<std::array<float, 4>> a = {{0, 0, 1, 1}, {0, 0, 2, 2}};
  CHECK_THROWS_MATCHES(cvk::box_iou(rank3, a), cvk::shape_error,
                       Catch::Message("box_iou: boxes1 must have rank 2, got rank 3 (2×2×2)"));
  CHECK_THROWS_MATCHES(
      cvk::generalized_box_iou_aligned(a, rank3), cvk::shape_error,
      Catch::Message("generalized_box_iou_aligned: boxes2 must have rank 2, got rank 3 (2×2×2)"));
  CHECK_THROWS_MATCHES(cvk::box_ioa(a, cvk::view(buffer.data(), {-3, 4})), cvk::shape_error,
                       Catch::Message("box_ioa: boxes2 has a negative extent, got -3×4"));
  CHECK_THROWS_AS(cvk::box_iou<3>(rank3, rank3), cvk::shape_error);
  // a single box of the wrong length
  CHECK_THROWS_MATCHES(cvk::box_iou(std::array<float, 3>{}, std::array<float, 4>{}),
                       cvk::shape_error, Catch::Message("box_iou: box1 must be 4, got 3"));
  // an aligned result for 2^40 broadcast pairs cannot be allocated
  const std::array<float, 4> row{0, 0, 1, 1};
  const auto many = cvk_test::broadcast_rows(row.data(), cvk_test::huge_rows, 4);
  CHECK_THROWS_AS(cvk::box_iou_aligned(many, many), cvk::out_of_range);
}

// Found by tests/fuzz/fuzz_iou.cpp: box_ioa gave 0, not NaN, when boxes1 has area <= 0 (the
// |A| <= 0 rule) and boxes2 a NaN coordinate; the NaN policy wins in every member and form.
TEST_CASE("box_ioa: a NaN coordinate gives NaN even against a zero-area box",
          "[box][iou][fuzz-finding]") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const std::vector<std::array<double, 4>> a = {{0, 0, 0, 0}, {3, 3, 1, 1}, {0, 0, 2, 2}};
  const std::vector<std::array<double, 4>> b = {{0, 0, 1, nan}, {nan, 0, 1, 1}, {0, 0, 1, 1}};
  const auto pairwise = cvk::box_ioa(a, b);
  const auto aligned = cvk::box_ioa_aligned(a, b);
  for (cvk::index_t i = 0; i < 2; ++i) {
    CHECK(std::isnan(aligned(i)));
    CHECK(std::isnan(cvk::box_ioa(a[static_cast<std::size_t>(i)], b[static_cast<std::size_t>(i)])));
    for (cvk::index_t j = 0; j < 2; ++j) CHECK(std::isnan(pairwise(i, j)));
    CHECK(std::isnan(pairwise(2, i)));
  }
  // without NaN the degenerate rule stands: |A| <= 0 gives 0
  CHECK(pairwise(0, 2) == 0.0);
  CHECK(pairwise(1, 2) == 0.0);
  CHECK(pairwise(2, 2) == 0.25);
}

// docs/boxes.md: an infinite (not NaN) coordinate goes through torchvision's arithmetic, as
// torchvision 0.14's box_iou / generalized_box_iou / distance_box_iou compute it: a finite
// intersection over an infinite union is 0; inf − inf and 0·inf are NaN (both corners at the same
// infinity, a zero side times an infinite one), and so is every GIoU/DIoU/CIoU penalty whose
// enclosing box is infinite (inf / inf).
TEST_CASE("the IoU family: infinite coordinates follow torchvision's arithmetic", "[box][iou]") {
  const double inf = std::numeric_limits<double>::infinity();
  const std::array<double, 4> unit{0, 0, 1, 1};
  // union = inf: IoU = 1 / inf = 0; IoA of the infinite box 0, of the unit box 1
  const std::array<double, 4> wide{0, 0, inf, 1};
  CHECK(cvk::box_iou(wide, unit) == 0.0);
  CHECK(cvk::box_ioa(wide, unit) == 0.0);
  CHECK(cvk::box_ioa(unit, wide) == 1.0);
  CHECK(cvk::box_iou(std::array<double, 4>{-inf, -inf, inf, inf}, unit) == 0.0);
  // enclosing area inf: the penalty (inf − inf) / inf is NaN
  CHECK(std::isnan(cvk::generalized_box_iou(wide, unit)));
  CHECK(std::isnan(cvk::distance_box_iou(wide, unit)));
  CHECK(std::isnan(cvk::complete_box_iou(wide, unit)));
  // inf − inf in a side, and 0 · inf in an area: NaN in every member
  const std::array<double, 4> both{inf, 0, inf, 1};
  const std::array<double, 4> flat{0, 0, inf, 0};
  for (const auto& box : {both, flat}) {
    CHECK(std::isnan(cvk::box_iou(box, unit)));
    CHECK(std::isnan(cvk::box_ioa(box, unit)));
    CHECK(std::isnan(cvk::generalized_box_iou(box, unit)));
  }
  // an inverted infinite box: area −inf, union ≤ 0 → IoU 0 (the degenerate rule; torchvision
  // −0), enclosing box finite: GIoU = 0 − (1 + inf) / 1 = −inf, DIoU −inf (centre at −inf)
  const std::array<double, 4> inverted{0, 0, -inf, 1};
  CHECK(cvk::box_iou(inverted, unit) == 0.0);
  CHECK(cvk::generalized_box_iou(inverted, unit) == -inf);
  CHECK(cvk::distance_box_iou(inverted, unit) == -inf);
  // every form agrees
  const std::vector<std::array<double, 4>> a = {wide, both, inverted};
  const std::vector<std::array<double, 4>> b(3, unit);
  const auto pairwise = cvk::box_iou(a, b);
  const auto aligned = cvk::box_iou_aligned(a, b);
  for (cvk::index_t i = 0; i < 3; ++i) {
    const double single = cvk::box_iou(a[static_cast<std::size_t>(i)], unit);
    CHECK((std::isnan(single) ? std::isnan(aligned(i)) && std::isnan(pairwise(i, i))
                              : aligned(i) == single && pairwise(i, i) == single));
  }
}
