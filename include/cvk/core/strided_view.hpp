// cvk — computer-vision kernels, header-only C++20.
// strided_view<T, Rank>: the non-owning view every kernel works on (mdspan vocabulary), and
// dynamic_view<T>: its runtime-rank sibling for tensors whose rank is only known at run time
// (xt::xarray, DLPack).
// SPDX-License-Identifier: MIT
#pragma once

#include <array>
#include <concepts>
#include <cstddef>
#include <string>
#include <type_traits>

#include "config.hpp"
#include "errors.hpp"

CVK_BEGIN_NAMESPACE

/// Signed index type of every extent, stride and index (negative strides are allowed).
using index_t = std::ptrdiff_t;

/// Largest rank a dynamic_view can hold.
inline constexpr std::size_t max_dynamic_rank = 8;

namespace detail {

/// "7×3" for extents {7, 3}; "scalar" for rank 0.
template <class Extents>
std::string shape_string(const Extents& extents, std::size_t rank) {
  if (rank == 0) return "scalar";
  std::string text;
  for (std::size_t i = 0; i < rank; ++i) {
    if (i != 0) text += "×";
    text += std::to_string(extents[i]);
  }
  return text;
}

}  // namespace detail

/// A non-owning view of a `Rank`-dimensional array of `T`.
///
/// Element (i0, ..., iR-1) lives at `data() + i0*stride(0) + ... + iR-1*stride(R-1)`; strides
/// are counted in elements and may be zero or negative. The view is trivially copyable and never
/// owns memory: it is valid as long as the memory it points to. A view of `T` converts
/// implicitly to a view of `const T`, never the other way round.
template <class T, std::size_t Rank>
class strided_view {
 public:
  using element_type = T;
  using value_type = std::remove_cv_t<T>;
  using index_type = index_t;
  using extents_type = std::array<index_t, Rank>;

  constexpr strided_view() noexcept = default;

  /// A view over `data` with the given extents and element strides.
  constexpr strided_view(T* data, const extents_type& extents, const extents_type& strides) noexcept
      : data_(data), extents_(extents), strides_(strides) {}

  /// A contiguous row-major (C order) view over `data` with the given extents.
  constexpr strided_view(T* data, const extents_type& extents) noexcept
      : data_(data), extents_(extents), strides_(row_major_strides(extents)) {}

  /// The const view of the same elements.
  constexpr operator strided_view<const T, Rank>()
      const noexcept  // NOLINT(google-explicit-constructor)
      requires(!std::is_const_v<T>) {
    return {data_, extents_, strides_};
  }

  [[nodiscard]] static constexpr std::size_t rank() noexcept { return Rank; }
  [[nodiscard]] constexpr T* data() const noexcept { return data_; }
  [[nodiscard]] constexpr index_t extent(std::size_t axis) const noexcept { return extents_[axis]; }
  [[nodiscard]] constexpr index_t stride(std::size_t axis) const noexcept { return strides_[axis]; }
  [[nodiscard]] constexpr const extents_type& extents() const noexcept { return extents_; }
  [[nodiscard]] constexpr const extents_type& strides() const noexcept { return strides_; }

  /// Number of elements (the product of the extents; 1 for rank 0).
  [[nodiscard]] constexpr index_t size() const noexcept {
    index_t count = 1;
    for (std::size_t i = 0; i < Rank; ++i) count *= extents_[i];
    return count;
  }
  [[nodiscard]] constexpr bool empty() const noexcept { return size() == 0; }

  /// True when the elements are laid out in row-major order without gaps. Axes of extent 1
  /// may have any stride (xtensor gives them stride 0).
  [[nodiscard]] constexpr bool is_contiguous() const noexcept {
    index_t expected = 1;
    for (std::size_t i = Rank; i-- > 0;) {
      if (extents_[i] != 1 && strides_[i] != expected) return false;
      expected *= extents_[i];
    }
    return true;
  }

  /// The element at the given indices. No bounds check.
  template <std::integral... Indices>
  requires(sizeof...(Indices) == Rank) [[nodiscard]] constexpr T& operator()(
      Indices... indices) const noexcept {
    return data_[offset(std::index_sequence_for<Indices...>{}, indices...)];
  }

  /// Shape as text, "7×3", for error messages.
  [[nodiscard]] std::string shape_string() const { return detail::shape_string(extents_, Rank); }

  /// Row-major element strides for the given extents.
  [[nodiscard]] static constexpr extents_type row_major_strides(
      const extents_type& extents) noexcept {
    extents_type strides{};
    index_t step = 1;
    for (std::size_t i = Rank; i-- > 0;) {
      strides[i] = step;
      step *= extents[i];
    }
    return strides;
  }

  /// A strided_view is a tensor of itself (see cvk::as_view).
  [[nodiscard]] constexpr strided_view as_cvk_view() const noexcept { return *this; }

