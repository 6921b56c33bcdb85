from django.conf import settings
from django.db import models

from annotations.kinds import ItemKind


class Export(models.Model):
    """A curated snapshot written out in one format: numbered, made by a job. Its files are a folder (`path`,
    relative to MEDIA_ROOT when it lies there, else absolute); the download zips that folder on the fly. `card`
    is the dataset card the folder carries. The only change a row ever sees is its pruning: beyond the latest
    CRYOLABEL_EXPORTS_KEEP exports of a format under MEDIA_ROOT/exports, the oldest lose their files and keep
    their row, with when and why (the download then answers 410 with that reason)."""

    class Format(models.TextChoices):
        # Each kind has its own (the kinds registry's "export_writers"): imagettes imagefolder, csv, stac; scenes
        # chips, geojson, stac; tracks netcdf, csv.
        IMAGEFOLDER = "imagefolder", "ImageFolder (class folders per split)"
        CSV = "csv", "CSV (imagettes: manifest + GeoTIFFs; tracks: a table per track + waveforms)"
        STAC = "stac", "STAC Collection (label extension)"
        CHIPS = "chips", "GeoTIFF chips with SIC and class rasters"
        GEOJSON = "geojson", "GeoJSON polygons per scene"
        NETCDF = "netcdf", "CF NetCDF per track"

    number = models.PositiveIntegerField(unique=True)
    kind = models.CharField(max_length=20, choices=ItemKind.choices, help_text="Its snapshot's kind.")
    snapshot = models.ForeignKey("training.Snapshot", on_delete=models.PROTECT, related_name="exports")
    format = models.CharField(max_length=12, choices=Format.choices)
    path = models.CharField(max_length=1000, help_text="The export's folder: under MEDIA_ROOT (relative) or absolute.")
    items = models.PositiveIntegerField(default=0)
    files = models.PositiveIntegerField(default=0)
    size_bytes = models.BigIntegerField(default=0)
    counts = models.JSONField(default=dict, help_text="Items per class and split, as in the dataset card.")
    card = models.JSONField(default=dict, help_text="The dataset card (dataset_card.json of the folder).")
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    pruned_at = models.DateTimeField(null=True, blank=True, help_text="When its files were removed (quota).")
    pruned_reason = models.CharField(max_length=300, blank=True, default="", help_text="Why its files were removed.")

    class Meta:
        ordering = ["-number"]
        constraints = [models.CheckConstraint(condition=models.Q(kind__in=ItemKind.values), name="export_kind_known")]

    def __str__(self) -> str:
        return f"export #{self.number} ({self.format}, snapshot #{self.snapshot_id})"

    def save(self, *args, **kwargs) -> None:
        # It belongs to its snapshot's kind (the database checks it: training/migrations/0004_item_kinds).
        if not self.kind and self.snapshot_id is not None:
            self.kind = self.snapshot.kind
        super().save(*args, **kwargs)
