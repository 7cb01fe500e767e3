"""What the REST API reads and writes, field by field.

Topologies are read and written in the JSON the CLI imports and exports (plus ``id``,
``description`` and counts); a snapshot's detail is ``Snapshot.to_dict()``, the export
shape the CLI's ``--json`` prints. Checking a topology is left to ``services`` so
the admin, the API and the CLI refuse the same things with the same words.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from snapshots import services
from snapshots import topology as topo
from snapshots.models import Run, Snapshot, Topology

# Ids and seeds must fit a signed 64-bit column; larger numbers would crash SQLite.
MAX_ID = 2**63 - 1


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


@extend_schema_field(ProcessSpecSerializer(many=True))
class ProcessesField(serializers.JSONField):
    """Kept as raw JSON: ``topology.validate`` judges it, naming each problem."""


@extend_schema_field(
    {"type": "array", "items": {"type": "array", "items": {"type": "string"}, "minItems": 2, "maxItems": 2}}
)
class ChannelsField(serializers.JSONField):
    """[[source, destination], …], raw JSON for the same reason."""


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
    workload = serializers.ChoiceField(choices=[w for w, _ in Topology.WORKLOADS], default="bank")
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
    held_at_processes = serializers.IntegerField()
    expected_total = serializers.IntegerField()
    snapshots = serializers.DictField(child=serializers.IntegerField())


class RunDetailSerializer(RunSerializer):
    live = serializers.SerializerMethodField()

    class Meta(RunSerializer.Meta):
        fields = [*RunSerializer.Meta.fields, "live"]
        read_only_fields = fields

    @extend_schema_field(LiveCountersSerializer(allow_null=True))
    def get_live(self, run: Run) -> dict[str, Any] | None:
        return self.context.get("live")


class RunStartSerializer(serializers.Serializer):
    topology = StrictIntegerField(
        min_value=1, max_value=MAX_ID, help_text="id of the topology to run (see /api/topologies/)"
    )
    workload = serializers.ChoiceField(choices=["bank", "token"], required=False, help_text="default: the topology's")
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
    conserved = serializers.BooleanField()
    expected_total = serializers.IntegerField()
    recorded_total = serializers.IntegerField()
    problems = serializers.ListField(child=serializers.CharField())


class SnapshotSummarySerializer(serializers.ModelSerializer):
    """One line of snapshot history: everything but the records."""

    reported = serializers.SerializerMethodField()
    verdict = serializers.SerializerMethodField()
    duration = serializers.FloatField(read_only=True, allow_null=True, help_text="seconds")

    class Meta:
        model = Snapshot
        fields = [
            "id",
            "run",
            "initiator",
            "status",
            "reason",
            "started_at",
            "finished_at",
            "duration",
            "reported",
            "verdict",
        ]
        read_only_fields = fields

    @extend_schema_field(ReportedSerializer)
    def get_reported(self, snapshot: Snapshot) -> dict[str, int]:
        return {
            "processes": snapshot.processes_reported,
            "processes_total": snapshot.processes_total,
            "channels": snapshot.channels_reported,
            "channels_total": snapshot.channels_total,
        }

    @extend_schema_field(VerdictSerializer(allow_null=True))
    def get_verdict(self, snapshot: Snapshot) -> dict[str, Any] | None:
        return snapshot.verdict


class SnapshotPageSerializer(serializers.Serializer):
    """A page of history; follow ``next`` (a cursor link) for older snapshots."""

    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = SnapshotSummarySerializer(many=True)


class ProcessRecordSerializer(serializers.Serializer):
    process = serializers.CharField()
    state = serializers.JSONField()
    sent = serializers.DictField(child=serializers.IntegerField(), help_text="last seq sent, by destination")
    received = serializers.DictField(child=serializers.IntegerField(), help_text="last seq applied, by source")
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
    """Only for the schema: the export shape, ``Snapshot.to_dict()``, served as it is."""

    id = serializers.IntegerField()
    run = serializers.IntegerField()
    initiator = serializers.CharField()
    status = serializers.ChoiceField(choices=Snapshot.Status.choices)
    reason = serializers.CharField(allow_null=True)
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    reported = ReportedSerializer()
    processes = ProcessRecordSerializer(many=True)
    channels = ChannelRecordSerializer(many=True)
    verdict = VerdictSerializer(allow_null=True)


class SnapshotTriggerSerializer(serializers.Serializer):
    initiator = StrictCharField(
        required=False, max_length=topo.MAX_NAME_LENGTH, help_text="the process that starts it (default: the first)"
    )


class SnapshotFilterSerializer(serializers.Serializer):
    """The filters of snapshot history, from the query string."""

    run = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    status = serializers.ChoiceField(choices=Snapshot.Status.choices, required=False)
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
    events = serializers.ListField(child=serializers.DictField(), help_text="oldest first, each with its vector clock")
