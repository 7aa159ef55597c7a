#!/usr/bin/env bash
# The demo's failure path: when something goes wrong (a member that never
# takes its leases, a member that crashes, the demo itself interrupted), the
# demo must say what went wrong, exit non-zero, and leave no process, no
# queue file and no scratch directory behind.
#
# Usage: failure_test.sh <path to ackring-demo>
set -uo pipefail
demo="$1"
shm="${ACKRING_SHM_DIR:-/dev/shm}"
tmp="${TMPDIR:-/tmp}"
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
failures=0

fail() { echo "FAIL: $*"; cat "$out"; failures=$((failures + 1)); }

# Every process the demo named must be gone, and so must its files.
check_clean() {
  local name="$1" pid="$2" queue="$3"
  [ -e "$queue" ] && fail "$name: $queue left behind"
  [ -e "$tmp/ackring-demo-$pid" ] && fail "$name: $tmp/ackring-demo-$pid left behind"
  for child in $(grep -oE 'pid [0-9]+' "$out" | cut -d' ' -f2 | sort -u); do
    # A pid may be reused by an unrelated process: only ours are ackring-demo.
    if [ "$(cat "/proc/$child/comm" 2>/dev/null)" = "ackring-demo" ]; then
      fail "$name: process $child left behind"
    fi
  done
}

run_fault() {
  local name="$1" expect="$2"; shift 2
  local queue="$shm/ackring.demo-failure-test-$$-$name"
  env "$@" "$demo" "$queue" >"$out" 2>&1 &
  local pid=$!
  wait "$pid"
  local rc=$?
  [ "$rc" -eq 1 ] || fail "$name: exit status $rc, expected 1"
  grep -q "^FAILED: .*$expect" "$out" || fail "$name: no 'FAILED: ...$expect' line"
  grep -q "^OK" "$out" && fail "$name: printed OK"
  check_clean "$name" "$pid" "$queue"
  echo "$name: $(grep '^FAILED' "$out")"
}

# B never takes its leases: the phase deadline passes.
run_fault stall "member B taking its leases" ACKRING_DEMO_FAULT=stall ACKRING_DEMO_DEADLINE_S=2
# A crashes in the middle: the parent notices at once.
run_fault crash "member A (pid [0-9]*) was killed" ACKRING_DEMO_FAULT=crash ACKRING_DEMO_DEADLINE_S=10

# Interrupted (SIGTERM, as a CI timeout or Ctrl-C would) while it waits.
queue="$shm/ackring.demo-failure-test-$$-term"
ACKRING_DEMO_FAULT=stall ACKRING_DEMO_DEADLINE_S=30 "$demo" "$queue" >"$out" 2>&1 &
pid=$!
for _ in $(seq 1 100); do grep -q "publishes" "$out" && break; sleep 0.05; done
sleep 0.2
kill -TERM "$pid"
wait "$pid"
rc=$?
[ "$rc" -eq 1 ] || fail "term: exit status $rc, expected 1"
grep -q "^FAILED: interrupted" "$out" || fail "term: no 'FAILED: interrupted' line"
check_clean term "$pid" "$queue"
echo "term: $(grep '^FAILED' "$out")"

[ "$failures" -eq 0 ] && echo "OK: the demo fails cleanly"
exit $((failures != 0))
