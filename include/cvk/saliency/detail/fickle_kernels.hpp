// cvk — computer-vision kernels, header-only C++20.
// FickleNet internals (Lee et al., CVPR 2019): the map expansion that lays every s×s window of a
// feature map side by side, its adjoint, the center-fixed dropout mask on the expanded map, and
// the per-pixel reductions over the sampled localisation maps.
// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "../../core/config.hpp"
#include "../../core/errors.hpp"
#include "../../core/parallel.hpp"
#include "../../core/rng.hpp"
#include "../../core/strided_view.hpp"
#include "../../detail/checks.hpp"

CVK_BEGIN_NAMESPACE

/// How fickle_aggregate reduces the sampled maps (see fickle.hpp's contract).
enum class fickle_aggregation { mean, max, threshold_union, vote };

/// Whether the dropout mask draws every element of the expanded map (per_element, FickleNet's
/// element-wise dropout) or one value per position shared by all channels (per_position).
enum class fickle_mask_sharing { per_element, per_position };

namespace detail {

/// out(n, k, i·s + a, j·s + b) = in(n, k, i + a − r, j + b − r), 0 outside (r = (s − 1)/2);
/// (n, c, h, w)-ordered views, out n×k×(s·h)×(s·w). Rows (n, Y) split across threads.
template <class T>
void fickle_expand_kernel(strided_view<const T, 4> in, strided_view<T, 4> out, index_t s,
                          int threads) {
  const index_t batch = in.extent(0), channels = in.extent(1), height = in.extent(2),
                width = in.extent(3);
  const index_t r = (s - 1) / 2, rows = s * height, cols = s * width;
  const bool channels_inner = out.stride(1) == 1 && channels > 1;
  parallel_for(
      0, batch * rows, 4,
      [&](index_t lo, index_t hi) {
        for (index_t q = lo; q < hi; ++q) {
          const index_t n = q / rows, yy = q % rows;
          const index_t y = yy / s + yy % s - r;
          const bool row_inside = y >= 0 && y < height;
          const auto source = [&](index_t k, index_t xx) -> T {
            const index_t x = xx / s + xx % s - r;
            return row_inside && x >= 0 && x < width ? in(n, k, y, x) : T(0);
          };
          if (channels_inner) {
            for (index_t xx = 0; xx < cols; ++xx) {
              for (index_t k = 0; k < channels; ++k) out(n, k, yy, xx) = source(k, xx);
            }
          } else {
            for (index_t k = 0; k < channels; ++k) {
              for (index_t xx = 0; xx < cols; ++xx) out(n, k, yy, xx) = source(k, xx);
            }
          }
        }
      },
      threads);
}

/// The adjoint of fickle_expand_kernel: grad_in(n, k, y, x) = Σ_a Σ_b grad_out(n, k,
/// (y − a + r)·s + a, (x − b + r)·s + b) over the windows inside the map, a then b ascending.
template <class T>
void fickle_expand_backward_kernel(strided_view<const T, 4> grad_out, strided_view<T, 4> grad_in,
                                   index_t s, int threads) {
  const index_t batch = grad_in.extent(0), channels = grad_in.extent(1), height = grad_in.extent(2),
                width = grad_in.extent(3);
  const index_t r = (s - 1) / 2;
  parallel_for(
      0, batch * height, 4,
      [&](index_t lo, index_t hi) {
        for (index_t q = lo; q < hi; ++q) {
          const index_t n = q / height, y = q % height;
          for (index_t k = 0; k < channels; ++k) {
            for (index_t x = 0; x < width; ++x) {
              T sum = T(0);
              for (index_t a = 0; a < s; ++a) {
                const index_t i = y - a + r;
                if (i < 0 || i >= height) continue;
                for (index_t b = 0; b < s; ++b) {
                  const index_t j = x - b + r;
                  if (j < 0 || j >= width) continue;
                  sum += grad_out(n, k, i * s + a, j * s + b);
                }
              }
              grad_in(n, k, y, x) = sum;
            }
          }
        }
      },
      threads);
}

/// The center-fixed dropout mask of one sample into the (n, c, h, w)-ordered view `out`
/// (n×k′×(s·h)×(s·w), k′ = K or 1): drawn from cvk::rng(seed, sample) in the order n, c, row,
/// column; a window centre (row % s == r and column % s == r) is `centre` without a draw,
/// every other element is dropped (0) when uniform() < p, else `kept`.
template <class T>
void fickle_mask_kernel(strided_view<T, 4> out, index_t s, double p, T kept, T centre,
                        std::uint64_t seed, std::uint64_t sample) {
  rng gen(seed, sample);
  const index_t r = (s - 1) / 2;
  for (index_t n = 0; n < out.extent(0); ++n) {
    for (index_t k = 0; k < out.extent(1); ++k) {
      for (index_t yy = 0; yy < out.extent(2); ++yy) {
        const bool centre_row = yy % s == r;
        for (index_t xx = 0; xx < out.extent(3); ++xx) {
          if (centre_row && xx % s == r) {
            out(n, k, yy, xx) = centre;
          } else {
            out(n, k, yy, xx) = gen.uniform<double>() < p ? T(0) : kept;
          }
        }
      }
    }
  }
}

/// Running per-pixel reduction of the sampled maps (N×H×W, in double).
class fickle_reduction {
 public:
  fickle_reduction(fickle_aggregation mode, double threshold, index_t images, index_t height,
                   index_t width, const char* fn)
      : mode_(mode), threshold_(threshold), images_(images) {
    const auto describe = [&] {
      return std::to_string(images) + "×" + std::to_string(height) + "×" + std::to_string(width);
    };
    plane_ = checked_mul(height, width, fn, "the aggregated maps", describe);
    values_ =
        checked_vector<double>(checked_mul(images, plane_, fn, "the aggregated maps", describe), fn,
                               "the aggregated maps", describe);
  }

