"""The Python package (import ackring) against a real queue, in one process
except for the Ctrl-C test. No verdict depends on timing: waits are timeouts
on queues known to be empty or full, and a generous bound that only detects
a hang."""
import os
import signal
import subprocess
import sys
import textwrap
import threading

import pytest

import ackring


def test_publish_receive_ack_round_trip_with_a_zero_copy_payload(queue):
    with queue.producer() as p:
        r = p.publish(b"hello", timeout=1.0)
        assert (r.seq, r.duplicate) == (0, False)
        assert p.publish("wörld").seq == 1  # str is sent as UTF-8
        assert p.publish(bytearray(b"ba"), timeout=0).seq == 2
        assert p.publish(memoryview(b"mv")).seq == 3
    with queue.consumer("g") as c:
        m = c.receive(timeout=1.0)
        assert isinstance(m.payload, memoryview)
        assert m.payload.readonly and m.payload.nbytes == 5 and len(m) == 5
        assert bytes(m.payload) == b"hello" and m.bytes() == b"hello"
        assert (m.seq, m.deliveries, m.redelivered, m.has_key, m.replayed) == (0, 1, False, False, False)
        assert m.key is None
        assert m.publish_time_ns > 0 and not m.settled
        m.ack()
        assert m.settled
        assert c.receive(0).text() == "wörld"
        assert [x.bytes() for x in c.receive_batch(8, timeout=0)] == [b"ba", b"mv"]


def test_a_settled_message_gives_lease_lost(queue):
    with queue.producer() as p:
        p.publish(b"x")
    c = queue.consumer("g")
    m = c.receive(1.0)
    m.ack()
    for settle in (m.ack, m.reject, lambda: m.nack(0), lambda: m.extend(1.0)):
        with pytest.raises(ackring.LeaseLost) as e:
            settle()
        assert e.value.status == 3 and isinstance(e.value, ackring.Error)


def test_nack_redelivers_with_a_higher_delivery_count_and_extend_keeps_the_lease(queue):
    queue.producer().publish(b"again")
    c = queue.consumer("g", lease=60.0)
    m = c.receive(1.0)
    m.extend(120.0)
    m.nack(delay=0)
    m2 = c.receive(1.0)
    assert (m2.seq, m2.deliveries, m2.redelivered) == (0, 2, True)
    with pytest.raises(ackring.LeaseLost):
        m.ack()  # the first delivery's receipt is stale
    m2.ack()


def test_reject_dead_letters_the_message(queue, queue_path):
    queue.producer().publish(b"poison")
    c = queue.consumer("g")
    c.receive(1.0).reject()
    assert c.receive(0) is None
    dlq = ackring.Queue.open(queue_path + ".dlq")
    dead = dlq.consumer("dlq").receive(1.0)
    assert dead is not None and dead.bytes().endswith(b"poison")
    assert queue.stats()["groups"][0]["dead_lettered"] == 1


def test_keyed_publish_is_idempotent(queue):
    p = queue.producer()
    first = p.publish(b"order", key="order-42")
    again = p.publish(b"order", key=b"order-42")
    other = p.publish(b"order", key="order-43")
    assert again.duplicate and again.seq == first.seq and not other.duplicate
    c = queue.consumer("g")
    m, n = c.receive(1.0), c.receive(1.0)
    assert m.has_key and n.has_key
    # The queue keeps the key's 16-byte fingerprint: equal keys, equal bytes.
    assert isinstance(m.key, bytes) and len(m.key) == 16 and m.key != n.key
    assert queue.stats()["dedup_hits"] == 1


def test_timeouts_none_zero_and_positive(queue):
    c = queue.consumer("g")
    assert c.receive(timeout=0) is None
    assert c.receive(timeout=0.01) is None
    with pytest.raises(ValueError):
        c.receive(timeout=-1)
    p = queue.producer()
    for i in range(16):
        p.publish(b"fill", timeout=0)
    with pytest.raises(ackring.QueueFull):
        p.publish(b"full", timeout=0)
    with pytest.raises(ackring.Timeout):
        p.publish(b"full", timeout=0.01)
    with pytest.raises(TimeoutError):  # Timeout is also the built-in TimeoutError
        p.publish(b"full", timeout=0.01)


