// cvk — computer-vision kernels, header-only C++20.
// Example support: a small sequential CNN composed of cvk kernels — conv2d (plain, grouped,
// depthwise) with conv2d_backward_input / _weight / _bias, batch norm, ReLU, max / average /
// global average pooling with their backward passes, flatten and a linear layer (a 1×1 conv on
// an N×1×1×D activation) — with seeded He initialisation, softmax cross-entropy, SGD with
// momentum and weight decay, and the hooks the saliency methods need (score gradients, a layer's
// activations and gradients for Grad-CAM, the layer list LRP walks, cascading randomisation).
// It shows how the kernels compose into a trainable network; it is not a training framework.
// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include <cvk/conv/conv2d.hpp>
#include <cvk/conv/conv2d_backward.hpp>
#include <cvk/conv/pool2d.hpp>
#include <cvk/core/as_view.hpp>
#include <cvk/core/errors.hpp>
#include <cvk/core/rng.hpp>
#include <cvk/core/tensor.hpp>
#include <cvk/saliency/lrp_types.hpp>

namespace cvk_example {

using cvk::index_t;

// How the network works.
//
// Activations are NHWC (cvk::layout::nhwc, the layout cvk's conv paths read in place): images
// N×H×W×C, every layer maps an N×h×w×c tensor to the next, and the last layer's output must be
// N×1×1×K (K logits), returned as an N×K tensor. Layers, in the order the builder adds them:
//   conv(in, out, k, params, bias)  y = conv2d(x, W, b, params), W out×(in/groups)×k×k (OIHW);
//                                   any conv2d_params (stride, padding, dilation, groups:
//                                   groups = in = out is depthwise); params.data_layout is set
//                                   to nhwc, params.act must stay none (add relu())
//   batch_norm()                    per channel; train mode: batch statistics (biased variance
//                                   to normalise, unbiased for the running variance), running
//                                   mean / variance updated with momentum 0.1; eval mode: the
//                                   running statistics; eps 1e-5; affine γ, β (torch's
//                                   BatchNorm2d)
//   relu()                          y = max(x, 0), gradient 0 at x <= 0 (torch's)
//   max_pool(k[, stride, padding]), avg_pool(k[, stride, padding])   cvk's pooling kernels
//   global_avg_pool()               adaptive_avg_pool2d to 1×1
//   flatten()                       N×h×w×c → N×1×1×(h·w·c), in (h, w, c) order: the NHWC
//                                   memory order, and cvk::lrp_flatten's in nhwc
//   linear(d, k)                    y = W·x + b on an N×1×1×d activation, W k×d (torch's
//                                   nn.Linear), run as a 1×1 conv2d
// A layer whose input does not chain (channels, a linear's d, a window larger than its input)
// raises cvk::shape_error naming the layer by index and kind.
//
// Training: forward(x, true) keeps every activation, backward(dlogits) writes (not accumulates)
// every parameter's gradient and returns d loss / d x, sgd_step applies torch's SGD: v = μ·v +
// g + λ·w, w -= lr·v (λ on conv and linear weights only: biases and batch-norm parameters are
// not decayed, the usual exclusion). Initialisation: conv and linear weights He-uniform
// (U(±√(6 / fan_in)), fan_in = (in/groups)·k·k), biases U(±1/√fan_in) (torch's), γ = 1, β = 0,
// running mean 0, running variance 1; layer i draws from cvk::rng(seed, i), so a network is
// reproducible from its seed and its architecture.
//
// Determinism: every cvk kernel is bit-identical for any thread count and the loops written here
// run on one thread in a fixed order, so forward, backward and training are reproducible bit for
// bit (for any `threads`).
//
// State: forward keeps each layer's input (the activations) and a max pool's argmax, a train-mode
// batch norm's batch statistics; backward reads them, so call backward after the forward whose
// gradient it is. One network runs one forward / backward at a time (not thread-safe). The
// saliency hooks (score_gradients, target_scores, activations_and_gradients and the callables)
// run in eval mode and skip the parameter gradients, which keep their values.

/// One trainable tensor with its gradient and SGD velocity.
template <class T, std::size_t Rank>
struct parameter {
  cvk::tensor<T, Rank> value, grad, velocity;
  bool decay = false;  ///< weight decay applies (conv and linear weights)

  parameter() = default;
  parameter(const std::array<index_t, Rank>& extents, bool decayed)
      : value(extents), grad(extents), velocity(extents), decay(decayed) {}
  [[nodiscard]] bool empty() const noexcept { return value.empty(); }
};

/// Draws `p` uniform in [-bound, bound).
template <class T, std::size_t Rank>
void fill_uniform(cvk::tensor<T, Rank>& p, double bound, cvk::rng& gen) {
  for (T& v : p) v = static_cast<T>(gen.uniform(-bound, bound));
}

/// A tensor of `extents` holding `x`'s values in its row-major order (a reshape).
template <class T, std::size_t Rank>
cvk::tensor<T, 4> reshaped(const cvk::tensor<T, Rank>& x, const std::array<index_t, 4>& extents) {
  cvk::tensor<T, 4> y(extents);
  std::copy(x.begin(), x.end(), y.begin());
  return y;
}

// ---------------------------------------------------------------------------------------------
// Layers. Each has forward(x, train, threads) → y and backward(x, y, dy, grads) → dx, where x and
// y are the input and output forward produced (the network keeps them); `grads.parameters`
// says whether to write the parameter gradients, `grads.input` whether dx is wanted (the first
// layer of a training step skips it).

struct backward_needs {
  bool parameters = true;
  bool input = true;
  int threads = 0;
};

template <class T>
struct conv_layer {
  parameter<T, 4> weight;  ///< out×(in/groups)×k×k
  parameter<T, 1> bias;    ///< out values, or empty
  cvk::conv2d_params params;

