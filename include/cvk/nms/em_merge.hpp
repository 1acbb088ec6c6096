// cvk — computer-vision kernels, header-only C++20.
// em_merge: the EM-Merger of Goldman et al., "Precise Detection in Densely Packed Scenes"
// (CVPR 2019, SKU-110K; reference EmMerger.py / CollapsingMoG.py in eg4000/SKU110K_CVPR19),
// written from the paper's and the reference's semantics: detections become 2-D Gaussians, a
// heat map of them splits the scene into regions, each region's mixture is collapsed to the
// estimated number of objects (agglomerative initialisation, then EM minimising KL), and each
// collapsed component keeps its best original detection. Deterministic, no time-outs.
// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <limits>
#include <numeric>
#include <queue>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "../box/format.hpp"
#include "../core/as_view.hpp"
#include "../core/config.hpp"
#include "../core/errors.hpp"
#include "../core/tensor.hpp"
#include "../detail/checks.hpp"
#include "detail/em_merge.hpp"
#include "nms.hpp"
#include "result.hpp"

CVK_BEGIN_NAMESPACE

/// Options of em_merge. Defaults are the reference's (EmMerger.py, predict.py) where it has one.
struct em_merge_options {
  /// Keep only detections with score > score_threshold (and score > 0: scores are mixture
  /// weights). Reference: predict.py's score_threshold = 0.05.
  double score_threshold = 0.05;
  /// Each detection's Gaussian comes from its box shrunk by this factor about its centre:
  /// σx = box_size_factor·w/2, σy = box_size_factor·h/2 (reference Params.box_size_factor 0.5).
  /// In (0, 1].
  double box_size_factor = 0.5;
  /// A heat-map cell belongs to a region when its heat is > heat_threshold · (maximum heat).
  /// The reference normalises the map to 0–255, rounds to uint8 and keeps values > 4, i.e.
  /// >= 4.5/255 before rounding. In [0, 1).
  double heat_threshold = 4.5 / 255.0;
  /// Heat-map resolution: cells per side of the median shrunk box (the smaller of the median
  /// shrunk width and height), so the regions do not depend on the image's pixel size. >= 1.
  index_t grid_resolution = 8;
  /// Upper bound on the heat-map size: the cell grows until the grid has at most this many
  /// cells and the shrunk boxes cover at most 4× this many cells in total. >= 1.
  index_t max_grid_cells = index_t{1} << 21;
  /// A region whose estimated object count k exceeds this is resolved by greedy NMS at
  /// nms_threshold instead of EM (the reference caps k at 100 and falls back to NMS when EM
  /// times out). >= 1.
  index_t max_components = 100;
  /// A region with more detections than this is resolved by greedy NMS too (bounds the cost of
  /// the agglomerative initialisation). >= 1.
  index_t max_region_detections = 10'000;
  /// EM iterations at most (reference max_iter = 20). >= 0.
  int max_iterations = 20;
  /// EM stops when the KL objective decreases by <= tolerance (reference epsilon = 1e-10). >= 0.
  double tolerance = 1e-10;
  /// Redundant components: when one collapsed component's mean lies inside the other's ellipse
  /// holding this probability mass (χ² with 2 degrees of freedom, reference ellipsoid_thresh
  /// 0.5), the one with less heat at its mean is dropped. 0 keeps every component. In [0, 1).
  double redundancy_probability = 0.5;
  /// Candidate box of a component: mean ± candidate_sigmas·σ (reference: 2). A detection joins
  /// the component nearest in KL only when its centre lies in that box. > 0.
  double candidate_sigmas = 2.0;
  /// With soft_iou given, a detection's final score is (1 - w)·score + w·soft_iou (reference:
  /// 0.5·confidence + 0.5·hard_score). In [0, 1].
  double soft_iou_weight = 0.5;
  /// IoU threshold of the final greedy NMS over the chosen detections (cvk::nms, IoU > t) and of
  /// the per-region fallback (reference: 0.3, as intersection over the smaller area).
  double nms_threshold = 0.3;
  /// Column order of the boxes.
  box_format format = box_format::xyxy;
};

/// What em_merge returns: K chosen original detections, K <= N, by descending final score
/// (equal scores: lower index first).
/// (scored_boxes: K indices into the input, the K×4 chosen rows as given in options.format, the
/// K final scores — score, or the soft-IoU blend.)
template <class R>
using em_merge_result = scored_boxes<R>;

