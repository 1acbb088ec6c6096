// cvk — computer-vision kernels, header-only C++20.
// Tests of cvk/box/rotated.hpp: rotated-box IoU and GIoU, quadrilateral IoU, against
// Boost.Geometry (polygon intersection, area, convex hull) on random and hard pairs.
// SPDX-License-Identifier: MIT
#include <cvk/box/rotated.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <numbers>
#include <string>
#include <type_traits>
#include <vector>

// By default Boost.Geometry 1.74 rescales coordinates to integers before an overlay, which
// limits its own precision to about 1e-6 in IoU here; without that it agrees with cvk to the
// rounding of a float result and to 1e-11 in double on every case below except exactly touching
// edges, where neither mode is reliable (touching pairs are checked against the exact answer).
#define BOOST_GEOMETRY_NO_ROBUSTNESS
// The rescale policy trips GCC's -Wmaybe-uninitialized once inlined at -O2 and above (a false
// positive inside Boost); Boost's math headers announce deprecated includes.
#define BOOST_ALLOW_DEPRECATED_HEADERS
#if defined(__GNUC__) && !defined(__clang__)
#  pragma GCC diagnostic push
#  pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <boost/geometry.hpp>
#if defined(__GNUC__) && !defined(__clang__)
#  pragma GCC diagnostic pop
#endif
#include <catch2/catch.hpp>

#include <cvk/box/iou.hpp>
#include <cvk/core/errors.hpp>
#include <cvk/core/rng.hpp>
#include <cvk/core/std_adaptors.hpp>
#include <cvk/core/tensor.hpp>

#include "support/error_inputs.hpp"

using cvk::index_t;

