// cvk — computer-vision kernels, header-only C++20.
// Merging variants of NMS that move boxes instead of only keeping them:
//   box_voting  Detectron's bounding-box voting (detectron/utils/boxes.py box_voting, from the
//               Multi-Region CNN paper): each kept box becomes the score-weighted mean of every
//               box with IoU >= threshold, with Detectron's optional re-scoring methods;
//   var_voting  variance voting / Softer-NMS (He et al., "Bounding Box Regression with
//               Uncertainty", CVPR 2019; KL-Loss detectron/utils/py_cpu_nms.py soft): greedy
//               selection with soft-NMS decay, each selected box the mean of its remaining
//               neighbours weighted by an IoU kernel and the inverse predicted variances.
// Both compare a box only with the boxes that can overlap it (a uniform grid), and reproduce the
// plain O(N²) definitions exactly (same decisions, same summation order).
// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "../box/format.hpp"
#include "../core/as_view.hpp"
#include "../core/config.hpp"
#include "../core/errors.hpp"
#include "../core/parallel.hpp"
#include "../core/tensor.hpp"
#include "../detail/checks.hpp"
#include "detail/box_grid.hpp"
#include "detail/overlap.hpp"
#include "detail/tournament.hpp"

CVK_BEGIN_NAMESPACE

// ---------------------------------------------------------------------------------------------
// box_voting

/// How box_voting re-scores a kept box from the scores w_1..w_m of its m voters (Detectron's
/// TEST.BBOX_VOTE.SCORING_METHOD; beta is SCORING_METHOD_BETA).
enum class box_voting_scoring {
  id,        ///< ID: the kept score, unchanged
  temp_avg,  ///< TEMP_AVG: mean of w^(1/β) / (w^(1/β) + (1-w)^(1/β)), via log/exp as Detectron
  avg,       ///< AVG: mean of w
  iou_avg,   ///< IOU_AVG: Σ IoU·w / Σ IoU
  generalized_avg,  ///< GENERALIZED_AVG: (mean of w^β)^(1/β)
  quasi_sum,        ///< QUASI_SUM: Σ w / m^β
};

/// Name of a scoring method as Detectron spells it, "TEMP_AVG".
[[nodiscard]] constexpr const char* to_string(box_voting_scoring scoring) noexcept {
  switch (scoring) {
    case box_voting_scoring::id:
      return "ID";
    case box_voting_scoring::temp_avg:
      return "TEMP_AVG";
    case box_voting_scoring::avg:
      return "AVG";
    case box_voting_scoring::iou_avg:
      return "IOU_AVG";
    case box_voting_scoring::generalized_avg:
      return "GENERALIZED_AVG";
    case box_voting_scoring::quasi_sum:
      return "QUASI_SUM";
  }
  return "unknown";
}

/// Options of box_voting. The defaults are Detectron's (TEST.BBOX_VOTE), except
/// pixel_inclusive: Detectron's IoU uses the legacy "+1" widths; set it to true to match.
struct box_voting_options {
  /// A box votes for a kept box when IoU >= threshold (VOTE_TH). Compared in the box type with
  /// the threshold rounded to it (numpy compares Detectron's float32 IoUs in float32).
  double threshold = 0.8;
  /// How the kept box's score is recomputed from its voters.
  box_voting_scoring scoring = box_voting_scoring::id;
  /// Parameter of temp_avg (temperature), generalized_avg (exponent) and quasi_sum (exponent).
  double beta = 1.0;
  /// Widths are x2 - x1 + 1 (Detectron, py-faster-rcnn) instead of x2 - x1.
  bool pixel_inclusive = false;
  /// Column order of kept_boxes, all_boxes and the result.
  box_format format = box_format::xyxy;
  /// Threads over the kept boxes, 0 = max_threads(). Results do not depend on it.
  int threads = 0;
};

/// What box_voting returns: the voted boxes (K×4, in options.format) and their scores (K).
template <class R, class S>
struct box_voting_result {
  tensor<R, 2> boxes;
  tensor<S, 1> scores;
};

// ---------------------------------------------------------------------------------------------
// var_voting

/// What the `variances` argument of var_voting holds, per coordinate.
enum class var_voting_input {
  variance,      ///< σ²
  stddev,        ///< σ (what KL-Loss's test code passes to its voting: exp(α/2))
  log_variance,  ///< α = log σ² (what the KL-Loss box head predicts); σ = exp(α/2) as KL-Loss
};

/// How var_voting lowers the scores of the boxes overlapping a selected box (KL-Loss STD.SOFT).
enum class var_voting_decay {
  gaussian,  ///< 'soft' (the default): score *= exp(-IoU² / soft_sigma)
  hard,      ///< 'hard': score = 0 when IoU > iou_threshold (classic NMS), unchanged otherwise
};

