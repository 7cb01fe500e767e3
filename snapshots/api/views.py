"""The REST API: topologies, runs, snapshot history and event logs; restores, watchpoints,
channel faults and snapshot comparison.

Every change goes through ``snapshots.services`` ;
views only check who asks (``permissions.py``), parse, and pick a format. Every refusal
is a 4xx with a JSON body ``{"detail": …, "problems": […]}`` whatever format was asked
for; ids are matched by the URL patterns only when they fit a 64-bit column, so no
input can reach the database in a shape it would choke on.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import redis
from django.core.exceptions import RequestDataTooBig
from django.db.models import ProtectedError, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiRequest,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.decorators import action
from rest_framework.pagination import CursorPagination, PageNumberPagination
from rest_framework.permissions import SAFE_METHODS, AllowAny, BasePermission
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.serializers import BaseSerializer
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from cluster.core import topology as topo
from cluster.core.topology import TopologyError
from snapshots import recovery, services
from snapshots import watchpoints as watch
from snapshots.api import exports
from snapshots.api import serializers as s
from snapshots.api.parsers import BodyTooLarge, SafeJSONParser
from snapshots.api.permissions import Control, Manage, Read
from snapshots.models import Run, Snapshot, Topology
from snapshots.presenter import snapshot_export

log = logging.getLogger("cutline.api")

# At most 18 digits: always below 2**63, so a lookup never overflows the database.
ID_PATTERN = r"[0-9]{1,18}"
SHOWN_PROBLEMS = 5


# --- errors -------------------------------------------------------------------------------


def _flatten(detail: Any, path: str = "") -> list[str]:
    """DRF's nested validation errors as ``field: message`` lines."""
    if isinstance(detail, dict):
        return [line for key, value in detail.items() for line in _flatten(value, _join(path, key))]
    if isinstance(detail, list):
        lines: list[str] = []
        for i, value in enumerate(detail):
            lines += _flatten(value, _join(path, str(i)) if isinstance(value, (dict, list)) else path)
        return lines
    return [f"{path}: {detail}" if path and path != "non_field_errors" else str(detail)]


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _summary(problems: list[str]) -> str:
    shown = "; ".join(problems[:SHOWN_PROBLEMS])
    more = len(problems) - SHOWN_PROBLEMS
    return shown + (f" (and {more} more)" if more > 0 else "")


def handle_error(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, TopologyError):
        return Response(
            {"detail": "invalid topology: " + _summary(exc.problems), "problems": exc.problems},
            status=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(exc, services.ServiceError):
        return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, exceptions.ValidationError):
        problems = _flatten(exc.detail)
        return Response({"detail": _summary(problems), "problems": problems}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, RequestDataTooBig):  # Django's own check, while DRF reads the body
        exc = BodyTooLarge()
    if isinstance(exc, redis.RedisError):
        log.warning("the runtime state store is unreachable: %s", exc)
        return Response(
            {"detail": f"cannot reach the runtime state store (Redis): {exc.__class__.__name__}"},
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
        )
    return drf_exception_handler(exc, context)


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


ERRORS = {
    400: OpenApiResponse(s.ErrorSerializer, description="the request is wrong; `problems` says how"),
    401: OpenApiResponse(s.ErrorSerializer, description="not signed in (send `Authorization: Token …`)"),
    403: OpenApiResponse(s.ErrorSerializer, description="signed in, but the role does not allow this"),
    404: OpenApiResponse(s.ErrorSerializer, description="no such object"),
    406: OpenApiResponse(s.ErrorSerializer, description="unknown format"),
    409: OpenApiResponse(s.ErrorSerializer, description="it has runs"),
    429: OpenApiResponse(s.ErrorSerializer, description="too many requests: wait as `Retry-After` says"),
    503: OpenApiResponse(s.ErrorSerializer, description="the runtime state store (Redis) is unreachable"),
}


def errors(*codes: int) -> dict[Any, OpenApiResponse]:
    """The error answers of an operation: always JSON, whatever format the success takes."""
    return {(code, "application/json"): ERRORS[code] for code in (401, 403, 406, 429, *codes)}


