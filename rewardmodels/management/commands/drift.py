import json
import time

from django.core.management.base import BaseCommand

from annotation.management.commands._common import PROJECT_HELP, project_argument
from rewardmodels.evaluation.drift import project_drift
from rewardmodels.retraining.services import drift_evaluate


class Command(BaseCommand):
    help = (
        "Each model of a project on each round's fresh held-out set: accuracy with its 95% "
        "interval, the promoted model marked, and a warning when the promoted model has fallen "
        "on the newest round below its own test accuracy by more than the project allows. "
        "--evaluate first queues the evaluations missing (scoring queue) and waits for them."
    )

    def add_arguments(self, parser):
        parser.add_argument("project", help=PROJECT_HELP)
        parser.add_argument("--json", action="store_true", help="The matrix as JSON")
        parser.add_argument("--evaluate", action="store_true", help="Fill missing cells first")

    def handle(self, *args, **options):
        project = project_argument(options["project"])
        if options["evaluate"]:
            queued = drift_evaluate(project=project, user=None)
            self.stderr.write(f"queued {queued} evaluations")
            while any(cell.pending for row in project_drift(project=project).rows
                      for cell in row.cells):  # fmt: skip
                time.sleep(1.0)
        drift = project_drift(project=project)
        if options["json"]:
            self.stdout.write(json.dumps(drift.as_json(), indent=2))
            return
        for row in drift.rows:
            cells = []
            for round_, cell in zip(drift.rounds, row.cells, strict=True):
                shown = "not evaluated"
                if cell.accuracy is not None:
                    low, high = cell.interval
                    shown = f"{cell.accuracy:.1%} ({low:.1%}-{high:.1%}, {cell.n} pairs)"
                cells.append(f"{round_.name} {shown}")
            mark = " [promoted]" if row.promoted else ""
            self.stdout.write(f"{row.reward_model.identifier}{mark}: " + "; ".join(cells))
        if drift.warning:
            self.stderr.write(f"warning: {drift.warning}")
