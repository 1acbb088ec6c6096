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

/// Scratch of one thread's SSIM: both maps as contiguous double rows, five column-filtered rows
/// and five fully filtered rows.
struct ssim_scratch {
  std::vector<double> maps;     // 2·H·W
  std::vector<double> columns;  // 5·W
  std::vector<double> windows;  // 5·Wo
};

/// out[x] += g·a[x] (or g·a[x]·b[x] when `product`) for x in [0, count): one SSIM moment.
inline void add_scaled(double* out, const double* a, const double* b, double g, index_t count,
                       bool product) noexcept {
  if (product) {
    for (index_t x = 0; x < count; ++x) out[x] += g * (a[x] * b[x]);
  } else {
    for (index_t x = 0; x < count; ++x) out[x] += g * a[x];
  }
}

/// Mean SSIM of maps a and b (H×W, H, W >= size) over the valid windows, with data range R
/// (> 0): S = (2·μa·μb + C1)(2·σab + C2) / ((μa² + μb² + C1)(σa² + σb² + C2)), C1 = (K1·R)²,
/// C2 = (K2·R)², local moments from the window taps (vertical pass, then horizontal), σ's times
/// cov_norm — skimage's formula, averaged over the pixels whose window lies inside the map
/// (skimage's crop of (size − 1)/2). The maps are first copied to contiguous doubles so that
/// every pass runs over contiguous rows (vectorised); S is summed in row-major order.
template <class T>
double ssim_plane(const strided_view<const T, 2>& a, const strided_view<const T, 2>& b,
                  double data_range, const ssim_setup& s, ssim_scratch& scratch) {
  const index_t h = a.extent(0), w = a.extent(1), size = s.size;
  const index_t ho = h - size + 1, wo = w - size + 1;
  const double c1 = (s.k1 * data_range) * (s.k1 * data_range);
  const double c2 = (s.k2 * data_range) * (s.k2 * data_range);
  scratch.maps.resize(static_cast<std::size_t>(2 * h * w));
  scratch.columns.resize(static_cast<std::size_t>(5 * w));
  scratch.windows.resize(static_cast<std::size_t>(5 * wo));
  double* ma = scratch.maps.data();
  double* mb = ma + h * w;
  for (index_t y = 0; y < h; ++y) {
    for (index_t x = 0; x < w; ++x) {
      ma[y * w + x] = static_cast<double>(a(y, x));
      mb[y * w + x] = static_cast<double>(b(y, x));
    }
  }
  double* ra = scratch.columns.data();
  double* rb = ra + w;
  double* raa = rb + w;
  double* rbb = raa + w;
  double* rab = rbb + w;
  double* ua = scratch.windows.data();
  double* ub = ua + wo;
  double* uaa = ub + wo;
  double* ubb = uaa + wo;
  double* uab = ubb + wo;
  const double* taps = s.taps.data();
  double total = 0;
  for (index_t oy = 0; oy < ho; ++oy) {
    // Vertical pass: the window's column moments for every column.
    std::fill(scratch.columns.begin(), scratch.columns.end(), 0.0);
    for (index_t k = 0; k < size; ++k) {
      const double g = taps[k];
      const double* pa = ma + (oy + k) * w;
      const double* pb = mb + (oy + k) * w;
      // One moment per loop: two or three streams each, which g++ vectorises.
      add_scaled(ra, pa, pa, g, w, false);
      add_scaled(rb, pb, pb, g, w, false);
      add_scaled(raa, pa, pa, g, w, true);
      add_scaled(rbb, pb, pb, g, w, true);
      add_scaled(rab, pa, pb, g, w, true);
    }
    // Horizontal pass over the column moments.
    std::fill(scratch.windows.begin(), scratch.windows.end(), 0.0);
    for (index_t k = 0; k < size; ++k) {
      const double g = taps[k];
      add_scaled(ua, ra + k, ra + k, g, wo, false);
      add_scaled(ub, rb + k, rb + k, g, wo, false);
      add_scaled(uaa, raa + k, raa + k, g, wo, false);
      add_scaled(ubb, rbb + k, rbb + k, g, wo, false);
      add_scaled(uab, rab + k, rab + k, g, wo, false);
    }
    // The SSIM of each valid pixel of the row (into ua, vectorised), then their sum in order.
    for (index_t ox = 0; ox < wo; ++ox) {
      const double mean_aa = ua[ox] * ua[ox], mean_bb = ub[ox] * ub[ox];
      const double mean_ab = ua[ox] * ub[ox];
      const double va = s.cov_norm * (uaa[ox] - mean_aa);
      const double vb = s.cov_norm * (ubb[ox] - mean_bb);
      const double vab = s.cov_norm * (uab[ox] - mean_ab);
      const double num = (2 * mean_ab + c1) * (2 * vab + c2);
      const double den = (mean_aa + mean_bb + c1) * (va + vb + c2);
      ua[ox] = num / den;
    }
    for (index_t ox = 0; ox < wo; ++ox) total += ua[ox];
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
