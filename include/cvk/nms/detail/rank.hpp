// cvk — computer-vision kernels, header-only C++20.
// Ranking scores for the NMS family: a stable LSD radix sort of (key, index) pairs on unsigned
// keys that order scores descending. Same result as a stable comparison sort by score (equal
// scores keep index order), in O(N) passes instead of O(N log N) comparisons.
// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <utility>
#include <vector>

#include "../../core/config.hpp"
#include "../../core/strided_view.hpp"
#include "../../detail/scratch.hpp"

CVK_BEGIN_NAMESPACE
namespace detail {

/// Whether scores of type S have an order-preserving unsigned key (radix_key below).
template <class S>
inline constexpr bool has_radix_key = std::is_same_v<S, float> || std::is_same_v<S, double> ||
                                      (std::is_integral_v<S> && !std::is_same_v<S, bool> &&
                                       sizeof(S) <= 8);

/// The unsigned integer holding radix_key<S>.
template <class S>
using radix_key_t = std::conditional_t<sizeof(S) <= 4, std::uint32_t, std::uint64_t>;

/// A key that is smaller for a larger score: key(a) < key(b) iff a > b, key(a) == key(b) iff
/// a == b (so -0.0 and +0.0 get one key, as they compare equal). Not for NaN.
template <class S>
constexpr radix_key_t<S> radix_key(S score) noexcept {
  using K = radix_key_t<S>;
  constexpr K top = K(1) << (8 * sizeof(K) - 1);
  K ascending{};
  if constexpr (std::is_floating_point_v<S>) {
    const S s = score == S(0) ? S(0) : score;  // -0.0 → +0.0
    const K bits = std::bit_cast<K>(s);
    ascending = (bits & top) != 0 ? ~bits : bits | top;  // IEEE order → unsigned order
  } else if constexpr (std::is_signed_v<S>) {
    ascending = static_cast<K>(static_cast<K>(static_cast<std::int64_t>(score)) ^ top);
  } else {
    ascending = static_cast<K>(score);
  }
  return static_cast<K>(~ascending);
}

/// A (key, index) pair; trivial, so it can live in scratch memory.
template <class K, class I>
struct radix_item {
  K first;
  I second;
};

/// Sorts `n` (key, index) pairs by key ascending, stably (equal keys keep their order): LSD
/// radix with 11-bit digits, skipping the digits all keys share; `buffer` holds n more pairs.
/// Returns where the sorted pairs are (`items` or `buffer`). O(N) per pass.
template <class K, class I>
radix_item<K, I>* radix_sort_pairs(radix_item<K, I>* items, radix_item<K, I>* buffer,
                                   std::size_t n) {
  constexpr int digit_bits = 11;
  constexpr std::size_t buckets = std::size_t{1} << digit_bits;
  constexpr int key_bits = 8 * static_cast<int>(sizeof(K));
  if (n < 256) {
    std::stable_sort(items, items + n,
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    return items;
  }
  K all_or = 0;
  K all_and = static_cast<K>(~K(0));
  for (std::size_t i = 0; i < n; ++i) {
    all_or |= items[i].first;
    all_and &= items[i].first;
  }
  const K varying = all_or ^ all_and;  // the bits that differ between some keys
  std::array<std::size_t, buckets> count{};
  for (int shift = 0; shift < key_bits; shift += digit_bits) {
    const K mask = static_cast<K>((K(buckets) - 1) << shift);
    if ((varying & mask) == 0) continue;
    count.fill(0);
    for (std::size_t i = 0; i < n; ++i) {
      ++count[static_cast<std::size_t>((items[i].first >> shift) & (buckets - 1))];
    }
    std::size_t sum = 0;
    for (std::size_t& c : count) {
      const std::size_t here = c;
      c = sum;
      sum += here;
    }
    for (std::size_t i = 0; i < n; ++i) {
      buffer[count[static_cast<std::size_t>((items[i].first >> shift) & (buckets - 1))]++] =
          items[i];
    }
    std::swap(items, buffer);
  }
  return items;
}

/// Positions 0..n-1 ordered by `key_of(position)` ascending, stably (equal keys: lower position
/// first), using 32-bit positions and keys when they fit. `key_of` returns radix_key_t values;
/// only the key range (max - min) matters. The pairs live in per-thread scratch memory.
template <class K, class KeyOf>
std::vector<index_t> radix_order(std::size_t n, KeyOf key_of) {
  std::vector<index_t> order(n);
  if (n == 0) return order;
  K lowest = std::numeric_limits<K>::max();
  K highest = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const K k = key_of(i);
    lowest = std::min(lowest, k);
    highest = std::max(highest, k);
  }
  const auto sort_with = [&]<class SK, class SI>(SK*, SI*) {
    using item = radix_item<SK, SI>;
    const scratch_lease<item> storage(scratch_slot_id::radix_pairs, 2 * n);
    item* const items = storage.get();
    item* const buffer = items + n;
    for (std::size_t i = 0; i < n; ++i) {
      items[i] = {static_cast<SK>(key_of(i) - lowest), static_cast<SI>(i)};
    }
    const item* const sorted = radix_sort_pairs(items, buffer, n);
    for (std::size_t i = 0; i < n; ++i) order[i] = static_cast<index_t>(sorted[i].second);
  };
  const bool small_index = n <= std::numeric_limits<std::uint32_t>::max();
  const bool small_key = highest - lowest <= std::numeric_limits<std::uint32_t>::max();
  if (small_index && small_key) {
    sort_with(static_cast<std::uint32_t*>(nullptr), static_cast<std::uint32_t*>(nullptr));
  } else if (small_index) {
    sort_with(static_cast<std::uint64_t*>(nullptr), static_cast<std::uint32_t*>(nullptr));
  } else {
    sort_with(static_cast<std::uint64_t*>(nullptr), static_cast<std::uint64_t*>(nullptr));
  }
  return order;
}

}  // namespace detail
CVK_END_NAMESPACE
