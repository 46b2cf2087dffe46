"""Setting a project up in the app: admins create projects, leads change settings and people."""

from datetime import timedelta

import pytest
from django.forms.models import model_to_dict

from annotation.labelling.services import assignment_next
from annotation.models import Assignment, Membership, PairConsensus, Project
from annotation.projects.forms import ProjectSettingsForm
from tests.annotation.test_consensus import vote
from tests.conftest import logged_in
from tests.factories import MembershipFactory, PairFactory, UserFactory


def settings_fields(project: Project, **changes) -> dict:
    """The settings form as the page posts it, with some fields changed."""
    names = ProjectSettingsForm.Meta.fields
    fields = {name: value for name, value in model_to_dict(project, names).items()}
    fields["assignment_timeout"] = int(project.assignment_timeout.total_seconds() // 60)
    fields["retrain_after_labels"] = fields["retrain_after_labels"] or ""
    fields.update(changes, action="settings")
    return {name: value for name, value in fields.items() if value is not False}


def test_an_admin_creates_a_project_and_annotators_cannot(admin_user, annotator):
    assert logged_in(annotator).get("/projects/new/").status_code == 403
    assert 'id="new-project"' not in logged_in(annotator).get("/").content.decode()
    client = logged_in(admin_user)
    assert 'id="new-project"' in client.get("/").content.decode()
    blank = client.get("/projects/new/").content.decode()
    assert 'name="assignment_timeout" value="30"' in blank  # the defaults, ready to submit
    answer = client.post(
        "/projects/new/",
        settings_fields(
            Project(name="Harmlessness"), annotators_per_pair=5, assignment_timeout=45,
            guidelines="Prefer the **safer** answer.",
        ),
    )  # fmt: skip
    created = Project.objects.get(name="Harmlessness")
    assert answer.status_code == 302 and answer.url == f"/projects/{created.pk}/settings/#members"
    assert created.annotators_per_pair == 5
    assert created.assignment_timeout == timedelta(minutes=45)
    assert not created.memberships.exists()  # admins see every project without joining


def test_a_lead_who_starts_a_project_leads_it(lead):
    answer = logged_in(lead).post("/projects/new/", settings_fields(Project(name="Second")))
    created = Project.objects.get(name="Second")
    assert answer.status_code == 302
    assert list(created.memberships.values_list("user__username", "role")) == [("lea", "lead")]


def test_a_lead_changes_settings_and_bad_values_change_nothing(project, lead):
    client = logged_in(lead)
    url = f"/projects/{project.pk}/settings/"
    page = client.get(url).content.decode()
    assert "Annotators per pair (k)" in page and "goes back to the pool after" in page
    saved = client.post(
        url, settings_fields(project, annotators_per_pair=2, allow_ties=False, gold_rate=0.1)
    )
    assert saved.status_code == 302
    assert "Saved: annotators per pair, allow ties, gold rate." in client.get(url).content.decode()
    project.refresh_from_db()
    assert (project.annotators_per_pair, project.allow_ties, project.gold_rate) == (2, False, 0.1)

    bad = client.post(
        url, settings_fields(project, annotators_per_pair=0, healthy_agreement=1.5, name="")
    )
    shown = bad.content.decode()
    assert bad.status_code == 400
    assert "greater than or equal to 1" in shown and "less than or equal to 1.0" in shown
    assert "This field is required" in shown
    project.refresh_from_db()
    assert (project.name, project.annotators_per_pair, project.healthy_agreement) == (
        "Helpfulness", 2, 0.7,
    )  # fmt: skip


def test_settings_show_figures_rounded_and_an_unchanged_save_keeps_them_exact(project, lead):
    client = logged_in(lead)
    url = f"/projects/{project.pk}/settings/"
    assert project.hard_below_agreement == 2 / 3
    page = client.get(url).content.decode()
    assert 'name="hard_below_agreement" value="0.667"' in page
    assert "0.6666" not in page
    assert 'name="healthy_agreement" value="0.7"' in page
    sent = settings_fields(project, hard_below_agreement="0.667")  # as the page shows it
    assert client.post(url, sent).status_code == 302
    assert "Nothing changed." in client.get(url).content.decode()
    project.refresh_from_db()
    assert project.hard_below_agreement == 2 / 3  # a 2:1 vote is still not hard
    client.post(url, settings_fields(project, hard_below_agreement="0.6"))
    project.refresh_from_db()
    assert project.hard_below_agreement == 0.6
    blank = logged_in(lead).get("/projects/new/").content.decode()
    assert 'name="hard_below_agreement" value="0.667"' in blank


def test_a_lead_is_offered_no_change_to_their_own_membership(project, lead, annotator):
    page = logged_in(lead).get(f"/projects/{project.pk}/settings/").content.decode()
    own = page.split('id="member-lea"')[1].split("</tr>")[0]
    other = page.split('id="member-ann"')[1].split("</tr>")[0]
    assert "Remove" not in own and "data-confirm" not in own and "<select" not in own
    assert ">Lead<" in own and ">you<" in own
    assert ">Remove</button>" in other and 'name="role"' in other


def test_an_admin_may_change_their_own_membership(project, admin_user):
    MembershipFactory(project=project, user=admin_user, role=Membership.Role.LEAD)
    page = logged_in(admin_user).get(f"/projects/{project.pk}/settings/").content.decode()
    own = page.split('id="member-root"')[1].split("</tr>")[0]
    assert ">Remove</button>" in own


def test_a_new_difficulty_rule_regrades_labelled_pairs(
    project, lead, eager, django_capture_on_commit_callbacks
):
    people = [MembershipFactory(project=project).user for _ in range(2)]
    pair = PairFactory(project=project)
    for person in people:
        vote(project, person, "a", strength=2)
    assert PairConsensus.objects.get(pair=pair).difficulty == "easy"  # unanimous at 2 >= 2.0
    client = logged_in(lead)
    url = f"/projects/{project.pk}/settings/"
    with django_capture_on_commit_callbacks(execute=True) as sent:
        saved = client.post(url, settings_fields(project, easy_min_strength=2.5), follow=True)
    assert len(sent) == 1  # the re-grade went to a worker (inline here)
    assert "A worker is re-grading the labelled pairs" in saved.content.decode()
    assert PairConsensus.objects.get(pair=pair).difficulty == "medium"
    project.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True) as sent:
        client.post(url, settings_fields(project, healthy_agreement=0.8))
    assert sent == []  # other settings leave the grades alone
    refused = client.post(url, settings_fields(project, easy_min_strength=0.5))
    assert "Easy pairs need at least the strength" in refused.content.decode()


