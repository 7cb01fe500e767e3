"""The per-process snapshot state machine, input by input (cluster/core/algorithm.py).

First Chandy–Lamport, which needs FIFO channels; then Lai–Yang, which does not: its
markers say which seqs the channel must still deliver, and "red" frames (sent after the
sender recorded) make a process record before it applies them.
"""

from __future__ import annotations

import json

import pytest

from cluster.core.algorithm import (
    LAI_YANG,
    RED_KEPT,
    ChannelClosed,
    LocalSnapshotDone,
    ProtocolError,
    RecordChannelMessage,
    RecordLocalState,
    SendMarker,
    SnapshotProcess,
    StartRecording,
)

LY = LAI_YANG


def p2() -> SnapshotProcess:
    """p2 of a three-process topology: channels p1→p2, p3→p2 in, p2→p1, p2→p3 out."""
    return SnapshotProcess("p2", incoming=["p3", "p1"], outgoing=["p3", "p1"])


# -- Chandy–Lamport ------------------------------------------------------------------------


def test_initiate_records_local_state_before_sending_any_marker() -> None:
    effects = p2().initiate(7)
    assert effects[0] == RecordLocalState(7)
    assert effects[1:3] == [SendMarker(7, "p1"), SendMarker(7, "p3")]
    assert effects[3:] == [StartRecording(7, "p1"), StartRecording(7, "p3")]


def test_first_marker_records_local_state_before_sending_any_marker() -> None:
    effects = p2().on_marker(7, "p1", seq=4)
    kinds = [type(e) for e in effects]
    assert kinds[0] is RecordLocalState
    assert kinds.index(RecordLocalState) < min(i for i, k in enumerate(kinds) if k is SendMarker)
    assert [e for e in effects if isinstance(e, SendMarker)] == [SendMarker(7, "p1"), SendMarker(7, "p3")]


def test_it_records_channel_a_marker_came_on_as_empty() -> None:
    proc = p2()
    effects = proc.on_marker(7, "p1", seq=4)
    assert ChannelClosed(7, "p1", (), ()) in effects
    assert StartRecording(7, "p3") in effects
    assert StartRecording(7, "p1") not in effects
    assert proc.recording(7) == ("p3",)


def test_it_records_messages_arriving_on_open_channels_until_their_marker() -> None:
    proc = p2()
    proc.initiate(1)
    assert proc.on_message("p3", 5, {"amount": 10}) == [RecordChannelMessage(1, "p3", 5, {"amount": 10})]
    assert proc.on_message("p3", 6, {"amount": 2}) == [RecordChannelMessage(1, "p3", 6, {"amount": 2})]
    assert proc.on_marker(1, "p3", seq=7) == [ChannelClosed(1, "p3", ((5, {"amount": 10}), (6, {"amount": 2})), ())]
    # The channel is closed now: later messages on it belong to no snapshot.
    assert proc.on_message("p3", 8, {"amount": 1}) == []


def test_it_records_nothing_when_no_snapshot_is_running() -> None:
    assert p2().on_message("p1", 1, {"amount": 5}) == []


def test_it_is_done_when_the_last_incoming_channel_closes() -> None:
    proc = p2()
    proc.initiate(1)
    assert proc.on_marker(1, "p1", seq=1) == [ChannelClosed(1, "p1", (), ())]
    assert proc.on_marker(1, "p3", seq=1) == [ChannelClosed(1, "p3", (), ()), LocalSnapshotDone(1)]
    assert proc.recording(1) == ()
    assert proc.finished == {1}


def test_a_process_with_one_incoming_channel_is_done_on_its_first_marker() -> None:
    proc = SnapshotProcess("p2", incoming=["p1"], outgoing=["p3"])
    assert proc.on_marker(3, "p1", seq=9) == [
        RecordLocalState(3),
        SendMarker(3, "p3"),
        ChannelClosed(3, "p1", (), ()),
        LocalSnapshotDone(3),
    ]


def test_duplicate_initiate_does_nothing() -> None:
    proc = p2()
    proc.initiate(1)
    assert proc.initiate(1) == []


def test_initiate_of_a_snapshot_already_started_by_a_marker_does_nothing() -> None:
    proc = p2()
    proc.on_marker(1, "p1", seq=1)
    assert proc.initiate(1) == []


def test_initiate_of_a_finished_snapshot_does_nothing() -> None:
    proc = p2()
    proc.initiate(1)
    proc.on_marker(1, "p1", seq=1)
    proc.on_marker(1, "p3", seq=1)
    assert proc.initiate(1) == []


def test_a_second_marker_on_a_closed_channel_is_a_protocol_error() -> None:
    # Only a duplicated frame can do this; fifo.py drops those before they get here.
    proc = p2()
    proc.initiate(1)
    proc.on_marker(1, "p1", seq=1)
    with pytest.raises(ProtocolError, match="already closed"):
        proc.on_marker(1, "p1", seq=2)


