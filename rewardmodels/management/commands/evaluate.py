import json

from django.core.management.base import BaseCommand

from rewardmodels.formats import read_preference_pairs
from rewardmodels.management.commands._scoring import (
    add_model_and_file,
    model_path,
    read,
    scorer,
)


class Command(BaseCommand):
    help = (
        "Evaluate a reward model on labelled preference pairs (any file import_pairs accepts, "
        "with chosen/rejected): accuracy, by difficulty, mean margin, calibration (ECE) and "
        "length bias. --json prints one JSON object."
    )

    def add_arguments(self, parser):
        add_model_and_file(parser)
        parser.add_argument("--json", action="store_true", help="Print the figures as JSON")

    def handle(self, *args, **options):
        path = model_path(options["model"])  # before reading a large file
        rows = read(read_preference_pairs, options["file"], options["format"])
        from workers.scoring import evaluate_pairs

        figures = evaluate_pairs(scorer(path, exact=True), rows)
        if options["json"]:
            self.stdout.write(json.dumps(figures))
            return
        length = figures["length"]
        lines = [
            f"{figures['n']} pairs: accuracy {figures['accuracy']:.3f}, mean margin "
            f"{figures['mean_margin']:.3f}, ECE {figures['ece']:.3f}",
            *(f"  {name}: accuracy {part['accuracy']:.3f} on {part['n']} pairs"
              for name, part in figures["by_difficulty"].items()),
            f"length: reward-length correlation {_number(length['reward_length_correlation'])}, "
            f"accuracy when chosen is shorter {_number(length['accuracy_chosen_shorter'])} "
            f"({length['pairs_chosen_shorter']} pairs), longer "
            f"{_number(length['accuracy_chosen_longer'])} ({length['pairs_chosen_longer']})",
        ]  # fmt: skip
        self.stdout.write("\n".join(lines))


def _number(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"
