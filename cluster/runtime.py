"""The processes one worker serves: load, step, persist, send.

A :class:`Node` lives inside one Celery worker and serves its shard of every active run:
process ``i`` (in the run's order) of a run belongs to shard ``i mod shards``. The node
is driven from the worker's event loop only — frames and initiates by tasks
(``cluster/tasks.py``), workload steps and run changes by loop timers
(``cluster/worker.py``) — so it needs no locks.

Every input follows the same path: the pure ``Process`` computes a ``Step``; the step
(new state, outbox, records, events) is committed to the store atomically; then its
frames are published. If the worker dies after the commit and before the ack, the
broker redelivers the input: the process sees a duplicate seq and drops it, and the
outbox — resent whenever a process is loaded — restores frames that never left.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from cluster.process import Process, Step
from cluster.store import StepCommit, Store
from cluster.transport import Transport, queue_name

log = logging.getLogger("cutline.runtime")

# After a stall (a long task, a paused VM) do not fire the whole backlog of workload
# steps at once: at most this many seconds' worth (and at least one round).
MAX_BURST_SECONDS = 0.1


class StepListener(Protocol):
    """Told of every committed step (the live dashboard's publisher). It must be cheap:
    it runs once per message, so it should only accumulate, and send on ``flush``."""

    def on_step(self, run_id: int, process: Process, step: Step) -> None: ...

    def flush(self) -> None: ...


def in_shard(index: int, shard: int, shards: int) -> bool:
    return index % shards == shard


@dataclass
class ServedRun:
    """One run as this node serves it: settings from the run's meta, and its processes."""

    id: int
    workload: str
    rate: float
    params: dict[str, Any]
    status: str
    mine: list[str]
    credit: float = 0.0
    cursor: int = 0
    rng: random.Random = field(default_factory=random.Random)


class Node:
    def __init__(
        self,
        store: Store,
        transport: Transport,
        shard: int = 0,
        shards: int = 1,
        hostname: str = "",
        listener: StepListener | None = None,
    ) -> None:
        if not 0 <= shard < shards:
            raise ValueError(f"shard {shard} is not in 0..{shards - 1}")
        self.store = store
        self.transport = transport
        self.shard = shard
        self.shards = shards
        self.hostname = hostname
        self.listener = listener
        self.runs: dict[int, ServedRun] = {}
        self.processes: dict[tuple[int, str], Process] = {}
        self.last_tick = time.monotonic()

    # -- runs -----------------------------------------------------------------------

    def refresh(self, add_queue: Callable[[str], None], cancel_queue: Callable[[str], None]) -> None:
        """Follow the store: serve new runs, drop stopped ones, pick up rate/status changes."""
        self.store.heartbeat(self.shard, self.shards, self.hostname, time.time())
        active = self.store.active_runs()
        for run_id in sorted(active - self.runs.keys()):
            for queue in self.attach(run_id):
                add_queue(queue)
        for run_id in sorted(self.runs.keys() - active):
            for queue in self.detach(run_id):
                cancel_queue(queue)
        for run in self.runs.values():
            meta = self.store.run_meta(run.id)
            if meta is not None:
                run.rate, run.status, run.params = meta["rate"], meta["status"], meta["params"]

    def attach(self, run_id: int) -> list[str]:
        """Start serving this node's processes of a run; return the queues to consume."""
        meta = self.store.run_meta(run_id)
        if meta is None:
            log.warning("run %s has no meta in the store; not serving it", run_id)
            return []
        names = [p["name"] for i, p in enumerate(meta["processes"]) if in_shard(i, self.shard, self.shards)]
        self.runs[run_id] = ServedRun(
            id=run_id,
            workload=meta["workload"],
            rate=meta["rate"],
            params=meta["params"],
            status=meta["status"],
            mine=names,
            rng=random.Random(f"{meta.get('seed', 0)}:{run_id}:{self.shard}"),
        )
        for name in names:
            self._load(run_id, name)
        log.info("serving %d processes of run %s (shard %d/%d)", len(names), run_id, self.shard, self.shards)
        return [queue_name(run_id, n) for n in names]

    def detach(self, run_id: int) -> list[str]:
        run = self.runs.pop(run_id, None)
        if run is None:
            return []
        for name in run.mine:
            self.processes.pop((run_id, name), None)
        return [queue_name(run_id, n) for n in run.mine]

    def queues(self) -> list[str]:
        return [queue_name(r.id, n) for r in self.runs.values() for n in r.mine]

    # -- inputs ---------------------------------------------------------------------

    def deliver(self, run_id: int, frame: dict[str, Any]) -> None:
        proc = self._process(run_id, frame.get("dst", ""))
        if proc is None:
            log.warning("run %s: frame for unknown process %r dropped", run_id, frame.get("dst"))
            return
        self._commit_many(run_id, [(proc, proc.receive(frame))])

    def initiate(self, run_id: int, name: str, snapshot: int) -> None:
        proc = self._process(run_id, name)
        if proc is None:
            log.warning("run %s: initiate for unknown process %r dropped", run_id, name)
            return
        self._commit_many(run_id, [(proc, proc.initiate(snapshot))])

    def tick(self, now: float | None = None) -> int:
        """Run the workload steps that are due in every running run; return how many ran."""
        now = time.monotonic() if now is None else now
        elapsed, self.last_tick = now - self.last_tick, now
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
                if proc is not None:
                    step = proc.act(run.rng, run.params)
                    if step.sends:
                        stepped.setdefault(name, Step()).extend(step)
                        done += 1
            self._commit_many(run.id, [(self.processes[(run.id, n)], s) for n, s in stepped.items()])
        return done

    def commit(self, run_id: int, steps: list[tuple[Process, Step]]) -> None:
        """Store and send steps that came from outside the broker (see ``cluster/repair.py``)."""
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

    def _process(self, run_id: int, name: str) -> Process | None:
        proc = self.processes.get((run_id, name))
        return proc if proc is not None else self._load(run_id, name)

    def _load(self, run_id: int, name: str) -> Process | None:
        data = self.store.load_process(run_id, name)
        if data is None:
            return None
        proc = Process.from_dict(data)
        self.processes[(run_id, name)] = proc
        if data.get("outbox"):
            # The last step of this process may not have reached the broker.
            self.transport.send_frames(run_id, data["outbox"])
        return proc

    def _commit_many(self, run_id: int, steps: list[tuple[Process, Step]]) -> None:
        """Store the steps, then publish their frames."""
        if not steps:
            return
        now = time.time()
        frames = [frame for _, step in steps for frame in step.sends]
        self.store.commit_steps(
            run_id,
            [
                StepCommit(
                    proc.name,
                    proc.to_dict(),
                    step.sends,
                    [{**r, "t": now} for r in step.records],
                    [{**e, "t": now} for e in step.events],
                )
                for proc, step in steps
            ],
        )
        self.transport.send_frames(run_id, frames)
        if self.listener is not None:
            for proc, step in steps:
                self.listener.on_step(run_id, proc, step)
