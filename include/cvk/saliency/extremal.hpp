// cvk — computer-vision kernels, header-only C++20.
// Extremal Perturbations (Fong, Patrick, Vedaldi, "Understanding Deep Networks via Extremal
// Perturbations and Smooth Masks", ICCV 2019) with the semantics of TorchRay's
// torchray/attribution/extremal_perturbation.py: the smooth-mask generator and its backward, the
// blur and fade perturbation pyramids and their backward, and the optimisation of one mask per
// target area through a gradient callable (preserve, delete and dual games, ranking regulariser,
// SGD with momentum and dampening, growing regulariser weight, horizontal jitter).
// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "../core/as_view.hpp"
#include "../core/config.hpp"
#include "../core/errors.hpp"
#include "../core/layout.hpp"
#include "../core/parallel.hpp"
#include "../core/strided_view.hpp"
#include "../core/tensor.hpp"
#include "../detail/checks.hpp"
#include "detail/extremal_mask.hpp"
#include "detail/extremal_pyramid.hpp"
#include "detail/resample.hpp"
#include "model.hpp"

CVK_BEGIN_NAMESPACE

// The contract of the extremal-perturbation entry points.
//
// Smooth masks (TorchRay's MaskGenerator; s = step, σ = sigma, H×W the image):
//   grid (parameters m̄)  K×⌈H/s⌉×⌈W/s⌉ (smooth_mask_shape: grid_height×grid_width), zero-padded
//                         by P = 1 + ⌈2σ/s⌉ nodes on every side; R = 1 + ⌈σ/s⌉.
//   full mask             K×Hf×Wf, Hf = s·(⌈H/s⌉ + 2P − 2R) − s + 1 (likewise Wf). Pixel
//                         u = (uy, ux) pools the (2R + 1)² padded nodes (⌊uy/s⌋ + ky, ⌊ux/s⌋ + kx)
//                         (grid node v = padded − P sits at σ + s·v):
//                           p_k = k(‖u − (σ + s·v_k)‖ / σ)·m̄[v_k],  k(z) = exp(−2·max(z − ½, 0)²)
//                           smooth_max: m = Σ_k p_k·softmax_k(T·p_k) (T = +inf: max_k p_k)
//                           sum:        m = Σ_k p_k
//                           sigmoid:    m = sigmoid(T·Σ_k p_k − 3) (T = +inf: [Σ_k p_k − 5 > 0])
//                         then clamped to [0, 1] (params.clamp).
//   mask                  K×H×W = full[:, M:M + H, M:M + W], M = round(σ) (half to even).
//   Backward: the adjoint of the above; through the clamp where 0 <= m <= 1 (torch's clamp), to
//   the first maximal tap for T = +inf, zero for sigmoid with T = +inf.
//   The cropped mask must fit: Hf >= M + H (true whenever σ > s/2); else invalid_argument.
//
// Perturbation pyramid (TorchRay's Perturbation), for an image 1×C×H×W (or 1×H×W×C):
//   levels y_l, l in [0, L): blur: imsmooth(x, σ_l), σ_l = max_blur·(1 − l/(L − 1)) (separable
//   Gaussian, half-width ⌈4σ_l⌉, zero border; σ_{L−1} = 0 is the image itself);
//   fade: y_l = x·l/(L − 1). apply(masks K×H×W, values in [0, 1]) → K×C×H×W:
//   w = m·(L − 1), k = ⌊w⌋, f = w − k, out = (1 − f)·y_k + f·y_{min(k+1, L−1)};
//   apply_backward: d m = (L − 1)·Σ_c grad·(y_{min(k+1, L−1)} − y_k) (0 at m = 1, as TorchRay).
//
// extremal_perturbation(image 1×C×H×W or 1×H×W×C, gradient callable, params) → masks A×H×W
// (one per area, in params.areas order) and history A×iterations×2 (reward, regulariser).
//   m̄ ← init (TorchRay: 1); λ ← lambda0; for t in [0, max_iter):
//     full, mask = smooth_mask(m̄);
//     images: preserve: apply(mask_a); delete: apply(1 − mask_a); dual: apply(mask_a) for every
//       area, then apply(1 − mask_a) for every area (2A images); flipped horizontally when
//       jitter and t is even; ONE evaluation of A or 2A images through the gradient callable
//       (model_batches: batch_size at a time);
//     reward_a = score (preserve), −score (delete), score(mask) − score(1 − mask) (dual);
//     regul_a = −λ·mean_i (sort(full_a)_i − r_i)², r = ⌊M_full·(1 − area)⌋ zeros, then ones
//       (M_full = Hf·Wf: the area is a fraction of the FULL mask, margin included, as TorchRay);
//     energy = Σ_a (reward_a + regul_a); SGD step on −energy (momentum buffer b ← g on the first
//       step, then b ← momentum·b + (1 − dampening)·g; m̄ ← m̄ − lr·b), m̄ clamped to [0, 1];
//     history(a, t) = (reward_a, regul_a); λ ← λ·lambda_growth.
//   The masks returned are those of the last iteration (generated before its step, as TorchRay),
//   then blurred with σ = smooth·min(H, W) (zero border) when smooth > 0.
//   The score is whatever the callable returns (TorchRay's simple_reward = the target logit;
//   its contrastive_reward y_c − max_{c'≠c} y_c' is the callable's choice). No randomness.
//
// Forms (T float or double, every tensor any type and strides):
//   smooth_mask_shape({H, W}, params)                          → smooth_mask_geometry
//   smooth_mask(grid, params, {H, W})                          → tensor<T, 3> K×H×W
//   smooth_mask(grid, params, mask)                            (mask K×H×W gives H, W)
//   smooth_mask_full(grid, params, {H, W})                     → tensor<T, 3> K×Hf×Wf
//   smooth_mask_full(grid, params, {H, W}, full)
//   smooth_mask_backward(grid, params, grad_mask K×H×W)        → tensor<T, 3> K×gh×gw
//   smooth_mask_backward(grid, params, grad_mask, grad_grid)
//   smooth_mask_full_backward(grid, params, {H, W}, grad_full) → tensor<T, 3> K×gh×gw
//   smooth_mask_full_backward(grid, params, {H, W}, grad_full, grad_grid)
//   perturbation_pyramid pyr(image, perturbation_params)       (CTAD: T from the image)
//   pyr.apply(masks) → tensor<T, 4> K×C×H×W (params.data_layout); pyr.apply(masks, out)
//   pyr.apply_backward(masks, grad K×C×H×W) → tensor<T, 3> K×H×W; (masks, grad, grad_masks)
//   extremal_perturbation(image, callable, params)             → extremal_result<T>
//   extremal_perturbation(image, callable, params, masks, history)
//
// Errors (each message names the function, the argument and the shapes):
//   cvk::invalid_argument  step < 1; sigma not finite or <= 0; coldness NaN or < 0; a full mask
//                          too small for the crop; levels < 2; max_blur not finite or <= 0
//                          (blur); a mask value outside [0, 1] or NaN given to apply or produced
//                          during the optimisation (clamp = false with sum pooling); an area
//                          outside (0, 1) or no area; max_iter < 1; non-finite learning_rate,
//                          momentum, dampening, lambda0, lambda_growth; init outside [0, 1];
//                          smooth < 0; threads < 0; model.batch_size < 1; a non-finite score or
//                          gradient returned by the callable (naming the iteration and image)
//   cvk::shape_error       wrong ranks; an image whose N is not 1 or with C, H or W = 0; grid,
//                          gradients or outputs of the wrong shape; a callable returning
//                          gradients of the wrong shape
//   cvk::out_of_range      sizes that overflow or cannot be allocated
//
// Complexity: smooth_mask forward O(K·Hf·Wf·(2R + 1)²) (one exp per tap for smooth_max),
// backward about twice that; pyramid construction O(L·C·H·W·⌈4·max_blur⌉), apply and its
// backward O(K·C·H·W); extremal_perturbation max_iter·(one forward and one backward of A masks,
// A radix sorts of Hf·Wf values, A or 2A applies and backwards, one callable evaluation of A or
// 2A images). Threads split rows (mask generator, apply) and images of a batch; every value has
// one owner and a fixed summation order, so results are bit-identical for any thread count.

