"""Helpers for the engine's integration tests (no tests here): runs, snapshots, checks, the CLI.

The engine tests drive real Celery workers (``cluster_workers``) through the services
the CLI and the API use, and check what comes back against the contracts of
DESIGN.md §3 — every snapshot complete, its verdict holding, its export
self-describing, the run's FIFO counters clean. The checks here recompute from the
export what the server's verdict claims, so a verdict that is wrong in the same way as
the records would still be caught.

Waiting: a snapshot's end is an event (``services.wait_for_snapshot`` listens on Redis
pub/sub). Counters in the store have no event, so :func:`poll` is the one place that
polls, always under a deadline and never as a guess of how long something takes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest

from cluster.core.workloads import get_workload, payload_value, state_value
from cluster.devserver.children import Child
from cluster.engine.store import WORKER_TTL, WORKERS
from snapshots import services
from snapshots.demo import demo_topologies
from snapshots.models import Run, Snapshot, Topology
from snapshots.presenter import snapshot_export

T = TypeVar("T")

BASE_DIR = Path(__file__).resolve().parents[2]
# Generous on purpose: other test suites share this 2-core machine.
SNAPSHOT_WAIT = 60.0
EXPORT_KEYS = {
    *("id", "run", "initiator", "status", "reason", "started_at", "finished_at"),
    *("reported", "processes", "channels", "verdict"),
    *("algorithm", "epoch", "watchpoint", "trigger", "properties"),
}
VERDICT_KEYS = {"consistent", "conserved", "expected_total", "recorded_total", "problems"}
FIFO_COUNTERS = ("duplicates", "gaps", "reorders", "held")


# --- waiting ------------------------------------------------------------------------------


def poll(
    observe: Callable[[], T],
    done: Callable[[T], bool],
    *,
    what: str,
    timeout: float,
    workers: Sequence[Child] = (),
    interval: float = 0.1,
) -> T:
    """Observe until ``done(observed)``; fail with the last observation after ``timeout``.

    For state that announces no event (counters in the store). A worker that dies while
    we wait fails the test at once, with its exit status, instead of at the deadline.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = observe()
        if done(value):
            return value
        for worker in workers:
            if not worker.alive():
                pytest.fail(f"{worker.describe_exit()} while waiting for {what}; last seen: {value!r}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}; last seen: {value!r}")
        time.sleep(interval)


def await_live_shards(shards: int, workers: Sequence[Child] = (), timeout: float = 30.0) -> None:
    """Until every shard has a heartbeat: ``check_cluster`` (the CLI) refuses to work before."""
    expected = {f"{i}/{shards}" for i in range(shards)}
    poll(
        lambda: set(services.store().live_workers(time.time())),
        lambda live: live == expected,
        what=f"heartbeats from shards {sorted(expected)}",
        timeout=timeout,
        workers=workers,
    )


def await_refresh(
    since: float, shards: Iterable[int], of: int, workers: Sequence[Child] = (), timeout: float = 30.0
) -> None:
    """Until the workers of ``shards`` (of ``of``) have re-read the runs after ``since`` (a ``time.time()``).

    A worker follows run changes (pause, rate, stop) on its next refresh, which starts
    with a heartbeat stamped ``now + WORKER_TTL``: a stamp past ``since + WORKER_TTL``
    means that refresh began after ``since``, so it read the change.
    """
    store = services.store()
    keys = [f"{i}/{of}" for i in shards]

    def stamps() -> dict[str, float]:
        raw = store.redis.hgetall(WORKERS)
        return {k.decode(): float(v.decode().rpartition(" ")[2]) for k, v in raw.items()}

    poll(
        stamps,
        lambda seen: all(seen.get(k, 0.0) > since + WORKER_TTL for k in keys),
        what=f"shards {keys} to refresh after {since:.2f}",
        timeout=timeout,
        workers=workers,
    )


def set_run_status_everywhere(run: Run, status: str, shards: int, workers: Sequence[Child] = ()) -> None:
    """Change a run's status; return once every worker acts on it (no step under the old one follows)."""
    services.set_run_status(run, status)
    # Only a refresh that starts after the store holds the change is sure to read it.
    await_refresh(time.time(), range(shards), shards, workers)


def await_drained(run: Run, workers: Sequence[Child] = (), timeout: float = 30.0) -> dict[str, Any]:
    """Until every message sent has been applied (a paused run's channels empty out)."""
    return poll(
        lambda: services.run_status(run),
        lambda s: s["messages_in_flight"] == 0,
        what=f"run {run.pk} to drain",
        timeout=timeout,
        workers=workers,
    )


# --- runs and snapshots -------------------------------------------------------------------


