// cvk — computer-vision kernels, header-only C++20.
// The engine behind the pairwise (N×M) and aligned (N) IoU-family operators: inputs of any
// strides and formats are packed once into structure-of-arrays form, then a row of A is
// compared with a cache-sized tile of B in a loop the compiler vectorizes; rows are spread over
// threads with parallel_for (each output row is written by one thread, so results do not
// depend on the thread count).
// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <type_traits>
#include <vector>

#include "../../core/config.hpp"
#include "../../core/parallel.hpp"
#include "../../core/strided_view.hpp"
#include "../format.hpp"
#include "pair_math.hpp"

CVK_BEGIN_NAMESPACE
namespace detail {

/// Row i of an N×(2·Dim) box view as corners (lo..., hi...), converted to xyxy for 2-D boxes.
template <class R, std::size_t Dim, class View>
constexpr std::array<R, 2 * Dim> load_corners(const View& boxes, index_t i,
                                              box_format format) noexcept {
  std::array<R, 2 * Dim> c{};
  for (std::size_t k = 0; k < 2 * Dim; ++k)
    c[k] = static_cast<R>(boxes(i, static_cast<index_t>(k)));
  if constexpr (Dim == 2) {
    if (format != box_format::xyxy) c = to_xyxy(c, format, box_convention{});
  }
  return c;
}

/// Boxes prepared and stored as structure of arrays (one contiguous array per field).
template <class R, std::size_t Dim>
class packed_boxes {
 public:
  // Field layout: lo[Dim], hi[Dim], volume, centre[Dim], aspect_angle.
  static constexpr std::size_t fields = 3 * Dim + 2;

  /// Aspect: compute the aspect angle (an atan per box; only CIoU reads it).
  template <bool Aspect = true, class View>
  packed_boxes(const View& boxes, box_format format, std::bool_constant<Aspect> = {})
      : count_(boxes.extent(0)), values_(fields * static_cast<std::size_t>(count_)) {
    for (index_t i = 0; i < count_; ++i) {
      store(i, prepare_box<R, Dim, Aspect>(load_corners<R, Dim>(boxes, i, format)));
    }
  }

  [[nodiscard]] index_t size() const noexcept { return count_; }
  [[nodiscard]] const R* field(std::size_t f) const noexcept {
    return values_.data() + f * static_cast<std::size_t>(count_);
  }

  /// The prepared box j (the inverse of store; inlined into the vector loop).
  [[nodiscard]] prepared_box<R, Dim> get(index_t j) const noexcept {
    prepared_box<R, Dim> b;
    const auto u = static_cast<std::size_t>(j);
    CVK_UNROLL
    for (std::size_t d = 0; d < Dim; ++d) {
      b.lo[d] = field(d)[u];
      b.hi[d] = field(Dim + d)[u];
      b.centre[d] = field(2 * Dim + 1 + d)[u];
    }
    b.volume = field(2 * Dim)[u];
    b.aspect_angle = field(3 * Dim + 1)[u];
    return b;
  }

 private:
  void store(index_t i, const prepared_box<R, Dim>& b) noexcept {
    const auto u = static_cast<std::size_t>(i);
    const auto n = static_cast<std::size_t>(count_);
    CVK_UNROLL
    for (std::size_t d = 0; d < Dim; ++d) {
      values_[d * n + u] = b.lo[d];
      values_[(Dim + d) * n + u] = b.hi[d];
      values_[(2 * Dim + 1 + d) * n + u] = b.centre[d];
    }
    values_[2 * Dim * n + u] = b.volume;
    values_[(3 * Dim + 1) * n + u] = b.aspect_angle;
  }

