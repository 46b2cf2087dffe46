"""The reward-model pages: a model's lineage and evaluations, evaluation and filter pages,
the download of kept rows, and the side-by-side comparison."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from annotation.models import CuratedDataset
from rewardmodels.models import EvaluationRun, FilterRun, RewardModel, TrainingRun


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def figures(accuracy, *, easy, hard, ece=0.05, shorter=0.6, longer=0.9, correlation=0.3, n=40):
    """workers.ml.metrics' dictionary, with the numbers a test looks for."""
    return {
        "n": n,
        "accuracy": accuracy,
        "loss": 0.5,
        "mean_reward_gap": 0.8,
        "ece": ece,
        "reward_mean": 0.1,
        "reward_std": 1.2,
        "by_difficulty": {
            "easy": {"accuracy": easy, "n": 20},
            "medium": {"accuracy": 0.7, "n": 12},
            "hard": {"accuracy": hard, "n": 8},
        },
        "length": {
            "reward_length_correlation": correlation,
            "accuracy_chosen_shorter": shorter,
            "accuracy_chosen_longer": longer,
            "pairs_chosen_shorter": 18,
            "pairs_chosen_longer": 22,
        },
        "truncated_pairs": 0,
    }


def version(project, number: int, n_test: int = 10) -> CuratedDataset:
    return CuratedDataset.objects.create(
        project=project,
        name="fruit",
        version=number,
        identifier=f"fruit@v{number}",
        n_rows=40 + n_test,
        n_train=40,
        n_test=n_test,
    )


def registered(dataset, identifier: str, final: dict) -> RewardModel:
    """A reward model as a succeeded run registers it, without training anything."""
    run = TrainingRun.objects.create(
        dataset=dataset,
        status=TrainingRun.Status.SUCCEEDED,
        final_metrics=final,
        artifact=f"/media/runs/{identifier}/model",
    )
    return RewardModel.objects.create(
        identifier=identifier,
        run=run,
        project=dataset.project,
        dataset=dataset,
        base_model=run.base_model,
        artifact=run.artifact,
    )


@pytest.fixture
def v1(project):
    return version(project, 1)


@pytest.fixture
def v2(project):
    return version(project, 2, n_test=12)


@pytest.fixture
def first(v1):
    return registered(v1, "rm-1-fruit-v1", figures(0.75, easy=0.85, hard=0.55))


@pytest.fixture
def second(v2):
    return registered(v2, "rm-2-fruit-v2", figures(0.8125, easy=0.9, hard=0.625))


@pytest.fixture
def evaluation(first, v2):
    return EvaluationRun.objects.create(
        reward_model=first,
        dataset=v2,
        status=EvaluationRun.Status.SUCCEEDED,
        done=24,
        total=24,
        metrics=figures(0.6875, easy=0.8, hard=0.4375, ece=0.111),
    )


@pytest.fixture
def filter_run(first):
    return FilterRun.objects.create(
        reward_model=first,
        upload_name="outputs.jsonl",
        candidates_file="/nowhere/candidates.jsonl",
        keep_top=0.25,
        total=8,
        n_prompts=2,
    )


def jsonl(name: str, rows: list[dict]) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, "".join(json.dumps(row) + "\n" for row in rows).encode())


CANDIDATES = [
    {"prompt": "Name a fruit.", "responses": ["Apple.", "Pear.", "A car.", "Plum."]},
    {"prompt": "Name a colour.", "responses": ["Red.", "Blue.", "Seven."]},
]


