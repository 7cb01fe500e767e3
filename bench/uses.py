"""What issue 5's uses of snapshots cost, each against a baseline measured in the same run.

    .venv/bin/python -m bench.uses [--quick] [--out PATH]

One system (``bench/system.py``: bundled Redis, temporary SQLite, 2 real workers), five
sections, each printing its table as it goes; ``bench/USES.md`` is written at the end
(``--quick`` writes nowhere unless ``--out`` says where; ``--out -`` never writes).

1. **algorithms** — Lai–Yang vs Chandy–Lamport completion time on one run, the two
   alternating (CL LY LY CL …, so drift hits both alike), on ring-10, ring-100 and a
   random sparse 100; and the bytes the red piggyback adds to a frame, from the frames
   in the channel logs (each measured with and without its ``red`` key).
2. **restore** — ``restore_run`` wall time against the completion time of the snapshot
   it restores (same run), the time until every replayed message is applied again, and
   a snapshot after each restore that must be sound.
3. **loss** — applied messages/s at the saturating rate with loss 0.1 and 0.3 on every
   channel vs clean, windows A B C C B A on one run (drained between); retransmissions
   per applied message; snapshot completion time lossy/clean at a light load.
4. **watchpoints** — applied messages/s and worker CPU per message with 5 state
   watchpoints that never fire vs none, at the saturating rate, windows A B B A.
5. **reorder** — on complete-4 with ``reorder`` on every channel, how many Chandy–Lamport
   snapshots are unsound (k of n) vs Lai–Yang (k of n), alternating.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.stats import fmt, percentile, ratio, table

USES = Path(__file__).resolve().parent / "USES.md"
CL, LY = "chandy-lamport", "lai-yang"
SHORT = {CL: "CL", LY: "LY"}
SNAPSHOT_LOAD = 100.0  # background messages/s, whole run, while snapshots are timed
RESTORE_LOAD = 300.0  # a little more, so the channels hold something to replay
SETTLE = 1.0  # after a status, rate, fault or watchpoint change: workers look every 0.5 s
NEVER = [f"balance < -{i}" for i in range(1, 6)]  # a bank balance never goes below 0


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
    from snapshots import services

    return services.is_sound(snapshot)


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


def start_served(system: Any, spec: dict[str, Any], total_rate: float) -> int:
    from bench import runs

    n = len(spec["processes"])
    run_id = runs.start(runs.topology(spec), rate=total_rate / n)
    runs.wait_until_served(system, run_id, n)
    runs.wait_until_applying(run_id)
    return run_id


# --- 1. Lai–Yang vs Chandy–Lamport --------------------------------------------------------


@dataclass
class AlgoTimes:
    graph: str
    processes: int
    channels: int
    times: dict[str, list[float]] = field(default_factory=lambda: {CL: [], LY: []})
    markers: dict[str, list[float]] = field(default_factory=lambda: {CL: [], LY: []})
    failed: list[str] = field(default_factory=list)


@dataclass
class FrameBytes:
    label: str
    red_ids: float  # mean length of "red"
    frames: int
    with_red: float
    without_red: float
    envelope: float | None  # the broker's message, kombu envelope and all

    @property
    def extra(self) -> float:
        return self.with_red - self.without_red


def frame_bytes(system: Any, run_id: int, label: str) -> FrameBytes | None:
    """Mean JSON size of the message frames in the channel logs, with and without ``red``."""
    from bench import runs

    frames = [f for f in runs.channel_frames(run_id) if f["kind"] == "message"]
    if not frames:
        return None
    # The logs hold the last second or two of frames: keep those sent after the newest
    # Lai–Yang snapshot (the longest red), so the figure is the frame as it is now.
    longest = max(len(f.get("red", [])) for f in frames)
    frames = [f for f in frames if len(f.get("red", [])) == longest]
    full = [len(json.dumps(f)) for f in frames]
    bare = [len(json.dumps({k: v for k, v in f.items() if k != "red"})) for f in frames]
    return FrameBytes(
        label, longest, len(frames), statistics.mean(full), statistics.mean(bare), broker_envelope(system)
    )


def broker_envelope(system: Any) -> float | None:
    """Mean size of a ``cluster.deliver`` message as the broker holds it (kombu's
    ``unacked`` hash: the message a worker is applying right now), sampled for ≤ 1 s."""
    client = system.redis_client()
    sizes = []
    for _ in range(200):
        for raw in client.hvals("unacked"):
            if b"cluster.deliver" in raw:
                sizes.append(len(raw))
        if len(sizes) >= 40:
            break
        time.sleep(0.005)
    return float(statistics.mean(sizes)) if sizes else None


def marker_span(run_id: int, n: int, channels: int, snapshot: Any) -> float | None:
    """Initiate → last local_done of the snapshot, from the event log (``bench/snapshot_time.py``)."""
    from bench import runs
    from bench.snapshot_time import _marker_span

    background = 2 * SNAPSHOT_LOAD * (snapshot.duration or 0.0)
    evts = runs.events(run_id, limit=int(2 * (2 * n + 4 * channels + background)) + 1000)
    return _marker_span(evts, snapshot.pk)


def algorithms(system: Any, plan: Plan) -> dict[str, Any]:
    from bench import runs

    graphs = [
        ("ring-10", runs.ring(10)),
        ("ring-100", runs.ring(100)),
        ("random-100", runs.sparse(100)),
    ]
    say(f"1. Lai–Yang vs Chandy–Lamport (background {SNAPSHOT_LOAD:g} messages/s, alternating; load {loadavg()})")
    out: list[AlgoTimes] = []
    frames: list[FrameBytes] = []
    for label, spec in graphs:
        started = time.monotonic()
        n, c = len(spec["processes"]), len(spec["channels"])
        result = AlgoTimes(label, n, c)
        run_id = start_served(system, spec, SNAPSHOT_LOAD)
        sizes = label == "ring-10"  # the frame sizes are measured on the first graph
        try:
            if sizes:
                # Vector clocks fill up as messages go round: compare frames of a warm run only.
                time.sleep(3.0)
                frames += filter(None, [frame_bytes(system, run_id, "no Lai–Yang snapshot yet")])
            runs.snapshot(run_id)  # a warm-up, not counted: the first of a run pays for cold paths
            lys = 0
            for i in range(plan.pairs[label]):
                for algorithm in (CL, LY) if i % 2 == 0 else (LY, CL):
                    done = runs.snapshot(run_id, algorithm)
                    if not sound(done):
                        result.failed.append(f"{SHORT[algorithm]} {problem_of(done)}")
                        continue
                    result.times[algorithm].append(done.duration or math.nan)
                    span = marker_span(run_id, n, c, done)
                    if span is not None:
                        result.markers[algorithm].append(span)
                    lys += algorithm == LY
                    if sizes and algorithm == LY and lys == 1:
                        time.sleep(0.5)  # frames sent since are red for one snapshot
                        frames += filter(None, [frame_bytes(system, run_id, "after 1 Lai–Yang snapshot")])
            if sizes:
                time.sleep(0.5)
                frames += filter(None, [frame_bytes(system, run_id, f"after {lys} Lai–Yang snapshots")])
                if plan.red_cap:
                    # A process marks its frames red for its last 64 Lai–Yang snapshots, finished or not.
                    while lys < plan.red_cap:
                        lys += sound(runs.snapshot(run_id, LY))
                    time.sleep(0.5)
                    frames += filter(None, [frame_bytes(system, run_id, f"after {lys} Lai–Yang snapshots")])
        finally:
            runs.stop(system, run_id)
        say(
            f"  {label}: CL p50 {ms(p50(result.times[CL])):.0f} ms, LY p50 {ms(p50(result.times[LY])):.0f} ms,"
            f" LY/CL {ratio(p50(result.times[LY]), p50(result.times[CL])):.2f}; markers LY/CL"
            f" {ratio(p50(result.markers[LY]), p50(result.markers[CL])):.2f}"
            f" ({time.monotonic() - started:.0f} s)" + (f"; FAILED: {result.failed}" if result.failed else "")
        )
        out.append(result)
    text = algorithms_tables(out, frames)
    say(text)
    return {"times": out, "frames": frames, "load": loadavg()}


def algorithms_tables(out: list[AlgoTimes], frames: list[FrameBytes]) -> str:
    rows = []
    for r in out:
        cl, ly = r.times[CL], r.times[LY]
        rows.append(
            [
                r.graph,
                r.channels,
                ms(p50(cl)),
                ms(p95(cl)),
                ms(p50(ly)),
                ms(p95(ly)),
                ratio(p50(ly), p50(cl)),
                ratio(p95(ly), p95(cl)),
                ms(p50(r.markers[CL])),
                ms(p50(r.markers[LY])),
                ratio(p50(r.markers[LY]), p50(r.markers[CL])),
                f"{len(cl)}+{len(ly)}",
                "; ".join(r.failed) or "none",
            ]
        )
    times = table(
        [
            "graph",
            "channels",
            "CL p50 ms",
            "CL p95 ms",
            "LY p50 ms",
            "LY p95 ms",
            "**LY/CL p50**",
            "**LY/CL p95**",
            "CL markers p50 ms",
            "LY markers p50 ms",
            "**LY/CL markers p50**",
            "snapshots CL+LY",
            "unsound / failed",
        ],
        rows,
    )
    frame_rows = [
        [
            f.label,
            f.frames,
            f.red_ids,
            f.without_red,
            f.with_red,
            f.extra,
            ratio(f.with_red, f.without_red),
            f.envelope if f.envelope else math.nan,
            ratio(f.envelope, frames[0].envelope) if f.envelope and frames[0].envelope else math.nan,
        ]
        for f in frames
    ]
    sizes = table(
        [
            "ring-10 message frames",
            "frames",
            "red ids",
            "frame bytes without red",
            "frame bytes with red",
            "**extra bytes per frame**",
            "**with / without**",
            "broker message bytes",
            "**broker message vs no red**",
        ],
        frame_rows,
    )
    return times + "\n\n" + sizes


# --- 2. restore ----------------------------------------------------------------------------


@dataclass
class RestoreTimes:
    graph: str
    processes: int
    snapshot_s: list[float] = field(default_factory=list)
    restore_s: list[float] = field(default_factory=list)
    replayed_s: list[float] = field(default_factory=list)  # only restores that replayed something
    resumed_s: list[float] = field(default_factory=list)
    replayed: list[int] = field(default_factory=list)
    dropped: list[int] = field(default_factory=list)
    after_sound: int = 0
    after_total: int = 0
    problems: list[str] = field(default_factory=list)
    in_flight_check: str = ""


def replay_targets(snapshot: Any) -> dict[tuple[str, str], int]:
    """Channel → the seq its receiver must reach once the recorded messages are replayed
    (``cluster/restore.py`` renumbers them right after what the receiver had received)."""
    received = {r.process: r.received for r in snapshot.process_records.all()}
    targets = {}
    for c in snapshot.channel_records.all():
        if c.messages:
            targets[(c.src, c.dst)] = int(received[c.dst].get(c.src, 0)) + len(c.messages)
    return targets


def wait_replayed(
    run_id: int, names: list[str], targets: dict[tuple[str, str], int], applied0: int, timeout: float = 30.0
) -> tuple[float, float]:
    """Seconds until every replayed message is applied, and until any message is applied
    (the run serves again); NaN for what did not happen within ``timeout``."""
    from snapshots import services

    store = services.store()
    t0 = time.monotonic()
    replayed_at = 0.0 if not targets else math.nan
    resumed_at = math.nan
    while time.monotonic() - t0 < timeout and (math.isnan(replayed_at) or math.isnan(resumed_at)):
        procs = store.load_processes(run_id, names)
        now = time.monotonic() - t0
        if math.isnan(resumed_at) and sum(p["counters"]["messages_applied"] for p in procs.values()) > applied0:
            resumed_at = now
        if math.isnan(replayed_at) and all(
            procs[dst]["applied"].get(src, 0) >= seq for (src, dst), seq in targets.items()
        ):
            replayed_at = now
        time.sleep(0.01)
    return replayed_at, resumed_at


def in_flight_after_restore(run_id: int) -> str:
    """Pause, let the channels drain, and set what ``run status`` shows in flight beside
    the sequence numbers and the message counters (kept across restores)."""
    from bench import runs
    from snapshots import services

    runs.set_status(run_id, "paused")
    time.sleep(2.0)
    run = services.get_run(run_id)
    procs = services.store().load_processes(run_id, run.process_names)
    by_seq = sum(procs[s]["sent"].get(d, 0) - procs[d]["applied"].get(s, 0) for s, d in run.channel_pairs)
    c = runs.counters(run_id)
    status = services.run_status(run)
    runs.set_status(run_id, "running")
    return (
        f"paused and drained: run_status messages_in_flight = {status['messages_in_flight']},"
        f" by sequence numbers = {by_seq}, by the message counters (sent − applied) = {c.sent - c.applied}"
    )


def restore(system: Any, plan: Plan) -> list[RestoreTimes]:
    from bench import runs
    from snapshots import recovery, services

    say(f"2. restore (background {RESTORE_LOAD:g} messages/s; load {loadavg()})")
    out = []
    for label, spec in (("ring-10", runs.ring(10)), ("ring-100", runs.ring(100))):
        started = time.monotonic()
        result = RestoreTimes(label, len(spec["processes"]))
        run_id = start_served(system, spec, RESTORE_LOAD)
        names = services.get_run(run_id).process_names
        try:
            snap = runs.snapshot(run_id)
            for _ in range(plan.restores):
                if not sound(snap):
                    result.problems.append(problem_of(snap))
                    snap = runs.snapshot(run_id)
                    continue
                targets = replay_targets(snap)
                t0 = time.monotonic()
                done = recovery.restore_run(services.get_run(run_id), snap)
                result.restore_s.append(time.monotonic() - t0)
                result.snapshot_s.append(snap.duration or math.nan)
                result.replayed.append(done.replayed_messages)
                result.dropped.append(done.dropped_frames)
                applied0 = sum(
                    p["counters"]["messages_applied"] for p in services.store().load_processes(run_id, names).values()
                )
                replayed_at, resumed_at = wait_replayed(run_id, names, targets, applied0)
                if targets:
                    result.replayed_s.append(replayed_at)
                result.resumed_s.append(resumed_at)
                # The run goes on from the restored state: its next snapshot must be sound.
                snap = runs.snapshot(run_id)
                result.after_total += 1
                if sound(snap):
                    result.after_sound += 1
                else:
                    result.problems.append("after restore: " + problem_of(snap))
            result.in_flight_check = in_flight_after_restore(run_id)
        finally:
            runs.stop(system, run_id)
        say(
            f"  {label}: snapshot p50 {ms(p50(result.snapshot_s)):.0f} ms,"
            f" restore p50 {ms(p50(result.restore_s)):.0f} ms,"
            f" replayed {result.replayed}, sound after {result.after_sound}/{result.after_total}"
            f" ({time.monotonic() - started:.0f} s); {result.in_flight_check}"
        )
        out.append(result)
    say(restore_table(out))
    return out


def restore_table(out: list[RestoreTimes]) -> str:
    rows = [
        [
            r.graph,
            ms(p50(r.snapshot_s)),
            ms(p50(r.restore_s)),
            ms(max(r.restore_s, default=math.nan)),
            ratio(p50(r.restore_s), p50(r.snapshot_s)),
            ms(p50(r.resumed_s)),
            ms(p50(r.replayed_s)) if r.replayed_s else "– (nothing recorded in flight)",
            ratio(p50(r.restore_s) + (p50(r.replayed_s) if r.replayed_s else 0.0), p50(r.snapshot_s)),
            "/".join(map(str, r.replayed)),
            "/".join(map(str, r.dropped)),
            f"{r.after_sound}/{r.after_total}",
        ]
        for r in out
    ]
    return table(
        [
            "graph",
            "snapshot complete p50 ms",
            "restore_run p50 ms",
            "restore_run max ms",
            "**restore / snapshot**",
            "→ first apply p50 ms",
            "→ replay applied p50 ms",
            "**(restore + replay) / snapshot**",
            "replayed msgs",
            "dropped frames",
            "sound snapshot after",
        ],
        rows,
    )


# --- 3. + 4. the saturating rate, loss, watchpoints ---------------------------------------


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


LOSSES = (0.0, 0.1, 0.3)
SATURATE = 1.3  # × the ramp's best rate: more than the clean cluster carries, whatever the ramp's noise
MODERATE = 0.4  # × the ramp's best rate: a load the clean cluster carries with room to spare
RING2_N = 10  # processes of the run sections 3 and 4 share


def mean(values: list[float]) -> float:
    return statistics.mean(values) if values else math.nan


def drain(run_id: int, timeout: float = 60.0) -> float:
    """Pause and wait until every message sent is applied; return how long it took."""
    from bench import throughput

    t0 = time.monotonic()
    throughput._drain(run_id, timeout)
    return time.monotonic() - t0


def empty_queues(system: Any, run_id: int, timeout: float = 60.0) -> float:
    """Wait until the broker holds nothing for the run; return how long it took. After a
    lossy window the queues still hold retransmitted copies of frames applied already."""
    from bench import runs

    t0 = time.monotonic()
    while runs.queued(system, run_id) and time.monotonic() - t0 < timeout:
        time.sleep(0.1)
    return time.monotonic() - t0


def ramp(system: Any, plan: Plan) -> tuple[int, float, Any]:
    from bench import runs, throughput

    spec = runs.ring(10, two_way=True, balance=runs.RICH)
    say(f"3./4. saturating rate: ramp on {spec['name']} (load {loadavg()})")
    sat, run_id = throughput.saturation(system, spec, 600.0, plan.ramp_window, max_windows=10)
    for w in sat.windows:
        say(f"  {w.rate:.0f} steps/s/process: sent {w.sent_per_s:.0f}/s, applied {w.applied_per_s:.0f}/s")
    drain(run_id)
    return run_id, sat.best.rate, sat


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
    from cluster.store import process_key
    from snapshots import services

    names = services.get_run(run_id).process_names
    raws = services.store().redis.mget([process_key(run_id, n) for n in names])
    procs = [json.loads(raw) for raw in raws if raw]
    held = sum(len(r["held"]) for p in procs for r in p["receivers"].values())
    return (statistics.mean(len(raw) for raw in raws if raw) if procs else math.nan), held


def repair_deliveries(system: Any) -> list[str]:
    """The workers' log lines where a channel waited 15 s and was delivered from its log."""
    lines = []
    for path in sorted((system.var_dir / "logs").glob("*.log")):
        lines += [line for line in path.read_text(errors="replace").splitlines() if "cutline.repair" in line]
    return lines


