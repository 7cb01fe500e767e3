"""News the server tells every page of a run at once, outside the sources' numbering.

The app sends a signal (``snapshots/signals.py``) when a run is restored or its
watchpoints change; the receivers here turn it into a frame for every open dashboard of
the run. They run in synchronous code (a command's thread, the CLI, the API); the frame
is a hint like every other, which a page can also learn from the state it reloads.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.dispatch import receiver

from snapshots import signals
from snapshots.live.frames import Frame, encode, group_name
from snapshots.models import Restore, Run
from snapshots.presenter import watchpoints_of


def _send(run_id: int, frame: Frame) -> None:
    async_to_sync(get_channel_layer().group_send)(group_name(run_id), {"type": "run.frame", "text": encode(frame)})


@receiver(signals.run_restored)
def announce_restore(run_id: int, **_: Any) -> None:
    """Tell every dashboard of a run that it was restored: each starts over from
    ``state.json``, and shows the restore."""
    restore = Restore.objects.filter(run_id=run_id).order_by("-id").first()
    if restore is None:
        return
    _send(run_id, {"type": "restore", "run": run_id, "restore": restore.to_dict()})


@receiver(signals.watchpoints_changed)
def announce_watchpoints(run_id: int, **_: Any) -> None:
    """Give every dashboard of a run its watchpoints as they are now."""
    run = Run.objects.get(pk=run_id)
    _send(run_id, {"type": "watchpoints", "run": run_id, "watchpoints": watchpoints_of(run)})
