"""The map of detections' endpoints: points as compact parallel arrays, density bins, the months with data.

Any role may look at the map; an annotator's map leaves out the items they may still vote on (blind voting).
"""

from __future__ import annotations

import re

from django.urls import path
from django.utils.decorators import method_decorator
from django.views.decorators.gzip import gzip_page
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.roles import perm
from annotations.wv_classes import SLUGS, class_by_slug
from inference import map_selectors

MONTH_RE = re.compile(r"^(\d{4})-(\d{2})$")


class MapFilterSerializer(serializers.Serializer):
    classes = serializers.CharField(required=False, allow_blank=True,
                                    help_text="Comma-separated class slugs; a point shows if it has any of them.")
    month = serializers.CharField(required=False, allow_blank=True, help_text="YYYY-MM (acquisition time, UTC).")
    min_confidence = serializers.FloatField(required=False, allow_null=True, min_value=0, max_value=1,
                                            help_text="Predicted points below it are left out.")
    source = serializers.ChoiceField(choices=list(map_selectors.SOURCES), required=False, default="any")

    def validate_classes(self, value: str) -> int:
        mask = 0
        for slug in filter(None, (part.strip() for part in value.split(","))):
            try:
                mask |= 1 << class_by_slug(slug).index
            except KeyError:
                raise serializers.ValidationError(
                    f"unknown class {slug!r}; expected some of {', '.join(SLUGS)}"
                ) from None
        return mask

    def validate_month(self, value: str) -> tuple[int, int] | None:
        if not value:
            return None
        match = MONTH_RE.match(value.strip())
        year, number = (int(match.group(1)), int(match.group(2))) if match else (0, 0)
        # Not 9999-12 either: the month's end (the first of the next one) would be past what datetime holds.
        if not (year >= 1 and 1 <= number <= 12 and (year, number) < (9999, 12)):
            raise serializers.ValidationError(f"{value!r} is not a month: use YYYY-MM, e.g. 2016-01")
        return year, number

    def filters(self, request) -> map_selectors.MapFilters:
        data = self.validated_data
        return map_selectors.MapFilters(
            source=data.get("source") or "any", class_mask=data.get("classes") or 0, month=data.get("month"),
            min_confidence=data.get("min_confidence"), blind=_blind(request),
        )


class DensityFilterSerializer(MapFilterSerializer):
    cell = serializers.FloatField(required=False, default=2.0, min_value=0.1, max_value=30,
                                  help_text="Cell size in degrees (0.1 to 30).")


def _blind(request) -> bool:
    return not request.user.has_perm(perm("review"))


_POINT_ARRAYS = {name: {"type": "array", "items": {}} for name in
                 ("ids", "lat", "lon", "class_index", "mask", "confidence", "source", "source_codes")}


# Tens of thousands of numbers compress ~4x: worth it for a browser that is not on the same machine.
@method_decorator(gzip_page, name="dispatch")
class MapPointsApi(APIView):
    """Every imagette with a position as a point: parallel arrays, one entry per point (fast for 50 000)."""

    permission_classes = [IsAuthenticated]

    @extend_schema(parameters=[MapFilterSerializer], responses={200: {"type": "object", "properties": {
        "count": {"type": "integer"}, "truncated": {"type": "boolean"}, "model_version": {"type": "integer"},
        **_POINT_ARRAYS}}})
    def get(self, request):
        params = MapFilterSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        return Response(map_selectors.map_points(filters=params.filters(request)))


@method_decorator(gzip_page, name="dispatch")
class MapDensityApi(APIView):
    """The same points counted in cells of `cell` degrees (south-west corners and counts, empty cells left out)."""

    permission_classes = [IsAuthenticated]

    @extend_schema(parameters=[DensityFilterSerializer], responses={200: OpenApiTypes.OBJECT})
    def get(self, request):
        params = DensityFilterSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        return Response(map_selectors.map_density(filters=params.filters(request), cell=params.validated_data["cell"]))


class MapMonthsApi(APIView):
    """The months that have imagettes (for the month filter) and the active classifier version."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request):
        version = map_selectors.active_classifier()
        return Response({"months": map_selectors.map_months(blind=_blind(request)),
                         "model_version": version.number if version else None})


# Included under /api/v1/map/ by inference.api_urls.
urlpatterns = [
    path("points/", MapPointsApi.as_view(), name="map-points"),
    path("density/", MapDensityApi.as_view(), name="map-density"),
    path("months/", MapMonthsApi.as_view(), name="map-months"),
]