namespace {

template <class T>
using rbox = std::array<T, 5>;
template <class T>
using quad = std::array<T, 8>;

/// The required agreement with the oracle (the 1e-5), and what is measured: the rounding
/// of a float result, 1e-11 for double (pairs around 1e5 included).
constexpr double oracle_tolerance = 1e-5;
template <class T>
constexpr double precise_tolerance = std::is_same_v<T, float> ? 1e-7 : 1e-11;
constexpr long double pi_l = std::numbers::pi_v<long double>;

// ---------------------------------------------------------------------------------------------
// The oracle: Boost.Geometry on polygons built independently from the box parameters (long
// double trigonometry, no reduction of the angle), shifted by the pair's mean centre so that
// Boost sees small coordinates (areas do not change under translation).

namespace bg = boost::geometry;
using bg_point = bg::model::d2::point_xy<double>;
using bg_polygon = bg::model::polygon<bg_point>;
using bg_multi_polygon = bg::model::multi_polygon<bg_polygon>;
using bg_multi_point = bg::model::multi_point<bg_point>;

using corners_t = std::array<std::array<long double, 2>, 4>;

/// Corners of a rotated box: width axis (cos a, -sin a) counter-clockwise (detectron2),
/// (cos a, sin a) clockwise (mmcv, OpenCV).
template <class T>
corners_t oracle_corners(const rbox<T>& b, cvk::rotated_options options) {
  const long double a = static_cast<long double>(b[4]);
  const long double theta = options.unit == cvk::angle_unit::degrees ? a * pi_l / 180 : a;
  const long double s = options.direction == cvk::rotation_direction::counter_clockwise
                            ? -std::sin(theta)
                            : std::sin(theta);
  const long double c = std::cos(theta);
  const long double hw = static_cast<long double>(b[2]) / 2;
  const long double hh = static_cast<long double>(b[3]) / 2;
  const long double ux = c * hw, uy = s * hw, vx = -s * hh, vy = c * hh;
  const long double cx = static_cast<long double>(b[0]), cy = static_cast<long double>(b[1]);
  return {{{cx + ux + vx, cy + uy + vy},
           {cx - ux + vx, cy - uy + vy},
           {cx - ux - vx, cy - uy - vy},
           {cx + ux - vx, cy + uy - vy}}};
}

template <class T>
corners_t quad_corners(const quad<T>& q) {
  corners_t c{};
  for (std::size_t k = 0; k < 4; ++k) {
    c[k] = {static_cast<long double>(q[2 * k]), static_cast<long double>(q[2 * k + 1])};
  }
  return c;
}

std::array<long double, 2> mean_centre(const corners_t& a, const corners_t& b) {
  long double x = 0, y = 0;
  for (std::size_t k = 0; k < 4; ++k) {
    x += a[k][0] + b[k][0];
    y += a[k][1] + b[k][1];
  }
  return {x / 8, y / 8};
}

bg_polygon to_polygon(const corners_t& c, const std::array<long double, 2>& origin) {
  bg_polygon p;
  for (std::size_t k = 0; k <= 4; ++k) {
    const auto& v = c[k % 4];
    bg::append(p.outer(), bg_point(static_cast<double>(v[0] - origin[0]),
                                   static_cast<double>(v[1] - origin[1])));
  }
  bg::correct(p);  // Boost's default polygon is clockwise and closed
  return p;
}

struct oracle_result {
  double iou;
  double giou;
  double ioa;  // |A∩B| / |A|, 0 when either box is empty (mmcv's "iof")
};

/// IoU and GIoU of two convex quadrilaterals with the given areas (w·h, or the polygon area).
oracle_result oracle_convex(const corners_t& a, const corners_t& b, long double area_a,
                            long double area_b) {
  // detectron2's rule: a box of area below 1e-14 is empty (it still spans C for GIoU).
  if (area_a < 1e-14L) area_a = 0;
  if (area_b < 1e-14L) area_b = 0;
  const auto origin = mean_centre(a, b);
  const bg_polygon pa = to_polygon(a, origin);
  const bg_polygon pb = to_polygon(b, origin);
  long double inter = 0;
  if (area_a > 0 && area_b > 0) {
    bg_multi_polygon common;
    bg::intersection(pa, pb, common);
    inter = static_cast<long double>(bg::area(common));
  }
  const long double uni = area_a + area_b - inter;
  const long double iou = (area_a > 0 && area_b > 0) ? inter / uni : 0;
  bg_multi_point all;
  for (const auto& p : pa.outer()) bg::append(all, p);
  for (const auto& p : pb.outer()) bg::append(all, p);
  bg_polygon hull;
  bg::convex_hull(all, hull);
  const long double c = static_cast<long double>(bg::area(hull));
  const long double giou = c > 0 ? iou - std::max(c - uni, 0.0L) / c : iou;
  const long double ioa = (area_a > 0 && area_b > 0) ? inter / area_a : 0;
  return {static_cast<double>(iou), static_cast<double>(giou), static_cast<double>(ioa)};
}

template <class T>
oracle_result oracle_rotated(const rbox<T>& a, const rbox<T>& b, cvk::rotated_options options) {
  // A box with a side <= 0 is empty.
  const auto area = [](const rbox<T>& r) {
    return r[2] > 0 && r[3] > 0 ? static_cast<long double>(r[2]) * static_cast<long double>(r[3])
                                : 0.0L;
  };
  const long double area_a = area(a);
  const long double area_b = area(b);
  return oracle_convex(oracle_corners(a, options), oracle_corners(b, options), area_a, area_b);
}

template <class T>
oracle_result oracle_quad(const quad<T>& a, const quad<T>& b) {
  const auto area = [](const corners_t& c) {
    long double twice = 0;
    for (std::size_t k = 0; k < 4; ++k) {
      const auto& p = c[k];
      const auto& q = c[(k + 1) % 4];
      twice += p[0] * q[1] - q[0] * p[1];
    }
    return std::fabs(twice) / 2;
  };
  const auto ca = quad_corners(a);
  const auto cb = quad_corners(b);
  return oracle_convex(ca, cb, area(ca), area(cb));
}

// ---------------------------------------------------------------------------------------------
// Random inputs (cvk::rng: the same pairs everywhere).

template <class T>
T uniform(cvk::rng& gen, double lo, double hi) {
  return static_cast<T>(gen.uniform(lo, hi));
}

/// A general box: centre in [0, 100)², sides in [1, 60), angle in [-400, 400) degrees (or the
/// same range in radians / 57).
template <class T>
rbox<T> random_box(cvk::rng& gen, cvk::angle_unit unit) {
  const double turn = unit == cvk::angle_unit::degrees ? 400.0 : 7.0;
  return {uniform<T>(gen, 0, 100), uniform<T>(gen, 0, 100), uniform<T>(gen, 1, 60),
          uniform<T>(gen, 1, 60), uniform<T>(gen, -turn, turn)};
}

/// The hard cases, by number: each returns a pair (a, b).
enum class hard_case {
  general,
  near_parallel,
  nested,
  identical,
  tiny,
  far_away,
  touching,
  right_angles,
  count
};

const char* to_string(hard_case c) {
  switch (c) {
    case hard_case::general:
      return "general";
    case hard_case::near_parallel:
      return "near-parallel edges (angles 1e-6 degrees apart)";
    case hard_case::nested:
      return "nested";
    case hard_case::identical:
      return "identical";
    case hard_case::tiny:
      return "tiny boxes (sides ~1e-3)";
    case hard_case::far_away:
      return "coordinates around 1e5";
    case hard_case::touching:
      return "touching edges";
    case hard_case::right_angles:
      return "0/90/180/270/360 and negative angles";
    case hard_case::count:
      break;
  }
  return "?";
}

template <class T>
std::array<rbox<T>, 2> random_pair(cvk::rng& gen, hard_case kind, cvk::rotated_options options) {
  const cvk::angle_unit unit = options.unit;
  const double degree = unit == cvk::angle_unit::degrees ? 1.0 : std::numbers::pi / 180.0;
  rbox<T> a = random_box<T>(gen, unit);
  rbox<T> b = random_box<T>(gen, unit);
  switch (kind) {
    case hard_case::general:
      break;
    case hard_case::near_parallel: {
      // Same angle up to 1e-6 degrees (as far as T resolves it), shifted along both axes.
      b = a;
      b[0] = static_cast<T>(a[0] + gen.uniform(-0.5, 0.5) * a[2]);
      b[1] = static_cast<T>(a[1] + gen.uniform(-0.5, 0.5) * a[3]);
      b[2] = static_cast<T>(a[2] * gen.uniform(0.5, 1.5));
      b[4] = static_cast<T>(static_cast<double>(a[4]) + 1e-6 * degree);
      if (gen.bernoulli(0.5)) b[4] = a[4] + static_cast<T>(90 * degree);  // perpendicular-ish
      break;
    }
    case hard_case::nested: {
      b[0] = a[0];
      b[1] = a[1];
      b[2] = static_cast<T>(a[2] * gen.uniform(0.05, 0.3));
      b[3] = static_cast<T>(a[3] * gen.uniform(0.05, 0.3));
      break;
    }
    case hard_case::identical:
      b = a;
      break;
    case hard_case::tiny: {
      for (auto* box : {&a, &b}) {
        (*box)[2] = uniform<T>(gen, 1e-3, 3e-3);
        (*box)[3] = uniform<T>(gen, 1e-3, 3e-3);
      }
      a[0] = uniform<T>(gen, 0.25, 1);
      a[1] = uniform<T>(gen, 0.25, 1);
      b[0] = static_cast<T>(a[0] + gen.uniform(-2e-3, 2e-3));
      b[1] = static_cast<T>(a[1] + gen.uniform(-2e-3, 2e-3));
      break;
    }
    case hard_case::far_away: {
      a[0] = static_cast<T>(1e5 + gen.uniform(0.0, 50.0));
      a[1] = static_cast<T>(-1e5 + gen.uniform(0.0, 50.0));
      b[0] = static_cast<T>(1e5 + gen.uniform(0.0, 50.0));
      b[1] = static_cast<T>(-1e5 + gen.uniform(0.0, 50.0));
      break;
    }
    case hard_case::touching: {
      // b sits next to a along a's width axis, at distance (w_a + w_b) / 2: edges touch.
      b[4] = a[4];
      b[3] = a[3];
      const long double theta =
          static_cast<long double>(a[4]) * (unit == cvk::angle_unit::degrees ? pi_l / 180 : 1);
      const long double sine = options.direction == cvk::rotation_direction::counter_clockwise
                                   ? -std::sin(theta)
                                   : std::sin(theta);
      const long double step =
          (static_cast<long double>(a[2]) + static_cast<long double>(b[2])) / 2;
      b[0] = static_cast<T>(static_cast<long double>(a[0]) + step * std::cos(theta));
      b[1] = static_cast<T>(static_cast<long double>(a[1]) + step * sine);
      break;
    }
    case hard_case::right_angles: {
      constexpr std::array<double, 9> angles = {0, 90, 180, 270, 360, -90, -180, -270, -360};
      a[4] = static_cast<T>(angles[gen.below(angles.size())] * degree);
      b[4] = static_cast<T>(angles[gen.below(angles.size())] * degree);
      b[0] = static_cast<T>(a[0] + gen.uniform(-20.0, 20.0));
      b[1] = static_cast<T>(a[1] + gen.uniform(-20.0, 20.0));
      break;
    }
    case hard_case::count:
      break;
  }
  return {a, b};
}

const std::array<cvk::rotated_options, 4> all_conventions = {{
    {cvk::angle_unit::degrees, cvk::rotation_direction::counter_clockwise, 0},
    {cvk::angle_unit::degrees, cvk::rotation_direction::clockwise, 0},
    {cvk::angle_unit::radians, cvk::rotation_direction::counter_clockwise, 0},
    {cvk::angle_unit::radians, cvk::rotation_direction::clockwise, 0},
}};

std::string describe(cvk::rotated_options o) {
  return std::string(o.unit == cvk::angle_unit::degrees ? "degrees" : "radians") + ", " +
         (o.direction == cvk::rotation_direction::counter_clockwise ? "counter-clockwise"
                                                                    : "clockwise");
}

template <class T>
std::string describe(const rbox<T>& b) {
  std::string s = "(";
  for (std::size_t k = 0; k < 5; ++k) {
    s += (k ? ", " : "") + Catch::StringMaker<double>::convert(static_cast<double>(b[k]));
  }
  return s + ")";
}

/// A random convex quad: four points on an ellipse at sorted random angles (convex), an
/// arbitrary start vertex, either orientation.
template <class T>
quad<T> random_quad(cvk::rng& gen, double cx, double cy, double size) {
  std::array<double, 4> angles{};
  for (auto& a : angles) a = gen.uniform(0.0, 2 * std::numbers::pi);
  std::sort(angles.begin(), angles.end());
  const double rx = size * gen.uniform(0.3, 1.0);
  const double ry = size * gen.uniform(0.3, 1.0);
  const double tilt = gen.uniform(0.0, std::numbers::pi);
  const bool reverse = gen.bernoulli(0.5);
  const auto start = static_cast<std::size_t>(gen.below(4));
  quad<T> q{};
  for (std::size_t k = 0; k < 4; ++k) {
    const std::size_t src = (start + (reverse ? 4 - k : k)) % 4;
    const double px = rx * std::cos(angles[src]);
    const double py = ry * std::sin(angles[src]);
    q[2 * k] = static_cast<T>(cx + px * std::cos(tilt) - py * std::sin(tilt));
    q[2 * k + 1] = static_cast<T>(cy + px * std::sin(tilt) + py * std::cos(tilt));
  }
  return q;
}

/// The corners of a rotated box as a quad (x1, y1, ..., x4, y4) in double.
template <class T>
quad<double> box_as_quad(const rbox<T>& b, cvk::rotated_options options) {
  const auto c = oracle_corners(b, options);
  quad<double> q{};
  for (std::size_t k = 0; k < 4; ++k) {
    q[2 * k] = static_cast<double>(c[k][0]);
    q[2 * k + 1] = static_cast<double>(c[k][1]);
  }
  return q;
}

template <class T>
bool same_or_both_nan(T a, T b) {
  return (std::isnan(a) && std::isnan(b)) || a == b;
}

}  // namespace

