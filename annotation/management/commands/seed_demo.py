import io
import json
import random

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from annotation.agreement.maths import CHOICE_CODES
from annotation.labelling.services import assignment_next, label_submit
from annotation.models import Membership, Project
from annotation.pairs.imports import pairs_import
from annotation.projects.demo import (
    DEMO_ANSWERS,
    DEMO_COLLEAGUES,
    DEMO_PAIRS,
    DEMO_PROJECT,
    DEMO_USERS,
)


class Command(BaseCommand):
    help = (
        "Create demo users, with known passwords, and a demo project with pairs: only with "
        "--yes-demo (make run passes it), and only on a database with no users or projects."
    )

    def add_arguments(self, parser):
        parser.add_argument("--url", default="http://127.0.0.1:8000/", help="URL to print")
        parser.add_argument(
            "--yes-demo", action="store_true",
            help="Yes, create logins such as admin/admin-demo (never on a real deployment)",
        )  # fmt: skip

    def handle(self, *args, **options):
        if not options["yes_demo"]:
            raise CommandError(
                "seed_demo creates logins with published passwords (admin/admin-demo, ...); "
                "pass --yes-demo to create them on this (empty) database."
            )
        User = get_user_model()
        if User.objects.exists() or Project.objects.exists():
            self.stdout.write("Database has data already; no demo data created.")
            return
        with transaction.atomic():
            project = Project.objects.create(**DEMO_PROJECT)
            for username, password, role in DEMO_USERS:
                if role == "admin":
                    User.objects.create_superuser(username, password=password)
                else:
                    user = User.objects.create_user(username, password=password)
                    Membership.objects.create(project=project, user=user, role=role)
            rows = "\n".join(json.dumps(row) for row in DEMO_PAIRS).encode()
            pairs_import(project=project, stream=io.BytesIO(rows), filename="demo.jsonl")
            self._colleagues_label(project, User)
        self.stdout.write(self.style.SUCCESS(f"Demo ready at {options['url']}"))
        for username, password, role in DEMO_USERS:
            self.stdout.write(f"  {role:<10} {username} / {password}")
        self.stdout.write("ben and cleo have labelled the pairs already: log in as lead to see")
        self.stdout.write("their agreement, as annotator to add the third label to each pair.")

    def _colleagues_label(self, project, User):
        """Label every demo pair through the real queue, agreeing with the expected answer at
        each colleague's own rate."""
        rng = random.Random(7)
        for username, password, accuracy in DEMO_COLLEAGUES:
            user = User.objects.create_user(username, password=password)
            Membership.objects.create(project=project, user=user)
            while (assignment := assignment_next(project=project, annotator=user)) is not None:
                side, strength = DEMO_ANSWERS[assignment.pair.external_id]
                if rng.random() > accuracy:
                    side = rng.choice([s for s in CHOICE_CODES if s != side])
                screen = (
                    "tie" if side == "tie" else ("left" if side == assignment.left else "right")
                )
                label_submit(
                    assignment_id=assignment.pk,
                    annotator=user,
                    screen_choice=screen,
                    strength=None if side == "tie" else max(0, strength - rng.randint(0, 1)),
                    duration_ms=rng.randint(4000, 30000),
                )
