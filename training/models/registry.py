from django.db import models

from annotations.kinds import ItemKind
from training.specs import SPECS


class ModelVersion(models.Model):
    """A trained network: what it learned from (snapshot), how (hyper-parameters), how well
    (test-split metrics, confusion matrix, per-epoch history) and where its weights are."""

    network = models.CharField(max_length=20, db_index=True)
    kind = models.CharField(max_length=20, choices=ItemKind.choices, help_text="What it learned: its snapshot's kind.")
    number = models.PositiveIntegerField()
    snapshot = models.ForeignKey("training.Snapshot", on_delete=models.PROTECT, related_name="model_versions")
    hparams = models.JSONField(default=dict)
    history = models.JSONField(default=list, help_text="Per epoch: loss, val loss, accuracy, F1.")
    val_metrics = models.JSONField(default=dict)
    test_metrics = models.JSONField(default=dict)
    confusion = models.JSONField(default=list)
    val_score = models.FloatField(null=True, blank=True, help_text="What activation compares: the validation "
                                  "score on the network's primary metric.")
    primary_metric = models.CharField(max_length=30, help_text="The metric val_score is (e.g. top1, r2, f1).")
    checkpoint = models.CharField(max_length=300, help_text="Path under MEDIA_ROOT.")
    is_active = models.BooleanField(default=False)
    activated_at = models.DateTimeField(null=True, blank=True)
    activation_reason = models.CharField(max_length=200, blank=True, default="")
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["network", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["network", "number"], name="model_version_number"),
            models.UniqueConstraint(fields=["network"], condition=models.Q(is_active=True), name="one_active_model"),
            models.CheckConstraint(condition=models.Q(kind__in=ItemKind.values), name="model_version_kind_known"),
            # What a prediction's (model version, kind) references: a prediction is of its version's kind.
            models.UniqueConstraint(fields=["id", "kind"], name="model_version_id_kind"),
        ]

    def __str__(self) -> str:
        return f"{self.network} v{self.number}"

    def save(self, *args, **kwargs) -> None:
        # It belongs to its snapshot's kind (the database checks it: training/migrations/0004_item_kinds).
        if not self.kind and self.snapshot_id is not None:
            self.kind = self.snapshot.kind
        if not self.primary_metric and self.network in SPECS:
            self.primary_metric = SPECS[self.network].primary_metric.name
        super().save(*args, **kwargs)
