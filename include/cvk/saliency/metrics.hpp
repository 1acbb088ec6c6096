// cvk — computer-vision kernels, header-only C++20.
// Sanity checks and evaluation metrics of saliency maps: Spearman rank correlation
// (scipy.stats.spearmanr), SSIM (skimage.metrics.structural_similarity as Quantus calls it), the
// pointing game (TorchRay's tolerance, Quantus' exact hit), the deletion and insertion games of
// RISE (Petsiuk et al., BMVC 2018, §4.1) through a forward callable, and the cascading
// model-parameter randomisation of Adebayo et al. ("Sanity Checks for Saliency Maps", NeurIPS
// 2018, §3.1).
// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <numeric>
#include <ranges>
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
#include "detail/metrics_run.hpp"
#include "detail/postprocess_run.hpp"
#include "detail/resample.hpp"
#include "model.hpp"

CVK_BEGIN_NAMESPACE

// The contract of the metrics.
//
// Shapes (any tensor type, any strides; T = float or double, the maps' type):
//   a, b, maps   N×H×W saliency maps (one per image)
//   targets      N×H×W masks of any arithmetic type, nonzero = inside the object
//   images       N×C×H×W (model.data_layout = layout::nchw) or N×H×W×C (layout::nhwc)
//
// Forms:
//   spearman_correlation(a, b, spearman_params)      → tensor<T, 1>, one ρ per map pair
//   spearman_correlation(a, b, out, spearman_params)
//   ssim(a, b, ssim_params)                          → tensor<T, 1>, one mean SSIM per pair
//   ssim(a, b, out, ssim_params)
//   pointing_game(maps, targets, pointing_game_params) → pointing_game_result
//   deletion_auc(forward, images, maps, causal_params)             → causal_result<T>
//   deletion_auc(forward, images, maps, baseline, causal_params)   baseline: images' shape, or
//   insertion_auc(...)                                             a batch of 1 for all images
//   cascading_randomization(stages, method, randomization_params)  → randomization_result<T>
//   cascading_randomization(stages, randomization_params)          stages: callables → maps
//
// Definitions, and whose convention each default follows:
//   spearman_correlation  Pearson's correlation of the average ranks (ties share the mean of
//                         their positions) of the H·W values of a[n] and b[n]
//                         (scipy.stats.spearmanr); absolute = true ranks |a| and |b| (Adebayo
//                         et al.'s absolute-value comparison). A constant map (or H·W < 2)
//                         gives NaN, as scipy. Ranks and sums in double.
//   ssim                  skimage's structural_similarity of each pair: local means, variances
//                         and covariance from the window taps, S = (2μaμb + C1)(2σab + C2) /
//                         ((μa² + μb² + C1)(σa² + σb² + C2)), C1 = (K1·R)², C2 = (K2·R)², mean of
//                         S over the pixels whose window lies inside the map (skimage crops
//                         (size − 1)/2 at every side). Defaults: 7×7 uniform window with sample
//                         covariance (skimage's defaults, which Quantus uses), K1 = 0.01,
//                         K2 = 0.03, R = max(a[n], b[n]) − min(a[n], b[n]) per pair (Quantus'
//                         data_range). gaussian: σ = 1.5, side 2·floor(3.5σ + 0.5) + 1 = 11,
//                         population covariance (Wang et al.; skimage's gaussian_weights,
//                         use_sample_covariance=False). R = 0 (both maps one constant value):
//                         1, where skimage gives 0/0 = NaN. In double.
//   pointing_game         point = the argmax of maps[n], the first in row-major order on ties
//                         (numpy's argmax); hit when a target pixel lies at Euclidean distance
//                         < tolerance from the point, or is the point itself (so tolerance 15
//                         is TorchRay's strict test and tolerance 0 is Quantus' argmax-in-mask).
//                         accuracy = hits / N (NaN when N = 0).
//   deletion_auc          RISE's causal metric: pixels ranked by maps[n] in decreasing order
//   insertion_auc         (ties: lower row-major index first; RISE's flipped argsort leaves
//                         ties unspecified), then `step` pixels (all channels) at a time moved
//                         from `start` to `finish`: curve[i] = the score of start with the first
//                         min(i·step, H·W) pixels replaced, i = 0..S, S = ceil(H·W/step);
//                         auc = (Σ curve − curve[0]/2 − curve[S]/2)/S (trapezoid on S equal
//                         steps of [0, 1], RISE's auc()). deletion: start = the image, finish =
//                         the substrate; insertion: the other way round. Substrates (automatic):
//                         deletion → baseline (the constant `baseline`, 0 = RISE's
//                         torch.zeros_like, or the baseline tensor); insertion → the image blurred
//                         with a Gaussian of blur_sigma = 5 (RISE's nsig; cvk's full kernel,
//                         half-width ceil(4σ), zero border, where RISE cuts an 11×11 kernel).
//                         step defaults to 224 (RISE's, for 224×224 images). The model sees
//                         N·(S + 1) inputs through detail::model_batches. NaN scores flow into
//                         the curve and the AUC.
//   cascading_randomization  for stage k of the range (stage 0: the trained model, then
//                         cumulative randomisations from the top layer down), maps_k =
//                         method(stage_k) (or stage_k() in the second form); returns, per stage
//                         and map, spearman(maps_k, maps_0) signed and absolute and ssim(maps_k,
//                         maps_0) with the given ssim_params (row 0 compares the original with
//                         itself). Maps are compared as given: normalise them first if wanted.
//
// Errors (each message names the function, the argument and the shapes):
//   cvk::shape_error       wrong ranks; a and b (or maps and targets, images and maps, a
//                          stage's maps and the original's) of other shapes; maps smaller than
//                          the SSIM window; H·W = 0 or C = 0 in the causal metrics; the
//                          callable returning the wrong number of scores
//   cvk::invalid_argument  NaN in a map (spearman, ssim, pointing game, causal metrics); an
//                          empty target mask; tolerance < 0 or not finite; an even or < 1
//                          window, a gaussian window_size other than 2·floor(3.5σ + 0.5) + 1,
//                          sigma <= 0, K1 or K2 < 0, data_range < 0 or not finite; step < 1,
//                          baseline not finite, blur_sigma invalid; an empty stage range;
//                          enumerators out of range; threads < 0; model options
//   cvk::out_of_range      size products that overflow or cannot be allocated
//
// Complexity: spearman O(N·H·W·log(H·W)); ssim O(N·H·W·size) (separable windows; a double copy
// of the pair, 2·H·W + 10·W doubles per thread); pointing game O(N·(H·W + tolerance²)); causal
// metrics N·(S + 1) model calls plus O(N·(S + 1)·C·H·W) to build their inputs and O(N·H·W·log(H·W))
// to rank; threads split map pairs (causal metrics: the inputs of a batch), each value computed by
// one thread in a fixed order: bit-identical for any thread count.

