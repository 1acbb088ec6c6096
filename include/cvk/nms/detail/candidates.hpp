// cvk — computer-vision kernels, header-only C++20.
// What every NMS operator does before and after its kernel: rank the scores into candidates
// (nms_order), load the candidate boxes, group them by class, check the common arguments, and
// return indices. The operators' public headers include this instead of each other.
// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "../../box/format.hpp"
#include "../../core/config.hpp"
#include "../../core/errors.hpp"
#include "../../core/parallel.hpp"
#include "../../core/tensor.hpp"
#include "../../detail/checks.hpp"
#include "overlap.hpp"
#include "rank.hpp"

CVK_BEGIN_NAMESPACE
namespace detail {

/// Which boxes become candidates: scores > score_threshold (unset: every box), the first top_k
/// of them in processing order (unset: all).
struct candidate_filter {
  std::optional<double> score_threshold{};
  std::optional<index_t> top_k{};
};

/// Box indices in processing order: score descending, equal scores by ascending index (a stable
/// sort, as torchvision), NaN scores last in index order; then the score filter and top_k.
/// Float, double and integer scores are ranked by a radix sort (O(N)), others by std::sort.
/// Filter: any options struct with members score_threshold (std::optional<double>) and top_k
/// (std::optional<index_t>), e.g. candidate_filter.
template <class ScoreView, class Filter>
std::vector<index_t> nms_order(const ScoreView& scores, const Filter& options) {
  using S = typename ScoreView::value_type;
  const index_t n = scores.extent(0);
  std::vector<index_t> unordered;  // NaN scores
  const auto passes = [&](S s) {
    return !options.score_threshold || static_cast<double>(s) > *options.score_threshold;
  };
  const auto is_nan = [](S s) {
    if constexpr (std::is_floating_point_v<S>) {
      return std::isnan(s);
    } else {
      (void)s;
      return false;
    }
  };
  std::vector<index_t> order;
  if constexpr (has_radix_key<S>) {
    std::vector<index_t> ranked;  // box indices that enter the ranking
    ranked.reserve(static_cast<std::size_t>(n));
    for (index_t i = 0; i < n; ++i) {
      const S s = scores(i);
      if (is_nan(s)) {
        if (!options.score_threshold) unordered.push_back(i);  // NaN > t is false: filtered
      } else if (passes(s)) {
        ranked.push_back(i);
      }
    }
    order = radix_order<radix_key_t<S>>(
        ranked.size(), [&](std::size_t k) { return radix_key(scores(ranked[k])); });
    for (index_t& k : order) k = ranked[static_cast<std::size_t>(k)];
  } else {
    std::vector<std::pair<S, index_t>> ranked;
    ranked.reserve(static_cast<std::size_t>(n));
    for (index_t i = 0; i < n; ++i) {
      const S s = scores(i);
      if (is_nan(s)) {
        if (!options.score_threshold) unordered.push_back(i);
      } else if (passes(s)) {
        ranked.emplace_back(s, i);
      }
    }
    std::sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) {
      return a.first > b.first || (a.first == b.first && a.second < b.second);
    });
    order.reserve(ranked.size() + unordered.size());
    for (const auto& entry : ranked) order.push_back(entry.second);
  }
  order.insert(order.end(), unordered.begin(), unordered.end());
  if (options.top_k && static_cast<std::size_t>(*options.top_k) < order.size()) {
    order.resize(static_cast<std::size_t>(*options.top_k));
  }
  return order;
}

inline tensor<index_t, 1> to_index_tensor(const std::vector<index_t>& indices) {
  tensor<index_t, 1> result(static_cast<index_t>(indices.size()));
  std::copy(indices.begin(), indices.end(), result.begin());
  return result;
}

