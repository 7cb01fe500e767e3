"""Celery tasks: thin adapters from broker messages to the node that serves the process.

Like a Django view, a task only unpacks its arguments and calls the logic, which lives
in ``cluster/engine/node.py``. Both tasks arrive on the destination process's own queue.
"""

from __future__ import annotations

from celery import shared_task

from cluster.core.wire import CHANDY_LAMPORT, Frame
from cluster.engine.transport import DELIVER, INITIATE, PROBE
from cluster.engine.worker import current_node


@shared_task(name=DELIVER)
def deliver(run: int, frame: Frame) -> None:
    current_node().deliver(run, frame)


@shared_task(name=INITIATE)
def initiate(run: int, process: str, snapshot: int, algorithm: str = CHANDY_LAMPORT, epoch: int = 0) -> None:
    current_node().initiate(run, process, snapshot, algorithm, epoch)


@shared_task(name=PROBE)
def probe(run: int, process: str, probe: str) -> None:
    current_node().probe_returned(run, process, probe)


@shared_task(name="cluster.noop")
def noop() -> None:
    """Does nothing: the baseline the benchmarks measure the cluster's throughput against."""
