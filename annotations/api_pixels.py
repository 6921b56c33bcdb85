"""GET /api/v1/imagettes/<id>/pixels/: an imagette's values for display (the labelling and review pages' dB window).

Included from annotations/api_urls.py. Same rule as the preview: whoever may label may fetch any imagette's pixels
(they show nothing the preview does not; votes, labels and predictions are elsewhere).
"""

from __future__ import annotations

import logging
from pathlib import Path

from django.conf import settings
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import path
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.views import APIView

from accounts.permissions import HasCapability
from annotations.models import Imagette
from annotations.pixels import DISPLAY_MAX_SIDE, PixelsUnavailable, display_pixels

log = logging.getLogger(__name__)


def _media_file(relative: str) -> Path:
    """The file under MEDIA_ROOT that a row names; 404 for an empty, escaping or missing one."""
    media = Path(settings.MEDIA_ROOT).resolve()
    candidate = (media / relative).resolve() if relative else media
    if not candidate.is_relative_to(media) or not candidate.is_file():
        raise Http404("pixel file missing")
    return candidate


class ImagettePixelsApi(APIView):
    """The imagette's values at the preview's size (at most 512 px a side), for a window and gamma chosen in the
    browser. Body: height x width little-endian float16, row-major, NaN where there was no data. Headers:
    X-Pixels-Width, X-Pixels-Height, X-Pixels-Units ("dB", or "brightness" for PNG sources, whose scale is
    unknown). Cached by browsers: it never changes."""

    permission_classes = [HasCapability("label")]

    @extend_schema(responses={(200, "application/octet-stream"): OpenApiResponse(
        response=bytes, description=f"float16 little-endian, at most {DISPLAY_MAX_SIDE} px a side")})
    def get(self, request, pk: int):
        item = get_object_or_404(Imagette.objects.only("data", "is_db"), pk=pk)
        try:
            pixels = display_pixels(path=_media_file(item.data), is_db=item.is_db)
        except PixelsUnavailable as unavailable:
            log.warning("imagette %s: %s", pk, unavailable)
            raise Http404(str(unavailable)) from unavailable
        response = HttpResponse(pixels.payload, content_type="application/octet-stream")
        response["X-Pixels-Width"] = str(pixels.width)
        response["X-Pixels-Height"] = str(pixels.height)
        response["X-Pixels-Units"] = "dB" if pixels.is_db else "brightness"
        response["X-Pixels-Dtype"] = "float16-le"
        response["Cache-Control"] = "private, max-age=31536000, immutable"
        return response


urlpatterns = [path("", ImagettePixelsApi.as_view(), name="imagette-pixels")]
