import json
from collections import Counter
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from annotation.agreement.maths import DIFFICULTIES
from annotation.curation.selectors import dataset_rows
from rewardmodels.formats import read_preference_pairs
from rewardmodels.models import RewardModel
from rewardmodels.training.held_out import (
    HeldOutCheck,
    accuracy_interval,
    held_out_check,
    interval_text,
)
from workers.management.commands._scoring import (
    add_model_and_file,
    model_path,
    read,
    scorer,
)


class Command(BaseCommand):
    help = (
        "Evaluate a reward model on labelled preference pairs (any file import_pairs accepts, "
        "with chosen/rejected): accuracy with its 95% interval, by difficulty, mean reward gap, "
        "calibration (ECE), length bias and the length-debiased accuracy, calibration against "
        "people's votes where the rows carry them (agreement, n_votes); on the test split "
        "its training run was measured on, the untrained model's accuracy too. --json "
        "prints one JSON object; with --pairs it also lists each pair's result, in the file's "
        'order, under "pairs".'
    )

    def add_arguments(self, parser):
        add_model_and_file(parser)
        parser.add_argument("--json", action="store_true", help="Print the figures as JSON")
        parser.add_argument(
            "--pairs", action="store_true",
            help="With --json: each pair's result too, right and wrong, in the file's order "
            "(index, pair_id, chosen_reward, rejected_reward, gap = chosen - rejected, right, "
            "difficulty, chosen_tokens, rejected_tokens, chosen_longer)",
        )  # fmt: skip

    def handle(self, *args, **options):
        if options["pairs"] and not options["json"]:
            raise CommandError("--pairs lists the pairs in the JSON: add --json.")
        path = model_path(options["model"])  # before reading a large file
        rows = read(read_preference_pairs, options["file"], options["format"])
        from workers.ml.scoring import evaluate_pairs

        metrics = evaluate_pairs(
            scorer(path, training_precision=True), rows, per_pair=options["pairs"]
        )
        pairs = metrics.pop("pairs", None)
        interval = accuracy_interval(metrics)
        metrics["accuracy_ci95"] = list(interval) if interval else None
        untrained = untrained_on(path, rows)
        # Against the untrained model where the run measured it on these pairs, else chance.
        check = held_out_check(figures=metrics, untrained=untrained)
        if options["json"]:
            if untrained:
                metrics["untrained"] = untrained
            if pairs is not None:
                metrics["pairs"] = pairs
            self.stdout.write(json.dumps(metrics))
        else:
            self.stdout.write(_plain(metrics, check))
        if check and check.measured and check.warning:  # stderr: stdout stays the figures
            self.stderr.write(f"warning: {check.warning}")


def _plain(metrics: dict, check: HeldOutCheck | None) -> str:
    length = metrics["length"]
    return "\n".join([
        f"accuracy {check.summary}" if check else f"{metrics['n']} pairs",
        *([f"{check.baseline_text} (its training run, on these pairs), {check.gain_text}"]
          if check and check.measured else []),
        f"mean reward gap {metrics['mean_reward_gap']:.3f}, ECE {metrics['ece']:.3f}",
        *(f"  {name}: accuracy {part['accuracy']:.3f} on {part['n']} pairs"
          for name in DIFFICULTIES if (part := metrics["by_difficulty"].get(name))),
        f"length: reward-length correlation {_number(length['reward_length_correlation'])}, "
        f"accuracy when chosen is shorter {_number(length['accuracy_chosen_shorter'])} "
        f"({length['pairs_chosen_shorter']} pairs), longer "
        f"{_number(length['accuracy_chosen_longer'])} ({length['pairs_chosen_longer']})",
        f"length-debiased accuracy {_debiased(metrics)}",
        *([_people(people)] if (people := metrics.get("people_calibration")) else []),
    ])  # fmt: skip


def _debiased(metrics: dict) -> str:
    """The mean of the accuracies with the chosen response shorter and longer, which a
    model that only follows length cannot lift above 50%."""
    value = metrics.get("length_debiased_accuracy")
    if value is None:
        return "n/a (needs pairs with the chosen response shorter and pairs with it longer)"
    interval = metrics.get("length_debiased_accuracy_ci95")
    return f"{100 * value:.1f}%" + (f" (95% CI {interval_text(interval)})" if interval else "")


def _people(people: dict) -> str:
    if not people.get("n"):
        return "calibration against people: no pairs with two or more votes"
    return (
        f"calibration against people on {people['n']} pairs with two or more votes: "
        f"Brier {people['brier']:.3f} (always the mean share: {people['brier_baseline']:.3f})"
    )


def untrained_on(path: str, rows: list[dict]) -> dict | None:
    """The untrained model's metrics, where the registered model at `path` came from a run
    that measured them on exactly these pairs (its version's test split); else None."""
    registered = (
        RewardModel.objects.select_related("run__dataset")
        .filter(artifact__in={path, str(Path(path).resolve())})
        .first()
    )
    untrained = (
        registered.run.final_metrics.get("untrained") if registered and registered.run else None
    )
    if not untrained or untrained.get("n") != len(rows):
        return None
    try:
        held_out = [r for r in dataset_rows(registered.run.dataset) if r.get("split") == "test"]
    except (ValidationError, OSError):  # the snapshot is gone or changed: nothing to compare
        return None
    return untrained if Counter(map(_pair_key, held_out)) == Counter(map(_pair_key, rows)) else None


def _pair_key(row: dict) -> str:
    return json.dumps([row["prompt"], row["chosen"], row["rejected"]], sort_keys=True)


def _number(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"
