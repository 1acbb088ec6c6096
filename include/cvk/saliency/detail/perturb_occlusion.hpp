// cvk — computer-vision kernels, header-only C++20.
// Occlusion internals: Captum's sliding-window geometry (first window at 0, ⌈(D − k)/s⌉ + 1
// shifts per axis, the last window cropped at the border), the coverage counts its averaging
// divides by, and the run that feeds the occluded images to a forward callable through
// model_batches, rewriting only the window that changes between two images of one batch slot.
// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <string>
#include <vector>

#include "../../core/config.hpp"
#include "../../core/errors.hpp"
#include "../../core/parallel.hpp"
#include "../../core/strided_view.hpp"
#include "../../detail/checks.hpp"
#include "../model.hpp"

CVK_BEGIN_NAMESPACE
namespace detail {

/// One axis of the occlusion windows: extent D, window k (1 <= k <= D), stride s; windows
/// [j·s, min(j·s + k, D)) for j in [0, count).
struct occlusion_axis {
  index_t extent = 1, window = 1, stride = 1, count = 1;

  [[nodiscard]] index_t begin(index_t j) const noexcept { return j * stride; }
  [[nodiscard]] index_t end(index_t j) const noexcept {
    return std::min(j * stride + window, extent);
  }
  /// Number of windows covering element e: the j in [0, count) with j·s <= e < j·s + k.
  [[nodiscard]] index_t coverage(index_t e) const noexcept {
    const index_t first = e - window + 1 <= 0 ? 0 : (e - window + 1 + stride - 1) / stride;
    const index_t last = std::min(e / stride, count - 1);
    return last >= first ? last - first + 1 : 0;
  }
};

/// The axis of extent `extent` for window `window` and stride `stride`, checked as Captum's
/// Occlusion.attribute asserts: the window fits, and the stride is at most the window unless
/// the window spans the whole axis. `axis` names the field ("channels", "height", "width").
inline occlusion_axis make_occlusion_axis(index_t extent, index_t window, index_t stride,
                                          const char* axis, const std::string& input_shape,
                                          const char* fn) {
  const std::string field = std::string(axis);
  if (window < 1) {
    CVK_THROW(invalid_argument, std::string(fn) + ": window." + field + " must be >= 1" +
                                    (field == "channels" ? " (or 0 for every channel)" : "") +
                                    ", got " + std::to_string(window));
  }
  if (window > extent) {
    CVK_THROW(invalid_argument, std::string(fn) + ": window." + field + " = " +
                                    std::to_string(window) + " is larger than the input's " +
                                    field + " (" + std::to_string(extent) + ") for input " +
                                    input_shape);
  }
  if (stride < 1) {
    CVK_THROW(invalid_argument, std::string(fn) + ": strides." + field + " must be >= 1, got " +
                                    std::to_string(stride));
  }
  if (stride > window && window < extent) {
    CVK_THROW(invalid_argument, std::string(fn) + ": strides." + field + " = " +
                                    std::to_string(stride) + " must not exceed window." + field +
                                    " = " + std::to_string(window) +
                                    " (elements between windows would never be occluded)");
  }
  occlusion_axis a;
  a.extent = extent;
  a.window = window;
  a.stride = stride;
  a.count = (extent - window + stride - 1) / stride + 1;
  return a;
}

/// The windows of one image: channel fastest, then height, then width (Captum's feature
/// numbering over (C, H, W)).
struct occlusion_geometry {
  std::array<occlusion_axis, 3> axes;  // c, h, w
  index_t windows = 1;                 // per image

