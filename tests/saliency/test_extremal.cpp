// cvk — computer-vision kernels, header-only C++20.
// Tests of cvk/saliency/extremal.hpp (Extremal Perturbations with TorchRay's semantics): the
// smooth-mask generator against a plain loop written from TorchRay's formulas and against
// torch goldens (tests/gen_saliency_extremal_fixtures.py), its backward and the pyramid's by
// central finite differences in double, the pyramid against torch (imsmooth through conv2d), the
// ranking regulariser's gradient, a few iterations of TorchRay's whole loop (torch golden), the
// recovery of a known optimal mask on an analytic model in the three games, determinism across
// batch sizes and thread counts, other tensor types and layouts, and the errors.
// SPDX-License-Identifier: MIT
#if defined(CVK_TEST_HAS_EIGEN)
#  include <cvk/adapt/eigen.hpp>
#endif
#include <cvk/core/rng.hpp>
#include <cvk/saliency/extremal.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "support/conv_reference.hpp"
#include "support/fixtures.hpp"

namespace {

using cvk::index_t;

// ---------------------------------------------------------------------------------------------
// Plain references, written from TorchRay's definitions.

/// TorchRay's MaskGenerator attributes, computed as its __init__ does.
struct ep_geometry {
  index_t gh = 0, gw = 0;  // shape_in
  index_t fh = 0, fw = 0;  // shape_out
  index_t margin = 0, padding = 0, radius = 0;
};

ep_geometry ep_reference_geometry(index_t h, index_t w, index_t step, double sigma) {
  ep_geometry g;
  g.padding = 1 + static_cast<index_t>(std::ceil((sigma + sigma) / static_cast<double>(step)));
  g.radius = 1 + static_cast<index_t>(std::ceil(sigma / static_cast<double>(step)));
  g.gh = static_cast<index_t>(std::ceil(static_cast<double>(h) / static_cast<double>(step)));
  g.gw = static_cast<index_t>(std::ceil(static_cast<double>(w) / static_cast<double>(step)));
  const auto out = [&](index_t in) {
    const index_t mid = in + 2 * g.padding - (2 * g.radius + 1) + 1;
    return step * mid - step + 1;
  };
  g.fh = out(g.gh);
  g.fw = out(g.gw);
  g.margin = static_cast<index_t>(std::nearbyint(sigma));  // round half to even, as Python
  return g;
}

/// The full masks (K×fh×fw, row-major) of grids (K×gh×gw) by the definition: every pixel, every
/// tap, the node looked up with bounds checks, the kernel evaluated, the pooling in double.
std::vector<double> ep_reference_full(const std::vector<double>& grid, index_t k_count,
                                      const ep_geometry& g, index_t step, double sigma,
                                      cvk::mask_pooling pooling, double coldness, bool clamp) {
  std::vector<double> full(static_cast<std::size_t>(k_count * g.fh * g.fw));
  const index_t taps = 2 * g.radius + 1;
  std::vector<double> p;
  for (index_t k = 0; k < k_count; ++k) {
    for (index_t uy = 0; uy < g.fh; ++uy) {
      for (index_t ux = 0; ux < g.fw; ++ux) {
        p.clear();
        for (index_t ky = 0; ky < taps; ++ky) {
          for (index_t kx = 0; kx < taps; ++kx) {
            const index_t iy = uy / step + ky - g.padding;
            const index_t ix = ux / step + kx - g.padding;
            const bool inside = iy >= 0 && iy < g.gh && ix >= 0 && ix < g.gw;
            const double v =
                inside ? grid[static_cast<std::size_t>((k * g.gh + iy) * g.gw + ix)] : 0.0;
            const double dy = static_cast<double>(uy) - (sigma + static_cast<double>(step * iy));
            const double dx = static_cast<double>(ux) - (sigma + static_cast<double>(step * ix));
            const double z = std::sqrt(dy * dy + dx * dx) / sigma;
            const double t = z > 0.5 ? z - 0.5 : 0.0;
            p.push_back(std::exp(-2.0 * t * t) * v);
          }
        }
        double m = 0;
        double sum = 0;
        for (const double v : p) sum += v;
        if (pooling == cvk::mask_pooling::smooth_max) {
          const double mx = *std::max_element(p.begin(), p.end());
          if (std::isinf(coldness)) {
            m = mx;
          } else {
            double den = 0, num = 0;
            for (const double v : p) {
              den += std::exp(coldness * (v - mx));
              num += v * std::exp(coldness * (v - mx));
            }
            m = num / den;
          }
        } else if (pooling == cvk::mask_pooling::sum) {
          m = sum;
        } else {
          m = std::isinf(coldness) ? (sum - 5 > 0 ? 1.0 : 0.0)
                                   : 1.0 / (1.0 + std::exp(-(coldness * sum - 3)));
        }
        if (clamp) m = std::min(std::max(m, 0.0), 1.0);
        full[static_cast<std::size_t>((k * g.fh + uy) * g.fw + ux)] = m;
      }
    }
  }
  return full;
}

/// TorchRay's imsmooth of one plane (zero border) by the definition, in double.
std::vector<double> ep_reference_blur(const std::vector<double>& plane, index_t h, index_t w,
                                      double sigma) {
  const auto half = static_cast<index_t>(std::ceil(4 * sigma));
  std::vector<double> taps;
  double total = 0;
  for (index_t i = -half; i <= half; ++i) {
    const double d = static_cast<double>(i);
    taps.push_back(sigma > 0 ? std::exp(-d * d / (2 * sigma * sigma)) : 1.0);
    total += taps.back();
  }
  std::vector<double> out(plane.size(), 0.0);
  for (index_t y = 0; y < h; ++y) {
    for (index_t x = 0; x < w; ++x) {
      double s = 0;
      for (index_t i = -half; i <= half; ++i) {
        for (index_t j = -half; j <= half; ++j) {
          const index_t yy = y + i, xx = x + j;
          if (yy < 0 || yy >= h || xx < 0 || xx >= w) continue;
          s += taps[static_cast<std::size_t>(i + half)] / total *
               taps[static_cast<std::size_t>(j + half)] / total *
               plane[static_cast<std::size_t>(yy * w + xx)];
        }
      }
      out[static_cast<std::size_t>(y * w + x)] = s;
    }
  }
  return out;
}

/// The pyramid levels (L×C×H×W) of an image (C×H×W) by the definition.
std::vector<double> ep_reference_levels(const std::vector<double>& image, index_t c, index_t h,
                                        index_t w, cvk::perturbation_kind kind, index_t levels,
                                        double max_blur) {
  std::vector<double> out;
  for (index_t l = 0; l < levels; ++l) {
    const double t = static_cast<double>(l) / static_cast<double>(levels - 1);
    for (index_t ch = 0; ch < c; ++ch) {
      std::vector<double> plane(image.begin() + ch * h * w, image.begin() + (ch + 1) * h * w);
      if (kind == cvk::perturbation_kind::blur) {
        plane = ep_reference_blur(plane, h, w, (1 - t) * max_blur);
      } else {
        for (auto& v : plane) v *= t;
      }
      out.insert(out.end(), plane.begin(), plane.end());
    }
  }
  return out;
}

/// Perturbation.apply of one mask value at (ch, y, x) by the definition.
double ep_reference_apply(const std::vector<double>& levels, index_t c, index_t h, index_t w,
                          index_t l_count, double m, index_t ch, index_t y, index_t x) {
  const double pos = m * static_cast<double>(l_count - 1);
  const auto k = static_cast<index_t>(std::floor(pos));
  const double f = pos - static_cast<double>(k);
  const index_t k1 = std::min(k + 1, l_count - 1);
  const auto at = [&](index_t l) {
    return levels[static_cast<std::size_t>(((l * c + ch) * h + y) * w + x)];
  };
  return (1 - f) * at(k) + f * at(k1);
}

template <class T>
std::vector<T> ep_random(cvk::rng& gen, std::size_t n, double lo, double hi) {
  std::vector<T> v(n);
  for (auto& x : v) x = static_cast<T>(gen.uniform(lo, hi));
  return v;
}

template <class T>
double ep_tolerance() {
  return std::is_same_v<T, float> ? 3e-5 : 1e-11;
}

template <class A, class B>
void ep_require_close(const A& actual, const B& expected, double tol, const std::string& what) {
  REQUIRE(actual.size() == expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const double e = static_cast<double>(expected[i]);
    const double a = static_cast<double>(actual[i]);
    if (!(std::abs(a - e) <= tol * std::max(1.0, std::abs(e)))) {
      INFO(what << ": index " << i << " actual " << a << " expected " << e);
      REQUIRE(std::abs(a - e) <= tol * std::max(1.0, std::abs(e)));
    }
  }
}

template <class T, std::size_t R>
std::vector<T> ep_flat(const cvk::tensor<T, R>& t) {
  return std::vector<T>(t.begin(), t.end());
}

// ---------------------------------------------------------------------------------------------
// Models.

/// score = κ·mean over rectangle [y0, y1)×[x0, x1) and every channel of the image; gradient
/// κ/(|R|·C) on the rectangle. Either layout.
template <class T>
struct ep_rectangle_model {
  index_t y0, y1, x0, x1;
  double kappa;
  cvk::layout data_layout;
  int calls = 0;
  std::vector<index_t> batch_sizes;

