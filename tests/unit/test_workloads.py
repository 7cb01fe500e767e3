"""The workloads (cluster/core/workloads.py): what each process does, and what each keeps true.

The workloads are driven here directly, by a small loop that plays the part of the
channels (``Table``): it keeps every message in flight per channel in FIFO order and
delivers them in an order a seeded rng chooses, so Hypothesis can try many
interleavings without the rest of the system.
"""

from __future__ import annotations

import random
from collections import deque
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cluster.core import topology as topo
from cluster.core.workloads import (
    HUNGER,
    WORKLOADS,
    Bank,
    Diffusion,
    Philosophers,
    Token,
    get_workload,
    payload_value,
    pick_up_order,
    starting_forks,
    state_value,
)

fast = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class Table:
    """Every process's state and every channel's messages in flight, for one workload."""

    def __init__(self, spec: dict[str, Any], seed: int, params: dict[str, Any] | None = None) -> None:
        self.wl = get_workload(spec["workload"])
        self.rng = random.Random(seed)
        self.params = params or {}
        self.names = [p["name"] for p in spec["processes"]]
        self.outgoing: dict[str, tuple[str, ...]] = {
            n: tuple(sorted(c[1] for c in spec["channels"] if c[0] == n)) for n in self.names
        }
        self.states = {
            p["name"]: self.wl.initial_state(p.get(self.wl.value_key, 0), p["name"], self.outgoing[p["name"]])
            for p in spec["processes"]
        }
        self.channels: dict[tuple[str, str], deque[dict[str, Any]]] = {(c[0], c[1]): deque() for c in spec["channels"]}
        self.sent_by: dict[str, int] = dict.fromkeys(self.names, 0)

    def act(self, name: str) -> list[tuple[str, dict[str, Any]]]:
        sends = self.wl.step(self.states[name], self.outgoing[name], self.rng, self.params)
        for dst, payload in sends:
            assert dst in self.outgoing[name], f"{name} sent to {dst}, which it has no channel to"
            self.channels[(name, dst)].append(payload)
        self.sent_by[name] += len(sends)
        return sends

    def deliver(self, src: str, dst: str) -> None:
        self.wl.on_message(self.states[dst], src, self.channels[(src, dst)].popleft())

    def busy(self) -> list[tuple[str, str]]:
        return [c for c, queue in self.channels.items() if queue]

    def move(self) -> None:
        """One random move: a delivery (if any message is in flight) or a step, equally likely."""
        busy = self.busy()
        if busy and self.rng.random() < 0.5:
            self.deliver(*self.rng.choice(busy))
        else:
            self.act(self.rng.choice(self.names))

    def in_flight(self) -> list[tuple[str, str, dict[str, Any]]]:
        return [(src, dst, payload) for (src, dst), queue in self.channels.items() for payload in queue]

    def conserved_total(self) -> int:
        return sum(state_value(self.wl, s) for s in self.states.values()) + sum(
            payload_value(self.wl, payload) for _, _, payload in self.in_flight()
        )


# --- what every workload declares ---------------------------------------------------------------


def test_every_workload_names_its_value_key_and_units() -> None:
    assert {name: (w.value_key, w.unit, w.payload_unit) for name, w in WORKLOADS.items()} == {
        "bank": ("balance", "balance", "amount"),
        "token": ("tokens", "tokens", "tokens"),
        "diffusion": ("jobs", None, None),
        "philosophers": ("forks", "forks", "forks"),
    }


def test_only_diffusion_terminates_and_only_philosophers_deadlock() -> None:
    assert [name for name, w in WORKLOADS.items() if w.can_terminate] == ["diffusion"]
    assert [name for name, w in WORKLOADS.items() if w.can_deadlock] == ["philosophers"]


@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_a_workload_state_holds_exactly_its_state_keys(name: str) -> None:
    wl = WORKLOADS[name]
    state = wl.initial_state(1, "p1", ("p2",))  # for philosophers: p1 starts with the fork it shares with p2
    assert tuple(state) == wl.state_keys


def test_an_unknown_workload_is_refused_naming_the_others() -> None:
    with pytest.raises(
        ValueError, match="unknown workload 'lottery'; choose one of bank, diffusion, philosophers, token"
    ):
        get_workload("lottery")


def test_nothing_is_conserved_without_a_unit() -> None:
    wl = get_workload("diffusion")
    assert state_value(wl, {"active": True, "jobs": 5, "done": 2}) == 0
    assert payload_value(wl, {"jobs": 5}) == 0


# --- bank and token, as before --------------------------------------------------------------------


