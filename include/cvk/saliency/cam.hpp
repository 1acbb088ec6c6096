// cvk — computer-vision kernels, header-only C++20.
// The CAM family: class activation maps from a layer's activations (and the gradients of a
// score with respect to them) — CAM, Grad-CAM, Grad-CAM++, XGrad-CAM, LayerCAM, HiResCAM,
// Grad-CAM element-wise, Eigen-CAM — and Score-CAM through a forward callable. Buffers from any
// engine (ONNX Runtime, TensorRT, libtorch, a raw pointer with strides), NCHW or NHWC.
// SPDX-License-Identifier: MIT
#pragma once

#include <array>
#include <string>
#include <type_traits>
#include <utility>

#include "../core/as_view.hpp"
#include "../core/config.hpp"
#include "../core/errors.hpp"
#include "../core/layout.hpp"
#include "../core/tensor.hpp"
#include "../detail/checks.hpp"
#include "detail/cam_checks.hpp"
#include "detail/cam_eigen.hpp"
#include "detail/cam_run.hpp"
#include "model.hpp"

CVK_BEGIN_NAMESPACE

// The contract of every CAM entry point.
//
// Shapes (every tensor any strides; T float or double, the same in every tensor argument):
//   activations, gradients   N×K×H×W (params.data_layout = layout::nchw, the default) or
//                            N×H×W×K (layout::nhwc): A^k, the K channels of the target layer,
//                            and g^k = ∂score/∂A^k, which must have exactly A's shape
//   maps (the result, out)   N×H×W: one map per image at the activations' resolution
//   fc_weights (cam)         num_classes×K, the classifier after global average pooling
//   classes (cam)            N integer class ids (any integer type), one per image
//   images (score_cam)       N×C×Hi×Wi or N×Hi×Wi×C in params.model.data_layout
//
// Maps, with Z = H·W, sums over the pixels ij of a plane and over the channels k:
//   cam                    Σ_k w[c_n, k]·A^k (Zhou et al. 2016, eq. 2). No bias: the FC bias
//                          adds the same constant to every pixel of the class score and has no
//                          place in the map. For a GAP→linear head, g^k = w[c, k]/Z, so
//                          grad_cam · Z = cam exactly in real arithmetic.
//   grad_cam               Σ_k α_k A^k, α_k = (1/Z) Σ_ij g^k_ij (Selvaraju et al. 2017).
//   grad_cam_pp            Σ_k α_k A^k, α_k = Σ_ij ReLU(g_ij)·a_ij, a_ij = g²/(2g² + S·g³ + ε)
//                          with S = Σ_ab A^k_ab and a_ij = 0 where g_ij = 0 (Chattopadhay et al.
//                          2018, eq. 19, exactly as pytorch-grad-cam's grad_cam_plusplus.py,
//                          ε = 1e-6). Eq. 19 assumes the explained score is exp(logit), so that
//                          its higher derivatives are powers of the first; pytorch-grad-cam (and
//                          cvk) evaluate it with the gradients the caller passes, usually of
//                          the logit (pytorch-grad-cam issues #369, #541, #557).
//                          grad_cam_pp_alpha::reduced uses a_ij = 1/(2 + g_ij·S) for g_ij > 0
//                          (0 otherwise): the ε → 0 limit of eq. 19, the same for moderate g
//                          but it never forms g³, so it has no underflow to 0/0 for tiny g.
//                          It is NOT pytorch-grad-cam's result: eq. 19 with ε differs from it
//                          by the ε/g² term in the denominator, which dominates when |g| is
//                          below about 1e-3. Both forms have a pole at g·S = −2 (S < 0 only).
//   xgrad_cam              Σ_k α_k A^k, α_k = Σ_ij g·A / (S + ε), ε = 1e-7 (Fu et al. 2020;
//                          xgrad_cam.py divides each term before summing, cvk divides the sum).
//   layer_cam              Σ_k ReLU(g^k) ⊙ A^k (Jiang et al. 2021; layer_cam.py).
//   hires_cam              Σ_k g^k ⊙ A^k (Draelos & Carin 2020; hirescam.py).
//   grad_cam_elementwise   Σ_k ReLU(g^k ⊙ A^k) (grad_cam_elementwise.py).
//   eigen_cam              X·v: X = the Z×K matrix of the image's activations with NaN read as
//                          0 and each channel centred on its mean over the pixels (`center`,
//                          on by default), v its first right singular vector (Muhammad & Yeasin
//                          2020 as pytorch-grad-cam's utils/svd_on_activations.py). A singular
//                          vector's sign is arbitrary (pytorch-grad-cam keeps whatever LAPACK
//                          returns); cvk makes the map's value of largest magnitude positive,
//                          the first in row-major order on ties (= sklearn's svd_flip and
//                          pytorch-grad-cam's Seg-Eigen-CAM sign correction). No gradients.
//   score_cam              Σ_k w_k A^k, w = softmax_k(s), s_k = forward(images[n] ⊙ M^k), M^k =
//                          A^k resized bilinearly to Hi×Wi (align_corners = true: pytorch-grad-
//                          cam's nn.UpsamplingBilinear2d), then (M − min M)/(max M − min M + ε),
//                          ε = 1e-8, broadcast over the C channels (Wang et al. 2020 as
//                          pytorch-grad-cam's score_cam.py). N·K model inputs, fed through
//                          model_batches in batches of params.model.batch_size.
//   relu                   ReLU on the map after the sum. Default on for every method but cam:
//                          pytorch-grad-cam clamps every method's map at 0 (base_cam.py);
//                          Captum's LayerGradCam does not by default (relu_attributions=False) —
//                          grad_cam_params{.relu = false}. cam follows Zhou et al.: no clamp.
//   Maps are NOT normalised and NOT resized: pytorch-grad-cam additionally min-max normalises
//   each map ((m − min)/(max + 1e-7) after the clamp) and resizes it to the input with
//   cv2.resize; cvk leaves both to the post-processing operators (upsample_bilinear,
//   normalize), so unnormalised scores stay available (pytorch-grad-cam issue #267).
//
// Forms (every `out` a mutable N×H×W tensor of T, which must not overlap the inputs):
//   cam(activations, fc_weights, classes, params = {})          → tensor<T, 3>
//   cam(activations, fc_weights, classes, params, out)
//   grad_cam(activations, gradients, params = {})               → tensor<T, 3>
//   grad_cam(activations, gradients, params, out)
//   likewise grad_cam_pp, xgrad_cam, layer_cam, hires_cam, grad_cam_elementwise
//   eigen_cam(activations, params = {})                         → tensor<T, 3>
//   eigen_cam(activations, params, out)
//   score_cam(images, activations, forward, params = {})        → tensor<T, 3>
//   score_cam(images, activations, forward, params, out)
//   forward: a cvk::forward_function<F, T> (cvk/saliency/model.hpp), one score per image.
//
// Special values: arithmetic is IEEE and NaN propagates, ReLU included (a NaN is not clamped
// to 0, as np.maximum). A NaN in A^k or g^k makes NaN the map values its terms reach: grad_cam,
// cam, score_cam's final sum and the element-wise methods the pixels where A^k (or g^k) is NaN,
// plus every pixel when α_k itself is NaN (a NaN gradient in grad_cam, grad_cam_pp; a NaN
// activation or gradient in xgrad_cam and grad_cam_pp, whose α reads S). eigen_cam reads NaN as
// 0 (pytorch-grad-cam); ±inf activations give an all-NaN map. score_cam: a NaN in A^k makes
// its mask NaN (torch's min/max propagate NaN), so the model sees NaN; a NaN score makes every
// weight of the image NaN, hence its whole map. Constant channels: eigen_cam gives zeros;
// score_cam's mask of a constant channel is 0 (the ε keeps 0/0 away) — unless the resize
// leaves the plane one ulp uneven (double, align_corners = false), which 1/ε magnifies.
// Empty inputs: N = 0 gives an empty 0×H×W result (no model call); H·W = 0 an N×0×W or N×H×0
// result; K = 0 maps of zeros (the empty sum; ReLU keeps them 0; score_cam then calls no model).
//
// Errors (each message names the function, the argument and the shapes):
//   cvk::invalid_argument  data_layout or model.data_layout not a cvk::layout; threads < 0;
//                          eps negative or not finite; model.batch_size < 1
//   cvk::shape_error       a wrong rank; gradients whose shape differs from the activations'
//                          (both shapes named); fc_weights not num_classes×K; classes not N
//                          entries; images whose N differs from the activations'; score_cam
//                          with N·K > 0 and C, Hi, Wi, H or W = 0; out not N×H×W; a forward
//                          callable returning a number of scores other than its batch's
//   cvk::out_of_range      a class id outside [0, num_classes) (naming the image); sizes whose
//                          products overflow or cannot be allocated
//   An exception from the forward callable propagates unchanged.
//
// Complexity and threads: gradient methods and cam read A and g once each per image (Grad-CAM++
// and XGrad-CAM read A's channel blocks twice, the second time from cache): O(N·K·H·W), plus
// N·K weights. Work is cut by shape alone — weights over (image, channel block), maps over
// (image, pixel block) and, when there are fewer than 32 of those, channel blocks whose partial
// maps are added in block order — so results are bit-identical for any thread count (they may
// differ in the last bits between an NCHW and an NHWC copy of the same data: the sums run in
// the memory order). eigen_cam: O(Z·K·m + m³) per image, m = min(Z, K), in double, one image
// per thread. score_cam: N·K model inputs of C·Hi·Wi; O(N·K·C·Hi·Wi) besides the model; memory
// batch_size·C·Hi·Wi inputs plus N·K scores; the masked inputs of a batch are filled in
// parallel, the model is called from the calling thread.

