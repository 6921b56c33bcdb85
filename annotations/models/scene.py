"""Sentinel-1 Extra Wide (and IW) GRD scenes, and what people label on them: polygons of ice (with its sea-ice
concentration and stage of development), leads and open water, drawn by people or imported from ice charts.

A scene's pixels live in one Cloud-Optimised GeoTIFF on a polar stereographic grid (EPSG:3413 north, EPSG:3976
south): bands sigma0 HH and HV in dB and the incidence angle, with overviews, so that a map tile reads only the
windows it needs. Polygons are stored as GeoJSON in the scene's CRS (what rasterisation and the network use) and in
lon/lat (what the map and the exports use), with their bounding box for indexed look-ups; every change is kept as a
revision with its author and time.
"""

from django.conf import settings
from django.db import models


class Scene(models.Model):
    key = models.CharField(max_length=200, unique=True, help_text="The product name (S1A_EW_GRDM_1SDH_...).")
    source_path = models.CharField(max_length=1000)
    source_format = models.CharField(max_length=20, help_text="safe or safe_zip")
    mission = models.CharField(max_length=4, help_text="S1A, S1B, S1C")
    mode = models.CharField(max_length=4, help_text="EW or IW")
    product_type = models.CharField(max_length=8, default="GRD")
    polarisations = models.CharField(max_length=20, help_text="Space-separated, e.g. 'HH HV'.")
    acquisition_start = models.DateTimeField(db_index=True)
    acquisition_stop = models.DateTimeField()
    footprint = models.JSONField(help_text="GeoJSON polygon in lon/lat.")
    min_lat = models.FloatField()
    max_lat = models.FloatField()
    min_lon = models.FloatField()
    max_lon = models.FloatField()
    crs = models.CharField(max_length=20, help_text="The COG's grid: EPSG:3413 (Arctic) or EPSG:3976 (Antarctic).")
    bounds = models.JSONField(help_text="[xmin, ymin, xmax, ymax] of the COG in its CRS, metres.")
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    pixel_size = models.FloatField(help_text="Metres per pixel of the COG.")
    bands = models.JSONField(help_text='The COG\'s bands in order, e.g. ["HH", "HV", "incidence"].')
    calibrated = models.BooleanField(help_text="sigma0 in dB from the calibration annotation (else DN in dB).")
    cog = models.CharField(max_length=300, help_text="Path under MEDIA_ROOT of the Cloud-Optimised GeoTIFF.")
    size_bytes = models.BigIntegerField(default=0)
    ingest_job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["min_lat", "max_lat", "min_lon", "max_lon"], name="scene_bbox")]

    def __str__(self) -> str:
        return self.key


class IceChart(models.Model):
    """An ice chart imported onto the scenes it overlaps (its polygons become ScenePolygons of source ice_chart)."""

    name = models.CharField(max_length=200)
    source_path = models.CharField(max_length=1000)
    layer = models.CharField(max_length=200, blank=True, default="")
    crs_wkt = models.TextField(help_text="The chart's own CRS, as it came.")
    valid_from = models.DateTimeField(null=True, blank=True)
    n_polygons = models.PositiveIntegerField(default=0, help_text="Polygons in the chart.")
    n_stored = models.PositiveIntegerField(default=0, help_text="Polygons stored on scenes (after clipping).")
    notes = models.JSONField(default=list)
    imported_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class ScenePolygon(models.Model):
    class Label(models.TextChoices):
        ICE = "ice", "sea ice"
        LEAD = "lead", "lead"
        WATER = "water", "open water"

    class Source(models.TextChoices):
        PERSON = "person", "drawn by a person"
        ICE_CHART = "ice_chart", "ice chart"
        PREDICTION = "prediction", "accepted prediction"

    scene = models.ForeignKey(Scene, on_delete=models.CASCADE, related_name="polygons")
    label = models.CharField(max_length=8, choices=Label.choices)
    sic = models.FloatField(null=True, blank=True, help_text="Sea-ice concentration, % (0-100).")
    stage = models.CharField(max_length=40, blank=True, default="", help_text="Stage of development.")
    geometry = models.JSONField(help_text="GeoJSON (Multi)Polygon in the scene's CRS, metres.")
    geometry_lonlat = models.JSONField(help_text="The same in lon/lat.")
    min_x = models.FloatField()
    min_y = models.FloatField()
    max_x = models.FloatField()
    max_y = models.FloatField()
    area_m2 = models.FloatField()
    source = models.CharField(max_length=12, choices=Source.choices)
    chart = models.ForeignKey(IceChart, null=True, blank=True, on_delete=models.CASCADE, related_name="polygons")
    attributes = models.JSONField(default=dict, blank=True, help_text="e.g. the chart's SIGRID-3 codes.")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                               related_name="+")
    version = models.PositiveIntegerField(default=1, help_text="Bumped by each edit; an edit names the one it saw.")
    deleted_at = models.DateTimeField(null=True, blank=True, help_text="Deleted polygons keep their history.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(sic__isnull=True) | models.Q(sic__gte=0, sic__lte=100),
                                   name="scene_polygon_sic_0_100"),
            models.CheckConstraint(condition=models.Q(label__in=["ice", "lead", "water"]),
                                   name="scene_polygon_label_known"),
        ]
        indexes = [models.Index(fields=["scene", "deleted_at"], name="scene_polygon_live")]

    def __str__(self) -> str:
        sic = "" if self.sic is None else f" {self.sic:g} %"
        return f"{self.label}{sic} on {self.scene_id} (v{self.version})"


class ScenePolygonRevision(models.Model):
    """Every state a polygon had: who made it, when, and what it was."""

    class Action(models.TextChoices):
        CREATED = "created"
        EDITED = "edited"
        DELETED = "deleted"

    polygon = models.ForeignKey(ScenePolygon, on_delete=models.CASCADE, related_name="revisions")
    version = models.PositiveIntegerField()
    action = models.CharField(max_length=8, choices=Action.choices)
    label = models.CharField(max_length=8)
    sic = models.FloatField(null=True, blank=True)
    stage = models.CharField(max_length=40, blank=True, default="")
    geometry = models.JSONField()
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                               related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["polygon", "version"], name="scene_polygon_revision_once")]

    def __str__(self) -> str:
        return f"{self.polygon_id} v{self.version} {self.action}"
