"""Every frame the live stream sends a page, as one typed union, and how it is built.

A page's socket carries seven kinds of frame, told apart by ``type``:

* ``state``: everything a dashboard shows, as of now (sent on connect; also served as
  ``state.json``), built by ``snapshots/live/state.py``;
* ``delta``: what one source (worker) saw change since its last frame of the run, built
  by ``snapshots/live/publisher.py``;
* ``heartbeat``: the run's cursors and settings every few seconds (``snapshots/live/fanout.py``);
* ``restore`` and ``watchpoints``: told at once to every page by the server that restored
  the run or changed its watchpoints (``snapshots/live/announcements.py``);
* ``reply`` and ``error``: the answer to one command of this page (``snapshots/live/consumers.py``).

A process appears in ``state`` whole and in ``delta`` as the fields that changed: both
are a :class:`ProcessView`, built here from the pure process.
"""

from __future__ import annotations

import json
from typing import Any, Literal, NotRequired, TypedDict

from cluster.core.process import SimulatedProcess

# --- a process as the page shows it ---------------------------------------------------------


class ProcessView(TypedDict, total=False):
    state: dict[str, Any]
    sent: dict[str, int]
    applied: dict[str, int]
    above: dict[str, list[int]]
    clock: dict[str, int]
    counters: dict[str, int]
    fifo: dict[str, dict[str, int]]
    recording: dict[str, dict[str, int]]


# A process view's fields that a delta merges key by key, and those it replaces whole.
MERGED_FIELDS = ("state", "sent", "applied", "above", "clock", "counters", "fifo")
REPLACED_FIELDS = ("recording",)

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


def view_of_process(proc: SimulatedProcess) -> ProcessView:
    """What the page shows of a process (its workload state, seqs, clock, counters).

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


def diff_views(old: ProcessView | None, new: ProcessView) -> ProcessView:
    """The compact delta from ``old`` to ``new``: only what changed (all of it if no ``old``)."""
    if old is None:
        return new
    delta: dict[str, Any] = {}
    for key in MERGED_FIELDS:
        before: dict[str, Any] = old[key]  # type: ignore[literal-required]
        changed = {k: v for k, v in new[key].items() if before.get(k) != v}  # type: ignore[literal-required]
        if changed:
            delta[key] = changed
    for key in REPLACED_FIELDS:
        if new[key] != old[key]:  # type: ignore[literal-required]
            delta[key] = new[key]  # type: ignore[literal-required]
    return delta  # type: ignore[return-value]


# --- the frames -------------------------------------------------------------------------------


class RunSettings(TypedDict):
    """What a page shows of a run's meta: status (``restoring`` for a moment during a
    restore), rate, epoch and the channel faults in force."""

    status: str
    rate: float
    epoch: int
    faults: dict[str, dict[str, Any]]


def run_settings(meta: dict[str, Any]) -> RunSettings:
    """The settings of a run's meta as the store keeps it."""
    return {
        "status": meta["status"],
        "rate": float(meta["rate"]),
        "epoch": int(meta.get("epoch", 0)),
        "faults": meta.get("faults", {}),
    }


class StateFrame(TypedDict):
    type: Literal["state"]
    run: dict[str, Any]
    processes: list[dict[str, Any]]
    live_state: bool
    channels: list[str]
    in_flight: dict[str, list[list[Any]]]
    fault_counts: dict[str, dict[str, int]]
    snapshots: list[dict[str, Any]]
    history: dict[str, Any]
    restores: list[dict[str, Any]]
    first_holding: dict[str, int]
    watchpoints: list[dict[str, Any]]
    live: dict[str, dict[str, Any]]
    cursors: dict[str, int]
    permissions: dict[str, bool]
    heartbeat: float


class DeltaFrame(TypedDict):
    type: Literal["delta"]
    run: int
    source: str
    seq: int
    t: float
    since: float
    epoch: NotRequired[int]
    processes: NotRequired[dict[str, ProcessView]]
    messages: NotRequired[list[list[Any]]]
    snapshot_events: NotRequired[list[dict[str, Any]]]
    run_settings: NotRequired[RunSettings]


class HeartbeatFrame(TypedDict):
    type: Literal["heartbeat"]
    t: float
    cursors: dict[str, int]
    run_settings: NotRequired[RunSettings]
    fault_counts: dict[str, dict[str, int]]


class RestoreFrame(TypedDict):
    type: Literal["restore"]
    run: int
    restore: dict[str, Any]


class WatchpointsFrame(TypedDict):
    type: Literal["watchpoints"]
    run: int
    watchpoints: list[dict[str, Any]]


class ReplyFrame(TypedDict):
    type: Literal["reply"]
    id: Any
    command: str
    run_settings: RunSettings
    # What the command made, by command: snapshot; restore; watch and unwatch; faults.
    snapshot: NotRequired[dict[str, Any]]
    restore: NotRequired[dict[str, Any]]
    watchpoint: NotRequired[dict[str, Any]]
    watchpoints: NotRequired[list[dict[str, Any]]]
    channel: NotRequired[str]
    faults: NotRequired[dict[str, Any]]


class ErrorFrame(TypedDict):
    type: Literal["error"]
    id: Any
    command: str | None
    message: str


Frame = StateFrame | DeltaFrame | HeartbeatFrame | RestoreFrame | WatchpointsFrame | ReplyFrame | ErrorFrame


def encode(frame: Frame) -> str:
    """A frame as the socket sends it: compact JSON."""
    return json.dumps(frame, separators=(",", ":"))


def error_frame(message: str, command_id: Any = None, command: str | None = None) -> ErrorFrame:
    return {"type": "error", "id": command_id, "command": command, "message": message}


def group_name(run_id: int) -> str:
    """The channel layer group every dashboard of a run joins (one member per server process)."""
    return f"run.{run_id}"
