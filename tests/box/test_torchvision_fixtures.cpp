// cvk — computer-vision kernels, header-only C++20.
// Golden tests: cvk::box_area and cvk::box_convert reproduce torchvision.ops on the boxes in
// tests/data/box_basics.txt (written by tests/gen_fixtures.py with torchvision 0.14).
// SPDX-License-Identifier: MIT
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include <cvk/box/area.hpp>
#include <cvk/box/format.hpp>
#include <cvk/core/std_adaptors.hpp>

#include "support/compare.hpp"
#include "support/fixtures.hpp"

// Comparison policy. torchvision computes, in the tensor's own dtype, exactly the expressions
// cvk computes for these formats: w = x2 - x1, cx = (x1 + x2) / 2, x1 = cx - 0.5 * w,
// x2 = x + w, area = (x2 - x1) * (y2 - y1); a conversion between two formats other than xyxy
// goes through xyxy in both; converting a format to itself is a copy in both. Every result is
// therefore expected to be the same double (NaN where torchvision has NaN). For float32 the
// expressions are the same too, and the results agree bit for bit today; the test still
// allows 1 ulp there, as a margin for float32 paths that may legitimately evaluate
// differently (a vectorized torch kernel, a build that contracts products into FMAs).
// The sign of a zero is not compared: cvk's continuous convention adds +0 to widths, which
// would turn a -0 width (x2 = -0, x1 = +0) into +0; no such box is in the fixture, and every
// value, zeros included, currently matches torchvision bit for bit in both dtypes.
namespace {

template <class T>
struct dtype;
template <>
struct dtype<float> {
  static constexpr const char* name = "float32";
  static constexpr std::uint64_t max_ulps = 1;
};
template <>
struct dtype<double> {
  static constexpr const char* name = "float64";
  static constexpr std::uint64_t max_ulps = 0;
};

const cvk_test::fixture_file& fixtures() {
  static const cvk_test::fixture_file file(cvk_test::test_data_path("box_basics.txt"));
  return file;
}

cvk::box_format parse_format(const std::string& name) {
  if (name == "xyxy") return cvk::box_format::xyxy;
  if (name == "xywh") return cvk::box_format::xywh;
  if (name == "cxcywh") return cvk::box_format::cxcywh;
  throw std::runtime_error("unknown format " + name);
}

/// Compares a result with torchvision's values; reports the worst element.
template <class T, class Result>
void check_matches_torchvision(const Result& result, const std::vector<T>& expected,
                               const std::string& what) {
  const auto v = cvk::as_view(result);
  REQUIRE(static_cast<std::size_t>(v.size()) == expected.size());
  const auto cols = static_cast<std::size_t>(v.size() / v.extent(0));
  std::uint64_t worst = 0;
  std::size_t worst_index = 0;
  std::size_t beyond = 0;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    T got{};
    if constexpr (decltype(v)::rank() == 1) {
      got = v(static_cast<cvk::index_t>(i));
    } else {
      got = v(static_cast<cvk::index_t>(i / cols), static_cast<cvk::index_t>(i % cols));
    }
    const std::uint64_t ulps = cvk_test::ulp_distance(got, expected[i]);
    if (ulps > dtype<T>::max_ulps) ++beyond;
    if (ulps > worst) {
      worst = ulps;
      worst_index = i;
    }
  }
  std::ostringstream text;
  text.precision(17);
  text << what << ": worst element " << worst_index << " is " << worst << " ulp from torchvision";
  INFO(text.str());
  CHECK(beyond == 0);
}

}  // namespace

TEST_CASE("torchvision fixtures: the file is complete", "[box][fixtures]") {
  const auto& file = fixtures();
  CHECK(file.meta("torchvision").rfind("0.14", 0) == 0);
  for (const char* type : {"float32", "float64"}) {
    const auto& boxes = file.table(std::string("boxes/") + type);
    CHECK(boxes.rows >= 200);
    CHECK(boxes.cols == 4);
    CHECK(file.table(std::string("box_area/") + type).rows == boxes.rows);
    for (const char* from : {"xyxy", "xywh", "cxcywh"}) {
      for (const char* to : {"xyxy", "xywh", "cxcywh"}) {
        const auto& converted =
            file.table(std::string("box_convert/") + from + "/" + to + "/" + type);
        CHECK(converted.rows == boxes.rows);
        CHECK(converted.cols == 4);
      }
    }
  }
  CHECK(file.table("boxes/int64").rows == file.table("box_area/int64").rows);
}

