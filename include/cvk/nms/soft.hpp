// cvk — computer-vision kernels, header-only C++20.
// Soft non-maximum suppression: soft_nms with mmcv's soft_nms (default), OpenCV's softNMSBoxes
// and TensorFlow's NonMaxSuppressionV5 conventions. The peers rescan every remaining box for the
// maximum and rescore every remaining box after each selection (O(N²)); cvk keeps the scores in
// a tournament tree and rescores only the boxes that overlap the selected one (a uniform grid),
// with the same results: same selections, bit-identical scores.
// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <numeric>
#include <optional>
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
#include "detail/greedy.hpp"
#include "detail/output.hpp"
#include "detail/rank.hpp"
#include "detail/soft.hpp"
#include "detail/tournament.hpp"
#include "result.hpp"

CVK_BEGIN_NAMESPACE

/// How the score of a box decays with its IoU `o` with the selected box (t = iou_threshold).
enum class soft_nms_method {
  linear,  ///< mmcv: ×(1 - o) if o >= t; OpenCV: ×(1 - o) if o > t
  gaussian,  ///< mmcv, OpenCV: ×exp(-o²/sigma); TensorFlow: ×exp(-0.5·o²/sigma), removed if o > t
  naive,     ///< mmcv: ×0 if o >= t (hard NMS through the scores); TensorFlow: removed if o > t
};

/// Whose soft-NMS loop soft_nms reproduces (see soft_nms and docs/nms.md).
enum class soft_nms_convention {
  mmcv,        ///< mmcv.ops.soft_nms (CPU kernel softnms_cpu), the default
  opencv,      ///< cv::dnn::softNMSBoxes
  tensorflow,  ///< tf.image.non_max_suppression_with_scores / NonMaxSuppressionV5, OpenVINO NMS-5
};

/// Name of a method, "linear".
[[nodiscard]] constexpr const char* to_string(soft_nms_method method) noexcept {
  switch (method) {
    case soft_nms_method::linear:
      return "linear";
    case soft_nms_method::gaussian:
      return "gaussian";
    case soft_nms_method::naive:
      return "naive";
  }
  return "unknown";
}

/// Name of a convention, "mmcv".
[[nodiscard]] constexpr const char* to_string(soft_nms_convention convention) noexcept {
  switch (convention) {
    case soft_nms_convention::mmcv:
      return "mmcv";
    case soft_nms_convention::opencv:
      return "opencv";
    case soft_nms_convention::tensorflow:
      return "tensorflow";
  }
  return "unknown";
}

/// Options of soft_nms. The defaults give mmcv.ops.soft_nms(boxes, scores, iou_threshold)
/// (method 'linear', sigma 0.5, min_score 1e-3).
struct soft_nms_options {
  soft_nms_method method = soft_nms_method::linear;
  /// Gaussian parameter (> 0 for the gaussian method); rounded to the box computation type.
  double sigma = 0.5;
  /// Score floor: mmcv and OpenCV drop a box whose score is < min_score, TensorFlow keeps a box
  /// only while its score is > min_score (its score_threshold). Rounded to the score type.
  double min_score = 1e-3;
  /// Return at most this many boxes (the loop stops there; OpenCV's top_k, TensorFlow's
  /// max_output_size). Unset: no limit.
  std::optional<index_t> max_output{};
  /// Column order of the boxes.
  box_format format = box_format::xyxy;
  soft_nms_convention convention = soft_nms_convention::mmcv;
  /// false (cvk's NaN policy, as greedy nms and torchvision): a pair whose IoU is NaN — a box
  /// with a NaN coordinate, or two boxes with a zero union such as two (0, 0, 0, 0) padding
  /// boxes — neither decays nor removes a box. true: the peers' arithmetic, where such a pair
  /// turns the decayed score into NaN (mmcv, OpenCV gaussian; one NaN box then spreads NaN
  /// scores, and OpenCV's output is cut short), at O(N) per selection for each NaN box.
  bool propagate_nan = false;
};

