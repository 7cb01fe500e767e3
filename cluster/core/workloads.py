"""What a simulated process *does*: the application whose global state is snapshotted.

A workload is pure: it is handed the process's state, its outgoing channels and a
random generator, and it returns the messages to send. The runtime and the simulator
call it the same way, so given the same rng a workload always does the same thing.

Four workloads, each there to show one thing a snapshot can tell:

* ``bank`` and ``token`` have a conserved quantity (their invariant), named by
  ``unit`` in the state and ``payload_unit`` in a message: the sum over every process's
  state and every message in flight never changes, so a consistent snapshot shows it whole;
* ``diffusion`` is a diffusing computation that terminates: a snapshot taken after the
  end shows every process passive and every channel empty (``passive``);
* ``philosophers`` (dining philosophers) can deadlock: a snapshot shows who waits for
  whom (``waits_for``) and which forks are on their way (``grants``). Forks are conserved.

``value_key`` is the key of a process's initial value in the topology JSON
(``{"name": "p1", "balance": 100}``); ``initial_state(value, name, neighbours)`` turns it
into the process's state. ``neighbours`` are the destinations of the process's outgoing
channels, the same names ``step`` is given as ``outgoing``.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

State = dict[str, Any]
Payload = dict[str, Any]

# How likely a thinking philosopher is to get hungry at a step: high enough that a run
# of five reaches a deadlock in a demo's time, low enough that it first eats a while.
HUNGER = 0.6


class Workload(Protocol):
    name: ClassVar[str]
    value_key: ClassVar[str]  # the topology JSON key of a process's initial value
    unit: ClassVar[str | None]  # the state key that holds the conserved quantity (None: nothing is conserved)
    payload_unit: ClassVar[str | None]  # the payload key that carries it
    state_keys: ClassVar[tuple[str, ...]]  # what a state holds: the names a watchpoint condition may use
    payload_keys: ClassVar[tuple[str, ...]]  # what a message may carry (``msg.<key>`` in a condition)
    can_terminate: ClassVar[bool]  # every process may become passive for good (see ``passive``)
    can_deadlock: ClassVar[bool]  # processes wait for each other (see ``waits_for``)

    def initial_state(self, value: int, name: str = "", neighbours: Iterable[str] = ()) -> State: ...

    def on_message(self, state: State, src: str, payload: Payload) -> None: ...

    def step(
        self, state: State, outgoing: tuple[str, ...], rng: random.Random, params: dict[str, Any]
    ) -> list[tuple[str, Payload]]: ...

    def passive(self, state: State) -> bool:
        """True when the process will send nothing until a message wakes it."""
        ...

    def waits_for(self, state: State) -> list[str]:
        """The processes this one waits for: each holds something it cannot go on without."""
        ...

    def grants(self, payload: Payload) -> str | None:
        """The process a message hands what it waits for (a fork), or None for any other message."""
        ...


@dataclass(frozen=True)
class _Never:
    """Defaults for a workload whose processes never wait for each other and never stop."""

    can_terminate: ClassVar[bool] = False
    can_deadlock: ClassVar[bool] = False

    def waits_for(self, state: State) -> list[str]:
        return []

    def grants(self, payload: Payload) -> str | None:
        return None


def state_value(workload: Workload, state: State) -> int:
    """How much of the conserved quantity a process's state holds (0 when nothing is conserved)."""
    return int(state.get(workload.unit, 0)) if workload.unit else 0


def payload_value(workload: Workload, payload: Payload) -> int:
    """How much of the conserved quantity a message carries (0 when nothing is conserved)."""
    return int(payload.get(workload.payload_unit, 0)) if workload.payload_unit else 0


@dataclass(frozen=True)
class Bank(_Never):
    """Each process holds a balance and sends random transfers ``{"amount": n}``.

    Invariant: the total of balances plus amounts in flight. A transfer leaves the
    sender's balance when it is sent and joins the receiver's when it is applied.
    """

    name: ClassVar[str] = "bank"
    value_key: ClassVar[str] = "balance"
    unit: ClassVar[str | None] = "balance"
    payload_unit: ClassVar[str | None] = "amount"
    state_keys: ClassVar[tuple[str, ...]] = ("balance",)
    payload_keys: ClassVar[tuple[str, ...]] = ("amount",)

    def initial_state(self, value: int, name: str = "", neighbours: Iterable[str] = ()) -> State:
        return {"balance": value}

    def on_message(self, state: State, src: str, payload: Payload) -> None:
        state["balance"] += payload["amount"]

    def step(
        self, state: State, outgoing: tuple[str, ...], rng: random.Random, params: dict[str, Any]
    ) -> list[tuple[str, Payload]]:
        if state["balance"] <= 0 or not outgoing:
            return []
        amount = rng.randint(1, min(state["balance"], int(params.get("max_amount", 10))))
        state["balance"] -= amount
        return [(rng.choice(outgoing), {"amount": amount})]

    def passive(self, state: State) -> bool:
        return bool(state["balance"] <= 0)


