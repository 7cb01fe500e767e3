"""``manage.py grantrole USER viewer|operator|staff [--create]``: give a user a role."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError, CommandParser

from snapshots.roles import ROLES


class Command(BaseCommand):
    help = "Put a user in the viewer, operator or staff group (staff also get the admin's is_staff flag)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("role", choices=list(ROLES))
        parser.add_argument("--create", action="store_true", help="create the user (no password) if missing")

    def handle(self, *args: Any, **opts: Any) -> None:
        User = get_user_model()
        username, role = opts["username"], opts["role"]
        user = User.objects.filter(username=username).first()
        if user is None:
            if not opts["create"]:
                raise CommandError(f"no user {username!r}; pass --create to create one")
            user = User.objects.create_user(username=username)
        try:
            group = Group.objects.get(name=role)
        except Group.DoesNotExist:
            raise CommandError(f"no group {role!r}: run `manage.py migrate` first") from None
        user.groups.add(group)
        if role == "staff" and not user.is_staff:
            user.is_staff = True
            user.save(update_fields=["is_staff"])
        self.stdout.write(f"{username} is now {role}")
