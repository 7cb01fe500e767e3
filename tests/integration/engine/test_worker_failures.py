"""Workers stopped, killed and replaced; frames repeated and reordered: the run carries on.

DESIGN.md §3 rebuilds exactly-once FIFO channels on an at-least-once broker, and the
runtime persists every step before its frames leave. These tests break things for real
— a warm shutdown, a SIGKILL mid-run, frames put on the broker out of order and twice —
and check that the processes resume where they were and that later snapshots still hold.

Only the killed worker's channels may count duplicates (a message redelivered after its
step was committed, an outbox resent) and gaps (newer frames consumed while a killed
worker's unacked message waits for Redis's visibility timeout, 10 s, swept every 2 s);
every gap must close again, which the counters show as nothing held.
"""

from __future__ import annotations

import random
import signal
from collections.abc import Callable
from typing import Any

from cluster.core.process import SimulatedProcess
from cluster.devserver.children import Child, stop_all
from cluster.engine.node import in_shard
from cluster.engine.store import StepCommit
from cluster.engine.transport import queue_name
from snapshots import services
from snapshots.models import Run
from tests.integration.engine_helpers import (
    FIFO_COUNTERS,
    assert_clean_fifo,
    assert_sound_export,
    await_drained,
    await_traffic,
    channel_counters,
    fifo_counters,
    poll,
    set_run_status_everywhere,
    snapshot_all,
    start_demo_run,
)

RECOVERY_WAIT = 60.0  # the visibility timeout and its sweep (12 s) five times over: the machine is shared
PAIR = {
    "name": "pair",
    "workload": "bank",
    "processes": [{"name": "a", "balance": 500}, {"name": "b", "balance": 500}],
    "channels": [["a", "b"], ["b", "a"]],
}


def _shard_processes(run: Run, shard: int, shards: int) -> list[str]:
    return [name for i, name in enumerate(run.process_names) if in_shard(i, shard, shards)]


def _load(run: Run, names: list[str]) -> dict[str, dict[str, Any]]:
    return services.store().load_processes(run.pk, names)


def _progressed(run: Run, since: dict[str, dict[str, Any]]) -> bool:
    """Every process in ``since`` has applied more messages than it had then."""
    now = _load(run, list(since))
    return all(now[n]["counters"]["messages_applied"] > since[n]["counters"]["messages_applied"] for n in since)


def test_a_worker_restarted_after_a_warm_shutdown_resumes_its_processes(
    cluster_workers: Callable[[int], list[Child]], replacement_worker: Callable[[int, int], Child]
) -> None:
    workers = cluster_workers(2)
    run = start_demo_run("complete-4", "bank", rate=10)
    await_traffic(run, 30, workers)
    for export in snapshot_all([(run, "p1"), (run, "p2")]):
        assert_sound_export(export, run)

    # A warm shutdown in the middle of the traffic: the worker finishes the message it
    # holds, persists its processes and leaves; the other shard keeps sending to them.
    stop_all([workers[1]], timeout=30)
    assert workers[1].returncode == 0, workers[1].log_text()
    mine = _shard_processes(run, 1, 2)
    saved = _load(run, mine)
    assert all(data["outbox"] == [] for data in saved.values()), "a clean shutdown leaves no outbox to resend"
    # Let frames for the stopped shard pile up in its queues: those sent to its processes
    # beyond what they had applied when their worker stopped (``saved``: nothing applies
    # them now). Counted from the stop itself, not from a later look: the other shard's
    # processes pay money in that no longer comes back, and by the time a slow warm
    # shutdown has returned (on a loaded machine) they may have sent all they ever will.
    into_mine = [(src, dst) for src, dst in run.channel_pairs if dst in mine]
    poll(
        lambda: services.frames_in_flight(into_mine, {**_load(run, run.process_names), **saved}),
        lambda n: n >= 5,
        what="frames to queue up for the stopped shard",
        timeout=60,
        workers=[workers[0]],
    )

    replacement = replacement_worker(1, 2)
    alive = [workers[0], replacement]
    poll(lambda: _progressed(run, saved), bool, what=f"{mine} to apply messages again", timeout=60, workers=alive)

    # They went on from their saved state, not from the start: no seq went backwards
    # (a reset sender would repeat seqs, which its receivers count as duplicates).
    resumed = _load(run, mine)
    for name in mine:
        before, after = saved[name], resumed[name]
        assert all(after["sent"][q] >= before["sent"][q] for q in before["sent"]), (name, before["sent"], after)
        assert all(after["applied"][p] >= before["applied"][p] for p in before["applied"]), name
        assert after["counters"]["messages_sent"] >= before["counters"]["messages_sent"], name
    exports = snapshot_all([(run, "p1"), (run, "p2"), (run, "p4")])
    for export in exports:
        assert_sound_export(export, run)
    # Nothing was lost, repeated or reordered across a clean restart.
    assert_clean_fifo(run)


