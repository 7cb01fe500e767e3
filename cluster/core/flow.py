"""Credit-based flow control per channel: a sender whose channel is full is held back.

A channel's *window* is how many frames its sender may have sent that the receiver has
not applied yet. The receiver's worker publishes what it has applied; the sender's
worker compares that with what it has sent, and while any outgoing channel of a process
is full the process takes no workload step: it stops producing, as a task with no
credit on an output channel does in Flink's network stack, and a slow receiver slows
its senders instead of growing its queue without end. Everything a process does in
answer to an input still happens — it receives, and sends the markers and messages
that receiving causes — so nothing is ever held back out of FIFO order and a snapshot
passes a throttled run as it passes any other. Since the sender's view of "applied"
can only lag, it errs on the side of holding back: a channel never has more than a
window in flight from workload steps.

The run's windows share one budget of frames in flight (:data:`RUN_BUDGET`), so the
backlog a run can build stays bounded however many channels it has. That bound is what
keeps snapshots finishing: a marker waits at each hop about as long as the workers take
to apply the frames in flight ahead of it, and a budget of 2,048 let two workers on a
loaded machine (about 100 frames a second) keep a marker waiting over a minute across a
30-process graph. A channel gets at least :data:`MIN_WINDOW`: with one, a process would
wait for every frame it sends to be applied (and the news to come back) before its next step.

Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Mapping

RUN_BUDGET = 512  # frames in flight on all the run's channels together
MIN_WINDOW = 2  # a channel may always have this many in flight


def window(channels: int, budget: int = RUN_BUDGET) -> int:
    """The window of each channel of a run with ``channels`` channels."""
    return max(MIN_WINDOW, budget // max(1, channels))


def full_channels(sent: Mapping[str, int], applied: Mapping[str, int], window: int) -> list[str]:
    """The destinations whose channel has ``window`` frames or more in flight
    (``sent`` and ``applied`` by destination; a window of 0 means no flow control)."""
    if window <= 0:
        return []
    return sorted(dst for dst, n in sent.items() if n - applied.get(dst, 0) >= window)
