// cvk — computer-vision kernels, header-only C++20.
// LRP's public types: the rules (lrp_rule), the composites (lrp_composite), the layers of a network
// (lrp_layer), the options and the result (<cvk/saliency/lrp.hpp> has the contract and lrp()).
// SPDX-License-Identifier: MIT
#pragma once

#include <optional>
#include <utility>
#include <variant>
#include <vector>

#include "../conv/conv2d.hpp"
#include "../conv/pool2d.hpp"
#include "../core/config.hpp"
#include "../core/layout.hpp"
#include "../core/tensor.hpp"

CVK_BEGIN_NAMESPACE

/// How a conv or linear layer redistributes relevance; see the contract above.
enum class lrp_rule_kind { zero, epsilon, gamma, alpha_beta, z_box, flat, w_square };

[[nodiscard]] constexpr const char* to_string(lrp_rule_kind kind) noexcept {
  switch (kind) {
    case lrp_rule_kind::zero:
      return "zero";
    case lrp_rule_kind::epsilon:
      return "epsilon";
    case lrp_rule_kind::gamma:
      return "gamma";
    case lrp_rule_kind::alpha_beta:
      return "alpha_beta";
    case lrp_rule_kind::z_box:
      return "z_box";
    case lrp_rule_kind::flat:
      return "flat";
    case lrp_rule_kind::w_square:
      return "w_square";
  }
  return "?";
}

/// One rule and its constants (only those of its kind are read).
struct lrp_rule {
  lrp_rule_kind kind = lrp_rule_kind::epsilon;
  /// ε of the epsilon rule, the stabiliser of the others (zennit's default 1e-6), >= 0.
  double epsilon = 1e-6;
  /// γ of the gamma rule, >= 0 (zennit's and Captum's default 0.25).
  double gamma = 0.25;
  /// α and β of the alpha_beta rule: α − β = 1, β >= 0.
  double alpha = 2.0, beta = 1.0;
  /// Input bounds of the z_box rule: one value for every input channel, or one per channel.
  std::vector<double> low{0.0}, high{1.0};

  [[nodiscard]] static lrp_rule zero() { return {.kind = lrp_rule_kind::zero}; }
  [[nodiscard]] static lrp_rule eps(double epsilon = 1e-6) {
    return {.kind = lrp_rule_kind::epsilon, .epsilon = epsilon};
  }
  [[nodiscard]] static lrp_rule gamma_rule(double gamma = 0.25) {
    return {.kind = lrp_rule_kind::gamma, .gamma = gamma};
  }
  [[nodiscard]] static lrp_rule alpha_beta(double alpha = 2.0, double beta = 1.0) {
    return {.kind = lrp_rule_kind::alpha_beta, .alpha = alpha, .beta = beta};
  }
  /// z⁺: α = 1, β = 0.
  [[nodiscard]] static lrp_rule z_plus() { return alpha_beta(1.0, 0.0); }
  [[nodiscard]] static lrp_rule z_box(std::vector<double> low, std::vector<double> high) {
    return {.kind = lrp_rule_kind::z_box, .low = std::move(low), .high = std::move(high)};
  }
  [[nodiscard]] static lrp_rule flat() { return {.kind = lrp_rule_kind::flat}; }
  [[nodiscard]] static lrp_rule w_square() { return {.kind = lrp_rule_kind::w_square}; }
};

/// How max pooling passes relevance.
enum class lrp_max_pool_rule {
  winner_take_all,  ///< all to the window's maximum (the gradient; zennit's default)
  proportional,     ///< in proportion to the inputs, as average pooling
};

/// Which rule each layer gets: `first` for the first conv or linear layer, `top` (if set) for the
/// last one, `conv` for the other convs, `linear` for the other linear layers.
struct lrp_composite {
  lrp_rule first = lrp_rule::flat();
  lrp_rule conv = lrp_rule::gamma_rule();
  lrp_rule linear = lrp_rule::eps();
  std::optional<lrp_rule> top{};
  lrp_max_pool_rule max_pool = lrp_max_pool_rule::winner_take_all;

  /// zennit's EpsilonGammaBox.
  [[nodiscard]] static lrp_composite epsilon_gamma_box(std::vector<double> low,
                                                       std::vector<double> high) {
    return {.first = lrp_rule::z_box(std::move(low), std::move(high))};
  }
  /// zennit's EpsilonPlusFlat.
  [[nodiscard]] static lrp_composite epsilon_plus_flat() {
    return {.first = lrp_rule::flat(), .conv = lrp_rule::z_plus()};
  }
  /// zennit's EpsilonAlpha2Beta1Flat.
  [[nodiscard]] static lrp_composite epsilon_alpha2_beta1_flat() {
    return {.first = lrp_rule::flat(), .conv = lrp_rule::alpha_beta(2.0, 1.0)};
  }
  /// Kohlbrenner et al.: z^B at the input, γ in the convs, ε above, LRP-0 at the top.
  [[nodiscard]] static lrp_composite kohlbrenner(std::vector<double> low,
                                                 std::vector<double> high) {
    return {.first = lrp_rule::z_box(std::move(low), std::move(high)), .top = lrp_rule::zero()};
  }
};

/// Where the backward pass starts.
enum class lrp_start {
  score,  ///< R = f_c(x) at the target class (relevance sums to the score)
  one,    ///< R = 1 at the target class
};

/// Options of lrp() and lrp_forward().
struct lrp_options {
  /// Axis order of the input, every activation and the relevance.
  layout data_layout = layout::nchw;
  lrp_start start = lrp_start::score;
  /// Stabiliser of the pooling layers' denominators, >= 0.
  double epsilon = 1e-6;
  /// Threads of every kernel: 0 = max_threads(). Results are identical for every value.
  int threads = 0;
};

/// A convolution: conv2d(a, weight, bias, params); bias O values or empty.
template <class T>
struct lrp_conv {
  tensor<T, 4> weight;
  tensor<T, 1> bias;
  conv2d_params params;
};

/// A fully connected layer on a flattened activation: weight O×D, bias O values or empty.
template <class T>
struct lrp_linear {
  tensor<T, 2> weight;
  tensor<T, 1> bias;
};

/// Batch norm in its inference form, C values each.
template <class T>
struct lrp_batch_norm {
  tensor<T, 1> mean, var, gamma, beta;
  double eps = 1e-5;
};

struct lrp_relu {};
struct lrp_flatten {};
struct lrp_max_pool {
  pool2d_params params;
};
struct lrp_avg_pool {
  pool2d_params params;
};
struct lrp_adaptive_avg_pool {
  adaptive_pool2d_params params;
};

/// One layer of an LRP network.
template <class T>
using lrp_layer = std::variant<lrp_conv<T>, lrp_linear<T>, lrp_batch_norm<T>, lrp_relu,
                               lrp_max_pool, lrp_avg_pool, lrp_adaptive_avg_pool, lrp_flatten>;

/// The relevance of the input (the input's shape and layout) and, per image, Σ R at every layer
/// boundary: layer_totals(n, l) is the relevance entering layer l's input (after batch-norm
/// merging: the layers of lrp_merge_batch_norm), layer_totals(n, L) the starting relevance.
template <class T>
struct lrp_result {
  tensor<T, 4> relevance;
  tensor<T, 2> layer_totals;
};

CVK_END_NAMESPACE
