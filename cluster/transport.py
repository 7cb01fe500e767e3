"""Putting frames on the broker: one Celery queue per simulated process.

A frame for process ``q`` of run ``r`` is a ``cluster.deliver`` task on the queue
``cutline.r<r>.<q>``. Markers travel in the same queue as the messages of their channel,
never as a broadcast, so the broker's per-queue order is the channel's order (and the
sequence numbers repair whatever order the broker loses).
"""

from __future__ import annotations

from typing import Any

from celery import Celery

DELIVER = "cluster.deliver"
INITIATE = "cluster.initiate"


def queue_name(run: int, process: str) -> str:
    return f"cutline.r{run}.{process}"


def shard_queue(shard: int) -> str:
    """Every worker also consumes one queue of its own, so it starts with a queue at all."""
    return f"cutline.shard.{shard}"


class Transport:
    def __init__(self, app: Celery) -> None:
        self.app = app

    def send_frames(self, run: int, frames: list[dict[str, Any]]) -> None:
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
        self, run: int, process: str, snapshot: int, algorithm: str = "chandy-lamport", epoch: int = 0
    ) -> None:
        """The initiate request goes into the initiator's own queue, behind its pending frames."""
        self.app.send_task(
            INITIATE,
            args=[run, process, snapshot],
            kwargs={"algorithm": algorithm, "epoch": epoch},
            queue=queue_name(run, process),
        )
