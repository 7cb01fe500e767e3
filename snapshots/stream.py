"""The live stream of a run: its names, its frame shapes, and the state a page starts from.

Theory of operation
-------------------
Every worker that serves processes of a run publishes that run's changes as *frames*
(``snapshots/events.py``); every open dashboard of the run receives them over one
WebSocket (``snapshots/consumers.py``). The database and the runtime state store are
the truth; a frame is a hint that can be lost (a channel layer drops what it cannot
deliver), so the page must be able to tell that it missed one and start over from the
truth. That is what the stream sequence numbers are for.

* A **source** is one publisher, i.e. one worker process; its id is random, so a
  restarted worker is a new source. Each source numbers its frames of each run 1, 2, 3 …
  A run served by N workers has N sources; frames of one source arrive in order.
* Before it sends frame ``n`` of a run, a source writes ``n`` into the run's
  **cursors** (a Redis hash source → last seq, :func:`cursors_key`), and it builds
  frame ``n`` only from steps already committed to the store.
* A page's starting state (:func:`run_state`, sent on connect and served as
  ``state.json``) reads the cursors *first*, then the store and the database. So the
  state already holds everything in frames up to the cursors; a frame with
  ``seq <= cursor`` is dropped, ``cursor + 1`` is applied, and anything beyond is a
  **gap**: the page reloads ``state.json`` and carries on from its cursors. A source
  the state did not know must start at 1. A socket is registered for the run's frames
  (``snapshots/fanout.py``) before it reads the state, so no frame falls between the two.
* A frame's fields are absolute values (a balance, the last seq sent on a channel),
  never increments, so applying one twice, or after a state that already holds it,
  changes nothing.

Names are the product's words: process, channel (``"p1→p2"``), run, snapshot, marker,
record, verdict.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models import QuerySet

from cluster.process import Process as LiveProcess
from cluster.workloads import get_workload
from snapshots.models import ChannelRecord, ProcessRecord, Run, Snapshot

ProcessView = dict[str, Any]

HISTORY = 50  # snapshots a page is sent; the summary counts all of them
CURSOR_TTL = 24 * 3600  # seconds: the cursors of a run nobody publishes for go away
# Seconds between heartbeats on a socket; the page calls it dead after three missed.
HEARTBEAT_INTERVAL = 5.0

# A process view's fields that a delta merges key by key, and those it replaces whole.
MERGED_FIELDS = ("state", "sent", "applied", "clock", "counters", "fifo")
REPLACED_FIELDS = ("recording",)


def group_name(run_id: int) -> str:
    """The channel layer group every dashboard of a run joins."""
    return f"run.{run_id}"


def cursors_key(run_id: int) -> str:
    return f"cutline:run:{run_id}:stream"


def channel_id(src: str, dst: str) -> str:
    """A channel as the page and every JSON here name it (the verdict's words too)."""
    return f"{src}→{dst}"


# --- who may do what -----------------------------------------------------------------------


NO_ROLE = "Your account cannot watch runs: ask an administrator for the viewer role (manage.py grantrole)."


def can_view(user: Any) -> bool:
    """Viewers (``snapshots.view_run``, the viewer role) watch runs; anybody does if the
    site allows public reading (the REST API's rule too, ``snapshots/permissions.py``)."""
    if settings.CUTLINE["PUBLIC_READ"]:
        return True
    return bool(getattr(user, "is_authenticated", False)) and user.has_perm("snapshots.view_run")


def can_control(user: Any) -> bool:
    return bool(getattr(user, "is_authenticated", False)) and user.has_perm("snapshots.control_run")


# --- process views -----------------------------------------------------------------------


EMPTY_VIEW: ProcessView = {
    "state": {},
    "sent": {},
    "applied": {},
    "clock": {},
    "counters": {"messages_sent": 0, "messages_applied": 0, "markers_sent": 0, "markers_received": 0},
    "fifo": {},
    "recording": {},
}


def view_of_process(proc: LiveProcess) -> ProcessView:
    """What the page shows of a live process (its workload state, seqs, clock, counters)."""
    return {
        "state": dict(proc.state),
        "sent": dict(proc.sent),
        "applied": dict(proc.applied),
        "clock": dict(proc.clock),
        "counters": dict(proc.counters),
        "fifo": proc.channel_counters(),
        "recording": {
            str(snapshot): {src: len(messages) for src, messages in rec.open.items()}
            for snapshot, rec in proc.snapshots.active.items()
        },
    }


def view_of_stored(data: dict[str, Any]) -> ProcessView:
    """The same view from a process as the store keeps it (``Process.to_dict()``)."""
    return {
        "state": dict(data["state"]),
        "sent": dict(data["sent"]),
        "applied": dict(data["applied"]),
        "clock": dict(data["clock"]),
        "counters": dict(data["counters"]),
        "fifo": {
            src: {"duplicates": r["duplicates"], "gaps": r["gaps"], "reorders": r["reorders"], "held": len(r["held"])}
            for src, r in data["receivers"].items()
        },
        "recording": {
            snapshot: {src: len(messages) for src, messages in rec["open"].items()}
            for snapshot, rec in data["snapshots"]["active"].items()
        },
    }


def diff_views(old: ProcessView | None, new: ProcessView) -> ProcessView:
    """The compact delta from ``old`` to ``new``: only what changed (all of it if no ``old``)."""
    if old is None:
        return new
    delta: ProcessView = {}
    for key in MERGED_FIELDS:
        before = old[key]
        changed = {k: v for k, v in new[key].items() if before.get(k) != v}
        if changed:
            delta[key] = changed
    for key in REPLACED_FIELDS:
        if new[key] != old[key]:
            delta[key] = new[key]
    return delta


# --- snapshots -----------------------------------------------------------------------------


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when else None


def snapshot_summary(snapshot: Snapshot) -> dict[str, Any]:
    """One row of the snapshot history (no records: those are in the export)."""
    return {
        "id": snapshot.pk,
        "run": snapshot.run_id,
        "initiator": snapshot.initiator,
        "status": snapshot.status,
        "reason": snapshot.reason,
        "started_at": _iso(snapshot.started_at),
        "finished_at": _iso(snapshot.finished_at),
        "duration": snapshot.duration,
        "reported": {
            "processes": snapshot.processes_reported,
            "processes_total": snapshot.processes_total,
            "channels": snapshot.channels_reported,
            "channels_total": snapshot.channels_total,
        },
        "verdict": snapshot.verdict,
        "verdict_text": verdict_text(snapshot),
    }


def verdict_text(snapshot: Snapshot) -> str:
    """The verdict in plain words, e.g. "consistent · 1000 of 1000 conserved · 0 problems"."""
    if snapshot.status == Snapshot.Status.RUNNING:
        return "running"
    verdict = snapshot.verdict
    if verdict is None:
        return f"failed · {snapshot.reason or 'no reason given'}"
    n = len(verdict["problems"])
    recorded, expected = verdict["recorded_total"], verdict["expected_total"]
    words = [
        "consistent" if verdict["consistent"] else "inconsistent",
        f"{recorded} of {expected} conserved"
        if recorded == expected
        else f"{recorded} of {expected} ({recorded - expected:+d}): not conserved",
        f"{n} problem" if n == 1 else f"{n} problems",
    ]
    if snapshot.status == Snapshot.Status.FAILED:
        words.insert(0, "failed")
    return " · ".join(words)


def history_summary(snapshots: QuerySet[Snapshot]) -> dict[str, Any]:
    """Counts by status and the durations of complete snapshots, over the whole run."""
    counts = dict.fromkeys(Snapshot.Status.values, 0)
    durations: list[float] = []
    for status, started, finished in snapshots.values_list("status", "started_at", "finished_at"):
        counts[status] += 1
        if status == Snapshot.Status.COMPLETE and finished is not None:
            durations.append((finished - started).total_seconds())
    return {
        "counts": counts,
        "duration": {
            "count": len(durations),
            "sum": sum(durations),
            "min": min(durations, default=None),
            "max": max(durations, default=None),
        },
    }


def live_progress(snapshot: Snapshot, run: Run, processes: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """How far a running snapshot has got, from the processes' own state in the store.

    The database receives records a little later (the recorder batches them), so the
    store says who has recorded and which channels are closed; the database adds what
    it already holds of their recorded contents.
    """
    key = str(snapshot.pk)
    recorded: list[str] = []
    channels: dict[str, dict[str, Any]] = {}
    incoming: dict[str, list[str]] = {name: [] for name in run.process_names}
    for src, dst in run.channel_pairs:
        incoming[dst].append(src)
    for name in run.process_names:
        data = processes.get(name)
        if data is None:
            continue
        active = data["snapshots"]["active"].get(key)
        if active is None and snapshot.pk not in data["snapshots"]["finished"]:
            continue
        recorded.append(name)
        for src in incoming[name]:
            if active is not None and src in active["open"]:
                channels[channel_id(src, name)] = {"status": "recording", "count": len(active["open"][src])}
            else:
                channels[channel_id(src, name)] = {"status": "closed", "messages": None}
    states = {r.process: r.state for r in ProcessRecord.objects.filter(snapshot=snapshot).only("process", "state")}
    for rec in ChannelRecord.objects.filter(snapshot=snapshot).only("src", "dst", "messages"):
        channels[channel_id(rec.src, rec.dst)] = {"status": "closed", "messages": rec.messages}
    return {
        "recorded": {name: states.get(name) for name in recorded},
        "channels": channels,
    }


# --- the state a page starts from ------------------------------------------------------------


def read_cursors(run_id: int) -> dict[str, int]:
    from snapshots.services import store

    raw = store().redis.hgetall(cursors_key(run_id))
    return {(k.decode() if isinstance(k, bytes) else k): int(v) for k, v in raw.items()}


def run_summary(run: Run) -> dict[str, Any]:
    wl = get_workload(run.workload)
    return {
        "id": run.pk,
        "topology": run.topology.name,
        "workload": run.workload,
        "unit": wl.unit,
        "payload_unit": wl.payload_unit,
        "status": run.status,
        "rate": run.rate,
        "expected_total": run.expected_total,
        "created_at": _iso(run.created_at),
    }


def run_state(run: Run, user: Any = None) -> dict[str, Any]:
    """Everything a dashboard shows, as of now, with the cursors it is current to.

    The cursors are read first: see the theory of operation above.
    """
    from snapshots.services import store

    cursors = read_cursors(run.pk)
    run.refresh_from_db()
    stored = store().load_processes(run.pk, run.process_names)
    snapshots = run.snapshots.all()
    recent = list(snapshots.order_by("-id")[:HISTORY])
    return {
        "type": "state",
        "run": run_summary(run),
        "processes": [
            {"name": name, **(view_of_stored(stored[name]) if name in stored else EMPTY_VIEW)}
            for name in run.process_names
        ],
        # False when the store no longer holds the run (Redis was restarted since it
        # ran): the page then shows the topology and the snapshots, and says why.
        "live_state": len(stored) == len(run.process_names),
        "channels": [channel_id(src, dst) for src, dst in run.channel_pairs],
        "snapshots": [snapshot_summary(s) for s in recent],
        "history": history_summary(snapshots),
        "live": {str(s.pk): live_progress(s, run, stored) for s in recent if s.status == Snapshot.Status.RUNNING},
        "cursors": cursors,
        "permissions": {"control": can_control(user)},
        "heartbeat": HEARTBEAT_INTERVAL,
    }