  [[nodiscard]] std::string name() const {
    const auto& e = weight.value.extents();
    const index_t in = e[1] * params.groups;
    std::string kind = params.groups == 1 ? "conv"
                       : (params.groups == in && params.groups == e[0])
                           ? "depthwise conv"
                           : "conv (groups " + std::to_string(params.groups) + ")";
    return kind + " " + std::to_string(in) + "→" + std::to_string(e[0]) + " " +
           std::to_string(e[2]) + "×" + std::to_string(e[3]);
  }
  void reset(cvk::rng& gen) {
    const auto& e = weight.value.extents();
    const double fan_in = static_cast<double>(e[1] * e[2] * e[3]);
    fill_uniform(weight.value, std::sqrt(6.0 / fan_in), gen);
    if (!bias.empty()) fill_uniform(bias.value, 1.0 / std::sqrt(fan_in), gen);
  }
  [[nodiscard]] cvk::conv2d_params run_params(int threads) const {
    cvk::conv2d_params p = params;
    p.threads = threads;
    return p;
  }
  cvk::tensor<T, 4> forward(const cvk::tensor<T, 4>& x, bool, int threads) {
    if (bias.empty()) return cvk::conv2d(x, weight.value, cvk::no_bias, run_params(threads));
    return cvk::conv2d(x, weight.value, bias.value, run_params(threads));
  }
  cvk::tensor<T, 4> backward(const cvk::tensor<T, 4>& x, const cvk::tensor<T, 4>&,
                             const cvk::tensor<T, 4>& dy, const backward_needs& needs) {
    const auto p = run_params(needs.threads);
    if (needs.parameters) {
      cvk::conv2d_backward_weight(dy, x, p, weight.grad);
      if (!bias.empty()) cvk::conv2d_backward_bias(dy, p, bias.grad);
    }
    if (!needs.input) return {};
    return cvk::conv2d_backward_input(dy, weight.value, x.extents(), p);
  }
};

template <class T>
struct batch_norm_layer {
  parameter<T, 1> gamma, beta;
  cvk::tensor<T, 1> running_mean, running_var;
  double momentum = 0.1, eps = 1e-5;
  // The statistics the last forward normalised with (batch or running), per channel.
  std::vector<double> mean, inv_std;
  bool trained = false;  ///< the last forward used batch statistics

  [[nodiscard]] std::string name() const {
    return "batch norm " + std::to_string(gamma.value.size());
  }
  void reset(cvk::rng&) {
    std::fill(gamma.value.begin(), gamma.value.end(), T(1));
    std::fill(beta.value.begin(), beta.value.end(), T(0));
    std::fill(running_mean.begin(), running_mean.end(), T(0));
    std::fill(running_var.begin(), running_var.end(), T(1));
  }
  [[nodiscard]] index_t channels() const noexcept { return gamma.value.size(); }

  cvk::tensor<T, 4> forward(const cvk::tensor<T, 4>& x, bool train, int) {
    const index_t c_count = channels();
    if (x.extent(3) != c_count) {
      CVK_THROW(cvk::shape_error, name() + " expects " + std::to_string(c_count) +
                                      " channels, got an input of " + x.shape_string() +
                                      " (N×H×W×C)");
    }
    const auto channel_count = static_cast<std::size_t>(c_count);
    const index_t pixels = x.size() / std::max<index_t>(c_count, 1);  // M = N·H·W
    mean.assign(channel_count, 0.0);
    inv_std.assign(channel_count, 0.0);
    trained = train;
    if (train) {
      // Two passes in double, pixel-major (NHWC rows are contiguous per pixel).
      std::vector<double> var(channel_count, 0.0);
      const T* px = x.data();
      for (index_t p = 0; p < pixels; ++p, px += c_count) {
        for (std::size_t c = 0; c < channel_count; ++c) mean[c] += static_cast<double>(px[c]);
      }
      for (double& m : mean) m /= static_cast<double>(pixels);
      px = x.data();
      for (index_t p = 0; p < pixels; ++p, px += c_count) {
        for (std::size_t c = 0; c < channel_count; ++c) {
          const double d = static_cast<double>(px[c]) - mean[c];
          var[c] += d * d;
        }
      }
      const double m = static_cast<double>(pixels);
      for (std::size_t c = 0; c < channel_count; ++c) {
        const double biased = var[c] / m;
        // torch: the running variance takes the unbiased estimate (M − 1 in the denominator).
        const double unbiased = pixels > 1 ? var[c] / (m - 1.0) : biased;
        running_mean.data()[c] =
            static_cast<T>((1.0 - momentum) * running_mean.data()[c] + momentum * mean[c]);
        running_var.data()[c] =
            static_cast<T>((1.0 - momentum) * running_var.data()[c] + momentum * unbiased);
        inv_std[c] = 1.0 / std::sqrt(biased + eps);
      }
    } else {
      for (std::size_t c = 0; c < channel_count; ++c) {
        mean[c] = static_cast<double>(running_mean.data()[c]);
        inv_std[c] = 1.0 / std::sqrt(static_cast<double>(running_var.data()[c]) + eps);
      }
    }
    cvk::tensor<T, 4> y(x.extents());
    const T* px = x.data();
    T* py = y.data();
    for (index_t p = 0; p < pixels; ++p, px += c_count, py += c_count) {
      for (std::size_t c = 0; c < channel_count; ++c) {
        const double x_hat = (static_cast<double>(px[c]) - mean[c]) * inv_std[c];
        py[c] = static_cast<T>(x_hat * static_cast<double>(gamma.value.data()[c]) +
                               static_cast<double>(beta.value.data()[c]));
      }
    }
    return y;
  }

