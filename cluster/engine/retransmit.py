"""Retransmission on lossy channels: the sender resends until the receiver has the frame.

A lossy channel (``loss`` > 0, see ``cluster/core/links.py``) drops transmissions at random;
the sender cannot tell which. What it can see is its channel's log (``cluster/engine/store.py``):
every frame it sent stays there until the receiver acknowledges it, and the receiver
acknowledges a lossy channel's frames in the same commit that takes them in
(``StepCommit.acks``): the prefix it has applied, plus a frame it holds behind a gap or
applied out of order. So every :data:`RETRANSMIT_INTERVAL` the sender's worker looks at
the logs of its processes' lossy outgoing channels and resends a frame that is

* **overtaken** — a later frame of the channel was acknowledged, so this one is most
  likely lost (the broker's queue is FIFO; a reordering channel's jitter is waited out):
  resent :data:`GAP_TIMEOUT` after it was sent, on top of the channel's longest delay;
* or **overdue** — nothing later came through (the last frames on a quiet channel, or a
  receiver behind a backlog): resent only after :data:`TAIL_TIMEOUT`, and only the
  oldest one per channel per look — a probe: frames merely queued behind a backlog are
  not flooded with copies, which would only lengthen the backlog (congestion collapse).

Only the oldest :data:`HEAD` unacknowledged frames of a channel are looked at: lost
frames are at the head (the rest are behind them), and a backlogged channel's log can
hold thousands.

An overtaken frame's timeout grows by half of :data:`GAP_TIMEOUT` per retry: the loss
is random, not congestion — the later frames got through — so it keeps being resent
often (at loss 0.3 a frame lost seven times in a row is one in 4,500; with doubling
timeouts that alone took a channel past the 15 s repair in CI). An overdue frame's
timeout doubles, up to :data:`MAX_TIMEOUT`, since nothing shows the channel is moving.
At most :data:`MAX_BURST` frames per channel go per look. A retransmission can be lost
too; one that arrives after all is dropped by the receiver as a duplicate (by seq).
Markers travel the same way, so a snapshot still finishes on a lossy link. A channel
whose loss is switched off is still served, for the frames sent before, until they
have all come through (``ServedRun.lossy``).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass

from cluster.core.links import Fault
from cluster.core.wire import channel_id
from cluster.engine.node import Node

RETRANSMIT_INTERVAL = 0.25  # seconds between looks at the lossy channels' logs
GAP_TIMEOUT = 0.3  # seconds (plus the channel's delay) before an overtaken frame is resent
TAIL_TIMEOUT = 2.0  # seconds (plus the channel's delay) before any unacknowledged frame is
MAX_TIMEOUT = 4.0
MAX_BURST = 50  # frames per channel per look
HEAD = 200  # unacknowledged frames per channel looked at


@dataclass
class Pending:
    """When a frame not yet acknowledged is next due to be sent, and how often it was."""

    due: float
    timeout: float
    retries: int = 0
    last: float = 0.0  # when it was last sent


class Retransmitter:
    def __init__(self) -> None:
        # (run, src, dst, seq) → its retransmission schedule
        self.pending: dict[tuple[int, str, str, int], Pending] = {}

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
                    channel = channel_id(src, dst)
                    if channel not in run.lossy:
                        continue
                    lost_up_to = run.lossy[channel]  # None: still lossy
                    delay = (node.links.fault(run_id, src, dst) or Fault()).max_delay()
                    total, entries = node.store.channel_head(run_id, src, dst, HEAD)
                    if lost_up_to is not None and (not entries or entries[0][1]["seq"] > lost_up_to):
                        del run.lossy[channel]  # all it lost has come through
                        continue
                    burst = 0
                    probed = False
                    for i, (sent_at, frame) in enumerate(entries):
                        key = (run_id, src, dst, frame["seq"])
                        seen.add(key)
                        if burst >= MAX_BURST or (lost_up_to is not None and frame["seq"] > lost_up_to):
                            continue
                        # Seqs above this one that are no longer in the log were acknowledged.
                        overtaken = proc.sent[dst] - frame["seq"] > total - i - 1
                        wait = delay + (GAP_TIMEOUT if overtaken else TAIL_TIMEOUT)
                        pending = self.pending.get(key)
                        if pending is None or pending.retries == 0:
                            pending = self.pending[key] = Pending(sent_at + wait, wait, last=sent_at)
                        elif overtaken:
                            # Seen overtaken since its last resend: no need to wait out a doubled timeout.
                            gap = delay + GAP_TIMEOUT * (1 + pending.retries / 2)
                            pending.due = min(pending.due, pending.last + min(gap, delay + MAX_TIMEOUT))
                        if now < pending.due or (not overtaken and probed):
                            continue
                        probed = probed or not overtaken
                        pending.retries += 1
                        if overtaken:
                            pending.timeout = min(delay + GAP_TIMEOUT * (1 + pending.retries / 2), delay + MAX_TIMEOUT)
                        else:
                            pending.timeout = min(pending.timeout * 2, delay + MAX_TIMEOUT)
                        pending.due = now + pending.timeout
                        pending.last = now
                        retries[channel_id(src, dst)] += 1
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
