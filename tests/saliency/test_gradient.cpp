// cvk — computer-vision kernels, header-only C++20.
// Tests of cvk/saliency/gradient.hpp: vanilla_gradient, gradient_x_input, smooth_grad and
// integrated_gradients driven by analytic models written here as gradient callables — a
// quadratic f = Σ w⊙x² + v⊙x (closed-form integrated gradients, exact completeness), a power
// model (Gauss–Legendre exactness up to degree 2n − 1) and the tanh MLP of
// tests/gen_saliency_gradient_fixtures.py (PyTorch 1.13 goldens, SmoothGrad with the generator
// replayed in Python) — against plain reference loops, in both layouts, strided and Eigen
// storage, bit-identical for any batch size and thread count; the quadrature rules; NaN inputs;
// the callable-call counts and batch bound; the errors.
// SPDX-License-Identifier: MIT
#include <cvk/core/rng.hpp>
#include <cvk/saliency/gradient.hpp>

#if defined(CVK_TEST_HAS_EIGEN)
#  include <cvk/adapt/eigen.hpp>
#endif

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "support/compare.hpp"
#include "support/conv_reference.hpp"
#include "support/fixtures.hpp"

namespace {

using cvk::index_t;
using nchw_t = std::array<index_t, 4>;
using cvk::layout;

std::size_t image_size(const nchw_t& e) { return static_cast<std::size_t>(e[1] * e[2] * e[3]); }
std::size_t total_size(const nchw_t& e) { return static_cast<std::size_t>(e[0]) * image_size(e); }

/// Calls f(n, c, y, x) for every index of extents e, row-major.
template <class F>
void for_each_index(const nchw_t& e, F&& f) {
  for (index_t n = 0; n < e[0]; ++n) {
    for (index_t c = 0; c < e[1]; ++c) {
      for (index_t y = 0; y < e[2]; ++y) {
        for (index_t x = 0; x < e[3]; ++x) f(n, c, y, x);
      }
    }
  }
}

/// Image n of an NCHW-ordered vector.
template <class T>
std::vector<T> image_of(const std::vector<T>& x, const nchw_t& e, index_t n) {
  const std::size_t size = image_size(e);
  const auto first = x.begin() + static_cast<std::ptrdiff_t>(static_cast<std::size_t>(n) * size);
  return {first, first + static_cast<std::ptrdiff_t>(size)};
}

// ---------------------------------------------------------------------------------------------
// Analytic models. Each gives score(image) and gradient(image) of one C·H·W image in NCHW order;
// the callables and the reference loops call the same functions, so values agree bit for bit.

/// f(x) = Σ w⊙x² + v⊙x: ∂f/∂x = 2w⊙x + v; along x′ + α(x − x′) the integrated gradient is
/// (x − x′)(w(x + x′) + v) exactly.
template <class T>
struct quadratic_model {
  std::vector<T> w, v;
  [[nodiscard]] T score(const std::vector<T>& x) const {
    T s = 0;
    for (std::size_t e = 0; e < x.size(); ++e) s += w[e] * x[e] * x[e] + v[e] * x[e];
    return s;
  }
  [[nodiscard]] std::vector<T> gradient(const std::vector<T>& x) const {
    std::vector<T> g(x.size());
    for (std::size_t e = 0; e < x.size(); ++e) g[e] = T(2) * w[e] * x[e] + v[e];
    return g;
  }
};

/// f(x) = Σ c⊙x^p: from a zero baseline the integrand of element i is p·c·x^p·α^(p−1).
template <class T>
struct power_model {
  std::vector<T> c;
  int p = 1;
  static T power(T x, int k) {
    T r = 1;
    for (int i = 0; i < k; ++i) r *= x;
    return r;
  }
  [[nodiscard]] T score(const std::vector<T>& x) const {
    T s = 0;
    for (std::size_t e = 0; e < x.size(); ++e) s += c[e] * power(x[e], p);
    return s;
  }
  [[nodiscard]] std::vector<T> gradient(const std::vector<T>& x) const {
    std::vector<T> g(x.size());
    for (std::size_t e = 0; e < x.size(); ++e) {
      g[e] = static_cast<T>(p) * c[e] * power(x[e], p - 1);
    }
    return g;
  }
};

/// The fixture's network: f(x) = Σ_j v_j·tanh(Σ_i W_ji·x_i + b_j) + c over the flattened image.
template <class T>
struct mlp_model {
  std::vector<T> weight;  // hidden × inputs, row-major
  std::vector<T> bias, out;
  T offset = 0;
  [[nodiscard]] std::vector<T> hidden(const std::vector<T>& x) const {
    std::vector<T> t(bias.size());
    for (std::size_t j = 0; j < t.size(); ++j) {
      T s = bias[j];
      for (std::size_t i = 0; i < x.size(); ++i) s += weight[j * x.size() + i] * x[i];
      t[j] = std::tanh(s);
    }
    return t;
  }
  [[nodiscard]] T score(const std::vector<T>& x) const {
    const auto t = hidden(x);
    T s = offset;
    for (std::size_t j = 0; j < t.size(); ++j) s += out[j] * t[j];
    return s;
  }
  [[nodiscard]] std::vector<T> gradient(const std::vector<T>& x) const {
    const auto t = hidden(x);
    std::vector<T> g(x.size(), T(0));
    for (std::size_t j = 0; j < t.size(); ++j) {
      const T back = out[j] * (T(1) - t[j] * t[j]);
      for (std::size_t i = 0; i < x.size(); ++i) g[i] += back * weight[j * x.size() + i];
    }
    return g;
  }
};

/// What a method fed its callable.
struct call_log {
  index_t calls = 0;
  index_t images = 0;
  index_t largest_batch = 0;
};

/// A model as a gradient callable of the first form (writes scores and gradients), for batches
/// in layout `data_layout`; records its calls.
template <class T, class Model>
struct writing_callable {
  const Model* model;
  layout data_layout;
  call_log* log;
  void operator()(cvk::strided_view<const T, 4> batch, cvk::strided_view<T, 1> scores,
                  cvk::strided_view<T, 4> grads) const {
    REQUIRE(batch.is_contiguous());
    const auto axes = cvk::detail::nchw_axes(data_layout);
    const auto b = cvk::detail::permute_axes(batch, axes);
    const auto g = cvk::detail::permute_axes(grads, axes);
    ++log->calls;
    log->images += b.extent(0);
    log->largest_batch = std::max(log->largest_batch, b.extent(0));
    for (index_t n = 0; n < b.extent(0); ++n) {
      const nchw_t one{1, b.extent(1), b.extent(2), b.extent(3)};
      std::vector<T> image;
      for_each_index(
          one, [&](index_t, index_t c, index_t y, index_t x) { image.push_back(b(n, c, y, x)); });
      scores(n) = model->score(image);
      const auto d = model->gradient(image);
      std::size_t e = 0;
      for_each_index(one,
                     [&](index_t, index_t c, index_t y, index_t x) { g(n, c, y, x) = d[e++]; });
    }
  }
};

template <class T>
struct returned_gradients {
  cvk::tensor<T, 1> scores;
  cvk::tensor<T, 4> gradients;
};

/// The second form: returns {scores, gradients} as new tensors; `extra_scores` and
/// `gradient_extents` corrupt the shapes for the error tests.
template <class T, class Model>
struct returning_callable {
  writing_callable<T, Model> inner;
  index_t extra_scores = 0;
  index_t extra_width = 0;
  returned_gradients<T> operator()(cvk::strided_view<const T, 4> batch) const {
    returned_gradients<T> r{cvk::tensor<T, 1>(std::array<index_t, 1>{batch.extent(0)}),
                            cvk::tensor<T, 4>(batch.extents())};
    inner(batch, r.scores.view(), r.gradients.view());
    if (extra_scores != 0) {
      r.scores = cvk::tensor<T, 1>(std::array<index_t, 1>{batch.extent(0) + extra_scores});
    }
    if (extra_width != 0) {
      auto e = batch.extents();
      e[3] += extra_width;
      r.gradients = cvk::tensor<T, 4>(e);
    }
    return r;
  }
};

template <class T, class Model>
writing_callable<T, Model> callable(const Model& m, layout l, call_log& log) {
  return {&m, l, &log};
}

// ---------------------------------------------------------------------------------------------
// Reference loops (NCHW vectors), written from the formulas of the contract.

template <class T, class Model>
std::vector<T> reference_elementwise(const Model& m, const std::vector<T>& x, const nchw_t& e,
                                     cvk::gradient_mode mode, bool times_input) {
  std::vector<T> out;
  for (index_t n = 0; n < e[0]; ++n) {
    const auto image = image_of(x, e, n);
    const auto g = m.gradient(image);
    if (times_input) {
      for (std::size_t i = 0; i < g.size(); ++i) out.push_back(image[i] * g[i]);
    } else if (mode == cvk::gradient_mode::channel_max) {
      const auto plane = static_cast<std::size_t>(e[2] * e[3]);
      for (std::size_t p = 0; p < plane; ++p) {
        T best = std::abs(g[p]);
        for (std::size_t c = 1; c < static_cast<std::size_t>(e[1]); ++c) {
          best = std::max(best, std::abs(g[c * plane + p]));
        }
        out.push_back(best);
      }
    } else {
      for (const T v : g) out.push_back(mode == cvk::gradient_mode::absolute ? std::abs(v) : v);
    }
  }
  return out;
}

template <class T, class Model>
std::vector<T> reference_smooth_grad(const Model& m, const std::vector<T>& x, const nchw_t& e,
                                     const cvk::smooth_grad_params& p) {
  std::vector<T> out;
  const auto samples = static_cast<std::size_t>(p.samples);
  for (index_t n = 0; n < e[0]; ++n) {
    const auto image = image_of(x, e, n);
    double sigma = p.sigma;
    if (p.scale == cvk::noise_scale::range_fraction) {
      const auto [lo, hi] = std::minmax_element(image.begin(), image.end());
      sigma = p.sigma * (static_cast<double>(*hi) - static_cast<double>(*lo));
    }
    std::vector<std::vector<double>> attributions;
    for (std::size_t s = 0; s < samples; ++s) {
      cvk::rng gen(p.seed, static_cast<std::uint64_t>(n) * samples + s);
      std::vector<T> noisy(image.size());
      for (std::size_t i = 0; i < image.size(); ++i) {
        const double noise = sigma * gen.normal<double>();  // a statement of its own, as in cvk
        noisy[i] = static_cast<T>(static_cast<double>(image[i]) + noise);
      }
      const auto g = m.gradient(noisy);
      std::vector<double> a(image.size());
      for (std::size_t i = 0; i < image.size(); ++i) {
        a[i] = static_cast<double>(g[i]);
        if (p.base == cvk::smooth_grad_base::gradient_x_input) {
          a[i] *= static_cast<double>(noisy[i]);
        }
      }
      attributions.push_back(a);
    }
    for (std::size_t i = 0; i < image.size(); ++i) {
      double sum = 0.0, squares = 0.0;
      for (std::size_t s = 0; s < samples; ++s) {
        sum += attributions[s][i];
        squares += attributions[s][i] * attributions[s][i];
      }
      const double mean = sum / static_cast<double>(samples);
      double variance = 0.0;  // two passes: the textbook formula, not Welford's update
      for (std::size_t s = 0; s < samples; ++s) {
        variance += (attributions[s][i] - mean) * (attributions[s][i] - mean);
      }
      variance /= static_cast<double>(samples);
      switch (p.kind) {
        case cvk::smooth_grad_kind::smoothgrad:
          out.push_back(static_cast<T>(mean));
          break;
        case cvk::smooth_grad_kind::smoothgrad_sq:
          out.push_back(static_cast<T>(squares / static_cast<double>(samples)));
          break;
        case cvk::smooth_grad_kind::vargrad:
          out.push_back(static_cast<T>(variance));
          break;
      }
    }
  }
  return out;
}

template <class T>
struct ig_reference_result {
  std::vector<T> attributions;
  std::vector<T> delta;
};

/// `baseline` holds e[0] images or one.
template <class T, class Model>
ig_reference_result<T> reference_ig(const Model& m, const std::vector<T>& x,
                                    const std::vector<T>& baseline, const nchw_t& e,
                                    const cvk::integration_rule& rule) {
  ig_reference_result<T> r;
  const bool broadcast = baseline.size() == image_size(e);
  for (index_t n = 0; n < e[0]; ++n) {
    const auto image = image_of(x, e, n);
    const auto base = image_of(baseline, e, broadcast ? 0 : n);
    std::vector<double> sum(image.size(), 0.0);
    for (std::size_t k = 0; k < rule.alphas.size(); ++k) {
      const auto alpha = static_cast<T>(rule.alphas[k]);
      std::vector<T> point(image.size());
      for (std::size_t i = 0; i < image.size(); ++i) {
        point[i] = base[i] + alpha * (image[i] - base[i]);
      }
      const auto g = m.gradient(point);
      for (std::size_t i = 0; i < image.size(); ++i) {
        sum[i] += rule.weights[k] * static_cast<double>(g[i]);
      }
    }
    double total = 0.0;
    for (std::size_t i = 0; i < image.size(); ++i) {
      const auto a =
          static_cast<T>((static_cast<double>(image[i]) - static_cast<double>(base[i])) * sum[i]);
      r.attributions.push_back(a);
      total += static_cast<double>(a);
    }
    r.delta.push_back(static_cast<T>(
        total - (static_cast<double>(m.score(image)) - static_cast<double>(m.score(base)))));
  }
  return r;
}

// ---------------------------------------------------------------------------------------------
// Comparison helpers.

template <class T>
void require_identical(const std::vector<T>& got, const std::vector<T>& want,
                       const std::string& what) {
  INFO(what);
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    if (!cvk_test::same_value(got[i], want[i])) {
      INFO("element " << i << ": got " << got[i] << ", want " << want[i]);
      REQUIRE(cvk_test::same_value(got[i], want[i]));
    }
  }
}

