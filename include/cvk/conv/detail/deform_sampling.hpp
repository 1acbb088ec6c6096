// cvk — computer-vision kernels, header-only C++20.
// The sampling half of deform_conv2d: where each (output pixel, kernel tap, offset group) samples
// the input, its 4 bilinear corners and weights (times the mask) computed once, and the channel
// loops that use them — the gather of a column buffer (forward), the dot products that give the
// offset and mask gradients, and the scatter of the column gradient into the input gradient.
//
// Column buffer: one NHWC image of C·KH·KW channels per output pixel, ordered [group][tap][i]
// (i < C/g the channel inside the weight group): the input of a 1×1 conv with g groups whose
// weight is w'[o, t·(C/g) + i] = w[o, i, t / KW, t % KW]. (Tap-major inside a group, rather than
// torchvision's channel-major c·KH·KW + t, so that a run of channels sharing one sample is a run
// of consecutive columns: the gather loads and stores whole vectors.)
// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

#include "../../core/config.hpp"
#include "../../core/strided_view.hpp"
#include "../../detail/simd.hpp"
#include "geometry.hpp"

CVK_BEGIN_NAMESPACE
namespace detail {

/// Everything the deformable kernels need beyond the conv2d geometry.
struct deform_geometry {
  conv2d_geometry conv;           // N, C, H, W, O, KH, KW, groups, stride, padding, dilation
  index_t offset_groups = 1;      // og
  index_t taps = 1;               // K = KH·KW
  index_t channels_per_og = 0;    // C / og
  index_t columns = 0;            // C·K, the column buffer's channels
  index_t columns_per_group = 0;  // (C / g)·K
  bool masked = false;
};

/// A run [c0, c1) of input channels in one offset group and one weight group: the channels that
/// share a sample and occupy consecutive columns.
struct deform_segment {
  index_t c0 = 0, c1 = 0, offset_group = 0, group = 0;
};

/// The partition of [0, C) by the boundaries of offset groups and weight groups, in channel order.
inline std::vector<deform_segment> deform_segments(const deform_geometry& d) {
  std::vector<deform_segment> segments;
  const index_t per_group = d.conv.in_per_group;
  index_t c = 0;
  while (c < d.conv.in_channels) {
    const index_t og = c / d.channels_per_og, grp = c / per_group;
    const index_t end = std::min((og + 1) * d.channels_per_og, (grp + 1) * per_group);
    segments.push_back({c, end, og, grp});
    c = end;
  }
  return segments;
}

/// Column of channel c at tap t (inside a pixel's C·K columns).
inline index_t deform_column(const deform_geometry& d, index_t group, index_t t, index_t c) {
  return group * d.columns_per_group + t * d.conv.in_per_group + (c - group * d.conv.in_per_group);
}

/// One sample: the pixel index y·W + x of each bilinear corner in its image, or −1 for a corner
/// outside the image (read from a pixel of zeros, scattered into a discarded pixel), the corner
/// weights times the mask, and the fractional parts and the mask for the coordinate gradients.
template <class T>
struct deform_sample {
  index_t corner[4];  // (y0, x0), (y0, x0 + 1), (y0 + 1, x0), (y0 + 1, x0 + 1)
  T weight[4];  // mask · (1−ly)(1−lx), mask · (1−ly)lx, mask · ly(1−lx), mask · ly·lx
  T ly, lx, mask;
};

/// The sample at (y, x) of image n (torchvision's rule): nothing (every corner the zero pixel,
/// weights 0) unless −1 < y < H and −1 < x < W; inside, corners outside the image contribute 0.
/// A NaN coordinate gives NaN weights on zero corners, so the sample's value and its gradients are
/// NaN and nothing is scattered into the input gradient. ±inf and huge coordinates fail the range
/// test before any conversion to an integer.
template <class T>
deform_sample<T> make_deform_sample(const conv2d_geometry& g, T y, T x, T mask) {
  deform_sample<T> s;
  constexpr index_t zero_pixel = -1;
  const T h = static_cast<T>(g.in_height), w = static_cast<T>(g.in_width);
  s.mask = mask;
  if (!(y > T(-1) && y < h && x > T(-1) && x < w)) {
    const T nan_or_zero = (y != y || x != x) ? y + x : T(0);
    for (int k = 0; k < 4; ++k) {
      s.corner[k] = zero_pixel;
      s.weight[k] = nan_or_zero;
    }
    s.ly = s.lx = nan_or_zero;
    return s;
  }
  const T fy = std::floor(y), fx = std::floor(x);
  const index_t y0 = static_cast<index_t>(fy), x0 = static_cast<index_t>(fx);  // in [−1, H)
  s.ly = y - fy;
  s.lx = x - fx;
  const T hy = T(1) - s.ly, hx = T(1) - s.lx;
  const bool top = y0 >= 0, bottom = y0 + 1 < g.in_height;
  const bool left = x0 >= 0, right = x0 + 1 < g.in_width;
  s.corner[0] = top && left ? y0 * g.in_width + x0 : zero_pixel;
  s.corner[1] = top && right ? y0 * g.in_width + x0 + 1 : zero_pixel;
  s.corner[2] = bottom && left ? (y0 + 1) * g.in_width + x0 : zero_pixel;
  s.corner[3] = bottom && right ? (y0 + 1) * g.in_width + x0 + 1 : zero_pixel;
  s.weight[0] = mask * (hy * hx);
  s.weight[1] = mask * (hy * s.lx);
  s.weight[2] = mask * (s.ly * hx);
  s.weight[3] = mask * (s.ly * s.lx);
  return s;
}

/// Reads the K·og samples of output pixel (n, oy, ox) into `out`, tap-major ([t][og]).
/// `offset`, `mask`: (n, c, h, w)-ordered views; mask.data() null means v1 (mask 1).
template <class T>
void deform_pixel_samples(const deform_geometry& d, const strided_view<const T, 4>& offset,
                          const strided_view<const T, 4>& mask, index_t n, index_t oy, index_t ox,
                          deform_sample<T>* out) {
  const conv2d_geometry& g = d.conv;
  const T* off =
      offset.data() + n * offset.stride(0) + oy * offset.stride(2) + ox * offset.stride(3);
  const index_t oc = offset.stride(1);
  const T* m = mask.data() == nullptr
                   ? nullptr
                   : mask.data() + n * mask.stride(0) + oy * mask.stride(2) + ox * mask.stride(3);
  for (index_t t = 0; t < d.taps; ++t) {
    const index_t ky = t / g.kernel_w, kx = t % g.kernel_w;
    // torchvision: (oy·sh − ph + ky·dh) as T, plus the offset.
    const T base_y = static_cast<T>(oy * g.stride_h - g.pad_top + ky * g.dilation_h);
    const T base_x = static_cast<T>(ox * g.stride_w - g.pad_left + kx * g.dilation_w);
    for (index_t og = 0; og < d.offset_groups; ++og) {
      const index_t channel = (og * d.taps + t) * 2;
      const T dy = off[channel * oc], dx = off[(channel + 1) * oc];
      const T mv = m == nullptr ? T(1) : m[(og * d.taps + t) * mask.stride(1)];
      out[t * d.offset_groups + og] = make_deform_sample<T>(g, base_y + dy, base_x + dx, mv);
    }
  }
}

/// One image's pixels (contiguous channels, pixel k at data + k·channels) and the pixel that
/// corners outside the image use (zeros to read; a discarded pixel to scatter into).
template <class T>
struct deform_image {
  T* data;
  T* outside;
  index_t channels;

