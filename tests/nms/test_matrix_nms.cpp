// cvk — computer-vision kernels, header-only C++20.
// Tests of cvk/nms/matrix.hpp: matrix_nms and batched_matrix_nms (Paddle matrix_nms), fast_nms
// (YOLACT) and cluster_nms (Zzh-tju/CIoU) against plain reference implementations written below
// from the peers' definitions (full matrices, the literal Cluster-NMS iteration), on thousands of
// random scenes (float, double, strided, std containers, degenerate boxes); cluster_nms against
// cvk::nms; hand-computed cases; fixtures from a torch re-implementation of the peers' code
// (tests/gen_matrix_nms_fixtures.py); the errors.
// SPDX-License-Identifier: MIT
#include <algorithm>
#include <array>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <cvk/box/format.hpp>
#include <cvk/core.hpp>
#include <cvk/nms.hpp>
#include <cvk/nms/matrix.hpp>

#include "support/compare.hpp"
#include "support/error_inputs.hpp"
#include "support/fixtures.hpp"
#include "support/layouts.hpp"
#include "support/nms_scenes.hpp"

namespace {

using cvk::index_t;
template <class T>
using boxes_t = std::vector<std::array<T, 4>>;
template <class R>
using scored = std::vector<std::pair<index_t, R>>;  // (index, score) results

constexpr double nan_d = std::numeric_limits<double>::quiet_NaN();

template <class R>
scored<R> to_scored(const cvk::scored_indices<R>& r) {
  scored<R> out;
  for (index_t k = 0; k < r.indices.size(); ++k) out.emplace_back(r.indices(k), r.scores(k));
  return out;
}
template <class R>
scored<R> to_scored(const cvk::cluster_nms_result<R>& r) {
  scored<R> out;
  for (index_t k = 0; k < r.indices.size(); ++k) out.emplace_back(r.indices(k), r.scores(k));
  return out;
}
std::vector<index_t> to_vector(const cvk::tensor<index_t, 1>& t) {
  return std::vector<index_t>(t.begin(), t.end());
}

/// Same indices, and scores equal (NaN equal to NaN).
template <class R>
bool same_scored(const scored<R>& a, const scored<R>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t k = 0; k < a.size(); ++k) {
    if (a[k].first != b[k].first || !cvk_test::same_value(a[k].second, b[k].second)) return false;
  }
  return true;
}

template <class R>
std::string show(const scored<R>& v) {
  std::string text;
  for (const auto& [i, s] : v) text += std::to_string(i) + ":" + std::to_string(s) + " ";
  return text;
}

// ---------------------------------------------------------------------------------------------
// References, written from the definitions: full matrices, the peers' loops.
CVK_KERNEL_BEGIN

/// Processing order: score > threshold, score descending, equal scores by index, NaN last.
template <class S>
std::vector<std::size_t> reference_order(const std::vector<S>& scores,
                                         std::optional<double> threshold,
                                         std::optional<index_t> top_k) {
  std::vector<std::size_t> order;
  for (std::size_t i = 0; i < scores.size(); ++i) {
    if (!threshold || static_cast<double>(scores[i]) > *threshold) order.push_back(i);
  }
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    const auto sa = static_cast<double>(scores[a]);
    const auto sb = static_cast<double>(scores[b]);
    if (std::isnan(sb)) return !std::isnan(sa);
    return sa > sb;
  });
  if (top_k && static_cast<std::size_t>(*top_k) < order.size()) {
    order.resize(static_cast<std::size_t>(*top_k));
  }
  return order;
}

/// Stable sort of (rank, score) by score descending, NaN last.
template <class R>
void reference_sort(std::vector<std::pair<std::size_t, R>>& v) {
  std::stable_sort(v.begin(), v.end(), [](const auto& a, const auto& b) {
    if (std::isnan(b.second)) return !std::isnan(a.second);
    return a.second > b.second;
  });
}

/// Paddle's BBoxArea.
template <class R>
R paddle_area(const std::array<R, 4>& b, bool normalized) {
  if (b[2] < b[0] || b[3] < b[1]) return R(0);
  const R w = b[2] - b[0];
  const R h = b[3] - b[1];
  return normalized ? w * h : (w + 1) * (h + 1);
}

/// Paddle's JaccardOverlap(box1, box2).
template <class R>
R paddle_iou(const std::array<R, 4>& box1, const std::array<R, 4>& box2, bool normalized) {
  if (box2[0] > box1[2] || box2[2] < box1[0] || box2[1] > box1[3] || box2[3] < box1[1]) {
    return R(0);
  }
  const R inter_xmin = std::max(box1[0], box2[0]);
  const R inter_ymin = std::max(box1[1], box2[1]);
  const R inter_xmax = std::min(box1[2], box2[2]);
  const R inter_ymax = std::min(box1[3], box2[3]);
  const R norm = normalized ? R(0) : R(1);
  const R inter_w = inter_xmax - inter_xmin + norm;
  const R inter_h = inter_ymax - inter_ymin + norm;
  const R inter_area = inter_w * inter_h;
  const R area1 = paddle_area(box1, normalized);
  const R area2 = paddle_area(box2, normalized);
  return inter_area / (area1 + area2 - inter_area);
}

/// Paddle's NMSMatrix on the candidates `list` (box indices, in processing order):
/// (position in list, decayed score) of the survivors, in processing order.
template <class R>
std::vector<std::pair<std::size_t, R>> reference_matrix_core(const boxes_t<R>& boxes,
                                                             const std::vector<R>& scores,
                                                             const std::vector<std::size_t>& list,
                                                             const cvk::matrix_nms_options& o) {
  const std::size_t n = list.size();
  std::vector<std::vector<R>> iou(n, std::vector<R>(n, R(0)));
  std::vector<R> iou_max(n, R(0));
  for (std::size_t i = 1; i < n; ++i) {
    R max_iou = 0;
    for (std::size_t j = 0; j < i; ++j) {
      iou[i][j] = paddle_iou(boxes[list[i]], boxes[list[j]], !o.pixel_inclusive);
      max_iou = std::max(max_iou, iou[i][j]);
    }
    iou_max[i] = max_iou;
  }
  const auto sigma = static_cast<R>(o.gaussian_sigma);
  std::vector<std::pair<std::size_t, R>> kept;
  for (std::size_t i = 0; i < n; ++i) {
    R min_decay = 1;
    for (std::size_t j = 0; j < i; ++j) {
      const R decay = o.decay == cvk::matrix_nms_decay::gaussian
                          ? std::exp((iou_max[j] * iou_max[j] - iou[i][j] * iou[i][j]) * sigma)
                          : static_cast<R>((1. - iou[i][j]) / (1. - iou_max[j]));
      min_decay = std::min(min_decay, decay);
    }
    const R ds = min_decay * scores[list[i]];
    if (o.post_threshold && !(static_cast<double>(ds) > *o.post_threshold)) continue;
    kept.emplace_back(i, ds);
  }
  return kept;
}

/// matrix_nms by definition (boxes already xyxy in R).
template <class R>
scored<R> reference_matrix_nms(const boxes_t<R>& boxes, const std::vector<R>& scores,
                               const cvk::matrix_nms_options& o) {
  const auto order = reference_order(scores, o.score_threshold, o.top_k);
  auto kept = reference_matrix_core(boxes, scores, order, o);
  reference_sort(kept);
  if (o.max_output && kept.size() > static_cast<std::size_t>(*o.max_output)) {
    kept.resize(static_cast<std::size_t>(*o.max_output));
  }
  scored<R> out;
  for (const auto& [k, s] : kept) out.emplace_back(static_cast<index_t>(order[k]), s);
  return out;
}

/// batched_matrix_nms by definition: per class, candidates of the class in processing order,
/// top_k per class; merged by decayed score, then global rank.
template <class R, class C>
scored<R> reference_batched_matrix_nms(const boxes_t<R>& boxes, const std::vector<R>& scores,
                                       const std::vector<C>& classes,
                                       const cvk::matrix_nms_options& o) {
  const auto order = reference_order(scores, o.score_threshold, std::nullopt);
  std::map<C, std::vector<std::size_t>> groups;
  std::vector<std::size_t> rank(scores.size(), 0);
  for (std::size_t r = 0; r < order.size(); ++r) {
    rank[order[r]] = r;
    const C c = classes[order[r]];
    if (o.background_label && static_cast<std::int64_t>(c) == *o.background_label) continue;
    auto& g = groups[c];
    if (!o.top_k || g.size() < static_cast<std::size_t>(*o.top_k)) g.push_back(order[r]);
  }
  std::vector<std::pair<std::size_t, R>> all;  // (global rank, decayed)
  for (const auto& [c, list] : groups) {
    for (const auto& [k, s] : reference_matrix_core(boxes, scores, list, o)) {
      all.emplace_back(rank[list[k]], s);
    }
  }
  std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) {
    if (std::isnan(a.second) != std::isnan(b.second)) return std::isnan(b.second);
    if (!std::isnan(a.second) && a.second != b.second) return a.second > b.second;
    return a.first < b.first;
  });
  if (o.max_output && all.size() > static_cast<std::size_t>(*o.max_output)) {
    all.resize(static_cast<std::size_t>(*o.max_output));
  }
  scored<R> out;
  for (const auto& [r, s] : all) out.emplace_back(static_cast<index_t>(order[r]), s);
  return out;
}

/// torchvision's IoU (box_iou / nms kernel arithmetic), first box first.
template <class R>
R tv_iou(const std::array<R, 4>& a, const std::array<R, 4>& b) {
  const R area_a = (a[2] - a[0]) * (a[3] - a[1]);
  const R area_b = (b[2] - b[0]) * (b[3] - b[1]);
  const R w = std::max(R(0), std::min(a[2], b[2]) - std::max(a[0], b[0]));
  const R h = std::max(R(0), std::min(a[3], b[3]) - std::max(a[1], b[1]));
  const R inter = w * h;
  return inter / (area_a + area_b - inter);
}