/// Options of var_voting. The defaults are KL-Loss's configuration (STD.METHOD 'stdiou',
/// STD.IOU_SIGMA 0.01, STD.SOFT 'soft'), except pixel_inclusive: KL-Loss's IoU uses the legacy
/// "+1" widths; set it to true to match.
struct var_voting_options {
  /// What `variances` holds.
  var_voting_input input = var_voting_input::variance;
  /// σ_t of the IoU kernel p = exp(-(1 - IoU)² / σ_t) (STD.IOU_SIGMA). Must be > 0.
  double sigma_t = 0.01;
  /// The remaining boxes with IoU > vote_threshold vote (KL-Loss's STD_TH, forced to 0.01 for
  /// 'stdiou'). Compared in double. Must be < 1 (the selected box always votes for itself).
  double vote_threshold = 0.01;
  /// Score decay of the remaining boxes that overlap (IoU > 0) the selected one.
  var_voting_decay decay = var_voting_decay::gaussian;
  /// σ of the gaussian decay (hard-coded 0.5 in KL-Loss). Must be > 0.
  double soft_sigma = 0.5;
  /// hard decay only: IoU > iou_threshold sets the score to 0 (KL-Loss uses TEST.NMS; its
  /// configs set 0.5). Compared in double.
  double iou_threshold = 0.5;
  /// A decayed box whose score drops below this (compared in double) is discarded (hard-coded
  /// 0.001 in KL-Loss).
  double score_threshold = 0.001;
  /// Widths are x2 - x1 + 1 (KL-Loss, Detectron) instead of x2 - x1.
  bool pixel_inclusive = false;
  /// Column order of boxes and of the result. `variances` follow the corner order: (y1, x1, y2,
  /// x2) for yxyx, (x1, y1, x2, y2) for every other format.
  box_format format = box_format::xyxy;
};

/// What var_voting returns, in selection order: the index of each selected box, the voted box
/// (K×4, in options.format) and its score when selected (decayed by earlier selections).
template <class R, class S>
struct var_voting_result {
  tensor<index_t, 1> indices;
  tensor<R, 2> boxes;
  tensor<S, 1> scores;
};

CVK_KERNEL_BEGIN
namespace detail {

/// Type the weighted sums accumulate in: double for float (KL-Loss sums in float64), R otherwise.
template <class R>
using voting_acc_t = std::conditional_t<(sizeof(R) < sizeof(double)), double, R>;

/// Whether a box can have a positive intersection with any box: finite area and positive
/// width and height in the convention. Both IoU formulas give 0, ±0 or NaN for any other box
/// (an intersection side is at most the box's own side: monotone rounding keeps that true).
template <class R>
inline bool voting_takes_part(const voting_box<R>& b, R one) noexcept {
  const R finite_if_zero = b.area - b.area;
  return finite_if_zero == R(0) && (b.x2 - b.x1) + one > R(0) && (b.y2 - b.y1) + one > R(0);
}

/// The boxes that take part in the shared grid (box_grid.hpp), each stored in every cell of its
/// closed extent [x1, x2 + one] × [y1, y2 + one]: any box with a positive intersection in the IoU
/// formulas shares a cell with the query (the real intervals overlap, and double rounding of
/// x2 + one is monotone), so none is missed. A box met in several cells is reported once (the
/// grid's first_shared cell).
template <class R>
class voting_grid {
 public:
  voting_grid(std::span<const voting_box<R>> boxes, R one) : one_(one) {
    usable_ = grid_.build(boxes.size(), [&](std::size_t i, grid_bounds& g) {
      if (!voting_takes_part(boxes[i], one)) return false;
      g = bounds(boxes[i]);
      return true;
    });
    if (!usable_) return;
    const std::vector<std::size_t>& start = grid_.cell_start();
    start_.assign(start.begin(), start.end() - 1);
    end_ = start_;
    entries_.resize(grid_.slots());
    for (std::size_t i = 0; i < boxes.size(); ++i) {
      if (!grid_.stored(i)) continue;
      grid_.for_each_cell(grid_.span(i), [&](std::size_t c, index_t, index_t) {
        entries_[end_[c]++] = static_cast<index_t>(i);
        return false;
      });
    }
  }

  /// Calls `visit(j)` once for every stored box j whose cells meet those of `q` (a superset of
  /// the boxes with a positive intersection with q). A query that cannot overlap anything, or a
  /// grid where no box takes part, visits nothing. Returns true (the grid answers every query).
  template <class Visit>
  bool near(const voting_box<R>& q, Visit&& visit) const {
    if (!usable_ || !voting_takes_part(q, one_)) return true;
    grid_.for_each_query_cell(
        bounds(q), [&](std::size_t c, const grid_span& qs, index_t x, index_t y) {
          count_pair_tests(end_[c] - start_[c]);
          for (std::size_t k = start_[c]; k < end_[c]; ++k) {
            const index_t j = entries_[k];
            if (box_grid::first_shared(grid_.span(static_cast<std::size_t>(j)), qs, x, y)) visit(j);
          }
          return false;
        });
    return true;
  }