/// A result against its reference loop where both sum products: identical when the build cannot
/// contract a·b + c into a fused multiply-add, else within 64 epsilons of the largest reference
/// value (the compiler may contract in one loop and not in the other, g++ -ffp-contract=fast across
/// statements, clang's default only within one).
template <class T>
void require_matching(const std::vector<T>& got, const std::vector<T>& want,
                      const std::string& what) {
  if constexpr (!cvk_test::fma_contraction) {
    require_identical(got, want, what);
  } else {
    INFO(what << " (an FMA build: within 64 epsilons)");
    REQUIRE(got.size() == want.size());
    double scale = 1.0;
    for (const T v : want) scale = std::max(scale, std::abs(static_cast<double>(v)));
    const double tolerance = 64.0 * std::numeric_limits<T>::epsilon() * scale;
    for (std::size_t i = 0; i < got.size(); ++i) {
      const bool same =
          cvk_test::same_value(got[i], want[i]) ||
          std::abs(static_cast<double>(got[i]) - static_cast<double>(want[i])) <= tolerance;
      if (!same) {
        INFO("element " << i << ": got " << got[i] << ", want " << want[i]);
        REQUIRE(same);
      }
    }
  }
}

template <class T>
void require_close(const std::vector<T>& got, const std::vector<double>& want, double abs_tol,
                   double rel_tol, const std::string& what) {
  INFO(what);
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    const auto g = static_cast<double>(got[i]);
    if (!(std::abs(g - want[i]) <= abs_tol + rel_tol * std::abs(want[i]))) {
      INFO("element " << i << ": got " << g << ", want " << want[i]);
      REQUIRE(std::abs(g - want[i]) <= abs_tol + rel_tol * std::abs(want[i]));
    }
  }
}

template <class T>
std::vector<double> as_doubles(const std::vector<T>& v) {
  return {v.begin(), v.end()};
}

/// The NCHW-ordered values of a result tensor in layout l.
template <class X>
auto values_of(const X& x, layout l) {
  return cvk_test::to_nchw(cvk::as_view(x), l);
}

template <class T>
std::vector<T> values_of_delta(const cvk::tensor<T, 1>& d) {
  return {d.data(), d.data() + d.extents()[0]};
}

template <class T>
std::vector<T> random_vector(cvk::rng& gen, std::size_t count, double lo, double hi) {
  std::vector<T> v(count);
  for (auto& x : v) x = static_cast<T>(gen.uniform(lo, hi));
  return v;
}