/// The class ids of a class-aware NMS: an integer tensor of N elements.
template <class ClassView>
void check_classes(const ClassView& classes, index_t n, const char* fn) {
  using C = typename ClassView::value_type;
  static_assert(has_radix_key<C> && std::is_integral_v<C>,
                "cvk: class ids of a class-aware NMS must be an integer tensor");
  if (classes.extent(0) != n) {
    CVK_THROW(shape_error, std::string(fn) + ": classes must have " + std::to_string(n) +
                               " elements (one per box), got " + std::to_string(classes.extent(0)));
  }
}

/// Ranked candidates grouped by class, each group in processing order: a stable radix sort of
/// the ranks by class id (one pass per 11 bits of the range of the ids). Position k of the
/// grouped order holds rank[k] (a position in `order`) and box[k] = order[rank[k]]; group g is
/// [start[g], start[g + 1]).
struct class_groups {
  std::vector<index_t> rank;
  std::vector<index_t> box;
  std::vector<std::size_t> start;

  template <class ClassView>
  class_groups(const ClassView& classes, const std::vector<index_t>& order)
      : rank(radix_order<radix_key_t<typename ClassView::value_type>>(
            order.size(), [&](std::size_t r) { return radix_key(classes(order[r])); })),
        box(order.size()),
        start{0} {
    using C = typename ClassView::value_type;
    C previous{};
    for (std::size_t k = 0; k < order.size(); ++k) {
      box[k] = order[static_cast<std::size_t>(rank[k])];
      const C current = classes(box[k]);
      if (k > 0 && current != previous) start.push_back(k);
      previous = current;
    }
    start.push_back(order.size());
  }

  [[nodiscard]] index_t groups() const noexcept { return static_cast<index_t>(start.size() - 1); }

  /// Runs `nms_group(first, last, kept)` for every group (kept: positions relative to first),
  /// groups spread over `threads` threads, and merges the survivors in rank order (the order
  /// of `order`), at most max_keep of them.
  template <class NmsGroup>
  [[nodiscard]] tensor<index_t, 1> merge(const std::vector<index_t>& order, std::size_t max_keep,
                                         int threads, NmsGroup nms_group) const {
    // kept_rank[r] != 0: the candidate of rank r survives in its class (disjoint per group).
    std::vector<unsigned char> kept_rank(order.size(), 0);
    parallel_for(
        0, groups(), 1,
        [&](index_t lo, index_t hi) {
          std::vector<index_t> kept;
          for (index_t g = lo; g < hi; ++g) {
            const std::size_t first = start[static_cast<std::size_t>(g)];
            kept.clear();
            nms_group(first, start[static_cast<std::size_t>(g) + 1], kept);
            for (const index_t k : kept) {
              kept_rank[static_cast<std::size_t>(rank[first + static_cast<std::size_t>(k)])] = 1;
            }
          }
        },
        threads);
    std::size_t survivors = 0;
    for (const unsigned char k : kept_rank) survivors += k;
    tensor<index_t, 1> result(static_cast<index_t>(std::min(survivors, max_keep)));
    index_t* out = result.data();
    for (std::size_t r = 0, written = 0; r < order.size() && written < max_keep; ++r) {
      if (kept_rank[r] != 0) {
        *out++ = order[r];
        ++written;
      }
    }
    return result;
  }
};

// ---------------------------------------------------------------------------------------------
// Argument checks shared by the matrix family (messages: "fn: name must be ..., got ...").

/// "fn: name must be a number, got nan" unless value is a number.
inline void expect_number(double value, const char* fn, const char* name) {
  if (std::isnan(value)) {
    CVK_THROW(invalid_argument, std::string(fn) + ": " + name + " must be a number, got nan");
  }
}

inline void expect_optional_number(const std::optional<double>& value, const char* fn,
                                   const char* name) {
  if (value) expect_number(*value, fn, name);
}

inline void expect_non_negative(const std::optional<index_t>& value, const char* fn,
                                const char* name) {
  if (value && *value < 0) {
    CVK_THROW(invalid_argument,
              std::string(fn) + ": " + name + " must be >= 0, got " + std::to_string(*value));
  }
}

