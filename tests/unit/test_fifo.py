"""Exactly-once FIFO delivery rebuilt from an at-least-once broker (cluster/fifo.py)."""

from __future__ import annotations

import json

from cluster.fifo import ChannelReceiver


def test_it_delivers_frames_that_arrive_in_order_at_once() -> None:
    r = ChannelReceiver()
    assert r.accept(1, "a") == ["a"]
    assert r.accept(2, "b") == ["b"]
    assert r.last == 2
    assert r.counters() == {"duplicates": 0, "gaps": 0, "reorders": 0, "held": 0}


def test_it_drops_a_duplicate_of_a_delivered_frame() -> None:
    r = ChannelReceiver()
    r.accept(1, "a")
    r.accept(2, "b")
    assert r.accept(1, "a") == []
    assert r.accept(2, "b") == []
    assert r.last == 2
    assert r.counters()["duplicates"] == 2


def test_it_drops_a_duplicate_of_a_held_frame() -> None:
    r = ChannelReceiver()
    r.accept(3, "c")
    assert r.accept(3, "c") == []
    assert r.counters() == {"duplicates": 1, "gaps": 1, "reorders": 0, "held": 1}
    # The held frame is still delivered once, when the gap fills.
    assert r.accept(1, "a") == ["a"]
    assert r.accept(2, "b") == ["b", "c"]


def test_it_holds_a_frame_behind_a_gap_and_delivers_nothing() -> None:
    r = ChannelReceiver()
    r.accept(1, "a")
    assert r.accept(3, "c") == []
    assert r.last == 1
    assert r.counters() == {"duplicates": 0, "gaps": 1, "reorders": 0, "held": 1}


def test_it_delivers_reordered_frames_in_seq_order_once_the_gap_fills() -> None:
    r = ChannelReceiver()
    assert r.accept(4, "d") == []
    assert r.accept(2, "b") == []
    assert r.accept(3, "c") == []
    assert r.accept(1, "a") == ["a", "b", "c", "d"]
    assert r.last == 4
    assert r.counters() == {"duplicates": 0, "gaps": 3, "reorders": 3, "held": 0}


def test_it_delivers_up_to_the_next_gap_only() -> None:
    r = ChannelReceiver()
    r.accept(2, "b")
    r.accept(4, "d")
    assert r.accept(1, "a") == ["a", "b"]
    assert r.counters()["held"] == 1
    assert r.accept(3, "c") == ["c", "d"]


def test_it_survives_a_round_trip_through_json_while_holding_frames() -> None:
    r = ChannelReceiver()
    r.accept(1, {"kind": "message", "seq": 1})
    r.accept(1, {"kind": "message", "seq": 1})
    r.accept(3, {"kind": "marker", "seq": 3})
    restored = ChannelReceiver.from_dict(json.loads(json.dumps(r.to_dict())))
    assert restored == r
    assert restored.accept(2, {"kind": "message", "seq": 2}) == [
        {"kind": "message", "seq": 2},
        {"kind": "marker", "seq": 3},
    ]