template <class T>
quadratic_model<T> random_quadratic(cvk::rng& gen, std::size_t size) {
  return {random_vector<T>(gen, size, -1.0, 1.0), random_vector<T>(gen, size, -1.0, 1.0)};
}

/// Tolerances against double-precision closed forms.
template <class T>
constexpr double tolerance() {
  return std::is_same_v<T, float> ? 2e-5 : 1e-12;
}

constexpr std::array<index_t, 3> batch_sizes{1, 3, 16};
constexpr std::array<int, 3> thread_counts{1, 2, 3};

}  // namespace

// ---------------------------------------------------------------------------------------------

TEST_CASE("integrated_gradients_rule: Captum's points and weights; Gauss–Legendre exactness",
          "[gradient]") {
  using cvk::integration_method;
  SECTION("Riemann rules by hand") {
    const auto left = cvk::integrated_gradients_rule(integration_method::riemann_left, 4);
    CHECK(left.alphas == std::vector<double>{0.0, 0.25, 0.5, 0.75});
    CHECK(left.weights == std::vector<double>{0.25, 0.25, 0.25, 0.25});
    const auto right = cvk::integrated_gradients_rule(integration_method::riemann_right, 4);
    CHECK(right.alphas == std::vector<double>{0.25, 0.5, 0.75, 1.0});
    const auto middle = cvk::integrated_gradients_rule(integration_method::riemann_middle, 4);
    CHECK(middle.alphas == std::vector<double>{0.125, 0.375, 0.625, 0.875});
    CHECK(middle.weights == std::vector<double>{0.25, 0.25, 0.25, 0.25});
    // Captum's trapezoid: n points 1/(n − 1) apart, weights 1/n halved at the ends (sum (n−1)/n).
    const auto trapezoid = cvk::integrated_gradients_rule(integration_method::riemann_trapezoid, 5);
    CHECK(trapezoid.alphas == std::vector<double>{0.0, 0.25, 0.5, 0.75, 1.0});
    CHECK(trapezoid.weights == std::vector<double>{0.1, 0.2, 0.2, 0.2, 0.1});
    const auto one = cvk::integrated_gradients_rule(integration_method::riemann_middle, 1);
    CHECK(one.alphas == std::vector<double>{0.5});
    CHECK(one.weights == std::vector<double>{1.0});
  }
  SECTION("Gauss–Legendre by hand") {
    const auto one = cvk::integrated_gradients_rule(integration_method::gauss_legendre, 1);
    CHECK(one.alphas == std::vector<double>{0.5});
    CHECK(one.weights == std::vector<double>{1.0});
    const auto two = cvk::integrated_gradients_rule(integration_method::gauss_legendre, 2);
    CHECK(two.alphas[0] == Approx(0.5 - 0.5 / std::sqrt(3.0)).epsilon(1e-15));
    CHECK(two.alphas[1] == Approx(0.5 + 0.5 / std::sqrt(3.0)).epsilon(1e-15));
    CHECK(two.weights[0] == Approx(0.5).epsilon(1e-15));
    const auto three = cvk::integrated_gradients_rule(integration_method::gauss_legendre, 3);
    CHECK(three.alphas[1] == 0.5);
    CHECK(three.alphas[0] == Approx(0.5 - 0.5 * std::sqrt(0.6)).epsilon(1e-15));
    CHECK(three.weights[0] == Approx(5.0 / 18.0).epsilon(1e-15));
    CHECK(three.weights[1] == Approx(8.0 / 18.0).epsilon(1e-15));
    CHECK(three.weights[2] == three.weights[0]);
  }
  SECTION("n points integrate α^d exactly for d <= 2n − 1, with the known error at d = 2n") {
    for (index_t n = 1; n <= 64; n += (n < 12 ? 1 : 13)) {
      INFO("n = " << n);
      const auto rule = cvk::integrated_gradients_rule(integration_method::gauss_legendre, n);
      REQUIRE(rule.alphas.size() == static_cast<std::size_t>(n));
      REQUIRE(std::is_sorted(rule.alphas.begin(), rule.alphas.end()));
      for (int d = 0; d <= 2 * n; ++d) {
        double sum = 0.0;
        for (std::size_t k = 0; k < rule.alphas.size(); ++k) {
          sum += rule.weights[k] * std::pow(rule.alphas[k], d);
        }
        const double exact = 1.0 / static_cast<double>(d + 1);
        if (d <= 2 * n - 1) {
          INFO("degree " << d);
          CHECK(std::abs(sum - exact) <= 4e-15);
        } else if (n <= 6) {
          // Error of the n-point rule on [0, 1] for α^(2n): (n!)^4 / ((2n + 1)·((2n)!)^2).
          double factorial_n = 1.0, factorial_2n = 1.0;
          for (index_t i = 2; i <= n; ++i) factorial_n *= static_cast<double>(i);
          for (index_t i = 2; i <= 2 * n; ++i) factorial_2n *= static_cast<double>(i);
          const double error = std::pow(factorial_n, 4) /
                               ((2.0 * static_cast<double>(n) + 1.0) * factorial_2n * factorial_2n);
          CHECK(exact - sum == Approx(error).epsilon(1e-6));
        }
      }
    }
  }
  SECTION("errors") {
    CHECK_THROWS_AS(cvk::integrated_gradients_rule(integration_method::gauss_legendre, 0),
                    cvk::invalid_argument);
    CHECK_THROWS_AS(cvk::integrated_gradients_rule(integration_method::riemann_left, -3),
                    cvk::invalid_argument);
    CHECK_THROWS_WITH(cvk::integrated_gradients_rule(integration_method::riemann_trapezoid, 1),
                      Catch::Contains("steps must be >= 2 for riemann_trapezoid"));
    CHECK_THROWS_WITH(cvk::integrated_gradients_rule(static_cast<integration_method>(99), 5),
                      Catch::Contains("not a cvk::integration_method"));
  }
}

TEST_CASE("integrated_gradients_rule: numpy's leggauss and Captum's torch.linspace points",
          "[gradient]") {
  const cvk_test::fixture_file file(cvk_test::test_data_path("saliency_gradient_torch.txt"));
  std::size_t tables = 0;
  for (const auto method :
       {cvk::integration_method::riemann_left, cvk::integration_method::riemann_right,
        cvk::integration_method::riemann_middle, cvk::integration_method::riemann_trapezoid,
        cvk::integration_method::gauss_legendre}) {
    for (const index_t n : {1, 2, 3, 5, 7, 10, 20, 50, 64}) {
      const std::string name = std::string("rule_") + cvk::detail::integration_method_name(method) +
                               "_" + std::to_string(n);
      if (!file.has_table(name)) continue;
      ++tables;
      INFO(name);
      const auto want = file.table(name).values<double>();  // alphas, then weights
      const auto rule = cvk::integrated_gradients_rule(method, n);
      const auto count = static_cast<std::size_t>(n);
      REQUIRE(want.size() == 2 * count);
      for (std::size_t k = 0; k < count; ++k) {
        INFO("point " << k);
        CHECK(std::abs(rule.alphas[k] - want[k]) <= 2e-16);
        // leggauss's weights are themselves only within ~1.3e-12 of the exact ones at n = 64
        // (against 40-digit mpmath; cvk's within 1e-13).
        CHECK(std::abs(rule.weights[k] - want[count + k]) <= 2e-12 * want[count + k]);
      }
    }
  }
  CHECK(tables == 9 + 4 * 8);
}

