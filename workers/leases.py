"""A worker's claim on a training run, kept in the database (TrainingRun.lease_owner and
lease_expires_at), and the recovery sweep every worker runs: together they make a run the
database's, not the broker's. The training task (workers/tasks/) holds a Lease while it
trains; the sweep sends again the runs nobody holds (rewardmodels.services)."""

import logging
import os
import socket
import threading
import time
import uuid
from datetime import timedelta

from celery.signals import worker_ready
from django.conf import settings
from django.utils import timezone

logger = logging.getLogger(__name__)


class Lease:
    """A worker's claim on a run, in the database: taken by a compare-and-set only when no
    live worker holds it, renewed by a heartbeat thread every third of its length, and
    `lost` when a renewal finds another owner (this worker stalled past its lease and the run
    went to another); the trainer then stops without writing anything."""

    def __init__(self, run_id: int):
        self.run_id = run_id
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.seconds = settings.TRAINING_LEASE_SECONDS
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _runs(self):
        from rewardmodels.models import TrainingRun

        return TrainingRun.objects.filter(pk=self.run_id)

    def _expiry(self):
        return timezone.now() + timedelta(seconds=self.seconds)

    def take(self) -> bool:
        """Hold the run if it is unfinished and its lease is free: never taken, run out, or
        held by a process of this machine that is gone (a killed pool child, whose message
        the worker hands straight back)."""
        from django.db.models import Q

        from rewardmodels.models import TrainingRun

        free = Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=timezone.now())
        holder = self._runs().values_list("lease_owner", flat=True).first()
        if holder and self._gone(holder):
            free |= Q(lease_owner=holder)
        taken = (
            self._runs()
            .filter(free, status__in=(TrainingRun.Status.QUEUED, TrainingRun.Status.RUNNING))
            .update(lease_owner=self.owner, lease_expires_at=self._expiry())
        )
        if taken:
            self._thread = threading.Thread(target=self._beat, daemon=True)
            self._thread.start()
        return bool(taken)

    def _beat(self) -> None:
        from django.db import connection

        try:
            while not self._stop.wait(self.seconds / 3):
                renewed = self.mine().update(lease_expires_at=self._expiry())
                if not renewed:
                    logger.error("training run %s: lease lost to another worker", self.run_id)
                    self.lost.set()
                    return
        finally:
            connection.close()  # this thread's own connection

    @staticmethod
    def _gone(owner: str) -> bool:
        """Whether a lease's holder was a process of this machine that no longer runs."""
        parts = owner.rsplit(":", 2)
        if len(parts) != 3 or parts[0] != socket.gethostname() or not parts[1].isdigit():
            return False
        pid = parts[1]
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False

    def mine(self):
        """The run, while this worker holds it: updates through it change nothing otherwise."""
        return self._runs().filter(lease_owner=self.owner)

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.mine().update(lease_owner="", lease_expires_at=None)


@worker_ready.connect
def _recover_training_runs(**kwargs) -> None:
    """On a worker's start, then every TRAINING_RECOVERY_SECONDS while it runs: send again
    the training runs no worker holds (rewardmodels.services.training_runs_recover), and send
    the judging jobs, evaluations and filters queued while the broker was down
    (rewardmodels.services.jobs_recover_all)."""
    from django.db import connection

    from rewardmodels.recovery import jobs_recover_all
    from rewardmodels.training.services import training_runs_recover

    def sweep() -> None:
        while True:
            try:
                training_runs_recover()
                jobs_recover_all()
            except Exception:  # noqa: BLE001 - the database may be away for a moment
                logger.exception("recovering training runs and jobs failed; trying again")
            finally:
                connection.close()
            time.sleep(settings.TRAINING_RECOVERY_SECONDS)

    threading.Thread(target=sweep, name="training-run-recovery", daemon=True).start()
