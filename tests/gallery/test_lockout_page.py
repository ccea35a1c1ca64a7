"""The sign-in lockout has its own page (not the generic "not allowed" one): what happened, when
to try again, and that nothing else changed."""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings

LOGIN = "/accounts/login/"


@pytest.mark.django_db
def test_lockout_page_says_when_to_try_again(client, user, password):
    for i in range(django_settings.AXES_FAILURE_LIMIT):
        client.post(LOGIN, {"username": user.username, "password": f"wrong-{i}"})
    locked = client.post(LOGIN, {"username": user.username, "password": password})
    assert locked.status_code == 429
    assert "registration/locked_out.html" in {t.name for t in locked.templates}
    body = locked.content.decode()
    minutes = round(int(locked["Retry-After"]) / 60)
    assert 'id="locked-out"' in body and "Sign-in paused" in body
    assert "Too many failed sign-in attempts" in body
    assert f"after about {minutes} minutes" in body
    assert "You can’t do that here" not in body  # not the generic 403 page