# --- the behaviour every view shares ------------------------------------------------------


class ApiView(APIView):
    # Token first: an anonymous request then gets 401 with ``WWW-Authenticate: Token``.
    authentication_classes = [TokenAuthentication, SessionAuthentication]
    parser_classes = [SafeJSONParser]
    renderer_classes: list[type] = [JSONRenderer]
    _format_error: exceptions.APIException | None = None

    def get_exception_handler(self) -> Any:
        return handle_error

    def perform_content_negotiation(self, request: Request, force: bool = False) -> tuple[Any, str]:
        # An unknown format is reported after authentication, so an anonymous request
        # always learns first that it must sign in.
        try:
            if request.query_params.get("format") == "":
                # DRF would read an empty format as "none given"; it is a format asked for.
                raise exceptions.NotAcceptable()
            return super().perform_content_negotiation(request, force)
        except (Http404, exceptions.NotAcceptable):
            formats = ", ".join(r.format for r in self.get_renderers())
            self._format_error = exceptions.NotAcceptable(f"this endpoint serves these formats: {formats}")
            return JSONRenderer(), JSONRenderer.media_type

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        if self._format_error is not None:
            raise self._format_error

    def handle_exception(self, exc: Exception) -> Response:
        response = super().handle_exception(exc)
        # Errors are JSON even when CSV or ShiViz text was asked for.
        self.request.accepted_renderer = JSONRenderer()
        self.request.accepted_media_type = JSONRenderer.media_type
        return response


def query_of(request: Request) -> dict[str, str]:
    # A plain dict, not the QueryDict: DRF reads an empty form value as "not given",
    # but ``?status=`` is a request to refuse, not to ignore.
    return request.query_params.dict()


def format_parameter(*formats: str) -> OpenApiParameter:
    return OpenApiParameter(
        "format", OpenApiTypes.STR, OpenApiParameter.QUERY, enum=list(formats), description="the answer's format"
    )


# --- topologies ---------------------------------------------------------------------------


class StrictPageSize:
    """A page size that is not a whole number in range is refused, not silently replaced."""

    page_size_query_param = "page_size"
    page_size: int
    max_page_size: int

    def get_page_size(self, request: Request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= self.max_page_size:
            raise exceptions.ValidationError({"page_size": [f"give a whole number from 1 to {self.max_page_size}"]})
        return int(raw)

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)  # type: ignore[misc]
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"].update(minimum=1, maximum=self.max_page_size)
        return parameters


class TopologyPagination(StrictPageSize, PageNumberPagination):
    page_size = 100
    max_page_size = 1000

    def get_page_number(self, request: Request, paginator: Any) -> str:
        raw = request.query_params.get(self.page_query_param, "1")
        if raw not in self.last_page_strings and not (raw.isascii() and raw.isdigit()):
            raise exceptions.ValidationError({"page": ["give a page number from 1, or 'last'"]})
        return raw


@extend_schema_view(
    list=extend_schema(
        summary="List topologies", responses={200: s.TopologySummarySerializer(many=True), **errors(400, 404)}
    ),
    retrieve=extend_schema(
        summary="A topology in full (the CLI's JSON)", responses={200: s.TopologySerializer, **errors(404)}
    ),
    create=extend_schema(
        summary="Create a topology",
        examples=[
            OpenApiExample(
                "a two-way ring of three",
                value=topo.ring(3, two_way=True, name="ring3"),
                request_only=True,
            )
        ],
        responses={201: s.TopologySerializer, **errors(400)},
    ),
    update=extend_schema(summary="Replace a topology", responses={200: s.TopologySerializer, **errors(400, 404)}),
    partial_update=extend_schema(
        summary="Change part of a topology", responses={200: s.TopologySerializer, **errors(400, 404)}
    ),
    destroy=extend_schema(
        summary="Delete a topology (not one that has runs)",
        responses={204: None, **errors(404, 409)},
    ),
)
class TopologyViewSet(ApiView, viewsets.ModelViewSet):
    """Topologies: read by viewers; created, changed and deleted by staff."""

    lookup_value_regex = ID_PATTERN
    pagination_class = TopologyPagination
    permissions = {
        "create": Manage("snapshots.add_topology"),
        "update": Manage("snapshots.change_topology"),
        "partial_update": Manage("snapshots.change_topology"),
        "destroy": Manage("snapshots.delete_topology"),
    }

    def get_permissions(self) -> list[BasePermission]:
        return [self.permissions.get(self.action or "", Read("snapshots.view_topology"))]

    def get_queryset(self) -> QuerySet[Topology]:
        if self.action == "list":
            return Topology.objects.with_counts().order_by("name")
        return Topology.objects.all()

    def get_serializer_class(self) -> type[BaseSerializer]:
        return s.TopologySummarySerializer if self.action == "list" else s.TopologySerializer

    def perform_destroy(self, instance: Topology) -> None:
        try:
            instance.delete()
        except ProtectedError:
            raise Conflict(
                f"topology {instance.name!r} has runs, which keep it: it cannot be deleted"
                " (import a changed copy under another name instead)"
            ) from None


