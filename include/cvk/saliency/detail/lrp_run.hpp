// cvk — computer-vision kernels, header-only C++20.
// LRP's machinery: batch norm merged into the layer before it, the layer list checked for chaining
// (each error naming the layer), one forward pass keeping every layer's input, and the backward
// relevance pass — every conv / linear rule as conv2d forwards and conv2d_backward_input calls
// with modified weights and inputs (zennit's formulation), pooling through the pooling kernels.
// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "../../conv/conv2d.hpp"
#include "../../conv/conv2d_backward.hpp"
#include "../../conv/pool2d.hpp"
#include "../../core/as_view.hpp"
#include "../../core/config.hpp"
#include "../../core/errors.hpp"
#include "../../core/layout.hpp"
#include "../../core/tensor.hpp"
#include "../../detail/checks.hpp"
#include "../lrp_types.hpp"

CVK_BEGIN_NAMESPACE
namespace detail {

template <class... F>
struct lrp_overloaded : F... {
  using F::operator()...;
};
template <class... F>
lrp_overloaded(F...) -> lrp_overloaded<F...>;

/// "conv", "linear", ... — the kind of a layer, as messages name it.
template <class T>
const char* lrp_kind(const lrp_layer<T>& layer) noexcept {
  constexpr std::array<const char*, 8> names{
      "conv",     "linear",   "batch_norm",        "relu",
      "max_pool", "avg_pool", "adaptive_avg_pool", "flatten"};
  return names[layer.index()];
}

template <class T>
std::string lrp_layer_text(const std::vector<lrp_layer<T>>& layers, std::size_t i) {
  return "layer " + std::to_string(i) + " (" + lrp_kind(layers[i]) + ")";
}

template <class T>
bool lrp_has_weights(const lrp_layer<T>& layer) noexcept {
  return std::holds_alternative<lrp_conv<T>>(layer) || std::holds_alternative<lrp_linear<T>>(layer);
}

/// Output channels of a conv or linear layer.
template <class T>
index_t lrp_out_channels(const lrp_layer<T>& layer) {
  if (const auto* c = std::get_if<lrp_conv<T>>(&layer)) {
    return c->weight.extent(c->params.weights == weight_layout::oihw ? 0 : 3);
  }
  return std::get<lrp_linear<T>>(layer).weight.extent(0);
}

/// Merges every batch norm into the conv or linear layer before it.
template <class T>
std::vector<lrp_layer<T>> merge_batch_norm(const std::vector<lrp_layer<T>>& layers,
                                           const char* fn) {
  std::vector<lrp_layer<T>> merged;
  merged.reserve(layers.size());
  for (std::size_t i = 0; i < layers.size(); ++i) {
    const auto* bn = std::get_if<lrp_batch_norm<T>>(&layers[i]);
    if (bn == nullptr) {
      merged.push_back(layers[i]);
      continue;
    }
    const std::string where = std::string(fn) + ": " + lrp_layer_text(layers, i);
    if (merged.empty() || !lrp_has_weights(merged.back()) || !lrp_has_weights(layers[i - 1])) {
      CVK_THROW(invalid_argument,
                where + " must directly follow a conv or linear layer, into which it is merged" +
                    (i == 0 ? std::string(", and it is the first layer")
                            : ", not " + lrp_layer_text(layers, i - 1)));
    }
    lrp_layer<T>& target = merged.back();
    const index_t channels = lrp_out_channels(target);
    for (const auto* v : {&bn->mean, &bn->var, &bn->gamma, &bn->beta}) {
      if (v->extent(0) != channels) {
        CVK_THROW(shape_error, where + ": mean, var, gamma and beta must hold " +
                                   std::to_string(channels) + " values (the channels of " +
                                   lrp_layer_text(layers, i - 1) + "), got " +
                                   bn->mean.shape_string() + ", " + bn->var.shape_string() + ", " +
                                   bn->gamma.shape_string() + " and " + bn->beta.shape_string());
      }
    }
    if (!(bn->eps >= 0.0)) {
      CVK_THROW(invalid_argument, where + ": eps must be >= 0, got " + number_string(bn->eps));
    }
    std::vector<T> scale(static_cast<std::size_t>(channels));
    for (index_t o = 0; o < channels; ++o) {
      const double var = static_cast<double>(bn->var(o)) + bn->eps;
      if (!(var > 0.0)) {
        CVK_THROW(invalid_argument, where + ": var + eps must be > 0, got " + number_string(var) +
                                        " at channel " + std::to_string(o));
      }
      scale[static_cast<std::size_t>(o)] =
          static_cast<T>(static_cast<double>(bn->gamma(o)) / std::sqrt(var));
    }
    const auto merge_bias = [&](tensor<T, 1>& bias) {
      tensor<T, 1> b(channels);
      for (index_t o = 0; o < channels; ++o) {
        const T old = bias.size() == 0 ? T(0) : bias(o);
        b(o) = (old - bn->mean(o)) * scale[static_cast<std::size_t>(o)] + bn->beta(o);
      }
      bias = std::move(b);
    };
    if (auto* c = std::get_if<lrp_conv<T>>(&target)) {
      const bool oihw = c->params.weights == weight_layout::oihw;
      const auto e = c->weight.extents();
      T* w = c->weight.data();
      for (index_t k = 0; k < c->weight.size(); ++k) {
        const index_t o = oihw ? k / (e[1] * e[2] * e[3]) : k % e[3];
        w[k] *= scale[static_cast<std::size_t>(o)];
      }
      merge_bias(c->bias);
    } else {
      auto& l = std::get<lrp_linear<T>>(target);
      for (index_t o = 0; o < l.weight.extent(0); ++o) {
        for (index_t d = 0; d < l.weight.extent(1); ++d) {
          l.weight(o, d) *= scale[static_cast<std::size_t>(o)];
        }
      }
      merge_bias(l.bias);
    }
  }
  return merged;
}

/// The rule `composite` gives each layer.
template <class T>
std::vector<lrp_rule> composite_rules(const std::vector<lrp_layer<T>>& layers,
                                      const lrp_composite& composite) {
  std::vector<lrp_rule> rules(layers.size(), lrp_rule::zero());
  std::size_t first = layers.size(), last = layers.size();
  for (std::size_t i = 0; i < layers.size(); ++i) {
    if (!lrp_has_weights(layers[i])) continue;
    if (first == layers.size()) first = i;
    last = i;
    rules[i] = std::holds_alternative<lrp_conv<T>>(layers[i]) ? composite.conv : composite.linear;
  }
  if (composite.top && last < layers.size()) rules[last] = *composite.top;
  if (first < layers.size()) rules[first] = composite.first;
  return rules;
}

/// A layer as the passes run it: linear layers are 1×1 convs on the flattened activation, batch
/// norms are merged. `source` is the index in the caller's list (for messages and rules).
template <class T>
struct lrp_step {
  std::variant<lrp_conv<T>, lrp_relu, lrp_max_pool, lrp_avg_pool, lrp_adaptive_avg_pool,
               lrp_flatten>
      op;
  std::size_t source = 0;
  bool linear = false;
};

/// The layers as steps, each checked to chain from `input` (extents in `l`); the output's
/// extents in `out`.
template <class T>
std::vector<lrp_step<T>> lrp_steps(const std::vector<lrp_layer<T>>& layers,
                                   std::array<index_t, 4> extents, const lrp_options& options,
                                   const char* fn, std::array<index_t, 4>& out) {
  if (layers.empty()) CVK_THROW(invalid_argument, std::string(fn) + ": the layer list is empty");
  if (options.data_layout != layout::nchw && options.data_layout != layout::nhwc) {
    CVK_THROW(invalid_argument, std::string(fn) + ": options.data_layout is not a cvk::layout");
  }
  if (!(options.epsilon >= 0.0)) {
    CVK_THROW(invalid_argument, std::string(fn) + ": options.epsilon must be >= 0, got " +
                                    number_string(options.epsilon));
  }
  if (options.threads < 0) {
    CVK_THROW(invalid_argument, std::string(fn) + ": options.threads must be >= 0, got " +
                                    std::to_string(options.threads));
  }
  const layout lay = options.data_layout;
  const bool nchw = lay == layout::nchw;
  const auto merged = merge_batch_norm(layers, fn);
  // Index in the caller's list of each merged layer.
  std::vector<std::size_t> source;
  for (std::size_t i = 0; i < layers.size(); ++i) {
    if (!std::holds_alternative<lrp_batch_norm<T>>(layers[i])) source.push_back(i);
  }
  std::vector<lrp_step<T>> steps;
  steps.reserve(merged.size());
  for (std::size_t m = 0; m < merged.size(); ++m) {
    const std::size_t i = source[m];
    const std::string where = std::string(fn) + ": " + lrp_layer_text(layers, i);
    const std::string activation =
        "the activation before it is " + shape_string(extents, 4) + (nchw ? " (nchw)" : " (nhwc)");
    const index_t channels = extents[nchw ? 1 : 3];
    const auto wrap = [&](auto&& compute) {
      try {
        return compute();
      } catch (const cvk::error& e) {
        CVK_THROW(shape_error, where + " does not chain: " + activation + ": " + e.what());
      }
    };
    lrp_step<T> step{lrp_relu{}, i, false};
    std::visit(
        lrp_overloaded{
            [&](const lrp_conv<T>& c) {
              if (c.params.data_layout != lay) {
                CVK_THROW(
                    invalid_argument,
                    where + ": params.data_layout must be the network's (options.data_layout)");
              }
              if (c.params.act != activation::none) {
                CVK_THROW(invalid_argument,
                          where + ": params.act must be none (write an lrp_relu after it)");
              }
              const index_t out_channels = lrp_out_channels<T>(merged[m]);
              if (c.bias.size() != 0 && c.bias.extent(0) != out_channels) {
                CVK_THROW(shape_error, where + ": bias must hold 0 or " +
                                           std::to_string(out_channels) + " values, got " +
                                           c.bias.shape_string());
              }
              extents =
                  wrap([&] { return conv2d_output_shape(extents, c.weight.extents(), c.params); });
              lrp_conv<T> conv = c;
              conv.params.threads = options.threads;
              step.op = std::move(conv);
            },
            [&](const lrp_linear<T>& l) {
              const index_t spatial = nchw ? extents[2] * extents[3] : extents[1] * extents[2];
              if (spatial != 1 || channels != l.weight.extent(1)) {
                CVK_THROW(shape_error,
                          where + " does not chain: its weight " + l.weight.shape_string() +
                              " reads " + std::to_string(l.weight.extent(1)) + " features, " +
                              activation + (spatial != 1 ? " (flatten it first)" : ""));
              }
              if (l.bias.size() != 0 && l.bias.extent(0) != l.weight.extent(0)) {
                CVK_THROW(shape_error, where + ": bias must hold 0 or " +
                                           std::to_string(l.weight.extent(0)) + " values, got " +
                                           l.bias.shape_string());
              }
              lrp_conv<T> conv;
              conv.weight = tensor<T, 4>(l.weight.extent(0), l.weight.extent(1), 1, 1);
              std::copy(l.weight.begin(), l.weight.end(), conv.weight.begin());
              conv.bias = l.bias;
              conv.params.data_layout = lay;
              conv.params.threads = options.threads;
              extents[nchw ? 1 : 3] = l.weight.extent(0);
              step.op = std::move(conv);
              step.linear = true;
            },
            [&](const lrp_batch_norm<T>&) {},  // merged away
            [&](const lrp_relu&) { step.op = lrp_relu{}; },
            [&](const auto& pool) {
              using P = std::decay_t<decltype(pool)>;
              if constexpr (std::is_same_v<P, lrp_flatten>) {
                const index_t n = extents[0];
                const std::string text = shape_string(extents, 4);
                const index_t features = checked_mul(
                    checked_mul(extents[1], extents[2], fn, "the flattened activation", text),
                    extents[3], fn, "the flattened activation", text);
                extents = nchw ? std::array<index_t, 4>{n, features, 1, 1}
                               : std::array<index_t, 4>{n, 1, 1, features};
                step.op = lrp_flatten{};
              } else {
                if (pool.params.data_layout != lay) {
                  CVK_THROW(invalid_argument, where +
                                                  ": params.data_layout must be the network's "
                                                  "(options.data_layout)");
                }
                P p = pool;
                p.params.threads = options.threads;
                if constexpr (std::is_same_v<P, lrp_adaptive_avg_pool>) {
                  if (p.params.output_size[0] < 1 || p.params.output_size[1] < 1) {
                    CVK_THROW(invalid_argument, where + ": params.output_size must be >= 1, got " +
                                                    shape_string(p.params.output_size, 2));
                  }
                  extents[nchw ? 2 : 1] = p.params.output_size[0];
                  extents[nchw ? 3 : 2] = p.params.output_size[1];
                } else {
                  extents = wrap([&] { return pool2d_output_shape(extents, p.params); });
                }
                step.op = std::move(p);
              }
            }},
        merged[m]);
    steps.push_back(std::move(step));
  }
  out = extents;
  return steps;
}

template <class T>
tensor<T, 4> lrp_conv_forward(const tensor<T, 4>& a, const tensor<T, 4>& w,
                              const tensor<T, 1>* bias, const conv2d_params& p) {
  if (bias != nullptr && bias->size() != 0) return conv2d(a, w, *bias, p);
  return conv2d(a, w, no_bias, p);
}

template <class T, class F>
tensor<T, 4> lrp_map(const tensor<T, 4>& a, F&& f) {
  tensor<T, 4> r(a.extents());
  std::transform(a.begin(), a.end(), r.begin(), f);
  return r;
}

template <class T, class F>
tensor<T, 1> lrp_map(const tensor<T, 1>& a, F&& f) {
  tensor<T, 1> r(a.extents());
  std::transform(a.begin(), a.end(), r.begin(), f);
  return r;
}

/// R / stabilised z, elementwise (zennit's stabilize: z + ε·sign(z), sign(0) = +1); ε <= 0 (the
/// zero rule, or a rule or pooling given ε = 0): R / z, and 0 where z = 0 (never inf or NaN).
template <class T>
tensor<T, 4> lrp_ratio(const tensor<T, 4>& r, const tensor<T, 4>& z, double epsilon) {
  tensor<T, 4> s(r.extents());
  const T e = static_cast<T>(epsilon);
  for (index_t k = 0; k < r.size(); ++k) {
    const T zk = z.data()[k];
    if (!(epsilon > 0)) {
      s.data()[k] = zk == T(0) ? T(0) : r.data()[k] / zk;
    } else {
      s.data()[k] = r.data()[k] / (zk + (zk >= T(0) ? e : -e));
    }
  }
  return s;
}

/// acc += sign · a ⊙ g.
template <class T>
void lrp_accumulate(tensor<T, 4>& acc, const tensor<T, 4>& a, const tensor<T, 4>& g, T sign) {
  for (index_t k = 0; k < acc.size(); ++k) acc.data()[k] += sign * a.data()[k] * g.data()[k];
}

/// Validates `rule` for the conv or linear `layer` whose input has `channels` channels.
inline void check_lrp_rule(const lrp_rule& rule, index_t channels, const std::string& where) {
  const auto fail = [&](const std::string& what) {
    CVK_THROW(invalid_argument, where + ": rule " + to_string(rule.kind) + ": " + what);
  };
  if (!(rule.epsilon >= 0.0)) fail("epsilon must be >= 0, got " + number_string(rule.epsilon));
  switch (rule.kind) {
    case lrp_rule_kind::gamma:
      if (!(rule.gamma >= 0.0)) fail("gamma must be >= 0, got " + number_string(rule.gamma));
      break;
    case lrp_rule_kind::alpha_beta:
      if (!(rule.beta >= 0.0) || !(std::abs(rule.alpha - rule.beta - 1.0) <= 1e-12)) {
        fail("alpha - beta must be 1 with beta >= 0, got alpha " + number_string(rule.alpha) +
             " and beta " + number_string(rule.beta));
      }
      break;
    case lrp_rule_kind::z_box: {
      const auto fits = [&](const std::vector<double>& v) {
        return v.size() == 1 || static_cast<index_t>(v.size()) == channels;
      };
      if (!fits(rule.low) || !fits(rule.high)) {
        fail("low and high must hold 1 or " + std::to_string(channels) +
             " values (the input channels), got " + std::to_string(rule.low.size()) + " and " +
             std::to_string(rule.high.size()));
      }
      for (std::size_t c = 0; c < std::max(rule.low.size(), rule.high.size()); ++c) {
        const double l = rule.low[rule.low.size() == 1 ? 0 : c];
        const double h = rule.high[rule.high.size() == 1 ? 0 : c];
        if (!(l <= h)) {
          fail("low must be <= high, got " + number_string(l) + " and " + number_string(h) +
               " at channel " + std::to_string(c));
        }
      }
      break;
    }
    default:
      break;
  }
}

/// An image of a's extents holding bound[c] at channel c.
template <class T>
tensor<T, 4> lrp_bound_image(const tensor<T, 4>& a, const std::vector<double>& bound, bool nchw) {
  tensor<T, 4> b(a.extents());
  const auto e = a.extents();
  for (index_t k = 0; k < b.size(); ++k) {
    const index_t c = nchw ? (k / (e[2] * e[3])) % e[1] : k % e[3];
    b.data()[k] = static_cast<T>(bound[bound.size() == 1 ? 0 : static_cast<std::size_t>(c)]);
  }
  return b;
}

/// The relevance of a conv (or linear) layer's input `a`, given that of its output `r`.
template <class T>
tensor<T, 4> lrp_conv_relevance(const lrp_conv<T>& c, const lrp_rule& rule, const tensor<T, 4>& a,
                                const tensor<T, 4>& r, bool nchw) {
  const conv2d_params& p = c.params;
  const auto vjp = [&](const tensor<T, 4>& s, const tensor<T, 4>& w) {
    return conv2d_backward_input(s, w, a.extents(), p);
  };
  const auto pos = [](T v) { return v > T(0) ? v : T(0); };
  const auto neg = [](T v) { return v < T(0) ? v : T(0); };
  tensor<T, 4> result(a.extents());
  switch (rule.kind) {
    case lrp_rule_kind::zero:
    case lrp_rule_kind::epsilon:
    case lrp_rule_kind::gamma: {
      const bool gamma = rule.kind == lrp_rule_kind::gamma;
      const T g = static_cast<T>(rule.gamma);
      const auto modify = [&](T v) { return gamma ? v + g * pos(v) : v; };
      const tensor<T, 4> w = lrp_map(c.weight, modify);
      const tensor<T, 1> b = lrp_map(c.bias, modify);
      const tensor<T, 4> z = lrp_conv_forward(a, w, &b, p);
      const double eps = rule.kind == lrp_rule_kind::zero ? -1.0 : rule.epsilon;
      lrp_accumulate(result, a, vjp(lrp_ratio(r, z, eps), w), T(1));
      return result;
    }
    case lrp_rule_kind::alpha_beta: {
      const tensor<T, 4> wp = lrp_map(c.weight, pos), wn = lrp_map(c.weight, neg);
      const tensor<T, 1> bp = lrp_map(c.bias, pos), bn = lrp_map(c.bias, neg);
      const tensor<T, 4> ap = lrp_map(a, pos), an = lrp_map(a, neg);
      const bool signed_input = std::any_of(a.begin(), a.end(), [](T v) { return v < T(0); });
      // One half: inputs of the sign of `w1` paired with w1, of the other with w2.
      const auto half = [&](const tensor<T, 4>& w1, const tensor<T, 1>& b, const tensor<T, 4>& w2,
                            T weight) {
        tensor<T, 4> z = lrp_conv_forward(ap, w1, &b, p);
        if (signed_input) {
          const tensor<T, 4> z2 = lrp_conv_forward<T>(an, w2, nullptr, p);
          for (index_t k = 0; k < z.size(); ++k) z.data()[k] += z2.data()[k];
        }
        const tensor<T, 4> s = lrp_ratio(r, z, rule.epsilon);
        lrp_accumulate(result, ap, vjp(s, w1), weight);
        if (signed_input) lrp_accumulate(result, an, vjp(s, w2), weight);
      };
      half(wp, bp, wn, static_cast<T>(rule.alpha));
      if (rule.beta != 0.0) half(wn, bn, wp, static_cast<T>(-rule.beta));
      return result;
    }
    case lrp_rule_kind::z_box: {
      const tensor<T, 4> wp = lrp_map(c.weight, pos), wn = lrp_map(c.weight, neg);
      const tensor<T, 4> lo = lrp_bound_image(a, rule.low, nchw);
      const tensor<T, 4> hi = lrp_bound_image(a, rule.high, nchw);
      tensor<T, 4> z = lrp_conv_forward<T>(a, c.weight, nullptr, p);
      const tensor<T, 4> zl = lrp_conv_forward<T>(lo, wp, nullptr, p);
      const tensor<T, 4> zh = lrp_conv_forward<T>(hi, wn, nullptr, p);
      for (index_t k = 0; k < z.size(); ++k) z.data()[k] -= zl.data()[k] + zh.data()[k];
      const tensor<T, 4> s = lrp_ratio(r, z, rule.epsilon);
      lrp_accumulate(result, a, vjp(s, c.weight), T(1));
      lrp_accumulate(result, lo, vjp(s, wp), T(-1));
      lrp_accumulate(result, hi, vjp(s, wn), T(-1));
      return result;
    }
    case lrp_rule_kind::flat:
    case lrp_rule_kind::w_square: {
      const bool flat = rule.kind == lrp_rule_kind::flat;
      const tensor<T, 4> w = lrp_map(c.weight, [&](T v) { return flat ? T(1) : v * v; });
      const tensor<T, 4> ones(a.extents(), T(1));
      const tensor<T, 4> z = lrp_conv_forward<T>(ones, w, nullptr, p);
      const tensor<T, 4> g = vjp(lrp_ratio(r, z, rule.epsilon), w);
      std::copy(g.begin(), g.end(), result.begin());
      return result;
    }
  }
  return result;
}

/// R_j = a_j Σ_k R_k / z_k over the average windows reading j (z_k: the window's mean, stabilised).
template <class T, class Forward, class Backward>
tensor<T, 4> lrp_norm_relevance(const tensor<T, 4>& a, const tensor<T, 4>& r, double epsilon,
                                Forward&& forward, Backward&& backward) {
  const tensor<T, 4> z = forward(a);
  const tensor<T, 4> g = backward(lrp_ratio(r, z, epsilon));
  tensor<T, 4> result(a.extents());
  lrp_accumulate(result, a, g, T(1));
  return result;
}

template <class T>
tensor<T, 4> lrp_contiguous_input(const strided_view<const T, 4>& x) {
  tensor<T, 4> a(x.extents());
  index_t k = 0;
  for (index_t i0 = 0; i0 < x.extent(0); ++i0) {
    for (index_t i1 = 0; i1 < x.extent(1); ++i1) {
      for (index_t i2 = 0; i2 < x.extent(2); ++i2) {
        for (index_t i3 = 0; i3 < x.extent(3); ++i3) a.data()[k++] = x(i0, i1, i2, i3);
      }
    }
  }
  return a;
}

/// One layer forward.
template <class T>
tensor<T, 4> lrp_step_forward(const lrp_step<T>& step, const tensor<T, 4>& a,
                              const std::array<index_t, 4>& flat_extents) {
  return std::visit(
      lrp_overloaded{
          [&](const lrp_conv<T>& c) { return lrp_conv_forward(a, c.weight, &c.bias, c.params); },
          [&](const lrp_relu&) {
            return lrp_map(a, [](T v) { return v > T(0) || v != v ? v : T(0); });
          },
          [&](const lrp_max_pool& p) { return max_pool2d(a, p.params); },
          [&](const lrp_avg_pool& p) { return avg_pool2d(a, p.params); },
          [&](const lrp_adaptive_avg_pool& p) { return adaptive_avg_pool2d(a, p.params); },
          [&](const lrp_flatten&) {
            tensor<T, 4> y(flat_extents);
            std::copy(a.begin(), a.end(), y.begin());
            return y;
          }},
      step.op);
}

/// The flattened extents of a.
inline std::array<index_t, 4> lrp_flat_extents(const std::array<index_t, 4>& e, bool nchw) {
  const index_t f = e[1] * e[2] * e[3];
  return nchw ? std::array<index_t, 4>{e[0], f, 1, 1} : std::array<index_t, 4>{e[0], 1, 1, f};
}

template <class T>
void assert_lrp_type() {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "cvk: lrp runs on float or double networks");
}