/// The CIoU repository's ρ²/(c² + 1e-7) (box_utils.diou / distance), row box a, column box b.
template <class R>
R ciou_repo_distance(const std::array<R, 4>& a, const std::array<R, 4>& b) {
  const R x1 = (a[2] + a[0]) / 2;
  const R y1 = (a[3] + a[1]) / 2;
  const R x2 = (b[2] + b[0]) / 2;
  const R y2 = (b[3] + b[1]) / 2;
  const R cr = std::max(a[2], b[2]);
  const R cl = std::min(a[0], b[0]);
  const R ct = std::min(a[1], b[1]);
  const R cb = std::max(a[3], b[3]);
  return ((x2 - x1) * (x2 - x1) + (y2 - y1) * (y2 - y1)) /
         ((cr - cl) * (cr - cl) + (cb - ct) * (cb - ct) + static_cast<R>(1e-7));
}

bool above(double v, double t, bool inclusive) { return inclusive ? v >= t : v > t; }

/// YOLACT Fast NMS by definition: the IoU matrix's upper triangle, column j kept iff no entry
/// is above the threshold (NaN entries are not).
template <class R, class S>
std::vector<index_t> reference_fast_nms(const boxes_t<R>& boxes, const std::vector<S>& scores,
                                        double t, const cvk::fast_nms_options& o) {
  const auto order = reference_order(scores, o.score_threshold, o.top_k);
  const std::size_t n = order.size();
  std::vector<index_t> kept;
  for (std::size_t j = 0; j < n; ++j) {
    bool suppressed = false;
    for (std::size_t i = 0; i < j; ++i) {
      const R iou = tv_iou(boxes[order[i]], boxes[order[j]]);
      if (above(static_cast<double>(iou), t, o.inclusive)) suppressed = true;
    }
    if (!suppressed) kept.push_back(static_cast<index_t>(order[j]));
  }
  if (o.max_output && kept.size() > static_cast<std::size_t>(*o.max_output)) {
    kept.resize(static_cast<std::size_t>(*o.max_output));
  }
  return kept;
}

template <class R>
struct cluster_reference_result {
  scored<R> rows;
  boxes_t<R> boxes;
  int iterations = 0;
};

/// Cluster-NMS by definition: the criterion matrix C's upper triangle; B = C ⊙ [rows whose
/// column max over B is not above the threshold], iterated until B stops changing (NaN entries
/// are never above); then the penalty and the weighted merge from the final B.
/// `raw` holds the input rows (in their format), `boxes` the same boxes as xyxy.
template <class R, class S>
cluster_reference_result<R> reference_cluster_nms(const boxes_t<R>& boxes, const boxes_t<R>& raw,
                                                  const std::vector<S>& scores, double t,
                                                  const cvk::cluster_nms_options& o) {
  const auto order = reference_order(scores, o.score_threshold, o.top_k);
  const std::size_t n = order.size();
  std::vector<std::vector<R>> crit(n, std::vector<R>(n, R(0)));
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = i + 1; j < n; ++j) {
      const auto& a = boxes[order[i]];
      const auto& b = boxes[order[j]];
      R v = tv_iou(a, b);
      if (o.criterion == cvk::cluster_criterion::diou) {
        v = v - std::pow(ciou_repo_distance(a, b), static_cast<R>(o.diou_beta));
      }
      crit[i][j] = v;
    }
  }
  // B = C ⊙ E (E: the rows whose column max was not above the threshold), kept as E. Entries of
  // rows outside E are absent from the column test (the repository's zeros there are never
  // above a threshold >= 0; below 0 they would be, and the result would not be greedy NMS).
  std::vector<unsigned char> active(n, 1);
  std::vector<unsigned char> next(n, 1);
  cluster_reference_result<R> result;
  for (;;) {
    ++result.iterations;
    for (std::size_t j = 0; j < n; ++j) {
      next[j] = 1;
      for (std::size_t i = 0; i < j; ++i) {
        if (active[i] != 0 && above(static_cast<double>(crit[i][j]), t, o.inclusive)) next[j] = 0;
      }
    }
    if (next == active) break;
    active = next;
  }
  std::vector<std::vector<R>> B(n, std::vector<R>(n, R(0)));
  std::vector<unsigned char> suppressed(n, 0);
  for (std::size_t i = 0; i < n; ++i) {
    suppressed[i] = active[i] == 0 ? 1 : 0;
    if (active[i] != 0) B[i] = crit[i];
  }
  // B entries that take part: non-zero numbers.
  const auto entry = [&](std::size_t i, std::size_t j) {
    const R b = B[i][j];
    return std::isnan(b) ? R(0) : b;
  };
  std::vector<R> score(n);
  for (std::size_t k = 0; k < n; ++k) score[k] = static_cast<R>(scores[order[k]]);
  std::vector<std::pair<std::size_t, R>> rows;
  if (o.penalty != cvk::cluster_penalty::none) {
    const auto sigma = static_cast<R>(o.penalty_sigma);
    for (std::size_t j = 0; j < n; ++j) {
      R product = 1;
      for (std::size_t i = 0; i < j; ++i) {
        const R b = entry(i, j);
        R factor = std::exp(-(b * b / sigma));
        if (o.penalty == cvk::cluster_penalty::score_distance) {
          const R d = std::pow(ciou_repo_distance(boxes[order[i]], boxes[order[j]]),
                               static_cast<R>(o.distance_beta));
          factor = std::min(factor + (b > 0 ? d : R(0)), R(1));
        }
        product = product * factor;
      }
      score[j] = product * score[j];
      if (static_cast<double>(score[j]) > o.penalty_min_score) rows.emplace_back(j, score[j]);
    }
    reference_sort(rows);
  } else {
    for (std::size_t j = 0; j < n; ++j) {
      if (suppressed[j] == 0) rows.emplace_back(j, score[j]);
    }
  }
  if (o.max_output && rows.size() > static_cast<std::size_t>(*o.max_output)) {
    rows.resize(static_cast<std::size_t>(*o.max_output));
  }
  for (const auto& [i, s] : rows) {
    result.rows.emplace_back(static_cast<index_t>(order[i]), s);
    std::array<R, 4> box = raw[order[i]];
    if (o.weighted) {
      std::array<R, 4> sum{};
      for (std::size_t q = 0; q < 4; ++q) sum[q] = box[q] * score[i];
      R weight_sum = score[i];
      for (std::size_t j = i + 1; j < n; ++j) {
        const R b = entry(i, j);
        if (b == R(0) || !(static_cast<double>(b) > o.merge_threshold)) continue;
        const R w = b * score[j];
        for (std::size_t q = 0; q < 4; ++q) sum[q] += raw[order[j]][q] * w;
        weight_sum += w;
      }
      // zero or non-finite weights have no average: the box stays unmerged (issue 9 #6)
      std::array<R, 4> mean{};
      bool usable = weight_sum != R(0) && std::isfinite(weight_sum);
      for (std::size_t q = 0; q < 4; ++q) {
        mean[q] = sum[q] / weight_sum;
        usable = usable && std::isfinite(mean[q]);
      }
      if (usable) box = mean;
    }
    result.boxes.push_back(box);
  }
  return result;
}
CVK_KERNEL_END

// ---------------------------------------------------------------------------------------------
// Random scenes.

using cvk_test::density;
using cvk_test::density_names;
using cvk_test::random_scene;

template <class T>
std::vector<T> random_scores(cvk::rng& gen, std::size_t n) {
  const int kind = static_cast<int>(gen.below(4));
  std::vector<T> scores(n);
  for (auto& s : scores) {
    if (kind == 0) {
      s = static_cast<T>(gen.below(5)) / T(4);  // ties
    } else {
      s = gen.uniform<T>(T(0), T(1));
    }
    if (kind == 3 && gen.bernoulli(0.05)) s = std::numeric_limits<T>::quiet_NaN();
  }
  return scores;
}

std::size_t random_size(cvk::rng& gen) {
  const double u = gen.uniform(0.0, 1.0);
  if (u < 0.15) return gen.below(6);
  if (u < 0.5) return gen.below(64);
  if (u < 0.93) return 64 + gen.below(300);
  return 400 + gen.below(900);
}

std::optional<index_t> maybe_count(cvk::rng& gen, std::size_t n, double p) {
  if (!gen.bernoulli(p)) return std::nullopt;
  return static_cast<index_t>(gen.below(n + 2));
}

cvk::matrix_nms_options random_matrix_options(cvk::rng& gen, std::size_t n) {
  cvk::matrix_nms_options o;
  o.decay = gen.bernoulli(0.5) ? cvk::matrix_nms_decay::gaussian : cvk::matrix_nms_decay::linear;
  if (gen.bernoulli(0.4)) o.gaussian_sigma = gen.uniform(0.1, 5.0);
  if (gen.bernoulli(0.3)) o.score_threshold = gen.uniform(-0.1, 0.8);
  if (gen.bernoulli(0.4)) o.post_threshold = gen.bernoulli(0.3) ? 0.0 : gen.uniform(0.0, 0.6);
  o.top_k = maybe_count(gen, n, 0.25);
  o.max_output = maybe_count(gen, n, 0.25);
  o.pixel_inclusive = gen.bernoulli(0.25);
  o.threads = static_cast<int>(gen.below(3));
  return o;
}

std::string describe(density d, std::size_t n, const cvk::matrix_nms_options& o) {
  std::string text = std::string(density_names[static_cast<std::size_t>(d)]) +
                     " N=" + std::to_string(n) +
                     (o.decay == cvk::matrix_nms_decay::gaussian ? " gaussian sigma=" : " linear") +
                     (o.decay == cvk::matrix_nms_decay::gaussian ? std::to_string(o.gaussian_sigma)
                                                                 : std::string()) +
                     (o.pixel_inclusive ? " +1" : "");
  if (o.score_threshold) text += " score_threshold=" + std::to_string(*o.score_threshold);
  if (o.post_threshold) text += " post_threshold=" + std::to_string(*o.post_threshold);
  if (o.top_k) text += " top_k=" + std::to_string(*o.top_k);
  if (o.max_output) text += " max_output=" + std::to_string(*o.max_output);
  return text;
}

