// cvk — computer-vision kernels, header-only C++20.
// The voting kernels (box_voting, var_voting): boxes in the pixel convention, the shared grid of
// the boxes that can overlap, Detectron's weighted vote, and KL-Loss's variance vote with its
// position tournament (tournament.hpp). The kernels take the public options struct as the
// template parameter Options.
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

#include "../../box/format.hpp"
#include "../../core/config.hpp"
#include "../../core/parallel.hpp"
#include "../../core/tensor.hpp"
#include "box_grid.hpp"
#include "overlap.hpp"
#include "tournament.hpp"

CVK_BEGIN_NAMESPACE
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
/// Options: box_voting_options (voting.hpp).
template <class R, class RS, class A, class Options>
void box_voting_kernel(std::span<const voting_box<R>> kept,
                       std::span<const std::array<R, 4>> kept_rows, std::span<const RS> kept_scores,
                       std::span<const voting_box<R>> all, std::span<const A> all_scores,
                       const Options& options, tensor<R, 2>& out_boxes, tensor<RS, 1>& out_scores) {
  const R one = options.pixel_inclusive ? R(1) : R(0);
  const auto threshold = static_cast<R>(options.threshold);
  const auto k_count = static_cast<index_t>(kept.size());
  const auto n = static_cast<index_t>(all.size());
  // IoU >= threshold > 0 needs a positive intersection: the grid finds every such pair.
  const bool use_grid = threshold > R(0) && n > 0;
  voting_grid<R> grid(use_grid ? all : std::span<const voting_box<R>>{}, one);
  const bool grid_ok = use_grid;
  const auto beta = static_cast<A>(options.beta);
  using scoring_t = decltype(options.scoring);
  const scoring_t scoring = options.scoring;
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
              case scoring_t::temp_avg:
                extra += temperature_term(w, beta);
                break;
              case scoring_t::iou_avg:
                extra += w * static_cast<A>(o);
                iou_sum += static_cast<A>(o);
                break;
              case scoring_t::generalized_avg:
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
              case scoring_t::id:
                break;
              case scoring_t::temp_avg:
                score = static_cast<RS>(extra / count);
                break;
              case scoring_t::avg:
                score = static_cast<RS>(den / count);
                break;
              case scoring_t::iou_avg:
                if (iou_sum != A(0)) score = static_cast<RS>(extra / iou_sum);
                break;
              case scoring_t::generalized_avg:
                score = static_cast<RS>(std::pow(extra / count, A(1) / beta));
                break;
              case scoring_t::quasi_sum:
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
/// winner_tree's leftmost rule). For float and double an unsigned key: 0 for a dead entry,
/// all ones for NaN, score_key between (never 0 nor all ones for a number); other score types
/// (long double) keep (score, live) with that order written out.
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

template <class RS>
struct kl_rank_keys {
  static constexpr bool compact = std::is_same_v<RS, float> || std::is_same_v<RS, double>;
  using key = std::conditional_t<compact, radix_key_t<RS>, kl_rank<RS>>;
  using before = std::conditional_t<compact, larger_key, kl_before>;
  static key of(RS score, bool live) noexcept {
    if constexpr (compact) {
      if (!live) return key(0);
      return score != score ? static_cast<key>(~key(0)) : score_key(score);  // NOLINT
    } else {
      return {score, live};
    }
  }
};

/// The tournament over KL-Loss's array positions (tournament.hpp): the root holds the position
/// of the best live entry in argmax order.
template <class RS>
using position_tournament =
    winner_tree<typename kl_rank_keys<RS>::key, std::size_t, typename kl_rank_keys<RS>::before>;

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
/// Options: var_voting_options (voting.hpp).
template <class R, class RS, class Options>
void var_voting_kernel(std::span<const voting_box<R>> boxes,
                       std::span<const vote_weights<voting_acc_t<R>>> weights,
                       std::span<const RS> scores, const Options& options,
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
  const bool gaussian = options.decay == decltype(options.decay)::gaussian;

  std::vector<std::size_t> at(n);        // position → box
  std::vector<std::size_t> position(n);  // box → position
  for (std::size_t i = 0; i < n; ++i) {
    at[i] = i;
    position[i] = i;
  }
  // The ranking of the positions, and their scores (score[p]: the score at position p).
  position_tournament<RS> ranking(n);
  std::vector<RS> score(scores.begin(), scores.end());
  for (std::size_t p = 0; p < n; ++p) ranking.set(p, kl_rank_keys<RS>::of(score[p], true));
  ranking.build();
  const auto rank = [&](std::size_t p, RS s, bool live) {
    score[p] = s;
    ranking.update(p, kl_rank_keys<RS>::of(s, live));
  };

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
    const RS selected_score = score[from];
    if (from != cur) {
      const std::size_t other = at[cur];
      at[cur] = b;
      at[from] = other;
      position[b] = cur;
      position[other] = from;
      rank(from, score[cur], true);
    }
    rank(cur, selected_score, false);

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
      RS s = score[p];
      if (gaussian) {
        const auto ov = static_cast<AS>(nb.iou);
        s = static_cast<RS>(static_cast<AS>(s) * std::exp(-(ov * ov) / soft_sigma));
      } else if (static_cast<double>(nb.iou) > options.iou_threshold) {
        s = RS(0);
      }
      if (!(static_cast<double>(s) < options.score_threshold)) {
        rank(p, s, true);
        ++front;
        continue;
      }
      const std::size_t last = live - 1;
      const std::size_t moved = at[last];
      at[p] = moved;
      at[last] = nb.box;
      position[moved] = p;
      position[nb.box] = last;
      rank(p, score[last], true);
      rank(last, s, false);
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
CVK_END_NAMESPACE
