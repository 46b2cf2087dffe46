"""Real Celery workers for the tests that need one: on Redis (a database of their own) and
the PostgreSQL test database, each in its own process group, always killed at the end."""

import contextlib
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import quote, urlsplit

import kombu
import pytest
import redis
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
# The worker tests' own Redis database, flushed before and after (two checkouts testing at
# once each set their own).
REDIS_DB = int(os.environ.get("PREFHUB_TEST_REDIS_DB", "7"))
# Training runs' queue; evaluations, filters and audits go to "scoring", scores and best-of-N
# to "interactive" (a scoring host: `-Q interactive,scoring` beside `-Q interactive`).
QUEUE = "gpu"


def missing_service(reason: str):
    if os.environ.get("PREFHUB_REQUIRE_SERVICES") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


def redis_url() -> str:
    """REDIS_DB on the Redis that CELERY_BROKER_URL (or REDIS_URL) names, else on localhost."""
    base = os.environ.get("CELERY_BROKER_URL") or os.environ.get("REDIS_URL") or ""
    if not base.startswith(("redis://", "rediss://")):
        base = "redis://127.0.0.1:6379"
    return urlsplit(base)._replace(path=f"/{REDIS_DB}").geturl()


def database_url() -> str:
    """The test database (test_...), as a URL a worker process can open."""
    db = connection.settings_dict
    credentials = quote(db["USER"] or "", safe="")
    if db["PASSWORD"]:
        credentials += ":" + quote(db["PASSWORD"], safe="")
    host = db["HOST"] or ""
    if db["PORT"]:
        host += f":{db['PORT']}"
    return f"postgres://{credentials}@{host}/{quote(db['NAME'], safe='')}"


def forget_broker_connections(app) -> None:
    """Celery keeps its broker connection pool and producer pool once made: drop both, so the
    next send connects to whatever CELERY_BROKER_URL says now."""
    kombu.pools.reset()
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def broker(on_postgres):
    """This process's Celery app sends to REDIS_DB, which starts and ends empty.

    Celery reads CELERY_BROKER_URL from the environment before its own configuration
    (celery.app.utils.Settings.broker_url), so the variable, not app.conf, decides here."""
    from config.celery import app

    url = redis_url()
    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        client.ping()
    except (redis.exceptions.RedisError, OSError) as exc:
        missing_service(f"needs Redis at {url}: {exc}")
    client.flushdb()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CELERY_BROKER_URL", url)
        patch.delenv("CELERY_BROKER_WRITE_URL", raising=False)
        forget_broker_connections(app)
        assert app.connection_for_write().as_uri().endswith(f"/{REDIS_DB}")
        yield client
    forget_broker_connections(app)  # those were made for REDIS_DB
    client.flushdb()
    client.close()


@pytest.fixture
def results_in_redis(broker, monkeypatch):
    """Results in the worker tests' Redis database, for this process and the workers (start
    them with CELERY_RESULT_BACKEND=redis_url())."""
    from config.celery import app

    monkeypatch.setenv("CELERY_RESULT_BACKEND", redis_url())
    app._local.__dict__.pop("backend", None)  # made for the old setting: make it again
    yield
    app._local.__dict__.pop("backend", None)


@pytest.fixture
def workers(broker, tmp_path):
    """Starts `celery worker` processes, on the gpu queue unless `queues` says otherwise;
    SIGKILLs whatever is left of them (each runs in its own process group) before the test
    database is flushed."""
    started: list[subprocess.Popen] = []
    logs: list[Path] = []

    def start(queues: str = QUEUE, **extra_env) -> subprocess.Popen:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": database_url(),
            "DATABASE_CONN_MAX_AGE": "0",
            "CELERY_BROKER_URL": redis_url(),
            "CELERY_TASK_ALWAYS_EAGER": "0",
            "MEDIA_ROOT": str(settings.MEDIA_ROOT),
            "PREFHUB_VAR_DIR": str(tmp_path / "var"),
            "PYTHONUNBUFFERED": "1",
            # One torch thread: beside other busy processes on a small machine, more threads
            # than free cores make each step many times slower.
            "OMP_NUM_THREADS": "1",
            "CUDA_VISIBLE_DEVICES": "",  # the run's length is sized for a CPU
            **extra_env,
        }
        for name in ("REDIS_URL", "CELERY_BROKER_READ_URL", "CELERY_BROKER_WRITE_URL"):
            env.pop(name, None)
        log = tmp_path / f"worker-{len(started) + 1}.log"
        command = [
            sys.executable, "-m", "celery", "-A", "workers", "worker", "-Q", queues, "-c", "1",
            "--pool", "prefork", "-n", f"test-{uuid.uuid4().hex[:8]}@%h", "--without-heartbeat",
            "--without-gossip", "--without-mingle", "-l", "INFO",
        ]  # fmt: skip
        with log.open("w") as out:
            process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        started.append(process)
        logs.append(log)
        return process

    start.logs = logs
    try:
        yield start
    finally:
        for process in started:
            kill_group(process)


def kill_group(process: subprocess.Popen) -> None:
    """SIGKILL a worker's main process and its pool children at once."""
    with contextlib.suppress(ProcessLookupError):  # already gone
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


_UNSET = object()


def model_with_length_trend(model: Path, folder: Path, reward_per_token=_UNSET) -> Path:
    """A view of a saved model whose training.json records `reward_per_token` as the length
    trend (or, left unset, records none, as models trained before it did): the other files
    are links to the original's, so the weights are shared, not copied."""
    import json

    folder.mkdir(parents=True)
    for item in Path(model).iterdir():
        if item.name != "training.json":
            (folder / item.name).symlink_to(item.resolve())
    record = json.loads(Path(model, "training.json").read_text())
    record["metrics"].setdefault("length", {}).pop("reward_per_token", None)
    if reward_per_token is not _UNSET:
        record["metrics"]["length"]["reward_per_token"] = reward_per_token
    (folder / "training.json").write_text(json.dumps(record))
    return folder
