"""The runtime state store: live process state, records in transit, event logs (Redis).

Keys (``{run}`` is the run id):

* ``cutline:runs``               — set of run ids the workers should serve
* ``cutline:run:{run}:meta``     — JSON: workload, rate, params, status, processes with
                                   their channels (what a worker needs to serve a run)
* ``cutline:run:{run}:proc:{p}`` — JSON of ``SimulatedProcess.to_dict()`` plus ``outbox``: the
                                   frames its last step sent (resent after a crash)
* ``cutline:run:{run}:chan:{p}:{q}`` — the channel log: sorted set of the frames sent on
                                   p→q (by seq) that q has not yet applied
* ``cutline:run:{run}:events``   — newest-first list of logged events, capped; each
                                   carries ``id``, the run's event counter at its commit
* ``cutline:run:{run}:event-ids`` — that counter: the id of the newest event logged
* ``cutline:run:{run}:applied``  — hash "p→q" → frames q has applied from p, as its worker
                                   last published them (the credit of flow control)
* ``cutline:run:{run}:flow``     — hash shard → JSON: that shard's offered and achieved
                                   workload rate and the channels holding it back
* ``cutline:run:{run}:retries``  — hash "p→q" → frames retransmitted on a lossy channel
* ``cutline:run:{run}:lost``     — hash "p→q" → transmissions a lossy channel lost
* ``cutline:run:{run}:watch:{w}`` — set while watchpoint ``w`` may not trigger again
                                   (for its cool-down; for good once it fired in mode once)
* ``cutline:run:{run}:restore``  — hash shard → the epoch its worker has let go of
                                   (a restore waits for every shard; see snapshots/recovery.py)
* ``cutline:run:{run}:restoring`` — set while a restore of the run is under way (one at a time)
* ``cutline:run:{run}:stream``   — hash source → the last dashboard frame it sent of the run
                                   (the stream's cursors: snapshots/live/state.py)
* ``cutline:records``            — records on their way to the database
* ``cutline:workers``            — hash "shard/shards" → the live worker's host and expiry
* ``cutline:snapshot-finished``  — pub/sub: the id of each snapshot as it finishes
* ``cutline:cache:*``            — Django's cache, not this class's: the REST API's throttle
                                   counters (config/settings.py ``CACHES``)

One step of one process is committed in one MULTI/EXEC: its new state, its outbox, its
records and its events, so a crash leaves either all of them or none. Its frames are
published only after that, and resent from the outbox if the worker dies before the
broker message that caused the step is acked; receivers drop the duplicates by seq.

"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio as aioredis

RUNS = "cutline:runs"
RECORDS = "cutline:records"
WORKERS = "cutline:workers"  # hash: "shard/shards" → "hostname expires_at"
WORKER_TTL = 5.0
# Pub/sub: the id of every snapshot that has just finished (for the CLI's wait and the pages).
SNAPSHOT_FINISHED = "cutline:snapshot-finished"
CURSOR_TTL = 24 * 3600  # seconds: the cursors of a run nobody publishes for go away


@dataclass(frozen=True)
class StepCommit:
    """What one process's step leaves behind: its new state, outbox, records and events."""

    name: str
    process: dict[str, Any]
    outbox: list[dict[str, Any]]
    records: list[dict[str, Any]]
    events: list[dict[str, Any]]
    # On incoming lossy channels, (src, last seq applied in order, seqs beyond it that
    # arrived): their log entries go at once, so the sender stops resending them (the ack).
    acks: tuple[tuple[str, int, tuple[int, ...]], ...] = ()


def meta_key(run: int) -> str:
    return f"cutline:run:{run}:meta"


def process_key(run: int, name: str) -> str:
    return f"cutline:run:{run}:proc:{name}"


def channel_log_key(run: int, src: str, dst: str) -> str:
    return f"cutline:run:{run}:chan:{src}:{dst}"


def events_key(run: int) -> str:
    return f"cutline:run:{run}:events"