namespace detail {

/// Checks em_merge's options.
inline void check_em_merge_options(const em_merge_options& o, const char* fn) {
  const auto fail = [fn](const char* what, const std::string& value) {
    CVK_THROW(invalid_argument, std::string(fn) + ": " + what + ", got " + value);
  };
  const auto real = [&](bool ok, const char* what, double value) {
    if (!ok) fail(what, detail::number_string(value));
  };
  const auto integer = [&](bool ok, const char* what, long long value) {
    if (!ok) fail(what, std::to_string(value));
  };
  check_format(o.format, fn, "options.format");
  real(!std::isnan(o.score_threshold), "score_threshold must be a number", o.score_threshold);
  real(o.box_size_factor > 0 && o.box_size_factor <= 1, "box_size_factor must be in (0, 1]",
       o.box_size_factor);
  real(o.heat_threshold >= 0 && o.heat_threshold < 1, "heat_threshold must be in [0, 1)",
       o.heat_threshold);
  integer(o.grid_resolution >= 1, "grid_resolution must be >= 1", o.grid_resolution);
  integer(o.max_grid_cells >= 1, "max_grid_cells must be >= 1", o.max_grid_cells);
  integer(o.max_components >= 1, "max_components must be >= 1", o.max_components);
  integer(o.max_region_detections >= 1, "max_region_detections must be >= 1",
          o.max_region_detections);
  integer(o.max_iterations >= 0, "max_iterations must be >= 0", o.max_iterations);
  real(o.tolerance >= 0, "tolerance must be >= 0", o.tolerance);
  real(o.redundancy_probability >= 0 && o.redundancy_probability < 1,
       "redundancy_probability must be in [0, 1)", o.redundancy_probability);
  real(o.candidate_sigmas > 0 && !std::isinf(o.candidate_sigmas),
       "candidate_sigmas must be a positive number", o.candidate_sigmas);
  real(o.soft_iou_weight >= 0 && o.soft_iou_weight <= 1, "soft_iou_weight must be in [0, 1]",
       o.soft_iou_weight);
  real(!std::isnan(o.nms_threshold), "nms_threshold must be a number", o.nms_threshold);
}

/// Shared body of both em_merge overloads; `soft` is null without soft-IoU scores.
template <class BoxView, class ScoreView, class SoftView>
auto em_merge_impl(const BoxView& b, const ScoreView& s, const SoftView* soft,
                   const em_merge_options& options, const char* fn) {
  using R = real_t<typename BoxView::value_type>;
  expect_shape(b, {any_extent, 4}, fn, "boxes", "N×4");
  const index_t n = b.extent(0);
  if (s.extent(0) != n) {
    CVK_THROW(shape_error, std::string(fn) + ": scores must have " + std::to_string(n) +
                               " elements (one per box), got " + std::to_string(s.extent(0)));
  }
  if (soft != nullptr && soft->extent(0) != n) {
    CVK_THROW(shape_error, std::string(fn) + ": soft_iou must have " + std::to_string(n) +
                               " elements (one per box), got " + std::to_string(soft->extent(0)));
  }
  check_em_merge_options(options, fn);

  std::vector<em_detection<R>> dets;
  checked_allocation<em_detection<R>>(n, fn, "boxes", b,
                                      [&] { dets.reserve(static_cast<std::size_t>(n)); });
  for (index_t i = 0; i < n; ++i) {
    const double score = static_cast<double>(s(i));
    if (!(score > options.score_threshold) || !(score > 0) || !std::isfinite(score)) continue;
    double final_score = score;
    if (soft != nullptr) {
      const double q = static_cast<double>((*soft)(i));
      if (!std::isfinite(q)) continue;
      final_score = (1.0 - options.soft_iou_weight) * score + options.soft_iou_weight * q;
    }
    const std::array<R, 4> c = to_xyxy(load_box<R>(b, i), options.format, box_convention{});
    const double x1 = static_cast<double>(c[0]);
    const double y1 = static_cast<double>(c[1]);
    const double x2 = static_cast<double>(c[2]);
    const double y2 = static_cast<double>(c[3]);
    const double half_w = 0.5 * options.box_size_factor * (x2 - x1);
    const double half_h = 0.5 * options.box_size_factor * (y2 - y1);
    const double var_x = half_w * half_w;
    const double var_y = half_h * half_h;
    if (!(var_x > 0) || !(var_y > 0) || !std::isfinite(var_x) || !std::isfinite(var_y) ||
        !(x2 > x1) || !(y2 > y1) || !std::isfinite(x1 + y1 + x2 + y2)) {
      continue;
    }
    dets.push_back({i, c, score, final_score, 0.5 * (x1 + x2), 0.5 * (y1 + y2), half_w, half_h});
  }
  // Canonical order: the result does not depend on the input order.
  std::sort(dets.begin(), dets.end(), [](const em_detection<R>& a, const em_detection<R>& d) {
    if (a.final_score != d.final_score) return a.final_score > d.final_score;
    if (a.score != d.score) return a.score > d.score;
    for (std::size_t k = 0; k < 4; ++k) {
      if (a.xyxy[k] != d.xyxy[k]) return a.xyxy[k] < d.xyxy[k];
    }
    return a.index < d.index;
  });
  std::vector<std::size_t> chosen = em_merge_detections(dets, options);
  std::stable_sort(chosen.begin(), chosen.end(), [&](std::size_t a, std::size_t d) {
    if (dets[a].final_score != dets[d].final_score) {
      return dets[a].final_score > dets[d].final_score;
    }
    return dets[a].index < dets[d].index;
  });
  const auto k = static_cast<index_t>(chosen.size());
  em_merge_result<R> result{tensor<index_t, 1>(k), tensor<R, 2>(k, index_t{4}), tensor<R, 1>(k)};
  for (index_t r = 0; r < k; ++r) {
    const auto& d = dets[chosen[static_cast<std::size_t>(r)]];
    result.indices(r) = d.index;
    const std::array<R, 4> row = load_box<R>(b, d.index);
    for (index_t c = 0; c < 4; ++c) result.boxes(r, c) = row[static_cast<std::size_t>(c)];
    result.scores(r) = static_cast<R>(d.final_score);
  }
  return result;
}

}  // namespace detail

