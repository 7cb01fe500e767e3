"""The worker side of the live dashboard: every committed step in, ≤20 frames/s per run out.

Theory of operation
-------------------
The node (``cluster/engine/node.py``) calls :meth:`Publisher.on_step` after every committed
step, i.e. once per application message, so ``on_step`` only takes notes, per run: which
processes changed (the process itself: its newest state is read when the frame is
built), the newest messages sent on each channel (with payloads, so a click on a channel
can list what is in it), and every snapshot event.

:meth:`Publisher.flush` runs on the worker's loop every :data:`FRAME_INTERVAL` seconds
(``cluster/engine/worker.py``). For each run that has something new and whose last frame is old
enough, it builds one frame (:class:`Coalescer`): per changed process only the fields
that changed since this source last published them, the newest few messages per
channel, and *all* the snapshot events — those are never coalesced away or capped. A run
served by N workers has N sources, so each waits ``N × FRAME_INTERVAL`` between frames
and together they stay at about 20 frames per second per run, whatever the message rate.

A ``group_send`` costs milliseconds (a Redis round trip, more through ``async_to_sync``,
which builds an event loop and a connection per call). Done inline it would stall every
process the worker serves, so frames are serialized once, here, and handed to a
:class:`Sender` thread that keeps one event loop and its Redis connections for its life.
For each frame it first writes the run's cursor, then sends (``snapshots/live/state.py``
says why in that order). If it falls far behind it drops the oldest frames: pages see
the gap and reload, which is the stream's answer to every loss.

Two things do not come from steps. A snapshot is finished by whichever recorder stores
its last record (``services.store_records``), which announces it on Redis; the publisher
listens and adds a ``finished`` event carrying the snapshot's history row. A run's status,
rate, channel faults and epoch are changed by the services in the run's meta in the
store; the publisher reads the meta of the runs it publishes for every
:data:`META_INTERVAL` seconds.

A restore (``snapshots/recovery.py``) puts every process of a run in a new state at once
and starts a new **epoch**. Each delta says the epoch of the processes it was built from,
and a process of a new epoch is published whole, never as a difference from its old
self. The server that restored the run also tells every page at once
(:func:`announce_restore`: a ``restore`` frame, outside the sources' numbering), and each
page starts over from ``state.json``; a page that missed that frame learns the new epoch
from the next delta or heartbeat and does the same. Changes of a run's watchpoints are
announced the same way (:func:`announce_watchpoints`): the frame holds the whole list,
so a lost one is mended by the next.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import redis
from channels.layers import get_channel_layer
from django.db import close_old_connections

from cluster.core.process import SimulatedProcess, Step
from cluster.core.wire import CHANDY_LAMPORT, SNAPSHOT_EVENT_KINDS
from cluster.engine.store import CursorWriter, Store
from snapshots.live.frames import DeltaFrame, RunSettings, diff_views, encode, group_name, run_settings, view_of_process
from snapshots.models import Snapshot
from snapshots.presenter import snapshot_summary

log = logging.getLogger("cutline.events")

FRAME_INTERVAL = 0.05  # seconds: 20 frames per second per run, shared by its sources
TICK_SLACK = FRAME_INTERVAL / 2  # how early a flush may come and still be on time
META_INTERVAL = 0.5  # seconds between reads of run status and rate
MESSAGES_PER_CHANNEL = 5  # newest messages per channel per frame, for the channel panel
RECORDED_MESSAGES_SHOWN = 50  # recorded messages of a closed channel sent live (all are in the export)
MAX_BACKLOG = 2000  # frames waiting for the sender before the oldest are dropped


@dataclass
class _Pending:
    """What happened in one run since its last frame."""

    since: float
    processes: dict[str, SimulatedProcess] = field(default_factory=dict)
    messages: dict[tuple[str, str], deque[list[Any]]] = field(default_factory=dict)
    snapshot_events: list[dict[str, Any]] = field(default_factory=list)
    run: RunSettings | None = None


class Coalescer:
    """Turns steps into at most one frame per run per interval. No I/O, no clock."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.pending: dict[int, _Pending] = {}
        self.published: dict[int, dict[str, dict[str, Any]]] = {}
        # The epoch each process was last published in: a restored process is sent whole.
        self.epochs: dict[int, dict[str, int]] = {}
        self.seq: dict[int, int] = {}
        self.last_frame: dict[int, float] = {}

    def runs(self) -> set[int]:
        """Every run this source has published for or is about to."""
        return self.seq.keys() | self.pending.keys()

    def _pending(self, run_id: int, now: float) -> _Pending:
        pending = self.pending.get(run_id)
        if pending is None:
            pending = self.pending[run_id] = _Pending(since=now)
        return pending

    def on_step(self, run_id: int, process: SimulatedProcess, step: Step, now: float) -> None:
        pending = self._pending(run_id, now)
        pending.processes[process.name] = process
        for frame in step.sends:
            if frame["kind"] != "message":
                continue  # markers are told by their marker_send event
            key = (frame["src"], frame["dst"])
            newest = pending.messages.get(key)
            if newest is None:
                newest = pending.messages[key] = deque(maxlen=MESSAGES_PER_CHANNEL)
            newest.append([frame["src"], frame["dst"], frame["seq"], frame["payload"]])
        for event in step.events:
            if event["kind"] in SNAPSHOT_EVENT_KINDS:  # the page plays them in order (player.js)
                pending.snapshot_events.append(_snapshot_event(event, step.records))

    def add_event(self, run_id: int, event: dict[str, Any], now: float) -> None:
        """A snapshot event that did not come from a step (a snapshot finished)."""
        self._pending(run_id, now).snapshot_events.append(event)

    def set_run(self, run_id: int, run: RunSettings, now: float) -> None:
        """The run's status or rate changed."""
        self._pending(run_id, now).run = run

    def forget(self, run_id: int) -> None:
        """Drop what is kept to diff a run's processes (it stopped). Its seq stays:
        a frame for it later must not reuse a number a page has seen."""
        self.published.pop(run_id, None)
        self.epochs.pop(run_id, None)

    def frames(self, now: float, interval: float) -> list[tuple[int, int, DeltaFrame]]:
        """The frames due now, as (run, seq, frame); each run's pending notes are used up."""
        out: list[tuple[int, int, DeltaFrame]] = []
        for run_id in sorted(self.pending):
            # A timer tick that comes a little early must not make a frame a tick late.
            if now - self.last_frame.get(run_id, float("-inf")) < interval - TICK_SLACK:
                continue
            pending = self.pending.pop(run_id)
            body = self._body(run_id, pending)
            if not body:
                continue
            if pending.processes:
                body["epoch"] = max(proc.epoch for proc in pending.processes.values())
            seq = self.seq[run_id] = self.seq.get(run_id, 0) + 1
            self.last_frame[run_id] = now
            frame: DeltaFrame = {  # type: ignore[typeddict-item]  # the body holds the optional fields
                "type": "delta",
                "run": run_id,
                "source": self.source,
                "seq": seq,
                "t": round(now, 4),
                "since": round(pending.since, 4),
                **body,
            }
            out.append((run_id, seq, frame))
        return out

    def _body(self, run_id: int, pending: _Pending) -> dict[str, Any]:
        published = self.published.setdefault(run_id, {})
        epochs = self.epochs.setdefault(run_id, {})
        processes: dict[str, Any] = {}
        for name, proc in pending.processes.items():
            view = view_of_process(proc)
            before = published.get(name) if epochs.get(name) == proc.epoch else None
            delta = diff_views(before, view)
            published[name] = view
            epochs[name] = proc.epoch
            if delta:
                processes[name] = delta
        body: dict[str, Any] = {}
        if processes:
            body["processes"] = processes
        if pending.messages:
            body["messages"] = [m for newest in pending.messages.values() for m in newest]
        if pending.snapshot_events:
            body["snapshot_events"] = pending.snapshot_events
        if pending.run is not None:
            body["run_settings"] = pending.run
        return body


