// cvk — computer-vision kernels, header-only C++20.
// Test support: the reader of the golden fixture files written by tests/gen_fixtures.py.
// Format: '#' starts a comment line; "meta <key> <value...>"; "table <name> <rows> <cols>"
// followed by <rows> lines of <cols> whitespace-separated values (shortest round-trip decimals,
// nan, inf, -inf).
// SPDX-License-Identifier: MIT
#pragma once

#include <array>
#include <charconv>
#include <cstddef>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

namespace cvk_test {

/// Absolute path of a file under tests/data.
inline std::string test_data_path(std::string_view file) {
  return std::string(CVK_TEST_DATA_DIR) + "/" + std::string(file);
}

/// One table of a fixture file; values are kept as text and parsed in the requested type, so a
/// float32 table is read with float's own rounding (bit-exact) rather than through double.
struct fixture_table {
  std::string name;
  std::size_t rows = 0;
  std::size_t cols = 0;
  std::vector<std::string> cells;  // row-major, rows * cols

  /// Every value, row-major, parsed as T (float, double or an integer type).
  template <class T>
  [[nodiscard]] std::vector<T> values() const {
    std::vector<T> result;
    result.reserve(cells.size());
    for (const auto& cell : cells) result.push_back(parse<T>(cell));
    return result;
  }

  /// The values as rows of exactly N columns (throws when cols != N).
  template <class T, std::size_t N>
  [[nodiscard]] std::vector<std::array<T, N>> rows_of() const {
    if (cols != N) {
      throw std::runtime_error("fixture table " + name + " has " + std::to_string(cols) +
                               " columns, expected " + std::to_string(N));
    }
    const auto flat = values<T>();
    std::vector<std::array<T, N>> result(rows);
    for (std::size_t i = 0; i < rows; ++i) {
      for (std::size_t k = 0; k < N; ++k) result[i][k] = flat[i * N + k];
    }
    return result;
  }

 private:
  template <class T>
  T parse(const std::string& cell) const {
    T value{};
    const char* first = cell.data();
    const char* last = cell.data() + cell.size();
    if constexpr (std::is_floating_point_v<T>) {
      // from_chars does not take a leading '+', and reads "inf", "-inf" and "nan" as strtod does.
      const auto [end, ec] = std::from_chars(first, last, value, std::chars_format::general);
      if (ec != std::errc{} || end != last) fail(cell);
    } else {
      const auto [end, ec] = std::from_chars(first, last, value);
      if (ec != std::errc{} || end != last) fail(cell);
    }
    return value;
  }

  [[noreturn]] void fail(const std::string& cell) const {
    throw std::runtime_error("fixture table " + name + ": cannot parse \"" + cell + "\"");
  }
};

/// A parsed fixture file: its tables by name and its meta lines.
class fixture_file {
 public:
  /// Reads and parses `path`; throws std::runtime_error (with the line number) when the file is
  /// missing or malformed.
  explicit fixture_file(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot open fixture file " + path);
    std::string line;
    std::size_t line_number = 0;
    const auto error = [&](const std::string& what) {
      return std::runtime_error(path + ":" + std::to_string(line_number) + ": " + what);
    };
    while (std::getline(in, line)) {
      ++line_number;
      std::istringstream words(line);
      std::string keyword;
      if (!(words >> keyword) || keyword[0] == '#') continue;
      if (keyword == "meta") {
        std::string key;
        std::string value;
        words >> key;
        std::getline(words >> std::ws, value);
        meta_[key] = value;
      } else if (keyword == "table") {
        fixture_table table;
        if (!(words >> table.name >> table.rows >> table.cols)) throw error("bad table header");
        table.cells.reserve(table.rows * table.cols);
        for (std::size_t r = 0; r < table.rows; ++r) {
          if (!std::getline(in, line)) throw error("table " + table.name + " ends early");
          ++line_number;
          std::istringstream cells(line);
          std::string cell;
          std::size_t count = 0;
          while (cells >> cell) {
            table.cells.push_back(cell);
            ++count;
          }
          if (count != table.cols) {
            throw error("expected " + std::to_string(table.cols) + " values, got " +
                        std::to_string(count));
          }
        }
        const std::string name = table.name;
        if (!tables_.emplace(name, std::move(table)).second) throw error("duplicate " + name);
      } else {
        throw error("unknown keyword " + keyword);
      }
    }
  }

  [[nodiscard]] bool has_table(const std::string& name) const { return tables_.count(name) != 0; }

  /// The table called `name`; throws std::runtime_error when there is none.
  [[nodiscard]] const fixture_table& table(const std::string& name) const {
    const auto it = tables_.find(name);
    if (it == tables_.end()) throw std::runtime_error("no fixture table " + name);
    return it->second;
  }

  [[nodiscard]] const std::map<std::string, fixture_table>& tables() const { return tables_; }

  /// The value of a meta line ("" when absent).
  [[nodiscard]] std::string meta(const std::string& key) const {
    const auto it = meta_.find(key);
    return it == meta_.end() ? std::string() : it->second;
  }

 private:
  std::map<std::string, fixture_table> tables_;
  std::map<std::string, std::string> meta_;
};

}  // namespace cvk_test
