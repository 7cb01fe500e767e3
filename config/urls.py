from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from snapshots.web import health

urlpatterns = [
    # For load balancers and Prometheus (snapshots/web/health.py; README "Operating Cutline").
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", health.metrics, name="metrics"),
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("api/", include("snapshots.api.urls")),
    path("", include("snapshots.web.urls")),
]
