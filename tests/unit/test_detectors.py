"""Stable-property detectors (cluster/core/detectors.py): conservation, termination, deadlock.

First on recorded states written out by hand, one rule at a time; then on real
snapshots of runs of the pure ``SimulatedProcess`` (a tiny local cluster below): a diffusing
computation is seen to terminate, and five philosophers are seen to deadlock.
"""

from __future__ import annotations

import random
from collections import deque
from typing import Any

import pytest

from cluster.core import topology as topo
from cluster.core.detectors import PROPERTIES, detect
from cluster.core.process import SimulatedProcess
from cluster.core.verdict import compute_verdict
from cluster.core.workloads import get_workload, state_value
from snapshots.demo import demo_topologies

CONSISTENT = {"consistent": True, "conserved": None, "expected_total": None, "recorded_total": None, "problems": []}


def records(states: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"process": name, "state": state, "sent": {}, "received": {}, "clock": {}} for name, state in states.items()
    ]


def channel(src: str, dst: str, *payloads: dict[str, Any]) -> dict[str, Any]:
    return {
        "src": src,
        "dst": dst,
        "messages": [{"seq": i, "payload": p} for i, p in enumerate(payloads, 1)],
        "markers": [],
    }


def ring_edges(names: list[str]) -> list[tuple[str, str]]:
    n = len(names)
    return [(names[i], names[(i + 1) % n]) for i in range(n)] + [(names[(i + 1) % n], names[i]) for i in range(n)]


# --- which properties apply -----------------------------------------------------------------------


def test_a_bank_is_checked_for_conservation_only() -> None:
    verdict = {"consistent": True, "conserved": True, "expected_total": 300, "recorded_total": 300, "problems": []}
    found = detect(
        "bank", ["p1", "p2"], [("p1", "p2"), ("p2", "p1")], records({"p1": {"balance": 100}, "p2": {"balance": 190}}),
        [channel("p1", "p2", {"amount": 10}), channel("p2", "p1")], verdict,
    )  # fmt: skip
    assert list(found) == list(PROPERTIES)
    assert found["conservation"] == {
        "holds": True,
        "recorded_total": 300,
        "expected_total": 300,
        "detail": "300 balance in all, in the recorded states and channels, as at the start:"
        " nothing was created or lost",
    }
    assert found["termination"] == {
        "holds": None,
        "detail": "the bank workload never terminates: its processes always find something to do",
    }
    assert found["deadlock"] == {
        "holds": None,
        "detail": "in the bank workload no process ever waits for another, so it cannot deadlock",
        "cycle": [],
    }


def test_a_broken_total_is_reported_with_the_difference() -> None:
    verdict = {"consistent": False, "conserved": False, "expected_total": 1, "recorded_total": 2, "problems": ["…"]}
    found = detect(
        "token", ["p", "q"], [("p", "q"), ("q", "p")], records({"p": {"tokens": 1}, "q": {"tokens": 0}}),
        [channel("p", "q", {"tokens": 1}), channel("q", "p")], verdict,
    )  # fmt: skip
    assert found["conservation"]["holds"] is False
    assert found["conservation"]["detail"].startswith("2 tokens recorded, but the run holds 1 (+1)")


def test_a_diffusion_has_nothing_to_conserve_and_cannot_deadlock() -> None:
    found = detect(
        "diffusion", ["p1", "p2"], [("p1", "p2"), ("p2", "p1")],
        records({"p1": {"active": False, "jobs": 0, "done": 3}, "p2": {"active": False, "jobs": 0, "done": 2}}),
        [channel("p1", "p2"), channel("p2", "p1")], CONSISTENT,
    )  # fmt: skip
    assert found["conservation"] == {
        "holds": None,
        "detail": "the diffusion workload has no conserved quantity to check",
    }
    assert found["deadlock"]["holds"] is None and found["deadlock"]["cycle"] == []
    assert found["termination"]["holds"] is True


