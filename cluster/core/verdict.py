"""The verdict on a recorded global state: is it a consistent cut, and is it whole?

Pure: it reads the records exactly as they are exported, so anyone holding an export
can check it the same way. Three checks, every violation reported in words:

* **channel contents** — ``q``'s received set from p→q is the prefix ``received_q[p]``
  plus ``received_above_q[p]`` (seqs applied beyond the prefix, on a non-FIFO channel).
  Channel p→q must hold exactly the frames with seq ``≤ sent_p[q]`` outside that set:
  its recorded messages, in order, plus the markers of other snapshots in it at the cut;
* **consistency** — no receive recorded without its send: by sequence numbers (every
  seq in the received set ``≤ sent_p[q]``; one above it overtook the sender's marker on
  a non-FIFO channel and is named) and by vector clocks (no process knows more of
  process j's events than j itself had done when j recorded);
* **conservation** — the workload's invariant (total money, the one token) summed
  over recorded states and recorded in-channel messages equals the expected total. A
  workload without one (``state_unit`` None) has no conservation verdict: ``None``.

A snapshot is ``consistent`` when it is complete and the first two checks find nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from cluster.core.wire import RecordedChannel, RecordedProcess, channel_id


def compute_verdict(
    processes: Iterable[str],
    channels: Iterable[tuple[str, str]],
    state_unit: str | None,
    payload_unit: str | None,
    expected_total: int,
    process_records: Iterable[RecordedProcess],
    channel_records: Iterable[RecordedChannel],
) -> dict[str, Any]:
    names = list(processes)
    edges = list(channels)
    by_process = {r["process"]: r for r in process_records}
    by_channel = {(r["src"], r["dst"]): r for r in channel_records}
    problems: list[str] = []

    missing_p = [p for p in names if p not in by_process]
    missing_c = [channel_id(s, d) for s, d in edges if (s, d) not in by_channel]
    if missing_p:
        problems.append(f"no recorded state from {', '.join(missing_p)}")
    if missing_c:
        problems.append(f"no recorded state for channel {', '.join(missing_c)}")

    for src, dst in edges:
        sender, receiver, rec = by_process.get(src), by_process.get(dst), by_channel.get((src, dst))
        if sender is None or receiver is None or rec is None:
            continue
        problems.extend(
            _channel_problems(
                src,
                dst,
                sender["sent"].get(dst, 0),
                receiver["received"].get(src, 0),
                set(receiver.get("received_above", {}).get(src, ())),
                rec,
            )
        )

    problems.extend(_clock_problems(by_process))
    consistent = not problems

    if state_unit is None:
        return {
            "consistent": consistent,
            "conserved": None,
            "expected_total": expected_total,
            "recorded_total": None,
            "problems": problems,
        }
    recorded_total = sum(int(r["state"].get(state_unit, 0)) for r in by_process.values()) + sum(
        int(m["payload"].get(payload_unit, 0)) if payload_unit else 0
        for r in by_channel.values()
        for m in r["messages"]
    )
    conserved = recorded_total == expected_total and not missing_p and not missing_c
    if recorded_total != expected_total:
        problems.append(
            f"{state_unit} not conserved: recorded {recorded_total}, expected {expected_total}"
            f" ({recorded_total - expected_total:+d})"
        )
    return {
        "consistent": consistent,
        "conserved": conserved,
        "expected_total": expected_total,
        "recorded_total": recorded_total,
        "problems": problems,
    }


def _channel_problems(
    src: str, dst: str, sent: int, received: int, received_above: set[int], rec: RecordedChannel
) -> list[str]:
    name = channel_id(src, dst)
    problems: list[str] = []
    if received > sent:
        problems.append(
            f"{name}: {dst} recorded receiving seq {received}, but {src} recorded sending only up to {sent}"
            " (a receive without its send)"
        )
        return problems
    for seq in sorted(s for s in received_above if s > sent):
        # The sender sends its marker right after it records, so the marker is seq sent + 1.
        problems.append(
            f"{name}: {dst} recorded receiving seq {seq} from {src}, which {src} sent after its cut"
            f" (its marker was seq {sent + 1}): the message overtook the marker — the channel is not FIFO"
        )
    message_seqs = [m["seq"] for m in rec["messages"]]
    if message_seqs != sorted(message_seqs) or len(set(message_seqs)) != len(message_seqs):
        problems.append(f"{name}: recorded messages out of FIFO order: seqs {message_seqs}")
    recorded = set(message_seqs) | {m["seq"] for m in rec.get("markers", [])}
    expected = set(range(received + 1, sent + 1)) - received_above
    for seq in sorted(recorded - expected):
        if seq in received_above:
            problems.append(f"{name}: recorded seq {seq}, which {dst} had already received before it recorded")
            continue
        problems.append(
            f"{name}: recorded seq {seq}, which is outside ({received}, {sent}]"
            f" — not sent before {src} recorded, or already received before {dst} recorded"
        )
    for seq in sorted(expected - recorded):
        problems.append(
            f"{name}: seq {seq} was sent before {src} recorded and not received before {dst} recorded,"
            " but the channel's recorded state does not hold it"
        )
    return problems


def _clock_problems(by_process: dict[str, RecordedProcess]) -> list[str]:
    problems: list[str] = []
    own = {name: r["clock"].get(name, 0) for name, r in by_process.items()}
    for name, rec in sorted(by_process.items()):
        for other, seen in sorted(rec["clock"].items()):
            if other != name and other in own and seen > own[other]:
                problems.append(
                    f"{name}'s recorded clock has seen {seen} events of {other}, but {other} recorded after"
                    f" only {own[other]}: {name} received a message {other} had not yet sent at its cut"
                )
    return problems


def sound_verdict(verdict: dict[str, Any]) -> bool:
    """A consistent cut that conserves its total (where the workload has one: else None)."""
    return bool(verdict.get("consistent")) and verdict.get("conserved") is not False
