from django.conf import settings
from django.db import models


class GoldLabel(models.Model):
    """Known classes of an imagette, set by an admin; annotators meet gold items in the queue
    without knowing, and their votes on them score their accuracy."""

    imagette = models.OneToOneField("annotations.Imagette", on_delete=models.CASCADE, related_name="gold")
    label_mask = models.PositiveSmallIntegerField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"gold {self.imagette_id}: {self.label_mask:010b}"


class Consensus(models.Model):
    """The crowd's answer for one imagette, as the last consensus run computed it."""

    imagette = models.OneToOneField("annotations.Imagette", on_delete=models.CASCADE, related_name="consensus")
    label_mask = models.PositiveSmallIntegerField()
    method = models.CharField(max_length=20)
    agreement = models.FloatField(null=True, blank=True, db_index=True)
    probabilities = models.JSONField(default=list, help_text="Per class, for display only.")
    n_votes = models.PositiveIntegerField()
    computed_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"consensus {self.imagette_id}: {self.label_mask:010b} ({self.method})"


class ConsensusRun(models.Model):
    """What one consensus run found over the whole set: the overview shows the latest."""

    method = models.CharField(max_length=20)
    items = models.PositiveIntegerField()
    votes = models.PositiveIntegerField()
    alpha_per_class = models.JSONField(default=dict, help_text="Krippendorff's alpha by class slug.")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    def __str__(self) -> str:
        return f"{self.method} consensus over {self.items} items"


class LabelDecision(models.Model):
    """Every settled label an imagette ever had: imports, expert decisions, accepted predictions.
    The current one is copied onto the Imagette row by annotations.services.labels."""

    imagette = models.ForeignKey("annotations.Imagette", on_delete=models.CASCADE, related_name="decisions")
    label_mask = models.PositiveSmallIntegerField()
    source = models.CharField(max_length=12)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    note = models.CharField(max_length=300, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.source} {self.imagette_id}: {self.label_mask:010b}"
