"""kombu's Redis transport, minus one cost per published message.

kombu builds a new ``redis.Redis`` client object for every message it publishes (see
``Channel.conn_or_acquire``); with redis-py 6+ that object copies ~170 response
callbacks, which measured ~40% of the time to publish a task here. This channel keeps
one client per channel (redis-py clients are safe to share: they borrow a connection
from the pool per command) and rebuilds it when the channel's pool changes.
Used only when the broker is Redis; ``config/celery.py`` selects it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kombu.transport import redis


class Channel(redis.Channel):
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
