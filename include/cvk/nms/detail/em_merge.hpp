// cvk — computer-vision kernels, header-only C++20.
// The EM-Merger's machinery (em_merge): detections as 2-D Gaussians, the heat map and its
// regions, the agglomerative initialisation and EM collapse of a region's mixture (KL
// divergence), and the choice of one detection per collapsed component. The functions that read
// options take em_merge_options (em_merge.hpp) as the template parameter Options.
// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <limits>
#include <numeric>
#include <queue>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "../../core/config.hpp"
#include "../../core/errors.hpp"
#include "../../core/tensor.hpp"
#include "../../detail/checks.hpp"
#include "../nms.hpp"

CVK_BEGIN_NAMESPACE
namespace detail {

/// One axis-aligned 2-D Gaussian of a mixture: weight, mean, diagonal variances.
struct em_gaussian {
  double weight = 0;
  double mean_x = 0;
  double mean_y = 0;
  double var_x = 0;
  double var_y = 0;
};

CVK_KERNEL_BEGIN

/// Squared distance between the means (the agglomerative criterion).
inline double em_distance2(const em_gaussian& a, const em_gaussian& b) noexcept {
  const double dx = a.mean_x - b.mean_x;
  const double dy = a.mean_y - b.mean_y;
  return dx * dx + dy * dy;
}

/// The moment-matched merge of two weighted Gaussians (the single Gaussian with the pair's total
/// weight, mean and second moments): w = wa + wb, μ = (wa μa + wb μb)/w,
/// σ² = (wa σa² + wb σb² + (wa wb / w)(μa - μb)²)/w per axis. Symmetric bit for bit; equal
/// means are kept exactly.
inline em_gaussian em_moment_merge(const em_gaussian& a, const em_gaussian& b) noexcept {
  const double w = a.weight + b.weight;
  const double h = (a.weight * b.weight) / w;
  const double dx = a.mean_x - b.mean_x;
  const double dy = a.mean_y - b.mean_y;
  em_gaussian m;
  m.weight = w;
  m.mean_x = a.mean_x == b.mean_x ? a.mean_x : (a.weight * a.mean_x + b.weight * b.mean_x) / w;
  m.mean_y = a.mean_y == b.mean_y ? a.mean_y : (a.weight * a.mean_y + b.weight * b.mean_y) / w;
  m.var_x = (a.weight * a.var_x + b.weight * b.var_x + h * dx * dx) / w;
  m.var_y = (a.weight * a.var_y + b.weight * b.var_y + h * dy * dy) / w;
  return m;
}

/// A Gaussian prepared as the second argument of KL (logs and inverses computed once).
struct em_kl_target {
  double mean_x = 0;
  double mean_y = 0;
  double log_var_x = 0;
  double log_var_y = 0;
  double inv_var_x = 0;
  double inv_var_y = 0;
};

/// A Gaussian prepared as the first argument of KL.
struct em_kl_source {
  double mean_x = 0;
  double mean_y = 0;
  double var_x = 0;
  double var_y = 0;
  double log_var_x = 0;
  double log_var_y = 0;
};

inline em_kl_target em_target(const em_gaussian& g) noexcept {
  return {g.mean_x, g.mean_y, std::log(g.var_x), std::log(g.var_y), 1.0 / g.var_x, 1.0 / g.var_y};
}

inline em_kl_source em_source(const em_gaussian& f) noexcept {
  return {f.mean_x, f.mean_y, f.var_x, f.var_y, std::log(f.var_x), std::log(f.var_y)};
}

/// KL(f || g) of two diagonal Gaussians:
/// ½ Σ_axes [ln(σg²/σf²) + (σf² + (μf - μg)²)/σg² - 1].
inline double em_kl_prepared(const em_kl_source& f, const em_kl_target& g) noexcept {
  const double dx = f.mean_x - g.mean_x;
  const double dy = f.mean_y - g.mean_y;
  const double kx = (g.log_var_x - f.log_var_x) + (f.var_x + dx * dx) * g.inv_var_x - 1.0;
  const double ky = (g.log_var_y - f.log_var_y) + (f.var_y + dy * dy) * g.inv_var_y - 1.0;
  return 0.5 * (kx + ky);
}

/// KL(f || g) of two diagonal Gaussians (the weights play no part); the same numbers as the EM.
inline double em_kl(const em_gaussian& f, const em_gaussian& g) noexcept {
  return em_kl_prepared(em_source(f), em_target(g));
}

/// Assigns every source to the target of least KL (ties: the lower target) and returns the
/// objective Σ_t weight_t · min_j KL(f_t || g_j), summed in source order.
inline double em_assign(std::span<const em_kl_source> sources, std::span<const double> weights,
                        std::span<const em_kl_target> targets,
                        std::span<const unsigned char> enabled, std::vector<index_t>& assignment) {
  assignment.assign(sources.size(), index_t{-1});
  double objective = 0;
  for (std::size_t t = 0; t < sources.size(); ++t) {
    double best = std::numeric_limits<double>::infinity();
    index_t best_j = -1;
    for (std::size_t j = 0; j < targets.size(); ++j) {
      if (!enabled.empty() && enabled[j] == 0) continue;
      const double kl = em_kl_prepared(sources[t], targets[j]);
      if (kl < best || best_j < 0) {
        best = kl;
        best_j = static_cast<index_t>(j);
      }
    }
    assignment[t] = best_j;
    objective += weights[t] * best;
  }
  return objective;
}

CVK_KERNEL_END

/// A uniform grid over the means of live mixture components, for nearest-neighbour queries.
class em_nn_grid {
 public:
  /// Indexes the live nodes `ids` (cell side ≈ the mean spacing, at most 4·count + 16 cells).
  void build(const std::vector<em_gaussian>& nodes, const std::vector<index_t>& ids) {
    double x_lo = std::numeric_limits<double>::infinity();
    double y_lo = x_lo;
    double x_hi = -x_lo;
    double y_hi = -x_lo;
    for (const index_t id : ids) {
      const em_gaussian& g = nodes[static_cast<std::size_t>(id)];
      x_lo = std::min(x_lo, g.mean_x);
      x_hi = std::max(x_hi, g.mean_x);
      y_lo = std::min(y_lo, g.mean_y);
      y_hi = std::max(y_hi, g.mean_y);
    }
    const double count = static_cast<double>(std::max<std::size_t>(ids.size(), 1));
    const double ex = std::max(x_hi - x_lo, 0.0);
    const double ey = std::max(y_hi - y_lo, 0.0);
    double cell = std::sqrt(ex * ey / count);
    if (!(cell > 0)) cell = std::max(ex, ey) / count;
    if (!(cell > 0) || !std::isfinite(cell)) cell = 1.0;
    const double cap = 4.0 * count + 16.0;
    for (;;) {
      const double nx = std::floor(ex / cell) + 1.0;
      const double ny = std::floor(ey / cell) + 1.0;
      if (nx * ny <= cap) {
        nx_ = static_cast<index_t>(nx);
        ny_ = static_cast<index_t>(ny);
        break;
      }
      cell *= 2.0;
    }
    x0_ = x_lo;
    y0_ = y_lo;
    cell_ = cell;
    cells_.assign(static_cast<std::size_t>(nx_ * ny_), {});
    for (const index_t id : ids) insert(id, nodes[static_cast<std::size_t>(id)]);
  }

