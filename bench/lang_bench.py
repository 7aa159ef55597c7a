"""The Python column of ackring-lang-bench (which runs it): the same rounds as
the C++ and C columns, through the ackring package. Prints JSON with the
per-round ns per message of each row.
Usage: lang_bench.py <queue path> <n> <warm-up rounds> <rounds>"""
import json
import sys
import time

import ackring


def main() -> None:
    path, n, warmup, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    payload = b"\x01" * 64
    q = ackring.Queue.create(path, capacity=n, max_message_size=256)
    q.create_group("g")
    c = q.consumer("g")
    p = q.producer()
    publish, receive = p.publish, c.receive
    out = {"publish_ns": [], "receive_ack_ns": []}
    for r in range(warmup + rounds):
        t0 = time.perf_counter_ns()
        for _ in range(n):
            publish(payload, timeout=0)
        t1 = time.perf_counter_ns()
        for _ in range(n):
            receive(0).ack()
        t2 = time.perf_counter_ns()
        if r >= warmup:
            out["publish_ns"].append((t1 - t0) / n)
            out["receive_ack_ns"].append((t2 - t1) / n)
    c.close()
    p.close()
    q.close()
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
