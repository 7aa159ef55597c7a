#!/usr/bin/env bash
# Instructions per message of ackring's hot paths, counted by valgrind's
# callgrind in ackring-microbench rows: the same number for the same binary
# whatever else the machine is doing, where the timed rows of these 2-vCPU
# VMs move by tens of percent within an hour. A change that removes work
# shows here even when the noise hides it in ns (docs/performance.md,
# "Counting instructions"). Instructions are not time: a cache miss, a
# locked instruction or the TSC read costs far more than its one
# instruction, so read these beside the timed rows, never instead of them.
#
#   bench/count_instructions.sh              # every path below, ~1 minute
#   bench/count_instructions.sh keyed        # the paths whose name contains "keyed"
#
# Each path is a microbench row, the library functions it times (their
# inclusive counts, toggled on with --toggle-collect; each one's count per
# call, summed) and the messages per call. TscClock::reanchor is left out:
# it runs once per millisecond of TSC time, so about fifty times as often
# under valgrind as natively.
# Environment: BUILD_DIR (default <repo>/build-bench, built here in Release
# with the benchmarks if it has no ackring-microbench), JOBS (default 2),
# MICROBENCH (the binary to count in, instead of BUILD_DIR's). Exits 1 if a
# row saw no call of its functions (a renamed function, a row that failed):
# ctest's count_instructions_smoke checks that.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD_DIR:-$root/build-bench}"
bench="${MICROBENCH:-$build/bench/ackring-microbench}"
filter="${1:-}"

for tool in valgrind callgrind_annotate; do
  command -v "$tool" >/dev/null || { echo "count_instructions: $tool not found (apt-get install valgrind)" >&2; exit 1; }
done
if [ -n "${MICROBENCH:-}" ] && [ ! -x "$bench" ]; then
  echo "count_instructions: MICROBENCH=$bench is not an executable" >&2
  exit 1
elif [ ! -x "$bench" ]; then
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DACKRING_BUILD_BENCH=ON >/dev/null
  cmake --build "$build" --target ackring-microbench -j "${JOBS:-2}" >/dev/null
fi

span='std::span<std::byte const, 18446744073709551615ul>'
spans="std::span<$span const, 18446744073709551615ul>"
nanos='std::chrono::duration<long, std::ratio<1l, 1000000000l> >'
publish="ackring::Producer::try_publish($span)"
keyed="ackring::Producer::publish_keyed($span, std::basic_string_view<char, std::char_traits<char> >, $nanos)"
receive='ackring::Consumer::try_receive()'
ack='ackring::Consumer::ack(ackring::Receipt const&)'
publish_batch="ackring::Producer::try_publish_batch($spans)"
receive_batch='ackring::Consumer::try_receive_batch(std::span<ackring::Delivery, 18446744073709551615ul>)'
ack_batch='ackring::Consumer::ack_batch(std::span<ackring::Delivery const, 18446744073709551615ul>)'
is_processed='ackring::Consumer::is_processed(ackring::Delivery const&)'
mark_processed='ackring::Consumer::mark_processed(ackring::Delivery const&)'
process_once_batch='ackring::Consumer::process_once_batch(std::span<ackring::Delivery const, 18446744073709551615ul>, void*, bool (*)(void*, ackring::Delivery const&))'

# name | microbench row (an anchored regex) | messages per call of the first function | functions
paths=(
  "try_publish, 64 B|BM_TryPublish/64$|1|$publish"
  "try_publish into the keyed row's queue (2^13 entries)|BM_PublishDedup/keyed:0/bloom:1/load:0/log2_entries:13|1|$publish"
  "keyed publish, fresh key, 2^13 entries at 10 %|BM_PublishDedup/keyed:1/bloom:1/load:10/log2_entries:13|1|$keyed"
  "keyed publish, fresh key, 2^13 entries at 50 %|BM_PublishDedup/keyed:1/bloom:1/load:50/log2_entries:13|1|$keyed"
  "try_receive + ack|BM_ReceiveAck$|1|$ack|$receive"
  "publish_batch(32), per message|BM_TryPublishBatch/32$|32|$publish_batch"
  "receive_batch(32) + ack_batch, per message|BM_ReceiveBatchAck/32$|32|$ack_batch|$receive_batch"
  "process-once: is_processed + mark_processed, 2^20 entries|BM_ProcessOnce/batched:0|1|$mark_processed|$is_processed"
  "process-once: process_once_batch(32) with its acks, per message|BM_ProcessOnce/batched:1|32|$process_once_batch"
)

missing=0
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
# Both read the current row's callgrind reports, $out/inclusive and $out/tree.
inclusive_of() {  # a function's inclusive instructions, 0 if it never ran
  grep -F -m1 ":$1 [" "$out/inclusive" | awk '{ gsub(",", "", $1); print $1 + 0 }' | grep . || echo 0
}
calls_of() {  # a function's calls: the sum of its callers' "(Nx)" in its block of the tree
  awk -v fn="$1" '
    /^$/ { sum = 0; next }
    / < / && match($0, /\(([0-9,]+)x\)/) { n = substr($0, RSTART + 1, RLENGTH - 3); gsub(",", "", n); sum += n; next }
    / \*  / && index($0, ":" fn " [") { print sum; found = 1; exit }
    END { if (!found) print 0 }' "$out/tree"
}
printf '%-64s %14s %10s\n' "path" "instructions" "calls"
for path in "${paths[@]}"; do
  IFS='|' read -r -a f <<<"$path"
  name="${f[0]}" row="${f[1]}" per_call="${f[2]}" functions=("${f[@]:3}")
  case "$name" in *"$filter"*) ;; *) continue ;; esac
  toggles=()
  for fn in "${functions[@]}"; do toggles+=("--toggle-collect=$fn"); done
  valgrind --tool=callgrind --callgrind-out-file="$out/cg" "${toggles[@]}" "$bench" \
    --benchmark_filter="^$row" --benchmark_min_time=0.05 >/dev/null 2>"$out/log" ||
    { echo "count_instructions: valgrind failed on $row:" >&2; tail -5 "$out/log" >&2; exit 1; }
  callgrind_annotate --threshold=100 --inclusive=yes "$out/cg" >"$out/inclusive" 2>/dev/null
  callgrind_annotate --threshold=100 --tree=caller "$out/cg" >"$out/tree" 2>/dev/null
  # Each function's instructions per call, summed: a row's set-up may call
  # one of them more often than the timed loop does (the process-once rig's
  # prefill records keys with mark_processed alone). Reanchor's, spread over
  # the first function's calls, is taken off.
  per_message=0 calls_first=0 seen=1
  for fn in "${functions[@]}"; do
    calls="$(calls_of "$fn")"
    [ "$calls" -gt 0 ] || { seen=0; break; }
    [ "$calls_first" -gt 0 ] || calls_first="$calls"
    per_message=$((per_message + $(inclusive_of "$fn") * 1000 / calls))
  done
  if [ "$seen" -eq 0 ]; then
    printf '%-64s %14s\n' "$name" "no calls seen"
    missing=1
    continue
  fi
  reanchor="$(inclusive_of 'ackring::detail::TscClock::reanchor()')"
  per_message=$((per_message - reanchor * 1000 / calls_first))
  printf '%-64s %14d %10d\n' "$name" $((per_message / (1000 * per_call))) "$calls_first"
done
exit "$missing"
