// cvk — computer-vision kernels, header-only C++20.
// Tests of nms/detail/box_grid.hpp, the grid every NMS kernel shares: every pair of boxes with
// intersecting extents found (once with first_shared) against the plain all-pairs loop, on
// scenes with outliers, strips, points and mixed sizes; and the cost guards: on the inputs that
// used to make the grid kernels quadratic (padding boxes, NaN boxes, one far outlier, long thin
// strips, one NaN box) every grid-based operator performs about as many pair tests as on a
// normal scene of the same size (pair tests counted with CVK_COUNT_PAIR_TESTS, set for this
// executable in tests/CMakeLists.txt).
// SPDX-License-Identifier: MIT
#include <algorithm>
#include <array>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include <cvk/core.hpp>
#include <cvk/nms.hpp>
#include <cvk/nms/detail/box_grid.hpp>
#include <cvk/nms/rotated.hpp>

#include "support/nms_scenes.hpp"

namespace {

using cvk::index_t;
using cvk::detail::box_grid;
using cvk::detail::grid_bounds;
using cvk::detail::grid_span;

bool meet(const grid_bounds& a, const grid_bounds& b) {
  return a.xlo <= b.xhi && b.xlo <= a.xhi && a.ylo <= b.yhi && b.ylo <= a.yhi;
}

enum class layout { spread, mixed_sizes, far_outliers, strips, points, one_spot };

std::vector<grid_bounds> random_bounds(cvk::rng& gen, layout l, std::size_t n) {
  std::vector<grid_bounds> out(n);
  for (std::size_t i = 0; i < n; ++i) {
    const double x = gen.uniform(0.0, 1000.0);
    const double y = gen.uniform(0.0, 1000.0);
    double w = gen.uniform(1.0, 50.0);
    double h = gen.uniform(1.0, 50.0);
    switch (l) {
      case layout::spread:
        break;
      case layout::mixed_sizes: {
        const double side = std::exp(gen.uniform(-3.0, 7.0));
        w = side * gen.uniform(0.5, 1.5);
        h = side * gen.uniform(0.5, 1.5);
        break;
      }
      case layout::far_outliers:
        if (gen.below(20) == 0) {
          const double far = std::pow(10.0, gen.uniform(4.0, 12.0));
          out[i] = {x + far, y - far / 2, x + far + w, y - far / 2 + h};
          continue;
        }
        break;
      case layout::strips:
        if (gen.below(2) == 0) {
          w = gen.uniform(200.0, 1000.0);
          h = gen.uniform(0.001, 0.1);
          if (gen.below(2) == 0) std::swap(w, h);
        }
        break;
      case layout::points:
        if (gen.below(2) == 0) w = h = 0.0;
        if (gen.below(4) == 0) w = 0.0;
        break;
      case layout::one_spot:
        out[i] = {500.0 - w, 500.0 - h, 500.0 + w, 500.0 + h};
        continue;
    }
    out[i] = {x, y, x + w, y + h};
  }
  return out;
}

/// The stored boxes the grid reports to query q (first_shared), each with how often.
std::vector<int> reported(const box_grid& grid, const std::vector<grid_bounds>& stored,
                          const grid_bounds& q) {
  std::vector<int> times(stored.size(), 0);
  const std::vector<std::size_t>& start = grid.cell_start();
  // The slots hold the stored boxes cell by cell in increasing index (as the kernels fill them).
  std::vector<std::size_t> slot_box(grid.slots());
  std::vector<std::size_t> fill(start.begin(), start.end() - 1);
  for (std::size_t i = 0; i < stored.size(); ++i) {
    if (!grid.stored(i)) continue;
    grid.for_each_cell(grid.span(i), [&](std::size_t c, index_t, index_t) {
      slot_box[fill[c]++] = i;
      return false;
    });
  }
  REQUIRE(std::equal(fill.begin(), fill.end(), start.begin() + 1));
  grid.for_each_query_cell(q, [&](std::size_t c, const grid_span& qs, index_t x, index_t y) {
    for (std::size_t s = start[c]; s < start[c + 1]; ++s) {
      const std::size_t i = slot_box[s];
      if (box_grid::first_shared(grid.span(i), qs, x, y)) ++times[i];
    }
    return false;
  });
  return times;
}

}  // namespace

