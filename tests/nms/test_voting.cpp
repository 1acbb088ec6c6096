// cvk — computer-vision kernels, header-only C++20.
// Tests of cvk/nms/voting.hpp: box_voting (Detectron's detectron/utils/boxes.py box_voting) and
// var_voting (KL-Loss's detectron/utils/py_cpu_nms.py soft) against the definitions written
// plainly below (O(N²): a full IoU matrix, KL-Loss's in-place row and column swaps), on random
// scenes of every density, float and double, every option; against numpy re-implementations of
// both peers (tests/data/voting_peers.txt, written by tests/gen_voting_fixtures.py); hand-computed
// cases; the position-order rules; strided and container inputs; edge cases and errors.
// SPDX-License-Identifier: MIT
#include <algorithm>
#include <array>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstddef>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <cvk/core.hpp>
#include <cvk/nms/voting.hpp>

#include "support/error_inputs.hpp"
#include "support/fixtures.hpp"
#include "support/layouts.hpp"
#include "support/nms_scenes.hpp"

namespace {

using cvk::index_t;
template <class T>
using boxes_t = std::vector<std::array<T, 4>>;
template <class T>
using acc_t = std::conditional_t<(sizeof(T) < sizeof(double)), double, T>;

template <class T>
bool same(T a, T b) {
  return a == b || (std::isnan(a) && std::isnan(b));
}

// ---------------------------------------------------------------------------------------------
// The references, from the peers' definitions. Corners are xyxy; `one` is 1 for "+1" widths.
// Compiled with the kernels' floating-point options (no contraction), as the library.
CVK_KERNEL_BEGIN

/// Detectron's cython bbox_overlaps for one (top, other) pair.
template <class T>
T detectron_iou(const std::array<T, 4>& t, const std::array<T, 4>& a, T one) {
  const T area_t = ((t[2] - t[0]) + one) * ((t[3] - t[1]) + one);
  const T area_a = ((a[2] - a[0]) + one) * ((a[3] - a[1]) + one);
  const T iw = (std::min(t[2], a[2]) - std::max(t[0], a[0])) + one;
  if (iw > T(0)) {
    const T ih = (std::min(t[3], a[3]) - std::max(t[1], a[1])) + one;
    if (ih > T(0)) {
      const T ua = area_t + area_a - iw * ih;
      return iw * ih / ua;
    }
  }
  return T(0);
}

template <class T, class S>
struct voted_boxes {
  boxes_t<T> boxes;
  std::vector<S> scores;
};

/// Detectron's box_voting(top_dets, all_dets, thresh, scoring_method, beta) on xyxy boxes, with
/// cvk's policy where Detectron raises (no voter, zero weight sum: the kept box unchanged).
template <class T, class S>
voted_boxes<T, S> reference_box_voting(const boxes_t<T>& kept, const std::vector<S>& kept_scores,
                                       const boxes_t<T>& all, const std::vector<S>& all_scores,
                                       const cvk::box_voting_options& o) {
  using A = acc_t<T>;
  const T one = o.pixel_inclusive ? T(1) : T(0);
  const auto thresh = static_cast<T>(o.threshold);
  const auto beta = static_cast<A>(o.beta);
  voted_boxes<T, S> out{kept, kept_scores};
  for (std::size_t k = 0; k < kept.size(); ++k) {
    std::vector<std::size_t> inds;
    std::vector<T> overlaps;
    for (std::size_t j = 0; j < all.size(); ++j) {
      const T ov = detectron_iou(kept[k], all[j], one);
      if (ov >= thresh) {
        inds.push_back(j);
        overlaps.push_back(ov);
      }
    }
    std::array<A, 4> num{};
    A den = 0;
    for (const std::size_t j : inds) {
      for (std::size_t c = 0; c < 4; ++c)
        num[c] += static_cast<A>(all[j][c]) * static_cast<A>(all_scores[j]);
      den += static_cast<A>(all_scores[j]);
    }
    if (inds.empty() || den == A(0)) continue;
    for (std::size_t c = 0; c < 4; ++c) out.boxes[k][c] = static_cast<T>(num[c] / den);
    const auto m = static_cast<A>(inds.size());
    A sum = 0;
    switch (o.scoring) {
      case cvk::box_voting_scoring::id:
        break;
      case cvk::box_voting_scoring::temp_avg:
        for (const std::size_t j : inds) {
          const auto w = static_cast<A>(all_scores[j]);
          const A p0 = w;
          const A p1 = A(1) - w;
          const A pmax = std::max(p0, p1);
          const A e0 = std::exp(std::log(p0 / pmax) / beta);
          const A e1 = std::exp(std::log(p1 / pmax) / beta);
          sum += e0 / (e0 + e1);
        }
        out.scores[k] = static_cast<S>(sum / m);
        break;
      case cvk::box_voting_scoring::avg:
        for (const std::size_t j : inds) sum += static_cast<A>(all_scores[j]);
        out.scores[k] = static_cast<S>(sum / m);
        break;
      case cvk::box_voting_scoring::iou_avg: {
        A weights = 0;
        for (std::size_t t = 0; t < inds.size(); ++t) {
          sum += static_cast<A>(all_scores[inds[t]]) * static_cast<A>(overlaps[t]);
          weights += static_cast<A>(overlaps[t]);
        }
        if (weights != A(0)) out.scores[k] = static_cast<S>(sum / weights);
        break;
      }
      case cvk::box_voting_scoring::generalized_avg:
        for (const std::size_t j : inds) sum += std::pow(static_cast<A>(all_scores[j]), beta);
        out.scores[k] = static_cast<S>(std::pow(sum / m, A(1) / beta));
        break;
      case cvk::box_voting_scoring::quasi_sum:
        for (const std::size_t j : inds) sum += static_cast<A>(all_scores[j]);
        out.scores[k] = static_cast<S>(sum / std::pow(m, beta));
        break;
    }
  }
  return out;
}

/// numpy's maximum / minimum (NaN propagates).
template <class T>
T np_maximum(T a, T b) {
  return std::isnan(a) || std::isnan(b) ? std::numeric_limits<T>::quiet_NaN() : std::max(a, b);
}
template <class T>
T np_minimum(T a, T b) {
  return std::isnan(a) || std::isnan(b) ? std::numeric_limits<T>::quiet_NaN() : std::min(a, b);
}

template <class T, class S>
struct var_voted {
  std::vector<index_t> indices;
  boxes_t<T> boxes;
  std::vector<S> scores;
};

/// KL-Loss's soft(dets, confidence) with STD.METHOD 'stdiou', written as its loop: the IoU
/// matrix computed once, rows (and matrix rows and columns) swapped in place, positions [0, N)
/// live. The one deliberate difference, as cvk documents: the diagonal of the IoU matrix is 1
/// (KL-Loss computes it, which is 1 for every box of positive area and 0/0 otherwise).
template <class T, class S, class V>
var_voted<T, S> reference_var_voting(const boxes_t<T>& boxes, const std::vector<S>& scores,
                                     const std::vector<std::array<V, 4>>& variances,
                                     const cvk::var_voting_options& o) {
  using A = acc_t<T>;
  using AS = acc_t<S>;
  const T one = o.pixel_inclusive ? T(1) : T(0);
  std::size_t n = boxes.size();
  boxes_t<T> dets = boxes;
  std::vector<S> sc = scores;
  std::vector<index_t> idx(n);
  std::vector<std::array<A, 4>> sigma2(n);
  for (std::size_t i = 0; i < n; ++i) {
    idx[i] = static_cast<index_t>(i);
    for (std::size_t c = 0; c < 4; ++c) {
      const auto v = static_cast<A>(variances[i][c]);
      switch (o.input) {
        case cvk::var_voting_input::variance:
          sigma2[i][c] = v;
          break;
        case cvk::var_voting_input::stddev:
          sigma2[i][c] = v * v;
          break;
        case cvk::var_voting_input::log_variance: {
          const A sd = std::exp(v / A(2));
          sigma2[i][c] = sd * sd;
          break;
        }
      }
    }
  }
  std::vector<T> areas(n);
  for (std::size_t i = 0; i < n; ++i) {
    areas[i] = ((dets[i][2] - dets[i][0]) + one) * ((dets[i][3] - dets[i][1]) + one);
  }
  std::vector<std::vector<T>> ious(n, std::vector<T>(n));
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = 0; j < n; ++j) {
      const T xx1 = np_maximum(dets[i][0], dets[j][0]);
      const T yy1 = np_maximum(dets[i][1], dets[j][1]);
      const T xx2 = np_minimum(dets[i][2], dets[j][2]);
      const T yy2 = np_minimum(dets[i][3], dets[j][3]);
      const T w = np_maximum(T(0), (xx2 - xx1) + one);
      const T h = np_maximum(T(0), (yy2 - yy1) + one);
      const T inter = w * h;
      ious[i][j] = inter / (areas[i] + areas[j] - inter);
    }
    ious[i][i] = T(1);
  }
  const auto swap_rows = [&](std::size_t a, std::size_t b) {
    std::swap(dets[a], dets[b]);
    std::swap(sc[a], sc[b]);
    std::swap(sigma2[a], sigma2[b]);
    std::swap(idx[a], idx[b]);
    std::swap(ious[a], ious[b]);
    for (auto& row : ious) std::swap(row[a], row[b]);
  };
  std::size_t i = 0;
  while (i < n) {
    // maxpos = dets[i:N, 4].argmax() (numpy: the first NaN, else the first maximum)
    std::size_t maxpos = i;
    for (std::size_t p = i + 1; p < n; ++p) {
      if (std::isnan(sc[maxpos])) break;
      if (std::isnan(sc[p]) || sc[p] > sc[maxpos]) maxpos = p;
    }
    swap_rows(maxpos, i);
    // vote over ovr_bbox = positions p >= i with ious[i, p] > thresh
    std::array<A, 4> num{};
    std::array<A, 4> den{};
    for (std::size_t p = i; p < n; ++p) {
      if (!(static_cast<double>(ious[i][p]) > o.vote_threshold)) continue;
      const A d = A(1) - static_cast<A>(ious[i][p]);
      const A weight = std::exp(-(d * d) / static_cast<A>(o.sigma_t));
      for (std::size_t c = 0; c < 4; ++c) {
        num[c] += weight * (static_cast<A>(dets[p][c]) / sigma2[p][c]);
        den[c] += weight * (A(1) / sigma2[p][c]);
      }
    }
    for (std::size_t c = 0; c < 4; ++c) {
      if (den[c] != A(0)) dets[i][c] = static_cast<T>(num[c] / den[c]);
    }
    // decay
    std::size_t pos = i + 1;
    while (pos < n) {
      if (ious[i][pos] > T(0)) {
        const T ovr = ious[i][pos];
        if (o.decay == cvk::var_voting_decay::hard) {
          if (static_cast<double>(ovr) > o.iou_threshold) sc[pos] = S(0);
        } else {
          const auto ov = static_cast<AS>(ovr);
          sc[pos] = static_cast<S>(static_cast<AS>(sc[pos]) *
                                   std::exp(-(ov * ov) / static_cast<AS>(o.soft_sigma)));
        }
        if (static_cast<double>(sc[pos]) < o.score_threshold) {
          swap_rows(pos, n - 1);
          --n;
          continue;  // pos -= 1; pos += 1
        }
      }
      ++pos;
    }
    ++i;
  }
  var_voted<T, S> out;
  out.indices.assign(idx.begin(), idx.begin() + static_cast<std::ptrdiff_t>(n));
  out.boxes.assign(dets.begin(), dets.begin() + static_cast<std::ptrdiff_t>(n));
  out.scores.assign(sc.begin(), sc.begin() + static_cast<std::ptrdiff_t>(n));
  return out;
}
CVK_KERNEL_END