/// cam (Zhou et al. 2016).
struct cam_params {
  /// Axis order of activations: N×K×H×W (nchw) or N×H×W×K (nhwc).
  layout data_layout = layout::nchw;
  /// ReLU on the map; off as in the paper (the raw class activation map).
  bool relu = false;
  /// Threads, 0 for all (parallel_for); results do not depend on it.
  int threads = 0;
};

/// grad_cam, layer_cam, hires_cam, grad_cam_elementwise.
struct grad_cam_params {
  layout data_layout = layout::nchw;
  /// ReLU on the map: pytorch-grad-cam (base_cam.py clamps every map); false is Captum
  /// LayerGradCam's default (relu_attributions=False). A no-op for grad_cam_elementwise.
  bool relu = true;
  int threads = 0;
};

/// How grad_cam_pp forms a_ij (see the contract above).
enum class grad_cam_pp_alpha {
  eq19,    ///< g²/(2g² + S·g³ + ε), 0 where g = 0: pytorch-grad-cam's grad_cam_plusplus.py
  reduced  ///< 1/(2 + g·S) for g > 0, else 0: the ε → 0 limit, no g³ (never 0/0)
};

/// grad_cam_pp (Chattopadhay et al. 2018).
struct grad_cam_pp_params {
  layout data_layout = layout::nchw;
  bool relu = true;  ///< pytorch-grad-cam
  /// ε of eq. 19 (pytorch-grad-cam: 1e-6); rounded to T. Unused by the reduced form.
  double eps = 1e-6;
  grad_cam_pp_alpha alpha = grad_cam_pp_alpha::eq19;
  int threads = 0;
};

