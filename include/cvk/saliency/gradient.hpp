// cvk — computer-vision kernels, header-only C++20.
// Gradient attributions through a model's gradient callable: vanilla gradient (Simonyan et al.
// 2014), gradient × input, SmoothGrad / SmoothGrad² / VarGrad (Smilkov et al. 2017; Adebayo et
// al. 2018) and integrated gradients (Sundararajan et al. 2017) with Captum's quadrature rules and
// its completeness delta.
// SPDX-License-Identifier: MIT
#pragma once

#include <array>
#include <cmath>
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>

#include "../core/as_view.hpp"
#include "../core/config.hpp"
#include "../core/errors.hpp"
#include "../core/layout.hpp"
#include "../core/strided_view.hpp"
#include "../core/tensor.hpp"
#include "../detail/checks.hpp"
#include "detail/gradient_quadrature.hpp"
#include "detail/gradient_run.hpp"
#include "model.hpp"

CVK_BEGIN_NAMESPACE

// The contract of every gradient attribution method.
//
// Shapes: inputs are N×C×H×W (layout::nchw) or N×H×W×C (layout::nhwc), as
// params.model.data_layout says, C, H, W >= 1, any strides, float or double. The model is a
// gradient_function<G, T> (saliency/model.hpp): called on contiguous batches of at most
// params.model.batch_size images in that same layout, it writes one score per image and
// d score / d input. Attributions are rank 4 in the inputs' layout: N×C×H×W, or N×1×H×W for
// vanilla_gradient's channel_max (N×H×W×1 in NHWC).
//
//   vanilla_gradient     a = |g| (gradient_mode::absolute, Captum Saliency's default abs=True),
//                        a = g (raw: the signed gradient), or a = max_c |g| (channel_max, TorchRay
//                        and Simonyan et al.; NaN in any channel gives NaN)
//   gradient_x_input     a = x ⊙ g (Captum InputXGradient)
//   smooth_grad          sample s of image n: x̃ = x_n + σ_n·z, z ~ N(0, 1) element-wise from
//                        cvk::rng(seed, n·samples + s).normal() in (c, h, w) order (so the same
//                        in both layouts, for any batch size and thread count); per-sample
//                        attribution b = g(x̃) (base gradient) or x̃ ⊙ g(x̃) (base
//                        gradient_x_input, Captum NoiseTunnel(InputXGradient)); result
//                        smoothgrad: mean_s b, smoothgrad_sq: mean_s b², vargrad: the population
//                        variance mean_s (b − mean b)² (Captum's NoiseTunnel nt_type).
//                        σ_n = sigma (noise_scale::absolute, Captum's stdevs) or
//                        sigma·(max − min of image n) (range_fraction, PAIR's stdev_spread).
//                        Defaults: 25 samples and σ = 0.15·(max − min) (PAIR, the paper authors'
//                        code; Captum: 5 samples, absolute σ = 1; zennit: 20, 0.1·range);
//                        smoothgrad (Captum; PAIR's magnitude=True is smoothgrad_sq); base
//                        gradient.
//   integrated_gradients attr = (x − x′) ⊙ Σ_k w_k·g(x′ + α_k(x − x′)), the rule (α_k, w_k) of
//                        params.method with params.steps points, exactly Captum's
//                        approximation_methods.py (integrated_gradients_rule returns it; Captum
//                        computes the Riemann α in float32 through torch.linspace, cvk in double).
//                        Default: 50 steps, gauss_legendre (Captum). Baseline x′: zeros, or a
//                        tensor of the inputs' shape, or one image (1×C×H×W) for every input.
//                        delta_n = Σ attr_n − (f(x_n) − f(x′_n)) (Captum's
//                        compute_convergence_delta; f from the callable's scores). Captum's
//                        riemann_trapezoid weights sum to (n − 1)/n, not 1: its attributions are
//                        (n − 1)/n of the trapezoid rule's and delta is about −(f(x) − f(x′))/n.
//
// Forms (T float or double; g any gradient_function<G, T>; out / attributions / delta any
// mutable tensor of the result's shape, not overlapping the inputs or the baseline):
//   vanilla_gradient(inputs, g, params = {})                   → tensor<T, 4>
//   vanilla_gradient(inputs, g, params, out)
//   gradient_x_input(inputs, g, params = {})                   → tensor<T, 4>
//   gradient_x_input(inputs, g, params, out)
//   smooth_grad(inputs, g, params = {})                        → tensor<T, 4>
//   smooth_grad(inputs, g, params, out)
//   integrated_gradients(inputs, g, params = {})               → integrated_gradients_result<T>
//   integrated_gradients(inputs, baseline, g, params = {})     → integrated_gradients_result<T>
//   integrated_gradients(inputs, [baseline,] g, params, attributions)          (no delta)
//   integrated_gradients(inputs, [baseline,] g, params, attributions, delta)   (delta: N)
//   integrated_gradients_rule(method, steps)                   → integration_rule{alphas, weights}
//
// Callable calls (inputs to the model, in batches of at most batch_size, in input order):
//   vanilla_gradient, gradient_x_input: N. smooth_grad: N·samples (image-major).
//   integrated_gradients: N·steps, plus, when delta is returned, N + B first (the inputs, then
//   the B baseline images: 1 for the zero or a broadcast baseline, else N). The endpoints are
//   evaluated even when a rule's α is 0 or 1: x′ + 1·(x − x′) need not equal x in floating point.
//
// Memory: batch_size·C·H·W model inputs and as many gradients (Captum's IG and NoiseTunnel expand
// the whole input steps- or samples-fold unless internal_batch_size is set), plus one image of
// double accumulators (two for vargrad) and the result.
//
// Numbers: the noisy sample is rounded to T from x + σ·z computed in double; IG's model inputs
// are b + T(α)·(x − b) in T (Captum's expression); sums over steps and samples run in double in
// step / sample order; vargrad uses Welford's update (never negative, exactly 0 for identical
// samples, where Captum's E[b²] − E[b]² may round below zero).
//
// NaN and infinity in inputs are not rejected: they reach the callable and flow through the
// arithmetic (an IG attribution and the delta of that image become NaN; SmoothGrad with an
// absolute σ adds noise to them), except SmoothGrad's range_fraction, whose σ needs a finite
// range: cvk::invalid_argument naming the image. Scores are not checked.
//
// Errors (each message names the function, the argument and the shapes):
//   cvk::invalid_argument  model.batch_size < 1, a data_layout, mode, kind, scale, base or method
//                          outside its enum; threads < 0; steps < 1 (< 2 for riemann_trapezoid);
//                          samples < 1; sigma negative, NaN or infinite; range_fraction on an
//                          image with NaN or infinity
//   cvk::shape_error       inputs not rank 4 or with C, H or W = 0; a baseline that is neither
//                          the inputs' shape nor one image of it; out, attributions or delta of
//                          the wrong shape; a callable returning gradients of the wrong shape or
//                          the wrong number of scores
//   cvk::out_of_range      N·steps or N·samples overflowing, a buffer too large to allocate
//   N = 0 is not an error: the result is empty and the callable is never called.
//
// Complexity: the callable calls above, plus O(C·H·W) per model input (filling the batch and
// accumulating its gradient); quadrature rule O(steps) (Gauss–Legendre O(steps²), Newton on the
// Legendre polynomial). Filling a batch runs its images on `threads` threads; accumulating a
// gradient splits image rows; every value is computed by one thread in a fixed order, so results
// are bit-identical for any thread count and any batch_size.