def test_a_killed_worker_is_replaced_and_its_run_recovers(
    cluster_workers: Callable[[int], list[Child]], replacement_worker: Callable[[int, int], Child]
) -> None:
    workers = cluster_workers(2)
    # Busy enough that the worker is almost always inside a step when the kill lands.
    run = start_demo_run("complete-4", "bank", rate=30)
    await_traffic(run, 100, workers)

    workers[1].signal_group(signal.SIGKILL)
    assert workers[1].popen.wait(timeout=30) == -signal.SIGKILL
    mine = _shard_processes(run, 1, 2)
    at_kill = _load(run, mine)

    replacement = replacement_worker(1, 2)
    alive = [workers[0], replacement]
    # Recovered: the killed shard's processes apply messages again, and every frame that
    # arrived ahead of a missing one was applied once the missing one came back.
    poll(lambda: _progressed(run, at_kill), bool, what=f"{mine} to apply messages again", timeout=60, workers=alive)
    counters = poll(
        lambda: fifo_counters(run),
        lambda c: c["held"] == 0,
        what="every gap to close (nothing held)",
        timeout=RECOVERY_WAIT,
        workers=alive,
    )
    assert counters["reorders"] == counters["gaps"], f"a held frame was never applied: {counters}"

    exports = snapshot_all([(run, "p1"), (run, "p2"), (run, "p3")])
    for export in exports:
        assert_sound_export(export, run)
    # Only channels into the killed shard's processes can have needed repair.
    for name in _shard_processes(run, 0, 2):
        for src, c in channel_counters(run, name).items():
            if src in _shard_processes(run, 0, 2):
                assert c == dict.fromkeys(FIFO_COUNTERS, 0), f"{src}→{name} untouched by the kill: {c}"


def _quiet_pair(workers: list[Child]) -> Run:
    """A run of two processes, a (shard 0) and b (shard 1), with some history, paused and drained."""
    run = services.start_run(services.import_topology(PAIR), "bank", rate=10, seed=3)
    await_traffic(run, 10, workers)
    set_run_status_everywhere(run, "paused", 2, workers)
    await_drained(run, workers)
    return run


def _play(run: Run, name: str, frames: int) -> list[dict[str, Any]]:
    """Act as process ``name`` (its worker is gone): send ``frames`` transfers, persisted as a step would be.

    The new state is committed before anything is published, as the runtime does, so a
    worker that later takes the process over agrees with what its peers receive.
    """
    proc = SimulatedProcess.from_dict(_load(run, [name])[name])
    rng = random.Random(7)
    sends: list[dict[str, Any]] = []
    while len(sends) < frames:
        sends.extend(proc.act(rng, {"max_amount": 5}).sends)
    # The frames are the step's outbox, as the runtime commits them (and so they are in the
    # channel log); then the outbox is forgotten, as a clean shutdown does, so that a worker
    # taking the process over does not resend them.
    services.store().commit_steps(run.pk, [StepCommit(name, proc.to_dict(), sends, [], [])])
    services.store().commit_steps(run.pk, [StepCommit(name, proc.to_dict(), [], [], [])])
    return sends


def _queue_length(queue: str) -> int:
    """Messages waiting in a broker queue (not those handed to a consumer), on either broker."""
    from config.celery import app

    with app.connection_for_write() as connection:
        return int(connection.default_channel.queue_declare(queue=queue, passive=True).message_count)


