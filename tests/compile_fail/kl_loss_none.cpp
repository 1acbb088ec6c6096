// expect: cvk::kl_loss.pred, log_var, target, loss_reduction::none.: the reduced form
// kl_loss's reduced form named with the literal loss_reduction::none: a compile error.
#include <cvk/box/loss.hpp>

#include <array>
#include <vector>

int main() {
  const std::vector<std::array<double, 4>> pred{{0, 0, 1, 1}}, target{{0, 0, 2, 2}};
  (void)cvk::kl_loss(pred, pred, target, cvk::loss_reduction::none);
}
