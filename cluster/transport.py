"""Putting frames on the broker: one Celery queue per simulated process.

A frame for process ``q`` of run ``r`` is a ``cluster.deliver`` task on the queue
``cutline.r<r>.<q>``. Markers travel in the same queue as the messages of their channel,
never as a broadcast, so the broker's per-queue order is the channel's order (and the
sequence numbers repair whatever order the broker loses).

Two ways to publish. :meth:`Transport.send_frames` goes through Celery's ``send_task``,
on any broker. When the broker is the very Redis the state store uses (the default),
:meth:`Transport.pushes` instead turns frames into the exact messages kombu would put on
the queues — an :class:`Envelope` captured once from ``send_task`` itself (through
``cluster/broker.py``) and refilled per frame — so the store can push them in the same
round trip as the step that sent them. Measured here, ``send_task`` cost ~480 µs per
frame and a round trip of its own; refilling an envelope costs ~20 µs.
"""

from __future__ import annotations

import base64
import json
import logging
import uuid
from dataclasses import dataclass
from typing import Any

import redis
from celery import Celery

log = logging.getLogger("cutline.transport")

DELIVER = "cluster.deliver"
INITIATE = "cluster.initiate"

Push = tuple[str, str]  # (Redis list the broker reads the queue from, message)


def queue_name(run: int, process: str) -> str:
    return f"cutline.r{run}.{process}"


def shard_queue(shard: int) -> str:
    """Every worker also consumes one queue of its own, so it starts with a queue at all."""
    return f"cutline.shard.{shard}"


@dataclass(frozen=True)
class Envelope:
    """A ``cluster.deliver`` message as kombu's Redis transport stores it, minus the
    parts that differ per message: the task id, the delivery tag, the queue, the body."""

    message: dict[str, Any]
    embed: Any  # the third element of a Celery protocol-2 body (callbacks, chain …)

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> Envelope | None:
        """The envelope of a captured message for ``cluster.deliver`` with args
        ``[0, {}]``, or None if it is not shaped as this code expects."""
        try:
            props = message["properties"]
            if (
                message["content-type"] != "application/json"
                or props["body_encoding"] != "base64"
                or message["headers"]["task"] != DELIVER
                or "delivery_info" not in props
            ):
                return None
            args, kwargs, embed = json.loads(base64.b64decode(message["body"]))
        except (KeyError, TypeError, ValueError):
            return None
        if args != [0, {}] or kwargs != {}:
            return None
        return cls(message, embed)

    def encode(self, run: int, frame: dict[str, Any], queue: str) -> str:
        task_id = str(uuid.uuid4())
        body = json.dumps([[run, frame], {}, self.embed]).encode()
        props = self.message["properties"]
        message = {
            **self.message,
            "body": base64.b64encode(body).decode(),
            "headers": {**self.message["headers"], "id": task_id, "root_id": task_id},
            "properties": {
                **props,
                "correlation_id": task_id,
                "delivery_tag": str(uuid.uuid4()),
                "delivery_info": {**props["delivery_info"], "routing_key": queue},
            },
        }
        return json.dumps(message)


def _same_redis(app: Celery, client: redis.Redis) -> bool:
    """Whether the broker's queues live in the database ``client`` talks to."""
    url = app.conf.broker_url
    if not isinstance(url, str) or not url.startswith(("redis://", "unix://")):
        return False
    if app.conf.broker_transport != "cluster.broker:Transport":
        return False
    if (app.conf.broker_transport_options or {}).get("global_keyprefix"):
        return False
    broker = redis.connection.parse_url(url)
    mine = client.connection_pool.connection_kwargs

    def where(kwargs: dict[str, Any]) -> tuple[Any, ...]:
        return (kwargs.get("host", "localhost"), int(kwargs.get("port", 6379)), kwargs.get("path"))

    return where(broker) == where(mine) and int(broker.get("db", 0)) == int(mine.get("db", 0))


class Transport:
    def __init__(self, app: Celery) -> None:
        self.app = app
        self._envelopes: dict[int, Envelope | None] = {}

    def send_frames(self, run: int, frames: list[dict[str, Any]]) -> None:
        if not frames:
            return
        with self.app.producer_or_acquire() as producer:
            for frame in frames:
                self.app.send_task(
                    DELIVER,
                    args=[run, frame],
                    queue=queue_name(run, frame["dst"]),
                    producer=producer,
                    # The frame is its own description; skip Celery's repr of the arguments.
                    argsrepr="",
                    kwargsrepr="",
                )

    def pushes(self, run: int, frames: list[dict[str, Any]], via: redis.Redis) -> list[Push] | None:
        """The frames as pushes onto their queues through ``via``, or None if the broker
        cannot be reached that way (then publish with :meth:`send_frames`)."""
        envelope = self._envelope(via)
        if envelope is None:
            return None
        out: list[Push] = []
        for frame in frames:
            queue = queue_name(run, frame["dst"])
            out.append((queue, envelope.encode(run, frame, queue)))
        return out

    def _envelope(self, via: redis.Redis) -> Envelope | None:
        key = id(via)
        if key not in self._envelopes:
            self._envelopes[key] = self._capture() if _same_redis(self.app, via) else None
        return self._envelopes[key]

    def _capture(self) -> Envelope | None:
        from cluster import broker

        with broker.capture() as taken, self.app.producer_or_acquire() as producer:
            # The same options as send_frames; declare=[]: nothing reaches the broker.
            self.app.send_task(
                DELIVER,
                args=[0, {}],
                queue="cutline.capture",
                producer=producer,
                argsrepr="",
                kwargsrepr="",
                declare=[],
            )
        envelope = Envelope.from_message(taken[0][1]) if len(taken) == 1 else None
        if envelope is None:
            log.warning("kombu's messages are not shaped as expected: frames go through send_task")
        return envelope

    def send_initiate(self, run: int, process: str, snapshot: int) -> None:
        """The initiate request goes into the initiator's own queue, behind its pending frames."""
        self.app.send_task(INITIATE, args=[run, process, snapshot], queue=queue_name(run, process))