  /// Adds one sample's maps: `map(n, p)` reads pixel p (row-major) of image n. Images split
  /// across threads; every pixel is updated by one thread, samples in order.
  template <class Map>
  void add(Map&& map, int threads) {
    const bool first = samples_ == 0;
    ++samples_;
    parallel_for(
        0, images_, 1,
        [&](index_t lo, index_t hi) {
          for (index_t n = lo; n < hi; ++n) add_image(n, map, first);
        },
        threads);
  }

  /// The result of image n pixel p.
  [[nodiscard]] double result(index_t n, index_t p) const noexcept {
    const double v = values_[static_cast<std::size_t>(n * plane_ + p)];
    switch (mode_) {
      case fickle_aggregation::mean:
      case fickle_aggregation::vote:
        return v / static_cast<double>(samples_);
      case fickle_aggregation::max:
      case fickle_aggregation::threshold_union:
        break;
    }
    return v;
  }

 private:
  template <class Map>
  void add_image(index_t n, Map& map, bool first) {
    double* out = values_.data() + n * plane_;
    switch (mode_) {
      case fickle_aggregation::mean:
        for (index_t p = 0; p < plane_; ++p) out[p] += map(n, p);
        return;
      case fickle_aggregation::max:
        for (index_t p = 0; p < plane_; ++p) {
          const double v = map(n, p);
          out[p] = first ? v : std::max(out[p], v);
        }
        return;
      case fickle_aggregation::threshold_union:
      case fickle_aggregation::vote:
        break;
    }
    // A pixel is selected when its value reaches threshold·(the image's maximum) and that
    // maximum is positive: an all-zero (or all-negative) map selects nothing.
    double peak = -std::numeric_limits<double>::infinity();
    for (index_t p = 0; p < plane_; ++p) peak = std::max(peak, static_cast<double>(map(n, p)));
    if (!(peak > 0)) return;
    const double level = threshold_ * peak;
    for (index_t p = 0; p < plane_; ++p) {
      if (!(map(n, p) >= level)) continue;
      if (mode_ == fickle_aggregation::vote) {
        out[p] += 1.0;
      } else {
        out[p] = 1.0;
      }
    }
  }

  fickle_aggregation mode_;
  double threshold_;
  index_t images_, plane_ = 0;
  index_t samples_ = 0;
  std::vector<double> values_;
};

}  // namespace detail
CVK_END_NAMESPACE