/// The result of soft_nms: the selected boxes in selection order and their scores at the moment
/// they were selected (the decayed scores). S is the score type: float or double, double for
/// integer scores.
template <class S>
using soft_nms_result = scored_indices<S>;

CVK_KERNEL_BEGIN
namespace detail {

/// The rule of a convention and method with the parameters in R.
template <soft_nms_convention C, soft_nms_method M, class R>
soft_rule<C, M, R> make_soft_rule(double iou_threshold, double sigma) noexcept {
  soft_rule<C, M, R> rule;
  rule.threshold = round_to_nearest<R>(iou_threshold);
  rule.sigma = round_to_nearest<R>(sigma);
  rule.scale = R(-0.5) / rule.sigma;
  return rule;
}

/// Calls body(rule) with the soft_rule of the options (a compile-time convention and method).
template <class R, class Body>
void dispatch_soft_rule(const soft_nms_options& options, double iou_threshold, Body&& body) {
  using C = soft_nms_convention;
  using M = soft_nms_method;
  const double t = iou_threshold;
  const double sigma = options.sigma;
  switch (options.convention) {
    case C::mmcv:
      switch (options.method) {
        case M::linear:
          return body(make_soft_rule<C::mmcv, M::linear, R>(t, sigma));
        case M::gaussian:
          return body(make_soft_rule<C::mmcv, M::gaussian, R>(t, sigma));
        case M::naive:
          return body(make_soft_rule<C::mmcv, M::naive, R>(t, sigma));
      }
      break;
    case C::opencv:
      if (options.method == M::gaussian) {
        return body(make_soft_rule<C::opencv, M::gaussian, R>(t, sigma));
      }
      return body(make_soft_rule<C::opencv, M::linear, R>(t, sigma));
    case C::tensorflow:
      if (options.method == M::gaussian) {
        return body(make_soft_rule<C::tensorflow, M::gaussian, R>(t, sigma));
      }
      return body(make_soft_rule<C::tensorflow, M::naive, R>(t, sigma));
  }
}

}  // namespace detail
CVK_KERNEL_END

