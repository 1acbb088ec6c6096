// cvk — computer-vision kernels, header-only C++20.
// Links the XNNPACK entry points cvk's convolution benchmark calls (xnn_initialize, a grouped
// xnn_create_convolution2d_nhwc_f32, its setup and xnn_run_operator on a pthreadpool): an
// XNNPACK installed without pthreadpool, or of an API other than the one the benchmark is
// written against (Debian's 2022-02 snapshot), fails to build this probe.
// SPDX-License-Identifier: MIT
#include <pthreadpool.h>
#include <xnnpack.h>

#include <cmath>
#include <vector>

int main() {
  if (xnn_initialize(nullptr) != xnn_status_success) return 1;
  // 1×4×4×4 input, 2 groups of 2 → 2 channels, 3×3 kernel, padding 1: one output pixel per
  // input pixel.
  const std::vector<float> weight(4 * 3 * 3 * 2, 0.5f), bias(4, 0.f), input(4 * 4 * 4, 1.f);
  std::vector<float> output(4 * 4 * 4, 0.f);
  xnn_operator_t op = nullptr;
  if (xnn_create_convolution2d_nhwc_f32(1, 1, 1, 1, 3, 3, 1, 1, 1, 1, /*groups=*/2, 2, 2, 4, 4,
                                        weight.data(), bias.data(), -INFINITY, INFINITY, 0,
                                        &op) != xnn_status_success) {
    return 1;
  }
  pthreadpool_t pool = pthreadpool_create(1);
  const bool ok = xnn_setup_convolution2d_nhwc_f32(op, 1, 4, 4, input.data(), output.data(),
                                                   pool) == xnn_status_success &&
                  xnn_run_operator(op, pool) == xnn_status_success;
  xnn_delete_operator(op);
  pthreadpool_destroy(pool);
  // The centre pixel sees 9 taps of 2 input channels: 18 · 0.5 = 9.
  return ok && output[(1 * 4 + 1) * 4] == 9.f ? 0 : 1;
}
