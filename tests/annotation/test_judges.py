"""LLM judges as annotators: `manage.py judge` runs a job (inline here) against a real HTTP
server speaking the OpenAI or Anthropic protocol; its labels sit beside the humans'."""

import json
from collections import Counter

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from annotation.judges.services import judge_save, judging_job_create
from annotation.models import Judge, JudgingJob, Label
from tests.factories import PairFactory
from tests.llm_servers import LLMServer, fenced_parts, knows_better, verdict

KEY = "sk-judge-secret-42"
pytestmark = pytest.mark.django_db(transaction=True)  # jobs are queued on commit


@pytest.fixture
def pairs(project):
    """Six pairs; the better response says GOOD, first in three of them, second in three."""
    made = []
    for i in range(6):
        good, bad = f"GOOD answer {i}", f"poor answer {i}"
        a, b = (good, bad) if i % 2 == 0 else (bad, good)
        made.append(PairFactory(project=project, external_id=f"p{i}", response_a=a, response_b=b))
    return made


def judge(server: LLMServer, project, *args) -> str:
    return output_of(
        "judge", project.name, "--name", "judge-1", "--provider", "openai", "--base-url",
        server.url, "--model", "judge-model", "--api-key-env", "JUDGE_API_KEY", *args,
    )  # fmt: skip


def by_pair(server: LLMServer) -> Counter:
    """How many requests asked about each pair (by its prompt, whatever the order)."""
    return Counter(
        fenced_parts(body["messages"][-1]["content"])["conversation"] for body in server.requests
    )


def test_a_judge_labels_each_pair_from_both_orders_and_never_twice(
    project, pairs, eager, monkeypatch
):
    monkeypatch.setenv("JUDGE_API_KEY", KEY)
    with LLMServer() as server:
        out = judge(server, project, "--wait")
        assert "6 pairs labelled, 0 failed, 0 changed with the order; 12 requests" in out
        labels = Label.objects.filter(source="judge-1").order_by("pair__external_id")
        assert [label.choice for label in labels] == ["a", "b", "a", "b", "a", "b"]
        assert all(label.position_consistent and label.strength == 2 for label in labels)
        assert "Shown a first: A" in labels[0].rationale
        assert set(by_pair(server).values()) == {2}
        again = judge(server, project, "--pairs", "all", "--wait")
        assert "0 pairs labelled" in again and len(server.requests) == 12
    job = JudgingJob.objects.first()
    assert (job.status, job.done, job.total, job.requests) == ("succeeded", 0, 0, 0)
    assert all(KEY in h.get("Authorization", h.get("authorization", "")) for h in server.headers)


def test_unlabelled_means_no_person_labelled_it_and_sample_takes_n(project, pairs, eager):
    from annotation.judges.services import job_pair_ids

    labelled = pairs[0]
    Label.objects.create(pair=labelled, source="vendor", choice="a")  # not a person: still open
    judge = judge_save(user=None, name="j", model="m", base_url="http://127.0.0.1:9/v1")
    unlabelled = JudgingJob(judge=judge, project=project, pairs="unlabelled")
    assert len(job_pair_ids(unlabelled)) == 6
    sample = JudgingJob(pk=7, judge=judge, project=project, pairs="sample", limit=3)
    assert len(job_pair_ids(sample)) == 3 and job_pair_ids(sample) == job_pair_ids(sample)
    assert job_pair_ids(JudgingJob(judge=judge, project=project, pairs="gold")) == []


@pytest.mark.parametrize(("on_flip", "choices"), [("tie", {"tie"}), ("weak", {"a", "b"})])
def test_a_verdict_that_changes_with_the_order_becomes_what_the_project_says(
    project, pairs, eager, monkeypatch, on_flip, choices
):
    """This judge picks the first response shown, except that it calls a tie when the
    better one is shown second: so each pair's pick changes with the order."""
    monkeypatch.setenv("JUDGE_API_KEY", KEY)
    project.judge_on_flip = on_flip
    project.save()

    def biased(text):
        first_good = "GOOD" in fenced_parts(text)["response A"]
        return verdict("A", 2) if first_good else verdict("tie", 0)

    with LLMServer(biased) as server:
        out = judge(server, project, "--wait")
    assert "6 pairs labelled, 0 failed, 6 changed with the order" in out
    labels = Label.objects.filter(source="judge-1")
    assert {label.choice for label in labels} == choices
    assert not any(label.position_consistent for label in labels)
    if on_flip == "weak":
        assert {label.strength for label in labels} == {0}