/// Parameters of spearman_correlation.
struct spearman_params {
  /// Rank |a| and |b| instead of the signed values (Adebayo et al.'s absolute comparison).
  bool absolute = false;
  int threads = 0;
};

/// Parameters of ssim (skimage's names in comments).
struct ssim_params {
  ssim_window window = ssim_window::uniform;  // gaussian_weights
  /// Side of the window (win_size), odd; 0 = 7 (uniform) or 2·floor(3.5σ + 0.5) + 1 (gaussian,
  /// the only side accepted there).
  index_t window_size = 0;
  double sigma = 1.5;                                       // sigma (gaussian window)
  ssim_covariance covariance = ssim_covariance::automatic;  // use_sample_covariance
  double k1 = 0.01, k2 = 0.03;                              // K1, K2
  /// R of C1 = (K1·R)², C2 = (K2·R)²; 0 = the joint max − min of each pair (Quantus).
  double data_range = 0;
  int threads = 0;
};

/// Parameters of pointing_game.
struct pointing_game_params {
  /// Pixels; a target pixel closer than this to the point is a hit (TorchRay: 15; 0 = Quantus).
  double tolerance = 15;
  int threads = 0;
};

/// Result of pointing_game.
struct pointing_game_result {
  tensor<std::uint8_t, 1> hits;  ///< N: 1 hit, 0 miss
  tensor<index_t, 2> points;     ///< N×2: (y, x) of each map's argmax
  double accuracy = 0;           ///< hits / N
};

/// Where the causal metrics take the replaced pixels from.
enum class causal_substrate {
  automatic,  ///< deletion: baseline; insertion: blur (RISE's choices)
  baseline,   ///< the constant `baseline` or the baseline tensor
  blur,       ///< the image blurred with blur_sigma (zero border)
};

/// Parameters of deletion_auc and insertion_auc.
struct causal_params {
  /// Pixels moved per step, >= 1 (RISE: 224).
  index_t step = 224;
  causal_substrate substrate = causal_substrate::automatic;
  /// The constant baseline value (RISE's deletion: 0).
  double baseline = 0;
  /// σ of the blurred substrate (RISE's insertion: 5).
  double blur_sigma = 5;
  /// Batch size and the layout of images, baseline and the callable's batches.
  model_options model{};
  int threads = 0;
};

/// Result of deletion_auc / insertion_auc.
template <class T>
struct causal_result {
  tensor<T, 1> auc;    ///< N
  tensor<T, 2> curve;  ///< N×(S + 1): the score after i steps
};

/// Parameters of cascading_randomization.
struct randomization_params {
  ssim_params ssim{};
  int threads = 0;
};

/// Result of cascading_randomization: rows = stages, columns = maps.
template <class T>
struct randomization_result {
  tensor<T, 2> spearman;      ///< stages×N, signed maps
  tensor<T, 2> spearman_abs;  ///< stages×N, |maps|
  tensor<T, 2> ssim;          ///< stages×N
};