TEST_CASE("box_grid: every stored box whose extent meets a query's is reported once", "[nms]") {
  cvk::rng gen(912, 1);
  const std::array<layout, 6> layouts = {layout::spread, layout::mixed_sizes, layout::far_outliers,
                                         layout::strips, layout::points,      layout::one_spot};
  for (const layout l : layouts) {
    for (const std::size_t n : std::array<std::size_t, 6>{1, 2, 7, 64, 300, 1500}) {
      const std::vector<grid_bounds> boxes = random_bounds(gen, l, n);
      // Every 5th box does not take part.
      box_grid grid;
      const bool any = grid.build(n, [&](std::size_t i, grid_bounds& b) {
        b = boxes[i];
        return i % 5 != 3;
      });
      REQUIRE(any);
      REQUIRE(grid.levels() <= box_grid::max_levels);
      for (std::size_t i = 0; i < n; ++i) REQUIRE(grid.stored(i) == (i % 5 != 3));
      const std::vector<grid_bounds> queries = random_bounds(gen, l, 40);
      std::vector<grid_bounds> all = queries;
      all.insert(all.end(), boxes.begin(), boxes.end());
      // A box whose extent does not meet q may share a cell with it (reported or not); one
      // that meets q is reported exactly once. Counted, then checked once per scene (a
      // REQUIRE per pair made this the slowest test under the sanitizers).
      std::size_t missed = 0, repeated = 0, first_bad = n;
      for (const grid_bounds& q : all) {
        const std::vector<int> times = reported(grid, boxes, q);
        for (std::size_t i = 0; i < n; ++i) {
          const bool expected = grid.stored(i) && meet(boxes[i], q);
          const bool miss = expected && times[i] != 1;
          const bool twice = times[i] > 1;
          missed += miss ? 1 : 0;
          repeated += twice ? 1 : 0;
          if ((miss || twice) && first_bad == n) first_bad = i;
        }
      }
      INFO("layout " << static_cast<int>(l) << ", n " << n << ", first wrong box " << first_bad);
      CHECK(missed == 0);
      CHECK(repeated == 0);
    }
  }
}

TEST_CASE("box_grid: no box taking part builds nothing", "[nms]") {
  box_grid grid;
  REQUIRE_FALSE(grid.build(1000, [](std::size_t, grid_bounds&) { return false; }));
  REQUIRE(grid.slots() == 0);
  REQUIRE_FALSE(grid.stored(0));
  REQUIRE_FALSE(grid.for_each_query_cell({0, 0, 1, 1}, [](auto...) { return true; }));
}

TEST_CASE("box_grid: outliers, strips and tiny boxes get levels of their own", "[nms]") {
  cvk::rng gen(912, 2);
  std::vector<grid_bounds> boxes = random_bounds(gen, layout::spread, 4000);
  boxes[0] = {1e9, 1e9, 1e9 + 128, 1e9 + 128};  // far outlier
  for (std::size_t i = 1; i < 2001; ++i) {      // 2000 stacked strips
    const double y = 1000.0 + 0.01 * static_cast<double>(i);
    boxes[i] = {0.0, y, 1000.0, y + 0.005};
  }
  box_grid grid;
  REQUIRE(grid.build(boxes.size(), [&](std::size_t i, grid_bounds& b) {
    b = boxes[i];
    return true;
  }));
  REQUIRE(grid.levels() >= 2);
  // The strips share a level whose cells are thin: none holds more than a few strips.
  const std::vector<std::size_t>& start = grid.cell_start();
  std::size_t fullest = 0;
  for (std::size_t c = 0; c + 1 < start.size(); ++c) {
    fullest = std::max(fullest, start[c + 1] - start[c]);
  }
  CHECK(fullest <= 64);
  // The outlier does not share the level of the normal boxes.
  CHECK(grid.span(0).level != grid.span(3000).level);
  // About two cells per box at most (each level), and each box in at most max_span² cells.
  CHECK(grid.cells() <= 2 * boxes.size() * grid.levels() + 16 * grid.levels());
  CHECK(grid.slots() <= boxes.size() * 16);
}

