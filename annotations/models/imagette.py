from django.db import models


class Imagette(models.Model):
    """One Sentinel-1 Wave Mode imagette (~20×20 km, VV). The pixels live in a file (`data`, the NRCS
    in dB as float16 .npy, and `preview`, a stretched PNG); the row holds what is queried."""

    class QueueState(models.TextChoices):
        OPEN = "open", "needs crowd votes"
        COMPLETE = "complete", "has its k votes"
        SETTLED = "settled", "label settled without the crowd (imported)"

    class LabelSource(models.TextChoices):
        NONE = "", "none"
        IMPORTED = "imported"
        CONSENSUS = "consensus"
        EXPERT = "expert"
        PREDICTION = "prediction", "accepted model prediction"

    key = models.CharField(max_length=400, unique=True, help_text="Product/measurement path or file name.")
    content_hash = models.CharField(max_length=64, unique=True, help_text="sha256 of the source file bytes.")
    source_product = models.CharField(max_length=200, db_index=True, help_text="Acquisition; splits group by it.")
    source_path = models.CharField(max_length=1000)
    source_format = models.CharField(max_length=20)
    swath = models.CharField(max_length=4, blank=True, default="")
    polarisation = models.CharField(max_length=4, blank=True, default="")
    acquisition_time = models.DateTimeField(null=True, blank=True, db_index=True)
    center_lat = models.FloatField(null=True, blank=True)
    center_lon = models.FloatField(null=True, blank=True)
    incidence_angle = models.FloatField(null=True, blank=True)
    pixel_spacing = models.FloatField(null=True, blank=True)
    footprint = models.JSONField(null=True, blank=True, help_text="GeoJSON polygon, for display.")
    min_lat = models.FloatField(null=True, blank=True)
    max_lat = models.FloatField(null=True, blank=True)
    min_lon = models.FloatField(null=True, blank=True)
    max_lon = models.FloatField(null=True, blank=True)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    is_db = models.BooleanField(default=True, help_text="False for PNG sources: 8-bit brightness, not NRCS.")
    data = models.CharField(max_length=300, help_text="Path under MEDIA_ROOT of the dB array (.npy).")
    preview = models.CharField(max_length=300, help_text="Path under MEDIA_ROOT of the preview PNG.")

    # Kept by annotations.services.{queue,votes} in the same transaction as the votes (never by signals).
    queue_state = models.CharField(max_length=10, choices=QueueState.choices, default=QueueState.OPEN)
    vote_count = models.PositiveIntegerField(default=0)
    reserved_count = models.PositiveIntegerField(default=0, help_text="Active assignments (leases).")
    # How much the crowd's label would teach the active model (its prediction's entropy): among fresh items the
    # queue hands out the least certain first. Kept on the row, by the inference layer through
    # annotations.services.queue.queue_priority_set, so that the queue walks one index of its own table.
    queue_priority = models.FloatField(default=0.0, db_default=0.0)

    # The current settled label, kept by annotations.services.labels; history in LabelDecision.
    label_mask = models.PositiveSmallIntegerField(null=True, blank=True)
    label_source = models.CharField(max_length=12, choices=LabelSource.choices, blank=True, default="")
    label_agreement = models.FloatField(null=True, blank=True)
    label_version = models.PositiveIntegerField(default=0, help_text="Bumped by each decision; guards races.")

    ingest_job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            # The crowd queue: open items, closest to completion first.
            models.Index(fields=["queue_state", "-vote_count", "id"], name="imagette_queue"),
            # Fresh items (no counted vote yet), least certain first: the queue's last tier.
            models.Index(fields=["-queue_priority", "id"], condition=models.Q(queue_state="open", vote_count=0),
                         name="imagette_fresh_queue"),
            models.Index(fields=["label_source", "label_agreement"], name="imagette_settled"),
            models.Index(fields=["center_lat", "center_lon"], name="imagette_centre"),
            # Items with all their votes and no label yet: counted after each completing vote (consensus scheduling).
            models.Index(fields=["id"], condition=models.Q(queue_state="complete", label_source=""),
                         name="imagette_awaiting_consensus"),
        ]

    def __str__(self) -> str:
        return self.key