# --- runs ---------------------------------------------------------------------------------


class NewestFirst(StrictPageSize, CursorPagination):
    ordering = "-id"
    page_size = 50
    max_page_size = 500

    def decode_cursor(self, request: Request) -> Any:
        # DRF checks a cursor's offset but hands its position (an id, ``p=``) to the
        # database as it is: ``p=abc`` or ``p=nan`` was a 500. An id is what we write.
        cursor = super().decode_cursor(request)
        if cursor is not None and cursor.position is not None and not re.fullmatch(ID_PATTERN, cursor.position):
            raise exceptions.NotFound(self.invalid_cursor_message)
        return cursor


WATCHPOINT_ID = OpenApiParameter(
    "watchpoint", OpenApiTypes.INT, OpenApiParameter.PATH, description="the watchpoint's id"
)
FAULTS_BODY = OpenApiRequest(s.FAULTS_BY_CHANNEL_SCHEMA)
FAULTS_ANSWER = OpenApiResponse(s.FAULTS_BY_CHANNEL_SCHEMA, description='the faults in force, by "p1→p2"')

SNAPSHOT_FORMATS = [JSONRenderer, exports.CSVRenderer, exports.NDJSONRenderer]
SNAPSHOT_STREAMS = {
    (200, exports.CSV_MEDIA_TYPE): OpenApiResponse(OpenApiTypes.STR, description="every record, streamed"),
    (200, exports.NDJSON_MEDIA_TYPE): OpenApiResponse(
        OpenApiTypes.STR, description="one snapshot (export shape) per line, streamed"
    ),
}


