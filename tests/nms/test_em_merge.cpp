// cvk — computer-vision kernels, header-only C++20.
// Tests of cvk/nms/em_merge.hpp: the EM-Merger on synthetic dense shelves (one detection per
// object) and isolated clusters (exactly the best candidate); the mixture-collapse pieces against
// hand computations and plain O(n³) / plain-EM references written here from the reference code's
// definitions (CollapsingMoG.py); independence of the input order, layout, type, format and
// scale; the filters, the NMS fallbacks and the errors.
// SPDX-License-Identifier: MIT
#include <algorithm>
#include <array>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#if defined(__linux__)
#  include <sys/resource.h>
#  include <unistd.h>

#  include <fstream>
#endif

#include <cvk/core.hpp>
#include <cvk/nms.hpp>
#include <cvk/nms/em_merge.hpp>

#include "support/error_inputs.hpp"
#include "support/layouts.hpp"

namespace {

using cvk::index_t;
using cvk::detail::em_gaussian;
template <class T>
using boxes_t = std::vector<std::array<T, 4>>;

std::vector<index_t> to_vector(const cvk::tensor<index_t, 1>& t) {
  return std::vector<index_t>(t.begin(), t.end());
}

template <class T>
double iou(const std::array<T, 4>& a, const std::array<T, 4>& b) {
  const double w = std::max(0.0, std::min<double>(a[2], b[2]) - std::max<double>(a[0], b[0]));
  const double h = std::max(0.0, std::min<double>(a[3], b[3]) - std::max<double>(a[1], b[1]));
  const double inter = w * h;
  const double area_a = (double(a[2]) - double(a[0])) * (double(a[3]) - double(a[1]));
  const double area_b = (double(b[2]) - double(b[0])) * (double(b[3]) - double(b[1]));
  return inter / (area_a + area_b - inter);
}

// ---------------------------------------------------------------------------------------------
// Scenes

/// Detections of a dense scene: candidate boxes, their confidences and soft-IoU scores, the
/// ground-truth object each candidate was drawn from.
template <class T>
struct scene {
  boxes_t<T> boxes;
  std::vector<T> scores;
  std::vector<T> soft_iou;
  boxes_t<double> truth;
  std::vector<std::size_t> object;
};

/// `count` candidates of the object `truth`: centre jittered by N(0, jitter·size), sides scaled
/// by exp(N(0, 1.6·jitter)); confidence uniform in [min_score, 1) or, `correlated`, following
/// the candidate's IoU with the object (as a detector's does); soft-IoU = IoU + N(0, 0.05).
template <class T>
void add_candidates(cvk::rng& gen, scene<T>& s, const std::array<double, 4>& truth,
                    std::size_t count, double jitter, double min_score, bool correlated) {
  const double w = truth[2] - truth[0];
  const double h = truth[3] - truth[1];
  const double cx = 0.5 * (truth[0] + truth[2]);
  const double cy = 0.5 * (truth[1] + truth[3]);
  for (std::size_t c = 0; c < count; ++c) {
    const double x = cx + gen.normal(0.0, jitter * w);
    const double y = cy + gen.normal(0.0, jitter * h);
    const double bw = w * std::exp(gen.normal(0.0, 1.6 * jitter));
    const double bh = h * std::exp(gen.normal(0.0, 1.6 * jitter));
    const std::array<T, 4> box = {static_cast<T>(x - bw / 2), static_cast<T>(y - bh / 2),
                                  static_cast<T>(x + bw / 2), static_cast<T>(y + bh / 2)};
    const double overlap =
        iou(std::array<double, 4>{double(box[0]), double(box[1]), double(box[2]), double(box[3])},
            truth);
    s.boxes.push_back(box);
    s.scores.push_back(static_cast<T>(
        correlated ? std::clamp(0.1 + 0.9 * overlap + gen.normal(0.0, 0.1), min_score, 1.0)
                   : gen.uniform(min_score, 1.0)));
    s.soft_iou.push_back(static_cast<T>(std::clamp(overlap + gen.normal(0.0, 0.05), 0.0, 1.0)));
    s.object.push_back(s.truth.size() - 1);
  }
}

/// A shelf of 10 rows × 15 products; neighbouring products overlap by 15% of their size;
/// 5–20 candidates each, jittered by 10%, confidences following the IoU. `varied`: every row
/// and product has its own size.
template <class T>
scene<T> make_shelf(std::uint64_t seed, bool varied) {
  cvk::rng gen(seed);
  scene<T> s;
  double y = 10;
  for (int row = 0; row < 10; ++row) {
    const double h = varied ? gen.uniform(60.0, 120.0) : 90.0;
    double x = 10;
    for (int col = 0; col < 15; ++col) {
      const double w = varied ? gen.uniform(35.0, 85.0) : 60.0;
      s.truth.push_back({x, y, x + w, y + h});
      add_candidates(gen, s, s.truth.back(), 5 + static_cast<std::size_t>(gen.below(16)), 0.1, 0.06,
                     true);
      x += 0.85 * w;
    }
    y += 0.85 * h;
  }
  return s;
}

/// Clusters far apart from each other (no two objects' boxes within 2 box sizes).
template <class T>
scene<T> make_isolated(std::uint64_t seed, std::size_t clusters) {
  cvk::rng gen(seed);
  scene<T> s;
  for (std::size_t c = 0; c < clusters; ++c) {
    const double size = gen.uniform(20.0, 200.0);
    const double cx = 1000.0 * static_cast<double>(c % 5) + gen.uniform(-100.0, 100.0);
    const double cy = 1000.0 * static_cast<double>(c / 5) + gen.uniform(-100.0, 100.0);
    const double aspect = gen.uniform(0.5, 2.0);
    const double w = size * std::sqrt(aspect);
    const double h = size / std::sqrt(aspect);
    s.truth.push_back({cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2});
    add_candidates(gen, s, s.truth.back(), 1 + static_cast<std::size_t>(gen.below(30)), 0.03, 0.5,
                   false);
  }
  return s;
}

template <class T>
std::vector<double> final_scores(const scene<T>& s, bool with_soft) {
  std::vector<double> f(s.scores.size());
  for (std::size_t i = 0; i < f.size(); ++i) {
    f[i] =
        with_soft ? 0.5 * double(s.scores[i]) + 0.5 * double(s.soft_iou[i]) : double(s.scores[i]);
  }
  return f;
}

/// Checks the result's shape contract: rows are the input rows, scores the final scores,
/// ordered by final score descending (equal: lower index first).
template <class T, class Result>
void check_result_rows(const Result& r, const boxes_t<T>& boxes, const std::vector<double>& f) {
  const index_t k = r.indices.size();
  REQUIRE(r.boxes.extent(0) == k);
  REQUIRE(r.boxes.extent(1) == 4);
  REQUIRE(r.scores.size() == k);
  for (index_t i = 0; i < k; ++i) {
    const auto idx = static_cast<std::size_t>(r.indices(i));
    for (index_t c = 0; c < 4; ++c) {
      CHECK(r.boxes(i, c) == boxes[idx][static_cast<std::size_t>(c)]);
    }
    CHECK(r.scores(i) == static_cast<T>(f[idx]));
    if (i > 0) {
      const auto prev = static_cast<std::size_t>(r.indices(i - 1));
      CHECK((f[prev] > f[idx] || (f[prev] == f[idx] && prev < idx)));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Plain references written from CollapsingMoG.py (O(n³) agglomeration, the hard-assignment EM).

std::vector<em_gaussian> plain_agglomerate(const std::vector<em_gaussian>& input, std::size_t k) {
  std::vector<em_gaussian> nodes = input;
  std::vector<bool> alive(nodes.size(), true);
  std::size_t live = nodes.size();
  while (live > std::max<std::size_t>(k, 1)) {
    double best = std::numeric_limits<double>::infinity();
    std::size_t bi = 0;
    std::size_t bj = 0;
    for (std::size_t i = 0; i < nodes.size(); ++i) {
      if (!alive[i]) continue;
      for (std::size_t j = i + 1; j < nodes.size(); ++j) {
        if (!alive[j]) continue;
        const double d2 = cvk::detail::em_distance2(nodes[i], nodes[j]);
        if (d2 < best) {  // first (lowest i, then lowest j) wins ties
          best = d2;
          bi = i;
          bj = j;
        }
      }
    }
    nodes.push_back(cvk::detail::em_moment_merge(nodes[bi], nodes[bj]));
    alive[bi] = false;
    alive[bj] = false;
    alive.push_back(true);
    --live;
  }
  std::vector<em_gaussian> result;
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    if (alive[i]) result.push_back(nodes[i]);
  }
  return result;
}

struct plain_em_result {
  std::vector<em_gaussian> mixture;
  std::vector<std::size_t> assignment;
  std::vector<double> objective;
};

plain_em_result plain_collapse(const std::vector<em_gaussian>& f, std::vector<em_gaussian> g,
                               int max_iterations, double tolerance) {
  const auto assign = [&](const std::vector<em_gaussian>& mix, std::vector<std::size_t>& a) {
    a.assign(f.size(), 0);
    double d = 0;
    for (std::size_t t = 0; t < f.size(); ++t) {
      double best = cvk::detail::em_kl(f[t], mix[0]);
      for (std::size_t j = 1; j < mix.size(); ++j) {
        const double kl = cvk::detail::em_kl(f[t], mix[j]);
        if (kl < best) {
          best = kl;
          a[t] = j;
        }
      }
      d += f[t].weight * best;
    }
    return d;
  };
  plain_em_result r;
  double d = assign(g, r.assignment);
  r.objective.push_back(d);
  for (int it = 0; it < max_iterations; ++it) {
    std::vector<em_gaussian> next = g;
    for (std::size_t j = 0; j < g.size(); ++j) {
      double beta = 0;
      double mx = 0;
      double my = 0;
      for (std::size_t t = 0; t < f.size(); ++t) {
        if (r.assignment[t] != j) continue;
        beta += f[t].weight;
        mx += f[t].weight * f[t].mean_x;
        my += f[t].weight * f[t].mean_y;
      }
      if (beta == 0) continue;
      mx /= beta;
      my /= beta;
      double vx = 0;
      double vy = 0;
      for (std::size_t t = 0; t < f.size(); ++t) {
        if (r.assignment[t] != j) continue;
        vx += f[t].weight * (f[t].var_x + (f[t].mean_x - mx) * (f[t].mean_x - mx));
        vy += f[t].weight * (f[t].var_y + (f[t].mean_y - my) * (f[t].mean_y - my));
      }
      next[j] = {beta, mx, my, vx / beta, vy / beta};
    }
    std::vector<std::size_t> a;
    const double nd = assign(next, a);
    if (nd > d) break;
    g = next;
    r.assignment = a;
    r.objective.push_back(nd);
    if (d - nd <= tolerance) break;
    d = nd;
  }
  r.mixture = g;
  return r;
}

std::vector<em_gaussian> random_mixture(cvk::rng& gen, std::size_t n, bool lattice) {
  std::vector<em_gaussian> m(n);
  for (auto& g : m) {
    if (lattice) {  // small integer lattice: duplicate means and equal distances
      g = {1.0 + static_cast<double>(gen.below(3)), static_cast<double>(gen.below(6)),
           static_cast<double>(gen.below(6)), 1.0 + static_cast<double>(gen.below(4)),
           1.0 + static_cast<double>(gen.below(4))};
    } else {
      g = {gen.uniform(0.1, 1.0), gen.uniform(0.0, 100.0), gen.uniform(0.0, 100.0),
           gen.uniform(1.0, 30.0), gen.uniform(1.0, 30.0)};
    }
  }
  return m;
}

bool same_gaussian(const em_gaussian& a, const em_gaussian& b) {
  return a.weight == b.weight && a.mean_x == b.mean_x && a.mean_y == b.mean_y &&
         a.var_x == b.var_x && a.var_y == b.var_y;
}

template <class T>
boxes_t<T> permuted(const boxes_t<T>& v, const std::vector<std::size_t>& p) {
  boxes_t<T> r(v.size());
  for (std::size_t i = 0; i < p.size(); ++i) r[i] = v[p[i]];
  return r;
}

template <class T>
std::vector<T> permuted(const std::vector<T>& v, const std::vector<std::size_t>& p) {
  std::vector<T> r(v.size());
  for (std::size_t i = 0; i < p.size(); ++i) r[i] = v[p[i]];
  return r;
}

std::vector<std::size_t> random_permutation(cvk::rng& gen, std::size_t n) {
  std::vector<std::size_t> p(n);
  std::iota(p.begin(), p.end(), std::size_t{0});
  for (std::size_t i = n; i > 1; --i) std::swap(p[i - 1], p[gen.below(i)]);
  return p;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Dense scenes

TEMPLATE_TEST_CASE("em_merge: a dense shelf gives one detection per object", "[em_merge]", float,
                   double) {
  using T = TestType;
  // With 5–20 candidates per object, stray candidates bridge neighbouring products at the
  // reference's heat threshold (4.5/255 of the peak): the shelf is one region whose k exceeds
  // max_components, resolved by the NMS fallback. A heat threshold of 0.1 splits the shelf into
  // small regions, and max_components 1000 runs EM on the whole shelf; both resolve the
  // duplicates NMS leaves.
  struct config {
    const char* name;
    cvk::em_merge_options options;
    std::size_t max_duplicates;
  };
  const std::array<config, 3> configs = {{{"defaults", {}, 5},
                                          {"heat_threshold 0.1", {.heat_threshold = 0.1}, 2},
                                          {"max_components 1000", {.max_components = 1000}, 2}}};
  for (const config& c : configs) {
    for (const bool varied : {false, true}) {
      for (const bool with_soft : {false, true}) {
        const std::uint64_t seed = 11 + (varied ? 1U : 0U) + (with_soft ? 2U : 0U);
        const scene<T> s = make_shelf<T>(seed, varied);
        INFO(c.name << ", varied " << varied << ", soft-IoU " << with_soft << ", N "
                    << s.boxes.size());
        REQUIRE(s.truth.size() == 150);
        const auto r = with_soft ? cvk::em_merge(s.boxes, s.scores, s.soft_iou, c.options)
                                 : cvk::em_merge(s.boxes, s.scores, c.options);
        check_result_rows(r, s.boxes, final_scores(s, with_soft));
        const auto k = static_cast<std::size_t>(r.indices.size());
        CHECK(k >= 147);
        CHECK(k <= 155);
        // every object is found: some result overlaps its ground truth by IoU > 0.5 (without
        // the soft-IoU score the kept candidate is the most confident one, which may be off)
        std::size_t found = 0;
        for (const auto& truth : s.truth) {
          double best = 0;
          for (index_t i = 0; i < r.indices.size(); ++i) {
            const auto& b = s.boxes[static_cast<std::size_t>(r.indices(i))];
            best = std::max(best, iou(std::array<double, 4>{double(b[0]), double(b[1]),
                                                            double(b[2]), double(b[3])},
                                      truth));
          }
          found += best > 0.5 ? 1 : 0;
        }
        if (with_soft) {
          CHECK(found == s.truth.size());
        } else {
          CHECK(found + 2 >= s.truth.size());
        }
        // few results come from the same object's candidates
        std::vector<std::size_t> objects;
        for (const index_t i : r.indices) objects.push_back(s.object[static_cast<std::size_t>(i)]);
        std::sort(objects.begin(), objects.end());
        const auto distinct =
            static_cast<std::size_t>(std::unique(objects.begin(), objects.end()) - objects.begin());
        CHECK(distinct + c.max_duplicates >= k);
      }
    }
  }
}

TEMPLATE_TEST_CASE("em_merge: an isolated cluster gives exactly its best candidate", "[em_merge]",
                   float, double) {
  using T = TestType;
  for (std::uint64_t seed = 1; seed <= 6; ++seed) {
    for (const bool with_soft : {false, true}) {
      const scene<T> s = make_isolated<T>(seed, 20);
      INFO("seed " << seed << ", soft-IoU " << with_soft);
      const std::vector<double> f = final_scores(s, with_soft);
      const auto r = with_soft ? cvk::em_merge(s.boxes, s.scores, s.soft_iou)
                               : cvk::em_merge(s.boxes, s.scores);
      check_result_rows(r, s.boxes, f);
      // the best candidate of every cluster (highest final score, lowest index on ties)
      std::vector<index_t> expected;
      for (std::size_t o = 0; o < s.truth.size(); ++o) {
        index_t best = -1;
        for (std::size_t i = 0; i < s.boxes.size(); ++i) {
          if (s.object[i] != o) continue;
          if (best < 0 || f[i] > f[static_cast<std::size_t>(best)]) best = static_cast<index_t>(i);
        }
        expected.push_back(best);
      }
      std::vector<index_t> got = to_vector(r.indices);
      std::sort(expected.begin(), expected.end());
      std::sort(got.begin(), got.end());
      CHECK(got == expected);
    }
  }
}

TEST_CASE("em_merge: single detections and single clusters", "[em_merge]") {
  const boxes_t<double> one = {{10, 20, 50, 80}};
  const std::vector<double> score = {0.7};
  const auto r = cvk::em_merge(one, score);
  REQUIRE(r.indices.size() == 1);
  CHECK(r.indices(0) == 0);
  CHECK(r.scores(0) == 0.7);
  // three near-identical boxes: one result, the best scored
  const boxes_t<double> three = {{10, 20, 50, 80}, {11, 21, 51, 81}, {9, 19, 49, 79}};
  const std::vector<double> scores = {0.6, 0.9, 0.8};
  CHECK(to_vector(cvk::em_merge(three, scores).indices) == std::vector<index_t>{1});
  // with soft-IoU the blend picks: 0.5·0.6 + 0.5·1.0 = 0.8 > 0.5·0.9 + 0.5·0.6 = 0.75
  const std::vector<double> soft = {1.0, 0.6, 0.5};
  const auto blended = cvk::em_merge(three, scores, soft);
  CHECK(to_vector(blended.indices) == std::vector<index_t>{0});
  CHECK(blended.scores(0) == Approx(0.8));
  // soft_iou_weight 0 gives the confidence ranking back
  CHECK(to_vector(cvk::em_merge(three, scores, soft, {.soft_iou_weight = 0.0}).indices) ==
        std::vector<index_t>{1});
}

// ---------------------------------------------------------------------------------------------
// The mixture collapse

TEST_CASE("em_merge: moment matching and KL by hand", "[em_merge]") {
  using cvk::detail::em_kl;
  using cvk::detail::em_moment_merge;
  // a = (w 1, μ (0, 0), σ² (1, 4)), b = (w 3, μ (4, -2), σ² (2, 1)):
  // μ = (3, -1.5); σx² = E[x²] - μx² = (1·1 + 3·(2 + 16))/4 - 9 = 4.75;
  // σy² = (1·4 + 3·(1 + 4))/4 - 2.25 = 2.5
  const em_gaussian a{1, 0, 0, 1, 4};
  const em_gaussian b{3, 4, -2, 2, 1};
  const em_gaussian m = em_moment_merge(a, b);
  CHECK(m.weight == 4);
  CHECK(m.mean_x == Approx(3.0).epsilon(1e-15));
  CHECK(m.mean_y == Approx(-1.5).epsilon(1e-15));
  CHECK(m.var_x == Approx(4.75).epsilon(1e-15));
  CHECK(m.var_y == Approx(2.5).epsilon(1e-15));
  CHECK(same_gaussian(em_moment_merge(b, a), m));  // symmetric bit for bit
  // equal means stay exact, variances average by weight
  const em_gaussian c = em_moment_merge({1, 0.1, 0.7, 2, 3}, {3, 0.1, 0.7, 6, 1});
  CHECK(c.mean_x == 0.1);
  CHECK(c.mean_y == 0.7);
  CHECK(c.var_x == Approx(5.0));
  CHECK(c.var_y == Approx(1.5));
  // KL(N((0,0), I) || N((1,0), 2I)) = ½[(ln 2 + 2/2 - 1) + (ln 2 + 1/2 - 1)] = ln 2 - 1/4
  CHECK(em_kl({1, 0, 0, 1, 1}, {1, 1, 0, 2, 2}) == Approx(std::log(2.0) - 0.25).epsilon(1e-14));
  CHECK(em_kl(a, a) == Approx(0.0).margin(1e-15));
  cvk::rng gen(5);
  for (int i = 0; i < 200; ++i) {
    const auto pair = random_mixture(gen, 2, false);
    CHECK(em_kl(pair[0], pair[1]) >= 0.0);
  }
}

TEST_CASE("em_merge: collapsing identical Gaussians gives that Gaussian", "[em_merge]") {
  const em_gaussian g{0.5, 12.5, -3.25, 4.0, 9.0};
  const std::vector<em_gaussian> two = {g, g};
  const auto init = cvk::detail::em_agglomerate(two, 1);
  REQUIRE(init.size() == 1);
  CHECK(init[0].weight == 1.0);
  CHECK(init[0].mean_x == g.mean_x);
  CHECK(init[0].mean_y == g.mean_y);
  CHECK(init[0].var_x == g.var_x);
  CHECK(init[0].var_y == g.var_y);
  const auto collapsed = cvk::detail::em_collapse(two, init, 20, 1e-10);
  REQUIRE(collapsed.mixture.size() == 1);
  CHECK(collapsed.mixture[0].mean_x == g.mean_x);
  CHECK(collapsed.mixture[0].var_y == g.var_y);
  CHECK(collapsed.objective.front() == Approx(0.0).margin(1e-15));
  CHECK(collapsed.converged);
  // k >= n: the input unchanged
  const auto same = cvk::detail::em_agglomerate(two, 2);
  REQUIRE(same.size() == 2);
  CHECK(same_gaussian(same[1], g));
}

TEST_CASE("em_merge: agglomeration merges the closest means first", "[em_merge]") {
  // means at x = 0, 1, 3: (0, 1) merge first; the survivor order is by id (2, then the merge 3)
  const std::vector<em_gaussian> line = {{1, 0, 0, 1, 1}, {1, 1, 0, 1, 1}, {1, 3, 0, 1, 1}};
  const auto two = cvk::detail::em_agglomerate(line, 2);
  REQUIRE(two.size() == 2);
  CHECK(two[0].mean_x == 3);
  CHECK(two[1].mean_x == 0.5);
  CHECK(two[1].var_x == 1.25);  // 1 + (1·1/2)·1²/2
  CHECK(two[1].weight == 2);
  // then the merge (w 2, x 0.5) with x = 3: x = (1 + 3)/3 = 4/3
  const auto one = cvk::detail::em_agglomerate(line, 1);
  REQUIRE(one.size() == 1);
  CHECK(one[0].mean_x == Approx(4.0 / 3.0));
}

TEST_CASE("em_merge: agglomeration equals the plain O(n^3) closest-pair loop", "[em_merge]") {
  cvk::rng gen(7);
  for (int trial = 0; trial < 300; ++trial) {
    const bool lattice = trial % 2 == 0;
    const std::size_t n = 1 + static_cast<std::size_t>(gen.below(lattice ? 40 : 120));
    const std::size_t k = 1 + static_cast<std::size_t>(gen.below(n));
    const auto input = random_mixture(gen, n, lattice);
    INFO("trial " << trial << ", n " << n << ", k " << k);
    const auto got = cvk::detail::em_agglomerate(input, k);
    const auto expected = plain_agglomerate(input, k);
    REQUIRE(got.size() == expected.size());
    bool same = true;
    for (std::size_t i = 0; i < got.size(); ++i) same = same && same_gaussian(got[i], expected[i]);
    CHECK(same);
  }
  // many exact duplicates (a dense cluster of integer boxes)
  std::vector<em_gaussian> dup(200, em_gaussian{1, 5, 5, 2, 2});
  for (std::size_t i = 0; i < dup.size(); i += 3) dup[i].mean_x = 6;
  const auto got = cvk::detail::em_agglomerate(dup, 2);
  const auto expected = plain_agglomerate(dup, 2);
  REQUIRE(got.size() == 2);
  CHECK(same_gaussian(got[0], expected[0]));
  CHECK(same_gaussian(got[1], expected[1]));
}

TEST_CASE("em_merge: the EM objective never increases and equals the plain EM", "[em_merge]") {
  cvk::rng gen(13);
  for (int trial = 0; trial < 60; ++trial) {
    const std::size_t n = 20 + static_cast<std::size_t>(gen.below(200));
    const std::size_t k = 1 + static_cast<std::size_t>(gen.below(12));
    auto input = random_mixture(gen, n, trial % 3 == 0);
    double total = 0;
    for (const auto& g : input) total += g.weight;
    for (auto& g : input) g.weight /= total;
    INFO("trial " << trial << ", n " << n << ", k " << k);
    const auto init = cvk::detail::em_agglomerate(input, k);
    const auto got = cvk::detail::em_collapse(input, init, 20, 1e-10);
    const auto expected = plain_collapse(input, init, 20, 1e-10);
    REQUIRE(got.objective.size() >= 1);
    CHECK(got.iterations == static_cast<int>(got.objective.size()) - 1);
    for (std::size_t i = 1; i < got.objective.size(); ++i) {
      CHECK(got.objective[i] <= got.objective[i - 1]);
    }
    REQUIRE(got.objective.size() == expected.objective.size());
    for (std::size_t i = 0; i < got.objective.size(); ++i) {
      CHECK(got.objective[i] == Approx(expected.objective[i]).epsilon(1e-12));
    }
    REQUIRE(got.mixture.size() == expected.mixture.size());
    for (std::size_t j = 0; j < got.mixture.size(); ++j) {
      CHECK(got.mixture[j].mean_x == Approx(expected.mixture[j].mean_x).epsilon(1e-12));
      CHECK(got.mixture[j].var_y == Approx(expected.mixture[j].var_y).epsilon(1e-12));
    }
    for (std::size_t t = 0; t < n; ++t) {
      CHECK(static_cast<std::size_t>(got.assignment[t]) == expected.assignment[t]);
    }
    // converged: every component with members is their moment-matched Gaussian
    if (got.converged) {
      for (std::size_t j = 0; j < got.mixture.size(); ++j) {
        double beta = 0;
        double mx = 0;
        for (std::size_t t = 0; t < n; ++t) {
          if (static_cast<std::size_t>(got.assignment[t]) != j) continue;
          beta += input[t].weight;
          mx += input[t].weight * input[t].mean_x;
        }
        if (beta > 0) CHECK(got.mixture[j].mean_x == Approx(mx / beta).epsilon(1e-12));
      }
    }
  }
}

TEST_CASE("em_merge: two separated groups collapse to their moment matches", "[em_merge]") {
  // group A near (0, 0), group B near (100, 0); k = 2 gives exactly the two group merges
  std::vector<em_gaussian> input = {{0.1, 0, 0, 4, 4},
                                    {0.2, 2, 1, 4, 9},
                                    {0.1, -1, 2, 1, 1},
                                    {0.3, 100, 0, 4, 4},
                                    {0.3, 98, -2, 9, 4}};
  const auto got = cvk::detail::em_collapse(input, cvk::detail::em_agglomerate(input, 2), 20, 0);
  REQUIRE(got.mixture.size() == 2);
  CHECK(got.converged);
  const auto a =
      cvk::detail::em_moment_merge(cvk::detail::em_moment_merge(input[0], input[1]), input[2]);
  const auto b = cvk::detail::em_moment_merge(input[3], input[4]);
  const em_gaussian& ga = got.mixture[0].mean_x < 50 ? got.mixture[0] : got.mixture[1];
  const em_gaussian& gb = got.mixture[0].mean_x < 50 ? got.mixture[1] : got.mixture[0];
  CHECK(ga.weight == Approx(a.weight));
  CHECK(ga.mean_x == Approx(a.mean_x));
  CHECK(ga.mean_y == Approx(a.mean_y));
  CHECK(ga.var_x == Approx(a.var_x));
  CHECK(ga.var_y == Approx(a.var_y));
  CHECK(gb.mean_x == Approx(b.mean_x));
  CHECK(gb.var_x == Approx(b.var_x));
  // hand values of the pair merge: μx = (0.3·100 + 0.3·98)/0.6 = 99, σx² = (4 + 9)/2 + (0.15/0.6)·4
  CHECK(b.mean_x == Approx(99.0));
  CHECK(b.var_x == Approx(6.5 + 1.0));
}

// ---------------------------------------------------------------------------------------------
// Determinism and inputs

TEMPLATE_TEST_CASE("em_merge: the input order does not change the result", "[em_merge]", float,
                   double) {
  using T = TestType;
  cvk::rng gen(21);
  for (int trial = 0; trial < 3; ++trial) {
    const scene<T> s = trial == 0
                           ? make_isolated<T>(40 + static_cast<std::uint64_t>(trial), 20)
                           : make_shelf<T>(40 + static_cast<std::uint64_t>(trial), trial == 2);
    const auto reference = cvk::em_merge(s.boxes, s.scores, s.soft_iou);
    std::vector<index_t> expected = to_vector(reference.indices);
    std::sort(expected.begin(), expected.end());
    for (int p = 0; p < 2; ++p) {
      const auto perm = random_permutation(gen, s.boxes.size());
      const auto r = cvk::em_merge(permuted(s.boxes, perm), permuted(s.scores, perm),
                                   permuted(s.soft_iou, perm));
      std::vector<index_t> got;
      for (const index_t i : r.indices)
        got.push_back(static_cast<index_t>(perm[static_cast<std::size_t>(i)]));
      std::sort(got.begin(), got.end());
      CHECK(got == expected);
      // the same scores in the same order
      REQUIRE(r.scores.size() == reference.scores.size());
      CHECK(std::equal(r.scores.begin(), r.scores.end(), reference.scores.begin()));
    }
  }
  // exact duplicates: one result, the lower index, whatever the order
  const boxes_t<T> dup = {{0, 0, 10, 20}, {0, 0, 10, 20}, {0, 0, 10, 20}};
  const std::vector<T> scores(3, T(0.5));
  CHECK(to_vector(cvk::em_merge(dup, scores).indices) == std::vector<index_t>{0});
}

TEMPLATE_TEST_CASE("em_merge: any strides, containers, formats, scale and translation",
                   "[em_merge]", float, double) {
  using T = TestType;
  const scene<T> s = make_shelf<T>(77, true);
  const std::vector<index_t> expected = to_vector(cvk::em_merge(s.boxes, s.scores).indices);
  for (const auto l : cvk_test::all_layouts) {
    INFO(cvk_test::to_string(l));
    const auto stored = cvk_test::with_layout(s.boxes, l, std::numeric_limits<T>::quiet_NaN());
    CHECK(to_vector(cvk::em_merge(stored.view, s.scores).indices) == expected);
  }
  // scores with stride 2, walked backwards
  const std::size_t n = s.scores.size();
  std::vector<T> spread(2 * n, T(-1));
  for (std::size_t i = 0; i < n; ++i) spread[2 * (n - 1 - i)] = s.scores[i];
  const auto backwards =
      cvk::view(spread.data() + 2 * (n - 1), {static_cast<index_t>(n)}, {index_t{-2}});
  CHECK(to_vector(cvk::em_merge(s.boxes, backwards).indices) == expected);
  // cvk::tensor inputs
  cvk::tensor<T, 2> box_tensor(static_cast<index_t>(n), index_t{4});
  cvk::tensor<T, 1> score_tensor(static_cast<index_t>(n));
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t c = 0; c < 4; ++c) {
      box_tensor(static_cast<index_t>(i), static_cast<index_t>(c)) = s.boxes[i][c];
    }
    score_tensor(static_cast<index_t>(i)) = s.scores[i];
  }
  CHECK(to_vector(cvk::em_merge(box_tensor, score_tensor).indices) == expected);
  // a uniform scale by 4 (exact) and a translation of integer boxes change nothing
  boxes_t<T> scaled = s.boxes;
  for (auto& b : scaled) {
    for (auto& v : b) v *= T(4);
  }
  CHECK(to_vector(cvk::em_merge(scaled, s.scores).indices) == expected);
  boxes_t<T> rounded = s.boxes;
  for (auto& b : rounded) {
    for (auto& v : b) v = std::round(v);
  }
  const std::vector<index_t> rounded_expected = to_vector(cvk::em_merge(rounded, s.scores).indices);
  boxes_t<T> moved = rounded;
  for (auto& b : moved) {
    b[0] += T(512);
    b[2] += T(512);
    b[1] -= T(256);
    b[3] -= T(256);
  }
  CHECK(to_vector(cvk::em_merge(moved, s.scores).indices) == rounded_expected);
  // integer boxes (computed in double) equal the same boxes in double
  boxes_t<int> ints(n);
  boxes_t<double> as_double(n);
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t c = 0; c < 4; ++c) {
      ints[i][c] = static_cast<int>(rounded[i][c]);
      as_double[i][c] = static_cast<double>(ints[i][c]);
    }
  }
  const auto from_ints = cvk::em_merge(ints, s.scores);
  static_assert(std::is_same_v<decltype(from_ints), const cvk::em_merge_result<double>>);
  CHECK(to_vector(from_ints.indices) == to_vector(cvk::em_merge(as_double, s.scores).indices));
  // the same integer boxes written as xywh and cxcywh (exact conversions)
  boxes_t<T> xywh(n);
  boxes_t<T> cxcywh(n);
  for (std::size_t i = 0; i < n; ++i) {
    const auto& b = rounded[i];
    xywh[i] = {b[0], b[1], b[2] - b[0], b[3] - b[1]};
    cxcywh[i] = {(b[0] + b[2]) / 2, (b[1] + b[3]) / 2, b[2] - b[0], b[3] - b[1]};
  }
  CHECK(to_vector(cvk::em_merge(xywh, s.scores, {.format = cvk::box_format::xywh}).indices) ==
        rounded_expected);
  const auto from_centre = cvk::em_merge(cxcywh, s.scores, {.format = cvk::box_format::cxcywh});
  CHECK(to_vector(from_centre.indices) == rounded_expected);
  REQUIRE(from_centre.indices.size() > 0);
  CHECK(from_centre.boxes(0, 2) == cxcywh[static_cast<std::size_t>(from_centre.indices(0))][2]);
}

