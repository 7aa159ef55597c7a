#!/usr/bin/env bash
# Installs ackring the ways its users do and links examples/consumer against
# each install; the consumer publishes and receives one message.
#   1. static library (the default build): cmake --install into a temporary
#      prefix, then the consumer with find_package(ackring CONFIG) and with
#      `pkg-config --static` (examples/consumer/Makefile);
#   2. shared library (-DBUILD_SHARED_LIBS=ON, SONAME libackring.so.0.1): the
#      same, with plain `pkg-config`;
#   3. Debian package: cpack -G DEB from the shared build, dpkg -i, check its
#      contents and dependencies, run /usr/bin/ackring --version, build the
#      consumer both ways against /usr, then dpkg --purge.
# Each install also holds the C API (ackring.h, libackring_c.so.1) and the
# Python package (when pybind11 was found): check_other_languages builds
# tests/capi/install_smoke.c against it and runs tests/capi/install_smoke.py
# with Debian's python3 (the package's dist-packages, no PYTHONPATH).
# Usage: install_test.sh <source dir> <build dir of this ctest run>
# The static variant is the build under test itself when it is a plain static
# build; the shared variant is a library+CLI build of its own, kept in
# <build dir>/install-test/shared so that reruns are incremental.
# Step 3 needs root; without it the test ends with 77 (skipped) after step 2.
set -euo pipefail

src="$(cd "$1" && pwd)"
main_build="$(cd "$2" && pwd)"
consumer_src="$src/examples/consumer"
work="$(mktemp -d /tmp/ackring-install-test.XXXXXX)"
marker=/var/lib/ackring-install-test.installed   # this test's dpkg -i, not yet purged
lock=/tmp/ackring-install-test.lock
multiarch="$(gcc -print-multiarch 2>/dev/null || true)"
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
jobs="$(nproc)"
we_installed=0

