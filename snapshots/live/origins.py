"""Which pages may open a run's socket: the site's own, and the origins it trusts.

Browsers send cookies on cross-site WebSocket handshakes, so a page elsewhere could ride
a signed-in user's session into the socket. A handshake is therefore let through only
when its ``Origin`` is the server the browser connected to — scheme aside, the same host
*and port* as its ``Host`` header, a host in ``ALLOWED_HOSTS`` — or is listed in
``CSRF_TRUSTED_ORIGINS`` (scheme, host and port exactly), the rule Django's CSRF check
applies to forms. Comparing host names alone let a page on another port of the same
machine drive an operator's socket.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host

DEFAULT_PORTS = {"http": 80, "https": 443}


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return bytes(value).decode("latin1")
    return None


def _host_port(netloc: str, scheme: str) -> tuple[str, int] | None:
    """``("example.com", 8000)`` from ``example.com:8000``; the scheme's port if none."""
    host, port = split_domain_port(netloc.lower())
    if not host:
        return None
    if not port:
        default = DEFAULT_PORTS.get(scheme)
        return None if default is None else (host, default)
    return (host, int(port)) if port.isdigit() else None


def _normal_origin(origin: str) -> str | None:
    """``scheme://host:port`` with the port always written, or None if it is no origin."""
    try:
        parts = urlsplit(origin.strip())
        place = _host_port(parts.netloc, parts.scheme.lower())
    except ValueError:
        return None
    if place is None or parts.path not in ("", "/") or parts.query or parts.fragment:
        return None
    return f"{parts.scheme.lower()}://{place[0]}:{place[1]}"


def origin_allowed(origin: str | None, host: str | None, trusted: Iterable[str]) -> bool:
    """Whether a handshake with these ``Origin`` and ``Host`` headers may go on.

    A browser leaves the port out of ``Host`` when it is the default of the page's
    scheme (http and ws share 80, https and wss 443), so that is the port it means."""
    if not origin:
        return False
    normal = _normal_origin(origin)
    if normal is None:
        return False
    if normal in {_normal_origin(entry) for entry in trusted}:
        return True
    if not host:
        return False
    scheme = normal.split("://", 1)[0]
    served = _host_port(host, scheme)
    if served is None or not validate_host(served[0], settings.ALLOWED_HOSTS):
        return False
    return normal.split("://", 1)[1] == f"{served[0]}:{served[1]}"


class SameOriginValidator:
    """ASGI middleware: a socket from any other origin is denied before its session is read."""

    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        allowed = origin_allowed(
            _header(scope, b"origin"),
            _header(scope, b"host"),
            settings.CSRF_TRUSTED_ORIGINS,
        )
        if allowed:
            return await self.application(scope, receive, send)
        return await WebsocketDenier()(scope, receive, send)