/// xgrad_cam (Fu et al. 2020).
struct xgrad_cam_params {
  layout data_layout = layout::nchw;
  bool relu = true;  ///< pytorch-grad-cam
  /// Added to Σ_ij A^k_ij (pytorch-grad-cam: 1e-7); rounded to T.
  double eps = 1e-7;
  int threads = 0;
};

/// eigen_cam (Muhammad & Yeasin 2020).
struct eigen_cam_params {
  layout data_layout = layout::nchw;
  bool relu = true;  ///< pytorch-grad-cam clamps the projection at 0
  /// Centre each channel on its mean over the pixels before the SVD (pytorch-grad-cam).
  bool center = true;
  int threads = 0;
};

/// score_cam (Wang et al. 2020).
struct score_cam_params {
  /// Axis order of activations.
  layout data_layout = layout::nchw;
  /// Batch size of the model calls, and the axis order of `images` and of the batches handed
  /// to the callable. pytorch-grad-cam's BATCH_SIZE is 16, as model_options' default.
  model_options model = {};
  bool relu = true;  ///< pytorch-grad-cam
  /// Added to max − min of each resized activation (pytorch-grad-cam: 1e-8); rounded to T.
  double eps = 1e-8;
  /// Bilinear convention of the resize to the image size: true is nn.UpsamplingBilinear2d
  /// (pytorch-grad-cam); false is F.interpolate's default.
  bool align_corners = true;
  int threads = 0;
};

