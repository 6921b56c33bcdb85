"""Exports over HTTP: start one (a job on the cpu queue), list them, download one as a zip streamed while it is
built. Everything needs the `export` capability (admins). A snapshot already exported in a format, or an export
job already queued for the same thing, answers 409 naming it instead of writing it again."""

from __future__ import annotations

from collections.abc import Iterator

from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import HasCapability
from jobs.serializers import JobDetailSerializer
from jobs.services import job_submit
from training.exports.common import CHIP_MAX, CHIP_MIN, CHIP_SIZE
from training.exports.download import export_archive_name, export_zip_chunks
from training.models import Export, Snapshot
from training.services.export import (
    FORMATS,
    KINDS_AVAILABLE,
    ExportError,
    export_check,
    export_location,
    export_options,
)
from training.services.export_retention import ExportExists, export_existing, export_job_pending

CanExport = HasCapability("export")


class ExportRequestSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=list(KINDS_AVAILABLE), default="imagettes")
    format = serializers.ChoiceField(choices=list(FORMATS), help_text="One of the kind's formats (imagettes: "
                                     "imagefolder, csv, stac; scenes: chips, geojson, stac).")
    snapshot = serializers.IntegerField(required=False, allow_null=True,
                                        help_text="Snapshot id; leave it out to export the current curated "
                                                  "set (its latest snapshot when no settled label changed since, "
                                                  "else a new one).")

    def validate_snapshot(self, value):
        if value is None:
            return None
        snapshot = Snapshot.objects.filter(pk=value).first()
        if snapshot is None:
            raise serializers.ValidationError(f"there is no snapshot {value}")
        if snapshot.size == 0:
            raise serializers.ValidationError(f"snapshot #{snapshot.number} is empty: nothing to export")
        return value

    chip_size = serializers.IntegerField(required=False, min_value=CHIP_MIN, max_value=CHIP_MAX,
                                         help_text=f"Format chips: the chips' side in pixels (default {CHIP_SIZE}).")

    def validate(self, data):
        try:
            export_check(kind=data["kind"], fmt=data["format"], options=export_options(data))
        except ExportError as exc:
            raise serializers.ValidationError({"format": str(exc)}) from None
        snapshot = data.get("snapshot")
        if snapshot is not None and (held := Snapshot.objects.get(pk=snapshot).kind) != data["kind"]:
            raise serializers.ValidationError({"snapshot": f"snapshot id {snapshot} holds {held}, not {data['kind']}"})
        return data


class ExportSerializer(serializers.ModelSerializer):
    snapshot_number = serializers.IntegerField(source="snapshot.number", read_only=True)
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    download = serializers.SerializerMethodField()
    available = serializers.SerializerMethodField()

    class Meta:
        model = Export
        fields = ["id", "number", "kind", "format", "snapshot", "snapshot_number", "items", "files", "size_bytes",
                  "counts", "card", "job", "created_by", "created_at", "download", "available", "pruned_at",
                  "pruned_reason"]
        read_only_fields = fields

    def get_download(self, export: Export) -> str:
        return f"/api/v1/exports/{export.pk}/download/"

    def get_available(self, export: Export) -> bool:
        return export.pruned_at is None and export_location(export).is_dir()


class ExportConflictSerializer(serializers.Serializer):
    detail = serializers.CharField()
    export = ExportSerializer(required=False, help_text="The export that already holds this snapshot and format.")
    job = serializers.IntegerField(required=False, help_text="The export job already queued or running for it.")


class ExportListApi(APIView):
    permission_classes = [CanExport]

    @extend_schema(responses=ExportSerializer(many=True))
    def get(self, request):
        exports = Export.objects.select_related("snapshot", "created_by")[:200]
        return Response(ExportSerializer(exports, many=True).data)

    @extend_schema(request=ExportRequestSerializer,
                   responses={202: JobDetailSerializer, 409: ExportConflictSerializer})
    def post(self, request):
        data = ExportRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fmt, snapshot = data.validated_data["format"], data.validated_data.get("snapshot")
        kind = data.validated_data["kind"]
        params = {"format": fmt, "kind": kind, **export_options(data.validated_data)}
        if snapshot is not None:
            params["snapshot"] = snapshot
            existing = export_existing(snapshot=snapshot, fmt=fmt, kind=kind)
            if existing is not None:
                return Response({"detail": str(ExportExists(existing)), "export": ExportSerializer(existing).data},
                                status=status.HTTP_409_CONFLICT)
        pending = export_job_pending(fmt=fmt, snapshot_id=snapshot, kind=kind)
        if pending is not None:
            what = f"snapshot id {snapshot}" if snapshot is not None else "the current curated set"
            return Response({"detail": f"an export of {what} as {fmt} is already {pending.state}: job "
                                       f"#{pending.pk}; its download link appears when it ends", "job": pending.pk},
                            status=status.HTTP_409_CONFLICT)
        job = job_submit(kind="export", params=params, created_by=request.user,
                         reason=f"Export pressed by {request.user.username}")
        return Response(JobDetailSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class ExportDetailApi(APIView):
    permission_classes = [CanExport]

    @extend_schema(responses=ExportSerializer)
    def get(self, request, pk: int):
        return Response(ExportSerializer(get_object_or_404(Export.objects.select_related("snapshot"), pk=pk)).data)


class ExportDownloadApi(APIView):
    permission_classes = [CanExport]

    @extend_schema(responses={(200, "application/zip"): OpenApiResponse(OpenApiTypes.BINARY),
                              410: OpenApiResponse(description="the export's files are gone (pruned by the "
                                                               "CRYOLABEL_EXPORTS_KEEP quota, or removed): why")})
    def get(self, request, pk: int):
        export = get_object_or_404(Export, pk=pk)
        try:
            chunks = export_zip_chunks(export)
            first = next(chunks)  # the folder is checked here, while a 410 can still be answered
        except ExportError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_410_GONE)
        # Streamed by the server one chunk at a time (eoplatform.http_bridge): memory holds one chunk.
        response = StreamingHttpResponse(_prepend(first, chunks), content_type="application/zip")
        response["Content-Disposition"] = f'attachment; filename="{export_archive_name(export)}.zip"'
        return response


def _prepend(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield first
    yield from rest



urlpatterns = [
    path("exports/", ExportListApi.as_view(), name="export-list"),
    path("exports/<int:pk>/", ExportDetailApi.as_view(), name="export-detail"),
    path("exports/<int:pk>/download/", ExportDownloadApi.as_view(), name="export-download"),
]
