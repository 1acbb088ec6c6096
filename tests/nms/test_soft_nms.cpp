// cvk — computer-vision kernels, header-only C++20.
// Tests of cvk/nms/soft.hpp: soft_nms against the peers' loops written plainly here (mmcv's
// softnms_cpu with its swaps, OpenCV's softNMSBoxes with std::max_element, and TensorFlow's
// NonMaxSuppressionV5 both as its eager definition and as TF's own lazy priority-queue loop) on
// thousands of random scenes of every density, every method and convention, float and double;
// the grid path against the rescore-everything path; hand-computed cases (mmcv's test inputs,
// re-derived independently in Python/numpy float32); ties, NaN, thresholds hit exactly,
// degenerate boxes; strided and container inputs; the errors.
// SPDX-License-Identifier: MIT
#include <algorithm>
#include <array>
#include <bit>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <queue>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <cvk/core.hpp>
#include <cvk/nms/soft.hpp>

#include "support/error_inputs.hpp"
#include "support/layouts.hpp"
#include "support/nms_scenes.hpp"

namespace {

using cvk::index_t;
using cvk::soft_nms_convention;
using cvk::soft_nms_method;
using cvk::soft_nms_options;
template <class T>
using boxes_t = std::vector<std::array<T, 4>>;

/// Indices and scores of one soft-NMS run, from a reference or from cvk.
template <class S>
struct outcome {
  std::vector<index_t> indices;
  std::vector<S> scores;
};

template <class S>
outcome<S> from_result(const cvk::soft_nms_result<S>& r) {
  return {std::vector<index_t>(r.indices.begin(), r.indices.end()),
          std::vector<S>(r.scores.begin(), r.scores.end())};
}

/// Bit-identical scores (NaN equal to NaN).
template <class S>
bool same_scores(const std::vector<S>& a, const std::vector<S>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t k = 0; k < a.size(); ++k) {
    const bool both_nan = std::isnan(a[k]) && std::isnan(b[k]);
    if (!both_nan &&
        std::bit_cast<std::conditional_t<sizeof(S) == 4, std::uint32_t, std::uint64_t>>(a[k]) !=
            std::bit_cast<std::conditional_t<sizeof(S) == 4, std::uint32_t, std::uint64_t>>(b[k])) {
      return false;
    }
  }
  return true;
}

template <class S>
std::string show(const outcome<S>& o) {
  std::string text = "[";
  for (std::size_t k = 0; k < o.indices.size(); ++k) {
    // Appended piece by piece: `"literal" + std::string&&` trips g++ 12's -Wrestrict at -O3.
    if (k) text += ' ';
    text += std::to_string(o.indices[k]);
    text += ':';
    text += std::to_string(static_cast<double>(o.scores[k]));
  }
  return text + "]";
}

// ---------------------------------------------------------------------------------------------
// The references, written from the peers' loops. Everything in the box type T (integers are not
// used here), the score in S; parameters rounded to T / S as the peers' float parameters.
CVK_KERNEL_BEGIN

/// IoU of the selected box a with box b, mmcv's operations (a first in max/min).
template <class T>
T ref_iou(const std::array<T, 4>& a, T area_a, const std::array<T, 4>& b, T area_b) {
  const T xx1 = a[0] < b[0] ? b[0] : a[0];
  const T yy1 = a[1] < b[1] ? b[1] : a[1];
  const T xx2 = b[2] < a[2] ? b[2] : a[2];
  const T yy2 = b[3] < a[3] ? b[3] : a[3];
  const T dx = xx2 - xx1;
  const T dy = yy2 - yy1;
  const T w = T(0) < dx ? dx : T(0);
  const T h = T(0) < dy ? dy : T(0);
  const T inter = w * h;
  const T sum = area_a + area_b;
  const T uni = sum - inter;
  return inter / uni;
}

template <class T>
T ref_area(const std::array<T, 4>& b) {
  const T w = b[2] - b[0];
  const T h = b[3] - b[1];
  return w * h;
}

template <class S, class T>
S ref_times(S s, T w) {
  using C = std::common_type_t<S, T>;
  return static_cast<S>(static_cast<C>(s) * static_cast<C>(w));
}

/// mmcv/ops/csrc/pytorch/cpu/nms.cpp softnms_cpu, offset 0: arrays permuted by swaps, the
/// maximum found by a forward scan with `<`, a dropped box replaced by the last one.
template <class T, class S>
outcome<S> ref_mmcv(const boxes_t<T>& input, const std::vector<S>& scores, double threshold,
                    const soft_nms_options& o) {
  std::size_t n = input.size();
  boxes_t<T> b = input;
  std::vector<T> area(n);
  for (std::size_t k = 0; k < n; ++k) area[k] = ref_area(b[k]);
  std::vector<S> sc = scores;
  std::vector<index_t> inds(n);
  for (std::size_t k = 0; k < n; ++k) inds[k] = static_cast<index_t>(k);
  const auto t = static_cast<T>(threshold);
  const auto sigma = static_cast<T>(o.sigma);
  const auto min_score = static_cast<S>(o.min_score);
  const std::size_t limit = o.max_output ? static_cast<std::size_t>(*o.max_output) : n;
  outcome<S> out;
  for (std::size_t i = 0; i < n && out.indices.size() < limit; ++i) {
    S max_score = sc[i];
    std::size_t max_pos = i;
    for (std::size_t pos = i + 1; pos < n; ++pos) {
      if (max_score < sc[pos]) {
        max_score = sc[pos];
        max_pos = pos;
      }
    }
    std::swap(b[i], b[max_pos]);
    std::swap(area[i], area[max_pos]);
    std::swap(sc[i], sc[max_pos]);
    std::swap(inds[i], inds[max_pos]);
    out.indices.push_back(inds[i]);
    out.scores.push_back(sc[i]);
    for (std::size_t pos = i + 1; pos < n; ++pos) {
      const T ovr = ref_iou(b[i], area[i], b[pos], area[pos]);
      T weight = 1;
      if (o.method == soft_nms_method::naive) {
        if (ovr >= t) weight = 0;
      } else if (o.method == soft_nms_method::linear) {
        if (ovr >= t) weight = 1 - ovr;
      } else {
        const T sq = ovr * ovr;
        weight = std::exp(-sq / sigma);
      }
      sc[pos] = ref_times(sc[pos], weight);
      if (sc[pos] < min_score) {
        b[pos] = b[n - 1];
        area[pos] = area[n - 1];
        sc[pos] = sc[n - 1];
        inds[pos] = inds[n - 1];
        --n;
        --pos;
      }
    }
  }
  return out;
}

