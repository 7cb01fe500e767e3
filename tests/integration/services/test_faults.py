"""Channel faults, on real workers and a real broker.

Without FIFO (reordering channels) Chandy–Lamport records what it must not, and the
verdict names the message; Lai–Yang stays consistent on the same run. On lossy links
every frame is retransmitted until it arrives: snapshots complete. A delayed channel
still delivers in order.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

from cluster.devserver.children import Child
from snapshots import services
from snapshots.models import Run
from tests.integration.engine_helpers import (
    assert_logs_clean,
    assert_sound_export,
    await_drained,
    await_traffic,
    poll,
    set_run_status_everywhere,
    start_demo_run,
    take_snapshot,
)


def _all_faults(run: Run, **faults: Any) -> None:
    services.set_channel_faults(run, {f"{s}→{d}": faults for s, d in run.channel_pairs})


def test_without_fifo_chandy_lamport_goes_wrong_and_lai_yang_does_not(
    cluster_workers: Callable[[int], list[Child]],
) -> None:
    workers = cluster_workers(2)
    run = start_demo_run("complete-4", "bank", rate=30)
    _all_faults(run, reorder=True)
    await_traffic(run, 100, workers)
    poll(
        lambda: services.run_status(run)["reorders"],
        lambda n: n > 0,
        what="a frame applied out of order",
        timeout=30,
        workers=workers,
    )
    # A Chandy–Lamport snapshot is wrong whenever a message overtakes a marker (or the
    # other way round); with frames 0–200 ms apart at random, that happens soon.
    wrong = None
    for _ in range(20):
        export = take_snapshot(run, "p1")
        assert export["status"] == "complete"
        if not export["verdict"]["consistent"] or export["verdict"]["conserved"] is False:
            wrong = export
            break
    assert wrong is not None, "20 Chandy–Lamport snapshots on non-FIFO channels were all consistent"
    problems = " ".join(wrong["verdict"]["problems"])
    assert "seq" in problems and "→" in problems, problems
    assert wrong["reason"] and "verdict" in wrong["reason"]
    # Lai–Yang on the same run, with the same faults: consistent every time.
    for initiator in ("p1", "p2", "p3", "p4", "p1"):
        export = take_snapshot(run, initiator, algorithm="lai-yang")
        assert export["algorithm"] == "lai-yang"
        assert export["status"] == "complete" and export["reason"] is None, export["verdict"]
        assert export["verdict"]["consistent"] and export["verdict"]["conserved"], export["verdict"]


def test_on_lossy_links_frames_are_retransmitted_and_every_snapshot_completes_and_conserves(
    cluster_workers: Callable[[int], list[Child]],
) -> None:
    workers = cluster_workers(2)
    run = start_demo_run("ring-5", "bank", rate=8)
    _all_faults(run, loss=0.3)
    await_traffic(run, 60, workers)
    for algorithm in ("chandy-lamport", "lai-yang", "chandy-lamport"):
        export = take_snapshot(run, "p2", algorithm)
        assert export["status"] == "complete", export["reason"]
        assert export["verdict"]["consistent"] and export["verdict"]["conserved"], export["verdict"]
    status = services.run_status(run)
    assert status["retransmissions"] > 0, status
    assert services.store().lost(run.pk), "nothing was lost at loss 0.3"
    # Loss switched off while frames are still lost: they are resent all the same.
    services.set_channel_faults(run, {f"{s}→{d}": {} for s, d in run.channel_pairs})
    # Exactly-once all the same: retransmitted copies that arrive are dropped as duplicates,
    # and once the run is paused every channel drains to nothing in flight.
    set_run_status_everywhere(run, Run.Status.PAUSED, 2, workers)
    await_drained(run, workers, timeout=60)
    # ... by retransmission, not by the 15 s last resort of the channel log.
    assert_logs_clean(workers, "from the channel log")
    live = services.store().load_processes(run.pk, run.process_names)
    by_channel: dict[str, int] = defaultdict(int)
    for src, dst in run.channel_pairs:
        by_channel[f"{src}→{dst}"] = live[src]["sent"][dst] - live[dst]["applied"][src]
    assert set(by_channel.values()) == {0}, by_channel


def test_a_delayed_channel_still_delivers_in_order(cluster_workers: Callable[[int], list[Child]]) -> None:
    workers = cluster_workers(1)
    run = start_demo_run("token-ring-5", "token", rate=20)
    _all_faults(run, delay_ms=50)
    await_traffic(run, 20, workers)
    export = take_snapshot(run, "p3")
    assert_sound_export(export, run)
    status = services.run_status(run)
    assert (status["reorders"], status["gaps"]) == (0, 0), status