/// Preserve, delete or dual game (TorchRay's variant).
enum class extremal_mode {
  /// Maximise the score of the image perturbed outside the mask (PRESERVE_VARIANT).
  preserve,
  /// Minimise the score of the image perturbed inside the mask (DELETE_VARIANT).
  deletion,
  /// Maximise score(preserve) − score(delete), both images in one batch (DUAL_VARIANT).
  dual,
};

/// The parameters of extremal_perturbation; defaults are TorchRay's (extremal_perturbation,
/// Perturbation, MaskGenerator and the SGD it builds).
struct extremal_params {
  /// Target areas a in (0, 1), one mask each, optimised jointly (TorchRay: [0.1]).
  std::vector<double> areas = {0.1};
  /// Game (TorchRay: preserve).
  extremal_mode mode = extremal_mode::preserve;
  /// Perturbation (TorchRay: blur).
  perturbation_kind perturbation = perturbation_kind::blur;
  /// Pyramid levels L >= 2 (TorchRay: num_levels = 8).
  index_t levels = 8;
  /// σ of the most blurred level (TorchRay: max_blur = 20, not exposed by extremal_perturbation).
  double max_blur = 20;
  /// Mask grid step (TorchRay: 7).
  index_t step = 7;
  /// Mask kernel size σ (TorchRay: 21).
  double sigma = 21;
  /// Mask pooling (TorchRay: softmax, i.e. smooth max).
  mask_pooling pooling = mask_pooling::smooth_max;
  /// Smooth-max coldness T (TorchRay: 20).
  double coldness = 20;
  /// Clamp the generated mask to [0, 1] (TorchRay: True).
  bool clamp = true;
  /// Iterations >= 1 (TorchRay: max_iter = 800).
  index_t max_iter = 800;
  /// SGD learning rate (TorchRay: 0.01).
  double learning_rate = 0.01;
  /// SGD momentum (TorchRay: 0.9).
  double momentum = 0.9;
  /// SGD dampening (TorchRay: 0.9, equal to the momentum).
  double dampening = 0.9;
  /// Initial regulariser weight λ (TorchRay: regul_weight = 300).
  double lambda0 = 300;
  /// λ is multiplied by this after every iteration (TorchRay: 1.0035).
  double lambda_growth = 1.0035;
  /// Flip the perturbed images horizontally on even iterations (TorchRay: jitter = True).
  bool jitter = true;
  /// Initial value of every mask parameter, in [0, 1] (TorchRay: 1).
  double init = 1;
  /// Blur the final masks with σ = smooth·min(H, W), zero border (TorchRay: smooth = 0).
  double smooth = 0;
  /// How the gradient callable is called (batch_size) and the image's layout.
  model_options model{};
  /// Threads (0 = all).
  int threads = 0;
};

/// The result of extremal_perturbation.
template <class T>
struct extremal_result {
  /// A×H×W: one mask per area, values in [0, 1] (with clamp).
  tensor<T, 3> masks;
  /// A×max_iter×2: (reward, regulariser) of each area at each iteration (TorchRay's hist,
  /// A×2×max_iter, transposed).
  tensor<T, 3> history;
};

namespace detail {

template <class X>
using extremal_scalar_t = std::remove_const_t<tensor_value_t<const X&>>;

template <class T, class... Tensors>
constexpr void assert_extremal_types() {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "cvk: extremal perturbations run on float or double tensors");
  static_assert((std::is_same_v<extremal_scalar_t<Tensors>, T> && ...),
                "cvk: extremal perturbations need the same element type (float or double) in "
                "every tensor argument; convert one of them");
}

template <class T, class Grid>
strided_view<const T, 3> smooth_mask_grid_view(const Grid& grid, const smooth_mask_geometry& g,
                                               const char* fn) {
  const strided_view<const T, 3> v(checked_view<3>(grid, fn, "grid"));
  const std::string pattern = "K×" + std::to_string(g.grid_height) + "×" +
                              std::to_string(g.grid_width) + " (K×⌈H/step⌉×⌈W/step⌉)";
  expect_shape(v, {any_extent, g.grid_height, g.grid_width}, fn, "grid", pattern.c_str());
  return v;
}

template <class T>
tensor<T, 3> new_tensor3(const std::array<index_t, 3>& e, const char* fn, const char* argument) {
  const auto describe = [&] { return detail::shape_string(e, 3); };
  const index_t count =
      checked_mul(checked_mul(e[0], e[1], fn, argument, describe), e[2], fn, argument, describe);
  return checked_allocation<T>(count, fn, argument, describe, [&] { return tensor<T, 3>(e); });
}

/// Zero-padded copies of the K parameter grids.
template <class T>
std::vector<T> padded_grids(strided_view<const T, 3> grid, const smooth_mask_geometry& g,
                            const char* fn) {
  const auto describe = [&] { return grid.shape_string(); };
  const index_t per = checked_mul(g.padded_rows(), g.padded_cols(), fn, "grid", describe);
  std::vector<T> padded = checked_vector<T>(checked_mul(grid.extent(0), per, fn, "grid", describe),
                                            fn, "grid", describe);
  for (index_t k = 0; k < grid.extent(0); ++k) pad_mask_grid(grid, k, g, padded.data() + k * per);
  return padded;
}