@dataclass(frozen=True)
class Token(_Never):
    """One token ``{"tokens": 1}`` circulates; whoever holds it passes it on at its next step.

    Invariant: exactly one token, at one process or in one channel. The runtime calls
    ``step`` once per hold period, so the rate sets how long a process keeps the token.
    """

    name: ClassVar[str] = "token"
    value_key: ClassVar[str] = "tokens"
    unit: ClassVar[str | None] = "tokens"
    payload_unit: ClassVar[str | None] = "tokens"
    state_keys: ClassVar[tuple[str, ...]] = ("tokens",)
    payload_keys: ClassVar[tuple[str, ...]] = ("tokens",)

    def initial_state(self, value: int, name: str = "", neighbours: Iterable[str] = ()) -> State:
        return {"tokens": value}

    def on_message(self, state: State, src: str, payload: Payload) -> None:
        state["tokens"] += payload["tokens"]

    def step(
        self, state: State, outgoing: tuple[str, ...], rng: random.Random, params: dict[str, Any]
    ) -> list[tuple[str, Payload]]:
        if state["tokens"] <= 0 or not outgoing:
            return []
        tokens, state["tokens"] = state["tokens"], 0
        return [(rng.choice(outgoing), {"tokens": tokens})]

    def passive(self, state: State) -> bool:
        return bool(state["tokens"] <= 0)


