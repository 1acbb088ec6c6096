// cvk — computer-vision kernels, header-only C++20.
// Opt-in adaptor: xtensor containers, adaptors and strided views (xt::xtensor, xt::xarray,
// xt::xtensor_fixed, xt::adapt results, xt::view / xt::strided_view of those) are tensors that
// every cvk operator accepts. Link cvk::xtensor.
// SPDX-License-Identifier: MIT
#pragma once

// xtensor 0.26 moved its headers into containers/, core/ and views/.
#if __has_include(<xtensor/containers/xtensor.hpp>)
#  include <xtensor/containers/xarray.hpp>
#  include <xtensor/containers/xbuffer_adaptor.hpp>
#  include <xtensor/containers/xtensor.hpp>
#  include <xtensor/core/xexpression.hpp>
#  include <xtensor/views/xstrided_view.hpp>
#  include <xtensor/views/xview.hpp>
#else
#  include <xtensor/xarray.hpp>
#  include <xtensor/xbuffer_adaptor.hpp>
#  include <xtensor/xexpression.hpp>
#  include <xtensor/xstrided_view.hpp>
#  include <xtensor/xtensor.hpp>
#  include <xtensor/xview.hpp>
#endif

#include <array>
#include <cstddef>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include "../core/as_view.hpp"
#include "../core/config.hpp"
#include "../core/errors.hpp"
#include "../core/strided_view.hpp"

CVK_BEGIN_NAMESPACE

namespace detail::xtensor {

// Deduction against a base class: true for every xtensor expression, and it never
// instantiates xtensor templates with a foreign type.
template <class D>
std::true_type expression_test(const xt::xexpression<D>*);
std::false_type expression_test(const void*);

template <class X>
concept expression = decltype(expression_test(static_cast<const X*>(nullptr)))::value;

/// An xtensor expression whose elements live in memory: `data() + data_offset()` is element
/// (0, ..., 0) and `strides()` are element strides. Containers, adaptors and strided views
/// (views whose slices are all(), range() or integers) qualify; lazy expressions (a + b),
/// views with keep()/drop() and optional containers do not.
template <class X>
concept strided_expression = expression<X> && requires(X& x) {
  requires std::is_pointer_v<decltype(x.data())>;
  x.data_offset();
  x.strides()[0];
  x.shape()[0];
  requires std::is_same_v<typename X::expression_tag, xt::xtensor_expression_tag>;
};

/// Whether a storage type borrows its memory: a reference to a container (xt::adapt(vector&))
/// or a pointer adapted with xt::no_ownership.
template <class Storage>
inline constexpr bool borrowed_storage = std::is_lvalue_reference_v<Storage>;
template <class CP, class A>
inline constexpr bool borrowed_storage<xt::xbuffer_adaptor<CP, xt::no_ownership, A>> = true;

/// Whether a temporary of X only refers to memory owned elsewhere, so that writing through
/// it is meaningful (a temporary output). Containers own; adaptors and views borrow when
/// their storage or the expression they view is borrowed. Unknown types count as owning.
template <class X>
inline constexpr bool borrows = false;
template <class EC, std::size_t N, xt::layout_type L, class Tag>
inline constexpr bool borrows<xt::xtensor_adaptor<EC, N, L, Tag>> = borrowed_storage<EC>;
template <class EC, std::size_t N, xt::layout_type L, class Tag>
inline constexpr bool borrows<xt::xtensor_view<EC, N, L, Tag>> = borrowed_storage<EC>;
template <class EC, xt::layout_type L, class SC, class Tag>
inline constexpr bool borrows<xt::xarray_adaptor<EC, L, SC, Tag>> = borrowed_storage<EC>;
template <class EC, class S, xt::layout_type L, bool Sharable, class Tag>
inline constexpr bool borrows<xt::xfixed_adaptor<EC, S, L, Sharable, Tag>> = borrowed_storage<EC>;
template <class CT, class... S>
inline constexpr bool borrows<xt::xview<CT, S...>> = std::is_lvalue_reference_v<CT>;
template <class CT, class S, xt::layout_type L, class FST>
inline constexpr bool borrows<xt::xstrided_view<CT, S, L, FST>> = std::is_lvalue_reference_v<CT>;

template <class Shape>
concept static_shape = requires {
  std::tuple_size<Shape>::value;
};

/// Whether the storage is const although X is not (an adaptor of a const container,
/// xt::adapt(const_vector, shape)): xtensor then declares a mutable data() that does not compile.
template <class X>
constexpr bool const_storage() {
  if constexpr (requires(X & x) { x.storage(); }) {
    return std::is_const_v<std::remove_reference_t<decltype(std::declval<X&>().storage())>>;
  } else {
    return false;
  }
}

/// The view of the memory of `x` (X possibly const).
template <class X>
auto view_of_memory(X& x) {
  auto* const data = x.data() + x.data_offset();
  using T = std::remove_pointer_t<decltype(data)>;
  const auto& shape = x.shape();
  const auto& strides = x.strides();
  using Shape = std::remove_cvref_t<decltype(shape)>;
  if constexpr (static_shape<Shape>) {
    constexpr std::size_t rank = std::tuple_size_v<Shape>;
    std::array<index_t, rank> extents{};
    std::array<index_t, rank> steps{};
    for (std::size_t i = 0; i < rank; ++i) {
      extents[i] = static_cast<index_t>(shape[i]);
      steps[i] = static_cast<index_t>(strides[i]);
    }
    return strided_view<T, rank>(data, extents, steps);
  } else {
    const std::size_t rank = shape.size();
    typename dynamic_view<T>::extents_type extents{};
    typename dynamic_view<T>::extents_type steps{};
    if (rank > max_dynamic_rank) {
      CVK_THROW(shape_error, "as_view: xtensor expression of rank " + std::to_string(rank) + " (" +
                                 shape_string(shape, rank) + ") exceeds cvk::max_dynamic_rank (" +
                                 std::to_string(max_dynamic_rank) + ")");
    }
    for (std::size_t i = 0; i < rank; ++i) {
      extents[i] = static_cast<index_t>(shape[i]);
      steps[i] = static_cast<index_t>(strides[i]);
    }
    return dynamic_view<T>(data, rank, extents, steps);
  }
}

/// The view of `x` (X possibly const): strided_view<T, N> when the rank is fixed at compile
/// time (xtensor, xtensor_fixed, views of those), dynamic_view<T> otherwise (xarray).
template <class X>
auto view_of(X& x) {
  if constexpr (!std::is_const_v<X> && const_storage<X>()) {
    return view_of(std::as_const(x));
  } else {
    return view_of_memory(x);
  }
}

}  // namespace detail::xtensor

