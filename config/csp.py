"""A Content-Security-Policy on every answer: scripts only from this site's own files.

The dashboard builds panels with ``innerHTML`` from data the workers and users wrote; it
escapes what it inserts, and this policy is the second wall should an escape be missed:
no inline ``<script>``, no ``on…=`` attribute, no ``eval``, nothing loaded from another
site. Pages pass data to their scripts with Django's ``json_script`` (a ``<script
type="application/json">`` is data, which the policy does not execute). Styles may be
inline: the panels colour their bars with ``style=`` attributes. Sockets go to this
host only (``connect-src``); no page may be framed elsewhere (``frame-ancestors``).
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.setdefault("Content-Security-Policy", POLICY)
        return response
