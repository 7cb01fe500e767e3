"""Concurrent writers on one database: "database is locked" is a bug.

Every worker stores records from a recorder thread of its own, so with two workers two
processes write at once — while the test process inserts snapshots and reads them back.
On SQLite that holds only with WAL and IMMEDIATE transactions waiting on busy_timeout
(config/settings.py); the test runs on whatever database the session uses.
"""

from __future__ import annotations

from collections.abc import Callable

from cluster.devserver.children import Child
from snapshots import services
from snapshots.models import ChannelRecord, ProcessRecord, Snapshot
from snapshots.presenter import snapshot_export
from tests.integration.engine_helpers import (
    SNAPSHOT_WAIT,
    assert_logs_clean,
    assert_sound_export,
    await_traffic,
    start_demo_run,
)

# Four at once: ~1600 rows from two writers. More only makes the markers queue up behind
# each other on this 2-core machine (ten took 30–60 s here, at the snapshot timeout).
SNAPSHOTS = 4


def test_concurrent_snapshots_of_100_processes_complete_without_database_is_locked(
    cluster_workers: Callable[[int], list[Child]],
) -> None:
    workers = cluster_workers(2)
    run = start_demo_run("random-100", "bank", rate=0.5)
    await_traffic(run, 50, workers)
    names = run.process_names
    # Snapshots from initiators spread over the graph, inserted one after another while
    # the first ones' records already pour in.
    started = [services.start_snapshot(run, names[i * len(names) // SNAPSHOTS]) for i in range(SNAPSHOTS)]
    ids = [s.pk for s in started]

    # Each time one finishes, the test process reads every one of them back whole, as
    # the dashboard or the API would, while the workers still write the others.
    exports = []
    for pk in ids:
        exports.append(snapshot_export(services.wait_for_snapshot(pk, SNAPSHOT_WAIT)))
        for snapshot in Snapshot.objects.filter(pk__in=ids):
            snapshot_export(snapshot)

    for export in exports:
        assert_sound_export(export, run)
    assert ProcessRecord.objects.filter(snapshot_id__in=ids).count() == SNAPSHOTS * len(names)
    assert ChannelRecord.objects.filter(snapshot_id__in=ids).count() == SNAPSHOTS * len(run.channel_pairs)
    # A record batch that failed would have been retried and the test could still pass:
    # the logs must show no failure at all.
    assert_logs_clean(workers, "database is locked", "storing", "Traceback")
