// cvk — computer-vision kernels, header-only C++20.
// Bad inputs shared by the "errors table" tests (docs/errors.md): a runtime-rank view of the
// wrong rank, a raw-pointer view with a negative extent, and a broadcast view of 2^40 rows.
// SPDX-License-Identifier: MIT
#pragma once

#include <cstddef>
#include <vector>

#include <cvk/core/strided_view.hpp>

namespace cvk_test {

/// Rows of a broadcast view too large to hold anything derived from them (1 TiB of bytes).
inline constexpr cvk::index_t huge_rows = cvk::index_t{1} << 40;

/// A runtime-rank view of rank 3 (2×2×2) over `buffer` (at least 8 values).
template <class T>
cvk::dynamic_view<const T> rank3_view(const std::vector<T>& buffer) {
  typename cvk::dynamic_view<const T>::extents_type extents{};
  typename cvk::dynamic_view<const T>::extents_type strides{};
  extents[0] = extents[1] = extents[2] = 2;
  strides[0] = 4;
  strides[1] = 2;
  strides[2] = 1;
  return cvk::dynamic_view<const T>(buffer.data(), 3, extents, strides);
}

/// `rows`×`cols` rows that all alias the first `cols` values of `row` (row stride 0).
template <class T>
cvk::strided_view<const T, 2> broadcast_rows(const T* row, cvk::index_t rows, cvk::index_t cols) {
  return cvk::view(row, {rows, cols}, {cvk::index_t{0}, cvk::index_t{1}});
}

/// A broadcast vector of `n` copies of *value (stride 0).
template <class T>
cvk::strided_view<const T, 1> broadcast_values(const T* value, cvk::index_t n) {
  return cvk::view(value, {n}, {cvk::index_t{0}});
}

}  // namespace cvk_test
