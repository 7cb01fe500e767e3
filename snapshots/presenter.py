"""How a snapshot is shown: its shapes and its verdict in words, each made in one place.

The shapes a snapshot takes outside the database:

* the **export**, records and all (:func:`snapshot_export`): the REST API, the CLI's
  ``--json`` and the CSV/NDJSON exports serve it as it is, ``services.compare_snapshots``
  compares two; :func:`page_export` adds the verdict's words for the pages;
* a line of the **REST API's history** (:func:`snapshot_row`), which
  ``SnapshotSummarySerializer`` describes for the schema and serves from here;
* a line of history as the **pages and the WebSocket stream** show it
  (:func:`snapshot_summary`).

The verdict's words are made here for every reader: :func:`verdict_text` for the pages,
the stream and the page's export; :func:`terminal_verdict`, :func:`terminal_properties`
and :func:`terminal_outcome` for the CLI; :func:`property_rows` and
:func:`dashboard_words` for what the pages say of each stable property. The dashboard's
scripts render the words they are given and make none.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from cluster.core.detectors import PROPERTIES
from snapshots.models import Run, Snapshot

# What each stable property means, as the snapshot page explains it.
MEANINGS = {
    "conservation": "the conserved quantity adds up",
    "termination": "every process is passive and no message is in a channel",
    "deadlock": "a cycle of processes each waiting for the next",
}

# What "holds: true / false / null (not applicable)" reads as on the pages and the dashboard.
HOLDS_WORDS: dict[bool | None, str] = {True: "yes", False: "no", None: "n.a."}

# The CLI's words. The terminal has no colour, so what went wrong is in capitals there;
# they differ from the pages' and are kept as the CLI has always printed them.
TERMINAL_HOLDS_WORDS: dict[bool | None, str] = {True: "holds", False: "does not hold", None: "n/a"}


def iso(when: datetime | None) -> str | None:
    """A time as the export and the stream give it: ISO 8601, UTC as ``+00:00``."""
    return when.isoformat() if when else None


def rest_time(when: datetime | None) -> str | None:
    """A time as the REST API's history gives it (Django REST framework's way, kept):
    ISO 8601 in the current time zone, UTC as ``Z``."""
    if when is None:
        return None
    text = timezone.localtime(when).isoformat()
    return text[: -len("+00:00")] + "Z" if text.endswith("+00:00") else text


# --- shapes -------------------------------------------------------------------------------


def _heading(snapshot: Snapshot, time: Callable[[datetime | None], str | None]) -> dict[str, Any]:
    """What the export and the API's history line both begin with (each writes times its way)."""
    return {
        "id": snapshot.pk,
        "run": snapshot.run_id,
        "initiator": snapshot.initiator,
        "algorithm": snapshot.algorithm,
        "epoch": snapshot.epoch,
        "watchpoint": snapshot.watchpoint_id,
        "trigger": snapshot.trigger or None,
        "status": snapshot.status,
        "reason": snapshot.reason,
        "started_at": time(snapshot.started_at),
        "finished_at": time(snapshot.finished_at),
    }


def snapshot_export(snapshot: Snapshot) -> dict[str, Any]:
    """The export shape: what the CLI's ``--json``, the REST API's snapshot detail and its
    JSON, CSV and NDJSON exports serve, records included (self-describing: anyone can
    check the snapshot from it)."""
    return {
        **_heading(snapshot, iso),
        "reported": snapshot.reported,
        "processes": [r.to_dict() for r in snapshot.process_records.order_by("id")],
        "channels": [r.to_dict() for r in snapshot.channel_records.order_by("id")],
        "verdict": snapshot.verdict,
        "properties": snapshot.properties,
    }


def snapshot_row(snapshot: Snapshot) -> dict[str, Any]:
    """One line of the REST API's snapshot history: the export's fields without the
    records, plus the duration."""
    return {
        **_heading(snapshot, rest_time),
        "duration": snapshot.duration,
        "reported": snapshot.reported,
        "verdict": snapshot.verdict,
        "properties": snapshot.properties,
    }


def snapshot_summary(snapshot: Snapshot) -> dict[str, Any]:
    """One line of snapshot history as the pages and the stream show it: no records
    (those are in the export), the verdict in words, the watchpoint by what it watched."""
    return {
        "id": snapshot.pk,
        "run": snapshot.run_id,
        "initiator": snapshot.initiator,
        "algorithm": snapshot.algorithm,
        "epoch": snapshot.epoch,
        "status": snapshot.status,
        "reason": snapshot.reason,
        "started_at": iso(snapshot.started_at),
        "finished_at": iso(snapshot.finished_at),
        "duration": snapshot.duration,
        "reported": snapshot.reported,
        "verdict": snapshot.verdict,
        "verdict_text": verdict_text(snapshot),
        "properties": snapshot.properties,
        "watchpoint": watchpoint_of(snapshot),
        "trigger": snapshot.trigger or None,
    }


def page_export(snapshot: Snapshot) -> dict[str, Any]:
    """The export as the pages download it: with the verdict in words."""
    return {**snapshot_export(snapshot), "verdict_text": verdict_text(snapshot)}


