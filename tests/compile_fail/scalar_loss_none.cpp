// expect: the reduced form returns one number; for one loss per box call generalized_box_iou_loss
// A reduced (scalar) box loss named with the literal loss_reduction::none: a compile error, that
// form returns one number and none means one loss per box.
#include <cvk/box/loss.hpp>

#include <array>
#include <vector>

int main() {
  const std::vector<std::array<float, 4>> pred{{0, 0, 1, 1}}, target{{0, 0, 2, 2}};
  (void)cvk::generalized_box_iou_loss(pred, target, cvk::loss_reduction::none);
}
