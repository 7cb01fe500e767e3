"""Stable properties, read off a complete snapshot: conservation, termination, deadlock.

A property is *stable* when, once it holds, it holds for ever: a computation that has
terminated stays terminated, a deadlock never resolves itself. Chandy and Lamport's
point is that a consistent snapshot is enough to detect one: if the property holds in
the recorded global state, it holds now and in every later state of the run. (If it
does not hold in the snapshot, it may still have become true since — take another.)

Conservation is not stable but an invariant: it holds in every consistent cut, which
is what makes it the check of a snapshot's soundness (``cluster/core/verdict.py``).

``detect`` returns, for each property, ``{"holds": True | False | None, "detail": str, …}``
— None when the property means nothing for the workload (a bank never terminates and
makes no requests, so it can neither terminate nor deadlock). The details are written
for a student reading the dashboard. Pure: it reads records exactly as they are exported.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from cluster.core.wire import RecordedChannel, RecordedProcess, channel_id
from cluster.core.workloads import WORKLOADS, Workload

Result = dict[str, Any]
PROPERTIES = ("conservation", "termination", "deadlock")


def detect(
    workload: str | Workload,
    processes: Iterable[str],
    channels: Iterable[tuple[str, str]],
    process_records: Iterable[RecordedProcess],
    channel_records: Iterable[RecordedChannel],
    verdict: dict[str, Any] | None,
) -> dict[str, Result]:
    wl = WORKLOADS[workload] if isinstance(workload, str) else workload
    names = list(processes)
    edges = [(src, dst) for src, dst in channels]
    by_process = {r["process"]: r for r in process_records}
    by_channel = {(r["src"], r["dst"]): r for r in channel_records}
    missing = [p for p in names if p not in by_process] + [
        channel_id(s, d) for s, d in edges if (s, d) not in by_channel
    ]
    caveat = ""
    if verdict is not None and not verdict.get("consistent", True):
        caveat = " — but this snapshot is not a consistent cut, so the system may never have been in this state"
    results: dict[str, Result] = {}
    for prop in PROPERTIES:
        if (skip := _not_applicable(wl, prop)) is not None:
            results[prop] = skip
        elif missing:
            results[prop] = {"holds": None, "detail": f"the snapshot lacks the recorded state of {_list(missing)}"}
        elif prop == "conservation":
            results[prop] = conservation(wl, verdict)
        elif prop == "termination":
            results[prop] = _with_caveat(termination(wl, names, edges, by_process, by_channel), caveat)
        else:
            results[prop] = _with_caveat(deadlock(wl, names, edges, by_process, by_channel), caveat)
    if "cycle" not in results["deadlock"]:
        results["deadlock"]["cycle"] = []
    return results


def conservation(wl: Workload, verdict: dict[str, Any] | None) -> Result:
    """The workload's conserved quantity, as the verdict summed it."""
    if verdict is None or verdict.get("conserved") is None:
        return {"holds": None, "detail": "no verdict yet: the snapshot has not finished"}
    recorded, expected = int(verdict.get("recorded_total") or 0), int(verdict.get("expected_total") or 0)
    result: Result = {"holds": bool(verdict["conserved"]), "recorded_total": recorded, "expected_total": expected}
    if result["holds"]:
        result["detail"] = (
            f"{recorded} {wl.unit} in all, in the recorded states and channels, as at the start:"
            " nothing was created or lost"
        )
    elif recorded == expected:
        result["detail"] = f"{recorded} {wl.unit} counted, but the snapshot lacks some recorded states"
    else:
        result["detail"] = (
            f"{recorded} {wl.unit} recorded, but the run holds {expected} ({recorded - expected:+d}):"
            f" the snapshot counts some {wl.unit} twice or misses some — it is not a consistent cut"
        )
    return result


def termination(
    wl: Workload,
    names: list[str],
    edges: list[tuple[str, str]],
    by_process: dict[str, RecordedProcess],
    by_channel: dict[tuple[str, str], RecordedChannel],
) -> Result:
    """Terminated: every process passive and no application message in any channel."""
    active = [p for p in names if not wl.passive(by_process[p]["state"])]
    in_flight = {
        channel_id(s, d): len(by_channel[(s, d)]["messages"]) for s, d in edges if by_channel[(s, d)]["messages"]
    }
    result: Result = {"holds": not active and not in_flight, "active": active, "in_flight": in_flight}
    if result["holds"]:
        result["detail"] = (
            "terminated: every process is passive and every channel is empty, so nothing can ever"
            " make a process active again — termination is stable, the run stays this way"
        )
        return result
    reasons = []
    if active:
        reasons.append(f"{_list(active)} {'is' if len(active) == 1 else 'are'} still active")
    if in_flight:
        count = sum(in_flight.values())
        where = ", ".join(f"{channel}: {n}" for channel, n in in_flight.items())
        reasons.append(f"{count} message{'s' if count != 1 else ''} in flight ({where}) will wake processes up")
    result["detail"] = "not terminated at this cut: " + "; ".join(reasons)
    return result


