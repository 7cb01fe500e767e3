"""``snapshot`` end to end against real workers, each command in a process of its own:
taken from several shells at once, with either algorithm, compared with
``snapshot compare``, and one restored with ``run restore``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import pytest

from cluster.devserver.children import Child
from snapshots import services
from snapshots.models import Run, Snapshot
from snapshots.presenter import snapshot_export
from tests.integration.cli.support import status_table
from tests.integration.engine_helpers import (
    EXPORT_KEYS,
    assert_sound_export,
    await_live_shards,
    await_traffic,
    cli,
    cli_concurrently,
    describe,
    parse_json_output,
    start_demo_run,
)

pytestmark = pytest.mark.usefixtures("transactional_db")  # the CLI is another process: it sees commits only


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
        stored = snapshot_export(Snapshot.objects.get(pk=export["id"]))
        assert export == json.loads(json.dumps(stored))
        assert_sound_export(export, run)

    assert table.returncode == 0, describe(table)
    assert re.search(r"snapshot \d+ of run \d+, started at p4: complete", table.stdout), describe(table)
    assert "verdict: consistent · 400 of 400 conserved · 0 problems" in table.stdout, describe(table)


def test_snapshots_with_either_algorithm_are_compared_and_one_is_restored(
    cluster_workers: Callable[[int], list[Child]],
) -> None:
    workers = cluster_workers(2)
    run = start_demo_run("complete-4", "bank", rate=10)
    await_live_shards(2, workers)
    await_traffic(run, 30, workers)

    lai_yang = cli("snapshot", "--run", str(run.pk), "--algorithm", "lai-yang", "--json")
    assert lai_yang.returncode == 0, describe(lai_yang)
    first = parse_json_output(lai_yang)
    assert set(first) == EXPORT_KEYS and first["algorithm"] == "lai-yang"
    assert_sound_export(first, run)
    await_traffic(run, services.run_status(run)["messages_applied"] + 30, workers)
    table = cli("snapshot", "--run", str(run.pk), "--initiator", "p3")
    assert table.returncode == 0, describe(table)
    assert "algorithm chandy-lamport, epoch 0" in table.stdout, describe(table)
    assert re.search(r"^conservation: holds — ", table.stdout, re.MULTILINE), describe(table)
    second = Snapshot.objects.filter(run=run).order_by("-id").first()
    assert second is not None and second.pk != first["id"]

    as_text, as_json = cli_concurrently(
        [
            ["snapshot", "compare", str(first["id"]), str(second.pk)],
            ["snapshot", "compare", str(first["id"]), str(second.pk), "--json"],
        ]
    )
    assert as_text.returncode == 0 and as_json.returncode == 0, describe(as_text) + describe(as_json)
    comparison = parse_json_output(as_json)
    assert comparison == json.loads(
        json.dumps(services.compare_snapshots(Snapshot.objects.get(pk=first["id"]), second))
    )
    assert as_text.stdout.startswith(f"a = snapshot {first['id']} (lai-yang from p1, epoch 0)\n"), describe(as_text)
    assert f"b = snapshot {second.pk} (chandy-lamport from p3, epoch 0)" in as_text.stdout
    assert f"processes: {comparison['totals']['processes_changed']} changed" in as_text.stdout
    changed = next(p for p in comparison["processes"] if not p["same"])
    balance = next(c for c in changed["changes"] if c["key"] == "balance")
    assert f"{changed['process']} " in as_text.stdout and f"balance {balance['a']} → {balance['b']}" in as_text.stdout

    restored = cli("run", "restore", "--run", str(run.pk), "--snapshot", str(first["id"]))
    assert restored.returncode == 0, describe(restored)
    in_channels = sum(len(c["messages"]) for c in first["channels"])
    assert restored.stdout.strip() == (
        f"run {run.pk} restored from snapshot {first['id']}: epoch 1, {in_channels} recorded messages delivered"
        f" again, {Run.objects.get(pk=run.pk).restores.get().dropped_frames} frames in flight dropped"
    ), describe(restored)
    status = cli("run", "status", str(run.pk))
    assert status.returncode == 0, describe(status)
    rows = status_table(status.stdout)
    assert rows["epoch"] == "1" and rows["faults"] == "none" and rows["stale"].isdigit(), rows

    # The run goes on from the restored state, and the next snapshot is sound.
    await_traffic(run, services.run_status(run)["messages_applied"] + 30, workers)
    later = cli("snapshot", "--run", str(run.pk), "--json")
    assert later.returncode == 0, describe(later)
    assert parse_json_output(later)["epoch"] == 1
    assert_sound_export(parse_json_output(later), run)
