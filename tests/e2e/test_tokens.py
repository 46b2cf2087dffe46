"""A person makes an API token on their account page in a real headless Chromium, copies it,
uses it from a script, and revokes it."""

import json
import urllib.error
import urllib.request

import pytest

from tests.e2e.conftest import checked_page, wait_until
from tests.e2e.test_annotate import log_in
from tests.factories import MembershipFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def page(browser):
    yield from checked_page(browser, permissions=["clipboard-read", "clipboard-write"])


def api_status(live_server, secret: str) -> int:
    """What a script gets from the API with this token."""
    request = urllib.request.Request(
        f"{live_server.url}/api/projects/", headers={"Authorization": f"Token {secret}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert json.load(answer)["results"][0]["name"] == "Helpfulness"
            return answer.status
    except urllib.error.HTTPError as refused:
        return refused.code


def test_a_person_makes_copies_uses_and_revokes_a_token(live_server, page):
    MembershipFactory(user__username="ann", project__name="Helpfulness")
    log_in(page, live_server, "ann")

    page.click("header .who")
    page.wait_for_selector("h1:has-text('Your account')")
    assert "No tokens yet" in page.inner_text("#tokens")
    page.fill("#id_name", "laptop")
    page.click("#token-form button.primary")
    page.wait_for_selector("#new-token")
    secret = page.inner_text("#new-token").strip()
    assert len(secret) == 64 and "not shown again" in page.inner_text("#new-token-card")
    page.click("#copy-token")
    wait_until(page, "() => document.getElementById('copy-token').textContent === 'Copied'")
    assert page.evaluate("() => navigator.clipboard.readText()") == secret

    assert api_status(live_server, secret) == 200
    page.goto(f"{live_server.url}/account/")
    assert secret not in page.content(), "shown once only"
    assert "laptop" in page.inner_text("#tokens")

    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#tokens tr:has-text('laptop') button:has-text('Revoke')")
    page.wait_for_selector("text=Revoked 'laptop'")
    assert "No tokens yet" in page.inner_text("#tokens")
    assert api_status(live_server, secret) == 401