TEMPLATE_TEST_CASE(
    "vanilla_gradient and gradient_x_input: reference loop, layouts, storages, "
    "batch sizes and threads",
    "[gradient]", float, double) {
  using T = TestType;
  cvk::rng gen(11, sizeof(T));
  const nchw_t e{5, 3, 4, 6};
  const auto model = random_quadratic<T>(gen, image_size(e));
  const auto x = random_vector<T>(gen, total_size(e), -2.0, 2.0);
  const std::array<cvk::gradient_mode, 3> modes{
      cvk::gradient_mode::absolute, cvk::gradient_mode::raw, cvk::gradient_mode::channel_max};
  for (const layout l : cvk_test::both_layouts) {
    for (const auto s : cvk_test::all_storages) {
      const auto stored = cvk_test::store(x, e, l, s);
      for (const auto mode : modes) {
        INFO("layout " << (l == layout::nchw ? "nchw" : "nhwc") << ", " << cvk_test::to_string(s)
                       << ", mode " << static_cast<int>(mode));
        const auto want = reference_elementwise(model, x, e, mode, false);
        for (const index_t batch : batch_sizes) {
          for (const int threads : thread_counts) {
            call_log log;
            const cvk::vanilla_gradient_params p{
                .mode = mode, .model = {.batch_size = batch, .data_layout = l}, .threads = threads};
            const auto got = cvk::vanilla_gradient(stored.view, callable<T>(model, l, log), p);
            require_identical(values_of(got, l), want, "vanilla_gradient");
            CHECK(log.images == e[0]);
            CHECK(log.largest_batch == std::min(batch, e[0]));
            CHECK(log.calls == (e[0] + batch - 1) / batch);
          }
        }
        // The write-into form, into a strided result.
        nchw_t out_e = e;
        if (mode == cvk::gradient_mode::channel_max) out_e[1] = 1;
        auto out = cvk_test::store(std::vector<T>(total_size(out_e), T(7)), out_e, l,
                                   cvk_test::storage::reversed_inner);
        call_log log;
        cvk::vanilla_gradient(stored.view, callable<T>(model, l, log),
                              {.mode = mode, .model = {.batch_size = 2, .data_layout = l}},
                              out.view);
        require_identical(cvk_test::to_nchw(out.view, l), want, "vanilla_gradient into out");
      }
      const auto want = reference_elementwise(model, x, e, cvk::gradient_mode::raw, true);
      for (const index_t batch : batch_sizes) {
        call_log log;
        const auto got =
            cvk::gradient_x_input(stored.view, callable<T>(model, l, log),
                                  {.model = {.batch_size = batch, .data_layout = l}, .threads = 2});
        require_identical(values_of(got, l), want, "gradient_x_input");
        CHECK(log.images == e[0]);
      }
      cvk::tensor<T, 4> out(cvk::detail::from_nchw(e, l));
      call_log log;
      cvk::gradient_x_input(stored.view, callable<T>(model, l, log),
                            {.model = {.batch_size = 4, .data_layout = l}}, out);
      require_identical(values_of(out, l), want, "gradient_x_input into out");
    }
  }
}

TEMPLATE_TEST_CASE("smooth_grad: the reference loop with the same cvk::rng streams", "[gradient]",
                   float, double) {
  using T = TestType;
  cvk::rng gen(12, sizeof(T));
  const nchw_t e{3, 2, 3, 5};
  const auto model = random_quadratic<T>(gen, image_size(e));
  const auto x = random_vector<T>(gen, total_size(e), -1.0, 3.0);
  const std::array<cvk::smooth_grad_kind, 3> kinds{cvk::smooth_grad_kind::smoothgrad,
                                                   cvk::smooth_grad_kind::smoothgrad_sq,
                                                   cvk::smooth_grad_kind::vargrad};
  for (const auto kind : kinds) {
    for (const auto base :
         {cvk::smooth_grad_base::gradient, cvk::smooth_grad_base::gradient_x_input}) {
      for (const auto scale : {cvk::noise_scale::absolute, cvk::noise_scale::range_fraction}) {
        cvk::smooth_grad_params p{.kind = kind,
                                  .samples = 7,
                                  .sigma = scale == cvk::noise_scale::absolute ? 0.3 : 0.15,
                                  .scale = scale,
                                  .base = base,
                                  .seed = 99};
        INFO("kind " << static_cast<int>(kind) << ", base " << static_cast<int>(base) << ", scale "
                     << static_cast<int>(scale));
        const auto want = reference_smooth_grad(model, x, e, p);
        for (const layout l : cvk_test::both_layouts) {
          const auto stored = cvk_test::store(x, e, l, cvk_test::storage::padded_inner);
          p.model = {.batch_size = 4, .data_layout = l};
          call_log log;
          const auto got = cvk::smooth_grad(stored.view, callable<T>(model, l, log), p);
          const auto values = values_of(got, l);
          if (kind == cvk::smooth_grad_kind::vargrad) {
            // Welford's update against two passes: equal up to rounding.
            require_close(values, as_doubles(want), 1e-14, std::is_same_v<T, float> ? 1e-6 : 1e-12,
                          "vargrad");
          } else {
            require_matching(values, want, "smooth_grad");
          }
          CHECK(log.images == e[0] * p.samples);
          CHECK(log.largest_batch == 4);
        }
      }
    }
  }
}

TEMPLATE_TEST_CASE(
    "smooth_grad: bit-identical for any batch size, thread count and layout; "
    "sigma = 0 gives the gradient",
    "[gradient]", float, double) {
  using T = TestType;
  cvk::rng gen(13, sizeof(T));
  const nchw_t e{4, 3, 5, 7};
  const auto model = random_quadratic<T>(gen, image_size(e));
  const auto x = random_vector<T>(gen, total_size(e), -1.0, 1.0);
  for (const auto kind : {cvk::smooth_grad_kind::smoothgrad, cvk::smooth_grad_kind::smoothgrad_sq,
                          cvk::smooth_grad_kind::vargrad}) {
    INFO("kind " << static_cast<int>(kind));
    std::vector<T> first;
    for (const layout l : cvk_test::both_layouts) {
      for (const auto s : {cvk_test::storage::contiguous, cvk_test::storage::reversed_inner,
                           cvk_test::storage::transposed}) {
        const auto stored = cvk_test::store(x, e, l, s);
        for (const index_t batch : batch_sizes) {
          for (const int threads : thread_counts) {
            call_log log;
            const auto got = cvk::smooth_grad(stored.view, callable<T>(model, l, log),
                                              {.kind = kind,
                                               .samples = 5,
                                               .seed = 2024,
                                               .model = {.batch_size = batch, .data_layout = l},
                                               .threads = threads});
            const auto values = values_of(got, l);
            if (first.empty()) {
              first = values;
            } else {
              require_identical(values, first, "batch size / threads / layout invariance");
            }
            CHECK(log.largest_batch <= batch);
          }
        }
      }
    }
    // Another seed draws other noise.
    call_log log;
    const auto other = cvk::smooth_grad(
        cvk_test::store(x, e, layout::nchw, cvk_test::storage::contiguous).view,
        callable<T>(model, layout::nchw, log), {.kind = kind, .samples = 5, .seed = 2025});
    CHECK(values_of(other, layout::nchw) != first);
  }
  SECTION("sigma = 0: every sample is the input") {
    const auto stored = cvk_test::store(x, e, layout::nchw, cvk_test::storage::contiguous);
    call_log log;
    const auto g = reference_elementwise(model, x, e, cvk::gradient_mode::raw, false);
    // 4 samples: 4g and 4g² are exact in double, so the means are g and g² exactly.
    const auto mean = cvk::smooth_grad(stored.view, callable<T>(model, layout::nchw, log),
                                       {.samples = 4, .sigma = 0.0});
    require_matching(values_of(mean, layout::nchw), g, "smoothgrad");
    const auto squares = cvk::smooth_grad(stored.view, callable<T>(model, layout::nchw, log),
                                          {.kind = cvk::smooth_grad_kind::smoothgrad_sq,
                                           .samples = 4,
                                           .sigma = 0.0,
                                           .scale = cvk::noise_scale::absolute});
    std::vector<T> g2;
    g2.reserve(g.size());
    for (const T v : g) g2.push_back(v * v);
    require_matching(values_of(squares, layout::nchw), g2, "smoothgrad_sq");
    const auto variance =
        cvk::smooth_grad(stored.view, callable<T>(model, layout::nchw, log),
                         {.kind = cvk::smooth_grad_kind::vargrad, .samples = 6, .sigma = 0.0});
    require_identical(values_of(variance, layout::nchw), std::vector<T>(g.size(), T(0)),
                      "vargrad: exactly zero");
  }
  SECTION("range_fraction is sigma·(max − min) of each image") {
    const nchw_t one{1, e[1], e[2], e[3]};
    const auto image = image_of(x, e, 2);
    const auto [lo, hi] = std::minmax_element(image.begin(), image.end());
    const double range = static_cast<double>(*hi) - static_cast<double>(*lo);
    call_log log;
    // Image 2 alone draws from streams 0..samples−1, as image 0 of a batch of one.
    const auto relative = cvk::smooth_grad(
        cvk_test::store(image, one, layout::nchw, cvk_test::storage::contiguous).view,
        callable<T>(model, layout::nchw, log), {.samples = 4, .sigma = 0.2, .seed = 5});
    const auto absolute = cvk::smooth_grad(
        cvk_test::store(image, one, layout::nchw, cvk_test::storage::contiguous).view,
        callable<T>(model, layout::nchw, log),
        {.samples = 4, .sigma = 0.2 * range, .scale = cvk::noise_scale::absolute, .seed = 5});
    require_identical(values_of(relative, layout::nchw), values_of(absolute, layout::nchw),
                      "range_fraction");
  }
}

