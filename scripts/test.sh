#!/usr/bin/env bash
# cvk's test command: installs what the tests need (Debian, as root), then builds and runs the
# whole suite twice, with -Werror — g++ -O1 -fexpensive-optimizations -march=native (FMA
# contraction as at -O2, the native vector width: what users' optimised builds compute), address + undefined sanitizers and
# OMP_NUM_THREADS=3 (more threads than cores) in preset asan, and clang 14 with address +
# undefined sanitizers, pointer-overflow included (preset clang). Exits non-zero on the first
# failure. Preset release (g++ -O3 -march=native, no sanitizers) is what the benchmarks and
# examples use; name it to test it too.
#   scripts/test.sh            asan and clang
#   scripts/test.sh release    only the named presets (release, asan, clang; dev: g++ Debug)
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(cmake make g++ clang-14 libomp-14-dev libclang-rt-14-dev catch2 libbenchmark-dev libeigen3-dev
          libxtensor-dev xtl-dev libxsimd-dev libdlpack-dev libstb-dev libboost-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    echo "== installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
  else
    echo "cvk: these Debian packages are needed to run the tests: ${missing[*]}" >&2
    echo "cvk: run this script as root to install them, or: sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
fi

presets=("$@")
((${#presets[@]})) || presets=(asan clang)
jobs=$(nproc)
for preset in "${presets[@]}"; do
  echo "== preset ${preset}: configure, build, test"
  cmake --preset "${preset}" -DCVK_BUILD_BENCHMARKS=OFF
  cmake --build --preset "${preset}" -j "${jobs}"
  ctest --preset "${preset}" -j "${jobs}"
done
echo "== all test presets passed: ${presets[*]}"