namespace detail {

/// The views of a map pair, checked to share one N×H×W shape.
template <class T, class A, class B>
std::pair<strided_view<const T, 3>, strided_view<const T, 3>> map_pair(const A& a, const B& b,
                                                                       const char* fn) {
  static_assert(std::is_same_v<map_scalar_t<A>, map_scalar_t<B>>,
                "cvk: both maps of a metric hold the same type (float or double)");
  const auto va = maps_input<T>(a, fn, "a");
  const auto vb = maps_input<T>(b, fn, "b");
  if (va.extents() != vb.extents()) {
    CVK_THROW(shape_error, std::string(fn) + ": a and b must have the same shape N×H×W, got " +
                               va.shape_string() + " and " + vb.shape_string());
  }
  checked_count(va.extents(), fn, "a");
  return {va, vb};
}

/// Throws invalid_argument "fn: a[n] holds NaN at (y, x)" at the first NaN of plane n.
template <class T>
void expect_no_nan(const strided_view<const T, 2>& p, index_t n, const char* fn,
                   const char* argument) {
  for (index_t y = 0; y < p.extent(0); ++y) {
    for (index_t x = 0; x < p.extent(1); ++x) {
      if (std::isnan(p(y, x))) {
        CVK_THROW(invalid_argument, std::string(fn) + ": " + argument + "[" + std::to_string(n) +
                                        "] holds NaN at (" + std::to_string(y) + ", " +
                                        std::to_string(x) + ")");
      }
    }
  }
}

template <class T>
void run_spearman(const strided_view<const T, 3>& a, const strided_view<const T, 3>& b,
                  const strided_view<T, 1>& out, const spearman_params& p, const char* fn) {
  const index_t n = a.extent(0), h = a.extent(1), w = a.extent(2);
  for (index_t i = 0; i < n; ++i) {
    expect_no_nan(plane(a, i), i, fn, "a");
    expect_no_nan(plane(b, i), i, fn, "b");
  }
  parallel_for(
      0, n, 1,
      [&](index_t lo, index_t hi) {
        const index_t count = h * w;
        auto va = checked_vector<double>(count, fn, "a map's values", a);
        auto vb = checked_vector<double>(count, fn, "a map's values", a);
        std::vector<double> ra, rb;
        std::vector<index_t> order;
        for (index_t i = lo; i < hi; ++i) {
          for (index_t y = 0; y < h; ++y) {
            for (index_t x = 0; x < w; ++x) {
              const auto k = static_cast<std::size_t>(y * w + x);
              const auto xa = static_cast<double>(a(i, y, x)), xb = static_cast<double>(b(i, y, x));
              va[k] = p.absolute ? std::fabs(xa) : xa;
              vb[k] = p.absolute ? std::fabs(xb) : xb;
            }
          }
          if (count < 2) {
            out(i) = std::numeric_limits<T>::quiet_NaN();
            continue;
          }
          average_ranks(va, ra, order);
          average_ranks(vb, rb, order);
          out(i) = static_cast<T>(pearson(ra, rb));
        }
      },
      p.threads);
}

/// The checked setup of ssim_params for maps of h×w (the window must fit).
inline ssim_setup make_ssim_setup(const ssim_params& p, index_t n, index_t h, index_t w,
                                  const char* fn) {
  if (p.window != ssim_window::uniform && p.window != ssim_window::gaussian) {
    CVK_THROW(invalid_argument, std::string(fn) + ": window is not a cvk::ssim_window");
  }
  if (p.covariance != ssim_covariance::automatic && p.covariance != ssim_covariance::sample &&
      p.covariance != ssim_covariance::population) {
    CVK_THROW(invalid_argument, std::string(fn) + ": covariance is not a cvk::ssim_covariance");
  }
  if (!(p.k1 >= 0.0 && std::isfinite(p.k1)) || !(p.k2 >= 0.0 && std::isfinite(p.k2))) {
    CVK_THROW(invalid_argument, std::string(fn) + ": k1 and k2 must be finite and >= 0, got " +
                                    number_string(p.k1) + " and " + number_string(p.k2));
  }
  if (!(p.data_range >= 0.0 && std::isfinite(p.data_range))) {
    CVK_THROW(invalid_argument, std::string(fn) +
                                    ": data_range must be finite and >= 0 (0 = each "
                                    "pair's joint max − min), got " +
                                    number_string(p.data_range));
  }
  check_thread_count(p.threads, fn);
  ssim_setup s;
  if (p.window == ssim_window::gaussian) {
    if (!(p.sigma > 0.0 && p.sigma <= 1e6)) {
      CVK_THROW(invalid_argument,
                std::string(fn) + ": sigma must be in (0, 1e6], got " + number_string(p.sigma));
    }
    const auto radius = static_cast<index_t>(std::floor(3.5 * p.sigma + 0.5));
    s.size = 2 * radius + 1;
    if (p.window_size != 0 && p.window_size != s.size) {
      CVK_THROW(invalid_argument, std::string(fn) + ": a gaussian window of sigma " +
                                      number_string(p.sigma) + " has side " +
                                      std::to_string(s.size) +
                                      " (2·floor(3.5σ + 0.5) + 1); "
                                      "window_size must be 0 or that, got " +
                                      std::to_string(p.window_size));
    }
  } else {
    s.size = p.window_size == 0 ? 7 : p.window_size;
    if (s.size < 1 || s.size % 2 == 0) {
      CVK_THROW(invalid_argument, std::string(fn) + ": window_size must be odd and >= 1, got " +
                                      std::to_string(p.window_size));
    }
  }
  if (n > 0 && (h < s.size || w < s.size)) {
    CVK_THROW(shape_error, std::string(fn) + ": maps must be at least " + std::to_string(s.size) +
                               "×" + std::to_string(s.size) + " for the SSIM window, got " +
                               std::to_string(h) + "×" + std::to_string(w));
  }
  s.taps = ssim_taps(p.window, s.size, p.sigma);
  const bool sample =
      p.covariance == ssim_covariance::sample ||
      (p.covariance == ssim_covariance::automatic && p.window == ssim_window::uniform);
  const double np = static_cast<double>(s.size) * static_cast<double>(s.size);
  s.cov_norm = sample && s.size > 1 ? np / (np - 1.0) : 1.0;
  s.k1 = p.k1;
  s.k2 = p.k2;
  return s;
}

template <class T>
void run_ssim(const strided_view<const T, 3>& a, const strided_view<const T, 3>& b,
              const strided_view<T, 1>& out, const ssim_params& p, const char* fn) {
  const index_t n = a.extent(0), h = a.extent(1), w = a.extent(2);
  const ssim_setup setup = make_ssim_setup(p, n, h, w, fn);
  for (index_t i = 0; i < n; ++i) {
    expect_no_nan(plane(a, i), i, fn, "a");
    expect_no_nan(plane(b, i), i, fn, "b");
  }
  parallel_for(
      0, n, 1,
      [&](index_t lo, index_t hi) {
        ssim_scratch scratch;
        for (index_t i = lo; i < hi; ++i) {
          const auto pa = plane(a, i), pb = plane(b, i);
          double range = p.data_range;
          if (range == 0.0) {
            double mn = std::numeric_limits<double>::infinity(), mx = -mn;
            for (index_t y = 0; y < h; ++y) {
              for (index_t x = 0; x < w; ++x) {
                const auto va = static_cast<double>(pa(y, x)), vb = static_cast<double>(pb(y, x));
                mn = std::min({mn, va, vb});
                mx = std::max({mx, va, vb});
              }
            }
            range = mx - mn;
          }
          // R = 0: both maps are the same constant (or the caller said so): identical images.
          out(i) =
              range == 0.0 ? T(1) : static_cast<T>(ssim_plane<T>(pa, pb, range, setup, scratch));
        }
      },
      p.threads);
}

/// The argmax (first in row-major order) of a plane with no NaN.
template <class T>
std::array<index_t, 2> plane_argmax(const strided_view<const T, 2>& m) {
  std::array<index_t, 2> best{0, 0};
  T value = m(0, 0);
  for (index_t y = 0; y < m.extent(0); ++y) {
    for (index_t x = 0; x < m.extent(1); ++x) {
      if (m(y, x) > value) {
        value = m(y, x);
        best = {y, x};
      }
    }
  }
  return best;
}

/// The pixel order of the causal metrics: indices y·W + x by decreasing map value, ties by
/// increasing index.
template <class T>
void causal_order(const strided_view<const T, 2>& m, std::vector<index_t>& order) {
  const index_t w = m.extent(1);
  order.resize(static_cast<std::size_t>(m.extent(0) * w));
  std::iota(order.begin(), order.end(), index_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](index_t i, index_t j) { return m(i / w, i % w) > m(j / w, j % w); });
}

}  // namespace detail