def test_an_unfinished_snapshot_cannot_tell() -> None:
    found = detect(
        "philosophers", ["p1", "p2", "p3"], ring_edges(["p1", "p2", "p3"]),
        records({"p1": {"status": "thinking", "waiting": []}}), [], None,
    )  # fmt: skip
    for prop in PROPERTIES:
        assert found[prop]["holds"] is None
    assert (
        found["deadlock"]["detail"] == "the snapshot lacks the recorded state of p2, p3, p1→p2, p2→p3, p3→p1 and 3 more"
    )
    assert found["deadlock"]["cycle"] == []


# --- termination ----------------------------------------------------------------------------------


def diffusion(states: dict[str, tuple[bool, int]], *channels: dict[str, Any], verdict: Any = CONSISTENT) -> Any:
    names = list(states)
    recorded = {name: {"active": active, "jobs": jobs, "done": 0} for name, (active, jobs) in states.items()}
    by_channel = {(c["src"], c["dst"]): c for c in channels}
    edges = ring_edges(names)
    all_channels = [by_channel.get(e, channel(*e)) for e in edges]
    return detect("diffusion", names, edges, records(recorded), all_channels, verdict)["termination"]


def test_termination_holds_when_every_process_is_passive_and_every_channel_empty() -> None:
    found = diffusion({"p1": (False, 0), "p2": (False, 0), "p3": (False, 0)})
    assert found["holds"] is True
    assert found["active"] == [] and found["in_flight"] == {}
    assert "terminated: every process is passive and every channel is empty" in found["detail"]


def test_an_active_process_means_not_terminated() -> None:
    found = diffusion({"p1": (False, 0), "p2": (True, 4), "p3": (True, 1)})
    assert found["holds"] is False and found["active"] == ["p2", "p3"]
    assert found["detail"] == "not terminated at this cut: p2 and p3 are still active"


def test_a_message_in_flight_means_not_terminated_even_if_all_are_passive() -> None:
    found = diffusion(
        {"p1": (False, 0), "p2": (False, 0), "p3": (False, 0)},
        channel("p1", "p2", {"jobs": 2}, {"jobs": 1}),
        channel("p3", "p1", {"jobs": 5}),
    )
    assert found["holds"] is False and found["in_flight"] == {"p1→p2": 2, "p3→p1": 1}
    assert found["detail"] == (
        "not terminated at this cut: 3 messages in flight (p1→p2: 2, p3→p1: 1) will wake processes up"
    )


def test_an_inconsistent_cut_is_said_to_be_unreliable() -> None:
    verdict = {**CONSISTENT, "consistent": False}
    found = diffusion({"p1": (False, 0), "p2": (False, 0)}, verdict=verdict)
    assert found["holds"] is True
    assert found["detail"].endswith("so the system may never have been in this state")


# --- deadlock -------------------------------------------------------------------------------------


def philosopher(status: str, held: list[str], waiting: list[str]) -> dict[str, Any]:
    return {"status": status, "forks": len(held), "held": held, "waiting": waiting, "owed": [], "meals": 0}


def table(states: dict[str, dict[str, Any]], *channels: dict[str, Any]) -> dict[str, Any]:
    names = list(states)
    edges = ring_edges(names)
    by_channel = {(c["src"], c["dst"]): c for c in channels}
    all_channels = [by_channel.get(e, channel(*e)) for e in edges]
    return detect("philosophers", names, edges, records(states), all_channels, CONSISTENT)["deadlock"]


def test_a_cycle_of_hungry_philosophers_is_a_deadlock() -> None:
    found = table(
        {
            "p1": philosopher("hungry", ["p2"], ["p3"]),
            "p2": philosopher("hungry", ["p3"], ["p1"]),
            "p3": philosopher("hungry", ["p1"], ["p2"]),
        }
    )
    assert found["holds"] is True
    assert found["cycle"] == ["p1", "p3", "p2"]
    assert found["waits_for"] == {"p1": ["p3"], "p2": ["p1"], "p3": ["p2"]}
    assert found["detail"].startswith("deadlock: p1 waits for p3, p3 waits for p2, p2 waits for p1.")


