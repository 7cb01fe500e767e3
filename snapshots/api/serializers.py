"""What the REST API reads and writes, field by field.

Topologies are read and written in the JSON the CLI imports and exports (plus ``id``,
``description`` and counts); a snapshot's detail is ``presenter.snapshot_export``, the export
shape the CLI's ``--json`` prints, and a line of its history is
``presenter.snapshot_row``: the serializers describe those for the schema and serve
them as they are. Checking a topology is left to ``services`` so
the admin, the API and the CLI refuse the same things with the same words.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from cluster.core import topology as topo
from cluster.core.wire import CHANDY_LAMPORT, normal_channel_id
from snapshots import presenter, recovery, services
from snapshots.models import ALGORITHM_CHOICES, Run, Snapshot, Topology, Watchpoint

# Ids and seeds must fit a signed 64-bit column; larger numbers would crash SQLite.
MAX_ID = 2**63 - 1
WORKLOAD_NAMES = [name for name, _ in Topology.WORKLOADS]
SIDES = [("a", "a"), ("b", "b")]  # the two sides of a comparison


# JSON bodies are typed: a field that wants a string or a number gets exactly that, not
# something DRF would coerce ("5" for 5, 0 for "0", true for 1), so the API means what
# its schema says. Query strings, all text, use DRF's ordinary fields.


class StrictCharField(serializers.CharField):
    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictFloatField(serializers.FloatField):
    def to_internal_value(self, data: Any) -> float:
        if isinstance(data, bool) or not isinstance(data, (int, float)):
            self.fail("invalid")
        return super().to_internal_value(data)


class ErrorSerializer(serializers.Serializer):
    """Every 4xx answer: what is wrong, and for a refused body each problem in words."""

    detail = serializers.CharField()
    problems = serializers.ListField(child=serializers.CharField(), required=False)


# --- topologies ---------------------------------------------------------------------------


class ProcessSpecSerializer(serializers.Serializer):
    """Only for the schema: one process as the topology JSON gives it."""

    name = serializers.CharField(max_length=topo.MAX_NAME_LENGTH)
    balance = serializers.IntegerField(required=False, min_value=0, help_text="initial balance (bank workload)")
    tokens = serializers.IntegerField(required=False, min_value=0, help_text="tokens held (token workload)")
    jobs = serializers.IntegerField(required=False, min_value=0, help_text="jobs to hand out (diffusion workload)")
    forks = serializers.IntegerField(required=False, min_value=0, help_text="forks held (philosophers workload)")


@extend_schema_field(ProcessSpecSerializer(many=True))
class ProcessesField(serializers.JSONField):
    """Kept as raw JSON: ``topology.validate`` judges it, naming each problem."""


# The fault settings of one channel, as the topology JSON, a run and the API give them.
FAULTS_SCHEMA = {
    "type": "object",
    "properties": {
        "delay_ms": {"type": "integer", "minimum": 0, "maximum": 10000, "description": "extra delay of every frame"},
        "reorder": {"type": "boolean", "description": "non-FIFO: frames may overtake each other"},
        "loss": {
            "type": "number",
            "minimum": 0,
            "maximum": 0.9,
            "description": "chance that one transmission is lost (the sender retransmits)",
        },
    },
    "additionalProperties": False,
}
FAULTS_BY_CHANNEL_SCHEMA = {
    "type": "object",
    "additionalProperties": FAULTS_SCHEMA,
    "description": 'by channel "p1→p2" ("p1->p2" is read too); a channel not named is a plain reliable FIFO one',
}


@extend_schema_field(
    {
        "type": "array",
        "items": {
            "type": "array",
            "items": {"oneOf": [{"type": "string"}, FAULTS_SCHEMA]},
            "minItems": 2,
            "maxItems": 3,
        },
        "description": "[source, destination] or [source, destination, {fault settings}]",
    }
)
class ChannelsField(serializers.JSONField):
    """[[source, destination], …], raw JSON for the same reason."""


@extend_schema_field(FAULTS_BY_CHANNEL_SCHEMA)
class FaultsByChannelField(serializers.JSONField):
    """Kept as raw JSON: ``services.set_channel_faults`` judges it (``topology.validate_faults``)."""


class TopologySummarySerializer(serializers.ModelSerializer):
    """One line of the topology list (its processes and channels are in the detail)."""

    process_count = serializers.IntegerField(read_only=True)
    channel_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Topology
        fields = ["id", "name", "description", "workload", "process_count", "channel_count", "created_at"]
        read_only_fields = fields


class TopologySerializer(serializers.Serializer):
    """A topology in full: the CLI's JSON plus id, description and counts.

    A PATCH gives only what changes; the rest is taken from the topology as it is.
    """

    id = serializers.IntegerField(read_only=True)
    # Not trimmed: the name is judged exactly as the CLI would judge it.
    name = StrictCharField(trim_whitespace=False)
    description = StrictCharField(required=False, allow_blank=True, trim_whitespace=False)
    workload = serializers.ChoiceField(choices=WORKLOAD_NAMES, default="bank")
    processes = ProcessesField()
    channels = ChannelsField()
    process_count = serializers.IntegerField(read_only=True)
    channel_count = serializers.IntegerField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        current = self.instance.to_dict() if self.instance is not None else {}
        data = {key: attrs.get(key, current.get(key)) for key in ("name", "workload", "processes", "channels")}
        # Raises TopologyError, which the API answers with 400 and the list of problems.
        attrs["spec"] = topo.validate(data)
        return attrs

    def create(self, validated: dict[str, Any]) -> Topology:
        return services.import_topology(validated["spec"], description=validated.get("description", ""))

    def update(self, instance: Topology, validated: dict[str, Any]) -> Topology:
        return services.replace_topology(instance, validated["spec"], validated.get("description"))

    def to_representation(self, instance: Topology) -> dict[str, Any]:
        data = instance.to_dict()
        return {
            "id": instance.pk,
            "name": data["name"],
            "description": instance.description,
            "workload": data["workload"],
            "processes": data["processes"],
            "channels": data["channels"],
            "process_count": len(data["processes"]),
            "channel_count": len(data["channels"]),
            "created_at": serializers.DateTimeField().to_representation(instance.created_at),
        }


# --- runs ---------------------------------------------------------------------------------


class RunSerializer(serializers.ModelSerializer):
    topology_name = serializers.CharField(source="topology.name", read_only=True)
    process_count = serializers.SerializerMethodField()
    channel_count = serializers.SerializerMethodField()
    faults = FaultsByChannelField(read_only=True, help_text="the channel faults now in force")

    class Meta:
        model = Run
        fields = [
            "id",
            "topology",
            "topology_name",
            "workload",
            "status",
            "rate",
            "seed",
            "params",
            "expected_total",
            "epoch",
            "faults",
            "process_count",
            "channel_count",
            "created_at",
            "stopped_at",
        ]
        read_only_fields = fields

    def get_process_count(self, run: Run) -> int:
        return len(run.spec["processes"])

    def get_channel_count(self, run: Run) -> int:
        return len(run.spec["channels"])


class LiveCountersSerializer(serializers.Serializer):
    """``services.run_status``: counters summed over the run's processes and channels."""

    messages_sent = serializers.IntegerField()
    messages_applied = serializers.IntegerField()
    messages_in_flight = serializers.IntegerField()
    markers_sent = serializers.IntegerField()
    markers_received = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    gaps = serializers.IntegerField()
    reorders = serializers.IntegerField()
    held = serializers.IntegerField()
    stale = serializers.IntegerField(help_text="frames of an epoch before the last restore, dropped")
    retransmissions = serializers.IntegerField()
    retransmissions_by_channel = serializers.DictField(child=serializers.IntegerField(), help_text='by "p1→p2"')
    held_at_processes = serializers.IntegerField(allow_null=True, help_text="null: the workload conserves nothing")
    expected_total = serializers.IntegerField(allow_null=True)
    epoch = serializers.IntegerField()
    faults = FaultsByChannelField()
    snapshots = serializers.DictField(child=serializers.IntegerField())
    offered_rate = serializers.FloatField(help_text="workload steps per second the run asks for (0 unless running)")
    achieved_rate = serializers.FloatField(help_text="workload steps per second the workers took, lately")
    held_back = serializers.BooleanField(help_text="flow control holds senders back: a channel's window is full")
    held_back_channels = serializers.ListField(child=serializers.CharField(), help_text='full channels, as "p1→p2"')


