// cvk — computer-vision kernels, header-only C++20.
// Tests of cvk/conv/pool2d.hpp and cvk/conv/channel_shuffle.hpp: max_pool2d (with indices),
// avg_pool2d and adaptive_avg_pool2d forward and backward against plain reference loops written
// from torch's definitions on seeded random shapes (both layouts, float and double, strided,
// negative-stride and transposed views), bit-identical results for 1/2/3 threads, central finite
// differences in double, PyTorch 1.13 golden fixtures, channel_shuffle's copy, inverse,
// permutation and zero-copy views, and the errors.
// SPDX-License-Identifier: MIT
#include <cvk/conv/channel_shuffle.hpp>
#include <cvk/conv/pool2d.hpp>
#include <cvk/core/rng.hpp>

#if defined(CVK_TEST_HAS_EIGEN)
#  include <cvk/adapt/eigen.hpp>
#endif
#if defined(CVK_TEST_HAS_XTENSOR)
#  include <cvk/adapt/xtensor.hpp>
#endif
#if defined(CVK_TEST_HAS_DLPACK)
#  include <cvk/adapt/dlpack.hpp>
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

#include "support/compare.hpp"
#include "support/conv_reference.hpp"
#include "support/fixtures.hpp"

namespace {

using cvk::index_t;
using nchw_t = std::array<index_t, 4>;

/// NCHW-ordered values of any tensor whose axes are in layout l.
template <class X>
auto nchw_values(const X& x, cvk::layout l) {
  return cvk_test::to_nchw(cvk::as_view(x), l);
}

// ---------------------------------------------------------------------------------------------
// Reference loops, written from torch's definitions (not from cvk's window tables).

struct pool_case {
  nchw_t input{1, 1, 1, 1};
  std::array<index_t, 2> kernel{1, 1}, stride{1, 1}, padding{0, 0}, dilation{1, 1};
  bool ceil_mode = false, count_include_pad = true;
  index_t divisor_override = 0;

