"""The wire: what processes send each other, what they record, what they log.

Every layer speaks these shapes: the pure process builds them, the engine stores and
sends them as JSON, the app stores records in the database, the pages and exports show
them. They are TypedDicts, not classes, because they are JSON on the broker, in Redis and
in exports as they are here — self-describing, so anyone can check a snapshot from its
export (DESIGN.md §3).

Frames (the only thing a channel carries); messages and markers share one seq per
channel, from 1:

* :class:`MessageFrame`: an application message with the sender's vector clock;
* :class:`MarkerFrame`: a snapshot's marker; ``algorithm`` is there for Lai–Yang only.

Both carry ``epoch`` (a restore renumbers channels: older frames are stale) and ``red``
(the Lai–Yang snapshots the sender had recorded, absent when none).

Records (what a snapshot stores): :class:`ProcessRecord` (the state and the seqs that
make it self-describing) and :class:`ChannelRecord` (the channel's recorded messages,
plus the markers of other snapshots that passed while it was recorded). Channel p→q
holds exactly the frames with seq in ``(received_q[p], sent_p[q]]``.

Events (the run's log, and the page's animation) and :class:`Hit` (a watchpoint fired).

A channel is named ``"p→q"`` everywhere a person or a JSON document sees it (the page,
the API, the CLI, the verdict's words, exports). :func:`channel_id` is the one place
that writes that name and :func:`parse_channel_id` the one place that reads it, in
either spelling (``"p1→p2"`` or the ASCII ``"p1->p2"``).
"""

from __future__ import annotations

from typing import Any, Final, Literal, NotRequired, TypedDict, get_args

CHANDY_LAMPORT: Final = "chandy-lamport"
LAI_YANG: Final = "lai-yang"
ALGORITHMS: Final = (CHANDY_LAMPORT, LAI_YANG)
Algorithm = Literal["chandy-lamport", "lai-yang"]
ALGORITHM_LABELS: Final = {CHANDY_LAMPORT: "Chandy–Lamport", LAI_YANG: "Lai–Yang"}

ARROW: Final = "→"
ASCII_ARROW: Final = "->"


def channel_id(src: str, dst: str) -> str:
    """The channel from ``src`` to ``dst`` as everyone names it: ``"p1→p2"``."""
    return f"{src}{ARROW}{dst}"


def parse_channel_id(text: str) -> tuple[str, str] | None:
    """``(src, dst)`` from ``"p1→p2"`` or ``"p1->p2"`` (spaces around the arrow allowed);
    None when ``text`` names no channel."""
    src, arrow, dst = text.partition(ARROW)
    if not arrow:
        src, arrow, dst = text.partition(ASCII_ARROW)
    src, dst = src.strip(), dst.strip()
    if not arrow or not src or not dst:
        return None
    return src, dst


def split_channel_id(channel: str) -> tuple[str, str]:
    """``(src, dst)`` of a channel id that Cutline itself wrote (a key of the run's faults)."""
    parsed = parse_channel_id(channel)
    if parsed is None:
        raise ValueError(f"{channel!r} is not a channel id such as 'p1→p2'")
    return parsed


def normal_channel_id(text: str) -> str:
    """``text`` in Cutline's own spelling when it names a channel, as it is otherwise
    (so the caller's check names exactly what the user gave)."""
    parsed = parse_channel_id(text)
    return channel_id(*parsed) if parsed else text


# --- frames ----------------------------------------------------------------------------------


class MessageFrame(TypedDict):
    kind: Literal["message"]
    src: str
    dst: str
    seq: int
    payload: dict[str, Any]
    clock: dict[str, int]  # the sender's vector clock after the send
    epoch: int
    red: NotRequired[list[int]]


class MarkerFrame(TypedDict):
    kind: Literal["marker"]
    src: str
    dst: str
    seq: int
    snapshot: int
    epoch: int
    algorithm: NotRequired[Algorithm]  # absent: Chandy–Lamport
    red: NotRequired[list[int]]


Frame = MessageFrame | MarkerFrame


# --- records ---------------------------------------------------------------------------------


class RecordedMessage(TypedDict):
    seq: int
    payload: dict[str, Any]


class RecordedMarker(TypedDict):
    seq: int
    snapshot: int  # the other snapshot whose marker passed while the channel was recorded


class RecordedProcess(TypedDict):
    """A process's recorded state as a snapshot's export holds it: enough, with the
    channels' records, for anyone to check the snapshot (the channel rule above)."""

    process: str
    state: dict[str, Any]
    sent: dict[str, int]  # last seq sent on each outgoing channel
    received: dict[str, int]  # the contiguous prefix of seqs applied from each incoming channel
    received_above: dict[str, list[int]]  # seqs applied beyond it (non-FIFO channels only)
    clock: dict[str, int]


class RecordedChannel(TypedDict):
    """A channel's recorded state as a snapshot's export holds it."""

    src: str
    dst: str
    messages: list[RecordedMessage]
    markers: list[RecordedMarker]


class ProcessRecord(RecordedProcess):
    """A process's record as the process makes it: which snapshot it belongs to."""

    kind: Literal["process"]
    snapshot: int


class ChannelRecord(RecordedChannel):
    """A channel's record as its receiver makes it when the channel closes."""

    kind: Literal["channel"]
    snapshot: int


Record = ProcessRecord | ChannelRecord


def recorded_process(record: ProcessRecord) -> RecordedProcess:
    """A process's record as the export shows it (without ``kind`` and ``snapshot``)."""
    return {
        "process": record["process"],
        "state": record["state"],
        "sent": record["sent"],
        "received": record["received"],
        "received_above": record["received_above"],
        "clock": record["clock"],
    }


def recorded_channel(record: ChannelRecord) -> RecordedChannel:
    """A channel's record as the export shows it (without ``kind`` and ``snapshot``)."""
    return {"src": record["src"], "dst": record["dst"], "messages": record["messages"], "markers": record["markers"]}


# --- events and hits -------------------------------------------------------------------------

EventKind = Literal[
    "send",
    "receive",
    "initiate",
    "record",
    "marker_send",
    "marker_receive",
    "recording",
    "recorded_message",
    "channel_closed",
    "local_done",
    "watchpoint",
]
# A snapshot's own events, and the watchpoint hits that start one: every kind but the
# application's sends and receives (what the dashboard plays step by step).
SNAPSHOT_EVENT_KINDS: Final = frozenset(get_args(EventKind)) - {"send", "receive"}


class Event(TypedDict):
    """One line of a run's event log: who did what, at which vector clock."""

    kind: EventKind
    process: str
    clock: dict[str, int]
    peer: NotRequired[str]  # the other end of the channel (send, receive, markers, recording)
    seq: NotRequired[int]  # the frame's seq on that channel
    snapshot: NotRequired[int]
    algorithm: NotRequired[str]  # initiate
    watchpoint: NotRequired[int]  # watchpoint: which one fired …
    detail: NotRequired[str]  # … and what it saw
    t: NotRequired[float]  # when the engine committed it (added by the node)
    id: NotRequired[int]  # its number in the run's log, 1, 2, 3 … (given by the store's commit)


class Hit(TypedDict):
    """A watchpoint fired at a process: the caller decides what to do (a snapshot)."""

    watchpoint: int
    process: str
    detail: str
    t: NotRequired[float]  # the simulator's time of the hit
