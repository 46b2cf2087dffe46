"""A training run survives a killed worker: a real `celery worker` on Redis and PostgreSQL.

The task is `acks_late` with `reject_on_worker_lost`, and the trainer resumes from the
checkpoint in the run's folder. Two ways to lose a worker:

- the pool child running the task is SIGKILLed (out of memory, a crash in native code): the
  worker's main process rejects the message back onto the queue and a new child resumes;
- the whole worker is SIGKILLed (the machine went away): the message stays unacknowledged
  in Redis for the visibility timeout, but the run's lease runs out and a fresh worker's
  recovery sweep sends it again; that worker resumes the run.

A run whose worker is killed on every attempt is given up after TRAINING_MAX_DELIVERIES.
"""

import re
import signal
import subprocess
import time
from datetime import timedelta
from pathlib import Path

import psutil
import pytest
from django.conf import settings

from rewardmodels.models import RewardModel, TrainingRun
from rewardmodels.training.services import training_run_create
from tests.workers.conftest import QUEUE, kill_group

LEASE_SECONDS = 3  # a run's lease, for the whole-worker case: it runs out soon after the kill
RUN_TIMEOUT = 120  # seconds for one run to reach a state; a healthy run takes far less
FINISHED = {TrainingRun.Status.SUCCEEDED, TrainingRun.Status.FAILED, TrainingRun.Status.CANCELLED}

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def queue_run(dataset, broker, **settings) -> TrainingRun:
    """About 36 steps (4 epochs of 9 batches), a checkpoint every 3: seconds on a CPU."""
    run = training_run_create(
        dataset=dataset, user=None, max_length=64, batch_size=4, epochs=4,
        learning_rate=1e-3, checkpoint_every=3, eval_every=1000, **settings,
    )  # fmt: skip
    assert broker.llen(QUEUE) == 1, "the run's task did not reach the test's Redis database"
    return run


def report(run: TrainingRun, logs: list[Path]) -> str:
    """What to read when an assertion fails: the run, its log, and the workers' output."""
    run.refresh_from_db()
    parts = [
        f"run {run.pk}: {run.status}, step {run.step}/{run.total_steps}, error {run.error!r}",
        "--- log_tail ---",
        run.log_tail,
    ]
    for log in logs:
        parts += [f"--- {log.name} (last 60 lines) ---", *log.read_text().splitlines()[-60:]]
    return "\n".join(parts)


def wait_for(condition, run: TrainingRun, logs: list[Path], what: str, timeout=RUN_TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run.refresh_from_db()
        result = condition()
        if result:
            return result
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout}s waiting for {what}\n{report(run, logs)}")


def checkpoint_of(run: TrainingRun) -> Path:
    return Path(settings.MEDIA_ROOT) / "runs" / str(run.pk) / "checkpoint.pt"


def wait_for_checkpoint(run: TrainingRun, worker: subprocess.Popen, logs: list[Path]) -> int:
    """Until the run has saved a checkpoint and written progress past step 3 (the progress
    row is written every 2 s, so the steps after the checkpoint are recorded too)."""

    def ready():
        assert worker.poll() is None, f"the worker exited\n{report(run, logs)}"
        assert run.status not in FINISHED, (
            f"the run ended before it could be interrupted; make it longer\n{report(run, logs)}"
        )
        return checkpoint_of(run).exists() and run.step > 3

    wait_for(ready, run, logs, "a checkpoint and progress past step 3")
    return run.step


def wait_until_finished(run: TrainingRun, broker, logs: list[Path], unacked: int = 0) -> None:
    """Until the run is finished and its task has returned (its message acknowledged;
    `unacked`: messages of killed workers left waiting out the visibility timeout)."""

    def done():
        return (
            run.status in FINISHED and not broker.llen(QUEUE) and broker.hlen("unacked") <= unacked
        )

    wait_for(done, run, logs, "the run to finish and its message to be acknowledged")


def assert_resumed_and_registered(run: TrainingRun, logs: list[Path], killed_at: int) -> None:
    run.refresh_from_db()
    context = report(run, logs)
    assert run.status == TrainingRun.Status.SUCCEEDED, context
    resumed = re.findall(r"resumed from the checkpoint at step (\d+)", run.log_tail)
    assert len(resumed) == 1, f"expected one resume in the log\n{context}"
    assert 3 <= int(resumed[0]) < run.total_steps, context
    assert run.step == run.total_steps, context
    steps = [m["step"] for m in run.metrics]
    assert steps == sorted(set(steps)) and steps[-1] == run.total_steps, (
        f"the metrics timeline repeats or reorders steps after the resume: {steps}\n{context}"
    )
    assert not checkpoint_of(run).exists(), "the checkpoint outlived the finished run"
    assert Path(run.artifact, "model.safetensors").exists(), context
    model = RewardModel.objects.get(run=run)
    assert model.identifier == f"rm-{run.pk}-fruit-v1"
    print(
        f"\nrun {run.pk}: killed with step {killed_at} recorded, resumed from the checkpoint "
        f"at step {resumed[0]}, finished {run.total_steps} steps as {model.identifier}"
    )


