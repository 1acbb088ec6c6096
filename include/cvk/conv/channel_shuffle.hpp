// cvk — computer-vision kernels, header-only C++20.
// channel_shuffle (ShuffleNet, Zhang et al. CVPR 2018; torch.nn.functional.channel_shuffle /
// nn.ChannelShuffle) and its inverse: as a copy, and as a zero-copy rank-5 strided view.
// SPDX-License-Identifier: MIT
#pragma once

#include <array>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "../core/as_view.hpp"
#include "../core/config.hpp"
#include "../core/tensor.hpp"
#include "../detail/checks.hpp"
#include "detail/channel_shuffle.hpp"
#include "detail/conv2d_run.hpp"
#include "detail/geometry.hpp"

CVK_BEGIN_NAMESPACE

// The contract of every channel_shuffle entry point.
//
//   channel_shuffle(x, g):          y[n, c, h, w] = x[n, (c mod g)·(C/g) + ⌊c / g⌋, h, w]
//     — torch's reshape (N, g, C/g, H, W), transpose axes 1 and 2, flatten back to C channels.
//   channel_shuffle_inverse(x, g):  y[n, c, h, w] = x[n, (c mod (C/g))·g + ⌊c / (C/g)⌋, h, w]
//     — undoes channel_shuffle(·, g); it equals channel_shuffle(·, C/g).
//   channel_shuffle_permutation(C, g)[c] = (c mod g)·(C/g) + ⌊c / g⌋: output channel c reads that
//     input channel (a gather, as torch.index_select); _inverse_permutation likewise.
//
// Shapes: input and output N×C×H×W (layout::nchw) or N×H×W×C (layout::nhwc), any strides, any
// element type; g >= 1 divides C. The output must not overlap the input.
//
//   channel_shuffle_view(x, g, l): the shuffled tensor without a copy, as a rank-5 strided_view
//     over x's memory that splits the channel axis in two:
//       layout::nchw: N × (C/g) × g × H × W,   element (n, j, i, h, w) = x[n, i·(C/g) + j, h, w]
//       layout::nhwc: N × H × W × (C/g) × g,   element (n, h, w, j, i) = x[n, h, w, i·(C/g) + j]
//     Shuffled channel c is (j, i) = (⌊c / g⌋, c mod g): the two channel axes read in row-major
//     order give the shuffled channels, so a row-major copy of the view (cvk::tensor<T, 5>) IS
//     the shuffled N×C×H×W (or N×H×W×C) tensor, and any op can read the view directly. A rank-4
//     view is impossible in general: c ↦ (c mod g)·(C/g) + ⌊c / g⌋ is no single stride (it is one
//     only when g = 1 or g = C, where the shuffle is the identity).
//   channel_shuffle_inverse_view(x, g, l): likewise with axes g × (C/g):
//       layout::nchw: N × g × (C/g) × H × W,   element (n, i, j, h, w) = x[n, j·g + i, h, w]
//     (layout::nhwc: N × H × W × g × (C/g)).
//   A view is valid as long as x's memory; it is mutable when x is (writing through it writes x).
//
// Forms:
//   channel_shuffle(input, groups[, layout])                  → cvk::tensor<T, 4>
//   channel_shuffle(input, groups, layout, out)               → writes out
//   channel_shuffle_inverse(input, groups[, layout])          → cvk::tensor<T, 4>
//   channel_shuffle_inverse(input, groups, layout, out)
//   channel_shuffle_view(input, groups[, layout])             → strided_view<T, 5>
//   channel_shuffle_inverse_view(input, groups[, layout])     → strided_view<T, 5>
//   channel_shuffle_permutation(channels, groups)             → std::vector<index_t>
//   channel_shuffle_inverse_permutation(channels, groups)     → std::vector<index_t>
//
// Errors: cvk::invalid_argument groups < 1; cvk::shape_error groups not dividing C, wrong rank,
// out of the wrong shape; cvk::out_of_range a result too large to allocate.
// Complexity: one read and one write per element (N·C·H·W); threads split pixel rows (NHWC) or
// planes (NCHW). The views cost nothing.