 private:
  template <std::size_t... Axes, class... Indices>
  constexpr index_t offset(std::index_sequence<Axes...>, Indices... indices) const noexcept {
    return (index_t{0} + ... + (static_cast<index_t>(indices) * strides_[Axes]));
  }

  T* data_ = nullptr;
  extents_type extents_{};
  extents_type strides_{};
};

/// A view whose rank is only known at run time (at most max_dynamic_rank axes).
/// Operators convert it to the strided_view of the rank they need with `to_rank<R>`, which
/// throws cvk::shape_error naming the function and the argument when the rank differs.
template <class T>
class dynamic_view {
 public:
  using element_type = T;
  using value_type = std::remove_cv_t<T>;
  using extents_type = std::array<index_t, max_dynamic_rank>;

  constexpr dynamic_view() noexcept = default;
  /// `rank` must be at most max_dynamic_rank; only the first `rank` entries are read.
  constexpr dynamic_view(T* data, std::size_t rank, const extents_type& extents,
                         const extents_type& strides) noexcept
      : data_(data), rank_(rank), extents_(extents), strides_(strides) {}

  constexpr operator dynamic_view<const T>() const noexcept  // NOLINT(google-explicit-constructor)
      requires(!std::is_const_v<T>) {
    return {data_, rank_, extents_, strides_};
  }

  [[nodiscard]] constexpr std::size_t rank() const noexcept { return rank_; }
  [[nodiscard]] constexpr T* data() const noexcept { return data_; }
  [[nodiscard]] constexpr index_t extent(std::size_t axis) const noexcept { return extents_[axis]; }
  [[nodiscard]] constexpr index_t stride(std::size_t axis) const noexcept { return strides_[axis]; }
  [[nodiscard]] std::string shape_string() const { return detail::shape_string(extents_, rank_); }

  /// The fixed-rank view of the same elements; `function` and `argument` name the caller in
  /// the error raised when the rank is not `Rank`.
  template <std::size_t Rank>
  [[nodiscard]] strided_view<T, Rank> to_rank(const char* function = "to_rank",
                                              const char* argument = "tensor") const {
    if (rank_ != Rank) {
      CVK_THROW(shape_error, std::string(function) + ": " + argument + " must have rank " +
                                 std::to_string(Rank) + ", got rank " + std::to_string(rank_) +
                                 " (" + shape_string() + ")");
    }
    typename strided_view<T, Rank>::extents_type extents{};
    typename strided_view<T, Rank>::extents_type strides{};
    for (std::size_t i = 0; i < Rank; ++i) {
      extents[i] = extents_[i];
      strides[i] = strides_[i];
    }
    return {data_, extents, strides};
  }

  [[nodiscard]] constexpr dynamic_view as_cvk_view() const noexcept { return *this; }

 private:
  T* data_ = nullptr;
  std::size_t rank_ = 0;
  extents_type extents_{};
  extents_type strides_{};
};

namespace detail {
template <class V>
inline constexpr bool is_strided_view_v = false;
template <class T, std::size_t R>
inline constexpr bool is_strided_view_v<strided_view<T, R>> = true;
template <class V>
inline constexpr bool is_dynamic_view_v = false;
template <class T>
inline constexpr bool is_dynamic_view_v<dynamic_view<T>> = true;
}  // namespace detail

/// A view of a raw pointer, contiguous row-major: `cvk::view(ptr, rows, cols)`.
template <class T, std::integral... Extents>
requires(sizeof...(Extents) >= 1)
    [[nodiscard]] constexpr strided_view<T, sizeof...(Extents)> view(T* data,
                                                                     Extents... extents) noexcept {
  return {data, {static_cast<index_t>(extents)...}};
}

/// A view of a raw pointer with explicit extents: `cvk::view(ptr, {rows, cols})`.
template <class T, std::size_t Rank>
[[nodiscard]] constexpr strided_view<T, Rank> view(T* data,
                                                   const index_t (&extents)[Rank]) noexcept {
  std::array<index_t, Rank> e{};
  for (std::size_t i = 0; i < Rank; ++i) e[i] = extents[i];
  return {data, e};
}

/// A view of a raw pointer with explicit extents and element strides:
/// `cvk::view(ptr, {rows, cols}, {row_stride, 1})`.
template <class T, std::size_t Rank>
[[nodiscard]] constexpr strided_view<T, Rank> view(T* data, const index_t (&extents)[Rank],
                                                   const index_t (&strides)[Rank]) noexcept {
  std::array<index_t, Rank> e{};
  std::array<index_t, Rank> s{};
  for (std::size_t i = 0; i < Rank; ++i) {
    e[i] = extents[i];
    s[i] = strides[i];
  }
  return {data, e, s};
}

CVK_END_NAMESPACE