  void insert(index_t id, const em_gaussian& g) { cells_[cell_of(g)].push_back(id); }

  void erase(index_t id, const em_gaussian& g) {
    auto& cell = cells_[cell_of(g)];
    const auto it = std::find(cell.begin(), cell.end(), id);
    if (it != cell.end()) {
      *it = cell.back();
      cell.pop_back();
    }
  }

  /// The live node nearest to node `id` (other than itself) by squared distance, ties by lower
  /// id; {inf, -1} when there is none. Rings of cells are scanned outwards until no unscanned
  /// cell can hold a closer (or equally close) node.
  [[nodiscard]] std::pair<double, index_t> nearest(index_t id,
                                                   const std::vector<em_gaussian>& nodes) const {
    const em_gaussian& p = nodes[static_cast<std::size_t>(id)];
    const index_t ci = axis_cell(p.mean_x, x0_, nx_);
    const index_t cj = axis_cell(p.mean_y, y0_, ny_);
    std::pair<double, index_t> best{std::numeric_limits<double>::infinity(), index_t{-1}};
    const auto scan = [&](index_t i, index_t j) {
      if (i < 0 || j < 0 || i >= nx_ || j >= ny_) return;
      for (const index_t q : cells_[static_cast<std::size_t>(j * nx_ + i)]) {
        if (q == id) continue;
        const double d2 = em_distance2(p, nodes[static_cast<std::size_t>(q)]);
        if (d2 < best.first || (d2 == best.first && (best.second < 0 || q < best.second))) {
          best = {d2, q};
        }
      }
    };
    const index_t last_ring = std::max(nx_, ny_);
    for (index_t r = 0; r <= last_ring; ++r) {
      if (r == 0) {
        scan(ci, cj);
      } else {
        for (index_t i = ci - r; i <= ci + r; ++i) {
          scan(i, cj - r);
          scan(i, cj + r);
        }
        for (index_t j = cj - r + 1; j <= cj + r - 1; ++j) {
          scan(ci - r, j);
          scan(ci + r, j);
        }
      }
      // Nodes in ring r + 1 and beyond are at least r cells away along one axis.
      const double reach = static_cast<double>(r) * cell_;
      if (best.second >= 0 && best.first < reach * reach * (1.0 - 1e-9)) break;
    }
    return best;
  }

