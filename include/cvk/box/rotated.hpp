// cvk — computer-vision kernels, header-only C++20.
// Rotated boxes (cx, cy, w, h, angle) and convex quadrilaterals: IoU, IoA (mmcv's "iof") and
// GIoU (Rezatofighi et al., CVPR 2019, Algorithm 1, with C the convex hull of both shapes),
// pairwise N×M, aligned (N) and single-pair forms. Conventions as torchvision/detectron2 (degrees,
// counter-clockwise) with mmcv's (radians, clockwise) as options. SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <numbers>
#include <string>
#include <type_traits>
#include <vector>

#include "../core/as_view.hpp"
#include "../core/config.hpp"
#include "../core/parallel.hpp"
#include "../core/std_adaptors.hpp"
#include "../core/tensor.hpp"
#include "../detail/checks.hpp"
#include "detail/polygon.hpp"
#include "format.hpp"

CVK_BEGIN_NAMESPACE

/// Unit of the angle column of a rotated box.
enum class angle_unit {
  degrees,  ///< torchvision, detectron2, OpenCV
  radians,  ///< mmcv, mmrotate
};

/// Which way a positive angle turns the box, as seen on an image (x to the right, y down).
enum class rotation_direction {
  /// torchvision / detectron2: the width axis is (cos a, -sin a).
  counter_clockwise,
  /// mmcv's default (clockwise=True), OpenCV's RotatedRect: the width axis is (cos a, sin a).
  clockwise,
};

/// Options of the rotated-box operators. mmcv's convention is
/// `{.unit = angle_unit::radians, .direction = rotation_direction::clockwise}`.
struct rotated_options {
  angle_unit unit = angle_unit::degrees;
  rotation_direction direction = rotation_direction::counter_clockwise;
  /// Threads for the pairwise and aligned forms: 0 = max_threads(). Results do not depend on it.
  int threads = 0;
};

/// Options of the quadrilateral operators.
struct quad_options {
  /// Threads for the pairwise and aligned forms: 0 = max_threads(). Results do not depend on it.
  int threads = 0;
};

