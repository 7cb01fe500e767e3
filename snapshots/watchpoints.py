"""Watchpoints: a condition at a process that makes the process snapshot itself.

Debugging with snapshots means taking one *when something odd happens*, not when a
person happens to click. A watchpoint names a condition over a process's state
("balance < 10") or over a message it receives ("src == 'p1' and msg.amount > 50"),
written in the small language of ``cluster/core/conditions.py`` and checked when it is
defined. The workers get the run's enabled watchpoints through the run meta; the pure
process evaluates them after every step (``SimulatedProcess.watch``), and the node turns a hit
into a snapshot that the process initiates within that very step (``cluster/engine/node.py``
calls :func:`watchpoint_hit` for the snapshot's row). ``once`` fires a single time;
``every`` fires on each hit, at most once per cool-down — across all workers, because
the store lets only one hit per cool-down through.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import close_old_connections, transaction
from django.db.models import F
from django.utils import timezone

from cluster.core.conditions import ConditionError, parse
from cluster.core.wire import CHANDY_LAMPORT
from snapshots import services, signals
from snapshots.models import Run, Watchpoint
from snapshots.services import ServiceError

log = logging.getLogger("cutline.watch")

MAX_WATCHPOINTS = 20  # per run: each one is evaluated at every step of every process it watches
MAX_COOLDOWN = 24 * 3600.0


def add_watchpoint(
    run: Run,
    condition: str,
    process: str | None = None,
    mode: str = "once",
    cooldown_s: float = 5.0,
    algorithm: str = CHANDY_LAMPORT,
    user: Any = None,
) -> Watchpoint:
    """Define a watchpoint on a run; a condition that does not parse is refused, with where."""
    if run.status == Run.Status.STOPPED:
        raise ServiceError(f"run {run.pk} is stopped; there is nothing left to watch")
    if not isinstance(condition, str) or not condition.strip():
        raise ServiceError('give a condition, e.g. "balance < 10" or "src == \'p1\' and msg.amount > 50"')
    try:
        parsed = parse(condition, run.workload)
    except ConditionError as exc:
        raise ServiceError(f"condition {condition!r}: {exc}") from None
    if process:
        services.check_process(run, process)
    if mode not in Watchpoint.Mode.values:
        raise ServiceError(f"unknown mode {mode!r}; choose once or every")
    try:
        cooldown_s = float(cooldown_s)
    except (TypeError, ValueError):
        raise ServiceError(f"cooldown_s must be a number of seconds, not {cooldown_s!r}") from None
    if not 0.1 <= cooldown_s <= MAX_COOLDOWN:
        raise ServiceError(f"cooldown_s must be between 0.1 and {MAX_COOLDOWN:g} seconds")
    services.check_algorithm(algorithm)
    if run.watchpoints.filter(enabled=True).count() >= MAX_WATCHPOINTS:
        raise ServiceError(f"run {run.pk} already has {MAX_WATCHPOINTS} watchpoints; remove one first")
    watchpoint = Watchpoint.objects.create(
        run=run,
        process=process or "",
        condition=parsed.text,
        kind=parsed.kind,
        mode=mode,
        cooldown_s=cooldown_s,
        algorithm=algorithm,
        created_by=user if getattr(user, "is_authenticated", False) else None,
    )
    publish_watchpoints(run)
    return watchpoint


def remove_watchpoint(watchpoint: Watchpoint) -> None:
    run = watchpoint.run
    watchpoint.delete()
    publish_watchpoints(run)


def get_watchpoint(run: Run, watchpoint_id: int | str) -> Watchpoint:
    try:
        return run.watchpoints.get(pk=int(watchpoint_id))
    except (Watchpoint.DoesNotExist, ValueError, TypeError):
        raise ServiceError(f"run {run.pk} has no watchpoint {watchpoint_id!r}") from None


def publish_watchpoints(run: Run) -> None:
    """Give the workers the run's enabled watchpoints (they follow the run meta)."""
    specs = [
        {
            "id": w.pk,
            "process": w.process or None,
            "condition": w.condition,
            "mode": w.mode,
            "cooldown_s": w.cooldown_s,
            "algorithm": w.algorithm,
        }
        for w in run.watchpoints.filter(enabled=True).order_by("id")
    ]
    store = services.store()
    for spec in specs:
        if spec["mode"] == Watchpoint.Mode.ONCE:
            # Enabled again after it fired (say, in the admin): it may fire once more.
            # If it is firing right now, the database still lets only one snapshot through.
            store.reset_watch(run.pk, spec["id"])
    store.update_run(run.pk, watchpoints=specs)
    _announce(run)


def _announce(run: Run) -> None:
    """Every open dashboard of the run lists its watchpoints afresh."""
    signals.announce(signals.watchpoints_changed, run.pk)


def watchpoint_hit(run_id: int, watchpoint_id: int, process: str, detail: str) -> int | None:
    """A process's watchpoint fired (called by the worker): the row of the snapshot the
    process is about to initiate, or None when the watchpoint or the run is gone."""
    close_old_connections()
    with transaction.atomic():
        watchpoint = (
            Watchpoint.objects.select_for_update().select_related("run").filter(pk=watchpoint_id, enabled=True).first()
        )
        if watchpoint is None or watchpoint.run_id != run_id or watchpoint.run.status == Run.Status.STOPPED:
            return None
        snapshot = services.new_snapshot(
            watchpoint.run, process, watchpoint.algorithm, watchpoint=watchpoint, trigger=detail[:500]
        )
        Watchpoint.objects.filter(pk=watchpoint.pk).update(
            hits=F("hits") + 1,
            last_hit_at=timezone.now(),
            enabled=watchpoint.mode != Watchpoint.Mode.ONCE,
        )
    if watchpoint.mode == Watchpoint.Mode.ONCE:
        publish_watchpoints(watchpoint.run)
    log.info("run %s: watchpoint %s hit at %s (%s): snapshot %s", run_id, watchpoint_id, process, detail, snapshot.pk)
    return snapshot.pk
