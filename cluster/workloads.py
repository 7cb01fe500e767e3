"""What a simulated process *does*: the application whose global state is snapshotted.

A workload is pure: it is handed the process's state, the time since the process last
received something, and a random generator, and it returns the messages to send. The
runtime and the simulator call it the same way. Each workload has a conserved quantity
(its invariant), named by ``unit``: the sum of ``value`` over every process's state and
every message in flight never changes, so a consistent snapshot must show it whole.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

State = dict[str, Any]
Payload = dict[str, Any]


class Workload(Protocol):
    name: ClassVar[str]
    unit: ClassVar[str]  # the state key that holds the conserved quantity
    payload_unit: ClassVar[str]  # the payload key that carries it

    def initial_state(self, value: int) -> State: ...

    def on_message(self, state: State, src: str, payload: Payload) -> None: ...

    def step(
        self, state: State, outgoing: tuple[str, ...], rng: random.Random, params: dict[str, Any]
    ) -> list[tuple[str, Payload]]: ...


def state_value(workload: Workload, state: State) -> int:
    """How much of the conserved quantity a process's state holds."""
    return int(state.get(workload.unit, 0))


@dataclass(frozen=True)
class Bank:
    """Each process holds a balance and sends random transfers ``{"amount": n}``.

    Invariant: the total of balances plus amounts in flight. A transfer leaves the
    sender's balance when it is sent and joins the receiver's when it is applied.
    """

    name: ClassVar[str] = "bank"
    unit: ClassVar[str] = "balance"
    payload_unit: ClassVar[str] = "amount"

    def initial_state(self, value: int) -> State:
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


@dataclass(frozen=True)
class Token:
    """One token ``{"tokens": 1}`` circulates; whoever holds it passes it on at its next step.

    Invariant: exactly one token, at one process or in one channel. The runtime calls
    ``step`` once per hold period, so the rate sets how long a process keeps the token.
    """

    name: ClassVar[str] = "token"
    unit: ClassVar[str] = "tokens"
    payload_unit: ClassVar[str] = "tokens"

    def initial_state(self, value: int) -> State:
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


WORKLOADS: dict[str, Workload] = {w.name: w for w in (Bank(), Token())}


def get_workload(name: str) -> Workload:
    try:
        return WORKLOADS[name]
    except KeyError:
        raise ValueError(f"unknown workload {name!r}; choose one of {', '.join(sorted(WORKLOADS))}") from None


def payload_value(workload: Workload, payload: Payload) -> int:
    """How much of the conserved quantity a message carries."""
    return int(payload.get(workload.payload_unit, 0))