/// Full masks of `grid` into `full` (K×Hf×Wf).
template <class T>
void smooth_mask_full_into(strided_view<const T, 3> grid, const smooth_mask_geometry& g,
                           const smooth_mask_params& p, const strided_view<T, 3>& full,
                           const char* fn) {
  if (grid.extent(0) == 0) return;
  const smooth_mask_plan<T> plan(g, p, fn);
  const auto padded = padded_grids(grid, g, fn);
  smooth_mask_forward(plan, padded.data(), grid.extent(0), full);
}

/// d grid from d full.
template <class T, class GradFull>
void smooth_mask_backward_into(strided_view<const T, 3> grid, const smooth_mask_geometry& g,
                               const smooth_mask_params& p, const GradFull& grad_full,
                               const strided_view<T, 3>& grad_grid, const char* fn) {
  if (grid.extent(0) == 0) return;
  const smooth_mask_plan<T> plan(g, p, fn);
  const auto padded = padded_grids(grid, g, fn);
  smooth_mask_backward(plan, padded.data(), grid.extent(0), grad_full, grad_grid, fn);
}

/// The gradient w.r.t. the full mask of a gradient w.r.t. the cropped mask: zero in the margin.
template <class T>
struct embedded_crop_gradient {
  strided_view<const T, 3> crop;
  index_t margin, height, width;
  T operator()(index_t k, index_t y, index_t x) const noexcept {
    const index_t cy = y - margin, cx = x - margin;
    if (cy < 0 || cy >= height || cx < 0 || cx >= width) return T(0);
    return crop(k, cy, cx);
  }
};

}  // namespace detail

/// The grid, full-mask and crop shapes of the smooth mask of an H×W image.
inline smooth_mask_geometry smooth_mask_shape(std::array<index_t, 2> size,
                                              const smooth_mask_params& params = {}) {
  return detail::resolve_smooth_mask(size, params, "smooth_mask_shape");
}

/// Writes the K×H×W masks of parameter grid `grid` (K×⌈H/step⌉×⌈W/step⌉) into `mask`.
template <class Grid, class Out>
requires tensor_of_rank<Grid, 3> && tensor_of_rank<Out, 3>
void smooth_mask(const Grid& grid, const smooth_mask_params& params, Out&& mask) {
  using T = detail::extremal_scalar_t<Grid>;
  detail::assert_extremal_types<T, Out>();
  constexpr const char* fn = "smooth_mask";
  auto out = detail::checked_view<3>(std::forward<Out>(mask), fn, "mask");
  static_assert(!std::is_const_v<typename decltype(out)::element_type>,
                "cvk: smooth_mask's output must be a mutable tensor");
  const auto g = detail::resolve_smooth_mask({out.extent(1), out.extent(2)}, params, fn);
  const auto gv = detail::smooth_mask_grid_view<T>(grid, g, fn);
  detail::expect_shape(out, {gv.extent(0), g.height, g.width}, fn, "mask");
  auto full =
      detail::new_tensor3<T>({gv.extent(0), g.full_height, g.full_width}, fn, "the full mask");
  detail::smooth_mask_full_into<T>(gv, g, params, full.view(), fn);
  for (index_t k = 0; k < gv.extent(0); ++k) {
    for (index_t y = 0; y < g.height; ++y) {
      for (index_t x = 0; x < g.width; ++x) out(k, y, x) = full(k, y + g.margin, x + g.margin);
    }
  }
}

/// The K×H×W masks of parameter grid `grid` for an image of `size` = {H, W}.
template <class Grid>
requires tensor_of_rank<Grid, 3>
auto smooth_mask(const Grid& grid, const smooth_mask_params& params, std::array<index_t, 2> size) {
  using T = detail::extremal_scalar_t<Grid>;
  detail::assert_extremal_types<T>();
  constexpr const char* fn = "smooth_mask";
  const auto g = detail::resolve_smooth_mask(size, params, fn);
  const auto gv = detail::smooth_mask_grid_view<T>(grid, g, fn);
  auto out = detail::new_tensor3<T>({gv.extent(0), g.height, g.width}, fn, "mask");
  smooth_mask(grid, params, out);
  return out;
}

/// Writes the K×Hf×Wf full (uncropped) masks of `grid` for an image of `size` into `full`.
template <class Grid, class Out>
requires tensor_of_rank<Grid, 3> && tensor_of_rank<Out, 3>
void smooth_mask_full(const Grid& grid, const smooth_mask_params& params,
                      std::array<index_t, 2> size, Out&& full) {
  using T = detail::extremal_scalar_t<Grid>;
  detail::assert_extremal_types<T, Out>();
  constexpr const char* fn = "smooth_mask_full";
  const auto g = detail::resolve_smooth_mask(size, params, fn);
  const auto gv = detail::smooth_mask_grid_view<T>(grid, g, fn);
  auto out = detail::output_view<3>(std::forward<Out>(full),
                                    {gv.extent(0), g.full_height, g.full_width}, fn, "full");
  detail::smooth_mask_full_into<T>(gv, g, params, strided_view<T, 3>(out), fn);
}

/// The K×Hf×Wf full (uncropped) masks of `grid` for an image of `size` = {H, W}.
template <class Grid>
requires tensor_of_rank<Grid, 3>
auto smooth_mask_full(const Grid& grid, const smooth_mask_params& params,
                      std::array<index_t, 2> size) {
  using T = detail::extremal_scalar_t<Grid>;
  detail::assert_extremal_types<T>();
  constexpr const char* fn = "smooth_mask_full";
  const auto g = detail::resolve_smooth_mask(size, params, fn);
  const auto gv = detail::smooth_mask_grid_view<T>(grid, g, fn);
  auto out = detail::new_tensor3<T>({gv.extent(0), g.full_height, g.full_width}, fn, "full");
  smooth_mask_full(grid, params, size, out);
  return out;
}

/// Writes d loss / d grid (K×gh×gw) into `grad_grid` from d loss / d mask (`grad_mask`, K×H×W:
/// its extents give the image size).
template <class Grid, class Grad, class Out>
requires tensor_of_rank<Grid, 3> && tensor_of_rank<Grad, 3> && tensor_of_rank<Out, 3>
void smooth_mask_backward(const Grid& grid, const smooth_mask_params& params, const Grad& grad_mask,
                          Out&& grad_grid) {
  using T = detail::extremal_scalar_t<Grid>;
  detail::assert_extremal_types<T, Grad, Out>();
  constexpr const char* fn = "smooth_mask_backward";
  const strided_view<const T, 3> gm(detail::checked_view<3>(grad_mask, fn, "grad_mask"));
  const auto g = detail::resolve_smooth_mask({gm.extent(1), gm.extent(2)}, params, fn);
  const auto gv = detail::smooth_mask_grid_view<T>(grid, g, fn);
  detail::expect_shape(gm, {gv.extent(0), g.height, g.width}, fn, "grad_mask");
  auto out = detail::output_view<3>(std::forward<Out>(grad_grid),
                                    {gv.extent(0), g.grid_height, g.grid_width}, fn, "grad_grid");
  const detail::embedded_crop_gradient<T> embedded{gm, g.margin, g.height, g.width};
  detail::smooth_mask_backward_into<T>(gv, g, params, embedded, strided_view<T, 3>(out), fn);
}

