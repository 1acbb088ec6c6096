// cvk — computer-vision kernels, header-only C++20.
// soft_nms's kernel: the decay rules of mmcv, OpenCV and TensorFlow in the box computation type,
// the selection loop over a block_winner_tree of score keys (tournament.hpp), and the uniform
// grid that rescores only the boxes overlapping the selected one.
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

#include "../../core/config.hpp"
#include "box_grid.hpp"
#include "greedy.hpp"
#include "overlap.hpp"
#include "rank.hpp"
#include "tournament.hpp"

CVK_BEGIN_NAMESPACE
CVK_KERNEL_BEGIN
namespace detail {

/// NaN test written as a comparison (inlined into CVK_KERNEL code, unlike std::isnan).
template <class T>
constexpr bool soft_is_nan(T x) noexcept {
  return x != x;  // NOLINT(misc-redundant-expression)
}

/// std::exp of float, double or long double, as a builtin (GCC does not inline the <cmath>
/// wrappers into CVK_KERNEL code): the same C library functions expf / exp / expl.
template <class R>
inline R soft_exp(R x) noexcept {
  if constexpr (std::is_same_v<R, float>) {
    return __builtin_expf(x);
  } else if constexpr (std::is_same_v<R, double>) {
    return __builtin_exp(x);
  } else {
    return __builtin_expl(x);
  }
}

/// What one selection does to another box: multiply its score by `factor`, or remove it.
template <class R>
struct soft_factor {
  R factor;
  bool removed;
};

/// The decay rule of a convention and method, in the box computation type R.
/// C, M: a soft_nms_convention and a soft_nms_method (soft.hpp), template arguments of their own
/// type so that this header does not need the public one.
template <auto C, auto M, class R>
struct soft_rule {
  R threshold{};
  R sigma{};                   // mmcv, OpenCV: the divisor of -o²
  R scale{};                   // TensorFlow: -0.5 / sigma, the factor of o·o
  bool propagate_nan = false;  // soft_nms_options::propagate_nan

  soft_factor<R> operator()(R ovr) const noexcept {
    // cvk's NaN policy: a pair whose IoU is NaN (a NaN coordinate, or a zero union) does nothing.
    if (!propagate_nan && soft_is_nan(ovr)) return {R(1), false};
    if constexpr (C == decltype(C)::tensorflow) {
      if (ovr > threshold) return {R(1), true};
      if constexpr (M == decltype(M)::gaussian) {
        const R a = scale * ovr;  // TensorFlow: exp(scale * sim * sim)
        const R b = a * ovr;
        return {soft_exp(b), false};
      } else {
        return {R(1), false};
      }
    } else if constexpr (M == decltype(M)::naive) {
      return {ovr >= threshold ? R(0) : R(1), false};
    } else if constexpr (M == decltype(M)::linear) {
      const bool decays = C == decltype(C)::mmcv ? ovr >= threshold : ovr > threshold;
      return {decays ? R(1) - ovr : R(1), false};
    } else {
      const R square = ovr * ovr;  // exp(-(o * o) / sigma)
      const R negated = -square;
      return {soft_exp(negated / sigma), false};
    }
  }

  /// Whether a box with (updated) score `s` leaves the candidates.
  template <class S>
  static bool drops(S s, S min_score) noexcept {
    if constexpr (C == decltype(C)::tensorflow) {
      return !(s > min_score);
    } else {
      return s < min_score;
    }
  }

