// cvk — computer-vision kernels, header-only C++20.
// FLGC's algorithm (Wang et al., "Fully Learnable Group Convolution", CVPR 2019; the contract is
// cvk/conv/flgc.hpp's): the logits checked and binarised, the connectivity mask M = T·Sᵀ applied
// to a weight, the backward pass composed from conv2d's (the mask's gradient carried back to the
// logits through the straight-through estimator and the softmax), the counting sort that turns
// the assignments into ragged groups, and the channel permutations of neighbouring convolutions
// that fold those groups' permutations away.
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
#include "../../core/tensor.hpp"
#include "../../detail/checks.hpp"
#include "../conv2d.hpp"
#include "../conv2d_backward.hpp"
#include "../flgc_types.hpp"
#include "geometry.hpp"

CVK_BEGIN_NAMESPACE

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

template <class T, class... Tensors>
constexpr void assert_flgc_types() {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "cvk: FLGC runs on float or double tensors");
  static_assert(((std::is_void_v<typename conv_value<std::remove_cvref_t<Tensors>>::type> ||
                  std::is_same_v<typename conv_value<std::remove_cvref_t<Tensors>>::type, T>)&&...),
                "cvk: FLGC needs the same element type in input, weight, bias, logits and the "
                "outputs (all float or all double); convert one of them");
}

/// The logits of a call, checked against each other (and against the weight when I, O >= 0).
template <class T>
struct flgc_logits {
  strided_view<const T, 2> in, out;
  std::vector<index_t> in_group, out_group;
  index_t groups = 0;
};

template <class T, class InLogits, class OutLogits>
flgc_logits<T> flgc_read_logits(const InLogits& in_logits, const OutLogits& out_logits,
                                index_t in_channels, index_t out_channels, const char* fn) {
  flgc_logits<T> l;
  l.in = checked_view<2>(in_logits, fn, "in_logits");
  l.out = checked_view<2>(out_logits, fn, "out_logits");
  check_flgc_logits(l.in, in_channels, "I×G", "I = weight's input channels", fn, "in_logits");
  check_flgc_logits(l.out, out_channels, "O×G", "O = weight's output channels", fn, "out_logits");
  check_same_groups(l.in, l.out, fn);
  l.groups = l.in.extent(1);
  l.in_group = flgc_row_groups(l.in);
  l.out_group = flgc_row_groups(l.out);
  return l;
}

/// A checked FLGC layer: the weight as an (o, i, kh, kw)-ordered view, its extents as given,
/// and the logits.
template <class T>
struct flgc_layer {
  strided_view<const T, 4> weight;   // (o, i, kh, kw)-ordered
  std::array<index_t, 4> extents{};  // as given (params.weights)
  flgc_logits<T> logits;
};

inline void check_flgc_params(const conv2d_params& p, const char* fn) {
  check_conv2d_params(p, fn);
  if (p.groups != 1) {
    CVK_THROW(invalid_argument, std::string(fn) +
                                    ": params.groups must be 1 (an FLGC layer is a dense conv "
                                    "whose mask M = T·Sᵀ carries the groups), got " +
                                    std::to_string(p.groups));
  }
}

template <class T, class Weight, class InLogits, class OutLogits>
flgc_layer<T> flgc_prepare(const Weight& weight, const InLogits& in_logits,
                           const OutLogits& out_logits, const conv2d_params& p, const char* fn) {
  check_flgc_params(p, fn);
  const auto w = checked_view<4>(weight, fn, "weight");
  flgc_layer<T> layer;
  layer.extents = w.extents();
  layer.weight = permute_axes(strided_view<const T, 4>(w), oihw_axes(p.weights));
  if (layer.weight.extent(2) < 1 || layer.weight.extent(3) < 1) {
    CVK_THROW(shape_error, std::string(fn) + ": weight must have a kernel of at least 1×1, got " +
                               w.shape_string() + " (" + weight_pattern(p.weights) + ")");
  }
  layer.logits = flgc_read_logits<T>(in_logits, out_logits, layer.weight.extent(1),
                                     layer.weight.extent(0), fn);
  return layer;
}

/// W ⊙ M as a new tensor in the weight's layout.
template <class T>
tensor<T, 4> flgc_masked_weight(const flgc_layer<T>& layer, const conv2d_params& p,
                                const char* fn) {
  tensor<T, 4> masked = new_gradient<T>(layer.extents, fn, "the masked weight");
  flgc_apply_mask<T>(layer.weight, layer.logits.in_group, layer.logits.out_group,
                     permute_axes(masked.view(), oihw_axes(p.weights)), p.threads);
  return masked;
}

