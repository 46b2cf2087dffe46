import io
import json

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from annotation.demo import DEMO_PAIRS, DEMO_PROJECT, DEMO_USERS
from annotation.models import Membership, Project
from annotation.services import pairs_import


class Command(BaseCommand):
    help = "Create demo users and a demo project with pairs, only when the database is empty."

    def add_arguments(self, parser):
        parser.add_argument("--url", default="http://127.0.0.1:8000/", help="URL to print")

    def handle(self, *args, **options):
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
        self.stdout.write(self.style.SUCCESS(f"Demo ready at {options['url']}"))
        for username, password, role in DEMO_USERS:
            self.stdout.write(f"  {role:<10} {username} / {password}")
