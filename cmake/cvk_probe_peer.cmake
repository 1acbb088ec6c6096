# cvk — computer-vision kernels, header-only C++20.
# cvk_probe_peer(<peer> <label> <debian packages>): configures and builds the probe project in
# benchmarks/peers for <peer> in a CMake run of its own (try_compile), so that a broken or partial
# installation of an optional benchmark peer can never stop cvk's configure. Sets
# CVK_PEER_<PEER>_OK in the caller and prints one status line: found, or skipped and why.
# SPDX-License-Identifier: MIT
include_guard(GLOBAL)

function(cvk_probe_peer peer label packages)
  string(TOUPPER "${peer}" upper)
  set(probe_dir "${CMAKE_BINARY_DIR}/peer-probes/${peer}")
  file(REMOVE_RECURSE "${probe_dir}")
  set(flags "-DCVK_PROBE_PEER=${peer}" "-DCMAKE_CXX_COMPILER=${CMAKE_CXX_COMPILER}"
            "-DCMAKE_BUILD_TYPE=Release")
  foreach(var CMAKE_PREFIX_PATH CMAKE_FIND_ROOT_PATH OpenCV_DIR dnnl_DIR OpenCL_INCLUDE_DIR
              OpenCL_LIBRARY XNNPACK_INCLUDE_DIR XNNPACK_LIBRARY PTHREADPOOL_INCLUDE_DIR
              PTHREADPOOL_LIBRARY)
    if(DEFINED ${var})
      list(JOIN ${var} "\;" value)  # keep lists whole through the command line
      list(APPEND flags "-D${var}=${value}")
    endif()
  endforeach()
  # A separate cmake process, not try_compile: a sub-project that fails to configure would be a
  # configure error of cvk's own with try_compile.
  execute_process(
    COMMAND "${CMAKE_COMMAND}" -S "${PROJECT_SOURCE_DIR}/benchmarks/peers" -B "${probe_dir}"
            -G "${CMAKE_GENERATOR}" ${flags}
    RESULT_VARIABLE configure_status OUTPUT_VARIABLE configure_output ERROR_VARIABLE configure_output)
  set(probe_output "${configure_output}")
  set(probe_ok OFF)
  if(configure_status EQUAL 0)
    execute_process(COMMAND "${CMAKE_COMMAND}" --build "${probe_dir}"
                    RESULT_VARIABLE build_status OUTPUT_VARIABLE build_output
                    ERROR_VARIABLE build_output)
    string(APPEND probe_output "${build_output}")
    if(build_status EQUAL 0)
      set(probe_ok ON)
    endif()
  endif()
  if(probe_ok)
    set(CVK_PEER_${upper}_OK ON PARENT_SCOPE)
    return()
  endif()
  set(CVK_PEER_${upper}_OK OFF PARENT_SCOPE)
  # What went wrong, in the words of CMake, the compiler or the linker (messages wrap over lines:
  # match on the text with its whitespace collapsed), most specific first.
  string(REGEX REPLACE "[ \t\r\n]+" " " text "${probe_output}")
  set(reason "its probe did not build")
  foreach(pattern "Could NOT find [^)]*\\)" "Could not find a package configuration file provided by \"[^\"]*\""
                  "fatal error: [^ ]+: No such file or directory" "undefined reference to [^ ]+"
                  "No rule to make target '[^']*'"
                  "cannot find -l[^ ]+" "CMake Error at [^:]*:[0-9]+ \\([^)]*\\): [^.]*")
    string(REGEX MATCH "${pattern}" match "${text}")
    if(match)
      set(reason "${match}")
      break()
    endif()
  endforeach()
  string(STRIP "${reason}" reason)
  file(WRITE "${probe_dir}.log" "${probe_output}")
  message(STATUS "cvk benchmarks: ${label} skipped: ${reason} (install: ${packages}; full log: "
                 "${probe_dir}.log)")
endfunction()
