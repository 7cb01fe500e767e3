"""Topologies as plain data: validation and generators. Pure (stdlib only).

A topology is the JSON the CLI and the admin exchange::

    {"name": "ring-3", "workload": "bank",
     "processes": [{"name": "p1", "balance": 100}, ...],
     "channels": [["p1", "p2"], ["p2", "p3", {"delay_ms": 200, "reorder": true}], ...]}

A process's initial value sits under its workload's ``value_key`` (see
``cluster/core/workloads.py``): ``balance`` (bank), ``tokens`` (token), ``jobs`` (diffusion),
``forks`` (philosophers). A channel is ``[source, destination]``, or
``[source, destination, {faults}]`` for a channel that is not a plain reliable FIFO one
(:func:`validate_faults`); an export keeps the faults only where some are set.

Chandy–Lamport needs a strongly connected graph of directed channels (every marker must
reach every process), so that and every other rule is checked here, with a message
naming the problem.
"""

from __future__ import annotations

import math
import random
import re
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any

from cluster.core.wire import channel_id
from cluster.core.workloads import WORKLOADS, get_workload, starting_forks

MAX_NAME_LENGTH = 64
# Process names become broker queue names and URL parts: keep them plain.
NAME_PATTERN = re.compile(r"[A-Za-z0-9_.-]+")
# A topology name is free text, but it ends up in headers (a download's file name), in
# terminals and in pages: no character there may end a field, start a line or turn the
# text around (U+202E shows "json.exe" as "exe.nosj").
FORBIDDEN_IN_NAMES = frozenset("\"'`;\\")
VALUE_KEYS = tuple(w.value_key for w in WORKLOADS.values())  # balance, tokens, jobs, forks
MAX_VALUE = 2**31 - 1  # what the database column holds

# Channel faults, all off: a plain reliable FIFO channel.
NO_FAULTS: dict[str, Any] = {"delay_ms": 0, "reorder": False, "loss": 0.0}
MAX_DELAY_MS = 10_000
MAX_LOSS = 0.9  # a channel that loses everything never delivers, even with retransmission
FAULTS_EXAMPLE = '{"delay_ms": 200, "reorder": true, "loss": 0.1}'


