"""Stable properties, on real workers and a real broker: the diffusing computation
terminates, the philosophers deadlock, and the detectors say so from the recorded state
(``export["properties"]``, ``services.first_holding``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from cluster.devserver.children import Child
from snapshots import services
from snapshots.models import Run
from tests.integration.engine_helpers import demo_topology, start_demo_run, take_snapshot


def _until_property(run: Run, name: str, workers: list[Child], timeout: float = 90.0) -> dict[str, Any]:
    """Snapshots one after another until one finds ``name`` holding; that one's export."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        export = take_snapshot(run)
        assert export["status"] == "complete", export["reason"]
        assert export["verdict"]["consistent"], export["verdict"]["problems"]
        if export["properties"][name]["holds"]:
            return export
    raise AssertionError(f"no snapshot of run {run.pk} found {name} within {timeout:g} s")


def test_the_diffusing_computation_is_seen_to_terminate_and_stays_terminated(
    cluster_workers: Callable[[int], list[Child]],
) -> None:
    workers = cluster_workers(2)
    run = start_demo_run("diffusion-8", "diffusion", rate=10)
    first = _until_property(run, "termination", workers)
    assert services.first_holding(run)["termination"] == first["id"]
    assert all(not c["messages"] for c in first["channels"])
    later = take_snapshot(run)
    assert later["properties"]["termination"]["holds"] is True  # stable
    assert later["properties"]["deadlock"]["holds"] in (None, False)


def test_the_philosophers_deadlock_is_found_in_a_cycle_of_the_wait_for_graph(
    cluster_workers: Callable[[int], list[Child]],
) -> None:
    workers = cluster_workers(2)
    # Hungrier philosophers (the default is 0.6) reach the deadlock sooner: at 0.6 and 10
    # steps/s a CI run on RabbitMQ once took more than 90 s.
    run = services.start_run(demo_topology("philosophers-5"), "philosophers", 20, params={"hunger": 0.9}, seed=1)
    found = _until_property(run, "deadlock", workers)
    cycle = found["properties"]["deadlock"]["cycle"]
    assert len(cycle) >= 2 and set(cycle) <= set(run.process_names)
    assert found["verdict"]["conserved"], found["verdict"]  # forks are conserved
    later = take_snapshot(run)
    assert later["properties"]["deadlock"]["holds"] is True  # stable
    assert services.first_holding(run)["deadlock"] == found["id"]
