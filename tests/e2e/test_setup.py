"""Setting a project up in a real headless Chromium at 1366x768, without the Django admin."""

import pytest

from annotation.models import Membership, Project
from tests.e2e.conftest import wait_until
from tests.e2e.test_annotate import log_in
from tests.factories import MembershipFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_lead_starts_a_project_writes_guidelines_and_adds_people(live_server, page):
    MembershipFactory(user__username="lee", role=Membership.Role.LEAD)
    UserFactory(username="ann", email="ann@example.org")
    page.set_viewport_size({"width": 1366, "height": 768})
    log_in(page, live_server, "lee")

    page.click("#new-project")
    page.fill("#id_name", "Harmlessness")
    page.fill("#id_annotators_per_pair", "2")
    page.fill("#id_guidelines", "Prefer the **safer** answer. <img src=x onerror=alert(1)>")
    wait_until(page, "() => !!document.querySelector('#guidelines-preview strong')")
    assert "<strong>safer</strong>" in page.inner_html("#guidelines-preview")
    # Raw HTML shows as text, as it does to annotators; no element is made of it.
    assert page.query_selector("#guidelines-preview img") is None
    assert "<img src=x" in page.inner_text("#guidelines-preview")
    page.fill("#id_criteria", "Harmless\n\nHonest")
    wait_until(page, "() => document.querySelectorAll('#criteria-preview li').length === 2")
    page.click("#save-settings")
    page.wait_for_selector("text=Created Harmlessness")

    page.fill("#add-member input[name=user]", "ann@example.org")
    page.click("#add-member button")
    page.wait_for_selector("text=Added ann as annotator")
    assert "ann@example.org" in page.inner_text("#members table")

    page.fill("#id_annotators_per_pair", "3")
    page.click("#save-settings")
    page.wait_for_selector("text=Saved: annotators per pair.")

    project = Project.objects.get(name="Harmlessness")
    assert project.annotators_per_pair == 3 and "**safer**" in project.guidelines
    roles = set(project.memberships.values_list("user__username", "role"))
    assert roles == {("lee", "lead"), ("ann", "annotator")}
