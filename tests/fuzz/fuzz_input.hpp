// cvk — computer-vision kernels, header-only C++20.
// Fuzz support: decodes libFuzzer's bytes into sizes, thresholds, scores and boxes that favour
// the inputs where detection kernels go wrong — small integer coordinates (ties, duplicates,
// touching and zero-area boxes), NaN, ±infinity, huge and tiny values, inverted boxes — and the
// failure report every target uses. The byte layout is documented here, because
// tests/fuzz/make_corpus.py writes the seed corpora in it.
// SPDX-License-Identifier: MIT
#pragma once

#include <array>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include <cvk/core/errors.hpp>

namespace cvk_fuzz {

/// Reads the input front to back. Past the end every read gives 0, so a short input still
/// decodes into a whole scene (of (0, 0, 0, 0) boxes: the padding of exported detectors).
class byte_reader {
 public:
  byte_reader(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}

  std::uint8_t u8() { return pos_ < size_ ? data_[pos_++] : std::uint8_t{0}; }
  std::uint16_t u16() {
    const auto lo = u8();
    const auto hi = u8();
    return static_cast<std::uint16_t>(lo | (hi << 8));
  }
  std::uint32_t u32() {
    const std::uint32_t lo = u16();
    const std::uint32_t hi = u16();
    return lo | (hi << 16);
  }
  std::uint64_t u64() {
    const std::uint64_t lo = u32();
    const std::uint64_t hi = u32();
    return lo | (hi << 32);
  }
  bool flag() { return (u8() & 1U) != 0; }
  /// A value in [0, n), n ≥ 1.
  std::size_t below(std::size_t n) { return static_cast<std::size_t>(u8()) % n; }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
};

/// One value of type T from a tag byte (little-endian payload bytes follow where noted):
///   0–159    the small integer tag % 64          ties, duplicates, touching and empty boxes
///   160–199  int16 / 8 (2 bytes)                 [-4096, 4096) in steps of 1/8
///   200–203  NaN              204–205  +inf      206–207  -inf
///   208–209  1e30             210–211  -1e30     212–215  1e9 + u8 (1 byte)
///   216–217  the largest finite T, 218–219 the lowest
///   220–223  the smallest positive subnormal T
///   224–239  the raw bits of a T (4 or 8 bytes)
///   240–255  the negative integer -(u8 % 64) (1 byte)
template <class T>
T value(byte_reader& in) {
  static_assert(std::is_floating_point_v<T>);
  const unsigned tag = in.u8();
  if (tag < 160) return static_cast<T>(tag % 64);
  if (tag < 200) return static_cast<T>(static_cast<std::int16_t>(in.u16())) / T(8);
  if (tag < 204) return std::numeric_limits<T>::quiet_NaN();
  if (tag < 206) return std::numeric_limits<T>::infinity();
  if (tag < 208) return -std::numeric_limits<T>::infinity();
  if (tag < 210) return T(1e30);
  if (tag < 212) return T(-1e30);
  if (tag < 216) return T(1e9) + static_cast<T>(in.u8());
  if (tag < 218) return std::numeric_limits<T>::max();
  if (tag < 220) return std::numeric_limits<T>::lowest();
  if (tag < 224) return std::numeric_limits<T>::denorm_min();
  if (tag < 240) {
    if constexpr (sizeof(T) == 4)
      return std::bit_cast<T>(in.u32());
    else
      return std::bit_cast<T>(in.u64());
  }
  return -static_cast<T>(in.u8() % 64);
}

/// A score: tag < 128: (tag % 16) / 16 (ties); 128–191: u16 / 65536; 192–199 NaN; 200–203
/// +inf; 204–207 -inf; 208–215: -(tag % 8) / 8; 216–255: value<T> (any of the above).
template <class T>
T score(byte_reader& in) {
  const unsigned tag = in.u8();
  if (tag < 128) return static_cast<T>(tag % 16) / T(16);
  if (tag < 192) return static_cast<T>(in.u16()) / T(65536);
  if (tag < 200) return std::numeric_limits<T>::quiet_NaN();
  if (tag < 204) return std::numeric_limits<T>::infinity();
  if (tag < 208) return -std::numeric_limits<T>::infinity();
  if (tag < 216) return -static_cast<T>(tag % 8) / T(8);
  return value<T>(in);
}

/// An axis-aligned box (4 values) in whatever format the caller reads it as. Tag byte:
///   0–127    x, y = value<T>, then w = u8 % 64, h = u8 % 64: (x, y, x + w, y + h)
///   128–223  four value<T>
///   224–255  a copy of an earlier box (u8 picks which); the first box reads four value<T>
template <class T>
std::array<T, 4> box(byte_reader& in, const std::vector<std::array<T, 4>>& earlier) {
  const unsigned tag = in.u8();
  if (tag < 128) {
    const T x = value<T>(in);
    const T y = value<T>(in);
    const auto w = static_cast<T>(in.u8() % 64);
    const auto h = static_cast<T>(in.u8() % 64);
    return {x, y, x + w, y + h};
  }
  if (tag >= 224 && !earlier.empty()) return earlier[in.below(earlier.size())];
  const T a = value<T>(in);
  const T b = value<T>(in);
  const T c = value<T>(in);
  const T d = value<T>(in);
  return {a, b, c, d};
}

template <class T>
std::vector<std::array<T, 4>> boxes(byte_reader& in, std::size_t n) {
  std::vector<std::array<T, 4>> result;
  result.reserve(n);
  for (std::size_t i = 0; i < n; ++i) result.push_back(box<T>(in, result));
  return result;
}

template <class T>
std::vector<T> scores(byte_reader& in, std::size_t n) {
  std::vector<T> result(n);
  for (auto& s : result) s = score<T>(in);
  return result;
}

/// A threshold: tag < 240: (tag - 8) / 224, about [-0.036, 1.04] (exact in float when tag - 8 is
/// a multiple of 7: k/32); 240–255 from {NaN, -inf, +inf, -1, 0, 1, 2, 0.5, -0, 1e-300,
/// -1e-300, 0.3, 0.7, 1 - 2^-24, 1e300, 0.25}.
inline double threshold(byte_reader& in) {
  static constexpr std::array<double, 16> special = {std::numeric_limits<double>::quiet_NaN(),
                                                     -std::numeric_limits<double>::infinity(),
                                                     std::numeric_limits<double>::infinity(),
                                                     -1.0,
                                                     0.0,
                                                     1.0,
                                                     2.0,
                                                     0.5,
                                                     -0.0,
                                                     1e-300,
                                                     -1e-300,
                                                     0.3,
                                                     0.7,
                                                     1.0 - 0x1p-24,
                                                     1e300,
                                                     0.25};
  const unsigned tag = in.u8();
  if (tag < 240) return (static_cast<double>(tag) - 8.0) / 224.0;
  return special[tag - 240];
}

/// A count for options such as max_output: tag < 200: tag % 32; 200–254: -(tag - 199)
/// (invalid); 255: a huge value.
inline std::int64_t count(byte_reader& in) {
  const unsigned tag = in.u8();
  if (tag < 200) return static_cast<std::int64_t>(tag % 32);
  if (tag < 255) return -static_cast<std::int64_t>(tag - 199);
  return std::numeric_limits<std::int64_t>::max() / 2;
}

/// A rotated box (cx, cy, w, h, angle). Tag byte: 0–127 sizes u8 % 64, 128–223 sizes
/// value<T>, 224–255 a copy of an earlier box; the angle byte: < 128 one of eight angles
/// (0, 90, 45, -30, 180, 1e-6, 270, -90), else value<T>.
template <class T>
std::array<T, 5> rotated_box(byte_reader& in, const std::vector<std::array<T, 5>>& earlier) {
  static constexpr std::array<double, 8> angles = {0, 90, 45, -30, 180, 1e-6, 270, -90};
  const unsigned tag = in.u8();
  if (tag >= 224 && !earlier.empty()) return earlier[in.below(earlier.size())];
  const T cx = value<T>(in);
  const T cy = value<T>(in);
  const T w = tag < 128 ? static_cast<T>(in.u8() % 64) : value<T>(in);
  const T h = tag < 128 ? static_cast<T>(in.u8() % 64) : value<T>(in);
  const unsigned a = in.u8();
  const T angle = a < 128 ? static_cast<T>(angles[a % 8]) : value<T>(in);
  return {cx, cy, w, h, angle};
}

/// A value was NaN or infinite.
template <class T>
bool finite(T v) {
  return std::isfinite(static_cast<double>(v));
}
template <class T, std::size_t K>
bool finite(const std::array<T, K>& b) {
  for (const T v : b) {
    if (!finite(v)) return false;
  }
  return true;
}

/// Calls f and reports whether it threw a cvk::error. Any other exception escapes: libFuzzer
/// reports it as a crash (an uncaught exception is a finding, as a wrong result is).
template <class F>
bool throws_cvk_error(F&& f) {
  try {
    f();
  } catch (const cvk::error&) {
    return true;
  }
  return false;
}

[[noreturn]] inline void fail(const std::string& what) {
  std::fprintf(stderr, "\ncvk fuzz finding: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

/// Builds the message of a failed check from any streamable values.
template <class... Args>
std::string describe(const Args&... args) {
  std::ostringstream text;
  text.precision(17);
  (text << ... << args);
  return text.str();
}

}  // namespace cvk_fuzz

/// A checked invariant: on failure, prints the condition, the place and the message (streamed
/// arguments), then aborts, which libFuzzer reports with the input that caused it.
#define CVK_FUZZ_CHECK(condition, ...)                                                         \
  do {                                                                                         \
    if (!(condition)) {                                                                        \
      ::cvk_fuzz::fail(                                                                        \
          ::cvk_fuzz::describe(__FILE__, ":", __LINE__, ": ", #condition, ": ", __VA_ARGS__)); \
    }                                                                                          \
  } while (false)
