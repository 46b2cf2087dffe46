"""Trying a model on its page: a prompt and responses in, each response's reward, tokens and
both rankings out, with why they differ; the same request as the API's curl command; the
form's limits; who may use it; a project's promoted model; and a worker that is away."""

import html
import json
import re
import shlex

import pytest
from django.test import Client

from rewardmodels.scoring.rankings import compare, explanation, letter, ordinal
from rewardmodels.scoring.services import MAX_SCORE_CHARS, MAX_SCORE_ITEMS
from tests.conftest import client_for, logged_in
from tests.rewardmodels.test_api import POLITE, scored_by_a_worker

PROMPT = "Question 3: name some fruit."


def try_url(reward_model) -> str:
    return f"/models/{reward_model.identifier}/try/"


def rows_of(page: str) -> dict[str, dict]:
    """Each result row's letter with its reward, tokens and two ranks, as the page has them."""
    found = re.findall(
        r'<tr id="row-(\w+)" data-reward="([^"]+)" data-tokens="(\d+)" data-rank="(\d+)" '
        r'data-adjusted-rank="(\d+)">',
        page,
    )
    return {
        name: {"reward": float(reward), "tokens": int(tokens), "rank": int(rank),
               "adjusted_rank": int(adjusted)}
        for name, reward, tokens, rank, adjusted in found
    }  # fmt: skip


def curl_of(page: str) -> list[str]:
    """The page's curl command as the shell would split it."""
    command = html.unescape(re.search(r'<pre id="curl"><code>(.*?)</code></pre>', page, re.S)[1])
    return shlex.split(command.replace("\\\n", " "))


def nothing_scored(monkeypatch) -> list:
    calls = []
    monkeypatch.setattr("rewardmodels.scoring.views.score", lambda **kw: calls.append(kw))
    return calls


def test_a_lead_tries_three_responses_and_sees_both_rankings_and_why_they_differ(
    reward_model, lead, monkeypatch, eager
):
    """The issue's case: A wins on reward only through its length; adjusted, B ranks first."""
    scored_by_a_worker(monkeypatch, [1.0, 0.8, 0.2], [200, 20, 30], 0.0021)
    answer = logged_in(lead).post(try_url(reward_model), {
        "prompt": PROMPT, "response": ["Sure! " * 40, "Plum and pear.", "Whatever."],
    })  # fmt: skip
    page = answer.content.decode()
    assert answer.status_code == 200, page
    assert rows_of(page) == {
        "A": {"reward": 1.0, "tokens": 200, "rank": 1, "adjusted_rank": 2},
        "B": {"reward": 0.8, "tokens": 20, "rank": 2, "adjusted_rank": 1},
        "C": {"reward": 0.2, "tokens": 30, "rank": 3, "adjusted_rank": 3},
    }
    why = html.unescape(re.search(r'id="why">(.*?)</div>', page, re.S)[1])
    assert (
        "Adjusted for length (this model's reward rises 0.0021 per token), B ranks first (2nd "
        "by reward): A's lead of 0.2 in reward comes from its 180 more tokens (worth 0.378 at "
        "0.0021 per token)." in why
    ), why
    assert "0.0050" in page  # A's reward per token: 1.0 ÷ 200
    assert "reward − 0.0021 × tokens" in page


def test_the_curl_command_is_the_apis_request_and_the_api_gives_the_same_rewards(
    reward_model, lead, eager
):
    responses = ["No. plum", POLITE, "It's a 'pear'; $HOME `x`\r\nand a fig."]
    page = logged_in(lead).post(try_url(reward_model), {"prompt": PROMPT, "response": responses})
    assert page.status_code == 200, page.content.decode()
    shown = rows_of(page.content.decode())
    assert shown["B"]["reward"] > shown["A"]["reward"]  # the polite answer, as trained

    words = curl_of(page.content.decode())
    assert words[:2] == ["curl", "http://testserver/api/reward-models/rm-1-fruit-v1/best-of-n"]
    assert words[words.index("-H") + 1] == "Authorization: Token $PREFHUB_TOKEN"
    assert "Content-Type: application/json" in words
    body = json.loads(words[words.index("--data-binary") + 1])
    # As typed: the browser's CRLF line end is the newline the person pasted.
    typed = [*responses[:2], responses[2].replace("\r\n", "\n")]
    assert body == {"prompt": PROMPT, "candidates": typed, "normalize": "length"}

    api = client_for(lead).post(words[1].removeprefix("http://testserver"), body, format="json")
    assert api.status_code == 200, api.content
    by_index = {entry["index"]: entry for entry in api.json()["ranked"]}
    for index, name in enumerate("ABC"):
        assert shown[name]["reward"] == pytest.approx(by_index[index]["reward"], abs=1e-6)
        assert shown[name]["tokens"] == by_index[index]["tokens"]
        assert shown[name]["adjusted_rank"] == api.json()["ranked"].index(by_index[index]) + 1


