"""A worker heartbeat with no worker, for the command-line tests that need no engine.

Django is imported inside the fixture: pytest loads this file before tests/conftest.py
has chosen the settings.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from cluster.engine.store import WORKERS


@pytest.fixture
def heartbeat(redis_url: str) -> Iterator[None]:
    """A worker heartbeat and no worker: runs start (into Redis), nothing runs them.

    Enough for commands that fail on their arguments, and for those that only change
    what the workers will read (faults, watchpoints).
    """
    from snapshots import services
    from snapshots.models import Run

    store = services.store()
    store.heartbeat(0, 1, "cli-test", time.time() + 600)
    try:
        yield
    finally:
        store.redis.hdel(WORKERS, "0/1")
        # start_run wrote the runs to the store; nothing was put on the broker.
        for run in Run.objects.all():
            store.delete_run(run.pk, run.process_names)
