// cvk — computer-vision kernels, header-only C++20.
// Opt-in adaptor: cvk::from_dlpack turns a DLPack DLTensor (PyTorch, NumPy, JAX, CuPy, TVM
// exchange format; 0.6 as in Debian, and 1.x) in CPU memory into a checked view. Link cvk::dlpack.
// SPDX-License-Identifier: MIT
#pragma once

#include <dlpack/dlpack.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>

#include "../core/config.hpp"
#include "../core/errors.hpp"
#include "../core/strided_view.hpp"

CVK_BEGIN_NAMESPACE

namespace detail::dlpack {

/// The DLPack dtype of T: float32/float64, int8..int64, uint8..uint64 (one lane).
template <class T>
constexpr DLDataType dtype_of() noexcept {
  using U = std::remove_cv_t<T>;
  static_assert(std::is_arithmetic_v<U> && !std::is_same_v<U, bool>,
                "cvk::from_dlpack: the element type must be float, double or a fixed-size integer");
  static_assert(!std::is_floating_point_v<U> || sizeof(U) == 4 || sizeof(U) == 8,
                "cvk::from_dlpack: floating-point elements must be float (float32) or double "
                "(float64)");
  constexpr auto bits = static_cast<std::uint8_t>(sizeof(U) * 8);
  if constexpr (std::is_floating_point_v<U>) {
    return {static_cast<std::uint8_t>(kDLFloat), bits, 1};
  } else if constexpr (std::is_signed_v<U>) {
    return {static_cast<std::uint8_t>(kDLInt), bits, 1};
  } else {
    return {static_cast<std::uint8_t>(kDLUInt), bits, 1};
  }
}

/// "float32", "int64", "uint8", "bfloat16", "complex64", "float32x4" (4 lanes).
inline std::string dtype_name(const DLDataType& dtype) {
  std::string name;
  switch (dtype.code) {
    case 0:
      name = "int";
      break;
    case 1:
      name = "uint";
      break;
    case 2:
      name = "float";
      break;
    case 3:
      name = "handle";
      break;
    case 4:
      name = "bfloat";
      break;
    case 5:
      name = "complex";
      break;
    case 6:
      name = "bool";
      break;
    default:
      name = "code";
      name += std::to_string(dtype.code);
      name += '_';
      break;
  }
  name += std::to_string(dtype.bits);
  if (dtype.lanes != 1) {
    // Appended piece by piece: g++ 12 at -O3 warns (-Wrestrict, a false positive) on
    // "literal" + std::string temporaries.
    name += 'x';
    name += std::to_string(dtype.lanes);
  }
  return name;
}

/// "cpu:0", "cuda:1", ... for error messages.
inline std::string device_name(const DLDevice& device) {
  const char* name = nullptr;
  switch (static_cast<int>(device.device_type)) {
    case 1:
      name = "cpu";
      break;
    case 2:
      name = "cuda";
      break;
    case 3:
      name = "cuda_host";
      break;
    case 4:
      name = "opencl";
      break;
    case 7:
      name = "vulkan";
      break;
    case 8:
      name = "metal";
      break;
    case 9:
      name = "vpi";
      break;
    case 10:
      name = "rocm";
      break;
    case 11:
      name = "rocm_host";
      break;
    case 12:
      name = "ext_dev";
      break;
    case 13:
      name = "cuda_managed";
      break;
    case 14:
      name = "oneapi";
      break;
    default:
      break;
  }
  const std::string type =
      name != nullptr ? std::string(name)
                      : "device_type " + std::to_string(static_cast<int>(device.device_type));
  return type + ":" + std::to_string(device.device_id);
}

/// Memory the CPU reads directly: kDLCPU, and page-locked host memory (kDLCUDAHost, called
/// kDLCPUPinned before DLPack 0.6, and kDLROCMHost). Numeric codes keep this independent of
/// the enumerator names, which changed between DLPack versions.
constexpr bool host_memory(const DLDevice& device) noexcept {
  const int type = static_cast<int>(device.device_type);
  return type == 1 || type == 3 || type == 11;
}

inline bool same_dtype(const DLDataType& a, const DLDataType& b) noexcept {
  return a.code == b.code && a.bits == b.bits && a.lanes == b.lanes;
}

/// Checks `tensor` for a view of T of rank `rank` and fills extents and element strides
/// (row-major when tensor.strides is null); returns the address of element (0, ..., 0).
/// `expected_rank` < 0 means any rank up to `max_rank`.
template <class T, class Extents>
T* read(const DLTensor& tensor, long long expected_rank, std::size_t max_rank, Extents& extents,
        Extents& strides) {
  constexpr const char* prefix = "from_dlpack: tensor ";
  if (!host_memory(tensor.device)) {
    CVK_THROW(device_error, prefix + std::string("is on device ") + device_name(tensor.device) +
                                "; cvk reads CPU memory only (kDLCPU or pinned host memory)");
  }
  constexpr DLDataType expected = dtype_of<T>();
  if (!same_dtype(tensor.dtype, expected)) {
    CVK_THROW(dtype_error, prefix + std::string("has dtype ") + dtype_name(tensor.dtype) +
                               ", expected " + dtype_name(expected));
  }
  const auto ndim = static_cast<long long>(tensor.ndim);
  if (ndim < 0) {
    CVK_THROW(shape_error,
              prefix + std::string("has a negative ndim, got ") + std::to_string(ndim));
  }
  if (ndim > 0 && tensor.shape == nullptr) {
    CVK_THROW(shape_error,
              prefix + std::string("has ndim ") + std::to_string(ndim) + " but a null shape");
  }
  const auto rank = static_cast<std::size_t>(ndim);
  if (expected_rank >= 0 ? ndim != expected_rank : rank > max_rank) {
    std::string shape = "scalar";
    for (std::size_t i = 0; i < rank; ++i) {
      shape = (i == 0 ? std::string() : shape + "×") + std::to_string(tensor.shape[i]);
    }
    const std::string want =
        expected_rank >= 0
            ? "must have rank " + std::to_string(expected_rank)
            : "must have rank at most " + std::to_string(max_rank) + " (cvk::max_dynamic_rank)";
    CVK_THROW(shape_error,
              prefix + want + ", got rank " + std::to_string(ndim) + " (" + shape + ")");
  }
  bool empty = false;
  for (std::size_t i = 0; i < rank; ++i) extents[i] = static_cast<index_t>(tensor.shape[i]);
  for (std::size_t i = 0; i < rank; ++i) {
    if (extents[i] < 0) {
      CVK_THROW(shape_error,
                prefix + std::string("has a negative extent, got ") + shape_string(extents, rank));
    }
    empty = empty || extents[i] == 0;
  }
  if (tensor.strides == nullptr) {  // DLPack 0.6: null strides mean compact row-major
    index_t step = 1;
    for (std::size_t i = rank; i-- > 0;) {
      strides[i] = step;
      step *= extents[i];
    }
  } else {
    for (std::size_t i = 0; i < rank; ++i) strides[i] = static_cast<index_t>(tensor.strides[i]);
  }
  if (tensor.byte_offset % sizeof(T) != 0) {
    CVK_THROW(invalid_argument, prefix + std::string("byte_offset ") +
                                    std::to_string(tensor.byte_offset) +
                                    " is not a multiple of the " + dtype_name(expected) +
                                    " element size (" + std::to_string(sizeof(T)) + " bytes)");
  }
  if (tensor.data == nullptr) {
    if (!empty || tensor.byte_offset != 0) {
      CVK_THROW(
          invalid_argument,
          prefix + std::string("has null data with shape ") + shape_string(extents, rank) +
              (tensor.byte_offset != 0 ? " and byte_offset " + std::to_string(tensor.byte_offset)
                                       : std::string()));
    }
    return nullptr;
  }
  void* const first = static_cast<unsigned char*>(tensor.data) + tensor.byte_offset;
  if (reinterpret_cast<std::uintptr_t>(first) % alignof(T) != 0) {
    CVK_THROW(invalid_argument, prefix + std::string("data + byte_offset is not aligned for ") +
                                    dtype_name(expected) + " (" + std::to_string(alignof(T)) +
                                    " bytes)");
  }
  return static_cast<T*>(first);
}

}  // namespace detail::dlpack