TEMPLATE_TEST_CASE("integrated_gradients: the closed-form integral of a quadratic model",
                   "[gradient]", float, double) {
  using T = TestType;
  using cvk::integration_method;
  cvk::rng gen(14, sizeof(T));
  const nchw_t e{3, 2, 4, 3};
  const auto model = random_quadratic<T>(gen, image_size(e));
  const auto x = random_vector<T>(gen, total_size(e), -1.0, 1.0);
  const auto baseline = random_vector<T>(gen, total_size(e), -1.0, 1.0);
  const auto stored_x = cvk_test::store(x, e, layout::nchw, cvk_test::storage::contiguous);
  const auto stored_b = cvk_test::store(baseline, e, layout::nchw, cvk_test::storage::contiguous);
  for (const index_t n : {index_t{1}, index_t{2}, index_t{7}, index_t{50}}) {
    for (const auto method :
         {integration_method::riemann_left, integration_method::riemann_right,
          integration_method::riemann_middle, integration_method::riemann_trapezoid,
          integration_method::gauss_legendre}) {
      if (method == integration_method::riemann_trapezoid && n < 2) continue;
      INFO("steps " << n << ", " << cvk::detail::integration_method_name(method));
      call_log log;
      const auto r = cvk::integrated_gradients(stored_x.view, stored_b.view,
                                               callable<T>(model, layout::nchw, log),
                                               {.steps = n, .method = method});
      // Integrand along the path: a + b·α with a = 2w·x′ + v, b = 2w·(x − x′).
      std::vector<double> want(x.size());
      std::vector<double> delta(static_cast<std::size_t>(e[0]), 0.0);
      const auto nd = static_cast<double>(n);
      for (std::size_t i = 0; i < x.size(); ++i) {
        const std::size_t k = i % image_size(e);
        const double span = static_cast<double>(x[i]) - static_cast<double>(baseline[i]);
        const double a = 2.0 * model.w[k] * static_cast<double>(baseline[i]) + model.v[k];
        const double b = 2.0 * model.w[k] * span;
        double integral = a + b / 2;  // middle and Gauss–Legendre: exact for a linear integrand
        if (method == integration_method::riemann_left) integral = a + b * (nd - 1) / (2 * nd);
        if (method == integration_method::riemann_right) integral = a + b * (nd + 1) / (2 * nd);
        if (method == integration_method::riemann_trapezoid) integral = (nd - 1) / nd * (a + b / 2);
        want[i] = span * integral;
        delta[i / image_size(e)] += span * (integral - (a + b / 2));
      }
      require_close(values_of(r.attributions, layout::nchw), want, tolerance<T>(), tolerance<T>(),
                    "attributions");
      require_close(values_of_delta(r.delta), delta, 10 * tolerance<T>(), 0.0, "delta");
      CHECK(log.images == e[0] * n + 2 * e[0]);
    }
  }
}

TEMPLATE_TEST_CASE("integrated_gradients: n Gauss–Legendre points are exact up to degree 2n − 1",
                   "[gradient]", float, double) {
  using T = TestType;
  cvk::rng gen(15, sizeof(T));
  const nchw_t e{2, 1, 3, 4};
  const auto x = random_vector<T>(gen, total_size(e), 0.5, 1.0);
  const auto stored = cvk_test::store(x, e, layout::nchw, cvk_test::storage::contiguous);
  for (index_t n = 1; n <= 5; ++n) {
    for (const int p : {static_cast<int>(2 * n), static_cast<int>(2 * n + 1)}) {
      INFO(n << " points, f = Σ c·x^" << p << " (integrand degree " << p - 1 << ")");
      const power_model<T> model{random_vector<T>(gen, image_size(e), 0.5, 1.5), p};
      call_log log;
      const auto r = cvk::integrated_gradients(
          stored.view, callable<T>(model, layout::nchw, log),
          {.steps = n, .method = cvk::integration_method::gauss_legendre});
      const auto got = values_of(r.attributions, layout::nchw);
      double worst = 0.0;
      for (std::size_t i = 0; i < x.size(); ++i) {
        const double exact = static_cast<double>(model.c[i % image_size(e)]) *
                             std::pow(static_cast<double>(x[i]), p);
        worst = std::max(worst, std::abs(static_cast<double>(got[i]) - exact) / exact);
      }
      if (p - 1 <= 2 * n - 1) {
        CHECK(worst <= (std::is_same_v<T, float> ? 1e-5 : 1e-13));
      } else {
        CHECK(worst > 1e-6);  // the first degree the rule misses
      }
    }
  }
}