def test_message_context_manager_acks_on_success_and_nacks_on_error(queue):
    p = queue.producer()
    p.publish(b"a")
    p.publish(b"b")
    c = queue.consumer("g")
    with c.receive(1.0) as m:
        assert m.bytes() == b"a"
    assert m.settled
    with pytest.raises(RuntimeError):
        with c.receive(1.0) as m:
            raise RuntimeError("handler failed")
    again = c.receive(1.0)
    assert (again.bytes(), again.deliveries) == (b"b", 2)
    again.ack()


def test_iteration_yields_messages_until_the_consumer_is_closed(queue):
    p = queue.producer()
    for i in range(5):
        p.publish(f"m{i}")
    c = queue.consumer("g")
    seen = []
    for m in c:
        seen.append(m.text())
        m.ack()
        if len(seen) == 5:
            c.close()
    assert seen == [f"m{i}" for i in range(5)]
    assert c.closed
    with pytest.raises(RuntimeError):
        c.receive(0)


def test_batches_publish_receive_and_cumulative_ack(queue):
    p = queue.producer()
    r = p.publish_batch([b"0", "1", bytearray(b"2")])
    assert r.seq == 0
    c = queue.consumer("g")
    batch = c.receive_batch(8, timeout=1.0)
    assert [m.bytes() for m in batch] == [b"0", b"1", b"2"]
    batch[0].ack()
    assert c.ack_batch(batch) == 2  # the first was settled already
    assert all(m.settled for m in batch)
    with batch[1]:  # settled: the block's end does not ack it again
        pass
    with pytest.raises(ValueError):
        p.publish_batch([])


def test_a_lingering_consumer_returns_a_short_batch_and_refuses_a_linger_over_a_second(queue):
    p = queue.producer()
    p.publish(b"only")
    c = queue.consumer("g", linger_us=1000)
    batch = c.receive_batch(8, timeout=1.0)
    assert [m.bytes() for m in batch] == [b"only"]
    assert c.ack_batch(batch) == 1
    with pytest.raises(ValueError, match="linger"):
        queue.consumer("g", linger_us=1_000_001)


def test_process_once_skips_what_was_processed_and_records_nothing_when_the_handler_raises(queue):
    p = queue.producer()
    p.publish(b"job", key="job-1")
    c = queue.consumer("g")
    m = c.receive(1.0)
    with pytest.raises(KeyError):
        m.process_once(lambda msg: {}["boom"])
    assert not m.settled
    seen = []
    assert m.process_once(lambda msg: seen.append(msg.bytes())) is True
    assert seen == [b"job"] and m.settled
    m.process_once(lambda msg: seen.append("again"))  # processed before: not called
    assert seen == [b"job"]


def test_keyed_batch_publishes_in_order_and_reports_what_came_before_a_failure(queue):
    p = queue.producer()
    c = queue.consumer("g")
    results = p.publish_keyed_batch([(b"m0", "k0"), ("m1", b"k0"), (bytearray(b"m2"), None)])
    assert [(r.seq, r.duplicate) for r in results] == [(0, False), (0, True), (1, False)]
    with pytest.raises(ackring.TooLarge) as failed:
        p.publish_keyed_batch([(b"m3", "k3"), (b"x" * 100, "k4"), (b"m5", "k5")])
    assert [(r.seq, r.duplicate) for r in failed.value.results] == [(2, False)]
    assert p.publish_keyed_batch([]) == []
    with pytest.raises(ValueError):
        p.publish_keyed_batch([b"not a pair"])
    assert [m.bytes() for m in c.receive_batch(8, timeout=1.0)] == [b"m0", b"m2", b"m3"]