/// The rank-`Rank` view of a DLPack tensor in CPU memory: `from_dlpack<const float, 2>(t)`.
///
///   tensor  DLTensor on kDLCPU (or pinned host memory), dtype matching T (float32, float64,
///           int8..int64, uint8..uint64, one lane), ndim == Rank, any element strides (null
///           strides mean compact row-major), byte_offset a multiple of sizeof(T)
///
/// T may be const-qualified; the view does not own the memory and is valid until the
/// producer frees it (the DLManagedTensor's deleter). Throws cvk::device_error for memory the
/// CPU cannot read, cvk::dtype_error ("from_dlpack: tensor has dtype int32, expected float32"),
/// cvk::shape_error for another rank, a negative ndim or extent, and cvk::invalid_argument for
/// a misaligned byte_offset or null data.
template <class T, std::size_t Rank>
[[nodiscard]] strided_view<T, Rank> from_dlpack(const DLTensor& tensor) {
  typename strided_view<T, Rank>::extents_type extents{};
  typename strided_view<T, Rank>::extents_type strides{};
  T* const data =
      detail::dlpack::read<T>(tensor, static_cast<long long>(Rank), Rank, extents, strides);
  return {data, extents, strides};
}

/// The runtime-rank view of a DLPack tensor (rank at most cvk::max_dynamic_rank):
/// `from_dlpack<float>(t)`. Operators check the rank when they use it. Same checks as above.
template <class T>
[[nodiscard]] dynamic_view<T> from_dlpack(const DLTensor& tensor) {
  typename dynamic_view<T>::extents_type extents{};
  typename dynamic_view<T>::extents_type strides{};
  T* const data = detail::dlpack::read<T>(tensor, -1, max_dynamic_rank, extents, strides);
  return {data, static_cast<std::size_t>(tensor.ndim), extents, strides};
}