def test_a_conversation_pasted_as_json_is_scored_as_one(reward_model, lead, eager):
    turns = [
        {"role": "user", "content": "Question 1: name some fruit."},
        {"role": "assistant", "content": "Which kind?"},
        {"role": "user", "content": PROMPT},
    ]
    responses = ["No. plum", POLITE]
    page = logged_in(lead).post(
        try_url(reward_model), {"prompt": json.dumps(turns, indent=2), "response": responses}
    )
    assert page.status_code == 200, page.content.decode()
    shown = rows_of(page.content.decode())
    words = curl_of(page.content.decode())
    body = json.loads(words[words.index("--data-binary") + 1])
    assert body == {"prompt": turns, "candidates": responses, "normalize": "length"}
    api = client_for(lead).post(words[1].removeprefix("http://testserver"), body, format="json")
    by_index = {entry["index"]: entry for entry in api.json()["ranked"]}
    for index, name in enumerate("AB"):
        assert shown[name]["reward"] == pytest.approx(by_index[index]["reward"], abs=1e-6)
    # Scored as the conversation, not as its JSON text.
    as_text = logged_in(lead).post(
        try_url(reward_model),
        {"prompt": f"{json.dumps(turns)} (as text)", "response": responses},
    )  # fmt: skip
    assert as_text.status_code == 400  # starts like a conversation, is not valid JSON


@pytest.mark.parametrize(
    ("prompt", "responses", "message"),
    [
        (PROMPT, ["r"] * (MAX_SCORE_ITEMS + 1), f"At most {MAX_SCORE_ITEMS} responses at once"),
        (PROMPT, ["plum", "", "pear", "  \r\n"], "Responses B and D are empty"),
        (PROMPT, ["plum"], "Give at least two responses to rank."),
        (PROMPT, ["plum", "x" * (MAX_SCORE_CHARS + 1)], "Response B has 20,001 characters; at"),
        ("", ["plum", "pear"], "Write the prompt the responses answer."),
        ("q" * (MAX_SCORE_CHARS + 1), ["plum", "pear"], "The prompt has 20,001 characters"),
        ('[{"role": "user", "content": "Hi"', ["plum", "pear"], "is not valid JSON"),
        ('[{"role": "user"}]', ["plum", "pear"], "The conversation: prompt message 0 needs"),
    ],
)
def test_bad_input_gets_the_forms_error_and_nothing_is_scored(
    reward_model, lead, monkeypatch, prompt, responses, message
):
    calls = nothing_scored(monkeypatch)
    answer = logged_in(lead).post(try_url(reward_model), {"prompt": prompt, "response": responses})
    page = answer.content.decode()
    assert answer.status_code == 400
    assert message in html.unescape(page), page
    assert calls == [] and 'id="result"' not in page and 'id="curl"' not in page
    assert page.count('name="response"') == max(2, len(responses))  # as typed, kept


def test_add_and_remove_a_response_without_javascript_score_nothing(
    reward_model, lead, monkeypatch
):
    calls = nothing_scored(monkeypatch)
    client = logged_in(lead)
    fresh = client.get(try_url(reward_model)).content.decode()
    assert fresh.count('name="response"') == 2 and "Add a response" in fresh
    sent = {"prompt": PROMPT, "response": ["plum", "pear", "fig"]}
    added = client.post(try_url(reward_model), {**sent, "add": "1"}).content.decode()
    assert added.count('name="response"') == 4 and "errorlist" not in added
    removed = client.post(try_url(reward_model), {**sent, "remove": "1"}).content.decode()
    assert removed.count('name="response"') == 2 and ">\nfig</textarea>" in removed
    assert "pear" not in removed and calls == []


