from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from annotation.curation.selectors import EXPORT_FORMATS, dataset_export, dataset_get
from annotation.management.commands._common import validation_message


class Command(BaseCommand):
    help = (
        "Write a curated dataset version (name@vN) with TRL columns: prompt, chosen, rejected, "
        "margin, confidence, difficulty, agreement, n_votes, pair_id, split. jsonl and parquet "
        "load with datasets.load_dataset; hf is a folder for datasets.load_from_disk."
    )

    def add_arguments(self, parser):
        parser.add_argument("dataset", help="Dataset version identifier, e.g. harmless@v2")
        parser.add_argument("--format", choices=EXPORT_FORMATS, default="jsonl")
        parser.add_argument("--out", required=True, help="File (jsonl, parquet) or folder (hf)")
        parser.add_argument("--force", action="store_true", help="Overwrite an existing path")

    def handle(self, *args, **options):
        try:
            dataset = dataset_get(options["dataset"])
            out = dataset_export(
                dataset=dataset,
                fmt=options["format"],
                out=Path(options["out"]),
                force=options["force"],
            )
        except ValidationError as exc:
            raise CommandError(validation_message(exc)) from exc
        self.stdout.write(f"wrote {dataset.n_rows} rows of {dataset.identifier} to {out}")
