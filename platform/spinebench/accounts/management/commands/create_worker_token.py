"""Create a worker token for a remote worker host (prints the secret once; only its hash is kept)."""

from django.core.management.base import BaseCommand, CommandError

from spinebench.accounts.models import ApiToken
from spinebench.accounts.tokens import MAX_TOKEN_DAYS, TokenRefused, issue_token


class Command(BaseCommand):
    help = "Create a worker token NAME (worker endpoints only); the secret is printed once."

    def add_arguments(self, parser):
        parser.add_argument("name", help="Which worker host the token is for, e.g. gpu-host-1.")
        parser.add_argument(
            "--days", type=int, default=None,
            help=f"Lifetime in days, 1 to {MAX_TOKEN_DAYS} (default SPINEBENCH_TOKEN_TTL_DAYS).",
        )

    def handle(self, *args, name, days, **options):
        try:
            issued = issue_token(name=name, kind=ApiToken.Kind.WORKER, expires_in_days=days)
        except TokenRefused as refusal:
            raise CommandError(str(refusal)) from None
        self.stderr.write(
            f"Worker token {issued.token.name!r} created, expires {issued.token.expires:%Y-%m-%d %H:%M} UTC. "
            "Store the secret now: it is not shown again."
        )
        self.stdout.write(issued.secret)