def demo_topology(name: str) -> Topology:
    """One of the demo topologies ``make run`` loads, imported on first use."""
    existing = Topology.objects.filter(name=name).first()
    if existing is not None:
        return existing
    for data in demo_topologies():
        if data["name"] == name:
            return services.import_topology(data)
    raise LookupError(f"no demo topology {name!r}")


def start_demo_run(name: str, workload: str | None = None, rate: float = 10.0, seed: int = 1) -> Run:
    # A fixed seed makes a failure replayable as far as the workload's choices go.
    return services.start_run(demo_topology(name), workload, rate, seed=seed)


def await_traffic(run: Run, messages: int, workers: Sequence[Child] = (), timeout: float = 30.0) -> dict[str, Any]:
    """Until the run has applied ``messages`` application messages: the cluster is under load."""
    return poll(
        lambda: services.run_status(run),
        lambda s: s["messages_applied"] >= messages,
        what=f"run {run.pk} to apply {messages} messages",
        timeout=timeout,
        workers=workers,
    )


def take_snapshot(run: Run, initiator: str | None = None, algorithm: str = "chandy-lamport") -> dict[str, Any]:
    """One snapshot, waited for: its export, whether it ended complete or failed."""
    started = services.start_snapshot(run, initiator, algorithm=algorithm)
    return snapshot_export(services.wait_for_snapshot(started.pk, SNAPSHOT_WAIT))


def snapshot_all(run_initiators: Iterable[tuple[Run, str]], timeout: float = SNAPSHOT_WAIT) -> list[dict[str, Any]]:
    """Start every snapshot first (so they run concurrently), then wait for each; their exports."""
    started = [services.start_snapshot(run, initiator) for run, initiator in run_initiators]
    return [snapshot_export(services.wait_for_snapshot(s.pk, timeout)) for s in started]


def fifo_counters(run: Run) -> dict[str, int]:
    status = services.run_status(run)
    return {k: status[k] for k in FIFO_COUNTERS}


def channel_counters(run: Run, process: str) -> dict[str, dict[str, int]]:
    """The FIFO counters of each incoming channel of one process, keyed by its source."""
    data = services.store().load_process(run.pk, process)
    assert data is not None, f"run {run.pk} has no process {process} in the store"
    return {
        src: {"duplicates": r["duplicates"], "gaps": r["gaps"], "reorders": r["reorders"], "held": len(r["held"])}
        for src, r in data["receivers"].items()
    }


# --- checks -------------------------------------------------------------------------------


def assert_sound_export(export: dict[str, Any], run: Run) -> None:
    """A complete snapshot whose verdict holds, and which we can verify ourselves from the export."""
    label = f"snapshot {export['id']} of run {run.pk} (from {export['initiator']})"
    assert set(export) == EXPORT_KEYS, f"{label}: export keys {sorted(export)}"
    assert export["status"] == Snapshot.Status.COMPLETE, f"{label}: {export['status']}: {export['reason']}"
    assert export["reason"] is None, f"{label}: {export['reason']}"
    assert export["finished_at"] and export["started_at"]
    verdict = export["verdict"]
    assert set(verdict) == VERDICT_KEYS, f"{label}: verdict keys {sorted(verdict)}"
    assert verdict["problems"] == [], f"{label}: {verdict['problems']}"
    assert verdict["consistent"] and verdict["conserved"], f"{label}: {verdict}"
    assert verdict["recorded_total"] == verdict["expected_total"] == run.expected_total, f"{label}: {verdict}"
    assert_self_describing(export, run)


def assert_self_describing(export: dict[str, Any], run: Run) -> None:
    """DESIGN.md §3, recomputed here: channel p→q holds exactly the seqs in (received_q[p], sent_p[q]].

    Messages and markers share one sequence per channel, so the recorded messages and
    the other snapshots' markers together must cover that range, each seq once, the
    messages in FIFO order. Then the workload's total over states and recorded messages
    must be the run's expected total.
    """
    label = f"snapshot {export['id']} of run {run.pk}"
    processes = {r["process"]: r for r in export["processes"]}
    channels = {(r["src"], r["dst"]): r for r in export["channels"]}
    assert sorted(processes) == sorted(run.process_names), f"{label}: process records {sorted(processes)}"
    assert sorted(channels) == sorted(run.channel_pairs), f"{label}: channel records {sorted(channels)}"
    assert len(export["channels"]) == len(run.channel_pairs), f"{label}: a channel was recorded twice"
    reported = export["reported"]
    assert (reported["processes"], reported["channels"]) == (len(processes), len(channels)), f"{label}: {reported}"
    for (src, dst), rec in channels.items():
        low, high = processes[dst]["received"].get(src, 0), processes[src]["sent"].get(dst, 0)
        messages = [m["seq"] for m in rec["messages"]]
        markers = [m["seq"] for m in rec["markers"]]
        assert messages == sorted(messages), f"{label}: {src}→{dst} messages out of order: {messages}"
        assert sorted(messages + markers) == list(range(low + 1, high + 1)), (
            f"{label}: {src}→{dst} recorded messages {messages} + markers {markers}, expected seqs ({low}, {high}]"
        )
        assert all(m["snapshot"] != export["id"] for m in rec["markers"]), f"{label}: its own marker was recorded"
    workload = get_workload(run.workload)
    total = sum(state_value(workload, r["state"]) for r in processes.values()) + sum(
        payload_value(workload, m["payload"]) for r in channels.values() for m in r["messages"]
    )
    assert total == run.expected_total, f"{label}: {workload.unit} recorded {total}, expected {run.expected_total}"