 private:
  [[nodiscard]] index_t axis_cell(double v, double origin, index_t count) const noexcept {
    const double c = std::floor((v - origin) / cell_);
    if (!(c > 0)) return 0;
    if (c >= static_cast<double>(count - 1)) return count - 1;
    return static_cast<index_t>(c);
  }
  [[nodiscard]] std::size_t cell_of(const em_gaussian& g) const noexcept {
    return static_cast<std::size_t>(axis_cell(g.mean_y, y0_, ny_) * nx_ +
                                    axis_cell(g.mean_x, x0_, nx_));
  }

  double x0_ = 0;
  double y0_ = 0;
  double cell_ = 1;
  index_t nx_ = 1;
  index_t ny_ = 1;
  std::vector<std::vector<index_t>> cells_;
};

/// Agglomerative initialisation of the collapse (reference agglomerative_init): the n input
/// components get ids 0..n-1; while more than k are live, the two live components whose means
/// are closest (least squared distance; ties: the pair (lower id, higher id) that is least) are
/// replaced by their moment-matched merge, which gets the next id (n, n+1, ...). Returns the
/// min(k, n) survivors in increasing id order (k = 0 is taken as 1).
///
/// Exact-duplicate means are merged first (distance 0, in the same order); the remaining merges
/// use a lazy heap of each component's nearest neighbour over a uniform grid. O(n log n) for
/// spread-out means; O(n²) at worst.
inline std::vector<em_gaussian> em_agglomerate(std::span<const em_gaussian> components,
                                               std::size_t k) {
  const std::size_t n = components.size();
  k = std::max<std::size_t>(k, 1);
  if (n <= k) return {components.begin(), components.end()};
  std::vector<em_gaussian> nodes(components.begin(), components.end());
  nodes.reserve(2 * n);
  std::vector<unsigned char> alive(n, 1);
  std::size_t live = n;
  const auto merge = [&](index_t a, index_t b) {
    const em_gaussian m =
        em_moment_merge(nodes[static_cast<std::size_t>(a)], nodes[static_cast<std::size_t>(b)]);
    nodes.push_back(m);
    alive[static_cast<std::size_t>(a)] = 0;
    alive[static_cast<std::size_t>(b)] = 0;
    alive.push_back(1);
    --live;
    return static_cast<index_t>(nodes.size() - 1);
  };

  // 1. Zero distances: groups of equal means, each merging its two lowest live ids, the group
  //    with the lowest such id first (the order of the closest-pair rule at distance 0).
  {
    std::vector<index_t> by_mean(n);
    std::iota(by_mean.begin(), by_mean.end(), index_t{0});
    std::sort(by_mean.begin(), by_mean.end(), [&](index_t a, index_t b) {
      const em_gaussian& ga = nodes[static_cast<std::size_t>(a)];
      const em_gaussian& gb = nodes[static_cast<std::size_t>(b)];
      if (ga.mean_x != gb.mean_x) return ga.mean_x < gb.mean_x;
      if (ga.mean_y != gb.mean_y) return ga.mean_y < gb.mean_y;
      return a < b;
    });
    std::vector<std::vector<index_t>> groups;
    for (std::size_t s = 0; s < n;) {
      std::size_t e = s + 1;
      const em_gaussian& g = nodes[static_cast<std::size_t>(by_mean[s])];
      while (e < n && nodes[static_cast<std::size_t>(by_mean[e])].mean_x == g.mean_x &&
             nodes[static_cast<std::size_t>(by_mean[e])].mean_y == g.mean_y) {
        ++e;
      }
      if (e - s >= 2)
        groups.emplace_back(by_mean.begin() + static_cast<std::ptrdiff_t>(s),
                            by_mean.begin() + static_cast<std::ptrdiff_t>(e));
      s = e;
    }
    using head = std::pair<index_t, std::size_t>;  // (lowest live id, group)
    std::priority_queue<head, std::vector<head>, std::greater<>> queue;
    std::vector<std::size_t> first(groups.size(), 0);
    for (std::size_t g = 0; g < groups.size(); ++g) queue.emplace(groups[g][0], g);
    while (live > k && !queue.empty()) {
      const std::size_t g = queue.top().second;
      queue.pop();
      std::vector<index_t>& ids = groups[g];
      const index_t merged = merge(ids[first[g]], ids[first[g] + 1]);
      first[g] += 2;
      ids.push_back(merged);
      if (ids.size() - first[g] >= 2) queue.emplace(ids[first[g]], g);
    }
  }

  // 2. The closest pairs, by a lazy heap: every live component has one entry (its nearest live
  //    neighbour when pushed); an entry whose neighbour has died is re-queried when it surfaces.
  if (live > k) {
    struct entry {
      double d2;
      index_t lo;
      index_t hi;
      index_t owner;
      bool operator>(const entry& o) const noexcept {
        if (d2 != o.d2) return d2 > o.d2;
        if (lo != o.lo) return lo > o.lo;
        if (hi != o.hi) return hi > o.hi;
        return owner > o.owner;
      }
    };
    std::priority_queue<entry, std::vector<entry>, std::greater<>> heap;
    em_nn_grid grid;
    std::vector<index_t> ids;
    const auto rebuild = [&] {
      ids.clear();
      for (std::size_t i = 0; i < nodes.size(); ++i) {
        if (alive[i] != 0) ids.push_back(static_cast<index_t>(i));
      }
      grid.build(nodes, ids);
    };
    const auto push_nearest = [&](index_t owner) {
      const auto [d2, other] = grid.nearest(owner, nodes);
      if (other >= 0) heap.push({d2, std::min(owner, other), std::max(owner, other), owner});
    };
    rebuild();
    std::size_t built = live;
    for (const index_t id : ids) push_nearest(id);
    while (live > k && !heap.empty()) {
      const entry e = heap.top();
      heap.pop();
      if (alive[static_cast<std::size_t>(e.owner)] == 0) continue;
      const index_t other = e.owner == e.lo ? e.hi : e.lo;
      if (alive[static_cast<std::size_t>(other)] == 0) {
        push_nearest(e.owner);
        continue;
      }
      grid.erase(e.lo, nodes[static_cast<std::size_t>(e.lo)]);
      grid.erase(e.hi, nodes[static_cast<std::size_t>(e.hi)]);
      const index_t merged = merge(e.lo, e.hi);
      if (live * 4 < built) {
        rebuild();
        built = live;
      } else {
        grid.insert(merged, nodes[static_cast<std::size_t>(merged)]);
      }
      if (live > k) push_nearest(merged);
    }
  }

  std::vector<em_gaussian> result;
  result.reserve(live);
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    if (alive[i] != 0) result.push_back(nodes[i]);
  }
  return result;
}