/// d loss / d grid (K×gh×gw) from d loss / d mask (`grad_mask`, K×H×W).
template <class Grid, class Grad>
requires tensor_of_rank<Grid, 3> && tensor_of_rank<Grad, 3>
auto smooth_mask_backward(const Grid& grid, const smooth_mask_params& params,
                          const Grad& grad_mask) {
  using T = detail::extremal_scalar_t<Grid>;
  constexpr const char* fn = "smooth_mask_backward";
  const auto gm = detail::checked_view<3>(grad_mask, fn, "grad_mask");
  const auto g = detail::resolve_smooth_mask({gm.extent(1), gm.extent(2)}, params, fn);
  const auto gv = detail::smooth_mask_grid_view<T>(grid, g, fn);
  auto out = detail::new_tensor3<T>({gv.extent(0), g.grid_height, g.grid_width}, fn, "grad_grid");
  smooth_mask_backward(grid, params, grad_mask, out);
  return out;
}

/// Writes d loss / d grid (K×gh×gw) into `grad_grid` from d loss / d full mask (`grad_full`,
/// K×Hf×Wf) for an image of `size`.
template <class Grid, class Grad, class Out>
requires tensor_of_rank<Grid, 3> && tensor_of_rank<Grad, 3> && tensor_of_rank<Out, 3>
void smooth_mask_full_backward(const Grid& grid, const smooth_mask_params& params,
                               std::array<index_t, 2> size, const Grad& grad_full,
                               Out&& grad_grid) {
  using T = detail::extremal_scalar_t<Grid>;
  detail::assert_extremal_types<T, Grad, Out>();
  constexpr const char* fn = "smooth_mask_full_backward";
  const auto g = detail::resolve_smooth_mask(size, params, fn);
  const auto gv = detail::smooth_mask_grid_view<T>(grid, g, fn);
  const strided_view<const T, 3> gf(detail::checked_view<3>(grad_full, fn, "grad_full"));
  detail::expect_shape(gf, {gv.extent(0), g.full_height, g.full_width}, fn, "grad_full");
  auto out = detail::output_view<3>(std::forward<Out>(grad_grid),
                                    {gv.extent(0), g.grid_height, g.grid_width}, fn, "grad_grid");
  detail::smooth_mask_backward_into<T>(gv, g, params, gf, strided_view<T, 3>(out), fn);
}

/// d loss / d grid (K×gh×gw) from d loss / d full mask (`grad_full`, K×Hf×Wf).
template <class Grid, class Grad>
requires tensor_of_rank<Grid, 3> && tensor_of_rank<Grad, 3>
auto smooth_mask_full_backward(const Grid& grid, const smooth_mask_params& params,
                               std::array<index_t, 2> size, const Grad& grad_full) {
  using T = detail::extremal_scalar_t<Grid>;
  constexpr const char* fn = "smooth_mask_full_backward";
  const auto g = detail::resolve_smooth_mask(size, params, fn);
  const auto gv = detail::smooth_mask_grid_view<T>(grid, g, fn);
  auto out = detail::new_tensor3<T>({gv.extent(0), g.grid_height, g.grid_width}, fn, "grad_grid");
  smooth_mask_full_backward(grid, params, size, grad_full, out);
  return out;
}

