"""Channel faults, applied where a frame leaves its sender: delay, reordering, loss.

The broker is a reliable FIFO queue per process, and ``cluster/core/fifo.py`` rebuilds
exactly-once FIFO channels on top of it. To *show* what those assumptions buy, a channel
can be given faults (``Run.faults``, by ``"p→q"``), carried out here, in the sending
worker, before a frame is published:

* ``delay_ms`` — the frame waits that long before it is published;
* ``reorder`` — it also waits a random extra 0…:data:`REORDER_JITTER_MS`, drawn for each
  frame, so a later frame can overtake an earlier one; the receiving process applies
  such a channel's frames in arrival order (``ChannelReceiver(fifo=False)``): the
  channel is no longer FIFO;
* ``loss`` — each transmission is dropped with that probability. The sender does not
  know which were lost: it retransmits every frame its receiver has not acknowledged
  (``cluster/engine/retransmit.py``), and sequence numbers make delivery exactly-once again.

Frames waiting out a delay live in this worker's memory only. If the worker dies they
are gone from here, but not from their channel's log, which ``cluster/engine/repair.py``
delivers from — the fault model never weakens the crash guarantees. Pure apart from
the randomness it is handed: the caller supplies the clock.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections import Counter
from dataclasses import dataclass
from typing import Any

from cluster.core.wire import Frame, channel_id

REORDER_JITTER_MS = 200


@dataclass(frozen=True)
class Fault:
    delay_ms: int = 0
    reorder: bool = False
    loss: float = 0.0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Fault:
        return cls(int(data.get("delay_ms", 0)), bool(data.get("reorder", False)), float(data.get("loss", 0.0)))

    @property
    def holds_back(self) -> bool:
        return self.delay_ms > 0 or self.reorder

    def max_delay(self) -> float:
        """The longest a frame can wait here, in seconds."""
        return (self.delay_ms + (REORDER_JITTER_MS if self.reorder else 0)) / 1000


class Links:
    """The faults of every channel this worker sends on, and the frames they hold back."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.faults: dict[int, dict[str, Fault]] = {}
        self._waiting: list[tuple[float, int, int, Frame]] = []  # (due, tie-breaker, run, frame)
        self._order = itertools.count()
        self.lost: dict[int, Counter[str]] = {}

    def set_faults(self, run: int, faults: dict[str, dict[str, Any]]) -> None:
        self.faults[run] = {channel: Fault.from_dict(f) for channel, f in faults.items()}

    def fault(self, run: int, src: str, dst: str) -> Fault | None:
        return self.faults.get(run, {}).get(channel_id(src, dst))

    def route(self, run: int, frames: list[Frame], now: float) -> list[Frame]:
        """Decide each frame's fate; return those to publish now, in order.

        The rest are lost (counted) or wait for :meth:`due`.
        """
        faults = self.faults.get(run)
        if not faults:
            return frames
        now_frames: list[Frame] = []
        for frame in frames:
            fault = faults.get(channel_id(frame["src"], frame["dst"]))
            if fault is None:
                now_frames.append(frame)
                continue
            if fault.loss and self.rng.random() < fault.loss:
                self.lost.setdefault(run, Counter())[channel_id(frame["src"], frame["dst"])] += 1
                continue
            wait = fault.delay_ms / 1000
            if fault.reorder:
                wait += self.rng.uniform(0, REORDER_JITTER_MS / 1000)
            if wait <= 0:
                now_frames.append(frame)
            else:
                heapq.heappush(self._waiting, (now + wait, next(self._order), run, frame))
        return now_frames

    def due(self, now: float) -> dict[int, list[Frame]]:
        """The held-back frames whose time has come, by run, in the order they fall due."""
        out: dict[int, list[Frame]] = {}
        while self._waiting and self._waiting[0][0] <= now:
            _, _, run, frame = heapq.heappop(self._waiting)
            out.setdefault(run, []).append(frame)
        return out

    def waiting(self, run: int | None = None) -> int:
        return sum(1 for w in self._waiting if run is None or w[2] == run)

    def take_lost(self) -> dict[int, dict[str, int]]:
        """The losses counted since the last call, by run and channel."""
        lost, self.lost = self.lost, {}
        return {run: dict(c) for run, c in lost.items() if c}

    def forget(self, run: int) -> None:
        """Drop a run's faults and everything it holds back (the run stopped or is restored)."""
        self.faults.pop(run, None)
        self.lost.pop(run, None)
        self._waiting = [w for w in self._waiting if w[2] != run]
        heapq.heapify(self._waiting)
