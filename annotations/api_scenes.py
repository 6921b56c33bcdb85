"""Scenes over REST: GET /api/v1/scenes/ (paginated), /api/v1/scenes/<id>/, and their map tiles,
GET /api/v1/scenes/<id>/tiles/<z>/<x>/<y>.<png|webp>?layer=hh|hv|rgb&vmin=&vmax= (annotations/tiles.py).

Who may see: whoever may label (the same rule as an imagette's preview and pixels: a tile shows what the scene's
pixels show, no label, vote or prediction).

A tile that lies wholly outside the scene's grid answers 404 {"detail": "outside the scene"}, not an empty
transparent image: the scene's `bounds` and `native_zoom` tell a map which tiles exist (Leaflet's TileLayer takes
them as `bounds` and `maxNativeZoom` and then never asks for the others), so a request outside is a client's
mistake that it should hear of, and no cache fills with empty images. Inside the grid, where the swath has no
data, the tile is transparent.

Caching: a tile of given parameters only changes when the scene's COG is rewritten, so it carries a strong ETag made
from the COG's identity (path, size, mtime) and the parameters, and `Cache-Control: private, max-age=86400`
(private: the tiles are behind a log-in, no shared cache may hand them to others). After a day the browser asks
again with If-None-Match, and gets a 304 for the price of one row and one stat(), the COG unread.
"""

from __future__ import annotations

import logging

from django.http import Http404, HttpResponse, HttpResponseNotModified
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import HasCapability
from annotations.models import Scene
from annotations.tiles import (
    DB_LIMITS,
    DEFAULT_DB,
    FORMATS,
    LAYERS,
    MAX_ZOOM,
    MIN_ZOOM,
    SceneImageUnavailable,
    TileRequestError,
    native_zoom,
    scene_tile_for,
    tile_address,
    tile_etag,
    tile_params,
)
from eoplatform.pagination import PAGE_PARAMETERS, LimitOffsetPagination

log = logging.getLogger(__name__)

CanLabel = HasCapability("label")
TILE_CACHE_CONTROL = "private, max-age=86400"


class SceneSerializer(serializers.ModelSerializer):
    polarisations = serializers.SerializerMethodField()
    native_zoom = serializers.SerializerMethodField(help_text="The tile zoom nearest the COG's resolution.")
    tiles = serializers.SerializerMethodField(help_text="The tile URL template ({z}/{x}/{y}), PNG.")

    class Meta:
        model = Scene
        fields = ["id", "key", "mission", "mode", "product_type", "polarisations", "acquisition_start",
                  "acquisition_stop", "footprint", "crs", "bounds", "width", "height", "pixel_size", "bands",
                  "calibrated", "native_zoom", "tiles"]

    def get_polarisations(self, scene: Scene) -> list[str]:
        return scene.polarisations.split()

    def get_native_zoom(self, scene: Scene) -> int:
        return native_zoom(scene.pixel_size)

    def get_tiles(self, scene: Scene) -> str:
        return f"/api/v1/scenes/{scene.pk}/tiles/{{z}}/{{x}}/{{y}}.png"


class SceneListApi(APIView):
    """The scenes, newest acquisition first."""

    permission_classes = [CanLabel]

    @extend_schema(parameters=PAGE_PARAMETERS, responses=SceneSerializer(many=True))
    def get(self, request):
        paginator = LimitOffsetPagination()
        page = paginator.paginate_queryset(Scene.objects.order_by("-acquisition_start", "-id"), request, view=self)
        return paginator.get_paginated_response(SceneSerializer(page, many=True).data)


class SceneDetailApi(APIView):
    permission_classes = [CanLabel]

    @extend_schema(responses=SceneSerializer)
    def get(self, request, pk: int):
        return Response(SceneSerializer(get_object_or_404(Scene, pk=pk)).data)