namespace detail {

template <class Activations, class Gradients, class Out>
void gradient_cam_into(const Activations& activations, const Gradients& gradients, layout l,
                       const cam_settings& s, cam_method method, Out&& out, const char* fn) {
  using T = cam_scalar_t<Activations>;
  assert_cam_types<T, Gradients, Out>();
  check_cam_options(l, s.threads, fn);
  check_cam_epsilon(s.eps, fn, "eps");
  const auto a = cam_input<T>(activations, l, fn, "activations");
  const auto g = cam_gradients<T>(activations, gradients, l, fn);
  const auto y = cam_output<T>(std::forward<Out>(out), cam_map_extents(a), fn);
  run_gradient_cam(cam_tensors<T>{a, g}, method, s, y, fn);
}

template <class Activations, class Gradients>
auto gradient_cam_new(const Activations& activations, const Gradients& gradients, layout l,
                      const cam_settings& s, cam_method method, const char* fn) {
  using T = cam_scalar_t<Activations>;
  assert_cam_types<T, Gradients>();
  check_cam_options(l, s.threads, fn);
  const auto a = cam_input<T>(activations, l, fn, "activations");
  (void)cam_gradients<T>(activations, gradients, l, fn);
  auto maps = cam_new_maps<T>(cam_map_extents(a), fn);
  gradient_cam_into(activations, gradients, l, s, method, maps, fn);
  return maps;
}

inline cam_settings settings_of(const grad_cam_params& p) {
  return {.relu = p.relu, .threads = p.threads};
}
inline cam_settings settings_of(const grad_cam_pp_params& p) {
  return {
      .relu = p.relu,
      .eps = p.eps,
      .pp_form = p.alpha == grad_cam_pp_alpha::reduced ? cam_pp_form::reduced : cam_pp_form::eq19,
      .threads = p.threads};
}
inline cam_settings settings_of(const xgrad_cam_params& p) {
  return {.relu = p.relu, .eps = p.eps, .threads = p.threads};
}

inline void check_pp_alpha(grad_cam_pp_alpha a) {
  if (a != grad_cam_pp_alpha::eq19 && a != grad_cam_pp_alpha::reduced) {
    CVK_THROW(invalid_argument, "grad_cam_pp: alpha is not a cvk::grad_cam_pp_alpha");
  }
}

/// CAM's channel weights: weights[n·K + k] = fc_weights[classes[n], k], after the checks of
/// fc_weights' shape and of every class id.
template <class T, class Weights, class Classes>
std::vector<T> cam_class_weights(const strided_view<const T, 4>& a, const std::string& a_text,
                                 const Weights& fc_weights, const Classes& classes,
                                 const char* fn) {
  using C = cam_scalar_t<Classes>;
  static_assert(std::is_integral_v<C> && !std::is_same_v<C, bool>,
                "cvk: cam's classes are integer class ids, one per image");
  const auto w = strided_view<const T, 2>(checked_view<2>(fc_weights, fn, "fc_weights"));
  const auto c = checked_view<1>(classes, fn, "classes");
  const index_t n_images = a.extent(0), channels = a.extent(1);
  if (w.extent(1) != channels) {
    CVK_THROW(shape_error, std::string(fn) + ": fc_weights must be num_classes×K with K = " +
                               std::to_string(channels) + ", the channels of activations " +
                               a_text + ", got " + w.shape_string());
  }
  if (c.extent(0) != n_images) {
    CVK_THROW(shape_error, std::string(fn) + ": classes must hold one class id per image, N = " +
                               std::to_string(n_images) + " (activations " + a_text + "), got " +
                               c.shape_string());
  }
  const index_t num_classes = w.extent(0);
  for (index_t n = 0; n < n_images; ++n) {
    const C id = c(n);
    if (std::cmp_less(id, 0) || std::cmp_greater_equal(id, num_classes)) {
      CVK_THROW(out_of_range, std::string(fn) + ": classes[" + std::to_string(n) +
                                  "] = " + std::to_string(id) + " (image " + std::to_string(n) +
                                  ") is outside [0, " + std::to_string(num_classes) +
                                  "), the rows of fc_weights " + w.shape_string());
    }
  }
  std::vector<T> weights = cam_weight_buffer(a, fn);
  for (index_t n = 0; n < n_images; ++n) {
    const auto row = static_cast<index_t>(c(n));
    for (index_t k = 0; k < channels; ++k) {
      weights[static_cast<std::size_t>(n * channels + k)] = w(row, k);
    }
  }
  return weights;
}

template <class T, class Activations, class Images>
void check_score_cam(const Activations& activations, const Images& images,
                     const score_cam_params& p, const char* fn) {
  check_cam_options(p.data_layout, p.threads, fn);
  check_model_options(p.model, fn);
  check_cam_epsilon(p.eps, fn, "eps");
  const auto a = checked_view<4>(activations, fn, "activations");
  const auto x = checked_view<4>(images, fn, "images");
  const auto an = nchw_extents(a.extents(), p.data_layout);
  const auto xn = nchw_extents(x.extents(), p.model.data_layout);
  const auto both = [&] {
    return "images " + cam_shape_text(x.shape_string(), p.model.data_layout) + " and activations " +
           cam_shape_text(a.shape_string(), p.data_layout);
  };
  if (an[0] != xn[0]) {
    CVK_THROW(shape_error,
              std::string(fn) + ": images and activations must have the same N, got " + both());
  }
  if (an[0] > 0 && an[1] > 0 && (xn[1] < 1 || xn[2] < 1 || xn[3] < 1 || an[2] < 1 || an[3] < 1)) {
    CVK_THROW(shape_error, std::string(fn) +
                               ": images need C, H, W >= 1 and activations H, W >= 1 to be "
                               "masked, got " +
                               both());
  }
}

}  // namespace detail