  /// True when a box that does not intersect the selected one keeps its score exactly: the
  /// factor at IoU +0 is exactly 1 and nothing is removed. Then only overlapping boxes need an
  /// update (multiplying by exactly 1 is exact). False e.g. for naive with a threshold <= 0.
  [[nodiscard]] bool identity_at_zero() const noexcept {
    const soft_factor<R> f = (*this)(R(0));
    return !f.removed && f.factor == R(1);
  }
};

/// The score times a factor: the product in the wider of the two types, stored as S (mmcv:
/// `sc[pos] *= weight` in float).
template <class S, class R>
inline S soft_scaled(S score, R factor) noexcept {
  using C = std::common_type_t<S, R>;
  return static_cast<S>(static_cast<C>(score) * static_cast<C>(factor));
}

/// The input size below which scanning every remaining box is as fast as the grid.
inline constexpr std::size_t soft_grid_min_boxes = 64;

/// The boxes that take part (finite, positive width and height) in the shared grid
/// (box_grid.hpp), as coordinate columns plus the box index per cell. Two such boxes with a
/// positive intersection share a cell, so a query meets every box that intersects the query
/// box. Entries of removed boxes are compacted away as queries meet them.
template <class R, class I>
class soft_grid {
 public:
  /// Builds the grid of the boxes with part[i] != 0; false when there are none.
  bool build(std::span<const nms_box<R>> boxes, const std::vector<unsigned char>& part) {
    if (!grid_.build(boxes.size(), [&](std::size_t i, grid_bounds& g) {
          if (part[i] == 0) return false;
          g = bounds(boxes[i]);
          return true;
        })) {
      return false;
    }
    const std::vector<std::size_t>& fill = grid_.cell_start();
    std::size_t longest = 0;
    for (std::size_t c = 0; c + 1 < fill.size(); ++c)
      longest = std::max(longest, fill[c + 1] - fill[c]);
    const std::size_t total = grid_.slots();
    x1_.resize(total);
    y1_.resize(total);
    x2_.resize(total);
    y2_.resize(total);
    area_.resize(total);
    index_.resize(total);
    hits_.resize(longest);
    positions_.resize(longest);
    start_.assign(fill.begin(), fill.end() - 1);
    end_ = start_;
    for (std::size_t i = 0; i < boxes.size(); ++i) {
      if (part[i] == 0) continue;
      const nms_box<R>& b = boxes[i];
      grid_.for_each_cell(grid_.span(i), [&](std::size_t c, index_t, index_t) {
        const std::size_t k = end_[c]++;
        x1_[k] = b.x1;
        y1_[k] = b.y1;
        x2_[k] = b.x2;
        y2_[k] = b.y2;
        area_[k] = b.area;
        index_[k] = static_cast<I>(i);
        return false;
      });
    }
    return true;
  }

  /// Calls visit(i, box i) for the stored boxes with alive[i] == 1 that intersect `b` (positive
  /// intersection; `b` takes part), once per cell they share with `b`. Entries whose
  /// alive[i] != 1 are removed when met.
  template <class Visit>
  void query(const nms_box<R>& b, const std::vector<unsigned char>& alive, Visit&& visit) {
    grid_.for_each_query_cell(bounds(b), [&](std::size_t c, const grid_span&, index_t, index_t) {
      visit_list(c, b, alive, visit);
      return false;
    });
  }

 private:
  static grid_bounds bounds(const nms_box<R>& b) noexcept {
    return {static_cast<double>(b.x1), static_cast<double>(b.y1), static_cast<double>(b.x2),
            static_cast<double>(b.y2)};
  }

  /// Visits the live entries of list c that intersect `b`. The intersection test runs over the
  /// whole list first (vectorized); the hits are then visited from the back, so that a removed
  /// entry can take the list's last entry, which has been looked at already.
  template <class Visit>
  void visit_list(std::size_t c, const nms_box<R>& b, const std::vector<unsigned char>& alive,
                  Visit& visit) {
    const std::size_t first = start_[c];
    std::size_t last = end_[c];
    const std::size_t count = last - first;
    if (count == 0) return;
    count_pair_tests(count);
    const R* __restrict x1 = x1_.data() + first;
    const R* __restrict y1 = y1_.data() + first;
    const R* __restrict x2 = x2_.data() + first;
    const R* __restrict y2 = y2_.data() + first;
    hit_t* __restrict hit = hits_.data();
    const R qx1 = b.x1;
    const R qy1 = b.y1;
    const R qx2 = b.x2;
    const R qy2 = b.y2;
    // Positive intersection: exactly when soft_iou computes w > 0 and h > 0 (for finite values,
    // min(x2) - max(x1) > 0 iff min(x2) > max(x1)); otherwise the IoU is exactly +0.
    for (std::size_t k = 0; k < count; ++k) {
      hit[k] = static_cast<hit_t>((x1[k] < qx2) & (qx1 < x2[k]) & (y1[k] < qy2) & (qy1 < y2[k]));
    }
    // The hit positions, branch-free (the test is true for about one entry in four).
    std::size_t hits = 0;
    I* __restrict position = positions_.data();
    for (std::size_t k = 0; k < count; ++k) {
      position[hits] = static_cast<I>(k);
      hits += static_cast<std::size_t>(hit[k]);
    }
    while (hits-- > 0) {
      const std::size_t at = first + position[hits];
      const I i = index_[at];
      if (alive[i] != 1) {
        --last;
        x1_[at] = x1_[last];
        y1_[at] = y1_[last];
        x2_[at] = x2_[last];
        y2_[at] = y2_[last];
        area_[at] = area_[last];
        index_[at] = index_[last];
        continue;
      }
      visit(static_cast<std::size_t>(i), nms_box<R>{x1_[at], y1_[at], x2_[at], y2_[at], area_[at]});
    }
    end_[c] = last;
  }