  [[nodiscard]] T* pixel(index_t corner) const noexcept {
    return corner < 0 ? outside : data + corner * channels;
  }
};

/// dst[c] = Σ_k weight[k] · corner_k[c] for c < count (the four rows are the corners' channels).
template <class T>
inline void deform_blend(const deform_sample<T>& s, const deform_image<const T>& image,
                         index_t first, index_t count, T* __restrict dst) {
  using V = simd<T>;
  constexpr index_t lanes = V::lanes;
  const T* p0 = image.pixel(s.corner[0]) + first;
  const T* p1 = image.pixel(s.corner[1]) + first;
  const T* p2 = image.pixel(s.corner[2]) + first;
  const T* p3 = image.pixel(s.corner[3]) + first;
  const auto w0 = V::splat(s.weight[0]), w1 = V::splat(s.weight[1]), w2 = V::splat(s.weight[2]),
             w3 = V::splat(s.weight[3]);
  index_t c = 0;
  for (; c + lanes <= count; c += lanes) {
    auto v = V::load(p0 + c) * w0;
    v = V::fma(w1, V::load(p1 + c), v);
    v = V::fma(w2, V::load(p2 + c), v);
    v = V::fma(w3, V::load(p3 + c), v);
    V::store(dst + c, v);
  }
  for (; c < count; ++c) {
    T v = p0[c] * s.weight[0];
    v = std::fma(s.weight[1], p1[c], v);
    v = std::fma(s.weight[2], p2[c], v);
    v = std::fma(s.weight[3], p3[c], v);
    dst[c] = v;
  }
}

/// Writes the C·K columns of one output pixel from its K·og samples ([t][og]) in `image`.
template <class T>
void deform_gather_pixel(const deform_geometry& d, const std::vector<deform_segment>& segments,
                         const deform_sample<T>* samples, const deform_image<const T>& image,
                         T* columns) {
  for (index_t t = 0; t < d.taps; ++t) {
    for (const deform_segment& seg : segments) {
      deform_blend<T>(samples[t * d.offset_groups + seg.offset_group], image, seg.c0,
                      seg.c1 - seg.c0, columns + deform_column(d, seg.group, t, seg.c0));
    }
  }
}

/// Σ_c g[c]·corner_k[c] for the four corners over one run of channels, added to acc[0..3]
/// (vector partial sums, reduced in a fixed lane order, then the tail).
template <class T>
inline void deform_corner_dots(const deform_sample<T>& s, const deform_image<const T>& image,
                               index_t first, index_t count, const T* grad, T acc[4]) {
  using V = simd<T>;
  constexpr index_t lanes = V::lanes;
  const T* p[4] = {image.pixel(s.corner[0]) + first, image.pixel(s.corner[1]) + first,
                   image.pixel(s.corner[2]) + first, image.pixel(s.corner[3]) + first};
  auto a0 = V::zero(), a1 = V::zero(), a2 = V::zero(), a3 = V::zero();
  index_t c = 0;
  for (; c + lanes <= count; c += lanes) {
    const auto gv = V::load(grad + c);
    a0 = V::fma(gv, V::load(p[0] + c), a0);
    a1 = V::fma(gv, V::load(p[1] + c), a1);
    a2 = V::fma(gv, V::load(p[2] + c), a2);
    a3 = V::fma(gv, V::load(p[3] + c), a3);
  }
  if (c > 0) {
    for (index_t l = 0; l < lanes; ++l) {
      acc[0] += a0[l];
      acc[1] += a1[l];
      acc[2] += a2[l];
      acc[3] += a3[l];
    }
  }
  for (; c < count; ++c) {
    for (int k = 0; k < 4; ++k) acc[k] = std::fma(grad[c], p[k][c], acc[k]);
  }
}

/// The offset and mask gradients of one sample from its corner dot products
/// A, B, C, D = Σ_c gcol[c]·v_k[c] (bilinear value = Σ w_k v_k with w = (1−ly)(1−lx), ...):
///   ∂/∂y = mask·((1−lx)(C − A) + lx(D − B)),  ∂/∂x = mask·((1−ly)(B − A) + ly(D − C)),
///   ∂/∂mask = (1−ly)(1−lx)A + (1−ly)lx·B + ly(1−lx)C + ly·lx·D.
template <class T>
struct deform_sample_grad {
  T dy, dx, dmask;
};

template <class T>
deform_sample_grad<T> deform_sample_gradient(const deform_sample<T>& s, const T acc[4]) {
  const T hy = T(1) - s.ly, hx = T(1) - s.lx;
  deform_sample_grad<T> r;
  r.dy = s.mask * (hx * (acc[2] - acc[0]) + s.lx * (acc[3] - acc[1]));
  r.dx = s.mask * (hy * (acc[1] - acc[0]) + s.ly * (acc[3] - acc[2]));
  r.dmask = hy * hx * acc[0] + hy * s.lx * acc[1] + s.ly * hx * acc[2] + s.ly * s.lx * acc[3];
  return r;
}

/// grad_image[corner_k][c] += weight_k · grad[c] for c < count, the four corners in order.
template <class T>
inline void deform_scatter(const deform_sample<T>& s, const deform_image<T>& grad_image,
                           index_t first, index_t count, const T* __restrict grad) {
  using V = simd<T>;
  constexpr index_t lanes = V::lanes;
  for (int k = 0; k < 4; ++k) {
    T* __restrict dst = grad_image.pixel(s.corner[k]) + first;
    const auto w = V::splat(s.weight[k]);
    index_t c = 0;
    for (; c + lanes <= count; c += lanes) {
      V::store(dst + c, V::fma(w, V::load(grad + c), V::load(dst + c)));
    }
    for (; c < count; ++c) dst[c] = std::fma(s.weight[k], grad[c], dst[c]);
  }
}

}  // namespace detail
CVK_END_NAMESPACE
