// cvk — computer-vision kernels, header-only C++20.
// Non-maximum suppression: greedy nms, batched_nms, soft_nms, matrix/fast/cluster NMS, rotated
// and ONNX NMS, box and variance voting, EM-merger.
// SPDX-License-Identifier: MIT
#pragma once

#include "nms/cluster.hpp"
#include "nms/em_merge.hpp"
#include "nms/fast.hpp"
#include "nms/matrix.hpp"
#include "nms/nms.hpp"
#include "nms/onnx.hpp"
#include "nms/result.hpp"
#include "nms/rotated.hpp"
#include "nms/soft.hpp"
#include "nms/voting.hpp"