TEMPLATE_TEST_CASE(
    "integrated_gradients: reference loop, baselines, layouts, batch sizes, "
    "threads and callable calls",
    "[gradient]", float, double) {
  using T = TestType;
  using cvk::integration_method;
  cvk::rng gen(16, sizeof(T));
  const nchw_t e{4, 3, 3, 5};
  const nchw_t one_image{1, e[1], e[2], e[3]};
  const mlp_model<T> model{random_vector<T>(gen, 6 * image_size(e), -0.5, 0.5),
                           random_vector<T>(gen, 6, -0.5, 0.5), random_vector<T>(gen, 6, -1.0, 1.0),
                           T(0.25)};
  const auto x = random_vector<T>(gen, total_size(e), -1.0, 1.0);
  const auto baseline = random_vector<T>(gen, total_size(e), -1.0, 1.0);
  const auto single = random_vector<T>(gen, image_size(e), -1.0, 1.0);
  std::vector<T> broadcast;
  for (index_t n = 0; n < e[0]; ++n) {
    broadcast.insert(broadcast.end(), single.begin(), single.end());
  }
  const std::vector<T> zeros(image_size(e), T(0));

  for (const auto method :
       {integration_method::riemann_left, integration_method::riemann_right,
        integration_method::riemann_middle, integration_method::riemann_trapezoid,
        integration_method::gauss_legendre}) {
    const index_t steps = 9;
    INFO(cvk::detail::integration_method_name(method));
    const auto rule = cvk::integrated_gradients_rule(method, steps);
    const auto want_given = reference_ig(model, x, baseline, e, rule);
    const auto want_single = reference_ig(model, x, single, e, rule);
    const auto want_zero = reference_ig(model, x, zeros, e, rule);
    for (const layout l : cvk_test::both_layouts) {
      for (const auto s : cvk_test::all_storages) {
        INFO("layout " << (l == layout::nchw ? "nchw" : "nhwc") << ", " << cvk_test::to_string(s));
        const auto sx = cvk_test::store(x, e, l, s);
        const auto sb = cvk_test::store(baseline, e, l, s);
        const auto s1 = cvk_test::store(single, one_image, l, s);
        for (const index_t batch : batch_sizes) {
          for (const int threads : thread_counts) {
            const cvk::integrated_gradients_params p{
                .steps = steps,
                .method = method,
                .model = {.batch_size = batch, .data_layout = l},
                .threads = threads};
            call_log log;
            const auto given =
                cvk::integrated_gradients(sx.view, sb.view, callable<T>(model, l, log), p);
            require_matching(values_of(given.attributions, l), want_given.attributions,
                             "given baseline");
            require_matching(values_of_delta(given.delta), want_given.delta, "given delta");
            CHECK(log.images == e[0] * steps + 2 * e[0]);
            CHECK(log.largest_batch == batch);
            call_log log1;
            const auto broad =
                cvk::integrated_gradients(sx.view, s1.view, callable<T>(model, l, log1), p);
            require_matching(values_of(broad.attributions, l), want_single.attributions,
                             "broadcast baseline");
            require_matching(values_of_delta(broad.delta), want_single.delta, "broadcast delta");
            CHECK(log1.images == e[0] * steps + e[0] + 1);
            call_log log0;
            const auto zero = cvk::integrated_gradients(sx.view, callable<T>(model, l, log0), p);
            require_matching(values_of(zero.attributions, l), want_zero.attributions,
                             "zero baseline");
            require_matching(values_of_delta(zero.delta), want_zero.delta, "zero delta");
            CHECK(log0.images == e[0] * steps + e[0] + 1);
          }
        }
        // Write-into forms: without delta the endpoints are not evaluated.
        auto attributions = cvk_test::store(std::vector<T>(total_size(e), T(3)), e, l,
                                            cvk_test::storage::padded_inner);
        const cvk::integrated_gradients_params p{
            .steps = steps, .method = method, .model = {.batch_size = 5, .data_layout = l}};
        call_log log;
        cvk::integrated_gradients(sx.view, sb.view, callable<T>(model, l, log), p,
                                  attributions.view);
        require_matching(cvk_test::to_nchw(attributions.view, l), want_given.attributions,
                         "into attributions");
        CHECK(log.images == e[0] * steps);
        std::vector<T> delta(static_cast<std::size_t>(e[0]), T(9));
        cvk::integrated_gradients(sx.view, sb.view, callable<T>(model, l, log), p,
                                  attributions.view, delta);
        require_matching(delta, want_given.delta, "into delta");
        call_log log0;
        cvk::integrated_gradients(sx.view, callable<T>(model, l, log0), p, attributions.view);
        require_matching(cvk_test::to_nchw(attributions.view, l), want_zero.attributions,
                         "into attributions, zero baseline");
        CHECK(log0.images == e[0] * steps);
        cvk::integrated_gradients(sx.view, callable<T>(model, l, log0), p, attributions.view,
                                  delta);
        require_matching(delta, want_zero.delta, "into delta, zero baseline");
      }
    }
  }
  SECTION("the broadcast baseline equals its copies; the zero baseline equals zeros") {
    const auto sx = cvk_test::store(x, e, layout::nchw, cvk_test::storage::contiguous);
    call_log log;
    const auto a = cvk::integrated_gradients(
        sx.view,
        cvk_test::store(single, one_image, layout::nchw, cvk_test::storage::contiguous).view,
        callable<T>(model, layout::nchw, log));
    const auto b = cvk::integrated_gradients(
        sx.view, cvk_test::store(broadcast, e, layout::nchw, cvk_test::storage::contiguous).view,
        callable<T>(model, layout::nchw, log));
    require_identical(values_of(a.attributions, layout::nchw),
                      values_of(b.attributions, layout::nchw), "broadcast");
    require_identical(values_of_delta(a.delta), values_of_delta(b.delta), "broadcast delta");
    const auto z = cvk::integrated_gradients(sx.view, callable<T>(model, layout::nchw, log));
    const auto z2 = cvk::integrated_gradients(sx.view, cvk::tensor<T, 4>(e),
                                              callable<T>(model, layout::nchw, log));
    require_identical(values_of(z.attributions, layout::nchw),
                      values_of(z2.attributions, layout::nchw), "zero");
    require_identical(values_of_delta(z.delta), values_of_delta(z2.delta), "zero delta");
  }
}

TEMPLATE_TEST_CASE("gradient methods: PyTorch 1.13 goldens (tanh MLP, autograd)", "[gradient]",
                   float, double) {
  using T = TestType;
  const cvk_test::fixture_file file(cvk_test::test_data_path("saliency_gradient_torch.txt"));
  const std::string dt = std::is_same_v<T, float> ? "float32" : "float64";
  const auto read = [&](const std::string& name) {
    std::vector<T> v;
    for (const double d : file.table(name).template values<double>()) {
      v.push_back(static_cast<T>(d));
    }
    return v;
  };
  const auto golden = [&](const std::string& name) {
    return file.table(dt + "_" + name).template values<double>();
  };
  const mlp_model<T> model{read("mlp_weight"), read("mlp_bias"), read("mlp_out"),
                           read("mlp_offset").at(0)};
  const auto shape = file.table("shape").template values<index_t>();
  const nchw_t e{shape.at(0), shape.at(1), shape.at(2), shape.at(3)};
  const auto x = read("x");
  const auto baseline = read("baseline");
  const double tol = std::is_same_v<T, float> ? 3e-5 : 1e-12;

  for (const layout l : cvk_test::both_layouts) {
    INFO("layout " << (l == layout::nchw ? "nchw" : "nhwc"));
    const auto sx = cvk_test::store(x, e, l, cvk_test::storage::contiguous);
    const auto sb = cvk_test::store(baseline, e, l, cvk_test::storage::contiguous);
    const cvk::model_options m{.batch_size = 3, .data_layout = l};
    call_log log;
    const auto g = callable<T>(model, l, log);
    require_close(
        values_of(cvk::vanilla_gradient(sx.view, g, {.mode = cvk::gradient_mode::raw, .model = m}),
                  l),
        golden("gradient"), tol, tol, "raw gradient");
    require_close(values_of(cvk::vanilla_gradient(sx.view, g, {.model = m}), l),
                  golden("abs_gradient"), tol, tol, "absolute gradient");
    require_close(values_of(cvk::vanilla_gradient(
                                sx.view, g, {.mode = cvk::gradient_mode::channel_max, .model = m}),
                            l),
                  golden("channel_max"), tol, tol, "channel max");
    require_close(values_of(cvk::gradient_x_input(sx.view, g, {.model = m}), l), golden("x_input"),
                  tol, tol, "gradient × input");

    for (const auto method :
         {cvk::integration_method::riemann_left, cvk::integration_method::riemann_right,
          cvk::integration_method::riemann_middle, cvk::integration_method::riemann_trapezoid,
          cvk::integration_method::gauss_legendre}) {
      for (const index_t steps : {index_t{7}, index_t{50}}) {
        const std::string name = std::string("ig_") + cvk::detail::integration_method_name(method) +
                                 "_" + std::to_string(steps);
        INFO(name);
        const cvk::integrated_gradients_params p{.steps = steps, .method = method, .model = m};
        const auto zero = cvk::integrated_gradients(sx.view, g, p);
        require_close(values_of(zero.attributions, l), golden(name + "_zero"), tol, tol,
                      "zero baseline");
        require_close(values_of_delta(zero.delta), golden(name + "_zero_delta"), 4 * tol, tol,
                      "zero baseline delta");
        const auto given = cvk::integrated_gradients(sx.view, sb.view, g, p);
        require_close(values_of(given.attributions, l), golden(name + "_given"), tol, tol,
                      "given baseline");
        require_close(values_of_delta(given.delta), golden(name + "_given_delta"), 4 * tol, tol,
                      "given baseline delta");
      }
    }

    // samples, sigma (range_fraction), sigma (absolute), seed
    const auto sg = file.table("smooth_grad").template values<double>();
    for (const auto kind : {cvk::smooth_grad_kind::smoothgrad, cvk::smooth_grad_kind::smoothgrad_sq,
                            cvk::smooth_grad_kind::vargrad}) {
      for (const auto base :
           {cvk::smooth_grad_base::gradient, cvk::smooth_grad_base::gradient_x_input}) {
        for (const auto scale : {cvk::noise_scale::range_fraction, cvk::noise_scale::absolute}) {
          const std::string name =
              std::string("smooth_") +
              (kind == cvk::smooth_grad_kind::smoothgrad      ? "smoothgrad"
               : kind == cvk::smooth_grad_kind::smoothgrad_sq ? "smoothgrad_sq"
                                                              : "vargrad") +
              (base == cvk::smooth_grad_base::gradient ? "_gradient" : "_x_input") +
              (scale == cvk::noise_scale::range_fraction ? "_range" : "_absolute");
          INFO(name);
          const auto got = cvk::smooth_grad(
              sx.view, g,
              {.kind = kind,
               .samples = static_cast<index_t>(sg.at(0)),
               .sigma = scale == cvk::noise_scale::range_fraction ? sg.at(1) : sg.at(2),
               .scale = scale,
               .base = base,
               .seed = static_cast<std::uint64_t>(sg.at(3)),
               .model = m});
          require_close(values_of(got, l), golden(name), tol, tol, "smooth_grad");
        }
      }
    }
  }
}