@extend_schema_view(
    list=extend_schema(
        summary="List runs, newest first", responses={200: s.RunSerializer(many=True), **errors(400, 404)}
    ),
    retrieve=extend_schema(
        summary="A run, with live counters (null while Redis is unreachable)",
        responses={200: s.RunDetailSerializer, **errors(404)},
    ),
    create=extend_schema(
        summary="Start a run of a topology",
        request=s.RunStartSerializer,
        examples=[OpenApiExample("ten steps a second", value={"topology": 1, "rate": 10.0}, request_only=True)],
        responses={201: s.RunDetailSerializer, **errors(400, 503)},
    ),
)
class RunViewSet(ApiView, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Runs: read by viewers; started, paused, resumed and stopped by operators."""

    queryset = Run.objects.select_related("topology")
    serializer_class = s.RunSerializer
    lookup_value_regex = ID_PATTERN
    pagination_class = NewestFirst
    controls = {"create", "stop", "pause", "resume", "restore"}
    # Read by viewers, written by operators: restores, watchpoints and faults steer a run.
    controlled_writes = {"snapshots", "watchpoints", "watchpoint", "faults"}

    def get_permissions(self) -> list[BasePermission]:
        writes = self.request.method not in SAFE_METHODS
        if self.action in self.controls or (self.action in self.controlled_writes and writes):
            return [Control()]
        if self.action == "snapshots":
            return [Read("snapshots.view_snapshot")]
        return [Read("snapshots.view_run")]

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return Response(self._detail(self.get_object()))

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        form = s.RunStartSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        services.check_cluster()
        given = form.validated_data
        run = services.start_run(
            given["topology"], given.get("workload"), given.get("rate"), user=request.user, seed=given.get("seed")
        )
        url = reverse("api:run-detail", args=[run.pk], request=request)
        return Response(self._detail(run), status=status.HTTP_201_CREATED, headers={"Location": url})

    def _detail(self, run: Run) -> dict[str, Any]:
        try:
            live = services.run_status(run)
        except redis.RedisError as exc:
            # The record of the run is still worth showing without its counters.
            log.warning("no live counters for run %s: %s", run.pk, exc)
            live = None
        return s.RunDetailSerializer(run, context={"live": live}).data

    def _set_status(self, status_name: str) -> Response:
        run = services.set_run_status(self.get_object(), status_name)
        return Response(self._detail(run))

    @extend_schema(
        summary="Stop a run (its running snapshots fail)",
        request=None,
        responses={200: s.RunDetailSerializer, **errors(400, 404, 503)},
    )
    @action(detail=True, methods=["post"])
    def stop(self, request: Request, pk: str) -> Response:
        return self._set_status(Run.Status.STOPPED)

    @extend_schema(
        summary="Pause a run: no new workload steps, channels drain",
        request=None,
        responses={200: s.RunDetailSerializer, **errors(400, 404, 503)},
    )
    @action(detail=True, methods=["post"])
    def pause(self, request: Request, pk: str) -> Response:
        return self._set_status(Run.Status.PAUSED)

    @extend_schema(
        summary="Resume a paused run", request=None, responses={200: s.RunDetailSerializer, **errors(400, 404, 503)}
    )
    @action(detail=True, methods=["post"])
    def resume(self, request: Request, pk: str) -> Response:
        return self._set_status(Run.Status.RUNNING)

    @extend_schema(
        methods=["GET"],
        summary="The run's snapshots, newest first",
        parameters=[
            s.RunSnapshotFilterSerializer,
            OpenApiParameter("cursor", OpenApiTypes.STR, description="the page after or before, from next or previous"),
            OpenApiParameter("page_size", OpenApiTypes.INT, description="snapshots per page (1 to 500)"),
            format_parameter("json", "csv", "ndjson"),
        ],
        responses={(200, "application/json"): s.SnapshotPageSerializer, **SNAPSHOT_STREAMS, **errors(400, 404)},
    )
    @extend_schema(
        methods=["POST"],
        summary="Take a snapshot of the run, starting at a process, with either algorithm",
        request=s.SnapshotTriggerSerializer,
        examples=[
            OpenApiExample("Lai–Yang from p2", value={"initiator": "p2", "algorithm": "lai-yang"}, request_only=True)
        ],
        responses={201: s.SnapshotSummarySerializer, **errors(400, 404, 503)},
    )
    @action(detail=True, methods=["get", "post"], renderer_classes=SNAPSHOT_FORMATS)
    def snapshots(self, request: Request, pk: str) -> HttpResponse:
        run = self.get_object()
        if request.method == "GET":
            return snapshot_history(self, Snapshot.objects.filter(run=run), request, s.RunSnapshotFilterSerializer)
        form = s.SnapshotTriggerSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        services.check_cluster()
        given = form.validated_data
        snapshot = services.start_snapshot(run, given.get("initiator"), user=request.user, algorithm=given["algorithm"])
        url = reverse("api:snapshot-detail", args=[snapshot.pk], request=request)
        return Response(
            s.SnapshotSummarySerializer(snapshot).data, status=status.HTTP_201_CREATED, headers={"Location": url}
        )

    @extend_schema(
        summary="The run's logged events with vector clocks (JSON, or ShiViz's log format)",
        description=(
            "`format=shiviz` gives ShiViz's log format: each event line is followed by "
            "`process {vector clock}`. Paste it into ShiViz with the log parsing regular expression "
            f"`{exports.SHIVIZ_REGEX}` (ShiViz's default). Those clocks tick on every logged event, markers "
            "included; the engine's own clock of each event (application messages only) is on its event line."
        ),
        parameters=[s.EventsQuerySerializer, format_parameter("json", "shiviz")],
        responses={
            (200, "application/json"): s.RunEventsSerializer,
            (200, exports.SHIVIZ_MEDIA_TYPE): OpenApiResponse(OpenApiTypes.STR, description="ShiViz log"),
            **errors(400, 404, 503),
        },
    )
    @action(detail=True, methods=["get"], renderer_classes=[JSONRenderer, exports.ShiVizRenderer])
    def events(self, request: Request, pk: str) -> HttpResponse:
        run = self.get_object()
        query = s.EventsQuerySerializer(data=query_of(request))
        query.is_valid(raise_exception=True)
        events = services.store().events(run.pk, query.validated_data["limit"])
        if request.accepted_renderer.format == "shiviz":
            response = HttpResponse("".join(exports.shiviz_lines(events)), content_type="text/plain; charset=utf-8")
            response["X-ShiViz-Regex"] = exports.SHIVIZ_REGEX
            return response
        return Response({"run": run.pk, "events": events})

    @extend_schema(
        summary="Restore the run to the global state one of its snapshots recorded",
        description=(
            "Every process goes back to its recorded state and every channel's recorded messages are "
            "delivered again, before anything new; frames in flight are dropped. The run keeps its "
            "status (running or paused) and moves to a new epoch. Only a complete, consistent snapshot "
            "of this run can be restored. Takes up to about 10 s while the workers let go of the run."
        ),
        request=s.RestoreRequestSerializer,
        examples=[OpenApiExample("back to snapshot 7", value={"snapshot": 7}, request_only=True)],
        responses={201: s.RestoreSerializer, **errors(400, 404, 503)},
    )
    @action(detail=True, methods=["post"])
    def restore(self, request: Request, pk: str) -> Response:
        run = self.get_object()
        form = s.RestoreRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        record = recovery.restore_run(run, form.validated_data["snapshot"], user=request.user)
        return Response(record.to_dict(), status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="The run's restores, oldest first", responses={200: s.RestoreSerializer(many=True), **errors(404)}
    )
    # The whole list, never paginated (a run has few): the schema must say so too.
    @action(detail=True, methods=["get"], pagination_class=None)
    def restores(self, request: Request, pk: str) -> Response:
        return Response(recovery.restores_of(self.get_object()))

    @extend_schema(
        methods=["GET"],
        summary="The run's watchpoints (disabled ones too)",
        responses={200: s.WatchpointSerializer(many=True), **errors(404)},
    )
    @extend_schema(
        methods=["POST"],
        summary="Add a watchpoint: a process snapshots itself when the condition comes true",
        description=(
            "A *state* condition (`balance < 10`) is tried on the process's state after each step and fires "
            "when it turns true; an *event* condition (it mentions `msg` or `src`: "
            "`src == 'p1' and msg.amount > 50`) is tried on each application message the process applies. "
            "The process then initiates a snapshot with the watchpoint's algorithm in that very step; the "
            "snapshot names the watchpoint and what it saw (`trigger`). A condition that does not parse is "
            "refused with the column of the mistake."
        ),
        request=s.WatchpointCreateSerializer,
        examples=[
            OpenApiExample("p2 runs low", value={"condition": "balance < 10", "process": "p2"}, request_only=True),
            OpenApiExample(
                "every big transfer from p1",
                value={"condition": "src == 'p1' and msg.amount > 50", "mode": "every", "cooldown_s": 10},
                request_only=True,
            ),
        ],
        responses={201: s.WatchpointSerializer, **errors(400, 404, 503)},
    )
    @action(detail=True, methods=["get", "post"], pagination_class=None)
    def watchpoints(self, request: Request, pk: str) -> Response:
        run = self.get_object()
        if request.method == "GET":
            return Response([w.to_dict() for w in run.watchpoints.order_by("id")])
        form = s.WatchpointCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        given = form.validated_data
        watchpoint = watch.add_watchpoint(
            run,
            given["condition"],
            process=given.get("process"),
            mode=given["mode"],
            cooldown_s=given["cooldown_s"],
            algorithm=given["algorithm"],
            user=request.user,
        )
        return Response(watchpoint.to_dict(), status=status.HTTP_201_CREATED)

    @extend_schema(
        methods=["GET"],
        summary="One watchpoint, with its hits",
        operation_id="runs_watchpoint_retrieve",
        parameters=[WATCHPOINT_ID],
        responses={200: s.WatchpointSerializer, **errors(404)},
    )
    @extend_schema(
        methods=["DELETE"],
        summary="Remove a watchpoint (the snapshots it triggered stay)",
        operation_id="runs_watchpoint_destroy",
        parameters=[WATCHPOINT_ID],
        responses={204: None, **errors(404, 503)},
    )
    @action(detail=True, methods=["get", "delete"], url_path=rf"watchpoints/(?P<watchpoint>{ID_PATTERN})")
    def watchpoint(self, request: Request, pk: str, watchpoint: str) -> Response:
        run = self.get_object()
        found = run.watchpoints.filter(pk=int(watchpoint)).first()
        if found is None:
            raise exceptions.NotFound(f"run {run.pk} has no watchpoint {watchpoint}")
        if request.method == "GET":
            return Response(found.to_dict())
        watch.remove_watchpoint(found)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        methods=["GET"],
        summary="The channel faults in force on the run",
        description='By channel `"p1→p2"`; a channel not listed is a plain reliable FIFO channel.',
        responses={200: FAULTS_ANSWER, **errors(404)},
    )
    @extend_schema(
        methods=["PATCH"],
        summary="Change the faults of some channels while the run runs",
        description=(
            'Give the channels to change, by `"p1→p2"` (`"p1->p2"` is read too); each gets exactly the '
            "settings given, and `{}` makes it plain again. Channels not named keep theirs. `delay_ms` "
            "(0–10000) delays every frame; `reorder` makes the channel non-FIFO (frames overtake each "
            "other, and the receiver applies them in arrival order); `loss` (0–0.9) drops transmissions, "
            "which the sender retransmits. Answers with the faults now in force on the whole run."
        ),
        request=FAULTS_BODY,
        examples=[
            OpenApiExample(
                "make p1→p2 slow, lossy and non-FIFO",
                value={"p1→p2": {"delay_ms": 100, "reorder": True, "loss": 0.2}},
                request_only=True,
            ),
            OpenApiExample("make p1→p2 plain again", value={"p1→p2": {}}, request_only=True),
        ],
        responses={200: FAULTS_ANSWER, **errors(400, 404, 503)},
    )
    @action(detail=True, methods=["get", "patch"])
    def faults(self, request: Request, pk: str) -> Response:
        run = self.get_object()
        if request.method == "GET":
            return Response(run.faults)
        return Response(services.set_channel_faults(run, s.fault_changes(request.data)))


# --- snapshots ----------------------------------------------------------------------------


def snapshot_history(
    view: ApiView,
    queryset: QuerySet[Snapshot],
    request: Request,
    filters: type[BaseSerializer] = s.SnapshotFilterSerializer,
) -> HttpResponse:
    """Filtered history: a page of summaries, or all of it streamed as CSV or NDJSON."""
    query = filters(data=query_of(request))
    query.is_valid(raise_exception=True)
    filters = query.validated_data
    lookups = {
        "run_id": filters.get("run"),
        "status": filters.get("status"),
        "initiator": filters.get("initiator"),
        "algorithm": filters.get("algorithm"),
        "watchpoint_id": filters.get("watchpoint"),
        "started_at__gte": filters.get("started_after"),
        "started_at__lt": filters.get("started_before"),
    }
    queryset = queryset.filter(**{k: v for k, v in lookups.items() if v is not None})
    fmt = request.accepted_renderer.format
    if fmt == "ndjson":
        return exports.stream(
            request, exports.ndjson_lines(exports.in_batches(queryset)), exports.NDJSON_MEDIA_TYPE, "snapshots.ndjson"
        )
    if fmt == "csv":
        return exports.stream(
            request, exports.csv_lines(exports.in_batches(queryset)), exports.CSV_MEDIA_TYPE, "snapshots.csv"
        )
    paginator = NewestFirst()  # the run's snapshots action has no paginator of its own
    page = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response(s.SnapshotSummarySerializer(page, many=True).data)


@extend_schema_view(
    list=extend_schema(
        summary="Snapshot history across runs, newest first",
        description="JSON is paged (cursor); `format=csv` and `format=ndjson` stream every snapshot that matches.",
        parameters=[s.SnapshotFilterSerializer, format_parameter("json", "csv", "ndjson")],
        # A list view: the schema wraps the summaries in the paginator's page.
        responses={
            (200, "application/json"): s.SnapshotSummarySerializer(many=True),
            **SNAPSHOT_STREAMS,
            **errors(400, 404),
        },
    ),
    retrieve=extend_schema(
        summary="One snapshot: processes, channels and verdict (the export shape)",
        parameters=[format_parameter("json", "csv", "ndjson")],
        responses={
            (200, "application/json"): s.SnapshotSerializer,
            (200, exports.CSV_MEDIA_TYPE): OpenApiResponse(OpenApiTypes.STR, description="one row per record"),
            (200, exports.NDJSON_MEDIA_TYPE): OpenApiResponse(OpenApiTypes.STR, description="one line"),
            **errors(404),
        },
    ),
)
class SnapshotViewSet(ApiView, viewsets.ReadOnlyModelViewSet):
    """Snapshot history, read by viewers."""

    queryset = Snapshot.objects.all()
    serializer_class = s.SnapshotSummarySerializer
    lookup_value_regex = ID_PATTERN
    renderer_classes = SNAPSHOT_FORMATS
    pagination_class = NewestFirst

    def get_permissions(self) -> list[BasePermission]:
        return [Read("snapshots.view_snapshot")]

    def list(self, request: Request, *args: Any, **kwargs: Any) -> HttpResponse:
        return snapshot_history(self, self.get_queryset(), request)

    @extend_schema(
        summary="Compare two snapshots of one run: what changed per process and per channel",
        description=(
            "`a` is usually the earlier snapshot and `b` the later one. Both must be complete and of the same run."
        ),
        parameters=[s.CompareQuerySerializer],
        responses={200: s.ComparisonSerializer, **errors(400, 404)},
    )
    @action(detail=False, methods=["get"], renderer_classes=[JSONRenderer])
    def compare(self, request: Request) -> Response:
        query = s.CompareQuerySerializer(data=query_of(request))
        query.is_valid(raise_exception=True)
        a, b = (self._snapshot(query.validated_data[key]) for key in ("a", "b"))
        return Response(services.compare_snapshots(a, b))

    def _snapshot(self, snapshot_id: int) -> Snapshot:
        snapshot = Snapshot.objects.filter(pk=snapshot_id).first()
        if snapshot is None:
            raise exceptions.NotFound(f"no snapshot with id {snapshot_id}")
        return snapshot

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> HttpResponse:
        snapshot = self.get_object()
        fmt = request.accepted_renderer.format
        if fmt == "json":
            return Response(snapshot_export(snapshot))
        lines = exports.ndjson_lines([snapshot]) if fmt == "ndjson" else exports.csv_lines([snapshot])
        return exports.stream(request, lines, request.accepted_renderer.media_type, f"snapshot-{snapshot.pk}.{fmt}")


# --- the rest of /api/ --------------------------------------------------------------------


class ApiRoot(ApiView):
    """Where everything is: no data, so open to all."""

    permission_classes = [AllowAny]

    @extend_schema(exclude=True)
    def get(self, request: Request) -> Response:
        names = {
            "topologies": "api:topology-list",
            "runs": "api:run-list",
            "snapshots": "api:snapshot-list",
            "schema": "api:schema",
            "docs": "api:docs",
        }
        return Response({key: reverse(name, request=request) for key, name in names.items()})


@csrf_exempt  # a 404 whatever the method: nothing here reads or changes anything
def not_found(request: HttpRequest, path: str = "") -> JsonResponse:
    return JsonResponse({"detail": f"no API endpoint at {request.path}"}, status=404)
