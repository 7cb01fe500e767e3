"""Flow control between workers: the receivers' credit out, the senders' view in, rates reported.

The rule is pure (``cluster/core/flow.py``); this is its exchange through the store.
Every :data:`FLOW_INTERVAL` each worker publishes how many frames its processes have
applied on each incoming channel (only what changed), and reads the same for its
processes' outgoing channels, which :meth:`Node.tick` compares with what they have
sent. Every :data:`REPORT_INTERVAL` it reports, per run, the workload steps it took
and held back per second and the channels that held them back, for the run's status
(``snapshots/services.py`` ``run_status``).
"""

from __future__ import annotations

import time

from cluster.core.wire import channel_id
from cluster.engine.node import Node

FLOW_INTERVAL = 0.25  # seconds between exchanges of the applied counts
REPORT_INTERVAL = 1.0  # seconds between reports of a run's rates
REPORTED_CHANNELS = 20  # full channels named in a report, at most


class FlowControl:
    def __init__(self) -> None:
        self.published: dict[tuple[int, str], int] = {}  # (run, "p→q") → applied, as last published
        self.reported_at = time.monotonic()

    def tick(self, node: Node, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        for run_id, run in list(node.runs.items()):
            procs = [p for p in (node.processes.get((run_id, name)) for name in run.mine) if p is not None]
            changed = {}
            for proc in procs:
                for src in proc.incoming:
                    channel = channel_id(src, proc.name)
                    applied = proc.applied[src] + len(proc.applied_above[src])
                    if self.published.get((run_id, channel)) != applied:
                        changed[channel] = applied
            node.store.publish_applied(run_id, changed)
            self.published.update(((run_id, c), n) for c, n in changed.items())
            if run.window:
                run.applied = node.store.applied(run_id, [channel_id(p.name, d) for p in procs for d in p.outgoing])
        if now - self.reported_at >= REPORT_INTERVAL:
            self.report(node, now - self.reported_at)
            self.reported_at = now
        self.published = {k: v for k, v in self.published.items() if k[0] in node.runs}

    @staticmethod
    def report(node: Node, elapsed: float) -> None:
        for run_id, run in list(node.runs.items()):
            node.store.report_flow(
                run_id,
                node.shard,
                {
                    "t": time.time(),
                    "achieved": run.steps / elapsed,
                    "held_back": run.held_back / elapsed,
                    "full": sorted(run.full)[:REPORTED_CHANNELS],
                },
            )
            run.steps = run.held_back = 0
            run.full.clear()
