"""The Cutline part of a Celery worker: its node, its timers, and what runs beside them.

A consumer bootstep serves one :class:`~cluster.engine.node.Node` per worker process.
Everything that touches process state runs on the worker's event loop (tasks in the solo
pool, and the timers below), so the node needs no locks.

The engine knows nothing of the database or the dashboard. What a worker runs beside
its node — the recorder that stores records in the database (``snapshots/recorder.py``),
the publisher that turns steps into dashboard frames (``snapshots/live/publisher.py``),
the watchpoint starter — is built by ``config/worker.py``, the one place that wires the
layers together, and handed over as a :class:`Wiring` when the worker starts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from celery import Celery, bootsteps

from cluster.engine.flow import FLOW_INTERVAL, FlowControl
from cluster.engine.node import Node
from cluster.engine.repair import REPAIR_INTERVAL, repair
from cluster.engine.retransmit import RETRANSMIT_INTERVAL, Retransmitter

log = logging.getLogger("cutline.worker")

TICK_INTERVAL = 0.02  # workload steps are batched into ticks this far apart
REFRESH_INTERVAL = 0.5  # how often a worker looks for new, changed or stopped runs


@dataclass
class Wiring:
    """A worker's node and its companions, built for the worker's Celery app and host name."""

    node: Node
    flush: Callable[[], None]  # publish what the steps did: called every ``flush_interval`` s
    flush_interval: float
    close: Callable[[], None]  # stop the companions, once the node has stopped


Build = Callable[[Celery, str], Wiring]

_build: Build | None = None
_wiring: Wiring | None = None


def install(app: Celery, build: Build) -> None:
    """Make every worker of ``app`` serve a node that ``build`` makes at start-up."""
    global _build
    _build = build
    app.steps["consumer"].add(CutlineNode)


def current_node() -> Node:
    if _wiring is None:
        raise RuntimeError("this worker has no Cutline node: is the CutlineNode bootstep installed?")
    return _wiring.node


class CutlineNode(bootsteps.StartStopStep):
    """Serve this worker's shard of the simulated processes."""

    requires = {"celery.worker.consumer.tasks:Tasks"}

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self.timers: list[Any] = []
        self.retransmitter = Retransmitter()
        self.flow = FlowControl()

    def start(self, c: Any) -> None:
        global _wiring
        if _wiring is None:
            if _build is None:
                raise RuntimeError("install() was not called: nothing builds this worker's node")
            _wiring = _build(c.app, c.hostname)
        wiring = _wiring
        self.timers = [
            # Queues are consumed from the event loop only: this step starts before the
            # loop has given the task consumer its message callback, and on AMQP a queue
            # consumed now is delivered a message nothing can take ("Consumer does not
            # have any callbacks"), which wedges the channel (prefetch 1) for good.
            c.timer.call_after(0.0, self._resume, (c,)),
            c.timer.call_repeatedly(REFRESH_INTERVAL, self._refresh, (c,)),
            c.timer.call_repeatedly(TICK_INTERVAL, self._tick),
            c.timer.call_repeatedly(wiring.flush_interval, self._flush),
            c.timer.call_repeatedly(REPAIR_INTERVAL, self._repair),
            c.timer.call_repeatedly(RETRANSMIT_INTERVAL, self._retransmit),
            c.timer.call_repeatedly(FLOW_INTERVAL, self._exchange_flow),
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

    def _exchange_flow(self) -> None:
        try:
            self.flow.tick(current_node())
        except Exception:  # the next exchange retries; meanwhile senders keep their last view
            log.exception("exchanging flow control credit failed")

    @staticmethod
    def _flush() -> None:
        try:
            if _wiring is not None:
                _wiring.flush()
        except Exception:  # the dashboard is a hint: never let it stop the processes
            log.exception("publishing to the dashboard failed")

    def stop(self, c: Any) -> None:
        for tref in self.timers:
            tref.cancel()
        self.timers = []

    def shutdown(self, c: Any) -> None:
        self.stop(c)
        if _wiring is not None:
            _wiring.node.forget_outboxes()
            _wiring.close()
