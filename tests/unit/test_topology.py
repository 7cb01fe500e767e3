"""Topology validation and generators (cluster/core/topology.py).

First case by case; then properties of topology checking, as the admin and the API use
it (``topology.validate``): every generator makes a valid topology at every size up to
1000 processes; every topology spoiled in one of the ways a person can spoil it is
refused, with a message that names what was spoiled; and no JSON at all makes the check
do anything but accept or refuse in words.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cluster.core import topology
from cluster.core import topology as topo
from cluster.core.topology import MAX_VALUE, TopologyError, validate
from cluster.core.topology import validate as check


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
        (ring3(workload="lottery"), "unknown workload 'lottery'; choose bank, token, diffusion or philosophers"),
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
        (["p1"], "channel ['p1'] is not a [source, destination] pair (or [source, destination, {faults}])"),
        ("p1p2", "channel 'p1p2' is not a [source, destination] pair (or [source, destination, {faults}])"),
        (
            ["p1", "p2", {}, {}],
            "channel ['p1', 'p2', {}, {}] is not a [source, destination] pair (or [source, destination, {faults}])",
        ),
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
        "unknown workload 'lottery'; choose bank, token, diffusion or philosophers",
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


# --- channel faults ----------------------------------------------------------------------


def test_a_channel_may_carry_faults_and_the_export_keeps_only_those_set() -> None:
    data = ring3(channels=[["p1", "p2", {"delay_ms": 250, "reorder": True}], ["p2", "p3", {}], ["p3", "p1"]])
    data["channels"].append(["p2", "p1", {"delay_ms": 0, "reorder": False, "loss": 0}])
    assert validate(data)["channels"] == [
        ["p1", "p2", {"delay_ms": 250, "reorder": True}],
        ["p2", "p3"],
        ["p3", "p1"],
        ["p2", "p1"],
    ]


def test_loss_is_normalised_to_a_fraction() -> None:
    data = ring3(channels=[["p1", "p2", {"loss": 0.25}], ["p2", "p3", {"loss": 0}], ["p3", "p1"]])
    assert validate(data)["channels"][:2] == [["p1", "p2", {"loss": 0.25}], ["p2", "p3"]]


@pytest.mark.parametrize(
    ("faults", "message"),
    [
        (
            {"delay_ms": 10_001},
            "channel p1→p2: delay_ms must be a whole number of milliseconds from 0 to 10000, not 10001",
        ),
        ({"delay_ms": -1}, "channel p1→p2: delay_ms must be a whole number of milliseconds from 0 to 10000, not -1"),
        ({"delay_ms": 2.5}, "channel p1→p2: delay_ms must be a whole number of milliseconds from 0 to 10000, not 2.5"),
        (
            {"delay_ms": True},
            "channel p1→p2: delay_ms must be a whole number of milliseconds from 0 to 10000, not True",
        ),
        (
            {"delay_ms": "50"},
            "channel p1→p2: delay_ms must be a whole number of milliseconds from 0 to 10000, not '50'",
        ),
        ({"reorder": 1}, "channel p1→p2: reorder must be true or false, not 1"),
        ({"reorder": "yes"}, "channel p1→p2: reorder must be true or false, not 'yes'"),
        ({"loss": 0.95}, "channel p1→p2: loss must be a fraction from 0 to 0.9 (0.1 loses one frame in ten), not 0.95"),
        ({"loss": -0.1}, "channel p1→p2: loss must be a fraction from 0 to 0.9 (0.1 loses one frame in ten), not -0.1"),
        (
            {"loss": float("nan")},
            "channel p1→p2: loss must be a fraction from 0 to 0.9 (0.1 loses one frame in ten), not nan",
        ),
        (
            {"loss": False},
            "channel p1→p2: loss must be a fraction from 0 to 0.9 (0.1 loses one frame in ten), not False",
        ),
        ({"jitter": 5}, "channel p1→p2: unknown fault 'jitter' (known: delay_ms, reorder, loss)"),
        (
            ["delay_ms", 5],
            "channel p1→p2: faults must be an object like"
            ' {"delay_ms": 200, "reorder": true, "loss": 0.1}, not [\'delay_ms\', 5]',
        ),
    ],
)
def test_it_rejects_bad_faults_naming_the_channel(faults: Any, message: str) -> None:
    data = ring3()
    data["channels"][0] = ["p1", "p2", faults]
    assert problems(data) == [message]


def test_it_reports_every_bad_fault_of_a_channel() -> None:
    data = ring3()
    data["channels"][2] = ["p3", "p1", {"delay_ms": -5, "reorder": None, "loss": 2}]
    assert [p.split(":")[1].split()[0] for p in problems(data)] == ["delay_ms", "reorder", "loss"]


def test_validate_faults_fills_in_what_is_off() -> None:
    assert topology.validate_faults({}) == {"delay_ms": 0, "reorder": False, "loss": 0.0}
    assert topology.validate_faults({"loss": 0, "reorder": True}, "p1→p2") == {
        "delay_ms": 0,
        "reorder": True,
        "loss": 0.0,
    }
    assert topology.validate_faults({"delay_ms": 10_000, "loss": 0.9}) == {
        "delay_ms": 10_000,
        "reorder": False,
        "loss": 0.9,
    }


def test_validate_faults_refuses_in_words() -> None:
    with pytest.raises(TopologyError) as refused:
        topology.validate_faults({"delay_ms": 99_999, "loss": "a lot"}, "p2→p3")
    assert refused.value.problems == [
        "channel p2→p3: delay_ms must be a whole number of milliseconds from 0 to 10000, not 99999",
        "channel p2→p3: loss must be a fraction from 0 to 0.9 (0.1 loses one frame in ten), not 'a lot'",
    ]
    with pytest.raises(TopologyError, match=r"^reorder must be true or false, not 'no'$"):
        topology.validate_faults({"reorder": "no"})


def test_changed_faults_keeps_what_differs_from_a_plain_channel() -> None:
    assert topology.changed_faults({"delay_ms": 0, "reorder": False, "loss": 0.0}) == {}
    assert topology.changed_faults({"delay_ms": 5, "reorder": False, "loss": 0.5}) == {"delay_ms": 5, "loss": 0.5}


# --- the workloads' initial states ---------------------------------------------------------


def philosophers5(**changes: Any) -> dict[str, Any]:
    data = topology.ring(5, two_way=True, workload="philosophers", name="table")
    data.update(changes)
    return data


def test_the_new_workloads_keep_their_value_keys() -> None:
    data = ring3(workload="diffusion", processes=[{"name": "p1", "jobs": 5}, {"name": "p2"}, {"name": "p3", "jobs": 0}])
    assert validate(data)["processes"] == [{"name": "p1", "jobs": 5}, {"name": "p2"}, {"name": "p3", "jobs": 0}]
    assert validate(philosophers5())["processes"][0] == {"name": "p1", "forks": 2}


def test_the_diffusion_workload_needs_some_jobs() -> None:
    data = ring3(workload="diffusion", processes=[{"name": f"p{i}", "jobs": 0} for i in (1, 2, 3)])
    assert problems(data) == ["the diffusion workload needs jobs to start from: give at least one process jobs above 0"]


def test_a_generated_philosophers_table_starts_each_fork_at_the_first_name() -> None:
    # The fork of p1 and p5 starts at p1, so p1 holds two and p5 none.
    assert [p["forks"] for p in philosophers5()["processes"]] == [2, 1, 1, 1, 0]


def test_philosophers_need_every_channel_both_ways() -> None:
    data = philosophers5()
    data["channels"] = [c for c in data["channels"] if c != ["p2", "p1"]]
    assert problems(data) == [
        "the philosophers workload needs every channel both ways (neighbours share a fork): p1→p2 has no p2→p1"
    ]


def test_philosophers_one_way_channels_are_counted() -> None:
    data = topology.ring(6, workload="philosophers")
    [message] = problems(data)
    assert message.endswith("p1→p2 has no p2→p1; p2→p3 has no p3→p2; p3→p4 has no p4→p3 (nor 3 more)")


def test_philosophers_must_start_with_the_forks_the_rule_gives() -> None:
    data = philosophers5()
    data["processes"][0]["forks"] = 1
    del data["processes"][4]["forks"]  # missing is 0, which is right for p5
    assert problems(data) == [
        "p1: forks must be 2, not 1: a philosopher starts with the ones it shares with p2 and p5"
        " (a fork starts at the neighbour whose name sorts first)"
    ]
    data["processes"][0]["forks"] = 2
    data["processes"][4]["forks"] = 1
    assert problems(data) == [
        "p5: forks must be 0, not 1: a philosopher starts with no fork"
        " (a fork starts at the neighbour whose name sorts first)"
    ]


def test_state_problems_checks_forks_only_when_given_the_channels() -> None:
    processes = [{"name": "p1", "forks": 7}, {"name": "p2", "forks": 0}]
    assert topology.state_problems(processes, "philosophers") == []
    assert topology.state_problems(processes, "philosophers", [["p1", "p2"], ["p2", "p1"]]) == [
        "p1: forks must be 1, not 7: a philosopher starts with the ones it shares with p2"
        " (a fork starts at the neighbour whose name sorts first)"
    ]


def test_a_graph_problem_hides_the_fork_problems_it_would_cause() -> None:
    data = philosophers5()
    data["channels"].append(["p1", "p9"])
    assert problems(data) == ["channel p1→p9 names unknown process p9"]


@pytest.mark.parametrize("make", [topology.ring, topology.line, topology.complete, topology.star])
def test_generators_seed_a_diffusion_at_the_first_process(make: Any) -> None:
    data = make(4, workload="diffusion", value=30)
    assert validate(data) == data
    assert [p["jobs"] for p in data["processes"]] == [30, 0, 0, 0]


def test_generators_refuse_an_unknown_workload() -> None:
    with pytest.raises(ValueError, match="unknown workload 'lottery'"):
        topology.ring(3, workload="lottery")


# --- properties, by Hypothesis: generators at every size, spoiled topologies, any JSON -----


SIZES = st.integers(min_value=2, max_value=1000)
# Every generator suits these; philosophers need channels both ways (tested on their own below).
WORKLOADS = st.sampled_from(["bank", "token", "diffusion"])
fast = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def assert_valid(data: dict[str, Any], processes: int, channels: int) -> None:
    spec = check(data)
    assert (len(spec["processes"]), len(spec["channels"])) == (processes, channels)
    if data["workload"] == "token":
        assert sum(p["tokens"] for p in spec["processes"]) == 1
    if data["workload"] == "diffusion":
        assert [p["jobs"] > 0 for p in spec["processes"]] == [True] + [False] * (processes - 1)
    if data["workload"] == "philosophers":  # one fork per pair of neighbours
        assert sum(p["forks"] for p in spec["processes"]) == channels // 2


@fast
@given(n=SIZES, workload=WORKLOADS, two_way=st.booleans())
def test_rings_are_valid_at_every_size(n: int, workload: str, two_way: bool) -> None:
    channels = 2 * n if two_way and n > 2 else n
    assert_valid(topo.ring(n, two_way=two_way, workload=workload), n, channels)


@fast
@given(n=SIZES, workload=WORKLOADS)
def test_lines_and_stars_are_valid_at_every_size(n: int, workload: str) -> None:
    assert_valid(topo.line(n, workload=workload), n, 2 * (n - 1))
    assert_valid(topo.star(n, workload=workload), n, 2 * (n - 1))


@fast
@given(n=st.integers(min_value=2, max_value=60), workload=WORKLOADS)
def test_complete_graphs_are_valid(n: int, workload: str) -> None:
    assert_valid(topo.complete(n, workload=workload), n, n * (n - 1))


@fast
@given(rows=st.integers(1, 1000), cols=st.integers(1, 1000), workload=WORKLOADS)
def test_grids_are_valid_at_every_size(rows: int, cols: int, workload: str) -> None:
    if not 2 <= rows * cols <= 1000:
        return
    channels = 2 * (rows * (cols - 1) + cols * (rows - 1))
    assert_valid(topo.grid(rows, cols, workload=workload), rows * cols, channels)


@fast
@given(n=SIZES, degree=st.floats(1.0, 8.0), seed=st.integers(0, 2**31 - 1), workload=WORKLOADS)
def test_random_graphs_are_strongly_connected_with_the_degree_asked(
    n: int, degree: float, seed: int, workload: str
) -> None:
    data = topo.random_strongly_connected(n, degree=degree, seed=seed, workload=workload)
    expected = max(n, min(round(degree * n), n * (n - 1)))
    assert_valid(data, n, expected)
    assert data == topo.random_strongly_connected(n, degree=degree, seed=seed, workload=workload)  # seeded


@fast
@given(n=SIZES)
def test_philosophers_sit_at_every_two_way_generator(n: int) -> None:
    assert_valid(topo.ring(n, two_way=True, workload="philosophers"), n, 2 * n if n > 2 else 2)
    assert_valid(topo.line(n, workload="philosophers"), n, 2 * (n - 1))
    assert_valid(topo.star(n, workload="philosophers"), n, 2 * (n - 1))
    if n <= 60:
        assert_valid(topo.complete(n, workload="philosophers"), n, n * (n - 1))


@fast
@given(rows=st.integers(1, 40), cols=st.integers(1, 40))
def test_philosophers_sit_at_every_grid(rows: int, cols: int) -> None:
    if rows * cols >= 2:
        channels = 2 * (rows * (cols - 1) + cols * (rows - 1))
        assert_valid(topo.grid(rows, cols, workload="philosophers"), rows * cols, channels)


@pytest.mark.parametrize(
    "make",
    [
        lambda: topo.ring(1000),
        lambda: topo.ring(1000, two_way=True),
        lambda: topo.line(1000),
        lambda: topo.star(1000),
        lambda: topo.grid(25, 40),
        lambda: topo.random_strongly_connected(1000, degree=3.0, seed=1),
        lambda: topo.complete(141),  # the admin's largest complete graph (20000 channels)
    ],
)
def test_the_largest_generated_topologies_are_valid(make: Callable[[], dict[str, Any]]) -> None:
    check(make())


# --- spoiled topologies -----------------------------------------------------------------


def spoil_fewer_than_two(data: dict[str, Any], draw: Any) -> str:
    data["processes"] = data["processes"][:1]
    data["channels"] = []
    return "at least 2 processes"


def spoil_self_loop(data: dict[str, Any], draw: Any) -> str:
    name = draw(st.sampled_from(data["processes"]))["name"]
    data["channels"].append([name, name])
    return f"channel {name}→{name} is a self-loop"


def spoil_duplicate_channel(data: dict[str, Any], draw: Any) -> str:
    src, dst = draw(st.sampled_from(data["channels"]))
    data["channels"].append([src, dst])
    return f"channel {src}→{dst} is defined twice"


def spoil_connectivity(data: dict[str, Any], draw: Any) -> str:
    # Cut every channel into one process: nobody can reach it any more (and in a one-way
    # ring, the first process no longer reaches the next, which is the one named).
    name = draw(st.sampled_from(data["processes"][1:]))["name"]
    data["channels"] = [c for c in data["channels"] if c[1] != name]
    return "(the graph must be strongly connected)"


def value_key(proc: dict[str, Any]) -> str:
    return next(key for key in topo.VALUE_KEYS if key in proc)


def spoil_negative_value(data: dict[str, Any], draw: Any) -> str:
    proc = draw(st.sampled_from(data["processes"]))
    key = value_key(proc)
    proc[key] = draw(st.integers(max_value=-1))
    return f"{proc['name']}: {key} must not be negative"


def spoil_non_numeric_value(data: dict[str, Any], draw: Any) -> str:
    proc = draw(st.sampled_from(data["processes"]))
    key = value_key(proc)
    proc[key] = draw(
        st.one_of(st.text(), st.floats(allow_nan=False), st.booleans(), st.none(), st.lists(st.integers()))
    )
    return f"{proc['name']}: {key} must be a whole number"


def spoil_huge_value(data: dict[str, Any], draw: Any) -> str:
    proc = draw(st.sampled_from(data["processes"]))
    key = value_key(proc)
    proc[key] = draw(st.integers(min_value=MAX_VALUE + 1))
    return f"{proc['name']}: {key} must be at most {MAX_VALUE}"


def spoil_token_count(data: dict[str, Any], draw: Any) -> str:
    data["workload"] = "token"
    counts = draw(st.lists(st.integers(0, 3), min_size=len(data["processes"]), max_size=len(data["processes"])))
    if sum(counts) == 1:
        counts[0] += 1
    for proc, count in zip(data["processes"], counts, strict=True):
        for key in topo.VALUE_KEYS:
            proc.pop(key, None)
        proc["tokens"] = count
    return f"needs exactly one token in all, this topology has {sum(counts)}"


def spoil_empty_name(data: dict[str, Any], draw: Any) -> str:
    draw(st.sampled_from(data["processes"]))["name"] = draw(st.sampled_from(["", " ", "\t"]))
    return "a process name is empty"


def spoil_long_name(data: dict[str, Any], draw: Any) -> str:
    draw(st.sampled_from(data["processes"]))["name"] = "p" * draw(st.integers(65, 500))
    return "is longer than 64 characters"


def spoil_duplicate_name(data: dict[str, Any], draw: Any) -> str:
    first, second = draw(st.permutations(data["processes"]))[:2]
    second["name"] = first["name"]
    return f"process name {first['name']!r} is used twice"


def spoil_bad_characters(data: dict[str, Any], draw: Any) -> str:
    bad = draw(st.text(min_size=1, max_size=10).filter(lambda s: s.strip() and not topo.NAME_PATTERN.fullmatch(s)))
    draw(st.sampled_from(data["processes"]))["name"] = bad
    return "may hold only letters, digits"


def spoil_unknown_process(data: dict[str, Any], draw: Any) -> str:
    src = draw(st.sampled_from(data["processes"]))["name"]
    data["channels"].append([src, "nobody"])
    return "names unknown process nobody"


def spoil_faults(data: dict[str, Any], draw: Any) -> str:
    index = draw(st.integers(0, len(data["channels"]) - 1))
    src, dst = data["channels"][index][:2]
    key, bad = draw(
        st.sampled_from(
            [
                ("delay_ms", -1),
                ("delay_ms", 10_001),
                ("delay_ms", 1.5),
                ("reorder", "yes"),
                ("loss", 0.91),
                ("loss", "x"),
            ]
        )
    )
    data["channels"][index] = [src, dst, {key: bad}]
    return f"channel {src}→{dst}: {key} must be"


def spoil_no_jobs(data: dict[str, Any], draw: Any) -> str:
    data["workload"] = "diffusion"
    for proc in data["processes"]:
        for key in topo.VALUE_KEYS:
            proc.pop(key, None)
    return "the diffusion workload needs jobs to start from"


def spoil_forks(data: dict[str, Any], draw: Any) -> str:
    data["workload"] = "philosophers"
    for proc in data["processes"]:
        for key in topo.VALUE_KEYS:
            proc.pop(key, None)
        proc["forks"] = draw(st.integers(0, 3))
    last = data["processes"][-1]
    last["forks"] = 99  # more than any philosopher here has neighbours
    pairs = {(c[0], c[1]) for c in data["channels"]}
    if all((dst, src) in pairs for src, dst in pairs):
        return f"{last['name']}: forks must be"
    return "the philosophers workload needs every channel both ways"


SPOILERS = [
    spoil_fewer_than_two,
    spoil_self_loop,
    spoil_duplicate_channel,
    spoil_connectivity,
    spoil_negative_value,
    spoil_non_numeric_value,
    spoil_huge_value,
    spoil_token_count,
    spoil_empty_name,
    spoil_long_name,
    spoil_duplicate_name,
    spoil_bad_characters,
    spoil_unknown_process,
    spoil_faults,
    spoil_no_jobs,
    spoil_forks,
]

VALID = st.one_of(
    st.builds(lambda n: topo.ring(n, two_way=True), st.integers(3, 30)),
    st.builds(lambda n: topo.ring(n), st.integers(3, 30)),
    st.builds(lambda n: topo.complete(n), st.integers(3, 8)),
    st.builds(lambda n, s: topo.random_strongly_connected(n, 2.5, s), st.integers(3, 30), st.integers(0, 99)),
    st.builds(lambda n: topo.ring(n, workload="token"), st.integers(3, 30)),
    st.builds(lambda n: topo.ring(n, workload="diffusion"), st.integers(3, 30)),
    st.builds(lambda n: topo.ring(n, two_way=True, workload="philosophers"), st.integers(3, 30)),
    st.builds(lambda n: topo.grid(2, n, workload="philosophers"), st.integers(2, 10)),
)


@settings(max_examples=300, deadline=None)
@given(data=VALID, spoil=st.sampled_from(SPOILERS), draw=st.data())
def test_a_spoiled_topology_is_refused_naming_what_was_spoiled(
    data: dict[str, Any], spoil: Callable[..., str], draw: st.DataObject
) -> None:
    data = copy.deepcopy(data)
    expected = spoil(data, draw.draw)
    with pytest.raises(topo.TopologyError) as refused:
        check(data)
    problems = refused.value.problems
    assert problems and all(isinstance(p, str) and p for p in problems)
    assert any(expected in p for p in problems), (expected, problems)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
TOPOLOGY_SHAPED = st.fixed_dictionaries(
    {
        "name": JSON,
        "processes": st.lists(st.dictionaries(st.sampled_from(["name", *topo.VALUE_KEYS]), JSON)),
        "channels": JSON,
    },
    optional={"workload": JSON},
)


@settings(max_examples=300, deadline=None)
@given(data=st.one_of(JSON, TOPOLOGY_SHAPED))
def test_any_json_is_accepted_or_refused_in_words(data: Any) -> None:
    try:
        spec = check(data)
    except topo.TopologyError as refused:
        assert refused.problems and all(isinstance(p, str) and p for p in refused.problems)
    else:
        assert spec["name"] == data["name"]


# --- names that could shape a header, a terminal line or the text's direction (issue 15) ------


@pytest.mark.parametrize("name", ["a\rb", "a\nb", 'a"b', "a'b", "a;b", "a\\b", "a`b", "a\u202eb", "a\u2066b", "a\x00b"])
def test_a_topology_name_holds_no_control_bidi_quote_or_semicolon(name: str) -> None:
    data = {**topo.ring(3, name="x"), "name": name}
    with pytest.raises(topo.TopologyError) as refused:
        topo.validate(data)
    assert any("may hold no control or bidi characters" in p for p in refused.value.problems)


@pytest.mark.parametrize("name", ["ring-3", "ring 3", "élan (v2)", "環"])
def test_a_printable_name_is_kept_as_it_is(name: str) -> None:
    assert topo.validate({**topo.ring(3, name="x"), "name": name})["name"] == name
    assert topo.shown_name(name) == name


def test_a_name_stored_before_the_rule_is_shown_escaped_and_saved_as_a_safe_file_name() -> None:
    old = 'a"\r\n\u202eb'
    assert topo.shown_name(old) == "'a\"\\r\\n\\u202eb'"
    assert topo.file_name(old) == "a____b"
