"""The pages: runs, a run's live dashboard, a snapshot, two snapshots compared; and the
JSON the dashboard reloads.

Reading needs a signed-in user unless ``CUTLINE["PUBLIC_READ"]`` is on; changing
anything needs the ``snapshots.control_run`` permission and goes through the services.
The dashboard changes things over its socket (``snapshots/live/socket_commands.py``); the snapshot
page has one form of its own, to restore the run from that snapshot. The JSON views here
serve the dashboard only (the REST API is ``/api/``): the state a page reloads when it
finds a gap in its stream, the event log for the space-time diagram, and a snapshot's
export.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_GET, require_POST

from cluster.core.wire import channel_id
from cluster.core.workloads import WORKLOADS
from snapshots import presenter, recovery, services
from snapshots.live.state import run_state
from snapshots.models import ALGORITHM_CHOICES, Run, Snapshot, Topology
from snapshots.presenter import dashboard_words, page_export, property_rows, snapshot_summary
from snapshots.roles import NO_ROLE, can_control, can_view

EVENTS_DEFAULT = 1500  # events the space-time diagram draws by default
EVENTS_MAX = 5000

View = Callable[..., HttpResponse]


def viewer_required(view: View) -> View:
    """Pages send strangers to the login page; JSON answers them 403 with the reason."""

    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if can_view(request.user):
            return view(request, *args, **kwargs)
        signed_in = request.user.is_authenticated
        reason = NO_ROLE if signed_in else "Log in to watch runs."
        if request.path.endswith(".json"):
            return JsonResponse({"error": reason}, status=403)
        if signed_in:
            return render(request, "snapshots/forbidden.html", {"reason": reason}, status=403)
        return redirect_to_login(request.get_full_path())

    wrapped.__name__ = view.__name__
    wrapped.__doc__ = view.__doc__
    return wrapped


# --- pages ------------------------------------------------------------------------------------


@require_GET
@viewer_required
def runs(request: HttpRequest) -> HttpResponse:
    """The topologies with a form to start a run of each, and the runs."""
    topologies = Topology.objects.with_counts()
    run_list = Run.objects.select_related("topology").annotate(snapshot_count=Count("snapshots")).order_by("-id")[:200]
    return render(
        request,
        "snapshots/runs.html",
        {
            "topologies": topologies,
            "runs": run_list,
            "can_control": can_control(request.user),
            "workloads": sorted(WORKLOADS),
            "default_rate": settings.CUTLINE["DEFAULT_RATE"],
            "max_rate": services.MAX_RATE,
        },
    )


@require_POST
def start_run(request: HttpRequest) -> HttpResponse:
    """Start a run of a topology (the Runs page's form), then open its dashboard."""
    if not can_control(request.user):
        messages.error(request, "You are not allowed to start runs (you need the “control run” permission).")
        return redirect("runs")
    try:
        topology = services.get_topology(request.POST.get("topology", ""))
        rate_text = request.POST.get("rate", "").strip()
        try:
            rate = float(rate_text) if rate_text else None
        except ValueError:
            raise services.ServiceError(f"the rate {rate_text!r} is not a number") from None
        run = services.start_run(topology, request.POST.get("workload") or None, rate, user=request.user)
    except services.ServiceError as exc:
        messages.error(request, f"Could not start the run: {exc}.")
        return redirect("runs")
    try:
        services.check_cluster()
    except services.ServiceError as exc:
        messages.warning(request, f"Run {run.pk} started, but it will not move yet: {exc}")
    return redirect("run", run_id=run.pk)


@require_GET
@viewer_required
def run_dashboard(request: HttpRequest, run_id: int) -> HttpResponse:
    run = get_object_or_404(Run.objects.select_related("topology"), pk=run_id)
    config = {
        "run": run.pk,
        "socket": f"/ws/runs/{run.pk}/",
        "state": reverse("run_state", args=[run.pk]),
        "events": reverse("run_events", args=[run.pk]),
        "export": reverse("snapshot_export", args=[0]),
        "detail": reverse("snapshot", args=[0]),
        "compare": reverse("compare", args=[run.pk]),
        # The scripts render words they are given: these, and those in each snapshot's summary.
        "words": dashboard_words(),
    }
    return render(
        request,
        "snapshots/dashboard.html",
        {"run": run, "config": config, "can_control": can_control(request.user), "algorithms": ALGORITHM_CHOICES},
    )


@require_GET
@viewer_required
def snapshot_detail(request: HttpRequest, snapshot_id: int) -> HttpResponse:
    snapshot = get_object_or_404(Snapshot.objects.select_related("run__topology", "watchpoint"), pk=snapshot_id)
    export = presenter.snapshot_export(snapshot)
    channels = [{**c, "channel": channel_id(c["src"], c["dst"])} for c in export["channels"]]
    run = snapshot.run
    return render(
        request,
        "snapshots/snapshot.html",
        {
            "snapshot": snapshot,
            "summary": snapshot_summary(snapshot),
            "processes": export["processes"],
            "channels": channels,
            "properties": property_rows(snapshot.properties, services.first_holding(run), snapshot.pk),
            "restores": snapshot.restores.order_by("id"),
            "sound": snapshot.is_sound,
            "can_restore": can_control(request.user) and snapshot.is_sound and run.status != Run.Status.STOPPED,
            "compare_url": f"{reverse('compare', args=[run.pk])}?a={snapshot.pk}",
        },
    )


@require_POST
def restore_from_snapshot(request: HttpRequest, snapshot_id: int) -> HttpResponse:
    """The snapshot page's Restore button: the run goes back to what this snapshot recorded."""
    snapshot = get_object_or_404(Snapshot.objects.select_related("run"), pk=snapshot_id)
    if not can_control(request.user):
        messages.error(request, "You are not allowed to restore runs (you need the “control run” permission).")
        return redirect("snapshot", snapshot_id=snapshot.pk)
    try:
        restore = recovery.restore_run(snapshot.run, snapshot, request.user)
    except services.ServiceError as exc:
        messages.error(request, f"Could not restore the run: {exc}.")
        return redirect("snapshot", snapshot_id=snapshot.pk)
    messages.success(request, restore_words(restore.to_dict()))
    return redirect("run", run_id=snapshot.run_id)


def restore_words(restore: dict[str, Any]) -> str:
    """A restore in one sentence, as the dashboard says it too (``panels.js``)."""
    k = restore["replayed_messages"]
    messages_ = (
        "1 recorded message re-entered its channel" if k == 1 else f"{k} recorded messages re-entered their channels"
    )
    return (
        f"Run {restore['run']} restored from snapshot #{restore['snapshot']} (epoch {restore['epoch']}): {messages_}."
    )


@require_GET
@viewer_required
def compare_snapshots(request: HttpRequest, run_id: int) -> HttpResponse:
    """Two complete snapshots of a run side by side (``?a=ID&b=ID``); without both, the picker."""
    run = get_object_or_404(Run.objects.select_related("topology"), pk=run_id)
    complete = list(run.snapshots.filter(status=Snapshot.Status.COMPLETE).order_by("-id")[:500])
    context: dict[str, Any] = {"run": run, "complete": complete, "a": None, "b": None, "result": None, "error": None}
    picked = {key: request.GET.get(key, "").strip() for key in ("a", "b")}
    if picked["a"] and picked["b"]:
        try:
            a, b = (_snapshot_of(run, picked[key], key) for key in ("a", "b"))
            context.update(a=a, b=b, result=_readable(services.compare_snapshots(a, b)))
        except services.ServiceError as exc:
            context["error"] = str(exc)
    context["picked"] = picked
    status = 400 if context["error"] else 200
    return render(request, "snapshots/compare.html", context, status=status)


def _value_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _message_text(message: dict[str, Any]) -> str:
    payload = message.get("payload")
    if isinstance(payload, dict):
        words = ", ".join(f"{k} {_value_text(v)}" for k, v in payload.items())
    else:
        words = _value_text(payload)
    return f"{message['seq']}: {words}"


def _readable(result: dict[str, Any]) -> dict[str, Any]:
    """The comparison with every value and message also as text, as the page shows it."""
    for process in result["processes"]:
        for change in process["changes"]:
            change["a_text"] = "—" if change.get("missing") == "a" else _value_text(change["a"])
            change["b_text"] = "—" if change.get("missing") == "b" else _value_text(change["b"])
    for channel in result["channels"]:
        for key in ("only_a", "only_b", "both"):
            channel[f"{key}_text"] = [_message_text(m) for m in channel[key]]
    return result


def _snapshot_of(run: Run, text: str, which: str) -> Snapshot:
    try:
        snapshot_id = int(text)
    except ValueError:
        raise services.ServiceError(f"snapshot {which} must be a snapshot id, not {text!r}") from None
    snapshot = Snapshot.objects.filter(pk=snapshot_id).select_related("watchpoint").first()
    if snapshot is None:
        raise services.ServiceError(f"there is no snapshot {snapshot_id}")
    if snapshot.run_id != run.pk:
        raise services.ServiceError(f"snapshot {snapshot_id} is of run {snapshot.run_id}, not of run {run.pk}")
    return snapshot


# --- JSON for the dashboard ------------------------------------------------------------------


@require_GET
@viewer_required
def run_state_json(request: HttpRequest, run_id: int) -> HttpResponse:
    """The state a dashboard starts from (the same as the socket's first frame)."""
    run = get_object_or_404(Run.objects.select_related("topology"), pk=run_id)
    return JsonResponse(run_state(run, request.user), json_dumps_params={"separators": (",", ":")})


@require_GET
@viewer_required
def run_events_json(request: HttpRequest, run_id: int) -> HttpResponse:
    """The run's logged events (each with its id and vector clock) for the space-time diagram.

    ``?snapshot=ID`` gives the stretch of the log around that snapshot's own events;
    otherwise the newest events. The log keeps only the newest events of a run
    (``CUTLINE["EVENT_LOG_LIMIT"]``), so an old snapshot may have none left: ``found``
    says so.
    """
    run = get_object_or_404(Run, pk=run_id)
    try:
        limit = min(max(int(request.GET.get("limit", EVENTS_DEFAULT)), 1), EVENTS_MAX)
        snapshot = int(request.GET["snapshot"]) if request.GET.get("snapshot") else None
    except ValueError:
        return JsonResponse({"error": "limit and snapshot must be whole numbers"}, status=400)
    events = services.store().events(run.pk)
    found = True
    if snapshot is not None:
        events, found = _around_snapshot(events, snapshot, limit)
    else:
        events = events[-limit:]
    return JsonResponse(
        {"run": run.pk, "snapshot": snapshot, "found": found, "processes": run.process_names, "events": events},
        json_dumps_params={"separators": (",", ":")},
    )


def _around_snapshot(events: list[dict[str, Any]], snapshot: int, limit: int) -> tuple[list[dict[str, Any]], bool]:
    times = [e["t"] for e in events if e.get("snapshot") == snapshot]
    if not times:
        return events[-limit:], False
    first, last = min(times), max(times)
    pad = max(0.25, (last - first) * 0.5)
    window = [e for e in events if first - pad <= e["t"] <= last + pad]
    if len(window) <= limit:
        return window, True
    # Too many: keep the snapshot's own events and the application events nearest to them.
    own = [e for e in window if e.get("snapshot") == snapshot]
    others = sorted(
        (e for e in window if e.get("snapshot") != snapshot), key=lambda e: min(abs(e["t"] - first), abs(e["t"] - last))
    )
    kept = own + others[: max(0, limit - len(own))]
    kept.sort(key=lambda e: e["t"])
    return kept, True


@require_GET
@viewer_required
def snapshot_export(request: HttpRequest, snapshot_id: int) -> HttpResponse:
    """A snapshot as the CLI's ``--json`` and the REST API export it, with its verdict in words."""
    snapshot = get_object_or_404(Snapshot, pk=snapshot_id)
    response = JsonResponse(page_export(snapshot))
    if request.GET.get("download"):
        response["Content-Disposition"] = content_disposition_header(True, f"snapshot-{snapshot.pk}.json")
    return response