@pytest.mark.parametrize("who", ["annotator", "outsider"])
def test_only_leads_and_admins_may_try_a_model(reward_model, project, request, who, monkeypatch):
    calls = nothing_scored(monkeypatch)
    client = logged_in(request.getfixturevalue(who))
    body = {"prompt": PROMPT, "response": ["plum", "pear"]}
    for url in (try_url(reward_model), f"/projects/{project.pk}/models/try/"):
        assert client.get(url).status_code == 404
        assert client.post(url, body).status_code == 404
    assert calls == []
    signed_out = Client().get(try_url(reward_model))
    assert signed_out.status_code == 302 and "/accounts/login/" in signed_out["Location"]


def test_the_form_posts_with_its_csrf_token(reward_model, admin_user, monkeypatch):
    calls = nothing_scored(monkeypatch)
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    page = client.get(try_url(reward_model)).content.decode()
    assert 'name="csrfmiddlewaretoken"' in page
    forged = client.post(try_url(reward_model), {"prompt": PROMPT, "response": ["a", "b"]})
    assert forged.status_code == 403 and calls == []


def test_the_model_page_and_the_projects_models_page_link_to_it(reward_model, lead):
    client = logged_in(lead)
    model_page = client.get(f"/models/{reward_model.identifier}/").content.decode()
    assert f'href="/models/{reward_model.identifier}/try/"' in model_page
    project_page = client.get(f"/projects/{reward_model.project_id}/models/").content.decode()
    assert f'href="/projects/{reward_model.project_id}/models/try/"' in project_page


def test_with_no_promoted_model_the_project_page_says_so(project, lead, monkeypatch):
    calls = nothing_scored(monkeypatch)
    url = f"/projects/{project.pk}/models/try/"
    page = logged_in(lead).get(url)
    assert page.status_code == 200
    assert "No model is promoted in Helpfulness" in page.content.decode()
    assert 'id="try-form"' not in page.content.decode()
    refused = logged_in(lead).post(url, {"prompt": PROMPT, "response": ["plum", "pear"]})
    assert refused.status_code == 409 and "No model is promoted" in refused.content.decode()
    assert calls == []


def test_the_project_page_tries_the_promoted_model_and_says_which(
    reward_model, lead, admin_user, eager
):
    from rewardmodels.registry.services import model_promote
    from tests.factories import passing_audit

    passing_audit(reward_model)
    model_promote(reward_model=reward_model, user=admin_user)
    url = f"/projects/{reward_model.project_id}/models/try/"
    client = logged_in(lead)
    assert 'Served by <a href="/models/rm-1-fruit-v1/">rm-1-fruit-v1</a>' in (
        client.get(url).content.decode()
    )
    answer = client.post(url, {"prompt": PROMPT, "response": ["No. plum", POLITE, "No."]})
    page = answer.content.decode()
    assert answer.status_code == 200, page
    assert sorted(row["rank"] for row in rows_of(page).values()) == [1, 2, 3]
    words = curl_of(page)
    path = f"/api/projects/{reward_model.project_id}/best-of-n"
    assert words[1] == f"http://testserver{path}"
    api = client_for(lead).post(path, json.loads(words[-1]), format="json")
    rewards = {entry["index"]: entry["reward"] for entry in api.json()["ranked"]}
    assert [rows_of(page)[letter(i)]["reward"] for i in range(3)] == pytest.approx(
        [rewards[i] for i in range(3)], abs=1e-6
    )


def test_a_worker_that_does_not_answer_is_the_pages_503_with_try_again(
    reward_model, lead, settings
):
    """Nothing serves the interactive queue in this test: the page waits its time, says
    which queue wants a worker and keeps the form to send again."""
    from config.celery import app

    settings.INTERACTIVE_WAIT_SECONDS = 1
    responses = ["plum", "pear", "fig"]
    try:
        answer = logged_in(lead).post(try_url(reward_model),
                                      {"prompt": PROMPT, "response": responses})  # fmt: skip
    finally:
        with app.connection_for_write() as connection:
            connection.default_channel.queue_purge("interactive")
    page = html.unescape(answer.content.decode())
    assert answer.status_code == 503, page
    assert answer["Retry-After"] == "30"
    assert "No worker scored the request within 1 s" in page
    assert "no worker is serving the interactive queue" in page
    assert 'id="try-again"' in page and 'form="try-form"' in page
    assert all(f">\n{text}</textarea>" in page for text in responses)
    assert 'id="curl"' in page and 'id="result"' not in page