  cvk::tensor<T, 4> backward(const cvk::tensor<T, 4>& x, const cvk::tensor<T, 4>&,
                             const cvk::tensor<T, 4>& dy, const backward_needs& needs) {
    const index_t c_count = channels();
    const auto channel_count = static_cast<std::size_t>(c_count);
    const index_t pixels = x.size() / std::max<index_t>(c_count, 1);
    // Σ dy and Σ dy·x̂ per channel: the parameter gradients, and (train mode) the two terms
    // the batch statistics add to dx.
    std::vector<double> sum_dy(channel_count, 0.0), sum_dy_xhat(channel_count, 0.0);
    const T* px = x.data();
    const T* pd = dy.data();
    for (index_t p = 0; p < pixels; ++p, px += c_count, pd += c_count) {
      for (std::size_t c = 0; c < channel_count; ++c) {
        const double x_hat = (static_cast<double>(px[c]) - mean[c]) * inv_std[c];
        sum_dy[c] += static_cast<double>(pd[c]);
        sum_dy_xhat[c] += static_cast<double>(pd[c]) * x_hat;
      }
    }
    if (needs.parameters) {
      for (std::size_t c = 0; c < channel_count; ++c) {
        gamma.grad.data()[c] = static_cast<T>(sum_dy_xhat[c]);
        beta.grad.data()[c] = static_cast<T>(sum_dy[c]);
      }
    }
    if (!needs.input) return {};
    // Train: dx = γ·σ⁻¹·(dy − mean(dy) − x̂·mean(dy·x̂)); eval: dx = γ·σ⁻¹·dy.
    const double m = static_cast<double>(pixels);
    cvk::tensor<T, 4> dx(x.extents());
    px = x.data();
    pd = dy.data();
    T* pdx = dx.data();
    for (index_t p = 0; p < pixels; ++p, px += c_count, pd += c_count, pdx += c_count) {
      for (std::size_t c = 0; c < channel_count; ++c) {
        const double scale = static_cast<double>(gamma.value.data()[c]) * inv_std[c];
        double g = static_cast<double>(pd[c]);
        if (trained) {
          const double x_hat = (static_cast<double>(px[c]) - mean[c]) * inv_std[c];
          g -= sum_dy[c] / m + x_hat * sum_dy_xhat[c] / m;
        }
        pdx[c] = static_cast<T>(scale * g);
      }
    }
    return dx;
  }
};

template <class T>
struct relu_layer {
  [[nodiscard]] std::string name() const { return "relu"; }
  cvk::tensor<T, 4> forward(const cvk::tensor<T, 4>& x, bool, int) {
    cvk::tensor<T, 4> y(x.extents());
    std::transform(x.begin(), x.end(), y.begin(), [](T v) { return v > T(0) ? v : T(0); });
    return y;
  }
  cvk::tensor<T, 4> backward(const cvk::tensor<T, 4>&, const cvk::tensor<T, 4>& y,
                             const cvk::tensor<T, 4>& dy, const backward_needs& needs) {
    if (!needs.input) return {};
    cvk::tensor<T, 4> dx(y.extents());
    std::transform(y.begin(), y.end(), dy.begin(), dx.begin(),
                   [](T out, T g) { return out > T(0) ? g : T(0); });
    return dx;
  }
};

template <class T>
struct max_pool_layer {
  cvk::pool2d_params params;
  cvk::tensor<index_t, 4> argmax;  ///< of the last forward

  [[nodiscard]] std::string name() const {
    return "max pool " + std::to_string(params.kernel[0]) + "×" + std::to_string(params.kernel[1]);
  }
  [[nodiscard]] cvk::pool2d_params run_params(int threads) const {
    cvk::pool2d_params p = params;
    p.threads = threads;
    return p;
  }
  cvk::tensor<T, 4> forward(const cvk::tensor<T, 4>& x, bool, int threads) {
    auto r = cvk::max_pool2d_with_indices(x, run_params(threads));
    argmax = std::move(r.indices);
    return std::move(r.output);
  }
  cvk::tensor<T, 4> backward(const cvk::tensor<T, 4>& x, const cvk::tensor<T, 4>&,
                             const cvk::tensor<T, 4>& dy, const backward_needs& needs) {
    if (!needs.input) return {};
    return cvk::max_pool2d_backward(dy, argmax, x.extents(), run_params(needs.threads));
  }
};

template <class T>
struct avg_pool_layer {
  cvk::pool2d_params params;

  [[nodiscard]] std::string name() const {
    return "avg pool " + std::to_string(params.kernel[0]) + "×" + std::to_string(params.kernel[1]);
  }
  [[nodiscard]] cvk::pool2d_params run_params(int threads) const {
    cvk::pool2d_params p = params;
    p.threads = threads;
    return p;
  }
  cvk::tensor<T, 4> forward(const cvk::tensor<T, 4>& x, bool, int threads) {
    return cvk::avg_pool2d(x, run_params(threads));
  }
  cvk::tensor<T, 4> backward(const cvk::tensor<T, 4>& x, const cvk::tensor<T, 4>&,
                             const cvk::tensor<T, 4>& dy, const backward_needs& needs) {
    if (!needs.input) return {};
    return cvk::avg_pool2d_backward(dy, x.extents(), run_params(needs.threads));
  }
};

template <class T>
struct global_avg_pool_layer {
  cvk::adaptive_pool2d_params params{.output_size = {1, 1}, .data_layout = cvk::layout::nhwc};