def loss(system: Any, plan: Plan, run_id: int, best: float) -> dict[str, Any]:
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


def watchpoints(system: Any, plan: Plan, run_id: int, rate: float) -> dict[str, Any]:
    from bench import runs, throughput
    from snapshots import services
    from snapshots.watch import add_watchpoint, remove_watchpoint

    say(f"4. watchpoints at {rate:.0f} steps/s per process: none vs {len(NEVER)} that never fire (load {loadavg()})")
    runs.set_rate(run_id, rate)
    windows: dict[bool, list[Any]] = {False: [], True: []}
    pairs = []
    hits = 0
    published = 0
    for pair in range(plan.watch_pairs):
        for with_watch in (False, True) if pair % 2 == 0 else (True, False):
            added = []
            if with_watch:
                run = services.get_run(run_id)
                added = [add_watchpoint(run, c, mode="every", cooldown_s=0.1) for c in NEVER]
                published = len(services.store().run_meta(run_id)["watchpoints"])
            runs.set_status(run_id, "running")
            time.sleep(SETTLE)
            window = throughput._window(system, run_id, rate, plan.watch_window)
            drain(run_id)
            for wp in added:
                wp.refresh_from_db()
                hits += wp.hits
                remove_watchpoint(wp)
            windows[with_watch].append(window)
            say(
                f"  {'with' if with_watch else 'without'}: applied {window.applied_per_s:.0f}/s,"
                f" CPU {window.cpu_per_msg_ms:.2f} ms/msg"
            )
        pairs.append((windows[False][-1], windows[True][-1]))
    # And one that does fire, to show the watchpoints above were live: its snapshot must come.
    run = services.get_run(run_id)
    runs.set_rate(run_id, SNAPSHOT_LOAD / 10)
    runs.set_status(run_id, "running")
    wp = add_watchpoint(run, "balance > 0")
    deadline = time.monotonic() + 10
    fired = None
    while time.monotonic() < deadline and fired is None:
        fired = run.snapshots.filter(watchpoint=wp).first()
        time.sleep(0.05)
    fired_text = "no snapshot within 10 s"
    if fired is not None:
        fired = services.wait_for_snapshot(fired.pk, 30)
        fired_text = f"snapshot {fired.pk} {fired.status}, sound: {sound(fired)}, trigger {fired.trigger!r}"
    remove_watchpoint(wp)
    drain(run_id)
    result = {
        "pairs": pairs,
        "pure": pure_step_cost(),
        "hits": hits,
        "published": published,
        "check": fired_text,
        "rate": rate,
        "load": loadavg(),
    }
    say(watch_table(result))
    return result


