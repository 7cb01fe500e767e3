"""``make bench``: measure the cluster against baselines from the same run; print and record.

    .venv/bin/python -m bench [--quick] [--only SECTION ...] [--rounds N] [--out PATH] [--ws]

Sections (each prints as it goes; tables at the end; ``bench/RESULTS.md`` is written
unless ``--quick`` or ``--out -``):

* ``throughput`` — rounds of: no-op consume, no-op relay, the cluster's saturation
  ramp and its drain; ratios per round, so drift between rounds cancels;
* ``latency``    — raw Redis hop, plain Celery hop, the cluster's per-hop latency;
* ``snapshots``  — completion time for 10, 100, 1000 processes, ring and random
  sparse graphs, against (diameter + 1) × the cluster's per-hop p50 (needs
  ``latency``, which then runs too) and against channels ÷ the drain rate (from
  ``throughput``, when it runs);
* ``overhead``   — saturated throughput with a snapshot every second vs. without (at
  the rate the ramp found, so it needs ``throughput``, which then runs too).

Everything runs against a bundled Redis, a temporary SQLite database and N workers
started here (``bench/system.py``), in about 5 minutes (``--quick``: about 1). ``--ws``
adds the WebSocket fan-out benchmark (``bench/ws_bench.py``, a few minutes more) in a
process of its own, since it sets Django up for a system of its own.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import report
from bench.profiles import FULL, QUICK, Profile

SECTIONS = ("throughput", "latency", "snapshots", "overhead")
NEEDS = {"snapshots": "latency", "overhead": "throughput"}
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def say(text: str = "") -> None:
    print(text, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: small counts, 10 and 100 processes")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, help="run these sections (and what they need)")
    parser.add_argument("--rounds", type=int, help="throughput rounds (default 2, quick 1)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", help=f"where to write the results (default {RESULTS.name}; '-' for nowhere)")
    parser.add_argument("--ws", action="store_true", help="also run the WebSocket fan-out benchmark")
    args = parser.parse_args(argv)

    profile: Profile = QUICK if args.quick else FULL
    if args.rounds:
        profile = profile.with_rounds(args.rounds)
    wanted = set(args.only or SECTIONS)
    wanted |= {NEEDS[s] for s in wanted if s in NEEDS}
    out = args.out or ("-" if args.quick else str(RESULTS))
    command = " ".join(["python -m bench", *(argv if argv is not None else sys.argv[1:])]).strip()

    started = time.monotonic()
    results: dict[str, Any] = {"command": command, "profile": profile, "workers": args.workers}
    results["environment"] = report.environment()
    say(f"Cutline benchmarks ({'quick' if args.quick else 'full'}): {', '.join(s for s in SECTIONS if s in wanted)}")
    run_sections(wanted, profile, args.workers, results)
    if args.ws:
        results["ws"] = run_ws(args.quick)
    results["seconds"] = time.monotonic() - started
    results["environment"]["load_after"] = report.loadavg()

    text = report.render(results)
    say("")
    say(text)
    if out != "-":
        Path(out).write_text(text + report.kept_part(Path(out)))
        say(f"\nwritten to {out}")
    return 0


def run_sections(wanted: set[str], profile: Profile, workers: int, results: dict[str, Any]) -> None:
    # Django is set up by BenchSystem, inside: import what touches it only then.
    from bench.system import BenchSystem

    t0 = time.monotonic()
    with BenchSystem(workers) as system:
        say(f"system up in {time.monotonic() - t0:.1f} s: Redis {system.redis_url}, {workers} workers")
        if "throughput" in wanted:
            results["throughput"] = run_throughput(system, profile)
        if "latency" in wanted:
            results["latency"] = run_latency(system, profile)
        if "snapshots" in wanted:
            results["snapshots"] = run_snapshots(system, profile)
        if "overhead" in wanted:
            results["overhead"] = run_overhead(system, profile, results["throughput"])


def run_throughput(system: Any, profile: Profile) -> list[dict[str, Any]]:
    from bench import baselines, runs, throughput

    rounds = []
    for r in range(profile.rounds):
        say(f"throughput round {r + 1}/{profile.rounds}")
        noop = baselines.noop_consume(system, profile.noops_per_worker)
        say(f"  no-op consume: {noop.per_second:.0f} tasks/s ({noop.messages} in {noop.seconds:.1f} s)")
        relay = baselines.noop_relay(system, profile.relay_chains, profile.relay_hops)
        say(f"  no-op relay:   {relay.per_second:.0f} tasks/s ({relay.messages} in {relay.seconds:.1f} s)")
        spec = runs.ring(profile.throughput_processes, two_way=True, balance=runs.RICH)
        sat, run_id = throughput.saturation(system, spec, 0.2 * noop.per_second, profile.window_seconds)
        for w in sat.windows:
            say(
                f"  cluster at {w.rate:.0f} steps/s/process: sent {w.sent_per_s:.0f}/s,"
                f" applied {w.applied_per_s:.0f}/s, backlog {w.backlog}"
            )
        best = sat.best
        drained = throughput.drain(
            system, run_id, backlog=int(profile.drain_seconds * best.applied_per_s), rate=best.rate
        )
        runs.stop(system, run_id)
        say(f"  cluster drain: {drained.applied_per_s:.0f} applied/s ({drained.messages} in {drained.seconds:.1f} s)")
        rounds.append({"noop": noop, "relay": relay, "saturation": sat, "drain": drained})
    return rounds


def run_latency(system: Any, profile: Profile) -> dict[str, Any]:
    from bench import baselines, latency

    say("latency")
    raw = baselines.redis_hop(system, profile.hop_samples, 0.002)
    say(f"  raw Redis hop: p50 {raw.p50_ms:.2f} ms, p95 {raw.p95_ms:.2f} ms")
    celery = baselines.celery_hop(system, profile.hop_samples // 2, 0.005)
    say(f"  Celery hop:    p50 {celery.p50_ms:.2f} ms, p95 {celery.p95_ms:.2f} ms")
    cluster = latency.cluster_hop(system, profile.latency_seconds)
    say(f"  cluster hop:   p50 {cluster.p50_ms:.2f} ms, p95 {cluster.p95_ms:.2f} ms ({cluster.samples} frames)")
    return {"raw": raw, "celery": celery, "cluster": cluster}


def run_snapshots(system: Any, profile: Profile) -> list[Any]:
    from bench import snapshot_time

    say(f"snapshots (background load {profile.snapshot_load:g} messages/s in all)")
    return snapshot_time.measure_all(system, profile.sizes, profile.snapshots_per_size, profile.snapshot_load, say)


def run_overhead(system: Any, profile: Profile, rounds: list[dict[str, Any]]) -> Any:
    from bench import runs, throughput

    # The best rate of the last round: the most recent knee.
    rate = rounds[-1]["saturation"].best.rate
    say(f"snapshot overhead at {rate:.0f} steps/s per process")
    spec = runs.ring(profile.throughput_processes, two_way=True, balance=runs.RICH)
    result = throughput.overhead(system, spec, rate, profile.overhead_seconds, profile.overhead_pairs)
    say(
        f"  without {result.applied_without:.0f}/s, with a snapshot every second {result.applied_with:.0f}/s:"
        f" overhead {100 * result.overhead:.1f}% ({result.complete}/{result.snapshots} snapshots complete)"
    )
    return result


def run_ws(quick: bool) -> str:
    """The WebSocket benchmark's own table, from its own process."""
    argv = [sys.executable, "-m", "bench.ws_bench"]
    if quick:
        argv += ["--clients", "10", "--seconds", "3", "--rate", "5"]
    say(f"websocket fan-out: {' '.join(argv[1:])}")
    done = subprocess.run(argv, capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent)
    if done.returncode != 0:
        return f"(failed with exit code {done.returncode})\n\n{done.stderr[-2000:]}"
    return done.stdout


if __name__ == "__main__":
    sys.exit(main())