  [[nodiscard]] std::string name() const { return "global avg pool"; }
  [[nodiscard]] cvk::adaptive_pool2d_params run_params(int threads) const {
    cvk::adaptive_pool2d_params p = params;
    p.threads = threads;
    return p;
  }
  cvk::tensor<T, 4> forward(const cvk::tensor<T, 4>& x, bool, int threads) {
    return cvk::adaptive_avg_pool2d(x, run_params(threads));
  }
  cvk::tensor<T, 4> backward(const cvk::tensor<T, 4>& x, const cvk::tensor<T, 4>&,
                             const cvk::tensor<T, 4>& dy, const backward_needs& needs) {
    if (!needs.input) return {};
    return cvk::adaptive_avg_pool2d_backward(dy, x.extents(), run_params(needs.threads));
  }
};

template <class T>
struct flatten_layer {
  [[nodiscard]] std::string name() const { return "flatten"; }
  cvk::tensor<T, 4> forward(const cvk::tensor<T, 4>& x, bool, int) {
    // NHWC is (h, w, c)-ordered in memory: flattening is a reshape.
    return reshaped(x, {x.extent(0), 1, 1, x.extent(1) * x.extent(2) * x.extent(3)});
  }
  cvk::tensor<T, 4> backward(const cvk::tensor<T, 4>& x, const cvk::tensor<T, 4>&,
                             const cvk::tensor<T, 4>& dy, const backward_needs& needs) {
    if (!needs.input) return {};
    return reshaped(dy, x.extents());
  }
};

template <class T>
struct linear_layer {
  parameter<T, 2> weight;  ///< k×d
  parameter<T, 1> bias;    ///< k values

  [[nodiscard]] std::string name() const {
    return "linear " + std::to_string(weight.value.extent(1)) + "→" +
           std::to_string(weight.value.extent(0));
  }
  void reset(cvk::rng& gen) {
    const double fan_in = static_cast<double>(weight.value.extent(1));
    fill_uniform(weight.value, std::sqrt(6.0 / fan_in), gen);
    fill_uniform(bias.value, 1.0 / std::sqrt(fan_in), gen);
  }
  // The weight as the k×d×1×1 kernel of a 1×1 conv on the N×1×1×d activation.
  template <class W>
  static auto as_kernel(W& w) {
    return cvk::view(w.data(), w.extent(0), w.extent(1), index_t{1}, index_t{1});
  }
  [[nodiscard]] static cvk::conv2d_params run_params(int threads) {
    cvk::conv2d_params p;
    p.data_layout = cvk::layout::nhwc;
    p.threads = threads;
    return p;
  }
  void check(const cvk::tensor<T, 4>& x) const {
    if (x.extent(1) != 1 || x.extent(2) != 1 || x.extent(3) != weight.value.extent(1)) {
      CVK_THROW(cvk::shape_error, name() + " expects an N×1×1×" +
                                      std::to_string(weight.value.extent(1)) +
                                      " input (flatten() or global_avg_pool() before it), got " +
                                      x.shape_string() + " (N×H×W×C)");
    }
  }
  cvk::tensor<T, 4> forward(const cvk::tensor<T, 4>& x, bool, int threads) {
    check(x);
    return cvk::conv2d(x, as_kernel(weight.value), bias.value, run_params(threads));
  }
  cvk::tensor<T, 4> backward(const cvk::tensor<T, 4>& x, const cvk::tensor<T, 4>&,
                             const cvk::tensor<T, 4>& dy, const backward_needs& needs) {
    const auto p = run_params(needs.threads);
    if (needs.parameters) {
      cvk::conv2d_backward_weight(dy, x, p, as_kernel(weight.grad));
      cvk::conv2d_backward_bias(dy, p, bias.grad);
    }
    if (!needs.input) return {};
    return cvk::conv2d_backward_input(dy, as_kernel(weight.value), x.extents(), p);
  }
};

// ---------------------------------------------------------------------------------------------
// The loss.

template <class T>
struct loss_result {
  double loss = 0;             ///< mean cross-entropy over the batch
  cvk::tensor<T, 2> gradient;  ///< d loss / d logits, N×K
  index_t correct = 0;         ///< images whose largest logit is their label (first on ties)
};

/// Mean softmax cross-entropy of N×K `logits` against N integer `labels`, and its gradient
/// (softmax − onehot)/N. Computed in double with the max subtracted (log-sum-exp).
template <class T, cvk::tensor_of_rank<1> Labels>
loss_result<T> softmax_cross_entropy(const cvk::tensor<T, 2>& logits, const Labels& labels) {
  const auto label = cvk::as_view(labels);
  const index_t n_count = logits.extent(0), k_count = logits.extent(1);
  if (label.extent(0) != n_count) {
    CVK_THROW(cvk::shape_error, "softmax_cross_entropy: " + std::to_string(label.extent(0)) +
                                    " labels for " + std::to_string(n_count) + " logits rows");
  }
  loss_result<T> r;
  r.gradient = cvk::tensor<T, 2>(logits.extents());
  std::vector<double> p(static_cast<std::size_t>(k_count));
  for (index_t n = 0; n < n_count; ++n) {
    const auto c = static_cast<index_t>(label(n));
    if (c < 0 || c >= k_count) {
      CVK_THROW(cvk::out_of_range, "softmax_cross_entropy: label " + std::to_string(c) +
                                       " of image " + std::to_string(n) + " outside [0, " +
                                       std::to_string(k_count) + ")");
    }
    index_t best = 0;
    for (index_t k = 1; k < k_count; ++k) {
      if (logits(n, k) > logits(n, best)) best = k;
    }
    r.correct += best == c ? 1 : 0;
    const double top = static_cast<double>(logits(n, best));
    double sum = 0;
    for (index_t k = 0; k < k_count; ++k) {
      p[static_cast<std::size_t>(k)] = std::exp(static_cast<double>(logits(n, k)) - top);
      sum += p[static_cast<std::size_t>(k)];
    }
    r.loss += std::log(sum) - (static_cast<double>(logits(n, c)) - top);
    for (index_t k = 0; k < k_count; ++k) {
      const double onehot = k == c ? 1.0 : 0.0;
      r.gradient(n, k) = static_cast<T>((p[static_cast<std::size_t>(k)] / sum - onehot) /
                                        static_cast<double>(n_count));
    }
  }
  r.loss /= static_cast<double>(std::max<index_t>(n_count, 1));
  return r;
}

// ---------------------------------------------------------------------------------------------
// The network.

/// A layer's activation and d score / d activation (Grad-CAM's inputs), N×h×w×k (NHWC), and the
/// network's logits, N×K.
template <class T>
struct layer_gradients {
  cvk::tensor<T, 4> activations, gradients;
  cvk::tensor<T, 2> logits;
};

template <class T>
class sequential_net {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "cvk_example::sequential_net<T> needs T = float or double");

