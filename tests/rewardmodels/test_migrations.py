"""Data migrations: rows saved under an option that is gone read as its replacement."""

import importlib

import pytest
from django.apps import apps

from rewardmodels.models import FilterRun, RewardModel, TrainingRun

LENGTH_NORMALIZE = importlib.import_module(
    "rewardmodels.migrations.0003_training_deliveries_length_normalize"
)


@pytest.mark.django_db
def test_per_token_filter_runs_become_length_and_back(dataset):
    run = TrainingRun.objects.create(dataset=dataset, status=TrainingRun.Status.SUCCEEDED)
    model = RewardModel.objects.create(
        identifier="rm", run=run, project=dataset.project, dataset=dataset
    )
    old, raw = (
        FilterRun.objects.create(reward_model=model, upload_name=name, normalize=normalize)
        for name, normalize in (("old.jsonl", "per_token"), ("raw.jsonl", "none"))
    )
    LENGTH_NORMALIZE.per_token_to_length(apps, None)
    saved = dict(FilterRun.objects.values_list("upload_name", "normalize"))
    assert saved == {"old.jsonl": "length", "raw.jsonl": "none"}
    assert FilterRun.objects.get(pk=old.pk).get_normalize_display() == (
        "Reward with the model's length trend removed"
    )
    LENGTH_NORMALIZE.length_to_per_token(apps, None)
    assert FilterRun.objects.get(pk=old.pk).normalize == "per_token"
    assert FilterRun.objects.get(pk=raw.pk).normalize == "none"
