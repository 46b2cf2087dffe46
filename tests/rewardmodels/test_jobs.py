"""Evaluations and filter runs doing their work (tasks run inline) with a model trained in
the test session: what an admin sees and downloads at the end."""

import json
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from rewardmodels.evaluation.services import evaluation_create
from rewardmodels.models import EvaluationRun, FilterRun
from rewardmodels.scoring.services import filter_create
from tests.factories import separable_rows
from tests.workers.conftest import model_with_length_trend


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
        assert {"ece", "by_difficulty", "length", "mean_reward_gap"} <= set(evaluation.metrics)
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
    page = client.get(f"/filters/{job.pk}/").content.decode()
    shown = page.split('id="kept"')[1].split("</table>")[0]
    assert shown.count("Gladly! pear.") == 6 and "No. plum" not in shown
    assert f"{kept[0]['reward']:.3f}" in shown  # each kept row with its reward
    # The kept are the long, polite answers: their lengths beside all candidates', warned.
    lengths = job.lengths
    assert (lengths["kept"]["n"], lengths["candidates"]["n"]) == (6, 24)
    assert lengths["kept"]["median"] >= 1.25 * lengths["candidates"]["median"]
    assert lengths["kept_longer"] is True
    assert 'id="length-warning"' in page.split('id="lengths"')[1].split("</section>")[0]


@pytest.mark.django_db(transaction=True)
def test_a_filter_by_length_removes_the_models_length_trend(reward_model, eager, tmp_path):
    """A model whose rewards grow 5 a token (so its training.json says): with the trend
    removed the shortest candidate wins, where the polite one wins on raw reward."""
    reward_model.artifact = str(
        model_with_length_trend(reward_model.artifact, tmp_path / "steep", 5.0)
    )
    reward_model.save()
    candidates = [
        "No. plum",
        "Gladly! pear. I hope that helps, thank you for asking.",
        "No. apple grape banana cherry lemon pear plum mango kiwi fig lime date",
    ]
    rows = [{"prompt": f"Question {i}: name some fruit.", "responses": candidates}
            for i in range(4)]  # fmt: skip
    kept = {}
    for normalize in ("none", "length"):
        job = filter_create(reward_model=reward_model, user=None, keep_top=0.25,
                            normalize=normalize, upload=upload("c.jsonl", rows))  # fmt: skip
        job.refresh_from_db()
        assert job.status == FilterRun.Status.SUCCEEDED, job.error
        lines = Path(job.output_file).read_text().splitlines()
        kept[normalize] = [json.loads(line) for line in lines]
    assert [r["response"] for r in kept["none"]] == [candidates[1]] * 4
    assert [r["response"] for r in kept["length"]] == [candidates[0]] * 4
    assert FilterRun.objects.get(normalize="length").get_normalize_display() == (
        "Reward with the model's length trend removed"
    )


@pytest.mark.django_db
def test_a_filter_needs_a_share_or_a_threshold(reward_model):
    from django.core.exceptions import ValidationError

    rows = [{"prompt": "q", "response": "a"}]
    with pytest.raises(ValidationError, match="share per prompt, or those above a threshold"):
        filter_create(reward_model=reward_model, user=None, upload=upload("c.jsonl", rows),
                      keep_top=None)  # fmt: skip
    assert not FilterRun.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_scored_in_parts_as_in_one(reward_model, eager, settings, monkeypatch):
    """Scored in parts of 3 rows (7 parts) or in one, an evaluation has the same figures and
    a filter keeps the same rows in the same order; the parts' files are gone after. In
    fp32: on a CPU with bf16 units a filter scores in bf16, where batches of other shapes
    round differently (by about 2e-4 here)."""
    from workers.ml import scoring

    monkeypatch.setattr(scoring, "cpu_has_bf16_units", lambda: False)
    monkeypatch.setattr(scoring, "_loaded", type(scoring._loaded)())
    pairs = separable_rows(20, seed=5)
    candidates = [{"prompt": f"Question {i}: name some fruit.",
                   "responses": ["No. plum", "Gladly! pear, thank you.", f"No. {i} figs"]}
                  for i in range(7)]  # fmt: skip
    results = {}
    for rows_per_part in (3, 10_000):
        settings.SCORING_CHUNK_ROWS = rows_per_part
        evaluation = evaluation_create(reward_model=reward_model, user=None,
                                       upload=upload("pairs.jsonl", pairs))  # fmt: skip
        job = filter_create(reward_model=reward_model, user=None, keep_top=0.34,
                            upload=upload("c.jsonl", candidates))  # fmt: skip
        evaluation.refresh_from_db()
        job.refresh_from_db()
        assert evaluation.status == job.status == "succeeded", (evaluation.error, job.error)
        assert (evaluation.done, job.done) == (40, 21)
        results[rows_per_part] = (evaluation.metrics, Path(job.output_file).read_text())
    (figures, kept), (whole_figures, whole_kept) = results.values()
    kept, whole_kept = (
        [json.loads(line) for line in text.splitlines()] for text in (kept, whole_kept)
    )
    assert [(r["prompt"], r["response"], r["rank"]) for r in kept] == [
        (r["prompt"], r["response"], r["rank"]) for r in whole_kept
    ]  # the batches differ, so the rewards agree to float precision, not to the bit
    assert [r["reward"] for r in kept] == pytest.approx([r["reward"] for r in whole_kept], abs=1e-5)
    assert figures["by_difficulty"] == whole_figures["by_difficulty"]
    for name in ("accuracy", "n", "loss", "mean_reward_gap", "ece", "reward_mean", "reward_std"):
        assert figures[name] == pytest.approx(whole_figures[name], abs=1e-6), name
    for name, value in whole_figures["length"].items():
        assert figures["length"][name] == pytest.approx(value, abs=1e-6), name
    assert {r["response"] for r in kept if r["rank"] == 1} == {"Gladly! pear, thank you."}
    assert not list((Path(settings.MEDIA_ROOT) / "scoring").iterdir())


