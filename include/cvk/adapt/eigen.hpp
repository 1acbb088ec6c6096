// cvk — computer-vision kernels, header-only C++20.
// Opt-in adaptor: Eigen dense expressions with direct access (Matrix, Array, Map, Ref, Block,
// Transpose, either storage order, any inner/outer stride) and Eigen::Tensor / TensorMap /
// TensorFixedSize are tensors that every cvk operator accepts. Link cvk::eigen.
// SPDX-License-Identifier: MIT
#pragma once

#include <array>
#include <cstddef>
#include <type_traits>
#include <utility>

#include <Eigen/Core>

// The Tensor module is heavy and unsupported upstream; it is adapted when present unless the
// user defines CVK_EIGEN_NO_TENSOR.
#if !defined(CVK_EIGEN_NO_TENSOR) && __has_include(<unsupported/Eigen/CXX11/Tensor>)
#  include <unsupported/Eigen/CXX11/Tensor>
#  define CVK_EIGEN_HAS_TENSOR 1
#else
#  define CVK_EIGEN_HAS_TENSOR 0
#endif

#include "../core/as_view.hpp"
#include "../core/config.hpp"
#include "../core/strided_view.hpp"

CVK_BEGIN_NAMESPACE

namespace detail::eigen {

// Deduction against a base class: true for every class derived from Eigen::DenseBase<D>, and it
// never instantiates Eigen templates with a non-Eigen type.
template <class D>
D dense_derived(const Eigen::DenseBase<D>*);
void dense_derived(const void*);

template <class D>
std::true_type plain_object(const Eigen::PlainObjectBase<D>*);
std::false_type plain_object(const void*);

/// The Eigen expression type X derives from (X itself unless a user class derives from one).
template <class X>
using dense_derived_t = decltype(dense_derived(static_cast<const X*>(nullptr)));

/// A dense Eigen expression whose coefficients live in memory at (rowStride, colStride) steps.
template <class X>
concept direct_dense =
    !std::is_void_v<dense_derived_t<X>> &&
    (static_cast<unsigned>(dense_derived_t<X>::Flags) & Eigen::DirectAccessBit) != 0u;

/// Its coefficients can be written (LvalueBit: not a Map<const ...>, not a Block of a const).
template <class X>
inline constexpr bool is_lvalue = (static_cast<unsigned>(dense_derived_t<X>::Flags) &
                                   Eigen::LvalueBit) != 0u;

/// It owns its coefficients (Matrix, Array): a temporary of it is an input, never an output.
template <class X>
inline constexpr bool owns_storage = decltype(plain_object(static_cast<const X*>(nullptr)))::value;

/// The view of `x` (X possibly const): rank 1 for compile-time vectors, rank 2 otherwise.
template <bool Mutable, class X>
auto dense_view(X& x) {
  using D = dense_derived_t<std::remove_const_t<X>>;
  using T = std::conditional_t<Mutable, typename D::Scalar, const typename D::Scalar>;
  T* const data = x.data();
  if constexpr (D::IsVectorAtCompileTime) {
    // A column vector steps by rowStride, a row vector by colStride (a 1×1 matrix is both).
    const index_t stride = D::ColsAtCompileTime == 1 ? x.rowStride() : x.colStride();
    return strided_view<T, 1>(data, {static_cast<index_t>(x.size())}, {stride});
  } else {
    return strided_view<T, 2>(
        data, {static_cast<index_t>(x.rows()), static_cast<index_t>(x.cols())},
        {static_cast<index_t>(x.rowStride()), static_cast<index_t>(x.colStride())});
  }
}

}  // namespace detail::eigen

/// Any Eigen dense expression with direct access: `Matrix`, `Array`, `Map` (with any
/// `Stride`), `Ref`, `Block` (`block`, `col`, `row`, `topRows`, ...), `Transpose`, `.array()`.
///
///   compile-time vectors (RowsAtCompileTime == 1 or ColsAtCompileTime == 1)  rank 1, size()
///   everything else                                                            rank 2, rows×cols
///
/// Strides are Eigen's rowStride()/colStride(), so column-major (Eigen's default) and row-major
/// storage, outer and inner strides are all honoured; N×4 boxes are any rows×4 expression.
/// A const object, or an expression without write access (`Map<const ...>`, a block of a const
/// matrix, `Ref<const ...>`), gives a view of `const Scalar`. A mutable view comes from a
/// non-const lvalue, and from a temporary that does not own its coefficients (a `Map`, a
/// `block(...)`, `col(j)`, a `Ref`), so those can be passed as outputs; a temporary `Matrix`
/// or `Array` gives a const view. The view is valid as long as the coefficients it points to.
template <class X>
requires detail::eigen::direct_dense<X>
struct view_traits<X> {
  static auto view(X& x) { return detail::eigen::dense_view<detail::eigen::is_lvalue<X>>(x); }
  static auto view(const X& x) { return detail::eigen::dense_view<false>(x); }
  static auto view(X&& x) {
    if constexpr (detail::eigen::owns_storage<X>) {
      return detail::eigen::dense_view<false>(std::as_const(x));
    } else {
      return detail::eigen::dense_view<detail::eigen::is_lvalue<X>>(x);
    }
  }
};