double random_threshold(cvk::rng& gen) {
  constexpr std::array<double, 8> fixed = {0.0, 0.3, 0.45, 0.5, 0.7, 1.0, -0.25, 0.25};
  return gen.bernoulli(0.7) ? fixed[gen.below(fixed.size())] : gen.uniform(0.0, 1.0);
}

cvk::fast_nms_options random_fast_options(cvk::rng& gen, std::size_t n) {
  cvk::fast_nms_options o;
  o.inclusive = gen.bernoulli(0.3);
  if (gen.bernoulli(0.25)) o.score_threshold = gen.uniform(-0.1, 0.9);
  o.top_k = maybe_count(gen, n, 0.25);
  o.max_output = maybe_count(gen, n, 0.25);
  o.threads = static_cast<int>(gen.below(3));
  return o;
}

cvk::cluster_nms_options random_cluster_options(cvk::rng& gen, std::size_t n) {
  cvk::cluster_nms_options o;
  o.inclusive = gen.bernoulli(0.2);
  if (gen.bernoulli(0.2)) o.score_threshold = gen.uniform(-0.1, 0.9);
  o.top_k = maybe_count(gen, n, 0.2);
  o.max_output = maybe_count(gen, n, 0.2);
  if (gen.bernoulli(0.3)) {
    o.criterion = cvk::cluster_criterion::diou;
    if (gen.bernoulli(0.3)) o.diou_beta = gen.bernoulli(0.5) ? 1.0 : gen.uniform(0.3, 2.0);
  } else {
    const auto p = gen.below(3);
    o.penalty = p == 0   ? cvk::cluster_penalty::none
                : p == 1 ? cvk::cluster_penalty::score
                         : cvk::cluster_penalty::score_distance;
    if (gen.bernoulli(0.3)) o.penalty_sigma = gen.uniform(0.05, 1.0);
    if (gen.bernoulli(0.3)) o.penalty_min_score = gen.uniform(-0.1, 0.5);
    if (gen.bernoulli(0.3)) o.distance_beta = gen.uniform(0.2, 1.5);
  }
  o.weighted = gen.bernoulli(0.4);
  if (gen.bernoulli(0.3)) o.merge_threshold = gen.uniform(0.0, 0.95);
  return o;
}

std::string describe(density d, std::size_t n, double t, const cvk::cluster_nms_options& o) {
  std::string text =
      std::string(density_names[static_cast<std::size_t>(d)]) + " N=" + std::to_string(n) +
      " threshold=" + std::to_string(t) + (o.inclusive ? " inclusive" : "") +
      (o.criterion == cvk::cluster_criterion::diou ? " diou beta=" + std::to_string(o.diou_beta)
                                                   : std::string(" iou")) +
      " penalty=" + std::to_string(static_cast<int>(o.penalty)) +
      " sigma=" + std::to_string(o.penalty_sigma) +
      " min_score=" + std::to_string(o.penalty_min_score) +
      (o.weighted ? " weighted>" + std::to_string(o.merge_threshold) : "");
  if (o.score_threshold) text += " score_threshold=" + std::to_string(*o.score_threshold);
  if (o.top_k) text += " top_k=" + std::to_string(*o.top_k);
  if (o.max_output) text += " max_output=" + std::to_string(*o.max_output);
  return text;
}

/// Boxes as R (the type results are computed in).
template <class R, class T>
boxes_t<R> as_real(const boxes_t<T>& boxes) {
  boxes_t<R> out(boxes.size());
  for (std::size_t i = 0; i < boxes.size(); ++i) {
    for (std::size_t q = 0; q < 4; ++q) out[i][q] = static_cast<R>(boxes[i][q]);
  }
  return out;
}
template <class R, class T>
std::vector<R> as_real(const std::vector<T>& v) {
  return std::vector<R>(v.begin(), v.end());
}

template <class R>
bool same_tensor(const cvk::tensor<R, 2>& a, const cvk::tensor<R, 2>& b) {
  if (a.extents() != b.extents()) return false;
  for (index_t k = 0; k < a.size(); ++k) {
    if (!cvk_test::same_value(a.data()[k], b.data()[k])) return false;
  }
  return true;
}

template <class R>
bool same_boxes(const cvk::tensor<R, 2>& got, const boxes_t<R>& expected) {
  if (static_cast<std::size_t>(got.extent(0)) != expected.size() || got.extent(1) != 4)
    return false;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    for (std::size_t q = 0; q < 4; ++q) {
      // Merged boxes are weighted means: an FMA build may contract their sums differently.
      if (!cvk_test::same_sum_of_products(got(static_cast<index_t>(i), static_cast<index_t>(q)),
                                          expected[i][q])) {
        return false;
      }
    }
  }
  return true;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// matrix_nms

TEST_CASE("matrix_nms: hand-computed linear and gaussian decays", "[matrix_nms]") {
  // IoU(0,1) = IoU(1,3) = 81/119, IoU(0,3) = 1, box 2 apart. iou_max = {0, 81/119, 0, 1}.
  const boxes_t<double> boxes = {{0, 0, 10, 10}, {1, 1, 11, 11}, {20, 20, 30, 30}, {0, 0, 10, 10}};
  const std::vector<double> scores = {0.9, 0.8, 0.7, 0.6};
  const double iou = 81.0 / 119.0;
  // linear: box 1 decays by (1 - iou)/(1 - 0); box 3 by (1 - 1)/(1 - 0) = 0 (from box 0).
  const auto linear = to_scored(cvk::matrix_nms(boxes, scores));
  REQUIRE(linear.size() == 4);
  CHECK(linear[0] == std::pair<index_t, double>{0, 0.9});
  CHECK(linear[1] == std::pair<index_t, double>{2, 0.7});
  CHECK(linear[2].first == 1);
  CHECK(linear[2].second == Approx(0.8 * (1 - iou)).epsilon(1e-14));
  CHECK(linear[3].first == 3);
  CHECK(linear[3].second == 0.0);
  // gaussian (sigma 2): box 1: exp((0 - iou²)·2); box 3: min(exp((0 - 1)·2) from box 0,
  // exp((iou² - iou²)·2) = 1 from box 1).
  const auto gaussian =
      to_scored(cvk::matrix_nms(boxes, scores, {.decay = cvk::matrix_nms_decay::gaussian}));
  REQUIRE(gaussian.size() == 4);
  CHECK(gaussian[0].first == 0);
  CHECK(gaussian[1].first == 2);
  CHECK(gaussian[2].first == 1);
  CHECK(gaussian[2].second == Approx(0.8 * std::exp(-2 * iou * iou)).epsilon(1e-14));
  CHECK(gaussian[3].first == 3);
  CHECK(gaussian[3].second == Approx(0.6 * std::exp(-2.0)).epsilon(1e-14));
  // post_threshold 0.3 (decayed > 0.3) and max_output 2.
  const auto post = to_scored(cvk::matrix_nms(boxes, scores, {.post_threshold = 0.3}));
  CHECK(post == scored<double>{{0, 0.9}, {2, 0.7}});
  const auto top = to_scored(cvk::matrix_nms(boxes, scores, {.max_output = 3}));
  CHECK(top.size() == 3);
  CHECK(top[2].first == 1);
  // score_threshold 0.75 (score > 0.75): only boxes 0 and 1 enter; top_k 1: only box 0.
  const auto filtered = to_scored(cvk::matrix_nms(boxes, scores, {.score_threshold = 0.75}));
  REQUIRE(filtered.size() == 2);
  CHECK(filtered[1].first == 1);
  CHECK(to_scored(cvk::matrix_nms(boxes, scores, {.top_k = 1})) == scored<double>{{0, 0.9}});
  // a gaussian sigma that multiplies: sigma 0.5 gives exp(-0.5·iou²).
  const auto half = to_scored(cvk::matrix_nms(
      boxes, scores, {.decay = cvk::matrix_nms_decay::gaussian, .gaussian_sigma = 0.5}));
  CHECK(half[2].second == Approx(0.8 * std::exp(-0.5 * iou * iou)).epsilon(1e-14));
}

TEST_CASE("matrix_nms: the decay of a box uses how much its suppressor was overlapped",
          "[matrix_nms]") {
  // A chain: 1 overlaps 0 (IoU 1/3), 2 overlaps 1 (IoU 1/3) but not 0. Linear decay of 2 is
  // (1 - 1/3)/(1 - iou_max(1) = 1/3) = 1: a box overlapped only by a suppressed box keeps its
  // score. Gaussian: exp((1/9 - 1/9)·2) = 1.
  const boxes_t<float> boxes = {{0, 0, 10, 10}, {5, 0, 15, 10}, {10, 0, 20, 10}};
  const std::vector<float> scores = {0.9f, 0.8f, 0.7f};
  for (const auto decay : {cvk::matrix_nms_decay::linear, cvk::matrix_nms_decay::gaussian}) {
    const auto r = to_scored(cvk::matrix_nms(boxes, scores, {.decay = decay}));
    REQUIRE(r.size() == 3);
    CHECK(r[0] == std::pair<index_t, float>{0, 0.9f});
    CHECK(r[1] == std::pair<index_t, float>{2, 0.7f});
    CHECK(r[2].first == 1);
    const float expected = decay == cvk::matrix_nms_decay::linear ? 0.8f * (2.0f / 3.0f)
                                                                  : 0.8f * std::exp(-2.0f / 9.0f);
    CHECK(r[2].second == Approx(expected).epsilon(1e-6));
  }
}

