from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from rewardmodels.formats import read_candidates, write_rows
from workers.management.commands._scoring import (
    add_model_and_file,
    model_path,
    read,
    scorer,
)


class Command(BaseCommand):
    help = (
        "Score {prompt, response} rows (or a prompt with a list of responses) with a reward "
        "model and write them to OUT with a `reward` field (`rewards` for lists). OUT's "
        "extension picks the format: .jsonl, .csv or .parquet."
    )

    def add_arguments(self, parser):
        add_model_and_file(parser)
        parser.add_argument("--out", required=True, help="Where to write the scored rows")

    def handle(self, *args, **options):
        path = model_path(options["model"])  # before reading a large file
        out = Path(options["out"])
        if out.suffix not in (".jsonl", ".json", ".csv", ".parquet"):
            raise CommandError("--out must end in .jsonl, .csv or .parquet")
        rows = read(
            lambda *a: read_candidates(*a, keep_source=True), options["file"], options["format"]
        )
        rewards, _ = scorer(path).score([r["prompt"] for r in rows], [r["response"] for r in rows])
        records: dict[int, dict] = {}
        for row, reward in zip(rows, rewards.tolist(), strict=True):
            record = records.setdefault(row["record"], dict(row["source"]))
            if "response" in record:
                record["reward"] = reward
            else:
                record.setdefault("rewards", []).append(reward)
        scored = [records[k] for k in sorted(records)]
        write_rows(out, scored)
        self.stdout.write(f"scored {len(rows)} responses in {len(scored)} rows -> {out}")
