"""The database goes away during an upload: a clean 503, and nothing half-written stays behind.

The outage is injected at the database driver boundary (``connection.execute_wrapper`` raising
the driver's ``OperationalError``), at the exact statement where it hurts most: after the photo
row was inserted, while the staged original is being written. ``make reliability`` also takes the
real database of a running stack away (tests/reliability/test_faults.py).
"""

from __future__ import annotations

from contextlib import contextmanager

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import OperationalError, connection
from django.urls import reverse

from gallery.models import Photo, StagedUpload
from tests.gallery.factories import image_bytes

pytestmark = pytest.mark.django_db(transaction=True)


@contextmanager
def database_down(when=lambda sql: True):
    """Every statement for which ``when(sql)`` is true fails like a lost connection."""

    def fail(execute, sql, params, many, context):
        if when(sql):
            raise OperationalError("server closed the connection unexpectedly (injected outage)")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(fail):
        yield


def upload(client, json: bool = True):
    files = [SimpleUploadedFile("a.png", image_bytes(64, 48, "PNG"))]
    headers = {"HTTP_ACCEPT": "application/json"} if json else {}
    return client.post(reverse("gallery:upload"), {"size": "standard", "files": files}, **headers)


@pytest.mark.parametrize("json", [True, False], ids=["json", "html"])
def test_outage_while_staging_gives_503_and_leaves_nothing(alice_client, media_root, purged_queue, json):
    seen: list[str] = []

    def staging_insert(sql: str) -> bool:
        seen.append(sql)
        return "gallery_stagedupload" in sql and sql.lstrip().upper().startswith("INSERT")

    with database_down(staging_insert):
        response = upload(alice_client, json=json)
    assert any(s.lstrip().upper().startswith('INSERT INTO "GALLERY_PHOTO"') for s in seen)
    assert response.status_code == 503
    assert response["Retry-After"].isdigit()
    if json:
        assert "temporarily unavailable" in response.json()["error"]
    else:
        assert b"temporarily unavailable" in response.content and b"Traceback" not in response.content
    # The photo row was inserted before the failure; the transaction took it back.
    assert Photo.objects.count() == 0 and StagedUpload.objects.count() == 0
    assert not any(p.is_file() for p in media_root.rglob("*"))
    with purged_queue.connection_for_read() as conn:  # nothing was queued for a photo that is not there
        assert conn.default_channel.client.llen("gpu") == 0
    # Once the database is back the same upload works.
    assert upload(alice_client).status_code == 201
    assert Photo.objects.count() == 1 == StagedUpload.objects.count()


def test_database_completely_down_gives_503_pages(alice_client):
    with database_down():
        page = alice_client.get(reverse("gallery:list"))
        up = upload(alice_client)
        health = alice_client.get(reverse("gallery:healthz"))
    assert page.status_code == 503 and b"temporarily unavailable" in page.content
    assert up.status_code == 503
    assert health.status_code == 503
    assert Photo.objects.count() == 0


def test_other_errors_are_not_disguised_as_503(alice_client, settings):
    """Only database availability errors become 503; a programming error stays a 500."""
    from django.db import ProgrammingError

    def fail(execute, sql, params, many, context):
        raise ProgrammingError("no such column (a bug, not an outage)")

    alice_client.raise_request_exception = False
    with connection.execute_wrapper(fail):
        response = alice_client.get(reverse("gallery:list"))
    assert response.status_code == 500