/// What em_collapse returns.
struct em_collapse_result {
  std::vector<em_gaussian> mixture;  ///< the k collapsed components
  std::vector<index_t> assignment;   ///< per input component: its least-KL collapsed component
  std::vector<double> objective;     ///< Σ_t w_t min_j KL(f_t || g_j): initial, then per iteration
  int iterations = 0;                ///< M-steps kept
  bool converged = false;            ///< the last decrease was <= tolerance
};

/// Collapses the mixture `components` (weights as given) onto `mixture` (its initial value) by
/// the hard-assignment EM of the reference's collapse(): E-step, each input component to the
/// collapsed component of least KL(f_t || g_j) (ties: lower j; weights of g play no part);
/// M-step, each collapsed component with members becomes their moment-matched Gaussian
/// (components without members are left as they are). The objective
/// d = Σ_t w_t min_j KL(f_t || g_j) does not increase; iterations stop when it decreases by
/// <= tolerance or after max_iterations M-steps. A step that would increase d (by rounding:
/// the assignment is a fixed point) is undone and counts as converged. O(iterations · n · k).
inline em_collapse_result em_collapse(std::span<const em_gaussian> components,
                                      std::vector<em_gaussian> mixture, int max_iterations,
                                      double tolerance) {
  em_collapse_result result;
  const std::size_t n = components.size();
  const std::size_t k = mixture.size();
  std::vector<em_kl_source> sources(n);
  std::vector<double> weights(n);
  for (std::size_t t = 0; t < n; ++t) {
    sources[t] = em_source(components[t]);
    weights[t] = components[t].weight;
  }
  std::vector<em_kl_target> targets(k);
  const auto prepare = [&](const std::vector<em_gaussian>& g) {
    for (std::size_t j = 0; j < k; ++j) targets[j] = em_target(g[j]);
  };
  prepare(mixture);
  double d = em_assign(sources, weights, targets, {}, result.assignment);
  result.objective.push_back(d);
  std::vector<index_t> next_assignment;
  std::vector<double> beta(k);
  std::vector<double> sum_x(k);
  std::vector<double> sum_y(k);
  for (int iteration = 1; iteration <= max_iterations; ++iteration) {
    // M-step
    std::vector<em_gaussian> next = mixture;
    std::fill(beta.begin(), beta.end(), 0.0);
    std::fill(sum_x.begin(), sum_x.end(), 0.0);
    std::fill(sum_y.begin(), sum_y.end(), 0.0);
    for (std::size_t t = 0; t < n; ++t) {
      const auto j = static_cast<std::size_t>(result.assignment[t]);
      beta[j] += weights[t];
      sum_x[j] += weights[t] * components[t].mean_x;
      sum_y[j] += weights[t] * components[t].mean_y;
    }
    for (std::size_t j = 0; j < k; ++j) {
      if (beta[j] > 0) {
        next[j] = {beta[j], sum_x[j] / beta[j], sum_y[j] / beta[j], 0.0, 0.0};
      }
    }
    for (std::size_t t = 0; t < n; ++t) {
      const auto j = static_cast<std::size_t>(result.assignment[t]);
      const double dx = components[t].mean_x - next[j].mean_x;
      const double dy = components[t].mean_y - next[j].mean_y;
      next[j].var_x += weights[t] * (components[t].var_x + dx * dx);
      next[j].var_y += weights[t] * (components[t].var_y + dy * dy);
    }
    for (std::size_t j = 0; j < k; ++j) {
      if (beta[j] > 0) {
        next[j].var_x /= beta[j];
        next[j].var_y /= beta[j];
      }
    }
    // E-step
    prepare(next);
    const double next_d = em_assign(sources, weights, targets, {}, next_assignment);
    if (next_d > d) {  // only by rounding: keep the previous state, which is converged
      result.converged = true;
      break;
    }
    mixture = std::move(next);
    result.assignment.swap(next_assignment);
    result.objective.push_back(next_d);
    result.iterations = iteration;
    const double decrease = d - next_d;
    d = next_d;
    if (decrease <= tolerance) {
      result.converged = true;
      break;
    }
  }
  result.mixture = std::move(mixture);
  return result;
}

