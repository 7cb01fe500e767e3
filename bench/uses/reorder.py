"""5. **reorder** — on complete-4 with ``reorder`` on every channel, how many Chandy–Lamport
snapshots are unsound (k of n) vs Lai–Yang (k of n), alternating."""

from __future__ import annotations

import math
import time
from typing import Any

from bench.stats import table
from bench.uses.common import CL, LY, SETTLE, Plan, loadavg, ms, p50, p95, problem_of, say, sound, start_served

REORDER_RATE = 30.0  # steps/s per process on complete-4: ~10 messages/s per channel


def measure(system: Any, plan: Plan) -> dict[str, Any]:
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


def reorder_reading(ro: dict[str, Any]) -> str:
    cl, ly = ro["counts"][CL], ro["counts"][LY]
    return (
        f"on non-FIFO channels {cl['unsound']} of {cl['n']} Chandy–Lamport snapshots were unsound and"
        f" {ly['unsound']} of {ly['n']} Lai–Yang ones."
    )


def section(ro: dict[str, Any]) -> list[str]:
    """Section 5 of ``bench/USES.md``, from what ``measure`` returned."""
    return [
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
