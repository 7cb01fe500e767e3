"""3. **loss** — applied messages/s at the saturating rate with loss 0.1 and 0.3 on every
channel vs clean, windows A B C C B A on one run (drained between); retransmissions per
applied message; snapshot completion time lossy/clean at a light load. The run and its
saturating rate come from ``common.ramp``; section 4 then measures on the same run."""

from __future__ import annotations

import json
import math
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

from bench.stats import fmt, ratio, table
from bench.uses.common import (
    RING2_N,
    SATURATE,
    SETTLE,
    SNAPSHOT_LOAD,
    Plan,
    drain,
    loadavg,
    mean,
    ms,
    p50,
    p95,
    problem_of,
    say,
    sound,
)

LOSSES = (0.0, 0.1, 0.3)
MODERATE = 0.4  # × the ramp's best rate: a load the clean cluster carries with room to spare


@dataclass
class Level:
    loss: float
    applied_per_s: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)
    applied: int = 0  # over the windows and their drains
    retransmissions: int = 0
    lost: int = 0
    duplicates: int = 0
    drain_s: list[float] = field(default_factory=list)
    queues_s: list[float] = field(default_factory=list)  # after the drain, until the broker queues are empty
    window_applied: int = 0  # in the windows alone
    redis_calls: int = 0  # Redis commands executed in the windows (INFO commandstats)
    zremrangebyscore: int = 0  # of them: channel-log trims, which carry the acks
    process_bytes: list[float] = field(default_factory=list)  # mean stored process, end of window
    held: list[int] = field(default_factory=list)  # frames held behind a gap, whole run, end of window


def empty_queues(system: Any, run_id: int, timeout: float = 60.0) -> float:
    """Wait until the broker holds nothing for the run; return how long it took. After a
    lossy window the queues still hold retransmitted copies of frames applied already."""
    from bench import runs

    t0 = time.monotonic()
    while runs.queued(system, run_id) and time.monotonic() - t0 < timeout:
        time.sleep(0.1)
    return time.monotonic() - t0


def order_text(rounds: int) -> str:
    return " ".join(order_of(["A", "B", "C"], rounds)) or "no windows"


def order_of(items: list[Any], rounds: int) -> list[Any]:
    """A B C, C B A, A B C … so a drift in the machine's load hits every item alike."""
    out: list[Any] = []
    for r in range(rounds):
        out += items if r % 2 == 0 else items[::-1]
    return out


def duplicates(run_id: int) -> int:
    from snapshots import services

    return int(services.run_status(services.get_run(run_id))["duplicates"])


def loss_windows(system: Any, run_id: int, rate: float, seconds: float, rounds: int) -> list[Level]:
    """Windows at ``rate`` with each loss level on every channel, A B C C B A …; each
    window is followed by a drain with its faults still on (what was lost is resent)."""
    from bench import runs, throughput

    levels = {x: Level(x) for x in LOSSES}
    if not rounds:
        return []
    runs.set_rate(run_id, rate)
    for x in order_of(list(LOSSES), rounds):
        level = levels[x]
        runs.set_faults_everywhere(run_id, {"loss": x} if x else {})
        runs.set_status(run_id, "running")
        time.sleep(SETTLE)
        a, (r0, l0), d0 = runs.counters(run_id), runs.fault_counts(run_id), duplicates(run_id)
        calls0, zrem0 = redis_calls(system)
        window = throughput._window(system, run_id, rate, seconds)
        calls1, zrem1 = redis_calls(system)
        level.window_applied += runs.counters(run_id).applied - a.applied
        size, held = stored_processes(run_id)
        level.process_bytes.append(size)
        level.held.append(held)
        level.redis_calls += calls1 - calls0
        level.zremrangebyscore += zrem1 - zrem0
        level.drain_s.append(drain(run_id, timeout=40))
        level.queues_s.append(empty_queues(system, run_id))
        b, (r1, l1), d1 = runs.counters(run_id), runs.fault_counts(run_id), duplicates(run_id)
        level.applied_per_s.append(window.applied_per_s)
        level.cpu_ms.append(window.cpu_per_msg_ms)
        level.applied += b.applied - a.applied
        level.retransmissions += r1 - r0
        level.lost += l1 - l0
        level.duplicates += d1 - d0
        say(
            f"  {rate:.0f}/process, loss {x:g}: applied {window.applied_per_s:.0f}/s,"
            f" CPU {window.cpu_per_msg_ms:.2f} ms/msg; over window + drain: {b.applied - a.applied} applied,"
            f" {r1 - r0} retransmissions, {l1 - l0} transmissions lost, {d1 - d0} duplicates dropped;"
            f" drained in {level.drain_s[-1]:.1f} s, queues empty {level.queues_s[-1]:.1f} s later;"
            f" window: {calls1 - calls0} Redis commands ({zrem1 - zrem0} ZREMRANGEBYSCORE),"
            f" stored process {size:.0f} B, {held} frames held"
        )
    return list(levels.values())


