"""The command line of issue 5 end to end, each command in a process of its own:
``snapshot --algorithm``, ``snapshot compare``, ``run restore``, ``run faults``,
``run watch add | list | remove`` and what ``run status`` now shows.

As in test_cli.py, success paths that need the engine run against real workers; the
rest (faults, the watchpoint list, every refusal) need only a worker heartbeat.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator

import pytest

from cluster.devserver.children import Child
from cluster.engine.store import WORKERS
from snapshots import services
from snapshots.models import Run, Snapshot, Watchpoint
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


@pytest.fixture
def heartbeat(redis_url: str) -> Iterator[None]:
    """A worker heartbeat and no worker: runs start (into Redis), nothing runs them."""
    store = services.store()
    store.heartbeat(0, 1, "cli-test", time.time() + 600)
    try:
        yield
    finally:
        store.redis.hdel(WORKERS, "0/1")
        for run in Run.objects.all():
            store.delete_run(run.pk, run.process_names)


def _error_line(stderr: str) -> str:
    return stderr.strip().splitlines()[-1] if stderr.strip() else ""


def _status_table(stdout: str) -> dict[str, str]:
    return dict(re.split(r"\s{2,}", line.strip(), maxsplit=1) for line in stdout.splitlines() if line.strip())


# --- against real workers -----------------------------------------------------------------


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
    rows = _status_table(status.stdout)
    assert rows["epoch"] == "1" and rows["faults"] == "none" and rows["stale"].isdigit(), rows

    # The run goes on from the restored state, and the next snapshot is sound.
    await_traffic(run, services.run_status(run)["messages_applied"] + 30, workers)
    later = cli("snapshot", "--run", str(run.pk), "--json")
    assert later.returncode == 0, describe(later)
    assert parse_json_output(later)["epoch"] == 1
    assert_sound_export(parse_json_output(later), run)


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
    assert_sound_export(snapshot.to_dict(), run)

    listed = cli("run", "watch", "list", "--run", str(run.pk))
    assert listed.returncode == 0, describe(listed)
    row = listed.stdout.splitlines()[1].split()
    assert row[:7] == [str(wp.pk), "p3", "state", "once", "chandy-lamport", "no", "1"], describe(listed)


# --- with a heartbeat only ----------------------------------------------------------------


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
    rows = _status_table(status.stdout)
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
