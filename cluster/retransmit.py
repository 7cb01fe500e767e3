"""Retransmission on lossy channels: the sender resends until the receiver has the frame.

A lossy channel (``loss`` > 0, see ``cluster/links.py``) drops transmissions at random;
the sender cannot tell which. What it can see is its channel's log (``cluster/store.py``):
every frame it sent stays there until the receiver acknowledges it, and the receiver
acknowledges a lossy channel's frames in the same commit that applies them
(``StepCommit.acks``) — including frames it holds behind a gap, so only the gap itself
is resent (selective repeat). So every :data:`RETRANSMIT_INTERVAL` the sender's worker looks
at the logs of its processes' lossy outgoing channels and sends again every frame that
has waited longer than its retransmission timeout — which starts at the channel's
longest delay plus :data:`BASE_TIMEOUT` and doubles on every retry, up to
:data:`MAX_TIMEOUT`, and at most :data:`MAX_BURST` frames per channel go per look, so
a slow or backlogged receiver is not flooded with copies. A retransmission can be lost
too; one that arrives after all is dropped by the receiver as a duplicate (by seq).
Markers travel the same way, so a snapshot still finishes on a lossy link.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass

from cluster.links import channel_name
from cluster.runtime import Node

RETRANSMIT_INTERVAL = 0.25  # seconds between looks at the lossy channels' logs
BASE_TIMEOUT = 0.4  # seconds, on top of the channel's own delay, before the first retry
MAX_TIMEOUT = 4.0
MAX_BURST = 50  # frames per channel per look


@dataclass
class Pending:
    """When a frame not yet acknowledged is next due to be sent, and how often it was."""

    due: float
    timeout: float
    retries: int = 0


class Retransmitter:
    def __init__(self) -> None:
        # (run, src, dst, seq) → its retransmission schedule
        self.pending: dict[tuple[int, str, str, int], Pending] = {}

    def forget(self, run: int) -> None:
        self.pending = {k: v for k, v in self.pending.items() if k[0] != run}

    def tick(self, node: Node, now: float | None = None) -> int:
        """Resend what is due on every lossy channel this node sends on; return how many."""
        now = time.time() if now is None else now
        resent = 0
        seen: set[tuple[int, str, str, int]] = set()
        lost_by_run = node.links.take_lost()
        for run_id, run in list(node.runs.items()):
            retries: Counter[str] = Counter()
            frames = []
            for src in run.mine:
                proc = node.processes.get((run_id, src))
                if proc is None:
                    continue
                for dst in proc.outgoing:
                    fault = node.links.fault(run_id, src, dst)
                    if fault is None or not fault.loss:
                        continue
                    burst = 0
                    for sent_at, frame in node.store.channel_log(run_id, src, dst):
                        key = (run_id, src, dst, frame["seq"])
                        seen.add(key)
                        if burst >= MAX_BURST:
                            continue
                        first_timeout = fault.max_delay() + BASE_TIMEOUT
                        pending = self.pending.setdefault(key, Pending(sent_at + first_timeout, first_timeout))
                        if now < pending.due:
                            continue
                        pending.retries += 1
                        pending.timeout = min(pending.timeout * 2, MAX_TIMEOUT)
                        pending.due = now + pending.timeout
                        retries[channel_name(src, dst)] += 1
                        frames.append(frame)
                        burst += 1
            if frames:
                node.send(run_id, frames)
                resent += len(frames)
            lost = lost_by_run.get(run_id, {})
            if retries or lost:
                node.store.count_faults(run_id, dict(retries), lost)
        # Acknowledged frames have left the logs: forget their schedules.
        self.pending = {k: v for k, v in self.pending.items() if k in seen}
        return resent
