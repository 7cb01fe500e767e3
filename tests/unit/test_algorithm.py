"""The per-process Chandy–Lamport state machine, input by input (snapshots/algorithm.py)."""

from __future__ import annotations

import json

import pytest

from snapshots.algorithm import (
    ChannelClosed,
    LocalSnapshotDone,
    ProtocolError,
    RecordChannelMessage,
    RecordLocalState,
    SendMarker,
    SnapshotProcess,
    StartRecording,
)


def p2() -> SnapshotProcess:
    """p2 of a three-process topology: channels p1→p2, p3→p2 in, p2→p1, p2→p3 out."""
    return SnapshotProcess("p2", incoming=["p3", "p1"], outgoing=["p3", "p1"])


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
