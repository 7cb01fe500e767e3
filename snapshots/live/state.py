"""The live stream of a run: its names, its frame shapes, and the state a page starts from.

Theory of operation
-------------------
Every worker that serves processes of a run publishes that run's changes as *frames*
(``snapshots/live/publisher.py``); every open dashboard of the run receives them over one
WebSocket (``snapshots/live/consumers.py``). The database and the runtime state store are
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
  (``snapshots/live/fanout.py``) before it reads the state, so no frame falls between the two.
* A frame's fields are absolute values (a balance, the last seq sent on a channel),
  never increments, so applying one twice, or after a state that already holds it,
  changes nothing.
* A restore (``snapshots/recovery.py``) puts the whole run in another state at once and
  starts a new **epoch**. Deltas say their epoch, the run's settings and the state say
  the run's: a page that sees a newer epoch than its own starts over from the state
  (it is also told at once by a ``restore`` frame, ``snapshots/live/publisher.py``), and a delta
  of an older epoch changes nothing but its source's cursor.

Names are the product's words: process, channel (``"p1→p2"``), run, snapshot, marker,
record, verdict.
"""

from __future__ import annotations

from typing import Any

from cluster.core.conditions import known_names
from cluster.core.process import SimulatedProcess
from cluster.core.wire import channel_id
from cluster.core.workloads import get_workload
from snapshots import services
from snapshots.live.frames import EMPTY_VIEW, StateFrame, view_of_process
from snapshots.models import ChannelRecord, ProcessRecord, Run, Snapshot
from snapshots.presenter import history_summary, iso, snapshot_summary, watchpoints_of
from snapshots.recovery import restores_of
from snapshots.roles import can_control

HISTORY = 50  # snapshots a page is sent; the summary counts all of them
# Seconds between heartbeats on a socket; the page calls it dead after three missed.
HEARTBEAT_INTERVAL = 5.0

# Messages per channel that a page's starting state lists (from the channel's log, oldest first).
IN_FLIGHT_SHOWN = 20


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
    return services.store().read_cursors(run_id)


def run_summary(run: Run) -> dict[str, Any]:
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
        "created_at": iso(run.created_at),
        # What a watchpoint's condition may name here (the panel's hint).
        "known_names": known_names(run.workload),
    }


def read_in_flight(run: Run, stored: dict[str, dict[str, Any]]) -> dict[str, list[list[Any]]]:
    """The oldest messages in each channel (sent, not yet applied by the receiver as
    ``stored`` has it), from the channel's log, by channel.

    After a restore these are the recorded messages, delivered again: the page shows
    them back in their channels from its first state on.
    """
    pairs = [(src, dst) for src, dst in run.channel_pairs if dst in stored]
    logs = services.store().unapplied_frames(
        run.pk, [(src, dst, stored[dst]["applied"].get(src, 0)) for src, dst in pairs], IN_FLIGHT_SHOWN * 2
    )
    out: dict[str, list[list[Any]]] = {}
    for (src, dst), frames in zip(pairs, logs, strict=True):
        above = set(stored[dst].get("applied_above", {}).get(src, ()))
        messages = [[f["seq"], f["payload"]] for f in frames if f.get("kind") == "message" and f["seq"] not in above]
        if messages:
            out[channel_id(src, dst)] = messages[:IN_FLIGHT_SHOWN]
    return out


def fault_counts(run_id: int) -> dict[str, dict[str, int]]:
    """Per lossy channel: frames retransmitted, and transmissions the channel lost."""
    store = services.store()
    return {"retransmissions": store.retries(run_id), "lost": store.lost(run_id)}


def run_state(run: Run, user: Any = None) -> StateFrame:
    """Everything a dashboard shows, as of now, with the cursors it is current to.

    The cursors are read first: see the theory of operation above.
    """
    cursors = read_cursors(run.pk)
    run.refresh_from_db()
    stored = services.store().load_processes(run.pk, run.process_names)
    snapshots = run.snapshots.all()
    recent = list(snapshots.select_related("watchpoint").order_by("-id")[:HISTORY])
    return {
        "type": "state",
        "run": run_summary(run),
        "processes": [
            {
                "name": name,
                **(view_of_process(SimulatedProcess.from_dict(stored[name])) if name in stored else EMPTY_VIEW),
            }
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
        "first_holding": services.first_holding(run),
        "watchpoints": watchpoints_of(run),
        "live": {str(s.pk): live_progress(s, run, stored) for s in recent if s.status == Snapshot.Status.RUNNING},
        "cursors": cursors,
        "permissions": {"control": can_control(user)},
        "heartbeat": HEARTBEAT_INTERVAL,
    }
