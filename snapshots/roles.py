"""The three roles, as Django groups: viewer ⊂ operator ⊂ staff.

* viewer: reads topologies, runs, snapshots and their records;
* operator: a viewer who may also start, pause and stop runs and take snapshots;
* staff: an operator who may also create, change and delete topologies. The admin
  site also needs the user's ``is_staff`` flag, which a group cannot carry, so
  ``manage.py grantrole USER staff`` sets it too.

``sync_roles`` takes an app registry so the data migration can run it against the
historical models; a later change to the roles ships as a new migration calling it again.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.management import create_permissions

READ = [
    "view_topology",
    "view_process",
    "view_channel",
    "view_run",
    "view_snapshot",
    "view_processrecord",
    "view_channelrecord",
]
CONTROL = ["control_run"]
MANAGE = [f"{action}_{model}" for model in ("topology", "process", "channel") for action in ("add", "change", "delete")]

ROLES: dict[str, list[str]] = {
    "viewer": READ,
    "operator": READ + CONTROL,
    "staff": READ + CONTROL + MANAGE,
}


def sync_roles(apps: Any) -> None:
    """Create the groups and give each exactly its permissions (all of app ``snapshots``)."""
    # Permissions are normally created after the last migration (post_migrate); the
    # groups need them now, on a fresh database too.
    config = apps.get_app_config("snapshots")
    if not getattr(config, "models_module", None):
        config.models_module = True  # a migration's app stub: create_permissions skips it otherwise
    create_permissions(config, verbosity=0, apps=apps)

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, codenames in ROLES.items():
        perms = list(Permission.objects.filter(content_type__app_label="snapshots", codename__in=codenames))
        missing = set(codenames) - {p.codename for p in perms}
        if missing:
            raise RuntimeError(f"role {role}: no permission {', '.join(sorted(missing))}")
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.set(perms)


# --- who may do what -----------------------------------------------------------------------

NO_ROLE = "Your account cannot watch runs: ask an administrator for the viewer role (manage.py grantrole)."


def can_view(user: Any) -> bool:
    """Viewers (``snapshots.view_run``, the viewer role) watch runs; anybody does if the
    site allows public reading (the REST API's rule too, ``snapshots/api/permissions.py``)."""
    if settings.CUTLINE["PUBLIC_READ"]:
        return True
    return bool(getattr(user, "is_authenticated", False)) and user.has_perm("snapshots.view_run")


def can_control(user: Any) -> bool:
    return bool(getattr(user, "is_authenticated", False)) and user.has_perm("snapshots.control_run")