// -----------------------------------------------------------------------------------------------

TEMPLATE_TEST_CASE("rotated_box_iou: known values", "[box][rotated]", float, double) {
  using T = TestType;
  const rbox<T> square{0, 0, 2, 2, 0};
  const rbox<T> diamond{0, 0, 2, 2, 45};
  const rbox<T> shifted{1, 0, 2, 2, 0};
  const rbox<T> apart{3, 0, 2, 2, 0};
  const T tol = std::is_same_v<T, float> ? T(1e-6) : T(1e-12);
  CHECK(cvk::rotated_box_iou(square, square) == T(1));
  CHECK(cvk::rotated_box_iou(square, diamond) ==
        Approx(1 / std::numbers::sqrt2).margin(static_cast<double>(tol)));
  CHECK(cvk::rotated_box_iou(square, shifted) ==
        Approx(1.0 / 3.0).margin(static_cast<double>(tol)));
  CHECK(cvk::rotated_box_iou(square, apart) == T(0));
  // GIoU: C of two squares 1 apart is 5×2: -(10 - 8) / 10; square and diamond: C is the
  // octagon of area 4√2 and the union 8 - 8(√2 - 1).
  CHECK(cvk::rotated_generalized_box_iou(square, apart) ==
        Approx(-0.2).margin(static_cast<double>(tol)));
  const double octagon_union = 8 - 8 * (std::numbers::sqrt2 - 1);
  const double hull = 4 * std::numbers::sqrt2;
  CHECK(cvk::rotated_generalized_box_iou(square, diamond) ==
        Approx(1 / std::numbers::sqrt2 - (hull - octagon_union) / hull)
            .margin(static_cast<double>(tol)));
  CHECK(cvk::rotated_generalized_box_iou(square, square) == T(1));
  // A box inside the other is never clipped: |inner| / |outer| exactly, in either order.
  const rbox<T> outer{0, 0, 10, 10, 30};
  const rbox<T> inner{1, 1, 2, 3, 10};
  CHECK(cvk::rotated_box_iou(outer, inner) == static_cast<T>(6.0 / 100.0));
  CHECK(cvk::rotated_box_iou(inner, outer) == static_cast<T>(6.0 / 100.0));
  // The result type follows the input: float in, float out; integers in, double out.
  STATIC_REQUIRE(std::is_same_v<decltype(cvk::rotated_box_iou(square, square)), T>);
  STATIC_REQUIRE(
      std::is_same_v<decltype(cvk::rotated_box_iou(std::array<int, 5>{}, std::array<int, 5>{})),
                     double>);
  CHECK(cvk::rotated_box_iou(std::array<int, 5>{0, 0, 2, 2, 0},
                             std::array<int, 5>{1, 0, 2, 2, 0}) == Approx(1.0 / 3.0).margin(1e-12));
}

TEMPLATE_TEST_CASE("rotated_box_iou and GIoU agree with Boost.Geometry on hard cases",
                   "[box][rotated][oracle]", float, double) {
  using T = TestType;
  for (const auto& options : all_conventions) {
    for (int k = 0; k < static_cast<int>(hard_case::count); ++k) {
      const auto kind = static_cast<hard_case>(k);
      cvk::rng gen(2019, static_cast<std::uint64_t>(100 * k) +
                             static_cast<std::uint64_t>(options.unit) * 10 +
                             static_cast<std::uint64_t>(options.direction));
      double worst_iou = 0;
      double worst_giou = 0;
      constexpr int pairs = 400;
      std::vector<rbox<T>> boxes1, boxes2;
      std::vector<oracle_result> expected;
      for (int p = 0; p < pairs; ++p) {
        const auto [a, b] = random_pair<T>(gen, kind, options);
        boxes1.push_back(a);
        boxes2.push_back(b);
        // Boost.Geometry 1.74 mis-handles some exactly touching rectangles (it returns
        // IoU > 1), so touching pairs are held to the exact answer: the two boxes side by side
        // form one rectangle, IoU 0 and C = A ∪ B, GIoU 0 (up to the rounding of b's centre).
        expected.push_back(kind == hard_case::touching ? oracle_result{0, 0, 0}
                                                       : oracle_rotated(a, b, options));
      }
      const auto iou = cvk::rotated_box_iou_aligned(boxes1, boxes2, options);
      const auto giou = cvk::rotated_generalized_box_iou_aligned(boxes1, boxes2, options);
      std::size_t worst = 0;
      for (std::size_t p = 0; p < boxes1.size(); ++p) {
        const auto i = static_cast<index_t>(p);
        const double e_iou = std::fabs(static_cast<double>(iou(i)) - expected[p].iou);
        const double e_giou = std::fabs(static_cast<double>(giou(i)) - expected[p].giou);
        if (e_iou > worst_iou) worst = p;
        worst_iou = std::max(worst_iou, e_iou);
        worst_giou = std::max(worst_giou, e_giou);
      }
      INFO(describe(options) << ", " << to_string(kind) << ": worst pair "
                             << describe(boxes1[worst]) << " " << describe(boxes2[worst]) << " cvk "
                             << iou(static_cast<index_t>(worst)) << " Boost "
                             << expected[worst].iou);
      const double tolerance =
          kind == hard_case::touching ? oracle_tolerance : precise_tolerance<T>;
      CHECK(worst_iou <= tolerance);
      CHECK(worst_giou <= tolerance);
      if (kind == hard_case::identical) {
        CHECK(std::all_of(iou.begin(), iou.end(), [](T v) { return v == T(1); }));
      }
      if (kind == hard_case::touching) {
        CHECK(*std::max_element(iou.begin(), iou.end()) <= T(1e-5));
      }
    }
  }
}