// ---------------------------------------------------------------------------------------------
// Comparisons

template <class T, class S>
void require_same(const cvk::box_voting_result<T, S>& got, const voted_boxes<T, S>& want) {
  REQUIRE(got.boxes.extent(0) == static_cast<index_t>(want.boxes.size()));
  REQUIRE(got.scores.extent(0) == static_cast<index_t>(want.scores.size()));
  for (std::size_t k = 0; k < want.boxes.size(); ++k) {
    const auto kk = static_cast<index_t>(k);
    for (std::size_t c = 0; c < 4; ++c) {
      INFO("kept box " << k << " coordinate " << c);
      REQUIRE(same(got.boxes(kk, static_cast<index_t>(c)), want.boxes[k][c]));
    }
    INFO("kept box " << k);
    REQUIRE(same(got.scores(kk), want.scores[k]));
  }
}

template <class T, class S>
void require_same(const cvk::var_voting_result<T, S>& got, const var_voted<T, S>& want) {
  REQUIRE(std::vector<index_t>(got.indices.begin(), got.indices.end()) == want.indices);
  for (std::size_t k = 0; k < want.boxes.size(); ++k) {
    const auto kk = static_cast<index_t>(k);
    for (std::size_t c = 0; c < 4; ++c) {
      INFO("selection " << k << " coordinate " << c);
      REQUIRE(same(got.boxes(kk, static_cast<index_t>(c)), want.boxes[k][c]));
    }
    INFO("selection " << k);
    REQUIRE(same(got.scores(kk), want.scores[k]));
  }
}

template <class T>
std::vector<index_t> indices_of(const T& result) {
  return std::vector<index_t>(result.indices.begin(), result.indices.end());
}

// ---------------------------------------------------------------------------------------------
// Random scenes

using cvk_test::density;
using cvk_test::density_names;
using cvk_test::random_scene;

template <class T>
std::vector<T> random_scores(cvk::rng& gen, std::size_t n, bool ties) {
  std::vector<T> scores(n);
  for (auto& s : scores) {
    s = ties ? static_cast<T>(1 + gen.below(4)) / T(4) : gen.uniform<T>(T(0.001), T(1));
  }
  return scores;
}

template <class T>
std::vector<std::array<T, 4>> random_variances(cvk::rng& gen, std::size_t n,
                                               cvk::var_voting_input input) {
  std::vector<std::array<T, 4>> v(n);
  for (auto& row : v) {
    for (auto& x : row) {
      const double sigma = gen.uniform(0.05, 3.0);
      switch (input) {
        case cvk::var_voting_input::variance:
          x = static_cast<T>(sigma * sigma);
          break;
        case cvk::var_voting_input::stddev:
          x = static_cast<T>(sigma);
          break;
        case cvk::var_voting_input::log_variance:
          x = static_cast<T>(std::log(sigma * sigma));
          break;
      }
    }
  }
  return v;
}

cvk::box_voting_options random_box_voting_options(cvk::rng& gen) {
  constexpr std::array<double, 7> thresholds = {0.8, 0.5, 0.3, 0.9, 0.0, -0.1, 0.7};
  cvk::box_voting_options o;
  o.threshold =
      gen.bernoulli(0.7) ? thresholds[gen.below(thresholds.size())] : gen.uniform(0.0, 1.0);
  o.scoring = static_cast<cvk::box_voting_scoring>(gen.below(6));
  constexpr std::array<double, 4> betas = {1.0, 2.0, 0.5, 3.0};
  o.beta = betas[gen.below(betas.size())];
  o.pixel_inclusive = gen.bernoulli(0.4);
  o.threads = static_cast<int>(gen.below(3));
  return o;
}

cvk::var_voting_options random_var_voting_options(cvk::rng& gen) {
  cvk::var_voting_options o;
  o.input = static_cast<cvk::var_voting_input>(gen.below(3));
  o.pixel_inclusive = gen.bernoulli(0.4);
  if (gen.bernoulli(0.3)) o.decay = cvk::var_voting_decay::hard;
  if (gen.bernoulli(0.3)) o.iou_threshold = gen.uniform(0.0, 1.0);
  if (gen.bernoulli(0.3)) o.sigma_t = gen.uniform(0.005, 0.2);
  if (gen.bernoulli(0.3)) o.soft_sigma = gen.uniform(0.1, 1.0);
  if (gen.bernoulli(0.3)) {
    constexpr std::array<double, 6> votes = {0.0, 0.3, 0.5, 0.9, -0.05, 0.01};
    o.vote_threshold = votes[gen.below(votes.size())];
  }
  if (gen.bernoulli(0.3)) o.score_threshold = gen.bernoulli(0.5) ? 0.05 : -1.0;
  return o;
}

std::string describe(density d, std::size_t n, const cvk::box_voting_options& o) {
  return std::string(density_names[static_cast<std::size_t>(d)]) + " N=" + std::to_string(n) +
         " threshold=" + std::to_string(o.threshold) + " scoring=" + cvk::to_string(o.scoring) +
         " beta=" + std::to_string(o.beta) + (o.pixel_inclusive ? " +1" : "");
}

std::string describe(density d, std::size_t n, const cvk::var_voting_options& o) {
  return std::string(density_names[static_cast<std::size_t>(d)]) + " N=" + std::to_string(n) +
         " input=" + std::to_string(static_cast<int>(o.input)) +
         (o.decay == cvk::var_voting_decay::hard ? " hard" : " gaussian") +
         " iou_threshold=" + std::to_string(o.iou_threshold) +
         " sigma_t=" + std::to_string(o.sigma_t) + " soft_sigma=" + std::to_string(o.soft_sigma) +
         " vote_threshold=" + std::to_string(o.vote_threshold) +
         " score_threshold=" + std::to_string(o.score_threshold) + (o.pixel_inclusive ? " +1" : "");
}

