"""Restoring a run from a complete snapshot, pure: the processes as they must be afterwards.

A consistent snapshot is a global state the run could have been in: every process's
recorded state, and the messages recorded in each channel — sent before their sender
recorded, not yet applied by their receiver. Restoring puts the run back there:

* every process gets its recorded workload state, vector clock and seqs;
* channel p→q gets its recorded messages back *in flight*: they become frames in p's
  outbox, to be sent again. They are renumbered ``received_q[p] + 1 …
  received_q[p] + k``, right after the prefix ``q`` had applied, and ``sent_p[q]``
  becomes ``received_q[p] + k``; ``q``'s receiver expects ``received_q[p] + 1`` next.
  So the channel is contiguous again, whatever the snapshot saw of non-FIFO channels
  (``received_above``) or of other snapshots' markers (they are not replayed);
* the new ``epoch`` goes on every process and every replayed frame: every frame still
  on the way from before the restore carries an older epoch and is dropped on arrival,
  so the old and the new numbering can never mix;
* snapshot machines start fresh (no snapshot is running after a restore), watchpoint
  edge memory starts fresh, and the counters go on from the current processes with
  ``restores`` one higher, as do each channel's FIFO counters and mode.

The result is each process's ``SimulatedProcess.to_dict()`` plus ``"outbox"``: the frames to
send once it is stored. Stdlib and the process model only: no I/O.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable

from cluster.core.fifo import ChannelReceiver, ReceiverData
from cluster.core.process import ProcessData, SimulatedProcess
from cluster.core.wire import MessageFrame, RecordedChannel, RecordedProcess, channel_id


class RestoredProcess(ProcessData):
    """A restored process, with the frames it must send before anything else."""

    outbox: list[MessageFrame]  # the recorded messages, renumbered: restore sends no marker


def restore_processes(
    spec_processes: list[str],
    channels: list[tuple[str, str]],
    workload: str,
    epoch: int,
    process_records: Iterable[RecordedProcess],
    channel_records: Iterable[RecordedChannel],
    current: dict[str, ProcessData],
) -> dict[str, RestoredProcess]:
    """Every process of the run as it is after restoring the snapshot with these records."""
    by_process = {r["process"]: r for r in process_records}
    by_channel = {(r["src"], r["dst"]): r for r in channel_records}
    missing = [p for p in spec_processes if p not in by_process]
    missing += [channel_id(src, dst) for src, dst in channels if (src, dst) not in by_channel]
    if missing:
        raise ValueError(f"cannot restore from an incomplete snapshot: nothing recorded for {', '.join(missing)}")

    incoming: dict[str, list[str]] = {name: [] for name in spec_processes}
    outgoing: dict[str, list[str]] = {name: [] for name in spec_processes}
    for src, dst in channels:
        outgoing[src].append(dst)
        incoming[dst].append(src)

    procs = {
        name: _restored(name, incoming[name], outgoing[name], workload, epoch, by_process[name], current.get(name))
        for name in spec_processes
    }
    outbox: dict[str, list[MessageFrame]] = {name: [] for name in spec_processes}
    for src, dst in channels:
        sender, receiver = procs[src], procs[dst]
        base = receiver.applied[src]
        messages = sorted(by_channel[(src, dst)]["messages"], key=lambda m: m["seq"])
        for offset, message in enumerate(messages, start=1):
            outbox[src].append(
                {
                    "kind": "message",
                    "src": src,
                    "dst": dst,
                    "seq": base + offset,
                    "payload": copy.deepcopy(message["payload"]),
                    "clock": dict(by_process[src]["clock"]),
                    "epoch": epoch,
                }
            )
        sender.sent[dst] = base + len(messages)
    return {name: RestoredProcess(**proc.to_dict(), outbox=outbox[name]) for name, proc in procs.items()}


def _restored(
    name: str,
    incoming: list[str],
    outgoing: list[str],
    workload: str,
    epoch: int,
    record: RecordedProcess,
    current: ProcessData | None,
) -> SimulatedProcess:
    proc = SimulatedProcess(name, incoming, outgoing, workload, copy.deepcopy(record["state"]))
    proc.epoch = epoch
    proc.clock = dict(record["clock"])
    proc.sent = {dst: int(record["sent"].get(dst, 0)) for dst in proc.outgoing}
    proc.applied = {src: int(record["received"].get(src, 0)) for src in proc.incoming}
    old_receivers: dict[str, ReceiverData] = {}
    if current is not None:
        proc.counters = {**proc.counters, **current["counters"]}
        old_receivers = current.get("receivers", {})
    proc.counters["restores"] = proc.counters.get("restores", 0) + 1
    for src in proc.incoming:
        old = ChannelReceiver.from_dict(old_receivers[src]) if src in old_receivers else ChannelReceiver()
        proc.receivers[src] = ChannelReceiver(
            last=proc.applied[src],
            duplicates=old.duplicates,
            gaps=old.gaps,
            reorders=old.reorders,
            fifo=old.fifo,
        )
    return proc