/// A perturbation pyramid of one image (TorchRay's Perturbation): L levels from maximally
/// perturbed (l = 0) to the image itself (l = L − 1), and the perturbed images of masks.
template <class T>
class perturbation_pyramid {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "cvk: perturbation_pyramid holds float or double images");

 public:
  /// Builds the levels of `image`, 1×C×H×W (layout::nchw) or 1×H×W×C (params.data_layout).
  template <class Image>
  requires tensor_of_rank<Image, 4> perturbation_pyramid(const Image& image,
                                                         const perturbation_params& params = {})
      : params_(params) {
    detail::assert_extremal_types<T, Image>();
    constexpr const char* fn = "perturbation_pyramid";
    detail::check_perturbation_params(params, fn);
    const auto v =
        detail::permute_axes(strided_view<const T, 4>(detail::checked_view<4>(image, fn, "image")),
                             detail::nchw_axes(params.data_layout));
    check_image(v, params.data_layout, fn);
    c_ = v.extent(1);
    h_ = v.extent(2);
    w_ = v.extent(3);
    const auto describe = [&] {
      return std::to_string(params.levels) + "×" + std::to_string(c_) + "×" + std::to_string(h_) +
             "×" + std::to_string(w_);
    };
    const index_t count = detail::checked_mul(
        detail::checked_mul(detail::checked_mul(params.levels, c_, fn, "the pyramid", describe), h_,
                            fn, "the pyramid", describe),
        w_, fn, "the pyramid", describe);
    levels_ = detail::checked_vector<T>(count, fn, "the pyramid", describe);
    const strided_view<const T, 3> chw(v.data(), {c_, h_, w_},
                                       {v.stride(1), v.stride(2), v.stride(3)});
    detail::build_pyramid<T>(params_, chw, levels_.data());
  }

  [[nodiscard]] const perturbation_params& params() const noexcept { return params_; }
  [[nodiscard]] index_t levels() const noexcept { return params_.levels; }
  [[nodiscard]] index_t channels() const noexcept { return c_; }
  [[nodiscard]] index_t height() const noexcept { return h_; }
  [[nodiscard]] index_t width() const noexcept { return w_; }
  /// The levels, L×C×H×W (always this order, contiguous).
  [[nodiscard]] strided_view<const T, 4> level_view() const noexcept {
    return {levels_.data(), {params_.levels, c_, h_, w_}};
  }
  /// The raw levels (L·C·H·W values, row-major L×C×H×W).
  [[nodiscard]] const T* data() const noexcept { return levels_.data(); }

  /// Writes the perturbed images of `masks` (K×H×W, values in [0, 1]) into `out` (K×C×H×W or
  /// K×H×W×C by params.data_layout).
  template <class Masks, class Out>
  requires tensor_of_rank<Masks, 3> && tensor_of_rank<Out, 4>
  void apply(const Masks& masks, Out&& out) const {
    detail::assert_extremal_types<T, Masks, Out>();
    constexpr const char* fn = "perturbation_pyramid::apply";
    const auto m = checked_masks<Masks>(masks, fn);
    const index_t k = m.extent(0);
    auto o = detail::output_view<4>(
        std::forward<Out>(out), detail::from_nchw({k, c_, h_, w_}, params_.data_layout), fn, "out");
    const auto on =
        detail::permute_axes(strided_view<T, 4>(o), detail::nchw_axes(params_.data_layout));
    parallel_for(
        0, k * h_, 8,
        [&](index_t lo, index_t hi) {
          for (index_t r = lo; r < hi; ++r) {
            const index_t n = r / h_, y = r % h_;
            const strided_view<T, 3> img(on.data() + n * on.stride(0), {c_, h_, w_},
                                         {on.stride(1), on.stride(2), on.stride(3)});
            const auto mask_n = [&](index_t yy, index_t xx) { return m(n, yy, xx); };
            detail::pyramid_apply_rows<T>(levels_.data(), params_.levels, c_, h_, w_, mask_n, false,
                                          false, img, y, y + 1);
          }
        },
        params_.threads);
  }

  /// The perturbed images of `masks` (K×H×W, values in [0, 1]): K×C×H×W or K×H×W×C.
  template <class Masks>
  requires tensor_of_rank<Masks, 3> tensor<T, 4> apply(const Masks& masks)
  const {
    constexpr const char* fn = "perturbation_pyramid::apply";
    const auto m = detail::checked_view<3>(masks, fn, "masks");
    const auto e = detail::from_nchw({m.extent(0), c_, h_, w_}, params_.data_layout);
    const auto describe = [&] { return detail::shape_string(e, 4); };
    const index_t count = detail::checked_mul(
        detail::checked_mul(detail::checked_mul(e[0], e[1], fn, "out", describe), e[2], fn, "out",
                            describe),
        e[3], fn, "out", describe);
    auto out =
        detail::checked_allocation<T>(count, fn, "out", describe, [&] { return tensor<T, 4>(e); });
    apply(masks, out);
    return out;
  }

  /// Writes d loss / d masks (K×H×W) into `grad_masks` from d loss / d perturbed images
  /// (`grad_output`, K×C×H×W or K×H×W×C) at `masks`.
  template <class Masks, class Grad, class Out>
  requires tensor_of_rank<Masks, 3> && tensor_of_rank<Grad, 4> && tensor_of_rank<Out, 3>
  void apply_backward(const Masks& masks, const Grad& grad_output, Out&& grad_masks) const {
    detail::assert_extremal_types<T, Masks, Grad, Out>();
    constexpr const char* fn = "perturbation_pyramid::apply_backward";
    const auto m = checked_masks<Masks>(masks, fn);
    const index_t k = m.extent(0);
    const strided_view<const T, 4> gv(detail::checked_view<4>(grad_output, fn, "grad_output"));
    const auto ge = detail::from_nchw({k, c_, h_, w_}, params_.data_layout);
    const std::string pattern = std::string(detail::layout_pattern(params_.data_layout)) + " = " +
                                detail::shape_string(ge, 4);
    detail::expect_shape(gv, ge, fn, "grad_output", pattern.c_str());
    const auto gn = detail::permute_axes(gv, detail::nchw_axes(params_.data_layout));
    auto o = detail::output_view<3>(std::forward<Out>(grad_masks), {k, h_, w_}, fn, "grad_masks");
    const strided_view<T, 3> ov(o);
    parallel_for(
        0, k * h_, 8,
        [&](index_t lo, index_t hi) {
          for (index_t r = lo; r < hi; ++r) {
            const index_t n = r / h_, y = r % h_;
            const strided_view<const T, 3> g(gn.data() + n * gn.stride(0), {c_, h_, w_},
                                             {gn.stride(1), gn.stride(2), gn.stride(3)});
            const auto mask_n = [&](index_t yy, index_t xx) { return m(n, yy, xx); };
            const auto out_n = [&](index_t yy, index_t xx) -> T& { return ov(n, yy, xx); };
            detail::pyramid_apply_backward_rows<T>(levels_.data(), params_.levels, c_, h_, w_,
                                                   mask_n, false, false, g, out_n, false, y, y + 1);
          }
        },
        params_.threads);
  }

  /// d loss / d masks (K×H×W) from d loss / d perturbed images at `masks`.
  template <class Masks, class Grad>
  requires tensor_of_rank<Masks, 3> && tensor_of_rank<Grad, 4> tensor<T, 3> apply_backward(
      const Masks& masks, const Grad& grad_output)
  const {
    constexpr const char* fn = "perturbation_pyramid::apply_backward";
    const auto m = detail::checked_view<3>(masks, fn, "masks");
    auto out = detail::new_tensor3<T>({m.extent(0), h_, w_}, fn, "grad_masks");
    apply_backward(masks, grad_output, out);
    return out;
  }

 private:
  static void check_image(const strided_view<const T, 4>& v, layout l, const char* fn) {
    if (v.extent(0) != 1 || v.extent(1) < 1 || v.extent(2) < 1 || v.extent(3) < 1) {
      const auto e = detail::from_nchw(v.extents(), l);
      CVK_THROW(shape_error,
                std::string(fn) + ": image must be " + (l == layout::nchw ? "1×C×H×W" : "1×H×W×C") +
                    " with C, H, W >= 1 (one image), got " + detail::shape_string(e, 4));
    }
  }

  template <class Masks>
  strided_view<const T, 3> checked_masks(const Masks& masks, const char* fn) const {
    const strided_view<const T, 3> m(detail::checked_view<3>(masks, fn, "masks"));
    const std::string pattern = "K×" + std::to_string(h_) + "×" + std::to_string(w_);
    detail::expect_shape(m, {detail::any_extent, h_, w_}, fn, "masks", pattern.c_str());
    for (index_t n = 0; n < m.extent(0); ++n) {
      for (index_t y = 0; y < h_; ++y) {
        for (index_t x = 0; x < w_; ++x) detail::check_mask_value(m(n, y, x), n, y, x, fn, "masks");
      }
    }
    return m;
  }

  perturbation_params params_;
  index_t c_ = 0, h_ = 0, w_ = 0;
  std::vector<T> levels_;
};

template <class Image>
perturbation_pyramid(const Image&, const perturbation_params& = {})
    -> perturbation_pyramid<detail::extremal_scalar_t<Image>>;

