// cvk — computer-vision kernels, header-only C++20.
// A stand-in for an XNNPACK installed without its pthreadpool header (libxnnpack-dev without
// libpthreadpool-dev): the benchmark's XNNPACK probe must fail on it and the peer be skipped.
// SPDX-License-Identifier: MIT
#pragma once
#include <cvk_test_missing_pthreadpool.h>
