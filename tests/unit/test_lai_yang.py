"""Lai–Yang snapshots, which need no FIFO: the state machine (snapshots/algorithm.py),
the red piggyback and received sets of a process (cluster/process.py), and whole runs
on non-FIFO channels in the simulator, beside Chandy–Lamport on the same channels."""

from __future__ import annotations

import json
import random

import pytest

from cluster.process import Process
from cluster.simulator import Simulator
from snapshots import topology
from snapshots.algorithm import (
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
from tests.unit.checks import assert_snapshot_sound

LY = LAI_YANG


def p2() -> SnapshotProcess:
    """p2 of a three-process topology: channels p1→p2, p3→p2 in, p2→p1, p2→p3 out."""
    return SnapshotProcess("p2", incoming=["p3", "p1"], outgoing=["p3", "p1"])


# -- the state machine ----------------------------------------------------------------


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


def test_it_survives_a_round_trip_through_json_mid_snapshot() -> None:
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


# -- the process: frames and records ----------------------------------------------------


def bank(name: str, incoming: list[str], outgoing: list[str], balance: int = 100) -> Process:
    return Process(name, incoming, outgoing, "bank", {"balance": balance})


def transfer(src: str, dst: str, seq: int, amount: int, **extra: object) -> dict[str, object]:
    frame = {"kind": "message", "src": src, "dst": dst, "seq": seq, "payload": {"amount": amount}, "clock": {src: seq}}
    return {**frame, "epoch": 0, **extra}


def test_frames_sent_after_recording_are_red_and_markers_name_their_algorithm() -> None:
    p1 = bank("p1", ["p2"], ["p2"])
    [plain] = p1.act(random.Random(0), {}).sends
    assert "red" not in plain and plain["epoch"] == 0
    [marker] = p1.initiate(3, LY).sends
    assert marker == {"kind": "marker", "src": "p1", "dst": "p2", "seq": 2, "snapshot": 3, "epoch": 0,
                      "algorithm": LY, "red": [3]}  # fmt: skip
    [red] = p1.act(random.Random(0), {}).sends
    assert red["red"] == [3]
    [cl_marker] = p1.initiate(4).sends
    assert "algorithm" not in cl_marker and cl_marker["red"] == [3]


def test_a_process_records_before_applying_a_red_message() -> None:
    p2 = bank("p2", ["p1"], ["p1"])
    step = p2.receive(transfer("p1", "p2", 1, 30, red=[5]))
    [record] = step.records
    assert record["snapshot"] == 5 and record["state"] == {"balance": 100}
    assert record["received"] == {"p1": 0} and record["clock"] == {}
    assert p2.state == {"balance": 130}
    assert [e["kind"] for e in step.events][:2] == ["record", "marker_send"]


def test_a_non_fifo_process_records_what_it_applied_beyond_the_prefix() -> None:
    p2 = bank("p2", ["p1"], ["p1"])
    p2.set_channel_modes({"p1"})
    p2.receive(transfer("p1", "p2", 3, 1))
    p2.receive(transfer("p1", "p2", 1, 1))
    p2.receive(transfer("p1", "p2", 5, 1))
    [record] = p2.initiate(1, LY).records
    assert record["received"] == {"p1": 1}
    assert record["received_above"] == {"p1": [3, 5]}
    # The marker of snapshot 1 from p1 is seq 6: seqs 2 and 4 are still on the way.
    step = p2.receive({"kind": "marker", "src": "p1", "dst": "p2", "seq": 6, "snapshot": 1, "epoch": 0,
                       "algorithm": LY})  # fmt: skip
    assert step.records == []
    p2.receive(transfer("p1", "p2", 4, 7))
    [closed] = p2.receive(transfer("p1", "p2", 2, 9)).records
    assert closed["messages"] == [{"seq": 2, "payload": {"amount": 9}}, {"seq": 4, "payload": {"amount": 7}}]
    assert (p2.applied, p2.applied_above) == ({"p1": 6}, {"p1": set()})


def test_a_fifo_process_has_nothing_above_its_prefix() -> None:
    p2 = bank("p2", ["p1"], ["p1"])
    p2.receive(transfer("p1", "p2", 2, 1))
    p2.receive(transfer("p1", "p2", 1, 1))
    [record] = p2.initiate(1).records
    assert record["received"] == {"p1": 2} and record["received_above"] == {}


# -- whole runs: a marker overtaken on non-FIFO channels --------------------------------


def overtaking(algorithm: str) -> Simulator:
    """p1 sends a transfer (seq 1), starts snapshot 1 (marker seq 2), sends another (seq 3),
    all on a non-FIFO p1→p2 that delivers them 3, 2, 1: the marker overtakes one transfer
    and is overtaken by the other."""
    sim = Simulator(topology.ring(2, value=100), seed=1, faults={"p1→p2": {"reorder": True}})
    sim.run_script([["act", "p1"], ["initiate", "p1", 1, algorithm], ["act", "p1"]])
    sim.deliver("p1", "p2", 2)
    sim.deliver("p1", "p2", 1)
    sim.stabilize()
    return sim


def test_chandy_lamport_on_a_non_fifo_channel_records_an_inconsistent_cut() -> None:
    sim = overtaking("chandy-lamport")
    verdict = sim.snapshot_export(1)["verdict"]
    assert not verdict["consistent"] and not verdict["conserved"]
    assert verdict["problems"][:2] == [
        (
            "p1→p2: p2 recorded receiving seq 3 from p1, which p1 sent after its cut (its marker was seq 2):"
            " the message overtook the marker — the channel is not FIFO"
        ),
        (
            "p1→p2: seq 1 was sent before p1 recorded and not received before p2 recorded,"
            " but the channel's recorded state does not hold it"
        ),
    ]


def test_lai_yang_on_the_same_channel_records_a_consistent_cut() -> None:
    sim = overtaking(LY)
    export = assert_snapshot_sound(sim, 1)
    p2 = export["processes"][1]
    # Seq 3 was red: p2 recorded before applying it, and the marker came before seq 1.
    assert (p2["state"], p2["received"], p2["received_above"]) == ({"balance": 100}, {"p1": 0}, {})
    p1_to_p2 = export["channels"][0]
    assert [m["seq"] for m in p1_to_p2["messages"]] == [1]
    assert export["algorithm"] == LY
