"""Altimetry tracks (a SARAL/AltiKa pass at 40 Hz, a CryoSat-2 SIRAL L1B file at 20 Hz) and what each waveform of
them is labelled: lead, not lead or unknown.

A track's waveforms are not rows: a pass holds 10 000+ of them. They live in one folder of NumPy arrays under
MEDIA_ROOT (annotations.track_arrays: time, lon/lat of the nadir, the waveforms, the classic features), which the
network, the collocation and the waveform viewer read as memory maps. The row keeps what is searched on (time span,
bounding box, mission) and the ground track as a GeoJSON line for the map.

Labels come from two places, told apart by their source:

- the collocation (annotations.services.collocation): each waveform's distance from its nadir to the closest lead of
  a scene seen within a few hours, and the label that follows; one TrackCollocation per track, replaced when it runs
  again, its arrays beside the track's;
- people (and accepted predictions): TrackLabelRange rows, each a range of waveforms [start, stop) marked with one
  label. Ranges are never edited: a later range wins over an earlier one where they overlap, and an undo deletes
  (soft) the range it made. A waveform's label is that of the latest live range covering it, else the collocation's.
"""

from django.conf import settings
from django.db import models


class Track(models.Model):
    key = models.CharField(max_length=200, unique=True, help_text="The product's name (its file name's stem).")
    source_path = models.CharField(max_length=1000)
    source_format = models.CharField(max_length=20, help_text="saral_sgdr or cs2_l1b")
    mission = models.CharField(max_length=20, help_text="SARAL, CryoSat-2")
    instrument = models.CharField(max_length=20, help_text="AltiKa, SIRAL")
    mode = models.CharField(max_length=8, blank=True, default="", help_text="LRM, SAR, SARIn; empty for AltiKa")
    band = models.CharField(max_length=4, help_text="Ka or Ku")
    rate_hz = models.FloatField(help_text="Waveforms per second: 40 (AltiKa), 20 (SIRAL).")
    gates = models.PositiveSmallIntegerField(help_text="Range gates per waveform: 128 (AltiKa, LRM), 256 (SAR).")
    cycle = models.PositiveIntegerField(null=True, blank=True)
    pass_number = models.PositiveIntegerField(null=True, blank=True, help_text="Pass (SARAL) or relative orbit.")
    time_start = models.DateTimeField(db_index=True)
    time_stop = models.DateTimeField()
    n_waveforms = models.PositiveIntegerField()
    geometry = models.JSONField(help_text="The ground track, a GeoJSON LineString in lon/lat (decimated for the map).")
    min_lat = models.FloatField()
    max_lat = models.FloatField()
    min_lon = models.FloatField()
    max_lon = models.FloatField()
    data = models.CharField(max_length=300, help_text="Its arrays: a folder under MEDIA_ROOT.")
    size_bytes = models.BigIntegerField(default=0)
    attributes = models.JSONField(default=dict, blank=True, help_text="A few of the file's own attributes.")
    ingest_job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["min_lat", "max_lat", "min_lon", "max_lon"], name="track_bbox")]

    def __str__(self) -> str:
        return self.key


class TrackLabel(models.TextChoices):
    """A waveform's label; the arrays store them as int8: lead 1, not lead 0, unknown -1."""

    LEAD = "lead", "lead"
    NOT_LEAD = "not_lead", "not lead"
    UNKNOWN = "unknown", "unknown"


LABEL_CODES = {TrackLabel.LEAD: 1, TrackLabel.NOT_LEAD: 0, TrackLabel.UNKNOWN: -1}


class TrackCollocation(models.Model):
    """The automatic labels of a track: the scenes it crosses within the time window, and per waveform (arrays in
    the track's folder, `auto_*.npy`) the distance to the closest lead, the label, and which scene gave it."""

    track = models.OneToOneField(Track, on_delete=models.CASCADE, related_name="collocation")
    scenes = models.JSONField(default=list, help_text='[{"scene": id, "key": ..., "lag_s": track minus scene}]')
    window_s = models.FloatField(help_text="Scenes within this many seconds of the track were used.")
    threshold_m = models.FloatField(help_text="A waveform whose nadir lies closer than this to a lead is a lead.")
    counts = models.JSONField(default=dict, help_text="Waveforms per label.")
    version = models.PositiveIntegerField(default=1, help_text="Bumped each time it runs again.")
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"collocation of track {self.track_id} (v{self.version})"


class TrackLabelRange(models.Model):
    """Waveforms [start, stop) of a track marked with one label by a person (or accepted from a prediction)."""

    class Source(models.TextChoices):
        PERSON = "person", "marked by a person"
        PREDICTION = "prediction", "accepted prediction"

    track = models.ForeignKey(Track, on_delete=models.CASCADE, related_name="label_ranges")
    start = models.PositiveIntegerField()
    stop = models.PositiveIntegerField(help_text="Exclusive.")
    label = models.CharField(max_length=8, choices=TrackLabel.choices)
    source = models.CharField(max_length=12, choices=Source.choices, default=Source.PERSON)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                               related_name="+")
    note = models.JSONField(default=dict, blank=True, help_text="e.g. the model version a prediction came from.")
    deleted_at = models.DateTimeField(null=True, blank=True, help_text="Undone; kept for the history.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(stop__gt=models.F("start")), name="track_range_not_empty"),
            models.CheckConstraint(condition=models.Q(label__in=["lead", "not_lead", "unknown"]),
                                   name="track_range_label_known"),
        ]
        indexes = [models.Index(fields=["track", "deleted_at"], name="track_range_live")]

    def __str__(self) -> str:
        return f"{self.label} [{self.start}, {self.stop}) on track {self.track_id}"
