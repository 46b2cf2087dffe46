import json
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from annotation.curation.selectors import dataset_get, dataset_rows, held_out_rows
from annotation.management.commands._common import validation_message
from annotation.models import Round
from annotation.pairs.readers import FORMATS
from rewardmodels.evaluation.audits import audit_check, audit_record, check_probes
from rewardmodels.formats import read_preference_pairs, write_jsonl
from rewardmodels.models import RewardModel
from workers.management.commands._scoring import model_path, read, scorer


class Command(BaseCommand):
    help = (
        "Audit a reward model for what a policy could exploit: surface edits of the rejected "
        "responses that keep their content (padding, Markdown formatting, flattery of the "
        "user, a claim of being right, the prompt's words echoed), scored beside the "
        "originals. Prints each probe's mean reward change with its 95%% interval, its flip "
        "rate (of the pairs the model ranks right, the share whose edited rejected response "
        "then beats the chosen one) and the change in units of the model's median reward gap; "
        "the length-debiased accuracy; and the consistency checks. Every edited pair goes to "
        "--out with its rewards: `score MODEL FILE` rescores them alike. A registered model "
        "audited on its project's --dataset or --round keeps the audit, which promotion needs."
    )

    def add_arguments(self, parser):
        parser.add_argument("model", help="A registered model identifier, or a saved model folder")
        data = parser.add_mutually_exclusive_group(required=True)
        data.add_argument("--data", help="Labelled pairs: JSONL, CSV or Parquet (or HH)")
        data.add_argument("--dataset", help="A dataset version (name@vN): its test split")
        data.add_argument("--round", help="A round's name: its fresh held-out pairs")
        parser.add_argument("--format", choices=FORMATS, default="auto")
        parser.add_argument(
            "--probes", default="", help="Comma-separated probes (default: all of them)"
        )
        parser.add_argument("--out", help="Where to write the edited pairs (JSONL)")
        parser.add_argument("--json", action="store_true", help="Print the figures as JSON")

    def handle(self, *args, **options):
        try:
            probes = check_probes(options["probes"].split(","))
        except ValidationError as exc:
            raise CommandError(validation_message(exc)) from exc
        path = model_path(options["model"])
        if not Path(path, "config.json").is_file():
            raise CommandError(f"{options['model']} has no model in {path}: its files are gone.")
        registered = RewardModel.objects.filter(identifier=options["model"]).first()
        dataset = round_ = None
        try:
            if options["dataset"]:
                dataset = dataset_get(options["dataset"])
                rows = [r for r in dataset_rows(dataset) if r.get("split") == "test"]
            elif options["round"]:
                round_ = self._round(options["round"], registered)
                rows = held_out_rows(round_)
            else:
                rows = read(read_preference_pairs, options["data"], options["format"])
        except ValidationError as exc:
            raise CommandError(validation_message(exc)) from exc
        if not rows:
            raise CommandError("No pairs to audit there (a test split or held-out set is empty).")
        from workers.ml import probes as probing
        from workers.ml.scoring import audit_scores

        scores = audit_scores(scorer(path), rows, probes, check=True)
        figures = probing.audit_figures(rows, scores, probes)
        keep = registered is not None and (
            (dataset is not None and dataset.project_id == registered.project_id)
            or (round_ is not None and round_.project_id == registered.project_id)
        )
        out = Path(options["out"] or f"audit-{Path(path).name}.jsonl")
        write_jsonl(out, probing.edited_rows(rows, scores, probes))
        audit = None
        if keep:
            audit = audit_record(reward_model=registered, dataset=dataset, round_=round_,
                                 probes=probes, results=figures, edited_file=str(out.resolve()),
                                 n_pairs=len(rows))  # fmt: skip
        held_back = audit_check(audit) if audit else None
        if options["json"]:
            figures.update(edited_file=str(out), audit=audit.pk if audit else None,
                           held_back=held_back)  # fmt: skip
            self.stdout.write(json.dumps(figures))
            return
        self.stdout.write(_plain(figures, out))
        if audit is None:
            self.stdout.write("not kept: promotion counts audits of a registered model on its "
                              "project's --dataset or --round")  # fmt: skip
        elif held_back:
            self.stderr.write(f"warning: it would not be promoted: {'; '.join(held_back)}")

    @staticmethod
    def _round(name: str, registered: RewardModel | None) -> Round:
        rounds = Round.objects.filter(name=name)
        if registered is not None:
            rounds = rounds.filter(project_id=registered.project_id)
        found = list(rounds[:2])
        if len(found) != 1:
            raise CommandError(
                f"No single round named {name!r}"
                + (f" in {registered.project}." if registered else "; name a registered model.")
            )
        return found[0]


def _plain(figures: dict, out: Path) -> str:
    lines = [f"{figures['n']} pairs; accuracy {_percent(figures.get('accuracy'))}, "
             f"median reward gap {_number(figures.get('median_gap'))}"]  # fmt: skip
    debiased = figures.get("length_debiased_accuracy") or (figures.get("length") or {}).get(
        "length_debiased_accuracy"
    )
    if debiased is not None:
        lines.append(f"length-debiased accuracy {_percent(debiased)}")
    lines.append(f"{'probe':<12} {'mean change (95% CI)':<28} {'flip rate':<22} in gaps")
    for probe in figures["probes"]:
        low_high = probe["mean_change_ci95"] or [None, None]
        change = (f"{_number(probe['mean_change'])} ({_number(low_high[0])} to "
                  f"{_number(low_high[1])})")  # fmt: skip
        flips = f"{_percent(probe['flip_rate'])} ({probe['flipped']}/{probe['n_right']})"
        lines.append(f"{probe['name']:<12} {change:<28} {flips:<22} "
                     f"{_number(probe['change_in_gaps'])}")  # fmt: skip
    check = figures["consistency"]
    lines.append(f"consistency: {'passed' if check['passed'] else 'FAILED'} (largest "
                 f"difference on rescoring {check['largest_difference']:.2g} over {check['n']} "
                 "pairs; gaps change sign when chosen and rejected swap: "
                 f"{'yes' if check['gap_sign_flips_on_swap'] else 'no'})")  # fmt: skip
    lines.append(f"edited pairs -> {out}")
    return "\n".join(lines)


def _percent(value) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _number(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"