class _JsonErrors(BaseContentNegotiation):
    """The tile is an image whatever the Accept header says (an <img> asks for image/*): errors are JSON."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None


def _matches(if_none_match: str | None, etag: str) -> bool:
    """If-None-Match holds the ETag (weak comparison, as RFC 9110 asks for it) or is '*'."""
    if not if_none_match:
        return False
    tags = [tag.strip() for tag in if_none_match.split(",")]
    return "*" in tags or any(tag.removeprefix("W/") == etag for tag in tags)


_TILE_PATH = [OpenApiParameter(name, {"type": "integer", "minimum": 0, "maximum": limit}, OpenApiParameter.PATH,
                               description=text)
              for name, limit, text in (("z", MAX_ZOOM, f"zoom, {MIN_ZOOM} to {MAX_ZOOM} (10: 40 m/px)"),
                                        ("x", 2**MAX_ZOOM - 1, "column, 0 to 2**z - 1"),
                                        ("y", 2**MAX_ZOOM - 1, "row from the top, 0 to 2**z - 1"))]
_TILE_QUERY = [
    OpenApiParameter("fmt", str, OpenApiParameter.PATH, enum=list(FORMATS), description="image format"),
    OpenApiParameter("layer", str, enum=list(LAYERS), description="hh, hv (grey) or rgb (R HH, G HV, B HH-HV); hh"),
    OpenApiParameter("vmin", float, description=f"dB shown black, {DB_LIMITS[0]:g} to {DB_LIMITS[1]:g}; default "
                     f"HH {DEFAULT_DB['hh'][0]:g}, HV {DEFAULT_DB['hv'][0]:g} (rgb: HH and HV alike)"),
    OpenApiParameter("vmax", float, description=f"dB shown white, above vmin; default HH {DEFAULT_DB['hh'][1]:g}, "
                     f"HV {DEFAULT_DB['hv'][1]:g}"),
    OpenApiParameter("If-None-Match", str, OpenApiParameter.HEADER, description="an ETag of this tile: 304"),
]


class SceneTileApi(APIView):
    """A 256 px map tile of the scene on its polar grid (EPSG:3413 or EPSG:3976 tile matrix set: +-5 242 880 m,
    zoom 0 to 12), transparent where there is no data. ETag and Cache-Control; 304 for a matching If-None-Match."""

    permission_classes = [CanLabel]
    content_negotiation_class = _JsonErrors

    @extend_schema(operation_id="scenes_tile_retrieve", parameters=[*_TILE_PATH, *_TILE_QUERY], responses={
        (200, "image/png"): OpenApiResponse(OpenApiTypes.BINARY), (200, "image/webp"): OpenApiResponse(
            OpenApiTypes.BINARY), 304: OpenApiResponse(description="not modified (If-None-Match)"),
        400: OpenApiResponse(description="a bad parameter: {parameter: [reason]}"),
        404: OpenApiResponse(description="no such scene, its image is missing, or the tile is outside the scene")})
    def get(self, request, pk: int, z: str, x: str, y: str, fmt: str):
        query = request.query_params
        try:
            address = tile_address(z, x, y)
            scene = get_object_or_404(Scene.objects.only("id", "crs", "bounds", "bands", "cog"), pk=pk)
            params = tile_params(scene, layer=query.get("layer"), vmin=query.get("vmin"), vmax=query.get("vmax"),
                                 fmt=fmt)
            etag = tile_etag(scene, *address, params)
            if _matches(request.headers.get("If-None-Match"), etag):
                response = HttpResponseNotModified()
            else:
                image = scene_tile_for(scene, *address, params)
                if image is None:
                    return Response({"detail": "outside the scene"}, status=404)
                response = HttpResponse(image, content_type=params.content_type)
        except TileRequestError as error:
            return Response({error.field: [error.reason]}, status=400)
        except SceneImageUnavailable as error:
            log.warning("scene %s: %s", pk, error)
            raise Http404("the scene's image is missing or unreadable") from error
        response["ETag"] = etag
        response["Cache-Control"] = TILE_CACHE_CONTROL
        return response
