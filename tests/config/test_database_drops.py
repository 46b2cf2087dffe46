"""PostgreSQL ending every connection (a restart, a failover) under a running web process.

Requests go to Django's own WSGI handler served on one thread, one request at a time, with a
connection kept between requests (CONN_MAX_AGE), as in a gunicorn sync worker; the
connections are ended from another connection with pg_terminate_backend."""

import http.client
import json
import socket
import threading
from wsgiref.simple_server import WSGIRequestHandler, make_server

import psycopg
import pytest
from django.core.wsgi import get_wsgi_application
from django.db import connection, connections, transaction
from django.db.models.signals import post_save, pre_save
from django.test import Client

from annotation.models import Label
from tests.factories import PairFactory, api_token

pytestmark = pytest.mark.django_db(transaction=True)  # the worker's connection sees commits


class QuietHandler(WSGIRequestHandler):
    def log_message(self, *args) -> None:
        pass


class Worker:
    """The site on one thread of its own, with the connection that thread keeps."""

    def __init__(self):
        self.server = make_server(
            "127.0.0.1", 0, get_wsgi_application(), handler_class=QuietHandler
        )
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            self.server.serve_forever(poll_interval=0.05)
        finally:
            connections.close_all()

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(10)
        self.server.server_close()

    def request(self, method: str, path: str, body=None, headers=None):
        """(status, headers, decoded body: JSON when the answer is JSON)."""
        client = http.client.HTTPConnection("127.0.0.1", self.server.server_port, timeout=30)
        payload = None if body is None else json.dumps(body)
        sent = {"Content-Type": "application/json", **(headers or {})}
        client.request(method, path, body=payload, headers=sent)
        response = client.getresponse()
        raw = response.read().decode()
        client.close()
        kind = response.getheader("Content-Type") or ""
        return response.status, response, json.loads(raw) if "json" in kind else raw


@pytest.fixture
def worker(on_postgres):
    assert connection.settings_dict["CONN_MAX_AGE"] > 0  # connections outlive a request
    started = Worker()
    yield started
    started.stop()


@pytest.fixture
def drop_connections(on_postgres):
    """Ends every other connection to this test database (the worker's), from a connection
    of its own; the test's own connection is spared so it can look at the outcome."""
    spared = connection.cursor().connection.info.backend_pid
    params = connection.settings_dict
    killer = psycopg.connect(
        dbname=params["NAME"], host=params["HOST"] or None, port=params["PORT"] or None,
        user=params["USER"] or None, password=params["PASSWORD"] or None, autocommit=True,
    )  # fmt: skip

    def drop() -> int:
        ended = killer.execute(
            "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() AND pid <> %s",
            [spared],
        ).fetchall()
        return sum(1 for (done,) in ended if done)

    yield drop
    killer.close()


@pytest.fixture
def unreachable():
    """Points new connections at a port where nothing listens (the database is down) until
    the returned function is called with False."""
    settings_dict = connection.settings_dict
    port = settings_dict["PORT"]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = str(probe.getsockname()[1])

    def down(is_down: bool = True) -> None:
        settings_dict["PORT"] = closed if is_down else port

    yield down
    settings_dict["PORT"] = port


@pytest.fixture
def token(annotator):
    return {"Authorization": f"Token {api_token(annotator)}"}


@pytest.fixture
def session(annotator):
    client = Client()
    client.force_login(annotator)
    return {"Cookie": f"sessionid={client.cookies['sessionid'].value}"}


@pytest.fixture
def after_first_label_commit():
    """Runs `action` right after the first label's transaction commits, on the worker's
    thread: between the label being stored and the rest of the request."""
    actions = []

    def on_label(sender, instance, created, **kwargs):
        if created and actions:
            transaction.on_commit(actions.pop())

    post_save.connect(on_label, sender=Label, dispatch_uid="after-first-label-commit")
    yield actions.append
    post_save.disconnect(dispatch_uid="after-first-label-commit", sender=Label)


LABEL = {"choice": "left", "strength": 2, "rationale": "clearer", "next": True}


def first_assignment(worker, project, token) -> int:
    status, _, shown = worker.request("POST", f"/api/projects/{project.pk}/next/", headers=token)
    assert status == 200
    return shown["id"]


