"""Re-delivering frames the broker lost, from the channel logs — and only those.

kombu's Redis transport takes a message off its list (BRPOP) *before* it files it as
unacknowledged. A worker killed between the two has the message in hand and nowhere
else: the broker will never deliver it again, and its channel stalls behind the gap
for good (or, for the last frame sent on a quiet channel, silently loses it — a token,
a marker). A BRPOP whose reply is lost with its connection loses its message the same
way. RabbitMQ has no such window, but nothing here depends on that.

So every frame is also written to its channel's log in the step that sends it
(``cluster/engine/store.py``), and the receiver's worker looks at the logs of its
incoming channels every :data:`REPAIR_INTERVAL`: it drops what its process has applied,
and delivers from the log what the broker has lost.

**Lost, not merely queued.** A frame's age says nothing: behind a backlog a frame waits
in its queue for as long as the backlog is. Handing such frames to the process (as an
age limit of 15 s once did) delivers each of them twice — from the log and then from the
broker — and every copy costs a step and a commit: more work, a longer backlog, more
"repairs" (a duplicate storm). The evidence used here is the queue's own order. When a
process has a frame that should have arrived by now, its worker sends a **probe** (the
task ``cluster.probe``) into the process's queue, behind everything in it. A queue is
FIFO and its one consumer takes one message at a time, so when the probe comes back
every frame published before it has been taken off the queue and handled: one of those
still unapplied, and not held behind a gap, is lost. A frame counts as published before
the probe when it was committed :data:`PUBLISH_GRACE` (plus its channel's delay fault)
before the probe was sent: the sender publishes right after its commit.

A probe can itself be lost in the same windows: one not back after :data:`PROBE_RESEND`
is followed by another (a late one still counts). After a crash, a frame delivered from
the log may still come from the broker too (a killed worker's unacked message, restored
after Redis's visibility timeout; an outbox resent by a restarted sender): the FIFO
receiver drops that copy and counts it as a duplicate, bounded by what the crash had in
hand. Lossy channels are left to retransmission (``cluster/engine/retransmit.py``).
"""

from __future__ import annotations

import logging
import time
import uuid

from cluster.core.links import Fault
from cluster.core.process import SimulatedProcess, Step
from cluster.core.wire import Frame, channel_id
from cluster.engine.node import Node, ServedRun

log = logging.getLogger("cutline.repair")

REPAIR_INTERVAL = 2.0  # seconds between looks at the channel logs
PUBLISH_GRACE = 5.0  # seconds from a frame's commit by which its sender has published it
PROBE_RESEND = 30.0  # seconds a probe may be out before another is sent
HEAD = 200  # unapplied frames per channel looked at: lost ones are the oldest


def repair(node: Node, now: float | None = None) -> int:
    """Trim the logs of every served channel, deliver lost frames and probe the queues
    of processes still waiting for a frame; return how many frames were delivered."""
    now = time.time() if now is None else now
    delivered = 0
    for run_id, run in list(node.runs.items()):
        procs = [p for p in (node.processes.get((run_id, name)) for name in run.mine) if p is not None]
        channels = [
            (src, proc.name, proc.receivers[src].last)
            for proc in procs
            for src in proc.incoming
            if channel_id(src, proc.name) not in run.lossy
        ]
        if not channels:
            continue
        heads = node.store.channel_backlog(run_id, channels, HEAD)
        steps: dict[str, tuple[SimulatedProcess, Step]] = {}
        waiting: set[str] = set()
        for (src, dst, _), head in zip(channels, heads, strict=True):
            proc = node.processes[(run_id, dst)]
            lost = _lost(node, run, src, dst, head, now, waiting)
            if not lost:
                continue
            log.warning(
                "run %s: the broker lost %d frames of %s→%s (seqs %d…%d); delivering them from the channel log",
                run_id,
                len(lost),
                src,
                dst,
                lost[0]["seq"],
                lost[-1]["seq"],
            )
            step = steps.setdefault(dst, (proc, Step()))[1]
            for frame in lost:
                step.extend(proc.receive(frame))
            delivered += len(lost)
        node.commit(run_id, list(steps.values()))
        for dst in sorted(waiting - steps.keys()):
            _probe(node, run, dst, now)
    return delivered


def _lost(
    node: Node,
    run: ServedRun,
    src: str,
    dst: str,
    head: list[tuple[float, Frame]],
    now: float,
    waiting: set[str],
) -> list[Frame]:
    """The frames of src→dst the broker has lost; adds ``dst`` to ``waiting`` when a frame
    is overdue but no probe has yet shown it lost."""
    receiver = node.processes[(run.id, dst)].receivers[src]
    grace = PUBLISH_GRACE + (node.links.fault(run.id, src, dst) or Fault()).max_delay()
    flushed = run.flushed.get(dst, 0.0)
    lost = []
    for sent_at, frame in head:
        seq = frame["seq"]
        if seq in receiver.held or seq in receiver.above or sent_at + grace >= now:
            continue
        if sent_at + grace < flushed:
            lost.append(frame)
        else:
            waiting.add(dst)
    return lost


def _probe(node: Node, run: ServedRun, dst: str, now: float) -> None:
    """Send a probe through ``dst``'s queue unless one is out already (and not long lost)."""
    out = run.probes.setdefault(dst, {})
    if out and now - max(out.values()) < PROBE_RESEND:
        return
    # Random ids: a restarted worker must not take a probe its predecessor sent for its own.
    probe = uuid.uuid4().hex
    out[probe] = now
    node.transport.send_probe(run.id, dst, probe)