TEST_CASE("box_grid: a spread scene is one level; a far outlier alone leaves it", "[nms]") {
  cvk::rng gen(912, 3);
  std::vector<grid_bounds> boxes = random_bounds(gen, layout::spread, 20000);
  const auto build = [&](box_grid& grid) {
    return grid.build(boxes.size(), [&](std::size_t i, grid_bounds& b) {
      b = boxes[i];
      return true;
    });
  };
  {
    // Sides 1-50: a few boxes are below median / 8, spread thin: they stay on the level.
    box_grid grid;
    REQUIRE(build(grid));
    CHECK(grid.levels() == 1);
  }
  boxes[0] = {1e9, 1e9, 1e9 + 128, 1e9 + 128};
  box_grid grid;
  REQUIRE(build(grid));
  CHECK(grid.levels() == 2);
  for (std::size_t i = 1; i < boxes.size(); ++i) REQUIRE(grid.span(i).level == 0);
  CHECK(grid.span(0).level == 1);
}

TEST_CASE("box_grid: tiny boxes crowding a cell get a level of their own", "[nms]") {
  cvk::rng gen(912, 4);
  std::vector<grid_bounds> boxes = random_bounds(gen, layout::spread, 8000);
  for (std::size_t i = 0; i < 1000; ++i) {  // 1000 boxes of side 0.01 in one spot
    const double x = 500.0 + gen.uniform(0.0, 1.0);
    const double y = 500.0 + gen.uniform(0.0, 1.0);
    boxes[i] = {x, y, x + 0.01, y + 0.01};
  }
  box_grid grid;
  REQUIRE(grid.build(boxes.size(), [&](std::size_t i, grid_bounds& b) {
    b = boxes[i];
    return true;
  }));
  CHECK(grid.levels() >= 2);
  CHECK(grid.span(0).level != grid.span(5000).level);
  const std::vector<std::size_t>& start = grid.cell_start();
  std::size_t fullest = 0;
  for (std::size_t c = 0; c + 1 < start.size(); ++c) {
    fullest = std::max(fullest, start[c + 1] - start[c]);
  }
  CHECK(fullest <= 200);
}

TEST_CASE("box_grid: the caller's span storage", "[nms]") {
  cvk::rng gen(912, 5);
  const std::vector<grid_bounds> boxes = random_bounds(gen, layout::mixed_sizes, 500);
  std::vector<grid_span> storage(boxes.size());
  box_grid own;
  box_grid lent;
  const auto bounds_of = [&](std::size_t i, grid_bounds& b) {
    b = boxes[i];
    return i % 3 != 0;
  };
  REQUIRE(own.build(boxes.size(), bounds_of));
  REQUIRE(lent.build(boxes.size(), bounds_of, storage.data()));
  REQUIRE(own.cell_start() == lent.cell_start());
  for (std::size_t i = 0; i < boxes.size(); ++i) {
    REQUIRE(own.stored(i) == lent.stored(i));
    REQUIRE(&lent.span(i) == &storage[i]);
  }
}

// ---------------------------------------------------------------------------------------------
// Cost guards: pair tests on the adversarial scenes against a normal scene of the same size.

