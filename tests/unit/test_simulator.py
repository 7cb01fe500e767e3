"""The in-memory simulator (cluster/core/simulator.py): moves, determinism, faults, export.

Then whole runs: a marker overtaken on non-FIFO channels, Chandy–Lamport beside Lai–Yang;
and Hypothesis properties — snapshots on random graphs, workloads and interleavings.
Each example draws a strongly connected topology of 2–12 processes, a workload, a seed
for the simulator's interleaving of transfers and deliveries, and up to five snapshots
started at random processes after random numbers of moves, so they often overlap.
After ``stabilize`` every snapshot must be finished, conserved, a consistent cut, and
match what the simulator knows really happened (tests/unit/snapshot_checks.py).

On FIFO channels that holds for Chandy–Lamport; on non-FIFO channels (the ``reorder``
fault, with loss and retransmission on top) it holds for Lai–Yang, even with
Chandy–Lamport snapshots — whose cuts may be wrong there — running at the same time.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cluster.core import topology
from cluster.core.algorithm import LAI_YANG, ProtocolError
from cluster.core.simulator import Simulator
from cluster.core.topology import TopologyError, validate
from cluster.core.workloads import state_value
from tests.unit.snapshot_checks import assert_recorded_exactly_once, assert_snapshot_sound

LY = LAI_YANG


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


# -- channel faults: reorder (non-FIFO) and loss with retransmission -------------------


def non_fifo_run(algorithm: str, seed: int = 34, **faults: object) -> Simulator:
    """Three banks, every pair linked both ways, every channel with the same faults;
    one snapshot of ``algorithm`` started by p1 in the middle of random traffic."""
    topo = topology.ring(3, value=100, two_way=True)
    sim = Simulator(
        topo, seed=seed, params={"max_amount": 10}, faults={f"{s}→{d}": faults for s, d in topo["channels"]}
    )
    sim.run_random(30)
    sim.initiate("p1", 1, algorithm)
    sim.run_random(30)
    sim.stabilize()
    return sim


def test_on_a_seeded_non_fifo_run_chandy_lamport_records_an_inconsistent_cut() -> None:
    sim = non_fifo_run("chandy-lamport", reorder=True)
    verdict = sim.snapshot_export(1)["verdict"]
    assert not verdict["consistent"] and not verdict["conserved"]
    assert (
        "p1→p3: p3 recorded receiving seq 2 from p1, which p1 sent after its cut (its marker was seq 1):"
        " the message overtook the marker — the channel is not FIFO"
    ) in verdict["problems"]
    assert sum(c["reorders"] for c in sim.channel_counters().values()) > 0


def test_on_the_same_kind_of_run_lai_yang_records_a_consistent_conserved_cut() -> None:
    sim = non_fifo_run("lai-yang", reorder=True)
    assert_snapshot_sound(sim, 1)
    assert sum(c["reorders"] for c in sim.channel_counters().values()) > 0


@pytest.mark.parametrize("algorithm", ["chandy-lamport", "lai-yang"])
def test_with_loss_and_retransmission_every_snapshot_completes_and_conserves(algorithm: str) -> None:
    topo = topology.complete(4, value=100)
    sim = Simulator(
        topo, seed=8, params={"max_amount": 20}, faults={f"{s}→{d}": {"loss": 0.3} for s, d in topo["channels"]}
    )
    sim.run_random(600, snapshot_rate=0.02, max_snapshots=5, algorithm=algorithm)
    sim.stabilize()
    assert sim.losses > 50 and sum(c["gaps"] for c in sim.channel_counters().values()) > 0
    assert len(sim.snapshots) == 5
    for snapshot in sim.snapshots:
        assert_snapshot_sound(sim, snapshot)
    assert sum(balances(sim).values()) == 400


def test_lai_yang_with_loss_on_non_fifo_channels_waits_for_the_lost_white_message() -> None:
    sim = Simulator(topology.ring(2, value=100), seed=1, faults={"p1→p2": {"reorder": True}})
    sim.act("p1")  # seq 1
    sim.initiate("p1", 1, "lai-yang")  # marker seq 2
    sim.lose("p1", "p2", 0)
    sim.deliver("p1", "p2")
    sim.deliver("p2", "p1")
    assert sim.snapshot_status(1) == "running"  # p1→p2 waits for seq 1
    sim.retransmit("p1", "p2")
    sim.deliver("p1", "p2")
    export = assert_snapshot_sound(sim, 1)
    assert [m["seq"] for m in export["channels"][0]["messages"]] == [1]


def test_faults_can_be_scripted() -> None:
    sim = two_banks()
    sim.run_script(
        [
            ["faults", "p1", "p2", {"reorder": True, "loss": 0.5, "delay_ms": 100}],
            ["act", "p1"],
            ["act", "p1"],
            ["lose", "p1", "p2", 0],
            ["deliver", "p1", "p2", 0],
            ["retransmit", "p1", "p2"],
            ["stabilize"],
        ]
    )
    assert sim.faults[("p1", "p2")] == {"reorder": True, "loss": 0.5}
    assert sim.processes["p2"].receivers["p1"].fifo is False
    assert sim.channel_counters()[("p1", "p2")] == {"duplicates": 0, "gaps": 1, "reorders": 1, "held": 0}
    assert sum(balances(sim).values()) == 200


def test_a_loss_rate_of_one_or_more_is_refused() -> None:
    with pytest.raises(ValueError, match="loss must be in"):
        two_banks().set_faults("p1", "p2", loss=1.0)


def test_a_frame_of_an_older_epoch_is_dropped_as_stale() -> None:
    sim = two_banks()
    sim.initiate("p1", 1)
    sim.stabilize()
    sim.act("p1")
    sim.restore(1)
    [stale] = sim.in_flight("p1", "p2")
    assert stale["epoch"] == 0
    balance = balances(sim)["p2"]
    assert sim.deliver("p1", "p2").events == []
    assert balances(sim)["p2"] == balance and sim.processes["p2"].counters["stale"] == 1


# -- whole runs: a marker overtaken on non-FIFO channels -----------------------------------


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


# -- Hypothesis: random graphs, workloads and interleavings --------------------------------


# Budget: these properties run in well under a minute on two cores.
FAST = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def strongly_connected_topologies(draw: st.DrawFn) -> dict[str, Any]:
    """Any strongly connected digraph on 2–12 processes, not just rings with chords.

    Each process after the first gets a channel from some earlier process (so p1
    reaches everyone) and a channel to some earlier process (so everyone reaches p1);
    random extra channels come on top. Stars, lines and one-way cycles all come up.
    """
    n = draw(st.integers(2, 12))
    names = [f"p{i}" for i in range(1, n + 1)]
    edges: set[tuple[str, str]] = set()
    for i in range(1, n):
        edges.add((names[draw(st.integers(0, i - 1))], names[i]))
        edges.add((names[i], names[draw(st.integers(0, i - 1))]))
    extra = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=2 * n))
    edges |= {(names[a], names[b]) for a, b in extra if a != b}
    workload = draw(st.sampled_from(["bank", "token"]))
    if workload == "bank":
        values = draw(st.lists(st.integers(0, 200), min_size=n, max_size=n))
        processes = [{"name": name, "balance": v} for name, v in zip(names, values, strict=True)]
    else:
        holder = draw(st.integers(0, n - 1))
        processes = [{"name": name, "tokens": int(i == holder)} for i, name in enumerate(names)]
    return {"name": "drawn", "workload": workload, "processes": processes, "channels": [list(e) for e in sorted(edges)]}


@dataclass(frozen=True)
class Run:
    topology: dict[str, Any]
    seed: int
    snapshots: list[tuple[int, int]]  # (moves before it starts, index of its initiator)
    tail: int  # moves after the last one starts, before stabilize

    def play(self, fault_rate: float = 0.0) -> Simulator:
        sim = Simulator(self.topology, self.seed, params={"max_amount": 25})
        for moves, who in self.snapshots:
            sim.run_random(moves, fault_rate=fault_rate)
            sim.initiate(sim.names[who % len(sim.names)])
        sim.run_random(self.tail, fault_rate=fault_rate)
        sim.stabilize()
        return sim


runs = st.builds(
    Run,
    topology=strongly_connected_topologies(),
    seed=st.integers(0, 2**32 - 1),
    snapshots=st.lists(st.tuples(st.integers(0, 40), st.integers(0, 11)), min_size=1, max_size=5),
    tail=st.integers(0, 80),
)


@given(strongly_connected_topologies())
@FAST
def test_drawn_topologies_are_valid(topology: dict[str, Any]) -> None:
    assert validate(topology) == topology


@given(runs)
@FAST
def test_every_snapshot_finishes_as_a_conserved_consistent_cut(run: Run) -> None:
    sim = run.play()
    assert len(sim.snapshots) == len(run.snapshots)
    for snapshot in sim.snapshots:
        assert_snapshot_sound(sim, snapshot)


@given(runs)
@FAST
def test_every_channel_and_process_is_recorded_exactly_once_per_snapshot(run: Run) -> None:
    sim = run.play()
    for snapshot in sim.snapshots:
        assert_recorded_exactly_once(sim, snapshot)
    # Every process ends with every snapshot finished and nothing left open.
    for proc in sim.processes.values():
        assert proc.snapshots.active == {}
        assert proc.snapshots.finished == set(sim.snapshots)


@given(runs)
@FAST
def test_fifo_absorbs_duplicated_and_reordered_frames(run: Run) -> None:
    sim = run.play(fault_rate=0.15)
    for snapshot in sim.snapshots:
        assert_snapshot_sound(sim, snapshot)
    # Duplicates were dropped, not applied: nothing was created or lost.
    assert sum(state_value(sim.workload, p.state) for p in sim.processes.values()) == sim.expected_total
    assert all(c["held"] == 0 for c in sim.channel_counters().values())


@dataclass(frozen=True)
class NonFifoRun:
    topology: dict[str, Any]
    seed: int
    snapshots: list[tuple[int, int, str]]  # (moves before it starts, index of its initiator, algorithm)
    tail: int
    loss: float
    fault_rate: float  # the broker's duplicates and swaps, on top

    def play(self) -> Simulator:
        faults = {f"{src}→{dst}": {"reorder": True, "loss": self.loss} for src, dst in self.topology["channels"]}
        sim = Simulator(self.topology, self.seed, params={"max_amount": 25}, faults=faults)
        for moves, who, algorithm in self.snapshots:
            sim.run_random(moves, fault_rate=self.fault_rate)
            sim.initiate(sim.names[who % len(sim.names)], algorithm=algorithm)
        sim.run_random(self.tail, fault_rate=self.fault_rate)
        sim.stabilize()
        return sim


non_fifo_runs = st.builds(
    NonFifoRun,
    topology=strongly_connected_topologies(),
    seed=st.integers(0, 2**32 - 1),
    snapshots=st.lists(
        st.tuples(st.integers(0, 40), st.integers(0, 11), st.sampled_from(["lai-yang", "lai-yang", "chandy-lamport"])),
        min_size=1,
        max_size=5,
    ),
    tail=st.integers(0, 80),
    loss=st.sampled_from([0.0, 0.1, 0.4]),
    fault_rate=st.sampled_from([0.0, 0.1]),
)


@given(non_fifo_runs)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_lai_yang_snapshots_on_non_fifo_channels_are_conserved_consistent_cuts(run: NonFifoRun) -> None:
    sim = run.play()
    assert len(sim.snapshots) == len(run.snapshots)
    for snapshot, log in sim.snapshots.items():
        if log.algorithm == "lai-yang":
            assert_snapshot_sound(sim, snapshot)
        else:
            assert_recorded_exactly_once(sim, snapshot)
    for proc in sim.processes.values():
        assert proc.snapshots.active == {}
    assert sum(state_value(sim.workload, p.state) for p in sim.processes.values()) == sim.expected_total


@given(runs)
@settings(max_examples=30, deadline=None)
def test_the_same_run_gives_the_same_snapshots(run: Run) -> None:
    first, second = run.play(fault_rate=0.1), run.play(fault_rate=0.1)
    assert [first.snapshot_export(s) for s in first.snapshots] == [second.snapshot_export(s) for s in second.snapshots]
    assert first.events == second.events
