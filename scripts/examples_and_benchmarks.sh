#!/usr/bin/env bash
# cvk — computer-vision kernels, header-only C++20.
# Builds and runs every example, runs the benchmarks (native and portable builds, plus the
# torchvision peer when torch is importable) and regenerates docs/benchmarks.md (+ .png).
# SPDX-License-Identifier: MIT
set -euo pipefail

usage() {
  cat <<'EOF'
usage: scripts/examples_and_benchmarks.sh [--no-install] [--no-benchmarks] [--repetitions N]
                                          [--filter REGEX]

Configures the `release` preset (build/release), builds the examples and the benchmarks, runs
every example (pictures go to build/release/examples/out), runs cvk_bench and
cvk_bench_portable (and benchmarks/torchvision_bench.py when torch is importable) with JSON
output under build/release/benchmarks/results, then writes docs/benchmarks.md (and
docs/benchmarks.png when matplotlib is importable) with benchmarks/report.py.

Run as root on Debian/Ubuntu, it first apt-get installs the packages that are missing.

  --no-install      never call apt-get, only report what is missing
  --no-benchmarks   build and run the examples only
  --repetitions N   repetitions per benchmark; the report uses their median (default 5)
  --filter REGEX    run only the benchmarks whose name matches (Google Benchmark syntax)
Environment: PYTHON, a Python 3 interpreter to try first for the torchvision and report steps.
EOF
}

install=1
benchmarks=1
repetitions=5
filter=""
while (($#)); do
  case "$1" in
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
if ! [[ "$repetitions" =~ ^[1-9][0-9]*$ ]]; then
  echo "examples_and_benchmarks.sh: --repetitions must be a positive integer" >&2
  exit 2
fi

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
build="$root/build/release"
started=$SECONDS

step() { printf '\n== %s (%ds)\n' "$*" "$((SECONDS - started))"; }
note() { printf 'examples_and_benchmarks.sh: %s\n' "$*" >&2; }

# ---------------------------------------------------------------------------------------------
step "dependencies"
# Needed to configure the release preset (the tests need catch2) and to build the benchmarks.
required=(cmake g++ libbenchmark-dev catch2 libstb-dev)
# Adaptors and benchmark peers: their examples and columns are skipped when absent.
optional=(libeigen3-dev libxtensor-dev xtl-dev libxsimd-dev libdlpack-dev libopencv-dev
          libdnnl-dev)
# The torchvision column and the plot.
python_optional=(python3-torchvision python3-matplotlib)

is_installed() {
  case "$1" in
    cmake | g++) command -v "$1" >/dev/null 2>&1 && return 0 ;;
  esac
  [[ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" == installed ]]
}

if command -v dpkg-query >/dev/null 2>&1; then
  missing_required=() missing_optional=() missing_python=()
  for p in "${required[@]}"; do is_installed "$p" || missing_required+=("$p"); done
  for p in "${optional[@]}"; do is_installed "$p" || missing_optional+=("$p"); done
  for p in "${python_optional[@]}"; do is_installed "$p" || missing_python+=("$p"); done
  missing=("${missing_required[@]}" "${missing_optional[@]}")
  if ((${#missing[@]} + ${#missing_python[@]} == 0)); then
    echo "all packages present"
  elif ((install)) && ((EUID == 0)) && command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    if ((${#missing[@]})); then
      apt-get install -y --no-install-recommends "${missing[@]}"
    fi
    if ((${#missing_python[@]})); then
      apt-get install -y --no-install-recommends "${missing_python[@]}" ||
        note "could not install ${missing_python[*]}; continuing without torchvision/plot"
    fi
  else
    if ((${#missing_required[@]})); then
      note "missing required packages: ${missing_required[*]}"
      note "install them (as root) with:"
      note "  apt-get install --no-install-recommends ${missing_required[*]} ${missing_optional[*]} ${missing_python[*]}"
      exit 1
    fi
    note "optional packages not installed (their examples, peers or plot are skipped):"
    note "  ${missing_optional[*]} ${missing_python[*]}"
    note "install them (as root) with: apt-get install --no-install-recommends ${missing_optional[*]} ${missing_python[*]}"
  fi
else
  note "not a Debian-based system: install CMake >= 3.25, a C++20 compiler, Google Benchmark"
  note ">= 1.7, Catch2 2.13 and stb (optionally Eigen, xtensor, DLPack, OpenCV, oneDNN, torchvision,"
  note "matplotlib); CMake reports what it cannot find"
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
cmake --preset release >"$root/build/.configure-release.log" 2>&1 || {
  cat "$root/build/.configure-release.log" >&2
  exit 1
}
grep -E "cvk (examples|benchmarks):" "$root/build/.configure-release.log" || true

targets=(cvk_examples)
((benchmarks)) && targets+=(cvk_benchmarks)
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
  step "done"
  exit 0
fi

# ---------------------------------------------------------------------------------------------
results="$build/benchmarks/results"
mkdir -p "$results"
rm -f "$results"/*.json
gb_args=(--benchmark_repetitions="$repetitions" --benchmark_report_aggregates_only=true
         --benchmark_out_format=json)

# Benchmarks share the CPUs with whatever else runs; say so when that is a lot.
read -r load _ </proc/loadavg 2>/dev/null || load=0
cores="$(nproc 2>/dev/null || echo 1)"
if awk -v load="$load" -v cores="$cores" 'BEGIN { exit !(load > cores / 2) }'; then
  note "load average $load on $cores CPUs: other work is running, the timings will be noisy"
fi

step "cvk_bench (native)"
"$build/benchmarks/cvk_bench" "${gb_args[@]}" --benchmark_out="$results/cvk_bench.json" \
  ${filter:+--benchmark_filter="$filter"}

# The portable build only matters for cvk's own kernels.
step "cvk_bench_portable"
"$build/benchmarks/cvk_bench_portable" "${gb_args[@]}" \
  --benchmark_out="$results/cvk_bench_portable.json" --benchmark_filter="${filter:-^[^/]+/cvk/}"

step "torchvision peer"
if torch_python="$(python_with torchvision)"; then
  "$torch_python" benchmarks/torchvision_bench.py --out "$results/torchvision.json" \
    --repetitions "$repetitions" ${filter:+--filter "$filter"}
else
  note "torch/torchvision not importable (Debian: python3-torchvision); torchvision column skipped"
fi

step "report"
report_python="$(python_with matplotlib || python_with json)" || {
  note "no Python 3 interpreter found; cannot write docs/benchmarks.md"
  exit 1
}
"$report_python" benchmarks/report.py "$results"/*.json --out docs/benchmarks.md \
  --png docs/benchmarks.png

step "done"
