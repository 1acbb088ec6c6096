# cvk — computer-vision kernels, header-only C++20.
# One compile-fail test: compiles SOURCE with -fsyntax-only and passes when the compiler rejects
# it with a diagnostic matching the regular expression on the file's first line
# ("// expect: <regex>"). A source that compiles, or fails for another reason, fails the test.
# SPDX-License-Identifier: MIT
file(STRINGS "${SOURCE}" first LIMIT_COUNT 1)
string(REGEX REPLACE "^// expect: " "" expect "${first}")
if(expect STREQUAL first OR expect STREQUAL "")
  message(FATAL_ERROR "${SOURCE}: the first line must be '// expect: <regex>'")
endif()
execute_process(
  COMMAND "${CXX}" -std=c++20 -fsyntax-only "-I${INCLUDE}" "${SOURCE}"
  RESULT_VARIABLE rc
  OUTPUT_VARIABLE out
  ERROR_VARIABLE out)
if(rc EQUAL 0)
  message(FATAL_ERROR "${SOURCE} compiled; it must be rejected with: ${expect}")
endif()
if(NOT out MATCHES "${expect}")
  message(FATAL_ERROR "${SOURCE} was rejected, but without '${expect}':\n${out}")
endif()
message(STATUS "rejected as expected: ${expect}")
