"""The training pages: launch from a dataset version, watch a run, cancel, list runs."""

import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from annotation.curation.selection import CurationFilters
from annotation.curation.services import dataset_curate
from annotation.models import CuratedDataset
from rewardmodels.models import RewardModel, TrainingRun
from rewardmodels.training.views import duration
from tests.conftest import logged_in
from workers.ml.config import PACKAGED_MODEL


def launch(client, dataset, **fields):
    """POST the training form with its defaults, changed by `fields`."""
    data = {
        "base_model": PACKAGED_MODEL,
        "method": "lora",
        "learning_rate": "0.0002",
        "batch_size": "8",
        "epochs": "1",
        "max_pairs": "",
        "lora_rank": "16",
        "lora_alpha": "32",
        "lora_dropout": "0.05",
        "lora_target_modules": "",
        "center_rewards": "0",
        "length_penalty": "0",
        "gradient_accumulation": "1",
        "warmup_ratio": "0.05",
        "max_length": "128",
        "eval_every": "10",
        "checkpoint_every": "100",
        "seed": "0",
        "processes": "0",
        **fields,
    }
    return client.post(f"/datasets/{dataset.identifier}/train/", data)


METRICS = [
    {"step": 1, "loss": 0.69, "accuracy": 0.5, "tokens_per_second": 1234.5, "eta_seconds": 90},
    {
        "step": 2,
        "loss": 0.55,
        "accuracy": 0.75,
        "tokens_per_second": 1300.0,
        "eta_seconds": 80,
        "eval": {
            "loss": 0.6,
            "accuracy": 0.8125,
            "mean_reward_gap": 0.42,
            "reward_mean": 0.01,
            "reward_std": 0.9,
            "ece": 0.05,
            "by_difficulty": {"easy": {"accuracy": 0.9, "n": 8}, "hard": {"accuracy": 0.6, "n": 4}},
            "length": {"reward_length_correlation": 0.12, "accuracy_chosen_shorter": 0.7},
            "n": 12,
        },
    },
]


@pytest.fixture
def running(dataset):
    return TrainingRun.objects.create(
        dataset=dataset,
        status=TrainingRun.Status.RUNNING,
        step=2,
        total_steps=8,
        eta_seconds=3725,
        metrics=METRICS,
        log_tail="step 2/8: loss 0.55",
    )


def test_admin_sees_the_form_with_the_models_defaults(dataset, admin_user):
    page = logged_in(admin_user).get(f"/datasets/{dataset.identifier}/").content.decode()
    assert f'action="/datasets/{dataset.identifier}/train/"' in page
    assert f'value="{PACKAGED_MODEL}"' in page
    assert "<details" in page and "LoRA target modules" in page
    assert "1-3: reward models overfit fast." in page  # help text from the model


def test_lead_sees_runs_on_the_dataset_page_but_no_form(dataset, lead):
    TrainingRun.objects.create(dataset=dataset)
    page = logged_in(lead).get(f"/datasets/{dataset.identifier}/").content.decode()
    assert "train-form" not in page
    assert "Run " in page and "Queued" in page


