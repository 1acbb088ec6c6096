// cvk — computer-vision kernels, header-only C++20.
// The runners of the gradient attribution methods (cvk/saliency/gradient.hpp): every model input
// goes through detail::model_batches; one image's accumulators live at a time (the inputs of
// image n are consecutive in the batch stream and consumed in order), so memory is
// batch_size·C·H·W model inputs and gradients plus one or two C·H·W double accumulators.
// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "../../core/config.hpp"
#include "../../core/errors.hpp"
#include "../../core/parallel.hpp"
#include "../../core/rng.hpp"
#include "../../core/strided_view.hpp"
#include "../../detail/checks.hpp"
#include "../model.hpp"
#include "gradient_quadrature.hpp"

CVK_BEGIN_NAMESPACE
namespace detail {

/// What run_elementwise_gradient writes per input element (or per pixel for channel_max).
enum class elementwise_gradient { absolute, signed_gradient, channel_max, times_input };

/// The statistic smooth_grad takes over its samples.
enum class smoothing_statistic { mean, mean_square, variance };

/// Calls body(c, y) for every row (c, y) of a C×H×W image, rows split over threads in chunks
/// of about 16384 elements (chunk boundaries depend only on the shape).
template <class Body>
void for_each_image_row(index_t channels, index_t height, index_t width, int threads, Body&& body) {
  const index_t grain = std::max<index_t>(1, 16384 / std::max<index_t>(width, 1));
  parallel_for(
      0, channels * height, grain,
      [&](index_t lo, index_t hi) {
        for (index_t r = lo; r < hi; ++r) body(r / height, r % height);
      },
      threads);
}

/// slot(c, y, x) = image n of the (n, c, h, w)-ordered `x`.
template <class T>
void copy_image(strided_view<const T, 4> x, index_t n, strided_view<T, 3> slot) noexcept {
  for (index_t c = 0; c < slot.extent(0); ++c) {
    for (index_t y = 0; y < slot.extent(1); ++y) {
      for (index_t col = 0; col < slot.extent(2); ++col) slot(c, y, col) = x(n, c, y, col);
    }
  }
}

/// Vanilla gradient (absolute, signed, channel max) and gradient × input. `x` and `out` are
/// (n, c, h, w)-ordered; out has one channel for channel_max. N = 0 calls nothing.
template <class T, class G>
void run_elementwise_gradient(strided_view<const T, 4> x, G& g, elementwise_gradient what,
                              const model_options& model, int threads, strided_view<T, 4> out,
                              const char* fn) {
  const index_t count = x.extent(0);
  const index_t channels = x.extent(1), height = x.extent(2), width = x.extent(3);
  if (count == 0) return;
  model_batches<T> batches(model, {channels, height, width}, true, fn, count);
  batches.for_each(
      count, [&](index_t b) { batches.run_gradient(g, b); },
      [&](index_t i, strided_view<T, 3> slot) { copy_image(x, i, slot); },
      [&](index_t i, index_t s) {
        const auto grad = batches.gradient(s);
        if (what == elementwise_gradient::channel_max) {
          // TorchRay / Simonyan et al.: max_c |g|; a NaN in any channel makes the pixel NaN
          // (torch.max propagates NaN).
          for_each_image_row(1, height, width, threads, [&](index_t, index_t y) {
            for (index_t col = 0; col < width; ++col) {
              T best = std::abs(grad(0, y, col));
              for (index_t c = 1; c < channels && !std::isnan(best); ++c) {
                const T v = std::abs(grad(c, y, col));
                if (v > best || std::isnan(v)) best = v;
              }
              out(i, 0, y, col) = best;
            }
          });
          return;
        }
        for_each_image_row(channels, height, width, threads, [&](index_t c, index_t y) {
          for (index_t col = 0; col < width; ++col) {
            const T v = grad(c, y, col);
            switch (what) {
              case elementwise_gradient::absolute:
                out(i, c, y, col) = std::abs(v);
                break;
              case elementwise_gradient::times_input:
                out(i, c, y, col) = x(i, c, y, col) * v;
                break;
              default:
                out(i, c, y, col) = v;
                break;
            }
          }
        });
      },
      threads);
}

/// The noise standard deviation of each image: `sigma` itself, or sigma·(max − min) over the
/// image's C·H·W values (PAIR's stdev_spread). A non-finite value in an image has no range:
/// cvk::invalid_argument naming the image.
template <class T>
std::vector<double> smoothing_sigmas(strided_view<const T, 4> x, double sigma,
                                     bool fraction_of_range, const char* fn) {
  std::vector<double> result = checked_vector<double>(
      x.extent(0), fn, "the noise scales", [&] { return std::to_string(x.extent(0)) + " images"; });
  std::fill(result.begin(), result.end(), sigma);
  if (!fraction_of_range) return result;
  for (index_t n = 0; n < x.extent(0); ++n) {
    double lo = static_cast<double>(x(n, 0, 0, 0));
    double hi = lo;
    bool finite = true;
    for (index_t c = 0; c < x.extent(1); ++c) {
      for (index_t y = 0; y < x.extent(2); ++y) {
        for (index_t col = 0; col < x.extent(3); ++col) {
          const auto v = static_cast<double>(x(n, c, y, col));
          finite = finite && std::isfinite(v);
          lo = std::min(lo, v);
          hi = std::max(hi, v);
        }
      }
    }
    if (!finite) {
      CVK_THROW(invalid_argument,
                std::string(fn) + ": inputs image " + std::to_string(n) +
                    " holds a NaN or infinite value, so the noise scale range_fraction (sigma "
                    "times the image's max − min) is undefined; give an absolute sigma");
    }
    result[static_cast<std::size_t>(n)] = sigma * (hi - lo);
  }
  return result;
}

/// What smooth_grad draws and averages.
struct smoothing_plan {
  index_t samples = 1;
  std::vector<double> sigmas;  ///< per image
  smoothing_statistic statistic = smoothing_statistic::mean;
  bool times_input = false;  ///< attribution = noisy input ⊙ gradient instead of the gradient
  std::uint64_t seed = 0;
};

/// SmoothGrad / SmoothGrad² / VarGrad. Sample s of image n is the model input
/// x_n + sigma_n·z, z drawn from cvk::rng(seed, n·samples + s).normal() in (c, h, w) order
/// whatever the layout; its attribution goes into image n's accumulators in sample order, so
/// the result depends on neither the batch size nor the thread count.
template <class T, class G>
void run_smooth_grad(strided_view<const T, 4> x, G& g, const smoothing_plan& plan,
                     const model_options& model, int threads, strided_view<T, 4> out,
                     const char* fn) {
  const index_t count = x.extent(0);
  const index_t channels = x.extent(1), height = x.extent(2), width = x.extent(3);
  if (count == 0) return;
  const index_t samples = plan.samples;
  const auto describe = [&] {
    return std::to_string(count) + " images × " + std::to_string(samples) + " samples";
  };
  const index_t total = checked_mul(count, samples, fn, "the noisy model inputs", describe);
  model_batches<T> batches(model, {channels, height, width}, true, fn, total);
  const index_t image_size = batches.image_size();
  const auto image_text = [&] { return std::to_string(image_size) + " values"; };
  // Welford's update for the variance (non-negative by construction, exactly 0 for identical
  // samples) where Captum takes E[a²] − E[a]², which can round below zero.
  std::vector<double> first =
      checked_vector<double>(image_size, fn, "the accumulators", image_text);
  std::vector<double> second;
  if (plan.statistic == smoothing_statistic::variance) {
    second = checked_vector<double>(image_size, fn, "the accumulators", image_text);
  }
  batches.for_each(
      total, [&](index_t b) { batches.run_gradient(g, b); },
      [&](index_t i, strided_view<T, 3> slot) {
        const index_t n = i / samples;
        const double sigma = plan.sigmas[static_cast<std::size_t>(n)];
        rng gen(plan.seed, static_cast<std::uint64_t>(i));
        for (index_t c = 0; c < channels; ++c) {
          for (index_t y = 0; y < height; ++y) {
            for (index_t col = 0; col < width; ++col) {
              const double noise = sigma * gen.normal<double>();
              slot(c, y, col) = static_cast<T>(static_cast<double>(x(n, c, y, col)) + noise);
            }
          }
        }
      },
      [&](index_t i, index_t s) {
        const index_t n = i / samples;
        const index_t sample = i % samples;
        const auto grad = batches.gradient(s);
        const auto noisy = batches.image(s);
        const double k = static_cast<double>(sample + 1);
        const bool last = sample == samples - 1;
        for_each_image_row(channels, height, width, threads, [&](index_t c, index_t y) {
          double* acc = first.data() + (c * height + y) * width;
          double* m2 = second.empty() ? nullptr : second.data() + (c * height + y) * width;
          for (index_t col = 0; col < width; ++col) {
            double a = static_cast<double>(grad(c, y, col));
            if (plan.times_input) a *= static_cast<double>(noisy(c, y, col));
            switch (plan.statistic) {
              case smoothing_statistic::mean:
                acc[col] = sample == 0 ? a : acc[col] + a;
                break;
              case smoothing_statistic::mean_square:
                acc[col] = sample == 0 ? a * a : acc[col] + a * a;
                break;
              case smoothing_statistic::variance: {
                if (sample == 0) {
                  acc[col] = a;
                  m2[col] = 0.0;
                } else {
                  const double d = a - acc[col];
                  acc[col] += d / k;
                  m2[col] += d * (a - acc[col]);
                }
                break;
              }
            }
            if (last) {
              const double sum =
                  plan.statistic == smoothing_statistic::variance ? m2[col] : acc[col];
              out(n, c, y, col) = static_cast<T>(sum / static_cast<double>(samples));
            }
          }
        });
      },
      threads);
}

/// Integrated gradients with the rule `rule`. `baseline` holds N images or one (broadcast; a
/// zero baseline is a one-image view with zero strides). Step k of image n is the model input
/// x′ + α_k·(x − x′) in T (Captum's expression); attr = (x − x′)·Σ_k w_k·g_k, the sum in double
/// in step order. With `delta` (has_delta), the endpoints are evaluated first: the N inputs,
/// then the baseline images (one when broadcast), and
/// delta_n = Σ attr_n − (f(x_n) − f(x′_n)), summed in double in (c, h, w) order.
template <class T, class G>
void run_integrated_gradients(strided_view<const T, 4> x, strided_view<const T, 4> baseline, G& g,
                              const integration_rule& rule, const model_options& model, int threads,
                              strided_view<T, 4> out, bool has_delta, strided_view<T, 1> delta,
                              const char* fn) {
  const index_t count = x.extent(0);
  const index_t channels = x.extent(1), height = x.extent(2), width = x.extent(3);
  if (count == 0) return;
  const auto steps = static_cast<index_t>(rule.alphas.size());
  const index_t baselines = baseline.extent(0);  // count or 1
  const auto describe = [&] {
    return std::to_string(count) + " images × " + std::to_string(steps) + " steps";
  };
  const index_t total = checked_mul(count, steps, fn, "the interpolated model inputs", describe);
  const index_t endpoints = has_delta ? count + baselines : 0;  // no overflow: both <= total + 1
  model_batches<T> batches(model, {channels, height, width}, true, fn, std::max(total, endpoints));
  const index_t image_size = batches.image_size();
  const auto base_of = [&](index_t n) { return baselines == 1 ? index_t{0} : n; };

  std::vector<T> f_inputs;
  std::vector<T> f_baselines;
  if (has_delta) {
    f_inputs.resize(static_cast<std::size_t>(count));
    f_baselines.resize(static_cast<std::size_t>(baselines));
    batches.for_each(
        endpoints, [&](index_t b) { batches.run_gradient(g, b); },
        [&](index_t i, strided_view<T, 3> slot) {
          if (i < count) {
            copy_image(x, i, slot);
          } else {
            copy_image(baseline, i - count, slot);
          }
        },
        [&](index_t i, index_t s) {
          if (i < count) {
            f_inputs[static_cast<std::size_t>(i)] = batches.score(s);
          } else {
            f_baselines[static_cast<std::size_t>(i - count)] = batches.score(s);
          }
        },
        threads);
  }

  std::vector<double> acc = checked_vector<double>(
      image_size, fn, "the accumulators", [&] { return std::to_string(image_size) + " values"; });
  batches.for_each(
      total, [&](index_t b) { batches.run_gradient(g, b); },
      [&](index_t i, strided_view<T, 3> slot) {
        const index_t n = i / steps;
        const index_t bn = base_of(n);
        const auto alpha = static_cast<T>(rule.alphas[static_cast<std::size_t>(i % steps)]);
        for (index_t c = 0; c < channels; ++c) {
          for (index_t y = 0; y < height; ++y) {
            for (index_t col = 0; col < width; ++col) {
              const T b = baseline(bn, c, y, col);
              slot(c, y, col) = b + alpha * (x(n, c, y, col) - b);
            }
          }
        }
      },
      [&](index_t i, index_t s) {
        const index_t n = i / steps;
        const index_t bn = base_of(n);
        const index_t k = i % steps;
        const double weight = rule.weights[static_cast<std::size_t>(k)];
        const auto grad = batches.gradient(s);
        for_each_image_row(channels, height, width, threads, [&](index_t c, index_t y) {
          double* row = acc.data() + (c * height + y) * width;
          for (index_t col = 0; col < width; ++col) {
            const double term = weight * static_cast<double>(grad(c, y, col));
            row[col] = k == 0 ? term : row[col] + term;
          }
          if (k == steps - 1) {
            for (index_t col = 0; col < width; ++col) {
              const double span = static_cast<double>(x(n, c, y, col)) -
                                  static_cast<double>(baseline(bn, c, y, col));
              out(n, c, y, col) = static_cast<T>(span * row[col]);
            }
          }
        });
        if (has_delta && k == steps - 1) {
          double sum = 0.0;
          for (index_t c = 0; c < channels; ++c) {
            for (index_t y = 0; y < height; ++y) {
              for (index_t col = 0; col < width; ++col) {
                sum += static_cast<double>(out(n, c, y, col));
              }
            }
          }
          const double change = static_cast<double>(f_inputs[static_cast<std::size_t>(n)]) -
                                static_cast<double>(f_baselines[static_cast<std::size_t>(bn)]);
          delta(n) = static_cast<T>(sum - change);
        }
      },
      threads);
}

}  // namespace detail
CVK_END_NAMESPACE
