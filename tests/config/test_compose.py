"""compose.yaml starts the production layout: every queue the app routes work to has a worker,
one beat, and every service of the app on the same database, broker, key and media volume.
(Docker is not on the test machines: this reads the file; it does not start it.)"""

import shlex
from pathlib import Path

import yaml
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]


def services(name: str = "compose.yaml") -> dict:
    return yaml.safe_load((ROOT / name).read_text())["services"]


def app_services() -> dict:
    return {name: s for name, s in services().items() if s.get("image") == "prefhub"}


def test_every_queue_has_a_worker_and_there_is_one_beat():
    commands = [s["command"] for s in app_services().values()]
    served = {
        queue
        for command in commands
        if command[:4] == ["celery", "-A", "workers", "worker"]
        for queue in command[command.index("-Q") + 1].split(",")
    }
    routed = {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()}
    assert served == routed | {settings.CELERY_TASK_DEFAULT_QUEUE}
    assert sum(command[:4] == ["celery", "-A", "workers", "beat"] for command in commands) == 1
    web = services()["web"]["command"]
    assert web[:2] == ["gunicorn", "config.wsgi"] and (ROOT / "config" / "wsgi.py").exists()


def test_the_app_shares_one_database_broker_key_and_media_volume():
    app = app_services()
    assert {"web", "migrate", "worker", "scoring", "training", "beat"} <= set(app)
    environments = [s["environment"] for s in app.values()]
    for setting in ("SECRET_KEY", "DATABASE_URL", "CELERY_BROKER_URL", "MEDIA_ROOT"):
        assert len({env[setting] for env in environments}) == 1, setting
    media = environments[0]["MEDIA_ROOT"]
    assert all(f"media:{media}" in s["volumes"] for s in app.values())
    assert all(s["depends_on"] == {"migrate": {"condition": "service_completed_successfully"}}
               for name, s in app.items() if name != "migrate")  # fmt: skip
    assert services()["migrate"]["command"] == shlex.split("python manage.py migrate --noinput")


def test_the_gpu_file_gives_every_worker_that_trains_or_scores_every_gpu():
    gpu = services("compose.gpu.yaml")
    assert set(gpu) == {"training", "scoring", "interactive"} <= set(services())
    for service in gpu.values():
        (device,) = service["deploy"]["resources"]["reservations"]["devices"]
        assert device["count"] == "all" and device["capabilities"] == ["gpu"]


def test_what_a_person_waits_for_has_a_worker_that_serves_nothing_else():
    """A score or a judge's preview is never queued behind an evaluation's part or a judging
    job: a worker serves its queue alone, and the workers of those long jobs serve it too."""
    queues = {name: s["command"][s["command"].index("-Q") + 1].split(",")
              for name, s in app_services().items() if "-Q" in s["command"]}  # fmt: skip
    assert settings.CELERY_TASK_ROUTES["rewardmodels.score"]["queue"] == "interactive"
    assert settings.CELERY_TASK_ROUTES["annotation.judge_ask"]["queue"] == "interactive_judge"
    assert queues["interactive"] == ["interactive"] and "interactive" in queues["scoring"]
    assert queues["judge-preview"] == ["interactive_judge"]
    assert "interactive_judge" in queues["worker"]
