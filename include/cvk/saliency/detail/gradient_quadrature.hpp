// cvk — computer-vision kernels, header-only C++20.
// The quadrature rules of integrated gradients: the points α in [0, 1] where the gradient is
// taken and their weights, for Captum's five methods (captum/attr/_utils/approximation_methods.py:
// Riemann left, right, middle, its "trapezoid", and Gauss–Legendre), Gauss–Legendre nodes found
// by Newton's method on the Legendre polynomial in double.
// SPDX-License-Identifier: MIT
#pragma once

#include <cmath>
#include <cstddef>
#include <numbers>
#include <string>
#include <vector>

#include "../../core/config.hpp"
#include "../../core/errors.hpp"
#include "../../detail/checks.hpp"

CVK_BEGIN_NAMESPACE

/// How integrated_gradients approximates ∫₀¹ ∂f(x′ + α(x − x′))/∂x dα (Captum's `method`).
enum class integration_method {
  riemann_left,       ///< α_k = k/n, weights 1/n
  riemann_right,      ///< α_k = (k + 1)/n, weights 1/n
  riemann_middle,     ///< α_k = (k + ½)/n, weights 1/n
  riemann_trapezoid,  ///< Captum's: α_k = k/(n − 1), weights 1/n with the first and last halved
  gauss_legendre      ///< n-point Gauss–Legendre on [0, 1] (Captum's default)
};

/// The points and weights of a quadrature rule on [0, 1]: ∫₀¹ φ ≈ Σ_k weights[k]·φ(alphas[k]);
/// alphas ascending.
struct integration_rule {
  std::vector<double> alphas;
  std::vector<double> weights;
};

