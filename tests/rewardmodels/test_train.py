"""Queueing, running and following a training run; the web process stays free of torch."""

import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from annotation.curation import CurationFilters, dataset_curate
from rewardmodels.models import RewardModel, TrainingRun
from rewardmodels.services import training_run_cancel, training_run_create

ROOT = Path(__file__).resolve().parents[2]


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
def test_train_wait_runs_and_registers_a_model(dataset, eager):
    out = StringIO()
    call_command(
        "train", "fruit@v1", "--epochs", "2", "--max-length", "64", "--learning-rate",
        "1e-3", "--wait", stdout=out, stderr=StringIO(),
    )  # fmt: skip
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
    # MiniLM names its attention projections query/key/value: read from the weights' names.
    with pytest.raises(ValidationError, match="no modules named q_proj; it has .*query"):
        training_run_create(dataset=dataset, user=None, lora_target_modules="q_proj,value")
    assert not TrainingRun.objects.exists()


def test_lora_targets_are_read_from_a_saved_decoder_without_torch(tmp_path):
    from rewardmodels.services import module_names
    from tests.workers.test_training import tiny_decoder

    names = module_names(tmp_path / "none")
    assert names is None
    folder = tiny_decoder(tmp_path / "llama")
    assert {"q_proj", "v_proj", "o_proj", "gate_proj", "score"} <= module_names(Path(folder))


def test_wait_without_a_gpu_worker_says_so(dataset, monkeypatch):
    from rewardmodels.management.commands import train

    monkeypatch.setattr(train, "WAIT_FOR_WORKER_SECONDS", 0.2)
    with pytest.raises(CommandError, match="No worker serves the gpu queue"):
        call_command("train", "fruit@v1", "--wait")
    with pytest.raises(CommandError, match="No dataset version"):
        call_command("train", "nope@v1")


def test_cancelling_a_queued_run(dataset):
    run = TrainingRun.objects.create(dataset=dataset)
    training_run_cancel(run=run)
    run.refresh_from_db()
    assert (run.status, run.cancel_requested) == ("cancelled", True)
