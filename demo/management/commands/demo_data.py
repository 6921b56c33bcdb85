"""`python manage.py demo_data OUT --imagettes N --seed S`: synthetic data in the real formats."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = ("Write synthetic Sentinel-1 WV imagettes (SAFE folders and zips, GeoTIFF, PNG, or the TenGeoP-SARwv "
            "tree) with a ground_truth.csv sidecar that the platform never reads while people label.")

    def add_arguments(self, parser):
        parser.add_argument("out", type=Path)
        parser.add_argument("--imagettes", type=int, default=100)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--layout", choices=["mixed", "tengeop"], default="mixed")
        parser.add_argument("--size", type=int, default=256, help="imagette side in pixels (multiple of 4)")

    def handle(self, *args, out: Path, imagettes: int, seed: int, layout: str, size: int, **options):
        from demo.synthetic import write_demo_imagettes

        if imagettes < 1:
            raise CommandError("--imagettes must be at least 1")
        if out.exists() and any(out.iterdir()):
            raise CommandError(f"{out} exists and is not empty; choose a new folder")
        try:
            truth = write_demo_imagettes(out, imagettes, seed=seed, layout=layout, size=size)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS(f"wrote {imagettes} imagettes ({layout}) to {out}; truth: {truth}"))
