#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite through ctest:
#   1. Release build: unit, multi-process (mp, including the end-to-end demo three
#      times as is and three times under `taskset -c 0`), hostile-input, stress and
#      fuzz-corpus tests
#   2. ASan+UBSan build: unit, hostile and fuzz-corpus tests
#   3. TSan build: the threads-on-one-mapping stress tests
# ACKRING_QUICK=1 runs only step 1. Long soaks (label "soak") are not run here:
#   ctest --test-dir build -L soak
set -euo pipefail
source "$(dirname "$0")/setup.sh"
cd "$ACKRING_ROOT"
jobs="$(nproc)"

echo "== release build"
ackring_build build
ctest --test-dir build --output-on-failure -j "$jobs" -LE soak

if [ "${ACKRING_QUICK:-0}" != "1" ]; then
  echo "== ASan+UBSan build"
  ackring_build build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DACKRING_SANITIZE=address -DACKRING_BUILD_BENCH=OFF
  ASAN_OPTIONS=detect_leaks=1 ctest --test-dir build-asan --output-on-failure -j "$jobs" -L "unit|hostile|fuzz"
  echo "== TSan build"
  ackring_build build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DACKRING_SANITIZE=thread -DACKRING_BUILD_BENCH=OFF
  TSAN_OPTIONS=halt_on_error=1 ctest --test-dir build-tsan --output-on-failure -j "$jobs" -L stress
fi