/// What vanilla_gradient returns per element.
enum class gradient_mode {
  absolute,    ///< |∂f/∂x| (Captum Saliency, abs=True: the default)
  raw,         ///< ∂f/∂x, signed (Captum Saliency, abs=False)
  channel_max  ///< max over channels of |∂f/∂x|, one channel (TorchRay, Simonyan et al.)
};

struct vanilla_gradient_params {
  gradient_mode mode = gradient_mode::absolute;
  /// Batch size and the layout of inputs, result and the callable's batches.
  model_options model{};
  /// Threads (0: all).
  int threads = 0;
};

struct gradient_x_input_params {
  model_options model{};
  int threads = 0;
};

/// The statistic over SmoothGrad's noisy samples (Captum NoiseTunnel's nt_type).
enum class smooth_grad_kind {
  smoothgrad,     ///< mean of the sample attributions (the default)
  smoothgrad_sq,  ///< mean of their squares (PAIR's magnitude=True)
  vargrad         ///< their population variance (Adebayo et al. 2018)
};

/// How smooth_grad_params::sigma is read.
enum class noise_scale {
  absolute,       ///< σ = sigma (Captum's stdevs)
  range_fraction  ///< σ = sigma·(max − min) over each image's C·H·W values (PAIR, zennit)
};

