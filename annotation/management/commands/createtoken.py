from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from annotation.accounts.tokens import create_token
from annotation.management.commands._common import validation_message


class Command(BaseCommand):
    help = (
        "Make an API token for USER (a user name) and print it; its last line ends with the "
        "token, which is shown only now. It expires after API_TOKEN_DAYS days, or --days; "
        "--no-expiry (or more days than API_TOKEN_DAYS) only for a USER who is an admin. Send "
        "it as `Authorization: Token <token>`."
    )

    def add_arguments(self, parser):
        parser.add_argument("user", metavar="USER", help="the user name the token is for")
        parser.add_argument("--name", required=True, help="what the token is for, e.g. ci")
        lifetime = parser.add_mutually_exclusive_group()
        lifetime.add_argument(
            "--days", type=int,
            help=f"days it lives (default API_TOKEN_DAYS: {settings.API_TOKEN_DAYS})",
        )  # fmt: skip
        lifetime.add_argument(
            "--no-expiry", action="store_true", help="never expires (admins only)"
        )

    def handle(self, *args, **options):
        username = options["user"]
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(
                f"No user named {username!r}: check the spelling, or make the account first "
                "(`manage.py createsuperuser`, or in the admin)."
            )
        try:
            row, secret = create_token(
                user, options["name"], expires=not options["no_expiry"], days=options["days"],
                via="command",
            )  # fmt: skip
        except ValidationError as exc:
            raise CommandError(f"No token made: {validation_message(exc)}") from exc
        expiry = f"expires {row.expiry:%Y-%m-%d}" if row.expiry else "never expires"
        self.stdout.write("Keep the token now: it is not shown again (revoke it on /account/).")
        self.stdout.write(f"Token for {username} ({row.name}, {expiry}): {secret}")
