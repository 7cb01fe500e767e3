"""Application messages per second through the cluster, and what snapshots cost.

**Saturation.** The bank workload's processes send at a set rate, and the same workers
both send (workload ticks) and apply (deliveries). Offered more than they can do, the
ticks still send at the offered rate and starve the deliveries, so "applied per second
at some rate far above capacity" understates what the cluster can carry. The ramp
therefore raises the rate by steps (on one run, ``run rate`` as the CLI does it) until
the cluster falls behind two windows in a row (applied < 95% of sent, or sent < 90% of
the offered rate); the throughput is the most applied per second in any window.

**Drain.** Then the workers stop consuming the run's queues while its processes go on
sending, the run is paused on the backlog, and the workers consume again: applied per
second while it drains is the cluster's consume side alone, the like-for-like figure to
set beside draining pre-queued no-op tasks.

**Snapshot overhead.** At the ramp's best rate, windows with a snapshot started every
second alternate with windows without (A B B A …, so a drift in the machine's load hits
both alike), on one run, draining the backlog (paused) between windows so each starts
alike. Overhead = 1 − applied(with) / applied(without); and, less exposed to the other
users of the machine, the workers' CPU time per applied message with vs. without.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from bench import runs
from bench.system import BenchSystem, Cost
from cluster.engine.transport import queue_name

SETTLE = 0.8  # after a rate or status change: workers read run settings every 0.5 s
KEPT_UP = 0.95


@dataclass
class Window:
    rate: float  # offered, steps per second per process
    sent_per_s: float
    applied_per_s: float
    backlog: int
    cost: Cost

    @property
    def cpu_per_msg_ms(self) -> float:
        return self.cost.cpu_ms


@dataclass
class Saturation:
    topology: str
    processes: int
    windows: list[Window] = field(default_factory=list)

    @property
    def best(self) -> Window:
        return max(self.windows, key=lambda w: w.applied_per_s)


def _window(system: BenchSystem, run_id: int, rate: float, seconds: float, during: Any = None) -> Window:
    """Counters before and after ``seconds`` (spent in ``during(end)`` if given)."""
    r0, a = system.reading(), runs.counters(run_id)
    end = time.monotonic() + seconds
    if during is not None:
        during(end)
    time.sleep(max(0.0, end - time.monotonic()))
    b, r1 = runs.counters(run_id), system.reading()
    system.check_alive()
    dt = b.at - a.at
    applied = b.applied - a.applied
    return Window(
        rate=rate,
        sent_per_s=(b.sent - a.sent) / dt,
        applied_per_s=applied / dt,
        backlog=b.sent - b.applied,
        cost=Cost.between(r0, r1, applied, 2),  # the two counters' MGETs
    )


def _drain(run_id: int, timeout: float = 60.0) -> None:
    """Pause the run and wait until every message sent has been applied."""
    runs.set_status(run_id, "paused")
    deadline = time.monotonic() + timeout
    while True:
        c = runs.counters(run_id)
        if c.sent == c.applied or time.monotonic() > deadline:
            return
        time.sleep(0.1)


def saturation(
    system: BenchSystem,
    spec: dict[str, Any],
    start_total: float,
    seconds: float,
    step: float = 1.3,
    max_windows: int = 14,
) -> tuple[Saturation, int]:
    """Ramp the offered rate from ``start_total`` messages/s; return the result and the
    run (left running at the last rate, for the drain)."""
    n = len(spec["processes"])
    result = Saturation(spec["name"], n)
    rate = start_total / n
    run_id = runs.start(runs.topology(spec), rate=rate)
    runs.wait_until_applying(run_id)
    time.sleep(SETTLE)
    behind = 0
    for _ in range(max_windows):
        window = _window(system, run_id, rate, seconds)
        result.windows.append(window)
        # Behind: frames pile up, or the workers no longer even send what is offered (a
        # saturated worker's ticks come late and send less). Two windows in a row: one
        # alone may be another user's burst on the machine.
        offered = rate * n
        lagging = window.applied_per_s < KEPT_UP * window.sent_per_s or window.sent_per_s < 0.9 * offered
        behind = behind + 1 if lagging else 0
        if behind == 2:
            break
        rate *= step
        runs.set_rate(run_id, rate)
        time.sleep(SETTLE)
    return result, run_id


@dataclass
class Drain:
    applied_per_s: float
    messages: int
    seconds: float
    cost: Cost


def drain(system: BenchSystem, run_id: int, backlog: int, rate: float, timeout: float = 30.0) -> Drain:
    """Queue about ``backlog`` frames while nobody consumes them, then time the workers
    applying them: the cluster's consume side alone, like draining pre-queued no-ops.

    The workers stop consuming the run's queues (a control command, as for the no-ops),
    its processes go on sending at ``rate`` until the backlog is there, the run is
    paused, and the workers consume the queues again.
    """
    from config.celery import app
    from snapshots import services

    names = services.get_run(run_id).process_names
    nodes = system.nodenames()
    owner = {queue_name(run_id, name): nodes[i % len(nodes)] for i, name in enumerate(names)}
    for queue, node in owner.items():
        app.control.cancel_consumer(queue, destination=[node], reply=True, timeout=5)
    runs.set_rate(run_id, rate)
    runs.set_status(run_id, "running")
    deadline = time.monotonic() + timeout
    while True:
        c = runs.counters(run_id)
        if c.sent - c.applied >= backlog or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    runs.set_status(run_id, "paused")
    # The workers read the status within half a second and send until then.
    a = runs.counters(run_id)
    while True:
        time.sleep(0.2)
        b = runs.counters(run_id)
        if b.sent == a.sent:
            break
        a = b
    for queue, node in owner.items():
        app.control.add_consumer(queue, destination=[node], reply=True, timeout=5)
    # A worker's BRPOP in progress names the old queues; the window starts with the
    # first message applied, once both have picked the queues up.
    while runs.counters(run_id).applied == b.applied:
        time.sleep(0.02)
    a, r0 = runs.counters(run_id), system.reading()
    start_backlog = a.sent - a.applied
    polls = 0
    while True:
        b = runs.counters(run_id)
        polls += 1
        # Stop while every process still has frames queued, before the tail.
        if b.sent - b.applied <= 0.2 * start_backlog or time.monotonic() > deadline + timeout:
            break
        time.sleep(0.05)
    r1 = system.reading()
    applied = b.applied - a.applied
    dt = b.at - a.at
    return Drain(applied / dt if dt else float("nan"), applied, dt, Cost.between(r0, r1, applied, polls + 1))


@dataclass
class Overhead:
    rate: float
    without: list[Window] = field(default_factory=list)
    with_snapshots: list[Window] = field(default_factory=list)
    snapshots: int = 0
    complete: int = 0
    consistent: int = 0

    @staticmethod
    def _mean(windows: list[Window]) -> float:
        return sum(w.applied_per_s for w in windows) / len(windows)

    @property
    def applied_without(self) -> float:
        return self._mean(self.without)

    @property
    def applied_with(self) -> float:
        return self._mean(self.with_snapshots)

    @property
    def overhead(self) -> float:
        return 1 - self.applied_with / self.applied_without

    @staticmethod
    def _cpu(windows: list[Window]) -> float:
        return sum(w.cpu_per_msg_ms for w in windows) / len(windows)

    @property
    def cpu_without(self) -> float:
        return self._cpu(self.without)

    @property
    def cpu_with(self) -> float:
        return self._cpu(self.with_snapshots)

    @property
    def cpu_overhead(self) -> float:
        return self.cpu_with / self.cpu_without - 1


def overhead(system: BenchSystem, spec: dict[str, Any], rate: float, seconds: float, pairs: int) -> Overhead:
    from snapshots import services

    result = Overhead(rate)
    run_id = runs.start(runs.topology(spec), rate=rate)
    run = services.get_run(run_id)
    started: list[int] = []
    try:
        runs.wait_until_applying(run_id)
        for pair in range(pairs):
            for with_snapshots in (False, True) if pair % 2 == 0 else (True, False):
                runs.set_status(run_id, "running")
                time.sleep(SETTLE)

                def snapshot_every_second(end: float) -> None:
                    while time.monotonic() < end:
                        started.append(services.start_snapshot(run).pk)
                        time.sleep(min(1.0, max(0.0, end - time.monotonic())))

                window = _window(system, run_id, rate, seconds, snapshot_every_second if with_snapshots else None)
                (result.with_snapshots if with_snapshots else result.without).append(window)
                _drain(run_id)
        for pk in started:
            snapshot = services.wait_for_snapshot(pk, 120)
            result.snapshots += 1
            result.complete += snapshot.status == "complete"
            result.consistent += bool(snapshot.verdict and snapshot.verdict["consistent"])
    finally:
        runs.stop(system, run_id)
    return result