  struct box {
    std::array<index_t, 3> begin, end;
  };
  [[nodiscard]] box window(index_t k) const noexcept {
    box b{};
    for (std::size_t a = 0; a < 3; ++a) {
      const index_t j = k % axes[a].count;
      k /= axes[a].count;
      b.begin[a] = axes[a].begin(j);
      b.end[a] = axes[a].end(j);
    }
    return b;
  }
};

/// The windows of occlusion_params over an image of {C, H, W}.
template <class Window, class Strides>
occlusion_geometry make_occlusion_geometry(const std::array<index_t, 3>& chw, const Window& w,
                                           const Strides& s, const std::string& input_shape,
                                           const char* fn) {
  occlusion_geometry g;
  const index_t channels = w.channels == 0 ? chw[0] : w.channels;
  g.axes[0] = make_occlusion_axis(chw[0], channels, s.channels, "channels", input_shape, fn);
  g.axes[1] = make_occlusion_axis(chw[1], w.height, s.height, "height", input_shape, fn);
  g.axes[2] = make_occlusion_axis(chw[2], w.width, s.width, "width", input_shape, fn);
  const auto describe = [&] { return input_shape; };
  g.windows =
      checked_mul(checked_mul(g.axes[0].count, g.axes[1].count, fn, "the windows", describe),
                  g.axes[2].count, fn, "the windows", describe);
  return g;
}

/// Copies elements [b.begin, b.end) of the (c, h, w) image `src` into `dst` (same extents).
template <class T, class S>
void copy_box(strided_view<const S, 3> src, strided_view<T, 3> dst,
              const occlusion_geometry::box& b) noexcept {
  for (index_t c = b.begin[0]; c < b.end[0]; ++c) {
    for (index_t y = b.begin[1]; y < b.end[1]; ++y) {
      for (index_t x = b.begin[2]; x < b.end[2]; ++x) dst(c, y, x) = static_cast<T>(src(c, y, x));
    }
  }
}

/// Copies the whole (c, h, w) image `src` into `dst`, walking dst's memory order.
template <class T, class S>
void copy_image(strided_view<const S, 3> src, strided_view<T, 3> dst) noexcept {
  const index_t channels = src.extent(0), height = src.extent(1), width = src.extent(2);
  if (dst.stride(0) == 1) {  // channels innermost (NHWC batch)
    for (index_t y = 0; y < height; ++y) {
      for (index_t x = 0; x < width; ++x) {
        for (index_t c = 0; c < channels; ++c) dst(c, y, x) = static_cast<T>(src(c, y, x));
      }
    }
  } else {
    for (index_t c = 0; c < channels; ++c) {
      for (index_t y = 0; y < height; ++y) {
        const S* in = &src(c, y, 0);
        T* out = &dst(c, y, 0);  // an NCHW batch row: contiguous
        if (src.stride(2) == 1) {
          for (index_t x = 0; x < width; ++x) out[x] = static_cast<T>(in[x]);
        } else {
          for (index_t x = 0; x < width; ++x) out[x] = static_cast<T>(in[x * src.stride(2)]);
        }
      }
    }
  }
}

/// Where the baseline of image n comes from: a constant, or a (n, c, h, w) view whose first axis
/// is 1 (broadcast) or N.
template <class T>
struct occlusion_baseline {
  T value = T(0);
  strided_view<const T, 4> tensor{};
  bool has_tensor = false;