def pure_step_cost(repeat: int = 20000) -> tuple[float, float]:
    """Microseconds for one workload step plus one applied message of a bank process
    (``cluster/process.py`` alone, no I/O), without and with the watchpoints."""
    import random
    import timeit

    from cluster.process import Process
    from snapshots.conditions import parse

    def cost(watched: bool) -> float:
        sender = Process("p1", ["p2"], ["p2"], "bank", {"balance": 10**9})
        receiver = Process("p2", ["p1"], ["p1"], "bank", {"balance": 10**9})
        if watched:
            watches = [{"id": i, "process": None, "condition": parse(c, "bank")} for i, c in enumerate(NEVER)]
            sender.watch(watches)
            receiver.watch(watches)
        rng = random.Random(1)

        def one() -> None:
            for frame in sender.act(rng, {}).sends:
                receiver.receive(frame)

        return min(timeit.repeat(one, number=repeat, repeat=3)) / repeat * 1e6

    return cost(False), cost(True)


def watch_table(result: dict[str, Any]) -> str:
    rows = []
    applied_ratios, cpu_ratios = [], []
    for i, (without, with_) in enumerate(result["pairs"]):
        applied_ratios.append(ratio(with_.applied_per_s, without.applied_per_s))
        cpu_ratios.append(ratio(with_.cpu_per_msg_ms, without.cpu_per_msg_ms))
        rows.append(
            [
                f"pair {i + 1} ({'A B' if i % 2 == 0 else 'B A'})",
                without.applied_per_s,
                with_.applied_per_s,
                applied_ratios[-1],
                without.cpu_per_msg_ms,
                with_.cpu_per_msg_ms,
                cpu_ratios[-1],
            ]
        )
    rows.append(
        ["**median of pairs**", "", "", statistics.median(applied_ratios), "", "", statistics.median(cpu_ratios)]
    )
    without_us, with_us = result["pure"]
    rows.append(
        [
            "pure step + apply, µs (no I/O)",
            "",
            "",
            "",
            without_us,
            with_us,
            ratio(with_us, without_us),
        ]
    )
    return table(
        [
            f"offered {result['rate'] * RING2_N:,.0f} msgs/s",
            "applied/s, none",
            f"applied/s, {len(NEVER)} watchpoints",
            "**applied with / without**",
            "worker CPU ms/msg, none",
            f"worker CPU ms/msg, {len(NEVER)}",
            "**CPU/msg with / without**",
        ],
        rows,
    )


