// cvk — computer-vision kernels, header-only C++20.
// channel_shuffle's permutation and the copy that applies a channel permutation to an
// (n, c, h, w)-ordered view of any strides: per pixel over contiguous channels when channels are
// the finer axis (NHWC), plane by plane otherwise (NCHW).
// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

#include "../../core/config.hpp"
#include "../../core/errors.hpp"
#include "../../core/parallel.hpp"
#include "../../core/strided_view.hpp"
#include "../../detail/checks.hpp"

CVK_BEGIN_NAMESPACE
namespace detail {

/// Checks groups >= 1 dividing `channels`; `shapes` describes the argument for the message.
inline void check_shuffle_groups(index_t channels, index_t groups, const char* fn,
                                 const std::string& shapes) {
  if (groups < 1) {
    CVK_THROW(invalid_argument,
              std::string(fn) + ": groups must be >= 1, got " + std::to_string(groups));
  }
  if (channels % groups != 0) {
    CVK_THROW(shape_error, std::string(fn) + ": groups (" + std::to_string(groups) +
                               ") must divide the channels (" + std::to_string(channels) + "); " +
                               shapes);
  }
}

/// Output channel c reads input channel perm[c]. The shuffle (torch: view (g, C/g), transpose,
/// flatten) reads (c % g)·(C/g) + c / g; its inverse reads (c % (C/g))·g + c / (C/g).
inline std::vector<index_t> shuffle_permutation(index_t channels, index_t groups, bool inverse,
                                                const char* fn) {
  auto perm = checked_vector<index_t>(channels, fn, "the permutation",
                                      "of " + std::to_string(channels) + " channels");
  const index_t per_group = channels / groups;
  for (index_t c = 0; c < channels; ++c) {
    perm[static_cast<std::size_t>(c)] =
        inverse ? (c % per_group) * groups + c / per_group : (c % groups) * per_group + c / groups;
  }
  return perm;
}

/// out[n, c, h, w] = in[n, perm[c], h, w] over (n, c, h, w)-ordered views of equal extents.
template <class T>
void permute_channels(const strided_view<const T, 4>& in, const strided_view<T, 4>& out,
                      const std::vector<index_t>& perm, int threads) {
  const index_t batch = in.extent(0), channels = in.extent(1), height = in.extent(2),
                width = in.extent(3);
  if (batch == 0 || channels == 0 || height == 0 || width == 0) return;
  const index_t* source = perm.data();
  const index_t ic = in.stride(1), oc = out.stride(1);
  if (channels > 1 && std::abs(oc) <= std::abs(out.stride(3))) {
    // Channels innermost: one pixel's channels at a time, rows of pixels per work unit.
    parallel_for(
        0, batch * height, std::max<index_t>(1, (index_t{1} << 15) / (width * channels)),
        [&](index_t lo, index_t hi) {
          for (index_t r = lo; r < hi; ++r) {
            const index_t n = r / height, y = r % height;
            for (index_t x = 0; x < width; ++x) {
              const T* s = in.data() + n * in.stride(0) + y * in.stride(2) + x * in.stride(3);
              T* d = out.data() + n * out.stride(0) + y * out.stride(2) + x * out.stride(3);
              for (index_t c = 0; c < channels; ++c) d[c * oc] = s[source[c] * ic];
            }
          }
        },
        threads);
    return;
  }
  // Planes: each output channel is one input channel's H×W plane.
  parallel_for(
      0, batch * channels, std::max<index_t>(1, (index_t{1} << 15) / (height * width)),
      [&](index_t lo, index_t hi) {
        for (index_t p = lo; p < hi; ++p) {
          const index_t n = p / channels, c = p % channels;
          const T* s = in.data() + n * in.stride(0) + source[c] * ic;
          T* d = out.data() + n * out.stride(0) + c * oc;
          for (index_t y = 0; y < height; ++y) {
            const T* srow = s + y * in.stride(2);
            T* drow = d + y * out.stride(2);
            if (in.stride(3) == 1 && out.stride(3) == 1) {
              std::copy(srow, srow + width, drow);
            } else {
              for (index_t x = 0; x < width; ++x) drow[x * out.stride(3)] = srow[x * in.stride(3)];
            }
          }
        }
      },
      threads);
}

}  // namespace detail
CVK_END_NAMESPACE