def test_a_killed_pool_child_is_replaced_and_the_run_resumes(dataset, broker, workers):
    run = queue_run(dataset, broker)
    worker = workers()
    killed_at = wait_for_checkpoint(run, worker, workers.logs)

    children = psutil.Process(worker.pid).children()
    assert len(children) == 1, f"expected one pool process, got {children}"
    killed = children[0]
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=10)
    run.refresh_from_db()
    # The killed child could not record anything: the run is still RUNNING when its task
    # comes back, and a RUNNING run is trained on (only finished runs are skipped).
    assert run.status == TrainingRun.Status.RUNNING, report(run, workers.logs)

    wait_until_finished(run, broker, workers.logs)
    assert_resumed_and_registered(run, workers.logs, killed_at)
    assert worker.poll() is None, "the worker's main process should have survived"
    (child,) = psutil.Process(worker.pid).children()
    assert child.pid != killed.pid


def test_a_two_process_run_outlives_its_killed_pool_child(dataset, broker, workers):
    """The task of a run in two processes is killed: the launcher and both training
    processes stop by themselves (nothing trains the run twice), and the new pool child
    starts them again from the checkpoint."""
    run = queue_run(dataset, broker, processes=2)
    worker = workers()
    killed_at = wait_for_checkpoint(run, worker, workers.logs)
    (child,) = psutil.Process(worker.pid).children()
    launched = child.children(recursive=True)
    ranks = [p for p in launched if "workers.ml.launch" in " ".join(p.cmdline())]
    assert len(ranks) == 3, [p.cmdline() for p in launched]  # the launcher and two processes
    child.send_signal(signal.SIGKILL)

    gone, alive = psutil.wait_procs(launched, timeout=60)
    assert not alive, f"left running: {[p.cmdline() for p in alive]}\n{report(run, workers.logs)}"
    wait_until_finished(run, broker, workers.logs)
    assert_resumed_and_registered(run, workers.logs, killed_at)
    assert "2 processes (DDP, a whole copy in each)" in run.log_tail


def test_a_killed_worker_leaves_the_run_to_a_fresh_worker(dataset, broker, workers):
    """The whole worker dies: its message waits in Redis's unacked set for the visibility
    timeout (a day, as in production), but the run's lease runs out in seconds and the
    fresh worker's recovery sweep sends it again: the visibility timeout is not the net."""
    lease = {"TRAINING_LEASE_SECONDS": str(LEASE_SECONDS), "TRAINING_RECOVERY_SECONDS": "1"}
    run = queue_run(dataset, broker)
    first = workers(**lease)
    killed_at = wait_for_checkpoint(run, first, workers.logs)
    kill_group(first)

    run.refresh_from_db()
    assert run.status == TrainingRun.Status.RUNNING, report(run, workers.logs)
    # Nobody acked or rejected the message: it waits in Redis's unacked set, not the queue.
    unacked = broker.zrange("unacked_index", 0, -1, withscores=True)
    assert len(unacked) == 1 and broker.llen(QUEUE) == 0, (unacked, broker.llen(QUEUE))

    workers(**lease)
    wait_until_finished(run, broker, workers.logs, unacked=1)
    assert_resumed_and_registered(run, workers.logs, killed_at)
    assert broker.zcard("unacked_index") == 1, "the old message was not what resumed it"


def test_a_run_whose_worker_dies_every_time_is_given_up(dataset, broker, workers):
    """Out of memory on every attempt: after TRAINING_MAX_DELIVERIES deliveries (1 here) the
    next one marks the run failed and says why, and the queue is free again."""
    run = queue_run(dataset, broker)
    worker = workers(TRAINING_MAX_DELIVERIES="1")

    def started():
        assert worker.poll() is None, f"the worker exited\n{report(run, workers.logs)}"
        return run.status == TrainingRun.Status.RUNNING

    wait_for(started, run, workers.logs, "the run to start")
    (child,) = psutil.Process(worker.pid).children()
    child.send_signal(signal.SIGKILL)  # what the kernel's OOM killer does
    child.wait(timeout=10)

    wait_until_finished(run, broker, workers.logs)
    context = report(run, workers.logs)
    assert run.status == TrainingRun.Status.FAILED and run.deliveries == 2, context
    assert "stopped 1 time without finishing (out of memory?" in run.error, context
    assert not RewardModel.objects.filter(run=run).exists()


def test_on_the_embedded_broker_a_killed_workers_run_resumes(dataset, workers):
    """The filesystem broker of `make run` forgets a message once a worker has taken it:
    the run comes back only through its lease. The run is queued here without a message at
    all (as after a broker outage); the worker's startup sweep sends it."""
    embedded = {"CELERY_BROKER_URL": "", "TRAINING_LEASE_SECONDS": str(LEASE_SECONDS),
                "TRAINING_RECOVERY_SECONDS": "1"}  # fmt: skip
    run = TrainingRun.objects.create(
        dataset=dataset, max_length=64, batch_size=4, epochs=4, learning_rate=1e-3,
        checkpoint_every=3, eval_every=1000,
    )  # fmt: skip
    TrainingRun.objects.filter(pk=run.pk).update(created_at=run.created_at - timedelta(minutes=1))
    first = workers(**embedded)
    killed_at = wait_for_checkpoint(run, first, workers.logs)
    kill_group(first)

    workers(**embedded)
    wait_for(lambda: run.status in FINISHED, run, workers.logs, "the run to finish")
    assert_resumed_and_registered(run, workers.logs, killed_at)
    assert "filesystem" in workers.logs[0].read_text(), (
        "the workers were not on the embedded broker"
    )