namespace {

using cvk_test::cost_scene;

template <class F>
std::uint64_t pair_tests(F&& run) {
  cvk::detail::pair_test_count = 0;
  run();
  return cvk::detail::pair_test_count.load();
}

struct scene_data {
  std::vector<std::array<float, 4>> boxes;
  std::vector<float> scores;
};

scene_data make_scene(cost_scene s, std::size_t n) {
  cvk::rng gen(2024, 9);  // the same stream for every scene: only the boxes differ
  scene_data d;
  d.boxes = cvk_test::cost_scene_boxes<float>(gen, s, n);
  d.scores.resize(n);
  for (auto& v : d.scores) v = gen.uniform<float>(0.0F, 1.0F);
  return d;
}

/// Requires every adversarial scene to cost at most `factor` × the normal scene's pair tests
/// (plus n: O(1) per box).
template <class Run>
void require_bounded_cost(const char* op, std::size_t n, double factor, Run run) {
  const scene_data normal = make_scene(cost_scene::normal, n);
  const std::uint64_t base = pair_tests([&] { run(normal); });
  for (const cost_scene s : {cost_scene::zeros, cost_scene::nans, cost_scene::far_outlier,
                             cost_scene::thin_strips, cost_scene::one_nan}) {
    const scene_data d = make_scene(s, n);
    const std::uint64_t cost = pair_tests([&] { run(d); });
    INFO(op << " on " << cvk_test::cost_scene_names[static_cast<std::size_t>(s)] << ", N = " << n
            << ": " << cost << " pair tests, normal scene " << base);
    CHECK(static_cast<double>(cost) <= factor * static_cast<double>(base) + static_cast<double>(n));
  }
}

constexpr std::size_t cost_n = 4000;
constexpr double cost_factor = 4.0;

}  // namespace

TEST_CASE("cost guard: nms", "[nms][cost]") {
  require_bounded_cost("nms", cost_n, cost_factor,
                       [](const scene_data& d) { (void)cvk::nms(d.boxes, d.scores, 0.5); });
  require_bounded_cost("nms (DIoU, eta)", cost_n, cost_factor, [](const scene_data& d) {
    (void)cvk::nms(d.boxes, d.scores, 0.6, {.eta = 0.9, .criterion = cvk::nms_criterion::diou});
  });
}

TEST_CASE("cost guard: soft_nms", "[nms][cost]") {
  using cvk::soft_nms_convention;
  using cvk::soft_nms_method;
  for (const auto& o :
       {cvk::soft_nms_options{}, cvk::soft_nms_options{.method = soft_nms_method::gaussian},
        cvk::soft_nms_options{.method = soft_nms_method::gaussian,
        .convention = soft_nms_convention::opencv},
        cvk::soft_nms_options{.method = soft_nms_method::gaussian,
        .convention = soft_nms_convention::tensorflow}}) {
    require_bounded_cost("soft_nms", cost_n, cost_factor, [&](const scene_data& d) {
      (void)cvk::soft_nms(d.boxes, d.scores, 0.3, o);
    });
  }
}

// ---------------------------------------------------------------------------------------------
// The NaN policy (docs/nms.md): a box with a NaN coordinate neither suppresses nor decays
// another. Inserting NaN boxes leaves the results of the other boxes as they were.

namespace {

struct with_nan_boxes {
  scene_data scene;            // the normal scene with NaN boxes inserted
  std::vector<index_t> index;  // scene index → index in the normal scene, -1 for a NaN box
};

with_nan_boxes insert_nan_boxes(const scene_data& normal, std::size_t every) {
  with_nan_boxes out;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (std::size_t i = 0; i < normal.boxes.size(); ++i) {
    if (i % every == 1) {
      out.scene.boxes.push_back({nan, nan, nan, nan});
      out.scene.scores.push_back(0.25F + 0.5F * static_cast<float>(i % 7) / 7.0F);
      out.index.push_back(-1);
    }
    out.scene.boxes.push_back(normal.boxes[i]);
    out.scene.scores.push_back(normal.scores[i]);
    out.index.push_back(static_cast<index_t>(i));
  }
  return out;
}

/// The kept indices of the non-NaN boxes, mapped back to the normal scene.
template <class Indices>
std::vector<index_t> without_nan(const Indices& kept, const with_nan_boxes& w) {
  std::vector<index_t> out;
  for (const index_t k : kept) {
    const index_t i = w.index[static_cast<std::size_t>(k)];
    if (i >= 0) out.push_back(i);
  }
  return out;
}

}  // namespace

