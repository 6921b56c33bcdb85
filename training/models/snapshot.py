from django.conf import settings
from django.db import models

from annotations.kinds import ItemKind


class Snapshot(models.Model):
    """The curated set frozen at a moment: numbered, immutable (no service updates it), with its
    split stored. Every training run and export names the snapshot it used."""

    number = models.PositiveIntegerField(unique=True)
    kind = models.CharField(max_length=20, choices=ItemKind.choices)
    seed = models.IntegerField()
    fractions = models.JSONField(help_text="Split fractions, e.g. {'train': 0.75, 'val': 0.2, 'test': 0.05}.")
    agreement_threshold = models.FloatField(help_text="Consensus labels below it were left out.")
    counts = models.JSONField(default=dict, help_text="Items per class and split (the dataset card).")
    size = models.PositiveIntegerField(default=0)
    note = models.CharField(max_length=300, blank=True, default="")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-number"]
        constraints = [
            models.CheckConstraint(condition=models.Q(kind__in=ItemKind.values), name="snapshot_kind_known"),
            # What a model version's and an export's (snapshot, kind) reference: each belongs to the kind of the
            # snapshot it came from (training/migrations/0004_item_kinds adds those references).
            models.UniqueConstraint(fields=["id", "kind"], name="snapshot_id_kind"),
        ]

    def __str__(self) -> str:
        return f"snapshot #{self.number} ({self.size} {self.kind})"


class SnapshotItem(models.Model):
    class Split(models.TextChoices):
        TRAIN = "train"
        VAL = "val"
        TEST = "test"

    snapshot = models.ForeignKey(Snapshot, on_delete=models.CASCADE, related_name="items")
    imagette = models.ForeignKey("annotations.Imagette", on_delete=models.PROTECT, related_name="snapshot_items")
    label_mask = models.PositiveSmallIntegerField()
    label_source = models.CharField(max_length=12)
    agreement = models.FloatField(null=True, blank=True)
    split = models.CharField(max_length=5, choices=Split.choices)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["snapshot", "imagette"], name="snapshot_item_once")]
        indexes = [models.Index(fields=["snapshot", "split"], name="snapshot_split")]

    def __str__(self) -> str:
        return f"#{self.snapshot_id}:{self.imagette_id} {self.split}"


class SnapshotScene(models.Model):
    """A scene of a snapshot of scenes, with its split (a scene is never in two splits)."""

    snapshot = models.ForeignKey(Snapshot, on_delete=models.CASCADE, related_name="scenes")
    scene = models.ForeignKey("annotations.Scene", on_delete=models.PROTECT, related_name="snapshot_scenes")
    split = models.CharField(max_length=5, choices=SnapshotItem.Split.choices)
    polygons = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["snapshot", "scene"], name="snapshot_scene_once")]

    def __str__(self) -> str:
        return f"#{self.snapshot_id}:scene {self.scene_id} {self.split}"


class SnapshotPolygon(models.Model):
    """A polygon as the snapshot froze it: the revision it had then (geometry, class, SIC, stage: immutable rows),
    and where it came from (a person, an ice chart, an accepted prediction), which the loss may weigh apart."""

    snapshot = models.ForeignKey(Snapshot, on_delete=models.CASCADE, related_name="polygons")
    scene = models.ForeignKey("annotations.Scene", on_delete=models.PROTECT, related_name="+")
    revision = models.ForeignKey("annotations.ScenePolygonRevision", on_delete=models.PROTECT, related_name="+")
    source = models.CharField(max_length=12)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["snapshot", "revision"], name="snapshot_polygon_once")]
        indexes = [models.Index(fields=["snapshot", "scene"], name="snapshot_polygon_scene")]

    def __str__(self) -> str:
        return f"#{self.snapshot_id}:revision {self.revision_id}"


class SnapshotTrack(models.Model):
    """A track of a snapshot of tracks, with its split (a track is never in two splits) and its labels frozen: the
    effective label of every waveform, where it came from and the collocation's distance to the closest lead, in a
    .npz under MEDIA_ROOT written once (training.services.track_snapshots). `digest` fingerprints what was frozen,
    so that an unchanged set of labels is recognised without a row per waveform."""

    snapshot = models.ForeignKey(Snapshot, on_delete=models.CASCADE, related_name="tracks")
    track = models.ForeignKey("annotations.Track", on_delete=models.PROTECT, related_name="snapshot_tracks")
    split = models.CharField(max_length=5, choices=SnapshotItem.Split.choices)
    waveforms = models.PositiveIntegerField(default=0, help_text="Waveforms labelled lead or not lead.")
    leads = models.PositiveIntegerField(default=0, help_text="Waveforms labelled lead.")
    labels = models.CharField(max_length=300, help_text="The frozen labels: a .npz under MEDIA_ROOT.")
    digest = models.CharField(max_length=64, help_text="SHA-256 of the frozen labels, sources and distances.")
    last_range = models.PositiveIntegerField(default=0, help_text="The latest label range taken into account.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["snapshot", "track"], name="snapshot_track_once")]

    def __str__(self) -> str:
        return f"#{self.snapshot_id}:track {self.track_id} {self.split}"
