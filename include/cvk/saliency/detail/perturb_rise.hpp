// cvk — computer-vision kernels, header-only C++20.
// RISE internals (Petsiuk et al., BMVC 2018): the mask of index m — a cells×cells binary grid
// drawn from cvk::rng(seed, m), bilinearly upsampled and cropped at a random shift — computed
// straight into the H×W crop by two separable passes over per-axis tap tables, and the
// accumulation Σ_m score_m·M_m in double, mask index ascending for every pixel.
// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "../../core/config.hpp"
#include "../../core/errors.hpp"
#include "../../core/parallel.hpp"
#include "../../core/rng.hpp"
#include "../../core/strided_view.hpp"
#include "../../detail/checks.hpp"
#include "resample.hpp"

CVK_BEGIN_NAMESPACE

/// The upsampled grid RISE crops its masks from (see perturbation.hpp's contract).
enum class rise_upsample {
  paper,    ///< (cells + 1)·⌈D/cells⌉ samples, cells stretched by (cells + 1)/cells (RISE code)
  torchray  ///< D + ⌈D/cells⌉ samples of cells of ⌈(D + ⌈D/cells⌉)/cells⌉ (TorchRay's rise)
};

/// How the weighted sum of masks is normalised.
enum class rise_normalization {
  paper,    ///< Σ_m f_m·M_m / (masks·p), Petsiuk et al. eq. 6
  torchray  ///< Σ_m f_m·M_m / masks (TorchRay's rise)
};

namespace detail {

/// One axis of the masks: the upsampled extent, the crop's extent and the shift range, and for
/// every upsampled index its two grid taps (mirrored into [0, cells)) and the second's weight.
template <class T>
struct rise_axis {
  index_t extent = 0;  // D, the image's
  index_t cell = 1;    // ⌈D/cells⌉: shifts are drawn in [0, cell)
  std::vector<index_t> tap0, tap1;
  std::vector<T> weight1;  // value = grid[tap0] + weight1·(grid[tap1] − grid[tap0])
};

/// The taps of an axis of `extent` samples (extent >= 1) for `cells` cells (>= 1).
template <class T>
rise_axis<T> make_rise_axis(index_t extent, index_t cells, rise_upsample mode) {
  rise_axis<T> a;
  a.extent = extent;
  a.cell = (extent + cells - 1) / cells;
  // Source coordinate of upsampled index o: (o + 0.5)·scale − 0.5 in grid units, torch's and
  // skimage's half-pixel mapping. paper: skimage.transform.resize of the grid to
  // (cells + 1)·cell with mode='reflect'; torchray: F.interpolate(align_corners=False) of the
  // grid reflect-padded by one cell to cell'·(cells + 2), then cropped by cell', which samples
  // the same coordinate (o + 0.5)/cell' − 0.5 with cell' = ⌈(D + cell)/cells⌉.
  index_t up = 0;
  double scale = 1;
  if (mode == rise_upsample::paper) {
    up = (cells + 1) * a.cell;
    scale = static_cast<double>(cells) / static_cast<double>(up);
  } else {
    up = extent + a.cell;
    scale = 1.0 / static_cast<double>((up + cells - 1) / cells);
  }
  a.tap0.resize(static_cast<std::size_t>(up));
  a.tap1.resize(static_cast<std::size_t>(up));
  a.weight1.resize(static_cast<std::size_t>(up));
  for (index_t o = 0; o < up; ++o) {
    const double real = (static_cast<double>(o) + 0.5) * scale - 0.5;
    const double below = std::floor(real);
    const auto i0 = static_cast<index_t>(below);
    const auto u = static_cast<std::size_t>(o);
    // Both references mirror without repeating the edge (numpy/torch "reflect").
    a.tap0[u] = blur_source_index(i0, cells, blur_border::reflect);
    a.tap1[u] = blur_source_index(i0 + 1, cells, blur_border::reflect);
    a.weight1[u] = static_cast<T>(real - below);
  }
  return a;
}

/// a + w·(b − a): exactly a when a == b, and between a and b for w in [0, 1].
template <class T>
inline T rise_lerp(T a, T b, T w) noexcept {
  return a + w * (b - a);
}

/// The mask generator of one call: tap tables and the draw parameters.
template <class T>
struct rise_generator {
  index_t cells = 7;
  double keep = 0.5;
  std::uint64_t seed = 0;
  rise_axis<T> rows, cols;