/// `count` boxes drawn from `all` (the kept boxes of a scene: NMS-like survivors or any subset).
template <class T, class S>
std::pair<boxes_t<T>, std::vector<S>> pick(cvk::rng& gen, const boxes_t<T>& all,
                                           const std::vector<S>& scores, std::size_t count) {
  boxes_t<T> kept;
  std::vector<S> kept_scores;
  for (std::size_t k = 0; k < count && !all.empty(); ++k) {
    const std::size_t j = gen.below(all.size());
    kept.push_back(all[j]);
    kept_scores.push_back(scores[j]);
  }
  return {kept, kept_scores};
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// box_voting

TEST_CASE("box_voting: hand-computed votes and every scoring method", "[box_voting]") {
  // kept (0,0,10,10) 0.9. Voters at 0.8: itself (IoU 1) and (0,0,10,8) (IoU 80/100 = 0.8,
  // exactly the threshold: >= votes); (2,0,12,10) has IoU 80/120 and does not vote.
  const boxes_t<double> kept = {{0, 0, 10, 10}};
  const std::vector<double> kept_scores = {0.9};
  const boxes_t<double> all = {{0, 0, 10, 10}, {0, 0, 10, 8}, {2, 0, 12, 10}};
  const std::vector<double> all_scores = {0.9, 0.6, 0.95};
  const auto run = [&](cvk::box_voting_scoring scoring, double beta) {
    return cvk::box_voting(kept, kept_scores, all, all_scores, {.scoring = scoring, .beta = beta});
  };
  const auto id = run(cvk::box_voting_scoring::id, 1.0);
  CHECK(id.boxes(0, 0) == 0.0);
  CHECK(id.boxes(0, 1) == 0.0);
  CHECK(id.boxes(0, 2) == Approx(10.0));
  CHECK(id.boxes(0, 3) == Approx((10 * 0.9 + 8 * 0.6) / 1.5));  // 9.2
  CHECK(id.scores(0) == 0.9);
  CHECK(run(cvk::box_voting_scoring::avg, 1.0).scores(0) == Approx(0.75));
  CHECK(run(cvk::box_voting_scoring::quasi_sum, 1.0).scores(0) == Approx(0.75));
  CHECK(run(cvk::box_voting_scoring::quasi_sum, 2.0).scores(0) == Approx(1.5 / 4));
  CHECK(run(cvk::box_voting_scoring::iou_avg, 1.0).scores(0) == Approx((0.9 + 0.6 * 0.8) / 1.8));
  CHECK(run(cvk::box_voting_scoring::generalized_avg, 2.0).scores(0) ==
        Approx(0.7648529270389177));  // sqrt((0.81 + 0.36) / 2)
  CHECK(run(cvk::box_voting_scoring::generalized_avg, 1.0).scores(0) == Approx(0.75));
  CHECK(run(cvk::box_voting_scoring::temp_avg, 1.0).scores(0) == Approx(0.75));  // β = 1: w
  // β = 0.5: w² / (w² + (1 - w)²): 0.81/0.82 and 0.36/0.52
  CHECK(run(cvk::box_voting_scoring::temp_avg, 0.5).scores(0) == Approx(0.8400562851782364));
  // the same boxes in float: the threshold 0.8 is compared in float, IoU 80/100 = 0.8f votes
  const boxes_t<float> kept_f = {{0, 0, 10, 10}};
  const boxes_t<float> all_f = {{0, 0, 10, 10}, {0, 0, 10, 8}, {2, 0, 12, 10}};
  const auto f = cvk::box_voting(kept_f, std::vector<float>{0.9f}, all_f,
                                 std::vector<float>{0.9f, 0.6f, 0.95f});
  CHECK(f.boxes(0, 3) == Approx(9.2));
  // threshold just above 0.8: only the kept box itself votes
  const auto above = cvk::box_voting(kept, kept_scores, all, all_scores, {.threshold = 0.8000001});
  CHECK(above.boxes(0, 3) == 10.0);
  // pixel-inclusive: (0,0,9,9) and (0,0,9,7) are 10×10 and 10×8 pixels: IoU 0.8 again
  const boxes_t<double> kept_px = {{0, 0, 9, 9}};
  const boxes_t<double> all_px = {{0, 0, 9, 9}, {0, 0, 9, 7}, {2, 0, 11, 9}};
  const auto px =
      cvk::box_voting(kept_px, kept_scores, all_px, all_scores, {.pixel_inclusive = true});
  CHECK(px.boxes(0, 3) == Approx((9 * 0.9 + 7 * 0.6) / 1.5));
  // ... which without +1 have IoU 63/81 < 0.8: nothing but the kept box votes
  const auto no_px = cvk::box_voting(kept_px, kept_scores, all_px, all_scores);
  CHECK(no_px.boxes(0, 3) == 9.0);
}

TEST_CASE("box_voting: no voter or zero weights keep the kept box and score", "[box_voting]") {
  const boxes_t<double> kept = {{0, 0, 10, 10}, {100, 100, 110, 110}, {5, 5, 5, 5}, {0, 0, 10, 10}};
  const std::vector<double> kept_scores = {0.9, 0.8, 0.7, 0.6};
  const boxes_t<double> all = {{0, 0, 10, 10}, {0, 0, 10, 9}, {5, 5, 5, 5}};
  const std::vector<double> zero_scores = {0.0, 0.0, 0.5};
  const auto r = cvk::box_voting(kept, kept_scores, all, zero_scores,
                                 {.scoring = cvk::box_voting_scoring::avg});
  for (index_t k = 0; k < 4; ++k) {
    INFO("kept box " << k);
    for (index_t c = 0; c < 4; ++c)
      CHECK(r.boxes(k, c) == kept[static_cast<std::size_t>(k)][static_cast<std::size_t>(c)]);
    CHECK(r.scores(k) == kept_scores[static_cast<std::size_t>(k)]);
  }
  // a zero-area box has IoU 0 with everything (itself included): nothing votes for it
  // threshold 0: every box votes (IoU 0 >= 0), weighted by score
  const std::vector<double> scores = {1.0, 1.0, 2.0};
  const auto all_vote = cvk::box_voting(kept, kept_scores, all, scores, {.threshold = 0.0});
  CHECK(all_vote.boxes(1, 0) == Approx((0 + 0 + 2 * 5) / 4.0));
  CHECK(all_vote.boxes(1, 3) == Approx((10 + 9 + 2 * 5) / 4.0));
  // iou_avg with Σ IoU = 0 (only the zero-area box votes at threshold 0... plus the others at 0)
  const boxes_t<double> point = {{5, 5, 5, 5}};
  const auto iou_avg =
      cvk::box_voting(point, std::vector<double>{0.25}, all, scores,
                      {.threshold = 0.0, .scoring = cvk::box_voting_scoring::iou_avg});
  CHECK(iou_avg.scores(0) == 0.25);
  CHECK(iou_avg.boxes(0, 0) == Approx(2.5));
}

TEMPLATE_TEST_CASE("box_voting equals the plain definition on random scenes", "[box_voting]", float,
                   double) {
  using T = TestType;
  cvk::rng gen(31, std::is_same_v<T, float> ? 1 : 2);
  for (int scene = 0; scene < 600; ++scene) {
    const auto d = static_cast<density>(scene % 5);
    const std::size_t n = gen.bernoulli(0.15) ? gen.below(8) : 20 + gen.below(600);
    const auto all = random_scene<T>(gen, d, n);
    const auto scores = random_scores<T>(gen, n, gen.bernoulli(0.3));
    auto [kept, kept_scores] = pick(gen, all, scores, gen.below(60));
    if (gen.bernoulli(0.3)) {  // kept boxes that are not among all_boxes
      const auto extra = random_scene<T>(gen, d, 1 + gen.below(10));
      for (const auto& b : extra) {
        kept.push_back(b);
        kept_scores.push_back(T(0.5));
      }
    }
    const auto options = random_box_voting_options(gen);
    INFO(describe(d, n, options) << " K=" << kept.size());
    require_same(cvk::box_voting(kept, kept_scores, all, scores, options),
                 reference_box_voting(kept, kept_scores, all, scores, options));
  }
}

TEST_CASE("box_voting: large scenes are the same for any thread count", "[box_voting]") {
  cvk::rng gen(37);
  const auto all = random_scene<float>(gen, density::sparse, 8000);
  const auto scores = random_scores<float>(gen, 8000, false);
  const auto [kept, kept_scores] = pick(gen, all, scores, 1500);
  const cvk::box_voting_options base{.threshold = 0.5, .scoring = cvk::box_voting_scoring::avg};
  const auto expected = reference_box_voting(kept, kept_scores, all, scores, base);
  for (const int threads : {0, 1, 2, 3}) {
    INFO("threads " << threads);
    cvk::box_voting_options o = base;
    o.threads = threads;
    require_same(cvk::box_voting(kept, kept_scores, all, scores, o), expected);
  }
}

TEST_CASE("box_voting: formats, strides, containers and integer input", "[box_voting]") {
  cvk::rng gen(41);
  // integer-valued boxes with even sides: every format conversion is exact
  boxes_t<double> all(300);
  for (auto& b : all) {
    const auto x = static_cast<double>(gen.below(200));
    const auto y = static_cast<double>(gen.below(200));
    b = {x, y, x + 2.0 * static_cast<double>(1 + gen.below(30)),
         y + 2.0 * static_cast<double>(1 + gen.below(30))};
  }
  const auto scores = random_scores<double>(gen, all.size(), false);
  const auto [kept, kept_scores] = pick(gen, all, scores, 40);
  const cvk::box_voting_options base{.threshold = 0.5, .scoring = cvk::box_voting_scoring::iou_avg};
  const auto expected = reference_box_voting(kept, kept_scores, all, scores, base);
  require_same(cvk::box_voting(kept, kept_scores, all, scores, base), expected);
  for (const auto format :
       {cvk::box_format::xywh, cvk::box_format::cxcywh, cvk::box_format::yxyx}) {
    INFO(cvk::to_string(format));
    const auto convert = [&](const boxes_t<double>& b) {
      return cvk::box_convert(b, cvk::box_format::xyxy, format);
    };
    cvk::box_voting_options o = base;
    o.format = format;
    const auto r = cvk::box_voting(convert(kept), kept_scores, convert(all), scores, o);
    const auto back = cvk::box_convert(r.boxes, format, cvk::box_format::xyxy);
    for (std::size_t k = 0; k < kept.size(); ++k) {
      for (std::size_t c = 0; c < 4; ++c) {
        CHECK(back(static_cast<index_t>(k), static_cast<index_t>(c)) ==
              Approx(expected.boxes[k][c]).epsilon(1e-12).margin(1e-9));
      }
      CHECK(r.scores(static_cast<index_t>(k)) == expected.scores[k]);
    }
  }
  // strided boxes (every layout) and scores walked backwards with stride 3
  std::vector<double> spread(3 * scores.size(), -7.0);
  for (std::size_t i = 0; i < scores.size(); ++i) spread[3 * (scores.size() - 1 - i)] = scores[i];
  const auto backwards = cvk::view(spread.data() + 3 * (scores.size() - 1),
                                   {static_cast<index_t>(scores.size())}, {index_t{-3}});
  for (const auto l : cvk_test::all_layouts) {
    INFO(cvk_test::to_string(l));
    const auto stored_all = cvk_test::with_layout(all, l, std::nan(""));
    const auto stored_kept = cvk_test::with_layout(kept, l, std::nan(""));
    require_same(cvk::box_voting(stored_kept.view, kept_scores, stored_all.view, backwards, base),
                 expected);
  }
  // cvk::tensor inputs
  cvk::tensor<double, 2> all_tensor(static_cast<index_t>(all.size()), index_t{4});
  for (std::size_t i = 0; i < all.size(); ++i) {
    for (std::size_t c = 0; c < 4; ++c)
      all_tensor(static_cast<index_t>(i), static_cast<index_t>(c)) = all[i][c];
  }
  require_same(cvk::box_voting(kept, kept_scores, all_tensor, scores, base), expected);
  // integer boxes and scores: computed in double
  const boxes_t<int> int_kept = {{0, 0, 10, 10}};
  const boxes_t<int> int_all = {{0, 0, 10, 10}, {0, 0, 10, 9}, {0, 0, 10, 2}};
  const auto ints =
      cvk::box_voting(int_kept, std::vector<int>{3}, int_all, std::vector<int>{1, 3, 5});
  static_assert(std::is_same_v<decltype(ints), const cvk::box_voting_result<double, double>>);
  CHECK(ints.boxes(0, 3) == Approx((10.0 + 27.0) / 4.0));
  CHECK(ints.scores(0) == 3.0);
}

TEST_CASE("box_voting: empty inputs", "[box_voting]") {
  const boxes_t<float> none;
  const std::vector<float> no_scores;
  const boxes_t<float> one = {{0, 0, 1, 1}};
  const std::vector<float> one_score = {0.5f};
  const auto a = cvk::box_voting(none, no_scores, one, one_score);
  CHECK(a.boxes.extent(0) == 0);
  CHECK(a.boxes.extent(1) == 4);
  CHECK(a.scores.size() == 0);
  const auto b = cvk::box_voting(one, one_score, none, no_scores);
  CHECK(b.boxes(0, 2) == 1.0f);
  CHECK(b.scores(0) == 0.5f);
}

TEST_CASE("box_voting: errors name the function, the argument and the shapes", "[box_voting]") {
  const boxes_t<float> seven(7, std::array<float, 4>{0, 0, 1, 1});
  const std::vector<float> s7(7, 0.5f);
  const std::vector<float> s5(5, 0.5f);
  std::vector<float> flat(21, 0.0f);
  const auto seven_by_three = cvk::view(flat.data(), 7, 3);
  CHECK_THROWS_MATCHES(cvk::box_voting(seven_by_three, s7, seven, s7), cvk::shape_error,
                       Catch::Message("box_voting: kept_boxes must be K×4, got 7×3"));
  CHECK_THROWS_MATCHES(cvk::box_voting(seven, s7, seven_by_three, s7), cvk::shape_error,
                       Catch::Message("box_voting: all_boxes must be N×4, got 7×3"));
  CHECK_THROWS_MATCHES(
      cvk::box_voting(seven, s5, seven, s7), cvk::shape_error,
      Catch::Message("box_voting: kept_scores must have 7 elements (one per kept box), got 5"));
  CHECK_THROWS_MATCHES(
      cvk::box_voting(seven, s7, seven, s5), cvk::shape_error,
      Catch::Message(
          "box_voting: all_scores must have 7 elements (one per box of all_boxes), got 5"));
  CHECK_THROWS_AS(cvk::box_voting(seven, s7, seven, s7, {.threshold = std::nan("")}),
                  cvk::invalid_argument);
  CHECK_THROWS_AS(
      cvk::box_voting(seven, s7, seven, s7, {.threshold = std::numeric_limits<double>::infinity()}),
      cvk::invalid_argument);
  CHECK_THROWS_AS(cvk::box_voting(seven, s7, seven, s7, {.beta = std::nan("")}),
                  cvk::invalid_argument);
  CHECK_THROWS_MATCHES(cvk::box_voting(seven, s7, seven, s7,
                                       {.scoring = cvk::box_voting_scoring::temp_avg, .beta = 0.0}),
                       cvk::invalid_argument,
                       Catch::Message("box_voting: beta must not be 0 for scoring TEMP_AVG"));
  CHECK_THROWS_AS(
      cvk::box_voting(seven, s7, seven, s7,
                      {.scoring = cvk::box_voting_scoring::generalized_avg, .beta = 0.0}),
      cvk::invalid_argument);
  CHECK_NOTHROW(cvk::box_voting(seven, s7, seven, s7,
                                {.scoring = cvk::box_voting_scoring::quasi_sum, .beta = 0.0}));
}

// ---------------------------------------------------------------------------------------------
// var_voting

TEST_CASE("var_voting: hand-computed vote, decay, selection order", "[var_voting]") {
  // A = (0,0,10,10) 0.9 σ²=1; B = (0,0,10,12) 0.8 σ²=4; C far away 0.85.
  // IoU(A, B) = 100/120 = 5/6, p = exp(-(1/6)²/0.01) = 0.0621765...
  // A's y2 = (10/1 + p·12/4) / (1/1 + p/4); B decays to 0.8·exp(-(5/6)²/0.5) = 0.19948...
  const boxes_t<double> boxes = {{0, 0, 10, 10}, {0, 0, 10, 12}, {100, 100, 110, 110}};
  const std::vector<double> scores = {0.9, 0.8, 0.85};
  const std::vector<std::array<double, 4>> variances = {{1, 1, 1, 1}, {4, 4, 4, 4}, {1, 1, 1, 1}};
  const auto r = cvk::var_voting(boxes, scores, variances);
  REQUIRE(indices_of(r) == std::vector<index_t>{0, 2, 1});
  CHECK(r.boxes(0, 0) == 0.0);
  CHECK(r.boxes(0, 1) == 0.0);
  CHECK(r.boxes(0, 2) == Approx(10.0));
  CHECK(r.boxes(0, 3) == Approx(10.030612418566465));
  CHECK(r.scores(0) == 0.9);
  CHECK(r.scores(1) == 0.85);
  CHECK(r.scores(2) == Approx(0.19948176702183698));
  // B votes alone (A is no longer remaining): unchanged
  CHECK(r.boxes(2, 3) == 12.0);
  CHECK(r.boxes(1, 2) == 110.0);
  // the same as σ (stddev) and as log σ²
  const std::vector<std::array<double, 4>> sigmas = {{1, 1, 1, 1}, {2, 2, 2, 2}, {1, 1, 1, 1}};
  const auto s = cvk::var_voting(boxes, scores, sigmas, {.input = cvk::var_voting_input::stddev});
  CHECK(s.boxes(0, 3) == r.boxes(0, 3));
  std::vector<std::array<double, 4>> logs = variances;
  for (auto& row : logs) {
    for (auto& x : row) x = std::log(x);
  }
  const auto l =
      cvk::var_voting(boxes, scores, logs, {.input = cvk::var_voting_input::log_variance});
  CHECK(l.boxes(0, 3) == Approx(10.030612418566465).epsilon(1e-14));
  // hard decay: IoU 5/6 > 0.5 sets B's score to 0 < 0.001: discarded
  const auto h = cvk::var_voting(boxes, scores, variances, {.decay = cvk::var_voting_decay::hard});
  CHECK(indices_of(h) == std::vector<index_t>{0, 2});
  CHECK(h.boxes(0, 3) == r.boxes(0, 3));  // the vote comes before the decay
  // hard decay with IoU 5/6 <= iou_threshold: B keeps its score 0.8
  const auto h2 = cvk::var_voting(boxes, scores, variances,
                                  {.decay = cvk::var_voting_decay::hard, .iou_threshold = 0.9});
  CHECK(indices_of(h2) == std::vector<index_t>{0, 2, 1});
  CHECK(h2.scores(2) == 0.8);
  // pixel-inclusive: (0,0,9,9) and (0,0,9,11) are 10×10 and 10×12 pixels: the same IoU
  const boxes_t<double> px = {{0, 0, 9, 9}, {0, 0, 9, 11}, {100, 100, 109, 109}};
  const auto p = cvk::var_voting(px, scores, variances, {.pixel_inclusive = true});
  CHECK(p.boxes(0, 3) ==
        Approx((9 + 0.06217652402211632 * 11 / 4) / (1 + 0.06217652402211632 / 4)));
  CHECK(p.scores(2) == Approx(0.19948176702183698));
}

TEST_CASE("var_voting: ties follow KL-Loss's array positions, which its swaps permute",
          "[var_voting]") {
  const std::vector<std::array<double, 4>> unit3(3, std::array<double, 4>{1, 1, 1, 1});
  const std::vector<std::array<double, 4>> unit(4, std::array<double, 4>{1, 1, 1, 1});
  // Selecting box 2 swaps it with position 0: box 0 moves to position 2, so of the two 0.4
  // boxes box 1 (position 1) comes first.
  const boxes_t<double> apart = {{0, 0, 1, 1}, {10, 0, 11, 1}, {20, 0, 21, 1}};
  const std::vector<double> s1 = {0.4, 0.4, 0.9};
  CHECK(indices_of(cvk::var_voting(apart, s1, unit3)) == std::vector<index_t>{2, 1, 0});
  // Box 1 (0.0011) overlaps box 0, decays below 0.001 and swaps with the last position: box 3
  // moves to position 1 and comes before box 2 although both score 0.4.
  const boxes_t<double> boxes = {{0, 0, 10, 10}, {0, 0, 10, 11}, {50, 0, 60, 10}, {80, 0, 90, 10}};
  const std::vector<double> s2 = {0.5, 0.0011, 0.4, 0.4};
  const auto r = cvk::var_voting(boxes, s2, unit);
  CHECK(indices_of(r) == std::vector<index_t>{0, 3, 2});
  // the same with the reference
  require_same(r, reference_var_voting(boxes, s2, unit, {}));
  // equal scores, no swaps: index order
  const std::vector<double> equal = {0.5, 0.5, 0.5};
  CHECK(indices_of(cvk::var_voting(apart, equal, unit3)) == std::vector<index_t>{0, 1, 2});
}

TEST_CASE("var_voting: a dropped box's replacement is decayed in the same pass", "[var_voting]") {
  // Selected box 0 overlaps boxes 1 and 3. Box 1 drops and box 3 (the last) moves into its
  // position, where it is decayed next; box 2 (no overlap) is untouched.
  const boxes_t<double> boxes = {{0, 0, 10, 10}, {0, 0, 10, 10}, {40, 0, 50, 10}, {1, 0, 11, 10}};
  const std::vector<double> scores = {0.9, 0.0012, 0.3, 0.6};
  const std::vector<std::array<double, 4>> unit(4, std::array<double, 4>{1, 1, 1, 1});
  const auto r = cvk::var_voting(boxes, scores, unit);
  // IoU(0, 3) = 90/110: box 3 decays once to 0.6·exp(-(9/11)²/0.5)
  REQUIRE(indices_of(r) == std::vector<index_t>{0, 2, 3});
  CHECK(r.scores(2) == Approx(0.6 * std::exp(-(81.0 / 121.0) / 0.5)));
  require_same(r, reference_var_voting(boxes, scores, unit, {}));
}

TEMPLATE_TEST_CASE("var_voting equals KL-Loss's loop on random scenes", "[var_voting]", float,
                   double) {
  using T = TestType;
  cvk::rng gen(43, std::is_same_v<T, float> ? 1 : 2);
  for (int scene = 0; scene < 700; ++scene) {
    const auto d = static_cast<density>(scene % 5);
    const std::size_t n = gen.bernoulli(0.15) ? gen.below(8) : 10 + gen.below(400);
    const auto boxes = random_scene<T>(gen, d, n);
    const auto scores = random_scores<T>(gen, n, gen.bernoulli(0.3));
    const auto options =
        gen.bernoulli(0.3) ? cvk::var_voting_options{} : random_var_voting_options(gen);
    const auto variances = random_variances<T>(gen, n, options.input);
    INFO(describe(d, n, options));
    require_same(cvk::var_voting(boxes, scores, variances, options),
                 reference_var_voting(boxes, scores, variances, options));
  }
}

TEST_CASE("var_voting: float boxes with double scores and variances", "[var_voting]") {
  cvk::rng gen(47);
  for (int scene = 0; scene < 40; ++scene) {
    const auto d = static_cast<density>(scene % 5);
    const auto boxes = random_scene<float>(gen, d, 150);
    const auto scores = random_scores<double>(gen, 150, false);
    const auto variances = random_variances<double>(gen, 150, cvk::var_voting_input::variance);
    const auto r = cvk::var_voting(boxes, scores, variances);
    static_assert(std::is_same_v<decltype(r), const cvk::var_voting_result<float, double>>);
    require_same(r, reference_var_voting(boxes, scores, variances, {}));
  }
}

TEST_CASE("var_voting: the dense shelf and a large sparse scene equal the reference",
          "[var_voting]") {
  cvk::rng gen(53);
  // 12 objects × 60 jittered candidates, and 1500 sparse boxes
  boxes_t<float> shelf;
  for (int o = 0; o < 12; ++o) {
    const double cx = 40.0 + 65.0 * (o % 4);
    const double cy = 50.0 + 95.0 * (o / 4);
    for (int c = 0; c < 60; ++c) {
      const double w = 60.0 * std::exp(gen.normal(0.0, 0.1));
      const double h = 90.0 * std::exp(gen.normal(0.0, 0.1));
      const double x = cx + gen.normal(0.0, 6.0);
      const double y = cy + gen.normal(0.0, 9.0);
      shelf.push_back({static_cast<float>(x - w / 2), static_cast<float>(y - h / 2),
                       static_cast<float>(x + w / 2), static_cast<float>(y + h / 2)});
    }
  }
  for (const auto& boxes : {shelf, random_scene<float>(gen, density::sparse, 1500)}) {
    const auto scores = random_scores<float>(gen, boxes.size(), false);
    const auto variances =
        random_variances<float>(gen, boxes.size(), cvk::var_voting_input::variance);
    for (const auto decay : {cvk::var_voting_decay::gaussian, cvk::var_voting_decay::hard}) {
      const cvk::var_voting_options o{.decay = decay};
      require_same(cvk::var_voting(boxes, scores, variances, o),
                   reference_var_voting(boxes, scores, variances, o));
    }
  }
}

TEST_CASE("var_voting: formats, strides, containers and integer input", "[var_voting]") {
  cvk::rng gen(59);
  boxes_t<double> boxes(250);
  for (auto& b : boxes) {
    const auto x = static_cast<double>(gen.below(300));
    const auto y = static_cast<double>(gen.below(300));
    b = {x, y, x + 2.0 * static_cast<double>(1 + gen.below(30)),
         y + 2.0 * static_cast<double>(1 + gen.below(30))};
  }
  const auto scores = random_scores<double>(gen, boxes.size(), true);
  // variances 1, 4 or 16: every x/σ² and 1/σ² exact, so format round trips compare closely
  std::vector<std::array<double, 4>> variances(boxes.size());
  for (auto& row : variances) {
    for (auto& x : row) x = static_cast<double>(1u << (2 * gen.below(3)));
  }
  const auto expected = reference_var_voting(boxes, scores, variances, {});
  require_same(cvk::var_voting(boxes, scores, variances), expected);
  for (const auto format :
       {cvk::box_format::xywh, cvk::box_format::cxcywh, cvk::box_format::yxyx}) {
    INFO(cvk::to_string(format));
    const auto converted = cvk::box_convert(boxes, cvk::box_format::xyxy, format);
    auto v = variances;
    if (format == cvk::box_format::yxyx) {  // variances in the boxes' corner order
      for (auto& row : v) row = {row[1], row[0], row[3], row[2]};
    }
    const auto r = cvk::var_voting(converted, scores, v, {.format = format});
    CHECK(indices_of(r) == expected.indices);
    const auto back = cvk::box_convert(r.boxes, format, cvk::box_format::xyxy);
    for (std::size_t k = 0; k < expected.boxes.size(); ++k) {
      for (std::size_t c = 0; c < 4; ++c) {
        CHECK(back(static_cast<index_t>(k), static_cast<index_t>(c)) ==
              Approx(expected.boxes[k][c]).epsilon(1e-12).margin(1e-9));
      }
      CHECK(r.scores(static_cast<index_t>(k)) == expected.scores[k]);
    }
  }
  // every layout for boxes and variances; scores backwards with stride 3
  std::vector<double> spread(3 * scores.size(), -7.0);
  for (std::size_t i = 0; i < scores.size(); ++i) spread[3 * (scores.size() - 1 - i)] = scores[i];
  const auto backwards = cvk::view(spread.data() + 3 * (scores.size() - 1),
                                   {static_cast<index_t>(scores.size())}, {index_t{-3}});
  for (const auto l : cvk_test::all_layouts) {
    INFO(cvk_test::to_string(l));
    const auto stored = cvk_test::with_layout(boxes, l, std::nan(""));
    const auto stored_v = cvk_test::with_layout(variances, l, std::nan(""));
    require_same(cvk::var_voting(stored.view, backwards, stored_v.view), expected);
  }
  // cvk::tensor variances
  cvk::tensor<double, 2> vt(static_cast<index_t>(variances.size()), index_t{4});
  for (std::size_t i = 0; i < variances.size(); ++i) {
    for (std::size_t c = 0; c < 4; ++c)
      vt(static_cast<index_t>(i), static_cast<index_t>(c)) = variances[i][c];
  }
  require_same(cvk::var_voting(boxes, scores, vt), expected);
  // integer boxes, scores and variances: computed in double
  const boxes_t<int> int_boxes = {{0, 0, 10, 10}, {0, 0, 10, 12}, {100, 100, 110, 110}};
  const std::vector<int> int_scores = {9, 8, 10};
  const std::vector<std::array<int, 4>> int_var = {{1, 1, 1, 1}, {4, 4, 4, 4}, {1, 1, 1, 1}};
  const auto ints = cvk::var_voting(int_boxes, int_scores, int_var);
  static_assert(std::is_same_v<decltype(ints), const cvk::var_voting_result<double, double>>);
  CHECK(indices_of(ints) == std::vector<index_t>{2, 0, 1});
  CHECK(ints.boxes(1, 3) == Approx(10.030612418566465));
}

TEST_CASE("var_voting: edge cases", "[var_voting]") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const std::vector<std::array<double, 4>> unit(5, std::array<double, 4>{1, 1, 1, 1});
  SECTION("empty and single input") {
    const auto e = cvk::var_voting(boxes_t<float>{}, std::vector<float>{},
                                   std::vector<std::array<float, 4>>{});
    CHECK(e.indices.size() == 0);
    CHECK(e.boxes.extent(0) == 0);
    CHECK(e.boxes.extent(1) == 4);
    const boxes_t<double> one = {{1, 2, 3, 4}};
    const auto s = cvk::var_voting(one, std::vector<double>{0.0001},
                                   std::vector<std::array<double, 4>>{{2, 2, 2, 2}});
    CHECK(indices_of(s) == std::vector<index_t>{0});  // never decayed: never discarded
    CHECK(s.boxes(0, 0) == 1.0);
    CHECK(s.boxes(0, 3) == 4.0);
  }
  SECTION("zero-area boxes vote for themselves only") {
    const boxes_t<double> boxes = {{5, 5, 5, 5}, {5, 5, 5, 5}, {0, 0, 10, 10}};
    const std::vector<double> scores = {0.9, 0.8, 0.7};
    const auto r = cvk::var_voting(
        boxes, scores, std::vector<std::array<double, 4>>(unit.begin(), unit.begin() + 3));
    CHECK(indices_of(r) == std::vector<index_t>{0, 1, 2});
    CHECK(r.boxes(0, 0) == 5.0);
    CHECK(r.boxes(2, 2) == 10.0);
    CHECK(r.scores(1) == 0.8);  // no positive IoU: no decay
  }
  SECTION("NaN scores are selected first, as numpy's argmax; NaN never drops") {
    const boxes_t<double> boxes = {
        {0, 0, 10, 10}, {0, 0, 10, 10}, {50, 50, 60, 60}, {50, 50, 60, 61}, {90, 0, 99, 9}};
    const std::vector<double> scores = {0.9, nan, 0.5, nan, 0.7};
    const auto r = cvk::var_voting(boxes, scores, unit);
    require_same(r, reference_var_voting(boxes, scores, unit, {}));
    // box 1 (NaN) first, decaying box 0 to 0.9·e^-2; then box 3 (NaN), decaying box 2 to
    // 0.5·exp(-(10/11)²/0.5); then 4 (0.7), 0 (0.12), 2 (0.095)
    CHECK(indices_of(r) == std::vector<index_t>{1, 3, 4, 0, 2});
    CHECK(r.scores(3) == Approx(0.9 * std::exp(-2.0)));
    CHECK(std::isnan(r.scores(0)));
  }
  SECTION("NaN and infinite coordinates: IoU NaN or 0, no vote, no decay") {
    const double inf = std::numeric_limits<double>::infinity();
    const boxes_t<double> boxes = {
        {0, 0, 10, 10}, {0, 0, nan, 10}, {0, 0, 10, 10}, {-inf, 0, 10, 10}, {0, 0, 10, 10}};
    const std::vector<double> scores = {0.9, 0.8, 0.7, 0.6, 0.5};
    for (const double vote : {0.01, -0.5}) {
      const cvk::var_voting_options o{.vote_threshold = vote};
      INFO("vote_threshold " << vote);
      require_same(cvk::var_voting(boxes, scores, unit, o),
                   reference_var_voting(boxes, scores, unit, o));
    }
  }
  SECTION("IoU exactly at the vote threshold does not vote (>)") {
    const boxes_t<double> boxes = {{0, 0, 2, 1}, {0, 0, 1, 1}};  // IoU 1/2
    const std::vector<double> scores = {0.9, 0.8};
    const std::vector<std::array<double, 4>> v(2, std::array<double, 4>{1, 1, 1, 1});
    const auto at = cvk::var_voting(boxes, scores, v, {.vote_threshold = 0.5});
    CHECK(at.boxes(0, 2) == 2.0);
    const auto below = cvk::var_voting(boxes, scores, v, {.vote_threshold = 0.4999});
    CHECK(below.boxes(0, 2) < 2.0);
    // hard decay: IoU 1/2 at iou_threshold 0.5 is not > 0.5: kept
    const auto hard = cvk::var_voting(boxes, scores, v,
                                      {.decay = cvk::var_voting_decay::hard, .iou_threshold = 0.5});
    CHECK(indices_of(hard) == std::vector<index_t>{0, 1});
  }
  SECTION("infinite variances: the weights sum to 0, the box keeps its corner") {
    const double inf = std::numeric_limits<double>::infinity();
    const boxes_t<double> boxes = {{0, 0, 10, 10}, {1, 1, 11, 11}};
    const std::vector<double> scores = {0.9, 0.8};
    const std::vector<std::array<double, 4>> v = {{inf, 1, 1, 1}, {inf, 1, 1, 1}};
    const auto r = cvk::var_voting(boxes, scores, v);
    CHECK(r.boxes(0, 0) == 0.0);
    CHECK(r.boxes(0, 1) > 0.0);  // voted
    require_same(r, reference_var_voting(boxes, scores, v, {}));
  }
}

