// cvk — computer-vision kernels, header-only C++20.
// The core: views, the as_view customization point, the owning tensor, errors, box
// registration, parallel_for and the seeded RNG. Never includes Eigen, xtensor or DLPack.
// SPDX-License-Identifier: MIT
#pragma once

#include "core/as_view.hpp"
#include "core/box_traits.hpp"
#include "core/config.hpp"
#include "core/errors.hpp"
#include "core/layout.hpp"
#include "core/memory.hpp"
#include "core/parallel.hpp"
#include "core/rng.hpp"
#include "core/std_adaptors.hpp"
#include "core/strided_view.hpp"
#include "core/tensor.hpp"
