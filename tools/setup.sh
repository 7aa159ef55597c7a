#!/usr/bin/env bash
# Shared set-up for tools/demo.sh and tools/test.sh: installs the Debian
# packages that are missing (quietly, only those), then configures and builds.
# Usage: source tools/setup.sh; ackring_build <build-dir> [cmake args...]
set -euo pipefail

ACKRING_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# spin: the Promela model of the protocol (tests/model).
# python3-dev, pybind11-dev, python3-pytest: the Python package (python/) and its tests.
# curl, prometheus (for its promtool): the metrics HTTP test. On a systemd machine the
# package also starts a Prometheus server (port 9090): 'systemctl disable --now prometheus'.
# nats-server, libnats-dev: the NATS JetStream bridge (`ackring bridge`, tests/bridge, bench/bridge_bench.cpp).
# valgrind: bench/count_instructions.sh (instructions per message, and its ctest).
ACKRING_PACKAGES=(g++ cmake ninja-build pkg-config libboost-dev liburing-dev libxxhash-dev
                  libgtest-dev libbenchmark-dev libcli11-dev nlohmann-json3-dev clang libclang-rt-14-dev
                  libsqlite3-dev sqlite3 gnuplot-nox libcpp-httplib-dev curl prometheus spin
                  help2man dpkg-dev file make
                  python3-dev pybind11-dev python3-pytest
                  nats-server libnats-dev valgrind)

ackring_install_packages() {
  local missing=()
  for p in "${ACKRING_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "setup: installing ${missing[*]}"
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "setup: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
    sudo="sudo"
  fi
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

ackring_build() {
  local dir="$1"; shift
  cmake -S "$ACKRING_ROOT" -B "$dir" -G Ninja "$@" >/dev/null
  cmake --build "$dir" -j "$(nproc)"
}

ackring_install_packages
