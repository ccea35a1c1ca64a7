"""Logging filters for the gallery's processes (wired in ``LOGGING``, config/settings/base.py).

Celery logs three INFO lines for every task it schedules, receives and finishes. For the beat's
housekeeping tasks (the outbox relay every 10 s, the sweeper every 15 s) that is ~35 lines a minute
on an idle site, which buries the lines an operator reads the log for. The tasks themselves log when
they do something (``outbox: published …``, ``sweeper: re-queued …``), and failures are WARNING or
ERROR, so those three INFO lines say nothing for them. This module has no Django or Celery import:
the web process loads it too.
"""

from __future__ import annotations

import logging

#: beat tasks whose routine Celery INFO lines are dropped (their own log lines and errors stay)
HOUSEKEEPING_TASKS = ("gallery.relay_outbox", "gallery.sweep")


class QuietHousekeeping(logging.Filter):
    """Drops Celery's INFO "Sending due task" / "received" / "succeeded" lines of the housekeeping
    tasks. Kept: every other task's lines, anything above INFO, and everything when the root logger
    is at DEBUG (an operator debugging the beat sees it all)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO or logging.getLogger().isEnabledFor(logging.DEBUG):
            return True
        message = record.getMessage()
        return not any(f"{task}[" in message or f"({task})" in message for task in HOUSEKEEPING_TASKS)
