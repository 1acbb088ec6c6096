// cvk — computer-vision kernels, header-only C++20.
// box_voting and var_voting on the scenes of docs/nms.md: uniform boxes on a 1000×1000 image
// (sides 1–50, N = 10k) and a dense shelf (150 objects × 200 jittered candidates), against the
// definitions written plainly ("loop"): Detectron's box_voting comparing every kept box with
// every box (O(K·N)), and KL-Loss's soft() loop with its in-place swaps, IoUs computed on the fly
// instead of a stored N×N matrix (O(N²) time, O(N) memory).
// box_voting votes (IoU >= 0.8, Detectron's default) the survivors of cvk::nms at 0.5 with all
// boxes; var_voting runs with KL-Loss's defaults (σ_t 0.01, gaussian decay).
// SPDX-License-Identifier: MIT
#include <benchmark/benchmark.h>

#include <array>
#include <cmath>
#include <cstddef>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "common.hpp"
#include "cvk/cvk.hpp"
#include "cvk/nms/voting.hpp"

namespace {

using cvk::index_t;
using cvk_bench::type_name;

template <class T>
struct scene {
  std::vector<std::array<T, 4>> boxes;
  std::vector<T> scores;
  std::vector<std::array<T, 4>> variances;
  std::vector<std::array<T, 4>> kept;  // cvk::nms(boxes, scores, 0.5) survivors
  std::vector<T> kept_scores;
};

enum class kind { uniform, shelf };

std::string op_name(const char* op, kind k) {
  return std::string(op) + (k == kind::shelf ? "_shelf" : "");
}

template <class T>
const scene<T>& make_scene(kind k, std::size_t n) {
  static std::map<std::pair<int, std::size_t>, scene<T>> cache;
  auto [it, inserted] = cache.try_emplace({static_cast<int>(k), n});
  if (!inserted) return it->second;
  scene<T>& s = it->second;
  cvk::rng gen(2019, n + 31 * static_cast<std::size_t>(k));
  s.boxes.resize(n);
  s.scores.resize(n);
  s.variances.resize(n);
  if (k == kind::uniform) {
    for (auto& b : s.boxes) b = cvk_bench::uniform_scene_box<T>(gen);
  } else {
    cvk_bench::shelf_scene(gen, n / 150, s.boxes);  // the dense shelf (common.hpp)
  }
  for (std::size_t i = 0; i < n; ++i) {
    s.scores[i] = gen.uniform<T>(T(0), T(1));
    for (auto& v : s.variances[i]) v = static_cast<T>(gen.uniform(0.1, 4.0));
  }
  for (const index_t i : cvk::nms(s.boxes, s.scores, 0.5)) {
    s.kept.push_back(s.boxes[static_cast<std::size_t>(i)]);
    s.kept_scores.push_back(s.scores[static_cast<std::size_t>(i)]);
  }
  return s;
}

// ---------------------------------------------------------------------------------------------
// The plain loops (same operations and summation order as cvk, so the results are identical).
CVK_KERNEL_BEGIN
template <class T>
using acc_t = std::conditional_t<(sizeof(T) < sizeof(double)), double, T>;

/// Detectron's box_voting (ID scoring): every kept box against every box.
template <class T>
std::vector<std::array<T, 4>> plain_box_voting(const scene<T>& s, double threshold) {
  using A = acc_t<T>;
  const auto thresh = static_cast<T>(threshold);
  std::vector<std::array<T, 4>> out = s.kept;
  for (std::size_t k = 0; k < s.kept.size(); ++k) {
    const auto& t = s.kept[k];
    const T area_t = (t[2] - t[0]) * (t[3] - t[1]);
    std::array<A, 4> num{};
    A den = 0;
    for (std::size_t j = 0; j < s.boxes.size(); ++j) {
      const auto& a = s.boxes[j];
      const T right = a[2] < t[2] ? a[2] : t[2];
      const T left = t[0] < a[0] ? a[0] : t[0];
      const T iw = right - left;
      if (!(iw > T(0))) continue;
      const T bottom = a[3] < t[3] ? a[3] : t[3];
      const T upper = t[1] < a[1] ? a[1] : t[1];
      const T ih = bottom - upper;
      if (!(ih > T(0))) continue;
      const T area_a = (a[2] - a[0]) * (a[3] - a[1]);
      const T inter = iw * ih;
      const T ov = inter / (area_t + area_a - inter);
      if (!(ov >= thresh)) continue;
      const auto w = static_cast<A>(s.scores[j]);
      for (std::size_t c = 0; c < 4; ++c) num[c] += static_cast<A>(a[c]) * w;
      den += w;
    }
    if (den != A(0)) {
      for (std::size_t c = 0; c < 4; ++c) out[k][c] = static_cast<T>(num[c] / den);
    }
  }
  return out;
}

/// KL-Loss's soft() (stdiou, gaussian decay, σ_t 0.01, threshold 0.01), IoUs on the fly.
template <class T>
std::vector<index_t> plain_var_voting(const scene<T>& s) {
  using A = acc_t<T>;
  std::size_t n = s.boxes.size();
  std::vector<std::array<T, 4>> dets = s.boxes;
  std::vector<T> sc = s.scores;
  std::vector<std::array<T, 4>> var = s.variances;
  std::vector<index_t> idx(n);
  std::vector<T> areas(n);
  for (std::size_t i = 0; i < n; ++i) {
    idx[i] = static_cast<index_t>(i);
    areas[i] = (dets[i][2] - dets[i][0]) * (dets[i][3] - dets[i][1]);
  }
  const auto swap_rows = [&](std::size_t a, std::size_t b) {
    std::swap(dets[a], dets[b]);
    std::swap(sc[a], sc[b]);
    std::swap(var[a], var[b]);
    std::swap(idx[a], idx[b]);
    std::swap(areas[a], areas[b]);
  };
  const auto iou = [&](const std::array<T, 4>& p, T area_p, std::size_t j) {
    const auto& q = dets[j];
    const T xx1 = p[0] < q[0] ? q[0] : p[0];
    const T yy1 = p[1] < q[1] ? q[1] : p[1];
    const T xx2 = q[2] < p[2] ? q[2] : p[2];
    const T yy2 = q[3] < p[3] ? q[3] : p[3];
    const T wv = xx2 - xx1;
    const T hv = yy2 - yy1;
    const T w = wv < T(0) ? T(0) : wv;
    const T h = hv < T(0) ? T(0) : hv;
    const T inter = w * h;
    return inter / (area_p + areas[j] - inter);
  };
  std::vector<index_t> order;
  std::size_t i = 0;
  while (i < n) {
    std::size_t maxpos = i;
    for (std::size_t p = i + 1; p < n; ++p) {
      if (sc[p] > sc[maxpos]) maxpos = p;
    }
    swap_rows(maxpos, i);
    const std::array<T, 4> own = dets[i];  // IoUs use the input boxes
    const T own_area = areas[i];
    std::array<A, 4> num{};
    std::array<A, 4> den{};
    for (std::size_t c = 0; c < 4; ++c) {
      num[c] += static_cast<A>(own[c]) / static_cast<A>(var[i][c]);
      den[c] += A(1) / static_cast<A>(var[i][c]);
    }
    for (std::size_t p = i + 1; p < n; ++p) {
      const T o = iou(own, own_area, p);
      if (!(static_cast<double>(o) > 0.01)) continue;
      const A d = A(1) - static_cast<A>(o);
      const A weight = std::exp(-(d * d) / A(0.01));
      for (std::size_t c = 0; c < 4; ++c) {
        num[c] += weight * (static_cast<A>(dets[p][c]) / static_cast<A>(var[p][c]));
        den[c] += weight * (A(1) / static_cast<A>(var[p][c]));
      }
    }
    for (std::size_t c = 0; c < 4; ++c) dets[i][c] = static_cast<T>(num[c] / den[c]);
    order.push_back(idx[i]);
    std::size_t pos = i + 1;
    while (pos < n) {
      const T o = iou(own, own_area, pos);
      if (o > T(0)) {
        const auto ov = static_cast<A>(o);
        sc[pos] = static_cast<T>(static_cast<A>(sc[pos]) * std::exp(-(ov * ov) / A(0.5)));
        if (static_cast<double>(sc[pos]) < 0.001) {
          swap_rows(pos, n - 1);
          --n;
          continue;
        }
      }
      ++pos;
    }
    ++i;
  }
  return order;
}
CVK_KERNEL_END

constexpr double vote_threshold = 0.8;

template <class T>
void run_box_voting(benchmark::State& state, kind k, std::size_t n, bool loop) {
  const scene<T>& s = make_scene<T>(k, n);
  const auto once = [&] {
    return cvk::box_voting(s.kept, s.kept_scores, s.boxes, s.scores,
                           {.threshold = vote_threshold, .threads = 1});
  };
  const bool same =
      cvk_bench::checked_once(op_name("box_voting", k) + type_name<T>() + std::to_string(n), [&] {
        const auto r = once();
        const auto want = plain_box_voting(s, vote_threshold);
        for (std::size_t i = 0; i < want.size(); ++i) {
          for (std::size_t c = 0; c < 4; ++c) {
            if (r.boxes(static_cast<index_t>(i), static_cast<index_t>(c)) != want[i][c])
              return false;
          }
        }
        return true;
      });
  if (!same) {
    state.SkipWithError("cvk disagrees with the plain loop");
    return;
  }
  for ([[maybe_unused]] auto iteration : state) {
    if (loop) {
      const auto r = plain_box_voting(s, vote_threshold);
      benchmark::DoNotOptimize(r.data());
    } else {
      const auto r = once();
      benchmark::DoNotOptimize(r.boxes.data());
    }
  }
  cvk_bench::set_items(state, n);
  state.counters["kept"] = static_cast<double>(s.kept.size());
  state.SetLabel(loop ? "boxes/s; Detectron's box_voting written plainly (O(K·N))"
                      : "boxes/s; cvk::box_voting of the nms(0.5) survivors, IoU >= 0.8");
}

template <class T>
void run_var_voting(benchmark::State& state, kind k, std::size_t n, bool loop) {
  const scene<T>& s = make_scene<T>(k, n);
  const auto once = [&] { return cvk::var_voting(s.boxes, s.scores, s.variances); };
  const bool same =
      cvk_bench::checked_once(op_name("var_voting", k) + type_name<T>() + std::to_string(n), [&] {
        const auto r = once();
        return std::vector<index_t>(r.indices.begin(), r.indices.end()) == plain_var_voting(s);
      });
  if (!same) {
    state.SkipWithError("cvk disagrees with the plain loop");
    return;
  }
  std::size_t selected = 0;
  for ([[maybe_unused]] auto iteration : state) {
    if (loop) {
      const auto r = plain_var_voting(s);
      selected = r.size();
      benchmark::DoNotOptimize(r.data());
    } else {
      const auto r = once();
      selected = static_cast<std::size_t>(r.indices.size());
      benchmark::DoNotOptimize(r.boxes.data());
    }
  }
  cvk_bench::set_items(state, n);
  state.counters["selected"] = static_cast<double>(selected);
  state.SetLabel(loop ? "boxes/s; KL-Loss's soft() loop written plainly (O(N²))"
                      : "boxes/s; cvk::var_voting, KL-Loss defaults");
}

template <class T>
void register_type() {
  struct entry {
    kind k;
    std::size_t n;
  };
  const std::array<entry, 2> entries = {{{kind::uniform, 10'000}, {kind::shelf, 30'000}}};
  for (const entry& e : entries) {
    const kind k = e.k;
    const std::size_t n = e.n;
    for (const bool loop : {false, true}) {
      const char* impl = loop ? "loop" : "cvk";
      cvk_bench::add(cvk_bench::name(op_name("box_voting", k), impl, type_name<T>(), {{"N", n}}, 1),
                     [k, n, loop](benchmark::State& s) { run_box_voting<T>(s, k, n, loop); });
      cvk_bench::add(cvk_bench::name(op_name("var_voting", k), impl, type_name<T>(), {{"N", n}}, 1),
                     [k, n, loop](benchmark::State& s) { run_var_voting<T>(s, k, n, loop); });
    }
  }
}

// Issue 9's scenes at 20k boxes (common.hpp, adversarial_scene): uniform, far outlier, one
// NaN box. box_voting: every box is a kept box and a voter; var_voting: unit variances.
struct boxes_and_variances {
  std::vector<std::array<float, 4>> boxes;
  std::vector<std::array<float, 4>> variances;
};

const bool registered = [] {
  register_type<float>();
  register_type<double>();
  cvk_bench::add_adversarial("box_voting_adversarial", 20'000, {0, 3, 5},
                             [](const auto& boxes, const std::vector<float>& scores) {
                               return cvk::box_voting(boxes, scores, boxes, scores,
                                                      {.threshold = vote_threshold});
                             });
  cvk_bench::add_adversarial(
      "var_voting_adversarial", 20'000, {0, 3, 5},
      [](const std::vector<std::array<float, 4>>& boxes) {
        return boxes_and_variances{
            boxes, std::vector<std::array<float, 4>>(boxes.size(), {1.0F, 1.0F, 1.0F, 1.0F})};
      },
      [](const boxes_and_variances& input, const std::vector<float>& scores) {
        return cvk::var_voting(input.boxes, scores, input.variances);
      });
  return true;
}();

}  // namespace
