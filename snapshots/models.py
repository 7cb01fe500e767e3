"""What Cutline keeps: topologies, runs on them, and the snapshots taken of those runs.

The database is the source of truth for everything a person looks back on. The live
state of a running process lives in the runtime state store (Redis, see
``cluster/store.py``); what a snapshot records is copied here as it arrives.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models


class Topology(models.Model):
    WORKLOADS = [("bank", "bank"), ("token", "token")]

    name = models.CharField(max_length=64, unique=True)
    description = models.TextField(blank=True)
    workload = models.CharField(
        max_length=16, choices=WORKLOADS, default="bank", help_text="The workload its initial states are meant for."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "topologies"

    def __str__(self) -> str:
        return self.name

    def to_dict(self) -> dict[str, Any]:
        """The topology JSON the CLI, the admin and the API exchange."""
        key = "tokens" if self.workload == "token" else "balance"
        processes = list(self.processes.order_by("position", "id"))
        return {
            "name": self.name,
            "workload": self.workload,
            "processes": [{"name": p.name, key: p.initial_value} for p in processes],
            "channels": [[c.src.name, c.dst.name] for c in self.channels.select_related("src", "dst").order_by("id")],
        }


class Process(models.Model):
    topology = models.ForeignKey(Topology, on_delete=models.CASCADE, related_name="processes")
    name = models.CharField(max_length=64)
    position = models.PositiveIntegerField(default=0)
    initial_value = models.IntegerField(default=100, help_text="Starting balance (bank) or tokens held (token).")

    class Meta:
        ordering = ["topology", "position", "id"]
        constraints = [models.UniqueConstraint(fields=["topology", "name"], name="unique_process_name")]
        verbose_name_plural = "processes"

    def __str__(self) -> str:
        return self.name


class Channel(models.Model):
    """A directed FIFO channel src→dst."""

    topology = models.ForeignKey(Topology, on_delete=models.CASCADE, related_name="channels")
    src = models.ForeignKey(Process, on_delete=models.CASCADE, related_name="outgoing")
    dst = models.ForeignKey(Process, on_delete=models.CASCADE, related_name="incoming")

    class Meta:
        ordering = ["topology", "id"]
        constraints = [models.UniqueConstraint(fields=["topology", "src", "dst"], name="unique_channel")]

    def __str__(self) -> str:
        return f"{self.src.name}→{self.dst.name}"


class Run(models.Model):
    """A topology set running on the cluster with one workload."""

    class Status(models.TextChoices):
        RUNNING = "running"
        PAUSED = "paused"
        STOPPED = "stopped"

    topology = models.ForeignKey(Topology, on_delete=models.PROTECT, related_name="runs")
    workload = models.CharField(max_length=16, choices=Topology.WORKLOADS)
    rate = models.FloatField(help_text="Workload steps per second per process.")
    params = models.JSONField(default=dict, blank=True)
    seed = models.BigIntegerField(default=0)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    # The topology as it was when the run started: editing the topology later never
    # changes a run or the meaning of its snapshots.
    spec = models.JSONField()
    expected_total = models.BigIntegerField(help_text="The workload's conserved total.")
    created_at = models.DateTimeField(auto_now_add=True)
    stopped_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        ordering = ["-id"]
        permissions = [("control_run", "Can start, pause and stop runs and take snapshots")]

    def __str__(self) -> str:
        return f"run {self.pk} ({self.topology.name}, {self.workload})"

    @property
    def process_names(self) -> list[str]:
        return [p["name"] for p in self.spec["processes"]]

    @property
    def channel_pairs(self) -> list[tuple[str, str]]:
        return [(s, d) for s, d in self.spec["channels"]]


class Snapshot(models.Model):
    class Status(models.TextChoices):
        RUNNING = "running"
        COMPLETE = "complete"
        FAILED = "failed"

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="snapshots")
    initiator = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    reason = models.TextField(null=True, blank=True)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    processes_total = models.PositiveIntegerField()
    channels_total = models.PositiveIntegerField()
    processes_reported = models.PositiveIntegerField(default=0)
    channels_reported = models.PositiveIntegerField(default=0)
    verdict = models.JSONField(null=True, blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["run", "status"])]

    def __str__(self) -> str:
        return f"snapshot {self.pk} of run {self.run_id} ({self.status})"

    @property
    def duration(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()

    def to_dict(self) -> dict[str, Any]:
        """The export shape: the CLI's ``--json`` and the REST API serve exactly this."""
        return {
            "id": self.pk,
            "run": self.run_id,
            "initiator": self.initiator,
            "status": self.status,
            "reason": self.reason,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "reported": {
                "processes": self.processes_reported,
                "processes_total": self.processes_total,
                "channels": self.channels_reported,
                "channels_total": self.channels_total,
            },
            "processes": [r.to_dict() for r in self.process_records.order_by("id")],
            "channels": [r.to_dict() for r in self.channel_records.order_by("id")],
            "verdict": self.verdict,
        }


class ProcessRecord(models.Model):
    """One process's recorded local state in one snapshot (self-describing, see verdict.py)."""

    snapshot = models.ForeignKey(Snapshot, on_delete=models.CASCADE, related_name="process_records")
    process = models.CharField(max_length=64)
    state = models.JSONField()
    sent = models.JSONField(help_text="Last seq sent on each outgoing channel, by destination.")
    received = models.JSONField(help_text="Last seq applied from each incoming channel, by source.")
    clock = models.JSONField(help_text="Vector clock (application events; missing entries are 0).")
    recorded_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["snapshot", "process"], name="unique_process_record")]

    def to_dict(self) -> dict[str, Any]:
        return {
            "process": self.process,
            "state": self.state,
            "sent": self.sent,
            "received": self.received,
            "clock": self.clock,
        }


class ChannelRecord(models.Model):
    """One channel's recorded state in one snapshot: the messages in flight across the cut."""

    snapshot = models.ForeignKey(Snapshot, on_delete=models.CASCADE, related_name="channel_records")
    src = models.CharField(max_length=64)
    dst = models.CharField(max_length=64)
    messages = models.JSONField(help_text="[{seq, payload}] in FIFO order.")
    markers = models.JSONField(default=list, help_text="[{seq, snapshot}]: other snapshots' markers seen.")
    closed_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["snapshot", "src", "dst"], name="unique_channel_record")]

    def to_dict(self) -> dict[str, Any]:
        return {"src": self.src, "dst": self.dst, "messages": self.messages, "markers": self.markers}