# --- 5. reorder ---------------------------------------------------------------------------


REORDER_RATE = 30.0  # steps/s per process on complete-4: ~10 messages/s per channel


def reorder(system: Any, plan: Plan) -> dict[str, Any]:
    from bench import runs

    spec = runs.complete(4, balance=1000)
    say(f"5. reorder on every channel of {spec['name']} at {REORDER_RATE:g} steps/s per process (load {loadavg()})")
    run_id = start_served(system, spec, REORDER_RATE * 4)
    counts = {
        a: {"n": 0, "unsound": 0, "inconsistent": 0, "not_conserved": 0, "times": [], "example": ""} for a in (CL, LY)
    }
    try:
        runs.set_faults_everywhere(run_id, {"reorder": True})
        time.sleep(SETTLE + 0.5)  # and the frames of the FIFO time have gone
        for i in range(plan.reorder_snapshots):
            for algorithm in (CL, LY) if i % 2 == 0 else (LY, CL):
                done = runs.snapshot(run_id, algorithm, timeout=60)
                c = counts[algorithm]
                c["n"] += 1
                verdict = done.verdict or {}
                if done.status == "complete":
                    c["times"].append(done.duration or math.nan)
                if not sound(done):
                    c["unsound"] += 1
                    c["inconsistent"] += not verdict.get("consistent", False)
                    c["not_conserved"] += verdict.get("conserved") is False
                    c["example"] = c["example"] or problem_of(done)
        from snapshots import services

        status = services.run_status(services.get_run(run_id))
        reorders = status["reorders"]
    finally:
        runs.stop(system, run_id)
    result = {"counts": counts, "reorders": reorders, "load": loadavg()}
    say(reorder_table(result))
    return result


