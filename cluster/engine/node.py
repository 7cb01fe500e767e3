"""The processes one worker serves: load, step, persist, send.

A :class:`Node` lives inside one Celery worker and serves its shard of every active run:
process ``i`` (in the run's order) of a run belongs to shard ``i mod shards``. The node
is driven from the worker's event loop only — frames and initiates by tasks
(``cluster/engine/tasks.py``), workload steps and run changes by loop timers
(``cluster/engine/worker.py``) — so it needs no locks.

Every input follows the same path: the pure ``SimulatedProcess`` computes a ``Step``; the step
(new state, outbox, records, events) is committed to the store atomically; then its
frames are published. If the worker dies after the commit and before the ack, the
broker redelivers the input: the process sees a duplicate seq and drops it, and the
outbox — resent whenever a process is loaded — restores frames that never left.

Frames pass the channel faults (``cluster/core/links.py``) on their way out. A watchpoint
that a step makes true (``Step.hits``) becomes a snapshot in that same step: the node
asks ``on_watchpoint`` for a snapshot id and the process initiates it before the step
is committed, so the recorded state is the one the condition saw.

A run being restored (status ``restoring`` in its meta, see ``snapshots/recovery.py``)
is let go of: its processes leave memory, and the node says so in the store; when the
run comes back it is attached again from the restored state, in its new epoch.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from cluster.core.conditions import ConditionError, parse
from cluster.core.flow import full_channels
from cluster.core.links import Links
from cluster.core.process import Condition, SimulatedProcess, Step, Watch
from cluster.core.wire import CHANDY_LAMPORT, Frame, channel_id, split_channel_id
from cluster.engine.store import StepCommit, Store
from cluster.engine.transport import Transport, queue_name

log = logging.getLogger("cutline.runtime")

# After a stall (a long task, a paused VM) do not fire the whole backlog of workload
# steps at once: at most this many seconds' worth (and at least one round).
MAX_BURST_SECONDS = 0.1


class StepListener(Protocol):
    """Told of every committed step (the live dashboard's publisher). It must be cheap:
    it runs once per message, so it should only accumulate, and send on ``flush``."""

    def on_step(self, run_id: int, process: SimulatedProcess, step: Step) -> None: ...

    def flush(self) -> None: ...


def in_shard(index: int, shard: int, shards: int) -> bool:
    return index % shards == shard


# (source, last seq applied in order, seqs beyond it now in hand): see ``StepCommit.acks``.
Ack = tuple[str, int, tuple[int, ...]]


class WatchpointStarter(Protocol):
    """Creates the snapshot a watchpoint hit triggers; returns its id, or None to skip it."""

    def __call__(self, run_id: int, watchpoint: int, process: str, detail: str) -> int | None: ...


@dataclass(frozen=True)
class ServedWatchpoint:
    """A watchpoint of a served run: its condition, compiled, and what a hit of it starts."""

    id: int
    process: str | None
    condition: Condition
    once: bool
    cooldown_s: float
    algorithm: str

    def as_process_watch(self) -> Watch:
        return {"id": self.id, "process": self.process, "condition": self.condition}


def compile_watches(specs: list[dict[str, Any]], workload: str) -> dict[int, ServedWatchpoint]:
    """The run meta's watchpoints, parsed; one that does not parse (it was checked when it
    was defined, so only a newer syntax could) is left out with a warning."""
    watches = {}
    for spec in specs:
        try:
            condition = parse(spec["condition"], workload)
        except ConditionError as exc:
            log.warning("watchpoint %s ignored: %s", spec.get("id"), exc)
            continue
        watches[spec["id"]] = ServedWatchpoint(
            spec["id"],
            spec.get("process") or None,
            condition,
            spec.get("mode", "once") == "once",
            float(spec.get("cooldown_s", 5.0)),
            spec.get("algorithm", CHANDY_LAMPORT),
        )
    return watches


@dataclass
class ServedRun:
    """One run as this node serves it: settings from the run's meta, and its processes."""

    id: int
    workload: str
    rate: float
    params: dict[str, Any]
    status: str
    mine: list[str]
    epoch: int = 0
    faults: dict[str, Any] = field(default_factory=dict)
    watch_specs: list[dict[str, Any]] = field(default_factory=list)
    watches: dict[int, ServedWatchpoint] = field(default_factory=dict)
    # Channels ("p→q") lossy now (→ None) or until recently (→ the sender's last seq when
    # the loss was switched off: what was lost up to there is still resent, see
    # ``cluster/engine/retransmit.py``). Their frames are acknowledged on arrival.
    lossy: dict[str, int | None] = field(default_factory=dict)
    credit: float = 0.0
    cursor: int = 0
    rng: random.Random = field(default_factory=random.Random)
    # Probes through the queues of this node's processes (``cluster/engine/repair.py``):
    # process → {probe id: when it was sent} for those still out, and process → when
    # the newest one back was sent (every frame published before then has been taken).
    probes: dict[str, dict[str, float]] = field(default_factory=dict)
    flushed: dict[str, float] = field(default_factory=dict)
    # Flow control (``cluster/core/flow.py``): each channel's window (0: none), what the
    # receivers last published as applied ("p→q" → frames), and since the last report
    # (``cluster/engine/flow.py``) the workload steps taken, those held back, and the
    # channels that held them back.
    window: int = 0
    applied: dict[str, int] = field(default_factory=dict)
    steps: int = 0
    held_back: int = 0
    full: set[str] = field(default_factory=set)