/// xtensor expressions with a data interface:
///
///   xt::xtensor<T, N>, xt::xtensor_fixed, xt::adapt(..., std::array shape), views of those
///       strided_view<T, N>
///   xt::xarray<T>, xt::adapt(..., std::vector shape), xt::strided_view(...)
///       dynamic_view<T>: the rank is checked when an operator uses it, and a wrong rank
///       raises cvk::shape_error naming the operator and the argument
///
/// Element (i, j, ...) is `data() + data_offset() + i*strides()[0] + ...`, so row-major,
/// column-major and any strided view (negative steps included) are honoured; xtensor gives
/// axes of extent 1 a stride of 0, which the view keeps. A const object gives a view of
/// `const T`. A mutable view comes from a non-const lvalue, and from a temporary that only
/// borrows memory (`xt::adapt(ptr, n, xt::no_ownership(), shape)`, `xt::adapt(vector, shape)`
/// on an lvalue vector, `xt::view(a, xt::all(), 0)` of an lvalue `a`), so those can be passed
/// as outputs; a temporary container gives a const view. Throws cvk::shape_error when a
/// runtime rank exceeds cvk::max_dynamic_rank. The view is valid as long as the memory.
template <class X>
requires detail::xtensor::strided_expression<X>
struct view_traits<X> {
  static auto view(X& x) { return detail::xtensor::view_of(x); }
  static auto view(const X& x) { return detail::xtensor::view_of(x); }
  static auto view(X&& x) {
    if constexpr (detail::xtensor::borrows<X>) {
      return detail::xtensor::view_of(x);
    } else {
      return detail::xtensor::view_of(std::as_const(x));
    }
  }
};

CVK_END_NAMESPACE
