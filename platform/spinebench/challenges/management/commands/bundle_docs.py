"""Write docs/bundles.md from the bundle schema (`--check`: exit 1 when the file is out of date)."""

from django.core.management.base import BaseCommand, CommandError

from spinebench.challenges.bundle_docs import DOCS_FILE, render


class Command(BaseCommand):
    help = "Render docs/bundles.md from the challenge.yaml schema."

    def add_arguments(self, parser):
        parser.add_argument("--check", action="store_true", help="only check that docs/bundles.md is up to date")

    def handle(self, *args, check: bool = False, **options):
        text = render()
        if check:
            if not DOCS_FILE.is_file() or DOCS_FILE.read_text(encoding="utf-8") != text:
                raise CommandError(f"{DOCS_FILE} is out of date: run `python manage.py bundle_docs`")
            return
        DOCS_FILE.write_text(text, encoding="utf-8")
        self.stdout.write(f"wrote {DOCS_FILE}")
