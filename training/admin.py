"""/admin/ pages for snapshots (and their items), model versions and exports: read-only (snapshots and exports
are immutable records, a version is activated through the Models page or the API, which keep one active)."""

from django.contrib import admin

from eoplatform.admin_base import ReadOnlyAdmin, mask_text
from training.models import Export, ModelVersion, Snapshot, SnapshotItem


@admin.register(Snapshot)
class SnapshotAdmin(ReadOnlyAdmin):
    list_display = ("number", "kind", "size", "seed", "agreement_threshold", "note", "created_by", "created_at")
    list_filter = ("kind",)
    search_fields = ("=number", "note")
    list_select_related = ("created_by",)
    raw_id_fields = ("created_by",)


@admin.register(SnapshotItem)
class SnapshotItemAdmin(ReadOnlyAdmin):
    list_display = ("id", "snapshot", "imagette", "labels", "label_source", "agreement", "split")
    list_filter = ("split", "label_source")
    search_fields = ("=snapshot__number", "=imagette__id")
    list_select_related = ("snapshot", "imagette")
    raw_id_fields = ("snapshot", "imagette")
    ordering = ("-id",)

    @admin.display(description="labels", ordering="label_mask")
    def labels(self, obj: SnapshotItem) -> str:
        return mask_text(obj.label_mask)


@admin.register(ModelVersion)
class ModelVersionAdmin(ReadOnlyAdmin):
    list_display = ("network", "number", "snapshot", "val_score", "is_active", "activation_reason", "created_at")
    list_filter = ("network", "is_active")
    search_fields = ("=number", "activation_reason")
    list_select_related = ("snapshot",)
    raw_id_fields = ("snapshot", "job")


@admin.register(Export)
class ExportAdmin(ReadOnlyAdmin):
    list_display = ("number", "format", "kind", "snapshot", "items", "size_bytes", "pruned_at", "created_by",
                    "created_at")
    list_filter = ("format", "kind", ("pruned_at", admin.EmptyFieldListFilter))
    search_fields = ("=number", "path", "pruned_reason")
    list_select_related = ("snapshot", "created_by")
    raw_id_fields = ("snapshot", "job", "created_by")
