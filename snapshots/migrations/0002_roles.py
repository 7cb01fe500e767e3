"""The viewer, operator and staff groups with their permissions (see ``snapshots/roles.py``)."""

from __future__ import annotations

from typing import Any

from django.db import migrations

from snapshots.roles import sync_roles


def create_roles(apps: Any, schema_editor: Any) -> None:
    sync_roles(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("snapshots", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    # Reversing leaves the groups: they may hold users by then.
    operations = [migrations.RunPython(create_roles, migrations.RunPython.noop)]
