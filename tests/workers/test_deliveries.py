"""A training run whose worker dies every time (killed out of memory, say) is redelivered at
most TRAINING_MAX_DELIVERIES times, then marked failed with the reason instead of holding the
gpu queue forever.

The task is called here as the broker redelivers it: the same task with the same run id,
after the previous delivery's worker died without recording anything. test_worker_killed
does it with a real worker."""

import pytest

from rewardmodels.models import TrainingRun
from workers.tasks import training as tasks

pytestmark = pytest.mark.django_db


@pytest.fixture
def worker_dies(monkeypatch):
    """Each delivery starts the run and loses its worker: RUNNING, nothing else recorded."""
    started: list[int] = []

    def dies(run, lease):
        started.append(run.pk)
        TrainingRun.objects.filter(pk=run.pk).update(status=TrainingRun.Status.RUNNING)

    monkeypatch.setattr(tasks, "_execute", dies)
    return started


def test_a_run_killed_every_time_fails_after_the_last_delivery(dataset, worker_dies, settings):
    assert settings.TRAINING_MAX_DELIVERIES == 3  # the default
    run = TrainingRun.objects.create(dataset=dataset)
    for delivery in (1, 2, 3):
        tasks.train_reward_model(run.pk)
        run.refresh_from_db()
        assert (run.status, run.deliveries, len(worker_dies)) == ("running", delivery, delivery)

    tasks.train_reward_model(run.pk)  # the fourth: not trained again
    run.refresh_from_db()
    assert len(worker_dies) == 3
    assert run.status == TrainingRun.Status.FAILED and run.finished_at is not None
    assert "the worker running it stopped 3 times without finishing (out of memory?" in run.error
    assert "TRAINING_MAX_DELIVERIES" in run.error
    assert run.log_tail.endswith(run.error)

    tasks.train_reward_model(run.pk)  # a failed run is finished: later deliveries do nothing
    run.refresh_from_db()
    assert (run.status, run.deliveries, len(worker_dies)) == ("failed", 4, 3)


def test_the_limit_is_a_setting(dataset, worker_dies, settings):
    settings.TRAINING_MAX_DELIVERIES = 1
    run = TrainingRun.objects.create(dataset=dataset)
    tasks.train_reward_model(run.pk)
    tasks.train_reward_model(run.pk)
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.FAILED and len(worker_dies) == 1
    assert "stopped 1 time without finishing" in run.error
