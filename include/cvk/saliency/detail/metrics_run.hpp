// cvk — computer-vision kernels, header-only C++20.
// The kernels behind cvk/saliency/metrics.hpp: average ranks and Spearman's rho
// (scipy.stats.spearmanr), the SSIM of one map pair over the valid windows
// (skimage.metrics.structural_similarity), the pointing-game hit test and the RISE causal
// curves' pixel order and AUC.
// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include "../../core/config.hpp"
#include "../../core/errors.hpp"
#include "../../core/strided_view.hpp"
#include "../../detail/checks.hpp"

CVK_BEGIN_NAMESPACE

/// The local window of ssim.
enum class ssim_window {
  uniform,   ///< a window_size² box (skimage's default, 7×7; Quantus)
  gaussian,  ///< Gaussian taps of sigma, radius floor(3.5σ + 0.5) (skimage's gaussian_weights)
};

/// How ssim normalises the local (co)variances.
enum class ssim_covariance {
  automatic,   ///< sample for the uniform window (skimage's default), population for the
               ///< Gaussian one (Wang et al.'s SSIM; skimage's recipe to match it)
  sample,      ///< · NP/(NP − 1), NP = window_size² (skimage's use_sample_covariance=True)
  population,  ///< no correction (use_sample_covariance=False)
};

namespace detail {

/// Average ranks (1-based) of `values` into `ranks`, ties sharing the mean of their positions
/// (scipy.stats.rankdata(method="average")). `order` is scratch of the same length.
inline void average_ranks(const std::vector<double>& values, std::vector<double>& ranks,
                          std::vector<index_t>& order) {
  const auto n = static_cast<index_t>(values.size());
  order.resize(values.size());
  std::iota(order.begin(), order.end(), index_t{0});
  std::stable_sort(order.begin(), order.end(), [&](index_t a, index_t b) {
    return values[static_cast<std::size_t>(a)] < values[static_cast<std::size_t>(b)];
  });
  ranks.resize(values.size());
  for (index_t i = 0; i < n;) {
    index_t j = i + 1;
    const double v = values[static_cast<std::size_t>(order[static_cast<std::size_t>(i)])];
    while (j < n && values[static_cast<std::size_t>(order[static_cast<std::size_t>(j)])] == v) ++j;
    // Positions i..j−1 (0-based) share rank (i + 1 + j)/2.
    const double rank = 0.5 * static_cast<double>(i + 1 + j);
    for (index_t k = i; k < j; ++k) {
      ranks[static_cast<std::size_t>(order[static_cast<std::size_t>(k)])] = rank;
    }
    i = j;
  }
}

/// Pearson's correlation of two equally long rank vectors, in double; NaN when either is
/// constant (scipy's result for a constant input).
inline double pearson(const std::vector<double>& a, const std::vector<double>& b) {
  const auto n = static_cast<double>(a.size());
  double ma = 0, mb = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    ma += a[i];
    mb += b[i];
  }
  ma /= n;
  mb /= n;
  double sab = 0, saa = 0, sbb = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double da = a[i] - ma, db = b[i] - mb;
    sab += da * db;
    saa += da * da;
    sbb += db * db;
  }
  if (saa == 0.0 || sbb == 0.0) return std::numeric_limits<double>::quiet_NaN();
  return std::clamp(sab / std::sqrt(saa * sbb), -1.0, 1.0);
}

/// The 1-D taps of an SSIM window of `size` (odd): uniform 1/size, or Gaussian
/// exp(−k²/(2σ²)) normalised (scipy.ndimage's _gaussian_kernel1d).
inline std::vector<double> ssim_taps(ssim_window window, index_t size, double sigma) {
  std::vector<double> taps(static_cast<std::size_t>(size));
  const index_t r = size / 2;
  if (window == ssim_window::uniform) {
    std::fill(taps.begin(), taps.end(), 1.0 / static_cast<double>(size));
    return taps;
  }
  double sum = 0;
  for (index_t k = -r; k <= r; ++k) {
    const double kd = static_cast<double>(k);
    const double v = std::exp(-0.5 / (sigma * sigma) * kd * kd);
    taps[static_cast<std::size_t>(k + r)] = v;
    sum += v;
  }
  for (double& v : taps) v /= sum;
  return taps;
}

