// cvk — computer-vision kernels, header-only C++20.
// The kernels of the CAM family (cvk/saliency/cam.hpp): per-channel sums over the pixels of a
// plane (the statistics Grad-CAM, Grad-CAM++ and XGrad-CAM weigh channels by) and the channel
// sums that turn channel weights or element-wise terms into one map per image. Both read
// (n, c, h, w)-ordered views of any strides, with fast paths for contiguous planes (NCHW) and
// contiguous channels (NHWC), and run over work blocks fixed by the shape alone, so results are
// bit-identical for any thread count.
// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <cstddef>
#include <initializer_list>
#include <vector>

#include "../../core/config.hpp"
#include "../../core/parallel.hpp"
#include "../../core/strided_view.hpp"
#include "../../detail/checks.hpp"

CVK_BEGIN_NAMESPACE
namespace detail {

/// Activations and gradients of one CAM call, (n, c, h, w)-ordered; `g` is `a` again for the
/// methods without gradients (their terms never read it).
template <class T>
struct cam_tensors {
  strided_view<const T, 4> a, g;
};

/// Partial sums of every long sum over pixels or channels: fixed, so that the rounding of a
/// result depends neither on the thread count nor on the build's vector width.
inline constexpr index_t cam_lanes = 16;  // lane_sum's pairwise tree is written for 16
/// Pixels of one map task (its accumulators, on the stack).
inline constexpr index_t cam_pixel_block = 2048;
/// Channels are split across map tasks only while fewer than this many (image, pixel block)
/// tasks exist, and only into pieces of at least cam_task_elements elements.
inline constexpr index_t cam_min_tasks = 32;
inline constexpr index_t cam_task_elements = 8192;
/// Fewest channels of a weight task (64 contiguous channels of one NHWC pixel fill 4 cache
/// lines of float).
inline constexpr index_t cam_min_weight_channels = 256;

/// Elements of work (activations and gradients read) per thread worth starting: an OpenMP
/// fork-join costs about what summing this many values does. The plans above do not depend on
/// the thread count, so neither do the results.
inline constexpr index_t cam_elements_per_thread = index_t{1} << 17;

/// The threads a pass over N images of K channels of Z pixels (2·N·K·Z values read) runs on:
/// at most `threads` (0 = all), at most one per cam_elements_per_thread values, at least 1.
inline int cam_threads(int threads, index_t n, index_t k, index_t z) noexcept {
  // 2·N·K·Z saturated at 2^40 (a stride-0 view can claim more elements than memory holds).
  constexpr index_t cap = index_t{1} << 40;
  index_t work = 2;
  for (const index_t factor : {n, k, z}) {
    work = work == 0 || factor <= cap / work ? work * factor : cap;
  }
  const index_t useful = std::max<index_t>(1, work / cam_elements_per_thread);
  const int limit = threads > 0 ? threads : max_threads();
  return static_cast<int>(std::min<index_t>(limit, useful));
}

/// max(v, 0) that keeps NaN (numpy's np.maximum, torch's relu propagate it too).
template <class T>
constexpr T cam_relu(T v) noexcept {
  return v < T(0) ? T(0) : v;
}

/// out[q] = Σ_{i < count} term(q, i) for q < Q: for each q, the full blocks of cam_lanes terms in
/// cam_lanes interleaved partial sums (partial l holds the terms i ≡ l mod cam_lanes, in order)
/// combined pairwise, plus the last count mod cam_lanes terms summed in order — a fixed order
/// the compiler can vectorize. The Q sums are independent chains, interleaved for the
/// out-of-order core; each sum's rounding is the same for any Q.
template <class T, index_t Q, class Term>
void lane_sums(index_t count, const Term& term, T* out) {
  // Only constant indices into acc (no partial-lane stores), so it stays in vector registers.
  T acc[static_cast<std::size_t>(Q)][cam_lanes] = {};
  index_t i = 0;
  for (; i + cam_lanes <= count; i += cam_lanes) {
    for (index_t q = 0; q < Q; ++q) {
      for (index_t l = 0; l < cam_lanes; ++l) acc[q][l] += term(q, i + l);
    }
  }
  for (index_t q = 0; q < Q; ++q) {
    T* a = acc[q];
    for (index_t l = 0; l < 8; ++l) a[l] += a[l + 8];
    for (index_t l = 0; l < 4; ++l) a[l] += a[l + 4];
    for (index_t l = 0; l < 2; ++l) a[l] += a[l + 2];
    T tail = 0;
    for (index_t j = i; j < count; ++j) tail += term(q, j);
    out[q] = (a[0] + a[1]) + tail;
  }
}

/// Independent sums computed together by lane_sums.
inline constexpr index_t cam_interleave = 4;

/// Σ_{i < count} term(i) in lane_sums' order.
template <class T, class Term>
T lane_sum(index_t count, const Term& term) {
  T result;
  lane_sums<T, 1>(
      count, [&](index_t, index_t i) { return term(i); }, &result);
  return result;
}

/// Memory order of a call's tensors: `planes` when every (n, c) plane of both is contiguous
/// (NCHW), `pixels` when the channels of each pixel are contiguous and the pixels evenly spaced
/// (NHWC, padded or not), `generic` otherwise (any strides, plain indexing).
enum class cam_order { planes, pixels, generic };

struct cam_memory {
  cam_order order = cam_order::generic;
  index_t pixel_stride_a = 0;  // stride between pixels p = y·W + x (planes: 1)
  index_t pixel_stride_g = 0;
};

/// The stride between consecutive pixels p = y·W + x of v's planes, when there is one.
template <class T>
bool cam_pixel_stride(const strided_view<const T, 4>& v, index_t& stride) noexcept {
  const index_t h = v.extent(2), w = v.extent(3);
  if (h * w <= 1) {
    stride = 1;
    return true;
  }
  if (w == 1) {
    stride = v.stride(2);
    return true;
  }
  if (h == 1 || v.stride(2) == w * v.stride(3)) {
    stride = v.stride(3);
    return true;
  }
  return false;
}

template <class T>
cam_memory cam_memory_of(const cam_tensors<T>& t) noexcept {
  cam_memory m;
  const bool even_a = cam_pixel_stride(t.a, m.pixel_stride_a);
  const bool even_g = cam_pixel_stride(t.g, m.pixel_stride_g);
  if (!even_a || !even_g) return m;
  if (m.pixel_stride_a == 1 && m.pixel_stride_g == 1) {
    m.order = cam_order::planes;
  } else if (t.a.extent(1) <= 1 || (t.a.stride(1) == 1 && t.g.stride(1) == 1)) {
    m.order = cam_order::pixels;
  }
  return m;
}

/// out[k − k0] = Σ_p f(k, a(n, k, p), g(n, k, p)) over the H·W pixels p, for k in [k0, k1).
/// Order: planes — lane_sum over p; pixels — one running sum per channel in pixel order;
/// generic — row-major pixel order.
template <class T, class F>
void cam_channel_sums(const cam_tensors<T>& t, const cam_memory& m, index_t n, index_t k0,
                      index_t k1, const F& f, T* out) {
  const index_t w = t.a.extent(3), hw = t.a.extent(2) * w;
  const T* a0 = t.a.data() + n * t.a.stride(0);
  const T* g0 = t.g.data() + n * t.g.stride(0);
  switch (m.order) {
    case cam_order::planes: {
      const index_t sa = t.a.stride(1), sg = t.g.stride(1);
      for (index_t k = k0; k < k1; ++k) {
        const T* ap = a0 + k * sa;
        const T* gp = g0 + k * sg;
        out[k - k0] = lane_sum<T>(hw, [&](index_t i) { return f(k, ap[i], gp[i]); });
      }
      return;
    }
    case cam_order::pixels: {
      const index_t count = k1 - k0;
      std::fill(out, out + count, T(0));
      for (index_t p = 0; p < hw; ++p) {
        // Channel stride 1 (or a single channel, k0 = 0): channel k0 + j at ap[j].
        const T* ap = a0 + p * m.pixel_stride_a + k0 * t.a.stride(1);
        const T* gp = g0 + p * m.pixel_stride_g + k0 * t.g.stride(1);
        for (index_t j = 0; j < count; ++j) out[j] += f(k0 + j, ap[j], gp[j]);
      }
      return;
    }
    case cam_order::generic:
      for (index_t k = k0; k < k1; ++k) {
        T sum = 0;
        for (index_t y = 0; y < t.a.extent(2); ++y) {
          for (index_t x = 0; x < w; ++x) sum += f(k, t.a(n, k, y, x), t.g(n, k, y, x));
        }
        out[k - k0] = sum;
      }
      return;
  }
}

/// map[i] = Σ_k term(n, k, a(n, k, p0 + i), g(n, k, p0 + i)) over k in [k0, k1), for i < len.
/// Order: planes and generic — channels k0, k0 + 1, … in turn; pixels — lane_sum over k.
template <class T, class Term>
void cam_map_block(const cam_tensors<T>& t, const cam_memory& m, index_t n, index_t p0, index_t len,
                   index_t k0, index_t k1, const Term& term, T* map) {
  const index_t w = t.a.extent(3);
  const T* a0 = t.a.data() + n * t.a.stride(0);
  const T* g0 = t.g.data() + n * t.g.stride(0);
  switch (m.order) {
    case cam_order::planes:
      std::fill(map, map + len, T(0));
      for (index_t k = k0; k < k1; ++k) {
        const T* ap = a0 + k * t.a.stride(1) + p0;
        const T* gp = g0 + k * t.g.stride(1) + p0;
        for (index_t i = 0; i < len; ++i) map[i] += term(n, k, ap[i], gp[i]);
      }
      return;
    case cam_order::pixels: {
      const index_t sa = m.pixel_stride_a, sg = m.pixel_stride_g;
      index_t i = 0;
      for (; i + cam_interleave <= len; i += cam_interleave) {
        const T* ap = a0 + (p0 + i) * sa + k0 * t.a.stride(1);
        const T* gp = g0 + (p0 + i) * sg + k0 * t.g.stride(1);
        lane_sums<T, cam_interleave>(
            k1 - k0,
            [&](index_t q, index_t j) { return term(n, k0 + j, ap[q * sa + j], gp[q * sg + j]); },
            map + i);
      }
      for (; i < len; ++i) {
        const T* ap = a0 + (p0 + i) * sa + k0 * t.a.stride(1);
        const T* gp = g0 + (p0 + i) * sg + k0 * t.g.stride(1);
        map[i] = lane_sum<T>(k1 - k0, [&](index_t j) { return term(n, k0 + j, ap[j], gp[j]); });
      }
      return;
    }
    case cam_order::generic:
      std::fill(map, map + len, T(0));
      for (index_t k = k0; k < k1; ++k) {
        index_t y = p0 / w, x = p0 % w;
        for (index_t i = 0; i < len; ++i) {
          map[i] += term(n, k, t.a(n, k, y, x), t.g(n, k, y, x));
          if (++x == w) {
            x = 0;
            ++y;
          }
        }
      }
      return;
  }
}

/// How the maps of N images of K channels and H·W pixels are cut into tasks: pixel blocks of
/// each image, and channel blocks when there are too few of those to keep the threads busy.
struct cam_map_plan {
  index_t pixel_block = 1, pixel_blocks = 0, channel_block = 0, channel_blocks = 1;
};

inline cam_map_plan plan_cam_map(index_t n, index_t k, index_t hw) noexcept {
  cam_map_plan plan;
  if (n == 0 || hw == 0) return plan;
  plan.pixel_block = std::min(hw, cam_pixel_block);
  plan.pixel_blocks = (hw + plan.pixel_block - 1) / plan.pixel_block;
  const index_t units = n <= cam_min_tasks ? n * plan.pixel_blocks : cam_min_tasks;
  index_t blocks = 1;
  if (units < cam_min_tasks && k > 1) {
    const index_t min_channels = (cam_task_elements + plan.pixel_block - 1) / plan.pixel_block;
    const index_t by_size = k / min_channels;
    const index_t wanted = (cam_min_tasks + units - 1) / units;
    blocks = std::clamp<index_t>(std::min(by_size, wanted), 1, k);
  }
  plan.channel_block = k == 0 ? 0 : (k + blocks - 1) / blocks;
  plan.channel_blocks = k == 0 ? 1 : (k + plan.channel_block - 1) / plan.channel_block;
  return plan;
}

/// out(n, y, x) = [ReLU] Σ_k term(n, k, a(n, k, y, x), g(n, k, y, x)) for every image. Each task
/// sums one pixel block over one channel block; with several channel blocks their partial
/// maps are added in block order afterwards. `out` must not overlap the inputs.
template <class T, class Term>
void cam_run_map(const cam_tensors<T>& t, const Term& term, bool relu, strided_view<T, 3> out,
                 int threads, const char* fn) {
  const index_t n_images = t.a.extent(0), channels = t.a.extent(1);
  const index_t w = t.a.extent(3);
  const index_t hw =
      checked_mul(t.a.extent(2), w, fn, "activations' planes", [&] { return t.a.shape_string(); });
  if (n_images == 0 || hw == 0) return;
  const cam_memory m = cam_memory_of(t);
  const cam_map_plan plan = plan_cam_map(n_images, channels, hw);
  const index_t units = checked_mul(n_images, plan.pixel_blocks, fn, "the map tasks",
                                    [&] { return t.a.shape_string(); });
  const index_t blocks = plan.channel_blocks;
  const int team = cam_threads(threads, n_images, channels, hw);
  std::vector<T> partial;
  if (blocks > 1) {
    // Only when units < cam_min_tasks: at most cam_min_tasks · blocks · cam_pixel_block values.
    partial = checked_vector<T>(units * blocks * plan.pixel_block, fn, "the partial maps",
                                [&] { return t.a.shape_string(); });
  }
  const auto store = [&](index_t image, index_t p0, index_t len, const T* map) {
    index_t y = p0 / w, x = p0 % w;
    for (index_t i = 0; i < len; ++i) {
      out(image, y, x) = relu ? cam_relu(map[i]) : map[i];
      if (++x == w) {
        x = 0;
        ++y;
      }
    }
  };
  const auto unit_pixels = [&](index_t unit, index_t& image, index_t& p0, index_t& len) {
    image = unit / plan.pixel_blocks;
    p0 = (unit % plan.pixel_blocks) * plan.pixel_block;
    len = std::min(plan.pixel_block, hw - p0);
  };
  parallel_for(
      0, units * blocks, 1,
      [&](index_t lo, index_t hi) {
        T map[cam_pixel_block];
        for (index_t task = lo; task < hi; ++task) {
          index_t image = 0, p0 = 0, len = 0;
          unit_pixels(task / blocks, image, p0, len);
          const index_t k0 = (task % blocks) * plan.channel_block;
          const index_t k1 = std::min(channels, k0 + plan.channel_block);
          if (blocks == 1) {
            cam_map_block(t, m, image, p0, len, k0, k1, term, map);
            store(image, p0, len, map);
          } else {
            cam_map_block(t, m, image, p0, len, k0, k1, term,
                          partial.data() + task * plan.pixel_block);
          }
        }
      },
      team);
  if (blocks == 1) return;
  parallel_for(
      0, units, 1,
      [&](index_t lo, index_t hi) {
        T map[cam_pixel_block];
        for (index_t unit = lo; unit < hi; ++unit) {
          index_t image = 0, p0 = 0, len = 0;
          unit_pixels(unit, image, p0, len);
          const T* first = partial.data() + unit * blocks * plan.pixel_block;
          std::copy(first, first + len, map);
          for (index_t b = 1; b < blocks; ++b) {
            const T* block = first + b * plan.pixel_block;
            for (index_t i = 0; i < len; ++i) map[i] += block[i];
          }
          store(image, p0, len, map);
        }
      },
      team);
}

/// Channel weights of every image: weigh(n, k0, k1, out, scratch) writes the weights of
/// channels [k0, k1) of image n to out[0, k1 − k0) (scratch: as many values it may use),
/// called over fixed channel blocks of at least cam_min_weight_channels channels (or all).
/// `weights` and `scratch` hold N·K values, image-major.
template <class T, class Weigh>
void cam_run_weights(index_t n_images, index_t channels, index_t hw, const Weigh& weigh, T* weights,
                     T* scratch, int threads) {
  if (n_images == 0 || channels == 0 || hw == 0) return;
  const index_t by_size = (cam_task_elements + hw - 1) / hw;
  const index_t block = std::min(channels, std::max(cam_min_weight_channels, by_size));
  const index_t blocks = (channels + block - 1) / block;
  const int team = cam_threads(threads, n_images, channels, hw);
  parallel_for(
      0, n_images * blocks, 1,
      [&](index_t lo, index_t hi) {
        for (index_t task = lo; task < hi; ++task) {
          const index_t image = task / blocks;
          const index_t k0 = (task % blocks) * block;
          const index_t k1 = std::min(channels, k0 + block);
          const index_t offset = image * channels + k0;
          weigh(image, k0, k1, weights + offset, scratch == nullptr ? nullptr : scratch + offset);
        }
      },
      team);
}

}  // namespace detail
CVK_END_NAMESPACE
