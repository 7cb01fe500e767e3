"""What the uses of snapshots cost, each against a baseline measured in the same run.

    .venv/bin/python -m bench.uses [--quick] [--out PATH]

One system (``bench/system.py``: bundled Redis, temporary SQLite, 2 real workers), five
sections, each printing its table as it goes; ``bench/USES.md`` is written at the end
(``--quick`` writes nowhere unless ``--out`` says where; ``--out -`` never writes).
Each section is a module here, which says what it measures and how:

1. ``lai_yang.py``    — Lai–Yang vs Chandy–Lamport completion time, and the bytes of the
   red piggyback;
2. ``restore.py``     — ``restore_run`` against the snapshot it restores, and the replay;
3. ``loss.py``        — throughput, retransmissions and snapshot time with lossy links;
4. ``watchpoints.py`` — throughput and CPU per message with watchpoints that never fire;
5. ``reorder.py``     — unsound snapshots on reordering channels, CL vs LY.

Sections 3 and 4 share one saturated run (``common.ramp``), and ``common.py`` what the
others share.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.uses import lai_yang, loss, reorder, restore, watchpoints
from bench.uses.common import FULL, QUICK, SATURATE, loadavg, ramp, say

BENCH = Path(__file__).resolve().parent.parent
USES = BENCH / "USES.md"


def render(results: dict[str, Any]) -> str:
    env = results["environment"]
    parts = [
        "# Cutline: what the uses of snapshots cost",
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
        parts += lai_yang.section(a)
    r = results.get("restore")
    if r:
        parts += restore.section(r)
    lo = results.get("loss")
    if lo:
        parts += loss.section(lo, results["ramp"], results["plan"])
    w = results.get("watchpoints")
    if w:
        parts += watchpoints.section(w)
    ro = results.get("reorder")
    if ro:
        parts += reorder.section(ro)
    return "\n".join(parts) + "\n"


def uncommitted_engine_files() -> list[str]:
    """Files outside bench/ changed since the commit: what the figures measured beyond it."""
    # From the top of the tree: `git status --short` names files relative to where it runs.
    done = subprocess.run(["git", "status", "--short"], capture_output=True, text=True, cwd=BENCH.parent)
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
        results["algorithms"] = lai_yang.measure(system, plan)
        results["restore"] = restore.measure(system, plan)
        run_id, rate, results["ramp"] = ramp(system, plan)
        from bench import runs

        try:
            results["loss"] = loss.measure(system, plan, run_id, rate)
            results["watchpoints"] = watchpoints.measure(system, plan, run_id, SATURATE * rate)
        finally:
            runs.stop(system, run_id)
        results["reorder"] = reorder.measure(system, plan)
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
