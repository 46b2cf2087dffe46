"""Mitigations of length and surface hacking, side by side in one run, on real HH pairs.

The HH harmless dev pairs go through the product as a user's would: imported (their
preference as a label), curated twice with one seed and one test split (plain, and with
`balance_length`, which evens the train split only), trained on with the packaged MiniLM at
every default but the one changed, then evaluated on the shared test split and audited with
every probe. Per configuration: held-out accuracy with its 95% interval, accuracy when the
chosen response is the shorter / longer, their mean (length-debiased accuracy), and each
probe's flip rate; with the untrained model's figures as the baseline.

    .venv/bin/python benchmarks/length_mitigations.py \
        --data ../shared/data/hh-rlhf-harmless-dev.jsonl [--only 'no mitigation'] [--seed 1]
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CONFIGURATIONS = {
    "defaults (augment edits)": ("plain", {}),
    "no mitigation": ("plain", {"augment_edits": False}),
    "balanced": ("balanced", {"augment_edits": False}),
    "length penalty 1.0": ("plain", {"augment_edits": False, "length_penalty": 1.0}),
    "balanced + augment edits": ("balanced", {}),
    "balanced + length penalty 1.0": ("balanced", {"augment_edits": False, "length_penalty": 1.0}),
}


def setup_django(folder: Path) -> None:
    os.environ["DATABASE_URL"] = f"sqlite:///{folder / 'bench.sqlite3'}"
    os.environ["PREFHUB_VAR_DIR"] = str(folder / "var")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def versions(data: Path, test_fraction: float) -> dict[str, list[dict]]:
    """The pairs imported and curated plain and balanced: each version's rows."""
    from annotation.curation.selection import CurationFilters
    from annotation.curation.selectors import dataset_rows
    from annotation.curation.services import dataset_curate
    from annotation.models import Project
    from annotation.pairs.imports import pairs_import

    project = Project.objects.create(name="hh")
    with data.open("rb") as stream:
        pairs_import(project=project, stream=stream, filename=data.name, fmt="hh")
    made = {}
    for name, balance in (("plain", False), ("balanced", True)):
        filters = CurationFilters(test_fraction=test_fraction, balance_length=balance)
        dataset = dataset_curate(project=project, name=name, filters=filters, user=None)
        made[name] = dataset_rows(dataset)
    return made


def side(figures: dict, key: str):
    return (figures.get("length") or {}).get(key)


def debiased(figures: dict) -> float | None:
    shorter, longer = (
        side(figures, "accuracy_chosen_shorter"),
        side(figures, "accuracy_chosen_longer"),
    )
    return None if shorter is None or longer is None else (shorter + longer) / 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="HH-format JSONL")
    parser.add_argument("--test-fraction", type=float, default=0.3)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--only", default="", help="Comma-separated configurations")
    parser.add_argument(
        "--seed", type=int, default=0, help="The training seed (the split stays the same)"
    )
    args = parser.parse_args()
    wanted = [n.strip() for n in args.only.split(",") if n.strip()] or list(CONFIGURATIONS)

    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        setup_django(folder)
        rows = versions(Path(args.data), args.test_fraction)
        from workers.ml import probes, scoring, training
        from workers.ml.config import TrainConfig
        from workers.ml.metrics import wilson_interval

        test = [r for r in rows["plain"] if r["split"] == "test"]
        names = list(probes.PROBES)
        print(f"{len(test)} held-out pairs; train: "
              f"{sum(r['split'] == 'train' for r in rows['plain'])} plain, "
              f"{sum(r['split'] == 'train' for r in rows['balanced'])} balanced")  # fmt: skip
        header = ("| training | accuracy (95% CI) | chosen shorter / longer | length-debiased | "
                  + " | ".join(f"{n} flips" for n in names) + " | minutes |")  # fmt: skip
        lines = [header, "|" + "---|" * (6 + len(names) - 1)]
        untrained = None
        for name in wanted:
            version, changes = CONFIGURATIONS[name]
            train_rows = [r for r in rows[version] if r["split"] == "train"]
            config = TrainConfig(epochs=args.epochs, seed=args.seed, **changes)
            started = time.perf_counter()
            run = folder / name.replace(" ", "-")
            final = training.train(config, train_rows, test, run)
            minutes = (time.perf_counter() - started) / 60
            untrained = untrained or final["untrained"]
            scorer = scoring.Scorer(str(run / "model"), training_precision=True)
            figures = scoring.evaluate_pairs(scorer, test)
            audit = probes.audit_figures(
                test,
                scoring.audit_scores(scoring.Scorer(str(run / "model")), test, names, True),
                names,
            )
            flips = " | ".join(f"{p['flip_rate']:.1%}" for p in audit["probes"])
            low, high = wilson_interval(round(figures["accuracy"] * figures["n"]), figures["n"])
            lines.append(
                f"| {name} | {figures['accuracy']:.1%} ({low:.1%}-{high:.1%}) | "
                f"{side(figures, 'accuracy_chosen_shorter'):.0%} / "
                f"{side(figures, 'accuracy_chosen_longer'):.0%} | {debiased(figures):.1%} | "
                f"{flips} | {minutes:.1f} |"
            )
            print(lines[-1], flush=True)
        if untrained:
            print(f"untrained model: accuracy {untrained['accuracy']:.1%}, length-debiased "
                  f"{debiased(untrained):.1%}")  # fmt: skip
        print("\n".join(lines))


if __name__ == "__main__":
    main()
