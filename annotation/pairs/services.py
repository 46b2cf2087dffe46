"""A lead's writes on one pair: adjudication and gold answers."""

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction

from annotation.activity import Kind, record
from annotation.agreement.maths import CHOICE_CODES
from annotation.agreement.services import consensus_refresh
from annotation.models import Adjudication, Pair


def pair_adjudicate(*, pair: Pair, lead: AbstractBaseUser, choice: str, note: str = "") -> None:
    """Record a lead's final decision; it overrides the majority from now on."""
    if choice not in CHOICE_CODES:
        raise ValidationError({"choice": "Choose a, b or tie."})
    with transaction.atomic():
        before = Adjudication.objects.filter(pair=pair).values_list("choice", flat=True).first()
        Adjudication.objects.update_or_create(
            pair=pair, defaults={"choice": choice, "decided_by": lead, "note": note.strip()}
        )
        consensus_refresh(pair_ids=[pair.pk])
        record(
            Kind.ADJUDICATED,
            actor=lead,
            target=pair,
            summary=note.strip(),
            changes={"decision": (before, choice)},
        )


def pair_adjudication_clear(*, pair: Pair) -> None:
    with transaction.atomic():
        before = Adjudication.objects.filter(pair=pair).values_list("choice", flat=True).first()
        Adjudication.objects.filter(pair=pair).delete()
        consensus_refresh(pair_ids=[pair.pk])
        if before is not None:
            record(
                Kind.ADJUDICATED,
                target=pair,
                summary="Decision cleared",
                changes={"decision": (before, None)},
            )


def pair_set_gold(*, pair: Pair, choice: str) -> None:
    """Mark a pair as gold with its known answer, or unmark it with an empty choice."""
    if choice not in ("", *CHOICE_CODES):
        raise ValidationError({"gold_choice": "Choose a, b, tie, or nothing to unmark."})
    with transaction.atomic():
        before = Pair.objects.filter(pk=pair.pk).values_list("gold_choice", flat=True).first()
        Pair.objects.filter(pk=pair.pk).update(gold_choice=choice)
        consensus_refresh(pair_ids=[pair.pk])  # marks the figures out of date
        if before != choice:
            record(Kind.GOLD_SET, target=pair, changes={"gold_choice": (before, choice)})
