// cvk — computer-vision kernels, header-only C++20.
// Argument checking shared by every operator: views of the requested rank, shape checks with
// messages that name the function, the argument and the shapes, checked size products and
// allocations.
// SPDX-License-Identifier: MIT
#pragma once

#include <array>
#include <charconv>
#include <cstddef>
#include <initializer_list>
#include <limits>
#include <new>
#include <stdexcept>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

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

/// Shortest round-trip text of a number for error messages: "1e-300", "0.5", "nan", "-inf".
inline std::string number_string(double value) {
  std::array<char, 32> buffer{};
  const auto [end, ec] = std::to_chars(buffer.data(), buffer.data() + buffer.size(), value);
  return ec == std::errc{} ? std::string(buffer.data(), end) : std::string("?");
}

/// Text of a shape argument of checked_mul / checked_allocation: a view's shape string, a
/// callable that writes the description (only called on error), or a description as text.
template <class Shape>
std::string describe_shape(const Shape& shape) {
  if constexpr (requires { shape.shape_string(); }) {
    return shape.shape_string();
  } else if constexpr (std::is_invocable_v<const Shape&>) {
    return shape();
  } else {
    return std::string(shape);
  }
}

/// a·b for sizes a, b >= 0, checked before it is formed: throws cvk::out_of_range
/// "function: argument (shape): the size a·b overflows" when it does not fit in index_t.
/// `shape` is a view (its extents are printed) or a text describing the argument.
template <class Shape>
index_t checked_mul(index_t a, index_t b, const char* function, const char* argument,
                    const Shape& shape) {
  if (a < 0 || b < 0 || (a != 0 && b > std::numeric_limits<index_t>::max() / a)) {
    CVK_THROW(out_of_range, std::string(function) + ": " + argument + " (" + describe_shape(shape) +
                                "): the size " + std::to_string(a) + "·" + std::to_string(b) +
                                " overflows");
  }
  return a * b;
}

// max_allocation_bytes (just under 1 TiB) is defined in core/errors.hpp, shared with cvk::tensor.

/// Throws cvk::out_of_range "function: argument (shape) needs <count> elements of <size> bytes,
/// more than can be allocated".
[[noreturn]] inline void throw_allocation_error(index_t count, std::size_t element_bytes,
                                                const char* function, const char* argument,
                                                const std::string& shape) {
  CVK_THROW(out_of_range, std::string(function) + ": " + argument + " (" + shape + ") needs " +
                              std::to_string(count) + " elements of " +
                              std::to_string(element_bytes) + " bytes, more than can be allocated");
}

/// Throws cvk::out_of_range (throw_allocation_error) unless `count` elements of `element_bytes`
/// bytes each fit in max_allocation_bytes. For an operator that will allocate scratch of that
/// size per row of an input: checked once, before any allocation.
template <class Shape>
void check_allocation_size(index_t count, std::size_t element_bytes, const char* function,
                           const char* argument, const Shape& shape) {
  if (count < 0 || static_cast<std::size_t>(count) > max_allocation_bytes / element_bytes) {
    throw_allocation_error(count, element_bytes, function, argument, describe_shape(shape));
  }
}

/// Returns allocate() — which allocates `count` elements of `Element` — after checking the byte
/// count against max_allocation_bytes; throws cvk::out_of_range (throw_allocation_error) when it
/// is larger, or when allocate() throws std::bad_alloc or std::length_error.
template <class Element, class Shape, class Allocate>
auto checked_allocation(index_t count, const char* function, const char* argument,
                        const Shape& shape, Allocate&& allocate) -> decltype(allocate()) {
  check_allocation_size(count, sizeof(Element), function, argument, shape);
#if CVK_HAS_EXCEPTIONS
  try {
    return allocate();
  } catch (const std::bad_alloc&) {
    throw_allocation_error(count, sizeof(Element), function, argument, describe_shape(shape));
  } catch (const std::length_error&) {
    throw_allocation_error(count, sizeof(Element), function, argument, describe_shape(shape));
  }
#else
  return allocate();
#endif
}

/// A std::vector of `count` value-initialized T, allocated through checked_allocation.
template <class T, class Shape>
std::vector<T> checked_vector(index_t count, const char* function, const char* argument,
                              const Shape& shape) {
  return checked_allocation<T>(count, function, argument, shape,
                               [count] { return std::vector<T>(static_cast<std::size_t>(count)); });
}

/// Floating-point type computations run in: T itself, or double for integer inputs.
template <class T>
using real_t = std::conditional_t<std::is_floating_point_v<T>, T, double>;

}  // namespace detail

/// Floating-point type of results for inputs of type T (double for integer inputs).
template <class T>
using real_t = detail::real_t<std::remove_cv_t<T>>;

CVK_END_NAMESPACE
