// cvk — computer-vision kernels, header-only C++20.
// The write-into forms of the NMS operators: the selection copied into the caller's buffers,
// the count returned.
// SPDX-License-Identifier: MIT
#pragma once

#include <string>
#include <type_traits>
#include <utility>

#include "../../core/config.hpp"
#include "../../core/tensor.hpp"
#include "../../detail/checks.hpp"
#include "../result.hpp"

CVK_BEGIN_NAMESPACE
namespace detail {

/// The mutable rank-1 view of an output buffer of `Element`s that must hold `count` values.
template <class Element, class Out>
auto selection_buffer(Out&& out, index_t count, const char* fn, const char* what) {
  auto v = checked_view<1>(std::forward<Out>(out), fn, what);
  using E = typename decltype(v)::element_type;
  static_assert(!std::is_const_v<E>, "cvk: an NMS output buffer must be a mutable tensor");
  static_assert(std::is_same_v<E, Element>,
                "cvk: the NMS write-into forms write cvk::index_t indices and scores of the "
                "operator's score type (the value form's result types)");
  if (v.extent(0) < count) {
    CVK_THROW(shape_error, std::string(fn) + ": " + what + " holds " + v.shape_string() +
                               " values, but " + std::to_string(count) +
                               " boxes were selected (a buffer of N, the number of boxes, always "
                               "suffices)");
  }
  return v;
}

/// Copies the selected indices into `out`; returns their count.
template <class Out>
index_t write_selection(const tensor<index_t, 1>& selected, Out&& out, const char* fn) {
  const index_t k = selected.size();
  auto v = selection_buffer<index_t>(std::forward<Out>(out), k, fn, "indices");
  for (index_t i = 0; i < k; ++i) v(i) = selected(i);
  return k;
}

/// Copies the selected indices and scores into `indices` and `scores`; returns their count.
template <class S, class OutIndices, class OutScores>
index_t write_selection(const scored_indices<S>& selected, OutIndices&& indices, OutScores&& scores,
                        const char* fn) {
  const index_t k = selected.indices.size();
  auto vi = selection_buffer<index_t>(std::forward<OutIndices>(indices), k, fn, "indices");
  auto vs = selection_buffer<S>(std::forward<OutScores>(scores), k, fn, "scores");
  for (index_t i = 0; i < k; ++i) {
    vi(i) = selected.indices(i);
    vs(i) = selected.scores(i);
  }
  return k;
}

}  // namespace detail
CVK_END_NAMESPACE
