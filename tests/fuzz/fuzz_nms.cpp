// cvk — computer-vision kernels, header-only C++20.
// libFuzzer target: every NMS variant of <cvk/nms.hpp> (nms, batched_nms, soft_nms, matrix_nms,
// batched_matrix_nms, fast_nms, cluster_nms, box_voting, var_voting, em_merge, nms_rotated,
// batched_nms_rotated) on decoded scenes of up to 255 boxes, float or double. Each call is
// checked against the documented contract, not only for crashes: invalid options throw a
// cvk::error and valid ones do not; greedy nms, batched_nms, cluster_nms (hard, IoU) and the
// rotated variants equal the plain O(N²) loops of tests/support/nms_reference.hpp; fast_nms
// equals its definition; indices are unique, in range and in the documented order; scores only
// decay; voted boxes stay inside their voters; em_merge's output survives its own final NMS.
// Input layout: byte 0 picks the operator (low nibble) and the type (bit 4: double); the
// operator's option bytes; then N (one byte), N boxes, N scores and what else the operator
// reads, in the encoding of fuzz_input.hpp.
// SPDX-License-Identifier: MIT
#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <set>
#include <vector>

#include <cvk/core.hpp>
#include <cvk/nms.hpp>

#include "fuzz/fuzz_input.hpp"
#include "support/nms_reference.hpp"

