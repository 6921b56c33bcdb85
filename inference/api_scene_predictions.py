"""The `sic` network's scene predictions over REST (the polar map page draws and reviews with these):

    GET  /api/v1/scenes/<id>/predictions/                       the scene's predictions, the current ones first
    GET  /api/v1/scene-predictions/<id>/tiles/<z>/<x>/<y>.<png|webp>?layer=sic|uncertainty
    POST /api/v1/scene-predictions/<id>/accept/   {lon, lat}    the predicted region there becomes a polygon (201)
    POST /api/v1/scene-predictions/<id>/reviewed/               the scene is reviewed (it leaves the queue)
    GET  /api/v1/review/scenes/                                 the review queue of scenes, least sure first

Whoever may label sees the layers (as they see the scene's tiles); accepting and reviewing are experts' decisions.
Views are thin: inference.services.scene_review and annotations.tiles do the work.
"""

from __future__ import annotations

import logging

from django.http import Http404, HttpResponse, HttpResponseNotModified
from django.shortcuts import get_object_or_404
from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import HasCapability
from annotations.api_scenes import TILE_CACHE_CONTROL, _JsonErrors, _matches
from annotations.models import Scene
from annotations.selectors import polygon_feature
from annotations.tiles import (
    SceneImageUnavailable,
    TileRequestError,
    file_etag,
    media_file,
    prediction_tile,
    tile_address,
)
from inference.models import ScenePrediction
from inference.services.scene_review import (
    RegionRefused,
    scene_prediction_reviewed,
    scene_region_accept,
    scenes_to_review,
)

log = logging.getLogger(__name__)


class ScenePredictionSerializer(serializers.ModelSerializer):
    network = serializers.CharField(source="model_version.network")
    version = serializers.IntegerField(source="model_version.number")
    active = serializers.BooleanField(source="model_version.is_active")
    tiles = serializers.SerializerMethodField(help_text="Tile URL template ({z}/{x}/{y}); add ?layer=sic|uncertainty")
    scene_key = serializers.CharField(source="scene.key")

    class Meta:
        model = ScenePrediction
        fields = ["id", "scene", "scene_key", "network", "version", "active", "is_current", "reviewed", "mean_sic",
                  "uncertainty", "confidence", "pixels", "created_at", "tiles"]

    def get_tiles(self, prediction: ScenePrediction) -> str:
        return f"/api/v1/scene-predictions/{prediction.pk}/tiles/{{z}}/{{x}}/{{y}}.png"


class ScenePredictionsApi(APIView):
    permission_classes = [HasCapability("label")]

    @extend_schema(responses=ScenePredictionSerializer(many=True))
    def get(self, request, pk: int):
        scene = get_object_or_404(Scene.objects.only("pk"), pk=pk)
        rows = (ScenePrediction.objects.filter(scene=scene).select_related("model_version", "scene")
                .order_by("-is_current", "-model_version__is_active", "-created_at")[:50])
        return Response(ScenePredictionSerializer(rows, many=True).data)


class ScenePredictionTileApi(APIView):
    """A 256 px tile of the prediction's SIC (blue to white, 0-100 %) or uncertainty (yellow to purple) layer."""

    permission_classes = [HasCapability("label")]
    content_negotiation_class = _JsonErrors

    @extend_schema(operation_id="scene_predictions_tile_retrieve", responses={200: bytes, 304: None, 400: dict})
    def get(self, request, pk: int, z: str, x: str, y: str, fmt: str):
        layer = request.query_params.get("layer") or "sic"
        try:
            address = tile_address(z, x, y)
            prediction = get_object_or_404(ScenePrediction.objects.select_related("scene"), pk=pk)
            path = media_file(prediction.cog, f"the layer of scene prediction {prediction.pk}")
            etag = file_etag(path, prediction.scene.crs, "/".join(map(str, address)), layer, fmt)
            if _matches(request.headers.get("If-None-Match"), etag):
                response = HttpResponseNotModified()
            else:
                image = prediction_tile(path, prediction.scene.crs, *address, layer=layer, fmt=fmt)
                if image is None:
                    return Response({"detail": "outside the scene"}, status=404)
                response = HttpResponse(image, content_type=f"image/{fmt}")
        except TileRequestError as error:
            return Response({error.field: [error.reason]}, status=400)
        except SceneImageUnavailable as error:
            log.warning("scene prediction %s: %s", pk, error)
            raise Http404("the prediction's layer is missing or unreadable") from error
        response["ETag"] = etag
        response["Cache-Control"] = TILE_CACHE_CONTROL
        return response


class PointIn(serializers.Serializer):
    lon = serializers.FloatField(min_value=-180, max_value=180)
    lat = serializers.FloatField(min_value=-90, max_value=90)


class AcceptRegionApi(APIView):
    permission_classes = [HasCapability("review")]

    @extend_schema(request=PointIn, responses={201: dict, 200: dict, 400: dict},
                   description="201: the region is now a polygon; 200: it had been accepted already (that polygon).")
    def post(self, request, pk: int):
        prediction = get_object_or_404(ScenePrediction.objects.select_related("scene"), pk=pk)
        point = PointIn(data=request.data)
        point.is_valid(raise_exception=True)
        try:
            polygon, new = scene_region_accept(prediction, author=request.user, **point.validated_data)
        except RegionRefused as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        return Response(polygon_feature(polygon), status=status.HTTP_201_CREATED if new else status.HTTP_200_OK)


class ReviewedApi(APIView):
    permission_classes = [HasCapability("review")]

    @extend_schema(request=None, responses={204: None})
    def post(self, request, pk: int):
        scene_prediction_reviewed(get_object_or_404(ScenePrediction, pk=pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


class SceneReviewQueueApi(APIView):
    permission_classes = [HasCapability("review")]

    @extend_schema(responses=ScenePredictionSerializer(many=True))
    def get(self, request):
        return Response(ScenePredictionSerializer(scenes_to_review()[:100], many=True).data)


urlpatterns = [
    path("scenes/<int:pk>/predictions/", ScenePredictionsApi.as_view(), name="scene-predictions"),
    path("scene-predictions/<int:pk>/tiles/<str:z>/<str:x>/<str:y>.<str:fmt>", ScenePredictionTileApi.as_view(),
         name="scene-prediction-tile"),
    path("scene-predictions/<int:pk>/accept/", AcceptRegionApi.as_view(), name="scene-prediction-accept"),
    path("scene-predictions/<int:pk>/reviewed/", ReviewedApi.as_view(), name="scene-prediction-reviewed"),
    path("review/scenes/", SceneReviewQueueApi.as_view(), name="scene-review-queue"),
]