template <class T, class GradOut, class Input>
void flgc_backward_call(const GradOut& grad_output, const Input& input, const flgc_layer<T>& layer,
                        const conv2d_params& p, const flgc_gradient_views<T>& t, ste estimator,
                        const char* fn) {
  if (estimator != ste::masked && estimator != ste::identity) {
    CVK_THROW(invalid_argument, std::string(fn) + ": the estimator is not an ste value");
  }
  const auto dy = checked_view<4>(grad_output, fn, "grad_output");
  const auto x = checked_view<4>(input, fn, "input");
  const conv2d_geometry g =
      resolve_backward(dy, x.extents(), "input", layer.extents, "weight", p, fn);
  const auto target = [&](const auto& v, const auto& extents, const char* name,
                          const std::string& pattern) {
    if (v.data() != nullptr) expect_shape(v, extents, fn, name, pattern.c_str());
  };
  target(
      t.input, x.extents(), "grad_input",
      std::string(layout_pattern(p.data_layout)) + " = " + x.shape_string() + " (input's shape)");
  target(t.weight, layer.extents, "grad_weight",
         std::string(weight_pattern(p.weights)) + " = " + shape_string(layer.extents, 4) +
             " (weight's shape)");
  target(t.bias, std::array<index_t, 1>{g.out_channels}, "grad_bias",
         "O = " + std::to_string(g.out_channels) + " values");
  target(t.in_logits, layer.logits.in.extents(), "grad_in_logits",
         "I×G = " + matrix_text(layer.logits.in) + " (in_logits' shape)");
  target(t.out_logits, layer.logits.out.extents(), "grad_out_logits",
         "O×G = " + matrix_text(layer.logits.out) + " (out_logits' shape)");

  if (t.input.data() != nullptr) {
    const tensor<T, 4> masked = flgc_masked_weight(layer, p, fn);
    backward_input_run<T>(g, dy, masked.view(), t.input, p, fn);
  }
  if (t.bias.data() != nullptr) {
    conv2d_bias_grad<T>(permute_axes(strided_view<const T, 4>(dy), nchw_axes(p.data_layout)),
                        t.bias, p.threads);
  }
  const bool logits = t.in_logits.data() != nullptr || t.out_logits.data() != nullptr;
  if (t.weight.data() == nullptr && !logits) return;
  tensor<T, 4> scratch;
  strided_view<T, 4> dw = t.weight;
  if (dw.data() == nullptr) {
    scratch = new_gradient<T>(layer.extents, fn, "the weight gradient");
    dw = scratch.view();
  }
  backward_weight_run<T>(g, dy, x, dw, p, fn);  // dW', the masked weight's gradient
  const auto dw_oihw = permute_axes(dw, oihw_axes(p.weights));
  if (logits) {
    const flgc_logits<T>& l = layer.logits;
    const index_t outs = layer.weight.extent(0), ins = layer.weight.extent(1);
    const std::vector<T> dm =
        flgc_mask_gradient<T>(layer.weight, strided_view<const T, 4>(dw_oihw), p.threads, fn);
    if (t.out_logits.data() != nullptr) {
      flgc_logit_gradient<T>(l.out, l.out_group,
                             flgc_onehot_gradient(dm, outs, ins, l.in_group, l.groups, true),
                             estimator, t.out_logits);
    }
    if (t.in_logits.data() != nullptr) {
      flgc_logit_gradient<T>(l.in, l.in_group,
                             flgc_onehot_gradient(dm, outs, ins, l.out_group, l.groups, false),
                             estimator, t.in_logits);
    }
  }
  if (t.weight.data() != nullptr) {
    flgc_apply_mask<T>(strided_view<const T, 4>(dw_oihw), layer.logits.in_group,
                       layer.logits.out_group, dw_oihw, p.threads);
  }
}

/// A conv's weight (as given) and bias, checked; the (o, i, kh, kw)-ordered view.
template <class T>
struct conv_operand {
  strided_view<const T, 4> weight;   // (o, i, kh, kw)-ordered
  std::array<index_t, 4> extents{};  // as given
  std::vector<T> bias;               // O values (zeros without a bias)
  index_t groups = 1;
};

template <class T, class Weight, class Bias>
conv_operand<T> read_conv_operand(const Weight& weight, const Bias& bias, const conv2d_params& p,
                                  const char* fn) {
  check_conv2d_params(p, fn);
  const auto w = checked_view<4>(weight, fn, "weight");
  conv_operand<T> c;
  c.extents = w.extents();
  c.weight = permute_axes(strided_view<const T, 4>(w), oihw_axes(p.weights));
  c.groups = p.groups;
  const index_t outs = c.weight.extent(0);
  if (outs % p.groups != 0) {
    CVK_THROW(shape_error, std::string(fn) + ": params.groups (" + std::to_string(p.groups) +
                               ") must divide the output channels (" + std::to_string(outs) +
                               "); weight " + w.shape_string() + " (" + weight_pattern(p.weights) +
                               ")");
  }
  c.bias.assign(static_cast<std::size_t>(outs), T(0));
  if constexpr (!std::is_same_v<std::remove_cvref_t<Bias>, no_bias_t>) {
    const auto b = checked_view<1>(bias, fn, "bias");
    if (b.extent(0) != outs) {
      CVK_THROW(shape_error, std::string(fn) + ": bias must have O = " + std::to_string(outs) +
                                 " values (weight " + w.shape_string() + ", " +
                                 weight_pattern(p.weights) + "), got " + b.shape_string());
    }
    for (index_t o = 0; o < outs; ++o) c.bias[static_cast<std::size_t>(o)] = b(o);
  }
  return c;
}

