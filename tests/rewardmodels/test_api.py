"""The reward-model API: who may call it, what bad input gets, and scoring through a worker."""

import json
from pathlib import Path

import numpy as np
import pytest

from rewardmodels.scoring.services import MAX_SCORE_ITEMS
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
    assert all(r["score"] == r["reward"] for r in ranked)
    adjusted = client_for(admin_user).post(
        f"/api/reward-models/{reward_model.pk}/best-of-n",
        {**body, "normalize": "length"}, format="json",
    )  # fmt: skip
    assert adjusted.status_code == 200, adjusted.content
    # The slope the trainer saved with the model, subtracted once per response token.
    record = json.loads(Path(reward_model.artifact, "training.json").read_text())
    slope = record["metrics"]["length"]["reward_per_token"]
    assert adjusted.json()["reward_per_token"] == slope and isinstance(slope, float)
    ranked = adjusted.json()["ranked"]
    assert all(r["score"] == pytest.approx(r["reward"] - slope * r["tokens"]) for r in ranked)
    assert [r["score"] for r in ranked] == sorted((r["score"] for r in ranked), reverse=True)


def test_best_of_n_answers_the_picks_length_and_the_candidates_median(
    reward_model, lead, admin_user, eager
):
    from rewardmodels.registry.services import model_promote
    from tests.factories import passing_audit

    body = {"prompt": "Question 2: name some fruit.", "candidates": ["No. plum", POLITE, "No."]}
    answer = (
        client_for(lead)
        .post(f"/api/reward-models/{reward_model.pk}/best-of-n", body, format="json")
        .json()
    )
    tokens = {r["index"]: r["tokens"] for r in answer["ranked"]}
    assert tokens[2] < tokens[0] < tokens[1]  # "No." < "No. plum" < the polite answer
    assert answer["ranked"][0]["index"] == 1  # the polite answer wins
    assert answer["chosen_tokens"] == tokens[1]
    assert answer["median_tokens"] == tokens[0]  # the middle one of three
    passing_audit(reward_model)
    model_promote(reward_model=reward_model, user=admin_user)
    project = reward_model.dataset.project
    promoted = client_for(lead).post(f"/api/projects/{project.pk}/best-of-n", body, format="json")
    assert promoted.status_code == 200, promoted.content
    assert (promoted.json()["chosen_tokens"], promoted.json()["median_tokens"]) == (
        tokens[1], tokens[0]
    )  # fmt: skip


def scored_by_a_worker(monkeypatch, rewards, tokens, reward_per_token):
    """A model that gives these rewards, lengths and reward per token, so that the ranking
    (done by the score task, inline here) is what is tested."""
    from workers.ml import scoring

    class Given:
        def score(self, prompts, responses):
            return np.array(rewards[: len(responses)]), np.array(tokens[: len(responses)])

    given = Given()
    given.reward_per_token = reward_per_token
    monkeypatch.setattr(scoring, "scorer_for", lambda path, training_precision=False: given)


@pytest.mark.parametrize("slope", [0.0, None])
def test_best_of_n_by_length_ranks_negative_rewards_right(
    reward_model, lead, monkeypatch, slope, eager
):
    """The issue's case: reward per token put the longer, lower-reward candidate first."""
    scored_by_a_worker(monkeypatch, [-2.0, -2.5], [10, 100], slope)
    body = {"prompt": "q", "candidates": ["short", "long"], "normalize": "length"}
    answer = client_for(lead).post(f"/api/reward-models/{reward_model.pk}/best-of-n", body,
                                   format="json")  # fmt: skip
    assert answer.status_code == 200, answer.content
    assert [r["response"] for r in answer.json()["ranked"]] == ["short", "long"]
    assert answer.json()["reward_per_token"] == slope  # null: none recorded, raw rewards


def test_best_of_n_by_length_takes_the_slope_off_each_token(reward_model, lead, monkeypatch, eager):
    scored_by_a_worker(monkeypatch, [-2.0, -1.5], [10, 100], 0.01)
    url = f"/api/reward-models/{reward_model.pk}/best-of-n"
    body = {"prompt": "q", "candidates": ["short", "long"]}
    raw = client_for(lead).post(url, body, format="json").json()["ranked"]
    assert [r["response"] for r in raw] == ["long", "short"]
    adjusted = client_for(lead).post(url, {**body, "normalize": "length"}, format="json")
    ranked = adjusted.json()["ranked"]
    assert [r["response"] for r in ranked] == ["short", "long"]
    assert [r["score"] for r in ranked] == pytest.approx([-2.0 - 0.1, -1.5 - 1.0])
    assert [r["reward"] for r in ranked] == [-2.0, -1.5]


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
    for unknown in ("log", "per_token"):  # per_token: gone, it ranked negative rewards wrong
        wrong = client.post(url, {"prompt": "q", "candidates": ["a"], "normalize": unknown},
                            format="json")  # fmt: skip
        assert wrong.status_code == 400 and "normalize" in wrong.json()
    assert client.post("/api/reward-models/999/best-of-n", {}, format="json").status_code == 404


def test_no_worker_is_a_503_not_a_hang(reward_model, lead, settings):
    """Nothing serves the interactive queue in this test: the request waits its time, then
    says which queue wants a worker."""
    from config.celery import app

    settings.INTERACTIVE_WAIT_SECONDS = 1
    body = {"items": [{"prompt": "q", "response": "r"}]}
    try:
        answer = client_for(lead).post(f"/api/reward-models/{reward_model.pk}/score", body,
                                       format="json")  # fmt: skip
    finally:
        with app.connection_for_write() as connection:
            connection.default_channel.queue_purge("interactive")
    assert answer.status_code == 503, answer.json()
    assert answer["Retry-After"] == "30"  # no worker to wait for: someone must start one
    detail = answer.json()["detail"]
    assert "No worker" in detail and "serving the interactive queue" in detail, detail


def test_the_registry_lists_models_with_their_lineage(reward_model, lead):
    listed = client_for(lead).get("/api/reward-models/").json()["results"]
    assert [m["identifier"] for m in listed] == ["rm-1-fruit-v1"]
    assert listed[0]["dataset"] == "fruit@v1" and listed[0]["held_out"]["accuracy"] == 0.9


def test_actions_answer_with_or_without_a_trailing_slash(reward_model, lead):
    for path in ("score", "score/"):
        answer = client_for(lead).post(
            f"/api/reward-models/{reward_model.identifier}/{path}", {"items": []}, format="json"
        )
        assert answer.status_code == 400 and "items" in answer.json()
    drift = client_for(lead).get(f"/api/projects/{reward_model.project_id}/drift/")
    assert drift.status_code == 200 and drift.json()["promoted"] is None
