"""kombu's Redis transport, minus one cost per published message.

kombu builds a new ``redis.Redis`` client object for every message it publishes (see
``Channel.conn_or_acquire``); with redis-py 6+ that object copies ~170 response
callbacks, which measured ~40% of the time to publish a task here. This channel keeps
one client per channel (redis-py clients are safe to share: they borrow a connection
from the pool per command) and rebuilds it when the channel's pool changes.

A message kombu requeues (``reject(requeue=True)``) goes back to the *consuming* end of
its list, where it was taken from. kombu pushes it at the other end, behind every newer
message of its queue: at a warm shutdown the reply to the BRPOP in flight is read, finds
no consumer any more and is requeued that way, and its channel then saw the frames after
it first (a gap, a reorder) — in about half of the warm restarts measured here.
Used only when the broker is Redis; ``cluster/engine/celery_conf.py`` selects it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kombu.transport import redis, virtual


class QoS(redis.QoS):
    def reject(self, delivery_tag: str, requeue: bool = False) -> None:
        if not requeue:
            super().reject(delivery_tag, requeue=False)
            return
        # kombu's own reject restores with leftmost=True: LPUSH, the end new messages
        # join. The message was the oldest of its queue: RPUSH puts it next in line.
        self.restore_by_tag(delivery_tag, leftmost=False)
        virtual.QoS.ack(self, delivery_tag)  # what kombu's reject does after restoring


class Channel(redis.Channel):
    QoS = QoS
    _shared_client: Any = None

    @contextmanager
    def conn_or_acquire(self, client: Any = None) -> Iterator[Any]:
        if client:
            yield client
            return
        shared = self._shared_client
        if shared is None or shared.connection_pool is not self.pool:
            shared = self._shared_client = self._create_client()
        yield shared


class Transport(redis.Transport):
    Channel = Channel
