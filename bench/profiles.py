"""How much each section measures: the full benchmark and a quick smoke run."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    name: str
    rounds: int
    noops_per_worker: int
    relay_chains: int  # per worker
    relay_hops: int
    throughput_processes: int
    window_seconds: float
    drain_seconds: float  # backlog to build, in seconds of saturated throughput
    hop_samples: int
    latency_seconds: float
    sizes: tuple[int, ...]
    snapshots_per_size: dict[int, int]
    snapshot_load: float  # background messages per second, whole run
    overhead_seconds: float
    overhead_pairs: int

    def with_rounds(self, rounds: int) -> Profile:
        return dataclasses.replace(self, rounds=rounds)


FULL = Profile(
    name="full",
    rounds=2,
    noops_per_worker=3000,
    relay_chains=10,
    relay_hops=100,
    throughput_processes=10,
    window_seconds=2.5,
    drain_seconds=3.0,
    hop_samples=600,
    latency_seconds=8.0,
    sizes=(10, 100, 1000),
    snapshots_per_size={10: 10, 100: 6, 1000: 3},
    snapshot_load=100.0,
    overhead_seconds=3.0,
    overhead_pairs=4,
)

QUICK = Profile(
    name="quick",
    rounds=1,
    noops_per_worker=1500,
    relay_chains=5,
    relay_hops=40,
    throughput_processes=10,
    window_seconds=1.5,
    drain_seconds=1.5,
    hop_samples=200,
    latency_seconds=3.0,
    sizes=(10, 100),
    snapshots_per_size={10: 3, 100: 2},
    snapshot_load=100.0,
    overhead_seconds=2.0,
    overhead_pairs=1,
)
