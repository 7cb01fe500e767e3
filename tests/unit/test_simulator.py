"""The in-memory simulator (cluster/simulator.py): moves, determinism, faults, export."""

from __future__ import annotations

import random

import pytest

from cluster.simulator import Simulator
from cluster.workloads import state_value
from snapshots import topology
from snapshots.algorithm import ProtocolError
from snapshots.topology import TopologyError
from tests.unit.checks import assert_snapshot_sound


def two_banks(fifo: bool = True) -> Simulator:
    return Simulator(topology.ring(2, value=100), seed=1, params={"max_amount": 10}, fifo=fifo)


def balances(sim: Simulator) -> dict[str, int]:
    return {name: state_value(sim.workload, p.state) for name, p in sim.processes.items()}


def test_act_queues_the_transfer_on_its_channel() -> None:
    sim = two_banks()
    step = sim.act("p1")
    [frame] = step.sends
    assert sim.in_flight("p1", "p2") == [frame]
    assert frame["kind"] == "message" and frame["seq"] == 1
    assert balances(sim)["p1"] == 100 - frame["payload"]["amount"]
    assert sim.live_total() == 200


def test_deliver_hands_the_head_frame_to_its_destination() -> None:
    sim = two_banks()
    first = sim.act("p1").sends[0]
    sim.act("p1")
    sim.deliver("p1", "p2")
    assert balances(sim)["p2"] == 100 + first["payload"]["amount"]
    assert [f["seq"] for f in sim.in_flight("p1", "p2")] == [2]


def test_deliver_refuses_an_empty_or_unknown_channel() -> None:
    sim = two_banks()
    with pytest.raises(ValueError, match="channel p1→p2 is empty"):
        sim.deliver("p1", "p2")
    with pytest.raises(ValueError, match="no channel p1→p3"):
        sim.deliver("p1", "p3")
    with pytest.raises(ValueError, match="no process 'p9'"):
        sim.act("p9")


def test_it_refuses_a_topology_that_is_not_strongly_connected() -> None:
    with pytest.raises(TopologyError, match="cannot reach"):
        Simulator({"name": "x", "processes": [{"name": "a"}, {"name": "b"}], "channels": [["a", "b"]]})


def test_stabilize_delivers_everything_without_new_transfers() -> None:
    sim = Simulator(topology.complete(4), seed=5)
    sim.run_random(100)
    in_flight = sum(len(q) for q in sim.channels.values())
    sent_before = sum(len(log) for log in sim.sent_log.values())
    assert sim.stabilize() == in_flight > 0
    assert all(not q for q in sim.channels.values())
    assert sum(len(log) for log in sim.sent_log.values()) == sent_before
    assert sum(balances(sim).values()) == 400


def test_initiate_numbers_snapshots_and_ignores_a_repeat() -> None:
    sim = two_banks()
    assert sim.initiate("p1") == 1
    assert sim.initiate("p2") == 2
    frames_before = sim.in_flight("p1", "p2")
    assert sim.initiate("p1", 1) == 1
    assert sim.in_flight("p1", "p2") == frames_before


def test_a_running_snapshot_exports_without_a_verdict() -> None:
    sim = two_banks()
    sim.initiate("p1")
    export = sim.snapshot_export(1)
    assert export["status"] == "running"
    assert export["verdict"] is None
    assert [p["process"] for p in export["processes"]] == ["p1"]
    sim.stabilize()
    assert sim.snapshot_export(1)["status"] == "complete"


def test_the_record_excludes_the_marker_that_triggered_it() -> None:
    sim = two_banks()
    sim.act("p1")  # seq 1 on p1→p2
    sim.initiate("p1")  # marker is seq 2 on p1→p2
    sim.stabilize()
    p2 = next(p for p in sim.snapshot_export(1)["processes"] if p["process"] == "p2")
    assert p2["received"] == {"p1": 1}
    assert sim.processes["p2"].applied == {"p1": 2}


def test_the_same_seed_gives_the_same_run() -> None:
    def run(seed: int) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
        sim = Simulator(topology.random_strongly_connected(6, seed=3), seed=seed)
        sim.run_random(300, snapshot_rate=0.03, max_snapshots=3, fault_rate=0.05)
        sim.stabilize()
        return [sim.snapshot_export(s) for s in sorted(sim.snapshots)], sim.events

    assert run(7) == run(7)
    assert run(7) != run(8)


def test_run_random_uses_the_rng_it_is_given() -> None:
    a, b = Simulator(topology.ring(3), seed=0), Simulator(topology.ring(3), seed=99)
    a.run_random(50, random.Random(4))
    b.run_random(50, random.Random(4))
    # Scheduling is the same; transfers draw from each simulator's own seeded rng.
    assert [(e["kind"], e["process"]) for e in a.events] == [(e["kind"], e["process"]) for e in b.events]


def test_run_random_starts_at_most_max_snapshots() -> None:
    sim = Simulator(topology.ring(4), seed=2)
    sim.run_random(200, snapshot_rate=0.5, max_snapshots=3)
    assert sorted(sim.snapshots) == [1, 2, 3]


