"""A cluster driven past what it can do, on a machine loaded on purpose: no collapse.

A CPU hog the test starts (and bounds with ``timeout``) shares the cores with the workers
while a run offers far more workload steps than they can apply. With flow control (the
default, ``cluster/core/flow.py``) the senders are held back: no channel has more than
its window in flight, the run's status says so, and snapshots finish while it lasts.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest

from cluster.core import topology as topo
from cluster.devserver.children import Child
from snapshots import services
from tests.integration.engine_helpers import (
    SNAPSHOT_WAIT,
    assert_clean_fifo,
    assert_logs_clean,
    assert_records_match_event_log,
    assert_sound_export,
    await_drained,
    poll,
    set_run_status_everywhere,
    snapshot_all,
)

HOG_SECONDS = 300  # the hog's own bound: it ends by then even if the test dies


@pytest.fixture
def cpu_hog() -> Iterator[None]:
    """Two busy loops, one per core, for the length of the test (and at most HOG_SECONDS)."""
    hogs = [subprocess.Popen(["timeout", str(HOG_SECONDS), sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    yield
    for hog in hogs:
        hog.terminate()  # timeout passes the TERM on to its busy loop
    for hog in hogs:
        hog.wait(timeout=10)


def test_senders_to_a_full_channel_are_held_back_and_snapshots_still_finish(
    cpu_hog: None, cluster_workers: Callable[[int], list[Child]]
) -> None:
    workers = cluster_workers(2)
    topology = services.import_topology(topo.random_strongly_connected(30, degree=3.0, seed=30, name="overload-30"))
    run = services.start_run(topology, "bank", rate=100, seed=6)
    meta = services.store().run_meta(run.pk)
    assert meta is not None and meta["window"] > 0
    # Workload steps send at most one message, receiving sends none: with no snapshot
    # running, every frame in flight is inside some channel's window.
    bound = len(run.channel_pairs) * meta["window"]

    held = poll(
        lambda: services.run_status(run),
        lambda s: s["held_back"],
        what="flow control to hold the run back",
        timeout=60,
        workers=workers,
        interval=0.5,
    )
    assert held["held_back_channels"], held
    assert 0 < held["achieved_rate"] < held["offered_rate"] == 100 * 30, held
    assert held["messages_in_flight"] <= bound, held

    # Snapshots of the held-back run, three at once: their markers are never held back.
    picks = [(run, name) for name in run.process_names[::10]]
    exports = snapshot_all(picks)
    still = services.run_status(run)
    assert still["held_back"] and still["messages_in_flight"] <= bound + len(run.channel_pairs), still

    set_run_status_everywhere(run, "paused", 2, workers)
    await_drained(run, workers, timeout=SNAPSHOT_WAIT)
    for export in exports:
        assert_sound_export(export, run)
    assert_records_match_event_log(exports, run)
    assert_clean_fifo(run)
    assert_logs_clean(workers, "delivering them from the channel log")
