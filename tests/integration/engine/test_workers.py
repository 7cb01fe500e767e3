"""The worker fixture itself: real workers start, serve their shards and stop cleanly."""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings

from cluster.devserver.children import Child, stop_all, wait_until
from cluster.engine.store import Store


def test_each_worker_reports_its_own_shard(cluster_workers: Callable[[int], list[Child]]) -> None:
    workers = cluster_workers(2)
    store = Store.from_url(settings.REDIS_URL)
    wait_until(
        lambda: set(store.live_workers(time.time())) == {"0/2", "1/2"},
        what="both shards to report a heartbeat",
        timeout=30,
        children=workers,
    )
    assert all(w.alive() for w in workers)


def test_a_worker_shuts_down_cleanly_on_sigterm(cluster_workers: Callable[[int], list[Child]]) -> None:
    (worker,) = cluster_workers(1)
    stop_all([worker], timeout=30)
    assert worker.returncode == 0, worker.log_text()
