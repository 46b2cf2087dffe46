"""The API's docs and schema, signed out: the docs send a browser to the login page and back,
the schema answers 401 in JSON; signed in, both are there."""

from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client
from django.urls import reverse

from tests.conftest import logged_in
from tests.factories import api_token


@pytest.mark.django_db
def test_signed_out_the_docs_send_you_to_log_in_and_back():
    answer = Client().get("/api/docs/")
    assert answer.status_code == 302
    location = urlsplit(answer.url)
    assert location.path == reverse("login")
    assert parse_qs(location.query)["next"] == ["/api/docs/"]


@pytest.mark.django_db
@pytest.mark.parametrize("query", ["", "?format=json"])
def test_signed_out_the_schema_is_a_401_in_json_not_a_file(query):
    answer = Client().get(f"/api/schema/{query}")
    assert answer.status_code == 401
    assert answer.headers["Content-Type"] == "application/json"
    assert "attachment" not in answer.headers.get("Content-Disposition", "")
    assert answer.headers["WWW-Authenticate"] == "Token"
    assert answer.json() == {"detail": "Authentication credentials were not provided."}


def test_after_logging_in_the_docs_and_the_schema_are_there(lead):
    client = logged_in(lead)
    assert client.get("/api/docs/").status_code == 200
    schema = client.get("/api/schema/")
    assert schema.status_code == 200 and b"/api/projects/{id}/next/" in schema.content
    by_token = Client().get("/api/schema/", HTTP_AUTHORIZATION=f"Token {api_token(lead)}")
    assert by_token.status_code == 200
