// CVK_THROW defined by the program before the first cvk include (in every translation unit of
// this executable: it has only this one): every cvk error reaches the
// program's own error type, with cvk's message and the error kind. This translation unit
// includes the whole library (cvk.hpp) with the override, so every use of CVK_THROW compiles
// with it.
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

namespace user {
/// A program's own error type: keeps cvk's message and which cvk error kind it was.
struct failure : std::runtime_error {
  failure(const std::string& message, std::string kind)
      : std::runtime_error(message), kind_name(std::move(kind)) {}
  std::string kind_name;
};
}  // namespace user

#define CVK_THROW(ErrorType, message) throw ::user::failure((message), #ErrorType)

#include <catch2/catch.hpp>

#include "cvk/cvk.hpp"

TEST_CASE("CVK_THROW defined by the program routes every cvk error through it", "[core][errors]") {
  STATIC_REQUIRE(cvk::cvk_throw_is_user_defined);
  std::vector<float> boxes(6, 0.0f);
  const cvk::strided_view<const float, 2> bad(boxes.data(), {2, 3}, {3, 1});
  try {
    (void)cvk::box_area(bad);
    FAIL("box_area accepted 2×3 boxes");
  } catch (const user::failure& e) {
    CHECK(e.kind_name == "shape_error");
    CHECK(std::string(e.what()).find("box_area") != std::string::npos);
  }
  std::vector<float> two(8, 0.0f), scores(2, 1.0f);
  const cvk::strided_view<const float, 2> b(two.data(), {2, 4}, {4, 1});
  const cvk::strided_view<const float, 1> s(scores.data(), {2}, {1});
  try {
    (void)cvk::nms(b, s, std::numeric_limits<double>::quiet_NaN());
    FAIL("nms accepted a NaN threshold");
  } catch (const user::failure& e) {
    CHECK(e.kind_name == "invalid_argument");
  }
}