/// Round half to even (numpy.round), without depending on the floating-point environment.
inline double em_round_half_even(double x) noexcept {
  const double r = std::round(x);
  if (std::fabs(x - std::trunc(x)) == 0.5) return 2.0 * std::round(x / 2.0);
  return r;
}

/// Median (mean of the two middle values for an even count); the vector is reordered.
inline double em_median(std::vector<double>& values) {
  const std::size_t n = values.size();
  const std::size_t mid = n / 2;
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(mid), values.end());
  const double upper = values[mid];
  if (n % 2 == 1) return upper;
  const double lower =
      *std::max_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(mid));
  return 0.5 * (lower + upper);
}

/// One detection that passed the filters, in the merger's coordinates.
template <class R>
struct em_detection {
  index_t index = 0;        ///< row in the input
  std::array<R, 4> xyxy{};  ///< corners, for the NMS steps
  double score = 0;         ///< confidence: the Gaussian's weight
  double final_score = 0;   ///< ranking score
  double cx = 0;            ///< centre
  double cy = 0;
  double half_w = 0;  ///< half of the shrunk width = σx
  double half_h = 0;  ///< half of the shrunk height = σy
};

/// The heat map over the scene and its regions (8-connected cells with heat > threshold).
struct em_heat_map {
  double x0 = 0;
  double y0 = 0;
  double cell = 1;
  index_t nx = 0;
  index_t ny = 0;
  std::vector<double> heat;
  std::vector<std::int32_t> label;        ///< region of each cell, -1 below the threshold
  std::vector<std::size_t> region_cells;  ///< cells per region

  [[nodiscard]] std::size_t cell_of(double x, double y) const noexcept {
    return static_cast<std::size_t>(axis(y, y0, ny) * nx + axis(x, x0, nx));
  }

 private:
  [[nodiscard]] index_t axis(double v, double origin, index_t count) const noexcept {
    const double c = std::floor((v - origin) / cell);
    if (!(c > 0)) return 0;
    if (c >= static_cast<double>(count - 1)) return count - 1;
    return static_cast<index_t>(c);
  }
};

