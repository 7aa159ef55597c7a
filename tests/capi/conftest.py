"""Shared fixtures of the Python tests: a unique queue path per test (pid +
random nonce, like tests/test_util.hpp TempQueue), removed afterwards with
its dead-letter queue."""
import os
import uuid

import pytest

import ackring


@pytest.fixture
def queue_path():
    path = f"/dev/shm/ackring-test.py.{os.getpid()}.{uuid.uuid4().hex}"
    yield path
    for p in (path, path + ".dlq"):
        try:
            os.unlink(p)
        except FileNotFoundError:
            pass


@pytest.fixture
def queue(queue_path):
    q = ackring.Queue.create(queue_path, capacity=16, max_message_size=64)
    yield q
    q.close()