  box_grid grid_;
  std::vector<std::size_t> start_;
  std::vector<std::size_t> end_;  // one past the last live entry of each list
  std::vector<R> x1_, y1_, x2_, y2_, area_;
  std::vector<I> index_;
  // scratch: the intersection test of one list, in integers as wide as R (vectorizes)
  using hit_t = std::conditional_t<sizeof(R) == 4, std::uint32_t, std::uint64_t>;
  std::vector<hit_t> hits_;
  std::vector<I> positions_;  // scratch: the positions of the hits
};

/// Soft-NMS selection on boxes (xyxy candidates) and scores (updated in place). Appends the
/// selected boxes and their scores at selection, at most `max_keep`. I: the index type of the
/// internal tables (32 bits when N allows).
///
/// Each round picks the maximum — mmcv: the first maximum in mmcv's array order, which its
/// swaps permute (tracked here: `box_at` / `pos_of`), a NaN score winning only at the first
/// remaining position; OpenCV: the maximum, equal scores by lower index, a NaN score winning
/// only at the first position of OpenCV's array (permuted by its selection swaps); TensorFlow:
/// the maximum, equal scores by lower index, NaN scores never enter — then rescores every
/// remaining box (each box's factors multiply in selection order, as in the peers' loops) and
/// drops those below min_score. A block_winner_tree (tournament.hpp) finds the maximum (mmcv: over
/// positions, so ties follow mmcv's order; others: over box indices). When `use_grid` and the rule
/// leaves non-intersecting boxes unchanged, a round rescores only the boxes intersecting the
/// selected one (grid query) and the boxes that do not take part in the grid; mmcv's first round
/// rescores all (it drops every low initial score).
template <auto C, class I, class Rule, class R, class S>
void soft_nms_select(std::span<const nms_box<R>> boxes, std::vector<S>& score, const Rule& rule,
                     S min_score, std::size_t max_keep, bool use_grid, std::vector<index_t>& picked,
                     std::vector<S>& picked_score) {
  using K = radix_key_t<S>;
  constexpr bool mmcv = C == decltype(C)::mmcv;
  constexpr bool positions = C != decltype(C)::tensorflow;
  const std::size_t n = boxes.size();
  if (n == 0 || max_keep == 0) return;
  // state: 1 candidate, 0 selected or dropped, 2 dropped in this round (mmcv, until its
  // position is resolved).
  std::vector<unsigned char> state(n, 1);
  if constexpr (!mmcv) {
    for (std::size_t i = 0; i < n; ++i) {
      if (Rule::drops(score[i], min_score)) state[i] = 0;
    }
  }
  std::vector<I> box_at;  // the peers' array order (mmcv and OpenCV)
  std::vector<I> pos_of;
  if constexpr (positions) {
    box_at.resize(n);
    std::iota(box_at.begin(), box_at.end(), I{0});
    pos_of = box_at;
  }
  block_winner_tree<K, I> tree(n);  // mmcv: slot = position; others: slot = box index
  for (std::size_t i = 0; i < n; ++i) tree.set(i, state[i] == 1 ? score_key(score[i]) : K(0));
  tree.build();

  // Candidates for rescoring: a grid over the boxes that take part, plus the others.
  // A box outside the grid has IoU 0, -0 or NaN with every box: it changes no score, and no
  // selection changes its score, unless NaN propagates (then it is rescored every round).
  std::vector<unsigned char> part;
  std::vector<I> others;  // boxes outside the grid, rescored every round when NaN propagates
  soft_grid<R, I> grid;
  bool grid_ready = false;
  const bool sparse = use_grid && rule.identity_at_zero();
  if (sparse) {
    part.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
      part[i] = takes_part(boxes[i]) ? 1 : 0;
      if (part[i] == 0 && rule.propagate_nan) others.push_back(static_cast<I>(i));
    }
    grid_ready = grid.build(boxes, part);
  }
  std::vector<I> remaining;  // every candidate (compacted as it is scanned)
  bool remaining_ready = false;
  const auto scan = [&](std::vector<I>& list, auto&& visit) {
    count_pair_tests(list.size());
    std::size_t kept = 0;
    for (std::size_t k = 0; k < list.size(); ++k) {
      const std::size_t i = list[k];
      if (state[i] != 1) continue;
      list[kept++] = static_cast<I>(i);
      visit(i, boxes[i]);
    }
    list.resize(kept);
  };
  std::vector<I> stamp;
  if (grid_ready) stamp.assign(n, I{0});
  I round = 0;
  std::size_t end = n;  // mmcv: positions [picked, end) hold the candidates
  std::vector<I> dropped;