def test_bank_and_token_still_take_their_value_alone() -> None:
    assert Bank().initial_state(100) == {"balance": 100}
    assert Bank().initial_state(7, "p1", ("p2", "p3")) == {"balance": 7}
    assert Token().initial_state(1) == {"tokens": 1}


def test_a_bank_transfer_leaves_the_sender_and_joins_the_receiver() -> None:
    bank, state = Bank(), {"balance": 50}
    [(dst, payload)] = bank.step(state, ("p2", "p3"), random.Random(1), {"max_amount": 10})
    assert dst in ("p2", "p3") and 1 <= payload["amount"] <= 10
    assert state["balance"] == 50 - payload["amount"]
    other = {"balance": 0}
    assert bank.passive(other)
    bank.on_message(other, "p1", payload)
    assert other == {"balance": payload["amount"]} and not bank.passive(other)


def test_the_token_moves_whole() -> None:
    token, state = Token(), {"tokens": 1}
    assert token.step(state, ("p2",), random.Random(0), {}) == [("p2", {"tokens": 1})]
    assert state == {"tokens": 0} and token.passive(state)
    assert token.step(state, ("p2",), random.Random(0), {}) == []


def test_bank_and_token_never_wait_for_anyone() -> None:
    for wl in (Bank(), Token()):
        assert wl.waits_for(wl.initial_state(5)) == []
        assert wl.grants({"amount": 5, "tokens": 1}) is None


@fast
@given(seed=st.integers(0, 2**32), n=st.integers(2, 6), workload=st.sampled_from(["bank", "token"]))
def test_bank_and_token_conserve_their_unit_under_any_interleaving(seed: int, n: int, workload: str) -> None:
    table = Table(topo.random_strongly_connected(n, 2.0, seed=seed, workload=workload), seed)
    total = table.conserved_total()
    for _ in range(200):
        table.move()
        assert table.conserved_total() == total


# --- diffusion ------------------------------------------------------------------------------------


def test_a_diffusion_starts_active_where_there_are_jobs() -> None:
    assert Diffusion().initial_state(3) == {"active": True, "jobs": 3, "done": 0}
    assert Diffusion().initial_state(0, "p2", ("p1",)) == {"active": False, "jobs": 0, "done": 0}


def test_an_active_step_finishes_one_job_and_may_hand_on_up_to_half_the_rest() -> None:
    wl = Diffusion()
    for seed in range(50):
        state = wl.initial_state(11)
        sends = wl.step(state, ("p2", "p3"), random.Random(seed), {"spread": 1.0})
        [(dst, payload)] = sends
        assert dst in ("p2", "p3") and 1 <= payload["jobs"] <= 5
        assert state == {"active": True, "jobs": 10 - payload["jobs"], "done": 1}


def test_without_spreading_a_process_works_through_its_own_jobs_then_turns_passive() -> None:
    wl, state, rng = Diffusion(), Diffusion().initial_state(3), random.Random(0)
    for _ in range(3):
        assert wl.step(state, ("p2",), rng, {"spread": 0.0}) == []
    assert state == {"active": False, "jobs": 0, "done": 3} and wl.passive(state)
    assert wl.step(state, ("p2",), rng, {"spread": 1.0}) == []  # a passive process sends nothing


def test_a_job_message_wakes_a_passive_process() -> None:
    wl, state = Diffusion(), Diffusion().initial_state(0)
    wl.on_message(state, "p1", {"jobs": 4})
    assert state == {"active": True, "jobs": 4, "done": 0} and not wl.passive(state)


@fast
@given(
    seed=st.integers(0, 2**32),
    n=st.integers(2, 8),
    jobs=st.lists(st.integers(0, 60), min_size=1, max_size=8),
    spread=st.sampled_from([0.0, 0.3, 0.5, 1.0]),
)
def test_a_diffusion_always_terminates_after_exactly_its_jobs(
    seed: int, n: int, jobs: list[int], spread: float
) -> None:
    spec = topo.random_strongly_connected(n, 2.0, seed=seed, workload="diffusion")
    for proc, count in zip(spec["processes"], jobs + [0] * n, strict=False):
        proc["jobs"] = count
    table = Table(spec, seed, {"spread": spread})
    total = sum(jobs[:n])
    active_steps = 0
    for _ in range(10 * total + 1000):  # far more moves than it can need
        if all(table.wl.passive(s) for s in table.states.values()) and not table.busy():
            break
        name = table.rng.choice(table.names)
        if table.busy() and table.rng.random() < 0.5:
            table.deliver(*table.rng.choice(table.busy()))
            continue
        was_active = table.states[name]["active"]
        sends = table.act(name)
        active_steps += was_active
        assert was_active or not sends, "a passive process sent a message"
        in_flight = sum(payload["jobs"] for _, _, payload in table.in_flight())
        left = sum(s["jobs"] for s in table.states.values()) + in_flight
        assert left + sum(s["done"] for s in table.states.values()) == total
    else:
        pytest.fail("the diffusing computation did not terminate")
    assert active_steps == total
    assert sum(s["done"] for s in table.states.values()) == total


