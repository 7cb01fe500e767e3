"""Comparing two snapshots of one run (cluster/core/compare.py), from their exports."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from cluster.core.compare import compare


def export(snapshot: int, balances: dict[str, int], messages: dict[str, list[tuple[int, int]]], **extra: Any) -> Any:
    """A snapshot export (``presenter.snapshot_export``) of a bank run: balances by process,
    (seq, amount) in flight by channel."""
    return {
        "id": snapshot,
        "run": 7,
        "initiator": "p1",
        "status": "complete",
        "reason": None,
        "started_at": f"2025-01-01T10:00:{snapshot:02d}+00:00",
        "finished_at": f"2025-01-01T10:00:{snapshot:02d}.5+00:00",
        "reported": {},
        "processes": [
            {"process": name, "state": {"balance": b}, "sent": {}, "received": {}, "clock": {name: snapshot * 10}}
            for name, b in balances.items()
        ],
        "channels": [
            {
                "src": key.split("→")[0],
                "dst": key.split("→")[1],
                "messages": [{"seq": seq, "payload": {"amount": amount}} for seq, amount in in_flight],
                "markers": [],
            }
            for key, in_flight in messages.items()
        ],
        "verdict": {"consistent": True, "conserved": True, "recorded_total": 300, "expected_total": 300},
        **extra,
    }


A = export(3, {"p1": 100, "p2": 150, "p3": 40}, {"p1→p2": [(4, 5), (5, 5)], "p2→p3": [], "p3→p1": []})
B = export(5, {"p1": 90, "p2": 150, "p3": 45}, {"p1→p2": [(5, 5), (6, 10)], "p2→p3": [], "p3→p1": [(2, 0)]})


def test_it_shows_each_process_state_difference_side_by_side() -> None:
    result = compare(A, B)
    by_name = {p["process"]: p for p in result["processes"]}
    assert by_name["p1"]["changes"] == [{"key": "balance", "a": 100, "b": 90, "missing": None}]
    assert by_name["p2"] == {
        "process": "p2",
        "same": True,
        "only_in": None,
        "changes": [],
        "events": {"a": 30, "b": 50},
    }
    assert [p["process"] for p in result["processes"]] == ["p1", "p2", "p3"]


def test_it_matches_channel_messages_by_seq_and_payload() -> None:
    result = compare(A, B)
    p1p2, p2p3, p3p1 = result["channels"]
    assert p1p2["channel"] == "p1→p2"
    assert p1p2["only_a"] == [{"seq": 4, "payload": {"amount": 5}}]
    assert p1p2["only_b"] == [{"seq": 6, "payload": {"amount": 10}}]
    assert p1p2["both"] == [{"seq": 5, "payload": {"amount": 5}}]
    assert (p1p2["a"], p1p2["b"], p1p2["same"]) == (2, 2, False)
    assert p2p3["same"] and p2p3["only_in"] is None
    assert p3p1["only_b"] == [{"seq": 2, "payload": {"amount": 0}}]


def test_the_same_seq_with_another_payload_is_another_message() -> None:
    b = export(5, {"p1": 100, "p2": 150, "p3": 40}, {"p1→p2": [(4, 6), (5, 5)], "p2→p3": [], "p3→p1": []})
    [p1p2, *_] = compare(A, b)["channels"]
    assert [m["seq"] for m in p1p2["only_a"]] == [4] and [m["seq"] for m in p1p2["only_b"]] == [4]


def test_it_totals_what_changed() -> None:
    totals = compare(A, B)["totals"]
    assert totals == {
        "processes_changed": 2,
        "processes_same": 1,
        "channels_changed": 2,
        "messages": {"a": 2, "b": 3, "only_a": 1, "only_b": 2, "both": 1},
        "recorded_total": {"a": 300, "b": 300},
    }


def test_it_says_which_came_first_and_keeps_the_order_given() -> None:
    assert compare(A, B)["first"] == "a"
    backwards = compare(B, A)
    assert backwards["first"] == "b"
    assert backwards["a"]["id"] == 5 and backwards["b"]["id"] == 3
    assert backwards["processes"][0]["changes"] == [{"key": "balance", "a": 90, "b": 100, "missing": None}]


def test_a_snapshot_compared_with_itself_is_the_same_everywhere() -> None:
    result = compare(A, copy.deepcopy(A))
    assert all(p["same"] for p in result["processes"]) and all(c["same"] for c in result["channels"])
    assert result["first"] is None
    assert result["notes"] == ["both sides are snapshot 3"]


def test_keys_and_records_present_on_one_side_only_are_shown() -> None:
    b = copy.deepcopy(A)
    b["id"] = 4
    b["processes"][0]["state"] = {"extra": [1]}
    b["processes"].pop()  # no record of p3
    b["channels"].pop(0)  # none of p1→p2
    result = compare(A, b)
    p1, _, p3 = result["processes"]
    assert p1["changes"] == [
        {"key": "balance", "a": 100, "b": None, "missing": "b"},
        {"key": "extra", "a": None, "b": [1], "missing": "a"},
    ]
    assert (p3["same"], p3["only_in"], p3["events"]) == (False, "a", {"a": 30, "b": None})
    p1p2 = next(c for c in result["channels"] if c["channel"] == "p1→p2")
    assert p1p2["only_in"] == "a" and len(p1p2["only_a"]) == 2 and not p1p2["same"]


def test_it_notes_an_unfinished_snapshot_and_a_restore_between() -> None:
    a = {**A, "epoch": 0}
    b = {**B, "epoch": 1, "status": "failed"}
    notes = compare(a, b)["notes"]
    assert notes[0] == "snapshot 5 is failed: what it lacks shows up as differences"
    assert notes[1].startswith("the run was restored between them (epoch 0 and 1)")


def test_the_summaries_carry_what_identifies_each_snapshot() -> None:
    a = {**A, "algorithm": "lai-yang"}
    summary = compare(a, B)["a"]
    assert summary == {
        "id": 3,
        "initiator": "p1",
        "status": "complete",
        "started_at": A["started_at"],
        "finished_at": A["finished_at"],
        "algorithm": "lai-yang",
        "consistent": True,
    }


def test_snapshots_of_different_runs_cannot_be_compared() -> None:
    other = {**B, "run": 8}
    with pytest.raises(ValueError, match=r"^snapshot 3 is of run 7 and snapshot 5 of run 8: only snapshots of one run"):
        compare(A, other)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ([], "a is not a snapshot export"),
        ({"run": 7}, "a is not a snapshot export"),
        ({"run": 7, "processes": []}, r"a is not a snapshot export \(no list of channels\)"),
    ],
)
def test_something_that_is_not_an_export_is_refused(bad: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        compare(bad, B)
