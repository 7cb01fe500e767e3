"""The Chandy–Lamport snapshot algorithm, for one process, as a pure state machine.

Theory of operation
-------------------
Assumptions (Chandy & Lamport, 1985): the graph of processes and directed channels is
strongly connected; channels are reliable and FIFO; every message is delivered after a
finite delay. Cutline's transport (``cluster/fifo.py``) rebuilds exactly these channels
on top of an at-least-once broker, so this file can assume them.

One :class:`SnapshotProcess` holds, for one process, the state of every snapshot it
takes part in. It is driven by three inputs and answers each with a list of effects
that the caller carries out *in order*:

* ``initiate(s)``          — this process starts snapshot ``s`` (the initiator's rule);
* ``on_marker(s, src)``    — the marker of snapshot ``s`` arrived on channel src→self;
* ``on_message(src, ...)`` — an application message arrived on channel src→self.

Marker receiving rule: on the first marker of ``s`` (or on ``initiate``) the process
records its local state (:class:`RecordLocalState`) *before* it sends anything else,
then sends a marker on every outgoing channel (:class:`SendMarker`), records the
channel the marker came on as empty, and starts recording every other incoming channel
(:class:`StartRecording`). Every application message that arrives on a channel being
recorded is part of that channel's state (:class:`RecordChannelMessage`). A later
marker of ``s`` on a channel closes it (:class:`ChannelClosed`). When every incoming
channel is closed the process's part is done (:class:`LocalSnapshotDone`); a snapshot
ends when every process's part is done, i.e. a marker has crossed every channel.

Several snapshots may run at once: each has its own id and its own entry here, and
nothing one does touches another. A snapshot id that is already finished here is
remembered, so a marker delivered twice never starts it again.

The caller owns the application: it applies messages to the workload state, keeps the
sequence numbers and clocks, and captures them when told to record. This file never
sends, sleeps, reads the clock or draws random numbers; it imports only the stdlib.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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


@dataclass(frozen=True)
class StartRecording:
    """Messages arriving on src→self belong to the channel's recorded state from now."""

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
    """The marker of ``snapshot`` arrived on src→self: the channel's state is final.

    ``messages`` are the recorded application messages as ``(seq, payload)``, in
    arrival (= FIFO) order; ``markers`` are the ``(seq, snapshot)`` of other
    snapshots' markers that passed on the channel while it was recorded, so that the
    recorded sequence numbers account for every frame in the channel.
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
    """What one process holds for one snapshot while its channels are open."""

    open: dict[str, list[tuple[int, Any]]] = field(default_factory=dict)
    markers: dict[str, list[tuple[int, int]]] = field(default_factory=dict)


class ProtocolError(ValueError):
    """An input that cannot happen on the channels this process has."""


class SnapshotProcess:
    """The snapshot side of one process: a pure Chandy–Lamport state machine."""

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

    # -- inputs ---------------------------------------------------------------------

    def initiate(self, snapshot: int) -> list[Effect]:
        """Start ``snapshot`` here. Repeating it (or initiating a known one) does nothing."""
        if self._knows(snapshot):
            return []
        return self._record_and_flood(snapshot, came_on=None)

    def on_marker(self, snapshot: int, src: str, seq: int = 0) -> list[Effect]:
        """The marker of ``snapshot`` arrived on src→self (``seq`` is its frame number)."""
        self._check_incoming(src)
        for other, other_rec in self.active.items():
            if other != snapshot and src in other_rec.open:
                other_rec.markers[src].append((seq, snapshot))
        if snapshot in self.finished:
            return []
        rec = self.active.get(snapshot)
        if rec is None:
            return self._record_and_flood(snapshot, came_on=src)
        if src not in rec.open:
            # A second marker of the same snapshot on one channel: a duplicate frame.
            raise ProtocolError(f"{self.name}: channel {src}→{self.name} already closed for snapshot {snapshot}")
        effects: list[Effect] = [self._close(snapshot, rec, src)]
        effects.extend(self._maybe_done(snapshot, rec))
        return effects

    def on_message(self, src: str, seq: int, payload: Any) -> list[Effect]:
        """An application message arrived on src→self; record it where src is open."""
        self._check_incoming(src)
        effects: list[Effect] = []
        for snapshot, rec in self.active.items():
            if src in rec.open:
                rec.open[src].append((seq, payload))
                effects.append(RecordChannelMessage(snapshot, src, seq, payload))
        return effects

    # -- queries --------------------------------------------------------------------

    def recording(self, snapshot: int) -> tuple[str, ...]:
        """The incoming channels (by source) still being recorded for ``snapshot``."""
        rec = self.active.get(snapshot)
        return tuple(sorted(rec.open)) if rec else ()

    # -- persistence ----------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "incoming": list(self.incoming),
            "outgoing": list(self.outgoing),
            "active": {
                str(s): {
                    "open": {src: [list(m) for m in msgs] for src, msgs in rec.open.items()},
                    "markers": {src: [list(m) for m in ms] for src, ms in rec.markers.items()},
                }
                for s, rec in self.active.items()
            },
            "finished": sorted(self.finished),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SnapshotProcess:
        proc = cls(data["name"], data["incoming"], data["outgoing"])
        for s, rec in data["active"].items():
            proc.active[int(s)] = _Recording(
                open={src: [(m[0], m[1]) for m in msgs] for src, msgs in rec["open"].items()},
                markers={src: [(m[0], m[1]) for m in ms] for src, ms in rec["markers"].items()},
            )
        proc.finished = set(data["finished"])
        return proc

    # -- rules ----------------------------------------------------------------------

    def _knows(self, snapshot: int) -> bool:
        return snapshot in self.active or snapshot in self.finished

    def _check_incoming(self, src: str) -> None:
        if src not in self.incoming:
            raise ProtocolError(f"{self.name} has no channel from {src}")

    def _record_and_flood(self, snapshot: int, came_on: str | None) -> list[Effect]:
        rec = _Recording()
        self.active[snapshot] = rec
        effects: list[Effect] = [RecordLocalState(snapshot)]
        effects.extend(SendMarker(snapshot, dst) for dst in self.outgoing)
        for src in self.incoming:
            rec.open[src] = []
            rec.markers[src] = []
            if src == came_on:
                effects.append(self._close(snapshot, rec, src))
            else:
                effects.append(StartRecording(snapshot, src))
        effects.extend(self._maybe_done(snapshot, rec))
        return effects

    @staticmethod
    def _close(snapshot: int, rec: _Recording, src: str) -> ChannelClosed:
        messages = tuple(rec.open.pop(src))
        markers = tuple(rec.markers.pop(src))
        return ChannelClosed(snapshot, src, messages, markers)

    def _maybe_done(self, snapshot: int, rec: _Recording) -> list[Effect]:
        if rec.open:
            return []
        del self.active[snapshot]
        self.finished.add(snapshot)
        return [LocalSnapshotDone(snapshot)]