TEMPLATE_TEST_CASE("torchvision fixtures: box_area", "[box][fixtures]", float, double) {
  using T = TestType;
  const std::string type = dtype<T>::name;
  const auto boxes = fixtures().table("boxes/" + type).rows_of<T, 4>();
  const auto expected = fixtures().table("box_area/" + type).values<T>();
  const auto areas = cvk::box_area(boxes);
  check_matches_torchvision(areas, expected, "box_area " + type);
  // The out-parameter form and the single-box form agree.
  std::vector<T> out(boxes.size());
  cvk::box_area(boxes, out);
  check_matches_torchvision(out, expected, "box_area (out) " + type);
  std::vector<T> single;
  for (const auto& b : boxes) single.push_back(cvk::box_area(b));
  check_matches_torchvision(single, expected, "box_area (single) " + type);
}

TEMPLATE_TEST_CASE("torchvision fixtures: box_convert", "[box][fixtures]", float, double) {
  using T = TestType;
  const std::string type = dtype<T>::name;
  const auto boxes = fixtures().table("boxes/" + type).rows_of<T, 4>();
  for (const std::string from : {"xyxy", "xywh", "cxcywh"}) {
    for (const std::string to : {"xyxy", "xywh", "cxcywh"}) {
      const std::string name = "box_convert/" + from + "/" + to + "/" + type;
      const auto expected = fixtures().table(name).values<T>();
      const auto result = cvk::box_convert(boxes, parse_format(from), parse_format(to));
      check_matches_torchvision(result, expected, name);
      std::vector<std::array<T, 4>> single;
      for (const auto& b : boxes) {
        single.push_back(cvk::box_convert(b, parse_format(from), parse_format(to)));
      }
      check_matches_torchvision(single, expected, name + " (single)");
    }
  }
}

TEST_CASE("torchvision fixtures: box_area of int64 boxes", "[box][fixtures]") {
  // torchvision keeps int64 and computes the area in int64; cvk computes integer boxes in
  // double. The values are far below 2^53, so they must agree exactly.
  const auto boxes = fixtures().table("boxes/int64").rows_of<std::int64_t, 4>();
  const auto expected = fixtures().table("box_area/int64").values<std::int64_t>();
  const auto areas = cvk::box_area(boxes);
  REQUIRE(static_cast<std::size_t>(areas.size()) == expected.size());
  std::size_t mismatches = 0;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    if (areas(static_cast<cvk::index_t>(i)) != static_cast<double>(expected[i])) ++mismatches;
  }
  CHECK(mismatches == 0);
}

TEST_CASE("fixture parser: errors are reported", "[box][fixtures]") {
  CHECK_THROWS_WITH(cvk_test::fixture_file(cvk_test::test_data_path("no_such_file.txt")),
                    Catch::Contains("cannot open fixture file"));
  CHECK_THROWS_WITH(fixtures().table("no/such/table"), "no fixture table no/such/table");
  CHECK_THROWS_WITH((fixtures().table("box_area/float64").rows_of<double, 4>()),
                    "fixture table box_area/float64 has 1 columns, expected 4");
  cvk_test::fixture_table bad;
  bad.name = "bad";
  bad.rows = 1;
  bad.cols = 2;
  bad.cells = {"1.5", "x"};
  CHECK_THROWS_WITH(bad.values<double>(), "fixture table bad: cannot parse \"x\"");
  bad.cells = {"1.5", "2"};
  CHECK(bad.values<double>() == std::vector<double>{1.5, 2.0});
  CHECK_THROWS(bad.values<int>());  // "1.5" is not an integer
  bad.cells = {"nan", "-inf"};
  const auto special = bad.values<float>();
  CHECK(std::isnan(special[0]));
  CHECK(std::isinf(special[1]));
  CHECK(special[1] < 0);
}
