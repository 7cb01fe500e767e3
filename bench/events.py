"""What Celery's task events cost the cluster (``-E``, or Flower's ``enable_events``).

    .venv/bin/python -m bench.events [--rate TOTAL] [--seconds S] [--pairs P]

One run of the bank workload on a complete graph of 8 processes, offered ``TOTAL``
messages per second (below saturation, so both sides carry the same load), on two
workers. Windows with task events on alternate with windows without (A B B A …, so a
drift in the machine's load hits both alike); events are switched with the same
remote control command Flower sends (``enable_events`` / ``disable_events``), and the
run is drained between windows. Figures are ratios of events on to events off, measured
in this run: applied messages per second, and the workers' CPU time per applied message
(less exposed to the other users of the machine).
"""

from __future__ import annotations

import argparse
import time

from bench import runs
from bench.system import BenchSystem
from bench.throughput import SETTLE, Window, _drain, _window


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def measure(system: BenchSystem, total_rate: float, seconds: float, pairs: int) -> dict[str, list[Window]]:
    from celery import current_app

    spec = runs.complete(8)
    rate = total_rate / len(spec["processes"])
    run_id = runs.start(runs.topology(spec), rate=rate)
    windows: dict[str, list[Window]] = {"off": [], "on": []}
    try:
        runs.wait_until_applying(run_id)
        for pair in range(pairs):
            for events in ("off", "on") if pair % 2 == 0 else ("on", "off"):
                switch = current_app.control.enable_events if events == "on" else current_app.control.disable_events
                switch(destination=system.nodenames())
                runs.set_status(run_id, "running")
                time.sleep(SETTLE)
                windows[events].append(_window(system, run_id, rate, seconds))
                _drain(run_id)
    finally:
        current_app.control.disable_events(destination=system.nodenames())
        runs.stop(system, run_id)
    return windows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=200.0, help="messages per second offered (all processes)")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of one window")
    parser.add_argument("--pairs", type=int, default=3, help="pairs of windows (events off, on)")
    args = parser.parse_args()
    with BenchSystem(workers=2) as system:
        windows = measure(system, args.rate, args.seconds, args.pairs)
    off, on = windows["off"], windows["on"]
    applied = _mean([w.applied_per_s for w in on]) / _mean([w.applied_per_s for w in off])
    cpu = _mean([w.cpu_per_msg_ms for w in on]) / _mean([w.cpu_per_msg_ms for w in off])
    print(f"offered {args.rate:g} msg/s, {args.pairs} pairs of {args.seconds:g} s windows, 2 workers")
    print(f"applied msg/s, events on / off:            {applied:.2f}")
    print(f"worker CPU per applied msg, events on / off: {cpu:.2f}")


if __name__ == "__main__":
    main()