def assert_records_match_event_log(exports: Iterable[dict[str, Any]], run: Run) -> None:
    """Each process record says what really happened up to its cut, per the run's event log.

    The verdict only checks records against each other; the event log (every send,
    receive and marker with its seq, in each process's own order) is the ground truth.
    Replaying a process's log up to its ``record`` event must give the recorded ``sent``
    and ``received`` seqs and clock. The marker that made it record is excluded from
    ``received`` (it is logged just before the record, but not counted as applied yet).
    """
    events = services.store().events(run.pk)
    assert len(events) < services.store().event_limit, "the event log was cut: the run is too long for this check"
    by_process: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        by_process.setdefault(event["process"], []).append(event)
    for export in exports:
        for rec in export["processes"]:
            name, label = rec["process"], f"{rec['process']} in snapshot {export['id']} of run {run.pk}"
            sent, received = dict.fromkeys(rec["sent"], 0), dict.fromkeys(rec["received"], 0)
            for event in by_process.get(name, []):
                kind = event["kind"]
                if kind == "record" and event["snapshot"] == export["id"]:
                    assert (sent, received) == (rec["sent"], rec["received"]), f"{label}: log says {sent} {received}"
                    assert event["clock"] == rec["clock"], f"{label}: the log's clock {event['clock']}"
                    break
                if kind in ("send", "marker_send"):
                    sent[event["peer"]] = event["seq"]
                elif kind == "receive" or (kind == "marker_receive" and event["snapshot"] != export["id"]):
                    received[event["peer"]] = event["seq"]
            else:
                pytest.fail(f"{label}: no record event in the log")


def assert_clean_fifo(run: Run) -> None:
    """A healthy run: no duplicate, no gap, no reorder, nothing held, on any channel."""
    counters = fifo_counters(run)
    assert counters == dict.fromkeys(FIFO_COUNTERS, 0), f"run {run.pk} FIFO counters: {counters}"


def assert_logs_clean(workers: Sequence[Child], *needles: str) -> None:
    """None of the workers' whole logs mentions any of ``needles``."""
    for worker in workers:
        text = worker.log_path.read_text(errors="replace") if worker.log_path else ""
        for needle in needles:
            assert needle not in text, f"{worker.name} logged {needle!r}:\n{worker.log_text()}"


# --- the command line ---------------------------------------------------------------------


def cli_env(**overrides: str) -> dict[str, str]:
    """The environment the workers get: the same test database, Redis and broker."""
    # The fixture's own helper, so the CLI and the workers can never disagree on the database.
    from tests.integration.conftest import _test_database_env

    return {**os.environ, **_test_database_env(), **overrides}


def manage_argv(*args: str) -> list[str]:
    return [sys.executable, str(BASE_DIR / "manage.py"), *args]


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    """Run ``manage.py`` in a process of its own, as a person or a script would."""
    return subprocess.run(
        manage_argv(*args),
        env=env if env is not None else cli_env(),
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def cli_concurrently(
    commands: Sequence[Sequence[str]], env: dict[str, str] | None = None, timeout: float = 120.0
) -> list[subprocess.CompletedProcess[str]]:
    """Start every command at once (as from several shells), then collect each."""
    env = env if env is not None else cli_env()
    procs = [
        subprocess.Popen(
            manage_argv(*args), env=env, cwd=BASE_DIR, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for args in commands
    ]
    done = []
    try:
        for args, proc in zip(commands, procs, strict=True):
            out, err = proc.communicate(timeout=timeout)
            done.append(subprocess.CompletedProcess(list(args), proc.returncode, out, err))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return done


def describe(done: subprocess.CompletedProcess[str]) -> str:
    command = " ".join(str(a) for a in done.args)
    return f"`{command}` exited {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"


def parse_json_output(done: subprocess.CompletedProcess[str]) -> Any:
    try:
        return json.loads(done.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"not JSON: {describe(done)}")
