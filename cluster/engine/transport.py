"""Putting frames on the broker: one Celery queue per simulated process.

A frame for process ``q`` of run ``r`` is a ``cluster.deliver`` task on the queue
``cutline.r<r>.<q>``. Markers travel in the same queue as the messages of their channel,
never as a broadcast, so the broker's per-queue order is the channel's order (and the
sequence numbers repair whatever order the broker loses).
"""

from __future__ import annotations

import contextlib

from celery import Celery

from cluster.core.wire import CHANDY_LAMPORT, Frame

DELIVER = "cluster.deliver"
INITIATE = "cluster.initiate"
PROBE = "cluster.probe"


def queue_name(run: int, process: str) -> str:
    return f"cutline.r{run}.{process}"


class Transport:
    def __init__(self, app: Celery) -> None:
        self.app = app

    def send_frames(self, run: int, frames: list[Frame]) -> None:
        if not frames:
            return
        with self.app.producer_or_acquire() as producer:
            for frame in frames:
                self.app.send_task(
                    DELIVER,
                    args=[run, frame],
                    queue=queue_name(run, frame["dst"]),
                    producer=producer,
                    # The frame is its own description; skip Celery's repr of the arguments.
                    argsrepr="",
                    kwargsrepr="",
                )

    def send_initiate(
        self, run: int, process: str, snapshot: int, algorithm: str = CHANDY_LAMPORT, epoch: int = 0
    ) -> None:
        """The initiate request goes into the initiator's own queue, behind its pending frames."""
        self.app.send_task(
            INITIATE,
            args=[run, process, snapshot],
            kwargs={"algorithm": algorithm, "epoch": epoch},
            queue=queue_name(run, process),
        )

    def send_probe(self, run: int, process: str, probe: str) -> None:
        """A probe goes into the process's queue behind every frame in it (``cluster/engine/repair.py``)."""
        self.app.send_task(PROBE, args=[run, process, probe], queue=queue_name(run, process))

    def purge(self, run: int, processes: list[str]) -> None:
        """Drop every frame the broker still holds for these processes of ``run``."""
        with self.app.connection_for_write() as connection:
            for name in processes:
                # A fresh channel each time: on AMQP a failed purge closes its channel.
                with contextlib.suppress(Exception), connection.channel() as channel:
                    channel.queue_purge(queue_name(run, name))
