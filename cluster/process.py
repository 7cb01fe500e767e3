"""One simulated process, pure: workload state, channels, clocks and its snapshot machine.

The runtime (Celery workers) and the in-memory simulator drive the same ``Process``:
they hand it a frame, an initiate or a tick, and get back a :class:`Step` — the frames
to send, the records to store and the events to log. The process never does I/O, so a
step can be persisted together with its outgoing frames before any of them is sent.

Frames are plain JSON-able dicts, the wire format of every channel:

* message: ``{"kind": "message", "src", "dst", "seq", "payload", "clock"}``
* marker:  ``{"kind": "marker",  "src", "dst", "seq", "snapshot"}``

Messages and markers share one sequence per channel (so a marker can never overtake or
fall behind the messages around it); application messages alone advance the vector
clock (markers neither carry nor advance it).

Recorded state is self-describing: a process record carries ``sent[q]`` (last seq sent
on self→q), ``received[p]`` (last seq applied from p→self, the marker that triggered
the recording excluded) and the vector clock, so channel p→q must hold exactly the
frames ``received_q[p]+1 … sent_p[q]``: its recorded messages plus the markers of other
snapshots that passed while it was recorded.
"""

from __future__ import annotations

import copy
import random
from dataclasses import dataclass, field
from typing import Any

from cluster.fifo import ChannelReceiver
from cluster.workloads import State, get_workload
from snapshots.algorithm import (
    ChannelClosed,
    Effect,
    LocalSnapshotDone,
    RecordChannelMessage,
    RecordLocalState,
    SendMarker,
    SnapshotProcess,
    StartRecording,
)

Frame = dict[str, Any]
Record = dict[str, Any]
Event = dict[str, Any]


@dataclass
class Step:
    """What one input made a process do, for the caller to carry out."""

    sends: list[Frame] = field(default_factory=list)
    records: list[Record] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)

    def extend(self, other: Step) -> None:
        self.sends.extend(other.sends)
        self.records.extend(other.records)
        self.events.extend(other.events)