// ---------------------------------------------------------------------------------------------
// Filters and fallbacks

TEST_CASE("em_merge: filters drop weak, invalid and degenerate detections", "[em_merge]") {
  const scene<double> s = make_isolated<double>(3, 10);
  const auto base = cvk::em_merge(s.boxes, s.scores, s.soft_iou);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  // appended junk: NaN score, score 0, negative score, below threshold, NaN soft-IoU,
  // infinite and NaN coordinates, zero-area and inverted boxes
  boxes_t<double> boxes = s.boxes;
  std::vector<double> scores = s.scores;
  std::vector<double> soft = s.soft_iou;
  const std::array<double, 4> far = {5000, 5000, 5050, 5080};
  const auto add = [&](const std::array<double, 4>& b, double score, double q) {
    boxes.push_back(b);
    scores.push_back(score);
    soft.push_back(q);
  };
  add(far, nan, 0.5);
  add(far, 0.0, 0.5);
  add(far, -1.0, 0.5);
  add(far, 0.05, 0.5);  // not > 0.05
  add(far, 0.9, nan);
  add({5000, 5000, inf, 5080}, 0.9, 0.5);
  add({nan, 5000, 5050, 5080}, 0.9, 0.5);
  add({5000, 5000, 5000, 5080}, 0.9, 0.5);
  add({5050, 5000, 5000, 5080}, 0.9, 0.5);
  const auto r = cvk::em_merge(boxes, scores, soft);
  CHECK(to_vector(r.indices) == to_vector(base.indices));
  // a negative score_threshold still drops scores <= 0
  CHECK(to_vector(cvk::em_merge(boxes, scores, soft, {.score_threshold = -5}).indices) ==
        to_vector(base.indices));
  // a score threshold above everything: empty
  CHECK(cvk::em_merge(boxes, scores, soft, {.score_threshold = 1.0}).indices.size() == 0);
  // empty input
  const boxes_t<float> none;
  const std::vector<float> no_scores;
  const auto empty = cvk::em_merge(none, no_scores);
  CHECK(empty.indices.size() == 0);
  CHECK(empty.boxes.extent(0) == 0);
  CHECK(empty.boxes.extent(1) == 4);
  CHECK(empty.scores.size() == 0);
}

