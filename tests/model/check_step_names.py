#!/usr/bin/env python3
"""The model's step names must be the failpoint names (issue 13).

Usage: check_step_names.py model/ackring.pml src/shm/failpoint_names.hpp

The set of `/* @step NAME */` marks in the Promela model must equal the set of
names X("NAME") in failpoint_names.hpp whose prefix is one of the modelled
protocols (publish, receive, takeover, ack, floor, abort, drop, refresh).
dedup.* and deadletter.* are not modelled. Exit 0 when they agree, 1 otherwise.
"""
import re
import sys

MODELLED = ("publish.", "receive.", "takeover.", "ack.", "floor.", "abort.", "drop.", "refresh.")


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    model_path, names_path = sys.argv[1], sys.argv[2]
    model = open(model_path, encoding="utf-8").read()
    names = open(names_path, encoding="utf-8").read()

    steps = set(re.findall(r"/\*\s*@step\s+([A-Za-z0-9_.]+)\s*\*/", model))
    # any other spelling of a step mark is a mistake: say so rather than ignore it
    loose = set(re.findall(r"@step\s+([A-Za-z0-9_.]+)", model)) - steps
    failpoints = set(re.findall(r'X\(\s*"([^"]+)"\s*\)', names))
    wanted = {n for n in failpoints if n.startswith(MODELLED)}

    ok = True
    if not failpoints:
        print(f"FAIL: no X(\"name\") entries found in {names_path}")
        return 1
    if loose:
        print(f"FAIL: {model_path} has @step marks not of the form /* @step name */: {sorted(loose)}")
        ok = False
    missing = sorted(wanted - steps)
    extra = sorted(steps - wanted)
    if missing:
        print(f"FAIL: failpoints in {names_path} with no /* @step */ in {model_path}: {missing}")
        ok = False
    if extra:
        print(f"FAIL: /* @step */ names in {model_path} that are not failpoints of a modelled protocol "
              f"in {names_path}: {extra}")
        ok = False
    if ok:
        print(f"ok: the {len(steps)} step names of the model are the failpoints "
              f"{', '.join(p + '*' for p in MODELLED)} ({len(failpoints) - len(wanted)} others not modelled)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