  /// As near, but first removes from the grid every entry met whose box fails `alive(j)` (the
  /// order of a cell's entries changes); `visit` sees live boxes only.
  template <class Alive, class Visit>
  bool near_pruning(const voting_box<R>& q, Alive&& alive, Visit&& visit) {
    if (!usable_ || !voting_takes_part(q, one_)) return true;
    grid_.for_each_query_cell(
        bounds(q), [&](std::size_t c, const grid_span& qs, index_t x, index_t y) {
          count_pair_tests(end_[c] - start_[c]);
          std::size_t k = start_[c];
          while (k < end_[c]) {
            const index_t j = entries_[k];
            if (!alive(j)) {
              entries_[k] = entries_[--end_[c]];
              continue;
            }
            if (box_grid::first_shared(grid_.span(static_cast<std::size_t>(j)), qs, x, y)) visit(j);
            ++k;
          }
          return false;
        });
    return true;
  }

 private:
  [[nodiscard]] grid_bounds bounds(const voting_box<R>& b) const noexcept {
    return {static_cast<double>(b.x1), static_cast<double>(b.y1), high(b.x2), high(b.y2)};
  }
  [[nodiscard]] double high(R x2) const noexcept {
    return static_cast<double>(x2) + static_cast<double>(one_);
  }