TEMPLATE_TEST_CASE("rotated_box_iou, _ioa, GIoU: pairwise matrix agrees with Boost.Geometry",
                   "[box][rotated][oracle]", float, double) {
  using T = TestType;
  cvk::rng gen(7, 1);
  const cvk::rotated_options options{};
  std::vector<rbox<T>> boxes1(40), boxes2(50);
  for (auto& b : boxes1) b = random_box<T>(gen, options.unit);
  for (auto& b : boxes2) b = random_box<T>(gen, options.unit);
  const auto iou = cvk::rotated_box_iou(boxes1, boxes2);
  const auto giou = cvk::rotated_generalized_box_iou(boxes1, boxes2);
  const auto ioa = cvk::rotated_box_ioa(boxes1, boxes2);
  const std::vector<rbox<T>> boxes2_head(boxes2.begin(), boxes2.begin() + 40);
  const auto ioa_aligned = cvk::rotated_box_ioa_aligned(boxes1, boxes2_head);
  REQUIRE(iou.extent(0) == 40);
  REQUIRE(iou.extent(1) == 50);
  REQUIRE(ioa.extent(1) == 50);
  double worst_iou = 0;
  double worst_giou = 0;
  double worst_ioa = 0;
  int overlapping = 0;
  int ioa_above_iou = 0;
  for (std::size_t i = 0; i < boxes1.size(); ++i) {
    for (std::size_t j = 0; j < boxes2.size(); ++j) {
      const auto expected = oracle_rotated(boxes1[i], boxes2[j], options);
      const auto ii = static_cast<index_t>(i), jj = static_cast<index_t>(j);
      worst_iou = std::max(worst_iou, std::fabs(static_cast<double>(iou(ii, jj)) - expected.iou));
      worst_giou =
          std::max(worst_giou, std::fabs(static_cast<double>(giou(ii, jj)) - expected.giou));
      worst_ioa = std::max(worst_ioa, std::fabs(static_cast<double>(ioa(ii, jj)) - expected.ioa));
      overlapping += expected.iou > 0;
      ioa_above_iou += ioa(ii, jj) > iou(ii, jj);
      if (i == j) {
        CHECK(ioa_aligned(ii) == ioa(ii, jj));
        CHECK(cvk::rotated_box_ioa(boxes1[i], boxes2[j]) == ioa(ii, jj));
      }
    }
  }
  CHECK(overlapping > 200);  // the scene exercises the exact path, not only the rejection test
  CHECK(ioa_above_iou > 200);
  CHECK(worst_iou <= precise_tolerance<T>);
  CHECK(worst_giou <= precise_tolerance<T>);
  CHECK(worst_ioa <= precise_tolerance<T>);
}

TEMPLATE_TEST_CASE("rotated_box_iou: the angle convention matters and matches the oracle",
                   "[box][rotated][conventions]", float, double) {
  using T = TestType;
  // b's centre lies on a's width axis when angles turn clockwise (axis (cos 30°, sin 30°) on
  // the image), far off it counter-clockwise (axis (cos 30°, -sin 30°)).
  const rbox<T> a{0, 0, 8, 1, 30};
  const rbox<T> b{2, 1, 8, 1, 30};
  const cvk::rotated_options ccw{};
  const cvk::rotated_options cw{.direction = cvk::rotation_direction::clockwise};
  const double iou_ccw = static_cast<double>(cvk::rotated_box_iou(a, b, ccw));
  const double iou_cw = static_cast<double>(cvk::rotated_box_iou(a, b, cw));
  CHECK(iou_ccw == Approx(oracle_rotated(a, b, ccw).iou).margin(precise_tolerance<T>));
  CHECK(iou_cw == Approx(oracle_rotated(a, b, cw).iou).margin(precise_tolerance<T>));
  CHECK(iou_ccw == 0);
  CHECK(iou_cw > 0.4);

  // mmcv's convention (radians, clockwise) with angle r is detectron2's with -r·180/π.
  cvk::rng gen(11);
  const cvk::rotated_options mmcv{.unit = cvk::angle_unit::radians,
                                  .direction = cvk::rotation_direction::clockwise};
  std::vector<rbox<double>> radians1, radians2, degrees1, degrees2;
  for (int p = 0; p < 300; ++p) {
    const auto [x, y] = random_pair<double>(gen, hard_case::general, mmcv);
    radians1.push_back(x);
    radians2.push_back(y);
    auto dx = x, dy = y;
    dx[4] = -x[4] * 180 / std::numbers::pi;
    dy[4] = -y[4] * 180 / std::numbers::pi;
    degrees1.push_back(dx);
    degrees2.push_back(dy);
  }
  const auto from_mmcv = cvk::rotated_box_iou_aligned(radians1, radians2, mmcv);
  const auto from_d2 = cvk::rotated_box_iou_aligned(degrees1, degrees2);
  for (index_t p = 0; p < from_mmcv.extent(0); ++p) {
    CHECK(from_mmcv(p) == Approx(from_d2(p)).margin(1e-9));
  }
}

TEMPLATE_TEST_CASE("rotated_box_iou: axis-aligned boxes equal cvk::box_iou",
                   "[box][rotated][axis-aligned]", float, double) {
  using T = TestType;
  cvk::rng gen(3);
  std::vector<rbox<T>> rotated1, rotated2;
  std::vector<std::array<T, 4>> plain1, plain2;
  // Angles that keep a box axis-aligned; 90° and 270° swap the width and the height.
  constexpr std::array<int, 7> angles = {0, 180, 360, -180, 90, -90, 270};
  for (int p = 0; p < 200; ++p) {
    const T cx = uniform<T>(gen, 0, 100), cy = uniform<T>(gen, 0, 100);
    const T w = uniform<T>(gen, 1, 50), h = uniform<T>(gen, 1, 50);
    const int angle = angles[gen.below(angles.size())];
    const bool swapped = angle % 180 != 0;
    rotated1.push_back({cx, cy, swapped ? h : w, swapped ? w : h, static_cast<T>(angle)});
    plain1.push_back({cx, cy, w, h});
    const T cx2 = uniform<T>(gen, 0, 100), cy2 = uniform<T>(gen, 0, 100);
    const T w2 = uniform<T>(gen, 1, 50), h2 = uniform<T>(gen, 1, 50);
    rotated2.push_back({cx2, cy2, w2, h2, 0});
    plain2.push_back({cx2, cy2, w2, h2});
  }
  const auto rotated = cvk::rotated_box_iou(rotated1, rotated2);
  const auto plain =
      cvk::box_iou(plain1, plain2, cvk::iou_options{.format = cvk::box_format::cxcywh});
  // GIoU differs by design: C is the convex hull here and the enclosing axis-aligned box there.
  // The hull lies inside that box, so the rotated GIoU is never below the axis-aligned one.
  const auto rotated_g = cvk::rotated_generalized_box_iou(rotated1, rotated2);
  const auto plain_g =
      cvk::generalized_box_iou(plain1, plain2, cvk::iou_options{.format = cvk::box_format::cxcywh});
  double worst = 0;
  int positive = 0;
  int below = 0;
  int larger = 0;
  for (index_t i = 0; i < rotated.extent(0); ++i) {
    for (index_t j = 0; j < rotated.extent(1); ++j) {
      worst = std::max(worst, std::fabs(static_cast<double>(rotated(i, j) - plain(i, j))));
      positive += plain(i, j) > 0;
      below += static_cast<double>(rotated_g(i, j)) < static_cast<double>(plain_g(i, j)) - 1e-6;
      larger += rotated_g(i, j) > plain_g(i, j) + T(0.01);
    }
  }
  CHECK(positive > 1000);
  CHECK(worst <= 1e-6);
  CHECK(below == 0);
  CHECK(larger > 1000);
}

