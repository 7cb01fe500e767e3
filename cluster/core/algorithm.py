"""Two snapshot algorithms, Chandy–Lamport and Lai–Yang, for one process, as a pure state machine.

Theory of operation
-------------------
Assumptions: the graph of processes and directed channels is strongly connected;
channels are reliable (every frame is applied exactly once, after a finite delay).
Chandy–Lamport (1985) also needs them FIFO; Lai–Yang (1987) does not. Cutline's
transport (``cluster/core/fifo.py``) rebuilds exactly-once channels on top of an
at-least-once broker — FIFO ones, or, on a channel with the ``reorder`` fault,
non-FIFO ones that apply every frame the moment it arrives.

One :class:`SnapshotProcess` holds, for one process, the state of every snapshot it
takes part in, each with its own algorithm (chosen when the snapshot starts and carried
by its markers). It is driven by four inputs and answers each with a list of effects
that the caller carries out *in order*:

* ``initiate(s, algorithm)``      — this process starts snapshot ``s``;
* ``on_red(src, red)``            — a frame on src→self is about to be applied; ``red``
  lists the Lai–Yang snapshots its sender had recorded when it sent it;
* ``on_marker(s, src, seq, ...)`` — the marker of ``s`` (frame ``seq``) was applied;
* ``on_message(src, seq, ...)``   — an application message was applied.

Every frame on a channel has a seq (1, 2, 3 …, messages and markers alike), so "the
frames sent before the sender recorded" is "the seqs below its marker's seq".

**Chandy–Lamport.** On the first marker of ``s`` (or on ``initiate``) the process
records its local state (:class:`RecordLocalState`) *before* it sends anything else,
then sends a marker on every outgoing channel (:class:`SendMarker`), records the
channel the marker came on as empty, and starts recording every other incoming channel
(:class:`StartRecording`). Every application message applied from a channel being
recorded is part of that channel's state (:class:`RecordChannelMessage`). A later
marker of ``s`` on a channel closes it (:class:`ChannelClosed`). This is right only on
FIFO channels: there "arrived before the marker" is "sent before the sender recorded".
On a non-FIFO channel a message sent after the sender recorded can overtake the marker
and be applied before the receiver records (a receive without its send in the cut), and
one sent before can fall behind the marker and be left out of the channel's state.

**Lai–Yang.** Instead of trusting the order of arrival, every frame a process sends
after it recorded ``s`` is *red* for ``s`` (``red`` piggybacks those snapshot ids);
frames sent before are *white*. The rules:

* record on ``initiate``, on the first marker of ``s``, or — *before applying it* — on a
  frame that is red for an ``s`` not recorded yet: so no red receive is ever inside the
  cut, whatever the order of arrival (that is why FIFO is not needed);
* after recording, send a marker on every outgoing channel: its seq tells the receiver
  where the sender's cut lies (seq below it ⇔ sent before the cut ⇔ white);
* channel src→self records the *white* messages applied after this process recorded
  (those with seq below the marker's, once the marker is known);
* it closes when the marker has been applied *and* every seq below the marker's has
  arrived: then no white message can still be on the way. Other snapshots' markers
  that passed meanwhile are kept only if their seq is below the marker's.

The recorded channel holds its messages in seq (= send) order. Markers are still
needed: they tell the receiver how many white frames to wait for, and they bring a
snapshot to a process that would otherwise never hear of it (one nobody sends to after
recording).

The process record's received set (``received`` prefix plus ``received_above``, kept
by the caller) excludes the frame that triggered the recording, so channel p→q of
either algorithm must hold exactly the seqs ``≤ sent_p[q]`` outside ``q``'s received set.

A process is done with ``s`` when every incoming channel is closed
(:class:`LocalSnapshotDone`); a snapshot ends when every process is done. Several
snapshots may run at once, of either algorithm: each has its own id and its own entry
here, and nothing one does touches another. A snapshot id that is already finished
here is remembered, so a marker delivered twice never starts it again.

The caller owns the application: it applies messages to the workload state, keeps the
sequence numbers, clocks and received sets, and captures them when told to record.
This file never sends, sleeps, reads the clock or draws random numbers; it imports only
the stdlib.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NotRequired, TypedDict

from cluster.core.wire import ALGORITHMS, CHANDY_LAMPORT, LAI_YANG, channel_id

# How many recorded Lai–Yang snapshots a process keeps marking its frames red for. A
# snapshot still running after this many newer ones were recorded here could see a
# late frame as white; 64 concurrent snapshots is far beyond any real use.
RED_KEPT = 64

# --- effects ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordLocalState:
    """Capture this process's state now, before anything else happens."""

    snapshot: int


