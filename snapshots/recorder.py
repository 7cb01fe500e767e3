"""Moves snapshot records from the store into the database, and ends stale snapshots.

Processes put their records in the store in the same transaction as their state (see
``cluster/engine/store.py``); this thread takes them out in batches and hands them to
``snapshots.services.store_records``, which also decides when a snapshot is finished.
Every worker runs one; they share the work. A batch that cannot be stored (database
busy or gone) is put back and retried, so no record is lost on a database hiccup.
"""

from __future__ import annotations

import logging
import threading
import time

from django.db import close_old_connections, connections

from cluster.engine.store import Store
from snapshots import services

log = logging.getLogger("cutline.recorder")

BATCH = 500
WAIT = 0.2  # seconds to block for the first record of a batch
EXPIRE_EVERY = 1.0  # seconds between checks for snapshots past their timeout
RETRY_PAUSE = 1.0


class Recorder:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="cutline-recorder", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        self._thread.join(timeout)

    def _loop(self) -> None:
        next_expiry = 0.0
        while not self._stopping.is_set():
            records = []
            try:
                close_old_connections()
                records = self.store.pop_records(BATCH, WAIT)
                if records:
                    services.store_records(records)
                    records = []
                if time.monotonic() >= next_expiry:
                    next_expiry = time.monotonic() + EXPIRE_EVERY
                    services.expire_snapshots()
            except Exception:
                log.exception("storing %d records failed; they go back to the store", len(records))
                try:
                    self.store.push_back_records(records)
                except Exception:
                    log.exception("could not put %d records back", len(records))
                self._stopping.wait(RETRY_PAUSE)
        connections.close_all()