/// Throws unless `value` is a number >= lo (or > lo when `strict`), finite when `finite`:
/// "fn: name must be a finite number > 0, got -1".
inline void expect_at_least(double value, double lo, bool strict, bool finite, const char* fn,
                            const char* name) {
  const bool ok = strict ? value > lo : value >= lo;
  if (!ok || (finite && !std::isfinite(value))) {
    CVK_THROW(invalid_argument, std::string(fn) + ": " + name + " must be a " +
                                    (finite ? "finite " : "") + "number " + (strict ? ">" : ">=") +
                                    " " + number_string(lo) + ", got " + number_string(value));
  }
}

/// Boxes N×Columns (4: corners, 5: rotated boxes) and N scores; returns N.
template <index_t Columns = 4, class BoxView, class ScoreView>
index_t check_boxes_and_scores(const BoxView& boxes, const ScoreView& scores, const char* fn) {
  static_assert(Columns == 4 || Columns == 5, "cvk: boxes have 4 or 5 columns");
  expect_shape(boxes, {any_extent, Columns}, fn, "boxes", Columns == 4 ? "N×4" : "N×5");
  const index_t n = boxes.extent(0);
  // every ranking allocates N indices first (nms_order)
  check_allocation_size(n, sizeof(index_t), fn, "boxes", boxes);
  if (scores.extent(0) != n) {
    CVK_THROW(shape_error, std::string(fn) + ": scores must have " + std::to_string(n) +
                               " elements (one per box), got " + std::to_string(scores.extent(0)));
  }
  return n;
}

/// Orders `entries` (rank, score) by score descending, NaN last, equal scores by rank: stable
/// radix sorts (by rank when the entries are not in rank order yet, then by score).
template <class R>
void sort_by_score(std::vector<std::pair<std::size_t, R>>& entries, bool in_rank_order) {
  const std::size_t n = entries.size();
  std::vector<std::pair<std::size_t, R>> sorted;
  sorted.reserve(n);
  if (!in_rank_order) {
    const std::vector<index_t> by_rank = radix_order<std::uint64_t>(
        n, [&](std::size_t k) { return static_cast<std::uint64_t>(entries[k].first); });
    for (const index_t k : by_rank) sorted.push_back(entries[static_cast<std::size_t>(k)]);
    entries.swap(sorted);
    sorted.clear();
  }
  std::vector<std::size_t> numbers;  // positions of the non-NaN scores
  numbers.reserve(n);
  for (std::size_t k = 0; k < n; ++k) {
    if (!std::isnan(entries[k].second)) numbers.push_back(k);
  }
  const std::vector<index_t> by_score = radix_order<radix_key_t<R>>(
      numbers.size(), [&](std::size_t k) { return radix_key(entries[numbers[k]].second); });
  for (const index_t k : by_score) {
    sorted.push_back(entries[numbers[static_cast<std::size_t>(k)]]);
  }
  for (std::size_t k = 0; k < n; ++k) {
    if (std::isnan(entries[k].second)) sorted.push_back(entries[k]);
  }
  entries.swap(sorted);
}

}  // namespace detail

CVK_KERNEL_BEGIN
namespace detail {

/// NMS candidates (torchvision's corners and unclamped area) of the boxes listed in `order`.
template <class R, class BoxView>
std::vector<nms_box<R>> gather_candidates(const BoxView& boxes, const std::vector<index_t>& order,
                                          box_format format) {
  std::vector<nms_box<R>> result(order.size());
  for (std::size_t k = 0; k < order.size(); ++k) {
    const auto b = to_xyxy(load_box<R>(boxes, order[k]), format, box_convention{});
    result[k] = make_nms_box(b[0], b[1], b[2], b[3]);
  }
  return result;
}

}  // namespace detail
CVK_KERNEL_END
CVK_END_NAMESPACE
