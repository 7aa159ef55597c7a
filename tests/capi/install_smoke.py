"""Run against an installed ackring by tests/install/install_test.sh: the
installed Python package publishes, receives and acks one message."""
import os

import ackring

path = f"/dev/shm/ackring.py-install-smoke.{os.getpid()}"
text = f"hello from {os.getpid()}"
try:
    with ackring.Queue.create(path, capacity=16, max_message_size=256) as q:
        with q.consumer("smoke") as c, q.producer() as p:
            p.publish(text, timeout=1.0)
            with c.receive(timeout=5.0) as msg:
                assert msg.text() == text, msg.text()
    print(f"python: received {text} (ackring {ackring.__version__} from {os.path.dirname(ackring.__file__)})")
finally:
    ackring.Queue.destroy(path)
