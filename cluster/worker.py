"""The Cutline part of a Celery worker: its node, its timers and its record flusher.

A consumer bootstep builds one :class:`~cluster.runtime.Node` per worker process for
the shard given by ``CUTLINE_SHARD`` of ``CUTLINE_SHARDS``. Everything that touches
process state runs on the worker's event loop (tasks in the solo pool, and the timers
below), so the node needs no locks. Storing records in the database is slow and
touches no process state, so it runs in a thread of its own (``cluster/recorder.py``).
The node tells the dashboard's publisher of every step; a timer flushes it into at most
20 frames per second per run, sent from a thread of its own (``snapshots/events.py``).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from celery import bootsteps
from django.conf import settings

from cluster.repair import REPAIR_INTERVAL, repair
from cluster.retransmit import RETRANSMIT_INTERVAL, Retransmitter
from cluster.runtime import Node
from cluster.store import Store
from cluster.transport import Transport

log = logging.getLogger("cutline.worker")

TICK_INTERVAL = 0.02  # workload steps are batched into ticks this far apart
REFRESH_INTERVAL = 0.5  # how often a worker looks for new, changed or stopped runs

_node: Node | None = None
_publisher: Any = None  # snapshots.events.Publisher, imported once Django is ready


def current_node() -> Node:
    if _node is None:
        raise RuntimeError("this worker has no Cutline node: is the CutlineNode bootstep installed?")
    return _node


def shard_from_env() -> tuple[int, int]:
    shards = int(os.environ.get("CUTLINE_SHARDS", settings.CUTLINE["SHARDS"]))
    shard = int(os.environ.get("CUTLINE_SHARD", "0"))
    return shard, shards


class CutlineNode(bootsteps.StartStopStep):
    """Serve this worker's shard of the simulated processes."""

    requires = {"celery.worker.consumer.tasks:Tasks"}

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self.timers: list[Any] = []
        self.recorder: Any = None
        self.retransmitter = Retransmitter()

    def start(self, c: Any) -> None:
        global _node, _publisher
        from cluster.recorder import Recorder
        from snapshots.events import FRAME_INTERVAL, Publisher
        from snapshots.watch import watchpoint_hit

        if _node is None:
            shard, shards = shard_from_env()
            store = Store.from_url(settings.REDIS_URL, settings.CUTLINE["EVENT_LOG_LIMIT"])
            _publisher = Publisher(settings.REDIS_URL, shards=shards)
            _node = Node(
                store,
                Transport(c.app),
                shard,
                shards,
                hostname=c.hostname,
                listener=_publisher,
                on_watchpoint=watchpoint_hit,
            )
            self.recorder = Recorder(store)
            self.recorder.start()
        self.timers = [
            # Queues are consumed from the event loop only: this step starts before the
            # loop has given the task consumer its message callback, and on AMQP a queue
            # consumed now is delivered a message nothing can take ("Consumer does not
            # have any callbacks"), which wedges the channel (prefetch 1) for good.
            c.timer.call_after(0.0, self._resume, (c,)),
            c.timer.call_repeatedly(REFRESH_INTERVAL, self._refresh, (c,)),
            c.timer.call_repeatedly(TICK_INTERVAL, self._tick),
            c.timer.call_repeatedly(FRAME_INTERVAL, self._flush),
            c.timer.call_repeatedly(REPAIR_INTERVAL, self._repair),
            c.timer.call_repeatedly(RETRANSMIT_INTERVAL, self._retransmit),
        ]

    @classmethod
    def _resume(cls, c: Any) -> None:
        # A consumer restart (say, after the broker came back) rebuilds the task consumer
        # with the command-line queues only: consume the served processes' queues again.
        for queue in current_node().queues():
            c.add_task_queue(queue)
        cls._refresh(c)

    @staticmethod
    def _refresh(c: Any) -> None:
        try:
            current_node().refresh(c.add_task_queue, c.cancel_task_queue)
        except Exception:  # the loop must survive a store hiccup; the next refresh retries
            log.exception("refreshing runs failed")

    @staticmethod
    def _tick() -> None:
        try:
            current_node().tick()
        except Exception:
            log.exception("workload tick failed")

    @staticmethod
    def _repair() -> None:
        try:
            repair(current_node())
        except Exception:  # the next look retries; the processes must go on meanwhile
            log.exception("repairing channels failed")

    def _retransmit(self) -> None:
        try:
            self.retransmitter.tick(current_node())
        except Exception:  # the next look retries
            log.exception("retransmitting on lossy channels failed")

    @staticmethod
    def _flush() -> None:
        try:
            if _publisher is not None:
                _publisher.flush()
        except Exception:  # the dashboard is a hint: never let it stop the processes
            log.exception("publishing to the dashboard failed")

    def stop(self, c: Any) -> None:
        for tref in self.timers:
            tref.cancel()
        self.timers = []

    def shutdown(self, c: Any) -> None:
        self.stop(c)
        if _node is not None:
            _node.forget_outboxes()
        if _publisher is not None:
            _publisher.close()
        if self.recorder is not None:
            self.recorder.stop()
