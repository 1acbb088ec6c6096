// cvk — computer-vision kernels, header-only C++20.
// Tests of cvk/core/errors.hpp: the error hierarchy and CVK_THROW.
// SPDX-License-Identifier: MIT
#include <cvk/core/errors.hpp>

#include <exception>
#include <stdexcept>
#include <string>
#include <type_traits>

#include <catch2/catch.hpp>

// cvk::error is a mixin: catchable on its own, but not a second std::exception base (which
// would make catch (const std::exception&) ambiguous).
static_assert(std::is_abstract_v<cvk::error>);
static_assert(!std::is_base_of_v<std::exception, cvk::error>);
static_assert(std::is_base_of_v<cvk::error, cvk::invalid_argument>);
static_assert(std::is_base_of_v<std::invalid_argument, cvk::invalid_argument>);
static_assert(std::is_base_of_v<cvk::invalid_argument, cvk::shape_error>);
static_assert(std::is_base_of_v<cvk::invalid_argument, cvk::dtype_error>);
static_assert(std::is_base_of_v<cvk::invalid_argument, cvk::device_error>);
static_assert(std::is_base_of_v<cvk::error, cvk::out_of_range>);
static_assert(std::is_base_of_v<std::out_of_range, cvk::out_of_range>);
static_assert(!std::is_base_of_v<std::invalid_argument, cvk::out_of_range>);
static_assert(!std::is_base_of_v<cvk::shape_error, cvk::dtype_error>);
// Messages are required: no implicit conversion from a string.
static_assert(!std::is_convertible_v<std::string, cvk::shape_error>);
static_assert(std::is_constructible_v<cvk::shape_error, std::string>);

namespace {

template <class Caught, class Thrown>
bool caught_as(const std::string& message) {
  try {
    CVK_THROW(Thrown, message);
  } catch (const Caught& e) {
    return std::string(e.what()) == message;
  } catch (...) {
    return false;
  }
}

}  // namespace

TEMPLATE_TEST_CASE("errors: every invalid_argument is catchable as cvk::error and its std base",
                   "[core][errors]", cvk::invalid_argument, cvk::shape_error, cvk::dtype_error,
                   cvk::device_error) {
  const std::string message = "op: argument must be something, got something else";
  CHECK(caught_as<TestType, TestType>(message));
  CHECK(caught_as<cvk::error, TestType>(message));
  CHECK(caught_as<cvk::invalid_argument, TestType>(message));
  CHECK(caught_as<std::invalid_argument, TestType>(message));
  CHECK(caught_as<std::logic_error, TestType>(message));
  CHECK(caught_as<std::exception, TestType>(message));
  CHECK_FALSE(caught_as<std::out_of_range, TestType>(message));
  CHECK_FALSE(caught_as<std::runtime_error, TestType>(message));
}

TEST_CASE("errors: out_of_range is catchable as cvk::error and std::out_of_range",
          "[core][errors]") {
  const std::string message = "tensor: 2^70 elements do not fit in memory";
  CHECK(caught_as<cvk::out_of_range, cvk::out_of_range>(message));
  CHECK(caught_as<cvk::error, cvk::out_of_range>(message));
  CHECK(caught_as<std::out_of_range, cvk::out_of_range>(message));
  CHECK(caught_as<std::logic_error, cvk::out_of_range>(message));
  CHECK(caught_as<std::exception, cvk::out_of_range>(message));
  CHECK_FALSE(caught_as<std::invalid_argument, cvk::out_of_range>(message));
  CHECK_FALSE(caught_as<cvk::invalid_argument, cvk::out_of_range>(message));
}

TEST_CASE("errors: subclasses are told apart", "[core][errors]") {
  CHECK_FALSE(caught_as<cvk::shape_error, cvk::dtype_error>("x"));
  CHECK_FALSE(caught_as<cvk::dtype_error, cvk::shape_error>("x"));
  CHECK_FALSE(caught_as<cvk::device_error, cvk::invalid_argument>("x"));
}

TEST_CASE("errors: CVK_THROW carries the message", "[core][errors]") {
  CHECK_THROWS_AS(CVK_THROW(cvk::shape_error, "box_area: boxes must be N×4, got 7×3"),
                  cvk::shape_error);
  CHECK_THROWS_WITH(CVK_THROW(cvk::shape_error, "box_area: boxes must be N×4, got 7×3"),
                    "box_area: boxes must be N×4, got 7×3");
  // Anything convertible to std::string.
  const std::string built = std::string("f: ") + "x must be " + std::to_string(3);
  CHECK_THROWS_WITH(CVK_THROW(cvk::out_of_range, built), "f: x must be 3");
  // what() is the same through either base.
  try {
    CVK_THROW(cvk::dtype_error, "from_dlpack: expected float32, got int8");
    FAIL("CVK_THROW returned");
  } catch (const cvk::error& e) {
    const auto* as_std = dynamic_cast<const std::exception*>(&e);
    REQUIRE(as_std != nullptr);
    CHECK(std::string(as_std->what()) == e.what());
    CHECK(std::string(e.what()) == "from_dlpack: expected float32, got int8");
  }
}
