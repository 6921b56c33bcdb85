"""`python manage.py import_ice_chart PATH [--layer NAME]`: an ice chart (GeoPackage, shapefile or its zip,
GeoJSON; SIGRID-3 attributes; any CRS) onto the scenes it overlaps, as polygons of source "ice chart"."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotations.readers.base import IngestError
from annotations.services.ice_charts import ice_chart_import


class Command(BaseCommand):
    help = "Import an ice chart's polygons (SIC, stage of development) onto the scenes they overlap."

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path)
        parser.add_argument("--layer", help="the layer to read, when the file holds several")

    def handle(self, *args, path: Path, layer: str | None = None, **options):
        if not path.exists():
            raise CommandError(f"no such file: {path}")
        try:
            result = ice_chart_import(path.resolve(), layer=layer)
        except IngestError as exc:
            raise CommandError(f"{path.name} refused: {exc.reason}") from None
        for note in result.notes:
            self.stdout.write(f"note: {note}")
        self.stdout.write(self.style.SUCCESS(result.summary()))
