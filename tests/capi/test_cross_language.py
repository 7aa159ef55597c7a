"""Across languages: a C++ producer, Python and C consumers on one queue.

A consumer of one language holds messages unacked (leases of 120 s) and
confirms it on its stdout; it is then SIGKILLed and a consumer of the other
language must ack every message exactly once, the held ones with delivery
count 2. The leases cannot have run out within the test's 45 s, so the
takeover proves that the dead member was detected, whatever the language.
Every wait has a deadline that only detects a hang; no verdict depends on
timing. Every child is reaped; children also die with this process
(PR_SET_PDEATHSIG) and after a 90 s alarm."""
import os
import subprocess
import sys

import pytest

import ackring

PRODUCER = os.environ.get("ACKRING_CROSS_PRODUCER")
C_CONSUMER = os.environ.get("ACKRING_CROSS_C_CONSUMER")
PY_CONSUMER = [sys.executable, os.path.join(os.path.dirname(__file__), "cross_consumer.py")]
MESSAGES = 20
HELD = 5
DEADLINE_S = 45  # detects a hang only

pytestmark = pytest.mark.skipif(not PRODUCER or not C_CONSUMER,
                                reason="ACKRING_CROSS_PRODUCER / ACKRING_CROSS_C_CONSUMER not set (run through ctest)")


def consumer_command(language, path, *args):
    base = [C_CONSUMER] if language == "c" else PY_CONSUMER
    return base + [path, "g", *map(str, args)]


def publish_from_cpp(path):
    done = subprocess.run([PRODUCER, path, str(MESSAGES)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"C++ producer: {done.stderr}"


def hold_then_kill(language, path):
    """Starts a consumer that holds HELD messages; returns their seqs once it
    has said so, after SIGKILLing and reaping it."""
    child = subprocess.Popen(consumer_command(language, path, "hold", HELD), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        held = []
        for line in child.stdout:  # ends at "holding", or at EOF if the child failed
            words = line.split()
            if words == ["holding"]:
                break
            assert words[0] == "held", line
            held.append((int(words[1]), int(words[2])))
        assert len(held) == HELD, f"{language} consumer held {held}; stderr: {child.stderr.read()}"
        assert all(deliveries == 1 for _, deliveries in held)
    finally:
        child.kill()
        child.wait()
    assert child.returncode == -9
    return sorted(seq for seq, _ in held)


def drain(language, path):
    done = subprocess.run(consumer_command(language, path, "drain", MESSAGES, DEADLINE_S), capture_output=True,
                          text=True, timeout=DEADLINE_S + 30)
    assert done.returncode == 0, f"{language} consumer: {done.stderr}"
    acked = {}
    for line in done.stdout.splitlines():
        word, seq, deliveries, payload = line.split()
        assert word == "acked"
        assert int(seq) not in acked, f"seq {seq} acked twice"
        acked[int(seq)] = (int(deliveries), payload)
    return acked


@pytest.mark.parametrize("killed,taker", [("python", "c"), ("c", "python")])
def test_a_consumer_killed_mid_lease_has_its_messages_redelivered_to_another_language(queue_path, killed, taker):
    q = ackring.Queue.create(queue_path, capacity=64, max_message_size=64)
    q.create_group("g")
    publish_from_cpp(queue_path)
    held = hold_then_kill(killed, queue_path)
    assert held == list(range(HELD))  # the oldest, in order
    acked = drain(taker, queue_path)
    assert sorted(acked) == list(range(MESSAGES)), "every message acked exactly once"
    for seq, (deliveries, payload) in acked.items():
        assert payload == f"msg-{seq}"
        assert deliveries == (2 if seq in held else 1), f"seq {seq}: delivery count {deliveries}"
    group = q.stats()["groups"][0]
    assert group["acked"] == MESSAGES and group["in_flight"] == 0 and group["floor"] == MESSAGES
    assert group["redelivered"] == HELD
