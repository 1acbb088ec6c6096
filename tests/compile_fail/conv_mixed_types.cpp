// expect: cvk: conv2d needs the same element type
// conv2d of a float input with a double weight: a compile error, not a silent conversion.
#include <cvk/conv/conv2d.hpp>

#include <vector>

int main() {
  const std::vector<float> x(16);
  const std::vector<double> w(9);
  (void)cvk::conv2d(cvk::view(x.data(), {1, 1, 4, 4}), cvk::view(w.data(), {1, 1, 3, 3}));
}
