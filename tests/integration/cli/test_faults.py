"""``run faults`` end to end, each command in a process of its own: channel faults shown,
changed a setting at a time, seen in ``run status`` and cleared (a worker heartbeat is
enough: the faults go to Redis for the workers to read).
"""

from __future__ import annotations

import pytest

from snapshots import services
from tests.integration.cli.support import status_table
from tests.integration.engine_helpers import cli, cli_concurrently, describe, parse_json_output, start_demo_run

pytestmark = pytest.mark.usefixtures("transactional_db")  # the CLI is another process: it sees commits only


def test_faults_are_shown_changed_a_setting_at_a_time_and_cleared(heartbeat: None) -> None:
    run = start_demo_run("ring3", "bank", rate=1)
    r = str(run.pk)
    shown = cli("run", "faults", "--run", r)
    assert shown.returncode == 0 and shown.stdout.strip() == f"run {r}: every channel is plain (reliable, FIFO)"

    delayed = cli("run", "faults", "--run", r, "--channel", "p1->p2", "--delay-ms", "80", "--reorder")
    assert delayed.returncode == 0, describe(delayed)
    # Only what is given changes: the delay and the reordering stay when the loss is set.
    lossy = cli("run", "faults", "--run", r, "--channel", "p1→p2", "--loss", "0.3", "--json")
    assert lossy.returncode == 0, describe(lossy)
    faults = parse_json_output(lossy)
    assert faults["p1→p2"]["delay_ms"] == 80 and faults["p1→p2"]["reorder"] is True and faults["p1→p2"]["loss"] == 0.3
    run.refresh_from_db()
    assert run.faults == faults and services.store().run_meta(run.pk)["faults"] == faults

    table, status = cli_concurrently([["run", "faults", "--run", r], ["run", "status", r]])
    assert table.stdout.splitlines()[1].split(None, 1) == ["p1→p2", "delay 80 ms, non-FIFO, loss 0.3"], describe(table)
    rows = status_table(status.stdout)
    assert rows["faults"] == "p1→p2 delay 80 ms, non-FIFO, loss 0.3" and rows["epoch"] == "0", rows
    assert rows["retransmissions"] == "0" and rows["stale"] == "0", rows

    no_reorder = cli("run", "faults", "--run", r, "--channel", "p1->p2", "--no-reorder", "--json")
    assert parse_json_output(no_reorder)["p1→p2"].get("reorder", False) is False, describe(no_reorder)
    # Without --channel every channel changes, each keeping its other settings.
    everywhere = cli("run", "faults", "--run", r, "--delay-ms", "20", "--json")
    assert everywhere.returncode == 0, describe(everywhere)
    assert {channel: f["delay_ms"] for channel, f in parse_json_output(everywhere).items()} == {
        f"{s}→{d}": 20 for s, d in run.channel_pairs
    }
    assert parse_json_output(everywhere)["p1→p2"]["loss"] == 0.3
    cleared = cli("run", "faults", "--run", r, "--clear")
    assert cleared.returncode == 0 and "every channel is plain" in cleared.stdout, describe(cleared)
    run.refresh_from_db()
    assert run.faults == {}
