"""The activity log: what people do is recorded with who, when, from where, what changed,
never a secret; admins read it all and leads their projects'; page, export and command."""

import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from annotation.models import ActivityEntry, Assignment, Judge, Membership
from annotation.projects.services import membership_add, membership_remove, membership_role_set
from tests.conftest import client_for, logged_in
from tests.factories import PairFactory, ProjectFactory, UserFactory

Kind = ActivityEntry.Kind
KEY = "sk-activity-secret-0123456789"


def kinds() -> list[str]:
    return list(ActivityEntry.objects.order_by("id").values_list("kind", flat=True))


def test_a_label_through_the_api_is_logged_with_person_address_and_pair(project, annotator):
    PairFactory(project=project, external_id="p-1")
    client = client_for(annotator)
    shown = client.post(f"/api/projects/{project.pk}/next/", REMOTE_ADDR="10.1.2.3").json()
    answer = client.post(
        f"/api/assignments/{shown['id']}/label/", {"choice": "left", "strength": 2}, format="json",
        REMOTE_ADDR="10.1.2.3",
    )  # fmt: skip
    assert answer.status_code in (200, 201), answer.content
    entry = ActivityEntry.objects.get(kind=Kind.LABEL_CREATED)
    assert (entry.actor, entry.address, entry.via, entry.project) == (
        annotator,
        "10.1.2.3",
        "api",
        project,
    )
    assert "p-1" in entry.summary


def test_a_forwarded_address_is_believed_only_behind_a_trusted_proxy(settings, db):
    client = Client()
    tries = [("203.0.113.7", False), ("not an address, 1.2.3.4", True), ("203.0.113.7", True)]
    for forwarded, trusted in tries:
        settings.ACTIVITY_TRUST_FORWARDED_FOR = trusted
        client.post("/accounts/login/", {"username": "x", "password": "wrong-pass-1"},
                    REMOTE_ADDR="10.0.0.9", HTTP_X_FORWARDED_FOR=forwarded)  # fmt: skip
    failed = ActivityEntry.objects.filter(kind=Kind.SIGN_IN_FAILED).order_by("id")
    assert [entry.address for entry in failed] == ["10.0.0.9", "10.0.0.9", "203.0.113.7"]


def test_members_settings_and_decisions_are_logged_with_what_changed(project, lead, annotator):
    newcomer = UserFactory(username="newcomer")
    membership = membership_add(project=project, identifier="newcomer", role="annotator")
    membership_role_set(membership=membership, role="lead", actor=lead, actor_is_admin=False)
    membership_remove(membership=membership, actor=lead, actor_is_admin=False)
    client = logged_in(lead)
    response = client.patch(
        f"/api/projects/{project.pk}/", {"annotators_per_pair": 5}, content_type="application/json"
    )
    assert response.status_code == 200, response.content
    pair = PairFactory(project=project)
    api = client_for(lead)
    for url, body in (("adjudication", {"choice": "a"}), ("gold", {"gold_choice": "b"})):
        answer = api.post(f"/api/pairs/{pair.pk}/{url}/", body, format="json")
        assert answer.status_code in (200, 201, 204), answer.content
    ActivityEntry.objects.filter(kind=Kind.SIGNED_IN).delete()
    assert kinds() == [
        Kind.MEMBER_ADDED, Kind.MEMBER_CHANGED, Kind.MEMBER_REMOVED, Kind.PROJECT_CHANGED,
        Kind.ADJUDICATED, Kind.GOLD_SET,
    ]  # fmt: skip
    changed = ActivityEntry.objects.get(kind=Kind.MEMBER_CHANGED)
    assert changed.changes == {"role": ["annotator", "lead"]} and changed.actor == lead
    assert ActivityEntry.objects.get(kind=Kind.PROJECT_CHANGED).changes == {
        "annotators_per_pair": [3, 5]
    }
    assert not Membership.objects.filter(user=newcomer).exists()


def test_a_judges_key_change_reads_changed_and_the_key_is_nowhere(admin_user):
    api = client_for(admin_user)
    made = api.post("/api/judges/", {"name": "j", "base_url": "http://127.0.0.1:9/v1",
                    "model": "m", "api_key": KEY}, format="json")  # fmt: skip
    assert made.status_code == 201, made.content
    pk = made.json()["id"]
    api.patch(f"/api/judges/{pk}/", {"api_key": KEY + "-new", "model": "m2"}, format="json")
    changed = ActivityEntry.objects.get(kind=Kind.JUDGE_CHANGED)
    assert changed.changes["api_key"] == "changed"
    assert changed.changes["model"] == ["m", "m2"]
    assert Judge.objects.filter(pk=pk).exists()
    everything = json.dumps(list(ActivityEntry.objects.values()), default=str)
    assert KEY not in everything


