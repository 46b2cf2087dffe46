"""Import 100,000 pairs from JSONL, as `manage.py import_pairs` does.

Target (issue: foundation): at most 10 s on the 2-core development machine, PostgreSQL.
Runs the import twice: the first writes every row, the second finds them all present.

    .venv/bin/python benchmarks/import_pairs.py [--rows 100000]
"""

import argparse
import json
import random
import tempfile
import time

from _setup import django_on_scratch_database

TARGET_SECONDS = 10.0


def write_rows(path: str, n: int, labelled_share: float = 0.5) -> None:
    """n rows of made-up text; `labelled_share` of them {prompt, chosen, rejected}."""
    rng = random.Random(0)
    words = [
        "the",
        "a",
        "reward",
        "model",
        "pair",
        "prompt",
        "response",
        "better",
        "worse",
        "helpful",
        "harmless",
    ]
    with open(path, "w") as f:
        for i in range(n):
            prompt = " ".join(rng.choices(words, k=rng.randint(10, 60)))
            a = " ".join(rng.choices(words, k=rng.randint(20, 200)))
            b = " ".join(rng.choices(words, k=rng.randint(20, 200)))
            if rng.random() >= labelled_share:
                row = {"id": f"r{i}", "prompt": prompt, "response_a": a, "response_b": b + " x"}
            else:
                row = {"id": f"r{i}", "prompt": prompt, "chosen": a, "rejected": b + " x"}
            f.write(json.dumps(row) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    django_on_scratch_database()
    from annotation.pairs.imports import pairs_import
    from annotation.projects.services import project_ensure

    with tempfile.NamedTemporaryFile(suffix=".jsonl") as tmp:
        write_rows(tmp.name, args.rows)
        project, _ = project_ensure(name="bench")
        for attempt in ("first import", "re-import"):
            started = time.perf_counter()
            with open(tmp.name, "rb") as stream:
                report = pairs_import(project=project, stream=stream, filename="bench.jsonl")
            seconds = time.perf_counter() - started
            print(
                f"{attempt}: {args.rows:,} rows in {seconds:.2f} s "
                f"({args.rows / seconds:,.0f} rows/s; {report.summary}); "
                f"target {TARGET_SECONDS:.0f} s -> {TARGET_SECONDS / seconds:.1f}x under target"
            )


if __name__ == "__main__":
    main()