// ---------------------------------------------------------------------------------------------
// cam

/// Writes the class activation maps Σ_k fc_weights[classes[n], k]·A^k into `out` (N×H×W).
template <tensor_of_rank<4> Activations, tensor_of_rank<2> Weights, tensor_of_rank<1> Classes,
          tensor_of_rank<3> Out>
void cam(const Activations& activations, const Weights& fc_weights, const Classes& classes,
         const cam_params& params, Out&& out) {
  using T = detail::cam_scalar_t<Activations>;
  detail::assert_cam_types<T, Weights, Out>();
  const char* fn = "cam";
  detail::check_cam_options(params.data_layout, params.threads, fn);
  const auto a = detail::cam_input<T>(activations, params.data_layout, fn, "activations");
  const auto text = detail::cam_shape_text(
      detail::checked_view<4>(activations, fn, "activations").shape_string(), params.data_layout);
  const auto weights = detail::cam_class_weights(a, text, fc_weights, classes, fn);
  const auto y = detail::cam_output<T>(std::forward<Out>(out), detail::cam_map_extents(a), fn);
  detail::cam_weighted_map(a, weights.data(), params.relu, y, params.threads, fn);
}

/// The class activation maps (N×H×W) of `classes` (one id per image) from the activations that
/// feed a global-average-pooling → linear head with weights `fc_weights` (num_classes×K).
template <tensor_of_rank<4> Activations, tensor_of_rank<2> Weights, tensor_of_rank<1> Classes>
[[nodiscard]] auto cam(const Activations& activations, const Weights& fc_weights,
                       const Classes& classes, const cam_params& params = {}) {
  using T = detail::cam_scalar_t<Activations>;
  detail::assert_cam_types<T, Weights>();
  const char* fn = "cam";
  detail::check_cam_options(params.data_layout, params.threads, fn);
  const auto a = detail::cam_input<T>(activations, params.data_layout, fn, "activations");
  auto maps = detail::cam_new_maps<T>(detail::cam_map_extents(a), fn);
  cam(activations, fc_weights, classes, params, maps);
  return maps;
}

