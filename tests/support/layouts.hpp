// cvk — computer-vision kernels, header-only C++20.
// Test support: copies of N×K data in the memory layouts kernels must handle (padded rows,
// column-major, reversed rows or columns), each with the strided_view that reads it back in
// the original order.
// SPDX-License-Identifier: MIT
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <vector>

#include <cvk/core/strided_view.hpp>

namespace cvk_test {

enum class layout {
  contiguous,        ///< row-major, no gaps
  padded_rows,       ///< row stride 7 (K + 3), starting 2 elements into the buffer
  column_major,      ///< transposed storage: strides {1, N}
  reversed_rows,     ///< negative row stride: the last row is stored first
  reversed_columns,  ///< negative column stride: each row stored back to front
};

inline constexpr std::array<layout, 5> all_layouts{layout::contiguous, layout::padded_rows,
                                                   layout::column_major, layout::reversed_rows,
                                                   layout::reversed_columns};

inline std::string to_string(layout l) {
  switch (l) {
    case layout::contiguous:
      return "contiguous";
    case layout::padded_rows:
      return "padded rows (row stride 7)";
    case layout::column_major:
      return "column-major";
    case layout::reversed_rows:
      return "reversed rows (negative row stride)";
    case layout::reversed_columns:
      return "reversed columns (negative column stride)";
  }
  return "?";
}

/// A buffer and the N×K view of it in a given layout. Not copyable (the view points into the
/// buffer); moving keeps the view valid.
template <class T>
struct strided_storage {
  std::vector<T> buffer;
  cvk::strided_view<T, 2> view;

  strided_storage() = default;
  strided_storage(const strided_storage&) = delete;
  strided_storage& operator=(const strided_storage&) = delete;
  strided_storage(strided_storage&&) noexcept = default;
  strided_storage& operator=(strided_storage&&) noexcept = default;

  /// Number of buffer elements equal to `filler` (the ones the view does not reach, if nothing
  /// wrote there).
  [[nodiscard]] std::size_t count_filler(T filler) const {
    std::size_t count = 0;
    for (const T& x : buffer) count += x == filler ? 1 : 0;
    return count;
  }
};

/// `n` rows of `K` values laid out as `l`, every element `filler` (padding included).
template <class T, std::size_t K>
strided_storage<T> make_storage(std::size_t n, layout l, T filler) {
  const auto rows = static_cast<cvk::index_t>(n);
  const auto cols = static_cast<cvk::index_t>(K);
  strided_storage<T> s;
  switch (l) {
    case layout::contiguous:
      s.buffer.assign(n * K, filler);
      s.view = {s.buffer.data(), {rows, cols}, {cols, 1}};
      break;
    case layout::padded_rows:
      s.buffer.assign(n * (K + 3) + 2, filler);
      s.view = {s.buffer.data() + 2, {rows, cols}, {cols + 3, 1}};
      break;
    case layout::column_major:
      s.buffer.assign(n * K, filler);
      s.view = {s.buffer.data(), {rows, cols}, {1, rows}};
      break;
    case layout::reversed_rows:
      s.buffer.assign(n * K, filler);
      s.view = {n == 0 ? s.buffer.data() : s.buffer.data() + (n - 1) * K, {rows, cols}, {-cols, 1}};
      break;
    case layout::reversed_columns:
      s.buffer.assign(n * K, filler);
      s.view = {n == 0 ? s.buffer.data() : s.buffer.data() + (K - 1), {rows, cols}, {cols, -1}};
      break;
  }
  return s;
}

/// A copy of `rows` laid out as `l`; the view reads back rows[i][k] at (i, k). Padding holds
/// `filler`.
template <class T, std::size_t K>
strided_storage<T> with_layout(const std::vector<std::array<T, K>>& rows, layout l, T filler) {
  auto s = make_storage<T, K>(rows.size(), l, filler);
  for (std::size_t i = 0; i < rows.size(); ++i) {
    for (std::size_t k = 0; k < K; ++k) {
      s.view(static_cast<cvk::index_t>(i), static_cast<cvk::index_t>(k)) = rows[i][k];
    }
  }
  return s;
}

}  // namespace cvk_test
