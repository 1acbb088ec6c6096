// Built with -fno-exceptions: a bad argument prints the cvk message and aborts. The CTest
// test passes when the output carries the message.
#include <array>
#include <cvk/cvk.hpp>
#include <vector>

int main() {
  const std::vector<std::array<float, 3>> bad(7);
  const auto area = cvk::box_area(bad);  // aborts here
  return static_cast<int>(area.size());
}
