// cvk — computer-vision kernels, header-only C++20.
// Non-intrusive registration of a user's own box struct (Boost.Geometry style):
//   struct MyBox { float x1, y1, x2, y2; int label; };
//   CVK_REGISTER_BOX(MyBox, x1, y1, x2, y2);     // at global scope
// after which a MyBox is a 4-vector, and std::vector<MyBox>, std::span<MyBox> and MyBox[N]
// are N×4 tensors that every box operator accepts. The four names are the box's columns in
// the order of the box_format used (x1, y1, x2, y2 for xyxy; x, y, w, h for xywh; ...).
// SPDX-License-Identifier: MIT
#pragma once

#include <cstddef>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include "as_view.hpp"
#include "config.hpp"
#include "strided_view.hpp"

CVK_BEGIN_NAMESPACE

/// Specialized by CVK_REGISTER_BOX: `scalar_type`, `offsets[4]` (bytes from the start of the
/// struct to each coordinate).
template <class Box>
struct box_traits;

/// A struct registered with CVK_REGISTER_BOX.
template <class Box>
concept registered_box = requires {
  typename box_traits<std::remove_cv_t<Box>>::scalar_type;
};

namespace detail {

/// Element stride between consecutive coordinates of a registered box; the macro checks at
/// compile time that the four members are equally spaced.
template <class Box>
constexpr index_t box_member_stride() {
  using traits = box_traits<Box>;
  using scalar = typename traits::scalar_type;
  constexpr auto* off = traits::offsets;
  return (static_cast<index_t>(off[1]) - static_cast<index_t>(off[0])) /
         static_cast<index_t>(sizeof(scalar));
}

template <class Box>
constexpr bool box_members_well_laid_out() {
  using traits = box_traits<Box>;
  using scalar = typename traits::scalar_type;
  constexpr auto* off = traits::offsets;
  constexpr auto sz = static_cast<index_t>(sizeof(scalar));
  const index_t d1 = static_cast<index_t>(off[1]) - static_cast<index_t>(off[0]);
  const index_t d2 = static_cast<index_t>(off[2]) - static_cast<index_t>(off[1]);
  const index_t d3 = static_cast<index_t>(off[3]) - static_cast<index_t>(off[2]);
  return d1 != 0 && d1 == d2 && d2 == d3 && d1 % sz == 0 && sizeof(Box) % sizeof(scalar) == 0;
}

/// Rows of registered boxes as an N×4 view (Box may be const).
template <class Box>
strided_view<std::conditional_t<std::is_const_v<Box>,
                                const typename box_traits<std::remove_const_t<Box>>::scalar_type,
                                typename box_traits<std::remove_const_t<Box>>::scalar_type>,
             2>
box_rows_view(Box* boxes, std::size_t n) noexcept {
  using plain = std::remove_const_t<Box>;
  using traits = box_traits<plain>;
  using scalar = std::conditional_t<std::is_const_v<Box>, const typename traits::scalar_type,
                                    typename traits::scalar_type>;
  using byte = std::conditional_t<std::is_const_v<Box>, const unsigned char, unsigned char>;
  scalar* first =
      n == 0 ? nullptr
             : reinterpret_cast<scalar*>(reinterpret_cast<byte*>(boxes) + traits::offsets[0]);
  return {first,
          {static_cast<index_t>(n), 4},
          {static_cast<index_t>(sizeof(plain) / sizeof(typename traits::scalar_type)),
           box_member_stride<plain>()}};
}

/// One registered box as a 4-vector view (Box may be const).
template <class Box>
auto single_box_view(Box* box) noexcept {
  const auto rows = box_rows_view(box, 1);
  using scalar = typename decltype(rows)::element_type;
  return strided_view<scalar, 1>{rows.data(), {4}, {rows.stride(1)}};
}

}  // namespace detail

/// One registered box: a 4-vector of its coordinates.
template <registered_box Box>
struct view_traits<Box> {
  static auto view(Box& box) noexcept { return detail::single_box_view(&box); }
  static auto view(const Box& box) noexcept { return detail::single_box_view(&box); }
};

/// std::vector of registered boxes: N×4.
template <registered_box Box, class Alloc>
struct view_traits<std::vector<Box, Alloc>> {
  static auto view(std::vector<Box, Alloc>& v) noexcept {
    return detail::box_rows_view(v.data(), v.size());
  }
  static auto view(const std::vector<Box, Alloc>& v) noexcept {
    return detail::box_rows_view(v.data(), v.size());
  }
};

/// std::span of registered boxes: N×4.
template <class Box, std::size_t Extent>
requires registered_box<Box>
struct view_traits<std::span<Box, Extent>> {
  static auto view(std::span<Box, Extent> s) noexcept {
    return detail::box_rows_view(s.data(), s.size());
  }
};

/// C array of registered boxes: N×4.
template <registered_box Box, std::size_t N>
struct view_traits<Box[N]> {
  static auto view(Box (&a)[N]) noexcept { return detail::box_rows_view(&a[0], N); }
  static auto view(const Box (&a)[N]) noexcept { return detail::box_rows_view(&a[0], N); }
};

CVK_END_NAMESPACE

/// Registers `Type` as a box whose four coordinates are the members `c0`..`c3` (in box_format
/// column order). Use at global scope. The members must have one arithmetic type and be equally
/// spaced in memory (declared in order, as in `float x1, y1, x2, y2;`).
#define CVK_REGISTER_BOX(Type, c0, c1, c2, c3)                                                    \
  template <>                                                                                     \
  struct cvk::box_traits<Type> {                                                                  \
    using scalar_type = std::remove_cvref_t<decltype(std::declval<Type&>().c0)>;                  \
    static_assert(std::is_arithmetic_v<scalar_type>,                                              \
                  "CVK_REGISTER_BOX: box coordinates must be arithmetic");                        \
    static_assert(                                                                                \
        std::is_same_v<scalar_type, std::remove_cvref_t<decltype(std::declval<Type&>().c1)>> &&   \
            std::is_same_v<scalar_type,                                                           \
                           std::remove_cvref_t<decltype(std::declval<Type&>().c2)>> &&            \
            std::is_same_v<scalar_type, std::remove_cvref_t<decltype(std::declval<Type&>().c3)>>, \
        "CVK_REGISTER_BOX: the four coordinates must have the same type");                        \
    static_assert(std::is_standard_layout_v<Type>,                                                \
                  "CVK_REGISTER_BOX: the box must be standard-layout");                           \
    static constexpr std::size_t offsets[4] = {offsetof(Type, c0), offsetof(Type, c1),            \
                                               offsetof(Type, c2), offsetof(Type, c3)};           \
  };                                                                                              \
  static_assert(::cvk::detail::box_members_well_laid_out<Type>(),                                 \
                "CVK_REGISTER_BOX: the four coordinates must be equally spaced in memory "        \
                "(declare them in order)")
