"""A deterministic, seeded, in-memory cluster: the runtime without Celery, Redis or time.

In the spirit of etcd raft's ``InteractionEnv``: the simulator owns the processes and
the channels, and a test (or a scenario script) decides exactly what happens next —
one process acts, the head frame of one channel is delivered, a snapshot starts — so
any interleaving the real cluster could produce can be written down and replayed.

It drives :class:`cluster.process.Process` exactly as the Celery runtime does: it hands
a process a tick, a frame or an initiate and carries out the returned
:class:`~cluster.process.Step` — frames go to the back of their channel's queue, records
are filed under their snapshot, events go to the log.

Every channel is one ``deque``: the broker's FIFO queue for that channel. Faults an
at-least-once broker can cause are injected on purpose (:meth:`Simulator.duplicate`,
:meth:`Simulator.swap`) so tests can show that ``cluster/fifo.py`` restores exactly-once
FIFO order, and — with ``fifo=False`` — what goes wrong without it.

Determinism: all randomness comes from ``random.Random(seed)`` (or an rng the caller
passes); iteration follows the topology's order. Same seed, same script, same output.
Stdlib only: no Django, no Celery.
"""

from __future__ import annotations

import copy
import random
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from cluster.fifo import ChannelReceiver
from cluster.process import Event, Frame, Process, Record, Step
from cluster.workloads import get_workload, payload_value, state_value
from snapshots.topology import validate
from snapshots.verdict import compute_verdict

Channel = tuple[str, str]
Action = list[Any]


class RawReceiver(ChannelReceiver):
    """Applies every frame the moment the broker hands it over: no dedupe, no reordering.

    This is what a process would do without ``cluster/fifo.py``; it exists so tests can
    show which faults the FIFO layer is there to absorb.
    """

    def accept(self, seq: int, frame: Any) -> list[Any]:
        return [frame]


@dataclass
class SnapshotLog:
    """Every record the processes produced for one snapshot, in the order they came."""

    id: int
    initiator: str
    process_records: list[Record] = field(default_factory=list)
    channel_records: list[Record] = field(default_factory=list)