CVK_KERNEL_BEGIN
namespace detail {

/// What the rows of a convex-shape operator hold.
enum class convex_input {
  rotated,  ///< cx, cy, w, h, angle
  quad,     ///< x1, y1, x2, y2, x3, y3, x4, y4 (a convex quadrilateral, either orientation)
};

template <convex_input Input>
inline constexpr index_t convex_columns = Input == convex_input::rotated ? 5 : 8;

template <convex_input Input>
constexpr const char* convex_columns_pattern() noexcept {
  return Input == convex_input::rotated ? "N×5" : "N×8";
}

template <convex_input Input, convex_metric Kind>
constexpr const char* convex_function_name(bool aligned) noexcept {
  if constexpr (Input == convex_input::quad) {
    return aligned ? "quad_iou_aligned" : "quad_iou";
  } else if constexpr (Kind == convex_metric::iou) {
    return aligned ? "rotated_box_iou_aligned" : "rotated_box_iou";
  } else if constexpr (Kind == convex_metric::ioa) {
    return aligned ? "rotated_box_ioa_aligned" : "rotated_box_ioa";
  } else {
    return aligned ? "rotated_generalized_box_iou_aligned" : "rotated_generalized_box_iou";
  }
}

/// (sin a, cos a) for an angle in degrees, reduced exactly to [-45°, 45°] first: multiples of
/// 90° give exact 0 and ±1 (axis-aligned boxes stay exactly axis-aligned) and large angles lose
/// no accuracy. `degrees` must be finite.
template <class G>
std::array<G, 2> sincos_degrees(G degrees) noexcept {
  const G turn = std::fmod(degrees, G(360));  // exact, in (-360, 360)
  const G quadrant = std::nearbyint(turn / G(90));
  const G rest = turn - quadrant * G(90);  // exact (Sterbenz), in [-45, 45]
  const G radians = rest * static_cast<G>(std::numbers::pi / 180.0);
  const G s = std::sin(radians);
  const G c = std::cos(radians);
  switch ((static_cast<int>(quadrant) % 4 + 4) % 4) {
    case 1:
      return {c, -s};
    case 2:
      return {-s, -c};
    case 3:
      return {-c, s};
    default:
      return {s, c};
  }
}

/// Largest extent of a shape the convex kernels take (2^500 ≈ 3.3e150): a rotated box's w and
/// h, a quad's vertex offsets from its vertex mean. Below it nothing a pair computes from the
/// offsets can overflow double (offsets stay below 2^503, their products below 2^1006), so
/// w·h and every shoelace term are numbers. A finite shape beyond it would overflow in its own
/// area or offsets and give NaN in some forms and 0 in others, so it is out of range: the quad
/// is NaN, and every result for it is NaN in every form (docs/boxes.md). Centres may be any
/// finite number: pairs are computed relative to a centre, and boxes whose centres lie too far
/// apart to subtract are apart.
inline constexpr double max_convex_extent = 0x1p500;

/// True for a number of magnitude <= max_convex_extent (false for NaN and ±inf).
template <class G>
bool in_convex_range(G v) noexcept {
  return std::fabs(static_cast<double>(v)) <= max_convex_extent;
}

/// A rotated box (cx, cy, w, h, angle) as a convex quad. Counter-clockwise (detectron2's
/// get_rotated_vertices): width axis u = (cos a, -sin a) w/2, height axis v = (sin a, cos a) h/2;
/// clockwise flips the sign of sin a. Vertices u+v, -u+v, -u-v, u-v (positive signed area).
template <class G>
convex_quad<G> rotated_quad(G cx, G cy, G w, G h, G angle,
                            const rotated_options& options) noexcept {
  if (!(std::isfinite(cx) && std::isfinite(cy) && in_convex_range(w) && in_convex_range(h) &&
        std::isfinite(angle))) {
    return nan_quad<G>();
  }
  std::array<G, 2> sc{};
  if (options.unit == angle_unit::degrees) {
    sc = sincos_degrees(angle);
  } else {
    sc = {std::sin(angle), std::cos(angle)};
  }
  const G s = options.direction == rotation_direction::counter_clockwise ? -sc[0] : sc[0];
  const G c = sc[1];
  const G half_w = w / G(2);
  const G half_h = h / G(2);
  const G ux = c * half_w;
  const G uy = s * half_w;
  const G vx = -(s * half_h);
  const G vy = c * half_h;
  convex_quad<G> q;
  q.x = {ux + vx, vx - ux, -ux - vx, ux - vx};
  q.y = {uy + vy, vy - uy, -uy - vy, uy - vy};
  q.cx = cx;
  q.cy = cy;
  // A box with a side <= 0 is empty; detectron2 tests only w·h < 1e-14, which would take a
  // box with both sides negative for the same rectangle turned by 180°.
  q.area = w > G(0) && h > G(0) ? w * h : G(0);
  set_bounds(q);
  return q;
}

/// A quadrilateral (x1, y1, ..., x4, y4) as a convex quad centred on its vertex mean, turned
/// counter-clockwise when given clockwise.
template <class G>
convex_quad<G> quad_from_points(const std::array<G, 8>& p) noexcept {
  for (const G v : p) {
    if (!std::isfinite(v)) return nan_quad<G>();
  }
  convex_quad<G> q;
  q.cx = ((p[0] + p[2]) + (p[4] + p[6])) / G(4);
  q.cy = ((p[1] + p[3]) + (p[5] + p[7])) / G(4);
  if (!std::isfinite(q.cx) || !std::isfinite(q.cy)) {
    // the sums overflowed: quarters first (exact scalings, then no sum can overflow)
    q.cx = (p[0] / G(4) + p[2] / G(4)) + (p[4] / G(4) + p[6] / G(4));
    q.cy = (p[1] / G(4) + p[3] / G(4)) + (p[5] / G(4) + p[7] / G(4));
  }
  for (std::size_t k = 0; k < 4; ++k) {
    q.x[k] = p[2 * k] - q.cx;
    q.y[k] = p[2 * k + 1] - q.cy;
    if (!in_convex_range(q.x[k]) || !in_convex_range(q.y[k])) return nan_quad<G>();
  }
  G area = shoelace_area(q.x.data(), q.y.data(), 4);
  if (area < G(0)) {
    std::swap(q.x[1], q.x[3]);
    std::swap(q.y[1], q.y[3]);
    area = -area;
  }
  q.area = area;
  set_bounds(q);
  return q;
}

/// Row i of an N×5 or N×8 view as a convex quad.
template <convex_input Input, class G, class View>
convex_quad<G> load_convex(const View& v, index_t i, const rotated_options& options) noexcept {
  if constexpr (Input == convex_input::rotated) {
    return rotated_quad<G>(static_cast<G>(v(i, 0)), static_cast<G>(v(i, 1)),
                           static_cast<G>(v(i, 2)), static_cast<G>(v(i, 3)),
                           static_cast<G>(v(i, 4)), options);
  } else {
    std::array<G, 8> p{};
    for (std::size_t k = 0; k < 8; ++k) p[k] = static_cast<G>(v(i, static_cast<index_t>(k)));
    return quad_from_points(p);
  }
}

/// A single rotated box (5) or quad (8) as a convex quad.
template <convex_input Input, class G, class View>
convex_quad<G> load_single_convex(const View& v, const rotated_options& options) noexcept {
  if constexpr (Input == convex_input::rotated) {
    return rotated_quad<G>(static_cast<G>(v(0)), static_cast<G>(v(1)), static_cast<G>(v(2)),
                           static_cast<G>(v(3)), static_cast<G>(v(4)), options);
  } else {
    std::array<G, 8> p{};
    for (std::size_t k = 0; k < 8; ++k) p[k] = static_cast<G>(v(static_cast<index_t>(k)));
    return quad_from_points(p);
  }
}

/// The shapes of boxes2, prepared once: the quads (array of structures, for the exact code) and
/// their centres and bounding boxes as structure of arrays (for the vectorized rejection test).
template <class G>
class packed_convex {
 public:
  template <convex_input Input, class View>
  static packed_convex pack(const View& v, const rotated_options& options) {
    packed_convex p;
    const auto n = static_cast<std::size_t>(v.extent(0));
    p.quads_.resize(n);
    for (auto* field : {&p.cx_, &p.cy_, &p.xlo_, &p.xhi_, &p.ylo_, &p.yhi_}) field->resize(n);
    for (std::size_t j = 0; j < n; ++j) {
      const auto q = load_convex<Input, G>(v, static_cast<index_t>(j), options);
      p.quads_[j] = q;
      p.cx_[j] = q.cx;
      p.cy_[j] = q.cy;
      p.xlo_[j] = q.xlo;
      p.xhi_[j] = q.xhi;
      p.ylo_[j] = q.ylo;
      p.yhi_[j] = q.yhi;
    }
    return p;
  }