def event_ids_key(run: int) -> str:
    return f"cutline:run:{run}:event-ids"


# Numbers the events and pushes them in one atomic step, so ids follow the log's order
# and every event keeps its id when older ones are trimmed. ARGV[1] is the log's limit,
# the rest the events' JSON objects, each given an "id" field at its front.
LOG_EVENTS = """
local n = #ARGV - 1
local last = redis.call('INCRBY', KEYS[2], n)
for i = 1, n do
  redis.call('LPUSH', KEYS[1], '{"id":' .. (last - n + i) .. ',' .. string.sub(ARGV[i + 1], 2))
end
redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[1]) - 1)
return last
"""


def applied_key(run: int) -> str:
    return f"cutline:run:{run}:applied"


def flow_key(run: int) -> str:
    return f"cutline:run:{run}:flow"


def retries_key(run: int) -> str:
    return f"cutline:run:{run}:retries"


def lost_key(run: int) -> str:
    return f"cutline:run:{run}:lost"


def watch_key(run: int, watchpoint: int) -> str:
    return f"cutline:run:{run}:watch:{watchpoint}"


def cursors_key(run: int) -> str:
    """The dashboard stream's cursors of a run: source → last frame seq (``snapshots/live/state.py``)."""
    return f"cutline:run:{run}:stream"


def restore_lock_key(run: int) -> str:
    return f"cutline:run:{run}:restoring"


def restore_key(run: int) -> str:
    return f"cutline:run:{run}:restore"


