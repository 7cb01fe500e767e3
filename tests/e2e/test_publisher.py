"""The publisher's coalescing, without I/O: whatever the message rate, at most one compact
frame per run per interval, and never a snapshot event lost on the way.

The processes here are the real pure ``SimulatedProcess`` of the runtime, driven by hand.
"""

from __future__ import annotations

import random
from typing import Any

from cluster.core.process import SimulatedProcess, Step
from snapshots.live.frames import run_settings
from snapshots.live.publisher import MESSAGES_PER_CHANNEL, Coalescer

INTERVAL = 0.1


def ring3() -> dict[str, SimulatedProcess]:
    """p1 → p2 → p3 → p1, one way, 100 each."""
    edges = [("p1", "p2"), ("p2", "p3"), ("p3", "p1")]
    return {
        name: SimulatedProcess(
            name,
            [s for s, d in edges if d == name],
            [d for s, d in edges if s == name],
            "bank",
            {"balance": 100},
        )
        for name in ("p1", "p2", "p3")
    }


def deliver(procs: dict[str, SimulatedProcess], step: Step) -> list[tuple[SimulatedProcess, Step]]:
    return [(procs[f["dst"]], procs[f["dst"]].receive(f)) for f in step.sends]


def test_it_sends_one_frame_per_interval_however_many_steps() -> None:
    procs, rng, c = ring3(), random.Random(1), Coalescer("src")
    for _ in range(5):
        c.on_step(7, procs["p1"], procs["p1"].act(rng, {}), now=10.0)
    frames = c.frames(now=10.0, interval=INTERVAL)
    assert [(run, seq) for run, seq, _ in frames] == [(7, 1)]
    c.on_step(7, procs["p1"], procs["p1"].act(rng, {}), now=10.01)
    assert c.frames(now=10.02, interval=INTERVAL) == []  # too soon: kept for later
    later = c.frames(now=10.1, interval=INTERVAL)
    assert [(run, seq) for run, seq, _ in later] == [(7, 2)]
    assert later[0][2]["since"] == 10.01


def test_a_frame_carries_only_what_changed_as_absolute_values() -> None:
    procs, rng, c = ring3(), random.Random(2), Coalescer("src")
    c.on_step(1, procs["p1"], procs["p1"].act(rng, {}), now=1.0)
    first = c.frames(now=1.0, interval=INTERVAL)[0][2]
    assert set(first["processes"]["p1"]) == {
        "state",
        "sent",
        "applied",
        "above",
        "clock",
        "counters",
        "fifo",
        "recording",
    }
    c.on_step(1, procs["p1"], procs["p1"].act(rng, {}), now=2.0)
    second = c.frames(now=2.0, interval=INTERVAL)[0][2]
    assert second["processes"]["p1"] == {
        "state": {"balance": procs["p1"].state["balance"]},
        "sent": {"p2": 2},
        "clock": {"p1": 2},
        "counters": {"messages_sent": 2},
    }


def test_nothing_new_means_no_frame_and_no_number_used() -> None:
    procs, rng, c = ring3(), random.Random(3), Coalescer("src")
    c.on_step(1, procs["p1"], procs["p1"].act(rng, {}), now=1.0)
    c.frames(now=1.0, interval=INTERVAL)
    c.on_step(1, procs["p1"], Step(), now=2.0)  # a step that changed nothing
    assert c.frames(now=2.0, interval=INTERVAL) == []
    c.on_step(1, procs["p1"], procs["p1"].act(rng, {}), now=3.0)
    assert [seq for _, seq, _ in c.frames(now=3.0, interval=INTERVAL)] == [2]


def test_snapshot_events_are_never_coalesced_away() -> None:
    procs, rng, c = ring3(), random.Random(4), Coalescer("src")
    steps: list[tuple[SimulatedProcess, Step]] = []
    for _ in range(50):  # traffic all around the ring
        for name in ("p1", "p2", "p3"):
            step = procs[name].act(rng, {})
            steps.append((procs[name], step))
            steps.extend(deliver(procs, step))
    start = procs["p1"].initiate(9)
    steps.append((procs["p1"], start))
    pending = [start]
    while pending:  # let the markers go round until every channel is closed
        step = pending.pop()
        for proc, after in deliver(procs, step):
            steps.append((proc, after))
            pending.append(after)
    for proc, step in steps:
        c.on_step(3, proc, step, now=5.0)
    events = c.frames(now=5.0, interval=INTERVAL)[0][2]["snapshot_events"]
    kinds = [e["kind"] for e in events]
    assert kinds.count("record") == 3 and kinds.count("channel_closed") == 3
    assert kinds.count("marker_send") == 3 and kinds.count("marker_receive") == 3
    assert kinds.count("initiate") == 1 and kinds.count("local_done") == 3
    records = {e["process"]: e["state"] for e in events if e["kind"] == "record"}
    assert set(records) == {"p1", "p2", "p3"} and all("balance" in s for s in records.values())


