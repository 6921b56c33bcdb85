from django.db import models


class ModelVersion(models.Model):
    """A trained network: what it learned from (snapshot), how (hyper-parameters), how well
    (test-split metrics, confusion matrix, per-epoch history) and where its weights are."""

    network = models.CharField(max_length=20, db_index=True)
    number = models.PositiveIntegerField()
    snapshot = models.ForeignKey("training.Snapshot", on_delete=models.PROTECT, related_name="model_versions")
    hparams = models.JSONField(default=dict)
    history = models.JSONField(default=list, help_text="Per epoch: loss, val loss, accuracy, F1.")
    val_metrics = models.JSONField(default=dict)
    test_metrics = models.JSONField(default=dict)
    confusion = models.JSONField(default=list)
    val_score = models.FloatField(null=True, blank=True, help_text="What activation compares (val top-1).")
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
        ]

    def __str__(self) -> str:
        return f"{self.network} v{self.number}"
