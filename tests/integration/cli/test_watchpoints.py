"""``run watch add | list | remove`` end to end, each command in a process of its own:
a watchpoint that triggers its snapshot on real workers, and (with a worker heartbeat
only) watchpoints listed and removed.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from cluster.devserver.children import Child
from snapshots import services
from snapshots.models import Snapshot, Watchpoint
from snapshots.presenter import snapshot_export
from tests.integration.engine_helpers import (
    assert_sound_export,
    await_live_shards,
    cli,
    cli_concurrently,
    describe,
    parse_json_output,
    start_demo_run,
)

pytestmark = pytest.mark.usefixtures("transactional_db")  # the CLI is another process: it sees commits only


def test_a_watchpoint_added_from_the_command_line_triggers_its_snapshot(
    cluster_workers: Callable[[int], list[Child]],
) -> None:
    workers = cluster_workers(2)
    run = start_demo_run("ring-5", "bank", rate=10)
    await_live_shards(2, workers)

    added = cli(
        "run", "watch", "add", "--run", str(run.pk), "--condition", "balance != 100", "--process", "p3", "--wait", "60"
    )
    assert added.returncode == 0, describe(added)
    lines = added.stdout.strip().splitlines()
    wp = Watchpoint.objects.get(pk=int(lines[-1]))
    assert lines[0] == (
        f"added watchpoint {wp.pk} on run {run.pk} at p3: balance != 100 (state condition, once, chandy-lamport)"
    )
    snapshot = Snapshot.objects.get(watchpoint=wp)
    assert lines[1] == (
        f"snapshot {snapshot.pk} (chandy-lamport) triggered at p3: {snapshot.trigger} — complete, sound"
    ), describe(added)
    assert_sound_export(snapshot_export(snapshot), run)

    listed = cli("run", "watch", "list", "--run", str(run.pk))
    assert listed.returncode == 0, describe(listed)
    row = listed.stdout.splitlines()[1].split()
    assert row[:7] == [str(wp.pk), "p3", "state", "once", "chandy-lamport", "no", "1"], describe(listed)


# --- with a heartbeat only ----------------------------------------------------------------


def test_watchpoints_are_listed_and_removed(heartbeat: None) -> None:
    run = start_demo_run("ring3", "bank", rate=1)
    r = str(run.pk)
    added = cli(
        "run", "watch", "add", "--run", r, "--condition", "src == 'p1' and msg.amount > 5",
        "--mode", "every", "--cooldown", "3", "--algorithm", "lai-yang",
    )  # fmt: skip
    assert added.returncode == 0, describe(added)
    wp = Watchpoint.objects.get(pk=int(added.stdout.splitlines()[-1]))
    assert (wp.kind, wp.mode, wp.cooldown_s, wp.algorithm, wp.process) == ("event", "every", 3.0, "lai-yang", "")
    assert "every time, at most every 3 s" in added.stdout
    assert [w["id"] for w in services.store().run_meta(run.pk)["watchpoints"]] == [wp.pk]

    listed, as_json = cli_concurrently(
        [["run", "watch", "list", "--run", r], ["run", "watch", "list", "--run", r, "--json"]]
    )
    row = listed.stdout.splitlines()[1].split()
    assert row[:8] == [str(wp.pk), "any", "event", "every", "3s", "lai-yang", "yes", "0"], describe(listed)
    assert listed.stdout.splitlines()[1].endswith("  src == 'p1' and msg.amount > 5")
    assert parse_json_output(as_json) == [json.loads(json.dumps(wp.to_dict()))]

    removed = cli("run", "watch", "remove", "--run", r, str(wp.pk))
    assert removed.returncode == 0 and removed.stdout.strip() == f"removed watchpoint {wp.pk} of run {r}"
    assert not Watchpoint.objects.exists() and services.store().run_meta(run.pk)["watchpoints"] == []
    empty = cli("run", "watch", "list", "--run", r)
    assert empty.stdout.strip() == f"run {r} has no watchpoints"
