// expect: tensor_of_rank|constraints not satisfied|no matching function
// An int is not a tensor: box_area's constraint rejects it at compile time.
#include <cvk/box/area.hpp>

#include <vector>

int main() {
  std::vector<float> out(1);
  cvk::box_area(42, out);
}