// ---------------------------------------------------------------------------------------------
// Gradient-weighted methods

/// Writes the Grad-CAM maps Σ_k mean(g^k)·A^k (ReLU by default) into `out`.
template <tensor_of_rank<4> Activations, tensor_of_rank<4> Gradients, tensor_of_rank<3> Out>
void grad_cam(const Activations& activations, const Gradients& gradients,
              const grad_cam_params& params, Out&& out) {
  detail::gradient_cam_into(activations, gradients, params.data_layout, detail::settings_of(params),
                            detail::cam_method::grad_cam, std::forward<Out>(out), "grad_cam");
}

/// Grad-CAM maps (N×H×W): Σ_k mean(g^k)·A^k, ReLU by default (pytorch-grad-cam).
template <tensor_of_rank<4> Activations, tensor_of_rank<4> Gradients>
[[nodiscard]] auto grad_cam(const Activations& activations, const Gradients& gradients,
                            const grad_cam_params& params = {}) {
  return detail::gradient_cam_new(activations, gradients, params.data_layout,
                                  detail::settings_of(params), detail::cam_method::grad_cam,
                                  "grad_cam");
}

/// Writes the Grad-CAM++ maps into `out`.
template <tensor_of_rank<4> Activations, tensor_of_rank<4> Gradients, tensor_of_rank<3> Out>
void grad_cam_pp(const Activations& activations, const Gradients& gradients,
                 const grad_cam_pp_params& params, Out&& out) {
  detail::check_pp_alpha(params.alpha);
  detail::gradient_cam_into(activations, gradients, params.data_layout, detail::settings_of(params),
                            detail::cam_method::grad_cam_pp, std::forward<Out>(out), "grad_cam_pp");
}

/// Grad-CAM++ maps (N×H×W): Σ_k α_k A^k with eq. 19's α (pytorch-grad-cam's form by default).
template <tensor_of_rank<4> Activations, tensor_of_rank<4> Gradients>
[[nodiscard]] auto grad_cam_pp(const Activations& activations, const Gradients& gradients,
                               const grad_cam_pp_params& params = {}) {
  detail::check_pp_alpha(params.alpha);
  return detail::gradient_cam_new(activations, gradients, params.data_layout,
                                  detail::settings_of(params), detail::cam_method::grad_cam_pp,
                                  "grad_cam_pp");
}

