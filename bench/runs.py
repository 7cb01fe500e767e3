"""Runs of the real cluster, driven through the services as the CLI drives them."""

from __future__ import annotations

import time
import uuid
from collections import deque
from dataclasses import dataclass
from typing import Any

from cluster.core import topology as topo


@dataclass
class Counters:
    at: float
    sent: int
    applied: int
    markers: int


def topology(spec: dict[str, Any]) -> str:
    """Import a generated topology under a fresh name; return the name."""
    from snapshots import services

    name = f"{spec['name']}-{uuid.uuid4().hex[:6]}"
    services.import_topology({**spec, "name": name})
    return name


def start(topology_name: str, rate: float, seed: int = 1) -> int:
    from snapshots import services

    return int(services.start_run(services.get_topology(topology_name), rate=rate, seed=seed).pk)


def set_status(run_id: int, status: str) -> None:
    from snapshots import services

    services.set_run_status(services.get_run(run_id), status)


def set_rate(run_id: int, rate: float) -> None:
    from snapshots import services

    services.set_run_rate(services.get_run(run_id), rate)


def counters(run_id: int) -> Counters:
    """Messages sent and applied so far, summed over the run's processes (one MGET)."""
    from snapshots import services

    run = services.get_run(run_id)
    at = time.monotonic()
    procs = services.store().load_processes(run_id, run.process_names)
    sent = applied = markers = 0
    for data in procs.values():
        c = data["counters"]
        sent += c["messages_sent"]
        applied += c["messages_applied"]
        markers += c["markers_received"]
    return Counters(at, sent, applied, markers)


def wait_until_applying(run_id: int, timeout: float = 60.0) -> None:
    """Return once the workers serve the run: messages are being applied."""
    deadline = time.monotonic() + timeout
    while counters(run_id).applied == 0:
        if time.monotonic() > deadline:
            raise RuntimeError(f"run {run_id}: no message applied within {timeout:g} s")
        time.sleep(0.1)


def wait_until_served(system: Any, run_id: int, processes: int, timeout: float = 120.0) -> None:
    """Return once the workers consume every process queue of the run (their own
    report), so a snapshot's markers never wait for a queue nobody reads yet."""
    from config.celery import app

    prefix = f"cutline.r{run_id}."
    deadline = time.monotonic() + timeout
    while True:
        replies = app.control.inspect(destination=system.nodenames(), timeout=2.0).active_queues() or {}
        served = {q["name"] for queues in replies.values() for q in queues if q["name"].startswith(prefix)}
        if len(served) >= processes:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"run {run_id}: {len(served)} of {processes} queues consumed after {timeout:g} s")
        system.check_alive()
        time.sleep(0.2)


def stop(system: Any, run_id: int, timeout: float = 30.0) -> None:
    """Stop the run, wait until no worker consumes its queues, and drop what is left in
    them, so the next measurement starts from a quiet system."""
    from config.celery import app

    set_status(run_id, "stopped")
    prefix = f"cutline.r{run_id}."
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        replies = app.control.inspect(destination=system.nodenames(), timeout=2.0).active_queues() or {}
        if not any(q["name"].startswith(prefix) for queues in replies.values() for q in queues):
            break
        time.sleep(0.2)
    client = system.redis_client()
    leftovers = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if leftovers:
        client.delete(*leftovers)


def events(run_id: int, limit: int | None = None) -> list[dict[str, Any]]:
    from snapshots import services

    return services.store().events(run_id, limit)


def hop_latencies(evts: list[dict[str, Any]], send_kind: str, receive_kind: str) -> list[float]:
    """Milliseconds from each send event to the receive event of the same frame.

    A send is logged by the sender's step (``t`` is taken just before that step is
    committed and its frames published), the receive by the receiver's step that
    applied it (before it is committed): the hop as a process sees it.
    """
    sent: dict[tuple[str, str, int], float] = {}
    for e in evts:
        if e["kind"] == send_kind:
            sent[(e["process"], e["peer"], e["seq"])] = e["t"]
    out = []
    for e in evts:
        if e["kind"] == receive_kind:
            t0 = sent.get((e["peer"], e["process"], e["seq"]))
            if t0 is not None:
                out.append((e["t"] - t0) * 1000)
    return out


def diameter(spec: dict[str, Any]) -> int:
    """The longest shortest path between two processes along directed channels."""
    adjacency: dict[str, list[str]] = {p["name"]: [] for p in spec["processes"]}
    for src, dst in spec["channels"]:
        adjacency[src].append(dst)
    longest = 0
    for start in adjacency:
        depth = {start: 0}
        queue = deque([start])
        while queue:
            here = queue.popleft()
            for nxt in adjacency[here]:
                if nxt not in depth:
                    depth[nxt] = depth[here] + 1
                    queue.append(nxt)
        longest = max(longest, max(depth.values()))
    return longest


# Enough money that no process runs dry: with 100 each, the money in flight (and so the
# backlog) of a saturated run is capped at a few hundred transfers and sends stall.
RICH = 10**9


def ring(n: int, two_way: bool = False, balance: int = 100) -> dict[str, Any]:
    return topo.ring(n, two_way=two_way, value=balance, name=f"bench-ring{'2' if two_way else ''}-{n}")


def sparse(n: int, degree: float = 2.0, seed: int = 7) -> dict[str, Any]:
    return topo.random_strongly_connected(n, degree=degree, seed=seed, name=f"bench-random-{n}")


def complete(n: int, balance: int = 100) -> dict[str, Any]:
    return topo.complete(n, value=balance, name=f"bench-complete-{n}")


def snapshot(run_id: int, algorithm: str = "chandy-lamport", timeout: float = 120.0) -> Any:
    """Take one snapshot of a run with ``algorithm`` and wait for it to finish; return its row."""
    from snapshots import services

    started = services.start_snapshot(services.get_run(run_id), algorithm=algorithm)
    return services.wait_for_snapshot(started.pk, timeout)


def set_faults_everywhere(run_id: int, faults: dict[str, Any]) -> None:
    """Give every channel of a run the same faults (``{}``: plain reliable FIFO again)."""
    from snapshots import services

    run = services.get_run(run_id)
    services.set_channel_faults(run, {f"{src}→{dst}": dict(faults) for src, dst in run.channel_pairs})


def fault_counts(run_id: int) -> tuple[int, int]:
    """Retransmissions and lost transmissions so far, summed over the run's channels."""
    from snapshots import services

    store = services.store()
    return sum(store.retries(run_id).values()), sum(store.lost(run_id).values())


def channel_frames(run_id: int) -> list[dict[str, Any]]:
    """The frames now in the run's channel logs (sent, not yet trimmed): real wire frames."""
    from snapshots import services

    run = services.get_run(run_id)
    store = services.store()
    return [frame for src, dst in run.channel_pairs for _, frame in store.channel_log(run_id, src, dst)]


def queued(system: Any, run_id: int) -> int:
    """Frames waiting in the broker for the run's processes (its queues' lengths)."""
    from cluster.engine.transport import queue_name
    from snapshots import services

    pipe = system.redis_client().pipeline(transaction=False)
    for name in services.get_run(run_id).process_names:
        pipe.llen(queue_name(run_id, name))
    return int(sum(pipe.execute()))
