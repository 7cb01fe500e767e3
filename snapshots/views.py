"""The pages: runs, a run's live dashboard, a snapshot; and the JSON the dashboard reloads.

Reading needs a signed-in user unless ``CUTLINE["PUBLIC_READ"]`` is on; changing
anything needs the ``snapshots.control_run`` permission and goes through the services.
The JSON views here serve the dashboard only (the REST API is ``/api/``): the state a
page reloads when it finds a gap in its stream, the event log for the space-time
diagram, and a snapshot's export.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from cluster.workloads import WORKLOADS
from snapshots import services
from snapshots.models import Run, Snapshot, Topology
from snapshots.stream import NO_ROLE, can_control, can_view, channel_id, run_state, snapshot_summary, verdict_text

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
    topologies = Topology.objects.annotate(
        process_count=Count("processes", distinct=True), channel_count=Count("channels", distinct=True)
    )
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
    }
    return render(
        request,
        "snapshots/dashboard.html",
        {"run": run, "config": config, "can_control": can_control(request.user)},
    )


@require_GET
@viewer_required
def snapshot_detail(request: HttpRequest, snapshot_id: int) -> HttpResponse:
    snapshot = get_object_or_404(Snapshot.objects.select_related("run__topology"), pk=snapshot_id)
    export = snapshot.to_dict()
    channels = [{**c, "channel": channel_id(c["src"], c["dst"])} for c in export["channels"]]
    return render(
        request,
        "snapshots/snapshot.html",
        {
            "snapshot": snapshot,
            "summary": snapshot_summary(snapshot),
            "verdict_text": verdict_text(snapshot),
            "processes": export["processes"],
            "channels": channels,
        },
    )


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
    """The run's logged events (with vector clocks) for the space-time diagram.

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
    """A snapshot exactly as the CLI's ``--json`` and the REST API export it."""
    snapshot = get_object_or_404(Snapshot, pk=snapshot_id)
    response = JsonResponse({**snapshot.to_dict(), "verdict_text": verdict_text(snapshot)})
    if request.GET.get("download"):
        response["Content-Disposition"] = f'attachment; filename="snapshot-{snapshot.pk}.json"'
    return response
