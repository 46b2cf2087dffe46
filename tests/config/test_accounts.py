"""Password resets: with EMAIL_URL set, the reset mail goes out through that SMTP server (a
real one on 127.0.0.1 here); with none, the page says that an admin sets new passwords, and
nothing is sent."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from django.core import mail

from tests.factories import UserFactory

ROOT = Path(__file__).resolve().parents[2]
ASK_FOR_A_RESET = """
from django.test import Client
page = Client().post("/accounts/password_reset/", {"email": "ann@example.org"}, follow=True)
print("status", page.status_code, page.content.decode())
"""


class Inbox:
    def __init__(self):
        self.mails = []

    async def handle_DATA(self, server, session, envelope):
        self.mails.append(envelope)
        return "250 OK"


@pytest.fixture
def smtp_server():
    with socket.socket() as probe:  # a free port: aiosmtpd wants a number, not 0
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    inbox.port = port
    yield inbox
    controller.stop()


def ask_for_a_reset(tmp_path, **env) -> str:
    """The reset page, asked in a fresh process whose settings come from `env`."""
    from tests.workers.conftest import database_url

    clean = {k: v for k, v in os.environ.items() if not k.startswith(("EMAIL_", "DJANGO_"))}
    clean.update(PREFHUB_VAR_DIR=str(tmp_path), DATABASE_URL=database_url(),
                 DJANGO_ALLOWED_HOSTS="testserver", **env)  # fmt: skip
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", ASK_FOR_A_RESET], cwd=ROOT, env=clean,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.django_db(transaction=True)  # the other process reads the user
def test_with_email_url_the_reset_mail_goes_out_through_its_server(
    on_postgres, tmp_path, smtp_server
):
    UserFactory(username="ann", email="ann@example.org")
    url = f"smtp://127.0.0.1:{smtp_server.port}"
    page = ask_for_a_reset(tmp_path, EMAIL_URL=url, DEFAULT_FROM_EMAIL="desk@prefhub.test")
    assert "status 200" in page and "changepassword" not in page
    (sent,) = smtp_server.mails
    assert sent.mail_from == "desk@prefhub.test" and sent.rcpt_tos == ["ann@example.org"]
    assert "/accounts/reset/" in sent.content.decode()  # the link that sets a new password

    without = ask_for_a_reset(tmp_path)
    assert "python manage.py changepassword USERNAME" in without
    assert len(smtp_server.mails) == 1


def test_without_mail_the_reset_page_says_an_admin_resets_passwords(db, client, settings):
    settings.PASSWORD_RESET_BY_MAIL = False  # no EMAIL_URL
    UserFactory(username="ann", email="ann@example.org")
    asked = client.post("/accounts/password_reset/", {"email": "ann@example.org"})
    for page in (client.get("/accounts/password_reset/"), asked):
        shown = page.content.decode()
        assert page.status_code == 200 and "This site sends no mail" in shown
        assert "manage.py changepassword USERNAME" in shown
    assert mail.outbox == []
    assert 'href="/accounts/password_reset/"' in client.get("/accounts/login/").content.decode()
