// cvk — computer-vision kernels, header-only C++20.
// A threshold or parameter given as double, brought into the computation type of an NMS kernel
// once, so that the kernel compares in its own type and still decides as the peer does:
// round_to_nearest for the peers that take a float parameter (mmcv, OpenCV, ONNX Runtime),
// round_toward for torchvision, which compares a float IoU with a double threshold.
// SPDX-License-Identifier: MIT
#pragma once

#include <cmath>
#include <limits>

#include "../../core/config.hpp"

CVK_BEGIN_NAMESPACE
CVK_KERNEL_BEGIN
namespace detail {

/// `t` rounded to the floating-point type T as a conversion does (to nearest, ties to even),
/// with ±infinity beyond T's range instead of undefined behaviour: what a peer's `float`
/// parameter receives from a double.
template <class T>
T round_to_nearest(double t) noexcept {
  if constexpr (sizeof(T) >= sizeof(double)) {
    return static_cast<T>(t);
  } else {
    // The smallest magnitude that rounds to infinity: max + half an ulp of max (float:
    // 0x1.ffffffp127).
    const double limit =
        std::ldexp(1.0, std::numeric_limits<T>::max_exponent) -
        std::ldexp(1.0, std::numeric_limits<T>::max_exponent - std::numeric_limits<T>::digits - 1);
    if (t >= limit) return std::numeric_limits<T>::infinity();
    if (t <= -limit) return -std::numeric_limits<T>::infinity();
    return static_cast<T>(t);
  }
}

/// `t` rounded to T downwards (`up` false: the largest T <= t) or upwards (the smallest T >= t),
/// ±infinity or ±max beyond T's range. For a value v of T, `double(v) > t` holds exactly when
/// `v > round_toward<T>(t, false)`, and `double(v) >= t` exactly when `v >= round_toward<T>(t,
/// true)`: a kernel comparing in T decides as a peer comparing in double (torchvision).
template <class T>
T round_toward(double t, bool up) noexcept {
  if constexpr (sizeof(T) >= sizeof(double)) {
    (void)up;
    return static_cast<T>(t);
  } else {
    constexpr T inf = std::numeric_limits<T>::infinity();
    constexpr T big = std::numeric_limits<T>::max();
    if (t > static_cast<double>(big)) return up || std::isinf(t) ? inf : big;
    if (t < -static_cast<double>(big)) return !up || std::isinf(t) ? -inf : -big;
    T r = static_cast<T>(t);
    if (!up && static_cast<double>(r) > t) r = std::nextafter(r, -inf);
    if (up && static_cast<double>(r) < t) r = std::nextafter(r, inf);
    return r;
  }
}

}  // namespace detail
CVK_KERNEL_END
CVK_END_NAMESPACE
