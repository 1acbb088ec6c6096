// cvk — computer-vision kernels, header-only C++20.
// Tests of cvk/saliency/perturbation.hpp: occlusion against a plain loop written from Captum's
// formula (dense masks, long double) on seeded random problems (both layouts, float and double,
// strided and negative-stride views, scalar and tensor baselines, many batch sizes), hand cases,
// the closed form of a linear model, Captum-formula goldens from torch; RISE masks against the
// RISE authors' and TorchRay's upsampling (formula, resize_bilinear_plane, torch goldens), mask
// statistics, end-to-end goldens (cvk::rng re-implemented in Python), bit-identical results for
// any thread count and batch size, a region model, the two normalisations; and the errors.
// SPDX-License-Identifier: MIT
#include <cvk/core/rng.hpp>
#include <cvk/saliency/detail/resample.hpp>
#include <cvk/saliency/perturbation.hpp>

#if defined(CVK_TEST_HAS_EIGEN)
#  include <cvk/adapt/eigen.hpp>
#endif

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "support/conv_reference.hpp"
#include "support/fixtures.hpp"

namespace {

using cvk::index_t;
using nchw_t = std::array<index_t, 4>;
using cvk_test::storage;

constexpr std::array<cvk::layout, 2> layouts{cvk::layout::nchw, cvk::layout::nhwc};

std::size_t count_of(const nchw_t& e) {
  return static_cast<std::size_t>(e[0] * e[1] * e[2] * e[3]);
}

/// Element (c, y, x) of image b of a model batch in layout l.
template <class T>
T batch_at(cvk::strided_view<const T, 4> batch, cvk::layout l, index_t b, index_t c, index_t y,
           index_t x) {
  return l == cvk::layout::nchw ? batch(b, c, y, x) : batch(b, y, x, c);
}

/// score = bias + Σ w(c, y, x)·x(c, y, x) (+ quad·(Σ v·x)² when quad != 0), in long double,
/// (c, y, x) order whatever the layout: the same image gives the same score in both layouts.
template <class T>
struct quadratic_model {
  nchw_t shape{};  // 1×C×H×W
  std::vector<T> w, v;
  T bias = 0, quad = 0;
  cvk::layout l = cvk::layout::nchw;
  index_t calls = 0, evaluated = 0, largest_batch = 0;

  [[nodiscard]] T score(const std::vector<long double>& image) const {
    long double linear = bias, second = 0;
    for (std::size_t i = 0; i < image.size(); ++i) {
      linear += static_cast<long double>(w[i]) * image[i];
      second += static_cast<long double>(v[i]) * image[i];
    }
    return static_cast<T>(linear + static_cast<long double>(quad) * second * second);
  }

  void operator()(cvk::strided_view<const T, 4> batch, cvk::strided_view<T, 1> scores) {
    ++calls;
    const index_t b_count = batch.extent(0);
    evaluated += b_count;
    largest_batch = std::max(largest_batch, b_count);
    REQUIRE(batch.is_contiguous());
    REQUIRE(scores.extent(0) == b_count);
    for (index_t b = 0; b < b_count; ++b) {
      std::vector<long double> image;
      image.reserve(w.size());
      for (index_t c = 0; c < shape[1]; ++c)
        for (index_t y = 0; y < shape[2]; ++y)
          for (index_t x = 0; x < shape[3]; ++x)
            image.push_back(static_cast<long double>(batch_at(batch, l, b, c, y, x)));
      scores(b) = score(image);
    }
  }
};

template <class T>
quadratic_model<T> random_model(cvk::rng& gen, const nchw_t& e, cvk::layout l, bool quadratic) {
  quadratic_model<T> m;
  m.shape = {1, e[1], e[2], e[3]};
  const std::size_t size = static_cast<std::size_t>(e[1] * e[2] * e[3]);
  m.w = cvk_test::random_reals<T>(gen, size);
  m.v = cvk_test::random_reals<T>(gen, size);
  m.bias = gen.uniform<T>(T(-1), T(1));
  m.quad = quadratic ? T(0.25) : T(0);
  m.l = l;
  return m;
}

struct occlusion_case {
  nchw_t e{1, 1, 1, 1};
  cvk::occlusion_window window{};
  cvk::occlusion_strides strides{};
  bool average = true;
  [[nodiscard]] std::string describe() const {
    return std::to_string(e[0]) + "x" + std::to_string(e[1]) + "x" + std::to_string(e[2]) + "x" +
           std::to_string(e[3]) + " window " + std::to_string(window.channels) + "," +
           std::to_string(window.height) + "," + std::to_string(window.width) + " strides " +
           std::to_string(strides.channels) + "," + std::to_string(strides.height) + "," +
           std::to_string(strides.width) + (average ? " average" : " sum");
  }
};

/// Captum's occlusion from its formula: dense 0/1 masks per window, x·(1 − mask) + b·mask,
/// total += Δ·mask, weight += mask, attribution = total / weight (or total). NCHW data;
/// baseline: empty (use `value`), C·H·W (broadcast) or N·C·H·W.
template <class T>
std::vector<T> reference_occlusion(const occlusion_case& p, const std::vector<T>& x,
                                   const std::vector<T>& baseline, T value,
                                   const quadratic_model<T>& model) {
  const index_t n_img = p.e[0], c_n = p.e[1], h_n = p.e[2], w_n = p.e[3];
  const std::size_t image = static_cast<std::size_t>(c_n * h_n * w_n);
  const index_t kc = p.window.channels == 0 ? c_n : p.window.channels;
  const std::array<index_t, 3> extent{c_n, h_n, w_n}, k{kc, p.window.height, p.window.width},
      s{p.strides.channels, p.strides.height, p.strides.width};
  std::array<std::vector<std::array<index_t, 2>>, 3> windows;
  for (std::size_t a = 0; a < 3; ++a) {
    const index_t shifts = (extent[a] - k[a] + s[a] - 1) / s[a] + 1;
    for (index_t j = 0; j < shifts; ++j)
      windows[a].push_back({j * s[a], std::min(j * s[a] + k[a], extent[a])});
  }
  std::vector<T> result(x.size());
  for (index_t n = 0; n < n_img; ++n) {
    std::vector<long double> clean(image);
    for (std::size_t i = 0; i < image; ++i) clean[i] = x[static_cast<std::size_t>(n) * image + i];
    const T base_score = model.score(clean);
    std::vector<long double> total(image, 0.0L), weight(image, 0.0L);
    for (const auto& ww : windows[2])
      for (const auto& wh : windows[1])
        for (const auto& wc : windows[0]) {
          std::vector<long double> occluded = clean;
          std::vector<int> mask(image, 0);
          for (index_t c = wc[0]; c < wc[1]; ++c)
            for (index_t y = wh[0]; y < wh[1]; ++y)
              for (index_t xx = ww[0]; xx < ww[1]; ++xx) {
                const auto i = static_cast<std::size_t>((c * h_n + y) * w_n + xx);
                mask[i] = 1;
                T b = value;
                if (baseline.size() == image) b = baseline[i];
                if (baseline.size() == x.size())
                  b = baseline[static_cast<std::size_t>(n) * image + i];
                occluded[i] = b;
              }
          const long double diff = static_cast<long double>(base_score - model.score(occluded));
          for (std::size_t i = 0; i < image; ++i) {
            total[i] += diff * mask[i];
            weight[i] += mask[i];
          }
        }
    for (std::size_t i = 0; i < image; ++i) {
      result[static_cast<std::size_t>(n) * image + i] =
          static_cast<T>(p.average ? total[i] / weight[i] : total[i]);
    }
  }
  return result;
}

/// |a − b| <= tol·(1 + |b|) elementwise, with a message naming the first failure.
template <class T>
void require_close(const std::vector<T>& got, const std::vector<T>& want, double tol,
                   const std::string& what) {
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double g = static_cast<double>(got[i]), w = static_cast<double>(want[i]);
    if (!(std::abs(g - w) <= tol * (1.0 + std::abs(w)))) {
      INFO(what << ": element " << i << " got " << g << " want " << w);
      REQUIRE(std::abs(g - w) <= tol * (1.0 + std::abs(w)));
    }
  }
}