namespace detail {

inline std::vector<index_t> checked_shuffle_permutation(index_t channels, index_t groups,
                                                        bool inverse, const char* fn) {
  if (channels < 0) {
    CVK_THROW(invalid_argument,
              std::string(fn) + ": channels must be >= 0, got " + std::to_string(channels));
  }
  check_shuffle_groups(channels, groups, fn, "channels " + std::to_string(channels));
  return shuffle_permutation(channels, groups, inverse, fn);
}

}  // namespace detail

/// The gather permutation of channel_shuffle: output channel c reads input channel perm[c].
[[nodiscard]] inline std::vector<index_t> channel_shuffle_permutation(index_t channels,
                                                                      index_t groups) {
  return detail::checked_shuffle_permutation(channels, groups, false,
                                             "channel_shuffle_permutation");
}

/// The gather permutation of channel_shuffle_inverse (the inverse of the one above).
[[nodiscard]] inline std::vector<index_t> channel_shuffle_inverse_permutation(index_t channels,
                                                                              index_t groups) {
  return detail::checked_shuffle_permutation(channels, groups, true,
                                             "channel_shuffle_inverse_permutation");
}

namespace detail {

/// Copies `input` into `out` with its channels shuffled (or unshuffled) in groups of `groups`.
template <class Input, class Out>
void run_channel_shuffle(const Input& input, index_t groups, layout l, Out&& out, bool inverse,
                         const char* fn) {
  using T = std::remove_const_t<tensor_value_t<const Input&>>;
  static_assert(std::is_same_v<std::remove_const_t<tensor_value_t<Out>>, T>,
                "cvk: channel_shuffle needs the same element type in input and out");
  if (l != layout::nchw && l != layout::nhwc) {
    CVK_THROW(invalid_argument, std::string(fn) + ": data_layout is not a layout value");
  }
  const auto x = checked_view<4>(input, fn, "input");
  const auto axes = nchw_axes(l);
  const index_t channels = x.extent(axes[1]);
  check_shuffle_groups(channels, groups, fn,
                       "input " + x.shape_string() + " (" + layout_pattern(l) + ")");
  auto y = checked_view<4>(std::forward<Out>(out), fn, "out");
  static_assert(!std::is_const_v<typename decltype(y)::element_type>,
                "cvk: the output of channel_shuffle must be a mutable tensor");
  const std::string pattern = std::string(layout_pattern(l)) + " = " + x.shape_string();
  expect_shape(y, x.extents(), fn, "out", pattern.c_str());
  permute_channels<T>(permute_axes(strided_view<const T, 4>(x), axes),
                      permute_axes(strided_view<T, 4>(y), axes),
                      shuffle_permutation(channels, groups, inverse, fn), 0);
}

template <class Input>
auto new_channel_shuffle(const Input& input, index_t groups, layout l, bool inverse,
                         const char* fn) {
  using T = std::remove_const_t<tensor_value_t<const Input&>>;
  const auto x = checked_view<4>(input, fn, "input");
  const index_t count =
      checked_mul(checked_mul(checked_mul(x.extent(0), x.extent(1), fn, "input", x), x.extent(2),
                              fn, "input", x),
                  x.extent(3), fn, "input", x);
  tensor<T, 4> y =
      checked_allocation<T>(count, fn, "the output", x, [&] { return tensor<T, 4>(x.extents()); });
  run_channel_shuffle(input, groups, l, y, inverse, fn);
  return y;
}

/// The rank-5 view of `input` whose channel axis is split into (outer, inner) extents with
/// strides (s, s·outer): (channels-in-group, group) for the shuffle, (group, channels-in-group)
/// for the inverse.
template <class Input>
auto split_channel_view(Input&& input, index_t groups, layout l, bool inverse, const char* fn) {
  const auto x = checked_view<4>(std::forward<Input>(input), fn, "input");
  using E = typename decltype(x)::element_type;
  if (l != layout::nchw && l != layout::nhwc) {
    CVK_THROW(invalid_argument, std::string(fn) + ": data_layout is not a layout value");
  }
  const std::size_t axis = l == layout::nchw ? 1 : 3;
  const index_t channels = x.extent(axis);
  check_shuffle_groups(channels, groups, fn,
                       "input " + x.shape_string() + " (" + layout_pattern(l) + ")");
  const index_t outer = inverse ? groups : channels / groups;
  const index_t inner = inverse ? channels / groups : groups;
  const index_t s = x.stride(axis);
  std::array<index_t, 5> extents{};
  std::array<index_t, 5> strides{};
  for (std::size_t a = 0, k = 0; a < 4; ++a) {
    if (a == axis) {
      extents[k] = outer;
      strides[k++] = s;
      extents[k] = inner;
      strides[k++] = s * outer;
    } else {
      extents[k] = x.extent(a);
      strides[k++] = x.stride(a);
    }
  }
  return strided_view<E, 5>(x.data(), extents, strides);
}

}  // namespace detail

