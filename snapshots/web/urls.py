"""The pages and the dashboard's own JSON (the REST API lives under /api/)."""

from __future__ import annotations

from django.urls import path

from snapshots.web import views

urlpatterns = [
    path("", views.runs, name="runs"),
    path("runs/start/", views.start_run, name="start_run"),
    path("runs/<int:run_id>/", views.run_dashboard, name="run"),
    path("runs/<int:run_id>/state.json", views.run_state_json, name="run_state"),
    path("runs/<int:run_id>/events.json", views.run_events_json, name="run_events"),
    path("runs/<int:run_id>/compare/", views.compare_snapshots, name="compare"),
    path("snapshots/<int:snapshot_id>/", views.snapshot_detail, name="snapshot"),
    path("snapshots/<int:snapshot_id>/restore/", views.restore_from_snapshot, name="restore"),
    path("snapshots/<int:snapshot_id>/export.json", views.snapshot_export, name="snapshot_export"),
]