@pytest.mark.parametrize("who", ["annotator", "outsider"])
def test_others_get_404_on_every_page_and_post(who, request, first, evaluation, filter_run):
    client = logged_in(request.getfixturevalue(who))
    for url in (
        f"/models/{first.identifier}/",
        f"/models/compare/?models={first.identifier}",
        f"/evaluations/{evaluation.pk}/",
        f"/evaluations/{evaluation.pk}/progress.json",
        f"/filters/{filter_run.pk}/",
        f"/filters/{filter_run.pk}/progress.json",
        f"/filters/{filter_run.pk}/kept.jsonl",
    ):
        assert client.get(url).status_code == 404, url
    evaluate = {"dataset": "fruit@v1", "format": "auto"}
    assert client.post(f"/models/{first.identifier}/evaluate/", evaluate).status_code == 404
    upload = {"candidates": jsonl("c.jsonl", CANDIDATES), "keep_top": "0.25", "normalize": "none"}
    assert client.post(f"/models/{first.identifier}/filter/", upload).status_code == 404
    assert (EvaluationRun.objects.count(), FilterRun.objects.count()) == (1, 1)
    assert first.identifier not in client.get("/models/").content.decode()


def test_anonymous_is_sent_to_log_in(first):
    response = Client().get(f"/models/{first.identifier}/")
    assert response.status_code == 302 and response.url.startswith("/accounts/login/")


def test_model_page_shows_lineage_figures_evaluations_and_forms(lead, project, first, evaluation):
    version(project, 3, n_test=0)  # no test split: nothing to evaluate on
    page = logged_in(lead).get(f"/models/{first.identifier}/").content.decode()
    assert 'href="/datasets/fruit@v1/"' in page and f'href="/runs/{first.run_id}/"' in page
    assert first.base_model in page and first.artifact in page
    assert "Held-out figures (final, fruit@v1 test split)" in page and "75.0%" in page
    row = page.split(f'href="/evaluations/{evaluation.pk}/"')[1].split("</tr>")[0]
    assert "fruit@v2 (test)" in row and "68.8%" in row and "0.111" in row and ">40<" in row
    assert 'id="evaluate-form"' in page and 'enctype="multipart/form-data"' in page
    select = page.split('name="dataset"')[1].split("</select>")[0]
    assert "fruit@v1" in select and "fruit@v2" in select and "fruit@v3" not in select
    assert 'id="filter-form"' in page and 'name="keep_top" value="0.25"' in page
    assert "Reward with the model&#x27;s length trend removed" in page
    assert f'name="m" value="{first.identifier}"' in page  # compare, with this model picked


def test_a_registered_models_page_names_its_project(lead, project):
    model = RewardModel.objects.create(
        identifier="shelf-rm", project=project, base_model="someone/rm", artifact="/models/rm"
    )
    page = logged_in(lead).get(f"/models/{model.identifier}/").content.decode()
    assert "(Helpfulness versions with one)" in page and "( versions" not in page
    assert "No other model of Helpfulness yet." in page


def test_the_model_page_says_whether_the_model_serves_its_project(lead, project, first, second):
    from rewardmodels.models import Promotion

    url = f"/models/{first.identifier}/"
    assert "<h2>Not serving Helpfulness" in logged_in(lead).get(url).content.decode()
    Promotion.objects.create(project=project, reward_model=first, promoted=True)
    assert "<h2>Serving Helpfulness" in logged_in(lead).get(url).content.decode()
    other = logged_in(lead).get(f"/models/{second.identifier}/").content.decode()
    assert "<h2>Not serving Helpfulness" in other


def test_models_list(lead, admin_user, outsider, first, second):
    elsewhere = CuratedDataset.objects.create(
        project=outsider.memberships.get().project,
        name="elsewhere",
        version=1,
        identifier="elsewhere@v1",
        n_rows=10,
        n_train=8,
        n_test=2,
    )
    hidden = registered(elsewhere, "rm-9-elsewhere-v1", figures(0.5, easy=0.5, hard=0.5))
    page = logged_in(lead).get("/models/").content.decode()
    assert 'href="/models/rm-1-fruit-v1/"' in page and 'href="/models/rm-2-fruit-v2/"' in page
    assert hidden.identifier not in page
    assert "81.2%" in page and "75.0%" in page and 'href="/datasets/fruit@v2/"' in page
    assert 'href="/models/"' in page  # the nav link
    assert hidden.identifier in logged_in(admin_user).get("/models/").content.decode()