TEST_CASE("var_voting: errors name the function, the argument and the shapes", "[var_voting]") {
  const boxes_t<float> seven(7, std::array<float, 4>{0, 0, 1, 1});
  const std::vector<float> s7(7, 0.5f);
  const std::vector<float> s5(5, 0.5f);
  const std::vector<std::array<float, 4>> v7(7, std::array<float, 4>{1, 1, 1, 1});
  const std::vector<std::array<float, 4>> v6(6, std::array<float, 4>{1, 1, 1, 1});
  std::vector<float> flat(21, 1.0f);
  const auto seven_by_three = cvk::view(flat.data(), 7, 3);
  CHECK_THROWS_MATCHES(cvk::var_voting(seven_by_three, s7, v7), cvk::shape_error,
                       Catch::Message("var_voting: boxes must be N×4, got 7×3"));
  CHECK_THROWS_MATCHES(
      cvk::var_voting(seven, s5, v7), cvk::shape_error,
      Catch::Message("var_voting: scores must have 7 elements (one per box), got 5"));
  CHECK_THROWS_MATCHES(
      cvk::var_voting(seven, s7, v6), cvk::shape_error,
      Catch::Message("var_voting: variances must be 7×4 (one row per box), got 6×4"));
  CHECK_THROWS_MATCHES(
      cvk::var_voting(seven, s7, seven_by_three), cvk::shape_error,
      Catch::Message("var_voting: variances must be 7×4 (one row per box), got 7×3"));
  CHECK_THROWS_MATCHES(cvk::var_voting(seven, s7, v7, {.sigma_t = 0.0}), cvk::invalid_argument,
                       Catch::Message("var_voting: sigma_t must be > 0, got 0"));
  CHECK_THROWS_AS(cvk::var_voting(seven, s7, v7, {.sigma_t = -0.01}), cvk::invalid_argument);
  CHECK_THROWS_AS(cvk::var_voting(seven, s7, v7, {.sigma_t = std::nan("")}), cvk::invalid_argument);
  CHECK_THROWS_AS(cvk::var_voting(seven, s7, v7, {.soft_sigma = 0.0}), cvk::invalid_argument);
  CHECK_THROWS_AS(cvk::var_voting(seven, s7, v7, {.vote_threshold = std::nan("")}),
                  cvk::invalid_argument);
  CHECK_THROWS_MATCHES(cvk::var_voting(seven, s7, v7, {.vote_threshold = 1.0}),
                       cvk::invalid_argument,
                       Catch::Message("var_voting: vote_threshold must be < 1, got 1"));
  CHECK_THROWS_MATCHES(cvk::var_voting(seven, s7, v7, {.iou_threshold = std::nan("")}),
                       cvk::invalid_argument,
                       Catch::Message("var_voting: iou_threshold must be a number, got nan"));
  CHECK_THROWS_AS(cvk::var_voting(seven, s7, v7, {.score_threshold = std::nan("")}),
                  cvk::invalid_argument);
}