 public:
  using layer =
      std::variant<conv_layer<T>, batch_norm_layer<T>, relu_layer<T>, max_pool_layer<T>,
                   avg_pool_layer<T>, global_avg_pool_layer<T>, flatten_layer<T>, linear_layer<T>>;

  /// An empty network whose layers draw their initial parameters from cvk::rng(seed, index);
  /// `threads` go to every kernel (0: all).
  explicit sequential_net(std::uint64_t seed = 0, int threads = 0)
      : seed_(seed), threads_(threads) {}

  // Builder. Each returns *this; channel counts are checked against the previous layer's.

  /// conv2d with an out×(in/groups)×k×k weight; params: stride, padding, dilation, groups
  /// (data_layout is set to nhwc; act must be none).
  sequential_net& conv(index_t in, index_t out, index_t kernel, cvk::conv2d_params params = {},
                       bool bias = true) {
    expect_channels(in, "conv");
    if (params.act != cvk::activation::none) {
      CVK_THROW(cvk::invalid_argument,
                "sequential_net::conv: params.act must be none (add a "
                "relu() layer: its backward is the network's)");
    }
    if (params.groups < 1 || in % params.groups != 0 || out % params.groups != 0) {
      CVK_THROW(cvk::invalid_argument, "sequential_net::conv: groups " +
                                           std::to_string(params.groups) + " must divide " +
                                           std::to_string(in) + " and " + std::to_string(out));
    }
    params.data_layout = cvk::layout::nhwc;
    params.weights = cvk::weight_layout::oihw;
    conv_layer<T> l;
    l.weight = parameter<T, 4>({out, in / params.groups, kernel, kernel}, true);
    if (bias) l.bias = parameter<T, 1>({out}, false);
    l.params = params;
    channels_ = out;
    return add(std::move(l));
  }
  /// Batch norm over the channels of the layer before.
  sequential_net& batch_norm() {
    if (channels_ < 1) {
      CVK_THROW(cvk::invalid_argument,
                "sequential_net::batch_norm: the channel count is unknown (add it after a conv)");
    }
    batch_norm_layer<T> l;
    l.gamma = parameter<T, 1>({channels_}, false);
    l.beta = parameter<T, 1>({channels_}, false);
    l.running_mean = cvk::tensor<T, 1>(channels_);
    l.running_var = cvk::tensor<T, 1>(channels_);
    return add(std::move(l));
  }
  sequential_net& relu() { return add(relu_layer<T>{}); }
  /// Max pooling with a k×k window (stride 0: k).
  sequential_net& max_pool(index_t kernel, index_t stride = 0, index_t padding = 0) {
    max_pool_layer<T> l;
    l.params = pool_params(kernel, stride, padding);
    return add(std::move(l));
  }
  /// Average pooling with a k×k window (stride 0: k; torch's count_include_pad).
  sequential_net& avg_pool(index_t kernel, index_t stride = 0, index_t padding = 0) {
    avg_pool_layer<T> l;
    l.params = pool_params(kernel, stride, padding);
    return add(std::move(l));
  }
  sequential_net& global_avg_pool() { return add(global_avg_pool_layer<T>{}); }
  sequential_net& flatten() {
    channels_ = -1;  // h·w·c: known only from the input's size
    return add(flatten_layer<T>{});
  }
  /// y = W·x + b, W out×in, on an N×1×1×in activation.
  sequential_net& linear(index_t in, index_t out) {
    expect_channels(in, "linear");
    linear_layer<T> l;
    l.weight = parameter<T, 2>({out, in}, true);
    l.bias = parameter<T, 1>({out}, false);
    channels_ = out;
    return add(std::move(l));
  }

  // Inspection.

