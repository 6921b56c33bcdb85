"""The `leads` network's track predictions over REST (the track page draws and reviews with these):

    GET  /api/v1/tracks/<id>/predictions/                        the track's predictions, the current ones first
    GET  /api/v1/track-predictions/<id>/arrays.bin               per waveform: probability, uncertainty, distance
    GET  /api/v1/track-predictions/<id>/segments/?count=20       its segments to review, most disputed first
    POST /api/v1/track-predictions/<id>/accept/   {start, stop}  the predicted labels there become ranges (201)
    POST /api/v1/track-predictions/<id>/reviewed/                the track is reviewed (it leaves the queue)
    GET  /api/v1/review/tracks/                                  the review queue of tracks, least sure first

arrays.bin is compact, as the waveform viewer's data: a 4-byte little-endian length, that many bytes of JSON
({"waveforms": N, "arrays": [[name, dtype, offset], ...], "scale": {...}}), then the arrays: probability and
uncertainty as uint8 (value × 255, rounded), the distance to the closest lead as uint16 metres (65535: that far or
farther). Whoever may label sees them; accepting and reviewing are experts' decisions.
"""

from __future__ import annotations

import json
import struct

import numpy as np
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import HasCapability
from annotations.models import Track
from inference.models import TrackPrediction
from inference.services.track_predict import track_prediction_arrays
from inference.services.track_review import (
    SegmentRefused,
    track_prediction_reviewed,
    track_segment_accept,
    track_segments,
    tracks_to_review,
)

DISTANCE_MAX_M = 65535


class TrackPredictionSerializer(serializers.ModelSerializer):
    network = serializers.CharField(source="model_version.network")
    version = serializers.IntegerField(source="model_version.number")
    active = serializers.BooleanField(source="model_version.is_active")
    track_key = serializers.CharField(source="track.key")

    class Meta:
        model = TrackPrediction
        fields = ["id", "track", "track_key", "network", "version", "active", "is_current", "reviewed", "waveforms",
                  "leads", "uncertainty", "confidence", "disagreements", "created_at"]


class TrackPredictionsApi(APIView):
    permission_classes = [HasCapability("label")]

    @extend_schema(responses=TrackPredictionSerializer(many=True))
    def get(self, request, pk: int):
        track = get_object_or_404(Track.objects.only("pk"), pk=pk)
        rows = (TrackPrediction.objects.filter(track=track).select_related("model_version", "track")
                .order_by("-is_current", "-model_version__is_active", "-created_at")[:50])
        return Response(TrackPredictionSerializer(rows, many=True).data)


def _arrays_payload(prediction: TrackPrediction) -> bytes:
    try:
        arrays = track_prediction_arrays(prediction)
    except (FileNotFoundError, OSError, KeyError, ValueError) as exc:
        raise Http404("the prediction's file is missing or unreadable: predict the track again") from exc
    quantised = {
        "probability": np.rint(np.clip(np.nan_to_num(arrays["probability"]), 0, 1) * 255).astype(np.uint8),
        "uncertainty": np.rint(np.clip(np.nan_to_num(arrays["uncertainty"], nan=1.0), 0, 1) * 255).astype(np.uint8),
        "distance_m": np.rint(np.clip(np.nan_to_num(arrays["distance_m"], nan=DISTANCE_MAX_M), 0, DISTANCE_MAX_M))
        .astype(np.uint16),
    }
    layout, offset, chunks = [], 0, []
    for name, array in quantised.items():
        offset += (-offset) % array.itemsize  # each array aligned for a typed view in the browser
        layout.append([name, array.dtype.name, offset])
        chunks.append((offset, array.tobytes()))
        offset += array.nbytes
    header = json.dumps({"waveforms": int(len(quantised["probability"])), "arrays": layout,
                         "scale": {"probability": 1 / 255, "uncertainty": 1 / 255, "distance_m": 1},
                         "distance_max_m": DISTANCE_MAX_M}).encode()
    header += b" " * ((-(4 + len(header))) % 8)  # the arrays start 8-aligned
    body = bytearray(offset)
    for at, data in chunks:
        body[at:at + len(data)] = data
    return struct.pack("<I", len(header)) + header + bytes(body)


class TrackPredictionArraysApi(APIView):
    permission_classes = [HasCapability("label")]

    @extend_schema(responses={200: bytes})
    def get(self, request, pk: int):
        prediction = get_object_or_404(TrackPrediction, pk=pk)
        response = HttpResponse(_arrays_payload(prediction), content_type="application/octet-stream")
        response["Cache-Control"] = "private, max-age=3600"  # a prediction's arrays never change
        return response


class SegmentsApi(APIView):
    permission_classes = [HasCapability("label")]

    @extend_schema(responses={200: dict})
    def get(self, request, pk: int):
        prediction = get_object_or_404(TrackPrediction.objects.select_related("track"), pk=pk)
        raw = request.query_params.get("count", "20")
        if not raw.isdigit() or not 1 <= int(raw) <= 500:
            return Response({"count": ["a whole number from 1 to 500"]}, status=400)
        try:
            segments = track_segments(prediction, count=int(raw))
        except (FileNotFoundError, OSError) as exc:
            raise Http404("the prediction's file is missing: predict the track again") from exc
        return Response({"prediction": prediction.pk, "track": prediction.track_id, "segments": segments})


class RangeIn(serializers.Serializer):
    start = serializers.IntegerField(min_value=0)
    stop = serializers.IntegerField(min_value=1)


class AcceptSegmentApi(APIView):
    permission_classes = [HasCapability("review")]

    @extend_schema(request=RangeIn, responses={201: dict, 400: dict})
    def post(self, request, pk: int):
        prediction = get_object_or_404(TrackPrediction.objects.select_related("track"), pk=pk)
        body = RangeIn(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            ranges = track_segment_accept(prediction, author=request.user, **body.validated_data)
        except SegmentRefused as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        return Response({"ranges": [{"id": r.pk, "start": r.start, "stop": r.stop, "label": r.label,
                                     "source": r.source} for r in ranges]}, status=status.HTTP_201_CREATED)


class ReviewedApi(APIView):
    permission_classes = [HasCapability("review")]

    @extend_schema(request=None, responses={204: None})
    def post(self, request, pk: int):
        track_prediction_reviewed(get_object_or_404(TrackPrediction, pk=pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


class TrackReviewQueueApi(APIView):
    permission_classes = [HasCapability("review")]

    @extend_schema(responses=TrackPredictionSerializer(many=True))
    def get(self, request):
        return Response(TrackPredictionSerializer(tracks_to_review()[:100], many=True).data)


urlpatterns = [
    path("tracks/<int:pk>/predictions/", TrackPredictionsApi.as_view(), name="track-predictions"),
    path("track-predictions/<int:pk>/arrays.bin", TrackPredictionArraysApi.as_view(), name="track-prediction-arrays"),
    path("track-predictions/<int:pk>/segments/", SegmentsApi.as_view(), name="track-prediction-segments"),
    path("track-predictions/<int:pk>/accept/", AcceptSegmentApi.as_view(), name="track-prediction-accept"),
    path("track-predictions/<int:pk>/reviewed/", ReviewedApi.as_view(), name="track-prediction-reviewed"),
    path("review/tracks/", TrackReviewQueueApi.as_view(), name="track-review-queue"),
]
