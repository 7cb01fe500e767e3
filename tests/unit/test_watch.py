"""Watchpoints in the pure process (cluster/process.py): a condition at a process hits,
and the caller may start a snapshot there in the same step.

Conditions are duck-typed (``.kind``, ``.evaluate``); here a tiny fake stands in for
``snapshots/conditions.py``, so these tests say what the process does with any condition.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cluster.process import Process, Watch
from cluster.simulator import Simulator
from snapshots import topology
from tests.unit.checks import assert_snapshot_sound


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


def p2(balance: int = 10) -> Process:
    return Process("p2", ["p1"], ["p1"], "bank", {"balance": balance})


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
    restored = Process.from_dict(data)
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
