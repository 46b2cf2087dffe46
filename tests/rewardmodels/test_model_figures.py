"""The length-debiased accuracy and the calibration against people's votes on the
evaluation, model and compare pages, and how figures from before them still show."""

import pytest

from rewardmodels.models import EvaluationRun
from tests.rewardmodels.test_model_pages import figures, logged_in, registered, version

pytestmark = pytest.mark.django_db

PEOPLE = {
    "n": 30,
    "brier": 0.0412,
    "brier_baseline": 0.0571,
    "mean_share": 0.8,
    "bins": [
        {"predicted": 0.55, "observed": 0.6, "n": 10},
        {"predicted": 0.93, "observed": 0.9, "n": 20},
    ],
}


def debiased(accuracy, **kwargs) -> dict:
    """figures() as workers.ml.metrics now records them: 85% with the chosen response the
    shorter, 31% with it the longer."""
    measured = figures(accuracy, shorter=0.85, longer=0.31, **kwargs)
    measured["length_debiased_accuracy"] = 0.58
    measured["length_debiased_accuracy_ci95"] = [0.5012, 0.6534]
    measured["length"]["accuracy_chosen_shorter_ci95"] = [0.6396, 0.9476]
    measured["length"]["accuracy_chosen_longer_ci95"] = [0.1628, 0.5107]
    return measured


@pytest.fixture
def model(project):
    v1 = version(project, 1)
    return registered(v1, "rm-1-fruit-v1", debiased(0.75, easy=0.85, hard=0.55))


def evaluated(model, metrics: dict) -> EvaluationRun:
    return EvaluationRun.objects.create(
        reward_model=model, dataset=model.dataset, status=EvaluationRun.Status.SUCCEEDED,
        done=80, total=80, metrics=metrics,
    )  # fmt: skip


def test_evaluation_page_shows_the_length_debiased_accuracy_and_calibration(lead, model):
    evaluation = evaluated(
        model, {**debiased(0.62, easy=0.8, hard=0.4), "people_calibration": PEOPLE}
    )
    page = logged_in(lead).get(f"/evaluations/{evaluation.pk}/").content.decode()
    shown = page.split('id="figures"')[1].split("</section>")[0]
    debiased_figure = shown.split('id="length-debiased-accuracy"')[1].split("</div>")[0]
    assert "58.0%" in debiased_figure and "95% CI 50.1–65.3%" in debiased_figure
    assert "85.0%" in shown and "(18 pairs, 95% CI 64.0–94.8%)" in shown
    assert "31.0%" in shown and "(22 pairs, 95% CI 16.3–51.1%)" in shown
    assert "only follows length scores 50%" in shown  # what the figure means
    assert "0.041" in shown.split('id="people-brier"')[1] and "0.057" in shown
    calibration = page.split('id="people-calibration"')[1].split("</section>")[0]
    assert "<svg" in calibration and "as sure as people" in calibration
    assert "<td>55.0%</td><td>60.0%</td><td>10</td>" in calibration


def test_model_page_draws_the_reliability_chart_of_its_newest_measured_evaluation(lead, model):
    evaluated(model, {**debiased(0.6, easy=0.8, hard=0.4), "people_calibration": PEOPLE})
    newer = evaluated(model, debiased(0.7, easy=0.8, hard=0.4))  # pairs of one vote each
    newer.metrics["people_calibration"] = {"n": 0}
    newer.save()
    client = logged_in(lead)
    page = client.get(f"/models/{model.identifier}/").content.decode()
    held_out = page.split('id="held-out"')[1].split("</section>")[0]
    assert "58.0%" in held_out and "95% CI 50.1–65.3%" in held_out
    row = page.split(f'href="/evaluations/{newer.pk}/"')[1].split("</tr>")[0]
    assert "70.0%" in row and "58.0%" in row  # accuracy, and its length-debiased twin
    calibration = page.split('id="people-calibration"')[1].split("</section>")[0]
    assert f'href="/evaluations/{newer.pk - 1}/"' in calibration
    assert 'id="people-brier-score">0.041<' in calibration and "0.057" in calibration
    assert "<svg" in calibration and "<polyline" in calibration
    assert "people&#x27;s share, by the model&#x27;s probability at 0.93: 0.9" in calibration

    EvaluationRun.objects.all().delete()  # nothing measured against people: no chart
    assert (
        'id="people-calibration"' not in client.get(f"/models/{model.identifier}/").content.decode()
    )


def test_compare_page_sets_the_length_debiased_accuracies_side_by_side(lead, model):
    other = registered(model.dataset, "rm-2-fruit-v1", figures(0.8, easy=0.9, hard=0.6))
    evaluated(model, {**debiased(0.62, easy=0.8, hard=0.4), "people_calibration": PEOPLE})
    url = f"/models/compare/?m={model}&m={other}&data={model.dataset.identifier}"
    table = logged_in(lead).get(url).content.decode().split('id="comparison"')[1]
    table = table.split("</table>")[0]

    def cells(name: str) -> list[str]:
        row = table.split(f"<th>{name}</th>")[1].split("</tr>")[0]
        return [cell.split("</td>")[0].strip() for cell in row.split("<td>")[1:]]

    # The second model's figures were recorded before the length-debiased accuracy: n/a.
    ours, theirs = cells("Length-debiased accuracy")
    assert ours == '<strong>58.0%</strong> <small class="muted">(50.1–65.3%)</small>'
    assert "n/a" in theirs and "(–)" in theirs
    assert "(18 pairs, 64.0–94.8%)" in cells("Accuracy when chosen is shorter")[0]
    assert "(22 pairs, 16.3–51.1%)" in cells("Accuracy when chosen is longer")[0]
    assert "(18 pairs, –)" in cells("Accuracy when chosen is shorter")[1]
    brier = cells("Brier score against people")
    assert brier[0].startswith("0.041") and "30 pairs" in brier[0] and "–" in brier[1]


def test_figures_from_before_still_show(lead, project):
    old = registered(version(project, 1), "rm-1-fruit-v1", figures(0.75, easy=0.85, hard=0.55))
    evaluation = evaluated(old, figures(0.6875, easy=0.8, hard=0.4375))
    client = logged_in(lead)
    for url in (f"/models/{old.identifier}/", f"/evaluations/{evaluation.pk}/"):
        response = client.get(url)
        assert response.status_code == 200
        page = response.content.decode()
        shown = page.split('id="length-debiased-accuracy"')[1].split("</div>")[0]
        assert "n/a" in shown and "95% CI" not in shown
        assert "(18 pairs)" in page and 'id="people-calibration"' not in page
