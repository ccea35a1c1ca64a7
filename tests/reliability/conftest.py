"""Fixtures of the reliability/security tests.

Long checks (the 10 000-case fuzz run, the load test, the process-level fault drills) carry the
``long`` marker and are deselected unless ``RELIABILITY_FULL=1`` (``make reliability`` sets it), so
``make test`` stays fast. The gallery fixtures (users, isolated media, the test broker, a worker in
a thread) are shared with tests/gallery.
"""

from __future__ import annotations

import os

import pytest

from tests.gallery.conftest import (  # noqa: F401  (fixtures, registered by import)
    _isolated_gallery,
    _test_broker,
    alice_client,
    gpu_worker,
    media_root,
    other_user,
    password,
    purged_queue,
    redis_url,
    staff_user,
    user,
)

FULL = os.environ.get("RELIABILITY_FULL", "") not in ("", "0")


def pytest_configure(config) -> None:
    config.addinivalue_line(
        "markers", "long: a long reliability check, run only with RELIABILITY_FULL=1 (make reliability)"
    )


def pytest_collection_modifyitems(config, items) -> None:
    if FULL:
        return
    long_items = [i for i in items if i.get_closest_marker("long")]
    if long_items:
        config.hook.pytest_deselected(items=long_items)
        items[:] = [i for i in items if not i.get_closest_marker("long")]


@pytest.fixture
def upload_tmp(settings, tmp_path):
    """Django's temporary upload folder for this test (to check that nothing is left in it)."""
    path = tmp_path / "upload-tmp"
    path.mkdir()
    settings.FILE_UPLOAD_TEMP_DIR = str(path)
    return path


@pytest.fixture
def reliability_record(record_property):
    """``reliability_record(name=value, ...)``: numbers for the table ``make reliability`` prints."""

    def record(**metrics) -> None:
        for key, value in metrics.items():
            record_property(key, value)

    return record