// ---------------------------------------------------------------------------------------------
// spearman_correlation

/// Spearman's ρ of each map pair into `out` (N values).
template <tensor_of_rank<3> A, tensor_of_rank<3> B, tensor_of_rank<1> Out>
void spearman_correlation(const A& a, const B& b, Out&& out, const spearman_params& p = {}) {
  constexpr const char* fn = "spearman_correlation";
  using T = detail::map_scalar_t<A>;
  detail::assert_map_type<T>();
  detail::check_thread_count(p.threads, fn);
  const auto [va, vb] = detail::map_pair<T>(a, b, fn);
  auto o = detail::result_view<1>(std::forward<Out>(out), {va.extent(0)}, fn, "N");
  static_assert(std::is_same_v<typename decltype(o)::element_type, T>,
                "cvk: spearman_correlation writes the maps' type");
  detail::run_spearman<T>(va, vb, o, p, fn);
}

/// Spearman's ρ of each map pair (average ranks for ties, scipy's); NaN for a constant map.
template <tensor_of_rank<3> A, tensor_of_rank<3> B>
tensor<detail::map_scalar_t<A>, 1> spearman_correlation(const A& a, const B& b,
                                                        const spearman_params& p = {}) {
  using T = detail::map_scalar_t<A>;
  detail::assert_map_type<T>();
  const auto va = detail::maps_input<T>(a, "spearman_correlation", "a");
  tensor<T, 1> result(va.extent(0));
  spearman_correlation(a, b, result, p);
  return result;
}

