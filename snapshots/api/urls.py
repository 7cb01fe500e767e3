"""``/api/``: the REST API, its OpenAPI schema and the interactive page that reads it."""

from __future__ import annotations

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.permissions import AllowAny
from rest_framework.routers import SimpleRouter

from snapshots.api import views as api

app_name = "api"

router = SimpleRouter()
router.register("topologies", api.TopologyViewSet, basename="topology")
router.register("runs", api.RunViewSet, basename="run")
router.register("snapshots", api.SnapshotViewSet, basename="snapshot")

# The schema and the pages describe the API, never its data: anyone may read them. The
# schema's title and enum names are settings (SPECTACULAR_SETTINGS), so the one served
# here is the one `manage.py spectacular` writes.
public = {"permission_classes": [AllowAny]}

urlpatterns = [
    path("", api.ApiRoot.as_view(), name="root"),
    path("schema/", SpectacularAPIView.as_view(**public), name="schema"),
    # The split view serves its start-up code as a script file: the pages' policy allows no inline script.
    path(
        "docs/", SpectacularSwaggerSplitView.as_view(url_name="api:schema", title="Cutline API", **public), name="docs"
    ),
    path("", include(router.urls)),
    # Anything else under /api/ is answered in JSON too, not with the site's HTML 404.
    re_path(r"^(?P<path>[\s\S]*/)$", api.not_found),  # [\s\S]: a newline too
]
