"""One promoted model per project: it serves scoring when no model is named; promotions
and demotions are recorded with who and why."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from rewardmodels.access import promoted_model
from rewardmodels.models import Promotion
from tests.conftest import client_for
from tests.factories import passing_audit


def test_promote_serve_and_demote(reward_model, lead, admin_user, eager):
    project = reward_model.dataset.project
    url = f"/api/projects/{project.pk}/score"
    items = {"items": [{"prompt": "Question 1: name some fruit.", "response": "No. apple"}]}
    none = client_for(lead).post(url, items, format="json")
    assert none.status_code == 409 and "No model is promoted" in none.json()["detail"]

    refused = client_for(lead).post(f"/api/reward-models/{reward_model.pk}/promotion",
                                    {"reason": "best on r2"}, format="json")  # fmt: skip
    assert refused.status_code == 403
    unaudited = client_for(admin_user).post(f"/api/reward-models/{reward_model.pk}/promotion",
                                            {"reason": "best on r2"}, format="json")  # fmt: skip
    assert unaudited.status_code == 400 and "no audit" in str(unaudited.json())
    passing_audit(reward_model)
    made = client_for(admin_user).post(f"/api/reward-models/{reward_model.pk}/promotion",
                                       {"reason": "best on r2"}, format="json")  # fmt: skip
    assert made.status_code == 201 and made.json()["decided_by"] == "root"
    assert promoted_model(project_id=project.pk) == reward_model

    scored = client_for(lead).post(url, items, format="json")
    assert scored.status_code == 200 and scored.json()["model"] == reward_model.identifier
    named = client_for(lead).post(f"/api/reward-models/{reward_model.pk}/score", items,
                                  format="json")  # fmt: skip
    assert named.json()["rewards"] == scored.json()["rewards"]
    ranked = client_for(lead).post(
        f"/api/projects/{project.pk}/best-of-n",
        {"prompt": "Question 1: name some fruit.", "candidates": ["No.", "Gladly! a pear."]},
        format="json",
    )
    assert ranked.status_code == 200 and len(ranked.json()["ranked"]) == 2

    call_command("promote", reward_model.identifier, "--demote", "--reason", "drifted")
    assert promoted_model(project_id=project.pk) is None
    with pytest.raises(CommandError, match="is not the promoted model"):
        call_command("promote", reward_model.identifier, "--demote")
    decisions = list(Promotion.objects.values_list("promoted", "reason"))
    assert decisions == [(False, "drifted"), (True, "best on r2")]


def test_outsiders_and_annotators_learn_nothing(reward_model, annotator, outsider):
    project = reward_model.dataset.project
    for user in (annotator, outsider):
        answer = client_for(user).post(f"/api/projects/{project.pk}/score", {}, format="json")
        assert answer.status_code in (403, 404)
    assert client_for(outsider).post(f"/api/projects/{project.pk}/score", {},
                                     format="json").status_code == 404  # fmt: skip


def test_the_model_page_promotes_for_admins_only(reward_model, lead, admin_user):
    from tests.conftest import logged_in

    page = logged_in(lead).get(f"/models/{reward_model.identifier}/").content.decode()
    assert "No model is promoted in this project." in page and "Promote this model" not in page
    url = f"/models/{reward_model.identifier}/promotion/"
    assert logged_in(lead).post(url, {"reason": "x"}).status_code == 403
    refused = logged_in(admin_user).post(url, {"reason": "fresh data"}, follow=True)
    assert "has no audit on its project&#x27;s held-out data" in refused.content.decode()
    assert not Promotion.objects.exists()
    passing_audit(reward_model)
    done = logged_in(admin_user).post(url, {"reason": "fresh data"})
    assert done.status_code == 302
    page = logged_in(admin_user).get(f"/models/{reward_model.identifier}/").content.decode()
    assert 'id="promoted-badge"' in page and "fresh data" in page and ">Demote<" in page