def test_a_script_with_an_unknown_action_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown action 'teleport'"):
        two_banks().run_script([["act", "p1"], ["teleport", "p1"]])


# -- faults -------------------------------------------------------------------------


def transfer_then_snapshot(sim: Simulator) -> int:
    """p1 sends a transfer (seq 1), then starts snapshot 1 (marker seq 2), both on p1→p2."""
    amount = sim.act("p1").sends[0]["payload"]["amount"]
    sim.initiate("p1", 1)
    return int(amount)


def test_fifo_drops_a_duplicated_transfer() -> None:
    sim = two_banks()
    transfer_then_snapshot(sim)
    sim.duplicate("p1", "p2", 0)  # the transfer comes again, after the marker
    sim.stabilize()
    assert sim.channel_counters()[("p1", "p2")]["duplicates"] == 1
    assert sum(balances(sim).values()) == 200
    assert_snapshot_sound(sim, 1)


def test_fifo_drops_a_duplicated_marker() -> None:
    sim = two_banks()
    transfer_then_snapshot(sim)
    sim.duplicate("p1", "p2", 1, to=1)  # the marker twice in a row
    sim.stabilize()
    assert sim.channel_counters()[("p1", "p2")]["duplicates"] == 1
    assert_snapshot_sound(sim, 1)


def test_fifo_puts_a_marker_that_overtook_a_transfer_back_in_order() -> None:
    sim = two_banks()
    amount = transfer_then_snapshot(sim)
    sim.swap("p1", "p2")
    assert [f["kind"] for f in sim.in_flight("p1", "p2")] == ["marker", "message"]
    sim.stabilize()
    assert sim.channel_counters()[("p1", "p2")] == {"duplicates": 0, "gaps": 1, "reorders": 1, "held": 0}
    export = assert_snapshot_sound(sim, 1)
    # In order, the transfer was in the channel when p2 recorded.
    p1_to_p2 = next(c for c in export["channels"] if c["src"] == "p1")
    assert p1_to_p2["messages"] == [] and export["processes"][1]["state"]["balance"] == 100 + amount


def test_without_fifo_a_marker_that_overtakes_a_transfer_loses_it_from_the_cut() -> None:
    sim = two_banks(fifo=False)
    amount = transfer_then_snapshot(sim)
    sim.swap("p1", "p2")
    sim.stabilize()
    verdict = sim.snapshot_export(1)["verdict"]
    assert not verdict["consistent"] and not verdict["conserved"]
    assert verdict["recorded_total"] == 200 - amount
    assert verdict["problems"][0] == (
        "p1→p2: seq 1 was sent before p1 recorded and not received before p2 recorded,"
        " but the channel's recorded state does not hold it"
    )


def test_without_fifo_a_duplicated_transfer_creates_money() -> None:
    sim = two_banks(fifo=False)
    amount = sim.act("p1").sends[0]["payload"]["amount"]
    sim.duplicate("p1", "p2", 0)
    sim.stabilize()
    assert sum(balances(sim).values()) == 200 + amount


def test_without_fifo_a_duplicated_marker_is_a_protocol_error() -> None:
    # p2 also listens to p3, so it is still recording when the copy of p1's marker comes.
    sim = Simulator(topology.complete(3), seed=1, fifo=False)
    sim.initiate("p1", 1)
    sim.duplicate("p1", "p2", 0)
    sim.deliver("p1", "p2")
    with pytest.raises(ProtocolError, match="channel p1→p2 already closed for snapshot 1"):
        sim.deliver("p1", "p2")


def test_random_faults_are_absorbed_by_fifo() -> None:
    sim = Simulator(topology.complete(4), seed=11)
    sim.run_random(400, snapshot_rate=0.02, max_snapshots=4, fault_rate=0.2)
    sim.stabilize()
    counters = sim.channel_counters().values()
    assert sum(c["duplicates"] for c in counters) > 0 and sum(c["reorders"] for c in counters) > 0
    assert len(sim.snapshots) == 4
    for snapshot in sim.snapshots:
        assert_snapshot_sound(sim, snapshot)
    assert sum(balances(sim).values()) == 400


def test_two_processes_may_start_the_same_snapshot() -> None:
    # Chandy–Lamport allows several initiators of one snapshot: each records on its own,
    # and the markers of the other merely close channels.
    sim = Simulator(topology.ring(5, two_way=True), seed=3)
    sim.run_random(40)
    sim.initiate("p1", 1)
    sim.initiate("p4", 1)
    sim.run_random(40)
    sim.stabilize()
    export = assert_snapshot_sound(sim, 1)
    assert export["initiator"] == "p1"
    assert [e["process"] for e in sim.events if e["kind"] == "initiate"] == ["p1", "p4"]


def test_a_thousand_processes_take_two_sound_snapshots() -> None:
    sim = Simulator(topology.random_strongly_connected(1000, seed=1), seed=1)
    sim.run_random(3000)
    sim.initiate("p500")
    sim.run_random(3000)
    sim.initiate("p1")
    sim.stabilize()
    for snapshot in (1, 2):
        assert_snapshot_sound(sim, snapshot)
