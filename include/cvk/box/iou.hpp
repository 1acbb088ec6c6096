// cvk — computer-vision kernels, header-only C++20.
// The IoU family: box_iou, box_ioa, generalized_box_iou (Rezatofighi et al., CVPR 2019,
// Algorithm 1), distance_box_iou and complete_box_iou (Zheng et al., AAAI 2020) — pairwise N×M,
// aligned (N pairs) and single-box forms, formulas and operation order as torchvision 0.14.
// IoU, IoA and GIoU also work on N-dimensional boxes (box_iou<3> for x1,y1,z1,x2,y2,z2).
// SPDX-License-Identifier: MIT
#pragma once

#include <cstddef>
#include <string>
#include <type_traits>
#include <utility>

#include "../core/as_view.hpp"
#include "../core/config.hpp"
#include "../core/tensor.hpp"
#include "../detail/checks.hpp"
#include "detail/pair_math.hpp"
#include "detail/pairwise.hpp"
#include "format.hpp"

CVK_BEGIN_NAMESPACE

/// Options shared by the IoU family.
struct iou_options {
  /// Format of both box sets (2-D boxes only; N-D boxes are always lo..., hi...).
  box_format format = box_format::xyxy;
  /// Guard added to the DIoU/CIoU denominators (torchvision's default 1e-7).
  double eps = 1e-7;
  /// Threads for the pairwise forms: 0 = max_threads(). Results do not depend on it.
  int threads = 0;
};