TEST_CASE("matrix_nms: pixel_inclusive is Paddle's normalized = false (+1)", "[matrix_nms]") {
  // Touching boxes: no overlap in continuous coordinates; with +1 the intersection is
  // (1 - 1 + 1)·(1 - 0 + 1) = 2, the areas (1 + 1)·(1 + 1) = 4: IoU 2/6.
  const boxes_t<double> boxes = {{0, 0, 1, 1}, {1, 0, 2, 1}};
  const std::vector<double> scores = {0.9, 0.6};
  CHECK(to_scored(cvk::matrix_nms(boxes, scores)) == scored<double>{{0, 0.9}, {1, 0.6}});
  const auto pixel = to_scored(cvk::matrix_nms(boxes, scores, {.pixel_inclusive = true}));
  REQUIRE(pixel.size() == 2);
  CHECK(pixel[1].second == Approx(0.6 * (1 - 1.0 / 3.0)).epsilon(1e-14));
  // boxes 1 apart never overlap, even with +1 (Paddle's "apart" test is on the coordinates).
  const boxes_t<double> gap = {{0, 0, 1, 1}, {1.5, 0, 2.5, 1}};
  CHECK(to_scored(cvk::matrix_nms(gap, scores, {.pixel_inclusive = true})) ==
        scored<double>{{0, 0.9}, {1, 0.6}});
}

TEST_CASE("matrix_nms: ties, NaN scores, empty input", "[matrix_nms]") {
  // Equal scores: lower index first; equal decayed scores keep processing order.
  const boxes_t<float> apart = {{0, 0, 1, 1}, {5, 5, 6, 6}, {10, 10, 11, 11}};
  const std::vector<float> tied = {0.5f, 0.5f, 0.5f};
  CHECK(to_scored(cvk::matrix_nms(apart, tied)) == scored<float>{{0, 0.5f}, {1, 0.5f}, {2, 0.5f}});
  // NaN scores rank last and stay last; a score threshold drops them.
  const std::vector<float> with_nan = {std::numeric_limits<float>::quiet_NaN(), 0.2f, 0.7f};
  const auto r = to_scored(cvk::matrix_nms(apart, with_nan));
  REQUIRE(r.size() == 3);
  CHECK(r[0].first == 2);
  CHECK(r[1].first == 1);
  CHECK(r[2].first == 0);
  CHECK(std::isnan(r[2].second));
  CHECK(cvk::matrix_nms(apart, with_nan, {.score_threshold = 0.0}).indices.size() == 2);
  // empty input, everything filtered, max_output 0
  const boxes_t<float> none;
  const std::vector<float> no_scores;
  CHECK(cvk::matrix_nms(none, no_scores).indices.size() == 0);
  CHECK(cvk::matrix_nms(apart, tied, {.score_threshold = 0.5}).indices.size() == 0);
  CHECK(cvk::matrix_nms(apart, tied, {.post_threshold = 0.5}).scores.size() == 0);
  CHECK(cvk::matrix_nms(apart, tied, {.max_output = 0}).indices.size() == 0);
}

TEMPLATE_TEST_CASE("matrix_nms: equals Paddle's NMSMatrix written plainly on random scenes",
                   "[matrix_nms]", float, double) {
  using T = TestType;
  cvk::rng gen(31, std::is_same_v<T, float> ? 1 : 2);
  std::size_t large = 0;
  for (int scene = 0; scene < 1000; ++scene) {
    const auto d = static_cast<density>(scene % 6);
    const std::size_t n = random_size(gen);
    const auto boxes = random_scene<T>(gen, d, n);
    const auto scores = random_scores<T>(gen, n);
    const auto options =
        gen.bernoulli(0.8) ? random_matrix_options(gen, n) : cvk::matrix_nms_options{};
    if (n >= 400) ++large;
    INFO(describe(d, n, options));
    const auto expected = reference_matrix_nms(boxes, scores, options);
    const auto got = to_scored(cvk::matrix_nms(boxes, scores, options));
    INFO("expected " << show(expected) << "\ngot      " << show(got));
    REQUIRE(same_scored(got, expected));
  }
  CHECK(large > 40);
}

TEST_CASE("matrix_nms: mixed and integer input types compute in the common real type",
          "[matrix_nms]") {
  cvk::rng gen(37);
  for (int scene = 0; scene < 100; ++scene) {
    const std::size_t n = random_size(gen);
    const auto boxes = random_scene<float>(gen, static_cast<density>(scene % 5), n);
    const auto scores = random_scores<double>(gen, n);
    const auto options = random_matrix_options(gen, n);
    INFO(describe(static_cast<density>(scene % 5), n, options));
    // float boxes, double scores: computed in double
    const auto got = cvk::matrix_nms(boxes, scores, options);
    static_assert(std::is_same_v<decltype(got), const cvk::scored_indices<double>>);
    REQUIRE(
        same_scored(to_scored(got), reference_matrix_nms(as_real<double>(boxes), scores, options)));
    // integer boxes: double
    boxes_t<int> integer(n);
    for (std::size_t i = 0; i < n; ++i) {
      for (std::size_t q = 0; q < 4; ++q) integer[i][q] = static_cast<int>(boxes[i][q]);
    }
    REQUIRE(same_scored(to_scored(cvk::matrix_nms(integer, scores, options)),
                        reference_matrix_nms(as_real<double>(integer), scores, options)));
  }
}

TEMPLATE_TEST_CASE("matrix_nms, fast_nms and cluster_nms read strided boxes and formats",
                   "[matrix_nms]", float, double) {
  using T = TestType;
  cvk::rng gen(41, std::is_same_v<T, float> ? 1 : 2);
  for (int scene = 0; scene < 40; ++scene) {
    const auto d = static_cast<density>(scene % 5);
    const std::size_t n = scene % 2 == 0 ? gen.below(60) : 100 + gen.below(300);
    const auto boxes = random_scene<T>(gen, d, n);
    const auto scores = random_scores<T>(gen, n);
    const auto mo = random_matrix_options(gen, n);
    const auto fo = random_fast_options(gen, n);
    auto co = random_cluster_options(gen, n);
    const double t = random_threshold(gen);
    const auto matrix = to_scored(cvk::matrix_nms(boxes, scores, mo));
    const auto fast = to_vector(cvk::fast_nms(boxes, scores, t, fo));
    const auto cluster = cvk::cluster_nms(boxes, scores, t, co);
    for (const auto l : cvk_test::all_layouts) {
      INFO(to_string(l) << " " << describe(d, n, t, co));
      const auto s = cvk_test::with_layout(boxes, l, T(-777));
      CHECK(same_scored(to_scored(cvk::matrix_nms(s.view, scores, mo)), matrix));
      CHECK(to_vector(cvk::fast_nms(s.view, scores, t, fo)) == fast);
      const auto c = cvk::cluster_nms(s.view, scores, t, co);
      CHECK(same_scored(to_scored(c), to_scored(cluster)));
      CHECK(same_tensor(c.boxes, cluster.boxes));
    }
    // other formats: the same boxes written as xywh / cxcywh / yxyx (converted by cvk, so the
    // corners read back are the same values)
    for (const auto f : {cvk::box_format::xywh, cvk::box_format::cxcywh, cvk::box_format::yxyx}) {
      boxes_t<T> converted(n);
      cvk::box_convert(boxes, cvk::box_format::xyxy, f, converted);
      boxes_t<T> corners(n);
      cvk::box_convert(converted, f, cvk::box_format::xyxy, corners);
      auto mf = mo;
      mf.format = f;
      CHECK(same_scored(to_scored(cvk::matrix_nms(converted, scores, mf)),
                        to_scored(cvk::matrix_nms(corners, scores, mo))));
      auto ff = fo;
      ff.format = f;
      CHECK(to_vector(cvk::fast_nms(converted, scores, t, ff)) ==
            to_vector(cvk::fast_nms(corners, scores, t, fo)));
      auto cf = co;
      cf.format = f;
      cf.weighted = false;  // merged boxes are averaged in the input format (checked elsewhere)
      auto cx = co;
      cx.weighted = false;
      CHECK(same_scored(to_scored(cvk::cluster_nms(converted, scores, t, cf)),
                        to_scored(cvk::cluster_nms(corners, scores, t, cx))));
    }
  }
}

