"""What the app tells the layers above it without importing them.

A restore or a change of watchpoints must reach every open dashboard of the run at once.
The dashboards belong to the live stream (``snapshots/live/announcements.py``), which
sits above the app: it connects its receivers to these signals when the app is ready
(``snapshots/apps.py``), and the app sends them.
"""

from __future__ import annotations

import logging

from django.dispatch import Signal

log = logging.getLogger("cutline.signals")

run_restored = Signal()  # run_id: every process of the run was put in a recorded state
watchpoints_changed = Signal()  # run_id: a watchpoint was added, removed, enabled or fired once


def announce(signal: Signal, run_id: int) -> None:
    """Send ``signal`` for a run; a receiver that fails is logged, never raised: what was
    done is done, and a page that missed the news reloads its state when it reconnects."""
    for receiver, result in signal.send_robust(sender=None, run_id=run_id):
        if isinstance(result, Exception):
            log.warning("run %s: %s failed", run_id, getattr(receiver, "__name__", receiver), exc_info=result)