class Node:
    def __init__(
        self,
        store: Store,
        transport: Transport,
        shard: int = 0,
        shards: int = 1,
        hostname: str = "",
        listener: StepListener | None = None,
        on_watchpoint: WatchpointStarter | None = None,
        links: Links | None = None,
    ) -> None:
        if not 0 <= shard < shards:
            raise ValueError(f"shard {shard} is not in 0..{shards - 1}")
        self.store = store
        self.transport = transport
        self.shard = shard
        self.shards = shards
        self.hostname = hostname
        self.listener = listener
        self.on_watchpoint = on_watchpoint
        # The engine draws the random numbers; the pure Links only uses them.
        self.links = links or Links(random.Random())
        self.runs: dict[int, ServedRun] = {}
        self.processes: dict[tuple[int, str], SimulatedProcess] = {}
        self.last_tick = time.monotonic()

    # -- runs -----------------------------------------------------------------------

    def refresh(self, add_queue: Callable[[str], None], cancel_queue: Callable[[str], None]) -> None:
        """Follow the store: serve new runs, drop stopped ones, pick up rate/status changes."""
        self.store.heartbeat(self.shard, self.shards, self.hostname, time.time())
        metas = {run_id: self.store.run_meta(run_id) for run_id in self.store.active_runs()}
        restoring = {run_id for run_id, meta in metas.items() if meta and meta["status"] == "restoring"}
        wanted = {run_id for run_id, meta in metas.items() if meta} - restoring
        for run_id in sorted(self.runs.keys() - wanted):
            for queue in self.detach(run_id):
                cancel_queue(queue)
        for run_id in sorted(restoring):
            # Only now, with nothing of the old epoch left in memory, may the restore go on.
            self.store.let_go(run_id, self.shard, metas[run_id]["epoch"])  # type: ignore[index]
        for run_id in sorted(wanted - self.runs.keys()):
            for queue in self.attach(run_id):
                add_queue(queue)
        for run in self.runs.values():
            meta = metas.get(run.id)
            if meta is not None:
                run.rate, run.status, run.params = meta["rate"], meta["status"], meta["params"]
                run.window = meta.get("window", 0)
                self._follow(run, meta)

    def attach(self, run_id: int) -> list[str]:
        """Start serving this node's processes of a run; return the queues to consume."""
        meta = self.store.run_meta(run_id)
        if meta is None:
            log.warning("run %s has no meta in the store; not serving it", run_id)
            return []
        names = [p["name"] for i, p in enumerate(meta["processes"]) if in_shard(i, self.shard, self.shards)]
        run = ServedRun(
            id=run_id,
            workload=meta["workload"],
            rate=meta["rate"],
            params=meta["params"],
            status=meta["status"],
            mine=names,
            epoch=meta.get("epoch", 0),
            window=meta.get("window", 0),
            rng=random.Random(f"{meta.get('seed', 0)}:{run_id}:{self.shard}:{meta.get('epoch', 0)}"),
        )
        self.runs[run_id] = run
        self.links.set_faults(run_id, meta.get("faults", {}))
        for name in names:
            self._load(run_id, name)
        self._follow(run, meta)
        log.info("serving %d processes of run %s (shard %d/%d)", len(names), run_id, self.shard, self.shards)
        return [queue_name(run_id, n) for n in names]

    def detach(self, run_id: int) -> list[str]:
        run = self.runs.pop(run_id, None)
        self.links.forget(run_id)
        if run is None:
            return []
        for name in run.mine:
            self.processes.pop((run_id, name), None)
        return [queue_name(run_id, n) for n in run.mine]

    def _follow(self, run: ServedRun, meta: dict[str, Any]) -> None:
        """Take up a run's changed channel faults and watchpoints."""
        faults = meta.get("faults", {})
        for channel in list(run.lossy):
            if run.lossy[channel] is None and not faults.get(channel, {}).get("loss"):
                src, dst = split_channel_id(channel)
                sender = self.processes.get((run.id, src))
                run.lossy[channel] = sender.sent.get(dst, 0) if sender is not None else 0
        for channel, fault in faults.items():
            if fault.get("loss"):
                run.lossy[channel] = None
        if faults != run.faults:
            run.faults = faults
            self.links.set_faults(run.id, faults)
            steps = []
            for name in run.mine:
                proc = self.processes.get((run.id, name))
                if proc is None:
                    continue
                unordered = {src for src in proc.incoming if faults.get(channel_id(src, name), {}).get("reorder")}
                steps.append((proc, proc.set_channel_modes(unordered)))
            self._commit_many(run.id, steps)
        specs = meta.get("watchpoints", [])
        if specs != run.watch_specs:
            run.watch_specs = specs
            run.watches = compile_watches(specs, run.workload)
            for name in run.mine:
                proc = self.processes.get((run.id, name))
                if proc is not None:
                    self._watch(run, proc)

    def _watch(self, run: ServedRun, proc: SimulatedProcess) -> None:
        proc.watch([w.as_process_watch() for w in run.watches.values() if w.process in (None, proc.name)])

    def queues(self) -> list[str]:
        return [queue_name(r.id, n) for r in self.runs.values() for n in r.mine]

    # -- inputs ---------------------------------------------------------------------

    def deliver(self, run_id: int, frame: Frame) -> None:
        proc = self._process(run_id, frame.get("dst", ""))
        if proc is None:
            log.warning("run %s: frame for unknown process %r dropped", run_id, frame.get("dst"))
            return
        self._commit_many(run_id, [(proc, proc.receive(frame))], self._ack(run_id, proc, frame))

    def initiate(self, run_id: int, name: str, snapshot: int, algorithm: str = CHANDY_LAMPORT, epoch: int = 0) -> None:
        proc = self._process(run_id, name)
        if proc is None:
            log.warning("run %s: initiate for unknown process %r dropped", run_id, name)
            return
        if epoch != self.runs[run_id].epoch:
            log.warning(
                "run %s: initiate of snapshot %s from epoch %s dropped (restored since)", run_id, snapshot, epoch
            )
            return
        self._commit_many(run_id, [(proc, proc.initiate(snapshot, algorithm))])

    def probe_returned(self, run_id: int, name: str, probe: str) -> None:
        """A probe came back through ``name``'s queue: what was published before it has been taken."""
        run = self.runs.get(run_id)
        out = run.probes.get(name, {}) if run is not None else {}
        sent = out.pop(probe, None)
        if run is None or sent is None:
            return  # not ours: sent by a worker before this one, or before a restore
        # Probes sent earlier went into the queue before this one: back or lost, they are done.
        run.probes[name] = {p: t for p, t in out.items() if t > sent}
        run.flushed[name] = max(run.flushed.get(name, 0.0), sent)

    def tick(self, now: float | None = None) -> int:
        """Run the workload steps that are due in every running run; return how many ran."""
        now = time.monotonic() if now is None else now
        elapsed, self.last_tick = now - self.last_tick, now
        for run_id, frames in self.links.due(now).items():
            if run_id in self.runs:
                self.transport.send_frames(run_id, frames)
        done = 0
        for run in list(self.runs.values()):
            if run.status != "running" or not run.mine:
                run.credit = 0.0
                continue
            per_second = run.rate * len(run.mine)
            run.credit = min(run.credit + elapsed * per_second, max(MAX_BURST_SECONDS * per_second, len(run.mine)))
            # Steps of one tick are committed together, one store transaction and one
            # outbox per process, however many steps each took.
            stepped: dict[str, Step] = {}
            while run.credit >= 1:
                run.credit -= 1
                name = run.mine[run.cursor % len(run.mine)]
                run.cursor += 1
                proc = self._process(run.id, name)
                if proc is None:
                    continue
                if self._held_back(run, proc):
                    run.held_back += 1
                    continue
                run.steps += 1
                step = proc.act(run.rng, run.params)
                if step.sends or step.changed or step.hits:
                    stepped.setdefault(name, Step()).extend(step)
                    done += 1
            self._commit_many(run.id, [(self.processes[(run.id, n)], s) for n, s in stepped.items()])
        return done

    def send(self, run_id: int, frames: list[Frame]) -> None:
        """Publish frames, through their channels' faults."""
        ready = self.links.route(run_id, frames, time.monotonic())
        self.transport.send_frames(run_id, ready)

    def commit(self, run_id: int, steps: list[tuple[SimulatedProcess, Step]]) -> None:
        """Store and send steps that came from outside the broker (see ``cluster/engine/repair.py``)."""
        self._commit_many(run_id, steps)

    def forget_outboxes(self) -> None:
        """On a clean shutdown every outbox has been sent: persist that, so a restart
        does not resend them (which would be harmless, but counted as duplicates)."""
        by_run: dict[int, list[StepCommit]] = {}
        for (run_id, name), proc in self.processes.items():
            by_run.setdefault(run_id, []).append(StepCommit(name, proc.to_dict(), [], [], []))
        for run_id, commits in by_run.items():
            self.store.commit_steps(run_id, commits)

    # -- internals ------------------------------------------------------------------

    def _trigger(self, run: ServedRun, proc: SimulatedProcess, step: Step) -> None:
        """Turn watchpoint hits into snapshots this process initiates, within the step."""
        for hit in step.hits:
            watch = run.watches.get(hit["watchpoint"])
            if watch is None or self.on_watchpoint is None:
                continue
            # One snapshot per hit for the whole run, whichever worker sees it first.
            if not self.store.claim_watch_hit(run.id, watch.id, None if watch.once else watch.cooldown_s):
                continue
            try:
                snapshot = self.on_watchpoint(run.id, watch.id, proc.name, hit["detail"])
            except Exception:  # the process must go on; the hit is logged as an event anyway
                log.exception("run %s: watchpoint %s could not start its snapshot", run.id, watch.id)
                continue
            if snapshot is not None:
                step.events.append(
                    {
                        "kind": "watchpoint",
                        "process": proc.name,
                        "watchpoint": watch.id,
                        "snapshot": snapshot,
                        "detail": hit["detail"],
                        "clock": dict(proc.clock),
                    }
                )
                step.extend(proc.initiate(snapshot, watch.algorithm))

    def _held_back(self, run: ServedRun, proc: SimulatedProcess) -> bool:
        """True while an outgoing channel of the process has a full window in flight."""
        if not run.window:
            return False
        applied = {dst: run.applied.get(channel_id(proc.name, dst), 0) for dst in proc.outgoing}
        full = full_channels(proc.sent, applied, run.window)
        run.full.update(channel_id(proc.name, dst) for dst in full)
        return bool(full)

    def _ack(self, run_id: int, proc: SimulatedProcess, frame: Frame) -> dict[str, Ack]:
        """On a channel that is or was lossy: tell the sender what this frame's arrival
        leaves it no need to resend — the applied prefix, and the frame itself if it is
        held behind a gap or applied out of order (it is persisted with the process)."""
        run = self.runs.get(run_id)
        src = frame.get("src", "")
        if run is None or channel_id(src, proc.name) not in run.lossy or src not in proc.receivers:
            return {}
        last = proc.receivers[src].last
        seq = frame.get("seq", 0)
        return {proc.name: (src, last, (seq,) if seq > last else ())}

    def _process(self, run_id: int, name: str) -> SimulatedProcess | None:
        proc = self.processes.get((run_id, name))
        if proc is not None:
            return proc
        if run_id not in self.runs:
            # Not served here (stopped, or being restored): loading it now could write an
            # old state over the restored one.
            return None
        return self._load(run_id, name)

    def _load(self, run_id: int, name: str) -> SimulatedProcess | None:
        data = self.store.load_process(run_id, name)
        if data is None:
            return None
        proc = SimulatedProcess.from_dict(data)
        self.processes[(run_id, name)] = proc
        run = self.runs.get(run_id)
        if run is not None:
            self._watch(run, proc)
        if data.get("outbox"):
            # The last step of this process may not have reached the broker (or, after a
            # restore, these are the recorded channel messages delivered again).
            self.send(run_id, data["outbox"])
        return proc

    def _commit_many(
        self, run_id: int, steps: list[tuple[SimulatedProcess, Step]], acks: dict[str, Ack] | None = None
    ) -> None:
        """Store the steps, then publish their frames."""
        if not steps:
            return
        run = self.runs.get(run_id)
        for proc, step in steps:
            if step.hits and run is not None:
                self._trigger(run, proc, step)
        now = time.time()
        frames = [frame for _, step in steps for frame in step.sends]
        for _, step in steps:
            # Stamped here and numbered by the commit, in place: the listener shows them with their ids.
            step.events = [{**e, "t": now} for e in step.events]
        self.store.commit_steps(
            run_id,
            [
                StepCommit(
                    proc.name,
                    proc.to_dict(),
                    step.sends,
                    [{**r, "t": now} for r in step.records],
                    step.events,
                    (acks[proc.name],) if acks and proc.name in acks else (),
                )
                for proc, step in steps
            ],
        )
        self.send(run_id, frames)
        if self.listener is not None:
            for proc, step in steps:
                self.listener.on_step(run_id, proc, step)
