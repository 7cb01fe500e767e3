"""Compare the worker code of two checkouts, interleaved in one run: is a change faster?

    .venv/bin/python -m bench.ab BASELINE_TREE [--this TREE] [--rounds 3] [--figures …] [--graph ring-300]

``BASELINE_TREE`` is another checkout (``git worktree add /tmp/base HEAD``). One Redis
and one database serve both; each round starts the baseline's workers, measures, then
this checkout's workers, measures, so load from other users of the machine hits both
alike. Per round and variant: what a message costs (Redis requests and worker CPU, at an easy
load), the saturation ramp's best applied/s, the drain rate, the per-hop p50 under
light load and the snapshot time of a graph; then each figure's ratio (this checkout /
baseline) per round and the median ratio.
How this benchmark's changes to the hot path were justified (see RESULTS.md).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from bench.stats import fmt, table
from bench.system import Cost

FIGURES = (
    ("rt_per_msg", "Redis requests per applied message", False),
    ("cpu_ms_per_msg", "worker CPU ms per applied message", False),
    ("snapshot_cpu_ms", "worker CPU ms per snapshot (ring2-10, 400 msg/s)", False),
    ("saturated", "saturated applied/s", True),
    ("drain", "drain applied/s", True),
    ("hop_p50", "hop p50 ms", False),
    ("snapshot_p50", "snapshot p50 s (--graph)", False),
)


def cost(system: Any, total_rate: float = 150.0, seconds: float = 5.0) -> dict[str, float]:
    """What one applied message costs at a load the cluster carries easily: Redis
    requests (reads the server processed, ≈ round trips; heartbeats and the like
    included) and worker CPU time. Both hardly move with the machine's other load."""
    from bench import runs

    run_id = runs.start(runs.topology(runs.ring(10, two_way=True)), rate=total_rate / 10)
    try:
        runs.wait_until_applying(run_id)
        time.sleep(1.0)  # past the start
        r0, a = system.reading(), runs.counters(run_id)
        time.sleep(seconds)
        b, r1 = runs.counters(run_id), system.reading()
    finally:
        runs.stop(system, run_id)
    cost = Cost.between(r0, r1, b.applied - a.applied, 2)
    return {"rt_per_msg": cost.requests, "cpu_ms_per_msg": cost.cpu_ms}


def snapshot_cpu(system: Any, total_rate: float = 400.0, seconds: float = 5.0, per_second: float = 2.0) -> float:
    """Extra worker CPU per snapshot: a window with ``per_second`` snapshots a second
    against one without, at a load the cluster carries easily (so both apply alike)."""
    from bench import runs
    from snapshots import services

    spec = runs.ring(10, two_way=True, balance=runs.RICH)
    run_id = runs.start(runs.topology(spec), rate=total_rate / 10)
    run = services.get_run(run_id)
    started: list[int] = []
    cpu: dict[bool, float] = {}
    try:
        runs.wait_until_applying(run_id)
        time.sleep(1.0)
        for with_snapshots in (False, True):
            c0, end = system.worker_cpu(), time.monotonic() + seconds
            while with_snapshots and time.monotonic() < end:
                started.append(services.start_snapshot(run).pk)
                time.sleep(1 / per_second)
            time.sleep(max(0.0, end - time.monotonic()))
            for pk in started:  # the window closes when its snapshots are stored
                services.wait_for_snapshot(pk, 60)
            cpu[with_snapshots] = (system.worker_cpu() - c0) / (time.monotonic() - end + seconds)
    finally:
        runs.stop(system, run_id)
    return (cpu[True] - cpu[False]) * seconds / max(1, len(started)) * 1000


def measure(
    system: Any, figures: set[str], start_total: float, graph: dict[str, Any], snapshots: int
) -> dict[str, float]:
    from bench import latency, runs, snapshot_time, throughput

    out: dict[str, float] = {}
    if figures & {"rt_per_msg", "cpu_ms_per_msg"}:
        out.update(cost(system))
    if "snapshot_cpu_ms" in figures:
        out["snapshot_cpu_ms"] = snapshot_cpu(system)
    if figures & {"saturated", "drain"}:
        spec = runs.ring(10, two_way=True, balance=runs.RICH)
        sat, run_id = throughput.saturation(system, spec, start_total, 2.0)
        best = sat.best
        out["saturated"] = best.applied_per_s
        if "drain" in figures:
            drained = throughput.drain(system, run_id, backlog=int(3 * best.applied_per_s), rate=best.rate)
            out["drain"] = drained.applied_per_s
        runs.stop(system, run_id)
    if "hop_p50" in figures:
        out["hop_p50"] = latency.cluster_hop(system, 4.0).p50_ms
    if "snapshot_p50" in figures:
        out["snapshot_p50"] = snapshot_time.measure(system, graph, "graph", snapshots, 100.0).p("complete_s", 50)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__.split("\n\n")[0])
    parser.add_argument("baseline", type=Path, help="the other checkout (its workers are the baseline)")
    parser.add_argument("--this", type=Path, help="compare this checkout instead of the current one")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--snapshots", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--figures", default=",".join(k for k, _, _ in FIGURES), help="comma-separated")
    parser.add_argument("--graph", default="random-100", help="snapshot graph: ring-N or random-N")
    args = parser.parse_args(argv)
    from bench import runs
    from bench.system import BenchSystem

    figures = set(args.figures.split(","))
    kind, _, size = args.graph.partition("-")
    graph = runs.ring(int(size)) if kind == "ring" else runs.sparse(int(size))

    variants = {"baseline": args.baseline.resolve(), "this": args.this.resolve() if args.this else None}
    rows: list[dict[str, dict[str, float]]] = []
    start = dict.fromkeys(variants, 100.0)
    with BenchSystem(args.workers, tree=variants["baseline"]) as system:
        for r in range(args.rounds):
            row = {}
            for i, (name, tree) in enumerate(variants.items()):
                if r or i:
                    system.restart_workers(tree)
                row[name] = measure(system, figures, start[name], graph, args.snapshots)
                # Next round starts the ramp a few steps short of this one's knee.
                start[name] = 0.6 * row[name].get("saturated", 1 / 0.6 * start[name])
                print(f"round {r + 1} {name}: " + ", ".join(f"{k} {fmt(v)}" for k, v in row[name].items()), flush=True)
            rows.append(row)
    headers = ["figure", *(f"round {i + 1} this/baseline" for i in range(len(rows))), "median", "better if"]
    out = []
    for key, title, higher in FIGURES:
        if key not in figures:
            continue
        ratios = [row["this"][key] / row["baseline"][key] for row in rows]
        out.append([title, *ratios, statistics.median(ratios), "> 1" if higher else "< 1"])
    print(table(headers, out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