/// The view of a DLManagedTensor's tensor; valid until its deleter is called.
template <class T, std::size_t Rank>
[[nodiscard]] strided_view<T, Rank> from_dlpack(const DLManagedTensor& managed) {
  return from_dlpack<T, Rank>(managed.dl_tensor);
}
template <class T>
[[nodiscard]] dynamic_view<T> from_dlpack(const DLManagedTensor& managed) {
  return from_dlpack<T>(managed.dl_tensor);
}

#if defined(DLPACK_FLAG_BITMASK_READ_ONLY)
namespace detail::dlpack {
/// DLPack 1.x: a producer may mark a tensor read-only; only views of const T are given then.
template <class T>
void check_writable(const DLManagedTensorVersioned& managed) {
  if (!std::is_const_v<T> && (managed.flags & DLPACK_FLAG_BITMASK_READ_ONLY) != 0) {
    CVK_THROW(invalid_argument,
              "from_dlpack: tensor is read-only (DLPACK_FLAG_BITMASK_READ_ONLY); request a view "
              "of const " +
                  dtype_name(dtype_of<T>()));
  }
}
}  // namespace detail::dlpack

/// DLPack 1.x versioned tensor: as above, and a read-only tensor gives only const views.
template <class T, std::size_t Rank>
[[nodiscard]] strided_view<T, Rank> from_dlpack(const DLManagedTensorVersioned& managed) {
  detail::dlpack::check_writable<T>(managed);
  return from_dlpack<T, Rank>(managed.dl_tensor);
}
template <class T>
[[nodiscard]] dynamic_view<T> from_dlpack(const DLManagedTensorVersioned& managed) {
  detail::dlpack::check_writable<T>(managed);
  return from_dlpack<T>(managed.dl_tensor);
}
#endif

CVK_END_NAMESPACE