TEST_CASE("em_merge: regions resolved by the NMS fallback equal greedy NMS", "[em_merge]") {
  // isolated clusters, every centre in a region (heat_threshold 0): with every region falling
  // back (max_region_detections 1, or max_components 1 and more than one estimated object is
  // impossible here, so use the detections cap), the result is greedy NMS at 0.3 by final score
  for (std::uint64_t seed = 1; seed <= 4; ++seed) {
    const scene<double> s = make_isolated<double>(seed, 20);
    const std::vector<double> f = final_scores(s, true);
    const auto r = cvk::em_merge(s.boxes, s.scores, s.soft_iou,
                                 {.heat_threshold = 0.0, .max_region_detections = 1});
    CHECK(to_vector(r.indices) == to_vector(cvk::nms(s.boxes, f, 0.3)));
  }
  // a row of touching objects: one region with several estimated objects; max_components 1
  // sends it to NMS
  scene<double> row;
  cvk::rng gen(9);
  for (int o = 0; o < 6; ++o) {
    const double x = 50.0 * o;
    row.truth.push_back({x, 0, x + 100, 100});  // neighbours overlap by half: shrunk boxes touch
    add_candidates(gen, row, row.truth.back(), 8, 0.03, 0.5, false);
  }
  const auto fallback =
      cvk::em_merge(row.boxes, row.scores, {.heat_threshold = 0.0, .max_components = 1});
  CHECK(to_vector(fallback.indices) == to_vector(cvk::nms(row.boxes, row.scores, 0.3)));
  // EM with no iterations (the agglomerative initialisation alone) and without the redundancy
  // step still gives one detection per object of an isolated scene
  const scene<double> iso = make_isolated<double>(8, 20);
  CHECK(cvk::em_merge(iso.boxes, iso.scores, {.max_iterations = 0}).indices.size() == 20);
  CHECK(cvk::em_merge(iso.boxes, iso.scores, {.redundancy_probability = 0.0}).indices.size() == 20);
}

