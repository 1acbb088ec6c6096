// cvk — computer-vision kernels, header-only C++20.
// Built-in views of standard containers: std::vector<T>, std::array<T, K>, std::span<T>,
// std::vector<std::array<T, K>>, std::span<std::array<T, K>>, C arrays T[N] and T[N][K].
// Owning containers give mutable views only as non-const lvalues.
// SPDX-License-Identifier: MIT
#pragma once

#include <array>
#include <cstddef>
#include <span>
#include <type_traits>
#include <vector>

#include "as_view.hpp"
#include "config.hpp"
#include "strided_view.hpp"

CVK_BEGIN_NAMESPACE

namespace detail {
template <class T>
concept arithmetic = std::is_arithmetic_v<T>;
template <class T>
concept vector_element = arithmetic<T> && !std::is_same_v<T, bool>;

template <class Row, class T, std::size_t K>
constexpr strided_view<T, 2> rows_view(Row* rows, std::size_t n) noexcept {
  // std::array<T, K> is an aggregate whose only member is T[K]; sizeof(Row) == K * sizeof(T)
  // is asserted so that rows can be walked with an element stride of K.
  static_assert(sizeof(Row) == K * sizeof(T), "cvk: std::array<T, K> must have no padding");
  return {n == 0 ? nullptr : rows[0].data(), {static_cast<index_t>(n), static_cast<index_t>(K)}};
}
}  // namespace detail

/// std::vector<T> of numbers: a rank-1 tensor of size(). Not std::vector<bool>, which stores
/// bits and has no data().
template <detail::vector_element T, class Alloc>
struct view_traits<std::vector<T, Alloc>> {
  static strided_view<T, 1> view(std::vector<T, Alloc>& v) noexcept {
    return {v.data(), {static_cast<index_t>(v.size())}};
  }
  static strided_view<const T, 1> view(const std::vector<T, Alloc>& v) noexcept {
    return {v.data(), {static_cast<index_t>(v.size())}};
  }
};

/// std::array<T, K> of numbers: a rank-1 tensor of K (one box, one vector).
template <detail::arithmetic T, std::size_t K>
struct view_traits<std::array<T, K>> {
  static constexpr strided_view<T, 1> view(std::array<T, K>& a) noexcept {
    return {a.data(), {static_cast<index_t>(K)}};
  }
  static constexpr strided_view<const T, 1> view(const std::array<T, K>& a) noexcept {
    return {a.data(), {static_cast<index_t>(K)}};
  }
};

/// std::vector<std::array<T, K>>: an N×K tensor (one row per element).
template <detail::arithmetic T, std::size_t K, class Alloc>
struct view_traits<std::vector<std::array<T, K>, Alloc>> {
  static strided_view<T, 2> view(std::vector<std::array<T, K>, Alloc>& v) noexcept {
    return detail::rows_view<std::array<T, K>, T, K>(v.data(), v.size());
  }
  static strided_view<const T, 2> view(const std::vector<std::array<T, K>, Alloc>& v) noexcept {
    return detail::rows_view<const std::array<T, K>, const T, K>(v.data(), v.size());
  }
};

/// std::span<T> of numbers: rank 1. The span does not own, so its constness is that of T.
template <class T, std::size_t Extent>
requires detail::arithmetic<std::remove_const_t<T>>
struct view_traits<std::span<T, Extent>> {
  static constexpr strided_view<T, 1> view(std::span<T, Extent> s) noexcept {
    return {s.data(), {static_cast<index_t>(s.size())}};
  }
};

/// std::span<std::array<T, K>>: an N×K tensor.
template <class T, std::size_t K, std::size_t Extent>
requires detail::arithmetic<T>
struct view_traits<std::span<std::array<T, K>, Extent>> {
  static constexpr strided_view<T, 2> view(std::span<std::array<T, K>, Extent> s) noexcept {
    return detail::rows_view<std::array<T, K>, T, K>(s.data(), s.size());
  }
};
template <class T, std::size_t K, std::size_t Extent>
requires detail::arithmetic<T>
struct view_traits<std::span<const std::array<T, K>, Extent>> {
  static constexpr strided_view<const T, 2> view(
      std::span<const std::array<T, K>, Extent> s) noexcept {
    return detail::rows_view<const std::array<T, K>, const T, K>(s.data(), s.size());
  }
};

/// C array T[N]: rank 1.
template <detail::arithmetic T, std::size_t N>
struct view_traits<T[N]> {
  static constexpr strided_view<T, 1> view(T (&a)[N]) noexcept {
    return {a, {static_cast<index_t>(N)}};
  }
  static constexpr strided_view<const T, 1> view(const T (&a)[N]) noexcept {
    return {a, {static_cast<index_t>(N)}};
  }
};

/// C array T[N][K]: an N×K tensor.
template <detail::arithmetic T, std::size_t N, std::size_t K>
struct view_traits<T[N][K]>{static constexpr strided_view<T, 2> view(T(&a)[N][K]) noexcept {
    return {&a[0][0], {static_cast<index_t>(N), static_cast<index_t>(K)}};
}
static constexpr strided_view<const T, 2> view(const T (&a)[N][K]) noexcept {
  return {&a[0][0], {static_cast<index_t>(N), static_cast<index_t>(K)}};
}
}
;

CVK_END_NAMESPACE