// ---------------------------------------------------------------------------------------------
// ssim

/// The mean SSIM of each map pair into `out` (N values).
template <tensor_of_rank<3> A, tensor_of_rank<3> B, tensor_of_rank<1> Out>
void ssim(const A& a, const B& b, Out&& out, const ssim_params& p = {}) {
  constexpr const char* fn = "ssim";
  using T = detail::map_scalar_t<A>;
  detail::assert_map_type<T>();
  const auto [va, vb] = detail::map_pair<T>(a, b, fn);
  auto o = detail::result_view<1>(std::forward<Out>(out), {va.extent(0)}, fn, "N");
  static_assert(std::is_same_v<typename decltype(o)::element_type, T>,
                "cvk: ssim writes the maps' type");
  detail::run_ssim<T>(va, vb, o, p, fn);
}

/// The mean SSIM of each map pair (skimage's, Quantus' data range by default).
template <tensor_of_rank<3> A, tensor_of_rank<3> B>
tensor<detail::map_scalar_t<A>, 1> ssim(const A& a, const B& b, const ssim_params& p = {}) {
  using T = detail::map_scalar_t<A>;
  detail::assert_map_type<T>();
  const auto va = detail::maps_input<T>(a, "ssim", "a");
  tensor<T, 1> result(va.extent(0));
  ssim(a, b, result, p);
  return result;
}

// ---------------------------------------------------------------------------------------------
// pointing_game

/// The pointing game of N maps against N target masks.
template <tensor_of_rank<3> Maps, tensor_of_rank<3> Targets>
pointing_game_result pointing_game(const Maps& maps, const Targets& targets,
                                   const pointing_game_params& p = {}) {
  constexpr const char* fn = "pointing_game";
  using T = detail::map_scalar_t<Maps>;
  using M = detail::map_scalar_t<Targets>;
  detail::assert_map_type<T>();
  static_assert(std::is_arithmetic_v<M>,
                "cvk: pointing_game targets are masks of numbers "
                "(nonzero = inside)");
  detail::check_thread_count(p.threads, fn);
  if (!(p.tolerance >= 0.0 && std::isfinite(p.tolerance))) {
    CVK_THROW(invalid_argument, std::string(fn) + ": tolerance must be finite and >= 0, got " +
                                    detail::number_string(p.tolerance));
  }
  const auto m = detail::maps_input<T>(maps, fn);
  const auto t = strided_view<const M, 3>(detail::checked_view<3>(targets, fn, "targets"));
  if (m.extents() != t.extents()) {
    CVK_THROW(shape_error, std::string(fn) + ": targets must have the maps' shape " +
                               m.shape_string() + ", got " + t.shape_string());
  }
  detail::checked_count(m.extents(), fn, "maps");
  const index_t n = m.extent(0), h = m.extent(1), w = m.extent(2);
  pointing_game_result r;
  r.hits = tensor<std::uint8_t, 1>(n);
  r.points = tensor<index_t, 2>(n, 2);
  if (n == 0) {
    r.accuracy = std::numeric_limits<double>::quiet_NaN();
    return r;
  }
  if (h == 0 || w == 0) {
    CVK_THROW(shape_error,
              std::string(fn) + ": maps must be N×H×W with H, W >= 1, got " + m.shape_string());
  }
  for (index_t i = 0; i < n; ++i) {
    detail::expect_no_nan(detail::plane(m, i), i, fn, "maps");
    bool any = false;
    for (index_t y = 0; y < h && !any; ++y) {
      for (index_t x = 0; x < w && !any; ++x) any = t(i, y, x) != M(0);
    }
    if (!any) {
      CVK_THROW(invalid_argument, std::string(fn) + ": targets[" + std::to_string(i) +
                                      "] has no pixel inside (an empty mask cannot be hit)");
    }
  }
  const double tol2 = p.tolerance * p.tolerance;
  const auto reach =
      static_cast<index_t>(std::min(std::ceil(p.tolerance), static_cast<double>(std::max(h, w))));
  parallel_for(
      0, n, 1,
      [&](index_t lo, index_t hi) {
        for (index_t i = lo; i < hi; ++i) {
          const auto point = detail::plane_argmax(detail::plane(m, i));
          bool hit = t(i, point[0], point[1]) != M(0);
          for (index_t y = std::max<index_t>(0, point[0] - reach);
               y <= std::min(h - 1, point[0] + reach) && !hit; ++y) {
            for (index_t x = std::max<index_t>(0, point[1] - reach);
                 x <= std::min(w - 1, point[1] + reach) && !hit; ++x) {
              const auto dy = static_cast<double>(y - point[0]);
              const auto dx = static_cast<double>(x - point[1]);
              hit = t(i, y, x) != M(0) && dy * dy + dx * dx < tol2;
            }
          }
          r.hits(i) = static_cast<std::uint8_t>(hit ? 1 : 0);
          r.points(i, 0) = point[0];
          r.points(i, 1) = point[1];
        }
      },
      p.threads);
  index_t hits = 0;
  for (index_t i = 0; i < n; ++i) hits += r.hits(i);
  r.accuracy = static_cast<double>(hits) / static_cast<double>(n);
  return r;
}