  [[nodiscard]] const convex_quad<G>& operator[](index_t j) const noexcept {
    return quads_[static_cast<std::size_t>(j)];
  }

  /// overlap[j - j0] = bounds_may_overlap(a, b_j) for j in [j0, j1), vectorized.
  void may_overlap(const convex_quad<G>& a, index_t j0, index_t j1,
                   std::uint8_t* __restrict overlap) const noexcept {
    const G* __restrict cx = cx_.data() + j0;
    const G* __restrict cy = cy_.data() + j0;
    const G* __restrict xlo = xlo_.data() + j0;
    const G* __restrict xhi = xhi_.data() + j0;
    const G* __restrict ylo = ylo_.data() + j0;
    const G* __restrict yhi = yhi_.data() + j0;
    const index_t n = j1 - j0;
    for (index_t j = 0; j < n; ++j) {
      // The expression of bounds_may_overlap, on the same values.
      const G dx = a.cx - cx[j];
      const G dy = a.cy - cy[j];
      const bool apart = (dx + a.xhi <= xlo[j]) | (dx + a.xlo >= xhi[j]) | (dy + a.yhi <= ylo[j]) |
                         (dy + a.ylo >= yhi[j]);
      overlap[j] = static_cast<std::uint8_t>(!apart);
    }
  }

