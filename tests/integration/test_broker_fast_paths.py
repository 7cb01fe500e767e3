"""The Redis broker's shortcuts put exactly the bytes kombu and Celery would have.

``cluster/transport.py`` pushes frames as messages refilled from a captured envelope,
and ``cluster/broker.py`` packs BRPOP from cached pieces; both are only safe while they
match what the libraries produce, which these tests compare directly.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis
from celery import Celery
from django.conf import settings
from kombu import Connection

from cluster import broker
from cluster.store import StepCommit, Store
from cluster.transport import Transport, _same_redis, queue_name

FRAME = {"kind": "message", "src": "p1", "dst": "p2", "seq": 7, "payload": {"amount": 3}, "clock": {"p1": 4}}

redis_broker = pytest.mark.skipif(
    not settings.CELERY_BROKER_URL.startswith("redis://"), reason="the shortcuts exist on a Redis broker only"
)


def _without_ids(message: dict[str, Any]) -> dict[str, Any]:
    message = json.loads(json.dumps(message))
    for key in ("id", "root_id"):
        message["headers"].pop(key)
    for key in ("correlation_id", "delivery_tag"):
        message["properties"].pop(key)
    return message


@redis_broker
def test_a_pushed_frame_is_the_message_send_task_publishes() -> None:
    from config.celery import app

    transport = Transport(app)
    client = redis.Redis.from_url(settings.REDIS_URL)
    pushes = transport.pushes(5, [FRAME], client)
    assert pushes is not None, "the broker is the store's Redis: frames should ride in the commit"
    (queue, raw), *_ = pushes
    with broker.capture() as taken:
        transport.send_frames(5, [FRAME])
    assert queue == taken[0][0] == queue_name(5, "p2")
    pushed, published = json.loads(raw), taken[0][1]
    assert pushed["headers"]["id"] != published["headers"]["id"]
    assert _without_ids(pushed) == _without_ids(published)


@redis_broker
def test_pushes_are_stored_by_the_commit_that_sends_them() -> None:
    from config.celery import app

    store = Store.from_url(settings.REDIS_URL)
    pushes = Transport(app).pushes(6, [FRAME], store.redis)
    assert pushes
    store.redis.delete(pushes[0][0])
    store.commit_steps(6, [StepCommit("p1", {"name": "p1"}, [FRAME], [], [])], pushes)
    assert store.redis.lrange(pushes[0][0], 0, -1) == [pushes[0][1].encode()]
    assert store.load_process(6, "p1") == {"name": "p1", "outbox": [FRAME]}


def test_frames_go_through_send_task_when_the_broker_is_elsewhere() -> None:
    client = redis.Redis.from_url(settings.REDIS_URL)
    elsewhere = Celery("elsewhere", broker="amqp://guest:guest@127.0.0.1:5672//", set_as_current=False)
    assert not _same_redis(elsewhere, client)
    other_db = Celery("other-db", broker=settings.REDIS_URL.rsplit("/", 1)[0] + "/9", set_as_current=False)
    other_db.conf.broker_transport = "cluster.broker:Transport"
    assert not _same_redis(other_db, client)


def test_the_packed_brpop_is_the_command_redis_py_would_send() -> None:
    with Connection(settings.REDIS_URL, transport="cluster.broker:Transport") as conn:
        channel = conn.default_channel
        for name in ("cutline.r1.p1", "cutline.r1.p10", "cutline.r1.p2"):
            channel._active_queues.append(name)
        channel._update_queue_cycle()
        if channel.client.connection is None:
            channel.client.connection = channel.client.connection_pool.get_connection()
        connection = channel.client.connection
        sent: list[bytes] = []
        real_send = connection.send_packed_command
        connection.send_packed_command = lambda chunks, check_health=True: sent.append(b"".join(chunks))
        try:
            channel._queue_cycle.rotate("cutline.r1.p1")  # the order kombu rotates into must be kept
            channel._brpop_start()
            channel._brpop_start()  # the second time from the cache
        finally:
            connection.send_packed_command = real_send
            channel._in_poll = None
        keys = [
            channel._q_for_pri(queue, pri)
            for pri in channel.priority_steps
            for queue in channel._queue_cycle.consume(len(channel.active_queues))
        ]
        expected = b"".join(connection._command_packer.pack("BRPOP", *keys, channel.brpop_timeout or 0))
        assert keys[len(keys) // len(channel.priority_steps) - 1] == "cutline.r1.p1"
        assert sent == [expected, expected]


def test_a_message_acked_with_its_effect_is_not_acked_again(monkeypatch: pytest.MonkeyPatch) -> None:
    client = redis.Redis.from_url(settings.REDIS_URL)
    with Connection(settings.REDIS_URL, transport="cluster.broker:Transport") as conn:
        channel = conn.default_channel
        queue = "cutline.test-early-ack"
        channel.queue_declare(queue)
        channel.basic_publish(channel.prepare_message("body"), exchange="", routing_key=queue)
        message = channel.basic_get(queue, no_ack=False)
        qos = channel.qos
        assert client.hexists(qos.unacked_key, message.delivery_tag), "kombu records what it hands out"

        early = broker.ack_handled()
        assert early is not None and early.tag == message.delivery_tag
        assert broker.ack_handled() is None, "taken once"
        pipe = client.pipeline(transaction=True)
        early.add_to(pipe)
        pipe.execute()
        early.done()
        assert not client.hexists(qos.unacked_key, message.delivery_tag)

        def no_round_trip(*args: object, **kwargs: object) -> None:
            raise AssertionError("acked again on Redis")

        monkeypatch.setattr(qos, "_remove_from_indices", no_round_trip)
        message.ack()
        assert message.delivery_tag not in qos.acked_early
        assert qos.can_consume()
