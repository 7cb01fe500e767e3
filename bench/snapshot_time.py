"""Snapshot completion time against the marker propagation floor, by graph size.

For each graph a run is started under a light background load (the same total message
rate whatever the size); once the workers report consuming every process queue,
snapshots are taken one after another, each waited for as ``manage.py snapshot`` waits. Two durations per snapshot:

* **complete**: ``started_at`` → ``finished_at`` in the database, what a user waits
  for: markers crossing every channel, records reaching the database, the verdict;
* **markers**: from the initiate event to the last ``local_done`` event in the event
  log, the Chandy–Lamport part alone.

The floor is (diameter + 1) × the per-hop p50 measured in the latency section: a marker
needs at least ``diameter`` hops to reach the farthest process, and one more to cross
the channels out of it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from bench import runs
from bench.stats import percentile

SNAPSHOT_TIMEOUT = 120.0


@dataclass
class SnapshotTimes:
    graph: str
    processes: int
    channels: int
    diameter: int
    complete_s: list[float] = field(default_factory=list)
    markers_s: list[float] = field(default_factory=list)
    marker_hop_ms: list[float] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def p(self, which: str, q: float) -> float:
        return percentile(getattr(self, which), q)


def _marker_span(evts: list[dict[str, Any]], snapshot: int) -> float | None:
    """Seconds from the snapshot's initiate event to its last process's local_done."""
    start = [e["t"] for e in evts if e["kind"] == "initiate" and e.get("snapshot") == snapshot]
    done = [e["t"] for e in evts if e["kind"] == "local_done" and e.get("snapshot") == snapshot]
    if not start or not done:
        return None
    return max(done) - min(start)


def measure(system: Any, spec: dict[str, Any], label: str, snapshots: int, total_rate: float) -> SnapshotTimes:
    from snapshots import services

    n = len(spec["processes"])
    result = SnapshotTimes(label, n, len(spec["channels"]), runs.diameter(spec))
    name = runs.topology(spec)
    run_id = runs.start(name, rate=total_rate / n)
    try:
        runs.wait_until_served(system, run_id, n)
        runs.wait_until_applying(run_id)
        run = services.get_run(run_id)
        for _ in range(snapshots):
            snapshot = services.start_snapshot(run)
            done = services.wait_for_snapshot(snapshot.pk, SNAPSHOT_TIMEOUT)
            if done.status != "complete" or not done.verdict or not done.verdict["consistent"]:
                result.failed.append(f"snapshot {done.pk}: {done.status} {done.reason or ''}".strip())
                continue
            result.complete_s.append(done.duration or 0.0)
            # The newest events hold this snapshot's (two per process, four per channel)
            # and the background load's (two per message) while it ran.
            background = 2 * total_rate * (done.duration or 0.0)
            evts = runs.events(run_id, limit=int(2 * (2 * n + 4 * len(spec["channels"]) + background)) + 1000)
            span = _marker_span(evts, done.pk)
            if span is not None:
                result.markers_s.append(span)
            result.marker_hop_ms.extend(
                runs.hop_latencies([e for e in evts if e.get("snapshot") == done.pk], "marker_send", "marker_receive")
            )
    finally:
        runs.stop(system, run_id)
    return result


def measure_all(
    system: Any, sizes: tuple[int, ...], snapshots: dict[int, int], total_rate: float, say: Any = print
) -> list[SnapshotTimes]:
    out = []
    for n in sizes:
        for label, spec in (("ring", runs.ring(n)), ("random", runs.sparse(n))):
            started = time.monotonic()
            times = measure(system, spec, label, snapshots[n], total_rate)
            say(
                f"  {label} n={n}: diameter {times.diameter}, complete p50 {times.p('complete_s', 50):.3f} s,"
                f" markers p50 {times.p('markers_s', 50):.3f} s ({time.monotonic() - started:.0f} s)"
                + (f", FAILED: {times.failed}" if times.failed else "")
            )
            out.append(times)
    return out