 private:
  std::vector<convex_quad<G>> quads_;
  std::vector<G> cx_, cy_, xlo_, xhi_, ylo_, yhi_;
};

/// Columns of boxes2 per tile, and rows of boxes1 per parallel_for chunk.
inline constexpr index_t convex_tile = 512;
inline constexpr index_t convex_rows_per_chunk = 8;

/// out(i, j) = metric(a_i, b_j) for every pair; out is N×M of any strides.
template <convex_input Input, convex_metric Kind, class R, class ViewA, class ViewB, class ViewOut>
void convex_pairwise(const ViewA& a, const ViewB& b, const ViewOut& out,
                     const rotated_options& options) {
  using G = double;
  const index_t n = a.extent(0);
  const index_t m = b.extent(0);
  if (n == 0 || m == 0) return;
  const auto packed = packed_convex<G>::template pack<Input>(b, options);
  using O = typename ViewOut::value_type;
  const bool direct = out.stride(1) == 1 || m == 1;
  parallel_for(
      0, n, convex_rows_per_chunk,
      [&](index_t row_begin, index_t row_end) {
        std::vector<convex_quad<G>> rows;
        rows.reserve(static_cast<std::size_t>(row_end - row_begin));
        for (index_t i = row_begin; i < row_end; ++i) {
          rows.push_back(load_convex<Input, G>(a, i, options));
        }
        // Padded to whole 64-bit words, which the scan below reads at once.
        std::vector<std::uint8_t> overlap(static_cast<std::size_t>(convex_tile) + 8, 0);
        std::vector<O> buffer(direct ? 0 : static_cast<std::size_t>(std::min(m, convex_tile)));
        for (index_t j0 = 0; j0 < m; j0 += convex_tile) {
          const index_t j1 = std::min(m, j0 + convex_tile);
          const index_t len = j1 - j0;
          for (index_t i = row_begin; i < row_end; ++i) {
            const auto& row = rows[static_cast<std::size_t>(i - row_begin)];
            O* dst = direct ? &out(i, j0) : buffer.data();
            packed.may_overlap(row, j0, j1, overlap.data());
            std::fill(overlap.data() + len, overlap.data() + len + 8, std::uint8_t{0});
            if constexpr (Kind == convex_metric::iou || Kind == convex_metric::ioa) {
              // Most pairs of a sparse scene are apart: write zeros, then visit the candidates
              // found eight bytes at a time.
              std::fill(dst, dst + len, O(0));
              const auto visit = [&](index_t j) {
                dst[j] = static_cast<O>(
                    static_cast<R>(convex_pair_metric<Kind>(row, packed[j0 + j], true)));
              };
              if constexpr (std::endian::native == std::endian::little) {
                for (index_t w = 0; w < len; w += 8) {
                  std::uint64_t word = 0;
                  std::memcpy(&word, overlap.data() + w, sizeof(word));
                  while (word != 0) {
                    visit(w + std::countr_zero(word) / 8);  // byte k is bits 8k..8k+7
                    word &= word - 1;
                  }
                }
              } else {
                for (index_t j = 0; j < len; ++j) {
                  if (overlap[static_cast<std::size_t>(j)] != 0) visit(j);
                }
              }
            } else {
              for (index_t j = 0; j < len; ++j) {
                dst[j] = static_cast<O>(static_cast<R>(convex_pair_metric<Kind>(
                    row, packed[j0 + j], overlap[static_cast<std::size_t>(j)] != 0)));
              }
            }
            if (!direct) {
              for (index_t j = 0; j < len; ++j) out(i, j0 + j) = dst[j];
            }
          }
        }
      },
      options.threads);
}

/// out(i) = metric(a_i, b_i) for N aligned pairs.
template <convex_input Input, convex_metric Kind, class R, class ViewA, class ViewB, class ViewOut>
void convex_aligned(const ViewA& a, const ViewB& b, const ViewOut& out,
                    const rotated_options& options) {
  using G = double;
  using O = typename ViewOut::value_type;
  parallel_for(
      0, a.extent(0), 1024,
      [&](index_t lo, index_t hi) {
        for (index_t i = lo; i < hi; ++i) {
          const auto qa = load_convex<Input, G>(a, i, options);
          const auto qb = load_convex<Input, G>(b, i, options);
          out(i) = static_cast<O>(
              static_cast<R>(convex_pair_metric<Kind>(qa, qb, bounds_may_overlap(qa, qb))));
        }
      },
      options.threads);
}

}  // namespace detail
CVK_KERNEL_END