// ---------------------------------------------------------------------------------------------
// Errors

TEST_CASE("em_merge: errors name the function, the argument and the shapes", "[em_merge]") {
  const boxes_t<float> seven(7, std::array<float, 4>{0, 0, 1, 1});
  const std::vector<float> five(5, 0.5f);
  const std::vector<float> scores(7, 0.5f);
  std::vector<float> flat(21, 0.0f);
  const auto seven_by_three = cvk::view(flat.data(), 7, 3);
  CHECK_THROWS_MATCHES(
      cvk::em_merge(seven, five), cvk::shape_error,
      Catch::Message("em_merge: scores must have 7 elements (one per box), got 5"));
  CHECK_THROWS_MATCHES(cvk::em_merge(seven_by_three, scores), cvk::shape_error,
                       Catch::Message("em_merge: boxes must be N×4, got 7×3"));
  CHECK_THROWS_MATCHES(
      cvk::em_merge(seven, scores, five), cvk::shape_error,
      Catch::Message("em_merge: soft_iou must have 7 elements (one per box), got 5"));
  const auto bad = [&](const cvk::em_merge_options& o, const char* message) {
    INFO(message);
    CHECK_THROWS_MATCHES(cvk::em_merge(seven, scores, o), cvk::invalid_argument,
                         Catch::Message(message));
  };
  bad({.score_threshold = std::nan("")}, "em_merge: score_threshold must be a number, got nan");
  bad({.box_size_factor = 0.0}, "em_merge: box_size_factor must be in (0, 1], got 0");
  bad({.box_size_factor = 1.5}, "em_merge: box_size_factor must be in (0, 1], got 1.5");
  bad({.heat_threshold = 1.0}, "em_merge: heat_threshold must be in [0, 1), got 1");
  bad({.heat_threshold = -0.1}, "em_merge: heat_threshold must be in [0, 1), got -0.1");
  bad({.grid_resolution = 0}, "em_merge: grid_resolution must be >= 1, got 0");
  bad({.max_grid_cells = 0}, "em_merge: max_grid_cells must be >= 1, got 0");
  bad({.max_components = 0}, "em_merge: max_components must be >= 1, got 0");
  bad({.max_region_detections = -3}, "em_merge: max_region_detections must be >= 1, got -3");
  bad({.max_iterations = -1}, "em_merge: max_iterations must be >= 0, got -1");
  bad({.tolerance = -1e-3}, "em_merge: tolerance must be >= 0, got -0.001");
  bad({.redundancy_probability = 1.0}, "em_merge: redundancy_probability must be in [0, 1), got 1");
  bad({.candidate_sigmas = 0.0}, "em_merge: candidate_sigmas must be a positive number, got 0");
  bad({.soft_iou_weight = 2.0}, "em_merge: soft_iou_weight must be in [0, 1], got 2");
  bad({.nms_threshold = std::nan("")}, "em_merge: nms_threshold must be a number, got nan");
  CHECK_THROWS_AS(cvk::em_merge(seven, scores, scores, {.box_size_factor = -1}),
                  cvk::invalid_argument);
}