def test_the_first_request_after_the_connections_drop_is_served(
    worker, drop_connections, project, token, session
):
    PairFactory.create_batch(2, project=project)
    assert worker.request("GET", "/api/projects/", headers=token)[0] == 200
    for _ in range(3):
        assert drop_connections() >= 1  # the worker's kept connection
        status, _, body = worker.request("GET", "/api/projects/", headers=token)
        assert status == 200 and body["results"][0]["name"] == project.name
        assert drop_connections() >= 1
        status, _, page = worker.request("GET", "/", headers=session)
        assert status == 200 and project.name in page


def test_a_label_stored_before_the_connection_drops_is_answered_as_stored(
    worker, drop_connections, after_first_label_commit, project, token
):
    PairFactory.create_batch(3, project=project)
    assignment = first_assignment(worker, project, token)
    after_first_label_commit(drop_connections)

    status, _, body = worker.request(
        "POST", f"/api/assignments/{assignment}/label/", LABEL, headers=token
    )
    assert status == 201
    assert (body["choice"], body["strength"]) == ("left", 2)
    assert body["next"]["id"] != assignment  # read again on a fresh connection
    label = Label.objects.get()
    assert (label.assignment_id, label.strength, label.rationale) == (assignment, 2, "clearer")

    # A client that lost that answer sends the label again: it is answered as stored, once.
    status, _, again = worker.request(
        "POST", f"/api/assignments/{assignment}/label/", LABEL, headers=token
    )
    assert status == 201 and (again["choice"], again["strength"]) == ("left", 2)
    assert again["next"]["id"] == body["next"]["id"]
    assert Label.objects.count() == 1


def test_a_label_whose_transaction_the_drop_cut_short_is_stored_on_a_fresh_connection(
    worker, drop_connections, project, token
):
    PairFactory.create_batch(2, project=project)
    assignment = first_assignment(worker, project, token)
    dropped = []

    def drop_once(sender, **kwargs):
        if not dropped:
            dropped.append(drop_connections())  # inside the label's transaction

    pre_save.connect(drop_once, sender=Label, dispatch_uid="drop-during-label")
    try:
        status, _, body = worker.request(
            "POST", f"/api/assignments/{assignment}/label/", LABEL, headers=token
        )
    finally:
        pre_save.disconnect(sender=Label, dispatch_uid="drop-during-label")
    assert dropped and dropped[0] >= 1
    assert status == 201 and body["next"]["id"] != assignment
    assert Label.objects.get().assignment_id == assignment


def test_while_the_database_is_down_requests_answer_503_with_retry_after(
    worker, drop_connections, unreachable, project, token, session
):
    assert worker.request("GET", "/api/projects/", headers=token)[0] == 200
    unreachable()
    drop_connections()
    status, response, body = worker.request("GET", "/api/projects/", headers=token)
    assert status == 503 and int(response.getheader("Retry-After")) > 0
    assert "database" in body["detail"]
    status, response, page = worker.request("GET", "/", headers=session)
    assert status == 503 and int(response.getheader("Retry-After")) > 0
    assert "text/html" in response.getheader("Content-Type")
    assert "database" in page and "Try again" in page

    unreachable(False)
    assert worker.request("GET", "/api/projects/", headers=token)[0] == 200


def test_a_label_stored_just_before_the_database_goes_down_is_answered_as_stored(
    worker, drop_connections, unreachable, after_first_label_commit, project, token
):
    PairFactory.create_batch(3, project=project)
    assignment = first_assignment(worker, project, token)

    def go_down():
        unreachable()
        drop_connections()

    after_first_label_commit(go_down)
    status, _, body = worker.request(
        "POST", f"/api/assignments/{assignment}/label/", LABEL, headers=token
    )
    assert status == 201 and (body["choice"], body["strength"]) == ("left", 2)
    assert "next" not in body and "saved" in body["detail"].lower()
    assert Label.objects.count() == 1

    # Back up: the page asks for the next pair; sending the label again is harmless too.
    unreachable(False)
    status, _, again = worker.request(
        "POST", f"/api/assignments/{assignment}/label/", LABEL, headers=token
    )
    assert status == 201 and again["next"]["id"] != assignment
    assert Label.objects.count() == 1
