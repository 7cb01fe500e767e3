"""Properties of topology checking, as the admin and the API use it (``topology.validate``).

Every generator makes a valid topology at every size up to 1000 processes; every
topology spoiled in one of the ways a person can spoil it is refused, with a message
that names what was spoiled; and no JSON at all makes the check do anything but accept
or refuse in words.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from snapshots import topology as topo
from snapshots.topology import MAX_VALUE
from snapshots.topology import validate as check

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