def test_a_diffusion_is_deterministic_given_the_rng() -> None:
    spec = topo.ring(4, two_way=True, workload="diffusion", value=40)
    runs = []
    for _ in range(2):
        table = Table(spec, seed=9)
        for _ in range(300):
            table.move()
        runs.append((table.states, table.in_flight()))
    assert runs[0] == runs[1]


# --- philosophers ----------------------------------------------------------------------------------


def test_a_philosopher_picks_forks_up_starting_after_its_own_name() -> None:
    assert pick_up_order("p1", ["p5", "p2"]) == ["p2", "p5"]
    assert pick_up_order("p3", ["p2", "p4"]) == ["p4", "p2"]
    assert pick_up_order("p5", ["p4", "p1"]) == ["p1", "p4"]  # wraps round: the ring's next is p1


def test_a_fork_starts_at_the_name_that_sorts_first() -> None:
    assert starting_forks("p1", ["p2", "p5"]) == ["p2", "p5"]
    assert starting_forks("p3", ["p2", "p4"]) == ["p4"]
    assert starting_forks("p5", ["p4", "p1"]) == []


def test_a_philosopher_starts_thinking_with_its_forks() -> None:
    assert Philosophers().initial_state(1, "p3", ("p2", "p4")) == {
        "status": "thinking",
        "forks": 1,
        "held": ["p4"],
        "waiting": [],
        "owed": [],
        "meals": 0,
        "neighbours": ["p4", "p2"],
    }


def test_a_philosopher_refuses_a_fork_count_the_rule_does_not_give() -> None:
    with pytest.raises(ValueError, match=r"philosopher 'p3' starts with 1 forks \(those it shares with p4\), not 2"):
        Philosophers().initial_state(2, "p3", ("p2", "p4"))
    with pytest.raises(ValueError, match="shares with nobody"):
        Philosophers().initial_state(2)  # no name, no neighbours: a caller that forgot to pass them


def hungry_p3(held: list[str]) -> dict[str, Any]:
    state = Philosophers().initial_state(1, "p3", ("p2", "p4"))
    state.update(status="hungry", held=held, forks=len(held))
    return state


def test_a_thinking_philosopher_that_stays_thinking_hands_over_what_it_owes() -> None:
    wl = Philosophers()
    state = wl.initial_state(2, "p1", ("p2", "p5"))
    wl.on_message(state, "p5", {"request": "fork"})
    wl.on_message(state, "p3", {"request": "fork"})  # no fork shared with p3: owed, but nothing to give
    assert state["owed"] == ["p3", "p5"]
    sends = wl.step(state, ("p2", "p5"), random.Random(0), {"hunger": 0.0})
    assert sends == [("p5", {"forks": 1, "to": "p5"})]
    assert (state["held"], state["forks"], state["owed"]) == (["p2"], 1, ["p3"])


def test_a_philosopher_that_gets_hungry_keeps_its_forks_even_when_asked() -> None:
    wl = Philosophers()
    state = wl.initial_state(1, "p3", ("p2", "p4"))
    wl.on_message(state, "p4", {"request": "fork"})
    sends = wl.step(state, ("p2", "p4"), random.Random(0), {"hunger": 1.0})
    # It holds its first fork (p4's) and asks p2 for the next; p4 waits.
    assert sends == [("p2", {"request": "fork"})]
    assert state["status"] == "hungry" and state["held"] == ["p4"] and state["owed"] == ["p4"]
    assert wl.waits_for(state) == ["p2"]
    for _ in range(5):  # waiting: no second request, nothing given up
        assert wl.step(state, ("p2", "p4"), random.Random(0), {"hunger": 0.0}) == []
    assert state["held"] == ["p4"]


def test_a_hungry_philosopher_asks_for_one_fork_at_a_time_in_its_order() -> None:
    wl = Philosophers()
    state = wl.initial_state(0, "p5", ("p1", "p4"))
    assert wl.step(state, ("p1", "p4"), random.Random(0), {"hunger": 1.0}) == [("p1", {"request": "fork"})]
    assert state["waiting"] == ["p1"]
    wl.on_message(state, "p1", {"forks": 1, "to": "p5"})
    assert state["held"] == ["p1"] and state["waiting"] == [] and state["forks"] == 1
    assert wl.step(state, ("p1", "p4"), random.Random(0), {}) == [("p4", {"request": "fork"})]
    wl.on_message(state, "p4", {"forks": 1, "to": "p5"})
    assert wl.step(state, ("p1", "p4"), random.Random(0), {}) == []
    assert state["status"] == "eating" and state["meals"] == 1 and state["forks"] == 2


