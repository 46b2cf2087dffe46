"""Safe by default: debug off, a secret key made once per machine and kept private, HTTPS
settings that leave `check --deploy` with nothing to say, static files and the API docs
served with debug off (no CDN), a Content-Security-Policy, demo logins only on request, and
an embedded broker that sends without a warning."""

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tests.conftest import logged_in

ROOT = Path(__file__).resolve().parents[2]


def manage(*args, var: Path, **env) -> subprocess.CompletedProcess:
    """manage.py in a fresh process with no settings in the environment but these."""
    ours = ("DJANGO_", "SECRET_KEY", "DATABASE_URL", "API_DOCS")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(ours)}
    clean.update(PREFHUB_VAR_DIR=str(var), **env)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=clean, capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip


SHOW = "from django.conf import settings; print(settings.DEBUG, settings.SECRET_KEY)"


def test_no_environment_means_debug_off_and_a_private_key_made_once(tmp_path):
    first = manage("shell", "-c", SHOW, var=tmp_path)
    second = manage("shell", "-c", SHOW, var=tmp_path)
    assert first.returncode == 0, first.stderr
    debug, key = first.stdout.split()[-2:]
    assert debug == "False" and len(key) >= 50 and second.stdout.split()[-1] == key
    assert stat.S_IMODE((tmp_path / "secret_key").stat().st_mode) == 0o600
    chosen = manage("shell", "-c", SHOW, var=tmp_path, SECRET_KEY="k" * 60, DJANGO_DEBUG="1")
    assert chosen.stdout.split()[-2:] == ["True", "k" * 60]


SEND = "from config.celery import enqueue; enqueue('annotation.index_search'); print('sent')"


def test_sending_a_task_on_the_embedded_broker_prints_no_warning(tmp_path):
    # kombu says "No hostname was supplied. Reverting to default 'localhost'" on each send
    # through a broker URL that names no host.
    sent = manage("shell", "-c", SEND, var=tmp_path, CELERY_BROKER_URL="", REDIS_URL="",
                  CELERY_TASK_ALWAYS_EAGER="0")  # fmt: skip
    assert sent.returncode == 0, sent.stderr
    assert sent.stdout.split()[-1] == "sent" and list((tmp_path / "broker" / "queue").iterdir())
    assert "hostname" not in sent.stdout + sent.stderr


def test_check_deploy_is_clean_behind_https(tmp_path):
    checked = manage(
        "check", "--deploy", "--fail-level", "WARNING", var=tmp_path, DJANGO_HTTPS="1",
        DJANGO_ALLOWED_HOSTS="prefhub.example.com",
    )  # fmt: skip
    assert checked.returncode == 0, checked.stderr
    assert "no issues" in checked.stdout
    plain = manage("check", "--deploy", var=tmp_path)
    assert "security.W004" in plain.stderr  # without DJANGO_HTTPS, HSTS is off and said so


def test_static_files_and_the_api_docs_are_served_with_debug_off(
    project, annotator, lead, client, settings
):
    assert not settings.DEBUG
    page = logged_in(annotator).get(f"/projects/{project.pk}/annotate/")
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy.split("style-src")[0]
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', page.content.decode())
    assert any(a.endswith(".js") for a in assets) and any(a.endswith(".css") for a in assets)
    for asset in assets:
        served = client.get(asset)
        assert served.status_code == 200, asset
        assert b"".join(served.streaming_content)

    assert client.get("/api/schema/").status_code in (401, 403)
    docs = logged_in(lead).get("/api/docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "cdn" not in html.lower() and "<script>" not in html  # no inline script, no CDN
    bundle = html.split('src="')[1].split('"')[0]
    assert bundle.startswith("/static/drf_spectacular_sidecar/")
    assert client.get(bundle).status_code == 200


def test_demo_logins_only_on_request(db):
    with pytest.raises(CommandError, match="--yes-demo"):
        call_command("seed_demo")
    from django.contrib.auth import get_user_model

    assert not get_user_model().objects.exists()


def test_logins_are_throttled_per_username_and_address(annotator, client, settings):
    from tests.factories import PASSWORD

    wrong = {"username": annotator.username, "password": "not-it"}
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert client.post("/accounts/login/", wrong).status_code == 200  # the form again
    refused = client.post("/accounts/login/", wrong)
    assert refused.status_code in (403, 429)
    right = client.post("/accounts/login/", {"username": annotator.username, "password": PASSWORD})
    assert right.status_code in (403, 429), "locked out: even the right password is refused"
    assert "_auth_user_id" not in client.session
    call_command("axes_reset")
    right = client.post("/accounts/login/", {"username": annotator.username, "password": PASSWORD})
    assert right.status_code == 302 and client.session["_auth_user_id"] == str(annotator.pk)


def debug_error_page(request) -> str:
    """The page DJANGO_DEBUG=1 answers with when a view raises while answering `request`."""
    from django.views.debug import technical_500_response

    try:
        raise ValueError("a view failed")
    except ValueError as exc:
        return technical_500_response(request, type(exc), exc, exc.__traceback__).content.decode()


def test_the_debug_error_page_hides_secrets_kept_under_other_names(rf, settings):
    """DJANGO_DEBUG=1's error page lists the settings and the request's variables (under
    runserver, the whole environment): a provider's client secret and a URL's password are
    hidden there, as keys and passwords are."""
    settings.DEBUG = True
    settings.CELERY_BROKER_URL = "redis://:broker-pw-81@127.0.0.1:6379/0"
    oidc = '[{"id": "corp", "name": "Corp", "secret": "oidc-secret-42"}]'
    database = "postgres://u:db-pw-17@db/prefhub"
    page = debug_error_page(rf.get("/", OIDC_PROVIDERS=oidc, DATABASE_URL=database))
    assert "a view failed" in page and "OIDC_PROVIDERS" in page and "CELERY_BROKER_URL" in page
    for secret in ("oidc-secret-42", "db-pw-17", "broker-pw-81"):
        assert secret not in page
