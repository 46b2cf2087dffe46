"""Latency of the next-pair request with 1,000,000 pairs in the project (PostgreSQL).

Target (issue: foundation): under 20 ms. The project is filled in SQL: 1,000,000 pairs, of
which the first 200,000 already hold two of their three places, and each measured annotator
has labelled 10,000 of exactly those pairs: the rows the queue looks at first and must step
over. Each timed request goes through Django's full stack (middleware, session auth, DRF,
serializer, sanitised Markdown); the label that follows it is not timed.

With --round-pairs N the newest N pairs are a round's (served before the imported backlog,
by the project's order of precedence), and a second, paused import source holds 100,000
pairs in the middle of the table: the queue serves the round's level while stepping over
neither.

    .venv/bin/python benchmarks/next_pair.py [--pairs 1000000] [--requests 200]
        [--round-pairs 100000]
"""

import argparse
import statistics
import time

from _setup import django_on_scratch_database

TARGET_MS = 20.0


def fill(project_id: int, n_pairs: int, half_done: int, annotator_ids: list[int]) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO annotation_pair
                (project_id, external_id, prompt, response_a, response_b, source, metadata,
                 length_a, length_b, gold_choice, slots_taken, created_at)
            SELECT %s, 'p' || g, to_jsonb('Prompt number ' || g || ': explain something.'),
                   'First **answer** to ' || g, 'Second answer to ' || g || E'\n\n- a list',
                   'bench', '{}'::jsonb, 20, 30, '', CASE WHEN g <= %s THEN 2 ELSE 0 END, now()
            FROM generate_series(1, %s) AS g
            """,
            [project_id, half_done, n_pairs],
        )
        for annotator_id in annotator_ids:
            cursor.execute(
                """
                INSERT INTO annotation_assignment
                    (pair_id, annotator_id, "left", issued_at, expires_at, finished_at, state, kind)
                SELECT id, %s, 'a', now(), now(), now(), 'done', 'regular'
                FROM annotation_pair WHERE project_id = %s
                ORDER BY id LIMIT 10000
                """,
                [annotator_id, project_id],
            )
        cursor.execute("ANALYZE")


def place_round_and_pause(project, n_pairs: int, round_pairs: int) -> None:
    """The newest `round_pairs` pairs become a round's; 100,000 in the middle a paused source."""
    from django.db import connection

    from annotation.models import Round
    from annotation.projects.services import precedence_set

    round_ = Round.objects.create(project=project, name="r1", held_out_share=0.2)
    newest = n_pairs - round_pairs

    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE annotation_pair SET round_id = %s, source = 'round r1' "
            "WHERE project_id = %s AND id > (SELECT min(id) FROM annotation_pair "
            "WHERE project_id = %s) + %s",
            [round_.pk, project.pk, project.pk, newest - 1],
        )
        middle = n_pairs // 2
        cursor.execute(
            "UPDATE annotation_pair SET source = 'paused' WHERE project_id = %s AND id BETWEEN "
            "(SELECT min(id) FROM annotation_pair WHERE project_id = %s) + %s AND "
            "(SELECT min(id) FROM annotation_pair WHERE project_id = %s) + %s",
            [project.pk, project.pk, middle, project.pk, middle + 99_999],
        )
        cursor.execute("ANALYZE annotation_pair")
    precedence_set(
        project=project,
        places=[
            {"kind": "round", "name": "r1"},
            {"kind": "source", "name": "paused", "paused": True},
        ],
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--annotators", type=int, default=5)
    parser.add_argument("--round-pairs", type=int, default=0)
    args = parser.parse_args()
    django_on_scratch_database()

    from django.test import Client

    from annotation.labelling.services import label_submit
    from annotation.models import Membership, Project
    from tests.factories import UserFactory

    project = Project.objects.create(name="bench")
    people = [UserFactory(username=f"a{i}") for i in range(args.annotators)]
    for person in people:
        Membership.objects.create(project=project, user=person)
    started = time.perf_counter()
    fill(project.pk, args.pairs, min(200_000, args.pairs), [p.pk for p in people])
    if args.round_pairs:
        place_round_and_pause(project, args.pairs, args.round_pairs)
    print(f"filled {args.pairs:,} pairs in {time.perf_counter() - started:.0f} s")

    timings_ms = []
    for person in people:
        client = Client(HTTP_HOST="localhost")
        client.force_login(person)
        client.post(f"/api/projects/{project.pk}/next/")  # warm the connection and caches
        for _ in range(args.requests // len(people)):
            t0 = time.perf_counter()
            response = client.post(f"/api/projects/{project.pk}/next/")
            timings_ms.append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 200, response.status_code
            label_submit(
                assignment_id=response.json()["id"],
                annotator=person,
                screen_choice="left",
                strength=1,
            )
    timings_ms.sort()
    p50 = statistics.median(timings_ms)
    p95 = timings_ms[int(0.95 * (len(timings_ms) - 1))]
    print(
        f"next-pair over {len(timings_ms)} requests, {args.pairs:,} pairs"
        f"{f' ({args.round_pairs:,} in a round)' if args.round_pairs else ''}: "
        f"p50 {p50:.1f} ms, p95 {p95:.1f} ms, max {timings_ms[-1]:.1f} ms; "
        f"target {TARGET_MS:.0f} ms -> p95 is {TARGET_MS / p95:.1f}x under target"
    )


if __name__ == "__main__":
    main()