/// Which attribution SmoothGrad averages.
enum class smooth_grad_base {
  gradient,         ///< the raw, signed gradient (the default)
  gradient_x_input  ///< noisy input ⊙ gradient
};

struct smooth_grad_params {
  smooth_grad_kind kind = smooth_grad_kind::smoothgrad;
  /// Noisy samples per image, >= 1 (PAIR's 25; Captum's nt_samples is 5).
  index_t samples = 25;
  /// Noise standard deviation, >= 0, read as `scale` says (PAIR's 0.15 of the range).
  double sigma = 0.15;
  noise_scale scale = noise_scale::range_fraction;
  smooth_grad_base base = smooth_grad_base::gradient;
  /// Sample s of image n draws from cvk::rng(seed, n·samples + s).
  std::uint64_t seed = 0;
  model_options model{};
  int threads = 0;
};

struct integrated_gradients_params {
  /// Points of the rule, >= 1 (>= 2 for riemann_trapezoid); Captum's n_steps = 50.
  index_t steps = 50;
  integration_method method = integration_method::gauss_legendre;
  model_options model{};
  int threads = 0;
};

/// integrated_gradients' attributions (the inputs' shape and layout) and completeness delta
/// (one per image).
template <class T>
struct integrated_gradients_result {
  tensor<T, 4> attributions;
  tensor<T, 1> delta;
};

/// The quadrature rule integrated_gradients uses: points α (ascending) in [0, 1] and weights.
/// Throws cvk::invalid_argument for steps < 1 (< 2 for riemann_trapezoid) or an unknown method.
inline integration_rule integrated_gradients_rule(integration_method method, index_t steps) {
  detail::check_integration(method, steps, "integrated_gradients_rule");
  return detail::make_integration_rule(method, steps, "integrated_gradients_rule");
}

namespace detail {

template <class X>
using gradient_scalar_t = std::remove_const_t<tensor_value_t<const X&>>;

template <class T, class G>
constexpr void assert_gradient_arguments() {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "cvk: gradient attribution methods run on float or double inputs");
  static_assert(gradient_function<std::remove_reference_t<G>, T>,
                "cvk: the model must be a gradient function of the inputs' element type T: "
                "g(strided_view<const T, 4> batch, strided_view<T, 1> scores, "
                "strided_view<T, 4> gradients), or g(batch) returning an object with members "
                "scores (rank 1) and gradients (rank 4) (cvk::gradient_function)");
}

template <class T, class X>
constexpr void assert_same_scalar() {
  static_assert(std::is_same_v<gradient_scalar_t<X>, T>,
                "cvk: every tensor of a gradient method (inputs, baseline, results) holds the "
                "same element type, float or double");
}

inline void check_threads(int threads, const char* fn) {
  if (threads < 0) {
    CVK_THROW(invalid_argument,
              std::string(fn) + ": threads must be >= 0, got " + std::to_string(threads));
  }
}

/// The (n, c, h, w)-ordered view of `inputs` (in m.data_layout), after checking the model
/// options, the rank and C, H, W >= 1.
template <class T, class X>
strided_view<const T, 4> gradient_inputs(const X& inputs, const model_options& m, int threads,
                                         const char* fn) {
  check_model_options(m, fn);
  check_threads(threads, fn);
  const strided_view<const T, 4> v = checked_view<4>(inputs, fn, "inputs");
  const auto x = permute_axes(v, nchw_axes(m.data_layout));
  if (x.extent(1) < 1 || x.extent(2) < 1 || x.extent(3) < 1) {
    CVK_THROW(shape_error, std::string(fn) + ": inputs must be " + layout_pattern(m.data_layout) +
                               " with C, H, W >= 1 (a model input cannot be empty), got " +
                               v.shape_string());
  }
  return x;
}

/// The mutable (n, c, h, w)-ordered view of an output argument with NCHW extents `nchw`.
template <class T, class Out>
strided_view<T, 4> gradient_output(Out&& out, const std::array<index_t, 4>& nchw, layout l,
                                   const char* fn, const char* argument) {
  assert_same_scalar<T, Out>();
  auto v = checked_view<4>(std::forward<Out>(out), fn, argument);
  static_assert(!std::is_const_v<typename decltype(v)::element_type>,
                "cvk: a result argument must be a mutable tensor (a non-const lvalue container or "
                "a view of mutable memory)");
  const auto extents = from_nchw(nchw, l);
  const std::string pattern = std::string(layout_pattern(l)) + " = " + shape_string(extents, 4);
  expect_shape(v, extents, fn, argument, pattern.c_str());
  return permute_axes(strided_view<T, 4>(v), nchw_axes(l));
}