def test_the_cycle_starts_at_its_first_process_and_leaves_out_the_tail() -> None:
    found = table(
        {
            "p1": philosopher("hungry", [], ["p2"]),  # waits into the cycle, is not part of it
            "p2": philosopher("hungry", ["p1"], ["p3"]),
            "p3": philosopher("hungry", ["p2"], ["p4"]),
            "p4": philosopher("hungry", ["p3"], ["p2"]),
        }
    )
    assert found["holds"] is True and found["cycle"] == ["p2", "p3", "p4"]


def test_a_fork_on_its_way_breaks_the_wait() -> None:
    states = {
        "p1": philosopher("hungry", ["p2"], ["p3"]),
        "p2": philosopher("hungry", ["p3"], ["p1"]),
        "p3": philosopher("hungry", [], ["p2"]),
    }
    found = table(states, channel("p1", "p3", {"request": "fork"}), channel("p3", "p1", {"forks": 1, "to": "p1"}))
    assert found["holds"] is False and found["cycle"] == []
    assert found["grants_in_flight"] == ["p3→p1"]
    assert found["waits_for"] == {"p2": ["p1"], "p3": ["p2"]}
    assert found["detail"] == (
        "no deadlock at this cut: some wait (p2 for p1; p3 for p2), but no chain of waits closes into a cycle;"
        " what others wait for is on its way (p3→p1)"
    )


def test_a_thinking_philosopher_waits_for_nobody() -> None:
    found = table(
        {
            "p1": philosopher("thinking", ["p2", "p3"], []),
            "p2": philosopher("thinking", ["p3"], []),
            "p3": philosopher("thinking", [], []),
        }
    )
    assert found == {
        "holds": False,
        "cycle": [],
        "waits_for": {},
        "grants_in_flight": [],
        "detail": "no deadlock at this cut: no process is waiting for another",
    }


def test_a_wait_for_someone_unknown_is_ignored() -> None:
    found = table({"p1": philosopher("hungry", [], ["p9"]), "p2": philosopher("thinking", [], [])})
    assert found["holds"] is False and found["waits_for"] == {}


# --- on real snapshots ----------------------------------------------------------------------------


class LocalCluster:
    """Pure processes joined by FIFO queues: just enough of a runtime to take real snapshots."""

    def __init__(self, spec: dict[str, Any], seed: int, params: dict[str, Any] | None = None) -> None:
        self.spec = topo.validate(spec)
        self.wl = get_workload(self.spec["workload"])
        self.rng = random.Random(seed)
        self.params = params or {}
        self.names = [p["name"] for p in self.spec["processes"]]
        self.edges = [(c[0], c[1]) for c in self.spec["channels"]]
        self.processes = {}
        for proc in self.spec["processes"]:
            name = proc["name"]
            incoming = [s for s, d in self.edges if d == name]
            outgoing = [d for s, d in self.edges if s == name]
            state = self.wl.initial_state(proc.get(self.wl.value_key, 0), name, sorted(outgoing))
            self.processes[name] = SimulatedProcess(name, incoming, outgoing, self.spec["workload"], state)
        self.expected_total = sum(state_value(self.wl, p.state) for p in self.processes.values())
        self.queues: dict[tuple[str, str], deque[dict[str, Any]]] = {e: deque() for e in self.edges}
        self.records: dict[int, list[dict[str, Any]]] = {}

    def carry_out(self, step: Any) -> None:
        for frame in step.sends:
            self.queues[(frame["src"], frame["dst"])].append(frame)
        for record in step.records:
            self.records.setdefault(record["snapshot"], []).append(record)

    def round(self) -> None:
        """Every process steps once, in random order; most frames arrive before the next step."""
        order = self.names[:]
        self.rng.shuffle(order)
        for name in order:
            self.carry_out(self.processes[name].act(self.rng, self.params))
            while (busy := [e for e, q in self.queues.items() if q]) and self.rng.random() < 0.9:
                self.deliver(*self.rng.choice(busy))

    def deliver(self, src: str, dst: str) -> None:
        self.carry_out(self.processes[dst].receive(self.queues[(src, dst)].popleft()))

    def snapshot(self, snapshot: int, initiator: str, keep_running: bool = True) -> dict[str, Any]:
        """Take a snapshot while the run goes on (or not); return what ``detect`` and the verdict make of it."""
        self.carry_out(self.processes[initiator].initiate(snapshot))
        while not self.complete(snapshot):
            if keep_running:
                self.round()
            for edge in self.edges:
                if self.queues[edge]:
                    self.deliver(*edge)
        process_records = [r for r in self.records[snapshot] if r["kind"] == "process"]
        channel_records = [r for r in self.records[snapshot] if r["kind"] == "channel"]
        verdict = compute_verdict(
            self.names, self.edges, self.wl.unit, self.wl.payload_unit, self.expected_total,
            process_records, channel_records,
        )  # fmt: skip
        found = detect(self.wl.name, self.names, self.edges, process_records, channel_records, verdict)
        return {"verdict": verdict, "properties": found, "processes": process_records}

    def complete(self, snapshot: int) -> bool:
        got = self.records.get(snapshot, [])
        return len([r for r in got if r["kind"] == "process"]) == len(self.names) and len(
            [r for r in got if r["kind"] == "channel"]
        ) == len(self.edges)


