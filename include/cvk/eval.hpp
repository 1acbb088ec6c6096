// cvk — computer-vision kernels, header-only C++20.
// Evaluation: COCO-style detection AP (cvk::detection_ap).
// SPDX-License-Identifier: MIT
#pragma once

#include "eval/detection_ap.hpp"
