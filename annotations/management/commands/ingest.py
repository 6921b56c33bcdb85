"""`python manage.py ingest PATH…`: ingest files and folders (SAFE folders and zips, GeoTIFF, PNG,
TenGeoP-SARwv and ImageFolder trees with their labels) as one Job, printing what it made."""

from __future__ import annotations

import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotations.tasks import ingest_job
from jobs.cli import run_here
from jobs.models import Job


class Command(BaseCommand):
    help = "Ingest imagettes from files or folders (recursively); bad files are reported and skipped."

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", type=Path)
        parser.add_argument("--quiet-errors", action="store_true", help="Only count refused files.")

    def handle(self, *args, paths, quiet_errors=False, **options):
        missing = [str(p) for p in paths if not p.exists()]
        if missing:
            raise CommandError(f"no such file or folder: {', '.join(missing)}")
        job = run_here(self, kind="ingest", params={"paths": [str(p.resolve()) for p in paths]},
                       reason="command line: manage.py ingest", work=ingest_job, forced_lines=True)
        result = job.result
        if job.state != Job.State.SUCCEEDED:
            if not quiet_errors:  # every file refused: say why for each, as for a partly refused batch
                for line in job.log.splitlines():
                    if line[9:].startswith("refused "):
                        self.stderr.write(line[9:])
            raise CommandError(f"ingest failed: {job.error.splitlines()[0] if job.error else job.message}")
        self.stdout.write("")
        if not quiet_errors:
            for error in result.get("errors", []):
                self.stderr.write(f"refused {error['path']}: {error['reason']}")
        self.stdout.write(self.style.SUCCESS(f"job {job.pk}: {result['message']}"))
        if result.get("errors"):
            sys.exit(1)