/// Writes the XGrad-CAM maps into `out`.
template <tensor_of_rank<4> Activations, tensor_of_rank<4> Gradients, tensor_of_rank<3> Out>
void xgrad_cam(const Activations& activations, const Gradients& gradients,
               const xgrad_cam_params& params, Out&& out) {
  detail::gradient_cam_into(activations, gradients, params.data_layout, detail::settings_of(params),
                            detail::cam_method::xgrad_cam, std::forward<Out>(out), "xgrad_cam");
}

/// XGrad-CAM maps (N×H×W): Σ_k (Σ g·A / (Σ A + ε))·A^k.
template <tensor_of_rank<4> Activations, tensor_of_rank<4> Gradients>
[[nodiscard]] auto xgrad_cam(const Activations& activations, const Gradients& gradients,
                             const xgrad_cam_params& params = {}) {
  return detail::gradient_cam_new(activations, gradients, params.data_layout,
                                  detail::settings_of(params), detail::cam_method::xgrad_cam,
                                  "xgrad_cam");
}

/// Writes the LayerCAM maps Σ_k ReLU(g^k) ⊙ A^k into `out`.
template <tensor_of_rank<4> Activations, tensor_of_rank<4> Gradients, tensor_of_rank<3> Out>
void layer_cam(const Activations& activations, const Gradients& gradients,
               const grad_cam_params& params, Out&& out) {
  detail::gradient_cam_into(activations, gradients, params.data_layout, detail::settings_of(params),
                            detail::cam_method::layer_cam, std::forward<Out>(out), "layer_cam");
}

/// LayerCAM maps (N×H×W): Σ_k ReLU(g^k) ⊙ A^k, ReLU on the result by default.
template <tensor_of_rank<4> Activations, tensor_of_rank<4> Gradients>
[[nodiscard]] auto layer_cam(const Activations& activations, const Gradients& gradients,
                             const grad_cam_params& params = {}) {
  return detail::gradient_cam_new(activations, gradients, params.data_layout,
                                  detail::settings_of(params), detail::cam_method::layer_cam,
                                  "layer_cam");
}

/// Writes the HiResCAM maps Σ_k g^k ⊙ A^k into `out`.
template <tensor_of_rank<4> Activations, tensor_of_rank<4> Gradients, tensor_of_rank<3> Out>
void hires_cam(const Activations& activations, const Gradients& gradients,
               const grad_cam_params& params, Out&& out) {
  detail::gradient_cam_into(activations, gradients, params.data_layout, detail::settings_of(params),
                            detail::cam_method::hires_cam, std::forward<Out>(out), "hires_cam");
}

/// HiResCAM maps (N×H×W): Σ_k g^k ⊙ A^k, ReLU by default.
template <tensor_of_rank<4> Activations, tensor_of_rank<4> Gradients>
[[nodiscard]] auto hires_cam(const Activations& activations, const Gradients& gradients,
                             const grad_cam_params& params = {}) {
  return detail::gradient_cam_new(activations, gradients, params.data_layout,
                                  detail::settings_of(params), detail::cam_method::hires_cam,
                                  "hires_cam");
}

/// Writes the element-wise Grad-CAM maps Σ_k ReLU(g^k ⊙ A^k) into `out`.
template <tensor_of_rank<4> Activations, tensor_of_rank<4> Gradients, tensor_of_rank<3> Out>
void grad_cam_elementwise(const Activations& activations, const Gradients& gradients,
                          const grad_cam_params& params, Out&& out) {
  detail::gradient_cam_into(activations, gradients, params.data_layout, detail::settings_of(params),
                            detail::cam_method::elementwise, std::forward<Out>(out),
                            "grad_cam_elementwise");
}

/// Element-wise Grad-CAM maps (N×H×W): Σ_k ReLU(g^k ⊙ A^k).
template <tensor_of_rank<4> Activations, tensor_of_rank<4> Gradients>
[[nodiscard]] auto grad_cam_elementwise(const Activations& activations, const Gradients& gradients,
                                        const grad_cam_params& params = {}) {
  return detail::gradient_cam_new(activations, gradients, params.data_layout,
                                  detail::settings_of(params), detail::cam_method::elementwise,
                                  "grad_cam_elementwise");
}