// ---------------------------------------------------------------------------------------------
// numpy re-implementations of Detectron's box_voting and KL-Loss's soft (float64)

TEST_CASE("box_voting and var_voting equal the numpy peers on the fixtures",
          "[box_voting][var_voting]") {
  const cvk_test::fixture_file file(cvk_test::test_data_path("voting_peers.txt"));
  std::size_t box_checked = 0;
  std::size_t var_checked = 0;
  for (const auto& [name, table] : file.tables()) {
    // box_voting/<scene>/<method>/<beta index>/<pixel>/boxes
    if (name.rfind("box_voting/", 0) == 0 && name.size() > 6 &&
        name.compare(name.size() - 6, 6, "/boxes") == 0) {
      const std::string stem = name.substr(0, name.size() - 6);
      const auto parts = [&] {
        std::vector<std::string> p;
        std::size_t start = 0;
        for (std::size_t slash = stem.find('/'); slash != std::string::npos;
             slash = stem.find('/', start)) {
          p.push_back(stem.substr(start, slash - start));
          start = slash + 1;
        }
        p.push_back(stem.substr(start));
        return p;
      }();
      REQUIRE(parts.size() == 5);
      const std::string scene = parts[1];
      const auto method = static_cast<cvk::box_voting_scoring>(std::stoi(parts[2]));
      const double beta = file.table("betas").values<double>()[std::stoul(parts[3])];
      const bool pixel = parts[4] == "1";
      const auto kept = file.table("scene/" + scene + "/kept_boxes").rows_of<double, 4>();
      const auto kept_scores = file.table("scene/" + scene + "/kept_scores").values<double>();
      const auto all = file.table("scene/" + scene + "/all_boxes").rows_of<double, 4>();
      const auto all_scores = file.table("scene/" + scene + "/all_scores").values<double>();
      const auto want_boxes = table.rows_of<double, 4>();
      const auto want_scores = file.table(stem + "/scores").values<double>();
      INFO(name);
      const auto r = cvk::box_voting(kept, kept_scores, all, all_scores,
                                     {.threshold = file.table("vote_th").values<double>()[0],
                                      .scoring = method,
                                      .beta = beta,
                                      .pixel_inclusive = pixel});
      REQUIRE(r.boxes.extent(0) == static_cast<index_t>(want_boxes.size()));
      for (std::size_t k = 0; k < want_boxes.size(); ++k) {
        for (std::size_t c = 0; c < 4; ++c) {
          REQUIRE(r.boxes(static_cast<index_t>(k), static_cast<index_t>(c)) ==
                  Approx(want_boxes[k][c]).epsilon(1e-12).margin(1e-9));
        }
        REQUIRE(r.scores(static_cast<index_t>(k)) ==
                Approx(want_scores[k]).epsilon(1e-12).margin(1e-12));
      }
      ++box_checked;
    }
    // var_voting/<scene>/<hard>/<pixel>/indices
    if (name.rfind("var_voting/", 0) == 0 && name.size() > 8 &&
        name.compare(name.size() - 8, 8, "/indices") == 0) {
      const std::string stem = name.substr(0, name.size() - 8);
      const auto first = stem.find('/');
      const auto second = stem.find('/', first + 1);
      const auto third = stem.find('/', second + 1);
      const std::string scene = stem.substr(first + 1, second - first - 1);
      const bool hard = stem.substr(second + 1, third - second - 1) == "1";
      const bool pixel = stem.substr(third + 1) == "1";
      const auto boxes = file.table("vscene/" + scene + "/boxes").rows_of<double, 4>();
      const auto scores = file.table("vscene/" + scene + "/scores").values<double>();
      const auto sigmas = file.table("vscene/" + scene + "/sigmas").rows_of<double, 4>();
      INFO(name);
      cvk::var_voting_options o;
      o.input = cvk::var_voting_input::stddev;
      o.pixel_inclusive = pixel;
      o.decay = hard ? cvk::var_voting_decay::hard : cvk::var_voting_decay::gaussian;
      o.iou_threshold = file.table("nms_th").values<double>()[0];
      const auto r = cvk::var_voting(boxes, scores, sigmas, o);
      CHECK(indices_of(r) == table.values<index_t>());
      const auto want_boxes = file.table(stem + "/boxes").rows_of<double, 4>();
      const auto want_scores = file.table(stem + "/scores").values<double>();
      REQUIRE(r.boxes.extent(0) == static_cast<index_t>(want_boxes.size()));
      for (std::size_t k = 0; k < want_boxes.size(); ++k) {
        for (std::size_t c = 0; c < 4; ++c) {
          REQUIRE(r.boxes(static_cast<index_t>(k), static_cast<index_t>(c)) ==
                  Approx(want_boxes[k][c]).epsilon(1e-11).margin(1e-9));
        }
        REQUIRE(r.scores(static_cast<index_t>(k)) ==
                Approx(want_scores[k]).epsilon(1e-11).margin(1e-14));
      }
      ++var_checked;
    }
  }
  CHECK(box_checked >= 30);
  CHECK(var_checked >= 12);
}

