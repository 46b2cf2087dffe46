"""Best-of-N ranked two ways, side by side: by reward and by length-adjusted reward (reward −
the model's reward per token × response tokens), and in plain words why they differ, so
that a short answer put first, or a long one put last, is never left unexplained."""

import math

MOVERS_EXPLAINED = 5  # lines, the best placed first: the table shows every place
LEADS_NAMED = 3  # responses named as passed in one line


def letter(index: int) -> str:
    """A, B, … Z, AA, AB, …: the name a response goes by on the page."""
    name = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        name = chr(ord("A") + rest) + name
    return name


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def figure(x: float, digits: int = 3) -> str:
    """`x` to `digits` significant figures, never in exponent notation: 0.0021, 0.38, 12.4."""
    if x == 0 or not math.isfinite(x):
        return f"{x:g}"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(x))))
    text = f"{x:.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def trend_words(reward_per_token: float) -> str:
    if reward_per_token == 0:
        return "this model's reward does not change with length"
    way = "rises" if reward_per_token > 0 else "falls"
    return f"this model's reward {way} {figure(abs(reward_per_token), 2)} per token"


def _formula(reward_per_token: float) -> str:
    sign = "−" if reward_per_token >= 0 else "+"
    return f"reward {sign} {figure(abs(reward_per_token), 2)} × tokens"


def compare(candidates: list[str], answer: dict) -> dict:
    """The responses in the order given, each with its reward, tokens, reward ÷ tokens, rank
    by reward, length-adjusted reward and rank, from the score service's answer with
    rank="length"; and the lines that explain where the two rankings differ."""
    rewards, tokens = answer["rewards"], answer["tokens"]
    slope = answer["reward_per_token"]
    by_reward = sorted(range(len(candidates)), key=lambda i: (-rewards[i], i))
    rank = {index: place for place, index in enumerate(by_reward, start=1)}
    adjusted = {entry["index"]: entry["score"] for entry in answer["ranked"]}
    adjusted_rank = {entry["index"]: place for place, entry in enumerate(answer["ranked"], 1)}
    rows = [
        {
            "index": i, "letter": letter(i), "response": text, "reward": rewards[i],
            "tokens": tokens[i], "ratio": rewards[i] / tokens[i] if tokens[i] else None,
            "rank": rank[i], "adjusted": adjusted[i], "adjusted_rank": adjusted_rank[i],
            "first": adjusted_rank[i] == 1, "first_by_reward": rank[i] == 1,
        }
        for i, text in enumerate(candidates)
    ]  # fmt: skip
    agree = all(row["rank"] == row["adjusted_rank"] for row in rows)
    return {
        "rows": rows,
        "reward_per_token": slope,
        "trend": trend_words(slope) if slope is not None else None,
        "formula": _formula(slope) if slope is not None else None,
        "agree": agree,
        "explanation": explanation(rows, slope),
    }


def explanation(rows: list[dict], reward_per_token: float | None) -> list[str]:
    """Plain-words lines on why the length-adjusted ranking differs from the ranking by
    reward: for each response that moves up, whose lead over it came from length."""
    if not reward_per_token:
        return [
            "This model's training did not record its length trend, so its length-adjusted "
            "ranking is its ranking by reward."
            if reward_per_token is None
            else "This model's reward does not change with length, so both rankings agree."
        ]
    trend = trend_words(reward_per_token)
    movers = sorted((r for r in rows if r["adjusted_rank"] < r["rank"]),
                    key=lambda r: r["adjusted_rank"])  # fmt: skip
    if not movers:
        return [f"Both rankings agree: adjusted for length ({trend}), no response changes place."]
    lines = []
    for mover in movers[:MOVERS_EXPLAINED]:
        if mover["adjusted_rank"] == 1:
            head = f"{mover['letter']} ranks first ({ordinal(mover['rank'])} by reward)"
        else:
            head = (
                f"{mover['letter']} moves up to {ordinal(mover['adjusted_rank'])} "
                f"({ordinal(mover['rank'])} by reward)"
            )
        if not lines:
            head = f"Adjusted for length ({trend}), {head}"
        passed = sorted((r for r in rows if r["rank"] < mover["rank"]
                         and r["adjusted_rank"] > mover["adjusted_rank"]),
                        key=lambda r: r["rank"])  # fmt: skip
        leads = "; ".join(_lead(ahead, mover, reward_per_token) for ahead in passed[:LEADS_NAMED])
        if len(passed) > LEADS_NAMED:
            leads += f"; and {len(passed) - LEADS_NAMED} more it passes the same way"
        lines.append(f"{head}: {leads}.")
    if len(movers) > MOVERS_EXPLAINED:
        rest = len(movers) - MOVERS_EXPLAINED
        lines.append(f"{rest} more response{'s' if rest > 1 else ''} move{'' if rest > 1 else 's'} "
                     "up the same way: see the table.")  # fmt: skip
    return lines


def _lead(ahead: dict, behind: dict, reward_per_token: float) -> str:
    """Why `ahead`, first by reward, falls behind `behind` once length is taken off: its lead
    in reward is smaller than what its extra (or, where reward falls with length, fewer)
    tokens are worth to the model."""
    gap = ahead["reward"] - behind["reward"]
    extra = ahead["tokens"] - behind["tokens"]
    rate = figure(abs(reward_per_token), 2)
    worth = f"worth {figure(abs(reward_per_token * extra))} at {rate} per token"
    if gap <= 0:  # level on reward, ahead only by the order given
        length = f"{extra:,} more tokens" if extra > 0 else f"{-extra:,} fewer tokens"
        return f"{ahead['letter']} ties with {behind['letter']} on reward with {length} ({worth})"
    length = f"its {extra:,} more tokens" if extra > 0 else f"being {-extra:,} tokens shorter"
    return f"{ahead['letter']}'s lead of {figure(gap)} in reward comes from {length} ({worth})"
