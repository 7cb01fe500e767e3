"""What several uses share: the plans, the run and snapshot helpers, and the saturated run
that sections 3 (loss) and 4 (watchpoints) measure on, one after the other."""

from __future__ import annotations

import math
import os
import statistics
import time
from dataclasses import dataclass
from typing import Any

from bench.stats import percentile

CL, LY = "chandy-lamport", "lai-yang"
SNAPSHOT_LOAD = 100.0  # background messages/s, whole run, while snapshots are timed
SETTLE = 1.0  # after a status, rate, fault or watchpoint change: workers look every 0.5 s
SATURATE = 1.3  # × the ramp's best rate: more than the clean cluster carries, whatever the ramp's noise
RING2_N = 10  # processes of the run sections 3 and 4 share


def say(text: str = "") -> None:
    print(text, flush=True)


@dataclass(frozen=True)
class Plan:
    name: str
    pairs: dict[str, int]  # algorithms: CL/LY pairs per graph
    restores: int  # per size
    ramp_window: float
    loss_window: float
    loss_rounds: int  # saturating windows: rounds of (clean, 0.1, 0.3), every other one reversed
    moderate_rounds: int  # the same at the moderate rate
    snapshot_rounds: int  # blocks of snapshots per loss level
    loss_snapshots: int  # per block (loss 0.3: one, they take ~15 s each)
    watch_window: float
    watch_pairs: int
    reorder_snapshots: int  # per algorithm
    red_cap: int  # Lai–Yang snapshots to fill the red list on ring-10 (0: don't)


FULL = Plan("full", {"ring-10": 10, "ring-100": 6, "random-100": 6}, 3, 1.5, 3.0, 1, 2, 2, 2, 2.5, 4, 15, 64)
QUICK = Plan("quick", {"ring-10": 3, "ring-100": 2, "random-100": 2}, 1, 1.0, 1.0, 0, 1, 1, 1, 1.5, 1, 5, 0)


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def sound(snapshot: Any) -> bool:

    return snapshot.is_sound


def problem_of(snapshot: Any) -> str:
    if snapshot.status != "complete":
        return f"snapshot {snapshot.pk} {snapshot.status}: {snapshot.reason}"
    problems = (snapshot.verdict or {}).get("problems") or []
    return f"snapshot {snapshot.pk}: {problems[0] if problems else 'sound'}"


def p50(values: list[float]) -> float:
    return percentile(values, 50)


def p95(values: list[float]) -> float:
    return percentile(values, 95)


def ms(seconds: float) -> float:
    return seconds * 1000 if not math.isnan(seconds) else math.nan


def mean(values: list[float]) -> float:
    return statistics.mean(values) if values else math.nan


def start_served(system: Any, spec: dict[str, Any], total_rate: float) -> int:
    from bench import runs

    n = len(spec["processes"])
    run_id = runs.start(runs.topology(spec), rate=total_rate / n)
    runs.wait_until_served(system, run_id, n)
    runs.wait_until_applying(run_id)
    return run_id


def drain(run_id: int, timeout: float = 60.0) -> float:
    """Pause and wait until every message sent is applied; return how long it took."""
    from bench import throughput

    t0 = time.monotonic()
    throughput._drain(run_id, timeout)
    return time.monotonic() - t0


# --- the saturated run of sections 3 and 4 -------------------------------------------------


def ramp(system: Any, plan: Plan) -> tuple[int, float, Any]:
    """Start the run sections 3 and 4 share and find its saturating rate: the run (left
    running, drained), the ramp's best rate in steps/s per process, and the ramp itself."""
    from bench import runs, throughput

    spec = runs.ring(10, two_way=True, balance=runs.RICH)
    say(f"3./4. saturating rate: ramp on {spec['name']} (load {loadavg()})")
    sat, run_id = throughput.saturation(system, spec, 600.0, plan.ramp_window, max_windows=10)
    for w in sat.windows:
        say(f"  {w.rate:.0f} steps/s/process: sent {w.sent_per_s:.0f}/s, applied {w.applied_per_s:.0f}/s")
    drain(run_id)
    return run_id, sat.best.rate, sat