class WorkerKilled(BaseException):
    """What SIGKILL does to a task: it stops where it is, and no handler of its runs."""


@pytest.mark.django_db(transaction=True)
def test_a_part_whose_worker_dies_every_time_fails_its_job(reward_model, eager, settings,
                                                           monkeypatch):  # fmt: skip
    from workers.ml import scoring
    from workers.tasks.scoring import score_chunk

    def killed(self, prompts, responses, progress=None):
        raise WorkerKilled

    settings.SCORING_CHUNK_ROWS = 2
    monkeypatch.setattr(scoring.Scorer, "score", killed)
    rows = [{"prompt": f"Question {i}?", "responses": ["No.", "Yes, gladly."]} for i in range(3)]
    with pytest.raises(WorkerKilled):
        filter_create(reward_model=reward_model, user=None, keep_top=0.5,
                      upload=upload("c.jsonl", rows))  # fmt: skip
    job = FilterRun.objects.get()
    for _ in range(2):  # delivered again, killed again
        with pytest.raises(WorkerKilled):
            score_chunk.apply(args=("filter", job.pk, 0))
        job.refresh_from_db()
        assert job.status == FilterRun.Status.RUNNING

    score_chunk.apply(args=("filter", job.pk, 0))  # the fourth start gives up
    job.refresh_from_db()
    assert job.status == FilterRun.Status.FAILED
    assert "scoring part 1 stopped 3 times without finishing (out of memory?" in job.error
    assert not (Path(settings.MEDIA_ROOT) / "scoring" / f"filter-{job.pk}").exists()


@pytest.mark.django_db(transaction=True)
def test_a_part_that_fails_is_tried_again_alone(reward_model, eager, settings, monkeypatch):
    from workers.ml import scoring

    settings.SCORING_CHUNK_ROWS = 2
    calls, real_score = [], scoring.Scorer.score

    def flaky(self, prompts, responses, progress=None):
        calls.append(list(responses))
        if len(calls) == 2:
            raise RuntimeError("the device went away for a moment")
        return real_score(self, prompts, responses, progress)

    monkeypatch.setattr(scoring.Scorer, "score", flaky)
    rows = [{"prompt": f"Question {i}?", "responses": ["No.", "Yes, gladly."]} for i in range(3)]
    job = filter_create(reward_model=reward_model, user=None, keep_top=0.5,
                        upload=upload("c.jsonl", rows))  # fmt: skip
    job.refresh_from_db()
    assert job.status == FilterRun.Status.SUCCEEDED, job.error
    assert len(calls) == 4 and calls[1] == calls[2]  # three parts; the second scored twice
    assert job.n_kept == 3

    def broken(self, prompts, responses, progress=None):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(scoring.Scorer, "score", broken)
    job = filter_create(reward_model=reward_model, user=None, keep_top=0.5,
                        upload=upload("c.jsonl", rows))  # fmt: skip
    job.refresh_from_db()
    assert job.status == FilterRun.Status.FAILED and "out of memory" in job.error
