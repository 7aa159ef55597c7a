#!/usr/bin/env bash
# Builds the benchmarks in Release and runs ackring-bench with the default
# scenarios, writing bench/runs/bench-<date>-<commit>.json, the plots
# bench-<date>-<commit>-throughput.png and -latency.png with the gnuplot
# scripts that drew them (when gnuplot is installed; tools/setup.sh installs
# gnuplot-nox), and printing the tables. bench/runs/ is ignored by git.
#
# Publishing a run is a decision, not a side effect: ACKRING_BENCH_PUBLISH=1
# also copies the JSON and the PNG plots (not the .gp scripts) into
# bench/results/, which is committed; it refuses a tree with uncommitted
# changes (a "-dirty" run), since nobody could rebuild what was measured.
#
#   bench/run.sh                   # default: pinned to cpus 0,1, median of 3, ~3 minutes
#   bench/run.sh --full            # the whole matrix (sizes x topologies x modes)
#   bench/run.sh --rate 200000     # one-way latency at another publish rate
#   ACKRING_BENCH_MICRO=1 bench/run.sh   # also ackring-microbench (JSON beside)
#
# Any argument is passed to ackring-bench (see `ackring-bench --help`).
# Environment: BUILD_DIR (default <repo>/build-bench), JOBS (default 2),
# ACKRING_BENCH_OUT (default <repo>/bench/runs), ACKRING_BENCH_PUBLISH=1,
# ACKRING_BENCH_COMMIT (names the results and skips every git call: for a
# tree someone else is committing to; publishing then trusts that name).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD_DIR:-$root/build-bench}"
jobs="${JOBS:-2}"

generator=()
if [ ! -f "$build/CMakeCache.txt" ] && command -v ninja >/dev/null; then generator=(-G Ninja); fi
cmake -S "$root" -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
  -DACKRING_BUILD_TESTS=OFF -DACKRING_BUILD_TOOLS=OFF -DACKRING_BUILD_BENCH=ON >/dev/null
targets=(ackring-bench)
[ "${ACKRING_BENCH_MICRO:-0}" = "1" ] && targets+=(ackring-microbench)
cmake --build "$build" -j "$jobs" --target "${targets[@]}"

bench_args=()
if [ -n "${ACKRING_BENCH_COMMIT:-}" ]; then
  commit="$ACKRING_BENCH_COMMIT"
  bench_args+=(--no-git)
else
  commit="$(git -C "$root" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
  # --no-optional-locks: never take the index lock from someone committing.
  if [ "$commit" != unknown ] && [ -n "$(git --no-optional-locks -C "$root" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
    commit="$commit-dirty"
  fi
fi
publish="${ACKRING_BENCH_PUBLISH:-0}"
if [ "$publish" = "1" ] && [[ "$commit" == *-dirty || "$commit" == unknown ]]; then
  echo "run.sh: ACKRING_BENCH_PUBLISH=1 needs a clean, committed tree (this one is '$commit'); not running" >&2
  exit 1
fi
stamp="$(date +%Y%m%d-%H%M%S)"
results="${ACKRING_BENCH_OUT:-$root/bench/runs}"
mkdir -p "$results"
out="$results/bench-$stamp-$commit.json"
bench_args+=(--json "$out" --plot "${out%.json}")

# Pin producer and consumer to two different cpus unless told otherwise.
args=("$@")
if [[ " ${args[*]-} " != *" --cpus "* ]] && [ "$(nproc)" -ge 2 ]; then args=(--cpus 0,1 "${args[@]}"); fi

ncpu="$(nproc)"
load1="$(cut -d' ' -f1 /proc/loadavg)"
echo "run.sh: load average $(cut -d' ' -f1-3 /proc/loadavg) on $ncpu cpus"
if awk -v l="$load1" -v n="$ncpu" 'BEGIN { exit !(l > 0.5 * n) }'; then
  echo "run.sh: warning: the machine is busy; figures will be noisy (rerun when 'uptime' shows a low load)" >&2
fi

echo "run.sh: $(uptime)"
"$build/bench/ackring-bench" "${bench_args[@]}" "${args[@]}"
echo "run.sh: $(uptime)"

if [ "${ACKRING_BENCH_MICRO:-0}" = "1" ]; then
  pin=()
  command -v taskset >/dev/null && [ "$ncpu" -ge 2 ] && pin=(taskset -c 1)
  "${pin[@]}" "$build/bench/ackring-microbench" \
    --benchmark_out="$results/micro-$stamp-$commit.json" --benchmark_out_format=json
fi

if [ "$publish" = "1" ]; then
  published="$root/bench/results"
  mkdir -p "$published"
  for f in "$out" "${out%.json}"-*.png "$results/micro-$stamp-$commit.json"; do
    if [ -f "$f" ]; then cp "$f" "$published/" && echo "run.sh: published bench/results/$(basename "$f")"; fi
  done
  echo "run.sh: cite the published run in README.md and commit it (git add bench/results/...)"
fi
