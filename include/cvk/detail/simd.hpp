// cvk — computer-vision kernels, header-only C++20.
// simd<T>: the one fixed-width vector type of cvk's register-blocked kernels (convolution now).
// One native register of the build's widest vector unit (AVX-512: 64 bytes, AVX: 32, else 16),
// through the GCC/clang vector extension, with an explicit fused multiply-add where the target
// has one. Kernels written against it stay portable C++ (a build without AVX compiles the same
// code to SSE or scalar instructions) while an -march=native build gets zmm registers whatever
// -mprefer-vector-width says, since these are explicit vector types, not auto-vectorised loops.
//
// Rounding: simd<T>::fma rounds once (a·b + c exact, then rounded) where the target has FMA
// (x86 FMA3 / AVX-512, AArch64); elsewhere it multiplies and adds (two roundings, unless the
// user's -ffp-contract fuses them). Results therefore depend on the build's target, not on the
// thread count or the call (docs/conventions.md).
// SPDX-License-Identifier: MIT
#pragma once

#include <cstddef>
#include <cstring>

#include "../core/config.hpp"

#if defined(__AVX512F__) || defined(__AVX__) || defined(__FMA__)
#  include <immintrin.h>
#endif

CVK_BEGIN_NAMESPACE
namespace detail {

/// Bytes of one native vector register.
#if defined(__AVX512F__)
inline constexpr std::size_t simd_bytes = 64;
#elif defined(__AVX__)
inline constexpr std::size_t simd_bytes = 32;
#else
inline constexpr std::size_t simd_bytes = 16;
#endif

/// Vector registers the kernels may plan for (accumulators + operands).
#if defined(__AVX512F__) || defined(__aarch64__)
inline constexpr int simd_registers = 32;
#else
inline constexpr int simd_registers = 16;
#endif

/// The vector of T of `Bytes` bytes. (Spelled per type: GCC ignores vector_size on a dependent
/// type.)
template <class T, std::size_t Bytes>
struct simd_native;
template <std::size_t Bytes>
struct simd_native<float, Bytes> {
  typedef float type __attribute__((vector_size(Bytes)));
};
template <std::size_t Bytes>
struct simd_native<double, Bytes> {
  typedef double type __attribute__((vector_size(Bytes)));
};

/// A vector of T of `Bytes` bytes: by default one native register; simd_half<T> is half of one
/// (a ymm register in an AVX-512 build), for kernels whose last outputs fill only half a vector.
/// Every width rounds the same way (one rounding per fma where the target has FMA).
template <class T, std::size_t Bytes = simd_bytes>
struct simd {
  using native = typename simd_native<T, Bytes>::type;
  static constexpr std::ptrdiff_t lanes = static_cast<std::ptrdiff_t>(Bytes / sizeof(T));

  [[nodiscard]] static native zero() noexcept { return native{}; }
  /// s in every lane. (Not `native{} + s`: adding +0 is not the identity for -0, so the
  /// compiler keeps the addition.)
  [[nodiscard]] static native splat(T s) noexcept {
#if defined(__AVX512F__)
    if constexpr (Bytes == 64) {
      if constexpr (sizeof(T) == 4) {
        return _mm512_set1_ps(s);
      } else {
        return _mm512_set1_pd(s);
      }
    }
#endif
#if defined(__AVX__)
    if constexpr (Bytes == 32) {
      if constexpr (sizeof(T) == 4) {
        return _mm256_set1_ps(s);
      } else {
        return _mm256_set1_pd(s);
      }
    }
#endif
    native v;
    for (std::ptrdiff_t i = 0; i < lanes; ++i) v[i] = s;
    return v;
  }
  /// Unaligned load / store of `lanes` values.
  [[nodiscard]] static native load(const T* p) noexcept {
    native v;
    std::memcpy(&v, p, sizeof v);
    return v;
  }
  static void store(T* p, native v) noexcept { std::memcpy(p, &v, sizeof v); }
  /// Stores the first n lanes (0 ≤ n ≤ lanes) of v; the memory past them is not touched.
  static void store_first(T* p, native v, std::ptrdiff_t n) noexcept {
#if defined(__AVX512F__)
    if constexpr (Bytes == 64) {
      if constexpr (sizeof(T) == 4) {
        _mm512_mask_storeu_ps(p, static_cast<__mmask16>((1u << n) - 1u), v);
      } else {
        _mm512_mask_storeu_pd(p, static_cast<__mmask8>((1u << n) - 1u), v);
      }
      return;
    }
#endif
    T lanes_of[static_cast<std::size_t>(lanes)];
    std::memcpy(lanes_of, &v, sizeof v);
    std::memcpy(p, lanes_of, static_cast<std::size_t>(n) * sizeof(T));
  }
  /// a·b + c, rounded once where the target has FMA.
  [[nodiscard]] static native fma(native a, native b, native c) noexcept {
#if defined(__AVX512F__)
    if constexpr (Bytes == 64) {
      if constexpr (sizeof(T) == 4) {
        return _mm512_fmadd_ps(a, b, c);
      } else {
        return _mm512_fmadd_pd(a, b, c);
      }
    }
#endif
#if defined(__AVX__) && defined(__FMA__)
    if constexpr (Bytes == 32) {
      if constexpr (sizeof(T) == 4) {
        return _mm256_fmadd_ps(a, b, c);
      } else {
        return _mm256_fmadd_pd(a, b, c);
      }
    }
#endif
#if defined(__FMA__)
    if constexpr (Bytes == 16) {
      if constexpr (sizeof(T) == 4) {
        return _mm_fmadd_ps(a, b, c);
      } else {
        return _mm_fmadd_pd(a, b, c);
      }
    }
#endif
#if defined(__FMA__) || defined(__AVX512F__)
    // A width without an FMA intrinsic above (none today): one rounding per lane all the same.
    native r;
    for (std::ptrdiff_t i = 0; i < lanes; ++i) {
      if constexpr (sizeof(T) == 4) {
        r[i] = __builtin_fmaf(a[i], b[i], c[i]);
      } else {
        r[i] = __builtin_fma(a[i], b[i], c[i]);
      }
    }
    return r;
#else
    return a * b + c;
#endif
  }
};

/// Half of a native register, where a native register holds at least 32 bytes (else the native
/// vector itself: simd_has_half is false).
inline constexpr bool simd_has_half = simd_bytes >= 32;
template <class T>
using simd_half = simd<T, simd_has_half ? simd_bytes / 2 : simd_bytes>;

}  // namespace detail
CVK_END_NAMESPACE