/// OpenCV modules/dnn/src/nms.cpp softNMSBoxes (with cvk's IoU instead of Rect arithmetic):
/// std::max_element with "equal scores: larger index is smaller", stop when the best is below
/// the threshold, swap the best to the front, rescore the rest (skipping scores below it).
template <class T, class S>
outcome<S> ref_opencv(const boxes_t<T>& b, const std::vector<S>& scores, double threshold,
                      const soft_nms_options& o) {
  const std::size_t n = b.size();
  std::vector<T> area(n);
  for (std::size_t k = 0; k < n; ++k) area[k] = ref_area(b[k]);
  std::vector<std::pair<S, std::size_t>> vec(n);
  for (std::size_t k = 0; k < n; ++k) vec[k] = {scores[k], k};
  const auto cmp = [](const std::pair<S, std::size_t>& x, const std::pair<S, std::size_t>& y) {
    return x.first == y.first ? x.second > y.second : x.first < y.first;
  };
  const auto t = static_cast<T>(threshold);
  const auto sigma = static_cast<T>(o.sigma);
  const auto min_score = static_cast<S>(o.min_score);
  const std::size_t top_k = o.max_output ? std::min(static_cast<std::size_t>(*o.max_output), n) : n;
  outcome<S> out;
  std::size_t start = 0;
  while (out.indices.size() < top_k) {
    const auto it =
        std::max_element(vec.begin() + static_cast<std::ptrdiff_t>(start), vec.end(), cmp);
    const S best = it->first;
    const std::size_t best_index = it->second;
    if (best < min_score) break;
    out.indices.push_back(static_cast<index_t>(best_index));
    out.scores.push_back(best);
    std::swap(vec[start], *it);
    for (std::size_t k = start + 1; k < n; ++k) {
      S& s = vec[k].first;
      const std::size_t j = vec[k].second;
      if (s < min_score) continue;
      const T overlap = ref_iou(b[best_index], area[best_index], b[j], area[j]);
      if (o.method == soft_nms_method::linear) {
        if (overlap > t) s = ref_times(s, T(1) - overlap);
      } else {
        const T sq = overlap * overlap;
        s = ref_times(s, std::exp(-sq / sigma));
      }
    }
    ++start;
  }
  return out;
}

/// TensorFlow NonMaxSuppressionV5 / OpenVINO NMS-5, eager form: keep boxes with score >
/// min_score; pick the maximum (equal scores: lower index); remove boxes with IoU > t, multiply
/// the others by exp(scale·IoU·IoU) (gaussian, scale = -0.5/sigma) or 1 (naive = hard NMS);
/// remove those no longer > min_score.
template <class T, class S>
outcome<S> ref_tensorflow(const boxes_t<T>& b, const std::vector<S>& scores, double threshold,
                          const soft_nms_options& o) {
  const std::size_t n = b.size();
  std::vector<T> area(n);
  for (std::size_t k = 0; k < n; ++k) area[k] = ref_area(b[k]);
  std::vector<S> sc = scores;
  const auto min_score = static_cast<S>(o.min_score);
  std::vector<char> alive(n);
  for (std::size_t k = 0; k < n; ++k) alive[k] = sc[k] > min_score ? 1 : 0;
  const auto t = static_cast<T>(threshold);
  const T scale = T(-0.5) / static_cast<T>(o.sigma);
  const std::size_t limit = o.max_output ? static_cast<std::size_t>(*o.max_output) : n;
  outcome<S> out;
  while (out.indices.size() < limit) {
    std::size_t best = n;
    for (std::size_t k = 0; k < n; ++k) {
      if (alive[k] != 0 && (best == n || sc[k] > sc[best])) best = k;
    }
    if (best == n) break;
    alive[best] = 0;
    out.indices.push_back(static_cast<index_t>(best));
    out.scores.push_back(sc[best]);
    for (std::size_t k = 0; k < n; ++k) {
      if (alive[k] == 0) continue;
      const T sim = ref_iou(b[best], area[best], b[k], area[k]);
      if (sim > t) {
        alive[k] = 0;
        continue;
      }
      if (o.method == soft_nms_method::gaussian) {
        const T a = scale * sim;
        const T e = a * sim;
        sc[k] = ref_times(sc[k], std::exp(e));
      }
      if (!(sc[k] > min_score)) alive[k] = 0;
    }
  }
  return out;
}

/// TensorFlow's own loop (core/kernels/image/non_max_suppression_op.cc, TF >= 2.5): a priority
/// queue of candidates whose pending factors are applied lazily, newest selection first; soft
/// mode (sigma > 0) never removes by IoU, hard mode (sigma = 0) removes at IoU > t.
template <class T, class S>
outcome<S> ref_tensorflow_lazy(const boxes_t<T>& b, const std::vector<S>& scores, double threshold,
                               double sigma, std::size_t output_size, double score_threshold) {
  struct candidate {
    std::size_t index;
    S score;
    std::size_t begin;
  };
  const auto cmp = [](const candidate& x, const candidate& y) {
    return (x.score == y.score && x.index > y.index) || x.score < y.score;
  };
  std::priority_queue<candidate, std::vector<candidate>, decltype(cmp)> queue(cmp);
  const auto min_score = static_cast<S>(score_threshold);
  for (std::size_t k = 0; k < b.size(); ++k) {
    if (scores[k] > min_score) queue.push({k, scores[k], 0});
  }
  const bool soft = sigma > 0;
  const T scale = soft ? T(-0.5) / static_cast<T>(sigma) : T(0);
  const auto t = static_cast<T>(threshold);
  outcome<S> out;
  std::vector<std::size_t> selected;
  while (out.indices.size() < output_size && !queue.empty()) {
    candidate c = queue.top();
    const S original = c.score;
    queue.pop();
    bool hard = false;
    for (std::size_t j = selected.size(); j-- > c.begin;) {
      const std::size_t s = selected[j];
      const T sim = ref_iou(b[s], ref_area(b[s]), b[c.index], ref_area(b[c.index]));
      const T a = scale * sim;
      const T e = a * sim;
      const T weight = soft || sim <= t ? std::exp(e) : T(0);
      c.score = ref_times(c.score, weight);
      if (!soft && sim > t) {
        hard = true;
        break;
      }
      if (c.score <= min_score) break;
    }
    c.begin = selected.size();
    if (hard) continue;
    if (c.score == original) {
      selected.push_back(c.index);
      out.indices.push_back(static_cast<index_t>(c.index));
      out.scores.push_back(c.score);
    } else if (c.score > min_score) {
      queue.push(c);
    }
  }
  return out;
}

