"""A real OpenID Connect provider for the single sign-on tests: django-oauth-toolkit with
OpenID Connect on, in a process of its own (its own database, users and cookies, as a
company's provider would be), serving on 127.0.0.1.

`running_provider(redirect_uris)` starts one and gives its issuer URL, client id and secret;
the people who can sign in at it are PEOPLE, each with the password PASSWORD.

Run as a script, it is the provider: `python provider.py FOLDER REDIRECT_URI...` prints
`READY <port>` once it serves."""

import contextlib
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

CLIENT_ID = "prefhub"
CLIENT_SECRET = "s3cret-of-the-prefhub-client"
PASSWORD = "provider-pass"
# What the provider says about each person (besides sub, their number at the provider).
PEOPLE = {
    "alice": {"email": "alice@example.org", "email_verified": True, "groups": ["labellers"]},
    "bob": {"email": "Bob@Example.org", "email_verified": True, "groups": ["leads", "labellers"]},
    "mallory": {"email": "mallory@elsewhere.net", "email_verified": True, "groups": []},
    "carol": {"email": "carol@example.org", "email_verified": False, "groups": []},
}
LOGIN_PAGE = """<!doctype html><title>Provider sign-in</title><h1>Provider sign-in</h1>
<form method="post">{% csrf_token %}
<label>Username <input name="username"></label>
<label>Password <input name="password" type="password"></label>
<input type="hidden" name="next" value="{{ next }}">
<button type="submit">Sign in at the provider</button></form>"""


@dataclass
class Provider:
    issuer: str
    client_id: str = CLIENT_ID
    secret: str = CLIENT_SECRET


@contextlib.contextmanager
def running_provider(folder: Path, redirect_uris: list[str]):
    """A provider process for the length of the block, which accepts `redirect_uris`."""
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    process = subprocess.Popen(
        [sys.executable, __file__, str(folder), *redirect_uris],
        stdout=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        line = process.stdout.readline()
        if not line.startswith("READY "):
            raise RuntimeError(f"the provider did not start: {line!r}")
        yield Provider(issuer=f"http://127.0.0.1:{line.split()[1]}/o")
    finally:
        process.terminate()
        process.wait(timeout=10)


def _private_key() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def _configure(folder: Path, port: int) -> None:
    import secrets

    from django.conf import settings

    settings.configure(
        DEBUG=False,
        SECRET_KEY=secrets.token_urlsafe(32),
        ALLOWED_HOSTS=["127.0.0.1"],
        ROOT_URLCONF="tests.accounts.provider_urls",
        INSTALLED_APPS=[
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "oauth2_provider",
        ],  # fmt: skip
        MIDDLEWARE=[
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.middleware.csrf.CsrfViewMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
        ],
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": str(folder / "provider.sqlite3"),
            }
        },  # fmt: skip
        TEMPLATES=[
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "OPTIONS": {
                    "loaders": [
                        (
                            "django.template.loaders.locmem.Loader",
                            {"registration/login.html": LOGIN_PAGE},
                        ),
                        "django.template.loaders.app_directories.Loader",
                    ]
                },
            }
        ],  # fmt: skip
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        USE_TZ=True,
        LOGGING_CONFIG=None,  # warnings and errors only, on stderr
        LOGIN_URL="/accounts/login/",
        # A separate cookie name: the app under test runs on 127.0.0.1 too, on another port.
        SESSION_COOKIE_NAME="providersession",
        CSRF_COOKIE_NAME="providercsrf",
        OAUTH2_PROVIDER={
            "OIDC_ENABLED": True,
            "OIDC_RSA_PRIVATE_KEY": _private_key(),
            "OIDC_ISS_ENDPOINT": f"http://127.0.0.1:{port}/o",
            "SCOPES": {"openid": "OpenID Connect", "profile": "Profile", "email": "E-mail"},
            "OAUTH2_VALIDATOR_CLASS": "tests.accounts.provider_urls.Validator",
            "ALLOWED_REDIRECT_URI_SCHEMES": ["http", "https"],
            "ALLOWED_SCHEMES": ["http", "https"],
        },
    )


def _populate(redirect_uris: list[str]) -> None:
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from oauth2_provider.models import Application

    call_command("migrate", verbosity=0)
    for username, claims in PEOPLE.items():
        get_user_model().objects.create_user(username, claims["email"], PASSWORD)
    Application.objects.create(
        name="Prefhub",
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
        redirect_uris=" ".join(redirect_uris),
        algorithm=Application.RS256_ALGORITHM,
        skip_authorization=True,  # no consent page: the company's own app
    )


def main(folder: str, *redirect_uris: str) -> None:
    import logging

    from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler

    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    server = ThreadedWSGIServer(("127.0.0.1", 0), WSGIRequestHandler)
    _configure(Path(folder), server.server_address[1])
    import django
    from django.core.wsgi import get_wsgi_application

    logging.basicConfig(level=logging.WARNING)
    django.setup()
    _populate(list(redirect_uris))
    server.set_app(get_wsgi_application())
    print("READY", server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main(*sys.argv[1:])