cleanup() {
  local rc=$?
  if [ "$we_installed" = 1 ]; then
    dpkg --purge ackring >/dev/null 2>&1 || echo "install_test: dpkg --purge ackring failed" >&2
    rm -f "$marker"
  fi
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT

step() { printf '\n== %s (%ss)\n' "$*" "$SECONDS"; }
fail() { echo "install_test: FAIL: $*" >&2; exit 1; }
cache_value() {  # cache_value <build dir> <variable>
  sed -n "s/^$2:[A-Z]*=//p" "$1/CMakeCache.txt" 2>/dev/null | head -n 1
}

# The directories a prefix's CMake package and .pc land in (multiarch or not).
pc_dir() {
  local d
  for d in "$1/lib/$multiarch/pkgconfig" "$1/lib64/pkgconfig" "$1/lib/pkgconfig"; do
    [ -f "$d/ackring.pc" ] && { echo "$d"; return; }
  done
  fail "no ackring.pc under $1"
}
lib_dir() { dirname "$(pc_dir "$1")"; }

# build_consumer <variant> <prefix or ""> ; builds with CMake and with the
# Makefile (pkg-config), runs both, checks how libackring was linked.
build_consumer() {
  local variant="$1" prefix="$2" out="$work/consumer-$1"
  local cmake_args=() pc_env=() run_env=() make_args=()
  if [ -n "$prefix" ]; then
    cmake_args+=(-DCMAKE_PREFIX_PATH="$prefix")
    pc_env+=(PKG_CONFIG_PATH="$(pc_dir "$prefix")")
    run_env+=(LD_LIBRARY_PATH="$(lib_dir "$prefix")")
  fi
  [ "$variant" = static ] && make_args+=(STATIC=1)

  echo "-- CMake: find_package(ackring CONFIG REQUIRED)"
  cmake -S "$consumer_src" -B "$out/cmake" "${generator[@]}" "${cmake_args[@]}" >"$out.cmake.log" 2>&1 ||
    { cat "$out.cmake.log"; fail "$variant: configuring the consumer"; }
  local found; found="$(cache_value "$out/cmake" ackring_DIR)"
  echo "   ackring_DIR=$found"
  case "$found" in "${prefix:-/usr}"/*) ;; *) fail "$variant: found ackring in $found, not under ${prefix:-/usr}";; esac
  cmake --build "$out/cmake" >>"$out.cmake.log" 2>&1 || { cat "$out.cmake.log"; fail "$variant: building the consumer (CMake)"; }
  env "${run_env[@]}" "$out/cmake/ackring-consumer" || fail "$variant: the CMake-built consumer"

  echo "-- pkg-config: $(env "${pc_env[@]}" pkg-config ${make_args:+--static} --cflags --libs ackring)"
  mkdir -p "$out/pc"
  env "${pc_env[@]}" make -s -C "$out/pc" -f "$consumer_src/Makefile" "${make_args[@]}" >"$out.make.log" 2>&1 ||
    { cat "$out.make.log"; fail "$variant: building the consumer (pkg-config)"; }
  env "${run_env[@]}" "$out/pc/ackring-consumer" || fail "$variant: the pkg-config-built consumer"

  local exe needed
  for exe in "$out/cmake/ackring-consumer" "$out/pc/ackring-consumer"; do
    needed="$(readelf -d "$exe" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')"
    if [ "$variant" = static ]; then
      case "$needed" in *libackring*) fail "static: $exe needs a shared libackring ($needed)";; esac
    else
      case "$needed" in *libackring.so.0.1*) ;; *) fail "shared: $exe does not need libackring.so.0.1 ($needed)";; esac
    fi
  done
}

# check_other_languages <variant> <prefix or ""> <build dir>: the C API and
# the Python package of an install, used the way C and Python users do.
check_other_languages() {
  local variant="$1" prefix="$2" build="$3" out="$work/other-$1"
  local inc="${prefix:-/usr}/include" libdir pydir run_env=()
  [ -f "$inc/ackring/ackring.h" ] || fail "$variant: no ackring/ackring.h installed"
  if [ -n "$prefix" ]; then libdir="$(lib_dir "$prefix")"; else libdir="/usr/lib/$multiarch"; fi
  [ -e "$libdir/libackring_c.so.1" ] || fail "$variant: no libackring_c.so.1 in $libdir"
  [ -n "$prefix" ] && run_env+=(LD_LIBRARY_PATH="$libdir")
  mkdir -p "$out"
  echo "-- C: cc -std=c11 install_smoke.c -lackring_c"
  # -rpath-link: in a shared build libackring_c needs libackring.so, which the
  # linker looks for in the default directories only, not in -L ones.
  cc -std=c11 -Wall -Werror -I"$inc" "$src/tests/capi/install_smoke.c" -L"$libdir" -Wl,-rpath-link,"$libdir" \
    -lackring_c -o "$out/c-smoke" ||
    fail "$variant: building the C smoke program"
  env "${run_env[@]}" "$out/c-smoke" || fail "$variant: the C smoke program"
  if [ ! -f "$build/python/ackring/__init__.py" ]; then
    echo "-- Python: not built (no pybind11): skipped"
    return
  fi
  pydir="${prefix:-/usr}/lib/python3/dist-packages"
  ls "$pydir"/ackring/_ackring*.so "$pydir/ackring/__init__.pyi" "$pydir/ackring/py.typed" >/dev/null ||
    fail "$variant: the Python package is not in $pydir"
  echo "-- Python: /usr/bin/python3 install_smoke.py"
  if [ -n "$prefix" ]; then
    env "${run_env[@]}" PYTHONPATH="$pydir" PYTHONDONTWRITEBYTECODE=1 /usr/bin/python3 "$src/tests/capi/install_smoke.py" ||
      fail "$variant: the Python smoke script"
  else
    (cd / && PYTHONDONTWRITEBYTECODE=1 /usr/bin/python3 "$src/tests/capi/install_smoke.py") || fail "$variant: the Python smoke script"
  fi
}

# ---- 1. static library ---------------------------------------------------
static_build="$main_build"
if [ "$(cache_value "$main_build" BUILD_SHARED_LIBS)" = ON ] || [ -n "$(cache_value "$main_build" ACKRING_SANITIZE)" ]; then
  static_build="$main_build/install-test/static"
  step "static library: building it in $static_build"
  cmake -S "$src" -B "$static_build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF \
    -DACKRING_BUILD_TESTS=OFF -DACKRING_BUILD_BENCH=OFF -DACKRING_BUILD_EXAMPLES=OFF -DACKRING_BUILD_TOOLS=OFF >/dev/null
  cmake --build "$static_build" -j "$jobs"
fi
step "static library: cmake --install $static_build --prefix $work/static"
cmake --install "$static_build" --prefix "$work/static" >/dev/null
[ -f "$(lib_dir "$work/static")/libackring.a" ] || fail "static: no libackring.a installed"
build_consumer static "$work/static"
check_other_languages static "$work/static" "$static_build"

# ---- 2. shared library (and the CLI, for the package) ----------------------
shared_build="$main_build/install-test/shared"
step "shared library: building library, CLI and man page in $shared_build"
cmake -S "$src" -B "$shared_build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=ON \
  -DCMAKE_INSTALL_PREFIX=/usr -DACKRING_BUILD_TESTS=OFF -DACKRING_BUILD_BENCH=OFF -DACKRING_BUILD_EXAMPLES=OFF \
  -DACKRING_BUILD_TOOLS=ON -DACKRING_MAN_PAGE=ON >/dev/null
cmake --build "$shared_build" -j "$jobs"
step "shared library: cmake --install --prefix $work/shared"
cmake --install "$shared_build" --prefix "$work/shared" >/dev/null
shared_lib_dir="$(lib_dir "$work/shared")"
soname="$(readelf -d "$shared_lib_dir/libackring.so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')"
[ "$soname" = libackring.so.0.1 ] || fail "shared: SONAME is '$soname', expected libackring.so.0.1"
[ -f "$shared_lib_dir/libackring.so.0.1.0" ] || fail "shared: no libackring.so.0.1.0"
echo "   SONAME $soname; $(cd "$shared_lib_dir" && ls libackring.so*)" | tr '\n' ' '; echo
build_consumer shared "$work/shared"
check_other_languages shared "$work/shared" "$shared_build"

# ---- 3. Debian package -------------------------------------------------------
step "Debian package: cpack -G DEB"
(cd "$shared_build" && cpack -G DEB -B "$work/deb" >"$work/cpack.log" 2>&1) || { cat "$work/cpack.log"; fail "cpack -G DEB"; }
deb="$(ls "$work"/deb/ackring_*.deb)"
echo "   $(basename "$deb")"
dpkg-deb -f "$deb" Package Version Architecture Depends
depends="$(dpkg-deb -f "$deb" Depends)"
for dep in libc6 libstdc++6 liburing2 libxxhash0; do
  case "$depends" in *"$dep"*) ;; *) fail "package Depends lacks $dep: $depends";; esac
done
contents="$(dpkg-deb -c "$deb")"
for f in "./usr/bin/ackring" "/libackring.so.0.1.0" "/libackring.so.0.1 -> " "./usr/include/ackring/ackring.hpp" \
         "/cmake/ackring/ackringConfig.cmake" "/cmake/ackring/ackringTargets.cmake" "/pkgconfig/ackring.pc" \
         "./usr/share/bash-completion/completions/ackring" "./usr/share/man/man1/ackring.1.gz" \
         "./usr/include/ackring/ackring.h" "/libackring_c.so.1 -> " "/libackring_c.so.1.0.0"; do
  grep -qF -- "$f" <<<"$contents" || fail "package lacks $f"
done
if [ -f "$shared_build/python/ackring/__init__.py" ]; then
  grep -qF -- "./usr/lib/python3/dist-packages/ackring/__init__.pyi" <<<"$contents" &&
    grep -q -- "./usr/lib/python3/dist-packages/ackring/_ackring.*\.so" <<<"$contents" || fail "package lacks the Python package"
fi
control="$(dpkg-deb --ctrl-tarfile "$deb" | tar -t)"
grep -qx "./shlibs" <<<"$control" || fail "package has no shlibs file: $control"

if [ "$(id -u)" -ne 0 ]; then
  echo "install_test: not root: dpkg -i of the package skipped"
  exit 77
fi
exec 9>"$lock"
flock -w 900 9 || fail "another install test holds $lock"
if [ "$(dpkg-query -W -f='${Status}' ackring 2>/dev/null)" = "install ok installed" ]; then
  if [ -f "$marker" ]; then
    echo "   purging the ackring package a killed run of this test left installed"
    dpkg --purge ackring >/dev/null
    rm -f "$marker"
  else
    fail "a package named ackring is installed already (not by this test): dpkg --purge ackring first"
  fi
fi

step "Debian package: dpkg -i"
touch "$marker"
we_installed=1
for try in $(seq 1 30); do  # apt or dpkg in another process holds its lock: wait
  if dpkg -i "$deb" >"$work/dpkg.log" 2>&1; then break; fi
  if ! grep -q "lock" "$work/dpkg.log" || [ "$try" -ge 30 ]; then cat "$work/dpkg.log"; fail "dpkg -i"; fi
  sleep 2
done
[ "$(dpkg-query -W -f='${Status}' ackring)" = "install ok installed" ] || fail "dpkg-query: ackring not installed"
[ "$(command -v ackring)" = /usr/bin/ackring ] || fail "ackring on PATH is $(command -v ackring), not /usr/bin/ackring"
version="$(/usr/bin/ackring --version)"
echo "   /usr/bin/ackring --version: $version"
[ "$version" = "ackring $(dpkg-deb -f "$deb" Version)" ] || fail "ackring --version says '$version'"
grep -q "libackring.so.0.1 " <<<"$(ldconfig -p)" || fail "ldconfig does not know libackring.so.0.1"
grep -q '^\.SH COMMANDS' <<<"$(zcat /usr/share/man/man1/ackring.1.gz)" || fail "man page has no COMMANDS section"
[ -f /usr/share/bash-completion/completions/ackring ] || fail "no bash completion installed"
build_consumer system ""
check_other_languages system "" "$shared_build"

step "Debian package: dpkg --purge"
dpkg --purge ackring >/dev/null || fail "dpkg --purge ackring"
rm -f "$marker"
we_installed=0
[ ! -e /usr/bin/ackring ] || fail "/usr/bin/ackring still there after dpkg --purge"
! grep -q "libackring.so.0.1 " <<<"$(ldconfig -p)" || fail "libackring.so.0.1 still known to ldconfig after purge"

step "OK: static, shared and Debian package install and link"