  [[nodiscard]] index_t layer_count() const noexcept {
    return static_cast<index_t>(layers_.size());
  }
  [[nodiscard]] const layer& layer_at(index_t i) const { return layers_[checked_index(i)]; }
  [[nodiscard]] layer& layer_at(index_t i) { return layers_[checked_index(i)]; }
  /// "conv 16→32 3×3", "relu", ...
  [[nodiscard]] std::string layer_name(index_t i) const {
    return std::visit([](const auto& l) { return l.name(); }, layers_[checked_index(i)]);
  }
  /// Trainable values in all.
  [[nodiscard]] index_t parameter_count() const {
    index_t count = 0;
    visit_parameters(*this, [&](const auto& p) { count += p.value.size(); });
    return count;
  }
  /// Layers with parameters (conv, batch norm, linear): the stages of randomize_from_top.
  [[nodiscard]] index_t parameter_layer_count() const {
    index_t count = 0;
    for (const layer& l : layers_) count += has_parameters(l) ? 1 : 0;
    return count;
  }
  /// Layer i's input in the last forward (i = layer_count(): the network's output), N×h×w×c.
  [[nodiscard]] const cvk::tensor<T, 4>& activation(index_t i) const {
    if (i < 0 || static_cast<std::size_t>(i) >= activations_.size()) {
      CVK_THROW(cvk::out_of_range, "sequential_net::activation: " + std::to_string(i) +
                                       " outside the last forward's [0, " +
                                       std::to_string(activations_.size()) + ")");
    }
    return activations_[static_cast<std::size_t>(i)];
  }
  /// Calls f(p) on every parameter p (a cvk_example::parameter: value, grad, velocity), in
  /// layer order: conv weight, bias; batch-norm γ, β; linear weight, bias.
  template <class F>
  void for_each_parameter(F&& f) {
    visit_parameters(*this, f);
  }
  template <class F>
  void for_each_parameter(F&& f) const {
    visit_parameters(*this, f);
  }
  [[nodiscard]] int threads() const noexcept { return threads_; }
  void set_threads(int threads) noexcept { threads_ = threads; }

  // Training.

  /// The N×K logits of N images (N×H×W×C, any tensor of T). train: batch statistics in batch
  /// norm (and their running averages updated).
  template <cvk::tensor_of_rank<4> Input>
  cvk::tensor<T, 2> forward(const Input& x, bool train) {
    run_forward(x, train);
    return logits();
  }

  /// Backward from d loss / d logits (N×K) after forward: writes every parameter gradient and
  /// returns d loss / d input (N×H×W×C).
  cvk::tensor<T, 4> backward(const cvk::tensor<T, 2>& grad_logits) {
    return run_backward(grad_logits, 0, {.parameters = true, .input = true, .threads = threads_});
  }

  /// One SGD step on every parameter (torch.optim.SGD, dampening 0, no Nesterov): g' = g + λ·w
  /// (λ = weight_decay, conv and linear weights only), v = μ·v + g', w -= lr·v.
  void sgd_step(double lr, double momentum, double weight_decay) {
    visit_parameters(*this, [&](auto& p) {
      T* w = p.value.data();
      const T* g = p.grad.data();
      T* v = p.velocity.data();
      const double decay = p.decay ? weight_decay : 0.0;
      for (index_t i = 0; i < p.value.size(); ++i) {
        const double step = momentum * static_cast<double>(v[i]) + static_cast<double>(g[i]) +
                            decay * static_cast<double>(w[i]);
        v[i] = static_cast<T>(step);
        w[i] = static_cast<T>(static_cast<double>(w[i]) - lr * step);
      }
    });
  }

  /// forward (train mode), softmax cross-entropy against `labels`, backward (no input gradient)
  /// and one SGD step; returns the batch's loss and correct count.
  template <cvk::tensor_of_rank<4> Input, cvk::tensor_of_rank<1> Labels>
  loss_result<T> train_step(const Input& x, const Labels& labels, double lr, double momentum,
                            double weight_decay) {
    run_forward(x, true);
    loss_result<T> r = softmax_cross_entropy(logits(), labels);
    run_backward(r.gradient, 0, {.parameters = true, .input = false, .threads = threads_});
    sgd_step(lr, momentum, weight_decay);
    return r;
  }

  // Saliency hooks (eval mode; parameter gradients are not touched).

  /// Logits of the target class and d logit / d input for a batch (B×H×W×C, NHWC): the
  /// gradient_function contract of cvk/saliency/model.hpp with model_options::data_layout = nhwc.
  void score_gradients(cvk::strided_view<const T, 4> batch, index_t target,
                       cvk::strided_view<T, 1> scores, cvk::strided_view<T, 4> grads) {
    run_forward(batch, false);
    const cvk::tensor<T, 2> out = logits();
    check_target(target, out.extent(1));
    cvk::tensor<T, 2> seed(out.extents());
    for (index_t n = 0; n < out.extent(0); ++n) {
      scores(n) = out(n, target);
      seed(n, target) = T(1);
    }
    const auto g = run_backward(seed, 0, {.parameters = false, .input = true, .threads = threads_});
    for (index_t n = 0; n < g.extent(0); ++n) {
      for (index_t y = 0; y < g.extent(1); ++y) {
        for (index_t x = 0; x < g.extent(2); ++x) {
          for (index_t c = 0; c < g.extent(3); ++c) grads(n, y, x, c) = g(n, y, x, c);
        }
      }
    }
  }
  /// Logits of the target class (the forward_function contract, NHWC).
  void target_scores(cvk::strided_view<const T, 4> batch, index_t target,
                     cvk::strided_view<T, 1> out) {
    const cvk::tensor<T, 2> l = forward(batch, false);
    check_target(target, l.extent(1));
    for (index_t n = 0; n < l.extent(0); ++n) out(n) = l(n, target);
  }
  /// A cvk::gradient_function for class `target` (the callable refers to this network).
  [[nodiscard]] auto gradient_function(index_t target) {
    return [this, target](cvk::strided_view<const T, 4> batch, cvk::strided_view<T, 1> s,
                          cvk::strided_view<T, 4> g) { score_gradients(batch, target, s, g); };
  }
  /// A cvk::forward_function for class `target`.
  [[nodiscard]] auto forward_function(index_t target) {
    return [this, target](cvk::strided_view<const T, 4> batch, cvk::strided_view<T, 1> s) {
      target_scores(batch, target, s);
    };
  }

