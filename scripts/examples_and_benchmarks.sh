#!/usr/bin/env bash
# cvk — computer-vision kernels, header-only C++20.
# The README's first command: builds and runs every example, then measures cvk against the peers
# that are installed. Three depths: the default quick run (a representative benchmark set, the
# C++ peers, a summary table), --full (every benchmark, native and portable builds, torchvision;
# regenerates docs/benchmarks.md and its plot) and --smoke (every benchmark of the native binary
# for a token time, the report written to a scratch file: what CI runs).
# SPDX-License-Identifier: MIT
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: scripts/examples_and_benchmarks.sh [--full | --smoke] [--no-install] [--no-benchmarks]
                                          [--repetitions N] [--filter REGEX]

Configures the `release` preset (build/release), builds and runs every example (pictures go to
build/release/examples/out), then runs the benchmarks with every peer that is installed and
ends with a summary table: cvk ÷ each peer, per operator.

  (default)         quick: a representative benchmark set with the C++ peers (OpenCV, oneDNN,
                    XNNPACK),
                    3 repetitions; JSON in build/release/benchmarks/quick; docs/ untouched
  --full            every benchmark of cvk_bench and cvk_bench_portable, 5 repetitions, and
                    benchmarks/torchvision_bench.py; regenerates docs/benchmarks.md and
                    docs/benchmarks.png
  --smoke           every benchmark of cvk_bench (native) once, for a token time; the report
                    goes to build/release/benchmarks/smoke/benchmarks.md (what CI runs)

Run as root on Debian/Ubuntu, it first apt-get installs the packages that are missing (the
Python peers only with --full). A peer that is missing or broken is named and skipped.

  --no-install      never call apt-get, only report what is missing
  --no-benchmarks   build and run the examples only
  --repetitions N   repetitions per benchmark; the report uses their median
  --filter REGEX    run only the benchmarks whose name matches (Google Benchmark syntax)
Environment: PYTHON, a Python 3 interpreter to try first for the torchvision and report steps.
USAGE
}

mode=quick
install=1
benchmarks=1
repetitions=""
filter=""
while (($#)); do
  case "$1" in
    --full) mode=full ;;
    --smoke) mode=smoke ;;
    --quick) mode=quick ;;
    --no-install) install=0 ;;
    --no-benchmarks) benchmarks=0 ;;
    --repetitions) repetitions="${2:?--repetitions needs a number}"; shift ;;
    --repetitions=*) repetitions="${1#*=}" ;;
    --filter) filter="${2:?--filter needs a regular expression}"; shift ;;
    --filter=*) filter="${1#*=}" ;;
    -h | --help) usage; exit 0 ;;
    *) echo "examples_and_benchmarks.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
if [[ -z "$repetitions" ]]; then
  case "$mode" in full) repetitions=5 ;; quick) repetitions=3 ;; smoke) repetitions=1 ;; esac
fi
if ! [[ "$repetitions" =~ ^[1-9][0-9]*$ ]]; then
  echo "examples_and_benchmarks.sh: --repetitions must be a positive integer" >&2
  exit 2
fi

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
build="$root/build/release"
started=$SECONDS

# The steps of this run, so that progress reads "step k of n".
steps=(dependencies configure build examples)
if ((benchmarks)); then
  case "$mode" in
    quick) steps+=("cvk_bench" "summary") ;;
    smoke) steps+=("cvk_bench" "report" "summary") ;;
    full) steps+=("cvk_bench" "cvk_bench_portable" "torchvision" "report" "summary") ;;
  esac
fi
step_number=0
step() {
  step_number=$((step_number + 1))
  local elapsed=$((SECONDS - started))
  printf '\n== [%d/%d] %s (%d:%02d elapsed)\n' "$step_number" "${#steps[@]}" "$*" \
    "$((elapsed / 60))" "$((elapsed % 60))"
}
note() { printf 'examples_and_benchmarks.sh: %s\n' "$*" >&2; }

# ---------------------------------------------------------------------------------------------
step "dependencies"
# Needed to configure the release preset (the tests need catch2 and boost) and to build the
# benchmarks.
required=(cmake g++ libbenchmark-dev catch2 libstb-dev libboost-dev)
# Adaptors and C++ benchmark peers: their examples and columns are skipped when absent. Debian's
# dnnl-config.cmake needs the OpenCL headers, which libdnnl-dev only recommends; xnnpack.h
# includes pthreadpool.h, which libxnnpack-dev only recommends.
optional=(libeigen3-dev libxtensor-dev xtl-dev libxsimd-dev libdlpack-dev libopencv-dev
          libdnnl-dev ocl-icd-opencl-dev libxnnpack-dev libpthreadpool-dev)