namespace detail {

inline void check_finite_param(double v, const char* fn, const char* name) {
  if (!std::isfinite(v)) {
    CVK_THROW(invalid_argument,
              std::string(fn) + ": " + name + " must be finite, got " + number_string(v));
  }
}

inline void check_extremal_params(const extremal_params& p, const char* fn) {
  if (p.areas.empty()) {
    CVK_THROW(invalid_argument, std::string(fn) + ": areas must hold at least one area");
  }
  for (std::size_t i = 0; i < p.areas.size(); ++i) {
    if (!(p.areas[i] > 0 && p.areas[i] < 1)) {
      CVK_THROW(invalid_argument, std::string(fn) + ": areas[" + std::to_string(i) +
                                      "] must be in (0, 1), got " + number_string(p.areas[i]));
    }
  }
  if (p.mode != extremal_mode::preserve && p.mode != extremal_mode::deletion &&
      p.mode != extremal_mode::dual) {
    CVK_THROW(invalid_argument, std::string(fn) + ": mode is not a cvk::extremal_mode");
  }
  if (p.max_iter < 1) {
    CVK_THROW(invalid_argument,
              std::string(fn) + ": max_iter must be >= 1, got " + std::to_string(p.max_iter));
  }
  check_finite_param(p.learning_rate, fn, "learning_rate");
  check_finite_param(p.momentum, fn, "momentum");
  check_finite_param(p.dampening, fn, "dampening");
  check_finite_param(p.lambda0, fn, "lambda0");
  check_finite_param(p.lambda_growth, fn, "lambda_growth");
  if (!(p.init >= 0 && p.init <= 1)) {
    CVK_THROW(invalid_argument,
              std::string(fn) + ": init must be in [0, 1], got " + number_string(p.init));
  }
  if (!(p.smooth >= 0)) {
    CVK_THROW(invalid_argument,
              std::string(fn) + ": smooth must be >= 0, got " + number_string(p.smooth));
  }
  if (p.threads < 0) {
    CVK_THROW(invalid_argument,
              std::string(fn) + ": threads must be >= 0, got " + std::to_string(p.threads));
  }
  check_model_options(p.model, fn);
}

inline smooth_mask_params extremal_mask_params(const extremal_params& p) {
  return {.step = p.step,
          .sigma = p.sigma,
          .pooling = p.pooling,
          .coldness = p.coldness,
          .clamp = p.clamp,
          .threads = p.threads};
}

inline perturbation_params extremal_pyramid_params(const extremal_params& p) {
  return {.kind = p.perturbation,
          .levels = p.levels,
          .max_blur = p.max_blur,
          .data_layout = p.model.data_layout,
          .threads = p.threads};
}

/// Python's int(n·(1 − area)): the number of zeros of the reference vector r of an area.
inline index_t regulariser_zeros(index_t n, double area) noexcept {
  return static_cast<index_t>(static_cast<double>(n) * (1.0 - area));
}

/// Scratch of stable_value_order and area_regulariser for n values.
template <class T>
struct regulariser_scratch {
  using key_type = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
  std::vector<index_t> order, order_tmp;
  std::vector<key_type> keys, keys_tmp;
  explicit regulariser_scratch(index_t n)
      : order(static_cast<std::size_t>(n)),
        order_tmp(static_cast<std::size_t>(n)),
        keys(static_cast<std::size_t>(n)),
        keys_tmp(static_cast<std::size_t>(n)) {}
};

/// The permutation that sorts v[0, n) ascending, stably (equal values keep their index order;
/// −0 equals +0; every NaN equals every other and sorts last): sc.order. A least-significant-
/// digit radix sort of order-preserving integer keys, 8 bits per pass (passes whose digit is the
/// same for every key are skipped) — the order std::stable_sort with `<` (NaN last) gives.
template <class T>
void stable_value_order(const T* v, index_t n, regulariser_scratch<T>& sc) {
  using key_type = typename regulariser_scratch<T>::key_type;
  constexpr key_type sign = key_type{1} << (8 * sizeof(key_type) - 1);
  for (index_t i = 0; i < n; ++i) {
    const T x = v[i];
    key_type k = 0;
    if (std::isnan(x)) {
      k = ~key_type{0};
    } else {
      const auto b = std::bit_cast<key_type>(x == T(0) ? T(0) : x);
      k = (b & sign) != 0 ? static_cast<key_type>(~b) : static_cast<key_type>(b | sign);
    }
    sc.keys[static_cast<std::size_t>(i)] = k;
    sc.order[static_cast<std::size_t>(i)] = i;
  }
  std::array<index_t, 257> count{};
  for (std::size_t pass = 0; pass < sizeof(key_type); ++pass) {
    const unsigned shift = static_cast<unsigned>(8 * pass);
    count.fill(0);
    for (index_t i = 0; i < n; ++i) {
      ++count[((sc.keys[static_cast<std::size_t>(i)] >> shift) & 0xFFU) + 1];
    }
    if (std::find(count.begin() + 1, count.end(), n) != count.end()) continue;  // one bucket
    for (std::size_t d = 1; d < count.size(); ++d) count[d] += count[d - 1];
    for (index_t i = 0; i < n; ++i) {
      const key_type k = sc.keys[static_cast<std::size_t>(i)];
      const auto dst = static_cast<std::size_t>(count[(k >> shift) & 0xFFU]++);
      sc.keys_tmp[dst] = k;
      sc.order_tmp[dst] = sc.order[static_cast<std::size_t>(i)];
    }
    sc.keys.swap(sc.keys_tmp);
    sc.order.swap(sc.order_tmp);
  }
}

/// TorchRay's area regulariser of one full mask v (n values): returns
/// regul = −λ·mean_i (sort(v)_i − r_i)², r_i = [i >= first_one], and writes
/// grad = d(−regul)/d v = 2λ/n·(v_j − r_{rank(j)}), through the permutation of a stable sort
/// (stable_value_order: ties keep their positions' order, NaN sorts last).
template <class T>
double area_regulariser(const T* v, index_t n, index_t first_one, double lambda, T* grad,
                        regulariser_scratch<T>& sc) {
  stable_value_order(v, n, sc);
  const index_t* order = sc.order.data();
  const T factor = static_cast<T>(2.0 * lambda / static_cast<double>(n));
  double sum = 0;
  for (index_t i = 0; i < n; ++i) {
    const T diff = v[order[i]] - (i >= first_one ? T(1) : T(0));
    sum += static_cast<double>(diff) * static_cast<double>(diff);
    grad[order[i]] = factor * diff;
  }
  return -lambda * (sum / static_cast<double>(n));
}

/// The loop of extremal_perturbation (see the contract above). `image` is (n, c, h, w)-ordered,
/// `masks` A×H×W and `history` A×max_iter×2 mutable views.
template <class T, class G>
void run_extremal(strided_view<const T, 4> image, G& callable, const extremal_params& p,
                  const strided_view<T, 3>& masks, const strided_view<T, 3>& history,
                  const char* fn) {
  const index_t c = image.extent(1), h = image.extent(2), w = image.extent(3);
  const auto mp = extremal_mask_params(p);
  const auto g = resolve_smooth_mask({h, w}, mp, fn);
  const smooth_mask_plan<T> plan(g, mp, fn);
  const auto pp = extremal_pyramid_params(p);
  if (p.smooth > 0) {
    check_blur_sigma(p.smooth * static_cast<double>(std::min(h, w)), fn, "smooth·min(H, W)");
  }

  // The pyramid.
  const auto pyramid_text = [&] {
    return std::to_string(p.levels) + "×" + std::to_string(c) + "×" + std::to_string(h) + "×" +
           std::to_string(w);
  };
  const index_t plane = h * w;  // checked by the caller's image
  const index_t level_size = checked_mul(c, plane, fn, "the pyramid", pyramid_text);
  std::vector<T> levels =
      checked_vector<T>(checked_mul(p.levels, level_size, fn, "the pyramid", pyramid_text), fn,
                        "the pyramid", pyramid_text);
  const strided_view<const T, 3> chw(image.data(), {c, h, w},
                                     {image.stride(1), image.stride(2), image.stride(3)});
  build_pyramid<T>(pp, chw, levels.data());

  const auto areas = static_cast<index_t>(p.areas.size());
  const bool dual = p.mode == extremal_mode::dual;
  const index_t images = dual ? 2 * areas : areas;
  model_batches<T> batches(p.model, {c, h, w}, true, fn, images);

  // State: parameters, momentum buffer, padded grids, full masks and their gradients.
  const auto state_text = [&] {
    return std::to_string(areas) + " masks of " + std::to_string(g.full_height) + "×" +
           std::to_string(g.full_width);
  };
  const index_t grid_size = g.grid_height * g.grid_width;
  const index_t padded_size = g.padded_rows() * g.padded_cols();
  const index_t full_size = g.full_height * g.full_width;
  std::vector<T> params = checked_vector<T>(checked_mul(areas, grid_size, fn, "state", state_text),
                                            fn, "state", state_text);
  std::fill(params.begin(), params.end(), static_cast<T>(p.init));
  std::vector<T> momentum_buffer(params.size(), T(0));
  std::vector<T> grad_params(params.size(), T(0));
  std::vector<T> padded = checked_vector<T>(
      checked_mul(areas, padded_size, fn, "state", state_text), fn, "state", state_text);
  std::vector<T> full = checked_vector<T>(checked_mul(areas, full_size, fn, "state", state_text),
                                          fn, "state", state_text);
  std::vector<T> grad_full(full.size(), T(0));
  check_allocation_size(checked_mul(checked_mul(areas, full_size, fn, "state", state_text), 24, fn,
                                    "state", state_text),
                        1, fn, "state", state_text);
  std::vector<regulariser_scratch<T>> sort_scratch;
  sort_scratch.reserve(static_cast<std::size_t>(areas));
  for (index_t a = 0; a < areas; ++a) sort_scratch.emplace_back(full_size);
  std::vector<index_t> zeros(static_cast<std::size_t>(areas));
  for (index_t a = 0; a < areas; ++a) {
    // Python's int(max_area * (1 - a)) in double.
    zeros[static_cast<std::size_t>(a)] =
        regulariser_zeros(full_size, p.areas[static_cast<std::size_t>(a)]);
  }
  std::vector<T> scores(static_cast<std::size_t>(images), T(0));

  const strided_view<const T, 3> params_view(params.data(), {areas, g.grid_height, g.grid_width});
  const strided_view<T, 3> full_view(full.data(), {areas, g.full_height, g.full_width});
  const strided_view<T, 3> grad_full_view(grad_full.data(), {areas, g.full_height, g.full_width});
  const strided_view<T, 3> grad_params_view(grad_params.data(),
                                            {areas, g.grid_height, g.grid_width});

  double lambda = p.lambda0;
  const T lr = static_cast<T>(p.learning_rate);
  const T mu = static_cast<T>(p.momentum);
  const T one_minus_damp = static_cast<T>(1.0 - p.dampening);

  for (index_t t = 0; t < p.max_iter; ++t) {
    // Masks.
    for (index_t a = 0; a < areas; ++a) {
      pad_mask_grid(params_view, a, g, padded.data() + a * padded_size);
    }
    smooth_mask_forward(plan, padded.data(), areas, full_view);
    if (!p.clamp) {
      for (index_t a = 0; a < areas; ++a) {
        for (index_t y = 0; y < h; ++y) {
          for (index_t x = 0; x < w; ++x) {
            check_mask_value(full_view(a, y + g.margin, x + g.margin), a, y, x, fn,
                             "the generated mask (clamp = false)");
          }
        }
      }
    }

    // Ranking regulariser: regul = −λ·mean((sort(full) − r)²); grad_full = d(−regul)/d full.
    std::vector<double> regul(static_cast<std::size_t>(areas), 0.0);
    parallel_for(
        0, areas, 1,
        [&](index_t lo, index_t hi) {
          for (index_t a = lo; a < hi; ++a) {
            regul[static_cast<std::size_t>(a)] = area_regulariser(
                full.data() + a * full_size, full_size, zeros[static_cast<std::size_t>(a)], lambda,
                grad_full.data() + a * full_size, sort_scratch[static_cast<std::size_t>(a)]);
          }
        },
        p.threads);

    // Reward: one evaluation of every perturbed image through the callable.
    const bool flip = p.jitter && t % 2 == 0;
    const auto complement_of = [&](index_t i) {
      return p.mode == extremal_mode::deletion || (dual && i >= areas);
    };
    batches.for_each(
        images, [&](index_t count) { batches.run_gradient(callable, count); },
        [&](index_t i, strided_view<T, 3> img) {
          const index_t a = i % areas;
          const auto mask_a = [&](index_t y, index_t x) {
            return full_view(a, y + g.margin, x + g.margin);
          };
          pyramid_apply_rows<T>(levels.data(), p.levels, c, h, w, mask_a, complement_of(i), flip,
                                img, 0, h);
        },
        [&](index_t i, index_t slot) {
          const T score = batches.score(slot);
          if (!std::isfinite(score)) {
            CVK_THROW(invalid_argument, std::string(fn) + ": the gradient callable returned the " +
                                            "score " + number_string(static_cast<double>(score)) +
                                            " for image " + std::to_string(i) + " at iteration " +
                                            std::to_string(t));
          }
          scores[static_cast<std::size_t>(i)] = score;
          const auto grad = batches.gradient(slot);
          const index_t a = i % areas;
          const bool complement = complement_of(i);
          const auto mask_a = [&](index_t y, index_t x) {
            return full_view(a, y + g.margin, x + g.margin);
          };
          // grad_full += d(−reward)/d mask. A preserve image (reward +score at m): −apply'(m)ᵀg,
          // the pyramid backward of −g. A complement image (reward −score at 1 − m): the pyramid
          // backward of g at 1 − m, which carries the −1 of d(1 − m)/dm.
          const auto grad_out = [&](index_t y, index_t x) -> T& {
            return grad_full_view(a, y + g.margin, x + g.margin);
          };
          parallel_for(
              0, h, 8,
              [&](index_t lo, index_t hi) {
                for (index_t y = lo; y < hi; ++y) {
                  for (index_t ch = 0; ch < c; ++ch) {
                    for (index_t x = 0; x < w; ++x) {
                      if (!std::isfinite(grad(ch, y, x))) {
                        CVK_THROW(invalid_argument,
                                  std::string(fn) + ": the gradient callable returned the " +
                                      "gradient " +
                                      number_string(static_cast<double>(grad(ch, y, x))) +
                                      " for image " + std::to_string(i) + " at iteration " +
                                      std::to_string(t));
                      }
                    }
                  }
                  const auto negated = [&](index_t ch, index_t yy, index_t xx) {
                    return -grad(ch, yy, xx);
                  };
                  if (complement) {
                    pyramid_apply_backward_rows<T>(levels.data(), p.levels, c, h, w, mask_a, true,
                                                   flip, grad, grad_out, true, y, y + 1);
                  } else {
                    pyramid_apply_backward_rows<T>(levels.data(), p.levels, c, h, w, mask_a, false,
                                                   flip, negated, grad_out, true, y, y + 1);
                  }
                }
              },
              p.threads);
        },
        p.threads);

    // History.
    for (index_t a = 0; a < areas; ++a) {
      const auto sa = static_cast<std::size_t>(a);
      T reward = scores[sa];
      if (p.mode == extremal_mode::deletion) reward = -reward;
      if (dual) reward = scores[sa] - scores[sa + static_cast<std::size_t>(areas)];
      history(a, t, 0) = reward;
      history(a, t, 1) = static_cast<T>(regul[sa]);
    }

    if (t + 1 == p.max_iter) break;  // the masks of the last iteration are the result

    // Step: d(−energy)/d m̄, SGD with momentum and dampening, clamp to [0, 1].
    smooth_mask_backward(plan, padded.data(), areas, grad_full_view, grad_params_view, fn);
    const bool first = t == 0;
    for (std::size_t i = 0; i < params.size(); ++i) {
      const T gi = grad_params[i];
      momentum_buffer[i] = first ? gi : momentum_buffer[i] * mu + one_minus_damp * gi;
      const T next = params[i] - lr * momentum_buffer[i];
      params[i] = clamp_unit(next);
    }
    lambda *= p.lambda_growth;
  }

  for (index_t a = 0; a < areas; ++a) {
    for (index_t y = 0; y < h; ++y) {
      for (index_t x = 0; x < w; ++x) masks(a, y, x) = full_view(a, y + g.margin, x + g.margin);
    }
  }
  if (p.smooth > 0) {
    const double sigma = p.smooth * static_cast<double>(std::min(h, w));
    std::vector<T> scratch = checked_vector<T>(2 * plane, fn, "scratch", state_text);
    for (index_t a = 0; a < areas; ++a) {
      const strided_view<T, 2> m(masks.data() + a * masks.stride(0), {h, w},
                                 {masks.stride(1), masks.stride(2)});
      T* copy = scratch.data() + plane;
      for (index_t y = 0; y < h; ++y) {
        for (index_t x = 0; x < w; ++x) copy[y * w + x] = m(y, x);
      }
      gaussian_blur_plane<T>(strided_view<const T, 2>(copy, {h, w}), m, sigma, blur_border::zero,
                             scratch.data());
    }
  }
}

}  // namespace detail