  /// The output of layer `layer_index` (N×h×w×k) for images x and d logit_{targets[n]} / d that
  /// output, in eval mode (Grad-CAM's activations and gradients), with the logits.
  template <cvk::tensor_of_rank<4> Input, cvk::tensor_of_rank<1> Targets>
  layer_gradients<T> activations_and_gradients(const Input& x, index_t layer_index,
                                               const Targets& targets) {
    const auto stop = checked_index(layer_index);
    run_forward(x, false);
    layer_gradients<T> r;
    r.logits = logits();
    const auto target = cvk::as_view(targets);
    if (target.extent(0) != r.logits.extent(0)) {
      CVK_THROW(cvk::shape_error, "activations_and_gradients: " + std::to_string(target.extent(0)) +
                                      " targets for " + std::to_string(r.logits.extent(0)) +
                                      " images");
    }
    cvk::tensor<T, 2> seed(r.logits.extents());
    for (index_t n = 0; n < seed.extent(0); ++n) {
      const auto c = static_cast<index_t>(target(n));
      check_target(c, seed.extent(1));
      seed(n, c) = T(1);
    }
    r.activations = activations_[stop + 1];
    r.gradients = run_backward(seed, static_cast<index_t>(stop) + 1,
                               {.parameters = false, .input = true, .threads = threads_});
    return r;
  }

  /// The eval-mode network as cvk's LRP layer list (lrp_options::data_layout = nhwc).
  [[nodiscard]] std::vector<cvk::lrp_layer<T>> lrp_layers() const {
    std::vector<cvk::lrp_layer<T>> out;
    for (const layer& l : layers_) {
      std::visit(
          [&](const auto& v) {
            using L = std::decay_t<decltype(v)>;
            if constexpr (std::is_same_v<L, conv_layer<T>>) {
              cvk::conv2d_params p = v.params;
              p.threads = threads_;
              out.emplace_back(cvk::lrp_conv<T>{v.weight.value, v.bias.value, p});
            } else if constexpr (std::is_same_v<L, linear_layer<T>>) {
              out.emplace_back(cvk::lrp_linear<T>{v.weight.value, v.bias.value});
            } else if constexpr (std::is_same_v<L, batch_norm_layer<T>>) {
              out.emplace_back(cvk::lrp_batch_norm<T>{v.running_mean, v.running_var, v.gamma.value,
                                                      v.beta.value, v.eps});
            } else if constexpr (std::is_same_v<L, relu_layer<T>>) {
              out.emplace_back(cvk::lrp_relu{});
            } else if constexpr (std::is_same_v<L, max_pool_layer<T>>) {
              out.emplace_back(cvk::lrp_max_pool{v.params});
            } else if constexpr (std::is_same_v<L, avg_pool_layer<T>>) {
              out.emplace_back(cvk::lrp_avg_pool{v.params});
            } else if constexpr (std::is_same_v<L, global_avg_pool_layer<T>>) {
              out.emplace_back(cvk::lrp_adaptive_avg_pool{v.params});
            } else {
              out.emplace_back(cvk::lrp_flatten{});
            }
          },
          l);
    }
    return out;
  }

  /// Re-initialises the top `count` layers with parameters (counted from the output): conv and
  /// linear layers get a fresh He-uniform draw from cvk::rng(seed, layer index), batch norm
  /// torch's reset (γ 1, β 0, running mean 0, running variance 1) — the cascading
  /// model-parameter randomisation of Adebayo et al. 2018, one stage per count.
  void randomize_from_top(index_t count, std::uint64_t seed) {
    index_t done = 0;
    for (index_t i = layer_count() - 1; i >= 0 && done < count; --i) {
      layer& l = layers_[static_cast<std::size_t>(i)];
      if (!has_parameters(l)) continue;
      cvk::rng gen(seed, static_cast<std::uint64_t>(i));
      std::visit(
          [&](auto& v) {
            if constexpr (requires { v.reset(gen); }) v.reset(gen);
          },
          l);
      ++done;
    }
  }

 private:
  template <class L>
  sequential_net& add(L l) {
    if constexpr (requires { l.reset(std::declval<cvk::rng&>()); }) {
      cvk::rng gen(seed_, static_cast<std::uint64_t>(layers_.size()));
      l.reset(gen);
    }
    layers_.emplace_back(std::move(l));
    return *this;
  }

  void expect_channels(index_t in, const char* what) const {
    if (channels_ >= 1 && in != channels_) {
      CVK_THROW(cvk::invalid_argument, std::string("sequential_net::") + what + ": " +
                                           std::to_string(in) +
                                           " input channels after a layer "
                                           "of " +
                                           std::to_string(channels_));
    }
  }

