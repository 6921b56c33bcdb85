"""Predictions of a model version, with how sure it was: what the review queue orders by."""

from django.conf import settings
from django.db import models

from annotations.kinds import ItemKind


class Prediction(models.Model):
    """One model version's prediction for one imagette (written by the inference job, never edited but for
    `is_current` / `reviewed`). Uncertainty scores are in [0, 1]; higher entropy / lower margin and confidence
    mean less sure. `disagrees` compares the predicted mask with the crowd's settled label at prediction time."""

    imagette = models.ForeignKey("annotations.Imagette", on_delete=models.CASCADE, related_name="predictions")
    model_version = models.ForeignKey("training.ModelVersion", on_delete=models.CASCADE, related_name="predictions")
    # Always "imagettes" (this is the imagettes' table): with model_version it references the version's
    # (id, kind), so that the database refuses a prediction of a version that learned another kind.
    kind = models.CharField(max_length=20, choices=ItemKind.choices, default=ItemKind.IMAGETTES,
                            db_default=ItemKind.IMAGETTES, editable=False)
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    probabilities = models.JSONField(help_text="One probability per class, in the order of the class list.")
    label_mask = models.PositiveSmallIntegerField(help_text="Predicted classes (bit i: class i).")
    top1 = models.PositiveSmallIntegerField(help_text="The most probable class.")
    confidence = models.FloatField(help_text="Probability of the predicted mask being exactly right.")
    entropy = models.FloatField(help_text="Mean binary entropy of the class probabilities, bits.")
    margin = models.FloatField(help_text="Best minus second-best class probability.")
    mutual_information = models.FloatField(null=True, blank=True, help_text="MC-dropout mutual information.")
    disagrees = models.BooleanField(default=False, help_text="Prediction differs from the crowd consensus.")
    is_current = models.BooleanField(default=True, help_text="From the version that last predicted this item.")
    reviewed = models.BooleanField(default=False, help_text="An expert decided the item since.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["imagette", "model_version"], name="prediction_once_per_version"),
            models.CheckConstraint(condition=models.Q(kind=ItemKind.IMAGETTES), name="prediction_of_imagettes"),
        ]
        indexes = [
            # The review queue's orderings: current, unreviewed predictions of one version, ending with the id
            # that breaks ties, so that the index gives the whole order (ties are many where scores saturate:
            # with the margin alone, 234 rows of equal margin were read and sorted for one item).
            models.Index(fields=["model_version", "is_current", "reviewed", "-entropy", "id"],
                         name="prediction_entropy_id"),
            models.Index(fields=["model_version", "is_current", "reviewed", "margin", "id"],
                         name="prediction_margin_id"),
            models.Index(fields=["model_version", "is_current", "reviewed", "confidence", "id"],
                         name="prediction_conf_id"),
            models.Index(fields=["model_version", "is_current", "reviewed", "disagrees", "-entropy", "id"],
                         name="prediction_disagreement_id"),
            models.Index(fields=["imagette", "is_current"], name="prediction_current"),
        ]

    def __str__(self) -> str:
        return f"{self.model_version} on imagette {self.imagette_id}: {self.label_mask:#b} ({self.confidence:.2f})"


class ReviewLease(models.Model):
    """An imagette the review queue showed to one expert, kept from the other experts until it expires, so that
    experts working the same order get different items. It only spares them wasted looks: a second decision on
    an item is refused by its `label_version` whatever the leases say. Removed when the item is decided."""

    imagette = models.OneToOneField("annotations.Imagette", on_delete=models.CASCADE, related_name="review_lease")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    expires_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"imagette {self.imagette_id} shown to {self.reviewer_id} until {self.expires_at:%H:%M:%S}"