def _snapshot_event(event: dict[str, Any], records: list[dict[str, Any]]) -> dict[str, Any]:
    """The compact form a page needs: who, which snapshot, what was recorded, and the
    event's id, vector clock and commit time, by which the page puts events in order."""
    kind, process, snapshot = event["kind"], event["process"], event["snapshot"]
    out: dict[str, Any] = {"kind": kind, "process": process, "snapshot": snapshot, "clock": event.get("clock", {})}
    if "id" in event:
        out["event"] = event["id"]
    if "t" in event:
        out["t"] = event["t"]
    if "peer" in event:
        out["peer"] = event["peer"]
    if "seq" in event:
        out["seq"] = event["seq"]
    if kind == "initiate":
        out["algorithm"] = event.get("algorithm", CHANDY_LAMPORT)
    elif kind == "watchpoint":
        out["watchpoint"] = event["watchpoint"]
        out["detail"] = event["detail"]
    elif kind == "record":
        for r in records:
            if r["kind"] == "process" and r["snapshot"] == snapshot:
                out["state"] = r["state"]
    elif kind == "channel_closed":
        for r in records:
            if r["kind"] == "channel" and r["snapshot"] == snapshot and r["src"] == event["peer"]:
                out["count"] = len(r["messages"])
                out["messages"] = [[m["seq"], m["payload"]] for m in r["messages"][:RECORDED_MESSAGES_SHOWN]]
    return out


