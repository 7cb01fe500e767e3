"""Snapshots of runs under load, on real workers and a real broker: every one complete and consistent.

Two workers serve several runs at once while the test takes snapshots of them, some
one at a time and some started together from different initiators. Every snapshot
must end ``complete`` with a verdict that holds (which the test recomputes from the
export), and the runs' FIFO counters must stay clean: in a healthy run the broker
neither loses, repeats nor reorders a frame that the receivers would have to repair.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cluster.devserver.children import Child
from snapshots import services
from snapshots.models import Run
from tests.integration.engine_helpers import (
    assert_clean_fifo,
    assert_records_match_event_log,
    assert_sound_export,
    await_traffic,
    snapshot_all,
    start_demo_run,
)


def _concurrent_round(runs: list[Run], per_run: int) -> list[tuple[Run, str]]:
    """``per_run`` snapshots of every run, each from a different initiator, spread over its processes."""
    picks = []
    for run in runs:
        names = run.process_names
        step = max(1, len(names) // per_run)
        picks.extend((run, names[(i * step) % len(names)]) for i in range(per_run))
    return picks


def test_snapshots_of_bank_runs_under_load_are_complete_consistent_and_conserved(
    cluster_workers: Callable[[int], list[Child]],
) -> None:
    workers = cluster_workers(2)
    # A complete graph, a one-way ring and a directed (not bidirectional) graph, all at
    # once: ~120 transfers a second in all. Two workers alone do ten times that, so they
    # keep up even while other suites share the machine's two cores.
    runs = [
        start_demo_run("complete-4", "bank", rate=10),
        start_demo_run("ring-5", "bank", rate=8),
        start_demo_run("directed-10", "bank", rate=4),
    ]
    before = {run.pk: await_traffic(run, 30, workers)["messages_applied"] for run in runs}

    exports: list[tuple[Run, dict[str, Any]]] = []
    for _ in range(2):
        # Three snapshots of every run started together from different initiators:
        # nine running at once, interleaved on the same channels.
        picks = _concurrent_round(runs, 3)
        exports.extend(zip([run for run, _ in picks], snapshot_all(picks), strict=True))
    for run in runs:
        # And one at a time, from the last process.
        picks = [(run, run.process_names[-1])]
        exports.extend(zip([run], snapshot_all(picks), strict=True))

    assert len(exports) >= 20
    for run, export in exports:
        assert_sound_export(export, run)
    # Three concurrent snapshots share channels: their markers must show up inside
    # each other's recorded channels (one seq per channel for messages and markers).
    assert any(c["markers"] for _, e in exports for c in e["channels"]), "no snapshot saw another's marker"
    for run in runs:
        assert_records_match_event_log([e for r, e in exports if r == run], run)
        status = services.run_status(run)
        assert status["messages_applied"] > before[run.pk], f"run {run.pk} stopped moving: {status}"
        assert status["snapshots"] == {"running": 0, "complete": 7, "failed": 0}, status
        assert_clean_fifo(run)


def test_snapshots_of_token_runs_find_exactly_one_token(cluster_workers: Callable[[int], list[Child]]) -> None:
    workers = cluster_workers(2)
    # The token passes at every step of its holder: at 20 steps/s it is in a channel a
    # good part of the time, which is where a wrong cut would lose or double it.
    ring = start_demo_run("token-ring-5", "token", rate=20)
    paper = start_demo_run("paper-token", "token", rate=20)
    for run in (ring, paper):
        await_traffic(run, 10, workers)

    picks = [(ring, "p1"), (ring, "p3"), (ring, "p5"), (paper, "p"), (paper, "q")]
    exports = list(zip([run for run, _ in picks], snapshot_all(picks), strict=True))
    exports += zip([ring, paper], snapshot_all([(ring, "p2"), (paper, "q")]), strict=True)

    for run, export in exports:
        assert_sound_export(export, run)
        holders = [p["process"] for p in export["processes"] if p["state"]["tokens"]]
        in_flight = [(c["src"], c["dst"]) for c in export["channels"] for m in c["messages"]]
        assert len(holders) + len(in_flight) == 1, f"snapshot {export['id']}: {holders} {in_flight}"
    for run in (ring, paper):
        assert_records_match_event_log([e for r, e in exports if r == run], run)
        assert_clean_fifo(run)