/// A new tensor of NCHW extents `nchw` in layout `l` (sizes checked).
template <class T>
tensor<T, 4> gradient_result(const std::array<index_t, 4>& nchw, layout l, const char* fn) {
  const auto extents = from_nchw(nchw, l);
  const auto describe = [&] { return shape_string(extents, 4); };
  const index_t size =
      checked_mul(checked_mul(checked_mul(nchw[0], nchw[1], fn, "the result", describe), nchw[2],
                              fn, "the result", describe),
                  nchw[3], fn, "the result", describe);
  return checked_allocation<T>(size, fn, "the result", describe,
                               [&] { return tensor<T, 4>(extents); });
}

template <class T>
std::array<index_t, 4> nchw_of(const strided_view<const T, 4>& x) noexcept {
  return {x.extent(0), x.extent(1), x.extent(2), x.extent(3)};
}

inline elementwise_gradient elementwise_of(gradient_mode mode, const char* fn) {
  switch (mode) {
    case gradient_mode::absolute:
      return elementwise_gradient::absolute;
    case gradient_mode::raw:
      return elementwise_gradient::signed_gradient;
    case gradient_mode::channel_max:
      return elementwise_gradient::channel_max;
  }
  CVK_THROW(invalid_argument, std::string(fn) + ": params.mode is not a cvk::gradient_mode");
}

template <class T, class G>
void vanilla_gradient_into(strided_view<const T, 4> x, G& g, const vanilla_gradient_params& p,
                           elementwise_gradient what, strided_view<T, 4> out, const char* fn) {
  run_elementwise_gradient<T>(x, g, what, p.model, p.threads, out, fn);
}

/// The smoothing plan of `p` for inputs `x`, every parameter checked.
template <class T>
smoothing_plan smooth_grad_plan(strided_view<const T, 4> x, const smooth_grad_params& p,
                                const char* fn) {
  smoothing_plan plan;
  switch (p.kind) {
    case smooth_grad_kind::smoothgrad:
      plan.statistic = smoothing_statistic::mean;
      break;
    case smooth_grad_kind::smoothgrad_sq:
      plan.statistic = smoothing_statistic::mean_square;
      break;
    case smooth_grad_kind::vargrad:
      plan.statistic = smoothing_statistic::variance;
      break;
    default:
      CVK_THROW(invalid_argument, std::string(fn) + ": params.kind is not a cvk::smooth_grad_kind");
  }
  if (p.base != smooth_grad_base::gradient && p.base != smooth_grad_base::gradient_x_input) {
    CVK_THROW(invalid_argument, std::string(fn) + ": params.base is not a cvk::smooth_grad_base");
  }
  if (p.scale != noise_scale::absolute && p.scale != noise_scale::range_fraction) {
    CVK_THROW(invalid_argument, std::string(fn) + ": params.scale is not a cvk::noise_scale");
  }
  if (p.samples < 1) {
    CVK_THROW(invalid_argument,
              std::string(fn) + ": params.samples must be >= 1, got " + std::to_string(p.samples));
  }
  if (!std::isfinite(p.sigma) || p.sigma < 0.0) {
    CVK_THROW(invalid_argument, std::string(fn) + ": params.sigma must be finite and >= 0, got " +
                                    number_string(p.sigma));
  }
  checked_mul(x.extent(0), p.samples, fn, "the noisy model inputs", [&] {
    return std::to_string(x.extent(0)) + " images × " + std::to_string(p.samples) + " samples";
  });
  plan.samples = p.samples;
  plan.times_input = p.base == smooth_grad_base::gradient_x_input;
  plan.seed = p.seed;
  plan.sigmas = smoothing_sigmas(x, p.sigma, p.scale == noise_scale::range_fraction, fn);
  return plan;
}