namespace detail {

/// "riemann_left", ... for error messages; "?" for a value outside the enum.
inline const char* integration_method_name(integration_method m) noexcept {
  switch (m) {
    case integration_method::riemann_left:
      return "riemann_left";
    case integration_method::riemann_right:
      return "riemann_right";
    case integration_method::riemann_middle:
      return "riemann_middle";
    case integration_method::riemann_trapezoid:
      return "riemann_trapezoid";
    case integration_method::gauss_legendre:
      return "gauss_legendre";
  }
  return "?";
}

/// Throws cvk::invalid_argument unless `method` is an integration_method and `steps` enough for
/// it: >= 1, and >= 2 for riemann_trapezoid (its two end points; Captum asserts n > 1 for every
/// Riemann rule, cvk allows one step for left, right and middle).
inline void check_integration(integration_method method, index_t steps, const char* fn) {
  if (std::string(integration_method_name(method)) == "?") {
    CVK_THROW(invalid_argument, std::string(fn) + ": method is not a cvk::integration_method");
  }
  if (steps < 1) {
    CVK_THROW(invalid_argument,
              std::string(fn) + ": steps must be >= 1, got " + std::to_string(steps));
  }
  if (method == integration_method::riemann_trapezoid && steps < 2) {
    CVK_THROW(invalid_argument, std::string(fn) +
                                    ": steps must be >= 2 for riemann_trapezoid (its first and "
                                    "last points are the path's ends), got " +
                                    std::to_string(steps));
  }
}

/// P_n(z) and P_n′(z) by the three-term recurrence (k + 1)P_{k+1} = (2k + 1)z·P_k − k·P_{k−1}.
/// The derivative n(z·P_n − P_{n−1})/(z² − 1) is only used inside (−1, 1).
inline void legendre_value(index_t n, double z, double& p, double& dp) noexcept {
  double previous = 1.0;
  double current = z;
  for (index_t k = 1; k < n; ++k) {
    const double kd = static_cast<double>(k);
    const double next = ((2.0 * kd + 1.0) * z * current - kd * previous) / (kd + 1.0);
    previous = current;
    current = next;
  }
  p = current;
  dp = static_cast<double>(n) * (z * current - previous) / (z * z - 1.0);
}

/// The n-point Gauss–Legendre rule on [−1, 1], nodes ascending, in `nodes` and `weights`
/// (numpy.polynomial.legendre.leggauss's values to about 1e-15). Each positive root is found by
/// Newton's method from Tricomi's estimate cos(π(i + 3/4)/(n + ½)); the negative roots and the
/// weights 2/((1 − z²)·P_n′(z)²) are mirrored, so the rule is symmetric exactly and the middle
/// node of an odd rule is 0. Cost O(n²).
inline void gauss_legendre_nodes(index_t n, double* nodes, double* weights) noexcept {
  const index_t half = (n + 1) / 2;
  const double nd = static_cast<double>(n);
  for (index_t i = 0; i < half; ++i) {
    double z = std::cos(std::numbers::pi * (static_cast<double>(i) + 0.75) / (nd + 0.5));
    if (n % 2 == 1 && i == half - 1) z = 0.0;  // P_n is odd: 0 is a root
    double p = 0.0;
    double dp = 0.0;
    if (z != 0.0) {
      // Quadratic convergence: once a step is below 1e-15 the next one only moves the last bit.
      for (int iteration = 0; iteration < 100; ++iteration) {
        legendre_value(n, z, p, dp);
        const double step = p / dp;
        z -= step;
        if (std::abs(step) <= 1e-15) break;
      }
    }
    legendre_value(n, z, p, dp);
    const double w = 2.0 / ((1.0 - z * z) * dp * dp);
    nodes[n - 1 - i] = z;
    nodes[i] = -z;
    weights[n - 1 - i] = w;
    weights[i] = w;
  }
}

/// The rule of `method` with `steps` points (arguments checked by check_integration; a rule too
/// large to allocate is cvk::out_of_range naming `fn`).
inline integration_rule make_integration_rule(integration_method method, index_t steps,
                                              const char* fn) {
  integration_rule rule;
  const auto describe = [&] { return std::to_string(steps) + " steps"; };
  rule.alphas = checked_vector<double>(steps, fn, "the integration rule", describe);
  rule.weights = checked_vector<double>(steps, fn, "the integration rule", describe);
  const auto n = static_cast<std::size_t>(steps);
  for (double& w : rule.weights) w = 1.0 / static_cast<double>(steps);
  const double nd = static_cast<double>(steps);
  for (std::size_t k = 0; k < n; ++k) {
    const double kd = static_cast<double>(k);
    switch (method) {
      case integration_method::riemann_left:
        rule.alphas[k] = kd / nd;
        break;
      case integration_method::riemann_right:
        rule.alphas[k] = (kd + 1.0) / nd;
        break;
      case integration_method::riemann_middle:
        rule.alphas[k] = (2.0 * kd + 1.0) / (2.0 * nd);
        break;
      case integration_method::riemann_trapezoid:
        rule.alphas[k] = kd / (nd - 1.0);
        break;
      case integration_method::gauss_legendre:
        break;
    }
  }
  if (method == integration_method::riemann_trapezoid) {
    // Captum's step sizes: 1/n everywhere, halved at both ends, so they sum to (n − 1)/n and
    // not to 1 (the points are n − 1 intervals of 1/(n − 1) apart). Kept for parity: the result
    // is (n − 1)/n times the composite trapezoid rule's.
    rule.weights.front() /= 2.0;
    rule.weights.back() /= 2.0;
  } else if (method == integration_method::gauss_legendre) {
    gauss_legendre_nodes(steps, rule.alphas.data(), rule.weights.data());
    for (std::size_t k = 0; k < n; ++k) {  // [−1, 1] → [0, 1] as Captum: α = ½(1 + ξ), w = ½ω
      rule.alphas[k] = 0.5 * (1.0 + rule.alphas[k]);
      rule.weights[k] = 0.5 * rule.weights[k];
    }
  }
  return rule;
}

}  // namespace detail

CVK_END_NAMESPACE
