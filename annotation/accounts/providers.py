"""The OpenID Connect providers people sign in with, read from OIDC_PROVIDERS, and what
django-allauth needs to serve them. Read by the settings module, so plain Python: no model
and no allauth import here.

OIDC_PROVIDERS is a JSON list of
`{id, name, issuer, client_id, secret}`, each with optional `allowed_domains` (a list of
e-mail domains), `groups` (`{"<group>": [{"project": "<name>", "role": "annotator"|"lead"}]}`)
and `groups_claim` (the claim that lists a person's groups, "groups" unless said). A mistake
stops the start with an ImproperlyConfigured that names it, never with the secret in it."""

import json
import re
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

REQUIRED = ("id", "name", "issuer", "client_id", "secret")
OPTIONAL = ("allowed_domains", "groups", "groups_claim")
# Membership.Role's values; the models cannot be imported while settings load
# (tests/accounts/test_providers.py checks that the two agree).
ROLES = ("annotator", "lead")
# The id is part of the sign-in and callback URLs: /accounts/oidc/<id>/login/callback/.
PROVIDER_ID = re.compile(r"^[A-Za-z0-9_-]{1,100}$")

# The apps that serve single sign-on: allauth's social side, with its account app under it
# (the e-mail addresses it keeps for the accounts it creates).
ALLAUTH_APPS = [
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.openid_connect",
]

# allauth for the social side only: Django's LoginView keeps the password sign-in, no page of
# allauth's signs anyone up with a password (only its OpenID Connect URLs are mounted, and its
# account adapter is closed for sign-up), and an account is made or linked without a form.
ALLAUTH_SETTINGS = {
    "ACCOUNT_ADAPTER": "annotation.accounts.sso.AccountAdapter",
    "SOCIALACCOUNT_ADAPTER": "annotation.accounts.sso.SocialAccountAdapter",
    # The provider vouches for the address (email_verified); nothing is mailed to check it.
    "ACCOUNT_EMAIL_VERIFICATION": "none",
    "SOCIALACCOUNT_EMAIL_VERIFICATION": "none",
    "SOCIALACCOUNT_AUTO_SIGNUP": True,
    # Linking an existing account by its verified address is the adapter's: allauth's own
    # would take the password of an account whose address it has not itself verified, which
    # is every account an admin made.
    "SOCIALACCOUNT_EMAIL_AUTHENTICATION": False,
    "SOCIALACCOUNT_STORE_TOKENS": False,
    # A provider's button posts (with the CSRF token); a GET only shows a page to confirm.
    "SOCIALACCOUNT_LOGIN_ON_GET": False,
    # Seconds allauth waits for a provider's discovery document, keys, token and user info.
    "SOCIALACCOUNT_REQUESTS_TIMEOUT": 10,
}


def _fail(message: str):
    raise ImproperlyConfigured(f"OIDC_PROVIDERS: {message}")


def _text(entry: dict, key: str, where: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value.strip():
        _fail(f"{where} needs {key!r}, a non-empty string.")
    return value.strip()


def _domains(value: object, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(d, str) and d.strip() for d in value):
        _fail(f"{where}: 'allowed_domains' must be a list of e-mail domains, as [\"example.org\"].")
    return sorted({d.strip().lstrip("@").lower() for d in value})


def _groups(value: object, where: str) -> dict[str, list[dict]]:
    """Each group's joins, checked: a project's name and a role each."""
    example = '{"labellers": [{"project": "Helpfulness", "role": "annotator"}]}'
    if not isinstance(value, dict):
        _fail(f"{where}: 'groups' must map a group to the projects it joins, as {example}.")
    checked = {}
    for group, joins in value.items():
        if not isinstance(joins, list):
            _fail(f"{where}: group {group!r} must list its projects, as {example}.")
        checked[group] = []
        for join in joins:
            project = join.get("project") if isinstance(join, dict) else None
            role = join.get("role") if isinstance(join, dict) else None
            if not isinstance(project, str) or not project.strip() or role not in ROLES:
                _fail(
                    f"{where}: each join of group {group!r} needs a 'project' (its name) and a "
                    f"'role' ({' or '.join(ROLES)}); found {join!r}."
                )
            checked[group].append({"project": project.strip(), "role": role})
    return checked


def _app(entry: object, index: int) -> dict:
    """One provider as an app of allauth's openid_connect provider."""
    where = f"provider {index + 1}"
    if not isinstance(entry, dict):
        _fail(f"{where} must be an object with {', '.join(REQUIRED)}.")
    if isinstance(entry.get("id"), str):
        where = f"provider {index + 1} ({entry['id']!r})"
    unknown = sorted(set(entry) - set(REQUIRED) - set(OPTIONAL))
    if unknown:
        _fail(f"{where} has unknown keys {unknown}; known: {', '.join(REQUIRED + OPTIONAL)}.")
    provider_id, issuer = _text(entry, "id", where), _text(entry, "issuer", where)
    if not PROVIDER_ID.match(provider_id):
        _fail(f"{where}: 'id' may hold only letters, digits, '-' and '_'.")
    parts = urlsplit(issuer)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        _fail(
            f"{where}: 'issuer' must be the provider's http(s) URL, as https://login.example.org."
        )
    claim = entry.get("groups_claim", "groups")
    if not isinstance(claim, str) or not claim.strip():
        _fail(f"{where}: 'groups_claim' must name a claim, as \"groups\".")
    return {
        "provider_id": provider_id,
        "name": _text(entry, "name", where),
        "client_id": _text(entry, "client_id", where),
        "secret": _text(entry, "secret", where),
        "settings": {
            "server_url": issuer.rstrip("/"),
            "allowed_domains": _domains(entry.get("allowed_domains", []), where),
            "groups": _groups(entry.get("groups", {}), where),
            "groups_claim": claim.strip(),
        },
    }


def oidc_providers(raw: str, password_login: bool = True) -> dict:
    """SOCIALACCOUNT_PROVIDERS for the providers in `raw` (OIDC_PROVIDERS' value; empty for
    none). PKCE on every provider: a code caught on its way back is worth nothing."""
    apps = []
    if raw.strip():
        try:
            entries = json.loads(raw)
        except json.JSONDecodeError as exc:  # its message says where, not what is there
            _fail(f"not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}).")
        if not isinstance(entries, list):
            _fail('must be a JSON list of providers, as [{"id": ..., "name": ..., ...}].')
        apps = [_app(entry, index) for index, entry in enumerate(entries)]
        ids = [app["provider_id"] for app in apps]
        if len(set(ids)) != len(ids):
            _fail(f"each provider needs its own 'id'; found {ids}.")
    if not password_login and not apps:
        raise ImproperlyConfigured(
            "PASSWORD_LOGIN=0 leaves no way to sign in: name a provider in OIDC_PROVIDERS."
        )
    return {"openid_connect": {"APPS": apps, "OAUTH_PKCE_ENABLED": True}}


def form_action_with(policy: str, providers: dict) -> str:
    """The Content-Security-Policy with each provider's origin added to form-action: the
    browser checks where a form's answer redirects to, and a provider's button answers with a
    redirect to the provider's sign-in page."""
    origins = []
    for app in providers["openid_connect"]["APPS"]:
        parts = urlsplit(app["settings"]["server_url"])
        origin = f"{parts.scheme}://{parts.netloc}"
        if origin not in origins:
            origins.append(origin)
    if not origins:
        return policy
    return policy.replace("form-action 'self'", f"form-action 'self' {' '.join(origins)}", 1)
