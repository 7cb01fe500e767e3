"""The command line end to end: ``manage.py`` in processes of their own, as scripts call it.

Each command runs with the environment the workers get (``cli_env``), so it talks to
the same test database, Redis and broker as the real workers of ``cluster_workers``.
Success paths run against real workers; argument errors need only a worker heartbeat
(``check_cluster`` looks no further), so they fake one and spare the workers' start-up.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cluster.devserver.children import Child, free_port
from cluster.engine.store import WORKERS
from snapshots import services
from snapshots.models import Run, Snapshot, Topology
from tests.integration.engine_helpers import (
    EXPORT_KEYS,
    assert_sound_export,
    await_live_shards,
    await_traffic,
    cli,
    cli_concurrently,
    cli_env,
    describe,
    parse_json_output,
    start_demo_run,
)

pytestmark = pytest.mark.usefixtures("transactional_db")  # the CLI is another process: it sees commits only

DIRECTED = {
    "name": "cli-directed-4",
    "workload": "bank",
    "processes": [{"name": n, "balance": b} for n, b in (("a", 10), ("b", 20), ("c", 30), ("d", 40))],
    "channels": [["a", "b"], ["b", "c"], ["c", "d"], ["d", "a"], ["a", "c"]],
}
TOKEN_PAIR = {
    "name": "cli-token-pair",
    "workload": "token",
    "processes": [{"name": "x", "tokens": 0}, {"name": "y", "tokens": 1}],
    "channels": [["x", "y"], ["y", "x"]],
}


@pytest.fixture
def heartbeat(redis_url: str) -> Iterator[None]:
    """A worker heartbeat and no worker: enough for commands that fail on their arguments."""
    store = services.store()
    store.heartbeat(0, 1, "cli-test", time.time() + 600)
    try:
        yield
    finally:
        store.redis.hdel(WORKERS, "0/1")
        # start_run wrote the runs to the store; nothing was put on the broker.
        for run in Run.objects.all():
            store.delete_run(run.pk, run.process_names)


def _error_line(stderr: str) -> str:
    """What Django prints for a CommandError: ``CommandError: <message>``."""
    return stderr.strip().splitlines()[-1] if stderr.strip() else ""


def _status_table(stdout: str) -> dict[str, str]:
    """``run status`` prints ``key  value`` rows; keys have spaces, so split on the wide gap."""
    return dict(re.split(r"\s{2,}", line.strip(), maxsplit=1) for line in stdout.splitlines() if line.strip())


# --- topologies ---------------------------------------------------------------------------


def test_a_topology_round_trips_through_import_list_and_export(tmp_path: Path) -> None:
    files = {}
    for data in (DIRECTED, TOKEN_PAIR):
        files[data["name"]] = tmp_path / f"{data['name']}.json"
        files[data["name"]].write_text(json.dumps(data))

    imported = cli_concurrently([["topology", "import", str(path)] for path in files.values()])
    assert [d.returncode for d in imported] == [0, 0], [describe(d) for d in imported]
    assert imported[0].stdout.strip().endswith("imported cli-directed-4: 4 processes, 5 channels")

    listed, directed, token = cli_concurrently(
        [["topology", "list"], ["topology", "export", "cli-directed-4"], ["topology", "export", "cli-token-pair"]]
    )
    assert listed.returncode == 0, describe(listed)
    rows = {line.split()[0]: line.split()[1:] for line in listed.stdout.splitlines()[1:]}
    assert rows["cli-directed-4"] == ["bank", "4", "5"] and rows["cli-token-pair"] == ["token", "2", "2"], rows
    # What goes in comes out: names, balances or tokens, and the channels in their order.
    assert parse_json_output(directed) == DIRECTED
    assert parse_json_output(token) == TOKEN_PAIR


@pytest.mark.parametrize(
    ("content", "problems"),
    [
        pytest.param(
            {**DIRECTED, "channels": [["a", "b"], ["b", "a"], ["b", "c"], ["c", "d"]]},
            ["c cannot reach a", "the graph must be strongly connected"],
            id="not-strongly-connected",
        ),
        pytest.param(
            {**DIRECTED, "channels": [["a", "a"], ["a", "b"], ["a", "b"], *DIRECTED["channels"][1:]]},
            ["channel a→a is a self-loop", "channel a→b is defined twice"],
            id="self-loop-and-duplicate",
        ),
        pytest.param("{not json", ["is not valid JSON"], id="not-json"),
    ],
)
def test_an_invalid_topology_file_is_refused_naming_the_problem(
    tmp_path: Path, content: Any, problems: list[str]
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    done = cli("topology", "import", str(path))
    assert done.returncode != 0, describe(done)
    for problem in problems:
        assert problem in done.stderr, describe(done)
    assert "Traceback" not in done.stderr, describe(done)
    assert not Topology.objects.exists()


# --- runs and snapshots against real workers ---------------------------------------------


def test_run_start_prints_the_id_alone_on_its_last_line_and_status_shows_the_counters(
    cluster_workers: Callable[[int], list[Child]],
) -> None:
    workers = cluster_workers(2)
    services.import_topology(DIRECTED)
    await_live_shards(2, workers)

    started = cli("run", "start", "--topology", "cli-directed-4", "--workload", "bank", "--rate", "10")
    assert started.returncode == 0, describe(started)
    last = started.stdout.splitlines()[-1]
    assert re.fullmatch(r"\d+", last), describe(started)
    run = Run.objects.get(pk=int(last))
    assert (run.topology.name, run.workload, run.rate, run.status) == ("cli-directed-4", "bank", 10.0, "running")

    await_traffic(run, 20, workers)
    text, as_json = cli_concurrently([["run", "status", last], ["run", "status", last, "--json"]])
    assert text.returncode == 0, describe(text)
    table = _status_table(text.stdout)
    for row in ("messages sent", "messages applied", "messages in flight", "duplicates", "gaps", "reorders"):
        assert row in table, describe(text)
    assert int(table["messages applied"]) >= 20 and table["duplicates"] == table["gaps"] == "0", table
    assert table["snapshots"] == "0 running, 0 complete, 0 failed", table
    status = parse_json_output(as_json)
    assert status["run"] == run.pk and status["messages_applied"] >= 20, status
    assert status["held_at_processes"] <= status["expected_total"] == 100, status

    stopped = cli("run", "stop", last)
    assert stopped.returncode == 0 and stopped.stdout.strip() == f"run {run.pk} stopped", describe(stopped)
    run.refresh_from_db()
    assert run.status == Run.Status.STOPPED and run.pk not in services.store().active_runs()


def test_snapshot_commands_started_at_once_from_different_shells_all_succeed(
    cluster_workers: Callable[[int], list[Child]],
) -> None:
    workers = cluster_workers(2)
    run = start_demo_run("complete-4", "bank", rate=10)
    await_live_shards(2, workers)
    await_traffic(run, 20, workers)

    commands = [["snapshot", "--run", str(run.pk), "--initiator", p, "--json"] for p in ("p1", "p2", "p3")]
    commands.append(["snapshot", "--run", str(run.pk), "--initiator", "p4"])  # the readable table
    *as_json, table = cli_concurrently(commands)

    exports = [parse_json_output(done) for done in as_json]
    assert all(done.returncode == 0 for done in as_json), [describe(d) for d in as_json]
    assert len({e["id"] for e in exports}) == 3
    for export, initiator in zip(exports, ("p1", "p2", "p3"), strict=True):
        assert set(export) == EXPORT_KEYS and export["initiator"] == initiator
        # The CLI prints exactly what the database holds, in the export shape.
        stored = Snapshot.objects.get(pk=export["id"]).to_dict()
        assert export == json.loads(json.dumps(stored))
        assert_sound_export(export, run)

    assert table.returncode == 0, describe(table)
    assert re.search(r"snapshot \d+ of run \d+, started at p4: complete", table.stdout), describe(table)
    assert "verdict: consistent · 400 of 400 conserved · 0 problems" in table.stdout, describe(table)


# --- wrong arguments and a missing system ---------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["run", "start", "--topology", "nope"], "no topology named 'nope' (known: complete-4)", id="topo"),
        pytest.param(["snapshot", "--run", "9999"], "no run with id '9999'", id="run"),
        pytest.param(["snapshot", "--run", "{run}", "--initiator", "p9"], "has no process 'p9'", id="initiator"),
        pytest.param(
            ["run", "start", "--topology", "complete-4", "--workload", "token"],
            "cannot run the token workload",
            id="workload",
        ),
    ],
)
def test_a_wrong_argument_fails_with_a_message_naming_it(heartbeat: None, args: list[str], message: str) -> None:
    run = start_demo_run("complete-4", "bank", rate=1)
    done = cli(*(a.format(run=run.pk) for a in args))
    assert done.returncode != 0, describe(done)
    assert message in _error_line(done.stderr), describe(done)
    assert Run.objects.count() == 1 and not Snapshot.objects.exists()


def test_commands_say_cutline_is_not_running_when_no_worker_is(redis_url: str, own_redis: bool) -> None:
    if not own_redis:
        pytest.skip("needs a Redis without worker heartbeats: the bundled one")
    services.store().redis.delete(WORKERS)
    run = start_demo_run("complete-4", "bank", rate=1)
    try:
        results = cli_concurrently([["run", "start", "--topology", "complete-4"], ["snapshot", "--run", str(run.pk)]])
    finally:
        services.store().delete_run(run.pk, run.process_names)
    for done in results:
        assert done.returncode != 0, describe(done)
        assert "Cutline is not running: no worker has reported" in _error_line(done.stderr), describe(done)
    assert Run.objects.count() == 1 and not Snapshot.objects.exists()


def test_commands_say_cutline_is_not_running_when_redis_is_unreachable(redis_url: str) -> None:
    run = start_demo_run("complete-4", "bank", rate=1)
    # A port nobody listens on: the Redis `make run` would have started is gone.
    env = cli_env(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    try:
        results = cli_concurrently(
            [
                ["run", "start", "--topology", "complete-4"],
                ["snapshot", "--run", str(run.pk)],
                ["run", "status", str(run.pk)],
                ["run", "stop", str(run.pk)],
            ],
            env=env,
        )
    finally:
        services.store().delete_run(run.pk, run.process_names)
    for done in results:
        assert done.returncode != 0, describe(done)
        assert "Traceback" not in done.stderr, describe(done)
        assert "Cutline is not running: cannot reach Redis" in _error_line(done.stderr), describe(done)
    # A command that failed changed nothing: the database still agrees with the workers.
    run.refresh_from_db()
    assert run.status == Run.Status.RUNNING
