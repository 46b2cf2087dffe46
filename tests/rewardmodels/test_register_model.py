"""Off-the-shelf reward models: registered from a folder without training, then scored,
evaluated, compared beside the project's own models and used as a run's starting point."""

import shutil
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from rewardmodels.evaluation.services import evaluation_create
from rewardmodels.models import EvaluationRun, RewardModel
from rewardmodels.retraining.services import retraining_start
from tests.conftest import client_for, logged_in
from tests.factories import separable_rows


def register(*args) -> list[str]:
    out = StringIO()
    call_command("register_model", *args, stdout=out)
    return out.getvalue().strip().splitlines()


@pytest.fixture
def off_the_shelf(tmp_path, trained_model):
    """A reward model folder from elsewhere: the session's trained model, copied."""
    folder = tmp_path / "someone-elses-rm"
    shutil.copytree(trained_model[0], folder)
    return folder


def test_a_registered_folder_model_is_scored_evaluated_and_compared(
    dataset, reward_model, project, lead, off_the_shelf, eager, django_capture_on_commit_callbacks
):
    lines = register("shelf-rm", str(off_the_shelf), "--project", project.name)
    assert lines[-1] == "shelf-rm"
    model = RewardModel.objects.get(identifier="shelf-rm")
    assert model.registered and model.dataset is None and model.project == project
    assert model.artifact == str(off_the_shelf.resolve())

    rows = separable_rows(4, seed=9)
    items = [{"prompt": r["prompt"], "response": r[side]} for r in rows
             for side in ("chosen", "rejected")]  # fmt: skip
    scored = client_for(lead).post("/api/reward-models/shelf-rm/score", {"items": items},
                                   format="json")  # fmt: skip
    assert scored.status_code == 200, scored.content
    rewards = scored.json()["rewards"]
    assert all(rewards[2 * i] > rewards[2 * i + 1] for i in range(len(rows)))

    with django_capture_on_commit_callbacks(execute=True):
        evaluation = evaluation_create(reward_model=model, user=None, dataset=dataset)
    evaluation.refresh_from_db()
    assert evaluation.status == EvaluationRun.Status.SUCCEEDED
    assert evaluation.metrics["n"] == dataset.n_test and evaluation.metrics["accuracy"] > 0.8

    page = logged_in(lead).get("/models/compare/?models=rm-1-fruit-v1,shelf-rm").content.decode()
    assert "registered" in page and "no test split of its own" in page
    page = logged_in(lead).get("/models/compare/?models=rm-1-fruit-v1,shelf-rm&data=fruit@v1")
    assert f"evaluation {evaluation.pk}" in page.content.decode()
    assert logged_in(lead).get("/models/shelf-rm/").status_code == 200
    assert client_for(lead).get("/api/reward-models/shelf-rm/").json()["run"] is None


def test_a_registered_model_starts_a_run(dataset, project, off_the_shelf):
    register("shelf-rm", str(off_the_shelf), "--project", project.name)
    model = RewardModel.objects.get(identifier="shelf-rm")
    retraining = retraining_start(project=project, dataset_name="fruit", start_from=model,
                                  user=None)  # fmt: skip
    run = retraining.run
    assert run.start_from == model and run.base_model == str(off_the_shelf)
    assert run.train_settings()["init_from"] == model.artifact


def test_what_is_not_a_reward_model_is_refused(project, off_the_shelf, tmp_path):
    from tests.workers.decoder_models import decoder_tokenizer, save_tiny_decoder

    with pytest.raises(CommandError, match="Cannot find"):
        register("x", str(tmp_path / "nowhere"), "--project", project.name)
    classifier = tmp_path / "classifier"
    save_tiny_decoder(classifier, decoder_tokenizer("qwen"), "qwen2")
    config = (classifier / "config.json").read_text()
    (classifier / "config.json").write_text(
        config.replace(
            '"id2label": {\n    "0": "LABEL_0"\n  }', '"id2label": {"0": "bad", "1": "good"}'
        )  # fmt: skip
    )
    with pytest.raises(CommandError, match="has 2 outputs"):
        register("x", str(classifier), "--project", project.name)
    register("shelf-rm", str(off_the_shelf), "--project", project.name)
    with pytest.raises(CommandError, match="already named"):
        register("shelf-rm", str(off_the_shelf), "--project", project.name)
    with pytest.raises(CommandError, match="No project"):
        register("y", str(off_the_shelf), "--project", "nope")
    assert RewardModel.objects.count() == 1
