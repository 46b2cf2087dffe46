"""Following a training run from a command: a progress bar on stderr, then its figures."""

import sys
import time

from django.core.management.base import CommandError

from rewardmodels.models import TrainingRun
from rewardmodels.training.held_out import held_out_check
from rewardmodels.training.selectors import run_untrained


def follow_run(command, run_id: int) -> TrainingRun:
    """Wait for the run's end with a progress bar on stderr; print the artifact and final
    figures (a warning on stderr where the held-out interval includes the untrained
    model's accuracy) and return the run. CommandError if it did not succeed."""
    finished = (
        TrainingRun.Status.SUCCEEDED,
        TrainingRun.Status.FAILED,
        TrainingRun.Status.CANCELLED,
    )
    terminal = sys.stderr.isatty()
    shown = ""
    while True:
        run = TrainingRun.objects.get(pk=run_id)
        if run.total_steps:
            done = int(30 * run.progress)
            line = f"[{'#' * done}{'.' * (30 - done)}] {run.step}/{run.total_steps}"
            if terminal:  # one line redrawn in place, with the time left
                eta = f", about {run.eta_seconds:.0f} s left" if run.eta_seconds else ""
                sys.stderr.write(f"\r{line}{eta}  ")
            elif line != shown:  # a log: a line each time the bar moves
                sys.stderr.write(line + "\n")
            shown = line
        if run.status in finished:
            if terminal:
                sys.stderr.write("\n")
            break
        time.sleep(1.0)
    if run.status != TrainingRun.Status.SUCCEEDED:
        raise CommandError(f"run {run.pk} {run.status}: {run.error or 'see its log'}")
    metrics = run.final_metrics
    command.stdout.write(f"artifact {run.artifact}")
    check = held_out_check(figures=metrics, untrained=run_untrained(run=run))
    if check:
        command.stdout.write(
            f"held-out accuracy {check.summary}; {check.baseline_text}, {check.gain_text}"
        )
    command.stdout.write(
        f"mean reward gap {metrics.get('mean_reward_gap', 0):.3f}, "
        f"{metrics.get('truncated_training_pairs', 0)} training and "
        f"{metrics.get('truncated_pairs', 0)} held-out pairs shortened to fit"
    )
    if check and check.warning:  # on stderr: the last line of stdout stays the identifier
        command.stderr.write(f"warning: {check.warning}")
    return run