namespace detail {

template <std::size_t Dim>
constexpr const char* box_columns_pattern() noexcept {
  if constexpr (Dim == 2)
    return "N×4";
  else if constexpr (Dim == 3)
    return "N×6";
  else
    return "N×(2·Dim)";
}

template <iou_kind Kind>
constexpr const char* iou_function_name(bool aligned) noexcept {
  switch (Kind) {
    case iou_kind::iou:
      return aligned ? "box_iou_aligned" : "box_iou";
    case iou_kind::ioa:
      return aligned ? "box_ioa_aligned" : "box_ioa";
    case iou_kind::giou:
      return aligned ? "generalized_box_iou_aligned" : "generalized_box_iou";
    case iou_kind::diou:
      return aligned ? "distance_box_iou_aligned" : "distance_box_iou";
    case iou_kind::ciou:
      return aligned ? "complete_box_iou_aligned" : "complete_box_iou";
  }
  return "box_iou";
}

template <class A, class B>
using pair_real_t = real_t<std::common_type_t<tensor_value_t<const A&>, tensor_value_t<const B&>>>;

/// boxes1 and boxes2 as checked views of N×(2·Dim) and M×(2·Dim) boxes.
template <std::size_t Dim, class A, class B>
auto checked_box_sets(const A& boxes1, const B& boxes2, const char* fn) {
  static_assert(Dim >= 1, "cvk: boxes need at least one dimension");
  constexpr auto cols = static_cast<index_t>(2 * Dim);
  const auto a = checked_view<2>(boxes1, fn, "boxes1");
  const auto b = checked_view<2>(boxes2, fn, "boxes2");
  expect_shape(a, {any_extent, cols}, fn, "boxes1", box_columns_pattern<Dim>());
  expect_shape(b, {any_extent, cols}, fn, "boxes2", box_columns_pattern<Dim>());
  return std::pair{a, b};
}

/// Checks the options of an IoU-family call: the format (2-D boxes) and, for DIoU / CIoU, eps.
template <iou_kind Kind, std::size_t Dim>
void check_iou_options(const iou_options& options, const char* fn) {
  if constexpr (Dim == 2) check_format(options.format, fn, "options.format");
  if constexpr (Kind == iou_kind::diou || Kind == iou_kind::ciou) {
    if (!(options.eps >= 0.0)) {
      CVK_THROW(invalid_argument,
                std::string(fn) + ": eps must be a number >= 0, got " + number_string(options.eps));
    }
  }
}

template <iou_kind Kind, std::size_t Dim, class A, class B, class Out>
void pairwise_entry(const A& boxes1, const B& boxes2, Out&& out, const iou_options& options) {
  constexpr const char* fn = iou_function_name<Kind>(false);
  const auto [a, b] = checked_box_sets<Dim>(boxes1, boxes2, fn);
  check_iou_options<Kind, Dim>(options, fn);
  auto dst = output_view<2>(std::forward<Out>(out), {a.extent(0), b.extent(0)}, fn);
  using R = pair_real_t<A, B>;
  assert_no_narrowing<typename decltype(dst)::value_type, R>();
  pairwise_metric<Kind, R, Dim>(a, b, dst, options.format, static_cast<R>(options.eps),
                                options.threads);
}

template <iou_kind Kind, std::size_t Dim, class A, class B>
auto pairwise_entry(const A& boxes1, const B& boxes2, const iou_options& options) {
  constexpr const char* fn = iou_function_name<Kind>(false);
  const auto a = checked_view<2>(boxes1, fn, "boxes1");
  const auto b = checked_view<2>(boxes2, fn, "boxes2");
  using Result = tensor<pair_real_t<A, B>, 2>;
  const auto shapes = [&] { return a.shape_string() + " and " + b.shape_string(); };
  const index_t pairs = checked_mul(a.extent(0), b.extent(0), fn, "boxes1 × boxes2", shapes);
  Result result =
      checked_allocation<pair_real_t<A, B>>(pairs, fn, "the N×M result of boxes1 × boxes2", shapes,
                                            [&] { return Result(a.extent(0), b.extent(0)); });
  pairwise_entry<Kind, Dim>(a, b, result, options);
  return result;
}

template <iou_kind Kind, std::size_t Dim, class A, class B, class Out>
void aligned_entry(const A& boxes1, const B& boxes2, Out&& out, const iou_options& options) {
  constexpr const char* fn = iou_function_name<Kind>(true);
  const auto [a, b] = checked_box_sets<Dim>(boxes1, boxes2, fn);
  expect_same_rows(a, b, fn, "boxes1", "boxes2");
  check_iou_options<Kind, Dim>(options, fn);
  auto dst = output_view<1>(std::forward<Out>(out), {a.extent(0)}, fn);
  using R = pair_real_t<A, B>;
  assert_no_narrowing<typename decltype(dst)::value_type, R>();
  aligned_metric<Kind, R, Dim>(a, b, dst, options.format, static_cast<R>(options.eps),
                               options.threads);
}

template <iou_kind Kind, std::size_t Dim, class A, class B>
auto aligned_entry(const A& boxes1, const B& boxes2, const iou_options& options) {
  constexpr const char* fn = iou_function_name<Kind>(true);
  const auto a = checked_view<2>(boxes1, fn, "boxes1");
  tensor<pair_real_t<A, B>, 1> result(a.extent(0));
  aligned_entry<Kind, Dim>(a, boxes2, result, options);
  return result;
}

template <iou_kind Kind, std::size_t Dim, class A, class B>
auto single_entry(const A& box1, const B& box2, const iou_options& options) {
  constexpr const char* fn = iou_function_name<Kind>(false);
  constexpr auto cols = static_cast<index_t>(2 * Dim);
  const auto a = checked_view<1>(box1, fn, "box1");
  const auto b = checked_view<1>(box2, fn, "box2");
  expect_shape(a, {cols}, fn, "box1");
  expect_shape(b, {cols}, fn, "box2");
  check_iou_options<Kind, Dim>(options, fn);
  using R = pair_real_t<A, B>;
  const auto corners = [&](const auto& v) {
    std::array<R, 2 * Dim> c{};
    for (std::size_t k = 0; k < 2 * Dim; ++k) c[k] = static_cast<R>(v(static_cast<index_t>(k)));
    if constexpr (Dim == 2) c = to_xyxy(c, options.format, box_convention{});
    return c;
  };
  return metric_one<Kind>(prepare_box<R, Dim>(corners(a)), prepare_box<R, Dim>(corners(b)),
                          static_cast<R>(options.eps));
}

}  // namespace detail

