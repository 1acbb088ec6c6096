// expect: cvk: detection_ap class and image ids must be integer tensors
// detection_ap's argument groups with floating-point class ids: a compile error, ids are integers.
#include <cvk/eval/detection_ap.hpp>

#include <array>
#include <vector>

int main() {
  const std::vector<std::array<float, 4>> boxes{{0, 0, 1, 1}};
  const std::vector<float> scores{1};
  const std::vector<double> labels{0.5};
  const std::vector<int> images{0};
  (void)cvk::detection_ap({.boxes = boxes, .scores = scores, .classes = labels, .images = images},
                          {.boxes = boxes, .classes = images, .images = images});
}
