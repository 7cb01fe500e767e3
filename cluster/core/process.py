"""One simulated process, pure: workload state, channels, clocks, watchpoints and its snapshot machine.

The runtime (Celery workers) and the in-memory simulator drive the same ``SimulatedProcess``:
they hand it a frame, an initiate or a tick, and get back a :class:`Step` — the frames
to send, the records to store, the events to log and the watchpoints that hit. The
process never does I/O, so a step can be persisted together with its outgoing frames
before any of them is sent.

Frames are plain JSON-able dicts, the wire format of every channel
(``cluster/core/wire.py``: a message or a marker; both carry ``"red": [snapshot ids]``
when the sender had recorded Lai–Yang snapshots before sending, and the receiver
records those before it applies the frame, ``cluster/core/algorithm.py``).

Messages and markers share one sequence per channel (so a marker's seq tells which
frames were sent before it); application messages alone advance the vector clock
(markers neither carry nor advance it). ``epoch`` counts the restores of the run: a
restore renumbers the channels, so a frame of an older epoch means nothing any more and
is dropped (counted as ``stale``).

Recorded state is self-describing: a process record carries ``sent[q]`` (last seq sent
on self→q), ``received[p]`` (the contiguous prefix of seqs applied from p→self) and
``received_above[p]`` (seqs applied beyond that prefix — only a non-FIFO channel has
any), both without the frame that triggered the recording, and the vector clock. So
channel p→q must hold exactly the frames with seq ``≤ sent_p[q]`` that ``q`` had not
applied: its recorded messages plus the markers of other snapshots in it at the cut.

Watchpoints: the caller hands the process the watchpoints that apply to it
(:meth:`SimulatedProcess.watch`); a "state" watch hits when its condition turns from false to
true after a step, an "event" watch on every applied application message that
satisfies it. Hits come back in :attr:`Step.hits`; what to do about them (a snapshot)
is the caller's, which may extend the same step with an initiate's.
"""

from __future__ import annotations

import copy
import random
from dataclasses import dataclass, field
from typing import Any, NotRequired, Protocol, TypedDict

from cluster.core.algorithm import (
    ChannelClosed,
    Effect,
    LocalSnapshotDone,
    RecordChannelMessage,
    RecordLocalState,
    SendMarker,
    SnapshotProcess,
    SnapshotProcessData,
    StartRecording,
    check_algorithm,
)
from cluster.core.fifo import ChannelReceiver, ReceiverData
from cluster.core.wire import (
    CHANDY_LAMPORT,
    LAI_YANG,
    ChannelRecord,
    Event,
    EventKind,
    Frame,
    Hit,
    MarkerFrame,
    MessageFrame,
    ProcessRecord,
    Record,
)
from cluster.core.workloads import Payload, State, get_workload


class Condition(Protocol):
    """What a watchpoint watches (``cluster/core/conditions.py`` makes them from text)."""

    @property
    def kind(self) -> str: ...  # "state" or "event"

    def evaluate(
        self, state: State, message: Payload | None = None, src: str | None = None, process: str | None = None
    ) -> bool: ...


class Watch(TypedDict):
    id: int
    process: str | None  # None: every process
    condition: Condition


class ProcessData(TypedDict):
    """A process as the store keeps it (``to_dict``); dicts saved before epochs,
    non-FIFO channels and watchpoints lack the keys marked not required."""

    name: str
    incoming: list[str]
    outgoing: list[str]
    workload: str
    state: State
    epoch: NotRequired[int]
    clock: dict[str, int]
    sent: dict[str, int]
    applied: dict[str, int]
    applied_above: NotRequired[dict[str, list[int]]]
    receivers: dict[str, ReceiverData]
    snapshots: SnapshotProcessData
    counters: dict[str, int]
    watch_last: NotRequired[dict[str, bool]]


@dataclass
class Step:
    """What one input made a process do, for the caller to carry out."""

    sends: list[Frame] = field(default_factory=list)
    records: list[Record] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    hits: list[Hit] = field(default_factory=list)
    # The workload's state changed without sending anything (a job finished, a
    # philosopher started eating): still a step to store and to show.
    changed: bool = False

    def extend(self, other: Step) -> None:
        self.sends.extend(other.sends)
        self.records.extend(other.records)
        self.events.extend(other.events)
        self.hits.extend(other.hits)
        self.changed = self.changed or other.changed