class ScenePrediction(models.Model):
    """One model version's prediction of a whole scene: a Cloud-Optimised GeoTIFF on the scene's grid with the
    predicted SIC (band 1, %) and its per-pixel uncertainty (band 2, 0-1), stitched from overlapping patches
    (inference.services.scene_predict); a map layer of that scene and version. Never edited but for `is_current`
    and `reviewed`. The scalars order the review queue of scenes (the least sure first)."""

    scene = models.ForeignKey("annotations.Scene", on_delete=models.CASCADE, related_name="predictions")
    model_version = models.ForeignKey("training.ModelVersion", on_delete=models.CASCADE,
                                      related_name="scene_predictions")
    # Always "scenes": with model_version it references the version's (id, kind) (as Prediction does).
    kind = models.CharField(max_length=20, choices=ItemKind.choices, default=ItemKind.SCENES,
                            db_default=ItemKind.SCENES, editable=False)
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    cog = models.CharField(max_length=500, help_text="The SIC + uncertainty COG, relative to MEDIA_ROOT.")
    mean_sic = models.FloatField(help_text="Mean predicted SIC over the scene's valid pixels, %.")
    confidence = models.FloatField(help_text="1 - the mean per-pixel uncertainty.")
    uncertainty = models.FloatField(help_text="Mean per-pixel uncertainty, 0-1 (what the review queue orders by).")
    mutual_information = models.FloatField(null=True, blank=True, help_text="MC-dropout passes' mean SIC spread.")
    pixels = models.PositiveBigIntegerField(default=0, help_text="Valid pixels predicted.")
    is_current = models.BooleanField(default=True, help_text="From the version that last predicted this scene.")
    reviewed = models.BooleanField(default=False, help_text="An expert reviewed the scene since.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["scene", "model_version"], name="scene_prediction_once_per_version"),
            models.CheckConstraint(condition=models.Q(kind=ItemKind.SCENES), name="scene_prediction_of_scenes"),
        ]
        indexes = [models.Index(fields=["model_version", "is_current", "reviewed", "-uncertainty", "id"],
                                name="scene_prediction_uncertain")]

    def __str__(self) -> str:
        return f"{self.model_version} on scene {self.scene_id}: SIC {self.mean_sic:.0f} % ({self.confidence:.2f})"


class TrackPrediction(models.Model):
    """One model version's prediction of a whole track: per waveform the lead probability, the distance to the
    closest lead (the network's second output) and an uncertainty, in one .npz under MEDIA_ROOT
    (inference.services.track_predict). Never edited but for `is_current` and `reviewed`. The scalars order the
    review queue of tracks (the least sure first); within a track, its least sure segments come first."""

    track = models.ForeignKey("annotations.Track", on_delete=models.CASCADE, related_name="predictions")
    model_version = models.ForeignKey("training.ModelVersion", on_delete=models.CASCADE,
                                      related_name="track_predictions")
    # Always "tracks": with model_version it references the version's (id, kind) (as Prediction does).
    kind = models.CharField(max_length=20, choices=ItemKind.choices, default=ItemKind.TRACKS,
                            db_default=ItemKind.TRACKS, editable=False)
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    data = models.CharField(max_length=500, help_text="The per-waveform arrays (.npz), relative to MEDIA_ROOT.")
    waveforms = models.PositiveIntegerField(default=0)
    leads = models.PositiveIntegerField(default=0, help_text="Waveforms predicted lead (probability >= 0.5).")
    confidence = models.FloatField(help_text="1 - the mean per-waveform uncertainty.")
    uncertainty = models.FloatField(help_text="Mean per-waveform uncertainty, 0-1 (what the review queue orders by).")
    mutual_information = models.FloatField(null=True, blank=True, help_text="MC-dropout mean mutual information.")
    disagreements = models.PositiveIntegerField(default=0, help_text="Labelled waveforms the prediction contradicts.")
    is_current = models.BooleanField(default=True, help_text="From the version that last predicted this track.")
    reviewed = models.BooleanField(default=False, help_text="An expert reviewed the track since.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["track", "model_version"], name="track_prediction_once_per_version"),
            models.CheckConstraint(condition=models.Q(kind=ItemKind.TRACKS), name="track_prediction_of_tracks"),
        ]
        indexes = [models.Index(fields=["model_version", "is_current", "reviewed", "-uncertainty", "id"],
                                name="track_prediction_uncertain")]

    def __str__(self) -> str:
        return f"{self.model_version} on track {self.track_id}: {self.leads} leads ({self.confidence:.2f})"