def test_sign_ins_and_failed_sign_ins_are_logged_without_the_password(db):
    UserFactory(username="sam", password="right-horse-battery")
    client = Client()
    client.post("/accounts/login/", {"username": "sam", "password": "wrong-pass-123"})
    client.post("/accounts/login/", {"username": "sam", "password": "right-horse-battery"})
    client.post("/accounts/logout/")
    assert kinds() == [Kind.SIGN_IN_FAILED, Kind.SIGNED_IN, Kind.SIGNED_OUT]
    assert ActivityEntry.objects.get(kind=Kind.SIGN_IN_FAILED).actor_name == "sam"
    assert ActivityEntry.objects.get(kind=Kind.SIGNED_IN).summary == "With password"
    everything = json.dumps(list(ActivityEntry.objects.values()), default=str)
    assert "wrong-pass-123" not in everything and "right-horse-battery" not in everything


def test_nothing_is_logged_while_the_log_is_off(settings, project):
    settings.ACTIVITY_LOG = False
    membership_add(project=project, identifier=UserFactory().username, role="annotator")
    assert not ActivityEntry.objects.exists()


@pytest.fixture
def clients(project, lead, admin_user, annotator) -> dict:
    """Signed in before the entries are made, their sign-ins forgotten."""
    signed_in = {user: logged_in(user) for user in (lead, admin_user, annotator)}
    ActivityEntry.objects.all().delete()
    return signed_in


@pytest.fixture
def two_projects_logged(project, lead, clients):
    other = ProjectFactory(name="Other")
    for target in (project, other):
        for i in range(3):
            ActivityEntry.objects.create(kind=Kind.PROJECT_CHANGED, project=target,
                                         project_name=target.name, actor_name=f"p{i}")  # fmt: skip
    ActivityEntry.objects.create(kind=Kind.JUDGE_CREATED, actor=lead, actor_name="lea")
    return other


def test_admins_read_everything_leads_their_projects_and_their_own(
    two_projects_logged, clients, lead, admin_user, annotator
):
    everything = clients[admin_user].get("/activity/")
    assert everything.content.count(b'class="activity-entry"') == 7
    theirs = clients[lead].get("/activity/")
    assert theirs.content.count(b'class="activity-entry"') == 4
    assert b"Other" not in theirs.content.split(b"<table")[1]
    assert clients[annotator].get("/activity/").status_code == 404
    other = clients[lead].get(f"/activity/?project={two_projects_logged.pk}")
    assert other.status_code == 400 and b"No such project" in other.content


def test_filters_pages_and_the_export_keep_to_the_same_entries(
    two_projects_logged, clients, admin_user
):
    client = clients[admin_user]
    page = client.get("/activity/?person=p1&kind=project.changed")
    assert page.content.count(b'class="activity-entry"') == 2
    bad = client.get("/activity/?since=yesterday")
    assert bad.status_code == 400 and b"YYYY-MM-DD" in bad.content
    from annotation.activity import selectors

    first, before = selectors.entries_page(ActivityEntry.objects.order_by("-id"), before=None,
                                           size=4)  # fmt: skip
    rest, end = selectors.entries_page(ActivityEntry.objects.order_by("-id"), before=before, size=4)
    every_id = sorted(ActivityEntry.objects.values_list("id", flat=True), reverse=True)
    assert [entry.id for entry in first + rest] == every_id
    assert end is None
    export = client.get(f"/activity/export.jsonl?project={two_projects_logged.pk}")
    lines = [json.loads(line) for line in b"".join(export.streaming_content).splitlines()]
    assert len(lines) == 3 and {line["project"] for line in lines} == {"Other"}


def test_the_command_prints_json_filters_and_trims(two_projects_logged, capsys):
    call_command("activity", "--project", "Other", "--json")
    listed = json.loads(capsys.readouterr().out)
    assert len(listed) == 3 and listed[0]["kind"] == "project.changed"
    old = ActivityEntry.objects.create(kind=Kind.SIGNED_IN, actor_name="old")
    ActivityEntry.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=400))
    call_command("activity", "--trim")
    assert "removed 1 entry" in capsys.readouterr().out
    assert not ActivityEntry.objects.filter(pk=old.pk).exists()
    assert ActivityEntry.objects.count() == 7
    assert Assignment.objects.count() == 0  # nothing else touched
