"""``run start | status | stop`` end to end against real workers, each command in a
process of its own, as scripts call it.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from cluster.devserver.children import Child
from snapshots import services
from snapshots.models import Run
from tests.integration.cli.support import DIRECTED, status_table
from tests.integration.engine_helpers import (
    await_live_shards,
    await_traffic,
    cli,
    cli_concurrently,
    describe,
    parse_json_output,
)

pytestmark = pytest.mark.usefixtures("transactional_db")  # the CLI is another process: it sees commits only


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
    table = status_table(text.stdout)
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