  [[nodiscard]] strided_view<const T, 3> image(index_t n) const noexcept {
    const index_t i = tensor.extent(0) == 1 ? 0 : n;
    return {tensor.data() + i * tensor.stride(0),
            {tensor.extent(1), tensor.extent(2), tensor.extent(3)},
            {tensor.stride(1), tensor.stride(2), tensor.stride(3)}};
  }
};

/// Writes the baseline over box b of image n held in `dst`.
template <class T>
void occlude_box(strided_view<T, 3> dst, const occlusion_baseline<T>& base, index_t n,
                 const occlusion_geometry::box& b) noexcept {
  if (base.has_tensor) {
    copy_box<T, T>(base.image(n), dst, b);
    return;
  }
  for (index_t c = b.begin[0]; c < b.end[0]; ++c) {
    for (index_t y = b.begin[1]; y < b.end[1]; ++y) {
      for (index_t x = b.begin[2]; x < b.end[2]; ++x) dst(c, y, x) = base.value;
    }
  }
}

/// Occlusion of the (n, c, h, w) inputs into the (n, c, h, w) view `out`:
/// out = Σ_windows∋e (f(x) − f(x_window)) / coverage(e) (average) or the plain sum.
/// Model input i of image n: i = n·(windows + 1) + 0 the clean image, + 1 + k window k.
template <class T, class F>
void occlusion_run(strided_view<const T, 4> inputs, const occlusion_baseline<T>& base, F& f,
                   const occlusion_geometry& g, bool average, const model_options& options,
                   int threads, strided_view<T, 4> out, const char* fn) {
  const index_t images = inputs.extent(0);
  const std::array<index_t, 3> chw{inputs.extent(1), inputs.extent(2), inputs.extent(3)};
  const auto describe = [&] { return inputs.shape_string(); };
  const index_t per_image = g.windows + 1;  // windows < index max: checked_mul bounded it
  if (per_image < 1 || images == 0) return;
  const index_t count = checked_mul(images, per_image, fn, "the model inputs", describe);
  model_batches<T> batches(options, chw, false, fn, count);
  const index_t image_size = batches.image_size();
  const auto image_of = [&](index_t n) -> strided_view<const T, 3> {
    return {inputs.data() + n * inputs.stride(0),
            chw,
            {inputs.stride(1), inputs.stride(2), inputs.stride(3)}};
  };

  // What each batch slot holds: image n with window k occluded (k = -1: none). The callable sees
  // a const view and leaves it unchanged, so a slot moving to another window of the same image
  // only restores the previous window and occludes the next.
  struct slot_content {
    index_t image = -1, window = -1;
  };
  std::vector<slot_content> slots(static_cast<std::size_t>(batches.batch_size()));
  auto accumulator =
      checked_vector<double>(image_size, fn, "the attribution accumulator", describe);
  T clean_score = T(0);
  const index_t batch = batches.batch_size();

  batches.for_each(
      count, [&](index_t b) { batches.run_forward(f, b); },
      [&](index_t i, strided_view<T, 3> image) {
        const index_t n = i / per_image, k = i % per_image - 1;
        slot_content& held = slots[static_cast<std::size_t>(i % batch)];
        const auto src = image_of(n);
        if (held.image != n) {
          copy_image<T, T>(src, image);
        } else if (held.window >= 0) {
          copy_box<T, T>(src, image, g.window(held.window));
        }
        if (k >= 0) occlude_box(image, base, n, g.window(k));
        held = {n, k};
      },
      [&](index_t i, index_t slot) {
        const index_t n = i / per_image, k = i % per_image - 1;
        const T score = batches.score(slot);
        if (k < 0) {
          clean_score = score;
          return;
        }
        const double diff = static_cast<double>(clean_score - score);
        const auto b = g.window(k);
        for (index_t c = b.begin[0]; c < b.end[0]; ++c) {
          for (index_t y = b.begin[1]; y < b.end[1]; ++y) {
            double* row = accumulator.data() + (c * chw[1] + y) * chw[2];
            for (index_t x = b.begin[2]; x < b.end[2]; ++x) row[x] += diff;
          }
        }
        if (k + 1 < g.windows) return;
        // The last window of image n: write its attributions and clear the accumulator.
        strided_view<T, 3> dst(out.data() + n * out.stride(0), chw,
                               {out.stride(1), out.stride(2), out.stride(3)});
        parallel_for(
            0, chw[0] * chw[1], 8,
            [&](index_t lo, index_t hi) {
              for (index_t r = lo; r < hi; ++r) {
                const index_t c = r / chw[1], y = r % chw[1];
                double* row = accumulator.data() + r * chw[2];
                const index_t cy = g.axes[0].coverage(c) * g.axes[1].coverage(y);
                for (index_t x = 0; x < chw[2]; ++x) {
                  const index_t cover = cy * g.axes[2].coverage(x);
                  double v = row[x];
                  if (average) v = cover > 0 ? v / static_cast<double>(cover) : 0.0;
                  dst(c, y, x) = static_cast<T>(v);
                  row[x] = 0.0;
                }
              }
            },
            threads);
      },
      threads);
}

}  // namespace detail
CVK_END_NAMESPACE