def redis_calls(system: Any) -> tuple[int, int]:
    """Redis commands executed so far: all, and ZREMRANGEBYSCORE alone."""
    stats = system.redis_client().info("commandstats")
    return sum(v["calls"] for v in stats.values()), stats.get("cmdstat_zremrangebyscore", {}).get("calls", 0)


def stored_processes(run_id: int) -> tuple[float, int]:
    """Mean size of a stored process (JSON bytes) and the frames all of them hold behind gaps."""
    from cluster.engine.store import process_key
    from snapshots import services

    names = services.get_run(run_id).process_names
    raws = services.store().redis.mget([process_key(run_id, n) for n in names])
    procs = [json.loads(raw) for raw in raws if raw]
    held = sum(len(r["held"]) for p in procs for r in p["receivers"].values())
    return (statistics.mean(len(raw) for raw in raws if raw) if procs else math.nan), held


def repair_deliveries(system: Any) -> list[str]:
    """The workers' log lines where frames the broker lost were delivered from their channel log."""
    lines = []
    for path in sorted((system.var_dir / "logs").glob("*.log")):
        lines += [line for line in path.read_text(errors="replace").splitlines() if "cutline.repair" in line]
    return lines


def measure(system: Any, plan: Plan, run_id: int, best: float) -> dict[str, Any]:
    from bench import runs

    say(f"3. lossy links (load {loadavg()})")
    repairs_before = len(repair_deliveries(system))
    empty_queues(system, run_id)
    saturating = loss_windows(system, run_id, SATURATE * best, plan.loss_window, plan.loss_rounds)
    moderate = loss_windows(system, run_id, MODERATE * best, plan.loss_window, plan.moderate_rounds)
    # Snapshot completion under loss, at a light load (markers are lost and resent too).
    runs.set_rate(run_id, SNAPSHOT_LOAD / 10)
    say(f"  snapshots at {SNAPSHOT_LOAD:g} messages/s in all")
    snapshots: dict[float, list[float]] = {x: [] for x in LOSSES}
    failed: dict[float, list[str]] = {x: [] for x in LOSSES}
    for x in order_of(list(LOSSES), plan.snapshot_rounds):
        runs.set_faults_everywhere(run_id, {"loss": x} if x else {})
        runs.set_status(run_id, "running")
        time.sleep(SETTLE)
        for _ in range(plan.loss_snapshots if x < 0.3 else 1):
            done = runs.snapshot(run_id, timeout=60)
            if sound(done):
                snapshots[x].append(done.duration or math.nan)
            else:
                failed[x].append(problem_of(done))
        drain(run_id, timeout=40)
        empty_queues(system, run_id)
        say(
            f"  loss {x:g}: snapshots {[round(ms(t)) for t in snapshots[x]]} ms"
            + (f"; {failed[x]}" if failed[x] else "")
        )
    runs.set_faults_everywhere(run_id, {})
    repairs = repair_deliveries(system)[repairs_before:]
    result = {
        "saturating": saturating,
        "moderate": moderate,
        "best": best,
        "snapshots": snapshots,
        "failed": failed,
        "repairs": repairs,
        "load": loadavg(),
    }
    say(loss_tables(result))
    return result


