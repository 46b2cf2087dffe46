"""The agreement dashboard page with 100,000 labels (PostgreSQL).

Target (agreement issue): under 500 ms. 33,334 pairs with three labels each from 20
annotators (about 100,000 labels), strengths, shown order and durations, filled in SQL;
consensus computed once through the same service the app uses. Then the page is requested
through Django's full stack as a lead: cold (cache emptied before each request, so every
figure is recomputed from the database) and warm (figures cached until a label changes).

    .venv/bin/python benchmarks/dashboard.py [--pairs 33334]
"""

import argparse
import statistics
import time

from _setup import django_on_scratch_database

TARGET_MS = 500.0


def fill(project_id: int, n_pairs: int, annotator_ids: list[int]) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO annotation_pair
                (project_id, external_id, prompt, response_a, response_b, source, metadata,
                 length_a, length_b, gold_choice, slots_taken, created_at)
            SELECT %s, 'p' || g, to_jsonb('Prompt ' || g), repeat('a', 20 + g %% 300),
                   repeat('b', 20 + (g * 7) %% 300), 'bench', '{}'::jsonb,
                   20 + g %% 300, 20 + (g * 7) %% 300,
                   CASE WHEN g %% 100 = 0 THEN 'a' ELSE '' END, 3, now()
            FROM generate_series(1, %s) AS g
            """,
            [project_id, n_pairs],
        )
        cursor.execute(
            """
            INSERT INTO annotation_label
                (pair_id, annotator_id, source, choice, strength, rationale, duration_ms,
                 shown_left, created_at, updated_at)
            SELECT p.id, (%s::bigint[])[1 + (p.id * 7 + k * 5) %% array_length(%s::bigint[], 1)],
                   '',
                   CASE WHEN random() < 0.7 THEN 'a' WHEN random() < 0.8 THEN 'b' ELSE 'tie' END,
                   NULL, '', (2000 + random() * 20000)::int,
                   CASE WHEN random() < 0.5 THEN 'a' ELSE 'b' END,
                   now() - (random() * interval '30 days'), now()
            FROM annotation_pair p CROSS JOIN generate_series(0, 2) AS k
            WHERE p.project_id = %s
            """,
            [annotator_ids, annotator_ids, project_id],
        )
        cursor.execute(
            "UPDATE annotation_label SET strength = (random() * 3)::int WHERE choice <> 'tie'"
        )
        cursor.execute("ANALYZE")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=33_334)
    args = parser.parse_args()
    django_on_scratch_database()

    from django.core.cache import cache
    from django.test import Client

    from annotation.agreement.services import consensus_refresh
    from annotation.models import Label, Membership, Pair, Project
    from tests.factories import UserFactory

    project = Project.objects.create(name="bench")
    people = [UserFactory(username=f"a{i:02d}") for i in range(20)]
    lead = UserFactory(username="lead")
    Membership.objects.create(project=project, user=lead, role="lead")
    fill(project.pk, args.pairs, [p.pk for p in people])
    started = time.perf_counter()
    consensus_refresh(pair_ids=list(Pair.objects.values_list("id", flat=True)))
    refresh_s = time.perf_counter() - started
    n_labels = Label.objects.count()
    print(f"{n_labels:,} labels on {args.pairs:,} pairs; consensus for all in {refresh_s:.1f} s")

    client = Client(HTTP_HOST="localhost")
    client.force_login(lead)
    url = f"/projects/{project.pk}/dashboard/"
    timings = {"cold": [], "warm": []}
    for _ in range(5):
        cache.clear()
        for kind in ("cold", "warm"):
            t0 = time.perf_counter()
            response = client.get(url)
            timings[kind].append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 200
    for kind, values in timings.items():
        median = statistics.median(values)
        print(
            f"dashboard {kind}: median {median:.0f} ms, max {max(values):.0f} ms over "
            f"{len(values)}; target {TARGET_MS:.0f} ms -> {TARGET_MS / max(values):.1f}x under"
        )


if __name__ == "__main__":
    main()
