from django.conf import settings
from django.db import models


class Vote(models.Model):
    """One annotator's labels for one imagette: a bitmask over the 10 classes (bit i = class i)."""

    imagette = models.ForeignKey("annotations.Imagette", on_delete=models.CASCADE, related_name="votes")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="votes")
    label_mask = models.PositiveSmallIntegerField()
    seconds = models.FloatField(null=True, blank=True, help_text="Time the annotator spent on it.")
    suggested = models.BooleanField(
        default=False, db_default=False,
        help_text="The model's suggestion was on screen (pre-selected) when the annotator voted: not a blind vote. "
        "Kept so that a consensus or an audit can tell votes the model may have swayed.")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["annotator", "imagette"], name="one_vote_per_annotator_and_imagette"),
            models.CheckConstraint(condition=models.Q(label_mask__gt=0), name="vote_has_a_class"),
        ]

    def __str__(self) -> str:
        return f"vote {self.annotator_id}→{self.imagette_id}: {self.label_mask:010b}"


class Assignment(models.Model):
    """An imagette handed to an annotator by the queue, held for them until it expires, so that
    concurrent annotators never take more than k votes' worth of one item.

    An expired assignment is released (no longer `counted` against the item's k) but kept for a day: it is
    the record that the queue gave this item to this annotator, so a late vote on it can still count when the
    item has room, and the queue does not hand it to them again meanwhile. A vote removes it."""

    imagette = models.ForeignKey("annotations.Imagette", on_delete=models.CASCADE, related_name="assignments")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assignments")
    expires_at = models.DateTimeField(db_index=True)
    counted = models.BooleanField(default=True, help_text="Reserves one of the item's k votes (until released).")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["annotator", "imagette"], name="one_assignment_per_pair")]
        indexes = [
            # Leases still reserving a vote, by expiry: what the release looks up.
            models.Index(fields=["expires_at"], condition=models.Q(counted=True), name="assignment_reserving"),
        ]

    def __str__(self) -> str:
        return f"assignment {self.imagette_id}→{self.annotator_id} until {self.expires_at:%H:%M:%S}"
