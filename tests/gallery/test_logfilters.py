"""Celery's routine INFO lines of the beat's housekeeping tasks are dropped from the log; everything
an operator reads the log for stays (other tasks, failures, DEBUG runs)."""

from __future__ import annotations

import logging

import pytest

from gallery.logfilters import QuietHousekeeping

TASK_ID = "5151b867-4808-46bd-980e-a4b29b3e559a"


def _record(logger: str, msg: str, args: object, level: int = logging.INFO) -> logging.LogRecord:
    return logging.LogRecord(logger, level, __file__, 1, msg, args, None)  # type: ignore[arg-type]


def _lines(task: str, level: int = logging.INFO) -> list[logging.LogRecord]:
    """The three lines Celery logs for one beat task, with Celery's own message templates."""
    return [
        _record("celery.beat", "Scheduler: Sending due task %s (%s)", ("gallery-x", task), level),
        _record("celery.worker.strategy", "Task %(name)s[%(id)s] received", ({"name": task, "id": TASK_ID},),
                level),
        _record("celery.app.trace", "Task %(name)s[%(id)s] succeeded in %(runtime)ss: %(return_value)s",
                ({"name": task, "id": TASK_ID, "runtime": 0.01, "return_value": 0},), level),
    ]


@pytest.fixture
def root_info():
    root = logging.getLogger()
    old = root.level
    root.setLevel(logging.INFO)
    yield root
    root.setLevel(old)


def test_housekeeping_info_lines_are_dropped_and_the_rest_kept(root_info) -> None:
    quiet = QuietHousekeeping()
    for task in ("gallery.relay_outbox", "gallery.sweep"):
        assert [quiet.filter(r) for r in _lines(task)] == [False, False, False]
        assert all(quiet.filter(r) for r in _lines(task, logging.ERROR))  # a failing sweep is logged
    assert all(quiet.filter(r) for r in _lines("gallery.encode_photo"))
    assert quiet.filter(_record("gallery.outbox", "outbox: published %d message(s)", (1,)))
    root_info.setLevel(logging.DEBUG)  # an operator debugging the beat sees everything
    assert all(quiet.filter(r) for r in _lines("gallery.sweep"))


def test_settings_put_the_filter_on_celerys_loggers(root_info) -> None:
    from django.conf import settings  # noqa: F401  (pytest-django has applied LOGGING)

    for name in ("celery.beat", "celery.worker.strategy", "celery.app.trace"):
        logger = logging.getLogger(name)
        assert any(isinstance(f, QuietHousekeeping) for f in logger.filters), name
    for record in _lines("gallery.sweep"):  # through the logger's own filter, as Celery's calls go
        assert not logging.getLogger(record.name).filter(record)
