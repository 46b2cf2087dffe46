import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotation.labelling.selectors import labels_for_export
from annotation.management.commands._common import PROJECT_HELP, project_argument


class Command(BaseCommand):
    help = (
        "Write a project's labels as JSONL: pair (external id), annotator, choice (a, b or "
        "tie, about the stored responses), strength, rationale, shown_left, duration_ms."
    )

    def add_arguments(self, parser):
        parser.add_argument("project", help=PROJECT_HELP)
        parser.add_argument("--out", required=True, help="Output file ('-' for stdout)")
        parser.add_argument("--force", action="store_true", help="Overwrite an existing file")

    def handle(self, *args, **options):
        project = project_argument(options["project"])
        out = options["out"]
        if out != "-" and Path(out).exists() and not options["force"]:
            raise CommandError(f"{out} exists; pass --force to overwrite it.")
        count = 0
        stream = self.stdout if out == "-" else open(out, "w", encoding="utf-8")  # noqa: SIM115
        try:
            for row in labels_for_export(project=project).iterator(chunk_size=5000):
                record = {
                    "pair": row["pair__external_id"],
                    "annotator": row["annotator__username"] or row["source"],
                    "choice": row["choice"],
                    "strength": row["strength"],
                    "rationale": row["rationale"],
                    "shown_left": row["shown_left"] or None,
                    "duration_ms": row["duration_ms"],
                    "created_at": row["created_at"].isoformat(),
                }
                stream.write(json.dumps(record, ensure_ascii=False) + "\n")
                count += 1
        finally:
            if out != "-":
                stream.close()
        if out != "-":
            self.stderr.write(f"wrote {count} labels to {out}")
