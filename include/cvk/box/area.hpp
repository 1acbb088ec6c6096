// cvk — computer-vision kernels, header-only C++20.
// box_area (torchvision.ops.box_area semantics; any format, optional pixel-inclusive widths).
// SPDX-License-Identifier: MIT
#pragma once

#include <array>
#include <type_traits>

#include "../core/as_view.hpp"
#include "../core/config.hpp"
#include "../core/tensor.hpp"
#include "../detail/checks.hpp"
#include "format.hpp"

CVK_BEGIN_NAMESPACE

namespace detail {
/// Area of one xyxy box: (x2 - x1) * (y2 - y1), widths not clamped (as torchvision), so a
/// box inverted along one axis has a negative area (along both, a positive one). NaN coordinates
/// give NaN.
template <class R>
constexpr R xyxy_area(const std::array<R, 4>& b, box_convention convention) noexcept {
  // Two branches rather than adding a 0: x + 0 cannot be folded away (it turns -0 into +0), and
  // the branch is loop-invariant, so compilers hoist it out of the loop.
  if (convention.pixel_inclusive) return (b[2] - b[0] + R(1)) * (b[3] - b[1] + R(1));
  return (b[2] - b[0]) * (b[3] - b[1]);
}
}  // namespace detail

/// Area of each box, written into `out`.
///
///   boxes  N×4 in `format` (xyxy by default), any arithmetic type, any strides
///   out    mutable tensor of N float or double values (no narrowing)
///
/// Area = (x2 - x1) * (y2 - y1) after conversion to xyxy, as torchvision: widths are not
/// clamped, so a box inverted along one axis has a negative area; NaN propagates. With
/// `pixel_inclusive`, (x2 - x1 + 1) * (y2 - y1 + 1). Throws cvk::shape_error when boxes is not
/// N×4 or out does not hold N values. O(N).
template <tensor_of_rank<2> Boxes, tensor_of_rank<1> Out>
void box_area(const Boxes& boxes, Out&& out, box_format format = box_format::xyxy,
              box_convention convention = {}) {
  const auto in = detail::checked_view<2>(boxes, "box_area", "boxes");
  detail::expect_shape(in, {detail::any_extent, 4}, "box_area", "boxes", "N×4");
  detail::check_format(format, "box_area", "format");
  const index_t n = in.extent(0);
  auto dst = detail::output_view<1>(std::forward<Out>(out), {n}, "box_area");
  using R = real_t<typename decltype(in)::value_type>;
  using O = typename decltype(dst)::value_type;
  detail::assert_no_narrowing<O, R>();
  const auto loop = [&](const auto& src, const auto& areas, auto format_c) {
    for (index_t i = 0; i < n; ++i) {
      const auto b = detail::to_xyxy(detail::load_box<R>(src, i), format_c(), convention);
      areas(i) = static_cast<O>(detail::xyxy_area(b, convention));
    }
  };
  detail::dispatch_format(format, [&](auto format_c) {
    if (detail::rows_are_packed<4>(in) && (dst.stride(0) == 1 || n <= 1)) {
      O* const first = dst.data();
      loop(
          detail::packed_rows<const typename decltype(in)::value_type, 4>{in.data()},
          [first](index_t i) -> O& { return first[i]; }, format_c);
    } else {
      loop(in, dst, format_c);
    }
  });
}

/// Area of each box, returned as a tensor of N values (see above).
template <tensor_of_rank<2> Boxes>
[[nodiscard]] auto box_area(const Boxes& boxes, box_format format = box_format::xyxy,
                            box_convention convention = {}) {
  const auto in = detail::checked_view<2>(boxes, "box_area", "boxes");
  detail::expect_shape(in, {detail::any_extent, 4}, "box_area", "boxes", "N×4");
  tensor<real_t<typename decltype(in)::value_type>, 1> result(in.extent(0));
  box_area(in, result, format, convention);
  return result;
}

/// Area of one box (a 4-vector: std::array, a registered struct, ...).
template <tensor_of_static_rank<1> Box>
[[nodiscard]] auto box_area(const Box& box, box_format format = box_format::xyxy,
                            box_convention convention = {}) {
  const auto in = detail::checked_view<1>(box, "box_area", "box");
  detail::expect_shape(in, {4}, "box_area", "box", "4");
  detail::check_format(format, "box_area", "format");
  using R = real_t<typename decltype(in)::value_type>;
  return detail::xyxy_area(detail::to_xyxy(detail::load_single_box<R>(in), format, convention),
                           convention);
}

CVK_END_NAMESPACE
