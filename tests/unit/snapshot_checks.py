"""Checks shared by the scenario and property tests: is a simulated snapshot right?

The verdict (cluster/core/verdict.py) judges a snapshot from its records alone. These
checks also hold the records against the simulator's ground truth — every frame that
was really sent — so a snapshot whose records agree with each other but not with what
happened would still fail.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from cluster.core.simulator import Simulator
from cluster.core.workloads import payload_value, state_value


def assert_snapshot_sound(sim: Simulator, snapshot_id: int) -> dict[str, Any]:
    """A finished, consistent, conserved snapshot that matches what really happened."""
    export = sim.snapshot_export(snapshot_id)
    assert export["status"] == "complete", f"snapshot {snapshot_id} did not finish"
    verdict = export["verdict"]
    assert verdict["problems"] == [], verdict["problems"]
    assert verdict["consistent"] and verdict["conserved"]
    assert verdict["recorded_total"] == verdict["expected_total"] == sim.expected_total
    assert_recorded_exactly_once(sim, snapshot_id)
    assert_channels_match_history(sim, export)
    assert_states_match_history(sim, export)
    return export


def assert_recorded_exactly_once(sim: Simulator, snapshot_id: int) -> None:
    log = sim.snapshots[snapshot_id]
    processes = Counter(r["process"] for r in log.process_records)
    channels = Counter((r["src"], r["dst"]) for r in log.channel_records)
    assert processes == Counter(sim.names), f"process records of snapshot {snapshot_id}: {processes}"
    assert channels == Counter(sim.channel_list), f"channel records of snapshot {snapshot_id}: {channels}"


def received(record: dict[str, Any], src: str, seq: int) -> bool:
    """Whether a process record counts seq from src as received: in the prefix or above it."""
    return seq <= record["received"][src] or seq in record["received_above"].get(src, ())


def assert_channels_match_history(sim: Simulator, export: dict[str, Any]) -> None:
    """Channel p→q holds exactly the frames really sent with seq ≤ sent_p[q] that q had not received."""
    by_process = {r["process"]: r for r in export["processes"]}
    for rec in export["channels"]:
        src, dst = rec["src"], rec["dst"]
        high = by_process[src]["sent"][dst]
        between = [
            f for f in sim.sent_log[(src, dst)] if f["seq"] <= high and not received(by_process[dst], src, f["seq"])
        ]
        assert rec["messages"] == [
            {"seq": f["seq"], "payload": f["payload"]} for f in between if f["kind"] == "message"
        ], f"{src}→{dst} in snapshot {export['id']}"
        assert rec["markers"] == [
            {"seq": f["seq"], "snapshot": f["snapshot"]} for f in between if f["kind"] == "marker"
        ], f"{src}→{dst} in snapshot {export['id']}"


def assert_states_match_history(sim: Simulator, export: dict[str, Any]) -> None:
    """Each recorded value is the initial value plus what came in minus what went out, up to the cut.

    This ties the recorded state to the recorded seqs: a state captured at the wrong
    moment (say after applying the marker's successor) would disagree. "Initial" is as
    the current epoch began (``Simulator.initial``), so it holds after a restore too.
    """
    workload = sim.workload
    for rec in export["processes"]:
        name = rec["process"]
        out = sum(
            payload_value(workload, f["payload"])
            for (src, dst), frames in sim.sent_log.items()
            if src == name
            for f in frames
            if f["kind"] == "message" and f["seq"] <= rec["sent"][dst]
        )
        came_in = sum(
            payload_value(workload, f["payload"])
            for (src, dst), frames in sim.sent_log.items()
            if dst == name
            for f in frames
            if f["kind"] == "message" and received(rec, src, f["seq"])
        )
        assert state_value(workload, rec["state"]) == sim.initial[name] - out + came_in, (
            f"{name} in snapshot {export['id']}"
        )