/// Writes the masks (A×H×W) and history (A×max_iter×2) of the extremal perturbations of `image`
/// (1×C×H×W or 1×H×W×C by params.model.data_layout) for the score of gradient callable
/// `callable` (see the contract above and <cvk/saliency/model.hpp>).
template <class Image, class G, class Masks, class History>
requires tensor_of_rank<Image, 4> && gradient_function<G, detail::extremal_scalar_t<Image>> &&
    tensor_of_rank<Masks, 3> && tensor_of_rank<History, 3>
void extremal_perturbation(const Image& image, G&& callable, const extremal_params& params,
                           Masks&& masks, History&& history) {
  using T = detail::extremal_scalar_t<Image>;
  detail::assert_extremal_types<T, Masks, History>();
  constexpr const char* fn = "extremal_perturbation";
  detail::check_extremal_params(params, fn);
  const layout l = params.model.data_layout;
  const auto v = detail::permute_axes(
      strided_view<const T, 4>(detail::checked_view<4>(image, fn, "image")), detail::nchw_axes(l));
  if (v.extent(0) != 1 || v.extent(1) < 1 || v.extent(2) < 1 || v.extent(3) < 1) {
    CVK_THROW(shape_error, std::string(fn) + ": image must be " +
                               (l == layout::nchw ? "1×C×H×W" : "1×H×W×C") +
                               " with C, H, W >= 1 (one image), got " +
                               detail::shape_string(detail::from_nchw(v.extents(), l), 4));
  }
  detail::check_perturbation_params(detail::extremal_pyramid_params(params), fn);
  detail::resolve_smooth_mask({v.extent(2), v.extent(3)}, detail::extremal_mask_params(params), fn);
  const auto areas = static_cast<index_t>(params.areas.size());
  auto mv = detail::output_view<3>(std::forward<Masks>(masks), {areas, v.extent(2), v.extent(3)},
                                   fn, "masks");
  auto hv = detail::output_view<3>(std::forward<History>(history), {areas, params.max_iter, 2}, fn,
                                   "history");
  detail::run_extremal<T>(v, callable, params, strided_view<T, 3>(mv), strided_view<T, 3>(hv), fn);
}

