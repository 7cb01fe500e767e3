"""The ready-made topologies that ship with Cutline (loaded by ``make run``)."""

from __future__ import annotations

from typing import Any

from cluster.core import topology as topo


def demo_topologies() -> list[dict[str, Any]]:
    paper = {
        # Chandy & Lamport's first example: two processes, one token, a channel each way.
        "name": "paper-token",
        "workload": "token",
        "processes": [{"name": "p", "tokens": 1}, {"name": "q", "tokens": 0}],
        "channels": [["p", "q"], ["q", "p"]],
    }
    return [
        topo.ring(3, two_way=True, name="ring3"),
        topo.ring(5, name="ring-5"),
        topo.ring(5, workload="token", name="token-ring-5"),
        topo.complete(4, name="complete-4"),
        paper,
        topo.random_strongly_connected(10, degree=2.0, seed=10, name="directed-10"),
        topo.random_strongly_connected(100, degree=3.0, seed=100, name="random-100"),
        # A diffusing computation from p1 that dies out after 300 jobs (30–45 s at
        # 2 steps a second): snapshots before the end show it running, after
        # the end they detect termination.
        topo.random_strongly_connected(8, degree=2.5, seed=8, workload="diffusion", value=300, name="diffusion-8"),
        # Five dining philosophers round a table: they eat a while, then sooner or later
        # each holds one fork and waits for the next — a deadlock a snapshot detects.
        topo.ring(5, two_way=True, workload="philosophers", name="philosophers-5"),
    ]