def test_a_lead_adds_changes_and_removes_members(project, lead):
    client = logged_in(lead)
    url = f"/projects/{project.pk}/settings/"
    UserFactory(username="newcomer", email="new@example.org")
    UserFactory(username="second")
    added = client.post(url, {"action": "add", "user": "NEW@example.org", "role": "annotator"})
    assert added.status_code == 302
    client.post(url, {"action": "add", "user": "second", "role": "lead"})
    roles = dict(Membership.objects.filter(project=project).values_list("user__username", "role"))
    assert roles == {"lea": "lead", "newcomer": "annotator", "second": "lead"}

    for who, message in (("nobody", "No active account has"), ("second", "in the project")):
        refused = client.post(url, {"action": "add", "user": who, "role": "annotator"})
        assert refused.status_code == 400 and message in refused.content.decode()

    newcomer = Membership.objects.get(project=project, user__username="newcomer")
    PairFactory(project=project)
    held = assignment_next(project=project, annotator=newcomer.user)
    client.post(url, {"action": "role", "membership": newcomer.pk, "role": "lead"})
    assert Membership.objects.get(pk=newcomer.pk).role == "lead"
    client.post(url, {"action": "remove", "membership": newcomer.pk})
    assert not Membership.objects.filter(pk=newcomer.pk).exists()
    held.refresh_from_db()
    assert held.state == Assignment.State.EXPIRED and held.pair.slots_taken == 0

    own = Membership.objects.get(project=project, user=lead)
    answer = client.post(url, {"action": "remove", "membership": own.pk}, follow=True)
    assert "You cannot change your own membership" in answer.content.decode()
    assert Membership.objects.filter(pk=own.pk).exists()


@pytest.mark.parametrize("method", ["get", "post"])
def test_annotators_and_outsiders_cannot_reach_settings(project, annotator, outsider, method):
    for person in (annotator, outsider):
        answer = getattr(logged_in(person), method)(
            f"/projects/{project.pk}/settings/", {"action": "add", "user": "ann", "role": "lead"}
        )
        assert answer.status_code == 404
    assert Membership.objects.get(user=annotator).role == "annotator"


def test_the_guidelines_preview_is_inert(lead):
    client = logged_in(lead)
    html = client.post(
        "/markdown-preview/", {"text": "**Be kind** <script>alert(1)</script>"}
    ).json()["html"]
    assert "<strong>Be kind</strong>" in html and "<script>" not in html
    assert client.get("/markdown-preview/").status_code == 405


def test_odd_posts_and_short_timeouts(project, lead):
    client = logged_in(lead)
    url = f"/projects/{project.pk}/settings/"
    for value in ("abc", "1.5", ""):
        assert client.post(url, {"action": "remove", "membership": value}).status_code == 404
    project.assignment_timeout = timedelta(seconds=20)  # set elsewhere, below a minute
    project.save()
    assert 'value="0.3333' in client.get(url).content.decode()
    saved = client.post(url, settings_fields(project, assignment_timeout="0.5", gold_rate=0.2))
    assert saved.status_code == 302
    project.refresh_from_db()
    assert project.assignment_timeout == timedelta(seconds=30) and project.gold_rate == 0.2
