"""Snapshots that cannot finish end ``failed`` with a reason, never ``complete``.

A snapshot needs a record from every process and every channel. Here one shard's
worker is stopped, so nobody consumes its processes' queues: the markers sent to them
wait there, and the snapshot can only end by the timeout (enforced by the surviving
worker's recorder) or by the run being stopped.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from pytest_django.fixtures import Settings

from cluster.devserver.children import Child, stop_all
from snapshots import services
from snapshots.models import Run, Snapshot
from snapshots.presenter import snapshot_export
from tests.integration.engine_helpers import await_traffic, poll, start_demo_run

TIMEOUT = 4  # seconds: short, so the test is; the workers read it from the environment


def _run_with_a_dead_shard(workers: list[Child]) -> Run:
    """complete-4 with shard 1 (p2 and p4) stopped: the other two keep going."""
    run = start_demo_run("complete-4", "bank", rate=5)
    await_traffic(run, 10, workers)
    stop_all([workers[1]], timeout=30)
    assert workers[1].returncode == 0, workers[1].log_text()
    return run


def test_a_snapshot_that_cannot_finish_fails_at_the_timeout_naming_what_is_missing(
    cluster_workers: Callable[[int], list[Child]], monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    monkeypatch.setenv("CUTLINE_SNAPSHOT_TIMEOUT", str(TIMEOUT))
    settings.CUTLINE = {**settings.CUTLINE, "SNAPSHOT_TIMEOUT": float(TIMEOUT)}
    workers = cluster_workers(2)
    run = _run_with_a_dead_shard(workers)

    started = services.start_snapshot(run, "p1")
    snapshot = services.wait_for_snapshot(started.pk, 60)

    assert snapshot.status == Snapshot.Status.FAILED, snapshot_export(snapshot)
    assert snapshot.verdict is None, "a failed snapshot is never judged consistent"
    assert snapshot.duration is not None and snapshot.duration >= TIMEOUT
    # Nothing can come from p2 and p4; p1 and p3 (and the channels between them) have
    # reported unless the machine stalled for the whole timeout. The reason names
    # exactly what the database lacks.
    have_p = set(snapshot.process_records.values_list("process", flat=True))
    have_c = set(snapshot.channel_records.values_list("src", "dst"))
    assert have_p <= {"p1", "p3"} and have_c <= {("p1", "p3"), ("p3", "p1")}, (have_p, have_c)
    missing_p = [p for p in run.process_names if p not in have_p]
    missing_c = [f"{s}→{d}" for s, d in run.channel_pairs if (s, d) not in have_c]
    assert snapshot.reason == (
        f"timed out after {TIMEOUT} s; {len(have_p)} of 4 processes and {len(have_c)} of 12 channels reported;"
        f" no record from {', '.join(missing_p)};"
        f" no marker arrived on {', '.join(missing_c[:5])} and {len(missing_c) - 5} more"
    )
    assert (snapshot.processes_reported, snapshot.channels_reported) == (len(have_p), len(have_c))


def test_stopping_a_run_fails_its_running_snapshots_with_a_reason(
    cluster_workers: Callable[[int], list[Child]],
) -> None:
    workers = cluster_workers(2)
    run = _run_with_a_dead_shard(workers)
    started = [services.start_snapshot(run, "p1"), services.start_snapshot(run, "p3")]
    # Under way for real: the live shard has recorded its part of both.
    poll(
        lambda: [Snapshot.objects.get(pk=s.pk).processes_reported for s in started],
        lambda reported: reported == [2, 2],
        what="p1 and p3 to record their part of both snapshots",
        timeout=30,
        workers=[workers[0]],
    )

    services.set_run_status(run, Run.Status.STOPPED)

    for s in started:
        snapshot = services.wait_for_snapshot(s.pk, 30)
        assert snapshot.status == Snapshot.Status.FAILED, snapshot_export(snapshot)
        assert snapshot.reason == f"run {run.pk} was stopped before the snapshot finished"
        assert snapshot.verdict is None and snapshot.finished_at is not None
    with pytest.raises(services.ServiceError, match="is stopped"):
        services.start_snapshot(run, "p1")
    assert run.pk not in services.store().active_runs()