  /// Scratch one mask needs: the grid (cells² values) and the horizontally interpolated grid
  /// rows (cells·W values).
  [[nodiscard]] index_t scratch_size() const noexcept {
    return cells * cells + cells * cols.extent;
  }

  /// Writes mask `m` into the H×W view `mask`. Draws, in order, from cvk::rng(seed, m): the
  /// grid row by row (cell = 1 when uniform < p), then the row shift, then the column shift.
  void generate(std::uint64_t m, strided_view<T, 2> mask, T* scratch) const noexcept {
    rng gen(seed, m);
    T* grid = scratch;
    T* lines = scratch + cells * cells;
    for (index_t i = 0; i < cells * cells; ++i) grid[i] = gen.uniform<double>() < keep ? T(1) : T(0);
    const auto shift_y = static_cast<index_t>(gen.below(static_cast<std::uint64_t>(rows.cell)));
    const auto shift_x = static_cast<index_t>(gen.below(static_cast<std::uint64_t>(cols.cell)));
    upsample(grid, shift_y, shift_x, mask, lines);
  }

  /// The mask of a given cells×cells grid (row-major) and shift: M(y, x) = up(sy + y, sx + x).
  /// `lines` holds cells·W values of scratch.
  void upsample(const T* grid, index_t shift_y, index_t shift_x, strided_view<T, 2> mask,
                T* lines) const noexcept {
    const index_t width = cols.extent, height = rows.extent;
    // Horizontal pass: every grid row interpolated at the crop's columns.
    for (index_t r = 0; r < cells; ++r) {
      const T* g = grid + r * cells;
      T* line = lines + r * width;
      for (index_t x = 0; x < width; ++x) {
        const auto u = static_cast<std::size_t>(shift_x + x);
        line[x] = rise_lerp(g[cols.tap0[u]], g[cols.tap1[u]], cols.weight1[u]);
      }
    }
    // Vertical pass: each mask row between two interpolated lines.
    for (index_t y = 0; y < height; ++y) {
      const auto u = static_cast<std::size_t>(shift_y + y);
      const T* a = lines + rows.tap0[u] * width;
      const T* b = lines + rows.tap1[u] * width;
      const T w = rows.weight1[u];
      T* out = mask.data() + y * mask.stride(0);
      const index_t step = mask.stride(1);
      if (step == 1) {
        for (index_t x = 0; x < width; ++x) out[x] = rise_lerp(a[x], b[x], w);
      } else {
        for (index_t x = 0; x < width; ++x) out[x * step] = rise_lerp(a[x], b[x], w);
      }
    }
  }
};

template <class T>
rise_generator<T> make_rise_generator(index_t height, index_t width, index_t cells, double keep,
                                      std::uint64_t seed, rise_upsample mode) {
  rise_generator<T> g;
  g.cells = cells;
  g.keep = keep;
  g.seed = seed;
  g.rows = make_rise_axis<T>(height, cells, mode);
  g.cols = make_rise_axis<T>(width, cells, mode);
  return g;
}

/// row[x] += Σ_j score(j)·mask_j(y, x) for x in [0, width), the masks j in [0, count) in
/// ascending order; each product and sum in double.
template <class T, class Score, class Mask>
void rise_accumulate_row(double* row, index_t y, index_t width, index_t count, Score&& score,
                         Mask&& mask) {
  for (index_t j = 0; j < count; ++j) {
    const double s = static_cast<double>(score(j));
    const strided_view<const T, 2> m = mask(j);
    const T* in = m.data() + y * m.stride(0);
    const index_t step = m.stride(1);
    if (step == 1) {
      for (index_t x = 0; x < width; ++x) row[x] += s * static_cast<double>(in[x]);
    } else {
      for (index_t x = 0; x < width; ++x) row[x] += s * static_cast<double>(in[x * step]);
    }
  }
}

/// The divisor of the normalisation: masks·p (paper) or masks (torchray).
inline double rise_divisor(rise_normalization n, index_t masks, double keep) noexcept {
  const double count = static_cast<double>(masks);
  return n == rise_normalization::paper ? count * keep : count;
}

}  // namespace detail
CVK_END_NAMESPACE