TEMPLATE_TEST_CASE("rotated_box_iou: symmetric, pairwise equals aligned and single",
                   "[box][rotated]", float, double) {
  using T = TestType;
  cvk::rng gen(5);
  std::vector<rbox<T>> boxes;
  for (int k = 0; k < static_cast<int>(hard_case::count); ++k) {
    for (int p = 0; p < 12; ++p) {
      const auto [a, b] = random_pair<T>(gen, static_cast<hard_case>(k), cvk::rotated_options{});
      boxes.push_back(a);
      boxes.push_back(b);
    }
  }
  const auto n = static_cast<index_t>(boxes.size());
  const auto iou = cvk::rotated_box_iou(boxes, boxes);
  const auto giou = cvk::rotated_generalized_box_iou(boxes, boxes);
  const auto diagonal = cvk::rotated_box_iou_aligned(boxes, boxes);
  const auto diagonal_g = cvk::rotated_generalized_box_iou_aligned(boxes, boxes);
  // Symmetric: bit for bit when the areas differ (the smaller box is always the one clipped),
  // up to rounding when they are equal (each order clips its first box by the second).
  const double symmetric_tol = std::is_same_v<T, float> ? 2e-7 : 1e-9;
  const auto area = [&](index_t i) {
    const auto& b = boxes[static_cast<std::size_t>(i)];
    return static_cast<double>(b[2]) * static_cast<double>(b[3]);
  };
  double worst = 0;
  int asymmetric = 0;
  int equal_areas = 0;
  for (index_t i = 0; i < n; ++i) {
    for (index_t j = 0; j < n; ++j) {
      if (area(i) != area(j)) {
        asymmetric += iou(i, j) != iou(j, i) || giou(i, j) != giou(j, i);
      } else {
        ++equal_areas;
        worst = std::max(worst, std::fabs(static_cast<double>(iou(i, j) - iou(j, i))));
        worst = std::max(worst, std::fabs(static_cast<double>(giou(i, j) - giou(j, i))));
      }
    }
  }
  CHECK(asymmetric == 0);
  CHECK(equal_areas > n);  // the diagonal, identical boxes and their near-parallel twins
  CHECK(worst <= symmetric_tol);
  // The same pair gives the same bits whichever form computes it.
  int mismatches = 0;
  for (index_t i = 0; i < n; ++i) {
    mismatches += !same_or_both_nan(iou(i, i), diagonal(i));
    mismatches += !same_or_both_nan(giou(i, i), diagonal_g(i));
    mismatches += iou(i, i) != T(1);  // every box here has a positive area
    const auto& a = boxes[static_cast<std::size_t>(i)];
    const auto& b = boxes[static_cast<std::size_t>((i * 7 + 3) % n)];
    mismatches += !same_or_both_nan(cvk::rotated_box_iou(a, b), iou(i, (i * 7 + 3) % n));
    mismatches +=
        !same_or_both_nan(cvk::rotated_generalized_box_iou(a, b), giou(i, (i * 7 + 3) % n));
  }
  CHECK(mismatches == 0);
}

TEMPLATE_TEST_CASE("rotated_box_iou: tiles, threads and output layouts give the same bits",
                   "[box][rotated]", float, double) {
  using T = TestType;
  // More columns than one tile (512) and not a multiple of 8; a sparse scene so that the
  // rejection test and the exact code both run.
  cvk::rng gen(9);
  std::vector<rbox<T>> boxes1(21), boxes2(1100);
  for (auto& b : boxes1)
    b = {uniform<T>(gen, 0, 300), uniform<T>(gen, 0, 300), uniform<T>(gen, 5, 60),
         uniform<T>(gen, 5, 60), uniform<T>(gen, -180, 180)};
  for (auto& b : boxes2)
    b = {uniform<T>(gen, 0, 300), uniform<T>(gen, 0, 300), uniform<T>(gen, 5, 60),
         uniform<T>(gen, 5, 60), uniform<T>(gen, -180, 180)};
  const auto one = cvk::rotated_box_iou(boxes1, boxes2, cvk::rotated_options{.threads = 1});
  const auto two = cvk::rotated_box_iou(boxes1, boxes2, cvk::rotated_options{.threads = 2});
  const auto all = cvk::rotated_box_iou(boxes1, boxes2);
  CHECK(one == two);
  CHECK(one == all);
  int positive = 0;
  int mismatches = 0;
  for (index_t i = 0; i < one.extent(0); ++i) {
    for (index_t j = 0; j < one.extent(1); ++j) {
      positive += one(i, j) > 0;
      mismatches += one(i, j) != cvk::rotated_box_iou(boxes1[static_cast<std::size_t>(i)],
                                                      boxes2[static_cast<std::size_t>(j)]);
    }
  }
  CHECK(positive > 50);
  CHECK(mismatches == 0);

  // Column-major output (stride(1) != 1) and a wider output type.
  std::vector<T> column_major(21 * 1100, T(-7));
  cvk::rotated_box_iou(boxes1, boxes2, cvk::view(column_major.data(), {21, 1100}, {1, 21}));
  cvk::tensor<double, 2> wide(21, 1100);
  cvk::rotated_box_iou(boxes1, boxes2, wide);
  for (index_t i = 0; i < 21; ++i) {
    for (index_t j = 0; j < 1100; ++j) {
      mismatches += column_major[static_cast<std::size_t>(j * 21 + i)] != one(i, j);
      mismatches += static_cast<T>(wide(i, j)) != one(i, j);
    }
  }
  CHECK(mismatches == 0);
  // GIoU through the same layouts.
  const auto g =
      cvk::rotated_generalized_box_iou(boxes1, boxes2, cvk::rotated_options{.threads = 1});
  std::vector<T> g_column_major(21 * 1100);
  cvk::rotated_generalized_box_iou(boxes1, boxes2,
                                   cvk::view(g_column_major.data(), {21, 1100}, {1, 21}),
                                   cvk::rotated_options{.threads = 2});
  for (index_t i = 0; i < 21; ++i) {
    for (index_t j = 0; j < 1100; ++j) {
      mismatches += g_column_major[static_cast<std::size_t>(j * 21 + i)] != g(i, j);
    }
  }
  CHECK(mismatches == 0);
}