/// The constants of one SSIM evaluation.
struct ssim_setup {
  std::vector<double> taps;
  index_t size = 7;
  double cov_norm = 1;
  double k1 = 0.01, k2 = 0.03;
};

/// Scratch of one thread's SSIM: five filtered rows.
struct ssim_scratch {
  std::vector<double> rows;  // 5·W
};

/// Mean SSIM of maps a and b (H×W, H, W >= size) over the valid windows, with data range R
/// (> 0): S = (2·μa·μb + C1)(2·σab + C2) / ((μa² + μb² + C1)(σa² + σb² + C2)), C1 = (K1·R)²,
/// C2 = (K2·R)², local moments from the window taps, σ's times cov_norm — skimage's formula,
/// averaged over the pixels whose window lies inside the map (skimage's crop of (size − 1)/2).
template <class T>
double ssim_plane(const strided_view<const T, 2>& a, const strided_view<const T, 2>& b,
                  double data_range, const ssim_setup& s, ssim_scratch& scratch) {
  const index_t h = a.extent(0), w = a.extent(1), size = s.size;
  const index_t ho = h - size + 1, wo = w - size + 1;
  const double c1 = (s.k1 * data_range) * (s.k1 * data_range);
  const double c2 = (s.k2 * data_range) * (s.k2 * data_range);
  scratch.rows.assign(static_cast<std::size_t>(5 * w), 0.0);
  double* ra = scratch.rows.data();
  double* rb = ra + w;
  double* raa = rb + w;
  double* rbb = raa + w;
  double* rab = rbb + w;
  double total = 0;
  for (index_t oy = 0; oy < ho; ++oy) {
    // Vertical pass: the window's column moments for every column.
    std::fill(scratch.rows.begin(), scratch.rows.end(), 0.0);
    for (index_t k = 0; k < size; ++k) {
      const double g = s.taps[static_cast<std::size_t>(k)];
      for (index_t x = 0; x < w; ++x) {
        const double va = static_cast<double>(a(oy + k, x));
        const double vb = static_cast<double>(b(oy + k, x));
        ra[x] += g * va;
        rb[x] += g * vb;
        raa[x] += g * (va * va);
        rbb[x] += g * (vb * vb);
        rab[x] += g * (va * vb);
      }
    }
    // Horizontal pass and the SSIM of each valid pixel.
    for (index_t ox = 0; ox < wo; ++ox) {
      double ua = 0, ub = 0, uaa = 0, ubb = 0, uab = 0;
      for (index_t k = 0; k < size; ++k) {
        const double g = s.taps[static_cast<std::size_t>(k)];
        ua += g * ra[ox + k];
        ub += g * rb[ox + k];
        uaa += g * raa[ox + k];
        ubb += g * rbb[ox + k];
        uab += g * rab[ox + k];
      }
      const double va = s.cov_norm * (uaa - ua * ua);
      const double vb = s.cov_norm * (ubb - ub * ub);
      const double vab = s.cov_norm * (uab - ua * ub);
      const double num = (2 * ua * ub + c1) * (2 * vab + c2);
      const double den = (ua * ua + ub * ub + c1) * (va + vb + c2);
      total += num / den;
    }
  }
  return total / static_cast<double>(ho * wo);
}

/// RISE's normalised trapezoid: (Σ s_i − s_0/2 − s_last/2) / (count − 1) for count >= 2;
/// the single score for count == 1.
template <class T>
double causal_auc(const T* scores, index_t count) {
  if (count == 1) return static_cast<double>(scores[0]);
  double sum = 0;
  for (index_t i = 0; i < count; ++i) sum += static_cast<double>(scores[i]);
  sum -= 0.5 * static_cast<double>(scores[0]) + 0.5 * static_cast<double>(scores[count - 1]);
  return sum / static_cast<double>(count - 1);
}

}  // namespace detail
CVK_END_NAMESPACE
