"""Found by the soak (scripts/soak.py, docs/bench/reliability/soak-2026-11-30-1937.md): a photo deleted
while its encode runs. The encode goes on after the delete (the heartbeat only logs "lost the lease"),
stores the latent and the previews of a photo that no longer exists, then ``commit_ready`` raises
``Photo.DoesNotExist``, which the task treats as a transient failure ("failed (attempt 1),
retrying"). The files stayed until the sweeper's orphan pass (GALLERY_SWEEP_ORPHAN_AFTER, 1 h; never
on remote storage). Fixed in gallery/worker/pipeline.py (a deleted photo's task stores nothing, or
removes what it stored, and returns "deleted"); lean version: tests/gallery/test_delete_during_encode.py.
"""

from __future__ import annotations

import time

import pytest

from .stack import Client, wait_until
from .test_faults import big_png, make_stack, upload_one, wait_status  # noqa: F401

pytestmark = [pytest.mark.long, pytest.mark.integration]


def test_delete_mid_encode_leaves_no_files_and_no_retry(make_stack, kodak_image, reliability_record):  # noqa: F811
    stack = make_stack(effort="fast").start()
    stack.wait_worker_ready()
    client = Client(stack)
    client.login()
    pid = upload_one(client, big_png(kodak_image))
    wait_status(stack, pid, {"encoding"}, timeout=300)
    time.sleep(1)
    answer = client.http.post(
        f"{stack.url}/photos/{pid}/delete/", data={"csrfmiddlewaretoken": client.csrf}, allow_redirects=False
    )
    assert answer.status_code == 302 and stack.photo(pid) is None
    # the encode of the deleted photo ends (its task logs the outcome) well within its time limit
    wait_until(
        lambda: pid in stack.worker.tail(400) and "lost the lease" in stack.worker.tail(400),
        300,
        "the lease loss",
    )
    time.sleep(30)  # a heartbeat interval + the rest of a 768x512 encode at effort fast under load
    media = stack.base / "media"
    left = sorted(
        str(p.relative_to(media)) for p in media.rglob("*") if pid in p.name or pid in p.parent.name
    )
    retried = [line for line in stack.worker.tail(400).splitlines() if pid in line and "retrying" in line]
    reliability_record(files_left=len(left), retries=len(retried))
    assert not left, left
    assert not retried, retried