def watchpoint_of(snapshot: Snapshot) -> dict[str, Any] | None:
    """The watchpoint that triggered a snapshot, as its history row names it (None: a
    person took it). A watchpoint removed since is still named by its trigger text."""
    if snapshot.watchpoint_id is None:
        return None
    watchpoint = snapshot.watchpoint
    if watchpoint is None:
        return None
    return {"id": watchpoint.pk, "process": watchpoint.process or None, "condition": watchpoint.condition}


def history_summary(snapshots: QuerySet[Snapshot]) -> dict[str, Any]:
    """Counts by status and the durations of complete snapshots, over the whole run."""
    counts = dict.fromkeys(Snapshot.Status.values, 0)
    durations: list[float] = []
    for status, started, finished in snapshots.values_list("status", "started_at", "finished_at"):
        counts[status] += 1
        if status == Snapshot.Status.COMPLETE and finished is not None:
            durations.append((finished - started).total_seconds())
    return {
        "counts": counts,
        "duration": {
            "count": len(durations),
            "sum": sum(durations),
            "min": min(durations, default=None),
            "max": max(durations, default=None),
        },
    }


def watchpoints_of(run: Run) -> list[dict[str, Any]]:
    """Every watchpoint of the run, fired-once ones too (they show their hits)."""
    return [w.to_dict() for w in run.watchpoints.order_by("id")]


# --- the verdict in words: pages, stream and dashboard ---------------------------------------


def verdict_text(snapshot: Snapshot) -> str:
    """The verdict in plain words, e.g. "consistent · 1000 of 1000 conserved · 0 problems"."""
    if snapshot.status == Snapshot.Status.RUNNING:
        return "running"
    verdict = snapshot.verdict
    if verdict is None:
        return f"failed · {snapshot.reason or 'no reason given'}"
    n = len(verdict["problems"])
    recorded, expected = verdict["recorded_total"], verdict["expected_total"]
    if recorded is None:
        # The workload conserves nothing (diffusion): there is no total to check.
        conservation = "nothing conserved to check"
    elif recorded == expected:
        conservation = f"{recorded} of {expected} conserved"
    else:
        conservation = f"{recorded} of {expected} ({recorded - expected:+d}): not conserved"
    words = [
        "consistent" if verdict["consistent"] else "inconsistent",
        conservation,
        f"{n} problem" if n == 1 else f"{n} problems",
    ]
    if snapshot.status == Snapshot.Status.FAILED:
        words.insert(0, "failed")
    return " · ".join(words)


def property_rows(properties: dict[str, Any] | None, first: dict[str, int], snapshot_id: int) -> list[dict[str, Any]]:
    """A snapshot's stable properties as the snapshot page lists them: holds yes / no / n.a."""
    rows = []
    for name in PROPERTIES:
        result = (properties or {}).get(name)
        if result is None:
            continue
        rows.append(
            {
                "name": name,
                "meaning": MEANINGS[name],
                "holds": HOLDS_WORDS[result.get("holds")],
                "detail": result.get("detail", ""),
                "cycle": result.get("cycle") or [],
                "first": first.get(name) == snapshot_id,
            }
        )
    return rows


def dashboard_words() -> dict[str, Any]:
    """The words the dashboard's scripts show for what a summary holds as values: for
    each stable property, what its ``holds`` (true, false or null, as JSON) reads as."""
    return {"holds": {json.dumps(holds): word for holds, word in HOLDS_WORDS.items()}}


# --- the verdict in words: the CLI -----------------------------------------------------------


def terminal_verdict(verdict: dict[str, Any]) -> list[str]:
    """The verdict line and one line per problem, as ``manage.py snapshot`` prints them."""
    if verdict["conserved"] is None:
        conservation = "nothing to conserve"
    else:
        conserved = "conserved" if verdict["conserved"] else "NOT conserved"
        conservation = f"{verdict['recorded_total']} of {verdict['expected_total']} {conserved}"
    consistency = "consistent" if verdict["consistent"] else "INCONSISTENT"
    line = f"verdict: {consistency} · {conservation} · {len(verdict['problems'])} problems"
    return [line, *(f"  - {problem}" for problem in verdict["problems"])]


def terminal_properties(properties: dict[str, Any]) -> list[str]:
    """One line per stable property found: ``conservation: holds — 300 of 300 …``."""
    lines = []
    for name in PROPERTIES:
        found = properties.get(name)
        if found:
            lines.append(f"{name}: {TERMINAL_HOLDS_WORDS[found.get('holds')]} — {found.get('detail', '')}")
    return lines


def terminal_outcome(snapshot: Snapshot) -> str:
    """How a snapshot ended, in a word or two: its status, and for a complete one whether
    it is a sound global state (``complete, NOT sound``)."""
    if snapshot.status != Snapshot.Status.COMPLETE:
        return snapshot.status
    return f"{snapshot.status}, {'sound' if snapshot.is_sound else 'NOT sound'}"