  R one_{};
  bool usable_ = false;
  box_grid grid_;
  std::vector<std::size_t> start_;
  std::vector<std::size_t> end_;  // one past the last live entry of each cell
  std::vector<index_t> entries_;
};

/// Detectron's TEMP_AVG term for one score w: P = (w, 1 - w), X = log(P / max P),
/// exp(X₀/β) / (exp(X₀/β) + exp(X₁/β)).
template <class A>
inline A temperature_term(A w, A beta) noexcept {
  const A a = w;
  const A b = A(1) - w;
  const A top = a < b ? b : a;
  const A ea = std::exp(std::log(a / top) / beta);
  const A eb = std::exp(std::log(b / top) / beta);
  return ea / (ea + eb);
}

/// box_voting on loaded data. kept/all: boxes in the convention; `kept_rows`: the kept boxes as
/// given (copied unchanged when nothing votes). Writes K rows into out_boxes / out_scores.
template <class R, class RS, class A>
void box_voting_kernel(std::span<const voting_box<R>> kept,
                       std::span<const std::array<R, 4>> kept_rows, std::span<const RS> kept_scores,
                       std::span<const voting_box<R>> all, std::span<const A> all_scores,
                       const box_voting_options& options, tensor<R, 2>& out_boxes,
                       tensor<RS, 1>& out_scores) {
  const R one = options.pixel_inclusive ? R(1) : R(0);
  const auto threshold = static_cast<R>(options.threshold);
  const auto k_count = static_cast<index_t>(kept.size());
  const auto n = static_cast<index_t>(all.size());
  // IoU >= threshold > 0 needs a positive intersection: the grid finds every such pair.
  const bool use_grid = threshold > R(0) && n > 0;
  voting_grid<R> grid(use_grid ? all : std::span<const voting_box<R>>{}, one);
  const bool grid_ok = use_grid;
  const auto beta = static_cast<A>(options.beta);
  const box_voting_scoring scoring = options.scoring;
  const box_convention convention{options.pixel_inclusive};

  parallel_for(
      0, k_count, 16,
      [&](index_t lo, index_t hi) {
        std::vector<std::pair<index_t, R>> voters;  // (index into all, IoU)
        for (index_t k = lo; k < hi; ++k) {
          const voting_box<R>& q = kept[static_cast<std::size_t>(k)];
          // the voters in index order: from the grid (sorted), or from every box (threshold
          // <= 0, a large kept box, or no usable grid)
          voters.clear();
          const auto test = [&](index_t j) {
            const R o = detectron_iou(q, all[static_cast<std::size_t>(j)], one);
            if (o >= threshold) voters.emplace_back(j, o);
          };
          if (grid_ok && grid.near(q, test)) {
            std::sort(voters.begin(), voters.end(),
                      [](const auto& a, const auto& b) { return a.first < b.first; });
          } else {
            count_pair_tests(static_cast<std::size_t>(n));
            for (index_t j = 0; j < n; ++j) test(j);
          }
          std::array<A, 4> num{};
          A den = 0;
          A count = 0;
          A extra = 0;    // temp_avg: Σ terms; iou_avg: Σ IoU·w; generalized_avg: Σ w^β
          A iou_sum = 0;  // iou_avg: Σ IoU
          for (const auto& [j, o] : voters) {
            const voting_box<R>& b = all[static_cast<std::size_t>(j)];
            const A w = all_scores[static_cast<std::size_t>(j)];
            num[0] += static_cast<A>(b.x1) * w;
            num[1] += static_cast<A>(b.y1) * w;
            num[2] += static_cast<A>(b.x2) * w;
            num[3] += static_cast<A>(b.y2) * w;
            den += w;
            count += A(1);
            switch (scoring) {
              case box_voting_scoring::temp_avg:
                extra += temperature_term(w, beta);
                break;
              case box_voting_scoring::iou_avg:
                extra += w * static_cast<A>(o);
                iou_sum += static_cast<A>(o);
                break;
              case box_voting_scoring::generalized_avg:
                extra += std::pow(w, beta);
                break;
              default:
                break;
            }
          }
          const auto kk = static_cast<std::size_t>(k);
          std::array<R, 4> row = kept_rows[kk];
          RS score = kept_scores[kk];
          if (count > A(0) && den != A(0)) {
            const std::array<R, 4> voted = {
                static_cast<R>(num[0] / den), static_cast<R>(num[1] / den),
                static_cast<R>(num[2] / den), static_cast<R>(num[3] / den)};
            row = from_xyxy(voted, options.format, convention);
            switch (scoring) {
              case box_voting_scoring::id:
                break;
              case box_voting_scoring::temp_avg:
                score = static_cast<RS>(extra / count);
                break;
              case box_voting_scoring::avg:
                score = static_cast<RS>(den / count);
                break;
              case box_voting_scoring::iou_avg:
                if (iou_sum != A(0)) score = static_cast<RS>(extra / iou_sum);
                break;
              case box_voting_scoring::generalized_avg:
                score = static_cast<RS>(std::pow(extra / count, A(1) / beta));
                break;
              case box_voting_scoring::quasi_sum:
                score = static_cast<RS>(den / std::pow(count, beta));
                break;
            }
          }
          for (index_t c = 0; c < 4; ++c) out_boxes(k, c) = row[static_cast<std::size_t>(c)];
          out_scores(k) = score;
        }
      },
      k_count * (n + 1) >= 50'000 ? options.threads : 1);
}

/// A position's rank in KL-Loss's argmax (numpy's np.argmax over the remaining scores): live
/// entries first, NaN before numbers, then the larger score; ties go to the lower position (the
/// winner_tree's leftmost rule). Key{} is a dead entry.
template <class RS>
struct kl_rank {
  RS score;
  bool live;
};

/// "a ranks strictly before b" for kl_rank.
struct kl_before {
  template <class RS>
  constexpr bool operator()(const kl_rank<RS>& a, const kl_rank<RS>& b) const noexcept {
    if (!a.live) return false;
    if (!b.live) return true;
    const bool a_nan = a.score != a.score;  // NOLINT(misc-redundant-expression)
    const bool b_nan = b.score != b.score;  // NOLINT(misc-redundant-expression)
    if (a_nan || b_nan) return a_nan && !b_nan;
    return a.score > b.score;
  }
};

/// The tournament over KL-Loss's array positions (tournament.hpp): the root holds the position
/// of the best live entry in argmax order.
template <class RS>
using position_tournament = winner_tree<kl_rank<RS>, std::size_t, kl_before>;

/// Per box: x/σ² of the four corners, then 1/σ² of the four (one cache line for double sums).
template <class A>
struct alignas(8 * sizeof(A)) vote_weights {
  std::array<A, 4> weighted;
  std::array<A, 4> inverse;
};

/// Sorts `items` by their distinct `position` members: through 64-bit keys (position, slot)
/// when both fit in 32 bits (a much faster sort than of the structs), else directly.
template <class Item>
void sort_by_position(std::vector<Item>& items, std::vector<std::uint64_t>& keys,
                      std::vector<Item>& scratch) {
  const std::size_t m = items.size();
  if (m < 2) return;
  constexpr std::size_t limit = std::size_t{1} << 32;
  bool fits = m < limit;
  for (std::size_t i = 0; i < m && fits; ++i) fits = items[i].position < limit;
  if (!fits) {
    std::sort(items.begin(), items.end(),
              [](const Item& x, const Item& y) { return x.position < y.position; });
    return;
  }
  keys.resize(m);
  for (std::size_t i = 0; i < m; ++i)
    keys[i] = (static_cast<std::uint64_t>(items[i].position) << 32) | i;
  std::sort(keys.begin(), keys.end());
  scratch.resize(m);
  for (std::size_t i = 0; i < m; ++i)
    scratch[i] = items[static_cast<std::size_t>(keys[i] & 0xffffffffu)];
  items.swap(scratch);
}

/// var_voting on loaded data: boxes (xyxy in the convention), per-box x/σ² and 1/σ² (A), scores.
/// The state is KL-Loss's: its arrays are permuted in place by swaps, and the position order
/// decides ties and the summation order. Positions [cur, live) hold the remaining boxes.
/// Appends the selection to the output vectors.
template <class R, class RS>
void var_voting_kernel(std::span<const voting_box<R>> boxes,
                       std::span<const vote_weights<voting_acc_t<R>>> weights,
                       std::span<const RS> scores, const var_voting_options& options,
                       std::vector<index_t>& out_indices, std::vector<std::array<R, 4>>& out_boxes,
                       std::vector<RS>& out_scores) {
  using A = voting_acc_t<R>;
  using AS = voting_acc_t<RS>;
  const std::size_t n = boxes.size();
  const R one = options.pixel_inclusive ? R(1) : R(0);
  const double vote_threshold = options.vote_threshold;
  const double collect_threshold = std::min(vote_threshold, 0.0);
  const auto sigma_t = static_cast<A>(options.sigma_t);
  const auto soft_sigma = static_cast<AS>(options.soft_sigma);
  const bool gaussian = options.decay == var_voting_decay::gaussian;

  std::vector<std::size_t> at(n);        // position → box
  std::vector<std::size_t> position(n);  // box → position
  for (std::size_t i = 0; i < n; ++i) {
    at[i] = i;
    position[i] = i;
  }
  position_tournament<RS> ranking(n);
  for (std::size_t p = 0; p < n; ++p) ranking.set(p, {scores[p], true});
  ranking.build();

  // Neighbours from the grid only when every pair that matters has a positive intersection.
  const bool grid_wanted = vote_threshold >= 0.0 && n >= 2;
  voting_grid<R> grid(grid_wanted ? boxes : std::span<const voting_box<R>>{}, one);
  const bool use_grid = grid_wanted;

  struct neighbour {
    std::size_t position;
    std::size_t box;
    R iou;
  };
  std::vector<neighbour> neighbours;
  std::vector<std::uint64_t> keys;
  std::vector<neighbour> sorted;
  std::size_t cur = 0;
  std::size_t live = n;
  while (cur < live) {
    // 1. the best remaining position swaps with `cur`; `cur` leaves the remaining range
    const std::size_t from = ranking.top();
    const std::size_t b = at[from];
    const RS selected_score = ranking.key(from).score;
    if (from != cur) {
      const std::size_t other = at[cur];
      at[cur] = b;
      at[from] = other;
      position[b] = cur;
      position[other] = from;
      ranking.update(from, {ranking.key(cur).score, true});
    }
    ranking.update(cur, {selected_score, false});

    // 2. the remaining boxes (positions in (cur, live)) with IoU > min(vote_threshold, 0), in
    //    position order
    neighbours.clear();
    const voting_box<R>& sb = boxes[b];
    const auto consider = [&](std::size_t j) {
      const R o = kl_loss_iou(sb, boxes[j], one);
      if (static_cast<double>(o) > collect_threshold) neighbours.push_back({position[j], j, o});
    };
    const auto remaining = [&](index_t j) {
      const std::size_t p = position[static_cast<std::size_t>(j)];
      return p > cur && p < live;
    };
    if (use_grid && grid.near_pruning(sb, remaining,
                                      [&](index_t j) { consider(static_cast<std::size_t>(j)); })) {
      sort_by_position(neighbours, keys, sorted);
    } else {
      count_pair_tests(live - cur - 1);
      for (std::size_t p = cur + 1; p < live; ++p) consider(at[p]);
    }

    // 3. the vote: the selected box (weight p = 1) then its neighbours in position order. A
    //    corner with σ² = 0 (infinite 1/σ², see var_voting) is exact: it outweighs every
    //    finite variance, so the exact voters' p-weighted mean Σ p·x / Σ p is the vote (the
    //    limit of the formula as their σ² go to 0 together) instead of inf/inf = NaN.
    std::array<A, 4> num{};
    std::array<A, 4> den{};
    std::array<A, 4> exact_num{};
    std::array<A, 4> exact_den{};
    const auto add = [&](const vote_weights<A>& w, A p) {
      for (std::size_t c = 0; c < 4; ++c) {
        if (std::isinf(w.inverse[c])) {
          exact_num[c] += p * w.weighted[c];
          exact_den[c] += p;
        } else {
          num[c] += p * w.weighted[c];
          den[c] += p * w.inverse[c];
        }
      }
    };
    add(weights[b], A(1));
    for (const neighbour& nb : neighbours) {
      if (!(static_cast<double>(nb.iou) > vote_threshold)) continue;
      const A d = A(1) - static_cast<A>(nb.iou);
      add(weights[nb.box], std::exp(-(d * d) / sigma_t));
    }
    const std::array<R, 4> own = {sb.x1, sb.y1, sb.x2, sb.y2};
    std::array<R, 4> voted{};
    for (std::size_t c = 0; c < 4; ++c) {
      if (exact_den[c] != A(0)) {
        voted[c] = static_cast<R>(exact_num[c] / exact_den[c]);
      } else {
        voted[c] = den[c] != A(0) ? static_cast<R>(num[c] / den[c]) : own[c];
      }
    }
    out_indices.push_back(static_cast<index_t>(b));
    out_boxes.push_back(voted);
    out_scores.push_back(selected_score);

    // 4. decay the remaining boxes with IoU > 0 in position order; one that falls below the
    //    score threshold swaps with the last live position, whose box is examined next if it
    //    overlaps and was not decayed yet (then it is the last neighbour), as KL-Loss's loop.
    std::size_t front = 0;
    std::size_t back = neighbours.size();
    while (front < back) {
      const neighbour nb = neighbours[front];
      if (!(nb.iou > R(0))) {
        ++front;
        continue;
      }
      const std::size_t p = position[nb.box];
      RS s = ranking.key(p).score;
      if (gaussian) {
        const auto ov = static_cast<AS>(nb.iou);
        s = static_cast<RS>(static_cast<AS>(s) * std::exp(-(ov * ov) / soft_sigma));
      } else if (static_cast<double>(nb.iou) > options.iou_threshold) {
        s = RS(0);
      }
      if (!(static_cast<double>(s) < options.score_threshold)) {
        ranking.update(p, {s, true});
        ++front;
        continue;
      }
      const std::size_t last = live - 1;
      const std::size_t moved = at[last];
      at[p] = moved;
      at[last] = nb.box;
      position[moved] = p;
      position[nb.box] = last;
      ranking.update(p, {ranking.key(last).score, true});
      ranking.update(last, {s, false});
      --live;
      if (moved != nb.box && back - 1 > front && neighbours[back - 1].box == moved) {
        neighbours[front] = neighbours[back - 1];  // now at p: the next one examined
        --back;
        continue;
      }
      ++front;
    }
    ++cur;
  }
}

}  // namespace detail
CVK_KERNEL_END

/// Bounding-box voting (Detectron's `box_voting(top_dets, all_dets, thresh, scoring_method,
/// beta)`): refines boxes kept by NMS with all the detections they came from.
///
///   kept_boxes   K×4 in options.format, any arithmetic type, any strides (e.g. NMS survivors)
///   kept_scores  K, any arithmetic type, any strides
///   all_boxes    N×4 in options.format, any arithmetic type, any strides (all candidates)
///   all_scores   N, any arithmetic type, any strides (the voting weights)
///   result       .boxes K×4 in options.format, .scores K (real types of the inputs)
///
/// For each kept box k, the voters are the boxes j of all_boxes with IoU(k, j) >= threshold
/// (Detectron's cython bbox_overlaps: 0 unless the intersection has positive sides, "+1" widths
/// with pixel_inclusive). The voted corners are Σ w_j·x_j / Σ w_j with w_j = all_scores(j),
/// summed in index order (in double for float input); the score is recomputed by
/// options.scoring. When nothing votes or the weights sum to 0, the kept box and score are
/// returned unchanged (Detectron raises ZeroDivisionError there); iou_avg with Σ IoU = 0 keeps
/// the kept score. NaN scores or coordinates propagate into the boxes they vote for.
///
/// Throws cvk::shape_error when a box tensor is not ·×4 or a score tensor's length differs from
/// its boxes', and cvk::invalid_argument when threshold or beta is NaN or infinite, or beta is
/// 0 for temp_avg / generalized_avg. O(N log N) to build a grid, then each kept box is compared
/// only with the boxes in its cells (threshold > 0): O(K·m log m) for m boxes near each kept box;
/// O(K·N) for a threshold <= 0 (every box votes).
template <tensor_of_rank<2> KeptBoxes, tensor_of_rank<1> KeptScores, tensor_of_rank<2> AllBoxes,
          tensor_of_rank<1> AllScores>
[[nodiscard]] auto box_voting(const KeptBoxes& kept_boxes, const KeptScores& kept_scores,
                              const AllBoxes& all_boxes, const AllScores& all_scores,
                              const box_voting_options& options = {}) {
  constexpr const char* fn = "box_voting";
  const auto kb = detail::checked_view<2>(kept_boxes, fn, "kept_boxes");
  const auto ks = detail::checked_view<1>(kept_scores, fn, "kept_scores");
  const auto ab = detail::checked_view<2>(all_boxes, fn, "all_boxes");
  const auto as = detail::checked_view<1>(all_scores, fn, "all_scores");
  detail::expect_shape(kb, {detail::any_extent, 4}, fn, "kept_boxes", "K×4");
  detail::expect_shape(ab, {detail::any_extent, 4}, fn, "all_boxes", "N×4");
  const index_t k_count = kb.extent(0);
  const index_t n = ab.extent(0);
  if (ks.extent(0) != k_count) {
    CVK_THROW(shape_error, std::string(fn) + ": kept_scores must have " + std::to_string(k_count) +
                               " elements (one per kept box), got " + std::to_string(ks.extent(0)));
  }
  if (as.extent(0) != n) {
    CVK_THROW(shape_error, std::string(fn) + ": all_scores must have " + std::to_string(n) +
                               " elements (one per box of all_boxes), got " +
                               std::to_string(as.extent(0)));
  }
  detail::check_format(options.format, fn, "options.format");
  detail::check_allocation_size(n, sizeof(detail::voting_box<double>), fn, "all_boxes", ab);
  detail::check_allocation_size(k_count, sizeof(std::array<double, 4>), fn, "kept_boxes", kb);
  if (!std::isfinite(options.threshold)) {
    CVK_THROW(invalid_argument, std::string(fn) + ": threshold must be a finite number, got " +
                                    std::to_string(options.threshold));
  }
  if (!std::isfinite(options.beta)) {
    CVK_THROW(invalid_argument, std::string(fn) + ": beta must be a finite number, got " +
                                    std::to_string(options.beta));
  }
  if (options.beta == 0.0 && (options.scoring == box_voting_scoring::temp_avg ||
                              options.scoring == box_voting_scoring::generalized_avg)) {
    CVK_THROW(invalid_argument,
              std::string(fn) + ": beta must not be 0 for scoring " + to_string(options.scoring));
  }
  using R = std::common_type_t<real_t<typename decltype(kb)::value_type>,
                               real_t<typename decltype(ab)::value_type>>;
  using RS = real_t<typename decltype(ks)::value_type>;
  using A = detail::voting_acc_t<std::common_type_t<R, real_t<typename decltype(as)::value_type>>>;
  const box_convention convention{options.pixel_inclusive};
  const R one = options.pixel_inclusive ? R(1) : R(0);

  std::vector<detail::voting_box<R>> kept(static_cast<std::size_t>(k_count));
  std::vector<std::array<R, 4>> kept_rows(static_cast<std::size_t>(k_count));
  std::vector<RS> kept_score_values(static_cast<std::size_t>(k_count));
  for (index_t k = 0; k < k_count; ++k) {
    const auto kk = static_cast<std::size_t>(k);
    kept_rows[kk] = detail::load_box<R>(kb, k);
    kept[kk] =
        detail::make_voting_box(detail::to_xyxy(kept_rows[kk], options.format, convention), one);
    kept_score_values[kk] = static_cast<RS>(ks(k));
  }
  std::vector<detail::voting_box<R>> all(static_cast<std::size_t>(n));
  std::vector<A> all_score_values(static_cast<std::size_t>(n));
  for (index_t j = 0; j < n; ++j) {
    const auto jj = static_cast<std::size_t>(j);
    all[jj] = detail::make_voting_box(
        detail::to_xyxy(detail::load_box<R>(ab, j), options.format, convention), one);
    all_score_values[jj] = static_cast<A>(as(j));
  }
  box_voting_result<R, RS> result{tensor<R, 2>(k_count, index_t{4}), tensor<RS, 1>(k_count)};
  detail::box_voting_kernel<R, RS, A>(kept, kept_rows, kept_score_values, all, all_score_values,
                                      options, result.boxes, result.scores);
  return result;
}

namespace detail {

/// Throws cvk::invalid_argument "var_voting: variances(3, 1) must be a number >= 0 (σ²), got -1"
/// (a number, for log σ²).
[[noreturn]] inline void reject_variance(index_t row, index_t column, double value,
                                         var_voting_input input, const char* fn) {
  const char* rule = input == var_voting_input::variance ? "a number >= 0 (σ²)"
                     : input == var_voting_input::stddev ? "a number >= 0 (σ)"
                                                         : "a number (log σ²)";
  CVK_THROW(invalid_argument, std::string(fn) + ": variances(" + std::to_string(row) + ", " +
                                  std::to_string(column) + ") must be " + rule + ", got " +
                                  number_string(value));
}

}  // namespace detail

/// Variance voting with soft-NMS (Softer-NMS; KL-Loss's `py_cpu_nms.soft` with STD.METHOD
/// 'stdiou'): greedy selection in which each selected box is replaced by the mean of its
/// remaining neighbours weighted by an IoU kernel and their inverse predicted variances.
///
///   boxes      N×4 in options.format, any arithmetic type, any strides
///   scores     N, any arithmetic type, any strides
///   variances  N×4 per-corner uncertainty (options.input: σ², σ or log σ²), any arithmetic
///              type, any strides; columns in corner order (y1, x1, y2, x2 for yxyx)
///   result     .indices K selected boxes in selection order, .boxes K×4 voted (in
///              options.format), .scores K (the score of each box when it was selected)
///
/// Per iteration, over the remaining boxes (neither selected nor discarded), in KL-Loss's order:
/// select the highest score (NaN first, ties by KL-Loss's array position, which its swaps
/// permute); vote over the remaining boxes j with IoU > vote_threshold (the selected box itself
/// with IoU 1): x = Σ p_j·x_j/σ_j² / Σ p_j/σ_j² per corner, p_j = exp(-(1 - IoU)²/σ_t), summed in
/// position order (in double for float input); then decay every remaining box with IoU > 0
/// (gaussian or hard) and discard those whose score falls below score_threshold. IoUs come from
/// the input boxes (voted boxes never vote again). A corner whose weights sum to 0 keeps the
/// selected box's value. A corner with σ² = 0 (or so small that x/σ² or 1/σ² overflows; e.g. a
/// log-variance below about -709) is exact and outweighs every finite variance:
/// when any voter's corner is exact, the vote is the exact voters' Σ p_j·x_j / Σ p_j.
///
/// Throws cvk::shape_error when boxes or variances are not N×4 or scores has not N elements,
/// and cvk::invalid_argument when sigma_t or soft_sigma is not > 0, vote_threshold is NaN or
/// >= 1, iou_threshold or score_threshold is NaN, or a variance is NaN (or negative, for σ² and
/// σ; +inf is an infinite variance, a log-variance may be any number but NaN). Each selection
/// compares the selected box only with the remaining boxes in its grid cells (vote_threshold
/// >= 0) and re-ranks a changed score in O(log N) (a tournament tree over KL-Loss's positions):
/// O(N log N + P log P) for P overlapping pairs on spread-out scenes; O(N²) at worst (everything
/// overlapping, a box spanning most of the image, or vote_threshold < 0, which makes every
/// remaining box vote).
template <tensor_of_rank<2> Boxes, tensor_of_rank<1> Scores, tensor_of_rank<2> Variances>
[[nodiscard]] auto var_voting(const Boxes& boxes, const Scores& scores, const Variances& variances,
                              const var_voting_options& options = {}) {
  constexpr const char* fn = "var_voting";
  const auto b = detail::checked_view<2>(boxes, fn, "boxes");
  const auto s = detail::checked_view<1>(scores, fn, "scores");
  const auto v = detail::checked_view<2>(variances, fn, "variances");
  detail::expect_shape(b, {detail::any_extent, 4}, fn, "boxes", "N×4");
  const index_t n = b.extent(0);
  if (s.extent(0) != n) {
    CVK_THROW(shape_error, std::string(fn) + ": scores must have " + std::to_string(n) +
                               " elements (one per box), got " + std::to_string(s.extent(0)));
  }
  if (v.extent(0) != n || v.extent(1) != 4) {
    CVK_THROW(shape_error, std::string(fn) + ": variances must be " + std::to_string(n) +
                               "×4 (one row per box), got " + v.shape_string());
  }
  const auto positive = [&](double value, const char* name) {
    if (!(value > 0.0)) {
      CVK_THROW(invalid_argument,
                std::string(fn) + ": " + name + " must be > 0, got " + std::to_string(value));
    }
  };
  positive(options.sigma_t, "sigma_t");
  positive(options.soft_sigma, "soft_sigma");
  if (!(options.vote_threshold < 1.0)) {
    CVK_THROW(invalid_argument, std::string(fn) + ": vote_threshold must be < 1, got " +
                                    std::to_string(options.vote_threshold));
  }
  if (std::isnan(options.iou_threshold)) {
    CVK_THROW(invalid_argument, std::string(fn) + ": iou_threshold must be a number, got nan");
  }
  if (std::isnan(options.score_threshold)) {
    CVK_THROW(invalid_argument, std::string(fn) + ": score_threshold must be a number, got nan");
  }
  detail::check_format(options.format, fn, "options.format");
  using R = real_t<typename decltype(b)::value_type>;
  using RS = real_t<typename decltype(s)::value_type>;
  using A = detail::voting_acc_t<R>;
  const box_convention convention{options.pixel_inclusive};
  const R one = options.pixel_inclusive ? R(1) : R(0);
  const bool rows_first = options.format == box_format::yxyx;

  const auto count = static_cast<std::size_t>(n);
  auto corners = detail::checked_vector<detail::voting_box<R>>(n, fn, "boxes", b);
  std::vector<detail::vote_weights<A>> weights(count);
  std::vector<RS> score(count);
  for (index_t i = 0; i < n; ++i) {
    const auto ii = static_cast<std::size_t>(i);
    const auto c = detail::to_xyxy(detail::load_box<R>(b, i), options.format, convention);
    corners[ii] = detail::make_voting_box(c, one);
    score[ii] = static_cast<RS>(s(i));
    for (index_t k = 0; k < 4; ++k) {
      const index_t column = rows_first ? (k ^ 1) : k;  // yxyx columns hold (y1, x1, y2, x2)
      const auto value = static_cast<A>(v(i, column));
      // A NaN (or, for σ² and σ, negative) uncertainty is a broken input, not a box that cannot
      // take part: unlike a NaN coordinate it would poison every vote it enters, so it is
      // rejected, naming the element (the row is the box).
      if (std::isnan(value) || (options.input != var_voting_input::log_variance && value < A(0))) {
        detail::reject_variance(i, column, static_cast<double>(value), options.input, fn);
      }
      A variance = value;
      if (options.input == var_voting_input::stddev) {
        variance = value * value;
      } else if (options.input == var_voting_input::log_variance) {
        const A sigma = std::exp(value / A(2));
        variance = sigma * sigma;
      }
      const auto kk = static_cast<std::size_t>(k);
      const A weighted = static_cast<A>(c[kk]) / variance;
      const A inverse = A(1) / variance;
      if (std::isinf(inverse) || (std::isinf(weighted) && std::isfinite(c[kk]))) {
        // σ² = 0, or so small that x/σ² or 1/σ² overflows: an exact corner, stored as x and an
        // infinite inverse (the kernel's vote takes the exact corners' mean)
        weights[ii].weighted[kk] = static_cast<A>(c[kk]);
        weights[ii].inverse[kk] = std::numeric_limits<A>::infinity();
      } else {
        weights[ii].weighted[kk] = weighted;
        weights[ii].inverse[kk] = inverse;
      }
    }
  }
  std::vector<index_t> indices;
  std::vector<std::array<R, 4>> voted;
  std::vector<RS> voted_scores;
  indices.reserve(count);
  voted.reserve(count);
  voted_scores.reserve(count);
  detail::var_voting_kernel<R, RS>(corners, weights, score, options, indices, voted, voted_scores);
  const auto k_count = static_cast<index_t>(indices.size());
  var_voting_result<R, RS> result{tensor<index_t, 1>(k_count), tensor<R, 2>(k_count, index_t{4}),
                                  tensor<RS, 1>(k_count)};
  for (index_t k = 0; k < k_count; ++k) {
    const auto kk = static_cast<std::size_t>(k);
    result.indices(k) = indices[kk];
    const auto row = detail::from_xyxy(voted[kk], options.format, convention);
    for (index_t c = 0; c < 4; ++c) result.boxes(k, c) = row[static_cast<std::size_t>(c)];
    result.scores(k) = voted_scores[kk];
  }
  return result;
}

CVK_END_NAMESPACE