/// The extremal perturbations of `image` (1×C×H×W or 1×H×W×C by params.model.data_layout) for
/// the score of gradient callable `callable`: masks A×H×W and history A×max_iter×2.
template <class Image, class G>
requires tensor_of_rank<Image, 4> && gradient_function<G, detail::extremal_scalar_t<Image>>
    extremal_result<detail::extremal_scalar_t<Image>> extremal_perturbation(
        const Image& image, G&& callable, const extremal_params& params = {}) {
  using T = detail::extremal_scalar_t<Image>;
  detail::assert_extremal_types<T>();
  constexpr const char* fn = "extremal_perturbation";
  detail::check_extremal_params(params, fn);
  const auto v =
      detail::permute_axes(strided_view<const T, 4>(detail::checked_view<4>(image, fn, "image")),
                           detail::nchw_axes(params.model.data_layout));
  const auto areas = static_cast<index_t>(params.areas.size());
  extremal_result<T> result;
  result.masks = detail::new_tensor3<T>(
      {areas, std::max<index_t>(v.extent(2), 0), std::max<index_t>(v.extent(3), 0)}, fn, "masks");
  result.history = detail::new_tensor3<T>({areas, params.max_iter, 2}, fn, "history");
  extremal_perturbation(image, std::forward<G>(callable), params, result.masks, result.history);
  return result;
}

CVK_END_NAMESPACE