/// EM-Merger (Goldman et al., CVPR 2019): one detection per estimated object in a dense scene.
///
///   boxes    N×4 in options.format (xyxy by default), any arithmetic type, any strides
///   scores   N confidences, any arithmetic type, any strides
///   result   indices (K), boxes (K×4, the chosen rows as given) and final scores (K) of the
///            chosen detections, K <= N, by descending final score (equal: lower index first);
///            R = the box type, double for integer boxes
///
/// 1. Detections with score <= score_threshold, score <= 0, a non-finite score or coordinate,
///    or an empty box are dropped.
/// 2. Each detection is a Gaussian: mean = box centre, σ = box_size_factor·(w, h)/2, weight =
///    score. Their heat map (sampled on a grid of grid_resolution cells per median shrunk box)
///    is split into 8-connected regions of heat > heat_threshold·max; a detection belongs to
///    the region holding its centre (none: dropped).
/// 3. Per region of n detections: k = round(region area / median shrunk-box area), at least 1.
///    n <= k: every detection stays. k > max_components or n > max_region_detections: greedy
///    NMS at nms_threshold. Otherwise the n-Gaussian mixture (weights normalised) is collapsed
///    to k Gaussians: agglomerative initialisation (merge the closest means, moment-matched),
///    then EM minimising Σ_t α_t min_j KL(f_t || g_j) (max_iterations, tolerance); components
///    whose mean lies in another's redundancy_probability ellipse are dropped (less heat goes).
///    Each detection joins its least-KL component when its centre lies in the component's box
///    mean ± candidate_sigmas·σ; each component keeps its member of highest final score.
/// 4. The kept detections go through greedy NMS (cvk::nms, IoU > nms_threshold) by final score.
///
/// The result does not depend on the input order (detections are processed in a canonical
/// order: final score, score, corners, index), nor on a uniform scaling of the coordinates.
/// The defaults suit detectors that give hundreds of candidates per object (the reference's
/// RetinaNet); with tens, single stray candidates bridge neighbouring objects at 4.5/255 of the
/// peak heat, and a heat_threshold near 0.1 keeps the regions apart.
/// Throws cvk::shape_error when boxes is not N×4 or scores has not N elements, and
/// cvk::invalid_argument for an option outside its documented domain. Time O(N log N + grid
/// cells + Σ_regions n·(max_iterations·k + log n)); the agglomerative step is O(n²) at worst.
template <tensor_of_rank<2> Boxes, tensor_of_rank<1> Scores>
[[nodiscard]] em_merge_result<real_t<tensor_value_t<const Boxes&>>> em_merge(
    const Boxes& boxes, const Scores& scores, const em_merge_options& options = {}) {
  constexpr const char* fn = "em_merge";
  const auto b = detail::checked_view<2>(boxes, fn, "boxes");
  const auto s = detail::checked_view<1>(scores, fn, "scores");
  return detail::em_merge_impl(b, s, static_cast<const decltype(s)*>(nullptr), options, fn);
}

/// EM-Merger with the predicted-IoU ("Soft-IoU") score of each detection: as above, but a
/// detection's final score — which picks the detection kept per component, ranks the NMS steps
/// and is returned — is (1 - soft_iou_weight)·score + soft_iou_weight·soft_iou
/// (0.5·confidence + 0.5·Soft-IoU by default). Detections with a non-finite soft_iou are
/// dropped; the Gaussians' weights stay the scores.
///
///   soft_iou  N, any arithmetic type, any strides
///
/// Throws as above, and cvk::shape_error when soft_iou has not N elements.
template <tensor_of_rank<2> Boxes, tensor_of_rank<1> Scores, tensor_of_rank<1> SoftIou>
[[nodiscard]] em_merge_result<real_t<tensor_value_t<const Boxes&>>> em_merge(
    const Boxes& boxes, const Scores& scores, const SoftIou& soft_iou,
    const em_merge_options& options = {}) {
  constexpr const char* fn = "em_merge";
  const auto b = detail::checked_view<2>(boxes, fn, "boxes");
  const auto s = detail::checked_view<1>(scores, fn, "scores");
  const auto q = detail::checked_view<1>(soft_iou, fn, "soft_iou");
  return detail::em_merge_impl(b, s, &q, options, fn);
}

CVK_END_NAMESPACE