  [[nodiscard]] index_t out(std::size_t a) const {
    const index_t in = input[2 + a];
    const index_t room = in + 2 * padding[a] - dilation[a] * (kernel[a] - 1) - 1;  // >= 0 here
    index_t o = (ceil_mode ? room + stride[a] - 1 : room) / stride[a] + 1;
    if (ceil_mode && (o - 1) * stride[a] >= in + padding[a]) --o;
    return o;
  }
  [[nodiscard]] nchw_t output() const { return {input[0], input[1], out(0), out(1)}; }
  [[nodiscard]] cvk::pool2d_params params(cvk::layout l, int threads = 0) const {
    return {.kernel = kernel,
            .stride = stride,
            .padding = padding,
            .dilation = dilation,
            .ceil_mode = ceil_mode,
            .count_include_pad = count_include_pad,
            .divisor_override = divisor_override,
            .data_layout = l,
            .threads = threads};
  }
  [[nodiscard]] std::string describe() const {
    const auto pair = [](const std::array<index_t, 2>& a) {
      return std::to_string(a[0]) + "," + std::to_string(a[1]);
    };
    return "input " + cvk::detail::shape_string(input, 4) + " kernel " + pair(kernel) + " stride " +
           pair(stride) + " padding " + pair(padding) + " dilation " + pair(dilation) +
           (ceil_mode ? " ceil_mode" : "") + (count_include_pad ? " include_pad" : " exclude_pad") +
           " divisor " + std::to_string(divisor_override);
  }
};

std::size_t flat(const nchw_t& e, index_t n, index_t c, index_t y, index_t x) {
  return static_cast<std::size_t>(((n * e[1] + c) * e[2] + y) * e[3] + x);
}

template <class T>
struct max_reference {
  std::vector<T> output;
  std::vector<index_t> indices;
};

/// torch's max_pool2d: taps (oy·s − p + ky·d, ox·s − p + kx·d) inside the image in row-major
/// order; a NaN or a strictly larger value replaces the maximum.
template <class T>
max_reference<T> reference_max_pool(const pool_case& p, const std::vector<T>& x) {
  const auto in = p.input, out = p.output();
  max_reference<T> r;
  for (index_t n = 0; n < out[0]; ++n)
    for (index_t c = 0; c < out[1]; ++c)
      for (index_t oy = 0; oy < out[2]; ++oy)
        for (index_t ox = 0; ox < out[3]; ++ox) {
          T best = -std::numeric_limits<T>::infinity();
          index_t arg = -1;
          for (index_t ky = 0; ky < p.kernel[0]; ++ky)
            for (index_t kx = 0; kx < p.kernel[1]; ++kx) {
              const index_t iy = oy * p.stride[0] - p.padding[0] + ky * p.dilation[0];
              const index_t ix = ox * p.stride[1] - p.padding[1] + kx * p.dilation[1];
              if (iy < 0 || iy >= in[2] || ix < 0 || ix >= in[3]) continue;
              const T v = x[flat(in, n, c, iy, ix)];
              if (arg < 0) arg = iy * in[3] + ix;
              if (v > best || std::isnan(v)) {
                best = v;
                arg = iy * in[3] + ix;
              }
            }
          r.output.push_back(best);
          r.indices.push_back(arg);
        }
  return r;
}

/// One output's window of avg_pool2d along an axis: [start, start + k) clipped to the padded
/// input gives `pool`, clipped to the input gives the taps [lo, hi).
struct avg_span {
  index_t lo, hi, pool;
};
avg_span avg_window(index_t o, index_t in, index_t k, index_t s, index_t pad) {
  const index_t start = o * s - pad, stop = std::min(start + k, in + pad);
  return {std::max<index_t>(start, 0), std::min(stop, in), stop - start};
}
/// adaptive_avg_pool2d's bin along an axis: [floor(o·in/out), ceil((o+1)·in/out)).
avg_span adaptive_window(index_t o, index_t in, index_t out) {
  const auto lo =
      static_cast<index_t>(std::floor(static_cast<double>(o * in) / static_cast<double>(out)));
  const auto hi =
      static_cast<index_t>(std::ceil(static_cast<double>((o + 1) * in) / static_cast<double>(out)));
  return {lo, hi, hi - lo};
}

/// Σ taps / divisor over windows given per axis by `rows(oy)`, `cols(ox)`; `divisor(r, c)`.
template <class T, class Rows, class Cols, class Divisor>
std::vector<T> reference_average(const nchw_t& in, const nchw_t& out, const std::vector<T>& x,
                                 Rows rows, Cols cols, Divisor divisor) {
  std::vector<T> y;
  for (index_t n = 0; n < out[0]; ++n)
    for (index_t c = 0; c < out[1]; ++c)
      for (index_t oy = 0; oy < out[2]; ++oy)
        for (index_t ox = 0; ox < out[3]; ++ox) {
          const avg_span r = rows(oy), s = cols(ox);
          T sum = 0;
          for (index_t iy = r.lo; iy < r.hi; ++iy)
            for (index_t ix = s.lo; ix < s.hi; ++ix) sum += x[flat(in, n, c, iy, ix)];
          y.push_back(sum / static_cast<T>(divisor(r, s)));
        }
  return y;
}

/// The adjoint of reference_average, in torch's order (outputs row-major, then the taps).
template <class T, class Rows, class Cols, class Divisor>
std::vector<T> reference_average_backward(const nchw_t& in, const nchw_t& out,
                                          const std::vector<T>& g, Rows rows, Cols cols,
                                          Divisor divisor) {
  std::vector<T> gi(cvk_test::product(in), T(0));
  std::size_t k = 0;
  for (index_t n = 0; n < out[0]; ++n)
    for (index_t c = 0; c < out[1]; ++c)
      for (index_t oy = 0; oy < out[2]; ++oy)
        for (index_t ox = 0; ox < out[3]; ++ox) {
          const avg_span r = rows(oy), s = cols(ox);
          const T delta = g[k++] / static_cast<T>(divisor(r, s));
          for (index_t iy = r.lo; iy < r.hi; ++iy)
            for (index_t ix = s.lo; ix < s.hi; ++ix) gi[flat(in, n, c, iy, ix)] += delta;
        }
  return gi;
}

template <class T>
std::vector<T> reference_avg_pool(const pool_case& p, const std::vector<T>& x,
                                  const std::vector<T>* grad = nullptr) {
  const auto rows = [&](index_t o) {
    return avg_window(o, p.input[2], p.kernel[0], p.stride[0], p.padding[0]);
  };
  const auto cols = [&](index_t o) {
    return avg_window(o, p.input[3], p.kernel[1], p.stride[1], p.padding[1]);
  };
  const auto divisor = [&](const avg_span& r, const avg_span& s) {
    if (p.divisor_override != 0) return p.divisor_override;
    return p.count_include_pad ? r.pool * s.pool : (r.hi - r.lo) * (s.hi - s.lo);
  };
  if (grad != nullptr) {
    return reference_average_backward(p.input, p.output(), *grad, rows, cols, divisor);
  }
  return reference_average(p.input, p.output(), x, rows, cols, divisor);
}

template <class T>
std::vector<T> reference_adaptive(const nchw_t& in, std::array<index_t, 2> size,
                                  const std::vector<T>& x, const std::vector<T>* grad = nullptr) {
  const nchw_t out{in[0], in[1], size[0], size[1]};
  const auto rows = [&](index_t o) { return adaptive_window(o, in[2], size[0]); };
  const auto cols = [&](index_t o) { return adaptive_window(o, in[3], size[1]); };
  const auto divisor = [](const avg_span& r, const avg_span& s) { return r.pool * s.pool; };
  if (grad != nullptr) return reference_average_backward(in, out, *grad, rows, cols, divisor);
  return reference_average(in, out, x, rows, cols, divisor);
}

template <class T>
std::vector<T> reference_max_backward(const nchw_t& in, const nchw_t& out, const std::vector<T>& g,
                                      const std::vector<index_t>& idx) {
  std::vector<T> gi(cvk_test::product(in), T(0));
  std::size_t k = 0;
  for (index_t n = 0; n < out[0]; ++n)
    for (index_t c = 0; c < out[1]; ++c)
      for (index_t o = 0; o < out[2] * out[3]; ++o, ++k) {
        gi[flat(in, n, c, 0, 0) + static_cast<std::size_t>(idx[k])] += g[k];
      }
  return gi;
}

/// A random pooling problem torch accepts: odd sizes, 1×1 images, padding up to half the kernel,
/// dilation (max only), ceil_mode, strides from 1 to larger than the kernel.
pool_case random_case(cvk::rng& gen, bool average) {
  for (;;) {
    pool_case p;
    p.input = {cvk_test::draw(gen, 1, 2), cvk_test::draw(gen, 1, 5),
               gen.below(6) == 0 ? 1 : cvk_test::draw(gen, 1, 11),
               gen.below(6) == 0 ? 1 : cvk_test::draw(gen, 1, 11)};
    if (gen.below(5) == 0) p.input[1] = cvk_test::draw(gen, 17, 40);  // a channel tail
    for (std::size_t a = 0; a < 2; ++a) {
      p.kernel[a] = cvk_test::draw(gen, 1, 4);
      p.stride[a] = gen.below(8) == 0 ? cvk_test::draw(gen, 5, 9) : cvk_test::draw(gen, 1, 3);
      p.padding[a] = cvk_test::draw(gen, 0, p.kernel[a] / 2);
      p.dilation[a] = average ? 1 : cvk_test::draw(gen, 1, 2);
    }
    p.ceil_mode = gen.below(2) == 0;
    p.count_include_pad = gen.below(2) == 0;
    p.divisor_override = average && gen.below(5) == 0 ? cvk_test::draw(gen, 1, 7) : 0;
    bool ok = true;
    for (std::size_t a = 0; a < 2; ++a) {
      ok = ok && p.input[2 + a] + 2 * p.padding[a] >= p.dilation[a] * (p.kernel[a] - 1) + 1;
    }
    if (!ok) continue;
    // Every window must hold a tap (torch's max index of an empty window is no plane index).
    for (std::size_t a = 0; a < 2 && ok; ++a) {
      for (index_t o = 0; o < p.out(a); ++o) {
        bool any = false;
        for (index_t k = 0; k < p.kernel[a]; ++k) {
          const index_t i = o * p.stride[a] - p.padding[a] + k * p.dilation[a];
          any = any || (i >= 0 && i < p.input[2 + a]);
        }
        ok = ok && any;
      }
    }
    if (ok) return p;
  }
}

template <class T>
bool same_values(const std::vector<T>& a, const std::vector<T>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (!cvk_test::same_value(a[i], b[i])) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------

TEMPLATE_TEST_CASE("max_pool2d: random shapes, both layouts, any strides, equal the reference",
                   "[conv][pool2d]", float, double) {
  using T = TestType;
  cvk::rng gen(501, sizeof(T));
  for (int trial = 0; trial < cvk_test::trials(60); ++trial) {
    const pool_case p = random_case(gen, false);
    auto x = cvk_test::small_integers<T>(gen, cvk_test::product(p.input), 3);  // ties on purpose
    if (trial % 3 == 0) {
      x[gen.below(x.size())] = std::numeric_limits<T>::quiet_NaN();
      x[gen.below(x.size())] = -std::numeric_limits<T>::infinity();
    }
    const auto expected = reference_max_pool(p, x);
    const auto grad = cvk_test::small_integers<T>(gen, expected.output.size(), 4);
    const auto expected_grad = reference_max_backward(p.input, p.output(), grad, expected.indices);
    for (const auto l : cvk_test::both_layouts) {
      const auto params = p.params(l);
      const cvk_test::storage how =
          cvk_test::all_storages[static_cast<std::size_t>(trial) % cvk_test::all_storages.size()];
      INFO("trial " << trial << ": " << p.describe() << ", layout " << static_cast<int>(l)
                    << ", storage " << cvk_test::to_string(how));
      const auto input = cvk_test::store<T>(x, p.input, l, how);
      const cvk::strided_view<const T, 4> in = input.view;
      REQUIRE(cvk::pool2d_output_shape(in.extents(), params) ==
              cvk::detail::from_nchw(p.output(), l));
      REQUIRE(same_values(nchw_values(cvk::max_pool2d(in, params), l), expected.output));
      const auto [y, idx] = cvk::max_pool2d_with_indices(in, params);
      REQUIRE(same_values(nchw_values(y, l), expected.output));
      REQUIRE(nchw_values(idx, l) == expected.indices);
      // Write-into forms through strided outputs.
      const std::vector<T> junk(expected.output.size(), T(5));
      const std::vector<index_t> junk_index(expected.output.size(), -9);
      auto out = cvk_test::store<T>(junk, p.output(), l, how);
      auto where = cvk_test::store<index_t>(junk_index, p.output(), l, how);
      cvk::max_pool2d_with_indices(in, params, out.view, where.view);
      REQUIRE(same_values(nchw_values(out.view, l), expected.output));
      REQUIRE(nchw_values(where.view, l) == expected.indices);
      // Backward, value form and into a strided grad_input.
      const auto g = cvk_test::store<T>(grad, p.output(), l, how);
      const cvk::strided_view<const T, 4> gv = g.view;
      const cvk::strided_view<const index_t, 4> iv = where.view;
      REQUIRE(nchw_values(cvk::max_pool2d_backward(gv, iv, in.extents(), params), l) ==
              expected_grad);
      auto gi =
          cvk_test::store<T>(x, p.input, l, how);  // pre-filled: backward must overwrite everything
      cvk::max_pool2d_backward(gv, iv, params, gi.view);
      REQUIRE(nchw_values(gi.view, l) == expected_grad);
    }
  }
}

TEST_CASE("max_pool2d_with_indices: planes whose indices pass 2^31 (kept in int64)",
          "[conv][pool2d]") {
  // A broadcast 50000×50000 plane (one stored value): the corner taps' flat indices reach
  // 49999·50000 + 49999 > 2^31, past the int32 the argmax is otherwise kept in.
  const float value = 2.0f;
  const index_t side = 50000, last = side - 1;
  const cvk::pool2d_params p{.kernel = {1, 1}, .stride = {last, last}};
  for (const auto l : cvk_test::both_layouts) {
    const cvk::strided_view<const float, 4> in(
        &value, cvk::detail::from_nchw({1, 2, side, side}, l), {0, 0, 0, 0});
    const auto r = cvk::max_pool2d_with_indices(
        in, {.kernel = p.kernel, .stride = p.stride, .data_layout = l});
    const std::vector<index_t> corners{0, last, last * side, last * side + last};
    std::vector<index_t> expected = corners;
    expected.insert(expected.end(), corners.begin(), corners.end());
    REQUIRE(nchw_values(r.indices, l) == expected);
    REQUIRE(nchw_values(r.output, l) == std::vector<float>(8, value));
  }
}

/// avg_pool2d or adaptive_avg_pool2d (by the params' type) in its four forms — value and
/// write-into, forward and backward — on `x` (NCHW values of extents `in_shape`) stored in layout
/// `l` as `how`, against the reference values.
template <class T, class Params>
void check_average_forms(const std::vector<T>& x, const nchw_t& in_shape, const nchw_t& out_shape,
                         const std::vector<T>& grad, const Params& params, cvk::layout l,
                         cvk_test::storage how, const std::vector<T>& expected,
                         const std::vector<T>& expected_grad) {
  constexpr bool adaptive = std::is_same_v<Params, cvk::adaptive_pool2d_params>;
  const auto input = cvk_test::store<T>(x, in_shape, l, how);
  const cvk::strided_view<const T, 4> in = input.view;
  auto out = cvk_test::store<T>(expected, out_shape, l, how);
  const auto g = cvk_test::store<T>(grad, out_shape, l, how);
  const cvk::strided_view<const T, 4> gv = g.view;
  auto gi = cvk_test::store<T>(x, in_shape, l, how);  // pre-filled: backward overwrites it all
  if constexpr (adaptive) {
    REQUIRE(nchw_values(cvk::adaptive_avg_pool2d(in, params), l) == expected);
    cvk::adaptive_avg_pool2d(in, params, out.view);
    REQUIRE(nchw_values(cvk::adaptive_avg_pool2d_backward(gv, in.extents(), params), l) ==
            expected_grad);
    cvk::adaptive_avg_pool2d_backward(gv, params, gi.view);
  } else {
    REQUIRE(nchw_values(cvk::avg_pool2d(in, params), l) == expected);
    cvk::avg_pool2d(in, params, out.view);
    REQUIRE(nchw_values(cvk::avg_pool2d_backward(gv, in.extents(), params), l) == expected_grad);
    cvk::avg_pool2d_backward(gv, params, gi.view);
  }
  REQUIRE(nchw_values(out.view, l) == expected);
  REQUIRE(nchw_values(gi.view, l) == expected_grad);
}

TEMPLATE_TEST_CASE("avg_pool2d: random shapes, both layouts, any strides, equal the reference",
                   "[conv][pool2d]", float, double) {
  using T = TestType;
  cvk::rng gen(502, sizeof(T));
  for (int trial = 0; trial < cvk_test::trials(60); ++trial) {
    const pool_case p = random_case(gen, true);
    const auto x = cvk_test::small_integers<T>(gen, cvk_test::product(p.input), 4);
    const auto expected = reference_avg_pool(p, x);
    const auto grad = cvk_test::small_integers<T>(gen, expected.size(), 4);
    const auto expected_grad = reference_avg_pool(p, x, &grad);
    for (const auto l : cvk_test::both_layouts) {
      const auto params = p.params(l);
      const cvk_test::storage how = cvk_test::all_storages[static_cast<std::size_t>(trial + 1) %
                                                           cvk_test::all_storages.size()];
      INFO("trial " << trial << ": " << p.describe() << ", layout " << static_cast<int>(l)
                    << ", storage " << cvk_test::to_string(how));
      check_average_forms(x, p.input, p.output(), grad, params, l, how, expected, expected_grad);
    }
  }
}

TEMPLATE_TEST_CASE("adaptive_avg_pool2d: random shapes and bins equal the reference",
                   "[conv][pool2d]", float, double) {
  using T = TestType;
  cvk::rng gen(503, sizeof(T));
  for (int trial = 0; trial < cvk_test::trials(40); ++trial) {
    const nchw_t in{cvk_test::draw(gen, 1, 2), cvk_test::draw(gen, 1, 40),
                    cvk_test::draw(gen, 1, 12), cvk_test::draw(gen, 1, 12)};
    const std::array<index_t, 2> size{cvk_test::draw(gen, 1, 14), cvk_test::draw(gen, 1, 14)};
    const nchw_t out{in[0], in[1], size[0], size[1]};
    const auto x = cvk_test::small_integers<T>(gen, cvk_test::product(in), 4);
    const auto expected = reference_adaptive(in, size, x);
    const auto grad = cvk_test::small_integers<T>(gen, expected.size(), 4);
    const auto expected_grad = reference_adaptive(in, size, x, &grad);
    for (const auto l : cvk_test::both_layouts) {
      const cvk::adaptive_pool2d_params params{.output_size = size, .data_layout = l};
      const cvk_test::storage how =
          cvk_test::all_storages[static_cast<std::size_t>(trial) % cvk_test::all_storages.size()];
      INFO("trial " << trial << ": input " << cvk::detail::shape_string(in, 4) << " output "
                    << size[0] << "x" << size[1] << ", layout " << static_cast<int>(l));
      check_average_forms(x, in, out, grad, params, l, how, expected, expected_grad);
    }
  }
}

TEST_CASE("adaptive_avg_pool2d to 1×1 is global average pooling (NHWC, many channels)",
          "[conv][pool2d]") {
  cvk::rng gen(504);
  const index_t n = 2, h = 7, w = 7, c = 1000;
  const auto x = cvk_test::random_reals<float>(gen, static_cast<std::size_t>(n * h * w * c));
  const cvk::strided_view<const float, 4> in(x.data(), {n, h, w, c});
  const auto y =
      cvk::adaptive_avg_pool2d(in, {.output_size = {1, 1}, .data_layout = cvk::layout::nhwc});
  REQUIRE(y.extents() == nchw_t{n, 1, 1, c});
  for (index_t b = 0; b < n; ++b) {
    for (index_t ch = 0; ch < c; ++ch) {
      float sum = 0;  // pixels in row-major order, as torch sums
      for (index_t p = 0; p < h * w; ++p)
        sum += x[static_cast<std::size_t>((b * h * w + p) * c + ch)];
      REQUIRE(y(b, 0, 0, ch) == sum / static_cast<float>(h * w));
    }
  }
  // NCHW: each plane is one contiguous run, summed with 8 partial sums (a different order).
  std::vector<float> planes(x.size());
  for (index_t b = 0; b < n; ++b)
    for (index_t p = 0; p < h * w; ++p)
      for (index_t ch = 0; ch < c; ++ch) {
        planes[static_cast<std::size_t>((b * c + ch) * h * w + p)] =
            x[static_cast<std::size_t>((b * h * w + p) * c + ch)];
      }
  const cvk::strided_view<const float, 4> nchw(planes.data(), {n, c, h, w});
  const auto z = cvk::adaptive_avg_pool2d(nchw, {.output_size = {1, 1}});
  for (index_t b = 0; b < n; ++b) {
    for (index_t ch = 0; ch < c; ++ch) {
      INFO("image " << b << " channel " << ch);
      REQUIRE(std::fabs(z(b, ch, 0, 0) - y(b, 0, 0, ch)) <= 1e-6f);
    }
  }
}

TEMPLATE_TEST_CASE("pooling: results are bit-identical for 1, 2 and 3 threads", "[conv][pool2d]",
                   float, double) {
  using T = TestType;
  cvk::rng gen(505, sizeof(T));
  // 300 channels: more than one channel block in NHWC; 2 images for the NCHW planes.
  pool_case p;
  p.input = {2, 300, 13, 11};
  p.kernel = {3, 3};
  p.stride = {2, 2};
  p.padding = {1, 1};
  p.ceil_mode = true;
  p.count_include_pad = false;
  const auto x = cvk_test::random_reals<T>(gen, cvk_test::product(p.input));
  const auto g = cvk_test::random_reals<T>(gen, cvk_test::product(p.output()));
  for (const auto l : cvk_test::both_layouts) {
    const auto input = cvk_test::store<T>(x, p.input, l, cvk_test::storage::contiguous);
    const auto grad = cvk_test::store<T>(g, p.output(), l, cvk_test::storage::contiguous);
    const cvk::strided_view<const T, 4> in = input.view, gv = grad.view;
    const cvk::adaptive_pool2d_params a1{.output_size = {5, 4}, .data_layout = l, .threads = 1};
    const auto m1 = cvk::max_pool2d_with_indices(in, p.params(l, 1));
    const auto a_1 = cvk::avg_pool2d(in, p.params(l, 1));
    const auto ab1 = cvk::avg_pool2d_backward(gv, in.extents(), p.params(l, 1));
    const auto mb1 = cvk::max_pool2d_backward(gv, m1.indices, in.extents(), p.params(l, 1));
    const auto ad1 = cvk::adaptive_avg_pool2d(in, a1);
    for (const int threads : {2, 3}) {
      auto at = a1;
      at.threads = threads;
      const auto mt = cvk::max_pool2d_with_indices(in, p.params(l, threads));
      REQUIRE(cvk_test::flatten(mt.output.view()) == cvk_test::flatten(m1.output.view()));
      REQUIRE(cvk_test::flatten(mt.indices.view()) == cvk_test::flatten(m1.indices.view()));
      REQUIRE(cvk_test::flatten(cvk::avg_pool2d(in, p.params(l, threads)).view()) ==
              cvk_test::flatten(a_1.view()));
      REQUIRE(cvk_test::flatten(
                  cvk::avg_pool2d_backward(gv, in.extents(), p.params(l, threads)).view()) ==
              cvk_test::flatten(ab1.view()));
      REQUIRE(cvk_test::flatten(
                  cvk::max_pool2d_backward(gv, mt.indices, in.extents(), p.params(l, threads))
                      .view()) == cvk_test::flatten(mb1.view()));
      REQUIRE(cvk_test::flatten(cvk::adaptive_avg_pool2d(in, at).view()) ==
              cvk_test::flatten(ad1.view()));
    }
  }
}

/// Central finite differences of L(x) = Σ forward(x) · g, compared with backward's grad_input.
template <class Forward>
void check_finite_differences(const nchw_t& in, const std::vector<double>& x,
                              const std::vector<double>& g, const std::vector<double>& analytic,
                              Forward forward) {
  const double h = 1e-4;
  for (std::size_t i = 0; i < x.size(); ++i) {
    auto plus = x, minus = x;
    plus[i] += h;
    minus[i] -= h;
    const auto yp = forward(plus), ym = forward(minus);
    double numeric = 0;
    for (std::size_t k = 0; k < g.size(); ++k) numeric += (yp[k] - ym[k]) * g[k];
    numeric /= 2 * h;
    INFO("input element " << i << " of " << cvk::detail::shape_string(in, 4));
    REQUIRE(std::fabs(numeric - analytic[i]) <= 1e-8 * (1 + std::fabs(analytic[i])));
  }
}

TEST_CASE("avg_pool2d and adaptive_avg_pool2d backward equal central finite differences",
          "[conv][pool2d][gradient]") {
  cvk::rng gen(506);
  for (const auto l : cvk_test::both_layouts) {
    pool_case p;
    p.input = {1, 2, 6, 7};
    p.kernel = {3, 2};
    p.stride = {2, 2};
    p.padding = {1, 1};
    p.ceil_mode = true;
    p.count_include_pad = l == cvk::layout::nchw;
    const auto x = cvk_test::random_reals<double>(gen, cvk_test::product(p.input));
    const auto g = cvk_test::random_reals<double>(gen, cvk_test::product(p.output()));
    const auto input = cvk_test::store<double>(x, p.input, l, cvk_test::storage::contiguous);
    const auto grad = cvk_test::store<double>(g, p.output(), l, cvk_test::storage::contiguous);
    const cvk::strided_view<const double, 4> gv = grad.view;
    const auto forward_avg = [&](const std::vector<double>& v) {
      const auto t = cvk_test::store<double>(v, p.input, l, cvk_test::storage::contiguous);
      return nchw_values(cvk::avg_pool2d(cvk::strided_view<const double, 4>(t.view), p.params(l)),
                         l);
    };
    check_finite_differences(
        p.input, x, g,
        nchw_values(cvk::avg_pool2d_backward(gv, input.view.extents(), p.params(l)), l),
        forward_avg);
    const cvk::adaptive_pool2d_params ap{.output_size = {4, 3}, .data_layout = l};
    const auto ga = cvk_test::random_reals<double>(gen, static_cast<std::size_t>(2 * 4 * 3));
    const auto grad_a = cvk_test::store<double>(ga, {1, 2, 4, 3}, l, cvk_test::storage::contiguous);
    const auto forward_adaptive = [&](const std::vector<double>& v) {
      const auto t = cvk_test::store<double>(v, p.input, l, cvk_test::storage::contiguous);
      return nchw_values(cvk::adaptive_avg_pool2d(cvk::strided_view<const double, 4>(t.view), ap),
                         l);
    };
    check_finite_differences(
        p.input, x, ga,
        nchw_values(cvk::adaptive_avg_pool2d_backward(
                        cvk::strided_view<const double, 4>(grad_a.view), input.view.extents(), ap),
                    l),
        forward_adaptive);
  }
}

// ---------------------------------------------------------------------------------------------
// PyTorch 1.13 fixtures.

/// |a − b| within `ulps` units in the last place, or both NaN. adaptive_avg_pool2d divides a
/// bin's sum once by its area; torch's NCHW kernel divides by the height, then by the width.
template <class T>
bool close(T a, T b, std::uint64_t ulps) {
  return cvk_test::ulp_distance(a, b) <= ulps ||
         std::fabs(a - b) <= std::numeric_limits<T>::epsilon() * 4;  // values near 0
}

TEMPLATE_TEST_CASE("pooling and channel_shuffle: PyTorch 1.13 golden fixtures",
                   "[conv][pool2d][fixtures]", float, double) {
  using T = TestType;
  const std::string dtype = std::is_same_v<T, float> ? "/float32/" : "/float64/";
  const cvk_test::fixture_file file(cvk_test::test_data_path("pool2d_torch.txt"));
  const auto table = [&](const std::string& prefix, const char* name) {
    return file.table(prefix + dtype + name).values<T>();
  };
  const auto count = [&](const char* key) { return std::stoi(file.meta(key)); };
  // Each input goes in in both layouts; results are read back in NCHW order.
  const auto each_layout = [&](const std::vector<T>& x, const nchw_t& e, auto&& body) {
    for (const auto l : cvk_test::both_layouts) {
      const auto input = cvk_test::store<T>(x, e, l, cvk_test::storage::contiguous);
      body(l, cvk::strided_view<const T, 4>(input.view));
    }
  };
  SECTION("max_pool2d with indices and its backward") {
    REQUIRE(count("max_cases") >= 10);
    for (int k = 0; k < count("max_cases"); ++k) {
      const std::string prefix = "max" + std::to_string(k);
      const auto v = file.table(prefix + "/params").values<index_t>();
      pool_case p;
      p.input = {v[0], v[1], v[2], v[3]};
      p.kernel = {v[4], v[5]};
      p.stride = {v[6], v[7]};
      p.padding = {v[8], v[9]};
      p.dilation = {v[10], v[11]};
      p.ceil_mode = v[12] != 0;
      const auto expected = table(prefix, "output");
      const auto indices = file.table(prefix + dtype + "indices").values<index_t>();
      const auto grad = table(prefix, "grad_output");
      const auto grad_input = table(prefix, "grad_input");
      INFO("fixture " << prefix << dtype << p.describe());
      each_layout(table(prefix, "input"), p.input, [&](cvk::layout l, const auto& in) {
        const auto r = cvk::max_pool2d_with_indices(in, p.params(l));
        REQUIRE(same_values(nchw_values(r.output, l), expected));
        REQUIRE(nchw_values(r.indices, l) == indices);
        const auto g = cvk_test::store<T>(grad, p.output(), l, cvk_test::storage::contiguous);
        const auto gi = cvk::max_pool2d_backward(cvk::strided_view<const T, 4>(g.view), r.indices,
                                                 in.extents(), p.params(l));
        REQUIRE(nchw_values(gi, l) == grad_input);  // integer gradients: exact
      });
    }
  }
  SECTION("avg_pool2d (count_include_pad, ceil_mode, divisor_override) and its backward") {
    REQUIRE(count("avg_cases") >= 10);
    for (int k = 0; k < count("avg_cases"); ++k) {
      const std::string prefix = "avg" + std::to_string(k);
      const auto v = file.table(prefix + "/params").values<index_t>();
      pool_case p;
      p.input = {v[0], v[1], v[2], v[3]};
      p.kernel = {v[4], v[5]};
      p.stride = {v[6], v[7]};
      p.padding = {v[8], v[9]};
      p.ceil_mode = v[10] != 0;
      p.count_include_pad = v[11] != 0;
      p.divisor_override = v[12];
      const auto expected = table(prefix, "output");
      const auto grad = table(prefix, "grad_output");
      const auto grad_input = table(prefix, "grad_input");
      INFO("fixture " << prefix << dtype << p.describe());
      each_layout(table(prefix, "input"), p.input, [&](cvk::layout l, const auto& in) {
        const auto y = nchw_values(cvk::avg_pool2d(in, p.params(l)), l);
        REQUIRE(y.size() == expected.size());
        for (std::size_t i = 0; i < y.size(); ++i) {
          INFO("output " << i << ": cvk " << y[i] << ", torch " << expected[i]);
          REQUIRE(cvk_test::same_value(y[i], expected[i]));  // same order of operations
        }
        const auto g = cvk_test::store<T>(grad, p.output(), l, cvk_test::storage::contiguous);
        const auto gi = nchw_values(cvk::avg_pool2d_backward(cvk::strided_view<const T, 4>(g.view),
                                                             in.extents(), p.params(l)),
                                    l);
        for (std::size_t i = 0; i < gi.size(); ++i) {
          INFO("grad_input " << i << ": cvk " << gi[i] << ", torch " << grad_input[i]);
          REQUIRE(cvk_test::same_value(gi[i], grad_input[i]));
        }
      });
    }
  }
  SECTION("adaptive_avg_pool2d and its backward") {
    REQUIRE(count("adaptive_cases") >= 5);
    for (int k = 0; k < count("adaptive_cases"); ++k) {
      const std::string prefix = "adaptive" + std::to_string(k);
      const auto v = file.table(prefix + "/params").values<index_t>();
      const nchw_t in_shape{v[0], v[1], v[2], v[3]};
      const nchw_t out_shape{v[0], v[1], v[4], v[5]};
      const auto expected = table(prefix, "output");
      const auto grad = table(prefix, "grad_output");
      const auto grad_input = table(prefix, "grad_input");
      INFO("fixture " << prefix << dtype);
      each_layout(table(prefix, "input"), in_shape, [&](cvk::layout l, const auto& in) {
        const cvk::adaptive_pool2d_params ap{.output_size = {v[4], v[5]}, .data_layout = l};
        const auto y = nchw_values(cvk::adaptive_avg_pool2d(in, ap), l);
        REQUIRE(y.size() == expected.size());
        for (std::size_t i = 0; i < y.size(); ++i) {
          INFO("output " << i << ": cvk " << y[i] << ", torch " << expected[i]);
          REQUIRE(close(y[i], expected[i], 8));
        }
        const auto g = cvk_test::store<T>(grad, out_shape, l, cvk_test::storage::contiguous);
        const auto gi = nchw_values(cvk::adaptive_avg_pool2d_backward(
                                        cvk::strided_view<const T, 4>(g.view), in.extents(), ap),
                                    l);
        for (std::size_t i = 0; i < gi.size(); ++i) {
          INFO("grad_input " << i << ": cvk " << gi[i] << ", torch " << grad_input[i]);
          REQUIRE(close(gi[i], grad_input[i], 8));
        }
      });
    }
  }
  SECTION("channel_shuffle (nn.ChannelShuffle)") {
    REQUIRE(count("shuffle_cases") >= 5);
    for (int k = 0; k < count("shuffle_cases"); ++k) {
      const std::string prefix = "shuffle" + std::to_string(k);
      const auto v = file.table(prefix + "/params").values<index_t>();
      const nchw_t shape{v[0], v[1], v[2], v[3]};
      const auto x = table(prefix, "input");
      const auto expected = table(prefix, "output");
      INFO("fixture " << prefix << dtype);
      each_layout(x, shape, [&](cvk::layout l, const auto& in) {
        const auto y = cvk::channel_shuffle(in, v[4], l);
        REQUIRE(nchw_values(y, l) == expected);
        REQUIRE(nchw_values(cvk::channel_shuffle_inverse(y, v[4], l), l) == x);
      });
    }
  }
}

// ---------------------------------------------------------------------------------------------
// channel_shuffle.

TEMPLATE_TEST_CASE("channel_shuffle: copy, inverse, permutation and zero-copy views agree",
                   "[conv][channel_shuffle]", float, double) {
  using T = TestType;
  cvk::rng gen(507, sizeof(T));
  for (int trial = 0; trial < cvk_test::trials(30); ++trial) {
    const index_t groups = cvk_test::draw(gen, 1, 5);
    const nchw_t e{cvk_test::draw(gen, 1, 2), groups * cvk_test::draw(gen, 1, 5),
                   cvk_test::draw(gen, 1, 4), cvk_test::draw(gen, 1, 4)};
    const index_t c = e[1], per_group = c / groups;
    const auto x = cvk_test::random_reals<T>(gen, cvk_test::product(e));
    // torch: reshape (N, g, C/g, H, W), transpose 1 and 2, flatten.
    std::vector<T> expected;
    for (index_t n = 0; n < e[0]; ++n)
      for (index_t j = 0; j < per_group; ++j)
        for (index_t i = 0; i < groups; ++i)
          for (index_t p = 0; p < e[2] * e[3]; ++p)
            expected.push_back(
                x[flat(e, n, i * per_group + j, 0, 0) + static_cast<std::size_t>(p)]);
    const auto perm = cvk::channel_shuffle_permutation(c, groups);
    const auto inverse = cvk::channel_shuffle_inverse_permutation(c, groups);
    REQUIRE(perm == cvk::channel_shuffle_inverse_permutation(c, per_group));
    for (index_t k = 0; k < c; ++k) {
      REQUIRE(perm[static_cast<std::size_t>(inverse[static_cast<std::size_t>(k)])] == k);
    }
    for (const auto l : cvk_test::both_layouts) {
      const cvk_test::storage how =
          cvk_test::all_storages[static_cast<std::size_t>(trial) % cvk_test::all_storages.size()];
      INFO("trial " << trial << " " << cvk::detail::shape_string(e, 4) << " groups " << groups
                    << " layout " << static_cast<int>(l) << " storage "
                    << cvk_test::to_string(how));
      auto input = cvk_test::store<T>(x, e, l, how);
      const cvk::strided_view<const T, 4> in = input.view;
      const auto y = cvk::channel_shuffle(in, groups, l);
      REQUIRE(nchw_values(y, l) == expected);
      // Gather through the permutation.
      const auto yv = cvk::detail::permute_axes(y.view(), cvk::detail::nchw_axes(l));
      const auto xv = cvk::detail::permute_axes(in, cvk::detail::nchw_axes(l));
      for (index_t k = 0; k < c; ++k) {
        REQUIRE(yv(0, k, 0, 0) == xv(0, perm[static_cast<std::size_t>(k)], 0, 0));
      }
      // Inverse, the same as a shuffle with C/g groups, both into strided outputs.
      auto back = cvk_test::store<T>(x, e, l, how);
      cvk::channel_shuffle_inverse(y, groups, l, back.view);
      REQUIRE(nchw_values(back.view, l) == x);
      cvk::channel_shuffle(y, per_group, l, back.view);
      REQUIRE(nchw_values(back.view, l) == x);
      // The rank-5 view: its two channel axes in row-major order are the shuffled channels.
      const auto view = cvk::channel_shuffle_view(in, groups, l);
      const auto inv_view = cvk::channel_shuffle_inverse_view(y, groups, l);
      std::vector<T> through_view, through_inverse;
      for (index_t n = 0; n < e[0]; ++n)
        for (index_t j = 0; j < (l == cvk::layout::nchw ? per_group : e[2]); ++j)
          for (index_t i = 0; i < (l == cvk::layout::nchw ? groups : e[3]); ++i)
            for (index_t a = 0; a < (l == cvk::layout::nchw ? e[2] : per_group); ++a)
              for (index_t b = 0; b < (l == cvk::layout::nchw ? e[3] : groups); ++b) {
                through_view.push_back(view(n, j, i, a, b));
              }
      for (index_t n = 0; n < e[0]; ++n)
        for (index_t j = 0; j < (l == cvk::layout::nchw ? groups : e[2]); ++j)
          for (index_t i = 0; i < (l == cvk::layout::nchw ? per_group : e[3]); ++i)
            for (index_t a = 0; a < (l == cvk::layout::nchw ? e[2] : groups); ++a)
              for (index_t b = 0; b < (l == cvk::layout::nchw ? e[3] : per_group); ++b) {
                through_inverse.push_back(inv_view(n, j, i, a, b));
              }
      std::vector<T> y_in_order(y.begin(), y.end());
      REQUIRE(through_view == y_in_order);  // row-major copy of the view = the shuffled tensor
      REQUIRE(through_inverse == cvk_test::flatten(in));  // x in its own axis order
      REQUIRE(view.data() == in.data());                  // zero copy
    }
  }
}

TEST_CASE("pooling and channel_shuffle: an empty batch or no channels give empty results",
          "[conv][pool2d][channel_shuffle]") {
  const std::vector<float> x(8, 1.0f);
  const cvk::pool2d_params p{.kernel = {3, 3}, .stride = {2, 2}, .padding = {1, 1}};
  for (const nchw_t e : {nchw_t{0, 4, 5, 5}, nchw_t{2, 0, 5, 5}}) {
    const cvk::strided_view<const float, 4> in(x.data(), e);
    const nchw_t out{e[0], e[1], 3, 3};
    REQUIRE(cvk::max_pool2d(in, p).extents() == out);
    const auto r = cvk::max_pool2d_with_indices(in, p);
    REQUIRE(r.indices.extents() == out);
    REQUIRE(cvk::max_pool2d_backward(r.output, r.indices, e, p).extents() == e);
    REQUIRE(cvk::avg_pool2d_backward(cvk::avg_pool2d(in, p), e, p).extents() == e);
    REQUIRE(cvk::adaptive_avg_pool2d(in, {.output_size = {2, 2}}).extents() ==
            nchw_t{e[0], e[1], 2, 2});
    REQUIRE(cvk::channel_shuffle(in, 1).extents() == e);
  }
  REQUIRE(cvk::channel_shuffle_permutation(0, 3).empty());
}

// ---------------------------------------------------------------------------------------------
// Other tensor types.

#if defined(CVK_TEST_HAS_EIGEN) || defined(CVK_TEST_HAS_XTENSOR) || defined(CVK_TEST_HAS_DLPACK)
TEST_CASE("pooling and channel_shuffle: Eigen, xtensor and DLPack tensors",
          "[conv][pool2d][channel_shuffle][adapt]") {
  cvk::rng gen(508);
  pool_case p;
  p.input = {1, 3, 6, 5};
  p.kernel = {3, 3};
  p.stride = {2, 2};
  p.padding = {1, 1};
  p.ceil_mode = true;
  const auto x = cvk_test::small_integers<float>(gen, cvk_test::product(p.input), 3);
  const auto max_expected = reference_max_pool(p, x).output;
  const auto avg_expected = reference_avg_pool(p, x);
  const auto out = p.output();
  const auto params = p.params(cvk::layout::nchw);
#  if defined(CVK_TEST_HAS_EIGEN)
  SECTION("Eigen Tensor (row-major and column-major)") {
    using tensor4 = Eigen::Tensor<float, 4, Eigen::RowMajor>;
    const Eigen::TensorMap<const tensor4> in(x.data(), p.input[0], p.input[1], p.input[2],
                                             p.input[3]);
    tensor4 y(out[0], out[1], out[2], out[3]);
    cvk::max_pool2d(in, params, y);
    REQUIRE(std::vector<float>(y.data(), y.data() + y.size()) == max_expected);
    Eigen::Tensor<float, 4> col(p.input[0], p.input[1], p.input[2], p.input[3]);
    for (index_t c = 0; c < p.input[1]; ++c)
      for (index_t yy = 0; yy < p.input[2]; ++yy)
        for (index_t xx = 0; xx < p.input[3]; ++xx)
          col(0, c, yy, xx) = x[flat(p.input, 0, c, yy, xx)];
    REQUIRE(cvk_test::flatten(cvk::avg_pool2d(col, params).view()) == avg_expected);
  }
#  endif
#  if defined(CVK_TEST_HAS_XTENSOR)
  SECTION("xtensor") {
    xt::xtensor<float, 4> in = xt::zeros<float>({p.input[0], p.input[1], p.input[2], p.input[3]});
    std::copy(x.begin(), x.end(), in.begin());
    xt::xtensor<float, 4> y = xt::zeros<float>({out[0], out[1], out[2], out[3]});
    cvk::avg_pool2d(in, params, y);
    REQUIRE(std::vector<float>(y.begin(), y.end()) == avg_expected);
    xt::xtensor<float, 4> shuffled =
        xt::zeros<float>({p.input[0], p.input[1], p.input[2], p.input[3]});
    cvk::channel_shuffle(in, 3, cvk::layout::nchw, shuffled);
    REQUIRE(cvk_test::flatten(cvk::channel_shuffle(in, 3).view()) ==
            std::vector<float>(shuffled.begin(), shuffled.end()));
  }
#  endif
#  if defined(CVK_TEST_HAS_DLPACK)
  SECTION("DLPack (runtime rank)") {
    std::vector<float> values = x;
    std::array<std::int64_t, 4> shape{p.input[0], p.input[1], p.input[2], p.input[3]};
    DLTensor t{};
    t.data = values.data();
    t.device = {kDLCPU, 0};
    t.ndim = 4;
    t.dtype = {kDLFloat, 32, 1};
    t.shape = shape.data();
    t.strides = nullptr;
    REQUIRE(cvk_test::flatten(cvk::max_pool2d(cvk::from_dlpack<const float>(t), params).view()) ==
            max_expected);
    std::array<std::int64_t, 3> wrong{p.input[0], p.input[1], p.input[2]};
    t.ndim = 3;
    t.shape = wrong.data();
    CHECK_THROWS_WITH(cvk::max_pool2d(cvk::from_dlpack<const float>(t), params),
                      Catch::Matchers::Contains("max_pool2d: input must have rank 4"));
  }
#  endif
}
#endif

// ---------------------------------------------------------------------------------------------
// Errors.

TEST_CASE(
    "pooling and channel_shuffle: bad input raises cvk errors naming the function, the "
    "argument and the shapes",
    "[conv][pool2d][channel_shuffle][errors]") {
  using Catch::Matchers::Contains;
  const std::vector<float> x(2 * 4 * 5 * 5, 1.0f);
  const cvk::strided_view<const float, 4> input(x.data(), {2, 4, 5, 5});
  const cvk::pool2d_params ok{.kernel = {3, 3}, .stride = {2, 2}, .padding = {1, 1}};
  REQUIRE(cvk::max_pool2d(input, ok).extents() == nchw_t{2, 4, 3, 3});

  SECTION("kernel, stride, padding, dilation, divisor, threads out of their domains") {
    const auto fails = [&](const cvk::pool2d_params& p, const char* text) {
      INFO(text);
      CHECK_THROWS_AS(cvk::max_pool2d(input, p), cvk::invalid_argument);
      CHECK_THROWS_WITH(cvk::max_pool2d(input, p), Contains("max_pool2d: ") && Contains(text));
      CHECK_THROWS_WITH(cvk::avg_pool2d(input, p), Contains("avg_pool2d: ") && Contains(text));
    };
    fails({}, "params.kernel must be >= 1, got (0, 0)");
    fails({.kernel = {3, 3}, .stride = {-1, 1}}, "params.stride must be >= 1");
    fails({.kernel = {3, 3}, .padding = {2, 1}},
          "params.padding must be >= 0 and at most half the kernel (torch's rule), got padding "
          "(2, 1) for kernel (3, 3)");
    fails({.kernel = {3, 3}, .padding = {0, -1}}, "params.padding must be >= 0");
    fails({.kernel = {3, 3}, .dilation = {0, 1}}, "params.dilation must be >= 1");
    fails({.kernel = {3, 3}, .divisor_override = -2}, "params.divisor_override must be >= 0");
    fails({.kernel = {3, 3}, .threads = -1}, "params.threads must be >= 0");
    CHECK_THROWS_WITH(cvk::avg_pool2d(input, {.kernel = {3, 3}, .dilation = {2, 1}}),
                      Contains("avg_pool2d: params.dilation must be (1, 1) for average pooling"));
    CHECK_THROWS_AS(cvk::adaptive_avg_pool2d(input, {.output_size = {0, 2}}),
                    cvk::invalid_argument);
    CHECK_THROWS_WITH(cvk::adaptive_avg_pool2d(input, {.output_size = {0, 2}}),
                      Contains("adaptive_avg_pool2d: params.output_size must be >= 1, got (0, 2)"));
  }
  SECTION("an empty output or image") {
    CHECK_THROWS_AS(cvk::max_pool2d(input, {.kernel = {6, 2}}), cvk::shape_error);
    CHECK_THROWS_WITH(cvk::max_pool2d(input, {.kernel = {6, 2}}),
                      Contains("max_pool2d: the output would be empty (Ho×Wo = 0×2)") &&
                          Contains("input 2×4×5×5 (N×C×H×W)"));
    CHECK_THROWS_WITH(cvk::max_pool2d(input, {.kernel = {3, 3}, .dilation = {3, 1}}),
                      Contains("the output would be empty"));
    const cvk::strided_view<const float, 4> empty(x.data(), {1, 4, 0, 5});
    CHECK_THROWS_WITH(cvk::avg_pool2d(empty, ok),
                      Contains("avg_pool2d: input must have H >= 1 and W >= 1 (torch), got input "
                               "1×4×0×5 (N×C×H×W)"));
  }
  SECTION("out, indices, grad_output of the wrong shape") {
    cvk::tensor<float, 4> out(nchw_t{2, 4, 3, 4});
    CHECK_THROWS_AS(cvk::max_pool2d(input, ok, out), cvk::shape_error);
    CHECK_THROWS_WITH(cvk::avg_pool2d(input, ok, out),
                      Contains("avg_pool2d: out must be N×C×H×W = 2×4×3×3, got 2×4×3×4"));
    cvk::tensor<float, 4> good(nchw_t{2, 4, 3, 3});
    cvk::tensor<index_t, 4> bad_indices(nchw_t{2, 3, 3, 4});
    CHECK_THROWS_WITH(cvk::max_pool2d_with_indices(input, ok, good, bad_indices),
                      Contains("max_pool2d_with_indices: indices must be N×C×H×W = 2×4×3×3"));
    const auto r = cvk::max_pool2d_with_indices(input, ok);
    CHECK_THROWS_WITH(cvk::max_pool2d_backward(out, r.indices, input.extents(), ok),
                      Contains("max_pool2d_backward: grad_output must be N×C×H×W = 2×4×3×3, got "
                               "2×4×3×4"));
    CHECK_THROWS_WITH(cvk::max_pool2d_backward(good, bad_indices, input.extents(), ok),
                      Contains("max_pool2d_backward: indices must be N×C×H×W = 2×4×3×3"));
    CHECK_THROWS_WITH(cvk::avg_pool2d_backward(out, input.extents(), ok),
                      Contains("avg_pool2d_backward: grad_output must be"));
    CHECK_THROWS_WITH(
        cvk::adaptive_avg_pool2d_backward(out, input.extents(), {.output_size = {3, 3}}),
        Contains("adaptive_avg_pool2d_backward: grad_output must be N×C×H×W = "
                 "2×4×3×3, got 2×4×3×4"));
    CHECK_THROWS_WITH(cvk::adaptive_avg_pool2d(input, {.output_size = {2, 2}}, good),
                      Contains("adaptive_avg_pool2d: out must be N×C×H×W = 2×4×2×2"));
  }
  SECTION("indices outside the input plane") {
    auto r = cvk::max_pool2d_with_indices(input, ok);
    r.indices(1, 2, 0, 1) = 25;
    CHECK_THROWS_AS(cvk::max_pool2d_backward(r.output, r.indices, input.extents(), ok),
                    cvk::out_of_range);
    CHECK_THROWS_WITH(cvk::max_pool2d_backward(r.output, r.indices, input.extents(), ok),
                      Contains("max_pool2d_backward: indices holds 25 at (n, c, oy, ox) = (1, 2, "
                               "0, 1), outside the input plane of H×W = 5×5"));
  }
  SECTION("sizes whose products overflow") {
    const index_t huge = index_t{1} << 40;
    const cvk::strided_view<const float, 4> broadcast(x.data(), {1, 4, huge, huge}, {0, 1, 0, 0});
    CHECK_THROWS_AS(cvk::max_pool2d(broadcast, {.kernel = {1, 1}}), cvk::out_of_range);
    CHECK_THROWS_WITH(cvk::avg_pool2d(broadcast, {.kernel = {1, 1}}),
                      Contains("avg_pool2d: input") && Contains("overflows"));
    CHECK_THROWS_AS(cvk::pool2d_output_shape({1, 1, 5, 5},
                                             {.kernel = {std::numeric_limits<index_t>::max(), 1},
                                              .stride = {std::numeric_limits<index_t>::max(), 1}}),
                    cvk::out_of_range);
    const std::array<index_t, 2> huge_size{std::numeric_limits<index_t>::max(), 1};
    CHECK_THROWS_WITH(cvk::adaptive_avg_pool2d(input, {.output_size = huge_size}),
                      Contains("adaptive_avg_pool2d: the output") && Contains("overflows"));
    // An empty batch has no output to overflow; the bin edges (o + 1)·H still would.
    const cvk::strided_view<const float, 4> no_images(x.data(), {0, 4, 5, 5});
    CHECK_THROWS_WITH(cvk::adaptive_avg_pool2d(no_images, {.output_size = huge_size}),
                      Contains("adaptive_avg_pool2d: params.output_size") && Contains("overflows"));
    const cvk::strided_view<const float, 4> large(x.data(), {1, 4, index_t{1} << 19, 1 << 19},
                                                  {0, 1, 0, 0});
    CHECK_THROWS_WITH(cvk::avg_pool2d(large, {.kernel = {1, 1}}),
                      Contains("avg_pool2d: the output") && Contains("more than can be allocated"));
  }
  SECTION("channel_shuffle: groups not dividing the channels, wrong out, views") {
    CHECK_THROWS_AS(cvk::channel_shuffle(input, 3), cvk::shape_error);
    CHECK_THROWS_WITH(cvk::channel_shuffle(input, 3),
                      Contains("channel_shuffle: groups (3) must divide the channels (4); input "
                               "2×4×5×5 (N×C×H×W)"));
    CHECK_THROWS_WITH(cvk::channel_shuffle(input, 2, cvk::layout::nhwc),
                      Contains("groups (2) must divide the channels (5)") && Contains("(N×H×W×C)"));
    CHECK_THROWS_AS(cvk::channel_shuffle(input, 0), cvk::invalid_argument);
    CHECK_THROWS_WITH(cvk::channel_shuffle_inverse(input, 0),
                      Contains("channel_shuffle_inverse: groups must be >= 1, got 0"));
    CHECK_THROWS_WITH(cvk::channel_shuffle_view(input, 3),
                      Contains("channel_shuffle_view: groups (3) must divide the channels (4)"));
    CHECK_THROWS_WITH(cvk::channel_shuffle_permutation(10, 4),
                      Contains("channel_shuffle_permutation: groups (4) must divide the channels "
                               "(10)"));
    cvk::tensor<float, 4> wrong(nchw_t{2, 4, 5, 4});
    CHECK_THROWS_WITH(cvk::channel_shuffle(input, 2, cvk::layout::nchw, wrong),
                      Contains("channel_shuffle: out must be N×C×H×W = 2×4×5×5, got 2×4×5×4"));
  }
}

}  // namespace
