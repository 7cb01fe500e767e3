"""A deterministic, seeded, in-memory cluster: the runtime without Celery, Redis or time.

In the spirit of etcd raft's ``InteractionEnv``: the simulator owns the processes and
the channels, and a test (or a scenario script) decides exactly what happens next —
one process acts, the head frame of one channel is delivered, a snapshot starts — so
any interleaving the real cluster could produce can be written down and replayed.

It drives :class:`cluster.core.process.SimulatedProcess` exactly as the Celery runtime does: it hands
a process a tick, a frame or an initiate and carries out the returned
:class:`~cluster.core.process.Step` — frames go to the back of their channel's queue, records
are filed under their snapshot, events go to the log.

Every channel is one ``deque``: the broker's FIFO queue for that channel. Faults an
at-least-once broker can cause are injected on purpose (:meth:`Simulator.duplicate`,
:meth:`Simulator.swap`) so tests can show that ``cluster/core/fifo.py`` restores exactly-once
FIFO order, and — with ``fifo=False`` — what goes wrong without it.

Channel faults, as a run has them (``{"reorder": bool, "loss": float}``; ``delay_ms``
means nothing where there is no clock), are set per channel (:meth:`Simulator.set_faults`):

* ``reorder`` makes the channel non-FIFO: its receiver applies frames as they come
  (``ChannelReceiver(fifo=False)``), and a random move delivers any frame in the queue,
  not just the head (:meth:`Simulator.deliver` takes an index);
* ``loss`` is the chance that a random delivery loses its frame instead
  (:meth:`Simulator.lose`); the sender sends it again later (:meth:`Simulator.retransmit`),
  as the runtime's retransmission does, and ``stabilize`` retransmits what is still lost.

:meth:`Simulator.restore` puts the run back into a complete snapshot's state, as the
server does (``cluster/core/restore.py``): frames still on the way belong to the old epoch
and are dropped on arrival.

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

from cluster.core.algorithm import check_algorithm
from cluster.core.fifo import ChannelReceiver
from cluster.core.process import SimulatedProcess, Step, Watch
from cluster.core.restore import restore_processes
from cluster.core.topology import validate
from cluster.core.verdict import compute_verdict
from cluster.core.wire import (
    CHANDY_LAMPORT,
    ChannelRecord,
    Event,
    Frame,
    Hit,
    ProcessRecord,
    channel_id,
    recorded_channel,
    recorded_process,
    split_channel_id,
)
from cluster.core.workloads import get_workload, payload_value, state_value

Channel = tuple[str, str]
Action = list[Any]

# In a random run, the chance per move that a sender retransmits the frames it lost on
# one channel (while any are lost): a lost frame comes back after a few dozen moves.
RETRANSMIT_RATE = 0.05


class RawReceiver(ChannelReceiver):
    """Applies every frame the moment the broker hands it over: no dedupe, no reordering.

    This is what a process would do without ``cluster/core/fifo.py``; it exists so tests can
    show which faults the FIFO layer is there to absorb.
    """

    def accept(self, seq: int, frame: Any) -> list[Any]:
        return [frame]


@dataclass
class SnapshotLog:
    """Every record the processes produced for one snapshot, in the order they came."""

    id: int
    initiator: str
    algorithm: str = CHANDY_LAMPORT
    process_records: list[ProcessRecord] = field(default_factory=list)
    channel_records: list[ChannelRecord] = field(default_factory=list)


class Simulator:
    def __init__(
        self,
        topology: dict[str, Any],
        seed: int = 0,
        *,
        params: dict[str, Any] | None = None,
        fifo: bool = True,
        faults: dict[str, dict[str, Any]] | None = None,
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
        self.processes: dict[str, SimulatedProcess] = {}
        for proc in spec["processes"]:
            name = proc["name"]
            value = proc.get(self.workload.value_key, 0)
            state = self.workload.initial_state(value, name, sorted(outgoing[name]))
            self.processes[name] = SimulatedProcess(name, incoming[name], outgoing[name], spec["workload"], state)
            if not fifo:
                self.processes[name].receivers = {src: RawReceiver() for src in incoming[name]}
        self.expected_total = sum(state_value(self.workload, p.state) for p in self.processes.values())
        # What each process held of the conserved quantity when the current epoch began
        # (counting messages it had to send again as still its own): the ground truth's start.
        self.initial: dict[str, int] = {n: state_value(self.workload, p.state) for n, p in self.processes.items()}
        self.epoch = 0
        self.channels: dict[Channel, deque[Frame]] = {c: deque() for c in self.channel_list}
        # Every frame sent in the current epoch, per channel (a retransmission is not a
        # new send): the ground truth a test checks records against.
        self.sent_log: dict[Channel, list[Frame]] = {c: [] for c in self.channel_list}
        self.faults: dict[Channel, dict[str, Any]] = {c: {} for c in self.channel_list}
        # Frames lost on each channel that their sender has not sent again yet.
        self.lost: dict[Channel, list[Frame]] = {c: [] for c in self.channel_list}
        self.losses = 0  # frames lost so far, markers included
        self.snapshots: dict[int, SnapshotLog] = {}
        self.events: list[Event] = []
        self.hits: list[Hit] = []
        self.watches: list[Watch] = []
        self.watch_algorithm: str | None = None
        self.time = 0
        for key, channel_faults in (faults or {}).items():
            src, dst = split_channel_id(key)
            self.set_faults(src, dst, **channel_faults)

    # -- moves --------------------------------------------------------------------------

    def act(self, process: str) -> Step:
        """One spontaneous workload step of ``process`` (a transfer, passing the token)."""
        self.time += 1
        return self._carry_out(self._process(process).act(self.rng, self.params))

    def deliver(self, src: str, dst: str, index: int = 0) -> Step:
        """Hand frame ``index`` of channel src→dst (the head by default) to ``dst``.

        Only the broker's faults or a non-FIFO channel deliver anything but the head.
        """
        queue = self._queue(src, dst)
        if not queue:
            raise ValueError(f"channel {channel_id(src, dst)} is empty")
        self.time += 1
        frame = queue[index]
        del queue[index]
        return self._carry_out(self.processes[dst].receive(frame))

    def initiate(self, process: str, snapshot_id: int | None = None, algorithm: str = CHANDY_LAMPORT) -> int:
        """Start a snapshot at ``process``; returns its id (the next free one if not given).

        Initiating a known id at another process is allowed: both algorithms let any
        process start recording spontaneously, the first marker or initiate wins.
        """
        initiator = self._process(process)
        check_algorithm(algorithm)
        if snapshot_id is None:
            snapshot_id = max(self.snapshots, default=0) + 1
        self.snapshots.setdefault(snapshot_id, SnapshotLog(snapshot_id, process, algorithm))
        self.time += 1
        self._carry_out(initiator.initiate(snapshot_id, algorithm))
        return snapshot_id

    def stabilize(self) -> int:
        """Deliver until every channel is empty and nothing is lost, with no new workload steps.

        Lost frames are retransmitted first; channels are served round-robin in topology
        order, head first, and nothing more is lost. It always ends: receiving a message
        sends nothing, and each process sends each snapshot's markers once. Returns the
        number of deliveries.
        """
        delivered = 0
        while True:
            for src, dst in [c for c in self.channel_list if self.lost[c]]:
                self.retransmit(src, dst)
            busy = self._busy()
            if not busy:
                return delivered
            for src, dst in busy:
                self.deliver(src, dst)
                delivered += 1

    def restore(self, snapshot_id: int) -> int:
        """Put every process back into a complete snapshot's state; returns the new epoch.

        The recorded channel messages are sent again, renumbered; frames still queued
        or lost from before stay where they are and are dropped as stale on arrival.
        """
        if self.snapshot_status(snapshot_id) != "complete":
            raise ValueError(f"snapshot {snapshot_id} is not complete")
        log = self.snapshots[snapshot_id]
        self.epoch += 1
        restored = restore_processes(
            self.names,
            self.channel_list,
            self.topology["workload"],
            self.epoch,
            copy.deepcopy(log.process_records),
            copy.deepcopy(log.channel_records),
            {name: copy.deepcopy(p.to_dict()) for name, p in self.processes.items()},
        )
        self.time += 1
        self.sent_log = {c: [] for c in self.channel_list}
        for name, data in restored.items():
            outbox = data["outbox"]
            self.processes[name] = SimulatedProcess.from_dict(data)
            self.processes[name].watch(self.watches)
            self.initial[name] = state_value(self.workload, self.processes[name].state) + sum(
                payload_value(self.workload, f["payload"]) for f in outbox
            )
            self._carry_out(Step(sends=[*outbox]))
        return self.epoch

    def watch(self, watches: list[Watch], algorithm: str | None = None) -> None:
        """Watch these watchpoints; with ``algorithm``, every hit starts a snapshot of it
        at the process that hit, in the same step (as the runtime does)."""
        self.watches = list(watches)
        self.watch_algorithm = None if algorithm is None else check_algorithm(algorithm)
        for proc in self.processes.values():
            proc.watch(self.watches)

    def set_faults(self, src: str, dst: str, *, reorder: bool = False, loss: float = 0.0, delay_ms: int = 0) -> None:
        """Give channel src→dst these faults (``delay_ms`` is accepted and means nothing here)."""
        self._queue(src, dst)
        if not 0 <= loss < 1:
            raise ValueError(f"loss must be in [0, 1), not {loss}")
        self.faults[(src, dst)] = {"reorder": bool(reorder), "loss": float(loss)}
        unordered = {s for (s, d), f in self.faults.items() if d == dst and f.get("reorder")}
        self._carry_out(self.processes[dst].set_channel_modes(unordered))

    def run_random(
        self,
        steps: int,
        rng: random.Random | None = None,
        *,
        snapshot_rate: float = 0.0,
        max_snapshots: int | None = None,
        fault_rate: float = 0.0,
        algorithm: str = CHANDY_LAMPORT,
    ) -> None:
        """``steps`` random moves: an act or a delivery, each equally likely.

        With ``snapshot_rate`` a move may instead start a new snapshot of ``algorithm``
        at a random process (at most ``max_snapshots``); with ``fault_rate`` it may
        instead duplicate or reorder a frame in a random non-empty channel. A delivery
        on a channel with faults follows them (any frame if ``reorder``; lost with the
        chance ``loss``), and while frames are lost a move may retransmit them.
        """
        rng = self.rng if rng is None else rng
        started = 0
        for _ in range(steps):
            lost = [c for c in self.channel_list if self.lost[c]]
            if lost and rng.random() < RETRANSMIT_RATE:
                self.retransmit(*rng.choice(lost))
                continue
            roll = rng.random()
            if roll < snapshot_rate and (max_snapshots is None or started < max_snapshots):
                self.initiate(rng.choice(self.names), algorithm=algorithm)
                started += 1
                continue
            if roll < snapshot_rate + fault_rate and self._random_fault(rng):
                continue
            busy = self._busy()
            if busy and rng.random() < 0.5:
                self._random_delivery(rng, *rng.choice(busy))
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

    # -- channel faults ---------------------------------------------------------------

    def lose(self, src: str, dst: str, index: int = 0) -> None:
        """Lose frame ``index`` of src→dst: it never arrives until its sender sends it again."""
        queue = self._queue(src, dst)
        frame = queue[index]
        del queue[index]
        self.lost[(src, dst)].append(frame)
        self.losses += 1

    def retransmit(self, src: str, dst: str) -> None:
        """The sender of src→dst sends every frame it lost on it again, in seq order, at the back."""
        frames = sorted(self.lost[(src, dst)], key=lambda f: f["seq"])
        self.lost[(src, dst)] = []
        self._queue(src, dst).extend(frames)

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
        elif verb == "faults":
            self.set_faults(args[0], args[1], **args[2])
        elif verb == "lose":
            self.lose(*args)
        elif verb == "retransmit":
            self.retransmit(*args)
        elif verb == "restore":
            self.restore(*args)
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

        Counted from the send log and what each receiver has applied, so a duplicated
        frame in a queue is not counted twice, and a lost one is counted.
        """
        held = sum(state_value(self.workload, p.state) for p in self.processes.values())
        for (src, dst), frames in self.sent_log.items():
            applied, above = self.processes[dst].applied[src], self.processes[dst].applied_above[src]
            held += sum(
                payload_value(self.workload, f["payload"])
                for f in frames
                if f["kind"] == "message" and f["seq"] > applied and f["seq"] not in above
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
            recorded_process(r) for r in sorted(log.process_records, key=lambda r: process_order[r["process"]])
        ]
        channels = [
            recorded_channel(r) for r in sorted(log.channel_records, key=lambda r: channel_order[(r["src"], r["dst"])])
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
            "algorithm": log.algorithm,
            "status": status,
            "processes": copy.deepcopy(processes),
            "channels": copy.deepcopy(channels),
            "verdict": verdict,
        }

    # -- plumbing -------------------------------------------------------------------------

    def _process(self, name: str) -> SimulatedProcess:
        try:
            return self.processes[name]
        except KeyError:
            raise ValueError(f"no process {name!r}") from None

    def _queue(self, src: str, dst: str) -> deque[Frame]:
        try:
            return self.channels[(src, dst)]
        except KeyError:
            raise ValueError(f"no channel {channel_id(src, dst)}") from None

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

    def _random_delivery(self, rng: random.Random, src: str, dst: str) -> None:
        """Deliver on src→dst as its faults have it: any frame if it reorders, maybe lost."""
        faults = self.faults[(src, dst)]
        index = rng.randrange(len(self.channels[(src, dst)])) if faults.get("reorder") else 0
        if faults.get("loss") and rng.random() < faults["loss"]:
            self.lose(src, dst, index)
        else:
            self.deliver(src, dst, index)

    def _carry_out(self, step: Step) -> Step:
        if self.watch_algorithm is not None:
            for hit in list(step.hits):
                snapshot_id = max(self.snapshots, default=0) + 1
                self.snapshots[snapshot_id] = SnapshotLog(snapshot_id, hit["process"], self.watch_algorithm)
                step.extend(self.processes[hit["process"]].initiate(snapshot_id, self.watch_algorithm))
        self.hits.extend({**hit, "t": self.time} for hit in step.hits)
        for frame in step.sends:
            channel = (frame["src"], frame["dst"])
            self.channels[channel].append(frame)
            self.sent_log[channel].append(copy.deepcopy(frame))
        for record in step.records:
            log = self.snapshots[record["snapshot"]]
            if record["kind"] == "process":
                log.process_records.append(record)
            else:
                log.channel_records.append(record)
        self.events.extend({**event, "t": self.time} for event in step.events)
        return step