  while (picked.size() < max_keep) {
    // ---- select
    std::size_t s = 0;
    if constexpr (mmcv) {
      const std::size_t i = picked.size();
      if (i >= end) break;
      std::size_t at = i;
      if (!soft_is_nan(score[box_at[i]])) at = tree.top();
      s = box_at[at];
      if (at != i) {  // mmcv swaps the maximum to the front
        const I moved = box_at[i];
        box_at[at] = moved;
        pos_of[moved] = static_cast<I>(at);
        box_at[i] = static_cast<I>(s);
        pos_of[s] = static_cast<I>(i);
        tree.update(at, score_key(score[moved]));
      }
      tree.update(i, K(0));
    } else {
      const std::size_t first = picked.size();
      std::size_t at_first = n;
      if constexpr (positions) at_first = first < n ? std::size_t{box_at[first]} : n;
      if (positions && at_first < n && state[at_first] == 1 && soft_is_nan(score[at_first])) {
        s = at_first;
      } else {
        s = tree.top();
        if (tree.key(s) == K(0)) break;
      }
      tree.update(s, K(0));
      if constexpr (positions) {  // OpenCV swaps the maximum to the front
        const std::size_t at = pos_of[s];
        box_at[at] = static_cast<I>(at_first);
        pos_of[at_first] = static_cast<I>(at);
        box_at[first] = static_cast<I>(s);
        pos_of[s] = static_cast<I>(first);
      }
    }
    state[s] = 0;
    picked.push_back(static_cast<index_t>(s));
    picked_score.push_back(score[s]);
    if (picked.size() == max_keep) break;

    // ---- rescore
    const nms_box<R>& selected = boxes[s];
    const auto rescore = [&](std::size_t c, const nms_box<R>& other) {
      const soft_factor<R> f = rule(torchvision_iou(selected, other));
      const S old = score[c];
      const S now = f.removed ? old : soft_scaled(old, f.factor);
      score[c] = now;
      if (f.removed || Rule::drops(now, min_score)) {
        if constexpr (mmcv) {
          state[c] = 2;
          dropped.push_back(static_cast<I>(c));
        } else {
          state[c] = 0;
          tree.update(c, K(0));
        }
        return;
      }
      const K key = score_key(now);
      std::size_t slot = c;
      if constexpr (mmcv) slot = pos_of[c];
      if (key != tree.key(slot)) tree.update(slot, key);
    };
    const bool everything =
        !sparse || (rule.propagate_nan && part[s] == 0) || (mmcv && picked.size() == 1);
    if (everything) {
      if (!remaining_ready) {  // built on first use: the grid path may never need it
        remaining.resize(n);
        std::iota(remaining.begin(), remaining.end(), I{0});
        remaining_ready = true;
      }
      scan(remaining, rescore);
    } else {
      if (grid_ready && part[s] != 0) {
        ++round;
        grid.query(selected, state, [&](std::size_t c, const nms_box<R>& other) {
          if (stamp[c] == round) return;
          stamp[c] = round;
          rescore(c, other);
        });
      }
      scan(others, rescore);
    }

    // ---- mmcv: a dropped box at position p is replaced by the last candidate, which is then
    // examined at p (and dropped in turn if it is dropped too): resolve in position order.
    if constexpr (mmcv) {
      if (dropped.size() > 1) {
        std::sort(dropped.begin(), dropped.end(), [&](I a, I b) { return pos_of[a] < pos_of[b]; });
      }
      for (const I d : dropped) {
        if (state[d] != 2) continue;  // already removed as a last candidate
        const std::size_t p = pos_of[d];
        while (true) {
          state[box_at[p]] = 0;
          const I last = box_at[end - 1];
          box_at[p] = last;
          pos_of[last] = static_cast<I>(p);
          --end;
          tree.update(end, K(0));
          if (p >= end) break;
          if (state[last] != 2) {
            tree.update(p, score_key(score[last]));
            break;
          }
        }
      }
      dropped.clear();
    }
  }
}

}  // namespace detail
CVK_KERNEL_END
CVK_END_NAMESPACE
