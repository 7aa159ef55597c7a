"""The Python side of the cross-language test; same protocol as cross_consumer.c:
    cross_consumer.py <queue path> <group> hold <n>
    cross_consumer.py <queue path> <group> drain <n> <deadline s>
"""
import ctypes
import signal
import sys
import time

import ackring


def main() -> int:
    path, group, mode, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    # Never outlive the test: die with the parent (PR_SET_PDEATHSIG = 1), and after a safety alarm.
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)
    signal.alarm(90)
    q = ackring.Queue.open(path)
    c = q.consumer(group, lease=120.0)
    if mode == "hold":
        for _ in range(n):
            msg = c.receive(timeout=30.0)
            if msg is None:
                print("cross_consumer.py: nothing to hold within 30 s", file=sys.stderr)
                return 1
            print(f"held {msg.seq} {msg.deliveries}")
        print("holding", flush=True)
        while True:
            signal.pause()
    deadline = time.monotonic() + float(sys.argv[5])
    acked = 0
    while acked < n:
        if time.monotonic() > deadline:
            print(f"cross_consumer.py: only {acked} of {n} acked before the deadline", file=sys.stderr)
            return 2
        msg = c.receive(timeout=0.2)
        if msg is None:
            continue
        print(f"acked {msg.seq} {msg.deliveries} {msg.text()}")
        msg.ack()
        acked += 1
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
