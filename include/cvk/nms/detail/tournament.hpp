// cvk — computer-vision kernels, header-only C++20.
// The winner (tournament) trees of the NMS kernels that select the best remaining box again and
// again while scores change: soft_nms (a block_winner_tree of score keys) and var_voting (a
// winner_tree over KL-Loss's array positions). Each answers "the best slot, the leftmost among
// equals" in O(1) and takes a point update in O(log n).
// SPDX-License-Identifier: MIT
#pragma once

#include <cstddef>
#include <vector>

#include "../../core/config.hpp"
#include "rank.hpp"

CVK_BEGIN_NAMESPACE
CVK_KERNEL_BEGIN
namespace detail {

/// The default ranking of winner_tree: the larger key wins (written here, not std::greater, so
/// that GCC inlines it into CVK_KERNEL code).
struct larger_key {
  template <class Key>
  constexpr bool operator()(const Key& a, const Key& b) const noexcept {
    return a > b;
  }
};

/// An unsigned key ordering scores: larger score → larger key, equal scores (-0 and +0 too) →
/// equal keys, NaN → 0, which no number gets.
template <class S>
inline radix_key_t<S> score_key(S score) noexcept {
  using K = radix_key_t<S>;
  if (score != score) return 0;  // NOLINT(misc-redundant-expression): NaN
  constexpr K top = K(1) << (8 * sizeof(K) - 1);
  const K bits = __builtin_bit_cast(K, score == S(0) ? S(0) : score);  // -0 → +0
  return (bits & top) != 0 ? static_cast<K>(~bits) : static_cast<K>(bits | top);
}

/// A tournament (winner) tree over slots 0..n-1: the slot whose key ranks first, the leftmost
/// one among keys that rank equal, in O(1); a key change in O(log n). `Before(a, b)` is a strict
/// weak order ("a ranks strictly before b"); the right child of a node wins only when its key
/// ranks strictly before the left's, so ties go to the lower slot. Every node holds its winner's
/// key and slot (leaves: node size + slot), so a match reads two adjacent keys. I: the slot type
/// (32 bits when n allows: less memory). Slots past n hold Key{} (rank them last, e.g. key 0 for
/// unsigned keys with larger_key).
template <class Key, class I = std::size_t, class Before = larger_key>
class winner_tree {
 public:
  explicit winner_tree(std::size_t n, Before before = {}) : before_(before) {
    while (size_ < n) size_ *= 2;
    key_.assign(2 * size_, Key{});
    slot_.resize(2 * size_);
    for (std::size_t s = 0; s < size_; ++s) slot_[size_ + s] = static_cast<I>(s);
  }

  /// Sets a key without updating the tree (call build() afterwards).
  void set(std::size_t slot, Key key) noexcept { key_[size_ + slot] = key; }

  void build() noexcept {
    for (std::size_t node = size_ - 1; node >= 1; --node) {
      const std::size_t w = better(node);
      key_[node] = key_[w];
      slot_[node] = slot_[w];
    }
  }

  void update(std::size_t slot, Key key) noexcept {
    key_[size_ + slot] = key;
    for (std::size_t node = (slot + size_) >> 1; node != 0; node >>= 1) {
      const std::size_t w = better(node);
      // Same winner with a key that ranks the same: every ancestor compares what it compared
      // before.
      if (slot_[w] == slot_[node] && !before_(key_[w], key_[node]) &&
          !before_(key_[node], key_[w])) {
        key_[node] = key_[w];
        return;
      }
      key_[node] = key_[w];
      slot_[node] = slot_[w];
    }
  }

  /// The winning slot (node 1: the root, or the only leaf when the tree has one slot).
  [[nodiscard]] std::size_t top() const noexcept { return slot_[1]; }
  [[nodiscard]] const Key& key(std::size_t slot) const noexcept { return key_[size_ + slot]; }

 private:
  /// The child of `node` whose winner wins: the right one only when it ranks strictly before.
  [[nodiscard]] std::size_t better(std::size_t node) const noexcept {
    const std::size_t l = 2 * node;
    return l + static_cast<std::size_t>(before_(key_[l + 1], key_[l]));
  }

  Before before_;
  std::size_t size_ = 1;
  std::vector<Key> key_;  // key_[node]: the winner's key of node (leaves at size_ + slot)
  std::vector<I> slot_;   // slot_[node]: the winner of node
};

/// The same answers as winner_tree<K, I> over unsigned keys (largest key, leftmost among equal
/// keys; key 0 = empty) for many point updates that mostly lower keys that are not the maximum:
/// slots in blocks of 64 with each block's leftmost maximum, and a winner_tree over the blocks.
/// An update that does not beat its block's maximum, and is not it, is O(1); otherwise the block
/// is rescanned (64 contiguous keys, vectorized) and the small block tree updated.
/// Cache-friendly: the scattered accesses of a full binary tree over N slots go to a tree over
/// N / 64 blocks.
template <class K, class I = std::size_t>
class block_winner_tree {
 public:
  static constexpr std::size_t block = 64;

  explicit block_winner_tree(std::size_t n)
      : blocks_((n + block - 1) / block + (n == 0 ? 1 : 0)),
        key_(blocks_ * block, K(0)),
        winner_(blocks_, 0),
        tree_(blocks_) {}

  void set(std::size_t slot, K key) noexcept { key_[slot] = key; }

  void build() noexcept {
    for (std::size_t b = 0; b < blocks_; ++b) tree_.set(b, rescan(b));
    tree_.build();
  }

  void update(std::size_t slot, K key) noexcept {
    key_[slot] = key;
    const std::size_t b = slot / block;
    const std::size_t w = winner_[b];
    if (slot == w) {
      tree_.update(b, rescan(b));
    } else if (key > key_[w] || (key == key_[w] && slot < w)) {
      winner_[b] = static_cast<I>(slot);
      tree_.update(b, key);
    }
  }

  [[nodiscard]] std::size_t top() const noexcept { return winner_[tree_.top()]; }
  [[nodiscard]] K key(std::size_t slot) const noexcept { return key_[slot]; }

 private:
  /// Recomputes block b's leftmost maximum; returns its key.
  K rescan(std::size_t b) noexcept {
    const K* keys = key_.data() + b * block;
    K best = 0;
    for (std::size_t k = 0; k < block; ++k) best = keys[k] > best ? keys[k] : best;
    std::size_t w = 0;
    while (keys[w] != best) ++w;
    winner_[b] = static_cast<I>(b * block + w);
    return best;
  }

  std::size_t blocks_;
  std::vector<K> key_;     // per slot, padded to whole blocks with 0
  std::vector<I> winner_;  // per block: the leftmost slot with the block's largest key
  winner_tree<K, I> tree_;
};

}  // namespace detail
CVK_KERNEL_END
CVK_END_NAMESPACE
