"""Topology validation and generators (snapshots/topology.py)."""

from __future__ import annotations

from typing import Any

import pytest

from snapshots import topology
from snapshots.topology import TopologyError, validate


def ring3(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "ring-3",
        "workload": "bank",
        "processes": [{"name": "p1", "balance": 100}, {"name": "p2", "balance": 100}, {"name": "p3", "balance": 100}],
        "channels": [["p1", "p2"], ["p2", "p3"], ["p3", "p1"]],
    }
    data.update(changes)
    return data


def problems(data: Any) -> list[str]:
    with pytest.raises(TopologyError) as raised:
        validate(data)
    assert str(raised.value) == "; ".join(raised.value.problems)
    return raised.value.problems


def test_it_accepts_a_ring_and_normalises_it() -> None:
    data = ring3(description="ignored")
    data["processes"][0]["colour"] = "red"
    assert validate(data) == ring3()


def test_the_workload_defaults_to_bank() -> None:
    data = ring3()
    del data["workload"]
    assert validate(data)["workload"] == "bank"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "a topology must be a JSON object"),
        (ring3(name=""), "the topology needs a name"),
        (ring3(name="x" * 65), "the topology name is longer than 64 characters"),
        (ring3(workload="lottery"), "unknown workload 'lottery'; choose bank or token"),
        (ring3(processes={"p1": {}}), "processes must be a list of objects with a name"),
        (ring3(processes=["p1", "p2"]), "processes must be a list of objects with a name"),
        (ring3(channels="p1->p2"), "channels must be a list of [source, destination] pairs"),
    ],
)
def test_it_rejects_a_malformed_topology(data: Any, message: str) -> None:
    assert message in problems(data)


def test_it_rejects_fewer_than_two_processes() -> None:
    assert problems(ring3(processes=[{"name": "p1"}], channels=[])) == [
        "a topology needs at least 2 processes, this one has 1"
    ]


@pytest.mark.parametrize(
    ("bad_name", "message"),
    [
        ("", "a process name is empty"),
        ("   ", "a process name is empty"),
        (None, "a process name is empty"),
        ("p" * 65, f"process name {'p' * 20!r}… is longer than 64 characters"),
        ("p 3", "process name 'p 3' may hold only letters, digits, '_', '-' and '.'"),
        ("p1", "process name 'p1' is used twice"),
    ],
)
def test_it_rejects_a_bad_process_name(bad_name: Any, message: str) -> None:
    data = ring3()
    data["processes"][2]["name"] = bad_name
    assert message in problems(data)


def test_it_rejects_a_process_name_that_is_not_a_string_without_crashing() -> None:
    # JSON from the admin or the CLI can hold anything; a list is not hashable.
    data = ring3(channels=[["p1", "p2"], [["p2"], "p3"], ["p3", "p1"]])
    data["processes"][2]["name"] = ["p3"]
    found = problems(data)
    assert "a process name is empty" in found
    assert "channel ['p2']→p3 names unknown process ['p2'], p3" in found


@pytest.mark.parametrize(
    ("channel", "message"),
    [
        (["p1"], "channel ['p1'] is not a [source, destination] pair"),
        ("p1p2", "channel 'p1p2' is not a [source, destination] pair"),
        (["p1", "p9"], "channel p1→p9 names unknown process p9"),
        (["p8", "p9"], "channel p8→p9 names unknown process p8, p9"),
        (["p1", "p1"], "channel p1→p1 is a self-loop"),
        (["p1", "p2"], "channel p1→p2 is defined twice"),
    ],
)
def test_it_rejects_a_bad_channel(channel: Any, message: str) -> None:
    data = ring3()
    data["channels"].append(channel)
    assert problems(data) == [message]


def test_it_rejects_a_graph_the_first_process_cannot_reach_everyone_in() -> None:
    assert problems(ring3(channels=[["p1", "p2"], ["p2", "p1"], ["p3", "p1"]])) == [
        "p1 cannot reach p3 (the graph must be strongly connected)"
    ]