CVK_KERNEL_END

template <class T, class S>
outcome<S> reference(const boxes_t<T>& b, const std::vector<S>& s, double threshold,
                     const soft_nms_options& o) {
  switch (o.convention) {
    case soft_nms_convention::mmcv:
      return ref_mmcv(b, s, threshold, o);
    case soft_nms_convention::opencv:
      return ref_opencv(b, s, threshold, o);
    case soft_nms_convention::tensorflow:
      return ref_tensorflow(b, s, threshold, o);
  }
  return {};
}

template <class T, class S>
outcome<S> run(const boxes_t<T>& b, const std::vector<S>& s, double threshold,
               const soft_nms_options& o = {}) {
  return from_result(cvk::soft_nms(b, s, threshold, o));
}

// ---------------------------------------------------------------------------------------------
// Random scenes.

using cvk_test::density;
using cvk_test::density_names;
using cvk_test::random_scene;

template <class S>
std::vector<S> random_scores(cvk::rng& gen, std::size_t n, int kind) {
  std::vector<S> scores(n);
  for (auto& s : scores) {
    switch (kind) {
      case 0:
        s = gen.uniform<S>(S(0), S(1));
        break;
      case 1:  // few distinct values: many ties
        s = static_cast<S>(gen.below(5)) / S(4);
        break;
      default:  // ties, tiny, negative and NaN scores
        s = gen.bernoulli(0.5) ? static_cast<S>(gen.below(4)) / S(8)
                               : gen.uniform<S>(S(-0.01), S(0.01));
        if (gen.bernoulli(0.03)) s = std::numeric_limits<S>::quiet_NaN();
        break;
    }
  }
  return scores;
}

soft_nms_options random_options(cvk::rng& gen, std::size_t n) {
  soft_nms_options o;
  o.convention = static_cast<soft_nms_convention>(gen.below(3));
  switch (o.convention) {
    case soft_nms_convention::mmcv:
      o.method = static_cast<soft_nms_method>(gen.below(3));
      break;
    case soft_nms_convention::opencv:
      o.method = gen.bernoulli(0.5) ? soft_nms_method::linear : soft_nms_method::gaussian;
      break;
    case soft_nms_convention::tensorflow:
      o.method = gen.bernoulli(0.7) ? soft_nms_method::gaussian : soft_nms_method::naive;
      break;
  }
  constexpr std::array<double, 4> sigmas = {0.5, 0.1, 1.0, 2.5};
  o.sigma = gen.bernoulli(0.7) ? sigmas[gen.below(sigmas.size())] : gen.uniform(0.05, 3.0);
  constexpr std::array<double, 6> floors = {1e-3, 0.0, 0.05, 0.3, -0.5, 1e-6};
  o.min_score = gen.bernoulli(0.8) ? floors[gen.below(floors.size())] : gen.uniform(-0.1, 0.6);
  if (gen.bernoulli(0.2)) o.max_output = static_cast<index_t>(gen.below(n + 2));
  o.propagate_nan = true;  // the peers' arithmetic, as the plain loops compute it
  return o;
}

double random_threshold(cvk::rng& gen) {
  constexpr std::array<double, 10> fixed = {
      0.3, 0.5, 0.6, 0.0, 1.0, -0.25, 0.25, 0.75, 0.7, std::numeric_limits<double>::infinity()};
  return gen.bernoulli(0.8) ? fixed[gen.below(fixed.size())] : gen.uniform(0.0, 1.0);
}

