"""The annotation app's models, one module a concern; import them from here."""

from annotation.models.judges import Judge, JudgingJob
from annotation.models.labels import (
    Adjudication,
    Assignment,
    ConsistencyCheck,
    Label,
    Pair,
    PairConsensus,
    Side,
)
from annotation.models.projects import CuratedDataset, Membership, Project

__all__ = [
    "Adjudication", "Assignment", "ConsistencyCheck", "CuratedDataset", "Judge", "JudgingJob",
    "Label", "Membership", "Pair", "PairConsensus", "Project", "Side",
]  # fmt: skip
