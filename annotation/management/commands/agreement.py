import json

from django.core.management.base import BaseCommand

from annotation.agreement.selectors import agreement_summary
from annotation.management.commands._common import PROJECT_HELP, project_argument


def _figure(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


class Command(BaseCommand):
    help = (
        "Agreement figures of a project: percent agreement, 2:1 majority rate, Fleiss' kappa, "
        "Krippendorff's alpha, Cohen's kappa per annotator pair, per-annotator bias figures, "
        "each annotator's and judge's reliability estimated from the labels (Dawid-Skene, MACE, "
        "with 95% intervals), the pairs whose reliability-weighted winner differs from the head "
        "count, and the difficulty mix. --json prints them as JSON (each annotator's "
        "'reliability': dawid_skene, dawid_skene_ci95, mace, mace_ci95, flag; null with too few "
        "labels; for LLM judges, 'calibration' against the people's Dawid-Skene winner by "
        "difficulty and how often they held their pick where people split); a figure that "
        "cannot be computed is null."
    )

    def add_arguments(self, parser):
        parser.add_argument("project", help=PROJECT_HELP)
        parser.add_argument("--json", action="store_true", help="Print JSON")

    def handle(self, *args, **options):
        project = project_argument(options["project"])
        summary = agreement_summary(project=project)
        if options["json"]:
            self.stdout.write(json.dumps(summary, indent=2))
            return
        self.stdout.write(
            f"{summary['n_labels']} labels on {summary['n_pairs']} pairs "
            f"by {summary['n_annotators']} annotators and sources"
        )
        for key in (
            "percent_agreement",
            "majority_2to1_rate",
            "fleiss_kappa",
            "krippendorff_alpha",
            "krippendorff_alpha_interval",
        ):
            self.stdout.write(f"  {key:<28} {_figure(summary[key])}")
        self.stdout.write(f"  difficulty: {summary['difficulty']}")
        for entry in summary["annotators"]:
            found = entry["reliability"] or {}
            self.stdout.write(
                f"  {entry['name']:<20} n={entry['n']:<6} "
                f"majority={_figure(entry['agreement_with_majority'])} "
                f"left={_figure(entry['left_rate'])} longer={_figure(entry['longer_rate'])} "
                f"gold={_figure(entry['gold_accuracy'])} "
                f"reliability={_figure(found.get('dawid_skene'))} "
                f"competence={_figure(found.get('mace'))}"
                + (f" ({found['flag']})" if found.get("flag") else "")
            )
        weighted = summary["weighted"]
        self.stdout.write(
            f"  weighted ({weighted['rule']}): {weighted['n_disagreements']} pairs with another "
            "winner than the head count"
            if weighted["enough_labels"]
            else "  too few pairs with two or more votes to estimate reliability"
        )