/// The (n, c, h, w)-ordered view of an IG baseline: the inputs' shape, or one image of it
/// (broadcast to every input).
template <class T, class B>
strided_view<const T, 4> ig_baseline(const B& baseline, const strided_view<const T, 4>& x, layout l,
                                     const char* fn) {
  assert_same_scalar<T, B>();
  const strided_view<const T, 4> v = checked_view<4>(baseline, fn, "baseline");
  const auto b = permute_axes(v, nchw_axes(l));
  const bool same_image =
      b.extent(1) == x.extent(1) && b.extent(2) == x.extent(2) && b.extent(3) == x.extent(3);
  if (!same_image || (b.extent(0) != x.extent(0) && b.extent(0) != 1)) {
    const std::string pattern = layout_pattern(l);
    const auto full = from_nchw(nchw_of(x), l);
    const auto one = from_nchw({1, x.extent(1), x.extent(2), x.extent(3)}, l);
    CVK_THROW(shape_error, std::string(fn) + ": baseline must be " + pattern + " = " +
                               shape_string(full, 4) + " (one per input) or " +
                               shape_string(one, 4) + " (one for every input), got " +
                               v.shape_string());
  }
  return b;
}

/// Integrated gradients of checked inputs `x` and baseline `b` into `out`, and `delta` when
/// `has_delta`.
template <class T, class G>
void integrated_gradients_into(strided_view<const T, 4> x, strided_view<const T, 4> b, G& g,
                               const integrated_gradients_params& p, strided_view<T, 4> out,
                               bool has_delta, strided_view<T, 1> delta, const char* fn) {
  // N·steps is checked before the rule is made: a rule of 2^40 points is not allocated for a
  // call that cannot run anyway.
  checked_mul(x.extent(0), p.steps, fn, "the interpolated model inputs", [&] {
    return std::to_string(x.extent(0)) + " images × " + std::to_string(p.steps) + " steps";
  });
  const auto rule = make_integration_rule(p.method, p.steps, fn);
  run_integrated_gradients<T>(x, b, g, rule, p.model, p.threads, out, has_delta, delta, fn);
}

/// The zero baseline: one image of zeros, as a view with zero strides over `zero`.
template <class T>
strided_view<const T, 4> zero_baseline(const strided_view<const T, 4>& x, const T& zero) noexcept {
  return {&zero, {1, x.extent(1), x.extent(2), x.extent(3)}, {0, 0, 0, 0}};
}

/// A model argument: anything but the params struct, which takes its place in the forms without a
/// baseline (`integrated_gradients(inputs, g, params, attributions)` must not read as
/// `integrated_gradients(inputs, baseline, g, params)`).
template <class G>
concept model_argument = !std::is_same_v<std::remove_cvref_t<G>, integrated_gradients_params>;

/// Common path of every integrated_gradients form. `baseline` null: the zero baseline.
template <class T, class Inputs, class B, class G, class Attr, class Delta>
void integrated_gradients_forms(const Inputs& inputs, const B* baseline, G& g,
                                const integrated_gradients_params& p, Attr* attributions,
                                Delta* delta) {
  constexpr const char* fn = "integrated_gradients";
  const auto x = gradient_inputs<T>(inputs, p.model, p.threads, fn);
  check_integration(p.method, p.steps, fn);
  const T zero = 0;
  const auto b = baseline != nullptr ? ig_baseline<T>(*baseline, x, p.model.data_layout, fn)
                                     : zero_baseline<T>(x, zero);
  const auto out =
      gradient_output<T>(*attributions, nchw_of(x), p.model.data_layout, fn, "attributions");
  strided_view<T, 1> d;
  if (delta != nullptr) {
    assert_same_scalar<T, Delta>();
    d = output_view<1>(*delta, {x.extent(0)}, fn, "delta");
  }
  integrated_gradients_into<T>(x, b, g, p, out, delta != nullptr, d, fn);
}

}  // namespace detail

// ---------------------------------------------------------------------------------------------
// vanilla_gradient

/// |∂f/∂x|, ∂f/∂x or max_c |∂f/∂x| of every input (see the contract above) into `out`:
/// N×C×H×W, or N×1×H×W for channel_max, in params.model.data_layout.
template <class Inputs, class G, class Out>
void vanilla_gradient(const Inputs& inputs, G&& g, const vanilla_gradient_params& params,
                      Out&& out) {
  using T = detail::gradient_scalar_t<Inputs>;
  detail::assert_gradient_arguments<T, G>();
  constexpr const char* fn = "vanilla_gradient";
  const auto x = detail::gradient_inputs<T>(inputs, params.model, params.threads, fn);
  const auto what = detail::elementwise_of(params.mode, fn);
  auto extents = detail::nchw_of(x);
  if (what == detail::elementwise_gradient::channel_max) extents[1] = 1;
  const auto o = detail::gradient_output<T>(std::forward<Out>(out), extents,
                                            params.model.data_layout, fn, "out");
  detail::vanilla_gradient_into<T>(x, g, params, what, o, fn);
}

