"""Backup and recovery: put a run back into the global state one of its snapshots recorded.

A consistent snapshot is a state the run could have been in: every process's recorded
state, plus every channel's recorded messages — sent before the cut and not yet received.
Restoring reloads the first and delivers the second again, in FIFO order, before anything
new; then the run goes on from there as if it had been in that state all along.

How, without stopping the workers:

1. The run's meta says ``restoring`` and names a new **epoch**. Every worker lets go of
   the run — its processes leave memory, its held-back frames are dropped — and says so
   in the store (``Node.refresh``). The restore waits for every live shard.
2. The run's queues are emptied. Frames the broker still hands out later (a prefetched
   one) carry the old epoch and are dropped by the process (``counters["stale"]``).
3. Every process is rebuilt from its record (``cluster/core/restore.py``): state, clock, seqs.
   Each channel's recorded messages become its sender's outbox, renumbered to follow
   what the receiver recorded as received, so exactly-once FIFO delivery holds across the
   restore. One Redis transaction writes all of it with the meta (old status, new epoch).
4. The workers attach the run again and send every outbox first: the recorded messages
   re-enter their channels before any new step of the workload.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.db import transaction

from cluster.core.process import SimulatedProcess
from cluster.core.restore import restore_processes
from cluster.core.wire import channel_id
from snapshots import services, signals
from snapshots.models import Restore, Run, Snapshot
from snapshots.services import ServiceError

log = logging.getLogger("cutline.recovery")

LET_GO_TIMEOUT = 10.0  # seconds every live worker has to let go of the run
RESTORE_LOCK_TTL = 60  # seconds: one restore of a run at a time


def restore_run(run: Run, snapshot: Snapshot, user: Any = None) -> Restore:
    """Restore ``run`` to what ``snapshot`` recorded; the run keeps its status (running or paused)."""
    _check(run, snapshot)
    store = services.store()
    if not store.claim_restore(run.pk, RESTORE_LOCK_TTL):
        raise ServiceError(f"run {run.pk} is being restored already; wait for that to finish")
    try:
        return _restore(run, snapshot, user)
    finally:
        store.release_restore(run.pk)


def _check(run: Run, snapshot: Snapshot) -> None:
    if snapshot.run_id != run.pk:
        raise ServiceError(f"snapshot {snapshot.pk} is of run {snapshot.run_id}, not of run {run.pk}")
    if run.status == Run.Status.STOPPED:
        raise ServiceError(f"run {run.pk} is stopped; start a new run instead")
    if snapshot.status != Snapshot.Status.COMPLETE:
        raise ServiceError(f"snapshot {snapshot.pk} is {snapshot.status}; only a complete snapshot can be restored")
    if not snapshot.is_sound:
        raise ServiceError(
            f"snapshot {snapshot.pk} is not a consistent cut (see its verdict): the run was never in that state,"
            " and restoring it would start the run from an impossible one"
        )


def _restore(run: Run, snapshot: Snapshot, user: Any) -> Restore:
    store = services.store()
    live = services.check_cluster()
    shards = {int(key.split("/")[0]) for key in live}
    previous, epoch = run.status, run.epoch + 1
    store.update_run(run.pk, status="restoring", epoch=epoch)
    try:
        _wait_for_let_go(run, shards, epoch)
    except ServiceError:
        store.update_run(run.pk, status=previous, epoch=run.epoch)
        raise
    _empty_queues(run)
    names, channels = run.process_names, run.channel_pairs
    current = store.load_processes(run.pk, names)
    dropped = services.frames_in_flight(channels, current)
    restored = restore_processes(
        names,
        channels,
        run.workload,
        epoch,
        [r.to_dict() for r in snapshot.process_records.all()],
        [r.to_dict() for r in snapshot.channel_records.all()],
        current,
    )
    restored = {name: _with_channel_modes(run, data) for name, data in restored.items()}
    _carry_counters(run, current, restored)
    replayed = sum(len(data.get("outbox", [])) for data in restored.values())
    meta = store.run_meta(run.pk) or {}
    meta.update(status=previous, epoch=epoch)
    event = {
        "kind": "restore",
        "process": snapshot.initiator,
        "snapshot": snapshot.pk,
        "epoch": epoch,
        "replayed": replayed,
        "dropped": dropped,
        "clock": {},
        "t": time.time(),
    }
    with transaction.atomic():
        run.epoch = epoch
        run.save(update_fields=["epoch"])
        record = Restore.objects.create(
            run=run,
            snapshot=snapshot,
            epoch=epoch,
            replayed_messages=replayed,
            dropped_frames=dropped,
            requested_by=user if getattr(user, "is_authenticated", False) else None,
        )
        # The store last: if it fails, the database change is rolled back with it.
        store.replace_processes(run.pk, restored, channels, meta, [event])
    for running in run.snapshots.filter(status=Snapshot.Status.RUNNING):
        services.fail_snapshot(running, f"run {run.pk} was restored from snapshot {snapshot.pk} while this one ran")
    _announce(run)
    log.info(
        "run %s restored from snapshot %s (epoch %s): %d replayed, %d dropped",
        run.pk,
        snapshot.pk,
        epoch,
        replayed,
        dropped,
    )
    return record


def _wait_for_let_go(run: Run, shards: set[int], epoch: int) -> None:
    store = services.store()
    deadline = time.monotonic() + LET_GO_TIMEOUT
    while not shards <= store.let_go_shards(run.pk, epoch):
        if time.monotonic() > deadline:
            missing = sorted(shards - store.let_go_shards(run.pk, epoch))
            raise ServiceError(
                f"the worker of shard {', '.join(map(str, missing))} did not let go of run {run.pk} within"
                f" {LET_GO_TIMEOUT:g} s; the run was left as it was"
            )
        time.sleep(0.05)  # workers look at the run meta every 0.5 s


def _empty_queues(run: Run) -> None:
    """Drop what the broker still holds for the run: all of it is of the old epoch."""
    services.transport().purge(run.pk, run.process_names)


def _carry_counters(run: Run, current: dict[str, dict[str, Any]], restored: dict[str, dict[str, Any]]) -> None:
    """Keep ``messages_sent − messages_applied`` = messages in flight across the restore.

    The messages in flight now are dropped (counted as ``messages_dropped``: sent, never
    to be applied), and the recorded ones replayed from the outboxes count as sent again.
    Which frames are messages is read from the channel logs, which hold every frame sent
    and not yet acknowledged.
    """
    store = services.store()
    dropped: dict[str, int] = dict.fromkeys(restored, 0)
    for src, dst in run.channel_pairs:
        receiver = current.get(dst)
        if receiver is None or src not in dropped:
            continue
        applied = receiver["applied"].get(src, 0)
        beyond = set(receiver.get("applied_above", {}).get(src, ()))
        # Held frames (behind a gap) are not applied either; on a lossy channel they
        # may have left the log already (acknowledged), so they are counted from the receiver.
        held = [frame for _, frame in receiver["receivers"].get(src, {}).get("held", [])]
        in_flight = {
            frame["seq"]
            for frame in [*(f for _, f in store.channel_log(run.pk, src, dst)), *held]
            if frame["kind"] == "message" and frame["seq"] > applied and frame["seq"] not in beyond
        }
        dropped[src] += len(in_flight)
    for name, data in restored.items():
        counters = data["counters"]
        replayed = sum(1 for frame in data.get("outbox", []) if frame["kind"] == "message")
        counters["messages_sent"] = counters.get("messages_sent", 0) + replayed - dropped[name]
        counters["messages_dropped"] = counters.get("messages_dropped", 0) + dropped[name]


def _with_channel_modes(run: Run, data: dict[str, Any]) -> dict[str, Any]:
    """Keep the run's non-FIFO channels non-FIFO in the restored processes."""
    outbox = data.get("outbox", [])
    proc = SimulatedProcess.from_dict(data)
    proc.set_channel_modes(
        {src for src in proc.incoming if run.faults.get(channel_id(src, proc.name), {}).get("reorder")}
    )
    return {**proc.to_dict(), "outbox": outbox}


def _announce(run: Run) -> None:
    """Every dashboard of the run starts over from the restored state."""
    signals.announce(signals.run_restored, run.pk)


def restores_of(run: Run) -> list[dict[str, Any]]:
    return [r.to_dict() for r in run.restores.order_by("id")]
