#!/usr/bin/env bash
# Developer helper: compile ONE test file (with the project's warnings, -Werror) and run it.
# Build products go to build/one/<mode>/<name>; no CMake build directory is touched, so several
# people can iterate on different test files at once.
#   scripts/one_test.sh tests/nms/test_soft_nms.cpp [catch2 args...]
#   MODE=asan scripts/one_test.sh ...   (address + undefined sanitizers)
#   MODE=clang scripts/one_test.sh ...  (clang++-14)
#   MODE=release scripts/one_test.sh ... (-O3 -march=native)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
source_file="$1"; shift
mode="${MODE:-dev}"
name="$(basename "${source_file%.cpp}")"
out="$root/build/one/$mode"; mkdir -p "$out"
cxx=g++; flags=(-O1 -g)
case "$mode" in
  dev) ;;
  asan) flags=(-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all) ;;
  clang) cxx=clang++-14 ;;
  release) flags=(-O3 -march=native -DNDEBUG) ;;
  *) echo "unknown MODE=$mode" >&2; exit 2 ;;
esac
"$cxx" -std=c++20 "${flags[@]}" -fopenmp -Wall -Wextra -Wpedantic -Wconversion -Wsign-conversion \
  -Wshadow -Wold-style-cast -Wundef -Werror -I"$root/include" -I"$root/tests" \
  -DCVK_TEST_DATA_DIR="\"$root/tests/data\"" \
  "$root/$source_file" -o "$out/$name" -lCatch2WithMain
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 "$out/$name" "$@"
