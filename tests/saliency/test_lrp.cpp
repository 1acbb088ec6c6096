// cvk — computer-vision kernels, header-only C++20.
// Tests of cvk/saliency/lrp.hpp. The reference: every layer written as an explicit dense matrix
// over all input/output pairs (W[j][k] = the weight linking input element j to output element k,
// built by looping over the conv definition: plain, strided, dilated, padded, grouped, depthwise,
// HWIO weights; linear layers; pooling windows as explicit index lists), and every rule (zero,
// ε, γ, αβ with inputs of both signs, z^B with per-channel bounds, flat, w²; the Norm rule of
// average / adaptive / proportional max pooling, winner-take-all max pooling) evaluated on it in
// double, compared with lrp() in float and double, NCHW and NHWC, within an error bound the
// reference propagates alongside the relevance; conservation through layer_totals; batch-norm
// merging against the unmerged network evaluated by hand; the PyTorch 1.13 goldens of
// tests/gen_lrp_fixtures.py (four composites, one also with proportional max pooling; both
// starts); thread-count invariance; the errors, each naming the layer.
// SPDX-License-Identifier: MIT
#include <cvk/core/rng.hpp>
#include <cvk/saliency/lrp.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <catch2/catch.hpp>

#include "support/fixtures.hpp"

namespace {

using cvk::index_t;
using cvk::layout;
using cvk::lrp_rule;
using cvk::lrp_rule_kind;
using extents4 = std::array<index_t, 4>;

std::size_t at(index_t i) { return static_cast<std::size_t>(i); }

/// One image's activation extents in N, C, H, W terms (whatever the network's layout).
struct chw {
  index_t c = 0, h = 0, w = 0;
  [[nodiscard]] index_t size() const { return c * h * w; }
};

// ---------------------------------------------------------------------------------------------
// The dense reference. Activations of one image are vectors in canonical C, H, W order (a
// flattened activation: D values in the network's flatten order).

enum class ref_kind { dense, relu, max_pool, avg_pool, permute };

struct ref_layer {
  ref_kind kind = ref_kind::relu;
  index_t nin = 0, nout = 0;
  std::vector<double> weight;                 // dense: nin × nout, weight[j·nout + k]
  std::vector<unsigned char> connected;       // dense: the pairs the layer links (padding excluded)
  std::vector<double> bias;                   // dense: nout values
  std::vector<index_t> channel;               // dense: the input channel of each input (z_box)
  std::vector<std::vector<index_t>> windows;  // pools: the inputs each output reads, scan order
  std::vector<double> divisor;                // pools: the divisor of each output's mean
  std::vector<index_t> source;                // permute: output k is input source[k]
};

template <class T>
ref_layer dense_conv(const cvk::lrp_conv<T>& c, chw& s) {
  const auto& p = c.params;
  const bool oihw = p.weights == cvk::weight_layout::oihw;
  const auto e = c.weight.extents();
  const index_t outs = oihw ? e[0] : e[3], ig = oihw ? e[1] : e[2];
  const index_t kh = oihw ? e[2] : e[0], kw = oihw ? e[3] : e[1];
  const index_t og = outs / p.groups;
  const index_t ho =
      (s.h + p.padding[0] + p.padding[2] - p.dilation[0] * (kh - 1) - 1) / p.stride[0] + 1;
  const index_t wo =
      (s.w + p.padding[1] + p.padding[3] - p.dilation[1] * (kw - 1) - 1) / p.stride[1] + 1;
  ref_layer l;
  l.kind = ref_kind::dense;
  l.nin = s.size();
  l.nout = outs * ho * wo;
  l.weight.assign(at(l.nin * l.nout), 0.0);
  l.connected.assign(at(l.nin * l.nout), 0);
  l.bias.assign(at(l.nout), 0.0);
  l.channel.resize(at(l.nin));
  for (index_t j = 0; j < l.nin; ++j) l.channel[at(j)] = j / (s.h * s.w);
  for (index_t o = 0; o < outs; ++o) {
    for (index_t oy = 0; oy < ho; ++oy) {
      for (index_t ox = 0; ox < wo; ++ox) {
        const index_t k = (o * ho + oy) * wo + ox;
        l.bias[at(k)] = c.bias.size() == 0 ? 0.0 : static_cast<double>(c.bias(o));
        for (index_t i = 0; i < ig; ++i) {
          for (index_t ky = 0; ky < kh; ++ky) {
            for (index_t kx = 0; kx < kw; ++kx) {
              const index_t iy = oy * p.stride[0] - p.padding[0] + ky * p.dilation[0];
              const index_t ix = ox * p.stride[1] - p.padding[1] + kx * p.dilation[1];
              if (iy < 0 || iy >= s.h || ix < 0 || ix >= s.w) continue;
              const index_t j = (((o / og) * ig + i) * s.h + iy) * s.w + ix;
              const T w = oihw ? c.weight(o, i, ky, kx) : c.weight(ky, kx, i, o);
              l.weight[at(j * l.nout + k)] += static_cast<double>(w);
              l.connected[at(j * l.nout + k)] = 1;
            }
          }
        }
      }
    }
  }
  s = {outs, ho, wo};
  return l;
}

template <class T>
ref_layer dense_linear(const cvk::lrp_linear<T>& lin, chw& s) {
  REQUIRE(s.h == 1);
  REQUIRE(s.w == 1);
  ref_layer l;
  l.kind = ref_kind::dense;
  l.nin = lin.weight.extent(1);
  l.nout = lin.weight.extent(0);
  l.weight.resize(at(l.nin * l.nout));
  l.connected.assign(at(l.nin * l.nout), 1);
  l.bias.assign(at(l.nout), 0.0);
  l.channel.resize(at(l.nin));
  for (index_t j = 0; j < l.nin; ++j) {
    l.channel[at(j)] = j;
    for (index_t k = 0; k < l.nout; ++k) {
      l.weight[at(j * l.nout + k)] = static_cast<double>(lin.weight(k, j));
    }
  }
  for (index_t k = 0; k < l.nout && lin.bias.size() != 0; ++k) {
    l.bias[at(k)] = static_cast<double>(lin.bias(k));
  }
  s = {l.nout, 1, 1};
  return l;
}

/// Windows of max_pool2d / avg_pool2d (torch's floor mode), taps in row-major scan order.
ref_layer dense_pool(const cvk::pool2d_params& p, bool max, chw& s) {
  REQUIRE(!p.ceil_mode);
  const index_t kh = p.kernel[0], kw = p.kernel[1];
  const index_t sh = p.stride[0] == 0 ? kh : p.stride[0], sw = p.stride[1] == 0 ? kw : p.stride[1];
  const index_t ho = (s.h + 2 * p.padding[0] - p.dilation[0] * (kh - 1) - 1) / sh + 1;
  const index_t wo = (s.w + 2 * p.padding[1] - p.dilation[1] * (kw - 1) - 1) / sw + 1;
  ref_layer l;
  l.kind = max ? ref_kind::max_pool : ref_kind::avg_pool;
  l.nin = s.size();
  l.nout = s.c * ho * wo;
  for (index_t c = 0; c < s.c; ++c) {
    for (index_t oy = 0; oy < ho; ++oy) {
      for (index_t ox = 0; ox < wo; ++ox) {
        std::vector<index_t> taps;
        for (index_t ky = 0; ky < kh; ++ky) {
          for (index_t kx = 0; kx < kw; ++kx) {
            const index_t iy = oy * sh - p.padding[0] + ky * p.dilation[0];
            const index_t ix = ox * sw - p.padding[1] + kx * p.dilation[1];
            if (iy >= 0 && iy < s.h && ix >= 0 && ix < s.w)
              taps.push_back((c * s.h + iy) * s.w + ix);
          }
        }
        // The avg pool's divisor (max pool: the proportional rule's average, padding counted).
        double divisor = static_cast<double>(kh * kw);
        if (!max && p.divisor_override != 0) {
          divisor = static_cast<double>(p.divisor_override);
        } else if (!max && !p.count_include_pad) {
          divisor = static_cast<double>(taps.size());
        }
        l.windows.push_back(std::move(taps));
        l.divisor.push_back(divisor);
      }
    }
  }
  s = {s.c, ho, wo};
  return l;
}

ref_layer dense_adaptive(const cvk::adaptive_pool2d_params& p, chw& s) {
  const index_t ho = p.output_size[0], wo = p.output_size[1];
  ref_layer l;
  l.kind = ref_kind::avg_pool;
  l.nin = s.size();
  l.nout = s.c * ho * wo;
  for (index_t c = 0; c < s.c; ++c) {
    for (index_t oy = 0; oy < ho; ++oy) {
      for (index_t ox = 0; ox < wo; ++ox) {
        std::vector<index_t> taps;
        // torch's adaptive windows: [floor(i·H/Ho), ceil((i + 1)·H/Ho)).
        for (index_t iy = oy * s.h / ho; iy < ((oy + 1) * s.h + ho - 1) / ho; ++iy) {
          for (index_t ix = ox * s.w / wo; ix < ((ox + 1) * s.w + wo - 1) / wo; ++ix) {
            taps.push_back((c * s.h + iy) * s.w + ix);
          }
        }
        l.divisor.push_back(static_cast<double>(taps.size()));
        l.windows.push_back(std::move(taps));
      }
    }
  }
  s = {s.c, ho, wo};
  return l;
}

ref_layer dense_flatten(layout lay, chw& s) {
  ref_layer l;
  l.kind = ref_kind::permute;
  l.nin = l.nout = s.size();
  for (index_t y = 0; y < s.h; ++y) {  // nhwc flattens in h, w, c order
    for (index_t x = 0; x < s.w; ++x) {
      for (index_t c = 0; c < s.c; ++c) l.source.push_back((c * s.h + y) * s.w + x);
    }
  }
  if (lay == layout::nchw) {
    for (index_t k = 0; k < l.nout; ++k) l.source[at(k)] = k;
  }
  s = {s.size(), 1, 1};
  return l;
}

/// The reference layers of a network without batch norms.
template <class T>
std::vector<ref_layer> reference_network(const std::vector<cvk::lrp_layer<T>>& layers, chw s,
                                         layout lay) {
  std::vector<ref_layer> net;
  for (const auto& layer : layers) {
    if (const auto* c = std::get_if<cvk::lrp_conv<T>>(&layer)) {
      net.push_back(dense_conv(*c, s));
    } else if (const auto* lin = std::get_if<cvk::lrp_linear<T>>(&layer)) {
      net.push_back(dense_linear(*lin, s));
    } else if (std::holds_alternative<cvk::lrp_relu>(layer)) {
      ref_layer relu;
      relu.nin = relu.nout = s.size();
      net.push_back(std::move(relu));
    } else if (const auto* m = std::get_if<cvk::lrp_max_pool>(&layer)) {
      net.push_back(dense_pool(m->params, true, s));
    } else if (const auto* a = std::get_if<cvk::lrp_avg_pool>(&layer)) {
      net.push_back(dense_pool(a->params, false, s));
    } else if (const auto* ad = std::get_if<cvk::lrp_adaptive_avg_pool>(&layer)) {
      net.push_back(dense_adaptive(ad->params, s));
    } else if (std::holds_alternative<cvk::lrp_flatten>(layer)) {
      net.push_back(dense_flatten(lay, s));
    } else {
      FAIL("the reference takes no batch norm: merge it first");
    }
  }
  return net;
}

/// One image's pass: the relevance at every layer boundary and, per element, a bound on the
/// error a computation in another precision may make, in units of that precision's epsilon:
/// each term's share |n_jk|/|z_k| times the error of R_k and of z_k (the magnitudes that enter
/// it, the forward pass's included), so that ill-conditioned denominators widen the bound
/// rather than fail the comparison.
struct ref_pass {
  std::vector<std::vector<double>> relevance, bound;  // L + 1 boundaries
};

ref_pass reference_lrp(const std::vector<ref_layer>& net, const std::vector<lrp_rule>& rules,
                       cvk::lrp_max_pool_rule max_pool, double pool_epsilon, cvk::lrp_start start,
                       index_t target, const std::vector<double>& x) {
  const std::size_t count = net.size();
  std::vector<std::vector<double>> acts{x}, mags(1);
  for (const double v : x) mags[0].push_back(std::fabs(v));
  for (const auto& l : net) {
    const auto& a = acts.back();
    const auto& f = mags.back();
    std::vector<double> y(at(l.nout)), g(at(l.nout));
    for (index_t k = 0; k < l.nout; ++k) {
      const auto kk = at(k);
      switch (l.kind) {
        case ref_kind::dense: {
          double z = l.bias[kk], m = std::fabs(l.bias[kk]);
          for (index_t j = 0; j < l.nin; ++j) {
            const double w = l.weight[at(j * l.nout + k)];
            z += a[at(j)] * w;
            m += f[at(j)] * std::fabs(w);
          }
          y[kk] = z;
          g[kk] = m;
          break;
        }
        case ref_kind::relu:
          y[kk] = std::max(a[kk], 0.0);
          g[kk] = f[kk];
          break;
        case ref_kind::max_pool:
          y[kk] = -std::numeric_limits<double>::infinity();
          for (const index_t j : l.windows[kk]) {
            y[kk] = std::max(y[kk], a[at(j)]);
            g[kk] = std::max(g[kk], f[at(j)]);
          }
          break;
        case ref_kind::avg_pool:
          for (const index_t j : l.windows[kk]) {
            y[kk] += a[at(j)] / l.divisor[kk];
            g[kk] += f[at(j)] / l.divisor[kk];
          }
          break;
        case ref_kind::permute:
          y[kk] = a[at(l.source[kk])];
          g[kk] = f[at(l.source[kk])];
          break;
      }
    }
    acts.push_back(std::move(y));
    mags.push_back(std::move(g));
  }
  ref_pass pass;
  pass.relevance.resize(count + 1);
  pass.bound.resize(count + 1);
  {
    const auto top_size = acts.back().size();
    pass.relevance[count].assign(top_size, 0.0);
    pass.bound[count].assign(top_size, 0.0);
    const bool score = start == cvk::lrp_start::score;
    pass.relevance[count][at(target)] = score ? acts.back()[at(target)] : 1.0;
    pass.bound[count][at(target)] = score ? mags.back()[at(target)] : 0.0;
  }
  const auto sign_of = [](double z) { return z >= 0 ? 1.0 : -1.0; };
  for (std::size_t li = count; li-- > 0;) {
    const ref_layer& l = net[li];
    const auto& a = acts[li];
    const auto& f = mags[li];
    const auto& r = pass.relevance[li + 1];
    const auto& b = pass.bound[li + 1];
    std::vector<double> ri(at(l.nin), 0.0), bi(at(l.nin), 0.0);
    // R_j += factor · n_jk R_k / stab(Σ_j n_jk + bterm_k) for every (j, k); eps < 0: the zero
    // rule (no stabiliser, 0 where z = 0).
    const auto term = [&](auto&& num, auto&& bterm, double eps, double factor, bool reads_input) {
      for (index_t k = 0; k < l.nout; ++k) {
        const auto kk = at(k);
        double z = bterm(k), m = std::fabs(bterm(k));
        for (index_t j = 0; j < l.nin; ++j) {
          const double n = num(j, k);
          z += n;
          m += std::fabs(n);
          if (reads_input) m += f[at(j)] * std::fabs(l.weight[at(j * l.nout + k)]);
        }
        if (eps < 0 && z == 0) continue;
        const double zs = eps < 0 ? z : z + eps * sign_of(z);
        for (index_t j = 0; j < l.nin; ++j) {
          const double n = num(j, k);
          const double w = std::fabs(l.weight[at(j * l.nout + k)]);
          ri[at(j)] += factor * n * r[kk] / zs;
          bi[at(j)] +=
              std::fabs(factor) *
              (std::fabs(n) / std::fabs(zs) * (std::fabs(r[kk]) * (1 + m / std::fabs(zs)) + b[kk]) +
               (reads_input ? f[at(j)] * w * std::fabs(r[kk]) / std::fabs(zs) : 0.0));
        }
      }
    };
    const auto weight = [&](index_t j, index_t k) { return l.weight[at(j * l.nout + k)]; };
    const auto pos = [](double v) { return std::max(v, 0.0); };
    const auto neg = [](double v) { return std::min(v, 0.0); };
    const auto no_bias = [](index_t) { return 0.0; };
    switch (l.kind) {
      case ref_kind::dense: {
        const lrp_rule& rule = rules[li];
        const auto bias = [&](index_t k) { return l.bias[at(k)]; };
        switch (rule.kind) {
          case lrp_rule_kind::zero:
          case lrp_rule_kind::epsilon:
            term([&](index_t j, index_t k) { return a[at(j)] * weight(j, k); }, bias,
                 rule.kind == lrp_rule_kind::zero ? -1.0 : rule.epsilon, 1.0, true);
            break;
          case lrp_rule_kind::gamma: {
            const double gm = rule.gamma;
            term([&](index_t j,
                     index_t k) { return a[at(j)] * (weight(j, k) + gm * pos(weight(j, k))); },
                 [&](index_t k) { return bias(k) + gm * pos(bias(k)); }, rule.epsilon, 1.0, true);
            break;
          }
          case lrp_rule_kind::alpha_beta:
            term(
                [&](index_t j, index_t k) {
                  return pos(a[at(j)]) * pos(weight(j, k)) + neg(a[at(j)]) * neg(weight(j, k));
                },
                [&](index_t k) { return pos(bias(k)); }, rule.epsilon, rule.alpha, true);
            if (rule.beta != 0) {
              term(
                  [&](index_t j, index_t k) {
                    return pos(a[at(j)]) * neg(weight(j, k)) + neg(a[at(j)]) * pos(weight(j, k));
                  },
                  [&](index_t k) { return neg(bias(k)); }, rule.epsilon, -rule.beta, true);
            }
            break;
          case lrp_rule_kind::z_box: {
            const auto bound_of = [&](const std::vector<double>& v, index_t j) {
              return v.size() == 1 ? v[0] : v[at(l.channel[at(j)])];
            };
            term(
                [&](index_t j, index_t k) {
                  const double w = weight(j, k);
                  return a[at(j)] * w - bound_of(rule.low, j) * pos(w) -
                         bound_of(rule.high, j) * neg(w);
                },
                no_bias, rule.epsilon, 1.0, true);
            break;
          }
          case lrp_rule_kind::flat:
            term([&](index_t j,
                     index_t k) { return l.connected[at(j * l.nout + k)] != 0 ? 1.0 : 0.0; },
                 no_bias, rule.epsilon, 1.0, false);
            break;
          case lrp_rule_kind::w_square:
            term([&](index_t j, index_t k) { return weight(j, k) * weight(j, k); }, no_bias,
                 rule.epsilon, 1.0, false);
            break;
        }
        break;
      }
      case ref_kind::relu:
        ri = r;
        bi = b;
        break;
      case ref_kind::permute:
        for (index_t k = 0; k < l.nout; ++k) {
          ri[at(l.source[at(k)])] = r[at(k)];
          bi[at(l.source[at(k)])] = b[at(k)];
        }
        break;
      case ref_kind::max_pool:
        if (max_pool == cvk::lrp_max_pool_rule::winner_take_all) {
          for (index_t k = 0; k < l.nout; ++k) {
            const auto& window = l.windows[at(k)];
            index_t winner = window.front();  // the first maximum in scan order (torch's argmax)
            for (const index_t j : window) {
              if (a[at(j)] > a[at(winner)]) winner = j;
            }
            ri[at(winner)] += r[at(k)];
            bi[at(winner)] += b[at(k)];
          }
          break;
        }
        [[fallthrough]];
      case ref_kind::avg_pool:
        // zennit's Norm rule on the average pool: R_j = a_j Σ_k (1/d_k) R_k / stab(mean_k), i.e.
        // a_j R_k / (window sum + d_k·ε) for a window of non-negative sum.
        for (index_t k = 0; k < l.nout; ++k) {
          const auto kk = at(k);
          double sum = 0, m = 0;
          for (const index_t j : l.windows[kk]) {
            sum += a[at(j)];
            m += std::fabs(a[at(j)]) + f[at(j)];
          }
          const double zs = l.divisor[kk] * (sum / l.divisor[kk] + pool_epsilon * sign_of(sum));
          for (const index_t j : l.windows[kk]) {
            ri[at(j)] += a[at(j)] * r[kk] / zs;
            bi[at(j)] +=
                (std::fabs(a[at(j)]) * ((std::fabs(r[kk]) * (1 + m / std::fabs(zs))) + b[kk]) +
                 f[at(j)] * std::fabs(r[kk])) /
                std::fabs(zs);
          }
        }
        break;
    }
    pass.relevance[li] = std::move(ri);
    pass.bound[li] = std::move(bi);
  }
  return pass;
}

// ---------------------------------------------------------------------------------------------
// Layouts and random layers.

/// A canonical N×C×H×W vector as a tensor in `lay`.
template <class T>
cvk::tensor<T, 4> to_layout(const std::vector<double>& x, const extents4& e, layout lay) {
  cvk::tensor<T, 4> t(lay == layout::nchw ? e : extents4{e[0], e[2], e[3], e[1]});
  for (index_t n = 0; n < e[0]; ++n) {
    for (index_t c = 0; c < e[1]; ++c) {
      for (index_t y = 0; y < e[2]; ++y) {
        for (index_t xx = 0; xx < e[3]; ++xx) {
          const T v = static_cast<T>(x[at(((n * e[1] + c) * e[2] + y) * e[3] + xx)]);
          if (lay == layout::nchw) {
            t(n, c, y, xx) = v;
          } else {
            t(n, y, xx, c) = v;
          }
        }
      }
    }
  }
  return t;
}

/// Element (n, c, y, x) of a tensor in `lay`.
template <class T>
double element(const cvk::tensor<T, 4>& t, layout lay, index_t n, index_t c, index_t y, index_t x) {
  return static_cast<double>(lay == layout::nchw ? t(n, c, y, x) : t(n, y, x, c));
}

/// Random values in [lo, hi], rounded to T (so the reference reads what the network reads).
template <class T>
std::vector<double> random_values(cvk::rng& gen, std::size_t count, double lo, double hi) {
  std::vector<double> v(count);
  for (auto& x : v) x = static_cast<double>(static_cast<T>(gen.uniform<double>(lo, hi)));
  return v;
}

struct conv_spec {
  index_t c = 1, o = 1, kh = 1, kw = 1, groups = 1;
  std::array<index_t, 2> stride{1, 1}, dilation{1, 1};
  std::array<index_t, 4> padding{0, 0, 0, 0};
  bool bias = true, hwio = false;
};

template <class T>
cvk::lrp_conv<T> random_conv(cvk::rng& gen, const conv_spec& s, layout lay) {
  cvk::lrp_conv<T> c;
  const index_t ig = s.c / s.groups;
  c.weight =
      s.hwio ? cvk::tensor<T, 4>(s.kh, s.kw, ig, s.o) : cvk::tensor<T, 4>(s.o, ig, s.kh, s.kw);
  for (auto& w : c.weight) w = static_cast<T>(gen.uniform<double>(-1.0, 1.0));
  if (s.bias) {
    c.bias = cvk::tensor<T, 1>(s.o);
    for (auto& b : c.bias) b = static_cast<T>(gen.uniform<double>(-0.3, 0.3));
  }
  c.params = {.stride = s.stride,
              .padding = s.padding,
              .dilation = s.dilation,
              .groups = s.groups,
              .data_layout = lay,
              .weights = s.hwio ? cvk::weight_layout::hwio : cvk::weight_layout::oihw};
  return c;
}

template <class T>
cvk::lrp_linear<T> random_linear(cvk::rng& gen, index_t out, index_t in, bool bias = true) {
  cvk::lrp_linear<T> l;
  l.weight = cvk::tensor<T, 2>(out, in);
  for (auto& w : l.weight) w = static_cast<T>(gen.uniform<double>(-1.0, 1.0));
  if (bias) {
    l.bias = cvk::tensor<T, 1>(out);
    for (auto& b : l.bias) b = static_cast<T>(gen.uniform<double>(-0.3, 0.3));
  }
  return l;
}

/// cvk's lrp on `layers` against the reference (rules per layer; with `composite`, the
/// composite form, whose rules lrp_rules gives). Returns cvk's result.
template <class T>
cvk::lrp_result<T> check_lrp(const std::vector<cvk::lrp_layer<T>>& layers,
                             const std::vector<lrp_rule>& rules,
                             const std::optional<cvk::lrp_composite>& composite,
                             const std::vector<double>& x, const extents4& e,
                             const std::vector<int>& targets, const cvk::lrp_options& options,
                             std::vector<ref_pass>* passes = nullptr) {
  const layout lay = options.data_layout;
  const auto input = to_layout<T>(x, e, lay);
  const cvk::lrp_result<T> got = composite ? cvk::lrp(layers, input, targets, *composite, options)
                                           : cvk::lrp(layers, input, targets, rules, options);
  const auto net = reference_network(layers, {e[1], e[2], e[3]}, lay);
  const auto ref_rules = composite ? cvk::lrp_rules(layers, *composite) : rules;
  const auto pool_rule = composite ? composite->max_pool : cvk::lrp_max_pool_rule::winner_take_all;
  REQUIRE(got.relevance.extents() == input.extents());
  REQUIRE(got.layer_totals.extent(0) == e[0]);
  REQUIRE(got.layer_totals.extent(1) == static_cast<index_t>(net.size() + 1));
  const double tol = 128 * static_cast<double>(std::numeric_limits<T>::epsilon());
  const index_t image = e[1] * e[2] * e[3];
  for (index_t n = 0; n < e[0]; ++n) {
    const auto first = x.begin() + static_cast<std::ptrdiff_t>(n * image);
    const std::vector<double> xi(first, first + static_cast<std::ptrdiff_t>(image));
    const ref_pass pass = reference_lrp(net, ref_rules, pool_rule, options.epsilon, options.start,
                                        targets[at(n)], xi);
    index_t bad = 0;
    for (index_t c = 0; c < e[1]; ++c) {
      for (index_t y = 0; y < e[2]; ++y) {
        for (index_t xx = 0; xx < e[3]; ++xx) {
          const auto j = at((c * e[2] + y) * e[3] + xx);
          const double v = element(got.relevance, lay, n, c, y, xx);
          const double want = pass.relevance[0][j];
          const bool ok = std::fabs(v - want) <= tol * pass.bound[0][j] + 1e-290;
          if (!ok && bad++ < 3) {
            INFO("image " << n << " element (c, y, x) = (" << c << ", " << y << ", " << xx
                          << "): cvk " << v << ", reference " << want << ", bound "
                          << tol * pass.bound[0][j]);
            CHECK(ok);
          }
        }
      }
    }
    CHECK(bad == 0);
    for (std::size_t l = 0; l <= net.size(); ++l) {
      double sum = 0, scale = 0;
      for (std::size_t j = 0; j < pass.relevance[l].size(); ++j) {
        sum += pass.relevance[l][j];
        scale += std::fabs(pass.relevance[l][j]) + pass.bound[l][j];
      }
      const double total = static_cast<double>(got.layer_totals(n, static_cast<index_t>(l)));
      INFO("image " << n << " boundary " << l << ": cvk total " << total << ", reference " << sum);
      CHECK(std::fabs(total - sum) <= tol * scale + 1e-290);
    }
    if (passes != nullptr) passes->push_back(pass);
  }
  return got;
}

std::string describe(const lrp_rule& r) {
  std::string s = cvk::to_string(r.kind);
  if (r.kind == lrp_rule_kind::alpha_beta)
    s += " " + std::to_string(r.alpha) + "/" + std::to_string(r.beta);
  return s;
}

/// The rules the dense-reference sweeps run through each conv or linear layer.
std::vector<lrp_rule> sweep_rules(index_t channels) {
  std::vector<double> low(at(channels)), high(at(channels));
  for (index_t c = 0; c < channels; ++c) {
    low[at(c)] = -1.0 - 0.1 * static_cast<double>(c);
    high[at(c)] = 1.0 + 0.05 * static_cast<double>(c);
  }
  return {lrp_rule::zero(),
          lrp_rule::eps(0.05),
          lrp_rule::gamma_rule(0.25),
          {.kind = lrp_rule_kind::gamma, .epsilon = 0.01, .gamma = 1.5},
          lrp_rule::alpha_beta(2.0, 1.0),
          lrp_rule::z_plus(),
          {.kind = lrp_rule_kind::alpha_beta, .epsilon = 0.01, .alpha = 1.5, .beta = 0.5},
          lrp_rule::z_box(low, high),
          lrp_rule::z_box({-1.0}, {1.25}),
          lrp_rule::flat(),
          lrp_rule::w_square()};
}

constexpr std::array<layout, 2> layouts{layout::nchw, layout::nhwc};

const char* name_of(layout l) { return l == layout::nchw ? "nchw" : "nhwc"; }

// ---------------------------------------------------------------------------------------------

template <class T>
void conv_rules_sweep() {
  const std::vector<conv_spec> specs{
      {.c = 3, .o = 4, .kh = 3, .kw = 3, .padding = {1, 1, 1, 1}},
      {.c = 2,
       .o = 3,
       .kh = 3,
       .kw = 2,
       .stride = {2, 1},
       .dilation = {1, 2},
       .padding = {1, 0, 2, 1},
       .hwio = true},
      {.c = 4, .o = 6, .kh = 3, .kw = 3, .groups = 2, .stride = {2, 2}, .padding = {1, 1, 1, 1}},
      {.c = 4,
       .o = 4,
       .kh = 3,
       .kw = 3,
       .groups = 4,
       .dilation = {2, 2},
       .padding = {2, 1, 2, 1},
       .bias = false},
      {.c = 2, .o = 4, .kh = 2, .kw = 3, .groups = 2, .stride = {1, 2}, .padding = {0, 1, 1, 1}},
  };
  const std::array<extents4, 5> inputs{extents4{2, 3, 5, 6}, extents4{2, 2, 7, 6},
                                       extents4{2, 4, 6, 5}, extents4{2, 4, 6, 6},
                                       extents4{2, 2, 4, 5}};
  std::uint64_t seed = 0;
  for (std::size_t s = 0; s < specs.size(); ++s) {
    for (const layout lay : layouts) {
      for (const bool non_negative : {false, true}) {
        for (const lrp_rule& rule : sweep_rules(specs[s].c)) {
          cvk::rng gen(++seed, 14);
          const extents4 e = inputs[s];
          // conv (the rule under test) → flatten → linear (ε), so that every conv output gets a
          // relevance, of either sign.
          const auto conv = random_conv<T>(gen, specs[s], lay);
          chw shape{e[1], e[2], e[3]};
          (void)dense_conv(conv, shape);
          std::vector<cvk::lrp_layer<T>> layers{conv, cvk::lrp_flatten{},
                                                random_linear<T>(gen, 3, shape.size())};
          // z_box reads inputs inside its bounds: [-1, 1] fits every bound above.
          const auto x =
              random_values<T>(gen, at(e[0] * e[1] * e[2] * e[3]), non_negative ? 0.0 : -1.0, 1.0);
          INFO("conv " << s << " " << name_of(lay) << (non_negative ? " non-negative" : " signed")
                       << " inputs, rule " << describe(rule));
          for (const auto start : {cvk::lrp_start::score, cvk::lrp_start::one}) {
            check_lrp<T>(layers, {rule, lrp_rule::zero(), lrp_rule::eps(0.01)}, std::nullopt, x, e,
                         {1, 2}, {.data_layout = lay, .start = start});
          }
        }
      }
    }
  }
}

TEST_CASE(
    "lrp: every rule on a conv layer (plain, strided, dilated, padded, grouped, depthwise, "
    "HWIO) matches the dense-matrix reference",
    "[saliency][lrp]") {
  SECTION("double") { conv_rules_sweep<double>(); }
  SECTION("float") { conv_rules_sweep<float>(); }
}

template <class T>
void linear_rules_sweep() {
  std::uint64_t seed = 100;
  const extents4 e{3, 3, 2, 2};
  for (const layout lay : layouts) {
    for (const bool non_negative : {false, true}) {
      for (const lrp_rule& rule : sweep_rules(12)) {
        for (const bool bias : {true, false}) {
          cvk::rng gen(++seed, 14);
          // flatten → linear 12→5 (the rule under test; the first linear layer reads the image, so
          // z_box's per-channel bounds are per feature) → ReLU → linear 5→4 (ε) → linear 4→3 (0).
          std::vector<cvk::lrp_layer<T>> layers{
              cvk::lrp_flatten{}, random_linear<T>(gen, 5, 12, bias), cvk::lrp_relu{},
              random_linear<T>(gen, 4, 5), random_linear<T>(gen, 3, 4)};
          const auto x =
              random_values<T>(gen, at(e[0] * e[1] * e[2] * e[3]), non_negative ? 0.0 : -1.0, 1.0);
          INFO("linear " << name_of(lay) << (non_negative ? " non-negative" : " signed")
                         << " inputs, rule " << describe(rule) << (bias ? "" : ", no bias"));
          check_lrp<T>(
              layers,
              {lrp_rule::zero(), rule, lrp_rule::zero(), lrp_rule::eps(0.02), lrp_rule::zero()},
              std::nullopt, x, e, {0, 2, 1}, {.data_layout = lay});
        }
      }
    }
  }
}

TEST_CASE("lrp: every rule on a linear layer matches the dense-matrix reference",
          "[saliency][lrp]") {
  SECTION("double") { linear_rules_sweep<double>(); }
  SECTION("float") { linear_rules_sweep<float>(); }
}

template <class T>
void pooling_sweep() {
  std::uint64_t seed = 200;
  const extents4 e{2, 3, 6, 7};
  struct pool_case {
    cvk::lrp_layer<T> layer;
    const char* what;
  };
  for (const layout lay : layouts) {
    const std::vector<pool_case> cases{
        {cvk::lrp_max_pool{{.kernel = {2, 2}, .data_layout = lay}}, "max 2x2"},
        {cvk::lrp_max_pool{
             {.kernel = {3, 2}, .stride = {2, 1}, .padding = {1, 1}, .data_layout = lay}},
         "max 3x2 stride 2,1 padding 1"},
        {cvk::lrp_max_pool{{.kernel = {2, 3},
                            .stride = {1, 2},
                            .padding = {1, 1},
                            .dilation = {2, 1},
                            .data_layout = lay}},
         "max 2x3 dilated"},
        {cvk::lrp_avg_pool{{.kernel = {2, 2}, .data_layout = lay}}, "avg 2x2"},
        {cvk::lrp_avg_pool{
             {.kernel = {3, 3}, .stride = {2, 2}, .padding = {1, 1}, .data_layout = lay}},
         "avg 3x3 stride 2 padding 1 (padding counted)"},
        {cvk::lrp_avg_pool{{.kernel = {3, 2},
                            .stride = {1, 2},
                            .padding = {1, 1},
                            .count_include_pad = false,
                            .data_layout = lay}},
         "avg 3x2 padding 1 (padding not counted)"},
        {cvk::lrp_avg_pool{
             {.kernel = {2, 2}, .stride = {2, 2}, .divisor_override = 3, .data_layout = lay}},
         "avg 2x2 divisor 3"},
        {cvk::lrp_adaptive_avg_pool{{.output_size = {4, 3}, .data_layout = lay}}, "adaptive 4x3"},
        {cvk::lrp_adaptive_avg_pool{{.output_size = {1, 1}, .data_layout = lay}}, "global average"},
    };
    for (const auto& pc : cases) {
      const bool max = std::holds_alternative<cvk::lrp_max_pool>(pc.layer);
      const bool dilated = max && std::get<cvk::lrp_max_pool>(pc.layer).params.dilation[0] != 1;
      for (const auto pool_rule :
           {cvk::lrp_max_pool_rule::winner_take_all, cvk::lrp_max_pool_rule::proportional}) {
        if ((!max && pool_rule == cvk::lrp_max_pool_rule::proportional) ||
            (dilated && pool_rule == cvk::lrp_max_pool_rule::proportional)) {
          continue;
        }
        for (const bool non_negative : {true, false}) {
          // The Norm rule is meant for non-negative inputs; signed ones exercise its stabiliser.
          cvk::rng gen(++seed, 14);
          chw shape{e[1], e[2], e[3]};
          const auto net = reference_network<T>({pc.layer}, shape, lay);
          const index_t features = net[0].nout;
          // pool → flatten → linear (the composite's first layer: ε), through the composite form so
          // that the max-pool rule can be chosen.
          std::vector<cvk::lrp_layer<T>> layers{pc.layer, cvk::lrp_flatten{},
                                                random_linear<T>(gen, 3, features)};
          const cvk::lrp_composite composite{.first = lrp_rule::eps(0.01), .max_pool = pool_rule};
          const auto x =
              random_values<T>(gen, at(e[0] * e[1] * e[2] * e[3]), non_negative ? 0.05 : -1.0, 1.0);
          INFO(pc.what << ", " << name_of(lay) << (non_negative ? ", non-negative" : ", signed")
                       << (pool_rule == cvk::lrp_max_pool_rule::proportional ? ", proportional"
                                                                             : ""));
          for (const double eps : {1e-6, 0.1}) {
            check_lrp<T>(layers, {}, composite, x, e, {2, 0}, {.data_layout = lay, .epsilon = eps});
          }
        }
      }
    }
  }
}

TEST_CASE(
    "lrp: average, adaptive average and max pooling (winner-take-all, proportional) match "
    "their explicit windows",
    "[saliency][lrp]") {
  SECTION("double") { pooling_sweep<double>(); }
  SECTION("float") { pooling_sweep<float>(); }
}

/// conv → ReLU → grouped conv → ReLU → pool → depthwise conv → ReLU → adaptive pool → flatten →
/// linear: a chain whose rules vary per layer.
template <class T>
std::vector<cvk::lrp_layer<T>> chain_network(cvk::rng& gen, layout lay, bool with_bias,
                                             const cvk::lrp_layer<T>& pool) {
  return {
      random_conv<T>(
          gen, {.c = 2, .o = 4, .kh = 3, .kw = 3, .padding = {1, 1, 1, 1}, .bias = with_bias}, lay),
      cvk::lrp_relu{},
      random_conv<T>(gen,
                     {.c = 4,
                      .o = 4,
                      .kh = 3,
                      .kw = 3,
                      .groups = 2,
                      .padding = {1, 1, 1, 1},
                      .bias = with_bias},
                     lay),
      cvk::lrp_relu{},
      pool,
      random_conv<T>(gen,
                     {.c = 4,
                      .o = 4,
                      .kh = 3,
                      .kw = 3,
                      .groups = 4,
                      .padding = {1, 1, 1, 1},
                      .bias = with_bias},
                     lay),
      cvk::lrp_relu{},
      cvk::lrp_adaptive_avg_pool{{.output_size = {2, 2}, .data_layout = lay}},
      cvk::lrp_flatten{},
      random_linear<T>(gen, 3, 16, with_bias)};
}

template <class T>
void chain_sweep() {
  std::uint64_t seed = 300;
  const extents4 e{2, 2, 6, 6};
  const std::vector<std::array<lrp_rule, 4>> plans{
      {lrp_rule::z_box({-1.0, -1.5}, {1.0, 1.2}), lrp_rule::gamma_rule(), lrp_rule::gamma_rule(),
       lrp_rule::eps()},
      {lrp_rule::flat(), lrp_rule::z_plus(), lrp_rule::alpha_beta(), lrp_rule::eps(0.1)},
      {lrp_rule::w_square(), lrp_rule::eps(0.05), lrp_rule::zero(), lrp_rule::zero()},
  };
  for (const layout lay : layouts) {
    const std::array<cvk::lrp_layer<T>, 2> pools{
        cvk::lrp_layer<T>{cvk::lrp_max_pool{{.kernel = {2, 2}, .data_layout = lay}}},
        cvk::lrp_layer<T>{cvk::lrp_avg_pool{{.kernel = {2, 2}, .data_layout = lay}}}};
    for (std::size_t p = 0; p < plans.size(); ++p) {
      for (const auto& pool : pools) {
        cvk::rng gen(++seed, 14);
        const auto layers = chain_network<T>(gen, lay, true, pool);
        std::vector<lrp_rule> rules(layers.size(), lrp_rule::zero());
        rules[0] = plans[p][0];
        rules[2] = plans[p][1];
        rules[5] = plans[p][2];
        rules[9] = plans[p][3];
        const auto x = random_values<T>(gen, at(e[0] * e[1] * e[2] * e[3]), -1.0, 1.0);
        INFO(name_of(lay) << " plan " << p << (pool.index() == 4 ? " max pool" : " avg pool"));
        check_lrp<T>(layers, rules, std::nullopt, x, e, {0, 2}, {.data_layout = lay});
        if (pool.index() == 4) {
          cvk::lrp_composite composite{.first = plans[p][0],
                                       .conv = plans[p][1],
                                       .linear = plans[p][3],
                                       .max_pool = cvk::lrp_max_pool_rule::proportional};
          check_lrp<T>(layers, {}, composite, x, e, {1, 1},
                       {.data_layout = lay, .start = cvk::lrp_start::one});
        }
      }
    }
  }
}

TEST_CASE(
    "lrp: chains of conv, grouped and depthwise conv, pooling and linear layers with a rule "
    "per layer match the reference",
    "[saliency][lrp]") {
  SECTION("double") { chain_sweep<double>(); }
  SECTION("float") { chain_sweep<float>(); }
}

template <class T>
void conservation_sweep() {
  std::uint64_t seed = 400;
  const extents4 e{2, 2, 6, 6};
  // Rules that conserve (without bias): LRP-0, ε → 0, flat, w², and z⁺ on the non-negative inputs
  // every layer reads here; pooling conserves up to its stabiliser (options.epsilon, tiny here).
  // (A tiny ε rather than 0: a window of zeros after a ReLU has z = 0, which ε keeps finite.)
  const std::vector<lrp_rule> conserving{
      lrp_rule::zero(),
      lrp_rule::eps(1e-12),
      {.kind = lrp_rule_kind::flat, .epsilon = 1e-12},
      {.kind = lrp_rule_kind::w_square, .epsilon = 1e-12},
      {.kind = lrp_rule_kind::alpha_beta, .epsilon = 1e-12, .alpha = 1.0, .beta = 0.0}};
  for (const layout lay : layouts) {
    for (const lrp_rule& rule : conserving) {
      for (const bool proportional : {false, true}) {
        cvk::rng gen(++seed, 14);
        const auto layers = chain_network<T>(
            gen, lay, false,
            cvk::lrp_layer<T>{cvk::lrp_max_pool{{.kernel = {2, 2}, .data_layout = lay}}});
        // Flat and w² spread relevance onto inputs whatever their value, so above a ReLU they give
        // some to zeros, which the Norm rule of a pooling window of zeros cannot pass on: they
        // conserve as the first layer, with z⁺ above.
        const bool reads_input =
            rule.kind != lrp_rule_kind::flat && rule.kind != lrp_rule_kind::w_square;
        const lrp_rule upper = reads_input ? rule : conserving.back();
        const cvk::lrp_composite composite{
            .first = rule,
            .conv = upper,
            .linear = upper,
            .max_pool = proportional ? cvk::lrp_max_pool_rule::proportional
                                     : cvk::lrp_max_pool_rule::winner_take_all};
        const auto x = random_values<T>(gen, at(e[0] * e[1] * e[2] * e[3]), 0.0, 1.0);
        INFO(name_of(lay) << ", rule " << describe(rule) << (proportional ? ", proportional" : ""));
        std::vector<ref_pass> passes;
        const auto got = check_lrp<T>(layers, {}, composite, x, e, {0, 1},
                                      {.data_layout = lay, .epsilon = 1e-12}, &passes);
        const double tol = 128 * static_cast<double>(std::numeric_limits<T>::epsilon());
        for (index_t n = 0; n < e[0]; ++n) {
          const index_t top = got.layer_totals.extent(1) - 1;
          const double score = static_cast<double>(got.layer_totals(n, top));
          for (index_t l = 0; l < top; ++l) {
            double scale = 0;
            for (const double v : passes[at(n)].relevance[at(l)]) scale += std::fabs(v);
            for (const double v : passes[at(n)].bound[at(l)]) scale += v;
            INFO("image " << n << " boundary " << l);
            CHECK(std::fabs(static_cast<double>(got.layer_totals(n, l)) - score) <= tol * scale);
          }
          double input_sum = 0;
          for (index_t j = 0; j < got.relevance.size() / e[0]; ++j) {
            input_sum +=
                static_cast<double>(got.relevance.data()[n * (got.relevance.size() / e[0]) + j]);
          }
          CHECK(std::fabs(input_sum - static_cast<double>(got.layer_totals(n, 0))) <=
                tol * std::fabs(score) * 16);
        }
      }
    }
  }
}

TEST_CASE("lrp: relevance is conserved through conserving rules and pooling (layer_totals)",
          "[saliency][lrp]") {
  SECTION("double") { conservation_sweep<double>(); }
  SECTION("float") { conservation_sweep<float>(); }
}

TEST_CASE("lrp: the bias and the stabiliser take their share of relevance", "[saliency][lrp]") {
  // One linear layer, one input: z = a·w + b, R_in = a·w / (z + ε) · R, the rest stays with the
  // bias (zennit's and the contract's convention: relevance is not renormalised).
  const cvk::tensor<double, 2> weight(std::array<index_t, 2>{1, 1}, 2.0);
  const std::vector<cvk::lrp_layer<double>> layers{
      cvk::lrp_linear<double>{weight, cvk::tensor<double, 1>(std::array<index_t, 1>{1}, 1.0)}};
  const cvk::tensor<double, 4> x(extents4{1, 1, 1, 1}, 1.5);
  const auto r =
      cvk::lrp(layers, x, std::vector<int>{0}, std::vector<lrp_rule>{lrp_rule::eps(0.5)});
  // z = 4, R = f = 4: R_in = 3 / 4.5 · 4.
  CHECK(r.relevance(0, 0, 0, 0) == Approx(3.0 / 4.5 * 4.0).epsilon(1e-15));
  CHECK(r.layer_totals(0, 1) == 4.0);
  CHECK(r.layer_totals(0, 0) == Approx(3.0 / 4.5 * 4.0).epsilon(1e-15));
  // LRP-0 where z = 0 passes nothing (no division by zero).
  const std::vector<cvk::lrp_layer<double>> zero_layer{
      cvk::lrp_linear<double>{weight, cvk::tensor<double, 1>(std::array<index_t, 1>{1}, -3.0)}};
  const auto r0 = cvk::lrp(zero_layer, x, std::vector<int>{0},
                           std::vector<lrp_rule>{lrp_rule::zero()}, {.start = cvk::lrp_start::one});
  CHECK(r0.relevance(0, 0, 0, 0) == 0.0);
  CHECK(r0.layer_totals(0, 1) == 1.0);
  // The stabiliser's sign(0) = +1: inputs (1, −1) through weights (1, 1) give z = 0, so
  // R_j = a_j·w_j·R / (0 + ε).
  const cvk::tensor<double, 2> ones(std::array<index_t, 2>{1, 2}, 1.0);
  const std::vector<cvk::lrp_layer<double>> cancel{cvk::lrp_linear<double>{ones, {}}};
  cvk::tensor<double, 4> pair(extents4{1, 2, 1, 1});
  pair(0, 0, 0, 0) = 1.0;
  pair(0, 1, 0, 0) = -1.0;
  for (const lrp_rule& rule : {lrp_rule::eps(0.5), lrp_rule::gamma_rule(0.0)}) {
    const auto rc = cvk::lrp(cancel, pair, std::vector<int>{0}, std::vector<lrp_rule>{rule},
                             {.start = cvk::lrp_start::one});
    CHECK(rc.relevance(0, 0, 0, 0) == 1.0 / rule.epsilon);
    CHECK(rc.relevance(0, 1, 0, 0) == -1.0 / rule.epsilon);
  }
}

// ---------------------------------------------------------------------------------------------
// Batch norm.

template <class T>
cvk::lrp_batch_norm<T> random_batch_norm(cvk::rng& gen, index_t c) {
  cvk::lrp_batch_norm<T> bn{cvk::tensor<T, 1>(c), cvk::tensor<T, 1>(c), cvk::tensor<T, 1>(c),
                            cvk::tensor<T, 1>(c), 1e-3};
  for (index_t i = 0; i < c; ++i) {
    bn.mean(i) = static_cast<T>(gen.uniform<double>(-0.3, 0.3));
    bn.var(i) = static_cast<T>(gen.uniform<double>(0.5, 1.5));
    bn.gamma(i) = static_cast<T>(gen.uniform<double>(-1.2, 1.4));
    bn.beta(i) = static_cast<T>(gen.uniform<double>(-0.3, 0.3));
  }
  return bn;
}

/// y = (x − mean)/√(var + eps)·gamma + beta on channel c.
template <class T>
double batch_norm_value(const cvk::lrp_batch_norm<T>& bn, index_t c, double v) {
  return (v - static_cast<double>(bn.mean(c))) /
             std::sqrt(static_cast<double>(bn.var(c)) + bn.eps) * static_cast<double>(bn.gamma(c)) +
         static_cast<double>(bn.beta(c));
}

/// The network conv → BN → ReLU → grouped conv (no bias) → BN → ReLU → flatten → linear → BN.
template <class T>
std::vector<cvk::lrp_layer<T>> batch_norm_network(cvk::rng& gen, layout lay) {
  return {random_conv<T>(gen, {.c = 2, .o = 4, .kh = 3, .kw = 3, .padding = {1, 1, 1, 1}}, lay),
          random_batch_norm<T>(gen, 4),
          cvk::lrp_relu{},
          random_conv<T>(
              gen, {.c = 4, .o = 2, .kh = 3, .kw = 3, .groups = 2, .stride = {2, 2}, .bias = false},
              lay),
          random_batch_norm<T>(gen, 2),
          cvk::lrp_relu{},
          cvk::lrp_flatten{},
          random_linear<T>(gen, 3, 8),
          random_batch_norm<T>(gen, 3)};
}

/// The unmerged network evaluated by hand in double: the dense forward of each conv / linear, then
/// the batch-norm formula per channel.
template <class T>
std::vector<double> unmerged_scores(const std::vector<cvk::lrp_layer<T>>& layers,
                                    const std::vector<double>& x, chw s, layout lay) {
  std::vector<double> a = x;
  for (const auto& layer : layers) {
    if (const auto* bn = std::get_if<cvk::lrp_batch_norm<T>>(&layer)) {
      for (index_t j = 0; j < s.size(); ++j)
        a[at(j)] = batch_norm_value(*bn, j / (s.h * s.w), a[at(j)]);
      continue;
    }
    chw before = s;
    const auto net = reference_network<T>({layer}, before, lay);
    const ref_layer& l = net[0];
    std::vector<double> y(at(l.nout), 0.0);
    for (index_t k = 0; k < l.nout; ++k) {
      if (l.kind == ref_kind::dense) {
        y[at(k)] = l.bias[at(k)];
        for (index_t j = 0; j < l.nin; ++j) y[at(k)] += a[at(j)] * l.weight[at(j * l.nout + k)];
      } else if (l.kind == ref_kind::relu) {
        y[at(k)] = std::max(a[at(k)], 0.0);
      } else {
        y[at(k)] = a[at(l.source[at(k)])];
      }
    }
    if (l.kind == ref_kind::dense) {
      if (const auto* c = std::get_if<cvk::lrp_conv<T>>(&layer)) {
        (void)dense_conv(*c, s);
      } else {
        s = {l.nout, 1, 1};
      }
    } else if (l.kind == ref_kind::permute) {
      s = {s.size(), 1, 1};
    }
    a = std::move(y);
  }
  return a;
}

template <class T>
void batch_norm_checks() {
  const extents4 e{2, 2, 5, 5};
  std::uint64_t seed = 500;
  for (const layout lay : layouts) {
    cvk::rng gen(++seed, 14);
    const auto layers = batch_norm_network<T>(gen, lay);
    const auto x = random_values<T>(gen, at(e[0] * e[1] * e[2] * e[3]), -1.0, 1.0);
    const auto input = to_layout<T>(x, e, lay);
    INFO(name_of(lay));
    // lrp_forward: the unmerged network by hand.
    const auto scores = cvk::lrp_forward(layers, input, {.data_layout = lay});
    REQUIRE(scores.extent(0) == 2);
    REQUIRE(scores.extent(1) == 3);
    const double tol = 64 * static_cast<double>(std::numeric_limits<T>::epsilon());
    for (index_t n = 0; n < 2; ++n) {
      const auto first = x.begin() + static_cast<std::ptrdiff_t>(n * 50);
      const auto want = unmerged_scores<T>(layers, {first, first + 50}, {e[1], e[2], e[3]}, lay);
      for (index_t k = 0; k < 3; ++k) {
        CHECK(static_cast<double>(scores(n, k)) == Approx(want[at(k)]).epsilon(tol).margin(tol));
      }
    }
    // lrp_merge_batch_norm: W' = W·s, b' = (b − mean)·s + beta per output channel.
    const auto merged = cvk::lrp_merge_batch_norm(layers);
    REQUIRE(merged.size() == 6);
    const auto& conv = std::get<cvk::lrp_conv<T>>(layers[0]);
    const auto& bn = std::get<cvk::lrp_batch_norm<T>>(layers[1]);
    const auto& merged_conv = std::get<cvk::lrp_conv<T>>(merged[0]);
    for (index_t o = 0; o < 4; ++o) {
      const double s =
          static_cast<double>(bn.gamma(o)) / std::sqrt(static_cast<double>(bn.var(o)) + bn.eps);
      CHECK(static_cast<double>(merged_conv.bias(o)) ==
            Approx((static_cast<double>(conv.bias(o)) - static_cast<double>(bn.mean(o))) * s +
                   static_cast<double>(bn.beta(o)))
                .epsilon(tol)
                .margin(tol));
      for (index_t i = 0; i < 2; ++i) {
        CHECK(static_cast<double>(merged_conv.weight(o, i, 1, 2)) ==
              Approx(static_cast<double>(conv.weight(o, i, 1, 2)) * s).epsilon(tol).margin(tol));
      }
    }
    const auto& grouped = std::get<cvk::lrp_conv<T>>(merged[2]);
    REQUIRE(grouped.bias.size() == 2);  // a bias made for the conv that had none
    const auto& bn2 = std::get<cvk::lrp_batch_norm<T>>(layers[4]);
    for (index_t o = 0; o < 2; ++o) {
      const double s =
          static_cast<double>(bn2.gamma(o)) / std::sqrt(static_cast<double>(bn2.var(o)) + bn2.eps);
      CHECK(static_cast<double>(grouped.bias(o)) ==
            Approx(-static_cast<double>(bn2.mean(o)) * s + static_cast<double>(bn2.beta(o)))
                .epsilon(tol)
                .margin(tol));
    }
    CHECK(std::holds_alternative<cvk::lrp_linear<T>>(merged[5]));
    // lrp on the network with batch norms = lrp on the merged list, and against the reference on
    // the merged layers; layer_totals counts the merged layers.
    const std::vector<lrp_rule> rules{lrp_rule::z_box({-1.0}, {1.0}),
                                      lrp_rule::zero(),
                                      lrp_rule::zero(),
                                      lrp_rule::alpha_beta(),
                                      lrp_rule::zero(),
                                      lrp_rule::zero(),
                                      lrp_rule::zero(),
                                      lrp_rule::eps(),
                                      lrp_rule::zero()};
    const std::vector<lrp_rule> merged_rules{rules[0], rules[2], rules[3],
                                             rules[5], rules[6], rules[7]};
    const auto with_bn =
        cvk::lrp(layers, input, std::vector<int>{2, 0}, rules, {.data_layout = lay});
    const auto got =
        check_lrp<T>(merged, merged_rules, std::nullopt, x, e, {2, 0}, {.data_layout = lay});
    CHECK(with_bn.relevance == got.relevance);
    CHECK(with_bn.layer_totals == got.layer_totals);
    CHECK(with_bn.layer_totals.extent(1) == 7);
  }
}

TEST_CASE("lrp: batch norm is merged into the conv or linear layer before it", "[saliency][lrp]") {
  SECTION("double") { batch_norm_checks<double>(); }
  SECTION("float") { batch_norm_checks<float>(); }
}

// ---------------------------------------------------------------------------------------------
// The PyTorch goldens.

/// The fixture's network (tests/gen_lrp_fixtures.py) in `lay`: conv 3→4, BN, ReLU, conv 4→4
/// groups 2, BN, ReLU, max pool 2, depthwise conv, ReLU, avg pool 2, flatten, linear 16→3.
std::vector<cvk::lrp_layer<double>> fixture_network(const cvk_test::fixture_file& f, layout lay) {
  const auto conv = [&](const std::string& name, index_t in_per_group, index_t groups) {
    cvk::lrp_conv<double> c;
    c.weight = cvk::tensor<double, 4>(4, in_per_group, 3, 3);
    const auto w = f.table(name + "_weight").values<double>();
    std::copy(w.begin(), w.end(), c.weight.begin());
    c.bias = cvk::tensor<double, 1>(4);
    const auto b = f.table(name + "_bias").values<double>();
    std::copy(b.begin(), b.end(), c.bias.begin());
    c.params = {.padding = {1, 1, 1, 1}, .groups = groups, .data_layout = lay};
    return c;
  };
  const auto vector_of = [&](const std::string& name) {
    const auto v = f.table(name).values<double>();
    cvk::tensor<double, 1> t(static_cast<index_t>(v.size()));
    std::copy(v.begin(), v.end(), t.begin());
    return t;
  };
  const auto bn = [&](const std::string& name) {
    return cvk::lrp_batch_norm<double>{vector_of(name + "_mean"), vector_of(name + "_var"),
                                       vector_of(name + "_gamma"), vector_of(name + "_beta"), 1e-5};
  };
  cvk::lrp_linear<double> linear{cvk::tensor<double, 2>(3, 16), vector_of("linear_bias")};
  const auto w = f.table("linear_weight").values<double>();
  // torch flattens 4×2×2 in c, h, w order; cvk's NHWC network in h, w, c order.
  for (index_t k = 0; k < 3; ++k) {
    for (index_t c = 0; c < 4; ++c) {
      for (index_t p = 0; p < 4; ++p) {
        const index_t column = lay == layout::nchw ? c * 4 + p : p * 4 + c;
        linear.weight(k, column) = w[at(k * 16 + c * 4 + p)];
      }
    }
  }
  return {conv("conv1", 3, 1),
          bn("bn1"),
          cvk::lrp_relu{},
          conv("conv2", 2, 2),
          bn("bn2"),
          cvk::lrp_relu{},
          cvk::lrp_max_pool{{.kernel = {2, 2}, .data_layout = lay}},
          conv("conv3", 1, 4),
          cvk::lrp_relu{},
          cvk::lrp_avg_pool{{.kernel = {2, 2}, .data_layout = lay}},
          cvk::lrp_flatten{},
          linear};
}

TEST_CASE("lrp: the composites match the PyTorch goldens (zennit-style VJPs, float64)",
          "[saliency][lrp]") {
  const cvk_test::fixture_file f(cvk_test::test_data_path("lrp_torch.txt"));
  const extents4 e{2, 3, 8, 8};
  const auto x = f.table("x").values<double>();
  const auto targets = f.table("targets").values<int>();
  const auto low = f.table("low").values<double>();
  const auto high = f.table("high").values<double>();
  const auto want_scores = f.table("scores").values<double>();
  struct named {
    const char* name;
    cvk::lrp_composite composite;
  };
  cvk::lrp_composite proportional = cvk::lrp_composite::epsilon_plus_flat();
  proportional.max_pool = cvk::lrp_max_pool_rule::proportional;
  const std::vector<named> composites{
      {"epsilon_gamma_box", cvk::lrp_composite::epsilon_gamma_box(low, high)},
      {"epsilon_plus_flat", cvk::lrp_composite::epsilon_plus_flat()},
      {"epsilon_plus_flat_proportional", proportional},
      {"epsilon_alpha2_beta1_flat", cvk::lrp_composite::epsilon_alpha2_beta1_flat()},
      {"kohlbrenner", cvk::lrp_composite::kohlbrenner(low, high)}};
  for (const layout lay : layouts) {
    const auto layers = fixture_network(f, lay);
    const auto input = to_layout<double>(x, e, lay);
    const auto scores = cvk::lrp_forward(layers, input, {.data_layout = lay});
    for (index_t k = 0; k < 6; ++k) {
      CHECK(scores.data()[k] == Approx(want_scores[at(k)]).epsilon(1e-12));
    }
    for (const auto& c : composites) {
      for (const auto start : {cvk::lrp_start::score, cvk::lrp_start::one}) {
        const std::string key =
            std::string(c.name) + (start == cvk::lrp_start::score ? "_score" : "_one");
        INFO(name_of(lay) << " " << key);
        const auto got =
            cvk::lrp(layers, input, targets, c.composite, {.data_layout = lay, .start = start});
        const auto want = f.table("relevance_" + key).values<double>();
        const auto totals = f.table("totals_" + key).values<double>();
        REQUIRE(got.layer_totals.extent(1) == 11);
        for (index_t n = 0; n < 2; ++n) {
          double scale = 0;
          for (index_t j = 0; j < 192; ++j)
            scale = std::max(scale, std::fabs(want[at(n * 192 + j)]));
          index_t bad = 0;
          for (index_t ch = 0; ch < 3; ++ch) {
            for (index_t y = 0; y < 8; ++y) {
              for (index_t xx = 0; xx < 8; ++xx) {
                const double w = want[at(n * 192 + (ch * 8 + y) * 8 + xx)];
                const double v = element(got.relevance, lay, n, ch, y, xx);
                if (std::fabs(v - w) > 1e-10 * scale && bad++ < 3) {
                  INFO("image " << n << " (c, y, x) = (" << ch << ", " << y << ", " << xx
                                << "): cvk " << v << ", torch " << w);
                  CHECK(std::fabs(v - w) <= 1e-10 * scale);
                }
              }
            }
          }
          CHECK(bad == 0);
          for (index_t l = 0; l < 11; ++l) {
            INFO("image " << n << " boundary " << l);
            CHECK(got.layer_totals(n, l) == Approx(totals[at(n * 11 + l)]).epsilon(1e-10));
          }
        }
      }
    }
  }
}

TEST_CASE("lrp: lrp_rules gives each layer its composite's rule", "[saliency][lrp]") {
  const cvk_test::fixture_file f(cvk_test::test_data_path("lrp_torch.txt"));
  const auto layers = fixture_network(f, layout::nchw);
  const auto kinds = [&](const cvk::lrp_composite& c) {
    const auto rules = cvk::lrp_rules(layers, c);
    REQUIRE(rules.size() == layers.size());
    // The conv / linear layers: 0, 3, 7 (convs) and 11 (linear).
    return std::array<lrp_rule, 4>{rules[0], rules[3], rules[7], rules[11]};
  };
  const auto box =
      kinds(cvk::lrp_composite::epsilon_gamma_box({-1.0, -2.0, -3.0}, {1.0, 2.0, 3.0}));
  CHECK(box[0].kind == lrp_rule_kind::z_box);
  CHECK(box[0].low == std::vector<double>{-1.0, -2.0, -3.0});
  CHECK(box[0].high == std::vector<double>{1.0, 2.0, 3.0});
  CHECK(box[1].kind == lrp_rule_kind::gamma);
  CHECK(box[1].gamma == 0.25);
  CHECK(box[2].kind == lrp_rule_kind::gamma);
  CHECK(box[3].kind == lrp_rule_kind::epsilon);
  CHECK(box[3].epsilon == 1e-6);
  const auto plus = kinds(cvk::lrp_composite::epsilon_plus_flat());
  CHECK(plus[0].kind == lrp_rule_kind::flat);
  CHECK((plus[1].kind == lrp_rule_kind::alpha_beta && plus[1].alpha == 1.0 && plus[1].beta == 0.0));
  CHECK((plus[2].kind == lrp_rule_kind::alpha_beta && plus[2].alpha == 1.0 && plus[2].beta == 0.0));
  CHECK(plus[3].kind == lrp_rule_kind::epsilon);
  const auto ab = kinds(cvk::lrp_composite::epsilon_alpha2_beta1_flat());
  CHECK(ab[0].kind == lrp_rule_kind::flat);
  CHECK((ab[1].kind == lrp_rule_kind::alpha_beta && ab[1].alpha == 2.0 && ab[1].beta == 1.0));
  CHECK(ab[3].kind == lrp_rule_kind::epsilon);
  const auto kb = kinds(cvk::lrp_composite::kohlbrenner({0.0}, {1.0}));
  CHECK(kb[0].kind == lrp_rule_kind::z_box);
  CHECK(kb[1].kind == lrp_rule_kind::gamma);
  CHECK(kb[2].kind == lrp_rule_kind::gamma);
  CHECK(kb[3].kind == lrp_rule_kind::zero);
}

TEST_CASE("lrp: results are identical for 1, 2 and 3 threads", "[saliency][lrp]") {
  const cvk_test::fixture_file f(cvk_test::test_data_path("lrp_torch.txt"));
  const auto low = f.table("low").values<double>();
  const auto high = f.table("high").values<double>();
  const auto x = f.table("x").values<double>();
  for (const layout lay : layouts) {
    const auto layers = fixture_network(f, lay);
    // The same network in float.
    cvk::rng gen(7, 14);
    std::vector<cvk::lrp_layer<float>> float_layers = chain_network<float>(
        gen, lay, true,
        cvk::lrp_layer<float>{cvk::lrp_max_pool{{.kernel = {2, 2}, .data_layout = lay}}});
    const auto float_x = random_values<float>(gen, 2 * 2 * 6 * 6, -1.0, 1.0);
    const auto float_input = to_layout<float>(float_x, {2, 2, 6, 6}, lay);
    const auto input = to_layout<double>(x, {2, 3, 8, 8}, lay);
    INFO(name_of(lay));
    const std::array<cvk::lrp_composite, 2> composites{
        cvk::lrp_composite::epsilon_gamma_box(low, high),
        cvk::lrp_composite::epsilon_alpha2_beta1_flat()};
    const std::array<cvk::lrp_composite, 2> float_composites{
        cvk::lrp_composite::kohlbrenner({-1.0}, {1.0}),
        {.first = lrp_rule::flat(),
         .conv = lrp_rule::alpha_beta(),
         .max_pool = cvk::lrp_max_pool_rule::proportional}};
    for (std::size_t c = 0; c < composites.size(); ++c) {
      const auto one = cvk::lrp(layers, input, std::vector<int>{0, 1}, composites[c],
                                {.data_layout = lay, .threads = 1});
      const auto float_one = cvk::lrp(float_layers, float_input, std::vector<int>{2, 1},
                                      float_composites[c], {.data_layout = lay, .threads = 1});
      for (const int threads : {2, 3}) {
        const auto many = cvk::lrp(layers, input, std::vector<int>{0, 1}, composites[c],
                                   {.data_layout = lay, .threads = threads});
        CHECK(many.relevance == one.relevance);
        CHECK(many.layer_totals == one.layer_totals);
        const auto float_many =
            cvk::lrp(float_layers, float_input, std::vector<int>{2, 1}, float_composites[c],
                     {.data_layout = lay, .threads = threads});
        CHECK(float_many.relevance == float_one.relevance);
        CHECK(float_many.layer_totals == float_one.layer_totals);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Errors.

/// The message of the cvk::error `f` throws ("" if none).
template <class F>
std::string message_of(F&& f) {
  try {
    f();
  } catch (const cvk::error& e) {
    return e.what();
  }
  return "";
}

TEST_CASE("lrp: every error of the contract names the layer", "[saliency][lrp]") {
  using Catch::Matchers::Contains;
  using layers_t = std::vector<cvk::lrp_layer<double>>;
  cvk::rng gen(9, 14);
  const layout lay = layout::nchw;
  const auto conv = random_conv<double>(gen, {.c = 2, .o = 3, .kh = 3, .kw = 3}, lay);  // 5×5 → 3×3
  const auto linear = random_linear<double>(gen, 4, 27);
  const cvk::tensor<double, 4> x(extents4{2, 2, 5, 5}, 0.5);
  const std::vector<int> targets{0, 3};
  const layers_t good{conv, cvk::lrp_relu{}, cvk::lrp_flatten{}, linear};
  const std::vector<lrp_rule> rules(4, lrp_rule::eps());
  REQUIRE_NOTHROW(cvk::lrp(good, x, targets, rules));
  const auto run = [&](const layers_t& layers, const std::vector<lrp_rule>& r) {
    return message_of([&] { (void)cvk::lrp(layers, x, targets, r); });
  };
  const auto with_rule = [&](const lrp_rule& r) {
    return message_of([&] { (void)cvk::lrp(good, x, targets, std::vector<lrp_rule>{r, r, r, r}); });
  };

  SECTION("an empty layer list") {
    CHECK_THROWS_AS(cvk::lrp(layers_t{}, x, targets, std::vector<lrp_rule>{}),
                    cvk::invalid_argument);
    CHECK_THAT(run({}, {}), Contains("empty"));
    CHECK_THROWS_AS(cvk::lrp_forward(layers_t{}, x), cvk::invalid_argument);
  }
  SECTION("layers whose shapes do not chain") {
    // A conv reading 3 channels of a 2-channel image.
    const auto wide = random_conv<double>(gen, {.c = 3, .o = 3, .kh = 3, .kw = 3}, lay);
    const layers_t channels{wide, cvk::lrp_flatten{}, linear};
    CHECK_THROWS_AS(cvk::lrp(channels, x, targets, std::vector<lrp_rule>(3)), cvk::shape_error);
    CHECK_THAT(run(channels, std::vector<lrp_rule>(3)),
               Contains("layer 0 (conv)") && Contains("2×2×5×5"));
    // A linear layer reading 20 features of 27.
    const layers_t features{conv, cvk::lrp_relu{}, cvk::lrp_flatten{},
                            random_linear<double>(gen, 4, 20)};
    CHECK_THROWS_AS(cvk::lrp(features, x, targets, rules), cvk::shape_error);
    CHECK_THAT(run(features, rules), Contains("layer 3 (linear)") && Contains("2×27×1×1"));
    // A linear layer on an unflattened activation.
    const layers_t unflattened{conv, random_linear<double>(gen, 4, 27)};
    CHECK_THAT(run(unflattened, std::vector<lrp_rule>(2)), Contains("layer 1 (linear)"));
    // A window larger than the padded input: the conv's and the pooling's.
    const layers_t big_kernel{conv,
                              random_conv<double>(gen, {.c = 3, .o = 3, .kh = 4, .kw = 4}, lay),
                              cvk::lrp_flatten{}, linear};
    CHECK_THROWS_AS(cvk::lrp(big_kernel, x, targets, rules), cvk::shape_error);
    CHECK_THAT(run(big_kernel, rules), Contains("layer 1 (conv)") && Contains("2×3×3×3"));
    const layers_t big_pool{conv, cvk::lrp_max_pool{{.kernel = {4, 4}}}, cvk::lrp_flatten{},
                            linear};
    CHECK_THROWS_AS(cvk::lrp(big_pool, x, targets, rules), cvk::shape_error);
    CHECK_THAT(run(big_pool, rules), Contains("layer 1 (max_pool)"));
    const layers_t big_avg{conv, cvk::lrp_relu{}, cvk::lrp_avg_pool{{.kernel = {3, 5}}},
                           cvk::lrp_flatten{}, random_linear<double>(gen, 4, 3)};
    CHECK_THAT(run(big_avg, std::vector<lrp_rule>(5)), Contains("layer 2 (avg_pool)"));
    // lrp_forward checks the same.
    CHECK_THROWS_AS(cvk::lrp_forward(features, x), cvk::shape_error);
    CHECK_THAT(message_of([&] { (void)cvk::lrp_forward(features, x); }),
               Contains("layer 3 (linear)"));
  }
  SECTION("batch norms out of place or of the wrong size") {
    cvk::rng bn_gen(3, 14);
    const auto bn3 = random_batch_norm<double>(bn_gen, 3);
    const layers_t first{random_batch_norm<double>(bn_gen, 2), conv, cvk::lrp_flatten{}, linear};
    CHECK_THROWS_AS(cvk::lrp(first, x, targets, rules), cvk::invalid_argument);
    CHECK_THAT(run(first, rules), Contains("layer 0 (batch_norm)"));
    const layers_t after_relu{conv, cvk::lrp_relu{}, bn3, cvk::lrp_flatten{}, linear};
    CHECK_THAT(run(after_relu, std::vector<lrp_rule>(5)),
               Contains("layer 2 (batch_norm)") && Contains("relu"));
    const layers_t twice{conv, bn3, bn3, cvk::lrp_flatten{}, linear};
    CHECK_THAT(run(twice, std::vector<lrp_rule>(5)), Contains("layer 2 (batch_norm)"));
    const layers_t wrong_size{conv, random_batch_norm<double>(bn_gen, 4), cvk::lrp_flatten{},
                              linear};
    CHECK_THROWS_AS(cvk::lrp(wrong_size, x, targets, rules), cvk::shape_error);
    CHECK_THAT(run(wrong_size, rules), Contains("layer 1 (batch_norm)") && Contains("3"));
    CHECK_THAT(message_of([&] { (void)cvk::lrp_merge_batch_norm(wrong_size); }),
               Contains("layer 1 (batch_norm)"));
    CHECK_THAT(message_of([&] { (void)cvk::lrp_forward(after_relu, x); }),
               Contains("layer 2 (batch_norm)"));
  }
  SECTION("a conv with a fused activation or another layout") {
    auto fused = conv;
    fused.params.act = cvk::activation::relu;
    const layers_t act{fused, cvk::lrp_flatten{}, linear};
    CHECK_THROWS_AS(cvk::lrp(act, x, targets, std::vector<lrp_rule>(3)), cvk::invalid_argument);
    CHECK_THAT(run(act, std::vector<lrp_rule>(3)), Contains("layer 0 (conv)") && Contains("act"));
    auto nhwc = conv;
    nhwc.params.data_layout = layout::nhwc;
    const layers_t other{cvk::lrp_relu{}, nhwc, cvk::lrp_flatten{}, linear};
    CHECK_THROWS_AS(cvk::lrp(other, x, targets, rules), cvk::invalid_argument);
    CHECK_THAT(run(other, rules), Contains("layer 1 (conv)") && Contains("data_layout"));
  }
  SECTION("a last output that is not one score per class") {
    const layers_t spatial{conv, cvk::lrp_relu{}};
    CHECK_THROWS_AS(cvk::lrp(spatial, x, targets, std::vector<lrp_rule>(2)), cvk::shape_error);
    CHECK_THAT(run(spatial, std::vector<lrp_rule>(2)), Contains("N×K×1×1") && Contains("2×3×3×3"));
    CHECK_THROWS_AS(cvk::lrp_forward(spatial, x), cvk::shape_error);
  }
  SECTION("targets of the wrong length or outside [0, K)") {
    CHECK_THROWS_AS(cvk::lrp(good, x, std::vector<int>{0}, rules), cvk::shape_error);
    CHECK_THAT(message_of([&] {
                 (void)cvk::lrp(good, x, std::vector<int>{0, 1, 2}, rules);
               }),
               Contains("targets"));
    CHECK_THAT(message_of([&] {
                 (void)cvk::lrp(good, x, std::vector<int>{0, 4}, rules);
               }),
               Contains("targets") && Contains("4"));
    CHECK_THAT(message_of([&] {
                 (void)cvk::lrp(good, x, std::vector<std::int64_t>{-1, 0}, rules);
               }),
               Contains("targets") && Contains("-1"));
    CHECK_THROWS_AS(cvk::lrp(good, x, std::vector<int>{0, 4}, rules), cvk::out_of_range);
    CHECK_THROWS_AS(cvk::lrp(good, x, std::vector<std::int64_t>{-1, 0}, rules), cvk::out_of_range);
  }
  SECTION("rules of the wrong count") {
    CHECK_THROWS_AS(cvk::lrp(good, x, targets, std::vector<lrp_rule>(3)), cvk::invalid_argument);
    CHECK_THAT(run(good, std::vector<lrp_rule>(5)), Contains("rules") && Contains("4"));
  }
  SECTION("rule constants out of their domain") {
    CHECK_THROWS_AS(
        cvk::lrp(good, x, targets, std::vector<lrp_rule>(4, lrp_rule::alpha_beta(2.0, 2.0))),
        cvk::invalid_argument);
    CHECK_THAT(with_rule(lrp_rule::alpha_beta(2.0, 2.0)),
               Contains("layer 0 (conv)") && Contains("alpha"));
    CHECK_THAT(with_rule(lrp_rule::alpha_beta(0.5, -0.5)),
               Contains("layer 0 (conv)") && Contains("beta"));
    CHECK_THAT(with_rule(lrp_rule::alpha_beta(-0.5, -1.5)), Contains("layer 0 (conv)"));
    CHECK_THAT(with_rule(lrp_rule::eps(-1e-3)), Contains("layer 0 (conv)") && Contains("epsilon"));
    CHECK_THAT(with_rule(lrp_rule::eps(std::nan(""))), Contains("epsilon"));
    CHECK_THAT(with_rule(lrp_rule::gamma_rule(-0.25)),
               Contains("layer 0 (conv)") && Contains("gamma"));
    CHECK_THAT(with_rule(lrp_rule::gamma_rule(std::nan(""))), Contains("gamma"));
    // z_box bounds: 1 or C values, low <= high; the linear layer (index 3) reads 27 channels.
    CHECK_THAT(with_rule(lrp_rule::z_box({0.0, 0.0, 0.0}, {1.0})),
               Contains("layer 0 (conv)") && Contains("low"));
    CHECK_THAT(with_rule(lrp_rule::z_box({0.0}, {1.0, 2.0, 3.0})), Contains("layer 0 (conv)"));
    CHECK_THAT(with_rule(lrp_rule::z_box({0.0, 2.0}, {1.0, 1.0})),
               Contains("layer 0 (conv)") && Contains("high"));
    const std::vector<lrp_rule> linear_box{lrp_rule::eps(), lrp_rule::eps(), lrp_rule::eps(),
                                           lrp_rule::z_box({0.0, 0.0}, {1.0})};
    CHECK_THAT(run(good, linear_box), Contains("layer 3 (linear)"));
    // Rules of layers that are neither conv nor linear are not read.
    std::vector<lrp_rule> unread = rules;
    unread[1] = lrp_rule::alpha_beta(5.0, 1.0);
    CHECK_NOTHROW(cvk::lrp(good, x, targets, unread));
  }
  SECTION("proportional max pooling with dilation") {
    const layers_t dilated{
        conv, cvk::lrp_max_pool{{.kernel = {2, 2}, .stride = {1, 1}, .dilation = {2, 1}}},
        cvk::lrp_flatten{}, random_linear<double>(gen, 4, 6)};
    cvk::lrp_composite composite{.max_pool = cvk::lrp_max_pool_rule::proportional};
    CHECK_THROWS_AS(cvk::lrp(dilated, x, targets, composite), cvk::invalid_argument);
    CHECK_THAT(message_of([&] { (void)cvk::lrp(dilated, x, targets, composite); }),
               Contains("layer 1 (max_pool)") && Contains("dilation"));
    composite.max_pool = cvk::lrp_max_pool_rule::winner_take_all;
    CHECK_NOTHROW(cvk::lrp(dilated, x, targets, composite));
  }
}

}  // namespace

TEST_CASE("lrp: epsilon = 0 gives 0 where a denominator is 0, never inf or NaN",
          "[saliency][lrp]") {
  using layers_t = std::vector<cvk::lrp_layer<double>>;
  // A linear layer whose pre-activation is exactly 0: z = 1·1 + 1·(−1).
  cvk::tensor<double, 2> w(1, 2);
  w(0, 0) = 1.0;
  w(0, 1) = 1.0;
  const layers_t linear{cvk::lrp_flatten{}, cvk::lrp_linear<double>{w, {}}};
  cvk::tensor<double, 4> x(extents4{1, 2, 1, 1});
  x(0, 0, 0, 0) = 1.0;
  x(0, 1, 0, 0) = -1.0;
  for (const lrp_rule& rule : {lrp_rule::eps(0.0), lrp_rule::zero()}) {
    const auto r = cvk::lrp(linear, x, std::vector<int>{0}, std::vector<lrp_rule>{rule, rule},
                            {.start = cvk::lrp_start::one});
    CHECK(r.relevance(0, 0, 0, 0) == 0.0);
    CHECK(r.relevance(0, 1, 0, 0) == 0.0);
  }
  // ReLU, then an average pool over a window of zeros, with the pooling stabiliser 0.
  cvk::tensor<double, 4> neg(extents4{1, 1, 2, 2}, -1.0);
  neg(0, 0, 0, 0) = -2.0;
  const layers_t pooled{cvk::lrp_relu{}, cvk::lrp_avg_pool{{.kernel = {2, 2}}}};
  const auto r = cvk::lrp(pooled, neg, std::vector<int>{0}, std::vector<lrp_rule>(2),
                          {.start = cvk::lrp_start::one, .epsilon = 0.0});
  for (const double v : r.relevance) CHECK(v == 0.0);
  for (const double v : r.layer_totals) CHECK(std::isfinite(v));
}
