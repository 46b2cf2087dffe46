"""OIDC_PROVIDERS: what a good value configures, and a clear ImproperlyConfigured at start,
naming the mistake and never the secret, for a bad one."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from annotation.accounts.providers import ROLES, form_action_with, oidc_providers
from annotation.models import Membership

ROOT = Path(__file__).resolve().parents[2]
GOOD = {"id": "corp", "name": "Corp SSO", "issuer": "https://login.example.org/realms/corp/",
        "client_id": "prefhub", "secret": "hush-hush"}  # fmt: skip


def problem(entries) -> str:
    raw = entries if isinstance(entries, str) else json.dumps(entries)
    with pytest.raises(ImproperlyConfigured) as caught:
        oidc_providers(raw)
    assert "hush-hush" not in str(caught.value)
    return str(caught.value)


def test_a_provider_becomes_an_app_of_allauths_openid_connect_provider():
    groups = {"labellers": [{"project": " Helpfulness ", "role": "annotator"}]}
    entry = {**GOOD, "allowed_domains": ["@Example.org"], "groups": groups, "groups_claim": "roles"}
    (app,) = oidc_providers(json.dumps([entry]))["openid_connect"]["APPS"]
    assert app == {
        "provider_id": "corp", "name": "Corp SSO", "client_id": "prefhub", "secret": "hush-hush",
        "settings": {
            "server_url": "https://login.example.org/realms/corp",
            "allowed_domains": ["example.org"],
            "groups": {"labellers": [{"project": "Helpfulness", "role": "annotator"}]},
            "groups_claim": "roles",
        },
    }  # fmt: skip
    assert oidc_providers("")["openid_connect"]["APPS"] == []


def test_the_providers_origins_may_receive_the_login_pages_forms():
    providers = oidc_providers(json.dumps([GOOD, {**GOOD, "id": "other"}]))
    policy = form_action_with("default-src 'self'; form-action 'self'; base-uri 'self'", providers)
    assert "; form-action 'self' https://login.example.org; base-uri" in policy


def test_the_roles_are_the_memberships_roles():
    assert list(ROLES) == Membership.Role.values


@pytest.mark.parametrize(
    "entries, says",
    [
        ('[{"id": "corp",}]', "not valid JSON (Expecting property name"),
        ({"id": "corp"}, "must be a JSON list of providers"),
        (["corp"], "provider 1 must be an object"),
        ([{k: v for k, v in GOOD.items() if k != "secret"}], "provider 1 ('corp') needs 'secret'"),
        ([{**GOOD, "client_id": " "}], "needs 'client_id', a non-empty string"),
        ([{**GOOD, "allowed_domain": ["x.org"]}], "unknown keys ['allowed_domain']"),
        ([{**GOOD, "id": "corp/1"}], "'id' may hold only letters, digits"),
        ([{**GOOD, "issuer": "login.example.org"}], "'issuer' must be the provider's http(s) URL"),
        ([{**GOOD, "allowed_domains": "example.org"}], "'allowed_domains' must be a list"),
        ([{**GOOD, "groups": {"g": [{"project": "P", "role": "boss"}]}}], "(annotator or lead)"),
        ([{**GOOD, "groups": {"g": {"project": "P"}}}], "group 'g' must list its projects"),
        ([GOOD, GOOD], "each provider needs its own 'id'"),
    ],
)  # fmt: skip
def test_a_bad_value_names_the_mistake(entries, says):
    assert says in problem(entries)


def test_no_password_login_and_no_provider_is_no_way_in():
    with pytest.raises(ImproperlyConfigured, match="PASSWORD_LOGIN=0 leaves no way to sign in"):
        oidc_providers("", password_login=False)


def test_the_site_does_not_start_with_a_bad_value(tmp_path):
    env = {**os.environ, "PREFHUB_VAR_DIR": str(tmp_path),
           "OIDC_PROVIDERS": json.dumps([{**GOOD, "issuer": "ftp://x"}])}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode != 0
    assert (
        "ImproperlyConfigured: OIDC_PROVIDERS: provider 1 ('corp'): 'issuer' must be" in done.stderr
    )
    assert "hush-hush" not in done.stderr + done.stdout