class Simulator:
    def __init__(
        self,
        topology: dict[str, Any],
        seed: int = 0,
        *,
        params: dict[str, Any] | None = None,
        fifo: bool = True,
    ) -> None:
        spec = validate(topology)
        self.topology = spec
        self.workload = get_workload(spec["workload"])
        self.params = dict(params or {})
        self.rng = random.Random(seed)
        self.names: list[str] = [p["name"] for p in spec["processes"]]
        self.channel_list: list[Channel] = [(src, dst) for src, dst in spec["channels"]]
        incoming: dict[str, list[str]] = {name: [] for name in self.names}
        outgoing: dict[str, list[str]] = {name: [] for name in self.names}
        for src, dst in self.channel_list:
            outgoing[src].append(dst)
            incoming[dst].append(src)
        self.processes: dict[str, Process] = {}
        for proc in spec["processes"]:
            name = proc["name"]
            # The topology's value key ("balance", "tokens") is the workload's state unit.
            state = self.workload.initial_state(proc.get(self.workload.unit, 0))
            self.processes[name] = Process(name, incoming[name], outgoing[name], spec["workload"], state)
            if not fifo:
                self.processes[name].receivers = {src: RawReceiver() for src in incoming[name]}
        self.expected_total = sum(state_value(self.workload, p.state) for p in self.processes.values())
        self.channels: dict[Channel, deque[Frame]] = {c: deque() for c in self.channel_list}
        # Every frame ever sent, per channel: the ground truth a test checks records against.
        self.sent_log: dict[Channel, list[Frame]] = {c: [] for c in self.channel_list}
        self.snapshots: dict[int, SnapshotLog] = {}
        self.events: list[Event] = []
        self.time = 0

    # -- moves --------------------------------------------------------------------------

    def act(self, process: str) -> Step:
        """One spontaneous workload step of ``process`` (a transfer, passing the token)."""
        self.time += 1
        return self._carry_out(self._process(process).act(self.rng, self.params))

    def deliver(self, src: str, dst: str) -> Step:
        """Hand the head frame of channel src→dst to ``dst``."""
        queue = self._queue(src, dst)
        if not queue:
            raise ValueError(f"channel {src}→{dst} is empty")
        self.time += 1
        return self._carry_out(self.processes[dst].receive(queue.popleft()))

    def initiate(self, process: str, snapshot_id: int | None = None) -> int:
        """Start a snapshot at ``process``; returns its id (the next free one if not given).

        Initiating a known id at another process is allowed: Chandy–Lamport lets any
        process start recording spontaneously, the first marker or initiate wins.
        """
        initiator = self._process(process)
        if snapshot_id is None:
            snapshot_id = max(self.snapshots, default=0) + 1
        self.snapshots.setdefault(snapshot_id, SnapshotLog(snapshot_id, process))
        self.time += 1
        self._carry_out(initiator.initiate(snapshot_id))
        return snapshot_id

    def stabilize(self) -> int:
        """Deliver until every channel is empty, with no new workload steps.

        Channels are served round-robin in topology order. It always ends: receiving
        a message sends nothing, and each process sends each snapshot's markers once.
        Returns the number of deliveries.
        """
        delivered = 0
        while busy := self._busy():
            for src, dst in busy:
                self.deliver(src, dst)
                delivered += 1
        return delivered

    def run_random(
        self,
        steps: int,
        rng: random.Random | None = None,
        *,
        snapshot_rate: float = 0.0,
        max_snapshots: int | None = None,
        fault_rate: float = 0.0,
    ) -> None:
        """``steps`` random moves: an act or a delivery, each equally likely.

        With ``snapshot_rate`` a move may instead start a new snapshot at a random
        process (at most ``max_snapshots``); with ``fault_rate`` it may instead
        duplicate or reorder a frame in a random non-empty channel.
        """
        rng = self.rng if rng is None else rng
        started = 0
        for _ in range(steps):
            roll = rng.random()
            if roll < snapshot_rate and (max_snapshots is None or started < max_snapshots):
                self.initiate(rng.choice(self.names))
                started += 1
                continue
            if roll < snapshot_rate + fault_rate and self._random_fault(rng):
                continue
            busy = self._busy()
            if busy and rng.random() < 0.5:
                self.deliver(*rng.choice(busy))
            else:
                self.act(rng.choice(self.names))

    # -- faults an at-least-once broker can cause ----------------------------------------

    def duplicate(self, src: str, dst: str, index: int = 0, to: int | None = None) -> None:
        """Deliver frame ``index`` of src→dst twice: a copy is put at ``to`` (default: the back)."""
        queue = self._queue(src, dst)
        frame = copy.deepcopy(queue[index])
        queue.insert(len(queue) if to is None else to, frame)

    def swap(self, src: str, dst: str, i: int = 0, j: int = 1) -> None:
        """Exchange frames ``i`` and ``j`` of src→dst, as a broker restoring unacked frames may."""
        queue = self._queue(src, dst)
        queue[i], queue[j] = queue[j], queue[i]

    # -- scripts --------------------------------------------------------------------------

    def run_script(self, script: list[Action]) -> None:
        """Carry out a scenario script: a list of ``[verb, *args]`` actions."""
        for action in script:
            self.apply(action)

    def apply(self, action: Action) -> None:
        verb, *args = action
        if verb == "act":
            self.act(*args)
        elif verb == "deliver":
            self.deliver(*args)
        elif verb == "initiate":
            self.initiate(*args)
        elif verb == "stabilize":
            self.stabilize()
        elif verb == "run_random":
            self.run_random(args[0], **(args[1] if len(args) > 1 else {}))
        elif verb == "duplicate":
            self.duplicate(*args)
        elif verb == "swap":
            self.swap(*args)
        else:
            raise ValueError(f"unknown action {verb!r} in {action!r}")

    # -- queries --------------------------------------------------------------------------

    def in_flight(self, src: str, dst: str) -> list[Frame]:
        """The frames queued on src→dst, head first."""
        return list(self._queue(src, dst))

    def live_total(self) -> int:
        """The conserved quantity right now: in process states plus in unapplied messages.

        Counted from the send log and each receiver's last applied seq, so a duplicated
        frame in a queue is not counted twice.
        """
        held = sum(state_value(self.workload, p.state) for p in self.processes.values())
        for (src, dst), frames in self.sent_log.items():
            applied = self.processes[dst].applied[src]
            held += sum(
                payload_value(self.workload, f["payload"])
                for f in frames
                if f["kind"] == "message" and f["seq"] > applied
            )
        return held

    def channel_counters(self) -> dict[Channel, dict[str, int]]:
        """FIFO counters (duplicates, gaps, reorders, held) of every channel."""
        return {(src, dst): self.processes[dst].receivers[src].counters() for src, dst in self.channel_list}

    def snapshot_status(self, snapshot_id: int) -> str:
        log = self.snapshots[snapshot_id]
        recorded = {r["process"] for r in log.process_records}
        closed = {(r["src"], r["dst"]) for r in log.channel_records}
        if recorded >= set(self.names) and closed >= set(self.channel_list):
            return "complete"
        return "running"

    def snapshot_export(self, snapshot_id: int) -> dict[str, Any]:
        """The snapshot in the server's export shape, records in topology order.

        Like the server, only a finished snapshot carries a verdict.
        """
        log = self.snapshots[snapshot_id]
        process_order = {name: i for i, name in enumerate(self.names)}
        channel_order = {c: i for i, c in enumerate(self.channel_list)}
        processes = [
            {k: r[k] for k in ("process", "state", "sent", "received", "clock")}
            for r in sorted(log.process_records, key=lambda r: process_order[r["process"]])
        ]
        channels = [
            {k: r[k] for k in ("src", "dst", "messages", "markers")}
            for r in sorted(log.channel_records, key=lambda r: channel_order[(r["src"], r["dst"])])
        ]
        status = self.snapshot_status(snapshot_id)
        verdict = None
        if status == "complete":
            verdict = compute_verdict(
                self.names,
                self.channel_list,
                self.workload.unit,
                self.workload.payload_unit,
                self.expected_total,
                processes,
                channels,
            )
        return {
            "id": snapshot_id,
            "initiator": log.initiator,
            "status": status,
            "processes": copy.deepcopy(processes),
            "channels": copy.deepcopy(channels),
            "verdict": verdict,
        }

    # -- plumbing -------------------------------------------------------------------------

    def _process(self, name: str) -> Process:
        try:
            return self.processes[name]
        except KeyError:
            raise ValueError(f"no process {name!r}") from None

    def _queue(self, src: str, dst: str) -> deque[Frame]:
        try:
            return self.channels[(src, dst)]
        except KeyError:
            raise ValueError(f"no channel {src}→{dst}") from None

    def _busy(self) -> list[Channel]:
        return [c for c in self.channel_list if self.channels[c]]

    def _random_fault(self, rng: random.Random) -> bool:
        busy = self._busy()
        if not busy:
            return False
        src, dst = rng.choice(busy)
        queue = self.channels[(src, dst)]
        if len(queue) >= 2 and rng.random() < 0.5:
            i, j = rng.sample(range(len(queue)), 2)
            self.swap(src, dst, i, j)
        else:
            self.duplicate(src, dst, rng.randrange(len(queue)), rng.randrange(len(queue) + 1))
        return True

    def _carry_out(self, step: Step) -> Step:
        for frame in step.sends:
            channel = (frame["src"], frame["dst"])
            self.channels[channel].append(frame)
            self.sent_log[channel].append(copy.deepcopy(frame))
        for record in step.records:
            log = self.snapshots[record["snapshot"]]
            (log.process_records if record["kind"] == "process" else log.channel_records).append(record)
        self.events.extend({**event, "t": self.time} for event in step.events)
        return step
