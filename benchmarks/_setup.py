"""Shared set-up for benchmarks: a scratch PostgreSQL database, migrated, with Django ready."""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/prefhub_bench"


def django_on_scratch_database(*, keep: bool = False) -> str:
    """Point Django at BENCH_DATABASE_URL (a PostgreSQL database that is emptied, unless
    `keep` asks to measure again what an earlier run filled), migrate."""
    import psycopg

    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
    base, name = url.rsplit("/", 1)
    if not keep:
        with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    sys.path.insert(0, str(ROOT))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    return url
