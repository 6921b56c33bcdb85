"""Create one user of each role (for `make demo`) and print their credentials."""

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand

from accounts.demo_passwords import demo_password_hash
from accounts.roles import Role
from accounts.services import user_create

DEMO_USERS = (
    ("annotator", "annotator-demo", Role.ANNOTATOR),
    ("expert", "expert-demo", Role.EXPERT),
    ("admin", "admin-demo", Role.ADMIN),
)


class Command(BaseCommand):
    help = "Create the demo users annotator, expert and admin (idempotent) and print their credentials."

    def handle(self, *args, **options):
        for username, password, role in DEMO_USERS:
            if not User.objects.filter(username=username).exists():
                user_create(username=username, password=password, role=role,
                            password_hash=demo_password_hash(username, password))
        self.stdout.write("Demo users (username / password / role):")
        for username, password, role in DEMO_USERS:
            self.stdout.write(f"  {username:<10} {password:<15} {role.value}")
