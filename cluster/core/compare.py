"""Two snapshots of one run side by side: what changed at each process and in each channel.

Pure: it reads two exports (``snapshots.presenter.snapshot_export``, the shape the CLI's ``--json`` and
the REST API serve), so an export saved to a file compares the same way.

* a process: every state key whose value differs (``{"key", "a", "b"}``, a missing key
  shown as None with ``missing`` naming the side), and how many application events it
  had done at each cut (its own vector-clock entry);
* a channel: the recorded in-flight messages only in a, only in b, and in both — a
  message is the same message when its seq and its payload are;
* totals, and notes on what makes the two hard to compare (an unfinished snapshot, a
  restore between them).

``a`` and ``b`` are kept in the order given; ``first`` says which was started first.
"""

from __future__ import annotations

import json
from typing import Any

from cluster.core.wire import channel_id

Export = dict[str, Any]


def compare(a: Export, b: Export) -> dict[str, Any]:
    """Compare two snapshot exports of one run; raise ValueError when they cannot be compared."""
    for side, export in (("a", a), ("b", b)):
        if not (isinstance(export, dict) and isinstance(export.get("processes"), list)):
            raise ValueError(f"{side} is not a snapshot export (no list of processes)")
        if not isinstance(export.get("channels"), list):
            raise ValueError(f"{side} is not a snapshot export (no list of channels)")
    if a.get("run") != b.get("run"):
        raise ValueError(
            f"snapshot {a.get('id')} is of run {a.get('run')} and snapshot {b.get('id')} of run {b.get('run')}:"
            " only snapshots of one run can be compared"
        )
    processes = _processes(a["processes"], b["processes"])
    channels = _channels(a["channels"], b["channels"])
    messages = {
        "a": sum(c["a"] for c in channels),
        "b": sum(c["b"] for c in channels),
        "only_a": sum(len(c["only_a"]) for c in channels),
        "only_b": sum(len(c["only_b"]) for c in channels),
        "both": sum(len(c["both"]) for c in channels),
    }
    return {
        "a": _summary(a),
        "b": _summary(b),
        "first": _first(a, b),
        "processes": processes,
        "channels": channels,
        "totals": {
            "processes_changed": sum(1 for p in processes if not p["same"]),
            "processes_same": sum(1 for p in processes if p["same"]),
            "channels_changed": sum(1 for c in channels if not c["same"]),
            "messages": messages,
            "recorded_total": {"a": _recorded_total(a), "b": _recorded_total(b)},
        },
        "notes": _notes(a, b),
    }


def _summary(export: Export) -> dict[str, Any]:
    keys = ("id", "initiator", "status", "started_at", "finished_at", "algorithm", "epoch")
    summary = {key: export.get(key) for key in keys if key in export}
    verdict = export.get("verdict") or {}
    summary["consistent"] = verdict.get("consistent")
    return summary


def _first(a: Export, b: Export) -> str | None:
    """Which snapshot was started first: by start time when both have one, else by id."""
    for key in ("started_at", "id"):
        left, right = a.get(key), b.get(key)
        if left is not None and right is not None and type(left) is type(right) and left != right:
            return "a" if left < right else "b"
    return None


def _processes(a_records: list[dict[str, Any]], b_records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_a = {r["process"]: r for r in a_records}
    by_b = {r["process"]: r for r in b_records}
    rows = []
    for name in _union(list(by_a), list(by_b)):
        ra, rb = by_a.get(name), by_b.get(name)
        row: dict[str, Any] = {"process": name}
        if ra is None or rb is None:
            row.update(same=False, only_in="a" if rb is None else "b", changes=[])
        else:
            changes = _state_changes(ra.get("state") or {}, rb.get("state") or {})
            row.update(same=not changes, only_in=None, changes=changes)
        row["events"] = {side: _own_events(rec, name) for side, rec in (("a", ra), ("b", rb))}
        rows.append(row)
    return rows


def _state_changes(a: dict[str, Any], b: dict[str, Any]) -> list[dict[str, Any]]:
    changes = []
    for key in _union(list(a), list(b)):
        if key not in b:
            changes.append({"key": key, "a": a[key], "b": None, "missing": "b"})
        elif key not in a:
            changes.append({"key": key, "a": None, "b": b[key], "missing": "a"})
        elif a[key] != b[key]:
            changes.append({"key": key, "a": a[key], "b": b[key], "missing": None})
    return changes


def _own_events(record: dict[str, Any] | None, name: str) -> int | None:
    if record is None:
        return None
    return int((record.get("clock") or {}).get(name, 0))


def _channels(a_records: list[dict[str, Any]], b_records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_a = {(r["src"], r["dst"]): r for r in a_records}
    by_b = {(r["src"], r["dst"]): r for r in b_records}
    rows = []
    for src, dst in _union(list(by_a), list(by_b)):
        ma = _messages(by_a.get((src, dst)))
        mb = _messages(by_b.get((src, dst)))
        row = {
            "channel": channel_id(src, dst),
            "src": src,
            "dst": dst,
            "only_a": [m for key, m in ma.items() if key not in mb],
            "only_b": [m for key, m in mb.items() if key not in ma],
            "both": [m for key, m in ma.items() if key in mb],
            "a": len(ma),
            "b": len(mb),
            "only_in": None if (src, dst) in by_a and (src, dst) in by_b else ("a" if (src, dst) in by_a else "b"),
        }
        row["same"] = not row["only_a"] and not row["only_b"] and row["only_in"] is None
        rows.append(row)
    return rows


def _messages(record: dict[str, Any] | None) -> dict[tuple[int, str], dict[str, Any]]:
    """A channel's recorded messages keyed by what makes two the same message: seq and payload."""
    if record is None:
        return {}
    return {(m["seq"], json.dumps(m.get("payload"), sort_keys=True)): m for m in record.get("messages", [])}


def _recorded_total(export: Export) -> Any:
    verdict = export.get("verdict") or {}
    return verdict.get("recorded_total")


def _notes(a: Export, b: Export) -> list[str]:
    notes = []
    for export in (a, b):
        if export.get("status") != "complete":
            notes.append(
                f"snapshot {export.get('id')} is {export.get('status')}: what it lacks shows up as differences"
            )
    if a.get("id") is not None and a.get("id") == b.get("id"):
        notes.append(f"both sides are snapshot {a.get('id')}")
    epochs = a.get("epoch"), b.get("epoch")
    if None not in epochs and epochs[0] != epochs[1]:
        notes.append(
            f"the run was restored between them (epoch {epochs[0]} and {epochs[1]}): the same seq may name"
            " different messages, so messages are matched by seq and payload together"
        )
    return notes


def _union(first: list[Any], second: list[Any]) -> list[Any]:
    """Every item of both, in first's order and then second's new ones."""
    seen = set(first)
    return first + [item for item in second if item not in seen]