class TopologyError(ValueError):
    """A topology that cannot be run; ``problems`` lists every reason, in words."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def graph_problems(names: list[str], channels: Iterable[Sequence[Any]]) -> list[str]:
    """Everything wrong with a graph of processes and directed channels (a channel's faults aside)."""
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
        if not (isinstance(channel, (list, tuple)) and len(channel) in (2, 3)):
            problems.append(
                f"channel {channel!r} is not a [source, destination] pair (or [source, destination, {{faults}}])"
            )
            continue
        src, dst = channel[0], channel[1]
        unknown = [n for n in (src, dst) if not isinstance(n, str) or n not in seen_names]
        if unknown:
            problems.append(f"channel {channel_id(src, dst)} names unknown process {', '.join(map(str, unknown))}")
        elif src == dst:
            problems.append(f"channel {channel_id(src, dst)} is a self-loop")
        elif (src, dst) in seen_edges:
            problems.append(f"channel {channel_id(src, dst)} is defined twice")
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


def state_problems(
    processes: list[dict[str, Any]], workload: str, channels: Iterable[Sequence[Any]] | None = None
) -> list[str]:
    """Initial states that the workload cannot start from.

    ``channels`` (the topology's, well formed) lets it check what depends on the graph:
    the philosophers' forks. Without them those checks are skipped.
    """
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
        total = _total(processes, "tokens")
        if total != 1:
            problems.append(f"the token workload needs exactly one token in all, this topology has {total}")
    elif workload == "diffusion":
        if _total(processes, "jobs") <= 0:
            problems.append("the diffusion workload needs jobs to start from: give at least one process jobs above 0")
    elif workload == "philosophers" and channels is not None:
        problems.extend(_fork_problems(processes, [(c[0], c[1]) for c in channels]))
    return problems


def _total(processes: list[dict[str, Any]], key: str) -> int:
    return sum(v for p in processes if isinstance(v := p.get(key, 0), int) and not isinstance(v, bool))


def _fork_problems(processes: list[dict[str, Any]], edges: list[tuple[str, str]]) -> list[str]:
    """Philosophers share a fork with each neighbour, so every channel must go both ways, and
    each process must start with the forks the placement rule gives it (see ``cluster/core/workloads.py``)."""
    pairs = set(edges)
    one_way = [f"{channel_id(s, d)} has no {channel_id(d, s)}" for s, d in edges if (d, s) not in pairs]
    if one_way:
        return [
            "the philosophers workload needs every channel both ways (neighbours share a fork): "
            + "; ".join(one_way[:3])
            + (f" (nor {len(one_way) - 3} more)" if len(one_way) > 3 else "")
        ]
    neighbours: dict[str, list[str]] = {}
    for src, dst in edges:
        neighbours.setdefault(src, []).append(dst)
    problems: list[str] = []
    for proc in processes:
        name, value = proc.get("name"), proc.get("forks", 0)
        if not isinstance(name, str) or isinstance(value, bool) or not isinstance(value, int):
            continue  # reported above
        mine = starting_forks(name, neighbours.get(name, []))
        if value != len(mine):
            shared = f"the ones it shares with {_and(mine)}" if mine else "no fork"
            problems.append(
                f"{name}: forks must be {len(mine)}, not {value}: a philosopher starts with {shared}"
                " (a fork starts at the neighbour whose name sorts first)"
            )
    return problems


def _and(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


# --- channel faults -----------------------------------------------------------------------


def validate_faults(faults: Any, channel: str = "") -> dict[str, Any]:
    """Check one channel's fault settings; return all three, normalised, or raise :class:`TopologyError`.

    ``{"delay_ms": int 0..10000, "reorder": bool, "loss": float 0..0.9}``, each optional
    (absent = off). ``channel`` ("p1→p2") names the channel in the messages.
    """
    normalised, problems = _faults(faults, channel)
    if problems:
        raise TopologyError(problems)
    return normalised


def changed_faults(faults: dict[str, Any]) -> dict[str, Any]:
    """The settings that differ from a plain reliable FIFO channel: what an export keeps."""
    return {key: value for key, value in faults.items() if value != NO_FAULTS[key]}


def _faults(faults: Any, channel: str) -> tuple[dict[str, Any], list[str]]:
    where = f"channel {channel}: " if channel else ""
    if not isinstance(faults, dict):
        return dict(NO_FAULTS), [f"{where}faults must be an object like {FAULTS_EXAMPLE}, not {faults!r}"]
    problems: list[str] = []
    unknown = [key for key in faults if key not in NO_FAULTS]
    if unknown:
        problems.append(f"{where}unknown fault {', '.join(map(repr, unknown))} (known: {', '.join(NO_FAULTS)})")
    normalised = dict(NO_FAULTS)
    delay = faults.get("delay_ms", 0)
    if isinstance(delay, bool) or not isinstance(delay, int) or not 0 <= delay <= MAX_DELAY_MS:
        problems.append(
            f"{where}delay_ms must be a whole number of milliseconds from 0 to {MAX_DELAY_MS}, not {delay!r}"
        )
    else:
        normalised["delay_ms"] = delay
    reorder = faults.get("reorder", False)
    if not isinstance(reorder, bool):
        problems.append(f"{where}reorder must be true or false, not {reorder!r}")
    else:
        normalised["reorder"] = reorder
    loss = faults.get("loss", 0.0)
    if (
        isinstance(loss, bool)
        or not isinstance(loss, (int, float))
        or not math.isfinite(loss)
        or not 0 <= loss <= MAX_LOSS
    ):
        problems.append(
            f"{where}loss must be a fraction from 0 to {MAX_LOSS} (0.1 loses one frame in ten), not {loss!r}"
        )
    else:
        normalised["loss"] = float(loss)
    return normalised, problems


def topology_name_allowed(name: str) -> bool:
    """Printable (no control, format — bidi among them — or separator characters but the
    space) and free of quotes, backslashes and semicolons."""
    return name.isprintable() and FORBIDDEN_IN_NAMES.isdisjoint(name)


def shown_name(name: str) -> str:
    """A name as it may safely be shown: as it is if allowed, else quoted with its control
    and bidi characters escaped (``'a\\u202eb'``), as names stored before the rule are."""
    return name if topology_name_allowed(name) else repr(name)


def file_name(name: str) -> str:
    """A name fit for a download's file name: each character a name may not hold is ``_``."""
    return "".join(c if topology_name_allowed(c) else "_" for c in name)


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
    elif not topology_name_allowed(name):
        problems.append(
            f"the topology name {name!r} may hold no control or bidi characters,"
            f" quotes, backslashes or semicolons ({' '.join(sorted(FORBIDDEN_IN_NAMES))})"
        )
    workload = data.get("workload", "bank")
    if not isinstance(workload, str) or workload not in WORKLOADS:
        problems.append(f"unknown workload {workload!r}; choose {_or(list(WORKLOADS))}")
    processes = data.get("processes")
    channels = data.get("channels")
    if not isinstance(processes, list) or not all(isinstance(p, dict) for p in processes):
        raise TopologyError([*problems, "processes must be a list of objects with a name"])
    if not isinstance(channels, list):
        raise TopologyError([*problems, "channels must be a list of [source, destination] pairs"])
    names = [p.get("name") for p in processes]
    graph = graph_problems(names, channels)
    problems.extend(graph)
    faults: list[dict[str, Any]] = []
    for channel in channels:
        if isinstance(channel, (list, tuple)) and len(channel) == 3:
            normalised, wrong = _faults(channel[2], channel_id(channel[0], channel[1]))
            problems.extend(wrong)
            faults.append(changed_faults(normalised))
        else:
            faults.append({})
    problems.extend(state_problems(processes, workload, None if graph else channels))
    if problems:
        raise TopologyError(problems)
    return {
        "name": name,
        "workload": workload,
        "processes": [{"name": p["name"], **{k: p[k] for k in VALUE_KEYS if k in p}} for p in processes],
        "channels": [[c[0], c[1], f] if f else [c[0], c[1]] for c, f in zip(channels, faults, strict=True)],
    }


def _or(words: list[str]) -> str:
    return ", ".join(words[:-1]) + " or " + words[-1]


# --- generators ---------------------------------------------------------------------------


def _names(n: int) -> list[str]:
    return [f"p{i}" for i in range(1, n + 1)]


def _topology(name: str, names: list[str], edges: list[tuple[str, str]], workload: str, value: int) -> dict[str, Any]:
    """The topology JSON, each process starting with what its workload needs.

    bank: ``value`` each; token: the one token at the first process; diffusion: ``value``
    jobs at the first process (the root of the computation); philosophers: the forks
    the placement rule gives (``value`` is not used).
    """
    key = get_workload(workload).value_key
    neighbours: dict[str, list[str]] = {n: [] for n in names}
    for src, dst in edges:
        neighbours[src].append(dst)

    def initial(i: int, n: str) -> int:
        if workload == "token":
            return 1 if i == 0 else 0
        if workload == "diffusion":
            return value if i == 0 else 0
        if workload == "philosophers":
            return len(starting_forks(n, neighbours[n]))
        return value

    processes = [{"name": n, key: initial(i, n)} for i, n in enumerate(names)]
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
