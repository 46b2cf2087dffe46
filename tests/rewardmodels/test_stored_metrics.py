"""Metrics stored before a rename read under the new name once the database is migrated."""

import importlib

import pytest
from django.apps import apps

from rewardmodels.models import TrainingRun

rename = importlib.import_module("rewardmodels.migrations.0018_metrics_names")


@pytest.mark.django_db
def test_a_runs_stored_mean_margin_becomes_its_mean_reward_gap(dataset):
    run = TrainingRun.objects.create(
        dataset=dataset,
        metrics=[{"step": 1, "loss": 0.6, "eval": {"mean_margin": 0.2, "accuracy": 0.7}}],
        final_metrics={"mean_margin": 0.4, "untrained": {"mean_margin": 0.0}},
    )
    untouched = TrainingRun.objects.create(dataset=dataset, final_metrics={"accuracy": 0.5})
    rename.rename_key(apps, "mean_margin", "mean_reward_gap")
    run.refresh_from_db()
    assert run.metrics == [
        {"step": 1, "loss": 0.6, "eval": {"mean_reward_gap": 0.2, "accuracy": 0.7}}
    ]
    assert run.final_metrics == {"mean_reward_gap": 0.4, "untrained": {"mean_reward_gap": 0.0}}
    untouched.refresh_from_db()
    assert untouched.final_metrics == {"accuracy": 0.5}
