"""Exactly-once FIFO delivery on one channel, rebuilt from an at-least-once broker.

Every frame (application message or marker) on a channel carries ``seq``: 1, 2, 3 …,
never repeated. The broker may deliver a frame twice (redelivery after a crash or a
lost ack) or out of order (a warm shutdown restores prefetched messages in reverse;
a restored unacked message comes back behind newer ones). The receiver therefore
delivers seq ``last + 1`` only, drops anything it has already delivered or is already
holding (a duplicate), and holds back a frame that arrived ahead of a missing one
until the gap fills. It never applies out of order. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ChannelReceiver:
    """The receiving end of one channel: the last seq delivered and what waits behind a gap."""

    last: int = 0
    held: dict[int, Any] = field(default_factory=dict)
    duplicates: int = 0  # frames dropped because they were already delivered or held
    gaps: int = 0  # times a frame arrived while its predecessor was missing
    reorders: int = 0  # frames that arrived early, were held, and were delivered in order later

    def accept(self, seq: int, frame: Any) -> list[Any]:
        """Take one frame as the broker gave it; return the frames now deliverable, in order."""
        if seq <= self.last or seq in self.held:
            self.duplicates += 1
            return []
        if seq != self.last + 1:
            self.gaps += 1
            self.held[seq] = frame
            return []
        ready = [frame]
        self.last = seq
        while self.last + 1 in self.held:
            self.last += 1
            ready.append(self.held.pop(self.last))
            self.reorders += 1
        return ready

    def counters(self) -> dict[str, int]:
        return {
            "duplicates": self.duplicates,
            "gaps": self.gaps,
            "reorders": self.reorders,
            "held": len(self.held),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "last": self.last,
            "held": [[seq, frame] for seq, frame in sorted(self.held.items())],
            "duplicates": self.duplicates,
            "gaps": self.gaps,
            "reorders": self.reorders,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChannelReceiver:
        return cls(
            last=data["last"],
            held=dict(data["held"]),
            duplicates=data["duplicates"],
            gaps=data["gaps"],
            reorders=data["reorders"],
        )
