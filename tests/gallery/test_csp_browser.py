"""Real chromium: every page carries the CSP and the browser reports no violation of it."""

from __future__ import annotations

import os

import pytest

from .factories import ready_photo

CHROMIUM = "/usr/bin/chromium"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is not installed (apt-get install chromium)"
    ),
]

# Runs before any page script; init scripts are not subject to the page's policy.
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__cspViolations.push(e.violatedDirective + " blocked " + (e.blockedURI || "inline") +
                              " at " + e.sourceFile + ":" + e.lineNumber);
});
"""


def test_pages_pass_the_content_security_policy(live_server, staff_user, password, monkeypatch, media_root):
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    photo = ready_photo(staff_user, width=96, height=64)
    base = live_server.url
    pages = ["/", "/upload/", f"/photos/{photo.pk}/", "/stats/", "/albums/", "/admin/",
             "/admin/gallery/photo/", "/no-such-page/"]
    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = browser.new_page()
            page.set_default_timeout(30_000)
            page.add_init_script(RECORD_VIOLATIONS)
            console: list[str] = []
            page.on("console", lambda msg: console.append(msg.text) if msg.type == "error" else None)

            response = page.goto(f"{base}/accounts/login/")
            assert response.headers.get("content-security-policy"), "login page without CSP"
            page.fill("#id_username", staff_user.username)
            page.fill("#id_password", password)
            page.click("button[type=submit]")
            page.wait_for_url(f"{base}/")
            for path in pages:
                response = page.goto(base + path)
                assert response is not None
                assert "script-src 'self'" in (response.headers.get("content-security-policy") or ""), path
                page.wait_for_load_state("networkidle")
                for violation in page.evaluate("window.__cspViolations"):
                    problems.append(f"{path}: {violation}")
            problems += [f"console: {text}" for text in console if "Content Security Policy" in text]
        finally:
            browser.close()
    assert not problems, "\n".join(problems)