def test_compare_shows_both_models_side_by_side_on_one_version(lead, first, second, evaluation):
    EvaluationRun.objects.create(  # older, and superseded by the next one
        reward_model=second, dataset=second.dataset, status="succeeded", metrics={"accuracy": 0.1}
    )
    EvaluationRun.objects.create(
        reward_model=second,
        dataset=second.dataset,
        status=EvaluationRun.Status.SUCCEEDED,
        metrics=figures(0.8333, easy=0.95, hard=0.5833, ece=0.222, correlation=-0.4),
    )
    EvaluationRun.objects.create(  # failed ones are not figures
        reward_model=second, dataset=second.dataset, status="failed", metrics={}
    )
    response = logged_in(lead).get(f"/models/compare/?models={first},{second}&data=fruit@v2")
    assert response.status_code == 200
    page = response.content.decode()
    table = page.split('id="comparison"')[1].split("</table>")[0]
    head = table.split("</thead>")[0]
    assert head.index("rm-1-fruit-v1") < head.index("rm-2-fruit-v2")

    def cells(name: str) -> list[str]:
        row = table.split(f"<th>{name}</th>")[1].split("</tr>")[0]
        return [cell.split("</td>")[0].strip() for cell in row.split("<td>")[1:]]

    assert cells("Pairwise accuracy") == ["68.8%", "83.3%"]
    assert [c.split(" ")[0] for c in cells("Accuracy, hard")] == ["43.8%", "58.3%"]
    assert cells("Calibration error (ECE)") == ["0.111", "0.222"]
    assert cells("Length–reward correlation") == ["0.300", "-0.400"]
    assert "10.0%" not in table  # the older evaluation is not shown
    assert page.count("<svg") == 2  # by difficulty, and length bias
    chart = page.split('id="difficulty-chart"')[1]
    assert "rm-1-fruit-v1, hard: 43.8%" in chart and "rm-2-fruit-v2, hard: 58.3%" in chart


def test_compare_on_own_test_splits_uses_training_figures(lead, first, second):
    second.run.learning_rate, second.run.lora_rank = 5e-5, 32
    second.run.save()
    page = logged_in(lead).get(f"/models/compare/?m={first}&m={second}").content.decode()
    differences = page.split('id="differences"')[1].split("</table>")[0]
    assert [row.split("</th>")[0] for row in differences.split("<tr><th>")[2:]] == [
        "dataset version", "learning rate", "LoRA rank",
    ]  # fmt: skip
    assert "<code>fruit@v1</code>" in differences and "<code>32</code>" in differences
    table = page.split('id="comparison"')[1].split("</table>")[0]
    assert "75.0%" in table and "81.2%" in table
    assert f'href="/runs/{first.run_id}/"' in table
    assert 'value="rm-1-fruit-v1" checked' in page and 'value="rm-2-fruit-v2" checked' in page


def test_compare_offers_to_queue_a_missing_evaluation(
    lead, first, second, evaluation, django_capture_on_commit_callbacks
):
    url = f"/models/compare/?models={first},{second}&data=fruit@v1"
    client = logged_in(lead)
    page = client.get(url).content.decode()
    # The first was trained on v1: its run's final figures are an evaluation of that split.
    assert page.count("No evaluation on fruit@v1 yet.") == 1
    assert f'href="/runs/{first.run_id}/"' in page
    assert f'action="/models/{second}/evaluate/"' in page

    with django_capture_on_commit_callbacks() as queued:
        response = client.post(
            f"/models/{second}/evaluate/", {"dataset": "fruit@v1", "format": "auto", "next": url}
        )
    assert response.status_code == 302 and response.url == url
    queued_run = EvaluationRun.objects.get(reward_model=second)
    assert (queued_run.dataset.identifier, queued_run.total, queued_run.created_by) == (
        "fruit@v1",
        20,
        lead,
    )
    assert len(queued) == 1
    page = client.get(url).content.decode()
    assert f"evaluation {queued_run.pk}</a> on fruit@v1 is queued" in page
    assert page.count("No evaluation on fruit@v1 yet.") == 0


