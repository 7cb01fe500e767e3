"""Re-delivering frames the broker lost, from the channel logs.

kombu's Redis transport takes a message off its list (BRPOP) *before* it files it as
unacknowledged. A worker killed between the two has the message in hand and nowhere
else: the broker will never deliver it again, and its channel stalls behind the gap
for good (or, for the last frame sent on a quiet channel, silently loses it — a token,
a marker). RabbitMQ has no such window, but nothing here depends on that.

So every frame is also written to its channel's log in the step that sends it
(``cluster/engine/store.py``), and the receiver's worker looks at the logs of its incoming
channels every few seconds: it drops what its process has applied, and when the oldest
frame still waiting was sent longer ago than :data:`REPAIR_AFTER`, it hands every
waiting frame to the process itself. The FIFO receiver does the rest: it applies them
in seq order, and drops the broker's copy as a duplicate if that ever arrives after all.
:data:`REPAIR_AFTER` is longer than Redis's redelivery of unacked messages (10 s + a 2 s
sweep), so the broker's own recovery goes first and this is the last resort.
"""

from __future__ import annotations

import logging
import time

from cluster.core.process import SimulatedProcess, Step
from cluster.engine.node import Node

log = logging.getLogger("cutline.repair")

REPAIR_INTERVAL = 2.0  # seconds between looks at the channel logs
REPAIR_AFTER = 15.0  # seconds a frame may wait in its channel before it is delivered from the log


def repair(node: Node, now: float | None = None) -> int:
    """Trim the logs of every served channel and deliver stuck frames; return how many."""
    now = time.time() if now is None else now
    delivered = 0
    for run_id, run in list(node.runs.items()):
        procs = [p for p in (node.processes.get((run_id, name)) for name in run.mine) if p is not None]
        channels = [(src, proc.name, proc.receivers[src].last) for proc in procs for src in proc.incoming]
        if not channels:
            continue
        backlogs = node.store.channel_backlog(run_id, channels)
        steps: dict[str, tuple[SimulatedProcess, Step]] = {}
        for (src, dst, applied), backlog in zip(channels, backlogs, strict=True):
            if backlog is None or now - backlog[0] < REPAIR_AFTER:
                continue
            oldest, frames = backlog
            proc = node.processes[(run_id, dst)]
            log.warning(
                "run %s: %s→%s has waited %.0f s for seq %d; delivering %d frames from the channel log",
                run_id,
                src,
                dst,
                now - oldest,
                applied + 1,
                len(frames),
            )
            step = steps.setdefault(dst, (proc, Step()))[1]
            for frame in frames:
                step.extend(proc.receive(frame))
            delivered += len(frames)
        node.commit(run_id, list(steps.values()))
    return delivered