TEST_CASE("var_voting: zero variances are exact and dominate the vote (issue 9 #7)",
          "[var_voting][regression]") {
  // A = (0,0,10,10) 0.9, B = (0,0,10,12) 0.8: IoU 5/6, p = exp(-(1/6)²/0.01). σ² = 0 gave
  // x/0 and 1/0 = inf: the old vote was inf/inf = NaN (0/0 for a zero coordinate).
  const boxes_t<double> boxes = {{0, 0, 10, 10}, {0, 0, 10, 12}};
  const std::vector<double> scores = {0.9, 0.8};
  const double p = std::exp(-(1.0 / 6.0) * (1.0 / 6.0) / 0.01);
  const auto row = [](const auto& r, index_t k) {
    return std::array<double, 4>{r.boxes(k, 0), r.boxes(k, 1), r.boxes(k, 2), r.boxes(k, 3)};
  };
  SECTION("an isolated zero-variance box comes out unchanged, in every input form") {
    const boxes_t<double> one = {{1, 2, 3, 4}};
    const std::vector<double> score = {0.5};
    const std::vector<std::array<double, 4>> zero = {{0, 0, 0, 0}};
    const std::vector<std::array<double, 4>> very_negative = {{-2000, -2000, -2000, -2000}};
    const std::array<double, 4> want = {1, 2, 3, 4};
    CHECK(row(cvk::var_voting(one, score, zero), 0) == want);
    CHECK(row(cvk::var_voting(one, score, zero, {.input = cvk::var_voting_input::stddev}), 0) ==
          want);
    CHECK(row(cvk::var_voting(one, score, very_negative,
                              {.input = cvk::var_voting_input::log_variance}),
              0) == want);
    const boxes_t<float> one_f = {{1, 2, 3, 4}};
    const std::vector<std::array<float, 4>> zero_f = {{0, 0, 0, 0}};
    const auto f = cvk::var_voting(one_f, std::vector<float>{0.5f}, zero_f);
    CHECK(f.boxes(0, 0) == 1.0f);
    CHECK(f.boxes(0, 3) == 4.0f);
  }
  SECTION("a zero-variance neighbour decides the selected box's corner") {
    const std::vector<std::array<double, 4>> v = {{1, 1, 1, 1}, {1, 1, 1, 0}};
    const auto r = cvk::var_voting(boxes, scores, v);
    REQUIRE(indices_of(r) == std::vector<index_t>{0, 1});
    CHECK(r.boxes(0, 3) == Approx(12.0).epsilon(1e-15));  // B's exact y2 (p·12 / p)
    CHECK(r.boxes(0, 0) == 0.0);                          // the other corners vote as usual
    CHECK(r.boxes(0, 2) == Approx(10.0).epsilon(1e-15));
    CHECK(r.scores(1) == Approx(0.19948176702183698));  // the decay is unchanged
    CHECK(r.boxes(1, 3) == 12.0);                       // B votes alone afterwards
  }
  SECTION("a zero-variance selected box keeps its corners") {
    const std::vector<std::array<double, 4>> v = {{0, 0, 0, 0}, {1, 1, 1, 1}};
    const auto r = cvk::var_voting(boxes, scores, v);
    CHECK(row(r, 0) == std::array<double, 4>{0, 0, 10, 10});
  }
  SECTION("several zero-variance voters: their IoU-kernel weighted mean") {
    const std::vector<std::array<double, 4>> v = {{0, 0, 0, 0}, {0, 0, 0, 0}};
    const auto r = cvk::var_voting(boxes, scores, v);
    CHECK(r.boxes(0, 0) == 0.0);
    CHECK(r.boxes(0, 2) == Approx(10.0).epsilon(1e-15));
    CHECK(r.boxes(0, 3) == Approx((10.0 + p * 12.0) / (1.0 + p)).epsilon(1e-14));
    // the same from log-variances so negative that σ² underflows to 0
    const std::vector<std::array<double, 4>> logs(2, std::array<double, 4>{-1e4, -1e4, -1e4, -1e4});
    const auto l =
        cvk::var_voting(boxes, scores, logs, {.input = cvk::var_voting_input::log_variance});
    CHECK(row(l, 0) == row(r, 0));
  }
}