std::string describe(density d, std::size_t n, double t, const soft_nms_options& o) {
  std::string text = std::string(density_names[static_cast<std::size_t>(d)]) +
                     " N=" + std::to_string(n) + " t=" + std::to_string(t) + " " +
                     cvk::to_string(o.convention) + "/" + cvk::to_string(o.method) +
                     " sigma=" + std::to_string(o.sigma) + " min=" + std::to_string(o.min_score);
  if (o.max_output) text += " max_output=" + std::to_string(*o.max_output);
  return text;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Hand-computed cases

TEST_CASE("soft_nms: mmcv's test boxes, re-derived in numpy float32", "[soft_nms]") {
  // mmcv's soft_nms test inputs (7 boxes, t 0.6, sigma 0.5, min_score 1e-3). Expected values
  // from an independent numpy float32 implementation of mmcv's loop; gaussian scores are
  // compared to 2 ulps (numpy's exp and the C library's expf may differ by one ulp).
  const boxes_t<float> boxes = {{49.1f, 32.4f, 51.0f, 35.9f}, {49.3f, 32.9f, 51.0f, 35.3f},
                                {35.0f, 11.5f, 39.1f, 15.7f}, {35.1f, 11.2f, 39.2f, 15.6f},
                                {35.6f, 11.8f, 39.3f, 14.2f}, {35.3f, 11.5f, 39.9f, 14.5f},
                                {35.2f, 11.7f, 39.7f, 15.7f}};
  const std::vector<float> scores = {0.9f, 0.9f, 0.5f, 0.5f, 0.4f, 0.3f, 0.3f};
  const auto linear = run(boxes, scores, 0.6);
  CHECK(linear.indices == std::vector<index_t>{0, 2, 4, 1, 5, 3, 6});
  CHECK(linear.scores == std::vector<float>{0.899999976f, 0.5f, 0.400000006f, 0.347820282f,
                                            0.106956631f, 0.0652174652f, 0.00534980884f});
  const auto gaussian = run(boxes, scores, 0.6, {.method = soft_nms_method::gaussian});
  CHECK(gaussian.indices == std::vector<index_t>{0, 2, 1, 4, 3, 5, 6});
  const std::vector<float> expected = {0.899999976f,  0.5f,         0.423921883f,  0.254937738f,
                                       0.0704941526f, 0.033969868f, 0.00729866792f};
  REQUIRE(gaussian.scores.size() == expected.size());
  for (std::size_t k = 0; k < expected.size(); ++k) {
    INFO("k = " << k);
    CHECK(std::abs(gaussian.scores[k] - expected[k]) <=
          2 * (std::nextafter(expected[k], 1.0f) - expected[k]));
  }
  const auto naive = run(boxes, scores, 0.6, {.method = soft_nms_method::naive});
  CHECK(naive.indices == std::vector<index_t>{0, 2, 4});
  CHECK(naive.scores == std::vector<float>{0.9f, 0.5f, 0.4f});
  // the references agree (exactly: same libm)
  for (const auto m :
       {soft_nms_method::linear, soft_nms_method::gaussian, soft_nms_method::naive}) {
    const soft_nms_options o{.method = m};
    const auto r = reference(boxes, scores, 0.6, o);
    const auto c = run(boxes, scores, 0.6, o);
    CHECK(c.indices == r.indices);
    CHECK(same_scores(c.scores, r.scores));
  }
}

TEST_CASE("soft_nms: mmcv's allclose test (4 boxes) matches mmcv's published outputs",
          "[soft_nms]") {
  // mmcv tests/test_ops/test_nms.py test_softnms_allclose: t 0.3, sigma 0.5, min_score 0.01.
  const boxes_t<float> boxes = {{6.0f, 3.0f, 8.0f, 7.0f},
                                {3.0f, 6.0f, 9.0f, 11.0f},
                                {3.0f, 7.0f, 10.0f, 12.0f},
                                {1.0f, 4.0f, 13.0f, 7.0f}};
  const std::vector<float> scores = {0.6f, 0.9f, 0.7f, 0.2f};
  soft_nms_options o{.min_score = 0.01};
  const auto linear = run(boxes, scores, 0.3, o);
  CHECK(linear.indices == std::vector<index_t>{1, 0, 2, 3});
  CHECK(linear.scores == std::vector<float>{0.9f, 0.6f, 0.290243924f, 0.2f});
  o.method = soft_nms_method::gaussian;
  const auto gaussian = run(boxes, scores, 0.3, o);
  CHECK(gaussian.indices == std::vector<index_t>{1, 0, 2, 3});
  const std::vector<float> published = {0.9f, 0.59630775f, 0.35275510f, 0.18650459f};
  for (std::size_t k = 0; k < published.size(); ++k) {
    CHECK(gaussian.scores[k] == Approx(published[k]).epsilon(1e-6));
  }
  o.method = soft_nms_method::naive;
  const auto naive = run(boxes, scores, 0.3, o);
  CHECK(naive.indices == std::vector<index_t>{1, 0, 3});
  CHECK(naive.scores == std::vector<float>{0.9f, 0.6f, 0.2f});
}

TEST_CASE("soft_nms: equal scores follow mmcv's swapped array order", "[soft_nms]") {
  // Four disjoint boxes. Round 0 selects box 0 and drops box 1 (score < 1e-3): mmcv moves the
  // last box (3) into position 1, so box 3 is scanned before box 2 and wins the tie 0.5 = 0.5.
  const boxes_t<double> boxes = {{0, 0, 1, 1}, {10, 0, 11, 1}, {20, 0, 21, 1}, {30, 0, 31, 1}};
  const std::vector<double> scores = {1.0, 0.0005, 0.5, 0.5};
  CHECK(run(boxes, scores, 0.5).indices == std::vector<index_t>{0, 3, 2});
  // OpenCV and TensorFlow: lower index first; the low box never enters
  CHECK(run(boxes, scores, 0.5, {.convention = soft_nms_convention::opencv}).indices ==
        std::vector<index_t>{0, 2, 3});
  CHECK(run(boxes, scores, 0.5,
            {.method = soft_nms_method::gaussian, .convention = soft_nms_convention::tensorflow})
            .indices == std::vector<index_t>{0, 2, 3});
  // The selection swap also reorders: selecting box 2 (0.9) moves box 0 to position 2, so the
  // tie between boxes 0 and 1 (0.5) goes to box 1.
  const std::vector<double> swapped = {0.5, 0.5, 0.9, 0.1};
  CHECK(run(boxes, swapped, 0.5).indices == std::vector<index_t>{2, 1, 0, 3});
  CHECK(run(boxes, swapped, 0.5, {.convention = soft_nms_convention::opencv}).indices ==
        std::vector<index_t>{2, 0, 1, 3});
}

TEST_CASE("soft_nms: thresholds hit exactly, >= for mmcv, > for OpenCV and TensorFlow",
          "[soft_nms]") {
  // IoU([0,0,2,1], [0,0,1,1]) = 1/2 exactly.
  const boxes_t<float> boxes = {{0, 0, 2, 1}, {0, 0, 1, 1}};
  const std::vector<float> scores = {0.9f, 0.8f};
  // mmcv linear: IoU >= 0.5 decays: 0.8 · (1 - 0.5) = 0.4
  CHECK(run(boxes, scores, 0.5).scores == std::vector<float>{0.9f, 0.4f});
  CHECK(run(boxes, scores, 0.5000001).scores == std::vector<float>{0.9f, 0.8f});
  // mmcv naive: IoU >= 0.5 zeroes, the box drops below min_score
  CHECK(run(boxes, scores, 0.5, {.method = soft_nms_method::naive}).indices ==
        std::vector<index_t>{0});
  // OpenCV linear: only IoU > 0.5 decays
  const soft_nms_options cv{.convention = soft_nms_convention::opencv};
  CHECK(run(boxes, scores, 0.5, cv).scores == std::vector<float>{0.9f, 0.8f});
  CHECK(run(boxes, scores, 0.4999999, cv).scores == std::vector<float>{0.9f, 0.4f});
  // TensorFlow: IoU > t removes, at t exactly the box decays by exp(-0.5 · 0.25 / 0.5)
  const soft_nms_options tf{.method = soft_nms_method::gaussian,
                            .convention = soft_nms_convention::tensorflow};
  const auto kept = run(boxes, scores, 0.5, tf);
  CHECK(kept.indices == std::vector<index_t>{0, 1});
  CHECK(kept.scores[1] == 0.8f * std::exp(-0.25f));
  CHECK(run(boxes, scores, 0.4999999, tf).indices == std::vector<index_t>{0});
  // TF >= 2.5 (no IoU cut in soft mode): t = infinity
  CHECK(run(boxes, scores, std::numeric_limits<double>::infinity(), tf).indices ==
        std::vector<index_t>{0, 1});
  // TF's sigma is OpenCV's / mmcv's divided by 2: exp(-0.5 · o²/σ) = exp(-o²/(2σ)), here exactly
  const auto mm = run(boxes, scores, 0.5, {.method = soft_nms_method::gaussian, .sigma = 1.0});
  CHECK(mm.scores == kept.scores);
  CHECK(mm.scores[1] == 0.8f * std::exp(-0.25f));
  // TensorFlow naive = hard NMS with >
  const soft_nms_options hard{.method = soft_nms_method::naive,
                              .convention = soft_nms_convention::tensorflow};
  CHECK(run(boxes, scores, 0.5, hard).scores == std::vector<float>{0.9f, 0.8f});
  CHECK(run(boxes, scores, 0.4999, hard).indices == std::vector<index_t>{0});
}

TEST_CASE("soft_nms: min_score conventions", "[soft_nms]") {
  const boxes_t<double> boxes = {{0, 0, 1, 1}, {5, 5, 6, 6}};
  // mmcv never checks its first selection: a lone low box is returned
  const std::vector<double> low = {0.0005, 0.0002};
  CHECK(run(boxes, low, 0.5).indices == std::vector<index_t>{0});
  CHECK(run(boxes, low, 0.5, {.convention = soft_nms_convention::opencv}).indices.empty());
  CHECK(run(boxes, low, 0.5,
            {.method = soft_nms_method::naive, .convention = soft_nms_convention::tensorflow})
            .indices.empty());
  // at min_score exactly: mmcv and OpenCV keep (not < min), TensorFlow drops (not > min)
  const std::vector<double> at = {0.9, 0.25};
  CHECK(run(boxes, at, 0.5, {.min_score = 0.25}).indices == std::vector<index_t>{0, 1});
  CHECK(
      run(boxes, at, 0.5, {.min_score = 0.25, .convention = soft_nms_convention::opencv}).indices ==
      std::vector<index_t>{0, 1});
  CHECK(run(boxes, at, 0.5,
            {.method = soft_nms_method::gaussian,
             .min_score = 0.25,
             .convention = soft_nms_convention::tensorflow})
            .indices == std::vector<index_t>{0});
  // a decayed score below the floor is dropped: 0.5 · (1 - 0.5) = 0.25 < 0.3
  const boxes_t<double> pair = {{0, 0, 2, 1}, {0, 0, 1, 1}};
  CHECK(run(pair, std::vector<double>{0.9, 0.5}, 0.5, {.min_score = 0.3}).indices ==
        std::vector<index_t>{0});
  CHECK(run(pair, std::vector<double>{0.9, 0.5}, 0.5, {.min_score = 0.25}).scores ==
        std::vector<double>{0.9, 0.25});
}

TEST_CASE("soft_nms: NaN scores and degenerate boxes", "[soft_nms]") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const boxes_t<double> apart = {{0, 0, 1, 1}, {10, 0, 11, 1}, {20, 0, 21, 1}};
  const std::vector<double> scores = {0.5, nan, 0.9};
  // mmcv: round 0 takes box 2 and swaps box 0 to position 2; box 1 (NaN) is then at the first
  // remaining position, where mmcv's scan takes it. OpenCV's max_element does the same.
  for (const auto c : {soft_nms_convention::mmcv, soft_nms_convention::opencv}) {
    const auto r = run(apart, scores, 0.5, {.convention = c});
    CHECK(r.indices == std::vector<index_t>{2, 1, 0});
    CHECK(std::isnan(r.scores[1]));
  }
  // TensorFlow never selects a NaN score (NaN > threshold is false)
  CHECK(run(apart, scores, 0.5,
            {.method = soft_nms_method::gaussian, .convention = soft_nms_convention::tensorflow})
            .indices == std::vector<index_t>{2, 0});
  // a NaN behind the first position is skipped by mmcv's scan until it reaches the front
  const std::vector<double> later = {0.9, 0.5, nan, 0.7};
  CHECK(
      run(boxes_t<double>{{0, 0, 1, 1}, {10, 0, 11, 1}, {20, 0, 21, 1}, {30, 0, 31, 1}}, later, 0.5)
          .indices == std::vector<index_t>{0, 3, 2, 1});
  // two identical points: IoU 0/0 = NaN; gaussian makes the score NaN (kept by mmcv/OpenCV, and
  // selected at the front), linear leaves it (NaN >= t is false)
  // (with propagate_nan; by default a NaN IoU decays nothing)
  const boxes_t<double> points = {{3, 3, 3, 3}, {3, 3, 3, 3}};
  const std::vector<double> two = {0.9, 0.8};
  const auto g =
      run(points, two, 0.5, {.method = soft_nms_method::gaussian, .propagate_nan = true});
  CHECK(g.indices == std::vector<index_t>{0, 1});
  CHECK(std::isnan(g.scores[1]));
  CHECK(run(points, two, 0.5, {.method = soft_nms_method::gaussian}).scores == two);
  CHECK(run(points, two, 0.5).scores == two);
  CHECK(run(points, two, 0.5,
            {.method = soft_nms_method::gaussian,
             .convention = soft_nms_convention::tensorflow,
             .propagate_nan = true})
            .indices == std::vector<index_t>{0});
  CHECK(run(points, two, 0.5,
            {.method = soft_nms_method::gaussian, .convention = soft_nms_convention::tensorflow})
            .indices == std::vector<index_t>{0, 1});
}

