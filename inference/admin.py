"""/admin/ pages for predictions (of imagettes, scenes and tracks) and review leases: read-only (predictions are
written by prediction jobs and marked reviewed by expert decisions; leases are kept by the review queue)."""

from django.contrib import admin

from eoplatform.admin_base import ReadOnlyAdmin, mask_text
from inference.models import Prediction, ReviewLease, ScenePrediction, TrackPrediction


@admin.register(Prediction)
class PredictionAdmin(ReadOnlyAdmin):
    list_display = ["id", "imagette", "model_version", "labels", "confidence", "entropy", "margin",
                    "mutual_information", "disagrees", "is_current", "reviewed", "created_at"]
    list_filter = ["model_version", "is_current", "reviewed", "disagrees"]
    search_fields = ["=imagette__id"]
    list_select_related = ["imagette", "model_version"]
    raw_id_fields = ["imagette", "model_version", "job"]
    ordering = ["-id"]

    @admin.display(description="labels", ordering="label_mask")
    def labels(self, obj: Prediction) -> str:
        return mask_text(obj.label_mask)


@admin.register(ReviewLease)
class ReviewLeaseAdmin(ReadOnlyAdmin):
    list_display = ["imagette", "reviewer", "expires_at"]
    search_fields = ["=imagette__id", "reviewer__username"]
    list_select_related = ["imagette", "reviewer"]
    raw_id_fields = ["imagette", "reviewer"]
    ordering = ["-id"]


@admin.register(ScenePrediction)
class ScenePredictionAdmin(ReadOnlyAdmin):
    list_display = ["id", "scene", "model_version", "mean_sic", "uncertainty", "pixels", "is_current", "reviewed",
                    "created_at"]
    list_filter = ["model_version", "is_current", "reviewed"]
    search_fields = ["=scene__id", "scene__key"]
    list_select_related = ["scene", "model_version"]
    raw_id_fields = ["scene", "model_version", "job"]
    ordering = ["-id"]


@admin.register(TrackPrediction)
class TrackPredictionAdmin(ReadOnlyAdmin):
    list_display = ["id", "track", "model_version", "waveforms", "leads", "uncertainty", "disagreements",
                    "is_current", "reviewed", "created_at"]
    list_filter = ["model_version", "is_current", "reviewed"]
    search_fields = ["=track__id", "track__key"]
    list_select_related = ["track", "model_version"]
    raw_id_fields = ["track", "model_version", "job"]
    ordering = ["-id"]
