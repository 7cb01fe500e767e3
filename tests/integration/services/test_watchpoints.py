"""Watchpoints (snapshots/watchpoints.py), on real workers and a real broker.

A watchpoint makes its process snapshot itself, with the state that made it fire; one
that does not parse is refused, saying where.
"""

from __future__ import annotations

from collections.abc import Callable

from cluster.devserver.children import Child
from snapshots import services
from snapshots import watchpoints as watch
from snapshots.models import Run, Snapshot
from snapshots.presenter import snapshot_export
from tests.integration.engine_helpers import SNAPSHOT_WAIT, assert_sound_export, poll, start_demo_run


def _triggered(run: Run, watchpoint: int, workers: list[Child]) -> Snapshot:
    snapshot = poll(
        lambda: Snapshot.objects.filter(run=run, watchpoint_id=watchpoint).first(),
        lambda s: s is not None,
        what=f"a snapshot triggered by watchpoint {watchpoint}",
        timeout=SNAPSHOT_WAIT,
        workers=workers,
    )
    assert snapshot is not None
    return services.wait_for_snapshot(snapshot.pk, SNAPSHOT_WAIT)


def test_a_state_watchpoint_snapshots_its_process_in_the_state_that_made_it_fire(
    cluster_workers: Callable[[int], list[Child]],
) -> None:
    workers = cluster_workers(2)
    run = start_demo_run("ring-5", "bank", rate=10)
    # A condition the first transfer at p3 makes true: one that needs the balance to
    # wander far (say below 80) stays false for a whole minute about one run in eight.
    wp = watch.add_watchpoint(run, "balance != 100", process="p3")
    snapshot = _triggered(run, wp.pk, workers)
    export = snapshot_export(snapshot)
    assert_sound_export(export, run)
    assert export["initiator"] == "p3" and export["watchpoint"] == wp.pk
    recorded = next(p for p in export["processes"] if p["process"] == "p3")
    # Recorded in the very step the condition became true: the state it saw.
    assert recorded["state"]["balance"] != 100
    assert str(recorded["state"]["balance"]) in export["trigger"]
    wp.refresh_from_db()
    assert (wp.hits, wp.enabled) == (1, False)  # mode "once"
    hits = [e for e in services.store().events(run.pk) if e["kind"] == "watchpoint"]
    assert [(e["process"], e["snapshot"]) for e in hits] == [("p3", snapshot.pk)]


def test_an_event_watchpoint_on_any_process_fires_on_the_message_it_describes(
    cluster_workers: Callable[[int], list[Child]],
) -> None:
    workers = cluster_workers(2)
    run = start_demo_run("complete-4", "bank", rate=10)
    wp = watch.add_watchpoint(run, "src == 'p1' and msg.amount >= 5", algorithm="lai-yang")
    snapshot = _triggered(run, wp.pk, workers)
    export = snapshot_export(snapshot)
    assert_sound_export(export, run)
    assert export["algorithm"] == "lai-yang" and export["initiator"] != "p1"
    assert "p1" in export["trigger"]


def test_a_watchpoint_that_does_not_parse_is_refused_with_where(transactional_db: None) -> None:
    run = start_demo_run("ring-5", "bank", rate=1)
    try:
        watch.add_watchpoint(run, "balanse < 10")
    except services.ServiceError as exc:
        assert "balanse" in str(exc) and "col" in str(exc), exc
    else:
        raise AssertionError("an unknown name was accepted")
    assert not run.watchpoints.exists()