TEMPLATE_TEST_CASE("rotated_box_iou: strided inputs, std containers, cvk::tensor", "[box][rotated]",
                   float, double) {
  using T = TestType;
  const std::vector<rbox<T>> a = {{0, 0, 2, 2, 0}, {0, 0, 2, 2, 45}, {10, 10, 4, 1, 30}};
  const std::vector<rbox<T>> b = {{1, 0, 2, 2, 0}, {10, 10, 1, 4, 30}};
  const auto expected = cvk::rotated_box_iou(a, b);
  REQUIRE(expected.extent(0) == 3);
  REQUIRE(expected.extent(1) == 2);
  CHECK(expected(0, 0) == Approx(1.0 / 3.0).margin(1e-6));
  CHECK(expected(2, 1) > T(0));

  SECTION("every other column of a wider array, rows reversed") {
    // Row r of `a` stored reversed in a 3×10 buffer at columns 0, 2, 4, 6, 8.
    std::vector<T> storage(30, T(99));
    for (std::size_t r = 0; r < 3; ++r) {
      for (std::size_t k = 0; k < 5; ++k) storage[(2 - r) * 10 + 2 * k] = a[r][k];
    }
    const auto strided = cvk::view(storage.data() + 20, {3, 5}, {-10, 2});
    CHECK(cvk::rotated_box_iou(strided, b) == expected);
  }
  SECTION("C arrays and cvk::tensor") {
    const T c_array[3][5] = {{0, 0, 2, 2, 0}, {0, 0, 2, 2, 45}, {10, 10, 4, 1, 30}};
    CHECK(cvk::rotated_box_iou(c_array, b) == expected);
    cvk::tensor<T, 2> t(3, 5);
    for (index_t i = 0; i < 3; ++i) {
      for (index_t k = 0; k < 5; ++k)
        t(i, k) = a[static_cast<std::size_t>(i)][static_cast<std::size_t>(k)];
    }
    CHECK(cvk::rotated_box_iou(t, b) == expected);
    cvk::tensor<T, 2> out(3, 2);
    cvk::rotated_box_iou(t, b, out);
    CHECK(out == expected);
  }
  SECTION("aligned into a std::vector and a strided view") {
    const std::vector<rbox<T>> a2(a.begin(), a.begin() + 2);
    std::vector<T> out(2, T(-1));
    cvk::rotated_box_iou_aligned(a2, b, out);
    CHECK(out[0] == expected(0, 0));
    CHECK(out[1] == expected(1, 1));
    std::vector<T> spaced(4, T(-1));
    cvk::rotated_box_iou_aligned(a2, b, cvk::view(spaced.data(), {2}, {2}));
    CHECK(spaced[0] == expected(0, 0));
    CHECK(spaced[2] == expected(1, 1));
    CHECK(spaced[1] == T(-1));
  }
  SECTION("empty sets") {
    const std::vector<rbox<T>> none;
    const auto r = cvk::rotated_box_iou(none, b);
    CHECK(r.extent(0) == 0);
    CHECK(r.extent(1) == 2);
    CHECK(cvk::rotated_box_iou(a, none).extent(1) == 0);
    CHECK(cvk::rotated_box_iou_aligned(none, none).extent(0) == 0);
    CHECK(cvk::quad_iou(std::vector<quad<T>>{}, std::vector<quad<T>>{}).size() == 0);
  }
}

TEMPLATE_TEST_CASE("rotated_box_iou: degenerate and non-finite boxes", "[box][rotated]", float,
                   double) {
  using T = TestType;
  const T inf = std::numeric_limits<T>::infinity();
  const T nan = std::numeric_limits<T>::quiet_NaN();
  const rbox<T> unit{0, 0, 1, 1, 0};
  SECTION("zero, negative and tiny sides give IoU 0 (w <= 0, h <= 0 or w·h < 1e-14)") {
    for (const rbox<T>& empty :
         {rbox<T>{0, 0, 0, 1, 0}, rbox<T>{0, 0, 1, 0, 30}, rbox<T>{0, 0, -1, 1, 0},
          rbox<T>{0, 0, -1, -1, 0}, rbox<T>{0, 0, T(1e-8), T(1e-8), 10}}) {
      INFO(describe(empty));
      CHECK(cvk::rotated_box_iou(unit, empty) == T(0));
      CHECK(cvk::rotated_box_iou(empty, unit) == T(0));
      CHECK(cvk::rotated_box_iou(empty, empty) == T(0));
    }
    // A tiny but non-empty box still counts: 2e-7 × 2e-7 = 4e-14 > 1e-14.
    const rbox<T> small{0, 0, T(2e-7), T(2e-7), 0};
    CHECK(cvk::rotated_box_iou(small, small) == T(1));
    // GIoU of an empty box: area 0 in the union, its corners in C. A segment from x = 1 to 3
    // on the axis and the unit square: C = the square plus the triangle up to (3, 0): 1 + 1.25
    // ... computed by the oracle.
    const rbox<T> segment{2, 0, 2, 0, 0};
    const auto expected = oracle_rotated(unit, segment, {});
    CHECK(static_cast<double>(cvk::rotated_generalized_box_iou(unit, segment)) ==
          Approx(expected.giou).margin(1e-6));
    CHECK(expected.giou < -0.1);
    // Two identical points: C = 0, GIoU = IoU = 0.
    const rbox<T> point{5, 5, 0, 0, 0};
    CHECK(cvk::rotated_generalized_box_iou(point, point) == T(0));
  }
  SECTION("NaN or infinity in any column gives NaN, in every form") {
    for (std::size_t column = 0; column < 5; ++column) {
      for (const T bad : {nan, inf, -inf}) {
        rbox<T> b = unit;
        b[column] = bad;
        INFO("column " << column << " = " << static_cast<double>(bad));
        CHECK(std::isnan(cvk::rotated_box_iou(unit, b)));
        CHECK(std::isnan(cvk::rotated_box_iou(b, unit)));
        CHECK(std::isnan(cvk::rotated_generalized_box_iou(unit, b)));
        // Far from the bad box, the pairwise kernel's rejection test must not produce 0.
        const std::vector<rbox<T>> left = {unit, {1000, 1000, 1, 1, 0}};
        const std::vector<rbox<T>> right = {b};
        const auto m = cvk::rotated_box_iou(left, right);
        CHECK(std::isnan(m(0, 0)));
        CHECK(std::isnan(m(1, 0)));
        CHECK(std::isnan(cvk::rotated_box_iou_aligned(right, right)(0)));
        CHECK(std::isnan(cvk::rotated_generalized_box_iou(left, right)(1, 0)));
      }
    }
  }
}