TEST_CASE("soft_nms: empty input, max_output, one box", "[soft_nms]") {
  const boxes_t<float> none;
  const std::vector<float> no_scores;
  for (const auto c :
       {soft_nms_convention::mmcv, soft_nms_convention::opencv, soft_nms_convention::tensorflow}) {
    const soft_nms_options o{.method = soft_nms_method::gaussian, .convention = c};
    const auto r = cvk::soft_nms(none, no_scores, 0.5, o);
    CHECK(r.indices.size() == 0);
    CHECK(r.scores.size() == 0);
  }
  const boxes_t<float> boxes = {{0, 0, 10, 10}, {1, 1, 11, 11}, {50, 50, 60, 60}};
  const std::vector<float> scores = {0.9f, 0.8f, 0.7f};
  CHECK(run(boxes, scores, 0.3, {.max_output = 0}).indices.empty());
  const auto all = run(boxes, scores, 0.3);
  const auto two = run(boxes, scores, 0.3, {.max_output = 2});
  CHECK(two.indices == std::vector<index_t>(all.indices.begin(), all.indices.begin() + 2));
  CHECK(run(boxes, scores, 0.3, {.max_output = 7}).indices == all.indices);
  const auto one = run(boxes_t<float>{{1, 2, 3, 4}}, std::vector<float>{0.25f}, 0.5);
  CHECK(one.indices == std::vector<index_t>{0});
  CHECK(one.scores == std::vector<float>{0.25f});
}

