#!/usr/bin/env python3
"""The parts of src/ include each other one way only (src/README.md):

    shm  <-  dedup, journal  <-  queue  <-  ops
    bridge and capi use the public API (include/ackring) only.

Exits 1 and names every include that points the wrong way."""
import pathlib
import re
import sys

ALLOWED = {
    "shm": {"shm"},
    "dedup": {"shm", "dedup"},
    "journal": {"shm", "journal"},
    "queue": {"shm", "dedup", "journal", "queue"},
    "ops": {"shm", "dedup", "journal", "queue", "ops"},
    "bridge": {"bridge"},
    "capi": {"capi"},
}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)

src = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "src")
bad = []
for path in sorted(src.rglob("*")):
    if path.suffix not in {".cpp", ".hpp", ".h"}:
        continue
    rel = path.relative_to(src)
    if len(rel.parts) < 2:
        bad.append(f"{rel}: a source file outside the parts (put it in one of {sorted(ALLOWED)})")
        continue
    part = rel.parts[0]
    if part not in ALLOWED:
        bad.append(f"{rel}: unknown part '{part}' (add it to tests/layout/check_layering.py and src/README.md)")
        continue
    for target in INCLUDE.findall(path.read_text(encoding="utf-8", errors="replace")):
        if target.startswith("ackring/"):
            continue  # the public API: every part may use it
        if "/" not in target:
            if (path.parent / target).exists():
                continue  # a header of the same folder
            bad.append(f"{rel}: includes \"{target}\" without its part")
            continue
        to = target.split("/", 1)[0]
        if to not in ALLOWED[part]:
            bad.append(f"{rel}: {part} may not include {target} ({part} may use {', '.join(sorted(ALLOWED[part]))})")
for line in bad:
    print(line)
print(f"{'FAIL' if bad else 'ok'}: {len(bad)} include(s) against the layering of {src}")
sys.exit(1 if bad else 0)