/// Checks the input and the layers; the forward pass. acts[l]: input of step l; back(): output.
template <class T, class Input>
std::vector<tensor<T, 4>> lrp_forward_pass(const std::vector<lrp_layer<T>>& layers,
                                           const Input& input, const lrp_options& options,
                                           const char* fn, std::vector<lrp_step<T>>& steps) {
  assert_lrp_type<T>();
  const auto x = checked_view<4>(input, fn, "input");
  static_assert(std::is_same_v<std::remove_const_t<typename decltype(x)::element_type>, T>,
                "cvk: lrp's input must hold the network's type T");
  std::array<index_t, 4> out{};
  steps = lrp_steps(layers, x.extents(), options, fn, out);
  const bool nchw = options.data_layout == layout::nchw;
  if (out[nchw ? 2 : 1] != 1 || out[nchw ? 3 : 2] != 1) {
    CVK_THROW(shape_error, std::string(fn) + ": the last layer's output must be " +
                               (nchw ? "N×K×1×1" : "N×1×1×K") + " (one score per class), got " +
                               shape_string(out, 4));
  }
  std::vector<tensor<T, 4>> acts;
  acts.reserve(steps.size() + 1);
  acts.push_back(lrp_contiguous_input<T>(strided_view<const T, 4>(x)));
  for (const auto& step : steps) {
    acts.push_back(
        lrp_step_forward(step, acts.back(), lrp_flat_extents(acts.back().extents(), nchw)));
  }
  return acts;
}

