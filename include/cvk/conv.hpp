// cvk — computer-vision kernels, header-only C++20.
// Convolution: conv2d forward (grouped, depthwise, NCHW/NHWC, fused epilogue) and conv2d_plan;
// conv2d's backward pass (input, weight, bias gradients) and conv_transpose2d; pooling
// (max, average, adaptive average; forward and backward) and channel_shuffle.
// SPDX-License-Identifier: MIT
#pragma once

#include "conv/channel_shuffle.hpp"
#include "conv/conv2d.hpp"
#include "conv/conv2d_backward.hpp"
#include "conv/conv_transpose2d.hpp"
#include "conv/deform_conv2d.hpp"
#include "conv/flgc.hpp"
#include "conv/pool2d.hpp"
#include "conv/ragged_conv2d.hpp"
