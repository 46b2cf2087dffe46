"""Did training work? The run, model, evaluation and compare pages set the held-out accuracy,
with its 95% interval, against the untrained model's, and say so plainly when the interval
does not clear it."""

import pytest

from rewardmodels.models import EvaluationRun, RewardModel, TrainingRun
from rewardmodels.training.held_out import held_out_check
from tests.conftest import logged_in
from workers.ml.metrics import wilson_interval

WARNING = "Training may not have worked"


def held_out(right: int, n: int, **more) -> dict:
    """workers.ml.metrics' dictionary for `right` of `n` pairs right, as the trainer records it."""
    return {
        "n": n,
        "accuracy": right / n,
        "accuracy_ci95": wilson_interval(right, n),
        "loss": 0.6,
        "mean_reward_gap": 0.3,
        "ece": 0.04,
        "reward_mean": 0.0,
        "reward_std": 1.0,
        "by_difficulty": {},
        "length": {"reward_length_correlation": 0.1, "reward_per_token": 0.002},
        **more,
    }


def finished_run(dataset, final: dict, untrained: dict | None, **fields) -> TrainingRun:
    timeline = [{"step": 8, "loss": 0.5, "eval": final}]
    if untrained is not None:
        timeline.insert(0, {"step": 0, "eval": untrained})
        final = {**final, "untrained": untrained}
    return TrainingRun.objects.create(
        dataset=dataset,
        status=TrainingRun.Status.SUCCEEDED,
        step=8,
        total_steps=8,
        metrics=timeline,
        final_metrics=final,
        artifact="/media/runs/x/model",
        **fields,
    )


def run_page(user, run) -> str:
    return logged_in(user).get(f"/runs/{run.pk}/").content.decode()


def test_an_interval_that_includes_the_untrained_accuracy_is_a_warning(dataset, admin_user):
    run = finished_run(dataset, held_out(53, 100), held_out(50, 100))
    page = run_page(admin_user, run)
    assert "53.0% (95% CI 43.3–62.5%) on 100 pairs" in page
    assert "untrained: 50.0% (95% CI 40.4–59.6%)" in page and "+3.0 points" in page
    warning = page.split('id="training-warning"')[1].split("</div>")[0]
    assert 'class="headline warning" role="alert"' in page  # a styled notice
    assert WARNING in warning
    assert "(43.3–62.5%) includes the untrained model&#x27;s accuracy (50.0%)" in warning
    assert "Try more pairs, more epochs or another learning rate." in warning


def test_a_clear_gain_shows_its_interval_and_no_warning(dataset, admin_user):
    run = finished_run(dataset, held_out(212, 363), held_out(183, 363))
    page = run_page(admin_user, run)
    assert "58.4% (95% CI 53.3–63.4%) on 363 pairs" in page
    assert "untrained: 50.4% (95% CI 45.3–55.5%)" in page
    assert "+8.0 points over the untrained model" in page
    assert WARNING not in page and "training-warning" not in page
    assert "Better than the untrained model" in page


def test_a_model_worse_than_untrained_is_a_warning(dataset, admin_user):
    run = finished_run(dataset, held_out(30, 100), held_out(55, 100))
    page = run_page(admin_user, run)
    assert "Training made the model worse" in page and "-25.0 points" in page
    assert 'id="training-warning"' in page


def test_too_few_held_out_pairs_for_any_conclusion(dataset, admin_user):
    run = finished_run(dataset, held_out(2, 3), held_out(2, 3))
    page = run_page(admin_user, run)
    warning = page.split('id="training-warning"')[1].split("</div>")[0]
    assert "Too few held-out pairs to tell whether training worked" in warning
    assert "with 3, even all of them right" in warning and "larger test split" in warning


def test_a_retraining_from_a_model_already_right_on_every_pair_has_nothing_to_measure(
    dataset, admin_user
):
    first = finished_run(dataset, held_out(40, 40), held_out(31, 40))
    start = RewardModel.objects.create(
        identifier="rm-perfect", run=first, project=dataset.project,
        dataset=dataset, base_model=first.base_model, artifact=first.artifact,
    )  # fmt: skip
    again = finished_run(dataset, held_out(40, 40), held_out(40, 40), start_from=start)
    page = run_page(admin_user, again)
    warning = page.split('id="training-warning"')[1].split("</div>")[0]
    assert "The starting model is already at 100% on these pairs: nothing to measure." in warning
    assert "Too few held-out pairs" not in page and "larger test split" not in page
    listed = logged_in(admin_user).get("/runs/").content.decode()
    row = next(row for row in listed.split("<tr>") if f'href="/runs/{again.pk}/"' in row)
    assert "nothing to measure" in row and "too few pairs to tell" not in row