// ---------------------------------------------------------------------------------------------
// deletion_auc / insertion_auc

namespace detail {

inline void check_causal_params(const causal_params& p, const char* fn) {
  check_model_options(p.model, fn);
  check_thread_count(p.threads, fn);
  if (p.step < 1) {
    CVK_THROW(invalid_argument,
              std::string(fn) + ": step must be >= 1 pixel, got " + std::to_string(p.step));
  }
  if (p.substrate != causal_substrate::automatic && p.substrate != causal_substrate::baseline &&
      p.substrate != causal_substrate::blur) {
    CVK_THROW(invalid_argument, std::string(fn) + ": substrate is not a cvk::causal_substrate");
  }
  if (!std::isfinite(p.baseline)) {
    CVK_THROW(invalid_argument,
              std::string(fn) + ": baseline must be finite, got " + number_string(p.baseline));
  }
  check_blur_sigma(p.blur_sigma, fn, "blur_sigma");
}

/// The deletion (insertion = false) or insertion game of every image; `baseline` is null (the
/// constant) or an (n, c, h, w) view with N = images' N or 1.
template <class T, class F>
causal_result<T> run_causal(F& forward, const strided_view<const T, 4>& x,
                            const strided_view<const T, 3>& maps,
                            const strided_view<const T, 4>* baseline, const causal_params& p,
                            bool insertion, const char* fn) {
  const index_t n = x.extent(0), c = x.extent(1), h = x.extent(2), w = x.extent(3);
  const index_t pixels = h * w;  // the images exist: no overflow
  const index_t steps = (pixels + p.step - 1) / p.step;
  causal_result<T> r;
  r.auc = new_result<T, 1>({n}, fn, "the AUCs");
  r.curve = new_result<T, 2>({n, steps + 1}, fn, "the curves");
  if (n == 0) return r;
  for (index_t i = 0; i < n; ++i) expect_no_nan(plane(maps, i), i, fn, "maps");
  const bool blur = p.substrate == causal_substrate::blur ||
                    (p.substrate == causal_substrate::automatic && insertion);
  model_batches<T> batches(p.model, {c, h, w}, false, fn, steps + 1);
  const index_t image_size = batches.image_size();
  auto substrate = checked_vector<T>(image_size, fn, "the substrate", [&] {
    return std::to_string(c) + "×" + std::to_string(h) + "×" + std::to_string(w);
  });
  auto scratch = checked_vector<T>(blur ? pixels : 0, fn, "the blur scratch", maps);
  std::vector<index_t> order;
  const strided_view<T, 3> sub(substrate.data(), {c, h, w});
  for (index_t i = 0; i < n; ++i) {
    const strided_view<const T, 3> image(x.data() + i * x.stride(0), {c, h, w},
                                         {x.stride(1), x.stride(2), x.stride(3)});
    // The substrate of image i.
    for (index_t ch = 0; ch < c; ++ch) {
      const strided_view<const T, 2> src(image.data() + ch * image.stride(0), {h, w},
                                         {image.stride(1), image.stride(2)});
      const auto dst = plane(sub, ch);
      if (blur) {
        gaussian_blur_plane<T>(src, dst, p.blur_sigma, blur_border::zero, scratch.data());
      } else if (baseline != nullptr) {
        const index_t bn = baseline->extent(0) == 1 ? 0 : i;
        for (index_t y = 0; y < h; ++y)
          for (index_t xx = 0; xx < w; ++xx) dst(y, xx) = (*baseline)(bn, ch, y, xx);
      } else {
        for (index_t y = 0; y < h; ++y)
          for (index_t xx = 0; xx < w; ++xx) dst(y, xx) = static_cast<T>(p.baseline);
      }
    }
    causal_order(plane(maps, i), order);
    const strided_view<const T, 3> finish_sub(substrate.data(), {c, h, w});
    const strided_view<const T, 3> start = insertion ? finish_sub : image;
    const strided_view<const T, 3> finish = insertion ? image : finish_sub;
    batches.for_each(
        steps + 1, [&](index_t b) { batches.run_forward(forward, b); },
        [&](index_t k, strided_view<T, 3> input) {
          for (index_t ch = 0; ch < c; ++ch)
            for (index_t y = 0; y < h; ++y)
              for (index_t xx = 0; xx < w; ++xx) input(ch, y, xx) = start(ch, y, xx);
          const index_t moved = std::min(k * p.step, pixels);
          for (index_t j = 0; j < moved; ++j) {
            const index_t q = order[static_cast<std::size_t>(j)];
            const index_t y = q / w, xx = q % w;
            for (index_t ch = 0; ch < c; ++ch) input(ch, y, xx) = finish(ch, y, xx);
          }
        },
        [&](index_t k, index_t slot) { r.curve(i, k) = batches.score(slot); }, p.threads);
    r.auc(i) = static_cast<T>(causal_auc(r.curve.data() + i * (steps + 1), steps + 1));
  }
  return r;
}

template <class T, class X>
strided_view<const T, 4> causal_images(const X& images, layout l, const char* fn,
                                       const char* argument) {
  const auto v = checked_view<4>(images, fn, argument);
  return permute_axes(strided_view<const T, 4>(v), nchw_axes(l));
}

template <class Images, class Maps, class Baseline, class F>
auto causal_metric(F& forward, const Images& images, const Maps& maps, const Baseline* baseline,
                   const causal_params& p, bool insertion, const char* fn) {
  using T = map_scalar_t<Maps>;
  assert_map_type<T>();
  static_assert(std::is_same_v<map_scalar_t<Images>, T>,
                "cvk: the causal metrics need images and maps of one type (float or double)");
  static_assert(forward_function<F, T>,
                "cvk: forward must be a forward_function of the images' type (saliency/model.hpp)");
  check_causal_params(p, fn);
  const layout l = p.model.data_layout;
  const auto x = causal_images<T>(images, l, fn, "images");
  const auto m = maps_input<T>(maps, fn);
  const std::string pattern = std::string(layout_pattern(l));
  if (m.extent(0) != x.extent(0) || m.extent(1) != x.extent(2) || m.extent(2) != x.extent(3)) {
    CVK_THROW(shape_error, std::string(fn) + ": maps must be N×H×W of images " + pattern + " " +
                               checked_view<4>(images, fn, "images").shape_string() + ", got " +
                               m.shape_string());
  }
  if (x.extent(0) > 0 && (x.extent(1) == 0 || x.extent(2) == 0 || x.extent(3) == 0)) {
    CVK_THROW(shape_error, std::string(fn) + ": images must be " + pattern +
                               " with C, H, W >= 1, got " +
                               checked_view<4>(images, fn, "images").shape_string());
  }
  strided_view<const T, 4> b;
  if constexpr (!std::is_same_v<Baseline, void>) {
    static_assert(std::is_same_v<map_scalar_t<Baseline>, T>,
                  "cvk: the baseline holds the images' type");
    b = causal_images<T>(*baseline, l, fn, "baseline");
    if ((b.extent(0) != x.extent(0) && b.extent(0) != 1) || b.extent(1) != x.extent(1) ||
        b.extent(2) != x.extent(2) || b.extent(3) != x.extent(3)) {
      CVK_THROW(shape_error, std::string(fn) + ": baseline must have the images' shape " +
                                 checked_view<4>(images, fn, "images").shape_string() +
                                 " (or a batch of 1), got " +
                                 checked_view<4>(*baseline, fn, "baseline").shape_string());
    }
    return run_causal<T>(forward, x, m, &b, p, insertion, fn);
  } else {
    return run_causal<T>(forward, x, m, nullptr, p, insertion, fn);
  }
}

}  // namespace detail

