"""ASGI entry point for Daphne: HTTP through Django, WebSockets through Channels."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# Django must be set up before anything that imports models (the WebSocket routing).
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from snapshots.live.origins import SameOriginValidator  # noqa: E402
from snapshots.live.routing import websocket_urlpatterns  # noqa: E402

# Daphne is the only server `make run` starts, so it serves /static/ itself (the
# dashboard's scripts, the vendored Cytoscape and D3, the admin's CSS): WhiteNoise's
# middleware does, with cache headers and compression (config/settings.py).
# A page from another origin must not ride a signed-in user's session cookie into the
# socket (browsers send cookies on cross-site WebSocket handshakes): check the Origin,
# host and port, before the session is even read (snapshots/live/origins.py).
application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": SameOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