def test_input_on_a_channel_it_does_not_have_is_a_protocol_error() -> None:
    proc = p2()
    with pytest.raises(ProtocolError, match="no channel from p9"):
        proc.on_marker(1, "p9")
    with pytest.raises(ProtocolError, match="no channel from p9"):
        proc.on_message("p9", 1, {})


def test_concurrent_snapshots_record_independently() -> None:
    proc = p2()
    proc.initiate(1)
    proc.on_marker(2, "p1", seq=3)  # snapshot 2 starts with p1→p2 already closed
    # Snapshot 1 records the marker of 2 on p1→p2 (it occupies seq 3 of the channel).
    assert proc.on_message("p1", 4, "a") == [RecordChannelMessage(1, "p1", 4, "a")]
    assert proc.on_message("p3", 1, "b") == [
        RecordChannelMessage(1, "p3", 1, "b"),
        RecordChannelMessage(2, "p3", 1, "b"),
    ]
    # Closing p1→p2 for 1 leaves snapshot 2 untouched.
    assert proc.on_marker(1, "p1", seq=5) == [ChannelClosed(1, "p1", ((4, "a"),), ((3, 2),))]
    assert proc.recording(1) == ("p3",)
    assert proc.recording(2) == ("p3",)
    # The marker of 1 on p3→p2 passes through snapshot 2's recording as a marker.
    assert proc.on_marker(1, "p3", seq=2) == [ChannelClosed(1, "p3", ((1, "b"),), ()), LocalSnapshotDone(1)]
    assert proc.on_message("p3", 3, "c") == [RecordChannelMessage(2, "p3", 3, "c")]
    assert proc.on_marker(2, "p3", seq=4) == [
        ChannelClosed(2, "p3", ((1, "b"), (3, "c")), ((2, 1),)),
        LocalSnapshotDone(2),
    ]


def test_it_survives_a_round_trip_through_json_mid_snapshot() -> None:
    proc = p2()
    proc.initiate(1)
    proc.on_message("p3", 1, {"amount": 4})
    proc.on_marker(2, "p3", seq=2)
    proc.on_marker(1, "p1", seq=1)
    proc.on_marker(3, "p1", seq=2)
    proc.on_marker(3, "p3", seq=3)
    restored = SnapshotProcess.from_dict(json.loads(json.dumps(proc.to_dict())))
    assert restored.to_dict() == proc.to_dict()
    assert restored.finished == {3}
    # The restored machine carries on exactly as the original does.
    expected = carry_on(proc)
    assert carry_on(restored) == expected
    assert expected[2] == [ChannelClosed(1, "p3", ((1, {"amount": 4}),), ((2, 2), (3, 3))), LocalSnapshotDone(1)]


def carry_on(proc: SnapshotProcess) -> list[object]:
    return [
        proc.on_message("p1", 3, {"amount": 1}),
        proc.on_marker(2, "p1", seq=4),
        proc.on_marker(1, "p3", seq=5),
        proc.to_dict(),
    ]


# -- Lai–Yang ------------------------------------------------------------------------------


def test_initiate_records_then_sends_lai_yang_markers() -> None:
    proc = p2()
    assert proc.initiate(7, LY) == [
        RecordLocalState(7),
        SendMarker(7, "p1", LY),
        SendMarker(7, "p3", LY),
        StartRecording(7, "p1"),
        StartRecording(7, "p3"),
    ]
    assert proc.red == [7]
    assert proc.algorithm(7) == LY


def test_an_unknown_algorithm_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="unknown snapshot algorithm 'paxos'"):
        p2().initiate(1, "paxos")


def test_a_red_frame_makes_it_record_before_the_frame_is_applied() -> None:
    proc = p2()
    effects = proc.on_red("p1", [4])
    assert effects[0] == RecordLocalState(4)
    assert SendMarker(4, "p3", LY) in effects
    # No marker came yet: every channel is open, p1→p2 included.
    assert proc.recording(4) == ("p1", "p3")
    # The red message itself then belongs to no channel state: it was sent after p1's cut.
    assert proc.on_message("p1", 9, {"amount": 5}, red=[4]) == []
    # Red for a snapshot it already recorded (or finished): nothing more.
    assert proc.on_red("p3", [4]) == []


def test_it_records_white_messages_and_skips_red_ones() -> None:
    proc = p2()
    proc.initiate(1, LY)
    assert proc.on_message("p3", 5, "white") == [RecordChannelMessage(1, "p3", 5, "white")]
    assert proc.on_message("p3", 8, "red", red=[1]) == []
    # Red for another snapshot is still white for this one.
    assert proc.on_message("p3", 6, "white too", red=[9]) == [RecordChannelMessage(1, "p3", 6, "white too")]


