"""1. **algorithms** — Lai–Yang vs Chandy–Lamport completion time on one run, the two
alternating (CL LY LY CL …, so drift hits both alike), on ring-10, ring-100 and a random
sparse 100; and the bytes the red piggyback adds to a frame, from the frames in the
channel logs (each measured with and without its ``red`` key)."""

from __future__ import annotations

import json
import math
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

from bench.stats import fmt, ratio, table
from bench.uses.common import (
    CL,
    LY,
    SNAPSHOT_LOAD,
    Plan,
    loadavg,
    ms,
    p50,
    p95,
    problem_of,
    say,
    sound,
    start_served,
)

SHORT = {CL: "CL", LY: "LY"}


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


def measure(system: Any, plan: Plan) -> dict[str, Any]:
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


def section(a: dict[str, Any]) -> list[str]:
    """Section 1 of ``bench/USES.md``, from what ``measure`` returned."""
    return [
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