def test_after_eating_a_philosopher_hands_over_what_was_asked_for_meanwhile() -> None:
    wl = Philosophers()
    state = wl.initial_state(2, "p1", ("p2", "p5"))
    wl.step(state, ("p2", "p5"), random.Random(0), {"hunger": 1.0})  # holds both: eats at once
    assert state["status"] == "eating"
    wl.on_message(state, "p2", {"request": "fork"})
    assert wl.step(state, ("p2", "p5"), random.Random(0), {}) == [("p2", {"forks": 1, "to": "p2"})]
    assert state["status"] == "thinking" and state["held"] == ["p5"]


def test_only_a_fork_is_a_grant() -> None:
    wl = Philosophers()
    assert wl.grants({"forks": 1, "to": "p2"}) == "p2"
    assert wl.grants({"request": "fork"}) is None
    assert wl.waits_for(wl.initial_state(0, "p2", ("p1",))) == []  # thinking: waits for nobody


def test_the_default_hunger_is_a_probability() -> None:
    assert 0 < HUNGER < 1


PHILOSOPHER_TABLES = st.one_of(
    st.builds(lambda n: topo.ring(n, two_way=True, workload="philosophers"), st.integers(2, 7)),
    st.builds(lambda n: topo.complete(n, workload="philosophers"), st.integers(2, 5)),
    st.builds(lambda r, c: topo.grid(r, c, workload="philosophers"), st.integers(1, 3), st.integers(2, 3)),
    st.builds(lambda n: topo.star(n, workload="philosophers"), st.integers(2, 6)),
)


@fast
@given(spec=PHILOSOPHER_TABLES, seed=st.integers(0, 2**32), hunger=st.sampled_from([0.1, HUNGER, 1.0]))
def test_every_fork_is_always_in_exactly_one_place(spec: dict[str, Any], seed: int, hunger: float) -> None:
    table = Table(spec, seed, {"hunger": hunger})
    pairs = {frozenset(c[:2]) for c in spec["channels"]}
    for _ in range(300):
        table.move()
        places = dict.fromkeys(pairs, 0)
        for name, state in table.states.items():
            assert state["forks"] == len(state["held"])
            for neighbour in state["held"]:
                places[frozenset((name, neighbour))] += 1
            if state["status"] == "hungry":
                assert set(state["waiting"]) <= set(state["neighbours"]) - set(state["held"])
                assert len(state["waiting"]) <= 1
            else:
                assert state["waiting"] == []
        for src, dst, payload in table.in_flight():
            if table.wl.grants(payload) is not None:
                assert table.wl.grants(payload) == dst
                places[frozenset((src, dst))] += 1
        assert set(places.values()) == {1}, places
        assert table.conserved_total() == len(pairs)


def deadlocked(table: Table) -> bool:
    """Every philosopher hungry, each waiting for a neighbour that holds their fork and is hungry too."""
    granted = {(dst, src) for src, dst, payload in table.in_flight() if table.wl.grants(payload)}
    for name, state in table.states.items():
        waits = [q for q in table.wl.waits_for(state) if (name, q) not in granted]
        if not waits:
            return False
    return True


def run_until_deadlock(seed: int, rounds: int = 2000) -> Table | None:
    """Five philosophers; each round every one steps once in random order, messages arrive fast."""
    table = Table(topo.ring(5, two_way=True, workload="philosophers"), seed)
    for _ in range(rounds):
        order = table.names[:]
        table.rng.shuffle(order)
        for name in order:
            table.act(name)
            while table.busy() and table.rng.random() < 0.9:
                table.deliver(*table.rng.choice(table.busy()))
        if deadlocked(table):
            return table
    return None


def test_five_philosophers_deadlock_and_stay_deadlocked() -> None:
    found = [table for seed in range(10) if (table := run_until_deadlock(seed)) is not None]
    assert len(found) >= 8, "five philosophers should deadlock within 2000 steps each, nearly always"
    table = found[0]
    while table.busy():  # what was still on its way arrives; it changes nothing
        table.deliver(*table.busy()[0])
    assert deadlocked(table)
    frozen = repr(table.states)
    for _ in range(200):
        for name in table.names:
            assert table.act(name) == []
    assert repr(table.states) == frozen
    assert all(state["forks"] == 1 for state in table.states.values())  # each holds one and waits for one


def test_philosophers_eat_before_they_deadlock() -> None:
    table = run_until_deadlock(seed=3)
    assert table is not None
    assert sum(state["meals"] for state in table.states.values()) > 0