namespace {

using cvk::index_t;
using cvk_fuzz::byte_reader;
template <class T>
using boxes_t = std::vector<std::array<T, 4>>;

std::vector<index_t> to_vector(const cvk::tensor<index_t, 1>& t) {
  return std::vector<index_t>(t.begin(), t.end());
}

/// A box_format from one byte: mostly valid, sometimes a value outside the enum.
cvk::box_format format_of(std::uint8_t byte, bool& valid) {
  const unsigned v = byte % 5U;
  valid = v < 4;
  return static_cast<cvk::box_format>(v < 4 ? v : 4 + byte % 3U);
}

std::optional<double> optional_threshold(byte_reader& in) {
  if (!in.flag()) return std::nullopt;
  return cvk_fuzz::threshold(in);
}
std::optional<index_t> optional_count(byte_reader& in) {
  if (!in.flag()) return std::nullopt;
  return static_cast<index_t>(cvk_fuzz::count(in));
}
bool is_nan(double v) { return std::isnan(v); }
bool negative(const std::optional<index_t>& c) { return c && *c < 0; }
bool nan(const std::optional<double>& t) { return t && std::isnan(*t); }

/// The rows of `boxes` converted from `format` to xyxy exactly (yxyx is a column swap); the
/// formats with arithmetic are not compared against the references.
template <class T>
boxes_t<T> as_xyxy(const boxes_t<T>& boxes, cvk::box_format format) {
  boxes_t<T> out = boxes;
  if (format == cvk::box_format::yxyx) {
    for (auto& b : out) b = {b[1], b[0], b[3], b[2]};
  }
  return out;
}
template <class T>
boxes_t<T> from_xyxy(const boxes_t<T>& boxes, cvk::box_format format) {
  return as_xyxy(boxes, format);  // the swap is its own inverse
}

/// Indices unique and in [0, n).
void check_indices(const std::vector<index_t>& indices, std::size_t n, const char* op) {
  std::vector<unsigned char> seen(n, 0);
  for (const index_t i : indices) {
    CVK_FUZZ_CHECK(i >= 0 && static_cast<std::size_t>(i) < n, op, ": index ", i, " of ", n);
    CVK_FUZZ_CHECK(seen[static_cast<std::size_t>(i)] == 0, op, ": index ", i, " twice");
    seen[static_cast<std::size_t>(i)] = 1;
  }
}

/// Values in descending order with NaN last (equal values in any order).
template <class V>
void check_descending(const std::vector<V>& values, const char* op) {
  for (std::size_t k = 1; k < values.size(); ++k) {
    const auto a = static_cast<double>(values[k - 1]);
    const auto b = static_cast<double>(values[k]);
    const bool ok = is_nan(b) || (!is_nan(a) && a >= b);
    CVK_FUZZ_CHECK(ok, op, ": values out of order at ", k, ": ", a, " then ", b);
  }
}

/// Indices in rank order: score descending, NaN last, equal scores by lower index.
template <class S>
void check_rank_order(const std::vector<index_t>& indices, const std::vector<S>& scores,
                      const char* op) {
  for (std::size_t k = 1; k < indices.size(); ++k) {
    const auto i = static_cast<std::size_t>(indices[k - 1]);
    const auto j = static_cast<std::size_t>(indices[k]);
    const auto a = static_cast<double>(scores[i]);
    const auto b = static_cast<double>(scores[j]);
    const bool ok = is_nan(a) ? (is_nan(b) && i < j) : (is_nan(b) || a > b || (a == b && i < j));
    CVK_FUZZ_CHECK(ok, op, ": rank order broken at ", k, ": box ", i, " (", a, ") before box ", j,
                   " (", b, ")");
  }
}

template <class T>
struct scene {
  boxes_t<T> boxes;
  std::vector<T> scores;
  std::vector<int> classes;
};

template <class T>
scene<T> read_scene(byte_reader& in, bool with_classes) {
  scene<T> s;
  const std::size_t n = in.u8();
  s.boxes = cvk_fuzz::boxes<T>(in, n);
  s.scores = cvk_fuzz::scores<T>(in, n);
  if (with_classes) {
    s.classes.resize(n);
    for (auto& c : s.classes) c = static_cast<int>(in.u8() % 4) - 1;
  }
  return s;
}

// ---------------------------------------------------------------------------------------------
// Greedy nms and batched_nms against the plain loop.

template <class T>
void fuzz_nms(byte_reader& in, bool batched) {
  const double t = cvk_fuzz::threshold(in);
  cvk::nms_options o;
  o.score_threshold = optional_threshold(in);
  o.max_output = optional_count(in);
  o.top_k = optional_count(in);
  const std::uint8_t flags = in.u8();
  o.inclusive = (flags & 1U) != 0;
  o.pixel_inclusive = (flags & 2U) != 0;
  bool format_ok = true;
  o.format = format_of(in.u8(), format_ok);
  // the extras that have no plain reference: DIoU-NMS and the adaptive threshold
  const bool extras = (flags & 4U) != 0;
  if (extras) {
    o.criterion = (flags & 8U) != 0 ? cvk::nms_criterion::diou : cvk::nms_criterion::iou;
    o.diou_beta = cvk_fuzz::threshold(in) * 2;
    o.eta = cvk_fuzz::threshold(in);
  }
  o.threads = 1 + static_cast<int>(in.below(2));
  const scene<T> s = read_scene<T>(in, batched);
  const char* op = batched ? "batched_nms" : "nms";

  const bool valid =
      !is_nan(t) && !nan(o.score_threshold) && !negative(o.max_output) && !negative(o.top_k) &&
      format_ok &&
      (!extras || (o.eta > 0 && o.eta <= 1 && o.diou_beta > 0 && std::isfinite(o.diou_beta)));
  std::vector<index_t> got;
  const bool threw = cvk_fuzz::throws_cvk_error([&] {
    got = batched ? to_vector(cvk::batched_nms(s.boxes, s.scores, s.classes, t, o))
                  : to_vector(cvk::nms(s.boxes, s.scores, t, o));
  });
  CVK_FUZZ_CHECK(threw == !valid, op, ": valid options ", valid, " but threw ", threw);
  if (threw) return;
  check_indices(got, s.boxes.size(), op);
  check_rank_order(got, s.scores, op);
  if (o.max_output) {
    CVK_FUZZ_CHECK(got.size() <= static_cast<std::size_t>(*o.max_output), op, ": ", got.size(),
                   " results, max_output ", *o.max_output);
  }
  for (const index_t i : got) {
    const auto score = static_cast<double>(s.scores[static_cast<std::size_t>(i)]);
    CVK_FUZZ_CHECK(!o.score_threshold || score > *o.score_threshold, op, ": box ", i, " score ",
                   score, " kept at score_threshold ", *o.score_threshold);
  }
  const bool exact_format = o.format == cvk::box_format::xyxy || o.format == cvk::box_format::yxyx;
  if (extras || !exact_format) return;
  // the references take continuous xyxy boxes; pixel_inclusive is documented as the continuous
  // box (x1, y1, x2 + 1, y2 + 1)
  boxes_t<T> corners = as_xyxy(s.boxes, o.format);
  if (o.pixel_inclusive) {
    for (auto& b : corners) b = {b[0], b[1], b[2] + T(1), b[3] + T(1)};
  }
  cvk::nms_options plain;
  plain.score_threshold = o.score_threshold;
  plain.max_output = o.max_output;
  plain.top_k = o.top_k;
  plain.inclusive = o.inclusive;
  const std::vector<index_t> want =
      batched ? cvk_test::reference_batched_nms(corners, s.scores, s.classes, t, plain)
              : cvk_test::reference_nms(corners, s.scores, t, plain);
  CVK_FUZZ_CHECK(got == want, op, ": differs from the plain loop: ", got.size(), " kept, ",
                 want.size(), " by the reference");
}

// ---------------------------------------------------------------------------------------------
// soft_nms: scores only decay (toward 0); the first selection is never decayed; NaN only from
// NaN (the default NaN policy).

template <class T>
void fuzz_soft_nms(byte_reader& in) {
  const double t = cvk_fuzz::threshold(in);
  cvk::soft_nms_options o;
  o.method = static_cast<cvk::soft_nms_method>(in.below(3));
  o.convention = static_cast<cvk::soft_nms_convention>(in.below(3));
  o.sigma = cvk_fuzz::threshold(in);
  o.min_score = cvk_fuzz::threshold(in);
  o.max_output = optional_count(in);
  o.propagate_nan = (in.u8() & 1U) != 0;
  bool format_ok = true;
  o.format = format_of(in.u8(), format_ok);
  const scene<T> s = read_scene<T>(in, false);

  bool valid = !is_nan(t) && !is_nan(o.sigma) && !is_nan(o.min_score) && !negative(o.max_output) &&
               format_ok &&
               !(o.convention == cvk::soft_nms_convention::opencv &&
                 o.method == cvk::soft_nms_method::naive) &&
               !(o.convention == cvk::soft_nms_convention::tensorflow &&
                 o.method == cvk::soft_nms_method::linear);
  const bool gaussian = o.method == cvk::soft_nms_method::gaussian;
  if (gaussian && !is_nan(o.sigma)) {
    // the value the kernel uses: sigma rounded to the box type, and -0.5 / sigma finite there
    const T sigma = static_cast<T>(o.sigma);
    if (!(sigma > T(0)) || !std::isfinite(T(-0.5) / sigma)) valid = false;
  }
  cvk::soft_nms_result<T> r;
  const bool threw =
      cvk_fuzz::throws_cvk_error([&] { r = cvk::soft_nms(s.boxes, s.scores, t, o); });
  CVK_FUZZ_CHECK(threw == !valid, "soft_nms: valid options ", valid, " but threw ", threw,
                 " (method ", static_cast<int>(o.method), ", convention ",
                 static_cast<int>(o.convention), ", sigma ", o.sigma, ")");
  if (threw) return;
  const std::vector<index_t> got = to_vector(r.indices);
  check_indices(got, s.boxes.size(), "soft_nms");
  CVK_FUZZ_CHECK(r.scores.size() == r.indices.size(), "soft_nms: ", r.scores.size(), " scores for ",
                 r.indices.size(), " indices");
  if (o.max_output) {
    CVK_FUZZ_CHECK(got.size() <= static_cast<std::size_t>(*o.max_output), "soft_nms: ", got.size(),
                   " results, max_output ", *o.max_output);
  }
  for (std::size_t k = 0; k < got.size(); ++k) {
    const auto input = static_cast<double>(s.scores[static_cast<std::size_t>(got[k])]);
    const auto out = static_cast<double>(r.scores(static_cast<index_t>(k)));
    if (k == 0 && o.convention != cvk::soft_nms_convention::tensorflow) {
      CVK_FUZZ_CHECK(out == input || (is_nan(out) && is_nan(input)),
                     "soft_nms: the first selection was decayed: ", input, " -> ", out);
    }
    if (!std::isfinite(input)) continue;
    CVK_FUZZ_CHECK(o.propagate_nan || !is_nan(out), "soft_nms: box ", got[k], " score ", input,
                   " became NaN (NaN policy)");
    if (is_nan(out)) continue;
    const bool decayed = input >= 0 ? (out >= 0 && out <= input) : (out <= 0 && out >= input);
    CVK_FUZZ_CHECK(decayed, "soft_nms: box ", got[k], " score ", input, " -> ", out,
                   " is not a decay");
  }
}

// ---------------------------------------------------------------------------------------------
// matrix_nms and batched_matrix_nms: decays in [0, 1], survivors above post_threshold, sorted.

template <class T>
void fuzz_matrix_nms(byte_reader& in, bool batched) {
  cvk::matrix_nms_options o;
  o.score_threshold = optional_threshold(in);
  o.post_threshold = optional_threshold(in);
  o.top_k = optional_count(in);
  o.max_output = optional_count(in);
  const std::uint8_t flags = in.u8();
  o.decay = (flags & 1U) != 0 ? cvk::matrix_nms_decay::gaussian : cvk::matrix_nms_decay::linear;
  o.pixel_inclusive = (flags & 2U) != 0;
  if ((flags & 4U) != 0) o.background_label = static_cast<int>(in.u8() % 4) - 1;
  o.gaussian_sigma = cvk_fuzz::threshold(in) * 4;
  bool format_ok = true;
  o.format = format_of(in.u8(), format_ok);
  o.threads = 1 + static_cast<int>(in.below(2));
  const scene<T> s = read_scene<T>(in, batched);
  const char* op = batched ? "batched_matrix_nms" : "matrix_nms";

  const bool valid = !nan(o.score_threshold) && !nan(o.post_threshold) && !negative(o.top_k) &&
                     !negative(o.max_output) && format_ok &&
                     (o.decay == cvk::matrix_nms_decay::linear ||
                      (o.gaussian_sigma > 0 && std::isfinite(o.gaussian_sigma)));
  cvk::scored_indices<T> r;
  const bool threw = cvk_fuzz::throws_cvk_error([&] {
    r = batched ? cvk::batched_matrix_nms(s.boxes, s.scores, s.classes, o)
                : cvk::matrix_nms(s.boxes, s.scores, o);
  });
  CVK_FUZZ_CHECK(threw == !valid, op, ": valid options ", valid, " but threw ", threw);
  if (threw) return;
  const std::vector<index_t> got = to_vector(r.indices);
  check_indices(got, s.boxes.size(), op);
  const std::vector<T> decayed(r.scores.begin(), r.scores.end());
  CVK_FUZZ_CHECK(decayed.size() == got.size(), op, ": ", decayed.size(), " scores for ", got.size(),
                 " indices");
  check_descending(decayed, op);
  if (o.max_output) {
    CVK_FUZZ_CHECK(got.size() <= static_cast<std::size_t>(*o.max_output), op, ": ", got.size(),
                   " results, max_output ", *o.max_output);
  }
  // Paddle's JaccardOverlap on an inverted box that touches another multiplies two negative
  // sides (the "apart" test is strict): IoU > 1 and a decay outside [0, 1], bit for bit as
  // Paddle (docs/nms.md). The decay range is checked where every box of the class is
  // without an infinite coordinate and with ordered corners (a NaN box is regular here: its
  // IoU never wins a maximum or a minimum).
  const auto irregular = [&](std::size_t i) {
    const auto c = cvk::box_convert(s.boxes[i], o.format, cvk::box_format::xyxy);
    return std::any_of(c.begin(), c.end(), [](T v) { return std::isinf(v); }) || c[0] > c[2] ||
           c[1] > c[3];
  };
  std::vector<int> irregular_classes;
  bool any_irregular = false;
  for (std::size_t i = 0; i < s.boxes.size(); ++i) {
    if (!irregular(i)) continue;
    any_irregular = true;
    if (batched) irregular_classes.push_back(s.classes[i]);
  }
  for (std::size_t k = 0; k < got.size(); ++k) {
    const auto i = static_cast<std::size_t>(got[k]);
    const auto input = static_cast<double>(s.scores[i]);
    const auto out = static_cast<double>(decayed[k]);
    const bool paddle_only = batched ? std::find(irregular_classes.begin(), irregular_classes.end(),
                                                 s.classes[i]) != irregular_classes.end()
                                     : any_irregular;
    CVK_FUZZ_CHECK(!o.score_threshold || input > *o.score_threshold, op, ": box ", i,
                   " below score_threshold");
    CVK_FUZZ_CHECK(!o.post_threshold || out > *o.post_threshold, op, ": box ", i, " decayed score ",
                   out, " not above post_threshold ", *o.post_threshold);
    if (batched && o.background_label) {
      CVK_FUZZ_CHECK(s.classes[i] != *o.background_label, op, ": background box ", i, " kept");
    }
    if (!std::isfinite(input) || paddle_only) continue;
    CVK_FUZZ_CHECK(!is_nan(out), op, ": box ", i, " score ", input, " decayed to NaN");
    // decay in [0, 1], rounded in T
    const double slack =
        4 * static_cast<double>(std::numeric_limits<T>::epsilon()) * std::fabs(input);
    const bool ok = input >= 0 ? (out >= -slack && out <= input + slack)
                               : (out <= slack && out >= input - slack);
    CVK_FUZZ_CHECK(ok, op, ": box ", i, " score ", input, " -> ", out, " is not a decay");
  }
}

// ---------------------------------------------------------------------------------------------
// fast_nms: its definition — j survives iff no higher-ranked candidate, kept or not, has
// IoU > t with it — written with the reference's pair IoU; a subset of greedy nms's survivors.

template <class T>
void fuzz_fast_nms(byte_reader& in) {
  const double t = cvk_fuzz::threshold(in);
  cvk::fast_nms_options o;
  o.score_threshold = optional_threshold(in);
  o.top_k = optional_count(in);
  o.max_output = optional_count(in);
  o.inclusive = (in.u8() & 1U) != 0;
  bool format_ok = true;
  o.format = format_of(in.u8(), format_ok);
  o.threads = 1 + static_cast<int>(in.below(2));
  const scene<T> s = read_scene<T>(in, false);

  const bool valid = !is_nan(t) && !nan(o.score_threshold) && !negative(o.top_k) &&
                     !negative(o.max_output) && format_ok;
  std::vector<index_t> got;
  const bool threw =
      cvk_fuzz::throws_cvk_error([&] { got = to_vector(cvk::fast_nms(s.boxes, s.scores, t, o)); });
  CVK_FUZZ_CHECK(threw == !valid, "fast_nms: valid options ", valid, " but threw ", threw);
  if (threw) return;
  check_indices(got, s.boxes.size(), "fast_nms");
  check_rank_order(got, s.scores, "fast_nms");
  if (o.format != cvk::box_format::xyxy && o.format != cvk::box_format::yxyx) return;
  const boxes_t<T> corners = as_xyxy(s.boxes, o.format);
  cvk::nms_options ranking;
  ranking.score_threshold = o.score_threshold;
  ranking.top_k = o.top_k;
  ranking.inclusive = o.inclusive;
  const std::vector<index_t> order = cvk_test::reference_nms_order(s.scores, ranking);
  std::vector<index_t> want;
  for (std::size_t j = 0; j < order.size(); ++j) {
    bool suppressed = false;
    for (std::size_t i = 0; i < j && !suppressed; ++i) {
      const auto iou =
          static_cast<double>(cvk_test::reference_iou(corners[static_cast<std::size_t>(order[i])],
                                                      corners[static_cast<std::size_t>(order[j])]));
      suppressed = o.inclusive ? iou >= t : iou > t;
    }
    if (!suppressed) want.push_back(order[j]);
  }
  if (o.max_output && want.size() > static_cast<std::size_t>(*o.max_output)) {
    want.resize(static_cast<std::size_t>(*o.max_output));
  }
  CVK_FUZZ_CHECK(got == want, "fast_nms: differs from its definition: ", got.size(), " kept, ",
                 want.size(), " by the definition");
  // Fast NMS drops a superset of greedy NMS's drops
  const std::vector<index_t> greedy = cvk_test::reference_nms(corners, s.scores, t, ranking);
  const std::set<index_t> greedy_set(greedy.begin(), greedy.end());
  for (const index_t i : got) {
    CVK_FUZZ_CHECK(greedy_set.count(i) == 1, "fast_nms: kept box ", i,
                   " that greedy nms suppresses");
  }
}

// ---------------------------------------------------------------------------------------------
// cluster_nms: hard IoU mode equals greedy nms; penalties and merges keep the contract.

template <class T>
void fuzz_cluster_nms(byte_reader& in) {
  const double t = cvk_fuzz::threshold(in);
  cvk::cluster_nms_options o;
  o.score_threshold = optional_threshold(in);
  o.top_k = optional_count(in);
  o.max_output = optional_count(in);
  const std::uint8_t flags = in.u8();
  o.inclusive = (flags & 1U) != 0;
  o.criterion = (flags & 2U) != 0 ? cvk::cluster_criterion::diou : cvk::cluster_criterion::iou;
  o.penalty = static_cast<cvk::cluster_penalty>((flags >> 2U) % 3U);
  o.weighted = (flags & 16U) != 0;
  o.diou_beta = cvk_fuzz::threshold(in);
  o.penalty_sigma = cvk_fuzz::threshold(in);
  o.penalty_min_score = cvk_fuzz::threshold(in);
  o.distance_beta = cvk_fuzz::threshold(in);
  o.merge_threshold = cvk_fuzz::threshold(in);
  bool format_ok = true;
  o.format = format_of(in.u8(), format_ok);
  const scene<T> s = read_scene<T>(in, false);

  const auto finite_nonnegative = [](double v) { return std::isfinite(v) && v >= 0; };
  const bool has_penalty = o.penalty != cvk::cluster_penalty::none;
  bool valid = !is_nan(t) && !nan(o.score_threshold) && !negative(o.top_k) &&
               !negative(o.max_output) && format_ok;
  if (o.criterion == cvk::cluster_criterion::diou && !finite_nonnegative(o.diou_beta))
    valid = false;
  if (has_penalty) {
    if (o.criterion == cvk::cluster_criterion::diou) valid = false;
    if (!(o.penalty_sigma > 0 && std::isfinite(o.penalty_sigma))) valid = false;
    if (is_nan(o.penalty_min_score)) valid = false;
    if (o.penalty == cvk::cluster_penalty::score_distance && !finite_nonnegative(o.distance_beta)) {
      valid = false;
    }
  }
  if (o.weighted && !(o.merge_threshold >= 0)) valid = false;
  cvk::cluster_nms_result<T> r;
  const bool threw =
      cvk_fuzz::throws_cvk_error([&] { r = cvk::cluster_nms(s.boxes, s.scores, t, o); });
  CVK_FUZZ_CHECK(threw == !valid, "cluster_nms: valid options ", valid, " but threw ", threw,
                 " (criterion ", static_cast<int>(o.criterion), ", penalty ",
                 static_cast<int>(o.penalty), ", weighted ", o.weighted, ")");
  if (threw) return;
  const std::vector<index_t> got = to_vector(r.indices);
  const std::size_t k_count = got.size();
  check_indices(got, s.boxes.size(), "cluster_nms");
  CVK_FUZZ_CHECK(r.scores.size() == static_cast<index_t>(k_count) &&
                     r.boxes.extent(0) == static_cast<index_t>(k_count) && r.boxes.extent(1) == 4,
                 "cluster_nms: result shapes");
  const std::vector<T> out_scores(r.scores.begin(), r.scores.end());
  check_descending(out_scores, "cluster_nms");
  if (o.max_output) {
    CVK_FUZZ_CHECK(k_count <= static_cast<std::size_t>(*o.max_output), "cluster_nms: max_output");
  }
  for (std::size_t k = 0; k < k_count; ++k) {
    const auto i = static_cast<std::size_t>(got[k]);
    const auto input = static_cast<double>(s.scores[i]);
    const auto out = static_cast<double>(out_scores[k]);
    if (!has_penalty) {
      CVK_FUZZ_CHECK(out == input || (is_nan(out) && is_nan(input)), "cluster_nms: box ", i,
                     " score changed without a penalty: ", input, " -> ", out);
    } else if (std::isfinite(input)) {
      CVK_FUZZ_CHECK(!is_nan(out), "cluster_nms: penalized score of box ", i, " is NaN");
      CVK_FUZZ_CHECK(out > o.penalty_min_score, "cluster_nms: box ", i, " penalized score ", out,
                     " not above penalty_min_score");
    }
    bool row_finite = cvk_fuzz::finite(s.boxes[i]);
    for (index_t c = 0; c < 4; ++c) {
      const T v = r.boxes(static_cast<index_t>(k), c);
      if (!o.weighted) {
        const T in_v = s.boxes[i][static_cast<std::size_t>(c)];
        CVK_FUZZ_CHECK(v == in_v || (std::isnan(v) && std::isnan(in_v)), "cluster_nms: box ", i,
                       " changed without weighted");
      } else if (row_finite) {
        CVK_FUZZ_CHECK(std::isfinite(v), "cluster_nms: weighted box of finite box ", i,
                       " is not finite: column ", c, " = ", v, " (score ", input, ")");
      }
    }
  }
  if (o.criterion != cvk::cluster_criterion::iou || has_penalty ||
      (o.format != cvk::box_format::xyxy && o.format != cvk::box_format::yxyx)) {
    return;
  }
  cvk::nms_options plain;
  plain.score_threshold = o.score_threshold;
  plain.top_k = o.top_k;
  plain.max_output = o.max_output;
  plain.inclusive = o.inclusive;
  const std::vector<index_t> want =
      cvk_test::reference_nms(as_xyxy(s.boxes, o.format), s.scores, t, plain);
  // equal as sets (cluster_nms orders by returned score, which without a penalty is rank order
  // up to ties — check both)
  CVK_FUZZ_CHECK(got == want, "cluster_nms: hard IoU mode differs from greedy nms: ", got.size(),
                 " kept, ", want.size(), " by the reference");
}

// ---------------------------------------------------------------------------------------------
// box_voting: voted corners are weighted means of the voters (inside their hull when every
// weight is positive); ID scoring leaves scores unchanged; a kept box without voters stays.

template <class T>
void fuzz_box_voting(byte_reader& in) {
  cvk::box_voting_options o;
  o.threshold = cvk_fuzz::threshold(in);
  o.scoring = static_cast<cvk::box_voting_scoring>(in.below(6));
  o.beta = cvk_fuzz::threshold(in) * 2;
  o.pixel_inclusive = (in.u8() & 1U) != 0;
  o.threads = 1 + static_cast<int>(in.below(2));
  const std::size_t kept_count = in.u8() % 32;
  const boxes_t<T> kept = cvk_fuzz::boxes<T>(in, kept_count);
  const std::vector<T> kept_scores = cvk_fuzz::scores<T>(in, kept_count);
  const scene<T> s = read_scene<T>(in, false);

  const bool needs_nonzero_beta = o.scoring == cvk::box_voting_scoring::temp_avg ||
                                  o.scoring == cvk::box_voting_scoring::generalized_avg;
  const bool valid =
      std::isfinite(o.threshold) && std::isfinite(o.beta) && !(needs_nonzero_beta && o.beta == 0);
  cvk::box_voting_result<T, T> r;
  const bool threw = cvk_fuzz::throws_cvk_error(
      [&] { r = cvk::box_voting(kept, kept_scores, s.boxes, s.scores, o); });
  CVK_FUZZ_CHECK(threw == !valid, "box_voting: valid options ", valid, " but threw ", threw);
  if (threw) return;
  CVK_FUZZ_CHECK(r.boxes.extent(0) == static_cast<index_t>(kept_count) &&
                     r.scores.size() == static_cast<index_t>(kept_count),
                 "box_voting: result shapes");
  bool positive_weights = true;
  for (const T w : s.scores) positive_weights = positive_weights && std::isfinite(w) && w > 0;
  std::array<T, 4> lo{}, hi{};
  bool all_finite = true;
  for (std::size_t c = 0; c < 4; ++c) {
    lo[c] = std::numeric_limits<T>::infinity();
    hi[c] = -std::numeric_limits<T>::infinity();
    for (const auto& b : s.boxes) {
      all_finite = all_finite && std::isfinite(b[c]);
      lo[c] = std::min(lo[c], b[c]);
      hi[c] = std::max(hi[c], b[c]);
    }
  }
  for (std::size_t k = 0; k < kept_count; ++k) {
    const auto score = r.scores(static_cast<index_t>(k));
    if (o.scoring == cvk::box_voting_scoring::id) {
      CVK_FUZZ_CHECK(score == kept_scores[k] || (std::isnan(score) && std::isnan(kept_scores[k])),
                     "box_voting: ID scoring changed kept score ", k);
    }
    if (!positive_weights || !all_finite || !cvk_fuzz::finite(kept[k])) continue;
    for (std::size_t c = 0; c < 4; ++c) {
      const T v = r.boxes(static_cast<index_t>(k), static_cast<index_t>(c));
      const T own = kept[k][c];
      // the mean of the voters, or the kept box itself; rounded once from double
      const T slack = T(8) * std::numeric_limits<T>::epsilon() *
                      std::max({std::fabs(lo[c]), std::fabs(hi[c]), std::fabs(own)});
      const bool inside = (v >= std::min(lo[c], own) - slack && v <= std::max(hi[c], own) + slack);
      CVK_FUZZ_CHECK(inside, "box_voting: voted box ", k, " column ", c, " = ", v,
                     " outside its voters [", lo[c], ", ", hi[c], "]");
    }
  }
}

// ---------------------------------------------------------------------------------------------
// var_voting: NaN and negative (σ², σ) variances throw; indices unique; scores only decay; voted
// corners inside the hull of the input corners for finite boxes.

template <class T>
void fuzz_var_voting(byte_reader& in) {
  cvk::var_voting_options o;
  o.input = static_cast<cvk::var_voting_input>(in.below(3));
  o.sigma_t = cvk_fuzz::threshold(in);
  o.vote_threshold = cvk_fuzz::threshold(in);
  o.decay = (in.u8() & 1U) != 0 ? cvk::var_voting_decay::hard : cvk::var_voting_decay::gaussian;
  o.soft_sigma = cvk_fuzz::threshold(in);
  o.iou_threshold = cvk_fuzz::threshold(in);
  o.score_threshold = cvk_fuzz::threshold(in);
  const scene<T> s = read_scene<T>(in, false);
  boxes_t<T> variances(s.boxes.size());
  for (auto& v : variances) {
    for (auto& x : v) x = cvk_fuzz::value<T>(in);
  }

  // docs/nms.md: a NaN variance (any input) and a negative σ² or σ are invalid input; a
  // log-variance may be any other number (−inf is σ² = 0, +inf an infinite variance)
  bool variances_valid = true;
  for (const auto& row : variances) {
    for (const T v : row) {
      variances_valid = variances_valid && !std::isnan(v) &&
                        (o.input == cvk::var_voting_input::log_variance || !(v < T(0)));
    }
  }
  const bool valid = o.sigma_t > 0 && o.soft_sigma > 0 && o.vote_threshold < 1 &&
                     !is_nan(o.iou_threshold) && !is_nan(o.score_threshold) && variances_valid;
  cvk::var_voting_result<T, T> r;
  const bool threw =
      cvk_fuzz::throws_cvk_error([&] { r = cvk::var_voting(s.boxes, s.scores, variances, o); });
  CVK_FUZZ_CHECK(threw == !valid, "var_voting: valid options and variances ", valid, " but threw ",
                 threw);
  if (threw) return;
  const std::vector<index_t> got = to_vector(r.indices);
  check_indices(got, s.boxes.size(), "var_voting");
  CVK_FUZZ_CHECK(r.boxes.extent(0) == static_cast<index_t>(got.size()) &&
                     r.scores.size() == static_cast<index_t>(got.size()),
                 "var_voting: result shapes");
  bool all_finite = true;
  for (const auto& box : s.boxes) all_finite = all_finite && cvk_fuzz::finite(box);
  for (std::size_t k = 0; k < got.size(); ++k) {
    const auto i = static_cast<std::size_t>(got[k]);
    const auto input = static_cast<double>(s.scores[i]);
    const auto out = static_cast<double>(r.scores(static_cast<index_t>(k)));
    if (std::isfinite(input)) {
      CVK_FUZZ_CHECK(!is_nan(out), "var_voting: box ", i, " score ", input, " became NaN");
      const bool decayed = input >= 0 ? (out >= 0 && out <= input) : (out <= 0 && out >= input);
      CVK_FUZZ_CHECK(decayed, "var_voting: box ", i, " score ", input, " -> ", out,
                     " is not a decay");
    }
    if (!all_finite) continue;
    for (std::size_t c = 0; c < 4; ++c) {
      T lo = std::numeric_limits<T>::infinity(), hi = -lo;
      for (const auto& b : s.boxes) {
        lo = std::min(lo, b[c]);
        hi = std::max(hi, b[c]);
      }
      const T v = r.boxes(static_cast<index_t>(k), static_cast<index_t>(c));
      const T slack =
          T(8) * std::numeric_limits<T>::epsilon() * std::max(std::fabs(lo), std::fabs(hi));
      CVK_FUZZ_CHECK(v >= lo - slack && v <= hi + slack, "var_voting: voted box of ", i, " column ",
                     c, " = ", v, " outside the input boxes [", lo, ", ", hi, "]");
    }
  }
}

// ---------------------------------------------------------------------------------------------
// em_merge: chosen detections pass the filter, come back as given, in score order, and survive
// greedy nms at nms_threshold among themselves.

template <class T>
void fuzz_em_merge(byte_reader& in) {
  cvk::em_merge_options o;
  o.score_threshold = cvk_fuzz::threshold(in);
  o.nms_threshold = cvk_fuzz::threshold(in);
  o.heat_threshold = cvk_fuzz::threshold(in);
  o.max_components = 1 + static_cast<index_t>(in.u8() % 8);
  o.max_iterations = static_cast<decltype(o.max_iterations)>(in.u8() % 8);
  o.max_grid_cells = index_t{1} << (4 + in.u8() % 10);  // small heat maps: fast runs
  const bool with_soft_iou = (in.u8() & 1U) != 0;
  const scene<T> s = read_scene<T>(in, false);
  const std::vector<T> soft_iou = cvk_fuzz::scores<T>(in, s.boxes.size());

  const bool valid = !is_nan(o.score_threshold) && !is_nan(o.nms_threshold) &&
                     o.heat_threshold >= 0 && o.heat_threshold < 1;
  cvk::em_merge_result<T> r;
  const bool threw = cvk_fuzz::throws_cvk_error([&] {
    r = with_soft_iou ? cvk::em_merge(s.boxes, s.scores, soft_iou, o)
                      : cvk::em_merge(s.boxes, s.scores, o);
  });
  CVK_FUZZ_CHECK(threw == !valid, "em_merge: valid options ", valid, " but threw ", threw);
  if (threw) return;
  const std::vector<index_t> got = to_vector(r.indices);
  check_indices(got, s.boxes.size(), "em_merge");
  const std::vector<T> final_scores(r.scores.begin(), r.scores.end());
  CVK_FUZZ_CHECK(final_scores.size() == got.size() && r.boxes.extent(0) == r.indices.size(),
                 "em_merge: result shapes");
  check_descending(final_scores, "em_merge");
  boxes_t<T> chosen;
  for (std::size_t k = 0; k < got.size(); ++k) {
    const auto i = static_cast<std::size_t>(got[k]);
    const auto& b = s.boxes[i];
    const auto score = static_cast<double>(s.scores[i]);
    CVK_FUZZ_CHECK(cvk_fuzz::finite(b) && b[2] > b[0] && b[3] > b[1] && std::isfinite(score) &&
                       score > o.score_threshold && score > 0 &&
                       (!with_soft_iou || std::isfinite(soft_iou[i])),
                   "em_merge: chose box ", i, " that the filter drops");
    for (std::size_t c = 0; c < 4; ++c) {
      CVK_FUZZ_CHECK(r.boxes(static_cast<index_t>(k), static_cast<index_t>(c)) == b[c],
                     "em_merge: box ", i, " not returned as given");
    }
    CVK_FUZZ_CHECK(std::isfinite(final_scores[k]), "em_merge: final score of box ", i,
                   " not finite");
    chosen.push_back(b);
  }
  // the final step is greedy nms: the chosen boxes survive it among themselves
  const std::vector<index_t> survivors =
      cvk_test::reference_nms(chosen, final_scores, o.nms_threshold);
  CVK_FUZZ_CHECK(survivors.size() == chosen.size(), "em_merge: ", chosen.size() - survivors.size(),
                 " of ", chosen.size(), " chosen boxes suppress each other at nms_threshold ",
                 o.nms_threshold);
}

// ---------------------------------------------------------------------------------------------
// nms_rotated and batched_nms_rotated against the plain loop over rotated_box_iou.

template <class T>
void fuzz_nms_rotated(byte_reader& in, bool batched) {
  const double t = cvk_fuzz::threshold(in);
  cvk::nms_rotated_options o;
  o.score_threshold = optional_threshold(in);
  o.max_output = optional_count(in);
  o.top_k = optional_count(in);
  const std::uint8_t flags = in.u8();
  o.inclusive = (flags & 1U) == 0;
  o.unit = (flags & 2U) != 0 ? cvk::angle_unit::radians : cvk::angle_unit::degrees;
  o.direction = (flags & 4U) != 0 ? cvk::rotation_direction::clockwise
                                  : cvk::rotation_direction::counter_clockwise;
  o.threads = 1 + static_cast<int>(in.below(2));
  const std::size_t n = in.u8() % 128;  // each pair may need a polygon clip
  std::vector<std::array<T, 5>> boxes;
  for (std::size_t i = 0; i < n; ++i) boxes.push_back(cvk_fuzz::rotated_box<T>(in, boxes));
  const std::vector<T> scores = cvk_fuzz::scores<T>(in, n);
  std::vector<int> classes(n);
  for (auto& c : classes) c = static_cast<int>(in.u8() % 3);
  const char* op = batched ? "batched_nms_rotated" : "nms_rotated";

  const bool valid =
      !is_nan(t) && !nan(o.score_threshold) && !negative(o.max_output) && !negative(o.top_k);
  std::vector<index_t> got;
  const bool threw = cvk_fuzz::throws_cvk_error([&] {
    got = batched ? to_vector(cvk::batched_nms_rotated(boxes, scores, classes, t, o))
                  : to_vector(cvk::nms_rotated(boxes, scores, t, o));
  });
  CVK_FUZZ_CHECK(threw == !valid, op, ": valid options ", valid, " but threw ", threw);
  if (threw) return;
  check_indices(got, n, op);
  check_rank_order(got, scores, op);
  const std::vector<index_t> want =
      batched ? cvk_test::reference_batched_nms_rotated(boxes, scores, classes, t, o)
              : cvk_test::reference_nms_rotated(boxes, scores, t, o);
  CVK_FUZZ_CHECK(got == want, op, ": differs from the plain loop: ", got.size(), " kept, ",
                 want.size(), " by the reference");
}

template <class T>
void fuzz_one(byte_reader& in, unsigned op) {
  switch (op) {
    case 0:
      fuzz_nms<T>(in, false);
      break;
    case 1:
      fuzz_nms<T>(in, true);
      break;
    case 2:
      fuzz_soft_nms<T>(in);
      break;
    case 3:
      fuzz_matrix_nms<T>(in, false);
      break;
    case 4:
      fuzz_matrix_nms<T>(in, true);
      break;
    case 5:
      fuzz_fast_nms<T>(in);
      break;
    case 6:
      fuzz_cluster_nms<T>(in);
      break;
    case 7:
      fuzz_box_voting<T>(in);
      break;
    case 8:
      fuzz_var_voting<T>(in);
      break;
    case 9:
      fuzz_em_merge<T>(in);
      break;
    case 10:
      fuzz_nms_rotated<T>(in, false);
      break;
    default:
      fuzz_nms_rotated<T>(in, true);
      break;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  byte_reader in(data, size);
  const std::uint8_t head = in.u8();
  const unsigned op = (head & 15U) % 12U;
  if ((head & 16U) != 0) {
    fuzz_one<double>(in, op);
  } else {
    fuzz_one<float>(in, op);
  }
  return 0;
}