// ---------------------------------------------------------------------------------------------
// Against the references on random scenes

TEMPLATE_TEST_CASE("soft_nms: equals the peers' plain loops on random scenes", "[soft_nms]", float,
                   double) {
  using T = TestType;
  cvk::rng gen(31, std::is_same_v<T, float> ? 1 : 2);
  std::array<std::size_t, 3> per_convention{};
  std::size_t grid_runs = 0;
  for (int scene = 0; scene < 3000; ++scene) {
    const auto d = static_cast<density>(scene % 6);
    const std::size_t n = gen.bernoulli(0.2) ? gen.below(40) : 30 + gen.below(250);
    const auto boxes = random_scene<T>(gen, d, n);
    const auto scores = random_scores<T>(gen, n, static_cast<int>(gen.below(3)));
    const double t = random_threshold(gen);
    const auto o = random_options(gen, n);
    ++per_convention[static_cast<std::size_t>(o.convention)];
    if (n >= cvk::detail::soft_grid_min_boxes) ++grid_runs;
    INFO(describe(d, n, t, o));
    const auto expected = reference(boxes, scores, t, o);
    const auto got = run(boxes, scores, t, o);
    REQUIRE(got.indices == expected.indices);
    INFO("cvk " << show(got) << "\nref " << show(expected));
    REQUIRE(same_scores(got.scores, expected.scores));
  }
  CHECK(grid_runs > 1500);
  for (const std::size_t c : per_convention) CHECK(c > 800);
}

TEMPLATE_TEST_CASE("soft_nms: the grid path equals rescoring everything at every size",
                   "[soft_nms]", float, double) {
  using T = TestType;
  cvk::rng gen(37, std::is_same_v<T, float> ? 1 : 2);
  for (int scene = 0; scene < 1500; ++scene) {
    const auto d = static_cast<density>(scene % 6);
    const std::size_t n = gen.below(150);
    const auto boxes = random_scene<T>(gen, d, n);
    const auto scores = random_scores<T>(gen, n, static_cast<int>(gen.below(3)));
    const double t = random_threshold(gen);
    const auto o = random_options(gen, n);
    INFO(describe(d, n, t, o));
    const auto b = cvk::detail::checked_view<2>(boxes, "test", "boxes");
    const auto s = cvk::detail::checked_view<1>(scores, "test", "scores");
    const auto grid = from_result(cvk::detail::soft_nms_views(b, s, t, o, 0));
    const auto plain = from_result(
        cvk::detail::soft_nms_views(b, s, t, o, std::numeric_limits<std::size_t>::max()));
    REQUIRE(grid.indices == plain.indices);
    REQUIRE(same_scores(grid.scores, plain.scores));
  }
}

TEST_CASE("soft_nms: a large sparse scene equals the plain loops", "[soft_nms]") {
  cvk::rng gen(41);
  const auto boxes = random_scene<float>(gen, density::sparse, 3000);
  const auto scores = random_scores<float>(gen, 3000, 0);
  for (const auto& o : {soft_nms_options{}, soft_nms_options{.method = soft_nms_method::gaussian},
                        soft_nms_options{.method = soft_nms_method::naive},
                        soft_nms_options{.method = soft_nms_method::gaussian,
                        .convention = soft_nms_convention::opencv},
                        soft_nms_options{.method = soft_nms_method::gaussian,
                        .min_score = 0.0,
                        .convention = soft_nms_convention::tensorflow}}) {
    INFO(cvk::to_string(o.convention) << "/" << cvk::to_string(o.method));
    const auto expected = reference(boxes, scores, 0.5, o);
    const auto got = run(boxes, scores, 0.5, o);
    CHECK(got.indices == expected.indices);
    CHECK(same_scores(got.scores, expected.scores));
  }
}

TEMPLATE_TEST_CASE("soft_nms: the tensorflow convention selects what TF's lazy loop selects",
                   "[soft_nms]", float, double) {
  // TF applies the pending factors of a candidate lazily, newest selection first, so its
  // products round in another order: same selections, scores within a few ulps. Hard mode
  // (sigma 0 in TF, naive in cvk) multiplies nothing: identical.
  using T = TestType;
  cvk::rng gen(43, std::is_same_v<T, float> ? 1 : 2);
  for (int scene = 0; scene < 400; ++scene) {
    const auto d = static_cast<density>(scene % 4);  // finite boxes, distinct scores
    const std::size_t n = gen.below(200);
    const auto boxes = random_scene<T>(gen, d, n);
    const auto scores = random_scores<T>(gen, n, 0);
    const double floor = gen.bernoulli(0.5) ? 0.001 : -std::numeric_limits<double>::infinity();
    const std::size_t output_size = gen.bernoulli(0.3) ? gen.below(n + 1) : n;
    const double t = gen.bernoulli(0.5) ? 0.5 : gen.uniform(0.0, 1.0);
    INFO(density_names[static_cast<std::size_t>(d)] << " N=" << n << " t=" << t);
    soft_nms_options o{.min_score = floor,
                       .max_output = static_cast<index_t>(output_size),
                       .convention = soft_nms_convention::tensorflow};
    // soft: TF >= 2.5 ignores the IoU threshold, cvk gets t = infinity
    o.method = soft_nms_method::gaussian;
    o.sigma = gen.bernoulli(0.5) ? 0.5 : gen.uniform(0.1, 2.0);
    const auto lazy = ref_tensorflow_lazy(boxes, scores, t, o.sigma, output_size, floor);
    const auto eager = run(boxes, scores, std::numeric_limits<double>::infinity(), o);
    REQUIRE(eager.indices == lazy.indices);
    for (std::size_t k = 0; k < lazy.scores.size(); ++k) {
      REQUIRE(eager.scores[k] ==
              Approx(lazy.scores[k]).epsilon(std::is_same_v<T, float> ? 1e-5 : 1e-12));
    }
    // hard
    o.method = soft_nms_method::naive;
    const auto lazy_hard = ref_tensorflow_lazy(boxes, scores, t, 0.0, output_size, floor);
    const auto eager_hard = run(boxes, scores, t, o);
    REQUIRE(eager_hard.indices == lazy_hard.indices);
    REQUIRE(same_scores(eager_hard.scores, lazy_hard.scores));
  }
}

