// cvk — computer-vision kernels, header-only C++20.
// The error hierarchy and CVK_THROW. Every message names the function, the argument and the
// shapes involved, e.g. "box_area: boxes must be N×4, got 7×3".
// SPDX-License-Identifier: MIT
#pragma once

#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "config.hpp"

CVK_BEGIN_NAMESPACE

/// Common base of every exception cvk throws, so `catch (const cvk::error&)` catches them all.
/// It is a mixin, not a std::exception: each concrete error also derives from exactly one
/// standard exception, so `catch (const std::invalid_argument&)` works too.
class error {
 public:
  virtual ~error() = default;
  /// The message, e.g. "box_area: boxes must be N×4, got 7×3".
  [[nodiscard]] virtual const char* what() const noexcept = 0;

 protected:
  error() = default;
  error(const error&) = default;
  error& operator=(const error&) = default;
};

/// An argument has a value outside its documented domain (a threshold outside [0, 1], ...).
class invalid_argument : public std::invalid_argument, public error {
 public:
  explicit invalid_argument(const std::string& message) : std::invalid_argument(message) {}
  [[nodiscard]] const char* what() const noexcept override { return std::invalid_argument::what(); }
};

/// A tensor argument has the wrong rank or extents, or two arguments disagree in size.
class shape_error : public invalid_argument {
 public:
  using invalid_argument::invalid_argument;
};

/// A type-erased tensor (DLPack) holds an element type other than the one requested.
class dtype_error : public invalid_argument {
 public:
  using invalid_argument::invalid_argument;
};

/// A type-erased tensor (DLPack) lives on a device cvk cannot read (cvk is CPU only).
class device_error : public invalid_argument {
 public:
  using invalid_argument::invalid_argument;
};

/// An index or size does not fit (an index past the end, a size that overflows).
class out_of_range : public std::out_of_range, public error {
 public:
  explicit out_of_range(const std::string& message) : std::out_of_range(message) {}
  [[nodiscard]] const char* what() const noexcept override { return std::out_of_range::what(); }
};

namespace detail {

/// Largest buffer cvk allocates at once, in bytes (just under 1 TiB, AddressSanitizer's limit,
/// which it applies after adding its red zones): a size of 1 TiB or more derived from an input's
/// extents is reported as a cvk::out_of_range naming that input instead of ending in
/// std::bad_alloc (or an abort under a sanitizer). Used by cvk::tensor and by
/// detail::checked_allocation (detail/checks.hpp).
inline constexpr std::size_t max_allocation_bytes = (std::size_t{1} << 40) - (std::size_t{1} << 20);

/// Throws `Error(message)`, or, without exceptions, prints it and aborts.
template <class Error>
[[noreturn]] inline void throw_error(const std::string& message) {
#if CVK_HAS_EXCEPTIONS
  throw Error(message);
#else
  std::fprintf(stderr, "cvk: %s\n", message.c_str());
  std::fflush(stderr);
  std::abort();
#endif
}

}  // namespace detail

CVK_END_NAMESPACE

/// Raises a cvk error of the given type with a message (anything convertible to std::string).
///
/// Overridable: define CVK_THROW(ErrorType, message) before the first cvk include — the same
/// definition in every translation unit of the program, best on the compiler command line, since
/// cvk's functions are inline and the linker keeps one copy of each — to route every cvk error
/// through your own code (a logging framework, an error type of your own, a status
/// return through your own exception). `ErrorType` is one of cvk::invalid_argument,
/// cvk::shape_error, cvk::out_of_range, named as written inside namespace cvk (so use it as a
/// type, e.g. `throw my_error<ErrorType>(message)`); `message` is a std::string expression. The
/// replacement must not return — throw, or terminate — since cvk does not continue after an
/// error: cvk::detail::throw_error below is the default, and `cvk_throw_is_user_defined` tells a
/// program which one it got.
#ifndef CVK_THROW
#  define CVK_THROW(ErrorType, message) ::cvk::detail::throw_error<ErrorType>(message)
#  define CVK_THROW_IS_USER_DEFINED 0
#else
#  define CVK_THROW_IS_USER_DEFINED 1
#endif

CVK_BEGIN_NAMESPACE
/// Whether CVK_THROW was defined by the program (true) or is cvk's default (false).
inline constexpr bool cvk_throw_is_user_defined = CVK_THROW_IS_USER_DEFINED != 0;
CVK_END_NAMESPACE