#if defined(CVK_TEST_HAS_EIGEN)
TEST_CASE("gradient methods: Eigen tensors in and out", "[gradient]") {
  cvk::rng gen(17);
  const nchw_t e{2, 3, 4, 5};
  const auto model = random_quadratic<double>(gen, image_size(e));
  const auto x = random_vector<double>(gen, total_size(e), -1.0, 1.0);
  using row_tensor = Eigen::Tensor<double, 4, Eigen::RowMajor>;
  const Eigen::TensorMap<const row_tensor> row(x.data(), e[0], e[1], e[2], e[3]);
  Eigen::Tensor<double, 4> col(e[0], e[1], e[2], e[3]);  // column-major: reversed strides
  for_each_index(
      e, [&](index_t n, index_t c, index_t y, index_t w) { col(n, c, y, w) = row(n, c, y, w); });
  call_log log;
  const auto g = callable<double>(model, layout::nchw, log);
  const auto want = cvk::integrated_gradients(
      cvk_test::store(x, e, layout::nchw, cvk_test::storage::contiguous).view, g, {.steps = 5});
  const auto from_row = cvk::integrated_gradients(row, g, {.steps = 5});
  const auto from_col = cvk::integrated_gradients(col, col, g, {.steps = 5});
  require_identical(values_of(from_row.attributions, layout::nchw),
                    values_of(want.attributions, layout::nchw), "row-major Eigen");
  for (const double d : values_of(from_col.attributions, layout::nchw)) CHECK(d == 0.0);
  Eigen::Tensor<double, 4> out(e[0], e[1], e[2], e[3]);
  cvk::smooth_grad(col, g, {.samples = 3}, out);
  const auto want_sg = cvk::smooth_grad(row, g, {.samples = 3});
  for_each_index(e, [&](index_t n, index_t c, index_t y, index_t w) {
    CHECK(out(n, c, y, w) == want_sg.view()(n, c, y, w));
  });
  Eigen::Tensor<double, 1> delta(e[0]);
  Eigen::Tensor<double, 4> attributions(e[0], e[1], e[2], e[3]);
  cvk::integrated_gradients(col, g, {.steps = 5}, attributions, delta);
  for (index_t n = 0; n < e[0]; ++n) CHECK(delta(n) == want.delta.view()(n));
}
#endif

TEMPLATE_TEST_CASE("gradient methods: a callable returning its scores and gradients", "[gradient]",
                   float, double) {
  using T = TestType;
  cvk::rng gen(18, sizeof(T));
  const nchw_t e{3, 2, 3, 4};
  const auto model = random_quadratic<T>(gen, image_size(e));
  const auto x = random_vector<T>(gen, total_size(e), -1.0, 1.0);
  for (const layout l : cvk_test::both_layouts) {
    const auto sx = cvk_test::store(x, e, l, cvk_test::storage::contiguous);
    const cvk::model_options m{.batch_size = 2, .data_layout = l};
    call_log log;
    const returning_callable<T, quadratic_model<T>> returning{callable<T>(model, l, log)};
    const auto writing = callable<T>(model, l, log);
    require_identical(values_of(cvk::vanilla_gradient(sx.view, returning, {.model = m}), l),
                      values_of(cvk::vanilla_gradient(sx.view, writing, {.model = m}), l),
                      "vanilla_gradient");
    const auto a = cvk::integrated_gradients(sx.view, returning, {.steps = 4, .model = m});
    const auto b = cvk::integrated_gradients(sx.view, writing, {.steps = 4, .model = m});
    require_identical(values_of(a.attributions, l), values_of(b.attributions, l), "IG");
    require_identical(values_of_delta(a.delta), values_of_delta(b.delta), "IG delta");
    require_identical(
        values_of(cvk::smooth_grad(sx.view, returning, {.samples = 3, .model = m}), l),
        values_of(cvk::smooth_grad(sx.view, writing, {.samples = 3, .model = m}), l),
        "smooth_grad");
  }
}

TEMPLATE_TEST_CASE("gradient methods: NaN inputs reach the callable and flow through (documented)",
                   "[gradient]", float, double) {
  using T = TestType;
  cvk::rng gen(19, sizeof(T));
  const nchw_t e{2, 2, 3, 3};
  const auto model = random_quadratic<T>(gen, image_size(e));
  auto x = random_vector<T>(gen, total_size(e), -1.0, 1.0);
  const std::size_t bad = 4;  // image 0
  x[bad] = std::numeric_limits<T>::quiet_NaN();
  const auto sx = cvk_test::store(x, e, layout::nchw, cvk_test::storage::contiguous);
  call_log log;
  const auto g = callable<T>(model, layout::nchw, log);
  const auto check_only_bad = [&](const std::vector<T>& values, const std::string& what) {
    INFO(what);
    for (std::size_t i = 0; i < values.size(); ++i) {
      INFO("element " << i);
      CHECK(std::isnan(values[i]) == (i == bad));
    }
  };
  check_only_bad(values_of(cvk::vanilla_gradient(sx.view, g), layout::nchw), "vanilla");
  check_only_bad(values_of(cvk::gradient_x_input(sx.view, g), layout::nchw), "x input");
  const auto r = cvk::integrated_gradients(sx.view, g, {.steps = 4});
  check_only_bad(values_of(r.attributions, layout::nchw), "IG");
  CHECK(std::isnan(r.delta.view()(0)));
  CHECK(std::isfinite(r.delta.view()(1)));
  check_only_bad(
      values_of(cvk::smooth_grad(sx.view, g,
                                 {.samples = 3, .sigma = 0.1, .scale = cvk::noise_scale::absolute}),
                layout::nchw),
      "smooth_grad, absolute sigma");
  CHECK_THROWS_WITH(cvk::smooth_grad(sx.view, g, {.samples = 3}),
                    Catch::Contains("smooth_grad: inputs image 0 holds a NaN or infinite value"));
  x[bad] = std::numeric_limits<T>::infinity();
  const auto sinf = cvk_test::store(x, e, layout::nchw, cvk_test::storage::contiguous);
  CHECK_THROWS_AS(cvk::smooth_grad(sinf.view, g, {.samples = 3}), cvk::invalid_argument);
}