TEMPLATE_TEST_CASE("quad_iou agrees with Boost.Geometry and with rotated_box_iou",
                   "[box][rotated][quad][oracle]", float, double) {
  using T = TestType;
  cvk::rng gen(13);
  std::vector<quad<T>> quads1, quads2;
  for (int p = 0; p < 600; ++p) {
    const double cx = gen.uniform(0.0, 40.0), cy = gen.uniform(0.0, 40.0);
    quads1.push_back(random_quad<T>(gen, cx, cy, gen.uniform(2.0, 30.0)));
    const bool far = p % 3 == 0;
    const double scale = p % 5 == 0 ? 1e5 : 0.0;  // some pairs around 1e5
    if (scale > 0) {
      quads1.back() = random_quad<T>(gen, scale + cx, scale + cy, 20);
    }
    quads2.push_back(random_quad<T>(gen, scale + cx + gen.uniform(-10.0, 10.0) * (far ? 5 : 1),
                                    scale + cy + gen.uniform(-10.0, 10.0), gen.uniform(2.0, 30.0)));
  }
  const auto aligned = cvk::quad_iou_aligned(quads1, quads2);
  const auto pairwise = cvk::quad_iou(quads1, quads2);
  double worst = 0;
  int positive = 0;
  int mismatches = 0;
  for (std::size_t p = 0; p < quads1.size(); ++p) {
    const auto i = static_cast<index_t>(p);
    const double expected = oracle_quad(quads1[p], quads2[p]).iou;
    worst = std::max(worst, std::fabs(static_cast<double>(aligned(i)) - expected));
    positive += expected > 0;
    mismatches += aligned(i) != pairwise(i, i);
    mismatches += aligned(i) != cvk::quad_iou(quads1[p], quads2[p]);
  }
  CHECK(positive > 250);
  CHECK(worst <= precise_tolerance<T>);
  CHECK(mismatches == 0);

  SECTION("either orientation, any start vertex") {
    const quad<T> ccw{0, 0, 2, 0, 2, 2, 0, 2};
    const quad<T> cw{0, 2, 2, 2, 2, 0, 0, 0};
    const quad<T> shifted{1, 0, 3, 0, 3, 2, 1, 2};
    const quad<T> shifted_cw_rotated{3, 2, 3, 0, 1, 0, 1, 2};
    CHECK(cvk::quad_iou(ccw, shifted) == Approx(1.0 / 3.0).margin(1e-6));
    CHECK(cvk::quad_iou(cw, shifted) == Approx(1.0 / 3.0).margin(1e-6));
    CHECK(cvk::quad_iou(cw, shifted_cw_rotated) == Approx(1.0 / 3.0).margin(1e-6));
    CHECK(cvk::quad_iou(ccw, cw) == T(1));
  }
  SECTION("the corners of rotated boxes give the rotated IoU") {
    std::vector<rbox<double>> boxes1, boxes2;
    std::vector<quad<double>> corners1, corners2;
    for (int p = 0; p < 300; ++p) {
      const auto [a, b] =
          random_pair<double>(gen, static_cast<hard_case>(p % 4), cvk::rotated_options{});
      boxes1.push_back(a);
      boxes2.push_back(b);
      corners1.push_back(box_as_quad(a, {}));
      corners2.push_back(box_as_quad(b, {}));
    }
    const auto from_boxes = cvk::rotated_box_iou_aligned(boxes1, boxes2);
    const auto from_quads = cvk::quad_iou_aligned(corners1, corners2);
    double worst_difference = 0;
    for (index_t p = 0; p < from_boxes.extent(0); ++p) {
      worst_difference = std::max(worst_difference, std::fabs(from_boxes(p) - from_quads(p)));
    }
    CHECK(worst_difference <= 1e-9);
  }
  SECTION("degenerate and non-finite quads") {
    const quad<T> square{0, 0, 1, 0, 1, 1, 0, 1};
    const quad<T> line{0, 0, 1, 1, 2, 2, 3, 3};
    const quad<T> point{1, 1, 1, 1, 1, 1, 1, 1};
    CHECK(cvk::quad_iou(square, line) == T(0));
    CHECK(cvk::quad_iou(point, point) == T(0));
    quad<T> bad = square;
    bad[5] = std::numeric_limits<T>::quiet_NaN();
    CHECK(std::isnan(cvk::quad_iou(square, bad)));
    bad[5] = std::numeric_limits<T>::infinity();
    CHECK(std::isnan(cvk::quad_iou(bad, square)));
  }
}

TEST_CASE("rotated_box_iou: error messages", "[box][rotated][errors]") {
  const std::vector<std::array<float, 5>> five(3);
  const std::vector<std::array<float, 5>> two_five(2);
  const std::vector<std::array<float, 4>> four(3);
  const std::vector<std::array<float, 6>> six(2);
  const std::vector<std::array<float, 8>> eight(2);
  std::vector<float> flat(2);
  cvk::tensor<float, 2> out22(2, 2);
  CHECK_THROWS_MATCHES(cvk::rotated_box_iou(four, five), cvk::shape_error,
                       Catch::Message("rotated_box_iou: boxes1 must be N×5, got 3×4"));
  CHECK_THROWS_MATCHES(cvk::rotated_box_iou(five, six), cvk::shape_error,
                       Catch::Message("rotated_box_iou: boxes2 must be N×5, got 2×6"));
  CHECK_THROWS_MATCHES(cvk::rotated_box_iou(five, two_five, out22), cvk::shape_error,
                       Catch::Message("rotated_box_iou: out must be 3×2, got 2×2"));
  CHECK_THROWS_MATCHES(
      cvk::rotated_box_iou_aligned(five, two_five), cvk::shape_error,
      Catch::Message("rotated_box_iou_aligned: boxes1 and boxes2 must have the same number of "
                     "boxes, got 3×5 and 2×5"));
  CHECK_THROWS_MATCHES(cvk::rotated_box_iou_aligned(five, five, flat), cvk::shape_error,
                       Catch::Message("rotated_box_iou_aligned: out must be 3, got 2"));
  CHECK_THROWS_MATCHES(cvk::rotated_box_iou_aligned(four, four), cvk::shape_error,
                       Catch::Message("rotated_box_iou_aligned: boxes1 must be N×5, got 3×4"));
  CHECK_THROWS_MATCHES(cvk::rotated_box_iou(std::array<float, 4>{}, std::array<float, 5>{}),
                       cvk::shape_error, Catch::Message("rotated_box_iou: box1 must be 5, got 4"));
  CHECK_THROWS_MATCHES(cvk::rotated_box_iou(std::array<float, 5>{}, std::array<float, 6>{}),
                       cvk::shape_error, Catch::Message("rotated_box_iou: box2 must be 5, got 6"));
  CHECK_THROWS_MATCHES(cvk::rotated_generalized_box_iou(four, five), cvk::shape_error,
                       Catch::Message("rotated_generalized_box_iou: boxes1 must be N×5, got 3×4"));
  CHECK_THROWS_MATCHES(cvk::rotated_box_ioa(four, five), cvk::shape_error,
                       Catch::Message("rotated_box_ioa: boxes1 must be N×5, got 3×4"));
  CHECK_THROWS_MATCHES(cvk::rotated_box_ioa_aligned(five, five, flat), cvk::shape_error,
                       Catch::Message("rotated_box_ioa_aligned: out must be 3, got 2"));
  CHECK_THROWS_MATCHES(
      cvk::rotated_generalized_box_iou_aligned(five, two_five), cvk::shape_error,
      Catch::Message("rotated_generalized_box_iou_aligned: boxes1 and boxes2 must have the same "
                     "number of boxes, got 3×5 and 2×5"));
  CHECK_THROWS_MATCHES(cvk::quad_iou(five, eight), cvk::shape_error,
                       Catch::Message("quad_iou: boxes1 must be N×8, got 3×5"));
  CHECK_THROWS_MATCHES(cvk::quad_iou_aligned(eight, six), cvk::shape_error,
                       Catch::Message("quad_iou_aligned: boxes2 must be N×8, got 2×6"));
  CHECK_THROWS_MATCHES(cvk::quad_iou(std::array<float, 8>{}, std::array<float, 5>{}),
                       cvk::shape_error, Catch::Message("quad_iou: box2 must be 8, got 5"));
  // Nothing is written when a check fails.
  std::vector<float> untouched(3, 42.0F);
  CHECK_THROWS_AS(cvk::rotated_box_iou_aligned(five, two_five, untouched), cvk::shape_error);
  CHECK(untouched == std::vector<float>(3, 42.0F));
}