class RestoreSerializer(serializers.Serializer):
    """``Restore.to_dict()``: a run put back into the state a snapshot recorded."""

    id = serializers.IntegerField()
    run = serializers.IntegerField()
    snapshot = serializers.IntegerField()
    epoch = serializers.IntegerField(help_text="the run's epoch from this restore on")
    at = serializers.DateTimeField()
    replayed_messages = serializers.IntegerField(help_text="recorded channel messages delivered again")
    dropped_frames = serializers.IntegerField(help_text="frames in flight at the restore, dropped")


class FirstHoldingSerializer(serializers.Serializer):
    """For each stable property that has held: the first complete snapshot that saw it."""

    conservation = serializers.IntegerField(required=False)
    termination = serializers.IntegerField(required=False)
    deadlock = serializers.IntegerField(required=False)


class RunDetailSerializer(RunSerializer):
    live = serializers.SerializerMethodField()
    first_holding = serializers.SerializerMethodField()
    restores = serializers.SerializerMethodField()

    class Meta(RunSerializer.Meta):
        fields = [*RunSerializer.Meta.fields, "first_holding", "restores", "live"]
        read_only_fields = fields

    @extend_schema_field(LiveCountersSerializer(allow_null=True))
    def get_live(self, run: Run) -> dict[str, Any] | None:
        return self.context.get("live")

    @extend_schema_field(FirstHoldingSerializer)
    def get_first_holding(self, run: Run) -> dict[str, int]:
        return services.first_holding(run)

    @extend_schema_field(RestoreSerializer(many=True))
    def get_restores(self, run: Run) -> list[dict[str, Any]]:
        return recovery.restores_of(run)


