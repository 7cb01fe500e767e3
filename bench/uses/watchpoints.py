"""4. **watchpoints** — applied messages/s and worker CPU per message with 5 state
watchpoints that never fire vs none, at the saturating rate, windows A B B A. Measured on
section 3's run, once it is done with it, at the rate ``common.ramp`` found."""

from __future__ import annotations

import statistics
import time
from typing import Any

from bench.stats import fmt, ratio, table
from bench.uses.common import RING2_N, SATURATE, SETTLE, SNAPSHOT_LOAD, Plan, drain, loadavg, mean, say, sound

NEVER = [f"balance < -{i}" for i in range(1, 6)]  # a bank balance never goes below 0


def measure(system: Any, plan: Plan, run_id: int, rate: float) -> dict[str, Any]:
    from bench import runs, throughput
    from snapshots import services
    from snapshots.watchpoints import add_watchpoint, remove_watchpoint

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
    (``cluster/core/process.py`` alone, no I/O), without and with the watchpoints."""
    import random
    import timeit

    from cluster.core.conditions import parse
    from cluster.core.process import SimulatedProcess

    def cost(watched: bool) -> float:
        sender = SimulatedProcess("p1", ["p2"], ["p2"], "bank", {"balance": 10**9})
        receiver = SimulatedProcess("p2", ["p1"], ["p1"], "bank", {"balance": 10**9})
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


def section(w: dict[str, Any]) -> list[str]:
    """Section 4 of ``bench/USES.md``, from what ``measure`` returned."""
    return [
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
