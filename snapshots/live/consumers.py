"""One WebSocket per open dashboard: the run's current state on connect, then its frames.

A page registers with its run's fanout (``snapshots/live/fanout.py``: one channel-layer
subscription per run per server process, which forwards each frame, already JSON, to
every page and sends the heartbeat) *before* it reads the state, so nothing published in
between is lost; ``snapshots/live/state.py`` explains the cursors that make that exact. The
consumer itself is therefore not a channel-layer member: it only answers the page.

Commands (``snapshots/live/socket_commands.py``) are checked against the user's permission and
validated before the services see them; a refusal is an ``error`` frame with the reason.
The user is read again from the session and the database for every command, and every
``SESSION_CHECK_INTERVAL`` seconds in between: a socket keeps no rights its user has lost
(roles taken away, account deactivated, password changed), and it is closed once its
session ends (logout) or its user may no longer watch runs.
Database work of every page shares one thread; a command that may take seconds (a
restore) runs on a thread of its own, so the other pages are not kept waiting meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from importlib import import_module
from types import SimpleNamespace
from typing import Any

from channels.db import DatabaseSyncToAsync, database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.contrib.auth import get_user

from snapshots.live import fanout
from snapshots.live import socket_commands as commands
from snapshots.live.frames import encode, error_frame
from snapshots.live.state import HEARTBEAT_INTERVAL, run_state
from snapshots.models import Run
from snapshots.roles import NO_ROLE, can_view

log = logging.getLogger("cutline.consumers")

# Close codes the page understands as "do not reconnect" (4000–4999 are the application's).
CLOSE_UNAUTHORISED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404
# Seconds between two checks of an idle socket's session and user: how long a page may
# go on watching after its user logged out or lost the viewer role.
SESSION_CHECK_INTERVAL = 10.0
SESSION_ENDED = "Your session has ended: log in again to watch runs."


def _find_run(run_id: int) -> Run | None:
    return Run.objects.select_related("topology").filter(pk=run_id).first()


def current_user(scope: dict[str, Any]) -> Any:
    """The socket's user as the database says now, not as it was at the handshake.

    A fresh copy of the session (the scope's one caches what it read then) goes through
    Django's own ``get_user``: a deleted session (logout), an inactive account or a
    changed password all give the anonymous user; a fresh user object has no cached
    permissions, so its roles are read again too."""
    key = getattr(scope.get("session"), "session_key", None)
    if not key:  # no session (public reading): nobody to read again
        return scope.get("user")
    fresh = import_module(settings.SESSION_ENGINE).SessionStore(session_key=key)
    return get_user(SimpleNamespace(session=fresh))


class RunConsumer(AsyncWebsocketConsumer):
    # Frames reach the page through its run's fanout, not through a channel of its own.
    channel_layer_alias = None
    run_id: int
    joined = False
    signed_in = False
    session_check: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        self.run_id = int(self.scope["url_route"]["kwargs"]["run_id"])
        user = self.scope.get("user")
        self.signed_in = bool(getattr(user, "is_authenticated", False))
        await self.accept()
        if not await database_sync_to_async(can_view)(user):
            if self.signed_in:
                await self._refuse(CLOSE_FORBIDDEN, NO_ROLE)
            else:
                await self._refuse(CLOSE_UNAUTHORISED, "Log in to watch runs.")
            return
        run = await database_sync_to_async(_find_run)(self.run_id)
        if run is None:
            await self._refuse(CLOSE_NOT_FOUND, f"There is no run {self.run_id}.")
            return
        watcher = await fanout.join(self.run_id, self, HEARTBEAT_INTERVAL)
        self.joined = True
        state = await database_sync_to_async(run_state)(run, user)
        await self.send(text_data=encode(state))
        await watcher.go_live()
        self.session_check = asyncio.create_task(self._check_session_every(SESSION_CHECK_INTERVAL))

    async def disconnect(self, code: int) -> None:
        if self.session_check is not None:
            self.session_check.cancel()
        if self.joined:
            self.joined = False
            await fanout.leave(self.run_id, self)

    async def _user_or_close(self) -> Any:
        """The user now, or None once the socket has been closed because it lost its way in."""
        user = await database_sync_to_async(current_user)(self.scope)
        if self.signed_in and not getattr(user, "is_authenticated", False):
            await self._leave_and_refuse(CLOSE_UNAUTHORISED, SESSION_ENDED)
            return None
        if not await database_sync_to_async(can_view)(user):
            await self._leave_and_refuse(CLOSE_FORBIDDEN, NO_ROLE)
            return None
        return user

    async def _check_session_every(self, interval: float) -> None:
        while self.joined:
            await asyncio.sleep(interval)
            try:
                await self._user_or_close()
            except Exception:  # the database away: the next check, or a command, tells
                log.warning("checking the session of a page of run %s failed", self.run_id, exc_info=True)

    async def _leave_and_refuse(self, code: int, message: str) -> None:
        # Out of the fanout first, so no further frame reaches a page that may not see it.
        if self.joined:
            self.joined = False
            await fanout.leave(self.run_id, self)
        await self._refuse(code, message)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if not self.joined:
            return
        command: commands.Command | None = None
        try:
            user = await self._user_or_close()
            if user is None:
                return
            command = commands.parse(text_data)
            execute = DatabaseSyncToAsync(commands.execute, thread_sensitive=command.name not in commands.SLOW_COMMANDS)
            reply = await execute(command, self.run_id, user)
        except commands.CommandError as exc:
            await self._send_error(command, str(exc))
            return
        except Exception:
            log.exception("command %r on run %s failed", command, self.run_id)
            await self._send_error(command, "The server could not carry out this command; see its log.")
            return
        await self.send(text_data=encode(reply))

    async def _send_error(self, command: commands.Command | None, message: str) -> None:
        error = error_frame(message, command.id if command else None, command.name if command else None)
        await self.send(text_data=encode(error))

    async def _refuse(self, code: int, message: str) -> None:
        await self.send(text_data=encode(error_frame(message)))
        await self.close(code=code)
