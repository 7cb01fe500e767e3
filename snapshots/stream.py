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
* A restore (``snapshots/recovery.py``) puts the whole run in another state at once and
  starts a new **epoch**. Deltas say their epoch, the run's settings and the state say
  the run's: a page that sees a newer epoch than its own starts over from the state
  (it is also told at once by a ``restore`` frame, ``snapshots/events.py``), and a delta
  of an older epoch changes nothing but its source's cursor.

Names are the product's words: process, channel (``"p1→p2"``), run, snapshot, marker,
record, verdict.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models import QuerySet

from cluster.process import Process as LiveProcess
from cluster.store import channel_key
from cluster.workloads import get_workload
from snapshots.models import ChannelRecord, ProcessRecord, Run, Snapshot

ProcessView = dict[str, Any]

HISTORY = 50  # snapshots a page is sent; the summary counts all of them
CURSOR_TTL = 24 * 3600  # seconds: the cursors of a run nobody publishes for go away
# Seconds between heartbeats on a socket; the page calls it dead after three missed.
HEARTBEAT_INTERVAL = 5.0

# Messages per channel that a page's starting state lists (from the channel's log, oldest first).
IN_FLIGHT_SHOWN = 20

# A process view's fields that a delta merges key by key, and those it replaces whole.
MERGED_FIELDS = ("state", "sent", "applied", "above", "clock", "counters", "fifo")
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
    "above": {},
    "clock": {},
    "counters": {"messages_sent": 0, "messages_applied": 0, "markers_sent": 0, "markers_received": 0},
    "fifo": {},
    "recording": {},
}


def view_of_process(proc: LiveProcess) -> ProcessView:
    """What the page shows of a live process (its workload state, seqs, clock, counters).

    ``applied`` is the contiguous prefix of each incoming channel; ``above`` the seqs a
    non-FIFO channel has applied beyond it (every source is listed, so an emptied list
    is sent as such): a message is in flight when it is in neither.
    """
    return {
        "state": dict(proc.state),
        "sent": dict(proc.sent),
        "applied": dict(proc.applied),
        "above": {src: sorted(proc.applied_above.get(src, ())) for src in proc.incoming},
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
        "above": {src: sorted(data.get("applied_above", {}).get(src, ())) for src in data["incoming"]},
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
        "algorithm": snapshot.algorithm,
        "epoch": snapshot.epoch,
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
        "properties": snapshot.properties,
        "watchpoint": watchpoint_of(snapshot),
        "trigger": snapshot.trigger or None,
    }


def watchpoint_of(snapshot: Snapshot) -> dict[str, Any] | None:
    """The watchpoint that triggered a snapshot, as its history row names it (None: a
    person took it). A watchpoint removed since is still named by its trigger text."""
    if snapshot.watchpoint_id is None:
        return None
    watchpoint = snapshot.watchpoint
    if watchpoint is None:
        return None
    return {"id": watchpoint.pk, "process": watchpoint.process or None, "condition": watchpoint.condition}


