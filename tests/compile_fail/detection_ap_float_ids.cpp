// expect: cvk: detection_ap class and image ids must be integer tensors
// detection_ap with floating-point image ids: a compile error, ids are integers.
#include <cvk/eval/detection_ap.hpp>

#include <vector>

int main() {
  const std::vector<float> boxes{0, 0, 1, 1}, scores{1};
  const std::vector<double> image_ids{0.5};
  const std::vector<int> labels{0};
  (void)cvk::detection_ap(cvk::view(boxes.data(), {1, 4}), scores, labels, image_ids,
                          cvk::view(boxes.data(), {1, 4}), labels, image_ids);
}
