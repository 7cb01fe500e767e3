"""``/api/``: the REST API, its OpenAPI schema and the interactive page that reads it."""

from __future__ import annotations

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.permissions import AllowAny
from rest_framework.routers import SimpleRouter

from snapshots.api import views as api

app_name = "api"

router = SimpleRouter()
router.register("topologies", api.TopologyViewSet, basename="topology")
router.register("runs", api.RunViewSet, basename="run")
router.register("snapshots", api.SnapshotViewSet, basename="snapshot")

# The schema and the pages describe the API, never its data: anyone may read them.
SCHEMA_SETTINGS = {
    "TITLE": "Cutline API",
    "DESCRIPTION": (
        "Topologies, runs and the history of Chandy–Lamport snapshots taken of them. "
        "Scripts authenticate with `Authorization: Token <key>` (create one with "
        "`manage.py drf_create_token USER`); the browser uses its session."
    ),
    "VERSION": "1",
    # Runs and snapshots both have a status, with different choices.
    "ENUM_NAME_OVERRIDES": {
        "RunStatusEnum": "snapshots.models.Run.Status",
        "SnapshotStatusEnum": "snapshots.models.Snapshot.Status",
        "AlgorithmEnum": "snapshots.models.ALGORITHM_CHOICES",
        "SideEnum": "snapshots.api.serializers.SIDES",
    },
}
public = {"permission_classes": [AllowAny]}

urlpatterns = [
    path("", api.ApiRoot.as_view(), name="root"),
    path("schema/", SpectacularAPIView.as_view(custom_settings=SCHEMA_SETTINGS, **public), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema", title="Cutline API", **public), name="docs"),
    path("", include(router.urls)),
    # Anything else under /api/ is answered in JSON too, not with the site's HTML 404.
    re_path(r"^(?P<path>[\s\S]*/)$", api.not_found),  # [\s\S]: a newline too
]
