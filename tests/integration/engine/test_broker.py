"""A message the Redis broker hands back is delivered next, not behind newer ones.

At a warm shutdown kombu reads the reply to the BRPOP still in flight, finds no consumer
for it and requeues it; channels are FIFO queues, so it must come back first.
"""

from __future__ import annotations

from django.conf import settings
from kombu import Connection


def test_a_requeued_message_is_delivered_before_the_ones_behind_it() -> None:
    with Connection(settings.REDIS_URL, transport="cluster.engine.broker:Transport") as conn:
        channel = conn.default_channel
        queue = "cutline.test-requeue"
        channel.queue_declare(queue)
        channel.queue_purge(queue)
        for body in ("first", "second", "third"):
            channel.basic_publish(channel.prepare_message(body), exchange="", routing_key=queue)

        taken = channel.basic_get(queue, no_ack=False)
        assert taken.body == b"first"
        channel.basic_reject(taken.delivery_tag, requeue=True)

        again = [channel.basic_get(queue, no_ack=True).body for _ in range(3)]
        assert again == [b"first", b"second", b"third"]
