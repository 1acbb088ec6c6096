// cvk — computer-vision kernels, header-only C++20.
// Non-maximum suppression: greedy nms and the class-aware batched_nms.
// SPDX-License-Identifier: MIT
#pragma once

#include "nms/nms.hpp"
