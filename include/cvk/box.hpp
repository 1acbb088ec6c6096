// cvk — computer-vision kernels, header-only C++20.
// Box geometry: formats, conversion, areas, the IoU family, box coding, losses, rotated boxes.
// SPDX-License-Identifier: MIT
#pragma once

#include "box/area.hpp"
#include "box/coder.hpp"
#include "box/format.hpp"
#include "box/iou.hpp"
#include "box/loss.hpp"
#include "box/loss_nd.hpp"
#include "box/rotated.hpp"