def reorder_table(result: dict[str, Any]) -> str:
    rows = []
    for algorithm, c in result["counts"].items():
        rows.append(
            [
                algorithm,
                f"**{c['unsound']} of {c['n']}**",
                c["inconsistent"],
                c["not_conserved"],
                ms(p50(c["times"])),
                ms(p95(c["times"])),
                c["example"] or "–",
            ]
        )
    return table(
        [
            "algorithm",
            "unsound snapshots",
            "inconsistent cut",
            "total not conserved",
            "complete p50 ms",
            "p95 ms",
            "example",
        ],
        rows,
    )


# --- the report ---------------------------------------------------------------------------


def render(results: dict[str, Any]) -> str:
    env = results["environment"]
    parts = [
        "# Cutline: what issue 5's uses of snapshots cost",
        "",
        f"Produced by `{results['command']}` on {env['date']}, commit {env['commit']}"
        + (f" (changed outside bench/: {', '.join(results['uncommitted'])})" if results.get("uncommitted") else "")
        + f"; Python {env['python']},"
        f" {env['versions']}; {env['cpus']} CPUs, load average {env['load_before']} before and"
        f" {results['load_after']} after (other sessions' tests share this machine). Plan `{results['plan'].name}`,"
        f" 2 workers, bundled Redis, temporary SQLite; {results['seconds']:.0f} s in all. Every figure in **bold**"
        " is a ratio to a baseline measured in the same run, interleaved with it; absolute numbers on this"
        " shared 2-core machine move by ±30% from one minute to the next. p95 of a handful of samples is their"
        " maximum (nearest rank).",
    ]
    a = results.get("algorithms")
    if a:
        parts += [
            "",
            "## 1. Lai–Yang vs Chandy–Lamport",
            "",
            f"One run per graph (bank, {SNAPSHOT_LOAD:g} messages/s in all), snapshots one after another, the two"
            " algorithms alternating (CL LY, LY CL, …); completion = `started_at` → `finished_at`; every snapshot"
            f" counted was complete and sound. Load average after: {a['load']}.",
            "",
            algorithms_tables(a["times"], a["frames"]),
            "",
            "Reading: " + algorithms_reading(a),
        ]
    r = results.get("restore")
    if r:
        parts += [
            "",
            "## 2. Restore",
            "",
            f"One run per graph (one-way ring, bank, {RESTORE_LOAD:g} messages/s in all): a Chandy–Lamport snapshot,"
            " `snapshots.recovery.restore_run` to it (wall time, as the service caller sees it), then the time"
            " from its return until the first message is applied and until every replayed message (the recorded"
            " channel messages, renumbered into their senders' outboxes) is applied; then the next snapshot, which"
            " must be sound and is the next one restored.",
            "",
            restore_table(r),
            "",
            *[f"- {x.graph}: {x.in_flight_check}." for x in r],
            *[f"- {x.graph} problems: {'; '.join(x.problems)}" for x in r if x.problems],
            "",
            "Reading: " + restore_reading(r),
        ]
    lo = results.get("loss")
    if lo:
        parts += [
            "",
            "## 3. Lossy links",
            "",
            f"`bench-ring2-10` (two-way ring, bank, rich balances, 20 channels). Saturating = {SATURATE:g}× the"
            f" ramp's best rate of {lo['best']:.0f} steps/s per process (ramp: "
            + ", ".join(f"{w.rate:.0f}→{w.applied_per_s:.0f}" for w in results["ramp"].windows)
            + f" applied/s), so that even the clean windows cannot keep up; moderate = {MODERATE:g}× the best"
            " rate. Windows of clean, loss 0.1 and loss 0.3 on every"
            f" channel, {order_text(results['plan'].loss_rounds)} at the saturating rate and"
            f" {order_text(results['plan'].moderate_rounds)} at the moderate one, each followed by a drain (paused)"
            " with its loss still on, so what was lost is resent before the faults change, and then until the"
            " broker's queues are empty (they still hold retransmitted copies of frames applied already);"
            " retransmissions, losses and duplicates count over window + drain; `needed` is what resending"
            " lost frames only would take; Redis commands (INFO commandstats) count over the window alone, per"
            " message applied in it; stored process bytes and frames held behind gaps are read at the window's"
            " end. Snapshots (Chandy–Lamport, one after another) at"
            f" {SNAPSHOT_LOAD:g} messages/s in the same run, blocks in the same order. Channels delivered by the"
            f" 15 s repair from the channel log meanwhile (workers' log): {len(lo['repairs'])}"
            + (f", e.g. `{lo['repairs'][0].split(': ', 1)[-1]}`" if lo["repairs"] else "")
            + f". Load average after: {lo['load']}.",
            "",
            loss_tables(lo),
            "",
            "Reading: " + loss_reading(lo),
        ]
    w = results.get("watchpoints")
    if w:
        parts += [
            "",
            "## 4. Watchpoints",
            "",
            f"Same run, offered {w['rate']:.0f} steps/s per process ({SATURATE:g}× the ramp's best: saturated);"
            f" windows without and with {len(NEVER)} state watchpoints"
            f" on every process ({', '.join(f'`{c}`' for c in NEVER)}; mode every) alternate A B B A, drained"
            f" between. Hits in the with-windows: {w['hits']} (expected 0); watchpoints in the run meta while they"
            f" ran: {w['published']}. Liveness check, `balance > 0` added afterwards: {w['check']}."
            f" Load average after: {w['load']}.",
            "",
            watch_table(w),
            "",
            "Reading: " + watch_reading(w),
        ]
    ro = results.get("reorder")
    if ro:
        parts += [
            "",
            "## 5. Reordering channels: Chandy–Lamport vs Lai–Yang",
            "",
            f"complete-4, bank (1000 each), {REORDER_RATE:g} steps/s per process, `reorder` on all 12 channels"
            " (0–200 ms random extra delay per frame, applied in arrival order); snapshots alternate CL / LY on"
            f" one run. {ro['reorders']} frames were applied out of seq order during the run."
            f" Unsound = not a consistent cut, or the bank total not conserved. Load average after: {ro['load']}.",
            "",
            reorder_table(ro),
            "",
            "Reading: " + reorder_reading(ro),
        ]
    return "\n".join(parts) + "\n"


