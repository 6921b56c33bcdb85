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