class RunStartSerializer(serializers.Serializer):
    topology = StrictIntegerField(
        min_value=1, max_value=MAX_ID, help_text="id of the topology to run (see /api/topologies/)"
    )
    workload = serializers.ChoiceField(choices=WORKLOAD_NAMES, required=False, help_text="default: the topology's")
    rate = StrictFloatField(required=False, help_text="workload steps per second per process (above 0)")
    seed = StrictIntegerField(required=False, min_value=0, max_value=MAX_ID)

    def validate_topology(self, value: int) -> Topology:
        topology = Topology.objects.filter(pk=value).first()
        if topology is None:
            raise serializers.ValidationError(f"no topology with id {value}")
        return topology


# --- snapshots ----------------------------------------------------------------------------


class ReportedSerializer(serializers.Serializer):
    processes = serializers.IntegerField()
    processes_total = serializers.IntegerField()
    channels = serializers.IntegerField()
    channels_total = serializers.IntegerField()


class VerdictSerializer(serializers.Serializer):
    consistent = serializers.BooleanField()
    conserved = serializers.BooleanField(allow_null=True, help_text="null: the workload conserves nothing")
    expected_total = serializers.IntegerField(allow_null=True)
    recorded_total = serializers.IntegerField(allow_null=True)
    problems = serializers.ListField(child=serializers.CharField())


class PropertySerializer(serializers.Serializer):
    """One stable property judged on the recorded global state."""

    holds = serializers.BooleanField(allow_null=True, help_text="null: not applicable to this workload")
    detail = serializers.CharField(help_text="why, in words")


class DeadlockSerializer(PropertySerializer):
    cycle = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="the processes waiting on each other, in order"
    )


class PropertiesSerializer(serializers.Serializer):
    """The stable properties detected on a complete snapshot (null before it completes)."""

    conservation = PropertySerializer()
    termination = PropertySerializer()
    deadlock = DeadlockSerializer()