def test_a_model_that_started_at_100_percent_and_lost_some_is_worse(dataset, admin_user):
    run = finished_run(dataset, held_out(30, 40), held_out(40, 40))
    page = run_page(admin_user, run)
    assert "Training made the model worse" in page and "nothing to measure" not in page


def halfway(dataset, right_at_step_5: int) -> TrainingRun:
    """A run at step 5 of 10: the untrained model got 6 of 12 held-out pairs right."""
    return TrainingRun.objects.create(
        dataset=dataset,
        status=TrainingRun.Status.RUNNING,
        step=5,
        total_steps=10,
        metrics=[
            {"step": 0, "eval": held_out(6, 12)},
            {"step": 5, "loss": 0.4, "eval": held_out(right_at_step_5, 12)},
        ],
    )


def test_the_accuracy_chart_starts_at_the_untrained_model(dataset, admin_user):
    run = halfway(dataset, right_at_step_5=10)
    page = run_page(admin_user, run)
    charts = page.split('<section class="card"><h2>Held-out accuracy</h2>')[1].split("</section>")
    chart = charts[0]
    assert "<title>held-out accuracy at 0: 0.5</title>" in chart
    assert "<title>held-out accuracy at 5: 0.8333</title>" in chart
    assert ">untrained model</text>" in chart  # its accuracy drawn across, the line to beat
    assert "training loss at 0" not in page  # step 0 trains nothing: no loss point


def test_a_run_under_way_compares_its_latest_evaluation_quietly(dataset, lead):
    run = halfway(dataset, right_at_step_5=7)
    page = run_page(lead, run)
    assert "Held-out metrics (latest evaluation)" in page
    assert "58.3% (95% CI 32.0–80.7%) on 12 pairs" in page
    assert "untrained: 50.0% (95% CI 25.4–74.6%)" in page and "+8.3 points" in page
    assert "Not clear of the untrained model&#x27;s accuracy (50.0%) yet" in page
    assert "training-warning" not in page  # early evaluations are often near the start
    live = logged_in(lead).get(f"/runs/{run.pk}/progress.json").json()["live_html"]
    assert "58.3% (95% CI 32.0–80.7%) on 12 pairs" in live  # the poller refreshes it


def test_before_the_first_step_the_untrained_figures_are_labelled_so(dataset, admin_user):
    run = TrainingRun.objects.create(
        dataset=dataset,
        status=TrainingRun.Status.RUNNING,
        total_steps=10,
        metrics=[{"step": 0, "eval": held_out(6, 12)}],
    )
    page = run_page(admin_user, run)
    assert "Held-out metrics (untrained model, before the first step)" in page
    assert "No steps logged yet" in page and "held-out-check" not in page
    assert "<title>held-out accuracy at 0: 0.5</title>" in page


def test_runs_with_older_metrics_still_render(dataset, admin_user):
    """No step 0, no untrained figures, no recorded interval: the interval comes from the
    accuracy and n, and chance stands in for the untrained model."""
    old = {k: v for k, v in held_out(9, 12).items() if k != "accuracy_ci95"}
    run = TrainingRun.objects.create(
        dataset=dataset,
        status=TrainingRun.Status.SUCCEEDED,
        step=8,
        total_steps=8,
        metrics=[{"step": 4, "loss": 0.6, "accuracy": 0.7, "eval": old}],
        final_metrics=old,
    )
    RewardModel.objects.create(
        identifier="rm-old",
        run=run,
        project=dataset.project,
        dataset=dataset,
        base_model=run.base_model,
        artifact="/x",
    )
    client = logged_in(admin_user)
    page = client.get(f"/runs/{run.pk}/").content.decode()
    assert "75.0% (95% CI 46.8–91.1%) on 12 pairs" in page
    assert "chance: 50.0% (the untrained model was not measured)" in page
    assert "includes 50.0%, what guessing gets" in page
    assert ">untrained model</text>" not in page
    for url in ("/runs/", "/models/", "/models/rm-old/", "/models/compare/?m=rm-old"):
        response = client.get(url)
        assert response.status_code == 200, url
    assert "75.0% (95% CI 46.8–91.1%) on 12 pairs" in client.get("/models/rm-old/").content.decode()
    bare = TrainingRun.objects.create(
        dataset=dataset, status="succeeded", final_metrics={"accuracy": 0.875}
    )
    assert "held-out-check" not in run_page(admin_user, bare)  # no n: no interval to show