TEST_CASE(
    "box_voting and var_voting: a box_format outside the enum and 2^40 broadcast boxes are "
    "cvk errors (issue 9 #8)",
    "[box_voting][var_voting][regression]") {
  const boxes_t<double> boxes = {{0, 0, 1, 1}};
  const std::vector<double> scores = {0.5};
  const std::vector<std::array<double, 4>> variances = {{1, 1, 1, 1}};
  const auto bad = static_cast<cvk::box_format>(5);
  CHECK_THROWS_MATCHES(
      cvk::var_voting(boxes, scores, variances, {.format = bad}), cvk::invalid_argument,
      Catch::Message(
          "var_voting: options.format must be xyxy, xywh, cxcywh or yxyx, got box_format(5)"));
  CHECK_THROWS_AS(cvk::box_voting(boxes, scores, boxes, scores, {.format = bad}),
                  cvk::invalid_argument);
  const index_t n = index_t{1} << 40;
  const auto many_boxes = cvk::view(boxes[0].data(), {n, index_t{4}}, {index_t{0}, index_t{1}});
  const auto many_scores = cvk::view(scores.data(), {n}, {index_t{0}});
  const auto many_variances =
      cvk::view(variances[0].data(), {n, index_t{4}}, {index_t{0}, index_t{1}});
  CHECK_THROWS_AS(cvk::var_voting(many_boxes, many_scores, many_variances), cvk::out_of_range);
  CHECK_THROWS_WITH(cvk::var_voting(many_boxes, many_scores, many_variances),
                    Catch::Contains("var_voting: boxes (1099511627776×4) needs 1099511627776 "
                                    "elements"));
  CHECK_THROWS_AS(cvk::box_voting(boxes, scores, many_boxes, many_scores), cvk::out_of_range);
  CHECK_THROWS_WITH(cvk::box_voting(boxes, scores, many_boxes, many_scores),
                    Catch::Contains("box_voting: all_boxes (1099511627776×4) needs"));
}

