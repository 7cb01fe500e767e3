"""Restoring a run from a snapshot (snapshots/recovery.py), on real workers and a real broker.

The restored run is the snapshot's state plus its channels' recorded messages, and it goes
on correctly from there; only a complete, consistent snapshot of the same run restores.
"""

from __future__ import annotations

from collections.abc import Callable

from cluster.devserver.children import Child
from snapshots import recovery, services
from snapshots.models import Run, Snapshot
from tests.integration.engine_helpers import (
    assert_sound_export,
    await_drained,
    await_traffic,
    set_run_status_everywhere,
    start_demo_run,
    take_snapshot,
)


def test_a_restored_run_is_the_snapshot_plus_its_channel_messages_and_goes_on_consistently(
    cluster_workers: Callable[[int], list[Child]],
) -> None:
    workers = cluster_workers(2)
    run = start_demo_run("complete-4", "bank", rate=10)
    await_traffic(run, 40, workers)
    export = take_snapshot(run, "p2")
    assert_sound_export(export, run)
    in_channels = sum(len(c["messages"]) for c in export["channels"])
    # The run goes on, far from the recorded state; then it is paused (so that, after the
    # restore, only the replayed messages move) and restored.
    await_traffic(run, services.run_status(run)["messages_applied"] + 40, workers)
    set_run_status_everywhere(run, Run.Status.PAUSED, 2, workers)
    restore = recovery.restore_run(run, Snapshot.objects.get(pk=export["id"]))
    run.refresh_from_db()
    assert (restore.epoch, run.epoch, run.status) == (1, 1, Run.Status.PAUSED)
    assert restore.replayed_messages == in_channels

    # Once the replayed messages are in, every balance is its recorded one plus what the
    # recorded channels into it held: the snapshot's state, carried forward.
    await_drained(run, workers)
    expected = {p["process"]: p["state"]["balance"] for p in export["processes"]}
    for channel in export["channels"]:
        expected[channel["dst"]] += sum(m["payload"]["amount"] for m in channel["messages"])
    live = services.store().load_processes(run.pk, run.process_names)
    assert {name: data["state"]["balance"] for name, data in live.items()} == expected
    # Sequence numbers stayed exactly-once across the restore: every channel's receiver
    # has applied exactly what its sender sent, and nothing was held, repeated or skipped.
    for src, dst in run.channel_pairs:
        assert live[dst]["applied"][src] == live[src]["sent"][dst], f"{src}→{dst} after the restore"
    status = services.run_status(run)
    assert (status["duplicates"], status["gaps"], status["held"]) == (0, 0, 0), status
    # The message counters agree: what was in flight at the restore was dropped, the
    # replayed messages were sent again, and all of them are applied now.
    assert status["messages_sent"] == status["messages_applied"], status

    # The restored run goes on, and a later snapshot is consistent and conserves.
    set_run_status_everywhere(run, Run.Status.RUNNING, 2, workers)
    await_traffic(run, status["messages_applied"] + 40, workers)
    later = take_snapshot(run, "p4")
    assert_sound_export(later, run)
    assert later["epoch"] == 1
    events = [e for e in services.store().events(run.pk) if e["kind"] == "restore"]
    assert [(e["snapshot"], e["epoch"]) for e in events] == [(export["id"], 1)]


def test_only_a_complete_consistent_snapshot_of_the_same_run_can_be_restored(
    cluster_workers: Callable[[int], list[Child]],
) -> None:
    workers = cluster_workers(1)
    run = start_demo_run("ring-5", "bank", rate=5)
    other = start_demo_run("ring-5", "bank", rate=5)
    await_traffic(run, 5, workers)
    theirs = Snapshot.objects.get(pk=take_snapshot(other)["id"])
    failed = services.new_snapshot(run, "p1", "chandy-lamport")
    services.fail_snapshot(failed, "made to fail")
    for snapshot, words in ((theirs, "is of run"), (Snapshot.objects.get(pk=failed.pk), "only a complete")):
        try:
            recovery.restore_run(run, snapshot)
        except services.ServiceError as exc:
            assert words in str(exc)
        else:
            raise AssertionError(f"snapshot {snapshot.pk} was restored")
    run.refresh_from_db()
    assert run.epoch == 0 and not run.restores.exists()
