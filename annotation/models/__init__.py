"""The annotation app's models, one module a concern; import them from here."""

from annotation.models.accounts import ApiToken
from annotation.models.activity import ActivityEntry
from annotation.models.judges import Judge, JudgingJob
from annotation.models.labels import (
    Adjudication,
    Assignment,
    ConsensusFit,
    ConsistencyCheck,
    Label,
    Pair,
    PairConsensus,
    Side,
)
from annotation.models.projects import CuratedDataset, Membership, Project, QueuePrecedence
from annotation.models.rounds import Candidate, Round

__all__ = [
    "ActivityEntry", "Adjudication", "ApiToken", "Assignment", "Candidate", "ConsensusFit",
    "ConsistencyCheck", "CuratedDataset", "Judge", "JudgingJob", "Label", "Membership", "Pair",
    "PairConsensus", "Project", "QueuePrecedence", "Round", "Side",
]  # fmt: skip