// Found by tests/fuzz/fuzz_iou.cpp: finite boxes whose corner products overflow double gave NaN
// in some forms and 0 in others (the pairwise rejection test saw an infinity and skipped the pair).
// Policy (docs/boxes.md): a w or h beyond 2^500 (a quad vertex beyond 2^500 from the vertex mean)
// is out of range and gives NaN in every form, bit for bit; up to 2^500 nothing overflows and the
// result is a number. Centres may be any finite number.
TEST_CASE("rotated_box_iou: finite boxes near the largest double", "[box][rotated][fuzz-finding]") {
  constexpr double big = std::numeric_limits<double>::max();
  const std::vector<std::array<double, 5>> huge = {{big, 34, 34, big, 0}};
  const std::vector<std::array<double, 5>> normal = {{0, 0, 2, 2, 0}};
  for (const auto& other : {huge, normal}) {
    const auto pairwise = cvk::rotated_box_iou(huge, other);
    const auto aligned = cvk::rotated_box_iou_aligned(huge, other);
    const auto giou = cvk::rotated_generalized_box_iou(huge, other);
    const auto giou_aligned = cvk::rotated_generalized_box_iou_aligned(huge, other);
    CHECK(std::isnan(pairwise(0, 0)));
    CHECK(std::isnan(aligned(0)));
    CHECK(std::isnan(cvk::rotated_box_iou(huge[0], other[0])));
    CHECK(std::isnan(cvk::rotated_box_iou(other, huge)(0, 0)));
    CHECK(std::isnan(giou(0, 0)));
    CHECK(std::isnan(giou_aligned(0)));
  }
  // at the limit: a number, and identical boxes give exactly 1
  constexpr double limit = 0x1p500;
  const std::array<double, 5> edge{limit, -limit, limit, limit, 30};
  CHECK(cvk::rotated_box_iou(edge, edge) == 1.0);
  CHECK(cvk::rotated_generalized_box_iou(edge, edge) == 1.0);
  const std::array<double, 5> far{-limit, limit, limit, limit / 2, -60};
  const double apart = cvk::rotated_box_iou(edge, far);
  CHECK(apart == 0.0);
  CHECK(std::isfinite(cvk::rotated_generalized_box_iou(edge, far)));
  const std::array<double, 5> beyond{0, 0, std::nextafter(limit, big), 1, 0};
  CHECK(std::isnan(cvk::rotated_box_iou(beyond, edge)));
  // centres may be any finite number: pairs are computed relative to a centre
  const std::array<double, 5> high{1e308, 0, 10, 10, 0};
  const std::array<double, 5> shifted{1e308, 3, 10, 10, 0};
  CHECK(cvk::rotated_box_iou(high, shifted) == 70.0 / 130.0);
  CHECK(cvk::rotated_box_iou(high, std::array<double, 5>{-1e308, 0, 10, 10, 0}) == 0.0);
}

TEST_CASE("quad_iou: a finite quad whose shoelace products overflow",
          "[box][rotated][fuzz-finding]") {
  constexpr double big = std::numeric_limits<double>::max();
  const std::vector<std::array<double, 8>> a = {{big, big, 0, 0, 0, 0, 0, 0}};
  const std::vector<std::array<double, 8>> b = {{0, 0, 0, 0, 0, 0, 0, 0}};
  const auto pairwise = cvk::quad_iou(a, b);
  const auto aligned = cvk::quad_iou_aligned(a, b);
  const double single = cvk::quad_iou(a[0], b[0]);
  // out of range: NaN in every form (the pairwise form returned 0)
  CHECK(std::isnan(single));
  CHECK(std::isnan(aligned(0)));
  CHECK(std::isnan(pairwise(0, 0)));
  CHECK(std::isnan(cvk::quad_iou(b, a)(0, 0)));
  // at the limit: the products stay finite, the forms agree on a number
  constexpr double limit = 0x1p500;
  const std::vector<std::array<double, 8>> c = {
      {limit, limit, -limit, limit, -limit, -limit, limit, -limit}};
  const std::vector<std::array<double, 8>> d = {{0, 0, limit, 0, limit, limit, 0, limit}};
  const double quarter = cvk::quad_iou(c[0], d[0]);
  CHECK(quarter == 0.25);
  CHECK(cvk::quad_iou(c, d)(0, 0) == quarter);
  CHECK(cvk::quad_iou_aligned(c, d)(0) == quarter);
  // far from the origin, extent below 2^500: in range
  const double at = 1e160;
  const double side = 1e150;
  const std::array<double, 8> far{at, at, at + side, at, at + side, at + side, at, at + side};
  CHECK(cvk::quad_iou(far, far) == 1.0);
  // all four vertices near the largest double: the vertex sums overflow, the mean does not
  const std::array<double, 8> top{big, big, big / 2, big, big / 2, big / 2, big, big / 2};
  CHECK(std::isnan(cvk::quad_iou(top, top)));  // sides of big / 2: beyond 2^500
}

TEST_CASE("errors table: rotated and quad IoU, every form (docs/errors.md)",
          "[box][rotated][errors]") {
  const std::vector<double> buffer(8, 1.0);
  const auto rank3 = cvk_test::rank3_view(buffer);
  const std::vector<std::array<double, 5>> five(2);
  const std::vector<std::array<double, 8>> eight(2);
  CHECK_THROWS_MATCHES(
      cvk::rotated_box_iou(rank3, five), cvk::shape_error,
      Catch::Message("rotated_box_iou: boxes1 must have rank 2, got rank 3 (2×2×2)"));
  CHECK_THROWS_AS(cvk::rotated_generalized_box_iou_aligned(five, rank3), cvk::shape_error);
  CHECK_THROWS_AS(cvk::quad_iou(eight, rank3), cvk::shape_error);
  CHECK_THROWS_WITH(cvk::quad_iou_aligned(eight, cvk::view(buffer.data(), {-1, 8})),
                    "quad_iou_aligned: boxes2 has a negative extent, got -1×8");
  // empty input: empty results
  const std::vector<std::array<double, 5>> none;
  CHECK(cvk::rotated_box_iou(none, five).extent(0) == 0);
  CHECK(cvk::rotated_box_iou_aligned(none, none).size() == 0);
  CHECK(cvk::quad_iou(std::vector<std::array<double, 8>>{}, eight).extent(1) == 2);
  // 2^20 × 2^20 broadcast boxes: the 2^40-entry result cannot be allocated
  const std::array<double, 5> row{0, 0, 1, 1, 0};
  const auto many = cvk_test::broadcast_rows(row.data(), cvk::index_t{1} << 20, 5);
  CHECK_THROWS_AS(cvk::rotated_box_iou(many, many), cvk::out_of_range);
  const auto huge = cvk_test::broadcast_rows(row.data(), cvk_test::huge_rows, 5);
  CHECK_THROWS_AS(cvk::rotated_box_iou_aligned(huge, huge), cvk::out_of_range);
}
