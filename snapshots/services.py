"""Every change to a topology, run or snapshot goes through one function here.

The CLI, the admin, the REST API and the WebSocket consumers call these and nothing
else, so the rules (validation, permissions aside) live in one place. Errors that a
person can fix are raised as :class:`ServiceError` with a message that says what to do.
"""

from __future__ import annotations

import functools
import logging
import secrets
import time
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from cluster.core import topology as topo
from cluster.core.compare import compare
from cluster.core.detectors import detect
from cluster.core.flow import window
from cluster.core.process import SimulatedProcess
from cluster.core.verdict import compute_verdict, sound_verdict
from cluster.core.wire import ALGORITHMS, CHANDY_LAMPORT, channel_id
from cluster.core.workloads import get_workload, state_value
from cluster.engine.store import Store
from cluster.engine.transport import Transport
from snapshots.models import Channel, ChannelRecord, Process, ProcessRecord, Run, Snapshot, Topology
from snapshots.presenter import snapshot_export

log = logging.getLogger("cutline.services")

MAX_RATE = 10_000.0


class ServiceError(ValueError):
    """A request that cannot be carried out, with a message for the person who made it."""


@functools.cache
def store() -> Store:
    return Store.from_url(settings.REDIS_URL, settings.CUTLINE["EVENT_LOG_LIMIT"])


@functools.cache
def transport() -> Transport:
    # The project's Celery app (config/celery.py) is the current app of every process
    # that loaded the settings: the app layer sends through it without importing config.
    return Transport(current_app)


# --- topologies ---------------------------------------------------------------------------


@transaction.atomic
def import_topology(data: Any, replace: bool = False, description: str = "") -> Topology:
    """Create a topology from its JSON (see ``cluster/core/topology.py``); validated first.

    With ``replace``, a topology of the same name gets the new contents instead.
    """
    spec = topo.validate(data)
    existing = Topology.objects.filter(name=spec["name"]).first()
    if existing is not None:
        if not replace:
            raise ServiceError(f"a topology named {spec['name']!r} already exists")
        return replace_topology(existing, spec, description or None)
    topology = Topology.objects.create(name=spec["name"], workload=spec["workload"], description=description)
    _create_graph(topology, spec)
    return topology


@transaction.atomic
def replace_topology(topology: Topology, data: Any, description: str | None = None) -> Topology:
    """Give an existing topology new contents (name, workload, processes, channels).

    Its runs keep their own frozen copy of the topology they ran, so this is safe.
    """
    spec = topo.validate(data)
    if Topology.objects.filter(name=spec["name"]).exclude(pk=topology.pk).exists():
        raise ServiceError(f"a topology named {spec['name']!r} already exists")
    current = topology.to_dict()
    topology.name = spec["name"]
    topology.workload = spec["workload"]
    if description is not None:
        topology.description = description
    topology.save()
    if spec["processes"] != current["processes"] or spec["channels"] != current["channels"]:
        # Only then rewrite the rows: a rename leaves a big graph alone.
        topology.processes.all().delete()  # their channels go with them
        _create_graph(topology, spec)
    return topology


def _create_graph(topology: Topology, spec: dict[str, Any]) -> None:
    key = get_workload(spec["workload"]).value_key
    processes = Process.objects.bulk_create(
        Process(topology=topology, name=p["name"], position=i, initial_value=p.get(key, 0))
        for i, p in enumerate(spec["processes"])
    )
    by_name = {p.name: p for p in processes}
    channels = []
    for entry in spec["channels"]:
        faults = entry[2] if len(entry) > 2 else {}
        channels.append(
            Channel(
                topology=topology,
                src=by_name[entry[0]],
                dst=by_name[entry[1]],
                delay_ms=faults.get("delay_ms", 0),
                reorder=faults.get("reorder", False),
                loss=faults.get("loss", 0.0),
            )
        )
    Channel.objects.bulk_create(channels)


def get_topology(name: str) -> Topology:
    try:
        return Topology.objects.get(name=name)
    except Topology.DoesNotExist:
        known = ", ".join(Topology.objects.values_list("name", flat=True)[:20]) or "none"
        raise ServiceError(f"no topology named {name!r} (known: {known})") from None