/// The value-returning form: a new tensor<T, 4>.
template <class Inputs, class G>
auto vanilla_gradient(const Inputs& inputs, G&& g, const vanilla_gradient_params& params = {}) {
  using T = detail::gradient_scalar_t<Inputs>;
  detail::assert_gradient_arguments<T, G>();
  constexpr const char* fn = "vanilla_gradient";
  const auto x = detail::gradient_inputs<T>(inputs, params.model, params.threads, fn);
  const auto what = detail::elementwise_of(params.mode, fn);
  auto extents = detail::nchw_of(x);
  if (what == detail::elementwise_gradient::channel_max) extents[1] = 1;
  auto result = detail::gradient_result<T>(extents, params.model.data_layout, fn);
  const auto o = detail::permute_axes(result.view(), detail::nchw_axes(params.model.data_layout));
  detail::vanilla_gradient_into<T>(x, g, params, what, o, fn);
  return result;
}

// ---------------------------------------------------------------------------------------------
// gradient_x_input

/// x ⊙ ∂f/∂x into `out` (the inputs' shape and layout).
template <class Inputs, class G, class Out>
void gradient_x_input(const Inputs& inputs, G&& g, const gradient_x_input_params& params,
                      Out&& out) {
  using T = detail::gradient_scalar_t<Inputs>;
  detail::assert_gradient_arguments<T, G>();
  constexpr const char* fn = "gradient_x_input";
  const auto x = detail::gradient_inputs<T>(inputs, params.model, params.threads, fn);
  const auto o = detail::gradient_output<T>(std::forward<Out>(out), detail::nchw_of(x),
                                            params.model.data_layout, fn, "out");
  detail::run_elementwise_gradient<T>(x, g, detail::elementwise_gradient::times_input, params.model,
                                      params.threads, o, fn);
}

/// The value-returning form: a new tensor<T, 4>.
template <class Inputs, class G>
auto gradient_x_input(const Inputs& inputs, G&& g, const gradient_x_input_params& params = {}) {
  using T = detail::gradient_scalar_t<Inputs>;
  detail::assert_gradient_arguments<T, G>();
  constexpr const char* fn = "gradient_x_input";
  const auto x = detail::gradient_inputs<T>(inputs, params.model, params.threads, fn);
  auto result = detail::gradient_result<T>(detail::nchw_of(x), params.model.data_layout, fn);
  const auto o = detail::permute_axes(result.view(), detail::nchw_axes(params.model.data_layout));
  detail::run_elementwise_gradient<T>(x, g, detail::elementwise_gradient::times_input, params.model,
                                      params.threads, o, fn);
  return result;
}

// ---------------------------------------------------------------------------------------------
// smooth_grad

/// SmoothGrad, SmoothGrad² or VarGrad (params.kind) into `out` (the inputs' shape and layout).
template <class Inputs, class G, class Out>
void smooth_grad(const Inputs& inputs, G&& g, const smooth_grad_params& params, Out&& out) {
  using T = detail::gradient_scalar_t<Inputs>;
  detail::assert_gradient_arguments<T, G>();
  constexpr const char* fn = "smooth_grad";
  const auto x = detail::gradient_inputs<T>(inputs, params.model, params.threads, fn);
  const auto o = detail::gradient_output<T>(std::forward<Out>(out), detail::nchw_of(x),
                                            params.model.data_layout, fn, "out");
  const auto plan = detail::smooth_grad_plan(x, params, fn);
  detail::run_smooth_grad<T>(x, g, plan, params.model, params.threads, o, fn);
}

/// The value-returning form: a new tensor<T, 4>.
template <class Inputs, class G>
auto smooth_grad(const Inputs& inputs, G&& g, const smooth_grad_params& params = {}) {
  using T = detail::gradient_scalar_t<Inputs>;
  detail::assert_gradient_arguments<T, G>();
  constexpr const char* fn = "smooth_grad";
  const auto x = detail::gradient_inputs<T>(inputs, params.model, params.threads, fn);
  const auto plan = detail::smooth_grad_plan(x, params, fn);
  auto result = detail::gradient_result<T>(detail::nchw_of(x), params.model.data_layout, fn);
  const auto o = detail::permute_axes(result.view(), detail::nchw_axes(params.model.data_layout));
  detail::run_smooth_grad<T>(x, g, plan, params.model, params.threads, o, fn);
  return result;
}