/// new[o, i] = old[out_map(o), in_map(o, i)] for every tap, into a tensor of the old extents.
template <class T, class OutMap, class InMap>
permuted_conv<T> remap_conv(const conv_operand<T>& c, const conv2d_params& p, OutMap out_map,
                            InMap in_map, const char* fn) {
  permuted_conv<T> r;
  r.weight = new_gradient<T>(c.extents, fn, "the permuted weight");
  const auto w = permute_axes(r.weight.view(), oihw_axes(p.weights));
  r.bias = new_gradient<T>(std::array<index_t, 1>{w.extent(0)}, fn, "the permuted bias");
  for (index_t o = 0; o < w.extent(0); ++o) {
    const index_t from = out_map(o);
    r.bias(o) = c.bias[static_cast<std::size_t>(from)];
    for (index_t i = 0; i < w.extent(1); ++i) {
      const index_t src = in_map(o, i);
      for (index_t y = 0; y < w.extent(2); ++y) {
        for (index_t x = 0; x < w.extent(3); ++x) w(o, i, y, x) = c.weight(from, src, y, x);
      }
    }
  }
  return r;
}

template <class T>
permuted_conv<T> permute_outputs_of(const conv_operand<T>& c, const conv2d_params& p,
                                    const std::vector<index_t>& perm, const char* fn) {
  const index_t outs = c.weight.extent(0);
  check_channel_permutation(perm, outs, fn, "the permutation");
  const index_t per_group = outs / c.groups;
  for (std::size_t j = 0; j < perm.size() && c.groups > 1; ++j) {
    if (perm[j] / per_group != static_cast<index_t>(j) / per_group) {
      CVK_THROW(invalid_argument,
                std::string(fn) + ": a conv with params.groups = " + std::to_string(c.groups) +
                    " (" + std::to_string(per_group) +
                    " output channels per group) can only re-order output channels within their "
                    "group, but the permutation puts channel " +
                    std::to_string(perm[j]) + " (group " + std::to_string(perm[j] / per_group) +
                    ") at position " + std::to_string(j) + " (group " +
                    std::to_string(static_cast<index_t>(j) / per_group) + ")");
    }
  }
  permuted_conv<T> r = remap_conv(
      c, p, [&](index_t o) { return perm.empty() ? o : perm[static_cast<std::size_t>(o)]; },
      [](index_t, index_t i) { return i; }, fn);
  r.channels = perm;
  return r;
}

template <class T>
permuted_conv<T> permute_inputs_of(const conv_operand<T>& c, const conv2d_params& p,
                                   const std::vector<index_t>& perm, const char* fn) {
  const index_t outs = c.weight.extent(0), in_per_group = c.weight.extent(1);
  const index_t ins = checked_mul(in_per_group, c.groups, fn, "the input channels",
                                  [&] { return shape_string(c.extents, 4); });
  check_channel_permutation(perm, ins, fn, "the permutation");
  const index_t out_per_group = outs / c.groups;
  std::vector<index_t> block(static_cast<std::size_t>(c.groups));
  for (index_t b = 0; b < c.groups; ++b) block[static_cast<std::size_t>(b)] = b;
  if (!perm.empty() && in_per_group > 0) {
    std::size_t bad = 0;
    block = group_block_map(perm, c.groups, in_per_group, bad);
    if (block.empty()) {
      CVK_THROW(invalid_argument,
                std::string(fn) + ": a conv with params.groups = " + std::to_string(c.groups) +
                    " reads blocks of " + std::to_string(in_per_group) +
                    " consecutive input channels, and the permutation must move whole blocks, "
                    "but it puts channel " +
                    std::to_string(perm[bad]) + " (block " +
                    std::to_string(perm[bad] / in_per_group) + ") at position " +
                    std::to_string(bad) + " in block " +
                    std::to_string(static_cast<index_t>(bad) / in_per_group) +
                    ", whose first channel comes from block " +
                    std::to_string(perm[bad - bad % static_cast<std::size_t>(in_per_group)] /
                                   in_per_group));
    }
  }
  const auto old_filter = [&](index_t o) {
    return block[static_cast<std::size_t>(o / out_per_group)] * out_per_group + o % out_per_group;
  };
  permuted_conv<T> r = remap_conv(
      c, p, old_filter,
      [&](index_t o, index_t i) {
        if (perm.empty()) return i;
        const index_t b = o / out_per_group;
        return perm[static_cast<std::size_t>(b * in_per_group + i)] -
               block[static_cast<std::size_t>(b)] * in_per_group;
      },
      fn);
  r.channels = perm;
  bool identity = true;
  for (index_t b = 0; b < c.groups; ++b)
    identity = identity && block[static_cast<std::size_t>(b)] == b;
  if (!identity) {
    r.output_permutation.resize(static_cast<std::size_t>(outs));
    for (index_t o = 0; o < outs; ++o)
      r.output_permutation[static_cast<std::size_t>(o)] = old_filter(o);
  }
  return r;
}

}  // namespace detail
CVK_END_NAMESPACE
