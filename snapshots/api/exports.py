"""Snapshot history and event logs in the formats other tools read: CSV, NDJSON, ShiViz.

Exports of a whole history are streamed: snapshots are read in keyset batches (``id >
last``, one short query per batch, no cursor held open between batches) and each is
turned into text on its own, so memory stays bounded by the largest single snapshot,
whatever the length of the history.

Under ASGI (Daphne) Django would read a plain iterator into a list before sending it,
so there the lines are handed over through an async iterator, a batch at a time.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.db.models import QuerySet
from django.http import HttpRequest, StreamingHttpResponse
from django.utils.http import content_disposition_header
from rest_framework.renderers import BaseRenderer

from cluster.core.detectors import PROPERTIES
from snapshots.models import Snapshot
from snapshots.presenter import snapshot_export

BATCH = 100
CHUNK_BYTES = 64 * 1024

CSV_MEDIA_TYPE = "text/csv"
NDJSON_MEDIA_TYPE = "application/x-ndjson"
SHIVIZ_MEDIA_TYPE = "text/plain"

# Every row starts with what it belongs to: the snapshot, how it was taken and what was
# found in it (each stable property: true, false, or empty where it does not apply),
# so one row read on its own — or a filtered spreadsheet — still says all that.
SNAPSHOT_COLUMNS = ["snapshot", "run", "algorithm", "epoch", "watchpoint", "trigger"]
PROPERTY_COLUMNS = list(PROPERTIES)
RECORD_COLUMNS = [
    "kind",
    "process",
    "state",
    "sent",
    "received",
    "received_above",
    "clock",
    "src",
    "dst",
    "seq",
    "payload",
]
CSV_COLUMNS = [*SNAPSHOT_COLUMNS, *PROPERTY_COLUMNS, *RECORD_COLUMNS]

# Paste the log into ShiViz with this "log parsing regular expression" (ShiViz's default).
SHIVIZ_REGEX = r"(?<event>.*)\n(?<host>\S*) (?<clock>{.*})"
SENDS = ("send", "marker_send")
RECEIVES = ("receive", "marker_receive")


# --- renderers: they name the formats for content negotiation ---------------------------
# The views stream these formats themselves; a renderer only ever renders text.


class TextRenderer(BaseRenderer):
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        return data.encode() if isinstance(data, str) else json.dumps(data).encode()


class CSVRenderer(TextRenderer):
    media_type = CSV_MEDIA_TYPE
    format = "csv"


class NDJSONRenderer(TextRenderer):
    media_type = NDJSON_MEDIA_TYPE
    format = "ndjson"


class ShiVizRenderer(TextRenderer):
    media_type = SHIVIZ_MEDIA_TYPE
    format = "shiviz"


# --- snapshots ----------------------------------------------------------------------------


def in_batches(queryset: QuerySet[Snapshot], size: int = BATCH) -> Iterator[Snapshot]:
    """Every snapshot of the queryset, oldest first, ``size`` rows per query."""
    last = 0
    while True:
        batch = list(queryset.filter(pk__gt=last).order_by("pk")[:size])
        yield from batch
        if len(batch) < size:
            return
        last = batch[-1].pk


def ndjson_lines(snapshots: Iterable[Snapshot]) -> Iterator[str]:
    for snapshot in snapshots:
        yield json.dumps(snapshot_export(snapshot), separators=(",", ":")) + "\n"


def _dump(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _holds(properties: dict[str, Any] | None, name: str) -> str:
    holds = (properties or {}).get(name, {}).get("holds")
    return "" if holds is None else str(holds).lower()


def csv_rows(data: dict[str, Any]) -> Iterator[list[Any]]:
    """One row per process record and one per recorded channel message of one snapshot."""
    head = [data["id"], data["run"], data["algorithm"], data["epoch"], data["watchpoint"] or "", data["trigger"] or ""]
    head += [_holds(data["properties"], name) for name in PROPERTY_COLUMNS]
    for p in data["processes"]:
        yield [
            *head,
            "process",
            p["process"],
            _dump(p["state"]),
            _dump(p["sent"]),
            _dump(p["received"]),
            _dump(p.get("received_above", {})),
            _dump(p["clock"]),
            "",
            "",
            "",
            "",
        ]
    for c in data["channels"]:
        for m in c["messages"]:
            yield [*head, "message", "", "", "", "", "", "", c["src"], c["dst"], m["seq"], _dump(m["payload"])]


def csv_lines(snapshots: Iterable[Snapshot]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def take() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    writer.writerow(CSV_COLUMNS)
    yield take()
    for snapshot in snapshots:
        writer.writerows(csv_rows(snapshot_export(snapshot)))
        yield take()


# --- a run's event log --------------------------------------------------------------------


def shiviz_lines(events: Iterable[dict[str, Any]]) -> Iterator[str]:
    """The event log in ShiViz's format: an event line, then ``host {vector clock}``.

    ShiViz needs every event to advance its host's clock by exactly 1 from 1, and every
    clock entry to name an event in the log. The engine's clocks count application
    messages only and the log keeps just the newest events, so the clocks are computed
    afresh over exactly the events given: every event ticks its process, and a receive
    (message or marker) merges the clock of its send, found by (channel, seq), when
    that send is in the log. Markers thus show as messages; the engine's own clock of
    each event is kept on its event line as ``app_clock``.
    """
    clocks: dict[str, dict[str, int]] = {}
    sends: dict[tuple[str, str, int], dict[str, int]] = {}
    for event in events:
        host = event["process"]
        clock = clocks.setdefault(host, {})
        kind = event["kind"]
        if kind in RECEIVES:
            sent = sends.pop((event["peer"], host, event["seq"]), None)
            for other, time in (sent or {}).items():
                clock[other] = max(clock.get(other, 0), time)
        clock[host] = clock.get(host, 0) + 1
        if kind in SENDS:
            sends[(host, event["peer"], event["seq"])] = dict(clock)
        yield f"{describe(event)}\n{host} {json.dumps(clock, separators=(',', ':'))}\n"


def describe(event: dict[str, Any]) -> str:
    """``send peer=p2 seq=3 app_clock={…}``: one line, for ShiViz's event field."""
    fields = [f"{key}={event[key]}" for key in ("peer", "seq", "snapshot") if key in event]
    return " ".join([event["kind"], *fields, f"app_clock={json.dumps(event.get('clock', {}), separators=(',', ':'))}"])


# --- streaming ----------------------------------------------------------------------------


def chunked(lines: Iterable[str], size: int = CHUNK_BYTES) -> Iterator[str]:
    """Join small lines into chunks of about ``size`` characters: fewer writes."""
    parts: list[str] = []
    length = 0
    for line in lines:
        parts.append(line)
        length += len(line)
        if length >= size:
            yield "".join(parts)
            parts, length = [], 0
    if parts:
        yield "".join(parts)


async def _pulled(chunks: Iterator[str]) -> AsyncIterator[str]:
    # Each batch is read in Django's thread for sync code, where the request's database
    # connection lives.
    step = sync_to_async(lambda: next(chunks, None), thread_sensitive=True)
    while (chunk := await step()) is not None:
        yield chunk


def stream(request: HttpRequest, lines: Iterable[str], media_type: str, filename: str) -> StreamingHttpResponse:
    chunks = chunked(lines)
    is_asgi = isinstance(getattr(request, "_request", request), ASGIRequest)
    response = StreamingHttpResponse(
        _pulled(chunks) if is_asgi else chunks, content_type=f"{media_type}; charset=utf-8"
    )
    response["Content-Disposition"] = content_disposition_header(True, filename)
    return response
