// cvk — computer-vision kernels, header-only C++20.
// Tests of the NMS toolkit in cvk/nms/detail/ on its own, each part against a plain reference
// written here: the winner trees (tournament.hpp) against a linear scan under random updates,
// the threshold rounding (threshold.hpp) against the exact answer found by stepping through
// neighbouring floats, and the overlap policies (overlap.hpp) against each peer's formula
// written out in long double and in its own operation order.
// SPDX-License-Identifier: MIT
#include <algorithm>
#include <array>
#include <bit>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include <cvk/core.hpp>
#include <cvk/nms.hpp>
#include <cvk/nms/detail/overlap.hpp>
#include <cvk/nms/detail/threshold.hpp>
#include <cvk/nms/detail/tournament.hpp>

namespace {

// ---------------------------------------------------------------------------------------------
// Winner trees

/// The reference: the first slot whose key no other key ranks strictly before.
template <class Key, class Before>
std::size_t leftmost_best(const std::vector<Key>& keys, Before before) {
  std::size_t best = 0;
  for (std::size_t i = 1; i < keys.size(); ++i) {
    if (before(keys[i], keys[best])) best = i;
  }
  return best;
}

}  // namespace

TEMPLATE_TEST_CASE("nms toolkit: the unsigned winner trees return the leftmost maximum",
                   "[nms_toolkit]", (cvk::detail::winner_tree<std::uint32_t, std::uint32_t>),
                   (cvk::detail::block_winner_tree<std::uint32_t, std::uint32_t>),
                   (cvk::detail::block_winner_tree<std::uint64_t, std::size_t>)) {
  cvk::rng gen(47);
  for (int trial = 0; trial < 300; ++trial) {
    const std::size_t n = 1 + gen.below(trial % 3 == 0 ? 300 : 70);
    const std::uint64_t distinct = 1 + gen.below(6);  // few distinct keys: many ties, some 0
    TestType tree(n);
    std::vector<std::uint32_t> keys(n);
    for (std::size_t i = 0; i < n; ++i) {
      keys[i] = static_cast<std::uint32_t>(gen.below(distinct));
      tree.set(i, keys[i]);
    }
    tree.build();
    for (int step = 0; step < 200; ++step) {
      const std::size_t i = gen.below(n);
      // mostly lower keys (as soft-NMS does), sometimes raise them
      keys[i] = gen.bernoulli(0.8) ? static_cast<std::uint32_t>(gen.below(keys[i] + 1))
                                   : static_cast<std::uint32_t>(gen.below(distinct + 2));
      tree.update(i, keys[i]);
      const auto best =
          static_cast<std::size_t>(std::max_element(keys.begin(), keys.end()) - keys.begin());
      if (keys[best] == 0) continue;  // all empty: any slot with key 0
      REQUIRE(tree.top() == best);
      REQUIRE(tree.key(tree.top()) == keys[best]);
    }
  }
}

