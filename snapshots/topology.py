"""Topologies as plain data: validation and generators. Pure (stdlib only).

A topology is the JSON the CLI and the admin exchange::

    {"name": "ring-3", "workload": "bank",
     "processes": [{"name": "p1", "balance": 100}, ...],
     "channels": [["p1", "p2"], ...]}

Token topologies give ``"tokens"`` instead of ``"balance"``. Chandy–Lamport needs a
strongly connected graph of directed channels (every marker must reach every process),
so that and every other rule is checked here, with a message naming the problem.
"""

from __future__ import annotations

import random
import re
from collections import deque
from collections.abc import Iterable
from typing import Any

MAX_NAME_LENGTH = 64
# Process names become broker queue names and URL parts: keep them plain.
NAME_PATTERN = re.compile(r"[A-Za-z0-9_.-]+")
VALUE_KEYS = ("balance", "tokens")
MAX_VALUE = 2**31 - 1  # what the database column holds


class TopologyError(ValueError):
    """A topology that cannot be run; ``problems`` lists every reason, in words."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def graph_problems(names: list[str], channels: Iterable[tuple[str, str]]) -> list[str]:
    """Everything wrong with a graph of processes and directed channels."""
    problems: list[str] = []
    if len(names) < 2:
        problems.append(f"a topology needs at least 2 processes, this one has {len(names)}")
    seen_names: set[str] = set()
    for name in names:
        if not isinstance(name, str) or not name.strip():
            problems.append("a process name is empty")
        elif len(name) > MAX_NAME_LENGTH:
            problems.append(f"process name {name[:20]!r}… is longer than {MAX_NAME_LENGTH} characters")
        elif not NAME_PATTERN.fullmatch(name):
            problems.append(f"process name {name!r} may hold only letters, digits, '_', '-' and '.'")
        elif name in seen_names:
            problems.append(f"process name {name!r} is used twice")
        if isinstance(name, str):  # a name from JSON may be a list, which no set can hold
            seen_names.add(name)
    edges: list[tuple[str, str]] = []
    seen_edges: set[tuple[str, str]] = set()
    for channel in channels:
        if not (isinstance(channel, (list, tuple)) and len(channel) == 2):
            problems.append(f"channel {channel!r} is not a [source, destination] pair")
            continue
        src, dst = channel
        unknown = [n for n in (src, dst) if not isinstance(n, str) or n not in seen_names]
        if unknown:
            problems.append(f"channel {src}→{dst} names unknown process {', '.join(map(str, unknown))}")
        elif src == dst:
            problems.append(f"channel {src}→{dst} is a self-loop")
        elif (src, dst) in seen_edges:
            problems.append(f"channel {src}→{dst} is defined twice")
        else:
            seen_edges.add((src, dst))
            edges.append((src, dst))
    if not problems:
        problems.extend(_connectivity_problems(names, edges))
    return problems


def _reachable(start: str, adjacency: dict[str, list[str]]) -> set[str]:
    seen = {start}
    queue = deque([start])
    while queue:
        for nxt in adjacency[queue.popleft()]:
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    return seen


def _connectivity_problems(names: list[str], edges: list[tuple[str, str]]) -> list[str]:
    forward: dict[str, list[str]] = {n: [] for n in names}
    backward: dict[str, list[str]] = {n: [] for n in names}
    for src, dst in edges:
        forward[src].append(dst)
        backward[dst].append(src)
    root = names[0]
    # Strongly connected iff the root reaches everyone and everyone reaches the root.
    reached = _reachable(root, forward)
    unreached = [n for n in names if n not in reached]
    if unreached:
        return [f"{root} cannot reach {unreached[0]}" + _more(unreached) + " (the graph must be strongly connected)"]
    returning = _reachable(root, backward)
    cannot_return = [n for n in names if n not in returning]
    if cannot_return:
        return [
            f"{cannot_return[0]} cannot reach {root}" + _more(cannot_return) + " (the graph must be strongly connected)"
        ]
    return []


def _more(names: list[str]) -> str:
    return f" (nor {len(names) - 1} more)" if len(names) > 1 else ""


def state_problems(processes: list[dict[str, Any]], workload: str) -> list[str]:
    """Initial states that the workload cannot start from."""
    problems: list[str] = []
    for proc in processes:
        name = proc.get("name")
        for key in VALUE_KEYS:
            if key in proc:
                value = proc[key]
                if isinstance(value, bool) or not isinstance(value, int):
                    problems.append(f"{name}: {key} must be a whole number, not {value!r}")
                elif value < 0:
                    problems.append(f"{name}: {key} must not be negative ({value})")
                elif value > MAX_VALUE:
                    problems.append(f"{name}: {key} must be at most {MAX_VALUE} ({value})")
    if workload == "token":
        total = sum(p.get("tokens", 0) for p in processes if isinstance(p.get("tokens", 0), int))
        if total != 1:
            problems.append(f"the token workload needs exactly one token in all, this topology has {total}")
    return problems


def validate(data: Any) -> dict[str, Any]:
    """Check topology JSON; return it normalised, or raise :class:`TopologyError`."""
    if not isinstance(data, dict):
        raise TopologyError(["a topology must be a JSON object"])
    problems: list[str] = []
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        problems.append("the topology needs a name")
    elif len(name) > MAX_NAME_LENGTH:
        problems.append(f"the topology name is longer than {MAX_NAME_LENGTH} characters")
    workload = data.get("workload", "bank")
    if workload not in ("bank", "token"):
        problems.append(f"unknown workload {workload!r}; choose bank or token")
    processes = data.get("processes")
    channels = data.get("channels")
    if not isinstance(processes, list) or not all(isinstance(p, dict) for p in processes):
        raise TopologyError([*problems, "processes must be a list of objects with a name"])
    if not isinstance(channels, list):
        raise TopologyError([*problems, "channels must be a list of [source, destination] pairs"])
    names = [p.get("name") for p in processes]
    problems.extend(graph_problems(names, channels))  # type: ignore[arg-type]
    problems.extend(state_problems(processes, workload))
    if problems:
        raise TopologyError(problems)
    return {
        "name": name,
        "workload": workload,
        "processes": [{"name": p["name"], **{k: p[k] for k in VALUE_KEYS if k in p}} for p in processes],
        "channels": [[s, d] for s, d in channels],
    }


# --- generators ---------------------------------------------------------------------------


def _names(n: int) -> list[str]:
    return [f"p{i}" for i in range(1, n + 1)]


def _topology(name: str, names: list[str], edges: list[tuple[str, str]], workload: str, value: int) -> dict[str, Any]:
    key = "tokens" if workload == "token" else "balance"
    processes = [{"name": n, key: (1 if i == 0 else 0) if workload == "token" else value} for i, n in enumerate(names)]
    return {"name": name, "workload": workload, "processes": processes, "channels": [list(e) for e in edges]}


def ring(
    n: int, two_way: bool = False, workload: str = "bank", value: int = 100, name: str | None = None
) -> dict[str, Any]:
    names = _names(n)
    edges = [(names[i], names[(i + 1) % n]) for i in range(n)]
    if two_way:
        one_way = set(edges)
        edges += [(d, s) for s, d in edges if (d, s) not in one_way]
    return _topology(name or f"ring-{n}", names, edges, workload, value)


def line(n: int, workload: str = "bank", value: int = 100, name: str | None = None) -> dict[str, Any]:
    names = _names(n)
    edges = [(names[i], names[i + 1]) for i in range(n - 1)]
    edges += [(d, s) for s, d in edges]
    return _topology(name or f"line-{n}", names, edges, workload, value)


def complete(n: int, workload: str = "bank", value: int = 100, name: str | None = None) -> dict[str, Any]:
    names = _names(n)
    edges = [(a, b) for a in names for b in names if a != b]
    return _topology(name or f"complete-{n}", names, edges, workload, value)


def star(n: int, workload: str = "bank", value: int = 100, name: str | None = None) -> dict[str, Any]:
    names = _names(n)
    edges = [(names[0], leaf) for leaf in names[1:]] + [(leaf, names[0]) for leaf in names[1:]]
    return _topology(name or f"star-{n}", names, edges, workload, value)


def grid(rows: int, cols: int, workload: str = "bank", value: int = 100, name: str | None = None) -> dict[str, Any]:
    names = [f"p{r}_{c}" for r in range(1, rows + 1) for c in range(1, cols + 1)]
    edges: list[tuple[str, str]] = []
    for r in range(1, rows + 1):
        for c in range(1, cols + 1):
            for r2, c2 in ((r, c + 1), (r + 1, c)):
                if r2 <= rows and c2 <= cols:
                    edges += [(f"p{r}_{c}", f"p{r2}_{c2}"), (f"p{r2}_{c2}", f"p{r}_{c}")]
    return _topology(name or f"grid-{rows}x{cols}", names, edges, workload, value)


def random_strongly_connected(
    n: int, degree: float = 2.0, seed: int = 0, workload: str = "bank", value: int = 100, name: str | None = None
) -> dict[str, Any]:
    """A random directed graph with average out-degree ``degree``, strongly connected.

    A random Hamiltonian cycle guarantees strong connectivity; random extra channels
    bring the average out-degree up to ``degree``.
    """
    rng = random.Random(seed)
    names = _names(n)
    order = names[:]
    rng.shuffle(order)
    edges = {(order[i], order[(i + 1) % n]) for i in range(n)}
    target = max(n, min(round(degree * n), n * (n - 1)))
    while len(edges) < target:
        a, b = rng.sample(names, 2)
        edges.add((a, b))
    position = {name: i for i, name in enumerate(names)}
    ordered = sorted(edges, key=lambda e: (position[e[0]], position[e[1]]))
    return _topology(name or f"random-{n}", names, ordered, workload, value)