  static cvk::pool2d_params pool_params(index_t kernel, index_t stride, index_t padding) {
    cvk::pool2d_params p;
    p.kernel = {kernel, kernel};
    p.stride = {stride, stride};
    p.padding = {padding, padding};
    p.data_layout = cvk::layout::nhwc;
    return p;
  }

  static bool has_parameters(const layer& l) {
    return std::holds_alternative<conv_layer<T>>(l) ||
           std::holds_alternative<batch_norm_layer<T>>(l) ||
           std::holds_alternative<linear_layer<T>>(l);
  }

  /// Calls f(parameter) for every parameter, in layer order (Self: this class, const or not).
  template <class Self, class F>
  static void visit_parameters(Self& self, F&& f) {
    for (auto& l : self.layers_) {
      std::visit(
          [&](auto& v) {
            using L = std::decay_t<decltype(v)>;
            if constexpr (std::is_same_v<L, conv_layer<T>>) {
              f(v.weight);
              if (!v.bias.empty()) f(v.bias);
            } else if constexpr (std::is_same_v<L, linear_layer<T>>) {
              f(v.weight);
              f(v.bias);
            } else if constexpr (std::is_same_v<L, batch_norm_layer<T>>) {
              f(v.gamma);
              f(v.beta);
            }
          },
          l);
    }
  }

  [[nodiscard]] std::size_t checked_index(index_t i) const {
    if (i < 0 || i >= layer_count()) {
      CVK_THROW(cvk::out_of_range, "sequential_net: layer " + std::to_string(i) + " outside [0, " +
                                       std::to_string(layer_count()) + ")");
    }
    return static_cast<std::size_t>(i);
  }

  static void check_target(index_t target, index_t classes) {
    if (target < 0 || target >= classes) {
      CVK_THROW(cvk::out_of_range, "sequential_net: target class " + std::to_string(target) +
                                       " outside [0, " + std::to_string(classes) + ")");
    }
  }

  /// Runs every layer on x, keeping activations_[i] (layer i's input) and activations_[L].
  template <class Input>
  void run_forward(const Input& input, bool train) {
    if (layers_.empty()) CVK_THROW(cvk::invalid_argument, "sequential_net: no layers");
    const auto x = cvk::as_view(input);
    activations_.resize(layers_.size() + 1);
    cvk::tensor<T, 4>& first = activations_[0];
    first = cvk::tensor<T, 4>(x.extent(0), x.extent(1), x.extent(2), x.extent(3));
    auto it = first.begin();
    for (index_t n = 0; n < x.extent(0); ++n) {
      for (index_t h = 0; h < x.extent(1); ++h) {
        for (index_t w = 0; w < x.extent(2); ++w) {
          for (index_t c = 0; c < x.extent(3); ++c) *it++ = static_cast<T>(x(n, h, w, c));
        }
      }
    }
    for (std::size_t i = 0; i < layers_.size(); ++i) {
      try {
        activations_[i + 1] = std::visit(
            [&](auto& l) { return l.forward(activations_[i], train, threads_); }, layers_[i]);
      } catch (const cvk::shape_error& e) {
        CVK_THROW(cvk::shape_error, "sequential_net: layer " + std::to_string(i) + " (" +
                                        layer_name(static_cast<index_t>(i)) + "): " + e.what());
      }
    }
  }

  /// The last activation (N×1×1×K) as N×K logits.
  [[nodiscard]] cvk::tensor<T, 2> logits() const {
    const cvk::tensor<T, 4>& y = activations_.back();
    if (y.extent(1) != 1 || y.extent(2) != 1) {
      CVK_THROW(cvk::shape_error, "sequential_net: the last layer's output must be N×1×1×K, got " +
                                      y.shape_string() + " (N×H×W×C)");
    }
    cvk::tensor<T, 2> out(y.extent(0), y.extent(3));
    std::copy(y.begin(), y.end(), out.begin());
    return out;
  }

  /// Backward from the logits' gradient through layers L − 1 … stop; returns the gradient of
  /// activations_[stop] (empty when needs.input is false and stop = 0).
  cvk::tensor<T, 4> run_backward(const cvk::tensor<T, 2>& grad_logits, index_t stop,
                                 backward_needs needs) {
    const cvk::tensor<T, 4>& top = activations_.back();
    if (activations_.size() != layers_.size() + 1 || grad_logits.extent(0) != top.extent(0) ||
        grad_logits.extent(1) != top.extent(3)) {
      CVK_THROW(cvk::shape_error, "sequential_net::backward: grad_logits " +
                                      grad_logits.shape_string() +
                                      " does not match the last forward's logits");
    }
    cvk::tensor<T, 4> grad = reshaped(grad_logits, top.extents());
    const bool input_wanted = needs.input;
    for (index_t i = layer_count() - 1; i >= stop; --i) {
      const auto s = static_cast<std::size_t>(i);
      needs.input = i > stop || input_wanted;
      grad = std::visit(
          [&](auto& l) { return l.backward(activations_[s], activations_[s + 1], grad, needs); },
          layers_[s]);
    }
    return grad;
  }

  std::uint64_t seed_ = 0;
  int threads_ = 0;
  index_t channels_ = -1;  ///< output channels of the last layer, -1: unknown
  std::vector<layer> layers_;
  std::vector<cvk::tensor<T, 4>> activations_;  ///< of the last forward: L + 1 tensors
};

}  // namespace cvk_example
