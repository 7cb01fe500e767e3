"""One subscription per run per server process, however many pages watch the run.

Channels' usual way — every consumer a member of the run's group — makes the channel
layer hand each frame to each consumer separately: a queue, a task, a deserialization
and a dispatch per frame per page. Measured with 200 pages on one run that machinery
was close to half of Daphne's work per frame. Here a process joins the run's group
once (a :class:`Fanout`): one task receives each frame and writes its text, already
JSON, to every page's socket; it also sends the heartbeat, reading the run's cursors
once for all pages.

Order, which the stream depends on (``snapshots/live/state.py``): a page registers with its
run's fanout *before* it reads the state, and frames that arrive for it before it has
sent that state are held, then sent after it, in order. Everything here runs on the
server's event loop; the only awaits are sends and the layer's receive, and the
hand-over from held to live has none, so no frame can slip between the two.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from typing import Protocol

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer

from snapshots import services
from snapshots.live.frames import HeartbeatFrame, encode, group_name, run_settings
from snapshots.live.state import fault_counts, read_cursors

log = logging.getLogger("cutline.fanout")


class Page(Protocol):
    """A page's socket as the fanout sees it (``RunConsumer``)."""

    async def send(
        self, text_data: str | None = None, bytes_data: bytes | None = None, close: bool = False
    ) -> None: ...


class Watcher:
    """One page of a run: frames wait in ``held`` until its state has been sent."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.live = False
        self.held: list[str] = []

    async def deliver(self, text: str) -> None:
        if self.live:
            await self.page.send(text_data=text)
        else:
            self.held.append(text)

    async def go_live(self) -> None:
        while self.held:
            await self.page.send(text_data=self.held.pop(0))
        self.live = True  # no await since the last check: nothing can be held now


def _heartbeat(run_id: int) -> HeartbeatFrame:
    """The cursors (so a page finds a lost last frame), the run's settings (its epoch
    tells a page it missed a restore) and the lossy channels' counts."""
    beat: HeartbeatFrame = {
        "type": "heartbeat",
        "t": round(time.time(), 4),
        "cursors": read_cursors(run_id),
        "fault_counts": fault_counts(run_id),
    }
    meta = services.store().run_meta(run_id)
    if meta:
        beat["run_settings"] = run_settings(meta)
    return beat


class Fanout:
    """The frames and heartbeats of one run, for every page of it in this process."""

    def __init__(self, run_id: int, heartbeat: float) -> None:
        self.run_id = run_id
        self.heartbeat = heartbeat
        self.watchers: dict[int, Watcher] = {}
        self.layer = get_channel_layer()
        self.channel: str | None = None
        self.tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self.channel = await self.layer.new_channel()
        await self.layer.group_add(group_name(self.run_id), self.channel)
        self.tasks = [asyncio.create_task(self._pump()), asyncio.create_task(self._beat())]

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.channel is not None:
            try:
                await self.layer.group_discard(group_name(self.run_id), self.channel)
            except Exception:  # the layer is gone (Redis away): nothing is left to leave
                log.warning("leaving the group of run %s failed", self.run_id, exc_info=True)

    async def _pump(self) -> None:
        assert self.channel is not None
        while True:
            message = await self.layer.receive(self.channel)
            if message.get("type") != "run.frame":
                continue
            await self._broadcast(message["text"])

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat)
            try:
                beat = await sync_to_async(_heartbeat, thread_sensitive=False)(self.run_id)
            except Exception:  # Redis away: silence says it, and the pages reconnect
                log.warning("heartbeat of run %s failed", self.run_id, exc_info=True)
                continue
            await self._broadcast(encode(beat))

    async def _broadcast(self, text: str) -> None:
        for watcher in list(self.watchers.values()):
            try:
                await watcher.deliver(text)
            except Exception:  # one broken socket must not starve the others
                log.warning("sending to a page of run %s failed", self.run_id, exc_info=True)


# Fanouts by event loop and run: a server has one loop; tests make one per test.
_fanouts: dict[tuple[asyncio.AbstractEventLoop, int], Fanout] = {}
_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()


def _lock(loop: asyncio.AbstractEventLoop) -> asyncio.Lock:
    lock = _locks.get(loop)
    if lock is None:
        lock = _locks[loop] = asyncio.Lock()
    return lock


async def join(run_id: int, page: Page, heartbeat: float) -> Watcher:
    """Register a page with its run's fanout (started if it is the first page)."""
    loop = asyncio.get_running_loop()
    async with _lock(loop):
        fanout = _fanouts.get((loop, run_id))
        if fanout is None:
            fanout = Fanout(run_id, heartbeat)
            await fanout.start()
            _fanouts[(loop, run_id)] = fanout
        watcher = fanout.watchers[id(page)] = Watcher(page)
    return watcher


async def leave(run_id: int, page: Page) -> None:
    """Unregister a page; the last page of a run stops its fanout."""
    loop = asyncio.get_running_loop()
    async with _lock(loop):
        fanout = _fanouts.get((loop, run_id))
        if fanout is None:
            return
        fanout.watchers.pop(id(page), None)
        if not fanout.watchers:
            del _fanouts[(loop, run_id)]
            await fanout.stop()
