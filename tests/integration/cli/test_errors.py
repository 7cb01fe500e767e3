"""What every command says when it cannot do what it was asked, in one line and with no
traceback: a wrong argument, no worker, no Redis. Each runs in a process of its own, with
the environment the workers get (``cli_env``); a worker heartbeat (``check_cluster`` looks
no further) stands in for the workers, whose start-up these tests spare.
"""

from __future__ import annotations

import pytest

from cluster.devserver.children import free_port
from cluster.engine.store import WORKERS
from snapshots import services
from snapshots.models import Run, Snapshot, Watchpoint
from tests.integration.engine_helpers import cli, cli_concurrently, cli_env, describe, start_demo_run

pytestmark = pytest.mark.usefixtures("transactional_db")  # the CLI is another process: it sees commits only


def _error_line(stderr: str) -> str:
    """What Django prints for a CommandError: ``CommandError: <message>``."""
    return stderr.strip().splitlines()[-1] if stderr.strip() else ""


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


def test_every_new_command_refuses_a_wrong_argument_in_one_line(heartbeat: None) -> None:
    run = start_demo_run("ring3", "bank", rate=1)
    running = services.start_snapshot(run, "p1")
    r, s = str(run.pk), str(running.pk)
    cases = [
        (["run", "faults", "--run", r, "--channel", "p1->p9", "--loss", "0.1"], "has no channel 'p1→p9'"),
        (["run", "faults", "--run", r, "--channel", "p1->p2", "--loss", "2"], "loss must be a fraction from 0 to 0.9"),
        (["run", "faults", "--run", r, "--channel", "p1->p2", "--delay-ms", "-3"], "delay_ms must be a whole number"),
        (["run", "faults", "--run", r, "--channel", "p1->p2"], "give p1→p2 new settings"),
        (["run", "faults", "--run", r, "--channel", "p1->p2", "--clear", "--loss", "0.1"], "either --clear or new"),
        (["run", "watch", "add", "--run", r, "--condition", "balance <"], "condition 'balance <': col"),
        (["run", "watch", "add", "--run", r, "--condition", "balance < 1", "--process", "p9"], "has no process 'p9'"),
        (["run", "watch", "remove", "--run", r, "999"], f"run {r} has no watchpoint '999'"),
        (["run", "restore", "--run", r, "--snapshot", "999"], "no snapshot with id '999'"),
        (["run", "restore", "--run", r, "--snapshot", s], "only a complete snapshot can be restored"),
        (["run", "restore", "--run", "999", "--snapshot", s], "no run with id '999'"),
        (["snapshot", "compare", s, "999"], "no snapshot with id '999'"),
        (["snapshot", "compare", s, s], "only complete snapshots can be compared"),
        (["snapshot", "--run", r, "--algorithm", "naive"], "invalid choice: 'naive'"),
        (["snapshot", "--initiator", "p1"], "name the run to snapshot: --run RUN"),
    ]
    results = cli_concurrently([args for args, _ in cases])
    for (args, message), done in zip(cases, results, strict=True):
        assert done.returncode != 0, describe(done)
        assert "Traceback" not in done.stderr, describe(done)
        assert message in _error_line(done.stderr), (args, describe(done))
    run.refresh_from_db()
    assert (run.epoch, run.faults) == (0, {}) and not Watchpoint.objects.exists()
    assert Snapshot.objects.count() == 1


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
