"""The one place that wires a worker's node to the layers above the engine.

A Celery worker serves one :class:`~cluster.engine.node.Node` for its shard
(``CUTLINE_SHARD`` of ``CUTLINE_SHARDS``). Beside it run the recorder (records from the
store into the database, ``snapshots/recorder.py``), the dashboard's publisher (steps
into frames, ``snapshots/live/publisher.py``) and the watchpoint starter
(``snapshots/watchpoints.py``). The engine cannot import them (they sit above it), so
:func:`build_worker` builds them and hands them over when the worker starts.
"""

from __future__ import annotations

import os

from celery import Celery
from django.conf import settings

from cluster.engine.node import Node
from cluster.engine.store import Store
from cluster.engine.transport import Transport
from cluster.engine.worker import Wiring


def shard_from_env() -> tuple[int, int]:
    shards = int(os.environ.get("CUTLINE_SHARDS", settings.CUTLINE["SHARDS"]))
    shard = int(os.environ.get("CUTLINE_SHARD", "0"))
    return shard, shards


def build_worker(app: Celery, hostname: str) -> Wiring:
    # Imported when the worker starts, not with this module: they import the models,
    # which need Django set up, and this module is loaded with the settings.
    from snapshots.live.publisher import FRAME_INTERVAL, Publisher  # noqa: PLC0415
    from snapshots.recorder import Recorder  # noqa: PLC0415
    from snapshots.watchpoints import watchpoint_hit  # noqa: PLC0415

    shard, shards = shard_from_env()
    store = Store.from_url(settings.REDIS_URL, settings.CUTLINE["EVENT_LOG_LIMIT"])
    publisher = Publisher(settings.REDIS_URL, shards=shards)
    node = Node(
        store,
        Transport(app),
        shard,
        shards,
        hostname=hostname,
        listener=publisher,
        on_watchpoint=watchpoint_hit,
    )
    recorder = Recorder(store)
    recorder.start()

    def close() -> None:
        publisher.close()
        recorder.stop()

    return Wiring(node=node, flush=publisher.flush, flush_interval=FRAME_INTERVAL, close=close)
