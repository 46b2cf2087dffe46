"""API tokens people manage themselves: made on the account page, through the API and with
`createtoken`; stored hashed and shown once; expiring, revocable, noted when used; and the
plain-text tokens of earlier versions turned into hashed ones that keep working."""

import hashlib
import importlib
import io
import re
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.apps import apps
from django.contrib.contenttypes.models import ContentType
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from annotation.accounts import tokens
from annotation.models import ActivityEntry, ApiToken
from tests.conftest import client_for, logged_in
from tests.factories import api_token

NEW_TOKEN = re.compile(r'<code id="new-token">([^<]+)</code>')


def make_on_page(user, name="ci", **extra):
    """Make a token on `user`'s account page: the answer and the secret it shows."""
    answer = logged_in(user).post("/account/", {"action": "create", "name": name, **extra})
    found = NEW_TOKEN.search(answer.content.decode())
    return answer, found.group(1) if found else None


def by_token(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {secret}")
    return client


def test_a_token_is_stored_hashed_and_its_secret_nowhere(annotator):
    answer, secret = make_on_page(annotator, "nightly import")
    assert answer.status_code == 200 and secret
    row = ApiToken.objects.get(user=annotator)
    assert row.digest == hashlib.sha512(secret.encode()).hexdigest()
    stored = [str(value) for value in ApiToken.objects.values_list().get()]
    assert not any(secret in value for value in stored), "the secret is in the row"
    assert secret not in str(row) and row.digest not in str(row)
    entry = ActivityEntry.objects.get(kind=ActivityEntry.Kind.TOKEN_CREATED)
    assert not any(secret in str(value) for value in vars(entry).values())


def test_the_secret_is_shown_once_and_never_cached(annotator):
    client = logged_in(annotator)
    answer = client.post("/account/", {"action": "create", "name": "ci"})
    secret = NEW_TOKEN.search(answer.content.decode()).group(1)
    assert "no-store" in answer["Cache-Control"]
    assert "not shown again" in answer.content.decode()
    again = client.get("/account/")
    assert again.status_code == 200 and "no-store" in again["Cache-Control"]
    assert secret not in again.content.decode() and "ci" in again.content.decode()
    assert not any(secret in str(value) for value in client.session.values())


def test_a_token_authenticates_the_api_as_its_owner(project, annotator):
    listed = by_token(api_token(annotator)).get("/api/projects/")
    assert listed.status_code == 200
    assert [p["name"] for p in listed.json()["results"]] == [project.name]


def test_an_expired_token_is_refused_with_a_message_and_stays_listed(annotator):
    secret = api_token(annotator, "old")
    ApiToken.objects.update(expiry=timezone.now() - timedelta(seconds=1))
    refused = by_token(secret).get("/api/projects/")
    assert refused.status_code == 401 and refused["WWW-Authenticate"] == "Token"
    assert "expired" in refused.json()["detail"] and "'old'" in refused.json()["detail"]
    page = logged_in(annotator).get("/account/").content.decode()
    assert "expired" in page and "old" in page


@pytest.mark.parametrize("header", ["Token 0123456789abcdef", "Token \xe9\xff", "Token a b"])
def test_a_wrong_token_is_a_401_with_a_message(db, header):
    refused = APIClient().get("/api/projects/", HTTP_AUTHORIZATION=header)
    assert refused.status_code == 401 and refused.json()["detail"]


def test_a_revoked_token_is_refused(annotator):
    secret = api_token(annotator, "ci")
    client = logged_in(annotator)
    page = client.get("/account/").content.decode()
    assert 'data-confirm="Revoke the token ci?' in page
    row = ApiToken.objects.get()
    answer = client.post("/account/", {"action": "revoke", "token": row.pk}, follow=True)
    assert "Revoked &#x27;ci&#x27;" in answer.content.decode()
    assert not ApiToken.objects.exists()
    refused = by_token(secret).get("/api/projects/")
    assert refused.status_code == 401 and "revoked" in refused.json()["detail"]


def test_a_person_cannot_revoke_anothers_token_but_an_admin_can(
    annotator, other_annotator, admin_user
):
    api_token(other_annotator, "bob's")
    theirs = ApiToken.objects.get()
    assert client_for(annotator).delete(f"/api/tokens/{theirs.pk}/").status_code == 404
    logged_in(annotator).post("/account/", {"action": "revoke", "token": theirs.pk})
    for wrong in ("x", 2**70, -1):
        assert client_for(annotator).delete(f"/api/tokens/{wrong}/").status_code == 404
        logged_in(annotator).post("/account/", {"action": "revoke", "token": wrong})
    assert ApiToken.objects.filter(pk=theirs.pk).exists()
    assert client_for(admin_user).delete(f"/api/tokens/{theirs.pk}/").status_code == 204
    entry = ActivityEntry.objects.get(kind=ActivityEntry.Kind.TOKEN_REVOKED)
    assert entry.actor == admin_user and "of bob" in entry.summary


def test_only_admins_make_tokens_that_never_expire(annotator, admin_user, settings):
    settings.API_TOKEN_DAYS = 7
    assert "Never expires" not in logged_in(annotator).get("/account/").content.decode()
    make_on_page(annotator, "ci", never_expires="on")  # not on the form: ignored
    expiry = ApiToken.objects.get(user=annotator).expiry
    assert abs(expiry - (timezone.now() + timedelta(days=7))) < timedelta(minutes=1)
    refused = client_for(annotator).post(
        "/api/tokens/", {"name": "forever", "never_expires": True}, format="json"
    )
    assert refused.status_code == 400 and tokens.NO_EXPIRY_FOR_ADMINS in str(refused.json())
    with pytest.raises(CommandError, match="Only admins"):
        call_command("createtoken", "ann", "--name", "forever", "--no-expiry", stdout=io.StringIO())

    assert "Never expires" in logged_in(admin_user).get("/account/").content.decode()
    make_on_page(admin_user, "service", never_expires="on")
    assert ApiToken.objects.get(user=admin_user).expiry is None


def test_names_are_required_short_and_unique_among_live_tokens(annotator, monkeypatch):
    api_token(annotator, "ci")
    for name, problem in [("", "required"), ("x" * 65, "at most 64"), ("CI", "already have")]:
        answer, secret = make_on_page(annotator, name)
        assert answer.status_code == 400 and secret is None
        assert problem in answer.content.decode(), name
    ApiToken.objects.update(expiry=timezone.now() - timedelta(days=1))
    assert make_on_page(annotator, "ci")[1], "an expired token's name is free again"
    monkeypatch.setattr(tokens, "MAX_LIVE", 2)
    api_token(annotator, "two")
    answer = client_for(annotator).post("/api/tokens/", {"name": "three"}, format="json")
    assert answer.status_code == 400 and "revoke one first" in str(answer.json())


def test_last_use_is_noted_at_most_once_a_minute(annotator):
    client = by_token(api_token(annotator))

    def writes() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get("/api/labels/mine/").status_code == 200
        return sum('UPDATE "annotation_apitoken"' in q["sql"] for q in queries.captured_queries)

    assert ApiToken.objects.get().last_used_at is None
    assert writes() == 1
    first = ApiToken.objects.get().last_used_at
    assert first is not None
    assert [writes() for _ in range(5)] == [0] * 5
    ApiToken.objects.update(last_used_at=first - timedelta(minutes=2))
    assert writes() == 1 and ApiToken.objects.get().last_used_at > first
    page = logged_in(annotator).get("/account/").content.decode()
    assert timezone.localtime(ApiToken.objects.get().last_used_at).strftime("%Y-%m-%d") in page


def test_createtoken_prints_a_working_token_last(project, annotator, settings):
    out = io.StringIO()
    call_command("createtoken", "ann", "--name", "ci", "--days", "5", stdout=out)
    last = out.getvalue().strip().splitlines()[-1]
    secret = last.rsplit(" ", 1)[-1]
    expiry = ApiToken.objects.get().expiry
    assert last == f"Token for ann (ci, expires {expiry:%Y-%m-%d}): {secret}"
    assert abs(expiry - (timezone.now() + timedelta(days=5))) < timedelta(minutes=1)
    assert by_token(secret).get("/api/projects/").status_code == 200
    entry = ActivityEntry.objects.get(kind=ActivityEntry.Kind.TOKEN_CREATED)
    assert (entry.actor, entry.via, entry.summary) == (annotator, "command", "Token 'ci'")
    with pytest.raises(CommandError, match="No user named 'nobody'"):
        call_command("createtoken", "nobody", "--name", "ci", stdout=io.StringIO())
    with pytest.raises(CommandError, match="already have a token named 'ci'"):
        call_command("createtoken", "ann", "--name", "ci", stdout=io.StringIO())
    days = str(settings.API_TOKEN_DAYS + 1)
    with pytest.raises(CommandError, match="only admins"):
        call_command("createtoken", "ann", "--name", "long", "--days", days, stdout=io.StringIO())


def test_the_api_lists_makes_and_revokes_ones_own_tokens(annotator, other_annotator):
    api_token(other_annotator, "theirs")
    client = logged_in(annotator)  # the session, as the Swagger UI sends it
    made = client.post("/api/tokens/", {"name": "ci"}, content_type="application/json")
    assert made.status_code == 201 and made["Cache-Control"] == "no-store"
    body = made.json()
    assert set(body) == {"id", "name", "created", "last_used_at", "expiry", "token"}
    listed = client.get("/api/tokens/").json()["results"]
    assert [(t["name"], "token" in t) for t in listed] == [("ci", False)]
    with_token = by_token(body["token"])
    refused = with_token.post("/api/tokens/", {"name": "more"}, format="json")
    assert refused.status_code == 403 and "account page" in refused.json()["detail"]
    for bad in ({}, {"name": "x" * 65}, {"name": "ok", "never_expires": "perhaps"}):
        answer = client.post("/api/tokens/", bad, content_type="application/json")
        assert answer.status_code == 400 and answer.json(), bad
    assert with_token.delete(f"/api/tokens/{body['id']}/").status_code == 204
    assert with_token.get("/api/tokens/").status_code == 401
    schema = client.get("/api/schema/").content.decode()
    assert "/api/tokens/{id}/" in schema and "tokenAuth" in schema


def test_creating_and_revoking_are_in_the_activity_log(annotator):
    make_on_page(annotator, "ci")
    row = ApiToken.objects.get()
    logged_in(annotator).post("/account/", {"action": "revoke", "token": row.pk})
    kinds = [ActivityEntry.Kind.TOKEN_CREATED, ActivityEntry.Kind.TOKEN_REVOKED]
    entries = ActivityEntry.objects.filter(kind__in=kinds).order_by("id")
    assert [(e.kind, e.actor, e.via, e.summary) for e in entries] == [
        (ActivityEntry.Kind.TOKEN_CREATED, annotator, "web", "Token 'ci'"),
        (ActivityEntry.Kind.TOKEN_REVOKED, annotator, "web", "Token 'ci'"),
    ]
    assert {e.target_id for e in entries} == {str(row.pk)}
    assert entries[0].target_repr == "ci (ann)"


def test_the_migration_turns_an_old_plain_token_into_a_hashed_one_that_works(project, annotator):
    """What 0012_api_tokens does on a database of an earlier version: the old table, as
    Django REST framework's authtoken app made it, holding a key in plain text."""
    migration = importlib.import_module("annotation.migrations.0012_api_tokens")
    key, made = "0f" * 20, timezone.now() - timedelta(days=400)
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE {quote('authtoken_token')} ({quote('key')} varchar(40) PRIMARY KEY, "
            f"{quote('created')} timestamp with time zone NOT NULL, "
            f"{quote('user_id')} integer NOT NULL UNIQUE)"
        )
        cursor.execute(
            f"INSERT INTO {quote('authtoken_token')} VALUES (%s, %s, %s)", [key, made, annotator.pk]
        )
        cursor.execute(
            "INSERT INTO django_migrations (app, name, applied) VALUES (%s, %s, %s)",
            ["authtoken", "0001_initial", made],
        )
    ContentType.objects.create(app_label="authtoken", model="token")

    migration.hash_drf_tokens(apps, SimpleNamespace(connection=connection))

    assert "authtoken_token" not in connection.introspection.table_names()
    row = ApiToken.objects.get()
    assert (row.user, row.name, row.expiry, row.created) == (annotator, "migrated", None, made)
    assert key not in str(list(ApiToken.objects.values_list().get()))
    assert by_token(key).get("/api/projects/").status_code == 200
    assert by_token(key[:-1] + "e").get("/api/projects/").status_code == 401
    assert not ContentType.objects.filter(app_label="authtoken").exists()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM django_migrations WHERE app = 'authtoken'")
        assert cursor.fetchone() == (0,)
    migration.hash_drf_tokens(apps, SimpleNamespace(connection=connection))  # nothing left
    assert ApiToken.objects.count() == 1


def test_admins_see_and_revoke_peoples_tokens_in_the_admin(annotator, admin_user):
    api_token(annotator, "ci")
    row = ApiToken.objects.get()
    client = logged_in(admin_user)
    listed = client.get("/admin/annotation/apitoken/")
    assert listed.status_code == 200 and "ci" in listed.content.decode()
    assert client.get("/admin/annotation/apitoken/add/").status_code == 403
    action = {"action": "delete_selected", "_selected_action": [row.pk], "post": "yes"}
    assert client.post("/admin/annotation/apitoken/", action).status_code == 302
    assert not ApiToken.objects.exists()
    entry = ActivityEntry.objects.get(kind=ActivityEntry.Kind.TOKEN_REVOKED)
    assert entry.actor == admin_user and entry.summary == "Token 'ci' of ann"