TEST_CASE("NaN policy: soft_nms, every convention", "[nms][nan]") {
  using cvk::soft_nms_convention;
  using cvk::soft_nms_method;
  const scene_data normal = make_scene(cost_scene::normal, 2000);
  const with_nan_boxes w = insert_nan_boxes(normal, 97);
  for (const auto& o :
       {cvk::soft_nms_options{}, cvk::soft_nms_options{.method = soft_nms_method::gaussian},
        cvk::soft_nms_options{.method = soft_nms_method::naive},
        cvk::soft_nms_options{.method = soft_nms_method::gaussian,
        .convention = soft_nms_convention::opencv},
        cvk::soft_nms_options{.method = soft_nms_method::linear,
        .convention = soft_nms_convention::opencv},
        cvk::soft_nms_options{.method = soft_nms_method::gaussian,
        .convention = soft_nms_convention::tensorflow}}) {
    INFO(cvk::to_string(o.convention) << "/" << cvk::to_string(o.method));
    const auto plain = cvk::soft_nms(normal.boxes, normal.scores, 0.3, o);
    const auto got = cvk::soft_nms(w.scene.boxes, w.scene.scores, 0.3, o);
    REQUIRE(without_nan(got.indices, w) ==
            std::vector<index_t>(plain.indices.begin(), plain.indices.end()));
    std::vector<float> scores;
    for (index_t k = 0; k < got.indices.size(); ++k) {
      const auto box = static_cast<std::size_t>(got.indices(k));
      if (w.index[box] >= 0) {
        scores.push_back(got.scores(k));
      } else {
        CHECK(got.scores(k) == w.scene.scores[box]);  // never decayed
      }
    }
    REQUIRE(scores == std::vector<float>(plain.scores.begin(), plain.scores.end()));
    // The peers' arithmetic on request: NaN spreads (issue 9 #4: 1989 NaN scores of 2000).
    if (o.method == soft_nms_method::gaussian && o.convention == soft_nms_convention::mmcv) {
      auto peer = o;
      peer.propagate_nan = true;
      const auto spread = cvk::soft_nms(w.scene.boxes, w.scene.scores, 0.3, peer);
      std::size_t nans = 0;
      for (const float s : spread.scores) {
        if (std::isnan(s)) ++nans;
      }
      CHECK(nans > 100);
    }
  }
}

TEST_CASE("cost guard: box_voting and var_voting", "[nms][cost]") {
  require_bounded_cost("box_voting", cost_n, cost_factor, [](const scene_data& d) {
    (void)cvk::box_voting(d.boxes, d.scores, d.boxes, d.scores, {.threshold = 0.5});
  });
  require_bounded_cost("var_voting", cost_n, cost_factor, [](const scene_data& d) {
    const std::vector<std::array<float, 4>> variances(d.boxes.size(), {1.0F, 1.0F, 1.0F, 1.0F});
    (void)cvk::var_voting(d.boxes, d.scores, variances);
  });
}

TEST_CASE("NaN policy: box_voting and var_voting", "[nms][nan]") {
  const scene_data normal = make_scene(cost_scene::normal, 1500);
  const with_nan_boxes w = insert_nan_boxes(normal, 89);
  // box_voting: NaN boxes never vote; the kept boxes' results are unchanged.
  const auto plain =
      cvk::box_voting(normal.boxes, normal.scores, normal.boxes, normal.scores, {.threshold = 0.5});
  const auto got = cvk::box_voting(normal.boxes, normal.scores, w.scene.boxes, w.scene.scores,
                                   {.threshold = 0.5});
  REQUIRE(std::equal(got.boxes.begin(), got.boxes.end(), plain.boxes.begin(), plain.boxes.end()));
  // var_voting: NaN boxes neither vote nor decay; the others come out as without them.
  const std::vector<std::array<float, 4>> v0(normal.boxes.size(), {1.0F, 1.0F, 1.0F, 1.0F});
  const std::vector<std::array<float, 4>> v1(w.scene.boxes.size(), {1.0F, 1.0F, 1.0F, 1.0F});
  const auto a = cvk::var_voting(normal.boxes, normal.scores, v0);
  const auto b = cvk::var_voting(w.scene.boxes, w.scene.scores, v1);
  REQUIRE(without_nan(b.indices, w) == std::vector<index_t>(a.indices.begin(), a.indices.end()));
}

