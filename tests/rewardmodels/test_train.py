"""Queueing, running and following a training run; the web process stays free of torch."""

import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from annotation.curation import CurationFilters, dataset_curate
from annotation.models import Label
from rewardmodels.models import RewardModel, TrainingRun
from rewardmodels.services import training_run_cancel, training_run_create
from tests.factories import PairFactory
from tests.workers.test_training import separable_rows

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def dataset(project):
    for row in separable_rows(48):
        pair = PairFactory(
            project=project,
            prompt=row["prompt"],
            response_a=row["chosen"],
            response_b=row["rejected"],
        )
        Label.objects.create(pair=pair, source="imported", choice="a")
    from annotation.services import consensus_refresh

    consensus_refresh(pair_ids=project.pairs.values_list("id", flat=True))
    return dataset_curate(
        project=project, name="fruit", filters=CurationFilters(test_fraction=0.25), user=None
    )


def test_web_process_never_imports_torch():
    code = (
        "import os, sys; os.environ['DJANGO_SETTINGS_MODULE'] = 'config.settings'; "
        "import django; django.setup(); import config.urls, rewardmodels.services, "
        "rewardmodels.management.commands.train, workers.tasks; "
        "print('torch' in sys.modules, 'transformers' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False False"


@pytest.mark.django_db(transaction=True)
def test_train_wait_runs_and_registers_a_model(dataset, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    from workers.celery import app

    app.conf.task_always_eager = True
    try:
        out = StringIO()
        call_command(
            "train", "fruit@v1", "--epochs", "2", "--max-length", "64", "--learning-rate",
            "1e-3", "--wait", stdout=out, stderr=StringIO(),
        )  # fmt: skip
    finally:
        app.conf.task_always_eager = False
    lines = out.getvalue().strip().splitlines()
    run = TrainingRun.objects.get()
    assert run.status == "succeeded", run.error
    assert lines[0] == f"queued training run {run.pk}"
    assert lines[-1] == RewardModel.objects.get().identifier
    assert run.final_metrics["accuracy"] >= 0.75
    assert Path(run.artifact, "model.safetensors").exists()
    assert "fruit@v1" in Path(run.artifact, "README.md").read_text()
    assert run.metrics and run.step == run.total_steps


def test_runs_are_validated_before_queueing(dataset, project):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match="Cannot find"):
        training_run_create(dataset=dataset, user=None, base_model="/nowhere/model")
    no_test = dataset_curate(
        project=project, name="all-train", filters=CurationFilters(test_fraction=0.0), user=None
    )
    with pytest.raises(ValidationError, match="no test split"):
        training_run_create(dataset=no_test, user=None)
    assert not TrainingRun.objects.exists()


def test_wait_without_a_gpu_worker_says_so(dataset, settings):
    settings.CELERY_BROKER_URL = "memory://"
    from rewardmodels.management.commands import train

    train.WAIT_FOR_WORKER_SECONDS = 0.2
    with pytest.raises(CommandError, match="No worker serves the gpu queue"):
        call_command("train", "fruit@v1", "--wait")
    with pytest.raises(CommandError, match="No dataset version"):
        call_command("train", "nope@v1")


def test_cancelling_a_queued_run(dataset):
    run = TrainingRun.objects.create(dataset=dataset)
    training_run_cancel(run=run)
    run.refresh_from_db()
    assert (run.status, run.cancel_requested) == ("cancelled", True)
