"""Evaluations and filter runs doing their work (tasks run inline) with a model trained in
the test session: what an admin sees and downloads at the end."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from rewardmodels.models import EvaluationRun, FilterRun
from rewardmodels.services import evaluation_create, filter_create
from tests.factories import separable_rows


def upload(name: str, rows: list[dict]) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, "".join(json.dumps(r) + "\n" for r in rows).encode())


@pytest.mark.django_db(transaction=True)
def test_an_evaluation_on_a_test_split_and_on_a_file(reward_model, dataset, eager):
    on_split = evaluation_create(reward_model=reward_model, user=None, dataset=dataset)
    on_file = evaluation_create(
        reward_model=reward_model, user=None,
        upload=upload("held-out.jsonl", separable_rows(20, seed=11)),
    )  # fmt: skip
    for evaluation in (on_split, on_file):
        evaluation.refresh_from_db()
        assert evaluation.status == EvaluationRun.Status.SUCCEEDED, evaluation.error
        assert evaluation.done == evaluation.total > 0
        assert evaluation.metrics["accuracy"] >= 0.9
        assert {"ece", "by_difficulty", "length", "mean_margin"} <= set(evaluation.metrics)
    assert on_file.metrics["n"] == 20 and on_split.metrics["n"] == dataset.n_test


@pytest.mark.django_db(transaction=True)
def test_an_admin_filters_candidates_to_the_top_quartile_and_downloads_them(
    reward_model, admin_user, client, eager
):
    rows = [
        {"prompt": f"Question {i}: name some fruit.",
         "responses": ["No. plum", "No. apple grape",
                       "Gladly! pear. I hope that helps, thank you for asking.", "No. lemon"]}
        for i in range(6)
    ]  # fmt: skip
    client.force_login(admin_user)
    answer = client.post(
        f"/models/{reward_model.identifier}/filter/",
        {"candidates": upload("candidates.jsonl", rows), "keep_top": "0.25",
         "normalize": "none", "format": "auto"},
    )  # fmt: skip
    job = FilterRun.objects.get()
    assert answer.status_code == 302, answer.content[:2000]
    assert job.status == FilterRun.Status.SUCCEEDED, job.error
    assert (job.total, job.n_prompts, job.n_kept) == (24, 6, 6)
    download = client.get(f"/filters/{job.pk}/kept.jsonl")
    assert download.status_code == 200
    assert "attachment" in download["Content-Disposition"]
    kept = [json.loads(line) for line in b"".join(download.streaming_content).splitlines()]
    assert len(kept) == 6 and all(r["response"].startswith("Gladly") for r in kept)
    assert all(r["rank"] == 1 and isinstance(r["reward"], float) for r in kept)


@pytest.mark.django_db
def test_a_filter_needs_a_share_or_a_threshold(reward_model):
    from django.core.exceptions import ValidationError

    rows = [{"prompt": "q", "response": "a"}]
    with pytest.raises(ValidationError, match="share per prompt, or those above a threshold"):
        filter_create(reward_model=reward_model, user=None, upload=upload("c.jsonl", rows),
                      keep_top=None)  # fmt: skip
    assert not FilterRun.objects.exists()