class Process:
    def __init__(
        self,
        name: str,
        incoming: list[str] | tuple[str, ...],
        outgoing: list[str] | tuple[str, ...],
        workload: str,
        state: State,
    ) -> None:
        self.name = name
        self.incoming = tuple(sorted(incoming))
        self.outgoing = tuple(sorted(outgoing))
        self.workload_name = workload
        self.workload = get_workload(workload)
        self.state = state
        self.clock: dict[str, int] = {}
        self.sent: dict[str, int] = dict.fromkeys(self.outgoing, 0)
        self.applied: dict[str, int] = dict.fromkeys(self.incoming, 0)
        self.receivers: dict[str, ChannelReceiver] = {src: ChannelReceiver() for src in self.incoming}
        self.snapshots = SnapshotProcess(name, self.incoming, self.outgoing)
        self.counters: dict[str, int] = {
            "messages_sent": 0,
            "messages_applied": 0,
            "markers_sent": 0,
            "markers_received": 0,
        }

    # -- inputs ---------------------------------------------------------------------

    def initiate(self, snapshot: int) -> Step:
        """Start a snapshot here (repeating it is harmless)."""
        effects = self.snapshots.initiate(snapshot)
        step = Step()
        if effects:
            step.events.append(self._event("initiate", snapshot=snapshot))
        step.extend(self._carry_out(effects))
        return step

    def receive(self, frame: Frame) -> Step:
        """Take one frame from the broker: dedupe and order it, then apply what is ready."""
        src = frame["src"]
        receiver = self.receivers.get(src)
        if receiver is None or frame.get("dst") != self.name:
            raise ValueError(f"{self.name} has no channel from {src!r}")
        step = Step()
        for ready in receiver.accept(frame["seq"], frame):
            step.extend(self._apply(ready))
        return step

    def act(self, rng: random.Random, params: dict[str, Any]) -> Step:
        """One spontaneous step of the workload (a transfer, passing the token)."""
        step = Step()
        for dst, payload in self.workload.step(self.state, self.outgoing, rng, params):
            step.sends.append(self._send_message(dst, payload))
            step.events.append(self._event("send", peer=dst, seq=self.sent[dst]))
        return step

    # -- queries --------------------------------------------------------------------

    def channel_counters(self) -> dict[str, dict[str, int]]:
        """FIFO counters of every incoming channel, keyed by its source."""
        return {src: r.counters() for src, r in self.receivers.items()}

    # -- rules ----------------------------------------------------------------------

    def _apply(self, frame: Frame) -> Step:
        src, seq = frame["src"], frame["seq"]
        step = Step()
        if frame["kind"] == "message":
            self._merge_clock(frame["clock"])
            self.workload.on_message(self.state, src, frame["payload"])
            self.counters["messages_applied"] += 1
            step.events.append(self._event("receive", peer=src, seq=seq))
            step.extend(self._carry_out(self.snapshots.on_message(src, seq, frame["payload"])))
        elif frame["kind"] == "marker":
            self.counters["markers_received"] += 1
            step.events.append(self._event("marker_receive", peer=src, seq=seq, snapshot=frame["snapshot"]))
            step.extend(self._carry_out(self.snapshots.on_marker(frame["snapshot"], src, seq)))
        else:
            raise ValueError(f"unknown frame kind {frame['kind']!r}")
        self.applied[src] = seq
        return step

    def _carry_out(self, effects: list[Effect]) -> Step:
        step = Step()
        for effect in effects:
            if isinstance(effect, RecordLocalState):
                step.records.append(self._process_record(effect.snapshot))
                step.events.append(self._event("record", snapshot=effect.snapshot))
            elif isinstance(effect, SendMarker):
                step.sends.append(self._send_marker(effect.dst, effect.snapshot))
                step.events.append(
                    self._event("marker_send", peer=effect.dst, seq=self.sent[effect.dst], snapshot=effect.snapshot)
                )
            elif isinstance(effect, StartRecording):
                step.events.append(self._event("recording", peer=effect.src, snapshot=effect.snapshot))
            elif isinstance(effect, RecordChannelMessage):
                step.events.append(
                    self._event("recorded_message", peer=effect.src, seq=effect.seq, snapshot=effect.snapshot)
                )
            elif isinstance(effect, ChannelClosed):
                step.records.append(self._channel_record(effect))
                step.events.append(self._event("channel_closed", peer=effect.src, snapshot=effect.snapshot))
            elif isinstance(effect, LocalSnapshotDone):
                step.events.append(self._event("local_done", snapshot=effect.snapshot))
        return step

    def _send_message(self, dst: str, payload: dict[str, Any]) -> Frame:
        self.clock[self.name] = self.clock.get(self.name, 0) + 1
        self.sent[dst] += 1
        self.counters["messages_sent"] += 1
        return {
            "kind": "message",
            "src": self.name,
            "dst": dst,
            "seq": self.sent[dst],
            "payload": payload,
            "clock": dict(self.clock),
        }

    def _send_marker(self, dst: str, snapshot: int) -> Frame:
        self.sent[dst] += 1
        self.counters["markers_sent"] += 1
        return {"kind": "marker", "src": self.name, "dst": dst, "seq": self.sent[dst], "snapshot": snapshot}

    def _merge_clock(self, other: dict[str, int]) -> None:
        for name, count in other.items():
            if count > self.clock.get(name, 0):
                self.clock[name] = count
        self.clock[self.name] = self.clock.get(self.name, 0) + 1

    def _process_record(self, snapshot: int) -> Record:
        return {
            "kind": "process",
            "snapshot": snapshot,
            "process": self.name,
            "state": copy.deepcopy(self.state),
            "sent": dict(self.sent),
            "received": dict(self.applied),
            "clock": dict(self.clock),
        }

    def _channel_record(self, closed: ChannelClosed) -> Record:
        return {
            "kind": "channel",
            "snapshot": closed.snapshot,
            "src": closed.src,
            "dst": self.name,
            "messages": [{"seq": seq, "payload": payload} for seq, payload in closed.messages],
            "markers": [{"seq": seq, "snapshot": other} for seq, other in closed.markers],
        }

    def _event(self, kind: str, **fields: Any) -> Event:
        return {"kind": kind, "process": self.name, "clock": dict(self.clock), **fields}

    # -- persistence ----------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "incoming": list(self.incoming),
            "outgoing": list(self.outgoing),
            "workload": self.workload_name,
            "state": self.state,
            "clock": self.clock,
            "sent": self.sent,
            "applied": self.applied,
            "receivers": {src: r.to_dict() for src, r in self.receivers.items()},
            "snapshots": self.snapshots.to_dict(),
            "counters": self.counters,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Process:
        proc = cls(data["name"], data["incoming"], data["outgoing"], data["workload"], data["state"])
        proc.clock = data["clock"]
        proc.sent = data["sent"]
        proc.applied = data["applied"]
        proc.receivers = {src: ChannelReceiver.from_dict(r) for src, r in data["receivers"].items()}
        proc.snapshots = SnapshotProcess.from_dict(data["snapshots"])
        proc.counters = data["counters"]
        return proc
