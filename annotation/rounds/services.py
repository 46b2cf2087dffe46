"""Rounds of policy outputs: importing a round's candidates, with a share of its prompts kept
back as the round's fresh held-out set. Which prompts are held out follows from the prompt
alone (a hash below the share), so importing again, or the same prompt in another file of
the round, keeps it on the same side."""

import hashlib
import json
import random
from typing import BinaryIO

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count

from annotation.models import Candidate, Pair, Project, Round
from annotation.pairs.formats import content_id, parse_candidate_record
from annotation.pairs.imports import ImportReport, collect_rows
from annotation.pairs.readers import RowError, read_records
from annotation.pairs.search import search_index_soon


def _key(value) -> str:
    text = (
        value if isinstance(value, str) else json.dumps(value, sort_keys=True, ensure_ascii=False)
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def held_out(prompt_key: str, share: float) -> bool:
    """Whether a prompt belongs to the fresh held-out set: its hash, read as a number in
    [0, 1), falls below the share."""
    return int(prompt_key[:12], 16) / 16**12 < share


def candidates_import(
    *,
    project: Project,
    stream: BinaryIO,
    filename: str,
    round_name: str,
    policy: str = "",
    fmt: str = "auto",
    skip_invalid: bool = False,
) -> ImportReport:
    """Add a file of candidates ({prompt, responses: [...]} or {prompt, response} rows) to a
    round, created on first use with the project's held-out share. All or nothing unless
    skip_invalid; a candidate the round has already is skipped."""

    def candidate_rows():
        for line, record in read_records(stream, filename, fmt):
            found = record if isinstance(record, RowError) else parse_candidate_record(line, record)
            yield from [found] if isinstance(found, RowError) else found

    rows, errors = collect_rows(candidate_rows(), skip_invalid)
    report = ImportReport(errors=errors)
    with transaction.atomic():
        round_ = Round.objects.filter(project=project, name=round_name.strip()).first()
        if round_ is None:
            round_ = Round(project=project, name=round_name.strip(), policy=policy.strip(),
                           held_out_share=project.held_out_share)  # fmt: skip
            round_.full_clean()
            round_.save()
        seen = set(round_.candidates.values_list("prompt_key", "response_key"))
        new = []
        for row in rows:
            key = (_key(row["prompt"]), _key(row["response"]))
            if key in seen:
                report.skipped += 1
                continue
            seen.add(key)
            new.append(
                Candidate(
                    round=round_, prompt=row["prompt"], prompt_key=key[0],
                    response=row["response"], response_key=key[1],
                    held_out=held_out(key[0], round_.held_out_share),
                )
            )  # fmt: skip
        Candidate.objects.bulk_create(new, batch_size=5000)
        totals = round_.candidates.aggregate(
            n=Count("id"), prompts=Count("prompt_key", distinct=True)
        )
        Round.objects.filter(pk=round_.pk).update(
            n_candidates=totals["n"], n_prompts=totals["prompts"]
        )
        report.imported = len(new)
    return report


# ---------------------------------------------------------------------------------------
# Pairs from a round's candidates

STRATEGIES = ("uncertain", "random", "extremes")
NEEDS_SCORES = ("uncertain", "extremes")


def choose_pairs(
    groups: dict[str, list[tuple[int, float | None]]],
    strategy: str,
    *,
    per_prompt: int = 1,
    limit: int | None = None,
    seed: int = 0,
) -> list[tuple[int, int, float | None]]:
    """Which candidates to pair: (first id, second id, predicted gap = reward of the first
    minus the second's, or None unscored), at most `per_prompt` from each prompt's group of
    (candidate id, reward) and at most `limit` in all, the most informative first:
    uncertain, the smallest reward gaps (the model is least sure); extremes, the largest
    (best against worst, where a confident mistake shows); random, in a seeded order."""
    rng = random.Random(seed)
    chosen = []
    for key in sorted(groups):
        members = sorted(groups[key])
        pairs = [
            (a, b, None if sa is None or sb is None else sa - sb)
            for i, (a, sa) in enumerate(members)
            for b, sb in members[i + 1 :]
        ]
        if strategy == "random":
            rng.shuffle(pairs)
        else:
            pairs.sort(key=lambda p: (abs(p[2]), p[0], p[1]), reverse=strategy == "extremes")
        chosen += pairs[:per_prompt]
    if strategy == "random":
        rng.shuffle(chosen)
    else:
        chosen.sort(key=lambda p: (abs(p[2]), p[0], p[1]), reverse=strategy == "extremes")
    return chosen[:limit] if limit else chosen


def pairs_from_round(
    *,
    round_: Round,
    strategy: str,
    model: str = "",
    per_prompt: int = 1,
    limit: int | None = None,
    seed: int = 0,
) -> int:
    """Make pairs from a round's candidates and put them in the annotators' queue (judges
    take them as unlabelled pairs). Uncertain and extremes use the rewards `model` gave the
    candidates (Candidate.scores, filled by a worker first). Each pair records the round,
    how it was chosen and the predicted gap; a held-out prompt's pairs are held out. A pair
    the project has already is not made again. Returns how many were made."""
    if strategy not in STRATEGIES:
        raise ValidationError(f"Choose a strategy from {', '.join(STRATEGIES)}.")
    if strategy in NEEDS_SCORES and not model:
        raise ValidationError(f"The {strategy} strategy needs a model to score the candidates.")
    if per_prompt < 1 or (limit is not None and limit < 1):
        raise ValidationError("--per-prompt and --limit must be at least 1.")
    candidates = {c.pk: c for c in round_.candidates.all()}
    groups: dict[str, list] = {}
    for candidate in candidates.values():
        score = candidate.scores.get(model) if model else None
        if strategy in NEEDS_SCORES and score is None:
            raise ValidationError(f"Candidate {candidate.pk} has no reward from {model}.")
        groups.setdefault(candidate.prompt_key, []).append((candidate.pk, score))
    chosen = choose_pairs(groups, strategy, per_prompt=per_prompt, limit=limit, seed=seed)
    project = round_.project
    rows = []
    for first, second, gap in chosen:
        a, b = candidates[first], candidates[second]
        rows.append(
            Pair(
                project=project, external_id=content_id(a.prompt, a.response, b.response),
                prompt=a.prompt, response_a=a.response, response_b=b.response,
                source=f"round {round_.name}", round=round_, held_out=a.held_out,
                selection=strategy, predicted_gap=gap,
                metadata={"round": round_.name, "strategy": strategy, "model": model},
            )
        )  # fmt: skip
    with transaction.atomic():
        have = set(
            Pair.objects.filter(
                project=project, external_id__in=[p.external_id for p in rows]
            ).values_list("external_id", flat=True)
        )
        new = [pair for pair in rows if pair.external_id not in have]
        for pair in new:
            pair.measure()
        Pair.objects.bulk_create(new, batch_size=5000)
        if new:
            transaction.on_commit(search_index_soon)
    return len(new)