TEST_CASE("var_voting rejects a NaN or negative variance, naming the element (issue 9 leftover)",
          "[var_voting][errors][regression]") {
  // the old code voted with them: a NaN variance made the vote NaN, a negative one flipped the
  // sign of its weight
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const std::vector<std::array<double, 4>> boxes = {{0, 0, 10, 10}, {1, 1, 11, 11}};
  const std::vector<double> scores = {0.9, 0.8};
  std::vector<std::array<double, 4>> variances = {{1, 1, 1, 1}, {1, 1, 1, 1}};
  variances[1][2] = -1.0;
  CHECK_THROWS_MATCHES(
      cvk::var_voting(boxes, scores, variances), cvk::invalid_argument,
      Catch::Message("var_voting: variances(1, 2) must be a number >= 0 (σ²), got -1"));
  CHECK_THROWS_MATCHES(
      cvk::var_voting(boxes, scores, variances, {.input = cvk::var_voting_input::stddev}),
      cvk::invalid_argument,
      Catch::Message("var_voting: variances(1, 2) must be a number >= 0 (σ), got -1"));
  // a negative log-variance is an ordinary value (σ² < 1)
  CHECK(cvk::var_voting(boxes, scores, variances, {.input = cvk::var_voting_input::log_variance})
            .indices.size() == 2);
  variances[1][2] = 1.0;
  variances[0][3] = nan;
  for (const auto input : {cvk::var_voting_input::variance, cvk::var_voting_input::stddev,
                           cvk::var_voting_input::log_variance}) {
    CHECK_THROWS_AS(cvk::var_voting(boxes, scores, variances, {.input = input}),
                    cvk::invalid_argument);
    CHECK_THROWS_WITH(cvk::var_voting(boxes, scores, variances, {.input = input}),
                      Catch::Contains("var_voting: variances(0, 3) must be a number"));
  }
  CHECK_THROWS_WITH(
      cvk::var_voting(boxes, scores, variances, {.input = cvk::var_voting_input::log_variance}),
      "var_voting: variances(0, 3) must be a number (log σ²), got nan");
  // yxyx: the element named is the input's column
  variances[0][3] = 1.0;
  variances[1][0] = -2.0;
  CHECK_THROWS_WITH(cvk::var_voting(boxes, scores, variances, {.format = cvk::box_format::yxyx}),
                    "var_voting: variances(1, 0) must be a number >= 0 (σ²), got -2");
  // +inf (an infinite variance) and 0 (an exact corner) stay valid
  variances[1] = {std::numeric_limits<double>::infinity(), 0, 1, 1};
  CHECK(cvk::var_voting(boxes, scores, variances).indices.size() == 2);
}

TEST_CASE("errors table: box_voting and var_voting (docs/errors.md)", "[voting][errors]") {
  const std::vector<double> buffer(8, 1.0);
  const auto rank3 = cvk_test::rank3_view(buffer);
  const std::vector<std::array<double, 4>> two = {{0, 0, 10, 10}, {1, 1, 11, 11}};
  const std::vector<double> scores = {0.9, 0.8};
  CHECK_THROWS_MATCHES(
      cvk::box_voting(rank3, scores, two, scores), cvk::shape_error,
      Catch::Message("box_voting: kept_boxes must have rank 2, got rank 3 (2×2×2)"));
  CHECK_THROWS_MATCHES(
      cvk::var_voting(two, scores, rank3), cvk::shape_error,
      Catch::Message("var_voting: variances must have rank 2, got rank 3 (2×2×2)"));
  CHECK_THROWS_AS(cvk::var_voting(two, scores, cvk::view(buffer.data(), {-1, 4})),
                  cvk::shape_error);
  // empty input: an empty result
  const std::vector<std::array<double, 4>> none;
  CHECK(cvk::var_voting(none, std::vector<double>{}, none).indices.size() == 0);
  // a NaN coordinate: that box is voted alone and votes for nobody (docs/nms.md NaN policy)
  std::vector<std::array<double, 4>> with_nan = two;
  with_nan[1][0] = std::numeric_limits<double>::quiet_NaN();
  const std::vector<std::array<double, 4>> ones(2, std::array<double, 4>{1, 1, 1, 1});
  const auto r = cvk::var_voting(with_nan, scores, ones);
  REQUIRE(r.indices.size() == 2);
  CHECK(r.boxes(0, 2) == 10.0);
}
