# A half-installed OpenCV: the config is found, the libraries it names are not there. cvk's
# configure must carry on without OpenCV (broken_peer_test.cmake).
set(OpenCV_FOUND TRUE)
set(OpenCV_VERSION 4.6.0)
set(OpenCV_INCLUDE_DIRS "${CMAKE_CURRENT_LIST_DIR}/include")
set(OpenCV_LIBS cvk_test_missing_opencv_core)