TEMPLATE_TEST_CASE("nms toolkit: the position tournament ranks as numpy's argmax", "[nms_toolkit]",
                   float, double, long double) {
  using rank = cvk::detail::kl_rank<TestType>;
  using keys = cvk::detail::kl_rank_keys<TestType>;
  // The reference order written out: live before dead, NaN before numbers, larger first.
  const auto before = [](const rank& a, const rank& b) {
    if (!a.live) return false;
    if (!b.live) return true;
    const bool a_nan = std::isnan(a.score);
    const bool b_nan = std::isnan(b.score);
    if (a_nan || b_nan) return a_nan && !b_nan;
    return a.score > b.score;
  };
  const TestType nan = std::numeric_limits<TestType>::quiet_NaN();
  const TestType inf = std::numeric_limits<TestType>::infinity();
  const std::array<TestType, 9> values{TestType(0.5),
                                       TestType(0.25),
                                       TestType(-0.0),
                                       TestType(0),
                                       TestType(-1.5),
                                       nan,
                                       TestType(0.5),
                                       inf,
                                       -inf};
  // the keys order as the reference (equal keys exactly when neither ranks before the other)
  const typename keys::before key_before{};
  for (const TestType a : values) {
    for (const TestType b : values) {
      for (const bool a_live : {true, false}) {
        for (const bool b_live : {true, false}) {
          const rank x{a, a_live};
          const rank y{b, b_live};
          CHECK(key_before(keys::of(a, a_live), keys::of(b, b_live)) == before(x, y));
        }
      }
    }
  }
  cvk::rng gen(59);
  for (int trial = 0; trial < 300; ++trial) {
    const std::size_t n = 1 + gen.below(trial % 3 == 0 ? 300 : 40);
    cvk::detail::position_tournament<TestType> tree(n);
    std::vector<rank> ranks(n);
    for (std::size_t p = 0; p < n; ++p) {
      ranks[p] = {values[gen.below(values.size())], true};
      tree.set(p, keys::of(ranks[p].score, true));
    }
    tree.build();
    for (int step = 0; step < 200; ++step) {
      const std::size_t p = gen.below(n);
      ranks[p] = {values[gen.below(values.size())], gen.bernoulli(0.7)};
      tree.update(p, keys::of(ranks[p].score, ranks[p].live));
      const std::size_t best = leftmost_best(ranks, before);
      if (!ranks[best].live) continue;  // all dead: any position
      REQUIRE(tree.top() == best);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Threshold rounding

namespace {

/// The floats in increasing order as unsigned ranks (-inf → lowest, +inf → highest; no NaN).
std::uint32_t float_rank(float f) {
  const auto bits = std::bit_cast<std::uint32_t>(f == 0.0f ? 0.0f : f);
  return (bits & 0x80000000u) != 0 ? ~bits : bits | 0x80000000u;
}
float rank_float(std::uint32_t r) {
  return std::bit_cast<float>((r & 0x80000000u) != 0 ? r & 0x7fffffffu : ~r);
}

/// The largest float <= t (up: the smallest float >= t), by bisection over the ranks of the
/// finite floats; ±max or ±infinity beyond them, as round_toward documents.
float reference_toward(double t, bool up) {
  const float big = std::numeric_limits<float>::max();
  if (std::isinf(t)) return static_cast<float>(t);
  if (t > static_cast<double>(big)) return up ? std::numeric_limits<float>::infinity() : big;
  if (t < -static_cast<double>(big)) return up ? -big : -std::numeric_limits<float>::infinity();
  std::uint32_t lo = float_rank(-big);  // double(rank_float(lo)) <= t
  std::uint32_t hi = float_rank(big);   // double(rank_float(hi)) >= t
  while (hi - lo > 1) {
    const std::uint32_t mid = lo + (hi - lo) / 2;
    (static_cast<double>(rank_float(mid)) <= t ? lo : hi) = mid;
  }
  const float below = rank_float(lo);
  const float above = rank_float(hi);
  if (static_cast<double>(above) <= t) return above;  // t is the largest float
  if (static_cast<double>(below) == t) return below;
  return up ? above : below;
}

/// The float nearest to t, ties to the even one, infinity from max + half an ulp of max on.
float reference_nearest(double t) {
  if (t == 0.0) return std::signbit(t) ? -0.0f : 0.0f;  // the sign of zero is kept
  const float down = reference_toward(t, false);
  const float up = reference_toward(t, true);
  const float big = std::numeric_limits<float>::max();
  const double half_ulp_of_max = std::ldexp(1.0, 127 - 24);
  if (t >= static_cast<double>(big) + half_ulp_of_max)
    return std::numeric_limits<float>::infinity();
  if (t <= -static_cast<double>(big) - half_ulp_of_max) {
    return -std::numeric_limits<float>::infinity();
  }
  if (down == up || std::isinf(down) || std::isinf(up)) return std::isinf(down) ? up : down;
  const long double d_down = static_cast<long double>(t) - static_cast<long double>(down);
  const long double d_up = static_cast<long double>(up) - static_cast<long double>(t);
  if (d_down != d_up) return d_down < d_up ? down : up;
  return (std::bit_cast<std::uint32_t>(down) & 1u) == 0 ? down : up;
}

/// Thresholds near the interesting places: floats and the doubles around them, halfway points,
/// the edges of float's range, tiny and huge values.
std::vector<double> rounding_cases(cvk::rng& gen) {
  std::vector<double> cases{0.0,
                            -0.0,
                            0.5,
                            0.3,
                            0.7,
                            1.0,
                            1e-45,
                            -1e-45,
                            1e-40,
                            1e300,
                            -1e300,
                            std::numeric_limits<double>::infinity(),
                            -std::numeric_limits<double>::infinity()};
  const double big = static_cast<double>(std::numeric_limits<float>::max());
  const double half_ulp_of_max = std::ldexp(1.0, 127 - 24);
  for (const double edge : {big, big + half_ulp_of_max, big + 2 * half_ulp_of_max}) {
    for (const double t : {edge, std::nextafter(edge, 0.0), std::nextafter(edge, 1e300)}) {
      cases.push_back(t);
      cases.push_back(-t);
    }
  }
  for (int k = 0; k < 3000; ++k) {
    const auto f = static_cast<float>(gen.uniform<double>(-2.0, 2.0) *
                                      std::ldexp(1.0, static_cast<int>(gen.below(60)) - 30));
    const float next = std::nextafter(f, std::numeric_limits<float>::infinity());
    const double mid = (static_cast<double>(f) + static_cast<double>(next)) / 2;
    for (const double t :
         {static_cast<double>(f), mid, std::nextafter(mid, -1e300), std::nextafter(mid, 1e300),
          std::nextafter(static_cast<double>(f), 1e300),
          std::nextafter(static_cast<double>(f), -1e300)}) {
      cases.push_back(t);
    }
  }
  return cases;
}

bool same_float(float a, float b) {
  return std::bit_cast<std::uint32_t>(a) == std::bit_cast<std::uint32_t>(b) ||
         (a == b && a != 0.0f);
}

}  // namespace

TEST_CASE("nms toolkit: round_toward and round_to_nearest against bisection", "[nms_toolkit]") {
  cvk::rng gen(61);
  for (const double t : rounding_cases(gen)) {
    INFO("t = " << t);
    const float down = cvk::detail::round_toward<float>(t, false);
    const float up = cvk::detail::round_toward<float>(t, true);
    REQUIRE(down == reference_toward(t, false));
    REQUIRE(up == reference_toward(t, true));
    REQUIRE(same_float(cvk::detail::round_to_nearest<float>(t), reference_nearest(t)));
    // the property the kernels rely on: comparing in float decides as comparing in double
    for (const float v : {down, up, std::nextafter(down, -INFINITY), std::nextafter(up, INFINITY),
                          static_cast<float>(gen.uniform<double>(-2.0, 2.0))}) {
      REQUIRE((static_cast<double>(v) > t) == (v > down));
      REQUIRE((static_cast<double>(v) >= t) == (v >= up));
    }
    // double and wider: the value itself
    REQUIRE(cvk::detail::round_toward<double>(t, false) == t);
    REQUIRE(cvk::detail::round_to_nearest<double>(t) == t);
  }
}

// ---------------------------------------------------------------------------------------------
// Overlap policies: each peer's formula as its source writes it (std::min / std::max where the
// peer calls min / max, numpy's maximum, Cython's comparisons), compiled with the kernels'
// floating-point options so that both sides round the same way.

CVK_KERNEL_BEGIN
namespace {

template <class R>
R ref_torchvision(const std::array<R, 4>& i, const std::array<R, 4>& j) {
  // csrc/ops/cpu/nms_kernel.cpp
  const R iarea = (i[2] - i[0]) * (i[3] - i[1]);
  const R jarea = (j[2] - j[0]) * (j[3] - j[1]);
  const R xx1 = std::max(i[0], j[0]);
  const R yy1 = std::max(i[1], j[1]);
  const R xx2 = std::min(i[2], j[2]);
  const R yy2 = std::min(i[3], j[3]);
  const R w = std::max(static_cast<R>(0), xx2 - xx1);
  const R h = std::max(static_cast<R>(0), yy2 - yy1);
  const R inter = w * h;
  return inter / (iarea + jarea - inter);
}

template <class R>
R ref_detectron(const std::array<R, 4>& top, const std::array<R, 4>& other, R one) {
  // utils/cython_bbox.pyx bbox_overlaps (query box = top)
  const R box_area = ((top[2] - top[0]) + one) * ((top[3] - top[1]) + one);
  const R iw = (std::min(top[2], other[2]) - std::max(top[0], other[0])) + one;
  if (!(iw > 0)) return 0;
  const R ih = (std::min(top[3], other[3]) - std::max(top[1], other[1])) + one;
  if (!(ih > 0)) return 0;
  const R other_area = ((other[2] - other[0]) + one) * ((other[3] - other[1]) + one);
  const R ua = (other_area + box_area) - iw * ih;
  return iw * ih / ua;
}

template <class R>
R ref_kl_loss(const std::array<R, 4>& i, const std::array<R, 4>& j, R one) {
  // py_cpu_nms.py: np.maximum / np.minimum propagate NaN from either side; here max(a, b) as
  // numpy's maximum of the selected box i and the others j (NaN of either wins)
  const auto np_max = [](R a, R b) { return a != a ? a : (b != b ? b : (a < b ? b : a)); };
  const auto np_min = [](R a, R b) { return a != a ? a : (b != b ? b : (b < a ? b : a)); };
  const R iarea = ((i[2] - i[0]) + one) * ((i[3] - i[1]) + one);
  const R jarea = ((j[2] - j[0]) + one) * ((j[3] - j[1]) + one);
  const R w = np_max(R(0), (np_min(i[2], j[2]) - np_max(i[0], j[0])) + one);
  const R h = np_max(R(0), (np_min(i[3], j[3]) - np_max(i[1], j[1])) + one);
  const R inter = w * h;
  return inter / ((iarea + jarea) - inter);
}

template <class R>
R ref_paddle(const std::array<R, 4>& a, const std::array<R, 4>& b, bool normalized) {
  // paddle/phi/kernels/cpu/matrix_nms_kernel.cc BBoxArea and JaccardOverlap
  const auto area = [&](const std::array<R, 4>& x) -> R {
    if (x[2] < x[0] || x[3] < x[1]) return 0;
    const R w = x[2] - x[0];
    const R h = x[3] - x[1];
    return normalized ? w * h : (w + 1) * (h + 1);
  };
  if (b[0] > a[2] || b[2] < a[0] || b[1] > a[3] || b[3] < a[1]) return 0;
  const R norm = normalized ? R(0) : R(1);
  const R inter_w = std::min(a[2], b[2]) - std::max(a[0], b[0]) + norm;
  const R inter_h = std::min(a[3], b[3]) - std::max(a[1], b[1]) + norm;
  const R inter = inter_w * inter_h;
  return inter / (area(a) + area(b) - inter);
}

template <class R>
R ref_cluster_distance(const std::array<R, 4>& a, const std::array<R, 4>& b) {
  // Zzh-tju/CIoU layers/box_utils.py diou: centres, enclosing diagonal, rho² / (c² + 1e-7)
  const R dx = (b[2] + b[0]) / 2 - (a[2] + a[0]) / 2;
  const R dy = (b[3] + b[1]) / 2 - (a[3] + a[1]) / 2;
  const R cw = std::max(a[2], b[2]) - std::min(a[0], b[0]);
  const R ch = std::max(a[3], b[3]) - std::min(a[1], b[1]);
  return (dx * dx + dy * dy) / ((cw * cw + ch * ch) + static_cast<R>(1e-7));
}

template <class R>
R ref_diou(const std::array<R, 4>& i, const std::array<R, 4>& j, R beta) {
  // DIoU-NMS: IoU - (ρ²/c²)^β with ρ, c from doubled centres (2ρ, 2c: the ratio is the same)
  const R dx = (i[0] + i[2]) - (j[0] + j[2]);
  const R dy = (i[1] + i[3]) - (j[1] + j[3]);
  const R cw = std::max(i[2], j[2]) - std::min(i[0], j[0]);
  const R ch = std::max(i[3], j[3]) - std::min(i[1], j[1]);
  const R c2 = R(4) * (cw * cw + ch * ch);
  const R penalty = c2 > 0 ? (dx * dx + dy * dy) / c2 : R(0);
  return ref_torchvision(i, j) - (beta == R(1) ? penalty : std::pow(penalty, beta));
}

}  // namespace
CVK_KERNEL_END

namespace {

template <class R>
bool same_value(R a, R b) {
  return (a == b) || (a != a && b != b);
}

/// Random boxes with many coincident edges, zero-area and inverted boxes, and some NaN.
template <class R>
std::array<R, 4> random_box(cvk::rng& gen) {
  const auto coordinate = [&] {
    return gen.bernoulli(0.3) ? static_cast<R>(gen.below(5))
                              : static_cast<R>(gen.uniform<double>(-2.0, 6.0));
  };
  std::array<R, 4> b{coordinate(), coordinate(), coordinate(), coordinate()};
  if (gen.bernoulli(0.8)) {
    if (b[2] < b[0]) std::swap(b[0], b[2]);
    if (b[3] < b[1]) std::swap(b[1], b[3]);
  }
  if (gen.bernoulli(0.03)) b[gen.below(4)] = std::numeric_limits<R>::quiet_NaN();
  return b;
}

}  // namespace

TEMPLATE_TEST_CASE("nms toolkit: the overlap policies are the peers' formulas", "[nms_toolkit]",
                   float, double) {
  using R = TestType;
  namespace d = cvk::detail;
  cvk::rng gen(67);
  for (int trial = 0; trial < 20000; ++trial) {
    const auto a = random_box<R>(gen);
    const auto b = random_box<R>(gen);
    INFO("a = " << a[0] << " " << a[1] << " " << a[2] << " " << a[3] << ", b = " << b[0] << " "
                << b[1] << " " << b[2] << " " << b[3]);
    const auto na = d::make_nms_box(a[0], a[1], a[2], a[3]);
    const auto nb = d::make_nms_box(b[0], b[1], b[2], b[3]);
    REQUIRE(same_value(d::torchvision_iou(na, nb), ref_torchvision(a, b)));
    REQUIRE(
        same_value(d::diou_nms_criterion<R, true>(na.x1, na.y1, na.x2, na.y2, na.area, nb, R(1)),
                   ref_diou(a, b, R(1))));
    REQUIRE(
        same_value(d::diou_nms_criterion<R, false>(na.x1, na.y1, na.x2, na.y2, na.area, nb, R(0.6)),
                   ref_diou(a, b, R(0.6))));
    REQUIRE(same_value(d::cluster_centre_distance(na, nb), ref_cluster_distance(a, b)));
    for (const R one : {R(0), R(1)}) {
      const auto va = d::make_voting_box(a, one);
      const auto vb = d::make_voting_box(b, one);
      REQUIRE(same_value(d::detectron_iou(va, vb, one), ref_detectron(a, b, one)));
      REQUIRE(same_value(d::kl_loss_iou(va, vb, one), ref_kl_loss(a, b, one)));
    }
    for (const bool normalized : {true, false}) {
      const R area_a = d::paddle_area(a[0], a[1], a[2], a[3], normalized);
      const R area_b = d::paddle_area(b[0], b[1], b[2], b[3], normalized);
      const R got = d::paddle_iou(a[0], a[1], a[2], a[3], area_a, b[0], b[1], b[2], b[3], area_b,
                                  normalized ? R(0) : R(1));
      REQUIRE(same_value(got, ref_paddle(a, b, normalized)));
    }
  }
  // the documented policies: a zero union is NaN in torchvision's formula (never suppresses),
  // 0 in Detectron's and Paddle's
  const std::array<R, 4> point{1, 1, 1, 1};
  CHECK(std::isnan(ref_torchvision(point, point)));
  CHECK(std::isnan(d::torchvision_iou(d::make_nms_box(R(1), R(1), R(1), R(1)),
                                      d::make_nms_box(R(1), R(1), R(1), R(1)))));
  CHECK(d::detectron_iou(d::make_voting_box(point, R(0)), d::make_voting_box(point, R(0)), R(0)) ==
        R(0));
}

TEST_CASE("nms toolkit: pycocotools_iou is bbIou", "[nms_toolkit]") {
  struct coco_box {
    double x, y, w, h, area;
  };
  const auto box = [](double x, double y, double w, double h) {
    return coco_box{x, y, w, h, w * h};
  };
  CHECK(cvk::detail::pycocotools_iou(box(0, 0, 2, 2), box(1, 1, 2, 2), false) == 1.0 / 7.0);
  CHECK(cvk::detail::pycocotools_iou(box(0, 0, 2, 2), box(1, 1, 2, 2), true) == 0.25);
  CHECK(cvk::detail::pycocotools_iou(box(0, 0, 1, 1), box(1, 0, 1, 1), false) == 0.0);
  CHECK(cvk::detail::pycocotools_iou(box(0, 0, 0, 0), box(0, 0, 0, 0), false) == 0.0);
}

// ---------------------------------------------------------------------------------------------
// Memory: the matrix family keeps only per-thread scratch leases, which release frees

TEST_CASE("nms toolkit: the matrix family's kept memory is the thread's scratch", "[nms_toolkit]") {
  cvk::rng gen(71);
  std::vector<std::array<float, 4>> boxes;
  std::vector<float> scores;
  for (int i = 0; i < 3000; ++i) {
    const auto x = static_cast<float>(gen.uniform<double>(0.0, 1000.0));
    const auto y = static_cast<float>(gen.uniform<double>(0.0, 1000.0));
    boxes.push_back({x, y, x + 20.0f, y + 20.0f});
    scores.push_back(static_cast<float>(gen.uniform<double>(0.0, 1.0)));
  }
  cvk::release_thread_scratch();
  REQUIRE(cvk::thread_scratch_bytes() == 0);
  const auto decayed = cvk::matrix_nms(boxes, scores, {.threads = 1});
  const auto fast = cvk::fast_nms(boxes, scores, 0.5, {.threads = 1});
  const auto clustered =
      cvk::cluster_nms(boxes, scores, 0.5, {.penalty = cvk::cluster_penalty::score});
  CHECK(decayed.indices.size() == 3000);
  CHECK(fast.size() > 0);
  CHECK(clustered.indices.size() > 0);
  // the columns, grid spans, coordinate copies and positions were leased: kept for the next call
  CHECK(cvk::thread_scratch_bytes() > 3000 * 5 * sizeof(float));
  cvk::release_thread_scratch();
  CHECK(cvk::thread_scratch_bytes() == 0);
}
