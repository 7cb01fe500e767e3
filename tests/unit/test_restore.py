"""Restoring a run from a complete snapshot (cluster/core/restore.py), in the simulator and by hand."""

from __future__ import annotations

from typing import Any

import pytest

from cluster.core import topology
from cluster.core.process import SimulatedProcess
from cluster.core.restore import restore_processes
from cluster.core.simulator import Simulator
from cluster.core.workloads import state_value
from tests.unit.snapshot_checks import assert_snapshot_sound


def sim_with_snapshot(seed: int = 4, algorithm: str = "chandy-lamport") -> Simulator:
    sim = Simulator(topology.complete(4, value=100), seed=seed, params={"max_amount": 40})
    sim.run_random(60)
    sim.initiate("p2", 1, algorithm)
    sim.run_random(60)
    return sim


def ring_records() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A snapshot of the two-bank ring with $7 and $3 (seqs 5, 6) in p1→p2 and a marker of
    snapshot 9 (seq 4) with them; p2 had applied up to seq 3 and seq 7 beyond it."""
    processes = [
        {"process": "p1", "state": {"balance": 40}, "sent": {"p2": 6}, "received": {"p2": 2},
         "received_above": {}, "clock": {"p1": 8, "p2": 2}},
        {"process": "p2", "state": {"balance": 150}, "sent": {"p1": 2}, "received": {"p1": 3},
         "received_above": {"p1": [7]}, "clock": {"p1": 3, "p2": 6}},
    ]  # fmt: skip
    channels = [
        {"src": "p1", "dst": "p2", "markers": [{"seq": 4, "snapshot": 9}],
         "messages": [{"seq": 6, "payload": {"amount": 3}}, {"seq": 5, "payload": {"amount": 7}}]},
        {"src": "p2", "dst": "p1", "messages": [], "markers": []},
    ]  # fmt: skip
    return processes, channels


def current() -> dict[str, dict[str, Any]]:
    p1 = SimulatedProcess("p1", ["p2"], ["p2"], "bank", {"balance": 1})
    p2 = SimulatedProcess("p2", ["p1"], ["p1"], "bank", {"balance": 2})
    p1.counters["messages_sent"] = 99
    p2.set_channel_modes({"p1"})
    p2.receivers["p1"].duplicates = 5
    p2.receivers["p1"].above = {12}
    return {"p1": p1.to_dict(), "p2": p2.to_dict()}


def test_recorded_channel_messages_are_renumbered_after_the_receivers_prefix() -> None:
    processes, channels = ring_records()
    restored = restore_processes(["p1", "p2"], [("p1", "p2"), ("p2", "p1")], "bank", 3, processes, channels, current())
    p1, p2 = restored["p1"], restored["p2"]
    assert p1["outbox"] == [
        {"kind": "message", "src": "p1", "dst": "p2", "seq": 4, "payload": {"amount": 7},
         "clock": {"p1": 8, "p2": 2}, "epoch": 3},
        {"kind": "message", "src": "p1", "dst": "p2", "seq": 5, "payload": {"amount": 3},
         "clock": {"p1": 8, "p2": 2}, "epoch": 3},
    ]  # fmt: skip
    assert p1["sent"] == {"p2": 5} and p2["sent"] == {"p1": 2}
    assert p2["applied"] == {"p1": 3} and p2["applied_above"] == {}
    assert p2["receivers"]["p1"] == {"last": 3, "held": [], "duplicates": 5, "gaps": 0, "reorders": 0,
                                     "fifo": False, "above": []}  # fmt: skip
    assert p2["outbox"] == []
    assert (p1["state"], p1["clock"], p1["epoch"]) == ({"balance": 40}, {"p1": 8, "p2": 2}, 3)


def test_machines_start_fresh_and_counters_go_on() -> None:
    processes, channels = ring_records()
    now = current()
    now["p1"]["watch_last"] = {"4": True}
    now["p1"]["snapshots"]["finished"] = [1, 2]
    restored = restore_processes(["p1", "p2"], [("p1", "p2"), ("p2", "p1")], "bank", 1, processes, channels, now)
    p1 = SimulatedProcess.from_dict({k: v for k, v in restored["p1"].items() if k != "outbox"})
    assert p1.snapshots.active == {} and p1.snapshots.finished == set() and p1.snapshots.red == []
    assert p1.watch_last == {}
    assert p1.counters["messages_sent"] == 99 and p1.counters["restores"] == 1


def test_an_incomplete_snapshot_cannot_be_restored() -> None:
    processes, channels = ring_records()
    with pytest.raises(ValueError, match="incomplete snapshot: nothing recorded for p2, p2→p1"):
        restore_processes(["p1", "p2"], [("p1", "p2"), ("p2", "p1")], "bank", 1, processes[:1], channels[:1], {})


@pytest.mark.parametrize("algorithm", ["chandy-lamport", "lai-yang"])
def test_a_restored_run_goes_on_and_its_next_snapshot_is_sound(algorithm: str) -> None:
    sim = sim_with_snapshot(algorithm=algorithm)
    sim.stabilize()
    recorded = assert_snapshot_sound(sim, 1)
    sim.run_random(40)  # the run moves on, and leaves frames on the way
    in_flight = sum(len(q) for q in sim.channels.values())
    assert in_flight > 0
    counters_before = sim.channel_counters()

    assert sim.restore(1) == 1
    # Right after the restore every process is as recorded and the channels hold the recorded messages.
    for rec in recorded["processes"]:
        assert sim.processes[rec["process"]].state == rec["state"]
    replayed = [f for q in sim.channels.values() for f in q if f["epoch"] == 1]
    assert len(replayed) == sum(len(c["messages"]) for c in recorded["channels"])
    assert sim.live_total() == sim.expected_total

    sim.run_random(150)
    sim.initiate("p3", 2, algorithm)
    sim.run_random(100)
    sim.stabilize()
    assert_snapshot_sound(sim, 2)
    # The old frames were dropped as stale; the new numbering is exactly-once: no duplicate, no gap.
    assert sum(p.counters["stale"] for p in sim.processes.values()) == in_flight
    assert sim.channel_counters() == counters_before
    assert all(p.counters["restores"] == 1 for p in sim.processes.values())
    assert sum(state_value(sim.workload, p.state) for p in sim.processes.values()) == sim.expected_total


def test_restoring_from_a_snapshot_taken_on_non_fifo_channels() -> None:
    # received_above in the records: the renumbering makes every channel contiguous again.
    topo = topology.ring(3, value=100, two_way=True)
    faults = {f"{s}→{d}": {"reorder": True} for s, d in topo["channels"]}
    sim = Simulator(topo, seed=13, params={"max_amount": 30}, faults=faults)
    sim.run_random(40)
    sim.initiate("p1", 1, "lai-yang")
    sim.run_random(40)
    sim.stabilize()
    export = assert_snapshot_sound(sim, 1)
    assert any(p["received_above"] for p in export["processes"])
    sim.restore(1)
    assert all(not p.applied_above[src] for p in sim.processes.values() for src in p.incoming)
    sim.run_random(100)
    sim.initiate("p2", 2, "lai-yang")
    sim.run_random(100)
    sim.stabilize()
    assert_snapshot_sound(sim, 2)
    assert sum(c["duplicates"] for c in sim.channel_counters().values()) == 0


def test_a_running_snapshot_cannot_be_restored_in_the_simulator() -> None:
    sim = sim_with_snapshot()
    with pytest.raises(ValueError, match="snapshot 1 is not complete"):
        sim.restore(1)