/// NCHW-ordered values of a rank-4 result in layout l.
template <class X>
auto values_nchw(const X& x, cvk::layout l) {
  return cvk_test::to_nchw(cvk::as_view(x), l);
}

template <class T>
std::vector<T> flat3(const cvk::tensor<T, 3>& t) {
  return std::vector<T>(t.begin(), t.end());
}

// ---------------------------------------------------------------------------------------------
// The small torch net of the goldens (tests/gen_saliency_perturb_fixtures.py: conv 3×3 pad 1 →
// ReLU → spatial mean → linear) and its C++ twin.

template <class T>
struct tiny_net {
  std::vector<T> conv_w, conv_b, fc_w;
  T fc_b = 0;
  cvk::layout l = cvk::layout::nchw;

  explicit tiny_net(const cvk_test::fixture_file& f) {
    conv_w = f.table("model/conv_weight").values<T>();
    conv_b = f.table("model/conv_bias").values<T>();
    fc_w = f.table("model/fc_weight").values<T>();
    fc_b = f.table("model/fc_bias").values<T>()[0];
  }

  void operator()(cvk::strided_view<const T, 4> batch, cvk::strided_view<T, 1> scores) const {
    const bool nhwc = l == cvk::layout::nhwc;
    const index_t h = batch.extent(nhwc ? 1 : 2), w = batch.extent(nhwc ? 2 : 3);
    for (index_t b = 0; b < batch.extent(0); ++b) {
      T score = fc_b;
      for (index_t o = 0; o < 3; ++o) {
        T sum = 0;
        for (index_t y = 0; y < h; ++y)
          for (index_t x = 0; x < w; ++x) {
            T acc = conv_b[static_cast<std::size_t>(o)];
            for (index_t i = 0; i < 2; ++i)
              for (index_t ky = 0; ky < 3; ++ky)
                for (index_t kx = 0; kx < 3; ++kx) {
                  const index_t iy = y + ky - 1, ix = x + kx - 1;
                  if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                  acc += conv_w[static_cast<std::size_t>(((o * 2 + i) * 3 + ky) * 3 + kx)] *
                         batch_at(batch, l, b, i, iy, ix);
                }
            sum += std::max(acc, T(0));
          }
        score += fc_w[static_cast<std::size_t>(o)] * (sum / static_cast<T>(h * w));
      }
      scores(b) = score;
    }
  }
};

const cvk_test::fixture_file& goldens() {
  static const cvk_test::fixture_file file(cvk_test::test_data_path("saliency_perturb_torch.txt"));
  return file;
}

