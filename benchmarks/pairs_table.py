"""The pairs table and the review page at a million pairs (PostgreSQL).

Target (issue 14): a page of the pairs table under 100 ms at 1M pairs, with search,
filters, sort and pagination. The project is filled in SQL: prompts and responses drawn
from a 20,000-word vocabulary with a skewed (Zipf-like) spread, so that some words are in
most pairs and some in a handful; 60% of the pairs labelled, with a consensus row each
(difficulty, margin, agreement, 8% contested, a tenth of those decided); 1% gold; a second
source on 5%. Each page is requested through Django's full stack as a lead (median of 7,
after one request to warm the caches). The anchor beside it is what an exact count of the
matches costs, the count the table no longer makes past 10,000.

    .venv/bin/python benchmarks/pairs_table.py [--pairs 1000000] [--keep]

--keep measures again on the database the last run filled (filling takes minutes).
"""

import argparse
import statistics
import time

from _setup import django_on_scratch_database

TARGET_MS = 100.0
VOCABULARY = 20_000


def fill(project_id: int, n_pairs: int, lead_id: int) -> None:
    from django.db import connection

    words = "(SELECT string_agg('w' || floor({v} * power(random(), 3))::int, ' ') FROM generate_series(1, {n}) WHERE g > 0)"  # noqa: E501
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO annotation_pair
                (project_id, external_id, prompt, response_a, response_b, source, metadata,
                 length_a, length_b, gold_choice, slots_taken, held_out, selection, created_at)
            SELECT %s, 'p' || g, to_jsonb({words.format(v=VOCABULARY, n=12)}),
                   {words.format(v=VOCABULARY, n=40)}, {words.format(v=VOCABULARY, n=40)},
                   CASE WHEN g %% 20 = 0 THEN 'vendor' ELSE 'web' END, '{{}}'::jsonb, 0, 0,
                   CASE WHEN g %% 100 = 0 THEN 'a' ELSE '' END, 0, false, '', now()
            FROM generate_series(1, %s) AS g
            """,
            [project_id, n_pairs],
        )
        cursor.execute(
            """
            INSERT INTO annotation_label
                (pair_id, annotator_id, source, choice, strength, rationale, shown_left,
                 created_at, updated_at)
            SELECT id, %s, '', 'a', 2, '', 'a', now(), now()
            FROM annotation_pair WHERE project_id = %s AND id %% 10 < 6
            """,
            [lead_id, project_id],
        )
        cursor.execute(
            """
            INSERT INTO annotation_pairconsensus
                (pair_id, project_id, votes_a, votes_b, votes_tie, winner, contested,
                 adjudicated, agreement, mean_strength, margin, difficulty, updated_at)
            SELECT id, %s, 2, 1, 0, CASE WHEN id %% 25 < 2 THEN '' ELSE 'a' END,
                   id %% 25 < 2, id %% 250 = 0, r, 2.0, r * 2 / 3,
                   CASE WHEN id %% 25 < 2 OR r < 0.6 THEN 'hard'
                        WHEN r > 0.9 THEN 'easy' ELSE 'medium' END, now()
            FROM (SELECT id, random() AS r FROM annotation_pair
                  WHERE project_id = %s AND id %% 10 < 6) AS labelled
            """,
            [project_id, project_id],
        )
        cursor.execute("VACUUM ANALYZE annotation_pair")
        cursor.execute("VACUUM ANALYZE annotation_pairconsensus")
        cursor.execute("VACUUM ANALYZE annotation_label")


def timed(client, url: str, params: dict, repeats: int = 7) -> tuple[float, str]:
    client.get(url, params)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        answer = client.get(url, params)
        times.append((time.perf_counter() - started) * 1000)
        assert answer.status_code == 200, answer.status_code
    return statistics.median(times), answer.content.decode()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=1_000_000)
    parser.add_argument("--keep", action="store_true", help="measure the last run's pairs")
    args = parser.parse_args()
    django_on_scratch_database(keep=args.keep)
    from django.db import connection
    from django.test import Client

    from annotation.models import Membership, Pair, Project
    from annotation.pairs.search import pairs_search_index
    from tests.factories import UserFactory

    project = Project.objects.filter(name="bench").first()
    if project is None or not args.keep:
        project = Project.objects.create(name="bench")
        lead = UserFactory(username="lead")
        Membership.objects.create(project=project, user=lead, role="lead")
        started = time.perf_counter()
        fill(project.pk, args.pairs, lead.pk)
        print(f"{args.pairs:,} pairs filled in {time.perf_counter() - started:.0f} s")
        started, indexed = time.perf_counter(), 0
        while batch := pairs_search_index(limit=20_000):  # a worker's job after an import
            indexed += batch
        seconds = time.perf_counter() - started
        print(f"indexed for search in {seconds:.0f} s ({indexed / seconds:,.0f} pairs/s)")
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE annotation_pair")
    lead = project.memberships.get().user
    print(f"{project.pairs.count():,} pairs")

    client = Client(HTTP_HOST="localhost")
    client.force_login(lead)
    table = f"/projects/{project.pk}/"
    # A word in about one pair in a thousand, and one in most pairs.
    rare, common = f"w{VOCABULARY - 40}", "w1"
    cases = [
        ("first page", {}),
        ("page 40", {"page": 40}),
        ("page 400 (the 10,000th pair)", {"page": 400}),
        ("newest first", {"sort": "-id"}),
        ("search: a rare word", {"q": rare}),
        ("search: a common word", {"q": common}),
        ("search: two words", {"q": f"{common} w2"}),
        ("search: a phrase", {"q": '"w1 w2"'}),
        ("contested", {"contested": "true"}),
        ("hard, not decided", {"difficulty": "hard", "decided": "false"}),
        ("not labelled", {"labelled": "false"}),
        ("source vendor, gold", {"source": "vendor", "gold": "true"}),
        ("margin, lowest first", {"sort": "margin"}),
        ("margin, highest first, page 20", {"sort": "-margin", "page": 20}),
    ]
    worst = 0.0
    print(f"{'case':38} {'page ms':>8}  matches")
    for name, params in cases:
        ms, page = timed(client, table, params)
        worst = max(worst, ms)
        shown = page.split('id="match-count">')[1].split("</p>")[0]
        shown = "1,000+" if "More than" in shown else shown.split(" pair")[0]
        print(f"{name:38} {ms:8.1f}  {'not counted' if 'too long' in shown else shown}")

    first_contested = (
        Pair.objects.filter(project=project, consensus__contested=True).order_by("id").first()
    )
    review = f"/projects/{project.pk}/pairs/{first_contested.pk}/"
    for name, params in (
        ("review page, contested filter", {"contested": "true"}),
        ("review page, margin sort", {"sort": "margin", "labelled": "true"}),
    ):
        ms, _ = timed(client, review, params)
        worst = max(worst, ms)
        print(f"{name:38} {ms:8.1f}")

    counts = []
    for _ in range(3):
        with connection.cursor() as cursor:
            started = time.perf_counter()
            cursor.execute(
                "SELECT count(*) FROM annotation_pair WHERE project_id = %s", [project.pk]
            )
            counts.append((time.perf_counter() - started) * 1000)
    print(f"{'anchor: exact count of all pairs':38} {statistics.median(counts):8.1f}")
    print(f"worst page {worst:.1f} ms; target {TARGET_MS:.0f} ms -> {TARGET_MS / worst:.2f}x")


if __name__ == "__main__":
    main()