def verdict_text(snapshot: Snapshot) -> str:
    """The verdict in plain words, e.g. "consistent · 1000 of 1000 conserved · 0 problems"."""
    if snapshot.status == Snapshot.Status.RUNNING:
        return "running"
    verdict = snapshot.verdict
    if verdict is None:
        return f"failed · {snapshot.reason or 'no reason given'}"
    n = len(verdict["problems"])
    recorded, expected = verdict["recorded_total"], verdict["expected_total"]
    if recorded is None:
        # The workload conserves nothing (diffusion): there is no total to check.
        conservation = "nothing conserved to check"
    elif recorded == expected:
        conservation = f"{recorded} of {expected} conserved"
    else:
        conservation = f"{recorded} of {expected} ({recorded - expected:+d}): not conserved"
    words = [
        "consistent" if verdict["consistent"] else "inconsistent",
        conservation,
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


def watchpoints_of(run: Run) -> list[dict[str, Any]]:
    """Every watchpoint of the run, fired-once ones too (they show their hits)."""
    return [w.to_dict() for w in run.watchpoints.order_by("id")]


# --- the state a page starts from ------------------------------------------------------------


def read_cursors(run_id: int) -> dict[str, int]:
    from snapshots.services import store

    raw = store().redis.hgetall(cursors_key(run_id))
    return {(k.decode() if isinstance(k, bytes) else k): int(v) for k, v in raw.items()}


def run_summary(run: Run) -> dict[str, Any]:
    from snapshots.conditions import known_names

    wl = get_workload(run.workload)
    return {
        "id": run.pk,
        "topology": run.topology.name,
        "workload": run.workload,
        "unit": wl.unit,
        "payload_unit": wl.payload_unit,
        "value_key": wl.value_key,
        "status": run.status,
        "rate": run.rate,
        "epoch": run.epoch,
        "faults": run.faults,
        "expected_total": run.expected_total,
        "created_at": _iso(run.created_at),
        # What a watchpoint's condition may name here (the panel's hint).
        "known_names": known_names(run.workload),
    }


def read_in_flight(run: Run, stored: dict[str, dict[str, Any]]) -> dict[str, list[list[Any]]]:
    """The oldest messages in each channel (sent, not yet applied by the receiver as
    ``stored`` has it), from the channel's log, by channel.

    After a restore these are the recorded messages, delivered again: the page shows
    them back in their channels from its first state on.
    """
    from snapshots.services import store

    pairs = [(src, dst) for src, dst in run.channel_pairs if dst in stored]
    pipe = store().redis.pipeline(transaction=False)
    for src, dst in pairs:
        # The log keeps applied frames a while (they are trimmed lazily): skip those.
        applied = stored[dst]["applied"].get(src, 0)
        pipe.zrangebyscore(channel_key(run.pk, src, dst), f"({applied}", "+inf", start=0, num=IN_FLIGHT_SHOWN * 2)
    out: dict[str, list[list[Any]]] = {}
    for (src, dst), raws in zip(pairs, pipe.execute(), strict=True):
        above = set(stored[dst].get("applied_above", {}).get(src, ()))
        frames = [json.loads(raw)["frame"] for raw in raws]
        messages = [[f["seq"], f["payload"]] for f in frames if f.get("kind") == "message" and f["seq"] not in above]
        if messages:
            out[channel_id(src, dst)] = messages[:IN_FLIGHT_SHOWN]
    return out


def fault_counts(run_id: int) -> dict[str, dict[str, int]]:
    """Per lossy channel: frames retransmitted, and transmissions the channel lost."""
    from snapshots.services import store

    return {"retransmissions": store().retries(run_id), "lost": store().lost(run_id)}


def run_state(run: Run, user: Any = None) -> dict[str, Any]:
    """Everything a dashboard shows, as of now, with the cursors it is current to.

    The cursors are read first: see the theory of operation above.
    """
    from snapshots.recovery import restores_of
    from snapshots.services import first_holding, store

    cursors = read_cursors(run.pk)
    run.refresh_from_db()
    stored = store().load_processes(run.pk, run.process_names)
    snapshots = run.snapshots.all()
    recent = list(snapshots.select_related("watchpoint").order_by("-id")[:HISTORY])
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
        "in_flight": read_in_flight(run, stored),
        "fault_counts": fault_counts(run.pk),
        "snapshots": [snapshot_summary(s) for s in recent],
        "history": history_summary(snapshots),
        "restores": restores_of(run),
        "first_holding": first_holding(run),
        "watchpoints": watchpoints_of(run),
        "live": {str(s.pk): live_progress(s, run, stored) for s in recent if s.status == Snapshot.Status.RUNNING},
        "cursors": cursors,
        "permissions": {"control": can_control(user)},
        "heartbeat": HEARTBEAT_INTERVAL,
    }
