// cvk — computer-vision kernels, header-only C++20.
// Convex-polygon geometry behind rotated-box and quadrilateral IoU: the intersection area of two
// convex quadrilaterals (Sutherland–Hodgman clipping), the shoelace area, and the area of the
// convex hull of both (Andrew's monotone chain) for GIoU.
// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <limits>

#include "../../core/config.hpp"

CVK_BEGIN_NAMESPACE
CVK_KERNEL_BEGIN
namespace detail {

/// A convex quadrilateral prepared for the pair kernels. Vertices are stored as offsets from a
/// centre, so that a pair is computed in coordinates relative to one of the two centres: the
/// large common part of coordinates around 1e5 cancels exactly before any product is formed
/// (mmcv shifts by the pair's mean centre for the same reason).
template <class G>
struct convex_quad {
  std::array<G, 4> x{};  ///< vertex offsets from (cx, cy), counter-clockwise (positive area)
  std::array<G, 4> y{};
  G cx{};    ///< centre; NaN when any input value is not finite
  G cy{};    ///< centre; NaN when any input value is not finite
  G area{};  ///< w·h (0 when a side is <= 0), a quad's shoelace area; NaN for non-finite input
  G xlo{};   ///< bounding box of the offsets
  G xhi{};
  G ylo{};
  G yhi{};
};

/// Boxes whose area is below this count as empty: IoU 0 (detectron2's and mmcv's rule).
inline constexpr double min_convex_area = 1e-14;

/// Vertices the Sutherland–Hodgman buffers hold. Clipping a convex polygon by a half-plane adds
/// at most one vertex; with rounding a nearly straight run of vertices on the clipping line can
/// alternate sides, so each of the four stages may at most double the count: 4 → 64.
inline constexpr int clip_capacity = 64;

/// Signed area (positive when counter-clockwise) of the polygon (x[k], y[k]), k < n.
template <class G>
G shoelace_area(const G* x, const G* y, int n) noexcept {
  if (n < 3) return G(0);
  G twice = G(0);
  int previous = n - 1;
  for (int k = 0; k < n; ++k) {
    twice += x[previous] * y[k] - x[k] * y[previous];
    previous = k;
  }
  return twice / G(2);
}

/// Sets the bounding box of a quad's offsets.
template <class G>
void set_bounds(convex_quad<G>& q) noexcept {
  q.xlo = std::min(std::min(q.x[0], q.x[1]), std::min(q.x[2], q.x[3]));
  q.xhi = std::max(std::max(q.x[0], q.x[1]), std::max(q.x[2], q.x[3]));
  q.ylo = std::min(std::min(q.y[0], q.y[1]), std::min(q.y[2], q.y[3]));
  q.yhi = std::max(std::max(q.y[0], q.y[1]), std::max(q.y[2], q.y[3]));
}

/// A quad every result of which is NaN (non-finite input).
template <class G>
convex_quad<G> nan_quad() noexcept {
  constexpr G nan = std::numeric_limits<G>::quiet_NaN();
  convex_quad<G> q;
  q.x.fill(nan);
  q.y.fill(nan);
  q.cx = q.cy = q.area = nan;
  q.xlo = q.xhi = q.ylo = q.yhi = nan;
  return q;
}

/// False when the bounding boxes of a and b are apart or touch. The test adds the vertex offsets
/// to the difference of the centres as convex_intersection_area does, so a pair it drops has,
/// as the kernels compute it, no common interior or one at most a rounding wide. NaN anywhere
/// gives true, so that NaN reaches the exact code. The pairwise kernel runs the same expression
/// vectorized over a row, and every form uses this decision: both must stay identical.
template <class G>
bool bounds_may_overlap(const convex_quad<G>& a, const convex_quad<G>& b) noexcept {
  const G dx = a.cx - b.cx;
  const G dy = a.cy - b.cy;
  const bool apart =
      (dx + a.xhi <= b.xlo) | (dx + a.xlo >= b.xhi) | (dy + a.yhi <= b.ylo) | (dy + a.ylo >= b.yhi);
  return !apart;
}

/// One Sutherland–Hodgman stage: the part of the convex polygon (x, y, n) on the left of the
/// directed line through (qx, qy) with direction (ex, ey), written to (out_x, out_y); returns its
/// vertex count, or -1 when every vertex is inside (the output would equal the input and is not
/// written). Branch-free inside the loop: every candidate vertex is stored and the count advanced
/// by the side tests, so the unpredictable in/out pattern of dense scenes costs no
/// mispredictions. The crossing point uses t = d0 / (d0 - d1) with d0 and d1 of opposite signs,
/// so t is in [0, 1] however parallel the edges are (no line-line solve, no tolerance).
template <class G>
int clip_by_edge(const G* __restrict x, const G* __restrict y, int n, G qx, G qy, G ex, G ey,
                 G* __restrict out_x, G* __restrict out_y) noexcept {
  std::array<G, clip_capacity> side;
  bool all_inside = true;
  bool all_outside = true;
  for (int k = 0; k < n; ++k) {
    const G rx = x[k] - qx;
    const G ry = y[k] - qy;
    const G along_y = ex * ry;
    const G along_x = ey * rx;
    const G d = along_y - along_x;  // cross(e, p - q) >= 0: inside
    side[static_cast<std::size_t>(k)] = d;
    all_inside &= d >= G(0);
    all_outside &= d < G(0);
  }
  if (all_inside) return -1;
  if (all_outside) return 0;
  int m = 0;
  G px = x[n - 1];
  G py = y[n - 1];
  G pd = side[static_cast<std::size_t>(n - 1)];
  for (int k = 0; k < n; ++k) {
    const G cx = x[k];
    const G cy = y[k];
    const G cd = side[static_cast<std::size_t>(k)];
    const bool previous_in = pd >= G(0);
    const bool current_in = cd >= G(0);
    const G denominator = pd - cd;
    const G t = pd / (denominator != G(0) ? denominator : G(1));
    const G step_x = t * (cx - px);
    const G step_y = t * (cy - py);
    out_x[m] = px + step_x;
    out_y[m] = py + step_y;
    m += static_cast<int>(previous_in != current_in);
    out_x[m] = cx;
    out_y[m] = cy;
    m += static_cast<int>(current_in);
    px = cx;
    py = cy;
    pd = cd;
  }
  return m;
}

/// Area of a ∩ b for two convex quads, in b's centre frame: a's vertices shifted by the
/// difference of the centres are clipped by b's four edges. When no edge clips a (a lies in b,
/// identical boxes included) the result is a's own area, exactly.
template <class G>
G convex_intersection_area(const convex_quad<G>& a, const convex_quad<G>& b) noexcept {
  std::array<G, clip_capacity> x0;
  std::array<G, clip_capacity> y0;
  std::array<G, clip_capacity> x1;
  std::array<G, clip_capacity> y1;
  const G dx = a.cx - b.cx;
  const G dy = a.cy - b.cy;
  for (std::size_t k = 0; k < 4; ++k) {
    x0[k] = dx + a.x[k];
    y0[k] = dy + a.y[k];
  }
  G* in_x = x0.data();
  G* in_y = y0.data();
  G* out_x = x1.data();
  G* out_y = y1.data();
  int n = 4;
  bool clipped_any = false;
  // Returns false when nothing is left. The first stage is called with a constant count, so
  // that it compiles to straight-line code.
  const auto stage = [&](std::size_t e, int count) {
    const std::size_t next = (e + 1) & 3U;
    const G ex = b.x[next] - b.x[e];
    const G ey = b.y[next] - b.y[e];
    const int clipped = clip_by_edge(in_x, in_y, count, b.x[e], b.y[e], ex, ey, out_x, out_y);
    if (clipped < 0) return true;  // a is inside this edge: nothing to clip
    if (clipped < 3) return false;
    clipped_any = true;
    n = clipped;
    G* const done_x = in_x;
    G* const done_y = in_y;
    in_x = out_x;
    in_y = out_y;
    out_x = done_x;
    out_y = done_y;
    return true;
  };
  if (!stage(0, 4)) return G(0);
  for (std::size_t e = 1; e < 4; ++e) {
    if (!stage(e, n)) return G(0);
  }
  return clipped_any ? shoelace_area(in_x, in_y, n) : a.area;
}

/// Largest number of points convex_hull_area accepts.
inline constexpr int max_hull_points = 16;

/// Sorts n <= 16 points by (x, y): insertion sort (measured faster here than the 19-comparator
/// network for 8 points, whose selects cost more than the mispredictions they avoid).
template <class G>
void sort_points(G* x, G* y, int n) noexcept {
  for (int i = 1; i < n; ++i) {
    const G kx = x[i];
    const G ky = y[i];
    int j = i - 1;
    while (j >= 0 && (x[j] > kx || (x[j] == kx && y[j] > ky))) {
      x[j + 1] = x[j];
      y[j + 1] = y[j];
      --j;
    }
    x[j + 1] = kx;
    y[j + 1] = ky;
  }
}

/// Area of the convex hull of the points (x[k], y[k]), k < n <= 16, by Andrew's monotone chain
/// (collinear points dropped). The arrays are sorted in place.
template <class G>
G convex_hull_area(G* x, G* y, int n) noexcept {
  sort_points(x, y, n);
  std::array<G, 2 * max_hull_points> hx;
  std::array<G, 2 * max_hull_points> hy;
  const auto turn = [&](int o, G px, G py) {
    const auto u = static_cast<std::size_t>(o);
    const G ax = hx[u + 1] - hx[u];
    const G ay = hy[u + 1] - hy[u];
    const G bx = px - hx[u];
    const G by = py - hy[u];
    const G first = ax * by;
    const G second = ay * bx;
    return first - second;
  };
  int h = 0;
  // Lower chain left to right, then upper chain right to left; pop while not turning left.
  for (int i = 0; i < n; ++i) {
    while (h >= 2 && turn(h - 2, x[i], y[i]) <= G(0)) --h;
    hx[static_cast<std::size_t>(h)] = x[i];
    hy[static_cast<std::size_t>(h)] = y[i];
    ++h;
  }
  const int lower = h + 1;
  for (int i = n - 2; i >= 0; --i) {
    while (h >= lower && turn(h - 2, x[i], y[i]) <= G(0)) --h;
    hx[static_cast<std::size_t>(h)] = x[i];
    hy[static_cast<std::size_t>(h)] = y[i];
    ++h;
  }
  // The last point repeats the first one.
  return shoelace_area(hx.data(), hy.data(), h - 1);
}

/// Area of the convex hull of a ∪ b (the smallest enclosing convex shape C of GIoU), in b's
/// centre frame.
template <class G>
G enclosing_hull_area(const convex_quad<G>& a, const convex_quad<G>& b) noexcept {
  std::array<G, 8> x;
  std::array<G, 8> y;
  const G dx = a.cx - b.cx;
  const G dy = a.cy - b.cy;
  for (std::size_t k = 0; k < 4; ++k) {
    x[k] = dx + a.x[k];
    y[k] = dy + a.y[k];
    x[k + 4] = b.x[k];
    y[k + 4] = b.y[k];
  }
  return convex_hull_area(x.data(), y.data(), 8);
}

/// Which metric a convex pair kernel computes.
enum class convex_metric { iou, ioa, giou };

/// IoU, IoA or GIoU of two convex quads. `may_overlap` is bounds_may_overlap(a, b) (the pairwise
/// kernel computes it vectorized): when false the intersection is 0 without clipping.
///   IoU  = |A∩B| / |A∪B|; 0 when either area is below 1e-14; NaN for non-finite input.
///   IoA  = |A∩B| / |A| (mmcv's mode "iof": over the area of the first box); 0 when either
///          area is below 1e-14 (mmcv's rule); NaN for non-finite input.
///   GIoU = IoU - (|C| - |A∪B|) / |C| (Rezatofighi et al., Algorithm 1), C the convex hull of
///          both; an empty box contributes area 0 to the union and its corners to C; IoU when
///          |C| = 0.
template <convex_metric Kind, class G>
G convex_pair_metric(const convex_quad<G>& a, const convex_quad<G>& b, bool may_overlap) noexcept {
  if (a.area != a.area || b.area != b.area) return std::numeric_limits<G>::quiet_NaN();
  constexpr G min_area = static_cast<G>(min_convex_area);
  const G area_a = a.area < min_area ? G(0) : a.area;
  const G area_b = b.area < min_area ? G(0) : b.area;
  const bool empty = area_a == G(0) || area_b == G(0);
  // The smaller shape is clipped by the larger (a selected reference, no branch): a box inside
  // the other is then never clipped and contributes its own area exactly, and swapping the
  // arguments computes the same numbers (IoU(a, b) == IoU(b, a) bit for bit unless the areas
  // are equal).
  const bool a_inner = area_a <= area_b;
  const convex_quad<G>& inner = a_inner ? a : b;
  const convex_quad<G>& outer = a_inner ? b : a;
  G inter = G(0);
  if (may_overlap && !empty) {
    // Rounding may leave the clipped area a hair outside [0, min(|A|, |B|)]; clamping keeps
    // IoU in [0, 1]. (Ternaries rather than std::clamp: functions compiled outside
    // CVK_KERNEL_BEGIN are not inlined here.)
    const G clipped = convex_intersection_area(inner, outer);
    const G smaller = a_inner ? area_a : area_b;
    inter = clipped > smaller ? smaller : (clipped > G(0) ? clipped : G(0));
  }
  const G uni = (area_a + area_b) - inter;
  const G iou = empty ? G(0) : inter / uni;
  if constexpr (Kind == convex_metric::iou) {
    return iou;
  } else if constexpr (Kind == convex_metric::ioa) {
    return empty ? G(0) : inter / area_a;
  } else {
    const G hull = enclosing_hull_area(inner, outer);
    const G gap = hull > uni ? hull - uni : G(0);
    const G penalty = hull > G(0) ? gap / hull : G(0);
    return iou - penalty;
  }
}

}  // namespace detail
CVK_KERNEL_END
CVK_END_NAMESPACE