/// The cell range [lo, hi] whose centres lie in [a, b] along one axis (origin, cell, count);
/// a box too small to contain a centre gets the cell holding its middle, with lo > hi flagged by
/// `tiny`.
inline std::pair<index_t, index_t> em_cell_span(double a, double b, double origin, double cell,
                                                index_t count, bool& tiny) noexcept {
  const double lo = std::ceil((a - origin) / cell - 0.5);
  const double hi = std::floor((b - origin) / cell - 0.5);
  const double last = static_cast<double>(count - 1);
  const double clo = std::clamp(lo, 0.0, last);
  const double chi = std::clamp(hi, 0.0, last);
  if (lo > hi || lo > last || hi < 0) {
    tiny = true;
    const double mid = std::clamp(std::floor((0.5 * (a + b) - origin) / cell), 0.0, last);
    return {static_cast<index_t>(mid), static_cast<index_t>(mid)};
  }
  tiny = false;
  return {static_cast<index_t>(clo), static_cast<index_t>(chi)};
}

/// Rasterises Σ_t score_t · bump_t, bump_t = (exp(-dx²/(2σx²) - dy²/(2σy²)) - e⁻¹)/(1 - e⁻¹)
/// inside the shrunk box t (the reference's min-max normalised Gaussian: 1 at the centre, 0 at
/// the corners), sampled at cell centres; labels the 8-connected regions of heat > threshold·max
/// in raster order of their first cell.
template <class R, class Options>
em_heat_map em_build_heat_map(const std::vector<em_detection<R>>& dets, const Options& options) {
  em_heat_map map;
  if (dets.empty()) return map;
  std::vector<double> widths;
  std::vector<double> heights;
  widths.reserve(dets.size());
  heights.reserve(dets.size());
  double x_lo = std::numeric_limits<double>::infinity();
  double y_lo = x_lo;
  double x_hi = -x_lo;
  double y_hi = -x_lo;
  for (const auto& d : dets) {
    widths.push_back(2.0 * d.half_w);
    heights.push_back(2.0 * d.half_h);
    x_lo = std::min(x_lo, d.cx - d.half_w);
    x_hi = std::max(x_hi, d.cx + d.half_w);
    y_lo = std::min(y_lo, d.cy - d.half_h);
    y_hi = std::max(y_hi, d.cy + d.half_h);
  }
  const double median_side = std::min(em_median(widths), em_median(heights));
  double cell = median_side / static_cast<double>(options.grid_resolution);
  const double ex = x_hi - x_lo;
  const double ey = y_hi - y_lo;
  const double max_cells = static_cast<double>(options.max_grid_cells);
  for (int attempt = 0; attempt < 256; ++attempt) {
    const double nx = std::floor(ex / cell) + 1.0;
    const double ny = std::floor(ey / cell) + 1.0;
    double footprint = 0;
    if (nx * ny <= max_cells) {
      for (const auto& d : dets) {
        footprint += (std::min(2.0 * d.half_w / cell, nx) + 1.0) *
                     (std::min(2.0 * d.half_h / cell, ny) + 1.0);
      }
      if (footprint <= 4.0 * max_cells) {
        map.nx = static_cast<index_t>(nx);
        map.ny = static_cast<index_t>(ny);
        break;
      }
    }
    const double ratio = std::max(nx * ny / max_cells, footprint / (4.0 * max_cells));
    cell *= std::max(std::sqrt(std::isfinite(ratio) ? ratio : 4.0), 1.0) * 1.0001;
    if (!std::isfinite(cell)) cell = std::numeric_limits<double>::max();
  }
  if (map.nx == 0) {  // unreachable for finite input; one cell as a last resort
    map.nx = 1;
    map.ny = 1;
    cell = std::max({ex, ey, 1.0});
  }
  map.x0 = x_lo;
  map.y0 = y_lo;
  map.cell = cell;
  const auto nx = static_cast<std::size_t>(map.nx);
  // The grid is bounded by options.max_grid_cells only: a large bound may ask for more memory
  // than there is, which is reported as an error naming that option.
  const auto grid_text = [&] {
    return "max_grid_cells = " + std::to_string(options.max_grid_cells) + ", a grid of " +
           std::to_string(map.nx) + "×" + std::to_string(map.ny) + " cells";
  };
  const index_t heat_cells = checked_mul(map.nx, map.ny, "em_merge", "options", grid_text);
  checked_allocation<double>(heat_cells, "em_merge", "options", grid_text,
                             [&] { map.heat.assign(static_cast<std::size_t>(heat_cells), 0.0); });

  const double e1 = std::exp(-1.0);
  std::vector<double> fx;
  std::vector<double> fy;
  for (const auto& d : dets) {
    bool tiny_x = false;
    bool tiny_y = false;
    const auto [i_lo, i_hi] =
        em_cell_span(d.cx - d.half_w, d.cx + d.half_w, map.x0, cell, map.nx, tiny_x);
    const auto [j_lo, j_hi] =
        em_cell_span(d.cy - d.half_h, d.cy + d.half_h, map.y0, cell, map.ny, tiny_y);
    fx.clear();
    fy.clear();
    for (index_t i = i_lo; i <= i_hi; ++i) {
      const double dx = map.x0 + (static_cast<double>(i) + 0.5) * cell - d.cx;
      fx.push_back(tiny_x ? 1.0 : std::exp(-(dx * dx) / (2.0 * d.half_w * d.half_w)));
    }
    for (index_t j = j_lo; j <= j_hi; ++j) {
      const double dy = map.y0 + (static_cast<double>(j) + 0.5) * cell - d.cy;
      fy.push_back(tiny_y ? 1.0 : std::exp(-(dy * dy) / (2.0 * d.half_h * d.half_h)));
    }
    const double scale = d.score / (1.0 - e1);
    for (std::size_t j = 0; j < fy.size(); ++j) {
      double* row = map.heat.data() + (static_cast<std::size_t>(j_lo) + j) * nx +
                    static_cast<std::size_t>(i_lo);
      for (std::size_t i = 0; i < fx.size(); ++i) {
        row[i] += scale * std::max(fx[i] * fy[j] - e1, 0.0);
      }
    }
  }

  const double top = *std::max_element(map.heat.begin(), map.heat.end());
  const double threshold = options.heat_threshold * top;
  // the labels are a second grid as large as the heat map: checked the same way
  checked_allocation<std::int32_t>(heat_cells, "em_merge", "options", grid_text, [&] {
    map.label.assign(static_cast<std::size_t>(heat_cells), -1);
  });
  std::vector<std::size_t> queue;
  const auto ny = static_cast<std::size_t>(map.ny);
  for (std::size_t start = 0; start < map.heat.size(); ++start) {
    if (map.label[start] >= 0 || !(map.heat[start] > threshold)) continue;
    const auto region = static_cast<std::int32_t>(map.region_cells.size());
    std::size_t cells = 0;
    queue.clear();
    queue.push_back(start);
    map.label[start] = region;
    for (std::size_t q = 0; q < queue.size(); ++q) {
      const std::size_t c = queue[q];
      ++cells;
      const std::size_t ci = c % nx;
      const std::size_t cj = c / nx;
      for (int dj = -1; dj <= 1; ++dj) {
        for (int di = -1; di <= 1; ++di) {
          if ((di == 0 && dj == 0) || (di < 0 && ci == 0) || (dj < 0 && cj == 0) ||
              (di > 0 && ci + 1 == nx) || (dj > 0 && cj + 1 == ny)) {
            continue;
          }
          const std::size_t nc = (dj < 0 ? cj - 1 : cj + static_cast<std::size_t>(dj)) * nx +
                                 (di < 0 ? ci - 1 : ci + static_cast<std::size_t>(di));
          if (map.label[nc] < 0 && map.heat[nc] > threshold) {
            map.label[nc] = region;
            queue.push_back(nc);
          }
        }
      }
    }
    map.region_cells.push_back(cells);
  }
  return map;
}

