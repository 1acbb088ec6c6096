// cvk — computer-vision kernels, header-only C++20.
// Convolution: conv2d forward (grouped, depthwise, NCHW/NHWC, fused epilogue) and conv2d_plan.
// SPDX-License-Identifier: MIT
#pragma once

#include "conv/conv2d.hpp"