def test_admin_launches_a_run(dataset, admin_user, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as queued:
        response = launch(logged_in(admin_user), dataset, epochs="2", margin_loss="on")
    run = TrainingRun.objects.get()
    assert response.status_code == 302 and response.url == f"/runs/{run.pk}/"
    assert (run.epochs, run.margin_loss, run.batch_size, run.created_by) == (
        2.0,
        True,
        8,
        admin_user,
    )
    assert len(queued) == 1  # sent to the gpu queue once the row is committed


def test_a_dataset_without_test_split_is_refused(project, dataset, admin_user):
    no_test = dataset_curate(
        project=project, name="all-train", filters=CurationFilters(test_fraction=0.0), user=None
    )
    response = launch(logged_in(admin_user), no_test)
    assert response.status_code == 400
    page = response.content.decode()
    assert "has no test split" in page and 'id="train-errors"' in page
    assert not TrainingRun.objects.exists()


def test_an_unknown_base_model_is_shown_next_to_its_field(dataset, admin_user):
    response = launch(logged_in(admin_user), dataset, base_model="/nowhere/<model>")
    page = response.content.decode()
    assert response.status_code == 400
    assert "Cannot find" in page and "&#x27;/nowhere/&lt;model&gt;&#x27;" in page
    field = page.split('name="base_model"')[1].split("</div>")[0]
    assert "errorlist" in field  # the message sits with the field
    assert not TrainingRun.objects.exists()


@pytest.mark.parametrize(
    ("base_model", "message"),
    [
        ("http://127.0.0.1:1/x", "is a URL: base models load offline"),
        ("hf://owner/name", "is a URL: base models load offline"),
        ("owner/name/deeper", "Cannot find"),  # neither a folder here nor a Hub id
        ("owner--x/name", "Cannot find"),
    ],
)
def test_a_base_model_that_is_no_name_folder_or_hub_id_is_a_400(
    dataset, admin_user, base_model, message
):
    response = launch(logged_in(admin_user), dataset, base_model=base_model)
    assert response.status_code == 400 and message in response.content.decode()
    assert not TrainingRun.objects.exists()


def test_form_limits_come_from_the_model(dataset, admin_user):
    response = launch(logged_in(admin_user), dataset, batch_size="0", seed="x")
    page = response.content.decode()
    assert response.status_code == 400
    assert "greater than or equal to 1" in page and "Enter a whole number" in page
    assert "<details open" in page  # seed is an advanced field: its error is not hidden
    assert not TrainingRun.objects.exists()


def test_the_form_refuses_settings_that_would_crash_the_worker(dataset, admin_user):
    client = logged_in(admin_user)
    page = launch(client, dataset, learning_rate="1e308", eval_every="0").content.decode()
    assert "A learning rate above 1 makes every run diverge." in page
    assert "greater than or equal to 1" in page
    assert launch(client, dataset, max_length="1").status_code == 400
    assert not TrainingRun.objects.exists()


def test_a_service_error_on_an_advanced_field_opens_the_advanced_part(
    dataset, admin_user, monkeypatch
):
    def refuse(**options):
        raise ValidationError({"lora_target_modules": "The model has no module 'qkv'."})

    monkeypatch.setattr("rewardmodels.training.views.training_run_create", refuse)
    page = launch(logged_in(admin_user), dataset, lora_target_modules="qkv").content.decode()
    field = page.split('name="lora_target_modules"')[1].split("</div>")[0]
    assert "The model has no module &#x27;qkv&#x27;." in field
    assert "<details open" in page


@pytest.mark.parametrize("who", ["lead", "annotator", "outsider"])
def test_only_admins_launch(dataset, who, request):
    response = launch(logged_in(request.getfixturevalue(who)), dataset)
    assert response.status_code == 404
    assert not TrainingRun.objects.exists()


@pytest.mark.parametrize("who", ["annotator", "outsider"])
def test_others_get_404_for_run_pages(running, who, request):
    client = logged_in(request.getfixturevalue(who))
    for url in ("/runs/{}/", "/runs/{}/progress.json"):
        assert client.get(url.format(running.pk)).status_code == 404
    assert client.post(f"/runs/{running.pk}/cancel/").status_code == 404
    assert "No training runs" in client.get("/runs/").content.decode()
    running.refresh_from_db()
    assert not running.cancel_requested


def test_lead_watches_but_cannot_cancel(running, lead):
    client = logged_in(lead)
    page = client.get(f"/runs/{running.pk}/").content.decode()
    assert "Training run" in page and "cancel-form" not in page
    assert client.post(f"/runs/{running.pk}/cancel/").status_code == 404
    running.refresh_from_db()
    assert not running.cancel_requested


def test_anonymous_is_sent_to_log_in(running):
    response = Client().get(f"/runs/{running.pk}/progress.json")
    assert response.status_code == 302 and response.url.startswith("/accounts/login/")


def test_progress_json(running, lead):
    data = logged_in(lead).get(f"/runs/{running.pk}/progress.json").json()
    assert data["status"] == "running" and not data["finished"]
    assert (data["step"], data["total_steps"], data["progress"]) == (2, 8, 0.25)
    assert data["steps"] == "step 2 / 8"
    assert (data["eta_seconds"], data["eta"]) == (3725, "1 h 02 min")
    assert data["log_tail"] == "step 2/8: loss 0.55"
    assert "<svg" in data["live_html"] and "81.2%" in data["live_html"]


def test_run_page_shows_progress_curves_and_held_out_metrics(running, admin_user):
    page = logged_in(admin_user).get(f"/runs/{running.pk}/").content.decode()
    assert "step 2 / 8" in page and "about 1 h 02 min left" in page and "width: 25.0%" in page
    assert page.count("<svg") == 2  # loss and held-out accuracy
    assert "training loss" in page and "held-out accuracy" in page
    for figure in ("81.2%", "accuracy, easy", "90.0%", "0.420", "0.900", "0.120", "70.0%", "1300"):
        assert figure in page
    assert 'id="cancel-form"' in page and "rewardmodels/run.js" in page
    assert 'data-finished="0"' in page


def test_run_page_before_any_step(dataset, admin_user):
    run = TrainingRun.objects.create(dataset=dataset)
    page = logged_in(admin_user).get(f"/runs/{run.pk}/").content.decode()
    assert "<svg" not in page and "No steps logged yet" in page and "Queued" in page
    assert "waiting for a worker on the gpu queue" in page


def test_user_and_model_text_is_escaped(running, admin_user):
    running.status = TrainingRun.Status.FAILED
    running.log_tail = "<script>alert('log')</script>"
    running.error = "ValueError: <img src=x onerror=alert(1)>"
    running.save()
    client = logged_in(admin_user)
    page = client.get(f"/runs/{running.pk}/").content.decode()
    assert "<script>alert" not in page and "&lt;script&gt;alert" in page
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert 'data-finished="1"' in page and "cancel-form" not in page
    data = client.get(f"/runs/{running.pk}/progress.json").json()
    assert data["error"] == running.error  # raw in JSON; the page script sets textContent


def test_cancelling_a_queued_run(dataset, admin_user):
    run = TrainingRun.objects.create(dataset=dataset)
    response = logged_in(admin_user).post(f"/runs/{run.pk}/cancel/", follow=True)
    run.refresh_from_db()
    assert (run.status, run.cancel_requested) == ("cancelled", True)
    assert "cancelled before it started" in response.content.decode()


def test_cancelling_a_running_run_asks_the_worker(running, admin_user):
    response = logged_in(admin_user).post(f"/runs/{running.pk}/cancel/", follow=True)
    running.refresh_from_db()
    assert (running.status, running.cancel_requested) == ("running", True)
    page = response.content.decode()
    assert "stops after its current step" in page
    assert 'id="cancel-form" hidden' in page


def test_cancel_needs_post(running, admin_user):
    assert logged_in(admin_user).get(f"/runs/{running.pk}/cancel/").status_code == 405


def test_succeeded_run_shows_artifact_and_model(dataset, admin_user):
    run = TrainingRun.objects.create(
        dataset=dataset,
        status=TrainingRun.Status.SUCCEEDED,
        step=8,
        total_steps=8,
        metrics=METRICS,
        final_metrics={**METRICS[1]["eval"], "accuracy": 0.875},
        artifact="/media/runs/1/model",
    )
    RewardModel.objects.create(
        identifier="rm-1-fruit-v1",
        run=run,
        project=dataset.project,
        dataset=dataset,
        base_model=run.base_model,
        artifact=run.artifact,
    )
    page = logged_in(admin_user).get(f"/runs/{run.pk}/").content.decode()
    assert "rm-1-fruit-v1" in page and "/media/runs/1/model" in page
    assert "Held-out metrics (final)" in page and "87.5%" in page
    assert "cancel-form" not in page


def test_runs_list(project, dataset, admin_user, lead, outsider):
    done = TrainingRun.objects.create(
        dataset=dataset,
        status=TrainingRun.Status.SUCCEEDED,
        step=8,
        total_steps=8,
        final_metrics={"accuracy": 0.875},
    )
    TrainingRun.objects.create(dataset=dataset, step=1, total_steps=4)
    other = CuratedDataset.objects.create(
        project=outsider.memberships.get().project,
        name="elsewhere",
        version=1,
        identifier="elsewhere@v1",
        n_rows=0,
        n_train=0,
        n_test=0,
    )
    hidden = TrainingRun.objects.create(dataset=other, method="full")

    admin_page = logged_in(admin_user).get("/runs/").content.decode()
    assert f'href="/runs/{hidden.pk}/"' in admin_page
    lead_page = logged_in(lead).get("/runs/").content.decode()
    assert f'href="/runs/{done.pk}/"' in lead_page and f'href="/runs/{hidden.pk}/"' not in lead_page
    assert "87.5%" in lead_page and "Succeeded" in lead_page and "fruit@v1" in lead_page
    assert "width: 25.0%" in lead_page and "1 / 4" in lead_page
    assert 'href="/runs/"' in lead_page  # the nav link


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(None, ""), (4.4, "4 s"), (65, "1 min 05 s"), (3600, "1 h 00 min"), (7325, "2 h 02 min")],
)
def test_duration(seconds, shown):
    assert duration(seconds) == shown


def test_only_admins_and_leads_see_the_runs_and_models_links(annotator, lead, admin_user):
    for user, shown in ((annotator, False), (lead, True), (admin_user, True)):
        page = logged_in(user).get("/").content.decode()
        assert ('href="/runs/"' in page) is shown and ('href="/models/"' in page) is shown