// ---------------------------------------------------------------------------------------------
// integrated_gradients

/// Integrated gradients from the zero baseline, with the completeness delta.
template <class Inputs, class G>
auto integrated_gradients(const Inputs& inputs, G&& g,
                          const integrated_gradients_params& params = {}) {
  using T = detail::gradient_scalar_t<Inputs>;
  detail::assert_gradient_arguments<T, G>();
  constexpr const char* fn = "integrated_gradients";
  const auto x = detail::gradient_inputs<T>(inputs, params.model, params.threads, fn);
  detail::check_integration(params.method, params.steps, fn);
  integrated_gradients_result<T> result{
      detail::gradient_result<T>(detail::nchw_of(x), params.model.data_layout, fn),
      tensor<T, 1>(std::array<index_t, 1>{x.extent(0)})};
  detail::integrated_gradients_forms<T>(inputs, static_cast<const Inputs*>(nullptr), g, params,
                                        &result.attributions, &result.delta);
  return result;
}

/// Integrated gradients from `baseline` (the inputs' shape, or one image for every input), with
/// the completeness delta.
template <class Inputs, class Baseline, detail::model_argument G>
auto integrated_gradients(const Inputs& inputs, const Baseline& baseline, G&& g,
                          const integrated_gradients_params& params = {}) {
  using T = detail::gradient_scalar_t<Inputs>;
  detail::assert_gradient_arguments<T, G>();
  constexpr const char* fn = "integrated_gradients";
  const auto x = detail::gradient_inputs<T>(inputs, params.model, params.threads, fn);
  detail::check_integration(params.method, params.steps, fn);
  integrated_gradients_result<T> result{
      detail::gradient_result<T>(detail::nchw_of(x), params.model.data_layout, fn),
      tensor<T, 1>(std::array<index_t, 1>{x.extent(0)})};
  detail::integrated_gradients_forms<T>(inputs, &baseline, g, params, &result.attributions,
                                        &result.delta);
  return result;
}

/// Zero baseline, attributions only (the endpoints are not evaluated).
template <class Inputs, class G, class Attributions>
void integrated_gradients(const Inputs& inputs, G&& g, const integrated_gradients_params& params,
                          Attributions&& attributions) {
  using T = detail::gradient_scalar_t<Inputs>;
  detail::assert_gradient_arguments<T, G>();
  detail::integrated_gradients_forms<T>(inputs, static_cast<const Inputs*>(nullptr), g, params,
                                        &attributions, static_cast<tensor<T, 1>*>(nullptr));
}

/// Zero baseline, attributions and delta (N values).
template <class Inputs, class G, class Attributions, class Delta>
void integrated_gradients(const Inputs& inputs, G&& g, const integrated_gradients_params& params,
                          Attributions&& attributions, Delta&& delta) {
  using T = detail::gradient_scalar_t<Inputs>;
  detail::assert_gradient_arguments<T, G>();
  detail::integrated_gradients_forms<T>(inputs, static_cast<const Inputs*>(nullptr), g, params,
                                        &attributions, &delta);
}

/// Given baseline, attributions only (the endpoints are not evaluated).
template <class Inputs, class Baseline, detail::model_argument G, class Attributions>
void integrated_gradients(const Inputs& inputs, const Baseline& baseline, G&& g,
                          const integrated_gradients_params& params, Attributions&& attributions) {
  using T = detail::gradient_scalar_t<Inputs>;
  detail::assert_gradient_arguments<T, G>();
  detail::integrated_gradients_forms<T>(inputs, &baseline, g, params, &attributions,
                                        static_cast<tensor<T, 1>*>(nullptr));
}

/// Given baseline, attributions and delta (N values).
template <class Inputs, class Baseline, class G, class Attributions, class Delta>
void integrated_gradients(const Inputs& inputs, const Baseline& baseline, G&& g,
                          const integrated_gradients_params& params, Attributions&& attributions,
                          Delta&& delta) {
  using T = detail::gradient_scalar_t<Inputs>;
  detail::assert_gradient_arguments<T, G>();
  detail::integrated_gradients_forms<T>(inputs, &baseline, g, params, &attributions, &delta);
}

CVK_END_NAMESPACE
