"""2. **restore** — ``restore_run`` wall time against the completion time of the snapshot
it restores (same run), the time until every replayed message is applied again, and a
snapshot after each restore that must be sound."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

from bench.stats import fmt, ratio, table
from bench.uses.common import Plan, loadavg, ms, p50, problem_of, say, sound, start_served

RESTORE_LOAD = 300.0  # more than SNAPSHOT_LOAD, so the channels hold something to replay


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
    (``cluster/core/restore.py`` renumbers them right after what the receiver had received)."""
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


def measure(system: Any, plan: Plan) -> list[RestoreTimes]:
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


def section(r: list[RestoreTimes]) -> list[str]:
    """Section 2 of ``bench/USES.md``, from what ``measure`` returned."""
    return [
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
