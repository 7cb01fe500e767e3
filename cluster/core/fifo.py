"""Exactly-once delivery on one channel, FIFO or not, rebuilt from an at-least-once broker.

Every frame (application message or marker) on a channel carries ``seq``: 1, 2, 3 …,
never repeated. The broker may deliver a frame twice (redelivery after a crash or a
lost ack) or out of order (a warm shutdown restores prefetched messages in reverse;
a restored unacked message comes back behind newer ones; a channel with the
``reorder`` fault delays each frame by its own random amount).

A FIFO receiver (the default) delivers seq ``last + 1`` only, drops anything it has
already delivered or is already holding (a duplicate), and holds back a frame that
arrived ahead of a missing one until the gap fills. It never applies out of order.

An unordered receiver (``fifo=False``, for a channel with the ``reorder`` fault, where
Lai–Yang snapshots need no FIFO) delivers every new seq at once and still drops
duplicates: ``last`` is the contiguous prefix delivered and ``above`` the seqs
delivered beyond it. Switching a receiver from FIFO to unordered releases what it held;
switching back makes it skip the seqs in ``above`` once the prefix reaches them.

Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NotRequired, TypedDict


class ReceiverData(TypedDict):
    """A receiver as the store keeps it (``to_dict``); the older keys may be absent."""

    last: int
    held: list[list[Any]]  # [seq, frame] pairs waiting behind a gap, in seq order
    duplicates: int
    gaps: int
    reorders: int
    fifo: NotRequired[bool]
    above: NotRequired[list[int]]


@dataclass
class ChannelReceiver:
    """The receiving end of one channel: what it has delivered and what waits behind a gap."""

    last: int = 0
    held: dict[int, Any] = field(default_factory=dict)
    duplicates: int = 0  # frames dropped because they were already delivered or held
    gaps: int = 0  # times a frame arrived while its predecessor was missing
    reorders: int = 0  # frames delivered out of arrival order (held, then released) or out of seq order
    fifo: bool = True
    above: set[int] = field(default_factory=set)  # seqs delivered beyond ``last`` (unordered mode)

    def accept(self, seq: int, frame: Any) -> list[Any]:
        """Take one frame as the broker gave it; return the frames now deliverable, in order."""
        if seq <= self.last or seq in self.held or seq in self.above:
            self.duplicates += 1
            return []
        if seq != self.last + 1:
            self.gaps += 1
            if not self.fifo:
                self.reorders += 1
                self.above.add(seq)
                return [frame]
            self.held[seq] = frame
            return []
        ready = [frame]
        self.last = seq
        self._advance(ready)
        return ready

    def set_fifo(self, fifo: bool) -> list[Any]:
        """Switch mode; return the held frames that are deliverable now (in seq order)."""
        self.fifo = fifo
        if fifo or not self.held:
            return []
        released = []
        for seq in sorted(self.held):
            released.append(self.held.pop(seq))
            self.reorders += 1  # it arrived ahead of a missing frame and is delivered only now
            if seq == self.last + 1:
                self.last = seq
            else:
                self.above.add(seq)
        self._advance(released)
        return released

    def _advance(self, ready: list[Any]) -> None:
        """Move ``last`` over what is already delivered and deliver what was held right behind it."""
        while True:
            if self.last + 1 in self.above:
                self.above.remove(self.last + 1)
            elif self.last + 1 in self.held:
                ready.append(self.held.pop(self.last + 1))
                self.reorders += 1
            else:
                return
            self.last += 1

    def counters(self) -> dict[str, int]:
        return {
            "duplicates": self.duplicates,
            "gaps": self.gaps,
            "reorders": self.reorders,
            "held": len(self.held),
        }

    def to_dict(self) -> ReceiverData:
        return {
            "last": self.last,
            "held": [[seq, frame] for seq, frame in sorted(self.held.items())],
            "duplicates": self.duplicates,
            "gaps": self.gaps,
            "reorders": self.reorders,
            "fifo": self.fifo,
            "above": sorted(self.above),
        }

    @classmethod
    def from_dict(cls, data: ReceiverData) -> ChannelReceiver:
        """Load a receiver; dicts saved before unordered mode existed load as FIFO ones."""
        return cls(
            last=data["last"],
            held=dict(data["held"]),
            duplicates=data["duplicates"],
            gaps=data["gaps"],
            reorders=data["reorders"],
            fifo=data.get("fifo", True),
            above=set(data.get("above", [])),
        )
