// cvk — computer-vision kernels, header-only C++20.
// Box formats and box_convert (torchvision.ops.box_convert semantics, plus yxyx and the legacy
// pixel-inclusive "+1" convention).
// SPDX-License-Identifier: MIT
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <type_traits>
#include <utility>

#include "../core/as_view.hpp"
#include "../core/config.hpp"
#include "../core/tensor.hpp"
#include "../detail/checks.hpp"

CVK_BEGIN_NAMESPACE

/// Column order of a box.
enum class box_format {
  xyxy,    ///< (x1, y1, x2, y2): top-left and bottom-right corners (torchvision's default)
  xywh,    ///< (x1, y1, w, h): top-left corner, width and height (COCO, OpenCV Rect)
  cxcywh,  ///< (cx, cy, w, h): centre, width and height (DETR, YOLO)
  yxyx,    ///< (y1, x1, y2, x2): corners, rows first (TensorFlow, ONNX NonMaxSuppression)
};

/// Name of a format, "xyxy".
[[nodiscard]] constexpr const char* to_string(box_format format) noexcept {
  switch (format) {
    case box_format::xyxy:
      return "xyxy";
    case box_format::xywh:
      return "xywh";
    case box_format::cxcywh:
      return "cxcywh";
    case box_format::yxyx:
      return "yxyx";
  }
  return "unknown";
}

/// How widths relate to corners. Continuous (the default, as torchvision): w = x2 - x1.
/// Pixel-inclusive (legacy Detectron / py-faster-rcnn, integer pixel corners):
/// w = x2 - x1 + 1, and the centre is x1 + w/2.
struct box_convention {
  bool pixel_inclusive = false;
};

namespace detail {

/// Throws cvk::invalid_argument "function: argument must be xyxy, xywh, cxcywh or yxyx, got
/// box_format(7)" for a value outside the enum (an integer cast to box_format), which the
/// kernels would otherwise read as xyxy.
inline void check_format(box_format format, const char* function, const char* argument) {
  switch (format) {
    case box_format::xyxy:
    case box_format::xywh:
    case box_format::cxcywh:
    case box_format::yxyx:
      return;
  }
  CVK_THROW(invalid_argument, std::string(function) + ": " + argument +
                                  " must be xyxy, xywh, cxcywh or yxyx, got box_format(" +
                                  std::to_string(static_cast<int>(format)) + ")");
}

/// One box to (x1, y1, x2, y2).
template <class R>
constexpr std::array<R, 4> to_xyxy(const std::array<R, 4>& b, box_format format,
                                   box_convention convention) noexcept {
  const R one = convention.pixel_inclusive ? R(1) : R(0);
  switch (format) {
    case box_format::xyxy:
      return b;
    case box_format::yxyx:
      return {b[1], b[0], b[3], b[2]};
    case box_format::xywh:
      return {b[0], b[1], b[0] + b[2] - one, b[1] + b[3] - one};
    case box_format::cxcywh: {
      const R x1 = b[0] - R(0.5) * b[2];
      const R y1 = b[1] - R(0.5) * b[3];
      if (convention.pixel_inclusive) return {x1, y1, x1 + b[2] - one, y1 + b[3] - one};
      return {x1, y1, b[0] + R(0.5) * b[2], b[1] + R(0.5) * b[3]};
    }
  }
  return b;
}

/// One box from (x1, y1, x2, y2).
template <class R>
constexpr std::array<R, 4> from_xyxy(const std::array<R, 4>& b, box_format format,
                                     box_convention convention) noexcept {
  const R one = convention.pixel_inclusive ? R(1) : R(0);
  switch (format) {
    case box_format::xyxy:
      return b;
    case box_format::yxyx:
      return {b[1], b[0], b[3], b[2]};
    case box_format::xywh:
      return {b[0], b[1], b[2] - b[0] + one, b[3] - b[1] + one};
    case box_format::cxcywh: {
      const R w = b[2] - b[0] + one;
      const R h = b[3] - b[1] + one;
      if (convention.pixel_inclusive) return {b[0] + R(0.5) * w, b[1] + R(0.5) * h, w, h};
      return {(b[0] + b[2]) / R(2), (b[1] + b[3]) / R(2), w, h};
    }
  }
  return b;
}

/// One box from `from` to `to` through xyxy; the identity when the formats agree (torchvision
/// returns a copy there, while the round trip through xyxy would round: x + w - x != w).
template <class R>
constexpr std::array<R, 4> convert_box(const std::array<R, 4>& b, box_format from, box_format to,
                                       box_convention convention) noexcept {
  if (from == to) return b;
  return from_xyxy(to_xyxy(b, from, convention), to, convention);
}

/// Row `i` of an N×4 view as four reals.
template <class R, class View>
constexpr std::array<R, 4> load_box(const View& boxes, index_t i) noexcept {
  return {static_cast<R>(boxes(i, 0)), static_cast<R>(boxes(i, 1)), static_cast<R>(boxes(i, 2)),
          static_cast<R>(boxes(i, 3))};
}

/// A single box (rank-1 view of 4) as four reals.
template <class R, class View>
constexpr std::array<R, 4> load_single_box(const View& box) noexcept {
  return {static_cast<R>(box(0)), static_cast<R>(box(1)), static_cast<R>(box(2)),
          static_cast<R>(box(3))};
}

/// Calls `body(std::integral_constant<box_format, F>{})` for the runtime `format`, so that a loop
/// is compiled once per format with the format's switch folded away.
template <class Body>
constexpr void dispatch_format(box_format format, Body&& body) {
  switch (format) {
    case box_format::xywh:
      body(std::integral_constant<box_format, box_format::xywh>{});
      return;
    case box_format::cxcywh:
      body(std::integral_constant<box_format, box_format::cxcywh>{});
      return;
    case box_format::yxyx:
      body(std::integral_constant<box_format, box_format::yxyx>{});
      return;
    case box_format::xyxy:
      break;
  }
  body(std::integral_constant<box_format, box_format::xyxy>{});
}

/// Contiguous rows of `Columns` elements: (i, k) → data[Columns·i + k], strides known to the
/// compiler (the fast path of a strided_view whose rows are packed).
template <class T, index_t Columns>
struct packed_rows {
  T* data;
  constexpr T& operator()(index_t i, index_t k) const noexcept { return data[Columns * i + k]; }
};

/// True when an N×Columns view's rows are packed (what packed_rows can stand for).
template <index_t Columns, class View>
constexpr bool rows_are_packed(const View& v) noexcept {
  return v.stride(1) == 1 && (v.stride(0) == Columns || v.extent(0) <= 1);
}

/// Checks that a result of type R can be stored in Out without narrowing.
template <class Out, class R>
constexpr void assert_no_narrowing() {
  static_assert(std::is_floating_point_v<Out>,
                "cvk: box results are floating point; the output tensor must hold float or double");
  static_assert(sizeof(Out) >= sizeof(R),
                "cvk: the output element type would narrow the result; use a double output for "
                "double or integer input");
}

}  // namespace detail