/// RISE's deletion game: the score as the most salient pixels are replaced by the substrate.
template <class F, tensor_of_rank<4> Images, tensor_of_rank<3> Maps>
causal_result<detail::map_scalar_t<Maps>> deletion_auc(F&& forward, const Images& images,
                                                       const Maps& maps,
                                                       const causal_params& p = {}) {
  return detail::causal_metric<Images, Maps, void>(forward, images, maps, nullptr, p, false,
                                                   "deletion_auc");
}

/// RISE's deletion game with a baseline tensor (images' shape, or a batch of 1).
template <class F, tensor_of_rank<4> Images, tensor_of_rank<3> Maps, tensor_of_rank<4> Baseline>
causal_result<detail::map_scalar_t<Maps>> deletion_auc(F&& forward, const Images& images,
                                                       const Maps& maps, const Baseline& baseline,
                                                       const causal_params& p = {}) {
  return detail::causal_metric<Images, Maps, Baseline>(forward, images, maps, &baseline, p, false,
                                                       "deletion_auc");
}

/// RISE's insertion game: the score as the most salient pixels are restored into the
/// substrate (a blurred copy by default).
template <class F, tensor_of_rank<4> Images, tensor_of_rank<3> Maps>
causal_result<detail::map_scalar_t<Maps>> insertion_auc(F&& forward, const Images& images,
                                                        const Maps& maps,
                                                        const causal_params& p = {}) {
  return detail::causal_metric<Images, Maps, void>(forward, images, maps, nullptr, p, true,
                                                   "insertion_auc");
}

