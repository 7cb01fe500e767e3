"""What plain Celery and plain Redis do on the same broker and workers, in the same run.

* **no-op consume**: each worker drains its own queue of pre-queued ``cluster.noop``
  tasks; the rate is taken while every worker is still busy (from 10% consumed until
  the first queue is 90% drained), so start-up and tail are left out.
* **no-op relay**: chains of ``bench.relay`` tasks, each publishing the next hop to its
  own queue: consume *and* publish per message, as every cluster message needs too.
* **Celery hop**: ``bench.ping`` tasks published one at a time (no queueing); each
  reports the time from its ``send_task`` to its execution.
* **raw Redis hop**: LPUSH in this process → BRPOP in another, the floor under both.

The no-ops are queued by cloning one message that ``send_task`` produced (new ids and
delivery tag per copy), so 20 000 of them take a second to queue, not ten.
"""

from __future__ import annotations

import json
import multiprocessing
import time
import uuid
from dataclasses import dataclass

from bench.stats import percentile
from bench.system import BenchSystem, Cost, Reading
from bench.tasks import PING, RELAY

NOOP = "cluster.noop"
POLL = 0.01


@dataclass
class Rate:
    per_second: float
    messages: int
    seconds: float
    cost: Cost


@dataclass
class Hop:
    p50_ms: float
    p95_ms: float
    samples: int


def _clone_queue(system: BenchSystem, task: str, queue: str, count: int) -> None:
    """Put ``count`` copies of one real ``send_task`` message for ``task`` on ``queue``."""
    from config.celery import app

    client = system.redis_client()
    scratch = f"bench.scratch.{uuid.uuid4().hex}"
    app.send_task(task, queue=scratch)
    template = json.loads(client.rpop(scratch))
    client.delete(scratch)
    template["properties"]["delivery_info"]["routing_key"] = queue
    pipe = client.pipeline(transaction=False)
    for i in range(count):
        task_id = str(uuid.uuid4())
        template["headers"]["id"] = template["headers"]["root_id"] = task_id
        template["properties"]["correlation_id"] = task_id
        template["properties"]["delivery_tag"] = str(uuid.uuid4())
        pipe.lpush(queue, json.dumps(template))
        if i % 1000 == 999:
            pipe.execute()
    pipe.execute()


def noop_consume(system: BenchSystem, per_worker: int) -> Rate:
    from config.celery import app

    client = system.redis_client()
    queues = {node: f"bench.noop.{i}" for i, node in enumerate(system.nodenames())}
    for queue in queues.values():
        _clone_queue(system, NOOP, queue, per_worker)
    total = per_worker * len(queues)
    for node, queue in queues.items():
        app.control.add_consumer(queue, destination=[node], reply=True, timeout=5)
    try:
        start: tuple[float, int, Reading] | None = None
        polls = 0
        while True:
            left = [client.llen(q) for q in queues.values()]
            polls += len(left)
            now, consumed = time.monotonic(), total - sum(left)
            if start is None and consumed >= 0.1 * total:
                start, polls = (now, consumed, system.reading()), 0
            # Stop while every worker still has work: the window never holds an idle one.
            if start is not None and min(left) <= 0.1 * per_worker:
                end = system.reading()
                break
            system.check_alive()
            time.sleep(POLL)
    finally:
        for node, queue in queues.items():
            app.control.cancel_consumer(queue, destination=[node], reply=True, timeout=5)
        client.delete(*queues.values())
    seconds, messages = now - start[0], consumed - start[1]
    # This loop's own LLENs and the reading's INFO are not the workers' doing.
    return Rate(messages / seconds, messages, seconds, Cost.between(start[2], end, messages, polls + 1))


