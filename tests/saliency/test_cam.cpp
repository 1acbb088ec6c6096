// cvk — computer-vision kernels, header-only C++20.
// Tests of cvk/saliency/cam.hpp: every CAM method on 2×2 maps worked by hand; against plain
// long-double reference loops written from the formulas on seeded random data (float and
// double, NCHW and NHWC, contiguous, padded, negative-stride and transposed views, shapes that
// split pixels and channels across tasks, strided outputs, Eigen tensors); bit-identical
// results for 1, 2 and 3 threads; Eigen-CAM against a Jacobi eigen-solver; Score-CAM against a
// reference resize with a linear model as the callable, for any batch size; the identity
// Grad-CAM·H·W = CAM on a GAP→linear head; PyTorch 1.13 golden maps of a tiny network with a
// grouped convolution (tests/gen_saliency_cam_fixtures.py); NaN, empty inputs and the errors.
// SPDX-License-Identifier: MIT
#include <cvk/core/rng.hpp>
#include <cvk/saliency/cam.hpp>

#if defined(CVK_TEST_HAS_EIGEN)
#  include <cvk/adapt/eigen.hpp>
#endif

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "support/compare.hpp"
#include "support/conv_reference.hpp"
#include "support/error_inputs.hpp"
#include "support/fixtures.hpp"

