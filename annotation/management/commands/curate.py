from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from annotation.agreement.maths import DIFFICULTIES
from annotation.curation.selection import CurationFilters
from annotation.curation.services import dataset_curate
from annotation.management.commands._common import (
    PROJECT_HELP,
    project_argument,
    validation_message,
)


def _names(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


class Command(BaseCommand):
    help = (
        "Cut an immutable, versioned dataset from a project's consensus. The last line printed "
        "is the new version's identifier (name@vN), which export_dataset and training accept."
    )

    def add_arguments(self, parser):
        parser.add_argument("project", help=PROJECT_HELP)
        parser.add_argument("--name", required=True, help="Dataset name, e.g. harmless-clean")
        parser.add_argument("--min-votes", type=int, default=1)
        parser.add_argument("--min-agreement", type=float, default=0.0)
        parser.add_argument("--exclude-contested", action="store_true")
        parser.add_argument(
            "--exclude-ties", action="store_true", help="Drop pairs with any tie vote"
        )
        parser.add_argument("--difficulty", default=",".join(DIFFICULTIES), help="e.g. easy,medium")
        parser.add_argument("--exclude-sources", default="", help="Label sources to leave out")
        parser.add_argument(
            "--min-annotator-kappa",
            type=float,
            default=None,
            help="Leave out labels of annotators whose mean Cohen's kappa is below this",
        )
        parser.add_argument(
            "--min-annotator-reliability",
            type=float,
            default=None,
            help="Leave out labels of annotators and label sources whose Dawid-Skene "
            "reliability (0-1), estimated on the labels left after --exclude-sources, is below "
            "this; with too few labels for an estimate nobody is left out",
        )
        parser.add_argument(
            "--min-confidence",
            type=float,
            default=0.0,
            help="Leave out pairs whose consensus confidence (0-1) is below this: the winner's "
            "probability under the project's weighted rule, its share of the votes under the "
            "head count",
        )
        parser.add_argument("--test-fraction", type=float, default=0.1)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument(
            "--balance-length",
            action="store_true",
            help="Make the train split hold as many pairs whose chosen response is the longer "
            "as pairs whose chosen response is the shorter (length in characters of the "
            "response text), dropping the excess at random by --seed; pairs of equal length "
            "stay. The test split is left as drawn, where a model's length bias shows",
        )

    def handle(self, *args, **options):
        project = project_argument(options["project"])
        try:
            filters = CurationFilters(
                min_votes=options["min_votes"],
                min_agreement=options["min_agreement"],
                exclude_contested=options["exclude_contested"],
                exclude_ties=options["exclude_ties"],
                difficulty=_names(options["difficulty"]),
                exclude_sources=_names(options["exclude_sources"]),
                min_annotator_kappa=options["min_annotator_kappa"],
                min_annotator_reliability=options["min_annotator_reliability"],
                min_confidence=options["min_confidence"],
                test_fraction=options["test_fraction"],
                seed=options["seed"],
                balance_length=options["balance_length"],
            )
            dataset = dataset_curate(
                project=project, name=options["name"], filters=filters, user=None
            )
        except ValidationError as exc:
            raise CommandError(validation_message(exc)) from exc
        manifest = dataset.manifest
        self.stdout.write(
            f"{dataset.n_rows} pairs ({dataset.n_train} train, {dataset.n_test} test); "
            f"by difficulty {manifest['by_difficulty']}; dropped {manifest['dropped']}"
        )
        rule = manifest["consensus"]
        asked = f" ({rule['asked']} asked for: {rule['why']})" if "asked" in rule else ""
        self.stdout.write(f"consensus by {rule['rule']}{asked}")
        if manifest["dropped_annotators"]:
            self.stdout.write(f"labels left out from {', '.join(manifest['dropped_annotators'])}")
        for note in manifest["notes"]:
            self.stdout.write(note)
        if "balance_length" in manifest:
            balance = manifest["balance_length"]
            self.stdout.write(
                f"train split balanced for length: {balance['chosen_longer']} chosen longer, "
                f"{balance['chosen_shorter']} chosen shorter, {balance['equal']} equal "
                f"({balance['dropped']} dropped)"
            )
        self.stdout.write(f"sha256 {dataset.sha256}")
        self.stdout.write(dataset.identifier)