namespace detail {

/// Checks the arguments of soft_nms (sigma as used: rounded to the box computation type R);
/// returns N.
template <class R, class BoxView, class ScoreView>
index_t check_soft_nms_arguments(const BoxView& boxes, const ScoreView& scores,
                                 double iou_threshold, const soft_nms_options& options) {
  constexpr const char* fn = "soft_nms";
  expect_shape(boxes, {any_extent, 4}, fn, "boxes", "N×4");
  const index_t n = boxes.extent(0);
  if (scores.extent(0) != n) {
    CVK_THROW(shape_error, std::string(fn) + ": scores must have " + std::to_string(n) +
                               " elements (one per box), got " + std::to_string(scores.extent(0)));
  }
  const auto number = [](double value, const char* name) {
    if (std::isnan(value)) {
      CVK_THROW(invalid_argument, std::string(fn) + ": " + name + " must be a number, got nan");
    }
  };
  check_allocation_size(n, sizeof(nms_box<R>), fn, "boxes", boxes);
  check_format(options.format, fn, "options.format");
  number(iou_threshold, "iou_threshold");
  number(options.sigma, "sigma");
  number(options.min_score, "min_score");
  if (options.method == soft_nms_method::gaussian && !(options.sigma > 0)) {
    CVK_THROW(invalid_argument, std::string(fn) +
                                    ": sigma must be > 0 for the gaussian method, got " +
                                    detail::number_string(options.sigma));
  }
  if (options.method == soft_nms_method::gaussian) {
    // The kernel divides by sigma rounded to R (mmcv, OpenCV) or multiplies by -0.5 / sigma
    // (TensorFlow): a positive double that rounds to 0, or whose reciprocal overflows, in R
    // would turn every decay into NaN. Check the values actually used.
    const R sigma = round_to_nearest<R>(options.sigma);
    const R scale = R(-0.5) / sigma;
    if (!(sigma > R(0)) || !std::isfinite(scale)) {
      CVK_THROW(invalid_argument,
                std::string(fn) + ": sigma must be > 0 for the gaussian method in the box " +
                    "computation type (" +
                    (std::is_same_v<R, float>    ? "float"
                     : std::is_same_v<R, double> ? "double"
                                                 : "long double") +
                    "), got " + detail::number_string(options.sigma) + ", which rounds to " +
                    detail::number_string(static_cast<double>(sigma)) +
                    (sigma > R(0) ? " (-0.5 / sigma overflows)" : ""));
    }
  }
  if (options.max_output && *options.max_output < 0) {
    CVK_THROW(invalid_argument, std::string(fn) + ": max_output must be >= 0, got " +
                                    std::to_string(*options.max_output));
  }
  if (options.convention == soft_nms_convention::opencv &&
      options.method == soft_nms_method::naive) {
    CVK_THROW(invalid_argument, std::string(fn) +
                                    ": the opencv convention has no naive method (softNMSBoxes "
                                    "offers linear and gaussian)");
  }
  if (options.convention == soft_nms_convention::tensorflow &&
      options.method == soft_nms_method::linear) {
    CVK_THROW(invalid_argument, std::string(fn) +
                                    ": the tensorflow convention has no linear method "
                                    "(NonMaxSuppressionV5 offers gaussian, and naive = hard NMS)");
  }
  return n;
}

/// soft_nms on checked views; `grid_from` is the size from which rounds rescore only the
/// overlapping boxes (tests set it to 0 or to "never" to compare both paths).
template <class BoxView, class ScoreView>
auto soft_nms_views(const BoxView& b, const ScoreView& s, double iou_threshold,
                    const soft_nms_options& options, std::size_t grid_from) {
  using R = real_t<typename BoxView::value_type>;
  using S = real_t<typename ScoreView::value_type>;
  static_assert(std::is_same_v<S, float> || std::is_same_v<S, double>,
                "cvk: soft_nms scores must be float, double or an integer type");
  const index_t n = check_soft_nms_arguments<R>(b, s, iou_threshold, options);
  std::vector<nms_box<R>> boxes;
  boxes.reserve(static_cast<std::size_t>(n));
  std::vector<S> scores(static_cast<std::size_t>(n));
  for (index_t i = 0; i < n; ++i) {
    const auto c = to_xyxy(load_box<R>(b, i), options.format, box_convention{});
    boxes.push_back(make_nms_box(c[0], c[1], c[2], c[3]));
    scores[static_cast<std::size_t>(i)] = static_cast<S>(s(i));
  }
  const std::size_t max_keep =
      options.max_output ? static_cast<std::size_t>(*options.max_output) : boxes.size();
  const S min_score = round_to_nearest<S>(options.min_score);
  std::vector<index_t> picked;
  std::vector<S> picked_score;
  const bool use_grid = boxes.size() >= grid_from;
  dispatch_soft_rule<R>(
      options, iou_threshold,
      [&]<soft_nms_convention C, soft_nms_method M>(const soft_rule<C, M, R>& given) {
        soft_rule<C, M, R> rule = given;
        rule.propagate_nan = options.propagate_nan;
        const std::span<const nms_box<R>> view(boxes);
        if (boxes.size() < std::numeric_limits<std::uint32_t>::max()) {
          soft_nms_select<C, std::uint32_t>(view, scores, rule, min_score, max_keep, use_grid,
                                            picked, picked_score);
        } else {
          soft_nms_select<C, std::size_t>(view, scores, rule, min_score, max_keep, use_grid, picked,
                                          picked_score);
        }
      });
  soft_nms_result<S> result{tensor<index_t, 1>(static_cast<index_t>(picked.size())),
                            tensor<S, 1>(static_cast<index_t>(picked.size()))};
  std::copy(picked.begin(), picked.end(), result.indices.begin());
  std::copy(picked_score.begin(), picked_score.end(), result.scores.begin());
  return result;
}

}  // namespace detail