# The parts of a history line that are not plain model fields: read-only, each described
# for the schema by what it holds (the line itself comes from the presenter).


@extend_schema_field(ReportedSerializer)
class ReportedField(serializers.ReadOnlyField):
    """``Snapshot.reported``: processes and channels reported, of how many."""


@extend_schema_field(VerdictSerializer(allow_null=True))
class VerdictField(serializers.ReadOnlyField):
    """The verdict (null while running, or when the snapshot failed before it had one)."""


@extend_schema_field(PropertiesSerializer(allow_null=True))
class PropertiesField(serializers.ReadOnlyField):
    """The stable properties detected (null before the snapshot completes)."""


@extend_schema_field(serializers.CharField(allow_null=True, help_text="what the watchpoint saw"))
class TriggerField(serializers.ReadOnlyField):
    """What the watchpoint saw; null for a snapshot a person took."""


class SnapshotSummarySerializer(serializers.ModelSerializer):
    """One line of snapshot history: everything but the records."""

    # The fields describe the line for the schema; the line itself is
    # ``presenter.snapshot_row``, like every other shape of a snapshot.
    reported = ReportedField()
    verdict = VerdictField()
    properties = PropertiesField()
    trigger = TriggerField()
    duration = serializers.FloatField(read_only=True, allow_null=True, help_text="seconds")

    class Meta:
        model = Snapshot
        fields = [
            "id",
            "run",
            "initiator",
            "algorithm",
            "epoch",
            "watchpoint",
            "trigger",
            "status",
            "reason",
            "started_at",
            "finished_at",
            "duration",
            "reported",
            "verdict",
            "properties",
        ]
        read_only_fields = fields

    def to_representation(self, instance: Snapshot) -> dict[str, Any]:
        return presenter.snapshot_row(instance)


class SnapshotPageSerializer(serializers.Serializer):
    """A page of history; follow ``next`` (a cursor link) for older snapshots."""

    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = SnapshotSummarySerializer(many=True)


class ProcessRecordSerializer(serializers.Serializer):
    process = serializers.CharField()
    state = serializers.JSONField()
    sent = serializers.DictField(child=serializers.IntegerField(), help_text="last seq sent, by destination")
    received = serializers.DictField(
        child=serializers.IntegerField(), help_text="last seq applied in order (with all before it), by source"
    )
    received_above = serializers.DictField(
        child=serializers.ListField(child=serializers.IntegerField()),
        help_text="non-FIFO channels: seqs applied beyond `received`, by source",
    )
    clock = serializers.DictField(child=serializers.IntegerField(), help_text="vector clock")


class RecordedMessageSerializer(serializers.Serializer):
    seq = serializers.IntegerField()
    payload = serializers.JSONField()


class RecordedMarkerSerializer(serializers.Serializer):
    seq = serializers.IntegerField()
    snapshot = serializers.IntegerField()


class ChannelRecordSerializer(serializers.Serializer):
    src = serializers.CharField()
    dst = serializers.CharField()
    messages = RecordedMessageSerializer(many=True)
    markers = RecordedMarkerSerializer(many=True)


class SnapshotSerializer(serializers.Serializer):
    """Only for the schema: the export shape, ``presenter.snapshot_export``, served as it is."""

    id = serializers.IntegerField()
    run = serializers.IntegerField()
    initiator = serializers.CharField()
    algorithm = serializers.ChoiceField(choices=ALGORITHM_CHOICES)
    epoch = serializers.IntegerField(help_text="the run's epoch (restores so far) when it started")
    watchpoint = serializers.IntegerField(allow_null=True, help_text="the watchpoint that triggered it")
    trigger = serializers.CharField(allow_null=True, help_text="what the watchpoint saw")
    status = serializers.ChoiceField(choices=Snapshot.Status.choices)
    reason = serializers.CharField(allow_null=True)
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    reported = ReportedSerializer()
    processes = ProcessRecordSerializer(many=True)
    channels = ChannelRecordSerializer(many=True)
    verdict = VerdictSerializer(allow_null=True)
    properties = PropertiesSerializer(allow_null=True)