class Store:
    def __init__(self, client: redis.Redis, event_limit: int = 20000) -> None:
        self.redis = client
        self.event_limit = event_limit

    @classmethod
    def from_url(cls, url: str, event_limit: int = 20000, timeout: float = 30) -> Store:
        return cls(redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=5), event_limit)

    # -- runs -----------------------------------------------------------------------

    def create_run(self, run: int, meta: dict[str, Any], processes: dict[str, dict[str, Any]]) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.set(meta_key(run), json.dumps(meta))
        for name, data in processes.items():
            pipe.set(process_key(run, name), json.dumps({**data, "outbox": []}))
        pipe.sadd(RUNS, run)
        pipe.execute()

    def run_metas(self, runs: list[int]) -> list[dict[str, Any] | None]:
        return [json.loads(raw) if raw is not None else None for raw in self.redis.mget([meta_key(r) for r in runs])]

    def run_meta(self, run: int) -> dict[str, Any] | None:
        raw = self.redis.get(meta_key(run))
        return json.loads(raw) if raw else None

    def update_run(self, run: int, **changes: Any) -> None:
        """Change a run's status or rate; workers pick it up on their next refresh."""
        # Read-modify-write under WATCH: two changes at once (a watchpoint firing while a
        # person pauses the run) must not undo each other.
        with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(meta_key(run))
                    raw = pipe.get(meta_key(run))
                    if not raw:
                        pipe.reset()
                        return
                    meta = {**json.loads(raw), **changes}
                    pipe.multi()
                    pipe.set(meta_key(run), json.dumps(meta))
                    if meta["status"] == "stopped":
                        pipe.srem(RUNS, run)
                    else:
                        pipe.sadd(RUNS, run)
                    pipe.execute()
                    return
                except redis.WatchError:
                    continue

    def active_runs(self) -> set[int]:
        return {int(r) for r in self.redis.smembers(RUNS)}

    def ping(self) -> None:
        """Raise unless Redis answers (the readiness check)."""
        self.redis.ping()

    # -- workers --------------------------------------------------------------------

    def heartbeat(self, shard: int, shards: int, hostname: str, now: float) -> None:
        self.redis.hset(WORKERS, f"{shard}/{shards}", f"{hostname} {now + WORKER_TTL}")

    def live_workers(self, now: float) -> dict[str, str]:
        """Shards (as "i/N") with a worker that beat within the last few seconds, and its host."""
        live = {}
        for key, value in self.redis.hgetall(WORKERS).items():
            hostname, _, expires = value.decode().rpartition(" ")
            if float(expires) >= now:
                live[key.decode()] = hostname
        return live

    # -- processes ------------------------------------------------------------------

    def load_process(self, run: int, name: str) -> dict[str, Any] | None:
        raw = self.redis.get(process_key(run, name))
        return json.loads(raw) if raw else None

    def load_processes(self, run: int, names: list[str]) -> dict[str, dict[str, Any]]:
        if not names:
            return {}
        raws = self.redis.mget([process_key(run, n) for n in names])
        return {n: json.loads(raw) for n, raw in zip(names, raws, strict=True) if raw}

    def commit_steps(self, run: int, commits: list[StepCommit]) -> None:
        """Persist steps of processes of one run, all or nothing. Each event of the
        commits is given its ``id`` in the run's log (in place: the caller passes them on)."""
        pipe = self.redis.pipeline(transaction=True)
        events: list[str] = []
        sent_at = time.time()
        for c in commits:
            pipe.set(process_key(run, c.name), json.dumps({**c.process, "outbox": c.outbox}))
            for frame in c.outbox:
                # The channel log: every frame until its receiver has applied it.
                entry = json.dumps({"sent_at": sent_at, "frame": frame})
                pipe.zadd(channel_log_key(run, frame["src"], frame["dst"]), {entry: frame["seq"]})
            for src, last, above in c.acks:
                key = channel_log_key(run, src, c.name)
                pipe.zremrangebyscore(key, "-inf", last)
                for seq in above:
                    pipe.zremrangebyscore(key, seq, seq)
            if c.records:
                pipe.rpush(RECORDS, *(json.dumps({**r, "run": run}) for r in c.records))
            events.extend(json.dumps(e) for e in c.events)
        if events:
            self._log_events(pipe, run, events)
        replies = pipe.execute()
        if events:
            first = int(replies[-1]) - len(events) + 1
            for i, event in enumerate(e for c in commits for e in c.events):
                event["id"] = first + i

    def channel_backlog(
        self, run: int, channels: list[tuple[str, str, int]], limit: int
    ) -> list[list[tuple[float, dict[str, Any]]]]:
        """For each ``(src, dst, applied)``: forget the frames the receiver has applied,
        and return the oldest ``limit`` unapplied ones as ``(sent_at, frame)``, by seq."""
        pipe = self.redis.pipeline(transaction=False)
        for src, dst, applied in channels:
            key = channel_log_key(run, src, dst)
            pipe.zremrangebyscore(key, "-inf", applied)
            pipe.zrangebyscore(key, f"({applied}", "+inf", start=0, num=limit)
        out = []
        for raws in pipe.execute()[1::2]:
            entries = [json.loads(raw) for raw in raws]
            out.append([(e["sent_at"], e["frame"]) for e in entries])
        return out

    # -- flow control (cluster/engine/flow.py) --------------------------------------------

    def publish_applied(self, run: int, applied: dict[str, int]) -> None:
        """The receivers' side of the credit: frames applied so far on each channel "p→q"."""
        if applied:
            self.redis.hset(applied_key(run), mapping=applied)

    def applied(self, run: int, channels: list[str]) -> dict[str, int]:
        """What the receivers last published as applied on these channels (absent: nothing yet)."""
        if not channels:
            return {}
        raws = self.redis.hmget(applied_key(run), channels)
        return {c: int(raw) for c, raw in zip(channels, raws, strict=True) if raw is not None}

    def report_flow(self, run: int, shard: int, report: dict[str, Any]) -> None:
        """One shard's offered and achieved workload rates of a run, and what holds it back."""
        self.redis.hset(flow_key(run), str(shard), json.dumps(report))

    def flow_reports(self, run: int) -> list[dict[str, Any]]:
        return [json.loads(raw) for raw in self.redis.hvals(flow_key(run))]

    def channel_head(self, run: int, src: str, dst: str, count: int) -> tuple[int, list[tuple[float, dict[str, Any]]]]:
        """How many frames on src→dst are unacknowledged, and the oldest ``count`` of them."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.zcard(channel_log_key(run, src, dst))
        pipe.zrange(channel_log_key(run, src, dst), 0, count - 1)
        total, raws = pipe.execute()
        entries = [json.loads(raw) for raw in raws]
        return int(total), [(e["sent_at"], e["frame"]) for e in entries]

    def channel_log(self, run: int, src: str, dst: str) -> list[tuple[float, dict[str, Any]]]:
        """The frames on src→dst its receiver has not acknowledged, as (sent_at, frame), by seq."""
        entries = [json.loads(raw) for raw in self.redis.zrange(channel_log_key(run, src, dst), 0, -1)]
        return [(e["sent_at"], e["frame"]) for e in entries]

    # -- faults ---------------------------------------------------------------------

    def count_faults(self, run: int, retries: dict[str, int], lost: dict[str, int]) -> None:
        pipe = self.redis.pipeline(transaction=False)
        for channel, n in retries.items():
            pipe.hincrby(retries_key(run), channel, n)
        for channel, n in lost.items():
            pipe.hincrby(lost_key(run), channel, n)
        pipe.execute()

    def retries(self, run: int) -> dict[str, int]:
        return {k.decode(): int(v) for k, v in self.redis.hgetall(retries_key(run)).items()}

    def lost(self, run: int) -> dict[str, int]:
        return {k.decode(): int(v) for k, v in self.redis.hgetall(lost_key(run)).items()}

    # -- watchpoints ----------------------------------------------------------------

    def claim_watch_hit(self, run: int, watchpoint: int, cooldown_s: float | None) -> bool:
        """True for the one hit that may trigger a snapshot now, across every worker:
        ``None`` means once for good, else once per cool-down."""
        ttl = None if cooldown_s is None else max(1, int(cooldown_s * 1000))
        return bool(self.redis.set(watch_key(run, watchpoint), "1", nx=True, px=ttl))

    def reset_watch(self, run: int, watchpoint: int) -> None:
        self.redis.delete(watch_key(run, watchpoint))

    # -- restores -------------------------------------------------------------------

    def claim_restore(self, run: int, ttl: int) -> bool:
        """One restore of a run at a time: False while another holds the claim."""
        return bool(self.redis.set(restore_lock_key(run), "1", nx=True, ex=ttl))

    def release_restore(self, run: int) -> None:
        self.redis.delete(restore_lock_key(run))

    def let_go(self, run: int, shard: int, epoch: int) -> None:
        """This shard's worker has stopped serving the run for the restore to ``epoch``."""
        self.redis.hset(restore_key(run), str(shard), epoch)

    def let_go_shards(self, run: int, epoch: int) -> set[int]:
        return {int(k) for k, v in self.redis.hgetall(restore_key(run)).items() if int(v) >= epoch}

    def replace_processes(
        self,
        run: int,
        processes: dict[str, dict[str, Any]],
        channels: list[tuple[str, str]],
        meta: dict[str, Any],
        events: list[dict[str, Any]],
    ) -> None:
        """Put every process of a run in a new state at once (a restore): the channel logs
        are emptied and refilled with the frames each process's outbox holds."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(*(channel_log_key(run, s, d) for s, d in channels), restore_key(run))
        sent_at = time.time()
        for name, data in processes.items():
            pipe.set(process_key(run, name), json.dumps(data))
            for frame in data.get("outbox", []):
                entry = json.dumps({"sent_at": sent_at, "frame": frame})
                pipe.zadd(channel_log_key(run, frame["src"], frame["dst"]), {entry: frame["seq"]})
        if events:
            self._log_events(pipe, run, [json.dumps(e) for e in events])
        pipe.set(meta_key(run), json.dumps(meta))
        pipe.execute()

    # -- records --------------------------------------------------------------------

    def pop_records(self, count: int, wait: float) -> list[dict[str, Any]]:
        """Take up to ``count`` records, waiting up to ``wait`` seconds for the first."""
        raws = self.redis.lpop(RECORDS, count)
        if not raws and wait > 0:
            first = self.redis.blpop([RECORDS], timeout=wait)
            if first is None:
                return []
            raws = [first[1], *(self.redis.lpop(RECORDS, count - 1) or [])]
        return [json.loads(raw) for raw in raws or []]

    def pending_records(self) -> int:
        """Records waiting for a recorder to store them (a metric: it grows when storing lags)."""
        return int(self.redis.llen(RECORDS))

    def push_back_records(self, records: list[dict[str, Any]]) -> None:
        """Return records that could not be stored, at the head, for the next attempt."""
        if records:
            self.redis.lpush(RECORDS, *(json.dumps(r) for r in reversed(records)))

    # -- events ---------------------------------------------------------------------

    def _log_events(self, pipe: Any, run: int, events: list[str]) -> None:
        """Queue on ``pipe`` the logging of ``events`` (JSON objects, oldest first)."""
        pipe.eval(LOG_EVENTS, 2, events_key(run), event_ids_key(run), self.event_limit, *events)

    def events(self, run: int, limit: int | None = None) -> list[dict[str, Any]]:
        """The run's logged events, oldest first."""
        end = -1 if limit is None else limit - 1
        return [json.loads(raw) for raw in reversed(self.redis.lrange(events_key(run), 0, end))]

    def delete_run(self, run: int, names: list[str]) -> None:
        self.redis.delete(
            meta_key(run),
            events_key(run),
            event_ids_key(run),
            retries_key(run),
            lost_key(run),
            restore_key(run),
            applied_key(run),
            flow_key(run),
            *(process_key(run, n) for n in names),
        )
        self.redis.srem(RUNS, run)

    # -- the dashboard stream's cursors ---------------------------------------------

    def read_cursors(self, run: int) -> dict[str, int]:
        raw = self.redis.hgetall(cursors_key(run))
        return {(k.decode() if isinstance(k, bytes) else k): int(v) for k, v in raw.items()}

    # -- finished snapshots -----------------------------------------------------------

    def announce_finished(self, snapshot_ids: list[int]) -> None:
        for snapshot_id in snapshot_ids:
            self.redis.publish(SNAPSHOT_FINISHED, snapshot_id)

    def finished_snapshots(self) -> redis.client.PubSub:
        """A subscription to the ids of snapshots as they finish (close it after use)."""
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe(SNAPSHOT_FINISHED)
        return pubsub

    def unapplied_frames(
        self, run: int, channels: list[tuple[str, str, int]], limit: int
    ) -> list[list[dict[str, Any]]]:
        """For each ``(src, dst, applied)``: the oldest frames of the channel's log above
        ``applied``, at most ``limit`` (the log keeps applied frames a while: it is trimmed
        lazily)."""
        pipe = self.redis.pipeline(transaction=False)
        for src, dst, applied in channels:
            pipe.zrangebyscore(channel_log_key(run, src, dst), f"({applied}", "+inf", start=0, num=limit)
        return [[json.loads(raw)["frame"] for raw in raws] for raws in pipe.execute()]


class CursorWriter:
    """The dashboard publisher's writes of its stream cursors, from its own event loop."""

    def __init__(self, url: str) -> None:
        self.client = aioredis.Redis.from_url(url, socket_timeout=10)

    async def write(self, source: str, cursors: list[tuple[int, int]]) -> None:
        """Set ``source``'s cursor of each ``(run, seq)``, in one round trip."""
        pipe = self.client.pipeline(transaction=False)
        for run, seq in cursors:
            pipe.hset(cursors_key(run), source, seq)
            pipe.expire(cursors_key(run), CURSOR_TTL)
        await pipe.execute()

    async def close(self) -> None:
        await self.client.aclose()
