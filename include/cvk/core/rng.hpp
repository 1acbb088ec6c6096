// cvk — computer-vision kernels, header-only C++20.
// cvk::rng: a seeded generator that gives the same numbers on every platform and standard
// library (std::uniform_real_distribution and std::normal_distribution do not). xoshiro256**
// (Blackman & Vigna) seeded through splitmix64 from (seed, stream): give each parallel work
// item its own stream and results do not depend on the thread count.
// SPDX-License-Identifier: MIT
#pragma once

#include <array>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <limits>
#include <numbers>

#include "config.hpp"

CVK_BEGIN_NAMESPACE

class rng {
 public:
  using result_type = std::uint64_t;

  /// A generator for `seed`; different `stream`s give independent sequences.
  explicit constexpr rng(std::uint64_t seed = 0, std::uint64_t stream = 0) noexcept {
    std::uint64_t x = seed ^ (stream * 0xD1B54A32D192ED03ULL + 0x8CB92BA72F3D8DD7ULL);
    for (auto& word : state_) word = splitmix64(x);
  }

  static constexpr result_type min() noexcept { return 0; }
  static constexpr result_type max() noexcept { return std::numeric_limits<result_type>::max(); }

  /// The next 64 random bits (UniformRandomBitGenerator, usable with <random> and std::shuffle).
  constexpr result_type operator()() noexcept {
    const std::uint64_t result = rotl(state_[1] * 5, 7) * 9;
    const std::uint64_t t = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= t;
    state_[3] = rotl(state_[3], 45);
    return result;
  }

  /// Uniform in [0, 1), with every representable multiple of 2^-24 (float) or 2^-53 (double).
  template <std::floating_point T = double>
  constexpr T uniform() noexcept {
    if constexpr (sizeof(T) <= 4) {
      return static_cast<T>((*this)() >> 40) * static_cast<T>(0x1.0p-24);
    } else {
      return static_cast<T>((*this)() >> 11) * static_cast<T>(0x1.0p-53);
    }
  }

  /// Uniform in [lo, hi).
  template <std::floating_point T>
  constexpr T uniform(T lo, T hi) noexcept {
    return lo + (hi - lo) * uniform<T>();
  }

  /// Uniform integer in [0, n) without modulo bias (rejection of the short last bucket);
  /// 0 when n == 0.
  constexpr std::uint64_t below(std::uint64_t n) noexcept {
    if (n == 0) return 0;
    const std::uint64_t threshold = (0 - n) % n;  // 2^64 mod n
    for (;;) {
      const std::uint64_t r = (*this)();
      if (r >= threshold) return r % n;
    }
  }

  /// True with probability p.
  constexpr bool bernoulli(double p) noexcept { return uniform<double>() < p; }

  /// Normal(mean, stddev) by the Box–Muller transform, computed in double. Bit-identical
  /// with the same C math library (std::log, std::sqrt, std::cos); uniform draws are identical
  /// everywhere.
  template <std::floating_point T = double>
  T normal(T mean = 0, T stddev = 1) noexcept {
    const double u1 = 1.0 - uniform<double>();  // (0, 1]: log stays finite
    const double u2 = uniform<double>();
    const double z = std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
    return mean + stddev * static_cast<T>(z);
  }

 private:
  static constexpr std::uint64_t rotl(std::uint64_t x, int k) noexcept {
    return (x << k) | (x >> (64 - k));
  }
  static constexpr std::uint64_t splitmix64(std::uint64_t& x) noexcept {
    std::uint64_t z = (x += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }

  std::array<std::uint64_t, 4> state_{};
};

CVK_END_NAMESPACE