def test_a_channel_waits_for_the_white_messages_the_marker_overtook() -> None:
    proc = p2()
    proc.initiate(1, LY)
    # The marker on p3→p2 is seq 7, but seqs 4 and 6 have not arrived yet.
    assert proc.on_marker(1, "p3", seq=7, algorithm=LY, missing=[4, 6]) == []
    assert proc.recording(1) == ("p1", "p3")
    assert proc.on_message("p3", 6, "six") == [RecordChannelMessage(1, "p3", 6, "six")]
    # A frame after the marker is red by its seq, even without the red list (it was sent after p3's cut).
    assert proc.on_message("p3", 8, "eight") == []
    assert proc.on_message("p3", 4, "four") == [
        RecordChannelMessage(1, "p3", 4, "four"),
        ChannelClosed(1, "p3", ((4, "four"), (6, "six")), ()),
    ]


def test_a_missing_seq_may_be_filled_by_another_snapshots_marker() -> None:
    proc = p2()
    proc.initiate(1, LY)
    proc.on_marker(1, "p3", seq=3, algorithm=LY, missing=[2])
    effects = proc.on_marker(5, "p3", seq=2)
    # Snapshot 1 closes first; then the marker starts snapshot 5 here, as usual.
    assert effects[:2] == [ChannelClosed(1, "p3", (), ((2, 5),)), RecordLocalState(5)]


def test_other_snapshots_markers_count_only_below_the_marker() -> None:
    proc = p2()
    proc.initiate(1, LY)
    proc.on_marker(2, "p1", seq=9, missing=[])  # a Chandy–Lamport snapshot's marker, after p1's cut of 1
    proc.on_marker(3, "p1", seq=2, missing=[])  # one before it
    effects = proc.on_marker(1, "p1", seq=5, algorithm=LY, missing=[1, 3, 4])
    assert effects == []
    proc.on_message("p1", 4, "d")
    proc.on_message("p1", 1, "a")
    assert proc.on_message("p1", 3, "c") == [
        RecordChannelMessage(1, "p1", 3, "c"),
        ChannelClosed(1, "p1", ((1, "a"), (3, "c"), (4, "d")), ((2, 3),)),
    ]


def test_the_marker_that_starts_it_closes_its_channel_only_when_nothing_is_missing() -> None:
    proc = SnapshotProcess("p2", incoming=["p1"], outgoing=["p3"])
    assert proc.on_marker(3, "p1", seq=4, algorithm=LY, missing=[2]) == [
        RecordLocalState(3),
        SendMarker(3, "p3", LY),
        StartRecording(3, "p1"),
    ]
    assert proc.on_message("p1", 2, "b") == [
        RecordChannelMessage(3, "p1", 2, "b"),
        ChannelClosed(3, "p1", ((2, "b"),), ()),
        LocalSnapshotDone(3),
    ]
    other = SnapshotProcess("p2", incoming=["p1"], outgoing=["p3"])
    assert other.on_marker(3, "p1", seq=4, algorithm=LY) == [
        RecordLocalState(3),
        SendMarker(3, "p3", LY),
        ChannelClosed(3, "p1", (), ()),
        LocalSnapshotDone(3),
    ]


def test_a_second_lai_yang_marker_on_a_channel_is_a_protocol_error() -> None:
    proc = p2()
    proc.initiate(1, LY)
    proc.on_marker(1, "p1", seq=3, algorithm=LY, missing=[2])
    with pytest.raises(ProtocolError, match="already closed"):
        proc.on_marker(1, "p1", seq=3, algorithm=LY, missing=[2])


def test_it_keeps_being_red_for_the_most_recent_snapshots_only() -> None:
    proc = p2()
    for s in range(1, RED_KEPT + 11):
        proc.initiate(s, LY)
    assert proc.red == list(range(11, RED_KEPT + 11))
    proc.initiate(1000)  # Chandy–Lamport snapshots paint nothing
    assert proc.red[-1] == RED_KEPT + 10


def test_it_survives_a_round_trip_through_json_mid_lai_yang_snapshot() -> None:
    proc = p2()
    proc.initiate(1, LY)
    proc.on_message("p3", 2, {"amount": 4})
    proc.on_marker(1, "p3", seq=4, algorithm=LY, missing=[1, 3])
    proc.on_marker(2, "p1", seq=1)
    restored = SnapshotProcess.from_dict(json.loads(json.dumps(proc.to_dict())))
    assert restored.to_dict() == proc.to_dict()

    def carry_on(p: SnapshotProcess) -> list[object]:
        return [p.on_message("p3", 3, "x"), p.on_message("p3", 1, "y", red=[2]), p.on_marker(1, "p1", 2, LY)]

    assert carry_on(restored) == carry_on(proc)


def test_a_machine_saved_before_lai_yang_loads_as_chandy_lamport() -> None:
    old = {
        "name": "p2",
        "incoming": ["p1", "p3"],
        "outgoing": ["p1", "p3"],
        "active": {"1": {"open": {"p3": [[5, "m"]]}, "markers": {"p3": []}}},
        "finished": [],
    }
    proc = SnapshotProcess.from_dict(old)
    assert proc.algorithm(1) == "chandy-lamport" and proc.red == []
    assert proc.on_marker(1, "p3", seq=6) == [ChannelClosed(1, "p3", ((5, "m"),), ()), LocalSnapshotDone(1)]