TEST_CASE("cost guard: matrix_nms, fast_nms, cluster_nms", "[nms][cost]") {
  require_bounded_cost("matrix_nms", cost_n, cost_factor,
                       [](const scene_data& d) { (void)cvk::matrix_nms(d.boxes, d.scores); });
  require_bounded_cost("matrix_nms (gaussian)", cost_n, cost_factor, [](const scene_data& d) {
    (void)cvk::matrix_nms(d.boxes, d.scores, {.decay = cvk::matrix_nms_decay::gaussian});
  });
  require_bounded_cost("fast_nms", cost_n, cost_factor,
                       [](const scene_data& d) { (void)cvk::fast_nms(d.boxes, d.scores, 0.5); });
  require_bounded_cost("cluster_nms", cost_n, cost_factor,
                       [](const scene_data& d) { (void)cvk::cluster_nms(d.boxes, d.scores, 0.5); });
}

TEST_CASE("NaN policy: nms, fast_nms, cluster_nms, matrix_nms", "[nms][nan]") {
  const scene_data normal = make_scene(cost_scene::normal, 2000);
  const with_nan_boxes w = insert_nan_boxes(normal, 97);
  const auto same_kept = [&](const auto& plain, const auto& got) {
    REQUIRE(without_nan(got, w) == std::vector<index_t>(plain.begin(), plain.end()));
  };
  same_kept(cvk::nms(normal.boxes, normal.scores, 0.5),
            cvk::nms(w.scene.boxes, w.scene.scores, 0.5));
  same_kept(cvk::fast_nms(normal.boxes, normal.scores, 0.5),
            cvk::fast_nms(w.scene.boxes, w.scene.scores, 0.5));
  same_kept(cvk::cluster_nms(normal.boxes, normal.scores, 0.5).indices,
            cvk::cluster_nms(w.scene.boxes, w.scene.scores, 0.5).indices);
  // matrix_nms: the other boxes keep their decayed scores; a NaN box is never decayed.
  const auto plain = cvk::matrix_nms(normal.boxes, normal.scores);
  const auto got = cvk::matrix_nms(w.scene.boxes, w.scene.scores);
  std::vector<float> scores;
  std::vector<index_t> kept;
  for (index_t k = 0; k < got.indices.size(); ++k) {
    const auto box = static_cast<std::size_t>(got.indices(k));
    if (w.index[box] < 0) {
      CHECK(got.scores(k) == w.scene.scores[box]);
      continue;
    }
    kept.push_back(w.index[box]);
    scores.push_back(got.scores(k));
  }
  REQUIRE(kept == std::vector<index_t>(plain.indices.begin(), plain.indices.end()));
  REQUIRE(scores == std::vector<float>(plain.scores.begin(), plain.scores.end()));
}

// ---------------------------------------------------------------------------------------------
// nms_rotated on the shared grid: the cost scenes as rotated boxes (cx, cy, w, h, angle), every
// other box turned (the strips stay level: turned, they would cross one another).

namespace {

std::vector<std::array<float, 5>> rotated_of(const std::vector<std::array<float, 4>>& boxes) {
  std::vector<std::array<float, 5>> out(boxes.size());
  for (std::size_t i = 0; i < boxes.size(); ++i) {
    const auto& b = boxes[i];
    const float angle = i % 2 == 0 ? static_cast<float>((i * 37) % 180) - 90.0F : 0.0F;
    out[i] = {(b[0] + b[2]) / 2, (b[1] + b[3]) / 2, b[2] - b[0], b[3] - b[1], angle};
  }
  return out;
}

}  // namespace

TEST_CASE("cost guard: nms_rotated and batched_nms_rotated", "[nms][cost]") {
  require_bounded_cost("nms_rotated", cost_n, cost_factor, [](const scene_data& d) {
    (void)cvk::nms_rotated(rotated_of(d.boxes), d.scores, 0.5);
  });
  require_bounded_cost("batched_nms_rotated", cost_n, cost_factor, [](const scene_data& d) {
    std::vector<std::int32_t> classes(d.boxes.size());
    for (std::size_t i = 0; i < classes.size(); ++i) classes[i] = static_cast<std::int32_t>(i % 3);
    (void)cvk::batched_nms_rotated(rotated_of(d.boxes), d.scores, classes, 0.3);
  });
}