# --- runs ---------------------------------------------------------------------------------


def get_run(run_id: int | str) -> Run:
    try:
        return Run.objects.select_related("topology").get(pk=int(run_id))
    except (Run.DoesNotExist, ValueError, TypeError):
        raise ServiceError(f"no run with id {run_id!r}") from None


def start_run(
    topology: Topology,
    workload: str | None = None,
    rate: float | None = None,
    params: dict[str, Any] | None = None,
    user: Any = None,
    seed: int | None = None,
) -> Run:
    """Start a run: freeze the topology into it, seed every process's state, go."""
    workload = workload or topology.workload
    try:
        wl = get_workload(workload)
    except ValueError as exc:
        raise ServiceError(str(exc)) from None
    rate = settings.CUTLINE["DEFAULT_RATE"] if rate is None else float(rate)
    if not 0 < rate <= MAX_RATE:
        raise ServiceError(f"rate must be above 0 and at most {MAX_RATE:g} steps per second per process")
    spec = topology.to_dict()
    own_key = get_workload(topology.workload).value_key
    values = [p.get(own_key, 0) for p in spec["processes"]]
    as_workload = [{"name": p["name"], wl.value_key: v} for p, v in zip(spec["processes"], values, strict=True)]
    problems = topo.state_problems(as_workload, workload, [(c[0], c[1]) for c in spec["channels"]])
    if problems:
        raise ServiceError(f"topology {topology.name!r} cannot run the {workload} workload: " + "; ".join(problems))
    incoming: dict[str, list[str]] = defaultdict(list)
    outgoing: dict[str, list[str]] = defaultdict(list)
    faults: dict[str, dict[str, Any]] = {}
    for entry in spec["channels"]:
        src, dst = entry[0], entry[1]
        outgoing[src].append(dst)
        incoming[dst].append(src)
        if len(entry) > 2 and entry[2]:
            faults[channel_id(src, dst)] = entry[2]
    seed = secrets.randbelow(2**31) if seed is None else seed
    with transaction.atomic():
        run = Run.objects.create(
            topology=topology,
            workload=workload,
            rate=rate,
            params=params or {},
            seed=seed,
            spec={**spec, "workload": workload},
            expected_total=sum(values) if wl.unit else None,
            faults=faults,
            created_by=user if getattr(user, "is_authenticated", False) else None,
        )
    processes = {}
    for p, v in zip(spec["processes"], values, strict=True):
        name = p["name"]
        neighbours = tuple(sorted(set(incoming[name]) | set(outgoing[name])))
        proc = SimulatedProcess(name, incoming[name], outgoing[name], workload, wl.initial_state(v, name, neighbours))
        proc.set_channel_modes({src for src in incoming[name] if faults.get(channel_id(src, name), {}).get("reorder")})
        processes[name] = proc.to_dict()
    meta = {
        "workload": workload,
        "rate": rate,
        "params": run.params,
        "seed": seed,
        "status": run.status,
        "epoch": 0,
        "faults": faults,
        "watchpoints": [],
        "processes": [{"name": p["name"]} for p in spec["processes"]],
        # Flow control: frames a channel may have in flight before its sender is held back.
        "window": window(len(spec["channels"])),
    }
    store().create_run(run.pk, meta, processes)
    return run


def set_run_status(run: Run, status: str) -> Run:
    """Pause (no new workload steps, channels drain), resume, or stop a run."""
    if status not in Run.Status.values:
        raise ServiceError(f"unknown run status {status!r}; choose one of {', '.join(Run.Status.values)}")
    if run.status == Run.Status.STOPPED and status != Run.Status.STOPPED:
        raise ServiceError(f"run {run.pk} is stopped; start a new run instead")
    run.status = status
    run.stopped_at = timezone.now() if status == Run.Status.STOPPED else None
    # One change or none: if the store (the workers' view) cannot take it, the database keeps the old status.
    with transaction.atomic():
        run.save(update_fields=["status", "stopped_at"])
        store().update_run(run.pk, status=status)
    if status == Run.Status.STOPPED:
        for snapshot in run.snapshots.filter(status=Snapshot.Status.RUNNING):
            fail_snapshot(snapshot, f"run {run.pk} was stopped before the snapshot finished")
    return run