class Sender:
    """One thread, one event loop: writes each frame's cursor, then group_sends it, in order."""

    def __init__(self, source: str, redis_url: str, layer_alias: str = "default") -> None:
        self.source = source
        self.redis_url = redis_url
        self.layer_alias = layer_alias
        self.dropped = 0
        self._queued = 0
        self._handled = 0
        self._done = threading.Condition()
        self._items: deque[tuple[int, int, str]] = deque()
        self._lock = threading.Lock()
        self._stopping = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="cutline-publisher", daemon=True)
        self._thread.start()
        self._ready.wait(10)

    def put(self, run_id: int, seq: int, text: str) -> None:
        if self._thread is None:
            self.start()
        with self._lock:
            if len(self._items) >= MAX_BACKLOG:
                self._items.popleft()
                self.dropped += 1
                self._finished(1)
            self._items.append((run_id, seq, text))
        with self._done:
            self._queued += 1
        self._poke()

    def wait_sent(self, timeout: float) -> bool:
        """Block until every frame put so far is sent (or dropped); False on timeout."""
        with self._done:
            return self._done.wait_for(lambda: self._handled >= self._queued, timeout)

    def _finished(self, count: int) -> None:
        with self._done:
            self._handled += count
            self._done.notify_all()

    def close(self, timeout: float = 5.0) -> None:
        """Send what is queued (within ``timeout``), then stop the thread."""
        if self._thread is None:
            return
        self._stopping = True
        self._poke()
        self._thread.join(timeout)

    def _poke(self) -> None:
        if self._loop is None or self._wake is None:
            return
        # After close the thread has stopped and its loop is closed: nothing to wake.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._wake.set)

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._main())
        finally:
            self._loop.close()

    async def _main(self) -> None:
        self._wake = asyncio.Event()
        self._ready.set()
        layer = get_channel_layer(self.layer_alias)
        cursors = CursorWriter(self.redis_url)
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                with self._lock:
                    batch = list(self._items)
                    self._items.clear()
                if batch:
                    await self._send(cursors, layer, batch)
                if self._stopping:
                    return
        finally:
            await cursors.close()
            close = getattr(layer, "close_pools", None) or getattr(layer, "flush", None)
            if close is not None:
                try:
                    await close()
                except Exception:  # closing on the way out: nothing left to save
                    log.debug("closing the channel layer failed", exc_info=True)

    async def _send(self, cursors: CursorWriter, layer: Any, batch: list[tuple[int, int, str]]) -> None:
        try:
            await cursors.write(self.source, [(run_id, seq) for run_id, seq, _ in batch])
            for run_id, _, text in batch:
                await layer.group_send(group_name(run_id), {"type": "run.frame", "text": text})
        except Exception:
            # Pages find the missing seqs (by the next frame or the heartbeat's cursors)
            # and reload; the worker loop must not notice.
            self.dropped += len(batch)
            log.exception("publishing %d frames failed", len(batch))
        finally:
            self._finished(len(batch))