def algorithms_reading(a: dict[str, Any]) -> str:
    bits = [
        f"{t.graph} LY/CL p50 {fmt(ratio(p50(t.times[LY]), p50(t.times[CL])))}"
        f" (markers alone {fmt(ratio(p50(t.markers[LY]), p50(t.markers[CL])))})"
        for t in a["times"]
    ]
    text = "; ".join(bits) + "."
    frames = [f for f in a["frames"] if f.red_ids]
    if frames:
        last = frames[-1]
        text += (
            f" The red piggyback adds {fmt(frames[0].extra, 0)} bytes to a frame after one Lai–Yang snapshot and"
            f" {fmt(last.extra, 0)} after {last.red_ids:.0f}: a process marks its frames red for each of its last 64"
            " Lai–Yang snapshots, finished or not, so the cost grows with the run's history (ids here are 1–2"
            " digits; a long-lived database's 6-digit ids make it ≈8 bytes per id)."
        )
    return text


def restore_reading(r: list[RestoreTimes]) -> str:
    return (
        "; ".join(
            f"{x.graph}: restore_run takes {fmt(ratio(p50(x.restore_s), p50(x.snapshot_s)))}× the snapshot's"
            f" completion time ({fmt(ms(p50(x.restore_s)), 0)} ms: the workers let go at their next look, every"
            f" 0.5 s), and the run applies again {fmt(ms(p50(x.resumed_s)), 0)} ms after it returns (attached at the"
            " next look, queues consumed again)"
            for x in r
        )
        + "."
    )


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


