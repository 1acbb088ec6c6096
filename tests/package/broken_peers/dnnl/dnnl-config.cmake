# A oneDNN CMake config as broken as Debian's without the OpenCL headers: it requires a package
# that is not installed. cvk's configure must carry on without oneDNN (broken_peer_test.cmake).
find_package(cvk_test_missing_opencl REQUIRED)