@dataclass(frozen=True)
class Diffusion(_Never):
    """A diffusing computation: work spreads from the processes that start with jobs, then dies out.

    State ``{"active": bool, "jobs": n, "done": n}``. A process that starts with jobs is
    active; every step of an active process finishes one job and, with probability
    ``params["spread"]`` (default 0.5), hands up to half of its remaining jobs to a random
    neighbour in one message ``{"jobs": n}``. A process that runs out of jobs turns
    passive; a passive process sends nothing, and only a message makes it active again.

    It terminates for sure: no step creates a job and every active step finishes one, so
    after as many active steps as there were jobs at the start, every process is passive
    and no message is in flight — a stable property, which a snapshot can then show.
    Nothing is conserved in the sense of a verdict (jobs are used up), so ``unit`` is None.
    """

    name: ClassVar[str] = "diffusion"
    value_key: ClassVar[str] = "jobs"
    unit: ClassVar[str | None] = None
    payload_unit: ClassVar[str | None] = None
    state_keys: ClassVar[tuple[str, ...]] = ("active", "jobs", "done")
    payload_keys: ClassVar[tuple[str, ...]] = ("jobs",)
    can_terminate: ClassVar[bool] = True

    def initial_state(self, value: int, name: str = "", neighbours: Iterable[str] = ()) -> State:
        return {"active": value > 0, "jobs": value, "done": 0}

    def on_message(self, state: State, src: str, payload: Payload) -> None:
        state["jobs"] += payload["jobs"]
        state["active"] = state["jobs"] > 0

    def step(
        self, state: State, outgoing: tuple[str, ...], rng: random.Random, params: dict[str, Any]
    ) -> list[tuple[str, Payload]]:
        if not state["active"]:
            return []
        state["jobs"] -= 1
        state["done"] += 1
        sends: list[tuple[str, Payload]] = []
        # One draw per active step whatever happens, so the rng stays in step with the run.
        spreads = rng.random() < float(params.get("spread", 0.5))
        if spreads and state["jobs"] > 0 and outgoing:
            share = rng.randint(1, (state["jobs"] + 1) // 2)
            state["jobs"] -= share
            sends.append((rng.choice(outgoing), {"jobs": share}))
        state["active"] = state["jobs"] > 0
        return sends

    def passive(self, state: State) -> bool:
        return not state["active"]


@dataclass(frozen=True)
class Philosophers(_Never):
    """Dining philosophers on any graph whose channels all go both ways: a run that can deadlock.

    Every pair of neighbours shares one fork; a philosopher eats only holding the forks
    it shares with all its neighbours. Where each fork starts is fixed by the names: the
    fork of p and q starts at whichever name sorts first as text (:func:`starting_forks`),
    so the topology's ``forks`` value of a process is the number it starts with.

    State::

        {"status": "thinking" | "hungry" | "eating", "forks": 1, "held": ["p2"],
         "waiting": ["p5"], "owed": [], "meals": 0, "neighbours": ["p2", "p5"]}

    ``held``: the neighbours whose shared fork this philosopher holds (``forks`` is how
    many, the conserved quantity); ``waiting``: the neighbours it has asked for their
    shared fork and not yet got it from; ``owed``: neighbours that asked it for theirs.

    Messages: a request ``{"request": "fork"}`` and a fork ``{"forks": 1, "to": "p2"}``.

    Each step a thinking philosopher either gets hungry (probability ``params["hunger"]``,
    default :data:`HUNGER`) or hands over the forks its neighbours asked for. A hungry
    philosopher picks its forks up one at a time in :func:`pick_up_order`, asking for
    the next one only once the last has come, and eats at once when it holds them all.
    Until then it keeps every fork it holds (hold and wait, no preemption), even one a
    neighbour asked for. So when every philosopher round a cycle holds a fork and waits
    for the next one's, nobody ever moves again: a deadlock, and a stable one. On a ring
    of five at the default hunger, a run deadlocks after a median of about 120 steps per
    philosopher (half a minute at 4–5 steps a second), and sometimes within a few.
    Eating takes one step; then the philosopher thinks again.
    """

    name: ClassVar[str] = "philosophers"
    value_key: ClassVar[str] = "forks"
    unit: ClassVar[str | None] = "forks"
    payload_unit: ClassVar[str | None] = "forks"
    state_keys: ClassVar[tuple[str, ...]] = ("status", "forks", "held", "waiting", "owed", "meals", "neighbours")
    payload_keys: ClassVar[tuple[str, ...]] = ("forks", "to", "request")
    can_deadlock: ClassVar[bool] = True

    def initial_state(self, value: int, name: str = "", neighbours: Iterable[str] = ()) -> State:
        around = pick_up_order(name, neighbours)
        held = starting_forks(name, around)
        if value != len(held):
            raise ValueError(
                f"philosopher {name!r} starts with {len(held)} forks (those it shares with"
                f" {', '.join(held) or 'nobody'}), not {value}"
            )
        return {
            "status": "thinking",
            "forks": len(held),
            "held": held,
            "waiting": [],
            "owed": [],
            "meals": 0,
            "neighbours": around,
        }

    def on_message(self, state: State, src: str, payload: Payload) -> None:
        if payload.get("forks"):
            _add(state["held"], src)
            state["forks"] = len(state["held"])
            _discard(state["waiting"], src)
        elif "request" in payload:
            _add(state["owed"], src)

    def step(
        self, state: State, outgoing: tuple[str, ...], rng: random.Random, params: dict[str, Any]
    ) -> list[tuple[str, Payload]]:
        if state["status"] == "eating":
            state["status"] = "thinking"
            return self._hand_over(state)
        sends: list[tuple[str, Payload]] = []
        if state["status"] == "thinking":
            if rng.random() >= float(params.get("hunger", HUNGER)):
                return self._hand_over(state)
            state["status"] = "hungry"
        lacking = self._lacking(state)
        if not lacking:
            state["status"] = "eating"
            state["meals"] += 1
        elif not state["waiting"]:
            _add(state["waiting"], lacking[0])
            sends.append((lacking[0], {"request": "fork"}))
        return sends

    def passive(self, state: State) -> bool:
        return state["status"] == "thinking" and not state["owed"]

    def waits_for(self, state: State) -> list[str]:
        return list(state["waiting"]) if state["status"] == "hungry" else []

    def grants(self, payload: Payload) -> str | None:
        to = payload.get("to")
        return to if payload.get("forks") and isinstance(to, str) else None

    def _lacking(self, state: State) -> list[str]:
        """The forks still to pick up, in this philosopher's order (see :func:`pick_up_order`)."""
        return [n for n in state["neighbours"] if n not in state["held"]]

    def _hand_over(self, state: State) -> list[tuple[str, Payload]]:
        """Give every owed fork this philosopher holds; an owed fork still on its way is given later."""
        sends: list[tuple[str, Payload]] = []
        for neighbour in list(state["owed"]):
            if neighbour in state["held"]:
                state["held"].remove(neighbour)
                state["owed"].remove(neighbour)
                sends.append((neighbour, {"forks": 1, "to": neighbour}))
        state["forks"] = len(state["held"])
        return sends


def pick_up_order(name: str, neighbours: Iterable[str]) -> list[str]:
    """The order a philosopher picks its forks up in: its neighbours by name, starting after its own.

    On a ring p1…p5 every philosopher first takes the fork it shares with the next one
    (p5's next is p1): the textbook "everyone takes the left fork first" that can deadlock.
    """
    ordered = sorted(set(neighbours))
    return [n for n in ordered if n > name] + [n for n in ordered if n < name]


def starting_forks(name: str, neighbours: Iterable[str]) -> list[str]:
    """The neighbours whose shared fork a philosopher starts with: those whose names sort after its own."""
    return sorted(n for n in set(neighbours) if name < n)


def _add(names: list[str], name: str) -> None:
    if name not in names:
        names.append(name)
        names.sort()


def _discard(names: list[str], name: str) -> None:
    if name in names:
        names.remove(name)


WORKLOADS: dict[str, Workload] = {w.name: w for w in (Bank(), Token(), Diffusion(), Philosophers())}


def get_workload(name: str) -> Workload:
    try:
        return WORKLOADS[name]
    except KeyError:
        raise ValueError(f"unknown workload {name!r}; choose one of {', '.join(sorted(WORKLOADS))}") from None
