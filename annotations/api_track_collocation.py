"""A track's automatic labels over the API:

    POST /api/v1/tracks/<id>/collocate/     {window_h?, threshold_m?} -> 200 with the collocation's summary
    GET  /api/v1/tracks/<id>/collocation/   the summary (404 before the first run)

Running it is an expert's or an admin's (`review`): it replaces the automatic labels everyone labels over. It runs
in the request (well under a second for a 10 000-waveform pass). A bad window or threshold answers 400 with the
reason and changes nothing. Views are thin: annotations.services.collocation does the work.
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import HasCapability
from annotations.models import Track, TrackCollocation
from annotations.services.collocation import (
    MAX_THRESHOLD_M,
    MAX_WINDOW_S,
    CollocationError,
    collocation_summary,
    track_collocate,
)


class StrictFloat(serializers.FloatField):
    """A JSON number (DRF's FloatField also takes true/false and numeric strings); NaN and infinities refused."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int | float):
            self.fail("invalid")
        return super().to_internal_value(data)


class CollocateIn(serializers.Serializer):
    window_h = StrictFloat(required=False, min_value=1e-3, max_value=MAX_WINDOW_S / 3600,
                           help_text="Scenes within this many hours of the track (default: the setting).")
    threshold_m = StrictFloat(required=False, min_value=1e-3, max_value=MAX_THRESHOLD_M,
                              help_text="A nadir closer than this to a lead is a lead, m (default: the setting).")

    def validate(self, attrs):
        unknown = sorted(set(self.initial_data) - set(self.fields)) if isinstance(self.initial_data, dict) else []
        if unknown:
            raise serializers.ValidationError(f"unknown fields: {', '.join(unknown)[:200]}")
        return attrs


class TrackCollocateApi(APIView):
    permission_classes = [HasCapability("review")]

    @extend_schema(request=CollocateIn, responses={200: dict, 400: dict})
    def post(self, request, pk: int):
        track = get_object_or_404(Track.objects.only("pk"), pk=pk)
        data = CollocateIn(data=request.data)
        data.is_valid(raise_exception=True)
        window_h = data.validated_data.get("window_h")
        try:
            collocation = track_collocate(track, window_s=None if window_h is None else window_h * 3600.0,
                                          threshold_m=data.validated_data.get("threshold_m"))
        except CollocationError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        except FileNotFoundError:
            return Response({"detail": "the track's arrays are missing: ingest it again"},
                            status=status.HTTP_409_CONFLICT)
        return Response(collocation_summary(collocation))


class TrackCollocationApi(APIView):
    permission_classes = [HasCapability("label")]

    @extend_schema(responses={200: dict, 404: dict})
    def get(self, request, pk: int):
        track = get_object_or_404(Track.objects.only("pk"), pk=pk)
        collocation = TrackCollocation.objects.filter(track=track).first()
        if collocation is None:
            return Response({"detail": "this track has not been collocated yet"}, status=status.HTTP_404_NOT_FOUND)
        return Response(collocation_summary(collocation))


urlpatterns = [
    path("tracks/<int:pk>/collocate/", TrackCollocateApi.as_view(), name="track-collocate"),
    path("tracks/<int:pk>/collocation/", TrackCollocationApi.as_view(), name="track-collocation"),
]
