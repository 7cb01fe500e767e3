"""kombu's Redis transport, minus one cost per published message, plus a way to see
exactly what it would publish.

kombu builds a new ``redis.Redis`` client object for every message it publishes (see
``Channel.conn_or_acquire``); with redis-py 6+ that object copies ~170 response
callbacks, which measured ~40% of the time to publish a task here. This channel keeps
one client per channel (redis-py clients are safe to share: they borrow a connection
from the pool per command) and rebuilds it when the channel's pool changes.

Before every message it consumes, kombu sends one BRPOP naming every queue the worker
serves, rotated so the queue served last goes last (fairness). A worker serving 500
processes names 500 queues each time, and packing that command argument by argument
took half the worker's time at 1000 processes. This channel keeps every queue's
packed argument and joins them in the rotated order: the same bytes, ~100× cheaper.

:func:`capture` lets ``cluster/transport.py`` learn the exact message kombu puts on a
queue for a task, without putting it there: its direct publishing path refills that
message per frame instead of running Celery's and kombu's publishing code each time.
Used only when the broker is Redis; ``config/celery.py`` selects it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from time import monotonic
from typing import Any

from kombu.transport import redis, virtual

_captures = threading.local()
_handling = threading.local()  # .current: (QoS, delivery tag) of the message being handled


@contextmanager
def capture() -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """Within this block, messages published from this thread are collected as
    ``(queue, message)`` instead of being sent."""
    taken: list[tuple[str, dict[str, Any]]] = []
    _captures.taken = taken
    try:
        yield taken
    finally:
        _captures.taken = None


class EarlyAck:
    """The ack of the message this thread is handling, to be sent inside a caller's
    transaction (see :func:`ack_handled`); :meth:`done` once that transaction ran."""

    def __init__(self, qos: QoS, tag: str) -> None:
        self.qos = qos
        self.tag = tag

    def add_to(self, pipe: Any) -> None:
        self.qos._remove_from_indices(self.tag, pipe)

    def done(self) -> None:
        self.qos.acked_early.add(self.tag)


def ack_handled() -> EarlyAck | None:
    """The ack of the broker message whose task runs on this thread now, if it is one
    of this transport's and not acked yet.

    The runtime puts it into the transaction that stores the message's effect, so the
    message is acked exactly when its effect is stored — late acks, one round trip
    fewer. Celery's own ack after the task then only does the local bookkeeping. Only
    valid when that transaction runs on the broker's Redis (``cluster/transport.py``
    checks). Taken once: a second commit in the same task acks nothing more.
    """
    current = getattr(_handling, "current", None)
    if current is None:
        return None
    _handling.current = None
    qos, tag = current
    if tag not in qos._delivered or tag in qos.acked_early:
        return None
    return EarlyAck(qos, tag)


class QoS(redis.QoS):
    """kombu's ack emulation for Redis, told which message is being handled."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.acked_early: set[str] = set()

    def append(self, message: Any, delivery_tag: str) -> None:
        super().append(message, delivery_tag)
        # Solo pool, prefetch 1: the task of this message runs next, on this thread.
        _handling.current = (self, delivery_tag)

    def ack(self, delivery_tag: str) -> None:
        self._forget(delivery_tag)
        if delivery_tag in self.acked_early:
            self.acked_early.discard(delivery_tag)
            virtual.QoS.ack(self, delivery_tag)  # Redis has it already: bookkeeping only
        else:
            super().ack(delivery_tag)

    def reject(self, delivery_tag: str, requeue: bool = False) -> None:
        self._forget(delivery_tag)
        if delivery_tag in self.acked_early:
            # Its effect is stored: requeueing it would only make a duplicate to drop.
            self.acked_early.discard(delivery_tag)
            virtual.QoS.ack(self, delivery_tag)
        else:
            super().reject(delivery_tag, requeue=requeue)

    @staticmethod
    def _forget(delivery_tag: str) -> None:
        current = getattr(_handling, "current", None)
        if current is not None and current[1] == delivery_tag:
            _handling.current = None


class Channel(redis.Channel):
    QoS = QoS
    _shared_client: Any = None
    _packed_keys: dict[tuple[str, int], bytes] | None = None

    def _brpop_start(self, timeout: Any = None) -> None:
        """kombu's ``_brpop_start``, with the command packed from cached pieces."""
        if self.global_keyprefix:  # keys are rewritten by the client then: kombu's way
            super()._brpop_start(timeout)
            return
        if timeout is None:
            timeout = self.brpop_timeout
        queues = self._queue_cycle.consume(len(self.active_queues))
        if not queues:
            return
        packed = self._packed_keys
        if packed is None or len(packed) > 4 * len(queues) * len(self.priority_steps) + 64:
            packed = self._packed_keys = {}  # forget queues no longer consumed
        parts = []
        for pri in self.priority_steps:
            for queue in queues:
                part = packed.get((queue, pri))
                if part is None:
                    key = self._q_for_pri(queue, pri).encode()
                    part = packed[(queue, pri)] = b"$%d\r\n%b\r\n" % (len(key), key)
                parts.append(part)
        connection = self.client.connection
        last = connection.encoder.encode(timeout or 0)
        command = b"".join([b"*%d\r\n$5\r\nBRPOP\r\n" % (len(parts) + 2), *parts, b"$%d\r\n%b\r\n" % (len(last), last)])
        self._in_poll = connection
        self._brpop_sent_at = monotonic()
        connection.send_packed_command([command])  # a list of chunks, as redis-py packs

    @contextmanager
    def conn_or_acquire(self, client: Any = None) -> Iterator[Any]:
        if client:
            yield client
            return
        shared = self._shared_client
        if shared is None or shared.connection_pool is not self.pool:
            shared = self._shared_client = self._create_client()
        yield shared

    def _put(self, queue: str, message: dict[str, Any], **kwargs: Any) -> None:
        taken = getattr(_captures, "taken", None)
        if taken is not None:
            taken.append((queue, message))
            return
        super()._put(queue, message, **kwargs)


class Transport(redis.Transport):
    Channel = Channel
