// cvk — computer-vision kernels, header-only C++20.
// cvk::tensor<T, Rank>: the small owning row-major array that value-returning operators give
// back. It is a tensor_like itself, so results feed straight into other operators.
// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <array>
#include <concepts>
#include <cstddef>
#include <limits>
#include <new>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "config.hpp"
#include "errors.hpp"
#include "strided_view.hpp"

CVK_BEGIN_NAMESPACE

/// An owning, contiguous, row-major `Rank`-dimensional array of `T` (value-initialized).
template <class T, std::size_t Rank>
class tensor {
  static_assert(!std::is_const_v<T> && !std::is_reference_v<T>, "cvk::tensor holds plain values");
  static_assert(!std::is_same_v<T, bool>, "cvk::tensor<bool> is not supported; use unsigned char");

 public:
  using value_type = T;
  using extents_type = std::array<index_t, Rank>;
  using view_type = strided_view<T, Rank>;
  using const_view_type = strided_view<const T, Rank>;
  using iterator = typename std::vector<T>::iterator;
  using const_iterator = typename std::vector<T>::const_iterator;

  /// An empty tensor (every extent 0, or a single element for rank 0).
  tensor() : values_(Rank == 0 ? 1 : 0) {}

  /// A tensor of the given extents filled with `fill`. Throws cvk::shape_error on a negative
  /// extent and cvk::out_of_range when the element count overflows, the bytes exceed
  /// detail::max_allocation_bytes (just under 1 TiB) or the allocation fails.
  explicit tensor(const extents_type& extents, const T& fill = T{})
      : extents_(extents), values_(allocate(extents, fill)) {}

  /// `cvk::tensor<float, 2> t(rows, cols);`
  template <std::integral... Extents>
  requires(sizeof...(Extents) == Rank && Rank > 0) explicit tensor(Extents... extents)
      : tensor(extents_type{static_cast<index_t>(extents)...}) {}

  [[nodiscard]] static constexpr std::size_t rank() noexcept { return Rank; }
  [[nodiscard]] index_t extent(std::size_t axis) const noexcept { return extents_[axis]; }
  [[nodiscard]] const extents_type& extents() const noexcept { return extents_; }
  [[nodiscard]] index_t size() const noexcept { return static_cast<index_t>(values_.size()); }
  [[nodiscard]] bool empty() const noexcept { return values_.empty(); }
  [[nodiscard]] T* data() noexcept { return values_.data(); }
  [[nodiscard]] const T* data() const noexcept { return values_.data(); }

  [[nodiscard]] view_type view() noexcept { return {values_.data(), extents_}; }
  [[nodiscard]] const_view_type view() const noexcept { return {values_.data(), extents_}; }
  /// Mutable view only from a non-const lvalue; rvalues and const tensors give const views.
  [[nodiscard]] view_type as_cvk_view() & noexcept { return view(); }
  [[nodiscard]] const_view_type as_cvk_view() const& noexcept { return view(); }

  template <std::integral... Indices>
  requires(sizeof...(Indices) == Rank) [[nodiscard]] T& operator()(Indices... indices) noexcept {
    return view()(indices...);
  }
  template <std::integral... Indices>
  requires(sizeof...(Indices) == Rank) [[nodiscard]] const T& operator()(
      Indices... indices) const noexcept {
    return view()(indices...);
  }

  iterator begin() noexcept { return values_.begin(); }
  iterator end() noexcept { return values_.end(); }
  const_iterator begin() const noexcept { return values_.begin(); }
  const_iterator end() const noexcept { return values_.end(); }

  [[nodiscard]] std::string shape_string() const { return detail::shape_string(extents_, Rank); }

  friend bool operator==(const tensor& a, const tensor& b) {
    return a.extents_ == b.extents_ && a.values_ == b.values_;
  }

 private:
  /// The values, or cvk::out_of_range instead of std::bad_alloc: a value-returning operator's
  /// result sized by a broadcast input (2^40 rows of stride 0) must end in a cvk error.
  static std::vector<T> allocate(const extents_type& extents, const T& fill) {
    const std::size_t count = checked_size(extents);
#if CVK_HAS_EXCEPTIONS
    try {
      return std::vector<T>(count, fill);
    } catch (const std::bad_alloc&) {
      throw_too_large(extents);
    } catch (const std::length_error&) {
      throw_too_large(extents);
    }
#else
    return std::vector<T>(count, fill);
#endif
  }

  [[noreturn]] static void throw_too_large(const extents_type& extents) {
    CVK_THROW(out_of_range,
              "tensor: " + detail::shape_string(extents, Rank) + " elements do not fit in memory");
  }

  static std::size_t checked_size(const extents_type& extents) {
    std::size_t count = 1;
    for (std::size_t i = 0; i < Rank; ++i) {
      if (extents[i] < 0) {
        CVK_THROW(shape_error, "tensor: extents must be non-negative, got " +
                                   detail::shape_string(extents, Rank));
      }
      const auto e = static_cast<std::size_t>(extents[i]);
      if (e != 0 && count > std::numeric_limits<std::size_t>::max() / sizeof(T) / e) {
        throw_too_large(extents);
      }
      count *= e;
    }
    if (count > detail::max_allocation_bytes / sizeof(T)) throw_too_large(extents);
    return count;
  }

  extents_type extents_{};
  std::vector<T> values_;
};

CVK_END_NAMESPACE
