"""Every event of a run's log has an id: the run's counter, in the log's order.

The dashboard names the events it shows by these ids (``window.cutline.trace``), and
``/api/runs/{id}/events/`` serves them, so an id must be given once, follow the order
in which events were committed, and survive the trimming of older events.
"""

from __future__ import annotations

import redis

from cluster.engine.store import StepCommit, Store

RUN = 990_001


def _commit(store: Store, *kinds: str) -> list[dict[str, object]]:
    events: list[dict[str, object]] = [{"kind": k, "process": "p1", "clock": {"p1": 1}} for k in kinds]
    store.commit_steps(RUN, [StepCommit("p1", {"name": "p1"}, [], [], events)])
    return events


def test_events_are_numbered_in_commit_order_and_keep_their_ids_when_trimmed(redis_url: str) -> None:
    store = Store(redis.Redis.from_url(redis_url), event_limit=4)
    store.delete_run(RUN, ["p1"])
    try:
        first = _commit(store, "send", "record")
        second = _commit(store, "marker_send", "receive", "local_done")
        # The caller's events are numbered in place, for the live stream.
        assert [e["id"] for e in first + second] == [1, 2, 3, 4, 5]
        logged = store.events(RUN)
        # Only the newest four are kept; each keeps the id it was given.
        assert [(e["id"], e["kind"]) for e in logged] == [
            (2, "record"),
            (3, "marker_send"),
            (4, "receive"),
            (5, "local_done"),
        ]
        store.replace_processes(RUN, {}, [], {"status": "running"}, [{"kind": "restore", "process": "p1", "clock": {}}])
        assert store.events(RUN)[-1]["id"] == 6
    finally:
        store.delete_run(RUN, ["p1"])