def test_model_page_sets_the_model_against_its_untrained_start(dataset, lead):
    run = finished_run(dataset, held_out(53, 100), held_out(50, 100))
    model = RewardModel.objects.create(
        identifier="rm-7-fruit-v1", run=run, project=dataset.project,
        dataset=dataset, base_model=run.base_model,
        artifact=run.artifact,
    )  # fmt: skip
    page = logged_in(lead).get(f"/models/{model.identifier}/").content.decode()
    assert "53.0% (95% CI 43.3–62.5%) on 100 pairs" in page
    assert "untrained: 50.0% (95% CI 40.4–59.6%)" in page and 'id="training-warning"' in page
    assert "pairwise accuracy on 100 pairs (95% CI 43.3–62.5%)" in page  # the figures too


def test_evaluations_on_the_runs_own_test_split_show_the_untrained_model(dataset, project, lead):
    from annotation.curation.selection import CurationFilters
    from annotation.curation.services import dataset_curate

    run = finished_run(dataset, held_out(212, 363), held_out(183, 363))
    model = RewardModel.objects.create(
        identifier="rm-8-fruit-v1", run=run, project=dataset.project,
        dataset=dataset, base_model=run.base_model,
        artifact=run.artifact,
    )  # fmt: skip
    other = dataset_curate(
        project=project, name="other", filters=CurationFilters(test_fraction=0.5), user=None
    )
    own, elsewhere = (
        EvaluationRun.objects.create(
            reward_model=model, dataset=version, status="succeeded", metrics=held_out(40, 48)
        )
        for version in (dataset, other)
    )
    client = logged_in(lead)
    page = client.get(f"/evaluations/{own.pk}/").content.decode()
    assert "83.3% (95% CI 70.4–91.3%) on 48 pairs" in page
    assert "untrained: 50.4% (95% CI 45.3–55.5%)" in page
    page = client.get(f"/evaluations/{elsewhere.pk}/").content.decode()
    assert "83.3% (95% CI 70.4–91.3%) on 48 pairs" in page and "untrained:" not in page
    compare = client.get(f"/models/compare/?m={model.identifier}").content.decode()
    row = compare.split("<th>Untrained model's accuracy</th>")[1].split("</tr>")[0]
    assert "50.4%" in row and "45.3–55.5%" in row
    row = compare.split("<th>Accuracy, 95% interval</th>")[1].split("</tr>")[0]
    assert "53.3–63.4%" in row


@pytest.mark.parametrize(
    ("right", "n", "untrained", "verdict"),
    [(212, 363, 0.504, "clear"), (53, 100, 0.5, "inside"), (30, 100, 0.55, "below"),
     (3, 3, 0.5, "too_few"), (4, 4, 0.5, "clear"), (400, 400, 1.0, "nothing_to_measure"),
     (399, 400, 1.0, "below")],
)  # fmt: skip
def test_verdicts(right, n, untrained, verdict):
    check = held_out_check(figures=held_out(right, n), untrained={"accuracy": untrained, "n": n})
    assert check.verdict == verdict
    assert bool(check.warning) is (verdict != "clear")


def test_lists_flag_runs_and_models_that_may_not_have_worked(
    dataset, admin_user, django_assert_max_num_queries
):
    doubtful = finished_run(dataset, held_out(53, 100), held_out(50, 100))
    clear = finished_run(dataset, held_out(212, 363), held_out(183, 363))
    for run in (doubtful, clear):
        RewardModel.objects.create(
            identifier=f"rm-{run.pk}", run=run, project=dataset.project,
            dataset=dataset, base_model=run.base_model,
            artifact=run.artifact,
        )  # fmt: skip
    client = logged_in(admin_user)
    for url in ("/runs/", "/models/"):
        with django_assert_max_num_queries(12):  # no timeline loaded per row
            page = client.get(url).content.decode()
        rows = {row.split('href="')[1].split('"')[0]: row for row in page.split("<tr>")[2:]}
        prefix = "/runs/" if url == "/runs/" else "/models/rm-"
        assert "may not have worked" in rows[f"{prefix}{doubtful.pk}/"]
        assert "includes the untrained model&#x27;s accuracy" in rows[f"{prefix}{doubtful.pk}/"]
        assert "may not have worked" not in rows[f"{prefix}{clear.pk}/"]
