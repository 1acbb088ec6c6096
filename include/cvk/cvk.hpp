// cvk — computer-vision kernels, header-only C++20.
// Umbrella header: every public header except the opt-in adaptors (cvk/adapt/*.hpp).
// SPDX-License-Identifier: MIT
#pragma once

#include "box.hpp"
#include "conv.hpp"
#include "core.hpp"
#include "eval.hpp"
#include "nms.hpp"
#include "saliency.hpp"