/// RISE's insertion game from a baseline tensor (substrate = baseline unless set to blur).
template <class F, tensor_of_rank<4> Images, tensor_of_rank<3> Maps, tensor_of_rank<4> Baseline>
causal_result<detail::map_scalar_t<Maps>> insertion_auc(F&& forward, const Images& images,
                                                        const Maps& maps, const Baseline& baseline,
                                                        causal_params p = {}) {
  if (p.substrate == causal_substrate::automatic) p.substrate = causal_substrate::baseline;
  return detail::causal_metric<Images, Maps, Baseline>(forward, images, maps, &baseline, p, true,
                                                       "insertion_auc");
}

// ---------------------------------------------------------------------------------------------
// cascading_randomization

/// Adebayo et al.'s cascading randomisation: maps_k = method(stage_k) for every stage of the
/// range (stage 0 = the trained model), compared with maps_0 by signed and absolute Spearman
/// and SSIM.
template <std::ranges::input_range Stages, class Method>
requires std::invocable<Method&, std::ranges::range_reference_t<Stages>>
auto cascading_randomization(Stages&& stages, Method&& method, const randomization_params& p = {}) {
  constexpr const char* fn = "cascading_randomization";
  using Maps =
      std::remove_cvref_t<std::invoke_result_t<Method&, std::ranges::range_reference_t<Stages>>>;
  static_assert(tensor_of_rank<Maps, 3>,
                "cvk: the method of cascading_randomization returns N×H×W maps");
  using T = detail::map_scalar_t<Maps>;
  detail::assert_map_type<T>();
  detail::check_thread_count(p.threads, fn);
  std::vector<T> rows_spearman, rows_abs, rows_ssim;
  tensor<T, 3> original;
  index_t stage = 0, n = 0;
  for (auto&& s : stages) {
    const auto maps = std::invoke(method, std::forward<decltype(s)>(s));
    const auto v = detail::maps_input<T>(maps, fn, "a stage's maps");
    if (stage == 0) {
      original = detail::new_result<T, 3>(v.extents(), fn, "the original maps");
      for (index_t i = 0; i < v.extent(0); ++i)
        for (index_t y = 0; y < v.extent(1); ++y)
          for (index_t x = 0; x < v.extent(2); ++x) original(i, y, x) = v(i, y, x);
      n = v.extent(0);
    } else if (v.extents() != original.extents()) {
      CVK_THROW(shape_error, std::string(fn) + ": stage " + std::to_string(stage) +
                                 " returned maps of " + v.shape_string() + ", the original's are " +
                                 original.shape_string());
    }
    const strided_view<const T, 3> o = original.view();
    tensor<T, 1> rho(n), rho_abs(n), sim(n);
    detail::run_spearman<T>(v, o, rho.view(), {.absolute = false, .threads = p.threads}, fn);
    detail::run_spearman<T>(v, o, rho_abs.view(), {.absolute = true, .threads = p.threads}, fn);
    ssim_params sp = p.ssim;
    if (sp.threads == 0) sp.threads = p.threads;
    detail::run_ssim<T>(v, o, sim.view(), sp, fn);
    rows_spearman.insert(rows_spearman.end(), rho.begin(), rho.end());
    rows_abs.insert(rows_abs.end(), rho_abs.begin(), rho_abs.end());
    rows_ssim.insert(rows_ssim.end(), sim.begin(), sim.end());
    ++stage;
  }
  if (stage == 0) {
    CVK_THROW(invalid_argument, std::string(fn) +
                                    ": stages is empty (stage 0 is the trained "
                                    "model whose maps the others are compared with)");
  }
  randomization_result<T> r;
  r.spearman = tensor<T, 2>(stage, n);
  r.spearman_abs = tensor<T, 2>(stage, n);
  r.ssim = tensor<T, 2>(stage, n);
  std::copy(rows_spearman.begin(), rows_spearman.end(), r.spearman.begin());
  std::copy(rows_abs.begin(), rows_abs.end(), r.spearman_abs.begin());
  std::copy(rows_ssim.begin(), rows_ssim.end(), r.ssim.begin());
  return r;
}

/// cascading_randomization over a range of callables, each returning its stage's maps.
template <std::ranges::input_range Stages>
requires std::invocable<std::ranges::range_reference_t<Stages>>
auto cascading_randomization(Stages&& stages, const randomization_params& p = {}) {
  return cascading_randomization(
      std::forward<Stages>(stages), [](auto&& stage) { return stage(); }, p);
}

CVK_END_NAMESPACE
