"""WebSocket fan-out: N dashboards watching one busy run.

For N = 10, 100 and 200 WebSocket clients on one run, at the highest message rate the
cluster sustains on this machine, it measures:

* **latency** from a process's state change to the frame that carries it reaching a
  client: the frame's ``since`` is the commit time of the oldest step it coalesces, so
  this is the worst case within each frame; p50, p95 and max over every frame every
  client received. ``transport`` is the part from the frame's publication (``t``);
* **frames per second per client** (the publisher's budget is 20 per run) and frames
  **lost** (gaps in a source's sequence numbers, which make a page reload);
* **CPU** of Daphne, of the workers together and of Redis, in % of one core.

Everything runs here and stops by itself: a bundled Redis, the workers and Daphne, as
``make run`` starts them but in a temporary var/ (a developer's running system is never
touched), and the clients, all in one asyncio loop of this process, on 127.0.0.1 only.
``--layer both`` repeats it all on ``RedisChannelLayer`` and ``RedisPubSubChannelLayer``,
and ``--publish-cost`` times one ``group_send`` the ways a worker could make it.

    python -m bench.ws_bench [--clients 10,100,200] [--seconds 10] [--layer pubsub|core|both]
                             [--rate auto|STEPS_PER_S] [--topology complete-4] [--workers 2]

:func:`run` returns the rows it prints, for ``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent
CLIENT_COUNTS = (10, 100, 200)
CALIBRATION_RATES = (25, 50, 100, 150, 200, 300, 400, 600)  # workload steps per second per process
CALIBRATION_SECONDS = 4.0
CONNECT_CONCURRENCY = 20
READY_TIMEOUT = 60.0


# --- the system under test ------------------------------------------------------------------


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class System:
    """Redis, the workers and Daphne, started as ``make run`` does, in a temporary var/."""

    def __init__(self, layer: str, workers: int) -> None:
        self.layer = layer
        self.workers_n = workers
        self.var_dir = Path(tempfile.mkdtemp(prefix="cutline-wsbench-"))
        self.children: list[Any] = []
        self.redis: Any = None
        self.port = 0

    def __enter__(self) -> System:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _start(self) -> None:
        import subprocess

        from cluster.devserver import redis_server
        from cluster.devserver.children import Child, free_port, port_open, wait_until
        from cluster.devserver.launcher import start_workers, wait_for_workers

        self.redis = redis_server.start(self.var_dir / "redis")
        self.env = {
            **os.environ,
            "CUTLINE_VAR_DIR": str(self.var_dir),
            "REDIS_URL": self.redis.url,
            "CELERY_BROKER_URL": self.redis.url,
            "CUTLINE_SHARDS": str(self.workers_n),
            "CUTLINE_PUBLIC_READ": "1",  # the clients watch without logging in
            "CUTLINE_BENCH_LAYER": self.layer,
            "DJANGO_SETTINGS_MODULE": "bench.ws_settings",
            "LOG_LEVEL": "ERROR",
        }
        manage = [sys.executable, str(BASE_DIR / "manage.py")]
        for command in (["migrate", "--verbosity", "0"], ["loaddemo"]):
            subprocess.run([*manage, *command], env=self.env, cwd=BASE_DIR, check=True, stdout=subprocess.DEVNULL)
        _setup_django(self.env)
        self.workers = start_workers(self.workers_n, self.env, log_dir=self.var_dir / "logs")
        self.children.extend(self.workers)
        self.port = free_port()
        self.daphne = Child.start(
            "daphne",
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port), "config.asgi:application"],
            env=self.env,
            cwd=BASE_DIR,
            log_path=self.var_dir / "logs" / "daphne.log",
        )
        self.children.append(self.daphne)
        wait_until(
            lambda: port_open("127.0.0.1", self.port),
            what="Daphne",
            timeout=READY_TIMEOUT,
            children=self.children,
        )
        wait_for_workers(self.workers, self.redis.url)

    def stop(self) -> None:
        import shutil

        from cluster.devserver.children import stop_all

        stop_all(self.children)
        self.children = []
        if self.redis is not None:
            self.redis.stop()
            self.redis = None
        shutil.rmtree(self.var_dir, ignore_errors=True)

    def cpu(self) -> dict[str, float]:
        return {
            "clients": _cpu_seconds(os.getpid()),
            "daphne": _cpu_seconds(self.daphne.pid),
            "workers": sum(_cpu_seconds(w.pid) for w in self.workers),
            "redis": _cpu_seconds(self.redis.pid),
        }

    def socket_url(self, run_id: int) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/runs/{run_id}/"


def _setup_django(env: dict[str, str]) -> None:
    """This process uses the services (start a run, read its counters) like the CLI.

    Django is set up once per process, for one system: each layer runs in a process of
    its own (see :func:`run`).
    """
    import django

    os.environ.update({k: env[k] for k in ("CUTLINE_VAR_DIR", "REDIS_URL", "CELERY_BROKER_URL", "CUTLINE_SHARDS")})
    os.environ.update({"DJANGO_SETTINGS_MODULE": "bench.ws_settings", "CUTLINE_PUBLIC_READ": "1"})
    django.setup()


def _start_run(topology: str, rate: float) -> int:
    from snapshots import services

    return services.start_run(services.get_topology(topology), rate=rate).pk


def _stop_run(run_id: int) -> None:
    from snapshots import services

    services.set_run_status(services.get_run(run_id), "stopped")


def _counters(run_id: int) -> dict[str, int]:
    from snapshots import services

    status = services.run_status(services.get_run(run_id))
    return {k: status[k] for k in ("messages_sent", "messages_applied", "messages_in_flight")}


# --- calibration: the highest rate the cluster sustains ------------------------------------


def calibrate(topology: str, rates: tuple[int, ...] = CALIBRATION_RATES) -> tuple[float, list[dict[str, Any]]]:
    """Raise the rate until the cluster falls behind; return the last one it kept up with.

    Kept up means: it sent at least 90% of what the rate asks (the workers' loops were
    not starved of time for workload steps) and the messages in flight at the end are
    under a quarter second's worth (they are not piling up in the queues).
    """
    trials: list[dict[str, Any]] = []
    best = float(rates[0])
    for rate in rates:
        run_id = _start_run(topology, rate)
        time.sleep(1.0)  # let the run reach its pace before measuring it
        before, t0 = _counters(run_id), time.monotonic()
        time.sleep(CALIBRATION_SECONDS)
        after, t1 = _counters(run_id), time.monotonic()
        _stop_run(run_id)
        processes = len(_run_processes(run_id))
        sent = (after["messages_sent"] - before["messages_sent"]) / (t1 - t0)
        applied = (after["messages_applied"] - before["messages_applied"]) / (t1 - t0)
        backlog = after["messages_in_flight"]
        kept_up = sent >= 0.9 * rate * processes and backlog <= max(50.0, 0.25 * sent)
        trials.append(
            {"rate": rate, "sent_per_s": sent, "applied_per_s": applied, "in_flight": backlog, "kept_up": kept_up}
        )
        if not kept_up:
            break
        best = float(rate)
    return best, trials


def _run_processes(run_id: int) -> list[str]:
    from snapshots import services

    return services.get_run(run_id).process_names


# --- the clients ----------------------------------------------------------------------------


@dataclass
class ClientStats:
    frames: int = 0
    lost: int = 0
    bytes: int = 0
    latency: list[float] = field(default_factory=list)
    transport: list[float] = field(default_factory=list)
    seq: dict[str, int] = field(default_factory=dict)


# A delta's header, as the publisher writes it (snapshots/live/publisher.py): reading only this
# keeps 200 clients in one process cheap enough not to crowd Daphne off the CPU.
DELTA_HEADER = re.compile(
    r'^\{"type":"delta","run":\d+,"source":"(?P<source>[^"]+)","seq":(?P<seq>\d+),'
    r'"t":(?P<t>[0-9.e+-]+),"since":(?P<since>[0-9.e+-]+)'
)


async def _watch(url: str, origin: str, stats: ClientStats, ready: asyncio.Event, window: list[float]) -> None:
    """One dashboard: read the state, then every frame; note those inside the window."""
    import websockets

    async with websockets.connect(url, origin=origin, max_size=None, open_timeout=READY_TIMEOUT) as ws:  # type: ignore[arg-type]
        state = json.loads(await ws.recv())
        stats.seq.update(state["cursors"])
        ready.set()
        async for text in ws:
            now = time.time()
            header = DELTA_HEADER.match(text)  # type: ignore[arg-type]
            if header is None:
                continue  # a heartbeat
            source, seq = header["source"], int(header["seq"])
            last = stats.seq.get(source)
            if last is not None and seq > last + 1:
                stats.lost += seq - last - 1
            stats.seq[source] = seq
            if window and window[0] <= now <= window[1]:
                stats.frames += 1
                stats.bytes += len(text)
                stats.latency.append(now - float(header["since"]))
                stats.transport.append(now - float(header["t"]))


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def _measure(system: System, run_id: int, clients: int, seconds: float) -> dict[str, Any]:
    url, origin = system.socket_url(run_id), f"http://127.0.0.1:{system.port}"
    stats = [ClientStats() for _ in range(clients)]
    readies = [asyncio.Event() for _ in range(clients)]
    window: list[float] = []
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def one(i: int) -> None:
        async with gate:
            task = asyncio.create_task(_watch(url, origin, stats[i], readies[i], window))
            await asyncio.wait([task, asyncio.create_task(readies[i].wait())], return_when=asyncio.FIRST_COMPLETED)
            if task.done():
                task.result()  # it failed before it was ready: say why
        await task

    tasks = [asyncio.create_task(one(i)) for i in range(clients)]
    try:
        await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), READY_TIMEOUT)
        before, cpu0, t0 = await asyncio.to_thread(_counters, run_id), system.cpu(), time.time()
        window.extend([t0, t0 + seconds])
        await asyncio.sleep(seconds)
        after, cpu1, t1 = await asyncio.to_thread(_counters, run_id), system.cpu(), time.time()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    elapsed = t1 - t0
    latency = [x for s in stats for x in s.latency]
    transport = [x for s in stats for x in s.transport]
    frames = sum(s.frames for s in stats)
    return {
        "layer": system.layer,
        "clients": clients,
        "seconds": round(elapsed, 2),
        "messages_per_s": round((after["messages_applied"] - before["messages_applied"]) / elapsed),
        "frames_per_s_per_client": round(frames / clients / elapsed, 1),
        "latency_p50_ms": round(1000 * _percentile(latency, 0.50), 1),
        "latency_p95_ms": round(1000 * _percentile(latency, 0.95), 1),
        "latency_max_ms": round(1000 * max(latency, default=float("nan")), 1),
        "transport_p95_ms": round(1000 * _percentile(transport, 0.95), 1),
        "lost_frames": sum(s.lost for s in stats),
        "bytes_per_frame": round(sum(s.bytes for s in stats) / frames) if frames else 0,
        "daphne_cpu_pct": round(100 * (cpu1["daphne"] - cpu0["daphne"]) / elapsed),
        "workers_cpu_pct": round(100 * (cpu1["workers"] - cpu0["workers"]) / elapsed),
        "redis_cpu_pct": round(100 * (cpu1["redis"] - cpu0["redis"]) / elapsed),
        "clients_cpu_pct": round(100 * (cpu1["clients"] - cpu0["clients"]) / elapsed),
        # The machine's 1-minute load average at the end: other work on its 2 cores
        # (other test runs) takes CPU from Daphne, and shows here.
        "load": round(os.getloadavg()[0], 1),
    }


# --- publishing cost: why the publisher keeps its own event loop ------------------------------


def publish_cost(redis_url: str, calls: int = 300) -> list[dict[str, Any]]:
    """Milliseconds per ``group_send`` of a typical frame, per layer and per way of calling it."""
    from asgiref.sync import async_to_sync
    from channels_redis.core import RedisChannelLayer
    from channels_redis.pubsub import RedisPubSubChannelLayer

    message = {"type": "run.frame", "text": "x" * 1200}
    rows = []
    for name, cls in (("pubsub", RedisPubSubChannelLayer), ("core", RedisChannelLayer)):
        layer = cls(hosts=[redis_url])
        timings = []
        for _ in range(calls):
            start = time.perf_counter()
            async_to_sync(layer.group_send)("run.0", message)
            timings.append(time.perf_counter() - start)
        rows.append({"layer": name, "how": "async_to_sync per call", "ms": 1000 * statistics.median(timings)})

        async def on_one_loop(layer: Any = layer) -> list[float]:
            out = []
            for _ in range(calls):
                start = time.perf_counter()
                await layer.group_send("run.0", message)
                out.append(time.perf_counter() - start)
            return out

        loop = asyncio.new_event_loop()
        try:
            timings = loop.run_until_complete(on_one_loop())
        finally:
            loop.close()
        rows.append({"layer": name, "how": "one event loop (the publisher's)", "ms": 1000 * statistics.median(timings)})
    return rows


# --- the whole benchmark ----------------------------------------------------------------------


COLUMNS = [
    ("layer", "layer", "{}"),
    ("clients", "clients", "{}"),
    ("messages_per_s", "msgs/s", "{}"),
    ("frames_per_s_per_client", "frames/s/client", "{}"),
    ("latency_p50_ms", "p50 ms", "{}"),
    ("latency_p95_ms", "p95 ms", "{}"),
    ("latency_max_ms", "max ms", "{}"),
    ("transport_p95_ms", "transport p95 ms", "{}"),
    ("lost_frames", "lost", "{}"),
    ("bytes_per_frame", "B/frame", "{}"),
    ("daphne_cpu_pct", "Daphne CPU %", "{}"),
    ("workers_cpu_pct", "workers CPU %", "{}"),
    ("redis_cpu_pct", "Redis CPU %", "{}"),
    ("clients_cpu_pct", "clients CPU %", "{}"),
    ("load", "load avg", "{}"),
]


def table(rows: list[dict[str, Any]], columns: list[tuple[str, str, str]] = COLUMNS) -> str:
    cells = [[title for _, title, _ in columns]] + [[fmt.format(r[key]) for key, _, fmt in columns] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    lines = [" | ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


@contextlib.contextmanager
def _quiet_logs() -> Iterator[None]:
    import logging

    previous = logging.root.level
    logging.root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logging.root.setLevel(previous)


def run(
    clients: tuple[int, ...] = CLIENT_COUNTS,
    seconds: float = 10.0,
    layers: tuple[str, ...] = ("pubsub",),
    rate: float | None = None,
    topology: str = "complete-4",
    workers: int = 2,
    say: Any = print,
) -> list[dict[str, Any]]:
    """Run the benchmark; print progress and the table with ``say``; return the rows.

    Each layer runs in a fresh process (Django is set up once per process), this one
    if there is only one.
    """
    if len(layers) > 1:
        # The first layer finds the rate (unless given); the others are measured at it.
        rows = _in_subprocess(layers[0], clients, seconds, rate, topology, workers)
        rate = rows[0]["rate_per_process"]
        for layer in layers[1:]:
            rows += _in_subprocess(layer, clients, seconds, rate, topology, workers)
    else:
        rows = _run_layer(layers[0], clients, seconds, rate, topology, workers, say)
    say("")
    say(table(rows))
    return rows


def _in_subprocess(
    layer: str, clients: tuple[int, ...], seconds: float, rate: float | None, topology: str, workers: int
) -> list[dict[str, Any]]:
    import subprocess

    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        argv = [
            sys.executable, "-m", "bench.ws_bench", "--layer", layer, "--topology", topology,
            "--clients", ",".join(map(str, clients)), "--seconds", str(seconds), "--workers", str(workers),
            "--rate", "auto" if rate is None else str(rate), "--rows-out", out.name,
        ]  # fmt: skip
        subprocess.run(argv, cwd=BASE_DIR, check=True)
        return list(json.loads(Path(out.name).read_text()))


def _run_layer(
    layer: str, clients: tuple[int, ...], seconds: float, rate: float | None, topology: str, workers: int, say: Any
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with System(layer, workers) as system, _quiet_logs():
        chosen = rate
        if chosen is None:
            chosen, trials = calibrate(topology)
            for t in trials:
                say(
                    f"[{layer}] calibrating: {t['rate']} steps/s per process → {t['sent_per_s']:.0f} sent/s,"
                    f" {t['applied_per_s']:.0f} applied/s, {t['in_flight']} in flight"
                    f" ({'kept up' if t['kept_up'] else 'fell behind'})"
                )
        say(f"[{layer}] {topology} at {chosen:g} steps/s per process, {workers} workers")
        for n in clients:
            run_id = _start_run(topology, chosen)
            try:
                time.sleep(1.0)  # the run reaches its pace
                row = asyncio.run(_measure(system, run_id, n, seconds))
            finally:
                _stop_run(run_id)
            row["rate_per_process"] = chosen
            rows.append(row)
            say(f"[{layer}] {n} clients: p95 {row['latency_p95_ms']} ms, {row['frames_per_s_per_client']} frames/s")
    return rows


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", default=",".join(map(str, CLIENT_COUNTS)), help="comma-separated client counts")
    parser.add_argument("--seconds", type=float, default=10.0, help="measuring time per client count")
    parser.add_argument("--layer", choices=["pubsub", "core", "both"], default="pubsub")
    parser.add_argument("--rate", default="auto", help="steps/s per process, or auto (the highest sustained)")
    parser.add_argument("--topology", default="complete-4")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--publish-cost", action="store_true", help="only time group_send (needs no workers)")
    parser.add_argument("--json", action="store_true", help="also print the rows as JSON")
    parser.add_argument("--rows-out", help=argparse.SUPPRESS)  # where a per-layer subprocess leaves its rows
    args = parser.parse_args(argv)
    if args.publish_cost:
        from cluster.devserver import redis_server

        with redis_server.start() as server:
            rows = publish_cost(server.url)
        print(table(rows, [("layer", "layer", "{}"), ("how", "how", "{}"), ("ms", "ms per group_send", "{:.2f}")]))
        return rows
    rows = run(
        clients=tuple(int(n) for n in args.clients.split(",")),
        seconds=args.seconds,
        layers=("pubsub", "core") if args.layer == "both" else (args.layer,),
        rate=None if args.rate == "auto" else float(args.rate),
        topology=args.topology,
        workers=args.workers,
    )
    if args.rows_out:
        Path(args.rows_out).write_text(json.dumps(rows))
    if args.json:
        print(json.dumps(rows, indent=2))
    return rows


if __name__ == "__main__":
    main()
