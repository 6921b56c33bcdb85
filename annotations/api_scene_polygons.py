"""Polygons on a scene over the API (the polar map page draws with these):

    GET    /api/v1/scenes/<id>/polygons/             the scene's live polygons, a GeoJSON FeatureCollection in lon/lat
    POST   /api/v1/scenes/<id>/polygons/             {geometry (lon/lat), label, sic, stage} -> 201 with the feature
    PATCH  /api/v1/scene-polygons/<id>/              {expected_version, and any of geometry, label, sic, stage}
    DELETE /api/v1/scene-polygons/<id>/?expected_version=N

Whoever may label may draw (annotators, experts, admins). A refused polygon answers 400 with the reason (invalid,
outside the footprint, SIC outside 0-100, ...); an edit or delete made on a stale version 409 (someone else changed
it meanwhile: reload). Views are thin: annotations.services.scene_polygons does the work.
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.urls import path
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import HasCapability
from annotations.models import Scene, ScenePolygon
from annotations.selectors import polygon_feature
from annotations.services.scene_polygons import (
    PolygonConflict,
    PolygonError,
    polygon_create,
    polygon_delete,
    polygon_edit,
)

MAX_POLYGONS = 5000  # per answer; a scene with more is read in pages (?after=<id>)


class PolygonIn(serializers.Serializer):
    geometry = serializers.JSONField(help_text="GeoJSON Polygon or MultiPolygon in lon/lat.")
    label = serializers.ChoiceField(choices=ScenePolygon.Label.choices)
    sic = serializers.FloatField(required=False, allow_null=True, min_value=0, max_value=100,
                                 help_text="Sea-ice concentration in % (required for ice).")
    stage = serializers.CharField(required=False, allow_blank=True, max_length=40)


class PolygonChange(serializers.Serializer):
    expected_version = serializers.IntegerField(min_value=1, help_text="The version the change was made on.")
    geometry = serializers.JSONField(required=False)
    label = serializers.ChoiceField(choices=ScenePolygon.Label.choices, required=False)
    sic = serializers.FloatField(required=False, allow_null=True, min_value=0, max_value=100)
    stage = serializers.CharField(required=False, allow_blank=True, max_length=40)


def _refused(exc: Exception) -> Response:
    if isinstance(exc, PolygonConflict):
        return Response({"detail": str(exc), "code": "conflict"}, status=status.HTTP_409_CONFLICT)
    return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)


class ScenePolygonsApi(APIView):
    permission_classes = [HasCapability("label")]

    @extend_schema(parameters=[OpenApiParameter("after", int, required=False, description="Polygons after this id.")],
                   responses={200: dict})
    def get(self, request, pk: int):
        scene = get_object_or_404(Scene.objects.only("pk"), pk=pk)
        after = request.query_params.get("after", "0")
        if not after.isdigit() or len(after) > 18:
            return Response({"after": "a polygon id (a whole number)"}, status=status.HTTP_400_BAD_REQUEST)
        rows = list(ScenePolygon.objects.filter(scene=scene, deleted_at__isnull=True, pk__gt=int(after))
                    .select_related("author").order_by("pk")[:MAX_POLYGONS + 1])
        more = len(rows) > MAX_POLYGONS
        features = [polygon_feature(p) for p in rows[:MAX_POLYGONS]]
        return Response({"type": "FeatureCollection", "features": features,
                         "next_after": features[-1]["id"] if more else None})

    @extend_schema(request=PolygonIn, responses={201: dict})
    def post(self, request, pk: int):
        scene = get_object_or_404(Scene, pk=pk)
        data = PolygonIn(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            polygon = polygon_create(scene=scene, author=request.user, **data.validated_data)
        except PolygonError as exc:
            return _refused(exc)
        return Response(polygon_feature(polygon), status=status.HTTP_201_CREATED)


class ScenePolygonApi(APIView):
    permission_classes = [HasCapability("label")]

    @extend_schema(request=PolygonChange, responses={200: dict, 409: dict})
    def patch(self, request, pk: int):
        get_object_or_404(ScenePolygon.objects.only("pk"), pk=pk)
        data = PolygonChange(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        try:
            polygon = polygon_edit(polygon_id=pk, author=request.user, expected_version=fields.pop("expected_version"),
                                   **fields)
        except (PolygonError, PolygonConflict) as exc:
            return _refused(exc)
        return Response(polygon_feature(polygon))

    @extend_schema(parameters=[OpenApiParameter("expected_version", int, required=True)], responses={204: None})
    def delete(self, request, pk: int):
        get_object_or_404(ScenePolygon.objects.only("pk"), pk=pk)
        version = request.query_params.get("expected_version", "")
        if not version.isdigit() or len(version) > 9:
            return Response({"expected_version": "the version the deletion was decided on (a whole number)"},
                            status=status.HTTP_400_BAD_REQUEST)
        try:
            polygon_delete(polygon_id=pk, expected_version=int(version), author=request.user)
        except PolygonConflict as exc:
            return _refused(exc)
        return Response(status=status.HTTP_204_NO_CONTENT)


urlpatterns = [
    path("scenes/<int:pk>/polygons/", ScenePolygonsApi.as_view(), name="scene-polygons"),
    path("scene-polygons/<int:pk>/", ScenePolygonApi.as_view(), name="scene-polygon"),
]