def test_a_worker_that_fails_is_the_pages_message_not_a_500(reward_model, lead, eager):
    reward_model.artifact = str(reward_model.artifact) + "-gone"  # its folder was removed
    reward_model.save()
    answer = logged_in(lead).post(try_url(reward_model),
                                  {"prompt": PROMPT, "response": ["plum", "pear"]})  # fmt: skip
    assert answer.status_code == 502
    assert "Scoring failed on the worker" in answer.content.decode()


def ranked(rewards, tokens, slope):
    """The score service's answer with rank="length", as the worker ranks."""
    scores = [r - (slope or 0) * t for r, t in zip(rewards, tokens, strict=True)]
    order = sorted(range(len(rewards)), key=lambda i: (-scores[i], i))
    return {"rewards": rewards, "tokens": tokens, "reward_per_token": slope,
            "ranked": [{"index": i, "score": scores[i]} for i in order]}  # fmt: skip


def test_the_explanation_names_each_response_that_moves_up_and_why():
    # A and B lead on length; once it is taken off, C and D pass them both.
    answer = ranked([2.0, 1.9, 1.0, 0.95], [500, 400, 20, 10], 0.004)
    result = compare(["a", "b", "c", "d"], answer)
    assert [row["adjusted_rank"] for row in result["rows"]] == [4, 3, 1, 2]
    assert result["explanation"] == [
        "Adjusted for length (this model's reward rises 0.004 per token), C ranks first (3rd "
        "by reward): A's lead of 1 in reward comes from its 480 more tokens (worth 1.92 at "
        "0.004 per token); B's lead of 0.9 in reward comes from its 380 more tokens (worth "
        "1.52 at 0.004 per token).",
        "D moves up to 2nd (4th by reward): A's lead of 1.05 in reward comes from its 490 "
        "more tokens (worth 1.96 at 0.004 per token); B's lead of 0.95 in reward comes from "
        "its 390 more tokens (worth 1.56 at 0.004 per token).",
    ]
    assert not result["agree"] and result["formula"] == "reward − 0.004 × tokens"


def test_where_reward_falls_with_length_the_shorter_answers_lead_is_explained():
    answer = ranked([1.0, 0.9], [10, 60], -0.003)
    lines = compare(["short", "long"], answer)["explanation"]
    assert lines == [
        "Adjusted for length (this model's reward falls 0.003 per token), B ranks first (2nd "
        "by reward): A's lead of 0.1 in reward comes from being 50 tokens shorter (worth 0.15 "
        "at 0.003 per token)."
    ]


def test_when_the_rankings_agree_or_no_trend_was_recorded_the_page_says_so():
    assert compare(["a", "b"], ranked([1.0, 0.5], [10, 12], 0.002))["explanation"] == [
        "Both rankings agree: adjusted for length (this model's reward rises 0.002 per "
        "token), no response changes place."
    ]
    untrended = compare(["a", "b"], ranked([1.0, 0.5], [300, 12], None))
    assert untrended["agree"] and "did not record its length trend" in untrended["explanation"][0]
    tie = explanation(
        [{"letter": "A", "reward": 1.0, "tokens": 50, "rank": 1, "adjusted_rank": 2},
         {"letter": "B", "reward": 1.0, "tokens": 20, "rank": 2, "adjusted_rank": 1}], 0.01
    )  # fmt: skip
    assert "A ties with B on reward with 30 more tokens (worth 0.3" in tie[0]


def test_responses_are_named_by_letters_past_z_and_ranks_by_ordinals():
    assert [letter(i) for i in (0, 1, 25, 26, 255)] == ["A", "B", "Z", "AA", "IV"]
    assert [ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 112)] == [
        "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "112th"
    ]  # fmt: skip