def test_process_once_batch_handles_the_new_and_raises_what_the_handler_raised(queue):
    p = queue.producer()
    p.publish_keyed_batch([(f"m{i}".encode(), f"k{i}") for i in range(4)])
    c = queue.consumer("g")
    batch = c.receive_batch(8, timeout=1.0)
    assert len(batch) == 4
    seen = []

    def fail_on_m2(msg):
        if msg.bytes() == b"m2":
            raise KeyError("m2")
        seen.append(msg.bytes())

    with pytest.raises(KeyError):
        c.process_once_batch(batch, fail_on_m2)
    assert seen == [b"m0", b"m1"]
    assert [m.settled for m in batch] == [True, True, False, False]
    counts = c.process_once_batch(batch[2:], lambda msg: seen.append(msg.bytes()))
    assert counts == {"handled": 2, "duplicates": 0, "acked": 2, "unrecorded": 0}
    assert seen == [b"m0", b"m1", b"m2", b"m3"] and all(m.settled for m in batch)
    assert c.receive(0) is None


def test_stats_are_dicts(queue):
    queue.create_group("g", overflow="block", start="earliest")
    queue.create_group("h", overflow="drop", start="latest")
    queue.producer().publish(b"x")
    c = queue.consumer("g")
    c.receive(1.0)
    s = queue.stats()
    assert s["capacity"] == 16 and s["tail"] == 1 and s["published"] == 1
    groups = {g["name"]: g for g in s["groups"]}
    assert set(groups) == {"g", "h"} and queue.group_names() == ["g", "h"]
    assert groups["g"]["in_flight"] == 1 and groups["h"]["overflow"] == "drop"
    (member,) = groups["g"]["members"]
    assert member["pid"] == os.getpid() and member["alive"] and member["in_flight"] == 1


def test_redelivery_back_off_and_its_signals(queue):
    # A back-off far longer than the test: a nacked message stays away.
    queue.create_group("g", backoff={"initial_ms": 3_600_000, "max_ms": 3_600_000, "jitter": "none"})
    p = queue.producer()
    p.publish(b"poison")
    p.publish(b"k1", key="k")
    assert p.publish(b"k1 again", key="k").duplicate
    c = queue.consumer("g")
    m = c.receive(1.0)
    assert m.bytes() == b"poison"
    m.nack()  # no delay: the group's back-off decides
    s = queue.stats()
    assert s["dedup_keyed_published"] == 2 and s["dedup_hit_ratio"] == 0.5
    (g,) = s["groups"]
    assert g["redelivery"] == {"initial_ms": 3_600_000, "multiplier": 2.0, "max_ms": 3_600_000, "jitter": "none"}
    assert g["waiting_redelivery"] == 1
    assert c.receive(0).bytes() == b"k1"  # the next message, not the one backing off
    assert set(g["redelivered_by"]) == {"expiry", "death", "nack", "released"}
    assert set(g["ack_latency"]) == {"count", "p50_ms", "p99_ms"}
    # Off again: the nacked message comes back at once on its next nack.
    queue.set_redelivery("g", None)
    assert queue.stats()["groups"][0]["redelivery"]["initial_ms"] == 0
    with pytest.raises(ValueError):
        queue.set_redelivery("g", {"initial_ms": 10, "jitter": "sideways"})
    with pytest.raises(ackring.InvalidArgument):
        queue.set_redelivery("g", {"initial_ms": 10, "max_ms": 5})
    with pytest.raises(ackring.NotFound):
        queue.set_redelivery("nope", {"initial_ms": 10})


def test_group_management_and_purge(queue):
    queue.create_group("g")
    with pytest.raises(ackring.AlreadyExists):
        queue.create_group("g")
    with pytest.raises(ValueError):
        queue.create_group("x", overflow="sideways")
    p = queue.producer()
    p.publish(b"1")
    p.publish(b"2")
    assert queue.purge("g") == 2
    assert queue.consumer("g").receive(0) is None
    assert queue.remove_group("g") is True
    assert queue.remove_group("g") is False
    with pytest.raises(ackring.NotFound):
        queue.consumer("g", create_group=False)