@dataclass(frozen=True)
class SendMarker:
    """Send the marker of ``snapshot`` on the channel self→dst."""

    snapshot: int
    dst: str
    algorithm: str = CHANDY_LAMPORT


@dataclass(frozen=True)
class StartRecording:
    """Messages applied from src→self may belong to the channel's recorded state from now."""

    snapshot: int
    src: str


@dataclass(frozen=True)
class RecordChannelMessage:
    """A message that was in the channel src→self when the cut was taken."""

    snapshot: int
    src: str
    seq: int
    payload: Any


@dataclass(frozen=True)
class ChannelClosed:
    """The channel src→self's state for ``snapshot`` is final.

    ``messages`` are the recorded application messages as ``(seq, payload)`` — in
    arrival order for Chandy–Lamport (= seq order on a FIFO channel), in seq order for
    Lai–Yang; ``markers`` are the ``(seq, snapshot)`` of other snapshots' markers in the
    channel at the cut, so that the recorded seqs account for every frame in it.
    """

    snapshot: int
    src: str
    messages: tuple[tuple[int, Any], ...]
    markers: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class LocalSnapshotDone:
    """Every incoming channel of this process is closed for ``snapshot``."""

    snapshot: int


Effect = RecordLocalState | SendMarker | StartRecording | RecordChannelMessage | ChannelClosed | LocalSnapshotDone


# --- state -----------------------------------------------------------------------------


@dataclass
class _Recording:
    """What one process holds for one snapshot while its channels are open.

    ``marker_seq`` and ``missing`` are Lai–Yang's: the seq of the marker applied on a
    still open channel, and the seqs below it that have not arrived yet.
    """

    algorithm: str = CHANDY_LAMPORT
    open: dict[str, list[tuple[int, Any]]] = field(default_factory=dict)
    markers: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    marker_seq: dict[str, int] = field(default_factory=dict)
    missing: dict[str, set[int]] = field(default_factory=dict)


class ProtocolError(ValueError):
    """An input that cannot happen on the channels this process has."""


def check_algorithm(algorithm: str) -> str:
    if algorithm not in ALGORITHMS:
        raise ProtocolError(f"unknown snapshot algorithm {algorithm!r}; choose one of {', '.join(ALGORITHMS)}")
    return algorithm


class RecordingData(TypedDict):
    """One snapshot under way at a process, as the store keeps it."""

    algorithm: NotRequired[str]
    open: dict[str, list[list[Any]]]  # src → [seq, payload] recorded so far
    markers: dict[str, list[list[int]]]  # src → [seq, snapshot] of other snapshots' markers
    marker_seq: NotRequired[dict[str, int]]
    missing: NotRequired[dict[str, list[int]]]


class SnapshotProcessData(TypedDict):
    """A process's snapshot machine as the store keeps it (``to_dict``)."""

    name: str
    incoming: list[str]
    outgoing: list[str]
    active: dict[str, RecordingData]  # by snapshot id, as text (JSON keys)
    finished: list[int]
    red: NotRequired[list[int]]


