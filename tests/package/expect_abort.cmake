# Runs PROGRAM and passes when it exits with a failure (abort) and its output contains MESSAGE:
# the -fno-exceptions build must print the cvk error and abort.
execute_process(COMMAND ${PROGRAM} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
string(FIND "${out}${err}" "${MESSAGE}" at)
if(rc EQUAL 0)
  message(FATAL_ERROR "expected ${PROGRAM} to abort, it exited with 0")
endif()
if(at EQUAL -1)
  message(FATAL_ERROR "expected the output of ${PROGRAM} to contain \"${MESSAGE}\", got:\n${out}${err}")
endif()
message(STATUS "aborted (${rc}) with: ${MESSAGE}")