def deadlock(
    wl: Workload,
    names: list[str],
    edges: list[tuple[str, str]],
    by_process: dict[str, RecordedProcess],
    by_channel: dict[tuple[str, str], RecordedChannel],
) -> Result:
    """Deadlocked: a cycle of processes each waiting for the next, with nothing on its way to end the wait.

    The wait-for graph has an edge p→q when p's recorded state waits for q; a grant
    recorded in flight from q to p (a fork on its way) removes it, since p will get what
    it waits for.
    """
    granted = {
        (grantee, src)
        for (src, _dst), rec in by_channel.items()
        for m in rec["messages"]
        if (grantee := wl.grants(m["payload"])) is not None
    }
    waits: dict[str, list[str]] = {}
    for p in names:
        waits[p] = [q for q in wl.waits_for(by_process[p]["state"]) if q in by_process and (p, q) not in granted]
    edges_in_flight = sorted(channel_id(q, p) for p, q in granted)
    cycle = _find_cycle(names, waits)
    waiting = {p: qs for p, qs in waits.items() if qs}
    result: Result = {"holds": bool(cycle), "cycle": cycle, "waits_for": waiting, "grants_in_flight": edges_in_flight}
    if cycle:
        chain = ", ".join(f"{p} waits for {cycle[(i + 1) % len(cycle)]}" for i, p in enumerate(cycle))
        result["detail"] = (
            f"deadlock: {chain}. Each holds what the one before it needs and gives nothing up while it waits,"
            " and nothing is on its way to any of them — a deadlock is stable, it will never end"
        )
    elif waiting:
        chain = "; ".join(f"{p} for {_list(qs)}" for p, qs in waiting.items())
        result["detail"] = f"no deadlock at this cut: some wait ({chain}), but no chain of waits closes into a cycle"
        if edges_in_flight:
            result["detail"] += f"; what others wait for is on its way ({', '.join(edges_in_flight)})"
    else:
        result["detail"] = "no deadlock at this cut: no process is waiting for another"
    return result


def _find_cycle(names: list[str], waits: dict[str, list[str]]) -> list[str]:
    """The first cycle of the wait-for graph, in process order, starting at its first process; [] if none."""
    done: set[str] = set()
    for root in names:
        if root in done:
            continue
        # Iterative depth-first search: the path so far, and where each node's edges stand.
        path: list[str] = [root]
        on_path = {root: 0}
        cursors = [0]
        while path:
            node = path[-1]
            targets = waits.get(node, [])
            if cursors[-1] < len(targets):
                nxt = targets[cursors[-1]]
                cursors[-1] += 1
                if nxt in on_path:
                    return _rotate(path[on_path[nxt] :], names)
                if nxt not in done:
                    on_path[nxt] = len(path)
                    path.append(nxt)
                    cursors.append(0)
            else:
                done.add(node)
                del on_path[node]
                path.pop()
                cursors.pop()
    return []


def _rotate(cycle: list[str], names: list[str]) -> list[str]:
    """Start a cycle at its first process in topology order, so the same deadlock always reads the same."""
    order = {name: i for i, name in enumerate(names)}
    start = min(range(len(cycle)), key=lambda i: order.get(cycle[i], len(names)))
    return cycle[start:] + cycle[:start]


_NOT_APPLICABLE = {
    "conservation": "the {name} workload has no conserved quantity to check",
    "termination": "the {name} workload never terminates: its processes always find something to do",
    "deadlock": "in the {name} workload no process ever waits for another, so it cannot deadlock",
}


def _not_applicable(wl: Workload, prop: str) -> Result | None:
    applies = {"conservation": wl.unit is not None, "termination": wl.can_terminate, "deadlock": wl.can_deadlock}
    if applies[prop]:
        return None
    return {"holds": None, "detail": _NOT_APPLICABLE[prop].format(name=wl.name)}


def _with_caveat(result: Result, caveat: str) -> Result:
    if caveat and result.get("holds") is not None:
        result["detail"] += caveat
    return result


def _list(items: list[str], limit: int = 5) -> str:
    shown = items[:limit]
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    if len(shown) == 1:
        return shown[0] + more
    return ", ".join(shown[:-1]) + (" and " + shown[-1] if not more else ", " + shown[-1]) + more
