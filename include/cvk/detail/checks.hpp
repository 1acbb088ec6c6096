// cvk — computer-vision kernels, header-only C++20.
// Argument checking shared by every operator: views of the requested rank, shape checks with
// messages that name the function, the argument and the shapes.
// SPDX-License-Identifier: MIT
#pragma once

#include <array>
#include <cstddef>
#include <initializer_list>
#include <string>
#include <type_traits>
#include <utility>

#include "../core/as_view.hpp"
#include "../core/box_traits.hpp"  // registered box structs are tensors for every operator
#include "../core/config.hpp"
#include "../core/errors.hpp"
#include "../core/std_adaptors.hpp"  // std containers are tensors for every operator
#include "../core/strided_view.hpp"

CVK_BEGIN_NAMESPACE
namespace detail {

/// The rank-`Rank` view of `x`; a runtime-rank view is checked, a static one asserted.
/// Negative extents (possible through cvk::view on raw pointers) raise cvk::shape_error.
template <std::size_t Rank, class X>
auto checked_view(X&& x, const char* function, const char* argument) {
  auto v = as_view(std::forward<X>(x));
  using V = decltype(v);
  if constexpr (is_dynamic_view_v<V>) {
    return checked_view<Rank>(v.template to_rank<Rank>(function, argument), function, argument);
  } else {
    static_assert(V::rank() == Rank, "cvk: a tensor argument has the wrong rank");
    for (std::size_t i = 0; i < Rank; ++i) {
      if (v.extent(i) < 0) {
        CVK_THROW(shape_error, std::string(function) + ": " + argument +
                                   " has a negative extent, got " + v.shape_string());
      }
    }
    return v;
  }
}

/// Marks an axis whose extent is not checked in expect_shape.
inline constexpr index_t any_extent = -1;

/// Throws "function: argument must be <pattern>, got <shape>" unless every extent of `v`
/// equals `expected` (any_extent matches anything). `pattern` describes the contract, e.g.
/// "N×4"; when null it is written from `expected`.
template <class View>
void expect_shape(const View& v, const typename View::extents_type& expected, const char* function,
                  const char* argument, const char* pattern = nullptr) {
  constexpr std::size_t Rank = View::rank();
  for (std::size_t i = 0; i < Rank; ++i) {
    if (expected[i] != any_extent && v.extent(i) != expected[i]) {
      const std::string want =
          pattern != nullptr ? std::string(pattern) : shape_string(expected, Rank);
      CVK_THROW(shape_error, std::string(function) + ": " + argument + " must be " + want +
                                 ", got " + v.shape_string());
    }
  }
}

/// Throws "function: a and b must have the same number of boxes, got 5×4 and 7×4".
template <class A, class B>
void expect_same_rows(const A& a, const B& b, const char* function, const char* name_a,
                      const char* name_b) {
  if (a.extent(0) != b.extent(0)) {
    CVK_THROW(shape_error, std::string(function) + ": " + name_a + " and " + name_b +
                               " must have the same number of boxes, got " + a.shape_string() +
                               " and " + b.shape_string());
  }
}

/// Output argument: the mutable rank-`Rank` view of `out`, checked against `expected`.
template <std::size_t Rank, class X>
auto output_view(X&& out, const std::type_identity_t<std::array<index_t, Rank>>& expected,
                 const char* function, const char* argument = "out") {
  auto v = checked_view<Rank>(std::forward<X>(out), function, argument);
  static_assert(!std::is_const_v<typename decltype(v)::element_type>,
                "cvk: an output argument must be a mutable tensor (a non-const lvalue container "
                "or a view of mutable memory)");
  expect_shape(v, expected, function, argument);
  return v;
}

/// Floating-point type computations run in: T itself, or double for integer inputs.
template <class T>
using real_t = std::conditional_t<std::is_floating_point_v<T>, T, double>;

}  // namespace detail

/// Floating-point type of results for inputs of type T (double for integer inputs).
template <class T>
using real_t = detail::real_t<std::remove_cv_t<T>>;

CVK_END_NAMESPACE