/// Greedy NMS (cvk::nms) over the detections at `members` (positions into dets, in canonical
/// order, so equal final scores keep that order); appends the survivors to `out`.
template <class R>
void em_nms_into(const std::vector<em_detection<R>>& dets, const std::vector<std::size_t>& members,
                 double threshold, std::vector<std::size_t>& out) {
  std::vector<std::array<R, 4>> boxes;
  std::vector<double> scores;
  boxes.reserve(members.size());
  scores.reserve(members.size());
  for (const std::size_t m : members) {
    boxes.push_back(dets[m].xyxy);
    scores.push_back(dets[m].final_score);
  }
  const tensor<index_t, 1> kept = nms(boxes, scores, threshold);
  for (const index_t k : kept) out.push_back(members[static_cast<std::size_t>(k)]);
}

/// The merger on filtered detections in canonical order; returns the chosen positions into
/// dets, by descending final score (equal: canonical order).
template <class R, class Options>
std::vector<std::size_t> em_merge_detections(const std::vector<em_detection<R>>& dets,
                                             const Options& options) {
  std::vector<std::size_t> picks;
  if (dets.empty()) return picks;
  const em_heat_map map = em_build_heat_map(dets, options);
  std::vector<std::vector<std::size_t>> regions(map.region_cells.size());
  for (std::size_t t = 0; t < dets.size(); ++t) {
    const std::int32_t r = map.label[map.cell_of(dets[t].cx, dets[t].cy)];
    if (r >= 0) regions[static_cast<std::size_t>(r)].push_back(t);
  }
  const double cell_area = map.cell * map.cell;
  const double chi2 = -2.0 * std::log1p(-options.redundancy_probability);  // χ²₂ quantile
  std::vector<double> areas;
  std::vector<em_gaussian> comps;
  for (std::size_t r = 0; r < regions.size(); ++r) {
    const std::vector<std::size_t>& members = regions[r];
    const std::size_t n = members.size();
    if (n == 0) continue;
    if (n == 1) {
      picks.push_back(members[0]);
      continue;
    }
    areas.clear();
    for (const std::size_t m : members) {
      areas.push_back(4.0 * dets[m].half_w * dets[m].half_h);
    }
    const double ratio = static_cast<double>(map.region_cells[r]) * cell_area / em_median(areas);
    const double estimate = std::max(1.0, em_round_half_even(ratio));
    if (!(estimate <= static_cast<double>(options.max_components)) ||
        n > static_cast<std::size_t>(options.max_region_detections)) {
      em_nms_into(dets, members, options.nms_threshold, picks);
      continue;
    }
    const auto k = static_cast<std::size_t>(estimate);
    if (n <= k) {
      picks.insert(picks.end(), members.begin(), members.end());
      continue;
    }
    double total = 0;
    for (const std::size_t m : members) total += dets[m].score;
    comps.clear();
    for (const std::size_t m : members) {
      const auto& d = dets[m];
      comps.push_back({d.score / total, d.cx, d.cy, d.half_w * d.half_w, d.half_h * d.half_h});
    }
    em_collapse_result collapsed =
        em_collapse(comps, em_agglomerate(comps, k), options.max_iterations, options.tolerance);
    const std::vector<em_gaussian>& mixture = collapsed.mixture;
    const std::size_t kk = mixture.size();
    // Redundant components: a mean inside the other's χ² ellipse; the one with less heat goes.
    std::vector<unsigned char> enabled(kk, 1);
    bool removed = false;
    if (options.redundancy_probability > 0) {
      const auto inside = [chi2](const em_gaussian& g, const em_gaussian& p) {
        const double dx = p.mean_x - g.mean_x;
        const double dy = p.mean_y - g.mean_y;
        return dx * dx / (chi2 * g.var_x) + dy * dy / (chi2 * g.var_y) <= 1.0;
      };
      for (std::size_t i = 0; i < kk; ++i) {
        for (std::size_t j = i + 1; j < kk; ++j) {
          if (enabled[i] == 0 || enabled[j] == 0) continue;
          if (!inside(mixture[i], mixture[j]) && !inside(mixture[j], mixture[i])) continue;
          const double hi = map.heat[map.cell_of(mixture[i].mean_x, mixture[i].mean_y)];
          const double hj = map.heat[map.cell_of(mixture[j].mean_x, mixture[j].mean_y)];
          enabled[hj <= hi ? j : i] = 0;
          removed = true;
        }
      }
    }
    if (removed) {
      std::vector<em_kl_source> sources;
      std::vector<double> weights;
      std::vector<em_kl_target> targets;
      for (const auto& c : comps) {
        sources.push_back(em_source(c));
        weights.push_back(c.weight);
      }
      for (const auto& g : mixture) targets.push_back(em_target(g));
      em_assign(sources, weights, targets, enabled, collapsed.assignment);
    }
    // Each component keeps its best member whose centre lies in mean ± c·σ.
    std::vector<std::size_t> best(kk, dets.size());
    for (std::size_t t = 0; t < n; ++t) {
      const auto j = static_cast<std::size_t>(collapsed.assignment[t]);
      if (best[j] != dets.size()) continue;  // members come best first
      const auto& d = dets[members[t]];
      const em_gaussian& g = mixture[j];
      if (std::fabs(d.cx - g.mean_x) <= options.candidate_sigmas * std::sqrt(g.var_x) &&
          std::fabs(d.cy - g.mean_y) <= options.candidate_sigmas * std::sqrt(g.var_y)) {
        best[j] = members[t];
      }
    }
    for (const std::size_t b : best) {
      if (b != dets.size()) picks.push_back(b);
    }
  }
  std::sort(picks.begin(), picks.end());
  std::vector<std::size_t> result;
  em_nms_into(dets, picks, options.nms_threshold, result);
  return result;
}

}  // namespace detail
CVK_END_NAMESPACE
