// cvk — computer-vision kernels, header-only C++20.
// Library configuration: version, the versioned namespace and the exception switch.
// SPDX-License-Identifier: MIT
#pragma once

#define CVK_VERSION_MAJOR 0
#define CVK_VERSION_MINOR 1
#define CVK_VERSION_PATCH 0
#define CVK_VERSION (CVK_VERSION_MAJOR * 10000 + CVK_VERSION_MINOR * 100 + CVK_VERSION_PATCH)

// Every public name lives in cvk::v0 and is reachable as cvk::name; a later incompatible
// version changes the inline namespace so that mixing two versions fails to link.
#define CVK_BEGIN_NAMESPACE \
  namespace cvk {           \
  inline namespace v0 {
#define CVK_END_NAMESPACE \
  }                       \
  }

// Exceptions are used when the compiler has them enabled; under -fno-exceptions CVK_THROW
// prints the same message and aborts (see core/errors.hpp).
#if defined(CVK_NO_EXCEPTIONS)
#  define CVK_HAS_EXCEPTIONS 0
#elif defined(__cpp_exceptions) || defined(__EXCEPTIONS) || defined(_CPPUNWIND)
#  define CVK_HAS_EXCEPTIONS 1
#else
#  define CVK_HAS_EXCEPTIONS 0
#endif

#if defined(_OPENMP) && !defined(CVK_NO_OPENMP)
#  define CVK_HAS_OPENMP 1
#else
#  define CVK_HAS_OPENMP 0
#endif

// Kernel compilation options (GCC). In GNU mode GCC fuses a*b + c across statements
// (-ffp-contract=fast), which changes the rounding of e.g. `union = area_a + area_b - w * h`
// relative to torchvision; and with -ftrapping-math (its default) it refuses to vectorize the
// selects of these formulas without AVX-512 masking. Kernels are compiled with contraction off
// and trapping math off (results are unchanged: cvk never reads the floating-point flags).
// Everything between CVK_KERNEL_BEGIN and CVK_KERNEL_END gets these options; functions must
// share them to be inlined into each other. clang fuses only within one expression (the
// formulas keep each product in its own statement) and does not trap by default.
// clang-format off
#if defined(__GNUC__) && !defined(__clang__)
#  define CVK_KERNEL_BEGIN _Pragma("GCC push_options") CVK_KERNEL_OPTIMIZE
// _Pragma takes exactly one string literal: keep this line whole.
#  define CVK_KERNEL_OPTIMIZE _Pragma("GCC optimize(\"fp-contract=off\", \"no-trapping-math\", \"tree-loop-vectorize\", \"vect-cost-model=dynamic\", \"tree-loop-if-convert\")")
#  define CVK_KERNEL_END _Pragma("GCC pop_options")
#  define CVK_UNROLL _Pragma("GCC unroll 16")
#else
#  define CVK_KERNEL_BEGIN
#  define CVK_KERNEL_END
#  define CVK_UNROLL _Pragma("unroll")
#endif
// clang-format on
