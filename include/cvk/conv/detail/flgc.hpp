// cvk — computer-vision kernels, header-only C++20.
// FLGC's algorithm (Wang et al., "Fully Learnable Group Convolution", CVPR 2019): the logits
// checked and binarised, the connectivity mask M = T·Sᵀ applied to a weight, the mask's gradient
// carried back to the logits through the straight-through estimator and the softmax, the
// counting sort that turns the assignments into ragged groups, and the channel permutations of
// neighbouring convolutions that fold those groups' permutations away.
// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include "../../core/config.hpp"
#include "../../core/errors.hpp"
#include "../../core/parallel.hpp"
#include "../../core/strided_view.hpp"
#include "../../detail/checks.hpp"
#include "geometry.hpp"

CVK_BEGIN_NAMESPACE

/// The straight-through estimator that carries the gradient of the one-hot rows back to the
/// softmax probabilities: `masked` passes it at each row's argmax entry only (FLGC's reference
/// implementation), `identity` passes every entry unchanged.
enum class ste { masked, identity };

namespace detail {

/// "3×4" of a rank-2 view.
template <class T>
std::string matrix_text(const strided_view<T, 2>& v) {
  return shape_string(v.extents(), 2);
}

/// Checks one logits matrix: `rows` rows (any when rows < 0), at least one column, every value
/// finite. `pattern` names the rows ("I×G", "O×G").
template <class T>
void check_flgc_logits(const strided_view<const T, 2>& l, index_t rows, const char* pattern,
                       const char* rows_source, const char* fn, const char* what) {
  if ((rows >= 0 && l.extent(0) != rows) || l.extent(1) < 1) {
    std::string want = std::string(pattern);
    if (rows >= 0) want += " = " + std::to_string(rows) + "×G (" + rows_source + ")";
    CVK_THROW(shape_error, std::string(fn) + ": " + what + " must be " + want +
                               " with G >= 1 groups, got " + matrix_text(l));
  }
  for (index_t r = 0; r < l.extent(0); ++r) {
    for (index_t j = 0; j < l.extent(1); ++j) {
      const T v = l(r, j);
      if (!std::isfinite(v)) {
        CVK_THROW(invalid_argument, std::string(fn) + ": " + what + " must be finite, got " +
                                        number_string(static_cast<double>(v)) + " at row " +
                                        std::to_string(r) + ", column " + std::to_string(j) + " (" +
                                        what + " " + matrix_text(l) + ")");
      }
    }
  }
}

/// Both logits matrices have the same number of groups.
template <class T>
void check_same_groups(const strided_view<const T, 2>& in, const strided_view<const T, 2>& out,
                       const char* fn) {
  if (in.extent(1) != out.extent(1)) {
    CVK_THROW(shape_error, std::string(fn) +
                               ": in_logits and out_logits must have the same number of columns "
                               "(groups G), got in_logits " +
                               matrix_text(in) + " and out_logits " + matrix_text(out));
  }
}

/// The group of each row: the column of its largest logit, the lowest column on a tie. The
/// softmax is increasing, so this is the argmax of the exact softmax row; taking it on the
/// logits avoids the ties that rounding exp() can create between different logits.
template <class T>
std::vector<index_t> flgc_row_groups(const strided_view<const T, 2>& l) {
  std::vector<index_t> group(static_cast<std::size_t>(l.extent(0)), 0);
  for (index_t r = 0; r < l.extent(0); ++r) {
    index_t best = 0;
    for (index_t j = 1; j < l.extent(1); ++j) {
      if (l(r, j) > l(r, best)) best = j;
    }
    group[static_cast<std::size_t>(r)] = best;
  }
  return group;
}

/// Row r's softmax into p (G values): exp(l − max) / Σ exp(l − max), summed in column order.
template <class T>
void flgc_softmax_row(const strided_view<const T, 2>& l, index_t r, T* p) {
  const index_t cols = l.extent(1);
  T top = l(r, 0);
  for (index_t j = 1; j < cols; ++j) top = std::max(top, l(r, j));
  T sum = 0;
  for (index_t j = 0; j < cols; ++j) {
    p[j] = std::exp(l(r, j) - top);
    sum += p[j];
  }
  for (index_t j = 0; j < cols; ++j) p[j] /= sum;
}

/// W ⊙ M into `out` (both (o, i, kh, kw)-ordered): the weight where filter o and channel i share
/// a group, exactly 0 elsewhere (a select, so a non-finite weight outside its group gives 0, not
/// inf·0 = NaN: the masked conv then equals the compiled ragged conv, which never reads it).
template <class T>
void flgc_apply_mask(const strided_view<const T, 4>& w, const std::vector<index_t>& in_group,
                     const std::vector<index_t>& out_group, const strided_view<T, 4>& out,
                     int threads) {
  const index_t kh = w.extent(2), kw = w.extent(3);
  parallel_for(
      0, w.extent(0), 16,
      [&](index_t lo, index_t hi) {
        for (index_t o = lo; o < hi; ++o) {
          const index_t go = out_group[static_cast<std::size_t>(o)];
          for (index_t i = 0; i < w.extent(1); ++i) {
            const bool keep = in_group[static_cast<std::size_t>(i)] == go;
            for (index_t y = 0; y < kh; ++y) {
              for (index_t x = 0; x < kw; ++x) out(o, i, y, x) = keep ? w(o, i, y, x) : T(0);
            }
          }
        }
      },
      threads);
}

/// dM[o·I + i] = Σ_{kh, kw} dW'[o, i, kh, kw] · W[o, i, kh, kw] (row-major kernel order), the
/// gradient of the mask entry M[o, i] when the conv's weight is W ⊙ M.
template <class T>
std::vector<T> flgc_mask_gradient(const strided_view<const T, 4>& w,
                                  const strided_view<const T, 4>& dw, int threads, const char* fn) {
  const index_t outs = w.extent(0), ins = w.extent(1);
  std::vector<T> dm = checked_vector<T>(outs * ins, fn, "the mask gradient (O×I)", w);
  parallel_for(
      0, outs, 16,
      [&](index_t lo, index_t hi) {
        for (index_t o = lo; o < hi; ++o) {
          for (index_t i = 0; i < ins; ++i) {
            T sum = 0;
            for (index_t y = 0; y < w.extent(2); ++y) {
              for (index_t x = 0; x < w.extent(3); ++x) sum += dw(o, i, y, x) * w(o, i, y, x);
            }
            dm[static_cast<std::size_t>(o * ins + i)] = sum;
          }
        }
      },
      threads);
  return dm;
}

/// The logits' gradient from the gradient of their one-hot rows `d_onehot` (rows×G, row-major):
/// through the straight-through estimator, g = d_onehot (identity) or d_onehot at the row's group
/// and 0 elsewhere (masked), then the softmax Jacobian, dlogit_j = p_j·(g_j − Σ_k g_k·p_k).
template <class T>
void flgc_logit_gradient(const strided_view<const T, 2>& logits, const std::vector<index_t>& group,
                         const std::vector<T>& d_onehot, ste estimator,
                         const strided_view<T, 2>& out) {
  const index_t cols = logits.extent(1);
  std::vector<T> p(static_cast<std::size_t>(cols));
  std::vector<T> g(static_cast<std::size_t>(cols));
  for (index_t r = 0; r < logits.extent(0); ++r) {
    flgc_softmax_row(logits, r, p.data());
    const index_t chosen = group[static_cast<std::size_t>(r)];
    for (index_t j = 0; j < cols; ++j) {
      const T d = d_onehot[static_cast<std::size_t>(r * cols + j)];
      g[static_cast<std::size_t>(j)] = estimator == ste::identity || j == chosen ? d : T(0);
    }
    T dot = 0;
    for (index_t j = 0; j < cols; ++j) {
      dot += g[static_cast<std::size_t>(j)] * p[static_cast<std::size_t>(j)];
    }
    for (index_t j = 0; j < cols; ++j) {
      out(r, j) = p[static_cast<std::size_t>(j)] * (g[static_cast<std::size_t>(j)] - dot);
    }
  }
}

/// dT̂ = dM·Ŝ (O×G) or, transposed, dŜ = dMᵀ·T̂ (I×G): the gradient of one one-hot matrix,
/// i.e. per row of that matrix the sum of its dM entries over the other side's rows in each
/// group, in ascending order. `rows_are_filters`: the result is dT̂ (rows = filters).
template <class T>
std::vector<T> flgc_onehot_gradient(const std::vector<T>& dm, index_t outs, index_t ins,
                                    const std::vector<index_t>& other_group, index_t groups,
                                    bool rows_are_filters) {
  const index_t rows = rows_are_filters ? outs : ins;
  const index_t others = rows_are_filters ? ins : outs;
  std::vector<T> d(static_cast<std::size_t>(rows * groups), T(0));
  for (index_t r = 0; r < rows; ++r) {
    for (index_t k = 0; k < others; ++k) {
      const index_t at = rows_are_filters ? r * ins + k : k * ins + r;
      d[static_cast<std::size_t>(r * groups + other_group[static_cast<std::size_t>(k)])] +=
          dm[static_cast<std::size_t>(at)];
    }
  }
  return d;
}

/// One side of flgc_compile: the offsets (G + 1 values) and the stable sort of the rows by group
/// (empty when it is the identity).
struct flgc_sorted_side {
  std::vector<index_t> offsets;
  std::vector<index_t> permutation;
};

inline flgc_sorted_side flgc_sort_by_group(const std::vector<index_t>& group, index_t groups) {
  flgc_sorted_side s;
  s.offsets.assign(static_cast<std::size_t>(groups) + 1, 0);
  for (const index_t g : group) ++s.offsets[static_cast<std::size_t>(g) + 1];
  for (std::size_t g = 0; g < static_cast<std::size_t>(groups); ++g) {
    s.offsets[g + 1] += s.offsets[g];
  }
  std::vector<index_t> next(s.offsets.begin(), s.offsets.end() - 1);
  s.permutation.assign(group.size(), 0);
  bool identity = true;
  for (std::size_t r = 0; r < group.size(); ++r) {
    const auto slot = static_cast<std::size_t>(next[static_cast<std::size_t>(group[r])]++);
    s.permutation[slot] = static_cast<index_t>(r);
    identity = identity && slot == r;
  }
  if (identity) s.permutation.clear();
  return s;
}

/// Checks that `p` is empty (the identity) or a permutation of 0 … count−1.
inline void check_channel_permutation(const std::vector<index_t>& p, index_t count, const char* fn,
                                      const char* what) {
  if (p.empty()) return;
  const auto fail = [&](const std::string& why) {
    CVK_THROW(invalid_argument, std::string(fn) + ": " + what +
                                    " must be empty (the identity) or a permutation of the " +
                                    std::to_string(count) + " channels 0 … " +
                                    std::to_string(count - 1) + ", got " + why);
  };
  if (static_cast<index_t>(p.size()) != count) fail(std::to_string(p.size()) + " values");
  std::vector<char> seen(p.size(), 0);
  for (std::size_t j = 0; j < p.size(); ++j) {
    if (p[j] < 0 || p[j] >= count) {
      fail("the value " + std::to_string(p[j]) + " at position " + std::to_string(j));
    }
    if (seen[static_cast<std::size_t>(p[j])]++ != 0) {
      fail("the value " + std::to_string(p[j]) + " twice (at position " + std::to_string(j) + ")");
    }
  }
}

/// How a conv's channels move when its input channels are re-ordered by `perm` (new input j =
/// old input perm[j]). Groups of `in_per_group` consecutive input channels must go to groups:
/// new input group b reads old group block[b] (perm maps the block onto it, in any order inside).
/// Returns block (empty when perm is not of that form, `bad` then the first offending position).
inline std::vector<index_t> group_block_map(const std::vector<index_t>& perm, index_t groups,
                                            index_t in_per_group, std::size_t& bad) {
  std::vector<index_t> block(static_cast<std::size_t>(groups), 0);
  for (std::size_t j = 0; j < perm.size(); ++j) {
    const auto b = static_cast<std::size_t>(static_cast<index_t>(j) / in_per_group);
    const index_t old_block = perm[j] / in_per_group;
    if (static_cast<index_t>(j) % in_per_group == 0) {
      block[b] = old_block;
    } else if (block[b] != old_block) {
      bad = j;
      return {};
    }
  }
  return block;
}

}  // namespace detail
CVK_END_NAMESPACE
