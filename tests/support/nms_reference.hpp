// cvk — computer-vision kernels, header-only C++20.
// Test support: the plain O(N²) references of the greedy NMS operators — torchvision's CPU nms
// kernel (nms, batched_nms) and detectron2's nms_rotated_cpu (nms_rotated, batched_nms_rotated) —
// shared by the NMS test suites and the fuzz targets (tests/fuzz/), so that there is one copy.
// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <limits>
#include <map>
#include <vector>

#include <cvk/box/rotated.hpp>
#include <cvk/core.hpp>
#include <cvk/nms/nms.hpp>
#include <cvk/nms/rotated.hpp>

namespace cvk_test {

using cvk::index_t;
template <class T>
using boxes_t = std::vector<std::array<T, 4>>;
template <class T>
using rboxes_t = std::vector<std::array<T, 5>>;

// ---------------------------------------------------------------------------------------------
// The reference: torchvision's nms_kernel.cpp written plainly, with the score filter, top_k and
// max_output of nms_options added the obvious way. The threshold is compared in double, as
// torchvision does (cvk rounds it into the box type instead; this checks that it is the same).
CVK_KERNEL_BEGIN
/// The candidates of nms_options in rank order: score > score_threshold, score descending (NaN
/// last, equal scores by index), the first top_k.
/// Options: any options struct with score_threshold and top_k (nms_options, nms_rotated_options).
template <class S, class Options = cvk::nms_options>
std::vector<index_t> reference_nms_order(const std::vector<S>& scores,
                                         const Options& options = {}) {
  std::vector<index_t> order;
  for (std::size_t i = 0; i < scores.size(); ++i) {
    const bool passes =
        !options.score_threshold || static_cast<double>(scores[i]) > *options.score_threshold;
    if (passes) order.push_back(static_cast<index_t>(i));
  }
  // descending, NaN last, stable (equal scores keep index order)
  std::stable_sort(order.begin(), order.end(), [&](index_t a, index_t b) {
    const S sa = scores[static_cast<std::size_t>(a)];
    const S sb = scores[static_cast<std::size_t>(b)];
    if (std::isnan(static_cast<double>(sb))) return !std::isnan(static_cast<double>(sa));
    return sa > sb;
  });
  if (options.top_k && static_cast<std::size_t>(*options.top_k) < order.size()) {
    order.resize(static_cast<std::size_t>(*options.top_k));
  }
  return order;
}

/// torchvision's IoU of a kept box and a candidate (xyxy), its operations in its order in T:
/// areas unclamped, intersection sides clamped at 0, inter / ((area_kept + area_cand) - inter).
template <class T>
T reference_iou(const std::array<T, 4>& kept, const std::array<T, 4>& candidate) {
  const T area_kept = (kept[2] - kept[0]) * (kept[3] - kept[1]);
  const T area_candidate = (candidate[2] - candidate[0]) * (candidate[3] - candidate[1]);
  const T xx1 = std::max(kept[0], candidate[0]);
  const T yy1 = std::max(kept[1], candidate[1]);
  const T xx2 = std::min(kept[2], candidate[2]);
  const T yy2 = std::min(kept[3], candidate[3]);
  const T w = std::max(T(0), xx2 - xx1);
  const T h = std::max(T(0), yy2 - yy1);
  const T inter = w * h;
  const T sum = area_kept + area_candidate;
  return inter / (sum - inter);
}

template <class T, class S>
std::vector<index_t> reference_nms(const boxes_t<T>& boxes, const std::vector<S>& scores,
                                   double threshold, const cvk::nms_options& options = {}) {
  const std::vector<index_t> order = reference_nms_order(scores, options);
  const std::size_t n = order.size();
  std::vector<unsigned char> suppressed(n, 0);
  std::vector<index_t> keep;
  for (std::size_t i = 0; i < n; ++i) {
    if (suppressed[i] != 0) continue;
    if (options.max_output && keep.size() == static_cast<std::size_t>(*options.max_output)) break;
    keep.push_back(order[i]);
    for (std::size_t j = i + 1; j < n; ++j) {
      if (suppressed[j] != 0) continue;
      const auto o = static_cast<double>(reference_iou(boxes[static_cast<std::size_t>(order[i])],
                                                       boxes[static_cast<std::size_t>(order[j])]));
      if (options.inclusive ? o >= threshold : o > threshold) suppressed[j] = 1;
    }
  }
  return keep;
}
CVK_KERNEL_END

/// batched_nms by definition: top_k over all boxes, reference_nms per class, merge by score
/// (NaN last, then index), then max_output.
template <class T, class S, class C>
std::vector<index_t> reference_batched_nms(const boxes_t<T>& boxes, const std::vector<S>& scores,
                                           const std::vector<C>& classes, double threshold,
                                           const cvk::nms_options& options = {}) {
  cvk::nms_options ranking = options;
  ranking.max_output.reset();
  // the candidates: reference_nms at a threshold no IoU exceeds ranks and filters only
  cvk::nms_options rank_only = ranking;
  rank_only.inclusive = false;
  const auto candidates =
      reference_nms(boxes, scores, std::numeric_limits<double>::infinity(), rank_only);
  std::map<C, std::vector<std::size_t>> groups;
  for (const index_t i : candidates) {
    groups[classes[static_cast<std::size_t>(i)]].push_back(static_cast<std::size_t>(i));
  }
  std::vector<index_t> kept;
  cvk::nms_options per_class;
  per_class.inclusive = options.inclusive;
  for (const auto& [c, members] : groups) {
    boxes_t<T> b;
    std::vector<S> s;
    for (const std::size_t i : members) {
      b.push_back(boxes[i]);
      s.push_back(scores[i]);
    }
    for (const index_t k : reference_nms(b, s, threshold, per_class)) {
      kept.push_back(static_cast<index_t>(members[static_cast<std::size_t>(k)]));
    }
  }
  std::vector<index_t> rank(scores.size(), 0);
  for (std::size_t r = 0; r < candidates.size(); ++r) {
    rank[static_cast<std::size_t>(candidates[r])] = static_cast<index_t>(r);
  }
  std::sort(kept.begin(), kept.end(), [&](index_t a, index_t b) {
    return rank[static_cast<std::size_t>(a)] < rank[static_cast<std::size_t>(b)];
  });
  if (options.max_output && kept.size() > static_cast<std::size_t>(*options.max_output)) {
    kept.resize(static_cast<std::size_t>(*options.max_output));
  }
  return kept;
}

// ---------------------------------------------------------------------------------------------
// The reference: detectron2's nms_rotated_cpu written plainly over the full IoU matrix of
// cvk::rotated_box_iou, with score_threshold / top_k / max_output added the obvious way and
// the threshold compared in double.

/// The rotated candidates' order: the same ranking as reference_nms_order.
template <class S>
std::vector<index_t> reference_rotated_order(const std::vector<S>& scores,
                                             const cvk::nms_rotated_options& options) {
  return reference_nms_order(scores, options);
}

inline cvk::rotated_options geometry(const cvk::nms_rotated_options& options) {
  cvk::rotated_options g;
  g.unit = options.unit;
  g.direction = options.direction;
  return g;
}

template <class T, class S>
std::vector<index_t> reference_nms_rotated(const rboxes_t<T>& boxes, const std::vector<S>& scores,
                                           double threshold,
                                           const cvk::nms_rotated_options& options = {}) {
  const std::vector<index_t> order = reference_rotated_order(scores, options);
  const auto iou = cvk::rotated_box_iou(boxes, boxes, geometry(options));
  const std::size_t n = order.size();
  std::vector<unsigned char> suppressed(n, 0);
  std::vector<index_t> keep;
  for (std::size_t i = 0; i < n; ++i) {
    if (suppressed[i] != 0) continue;
    if (options.max_output && keep.size() == static_cast<std::size_t>(*options.max_output)) break;
    keep.push_back(order[i]);
    for (std::size_t j = i + 1; j < n; ++j) {
      if (suppressed[j] != 0) continue;
      const auto o = static_cast<double>(iou(order[i], order[j]));
      if (options.inclusive ? o >= threshold : o > threshold) suppressed[j] = 1;
    }
  }
  return keep;
}

/// batched_nms_rotated by definition: top_k over all boxes, reference NMS per class, merge by
/// rank, then max_output.
template <class T, class S, class C>
std::vector<index_t> reference_batched_nms_rotated(const rboxes_t<T>& boxes,
                                                   const std::vector<S>& scores,
                                                   const std::vector<C>& classes, double threshold,
                                                   const cvk::nms_rotated_options& options = {}) {
  const std::vector<index_t> candidates = reference_rotated_order(scores, options);
  std::map<C, std::vector<std::size_t>> groups;
  for (const index_t i : candidates) {
    groups[classes[static_cast<std::size_t>(i)]].push_back(static_cast<std::size_t>(i));
  }
  cvk::nms_rotated_options per_class;
  per_class.inclusive = options.inclusive;
  per_class.unit = options.unit;
  per_class.direction = options.direction;
  std::vector<index_t> kept;
  for (const auto& [c, members] : groups) {
    rboxes_t<T> b;
    std::vector<S> s;
    for (const std::size_t i : members) {
      b.push_back(boxes[i]);
      s.push_back(scores[i]);
    }
    for (const index_t k : reference_nms_rotated(b, s, threshold, per_class)) {
      kept.push_back(static_cast<index_t>(members[static_cast<std::size_t>(k)]));
    }
  }
  std::vector<std::size_t> rank(scores.size(), 0);
  for (std::size_t r = 0; r < candidates.size(); ++r) {
    rank[static_cast<std::size_t>(candidates[r])] = r;
  }
  std::sort(kept.begin(), kept.end(), [&](index_t a, index_t b) {
    return rank[static_cast<std::size_t>(a)] < rank[static_cast<std::size_t>(b)];
  });
  if (options.max_output && kept.size() > static_cast<std::size_t>(*options.max_output)) {
    kept.resize(static_cast<std::size_t>(*options.max_output));
  }
  return kept;
}

}  // namespace cvk_test
