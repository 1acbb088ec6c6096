// cvk — computer-vision kernels, header-only C++20.
// The CAM methods on checked (n, c, h, w)-ordered views (cvk/saliency/cam.hpp checks the
// arguments): the channel weights of CAM, Grad-CAM, Grad-CAM++ and XGrad-CAM, the element-wise
// terms of LayerCAM, HiResCAM and Grad-CAM element-wise, and Score-CAM's masked forward passes.
// SPDX-License-Identifier: MIT
#pragma once

#include <cmath>
#include <limits>
#include <vector>

#include "../../core/config.hpp"
#include "../../core/strided_view.hpp"
#include "../../detail/checks.hpp"
#include "../model.hpp"
#include "cam_kernels.hpp"
#include "resample.hpp"

CVK_BEGIN_NAMESPACE
namespace detail {

/// Which gradient-weighted method a call runs.
enum class cam_method { grad_cam, grad_cam_pp, xgrad_cam, layer_cam, hires_cam, elementwise };

/// The two Grad-CAM++ α forms (see grad_cam_pp_alpha in cam.hpp).
enum class cam_pp_form { eq19, reduced };

/// Numeric choices of a gradient-weighted call.
struct cam_settings {
  bool relu = true;
  double eps = 0;  // Grad-CAM++ (eq. 19's ε) and XGrad-CAM
  cam_pp_form pp_form = cam_pp_form::eq19;
  int threads = 0;
};

/// N×K channel weights, image-major, with the shape of the call in its message.
template <class T>
std::vector<T> cam_weight_buffer(const strided_view<const T, 4>& a, const char* fn) {
  const auto describe = [&] { return a.shape_string(); };
  return checked_vector<T>(
      checked_mul(a.extent(0), a.extent(1), fn, "the channel weights", describe), fn,
      "the channel weights", describe);
}

/// out = [ReLU] Σ_k weights[n·K + k]·a(n, k, ·, ·).
template <class T>
void cam_weighted_map(const strided_view<const T, 4>& a, const T* weights, bool relu,
                      const strided_view<T, 3>& out, int threads, const char* fn) {
  const index_t channels = a.extent(1);
  const auto term = [weights, channels](index_t n, index_t k, T av, T) {
    return weights[n * channels + k] * av;
  };
  cam_run_map(cam_tensors<T>{a, a}, term, relu, out, threads, fn);
}

/// Grad-CAM++'s α summand for one pixel of channel k (Chattopadhay et al. 2018, eq. 19, as
/// pytorch-grad-cam's grad_cam_plusplus.py: ReLU(g)·g²/(2g² + ΣA·g³ + ε), 0 where g = 0), or
/// its ε → 0 limit ReLU(g)/(2 + g·ΣA) (`reduced`; g ≤ 0 gives 0, NaN stays NaN).
template <class T>
T grad_cam_pp_summand(T g, T sum_a, T eps, cam_pp_form form) noexcept {
  if (form == cam_pp_form::reduced) {
    if (g > T(0)) return g / (T(2) + g * sum_a);
    return g != g ? g : T(0);
  }
  const T g2 = g * g;
  const T g3 = g2 * g;
  const T alpha = g2 / (T(2) * g2 + sum_a * g3 + eps);
  return g != T(0) ? cam_relu(g) * alpha : T(0);
}

/// The channel weights of a Grad-CAM, Grad-CAM++ or XGrad-CAM call into `weights` (N·K).
template <class T>
void gradient_channel_weights(const cam_tensors<T>& t, cam_method method, const cam_settings& s,
                              T* weights, const char* fn) {
  const index_t n_images = t.a.extent(0), channels = t.a.extent(1);
  const index_t hw = t.a.extent(2) * t.a.extent(3);  // checked by the caller
  const cam_memory m = cam_memory_of(t);
  const T eps = static_cast<T>(s.eps);
  std::vector<T> sums;  // Σ_ij A^k_ij per channel (Grad-CAM++, XGrad-CAM)
  if (method != cam_method::grad_cam) sums = cam_weight_buffer(t.a, fn);
  const auto sum_a = [](index_t, T a, T) { return a; };
  const auto weigh = [&](index_t n, index_t k0, index_t k1, T* out, T* sum) {
    switch (method) {
      case cam_method::grad_cam: {
        // α_k = mean_ij g^k_ij (grad_cam.py's np.mean over the plane).
        cam_channel_sums(
            t, m, n, k0, k1, [](index_t, T, T g) { return g; }, out);
        const auto count = static_cast<T>(hw);
        for (index_t j = 0; j < k1 - k0; ++j) out[j] /= count;
        return;
      }
      case cam_method::xgrad_cam:
        // α_k = Σ_ij g·A / (Σ_ij A + ε) (xgrad_cam.py divides each term, then sums).
        cam_channel_sums(t, m, n, k0, k1, sum_a, sum);
        cam_channel_sums(
            t, m, n, k0, k1, [](index_t, T a, T g) { return g * a; }, out);
        for (index_t j = 0; j < k1 - k0; ++j) out[j] /= sum[j] + eps;
        return;
      case cam_method::grad_cam_pp: {
        cam_channel_sums(t, m, n, k0, k1, sum_a, sum);
        const cam_pp_form form = s.pp_form;
        cam_channel_sums(
            t, m, n, k0, k1,
            [sum, k0, eps, form](index_t k, T, T g) {
              return grad_cam_pp_summand(g, sum[k - k0], eps, form);
            },
            out);
        return;
      }
      default:
        return;
    }
  };
  cam_run_weights<T>(n_images, channels, hw, weigh, weights,
                     method == cam_method::grad_cam ? nullptr : sums.data(), s.threads);
}

/// Any gradient-based method of the family into `out`.
template <class T>
void run_gradient_cam(const cam_tensors<T>& t, cam_method method, const cam_settings& s,
                      const strided_view<T, 3>& out, const char* fn) {
  (void)checked_mul(t.a.extent(2), t.a.extent(3), fn, "activations' planes",
                    [&] { return t.a.shape_string(); });
  switch (method) {
    case cam_method::layer_cam:
      // Σ_k ReLU(g^k) ⊙ A^k (layer_cam.py).
      cam_run_map(
          t, [](index_t, index_t, T a, T g) { return cam_relu(g) * a; }, s.relu, out, s.threads,
          fn);
      return;
    case cam_method::hires_cam:
      // Σ_k g^k ⊙ A^k (hirescam.py).
      cam_run_map(
          t, [](index_t, index_t, T a, T g) { return g * a; }, s.relu, out, s.threads, fn);
      return;
    case cam_method::elementwise:
      // Σ_k ReLU(g^k ⊙ A^k) (grad_cam_elementwise.py).
      cam_run_map(
          t, [](index_t, index_t, T a, T g) { return cam_relu(g * a); }, s.relu, out, s.threads,
          fn);
      return;
    default: {
      std::vector<T> weights = cam_weight_buffer(t.a, fn);
      gradient_channel_weights(t, method, s, weights.data(), fn);
      cam_weighted_map(t.a, weights.data(), s.relu, out, s.threads, fn);
      return;
    }
  }
}

/// Score-CAM (Wang et al. 2020, as pytorch-grad-cam's score_cam.py): for each image n and
/// channel k the model scores images(n) ⊙ M^k, M^k = A^k resized bilinearly to the image and
/// min-max normalised, (M − min)/(max − min + eps); the weights are the softmax over k of the
/// scores; map = [ReLU] Σ_k w_k A^k. N·K model inputs, through model_batches.
/// `images` and `a` are (n, c, h, w)-ordered; images: C, Hi, Wi >= 1 and a: H, W >= 1 unless
/// N·K = 0 (checked by the caller).
template <class T, class F>
void run_score_cam(const strided_view<const T, 4>& images, const strided_view<const T, 4>& a,
                   F& forward, const model_options& model, double eps, bool align_corners,
                   bool relu, const strided_view<T, 3>& out, int threads, const char* fn) {
  const index_t n_images = a.extent(0), channels = a.extent(1);
  if (n_images == 0) return;
  std::vector<T> weights = cam_weight_buffer(a, fn);
  const index_t count = n_images * channels;  // the size of `weights`, checked
  if (count > 0) {
    std::vector<T> scores(static_cast<std::size_t>(count));
    model_batches<T> batches(model, {images.extent(1), images.extent(2), images.extent(3)}, false,
                             fn, count);
    const T epsilon = static_cast<T>(eps);
    const bool nhwc = model.data_layout == layout::nhwc;
    const auto fill = [&](index_t i, strided_view<T, 3> input) {
      const index_t n = i / channels, k = i % channels;
      const index_t c_count = input.extent(0), hi = input.extent(1), wi = input.extent(2);
      const index_t pixels = hi * wi;
      const strided_view<const T, 2> source(a.data() + n * a.stride(0) + k * a.stride(1),
                                            {a.extent(2), a.extent(3)}, {a.stride(2), a.stride(3)});
      // The slot is contiguous (model_batches): its first Hi·Wi values hold the resized plane,
      // normalised in place, until the masked image overwrites them — NCHW: channel C − 1 first,
      // channel 0 (the plane itself) last; NHWC: pixels from the last to the first, since pixel
      // p's values go to p·C … p·C + C − 1 >= p and only overwrite the plane's pixels >= p.
      T* plane = input.data();
      resize_bilinear_plane<T, T>(source, strided_view<T, 2>(plane, {hi, wi}), align_corners);
      T low = std::numeric_limits<T>::infinity(), high = -low;
      bool nan = false;
      for (index_t p = 0; p < pixels; ++p) {
        const T v = plane[p];
        nan = nan || v != v;
        low = v < low ? v : low;
        high = v > high ? v : high;
      }
      if (nan) low = high = std::numeric_limits<T>::quiet_NaN();  // torch's min/max propagate NaN
      const T range = high - low + epsilon;
      for (index_t p = 0; p < pixels; ++p) plane[p] = (plane[p] - low) / range;
      if (!nhwc) {
        for (index_t c = c_count; c-- > 0;) {
          T* channel_out = plane + c * pixels;
          for (index_t y = 0; y < hi; ++y) {
            const T* x_row = &images(n, c, y, 0);
            const index_t sx = images.stride(3);
            T* out_row = channel_out + y * wi;
            const T* m_row = plane + y * wi;
            for (index_t x = 0; x < wi; ++x) out_row[x] = x_row[x * sx] * m_row[x];
          }
        }
      } else {
        const index_t sc = images.stride(1);
        for (index_t y = hi; y-- > 0;) {
          for (index_t x = wi; x-- > 0;) {
            const index_t p = y * wi + x;
            const T m = plane[p];
            const T* x_pixel = &images(n, 0, y, x);
            for (index_t c = c_count; c-- > 0;) plane[p * c_count + c] = x_pixel[c * sc] * m;
          }
        }
      }
    };
    batches.for_each(
        count, [&](index_t b) { batches.run_forward(forward, b); }, fill,
        [&](index_t i, index_t slot) { scores[static_cast<std::size_t>(i)] = batches.score(slot); },
        threads);
    // Softmax over the channels of each image, in double; a NaN score makes the image's weights
    // NaN (as torch's softmax).
    for (index_t n = 0; n < n_images; ++n) {
      const T* s = scores.data() + n * channels;
      double top = -std::numeric_limits<double>::infinity();
      bool nan = false;
      for (index_t k = 0; k < channels; ++k) {
        const auto v = static_cast<double>(s[k]);
        nan = nan || std::isnan(v);
        top = v > top ? v : top;
      }
      if (nan) top = std::numeric_limits<double>::quiet_NaN();
      double total = 0;
      for (index_t k = 0; k < channels; ++k) total += std::exp(static_cast<double>(s[k]) - top);
      for (index_t k = 0; k < channels; ++k) {
        weights[static_cast<std::size_t>(n * channels + k)] =
            static_cast<T>(std::exp(static_cast<double>(s[k]) - top) / total);
      }
    }
  }
  cam_weighted_map(a, weights.data(), relu, out, threads, fn);
}

}  // namespace detail
CVK_END_NAMESPACE
