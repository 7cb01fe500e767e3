"""The operator's endpoints: ``/healthz``, ``/readyz`` and ``/metrics``.

``/healthz`` says only that this process answers HTTP (a liveness probe must not fail
because Redis is away: restarting Daphne would not bring Redis back). ``/readyz`` runs
``snapshots.operations.readiness`` and answers 503 with every check's result when one
fails, so a load balancer stops sending traffic. Both are public and say nothing secret.

``/metrics`` is Prometheus' text format and is not public: it names runs and topologies.
A scraper gets it from an address in ``CUTLINE["METRICS_NETWORKS"]`` (loopback by
default) or with ``Authorization: Bearer <CUTLINE["METRICS_TOKEN"]>``.
"""

from __future__ import annotations

import hmac
import ipaddress

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from snapshots.operations import MetricsCollector, readiness


@require_GET
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@require_GET
@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    ready, checks = readiness()
    return JsonResponse({"ready": ready, "checks": checks}, status=200 if ready else 503)


@require_GET
@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    if not metrics_allowed(request):
        return HttpResponse(
            "metrics: send Authorization: Bearer <CUTLINE_METRICS_TOKEN>, or scrape from CUTLINE_METRICS_NETWORKS\n",
            status=403,
            content_type="text/plain; charset=utf-8",
        )
    # A registry per scrape: the collector reads everything fresh, and nothing global
    # (prometheus-client's default registry) holds state between scrapes.
    registry = CollectorRegistry(auto_describe=False)
    registry.register(MetricsCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


def metrics_allowed(request: HttpRequest) -> bool:
    token = settings.CUTLINE["METRICS_TOKEN"]
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if token and scheme.lower() == "bearer" and hmac.compare_digest(given.encode(), token.encode()):
        return True
    try:
        client = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(client in network for network in settings.CUTLINE["METRICS_NETWORKS"])