def loss_tables(result: dict[str, Any]) -> str:
    rows = []
    for label, levels, rate in (
        ("saturating", result["saturating"], SATURATE * result["best"]),
        ("moderate", result["moderate"], MODERATE * result["best"]),
    ):
        if not levels:
            continue  # --quick: no saturating windows
        clean = levels[0]
        for lv in levels:
            rows.append(
                [
                    f"{label}, {rate:.0f}/process",
                    f"{lv.loss:g}" if lv.loss else "0 (clean)",
                    rate * RING2_N,
                    mean(lv.applied_per_s),
                    ratio(mean(lv.applied_per_s), mean(clean.applied_per_s)),
                    mean(lv.cpu_ms),
                    ratio(mean(lv.cpu_ms), mean(clean.cpu_ms)),
                    ratio(lv.lost, lv.applied),
                    ratio(lv.retransmissions, lv.applied),
                    lv.loss / (1 - lv.loss),
                    ratio(lv.duplicates, lv.applied),
                    ratio(lv.redis_calls, lv.window_applied),
                    ratio(lv.zremrangebyscore, lv.window_applied),
                    mean(lv.process_bytes),
                    mean([float(h) for h in lv.held]),
                    mean(lv.drain_s),
                    mean(lv.queues_s),
                ]
            )
    windows = table(
        [
            "rate (steps/s)",
            "loss on every channel",
            "offered msgs/s",
            "applied/s",
            "**applied/s vs clean**",
            "worker CPU ms/msg",
            "**CPU/msg vs clean**",
            "transmissions lost per applied",
            "**retransmissions per applied**",
            "needed p/(1−p)",
            "duplicates dropped per applied",
            "Redis commands per applied",
            "of them ZREMRANGEBYSCORE",
            "stored process bytes",
            "frames held behind gaps",
            "drain s",
            "then queues empty s",
        ],
        rows,
    )
    snaps = result["snapshots"]
    clean = snaps[0.0]
    snap_rows = [
        [
            f"{x:g}" if x else "0 (clean)",
            ms(p50(snaps[x])),
            ms(p95(snaps[x])),
            ratio(p50(snaps[x]), p50(clean)),
            ratio(p95(snaps[x]), p95(clean)),
            len(snaps[x]),
            "; ".join(result["failed"][x]) or "none",
        ]
        for x in LOSSES
    ]
    snapshots = table(
        [
            f"snapshots at {SNAPSHOT_LOAD:g} msgs/s, loss",
            "complete p50 ms",
            "p95 ms",
            "**p50 vs clean**",
            "**p95 vs clean**",
            "snapshots",
            "unsound / failed",
        ],
        snap_rows,
    )
    return windows + "\n\n" + snapshots


def loss_reading(lo: dict[str, Any]) -> str:
    def part(levels: list[Level], label: str) -> str:
        if not levels:
            return f"{label}: not measured"
        clean, *lossy = levels
        return f"{label}: " + ", ".join(
            f"loss {lv.loss:g} {fmt(ratio(mean(lv.applied_per_s), mean(clean.applied_per_s)))}× the clean"
            f" throughput with {fmt(ratio(lv.retransmissions, lv.applied))} retransmissions per applied message"
            f" (needed {fmt(lv.loss / (1 - lv.loss))})"
            for lv in lossy
        )

    snaps = lo["snapshots"]
    return (
        part(lo["saturating"], "saturating")
        + "; "
        + part(lo["moderate"], "moderate")
        + "; snapshots "
        + ", ".join(f"loss {x:g} {fmt(ratio(p50(snaps[x]), p50(snaps[0.0])))}× slower (p50)" for x in LOSSES[1:])
        + "."
    )


def section(lo: dict[str, Any], ramp: Any, plan: Plan) -> list[str]:
    """Section 3 of ``bench/USES.md``, from what ``measure`` returned, the ramp that found
    its saturating rate and the plan that set its rounds."""
    return [
        "",
        "## 3. Lossy links",
        "",
        f"`bench-ring2-10` (two-way ring, bank, rich balances, 20 channels). Saturating = {SATURATE:g}× the"
        f" ramp's best rate of {lo['best']:.0f} steps/s per process (ramp: "
        + ", ".join(f"{w.rate:.0f}→{w.applied_per_s:.0f}" for w in ramp.windows)
        + f" applied/s), so that even the clean windows cannot keep up; moderate = {MODERATE:g}× the best"
        " rate. Windows of clean, loss 0.1 and loss 0.3 on every"
        f" channel, {order_text(plan.loss_rounds)} at the saturating rate and"
        f" {order_text(plan.moderate_rounds)} at the moderate one, each followed by a drain (paused)"
        " with its loss still on, so what was lost is resent before the faults change, and then until the"
        " broker's queues are empty (they still hold retransmitted copies of frames applied already);"
        " retransmissions, losses and duplicates count over window + drain; `needed` is what resending"
        " lost frames only would take; Redis commands (INFO commandstats) count over the window alone, per"
        " message applied in it; stored process bytes and frames held behind gaps are read at the window's"
        " end. Snapshots (Chandy–Lamport, one after another) at"
        f" {SNAPSHOT_LOAD:g} messages/s in the same run, blocks in the same order. Channels delivered by the"
        f" repair of frames the broker lost, from the channel log, meanwhile (workers' log): {len(lo['repairs'])}"
        + (f", e.g. `{lo['repairs'][0].split(': ', 1)[-1]}`" if lo["repairs"] else "")
        + f". Load average after: {lo['load']}.",
        "",
        loss_tables(lo),
        "",
        "Reading: " + loss_reading(lo),
    ]
