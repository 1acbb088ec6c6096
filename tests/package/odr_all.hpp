// Every public header, adaptors included when their packages are present.
#pragma once
#include <cvk/cvk.hpp>
#if __has_include(<Eigen/Core>)
#  include <cvk/adapt/eigen.hpp>
#endif
#if __has_include(<xtensor/xtensor.hpp>) || __has_include(<xtensor/containers/xtensor.hpp>)
#  include <cvk/adapt/xtensor.hpp>
#endif
#if __has_include(<dlpack/dlpack.h>)
#  include <cvk/adapt/dlpack.hpp>
#endif