namespace detail {

template <class A, class B>
using convex_real_t =
    real_t<std::common_type_t<tensor_value_t<const A&>, tensor_value_t<const B&>>>;

template <convex_input Input, convex_metric Kind, class A, class B, class Out>
void convex_pairwise_entry(const A& boxes1, const B& boxes2, Out&& out,
                           const rotated_options& options) {
  constexpr const char* fn = convex_function_name<Input, Kind>(false);
  constexpr index_t cols = convex_columns<Input>;
  const auto a = checked_view<2>(boxes1, fn, "boxes1");
  const auto b = checked_view<2>(boxes2, fn, "boxes2");
  expect_shape(a, {any_extent, cols}, fn, "boxes1", convex_columns_pattern<Input>());
  expect_shape(b, {any_extent, cols}, fn, "boxes2", convex_columns_pattern<Input>());
  auto dst = output_view<2>(std::forward<Out>(out), {a.extent(0), b.extent(0)}, fn);
  using R = convex_real_t<A, B>;
  assert_no_narrowing<typename decltype(dst)::value_type, R>();
  convex_pairwise<Input, Kind, R>(a, b, dst, options);
}

template <convex_input Input, convex_metric Kind, class A, class B>
auto convex_pairwise_entry(const A& boxes1, const B& boxes2, const rotated_options& options) {
  constexpr const char* fn = convex_function_name<Input, Kind>(false);
  const auto a = checked_view<2>(boxes1, fn, "boxes1");
  const auto b = checked_view<2>(boxes2, fn, "boxes2");
  tensor<convex_real_t<A, B>, 2> result(a.extent(0), b.extent(0));
  convex_pairwise_entry<Input, Kind>(a, b, result, options);
  return result;
}

template <convex_input Input, convex_metric Kind, class A, class B, class Out>
void convex_aligned_entry(const A& boxes1, const B& boxes2, Out&& out,
                          const rotated_options& options) {
  constexpr const char* fn = convex_function_name<Input, Kind>(true);
  constexpr index_t cols = convex_columns<Input>;
  const auto a = checked_view<2>(boxes1, fn, "boxes1");
  const auto b = checked_view<2>(boxes2, fn, "boxes2");
  expect_shape(a, {any_extent, cols}, fn, "boxes1", convex_columns_pattern<Input>());
  expect_shape(b, {any_extent, cols}, fn, "boxes2", convex_columns_pattern<Input>());
  expect_same_rows(a, b, fn, "boxes1", "boxes2");
  auto dst = output_view<1>(std::forward<Out>(out), {a.extent(0)}, fn);
  using R = convex_real_t<A, B>;
  assert_no_narrowing<typename decltype(dst)::value_type, R>();
  convex_aligned<Input, Kind, R>(a, b, dst, options);
}

template <convex_input Input, convex_metric Kind, class A, class B>
auto convex_aligned_entry(const A& boxes1, const B& boxes2, const rotated_options& options) {
  constexpr const char* fn = convex_function_name<Input, Kind>(true);
  const auto a = checked_view<2>(boxes1, fn, "boxes1");
  tensor<convex_real_t<A, B>, 1> result(a.extent(0));
  convex_aligned_entry<Input, Kind>(a, boxes2, result, options);
  return result;
}

template <convex_input Input, convex_metric Kind, class A, class B>
auto convex_single_entry(const A& box1, const B& box2, const rotated_options& options) {
  constexpr const char* fn = convex_function_name<Input, Kind>(false);
  constexpr index_t cols = convex_columns<Input>;
  const auto a = checked_view<1>(box1, fn, "box1");
  const auto b = checked_view<1>(box2, fn, "box2");
  expect_shape(a, {cols}, fn, "box1");
  expect_shape(b, {cols}, fn, "box2");
  using R = convex_real_t<A, B>;
  const auto qa = load_single_convex<Input, double>(a, options);
  const auto qb = load_single_convex<Input, double>(b, options);
  return static_cast<R>(convex_pair_metric<Kind>(qa, qb, bounds_may_overlap(qa, qb)));
}

inline rotated_options quad_as_rotated(const quad_options& options) noexcept {
  rotated_options o;
  o.threads = options.threads;
  return o;
}

}  // namespace detail

