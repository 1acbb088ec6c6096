// expect: the output element type would narrow the result
// box_area of double boxes into a float output: a compile error, not a silent narrowing.
#include <cvk/box/area.hpp>

#include <vector>

int main() {
  const std::vector<double> boxes{0, 0, 1, 1};
  std::vector<float> out(1);
  cvk::box_area(cvk::view(boxes.data(), {1, 4}), out);
}
