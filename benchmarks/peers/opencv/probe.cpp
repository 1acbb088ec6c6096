// cvk — computer-vision kernels, header-only C++20.
// Links the OpenCV entry points cvk's benchmarks call (cv::dnn::NMSBoxes on Rect2d and
// RotatedRect, softNMSBoxes): a partial OpenCV installation fails to build this probe.
// SPDX-License-Identifier: MIT
#include <opencv2/core.hpp>
#include <opencv2/dnn.hpp>
#include <vector>

int main() {
  const std::vector<cv::Rect2d> boxes = {{0, 0, 10, 10}, {1, 1, 10, 10}};
  const std::vector<float> scores = {0.9f, 0.8f};
  std::vector<int> kept;
  cv::dnn::NMSBoxes(boxes, scores, 0.f, 0.5f, kept);
  const std::vector<cv::RotatedRect> rotated = {{{5, 5}, {10, 10}, 0.f}};
  cv::dnn::NMSBoxes(rotated, std::vector<float>{0.9f}, 0.f, 0.5f, kept);
  const std::vector<cv::Rect> rects = {{0, 0, 10, 10}};
  std::vector<float> updated;
  cv::dnn::softNMSBoxes(rects, std::vector<float>{0.9f}, updated, 0.f, 0.5f, kept);
  return kept.empty() ? 1 : 0;
}