def noop_relay(system: BenchSystem, chains: int, hops: int) -> Rate:
    """``chains`` relay chains of ``hops`` hops per worker; the rate over all of them.

    The chains advance in step (each queue is FIFO), so they all end within one round
    of the last: the tail this leaves in the time is about 1/``hops``.
    """
    from config.celery import app

    client = system.redis_client()
    done_key = f"bench:relay:{uuid.uuid4().hex}"
    queues = {node: f"bench.relay.{i}" for i, node in enumerate(system.nodenames())}
    for node, queue in queues.items():
        app.control.add_consumer(queue, destination=[node], reply=True, timeout=5)
    expected = chains * len(queues)
    polls = 0
    try:
        before = system.reading()
        started = time.monotonic()
        with app.producer_or_acquire() as producer:
            for queue in queues.values():
                for _ in range(chains):
                    app.send_task(RELAY, args=[hops - 1, queue, done_key], queue=queue, producer=producer)
        while int(client.get(done_key) or 0) < expected:
            polls += 1
            system.check_alive()
            time.sleep(POLL)
        seconds = time.monotonic() - started
        after = system.reading()
    finally:
        for node, queue in queues.items():
            app.control.cancel_consumer(queue, destination=[node], reply=True, timeout=5)
        client.delete(done_key, *queues.values())
    messages = expected * hops
    # Counted out: this loop's GETs, the seeds' publishing and the INFO of a reading.
    own = polls + 1 + 1 + expected
    return Rate(messages / seconds, messages, seconds, Cost.between(before, after, messages, own))


def celery_hop(system: BenchSystem, samples: int, gap: float) -> Hop:
    """``send_task`` → task running in a worker, one at a time (``gap`` seconds apart)."""
    from config.celery import app

    client = system.redis_client()
    key = f"bench:ping:{uuid.uuid4().hex}"
    node = system.nodenames()[0]
    queue = "bench.ping"
    app.control.add_consumer(queue, destination=[node], reply=True, timeout=5)
    try:
        # The worker's BRPOP in progress when the queue was added does not include it
        # yet: wait for a first ping, not counted, so none of the counted ones waits.
        app.send_task(PING, args=[time.time(), f"{key}:warm"], queue=queue)
        if client.blpop([f"{key}:warm"], timeout=30) is None:
            raise RuntimeError("the Celery hop's worker did not start consuming")
        with app.producer_or_acquire() as producer:
            for _ in range(samples):
                app.send_task(PING, args=[time.time(), key], queue=queue, producer=producer)
                time.sleep(gap)
        deadline = time.monotonic() + 30
        while client.llen(key) < samples and time.monotonic() < deadline:
            time.sleep(POLL)
        latencies = [float(v) * 1000 for v in client.lrange(key, 0, -1)]
    finally:
        app.control.cancel_consumer(queue, destination=[node], reply=True, timeout=5)
        client.delete(key, f"{key}:warm", queue)
    return Hop(percentile(latencies, 50), percentile(latencies, 95), len(latencies))


def _brpop_echo(url: str, key: str, out: str, samples: int) -> None:
    """The receiving end of the raw hop, in a process of its own (as a worker is)."""
    import redis

    client = redis.Redis.from_url(url)
    client.rpush(f"{out}:ready", 1)
    for _ in range(samples):
        _, raw = client.brpop([key], timeout=30) or (None, None)
        if raw is None:
            return
        client.rpush(out, time.time() - float(raw))


def redis_hop(system: BenchSystem, samples: int, gap: float) -> Hop:
    """LPUSH here → BRPOP in another process, one at a time: the floor of any hop."""
    client = system.redis_client()
    key, out = f"bench:hop:{uuid.uuid4().hex}", f"bench:hop-out:{uuid.uuid4().hex}"
    receiver = multiprocessing.get_context("spawn").Process(
        target=_brpop_echo, args=(system.redis_url, key, out, samples), daemon=True
    )
    receiver.start()
    try:
        if client.blpop([f"{out}:ready"], timeout=30) is None:
            raise RuntimeError("the raw Redis hop's receiver did not start")
        for _ in range(samples):
            client.lpush(key, repr(time.time()))
            time.sleep(gap)
        receiver.join(30)
        latencies = [float(v) * 1000 for v in client.lrange(out, 0, -1)]
    finally:
        if receiver.is_alive():
            receiver.terminate()
        client.delete(key, out, f"{out}:ready")
    return Hop(percentile(latencies, 50), percentile(latencies, 95), len(latencies))
