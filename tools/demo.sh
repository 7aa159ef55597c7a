#!/usr/bin/env bash
# Installs what is missing, builds, and runs the end-to-end demo: a producer
# and two consumer groups in separate processes, one member killed with
# SIGKILL while it holds leases; its messages are redelivered and every
# message ends up acked exactly once per group.
set -euo pipefail
source "$(dirname "$0")/setup.sh"
cd "$ACKRING_ROOT"
ackring_build build
./build/tools/demo/ackring-demo "$@"
