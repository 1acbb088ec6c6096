// cvk — computer-vision kernels, header-only C++20.
// Benchmark driver: records how this binary was built and on which machine in the JSON context
// (benchmarks/report.py prints it), then runs the registered benchmarks.
// SPDX-License-Identifier: MIT
#include <benchmark/benchmark.h>

#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "cvk/core/config.hpp"
#include "cvk/core/parallel.hpp"

#if defined(__GLIBC__)
#  include <malloc.h>
#endif

#if defined(CVK_BENCH_HAS_OPENCV)
#  include <opencv2/core/version.hpp>
#endif
#if defined(CVK_BENCH_HAS_DNNL)
#  if __has_include(<oneapi/dnnl/dnnl.h>)
#    include <oneapi/dnnl/dnnl.h>
#  else
#    include <dnnl.h>
#  endif
#endif

#ifndef CVK_BENCH_VARIANT
#  define CVK_BENCH_VARIANT "unknown"
#endif
#ifndef CVK_BENCH_FLAGS
#  define CVK_BENCH_FLAGS "unknown"
#endif
#ifndef CVK_BENCH_COMPILER
#  define CVK_BENCH_COMPILER "unknown"
#endif
#ifndef CVK_BENCH_BUILD_TYPE
#  define CVK_BENCH_BUILD_TYPE "unknown"
#endif

namespace {

/// The first value of `key` in /proc/cpuinfo ("" when absent, e.g. not Linux).
std::string cpuinfo_field(const std::string& key) {
  std::ifstream cpuinfo("/proc/cpuinfo");
  for (std::string line; std::getline(cpuinfo, line);) {
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string field = line.substr(0, colon);
    field.erase(field.find_last_not_of(" \t") + 1);
    if (field == key) return colon + 2 <= line.size() ? line.substr(colon + 2) : std::string{};
  }
  return {};
}

std::string cpu_model() {
  std::string model = cpuinfo_field("model name");
  if (model.empty()) return "unknown";
  const std::string family = cpuinfo_field("cpu family");
  const std::string number = cpuinfo_field("model");
  if (!family.empty() && !number.empty()) model += " (family " + family + ", model " + number + ")";
  return model;
}

/// The vector ISA extensions that matter for these kernels, as /proc/cpuinfo lists them.
std::string cpu_isa() {
  std::istringstream flags(cpuinfo_field("flags"));
  std::set<std::string> present;
  for (std::string flag; flags >> flag;) present.insert(flag);
  std::string isa;
  for (const char* flag : {"sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl",
                           "avx512_vnni", "avx512_bf16", "avx512_fp16"}) {
    if (present.count(flag) == 0) continue;
    if (!isa.empty()) isa += ' ';
    isa += flag;
  }
  return isa.empty() ? "unknown" : isa;
}

std::string peers() {
  std::string list;
#if defined(CVK_BENCH_HAS_OPENCV)
  list += "OpenCV " CV_VERSION;
#endif
#if defined(CVK_BENCH_HAS_DNNL)
  const dnnl_version_t* version = dnnl_version();
  if (!list.empty()) list += ", ";
  list += "oneDNN " + std::to_string(version->major) + "." + std::to_string(version->minor) + "." +
          std::to_string(version->patch);
#endif
#if defined(CVK_BENCH_HAS_XNNPACK)
  if (!list.empty()) list += ", ";
  list += "XNNPACK";  // no version query in its API; Debian ships a dated git snapshot
#endif
  return list.empty() ? "none" : list;
}

}  // namespace

int main(int argc, char** argv) {
#if defined(__GLIBC__)
  // Freed memory stays in the process, as in a long-running caller's warm heap. By default
  // glibc returns the top of the heap to the OS once more than twice the last freed mmap-sized
  // block is free, so whether a kernel's per-call buffers (an 800 KB index vector at 100k
  // boxes) come back as fresh pages depends on the process's allocation history, and a page
  // fault costs microseconds on a VM: nms_adversarial scene 1 (100k zero boxes) measured 8.5–14
  // ms here against 1.6–2.1 ms with the heap kept, the fault handler more than half the time.
  mallopt(M_MMAP_THRESHOLD, 32 << 20);  // glibc's maximum (64-bit)
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
#endif
  // Short repetitions by default, so the whole suite takes a few minutes on 2 cores; a
  // --benchmark_min_time given on the command line comes later and wins.
  std::vector<char*> args(argv, argv + argc);
  std::string default_min_time = "--benchmark_min_time=0.05";
  args.insert(args.begin() + 1, default_min_time.data());
  int arg_count = static_cast<int>(args.size());
  args.push_back(nullptr);
  benchmark::Initialize(&arg_count, args.data());
  if (benchmark::ReportUnrecognizedArguments(arg_count, args.data())) return 1;
  benchmark::AddCustomContext("cvk_variant", CVK_BENCH_VARIANT);
  benchmark::AddCustomContext("cvk_version", std::to_string(CVK_VERSION_MAJOR) + "." +
                                                 std::to_string(CVK_VERSION_MINOR) + "." +
                                                 std::to_string(CVK_VERSION_PATCH));
  benchmark::AddCustomContext("cvk_compiler", CVK_BENCH_COMPILER);
  benchmark::AddCustomContext("cvk_flags", CVK_BENCH_FLAGS);
  benchmark::AddCustomContext("cvk_build_type", CVK_BENCH_BUILD_TYPE);
  benchmark::AddCustomContext(
      "cvk_openmp", CVK_HAS_OPENMP ? "on, max " + std::to_string(cvk::max_threads()) + " threads"
                                   : std::string("off"));
  benchmark::AddCustomContext("cvk_peers", peers());
  benchmark::AddCustomContext("cpu_model", cpu_model());
  benchmark::AddCustomContext("cpu_isa", cpu_isa());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
