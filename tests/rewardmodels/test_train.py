"""Queueing, running and following a training run; the web process stays free of torch."""

import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from annotation.curation.selection import CurationFilters
from annotation.curation.services import dataset_curate
from rewardmodels.models import RewardModel, TrainingRun
from rewardmodels.training.services import training_run_cancel, training_run_create
from tests.conftest import logged_in

ROOT = Path(__file__).resolve().parents[2]


def test_web_process_never_imports_torch():
    code = (
        "import os, sys; os.environ['DJANGO_SETTINGS_MODULE'] = 'config.settings'; "
        "import django; django.setup(); import config.urls, rewardmodels.training.services, "
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
        "train", "fruit@v1", "--epochs", "3", "--max-length", "64", "--wait", stdout=out,
        stderr=StringIO(),
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
    # Left to "auto", the small packaged encoder is fully fine-tuned at its rate, on record.
    assert (run.method, run.learning_rate) == ("full", 5e-5)
    assert '"method": "full"' in Path(run.artifact, "README.md").read_text()
    accuracy = next(line for line in lines if line.startswith("held-out accuracy "))
    assert "% (95% CI " in accuracy and f"on {run.final_metrics['n']} pairs" in accuracy


def test_the_method_chosen_for_auto_is_on_record_before_the_run_ends(dataset, lead, monkeypatch):
    """A run that fails after the trainer chose its method (here, while encoding the pairs)
    shows what it was training with, in the list and on its page."""
    from workers.ml import training
    from workers.tasks.training import train_reward_model

    def out_of_memory(*args, **kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(training, "encoded_pairs", out_of_memory)
    run = training_run_create(dataset=dataset, user=None, max_length=64)
    assert (run.method_asked, run.method_shown) == ("auto", "auto")
    train_reward_model(run.pk)
    run.refresh_from_db()
    assert (run.status, run.error) == ("failed", "RuntimeError: out of memory")
    assert (run.method_asked, run.method, run.learning_rate) == ("auto", "full", 5e-5)
    client = logged_in(lead)
    listed = client.get("/runs/").content.decode()
    assert '<td class="run-method">auto → full fine-tuning</td>' in listed
    page = client.get(f"/runs/{run.pk}/").content.decode()
    assert '<span id="run-method">auto → full fine-tuning</span>' in page
    assert client.get(f"/runs/{run.pk}/progress.json").json()["method"] == "auto → full fine-tuning"


def test_a_method_given_is_shown_as_given(dataset):
    run = training_run_create(dataset=dataset, user=None, method="lora")
    assert (run.method_asked, run.method_shown) == ("lora", "LoRA")


def finished(dataset, right: int, untrained_right: int, n: int = 100) -> TrainingRun:
    """A succeeded run and its reward model as the trainer leaves them, without training."""
    from workers.ml.metrics import wilson_interval

    def held_out(k: int) -> dict:
        return {"n": n, "accuracy": k / n, "accuracy_ci95": wilson_interval(k, n)}

    run = TrainingRun.objects.create(
        dataset=dataset,
        status=TrainingRun.Status.SUCCEEDED,
        metrics=[{"step": 0, "eval": held_out(untrained_right)}],
        final_metrics={
            **held_out(right), "mean_reward_gap": 0.2, "truncated_pairs": 3,
            "truncated_training_pairs": 5,
            "untrained": held_out(untrained_right),
        },
        artifact="/media/runs/1/model",
    )  # fmt: skip
    RewardModel.objects.create(
        identifier="rm-1-fruit-v1", run=run, project=dataset.project,
        dataset=dataset, base_model=run.base_model,
        artifact=run.artifact,
    )  # fmt: skip
    return run


def follow(run: TrainingRun) -> tuple[list[str], str]:
    from rewardmodels.management.commands._follow import follow_run
    from rewardmodels.management.commands.train import Command

    out, err = StringIO(), StringIO()
    follow_run(Command(stdout=out, stderr=err), run.pk)
    return out.getvalue().strip().splitlines(), err.getvalue()


def test_wait_prints_the_interval_and_the_untrained_accuracy(dataset):
    lines, err = follow(finished(dataset, 75, 50))
    assert lines == [
        "artifact /media/runs/1/model",
        "held-out accuracy 75.0% (95% CI 65.7–82.5%) on 100 pairs; "
        "untrained: 50.0% (95% CI 40.4–59.6%), +25.0 points over the untrained model",
        "mean reward gap 0.200, 5 training and 3 held-out pairs shortened to fit",
    ]
    assert "warning" not in err


def test_wait_warns_on_stderr_when_training_may_not_have_worked(dataset):
    lines, err = follow(finished(dataset, 53, 50))
    assert "held-out accuracy 53.0% (95% CI 43.3–62.5%) on 100 pairs; untrained: 50.0%" in lines[1]
    assert err.strip().splitlines()[-1] == (
        "warning: Training may not have worked: the held-out accuracy's 95% interval "
        "(43.3–62.5%) includes the untrained model's accuracy (50.0%). Try more pairs, more "
        "epochs or another learning rate."
    )
    assert not any("Training may not" in line for line in lines)


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
    from rewardmodels.training.services import module_names
    from tests.workers.test_training import tiny_decoder

    names = module_names(tmp_path / "none")
    assert names is None
    folder = tiny_decoder(tmp_path / "llama")
    assert {"q_proj", "v_proj", "o_proj", "gate_proj", "score"} <= module_names(Path(folder))


def test_wait_without_a_gpu_worker_says_so(dataset):
    with pytest.raises(CommandError, match="No worker serves the gpu queue"):
        call_command("train", "fruit@v1", "--wait")
    with pytest.raises(CommandError, match="No dataset version"):
        call_command("train", "nope@v1")


def test_cancelling_a_queued_run(dataset):
    run = TrainingRun.objects.create(dataset=dataset)
    training_run_cancel(run=run)
    run.refresh_from_db()
    assert (run.status, run.cancel_requested) == ("cancelled", True)


UNTRAINABLE = [
    ("learning_rate", -1.0), ("learning_rate", 1e308), ("learning_rate", float("nan")),
    ("learning_rate", float("inf")), ("max_pairs", 0), ("eval_every", 0),
    ("checkpoint_every", 0), ("max_length", 0), ("max_length", 1), ("lora_rank", 0),
    ("lora_alpha", 0), ("epochs", float("nan")), ("warmup_ratio", float("nan")),
    ("lora_dropout", float("nan")), ("center_rewards", float("inf")),
    ("length_penalty", -1.0), ("processes", 100000), ("batch_size", 30000),
]  # fmt: skip


@pytest.mark.parametrize(("setting", "value"), UNTRAINABLE)
def test_settings_that_cannot_train_are_refused_before_the_run_exists(dataset, setting, value):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as refused:
        training_run_create(dataset=dataset, user=None, **{setting: value})
    assert setting in refused.value.message_dict
    assert not TrainingRun.objects.exists()


@pytest.mark.parametrize(
    ("flag", "value"), [("--epochs", "nan"), ("--learning-rate", "1e308"), ("--eval-every", "0")]
)
def test_the_train_command_refuses_them_with_the_setting_named(dataset, flag, value):
    with pytest.raises(CommandError, match=flag.strip("-").replace("-", "_")):
        call_command("train", "fruit@v1", flag, value, stdout=StringIO(), stderr=StringIO())
    assert not TrainingRun.objects.exists()
