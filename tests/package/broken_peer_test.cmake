# cvk — computer-vision kernels, header-only C++20.
# Configures cvk with its benchmarks on and a broken oneDNN, a half-installed OpenCV and an
# XNNPACK whose header needs a missing one (tests/package/broken_peers): the configure must
# succeed, and name each peer as skipped with the reason. Run by CTest with -DSOURCE_DIR, -DWORK_DIR, -DCXX_COMPILER.
# SPDX-License-Identifier: MIT
file(REMOVE_RECURSE "${WORK_DIR}")
execute_process(
  COMMAND "${CMAKE_COMMAND}" -S "${SOURCE_DIR}" -B "${WORK_DIR}" "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}"
          -DCVK_BUILD_TESTS=OFF -DCVK_BUILD_EXAMPLES=OFF -DCVK_BUILD_BENCHMARKS=ON
          "-Ddnnl_DIR=${SOURCE_DIR}/tests/package/broken_peers/dnnl"
          "-DOpenCV_DIR=${SOURCE_DIR}/tests/package/broken_peers/opencv"
          "-DXNNPACK_INCLUDE_DIR=${SOURCE_DIR}/tests/package/broken_peers/xnnpack"
  RESULT_VARIABLE status OUTPUT_VARIABLE output ERROR_VARIABLE output)
if(NOT status EQUAL 0)
  message(FATAL_ERROR "configure failed with a broken peer installed:\n${output}")
endif()
foreach(expected
        "cvk benchmarks: oneDNN skipped: Could not find a package configuration file provided by \"cvk_test_missing_opencl\""
        "cvk benchmarks: OpenCV skipped: " "cvk benchmarks: XNNPACK skipped: ")
  string(FIND "${output}" "${expected}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "expected the status line '${expected}' in:\n${output}")
  endif()
endforeach()
foreach(unexpected "oneDNN 2" "found, compared side by side" "XNNPACK found")
  string(FIND "${output}" "${unexpected}" at)
  if(NOT at EQUAL -1)
    message(FATAL_ERROR "a broken peer was reported as found ('${unexpected}'):\n${output}")
  endif()
endforeach()
message(STATUS "broken peers skipped, configure succeeded")