def diffusion_8(seed: int) -> LocalCluster:
    spec = next(t for t in demo_topologies() if t["name"] == "diffusion-8")
    return LocalCluster(spec, seed)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_snapshot_of_a_running_diffusion_does_not_find_termination_and_a_later_one_does(seed: int) -> None:
    cluster = diffusion_8(seed)
    for _ in range(5):
        cluster.round()
    early = cluster.snapshot(1, "p3")
    assert early["verdict"]["consistent"], early["verdict"]["problems"]
    assert early["verdict"]["conserved"] is None
    assert early["properties"]["termination"]["holds"] is False
    for _ in range(2000):
        if all(cluster.wl.passive(p.state) for p in cluster.processes.values()) and not any(cluster.queues.values()):
            break
        cluster.round()
    late = cluster.snapshot(2, "p5")
    assert late["verdict"]["consistent"]
    assert late["properties"]["termination"]["holds"] is True
    assert sum(r["state"]["done"] for r in late["processes"]) == 300
    again = cluster.snapshot(3, "p1")  # termination is stable
    assert again["properties"]["termination"]["holds"] is True


def test_five_philosophers_are_seen_to_deadlock_in_a_snapshot() -> None:
    spec = topo.ring(5, two_way=True, workload="philosophers", name="philosophers-5")
    cluster = LocalCluster(spec, seed=4)
    first = cluster.snapshot(1, "p1", keep_running=False)  # at the start, everyone thinks
    assert first["properties"]["deadlock"]["holds"] is False
    assert first["properties"]["conservation"]["holds"] is True
    found = None
    for snapshot in range(2, 400):
        for _ in range(5):
            cluster.round()
        taken = cluster.snapshot(snapshot, cluster.rng.choice(cluster.names))
        assert taken["verdict"]["consistent"], taken["verdict"]["problems"]
        assert taken["properties"]["conservation"]["holds"] is True  # forks are conserved
        if taken["properties"]["deadlock"]["holds"]:
            found = taken
            break
    assert found is not None, "five philosophers did not deadlock within 2000 steps each"
    deadlock = found["properties"]["deadlock"]
    assert sorted(deadlock["cycle"]) == ["p1", "p2", "p3", "p4", "p5"]
    assert deadlock["detail"].startswith("deadlock: p1 waits for p")
    for _ in range(20):  # stable: nothing moves any more, and a later snapshot finds it again
        cluster.round()
    later = cluster.snapshot(snapshot + 1, "p3")
    assert later["properties"]["deadlock"]["cycle"] == deadlock["cycle"]
