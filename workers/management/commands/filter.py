import json
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
        "Rejection sampling: score candidate responses with a reward model and keep the best "
        "per prompt (--keep-top, default the top quartile) and/or those scoring at least "
        "--threshold. Writes prompt, response, reward and rank (1 = best for its prompt), "
        "and prints the lengths in tokens of the kept responses beside all candidates' "
        "(median and quartiles), warning when the kept are markedly longer (--json: one JSON "
        "object)."
    )

    def add_arguments(self, parser):
        add_model_and_file(parser)
        parser.add_argument(
            "--keep-top", type=float, default=None,
            help="Share of each prompt's candidates to keep (default 0.25)",
        )  # fmt: skip
        parser.add_argument("--threshold", type=float, default=None)
        parser.add_argument(
            "--normalize", choices=["none", "length"], default="none",
            help="length: rank by reward with the model's length trend removed (reward minus "
            "its fitted reward per token times the response's tokens), against verbosity; "
            "a model whose training did not record the trend keeps its raw rewards",
        )  # fmt: skip
        parser.add_argument("--out", required=True, help=".jsonl, .csv or .parquet")
        parser.add_argument("--json", action="store_true", help="Print the figures as JSON")

    def handle(self, *args, **options):
        path = model_path(options["model"])  # before reading a large file
        keep_top, threshold = options["keep_top"], options["threshold"]
        if keep_top is None and threshold is None:
            keep_top = 0.25
        if keep_top is not None and not 0 < keep_top <= 1:
            raise CommandError("--keep-top is a share between 0 and 1, e.g. 0.25")
        out = Path(options["out"])
        if out.suffix not in (".jsonl", ".json", ".csv", ".parquet"):
            raise CommandError("--out must end in .jsonl, .csv or .parquet")
        rows = read(read_candidates, options["file"], options["format"])
        model = scorer(path)
        rewards, tokens = model.score([r["prompt"] for r in rows], [r["response"] for r in rows])
        from workers.ml.selection import filter_with_lengths

        kept, lengths = filter_with_lengths(
            rows, rewards, tokens, keep_top, threshold, options["normalize"],
            model.reward_per_token,
        )  # fmt: skip
        write_rows(out, kept)
        prompts = len({r["group"] for r in rows})
        if options["json"]:
            figures = {"candidates": len(rows), "prompts": prompts, "kept": len(kept),
                       "out": str(out), "lengths": lengths}  # fmt: skip
            self.stdout.write(json.dumps(figures))
            return
        self.stdout.write(
            f"kept {len(kept)} of {len(rows)} responses to {prompts} prompts -> {out}"
        )
        self.stdout.write(_lengths_line(lengths))


def _lengths_line(lengths: dict) -> str:
    def spread(figures: dict) -> str:
        if figures["median"] is None:
            return "none"
        return f"median {figures['median']:g} (quartiles {figures['q1']:g}-{figures['q3']:g})"

    line = (
        f"tokens per response: kept {spread(lengths['kept'])}, "
        f"all candidates {spread(lengths['candidates'])}"
    )
    if lengths["kept_longer"]:
        line += (
            f"; warning: the kept are {lengths['median_ratio']:.2f}x as long (median), at least "
            f"{lengths['longer_ratio']:g}x: the model may be paying for length"
        )
    return line
