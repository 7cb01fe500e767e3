"""The pure process (cluster/core/process.py): a workload, the snapshot machine, FIFO
receivers and watchpoints, stepped one frame at a time.

Watchpoints: a condition at a process hits, and the caller may start a snapshot there in
the same step. Conditions are duck-typed (``.kind``, ``.evaluate``); here a tiny fake
stands in for ``cluster/core/conditions.py``, so these tests say what the process does
with any condition.

Lai–Yang: the red piggyback on the frames a process sends, and the received sets it
records (cluster/core/algorithm.py has the state machine itself).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from cluster.core import topology
from cluster.core.algorithm import LAI_YANG
from cluster.core.process import SimulatedProcess, Watch
from cluster.core.simulator import Simulator
from tests.unit.snapshot_checks import assert_snapshot_sound

LY = LAI_YANG


# -- watchpoints ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Fake:
    kind: str
    test: Callable[[dict[str, Any], dict[str, Any] | None, str | None], bool]

    def evaluate(
        self,
        state: dict[str, Any],
        message: dict[str, Any] | None = None,
        src: str | None = None,
        process: str | None = None,
    ) -> bool:
        return self.test(state, message, src)


def below(n: int) -> Fake:
    return Fake("state", lambda state, message, src: bool(state["balance"] < n))


def big_from(sender: str, n: int) -> Fake:
    return Fake("event", lambda state, message, src: src == sender and message is not None and message["amount"] > n)


def watch(wid: int, condition: Fake, process: str | None = None) -> Watch:
    return {"id": wid, "process": process, "condition": condition}


def transfer(seq: int, amount: int) -> dict[str, Any]:
    return {"kind": "message", "src": "p1", "dst": "p2", "seq": seq, "payload": {"amount": amount}, "clock": {},
            "epoch": 0}  # fmt: skip


def p2(balance: int = 10) -> SimulatedProcess:
    return SimulatedProcess("p2", ["p1"], ["p1"], "bank", {"balance": balance})


def test_a_state_watch_hits_on_the_step_that_makes_it_true_only() -> None:
    proc = p2()
    proc.watch([watch(1, Fake("state", lambda s, m, src: bool(s["balance"] >= 20)))])
    assert proc.receive(transfer(1, 5)).hits == []
    assert proc.receive(transfer(2, 5)).hits == [{"watchpoint": 1, "process": "p2", "detail": "balance = 20"}]
    assert proc.receive(transfer(3, 5)).hits == []  # still true: no new edge
    proc.state["balance"] = 0
    assert proc.act(random.Random(0), {}).hits == []  # false again: armed
    assert proc.receive(transfer(4, 30)).hits[0]["detail"] == "balance = 30"


def test_a_state_watch_already_true_hits_on_the_first_step() -> None:
    proc = p2(balance=3)
    proc.watch([watch(1, below(5))])
    assert len(proc.receive(transfer(1, 1)).hits) == 1


def test_an_event_watch_hits_on_every_message_that_satisfies_it() -> None:
    proc = p2()
    proc.watch([watch(7, big_from("p1", 50))])
    assert proc.receive(transfer(1, 10)).hits == []
    assert proc.receive(transfer(2, 55)).hits == [
        {"watchpoint": 7, "process": "p2", "detail": "message seq 2 from p1: {'amount': 55}"}
    ]
    assert len(proc.receive(transfer(3, 60)).hits) == 1


def test_a_watch_for_another_process_is_ignored() -> None:
    proc = p2()
    proc.watch([watch(1, big_from("p1", 0), process="p3"), watch(2, big_from("p1", 0), process="p2")])
    assert [h["watchpoint"] for h in proc.receive(transfer(1, 1)).hits] == [2]


def test_a_condition_that_fails_to_evaluate_does_not_hold() -> None:
    proc = p2()
    proc.watch(
        [
            watch(1, Fake("state", lambda s, m, src: bool(s["missing"]))),
            watch(2, Fake("event", lambda s, m, src: 1 / 0 > 0)),
        ]
    )
    step = proc.receive(transfer(1, 1))
    assert step.hits == [] and proc.state == {"balance": 11}


def test_the_edge_memory_survives_a_round_trip_but_the_watches_do_not() -> None:
    proc = p2(balance=3)
    proc.watch([watch(1, below(5))])
    proc.receive(transfer(1, 1))
    data = json.loads(json.dumps(proc.to_dict()))
    assert data["watch_last"] == {"1": True}
    restored = SimulatedProcess.from_dict(data)
    assert restored.watches == [] and restored.watch_last == {1: True}
    restored.watch([watch(1, below(5))])
    assert restored.receive(transfer(2, 0)).hits == []  # it was already true: no new edge
    # Watching a different list forgets the memory of the watches no longer there.
    restored.watch([watch(2, below(5))])
    assert restored.watch_last == {}


def test_a_stale_frame_evaluates_nothing() -> None:
    proc = p2(balance=3)
    proc.watch([watch(1, below(5))])
    assert proc.receive({**transfer(1, 1), "epoch": 4}).hits == []
    assert proc.watch_last == {}


def test_a_hit_may_start_a_snapshot_in_the_same_step() -> None:
    proc = p2()
    proc.watch([watch(1, big_from("p1", 50))])
    step = proc.receive(transfer(1, 90))
    step.extend(proc.initiate(3, "lai-yang"))
    assert [h["watchpoint"] for h in step.hits] == [1]
    [record] = step.records
    assert record["snapshot"] == 3 and record["state"] == {"balance": 100}
    assert [f["kind"] for f in step.sends] == ["marker"]


def test_in_the_simulator_a_watchpoint_starts_a_sound_snapshot_where_it_hit() -> None:
    sim = Simulator(topology.ring(4, value=50, two_way=True), seed=2, params={"max_amount": 30})
    sim.watch([watch(1, below(10), process="p3")], algorithm="lai-yang")
    sim.run_random(300)
    sim.stabilize()
    assert sim.hits and all(h["process"] == "p3" for h in sim.hits)
    assert len(sim.snapshots) == len(sim.hits)
    for snapshot in sim.snapshots:
        export = assert_snapshot_sound(sim, snapshot)
        p3 = next(p for p in export["processes"] if p["process"] == "p3")
        # Recorded in the step that made the condition true: what the watch saw.
        assert export["initiator"] == "p3" and p3["state"]["balance"] < 10


# -- Lai–Yang: red frames and received sets ------------------------------------------------


def bank(name: str, incoming: list[str], outgoing: list[str], balance: int = 100) -> SimulatedProcess:
    return SimulatedProcess(name, incoming, outgoing, "bank", {"balance": balance})


def transfer_frame(src: str, dst: str, seq: int, amount: int, **extra: object) -> dict[str, object]:
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
    step = p2.receive(transfer_frame("p1", "p2", 1, 30, red=[5]))
    [record] = step.records
    assert record["snapshot"] == 5 and record["state"] == {"balance": 100}
    assert record["received"] == {"p1": 0} and record["clock"] == {}
    assert p2.state == {"balance": 130}
    assert [e["kind"] for e in step.events][:2] == ["record", "marker_send"]


def test_a_non_fifo_process_records_what_it_applied_beyond_the_prefix() -> None:
    p2 = bank("p2", ["p1"], ["p1"])
    p2.set_channel_modes({"p1"})
    p2.receive(transfer_frame("p1", "p2", 3, 1))
    p2.receive(transfer_frame("p1", "p2", 1, 1))
    p2.receive(transfer_frame("p1", "p2", 5, 1))
    [record] = p2.initiate(1, LY).records
    assert record["received"] == {"p1": 1}
    assert record["received_above"] == {"p1": [3, 5]}
    # The marker of snapshot 1 from p1 is seq 6: seqs 2 and 4 are still on the way.
    step = p2.receive({"kind": "marker", "src": "p1", "dst": "p2", "seq": 6, "snapshot": 1, "epoch": 0,
                       "algorithm": LY})  # fmt: skip
    assert step.records == []
    p2.receive(transfer_frame("p1", "p2", 4, 7))
    [closed] = p2.receive(transfer_frame("p1", "p2", 2, 9)).records
    assert closed["messages"] == [{"seq": 2, "payload": {"amount": 9}}, {"seq": 4, "payload": {"amount": 7}}]
    assert (p2.applied, p2.applied_above) == ({"p1": 6}, {"p1": set()})


def test_a_fifo_process_has_nothing_above_its_prefix() -> None:
    p2 = bank("p2", ["p1"], ["p1"])
    p2.receive(transfer_frame("p1", "p2", 2, 1))
    p2.receive(transfer_frame("p1", "p2", 1, 1))
    [record] = p2.initiate(1).records
    assert record["received"] == {"p1": 2} and record["received_above"] == {}


# -- channel modes -------------------------------------------------------------------------


def test_a_process_switching_a_channel_to_non_fifo_applies_the_frames_it_held() -> None:
    proc = SimulatedProcess("p2", ["p1", "p3"], ["p1"], "bank", {"balance": 0})
    frame = {"kind": "message", "src": "p1", "dst": "p2", "seq": 2, "payload": {"amount": 5}, "clock": {}, "epoch": 0}
    assert proc.receive(frame).events == []  # held behind seq 1
    step = proc.set_channel_modes({"p1"})
    assert [(e["kind"], e["seq"]) for e in step.events] == [("receive", 2)]
    assert proc.state == {"balance": 5}
    assert (proc.applied, proc.applied_above) == ({"p1": 0, "p3": 0}, {"p1": {2}, "p3": set()})
    assert proc.receivers["p3"].fifo
    restored = SimulatedProcess.from_dict(json.loads(json.dumps(proc.to_dict())))
    assert restored.receivers["p1"].fifo is False and restored.applied_above["p1"] == {2}
    with pytest.raises(ValueError, match="p2 has no channel from p9"):
        proc.set_channel_modes({"p9"})