  index_t count_;
  std::vector<R> values_;
};

CVK_KERNEL_BEGIN
/// out[j - j0] = metric(a, b_j) for j in [j0, j1): the vectorized inner loop. Only the fields
/// the metric reads are loaded, so the compiler sees plain streams of arrays.
template <iou_kind Kind, class R, std::size_t Dim>
void metric_row(const prepared_box<R, Dim>& a, const packed_boxes<R, Dim>& b, index_t j0,
                index_t j1, R eps, R* __restrict out) noexcept {
  std::array<const R*, Dim> lo{};
  std::array<const R*, Dim> hi{};
  std::array<const R*, Dim> centre{};
  CVK_UNROLL
  for (std::size_t d = 0; d < Dim; ++d) {
    lo[d] = b.field(d) + j0;
    hi[d] = b.field(Dim + d) + j0;
    centre[d] = b.field(2 * Dim + 1 + d) + j0;
  }
  const R* __restrict volume = b.field(2 * Dim) + j0;
  const R* __restrict aspect = b.field(3 * Dim + 1) + j0;
  const index_t n = j1 - j0;
  // Blocks of a fixed width (one or two vector registers), so no scalar remainder loop: the
  // last, partial block is recomputed as the full block ending at n (same values, rewritten).
  const auto block = [&](index_t first, index_t count) {
#if defined(__GNUC__) && !defined(__clang__)
#  pragma GCC ivdep
#endif
    for (index_t j = first; j < first + count; ++j) {
      prepared_box<R, Dim> bj;
      CVK_UNROLL
      for (std::size_t d = 0; d < Dim; ++d) {
        bj.lo[d] = lo[d][j];
        bj.hi[d] = hi[d][j];
        if constexpr (Kind == iou_kind::diou || Kind == iou_kind::ciou) bj.centre[d] = centre[d][j];
      }
      bj.volume = volume[j];
      if constexpr (Kind == iou_kind::ciou) bj.aspect_angle = aspect[j];
      out[j] = pair_metric<Kind>(a, bj, eps);
    }
  };
  constexpr index_t width = 16;
  if (n < width) {
    block(0, n);
    return;
  }
  index_t j = 0;
  for (; j + width <= n; j += width) block(j, width);
  if (j < n) block(n - width, width);
}

/// One pair, compiled like metric_row (no contraction), for the aligned and single-box forms.
template <iou_kind Kind, class R, std::size_t Dim>
R metric_one(const prepared_box<R, Dim>& a, const prepared_box<R, Dim>& b, R eps) noexcept {
  return pair_metric<Kind>(a, b, eps);
}

CVK_KERNEL_END

/// Columns of B processed per tile: the packed fields of a tile stay in the L1 cache while a
/// block of A rows sweeps over them.
inline constexpr index_t pairwise_tile = 1024;
/// Rows of A per parallel_for chunk.
inline constexpr index_t pairwise_rows_per_chunk = 16;

/// out(i, j) = metric(a_i, b_j) for every pair; `out` is an N×M view of any strides.
template <iou_kind Kind, class R, std::size_t Dim, class ViewA, class ViewB, class ViewOut>
void pairwise_metric(const ViewA& a, const ViewB& b, const ViewOut& out, box_format format, R eps,
                     int threads) {
  const index_t n = a.extent(0);
  const index_t m = b.extent(0);
  if (n == 0 || m == 0) return;
  constexpr bool aspect = Kind == iou_kind::ciou;
  const packed_boxes<R, Dim> packed(b, format, std::bool_constant<aspect>{});
  using O = typename ViewOut::value_type;
  const bool direct = std::is_same_v<O, R> && (out.stride(1) == 1 || m == 1);
  parallel_for(
      0, n, pairwise_rows_per_chunk,
      [&](index_t row_begin, index_t row_end) {
        std::vector<prepared_box<R, Dim>> rows;
        rows.reserve(static_cast<std::size_t>(row_end - row_begin));
        for (index_t i = row_begin; i < row_end; ++i) {
          rows.push_back(prepare_box<R, Dim, aspect>(load_corners<R, Dim>(a, i, format)));
        }
        std::vector<R> buffer(direct ? 0 : static_cast<std::size_t>(std::min(m, pairwise_tile)));
        for (index_t j0 = 0; j0 < m; j0 += pairwise_tile) {
          const index_t j1 = std::min(m, j0 + pairwise_tile);
          for (index_t i = row_begin; i < row_end; ++i) {
            const auto& row = rows[static_cast<std::size_t>(i - row_begin)];
            if constexpr (std::is_same_v<O, R>) {
              if (direct) {
                metric_row<Kind>(row, packed, j0, j1, eps, &out(i, j0));
                continue;
              }
            }
            metric_row<Kind>(row, packed, j0, j1, eps, buffer.data());
            for (index_t j = j0; j < j1; ++j) {
              out(i, j) = static_cast<O>(buffer[static_cast<std::size_t>(j - j0)]);
            }
          }
        }
      },
      threads);
}

/// out(i) = metric(a_i, b_i) for N aligned pairs.
template <iou_kind Kind, class R, std::size_t Dim, class ViewA, class ViewB, class ViewOut>
void aligned_metric(const ViewA& a, const ViewB& b, const ViewOut& out, box_format format, R eps,
                    int threads) {
  const index_t n = a.extent(0);
  using O = typename ViewOut::value_type;
  parallel_for(
      0, n, 4096,
      [&](index_t lo, index_t hi) {
        for (index_t i = lo; i < hi; ++i) {
          constexpr bool aspect = Kind == iou_kind::ciou;
          const auto pa = prepare_box<R, Dim, aspect>(load_corners<R, Dim>(a, i, format));
          const auto pb = prepare_box<R, Dim, aspect>(load_corners<R, Dim>(b, i, format));
          out(i) = static_cast<O>(metric_one<Kind>(pa, pb, eps));
        }
      },
      threads);
}

}  // namespace detail
CVK_END_NAMESPACE