#if CVK_EIGEN_HAS_TENSOR

namespace detail::eigen {

/// Extents of an Eigen tensor from its dimensions(): DSizes (Tensor, TensorMap) or Sizes
/// (TensorFixedSize).
template <class Index, int Rank>
std::array<index_t, static_cast<std::size_t>(Rank)> tensor_extents(
    const Eigen::DSizes<Index, Rank>& dimensions) {
  std::array<index_t, static_cast<std::size_t>(Rank)> extents{};
  for (std::size_t i = 0; i < extents.size(); ++i) {
    extents[i] = static_cast<index_t>(dimensions[i]);
  }
  return extents;
}
template <std::ptrdiff_t... Sizes>
std::array<index_t, sizeof...(Sizes)> tensor_extents(const Eigen::Sizes<Sizes...>&) {
  return {static_cast<index_t>(Sizes)...};
}

/// Strides of a contiguous Eigen tensor: Eigen::Tensor is column-major unless its Options
/// carry Eigen::RowMajor (the opposite of NumPy and xtensor).
template <int Layout, std::size_t Rank>
std::array<index_t, Rank> tensor_strides(const std::array<index_t, Rank>& extents) {
  std::array<index_t, Rank> strides{};
  index_t step = 1;
  if constexpr (Layout == Eigen::RowMajor) {
    for (std::size_t i = Rank; i-- > 0;) {
      strides[i] = step;
      step *= extents[i];
    }
  } else {
    for (std::size_t i = 0; i < Rank; ++i) {
      strides[i] = step;
      step *= extents[i];
    }
  }
  return strides;
}

/// The view of an Eigen tensor-like object `x` (X possibly const) with element type T.
template <class T, class X>
strided_view<T, static_cast<std::size_t>(std::remove_const_t<X>::NumIndices)> tensor_view(X& x) {
  using Plain = std::remove_const_t<X>;
  constexpr auto rank = static_cast<std::size_t>(Plain::NumIndices);
  constexpr int layout = static_cast<int>(Plain::Layout);
  const std::array<index_t, rank> extents = tensor_extents(x.dimensions());
  T* const data = x.data();
  return {data, extents, tensor_strides<layout, rank>(extents)};
}

}  // namespace detail::eigen

/// `Eigen::Tensor<Scalar, N, Options>`: rank N, contiguous, column-major unless Options has
/// Eigen::RowMajor. Owning: only a non-const lvalue gives a mutable view.
template <class Scalar, int NumIndices, int Options, class IndexType>
struct view_traits<Eigen::Tensor<Scalar, NumIndices, Options, IndexType>> {
  using tensor_type = Eigen::Tensor<Scalar, NumIndices, Options, IndexType>;
  static auto view(tensor_type& x) { return detail::eigen::tensor_view<Scalar>(x); }
  static auto view(const tensor_type& x) { return detail::eigen::tensor_view<const Scalar>(x); }
};

/// `Eigen::TensorFixedSize<Scalar, Sizes<...>, Options>`: as Eigen::Tensor.
template <class Scalar, class Dimensions, int Options, class IndexType>
struct view_traits<Eigen::TensorFixedSize<Scalar, Dimensions, Options, IndexType>> {
  using tensor_type = Eigen::TensorFixedSize<Scalar, Dimensions, Options, IndexType>;
  static auto view(tensor_type& x) { return detail::eigen::tensor_view<Scalar>(x); }
  static auto view(const tensor_type& x) { return detail::eigen::tensor_view<const Scalar>(x); }
};

/// `Eigen::TensorMap<Tensor<...>>`: rank and layout of the mapped tensor type. It does not
/// own its coefficients, so a temporary TensorMap is a valid output; `TensorMap<const ...>`
/// and const TensorMaps give const views.
template <class PlainObjectType, int Options, template <class> class MakePointer>
struct view_traits<Eigen::TensorMap<PlainObjectType, Options, MakePointer>> {
  using map_type = Eigen::TensorMap<PlainObjectType, Options, MakePointer>;
  using scalar = typename std::remove_const_t<PlainObjectType>::Scalar;
  using element = std::conditional_t<std::is_const_v<PlainObjectType>, const scalar, scalar>;
  static auto view(map_type& x) { return detail::eigen::tensor_view<element>(x); }
  static auto view(map_type&& x) { return detail::eigen::tensor_view<element>(x); }
  static auto view(const map_type& x) { return detail::eigen::tensor_view<const scalar>(x); }
};

#endif  // CVK_EIGEN_HAS_TENSOR

CVK_END_NAMESPACE