def test_compare_refuses_a_next_url_elsewhere(lead, first, v1):
    response = logged_in(lead).post(
        f"/models/{first}/evaluate/",
        {"dataset": "fruit@v1", "format": "auto", "next": "https://evil.example/"},
    )
    assert response.url == f"/evaluations/{EvaluationRun.objects.get().pk}/"


def test_compare_404s_for_a_model_or_version_the_user_cannot_see(lead, first, outsider):
    client = logged_in(lead)
    assert client.get("/models/compare/?models=rm-404").status_code == 404
    assert client.get(f"/models/compare/?models={first}&data=nowhere@v1").status_code == 404
    assert (
        "No reward models you can see"
        in logged_in(outsider).get("/models/compare/").content.decode()
    )


def test_bad_evaluation_upload_shows_the_error_and_creates_nothing(lead, first):
    bad = jsonl("pairs.jsonl", [{"prompt": "Hi", "chosen": "Hello!"}])
    response = logged_in(lead).post(f"/models/{first}/evaluate/", {"pairs": bad, "format": "auto"})
    assert response.status_code == 400
    page = response.content.decode()
    form = page.split('id="evaluate-form"')[1]
    field = form.split('name="pairs"')[1].split("</div>")[0]
    assert "bad rows, nothing accepted" in field and "line 1" in field
    assert not EvaluationRun.objects.exists()


def test_unreadable_evaluation_file_and_missing_choice(lead, first, v1):
    client = logged_in(lead)
    response = client.post(
        f"/models/{first}/evaluate/",
        {"pairs": SimpleUploadedFile("<b>pairs<b>.txt", b"x"), "format": "auto"},
    )
    page = response.content.decode()
    assert response.status_code == 400 and "cannot tell the format" in page
    assert "<b>pairs" not in page and "&lt;b&gt;pairs&lt;b&gt;.txt" in page
    response = client.post(f"/models/{first}/evaluate/", {"format": "auto"})
    assert response.status_code == 400 and 'id="evaluate-errors"' in response.content.decode()
    pair = {"prompt": "Hi", "chosen": "Hello!", "rejected": "Go away."}
    both = {"dataset": "fruit@v1", "pairs": jsonl("p.jsonl", [pair]), "format": "auto"}
    assert "not both" in client.post(f"/models/{first}/evaluate/", both).content.decode()
    assert not EvaluationRun.objects.exists()


def test_evaluating_on_an_uploaded_file(lead, first, django_capture_on_commit_callbacks):
    rows = [{"prompt": f"Q{k}", "chosen": "Good.", "rejected": "Bad."} for k in range(3)]
    with django_capture_on_commit_callbacks() as queued:
        response = logged_in(lead).post(
            f"/models/{first}/evaluate/", {"pairs": jsonl("held.jsonl", rows), "format": "auto"}
        )
    evaluation = EvaluationRun.objects.get()
    assert response.status_code == 302 and response.url == f"/evaluations/{evaluation.pk}/"
    assert (evaluation.upload_name, evaluation.total, evaluation.dataset) == ("held.jsonl", 6, None)
    assert len(queued) == 1


def test_a_version_of_another_project_is_not_a_choice(lead, first, outsider):
    CuratedDataset.objects.create(
        project=outsider.memberships.get().project,
        name="elsewhere",
        version=1,
        identifier="elsewhere@v1",
        n_rows=10,
        n_train=8,
        n_test=2,
    )
    response = logged_in(lead).post(
        f"/models/{first}/evaluate/", {"dataset": "elsewhere@v1", "format": "auto"}
    )
    assert response.status_code == 400 and "Select a valid choice" in response.content.decode()
    assert not EvaluationRun.objects.exists()