class SnapshotProcess:
    """The snapshot side of one process: a pure Chandy–Lamport and Lai–Yang state machine."""

    def __init__(
        self,
        name: str,
        incoming: list[str] | tuple[str, ...],
        outgoing: list[str] | tuple[str, ...],
    ) -> None:
        self.name = name
        self.incoming = tuple(sorted(incoming))
        self.outgoing = tuple(sorted(outgoing))
        self.active: dict[int, _Recording] = {}
        self.finished: set[int] = set()
        # The Lai–Yang snapshots recorded here, oldest first: what this process's frames are red for.
        self.red: list[int] = []

    # -- inputs ---------------------------------------------------------------------

    def initiate(self, snapshot: int, algorithm: str = CHANDY_LAMPORT) -> list[Effect]:
        """Start ``snapshot`` here. Repeating it (or initiating a known one) does nothing."""
        check_algorithm(algorithm)
        if self._knows(snapshot):
            return []
        return self._record_and_flood(snapshot, algorithm)

    def on_red(self, src: str, red: Iterable[int]) -> list[Effect]:
        """A frame on src→self, red for the snapshots ``red``, is about to be applied.

        Lai–Yang: record every one of them not known here yet, before the frame changes
        anything. Chandy–Lamport runs never have red frames.
        """
        self._check_incoming(src)
        effects: list[Effect] = []
        for snapshot in sorted(set(red)):
            if not self._knows(snapshot):
                effects.extend(self._record_and_flood(snapshot, LAI_YANG))
        return effects

    def on_marker(
        self,
        snapshot: int,
        src: str,
        seq: int = 0,
        algorithm: str = CHANDY_LAMPORT,
        missing: Iterable[int] = (),
    ) -> list[Effect]:
        """The marker of ``snapshot`` (frame ``seq``) was applied from src→self.

        ``missing`` are the seqs below ``seq`` on src→self not applied yet (only a
        non-FIFO channel has any); a Lai–Yang channel waits for them before it closes.
        """
        self._check_incoming(src)
        check_algorithm(algorithm)
        effects: list[Effect] = []
        for other, other_rec in list(self.active.items()):
            if other != snapshot and src in other_rec.open:
                other_rec.markers[src].append((seq, snapshot))
                effects.extend(self._arrived(other, other_rec, src, seq))
        if snapshot in self.finished:
            return effects
        rec = self.active.get(snapshot)
        if rec is None:
            effects.extend(self._record_and_flood(snapshot, algorithm, came_on=(src, seq, set(missing))))
            return effects
        if src not in rec.open or src in rec.marker_seq:
            # A second marker of the same snapshot on one channel: a duplicate frame.
            raise ProtocolError(
                f"{self.name}: channel {channel_id(src, self.name)} already closed for snapshot {snapshot}"
            )
        if rec.algorithm == LAI_YANG:
            effects.extend(self._marker_arrived(snapshot, rec, src, seq, set(missing)))
        else:
            effects.append(self._close(snapshot, rec, src))
            effects.extend(self._maybe_done(snapshot, rec))
        return effects

    def on_message(self, src: str, seq: int, payload: Any, red: Iterable[int] = ()) -> list[Effect]:
        """An application message was applied from src→self; record it where src is open.

        A Lai–Yang channel records it only if it is white: not red for that snapshot,
        and below the marker's seq when the marker is already known.
        """
        self._check_incoming(src)
        red_for = set(red)
        effects: list[Effect] = []
        for snapshot, rec in list(self.active.items()):
            if src not in rec.open:
                continue
            white = rec.algorithm == CHANDY_LAMPORT or (
                snapshot not in red_for and seq < rec.marker_seq.get(src, seq + 1)
            )
            if white:
                rec.open[src].append((seq, payload))
                effects.append(RecordChannelMessage(snapshot, src, seq, payload))
            effects.extend(self._arrived(snapshot, rec, src, seq))
        return effects

    # -- queries --------------------------------------------------------------------

    def recording(self, snapshot: int) -> tuple[str, ...]:
        """The incoming channels (by source) still being recorded for ``snapshot``."""
        rec = self.active.get(snapshot)
        return tuple(sorted(rec.open)) if rec else ()

    def algorithm(self, snapshot: int) -> str | None:
        """The algorithm of a snapshot still running here (None if it is not)."""
        rec = self.active.get(snapshot)
        return rec.algorithm if rec else None

    # -- persistence ----------------------------------------------------------------

    def to_dict(self) -> SnapshotProcessData:
        return {
            "name": self.name,
            "incoming": list(self.incoming),
            "outgoing": list(self.outgoing),
            "active": {
                str(s): {
                    "algorithm": rec.algorithm,
                    "open": {src: [list(m) for m in msgs] for src, msgs in rec.open.items()},
                    "markers": {src: [list(m) for m in ms] for src, ms in rec.markers.items()},
                    "marker_seq": dict(rec.marker_seq),
                    "missing": {src: sorted(seqs) for src, seqs in rec.missing.items()},
                }
                for s, rec in self.active.items()
            },
            "finished": sorted(self.finished),
            "red": list(self.red),
        }

    @classmethod
    def from_dict(cls, data: SnapshotProcessData) -> SnapshotProcess:
        """Load a machine; dicts saved before Lai–Yang existed load as Chandy–Lamport ones."""
        proc = cls(data["name"], data["incoming"], data["outgoing"])
        for s, rec in data["active"].items():
            proc.active[int(s)] = _Recording(
                algorithm=rec.get("algorithm", CHANDY_LAMPORT),
                open={src: [(m[0], m[1]) for m in msgs] for src, msgs in rec["open"].items()},
                markers={src: [(m[0], m[1]) for m in ms] for src, ms in rec["markers"].items()},
                marker_seq=dict(rec.get("marker_seq", {})),
                missing={src: set(seqs) for src, seqs in rec.get("missing", {}).items()},
            )
        proc.finished = set(data["finished"])
        proc.red = list(data.get("red", []))
        return proc

    # -- rules ----------------------------------------------------------------------

    def _knows(self, snapshot: int) -> bool:
        return snapshot in self.active or snapshot in self.finished

    def _check_incoming(self, src: str) -> None:
        if src not in self.incoming:
            raise ProtocolError(f"{self.name} has no channel from {src}")

    def _record_and_flood(
        self, snapshot: int, algorithm: str, came_on: tuple[str, int, set[int]] | None = None
    ) -> list[Effect]:
        """Record, send the markers, open the incoming channels; ``came_on`` = (src, seq, missing)
        of the marker that started it, if one did."""
        rec = _Recording(algorithm)
        self.active[snapshot] = rec
        if algorithm == LAI_YANG:
            self.red = [*self.red, snapshot][-RED_KEPT:]
        effects: list[Effect] = [RecordLocalState(snapshot)]
        effects.extend(SendMarker(snapshot, dst, algorithm) for dst in self.outgoing)
        for src in self.incoming:
            rec.open[src] = []
            rec.markers[src] = []
            if came_on is None or src != came_on[0]:
                effects.append(StartRecording(snapshot, src))
            elif algorithm == LAI_YANG:
                _, seq, missing = came_on
                rec.marker_seq[src] = seq
                rec.missing[src] = missing
                if missing:
                    effects.append(StartRecording(snapshot, src))
                else:
                    effects.append(self._close(snapshot, rec, src))
            else:
                effects.append(self._close(snapshot, rec, src))
        effects.extend(self._maybe_done(snapshot, rec))
        return effects

    def _marker_arrived(self, snapshot: int, rec: _Recording, src: str, seq: int, missing: set[int]) -> list[Effect]:
        """Lai–Yang: the marker on src→self is known; close now unless white frames are still out."""
        rec.marker_seq[src] = seq
        rec.missing[src] = missing
        if missing:
            return []
        return [self._close(snapshot, rec, src), *self._maybe_done(snapshot, rec)]

    def _arrived(self, snapshot: int, rec: _Recording, src: str, seq: int) -> list[Effect]:
        """Lai–Yang: frame ``seq`` came on src→self; it may be the last one the channel waited for."""
        missing = rec.missing.get(src)
        if missing is None or seq not in missing:
            return []
        missing.discard(seq)
        if missing:
            return []
        return [self._close(snapshot, rec, src), *self._maybe_done(snapshot, rec)]

    @staticmethod
    def _close(snapshot: int, rec: _Recording, src: str) -> ChannelClosed:
        messages = rec.open.pop(src)
        markers = rec.markers.pop(src)
        if rec.algorithm == LAI_YANG:
            marker_seq = rec.marker_seq.pop(src)
            rec.missing.pop(src, None)
            # Frames that arrived while the channel waited but were sent after the cut are red.
            markers = [m for m in markers if m[0] < marker_seq]
            messages.sort(key=lambda m: m[0])
            markers.sort()
        return ChannelClosed(snapshot, src, tuple(messages), tuple(markers))

    def _maybe_done(self, snapshot: int, rec: _Recording) -> list[Effect]:
        if rec.open:
            return []
        del self.active[snapshot]
        self.finished.add(snapshot)
        return [LocalSnapshotDone(snapshot)]