TEST_CASE("NaN policy: nms_rotated, batched_nms_rotated", "[nms][nan]") {
  const scene_data normal = make_scene(cost_scene::normal, 2000);
  const with_nan_boxes w = insert_nan_boxes(normal, 97);
  const auto plain_boxes = rotated_of(normal.boxes);
  // The same rotated boxes in the scene with NaN boxes (a NaN box: every field NaN, or only the
  // angle NaN).
  std::vector<std::array<float, 5>> nan_boxes(w.scene.boxes.size());
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (std::size_t i = 0; i < nan_boxes.size(); ++i) {
    const index_t k = w.index[i];
    if (k >= 0) {
      nan_boxes[i] = plain_boxes[static_cast<std::size_t>(k)];
    } else if (i % 2 == 0) {
      nan_boxes[i] = {nan, nan, nan, nan, nan};
    } else {
      nan_boxes[i] = {500.0F, 500.0F, 40.0F, 40.0F, nan};
    }
  }
  const auto kept_with_nan = cvk::nms_rotated(nan_boxes, w.scene.scores, 0.3);
  const auto kept = cvk::nms_rotated(plain_boxes, normal.scores, 0.3);
  REQUIRE(without_nan(kept_with_nan, w) == std::vector<index_t>(kept.begin(), kept.end()));
  // Every NaN box is kept (it suppresses nobody and nobody suppresses it).
  std::size_t nan_kept = 0;
  for (const index_t k : kept_with_nan)
    if (w.index[static_cast<std::size_t>(k)] < 0) ++nan_kept;
  std::size_t nan_count = 0;
  for (const index_t i : w.index) nan_count += i < 0 ? std::size_t{1} : std::size_t{0};
  CHECK(nan_kept == nan_count);
  std::vector<std::int32_t> classes(w.scene.boxes.size());
  std::vector<std::int32_t> plain_classes(normal.boxes.size());
  for (std::size_t i = 0; i < classes.size(); ++i) {
    classes[i] = static_cast<std::int32_t>(i % 4);
    if (w.index[i] >= 0) plain_classes[static_cast<std::size_t>(w.index[i])] = classes[i];
  }
  const auto batched_with_nan = cvk::batched_nms_rotated(nan_boxes, w.scene.scores, classes, 0.3);
  const auto batched = cvk::batched_nms_rotated(plain_boxes, normal.scores, plain_classes, 0.3);
  REQUIRE(without_nan(batched_with_nan, w) == std::vector<index_t>(batched.begin(), batched.end()));
}

TEST_CASE("scratch memory: kept per thread between calls, bounded, released on request",
          "[nms][memory]") {
  // docs/conventions.md, "Memory kept between calls". nms with one thread runs its grid on the
  // calling thread, whose scratch slots then hold the grid's buffers.
  cvk::release_scratch();
  REQUIRE(cvk::thread_scratch_bytes() == 0);
  const scene_data d = make_scene(cost_scene::normal, 20000);
  const cvk::nms_options one_thread{.threads = 1};
  const auto first = cvk::nms(d.boxes, d.scores, 0.5, one_thread);
  const std::size_t kept = cvk::thread_scratch_bytes();
  CHECK(kept > 0);
  CHECK(kept <= cvk::detail::scratch_slots * cvk::detail::scratch_keep_bytes);
  // A second call reuses the buffers: no more memory kept.
  const auto second = cvk::nms(d.boxes, d.scores, 0.5, one_thread);
  CHECK(cvk::thread_scratch_bytes() == kept);
  cvk::release_thread_scratch();
  CHECK(cvk::thread_scratch_bytes() == 0);
  // Released memory is allocated again on demand; results do not depend on it.
  const auto third = cvk::nms(d.boxes, d.scores, 0.5, one_thread);
  REQUIRE(std::vector<cvk::index_t>(first.begin(), first.end()) ==
          std::vector<cvk::index_t>(third.begin(), third.end()));
  REQUIRE(std::vector<cvk::index_t>(second.begin(), second.end()) ==
          std::vector<cvk::index_t>(third.begin(), third.end()));
  cvk::release_scratch();
  CHECK(cvk::thread_scratch_bytes() == 0);
}