/// Soft non-maximum suppression (Bodla et al. 2017): repeatedly selects the highest scored box
/// and decays the scores of the others by their IoU with it, instead of removing them.
///
///   boxes    N×4 in options.format (xyxy by default), any arithmetic type, any strides
///   scores   N, any arithmetic type, any strides
///   result   .indices: K <= N indices into boxes in selection order;
///            .scores:  their scores when selected (decayed), float or double (double for
///                      integer scores)
///
/// With default options the result equals mmcv.ops.soft_nms(boxes, scores, iou_threshold)
/// (method 'linear', sigma 0.5, min_score 1e-3, offset 0): the same inds in the same order and
/// the same dets scores, bit for bit for float input. options.convention selects whose loop is
/// reproduced:
///   mmcv        linear ×(1 - IoU) if IoU >= t, gaussian ×exp(-IoU²/sigma), naive ×0 if
///               IoU >= t; a box is dropped when its score becomes < min_score (the first
///               selection is never checked); equal scores: the first in mmcv's array, whose
///               order mmcv's swaps permute (reproduced exactly).
///   opencv      cv::dnn::softNMSBoxes: linear ×(1 - IoU) if IoU > t, gaussian
///               ×exp(-IoU²/sigma); stops when the best score is < min_score; equal scores:
///               lower index first. No naive method.
///   tensorflow  NonMaxSuppressionV5 / OpenVINO NMS-5: a box with IoU > t is removed, gaussian
///               ×exp(-0.5·IoU²/sigma) (sigma as TF's soft_nms_sigma), naive = hard NMS; a box
///               stays while its score is > min_score. Equal scores: lower index first. For
///               TF >= 2.5, which ignores iou_threshold in soft mode, pass t = infinity.
/// IoU is computed in the box type as mmcv does (which is torchvision's arithmetic); the
/// threshold and sigma are rounded to the box type, min_score to the score type, as the peers'
/// float parameters. NaN scores: mmcv and OpenCV select a NaN-scored box only when it sits at
/// the first remaining position of their array (reproduced); TensorFlow never selects one.
///
/// Throws cvk::shape_error when boxes is not N×4 or scores has not N elements;
/// cvk::invalid_argument when iou_threshold, sigma or min_score is NaN, sigma <= 0 for the
/// gaussian method (also when a tiny positive sigma rounds to 0 in the box type, or -0.5 /
/// sigma overflows there), max_output is negative, or the convention lacks the method (opencv:
/// naive; tensorflow: linear).
///
/// Complexity: the peers are O(N²) (a scan for the maximum and a rescoring pass per selection).
/// cvk finds the maximum in a tournament tree (O(log N) per score change) and, when the rule
/// leaves non-overlapping boxes unchanged (always, except naive/tensorflow with a threshold <
/// 0), rescores only the boxes that intersect the selected one, found in a uniform grid:
/// O(N log N + P log N) for P overlapping (selected, other) pairs; O(N²) at worst.
template <tensor_of_rank<2> Boxes, tensor_of_rank<1> Scores>
[[nodiscard]] auto soft_nms(const Boxes& boxes, const Scores& scores, double iou_threshold,
                            const soft_nms_options& options = {}) {
  const auto b = detail::checked_view<2>(boxes, "soft_nms", "boxes");
  const auto s = detail::checked_view<1>(scores, "soft_nms", "scores");
  return detail::soft_nms_views(b, s, iou_threshold, options, detail::soft_grid_min_boxes);
}

/// Writes soft_nms's selection into `indices` (cvk::index_t) and `scores` (the value form's score
/// type), each holding at least as many values as are selected (N always suffices); returns the
/// count. Errors as soft_nms, and cvk::shape_error for a buffer too small.
template <tensor_of_rank<2> Boxes, tensor_of_rank<1> Scores, tensor_of_rank<1> Indices,
          tensor_of_rank<1> OutScores>
index_t soft_nms(const Boxes& boxes, const Scores& scores, double iou_threshold,
                 const soft_nms_options& options, Indices&& indices, OutScores&& out_scores) {
  return detail::write_selection(soft_nms(boxes, scores, iou_threshold, options),
                                 std::forward<Indices>(indices),
                                 std::forward<OutScores>(out_scores), "soft_nms");
}

CVK_END_NAMESPACE
