"""Who may do what through the REST API.

DRF's default is AllowAny, so every view names its permissions here, one per action:

* read (viewer role): the model's ``view_*`` permission, or nobody at all when
  ``CUTLINE["PUBLIC_READ"]`` opens read-only access to anonymous visitors;
* control (operator role): ``snapshots.control_run`` — start, pause, stop, snapshot,
  restore, add or remove watchpoints, change channel faults;
* manage (staff role): ``is_staff`` *and* the model's add/change/delete permission.

The roles themselves (groups holding these permissions) are defined in ``roles.py``.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework.permissions import BasePermission
from rest_framework.request import Request


def public_read() -> bool:
    """Read at request time, so a settings override (or a test) takes effect at once."""
    return bool(getattr(settings, "CUTLINE", {}).get("PUBLIC_READ", False))


class Read(BasePermission):
    """Read access: the ``view_*`` permission of what is read, or public read-only viewing."""

    def __init__(self, perm: str) -> None:
        self.perm = perm
        self.message = f"reading this needs the viewer role (permission {perm})"

    def has_permission(self, request: Request, view: Any) -> bool:
        return public_read() or bool(request.user and request.user.has_perm(self.perm))


class Control(BasePermission):
    """Changing a run: start, pause, resume, stop, snapshot, restore, watchpoints, faults."""

    perm = "snapshots.control_run"
    message = f"this needs the operator role (permission {perm})"

    def has_permission(self, request: Request, view: Any) -> bool:
        return bool(request.user and request.user.has_perm(self.perm))


class Manage(BasePermission):
    """Creating, changing or deleting topologies: staff users with the model permission."""

    def __init__(self, perm: str) -> None:
        self.perm = perm
        self.message = f"this needs the staff role (a staff user with permission {perm})"

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        return bool(user and user.is_staff and user.has_perm(self.perm))
