"""Channel faults at the sender (cluster/core/links.py): delay, reordering, loss."""

from __future__ import annotations

import random

from cluster.core.links import REORDER_JITTER_MS, Fault, Links


def _frames(n: int, src: str = "p1", dst: str = "p2") -> list[dict[str, object]]:
    return [{"kind": "message", "src": src, "dst": dst, "seq": i} for i in range(1, n + 1)]


def test_a_channel_without_faults_sends_everything_at_once_in_order() -> None:
    links = Links(random.Random(1))
    links.set_faults(7, {"p2→p3": {"delay_ms": 100}})
    frames = _frames(5)
    assert links.route(7, frames, now=0.0) == frames
    assert links.route(8, frames, now=0.0) == frames  # a run without faults at all
    assert links.waiting() == 0


def test_a_delayed_channel_holds_frames_for_exactly_its_delay_and_keeps_their_order() -> None:
    links = Links(random.Random(1))
    links.set_faults(1, {"p1→p2": {"delay_ms": 100}})
    assert links.route(1, _frames(3), now=10.0) == []
    assert links.due(10.099) == {}
    assert [f["seq"] for f in links.due(10.1)[1]] == [1, 2, 3]
    assert links.waiting() == 0


def test_a_reordering_channel_lets_later_frames_overtake_earlier_ones() -> None:
    links = Links(random.Random(3))
    links.set_faults(1, {"p1→p2": {"reorder": True}})
    assert links.route(1, _frames(50), now=0.0) == []
    arrived = [f["seq"] for f in links.due(REORDER_JITTER_MS / 1000)[1]]
    assert sorted(arrived) == list(range(1, 51))  # every frame, once
    assert arrived != sorted(arrived)  # but not in the order sent


def test_a_lossy_channel_loses_about_its_share_and_counts_each_loss() -> None:
    links = Links(random.Random(5))
    links.set_faults(1, {"p1→p2": {"loss": 0.3}})
    sent = links.route(1, _frames(1000), now=0.0)
    lost = links.take_lost()[1]["p1→p2"]
    assert lost + len(sent) == 1000
    assert 240 < lost < 360
    assert links.take_lost() == {}  # taken once


def test_forgetting_a_run_drops_its_held_frames_only() -> None:
    links = Links(random.Random(1))
    for run in (1, 2):
        links.set_faults(run, {"p1→p2": {"delay_ms": 50}})
        links.route(run, _frames(2), now=0.0)
    links.forget(1)
    assert list(links.due(1.0)) == [2]
    assert links.fault(1, "p1", "p2") is None
    assert links.fault(2, "p1", "p2") == Fault(delay_ms=50)


def test_the_longest_wait_of_a_fault() -> None:
    assert Fault(delay_ms=300, reorder=True).max_delay() == (300 + REORDER_JITTER_MS) / 1000
    assert Fault().max_delay() == 0 and not Fault(loss=0.5).holds_back