# The torchvision column and the plot: only the full run uses them.
python_optional=()
[[ "$mode" == full ]] && python_optional=(python3-torchvision python3-matplotlib)

is_installed() {
  case "$1" in
    cmake | g++) command -v "$1" >/dev/null 2>&1 && return 0 ;;
  esac
  [[ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" == installed ]]
}

# apt-get install, all at once; when that fails, one package at a time, naming the ones that
# could not be installed (an optional package must not stop the run).
install_optional() {
  apt-get install -y -q --no-install-recommends "$@" && return 0
  local p
  for p in "$@"; do
    apt-get install -y -q --no-install-recommends "$p" ||
      note "could not install $p; what needs it is skipped"
  done
}

if command -v dpkg-query >/dev/null 2>&1; then
  missing_required=() missing_optional=() missing_python=()
  for p in "${required[@]}"; do is_installed "$p" || missing_required+=("$p"); done
  for p in "${optional[@]}"; do is_installed "$p" || missing_optional+=("$p"); done
  for p in "${python_optional[@]}"; do is_installed "$p" || missing_python+=("$p"); done
  missing=("${missing_required[@]}" "${missing_optional[@]}" "${missing_python[@]}")
  if ((${#missing[@]} == 0)); then
    echo "all packages present"
  elif ((install)) && ((EUID == 0)) && command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    echo "installing: ${missing[*]}"
    apt-get update -q
    if ((${#missing_required[@]})); then
      apt-get install -y -q --no-install-recommends "${missing_required[@]}"
    fi
    if ((${#missing_optional[@]} + ${#missing_python[@]})); then
      install_optional "${missing_optional[@]}" "${missing_python[@]}"
    fi
  else
    if ((${#missing_required[@]})); then
      note "missing required packages: ${missing_required[*]}"
      note "install them (as root) with:"
      note "  apt-get install --no-install-recommends ${missing[*]}"
      exit 1
    fi
    note "optional packages not installed (their examples, peers or plot are skipped):"
    note "  ${missing_optional[*]} ${missing_python[*]}"
    note "install them (as root) with: apt-get install --no-install-recommends ${missing_optional[*]} ${missing_python[*]}"
  fi
else
  note "not a Debian-based system: install CMake >= 3.25, a C++20 compiler, Google Benchmark"
  note ">= 1.7, Catch2 2.13, Boost and stb (optionally Eigen, xtensor, DLPack, OpenCV, oneDNN,"
  note "XNNPACK with pthreadpool, torchvision, matplotlib); CMake reports what it cannot find"
fi

# The first interpreter (PYTHON, python3, /usr/bin/python3) that can import module $1.
python_with() {
  local candidate
  for candidate in "${PYTHON:-}" python3 /usr/bin/python3; do
    [[ -n "$candidate" ]] || continue
    command -v "$candidate" >/dev/null 2>&1 || continue
    if "$candidate" -c "import $1" >/dev/null 2>&1; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

# ---------------------------------------------------------------------------------------------
step "configure (cmake --preset release)"
mkdir -p "$root/build"
# Explicitly on: scripts/test.sh configures the same build directory with the benchmarks off.
cmake --preset release -DCVK_BUILD_EXAMPLES=ON -DCVK_BUILD_BENCHMARKS=ON \
  >"$root/build/.configure-release.log" 2>&1 || {
  cat "$root/build/.configure-release.log" >&2
  exit 1
}
# One line per example set and per peer: found, or skipped and why.
grep -E "cvk (examples|benchmarks):" "$root/build/.configure-release.log" || true

targets=(cvk_examples)
if ((benchmarks)); then
  # quick and smoke: the native binary only (the portable one compiles the same sources for the
  # compiler's default target, which the clang test preset already builds every kernel for).
  if [[ "$mode" == full ]]; then targets+=(cvk_benchmarks); else targets+=(cvk_bench); fi
fi
step "build ${targets[*]}"
cmake --build --preset release --target "${targets[@]}" -j "$(nproc 2>/dev/null || echo 2)"

# ---------------------------------------------------------------------------------------------
step "examples"
out="$build/examples/out"
mkdir -p "$out"
ran=0
while IFS= read -r program; do
  [[ -n "$program" ]] || continue
  echo "-- $(basename "$program")"
  (cd "$out" && "$program" "$out")
  ran=$((ran + 1))
done <"$build/examples/examples.txt"
echo "ran $ran examples; pictures in ${out#"$root"/}:"
ls "$out"

if ((!benchmarks)); then
  elapsed=$((SECONDS - started))
  printf '\n== done in %d:%02d; pictures in %s\n' "$((elapsed / 60))" "$((elapsed % 60))" \
    "${out#"$root"/}"
  exit 0
fi

# ---------------------------------------------------------------------------------------------
results="$build/benchmarks/$mode"
mkdir -p "$results"
rm -f "$results"/*.json
gb_args=(--benchmark_repetitions="$repetitions" --benchmark_out_format=json)
if ((repetitions > 1)); then gb_args+=(--benchmark_report_aggregates_only=true); fi
case "$mode" in
  smoke) gb_args+=(--benchmark_min_time=0) ;;  # one iteration per case
  quick) gb_args+=(--benchmark_min_time=0.1) ;;
esac

# The quick run's representative set: each operator at one realistic size, float, the C++
# peers beside cvk; the plain loops and peers only where one call takes well under a second.
quick_filter='^(box_area/[a-z]+/float/N:100000|(box_iou|generalized_box_iou|distance_box_iou|complete_box_iou)/[a-z]+/float/N:1000|nms/[a-z]+/float/N:10000|(nms_shelf|nms_overlapping|nms_rotated_dense|box_voting_shelf)/[a-z]+/float/N:[0-9]+|batched_nms/cvk/float/N:10000|nms_rotated/[a-z]+/float/N:1000|rotated_box_iou/[a-z]+/float/scene:sparse/N:1000/M:1000|soft_nms/[a-z]+/float/method:[a-z]+/N:1000|(matrix_nms|fast_nms|cluster_nms)/[a-z]+/float/N:1000|var_voting_shelf/cvk/float/N:[0-9]+|em_merge/[a-z_]+/float/N:3000|conv2d/[a-z]+/float/shape:(dense3x3_c64_56|resnext_g32x(2|4|8|16)_[a-z0-9_]+|shufflenet_g3_1x1_c240to60_28|mobilenet1_dw_s[12]_c128_56)/batch:1|(max_pool2d|avg_pool2d|channel_shuffle)/[a-z]+/float/shape:[a-z0-9_]+/batch:1/layout:nhwc|fma_peak/machine/float)/threads:1/'
bench_filter="$filter"
[[ -z "$bench_filter" && "$mode" == quick ]] && bench_filter="$quick_filter"

# Benchmarks share the CPUs with whatever else runs; say so when that is a lot.
read -r load _ </proc/loadavg 2>/dev/null || load=0
cores="$(nproc 2>/dev/null || echo 1)"
if awk -v load="$load" -v cores="$cores" 'BEGIN { exit !(load > cores / 2) }'; then
  note "load average $load on $cores CPUs: other work is running, the timings will be noisy"
fi

step "cvk_bench (native build, with the C++ peers)"
"$build/benchmarks/cvk_bench" "${gb_args[@]}" --benchmark_out="$results/cvk_bench.json" \
  ${bench_filter:+--benchmark_filter="$bench_filter"}

if [[ "$mode" == full ]]; then
  # The portable build only matters for cvk's own kernels.
  step "cvk_bench_portable (x86-64 build, cvk only)"
  "$build/benchmarks/cvk_bench_portable" "${gb_args[@]}" \
    --benchmark_out="$results/cvk_bench_portable.json" \
    --benchmark_filter="${filter:-^[^/]+/cvk/}"
fi

if [[ "$mode" == full ]]; then
  step "torchvision peer"
  if torch_python="$(python_with torchvision)"; then
    "$torch_python" benchmarks/torchvision_bench.py --out "$results/torchvision.json" \
      --repetitions "$repetitions" ${filter:+--filter "$filter"}
  else
    note "torch/torchvision not importable (Debian: python3-torchvision); torchvision column skipped"
  fi
fi

report_python="$(python_with json)" || report_python=""
if [[ "$mode" != quick ]]; then
  step "report"
  if [[ "$mode" == full ]]; then
    report_out=docs/benchmarks.md
    png=docs/benchmarks.png
    report_python="$(python_with matplotlib || echo "$report_python")"
  else
    report_out="$results/benchmarks.md"
    png=none
  fi
  if [[ -z "$report_python" ]]; then
    note "no Python 3 interpreter found; cannot write $report_out"
    exit 1
  fi
  "$report_python" benchmarks/report.py "$results"/*.json --out "$report_out" --png "$png"
fi

step "summary"
if [[ -n "$report_python" ]]; then
  "$report_python" benchmarks/report.py "$results"/*.json --summary
else
  note "no Python 3 interpreter found; the JSON is in ${results#"$root"/}"
fi
elapsed=$((SECONDS - started))
printf '\n== done in %d:%02d; pictures in %s; benchmark JSON in %s\n' "$((elapsed / 60))" \
  "$((elapsed % 60))" "${out#"$root"/}" "${results#"$root"/}"
[[ "$mode" == full ]] && echo "docs/benchmarks.md and docs/benchmarks.png regenerated"
exit 0