// ---------------------------------------------------------------------------------------------
// Inputs

TEST_CASE("soft_nms: any strides, tensor types, integer input and formats", "[soft_nms]") {
  cvk::rng gen(53);
  const auto boxes = random_scene<float>(gen, density::clusters, 300);
  const auto scores = random_scores<float>(gen, 300, 1);
  const soft_nms_options o{.method = soft_nms_method::gaussian};
  const auto expected = reference(boxes, scores, 0.45, o);
  for (const auto l : cvk_test::all_layouts) {
    INFO(cvk_test::to_string(l));
    const auto stored = cvk_test::with_layout(boxes, l, std::nanf(""));
    const auto got = from_result(cvk::soft_nms(stored.view, scores, 0.45, o));
    CHECK(got.indices == expected.indices);
    CHECK(same_scores(got.scores, expected.scores));
  }
  // scores with stride -3
  std::vector<float> spread(3 * scores.size(), -1.0f);
  for (std::size_t i = 0; i < scores.size(); ++i) spread[3 * (scores.size() - 1 - i)] = scores[i];
  const auto backwards = cvk::view(spread.data() + 3 * (scores.size() - 1),
                                   {static_cast<index_t>(scores.size())}, {index_t{-3}});
  const auto strided = from_result(cvk::soft_nms(boxes, backwards, 0.45, o));
  CHECK(strided.indices == expected.indices);
  CHECK(same_scores(strided.scores, expected.scores));
  // cvk::tensor inputs
  cvk::tensor<float, 2> box_tensor(static_cast<index_t>(boxes.size()), index_t{4});
  cvk::tensor<float, 1> score_tensor(static_cast<index_t>(scores.size()));
  for (std::size_t i = 0; i < boxes.size(); ++i) {
    for (std::size_t k = 0; k < 4; ++k) {
      box_tensor(static_cast<index_t>(i), static_cast<index_t>(k)) = boxes[i][k];
    }
    score_tensor(static_cast<index_t>(i)) = scores[i];
  }
  const auto from_tensors = from_result(cvk::soft_nms(box_tensor, score_tensor, 0.45, o));
  CHECK(from_tensors.indices == expected.indices);
  CHECK(same_scores(from_tensors.scores, expected.scores));
  // float boxes with double scores: IoU and factors in float, products in double
  std::vector<double> wide(scores.begin(), scores.end());
  const auto mixed = from_result(cvk::soft_nms(boxes, wide, 0.45, o));
  const auto mixed_expected = reference(boxes, wide, 0.45, o);
  CHECK(mixed.indices == mixed_expected.indices);
  CHECK(same_scores(mixed.scores, mixed_expected.scores));

  // integer boxes and scores: computed in double, double scores out
  const boxes_t<int> int_boxes = {{0, 0, 4, 4}, {1, 1, 5, 5}, {10, 10, 12, 12}};
  const std::vector<int> int_scores = {3, 7, 7};
  const auto ints = cvk::soft_nms(int_boxes, int_scores, 0.3);
  static_assert(std::is_same_v<decltype(ints), const cvk::soft_nms_result<double>>);
  // IoU(1, 0) = 9/23 >= 0.3: box 0 → 3 · (1 - 9/23) = 3 · 14/23; ties 7 = 7: index 1 first
  CHECK(from_result(ints).indices == std::vector<index_t>{1, 2, 0});
  CHECK(from_result(ints).scores == std::vector<double>{7.0, 7.0, 3.0 * (1.0 - 9.0 / 23.0)});

  // formats: the same integer-valued boxes as xywh, cxcywh, yxyx
  const boxes_t<double> xyxy = {{0, 0, 10, 10}, {1, 1, 11, 11}, {20, 20, 30, 30}, {2, 0, 12, 10}};
  const std::vector<double> s4 = {0.9, 0.95, 0.3, 0.6};
  boxes_t<double> xywh;
  boxes_t<double> cxcywh;
  boxes_t<double> yxyx;
  for (const auto& b : xyxy) {
    xywh.push_back({b[0], b[1], b[2] - b[0], b[3] - b[1]});
    cxcywh.push_back({(b[0] + b[2]) / 2, (b[1] + b[3]) / 2, b[2] - b[0], b[3] - b[1]});
    yxyx.push_back({b[1], b[0], b[3], b[2]});
  }
  const auto base = run(xyxy, s4, 0.2, o);
  REQUIRE(base.indices.size() == 4);
  CHECK(run(xywh, s4, 0.2, {.method = o.method, .format = cvk::box_format::xywh}).scores ==
        base.scores);
  CHECK(run(cxcywh, s4, 0.2, {.method = o.method, .format = cvk::box_format::cxcywh}).scores ==
        base.scores);
  CHECK(run(yxyx, s4, 0.2, {.method = o.method, .format = cvk::box_format::yxyx}).indices ==
        base.indices);
}

// ---------------------------------------------------------------------------------------------
// Errors

