"""Single sign-on in a real headless Chromium: the provider's button on the login page, the
sign-in page of a real OpenID Connect provider (django-oauth-toolkit, its own process on
127.0.0.1), and back, signed in, with the Content-Security-Policy watching every step."""

import pytest

from annotation.models import Membership
from tests.accounts.conftest import providers_json, use_providers
from tests.accounts.provider import PASSWORD, running_provider
from tests.factories import ProjectFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def provider_for_the_browser(live_server, tmp_path_factory):
    callback = f"{live_server.url}/accounts/oidc/corp/login/callback/"
    with running_provider(tmp_path_factory.mktemp("provider"), [callback]) as provider:
        yield provider


def test_a_person_signs_in_with_the_provider_and_lands_in_their_projects(
    live_server, page, settings, provider_for_the_browser
):
    ProjectFactory(name="Helpfulness")
    joins = {"labellers": [{"project": "Helpfulness", "role": "annotator"}]}
    use_providers(settings, providers_json(provider_for_the_browser, groups=joins))

    page.goto(f"{live_server.url}/accounts/login/")
    page.click("text=Sign in with Corp SSO")
    page.wait_for_selector("h1:has-text('Provider sign-in')")
    assert page.url.startswith(provider_for_the_browser.issuer.rsplit("/o", 1)[0])
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", PASSWORD)
    page.click("text=Sign in at the provider")

    page.wait_for_selector("h1:has-text('Projects')")
    assert page.url == f"{live_server.url}/"
    assert page.inner_text(".who") == "alice"
    assert "Helpfulness" in page.inner_text("main")
    assert Membership.objects.get(user__username="alice").role == "annotator"