TEST_CASE(
    "em_merge: a heat map larger than memory is a cvk error naming max_grid_cells (issue 9 #8)",
    "[em_merge][regression]") {
  // Two boxes 1e7 apart with max_grid_cells at its maximum: the grid keeps cells of the median
  // box's size, about 10^14 cells. The old code ended in std::bad_alloc.
  const boxes_t<double> boxes = {{0, 0, 10, 10}, {1e7, 1e7, 1e7 + 10, 1e7 + 10}};
  const std::vector<double> scores = {0.9, 0.8};
  cvk::em_merge_options o;
  o.max_grid_cells = std::numeric_limits<index_t>::max();
  CHECK_THROWS_AS(cvk::em_merge(boxes, scores, o), cvk::out_of_range);
  CHECK_THROWS_WITH(cvk::em_merge(boxes, scores, o),
                    Catch::Contains("em_merge: options (max_grid_cells = "
                                    "9223372036854775807, a grid of ") &&
                        Catch::Contains("more than can be allocated"));
  // the default bound gives a coarse grid and a result
  CHECK(cvk::em_merge(boxes, scores).indices.size() == 2);
  // a box_format outside the enum is rejected too
  o = {};
  o.format = static_cast<cvk::box_format>(9);
  CHECK_THROWS_MATCHES(
      cvk::em_merge(boxes, scores, o), cvk::invalid_argument,
      Catch::Message(
          "em_merge: options.format must be xyxy, xywh, cxcywh or yxyx, got box_format(9)"));
}

