"""Per-hop delivery latency: a frame's send step → the step that applies it at the receiver.

A run under light load (so frames do not queue behind each other) is left to log its
events; every ``send`` event is paired with the ``receive`` event of the same frame
(channel and seq). Both carry the wall-clock time of their step on one machine, so the
difference is the hop as the processes see it: the sender's commit and publish, the
broker, the receiver's consume, FIFO check and apply. Compared with a raw Redis hop and
a plain Celery task hop measured in the same run (``bench/baselines.py``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from bench import runs
from bench.stats import percentile


@dataclass
class ClusterHop:
    p50_ms: float
    p95_ms: float
    samples: int
    topology: str
    rate: float


def cluster_hop(system: Any, seconds: float, processes: int = 10, rate: float = 5.0) -> ClusterHop:
    spec = runs.ring(processes, two_way=True)
    run_id = runs.start(runs.topology(spec), rate=rate)
    try:
        runs.wait_until_applying(run_id)
        time.sleep(0.5)  # past the start, when the workers attach the run's queues
        skip = len(runs.events(run_id))
        time.sleep(seconds)
    finally:
        runs.stop(system, run_id)
    evts = runs.events(run_id)[skip:]
    hops = runs.hop_latencies(evts, "send", "receive")
    label = f"ring2-{processes} ({len(spec['channels'])} channels)"
    return ClusterHop(percentile(hops, 50), percentile(hops, 95), len(hops), label, rate)
