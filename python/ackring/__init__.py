"""ackring: shared-memory message queues between processes on one Linux host.

A binding of the ackring C API (libackring_c). Example::

    import ackring
    q = ackring.Queue.create("orders", capacity=1 << 16, max_message_size=512)
    with q.producer() as p:
        p.publish(b"order-42", timeout=1.0)
    with q.consumer("billing", lease=30.0) as c:
        msg = c.receive(timeout=0.1)
        if msg is not None:
            handle(msg.payload)   # zero-copy memoryview, valid until settled
            msg.ack()             # or nack(delay) / extend(lease) / reject()

Blocking calls release the GIL; Ctrl-C interrupts them.
"""

from ._ackring import (  # noqa: F401  (re-exported)
    AlreadyExists,
    Consumer,
    Error,
    InvalidArgument,
    LeaseLost,
    Message,
    NotFound,
    Producer,
    PublishResult,
    Queue,
    QueueFull,
    Timeout,
    TooLarge,
    __version__,
)

__all__ = [
    "AlreadyExists",
    "Consumer",
    "Error",
    "InvalidArgument",
    "LeaseLost",
    "Message",
    "NotFound",
    "Producer",
    "PublishResult",
    "Queue",
    "QueueFull",
    "Timeout",
    "TooLarge",
    "__version__",
]
