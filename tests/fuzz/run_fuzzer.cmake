# Runs one fuzz target for a bounded time on a fresh copy of its committed corpus:
#   cmake -DFUZZER=<exe> -DCORPUS=<dir> -DWORK_DIR=<dir> -DRUNS=<n> -DSECONDS=<n> [-DSEED=<n>]
#         -P run_fuzzer.cmake
# RUNS inputs are executed (the same ones for a given seed and binary, on any machine); SECONDS
# caps the run.
# A finding (crash, sanitizer report, failed invariant, leak, timeout) fails the test; the
# reproducer is written to WORK_DIR as crash-*, leak-* or timeout-*.
if(NOT DEFINED SEED)
  set(SEED 1)
endif()
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR}/corpus)
file(GLOB seeds ${CORPUS}/*)
if(seeds)
  file(COPY ${seeds} DESTINATION ${WORK_DIR}/corpus)
endif()
execute_process(
  COMMAND ${FUZZER} ${WORK_DIR}/corpus -runs=${RUNS} -max_total_time=${SECONDS} -seed=${SEED} -rss_limit_mb=2048
          -timeout=20 -max_len=8192 -print_final_stats=1 -artifact_prefix=${WORK_DIR}/
  RESULT_VARIABLE result)
if(NOT result EQUAL 0)
  message(FATAL_ERROR "${FUZZER} found a problem (exit ${result}); reproducer in ${WORK_DIR}")
endif()