def test_failures_are_recorded_with_the_raw_answer_and_do_not_stop_the_job(
    project, pairs, eager, monkeypatch
):
    monkeypatch.setenv("JUDGE_API_KEY", KEY)

    def stuck_on_pair_1(text):
        parts = fenced_parts(text)
        if "answer 1" in parts["response A"] + parts["response B"]:
            return "I cannot decide."
        return knows_better(text)

    with LLMServer(stuck_on_pair_1) as server:
        out = judge(server, project, "--wait")
    job = JudgingJob.objects.get()
    assert (job.status, job.done, job.failed) == ("succeeded", 5, 1)
    assert "5 pairs labelled, 1 failed" in out
    (failure,) = job.failures
    assert failure["pair"] == pairs[1].pk and failure["raw"] == "I cannot decide."
    assert "malformed answer 3 times" in failure["error"]
    assert not Label.objects.filter(pair=pairs[1], source="judge-1").exists()


def test_a_missing_key_variable_fails_the_job_with_a_clear_error(project, pairs, eager):
    with LLMServer() as server, pytest.raises(CommandError, match=r"\$JUDGE_API_KEY is not set"):
        judge(server, project, "--wait")
    assert server.requests == []


def test_a_stored_key_is_encrypted_at_rest_and_never_logged(project, pairs, eager, caplog):
    caplog.set_level("DEBUG")
    with LLMServer() as server:
        stored = judge_save(user=None, name="stored", model="m", base_url=server.url, api_key=KEY)
        job = judging_job_create(judge=stored, project=project, user=None)
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM annotation_judge")
        assert KEY not in json.dumps(cursor.fetchall(), default=str)
    job.refresh_from_db()
    assert job.status == "succeeded" and job.done == 6
    sent = [h.get("Authorization") or h.get("authorization") or "" for h in server.headers]
    assert len(sent) == 12 and all(KEY in header for header in sent)
    assert KEY not in caplog.text
    assert Judge.objects.get().key_source == "stored encrypted"


def test_judge_labels_take_no_annotator_place_and_count_as_a_source(
    project, pairs, eager, monkeypatch, annotator
):
    from annotation.curation.selection import CurationFilters, curation_select
    from annotation.labelling.services import assignment_next

    project.annotators_per_pair = 1
    project.save()
    monkeypatch.setenv("JUDGE_API_KEY", KEY)
    with LLMServer() as server:
        judge(server, project, "--wait")
    assert assignment_next(project=project, annotator=annotator) is not None
    assert curation_select(project=project, filters=CurationFilters()).count == 6
    without = curation_select(
        project=project, filters=CurationFilters(exclude_sources=("judge-1",))
    )
    assert without.count == 0
    report = json.loads(output_of("agreement", project.name, "--json"))
    assert "judge-1" in [entry["name"] for entry in report["annotators"]]
    exported = output_of("export_labels", project.name, "--out", "-")
    assert exported.count('"judge-1"') == 6


def output_of(*args) -> str:
    out = []

    class Out:
        def write(self, text):
            out.append(text)

    call_command(*args, stdout=Out())
    return "".join(out)


def test_the_dashboard_shows_judges_apart_with_their_consistency(
    project, pairs, eager, monkeypatch, annotator, lead
):
    """A person labels two pairs; the judge agrees with them on one, and flips on every pair
    shown in the other order, so half of its picks hold in both orders."""
    from annotation.labelling.services import assignment_next, label_submit
    from tests.conftest import logged_in

    for _ in range(2):
        assignment = assignment_next(project=project, annotator=annotator)
        label_submit(
            assignment_id=assignment.pk, annotator=annotator, screen_choice="left", strength=2
        )
    monkeypatch.setenv("JUDGE_API_KEY", KEY)

    def half_biased(text):
        parts = fenced_parts(text)
        if "answer 0" in parts["response A"] + parts["response B"]:
            return verdict("A")  # position bias on this pair only
        return knows_better(text)

    with LLMServer(half_biased) as server:
        judge(server, project, "--pairs", "all", "--wait")
    summary = json.loads(output_of("agreement", project.name, "--json"))
    (entry,) = [a for a in summary["annotators"] if a["name"] == "judge-1"]
    assert entry["kind"] == "judge" and entry["position_consistency"] == pytest.approx(5 / 6)
    page = logged_in(lead).get(f"/projects/{project.pk}/dashboard/")
    assert page.status_code == 200
    judges_table = page.content.decode().split('id="judges"')[1].split("</table>")[0]
    assert "judge-1" in judges_table and "83.3%" in judges_table


def test_an_anthropic_judge_runs_through_the_messages_api(project, pairs, eager, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    with LLMServer() as server:
        out = output_of(
            "judge", project.name, "--name", "claude-judge", "--provider", "anthropic",
            "--base-url", server.anthropic_url, "--model", "claude-x",
            "--api-key-env", "ANTHROPIC_API_KEY", "--wait",
        )  # fmt: skip
    assert "6 pairs labelled, 0 failed" in out
    assert {body["model"] for body in server.requests} == {"claude-x"}
    assert all("max_tokens" in body for body in server.requests)  # the Messages API wants it
    labels = Label.objects.filter(source="claude-judge").order_by("pair__external_id")
    assert [label.choice for label in labels] == ["a", "b", "a", "b", "a", "b"]
