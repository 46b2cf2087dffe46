import json
from datetime import date

from django.core.management.base import BaseCommand, CommandError

from annotation.activity import activity_trim
from annotation.activity.selectors import ActivityFilters, entries_where, entry_json
from annotation.management.commands._common import PROJECT_HELP, project_argument
from annotation.models import ActivityEntry


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CommandError(f"{text!r} is not a day: write it as YYYY-MM-DD.") from None


class Command(BaseCommand):
    help = (
        "The activity log, newest first: who did what, when, from which address, to which "
        "object and what changed (secrets read 'changed'). --json prints a JSON list of "
        "entries (id, at, kind, what, person, person_id, address, via, project, project_id, "
        "object, summary, changes). --trim removes entries older than ACTIVITY_RETENTION_DAYS "
        "(or --days) instead."
    )

    def add_arguments(self, parser):
        parser.add_argument("--project", help=PROJECT_HELP)
        parser.add_argument("--user", default="", help="only what this user name did")
        kinds = ActivityEntry.Kind.values
        parser.add_argument(
            "--kind", default="", choices=kinds, metavar="KIND",
            help="only entries of this kind: " + ", ".join(kinds),
        )  # fmt: skip
        parser.add_argument("--since", type=_day, help="from this day on (YYYY-MM-DD)")
        parser.add_argument("--until", type=_day, help="up to and including this day")
        parser.add_argument("--limit", type=int, default=100, help="at most this many (0: all)")
        parser.add_argument("--json", action="store_true", help="print a JSON list")
        parser.add_argument("--trim", action="store_true", help="remove old entries")
        parser.add_argument("--days", type=int, help="with --trim: keep this many days")

    def handle(self, *args, **options):
        if options["trim"]:
            removed = activity_trim(days=options["days"])
            self.stdout.write(f"removed {removed} entr{'y' if removed == 1 else 'ies'}")
            return
        if options["limit"] < 0:
            raise CommandError("--limit is 0 (all) or more.")
        filters = ActivityFilters(
            person=options["user"].strip(),
            project=project_argument(options["project"]) if options["project"] else None,
            kind=options["kind"],
            since=options["since"],
            until=options["until"],
        )
        entries = entries_where(ActivityEntry.objects.all(), filters)
        if options["limit"]:
            entries = entries[: options["limit"]]
        if options["json"]:
            self.stdout.write(json.dumps([entry_json(entry) for entry in entries], indent=2))
            return
        for entry in entries:
            self.stdout.write(_line(entry))


def _line(entry: ActivityEntry) -> str:
    parts = [
        f"{entry.created_at:%Y-%m-%d %H:%M:%S}",
        entry.actor_name or "-",
        entry.get_kind_display(),
        entry.project_name,
        entry.target_repr,
        entry.summary,
    ]
    changes = [
        f"{field}: {'changed' if change == 'changed' else f'{change[0]} -> {change[1]}'}"
        for field, change in entry.changes.items()
    ]
    text = " | ".join(part for part in parts if part)
    text += f" [{'; '.join(changes)}]" if changes else ""
    return text + (f" from {entry.address}" if entry.address else "")