template <class T, class Input>
tensor<T, 2> lrp_scores(const std::vector<lrp_layer<T>>& layers, const Input& input,
                        const lrp_options& options) {
  std::vector<lrp_step<T>> steps;
  const auto acts = lrp_forward_pass<T>(layers, input, options, "lrp_forward", steps);
  const tensor<T, 4>& y = acts.back();
  const index_t n = y.extent(0), k = y.size() / std::max<index_t>(n, 1);
  tensor<T, 2> scores(n, k);
  std::copy(y.begin(), y.end(), scores.begin());
  return scores;
}

template <class T, class Input, class Targets>
lrp_result<T> lrp_run(const std::vector<lrp_layer<T>>& layers, const Input& input,
                      const Targets& targets, const std::vector<lrp_rule>& rules,
                      lrp_max_pool_rule max_pool, const lrp_options& options) {
  const char* fn = "lrp";
  const auto t = checked_view<1>(targets, fn, "targets");
  using Id = std::remove_const_t<typename decltype(t)::element_type>;
  static_assert(std::is_integral_v<Id>, "cvk: lrp's targets must be integer class ids");
  if (rules.size() != layers.size()) {
    CVK_THROW(invalid_argument, std::string(fn) + ": rules must hold one rule per layer (" +
                                    std::to_string(layers.size()) + "), got " +
                                    std::to_string(rules.size()));
  }
  std::vector<lrp_step<T>> steps;
  const auto acts = lrp_forward_pass<T>(layers, input, options, fn, steps);
  const bool nchw = options.data_layout == layout::nchw;
  const tensor<T, 4>& y = acts.back();
  const index_t n = y.extent(0), k = y.extent(nchw ? 1 : 3);
  if (t.extent(0) != n) {
    CVK_THROW(shape_error, std::string(fn) + ": targets must hold one class per image (" +
                               std::to_string(n) + "), got " + t.shape_string());
  }
  for (index_t i = 0; i < n; ++i) {
    const auto c = t(i);
    if (c < Id(0) || static_cast<long long>(c) >= static_cast<long long>(k)) {
      CVK_THROW(out_of_range, std::string(fn) + ": targets(" + std::to_string(i) +
                                  ") = " + std::to_string(static_cast<long long>(c)) +
                                  " is not a class in [0, " + std::to_string(k) + ")");
    }
  }
  for (const auto& step : steps) {
    if (const auto* c = std::get_if<lrp_conv<T>>(&step.op)) {
      const index_t in =
          c->weight.extent(c->params.weights == weight_layout::oihw ? 1 : 2) * c->params.groups;
      check_lrp_rule(rules[step.source], in,
                     std::string(fn) + ": " + lrp_layer_text(layers, step.source));
    } else if (const auto* m = std::get_if<lrp_max_pool>(&step.op)) {
      if (max_pool == lrp_max_pool_rule::proportional &&
          (m->params.dilation[0] != 1 || m->params.dilation[1] != 1)) {
        CVK_THROW(invalid_argument, std::string(fn) + ": " + lrp_layer_text(layers, step.source) +
                                        ": the proportional max-pool rule needs dilation 1, got " +
                                        shape_string(m->params.dilation, 2));
      }
    }
  }
  const std::size_t count = steps.size();
  lrp_result<T> result{tensor<T, 4>(acts.front().extents()),
                       tensor<T, 2>(n, static_cast<index_t>(count + 1))};
  const auto total = [&](const tensor<T, 4>& r, index_t image) {
    const index_t per = r.size() / std::max<index_t>(n, 1);
    double s = 0;
    for (index_t j = 0; j < per; ++j) s += static_cast<double>(r.data()[image * per + j]);
    return static_cast<T>(s);
  };
  tensor<T, 4> r(y.extents());
  for (index_t i = 0; i < n; ++i) {
    const index_t c = static_cast<index_t>(t(i));
    r.data()[i * k + c] = options.start == lrp_start::score ? y.data()[i * k + c] : T(1);
  }
  for (index_t i = 0; i < n; ++i) result.layer_totals(i, static_cast<index_t>(count)) = total(r, i);
  for (std::size_t l = count; l-- > 0;) {
    const tensor<T, 4>& a = acts[l];
    r = std::visit(
        lrp_overloaded{
            [&](const lrp_conv<T>& c) {
              return lrp_conv_relevance(c, rules[steps[l].source], a, r, nchw);
            },
            [&](const lrp_relu&) { return std::move(r); },
            [&](const lrp_flatten&) {
              tensor<T, 4> back(a.extents());
              std::copy(r.begin(), r.end(), back.begin());
              return back;
            },
            [&](const lrp_max_pool& p) {
              if (max_pool == lrp_max_pool_rule::winner_take_all) {
                const auto fwd = max_pool2d_with_indices(a, p.params);
                return max_pool2d_backward(r, fwd.indices, a.extents(), p.params);
              }
              pool2d_params avg = p.params;
              avg.count_include_pad = true;
              avg.divisor_override = 0;
              return lrp_norm_relevance(
                  a, r, options.epsilon, [&](const tensor<T, 4>& v) { return avg_pool2d(v, avg); },
                  [&](const tensor<T, 4>& s) { return avg_pool2d_backward(s, a.extents(), avg); });
            },
            [&](const lrp_avg_pool& p) {
              return lrp_norm_relevance(
                  a, r, options.epsilon,
                  [&](const tensor<T, 4>& v) { return avg_pool2d(v, p.params); },
                  [&](const tensor<T, 4>& s) {
                    return avg_pool2d_backward(s, a.extents(), p.params);
                  });
            },
            [&](const lrp_adaptive_avg_pool& p) {
              return lrp_norm_relevance(
                  a, r, options.epsilon,
                  [&](const tensor<T, 4>& v) { return adaptive_avg_pool2d(v, p.params); },
                  [&](const tensor<T, 4>& s) {
                    return adaptive_avg_pool2d_backward(s, a.extents(), p.params);
                  });
            }},
        steps[l].op);
    for (index_t i = 0; i < n; ++i) result.layer_totals(i, static_cast<index_t>(l)) = total(r, i);
  }
  result.relevance = std::move(r);
  return result;
}

}  // namespace detail
CVK_END_NAMESPACE
