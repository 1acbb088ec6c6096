// cvk — computer-vision kernels, header-only C++20.
// Eigen-CAM's first principal component (Muhammad & Yeasin 2020, as pytorch-grad-cam's
// utils/svd_on_activations.py get_2d_projection computes it): the H·W×K activation matrix of an
// image, NaN set to 0, each channel centred on its mean over the pixels, projected on its first
// right singular vector. The singular vector comes from the top eigenvector of the smaller Gram
// matrix (XᵀX when K <= H·W, else XXᵀ): Householder tridiagonalisation, bisection on the Sturm
// count for the largest eigenvalue, inverse iteration for its eigenvector, all in double and
// deterministic. The projection's sign is fixed so that its largest-magnitude value is positive.
// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <utility>
#include <vector>

#include "../../core/config.hpp"
#include "../../core/parallel.hpp"
#include "../../core/rng.hpp"
#include "../../core/strided_view.hpp"
#include "../../detail/checks.hpp"
#include "cam_kernels.hpp"

CVK_BEGIN_NAMESPACE
namespace detail {

/// A symmetric tridiagonal matrix: diagonal d[0, m), sub- and super-diagonal e[0, m − 1).
struct tridiagonal {
  std::vector<double> d, e;
};

/// Reduces the symmetric m×m matrix `a` (row-major, both triangles) to tridiagonal form
/// T = Qᵀ·A·Q with Q = H_0·H_1·…·H_{m−3}, H_k = I − tau[k]·v·vᵀ. The vector of H_k (zero in
/// its first k + 1 entries) is left in column k of `a` below the sub-diagonal start, rows
/// k + 1 … m − 1; tau[k] = 0 marks H_k = I.
inline tridiagonal householder_tridiagonalize(std::vector<double>& a, index_t m,
                                              std::vector<double>& tau) {
  const auto at = [&](index_t i, index_t j) -> double& {
    return a[static_cast<std::size_t>(i * m + j)];
  };
  tridiagonal t;
  t.d.assign(static_cast<std::size_t>(m), 0.0);
  t.e.assign(static_cast<std::size_t>(m > 0 ? m - 1 : 0), 0.0);
  tau.assign(static_cast<std::size_t>(m), 0.0);
  std::vector<double> p(static_cast<std::size_t>(m));
  for (index_t k = 0; k + 2 < m; ++k) {
    const index_t first = k + 1;  // the reflector acts on rows/columns [first, m)
    double tail = 0;
    for (index_t i = first + 1; i < m; ++i) tail += at(i, k) * at(i, k);
    const double x0 = at(first, k);
    if (tail == 0) {  // already tridiagonal in this column
      t.e[static_cast<std::size_t>(k)] = x0;
      continue;
    }
    const double norm = std::sqrt(x0 * x0 + tail);
    const double alpha = x0 >= 0 ? -norm : norm;  // no cancellation in v0 = x0 − alpha
    const double v0 = x0 - alpha;
    at(first, k) = v0;  // v = (v0, x1, x2, …) stays in column k
    const double h = 2.0 / (v0 * v0 + tail);
    tau[static_cast<std::size_t>(k)] = h;
    // B ← H·B·H for the trailing block B = a[first:, first:]: p = h·B·v, w = p − (h/2)(pᵀv)·v,
    // B ← B − v·wᵀ − w·vᵀ.
    double pv = 0;
    for (index_t i = first; i < m; ++i) {
      double s = 0;
      for (index_t j = first; j < m; ++j) s += at(i, j) * at(j, k);
      p[static_cast<std::size_t>(i)] = h * s;
      pv += p[static_cast<std::size_t>(i)] * at(i, k);
    }
    const double half = 0.5 * h * pv;
    for (index_t i = first; i < m; ++i) p[static_cast<std::size_t>(i)] -= half * at(i, k);
    for (index_t i = first; i < m; ++i) {
      const double vi = at(i, k), wi = p[static_cast<std::size_t>(i)];
      for (index_t j = first; j < m; ++j) {
        at(i, j) -= vi * p[static_cast<std::size_t>(j)] + wi * at(j, k);
      }
    }
    t.e[static_cast<std::size_t>(k)] = alpha;
  }
  for (index_t i = 0; i < m; ++i) t.d[static_cast<std::size_t>(i)] = at(i, i);
  if (m >= 2) t.e[static_cast<std::size_t>(m - 2)] = at(m - 1, m - 2);
  return t;
}

/// Number of eigenvalues of t below x (Sturm count of the LDLᵀ pivots; a pivot smaller than
/// `pivmin` in magnitude counts as −pivmin, as LAPACK's dlaebz).
inline index_t sturm_count(const tridiagonal& t, double x, double pivmin) noexcept {
  index_t count = 0;
  double q = 1;
  for (std::size_t i = 0; i < t.d.size(); ++i) {
    const double off = i == 0 ? 0.0 : t.e[i - 1] * t.e[i - 1] / q;
    q = t.d[i] - x - off;
    if (std::fabs(q) < pivmin) q = -pivmin;
    if (q < 0) ++count;
  }
  return count;
}

/// Largest eigenvalue of t by bisection, to a few ulps of the matrix's scale.
inline double largest_eigenvalue(const tridiagonal& t, double scale) {
  const auto m = static_cast<index_t>(t.d.size());
  double lo = std::numeric_limits<double>::infinity(), hi = -lo, emax = 0;
  for (std::size_t i = 0; i < t.d.size(); ++i) {
    const double r =
        (i > 0 ? std::fabs(t.e[i - 1]) : 0.0) + (i + 1 < t.d.size() ? std::fabs(t.e[i]) : 0.0);
    lo = std::min(lo, t.d[i] - r);
    hi = std::max(hi, t.d[i] + r);
    if (i + 1 < t.d.size()) emax = std::max(emax, t.e[i] * t.e[i]);
  }
  const double pivmin = std::numeric_limits<double>::min() * std::max(1.0, emax);
  const double slack = 4 * std::numeric_limits<double>::epsilon() * scale + pivmin;
  double a = lo - slack, b = hi + slack;  // count(a) = 0 <= m − 1, count(b) = m
  for (int iteration = 0; iteration < 256 && b - a > slack; ++iteration) {
    const double mid = a + 0.5 * (b - a);
    if (mid <= a || mid >= b) break;
    if (sturm_count(t, mid, pivmin) == m) {
      b = mid;  // every eigenvalue is below mid
    } else {
      a = mid;
    }
  }
  return a + 0.5 * (b - a);
}

/// One solve of (t − lambda·I)·y = y in place, Gaussian elimination with partial pivoting on
/// the tridiagonal (pivots smaller than `tiny` in magnitude replaced by ±tiny, as inverse
/// iteration needs for a nearly singular matrix).
inline void shifted_tridiagonal_solve(const tridiagonal& t, double lambda, double tiny,
                                      std::vector<double>& y) {
  const std::size_t m = t.d.size();
  std::vector<double> u0(m), u1(m), u2(m), mult(m);
  std::vector<char> swapped(m, 0);
  const auto guard = [tiny](double v) { return std::fabs(v) < tiny ? (v < 0 ? -tiny : tiny) : v; };
  double diag = t.d[0] - lambda;  // the row being eliminated: entries at i, i + 1
  double super = m > 1 ? t.e[0] : 0.0;
  for (std::size_t i = 0; i + 1 < m; ++i) {
    const double sub = t.e[i];  // entry (i + 1, i)
    const double next_diag = t.d[i + 1] - lambda;
    const double next_super = i + 2 < m ? t.e[i + 1] : 0.0;
    if (std::fabs(diag) >= std::fabs(sub)) {
      diag = guard(diag);
      mult[i] = sub / diag;
      u0[i] = diag;
      u1[i] = super;
      u2[i] = 0;
      diag = next_diag - mult[i] * super;
      super = next_super;
    } else {
      swapped[i] = 1;
      mult[i] = diag / sub;
      u0[i] = sub;
      u1[i] = next_diag;
      u2[i] = next_super;
      diag = super - mult[i] * next_diag;
      super = -mult[i] * next_super;
    }
  }
  u0[m - 1] = guard(diag);
  for (std::size_t i = 0; i + 1 < m; ++i) {
    if (swapped[i] != 0) std::swap(y[i], y[i + 1]);
    y[i + 1] -= mult[i] * y[i];
  }
  for (std::size_t i = m; i-- > 0;) {
    double s = y[i];
    if (i + 1 < m) s -= u1[i] * y[i + 1];
    if (i + 2 < m) s -= u2[i] * y[i + 2];
    y[i] = s / u0[i];
  }
}

/// Scales v to unit length (left as is when it is 0).
inline void normalize_vector(std::vector<double>& v) {
  double largest = 0;
  for (const double x : v) largest = std::max(largest, std::fabs(x));
  if (!(largest > 0) || !std::isfinite(largest)) return;
  double s = 0;
  for (double& x : v) {
    x /= largest;
    s += x * x;
  }
  const double inv = 1.0 / std::sqrt(s);
  for (double& x : v) x *= inv;
}

/// The unit eigenvector of the largest eigenvalue of the symmetric m×m matrix `a` (row-major,
/// both triangles; overwritten). Deterministic; its sign is arbitrary (the caller fixes it).
inline std::vector<double> top_eigenvector(std::vector<double>& a, index_t m) {
  std::vector<double> y(static_cast<std::size_t>(m), 0.0);
  if (m == 0) return y;
  double scale = 0;
  for (const double x : a) scale = std::max(scale, std::fabs(x));
  if (m == 1 || scale == 0) {
    y[0] = 1;
    return y;
  }
  std::vector<double> tau;
  const tridiagonal t = householder_tridiagonalize(a, m, tau);
  double norm = 0;  // max row sum of |t|, the Gershgorin scale
  for (std::size_t i = 0; i < t.d.size(); ++i) {
    norm = std::max(norm, std::fabs(t.d[i]) + (i > 0 ? std::fabs(t.e[i - 1]) : 0.0) +
                              (i + 1 < t.d.size() ? std::fabs(t.e[i]) : 0.0));
  }
  const double lambda = largest_eigenvalue(t, norm);
  // Inverse iteration from a fixed pseudo-random start (never orthogonal to the eigenvector
  // but by accident of measure zero); three solves, each normalised.
  rng start(0x5eed'ca11'e16e'0001ULL);
  for (double& v : y) v = start.uniform<double>(-1.0, 1.0);
  const double tiny = std::numeric_limits<double>::epsilon() * norm;
  for (int solve = 0; solve < 3; ++solve) {
    shifted_tridiagonal_solve(t, lambda, tiny, y);
    normalize_vector(y);
  }
  // y ← Q·y = H_0·(H_1·(… H_{m−3}·y)).
  for (index_t k = m - 3; k >= 0; --k) {
    const double h = tau[static_cast<std::size_t>(k)];
    if (h == 0) continue;
    double s = 0;
    for (index_t i = k + 1; i < m; ++i) {
      s += a[static_cast<std::size_t>(i * m + k)] * y[static_cast<std::size_t>(i)];
    }
    s *= h;
    for (index_t i = k + 1; i < m; ++i) {
      y[static_cast<std::size_t>(i)] -= s * a[static_cast<std::size_t>(i * m + k)];
    }
  }
  normalize_vector(y);
  return y;
}

/// The Eigen-CAM map of image n of the (n, c, h, w)-ordered activations `a` into out(n, ·, ·):
/// X = the H·W×K matrix of the image (NaN read as 0), each column centred on its mean when
/// `center`, projected on X's first right singular vector v (map = X·v), the sign chosen so
/// that the value of largest magnitude (the first in row-major order on ties) is positive;
/// ReLU when `relu`. Non-finite activations (±inf) give a NaN map; a zero X gives zeros.
template <class T>
void eigen_cam_image(const strided_view<const T, 4>& a, index_t n, bool center, bool relu,
                     const strided_view<T, 3>& out, const char* fn) {
  const index_t channels = a.extent(1), h = a.extent(2), w = a.extent(3), hw = h * w;
  if (hw == 0) return;
  const auto write = [&](const std::vector<double>& map, double factor) {
    for (index_t y = 0; y < h; ++y) {
      for (index_t x = 0; x < w; ++x) {
        const auto v = static_cast<T>(map[static_cast<std::size_t>(y * w + x)] * factor);
        out(n, y, x) = relu ? (v < T(0) ? T(0) : v) : v;
      }
    }
  };
  std::vector<double> projection(static_cast<std::size_t>(hw), 0.0);
  if (channels == 0) {
    write(projection, 1.0);
    return;
  }
  const auto describe = [&] { return a.shape_string(); };
  const index_t size = checked_mul(hw, channels, fn, "an image's activation matrix", describe);
  // X, pixel-major: X[p·K + k] = a(n, k, p) − mean_k. The means first (a pass per channel),
  // then X row by row, so that X is written in order.
  const auto value = [&](index_t k, index_t y, index_t xx) {
    const auto v = static_cast<double>(a(n, k, y, xx));
    return std::isnan(v) ? 0.0 : v;  // get_2d_projection zeroes NaN
  };
  std::vector<double> mean(static_cast<std::size_t>(channels), 0.0);
  if (center) {
    for (index_t k = 0; k < channels; ++k) {
      double sum = 0;
      for (index_t y = 0; y < h; ++y) {
        for (index_t xx = 0; xx < w; ++xx) sum += value(k, y, xx);
      }
      mean[static_cast<std::size_t>(k)] = sum / static_cast<double>(hw);
    }
  }
  std::vector<double> x =
      checked_vector<double>(size, fn, "an image's activation matrix", describe);
  for (index_t y = 0; y < h; ++y) {
    for (index_t xx = 0; xx < w; ++xx) {
      double* row = x.data() + (y * w + xx) * channels;
      for (index_t k = 0; k < channels; ++k) {
        row[k] = value(k, y, xx) - mean[static_cast<std::size_t>(k)];
      }
    }
  }
  // Scale X to a largest magnitude of 1 (the Gram matrix can then neither overflow nor lose
  // its small entries); the projection is scaled back at the end.
  double largest = 0;
  bool finite = true;
  for (const double v : x) {
    finite = finite && std::isfinite(v);
    largest = std::max(largest, std::fabs(v));
  }
  if (!finite) {
    write(projection, std::numeric_limits<double>::quiet_NaN());
    return;
  }
  if (largest == 0) {
    write(projection, 1.0);
    return;
  }
  for (double& v : x) v /= largest;
  const auto xs = [&](index_t p, index_t k) -> double {
    return x[static_cast<std::size_t>(p * channels + k)];
  };
  if (channels <= hw) {
    // XᵀX (K×K); v its top eigenvector; map = X·v.
    std::vector<double> gram =
        checked_vector<double>(checked_mul(channels, channels, fn, "the Gram matrix", describe), fn,
                               "the Gram matrix", describe);
    for (index_t p = 0; p < hw; ++p) {
      const double* row = x.data() + p * channels;
      for (index_t i = 0; i < channels; ++i) {
        double* g = gram.data() + i * channels;
        const double ri = row[i];
        for (index_t j = i; j < channels; ++j) g[j] += ri * row[j];
      }
    }
    for (index_t i = 0; i < channels; ++i) {
      for (index_t j = 0; j < i; ++j) {
        gram[static_cast<std::size_t>(i * channels + j)] =
            gram[static_cast<std::size_t>(j * channels + i)];
      }
    }
    const std::vector<double> v = top_eigenvector(gram, channels);
    for (index_t p = 0; p < hw; ++p) {
      const double* row = x.data() + p * channels;
      projection[static_cast<std::size_t>(p)] = lane_sum<double>(
          channels, [&](index_t k) { return row[k] * v[static_cast<std::size_t>(k)]; });
    }
  } else {
    // XXᵀ (H·W×H·W); u its top eigenvector; v = Xᵀu/|Xᵀu|, map = X·v.
    std::vector<double> gram = checked_vector<double>(
        checked_mul(hw, hw, fn, "the Gram matrix", describe), fn, "the Gram matrix", describe);
    for (index_t p = 0; p < hw; ++p) {
      const double* row_p = x.data() + p * channels;
      for (index_t q = p; q < hw; ++q) {
        const double* row_q = x.data() + q * channels;
        const double s = lane_sum<double>(channels, [&](index_t k) { return row_p[k] * row_q[k]; });
        gram[static_cast<std::size_t>(p * hw + q)] = s;
        gram[static_cast<std::size_t>(q * hw + p)] = s;
      }
    }
    const std::vector<double> u = top_eigenvector(gram, hw);
    std::vector<double> v(static_cast<std::size_t>(channels), 0.0);
    for (index_t p = 0; p < hw; ++p) {
      for (index_t k = 0; k < channels; ++k) {
        v[static_cast<std::size_t>(k)] += u[static_cast<std::size_t>(p)] * xs(p, k);
      }
    }
    normalize_vector(v);
    for (index_t p = 0; p < hw; ++p) {
      const double* row = x.data() + p * channels;
      projection[static_cast<std::size_t>(p)] = lane_sum<double>(
          channels, [&](index_t k) { return row[k] * v[static_cast<std::size_t>(k)]; });
    }
  }
  // Sign: the value of largest magnitude positive (sklearn's svd_flip on U; Seg-Eigen-CAM's
  // |min| > |max| correction in pytorch-grad-cam); the first one in row-major order on ties.
  std::size_t top = 0;
  for (std::size_t i = 1; i < projection.size(); ++i) {
    if (std::fabs(projection[i]) > std::fabs(projection[top])) top = i;
  }
  write(projection, projection[top] < 0 ? -largest : largest);
}

/// Eigen-CAM maps of every image, one image per task.
template <class T>
void eigen_cam_run(const strided_view<const T, 4>& a, bool center, bool relu,
                   const strided_view<T, 3>& out, int threads, const char* fn) {
  (void)checked_mul(a.extent(2), a.extent(3), fn, "activations' planes",
                    [&] { return a.shape_string(); });
  parallel_for(
      0, a.extent(0), 1,
      [&](index_t lo, index_t hi) {
        for (index_t n = lo; n < hi; ++n) eigen_cam_image(a, n, center, relu, out, fn);
      },
      threads);
}

}  // namespace detail
CVK_END_NAMESPACE
