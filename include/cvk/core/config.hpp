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