TEST_CASE("soft_nms: errors name the function, the argument and the values", "[soft_nms]") {
  const boxes_t<float> seven(7, std::array<float, 4>{0, 0, 1, 1});
  const std::vector<float> five(5, 0.5f);
  const std::vector<float> scores(7, 0.5f);
  std::vector<float> flat(21, 0.0f);
  const auto seven_by_three = cvk::view(flat.data(), 7, 3);
  const double nan = std::nan("");
  CHECK_THROWS_MATCHES(
      cvk::soft_nms(seven, five, 0.5), cvk::shape_error,
      Catch::Message("soft_nms: scores must have 7 elements (one per box), got 5"));
  CHECK_THROWS_MATCHES(cvk::soft_nms(seven_by_three, scores, 0.5), cvk::shape_error,
                       Catch::Message("soft_nms: boxes must be N×4, got 7×3"));
  CHECK_THROWS_MATCHES(cvk::soft_nms(seven, scores, nan), cvk::invalid_argument,
                       Catch::Message("soft_nms: iou_threshold must be a number, got nan"));
  CHECK_THROWS_MATCHES(cvk::soft_nms(seven, scores, 0.5, {.sigma = nan}), cvk::invalid_argument,
                       Catch::Message("soft_nms: sigma must be a number, got nan"));
  CHECK_THROWS_MATCHES(cvk::soft_nms(seven, scores, 0.5, {.min_score = nan}), cvk::invalid_argument,
                       Catch::Message("soft_nms: min_score must be a number, got nan"));
  CHECK_THROWS_MATCHES(
      cvk::soft_nms(seven, scores, 0.5, {.method = soft_nms_method::gaussian, .sigma = 0.0}),
      cvk::invalid_argument,
      Catch::Message("soft_nms: sigma must be > 0 for the gaussian method, got 0"));
  CHECK_THROWS_MATCHES(
      cvk::soft_nms(seven, scores, 0.5, {.method = soft_nms_method::gaussian, .sigma = -1.5}),
      cvk::invalid_argument,
      Catch::Message("soft_nms: sigma must be > 0 for the gaussian method, got -1.5"));
  CHECK_NOTHROW(cvk::soft_nms(seven, scores, 0.5, {.sigma = 0.0}));  // linear: sigma unused
  CHECK_THROWS_MATCHES(cvk::soft_nms(seven, scores, 0.5, {.max_output = -1}), cvk::invalid_argument,
                       Catch::Message("soft_nms: max_output must be >= 0, got -1"));
  CHECK_THROWS_AS(
      cvk::soft_nms(seven, scores, 0.5,
                    {.method = soft_nms_method::naive, .convention = soft_nms_convention::opencv}),
      cvk::invalid_argument);
  CHECK_THROWS_AS(cvk::soft_nms(seven, scores, 0.5,
                                {.method = soft_nms_method::linear,
                                 .convention = soft_nms_convention::tensorflow}),
                  cvk::invalid_argument);
  // shape errors come before value errors
  CHECK_THROWS_AS(cvk::soft_nms(seven, five, nan), cvk::shape_error);
}

TEST_CASE("soft_nms: sigma that rounds to zero in float is rejected (issue 9 #5)",
          "[soft_nms][regression]") {
  // Three disjoint boxes: with sigma 1e-300 the old code checked sigma > 0 in double, rounded it
  // to 0 in float and returned scores {0.9, nan, nan} (0/0 in exp(-IoU²/sigma)).
  const boxes_t<float> boxes = {{0, 0, 1, 1}, {2, 2, 3, 3}, {4, 4, 5, 5}};
  const std::vector<float> scores = {0.9f, 0.8f, 0.7f};
  const soft_nms_options tiny{.method = soft_nms_method::gaussian, .sigma = 1e-300};
  CHECK_THROWS_MATCHES(cvk::soft_nms(boxes, scores, 0.5, tiny), cvk::invalid_argument,
                       Catch::Message("soft_nms: sigma must be > 0 for the gaussian method in "
                                      "the box computation type (float), got 1e-300, which "
                                      "rounds to 0"));
  for (const auto convention :
       {soft_nms_convention::mmcv, soft_nms_convention::opencv, soft_nms_convention::tensorflow}) {
    INFO(cvk::to_string(convention));
    soft_nms_options o = tiny;
    o.convention = convention;
    CHECK_THROWS_AS(cvk::soft_nms(boxes, scores, 0.5, o), cvk::invalid_argument);
    // the smallest float: positive, but TensorFlow's -0.5 / sigma overflows to -infinity
    o.sigma = static_cast<double>(std::numeric_limits<float>::denorm_min());
    CHECK_THROWS_AS(cvk::soft_nms(boxes, scores, 0.5, o), cvk::invalid_argument);
    CHECK_THROWS_WITH(cvk::soft_nms(boxes, scores, 0.5, o),
                      Catch::Contains("(-0.5 / sigma overflows)"));
  }
  // in double boxes the same sigma is a usable positive number: no overlap, no decay
  const boxes_t<double> boxes_d = {{0, 0, 1, 1}, {2, 2, 3, 3}, {4, 4, 5, 5}};
  const auto r = cvk::soft_nms(boxes_d, scores, 0.5, tiny);
  REQUIRE(r.indices.extent(0) == 3);
  CHECK(r.indices(0) == 0);
  CHECK(r.indices(1) == 1);
  CHECK(r.indices(2) == 2);
  REQUIRE(r.scores.extent(0) == 3);
  CHECK(r.scores(0) == 0.9f);
  CHECK(r.scores(1) == 0.8f);
  CHECK(r.scores(2) == 0.7f);
  // a small sigma that stays positive, with a finite -0.5 / sigma, in float is accepted
  soft_nms_options small = tiny;
  small.sigma = 1e-30;
  const auto f = cvk::soft_nms(boxes, scores, 0.5, small);
  REQUIRE(f.scores.extent(0) == 3);
  for (index_t k = 0; k < 3; ++k) CHECK(std::isfinite(f.scores(k)));
}

TEST_CASE("errors table: soft_nms (docs/errors.md)", "[soft_nms][errors]") {
  const std::vector<float> buffer(8, 1.0F);
  const auto rank3 = cvk_test::rank3_view(buffer);
  const boxes_t<float> two = {{0, 0, 10, 10}, {20, 20, 30, 30}};
  const std::vector<float> scores = {0.9F, 0.8F};
  CHECK_THROWS_MATCHES(cvk::soft_nms(rank3, scores, 0.5), cvk::shape_error,
                       Catch::Message("soft_nms: boxes must have rank 2, got rank 3 (2×2×2)"));
  CHECK_THROWS_MATCHES(cvk::soft_nms(two, rank3, 0.5), cvk::shape_error,
                       Catch::Message("soft_nms: scores must have rank 1, got rank 3 (2×2×2)"));
  CHECK_THROWS_AS(cvk::soft_nms(cvk::view(buffer.data(), {-2, 4}), scores, 0.5), cvk::shape_error);
  CHECK_THROWS_AS(cvk::soft_nms(two, scores, 0.5, {.format = static_cast<cvk::box_format>(9)}),
                  cvk::invalid_argument);
  const std::array<float, 4> row{0, 0, 1, 1};
  const float score = 0.5F;
  CHECK_THROWS_AS(cvk::soft_nms(cvk_test::broadcast_rows(row.data(), cvk_test::huge_rows, 4),
                                cvk_test::broadcast_values(&score, cvk_test::huge_rows), 0.5),
                  cvk::out_of_range);
}