std::vector<index_t> int_params(const cvk_test::fixture_file& f, const std::string& name) {
  const auto v = f.table(name + "/params").values<double>();
  std::vector<index_t> r;
  for (const double d : v) r.push_back(static_cast<index_t>(d));
  return r;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Occlusion

TEST_CASE("occlusion: hand case 1x1x3x3, window 2x2, stride 1", "[perturb]") {
  // f(x) = Σ x, x = 1..9, baseline 0: each window's difference is the sum of its elements,
  // 12, 16, 24, 28 for the windows at (0,0), (0,1), (1,0), (1,1).
  std::vector<double> x{1, 2, 3, 4, 5, 6, 7, 8, 9};
  const auto sum_model = [](cvk::strided_view<const double, 4> b, cvk::strided_view<double, 1> s) {
    for (index_t n = 0; n < b.extent(0); ++n) {
      double t = 0;
      for (index_t y = 0; y < 3; ++y)
        for (index_t xx = 0; xx < 3; ++xx) t += b(n, 0, y, xx);
      s(n) = t;
    }
  };
  const auto in = cvk::view(x.data(), 1, 1, 3, 3);
  cvk::occlusion_params p{.window = {.height = 2, .width = 2}};
  auto a = cvk::occlusion(in, sum_model, p);
  CHECK(std::vector<double>(a.begin(), a.end()) ==
        std::vector<double>{12, 14, 16, 18, 20, 22, 24, 26, 28});
  p.average = false;  // PAIR: the plain sum over the covering windows
  a = cvk::occlusion(in, sum_model, p);
  CHECK(std::vector<double>(a.begin(), a.end()) ==
        std::vector<double>{12, 28, 16, 36, 80, 44, 24, 52, 28});
  // Baseline 1: every difference shrinks by the window's 4 elements.
  p = {.window = {.height = 2, .width = 2}, .baseline = 1};
  a = cvk::occlusion(in, sum_model, p);
  CHECK(std::vector<double>(a.begin(), a.end()) ==
        std::vector<double>{8, 10, 12, 14, 16, 18, 20, 22, 24});
}

TEST_CASE("occlusion: cropped border windows", "[perturb]") {
  // Window 2, stride 2 on 3 pixels: ⌈(3 − 2)/2⌉ + 1 = 2 windows per axis, the second cropped
  // to one pixel; no overlap, so each element gets its window's difference.
  std::vector<float> x{1, 2, 3, 4, 5, 6, 7, 8, 9};
  int calls = 0;
  const auto sum_model = [&](cvk::strided_view<const float, 4> b) {
    ++calls;
    std::vector<float> s(static_cast<std::size_t>(b.extent(0)));
    for (index_t n = 0; n < b.extent(0); ++n)
      for (index_t y = 0; y < 3; ++y)
        for (index_t xx = 0; xx < 3; ++xx) s[static_cast<std::size_t>(n)] += b(n, 0, y, xx);
    return s;
  };
  const cvk::occlusion_params p{.window = {.height = 2, .width = 2},
                                .strides = {.height = 2, .width = 2},
                                .model = {.batch_size = 2}};
  const auto a = cvk::occlusion(cvk::view(x.data(), 1, 1, 3, 3), sum_model, p);
  CHECK(std::vector<float>(a.begin(), a.end()) ==
        std::vector<float>{12, 12, 9, 12, 12, 9, 15, 15, 9});
  CHECK(calls == 3);  // 5 model inputs in batches of 2
  // 4×5 with window 3, stride 2: rows [0,3) and [2,4) (cropped), columns [0,3), [2,5).
  occlusion_case q{
      .e = {1, 1, 4, 5}, .window = {.height = 3, .width = 3}, .strides = {.height = 2, .width = 2}};
  cvk::rng gen(17);
  auto model = random_model<double>(gen, q.e, cvk::layout::nchw, true);
  const auto xs = cvk_test::random_reals<double>(gen, count_of(q.e));
  const auto want = reference_occlusion<double>(q, xs, {}, 0.0, model);
  const auto got = cvk::occlusion(cvk::view(xs.data(), 1, 1, 4, 5), model,
                                  {.window = q.window, .strides = q.strides});
  require_close(std::vector<double>(got.begin(), got.end()), want, 1e-13, q.describe());
}

TEST_CASE("occlusion: a linear model's closed form", "[perturb]") {
  // f(x) = b + Σ w·x: f(x) − f(x_w) = Σ_{e ∈ w} w_e (x_e − baseline_e). With 1×1×1 windows the
  // attribution is w ⊙ (x − baseline) exactly; with c×h×w windows it is the average over the
  // covering windows of those window sums, written here from the closed form.
  cvk::rng gen(5);
  const nchw_t e{2, 3, 5, 4};
  for (const auto l : layouts) {
    auto model = random_model<double>(gen, e, l, false);
    const auto x = cvk_test::small_integers<double>(gen, count_of(e), 4);
    const auto stored = cvk_test::store(x, e, l, storage::contiguous);
    cvk::occlusion_params p{.window = {.channels = 1, .height = 1, .width = 1},
                            .baseline = 0.5,
                            .model = {.batch_size = 5, .data_layout = l}};
    const auto a = values_nchw(cvk::occlusion(stored.view, model, p), l);
    const std::size_t image = count_of({1, e[1], e[2], e[3]});
    for (std::size_t i = 0; i < a.size(); ++i) {
      const double want = model.w[i % image] * (x[i] - 0.5);
      REQUIRE(a[i] == Approx(want).margin(1e-12));
    }
    // 2×2 windows over every channel, stride 1: closed form.
    p.window = {.channels = 0, .height = 2, .width = 2};
    const auto b = values_nchw(cvk::occlusion(stored.view, model, p), l);
    for (index_t n = 0; n < e[0]; ++n)
      for (index_t c = 0; c < e[1]; ++c)
        for (index_t y = 0; y < e[2]; ++y)
          for (index_t xx = 0; xx < e[3]; ++xx) {
            double total = 0;
            int windows = 0;
            for (index_t wy = std::max<index_t>(0, y - 1); wy <= std::min(y, e[2] - 2); ++wy)
              for (index_t wx = std::max<index_t>(0, xx - 1); wx <= std::min(xx, e[3] - 2); ++wx) {
                ++windows;
                for (index_t cc = 0; cc < e[1]; ++cc)
                  for (index_t yy = wy; yy < wy + 2; ++yy)
                    for (index_t xw = wx; xw < wx + 2; ++xw) {
                      const auto i =
                          static_cast<std::size_t>(((n * e[1] + cc) * e[2] + yy) * e[3] + xw);
                      total += model.w[i % image] * (x[i] - 0.5);
                    }
              }
            const auto i = static_cast<std::size_t>(((n * e[1] + c) * e[2] + y) * e[3] + xx);
            REQUIRE(b[i] == Approx(total / windows).margin(1e-12));
          }
  }
}

TEMPLATE_TEST_CASE("occlusion: random problems against Captum's formula", "[perturb]", float,
                   double) {
  using T = TestType;
  const double tol = std::is_same_v<T, float> ? 2e-4 : 1e-11;
  cvk::rng gen(20191011);
  for (int trial = 0; trial < cvk_test::trials(24); ++trial) {
    occlusion_case q;
    q.e = {cvk_test::draw(gen, 1, 3), cvk_test::draw(gen, 1, 3), cvk_test::draw(gen, 1, 7),
           cvk_test::draw(gen, 1, 7)};
    q.window.channels = cvk_test::draw(gen, 0, q.e[1]);
    q.window.height = cvk_test::draw(gen, 1, q.e[2]);
    q.window.width = cvk_test::draw(gen, 1, q.e[3]);
    const index_t kc = q.window.channels == 0 ? q.e[1] : q.window.channels;
    q.strides = {cvk_test::draw(gen, 1, kc), cvk_test::draw(gen, 1, q.window.height),
                 cvk_test::draw(gen, 1, q.window.width)};
    q.average = gen.below(4) != 0;
    const auto l = layouts[gen.below(2)];
    const auto s = cvk_test::all_storages[gen.below(4)];
    const int baseline_kind = static_cast<int>(gen.below(3));  // value, per image, broadcast
    const index_t batch = cvk_test::draw(gen, 1, 9);
    INFO("trial " << trial << ": " << q.describe() << " layout " << static_cast<int>(l) << " "
                  << cvk_test::to_string(s) << " baseline " << baseline_kind << " batch " << batch);
    auto model = random_model<T>(gen, q.e, l, true);
    const auto x = cvk_test::random_reals<T>(gen, count_of(q.e));
    const nchw_t be{baseline_kind == 1 ? q.e[0] : 1, q.e[1], q.e[2], q.e[3]};
    const auto base = cvk_test::random_reals<T>(gen, count_of(be));
    const T value = gen.uniform<T>(T(-1), T(1));
    const auto stored = cvk_test::store(x, q.e, l, s);
    const auto stored_base = cvk_test::store(base, be, l, s);
    const cvk::occlusion_params p{.window = q.window,
                                  .strides = q.strides,
                                  .baseline = static_cast<double>(value),
                                  .average = q.average,
                                  .model = {.batch_size = batch, .data_layout = l}};
    std::vector<T> want, got;
    if (baseline_kind == 0) {
      want = reference_occlusion<T>(q, x, {}, value, model);
      got = values_nchw(cvk::occlusion(cvk::strided_view<const T, 4>(stored.view), model, p), l);
    } else {
      want = reference_occlusion<T>(q, x, base, value, model);
      got = values_nchw(
          cvk::occlusion(cvk::strided_view<const T, 4>(stored.view), stored_base.view, model, p),
          l);
    }
    require_close(got, want, tol, q.describe());
    // Every batch held at most batch_size images.
    REQUIRE(model.largest_batch <= batch);
    // The write-into form gives the same values, into a strided output.
    auto out = cvk_test::store(std::vector<T>(x.size(), T(-7)), q.e, l, s);
    if (baseline_kind == 0) {
      cvk::occlusion(stored.view, model, p, out.view);
    } else {
      cvk::occlusion(stored.view, stored_base.view, model, p, out.view);
    }
    REQUIRE(cvk_test::to_nchw(out.view, l) == got);
  }
}

TEST_CASE("occlusion: model calls, thread and batch-size invariance", "[perturb]") {
  cvk::rng gen(77);
  const nchw_t e{3, 2, 9, 8};
  const auto x = cvk_test::random_reals<float>(gen, count_of(e));
  auto model = random_model<float>(gen, e, cvk::layout::nchw, true);
  const auto in = cvk::view(x.data(), e[0], e[1], e[2], e[3]);
  cvk::occlusion_params p{.window = {.channels = 1, .height = 3, .width = 2},
                          .strides = {.channels = 1, .height = 2, .width = 1}};
  // Windows: 2 channel shifts × (⌈6/2⌉ + 1) × (⌈6/1⌉ + 1) = 2 × 4 × 7 = 56 per image.
  std::vector<float> first;
  for (const index_t batch : {1, 3, 16, 57, 200}) {
    for (const int threads : {1, 2, 3}) {
      model.calls = model.evaluated = model.largest_batch = 0;
      p.model.batch_size = batch;
      p.threads = threads;
      const auto a = cvk::occlusion(in, model, p);
      CHECK(model.evaluated == e[0] * 57);
      CHECK(model.calls == (e[0] * 57 + batch - 1) / batch);
      const std::vector<float> v(a.begin(), a.end());
      if (first.empty()) first = v;
      REQUIRE(v == first);  // bit-identical
    }
  }
}

TEMPLATE_TEST_CASE("occlusion: torch goldens (Captum's formula)", "[perturb]", float, double) {
  using T = TestType;
  const auto& f = goldens();
  const std::string dname = std::is_same_v<T, float> ? "float32" : "float64";
  const double tol = std::is_same_v<T, float> ? 2e-5 : 1e-12;
  const int cases = std::stoi(f.meta("occ_cases"));
  REQUIRE(cases >= 5);
  for (int k = 0; k < cases; ++k) {
    const std::string name = "occ" + std::to_string(k);
    const auto v = f.table(name + "/params").values<double>();
    INFO(name);
    const nchw_t e{static_cast<index_t>(v[0]), static_cast<index_t>(v[1]),
                   static_cast<index_t>(v[2]), static_cast<index_t>(v[3])};
    const cvk::occlusion_window window{static_cast<index_t>(v[4]), static_cast<index_t>(v[5]),
                                       static_cast<index_t>(v[6])};
    const cvk::occlusion_strides strides{static_cast<index_t>(v[7]), static_cast<index_t>(v[8]),
                                         static_cast<index_t>(v[9])};
    const bool average = v[10] != 0;
    const int kind = static_cast<int>(v[11]);
    const auto x = f.table(name + "/" + dname + "/input").values<T>();
    const auto base = f.table(name + "/" + dname + "/baseline").values<T>();
    const auto want = f.table(name + "/" + dname + "/attribution").values<T>();
    const nchw_t be{kind == 1 ? e[0] : 1, e[1], e[2], e[3]};
    for (const auto l : layouts) {
      tiny_net<T> net(f);
      net.l = l;
      const auto stored = cvk_test::store(x, e, l, storage::contiguous);
      const auto stored_base = cvk_test::store(base, be, l, storage::padded_inner);
      const cvk::occlusion_params p{.window = window,
                                    .strides = strides,
                                    .baseline = v[12],
                                    .average = average,
                                    .model = {.batch_size = 4, .data_layout = l}};
      const auto got = kind == 0
                           ? values_nchw(cvk::occlusion(stored.view, net, p), l)
                           : values_nchw(cvk::occlusion(stored.view, stored_base.view, net, p), l);
      // Differences of float scores: absolute tolerance scaled by the score's size.
      require_close(got, want, tol, name + " layout " + std::to_string(static_cast<int>(l)));
    }
  }
}

#if defined(CVK_TEST_HAS_EIGEN)
TEST_CASE("occlusion and rise: Eigen tensors", "[perturb][adapt]") {
  cvk::rng gen(3);
  const nchw_t e{2, 2, 5, 6};
  const auto x = cvk_test::random_reals<float>(gen, count_of(e));
  auto model = random_model<float>(gen, e, cvk::layout::nchw, true);
  using tensor4 = Eigen::Tensor<float, 4, Eigen::RowMajor>;
  const Eigen::TensorMap<const tensor4> in(x.data(), e[0], e[1], e[2], e[3]);
  const cvk::occlusion_params p{.window = {.height = 2, .width = 3}};
  tensor4 out(e[0], e[1], e[2], e[3]);
  cvk::occlusion(in, model, p, out);
  const auto want = cvk::occlusion(cvk::view(x.data(), e[0], e[1], e[2], e[3]), model, p);
  REQUIRE(std::vector<float>(out.data(), out.data() + out.size()) ==
          std::vector<float>(want.begin(), want.end()));
  const cvk::rise_params r{.masks = 20, .cells = 3};
  Eigen::Tensor<float, 3, Eigen::RowMajor> maps(e[0], e[2], e[3]);
  cvk::rise(in, model, r, maps);
  const auto rw = cvk::rise(cvk::view(x.data(), e[0], e[1], e[2], e[3]), model, r);
  REQUIRE(std::vector<float>(maps.data(), maps.data() + maps.size()) == flat3(rw));
}
#endif

TEST_CASE("occlusion: errors and empty inputs", "[perturb]") {
  std::vector<float> x(2 * 2 * 4 * 5, 1.0f);
  const auto in = cvk::view(x.data(), 2, 2, 4, 5);
  index_t calls = 0;
  const auto model = [&](cvk::strided_view<const float, 4> b, cvk::strided_view<float, 1> s) {
    ++calls;
    for (index_t n = 0; n < b.extent(0); ++n) s(n) = 1;
  };
  using P = cvk::occlusion_params;
  const auto throws = [&](const P& p, const char* text) {
    CHECK_THROWS_WITH(cvk::occlusion(in, model, p), Catch::Contains(text));
  };
  throws(P{.window = {.height = 5, .width = 2}},
         "window.height = 5 is larger than the input's height (4)");
  throws(P{.window = {.height = 2, .width = 6}}, "window.width = 6 is larger");
  throws(P{.window = {.channels = 3, .height = 2, .width = 2}}, "window.channels = 3 is larger");
  throws(P{.window = {.channels = -1, .height = 2, .width = 2}}, "window.channels must be >= 1");
  throws(P{.window = {.height = 0, .width = 2}}, "window.height must be >= 1, got 0");
  throws(P{.window = {.height = 2, .width = 2}, .strides = {.height = 0}},
         "strides.height must be >= 1, got 0");
  throws(P{.window = {.height = 2, .width = 2}, .strides = {.width = 3}},
         "strides.width = 3 must not exceed window.width = 2");
  throws(P{.window = {.height = 2, .width = 2}, .model = {.batch_size = 0}},
         "batch_size must be >= 1");
  throws(P{.window = {.height = 2, .width = 2}, .threads = -1}, "threads must be >= 0");
  CHECK_THROWS_AS(cvk::occlusion(in, model, P{.window = {.height = 9, .width = 2}}),
                  cvk::invalid_argument);
  // A stride larger than a window spanning the whole axis is Captum's exception: one window.
  CHECK_NOTHROW(
      cvk::occlusion(in, model, P{.window = {.height = 4, .width = 2}, .strides = {.height = 7}}));
  // Shapes.
  std::vector<float> out_bad(2 * 2 * 4 * 4);
  CHECK_THROWS_AS(cvk::occlusion(in, model, P{.window = {.height = 2, .width = 2}},
                                 cvk::view(out_bad.data(), 2, 2, 4, 4)),
                  cvk::shape_error);
  std::vector<float> base_bad(3 * 2 * 4 * 5);
  CHECK_THROWS_WITH(cvk::occlusion(in, cvk::view(base_bad.data(), 3, 2, 4, 5), model,
                                   P{.window = {.height = 2, .width = 2}}),
                    Catch::Contains("baselines must be N×C×H×W with N = 1 or 2"));
  // A callable returning the wrong number of scores.
  const auto short_model = [](cvk::strided_view<const float, 4> b) {
    return std::vector<float>(static_cast<std::size_t>(b.extent(0) + 1), 0.0f);
  };
  CHECK_THROWS_AS(cvk::occlusion(in, short_model, P{.window = {.height = 2, .width = 2}}),
                  cvk::shape_error);
  CHECK_THROWS_WITH(cvk::occlusion(in, short_model, P{.window = {.height = 2, .width = 2}}),
                    Catch::Contains("occlusion: the forward callable returned"));
  // Empty: N = 0 gives an empty result without calling the model; C, H or W = 0 is an error.
  calls = 0;
  const auto none = cvk::occlusion(cvk::view(x.data(), 0, 2, 4, 5), model,
                                   P{.window = {.height = 2, .width = 2}});
  CHECK(none.size() == 0);
  CHECK(none.extent(1) == 2);
  CHECK(calls == 0);
  CHECK_THROWS_AS(cvk::occlusion(cvk::view(x.data(), 1, 2, 0, 5), model,
                                 P{.window = {.height = 1, .width = 1}}),
                  cvk::shape_error);
  CHECK_THROWS_AS(cvk::occlusion(cvk::view(x.data(), 1, 0, 4, 5), model,
                                 P{.window = {.height = 1, .width = 1}}),
                  cvk::shape_error);
  // NaN scores flow into the attributions.
  const auto nan_model = [](cvk::strided_view<const float, 4> b, cvk::strided_view<float, 1> s) {
    for (index_t n = 0; n < b.extent(0); ++n) s(n) = std::numeric_limits<float>::quiet_NaN();
  };
  const auto a = cvk::occlusion(in, nan_model, P{.window = {.height = 2, .width = 2}});
  CHECK(std::isnan(a(0, 0, 0, 0)));
}

// ---------------------------------------------------------------------------------------------
// RISE masks

namespace {

/// Bilinear sample of the grid at real coordinates with mirrored taps, in long double: the
/// 4-tap formula, written independently of cvk's separable passes.
long double mirrored(const std::vector<double>& grid, index_t cells, long double gy,
                     long double gx) {
  const auto mirror = [cells](index_t i) {
    if (cells == 1) return index_t{0};
    const index_t period = 2 * (cells - 1);
    index_t r = ((i % period) + period) % period;
    return r < cells ? r : period - r;
  };
  const auto y0 = static_cast<index_t>(std::floor(gy)), x0 = static_cast<index_t>(std::floor(gx));
  const long double fy = gy - static_cast<long double>(y0), fx = gx - static_cast<long double>(x0);
  const auto at = [&](index_t y, index_t x) {
    return static_cast<long double>(grid[static_cast<std::size_t>(mirror(y) * cells + mirror(x))]);
  };
  return (1 - fy) * ((1 - fx) * at(y0, x0) + fx * at(y0, x0 + 1)) +
         fy * ((1 - fx) * at(y0 + 1, x0) + fx * at(y0 + 1, x0 + 1));
}

/// The mask of a grid and shift under convention `mode`, from the formulas of the contract.
std::vector<double> reference_mask(const std::vector<double>& grid, index_t cells, index_t h,
                                   index_t w, index_t sy, index_t sx, cvk::rise_upsample mode) {
  const index_t ch = (h + cells - 1) / cells, cw = (w + cells - 1) / cells;
  long double scale_y = 0, scale_x = 0;
  if (mode == cvk::rise_upsample::paper) {
    scale_y = static_cast<long double>(cells) / static_cast<long double>((cells + 1) * ch);
    scale_x = static_cast<long double>(cells) / static_cast<long double>((cells + 1) * cw);
  } else {
    scale_y = 1.0L / static_cast<long double>((h + ch + cells - 1) / cells);
    scale_x = 1.0L / static_cast<long double>((w + cw + cells - 1) / cells);
  }
  std::vector<double> m(static_cast<std::size_t>(h * w));
  for (index_t y = 0; y < h; ++y)
    for (index_t x = 0; x < w; ++x) {
      const long double gy = (static_cast<long double>(sy + y) + 0.5L) * scale_y - 0.5L;
      const long double gx = (static_cast<long double>(sx + x) + 0.5L) * scale_x - 0.5L;
      m[static_cast<std::size_t>(y * w + x)] = static_cast<double>(mirrored(grid, cells, gy, gx));
    }
  return m;
}

/// cvk's mask of a given grid and shift.
template <class T>
std::vector<T> cvk_mask(const std::vector<double>& grid, index_t cells, index_t h, index_t w,
                        index_t sy, index_t sx, cvk::rise_upsample mode) {
  const auto g = cvk::detail::make_rise_generator<T>(h, w, cells, 0.5, 0, mode);
  std::vector<T> grid_t(grid.begin(), grid.end()), lines(static_cast<std::size_t>(cells * w));
  std::vector<T> m(static_cast<std::size_t>(h * w));
  g.upsample(grid_t.data(), sy, sx, cvk::strided_view<T, 2>(m.data(), {h, w}), lines.data());
  return m;
}

}  // namespace

TEMPLATE_TEST_CASE("rise masks: both upsamplings against their formulas", "[perturb]", float,
                   double) {
  using T = TestType;
  const double tol = std::is_same_v<T, float> ? 2e-7 : 1e-15;
  cvk::rng gen(99);
  for (int trial = 0; trial < cvk_test::trials(200); ++trial) {
    const index_t cells = cvk_test::draw(gen, 1, 9), h = cvk_test::draw(gen, 1, 40),
                  w = cvk_test::draw(gen, 1, 40);
    const auto mode = gen.below(2) == 0 ? cvk::rise_upsample::paper : cvk::rise_upsample::torchray;
    std::vector<double> grid(static_cast<std::size_t>(cells * cells));
    for (auto& v : grid) v = static_cast<double>(gen.below(2));
    const index_t sy = cvk_test::draw(gen, 0, (h + cells - 1) / cells - 1);
    const index_t sx = cvk_test::draw(gen, 0, (w + cells - 1) / cells - 1);
    INFO("trial " << trial << " " << h << "x" << w << " cells " << cells << " mode "
                  << static_cast<int>(mode) << " shift " << sy << "," << sx);
    const auto got = cvk_mask<T>(grid, cells, h, w, sy, sx, mode);
    const auto want = reference_mask(grid, cells, h, w, sy, sx, mode);
    for (std::size_t i = 0; i < got.size(); ++i) {
      REQUIRE(got[i] >= T(0));
      REQUIRE(got[i] <= T(1));
      REQUIRE(std::abs(static_cast<double>(got[i]) - want[i]) <= tol);
    }
  }
}

TEST_CASE(
    "rise masks: torchray upsampling equals TorchRay's pipeline through resize_bilinear_plane",
    "[perturb]") {
  // TorchRay: reflect-pad the grid by 1, F.interpolate(align_corners=False) to c′·(cells + 2),
  // crop [c′, c′ + H + cell) and then the shift — here with the shared bilinear kernel.
  cvk::rng gen(123);
  for (int trial = 0; trial < cvk_test::trials(60); ++trial) {
    const index_t cells = cvk_test::draw(gen, 2, 8), h = cvk_test::draw(gen, 2, 48),
                  w = cvk_test::draw(gen, 2, 48);
    std::vector<double> grid(static_cast<std::size_t>(cells * cells));
    for (auto& v : grid) v = static_cast<double>(gen.below(2));
    const index_t ch = (h + cells - 1) / cells, cw = (w + cells - 1) / cells;
    const index_t sy = cvk_test::draw(gen, 0, ch - 1), sx = cvk_test::draw(gen, 0, cw - 1);
    const index_t cy2 = (h + ch + cells - 1) / cells, cx2 = (w + cw + cells - 1) / cells;
    const index_t p = cells + 2;
    std::vector<double> padded(static_cast<std::size_t>(p * p));
    const auto reflect = [cells](index_t i) { return i < 0 ? 1 : (i >= cells ? cells - 2 : i); };
    for (index_t y = 0; y < p; ++y)
      for (index_t x = 0; x < p; ++x)
        padded[static_cast<std::size_t>(y * p + x)] =
            grid[static_cast<std::size_t>(reflect(y - 1) * cells + reflect(x - 1))];
    const index_t uh = cy2 * p, uw = cx2 * p;
    std::vector<double> up(static_cast<std::size_t>(uh * uw));
    cvk::detail::resize_bilinear_plane<double, double>(
        cvk::strided_view<const double, 2>(padded.data(), {p, p}),
        cvk::strided_view<double, 2>(up.data(), {uh, uw}), false);
    const auto got = cvk_mask<double>(grid, cells, h, w, sy, sx, cvk::rise_upsample::torchray);
    INFO("trial " << trial << " " << h << "x" << w << " cells " << cells);
    for (index_t y = 0; y < h; ++y)
      for (index_t x = 0; x < w; ++x) {
        const double want = up[static_cast<std::size_t>((cy2 + sy + y) * uw + cx2 + sx + x)];
        REQUIRE(got[static_cast<std::size_t>(y * w + x)] == Approx(want).margin(1e-12));
      }
  }
}

TEMPLATE_TEST_CASE("rise masks: torch goldens (TorchRay's and the RISE authors' upsampling)",
                   "[perturb]", float, double) {
  using T = TestType;
  const auto& f = goldens();
  const double tol = std::is_same_v<T, float> ? 3e-7 : 1e-12;
  const int cases = std::stoi(f.meta("risemask_cases"));
  REQUIRE(cases >= 10);
  for (int k = 0; k < cases; ++k) {
    const std::string name = "risemask" + std::to_string(k);
    const auto v = int_params(f, name);
    const auto mode = v[3] == 0 ? cvk::rise_upsample::paper : cvk::rise_upsample::torchray;
    const auto got =
        cvk_mask<T>(f.table(name + "/grid").values<double>(), v[2], v[0], v[1], v[4], v[5], mode);
    const auto want = f.table(name + "/mask").values<double>();
    INFO(name);
    REQUIRE(got.size() == want.size());
    for (std::size_t i = 0; i < got.size(); ++i) {
      REQUIRE(std::abs(static_cast<double>(got[i]) - want[i]) <= tol);
    }
  }
}

TEST_CASE("rise masks: values, mean p, offsets, threads, strided output", "[perturb]") {
  for (const auto mode : {cvk::rise_upsample::paper, cvk::rise_upsample::torchray}) {
    for (const double p : {0.5, 0.3, 0.9}) {
      const cvk::rise_params rp{.cells = 7, .keep_probability = p, .seed = 42, .upsample = mode};
      const auto masks = cvk::rise_masks<float>(cvk_test::trials(1200), {32, 40}, rp);
      double sum = 0;
      for (const float v : masks) {
        REQUIRE(v >= 0.0f);
        REQUIRE(v <= 1.0f);
        sum += v;
      }
      INFO("mode " << static_cast<int>(mode) << " p " << p);
      CHECK(sum / static_cast<double>(masks.size()) == Approx(p).margin(0.015));
    }
  }
  const cvk::rise_params rp{.cells = 5, .seed = 9};
  const auto all = cvk::rise_masks<double>(12, {17, 23}, rp);
  // Masks first .. first + count − 1: the same planes.
  const auto tail = cvk::rise_masks<double>(5, {17, 23}, rp, 7);
  for (index_t k = 0; k < 5; ++k)
    for (index_t y = 0; y < 17; ++y)
      for (index_t x = 0; x < 23; ++x) REQUIRE(tail(k, y, x) == all(k + 7, y, x));
  // Different masks differ; another seed gives other masks.
  bool differ = false, seed_differs = false;
  const auto other = cvk::rise_masks<double>(2, {17, 23}, {.cells = 5, .seed = 10});
  for (index_t y = 0; y < 17; ++y)
    for (index_t x = 0; x < 23; ++x) {
      differ = differ || all(0, y, x) != all(1, y, x);
      seed_differs = seed_differs || all(0, y, x) != other(0, y, x);
    }
  CHECK(differ);
  CHECK(seed_differs);
  // Threads, and a strided (transposed) output.
  for (const int threads : {1, 2, 3}) {
    cvk::rise_params t = rp;
    t.threads = threads;
    std::vector<double> buffer(12 * 23 * 17);
    cvk::strided_view<double, 3> out(buffer.data(), {12, 17, 23}, {23 * 17, 1, 17});
    cvk::rise_masks(out, t);
    for (index_t k = 0; k < 12; ++k)
      for (index_t y = 0; y < 17; ++y)
        for (index_t x = 0; x < 23; ++x) REQUIRE(out(k, y, x) == all(k, y, x));
  }
  // p = 1: every cell kept, every mask is 1.
  const auto ones = cvk::rise_masks<float>(3, {9, 9}, {.keep_probability = 1.0});
  for (const float v : ones) REQUIRE(v == 1.0f);
  // More cells than pixels (cell size 1).
  const auto fine = cvk::rise_masks<float>(2, {3, 2}, {.cells = 7});
  for (const float v : fine) REQUIRE((v >= 0.0f && v <= 1.0f));
}

// ---------------------------------------------------------------------------------------------
// RISE

TEST_CASE("rise: end-to-end torch goldens (cvk::rng re-implemented in Python)", "[perturb]") {
  const auto& f = goldens();
  const int cases = std::stoi(f.meta("rise_cases"));
  REQUIRE(cases >= 3);
  for (int k = 0; k < cases; ++k) {
    const std::string name = "rise" + std::to_string(k);
    const auto v = f.table(name + "/params").values<double>();
    const nchw_t e{static_cast<index_t>(v[0]), static_cast<index_t>(v[1]),
                   static_cast<index_t>(v[2]), static_cast<index_t>(v[3])};
    const cvk::rise_params p{
        .masks = static_cast<index_t>(v[5]),
        .cells = static_cast<index_t>(v[4]),
        .keep_probability = v[6],
        .seed = static_cast<std::uint64_t>(v[7]),
        .upsample = v[8] == 0 ? cvk::rise_upsample::paper : cvk::rise_upsample::torchray,
        .normalization =
            v[9] == 0 ? cvk::rise_normalization::paper : cvk::rise_normalization::torchray,
        .model = {.batch_size = 5}};
    const auto x = f.table(name + "/input").values<double>();
    const auto want = f.table(name + "/maps").values<double>();
    INFO(name);
    tiny_net<double> net(f);
    const auto maps = cvk::rise(cvk::view(x.data(), e[0], e[1], e[2], e[3]), net, p);
    require_close(flat3(maps), want, 1e-12, name);
    // float: the same masks, float model.
    tiny_net<float> net32(f);
    const std::vector<float> x32(x.begin(), x.end());
    const auto maps32 = cvk::rise(cvk::view(x32.data(), e[0], e[1], e[2], e[3]), net32, p);
    const auto got32 = flat3(maps32);
    for (std::size_t i = 0; i < want.size(); ++i) {
      REQUIRE(static_cast<double>(got32[i]) == Approx(want[i]).margin(2e-5));
    }
  }
}

TEST_CASE("rise: bit-identical for any batch size, thread count, layout and storage", "[perturb]") {
  cvk::rng gen(2024);
  const nchw_t e{2, 2, 15, 13};
  const auto x = cvk_test::random_reals<float>(gen, count_of(e));
  auto model = random_model<float>(gen, e, cvk::layout::nchw, true);
  cvk::rise_params p{.masks = 45, .cells = 4, .keep_probability = 0.4, .seed = 5};
  std::vector<float> first;
  for (const auto l : layouts) {
    model.l = l;  // the same scores for the same image in either layout
    for (const auto s : cvk_test::all_storages) {
      const auto stored = cvk_test::store(x, e, l, s);
      for (const index_t batch : {1, 4, 45, 64}) {
        for (const int threads : {1, 2, 3}) {
          // Every (batch, threads) pair on contiguous NCHW, one pair per storage elsewhere.
          const bool full = l == cvk::layout::nchw && s == storage::contiguous;
          if (!full && (batch + threads) % 3 != 0) continue;
          p.model = {.batch_size = batch, .data_layout = l};
          p.threads = threads;
          model.evaluated = model.largest_batch = 0;
          const auto maps = flat3(cvk::rise(stored.view, model, p));
          CHECK(model.evaluated == e[0] * 45);
          CHECK(model.largest_batch <= batch);
          if (first.empty()) first = maps;
          INFO("layout " << static_cast<int>(l) << " " << cvk_test::to_string(s) << " batch "
                         << batch << " threads " << threads);
          REQUIRE(maps == first);
        }
      }
    }
  }
}

TEST_CASE("rise: rise equals rise_accumulate over rise_masks, bit for bit", "[perturb]") {
  cvk::rng gen(31);
  const nchw_t e{3, 2, 13, 16};
  const auto x = cvk_test::random_reals<double>(gen, count_of(e));
  auto model = random_model<double>(gen, e, cvk::layout::nchw, true);
  for (const auto norm : {cvk::rise_normalization::paper, cvk::rise_normalization::torchray}) {
    const cvk::rise_params p{.masks = 33,
                             .cells = 3,
                             .keep_probability = 0.6,
                             .seed = 8,
                             .upsample = cvk::rise_upsample::torchray,
                             .normalization = norm,
                             .model = {.batch_size = 7}};
    const auto maps = cvk::rise(cvk::view(x.data(), e[0], e[1], e[2], e[3]), model, p);
    const auto masks = cvk::rise_masks<double>(33, {13, 16}, p);
    cvk::tensor<double, 2> scores(e[0], 33);
    const std::size_t image = count_of({1, e[1], e[2], e[3]});
    for (index_t n = 0; n < e[0]; ++n)
      for (index_t m = 0; m < 33; ++m) {
        std::vector<long double> masked(image);
        for (index_t c = 0; c < e[1]; ++c)
          for (index_t y = 0; y < e[2]; ++y)
            for (index_t xx = 0; xx < e[3]; ++xx) {
              const auto i = static_cast<std::size_t>((c * e[2] + y) * e[3] + xx);
              masked[i] = static_cast<long double>(x[static_cast<std::size_t>(n) * image + i] *
                                                   masks(m, y, xx));
            }
        scores(n, m) = model.score(masked);
      }
    for (const int threads : {1, 2, 3}) {
      cvk::rise_params q = p;
      q.threads = threads;
      REQUIRE(flat3(cvk::rise_accumulate(masks, scores, q)) == flat3(maps));
    }
    // Write-into form, strided output.
    std::vector<double> buffer(static_cast<std::size_t>(e[0] * 13 * 16 * 2));
    cvk::strided_view<double, 3> out(buffer.data(), {e[0], 13, 16}, {13 * 32, 32, 2});
    cvk::rise_accumulate(masks, scores, p, out);
    for (index_t n = 0; n < e[0]; ++n)
      for (index_t y = 0; y < 13; ++y)
        for (index_t xx = 0; xx < 16; ++xx) REQUIRE(out(n, y, xx) == maps(n, y, xx));
  }
}

TEST_CASE("rise: a model scoring a fixed region puts the saliency there", "[perturb]") {
  // f(x) = mean of x over a 16×16 region R of a 64×64 image of ones: f(x ⊙ M) = mean_R M,
  // so the map is the covariance-weighted sum of masks, largest over R.
  const index_t h = 64, w = 64, r0y = 8, r0x = 36, side = 16;
  std::vector<float> x(static_cast<std::size_t>(h * w), 1.0f);
  const auto region_model = [&](cvk::strided_view<const float, 4> b,
                                cvk::strided_view<float, 1> s) {
    for (index_t n = 0; n < b.extent(0); ++n) {
      double t = 0;
      for (index_t y = r0y; y < r0y + side; ++y)
        for (index_t xx = r0x; xx < r0x + side; ++xx) t += b(n, 0, y, xx);
      s(n) = static_cast<float>(t / (side * side));
    }
  };
  const cvk::rise_params p{.masks = 1000, .cells = 8, .seed = 3};
  const auto maps = cvk::rise(cvk::view(x.data(), 1, 1, h, w), region_model, p);
  double inside = 0, outside = 0, far_max = 0;
  index_t best_y = 0, best_x = 0;
  float best = -1;
  for (index_t y = 0; y < h; ++y)
    for (index_t xx = 0; xx < w; ++xx) {
      const float v = maps(0, y, xx);
      if (v > best) {
        best = v;
        best_y = y;
        best_x = xx;
      }
      const bool in = y >= r0y && y < r0y + side && xx >= r0x && xx < r0x + side;
      (in ? inside : outside) += v;
      const bool far = y >= r0y + side + 8 || xx < r0x - 8;
      if (far) far_max = std::max(far_max, static_cast<double>(v));
    }
  inside /= side * side;
  outside /= h * w - side * side;
  CHECK(inside > outside + 0.05);
  CHECK(best_y >= r0y - 2);
  CHECK(best_y < r0y + side + 2);
  CHECK(best_x >= r0x - 2);
  CHECK(best_x < r0x + side + 2);
  CHECK(far_max < inside);
}

TEST_CASE("rise: paper and torchray normalisations differ by exactly p", "[perturb]") {
  cvk::rng gen(12);
  const nchw_t e{2, 1, 11, 9};
  const auto x = cvk_test::random_reals<float>(gen, count_of(e));
  auto model = random_model<float>(gen, e, cvk::layout::nchw, true);
  const auto in = cvk::view(x.data(), e[0], e[1], e[2], e[3]);
  for (const double p : {0.5, 0.25, 0.3}) {
    cvk::rise_params rp{.masks = 40, .cells = 3, .keep_probability = p};
    const auto paper = flat3(cvk::rise(in, model, rp));
    rp.normalization = cvk::rise_normalization::torchray;
    const auto torchray = flat3(cvk::rise(in, model, rp));
    for (std::size_t i = 0; i < paper.size(); ++i) {
      if (p == 0.5 || p == 0.25) {
        REQUIRE(paper[i] * static_cast<float>(p) == torchray[i]);  // a power of two: exact
      } else {
        REQUIRE(static_cast<double>(paper[i]) * p ==
                Approx(static_cast<double>(torchray[i])).epsilon(1e-6).margin(1e-30));
      }
    }
  }
}

TEST_CASE("rise: errors and empty inputs", "[perturb]") {
  std::vector<float> x(2 * 3 * 8 * 8, 1.0f);
  const auto in = cvk::view(x.data(), 2, 3, 8, 8);
  index_t calls = 0;
  const auto model = [&](cvk::strided_view<const float, 4> b, cvk::strided_view<float, 1> s) {
    ++calls;
    for (index_t n = 0; n < b.extent(0); ++n) s(n) = 1;
  };
  using P = cvk::rise_params;
  const auto throws = [&](const P& p, const char* text) {
    CHECK_THROWS_WITH(cvk::rise(in, model, p), Catch::Contains(text));
    CHECK_THROWS_AS(cvk::rise(in, model, p), cvk::invalid_argument);
  };
  throws(P{.masks = 0}, "rise: masks must be >= 1, got 0");
  throws(P{.masks = 4, .cells = 0}, "rise: cells must be >= 1, got 0");
  throws(P{.masks = 4, .keep_probability = 0}, "keep_probability must be in (0, 1], got 0");
  throws(P{.masks = 4, .keep_probability = 1.5}, "keep_probability must be in (0, 1], got 1.5");
  throws(P{.masks = 4, .keep_probability = std::nan("")}, "keep_probability must be in (0, 1]");
  throws(P{.masks = 4, .upsample = static_cast<cvk::rise_upsample>(7)}, "upsample is not");
  throws(P{.masks = 4, .normalization = static_cast<cvk::rise_normalization>(7)},
         "normalization is not");
  throws(P{.masks = 4, .model = {.batch_size = 0}}, "batch_size must be >= 1");
  throws(P{.masks = 4, .threads = -2}, "threads must be >= 0");
  CHECK_THROWS_AS(cvk::rise_masks<float>(3, {8, 8}, P{.cells = 0}), cvk::invalid_argument);
  CHECK_THROWS_AS(cvk::rise_masks<float>(3, {0, 8}), cvk::shape_error);
  CHECK_THROWS_AS(cvk::rise_masks<float>(-1, {8, 8}), cvk::shape_error);
  CHECK_THROWS_AS(
      cvk::rise_masks<float>(2, {8, 8}, P{.cells = std::numeric_limits<index_t>::max()}),
      cvk::out_of_range);
  // A callable returning the wrong number of scores.
  const auto long_model = [](cvk::strided_view<const float, 4> b) {
    return std::vector<float>(static_cast<std::size_t>(b.extent(0) + 2), 0.0f);
  };
  CHECK_THROWS_WITH(
      cvk::rise(in, long_model, P{.masks = 4}),
      Catch::Contains("rise: the forward callable returned 10 scores for a batch of 8"));
  // Shapes.
  std::vector<float> out(2 * 8 * 7);
  CHECK_THROWS_WITH(cvk::rise(in, model, P{.masks = 4}, cvk::view(out.data(), 2, 8, 7)),
                    Catch::Contains("rise: out must be N×H×W = 2×8×8, got 2×8×7"));
  const auto masks = cvk::rise_masks<float>(4, {8, 8});
  cvk::tensor<float, 2> scores(2, 5);
  CHECK_THROWS_WITH(cvk::rise_accumulate(masks, scores),
                    Catch::Contains("rise_accumulate: scores must be N×M with M = 4"));
  cvk::tensor<float, 3> no_masks(0, 8, 8);
  cvk::tensor<float, 2> no_scores(2, 0);
  CHECK_THROWS_AS(cvk::rise_accumulate(no_masks, no_scores), cvk::invalid_argument);
  // Empty inputs: N = 0 gives 0×H×W without calling the model; C, H, W = 0 is an error.
  calls = 0;
  const auto none = cvk::rise(cvk::view(x.data(), 0, 3, 8, 8), model, P{.masks = 4});
  CHECK(none.size() == 0);
  CHECK(none.extent(1) == 8);
  CHECK(calls == 0);
  CHECK_THROWS_AS(cvk::rise(cvk::view(x.data(), 1, 3, 0, 8), model, P{.masks = 4}),
                  cvk::shape_error);
  CHECK_THROWS_AS(cvk::rise(cvk::view(x.data(), 1, 0, 8, 8), model, P{.masks = 4}),
                  cvk::shape_error);
  // NaN scores flow into the maps.
  const auto nan_model = [](cvk::strided_view<const float, 4> b, cvk::strided_view<float, 1> s) {
    for (index_t n = 0; n < b.extent(0); ++n) s(n) = std::numeric_limits<float>::quiet_NaN();
  };
  const auto maps = cvk::rise(in, nan_model, P{.masks = 2});
  CHECK(std::isnan(maps(0, 0, 0)));
}
