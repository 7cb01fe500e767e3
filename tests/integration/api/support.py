"""Helpers shared by the API and admin tests (no tests here): users in roles, sample data,
a response's body and a hostile request body.

A run started through the API really writes to the test Redis, and a snapshot really
puts an initiate message on the broker. Nothing consumes them in these tests, so
``forget_runs`` removes them afterwards: run ids restart with every rolled-back test,
and a later test's workers must not find an old run's messages under the same id.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from cluster.core import topology as topo
from cluster.engine.store import WORKERS
from cluster.engine.transport import queue_name
from snapshots import services
from snapshots.models import ChannelRecord, ProcessRecord, Run, Snapshot, Topology, Watchpoint
from snapshots.roles import sync_roles

ROLES = ("viewer", "operator", "staff")
DEEP = "[" * 50_000 + "]" * 50_000  # JSON nested far deeper than any parser should follow


def make_user(role: str | None, name: str | None = None) -> object:
    """A user in ``role`` (None: signed in, but no role at all)."""
    # Tests that flush the database (real workers) also drop the groups the migration made.
    sync_roles(apps)
    # No password: the tests sign in with tokens or force_login, and hashing one is slow.
    user = get_user_model().objects.create_user(username=name or f"{role or 'nobody'}-user")
    if role is not None:
        user.groups.add(Group.objects.get(name=role))
    if role == "staff":
        user.is_staff = True
        user.save(update_fields=["is_staff"])
    return user


def token_client(user: object) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def make_topology(name: str = "ring3", n: int = 3) -> Topology:
    return services.import_topology(topo.ring(n, two_way=True, name=name))


def make_run(topology: Topology, status: str = Run.Status.RUNNING) -> Run:
    """A run row only (no runtime state): enough for everything that reads history."""
    spec = topology.to_dict()
    return Run.objects.create(
        topology=topology,
        workload=topology.workload,
        rate=1.0,
        spec=spec,
        status=status,
        expected_total=sum(p.get("balance", p.get("tokens", 0)) for p in spec["processes"]),
    )


def make_finished_snapshot(run: Run, initiator: str = "p1", in_flight: int = 1) -> Snapshot:
    """A complete, consistent snapshot of a 3-ring with ``in_flight`` messages on p1→p2."""
    names = run.process_names
    now = datetime.now(UTC)
    snapshot = Snapshot.objects.create(
        run=run,
        initiator=initiator,
        status=Snapshot.Status.COMPLETE,
        processes_total=len(names),
        channels_total=len(run.channel_pairs),
        processes_reported=len(names),
        channels_reported=len(run.channel_pairs),
    )
    for name in names:
        ProcessRecord.objects.create(
            snapshot=snapshot,
            process=name,
            state={"balance": 100 - (10 * in_flight if name == "p1" else 0)},
            sent={dst: in_flight if (name, dst) == ("p1", "p2") else 0 for s, dst in run.channel_pairs if s == name},
            received={src: 0 for src, d in run.channel_pairs if d == name},
            clock={name: in_flight} if name == "p1" else {},
            recorded_at=now,
        )
    for src, dst in run.channel_pairs:
        messages = (
            [{"seq": i, "payload": {"amount": 10}} for i in range(1, in_flight + 1)]
            if (src, dst) == ("p1", "p2")
            else []
        )
        ChannelRecord.objects.create(snapshot=snapshot, src=src, dst=dst, messages=messages, closed_at=now)
    process_records = [r.to_dict() for r in snapshot.process_records.all()]
    channel_records = [r.to_dict() for r in snapshot.channel_records.all()]
    snapshot.verdict = services.verdict_of(run, process_records, channel_records)
    snapshot.finished_at = datetime.now(UTC)
    snapshot.save(update_fields=["verdict", "finished_at"])
    return snapshot


def as_left_by_a_watchpoint(snapshot: Snapshot, watchpoint: Watchpoint | None = None) -> Snapshot:
    """The snapshot as a watchpoint on a restored run would have left it, with its properties."""
    snapshot.algorithm, snapshot.epoch = "lai-yang", 2
    snapshot.watchpoint, snapshot.trigger = watchpoint, "balance = 90" if watchpoint else ""
    snapshot.properties = {
        "conservation": {"holds": True, "detail": "300 of 300"},
        "termination": {"holds": None, "detail": "the bank workload never ends"},
        "deadlock": {"holds": False, "detail": "nobody waits", "cycle": []},
    }
    snapshot.save()
    return snapshot


def body(response: Any) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


@contextlib.contextmanager
def live_cluster() -> Iterator[None]:
    """A worker heartbeat, so ``check_cluster`` lets runs and snapshots start; no worker runs."""
    store = services.store()
    store.heartbeat(0, 1, "api-test", time.time() + 600)
    try:
        yield
    finally:
        store.redis.hdel(WORKERS, "0/1")
        forget_runs()


def forget_runs() -> None:
    """Remove what the runs of this test left in Redis and on the broker."""
    from config.celery import app

    runs = [(run_id, [p["name"] for p in spec["processes"]]) for run_id, spec in Run.objects.values_list("id", "spec")]
    for run_id, names in runs:
        services.store().delete_run(run_id, names)
    with app.connection_for_write() as connection:
        for run_id, names in runs:
            for name in names:
                # Emptied, not deleted: this process's producer remembers having declared
                # the queue, so on AMQP a later publish to a deleted one would be dropped.
                # A fresh channel each time: on AMQP a failed purge closes its channel.
                with contextlib.suppress(Exception), connection.channel() as channel:
                    channel.queue_purge(queue_name(run_id, name))