def test_filter_upload_creates_a_filter_run(lead, first, django_capture_on_commit_callbacks):
    client = logged_in(lead)
    with django_capture_on_commit_callbacks() as queued:
        response = client.post(
            f"/models/{first}/filter/",
            {
                "candidates": jsonl("outputs.jsonl", CANDIDATES),
                "keep_top": "0.5",
                "threshold": "",
                "normalize": "length",
                "format": "auto",
            },
        )
    job = FilterRun.objects.get()
    assert response.status_code == 302 and response.url == f"/filters/{job.pk}/"
    assert (job.total, job.n_prompts, job.keep_top, job.normalize) == (7, 2, 0.5, "length")
    assert (job.status, job.created_by, job.upload_name) == ("queued", lead, "outputs.jsonl")
    assert len(queued) == 1  # sent once committed; not run in this test
    page = client.get(response.url).content.decode()
    assert "waiting for a worker on the scoring queue" in page and 'data-finished="0"' in page
    counts = page.split('id="counts"')[1].split("</section>")[0]
    assert ">7<" in counts and ">2<" in counts and 'id="download"' not in counts
    assert "Reward with the model&#x27;s length trend removed" in page and "50.0%" in page


def test_bad_filter_settings_and_files_create_nothing(lead, first):
    client = logged_in(lead)
    url = f"/models/{first}/filter/"
    base = {"normalize": "none", "format": "auto"}
    response = client.post(
        url, {**base, "candidates": jsonl("c.jsonl", CANDIDATES), "keep_top": "2"}
    )
    assert response.status_code == 400 and "less than or equal to 1" in response.content.decode()
    response = client.post(
        url, {**base, "candidates": jsonl("c.jsonl", CANDIDATES), "keep_top": ""}
    )
    assert response.status_code == 400 and 'id="filter-errors"' in response.content.decode()
    bad = jsonl("c.jsonl", [{"prompt": "Hi", "responses": []}])
    response = client.post(url, {**base, "candidates": bad, "keep_top": "0.25"})
    page = response.content.decode()
    assert response.status_code == 400 and "nothing accepted" in page and "line 1" in page
    assert not FilterRun.objects.exists()


def test_kept_rows_download_only_once_succeeded(lead, filter_run, tmp_path):
    client = logged_in(lead)
    url = f"/filters/{filter_run.pk}/kept.jsonl"
    output = tmp_path / "kept.jsonl"
    output.write_text(
        '{"prompt": "Name a fruit.", "response": "<b>Apple</b>.", "reward": 1.5, "rank": 1}\n'
    )
    filter_run.output_file = str(output)
    filter_run.save()
    assert client.get(url).status_code == 404  # queued: not ready even if a file is there
    filter_run.status = FilterRun.Status.FAILED
    filter_run.save()
    assert client.get(url).status_code == 404

    filter_run.status = FilterRun.Status.SUCCEEDED
    filter_run.n_kept = 1
    filter_run.save()
    response = client.get(url)
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment")
    assert f"filter-{filter_run.pk}-kept.jsonl" in response["Content-Disposition"]
    assert b"".join(response.streaming_content) == output.read_bytes()
    page = client.get(f"/filters/{filter_run.pk}/").content.decode()
    assert f'href="{url}"' in page and 'data-finished="1"' in page
    assert "&lt;b&gt;Apple&lt;/b&gt;." in page and "<td>1.500</td>" in page  # inert, scored

    output.unlink()
    assert client.get(url).status_code == 404


