"""A real OpenID Connect provider for the session (tests/accounts/provider.py), the site
configured to use it as OIDC_PROVIDERS would, and a person who signs in through it: the site
under Django's test client, the person's browser at the provider a requests session."""

import json
import re
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests

from annotation.accounts.providers import form_action_with, oidc_providers
from tests.accounts.provider import PASSWORD, running_provider

CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


@pytest.fixture(scope="session")
def oidc_provider(tmp_path_factory):
    callbacks = [f"http://testserver/accounts/oidc/{pid}/login/callback/" for pid in ("corp",)]
    with running_provider(tmp_path_factory.mktemp("provider"), callbacks) as provider:
        yield provider


def providers_json(provider, **options) -> str:
    """OIDC_PROVIDERS naming `provider` as "Corp SSO", with `options` (allowed_domains...)."""
    entry = {"id": "corp", "name": "Corp SSO", "issuer": provider.issuer,
             "client_id": provider.client_id, "secret": provider.secret, **options}  # fmt: skip
    return json.dumps([entry])


def use_providers(settings, raw: str) -> None:
    """The settings OIDC_PROVIDERS=`raw` gives, made as config/settings.py makes them."""
    settings.SOCIALACCOUNT_PROVIDERS = oidc_providers(raw, settings.PASSWORD_LOGIN)
    settings.CONTENT_SECURITY_POLICY = form_action_with(
        settings.CONTENT_SECURITY_POLICY, settings.SOCIALACCOUNT_PROVIDERS
    )


@pytest.fixture
def corp(settings, oidc_provider):
    """Configures the site with the provider; call again with options to change them."""

    def configure(**options):
        use_providers(settings, providers_json(oidc_provider, **options))

    configure()
    return configure


def at_the_provider(url: str, username: str, issuer: str) -> str:
    """Follow `url` at the provider as its browser would, signing in there as `username`
    when asked; the address it sends the person back to (the site's callback)."""
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(issuer))
    browser = requests.Session()
    signed_in = False
    while True:
        answer = browser.get(url, allow_redirects=False, timeout=10)
        if answer.is_redirect:
            url = urljoin(url, answer.headers["Location"])
            if not url.startswith(origin):
                return url
            continue
        assert not signed_in and "Provider sign-in" in answer.text, answer.text[:500]
        token = CSRF_FIELD.search(answer.text).group(1)
        next_url = parse_qs(urlsplit(url).query).get("next", [""])[0]
        posted = browser.post(url, allow_redirects=False, timeout=10, data={
            "csrfmiddlewaretoken": token, "username": username, "password": PASSWORD,
            "next": next_url,
        })  # fmt: skip
        assert posted.is_redirect, "the provider refused the password"
        url, signed_in = urljoin(url, posted.headers["Location"]), True


def sign_in_with_corp(client, username: str, issuer: str, next_url: str = ""):
    """Press "Sign in with Corp SSO" on the login page, sign in at the provider as `username`
    and come back: the site's answer to the callback, followed to the page it ends on."""
    pressed = client.post("/accounts/oidc/corp/login/", {"next": next_url})
    if not pressed.url.startswith(issuer):
        return client.get(pressed.url, follow=True)  # the site answered without the provider
    callback = urlsplit(at_the_provider(pressed.url, username, issuer))
    assert callback.netloc == "testserver", callback
    return client.get(f"{callback.path}?{callback.query}", follow=True)