def test_it_rejects_a_graph_where_a_process_cannot_reach_the_first() -> None:
    assert problems(ring3(channels=[["p1", "p2"], ["p2", "p1"], ["p2", "p3"]])) == [
        "p3 cannot reach p1 (the graph must be strongly connected)"
    ]


def test_it_counts_the_other_processes_that_cannot_be_reached() -> None:
    data = ring3(channels=[["p2", "p3"], ["p3", "p2"], ["p2", "p1"]])
    assert problems(data) == ["p1 cannot reach p2 (nor 1 more) (the graph must be strongly connected)"]


def test_it_rejects_a_one_way_line() -> None:
    assert problems(ring3(channels=[["p1", "p2"], ["p2", "p3"]])) == [
        "p2 cannot reach p1 (nor 1 more) (the graph must be strongly connected)"
    ]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("100", "p2: balance must be a whole number, not '100'"),
        (1.5, "p2: balance must be a whole number, not 1.5"),
        (True, "p2: balance must be a whole number, not True"),
        (-5, "p2: balance must not be negative (-5)"),
    ],
)
def test_it_rejects_a_bad_initial_value(value: Any, message: str) -> None:
    data = ring3()
    data["processes"][1]["balance"] = value
    assert problems(data) == [message]


@pytest.mark.parametrize("tokens", [[0, 0, 0], [1, 1, 0]])
def test_the_token_workload_needs_exactly_one_token(tokens: list[int]) -> None:
    data = ring3(workload="token", processes=[{"name": f"p{i + 1}", "tokens": t} for i, t in enumerate(tokens)])
    assert problems(data) == [f"the token workload needs exactly one token in all, this topology has {sum(tokens)}"]


def test_it_reports_every_problem_at_once() -> None:
    data = ring3(name="", workload="lottery")
    data["channels"].append(["p1", "p1"])
    assert problems(data) == [
        "the topology needs a name",
        "unknown workload 'lottery'; choose bank or token",
        "channel p1→p1 is a self-loop",
    ]


@pytest.mark.parametrize("n", [2, 3, 10, 1000])
def test_ring_generates_a_valid_topology(n: int) -> None:
    data = topology.ring(n)
    assert validate(data) == data
    assert len(data["processes"]) == n and len(data["channels"]) == n
    two_way = topology.ring(n, two_way=True, workload="token")
    assert validate(two_way) == two_way
    assert len(two_way["channels"]) == (2 if n == 2 else 2 * n)


@pytest.mark.parametrize("n", [2, 3, 10, 1000])
@pytest.mark.parametrize("degree", [1.0, 2.5])
def test_random_strongly_connected_generates_a_valid_topology(n: int, degree: float) -> None:
    data = topology.random_strongly_connected(n, degree=degree, seed=n)
    assert validate(data) == data
    assert len(data["channels"]) == max(n, min(round(degree * n), n * (n - 1)))


def test_random_strongly_connected_is_the_same_for_the_same_seed_only() -> None:
    assert topology.random_strongly_connected(20, seed=1) == topology.random_strongly_connected(20, seed=1)
    assert topology.random_strongly_connected(20, seed=1) != topology.random_strongly_connected(20, seed=2)


@pytest.mark.parametrize("n", [2, 3, 10, 50])
@pytest.mark.parametrize("make", [topology.line, topology.complete, topology.star])
def test_other_generators_make_valid_topologies(n: int, make: Any) -> None:
    for workload in ("bank", "token"):
        data = make(n, workload=workload)
        assert validate(data) == data


@pytest.mark.parametrize(("rows", "cols"), [(1, 2), (2, 2), (3, 4), (10, 10)])
def test_grid_generates_a_valid_topology(rows: int, cols: int) -> None:
    data = topology.grid(rows, cols)
    assert validate(data) == data
    assert len(data["processes"]) == rows * cols


def test_a_generated_token_topology_starts_with_one_token_at_the_first_process() -> None:
    data = topology.ring(4, workload="token")
    assert [p["tokens"] for p in data["processes"]] == [1, 0, 0, 0]