def test_cold_path_errors_name_the_file(queue_path):
    with pytest.raises(FileNotFoundError) as e:
        ackring.Queue.open(queue_path)
    assert queue_path in str(e.value) and isinstance(e.value, ackring.NotFound)
    with pytest.raises(ackring.InvalidArgument):
        ackring.Queue.create(queue_path, capacity=3)
    with pytest.raises(TypeError):
        ackring.Queue.create(queue_path, no_such_option=1)
    q = ackring.Queue.create(queue_path, capacity=4, max_message_size=8)
    with pytest.raises(FileExistsError):
        ackring.Queue.create(queue_path)
    with pytest.raises(ackring.TooLarge):
        q.producer().publish(b"123456789")
    with pytest.raises(TypeError):
        q.producer().publish(12345)
    assert ackring.Queue.open_or_create(queue_path).stats()["capacity"] == 4
    assert ackring.Queue.destroy(queue_path) is True
    assert ackring.Queue.destroy(queue_path) is False


def test_a_payload_view_outlives_closing_its_consumer_and_queue(queue_path):
    # The memoryview keeps its Message, which keeps the mapping: reading it
    # after both closes is safe (it shows what the slot holds).
    q = ackring.Queue.create(queue_path, capacity=4, max_message_size=8)
    q.producer().publish(b"kept")
    c = q.consumer("g")
    view = c.receive(1.0).payload
    c.close()
    q.close()
    del c, q
    assert bytes(view) == b"kept"


def test_closed_handles_raise_instead_of_crashing(queue):
    p = queue.producer()
    p.close()
    with pytest.raises(RuntimeError):
        p.publish(b"x")
    queue.close()
    with pytest.raises(RuntimeError):
        queue.producer()


def test_a_blocked_receive_lets_other_threads_run_and_publish_to_it(queue):
    c = queue.consumer("g")
    got = []
    t = threading.Thread(target=lambda: got.append(c.receive(timeout=30.0)))
    t.start()
    queue.producer().publish(b"from main")
    t.join(60)
    assert not t.is_alive() and got[0].bytes() == b"from main"


def test_ctrl_c_interrupts_a_receive_that_waits_without_limit(queue_path):
    script = textwrap.dedent(f"""
        import ackring, signal, sys
        # SIGINT may be inherited as ignored (a background job of a script):
        # restore the handler that raises KeyboardInterrupt.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        q = ackring.Queue.create({queue_path!r}, capacity=4, max_message_size=8)
        c = q.consumer("g")
        try:
            print("waiting", flush=True)
            c.receive()          # no timeout: only Ctrl-C ends it
        except KeyboardInterrupt:
            print("interrupted", flush=True)
            sys.exit(0)
        sys.exit(3)
    """)
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "waiting"
        child.send_signal(signal.SIGINT)
        out, _ = child.communicate(timeout=30)
        assert child.returncode == 0 and out.strip() == "interrupted"
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_a_durable_queue_is_recovered_from_its_journal(queue_path, tmp_path):
    journal = str(tmp_path / "journal")
    with ackring.Queue.create(queue_path, capacity=8, max_message_size=32, durability="sync",
                              journal_dir=journal) as q:
        q.create_group("g")
        with q.producer() as p:
            for i in range(3):
                p.publish(f"durable-{i}")  # returns once the record is on disk
    assert ackring.Queue.destroy(queue_path)  # as after a reboot
    with pytest.raises(ValueError):
        ackring.Queue.create(queue_path, durability="sometimes")
    with ackring.Queue.recover(queue_path, journal_dir=journal) as q:
        with q.consumer("g") as c:
            assert [c.receive(5.0).text() for _ in range(3)] == [f"durable-{i}" for i in range(3)]