def set_channel_faults(run: Run, changes: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Change the fault settings of some channels of a live run, by ``"p→q"``.

    A channel given ``{}`` (or all-zero settings) becomes a plain reliable FIFO channel
    again. Returns the faults now in force on the whole run.
    """
    if run.status == Run.Status.STOPPED:
        raise ServiceError(f"run {run.pk} is stopped; its channels carry nothing any more")
    if not isinstance(changes, dict) or not changes:
        raise ServiceError('give the faults as {"p1→p2": {"delay_ms": 100, "reorder": true, "loss": 0.2}}')
    known = {channel_id(s, d) for s, d in run.channel_pairs}
    faults = dict(run.faults)
    for channel, settings_ in changes.items():
        if channel not in known:
            shown = ", ".join(sorted(known)[:10]) + (" …" if len(known) > 10 else "")
            raise ServiceError(f"run {run.pk} has no channel {channel!r} (its channels: {shown})")
        try:
            normalised = topo.validate_faults(settings_)
        except ValueError as exc:
            raise ServiceError(f"{channel}: {exc}") from None
        normalised = topo.changed_faults(normalised)
        if normalised:
            faults[channel] = normalised
        else:
            faults.pop(channel, None)
    run.faults = faults
    with transaction.atomic():
        run.save(update_fields=["faults"])
        store().update_run(run.pk, faults=faults)
    return faults


def set_run_rate(run: Run, rate: float) -> Run:
    if not 0 < rate <= MAX_RATE:
        raise ServiceError(f"rate must be above 0 and at most {MAX_RATE:g} steps per second per process")
    run.rate = rate
    with transaction.atomic():
        run.save(update_fields=["rate"])
        store().update_run(run.pk, rate=rate)
    return run


def run_status(run: Run) -> dict[str, Any]:
    """Live counters of a run, summed over its processes and channels."""
    procs = store().load_processes(run.pk, run.process_names)
    totals = {"messages_sent": 0, "messages_applied": 0, "markers_sent": 0, "markers_received": 0}
    fifo = {"duplicates": 0, "gaps": 0, "reorders": 0, "held": 0}
    wl = get_workload(run.workload)
    for data in procs.values():
        for k in totals:
            totals[k] += data["counters"][k]
        for r in data["receivers"].values():
            fifo["duplicates"] += r["duplicates"]
            fifo["gaps"] += r["gaps"]
            fifo["reorders"] += r["reorders"]
            fifo["held"] += len(r["held"])
    retries = store().retries(run.pk)
    flow = run_flow(run)
    snapshots = dict.fromkeys(Snapshot.Status.values, 0)
    for status in run.snapshots.values_list("status", flat=True):
        snapshots[status] += 1
    return {
        "run": run.pk,
        "topology": run.topology.name,
        "workload": run.workload,
        "status": run.status,
        "rate": run.rate,
        "processes": len(run.process_names),
        "channels": len(run.channel_pairs),
        **totals,
        "messages_in_flight": frames_in_flight(run.channel_pairs, procs),
        **fifo,
        "stale": sum(d["counters"].get("stale", 0) for d in procs.values()),
        "retransmissions": sum(retries.values()),
        "retransmissions_by_channel": retries,
        "held_at_processes": sum(state_value(wl, d["state"]) for d in procs.values()) if wl.unit else None,
        "expected_total": run.expected_total,
        "epoch": run.epoch,
        "faults": run.faults,
        "snapshots": snapshots,
        **flow,
    }


# A worker's report of a run's rates (``cluster/engine/flow.py``, every second) counts
# for this long: a shard whose worker is gone stops counting.
FLOW_REPORT_TTL = 5.0


def run_flow(run: Run) -> dict[str, Any]:
    """Offered vs achieved workload rate (steps per second, the whole run), and whether
    flow control holds the run back now, with the channels whose windows are full."""
    now = time.time()
    reports = [r for r in store().flow_reports(run.pk) if now - r["t"] <= FLOW_REPORT_TTL]
    running = run.status == Run.Status.RUNNING
    return {
        "offered_rate": run.rate * len(run.process_names) if running else 0.0,
        "achieved_rate": round(sum(r["achieved"] for r in reports), 1),
        "held_back": running and any(r["held_back"] > 0 for r in reports),
        "held_back_channels": sorted({c for r in reports for c in r["full"]}),
    }


def frames_in_flight(channels: list[tuple[str, str]], procs: dict[str, dict[str, Any]]) -> int:
    """Frames (messages and markers) sent and not yet applied, by sequence numbers.

    Seqs, not the message counters: they stay exact across a restore (whose dropped
    frames were counted as sent but are never applied) and on non-FIFO channels.
    """
    total = 0
    for src, dst in channels:
        sender, receiver = procs.get(src), procs.get(dst)
        if sender is None or receiver is None:
            continue
        applied = receiver["applied"].get(src, 0) + len(receiver.get("applied_above", {}).get(src, ()))
        total += sender["sent"].get(dst, 0) - applied
    return total


# --- snapshots ----------------------------------------------------------------------------


def check_algorithm(algorithm: str) -> str:
    if algorithm not in ALGORITHMS:
        raise ServiceError(f"unknown algorithm {algorithm!r}; choose one of {', '.join(ALGORITHMS)}")
    return algorithm


def check_process(run: Run, name: str) -> str:
    names = run.process_names
    if name not in names:
        shown = ", ".join(names[:10]) + (" …" if len(names) > 10 else "")
        raise ServiceError(f"run {run.pk} has no process {name!r} (its processes: {shown})")
    return name


def new_snapshot(run: Run, initiator: str, algorithm: str, user: Any = None, **fields: Any) -> Snapshot:
    """The database row of a snapshot about to start (by a person or a watchpoint)."""
    return Snapshot.objects.create(
        run=run,
        initiator=initiator,
        algorithm=algorithm,
        epoch=run.epoch,
        processes_total=len(run.process_names),
        channels_total=len(run.channel_pairs),
        requested_by=user if getattr(user, "is_authenticated", False) else None,
        **fields,
    )


def start_snapshot(
    run: Run, initiator: str | None = None, user: Any = None, algorithm: str = CHANDY_LAMPORT
) -> Snapshot:
    """Start a snapshot of a run at one of its processes, with either algorithm."""
    if run.status == Run.Status.STOPPED:
        raise ServiceError(f"run {run.pk} is stopped; snapshots need a running (or paused) run")
    check_algorithm(algorithm)
    initiator = check_process(run, initiator or run.process_names[0])
    snapshot = new_snapshot(run, initiator, algorithm, user)
    transport().send_initiate(run.pk, initiator, snapshot.pk, algorithm, run.epoch)
    return snapshot


def store_records(records: Iterable[dict[str, Any]]) -> list[int]:
    """Store records sent by processes; finish the snapshots they complete.

    Returns the ids of the snapshots that this call finished.
    """
    by_snapshot: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        by_snapshot[int(r["snapshot"])].append(r)
    finished: list[int] = []
    with transaction.atomic():
        # Lock the snapshots first: two recorders finishing the same snapshot at once
        # must not both miss each other's last record.
        snapshots = {s.pk: s for s in Snapshot.objects.select_for_update().filter(pk__in=by_snapshot).order_by("pk")}
        for snapshot_id, recs in by_snapshot.items():
            snapshot = snapshots.get(snapshot_id)
            if snapshot is None:
                log.warning("records for unknown snapshot %s dropped", snapshot_id)
                continue
            _insert_records(snapshot, recs)
            snapshot.processes_reported = snapshot.process_records.count()
            snapshot.channels_reported = snapshot.channel_records.count()
            fields = ["processes_reported", "channels_reported"]
            if snapshot.status == Snapshot.Status.RUNNING and _is_whole(snapshot):
                _finish(snapshot)
                fields += ["status", "reason", "finished_at", "verdict", "properties"]
                finished.append(snapshot.pk)
            snapshot.save(update_fields=fields)
    _announce(finished)
    return finished


def _insert_records(snapshot: Snapshot, recs: list[dict[str, Any]]) -> None:
    def when(r: dict[str, Any]) -> datetime:
        return datetime.fromtimestamp(r["t"], tz=UTC)

    ProcessRecord.objects.bulk_create(
        [
            ProcessRecord(
                snapshot=snapshot,
                process=r["process"],
                state=r["state"],
                sent=r["sent"],
                received=r["received"],
                received_above=r.get("received_above", {}),
                clock=r["clock"],
                recorded_at=when(r),
            )
            for r in recs
            if r["kind"] == "process"
        ],
        ignore_conflicts=True,  # a record resent after a crash is already here
    )
    ChannelRecord.objects.bulk_create(
        [
            ChannelRecord(
                snapshot=snapshot,
                src=r["src"],
                dst=r["dst"],
                messages=r["messages"],
                markers=r["markers"],
                closed_at=when(r),
            )
            for r in recs
            if r["kind"] == "channel"
        ],
        ignore_conflicts=True,
    )


def _is_whole(snapshot: Snapshot) -> bool:
    return (
        snapshot.processes_reported >= snapshot.processes_total
        and snapshot.channels_reported >= snapshot.channels_total
    )


def _finish(snapshot: Snapshot) -> None:
    """Every process and channel has reported: compute the verdict and close it."""
    run = snapshot.run
    process_records = [r.to_dict() for r in snapshot.process_records.all()]
    channel_records = [r.to_dict() for r in snapshot.channel_records.all()]
    snapshot.verdict = verdict_of(run, process_records, channel_records)
    snapshot.properties = detect(
        run.workload, run.process_names, run.channel_pairs, process_records, channel_records, snapshot.verdict
    )
    snapshot.status = Snapshot.Status.COMPLETE
    snapshot.finished_at = timezone.now()
    if not sound_verdict(snapshot.verdict):
        snapshot.reason = "the recorded state fails its verdict: " + "; ".join(snapshot.verdict["problems"][:5])


def verdict_of(
    run: Run, process_records: list[dict[str, Any]], channel_records: list[dict[str, Any]]
) -> dict[str, Any]:
    wl = get_workload(run.workload)
    return compute_verdict(
        run.process_names,
        run.channel_pairs,
        wl.unit,
        wl.payload_unit,
        run.expected_total or 0,
        process_records,
        channel_records,
    )


def compare_snapshots(a: Snapshot, b: Snapshot) -> dict[str, Any]:
    """Two snapshots of one run side by side: what changed per process and per channel."""
    if a.run_id != b.run_id:
        raise ServiceError(f"snapshots {a.pk} and {b.pk} are of different runs ({a.run_id} and {b.run_id})")
    for s in (a, b):
        if s.status != Snapshot.Status.COMPLETE:
            raise ServiceError(f"snapshot {s.pk} is {s.status}; only complete snapshots can be compared")
    try:
        return compare(snapshot_export(a), snapshot_export(b))
    except ValueError as exc:
        raise ServiceError(str(exc)) from None


def first_holding(run: Run) -> dict[str, int]:
    """For each stable property, the first complete snapshot of the run in which it held.

    Stable means: once it holds it holds for ever after — so the first snapshot that
    sees it dates it to between that snapshot and the one before.
    """
    first: dict[str, int] = {}
    rows = run.snapshots.filter(status=Snapshot.Status.COMPLETE).order_by("id").values_list("id", "properties")
    for snapshot_id, properties in rows:
        for name, result in (properties or {}).items():
            if name not in first and isinstance(result, dict) and result.get("holds") is True:
                first[name] = snapshot_id
    return first


def expire_snapshots(now: datetime | None = None) -> list[int]:
    """End every running snapshot older than the timeout as ``failed``, saying what is missing."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.CUTLINE["SNAPSHOT_TIMEOUT"])
    expired: list[int] = []
    for snapshot in Snapshot.objects.filter(status=Snapshot.Status.RUNNING, started_at__lt=cutoff).select_related(
        "run"
    ):
        with transaction.atomic():
            locked = Snapshot.objects.select_for_update().get(pk=snapshot.pk)
            if locked.status != Snapshot.Status.RUNNING:
                continue
            locked.status = Snapshot.Status.FAILED
            locked.finished_at = now
            locked.reason = _missing_reason(locked, settings.CUTLINE["SNAPSHOT_TIMEOUT"])
            locked.save(update_fields=["status", "finished_at", "reason"])
            expired.append(locked.pk)
    _announce(expired)
    return expired


def fail_snapshot(snapshot: Snapshot, reason: str) -> bool:
    """End a running snapshot as failed (its run was stopped, a record was lost …)."""
    updated = Snapshot.objects.filter(pk=snapshot.pk, status=Snapshot.Status.RUNNING).update(
        status=Snapshot.Status.FAILED, reason=reason, finished_at=timezone.now()
    )
    if updated:
        _announce([snapshot.pk])
    return bool(updated)


def _missing_reason(snapshot: Snapshot, timeout: float) -> str:
    run = snapshot.run
    have_p = set(snapshot.process_records.values_list("process", flat=True))
    have_c = set(snapshot.channel_records.values_list("src", "dst"))
    missing_p = [p for p in run.process_names if p not in have_p]
    missing_c = [channel_id(s, d) for s, d in run.channel_pairs if (s, d) not in have_c]

    def some(items: list[str]) -> str:
        return ", ".join(items[:5]) + (f" and {len(items) - 5} more" if len(items) > 5 else "")

    parts = [
        f"timed out after {timeout:g} s",
        f"{len(have_p)} of {snapshot.processes_total} processes"
        f" and {len(have_c)} of {snapshot.channels_total} channels reported",
    ]
    if missing_p:
        parts.append(f"no record from {some(missing_p)}")
    if missing_c:
        parts.append(f"no marker arrived on {some(missing_c)}")
    return "; ".join(parts)


def _announce(snapshot_ids: list[int]) -> None:
    """Tell anyone waiting (the CLI, tests) that these snapshots are finished."""
    if not snapshot_ids:
        return
    transaction.on_commit(lambda: store().announce_finished(snapshot_ids))


def wait_for_snapshot(snapshot_id: int, timeout: float) -> Snapshot:
    """Block until the snapshot is finished (or ``timeout`` passes); return it fresh."""
    pubsub = store().finished_snapshots()
    try:
        deadline = time.monotonic() + timeout
        while True:
            # Subscribed before this read, so a finish between the read and the wait is
            # not missed: it arrives as a message.
            snapshot = Snapshot.objects.select_related("run").get(pk=snapshot_id)
            if snapshot.status != Snapshot.Status.RUNNING:
                return snapshot
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return snapshot
            pubsub.get_message(timeout=min(remaining, 1.0))
    finally:
        pubsub.close()


def check_cluster() -> dict[str, str]:
    """The live workers by shard; raise if the system ``make run`` starts is not up."""
    try:
        live = store().live_workers(time.time())
    except Exception as exc:
        raise ServiceError(
            f"Cutline is not running: cannot reach Redis at {settings.REDIS_URL} ({exc.__class__.__name__})."
            " Start it with `make run`, or set REDIS_URL."
        ) from None
    if not live:
        raise ServiceError(
            "Cutline is not running: no worker has reported in the last few seconds. Start it with `make run`."
        )
    shards = {int(k.split("/")[1]) for k in live}
    if len(shards) != 1:
        raise ServiceError(f"workers disagree on the number of shards: {sorted(live)}")
    total = shards.pop()
    missing = [i for i in range(total) if f"{i}/{total}" not in live]
    if missing:
        raise ServiceError(
            f"no worker serves shard {', '.join(map(str, missing))} of {total}: its processes would stall"
        )
    return live
