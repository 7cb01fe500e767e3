"""Real Celery worker processes for the integration tests.

``cluster_workers`` starts workers exactly as ``make run`` does (cluster/devserver/launcher.py
builds both command lines), pointed at this session's Redis and broker and at the test
database, and returns once every worker answers a control ping. Tests that use it see
the database through ``transactional_db``: the workers are other processes, so they
only see committed rows (and SQLite would keep them waiting on a test's open write
transaction).

    def test_it_takes_a_snapshot(cluster_workers):
        cluster_workers(2)
        ...

When a test fails, every worker's log is attached to its report. ``replacement_worker``
starts a new worker for a shard whose worker a test stopped or killed (recovery tests).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from celery import Celery

from cluster.devserver.children import Child, StartupError, stop_all, wait_until
from cluster.devserver.launcher import (
    BASE_DIR,
    start_workers,
    wait_for_workers,
    worker_argv,
    worker_env,
    worker_nodename,
    worker_queue,
)
from tests.conftest import empty_own_redis

_WORKERS = pytest.StashKey[list[Child]]()


def _test_database_env() -> dict[str, str]:
    """Environment that points a worker at the database this test session created."""
    from django.db import connection

    name = str(connection.settings_dict["NAME"])
    if connection.vendor == "sqlite":
        if connection.creation.is_in_memory_db(name):
            raise pytest.UsageError("worker processes cannot share an in-memory SQLite test database")
        return {"CUTLINE_SQLITE_PATH": name}
    url = os.environ["DATABASE_URL"]
    return {"DATABASE_URL": urlsplit(url)._replace(path=f"/{name}").geturl()}


def _forget_broker_state(shards: int, own_redis: bool) -> None:
    """Leave nothing on the broker for the next test's workers to consume.

    Run ids restart with every flushed test database, so a queue left behind would
    feed an old run's frames to a new run of the same id. A bundled Redis (the store,
    and the broker unless CELERY_BROKER_URL is set) is simply emptied; on another
    broker the queues this test's runs used are deleted one by one.
    """
    from django.conf import settings

    from cluster.engine.transport import queue_name
    from snapshots.models import Run

    if settings.CELERY_BROKER_URL != settings.REDIS_URL:
        queues = [worker_queue(shard) for shard in range(shards)]
        for run_id, spec in Run.objects.values_list("id", "spec"):
            queues.extend(queue_name(run_id, p["name"]) for p in (spec or {}).get("processes", []))
        app = Celery("cutline-cleanup", broker=settings.CELERY_BROKER_URL, set_as_current=False)
        try:
            with app.connection_for_write() as connection:
                for queue in queues:
                    # A fresh channel each time: on AMQP a failed delete closes its channel.
                    with contextlib.suppress(Exception), connection.channel() as channel:
                        channel.queue_delete(queue)
        finally:
            app.close()
    empty_own_redis()


@pytest.fixture
def cluster_workers(
    request: pytest.FixtureRequest, transactional_db: None, own_redis: bool, tmp_path: Path
) -> Iterator[Callable[[int], list[Child]]]:
    """A function that starts ``n`` (default 2) real workers, shards 0..n-1; stopped after the test."""
    from django.conf import settings

    started: list[Child] = []
    request.node.stash[_WORKERS] = started

    def start(n: int = 2) -> list[Child]:
        if started:
            raise RuntimeError("cluster_workers already started workers for this test")
        env = {**os.environ, **_test_database_env()}
        workers = start_workers(n, env, log_dir=tmp_path / "workers")
        started.extend(workers)
        try:
            wait_for_workers(workers, settings.CELERY_BROKER_URL)
        except StartupError as exc:
            logs = "\n\n".join(f"--- {w.name} ---\n{w.log_text()}" for w in workers)
            pytest.fail(f"{exc}\n\n{logs}", pytrace=False)
        return workers

    yield start
    shards = len(started)
    stop_all(started)
    if shards:
        _forget_broker_state(shards, own_redis)


@pytest.fixture
def replacement_worker(
    request: pytest.FixtureRequest, cluster_workers: Callable[[int], list[Child]], tmp_path: Path
) -> Callable[[int, int], Child]:
    """A function that starts a new worker for shard ``i`` of ``n`` once its first one is gone.

    For recovery tests: stop or kill a worker of the cluster ``cluster_workers`` started,
    then start its replacement. The replacement joins that fixture's workers, so it is
    stopped with them and its log is attached to a failing test's report too.
    """
    from django.conf import settings

    def serves(worker: Child, shard: int) -> bool:
        # Names are "worker shard<i>" (cluster_workers) or "worker shard<i>#<n>" (replacements).
        return worker.name.split()[-1].partition("#")[0] == f"shard{shard}"

    def start(shard: int, shards: int) -> Child:
        started = request.node.stash.get(_WORKERS, [])
        if not started:
            raise RuntimeError("start the cluster with cluster_workers(n) before replacing a worker")
        if any(w.alive() and serves(w, shard) for w in started):
            raise RuntimeError(f"a worker for shard {shard} is still running: stop or kill it first")
        generation = 1 + sum(serves(w, shard) for w in started)
        env = {**os.environ, **_test_database_env()}
        worker = Child.start(
            f"worker shard{shard}#{generation}",
            worker_argv(shard),
            env=worker_env(env, shard, shards),
            cwd=BASE_DIR,
            log_path=tmp_path / "workers" / f"shard{shard}-{generation}.log",
        )
        started.append(worker)
        # Same readiness probe as wait_for_workers, for one node name (the old worker of
        # this shard answered to the same name, but it is gone).
        from config.celery import app

        probe = Celery("cutline-probe", broker=settings.CELERY_BROKER_URL, set_as_current=False)
        probe.conf.update(
            control_exchange=app.conf.control_exchange,
            broker_transport_options=app.conf.broker_transport_options,
            broker_connection_retry_on_startup=True,
        )
        name = worker_nodename(shard)
        try:
            wait_until(
                lambda: any(name in reply for reply in probe.control.ping(destination=[name], timeout=0.5)),
                what=f"{worker.name} to answer a ping",
                timeout=90.0,
                children=[worker],
            )
        except StartupError as exc:
            pytest.fail(f"{exc}\n\n--- {worker.name} ---\n{worker.log_text()}", pytrace=False)
        finally:
            probe.close()
        return worker

    return start


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The tests that run real workers are the ones a broker can break: CI runs them again
    # on RabbitMQ (``-m workers``); the others never reach a worker through the broker.
    for item in items:
        if "cluster_workers" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.workers)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed:
        for worker in item.stash.get(_WORKERS, []):
            report.sections.append((f"{worker.name} log", worker.log_text() or "(empty)"))
    return report