def test_frames_published_out_of_order_and_twice_are_applied_in_order_exactly_once(
    cluster_workers: Callable[[int], list[Child]], replacement_worker: Callable[[int, int], Child]
) -> None:
    workers = cluster_workers(2)
    run = _quiet_pair(workers)
    # From here on the test itself plays process b.
    stop_all([workers[1]], timeout=30)
    assert workers[1].returncode == 0, workers[1].log_text()
    a_before = _load(run, ["a"])["a"]
    base = a_before["applied"]["b"]
    frames = _play(run, "b", 5)
    assert [f["seq"] for f in frames] == [base + i for i in range(1, 6)]

    # The broker's hazards at once: a frame ahead of its predecessor (twice), a
    # redelivery right after the first delivery, and a stale copy of an applied frame.
    services.transport().send_frames(run.pk, [frames[i] for i in (2, 0, 0, 1, 4, 3, 2)])
    expected = {"duplicates": 2, "gaps": 2, "reorders": 2, "held": 0}
    poll(
        lambda: channel_counters(run, "a")["b"],
        lambda c: c == expected,
        what=f"a to sort out the frames from b into {expected}",
        timeout=30,
        workers=[workers[0]],
    )
    a_after = _load(run, ["a"])["a"]
    assert a_after["applied"]["b"] == base + 5
    # Applied exactly once each: the balance moved by exactly what was sent.
    amounts = sum(f["payload"]["amount"] for f in frames)
    assert a_after["state"]["balance"] == a_before["state"]["balance"] + amounts
    assert a_after["counters"]["messages_applied"] == a_before["counters"]["messages_applied"] + 5
    # In order: a logged its receives from b by ascending seq, one each.
    received = [e["seq"] for e in services.store().events(run.pk) if e["kind"] == "receive" and e["process"] == "a"]
    assert received[-5:] == [base + i for i in range(1, 6)] and len(received) == len(set(received)), received

    # b comes back on a real worker, from the state the test left: the run goes on whole.
    alive = [workers[0], replacement_worker(1, 2)]
    set_run_status_everywhere(run, "running", 2, alive)
    await_traffic(run, services.run_status(run)["messages_applied"] + 10, alive)
    for export in snapshot_all([(run, "a"), (run, "b")]):
        assert_sound_export(export, run)
    assert fifo_counters(run) == expected


def test_a_frame_taken_by_a_worker_that_is_then_killed_is_delivered_again(
    cluster_workers: Callable[[int], list[Child]], replacement_worker: Callable[[int, int], Child]
) -> None:
    """The window a SIGKILL can land in at any time: a frame has left the queue for the
    worker, which has not yet applied it. Freezing the worker holds that window open.

    On RabbitMQ the frame is an unacked delivery, requeued when the connection drops. On
    Redis, kombu's BRPOP takes it off the list before the worker files it as unacked
    (``QoS.append``), so a worker killed in between leaves it nowhere on the broker:
    only the channel log (``cluster/engine/repair.py``) can bring it back.
    """
    workers = cluster_workers(2)
    run = _quiet_pair(workers)
    # The test plays a, so that it decides when frames reach b's idle worker.
    stop_all([workers[0]], timeout=30)
    assert workers[0].returncode == 0, workers[0].log_text()
    base = _load(run, ["b"])["b"]["applied"]["a"]
    frames = _play(run, "a", 3)

    workers[1].signal_group(signal.SIGSTOP)
    services.transport().send_frames(run.pk, frames)
    queue = queue_name(run.pk, "b")
    # The frozen worker was waiting for work, so the broker handed it the first frame.
    poll(lambda: _queue_length(queue), lambda n: n == 2, what=f"one frame to leave {queue}", timeout=10)
    workers[1].signal_group(signal.SIGKILL)
    assert workers[1].popen.wait(timeout=30) == -signal.SIGKILL

    b = replacement_worker(1, 2)
    counters = poll(
        lambda: channel_counters(run, "b")["a"],
        lambda c: c["held"] == 0 and _load(run, ["b"])["b"]["applied"]["a"] == base + 3,
        what=f"b to apply seqs {base + 1}…{base + 3} from a, the first one again from the broker",
        timeout=RECOVERY_WAIT,
        workers=[b],
    )
    assert counters["reorders"] == counters["gaps"], counters

    alive = [replacement_worker(0, 2), b]
    set_run_status_everywhere(run, "running", 2, alive)
    await_traffic(run, services.run_status(run)["messages_applied"] + 10, alive)
    for export in snapshot_all([(run, "a"), (run, "b")]):
        assert_sound_export(export, run)