#if defined(__has_feature)
#  if __has_feature(address_sanitizer) || __has_feature(memory_sanitizer)
#    define CVK_TEST_SANITIZED_ALLOCATOR 1
#  endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#  define CVK_TEST_SANITIZED_ALLOCATOR 1
#endif

#if defined(__linux__) && !defined(CVK_TEST_SANITIZED_ALLOCATOR)
namespace {

/// Caps this process's address space at its current size plus `headroom` bytes until destroyed.
class address_space_cap {
 public:
  explicit address_space_cap(std::size_t headroom) {
    getrlimit(RLIMIT_AS, &saved_);
    std::size_t pages = 0;
    std::ifstream("/proc/self/statm") >> pages;
    rlimit cap = saved_;
    cap.rlim_cur =
        static_cast<rlim_t>(pages * static_cast<std::size_t>(sysconf(_SC_PAGESIZE)) + headroom);
    applied_ = pages > 0 && (saved_.rlim_max == RLIM_INFINITY || cap.rlim_cur <= saved_.rlim_max) &&
               setrlimit(RLIMIT_AS, &cap) == 0;
  }
  address_space_cap(const address_space_cap&) = delete;
  address_space_cap& operator=(const address_space_cap&) = delete;
  ~address_space_cap() {
    if (applied_) setrlimit(RLIMIT_AS, &saved_);
  }
  [[nodiscard]] bool applied() const noexcept { return applied_; }