// ---------------------------------------------------------------------------------------------
// eigen_cam

/// Writes the Eigen-CAM maps (first principal component of each image's activations) into
/// `out`.
template <tensor_of_rank<4> Activations, tensor_of_rank<3> Out>
void eigen_cam(const Activations& activations, const eigen_cam_params& params, Out&& out) {
  using T = detail::cam_scalar_t<Activations>;
  detail::assert_cam_types<T, Out>();
  const char* fn = "eigen_cam";
  detail::check_cam_options(params.data_layout, params.threads, fn);
  const auto a = detail::cam_input<T>(activations, params.data_layout, fn, "activations");
  const auto y = detail::cam_output<T>(std::forward<Out>(out), detail::cam_map_extents(a), fn);
  detail::eigen_cam_run(a, params.center, params.relu, y, params.threads, fn);
}

/// Eigen-CAM maps (N×H×W): each image's centred activations projected on their first right
/// singular vector, the largest-magnitude value positive; ReLU by default.
template <tensor_of_rank<4> Activations>
[[nodiscard]] auto eigen_cam(const Activations& activations, const eigen_cam_params& params = {}) {
  using T = detail::cam_scalar_t<Activations>;
  detail::assert_cam_types<T>();
  const char* fn = "eigen_cam";
  detail::check_cam_options(params.data_layout, params.threads, fn);
  const auto a = detail::cam_input<T>(activations, params.data_layout, fn, "activations");
  auto maps = detail::cam_new_maps<T>(detail::cam_map_extents(a), fn);
  eigen_cam(activations, params, maps);
  return maps;
}

// ---------------------------------------------------------------------------------------------
// score_cam

/// Writes the Score-CAM maps into `out`; `forward` scores batches of masked images.
template <tensor_of_rank<4> Images, tensor_of_rank<4> Activations, class F, tensor_of_rank<3> Out>
requires forward_function<std::remove_reference_t<F>, detail::cam_scalar_t<Images>>
void score_cam(const Images& images, const Activations& activations, F&& forward,
               const score_cam_params& params, Out&& out) {
  using T = detail::cam_scalar_t<Images>;
  detail::assert_cam_types<T, Activations, Out>();
  const char* fn = "score_cam";
  detail::check_score_cam<T>(activations, images, params, fn);
  const auto a = detail::cam_input<T>(activations, params.data_layout, fn, "activations");
  const auto x = detail::cam_input<T>(images, params.model.data_layout, fn, "images");
  const auto y = detail::cam_output<T>(std::forward<Out>(out), detail::cam_map_extents(a), fn);
  detail::run_score_cam(x, a, forward, params.model, params.eps, params.align_corners, params.relu,
                        y, params.threads, fn);
}

/// Score-CAM maps (N×H×W): Σ_k softmax_k(forward(images ⊙ normalised resized A^k))·A^k, ReLU by
/// default; N·K model inputs in batches of params.model.batch_size.
template <tensor_of_rank<4> Images, tensor_of_rank<4> Activations, class F>
requires forward_function<std::remove_reference_t<F>, detail::cam_scalar_t<Images>>
[[nodiscard]] auto score_cam(const Images& images, const Activations& activations, F&& forward,
                             const score_cam_params& params = {}) {
  using T = detail::cam_scalar_t<Images>;
  detail::assert_cam_types<T, Activations>();
  const char* fn = "score_cam";
  detail::check_score_cam<T>(activations, images, params, fn);
  const auto a = detail::cam_input<T>(activations, params.data_layout, fn, "activations");
  auto maps = detail::cam_new_maps<T>(detail::cam_map_extents(a), fn);
  score_cam(images, activations, std::forward<F>(forward), params, maps);
  return maps;
}

CVK_END_NAMESPACE
