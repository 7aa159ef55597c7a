#!/usr/bin/env python3
"""Checks model/ackring.pml with Spin in one configuration (issue 13).

  run_model.py --model model/ackring.pml --work DIR --expect pass -- -DNP=2 ...
  run_model.py ... --expect fail --assertion 'REGEX' -- -DNO_INTENT ...

Generates the verifier (spin -a with the given -D options), compiles it
(exhaustive search: -DSAFETY, -DCOLLAPSE state compression, a memory limit)
and runs it under `nice`.

--expect pass: the search must complete (not cut by the memory limit or the
depth limit) with 0 errors.
--expect fail: the search must report an error; the counterexample is then
replayed with `spin -t` and its event log (the model's printf lines) is
printed, and the violated assertion must match --assertion.

Exit 0 as expected, 1 otherwise, 77 (skip) only when spin or a C compiler
is missing.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import time

SKIP = 77


def run(cmd, cwd, timeout=None):
    return subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=timeout)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--work", required=True, help="scratch directory (recreated)")
    ap.add_argument("--expect", choices=("pass", "fail"), required=True)
    ap.add_argument("--assertion", default=None, help="regex the violated assertion must match (fail)")
    ap.add_argument("--memlim", type=int, default=3500, help="MiB for the verifier (-DMEMLIM)")
    ap.add_argument("--depth", type=int, default=200000, help="search depth limit (-m)")
    ap.add_argument("--cflags", default="", help="extra C flags for pan.c (e.g. -DBFS)")
    ap.add_argument("--pan-args", default="", help="extra options for the verifier (e.g. -w32 with -DBITSTATE)")
    ap.add_argument("--timeout", type=int, default=1500, help="seconds for the verifier run")
    ap.add_argument("defines", nargs="*", help="-D options for spin (after --)")
    a = ap.parse_args()

    spin = shutil.which("spin")
    cc = shutil.which("gcc") or shutil.which("cc")
    if not spin or not cc:
        print(f"SKIP: {'spin' if not spin else 'a C compiler'} is not installed "
              "(tools/setup.sh installs the Debian package spin)")
        return SKIP

    label = " ".join(a.defines) or "(default configuration)"
    shutil.rmtree(a.work, ignore_errors=True)
    os.makedirs(a.work)
    shutil.copy(a.model, os.path.join(a.work, "ackring.pml"))

    gen = run([spin, "-a", *a.defines, "ackring.pml"], a.work)
    if gen.returncode != 0 or not os.path.exists(os.path.join(a.work, "pan.c")):
        print(f"FAIL: spin -a {label} did not generate a verifier:\n{gen.stdout}")
        return 1
    extra = a.cflags.split()
    # state compression, except where it does not apply (a bitstate search stores no states)
    compress = [] if "-DBITSTATE" in extra else ["-DCOLLAPSE"]
    cflags = ["-O2", "-DSAFETY", *compress, f"-DMEMLIM={a.memlim}", *extra]
    comp = run([cc, *cflags, "-o", "pan", "pan.c"], a.work)
    if comp.returncode != 0:
        print(f"FAIL: compiling pan.c ({' '.join(cflags)}) failed:\n{comp.stdout}")
        return 1

    started = time.monotonic()
    try:
        pan = run(["nice", "-n", "10", "./pan", f"-m{a.depth}", *a.pan_args.split()], a.work, timeout=a.timeout)
    except subprocess.TimeoutExpired:
        print(f"FAIL: the verifier ran longer than {a.timeout} s ({label})")
        return 1
    wall = time.monotonic() - started
    out = pan.stdout
    with open(os.path.join(a.work, "pan.out"), "w") as f:
        f.write(out)

    m = re.search(r"errors:\s*(\d+)", out)
    if not m:
        print(f"FAIL: no result in the verifier's output ({label}):\n{out}")
        return 1
    errors = int(m.group(1))
    stored = re.search(r"([\d.e+]+) states, stored", out)
    trans = re.search(r"([\d.e+]+) transitions", out)
    mem = re.search(r"([\d.]+)\s+total actual memory usage", out)
    depth = re.search(r"depth reached (\d+)", out)
    summary = (f"{stored.group(1) if stored else '?'} states stored, "
               f"{trans.group(1) if trans else '?'} transitions, depth {depth.group(1) if depth else '?'}, "
               f"{mem.group(1) if mem else '?'} MB, {wall:.1f} s")
    truncated = [t for t in ("max search depth too small", "reached -DMEMLIM bound", "out of memory",
                             "Search not completed") if t in out]

    if a.expect == "pass":
        if errors != 0:
            print(f"FAIL: the model of the fixed protocol has {errors} error(s) ({label}); {summary}")
            print(out)
            replay(spin, a)
            return 1
        if truncated:
            print(f"FAIL: the search was cut short ({', '.join(truncated)}): not exhaustive ({label}); {summary}")
            print(out)
            return 1
        print(f"ok: no errors, exhaustive ({label}): {summary}")
        return 0

    if errors == 0:
        print(f"FAIL: the reverted variant verified with 0 errors: the model no longer finds its hole ({label}); "
              f"{summary}")
        if truncated:
            print(f"(the search was cut short: {', '.join(truncated)})")
        return 1
    violated = replay(spin, a)
    if a.assertion and not (violated and re.search(a.assertion, violated)):
        print(f"FAIL: the variant failed, but not on the expected assertion /{a.assertion}/: {violated!r} ({label})")
        return 1
    print(f"ok: the reverted variant fails as expected ({label}): {summary}")
    return 0


def replay(spin, a):
    """Replays the trail; prints the model's event log and returns the violated assertion."""
    if not os.path.exists(os.path.join(a.work, "ackring.pml.trail")):
        print("(no trail file)")
        return None
    rep = run([spin, "-t", *a.defines, "ackring.pml"], a.work, timeout=600)
    with open(os.path.join(a.work, "replay.txt"), "w") as f:
        f.write(rep.stdout)
    print("counterexample (events of the trail, one process per column):")
    violated = None
    for line in rep.stdout.splitlines():
        if "text of failed assertion" in line:
            violated = line.split("assertion:", 1)[-1].strip()
        if not line.strip() or line.startswith("#processes") or re.match(r"\s*\d+:\s+proc ", line) or \
                re.match(r"\s+\w+(\(\d+\))?(:\w+)?(\[\d+\])?\s*=\s", line) or \
                line.lstrip().startswith(("spin: trail ends", "spin: text of", "spin: ackring")) or \
                re.match(r"\d+ processes created", line):
            continue  # the final dump of variables and processes, and the error (printed below)
        print("  " + line.strip())
    m = re.search(r"spin: (ackring\.pml:\d+), Error: (.*)", rep.stdout)
    print(f"violated: {violated or (m.group(2) if m else '?')} ({m.group(1) if m else '?'})")
    return violated or (m.group(2) if m else None)


if __name__ == "__main__":
    sys.exit(main())
