// expect: an output argument must be a mutable tensor
// box_area into a view of const memory: a compile error naming the output.
#include <cvk/box/area.hpp>

#include <vector>

int main() {
  const std::vector<float> boxes{0, 0, 1, 1};
  const std::vector<float> out(1);
  cvk::box_area(cvk::view(boxes.data(), {1, 4}), cvk::view(out.data(), {1}));
}
