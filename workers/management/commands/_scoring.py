"""What evaluate, score and filter share: finding the model and reading the input file.
They score in this process (through workers.ml.scoring), so run them where the GPU is."""

from pathlib import Path

from django.core.management.base import CommandError

from annotation.pairs.readers import FORMATS, FileRejected
from rewardmodels.formats import RowsRejected
from rewardmodels.models import RewardModel


def add_model_and_file(parser) -> None:
    parser.add_argument("model", help="A registered model identifier, or a saved model folder")
    parser.add_argument("file", help="JSONL, CSV or Parquet (or HH dialogues)")
    parser.add_argument("--format", choices=FORMATS, default="auto")


def model_path(name: str) -> str:
    registered = RewardModel.objects.filter(identifier=name).first()
    if registered is not None:
        return registered.artifact
    if Path(name, "config.json").is_file():
        return name
    raise CommandError(
        f"{name!r} is neither a registered reward model nor a folder with a saved model."
    )


def read(reader, path: str, fmt: str) -> list[dict]:
    file = Path(path)
    if not file.is_file():
        raise CommandError(f"No such file: {path}")
    try:
        with file.open("rb") as stream:
            return reader(stream, file.name, fmt)
    except (FileRejected, RowsRejected) as exc:
        raise CommandError(f"{file.name}: {exc}") from exc


def scorer(path: str, training_precision: bool = False):
    """training_precision: compute as training's evaluation does (for figures), not as fast
    as possible."""
    from workers.ml import scoring  # torch: only when the command runs

    return scoring.scorer_for(path, training_precision)