  ep_rectangle_model(index_t top, index_t bottom, index_t left, index_t right, double k,
                     cvk::layout l = cvk::layout::nchw)
      : y0(top), y1(bottom), x0(left), x1(right), kappa(k), data_layout(l) {}

  void operator()(cvk::strided_view<const T, 4> batch, cvk::strided_view<T, 1> scores,
                  cvk::strided_view<T, 4> grads) {
    ++calls;
    batch_sizes.push_back(batch.extent(0));
    const auto x = cvk::detail::permute_axes(batch, cvk::detail::nchw_axes(data_layout));
    const auto g = cvk::detail::permute_axes(grads, cvk::detail::nchw_axes(data_layout));
    const double count = static_cast<double>((y1 - y0) * (x1 - x0) * x.extent(1));
    for (index_t n = 0; n < x.extent(0); ++n) {
      double s = 0;
      for (index_t c = 0; c < x.extent(1); ++c) {
        for (index_t y = 0; y < x.extent(2); ++y) {
          for (index_t xx = 0; xx < x.extent(3); ++xx) {
            const bool in = y >= y0 && y < y1 && xx >= x0 && xx < x1;
            if (in) s += static_cast<double>(x(n, c, y, xx));
            g(n, c, y, xx) = in ? static_cast<T>(kappa / count) : T(0);
          }
        }
      }
      scores(n) = static_cast<T>(kappa * s / count);
    }
  }
};

/// score = Σ W·x + ½·Σ V·x² (the fixtures' loop model), NCHW.
struct ep_quadratic_model {
  std::vector<double> w, v;
  void operator()(cvk::strided_view<const double, 4> batch, cvk::strided_view<double, 1> scores,
                  cvk::strided_view<double, 4> grads) const {
    const index_t c = batch.extent(1), h = batch.extent(2), wd = batch.extent(3);
    for (index_t n = 0; n < batch.extent(0); ++n) {
      double s = 0;
      for (index_t ch = 0; ch < c; ++ch) {
        for (index_t y = 0; y < h; ++y) {
          for (index_t x = 0; x < wd; ++x) {
            const auto i = static_cast<std::size_t>((ch * h + y) * wd + x);
            const double xv = batch(n, ch, y, x);
            s += w[i] * xv + 0.5 * v[i] * xv * xv;
            grads(n, ch, y, x) = w[i] + v[i] * xv;
          }
        }
      }
      scores(n) = s;
    }
  }
};

const cvk_test::fixture_file& ep_fixtures() {
  static const cvk_test::fixture_file file(cvk_test::test_data_path("saliency_extremal_torch.txt"));
  return file;
}

template <class T>
const char* ep_dtype() {
  return std::is_same_v<T, float> ? "float32" : "float64";
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Smooth-mask generator.

TEST_CASE("smooth_mask_shape: TorchRay's MaskGenerator shapes", "[saliency][extremal]") {
  // 224×224 with TorchRay's defaults: shape_in 32, padding 7, radius 4, shape_mid 38,
  // shape_up 266, shape_out 260, margin 21.
  const auto g = cvk::smooth_mask_shape({224, 224});
  CHECK(g.grid_height == 32);
  CHECK(g.grid_width == 32);
  CHECK(g.padding == 7);
  CHECK(g.radius == 4);
  CHECK(g.full_height == 260);
  CHECK(g.full_width == 260);
  CHECK(g.margin == 21);
  // Non-square, sigma rounding half to even (2.5 → 2, 3.5 → 4).
  const auto a = cvk::smooth_mask_shape({20, 11}, {.step = 3, .sigma = 2.5});
  CHECK(a.margin == 2);
  CHECK(a.grid_height == 7);
  CHECK(a.grid_width == 4);
  const auto b = cvk::smooth_mask_shape({12, 12}, {.step = 3, .sigma = 3.5});
  CHECK(b.margin == 4);
  CHECK(b.full_height == 16);  // exactly margin + H
  cvk::rng gen(11);
  for (int trial = 0; trial < 200; ++trial) {
    const index_t step = cvk_test::draw(gen, 1, 12);
    const double sigma = gen.uniform(0.51, 4.0) * static_cast<double>(step);
    const index_t h = cvk_test::draw(gen, 1, 90), w = cvk_test::draw(gen, 1, 90);
    const auto r = ep_reference_geometry(h, w, step, sigma);
    if (r.fh < r.margin + h || r.fw < r.margin + w) continue;
    const auto c = cvk::smooth_mask_shape({h, w}, {.step = step, .sigma = sigma});
    REQUIRE(c.grid_height == r.gh);
    REQUIRE(c.grid_width == r.gw);
    REQUIRE(c.full_height == r.fh);
    REQUIRE(c.full_width == r.fw);
    REQUIRE(c.margin == r.margin);
    REQUIRE(c.padding == r.padding);
    REQUIRE(c.radius == r.radius);
  }
}

TEMPLATE_TEST_CASE("smooth_mask: random grids and parameters equal the plain TorchRay loop",
                   "[saliency][extremal]", float, double) {
  using T = TestType;
  cvk::rng gen(2019);
  const int trials = cvk_test::trials(40);
  for (int trial = 0; trial < trials; ++trial) {
    const index_t step = cvk_test::draw(gen, 1, 6);
    const double sigma = gen.uniform(0.6, 2.5) * static_cast<double>(step);
    const index_t h = cvk_test::draw(gen, 1, 24), w = cvk_test::draw(gen, 1, 24);
    const auto r = ep_reference_geometry(h, w, step, sigma);
    if (r.fh < r.margin + h || r.fw < r.margin + w) continue;
    const index_t k = cvk_test::draw(gen, 1, 3);
    const auto pooling = static_cast<cvk::mask_pooling>(cvk_test::draw(gen, 0, 2));
    const double coldnesses[] = {0.0, 2.0, 20.0, std::numeric_limits<double>::infinity()};
    const double coldness = coldnesses[cvk_test::draw(gen, 0, 3)];
    const bool clamp = gen.uniform(0.0, 1.0) < 0.7;
    const cvk::smooth_mask_params p{.step = step,
                                    .sigma = sigma,
                                    .pooling = pooling,
                                    .coldness = coldness,
                                    .clamp = clamp,
                                    .threads = static_cast<int>(cvk_test::draw(gen, 0, 3))};
    INFO("trial " << trial << " " << h << "×" << w << " step " << step << " sigma " << sigma
                  << " pooling " << static_cast<int>(pooling) << " coldness " << coldness);
    // The grid behind a padded-stride view (every axis one longer).
    std::vector<T> storage(static_cast<std::size_t>(k * (r.gh + 1) * (r.gw + 1)), T(-7));
    const cvk::strided_view<T, 3> grid(storage.data(), {k, r.gh, r.gw},
                                       {(r.gh + 1) * (r.gw + 1), r.gw + 1, 1});
    std::vector<double> grid_values;
    for (index_t a = 0; a < k; ++a) {
      for (index_t y = 0; y < r.gh; ++y) {
        for (index_t x = 0; x < r.gw; ++x) {
          grid(a, y, x) = static_cast<T>(gen.uniform(-0.2, 1.2));
          grid_values.push_back(static_cast<double>(grid(a, y, x)));
        }
      }
    }
    const auto expected_full =
        ep_reference_full(grid_values, k, r, step, sigma, pooling, coldness, clamp);
    const auto full = cvk::smooth_mask_full(cvk::strided_view<const T, 3>(grid), p, {h, w});
    REQUIRE(full.extent(0) == k);
    REQUIRE(full.extent(1) == r.fh);
    REQUIRE(full.extent(2) == r.fw);
    ep_require_close(ep_flat(full), expected_full, ep_tolerance<T>() * 10, "full");
    const auto crop = cvk::smooth_mask(grid, p, {h, w});
    std::vector<double> expected_crop;
    for (index_t a = 0; a < k; ++a) {
      for (index_t y = 0; y < h; ++y) {
        for (index_t x = 0; x < w; ++x) {
          expected_crop.push_back(expected_full[static_cast<std::size_t>(
              (a * r.fh + y + r.margin) * r.fw + x + r.margin)]);
        }
      }
    }
    ep_require_close(ep_flat(crop), expected_crop, ep_tolerance<T>() * 10, "crop");
    // Write-into forms, the crop's size taken from `out`.
    cvk::tensor<T, 3> out(k, h, w);
    cvk::smooth_mask(grid, p, out);
    REQUIRE(out == crop);
    cvk::tensor<T, 3> full_out(k, r.fh, r.fw);
    cvk::smooth_mask_full(grid, p, {h, w}, full_out);
    REQUIRE(full_out == full);
  }
}

TEMPLATE_TEST_CASE("smooth_mask and its backward: TorchRay golden fixtures (torch autograd)",
                   "[saliency][extremal][fixtures]", float, double) {
  using T = TestType;
  const auto& f = ep_fixtures();
  const int cases = std::stoi(f.meta("mask_cases"));
  REQUIRE(cases >= 8);
  for (int c = 0; c < cases; ++c) {
    const std::string prefix = "mask" + std::to_string(c);
    const auto params = f.table(prefix + "/params").values<double>();
    const auto k = static_cast<index_t>(params[0]);
    const auto h = static_cast<index_t>(params[1]);
    const auto w = static_cast<index_t>(params[2]);
    const cvk::smooth_mask_params p{.step = static_cast<index_t>(params[3]),
                                    .sigma = params[4],
                                    .pooling = static_cast<cvk::mask_pooling>(params[5]),
                                    .coldness = params[6],
                                    .clamp = params[7] != 0};
    INFO(prefix);
    const auto shapes = f.table(prefix + "/shapes").values<index_t>();
    const auto g = cvk::smooth_mask_shape({h, w}, p);
    REQUIRE(g.grid_height == shapes[0]);
    REQUIRE(g.grid_width == shapes[1]);
    REQUIRE(g.full_height == shapes[2]);
    REQUIRE(g.full_width == shapes[3]);
    REQUIRE(g.margin == shapes[4]);
    REQUIRE(g.padding == shapes[5]);
    REQUIRE(g.radius == shapes[6]);
    const std::string d = prefix + "/" + ep_dtype<T>() + "/";
    const auto grid_values = f.table(d + "grid").values<T>();
    const cvk::strided_view<const T, 3> grid(grid_values.data(), {k, g.grid_height, g.grid_width});
    const double tol = std::is_same_v<T, float> ? 2e-5 : 1e-12;
    ep_require_close(ep_flat(cvk::smooth_mask_full(grid, p, {h, w})),
                     f.table(d + "full").values<T>(), tol, "full");
    ep_require_close(ep_flat(cvk::smooth_mask(grid, p, {h, w})), f.table(d + "crop").values<T>(),
                     tol, "crop");
    const auto gcrop = f.table(d + "grad_crop").values<T>();
    const auto gfull = f.table(d + "grad_full").values<T>();
    const double gtol = std::is_same_v<T, float> ? 1e-4 : 1e-11;
    ep_require_close(ep_flat(cvk::smooth_mask_backward(
                         grid, p, cvk::strided_view<const T, 3>(gcrop.data(), {k, h, w}))),
                     f.table(d + "grad_grid_from_crop").values<T>(), gtol, "grad from crop");
    ep_require_close(
        ep_flat(cvk::smooth_mask_full_backward(
            grid, p, {h, w},
            cvk::strided_view<const T, 3>(gfull.data(), {k, g.full_height, g.full_width}))),
        f.table(d + "grad_grid_from_full").values<T>(), gtol, "grad from full");
  }
}

TEST_CASE("smooth_mask_backward: central finite differences in double, away from the kinks",
          "[saliency][extremal]") {
  cvk::rng gen(77);
  const int trials = cvk_test::trials(24);
  for (int trial = 0; trial < trials; ++trial) {
    const index_t step = cvk_test::draw(gen, 1, 5);
    const double sigma = gen.uniform(0.6, 2.2) * static_cast<double>(step);
    const index_t h = cvk_test::draw(gen, 2, 14), w = cvk_test::draw(gen, 2, 14);
    const auto r = ep_reference_geometry(h, w, step, sigma);
    if (r.fh < r.margin + h || r.fw < r.margin + w) continue;
    const index_t k = cvk_test::draw(gen, 1, 2);
    const auto pooling = static_cast<cvk::mask_pooling>(trial % 3);
    // smooth_max of values in [0.05, 0.95] stays inside (0, 1); sum pooling runs unclamped;
    // sigmoid never reaches 0 or 1: no clamp kink. coldness 0 (mean) included.
    const double coldness = trial % 4 == 3 ? 0.0 : gen.uniform(1.0, 25.0);
    const cvk::smooth_mask_params p{.step = step,
                                    .sigma = sigma,
                                    .pooling = pooling,
                                    .coldness = coldness,
                                    .clamp = pooling != cvk::mask_pooling::sum};
    INFO("trial " << trial << " " << h << "×" << w << " step " << step << " sigma " << sigma
                  << " pooling " << static_cast<int>(pooling));
    auto grid_values =
        ep_random<double>(gen, static_cast<std::size_t>(k * r.gh * r.gw), 0.05, 0.95);
    const auto upstream = ep_random<double>(gen, static_cast<std::size_t>(k * h * w), -1, 1);
    const auto upstream_full =
        ep_random<double>(gen, static_cast<std::size_t>(k * r.fh * r.fw), -1, 1);
    const cvk::strided_view<const double, 3> up(upstream.data(), {k, h, w});
    const cvk::strided_view<const double, 3> upf(upstream_full.data(), {k, r.fh, r.fw});
    const auto loss = [&](bool full_mask) {
      const cvk::strided_view<const double, 3> grid(grid_values.data(), {k, r.gh, r.gw});
      double s = 0;
      if (full_mask) {
        const auto m = cvk::smooth_mask_full(grid, p, {h, w});
        for (std::size_t i = 0; i < upstream_full.size(); ++i) s += upstream_full[i] * m.data()[i];
      } else {
        const auto m = cvk::smooth_mask(grid, p, {h, w});
        for (std::size_t i = 0; i < upstream.size(); ++i) s += upstream[i] * m.data()[i];
      }
      return s;
    };
    const cvk::strided_view<const double, 3> grid(grid_values.data(), {k, r.gh, r.gw});
    const auto analytic_crop = cvk::smooth_mask_backward(grid, p, up);
    const auto analytic_full = cvk::smooth_mask_full_backward(grid, p, {h, w}, upf);
    for (std::size_t i = 0; i < grid_values.size(); ++i) {
      const double saved = grid_values[i];
      const double eps = 1e-6;
      for (const bool full_mask : {false, true}) {
        grid_values[i] = saved + eps;
        const double plus = loss(full_mask);
        grid_values[i] = saved - eps;
        const double minus = loss(full_mask);
        grid_values[i] = saved;
        const double numeric = (plus - minus) / (2 * eps);
        const double analytic = full_mask ? analytic_full.data()[i] : analytic_crop.data()[i];
        INFO("grid value " << i << (full_mask ? " (full)" : " (crop)"));
        REQUIRE(std::abs(numeric - analytic) <= 1e-6 * std::max(1.0, std::abs(numeric)));
      }
    }
  }
}

TEMPLATE_TEST_CASE(
    "smooth_mask, its backward and the pyramid: bit-identical for 1, 2 and 3 threads",
    "[saliency][extremal]", float, double) {
  using T = TestType;
  cvk::rng gen(3);
  const index_t h = 37, w = 29, k = 2, c = 3;
  for (const auto pooling :
       {cvk::mask_pooling::smooth_max, cvk::mask_pooling::sum, cvk::mask_pooling::sigmoid}) {
    cvk::smooth_mask_params p{.step = 3, .sigma = 4, .pooling = pooling, .coldness = 20};
    const auto g = cvk::smooth_mask_shape({h, w}, p);
    const auto grid =
        ep_random<T>(gen, static_cast<std::size_t>(k * g.grid_height * g.grid_width), 0, 1);
    const auto up =
        ep_random<T>(gen, static_cast<std::size_t>(k * g.full_height * g.full_width), -1, 1);
    const cvk::strided_view<const T, 3> gv(grid.data(), {k, g.grid_height, g.grid_width});
    const cvk::strided_view<const T, 3> uv(up.data(), {k, g.full_height, g.full_width});
    p.threads = 1;
    const auto full1 = cvk::smooth_mask_full(gv, p, {h, w});
    const auto back1 = cvk::smooth_mask_full_backward(gv, p, {h, w}, uv);
    for (const int threads : {2, 3}) {
      p.threads = threads;
      REQUIRE(cvk::smooth_mask_full(gv, p, {h, w}) == full1);
      REQUIRE(cvk::smooth_mask_full_backward(gv, p, {h, w}, uv) == back1);
    }
  }
  const auto image = ep_random<T>(gen, static_cast<std::size_t>(c * h * w), -1, 1);
  const auto masks = ep_random<T>(gen, static_cast<std::size_t>(k * h * w), 0, 1);
  const auto grad = ep_random<T>(gen, static_cast<std::size_t>(k * c * h * w), -1, 1);
  const cvk::strided_view<const T, 4> x(image.data(), {1, c, h, w});
  const cvk::strided_view<const T, 3> mv(masks.data(), {k, h, w});
  const cvk::strided_view<const T, 4> gv(grad.data(), {k, c, h, w});
  const cvk::perturbation_pyramid one(x, {.max_blur = 5, .threads = 1});
  const auto y1 = one.apply(mv);
  const auto d1 = one.apply_backward(mv, gv);
  for (const int threads : {2, 3}) {
    const cvk::perturbation_pyramid many(x, {.max_blur = 5, .threads = threads});
    const auto l1 = one.level_view(), ln = many.level_view();
    REQUIRE(std::equal(l1.data(), l1.data() + l1.size(), ln.data()));
    REQUIRE(many.apply(mv) == y1);
    REQUIRE(many.apply_backward(mv, gv) == d1);
  }
}

TEST_CASE("smooth_mask: hand-computable values", "[saliency][extremal]") {
  // One grid node of value v, step 2, sigma 2: P = 3, R = 2. Pixel u of the full mask sees the
  // node through one tap of weight k(|u − (2 + 2·0)|/2); with sum pooling and no clamp the full
  // mask is exactly v·k(‖u − (2, 2)‖/2), and 0 beyond the reach of the node's taps.
  const cvk::smooth_mask_params p{
      .step = 2, .sigma = 2, .pooling = cvk::mask_pooling::sum, .clamp = false};
  const double v = 0.75;
  const std::vector<double> grid{v};
  const auto full =
      cvk::smooth_mask_full(cvk::strided_view<const double, 3>(grid.data(), {1, 1, 1}), p, {1, 1});
  const auto g = cvk::smooth_mask_shape({1, 1}, p);
  REQUIRE(full.extent(1) == g.full_height);
  for (index_t y = 0; y < g.full_height; ++y) {
    for (index_t x = 0; x < g.full_width; ++x) {
      // Node 0 is a tap of pixel u iff ⌊u/2⌋ + ky − 3 = 0 for some ky in [0, 4].
      const bool reached = y / 2 <= 3 && y / 2 + 4 >= 3 && x / 2 <= 3 && x / 2 + 4 >= 3;
      const double z = std::hypot(static_cast<double>(y) - 2, static_cast<double>(x) - 2) / 2;
      const double expected = reached ? v * std::exp(-2 * std::pow(std::max(z - 0.5, 0.0), 2)) : 0;
      REQUIRE(full(0, y, x) == Approx(expected).margin(1e-15));
    }
  }
  // Flat core: within σ/2 = 1 pixel of the node the weight is exactly 1.
  CHECK(full(0, 2, 2) == v);
  CHECK(full(0, 2, 3) == v);
  CHECK(full(0, 3, 2) == v);
  // The cropped 1×1 mask is full(margin, margin) = full(2, 2).
  const auto crop =
      cvk::smooth_mask(cvk::strided_view<const double, 3>(grid.data(), {1, 1, 1}), p, {1, 1});
  CHECK(crop(0, 0, 0) == v);
  // Smooth max of equal taps is their value; coldness 0 is the mean.
  // A uniform grid of ones: every value in (0, 1); a node (crop coordinates 4v, in the flat
  // core of its own weight) above the point between four nodes (weights k(2√2/4) ≈ 0.918).
  const std::vector<double> ones(9, 1.0);
  const auto m = cvk::smooth_mask(cvk::strided_view<const double, 3>(ones.data(), {1, 3, 3}),
                                  {.step = 4, .sigma = 4, .coldness = 20}, {12, 12});
  for (const double value : m) REQUIRE((value > 0.0 && value < 1.0));
  CHECK(m(0, 4, 4) > m(0, 6, 6));
}

// ---------------------------------------------------------------------------------------------
// Perturbation pyramid.

TEMPLATE_TEST_CASE(
    "perturbation_pyramid: TorchRay golden fixtures (imsmooth by conv2d, apply, "
    "its autograd)",
    "[saliency][extremal][fixtures]", float, double) {
  using T = TestType;
  const auto& f = ep_fixtures();
  const int cases = std::stoi(f.meta("pyramid_cases"));
  REQUIRE(cases >= 4);
  for (int c = 0; c < cases; ++c) {
    const std::string prefix = "pyramid" + std::to_string(c);
    const auto params = f.table(prefix + "/params").values<double>();
    const auto ch = static_cast<index_t>(params[0]);
    const auto h = static_cast<index_t>(params[1]);
    const auto w = static_cast<index_t>(params[2]);
    const auto kind = params[3] == 0 ? cvk::perturbation_kind::blur : cvk::perturbation_kind::fade;
    const auto levels = static_cast<index_t>(params[4]);
    const double max_blur = params[5];
    const auto k = static_cast<index_t>(params[6]);
    INFO(prefix);
    const std::string d = prefix + "/" + ep_dtype<T>() + "/";
    const auto image = f.table(d + "image").values<T>();
    const cvk::perturbation_pyramid pyr(cvk::strided_view<const T, 4>(image.data(), {1, ch, h, w}),
                                        {.kind = kind, .levels = levels, .max_blur = max_blur});
    const double tol = std::is_same_v<T, float> ? 2e-5 : 1e-12;
    const auto lv = pyr.level_view();
    ep_require_close(std::vector<T>(lv.data(), lv.data() + lv.size()),
                     f.table(d + "levels").values<T>(), tol, "levels");
    const auto masks = f.table(d + "masks").values<T>();
    const cvk::strided_view<const T, 3> mv(masks.data(), {k, h, w});
    ep_require_close(ep_flat(pyr.apply(mv)), f.table(d + "apply").values<T>(), tol, "apply");
    const auto go = f.table(d + "grad_output").values<T>();
    ep_require_close(
        ep_flat(pyr.apply_backward(mv, cvk::strided_view<const T, 4>(go.data(), {k, ch, h, w}))),
        f.table(d + "grad_masks").values<T>(), tol * 10, "grad_masks");
  }
}

TEMPLATE_TEST_CASE("perturbation_pyramid: levels and apply equal the plain loop, both layouts",
                   "[saliency][extremal]", float, double) {
  using T = TestType;
  cvk::rng gen(404);
  for (int trial = 0; trial < cvk_test::trials(16); ++trial) {
    const index_t c = cvk_test::draw(gen, 1, 3), h = cvk_test::draw(gen, 1, 11),
                  w = cvk_test::draw(gen, 1, 11), k = cvk_test::draw(gen, 1, 3);
    const auto kind = trial % 2 == 0 ? cvk::perturbation_kind::blur : cvk::perturbation_kind::fade;
    const index_t levels = cvk_test::draw(gen, 2, 9);
    const double max_blur = gen.uniform(0.3, 6.0);
    const auto l = trial % 4 < 2 ? cvk::layout::nchw : cvk::layout::nhwc;
    INFO("trial " << trial);
    const auto image = ep_random<double>(gen, static_cast<std::size_t>(c * h * w), -1, 1);
    // The image in layout l, T-rounded; the reference reads the rounded values.
    std::vector<T> stored(image.size());
    std::vector<double> rounded(image.size());
    for (index_t ch = 0; ch < c; ++ch) {
      for (index_t y = 0; y < h; ++y) {
        for (index_t x = 0; x < w; ++x) {
          const auto src = static_cast<std::size_t>((ch * h + y) * w + x);
          const auto dst = static_cast<std::size_t>(l == cvk::layout::nchw ? (ch * h + y) * w + x
                                                                           : (y * w + x) * c + ch);
          stored[dst] = static_cast<T>(image[src]);
          rounded[src] = static_cast<double>(stored[dst]);
        }
      }
    }
    const auto e = cvk::detail::from_nchw({1, c, h, w}, l);
    // Every third trial reads the image through a view with its rows reversed (negative
    // stride) over a copy stored upside down.
    std::vector<T> flipped(stored.size());
    const index_t row = l == cvk::layout::nchw ? w : w * c;
    const index_t plane_rows = l == cvk::layout::nchw ? c * h : h;
    for (index_t r = 0; r < plane_rows; ++r) {
      const index_t src_row = l == cvk::layout::nchw ? (r / h) * h + (h - 1 - r % h) : h - 1 - r;
      std::copy(stored.begin() + r * row, stored.begin() + (r + 1) * row,
                flipped.begin() + src_row * row);
    }
    auto strides = cvk::strided_view<const T, 4>::row_major_strides(e);
    const std::size_t h_axis = l == cvk::layout::nchw ? 2 : 1;
    const T* base = stored.data();
    if (trial % 3 == 2) {
      base = flipped.data() + (h - 1) * strides[h_axis];
      strides[h_axis] = -strides[h_axis];
    }
    const cvk::perturbation_pyramid pyr(cvk::strided_view<const T, 4>(base, e, strides),
                                        {.kind = kind,
                                         .levels = levels,
                                         .max_blur = max_blur,
                                         .data_layout = l,
                                         .threads = trial % 3});
    const auto expected = ep_reference_levels(rounded, c, h, w, kind, levels, max_blur);
    const auto lv = pyr.level_view();
    ep_require_close(std::vector<T>(lv.data(), lv.data() + lv.size()), expected, ep_tolerance<T>(),
                     "levels");
    const auto masks = ep_random<T>(gen, static_cast<std::size_t>(k * h * w), 0, 1);
    const cvk::strided_view<const T, 3> mv(masks.data(), {k, h, w});
    const auto out = pyr.apply(mv);
    const auto on = cvk::detail::permute_axes(cvk::strided_view<const T, 4>(out.view()),
                                              cvk::detail::nchw_axes(l));
    for (index_t n = 0; n < k; ++n) {
      for (index_t ch = 0; ch < c; ++ch) {
        for (index_t y = 0; y < h; ++y) {
          for (index_t x = 0; x < w; ++x) {
            const double want =
                ep_reference_apply(std::vector<double>(lv.data(), lv.data() + lv.size()), c, h, w,
                                   levels, static_cast<double>(mv(n, y, x)), ch, y, x);
            REQUIRE(static_cast<double>(on(n, ch, y, x)) == Approx(want).margin(ep_tolerance<T>()));
          }
        }
      }
    }
  }
}

TEST_CASE("perturbation_pyramid::apply_backward: central finite differences in double",
          "[saliency][extremal]") {
  cvk::rng gen(99);
  for (int trial = 0; trial < cvk_test::trials(12); ++trial) {
    const index_t c = cvk_test::draw(gen, 1, 3), h = cvk_test::draw(gen, 1, 7),
                  w = cvk_test::draw(gen, 1, 7), k = cvk_test::draw(gen, 1, 2);
    const index_t levels = cvk_test::draw(gen, 2, 8);
    const auto kind = trial % 2 == 0 ? cvk::perturbation_kind::blur : cvk::perturbation_kind::fade;
    const auto image = ep_random<double>(gen, static_cast<std::size_t>(c * h * w), -1, 1);
    const cvk::perturbation_pyramid pyr(
        cvk::strided_view<const double, 4>(image.data(), {1, c, h, w}),
        {.kind = kind, .levels = levels, .max_blur = 2.0});
    // Mask values away from the level boundaries m·(L − 1) ∈ ℤ (the kinks of the interpolation).
    std::vector<double> masks(static_cast<std::size_t>(k * h * w));
    for (auto& m : masks) {
      do {
        m = gen.uniform(0.0, 1.0);
      } while (std::abs(m * static_cast<double>(levels - 1) -
                        std::round(m * static_cast<double>(levels - 1))) < 1e-3);
    }
    const auto upstream = ep_random<double>(gen, static_cast<std::size_t>(k * c * h * w), -1, 1);
    const cvk::strided_view<const double, 4> up(upstream.data(), {k, c, h, w});
    const auto analytic =
        pyr.apply_backward(cvk::strided_view<const double, 3>(masks.data(), {k, h, w}), up);
    const auto loss = [&] {
      const auto y = pyr.apply(cvk::strided_view<const double, 3>(masks.data(), {k, h, w}));
      double s = 0;
      for (std::size_t i = 0; i < upstream.size(); ++i) s += upstream[i] * y.data()[i];
      return s;
    };
    for (std::size_t i = 0; i < masks.size(); ++i) {
      const double saved = masks[i], eps = 1e-7;
      masks[i] = saved + eps;
      const double plus = loss();
      masks[i] = saved - eps;
      const double minus = loss();
      masks[i] = saved;
      REQUIRE(analytic.data()[i] == Approx((plus - minus) / (2 * eps)).epsilon(1e-6).margin(1e-7));
    }
  }
  // At m = 1 the derivative is 0 (both interpolation levels are the last), as in TorchRay.
  const std::vector<double> image{1, 2, 3, 4};
  const cvk::perturbation_pyramid pyr(
      cvk::strided_view<const double, 4>(image.data(), {1, 1, 2, 2}),
      {.kind = cvk::perturbation_kind::fade, .levels = 3});
  const std::vector<double> masks{1, 0, 0.5, 0.25};
  const std::vector<double> upstream{1, 1, 1, 1};
  const auto d =
      pyr.apply_backward(cvk::strided_view<const double, 3>(masks.data(), {1, 2, 2}),
                         cvk::strided_view<const double, 4>(upstream.data(), {1, 1, 2, 2}));
  CHECK(d(0, 0, 0) == 0.0);
  CHECK(d(0, 0, 1) == Approx(2.0));  // fade: out = m·x, slope x (levels 0 → ½x)
  CHECK(d(0, 1, 0) == Approx(3.0));
  CHECK(d(0, 1, 1) == Approx(4.0));
  const auto y = pyr.apply(cvk::strided_view<const double, 3>(masks.data(), {1, 2, 2}));
  CHECK(y(0, 0, 0, 0) == 1.0);
  CHECK(y(0, 0, 0, 1) == 0.0);
  CHECK(y(0, 0, 1, 0) == Approx(1.5));
  CHECK(y(0, 0, 1, 1) == Approx(1.0));
}

// ---------------------------------------------------------------------------------------------
// Regulariser.

TEST_CASE("area regulariser: value and gradient (finite differences away from ties)",
          "[saliency][extremal]") {
  cvk::rng gen(5);
  for (int trial = 0; trial < 20; ++trial) {
    const index_t n = cvk_test::draw(gen, 2, 60);
    const double area = gen.uniform(0.01, 0.99);
    const double lambda = gen.uniform(1.0, 500.0);
    std::vector<double> v(static_cast<std::size_t>(n));
    // Distinct values at least 1e-3 apart (no ties within the finite-difference step).
    for (index_t i = 0; i < n; ++i)
      v[static_cast<std::size_t>(i)] = static_cast<double>(i) / static_cast<double>(n) + 1e-3;
    for (index_t i = n - 1; i > 0; --i) {
      std::swap(v[static_cast<std::size_t>(i)],
                v[static_cast<std::size_t>(cvk_test::draw(gen, 0, i))]);
    }
    const index_t zeros = cvk::detail::regulariser_zeros(n, area);
    cvk::detail::regulariser_scratch<double> scratch(n);
    std::vector<double> grad(static_cast<std::size_t>(n));
    const auto value = [&](const std::vector<double>& x) {
      std::vector<double> s = x;
      std::sort(s.begin(), s.end());
      double sum = 0;
      for (index_t i = 0; i < n; ++i) {
        const double r = i >= zeros ? 1.0 : 0.0;
        sum += (s[static_cast<std::size_t>(i)] - r) * (s[static_cast<std::size_t>(i)] - r);
      }
      return -lambda * sum / static_cast<double>(n);
    };
    const double regul =
        cvk::detail::area_regulariser(v.data(), n, zeros, lambda, grad.data(), scratch);
    REQUIRE(regul == Approx(value(v)).epsilon(1e-12));
    for (std::size_t i = 0; i < v.size(); ++i) {
      const double saved = v[i], eps = 1e-6;
      v[i] = saved + eps;
      const double plus = -value(v);
      v[i] = saved - eps;
      const double minus = -value(v);
      v[i] = saved;
      REQUIRE(grad[i] == Approx((plus - minus) / (2 * eps)).epsilon(1e-6).margin(1e-8));
    }
  }
  // Python's int(n·(1 − a)).
  CHECK(cvk::detail::regulariser_zeros(67600, 0.1) == 60840);
  CHECK(cvk::detail::regulariser_zeros(10, 0.3) == 7);
  CHECK(cvk::detail::regulariser_zeros(100, 0.07) == 93);
}

TEMPLATE_TEST_CASE(
    "stable_value_order: the permutation of std::stable_sort (ties, ±0, ±inf, "
    "NaN last)",
    "[saliency][extremal]", float, double) {
  using T = TestType;
  cvk::rng gen(12);
  const T specials[] = {T(0),
                        -T(0),
                        T(1),
                        T(-1),
                        std::numeric_limits<T>::infinity(),
                        -std::numeric_limits<T>::infinity(),
                        std::numeric_limits<T>::quiet_NaN(),
                        -std::numeric_limits<T>::quiet_NaN(),
                        std::numeric_limits<T>::denorm_min(),
                        -std::numeric_limits<T>::max(),
                        T(0.5)};
  for (int trial = 0; trial < 30; ++trial) {
    const index_t n = cvk_test::draw(gen, 0, trial < 5 ? 8 : 3000);
    std::vector<T> v(static_cast<std::size_t>(n));
    for (auto& x : v) {
      const double u = gen.uniform(0.0, 1.0);
      if (u < 0.2) {
        x = specials[cvk_test::draw(gen, 0, 10)];
      } else if (u < 0.5) {
        x = static_cast<T>(cvk_test::draw(gen, -3, 3)) / T(4);  // many ties
      } else {
        x = static_cast<T>(gen.uniform(-1e3, 1e3) * std::pow(10.0, gen.uniform(-30.0, 30.0)));
      }
    }
    std::vector<index_t> expected(static_cast<std::size_t>(n));
    std::iota(expected.begin(), expected.end(), index_t{0});
    std::stable_sort(expected.begin(), expected.end(), [&](index_t i, index_t j) {
      const T a = v[static_cast<std::size_t>(i)], b = v[static_cast<std::size_t>(j)];
      return a < b || (!std::isnan(a) && std::isnan(b));
    });
    cvk::detail::regulariser_scratch<T> scratch(n);
    cvk::detail::stable_value_order(v.data(), n, scratch);
    INFO("trial " << trial << " n " << n);
    REQUIRE(scratch.order == expected);
  }
}

// ---------------------------------------------------------------------------------------------
// The optimisation.

TEST_CASE("extremal_perturbation: TorchRay's loop, golden fixtures (float64)",
          "[saliency][extremal][fixtures]") {
  const auto& f = ep_fixtures();
  const int cases = std::stoi(f.meta("loop_cases"));
  REQUIRE(cases >= 3);
  for (int c = 0; c < cases; ++c) {
    const std::string prefix = "loop" + std::to_string(c);
    const auto q = f.table(prefix + "/params").values<double>();
    const auto ch = static_cast<index_t>(q[0]);
    const auto h = static_cast<index_t>(q[1]);
    const auto w = static_cast<index_t>(q[2]);
    const auto a = static_cast<std::size_t>(q[3]);
    cvk::extremal_params p;
    p.areas.assign(q.begin() + 4, q.begin() + 4 + static_cast<std::ptrdiff_t>(a));
    std::size_t i = 4 + a;
    p.mode = static_cast<cvk::extremal_mode>(static_cast<int>(q[i++]));
    p.perturbation = q[i++] == 0 ? cvk::perturbation_kind::blur : cvk::perturbation_kind::fade;
    p.levels = static_cast<index_t>(q[i++]);
    p.max_blur = q[i++];
    p.step = static_cast<index_t>(q[i++]);
    p.sigma = q[i++];
    p.max_iter = static_cast<index_t>(q[i++]);
    p.learning_rate = q[i++];
    p.lambda0 = q[i++];
    p.lambda_growth = q[i++];
    p.jitter = q[i++] != 0;
    INFO(prefix);
    const std::string d = prefix + "/float64/";
    const auto image = f.table(d + "image").values<double>();
    const ep_quadratic_model model{f.table(d + "w").values<double>(),
                                   f.table(d + "v").values<double>()};
    for (const index_t batch : {index_t{16}, index_t{1}}) {
      p.model.batch_size = batch;
      const auto r = cvk::extremal_perturbation(
          cvk::strided_view<const double, 4>(image.data(), {1, ch, h, w}), model, p);
      ep_require_close(ep_flat(r.masks), f.table(d + "masks").values<double>(), 1e-9, "masks");
      ep_require_close(ep_flat(r.history), f.table(d + "history").values<double>(), 1e-9,
                       "history");
    }
  }
}

namespace {

struct ep_recovery {
  double inside_fraction = 0;  // mask mass inside R / total mask mass
  double iou = 0;              // IoU of (mask > 0.5) with R
};

template <class T>
ep_recovery ep_measure(const cvk::tensor<T, 3>& masks, index_t a, index_t y0, index_t y1,
                       index_t x0, index_t x1) {
  double inside = 0, total = 0;
  index_t inter = 0, uni = 0;
  for (index_t y = 0; y < masks.extent(1); ++y) {
    for (index_t x = 0; x < masks.extent(2); ++x) {
      const bool in = y >= y0 && y < y1 && x >= x0 && x < x1;
      const double m = static_cast<double>(masks(a, y, x));
      total += m;
      if (in) inside += m;
      const bool on = m > 0.5;
      inter += (on && in) ? 1 : 0;
      uni += (on || in) ? 1 : 0;
    }
  }
  return {total > 0 ? inside / total : 0,
          uni > 0 ? static_cast<double>(inter) / static_cast<double>(uni) : 0};
}

}  // namespace

TEMPLATE_TEST_CASE(
    "extremal_perturbation: recovers the rectangle of an analytic model "
    "(preserve, delete, dual; several areas; jitter)",
    "[saliency][extremal]", float, double) {
  using T = TestType;
  // score = κ·mean of the image over R = rows [8, 24) × cols [8, 24) of a constant image, fade
  // perturbation: the perturbed image is mask·x, the score κ·mean_R(mask), maximal for the mask
  // of R (delete: 1 − mask; dual: κ·mean_R(mask) − κ·mean_R(1 − mask), twice the gradient, so
  // κ is halved to keep the reward's weight against the regulariser). R is symmetric under the
  // horizontal flip of the jitter. The area is a fraction of the full (margin-padded) mask, so
  // the area of R is |R| / (Hf·Wf); the target is 80% of it, leaving room for the mask's smooth
  // border (about sigma pixels wide) inside R. Step 2, sigma 2: with step 4, sigma 4 the ring
  // around a 16×16 region holds ~13% of the mass.
  const index_t h = 32, w = 32;
  const index_t y0 = 8, y1 = 24, x0 = 8, x1 = 24;
  const std::vector<T> image(static_cast<std::size_t>(2 * h * w), T(1));
  const cvk::strided_view<const T, 4> x(image.data(), {1, 2, h, w});
  cvk::extremal_params p;
  p.perturbation = cvk::perturbation_kind::fade;
  p.step = 2;
  p.sigma = 2;
  p.max_iter = 200;
  p.learning_rate = 0.2;
  p.threads = 1;  // small problems: no thread team per row block
  const auto g = cvk::smooth_mask_shape({h, w}, {.step = p.step, .sigma = p.sigma});
  const double full = static_cast<double>(g.full_height * g.full_width);
  const double area = 0.8 * static_cast<double>((y1 - y0) * (x1 - x0)) / full;
  // float runs the preserve game only (the three games have the same dynamics here).
  std::vector<cvk::extremal_mode> modes{cvk::extremal_mode::preserve};
  if (std::is_same_v<T, double>) {
    modes.push_back(cvk::extremal_mode::deletion);
    modes.push_back(cvk::extremal_mode::dual);
  }
  for (const auto mode : modes) {
    INFO("mode " << static_cast<int>(mode));
    p.mode = mode;
    p.areas = {area, area * 0.5};
    const double kappa = mode == cvk::extremal_mode::dual ? 50.0 : 100.0;
    ep_rectangle_model<T> model(y0, y1, x0, x1, kappa);
    const auto r = cvk::extremal_perturbation(x, model, p);
    REQUIRE(model.calls == p.max_iter);
    const auto m0 = ep_measure(r.masks, 0, y0, y1, x0, x1);
    INFO("inside " << m0.inside_fraction << " IoU " << m0.iou);
    CHECK(m0.inside_fraction >= 0.9);
    CHECK(m0.iou >= 0.8);
    // The half-area mask lies inside R too.
    const auto m1 = ep_measure(r.masks, 1, y0, y1, x0, x1);
    INFO("half area: inside " << m1.inside_fraction);
    CHECK(m1.inside_fraction >= 0.9);
    // The reward ends near its maximum: mean_R(mask) >= 0.85, i.e. reward/κ >= 0.85
    // (preserve: mean_R(m)), >= −0.15 (delete: −mean_R(1 − m)), >= 0.7 (dual: 2·mean_R(m) − 1);
    // the regulariser (λ·mean squared distance to the sorted reference) small.
    const index_t last = p.max_iter - 1;
    const double floor = mode == cvk::extremal_mode::preserve   ? 0.85
                         : mode == cvk::extremal_mode::deletion ? -0.15
                                                                : 0.7;
    CHECK(static_cast<double>(r.history(0, last, 0)) >= floor * kappa);
    CHECK(static_cast<double>(r.history(0, last, 1)) > -30.0);
    CHECK(static_cast<double>(r.history(0, last, 1)) <= 0.0);
  }
  // Without jitter a rectangle that is not symmetric is recovered as well; with jitter the even
  // iterations reward its mirror image (TorchRay flips the perturbed image, not the model), and
  // the mask covers both.
  p.mode = cvk::extremal_mode::preserve;
  p.areas = {area};
  const index_t left = 5, right = 21;  // mirror: [11, 27)
  p.jitter = false;
  ep_rectangle_model<T> plain(y0, y1, left, right, 100.0);
  const auto r1 = cvk::extremal_perturbation(x, plain, p);
  const auto m = ep_measure(r1.masks, 0, y0, y1, left, right);
  INFO("no jitter: inside " << m.inside_fraction << " IoU " << m.iou);
  CHECK(m.inside_fraction >= 0.9);
  CHECK(m.iou >= 0.8);
  p.jitter = true;
  ep_rectangle_model<T> jittered(y0, y1, left, right, 100.0);
  const auto r2 = cvk::extremal_perturbation(x, jittered, p);
  const auto own = ep_measure(r2.masks, 0, y0, y1, left, right);
  const auto both = ep_measure(r2.masks, 0, y0, y1, left, w - left);
  INFO("jitter: inside R " << own.inside_fraction << ", inside R ∪ mirror "
                           << both.inside_fraction);
  CHECK(own.inside_fraction < 0.8);
  CHECK(both.inside_fraction >= 0.9);
}

TEST_CASE("extremal_perturbation: identical results for any batch size and thread count",
          "[saliency][extremal]") {
  const index_t h = 20, w = 17, c = 3;
  cvk::rng gen(31);
  const auto image = ep_random<double>(gen, static_cast<std::size_t>(c * h * w), 0, 1);
  const std::vector<double> wq = ep_random<double>(gen, image.size(), -1, 1);
  const std::vector<double> vq = ep_random<double>(gen, image.size(), -1, 1);
  cvk::extremal_params p;
  p.areas = {0.05, 0.2};
  p.mode = cvk::extremal_mode::dual;  // 4 images per iteration
  p.step = 4;
  p.sigma = 5;
  p.max_iter = 6;
  p.max_blur = 3;
  const ep_quadratic_model model{wq, vq};
  const cvk::strided_view<const double, 4> x(image.data(), {1, c, h, w});
  p.model.batch_size = 4;
  p.threads = 1;
  const auto reference = cvk::extremal_perturbation(x, model, p);
  for (const index_t batch : {index_t{1}, index_t{2}, index_t{3}, index_t{16}}) {
    for (const int threads : {1, 2, 3}) {
      p.model.batch_size = batch;
      p.threads = threads;
      const auto r = cvk::extremal_perturbation(x, model, p);
      REQUIRE(r.masks == reference.masks);
      REQUIRE(r.history == reference.history);
    }
  }
  // The callable sees at most batch_size images per call: 4 images in calls of 3 and 1.
  ep_rectangle_model<double> counting{2, 10, 3, 12, 10.0};
  p.model.batch_size = 3;
  p.mode = cvk::extremal_mode::dual;
  cvk::extremal_perturbation(x, counting, p);
  REQUIRE(counting.calls == 2 * p.max_iter);
  for (std::size_t i = 0; i < counting.batch_sizes.size(); ++i) {
    REQUIRE(counting.batch_sizes[i] == (i % 2 == 0 ? 3 : 1));
  }
}

TEST_CASE("extremal_perturbation: NHWC images, the returning callable form, other tensor types",
          "[saliency][extremal]") {
  const index_t h = 16, w = 16, c = 2;
  cvk::rng gen(8);
  const auto nchw = ep_random<float>(gen, static_cast<std::size_t>(c * h * w), 0, 1);
  std::vector<float> nhwc(nchw.size());
  for (index_t ch = 0; ch < c; ++ch) {
    for (index_t y = 0; y < h; ++y) {
      for (index_t x = 0; x < w; ++x) {
        nhwc[static_cast<std::size_t>((y * w + x) * c + ch)] =
            nchw[static_cast<std::size_t>((ch * h + y) * w + x)];
      }
    }
  }
  cvk::extremal_params p;
  p.step = 4;
  p.sigma = 4;
  p.max_iter = 5;
  p.areas = {0.2};
  ep_rectangle_model<float> a{3, 9, 2, 12, 50.0};
  const auto r1 = cvk::extremal_perturbation(
      cvk::strided_view<const float, 4>(nchw.data(), {1, c, h, w}), a, p);
  p.model.data_layout = cvk::layout::nhwc;
  ep_rectangle_model<float> b{3, 9, 2, 12, 50.0, cvk::layout::nhwc};
  const auto r2 = cvk::extremal_perturbation(
      cvk::strided_view<const float, 4>(nhwc.data(), {1, h, w, c}), b, p);
  REQUIRE(r1.masks == r2.masks);
  REQUIRE(r1.history == r2.history);
  // The returning form: an object with `scores` and `gradients`.
  struct result {
    cvk::tensor<float, 1> scores;
    cvk::tensor<float, 4> gradients;
  };
  auto returning = [&](cvk::strided_view<const float, 4> batch) {
    result out{cvk::tensor<float, 1>(batch.extent(0)), cvk::tensor<float, 4>(batch.extents())};
    ep_rectangle_model<float> m{3, 9, 2, 12, 50.0, cvk::layout::nhwc};
    m(batch, out.scores.view(), out.gradients.view());
    return out;
  };
  const auto r3 = cvk::extremal_perturbation(
      cvk::strided_view<const float, 4>(nhwc.data(), {1, h, w, c}), returning, p);
  REQUIRE(r3.masks == r1.masks);
  // Write-into form.
  cvk::tensor<float, 3> masks(1, h, w), history(1, p.max_iter, 2);
  ep_rectangle_model<float> d{3, 9, 2, 12, 50.0, cvk::layout::nhwc};
  cvk::extremal_perturbation(cvk::strided_view<const float, 4>(nhwc.data(), {1, h, w, c}), d, p,
                             masks, history);
  REQUIRE(masks == r1.masks);
  REQUIRE(history == r1.history);
#if defined(CVK_TEST_HAS_EIGEN)
  Eigen::Tensor<float, 4, Eigen::RowMajor> e(1, c, h, w);
  std::copy(nchw.begin(), nchw.end(), e.data());
  p.model.data_layout = cvk::layout::nchw;
  ep_rectangle_model<float> m{3, 9, 2, 12, 50.0};
  const auto r4 = cvk::extremal_perturbation(e, m, p);
  REQUIRE(r4.masks == r1.masks);
  Eigen::Tensor<double, 3, Eigen::RowMajor> grid(1, 4, 4);
  grid.setConstant(0.5);
  const auto sm = cvk::smooth_mask(grid, {.step = 4, .sigma = 4}, {16, 16});
  REQUIRE(sm.extent(1) == 16);
#endif
}

TEST_CASE("extremal_perturbation: smooth, init and the history of a frozen optimisation",
          "[saliency][extremal]") {
  // learning_rate 0: the parameters stay at init; every iteration generates the same mask, the
  // history's regulariser grows by lambda_growth each iteration.
  const index_t h = 12, w = 12;
  const std::vector<double> image(static_cast<std::size_t>(h * w), 1.0);
  cvk::extremal_params p{.areas = {0.3},
                         .perturbation = cvk::perturbation_kind::fade,
                         .step = 3,
                         .sigma = 3,
                         .max_iter = 4,
                         .learning_rate = 0,
                         .lambda0 = 10,
                         .lambda_growth = 2,
                         .jitter = false,
                         .init = 0.5};
  ep_rectangle_model<double> m{0, 6, 0, 6, 1.0};
  const auto r = cvk::extremal_perturbation(
      cvk::strided_view<const double, 4>(image.data(), {1, 1, h, w}), m, p);
  for (index_t t = 1; t < p.max_iter; ++t) {
    CHECK(r.history(0, t, 1) == Approx(2 * r.history(0, t - 1, 1)).epsilon(1e-12));
    CHECK(r.history(0, t, 0) == Approx(r.history(0, 0, 0)).epsilon(1e-12));
  }
  std::vector<double> grid(16, 0.5);
  const auto expected = cvk::smooth_mask(cvk::strided_view<const double, 3>(grid.data(), {1, 4, 4}),
                                         {.step = 3, .sigma = 3}, {h, w});
  REQUIRE(r.masks == expected);
  // smooth > 0 blurs the final masks with σ = smooth·min(H, W), zero border.
  p.smooth = 0.1;
  const auto s = cvk::extremal_perturbation(
      cvk::strided_view<const double, 4>(image.data(), {1, 1, h, w}), m, p);
  std::vector<double> plane(expected.begin(), expected.end());
  const auto blurred = ep_reference_blur(plane, h, w, 0.1 * 12);
  ep_require_close(ep_flat(s.masks), blurred, 1e-12, "smoothed masks");
}

TEST_CASE("extremal_perturbation and its parts: errors", "[saliency][extremal]") {
  using Catch::Matchers::Contains;
  const std::vector<double> image(3 * 16 * 16, 0.5);
  const cvk::strided_view<const double, 4> x(image.data(), {1, 3, 16, 16});
  ep_rectangle_model<double> model{2, 8, 2, 8, 1.0};
  const auto run = [&](cvk::extremal_params p) {
    p.step = p.step == 7 ? 4 : p.step;
    p.sigma = p.sigma == 21 ? 4 : p.sigma;
    p.max_iter = p.max_iter == 800 ? 2 : p.max_iter;
    return cvk::extremal_perturbation(x, model, p);
  };
  REQUIRE_THROWS_WITH(run({.areas = {0.0}}), Contains("areas[0] must be in (0, 1), got 0"));
  REQUIRE_THROWS_AS(run({.areas = {0.2, 1.0}}), cvk::invalid_argument);
  REQUIRE_THROWS_WITH(run({.areas = {0.2, 1.5}}), Contains("areas[1]"));
  REQUIRE_THROWS_AS(run({.areas = {std::nan("")}}), cvk::invalid_argument);
  REQUIRE_THROWS_WITH(run({.areas = {}}), Contains("areas must hold at least one area"));
  REQUIRE_THROWS_WITH(run({.step = 0}), Contains("step must be >= 1, got 0"));
  REQUIRE_THROWS_WITH(run({.sigma = -1}), Contains("sigma must be finite and > 0"));
  REQUIRE_THROWS_WITH(run({.sigma = 1.0}), Contains("too small to crop"));
  REQUIRE_THROWS_WITH(run({.levels = 1}), Contains("levels must be >= 2, got 1"));
  REQUIRE_THROWS_WITH(run({.max_blur = 0}), Contains("max_blur must be finite and > 0"));
  REQUIRE_THROWS_WITH(run({.coldness = -1}), Contains("coldness must be >= 0"));
  REQUIRE_THROWS_WITH(run({.max_iter = -3}), Contains("max_iter must be >= 1"));
  REQUIRE_THROWS_WITH(run({.learning_rate = std::numeric_limits<double>::infinity()}),
                      Contains("learning_rate must be finite"));
  REQUIRE_THROWS_WITH(run({.init = 2}), Contains("init must be in [0, 1]"));
  REQUIRE_THROWS_WITH(run({.smooth = -1}), Contains("smooth must be >= 0"));
  REQUIRE_THROWS_WITH(run({.threads = -1}), Contains("threads must be >= 0"));
  REQUIRE_THROWS_WITH(run({.model = {.batch_size = 0}}), Contains("batch_size must be >= 1"));
  // Sum pooling without the clamp makes mask values above 1: the pyramid cannot index them.
  REQUIRE_THROWS_WITH(run({.pooling = cvk::mask_pooling::sum, .clamp = false}),
                      Contains("the generated mask (clamp = false) values must be in [0, 1]"));
  // Images.
  const std::vector<double> two(2 * 3 * 16 * 16, 0.5);
  REQUIRE_THROWS_WITH(
      cvk::extremal_perturbation(cvk::strided_view<const double, 4>(two.data(), {2, 3, 16, 16}),
                                 model, cvk::extremal_params{.step = 4, .sigma = 4, .max_iter = 1}),
      Contains("image must be 1×C×H×W with C, H, W >= 1 (one image), got 2×3×16×16"));
  REQUIRE_THROWS_AS(
      cvk::extremal_perturbation(cvk::strided_view<const double, 4>(image.data(), {1, 3, 0, 16}),
                                 model, cvk::extremal_params{.step = 4, .sigma = 4, .max_iter = 1}),
      cvk::shape_error);
  REQUIRE_THROWS_AS(
      cvk::extremal_perturbation(cvk::strided_view<const double, 4>(image.data(), {1, 0, 16, 16}),
                                 model, cvk::extremal_params{.step = 4, .sigma = 4, .max_iter = 1}),
      cvk::shape_error);
  // A callable returning gradients of the wrong shape, or non-finite values.
  auto wrong = [](cvk::strided_view<const double, 4> batch) {
    struct {
      cvk::tensor<double, 1> scores;
      cvk::tensor<double, 4> gradients;
    } r{cvk::tensor<double, 1>(batch.extent(0)),
        cvk::tensor<double, 4>(batch.extent(0), batch.extent(1), batch.extent(2), 3)};
    return r;
  };
  REQUIRE_THROWS_AS(cvk::extremal_perturbation(
                        x, wrong, cvk::extremal_params{.step = 4, .sigma = 4, .max_iter = 1}),
                    cvk::shape_error);
  auto nan_score = [](cvk::strided_view<const double, 4>, cvk::strided_view<double, 1> s,
                      cvk::strided_view<double, 4>) {
    for (index_t i = 0; i < s.extent(0); ++i) s(i) = std::nan("");
  };
  REQUIRE_THROWS_WITH(cvk::extremal_perturbation(
                          x, nan_score, cvk::extremal_params{.step = 4, .sigma = 4, .max_iter = 1}),
                      Contains("returned the score nan for image 0 at iteration 0"));
  auto inf_grad = [](cvk::strided_view<const double, 4>, cvk::strided_view<double, 1> s,
                     cvk::strided_view<double, 4> g) {
    for (index_t i = 0; i < s.extent(0); ++i) s(i) = 0;
    g(0, 1, 2, 3) = std::numeric_limits<double>::infinity();
  };
  REQUIRE_THROWS_WITH(cvk::extremal_perturbation(
                          x, inf_grad, cvk::extremal_params{.step = 4, .sigma = 4, .max_iter = 1}),
                      Contains("returned the gradient inf"));
  // Outputs of the wrong shape.
  cvk::tensor<double, 3> masks(2, 16, 16), history(1, 2, 2);
  REQUIRE_THROWS_AS(
      cvk::extremal_perturbation(
          x, model, cvk::extremal_params{.step = 4, .sigma = 4, .max_iter = 2}, masks, history),
      cvk::shape_error);

  // smooth_mask.
  const std::vector<double> grid(16, 0.5);
  const cvk::strided_view<const double, 3> gv(grid.data(), {1, 4, 4});
  REQUIRE_THROWS_WITH(cvk::smooth_mask(gv, {.step = 4, .sigma = 4}, {17, 17}),
                      Contains("smooth_mask: grid must be K×5×5"));
  REQUIRE_THROWS_WITH(cvk::smooth_mask(gv, {.step = 4, .sigma = 4}, {20, 16}),
                      Contains("grid must be K×5×4 (K×⌈H/step⌉×⌈W/step⌉), got 1×4×4"));
  REQUIRE_THROWS_AS(cvk::smooth_mask(gv, {.step = 4, .sigma = 4}, {0, 16}), cvk::shape_error);
  REQUIRE_THROWS_AS(cvk::smooth_mask(gv, {.step = 0, .sigma = 4}, {16, 16}), cvk::invalid_argument);
  REQUIRE_THROWS_AS(cvk::smooth_mask(gv, {.step = 4, .sigma = 0}, {16, 16}), cvk::invalid_argument);
  REQUIRE_THROWS_AS(
      cvk::smooth_mask(gv, {.step = 4, .sigma = std::numeric_limits<double>::infinity()}, {16, 16}),
      cvk::invalid_argument);
  REQUIRE_THROWS_AS(
      cvk::smooth_mask(gv, {.step = 4, .sigma = 4, .coldness = std::nan("")}, {16, 16}),
      cvk::invalid_argument);
  REQUIRE_THROWS_AS(cvk::smooth_mask(gv, {.step = 4, .sigma = 1e300}, {16, 16}), cvk::out_of_range);
  const std::vector<double> g_bad(17 * 17, 0.0);
  REQUIRE_THROWS_WITH(
      cvk::smooth_mask_backward(gv, {.step = 4, .sigma = 4},
                                cvk::strided_view<const double, 3>(g_bad.data(), {1, 17, 17})),
      Contains("smooth_mask_backward: grid must be K×5×5"));
  REQUIRE_THROWS_WITH(
      cvk::smooth_mask_full_backward(gv, {.step = 4, .sigma = 4}, {16, 16},
                                     cvk::strided_view<const double, 3>(g_bad.data(), {1, 15, 15})),
      Contains("grad_full must be 1×21×21, got 1×15×15"));
  // An empty batch of grids gives empty masks.
  const auto empty = cvk::smooth_mask(cvk::strided_view<const double, 3>(grid.data(), {0, 4, 4}),
                                      {.step = 4, .sigma = 4}, {16, 16});
  REQUIRE(empty.size() == 0);
  REQUIRE(empty.extent(1) == 16);

  // perturbation_pyramid.
  REQUIRE_THROWS_WITH(cvk::perturbation_pyramid(x, {.levels = 1}), Contains("levels must be >= 2"));
  REQUIRE_THROWS_AS(cvk::perturbation_pyramid(x, {.max_blur = -1}), cvk::invalid_argument);
  REQUIRE_THROWS_AS(
      cvk::perturbation_pyramid(cvk::strided_view<const double, 4>(two.data(), {2, 3, 16, 16})),
      cvk::shape_error);
  const cvk::perturbation_pyramid pyr(x, {.kind = cvk::perturbation_kind::fade});
  std::vector<double> masks_values(16 * 16, 0.5);
  masks_values[17] = 1.5;
  REQUIRE_THROWS_WITH(
      pyr.apply(cvk::strided_view<const double, 3>(masks_values.data(), {1, 16, 16})),
      Contains("masks values must be in [0, 1], got 1.5 at (0, 1, 1)"));
  masks_values[17] = std::nan("");
  REQUIRE_THROWS_AS(pyr.apply(cvk::strided_view<const double, 3>(masks_values.data(), {1, 16, 16})),
                    cvk::invalid_argument);
  masks_values[17] = 0.5;
  REQUIRE_THROWS_WITH(
      pyr.apply(cvk::strided_view<const double, 3>(masks_values.data(), {1, 16, 15})),
      Contains("masks must be K×16×16, got 1×16×15"));
  const std::vector<double> go(3 * 16 * 16, 1.0);
  REQUIRE_THROWS_WITH(
      pyr.apply_backward(cvk::strided_view<const double, 3>(masks_values.data(), {1, 16, 16}),
                         cvk::strided_view<const double, 4>(go.data(), {1, 3, 16, 15})),
      Contains("grad_output must be N×C×H×W = 1×3×16×16"));
  // An empty batch of masks gives an empty result.
  REQUIRE(pyr.apply(cvk::strided_view<const double, 3>(masks_values.data(), {0, 16, 16})).size() ==
          0);
}
