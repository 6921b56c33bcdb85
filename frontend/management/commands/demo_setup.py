"""Everything `make demo` needs in the database: one user of each role, then the demo data a user
starting from the published dataset would have: 200 imagettes imported with their labels in the
TenGeoP-SARwv layout and 300 more ingested unlabelled for the crowd. Idempotent."""

from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Prepare the demo: users of each role and demo imagettes (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--labelled", type=int, default=200, help="imagettes imported with labels")
        parser.add_argument("--unlabelled", type=int, default=300, help="imagettes for the crowd")

    def handle(self, *args, labelled: int, unlabelled: int, **options):
        from annotations.models import Imagette

        call_command("create_demo_users", stdout=self.stdout)
        if Imagette.objects.exists():
            self.stdout.write(f"Demo data already there: {Imagette.objects.count()} imagettes.")
            return
        demo = Path(settings.VAR_DIR) / "demo"
        sets = (("tengeop", labelled, "tengeop", 101), ("crowd", unlabelled, "mixed", 202))
        for name, count, layout, seed in sets:
            if count <= 0:
                continue
            folder = demo / name
            if not folder.exists():
                call_command("demo_data", str(folder), imagettes=count, layout=layout, seed=seed, stdout=self.stdout)
            call_command("ingest", str(folder), stdout=self.stdout)
        self.stdout.write(self.style.SUCCESS(
            f"Demo data: {Imagette.objects.exclude(label_source='').count()} labelled imagettes (TenGeoP layout), "
            f"{Imagette.objects.filter(label_source='').count()} waiting for the crowd. "
            f"Ground truth (never read by the platform): {demo}/*/ground_truth.csv"
        ))