class Publisher:
    """The node's step listener: coalesces steps into frames and sends them off-loop."""

    def __init__(
        self,
        redis_url: str,
        *,
        shards: int = 1,
        source: str | None = None,
        layer_alias: str = "default",
        clock: Any = time.time,
    ) -> None:
        self.source = source or secrets.token_hex(4)
        self.interval = FRAME_INTERVAL * max(1, shards)
        self.coalescer = Coalescer(self.source)
        self.sender = Sender(self.source, redis_url, layer_alias)
        self.clock = clock
        self.store = Store.from_url(redis_url, timeout=5)
        self._announcements: Any = None
        self._unannounced: set[int] = set()
        self._next_meta = 0.0
        self._run_settings: dict[int, RunSettings] = {}
        self._stopped: set[int] = set()

    # -- the StepListener protocol (cluster/engine/node.py) ---------------------------------

    def on_step(self, run_id: int, process: SimulatedProcess, step: Step) -> None:
        self.coalescer.on_step(run_id, process, step, self.clock())

    def flush(self) -> None:
        now = self.clock()
        self._take_announcements(now)
        if now >= self._next_meta:
            self._next_meta = now + META_INTERVAL
            self._read_run_settings(now)
        for run_id, seq, frame in self.coalescer.frames(now, self.interval):
            self.sender.put(run_id, seq, encode(frame))

    def close(self) -> None:
        self.flush()
        self.sender.close()
        if self._announcements is not None:
            self._announcements.close()

    # -- what does not come from steps --------------------------------------------------

    def _take_announcements(self, now: float) -> None:
        try:
            if self._announcements is None:
                self._announcements = self.store.finished_snapshots()
            while (message := self._announcements.get_message(timeout=0)) is not None:
                self._unannounced.add(int(message["data"]))
        except redis.RedisError:
            log.warning("lost the snapshot announcements; subscribing again", exc_info=True)
            self._announcements = None
            return
        if self._unannounced:
            self._announce_finished(now)

    def _announce_finished(self, now: float) -> None:
        try:
            close_old_connections()
            finished = list(Snapshot.objects.filter(pk__in=self._unannounced).select_related("watchpoint"))
        except Exception:
            log.exception("reading finished snapshots failed; retrying on the next flush")
            return
        self._unannounced.clear()
        known = self.coalescer.runs()
        for snapshot in finished:
            if snapshot.run_id in known:
                self.coalescer.add_event(
                    snapshot.run_id, {"kind": "finished", "snapshot": snapshot_summary(snapshot)}, now
                )

    def _read_run_settings(self, now: float) -> None:
        runs = sorted(self.coalescer.runs() - self._stopped)
        if not runs:
            return
        try:
            metas = self.store.run_metas(runs)
        except redis.RedisError:
            log.warning("reading run settings failed", exc_info=True)
            return
        for run_id, meta in zip(runs, metas, strict=True):
            if meta is None:
                continue
            settings = run_settings(meta)
            if self._run_settings.get(run_id) == settings:
                continue
            self._run_settings[run_id] = settings
            self.coalescer.set_run(run_id, settings, now)
            if settings["status"] == "stopped":
                self._stopped.add(run_id)
                self.coalescer.forget(run_id)