class SimulatedProcess:
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
        self.epoch = 0
        self.clock: dict[str, int] = {}
        self.sent: dict[str, int] = dict.fromkeys(self.outgoing, 0)
        # What was applied from each incoming channel: the contiguous prefix, and the seqs
        # applied beyond it (a non-FIFO channel applies frames as they come).
        self.applied: dict[str, int] = dict.fromkeys(self.incoming, 0)
        self.applied_above: dict[str, set[int]] = {src: set() for src in self.incoming}
        self.receivers: dict[str, ChannelReceiver] = {src: ChannelReceiver() for src in self.incoming}
        self.snapshots = SnapshotProcess(name, self.incoming, self.outgoing)
        self.counters: dict[str, int] = {
            "messages_sent": 0,
            "messages_applied": 0,
            "markers_sent": 0,
            "markers_received": 0,
            "stale": 0,
        }
        self.watches: list[Watch] = []
        # Each state watch's value after the last step: a hit is a false → true edge.
        self.watch_last: dict[int, bool] = {}

    # -- inputs ---------------------------------------------------------------------

    def initiate(self, snapshot: int, algorithm: str = CHANDY_LAMPORT) -> Step:
        """Start a snapshot here with the given algorithm (repeating it is harmless)."""
        effects = self.snapshots.initiate(snapshot, algorithm)
        step = Step()
        if effects:
            step.events.append(self._event("initiate", snapshot=snapshot, algorithm=algorithm))
        step.extend(self._carry_out(effects))
        return step

    def receive(self, frame: Frame) -> Step:
        """Take one frame from the broker: drop it if stale, dedupe and order it, apply what is ready."""
        src = frame["src"]
        receiver = self.receivers.get(src)
        if receiver is None or frame.get("dst") != self.name:
            raise ValueError(f"{self.name} has no channel from {src!r}")
        step = Step()
        if frame.get("epoch", 0) != self.epoch:
            # Sent before a restore (or, for a newer epoch, before this process was restored
            # — impossible while restores stop the run): its seq belongs to old numbering.
            self.counters["stale"] += 1
            return step
        for ready in receiver.accept(frame["seq"], frame):
            step.extend(self._apply(ready))
        self._check_state_watches(step)
        return step

    def act(self, rng: random.Random, params: dict[str, Any]) -> Step:
        """One spontaneous step of the workload (a transfer, passing the token)."""
        step = Step()
        before = copy.deepcopy(self.state)
        for dst, payload in self.workload.step(self.state, self.outgoing, rng, params):
            step.sends.append(self._send_message(dst, payload))
            step.events.append(self._event("send", peer=dst, seq=self.sent[dst]))
        step.changed = self.state != before
        self._check_state_watches(step)
        return step

    def set_channel_modes(self, unordered: set[str] | frozenset[str]) -> Step:
        """Make the channels from ``unordered`` non-FIFO and every other incoming one FIFO.

        A channel that turns non-FIFO releases the frames it held behind a gap: they
        are applied now, and that is the step returned.
        """
        unknown = set(unordered) - set(self.incoming)
        if unknown:
            raise ValueError(f"{self.name} has no channel from {', '.join(sorted(unknown))}")
        step = Step()
        for src, receiver in self.receivers.items():
            for ready in receiver.set_fifo(src not in unordered):
                step.extend(self._apply(ready))
        self._check_state_watches(step)
        return step

    def watch(self, watches: list[Watch]) -> None:
        """Watch these watchpoints from now on (those for another process are ignored).

        The edge memory of watchpoints no longer watched is forgotten.
        """
        self.watches = [w for w in watches if w["process"] in (None, self.name)]
        kept = {w["id"] for w in self.watches if w["condition"].kind == "state"}
        self.watch_last = {wid: value for wid, value in self.watch_last.items() if wid in kept}

    # -- queries --------------------------------------------------------------------

    def channel_counters(self) -> dict[str, dict[str, int]]:
        """FIFO counters of every incoming channel, keyed by its source."""
        return {src: r.counters() for src, r in self.receivers.items()}

    # -- rules ----------------------------------------------------------------------

    def _apply(self, frame: Frame) -> Step:
        src, seq = frame["src"], frame["seq"]
        step = Step()
        # Lai–Yang: a red frame makes this process record first, before it changes anything.
        step.extend(self._carry_out(self.snapshots.on_red(src, frame.get("red", ()))))
        if frame["kind"] == "message":
            self._merge_clock(frame["clock"])
            self.workload.on_message(self.state, src, frame["payload"])
            self.counters["messages_applied"] += 1
            step.events.append(self._event("receive", peer=src, seq=seq))
            effects = self.snapshots.on_message(src, seq, frame["payload"], frame.get("red", ()))
            step.extend(self._carry_out(effects))
            self._check_event_watches(step, src, seq, frame["payload"])
        elif frame["kind"] == "marker":
            algorithm = check_algorithm(frame.get("algorithm", CHANDY_LAMPORT))
            self.counters["markers_received"] += 1
            step.events.append(self._event("marker_receive", peer=src, seq=seq, snapshot=frame["snapshot"]))
            effects = self.snapshots.on_marker(frame["snapshot"], src, seq, algorithm, self._missing_below(src, seq))
            step.extend(self._carry_out(effects))
        else:
            raise ValueError(f"unknown frame kind {frame['kind']!r}")
        self._note_applied(src, seq)
        return step

    def _note_applied(self, src: str, seq: int) -> None:
        above = self.applied_above[src]
        if seq <= self.applied[src] or seq in above:
            return  # applied twice: only a receiver without dedupe (a test's) does that
        if seq != self.applied[src] + 1:
            above.add(seq)
            return
        self.applied[src] = seq
        while self.applied[src] + 1 in above:
            self.applied[src] += 1
            above.remove(self.applied[src])

    def _missing_below(self, src: str, seq: int) -> list[int]:
        """Seqs below ``seq`` on src→self not applied yet (none on a FIFO channel)."""
        above = self.applied_above[src]
        return [s for s in range(self.applied[src] + 1, seq) if s not in above]

    def _carry_out(self, effects: list[Effect]) -> Step:
        step = Step()
        for effect in effects:
            if isinstance(effect, RecordLocalState):
                step.records.append(self._process_record(effect.snapshot))
                step.events.append(self._event("record", snapshot=effect.snapshot))
            elif isinstance(effect, SendMarker):
                step.sends.append(self._send_marker(effect.dst, effect.snapshot, effect.algorithm))
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

    def _send_message(self, dst: str, payload: dict[str, Any]) -> MessageFrame:
        self.clock[self.name] = self.clock.get(self.name, 0) + 1
        self.sent[dst] += 1
        self.counters["messages_sent"] += 1
        frame: MessageFrame = {
            "kind": "message",
            "src": self.name,
            "dst": dst,
            "seq": self.sent[dst],
            "payload": payload,
            "clock": dict(self.clock),
            "epoch": self.epoch,
        }
        self._paint(frame)
        return frame

    def _send_marker(self, dst: str, snapshot: int, algorithm: str) -> MarkerFrame:
        self.sent[dst] += 1
        self.counters["markers_sent"] += 1
        frame: MarkerFrame = {
            "kind": "marker",
            "src": self.name,
            "dst": dst,
            "seq": self.sent[dst],
            "snapshot": snapshot,
            "epoch": self.epoch,
        }
        if algorithm == LAI_YANG:
            frame["algorithm"] = LAI_YANG
        self._paint(frame)
        return frame

    def _paint(self, frame: Frame) -> None:
        """Mark a frame red for the Lai–Yang snapshots recorded here. Markers too: on a
        non-FIFO channel a marker of another snapshot can overtake, and applying it
        before recording would put a frame sent after the sender's cut inside the cut."""
        if self.snapshots.red:
            frame["red"] = list(self.snapshots.red)

    def _merge_clock(self, other: dict[str, int]) -> None:
        for name, count in other.items():
            if count > self.clock.get(name, 0):
                self.clock[name] = count
        self.clock[self.name] = self.clock.get(self.name, 0) + 1

    def _process_record(self, snapshot: int) -> ProcessRecord:
        return {
            "kind": "process",
            "snapshot": snapshot,
            "process": self.name,
            "state": copy.deepcopy(self.state),
            "sent": dict(self.sent),
            "received": dict(self.applied),
            "received_above": {src: sorted(seqs) for src, seqs in self.applied_above.items() if seqs},
            "clock": dict(self.clock),
        }

    def _channel_record(self, closed: ChannelClosed) -> ChannelRecord:
        return {
            "kind": "channel",
            "snapshot": closed.snapshot,
            "src": closed.src,
            "dst": self.name,
            "messages": [{"seq": seq, "payload": payload} for seq, payload in closed.messages],
            "markers": [{"seq": seq, "snapshot": other} for seq, other in closed.markers],
        }

    def _event(self, kind: EventKind, **fields: Any) -> Event:
        return {"kind": kind, "process": self.name, "clock": dict(self.clock), **fields}  # type: ignore[typeddict-item]

    # -- watchpoints ----------------------------------------------------------------

    def _check_state_watches(self, step: Step) -> None:
        for w in self.watches:
            if w["condition"].kind != "state":
                continue
            now = self._holds(w["condition"])
            if now and not self.watch_last.get(w["id"], False):
                detail = ", ".join(f"{key} = {value!r}" for key, value in self.state.items())
                step.hits.append({"watchpoint": w["id"], "process": self.name, "detail": detail})
            self.watch_last[w["id"]] = now

    def _check_event_watches(self, step: Step, src: str, seq: int, payload: Payload) -> None:
        for w in self.watches:
            if w["condition"].kind == "event" and self._holds(w["condition"], payload, src):
                detail = f"message seq {seq} from {src}: {payload!r}"
                step.hits.append({"watchpoint": w["id"], "process": self.name, "detail": detail})

    def _holds(self, condition: Condition, message: Payload | None = None, src: str | None = None) -> bool:
        """The condition's value here; one that cannot be evaluated (a missing key, a
        division by zero) does not hold, rather than stopping the process."""
        try:
            return bool(condition.evaluate(self.state, message, src, process=self.name))
        except Exception:
            return False

    # -- persistence ----------------------------------------------------------------

    def to_dict(self) -> ProcessData:
        """Everything but the watchpoints, which the caller sets from the run (their edge memory is kept)."""
        return {
            "name": self.name,
            "incoming": list(self.incoming),
            "outgoing": list(self.outgoing),
            "workload": self.workload_name,
            "state": self.state,
            "epoch": self.epoch,
            "clock": self.clock,
            "sent": self.sent,
            "applied": self.applied,
            "applied_above": {src: sorted(seqs) for src, seqs in self.applied_above.items() if seqs},
            "receivers": {src: r.to_dict() for src, r in self.receivers.items()},
            "snapshots": self.snapshots.to_dict(),
            "counters": self.counters,
            "watch_last": {str(wid): value for wid, value in self.watch_last.items()},
        }

    @classmethod
    def from_dict(cls, data: ProcessData) -> SimulatedProcess:
        """Load a process; dicts saved before epochs, non-FIFO channels and watchpoints load too."""
        proc = cls(data["name"], data["incoming"], data["outgoing"], data["workload"], data["state"])
        proc.epoch = data.get("epoch", 0)
        proc.clock = data["clock"]
        proc.sent = data["sent"]
        proc.applied = data["applied"]
        for src, seqs in data.get("applied_above", {}).items():
            proc.applied_above[src] = set(seqs)
        proc.receivers = {src: ChannelReceiver.from_dict(r) for src, r in data["receivers"].items()}
        proc.snapshots = SnapshotProcess.from_dict(data["snapshots"])
        proc.counters = {**proc.counters, **data["counters"]}
        proc.watch_last = {int(wid): value for wid, value in data.get("watch_last", {}).items()}
        return proc