/// Converts boxes between formats, writing into `out`.
///
///   boxes  N×4 in `from`, any arithmetic type, any strides
///   out    N×4 mutable tensor of float or double (no narrowing), receives boxes in `to`
///
/// Integer input is converted in double. `out` may be `boxes` itself (in place).
/// Throws cvk::shape_error when boxes is not N×4 or out is not the same N×4.
/// O(N).
template <tensor_of_rank<2> Boxes, tensor_of_rank<2> Out>
void box_convert(const Boxes& boxes, box_format from, box_format to, Out&& out,
                 box_convention convention = {}) {
  const auto in = detail::checked_view<2>(boxes, "box_convert", "boxes");
  detail::expect_shape(in, {detail::any_extent, 4}, "box_convert", "boxes", "N×4");
  detail::check_format(from, "box_convert", "from");
  detail::check_format(to, "box_convert", "to");
  const index_t n = in.extent(0);
  auto dst = detail::output_view<2>(std::forward<Out>(out), {n, 4}, "box_convert");
  using R = real_t<typename decltype(in)::value_type>;
  using O = typename decltype(dst)::value_type;
  detail::assert_no_narrowing<O, R>();
  const auto loop = [&](const auto& src, const auto& out_rows, auto from_c, auto to_c) {
    for (index_t i = 0; i < n; ++i) {
      const auto b = detail::convert_box(detail::load_box<R>(src, i), from_c(), to_c(), convention);
      for (index_t k = 0; k < 4; ++k)
        out_rows(i, k) = static_cast<O>(b[static_cast<std::size_t>(k)]);
    }
  };
  detail::dispatch_format(from, [&](auto from_c) {
    detail::dispatch_format(to, [&](auto to_c) {
      if (detail::rows_are_packed<4>(in) && detail::rows_are_packed<4>(dst)) {
        loop(detail::packed_rows<const typename decltype(in)::value_type, 4>{in.data()},
             detail::packed_rows<O, 4>{dst.data()}, from_c, to_c);
      } else {
        loop(in, dst, from_c, to_c);
      }
    });
  });
}

/// Converts boxes between formats and returns them as a new N×4 tensor (see above).
template <tensor_of_rank<2> Boxes>
[[nodiscard]] auto box_convert(const Boxes& boxes, box_format from, box_format to,
                               box_convention convention = {}) {
  const auto in = detail::checked_view<2>(boxes, "box_convert", "boxes");
  detail::expect_shape(in, {detail::any_extent, 4}, "box_convert", "boxes", "N×4");
  tensor<real_t<typename decltype(in)::value_type>, 2> result(in.extent(0), index_t{4});
  box_convert(in, from, to, result, convention);
  return result;
}

/// Converts one box (a 4-vector: std::array, a registered struct, ...) and returns it.
template <tensor_of_static_rank<1> Box>
[[nodiscard]] auto box_convert(const Box& box, box_format from, box_format to,
                               box_convention convention = {}) {
  const auto in = detail::checked_view<1>(box, "box_convert", "box");
  detail::expect_shape(in, {4}, "box_convert", "box", "4");
  detail::check_format(from, "box_convert", "from");
  detail::check_format(to, "box_convert", "to");
  using R = real_t<typename decltype(in)::value_type>;
  return detail::convert_box(detail::load_single_box<R>(in), from, to, convention);
}

CVK_END_NAMESPACE
