"""Judging throughput: a judging job over N pairs (both orders each) on one worker, against
a local OpenAI-compatible server that answers at once, in a process of its own.

Target (LLM judges issue): at least 50 pairs a second. The anchor, in the same run against
the same server: the bare `openai` client sending the same requests with the same
concurrency and doing nothing else (no prompt rendering, parsing, retries or database
writes): what the server and the client allow at most. The job is timed end to end (the
worker's task, run inline: choosing the pairs, rendering, asking, parsing, writing labels,
counters and consensus).

    .venv/bin/python benchmarks/judging.py [--pairs 2000] [--concurrency 32]
"""

import argparse
import asyncio
import subprocess
import sys
import time

from _setup import ROOT, django_on_scratch_database

SERVER = (
    "import sys, time; sys.path.insert(0, '.'); from tests.llm_servers import LLMServer; "
    "server = LLMServer().__enter__(); print(server.url, flush=True); time.sleep(3600)"
)


def bare_client(url: str, texts: list[str], concurrency: int) -> float:
    """Seconds for the bare client to send every text, `concurrency` at a time."""
    import openai

    async def main() -> None:
        client = openai.AsyncOpenAI(base_url=url, api_key="local", max_retries=0)
        gate = asyncio.Semaphore(concurrency)

        async def one(text: str) -> None:
            async with gate:
                await client.chat.completions.create(
                    model="judge", max_tokens=512, messages=[{"role": "user", "content": text}]
                )

        await asyncio.gather(*(one(text) for text in texts))
        await client.close()

    started = time.perf_counter()
    asyncio.run(main())
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    django_on_scratch_database()

    from annotation.judges.services import judge_requests, judge_save, pair_texts
    from annotation.models import JudgingJob, Label, Pair, Project
    from workers.tasks import judge_pairs

    server = subprocess.Popen(
        [sys.executable, "-c", SERVER], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        url = server.stdout.readline().strip()
        project = Project.objects.create(name="bench", criteria="Correct\nConcise")
        Pair.objects.bulk_create(
            Pair(project=project, external_id=f"p{i}", prompt=f"Question {i}: name a fruit.",
                 response_a=f"GOOD: apple number {i}", response_b=f"a rock, {i}")
            for i in range(args.pairs)
        )  # fmt: skip
        judge = judge_save(
            user=None, name="bench-judge", model="judge", base_url=url, concurrency=args.concurrency
        )
        texts = [
            text for pair in pair_texts(list(Pair.objects.values_list("id", flat=True)))
            for text in judge_requests(project, pair)
        ]  # fmt: skip
        anchor = bare_client(url, texts, args.concurrency)
        job = JudgingJob.objects.create(judge=judge, project=project, total=args.pairs)
        started = time.perf_counter()
        judge_pairs(job.pk)
        ours = time.perf_counter() - started
    finally:
        server.kill()
    job.refresh_from_db()
    assert job.done == args.pairs == Label.objects.filter(source="bench-judge").count(), job
    ours_rate, anchor_rate = args.pairs / ours, args.pairs / anchor
    print(f"{args.pairs} pairs, {2 * args.pairs} requests, concurrency {args.concurrency}")
    print(f"bare openai client (anchor): {anchor_rate:7.1f} pairs/s ({anchor:.1f} s)")
    print(f"judging job, end to end:    {ours_rate:7.1f} pairs/s ({ours:.1f} s)")
    print(f"ratio {ours_rate / anchor_rate:.2f} of the anchor; target at least 50 pairs/s: "
          f"{'met' if ours_rate >= 50 else 'NOT met'}")  # fmt: skip


if __name__ == "__main__":
    main()
