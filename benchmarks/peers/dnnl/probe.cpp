// cvk — computer-vision kernels, header-only C++20.
// Links oneDNN's C API (the version query cvk's benchmark driver records): a partial oneDNN
// installation fails to build this probe.
// SPDX-License-Identifier: MIT
#if __has_include(<oneapi/dnnl/dnnl.h>)
#  include <oneapi/dnnl/dnnl.h>
#else
#  include <dnnl.h>
#endif

int main() {
  const dnnl_version_t* version = dnnl_version();
  return version != nullptr && version->major >= 2 ? 0 : 1;
}