 private:
  rlimit saved_{};
  bool applied_ = false;
};

}  // namespace

TEST_CASE("em_merge: the label grid is allocated through the checked allocation (issue 9 leftover)",
          "[em_merge][regression]") {
  // Two boxes 1395 apart: the shrunk boxes are 5 wide, so cells are 5/8 = 0.625 and the grid is
  // 2241×2241 cells: a heat map of 8 bytes per cell, then a label grid of 4 bytes per cell. With
  // the address space capped at 10 bytes per cell more than in use, the heat map fits and the
  // labels do not. The old code allocated the labels unchecked: std::bad_alloc.
  const boxes_t<double> boxes = {{0, 0, 10, 10}, {1395, 1395, 1405, 1405}};
  const std::vector<double> scores = {0.9, 0.8};
  cvk::em_merge_options o;
  o.max_grid_cells = index_t{1} << 23;
  const index_t cells = index_t{2241} * 2241;
  std::string message;
  bool out_of_range = false;
  {
    const address_space_cap cap(static_cast<std::size_t>(cells) * 10);
    if (!cap.applied()) {
      WARN("cannot cap the address space here; the check did not run");
      return;
    }
    try {
      (void)cvk::em_merge(boxes, scores, o);
    } catch (const cvk::out_of_range& e) {
      out_of_range = true;
      message = e.what();
    } catch (const std::exception& e) {
      message = std::string("other exception: ") + e.what();
    }
  }
  INFO(message);
  CHECK(out_of_range);
  CHECK_THAT(message, Catch::Contains("em_merge: options (max_grid_cells = 8388608, a grid of "
                                      "2241×2241 cells) needs 5022081 elements of 4 bytes"));
}
#endif

