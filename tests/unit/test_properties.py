"""Hypothesis properties: snapshots on random graphs, workloads and interleavings.

Each example draws a strongly connected topology of 2–12 processes, a workload, a seed
for the simulator's interleaving of transfers and deliveries, and up to five snapshots
started at random processes after random numbers of moves, so they often overlap.
After ``stabilize`` every snapshot must be finished, conserved, a consistent cut, and
match what the simulator knows really happened (tests/unit/checks.py).

On FIFO channels that holds for Chandy–Lamport; on non-FIFO channels (the ``reorder``
fault, with loss and retransmission on top) it holds for Lai–Yang, even with
Chandy–Lamport snapshots — whose cuts may be wrong there — running at the same time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cluster.simulator import Simulator
from cluster.workloads import state_value
from snapshots.topology import validate
from tests.unit.checks import assert_recorded_exactly_once, assert_snapshot_sound

# Budget: the whole file runs in well under a minute on two cores.
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