def test_it_keeps_only_the_newest_messages_of_each_channel() -> None:
    procs, rng, c = ring3(), random.Random(5), Coalescer("src")
    for _ in range(3 * MESSAGES_PER_CHANNEL):
        c.on_step(1, procs["p1"], procs["p1"].act(rng, {}), now=1.0)
    messages = c.frames(now=1.0, interval=INTERVAL)[0][2]["messages"]
    sent = procs["p1"].sent["p2"]
    assert [m[2] for m in messages] == list(range(sent - MESSAGES_PER_CHANNEL + 1, sent + 1))
    assert all(m[:2] == ["p1", "p2"] and "amount" in m[3] for m in messages)


def test_each_run_has_its_own_numbers() -> None:
    a, b, rng, c = ring3(), ring3(), random.Random(6), Coalescer("src")
    seqs: dict[int, list[int]] = {1: [], 2: []}
    for i in range(4):
        c.on_step(1, a["p1"], a["p1"].act(rng, {}), now=float(i))
        if i % 2:
            c.on_step(2, b["p2"], b["p2"].act(rng, {}), now=float(i))
        for run, seq, frame in c.frames(now=float(i), interval=INTERVAL):
            assert frame["run"] == run and frame["source"] == "src"
            seqs[run].append(seq)
    assert seqs == {1: [1, 2, 3, 4], 2: [1, 2]}


def test_a_finished_snapshot_and_a_new_status_ride_the_next_frame() -> None:
    c = Coalescer("src")
    summary: dict[str, Any] = {"id": 4, "status": "complete"}
    c.add_event(8, {"kind": "finished", "snapshot": summary}, now=1.0)
    c.set_run(8, {"status": "paused", "rate": 3.0}, now=1.0)
    frame = c.frames(now=1.0, interval=INTERVAL)[0][2]
    assert frame["snapshot_events"] == [{"kind": "finished", "snapshot": summary}]
    assert frame["run_settings"] == {"status": "paused", "rate": 3.0}


def test_a_watchpoint_hit_rides_the_frame_with_the_snapshot_it_started() -> None:
    procs, c = ring3(), Coalescer("src")
    step = Step(
        events=[{"kind": "watchpoint", "process": "p2", "watchpoint": 3, "snapshot": 9, "detail": "balance = 7"}]
    )
    step.extend(procs["p2"].initiate(9, "lai-yang"))
    c.on_step(1, procs["p2"], step, now=1.0)
    events = c.frames(now=1.0, interval=INTERVAL)[0][2]["snapshot_events"]
    assert events[:2] == [
        {"kind": "watchpoint", "process": "p2", "snapshot": 9, "clock": {}, "watchpoint": 3, "detail": "balance = 7"},
        {"kind": "initiate", "process": "p2", "snapshot": 9, "clock": {}, "algorithm": "lai-yang"},
    ]


def test_frames_say_their_epoch_and_a_restored_process_is_sent_whole() -> None:
    procs, rng, c = ring3(), random.Random(7), Coalescer("src")
    c.on_step(1, procs["p1"], procs["p1"].act(rng, {}), now=1.0)
    assert c.frames(now=1.0, interval=INTERVAL)[0][2]["epoch"] == 0
    # A restore: the same process, in a new epoch, back in an older state. Published as a
    # difference from what was sent before, keys that happen to match would be left out.
    restored = SimulatedProcess.from_dict({**procs["p1"].to_dict(), "epoch": 1})
    c.on_step(1, restored, Step(), now=2.0)
    frame = c.frames(now=2.0, interval=INTERVAL)[0][2]
    assert frame["epoch"] == 1
    assert set(frame["processes"]["p1"]) >= {"state", "sent", "applied", "clock", "counters"}


def test_run_settings_are_the_status_rate_epoch_and_faults_of_the_meta() -> None:
    meta = {"status": "restoring", "rate": 2, "epoch": 3, "faults": {"p1→p2": {"reorder": True}}, "params": {}}
    assert run_settings(meta) == {
        "status": "restoring",
        "rate": 2.0,
        "epoch": 3,
        "faults": {"p1→p2": {"reorder": True}},
    }
