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
#include "../model.hpp"
#include "resample.hpp"

CVK_BEGIN_NAMESPACE

/// The upsampled grid RISE crops its masks from (see perturbation.hpp's contract).
enum class rise_upsample {
  paper,  ///< (cells + 1)·⌈D/cells⌉ samples, cells stretched by (cells + 1)/cells (RISE code)
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
    for (index_t i = 0; i < cells * cells; ++i)
      grid[i] = gen.uniform<double>() < keep ? T(1) : T(0);
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

/// image(c, y, x) = x(c, y, x)·mask(y, x), walking the image's memory order.
template <class T>
void rise_masked_image(strided_view<const T, 3> x, const T* mask, strided_view<T, 3> image) {
  const index_t channels = x.extent(0), height = x.extent(1), width = x.extent(2);
  if (image.stride(0) == 1) {  // channels innermost (NHWC batch)
    for (index_t yy = 0; yy < height; ++yy) {
      for (index_t xx = 0; xx < width; ++xx) {
        const T m = mask[yy * width + xx];
        for (index_t c = 0; c < channels; ++c) image(c, yy, xx) = x(c, yy, xx) * m;
      }
    }
  } else {
    for (index_t c = 0; c < channels; ++c) {
      for (index_t yy = 0; yy < height; ++yy) {
        const T* mrow = mask + yy * width;
        const T* in = &x(c, yy, 0);
        T* out = &image(c, yy, 0);
        if (x.stride(2) == 1) {  // the common contiguous row: vectorised
          for (index_t xx = 0; xx < width; ++xx) out[xx] = in[xx] * mrow[xx];
        } else {
          for (index_t xx = 0; xx < width; ++xx) out[xx] = in[xx * x.stride(2)] * mrow[xx];
        }
      }
    }
  }
}

/// RISE of the (n, c, h, w) inputs `x` into the N×H×W view `out`: model input i = n·masks + m
/// is x_n ⊙ M_m, filled batch by batch (each slot draws its mask into its own buffer); after
/// each batch its score-weighted masks are added to double sums, rows split across threads and
/// the mask index ascending at every pixel; out = sums / divisor.
template <class T, class F>
void rise_run(strided_view<const T, 4> x, F& f, const rise_generator<T>& gen, index_t masks,
              double divisor, const model_options& options, int threads, strided_view<T, 3> out,
              const char* fn) {
  const index_t images = x.extent(0), channels = x.extent(1), height = x.extent(2),
                width = x.extent(3);
  const index_t plane = height * width, count = images * masks;  // checked by the caller
  model_batches<T> batches(options, {channels, height, width}, false, fn, count);
  const index_t batch = batches.batch_size();
  const auto describe_batch = [&] {
    return std::to_string(batch) + " masks of " + std::to_string(height) + "×" +
           std::to_string(width);
  };
  auto mask_buffer =
      checked_vector<T>(checked_mul(batch, plane, fn, "the batch's masks", describe_batch), fn,
                        "the batch's masks", describe_batch);
  const index_t scratch_size = gen.scratch_size();
  auto scratch =
      checked_vector<T>(checked_mul(batch, scratch_size, fn, "the mask scratch", describe_batch),
                        fn, "the mask scratch", describe_batch);
  auto acc = checked_vector<double>(images * plane, fn, "the RISE sums", describe_batch);
  const auto mask_of = [&](index_t slot) -> strided_view<T, 2> {
    return {mask_buffer.data() + slot * plane, {height, width}};
  };

  batches.for_each(
      count, [&](index_t b) { batches.run_forward(f, b); },
      [&](index_t i, strided_view<T, 3> image) {
        const index_t n = i / masks, m = i % masks, slot = i % batch;
        const auto mask = mask_of(slot);
        gen.generate(static_cast<std::uint64_t>(m), mask, scratch.data() + slot * scratch_size);
        const strided_view<const T, 3> src(x.data() + n * x.stride(0), {channels, height, width},
                                           {x.stride(1), x.stride(2), x.stride(3)});
        rise_masked_image<T>(src, mask.data(), image);
      },
      [&](index_t i, index_t slot) {
        if (slot + 1 < batch && i + 1 < count) return;
        // The batch is complete: add its score-weighted masks; runs of slots of one image keep
        // the mask order at every pixel.
        const index_t first = i - slot;
        parallel_for(
            0, height, 4,
            [&](index_t lo, index_t hi) {
              for (index_t yy = lo; yy < hi; ++yy) {
                index_t j = 0;
                while (j <= slot) {
                  const index_t n = (first + j) / masks;
                  index_t end = j + 1;
                  while (end <= slot && (first + end) / masks == n) ++end;
                  const index_t base = j;
                  rise_accumulate_row<T>(
                      acc.data() + (n * height + yy) * width, yy, width, end - j,
                      [&](index_t k) { return batches.score(base + k); },
                      [&](index_t k) { return strided_view<const T, 2>(mask_of(base + k)); });
                  j = end;
                }
              }
            },
            threads);
      },
      threads);

  parallel_for(
      0, images * height, 16,
      [&](index_t lo, index_t hi) {
        for (index_t r = lo; r < hi; ++r) {
          const index_t n = r / height, yy = r % height;
          const double* row = acc.data() + r * width;
          for (index_t xx = 0; xx < width; ++xx) {
            out(n, yy, xx) = static_cast<T>(row[xx] / divisor);
          }
        }
      },
      threads);
}

/// Masks first .. first + count − 1 into the count×H×W view `out`, masks split across threads.
template <class T>
void rise_masks_run(const rise_generator<T>& gen, strided_view<T, 3> out, std::uint64_t first,
                    int threads) {
  const index_t height = out.extent(1), width = out.extent(2);
  const index_t scratch_size = gen.scratch_size();
  parallel_for(
      0, out.extent(0), 4,
      [&](index_t lo, index_t hi) {
        std::vector<T> scratch(static_cast<std::size_t>(scratch_size));
        for (index_t k = lo; k < hi; ++k) {
          strided_view<T, 2> plane(out.data() + k * out.stride(0), {height, width},
                                   {out.stride(1), out.stride(2)});
          gen.generate(first + static_cast<std::uint64_t>(k), plane, scratch.data());
        }
      },
      threads);
}

/// out(n) = Σ_m scores(n, m)·masks(m) / divisor (masks M×H×W, scores N×M), rows (n, y) split
/// across threads, the mask index ascending at every pixel.
template <class T>
void rise_accumulate_run(strided_view<const T, 3> masks, strided_view<const T, 2> scores,
                         double divisor, strided_view<T, 3> out, int threads) {
  const index_t count = masks.extent(0), height = masks.extent(1), width = masks.extent(2);
  const index_t images = scores.extent(0);
  parallel_for(
      0, images * height, 4,
      [&](index_t lo, index_t hi) {
        std::vector<double> row(static_cast<std::size_t>(width));
        for (index_t r = lo; r < hi; ++r) {
          const index_t n = r / height, yy = r % height;
          std::fill(row.begin(), row.end(), 0.0);
          rise_accumulate_row<T>(
              row.data(), yy, width, count, [&](index_t k) { return scores(n, k); },
              [&](index_t k) {
                return strided_view<const T, 2>(masks.data() + k * masks.stride(0), {height, width},
                                                {masks.stride(1), masks.stride(2)});
              });
          for (index_t xx = 0; xx < width; ++xx) {
            out(n, yy, xx) = static_cast<T>(row[static_cast<std::size_t>(xx)] / divisor);
          }
        }
      },
      threads);
}

}  // namespace detail
CVK_END_NAMESPACE