/// y = channel_shuffle(input, groups): torch.nn.functional.channel_shuffle.
template <tensor_of_rank<4> Input>
[[nodiscard]] auto channel_shuffle(const Input& input, index_t groups,
                                   layout data_layout = layout::nchw) {
  return detail::new_channel_shuffle(input, groups, data_layout, false, "channel_shuffle");
}

/// Writes channel_shuffle(input, groups) into `out` (same shape as input).
template <tensor_of_rank<4> Input, tensor_of_rank<4> Out>
void channel_shuffle(const Input& input, index_t groups, layout data_layout, Out&& out) {
  detail::run_channel_shuffle(input, groups, data_layout, std::forward<Out>(out), false,
                              "channel_shuffle");
}

/// y with channel_shuffle(y, groups) == input: channel_shuffle with C/groups groups.
template <tensor_of_rank<4> Input>
[[nodiscard]] auto channel_shuffle_inverse(const Input& input, index_t groups,
                                           layout data_layout = layout::nchw) {
  return detail::new_channel_shuffle(input, groups, data_layout, true, "channel_shuffle_inverse");
}

/// Writes channel_shuffle_inverse(input, groups) into `out`.
template <tensor_of_rank<4> Input, tensor_of_rank<4> Out>
void channel_shuffle_inverse(const Input& input, index_t groups, layout data_layout, Out&& out) {
  detail::run_channel_shuffle(input, groups, data_layout, std::forward<Out>(out), true,
                              "channel_shuffle_inverse");
}

namespace detail {
/// A view of a temporary owning tensor would dangle: the view forms take lvalues or views.
template <class Input>
constexpr void assert_viewable_argument() {
  static_assert(
      std::is_lvalue_reference_v<Input> || as_view_lookup::view_type<std::remove_cvref_t<Input>>,
      "cvk: channel_shuffle_view of a temporary tensor would dangle; pass a named "
      "tensor or a view of memory that outlives the result");
}
}  // namespace detail

/// The shuffled tensor as a zero-copy rank-5 view of `input`'s memory (see the contract above).
template <tensor_of_rank<4> Input>
[[nodiscard]] auto channel_shuffle_view(Input&& input, index_t groups,
                                        layout data_layout = layout::nchw) {
  detail::assert_viewable_argument<Input>();
  return detail::split_channel_view(std::forward<Input>(input), groups, data_layout, false,
                                    "channel_shuffle_view");
}

/// The unshuffled tensor as a zero-copy rank-5 view of `input`'s memory.
template <tensor_of_rank<4> Input>
[[nodiscard]] auto channel_shuffle_inverse_view(Input&& input, index_t groups,
                                                layout data_layout = layout::nchw) {
  detail::assert_viewable_argument<Input>();
  return detail::split_channel_view(std::forward<Input>(input), groups, data_layout, true,
                                    "channel_shuffle_inverse_view");
}

CVK_END_NAMESPACE
