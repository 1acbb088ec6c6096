// cvk — computer-vision kernels, header-only C++20.
// Box regression by gradient descent with the IoU loss and with the GIoU loss (Rezatofighi et
// al., CVPR 2019, Algorithm 2), from an overlapping and from a disjoint start. The IoU loss has
// zero gradient while the boxes do not overlap, so that run never moves — the paper's
// motivation for GIoU. Prints the final IoUs and writes giou_regression.png (trajectories).
// SPDX-License-Identifier: MIT
#include <array>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include <cvk/box.hpp>

#include "support/png.hpp"

namespace {

using box = std::array<double, 4>;  // x1, y1, x2, y2

enum class loss_kind { iou, giou };

struct run {
  loss_kind loss;
  box start;
  std::vector<box> path;
};

// Gradient descent on the four coordinates of the predicted box, with normalized steps whose
// length (in pixels) decays linearly from `first_step` to `last_step`. A zero gradient (the IoU
// loss on disjoint boxes) leaves the box where it is.
std::vector<box> descend(loss_kind loss, box pred, const box& target, int steps, double first_step,
                         double last_step) {
  std::vector<box> path{pred};
  for (int step = 0; step < steps; ++step) {
    const auto grad = loss == loss_kind::iou ? cvk::iou_loss_backward(pred, target)
                                             : cvk::generalized_box_iou_loss_backward(pred, target);
    const double norm =
        std::sqrt(grad[0] * grad[0] + grad[1] * grad[1] + grad[2] * grad[2] + grad[3] * grad[3]);
    if (norm > 0) {
      const double t = static_cast<double>(step) / steps;
      const double length = first_step + (last_step - first_step) * t;
      for (std::size_t k = 0; k < 4; ++k) pred[k] -= length * grad[k] / norm;
    }
    path.push_back(pred);
  }
  return path;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string dir = argc > 1 ? std::string(argv[1]) + "/" : std::string();
  const box target{250, 150, 350, 250};
  const box overlapping{190, 110, 290, 230};
  const box disjoint{40, 280, 120, 380};
  constexpr int steps = 1500;

  std::vector<run> runs;
  for (const loss_kind loss : {loss_kind::iou, loss_kind::giou}) {
    for (const box& start : {overlapping, disjoint}) {
      runs.push_back({loss, start, descend(loss, start, target, steps, 3.0, 0.05)});
    }
  }

  std::printf("%-10s %-12s %10s %10s\n", "loss", "start", "IoU start", "IoU end");
  bool giou_converged = true;
  bool iou_stuck = true;
  for (const auto& r : runs) {
    const double first = cvk::box_iou(r.path.front(), target);
    const double last = cvk::box_iou(r.path.back(), target);
    const bool from_disjoint = r.start == disjoint;
    std::printf("%-10s %-12s %10.4f %10.4f\n", r.loss == loss_kind::iou ? "IoU" : "GIoU",
                from_disjoint ? "disjoint" : "overlapping", first, last);
    if (r.loss == loss_kind::giou) giou_converged = giou_converged && last > 0.95;
    if (r.loss == loss_kind::iou && from_disjoint) iou_stuck = last == 0.0;
  }

  // Two panels: IoU loss (left), GIoU loss (right). Target black, starts grey, paths coloured.
  constexpr int panel = 450;
  png::image picture(2 * panel, panel);
  for (int p = 0; p < 2; ++p) {
    const double ox = p * panel;
    picture.draw_text(ox + 10, 10, p == 0 ? "IoU loss" : "GIoU loss", png::black, 2);
    picture.draw_rect(ox + target[0], target[1], ox + target[2], target[3], png::black, 2);
  }
  std::size_t colour = 0;
  for (const auto& r : runs) {
    const double ox = r.loss == loss_kind::iou ? 0.0 : panel;
    const png::rgb c = png::palette(colour++);
    picture.draw_rect(ox + r.start[0], r.start[1], ox + r.start[2], r.start[3], png::grey, 1);
    for (std::size_t i = 1; i < r.path.size(); ++i) {
      const box& a = r.path[i - 1];
      const box& b = r.path[i];
      picture.draw_line(ox + (a[0] + a[2]) / 2, (a[1] + a[3]) / 2, ox + (b[0] + b[2]) / 2,
                        (b[1] + b[3]) / 2, c, 2);
    }
    const box& end = r.path.back();
    picture.draw_rect(ox + end[0], end[1], ox + end[2], end[3], c, 2);
  }
  picture.draw_line(panel, 0, panel, panel, png::grey, 1);
  const std::string path = dir + "giou_regression.png";
  if (!picture.save(path)) {
    std::fprintf(stderr, "could not write %s\n", path.c_str());
    return 1;
  }
  std::printf("wrote %s\n", path.c_str());
  // The example doubles as a check of the paper's claim.
  return (giou_converged && iou_stuck) ? 0 : 1;
}