TEST_CASE("matrix_nms: results do not depend on the thread count", "[matrix_nms]") {
  cvk::rng gen(43);
  for (const density d : {density::sparse, density::mixed_scales, density::overlapping}) {
    const auto boxes = random_scene<float>(gen, d, 2500);  // >= 2048: rows run in parallel
    const auto scores = random_scores<float>(gen, 2500);
    for (const auto decay : {cvk::matrix_nms_decay::linear, cvk::matrix_nms_decay::gaussian}) {
      const auto one = to_scored(cvk::matrix_nms(boxes, scores, {.decay = decay, .threads = 1}));
      for (const int threads : {0, 2, 3}) {
        INFO(density_names[static_cast<std::size_t>(d)] << " threads " << threads);
        CHECK(same_scored(
            to_scored(cvk::matrix_nms(boxes, scores, {.decay = decay, .threads = threads})), one));
      }
    }
    if (d == density::sparse) {
      const auto expected = reference_matrix_nms(boxes, scores, {});
      CHECK(same_scored(to_scored(cvk::matrix_nms(boxes, scores)), expected));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// batched_matrix_nms

TEST_CASE("batched_matrix_nms: classes never decay each other, background dropped",
          "[batched_matrix_nms]") {
  const boxes_t<double> boxes = {{0, 0, 10, 10}, {1, 1, 11, 11}, {20, 20, 30, 30}, {0, 0, 10, 10}};
  const std::vector<double> scores = {0.9, 0.8, 0.7, 0.6};
  const std::vector<int> classes = {0, 1, 0, 1};
  // class 0: boxes 0, 2 apart; class 1: box 3 under box 1 (IoU 81/119).
  const auto r = to_scored(cvk::batched_matrix_nms(boxes, scores, classes));
  REQUIRE(r.size() == 4);
  CHECK(r[0] == std::pair<index_t, double>{0, 0.9});
  CHECK(r[1] == std::pair<index_t, double>{1, 0.8});
  CHECK(r[2] == std::pair<index_t, double>{2, 0.7});
  CHECK(r[3].first == 3);
  CHECK(r[3].second == Approx(0.6 * (1 - 81.0 / 119.0)).epsilon(1e-14));
  const auto no_background =
      to_scored(cvk::batched_matrix_nms(boxes, scores, classes, {.background_label = 0}));
  CHECK(no_background.size() == 2);
  CHECK(no_background[0].first == 1);
  CHECK(no_background[1].first == 3);
  // top_k is per class: 1 per class keeps boxes 0 and 1.
  CHECK(to_scored(cvk::batched_matrix_nms(boxes, scores, classes, {.top_k = 1})) ==
        scored<double>{{0, 0.9}, {1, 0.8}});
  // equal decayed scores across classes: score, then index.
  const boxes_t<double> apart = {{0, 0, 1, 1}, {5, 5, 6, 6}};
  const std::vector<double> tied = {0.5, 0.5};
  const std::vector<std::int64_t> two = {7, -3};
  CHECK(to_scored(cvk::batched_matrix_nms(apart, tied, two)) == scored<double>{{0, 0.5}, {1, 0.5}});
}

TEMPLATE_TEST_CASE("batched_matrix_nms: equals per-class references on random scenes",
                   "[batched_matrix_nms]", float, double) {
  using T = TestType;
  cvk::rng gen(47, std::is_same_v<T, float> ? 1 : 2);
  for (int scene = 0; scene < 500; ++scene) {
    const auto d = static_cast<density>(scene % 6);
    const std::size_t n = scene % 50 == 0 ? 2500 : random_size(gen);
    const auto boxes = random_scene<T>(gen, d, n);
    const auto scores = random_scores<T>(gen, n);
    const auto class_count = 1 + gen.below(12);
    std::vector<std::int16_t> classes(n);
    for (auto& c : classes)
      c = static_cast<std::int16_t>(static_cast<int>(gen.below(class_count)) - 2);
    auto options = random_matrix_options(gen, n);
    if (gen.bernoulli(0.3)) options.background_label = static_cast<std::int64_t>(gen.below(4)) - 2;
    INFO(describe(d, n, options) << " classes " << class_count);
    const auto expected = reference_batched_matrix_nms(boxes, scores, classes, options);
    REQUIRE(
        same_scored(to_scored(cvk::batched_matrix_nms(boxes, scores, classes, options)), expected));
  }
}

// ---------------------------------------------------------------------------------------------
// fast_nms

TEST_CASE("fast_nms: a suppressed box still suppresses (hand-computed chain)", "[fast_nms]") {
  // IoU(0,1) = IoU(1,2) = 1/3, IoU(0,2) = 0. Greedy at 0.3 keeps 0 and 2 (2 is overlapped only
  // by the suppressed 1); Fast NMS drops 2 as well.
  const boxes_t<float> boxes = {{0, 0, 10, 10}, {5, 0, 15, 10}, {10, 0, 20, 10}};
  const std::vector<float> scores = {0.9f, 0.8f, 0.7f};
  CHECK(to_vector(cvk::fast_nms(boxes, scores, 0.3)) == std::vector<index_t>{0});
  CHECK(to_vector(cvk::nms(boxes, scores, 0.3)) == std::vector<index_t>{0, 2});
  CHECK(to_vector(cvk::cluster_nms(boxes, scores, 0.3).indices) == std::vector<index_t>{0, 2});
  // at 0.4 nothing overlaps enough; at exactly the float IoU with >= both are dropped
  CHECK(to_vector(cvk::fast_nms(boxes, scores, 0.4)) == std::vector<index_t>{0, 1, 2});
  CHECK(to_vector(cvk::fast_nms(boxes, scores, static_cast<double>(1.0f / 3.0f),
                                {.inclusive = true})) == std::vector<index_t>{0});
  // the score order decides who suppresses whom; ties: lower index first
  const std::vector<float> reversed = {0.7f, 0.8f, 0.9f};
  CHECK(to_vector(cvk::fast_nms(boxes, reversed, 0.3)) == std::vector<index_t>{2});
  const std::vector<float> tied = {0.5f, 0.5f, 0.5f};
  CHECK(to_vector(cvk::fast_nms(boxes, tied, 0.3)) == std::vector<index_t>{0});
  // top_k (YOLACT's 200), max_output, score_threshold
  CHECK(to_vector(cvk::fast_nms(boxes, scores, 0.3, {.top_k = 1})) == std::vector<index_t>{0});
  CHECK(to_vector(cvk::fast_nms(boxes, scores, 0.4, {.max_output = 2})) ==
        std::vector<index_t>{0, 1});
  CHECK(to_vector(cvk::fast_nms(boxes, scores, 0.3, {.score_threshold = 0.75})) ==
        std::vector<index_t>{0});
  CHECK(to_vector(cvk::fast_nms(boxes, scores, 0.3, {.score_threshold = 0.85})) ==
        std::vector<index_t>{0});
  // two zero-area boxes (IoU 0/0) never suppress; a negative threshold keeps the first box
  const boxes_t<double> points = {{3, 3, 3, 3}, {3, 3, 3, 3}};
  const std::vector<double> two = {0.9, 0.8};
  CHECK(to_vector(cvk::fast_nms(points, two, 0.0)) == std::vector<index_t>{0, 1});
  const boxes_t<double> apart = {{0, 0, 1, 1}, {5, 5, 6, 6}};
  CHECK(to_vector(cvk::fast_nms(apart, two, -0.5)) == std::vector<index_t>{0});
  const boxes_t<double> none;
  CHECK(cvk::fast_nms(none, std::vector<double>{}, 0.5).size() == 0);
}

TEMPLATE_TEST_CASE("fast_nms: equals YOLACT's matrix rule written plainly on random scenes",
                   "[fast_nms]", float, double) {
  using T = TestType;
  cvk::rng gen(53, std::is_same_v<T, float> ? 1 : 2);
  std::size_t grid_runs = 0;
  for (int scene = 0; scene < 1500; ++scene) {
    const auto d = static_cast<density>(scene % 6);
    const std::size_t n = random_size(gen);
    const auto boxes = random_scene<T>(gen, d, n);
    const auto scores = random_scores<T>(gen, n);
    const double t = random_threshold(gen);
    const auto o = gen.bernoulli(0.7) ? random_fast_options(gen, n) : cvk::fast_nms_options{};
    if (t >= 0 && n >= 64) ++grid_runs;
    INFO(density_names[static_cast<std::size_t>(d)] << " N=" << n << " t=" << t
                                                    << (o.inclusive ? " inclusive" : ""));
    const auto expected = reference_fast_nms(boxes, scores, t, o);
    REQUIRE(to_vector(cvk::fast_nms(boxes, scores, t, o)) == expected);
    // fast NMS never keeps a box greedy NMS drops
    if (!o.max_output && !std::isnan(t)) {
      cvk::nms_options g;
      g.score_threshold = o.score_threshold;
      g.top_k = o.top_k;
      g.inclusive = o.inclusive;
      const auto greedy = to_vector(cvk::nms(boxes, scores, t, g));
      for (const index_t k : expected) {
        REQUIRE(std::find(greedy.begin(), greedy.end(), k) != greedy.end());
      }
    }
  }
  CHECK(grid_runs > 300);
}

TEST_CASE("fast_nms: results do not depend on the thread count", "[fast_nms]") {
  cvk::rng gen(59);
  const auto boxes = random_scene<double>(gen, density::sparse, 8000);
  const auto scores = random_scores<double>(gen, 8000);
  const auto expected = reference_fast_nms(boxes, scores, 0.3, {});
  for (const int threads : {0, 1, 2, 3}) {
    INFO("threads " << threads);
    CHECK(to_vector(cvk::fast_nms(boxes, scores, 0.3, {.threads = threads})) == expected);
    CHECK(to_vector(cvk::fast_nms(boxes, scores, 0.3, {.max_output = 5000, .threads = threads})) ==
          std::vector<index_t>(
              expected.begin(),
              expected.begin() +
                  std::min<std::ptrdiff_t>(5000, static_cast<std::ptrdiff_t>(expected.size()))));
  }
}

// ---------------------------------------------------------------------------------------------
// cluster_nms

TEMPLATE_TEST_CASE("cluster_nms: the iteration's fixed point equals cvk::nms on random scenes",
                   "[cluster_nms]", float, double) {
  using T = TestType;
  cvk::rng gen(61, std::is_same_v<T, float> ? 1 : 2);
  int most_iterations = 0;
  for (int scene = 0; scene < 1200; ++scene) {
    const auto d = static_cast<density>(scene % 6);
    const std::size_t n = random_size(gen) / (scene % 3 == 0 ? 1 : 3);
    const auto boxes = random_scene<T>(gen, d, n);
    const auto scores = random_scores<T>(gen, n);
    const double t = random_threshold(gen);
    cvk::cluster_nms_options o;
    cvk::nms_options g;
    if (gen.bernoulli(0.5)) {
      o.inclusive = g.inclusive = gen.bernoulli(0.3);
      if (gen.bernoulli(0.3)) o.score_threshold = g.score_threshold = gen.uniform(-0.1, 0.9);
      if (gen.bernoulli(0.3)) o.top_k = g.top_k = static_cast<index_t>(gen.below(n + 2));
      if (gen.bernoulli(0.3)) o.max_output = g.max_output = static_cast<index_t>(gen.below(n + 2));
    }
    INFO(describe(d, n, t, o));
    const auto greedy = to_vector(cvk::nms(boxes, scores, t, g));
    const auto got = cvk::cluster_nms(boxes, scores, t, o);
    REQUIRE(to_vector(got.indices) == greedy);
    if (n <= 400) {
      const auto ref = reference_cluster_nms(boxes, boxes, scores, t, o);
      most_iterations = std::max(most_iterations, ref.iterations);
      REQUIRE(same_scored(to_scored(got), ref.rows));
      REQUIRE(same_boxes(got.boxes, ref.boxes));
    }
  }
  CHECK(most_iterations > 3);  // some scenes needed several iterations to settle
}

TEST_CASE("cluster_nms: a long suppression chain needs many iterations, still greedy",
          "[cluster_nms]") {
  // Boxes shifted by 3 with width 10: neighbours have IoU 7/13, next-but-one 4/16, then 1/19.
  // At 0.5, greedy keeps every other box; the iteration settles one link per round.
  boxes_t<double> boxes;
  std::vector<double> scores;
  for (int k = 0; k < 60; ++k) {
    boxes.push_back({3.0 * k, 0, 3.0 * k + 10, 10});
    scores.push_back(1.0 - 0.01 * k);
  }
  const auto ref = reference_cluster_nms(boxes, boxes, scores, 0.5, {});
  CHECK(ref.iterations > 20);
  std::vector<index_t> every_other;
  for (index_t k = 0; k < 60; k += 2) every_other.push_back(k);
  CHECK(to_vector(cvk::cluster_nms(boxes, scores, 0.5).indices) == every_other);
  CHECK(to_vector(cvk::nms(boxes, scores, 0.5)) == every_other);
  CHECK(same_scored(to_scored(cvk::cluster_nms(boxes, scores, 0.5)), ref.rows));
}

TEST_CASE("cluster_nms: hand-computed score penalty, distance penalty, weighted merge and DIoU",
          "[cluster_nms]") {
  const boxes_t<double> chain = {{0, 0, 10, 10}, {5, 0, 15, 10}, {10, 0, 20, 10}};
  const std::vector<double> scores = {0.9, 0.8, 0.7};
  // SPM: K = {0, 2}; box 1 gets exp(-(1/3)²/0.2), box 2 nothing (B(0,2) = 0, row 1 zeroed).
  const auto spm = cvk::cluster_nms(chain, scores, 0.3, {.penalty = cvk::cluster_penalty::score});
  REQUIRE(spm.indices.size() == 3);
  CHECK(to_vector(spm.indices) == std::vector<index_t>{0, 2, 1});
  CHECK(spm.scores(0) == 0.9);
  CHECK(spm.scores(1) == 0.7);
  CHECK(spm.scores(2) == Approx(0.8 * std::exp(-(1.0 / 9.0) / 0.2)).epsilon(1e-14));
  // penalty_min_score 0.5 drops box 1 (0.459)
  CHECK(cvk::cluster_nms(chain, scores, 0.3,
                         {.penalty = cvk::cluster_penalty::score, .penalty_min_score = 0.5})
            .indices.size() == 2);
  // SPM + distance: min(exp(-(1/9)/0.2) + (25/(325 + 1e-7))^0.6, 1): centres 5 apart, enclosing
  // box 15 × 10.
  const auto dist =
      cvk::cluster_nms(chain, scores, 0.3, {.penalty = cvk::cluster_penalty::score_distance});
  const double factor = std::exp(-(1.0 / 9.0) / 0.2) + std::pow(25.0 / (325.0 + 1e-7), 0.6);
  REQUIRE(dist.indices.size() == 3);
  CHECK(to_vector(dist.indices) == std::vector<index_t>{0, 2, 1});
  CHECK(dist.scores(2) == Approx(0.8 * factor).epsilon(1e-14));
  // Weighted: box 1 has IoU 90/110 > 0.8 with box 0 and is merged into it with weight
  // (9/11)·0.6: x1 = 0.6·(9/11)·1 / (0.9 + 0.6·9/11) = 6/17, x2 = 176/17.
  const boxes_t<double> pair = {{0, 0, 10, 10}, {1, 0, 11, 10}};
  const std::vector<double> pair_scores = {0.9, 0.6};
  const auto merged = cvk::cluster_nms(pair, pair_scores, 0.5, {.weighted = true});
  REQUIRE(merged.indices.size() == 1);
  CHECK(merged.scores(0) == 0.9);
  CHECK(merged.boxes(0, 0) == Approx(6.0 / 17.0).epsilon(1e-14));
  CHECK(merged.boxes(0, 1) == Approx(0.0).margin(1e-14));
  CHECK(merged.boxes(0, 2) == Approx(176.0 / 17.0).epsilon(1e-14));
  CHECK(merged.boxes(0, 3) == Approx(10.0).epsilon(1e-14));
  // ... in xywh the average is taken on x, y, w, h: the same box
  const boxes_t<double> pair_xywh = {{0, 0, 10, 10}, {1, 0, 10, 10}};
  const auto merged_xywh = cvk::cluster_nms(pair_xywh, pair_scores, 0.5,
                                            {.format = cvk::box_format::xywh, .weighted = true});
  CHECK(merged_xywh.boxes(0, 0) == Approx(6.0 / 17.0).epsilon(1e-14));
  CHECK(merged_xywh.boxes(0, 2) == Approx(10.0).epsilon(1e-14));
  // not merged above 9/11; unmerged boxes are returned as given
  const auto unmerged =
      cvk::cluster_nms(pair, pair_scores, 0.5, {.weighted = true, .merge_threshold = 0.85});
  CHECK(unmerged.boxes(0, 2) == Approx(10.0).epsilon(1e-15));
  const auto plain = cvk::cluster_nms(pair, pair_scores, 0.5);
  CHECK(plain.boxes(0, 2) == 10.0);
  // DIoU: IoU(A, B) = 80/120, centres 2 apart, enclosing 12 × 10: DIoU = 2/3 - (4/244)^0.9.
  const boxes_t<double> near = {{0, 0, 10, 10}, {2, 0, 12, 10}};
  const double diou = 2.0 / 3.0 - std::pow(4.0 / (244.0 + 1e-7), 0.9);
  CHECK(diou == Approx(0.6419).margin(1e-4));
  const cvk::cluster_nms_options by_diou{.criterion = cvk::cluster_criterion::diou};
  CHECK(cvk::cluster_nms(near, pair_scores, 0.65).indices.size() == 1);
  CHECK(cvk::cluster_nms(near, pair_scores, 0.65, by_diou).indices.size() == 2);
  CHECK(cvk::cluster_nms(near, pair_scores, diou - 1e-9, by_diou).indices.size() == 1);
  CHECK(cvk::cluster_nms(near, pair_scores, diou + 1e-9, by_diou).indices.size() == 2);
  auto paper = by_diou;
  paper.diou_beta = 1.0;  // 2/3 - 4/244 = 0.6503
  CHECK(cvk::cluster_nms(near, pair_scores, 0.65, paper).indices.size() == 1);
}

TEMPLATE_TEST_CASE("cluster_nms: every variant equals the literal iteration on random scenes",
                   "[cluster_nms]", float, double) {
  using T = TestType;
  cvk::rng gen(67, std::is_same_v<T, float> ? 1 : 2);
  for (int scene = 0; scene < 900; ++scene) {
    const auto d = static_cast<density>(scene % 6);
    const std::size_t n = std::min<std::size_t>(random_size(gen), 500);
    const auto boxes = random_scene<T>(gen, d, n);
    const auto scores = random_scores<T>(gen, n);
    const double t = random_threshold(gen);
    const auto o = random_cluster_options(gen, n);
    INFO(describe(d, n, t, o));
    const auto ref = reference_cluster_nms(boxes, boxes, scores, t, o);
    const auto got = cvk::cluster_nms(boxes, scores, t, o);
    INFO("expected " << show(ref.rows) << "\ngot      " << show(to_scored(got)));
    REQUIRE(same_scored(to_scored(got), ref.rows));
    REQUIRE(same_boxes(got.boxes, ref.boxes));
  }
}

TEST_CASE("cluster_nms: weighted merge averages the input format's coordinates", "[cluster_nms]") {
  cvk::rng gen(71);
  for (int scene = 0; scene < 60; ++scene) {
    const std::size_t n = 20 + gen.below(200);
    const auto boxes = random_scene<double>(gen, density::clusters, n);
    const auto scores = random_scores<double>(gen, n);
    boxes_t<double> xywh(n);
    cvk::box_convert(boxes, cvk::box_format::xyxy, cvk::box_format::xywh, xywh);
    boxes_t<double> corners(n);
    cvk::box_convert(xywh, cvk::box_format::xywh, cvk::box_format::xyxy, corners);
    cvk::cluster_nms_options o{.format = cvk::box_format::xywh, .weighted = true};
    if (scene % 2 == 0) o.penalty = cvk::cluster_penalty::score;
    const auto ref = reference_cluster_nms(corners, xywh, scores, 0.5, o);
    const auto got = cvk::cluster_nms(xywh, scores, 0.5, o);
    REQUIRE(same_scored(to_scored(got), ref.rows));
    REQUIRE(same_boxes(got.boxes, ref.boxes));
  }
}

TEST_CASE("cluster_nms: large scenes through the grid equal the dense computation",
          "[cluster_nms]") {
  cvk::rng gen(73);
  for (const density d : {density::sparse, density::mixed_scales, density::clusters}) {
    const auto boxes = random_scene<float>(gen, d, 1200);
    const auto scores = random_scores<float>(gen, 1200);
    for (const auto penalty : {cvk::cluster_penalty::none, cvk::cluster_penalty::score,
                               cvk::cluster_penalty::score_distance}) {
      for (const bool weighted : {false, true}) {
        const cvk::cluster_nms_options o{.penalty = penalty, .weighted = weighted};
        INFO(describe(d, 1200, 0.5, o));
        const auto ref = reference_cluster_nms(boxes, boxes, scores, 0.5, o);
        const auto got = cvk::cluster_nms(boxes, scores, 0.5, o);
        REQUIRE(same_scored(to_scored(got), ref.rows));
        REQUIRE(same_boxes(got.boxes, ref.boxes));
      }
    }
    const cvk::cluster_nms_options by_diou{.criterion = cvk::cluster_criterion::diou,
                                           .weighted = true};
    const auto ref = reference_cluster_nms(boxes, boxes, scores, 0.4, by_diou);
    const auto got = cvk::cluster_nms(boxes, scores, 0.4, by_diou);
    REQUIRE(same_scored(to_scored(got), ref.rows));
    REQUIRE(same_boxes(got.boxes, ref.boxes));
  }
}

// ---------------------------------------------------------------------------------------------
// Fixtures: a torch re-implementation of the peers' code (gen_matrix_nms_fixtures.py).

TEMPLATE_TEST_CASE("matrix_nms, fast_nms and cluster_nms match the torch re-implementations",
                   "[matrix_nms][fast_nms][cluster_nms]", float, double) {
  using T = TestType;
  const cvk_test::fixture_file file(cvk_test::test_data_path("matrix_nms_reference.txt"));
  const std::string dtype = std::is_same_v<T, float> ? "float32" : "float64";
  const double tolerance = std::is_same_v<T, float> ? 2e-6 : 1e-12;
  std::size_t checked = 0;
  for (const auto& [name, table] : file.tables()) {
    // <op>/<variant>/<scene>/<dtype>
    const auto a = name.find('/');
    const auto b2 = name.find('/', a + 1);
    const auto c = name.find('/', b2 + 1);
    if (c == std::string::npos || name.substr(c + 1) != dtype) continue;
    const std::string op = name.substr(0, a);
    if (op != "matrix" && op != "fast" && op != "cluster") continue;
    const std::string variant = name.substr(a + 1, b2 - a - 1);
    const std::string scene = name.substr(b2 + 1, c - b2 - 1);
    const auto boxes = file.table("boxes/" + scene + "/" + dtype).template rows_of<T, 4>();
    const auto scores = file.table("scores/" + scene + "/" + dtype).template values<T>();
    INFO(name);
    // expected rows: index, score (and 4 box columns for cluster)
    const auto flat = table.template values<double>();
    std::vector<index_t> indices;
    std::vector<double> values;
    for (std::size_t r = 0; r < table.rows; ++r) {
      indices.push_back(static_cast<index_t>(flat[r * table.cols]));
      if (table.cols > 1) values.push_back(flat[r * table.cols + 1]);
    }
    const auto close = [&](double got, double want) {
      return std::fabs(got - want) <= tolerance * std::max(1.0, std::fabs(want));
    };
    if (op == "fast") {
      CHECK(to_vector(cvk::fast_nms(boxes, scores, 0.5, {.top_k = 200})) == indices);
    } else if (op == "matrix") {
      cvk::matrix_nms_options o{
          .score_threshold = 0.05, .post_threshold = 0.1, .top_k = 250, .max_output = 200};
      if (variant == "gaussian") o.decay = cvk::matrix_nms_decay::gaussian;
      if (variant == "linear_pixel") o.pixel_inclusive = true;
      const auto got = cvk::matrix_nms(boxes, scores, o);
      REQUIRE(to_vector(got.indices) == indices);
      for (std::size_t k = 0; k < values.size(); ++k) {
        CHECK(close(static_cast<double>(got.scores(static_cast<index_t>(k))), values[k]));
      }
    } else {
      cvk::cluster_nms_options o{.top_k = 200};
      if (variant == "diou") o.criterion = cvk::cluster_criterion::diou;
      if (variant == "spm") o.penalty = cvk::cluster_penalty::score;
      if (variant == "spm_dist") o.penalty = cvk::cluster_penalty::score_distance;
      if (variant == "spm_dist_weighted") {
        o.penalty = cvk::cluster_penalty::score_distance;
        o.weighted = true;
      }
      const auto got = cvk::cluster_nms(boxes, scores, 0.5, o);
      // the repository returns its rows in processing order; cvk sorts by score: compare as sets
      std::map<index_t, std::size_t> row_of;
      for (std::size_t k = 0; k < indices.size(); ++k) row_of[indices[k]] = k;
      REQUIRE(static_cast<std::size_t>(got.indices.size()) == indices.size());
      for (index_t k = 0; k < got.indices.size(); ++k) {
        REQUIRE(row_of.count(got.indices(k)) == 1);
        const std::size_t r = row_of[got.indices(k)];
        CHECK(close(static_cast<double>(got.scores(k)), values[r]));
        for (index_t q = 0; q < 4; ++q) {
          CHECK(close(static_cast<double>(got.boxes(k, q)),
                      flat[r * table.cols + 2 + static_cast<std::size_t>(q)]));
        }
      }
    }
    ++checked;
  }
  CHECK(checked >= 20);
}

// ---------------------------------------------------------------------------------------------
// Errors

TEST_CASE("matrix_nms: errors name the function and the argument", "[matrix_nms]") {
  const boxes_t<float> boxes = {{0, 0, 1, 1}, {0, 0, 2, 2}};
  const std::vector<float> scores = {0.5f, 0.4f};
  const std::vector<float> three = {0.5f, 0.4f, 0.3f};
  const std::vector<std::array<float, 3>> narrow = {{0, 0, 1}};
  const std::vector<int> classes = {1};
  REQUIRE_THROWS_AS(cvk::matrix_nms(boxes, three), cvk::shape_error);
  REQUIRE_THROWS_AS(cvk::matrix_nms(narrow, std::vector<float>{0.5f}), cvk::shape_error);
  REQUIRE_THROWS_AS(cvk::batched_matrix_nms(boxes, scores, classes), cvk::shape_error);
  REQUIRE_THROWS_AS(cvk::matrix_nms(boxes, scores, {.score_threshold = nan_d}),
                    cvk::invalid_argument);
  REQUIRE_THROWS_AS(cvk::matrix_nms(boxes, scores, {.post_threshold = nan_d}),
                    cvk::invalid_argument);
  REQUIRE_THROWS_AS(cvk::matrix_nms(boxes, scores, {.top_k = -1}), cvk::invalid_argument);
  REQUIRE_THROWS_AS(cvk::matrix_nms(boxes, scores, {.max_output = -1}), cvk::invalid_argument);
  for (const double sigma : {0.0, -1.0, nan_d, std::numeric_limits<double>::infinity()}) {
    REQUIRE_THROWS_AS(
        cvk::matrix_nms(boxes, scores,
                        {.decay = cvk::matrix_nms_decay::gaussian, .gaussian_sigma = sigma}),
        cvk::invalid_argument);
  }
  CHECK_NOTHROW(cvk::matrix_nms(boxes, scores, {.gaussian_sigma = 0.0}));  // linear ignores it
  REQUIRE_THROWS_AS(
      cvk::batched_matrix_nms(boxes, scores, std::vector<int>{1, 2}, {.max_output = -2}),
      cvk::invalid_argument);
  try {
    (void)cvk::matrix_nms(boxes, three);
    FAIL("no exception");
  } catch (const cvk::shape_error& e) {
    CHECK(std::string(e.what()) == "matrix_nms: scores must have 2 elements (one per box), got 3");
  }
  try {
    (void)cvk::batched_matrix_nms(boxes, scores, classes);
    FAIL("no exception");
  } catch (const cvk::shape_error& e) {
    CHECK(std::string(e.what()) ==
          "batched_matrix_nms: classes must have 2 elements (one per box), got 1");
  }
  try {
    (void)cvk::matrix_nms(boxes, scores, {.top_k = -1});
    FAIL("no exception");
  } catch (const cvk::invalid_argument& e) {
    CHECK(std::string(e.what()) == "matrix_nms: top_k must be >= 0, got -1");
  }
  try {
    (void)cvk::matrix_nms(boxes, scores,
                          {.decay = cvk::matrix_nms_decay::gaussian, .gaussian_sigma = 0.0});
    FAIL("no exception");
  } catch (const cvk::invalid_argument& e) {
    CHECK(std::string(e.what()) == "matrix_nms: gaussian_sigma must be a finite number > 0, got 0");
  }
}

TEST_CASE("fast_nms: errors name the function and the argument", "[fast_nms]") {
  const boxes_t<double> boxes = {{0, 0, 1, 1}, {0, 0, 2, 2}};
  const std::vector<double> scores = {0.5, 0.4};
  REQUIRE_THROWS_AS(cvk::fast_nms(boxes, std::vector<double>{0.5}, 0.5), cvk::shape_error);
  REQUIRE_THROWS_AS(cvk::fast_nms(boxes, scores, nan_d), cvk::invalid_argument);
  REQUIRE_THROWS_AS(cvk::fast_nms(boxes, scores, 0.5, {.score_threshold = nan_d}),
                    cvk::invalid_argument);
  REQUIRE_THROWS_AS(cvk::fast_nms(boxes, scores, 0.5, {.top_k = -1}), cvk::invalid_argument);
  REQUIRE_THROWS_AS(cvk::fast_nms(boxes, scores, 0.5, {.max_output = -3}), cvk::invalid_argument);
  try {
    (void)cvk::fast_nms(boxes, scores, nan_d);
    FAIL("no exception");
  } catch (const cvk::invalid_argument& e) {
    CHECK(std::string(e.what()) == "fast_nms: iou_threshold must be a number, got nan");
  }
}

TEST_CASE("cluster_nms: errors name the function and the argument", "[cluster_nms]") {
  const boxes_t<double> boxes = {{0, 0, 1, 1}, {0, 0, 2, 2}};
  const std::vector<double> scores = {0.5, 0.4};
  using cvk::cluster_nms_options;
  REQUIRE_THROWS_AS(cvk::cluster_nms(boxes, std::vector<double>{0.5, 0.4, 0.3}, 0.5),
                    cvk::shape_error);
  REQUIRE_THROWS_AS(cvk::cluster_nms(boxes, scores, nan_d), cvk::invalid_argument);
  REQUIRE_THROWS_AS(cvk::cluster_nms(boxes, scores, 0.5, {.score_threshold = nan_d}),
                    cvk::invalid_argument);
  REQUIRE_THROWS_AS(cvk::cluster_nms(boxes, scores, 0.5, {.top_k = -1}), cvk::invalid_argument);
  REQUIRE_THROWS_AS(cvk::cluster_nms(boxes, scores, 0.5, {.max_output = -1}),
                    cvk::invalid_argument);
  const auto diou = cvk::cluster_criterion::diou;
  const auto spm = cvk::cluster_penalty::score;
  const auto dist = cvk::cluster_penalty::score_distance;
  REQUIRE_THROWS_AS(cvk::cluster_nms(boxes, scores, 0.5, {.criterion = diou, .diou_beta = -1}),
                    cvk::invalid_argument);
  REQUIRE_THROWS_AS(cvk::cluster_nms(boxes, scores, 0.5, {.criterion = diou, .penalty = spm}),
                    cvk::invalid_argument);
  REQUIRE_THROWS_AS(cvk::cluster_nms(boxes, scores, 0.5, {.penalty = spm, .penalty_sigma = 0}),
                    cvk::invalid_argument);
  REQUIRE_THROWS_AS(
      cvk::cluster_nms(boxes, scores, 0.5, {.penalty = spm, .penalty_min_score = nan_d}),
      cvk::invalid_argument);
  REQUIRE_THROWS_AS(cvk::cluster_nms(boxes, scores, 0.5, {.penalty = dist, .distance_beta = nan_d}),
                    cvk::invalid_argument);
  REQUIRE_THROWS_AS(
      cvk::cluster_nms(boxes, scores, 0.5, {.weighted = true, .merge_threshold = -0.1}),
      cvk::invalid_argument);
  CHECK_NOTHROW(cvk::cluster_nms(boxes, scores, 0.5, {.penalty_sigma = 0}));  // unused: no check
  try {
    (void)cvk::cluster_nms(boxes, scores, 0.5, {.criterion = diou, .penalty = spm});
    FAIL("no exception");
  } catch (const cvk::invalid_argument& e) {
    CHECK(std::string(e.what()).rfind("cluster_nms: a score penalty needs criterion iou", 0) == 0);
  }
  try {
    (void)cvk::cluster_nms(boxes, scores, 0.5, {.weighted = true, .merge_threshold = -0.5});
    FAIL("no exception");
  } catch (const cvk::invalid_argument& e) {
    CHECK(std::string(e.what()) == "cluster_nms: merge_threshold must be a number >= 0, got -0.5");
  }
}

TEST_CASE(
    "cluster_nms: weighted merge with zero or infinite scores returns finite boxes (issue 9 #6)",
    "[cluster_nms][regression]") {
  const cvk::cluster_nms_options weighted{.weighted = true};
  const auto expect_row = [](const auto& r, index_t k, const std::array<double, 4>& want) {
    for (index_t q = 0; q < 4; ++q) CHECK(r.boxes(k, q) == want[static_cast<std::size_t>(q)]);
  };
  // Isolated kept boxes with score 0, +inf and -inf: box·s/s was NaN; now the box as given.
  const boxes_t<double> apart = {{0, 0, 10, 10}, {20, 0, 30, 10}, {40, 0, 50, 10}, {60, 0, 70, 10}};
  const double inf = std::numeric_limits<double>::infinity();
  const std::vector<double> odd_scores = {inf, 0.5, 0.0, -inf};
  const auto r = cvk::cluster_nms(apart, odd_scores, 0.5, weighted);
  REQUIRE(to_vector(r.indices) == std::vector<index_t>{0, 1, 2, 3});
  for (index_t k = 0; k < 4; ++k) expect_row(r, k, apart[static_cast<std::size_t>(r.indices(k))]);
  // every score 0, merged pairs included: Σ w = 0, each kept box unmerged
  const boxes_t<double> pairs = {{0, 0, 10, 10}, {1, 0, 11, 10}, {40, 0, 50, 10}, {41, 0, 51, 10}};
  const std::vector<double> zeros(4, 0.0);
  const auto z = cvk::cluster_nms(pairs, zeros, 0.5, weighted);
  REQUIRE(to_vector(z.indices) == std::vector<index_t>{0, 2});
  expect_row(z, 0, pairs[0]);
  expect_row(z, 1, pairs[2]);
  const boxes_t<double> pair = {{0, 0, 10, 10}, {1, 0, 11, 10}};
  // an infinite-scored neighbour makes Σ w infinite: the kept box stays as given
  const auto inf_nb = cvk::cluster_nms(pair, std::vector<double>{inf, inf}, 0.5, weighted);
  REQUIRE(inf_nb.indices.size() == 1);
  expect_row(inf_nb, 0, pair[0]);
  // float: the same
  const boxes_t<float> apart_f = {{0, 0, 10, 10}, {20, 0, 30, 10}};
  const std::vector<float> zero_f = {0.0f, 0.0f};
  const auto f = cvk::cluster_nms(apart_f, zero_f, 0.5, weighted);
  REQUIRE(f.indices.size() == 2);
  for (index_t k = 0; k < 2; ++k) {
    for (index_t q = 0; q < 4; ++q) {
      CHECK(f.boxes(k, q) ==
            apart_f[static_cast<std::size_t>(f.indices(k))][static_cast<std::size_t>(q)]);
    }
  }
}

TEST_CASE(
    "matrix family: a box_format outside the enum and 2^40 broadcast boxes are cvk errors "
    "(issue 9 #8)",
    "[matrix_nms][fast_nms][cluster_nms][regression]") {
  const boxes_t<float> boxes = {{0, 0, 1, 1}};
  const std::vector<float> scores = {0.5f};
  const auto bad = static_cast<cvk::box_format>(4);
  const std::string message =
      ": options.format must be xyxy, xywh, cxcywh or yxyx, got box_format(4)";
  CHECK_THROWS_MATCHES(cvk::matrix_nms(boxes, scores, {.format = bad}), cvk::invalid_argument,
                       Catch::Message("matrix_nms" + message));
  CHECK_THROWS_MATCHES(cvk::fast_nms(boxes, scores, 0.5, {.format = bad}), cvk::invalid_argument,
                       Catch::Message("fast_nms" + message));
  CHECK_THROWS_MATCHES(cvk::cluster_nms(boxes, scores, 0.5, {.format = bad}), cvk::invalid_argument,
                       Catch::Message("cluster_nms" + message));
  // one box and one score broadcast to 2^40 rows (stride 0): the old code ended in bad_alloc
  const index_t n = index_t{1} << 40;
  const auto many_boxes = cvk::view(boxes[0].data(), {n, index_t{4}}, {index_t{0}, index_t{1}});
  const auto many_scores = cvk::view(scores.data(), {n}, {index_t{0}});
  const std::string too_big =
      ": boxes (1099511627776×4) needs 1099511627776 elements of 8 bytes, more than can be "
      "allocated";
  CHECK_THROWS_MATCHES(cvk::fast_nms(many_boxes, many_scores, 0.5), cvk::out_of_range,
                       Catch::Message("fast_nms" + too_big));
  CHECK_THROWS_MATCHES(cvk::cluster_nms(many_boxes, many_scores, 0.5), cvk::out_of_range,
                       Catch::Message("cluster_nms" + too_big));
  CHECK_THROWS_MATCHES(cvk::matrix_nms(many_boxes, many_scores), cvk::out_of_range,
                       Catch::Message("matrix_nms" + too_big));
}

TEST_CASE("errors table: matrix_nms, batched_matrix_nms, fast_nms, cluster_nms (docs/errors.md)",
          "[matrix_nms][errors]") {
  const std::vector<float> buffer(8, 1.0F);
  const auto rank3 = cvk_test::rank3_view(buffer);
  const std::vector<std::array<float, 4>> two = {{0, 0, 10, 10}, {20, 20, 30, 30}};
  const std::vector<float> scores = {0.9F, 0.8F};
  const std::vector<int> classes = {0, 1};
  CHECK_THROWS_MATCHES(cvk::matrix_nms(rank3, scores), cvk::shape_error,
                       Catch::Message("matrix_nms: boxes must have rank 2, got rank 3 (2×2×2)"));
  const std::vector<int> int_buffer(8, 0);
  CHECK_THROWS_AS(cvk::batched_matrix_nms(two, scores, cvk_test::rank3_view(int_buffer)),
                  cvk::shape_error);
  CHECK_THROWS_AS(cvk::fast_nms(two, rank3, 0.5), cvk::shape_error);
  CHECK_THROWS_AS(cvk::cluster_nms(cvk::view(buffer.data(), {-1, 4}), scores, 0.5),
                  cvk::shape_error);
  CHECK_THROWS_AS(cvk::batched_matrix_nms(two, scores, std::vector<int>{0}), cvk::shape_error);
  CHECK_THROWS_AS(
      cvk::batched_matrix_nms(two, scores, classes, {.format = static_cast<cvk::box_format>(8)}),
      cvk::invalid_argument);
  // empty input: empty results
  const std::vector<std::array<float, 4>> none;
  const std::vector<float> no_scores;
  CHECK(cvk::fast_nms(none, no_scores, 0.5).size() == 0);
  CHECK(cvk::cluster_nms(none, no_scores, 0.5).indices.size() == 0);
  CHECK(cvk::batched_matrix_nms(none, no_scores, std::vector<int>{}).indices.size() == 0);
  // 2^40 broadcast boxes
  const std::array<float, 4> row{0, 0, 1, 1};
  const float score = 0.5F;
  const int label = 0;
  CHECK_THROWS_AS(
      cvk::batched_matrix_nms(cvk_test::broadcast_rows(row.data(), cvk_test::huge_rows, 4),
                              cvk_test::broadcast_values(&score, cvk_test::huge_rows),
                              cvk_test::broadcast_values(&label, cvk_test::huge_rows)),
      cvk::out_of_range);
}