TEST_CASE("gradient methods: errors and empty inputs", "[gradient]") {
  using T = double;
  cvk::rng gen(20);
  const nchw_t e{2, 2, 3, 3};
  const auto model = random_quadratic<T>(gen, image_size(e));
  const auto x = random_vector<T>(gen, total_size(e), -1.0, 1.0);
  const auto sx = cvk_test::store(x, e, layout::nchw, cvk_test::storage::contiguous);
  call_log log;
  const auto g = callable<T>(model, layout::nchw, log);

  SECTION("N = 0: empty results, the callable is never called") {
    const cvk::tensor<T, 4> empty(nchw_t{0, 2, 3, 3});
    CHECK(cvk::vanilla_gradient(empty, g).extents() == nchw_t{0, 2, 3, 3});
    CHECK(cvk::vanilla_gradient(empty, g, {.mode = cvk::gradient_mode::channel_max}).extents() ==
          nchw_t{0, 1, 3, 3});
    CHECK(cvk::gradient_x_input(empty, g).extents() == nchw_t{0, 2, 3, 3});
    CHECK(cvk::smooth_grad(empty, g).extents() == nchw_t{0, 2, 3, 3});
    const auto r = cvk::integrated_gradients(empty, g);
    CHECK(r.attributions.extents() == nchw_t{0, 2, 3, 3});
    CHECK(r.delta.extents()[0] == 0);
    CHECK(log.calls == 0);
    // Parameters are still checked.
    CHECK_THROWS_AS(cvk::integrated_gradients(empty, g, {.steps = 0}), cvk::invalid_argument);
    CHECK_THROWS_AS(cvk::smooth_grad(empty, g, {.model = {.batch_size = 0}}),
                    cvk::invalid_argument);
  }
  SECTION("empty images are shape errors") {
    const cvk::tensor<T, 4> no_channels(nchw_t{2, 0, 3, 3});
    const cvk::tensor<T, 4> no_rows(nchw_t{2, 2, 0, 3});
    CHECK_THROWS_WITH(
        cvk::vanilla_gradient(no_channels, g),
        Catch::Contains("vanilla_gradient: inputs must be N×C×H×W with C, H, W >= 1") &&
            Catch::Contains("got 2×0×3×3"));
    CHECK_THROWS_AS(cvk::integrated_gradients(no_rows, g), cvk::shape_error);
    CHECK_THROWS_AS(cvk::smooth_grad(no_rows, g), cvk::shape_error);
    CHECK_THROWS_WITH(
        cvk::gradient_x_input(no_channels, g, {.model = {.data_layout = layout::nhwc}}),
        Catch::Contains("N×H×W×C"));
  }
  SECTION("baseline shapes") {
    const cvk::tensor<T, 4> wrong_batch(nchw_t{3, 2, 3, 3});
    const cvk::tensor<T, 4> wrong_image(nchw_t{2, 2, 3, 4});
    CHECK_THROWS_WITH(cvk::integrated_gradients(sx.view, wrong_batch, g),
                      Catch::Contains("integrated_gradients: baseline must be N×C×H×W = 2×2×3×3 "
                                      "(one per input) or 1×2×3×3 (one for every input), got "
                                      "3×2×3×3"));
    CHECK_THROWS_AS(cvk::integrated_gradients(sx.view, wrong_image, g), cvk::shape_error);
    CHECK(log.calls == 0);
  }
  SECTION("parameters") {
    CHECK_THROWS_WITH(cvk::integrated_gradients(sx.view, g, {.steps = 0}),
                      Catch::Contains("integrated_gradients: steps must be >= 1, got 0"));
    CHECK_THROWS_AS(
        cvk::integrated_gradients(
            sx.view, g, {.steps = 1, .method = cvk::integration_method::riemann_trapezoid}),
        cvk::invalid_argument);
    CHECK_THROWS_AS(
        cvk::integrated_gradients(sx.view, g, {.method = static_cast<cvk::integration_method>(7)}),
        cvk::invalid_argument);
    CHECK_THROWS_WITH(cvk::smooth_grad(sx.view, g, {.samples = 0}),
                      Catch::Contains("smooth_grad: params.samples must be >= 1, got 0"));
    CHECK_THROWS_WITH(
        cvk::smooth_grad(sx.view, g, {.sigma = -0.1}),
        Catch::Contains("smooth_grad: params.sigma must be finite and >= 0, got -0.1"));
    CHECK_THROWS_AS(cvk::smooth_grad(sx.view, g, {.sigma = std::nan("")}), cvk::invalid_argument);
    CHECK_THROWS_AS(
        cvk::smooth_grad(sx.view, g, {.sigma = std::numeric_limits<double>::infinity()}),
        cvk::invalid_argument);
    CHECK_THROWS_AS(cvk::smooth_grad(sx.view, g, {.kind = static_cast<cvk::smooth_grad_kind>(5)}),
                    cvk::invalid_argument);
    CHECK_THROWS_AS(cvk::smooth_grad(sx.view, g, {.scale = static_cast<cvk::noise_scale>(5)}),
                    cvk::invalid_argument);
    CHECK_THROWS_AS(cvk::smooth_grad(sx.view, g, {.base = static_cast<cvk::smooth_grad_base>(5)}),
                    cvk::invalid_argument);
    CHECK_THROWS_AS(cvk::vanilla_gradient(sx.view, g, {.mode = static_cast<cvk::gradient_mode>(5)}),
                    cvk::invalid_argument);
    CHECK_THROWS_WITH(cvk::vanilla_gradient(sx.view, g, {.model = {.batch_size = 0}}),
                      Catch::Contains("vanilla_gradient: model.batch_size must be >= 1, got 0"));
    CHECK_THROWS_AS(
        cvk::gradient_x_input(sx.view, g, {.model = {.data_layout = static_cast<layout>(9)}}),
        cvk::invalid_argument);
    CHECK_THROWS_WITH(cvk::gradient_x_input(sx.view, g, {.threads = -1}),
                      Catch::Contains("gradient_x_input: threads must be >= 0, got -1"));
    CHECK(log.calls == 0);
  }
  SECTION("result arguments of the wrong shape") {
    cvk::tensor<T, 4> out(nchw_t{2, 2, 3, 4});
    CHECK_THROWS_WITH(cvk::vanilla_gradient(sx.view, g, {}, out),
                      Catch::Contains("vanilla_gradient: out must be N×C×H×W = 2×2×3×3, got "
                                      "2×2×3×4"));
    cvk::tensor<T, 4> full(nchw_t{2, 2, 3, 3});
    CHECK_THROWS_WITH(
        cvk::vanilla_gradient(sx.view, g, {.mode = cvk::gradient_mode::channel_max}, full),
        Catch::Contains("out must be N×C×H×W = 2×1×3×3"));
    CHECK_THROWS_AS(cvk::smooth_grad(sx.view, g, {}, out), cvk::shape_error);
    CHECK_THROWS_AS(cvk::gradient_x_input(sx.view, g, {}, out), cvk::shape_error);
    CHECK_THROWS_WITH(cvk::integrated_gradients(sx.view, g, {}, out),
                      Catch::Contains("integrated_gradients: attributions must be"));
    std::vector<T> delta(3);
    CHECK_THROWS_WITH(cvk::integrated_gradients(sx.view, g, {}, full, delta),
                      Catch::Contains("integrated_gradients: delta must be 2, got 3"));
    CHECK(log.calls == 0);
  }
  SECTION("a callable returning the wrong number of scores or wrongly shaped gradients") {
    returning_callable<T, quadratic_model<T>> scores{g, 1, 0};
    CHECK_THROWS_WITH(cvk::vanilla_gradient(sx.view, scores),
                      Catch::Contains("vanilla_gradient: the gradient callable returned 3 scores "
                                      "for a batch of 2"));
    CHECK_THROWS_AS(cvk::integrated_gradients(sx.view, scores), cvk::shape_error);
    returning_callable<T, quadratic_model<T>> gradients{g, 0, 1};
    CHECK_THROWS_WITH(cvk::smooth_grad(sx.view, gradients),
                      Catch::Contains("smooth_grad: the gradient callable returned gradients of "
                                      "16×2×3×4 for a batch of 16×2×3×3"));
    CHECK_THROWS_WITH(cvk::integrated_gradients(sx.view, gradients, {.model = {.batch_size = 4}}),
                      Catch::Contains("integrated_gradients: the gradient callable returned "
                                      "gradients of 3×2×3×4 for a batch of 3×2×3×3"));
  }
  SECTION("an exception from the callable propagates unchanged") {
    const auto throwing = [](cvk::strided_view<const T, 4>, cvk::strided_view<T, 1>,
                             cvk::strided_view<T, 4>) { throw std::runtime_error("model failed"); };
    CHECK_THROWS_WITH(cvk::integrated_gradients(sx.view, throwing), "model failed");
    CHECK_THROWS_WITH(cvk::smooth_grad(sx.view, throwing), "model failed");
  }
  SECTION("N·steps and N·samples that overflow, results too large to allocate") {
    // Views over one value with zero strides claim 2^40 images without memory behind them.
    const T value = 1;
    T sink = 0;
    const nchw_t extents{index_t{1} << 40, 1, 1, 1};
    const cvk::strided_view<const T, 4> huge(&value, extents, {0, 0, 0, 0});
    const cvk::strided_view<T, 4> out(&sink, extents, {0, 0, 0, 0});
    CHECK_THROWS_WITH(cvk::integrated_gradients(huge, g, {.steps = index_t{1} << 30}, out),
                      Catch::Contains("integrated_gradients: the interpolated model inputs") &&
                          Catch::Contains("overflows"));
    CHECK_THROWS_WITH(
        cvk::smooth_grad(huge, g,
                         {.samples = index_t{1} << 30, .scale = cvk::noise_scale::absolute}, out),
        Catch::Contains("smooth_grad: the noisy model inputs") && Catch::Contains("overflows"));
    CHECK_THROWS_WITH(cvk::vanilla_gradient(huge, g),
                      Catch::Contains("vanilla_gradient: the result") &&
                          Catch::Contains("more than can be allocated"));
    const cvk::tensor<T, 4> one(nchw_t{1, 1, 1, 1});
    CHECK_THROWS_AS(cvk::integrated_gradients(one, g, {.steps = index_t{1} << 40}),
                    cvk::out_of_range);
    CHECK(sink == 0);
    CHECK(log.calls == 0);
  }
}