def test_filter_page_sets_kept_lengths_beside_all_candidates_and_warns(lead, filter_run):
    client = logged_in(lead)
    url = f"/filters/{filter_run.pk}/"
    assert 'id="lengths"' not in client.get(url).content.decode()  # nothing recorded yet
    filter_run.status = FilterRun.Status.SUCCEEDED
    filter_run.lengths = {
        "kept": {"n": 2, "q1": 50.0, "median": 60.0, "q3": 70.0},
        "candidates": {"n": 8, "q1": 27.5, "median": 45.0, "q3": 62.5},
        "median_ratio": 60 / 45, "longer_ratio": 1.25, "kept_longer": True,
    }  # fmt: skip
    filter_run.save()
    page = client.get(url).content.decode()
    shown = page.split('id="lengths"')[1].split("</section>")[0]
    assert "<tr><th>Median</th><td>60</td><td>45</td></tr>" in shown
    assert "<tr><th>First quartile</th><td>50</td><td>27.5</td></tr>" in shown
    assert "<tr><th>Third quartile</th><td>70</td><td>62.5</td></tr>" in shown
    assert "<tr><th>Responses</th><td>2</td><td>8</td></tr>" in shown
    assert 'id="length-warning"' in shown and "1.33×" in shown
    assert "at least 1.25" in shown  # the rule is said on the page
    assert "<svg" in shown and "<script" not in shown
    assert "kept, median: 60" in shown and "all candidates, median: 45" in shown  # the bars

    filter_run.lengths = {
        **filter_run.lengths, "kept": {"n": 2, "q1": 20.0, "median": 30.0, "q3": 40.0},
        "median_ratio": 30 / 45, "kept_longer": False,
    }  # fmt: skip
    filter_run.save()
    shown = client.get(url).content.decode().split('id="lengths"')[1].split("</section>")[0]
    assert "<tr><th>Median</th><td>30</td><td>45</td></tr>" in shown
    assert 'id="length-warning"' not in shown and "0.67" in shown


def test_evaluation_page_follows_progress_then_shows_figures(lead, first, v2, evaluation):
    running = EvaluationRun.objects.create(
        reward_model=first, dataset=v2, status="running", done=6, total=24
    )
    client = logged_in(lead)
    page = client.get(f"/evaluations/{running.pk}/").content.decode()
    assert "width: 25.0%" in page and "6 / 24 responses scored" in page
    assert 'data-finished="0"' in page and "ui/job.js" in page
    assert "<svg" not in page
    data = client.get(f"/evaluations/{running.pk}/progress.json").json()
    assert (data["status"], data["done"], data["total"], data["finished"]) == (
        "running",
        6,
        24,
        False,
    )
    assert data["progress"] == 0.25

    page = client.get(f"/evaluations/{evaluation.pk}/").content.decode()
    assert 'data-finished="1"' in page and "68.8%" in page and "accuracy, hard" in page
    chart = page.split('id="by-difficulty"')[1]
    assert "<svg" in chart and "rm-1-fruit-v1, hard: 43.8%" in chart


def test_failed_evaluation_shows_its_error(lead, first):
    failed = EvaluationRun.objects.create(
        reward_model=first,
        upload_name="x.jsonl",
        status="failed",
        error="RuntimeError: <img src=x onerror=alert(1)>",
    )
    page = logged_in(lead).get(f"/evaluations/{failed.pk}/").content.decode()
    assert "RuntimeError: &lt;img src=x onerror=alert(1)&gt;" in page
    assert "<img src=x" not in page and 'id="job-error" hidden' not in page


def test_html_in_model_and_upload_names_is_escaped(lead, admin_user, v1, v2):
    evil = '<img src=x onerror="alert(1)">'
    model = registered(v1, f"rm-{evil}", figures(0.75, easy=0.8, hard=0.6))
    other = registered(v2, "rm-2-fruit-v2", figures(0.8, easy=0.8, hard=0.6))
    evaluation = EvaluationRun.objects.create(
        reward_model=model,
        upload_name=f"{evil}.jsonl",
        status="succeeded",
        metrics=figures(0.7, easy=0.8, hard=0.6),
    )
    job = FilterRun.objects.create(reward_model=model, upload_name=f"{evil}.jsonl", keep_top=0.25)
    client = logged_in(lead)
    compare = client.get("/models/compare/", {"m": [model.identifier, other.identifier]})
    pages = [
        client.get("/models/"),
        client.get(f"/models/{model.identifier}/"),
        client.get(f"/evaluations/{evaluation.pk}/"),
        client.get(f"/filters/{job.pk}/"),
        compare,
        logged_in(admin_user).get(f"/runs/{model.run_id}/"),
    ]
    for response in pages:
        assert response.status_code == 200
        page = response.content.decode()
        assert "<img src=x" not in page and "&lt;img src=x" in page


def test_run_page_links_to_its_model(lead, first):
    page = logged_in(lead).get(f"/runs/{first.run_id}/").content.decode()
    assert f'href="/models/{first.identifier}/"' in page
