"""The reward-model API: who may call it, what bad input gets, and scoring through a worker."""

import pytest

from rewardmodels.services import MAX_SCORE_ITEMS
from tests.conftest import client_for

POLITE = "Gladly! mango pear. I hope that helps, thank you for asking."


def test_scores_come_back_in_order(reward_model, lead, eager):
    items = [
        {"prompt": "Question 1: name some fruit.", "response": "No. apple"},
        {"prompt": "Question 1: name some fruit.", "response": POLITE},
    ]
    answer = client_for(lead).post(
        f"/api/reward-models/{reward_model.pk}/score", {"items": items}, format="json"
    )
    assert answer.status_code == 200, answer.content
    curt, polite = answer.json()["rewards"]
    assert polite > curt and answer.json()["model"] == "rm-1-fruit-v1"


def test_best_of_n_ranks_candidates(reward_model, admin_user, eager):
    body = {"prompt": "Question 2: name some fruit.", "candidates": ["No. plum", POLITE, "No."]}
    answer = client_for(admin_user).post(
        f"/api/reward-models/{reward_model.identifier}/best-of-n", body, format="json"
    )
    assert answer.status_code == 200, answer.content
    ranked = answer.json()["ranked"]
    assert ranked[0] == {**ranked[0], "index": 1, "response": POLITE}
    assert sorted(r["index"] for r in ranked) == [0, 1, 2]
    assert answer.json()["normalize"] == "none"
    per_token = client_for(admin_user).post(
        f"/api/reward-models/{reward_model.pk}/best-of-n",
        {**body, "normalize": "per_token"}, format="json",
    )  # fmt: skip
    assert per_token.status_code == 200
    assert all(
        r["score"] == pytest.approx(r["reward"] / r["tokens"]) for r in per_token.json()["ranked"]
    )


@pytest.mark.parametrize("who", ["annotator", "outsider", None])
def test_only_admins_and_the_projects_leads_may_score(reward_model, request, who):
    user = request.getfixturevalue(who) if who else None
    body = {"items": [{"prompt": "q", "response": "r"}]}
    answer = client_for(user).post(f"/api/reward-models/{reward_model.pk}/score", body,
                                   format="json")  # fmt: skip
    assert answer.status_code in ((404,) if user else (401, 403))
    listed = client_for(user).get("/api/reward-models/")
    assert listed.status_code in (401, 403) or listed.json()["count"] == 0


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "items"),
        ({"items": []}, "items"),
        ({"items": [{"prompt": "q"}]}, "response"),
        ({"items": [{"prompt": "q", "response": ["not", "text"]}]}, "response"),
        ({"items": [{"prompt": "q", "response": "x" * 20_001}]}, "20000"),
        ({"items": [{"prompt": "q", "response": "r"}] * (MAX_SCORE_ITEMS + 1)}, "256"),
        ({"items": [{"prompt": [{"role": "x"}], "response": "r"}]}, "prompt"),
    ],
)
def test_bad_score_requests_get_a_clear_400(reward_model, lead, body, message):
    answer = client_for(lead).post(f"/api/reward-models/{reward_model.pk}/score", body,
                                   format="json")  # fmt: skip
    assert answer.status_code == 400, answer.content
    if message:
        assert message in answer.content.decode()


def test_bad_best_of_n_requests_get_a_clear_400(reward_model, lead):
    url = f"/api/reward-models/{reward_model.pk}/best-of-n"
    client = client_for(lead)
    no_candidates = client.post(url, {"prompt": "q", "candidates": []}, format="json")
    assert no_candidates.status_code == 400 and "candidates" in no_candidates.json()
    wrong = client.post(url, {"prompt": "q", "candidates": ["a"], "normalize": "log"},
                        format="json")  # fmt: skip
    assert wrong.status_code == 400 and "normalize" in wrong.json()
    assert client.post("/api/reward-models/999/best-of-n", {}, format="json").status_code == 404


def test_no_worker_is_a_503_not_a_hang(reward_model, lead, monkeypatch):
    """Nothing serves the gpu queue in this test: the request waits its time, then says so."""
    from rewardmodels import services
    from workers.celery import app

    monkeypatch.setattr(services, "SCORE_TIMEOUT_SECONDS", 1)
    body = {"items": [{"prompt": "q", "response": "r"}]}
    try:
        answer = client_for(lead).post(f"/api/reward-models/{reward_model.pk}/score", body,
                                       format="json")  # fmt: skip
    finally:
        with app.connection_for_write() as connection:
            connection.default_channel.queue_purge("gpu")
    assert answer.status_code == 503 and "No worker" in answer.json()["detail"], answer.json()


def test_the_registry_lists_models_with_their_lineage(reward_model, lead):
    listed = client_for(lead).get("/api/reward-models/").json()["results"]
    assert [m["identifier"] for m in listed] == ["rm-1-fruit-v1"]
    assert listed[0]["dataset"] == "fruit@v1" and listed[0]["held_out"]["accuracy"] == 0.9
