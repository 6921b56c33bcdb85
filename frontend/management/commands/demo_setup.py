"""Everything `make demo` needs in the database: the role users (and, as the product grows, its
demo data). Idempotent: running it again changes nothing."""

from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Prepare the demo: users of each role (idempotent)."

    def handle(self, *args, **options):
        call_command("create_demo_users", stdout=self.stdout)
