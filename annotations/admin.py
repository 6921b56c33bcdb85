"""/admin/ pages for imagettes, votes, leases, consensus, gold labels and label decisions, and for scenes, their
polygons and the ice charts imported onto them, and for tracks, their automatic labels and the ranges people
marked: read-only (the label services keep counts, queue states, settled
labels and polygon histories in step), searchable, filtered by what people look for."""

from django.contrib import admin

from annotations.models import (
    Assignment,
    Consensus,
    ConsensusRun,
    GoldLabel,
    IceChart,
    Imagette,
    LabelDecision,
    Scene,
    ScenePolygon,
    Track,
    TrackCollocation,
    TrackLabelRange,
    Vote,
)
from eoplatform.admin_base import ReadOnlyAdmin, mask_text


@admin.register(Imagette)
class ImagetteAdmin(ReadOnlyAdmin):
    list_display = ("id", "key", "source_product", "swath", "acquisition_time", "queue_state", "vote_count",
                    "labels", "label_source", "label_agreement", "created_at")
    list_filter = ("queue_state", "label_source", "source_format", "is_db", "swath")
    search_fields = ("=id", "key", "source_product")
    ordering = ("-id",)

    @admin.display(description="labels", ordering="label_mask")
    def labels(self, obj: Imagette) -> str:
        return mask_text(obj.label_mask)


@admin.register(Vote)
class VoteAdmin(ReadOnlyAdmin):
    list_display = ("id", "imagette", "annotator", "labels", "suggested", "seconds", "created_at")
    list_filter = ("suggested",)
    search_fields = ("=imagette__id", "annotator__username")
    list_select_related = ("imagette", "annotator")
    raw_id_fields = ("imagette", "annotator")
    ordering = ("-id",)

    @admin.display(description="labels", ordering="label_mask")
    def labels(self, obj: Vote) -> str:
        return mask_text(obj.label_mask)


@admin.register(Assignment)
class AssignmentAdmin(ReadOnlyAdmin):
    list_display = ("id", "imagette", "annotator", "counted", "expires_at", "created_at")
    list_filter = ("counted",)
    search_fields = ("=imagette__id", "annotator__username")
    list_select_related = ("imagette", "annotator")
    raw_id_fields = ("imagette", "annotator")
    ordering = ("-id",)


@admin.register(Consensus)
class ConsensusAdmin(ReadOnlyAdmin):
    list_display = ("imagette", "labels", "method", "agreement", "n_votes", "computed_at")
    list_filter = ("method",)
    search_fields = ("=imagette__id", "imagette__key")
    list_select_related = ("imagette",)
    raw_id_fields = ("imagette",)
    ordering = ("-id",)

    @admin.display(description="labels", ordering="label_mask")
    def labels(self, obj: Consensus) -> str:
        return mask_text(obj.label_mask)


@admin.register(ConsensusRun)
class ConsensusRunAdmin(ReadOnlyAdmin):
    list_display = ("id", "method", "items", "votes", "created_at")
    list_filter = ("method",)
    ordering = ("-id",)


@admin.register(GoldLabel)
class GoldLabelAdmin(ReadOnlyAdmin):
    list_display = ("imagette", "labels", "created_by", "created_at")
    search_fields = ("=imagette__id", "imagette__key")
    list_select_related = ("imagette", "created_by")
    raw_id_fields = ("imagette", "created_by")
    ordering = ("-id",)

    @admin.display(description="labels", ordering="label_mask")
    def labels(self, obj: GoldLabel) -> str:
        return mask_text(obj.label_mask)


@admin.register(LabelDecision)
class LabelDecisionAdmin(ReadOnlyAdmin):
    list_display = ("id", "imagette", "labels", "source", "author", "note", "created_at")
    list_filter = ("source",)
    search_fields = ("=imagette__id", "author__username", "note")
    list_select_related = ("imagette", "author")
    raw_id_fields = ("imagette", "author")
    ordering = ("-id",)

    @admin.display(description="labels", ordering="label_mask")
    def labels(self, obj: LabelDecision) -> str:
        return mask_text(obj.label_mask)


@admin.register(Scene)
class SceneAdmin(ReadOnlyAdmin):
    list_display = ("id", "key", "mode", "polarisations", "acquisition_start", "crs", "width", "height", "pixel_size",
                    "calibrated", "created_at")
    list_filter = ("mode", "crs", "calibrated")
    search_fields = ("=id", "key")
    ordering = ("-id",)


@admin.register(ScenePolygon)
class ScenePolygonAdmin(ReadOnlyAdmin):
    list_display = ("id", "scene", "label", "sic", "stage", "source", "chart", "author", "version", "deleted_at",
                    "updated_at")
    list_filter = ("label", "source", "stage")
    search_fields = ("=id", "=scene__id", "scene__key")
    list_select_related = ("scene", "chart", "author")
    raw_id_fields = ("scene", "chart", "author")
    ordering = ("-id",)


@admin.register(IceChart)
class IceChartAdmin(ReadOnlyAdmin):
    list_display = ("id", "name", "valid_from", "n_polygons", "n_stored", "imported_by", "created_at")
    search_fields = ("=id", "name")
    ordering = ("-id",)


@admin.register(Track)
class TrackAdmin(ReadOnlyAdmin):
    list_display = ("id", "key", "mission", "mode", "band", "gates", "n_waveforms", "time_start", "cycle",
                    "pass_number", "created_at")
    list_filter = ("mission", "mode", "source_format")
    search_fields = ("=id", "key")
    ordering = ("-id",)


@admin.register(TrackCollocation)
class TrackCollocationAdmin(ReadOnlyAdmin):
    list_display = ("track", "version", "counts", "window_s", "threshold_m", "updated_at")
    search_fields = ("=track__id", "track__key")
    list_select_related = ("track",)
    raw_id_fields = ("track", "job")
    ordering = ("-id",)


@admin.register(TrackLabelRange)
class TrackLabelRangeAdmin(ReadOnlyAdmin):
    list_display = ("id", "track", "start", "stop", "label", "source", "author", "deleted_at", "created_at")
    list_filter = ("label", "source")
    search_fields = ("=id", "=track__id", "track__key", "author__username")
    list_select_related = ("track", "author")
    raw_id_fields = ("track", "author")
    ordering = ("-id",)
