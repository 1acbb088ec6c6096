// cvk — computer-vision kernels, header-only C++20.
// Argument checks of the CAM family (cvk/saliency/cam.hpp): element types, the (n, c, h, w)
// views of activations and gradients in either layout, the N×H×W output, and the messages that
// name the function, the argument and both shapes.
// SPDX-License-Identifier: MIT
#pragma once

#include <array>
#include <cmath>
#include <string>
#include <type_traits>
#include <utility>

#include "../../core/as_view.hpp"
#include "../../core/config.hpp"
#include "../../core/errors.hpp"
#include "../../core/layout.hpp"
#include "../../core/strided_view.hpp"
#include "../../core/tensor.hpp"
#include "../../detail/checks.hpp"

CVK_BEGIN_NAMESPACE
namespace detail {

/// The element type of a tensor argument, without const.
template <class X>
using cam_scalar_t = std::remove_const_t<tensor_value_t<const X&>>;

template <class T, class... Tensors>
constexpr void assert_cam_types() {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "cvk: the CAM methods run on float or double activations");
  static_assert((std::is_same_v<cam_scalar_t<Tensors>, T> && ...),
                "cvk: the CAM methods need the same element type (float or double) in "
                "activations, gradients, weights, images and out; convert one of them");
}

/// Throws invalid_argument unless the layout and thread count are usable.
inline void check_cam_options(layout l, int threads, const char* fn) {
  if (l != layout::nchw && l != layout::nhwc) {
    CVK_THROW(invalid_argument, std::string(fn) + ": data_layout is not a cvk::layout");
  }
  if (threads < 0) {
    CVK_THROW(invalid_argument,
              std::string(fn) + ": threads must be >= 0, got " + std::to_string(threads));
  }
}

/// Throws invalid_argument unless `value` is finite and >= 0 ("fn: name must be ...").
inline void check_cam_epsilon(double value, const char* fn, const char* name) {
  if (!(value >= 0.0 && std::isfinite(value))) {
    CVK_THROW(invalid_argument, std::string(fn) + ": " + name + " must be finite and >= 0, got " +
                                    number_string(value));
  }
}

/// "2×512×7×7 (N×C×H×W)": a tensor's own shape and what its axes mean in layout `l`.
inline std::string cam_shape_text(const std::string& shape, layout l) {
  return shape + " (" + layout_pattern(l) + ")";
}

/// The (n, c, h, w)-ordered const view of a rank-4 argument in layout `l`.
template <class T, class X>
strided_view<const T, 4> cam_input(const X& x, layout l, const char* fn, const char* argument) {
  return permute_axes(strided_view<const T, 4>(checked_view<4>(x, fn, argument)), nchw_axes(l));
}

/// The (n, c, h, w)-ordered view of `gradients`, which must have the shape of `activations`
/// (both in layout `l`); the message names both shapes.
template <class T, class A, class G>
strided_view<const T, 4> cam_gradients(const A& activations, const G& gradients, layout l,
                                       const char* fn) {
  const auto a = checked_view<4>(activations, fn, "activations");
  const auto g = checked_view<4>(gradients, fn, "gradients");
  for (std::size_t axis = 0; axis < 4; ++axis) {
    if (g.extent(axis) != a.extent(axis)) {
      CVK_THROW(shape_error, std::string(fn) + ": gradients must have the shape of activations, " +
                                 cam_shape_text(a.shape_string(), l) + ", got " + g.shape_string());
    }
  }
  return permute_axes(strided_view<const T, 4>(g), nchw_axes(l));
}

/// {N, H, W} of an (n, c, h, w)-ordered view: the shape of its maps.
template <class T>
std::array<index_t, 3> cam_map_extents(const strided_view<const T, 4>& nchw) noexcept {
  return {nchw.extent(0), nchw.extent(2), nchw.extent(3)};
}

/// The mutable N×H×W view of an output argument, checked against `extents`.
template <class T, class Out>
strided_view<T, 3> cam_output(Out&& out, const std::array<index_t, 3>& extents, const char* fn) {
  auto v = checked_view<3>(std::forward<Out>(out), fn, "out");
  using V = decltype(v);
  static_assert(!std::is_const_v<typename V::element_type>,
                "cvk: the out argument of a CAM method must be a mutable tensor (a non-const "
                "lvalue container or a view of mutable memory)");
  static_assert(std::is_same_v<typename V::value_type, T>,
                "cvk: out must hold the element type of the activations");
  const std::string pattern = "N×H×W = " + shape_string(extents, 3);
  expect_shape(v, extents, fn, "out", pattern.c_str());
  return v;
}

/// A new N×H×W tensor; a failed or too large allocation is out_of_range naming `fn`.
template <class T>
tensor<T, 3> cam_new_maps(const std::array<index_t, 3>& extents, const char* fn) {
  // The maps are no larger than the activations, whose size is known to fit; a rank-4 view
  // over raw memory could still claim more, so the product is checked.
  const auto text = [&] { return shape_string(extents, 3); };
  const index_t count = checked_mul(checked_mul(extents[0], extents[1], fn, "the maps", text),
                                    extents[2], fn, "the maps", text);
  return checked_allocation<T>(count, fn, "the maps", text, [&] { return tensor<T, 3>(extents); });
}

}  // namespace detail
CVK_END_NAMESPACE
