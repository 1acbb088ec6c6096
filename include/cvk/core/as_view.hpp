// cvk — computer-vision kernels, header-only C++20.
// cvk::as_view, the one customization point that turns any tensor into a strided_view, and the
// concepts built on it. Lookup order: a member `x.as_cvk_view()`, then a specialization
// `cvk::view_traits<X>::view(x)`, then an `as_view(x)` found by argument-dependent lookup.
// SPDX-License-Identifier: MIT
#pragma once

#include <cstddef>
#include <type_traits>
#include <utility>

#include "config.hpp"
#include "strided_view.hpp"

CVK_BEGIN_NAMESPACE

/// Specialize for a type you cannot change: `static auto view(X& x)` (and/or `const X&`,
/// `X&&`) returning a strided_view or dynamic_view. Give `const T` views for const input.
template <class X>
struct view_traits;

namespace detail {
namespace as_view_lookup {

// Poison pill: keeps an unconstrained `as_view` in an enclosing namespace (and the cvk::as_view
// object, which would switch ADL off) from being found, so only ADL can supply the third-choice
// overload. It takes no argument so that it never competes with a user's overload: a deleted
// `as_view(auto&&)` would be a better match than `as_view(const X&)` for non-const lvalues and
// rvalues, and hide it (the C++23 fix to the std::ranges poison pills, P2602).
void as_view() = delete;

template <class V>
concept view_type = is_strided_view_v<V> || is_dynamic_view_v<V>;

template <class X>
concept has_member = requires(X&& x) {
  { std::forward<X>(x).as_cvk_view() } -> view_type;
};

template <class X>
concept has_traits = requires(X&& x) {
  { view_traits<std::remove_cvref_t<X>>::view(std::forward<X>(x)) } -> view_type;
};

template <class X>
concept has_adl = requires(X&& x) {
  { as_view(std::forward<X>(x)) } -> view_type;
};

struct as_view_fn {
  template <class X>
  requires has_member<X> || has_traits<X> || has_adl<X>
  constexpr auto operator()(X&& x) const {
    if constexpr (has_member<X>) {
      return std::forward<X>(x).as_cvk_view();
    } else if constexpr (has_traits<X>) {
      return view_traits<std::remove_cvref_t<X>>::view(std::forward<X>(x));
    } else {
      return as_view(std::forward<X>(x));
    }
  }
};

}  // namespace as_view_lookup
}  // namespace detail

/// `cvk::as_view(x)`: the strided_view (or dynamic_view) of any supported tensor `x`.
/// Const or rvalue owning containers give views of `const T`.
inline constexpr detail::as_view_lookup::as_view_fn as_view{};

/// The view type `cvk::as_view` returns for `X`.
template <class X>
using view_t = decltype(as_view(std::declval<X>()));

/// Anything `cvk::as_view` accepts.
template <class X>
concept tensor_like = requires(X&& x) {
  as_view(std::forward<X>(x));
};

namespace detail {
template <class V, std::size_t Rank>
inline constexpr bool view_has_rank_v = false;
template <class T, std::size_t R, std::size_t Rank>
inline constexpr bool view_has_rank_v<strided_view<T, R>, Rank> = (R == Rank);
template <class T, std::size_t Rank>
inline constexpr bool view_has_rank_v<dynamic_view<T>, Rank> = true;  // checked at run time
}  // namespace detail

/// A tensor of rank `Rank` (a runtime-rank tensor is accepted and checked when used).
template <class X, std::size_t Rank>
concept tensor_of_rank = tensor_like<X> && detail::view_has_rank_v<view_t<X>, Rank>;

/// A tensor whose view has rank `Rank` at compile time (runtime-rank tensors excluded); used
/// to tell single-box overloads (rank 1) from box-set overloads (rank 2).
template <class X, std::size_t Rank>
concept tensor_of_static_rank = tensor_like<X> && detail::is_strided_view_v<view_t<X>> &&
    detail::view_has_rank_v<view_t<X>, Rank>;

/// A tensor whose elements can be written through its view.
template <class X>
concept mutable_tensor = tensor_like<X> && !std::is_const_v<typename view_t<X>::element_type>;

/// Element type (without const) of a tensor.
template <class X>
using tensor_value_t = typename view_t<X>::value_type;

CVK_END_NAMESPACE