// The public entry points. For each member of the family:
//   name<Dim>(boxes1, boxes2[, options])          → tensor N×M          (pairwise)
//   name<Dim>(boxes1, boxes2, out[, options])     → writes N×M into out
//   name_aligned<Dim>(boxes1, boxes2[, options])  → tensor N            (pair i with pair i)
//   name_aligned<Dim>(boxes1, boxes2, out[, ...]) → writes N into out
//   name<Dim>(box1, box2[, options])              → scalar              (two single boxes)
// boxes1: N×(2·Dim), boxes2: M×(2·Dim), any arithmetic type and strides; Dim defaults to 2.
// Results are float for float input, double for double or integer input.
#define CVK_DEFINE_IOU_FAMILY(name, kind)                                                         \
  template <std::size_t Dim = 2, tensor_of_rank<2> A, tensor_of_rank<2> B>                        \
  [[nodiscard]] auto name(const A& boxes1, const B& boxes2, const iou_options& options = {}) {    \
    return detail::pairwise_entry<kind, Dim>(boxes1, boxes2, options);                            \
  }                                                                                               \
  template <std::size_t Dim = 2, tensor_of_rank<2> A, tensor_of_rank<2> B, tensor_of_rank<2> Out> \
  void name(const A& boxes1, const B& boxes2, Out&& out, const iou_options& options = {}) {       \
    detail::pairwise_entry<kind, Dim>(boxes1, boxes2, std::forward<Out>(out), options);           \
  }                                                                                               \
  template <std::size_t Dim = 2, tensor_of_rank<2> A, tensor_of_rank<2> B>                        \
  [[nodiscard]] auto name##_aligned(const A& boxes1, const B& boxes2,                             \
                                    const iou_options& options = {}) {                            \
    return detail::aligned_entry<kind, Dim>(boxes1, boxes2, options);                             \
  }                                                                                               \
  template <std::size_t Dim = 2, tensor_of_rank<2> A, tensor_of_rank<2> B, tensor_of_rank<1> Out> \
  void name##_aligned(const A& boxes1, const B& boxes2, Out&& out,                                \
                      const iou_options& options = {}) {                                          \
    detail::aligned_entry<kind, Dim>(boxes1, boxes2, std::forward<Out>(out), options);            \
  }                                                                                               \
  template <std::size_t Dim = 2, tensor_of_static_rank<1> A, tensor_of_static_rank<1> B>          \
  [[nodiscard]] auto name(const A& box1, const B& box2, const iou_options& options = {}) {        \
    return detail::single_entry<kind, Dim>(box1, box2, options);                                  \
  }

/// IoU = |A∩B| / |A∪B|; 0 when the union is not positive; NaN for non-finite coordinates.
CVK_DEFINE_IOU_FAMILY(box_iou, detail::iou_kind::iou)
/// IoA = |A∩B| / |A| (intersection over the area of the box from boxes1); 0 when |A| <= 0.
CVK_DEFINE_IOU_FAMILY(box_ioa, detail::iou_kind::ioa)
/// GIoU = IoU - (|C| - |A∪B|) / |C|, C the smallest enclosing box; IoU when |C| = 0.
CVK_DEFINE_IOU_FAMILY(generalized_box_iou, detail::iou_kind::giou)
/// DIoU = IoU - ρ²(centres) / (c² + eps), c the diagonal of the enclosing box (2-D only).
CVK_DEFINE_IOU_FAMILY(distance_box_iou, detail::iou_kind::diou)
/// CIoU = DIoU - α v, v = 4/π² (atan(w1/h1) - atan(w2/h2))², α = v / (1 - IoU + v + eps) (2-D).
CVK_DEFINE_IOU_FAMILY(complete_box_iou, detail::iou_kind::ciou)

#undef CVK_DEFINE_IOU_FAMILY

CVK_END_NAMESPACE
