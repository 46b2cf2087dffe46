import sys
import time

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from annotation.judges.services import judge_save, judging_job_create
from annotation.management.commands._common import (
    PROJECT_HELP,
    project_argument,
    validation_message,
)
from annotation.models import Judge, JudgingJob
from config.celery import queue_is_served

JUDGE_OPTIONS = ("provider", "base_url", "model", "api_key_env")


class Command(BaseCommand):
    help = (
        "Queue an LLM judge over a project's pairs, each judged in both orders; its labels "
        "carry the judge's name as their source. Creates the judge from --provider, --base-url, "
        "--model and --api-key-env, or reuses (and updates) the one with that name. With "
        "--wait, follow the job to its end."
    )

    def add_arguments(self, parser):
        parser.add_argument("project", help=PROJECT_HELP)
        parser.add_argument("--name", required=True, help="The judge, e.g. gpt-4o-judge")
        parser.add_argument("--provider", choices=Judge.Provider.values)
        parser.add_argument("--base-url", help="e.g. http://localhost:8000/v1 for vLLM")
        parser.add_argument("--model")
        parser.add_argument("--api-key-env", help="The workers' variable holding the API key")
        parser.add_argument(
            "--pairs", choices=JudgingJob.Pairs.values, default=JudgingJob.Pairs.UNLABELLED
        )
        parser.add_argument("--limit", type=int, help="At most this many pairs (sample: how many)")
        parser.add_argument("--wait", action="store_true", help="Follow the job to its end")

    def handle(self, *args, **options):
        project = project_argument(options["project"])
        if options["wait"] and not queue_is_served("celery"):
            raise CommandError(
                "No worker serves the celery queue: start one with "
                "`celery -A workers worker -Q celery` (make run starts one)."
            )
        given = {name: options[name] for name in JUDGE_OPTIONS if options[name] is not None}
        judge = Judge.objects.filter(name=options["name"]).first()
        if judge is None and "model" not in given:
            raise CommandError(f"No judge named {options['name']!r}: give --model to create it.")
        try:
            if judge is None or given:
                judge = judge_save(judge=judge, user=None, name=options["name"], **given)
            job = judging_job_create(
                judge=judge, project=project, user=None, pairs=options["pairs"],
                limit=options["limit"],
            )  # fmt: skip
        except ValidationError as exc:
            raise CommandError(validation_message(exc)) from exc
        self.stdout.write(f"queued judging job {job.pk}: {job.total} pairs for {judge.name}")
        if options["wait"]:
            self._follow(job.pk)

    def _follow(self, job_id: int) -> None:
        while True:
            job = JudgingJob.objects.select_related("judge").get(pk=job_id)
            finished = job.done + job.failed
            if job.total:
                bar = int(30 * min(1.0, finished / job.total))
                sys.stderr.write(
                    f"\r[{'#' * bar}{'.' * (30 - bar)}] {finished}/{job.total}, "
                    f"{job.failed} failed  "
                )
            if job.finished:
                sys.stderr.write("\n")
                break
            time.sleep(0.5)
        if job.status == JudgingJob.Status.FAILED:
            raise CommandError(f"judging job {job.pk} failed: {job.error}")
        cost = f", cost {job.cost:.4f}" if job.cost is not None else ""
        rate = f", {job.pairs_per_second:.1f} pairs/s" if job.pairs_per_second else ""
        self.stdout.write(
            f"{job.status}: {job.done} pairs labelled, {job.failed} failed, "
            f"{job.inconsistent} changed with the order; {job.requests} requests, "
            f"{job.input_tokens} input and {job.output_tokens} output tokens{cost}{rate}"
        )
