"""WebSocket routes: one socket per open run dashboard."""

from __future__ import annotations

from django.urls import path

from snapshots.live.consumers import RunConsumer

websocket_urlpatterns = [
    path("ws/runs/<int:run_id>/", RunConsumer.as_asgi()),
]
