"""Exactly-once FIFO delivery rebuilt from an at-least-once broker (cluster/core/fifo.py)."""

from __future__ import annotations

import json

from cluster.core.fifo import ChannelReceiver


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


# -- unordered mode (a channel with the reorder fault) ----------------------------------


def test_unordered_it_delivers_every_new_seq_at_once() -> None:
    r = ChannelReceiver(fifo=False)
    assert r.accept(3, "c") == ["c"]
    assert r.accept(1, "a") == ["a"]
    assert (r.last, r.above) == (1, {3})
    assert r.accept(2, "b") == ["b"]
    assert (r.last, r.above) == (3, set())
    assert r.counters() == {"duplicates": 0, "gaps": 1, "reorders": 1, "held": 0}


def test_unordered_it_still_drops_duplicates() -> None:
    r = ChannelReceiver(fifo=False)
    r.accept(1, "a")
    r.accept(4, "d")
    assert r.accept(1, "a") == []
    assert r.accept(4, "d") == []
    assert r.counters()["duplicates"] == 2


def test_turning_unordered_releases_what_was_held() -> None:
    r = ChannelReceiver()
    r.accept(1, "a")
    r.accept(3, "c")
    r.accept(5, "e")
    assert r.set_fifo(False) == ["c", "e"]
    assert (r.last, r.above, r.held) == (1, {3, 5}, {})
    assert r.accept(2, "b") == ["b"]
    assert (r.last, r.above) == (3, {5})


def test_turning_fifo_again_skips_what_was_already_delivered() -> None:
    r = ChannelReceiver(fifo=False)
    r.accept(2, "b")
    r.accept(4, "d")
    assert r.set_fifo(True) == []
    assert r.accept(5, "e") == []  # held: 1 and 3 are missing
    assert r.accept(4, "d") == []  # already delivered
    assert r.accept(1, "a") == ["a"]
    assert r.accept(3, "c") == ["c", "e"]
    assert (r.last, r.above, r.held) == (5, set(), {})


def test_unordered_it_survives_a_round_trip_through_json() -> None:
    r = ChannelReceiver(fifo=False)
    r.accept(2, "b")
    restored = ChannelReceiver.from_dict(json.loads(json.dumps(r.to_dict())))
    assert restored == r
    assert restored.accept(2, "b") == [] and restored.accept(1, "a") == ["a"]


def test_a_receiver_saved_before_unordered_mode_loads_as_fifo() -> None:
    old = {"last": 1, "held": [[3, "c"]], "duplicates": 0, "gaps": 1, "reorders": 0}
    r = ChannelReceiver.from_dict(old)
    assert r.fifo and r.above == set()
    assert r.accept(2, "b") == ["b", "c"]