TEST_CASE("errors table: em_merge (docs/errors.md)", "[em_merge][errors]") {
  const std::vector<float> buffer(8, 1.0F);
  const auto rank3 = cvk_test::rank3_view(buffer);
  const boxes_t<float> two = {{0, 0, 10, 10}, {20, 20, 30, 30}};
  const std::vector<float> scores = {0.9F, 0.8F};
  CHECK_THROWS_MATCHES(cvk::em_merge(rank3, scores), cvk::shape_error,
                       Catch::Message("em_merge: boxes must have rank 2, got rank 3 (2×2×2)"));
  CHECK_THROWS_AS(cvk::em_merge(two, scores, rank3), cvk::shape_error);
  CHECK_THROWS_AS(cvk::em_merge(cvk::view(buffer.data(), {-1, 4}), scores), cvk::shape_error);
  CHECK(cvk::em_merge(boxes_t<float>{}, std::vector<float>{}).indices.size() == 0);
  // 2^40 broadcast boxes: the detections cannot be allocated (the old code: std::bad_alloc)
  const std::array<float, 4> row{0, 0, 1, 1};
  const float score = 0.5F;
  const auto many = cvk_test::broadcast_rows(row.data(), cvk_test::huge_rows, 4);
  const auto many_scores = cvk_test::broadcast_values(&score, cvk_test::huge_rows);
  CHECK_THROWS_AS(cvk::em_merge(many, many_scores), cvk::out_of_range);
  CHECK_THROWS_WITH(cvk::em_merge(many, many_scores),
                    Catch::Contains("em_merge: boxes (1099511627776×4) needs 1099511627776"));
}