// The public entry points. For each operator:
//   name(boxes1, boxes2[, options])          → tensor N×M          (pairwise)
//   name(boxes1, boxes2, out[, options])     → writes N×M into out
//   name_aligned(boxes1, boxes2[, options])  → tensor N            (pair i with pair i)
//   name_aligned(boxes1, boxes2, out[, ...]) → writes N into out
//   name(box1, box2[, options])              → scalar              (two single boxes)
// Any arithmetic element type and strides; results are float for float input, double for
// double or integer input. Every pair is computed in double.
#define CVK_DEFINE_CONVEX_FAMILY(name, input, kind, options_type, to_rotated)                   \
  template <tensor_of_rank<2> A, tensor_of_rank<2> B>                                           \
  [[nodiscard]] auto name(const A& boxes1, const B& boxes2, const options_type& options = {}) { \
    return detail::convex_pairwise_entry<input, kind>(boxes1, boxes2, to_rotated(options));     \
  }                                                                                             \
  template <tensor_of_rank<2> A, tensor_of_rank<2> B, tensor_of_rank<2> Out>                    \
  void name(const A& boxes1, const B& boxes2, Out&& out, const options_type& options = {}) {    \
    detail::convex_pairwise_entry<input, kind>(boxes1, boxes2, std::forward<Out>(out),          \
                                               to_rotated(options));                            \
  }                                                                                             \
  template <tensor_of_rank<2> A, tensor_of_rank<2> B>                                           \
  [[nodiscard]] auto name##_aligned(const A& boxes1, const B& boxes2,                           \
                                    const options_type& options = {}) {                         \
    return detail::convex_aligned_entry<input, kind>(boxes1, boxes2, to_rotated(options));      \
  }                                                                                             \
  template <tensor_of_rank<2> A, tensor_of_rank<2> B, tensor_of_rank<1> Out>                    \
  void name##_aligned(const A& boxes1, const B& boxes2, Out&& out,                              \
                      const options_type& options = {}) {                                       \
    detail::convex_aligned_entry<input, kind>(boxes1, boxes2, std::forward<Out>(out),           \
                                              to_rotated(options));                             \
  }                                                                                             \
  template <tensor_of_static_rank<1> A, tensor_of_static_rank<1> B>                             \
  [[nodiscard]] auto name(const A& box1, const B& box2, const options_type& options = {}) {     \
    return detail::convex_single_entry<input, kind>(box1, box2, to_rotated(options));           \
  }

#define CVK_CONVEX_SAME_OPTIONS(options) (options)

/// IoU of rotated boxes (cx, cy, w, h, angle): |A∩B| / |A∪B| of the two rectangles.
/// boxes1: N×5, boxes2: M×5. 0 when w·h < 1e-14 for either box (zero, tiny or negative sides);
/// NaN when any of the ten values is NaN or infinite, or when w or h is beyond 2^500 in
/// magnitude (out of range: w·h would overflow), in every form.
CVK_DEFINE_CONVEX_FAMILY(rotated_box_iou, detail::convex_input::rotated, detail::convex_metric::iou,
                         rotated_options, CVK_CONVEX_SAME_OPTIONS)
/// IoA of rotated boxes: |A∩B| / |A|, over the area of the box from boxes1 (mmcv's
/// box_iou_rotated with mode "iof"; the rotated counterpart of box_ioa). 0 when w·h < 1e-14
/// for either box; NaN for non-finite or out-of-range input (as rotated_box_iou). In [0, 1].
CVK_DEFINE_CONVEX_FAMILY(rotated_box_ioa, detail::convex_input::rotated, detail::convex_metric::ioa,
                         rotated_options, CVK_CONVEX_SAME_OPTIONS)
/// GIoU of rotated boxes: IoU - (|C| - |A∪B|) / |C|, C the convex hull of the 8 corners.
/// An empty box (w·h < 1e-14) counts with area 0 in the union and its corners in C; IoU when
/// |C| = 0; NaN for non-finite or out-of-range input (as rotated_box_iou). In [-1, 1].
CVK_DEFINE_CONVEX_FAMILY(rotated_generalized_box_iou, detail::convex_input::rotated,
                         detail::convex_metric::giou, rotated_options, CVK_CONVEX_SAME_OPTIONS)
/// IoU of convex quadrilaterals (x1, y1, x2, y2, x3, y3, x4, y4), vertices in order around the
/// quad, either orientation. boxes1: N×8, boxes2: M×8. 0 when either shoelace area is below
/// 1e-14; NaN when a value is NaN or infinite or a vertex lies beyond 2^500 from the vertex
/// mean, in every form;
/// unspecified (but in [0, 1]) for non-convex quads.
CVK_DEFINE_CONVEX_FAMILY(quad_iou, detail::convex_input::quad, detail::convex_metric::iou,
                         quad_options, detail::quad_as_rotated)

#undef CVK_CONVEX_SAME_OPTIONS
#undef CVK_DEFINE_CONVEX_FAMILY

CVK_END_NAMESPACE