class SnapshotTriggerSerializer(serializers.Serializer):
    initiator = StrictCharField(
        required=False, max_length=topo.MAX_NAME_LENGTH, help_text="the process that starts it (default: the first)"
    )
    algorithm = serializers.ChoiceField(
        choices=ALGORITHM_CHOICES,
        default=CHANDY_LAMPORT,
        help_text="chandy-lamport (needs FIFO channels) or lai-yang (works on non-FIFO channels too)",
    )


class SnapshotFilterSerializer(serializers.Serializer):
    """The filters of snapshot history, from the query string."""

    run = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    status = serializers.ChoiceField(choices=Snapshot.Status.choices, required=False)
    algorithm = serializers.ChoiceField(choices=ALGORITHM_CHOICES, required=False)
    watchpoint = serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_ID, help_text="only the snapshots this watchpoint triggered"
    )
    initiator = serializers.CharField(required=False, max_length=topo.MAX_NAME_LENGTH)
    started_after = serializers.DateTimeField(required=False, help_text="started at or after (ISO 8601)")
    started_before = serializers.DateTimeField(required=False, help_text="started before (ISO 8601)")


class RunSnapshotFilterSerializer(SnapshotFilterSerializer):
    """The same filters under ``/api/runs/{id}/snapshots/``, where the run is in the path."""

    run = None


class EventsQuerySerializer(serializers.Serializer):
    limit = serializers.IntegerField(
        required=False, min_value=1, max_value=1_000_000, default=1000, help_text="the newest N events"
    )


class RunEventsSerializer(serializers.Serializer):
    run = serializers.IntegerField()
    events = serializers.ListField(
        child=serializers.DictField(),
        help_text=(
            "oldest first, each with its `id` (the run's event counter: 1, 2, 3 … in the order the "
            "events were committed, kept when older events are trimmed), `kind`, `process`, vector "
            "`clock`, commit time `t`, and by kind `peer`, `seq`, `snapshot`"
        ),
    )


# --- restore, watchpoints, faults, compare ------------------------------------------------


class RestoreRequestSerializer(serializers.Serializer):
    snapshot = StrictIntegerField(
        min_value=1, max_value=MAX_ID, help_text="a complete, consistent snapshot of this run to go back to"
    )

    def validate_snapshot(self, value: int) -> Snapshot:
        snapshot = Snapshot.objects.filter(pk=value).first()
        if snapshot is None:
            raise serializers.ValidationError(f"no snapshot with id {value}")
        return snapshot


class WatchpointSerializer(serializers.Serializer):
    """``Watchpoint.to_dict()``."""

    id = serializers.IntegerField()
    run = serializers.IntegerField()
    process = serializers.CharField(allow_null=True, help_text="the process it watches; null: every process")
    condition = serializers.CharField()
    kind = serializers.ChoiceField(
        choices=["state", "event"], help_text="state: over the process's state; event: over a message it applies"
    )
    mode = serializers.ChoiceField(choices=Watchpoint.Mode.choices)
    cooldown_s = serializers.FloatField()
    algorithm = serializers.ChoiceField(choices=ALGORITHM_CHOICES)
    enabled = serializers.BooleanField(help_text="a `once` watchpoint is disabled by its hit")
    hits = serializers.IntegerField()
    last_hit_at = serializers.DateTimeField(allow_null=True)


class WatchpointCreateSerializer(serializers.Serializer):
    """A new watchpoint; the condition is judged by ``snapshots.watchpoints`` (errors point at the column)."""

    condition = StrictCharField(
        max_length=Watchpoint._meta.get_field("condition").max_length,
        trim_whitespace=False,
        help_text="e.g. `balance < 10`, or over a received message `src == 'p1' and msg.amount > 50`",
    )
    process = StrictCharField(
        required=False,
        allow_null=True,
        max_length=topo.MAX_NAME_LENGTH,
        help_text="the process that watches (and starts the snapshot); default: every process",
    )
    mode = serializers.ChoiceField(
        choices=Watchpoint.Mode.choices, default="once", help_text="once, or every time (with a cool-down)"
    )
    cooldown_s = StrictFloatField(
        required=False, default=5.0, help_text="mode every: at least this many seconds between two snapshots"
    )
    algorithm = serializers.ChoiceField(choices=ALGORITHM_CHOICES, default=CHANDY_LAMPORT)


class ComparedSnapshotSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    initiator = serializers.CharField()
    status = serializers.ChoiceField(choices=Snapshot.Status.choices)
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    algorithm = serializers.ChoiceField(choices=ALGORITHM_CHOICES)
    epoch = serializers.IntegerField()
    consistent = serializers.BooleanField(allow_null=True)


class StateChangeSerializer(serializers.Serializer):
    key = serializers.CharField()
    a = serializers.JSONField(allow_null=True)
    b = serializers.JSONField(allow_null=True)
    missing = serializers.ChoiceField(choices=SIDES, allow_null=True, help_text="the side without this key")


class SidesSerializer(serializers.Serializer):
    a = serializers.IntegerField(allow_null=True)
    b = serializers.IntegerField(allow_null=True)


class ProcessChangeSerializer(serializers.Serializer):
    process = serializers.CharField()
    same = serializers.BooleanField()
    only_in = serializers.ChoiceField(choices=SIDES, allow_null=True)
    changes = StateChangeSerializer(many=True)
    events = SidesSerializer(help_text="application events the process had done at each cut")


class ChannelChangeSerializer(serializers.Serializer):
    channel = serializers.CharField(help_text='"p1→p2"')
    src = serializers.CharField()
    dst = serializers.CharField()
    same = serializers.BooleanField()
    only_in = serializers.ChoiceField(choices=SIDES, allow_null=True)
    only_a = RecordedMessageSerializer(many=True, help_text="in flight at a's cut only")
    only_b = RecordedMessageSerializer(many=True, help_text="in flight at b's cut only")
    both = RecordedMessageSerializer(many=True)
    a = serializers.IntegerField(help_text="messages recorded in a")
    b = serializers.IntegerField(help_text="messages recorded in b")


class MessageTotalsSerializer(serializers.Serializer):
    a = serializers.IntegerField()
    b = serializers.IntegerField()
    only_a = serializers.IntegerField()
    only_b = serializers.IntegerField()
    both = serializers.IntegerField()


class ComparisonTotalsSerializer(serializers.Serializer):
    processes_changed = serializers.IntegerField()
    processes_same = serializers.IntegerField()
    channels_changed = serializers.IntegerField()
    messages = MessageTotalsSerializer()
    recorded_total = SidesSerializer()


class ComparisonSerializer(serializers.Serializer):
    """``cluster/core/compare.py``: two snapshots of one run side by side."""

    a = ComparedSnapshotSerializer()
    b = ComparedSnapshotSerializer()
    first = serializers.ChoiceField(choices=SIDES, allow_null=True, help_text="the one started first")
    processes = ProcessChangeSerializer(many=True)
    channels = ChannelChangeSerializer(many=True)
    totals = ComparisonTotalsSerializer()
    notes = serializers.ListField(child=serializers.CharField())


class CompareQuerySerializer(serializers.Serializer):
    a = serializers.IntegerField(min_value=1, max_value=MAX_ID, help_text="the earlier snapshot")
    b = serializers.IntegerField(min_value=1, max_value=MAX_ID, help_text="the later snapshot")


def fault_changes(data: Any) -> dict[str, Any]:
    """A body of channel faults by channel, with the channels in Cutline's spelling.

    The settings themselves are judged by ``services.set_channel_faults``, which names
    the channel and the setting that is wrong.
    """
    if not isinstance(data, dict) or not data:
        raise serializers.ValidationError(
            'give the faults by channel, e.g. {"p1→p2": {"delay_ms": 100, "reorder": true, "loss": 0.2}}'
        )
    changes: dict[str, Any] = {}
    for key, settings in data.items():
        channel = normal_channel_id(key)
        if channel in changes:
            raise serializers.ValidationError(f"channel {channel} is given twice")
        changes[channel] = settings
    return changes
