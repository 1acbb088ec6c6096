// cvk — computer-vision kernels, header-only C++20.
// Test support: floating-point comparisons (exact with NaN equal to NaN, ulp distance, and the
// error bounds used against the long-double reference).
// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

namespace cvk_test {

/// Equal values, or both NaN. (+0 and -0 compare equal.)
template <class T>
bool same_value(T a, T b) {
  if constexpr (std::is_floating_point_v<T>) {
    if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  }
  return a == b;
}

/// Number of representable values between a and b (0 when same_value; the largest value when
/// only one is NaN).
template <class T>
std::uint64_t ulp_distance(T a, T b) {
  static_assert(std::is_floating_point_v<T> && (sizeof(T) == 4 || sizeof(T) == 8));
  if (same_value(a, b)) return 0;
  if (std::isnan(a) || std::isnan(b)) return std::numeric_limits<std::uint64_t>::max();
  using bits = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
  // Map the sign-magnitude encoding onto a monotonic unsigned line.
  const auto ordered = [](T x) -> std::uint64_t {
    const bits u = std::bit_cast<bits>(x);
    constexpr bits sign = bits{1} << (sizeof(bits) * 8 - 1);
    return (u & sign) != 0 ? static_cast<std::uint64_t>(static_cast<bits>(~u))
                           : static_cast<std::uint64_t>(u | sign);
  };
  const std::uint64_t ua = ordered(a);
  const std::uint64_t ub = ordered(b);
  return ua > ub ? ua - ub : ub - ua;
}

/// Whether this build lets the compiler contract a·b + c into one fused multiply-add (an FMA
/// target, e.g. -march=native, under g++'s default -ffp-contract=fast or clang's =on): a sum of
/// products may then round differently in a kernel and in its reference loop, as the compiler
/// chooses for each.
inline constexpr bool fma_contraction =
#if defined(__FMA__)
    true;
#else
    false;
#endif

/// A sum of products (a weighted mean of positive terms, say) compared with its reference:
/// same_value when the build cannot contract, else within `ulps` representable values.
template <class T>
bool same_sum_of_products(T a, T b, std::uint64_t ulps = 64) {
  return fma_contraction ? ulp_distance(a, b) <= ulps : same_value(a, b);
}

/// Largest absolute coordinate of a box, at least 1.
template <class T>
long double box_scale(const std::array<T, 4>& b) {
  long double scale = 1;
  for (const T v : b) scale = std::max(scale, std::fabs(static_cast<long double>(v)));
  return scale;
}

/// Bound on the error of a coordinate computed in T from a box of this scale (a few roundings).
template <class T>
long double coordinate_tolerance(long double scale) {
  return 8 * static_cast<long double>(std::numeric_limits<T>::epsilon()) * scale;
}

/// Bound on the error of an area computed in T from a box of this scale.
template <class T>
long double area_tolerance(long double scale) {
  return 16 * static_cast<long double>(std::numeric_limits<T>::epsilon()) * (scale + 1) *
         (scale + 1);
}

}  // namespace cvk_test