def watch_reading(w: dict[str, Any]) -> str:
    a = statistics.median(ratio(y.applied_per_s, x.applied_per_s) for x, y in w["pairs"])
    c = statistics.median(ratio(y.cpu_per_msg_ms, x.cpu_per_msg_ms) for x, y in w["pairs"])
    without_us, with_us = w["pure"]
    cpu_ms = mean([x.cpu_per_msg_ms for x, _ in w["pairs"]])
    share = 100 * (with_us - without_us) / 1000 / cpu_ms
    return (
        f"{len(NEVER)} never-true conditions evaluated after every step leave {fmt(a)}× the saturated throughput"
        f" and {fmt(c)}× the worker CPU per applied message (median of the pairs); in the pure process they add"
        f" {fmt(with_us - without_us, 1)} µs to a step + apply, {fmt(share, 1)}% of the workers' CPU per message."
    )


def reorder_reading(ro: dict[str, Any]) -> str:
    cl, ly = ro["counts"][CL], ro["counts"][LY]
    return (
        f"on non-FIFO channels {cl['unsound']} of {cl['n']} Chandy–Lamport snapshots were unsound and"
        f" {ly['unsound']} of {ly['n']} Lai–Yang ones."
    )


def uncommitted_engine_files() -> list[str]:
    """Files outside bench/ changed since the commit: what the figures measured beyond it."""
    import subprocess

    done = subprocess.run(
        ["git", "status", "--short"], capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent
    )
    return [line[3:] for line in done.stdout.splitlines() if line[3:] and not line[3:].startswith("bench/")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.uses", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: fewer snapshots, shorter windows")
    parser.add_argument("--out", help=f"where to write the results (default {USES.name}, quick: nowhere; '-': nowhere)")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    out = args.out or ("-" if args.quick else str(USES))
    command = " ".join(["python -m bench.uses", *(argv if argv is not None else sys.argv[1:])]).strip()

    from bench import report  # environment(); imports celery, which is fine before Django

    started = time.monotonic()
    results: dict[str, Any] = {"command": command, "plan": plan, "environment": report.environment()}
    results["uncommitted"] = uncommitted_engine_files()
    say(f"Cutline: what snapshots' uses cost ({plan.name}); load average {results['environment']['load_before']}")
    from bench.system import BenchSystem

    with BenchSystem(2) as system:
        say(f"system up in {time.monotonic() - started:.1f} s: Redis {system.redis_url}, 2 workers")
        results["algorithms"] = algorithms(system, plan)
        results["restore"] = restore(system, plan)
        run_id, rate, results["ramp"] = ramp(system, plan)
        from bench import runs

        try:
            results["loss"] = loss(system, plan, run_id, rate)
            results["watchpoints"] = watchpoints(system, plan, run_id, SATURATE * rate)
        finally:
            runs.stop(system, run_id)
        results["reorder"] = reorder(system, plan)
    results["seconds"] = time.monotonic() - started
    results["load_after"] = loadavg()
    text = render(results)
    say("")
    say(text)
    if out != "-":
        Path(out).write_text(text)
        say(f"written to {out}")
    say(f"{results['seconds']:.0f} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