namespace {

using cvk::index_t;
using cvk::layout;
using nchw_t = std::array<index_t, 4>;
using ld = long double;

/// A contiguous NCHW view of `data` with extents `e`.
template <class T>
cvk::strided_view<T, 4> view4(T* data, const nchw_t& e) {
  return {data, e};
}

std::size_t at(const nchw_t& e, index_t n, index_t k, index_t p) {
  return static_cast<std::size_t>((n * e[1] + k) * e[2] * e[3] + p);
}

// ---------------------------------------------------------------------------------------------
// Reference loops, written from the formulas (cam.hpp's contract), in long double. Each map
// value comes with a bound: the sum of the magnitudes of what was added up, for tolerances.

enum class method {
  grad_cam,
  grad_cam_pp,
  grad_cam_pp_reduced,
  xgrad_cam,
  layer_cam,
  hires_cam,
  elementwise
};

constexpr std::array<method, 7> all_methods{
    method::grad_cam,  method::grad_cam_pp, method::grad_cam_pp_reduced, method::xgrad_cam,
    method::layer_cam, method::hires_cam,   method::elementwise};

const char* name(method m) {
  switch (m) {
    case method::grad_cam:
      return "grad_cam";
    case method::grad_cam_pp:
      return "grad_cam_pp";
    case method::grad_cam_pp_reduced:
      return "grad_cam_pp (reduced)";
    case method::xgrad_cam:
      return "xgrad_cam";
    case method::layer_cam:
      return "layer_cam";
    case method::hires_cam:
      return "hires_cam";
    case method::elementwise:
      return "grad_cam_elementwise";
  }
  return "?";
}

struct reference_maps {
  std::vector<ld> value, bound;  // N·H·W each
};

ld relu_ld(ld v) { return v < 0 ? 0 : v; }

template <class T>
reference_maps reference(method m, const std::vector<T>& a, const std::vector<T>& g,
                         const nchw_t& e, bool relu) {
  const index_t n_images = e[0], channels = e[1], z = e[2] * e[3];
  reference_maps r;
  r.value.assign(static_cast<std::size_t>(n_images * z), 0);
  r.bound.assign(r.value.size(), 0);
  const ld pp_eps = static_cast<ld>(static_cast<T>(1e-6));
  const ld xgrad_eps = static_cast<ld>(static_cast<T>(1e-7));
  for (index_t n = 0; n < n_images; ++n) {
    for (index_t k = 0; k < channels; ++k) {
      const auto A = [&](index_t p) { return static_cast<ld>(a[at(e, n, k, p)]); };
      const auto G = [&](index_t p) { return static_cast<ld>(g[at(e, n, k, p)]); };
      ld s = 0, s_abs = 0;
      for (index_t p = 0; p < z; ++p) {
        s += A(p);
        s_abs += std::fabs(A(p));
      }
      ld alpha = 0, alpha_bound = 0;
      bool weighted = true;
      switch (m) {
        case method::grad_cam:
          for (index_t p = 0; p < z; ++p) {
            alpha += G(p);
            alpha_bound += std::fabs(G(p));
          }
          alpha /= static_cast<ld>(z);
          alpha_bound /= static_cast<ld>(z);
          break;
        case method::xgrad_cam: {
          ld num = 0, num_abs = 0;
          for (index_t p = 0; p < z; ++p) {
            num += G(p) * A(p);
            num_abs += std::fabs(G(p) * A(p));
          }
          alpha = num / (s + xgrad_eps);
          alpha_bound = (num_abs + std::fabs(alpha) * s_abs) / std::fabs(s + xgrad_eps);
          break;
        }
        case method::grad_cam_pp:
        case method::grad_cam_pp_reduced:
          for (index_t p = 0; p < z; ++p) {
            const ld gp = G(p);
            ld t = 0;
            if (m == method::grad_cam_pp) {
              if (gp != 0) t = relu_ld(gp) * gp * gp / (2 * gp * gp + s * gp * gp * gp + pp_eps);
            } else if (gp > 0) {
              t = 1 / (2 + gp * s) * gp;
            }
            alpha += t;
            alpha_bound += std::fabs(t);
          }
          break;
        default:
          weighted = false;
          break;
      }
      for (index_t p = 0; p < z; ++p) {
        ld term = 0, magnitude = 0;
        if (weighted) {
          term = alpha * A(p);
          magnitude = (std::fabs(alpha) + alpha_bound) * std::fabs(A(p));
        } else {
          if (m == method::layer_cam) term = relu_ld(G(p)) * A(p);
          if (m == method::hires_cam) term = G(p) * A(p);
          if (m == method::elementwise) term = relu_ld(G(p) * A(p));
          magnitude = std::fabs(term);
        }
        r.value[static_cast<std::size_t>(n * z + p)] += term;
        r.bound[static_cast<std::size_t>(n * z + p)] += magnitude;
      }
    }
  }
  if (relu) {
    for (auto& v : r.value) v = relu_ld(v);
  }
  return r;
}

/// Runs method m through cvk (value form) on views a, g in layout l.
template <class T, class A, class G>
cvk::tensor<T, 3> run(method m, const A& a, const G& g, layout l, bool relu, int threads = 0) {
  switch (m) {
    case method::grad_cam:
      return cvk::grad_cam(a, g, {.data_layout = l, .relu = relu, .threads = threads});
    case method::grad_cam_pp:
      return cvk::grad_cam_pp(a, g, {.data_layout = l, .relu = relu, .threads = threads});
    case method::grad_cam_pp_reduced:
      return cvk::grad_cam_pp(a, g,
                              {.data_layout = l,
                               .relu = relu,
                               .alpha = cvk::grad_cam_pp_alpha::reduced,
                               .threads = threads});
    case method::xgrad_cam:
      return cvk::xgrad_cam(a, g, {.data_layout = l, .relu = relu, .threads = threads});
    case method::layer_cam:
      return cvk::layer_cam(a, g, {.data_layout = l, .relu = relu, .threads = threads});
    case method::hires_cam:
      return cvk::hires_cam(a, g, {.data_layout = l, .relu = relu, .threads = threads});
    case method::elementwise:
      return cvk::grad_cam_elementwise(a, g, {.data_layout = l, .relu = relu, .threads = threads});
  }
  return {};
}

/// The maps of a view, row-major.
template <class V>
std::vector<typename V::value_type> values3(const V& v) {
  std::vector<typename V::value_type> out;
  for (index_t n = 0; n < v.extent(0); ++n)
    for (index_t y = 0; y < v.extent(1); ++y)
      for (index_t x = 0; x < v.extent(2); ++x) out.push_back(v(n, y, x));
  return out;
}

/// Every value within `slack` ulps-of-scale of the reference: |got − ref| <= tol·bound + tiny.
template <class T>
void require_close(const std::vector<T>& got, const reference_maps& ref, index_t terms,
                   const std::string& what) {
  REQUIRE(got.size() == ref.value.size());
  const ld tol =
      8 * static_cast<ld>(terms + 16) * static_cast<ld>(std::numeric_limits<T>::epsilon());
  for (std::size_t i = 0; i < got.size(); ++i) {
    const ld diff = std::fabs(static_cast<ld>(got[i]) - ref.value[i]);
    if (!(diff <= tol * ref.bound[i] + static_cast<ld>(std::numeric_limits<T>::min()))) {
      FAIL(what << ": value " << i << " is " << got[i] << ", the reference "
                << static_cast<double>(ref.value[i]) << " (bound "
                << static_cast<double>(ref.bound[i]) << ")");
    }
  }
}

template <class T>
std::vector<T> uniform(cvk::rng& gen, std::size_t count, T lo, T hi) {
  std::vector<T> v(count);
  for (auto& x : v) x = gen.uniform<T>(lo, hi);
  return v;
}

const std::vector<nchw_t>& sweep_shapes() {
  static const std::vector<nchw_t> shapes{
      {1, 1, 1, 1},    {2, 3, 4, 5}, {3, 5, 7, 6}, {1, 2, 1, 9},  // a single row
      {2, 70, 3, 2},    // two weight blocks of 64 channels
      {1, 1100, 5, 6},  // channels split across map tasks (partial maps)
      {1, 40, 48, 48},  // two pixel blocks, each split by channels
      {33, 4, 3, 3},    // enough images: no channel split
  };
  return shapes;
}

// ---------------------------------------------------------------------------------------------
// Hand-computed 2×2 maps, K = 2. Pixels in row-major order:
//   A^0 = [1 2; 3 4]   A^1 = [0 3; 1 0]   g^0 = [1 −1; 2 0]   g^1 = [−2 0; 0 −2]   Z = 4

const std::vector<double> hand_a{1, 2, 3, 4, 0, 3, 1, 0};
const std::vector<double> hand_g{1, -1, 2, 0, -2, 0, 0, -2};

template <class T>
std::vector<T> as(const std::vector<double>& v) {
  return std::vector<T>(v.begin(), v.end());
}

TEMPLATE_TEST_CASE("CAM family: 2×2 maps worked by hand", "[saliency][cam]", float, double) {
  using T = TestType;
  const auto a_values = as<T>(hand_a), g_values = as<T>(hand_g);
  const auto a = cvk::view(a_values.data(), {1, 2, 2, 2});
  const auto g = cvk::view(g_values.data(), {1, 2, 2, 2});
  const auto maps = [](const cvk::tensor<T, 3>& m) { return values3(m.view()); };
  const auto close = [](const std::vector<T>& got, const std::vector<double>& want) {
    REQUIRE(got.size() == want.size());
    for (std::size_t i = 0; i < got.size(); ++i) {
      INFO("value " << i);
      CHECK(static_cast<double>(got[i]) ==
            Approx(want[i]).epsilon(8 * std::numeric_limits<T>::epsilon()).margin(1e-30));
    }
  };
  SECTION("grad_cam: α = (1 − 1 + 2 + 0)/4 = 0.5, (−2 − 2)/4 = −1; 0.5·A^0 − A^1") {
    close(maps(cvk::grad_cam(a, g, {.relu = false})), {0.5, -2, 0.5, 2});
    close(maps(cvk::grad_cam(a, g)), {0.5, 0, 0.5, 2});  // ReLU by default
  }
  SECTION("cam: class 1 of fc_weights [1 0; 0.5 −1; 2 2] weighs 0.5·A^0 − A^1 (no clamp)") {
    const std::vector<T> w{1, 0, 0.5, -1, 2, 2};
    const std::vector<int> classes{1};
    close(maps(cvk::cam(a, cvk::view(w.data(), {3, 2}), classes)), {0.5, -2, 0.5, 2});
    close(maps(cvk::cam(a, cvk::view(w.data(), {3, 2}), classes, {.relu = true})),
          {0.5, 0, 0.5, 2});
    const std::vector<std::int64_t> class2{2};  // 2·A^0 + 2·A^1
    close(maps(cvk::cam(a, cvk::view(w.data(), {3, 2}), class2)), {2, 10, 8, 8});
  }
  SECTION("layer_cam: ReLU(g^0)⊙A^0 = [1 0; 6 0]; ReLU(g^1) = 0") {
    close(maps(cvk::layer_cam(a, g)), {1, 0, 6, 0});
  }
  SECTION("hires_cam: g^0⊙A^0 = [1 −2; 6 0], g^1⊙A^1 = 0") {
    close(maps(cvk::hires_cam(a, g, {.relu = false})), {1, -2, 6, 0});
    close(maps(cvk::hires_cam(a, g)), {1, 0, 6, 0});
  }
  SECTION("grad_cam_elementwise: ReLU([1 −2; 6 0]) + ReLU(0)") {
    close(maps(cvk::grad_cam_elementwise(a, g)), {1, 0, 6, 0});
  }
  SECTION("xgrad_cam: α_0 = (1 − 2 + 6 + 0)/(10 + 1e-7), α_1 = 0/(4 + 1e-7)") {
    const double alpha = 5.0 / (10.0 + 1e-7);
    close(maps(cvk::xgrad_cam(a, g)), {alpha, 2 * alpha, 3 * alpha, 4 * alpha});
  }
  SECTION("grad_cam_pp eq. 19: S_0 = 10; g = 1: 1/(2 + 10 + ε), g = 2: 2·4/(8 + 80 + ε)") {
    const double alpha = 1.0 / (12.0 + 1e-6) + 8.0 / (88.0 + 1e-6);  // g^1 <= 0: α_1 = 0
    close(maps(cvk::grad_cam_pp(a, g)), {alpha, 2 * alpha, 3 * alpha, 4 * alpha});
    const double reduced = 1.0 / 12.0 + 2.0 / 22.0;  // 1/(2 + g·S)·g
    close(maps(cvk::grad_cam_pp(a, g, {.alpha = cvk::grad_cam_pp_alpha::reduced})),
          {reduced, 2 * reduced, 3 * reduced, 4 * reduced});
  }
  SECTION("eigen_cam: centred X = [−1.5 −1; −0.5 2; 0.5 0; 1.5 −1], XᵀX = [5 −1; −1 6]") {
    // Top eigenvalue (11 + √5)/2, eigenvector (1, −φ)/s, φ = (1 + √5)/2, s = √(1 + φ²);
    // X·v = (−1.5 + φ, −0.5 − 2φ, 0.5, 1.5 + φ)/s, whose largest magnitude (pixel 1) is
    // negative, so the sign flips.
    const double phi = (1 + std::sqrt(5.0)) / 2, s = std::sqrt(1 + phi * phi);
    const std::vector<double> want{(1.5 - phi) / s, (0.5 + 2 * phi) / s, -0.5 / s,
                                   -(1.5 + phi) / s};
    const auto got = maps(cvk::eigen_cam(a, {.relu = false}));
    REQUIRE(got.size() == 4);
    for (std::size_t i = 0; i < 4; ++i) {
      CHECK(static_cast<double>(got[i]) ==
            Approx(want[i]).margin(std::is_same_v<T, float> ? 1e-5 : 1e-12));
    }
    const auto clamped = maps(cvk::eigen_cam(a));
    CHECK(clamped[0] == 0);
    CHECK(static_cast<double>(clamped[1]) == Approx(want[1]).epsilon(1e-5));
    CHECK(clamped[2] == 0);
    CHECK(clamped[3] == 0);
  }
  SECTION(
      "score_cam: image of ones, the model sums pixels; masks A^0: [0 1/3; 2/3 1], A^1: "
      "[0 1; 1/3 0]") {
    // Same size: the resize copies. Scores 2 and 4/3 (up to the 1e-8 of the normalisation);
    // w_0 = 1/(1 + e^(−2/3)).
    const std::vector<T> ones(4, T(1));
    const auto images = cvk::view(ones.data(), {1, 1, 2, 2});
    const auto sum_model = [](cvk::strided_view<const T, 4> batch, cvk::strided_view<T, 1> out) {
      for (index_t b = 0; b < batch.extent(0); ++b) {
        T s = 0;
        for (index_t y = 0; y < 2; ++y)
          for (index_t x = 0; x < 2; ++x) s += batch(b, 0, y, x);
        out(b) = s;
      }
    };
    const double s0 = 6.0 / (3.0 + 1e-8), s1 = 4.0 / (3.0 + 1e-8);
    const double w0 = 1.0 / (1.0 + std::exp(s1 - s0)), w1 = 1 - w0;
    const auto got = maps(cvk::score_cam(images, a, sum_model));
    const std::vector<double> want{w0, 2 * w0 + 3 * w1, 3 * w0 + w1, 4 * w0};
    for (std::size_t i = 0; i < 4; ++i) {
      CHECK(static_cast<double>(got[i]) ==
            Approx(want[i]).epsilon(std::is_same_v<T, float> ? 1e-6 : 1e-12));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Random data against the reference loops.

TEMPLATE_TEST_CASE(
    "gradient CAM methods: random data, both layouts, any strides, equal the "
    "reference loops",
    "[saliency][cam]", float, double) {
  using T = TestType;
  cvk::rng gen(1101);
  std::vector<nchw_t> shapes = sweep_shapes();
  for (int trial = 0; trial < cvk_test::trials(12); ++trial) {
    shapes.push_back({cvk_test::draw(gen, 1, 3), cvk_test::draw(gen, 1, 9),
                      cvk_test::draw(gen, 1, 7), cvk_test::draw(gen, 1, 7)});
  }
  for (const auto& e : shapes) {
    const std::size_t size = cvk_test::product(e);
    // Activations after a ReLU (Σ A > 0: XGrad-CAM and Grad-CAM++ divide by it) and signed.
    const auto positive = uniform<T>(gen, size, T(0), T(1));
    const auto signed_a = uniform<T>(gen, size, T(-1), T(1));
    const auto grads = uniform<T>(gen, size, T(-1), T(1));
    for (const method m : all_methods) {
      const bool divides =
          m == method::xgrad_cam || m == method::grad_cam_pp || m == method::grad_cam_pp_reduced;
      const auto& a = divides ? positive : signed_a;
      for (const bool relu : {false, true}) {
        const auto ref = reference(m, a, grads, e, relu);
        for (const layout l : cvk_test::both_layouts) {
          for (const auto s : cvk_test::all_storages) {
            // The big shapes once per layout in storages that take each path.
            if (size > 20000 && s == cvk_test::storage::padded_inner) continue;
            const auto as = cvk_test::store(a, e, l, s);
            const auto gs = cvk_test::store(grads, e, l, s);
            const auto got = run<T>(m, cvk::strided_view<const T, 4>(as.view),
                                    cvk::strided_view<const T, 4>(gs.view), l, relu);
            REQUIRE(got.extents() == std::array<index_t, 3>{e[0], e[2], e[3]});
            require_close(values3(got.view()), ref, e[1] + e[2] * e[3],
                          std::string(name(m)) + (relu ? " relu" : "") + " " +
                              cvk_test::to_string(s) + (l == layout::nhwc ? " NHWC " : " NCHW ") +
                              cvk::detail::shape_string(e, 4));
          }
        }
      }
    }
  }
}

TEMPLATE_TEST_CASE("CAM methods write into strided outputs and mixed-stride inputs",
                   "[saliency][cam]", float, double) {
  using T = TestType;
  cvk::rng gen(1102);
  const nchw_t e{2, 5, 4, 3};
  const auto a = uniform<T>(gen, cvk_test::product(e), T(0), T(1));
  const auto g = uniform<T>(gen, cvk_test::product(e), T(-1), T(1));
  // Activations NHWC with padded channels, gradients NHWC stored NCHW: no fast path applies.
  const auto as = cvk_test::store(a, e, layout::nhwc, cvk_test::storage::padded_inner);
  const auto gs = cvk_test::store(g, e, layout::nhwc, cvk_test::storage::transposed);
  // Output: columns reversed, rows padded.
  std::vector<T> buffer(2 * 4 * 5, T(-7));
  const cvk::strided_view<T, 3> out(buffer.data() + 2, {2, 4, 3}, {20, 5, -1});
  for (const method m : all_methods) {
    const auto ref = reference(m, a, g, e, true);
    const cvk::grad_cam_params p{.data_layout = layout::nhwc};
    switch (m) {
      case method::grad_cam:
        cvk::grad_cam(as.view, gs.view, p, out);
        break;
      case method::grad_cam_pp:
        cvk::grad_cam_pp(as.view, gs.view, {.data_layout = layout::nhwc}, out);
        break;
      case method::grad_cam_pp_reduced:
        cvk::grad_cam_pp(as.view, gs.view,
                         {.data_layout = layout::nhwc, .alpha = cvk::grad_cam_pp_alpha::reduced},
                         out);
        break;
      case method::xgrad_cam:
        cvk::xgrad_cam(as.view, gs.view, {.data_layout = layout::nhwc}, out);
        break;
      case method::layer_cam:
        cvk::layer_cam(as.view, gs.view, p, out);
        break;
      case method::hires_cam:
        cvk::hires_cam(as.view, gs.view, p, out);
        break;
      case method::elementwise:
        cvk::grad_cam_elementwise(as.view, gs.view, p, out);
        break;
    }
    require_close(values3(out), ref, 20, name(m));
    // The padding the view skips is untouched.
    CHECK(std::count(buffer.begin(), buffer.end(), T(-7)) == 2 * 4 * 5 - 24);
  }
}

TEMPLATE_TEST_CASE("CAM methods: bit-identical for 1, 2 and 3 threads", "[saliency][cam]", float,
                   double) {
  using T = TestType;
  cvk::rng gen(1103);
  // The sweep's shapes, and two that run on several threads (the kernels start one thread per
  // 2^17 values read): channel blocks with partial maps, and many images.
  std::vector<nchw_t> shapes = sweep_shapes();
  shapes.push_back({1, 600, 30, 30});
  shapes.push_back({40, 64, 9, 9});
  for (const auto& e : shapes) {
    const std::size_t size = cvk_test::product(e);
    const auto a = uniform<T>(gen, size, T(0), T(1));
    const auto g = uniform<T>(gen, size, T(-1), T(1));
    for (const layout l : cvk_test::both_layouts) {
      const auto as = cvk_test::store(a, e, l, cvk_test::storage::contiguous);
      const auto gs = cvk_test::store(g, e, l, cvk_test::storage::contiguous);
      for (const method m : all_methods) {
        const auto one = values3(run<T>(m, as.view, gs.view, l, true, 1).view());
        for (const int threads : {2, 3}) {
          const auto many = values3(run<T>(m, as.view, gs.view, l, true, threads).view());
          REQUIRE(many.size() == one.size());
          for (std::size_t i = 0; i < one.size(); ++i) {
            if (!cvk_test::same_value(many[i], one[i])) {
              FAIL(name(m) << " " << cvk::detail::shape_string(e, 4) << " with " << threads
                           << " threads differs at " << i);
            }
          }
        }
      }
      if (e[1] * e[2] * e[3] <= 5000) {  // Eigen-CAM, one image per thread
        const auto one = values3(cvk::eigen_cam(as.view, {.data_layout = l, .threads = 1}).view());
        const auto three =
            values3(cvk::eigen_cam(as.view, {.data_layout = l, .threads = 3}).view());
        CHECK(one == three);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// CAM and the GAP→linear identity.

TEMPLATE_TEST_CASE("cam: equals the reference, and Grad-CAM·H·W = CAM for a GAP→linear head",
                   "[saliency][cam]", float, double) {
  using T = TestType;
  cvk::rng gen(1104);
  for (const nchw_t e : {nchw_t{2, 5, 4, 4}, nchw_t{3, 7, 3, 4}, nchw_t{1, 1100, 5, 6}}) {
    const index_t classes_count = 4, z = e[2] * e[3];
    const auto a = uniform<T>(gen, cvk_test::product(e), T(-1), T(1));
    const auto w = uniform<T>(gen, static_cast<std::size_t>(classes_count * e[1]), T(-1), T(1));
    std::vector<int> classes;
    for (index_t n = 0; n < e[0]; ++n) classes.push_back(static_cast<int>((3 * n + 1) % 4));
    // The gradient of logit c = Σ_k w[c, k]·mean(A^k) + b: w[c, k]/Z on every pixel of A^k.
    std::vector<T> g(a.size());
    for (index_t n = 0; n < e[0]; ++n)
      for (index_t k = 0; k < e[1]; ++k)
        for (index_t p = 0; p < z; ++p)
          g[at(e, n, k, p)] =
              w[static_cast<std::size_t>(classes[static_cast<std::size_t>(n)] * e[1] + k)] /
              static_cast<T>(z);
    const auto wv = cvk::view(w.data(), {classes_count, e[1]});
    for (const layout l : cvk_test::both_layouts) {
      const auto as = cvk_test::store(a, e, l, cvk_test::storage::contiguous);
      const auto gs = cvk_test::store(g, e, l, cvk_test::storage::contiguous);
      const auto maps = cvk::cam(as.view, wv, classes, {.data_layout = l});
      // The reference: CAM is Grad-CAM's weighted sum with α = w[c, k] exactly.
      reference_maps ref;
      for (index_t n = 0; n < e[0]; ++n) {
        for (index_t p = 0; p < z; ++p) {
          ld v = 0, b = 0;
          for (index_t k = 0; k < e[1]; ++k) {
            const ld term =
                static_cast<ld>(
                    w[static_cast<std::size_t>(classes[static_cast<std::size_t>(n)] * e[1] + k)]) *
                static_cast<ld>(a[at(e, n, k, p)]);
            v += term;
            b += std::fabs(term);
          }
          ref.value.push_back(v);
          ref.bound.push_back(b);
        }
      }
      require_close(values3(maps.view()), ref, e[1], "cam");
      const auto grad = cvk::grad_cam(as.view, gs.view, {.data_layout = l, .relu = false});
      const auto cam_values = values3(maps.view());
      const auto grad_values = values3(grad.view());
      for (std::size_t i = 0; i < cam_values.size(); ++i) {
        const T scaled = grad_values[i] * static_cast<T>(z);
        if (z == 16 && l == layout::nchw) {
          // Z = 16 and contiguous planes: α's lane sum puts one w/16 in each of 16 lanes and
          // adds them pairwise (only doublings), so α = w/16 exactly, and every partial sum of
          // the map scales by 1/16 exactly. (NHWC sums the pixels in sequence: 3·w/16 rounds.)
          REQUIRE(scaled == cam_values[i]);
        } else {
          REQUIRE(
              static_cast<ld>(scaled) ==
              Approx(static_cast<ld>(cam_values[i]))
                  .margin(static_cast<double>(64 * static_cast<ld>(e[1] + z) *
                                              std::numeric_limits<T>::epsilon() * ref.bound[i])));
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Eigen-CAM against an independent eigen-solver.

/// Cyclic Jacobi on a symmetric matrix (long double): the unit eigenvector of its largest
/// eigenvalue and that eigenvalue.
std::pair<std::vector<ld>, ld> jacobi_top(std::vector<ld> m, std::size_t n) {
  std::vector<ld> v(n * n, 0);
  for (std::size_t i = 0; i < n; ++i) v[i * n + i] = 1;
  for (int sweep = 0; sweep < 100; ++sweep) {
    ld off = 0, all = 0;
    for (std::size_t i = 0; i < n; ++i) {
      for (std::size_t j = 0; j < n; ++j) {
        all += m[i * n + j] * m[i * n + j];
        if (j > i) off += m[i * n + j] * m[i * n + j];
      }
    }
    if (off <= 1e-34L * all) break;  // off-diagonal norm below 1e-17 of the matrix's
    for (std::size_t p = 0; p < n; ++p) {
      for (std::size_t q = p + 1; q < n; ++q) {
        if (m[p * n + q] == 0) continue;
        const ld theta = (m[q * n + q] - m[p * n + p]) / (2 * m[p * n + q]);
        const ld t = (theta >= 0 ? 1 : -1) / (std::fabs(theta) + std::sqrt(theta * theta + 1));
        const ld c = 1 / std::sqrt(t * t + 1), s = t * c;
        for (std::size_t k = 0; k < n; ++k) {  // columns p, q
          const ld mkp = m[k * n + p], mkq = m[k * n + q];
          m[k * n + p] = c * mkp - s * mkq;
          m[k * n + q] = s * mkp + c * mkq;
        }
        for (std::size_t k = 0; k < n; ++k) {  // rows p, q
          const ld mpk = m[p * n + k], mqk = m[q * n + k];
          m[p * n + k] = c * mpk - s * mqk;
          m[q * n + k] = s * mpk + c * mqk;
        }
        for (std::size_t k = 0; k < n; ++k) {
          const ld vkp = v[k * n + p], vkq = v[k * n + q];
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  std::size_t top = 0;
  for (std::size_t i = 1; i < n; ++i)
    if (m[i * n + i] > m[top * n + top]) top = i;
  std::vector<ld> vec(n);
  for (std::size_t k = 0; k < n; ++k) vec[k] = v[k * n + top];
  return {vec, m[top * n + top]};
}

/// Eigen-CAM from the definition: centred Z×K matrix, XᵀX's top eigenvector by Jacobi, X·v,
/// largest magnitude positive. Also returns the top eigenvalue (= |X·v|²).
template <class T>
std::pair<std::vector<ld>, ld> reference_eigen(const std::vector<T>& a, const nchw_t& e, index_t n,
                                               bool center) {
  const auto k_count = static_cast<std::size_t>(e[1]);
  const auto z = static_cast<std::size_t>(e[2] * e[3]);
  std::vector<ld> x(z * k_count);
  for (std::size_t k = 0; k < k_count; ++k) {
    ld mean = 0;
    for (std::size_t p = 0; p < z; ++p) {
      const auto v = static_cast<ld>(a[at(e, n, static_cast<index_t>(k), static_cast<index_t>(p))]);
      x[p * k_count + k] = std::isnan(v) ? 0 : v;
      mean += x[p * k_count + k];
    }
    mean /= static_cast<ld>(z);
    if (center)
      for (std::size_t p = 0; p < z; ++p) x[p * k_count + k] -= mean;
  }
  std::vector<ld> gram(k_count * k_count, 0);
  for (std::size_t i = 0; i < k_count; ++i)
    for (std::size_t j = 0; j < k_count; ++j)
      for (std::size_t p = 0; p < z; ++p)
        gram[i * k_count + j] += x[p * k_count + i] * x[p * k_count + j];
  const auto [v, lambda] = jacobi_top(gram, k_count);
  std::vector<ld> proj(z, 0);
  for (std::size_t p = 0; p < z; ++p)
    for (std::size_t k = 0; k < k_count; ++k) proj[p] += x[p * k_count + k] * v[k];
  std::size_t top = 0;
  for (std::size_t p = 1; p < z; ++p)
    if (std::fabs(proj[p]) > std::fabs(proj[top])) top = p;
  if (proj[top] < 0)
    for (auto& p : proj) p = -p;
  return {proj, lambda};
}

TEMPLATE_TEST_CASE("eigen_cam: equals the first principal component from a Jacobi solver",
                   "[saliency][cam]", float, double) {
  using T = TestType;
  cvk::rng gen(1105);
  const ld tol = std::is_same_v<T, float> ? 2e-5L : 1e-10L;
  // K < Z, K > Z (the Z×Z Gram path), K = Z, single channel, single pixel column.
  for (const nchw_t e : {nchw_t{2, 3, 4, 5}, nchw_t{1, 40, 3, 4}, nchw_t{1, 6, 2, 3},
                         nchw_t{1, 1, 3, 3}, nchw_t{2, 9, 5, 1}, nchw_t{1, 70, 6, 6}}) {
    // A rank-one pattern (u·vᵀ, scale 3) plus noise: a clear gap between the top two
    // singular values, so the singular vector is well conditioned.
    std::vector<T> a(cvk_test::product(e));
    for (index_t n = 0; n < e[0]; ++n) {
      const auto u = uniform<double>(gen, static_cast<std::size_t>(e[2] * e[3]), -1, 1);
      const auto v = uniform<double>(gen, static_cast<std::size_t>(e[1]), -1, 1);
      for (index_t k = 0; k < e[1]; ++k)
        for (index_t p = 0; p < e[2] * e[3]; ++p)
          a[at(e, n, k, p)] =
              static_cast<T>(3 * u[static_cast<std::size_t>(p)] * v[static_cast<std::size_t>(k)] +
                             0.1 * gen.uniform<double>(-1, 1) + 0.5);
    }
    for (const bool center : {true, false}) {
      std::vector<std::vector<ld>> want;  // per image, computed once
      for (index_t n = 0; n < e[0]; ++n) want.push_back(reference_eigen(a, e, n, center).first);
      for (const layout l : cvk_test::both_layouts) {
        for (const auto s : {cvk_test::storage::contiguous, cvk_test::storage::reversed_inner}) {
          const auto as = cvk_test::store(a, e, l, s);
          const auto got = values3(
              cvk::eigen_cam(as.view, {.data_layout = l, .relu = false, .center = center}).view());
          for (index_t n = 0; n < e[0]; ++n) {
            const auto& w = want[static_cast<std::size_t>(n)];
            ld scale = 0;
            for (const ld v : w) scale = std::max(scale, std::fabs(v));
            for (std::size_t p = 0; p < w.size(); ++p) {
              const ld got_p = got[static_cast<std::size_t>(n * e[2] * e[3]) + p];
              if (!(std::fabs(got_p - w[p]) <= tol * scale)) {
                FAIL("eigen_cam " << cvk::detail::shape_string(e, 4) << " center " << center
                                  << " image " << n << " pixel " << p << ": "
                                  << static_cast<double>(got_p) << " vs "
                                  << static_cast<double>(w[p]));
              }
            }
          }
        }
      }
    }
  }
}

TEMPLATE_TEST_CASE("eigen_cam: on random activations the map's energy is the top eigenvalue",
                   "[saliency][cam]", float, double) {
  // Without a designed gap the singular vector may be ill-conditioned, but |X·v|² = λ_max holds
  // for any unit top eigenvector v.
  using T = TestType;
  cvk::rng gen(1106);
  for (int trial = 0; trial < cvk_test::trials(16); ++trial) {
    const nchw_t e{1, cvk_test::draw(gen, 1, 30), cvk_test::draw(gen, 1, 6),
                   cvk_test::draw(gen, 1, 6)};
    const auto a = uniform<T>(gen, cvk_test::product(e), T(-1), T(1));
    const auto got = values3(cvk::eigen_cam(view4(a.data(), e), {.relu = false}).view());
    const auto [want, lambda] = reference_eigen(a, e, 0, true);
    ld energy = 0;
    for (const T v : got) energy += static_cast<ld>(v) * static_cast<ld>(v);
    const ld tol = std::is_same_v<T, float> ? 1e-4L : 1e-10L;
    INFO(cvk::detail::shape_string(e, 4));
    CHECK(std::fabs(energy - lambda) <= tol * (lambda + 1e-30L));
    // The sign convention: the value of largest magnitude is positive.
    const auto largest = std::max_element(got.begin(), got.end(),
                                          [](T x, T y) { return std::fabs(x) < std::fabs(y); });
    CHECK(*largest >= 0);
  }
}

TEST_CASE("eigen_cam: NaN reads as 0, ±inf gives NaN, constant channels give zeros",
          "[saliency][cam]") {
  cvk::rng gen(1107);
  const nchw_t e{1, 4, 3, 3};
  auto a = uniform<double>(gen, cvk_test::product(e), 0, 1);
  auto zeroed = a;
  a[5] = std::numeric_limits<double>::quiet_NaN();
  zeroed[5] = 0;
  const auto with_nan = values3(cvk::eigen_cam(view4(a.data(), e), {.relu = false}).view());
  const auto with_zero = values3(cvk::eigen_cam(view4(zeroed.data(), e), {.relu = false}).view());
  CHECK(with_nan == with_zero);
  a[5] = std::numeric_limits<double>::infinity();
  for (const double v : values3(cvk::eigen_cam(view4(a.data(), e)).view())) {
    CHECK(std::isnan(v));
  }
  std::vector<double> constant(cvk_test::product(e), 2.5);
  for (const double v : values3(cvk::eigen_cam(view4(constant.data(), e)).view())) {
    CHECK(v == 0);
  }
  // Uncentred, a constant plane is its own principal component: the map is the constant norm
  // of each pixel's row, 2.5·√K.
  for (const double v :
       values3(cvk::eigen_cam(view4(constant.data(), e), {.center = false}).view())) {
    CHECK(v == Approx(5.0).epsilon(1e-12));
  }
}

// ---------------------------------------------------------------------------------------------
// Score-CAM against a reference resize and a linear model.

/// torch's bilinear resize of one plane (align_corners both ways), long double.
std::vector<ld> reference_resize(const std::vector<ld>& src, index_t h, index_t w, index_t ho,
                                 index_t wo, bool align_corners) {
  const auto source = [&](index_t o, index_t in, index_t out) {
    if (in == out) return static_cast<ld>(o);
    ld real =
        align_corners
            ? (out > 1 ? static_cast<ld>(o) * static_cast<ld>(in - 1) / static_cast<ld>(out - 1)
                       : 0)
            : (static_cast<ld>(o) + 0.5L) * static_cast<ld>(in) / static_cast<ld>(out) - 0.5L;
    return real < 0 ? ld(0) : real;
  };
  std::vector<ld> dst(static_cast<std::size_t>(ho * wo));
  for (index_t oy = 0; oy < ho; ++oy) {
    const ld ry = source(oy, h, ho);
    const auto y0 = std::min(static_cast<index_t>(ry), h - 1);
    const index_t y1 = std::min(y0 + 1, h - 1);
    const ld fy = ry - static_cast<ld>(y0);
    for (index_t ox = 0; ox < wo; ++ox) {
      const ld rx = source(ox, w, wo);
      const auto x0 = std::min(static_cast<index_t>(rx), w - 1);
      const index_t x1 = std::min(x0 + 1, w - 1);
      const ld fx = rx - static_cast<ld>(x0);
      const auto s = [&](index_t y, index_t x) { return src[static_cast<std::size_t>(y * w + x)]; };
      dst[static_cast<std::size_t>(oy * wo + ox)] =
          (1 - fy) * ((1 - fx) * s(y0, x0) + fx * s(y0, x1)) +
          fy * ((1 - fx) * s(y1, x0) + fx * s(y1, x1));
    }
  }
  return dst;
}

/// A linear model: score = Σ weight[c, y, x]·input[c, y, x] + bias (weights NCHW-ordered),
/// reading batches in layout l. Counts its calls and records the scores it returned.
template <class T>
struct linear_model {
  std::vector<T> weight;
  index_t c = 0, h = 0, w = 0;
  T bias = 0;
  layout l = layout::nchw;
  int calls = 0;
  std::vector<T> seen;

  void operator()(cvk::strided_view<const T, 4> batch, cvk::strided_view<T, 1> scores) {
    ++calls;
    REQUIRE(batch.is_contiguous());
    for (index_t b = 0; b < batch.extent(0); ++b) {
      double s = static_cast<double>(bias);
      for (index_t ch = 0; ch < c; ++ch)
        for (index_t y = 0; y < h; ++y)
          for (index_t x = 0; x < w; ++x) {
            const T v = l == layout::nchw ? batch(b, ch, y, x) : batch(b, y, x, ch);
            s += static_cast<double>(weight[static_cast<std::size_t>((ch * h + y) * w + x)]) *
                 static_cast<double>(v);
          }
      scores(b) = static_cast<T>(s);
      seen.push_back(static_cast<T>(s));
    }
  }
};

template <class T>
reference_maps reference_score_cam(const std::vector<T>& images, const nchw_t& ie,
                                   const std::vector<T>& a, const nchw_t& e,
                                   const linear_model<T>& model, bool align_corners, bool relu) {
  const index_t z = e[2] * e[3], zi = ie[2] * ie[3];
  reference_maps r;
  for (index_t n = 0; n < e[0]; ++n) {
    std::vector<ld> scores;
    for (index_t k = 0; k < e[1]; ++k) {
      std::vector<ld> plane(static_cast<std::size_t>(z));
      for (index_t p = 0; p < z; ++p) plane[static_cast<std::size_t>(p)] = a[at(e, n, k, p)];
      auto mask = reference_resize(plane, e[2], e[3], ie[2], ie[3], align_corners);
      const ld lo = *std::min_element(mask.begin(), mask.end());
      const ld hi = *std::max_element(mask.begin(), mask.end());
      ld s = model.bias;
      for (index_t c = 0; c < ie[1]; ++c)
        for (index_t p = 0; p < zi; ++p)
          s += static_cast<ld>(model.weight[static_cast<std::size_t>(c * zi + p)]) *
               static_cast<ld>(images[at(ie, n, c, p)]) *
               ((mask[static_cast<std::size_t>(p)] - lo) / (hi - lo + 1e-8L));
      scores.push_back(s);
    }
    const ld top = *std::max_element(scores.begin(), scores.end());
    ld total = 0;
    for (const ld s : scores) total += std::exp(s - top);
    for (index_t p = 0; p < z; ++p) {
      ld v = 0, b = 0;
      for (index_t k = 0; k < e[1]; ++k) {
        const ld term = std::exp(scores[static_cast<std::size_t>(k)] - top) / total *
                        static_cast<ld>(a[at(e, n, k, p)]);
        v += term;
        b += std::fabs(term);
      }
      r.value.push_back(relu ? relu_ld(v) : v);
      r.bound.push_back(b);
    }
  }
  return r;
}

TEMPLATE_TEST_CASE(
    "score_cam: random data equal the reference for every batch size, layout and "
    "align_corners convention",
    "[saliency][cam]", float, double) {
  using T = TestType;
  cvk::rng gen(1108);
  struct shape_pair {
    nchw_t images, activations;
  };
  for (const auto& sp :
       {shape_pair{{2, 3, 8, 6}, {2, 4, 3, 2}}, shape_pair{{1, 2, 5, 5}, {1, 3, 5, 5}},
        shape_pair{{3, 1, 7, 9}, {3, 2, 1, 1}}, shape_pair{{1, 2, 4, 3}, {1, 5, 6, 7}}}) {
    const auto& ie = sp.images;
    const auto& e = sp.activations;
    const auto images = uniform<T>(gen, cvk_test::product(ie), T(-1), T(1));
    const auto a = uniform<T>(gen, cvk_test::product(e), T(0), T(2));
    linear_model<T> model;
    model.weight = uniform<T>(gen, static_cast<std::size_t>(ie[1] * ie[2] * ie[3]), T(-1), T(1));
    model.c = ie[1];
    model.h = ie[2];
    model.w = ie[3];
    model.bias = T(0.5);
    for (const bool align : {true, false}) {
      // A 1×1 plane resized with half-pixel centres is constant only up to the rounding of
      // w0·v + w1·v, which the normalisation's 1/(0 + 1e-8) magnifies (in torch as well): the
      // masks are rounding noise, not a comparable result.
      if (!align && e[2] * e[3] == 1) continue;
      const auto ref = reference_score_cam(images, ie, a, e, model, align, true);
      std::vector<T> first;
      for (const layout l : cvk_test::both_layouts) {
        const auto xs = cvk_test::store(images, ie, l, cvk_test::storage::reversed_inner);
        const auto as = cvk_test::store(a, e, l, cvk_test::storage::padded_inner);
        for (const index_t batch : {index_t{1}, index_t{3}, index_t{16}}) {
          linear_model<T> m = model;
          m.l = l;
          const auto got = values3(cvk::score_cam(xs.view, as.view, m,
                                                  {.data_layout = l,
                                                   .model = {.batch_size = batch, .data_layout = l},
                                                   .align_corners = align})
                                       .view());
          require_close(
              got, ref, 200,
              "score_cam batch " + std::to_string(batch) + " " + cvk::detail::shape_string(e, 4));
          // The callable is copied in by value here; a reference shows the calls.
          linear_model<T> counted = model;
          counted.l = l;
          cvk::tensor<T, 3> out(std::array<index_t, 3>{e[0], e[2], e[3]});
          cvk::score_cam(xs.view, as.view, counted,
                         {.data_layout = l,
                          .model = {.batch_size = batch, .data_layout = l},
                          .align_corners = align},
                         out);
          CHECK(counted.calls == static_cast<int>((e[0] * e[1] + batch - 1) / batch));
          CHECK(counted.seen.size() == static_cast<std::size_t>(e[0] * e[1]));
          if (first.empty()) first = got;
          if (l == layout::nchw) CHECK(got == first);  // batching never changes a score
        }
      }
    }
  }
}

TEST_CASE("score_cam: a returning callable, the thread count and a wrong number of scores",
          "[saliency][cam]") {
  cvk::rng gen(1109);
  const nchw_t ie{2, 2, 6, 6}, e{2, 5, 3, 3};
  const auto images = uniform<double>(gen, cvk_test::product(ie), -1, 1);
  const auto a = uniform<double>(gen, cvk_test::product(e), 0, 1);
  const auto x = view4(images.data(), ie);
  const auto av = view4(a.data(), e);
  const auto returning = [](cvk::strided_view<const double, 4> batch) {
    std::vector<double> s;
    for (index_t b = 0; b < batch.extent(0); ++b)
      s.push_back(batch(b, 1, 2, 3) - batch(b, 0, 0, 0));
    return s;
  };
  const auto expected = cvk::score_cam(x, av, returning, {.model = {.batch_size = 4}});
  for (const int threads : {1, 2, 3}) {
    const auto got =
        cvk::score_cam(x, av, returning, {.model = {.batch_size = 4}, .threads = threads});
    CHECK(values3(got.view()) == values3(expected.view()));
  }
  const auto too_many = [](cvk::strided_view<const double, 4> batch) {
    return std::vector<double>(static_cast<std::size_t>(batch.extent(0) + 1), 0.0);
  };
  CHECK_THROWS_AS(cvk::score_cam(x, av, too_many, {.model = {.batch_size = 4}}), cvk::shape_error);
  CHECK_THROWS_WITH(cvk::score_cam(x, av, too_many, {.model = {.batch_size = 4}}),
                    Catch::Matchers::Contains("score_cam: the forward callable returned 5 scores "
                                              "for a batch of 4"));
  const auto throwing = [](cvk::strided_view<const double, 4>, cvk::strided_view<double, 1>) {
    throw std::runtime_error("model failed");
  };
  CHECK_THROWS_WITH(cvk::score_cam(x, av, throwing), "model failed");
}

// ---------------------------------------------------------------------------------------------
// PyTorch golden maps.

template <class T>
struct golden_layer {
  std::vector<T> activations, gradients;
};

TEMPLATE_TEST_CASE("CAM family: PyTorch 1.13 golden maps of a network with a grouped conv",
                   "[saliency][cam][golden]", float, double) {
  using T = TestType;
  const std::string dtype = std::is_same_v<T, float> ? "float32" : "float64";
  const cvk_test::fixture_file file(cvk_test::test_data_path("saliency_cam_torch.txt"));
  const auto params = file.table("params").values<index_t>();
  const nchw_t ie{params.at(0), params.at(1), params.at(2), params.at(3)};
  const nchw_t e{params.at(0), params.at(4), params.at(5), params.at(6)};
  const index_t num_classes = params.at(7), z = e[2] * e[3];
  const auto classes = file.table("classes").values<std::int64_t>();
  const auto table = [&](const std::string& table_name) {
    return file.table(dtype + "/" + table_name).template values<T>();
  };
  const T rtol = std::is_same_v<T, float> ? T(3e-5) : T(1e-12);
  const auto compare = [&](const std::vector<T>& got, const std::vector<T>& want, bool relu,
                           const std::string& what) {
    REQUIRE(got.size() == want.size());
    for (index_t n = 0; n < e[0]; ++n) {
      T scale = 0;
      for (index_t p = 0; p < z; ++p)
        scale = std::max(scale, std::fabs(want[static_cast<std::size_t>(n * z + p)]));
      for (index_t p = 0; p < z; ++p) {
        const auto i = static_cast<std::size_t>(n * z + p);
        const T expected = relu ? std::max(want[i], T(0)) : want[i];
        if (!(std::fabs(got[i] - expected) <= rtol * scale)) {
          FAIL(what << (relu ? " (relu)" : "") << " image " << n << " pixel " << p << ": " << got[i]
                    << " vs " << expected << " (scale " << scale << ")");
        }
      }
    }
  };
  for (const std::string layer : {"conv", "feat"}) {
    const auto a = table(layer + "/activations");
    const auto g = table(layer + "/gradients");
    const auto av = view4(a.data(), e);
    const auto gv = view4(g.data(), e);
    const auto golden = [&](const std::string& m) { return table(layer + "/" + m); };
    for (const bool relu : {false, true}) {
      const auto check = [&](const cvk::tensor<T, 3>& got, const std::string& m) {
        compare(values3(got.view()), golden(m), relu, layer + "/" + m);
      };
      // Grad-CAM on the grouped-conv layer (and on the ReLU after it).
      check(cvk::grad_cam(av, gv, {.relu = relu}), "grad_cam");
      check(cvk::grad_cam_pp(av, gv, {.relu = relu}), "grad_cam_pp");
      check(cvk::grad_cam_pp(av, gv, {.relu = relu, .alpha = cvk::grad_cam_pp_alpha::reduced}),
            "grad_cam_pp_reduced");
      check(cvk::xgrad_cam(av, gv, {.relu = relu}), "xgrad_cam");
      check(cvk::layer_cam(av, gv, {.relu = relu}), "layer_cam");
      check(cvk::hires_cam(av, gv, {.relu = relu}), "hires_cam");
      check(cvk::grad_cam_elementwise(av, gv, {.relu = relu}), "grad_cam_elementwise");
      check(cvk::eigen_cam(av, {.relu = relu}), "eigen_cam");
      check(cvk::eigen_cam(av, {.relu = relu, .center = false}), "eigen_cam_uncentred");
    }
  }
  // The layer feeding GAP → linear: CAM from the FC weights, Grad-CAM·H·W = CAM, Score-CAM.
  const auto a = table("feat/activations");
  const auto g = table("feat/gradients");
  const auto av = view4(a.data(), e);
  const auto fc = table("fc_weight");
  const auto fcv = cvk::view(fc.data(), {num_classes, e[1]});
  const auto cam_maps = values3(cvk::cam(av, fcv, classes).view());
  compare(cam_maps, table("feat/cam"), false, "cam");
  const auto grad = values3(cvk::grad_cam(av, view4(g.data(), e), {.relu = false}).view());
  std::vector<T> scaled;
  for (const T v : grad) scaled.push_back(v * static_cast<T>(z));
  compare(scaled, cam_maps, false, "grad_cam·H·W vs cam");
  // Score-CAM with the script's linear model.
  const auto images = table("images");
  linear_model<T> model;
  model.weight = table("linear_weight");
  model.bias = table("linear_bias").at(0);
  model.c = ie[1];
  model.h = ie[2];
  model.w = ie[3];
  for (const bool align : {true, false}) {
    const std::string tag = align ? "align_corners" : "half_pixel";
    linear_model<T> m = model;
    const auto got =
        cvk::score_cam(view4(images.data(), ie), av, m, {.relu = false, .align_corners = align});
    linear_model<T> recorded = model;
    cvk::tensor<T, 3> out(std::array<index_t, 3>{e[0], e[2], e[3]});
    cvk::score_cam(view4(images.data(), ie), av, recorded, {.relu = false, .align_corners = align},
                   out);
    compare(values3(out.view()), table("feat/score_cam_" + tag), false, "score_cam " + tag);
    CHECK(values3(got.view()) == values3(out.view()));  // value and write-into forms agree
    // The model saw image n's channel k as input n·K + k, and scored it as torch did.
    const auto scores = table("feat/score_cam_" + tag + "_scores");
    REQUIRE(recorded.seen.size() == scores.size());
    for (std::size_t i = 0; i < scores.size(); ++i) {
      CHECK(static_cast<double>(recorded.seen[i]) ==
            Approx(static_cast<double>(scores[i])).margin(std::is_same_v<T, float> ? 1e-5 : 1e-12));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Tensor types.

#if defined(CVK_TEST_HAS_EIGEN)
TEST_CASE("CAM methods: Eigen tensors (row-major map and column-major tensor)",
          "[saliency][cam][adapt]") {
  cvk::rng gen(1110);
  const nchw_t e{2, 3, 4, 5};
  const auto a = uniform<float>(gen, cvk_test::product(e), 0, 1);
  const auto g = uniform<float>(gen, cvk_test::product(e), -1, 1);
  using tensor4 = Eigen::Tensor<float, 4, Eigen::RowMajor>;
  const Eigen::TensorMap<const tensor4> am(a.data(), e[0], e[1], e[2], e[3]);
  Eigen::Tensor<float, 4> gc(e[0], e[1], e[2], e[3]);  // column-major: any strides
  for (index_t n = 0; n < e[0]; ++n)
    for (index_t k = 0; k < e[1]; ++k)
      for (index_t y = 0; y < e[2]; ++y)
        for (index_t x = 0; x < e[3]; ++x) gc(n, k, y, x) = g[at(e, n, k, y * e[3] + x)];
  Eigen::Tensor<float, 3, Eigen::RowMajor> out(e[0], e[2], e[3]);
  for (const method m : all_methods) {
    const auto ref = reference(m, a, g, e, true);
    require_close(values3(run<float>(m, am, gc, layout::nchw, true).view()), ref, 30, name(m));
  }
  cvk::grad_cam(am, gc, {}, out);
  require_close(std::vector<float>(out.data(), out.data() + out.size()),
                reference(method::grad_cam, a, g, e, true), 30, "grad_cam into Eigen");
}
#endif

// ---------------------------------------------------------------------------------------------
// Special values, empty inputs, errors.

TEST_CASE("CAM methods: NaN propagates as documented", "[saliency][cam]") {
  cvk::rng gen(1111);
  const nchw_t e{1, 3, 2, 3};
  const auto clean_a = uniform<double>(gen, cvk_test::product(e), 0.1, 1);
  const auto clean_g = uniform<double>(gen, cvk_test::product(e), 0.1, 1);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const auto nan_count = [](const std::vector<double>& v) {
    return std::count_if(v.begin(), v.end(), [](double x) { return std::isnan(x); });
  };
  auto a = clean_a;
  a[at(e, 0, 1, 4)] = nan;  // channel 1, pixel 4
  const auto av = view4(a.data(), e);
  const auto gv = view4(clean_g.data(), e);
  // A NaN activation reaches only its pixel in Grad-CAM and the element-wise methods (ReLU
  // keeps it), every pixel where α reads Σ A.
  for (const auto& maps : {cvk::grad_cam(av, gv), cvk::layer_cam(av, gv), cvk::hires_cam(av, gv),
                           cvk::grad_cam_elementwise(av, gv)}) {
    const auto v = values3(maps.view());
    CHECK(nan_count(v) == 1);
    CHECK(std::isnan(v[4]));
  }
  CHECK(nan_count(values3(cvk::xgrad_cam(av, gv).view())) == 6);
  CHECK(nan_count(values3(cvk::grad_cam_pp(av, gv).view())) == 6);
  // A NaN gradient: α_k NaN, so every pixel.
  auto g = clean_g;
  g[at(e, 0, 2, 0)] = nan;
  CHECK(nan_count(values3(cvk::grad_cam(view4(clean_a.data(), e), view4(g.data(), e)).view())) ==
        6);
  // cam: a NaN activation only at its pixel.
  const std::vector<double> w{1, 2, 3};
  CHECK(nan_count(values3(cvk::cam(av, cvk::view(w.data(), {1, 3}), std::vector<int>{0}).view())) ==
        1);
  // score_cam: the NaN channel's mask is NaN, the linear model scores NaN, every weight is NaN.
  const std::vector<double> images(2 * 4 * 4, 0.5);
  const auto summing = [](cvk::strided_view<const double, 4> batch,
                          cvk::strided_view<double, 1> s) {
    for (index_t b = 0; b < batch.extent(0); ++b) s(b) = batch(b, 0, 0, 0) + batch(b, 1, 3, 3);
  };
  CHECK(nan_count(values3(
            cvk::score_cam(cvk::view(images.data(), {1, 2, 4, 4}), av, summing).view())) == 6);
}

TEST_CASE("CAM methods: empty inputs give empty or zero maps", "[saliency][cam]") {
  const std::vector<float> none;
  const std::vector<float> ones(64, 1.0f);
  const auto run_all = [&](const nchw_t& e, const float* data) {
    const auto v = view4(data, e);
    std::vector<cvk::tensor<float, 3>> maps;
    for (const method m : all_methods) maps.push_back(run<float>(m, v, v, layout::nchw, true));
    maps.push_back(cvk::eigen_cam(v));
    const std::vector<float> w(static_cast<std::size_t>(e[1] > 0 ? e[1] : 1), 1.0f);
    maps.push_back(cvk::cam(v, cvk::view(w.data(), {1, e[1]}),
                            std::vector<int>(static_cast<std::size_t>(e[0]), 0)));
    return maps;
  };
  for (const auto& maps : run_all({0, 3, 4, 4}, none.data())) {
    CHECK(maps.extents() == std::array<index_t, 3>{0, 4, 4});
  }
  for (const auto& maps : run_all({2, 3, 0, 4}, none.data())) {
    CHECK(maps.extents() == std::array<index_t, 3>{2, 0, 4});
  }
  for (const auto& maps : run_all({2, 0, 2, 3}, ones.data())) {  // K = 0: the empty sum
    CHECK(maps.extents() == std::array<index_t, 3>{2, 2, 3});
    for (const float v : maps) CHECK(v == 0.0f);
  }
  // score_cam: N = 0 calls no model; K = 0 gives zeros without a call.
  int calls = 0;
  const auto counting = [&calls](cvk::strided_view<const float, 4> b,
                                 cvk::strided_view<float, 1> s) {
    ++calls;
    for (index_t i = 0; i < b.extent(0); ++i) s(i) = 0;
  };
  CHECK(cvk::score_cam(cvk::view(none.data(), {0, 3, 8, 8}), cvk::view(none.data(), {0, 2, 4, 4}),
                       counting)
            .extents() == std::array<index_t, 3>{0, 4, 4});
  const auto zero_k = cvk::score_cam(cvk::view(ones.data(), {1, 1, 8, 8}),
                                     cvk::view(none.data(), {1, 0, 4, 4}), counting);
  for (const float v : zero_k) CHECK(v == 0.0f);
  CHECK(calls == 0);
}

TEST_CASE(
    "CAM methods: bad input raises cvk errors naming the function, the argument and the "
    "shapes",
    "[saliency][cam][errors]") {
  using Catch::Matchers::Contains;
  std::vector<float> a(2 * 3 * 4 * 5, 1.0f), g = a;
  const auto av = cvk::view(a.data(), {2, 3, 4, 5});
  SECTION("gradients of another shape") {
    const auto gv = cvk::view(g.data(), {2, 3, 5, 4});
    CHECK_THROWS_AS(cvk::grad_cam(av, gv), cvk::shape_error);
    CHECK_THROWS_WITH(cvk::grad_cam(av, gv),
                      Contains("grad_cam: gradients must have the shape of activations, 2×3×4×5 "
                               "(N×C×H×W), got 2×3×5×4"));
    CHECK_THROWS_WITH(cvk::layer_cam(av, gv, {.data_layout = layout::nhwc}),
                      Contains("layer_cam: gradients must have the shape of activations, 2×3×4×5 "
                               "(N×H×W×C), got 2×3×5×4"));
    for (const method m : all_methods) {
      CHECK_THROWS_AS(run<float>(m, av, gv, layout::nchw, true), cvk::shape_error);
    }
  }
  SECTION("out of the wrong shape, a wrong rank") {
    cvk::tensor<float, 3> out(2, 4, 4);
    CHECK_THROWS_WITH(cvk::grad_cam(av, av, {}, out),
                      Contains("grad_cam: out must be N×H×W = 2×4×5, got 2×4×4"));
    CHECK_THROWS_WITH(cvk::eigen_cam(av, {}, out),
                      Contains("eigen_cam: out must be N×H×W = 2×4×5, got 2×4×4"));
    CHECK_THROWS_WITH(cvk::grad_cam(cvk_test::rank3_view(a), av),
                      Contains("grad_cam: activations must have rank 4"));
  }
  SECTION("cam: fc_weights of the wrong width, a wrong class count, class ids out of range") {
    const std::vector<float> w(5 * 3, 0.5f), narrow(5 * 2, 0.5f);
    const auto wv = cvk::view(w.data(), {5, 3});
    CHECK_THROWS_AS(cvk::cam(av, cvk::view(narrow.data(), {5, 2}), std::vector<int>{0, 1}),
                    cvk::shape_error);
    CHECK_THROWS_WITH(cvk::cam(av, cvk::view(narrow.data(), {5, 2}), std::vector<int>{0, 1}),
                      Contains("cam: fc_weights must be num_classes×K with K = 3, the channels of "
                               "activations 2×3×4×5 (N×C×H×W), got 5×2"));
    CHECK_THROWS_WITH(cvk::cam(av, wv, std::vector<int>{0, 1, 2}),
                      Contains("cam: classes must hold one class id per image, N = 2 "
                               "(activations 2×3×4×5 (N×C×H×W)), got 3"));
    CHECK_THROWS_AS(cvk::cam(av, wv, std::vector<int>{0, 5}), cvk::out_of_range);
    CHECK_THROWS_WITH(cvk::cam(av, wv, std::vector<int>{0, 5}),
                      Contains("cam: classes[1] = 5 (image 1) is outside [0, 5), the rows of "
                               "fc_weights 5×3"));
    CHECK_THROWS_WITH(cvk::cam(av, wv, std::vector<std::int64_t>{-1, 0}),
                      Contains("cam: classes[0] = -1 (image 0) is outside [0, 5)"));
    CHECK_THROWS_AS(cvk::cam(av, wv, std::vector<std::uint64_t>{0, ~std::uint64_t{0}}),
                    cvk::out_of_range);
  }
  SECTION("parameters out of their domains") {
    CHECK_THROWS_WITH(cvk::grad_cam(av, av, {.threads = -1}),
                      Contains("grad_cam: threads must be >= 0, got -1"));
    CHECK_THROWS_WITH(cvk::grad_cam(av, av, {.data_layout = static_cast<layout>(7)}),
                      Contains("grad_cam: data_layout is not a cvk::layout"));
    CHECK_THROWS_WITH(cvk::grad_cam_pp(av, av, {.eps = -1}),
                      Contains("grad_cam_pp: eps must be finite and >= 0, got -1"));
    CHECK_THROWS_WITH(cvk::xgrad_cam(av, av, {.eps = std::numeric_limits<double>::quiet_NaN()}),
                      Contains("xgrad_cam: eps must be finite and >= 0, got nan"));
    CHECK_THROWS_AS(cvk::grad_cam_pp(av, av, {.alpha = static_cast<cvk::grad_cam_pp_alpha>(9)}),
                    cvk::invalid_argument);
  }
  SECTION("score_cam: images of another N, empty masks, a bad batch size") {
    std::vector<float> images(3 * 2 * 8 * 8, 1.0f);
    const auto model = [](cvk::strided_view<const float, 4> b, cvk::strided_view<float, 1> s) {
      for (index_t i = 0; i < b.extent(0); ++i) s(i) = 0;
    };
    CHECK_THROWS_WITH(cvk::score_cam(cvk::view(images.data(), {3, 2, 8, 8}), av, model),
                      Contains("score_cam: images and activations must have the same N, got "
                               "images 3×2×8×8 (N×C×H×W) and activations 2×3×4×5 (N×C×H×W)"));
    CHECK_THROWS_AS(cvk::score_cam(cvk::view(images.data(), {2, 2, 0, 8}), av, model),
                    cvk::shape_error);
    CHECK_THROWS_WITH(cvk::score_cam(cvk::view(images.data(), {2, 2, 8, 8}), av, model,
                                     {.model = {.batch_size = 0}}),
                      Contains("score_cam: model.batch_size must be >= 1, got 0"));
    CHECK_THROWS_WITH(
        cvk::score_cam(cvk::view(images.data(), {2, 2, 8, 8}), av, model, {.eps = -1.0}),
        Contains("score_cam: eps must be finite and >= 0"));
  }
  SECTION("sizes whose products overflow") {
    const float one = 1.0f;
    // 2^40 images of 1×1 pixels through a stride-0 view: the maps cannot be allocated.
    const auto huge = cvk::view(&one, {cvk_test::huge_rows, 1, 1, 1}, {0, 0, 0, 0});
    CHECK_THROWS_AS(cvk::grad_cam(huge, huge), cvk::out_of_range);
    const auto wide = cvk::view(&one, {1, 1, index_t{1} << 40, index_t{1} << 40}, {0, 0, 0, 0});
    CHECK_THROWS_AS(cvk::grad_cam(wide, wide), cvk::out_of_range);
  }
}

// ---------------------------------------------------------------------------------------------
// The snippet of docs/saliency.cam.md, compiled and run.

void explain(const float* activations, const float* gradients, float* heatmap /* 7×7 */) {
  const auto a = cvk::view(activations, 1, 7, 7, 2048);
  const auto g = cvk::view(gradients, 1, 7, 7, 2048);
  cvk::grad_cam(a, g, {.data_layout = cvk::layout::nhwc}, cvk::view(heatmap, 1, 7, 7));
}

cvk::tensor<float, 3> explain_class(const float* activations, const float* fc, int target) {
  return cvk::cam(cvk::view(activations, 1, 2048, 7, 7), cvk::view(fc, 1000, 2048),
                  std::array<int, 1>{target});
}

TEST_CASE("docs/saliency.cam.md: Grad-CAM and CAM from raw engine buffers", "[saliency][cam]") {
  cvk::rng gen(1112);
  const nchw_t e{1, 2048, 7, 7};
  const auto a = uniform<float>(gen, cvk_test::product(e), 0, 1);
  const auto g = uniform<float>(gen, cvk_test::product(e), -1, 1);
  const auto an = cvk_test::store(a, e, layout::nhwc, cvk_test::storage::contiguous);
  const auto gn = cvk_test::store(g, e, layout::nhwc, cvk_test::storage::contiguous);
  std::vector<float> heatmap(49, -1.0f);
  explain(an.view.data(), gn.view.data(), heatmap.data());
  require_close(heatmap, reference(method::grad_cam, a, g, e, true), 2048 + 49, "explain");
  const auto fc = uniform<float>(gen, 1000 * 2048, -1, 1);
  const auto maps = explain_class(a.data(), fc.data(), 417);
  const auto direct =
      cvk::cam(view4(a.data(), e), cvk::view(fc.data(), {1000, 2048}), std::vector<int>{417});
  CHECK(values3(maps.view()) == values3(direct.view()));
}

}  // namespace
