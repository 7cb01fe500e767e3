"""What Cutline keeps: topologies, runs on them, and the snapshots taken of those runs.

The database is the source of truth for everything a person looks back on. The live
state of a running process lives in the runtime state store (Redis, see
``cluster/engine/store.py``); what a snapshot records is copied here as it arrives.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.db.models.functions import Coalesce

from cluster.core.topology import shown_name
from cluster.core.verdict import sound_verdict
from cluster.core.wire import ALGORITHM_LABELS, CHANDY_LAMPORT, channel_id
from cluster.core.workloads import get_workload

# The choices of a snapshot's (and a watchpoint's) algorithm: name and label.
ALGORITHM_CHOICES = list(ALGORITHM_LABELS.items())


class TopologyQuerySet(models.QuerySet["Topology"]):
    def with_counts(self) -> TopologyQuerySet:
        """Each topology with ``process_count`` and ``channel_count``.

        One subquery per count: annotating ``Count("processes")`` and ``Count("channels")``
        together joins every process row with every channel row of a topology
        (processes × channels rows: a 5,000-process ring made the runs page take 75 s).
        """
        processes = (
            Process.objects.filter(topology=models.OuterRef("pk"))
            .order_by()
            .values("topology")
            .annotate(n=models.Count("pk"))
            .values("n")
        )
        channels = (
            Channel.objects.filter(topology=models.OuterRef("pk"))
            .order_by()
            .values("topology")
            .annotate(n=models.Count("pk"))
            .values("n")
        )
        return self.annotate(
            process_count=Coalesce(models.Subquery(processes), 0),
            channel_count=Coalesce(models.Subquery(channels), 0),
        )


class Topology(models.Model):
    WORKLOADS = [("bank", "bank"), ("token", "token"), ("diffusion", "diffusion"), ("philosophers", "philosophers")]

    name = models.CharField(max_length=64, unique=True)
    description = models.TextField(blank=True)
    workload = models.CharField(
        max_length=16, choices=WORKLOADS, default="bank", help_text="The workload its initial states are meant for."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TopologyQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "topologies"

    def __str__(self) -> str:
        return shown_name(self.name)  # a name stored before the rule, escaped

    def to_dict(self) -> dict[str, Any]:
        """The topology JSON the CLI, the admin and the API exchange."""
        key = get_workload(self.workload).value_key
        processes = list(self.processes.order_by("position", "id"))
        return {
            "name": self.name,
            "workload": self.workload,
            "processes": [{"name": p.name, key: p.initial_value} for p in processes],
            "channels": [c.to_list() for c in self.channels.select_related("src", "dst").order_by("id")],
        }


class Process(models.Model):
    topology = models.ForeignKey(Topology, on_delete=models.CASCADE, related_name="processes")
    name = models.CharField(max_length=64)
    position = models.PositiveIntegerField(default=0)
    initial_value = models.IntegerField(
        default=100,
        help_text="Starting balance (bank), tokens (token), jobs (diffusion) or forks (philosophers) held.",
    )

    class Meta:
        ordering = ["topology", "position", "id"]
        constraints = [models.UniqueConstraint(fields=["topology", "name"], name="unique_process_name")]
        verbose_name_plural = "processes"

    def __str__(self) -> str:
        return self.name


class Channel(models.Model):
    """A directed channel src→dst: reliable and FIFO unless its fault settings say otherwise.

    The fault settings are the defaults a run starts with; a run's own copy
    (``Run.faults``) can then be changed while it runs.
    """

    topology = models.ForeignKey(Topology, on_delete=models.CASCADE, related_name="channels")
    src = models.ForeignKey(Process, on_delete=models.CASCADE, related_name="outgoing")
    dst = models.ForeignKey(Process, on_delete=models.CASCADE, related_name="incoming")
    delay_ms = models.PositiveIntegerField(default=0, help_text="Extra delay of every frame, in milliseconds.")
    reorder = models.BooleanField(
        default=False, help_text="Deliver out of order (non-FIFO): frames overtake each other."
    )
    loss = models.FloatField(
        default=0.0, help_text="Probability that one transmission is lost (0–0.9); the sender retransmits."
    )

    class Meta:
        ordering = ["topology", "id"]
        constraints = [models.UniqueConstraint(fields=["topology", "src", "dst"], name="unique_channel")]

    def __str__(self) -> str:
        return channel_id(self.src.name, self.dst.name)

    def faults(self) -> dict[str, Any]:
        """The fault settings that differ from a plain channel (empty for a plain one)."""
        faults: dict[str, Any] = {}
        if self.delay_ms:
            faults["delay_ms"] = self.delay_ms
        if self.reorder:
            faults["reorder"] = True
        if self.loss:
            faults["loss"] = self.loss
        return faults

    def to_list(self) -> list[Any]:
        faults = self.faults()
        return [self.src.name, self.dst.name, faults] if faults else [self.src.name, self.dst.name]


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
    expected_total = models.BigIntegerField(
        null=True, blank=True, help_text="The workload's conserved total (none for a workload without one)."
    )
    faults = models.JSONField(
        default=dict, blank=True, help_text='Channel faults now in force, by "p→q": {delay_ms, reorder, loss}.'
    )
    epoch = models.PositiveIntegerField(default=0, help_text="How many times the run was restored.")
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
        return [(c[0], c[1]) for c in self.spec["channels"]]


class Watchpoint(models.Model):
    """A condition at one process (or any) that makes the process snapshot itself when it holds."""

    class Mode(models.TextChoices):
        ONCE = "once"
        EVERY = "every"

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="watchpoints")
    process = models.CharField(max_length=64, blank=True, help_text="The process it watches; blank: every process.")
    condition = models.CharField(max_length=200, help_text='e.g. "balance < 10" or "src == \'p1\' and msg.amount > 50"')
    kind = models.CharField(max_length=8, editable=False, help_text="state or event (from the condition)")
    mode = models.CharField(max_length=8, choices=Mode.choices, default=Mode.ONCE)
    cooldown_s = models.FloatField(default=5.0, help_text="With mode every: seconds between two triggered snapshots.")
    algorithm = models.CharField(max_length=16, choices=ALGORITHM_CHOICES, default=CHANDY_LAMPORT)
    enabled = models.BooleanField(default=True)
    hits = models.PositiveIntegerField(default=0)
    last_hit_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"watchpoint {self.pk}: {self.process or 'any process'}: {self.condition}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.pk,
            "run": self.run_id,
            "process": self.process or None,
            "condition": self.condition,
            "kind": self.kind,
            "mode": self.mode,
            "cooldown_s": self.cooldown_s,
            "algorithm": self.algorithm,
            "enabled": self.enabled,
            "hits": self.hits,
            "last_hit_at": self.last_hit_at.isoformat() if self.last_hit_at else None,
        }


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
    algorithm = models.CharField(max_length=16, choices=ALGORITHM_CHOICES, default=CHANDY_LAMPORT)
    properties = models.JSONField(
        null=True, blank=True, help_text="Stable properties detected in the recorded state (conservation, …)."
    )
    watchpoint = models.ForeignKey(
        Watchpoint, null=True, blank=True, on_delete=models.SET_NULL, related_name="snapshots"
    )
    trigger = models.TextField(blank=True, help_text="What the watchpoint saw when it triggered this snapshot.")
    epoch = models.PositiveIntegerField(default=0, help_text="The run's epoch (restores so far) when it started.")
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

    @property
    def reported(self) -> dict[str, int]:
        """How many processes and channels have reported, of how many: every shape of a
        snapshot (the export here, the history lines in ``presenter.py``) shows this."""
        return {
            "processes": self.processes_reported,
            "processes_total": self.processes_total,
            "channels": self.channels_reported,
            "channels_total": self.channels_total,
        }

    @property
    def is_sound(self) -> bool:
        """Complete, with a sound verdict (a consistent cut that conserves its total)."""
        return self.status == Snapshot.Status.COMPLETE and sound_verdict(self.verdict or {})


class ProcessRecord(models.Model):
    """One process's recorded local state in one snapshot (self-describing, see verdict.py)."""

    snapshot = models.ForeignKey(Snapshot, on_delete=models.CASCADE, related_name="process_records")
    process = models.CharField(max_length=64)
    state = models.JSONField()
    sent = models.JSONField(help_text="Last seq sent on each outgoing channel, by destination.")
    received = models.JSONField(help_text="Last seq applied from each incoming channel, by source.")
    received_above = models.JSONField(
        default=dict, help_text="On non-FIFO channels: seqs applied beyond the contiguous ones, by source."
    )
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
            "received_above": self.received_above,
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


class Restore(models.Model):
    """A run put back into the global state a snapshot recorded."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="restores")
    snapshot = models.ForeignKey(Snapshot, on_delete=models.PROTECT, related_name="restores")
    epoch = models.PositiveIntegerField(help_text="The run's epoch after this restore.")
    at = models.DateTimeField(auto_now_add=True)
    replayed_messages = models.PositiveIntegerField(help_text="Recorded channel messages delivered again.")
    dropped_frames = models.PositiveIntegerField(help_text="Frames in flight when the run was restored, dropped.")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"run {self.run_id} restored from snapshot {self.snapshot_id}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.pk,
            "run": self.run_id,
            "snapshot": self.snapshot_id,
            "epoch": self.epoch,
            "at": self.at.isoformat() if self.at else None,
            "replayed_messages": self.replayed_messages,
            "dropped_frames": self.dropped_frames,
        }
