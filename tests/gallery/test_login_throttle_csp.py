"""Login throttling (django-axes) and the Content-Security-Policy header on every response."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings as django_settings

ROOT = Path(__file__).resolve().parents[2]
LOGIN = "/accounts/login/"


def post_login(client, username: str, password: str, **headers):
    return client.post(LOGIN, {"username": username, "password": password}, **headers)


@pytest.mark.django_db
def test_forty_wrong_passwords_are_stopped_with_a_clear_message(client, user, password):
    limit = django_settings.AXES_FAILURE_LIMIT
    statuses = [post_login(client, user.username, f"wrong-{i}").status_code for i in range(40)]
    # The first attempts are ordinary failures (the form again); from the limit on: 429.
    assert statuses[: limit - 1] == [200] * (limit - 1)
    assert statuses[limit:] == [429] * (40 - limit)
    locked = post_login(client, user.username, password)  # even the right password
    assert locked.status_code == 429
    text = locked.content.decode()
    assert "Too many failed sign-in attempts" in text and "Try again in 15 minutes" in text
    assert int(locked["Retry-After"]) == 15 * 60
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_lockout_is_per_account_and_json_clients_get_json(client, user, other_user, password):
    for i in range(django_settings.AXES_FAILURE_LIMIT):
        post_login(client, user.username, f"wrong-{i}")
    locked = post_login(client, user.username, password, HTTP_ACCEPT="application/json")
    assert locked.status_code == 429 and locked.json()["code"] == "locked_out"
    assert "Too many failed sign-in attempts" in locked.json()["error"]
    ok = post_login(client, other_user.username, password)
    assert ok.status_code == 302  # the other account signs in normally


@pytest.mark.django_db
def test_admin_login_is_throttled_too(client, django_user_model):
    django_user_model.objects.create_superuser("root", "root@example.com", "a-long-root-password-1")
    for i in range(django_settings.AXES_FAILURE_LIMIT):
        client.post("/admin/login/", {"username": "root", "password": f"nope-{i}"})
    locked = client.post("/admin/login/", {"username": "root", "password": "a-long-root-password-1"})
    assert locked.status_code == 429 and b"Too many failed sign-in attempts" in locked.content


@pytest.mark.django_db
def test_success_resets_the_count_and_test_client_login_still_works(client, user, password):
    for i in range(django_settings.AXES_FAILURE_LIMIT - 1):
        post_login(client, user.username, f"wrong-{i}")
    assert post_login(client, user.username, password).status_code == 302
    client.logout()
    assert post_login(client, user.username, "wrong-again").status_code == 200  # counting from 0
    # authenticate() without a request (test client, scripts) is not throttled and not broken
    assert client.login(username=user.username, password=password)


def _csp(response) -> str:
    return response["Content-Security-Policy"]


@pytest.mark.django_db
def test_every_kind_of_response_carries_the_csp(client, alice_client):
    responses = {
        "list": client.get("/"),
        "login": client.get(LOGIN),
        "healthz": client.get("/healthz"),
        "404": client.get("/no-such-page/"),
        "admin": client.get("/admin/login/"),
        "upload": alice_client.get("/upload/"),
        "static": client.get("/static/gallery/js/upload.js"),
    }
    for name, response in responses.items():
        assert response.status_code in {200, 302, 404}, name
        policy = _csp(response)
        assert policy == django_settings.GALLERY_CSP, name
    directives = dict(d.strip().split(" ", 1) for d in django_settings.GALLERY_CSP.split(";"))
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert directives["object-src"] == "'none'" and directives["frame-ancestors"] == "'none'"
    policy = django_settings.GALLERY_CSP
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy


INLINE = [
    (re.compile(r"<script\b(?![^>]*\bsrc=)[^>]*>", re.I), "inline <script> (no src)"),
    (re.compile(r"<style\b", re.I), "<style> element"),
    (re.compile(r"\sstyle\s*=", re.I), "style= attribute"),
    (re.compile(r"\son[a-z]+\s*=", re.I), "on…= event handler attribute"),
    (re.compile(r"javascript:", re.I), "javascript: URL"),
]


def test_templates_have_no_inline_script_or_style():
    """What the policy would block: every template must keep scripts and styles in static/."""
    found = []
    for path in sorted((ROOT / "templates").rglob("*")):
        if not path.is_file() or path.suffix not in {".html", ".svg", ".txt"}:
            continue
        text = path.read_text()
        for pattern, what in INLINE:
            for match in pattern.finditer(text):
                line = text.count("\n", 0, match.start()) + 1
                found.append(f"{path.relative_to(ROOT)}:{line}: {what}")
    assert not found, "\n".join(found)


@pytest.mark.django_db
def test_behind_a_trusted_proxy_clients_are_told_apart_and_cannot_spoof(client, user, password, settings):
    settings.GALLERY_TRUSTED_PROXIES = 1
    limit = django_settings.AXES_FAILURE_LIMIT
    for i in range(limit):  # the attacker prepends a new fake address every time: ignored
        post_login(client, user.username, f"wrong-{i}", HTTP_X_FORWARDED_FOR=f"10.9.9.{i}, 203.0.113.7")
    attacker = post_login(client, user.username, password, HTTP_X_FORWARDED_FOR="10.1.1.1, 203.0.113.7")
    assert attacker.status_code == 429
    # The same user from another client address behind the same proxy (same REMOTE_ADDR) still signs in.
    other = post_login(client, user.username, password, HTTP_X_FORWARDED_FOR="198.51.100.4")
    assert other.status_code == 302


def test_csp_allows_the_s3_endpoint_for_images(project_root, tmp_path):
    import json
    import os
    import subprocess
    import sys

    code = ("import json, django; django.setup(); from django.conf import settings as s;"
            "print(json.dumps(s.GALLERY_CSP))")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "GALLERY_VAR_DIR": str(tmp_path),
           "AWS_STORAGE_BUCKET_NAME": "photos", "AWS_S3_ENDPOINT_URL": "https://minio.example:9000/"}
    out = subprocess.run([sys.executable, "-c", code], cwd=project_root, env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    directives = dict(d.strip().split(" ", 1) for d in json.loads(out.stdout).split(";"))
    assert directives["img-src"] == "'self' data: blob: https://minio.example:9000"
    assert directives["script-src"] == "'self'"
